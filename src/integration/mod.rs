//! The VIBEZEN integration facade: default circuits from presets, protected
//! calls with fallbacks, degradation and recovery handlers, a health report
//! with recommendations, and the switch that tells a workflow whether to go
//! on (VIBEZEN's `VIBEZENCircuitBreakerIntegration`).
//!
//! [`VibezenIntegration`] is a handle: clone it freely; every clone talks to
//! the same [`CircuitBreakerManager`] and handler runner. It starts actors,
//! so create it inside an actix `System`.

mod events;
mod fallback;
mod file;
mod handlers;
mod report;
mod workflow;

use std::future::Future;

use actix::{Actor, Addr};

use crate::circuit::CallError;
use crate::config::ConfigError;
use crate::health::HealthSnapshot;
use crate::manager::{
    AllStats, Call, CircuitBreakerManager, GetBreaker, GetHealth, ManagerError, SubscribeAll,
};
use crate::name::validate_circuit_name;
use crate::presets::Preset;

pub use fallback::{Fallback, Served};
pub use file::{CircuitsFile, CircuitsFileError, EntryError};
pub use handlers::HandlerOutcome;
pub use report::{
    FLAPPING_OPENINGS, FLAPPING_WINDOW, HealthReport, MIN_CALLS_FOR_ADVICE, NEAR_THRESHOLD,
    STUCK_OPEN_TRIALS, recommend,
};
pub use workflow::WorkflowConfig;

use handlers::{HandlerKind, HandlerRunner, Register};

/// The circuits [`VibezenIntegration::setup_default_breakers`] creates, and
/// the preset of each.
pub const DEFAULT_BREAKERS: [(&str, Preset); 6] = [
    ("ai_provider_openai", Preset::AiProvider),
    ("ai_provider_google", Preset::AiProvider),
    ("cache", Preset::CacheService),
    ("search", Preset::SearchService),
    ("knowledge_graph", Preset::KnowledgeGraph),
    ("thinking_engine", Preset::ThinkingEngine),
];

/// Circuit breakers for a VIBEZEN workflow, behind one handle.
///
/// ```
/// use vibezen_recovery::integration::WorkflowConfig;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let vibezen = VibezenIntegration::new(WorkflowConfig::default())?;
/// vibezen.setup_default_breakers().await?;
///
/// vibezen.register_degradation_handler("ai_provider_openai", || async {
///     println!("AI service down, using simplified logic");
/// })?;
///
/// let answer = vibezen
///     .protected_call(
///         "ai_provider_openai",
///         async { Ok::<_, std::io::Error>("Hello from the model".to_string()) },
///         Some(Fallback::new(|| async { "Hello from the local model".to_string() })),
///     )
///     .await?;
/// assert!(!answer.used_fallback());
///
/// let report = vibezen.get_health_report().await?;
/// for recommendation in &report.recommendations {
///     println!("- {recommendation}");
/// }
/// assert!(vibezen.should_continue_workflow().await);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct VibezenIntegration {
    config: WorkflowConfig,
    manager: Addr<CircuitBreakerManager>,
    handlers: Addr<HandlerRunner>,
}

impl VibezenIntegration {
    /// Starts the manager and the handler runner on the current arbiter;
    /// refuses an invalid config. Call it inside an actix `System`.
    pub fn new(config: WorkflowConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let manager = CircuitBreakerManager::new(config.default_config.clone())?.start();
        let handlers = HandlerRunner::new(config.handler_timeout).start();
        // Queued before anything else this handle sends, so the runner hears
        // every circuit from its creation on.
        manager.do_send(SubscribeAll(handlers.clone().recipient()));
        Ok(VibezenIntegration {
            config,
            manager,
            handlers,
        })
    }

    /// The manager, for what the facade does not wrap (resets, exports,
    /// statistics, subscriptions).
    pub fn manager(&self) -> &Addr<CircuitBreakerManager> {
        &self.manager
    }

    /// The config this integration runs with.
    pub fn config(&self) -> &WorkflowConfig {
        &self.config
    }

    /// Whether calls go through circuit breakers.
    pub fn is_enabled(&self) -> bool {
        self.config.enable_circuit_breaker
    }

    /// Creates the [`DEFAULT_BREAKERS`] from their presets (the AI providers
    /// and the thinking engine critical). Circuits that exist already are
    /// kept as they are. Creates nothing when circuit breakers are disabled.
    pub async fn setup_default_breakers(&self) -> Result<(), ManagerError> {
        let file = CircuitsFile {
            circuits: DEFAULT_BREAKERS
                .iter()
                .map(|(name, preset)| ((*name).to_owned(), preset.config()))
                .collect(),
        };
        self.add_circuits(&file).await.map(drop)
    }

    /// Creates the circuits of a checked [`CircuitsFile`] and returns their
    /// names. Circuits that exist already are kept as they are (the manager
    /// logs a warning when the file asks for another config). Creates
    /// nothing when circuit breakers are disabled.
    ///
    /// ```
    /// use vibezen_recovery::integration::{CircuitsFile, VibezenIntegration, WorkflowConfig};
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let vibezen = VibezenIntegration::new(WorkflowConfig::default())?;
    /// let file = CircuitsFile::from_json(r#"{"circuits": {"search": {"preset": "SEARCH_SERVICE"}}}"#)?;
    /// assert_eq!(vibezen.add_circuits(&file).await?, ["search"]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn add_circuits(&self, file: &CircuitsFile) -> Result<Vec<String>, ManagerError> {
        if !self.is_enabled() {
            return Ok(Vec::new());
        }
        // Every request is queued before any is awaited: the manager handles
        // them back to back, and a file's configs are all valid already.
        let requests: Vec<_> = file
            .circuits
            .iter()
            .map(|(name, config)| {
                self.manager
                    .send(GetBreaker::with_config(name.clone(), config.clone()))
            })
            .collect();
        for request in requests {
            request
                .await
                .map_err(|_| ManagerError::ManagerUnavailable)??;
        }
        Ok(file.circuits.keys().cloned().collect())
    }

    /// Runs `future` through the circuit named `name` (created with
    /// `WorkflowConfig::default_config` on first use).
    ///
    /// With a [`Fallback`], a rejected call (the circuit is open) is answered
    /// by the fallback instead, and the result says so
    /// ([`Served::Fallback`]). A call that ran and failed is returned as its
    /// error unless the fallback was made with [`Fallback::on_any_error`];
    /// so is a name the manager refuses ([`CallError::InvalidName`]: the
    /// future does not run). When circuit breakers are disabled the future
    /// runs directly: its error comes back as [`CallError::Failed`], nothing
    /// is rejected, timed out or shielded from panics.
    ///
    /// ```
    /// use vibezen_recovery::integration::{Served, WorkflowConfig};
    /// use vibezen_recovery::prelude::*;
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let vibezen = VibezenIntegration::new(WorkflowConfig::default())?;
    /// let served = vibezen
    ///     .protected_call("search", async { Ok::<_, std::io::Error>(vec!["rust"]) }, None)
    ///     .await?;
    /// assert!(matches!(served, Served::Service(ref hits) if hits == &["rust"]));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn protected_call<F, T, E>(
        &self,
        name: impl Into<String>,
        future: F,
        fallback: Option<Fallback<T>>,
    ) -> Result<Served<T, E>, CallError<E>>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let result = if self.is_enabled() {
            self.manager
                .send(Call::new(name, future))
                .await
                .unwrap_or_else(|err| Err(CallError::Unavailable(err)))
        } else {
            future.await.map_err(CallError::Failed)
        };
        match (result, fallback) {
            (Ok(value), _) => Ok(Served::Service(value)),
            (Err(cause), Some(fallback)) if fallback.applies_to(&cause) => {
                let value = fallback.run().await;
                Ok(Served::Fallback { value, cause })
            }
            (Err(cause), _) => Err(cause),
        }
    }

    /// Runs `handler` each time the named circuit stops serving (CLOSED ->
    /// OPEN; once per outage, not again when a probe fails). Handlers run on
    /// the handler runner, one at a time in the order of the events; one
    /// that returns an error, panics or outlives `handler_timeout` is logged
    /// and harms nothing else. The circuit need not exist yet. A handler may
    /// return `()` or a `Result<(), E: Display>`.
    ///
    /// ```
    /// use vibezen_recovery::integration::{VibezenIntegration, WorkflowConfig};
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let vibezen = VibezenIntegration::new(WorkflowConfig::default())?;
    /// vibezen.register_degradation_handler("ai_provider_openai", || async {
    ///     // switch to rule-based validation, serve cached answers...
    ///     Ok::<(), String>(())
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn register_degradation_handler<H, Fut>(
        &self,
        name: impl Into<String>,
        handler: H,
    ) -> Result<(), ConfigError>
    where
        H: Fn() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: HandlerOutcome,
    {
        self.register(name.into(), HandlerKind::Degradation, handler)
    }

    /// Runs `handler` each time the named circuit serves again (OPEN or
    /// HALF_OPEN -> CLOSED, by trial successes, a reset, or the inactivity
    /// reset). Otherwise as
    /// [`register_degradation_handler`](Self::register_degradation_handler).
    ///
    /// ```
    /// use vibezen_recovery::integration::{VibezenIntegration, WorkflowConfig};
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let vibezen = VibezenIntegration::new(WorkflowConfig::default())?;
    /// vibezen.register_recovery_handler("ai_provider_openai", || async {
    ///     // process queued items, re-enable full features...
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn register_recovery_handler<H, Fut>(
        &self,
        name: impl Into<String>,
        handler: H,
    ) -> Result<(), ConfigError>
    where
        H: Fn() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: HandlerOutcome,
    {
        self.register(name.into(), HandlerKind::Recovery, handler)
    }

    fn register<H, Fut>(
        &self,
        circuit: String,
        kind: HandlerKind,
        handler: H,
    ) -> Result<(), ConfigError>
    where
        H: Fn() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: HandlerOutcome,
    {
        validate_circuit_name(&circuit)?;
        self.handlers.do_send(Register {
            circuit,
            kind,
            handler: handlers::boxed(handler),
        });
        Ok(())
    }

    /// The health snapshot, the critical circuits that are down, and
    /// recommendations read from the statistics (see [`recommend`]). When
    /// circuit breakers are disabled, the first recommendation says so.
    pub async fn get_health_report(&self) -> Result<HealthReport, ManagerError> {
        let stats = self
            .manager
            .send(AllStats)
            .await
            .map_err(|_| ManagerError::ManagerUnavailable)?;
        Ok(HealthReport::from_stats(&stats, self.is_enabled()))
    }

    /// The health snapshot alone.
    pub async fn get_health(&self) -> Result<HealthSnapshot, ManagerError> {
        self.manager
            .send(GetHealth)
            .await
            .map_err(|_| ManagerError::ManagerUnavailable)
    }

    /// Whether it is safe for the workflow to go on: false while any
    /// critical circuit is OPEN or the health score is below
    /// `WorkflowConfig::min_health_score`. Also false if the manager cannot
    /// be asked (its System is stopping): when in doubt, pause.
    pub async fn should_continue_workflow(&self) -> bool {
        match self.get_health().await {
            Ok(health) => {
                !health.any_critical_open() && health.health_score >= self.config.min_health_score
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot read circuit health; pausing the workflow");
                false
            }
        }
    }
}

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
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix::{Actor, Addr};
use futures_util::FutureExt;

use crate::circuit::CallError;
use crate::circuit::panic_message;
use crate::config::ConfigError;
use crate::health::HealthSnapshot;
use crate::manager::{
    AllStats, CircuitBreakerManager, GetBreaker, GetHealth, ManagerError, Registry, SubscribeAll,
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
pub use workflow::{StartError, WorkflowConfig};

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
    /// The manager's circuits by name, creating a circuit on a new name.
    circuits: Registry,
    /// The same, refusing a new name.
    known_circuits: Registry,
    /// Whether circuits were set up from a file or presets: from then on a
    /// new name is refused unless `create_unknown_circuits`.
    set_up: Arc<AtomicBool>,
}

impl VibezenIntegration {
    /// Starts the manager and the handler runner on the current arbiter.
    /// Refuses an invalid config ([`StartError::InvalidConfig`]), and
    /// starts nothing outside a running actix `System`
    /// ([`StartError::NoSystem`]): create it inside one, in
    /// `#[actix::main]`, `#[actix_web::main]` or `System::new().block_on`.
    pub fn new(config: WorkflowConfig) -> Result<Self, StartError> {
        config.validate()?;
        StartError::unless_in_a_system()?;
        let (manager, circuits) =
            CircuitBreakerManager::new(config.default_config.clone())?.start_with_registry();
        let handlers = HandlerRunner::new(config.handler_timeout).start();
        // Queued before anything else this handle sends, so the runner hears
        // every circuit from its creation on.
        manager.do_send(SubscribeAll(handlers.clone().recipient()));
        Ok(VibezenIntegration {
            config,
            manager,
            handlers,
            known_circuits: circuits.known_only(),
            circuits,
            set_up: Arc::new(AtomicBool::new(false)),
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
        if !file.circuits.is_empty() {
            self.set_up.store(true, Ordering::Relaxed);
        }
        Ok(file.circuits.keys().cloned().collect())
    }

    /// Runs `future` through the circuit named `name`, on the caller's own
    /// task: the future need not be `Send` (an awc request is fine), and its
    /// I/O stays on the thread that called, an actix-web worker say. The
    /// circuit is found without a message through the manager's
    /// [`Registry`] and decides at fast-path speed
    /// ([`CircuitHandle::call`](crate::circuit::CircuitHandle::call)).
    ///
    /// The first call by a name creates its circuit with
    /// `WorkflowConfig::default_config`, until circuits are set up from a
    /// file or presets ([`add_circuits`](Self::add_circuits),
    /// [`setup_default_breakers`](Self::setup_default_breakers)): from then
    /// on a new name is refused with [`CallError::UnknownCircuit`], which
    /// names the nearest circuit there is, unless
    /// `WorkflowConfig::create_unknown_circuits` is set. A name the manager
    /// refuses is [`CallError::InvalidName`]. In both cases the future does
    /// not run.
    ///
    /// With a [`Fallback`], a rejected call (the circuit is open) is answered
    /// by the fallback instead, and the result says so
    /// ([`Served::Fallback`]). A call that ran and failed is returned as its
    /// error unless the fallback was made with [`Fallback::on_any_error`].
    /// A panic in the future is counted by the circuit and comes back as
    /// [`CallError::Panicked`]. When circuit breakers are disabled the future
    /// runs directly: its error comes back as [`CallError::Failed`], nothing
    /// is rejected, timed out or shielded from panics.
    ///
    /// For work that should run on the circuits' arbiter instead (it is
    /// `Send` and you want it off the caller's thread), send a
    /// [`Call`](crate::manager::Call) to the [`manager`](Self::manager).
    ///
    /// ```
    /// use std::rc::Rc;
    /// use vibezen_recovery::integration::{Served, WorkflowConfig};
    /// use vibezen_recovery::prelude::*;
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let vibezen = VibezenIntegration::new(WorkflowConfig::default())?;
    /// let not_send = Rc::new(vec!["rust"]);
    /// let served = vibezen
    ///     .protected_call("search", async move { Ok::<_, std::io::Error>(not_send.to_vec()) }, None)
    ///     .await?;
    /// assert!(matches!(served, Served::Service(ref hits) if hits == &["rust"]));
    ///
    /// vibezen.setup_default_breakers().await?;
    /// let typo = vibezen.protected_call("serch", async { Ok::<_, String>(()) }, None).await;
    /// assert!(matches!(typo, Err(CallError::UnknownCircuit(u)) if u.nearest() == Some("search")));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn protected_call<F, T, E>(
        &self,
        name: impl AsRef<str>,
        future: F,
        fallback: Option<Fallback<T>>,
    ) -> Result<Served<T, E>, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        let result = if self.is_enabled() {
            // The fast path lets a panic unwind into its caller, once the
            // circuit has counted it; here it becomes an answer, as it does
            // when the circuit runs the call.
            let call = self.registry().call(name.as_ref(), future);
            AssertUnwindSafe(call)
                .catch_unwind()
                .await
                .unwrap_or_else(|payload| Err(CallError::Panicked(panic_message(payload.as_ref()))))
        } else {
            future.await.map_err(CallError::Failed)
        };
        match fallback {
            Some(fallback) => fallback.answer(result).await,
            None => result.map(Served::Service),
        }
    }

    /// The registry protected calls look names up in, by the rule of
    /// [`protected_call`](Self::protected_call).
    fn registry(&self) -> &Registry {
        if self.set_up.load(Ordering::Relaxed) && !self.config.create_unknown_circuits {
            &self.known_circuits
        } else {
            &self.circuits
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

    /// The health snapshot, the critical circuits that are down, whether the
    /// workflow should go on (read from that same snapshot), and
    /// recommendations read from the statistics (see [`recommend`]). When
    /// circuit breakers are disabled, the first recommendation says so.
    pub async fn get_health_report(&self) -> Result<HealthReport, ManagerError> {
        let stats = self
            .manager
            .send(AllStats)
            .await
            .map_err(|_| ManagerError::ManagerUnavailable)?;
        Ok(HealthReport::from_stats(&stats, &self.config))
    }

    /// The health snapshot alone.
    pub async fn get_health(&self) -> Result<HealthSnapshot, ManagerError> {
        self.manager
            .send(GetHealth)
            .await
            .map_err(|_| ManagerError::ManagerUnavailable)
    }

    /// Whether it is safe for the workflow to go on
    /// ([`HealthSnapshot::should_continue`], the rule
    /// [`HealthReport::should_continue`] follows too): false while any
    /// critical circuit is down, from the moment it opens until it closes
    /// again (HALF_OPEN included: a probe is not a recovery), or while the
    /// health score is below `WorkflowConfig::min_health_score`. Also false
    /// if the manager cannot be asked (its System is stopping): when in
    /// doubt, pause.
    pub async fn should_continue_workflow(&self) -> bool {
        match self.get_health().await {
            Ok(health) => health.should_continue(self.config.min_health_score),
            Err(err) => {
                tracing::error!(error = %err, "cannot read circuit health; pausing the workflow");
                false
            }
        }
    }
}

//! The supervisor: one actor that owns many named circuits, routes calls to
//! them, recreates the ones that die, and reports on all of them.
//!
//! Circuits are started from inside the manager's handlers, so they run on
//! the manager's arbiter: a test that pauses tokio's clock on its own arbiter
//! drives the manager and every circuit alike.
//!
//! # Supervision
//!
//! Whenever a message is routed to a circuit, and on a sweep every
//! [`SWEEP_INTERVAL`], the manager checks that the circuit's actor is still
//! alive. A dead one (stopped with [`Stop`](crate::circuit::Stop), or killed by a bug)
//! is recreated under the same name and config, re-subscribed to every
//! [`SubscribeAll`] recipient, and reported by a `tracing` warning.
//!
//! **State does not survive**: a recreated circuit starts CLOSED, with empty
//! totals and history, in generation 0; one an operator had forced open or
//! disabled must be forced or disabled again. Whoever still holds the old address
//! gets [`MailboxError::Closed`](actix::MailboxError::Closed) (or
//! [`CallError::Unavailable`](crate::circuit::CallError::Unavailable) through
//! [`CircuitBreakerExt`](crate::circuit::CircuitBreakerExt)), never a hang; ask the
//! manager again for the new one. No [`StateChanged`]
//! event marks the recreation.

mod call;
mod control;
mod error;
mod get;
mod registry;
mod report;
mod supervision;
mod unknown;

use std::collections::BTreeMap;
use std::time::Duration;

use actix::{Actor, Addr, AsyncContext, Context, Recipient};

use crate::circuit::{CircuitBreaker, StateChanged, Subscribe, events};
use crate::config::{CircuitBreakerConfig, ConfigError};

pub use call::Call;
pub use control::{
    DisableAll, DisableCircuit, ForceOpenAll, ForceOpenCircuit, ReleaseAll, ReleaseCircuit,
    ResetAll, ResetCircuit, SubscribeAll,
};
pub use error::ManagerError;
pub use get::{GetBreaker, GetCircuitHandle};
pub use registry::{GetRegistry, Registry, RegistryCall};
pub use report::{AllStats, ExportStats, ExportStatsToFile, GetHealth};
pub use supervision::GetRestarts;
pub use unknown::UnknownCircuit;

/// How often the manager looks for dead circuits on its own.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// An actor that owns named circuits (VIBEZEN's `CircuitBreakerManager`).
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = CircuitBreakerManager::default().start();
///
/// // The circuit "database" is created with the default config on first use.
/// let rows = manager.send(Call::new("database", async { Ok::<_, std::io::Error>(vec![1, 2]) })).await?;
/// assert_eq!(rows?, vec![1, 2]);
///
/// let health = manager.send(GetHealth).await?;
/// println!("System health: {:.2}", health.health_score);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct CircuitBreakerManager {
    default_config: CircuitBreakerConfig,
    circuits: BTreeMap<String, Supervised>,
    subscribers: Vec<Recipient<StateChanged>>,
    sweep_interval: Duration,
    /// The read view handed out by `GetRegistry`, once someone asked.
    registry: Option<Registry>,
}

/// A circuit and what it takes to bring it back.
#[derive(Debug)]
struct Supervised {
    addr: Addr<CircuitBreaker>,
    config: CircuitBreakerConfig,
    /// How many times the actor was found dead and recreated.
    restarts: u64,
}

impl CircuitBreakerManager {
    /// A manager with no circuits yet; circuits created without a config of
    /// their own get `default_config`, which must pass
    /// [`validate`](CircuitBreakerConfig::validate).
    ///
    /// ```
    /// use vibezen_recovery::prelude::*;
    ///
    /// let bad = CircuitBreakerConfig { failure_threshold: 0, ..Default::default() };
    /// assert_eq!(CircuitBreakerManager::new(bad).unwrap_err().field(), "failure_threshold");
    /// ```
    pub fn new(default_config: CircuitBreakerConfig) -> Result<Self, ConfigError> {
        default_config.validate()?;
        Ok(CircuitBreakerManager {
            default_config,
            circuits: BTreeMap::new(),
            subscribers: Vec::new(),
            sweep_interval: SWEEP_INTERVAL,
            registry: None,
        })
    }

    /// Sweeps for dead circuits every `interval` instead of every
    /// [`SWEEP_INTERVAL`] (a zero interval is taken as one millisecond).
    ///
    /// ```
    /// use std::time::Duration;
    /// use vibezen_recovery::manager::CircuitBreakerManager;
    ///
    /// let manager = CircuitBreakerManager::default().sweep_every(Duration::from_secs(10));
    /// # drop(manager);
    /// ```
    pub fn sweep_every(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The config that circuits created without one get.
    pub fn default_config(&self) -> &CircuitBreakerConfig {
        &self.default_config
    }

    /// The circuit named `name`, created with `config` (or the default) if
    /// there is none. A live circuit is never replaced.
    fn get_or_create(
        &mut self,
        name: String,
        config: Option<CircuitBreakerConfig>,
    ) -> Result<Addr<CircuitBreaker>, ConfigError> {
        if let Some(config) = &config {
            config.validate()?;
        }
        if let Some(addr) = self.live(&name) {
            if let Some(asked) = &config {
                if *asked != self.circuits[&name].config {
                    tracing::warn!(
                        circuit = %name,
                        "circuit already exists with another config; returning the live circuit unchanged"
                    );
                }
            }
            return Ok(addr);
        }
        let config = config.unwrap_or_else(|| self.default_config.clone());
        let addr = self.start_circuit(&name, config.clone())?;
        tracing::debug!(circuit = %name, critical = config.critical, "circuit created");
        self.circuits.insert(
            name,
            Supervised {
                addr: addr.clone(),
                config,
                restarts: 0,
            },
        );
        Ok(addr)
    }

    /// `name` is no circuit's: with the nearest name that is.
    fn unknown(&self, name: String) -> UnknownCircuit {
        UnknownCircuit::among(name, self.circuits.keys().map(String::as_str))
    }

    /// Starts a circuit on this arbiter and subscribes every [`SubscribeAll`]
    /// recipient before anything else can reach it.
    fn start_circuit(
        &mut self,
        name: &str,
        config: CircuitBreakerConfig,
    ) -> Result<Addr<CircuitBreaker>, ConfigError> {
        let addr = CircuitBreaker::new(name, config)?.start();
        self.prune_subscribers();
        for subscriber in &self.subscribers {
            // The mailbox is empty: the subscription is the first thing the
            // circuit handles, before any call the manager routes to it.
            addr.do_send(Subscribe(subscriber.clone()));
        }
        Ok(addr)
    }
}

impl CircuitBreakerManager {
    /// Forgets subscribers that are gone, or that the circuits gave up on
    /// for falling too far behind: they are not handed to new circuits.
    fn prune_subscribers(&mut self) {
        self.subscribers
            .retain(|recipient| recipient.connected() && !events::given_up(recipient));
    }
}

impl Default for CircuitBreakerManager {
    /// A manager whose circuits default to [`CircuitBreakerConfig::default`].
    fn default() -> Self {
        CircuitBreakerManager::new(CircuitBreakerConfig::default())
            .expect("the default config is valid")
    }
}

impl Actor for CircuitBreakerManager {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.sweep_interval, |manager, _| manager.sweep());
    }
}

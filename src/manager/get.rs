//! `GetBreaker`: get a circuit by name, creating it on first use.

use actix::{Addr, Context, Handler, Message, ResponseFuture};

use super::{CircuitBreakerManager, ManagerError};
use crate::circuit::{CircuitBreaker, CircuitHandle, GetHandle};
use crate::config::{CircuitBreakerConfig, ConfigError};

/// Asks the manager for the circuit named `name`, creating it if there is
/// none (VIBEZEN's `manager.get_breaker(name, config)`).
///
/// The same name always yields the same circuit, whose state everyone who
/// holds it shares. A live circuit is never replaced: asking again with
/// another config returns the live circuit as it is and logs a `tracing`
/// warning naming it. A refused name or config is an error and creates
/// nothing.
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = CircuitBreakerManager::default().start();
/// let db = manager.send(GetBreaker::new("database")).await??;
/// let api = manager.send(GetBreaker::with_config("external_api", presets::search_service())).await??;
/// assert_eq!(manager.send(GetBreaker::new("database")).await??, db);
/// assert_ne!(db, api);
///
/// let refused = CircuitBreakerConfig { min_calls: 0, ..Default::default() };
/// let err = manager.send(GetBreaker::with_config("other", refused)).await?.unwrap_err();
/// assert_eq!(err.field(), "min_calls");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct GetBreaker {
    name: String,
    config: Option<CircuitBreakerConfig>,
}

impl GetBreaker {
    /// The circuit named `name`; created with the manager's default config
    /// if it does not exist.
    pub fn new(name: impl Into<String>) -> Self {
        GetBreaker {
            name: name.into(),
            config: None,
        }
    }

    /// The circuit named `name`; created with `config` if it does not exist.
    pub fn with_config(name: impl Into<String>, config: CircuitBreakerConfig) -> Self {
        GetBreaker {
            name: name.into(),
            config: Some(config),
        }
    }
}

impl Message for GetBreaker {
    type Result = Result<Addr<CircuitBreaker>, ConfigError>;
}

impl Handler<GetBreaker> for CircuitBreakerManager {
    type Result = Result<Addr<CircuitBreaker>, ConfigError>;

    fn handle(
        &mut self,
        GetBreaker { name, config }: GetBreaker,
        _: &mut Context<Self>,
    ) -> Self::Result {
        self.get_or_create(name, config)
    }
}

/// Asks the manager for a [`CircuitHandle`] to the circuit named `name`,
/// creating the circuit as [`GetBreaker`] would: the fast path, by name.
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = CircuitBreakerManager::default().start();
/// let cache = manager.send(GetCircuitHandle::new("cache")).await??;
/// assert_eq!(cache.call(async { Ok::<_, String>("hit") }).await.ok(), Some("hit"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct GetCircuitHandle {
    get: GetBreaker,
    /// Whether a name no circuit has is created (or refused).
    create: bool,
}

impl GetCircuitHandle {
    /// A handle to the circuit named `name`, created with the manager's
    /// default config if it does not exist.
    pub fn new(name: impl Into<String>) -> Self {
        GetCircuitHandle {
            get: GetBreaker::new(name),
            create: true,
        }
    }

    /// A handle to the circuit named `name`, created with `config` if it
    /// does not exist.
    pub fn with_config(name: impl Into<String>, config: CircuitBreakerConfig) -> Self {
        GetCircuitHandle {
            get: GetBreaker::with_config(name, config),
            create: true,
        }
    }

    /// A handle to the circuit named `name` if the manager has one;
    /// otherwise [`ManagerError::UnknownCircuit`], with the nearest name it
    /// has.
    ///
    /// ```
    /// use actix::Actor;
    /// use vibezen_recovery::prelude::*;
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let manager = CircuitBreakerManager::default().start();
    /// manager.send(GetBreaker::new("search")).await??;
    /// assert!(manager.send(GetCircuitHandle::existing("search")).await?.is_ok());
    /// let err = manager.send(GetCircuitHandle::existing("serch")).await?.unwrap_err();
    /// assert!(matches!(err, ManagerError::UnknownCircuit(u) if u.nearest() == Some("search")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn existing(name: impl Into<String>) -> Self {
        GetCircuitHandle {
            create: false,
            ..GetCircuitHandle::new(name)
        }
    }
}

impl Message for GetCircuitHandle {
    type Result = Result<CircuitHandle, ManagerError>;
}

impl Handler<GetCircuitHandle> for CircuitBreakerManager {
    type Result = ResponseFuture<Result<CircuitHandle, ManagerError>>;

    fn handle(
        &mut self,
        GetCircuitHandle { get, create }: GetCircuitHandle,
        _: &mut Context<Self>,
    ) -> Self::Result {
        if !create && !self.circuits.contains_key(&get.name) {
            let unknown = self.unknown(get.name);
            return Box::pin(async move { Err(ManagerError::UnknownCircuit(unknown)) });
        }
        let name = get.name.clone();
        // A known circuit whose actor died is recreated here, as on any
        // request for it.
        let circuit = self.get_or_create(get.name, get.config);
        Box::pin(async move {
            let circuit = circuit.map_err(ManagerError::InvalidConfig)?;
            circuit
                .send(GetHandle)
                .await
                .map_err(|_| ManagerError::CircuitUnavailable(name))
        })
    }
}

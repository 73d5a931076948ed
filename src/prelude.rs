//! The everyday types, for one glob import: a circuit and its config, the
//! ways to call it and what they answer, its events, the manager and the
//! VIBEZEN integration facade, and the [`presets`] module.
//!
//! Everything here is a re-export; each item's home is the module it is
//! written in ([`circuit`](crate::circuit), [`manager`](crate::manager),
//! [`integration`](crate::integration), ...), where the rest of the crate
//! lives too.
//!
//! ```
//! use actix::Actor;
//! use vibezen_recovery::prelude::*;
//!
//! # #[actix::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = CircuitBreakerManager::new(CircuitBreakerConfig::default())?.start();
//! manager.send(GetBreaker::with_config("search", presets::search_service())).await??;
//!
//! let answer = manager.send(Call::new("search", async { Ok::<_, String>(42) })).await?;
//! assert_eq!(answer?, 42);
//!
//! // The same circuit by name, on this task, without a message per call.
//! let circuits = manager.send(GetRegistry).await?;
//! assert_eq!(circuits.call("search", async { Ok::<_, String>(43) }).await?, 43);
//!
//! let breaker = manager.send(GetBreaker::new("search")).await??;
//! let stats = breaker.send(Stats).await?;
//! assert_eq!(stats.state, CircuitState::Closed);
//! # Ok(())
//! # }
//! ```

pub use crate::circuit::{
    Acquire, CallError, CircuitBreaker, CircuitBreakerExt, CircuitBreakerOpenError, CircuitHandle,
    GetHandle, Permit, ProtectedCall, Reset, StateChanged, Stats, Subscribe,
};
pub use crate::config::CircuitBreakerConfig;
pub use crate::integration::{Fallback, Served, VibezenIntegration, WorkflowConfig};
pub use crate::manager::{
    Call, CircuitBreakerManager, GetBreaker, GetCircuitHandle, GetHealth, GetRegistry,
    ManagerError, Registry,
};
pub use crate::outcome::{Classification, Outcome};
pub use crate::presets;
pub use crate::state::CircuitState;

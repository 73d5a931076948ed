//! Noticing dead circuits and bringing them back.

use std::collections::BTreeMap;

use actix::{Addr, Context, Handler, Message, MessageResult};

use super::CircuitBreakerManager;
use crate::circuit::CircuitBreaker;

impl CircuitBreakerManager {
    /// The live circuit named `name`, recreated first if it died; `None` if
    /// there is no such circuit.
    pub(super) fn live(&mut self, name: &str) -> Option<Addr<CircuitBreaker>> {
        let supervised = self.circuits.get(name)?;
        if supervised.addr.connected() {
            return Some(supervised.addr.clone());
        }
        self.recreate(name)
    }

    fn recreate(&mut self, name: &str) -> Option<Addr<CircuitBreaker>> {
        let config = self.circuits.get(name)?.config.clone();
        match self.start_circuit(name, config) {
            Ok(addr) => {
                let supervised = self.circuits.get_mut(name)?;
                supervised.addr = addr.clone();
                supervised.restarts += 1;
                tracing::warn!(
                    circuit = %name,
                    restarts = supervised.restarts,
                    "circuit actor had stopped; recreated it CLOSED with empty statistics"
                );
                Some(addr)
            }
            Err(err) => {
                // Cannot happen: the name and config were accepted before.
                tracing::error!(circuit = %name, error = %err, "could not recreate circuit; removed it");
                self.circuits.remove(name);
                None
            }
        }
    }

    /// Recreates every circuit whose actor has stopped.
    pub(super) fn sweep(&mut self) {
        let dead: Vec<String> = self
            .circuits
            .iter()
            .filter(|(_, supervised)| !supervised.addr.connected())
            .map(|(name, _)| name.clone())
            .collect();
        for name in dead {
            self.recreate(&name);
        }
    }

    /// Every circuit, alive, sorted by name.
    pub(super) fn all_live(&mut self) -> Vec<(String, Addr<CircuitBreaker>)> {
        self.sweep();
        self.circuits
            .iter()
            .map(|(name, supervised)| (name.clone(), supervised.addr.clone()))
            .collect()
    }
}

/// Asks how many times each circuit's actor was found dead and recreated,
/// by name. A circuit that keeps coming back points at a bug in a protected
/// call's surroundings or at someone sending it [`Stop`](crate::circuit::Stop).
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::manager::GetRestarts;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = CircuitBreakerManager::default().start();
/// manager.send(GetBreaker::new("cache")).await??;
/// assert_eq!(manager.send(GetRestarts).await?["cache"], 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "BTreeMap<String, u64>")]
pub struct GetRestarts;

impl Handler<GetRestarts> for CircuitBreakerManager {
    type Result = MessageResult<GetRestarts>;

    // Reports what supervision has done so far; it does not sweep, so a
    // circuit that died since the last sweep is not counted yet.
    fn handle(&mut self, _: GetRestarts, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.circuits
                .iter()
                .map(|(name, supervised)| (name.clone(), supervised.restarts))
                .collect(),
        )
    }
}

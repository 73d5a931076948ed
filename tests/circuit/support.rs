//! Helpers shared by the circuit tests.

pub use crate::common::*;

use actix::prelude::*;
use tokio::sync::mpsc;
use vibezen_recovery::circuit::{
    CallError, CircuitBreaker, CircuitBreakerExt, StateChanged, Subscribe,
};
use vibezen_recovery::config::CircuitBreakerConfig;

/// A circuit on the test's own arbiter (the paused clock reaches no other).
pub fn start(config: CircuitBreakerConfig) -> Addr<CircuitBreaker> {
    CircuitBreaker::new("test", config)
        .expect("valid config")
        .start()
}

pub async fn fail(circuit: &Addr<CircuitBreaker>) -> Result<(), CallError<&'static str>> {
    circuit.call(async { Err::<(), _>("boom") }).await
}

pub async fn succeed(circuit: &Addr<CircuitBreaker>) -> Result<(), CallError<&'static str>> {
    circuit.call(async { Ok::<(), &'static str>(()) }).await
}

/// Subscribes a [`Recorder`] and returns the receiving end.
pub async fn record_events(
    circuit: &Addr<CircuitBreaker>,
) -> mpsc::UnboundedReceiver<StateChanged> {
    let (recipient, receiver) = recorder();
    circuit.send(Subscribe(recipient)).await.unwrap();
    receiver
}

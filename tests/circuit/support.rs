//! Helpers shared by the circuit tests.

use std::future::Future;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::mpsc;
use vibezen_recovery::{
    CallError, CircuitBreaker, CircuitBreakerConfig, CircuitBreakerExt, StateChanged, Subscribe,
};

/// Every test runs under this deadline, so a bug shows as a failure, not a
/// hang. On the paused clock an idle runtime jumps straight to it.
pub async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(24 * 3600), future)
        .await
        .expect("test deadline passed: something hangs")
}

/// Lets the circuit run its timers and finished calls: actix serves queued
/// messages before it polls timers and spawned futures.
pub async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

/// Moves the paused clock forward and lets everything due run.
pub async fn advance(by: Duration) {
    tokio::time::advance(by).await;
    settle().await;
}

pub fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

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

/// Forwards every event it receives to a channel the test reads.
pub struct Recorder(pub mpsc::UnboundedSender<StateChanged>);

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl Handler<StateChanged> for Recorder {
    type Result = ();

    fn handle(&mut self, event: StateChanged, _: &mut Context<Self>) {
        let _ = self.0.send(event);
    }
}

/// Subscribes a [`Recorder`] and returns the receiving end.
pub async fn record_events(
    circuit: &Addr<CircuitBreaker>,
) -> mpsc::UnboundedReceiver<StateChanged> {
    let (sender, receiver) = mpsc::unbounded_channel();
    circuit
        .send(Subscribe(Recorder(sender).start().recipient()))
        .await
        .unwrap();
    receiver
}

/// The next event, waiting (on the paused clock) as long as it takes.
pub async fn next_event(events: &mut mpsc::UnboundedReceiver<StateChanged>) -> StateChanged {
    within(events.recv()).await.expect("recorder alive")
}

/// Asserts that `elapsed` is `expected`, up to the one millisecond by which
/// tokio's timer wheel rounds every deadline up.
#[track_caller]
pub fn assert_elapsed(elapsed: Duration, expected: Duration) {
    assert!(
        elapsed >= expected && elapsed <= expected + Duration::from_millis(1),
        "expected {expected:?} to have passed, but {elapsed:?} did"
    );
}

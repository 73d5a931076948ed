//! Helpers shared by the integration tests.

pub use crate::common::*;

use std::sync::{Arc, Mutex};

use vibezen_recovery::circuit::CallError;
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::integration::{Served, VibezenIntegration, WorkflowConfig};

/// Circuits created on first call open after one failure, stay OPEN for 60 s
/// and close after two trial successes.
pub fn touchy() -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        failure_threshold: 1,
        ..Default::default()
    }
}

/// An integration on the test's own arbiter (the paused clock reaches no
/// other) whose circuits default to [`touchy`].
pub fn integration() -> VibezenIntegration {
    VibezenIntegration::new(WorkflowConfig {
        default_config: touchy(),
        ..Default::default()
    })
    .expect("valid workflow config")
}

/// A failing protected call. Like [`succeed`], it returns once the circuit
/// has taken the outcome in: a protected call runs on the caller's task, and
/// a trial's report reaches the circuit a message later, which must arrive
/// before a test moves the paused clock on.
pub async fn fail(vibezen: &VibezenIntegration, name: &str) -> CallError<&'static str> {
    let answer = vibezen
        .protected_call(name, async { Err::<(), _>("boom") }, None)
        .await;
    settle().await;
    match answer {
        Err(err) => err,
        Ok(served) => panic!("a failing call came back {served:?}"),
    }
}

pub async fn succeed(
    vibezen: &VibezenIntegration,
    name: &str,
) -> Result<Served<(), &'static str>, CallError<&'static str>> {
    let answer = vibezen
        .protected_call(name, async { Ok::<(), &'static str>(()) }, None)
        .await;
    settle().await;
    answer
}

/// A shared list of what happened, in order.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }

    pub fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// An async handler that records `entry` when it runs.
    pub fn handler(
        &self,
        entry: &'static str,
    ) -> impl Fn() -> std::future::Ready<()> + Send + 'static {
        let log = self.clone();
        move || {
            log.push(entry);
            std::future::ready(())
        }
    }
}

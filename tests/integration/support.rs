//! Helpers shared by the integration tests.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vibezen_recovery::{
    CallError, CircuitBreakerConfig, Served, VibezenIntegration, WorkflowConfig,
};

/// Every test runs under this deadline, so a bug shows as a failure, not a
/// hang. On the paused clock an idle runtime jumps straight to it.
pub async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(24 * 3600), future)
        .await
        .expect("test deadline passed: something hangs")
}

/// Lets the actors run what is queued: a state change travels from the
/// circuit to the handler runner, which then runs the handlers.
pub async fn settle() {
    for _ in 0..20 {
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

pub async fn fail(vibezen: &VibezenIntegration, name: &str) -> CallError<&'static str> {
    match vibezen
        .protected_call(name, async { Err::<(), _>("boom") }, None)
        .await
    {
        Err(err) => err,
        Ok(served) => panic!("a failing call came back {served:?}"),
    }
}

pub async fn succeed(
    vibezen: &VibezenIntegration,
    name: &str,
) -> Result<Served<(), &'static str>, CallError<&'static str>> {
    vibezen
        .protected_call(name, async { Ok::<(), &'static str>(()) }, None)
        .await
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

/// A folder of its own under the system's temporary folder, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "vibezen-integration-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create a temporary folder");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

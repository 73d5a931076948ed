//! Helpers shared by the manager tests.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::mpsc;
use vibezen_recovery::{
    Call, CallError, CircuitBreakerConfig, CircuitBreakerManager, StateChanged, SubscribeAll,
};

/// Every test runs under this deadline, so a bug shows as a failure, not a
/// hang. On the paused clock an idle runtime jumps straight to it.
pub async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(24 * 3600), future)
        .await
        .expect("test deadline passed: something hangs")
}

/// Lets the actors run what is queued: actix serves queued messages before
/// it polls timers and spawned futures, and a routed call takes two hops.
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

/// Opens after one failure; OPEN for 60 s; two trial successes close it.
pub fn touchy() -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        failure_threshold: 1,
        ..Default::default()
    }
}

/// A manager on the test's own arbiter (the paused clock reaches no other),
/// whose circuits default to `config`.
pub fn manager(config: CircuitBreakerConfig) -> Addr<CircuitBreakerManager> {
    CircuitBreakerManager::new(config)
        .expect("valid default config")
        .start()
}

pub async fn fail(
    manager: &Addr<CircuitBreakerManager>,
    name: &str,
) -> Result<(), CallError<&'static str>> {
    manager
        .send(Call::new(name, async { Err::<(), _>("boom") }))
        .await
        .expect("manager alive")
}

pub async fn succeed(
    manager: &Addr<CircuitBreakerManager>,
    name: &str,
) -> Result<(), CallError<&'static str>> {
    manager
        .send(Call::new(name, async { Ok::<(), &'static str>(()) }))
        .await
        .expect("manager alive")
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

/// Subscribes a [`Recorder`] to every circuit and returns the receiving end.
pub async fn record_all(
    manager: &Addr<CircuitBreakerManager>,
) -> mpsc::UnboundedReceiver<StateChanged> {
    let (sender, receiver) = mpsc::unbounded_channel();
    manager
        .send(SubscribeAll(Recorder(sender).start().recipient()))
        .await
        .unwrap();
    receiver
}

/// Every event received so far.
pub fn drain(events: &mut mpsc::UnboundedReceiver<StateChanged>) -> Vec<StateChanged> {
    let mut received = Vec::new();
    while let Ok(event) = events.try_recv() {
        received.push(event);
    }
    received
}

/// A folder of its own under the system's temporary folder, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "vibezen-manager-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create a temporary folder");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The names of the files in the folder, sorted.
    pub fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("read the temporary folder")
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `tracing` event as the tests look at it.
#[derive(Debug, Clone)]
pub struct LogEvent {
    pub level: tracing::Level,
    pub message: String,
    pub circuit: Option<String>,
}

/// The `tracing` events emitted on this thread (the test's arbiter, where
/// the manager and its circuits run) while the guard lives.
#[derive(Clone, Default)]
pub struct Logs(std::sync::Arc<std::sync::Mutex<Vec<LogEvent>>>);

impl Logs {
    pub fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let guard = tracing::subscriber::set_default(logs.clone());
        (logs, guard)
    }

    /// The warnings about `circuit`.
    pub fn warnings_about(&self, circuit: &str) -> Vec<LogEvent> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.level == tracing::Level::WARN && e.circuit.as_deref() == Some(circuit))
            .cloned()
            .collect()
    }
}

impl tracing::Subscriber for Logs {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        struct Fields<'a>(&'a mut LogEvent);
        impl tracing::field::Visit for Fields<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                match field.name() {
                    "message" => self.0.message = format!("{value:?}"),
                    "circuit" => self.0.circuit = Some(format!("{value:?}")),
                    _ => {}
                }
            }

            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "circuit" {
                    self.0.circuit = Some(value.to_owned());
                } else {
                    self.record_debug(field, &value);
                }
            }
        }
        let mut captured = LogEvent {
            level: *event.metadata().level(),
            message: String::new(),
            circuit: None,
        };
        event.record(&mut Fields(&mut captured));
        self.0.lock().unwrap().push(captured);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

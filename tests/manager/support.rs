//! Helpers shared by the manager tests.

pub use crate::common::*;

use actix::prelude::*;
use tokio::sync::mpsc;
use vibezen_recovery::circuit::{CallError, StateChanged};
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::manager::{Call, CircuitBreakerManager, SubscribeAll};

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

/// Subscribes a [`Recorder`] to every circuit and returns the receiving end.
pub async fn record_all(
    manager: &Addr<CircuitBreakerManager>,
) -> mpsc::UnboundedReceiver<StateChanged> {
    let (recipient, receiver) = recorder();
    manager.send(SubscribeAll(recipient)).await.unwrap();
    receiver
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
        self.about(tracing::Level::WARN, circuit)
    }

    /// The errors about `circuit`.
    pub fn errors_about(&self, circuit: &str) -> Vec<LogEvent> {
        self.about(tracing::Level::ERROR, circuit)
    }

    fn about(&self, level: tracing::Level, circuit: &str) -> Vec<LogEvent> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.level == level && e.circuit.as_deref() == Some(circuit))
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

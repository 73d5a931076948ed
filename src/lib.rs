//! Circuit breakers on actix actors: fault tolerance and graceful degradation
//! for calls to external services (AI APIs, caches, search, knowledge graphs).
//!
//! # The model
//!
//! A circuit watches the calls to one service. While the service behaves the
//! circuit is **CLOSED** and every call goes through. When calls fail —
//! `failure_threshold` failures in a row, or a failure rate of at least
//! `failure_rate_threshold` over a sliding window of at least `min_calls`
//! calls — the circuit **OPENs**: calls are rejected at once, without
//! touching the service, which gets time to recover and spares callers a
//! wait that would end in an error anyway. After `timeout` the circuit turns
//! **HALF_OPEN** on its own timer and lets a few trial calls through:
//! `success_threshold` successes close it, any failure opens it again. A
//! trial call that hangs loses its slot at its deadline, so a circuit never
//! stays half-open forever. After `reset_timeout` without calls a circuit
//! forgets old failures.
//!
//! # Functional core, actor shell
//!
//! The rules live in [`state_machine::StateMachine`], plain Rust driven by a
//! clock that is passed in. Each circuit is a [`CircuitBreaker`] actor that
//! owns one state machine, one timer, its subscribers and its history; it is
//! the only writer of its state. Every transition starts a new *generation*:
//! the outcome of a call admitted in an earlier generation is counted in the
//! totals but never drives the new state, so a slow call from before an
//! outage cannot close a circuit that has since opened.
//!
//! # Three ways to call, and one to listen
//!
//! - [`ProtectedCall`]: `addr.send(ProtectedCall::new(future)).await`; the
//!   future runs on the circuit's arbiter, concurrently with other calls,
//!   cut off at `call_timeout` and shielded from panics.
//!   [`CircuitBreakerExt::call`] folds the mailbox error into one `Result`.
//! - [`CircuitHandle`] (from [`GetHandle`]): the fast path. The circuit
//!   publishes its state in one atomic word; a handle admits or rejects from
//!   it, runs the future on your own task and counts the outcome in a
//!   per-thread slot, with no message and no allocation (about 11 ns). Only
//!   the outcome that crosses a threshold tells the actor, which stays the
//!   only writer of transitions, timers and events.
//! - [`Acquire`] a [`Permit`], do the work on your own task (for futures that
//!   are not `Send`, or blocking work), then report the outcome.
//! - [`Subscribe`] a recipient to [`StateChanged`] events to degrade and
//!   recover gracefully.
//!
//! ```
//! use std::time::Duration;
//! use actix::Actor;
//! use vibezen_recovery::{CallError, CircuitBreaker, CircuitBreakerConfig, CircuitBreakerExt};
//!
//! # #[actix::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = CircuitBreakerConfig { failure_threshold: 2, ..Default::default() };
//! let breaker = CircuitBreaker::new("ai_provider_openai", config)?.start();
//!
//! for _ in 0..2 {
//!     let _ = breaker.call(async { Err::<String, _>("503 Service Unavailable") }).await;
//! }
//! // Open now: the service is not even asked.
//! match breaker.call(async { Ok::<_, &str>("never runs".to_string()) }).await {
//!     Err(CallError::Open(open)) => assert!(open.retry_after().unwrap() <= Duration::from_secs(60)),
//!     other => panic!("expected a rejection, got {other:?}"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Many circuits
//!
//! A [`CircuitBreakerManager`] is a supervisor actor that owns named
//! circuits: [`GetBreaker`] gets or creates one, [`Call`] routes a call to
//! it by name, [`GetHealth`] scores the whole system (critical circuits
//! weigh more), [`ExportStats`] and [`ExportStatsToFile`] write every
//! circuit's statistics as JSON, and a circuit whose actor dies is recreated.
//! [`VibezenIntegration`] is the seed's facade on top: circuits from
//! [`presets`] or a JSON file, fallbacks, degradation and recovery handlers
//! (subscribers to [`StateChanged`], never callbacks inside a circuit), a
//! health report with recommendations, and `should_continue_workflow`. The
//! guide is `docs/manager.md`.
//!
//! Time comes from tokio's clock (`actix::clock::Instant`), so tests drive
//! circuits with `tokio::time::pause()` and `advance`; wall-clock timestamps
//! (`chrono`) appear only in events and statistics.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

// The README's examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

// So are those of the manager and integration guide.
#[cfg(doctest)]
#[doc = include_str!("../docs/manager.md")]
struct ManagerGuideDoctests;

mod circuit;
mod classifier;
mod config;
mod export;
mod fast_path;
mod health;
pub mod integration;
mod manager;
mod name;
pub mod outcome;
pub mod prelude;
pub mod presets;
pub mod rules;
mod seconds;
mod state;
pub mod state_machine;
mod totals;
mod transition;
mod window;

pub use circuit::{
    Acquire, CallError, CircuitBreaker, CircuitBreakerExt, CircuitBreakerOpenError, CircuitHandle,
    CircuitStats, GetHandle, HISTORY_LIMIT, MAX_SUBSCRIBER_BACKLOG, Permit, ProtectedCall, Reset,
    StateChanged, Stats, Stop, Subscribe, Unsubscribe,
};
pub use classifier::{Classifier, OkIsSuccess};
pub use config::{
    CircuitBreakerConfig, ConfigError, MAX_WINDOW_BUCKETS, MAX_WINDOW_CALLS, MIN_BUCKET,
    WindowConfig,
};
pub use export::{EXPORT_SCHEMA_VERSION, ExportError, StatsExport, WriteStep, write_atomically};
pub use health::{CRITICAL_WEIGHT, CircuitHealth, HealthSnapshot, circuit_score};
pub use integration::{
    CircuitsFile, CircuitsFileError, EntryError, Fallback, HealthReport, Served,
    VibezenIntegration, WorkflowConfig,
};
pub use manager::{
    AllStats, Call, CircuitBreakerManager, ExportStats, ExportStatsToFile, GetBreaker,
    GetCircuitHandle, GetHealth, GetRestarts, ManagerError, ResetAll, ResetCircuit, SWEEP_INTERVAL,
    SubscribeAll,
};
pub use name::{MAX_NAME_LEN, validate_circuit_name};
pub use outcome::{Classification, Outcome};
pub use presets::Preset;
pub use rules::RECLAIM_GRACE;
pub use seconds::MAX_DURATION;
pub use state::CircuitState;
pub use totals::CallTotals;
pub use transition::TransitionReason;

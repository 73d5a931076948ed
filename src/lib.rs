//! Circuit breakers on actix actors: fault tolerance and graceful degradation
//! for calls to external services (AI APIs, caches, search, knowledge graphs).
//!
//! # Where things are
//!
//! Everyday use needs one import, `use vibezen_recovery::prelude::*;`: the
//! [`prelude`] holds the circuit actor, its config, the ways to call it, its
//! errors and events, the manager, the integration facade and [`presets`].
//! Everything else lives in exactly one public module that mirrors the file
//! or folder it is written in: [`circuit`] (the actor, its messages and
//! handle), [`manager`], [`integration`], [`config`], [`name`], [`state`],
//! [`outcome`], [`classifier`], [`totals`], [`transition`], [`health`],
//! [`export`], [`presets`], and the functional core in [`rules`] and
//! [`state_machine`]. Nothing is re-exported at the crate root. The cargo
//! feature `actix-web` adds `web`: `CallError` and `ManagerError` as HTTP
//! responses, so that actix-web handlers take them out with `?`.
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
//! forgets old failures. During an incident an operator can take over: a
//! **FORCED_OPEN** circuit refuses every call and a **DISABLED** one admits
//! every call and never trips, until the operator releases it.
//!
//! # Functional core, actor shell
//!
//! Every decision of a circuit (admit, trial or refuse; by when a call must
//! end; whether an outcome opens or closes it) is written once, in
//! [`rules::Rules`], and every call path asks it. The state of one circuit
//! lives in [`state_machine::StateMachine`], plain Rust driven by a clock
//! that is passed in. Each circuit is a
//! [`CircuitBreaker`](circuit::CircuitBreaker) actor that owns one state
//! machine, one timer, its subscribers and its history; it is the only
//! writer of its state. Every transition starts a new *generation*: the
//! outcome of a call admitted in an earlier generation is counted in the
//! totals but never drives the new state, so a slow call from before an
//! outage cannot close a circuit that has since opened.
//!
//! # Four ways to call, and one to listen
//!
//! - [`ProtectedCall`](circuit::ProtectedCall):
//!   `addr.send(ProtectedCall::new(future)).await`; the future runs on the
//!   circuit's arbiter, concurrently with other calls, cut off at
//!   `call_timeout` and shielded from panics.
//!   [`CircuitBreakerExt::call`](circuit::CircuitBreakerExt::call) folds the
//!   mailbox error into one `Result`.
//! - [`CircuitHandle`](circuit::CircuitHandle) (from
//!   [`GetHandle`](circuit::GetHandle)): the fast path. The circuit
//!   publishes its state in one atomic word; a handle admits or rejects from
//!   it, runs the future on your own task and counts the outcome in a
//!   per-thread slot, with no message and no allocation. Only the outcome
//!   that crosses a threshold tells the actor, which stays the only writer
//!   of transitions, timers and events.
//! - [`Registry`](manager::Registry) (from a manager's
//!   [`GetRegistry`](manager::GetRegistry)): the fast path by name,
//!   VIBEZEN's `manager.call("database", ...)` on your own task; the
//!   integration's
//!   [`protected_call`](integration::VibezenIntegration::protected_call)
//!   goes this way, so an actix-web handler's awc request runs on its worker
//!   (docs/actix-web.md).
//! - [`Acquire`](circuit::Acquire) a [`Permit`](circuit::Permit), do the
//!   work on your own task (for futures that are not `Send`, or blocking
//!   work), then report the outcome.
//!
//! All four accept the same [`Classifier`](classifier::Classifier) and
//! honour `call_timeout` by the same rule
//! ([`Rules::is_late`](rules::Rules::is_late)).
//! - [`Subscribe`](circuit::Subscribe) a recipient to
//!   [`StateChanged`](circuit::StateChanged) events to degrade and recover
//!   gracefully; without writing an actor, a closure
//!   ([`Subscribe::closure`](circuit::Subscribe::closure)) or a bounded
//!   channel ([`Subscribe::channel`](circuit::Subscribe::channel)), under
//!   the same rules.
//!
//! ```
//! use std::time::Duration;
//! use actix::Actor;
//! use vibezen_recovery::prelude::*;
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
//! A [`CircuitBreakerManager`](manager::CircuitBreakerManager) is a
//! supervisor actor that owns named circuits:
//! [`GetBreaker`](manager::GetBreaker) gets or creates one,
//! [`Call`](manager::Call) routes a call to it by name,
//! [`GetHealth`](manager::GetHealth) scores the whole system (critical
//! circuits weigh more), [`ExportStats`](manager::ExportStats) and
//! [`ExportStatsToFile`](manager::ExportStatsToFile) write every circuit's
//! statistics as JSON, and a circuit whose actor dies is recreated.
//! [`VibezenIntegration`](integration::VibezenIntegration) is the facade on
//! top, VIBEZEN's `VIBEZENCircuitBreakerIntegration` in Rust: circuits from
//! [`presets`] or a JSON file, fallbacks, degradation and recovery handlers
//! (subscribers to [`StateChanged`](circuit::StateChanged), never callbacks
//! inside a circuit), a
//! health report with recommendations, and `should_continue_workflow`. The
//! guide is `docs/manager.md`.
//!
//! Time comes from tokio's clock (`actix::clock::Instant`), so tests drive
//! circuits with `tokio::time::pause()` and `advance`; wall-clock timestamps
//! (`chrono`) appear only in events and statistics.
#![forbid(unsafe_code)]
#![warn(unnameable_types)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

// The README's examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

// So are those of the manager and integration guide.
#[cfg(doctest)]
#[doc = include_str!("../docs/manager.md")]
struct ManagerGuideDoctests;

pub mod circuit;
pub mod classifier;
pub mod config;
pub mod export;
mod fast_path;
pub mod health;
pub mod integration;
pub mod manager;
pub mod name;
pub mod outcome;
pub mod prelude;
pub mod presets;
pub mod rules;
mod seconds;
pub mod state;
pub mod state_machine;
mod system;
pub mod totals;
pub mod transition;
#[cfg(feature = "actix-web")]
pub mod web;
mod window;

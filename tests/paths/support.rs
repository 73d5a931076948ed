//! One way to run a call through any of the four paths, and what the cases
//! read back from the circuit.

pub use crate::common::*;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::prelude::*;
use vibezen_recovery::circuit::{
    Acquire, CallError, CircuitBreaker, CircuitHandle, GetHandle, ProtectedCall, Stats,
};
use vibezen_recovery::classifier::Classifier;
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::manager::{Call, CircuitBreakerManager, GetBreaker};
use vibezen_recovery::outcome::{Classification, Outcome};
use vibezen_recovery::state::CircuitState;

/// The circuit every case calls through.
pub const NAME: &str = "paths";

/// How a caller reaches a circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// `addr.send(ProtectedCall::new(future).classify_with(classifier))`.
    Message,
    /// `addr.send(Acquire)`, the future awaited on the test's task, then
    /// `permit.record_with(&result, classifier)`.
    Permit,
    /// `handle.call_with(ProtectedCall::new(future).classify_with(classifier))`.
    Handle,
    /// `manager.send(Call::protected(NAME, ProtectedCall::new(future).classify_with(classifier)))`.
    Manager,
}

impl Path {
    pub const ALL: [Path; 4] = [Path::Message, Path::Permit, Path::Handle, Path::Manager];

    /// Whether the circuit itself cuts a call off at its deadline (and the
    /// caller gets `CallError::Timeout`). On the permit path the caller runs
    /// the work and gets its own result; the circuit only counts it.
    pub fn cuts_off(self) -> bool {
        self != Path::Permit
    }
}

/// Runs `case` on `path` on tokio's paused clock, under the test deadline.
pub async fn on_paused_clock<F, Fut>(case: F, path: Path)
where
    F: FnOnce(Path) -> Fut,
    Fut: Future<Output = ()>,
{
    tokio::time::pause();
    within(case(path)).await;
}

/// A circuit named [`NAME`] created by its own manager (on the test's
/// arbiter, where the paused clock reaches), reachable by one path.
pub struct Target {
    pub path: Path,
    pub manager: Addr<CircuitBreakerManager>,
    pub circuit: Addr<CircuitBreaker>,
    /// Only for [`Path::Handle`]: asking for a handle gives the circuit a
    /// fast path, which the other paths should not run beside.
    handle: Option<CircuitHandle>,
}

impl Target {
    /// A fresh circuit with `config`, reached through `path`.
    pub async fn new(path: Path, config: CircuitBreakerConfig) -> Target {
        let manager = CircuitBreakerManager::new(config)
            .expect("valid config")
            .start();
        let circuit = manager
            .send(GetBreaker::new(NAME))
            .await
            .expect("manager alive")
            .expect("valid name");
        let handle = match path {
            Path::Handle => Some(circuit.send(GetHandle).await.expect("circuit alive")),
            _ => None,
        };
        Target {
            path,
            manager,
            circuit,
            handle,
        }
    }

    /// Makes one protected call through this target's path, the outcome
    /// judged by `classifier`, and returns what the caller gets.
    ///
    /// On the permit path the future runs here, on the test's task, to its
    /// end, however long it takes; its result is reported with
    /// `classifier`, and a report at or after the permit's deadline is the
    /// crate's to turn into a timeout. A refused permit never polls the
    /// future.
    pub async fn run<F, C, T, E>(&self, future: F, classifier: C) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        C: Classifier<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        match self.path {
            Path::Message => self
                .circuit
                .send(ProtectedCall::new(future).classify_with(classifier))
                .await
                .expect("circuit alive"),
            Path::Permit => {
                let permit = match self.circuit.send(Acquire).await.expect("circuit alive") {
                    Ok(permit) => permit,
                    Err(open) => return Err(CallError::Open(open)),
                };
                let result = future.await;
                permit.record_with(&result, classifier);
                result.map_err(CallError::Failed)
            }
            Path::Handle => {
                let handle = self.handle.as_ref().expect("a handle target has a handle");
                handle
                    .call_with(ProtectedCall::new(future).classify_with(classifier))
                    .await
            }
            Path::Manager => self
                .manager
                .send(Call::protected(
                    NAME,
                    ProtectedCall::new(future).classify_with(classifier),
                ))
                .await
                .expect("manager alive"),
        }
    }

    /// What the circuit has counted, once everything queued has run.
    pub async fn counts(&self) -> Counts {
        settle().await;
        let stats = self.circuit.send(Stats).await.expect("circuit alive");
        Counts {
            state: stats.state,
            successes: stats.totals[Outcome::Success],
            failures: stats.totals[Outcome::Failure],
            timeouts: stats.totals[Outcome::Timeout],
            panics: stats.totals[Outcome::Panic],
            ignored: stats.totals[Outcome::Ignored],
            cancelled: stats.totals[Outcome::Cancelled],
            rejections: stats.totals.rejections,
            in_flight: stats.in_flight,
            consecutive_failures: stats.consecutive_failures,
        }
    }
}

/// A circuit's statistics as the cases compare them: every outcome counter,
/// so that an outcome counted as the wrong kind shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub state: CircuitState,
    pub successes: u64,
    pub failures: u64,
    pub timeouts: u64,
    pub panics: u64,
    pub ignored: u64,
    pub cancelled: u64,
    pub rejections: u64,
    pub in_flight: u64,
    pub consecutive_failures: u32,
}

impl Counts {
    /// A CLOSED circuit that has counted nothing.
    pub const CLOSED: Counts = Counts {
        state: CircuitState::Closed,
        successes: 0,
        failures: 0,
        timeouts: 0,
        panics: 0,
        ignored: 0,
        cancelled: 0,
        rejections: 0,
        in_flight: 0,
        consecutive_failures: 0,
    };
}

/// Asserts what `target`'s circuit has counted, naming the path.
#[track_caller]
pub fn assert_counts(target: &Target, counts: Counts, expected: Counts) {
    assert_eq!(
        counts, expected,
        "the {:?} path counted differently",
        target.path
    );
}

/// The answer to a call, as the cases write it down.
pub type Answer = Result<u32, CallError<&'static str>>;

/// Asserts that the caller got `Ok(value)`.
#[track_caller]
pub fn assert_ok(path: Path, answer: Answer, value: u32) {
    assert!(
        matches!(answer, Ok(v) if v == value),
        "{path:?}: expected Ok({value}), got {answer:?}"
    );
}

/// Asserts that the caller got the service's own error, unchanged.
#[track_caller]
pub fn assert_failed(path: Path, answer: Answer, error: &str) {
    assert!(
        matches!(answer, Err(CallError::Failed(e)) if e == error),
        "{path:?}: expected Err(Failed({error:?})), got {answer:?}"
    );
}

/// Asserts that the caller was turned away by a circuit in `state`.
#[track_caller]
pub fn assert_rejected(path: Path, answer: Answer, state: CircuitState) {
    assert!(
        matches!(&answer, Err(CallError::Open(open)) if open.state() == state),
        "{path:?}: expected a rejection in {state:?}, got {answer:?}"
    );
}

/// Asserts that the caller was cut off after `limit`.
#[track_caller]
pub fn assert_timed_out(path: Path, answer: Answer, limit: Duration) {
    assert!(
        matches!(answer, Err(CallError::Timeout(l)) if l == limit),
        "{path:?}: expected Err(Timeout({limit:?})), got {answer:?}"
    );
}

/// A future that answers `result` at once, and the flag it raises when
/// polled.
pub fn flagged(
    result: Result<u32, &'static str>,
) -> (
    Arc<AtomicBool>,
    impl Future<Output = Result<u32, &'static str>> + Send + 'static,
) {
    let polled = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&polled);
    let future = async move {
        flag.store(true, Ordering::SeqCst);
        result
    };
    (polled, future)
}

/// Whether a [`flagged`] future was polled.
pub fn was_polled(flag: &AtomicBool) -> bool {
    flag.load(Ordering::SeqCst)
}

/// A future that answers `result` at once.
pub async fn now(result: Result<u32, &'static str>) -> Result<u32, &'static str> {
    result
}

/// A future that answers `result` after `after` (on the paused clock).
pub async fn slow(after: Duration, result: Result<u32, &'static str>) -> Result<u32, &'static str> {
    tokio::time::sleep(after).await;
    result
}

/// A named classifier type, as several call sites would share it: a "404"
/// is no sign of an outage (ignored); any other error is a failure, any
/// `Ok` a success.
#[derive(Debug, Clone, Copy)]
pub struct NotFoundIsNoOutage;

impl Classifier<u32, &'static str> for NotFoundIsNoOutage {
    fn classify(&self, result: &Result<u32, &'static str>) -> Classification {
        match result {
            Err(e) if e.starts_with("404") => Classification::Ignored,
            Err(_) => Classification::Failure,
            Ok(_) => Classification::Success,
        }
    }
}

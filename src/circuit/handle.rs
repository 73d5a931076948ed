//! The fast path: call through a circuit without a message per call.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::clock::Instant;
use actix::{Addr, Context, Handler, MailboxError, Message, MessageResult};

use super::guard::{Deadline, guarded, settle};
use super::permit::Acquire;
use super::{CallError, CircuitBreaker, CircuitBreakerOpenError};
use crate::config::WindowConfig;
use crate::outcome::Outcome;
use crate::published::{Counter, Published, Slots, Word};
use crate::state::CircuitState;
use crate::state_machine::TransitionReason;

/// Asks a circuit for a [`CircuitHandle`].
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "CircuitHandle")]
pub struct GetHandle;

impl Handler<GetHandle> for CircuitBreaker {
    type Result = MessageResult<GetHandle>;

    fn handle(&mut self, _: GetHandle, ctx: &mut Context<Self>) -> Self::Result {
        let now = self.now(ctx);
        let slots = self.machine.fast_path_slots(now);
        // Folding the handles' counters in runs on the circuit's timer.
        self.publish(ctx, now);
        let config = self.machine.config();
        MessageResult(CircuitHandle {
            inner: Arc::new(Inner {
                name: self.name,
                published: Arc::clone(self.machine.published()),
                slots,
                circuit: actix::AsyncContext::address(ctx),
                call_timeout: config.call_timeout,
                failure_threshold: config.failure_threshold,
                rate: RateRule {
                    threshold: config.failure_rate_threshold,
                    min_calls: u64::from(config.min_calls),
                    window_size: match config.window {
                        WindowConfig::Count { size } => Some(u64::from(size)),
                        WindowConfig::Time { .. } => None,
                    },
                },
            }),
        })
    }
}

/// A fast-path caller saw a threshold crossed in `generation` and marked
/// the circuit pending; the circuit opens.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Trip {
    generation: u64,
    reason: TransitionReason,
    at: Instant,
}

impl Handler<Trip> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, trip: Trip, ctx: &mut Context<Self>) {
        let now = self.now(ctx);
        self.machine
            .trip(trip.generation, trip.reason, trip.at.into_std(), now);
        self.publish(ctx, now);
    }
}

/// A cloneable, `Send + Sync` handle that calls through a circuit on the
/// caller's own task, without a message per call.
///
/// Get one with `addr.send(GetHandle).await`. The circuit actor stays the
/// only writer of its state, timers and events; the handle reads the state
/// it publishes and counts outcomes in per-thread counters the actor folds
/// in:
///
/// - CLOSED: admitted from the published state word (one atomic load), the
///   outcome counted in this thread's slot (no shared cache line written, no
///   allocation). Only a failure that reaches a threshold sends a message.
/// - OPEN (or a trip on its way): rejected from the published word, with no
///   message, no allocation and no clock read.
/// - HALF_OPEN: a trial permit from the actor, so `half_open_max_calls`
///   stays exact.
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::{CircuitBreaker, CircuitBreakerConfig, GetHandle};
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let breaker = CircuitBreaker::new("cache", CircuitBreakerConfig::default())?.start();
/// let handle = breaker.send(GetHandle).await?;
/// let value = handle.call(async { Ok::<_, String>(7) }).await;
/// assert_eq!(value.ok(), Some(7));
/// # Ok(())
/// # }
/// ```
///
/// What changes under concurrency is written down in `docs/performance.md`:
/// "consecutive" failures are consecutive in the order outcomes are
/// recorded; the failure rate of outcomes recorded on the fast path is
/// estimated between folds.
#[derive(Clone)]
pub struct CircuitHandle {
    inner: Arc<Inner>,
}

struct Inner {
    name: &'static str,
    published: Arc<Published>,
    slots: Arc<Slots>,
    circuit: Addr<CircuitBreaker>,
    call_timeout: Option<Duration>,
    failure_threshold: u32,
    rate: RateRule,
}

#[derive(Debug, Clone, Copy)]
struct RateRule {
    threshold: f64,
    min_calls: u64,
    /// A count window's size; `None` for a time window.
    window_size: Option<u64>,
}

impl CircuitHandle {
    /// The circuit's name.
    pub fn name(&self) -> &str {
        self.inner.name
    }

    /// The circuit's state as last published. A trip on its way reads as
    /// OPEN.
    pub fn state(&self) -> CircuitState {
        let word = self.inner.published.word();
        if word.is_pending() {
            CircuitState::Open
        } else {
            word.state()
        }
    }

    /// Runs `future` through the circuit, on the caller's task.
    ///
    /// The future is polled here, so it need not be `Send`; it is cut off at
    /// `call_timeout` if one is set (which costs a clock read and a timer per
    /// call), and a panic inside it is caught and counted. Dropping the
    /// returned future before it ends counts the call as cancelled.
    pub async fn call<F, T, E>(&self, future: F) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        let inner = &*self.inner;
        let word = inner.published.word();
        if !word.admits() {
            return self.not_admitted(word, future).await;
        }
        inner.slots.add(Counter::Admitted);
        let admission = Admission {
            inner,
            word,
            finished: false,
        };
        let deadline = inner.call_timeout.map(|limit| Deadline {
            at: Instant::now() + limit,
            limit,
        });
        let (outcome, result) = settle(guarded(future, deadline).await, None);
        admission.finish(outcome);
        result
    }

    /// The cold paths: rejection, a stopped circuit, a half-open trial.
    #[cold]
    async fn not_admitted<F, T, E>(&self, word: Word, future: F) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        let inner = &*self.inner;
        if word.is_stopped() {
            return Err(CallError::Unavailable(MailboxError::Closed));
        }
        if word.state() == CircuitState::HalfOpen && !word.is_pending() {
            return self.trial(future).await;
        }
        inner.slots.add(Counter::Rejection);
        let retry_at = if word.is_pending() {
            None
        } else {
            inner.published.open_until()
        };
        Err(CallError::Open(CircuitBreakerOpenError::new(
            inner.name,
            CircuitState::Open,
            retry_at.map(Instant::from_std),
        )))
    }

    /// A HALF_OPEN trial: the permit comes from the actor, which keeps the
    /// count of trials in flight exact; the work runs here.
    async fn trial<F, T, E>(&self, future: F) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        let permit = match self.inner.circuit.send(Acquire).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(open)) => return Err(CallError::Open(open)),
            Err(mailbox) => return Err(CallError::Unavailable(mailbox)),
        };
        let deadline = permit.deadline().map(|at| Deadline {
            at,
            limit: at.saturating_duration_since(Instant::now()),
        });
        let (outcome, result) = settle(guarded(future, deadline).await, None);
        permit.report_outcome(outcome);
        result
    }
}

/// A fast-path call in progress; counts it cancelled if dropped unfinished.
struct Admission<'a> {
    inner: &'a Inner,
    word: Word,
    finished: bool,
}

impl Admission<'_> {
    fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        let inner = self.inner;
        // An outcome that arrives after its generation ended is counted, but
        // must not drive the new state.
        let current = inner.published.word().generation() == self.word.generation();
        match outcome {
            Outcome::Success => {
                inner.slots.add(Counter::Success);
                if current {
                    inner.published.run_success(self.word.generation());
                } else {
                    inner.slots.add(Counter::StaleSuccess);
                }
            }
            Outcome::Failure | Outcome::Timeout | Outcome::Panic => {
                inner.slots.add(match outcome {
                    Outcome::Failure => Counter::Failure,
                    Outcome::Timeout => Counter::Timeout,
                    _ => Counter::Panic,
                });
                if current {
                    inner.failed(self.word);
                } else {
                    inner.slots.add(Counter::StaleFailure);
                }
            }
            Outcome::Ignored => inner.slots.add(Counter::Ignored),
            Outcome::Cancelled => inner.slots.add(Counter::Cancelled),
        }
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.inner.slots.add(Counter::Cancelled);
        }
    }
}

impl Inner {
    /// A failure in the generation of `word`: does it cross a threshold?
    #[cold]
    fn failed(&self, word: Word) {
        let reason = match self.published.run_failure(word.generation()) {
            None => return,
            Some(count) if count >= self.failure_threshold => {
                TransitionReason::ConsecutiveFailures { count }
            }
            Some(_) => match self.failure_rate_crossed() {
                Some(reason) => reason,
                None => return,
            },
        };
        // One caller wins the pending bit: from then on every call is
        // refused at once, and that caller alone tells the actor.
        if self.published.mark_pending(word) {
            self.circuit.do_send(Trip {
                generation: word.generation(),
                reason,
                at: Instant::now(),
            });
        }
    }

    /// Estimates the window's failure rate now: what the actor last folded
    /// in, plus what the slots counted since. A count window drops the
    /// oldest folded outcomes in proportion to make room for newer ones.
    fn failure_rate_crossed(&self) -> Option<TransitionReason> {
        let base = self.published.rate_base();
        let now = self.slots.totals().window();
        let fresh_failures = now.failures.saturating_sub(base.folded.failures);
        let fresh = now.successes.saturating_sub(base.folded.successes) + fresh_failures;
        let (mut calls, mut failures) = (
            base.window_calls + fresh,
            base.window_failures + fresh_failures,
        );
        if let Some(size) = self.rate.window_size.filter(|&size| calls > size) {
            if fresh >= size {
                failures = fresh_failures * size / fresh;
            } else {
                let kept = size - fresh;
                failures = fresh_failures + base.window_failures * kept / base.window_calls.max(1);
            }
            calls = size;
        }
        if calls < self.rate.min_calls || calls == 0 {
            return None;
        }
        let rate = failures as f64 / calls as f64;
        (rate >= self.rate.threshold).then_some(TransitionReason::FailureRate { rate, calls })
    }
}

impl fmt::Debug for CircuitHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitHandle")
            .field("circuit", &self.inner.name)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

//! The fast path: call through a circuit without a message per call.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use actix::clock::{Instant, Sleep};
use actix::dev::Request;
use actix::{Addr, Handler, MailboxError, Message, MessageResult};
use pin_project_lite::pin_project;

use super::guard::{Ended, settle};
use super::permit::{Acquire, Permit};
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

    fn handle(&mut self, _: GetHandle, ctx: &mut actix::Context<Self>) -> Self::Result {
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

    fn handle(&mut self, trip: Trip, ctx: &mut actix::Context<Self>) {
        let now = Instant::now().into_std();
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
    /// The returned future decides admission when first polled and polls
    /// `future` in place, so `future` need not be `Send` (and the call is
    /// `Send` when it is). Dropping it before it ends counts the call as
    /// cancelled.
    ///
    /// Two things differ from [`ProtectedCall`](crate::ProtectedCall), both
    /// because the work runs in the caller's own task rather than on the
    /// circuit's arbiter:
    /// - A panic in `future` is counted as a panic (a failure) and then
    ///   unwinds into the caller's task, as it would with no circuit; it is
    ///   not turned into [`CallError::Panicked`]. Catching it costs about
    ///   6 ns per call, which the fast path does not charge to every call.
    /// - `call_timeout`, if set, costs a clock read, a timer and one
    ///   allocation per call; outside a tokio runtime no timer can be set,
    ///   so the call runs to its end (a late trial still loses its slot at
    ///   the circuit).
    pub fn call<F, T, E>(&self, future: F) -> HandleCall<'_, F>
    where
        F: Future<Output = Result<T, E>>,
    {
        HandleCall {
            inner: &self.inner,
            future: Some(future),
            deadline: None,
            trial: None,
            stage: Stage::Fresh,
            polling: false,
        }
    }
}

pin_project! {
    /// The future of [`CircuitHandle::call`].
    #[must_use = "futures do nothing unless polled"]
    pub struct HandleCall<'a, F> {
        inner: &'a Inner,
        // The caller's future, polled in place; dropped as soon as it ends.
        #[pin]
        future: Option<F>,
        // Set when the call has a deadline and a tokio runtime is there.
        deadline: Option<Pin<Box<Sleep>>>,
        // A HALF_OPEN trial: the rare path, boxed to keep the common one small.
        trial: Option<Box<Trial>>,
        stage: Stage,
        // True while the caller's future is being polled: if it is still
        // true when the call is dropped, that poll panicked.
        polling: bool,
    }

    impl<F> PinnedDrop for HandleCall<'_, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let outcome = if *this.polling { Outcome::Panic } else { Outcome::Cancelled };
            match std::mem::replace(this.stage, Stage::Done) {
                Stage::Closed(word) => this.inner.finish(word, outcome),
                // A trial's permit reports a cancellation by itself when dropped.
                Stage::Trial => {
                    if let Some(trial) = this.trial.take() {
                        if let Trial::Running { permit, .. } = *trial {
                            permit.report_outcome(outcome);
                        }
                    }
                }
                Stage::Fresh | Stage::Done => {}
            }
        }
    }
}

/// Where a [`HandleCall`] is. `Copy`, so that moving between stages never
/// runs drop glue.
#[derive(Clone, Copy)]
enum Stage {
    /// Not polled yet.
    Fresh,
    /// Admitted in CLOSED, in the generation of this word.
    Closed(Word),
    /// A HALF_OPEN trial, in `HandleCall::trial`.
    Trial,
    /// Answered.
    Done,
}

enum Trial {
    Asking(Pin<Box<Request<CircuitBreaker, Acquire>>>),
    Running { permit: Permit, limit: Duration },
}

impl<F, T, E> Future for HandleCall<'_, F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, CallError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match *this.stage {
                Stage::Fresh => {
                    let word = this.inner.published.word();
                    if !word.admits() {
                        if let Some(refused) = this.inner.refuse(word) {
                            *this.stage = Stage::Done;
                            return Poll::Ready(Err(refused));
                        }
                        *this.trial = Some(this.inner.ask_for_trial());
                        *this.stage = Stage::Trial;
                        continue;
                    }
                    this.inner.slots.add(Counter::Admitted);
                    *this.stage = Stage::Closed(word);
                    if let Some(limit) = this.inner.call_timeout {
                        *this.deadline = timer(Instant::now() + limit);
                    }
                }
                Stage::Closed(word) => {
                    let limit = this.inner.call_timeout.unwrap_or_default();
                    let ended = ready!(poll_once(
                        this.future.as_mut(),
                        this.polling,
                        this.deadline,
                        limit,
                        cx
                    ));
                    this.future.set(None);
                    *this.stage = Stage::Done;
                    // The common endings settled in place: `settle` out of
                    // line returns the result through memory.
                    let (outcome, result) = match ended {
                        Ended::Completed(Ok(value)) => (Outcome::Success, Ok(value)),
                        Ended::Completed(Err(error)) => {
                            (Outcome::Failure, Err(CallError::Failed(error)))
                        }
                        ended => settle(ended, None),
                    };
                    this.inner.finish(word, outcome);
                    return Poll::Ready(result);
                }
                Stage::Trial => {
                    let Some(trial) = this.trial.as_mut() else {
                        panic!("HandleCall in a trial without one")
                    };
                    let ended = match &mut **trial {
                        Trial::Asking(request) => {
                            let permit = match ready!(request.as_mut().poll(cx)) {
                                Ok(Ok(permit)) => permit,
                                Ok(Err(open)) => {
                                    *this.stage = Stage::Done;
                                    *this.trial = None;
                                    return Poll::Ready(Err(CallError::Open(open)));
                                }
                                Err(mailbox) => {
                                    *this.stage = Stage::Done;
                                    *this.trial = None;
                                    return Poll::Ready(Err(CallError::Unavailable(mailbox)));
                                }
                            };
                            let limit = match permit.deadline() {
                                Some(at) => {
                                    *this.deadline = timer(at);
                                    at.saturating_duration_since(Instant::now())
                                }
                                None => Duration::ZERO,
                            };
                            **trial = Trial::Running { permit, limit };
                            continue;
                        }
                        Trial::Running { limit, .. } => {
                            ready!(poll_once(
                                this.future.as_mut(),
                                this.polling,
                                this.deadline,
                                *limit,
                                cx
                            ))
                        }
                    };
                    this.future.set(None);
                    let (outcome, result) = settle(ended, None);
                    *this.stage = Stage::Done;
                    if let Some(Trial::Running { permit, .. }) =
                        this.trial.take().map(|trial| *trial)
                    {
                        permit.report_outcome(outcome);
                    }
                    return Poll::Ready(result);
                }
                Stage::Done => panic!("HandleCall polled after it completed"),
            }
        }
    }
}

/// A timer for `at`, if there is a tokio runtime to run it.
fn timer(at: Instant) -> Option<Pin<Box<Sleep>>> {
    tokio::runtime::Handle::try_current()
        .is_ok()
        .then(|| Box::pin(tokio::time::sleep_until(at)))
}

/// Polls the caller's future once, then the deadline.
///
/// A panic in the caller's future is not caught here: on the fast path the
/// future runs in the caller's own task, so its panic unwinds there as it
/// would without a circuit (and costs nothing when there is none). `polling`
/// stays set, and the call's drop counts the panic.
#[inline]
fn poll_once<F: Future>(
    future: Pin<&mut Option<F>>,
    polling: &mut bool,
    deadline: &mut Option<Pin<Box<Sleep>>>,
    limit: Duration,
    cx: &mut Context<'_>,
) -> Poll<Ended<F::Output>> {
    let Some(future) = future.as_pin_mut() else {
        panic!("HandleCall polled after its future ended")
    };
    *polling = true;
    let polled = future.poll(cx);
    *polling = false;
    if let Poll::Ready(output) = polled {
        return Poll::Ready(Ended::Completed(output));
    }
    match deadline.as_mut().map(|sleep| sleep.as_mut().poll(cx)) {
        Some(Poll::Ready(())) => Poll::Ready(Ended::TimedOut(limit)),
        _ => Poll::Pending,
    }
}

impl Inner {
    /// A call the published word does not admit, refused at once; `None`
    /// in HALF_OPEN (with no trip pending), where the call asks the actor
    /// for a trial permit. Inline, so that the refusal is built in the
    /// caller's return slot.
    #[inline]
    fn refuse<E>(&self, word: Word) -> Option<CallError<E>> {
        if word.is_stopped() {
            return Some(CallError::Unavailable(MailboxError::Closed));
        }
        if word.state() == CircuitState::HalfOpen && !word.is_pending() {
            return None;
        }
        self.slots.add(Counter::Rejection);
        let retry_at = if word.is_pending() {
            None
        } else {
            self.published.open_until()
        };
        Some(CallError::Open(CircuitBreakerOpenError::new(
            self.name,
            CircuitState::Open,
            retry_at.map(Instant::from_std),
        )))
    }

    /// Asks the actor for a HALF_OPEN trial permit.
    #[cold]
    fn ask_for_trial(&self) -> Box<Trial> {
        Box::new(Trial::Asking(Box::pin(self.circuit.send(Acquire))))
    }

    /// Counts how an admitted CLOSED call ended. An outcome that arrives
    /// after its generation ended is counted, but must not drive the new
    /// state.
    #[inline]
    fn finish(&self, word: Word, outcome: Outcome) {
        if outcome == Outcome::Success && self.published.word().generation() == word.generation() {
            self.slots.add(Counter::Success);
            self.published.run_success(word.generation());
        } else {
            self.finish_other(word, outcome);
        }
    }

    #[inline(never)]
    fn finish_other(&self, word: Word, outcome: Outcome) {
        let current = self.published.word().generation() == word.generation();
        match outcome {
            Outcome::Success => {
                self.slots.add(Counter::Success);
                if current {
                    self.published.run_success(word.generation());
                } else {
                    self.slots.add(Counter::StaleSuccess);
                }
            }
            Outcome::Failure | Outcome::Timeout | Outcome::Panic => {
                self.slots.add(match outcome {
                    Outcome::Failure => Counter::Failure,
                    Outcome::Timeout => Counter::Timeout,
                    _ => Counter::Panic,
                });
                if current {
                    self.failed(word);
                } else {
                    self.slots.add(Counter::StaleFailure);
                }
            }
            Outcome::Ignored => self.slots.add(Counter::Ignored),
            Outcome::Cancelled => self.slots.add(Counter::Cancelled),
        }
    }

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

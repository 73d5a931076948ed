//! The fast path: call through a circuit without a message per call.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix::clock::Instant;
use actix::{Addr, Handler, MailboxError, Message, MessageResult};
use pin_project_lite::pin_project;

use super::call_state::{CallState, Trial};
use super::permit::AcquireGuarded;
use super::{CallError, CircuitBreaker, CircuitBreakerOpenError, ProtectedCall};
use crate::classifier::{Classifier, OkIsSuccess};
use crate::config::WindowConfig;
use crate::fast_path::FastPath;
use crate::fast_path::published::Published;
use crate::fast_path::slots::{Count, Slots};
use crate::fast_path::word::Word;
use crate::outcome::Outcome;
use crate::rules::{Admission, Rules};
use crate::state::CircuitState;
use crate::window::WindowCounts;

/// Asks a circuit for a [`CircuitHandle`].
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "CircuitHandle")]
pub struct GetHandle;

impl Handler<GetHandle> for CircuitBreaker {
    type Result = MessageResult<GetHandle>;

    fn handle(&mut self, _: GetHandle, ctx: &mut actix::Context<Self>) -> Self::Result {
        let now = self.step(ctx, |_, _, now| now);
        if self.fast.is_none() {
            self.fast = Some(FastPath::new(&self.machine, now));
            // Arms the fold timer.
            self.publish(ctx, now);
        }
        let Some(fast) = &self.fast else {
            unreachable!("the fast path was just created")
        };
        let config = self.machine.config();
        MessageResult(CircuitHandle {
            inner: Arc::new(Inner {
                name: self.name,
                published: Arc::clone(fast.published()),
                slots: Arc::clone(fast.slots()),
                circuit: actix::AsyncContext::address(ctx),
                rules: self.machine.rules().clone(),
                count_window: match config.window {
                    WindowConfig::Count { size } => Some(u64::from(size)),
                    WindowConfig::Time { .. } => None,
                },
            }),
        })
    }
}

/// A fast-path caller proposed a trip (it is in the published state), or
/// counted into a dormant circuit; the circuit takes it in, as it does
/// before every message, and folds on its timer again.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Wake;

impl Handler<Wake> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut actix::Context<Self>) {
        self.step(ctx, |_, _, _| ());
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
/// - FORCED_OPEN (by an operator): rejected from the published word, as
///   OPEN is, with [`Refusal::ForcedOpen`](crate::rules::Refusal::ForcedOpen).
/// - DISABLED (by an operator): admitted from the word by the same test as
///   CLOSED and counted the same way; the rulebook never lets a failure
///   trip it, so no call sends a message.
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::prelude::*;
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

pub(crate) struct Inner {
    pub(super) name: &'static String,
    pub(super) published: Arc<Published>,
    pub(super) slots: Arc<Slots>,
    pub(super) circuit: Addr<CircuitBreaker>,
    pub(super) rules: Rules,
    /// A count window's size, for the rate estimate; `None` for a time window.
    pub(super) count_window: Option<u64>,
}

impl CircuitHandle {
    /// The circuit's name.
    pub fn name(&self) -> &str {
        self.inner.name
    }

    /// Whether the circuit's actor is gone (calls answer
    /// [`CallError::Unavailable`]); ask its manager for the new one.
    pub fn is_stopped(&self) -> bool {
        self.inner.published.word().is_stopped()
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
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
    /// Two things differ from [`ProtectedCall`](crate::circuit::ProtectedCall), both
    /// because the work runs in the caller's own task rather than on the
    /// circuit's arbiter:
    /// - A panic in `future` is counted as a panic (a failure) and then
    ///   unwinds into the caller's task, as it would with no circuit; it is
    ///   not turned into [`CallError::Panicked`]. Catching it costs about
    ///   6 ns per call, which the fast path does not charge to every call.
    /// - `call_timeout`, if set, costs a clock read, a timer and one
    ///   allocation per call; outside a tokio runtime no timer can be set,
    ///   so the call runs to its end and is then judged (a timeout if it
    ///   ended late; a trial holds its slot until then). Inside a tokio
    ///   runtime the timer is tokio's, so the runtime must have its timers
    ///   enabled (`enable_time`; actix's, actix-web's and `#[tokio::main]`'s
    ///   have them): tokio has no way to ask, and panics, naming the fix,
    ///   when a call with a deadline starts in one that has not. The
    ///   circuit counts that call as cancelled and goes on.
    pub fn call<F, T, E>(&self, future: F) -> HandleCall<'_, F>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.call_with(ProtectedCall::new(future))
    }

    /// Runs a [`ProtectedCall`] (one with a classifier, say) through the
    /// circuit on the caller's task, as [`call`](Self::call) does.
    ///
    /// ```
    /// use actix::Actor;
    /// use vibezen_recovery::prelude::*;
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let breaker = CircuitBreaker::new("knowledge_graph", CircuitBreakerConfig::default())?.start();
    /// let handle = breaker.send(GetHandle).await?;
    /// let lookup = ProtectedCall::new(async { Err::<u32, _>("404 no such node") })
    ///     .classify(|_: &Result<u32, &str>| Classification::Ignored);
    /// assert!(handle.call_with(lookup).await.is_err());
    /// assert_eq!(breaker.send(Stats).await?.totals[Outcome::Ignored], 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn call_with<F, C, T, E>(&self, call: ProtectedCall<F, C>) -> HandleCall<'_, F, C>
    where
        F: Future<Output = Result<T, E>>,
        C: Classifier<T, E>,
    {
        HandleCall {
            inner: &self.inner,
            call: CallState::new(call),
        }
    }
}

pin_project! {
    /// The future of [`CircuitHandle::call`] and [`CircuitHandle::call_with`].
    #[must_use = "futures do nothing unless polled"]
    pub struct HandleCall<'a, F, C = OkIsSuccess> {
        inner: &'a Inner,
        #[pin]
        call: CallState<F, C>,
    }

    impl<F, C> PinnedDrop for HandleCall<'_, F, C> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.call.abandon(this.inner);
        }
    }
}

impl<F, C> fmt::Debug for HandleCall<'_, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandleCall")
            .field("circuit", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl<F, C, T, E> Future for HandleCall<'_, F, C>
where
    F: Future<Output = Result<T, E>>,
    C: Classifier<T, E>,
{
    type Output = Result<T, CallError<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.call.poll_with(this.inner, cx)
    }
}

impl Inner {
    /// A call the published word does not admit, refused at once as the
    /// rulebook says; `None` for a HALF_OPEN trial, which asks the actor for
    /// a permit (trials stay exact). Inline, so that the refusal is built in
    /// the caller's return slot.
    #[inline]
    pub(super) fn refuse<E>(&self, word: Word) -> Option<CallError<E>> {
        if word.is_stopped() {
            return Some(CallError::Unavailable(MailboxError::Closed));
        }
        let refusal = match self.rules.admission(word.status()) {
            Admission::Refuse(refusal) => refusal,
            Admission::Trial | Admission::Admit => return None,
        };
        self.slots.add(Count::Rejection);
        Some(CallError::Open(CircuitBreakerOpenError::published(
            self.name,
            refusal,
            Instant::from_std(self.published.epoch()),
            self.published.open_until_nanos(),
        )))
    }

    /// Asks the actor for a HALF_OPEN trial permit.
    #[cold]
    pub(super) fn ask_for_trial(&self) -> Trial {
        Trial::Asking(Box::pin(self.circuit.send(AcquireGuarded)))
    }

    /// Counts how an admitted CLOSED call ended. An outcome that arrives
    /// after its generation ended is counted, but must not drive the new
    /// state. A dormant circuit is woken once the outcome is counted, so
    /// that the fold the wake brings takes it in.
    #[inline]
    pub(super) fn finish(&self, word: Word, outcome: Outcome) {
        let generation = word.generation();
        let now = self.published.word();
        if now.generation() != generation {
            self.slots.add(Count::Stale(outcome));
        } else {
            self.slots.add(Count::Fresh(outcome));
            if outcome == Outcome::Success {
                self.published.run_success(generation);
            } else if outcome.is_failure() {
                self.failed(word);
            }
        }
        if now.is_dormant() {
            self.wake_circuit();
        }
    }

    /// Wakes a dormant circuit to fold what its callers count: the one
    /// caller that clears the mark sends the message.
    #[cold]
    #[inline(never)]
    pub(super) fn wake_circuit(&self) {
        if self.published.wake() {
            self.circuit.do_send(Wake);
        }
    }

    /// A failure in the generation of `word`: does the rulebook trip it?
    /// (Never in DISABLED, whose word is admitted like CLOSED's.)
    #[cold]
    fn failed(&self, word: Word) {
        let Some(run) = self.published.run_failure(word.generation()) else {
            return;
        };
        let Some(reason) = self.rules.after_failure(word.state(), run, || {
            self.estimate_window(word.generation())
        }) else {
            return;
        };
        // One caller wins the pending bit: from then on every call is
        // refused at once, and that caller alone wakes the actor.
        if self
            .published
            .propose_trip(word, reason, Instant::now().into_std())
        {
            self.circuit.do_send(Wake);
        }
    }

    /// Estimates the window of `generation` now: what the actor last folded
    /// in, plus what the slots counted since. A count window drops the
    /// oldest folded outcomes in proportion to make room for newer ones.
    /// Nothing is known (an empty window) until the actor has shared the
    /// generation's window.
    fn estimate_window(&self, generation: u64) -> WindowCounts {
        let base = self.published.rate_base();
        if base.generation != generation {
            return WindowCounts::default();
        }
        let now = WindowCounts::of(&self.slots.fresh());
        let fresh_failures = now.failures.saturating_sub(base.folded.failures);
        let fresh = now.calls.saturating_sub(base.folded.calls);
        let mut window = WindowCounts {
            calls: base.window.calls + fresh,
            failures: base.window.failures + fresh_failures,
        };
        if let Some(size) = self.count_window.filter(|&size| window.calls > size) {
            window.failures = if fresh >= size {
                fresh_failures * size / fresh.max(1)
            } else {
                let kept = size - fresh;
                fresh_failures + base.window.failures * kept / base.window.calls.max(1)
            };
            window.calls = size;
        }
        window
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::{Reset, Stats};
    use crate::config::CircuitBreakerConfig;
    use actix::Actor;

    /// Issue 15, race 1: after a reset from CLOSED, a failure counted in the
    /// new generation while the old generation's window is still shared
    /// (the moment between publishing the new word and sharing the new
    /// window) must not be judged against the old window. The race is held
    /// open by putting the old window back by hand; the base is tagged with
    /// its generation, so the handle ignores it. Untagged, this tripped the
    /// circuit at once: `FailureRate { rate: 1.0, calls: 10 }`.
    #[actix::test]
    async fn a_failure_after_a_reset_is_not_judged_against_the_old_window() {
        let config = CircuitBreakerConfig {
            failure_threshold: 1_000,
            min_calls: 10,
            failure_rate_threshold: 0.5,
            ..Default::default()
        };
        let circuit = CircuitBreaker::new("race_1", config).unwrap().start();
        let handle = circuit.send(GetHandle).await.unwrap();
        for _ in 0..9 {
            let _ = handle.call(async { Err::<(), ()>(()) }).await;
        }
        assert_eq!(circuit.send(Stats).await.unwrap().window_failures, 9);
        let old_window = handle.inner.published.rate_base();
        assert_eq!(old_window.window.failures, 9);
        circuit.send(Reset).await.unwrap();
        handle.inner.published.set_rate_base(old_window);
        let _ = handle.call(async { Err::<(), ()>(()) }).await;
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(
            stats.state,
            CircuitState::Closed,
            "{:?}",
            stats.state_changes
        );
        assert_eq!(handle.state(), CircuitState::Closed);
    }
}

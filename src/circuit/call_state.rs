//! The one implementation of a fast-path call, whoever owns the handle it
//! calls through: [`HandleCall`](super::HandleCall) borrows it, the
//! registry's call owns a clone.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use actix::clock::{Instant, Sleep};
use actix::dev::Request;
use pin_project_lite::pin_project;

use super::guard::{Ended, settle};
use super::handle::Inner;
use super::permit::{Acquire, Permit};
use super::{CallError, CircuitBreaker, ProtectedCall};
use crate::classifier::Classifier;
use crate::fast_path::slots::Count;
use crate::fast_path::word::Word;
use crate::outcome::Outcome;

pin_project! {
    /// Where a fast-path call is, and what it holds.
    pub(crate) struct CallState<F, C> {
        // The caller's future, polled in place; dropped as soon as it ends.
        #[pin]
        future: Option<F>,
        classifier: C,
        deadline: Deadline,
        // A HALF_OPEN trial: the rare path, boxed to keep the common one small.
        trial: Option<Box<Trial>>,
        stage: Stage,
        // True while the caller's future or classifier runs: if it is still
        // true when the call is dropped, that code panicked.
        polling: bool,
    }
}

/// `Copy`, so that moving between stages never runs drop glue.
#[derive(Clone, Copy)]
enum Stage {
    /// Not polled yet.
    Fresh,
    /// Admitted in CLOSED, in the generation of this word.
    Closed(Word),
    /// A HALF_OPEN trial, in `CallState::trial`.
    Trial,
    /// Answered.
    Done,
}

/// How a call's deadline is kept.
enum Deadline {
    /// It has none.
    None,
    /// A tokio timer cuts it off.
    Timer(Pin<Box<Sleep>>),
    /// No timer could be set (no tokio runtime): a call that ends after it
    /// is a timeout all the same. Boxed: the rare case.
    Unenforced(Box<Instant>),
}

impl Deadline {
    /// A timer for `at`, if there is a tokio runtime to run it.
    fn at(at: Instant) -> Self {
        if tokio::runtime::Handle::try_current().is_ok() {
            Deadline::Timer(Box::pin(tokio::time::sleep_until(at)))
        } else {
            Deadline::Unenforced(Box::new(at))
        }
    }
}

pub(super) enum Trial {
    Asking(Pin<Box<Request<CircuitBreaker, Acquire>>>),
    Running { permit: Permit, limit: Duration },
}

impl<F, C> CallState<F, C> {
    pub(crate) fn new(call: ProtectedCall<F, C>) -> Self {
        CallState {
            future: Some(call.future),
            classifier: call.classifier,
            deadline: Deadline::None,
            trial: None,
            stage: Stage::Fresh,
            polling: false,
        }
    }

    /// The call is dropped: one that was admitted and had not ended counts
    /// as cancelled, or as a panic if its own code was running.
    pub(crate) fn abandon(self: Pin<&mut Self>, inner: &Inner) {
        let this = self.project();
        let outcome = if *this.polling {
            Outcome::Panic
        } else {
            Outcome::Cancelled
        };
        match std::mem::replace(this.stage, Stage::Done) {
            Stage::Closed(word) => inner.finish(word, outcome),
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

    /// Drives the call through the circuit behind `inner`.
    #[inline]
    pub(crate) fn poll_with<T, E>(
        self: Pin<&mut Self>,
        inner: &Inner,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, CallError<E>>>
    where
        F: Future<Output = Result<T, E>>,
        C: Classifier<T, E>,
    {
        let mut this = self.project();
        loop {
            match *this.stage {
                Stage::Fresh => {
                    let word = inner.published.word();
                    if !word.admits() {
                        if let Some(refused) = inner.refuse(word) {
                            *this.stage = Stage::Done;
                            return Poll::Ready(Err(refused));
                        }
                        *this.trial = Some(inner.ask_for_trial());
                        *this.stage = Stage::Trial;
                        continue;
                    }
                    inner.slots.add(Count::Admitted);
                    *this.stage = Stage::Closed(word);
                    if let Some(limit) = inner.rules.call_timeout() {
                        *this.deadline = Deadline::at(Instant::now() + limit);
                    }
                }
                Stage::Closed(word) => {
                    let limit = inner.rules.call_timeout().unwrap_or_default();
                    let ended = ready!(poll_once(
                        this.future.as_mut(),
                        this.polling,
                        this.deadline,
                        limit,
                        cx
                    ));
                    this.future.set(None);
                    *this.polling = true;
                    let (outcome, result) = settle(ended, &*this.classifier, false);
                    *this.polling = false;
                    *this.stage = Stage::Done;
                    inner.finish(word, outcome);
                    return Poll::Ready(result);
                }
                Stage::Trial => {
                    let Some(trial) = this.trial.as_mut() else {
                        unreachable!("a fast-path call in a trial without one")
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
                                    *this.deadline = Deadline::at(at);
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
                    *this.polling = true;
                    let (outcome, result) = settle(ended, &*this.classifier, false);
                    *this.polling = false;
                    *this.stage = Stage::Done;
                    if let Some(Trial::Running { permit, .. }) =
                        this.trial.take().map(|trial| *trial)
                    {
                        permit.report_outcome(outcome);
                    }
                    return Poll::Ready(result);
                }
                Stage::Done => panic!("a fast-path call polled after it completed"),
            }
        }
    }
}

/// Polls the caller's future once, then the deadline. A call that ends in
/// the same poll as its timer fires ended in time, as the actor's guard
/// also has it.
///
/// A panic in the caller's future is not caught here: on the fast path the
/// future runs in the caller's own task, so its panic unwinds there as it
/// would without a circuit (and costs nothing when there is none). `polling`
/// stays set, and the call's drop counts the panic.
#[inline]
fn poll_once<F: Future>(
    future: Pin<&mut Option<F>>,
    polling: &mut bool,
    deadline: &mut Deadline,
    limit: Duration,
    cx: &mut Context<'_>,
) -> Poll<Ended<F::Output>> {
    let Some(future) = future.as_pin_mut() else {
        panic!("a fast-path call polled after its future ended")
    };
    *polling = true;
    let polled = future.poll(cx);
    *polling = false;
    match (polled, deadline) {
        // Ended at last, but later than allowed.
        (Poll::Ready(_), Deadline::Unenforced(at)) if Instant::now() > **at => {
            Poll::Ready(Ended::TimedOut(limit))
        }
        (Poll::Ready(output), _) => Poll::Ready(Ended::Completed(output)),
        (Poll::Pending, Deadline::Timer(sleep)) => match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Ended::TimedOut(limit)),
            Poll::Pending => Poll::Pending,
        },
        (Poll::Pending, _) => Poll::Pending,
    }
}

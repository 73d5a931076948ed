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
use super::permit::{AcquireGuarded, Permit};
use super::{CallError, CircuitBreaker, ProtectedCall};
use crate::classifier::Classifier;
use crate::fast_path::slots::Count;
use crate::fast_path::word::Word;
use crate::outcome::Outcome;
use crate::rules::Rules;

pin_project! {
    /// Where a fast-path call is, and what it holds.
    pub(crate) struct CallState<F, C> {
        // The caller's future, polled in place; dropped as soon as it ends.
        #[pin]
        future: Option<F>,
        classifier: C,
        // A deadline or a HALF_OPEN trial: the rare parts, boxed together
        // so that a plain CLOSED call carries one null pointer and drops
        // with one test.
        rare: Option<Pin<Box<Rare>>>,
        stage: Stage,
        // True while the caller's future or classifier runs: if it is still
        // true when the call is dropped, that code panicked.
        polling: bool,
    }
}

pin_project! {
    /// What only some calls need.
    struct Rare {
        // Cuts the call off at `at`, if a tokio runtime could set it.
        #[pin]
        timer: Option<Sleep>,
        // The deadline: a call that ends after it is a timeout, on every path.
        at: Option<Instant>,
        // How long the call was allowed, for its timeout error.
        limit: Duration,
        trial: Option<Trial>,
    }
}

impl Rare {
    fn boxed() -> Pin<Box<Rare>> {
        Box::pin(Rare {
            timer: None,
            at: None,
            limit: Duration::ZERO,
            trial: None,
        })
    }

    /// Keeps the deadline `at`: a timer if there is a tokio runtime to run
    /// it, else a check when the call ends.
    fn keep_deadline(mut self: Pin<&mut Self>, at: Instant, limit: Duration) {
        let mut this = self.as_mut().project();
        *this.at = Some(at);
        *this.limit = limit;
        if tokio::runtime::Handle::try_current().is_ok() {
            this.timer.set(Some(tokio::time::sleep_until(at)));
        }
    }
}

/// `Copy`, so that moving between stages never runs drop glue.
#[derive(Clone, Copy)]
enum Stage {
    /// Not polled yet.
    Fresh,
    /// Admitted in CLOSED, in the generation of this word.
    Closed(Word),
    /// A HALF_OPEN trial, in `Rare::trial`.
    Trial,
    /// Answered.
    Done,
}

pub(super) enum Trial {
    Asking(Pin<Box<Request<CircuitBreaker, AcquireGuarded>>>),
    Running(Permit),
}

impl<F, C> CallState<F, C> {
    pub(crate) fn new(call: ProtectedCall<F, C>) -> Self {
        CallState {
            future: Some(call.future),
            classifier: call.classifier,
            rare: None,
            stage: Stage::Fresh,
            polling: false,
        }
    }

    /// The call is dropped: one that was admitted and had not ended counts
    /// as cancelled, or as a panic if its own code was running. Inline and
    /// one test for the common case, a call that has answered.
    #[inline]
    pub(crate) fn abandon(self: Pin<&mut Self>, inner: &Inner) {
        if matches!(self.stage, Stage::Done | Stage::Fresh) {
            return;
        }
        self.abandon_running(inner);
    }

    #[cold]
    #[inline(never)]
    fn abandon_running(self: Pin<&mut Self>, inner: &Inner) {
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
                let trial = this
                    .rare
                    .as_mut()
                    .and_then(|rare| rare.as_mut().project().trial.take());
                if let Some(Trial::Running(permit)) = trial {
                    permit.report_outcome(outcome);
                }
            }
            Stage::Fresh | Stage::Done => {}
        }
    }

    /// A HALF_OPEN trial: the rare path, out of line so that the common one
    /// stays small enough for its caller to inline.
    #[inline(never)]
    fn poll_trial<T, E>(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, CallError<E>>>
    where
        F: Future<Output = Result<T, E>>,
        C: Classifier<T, E>,
    {
        let mut this = self.project();
        let Some(rare) = this.rare.as_mut() else {
            unreachable!("a fast-path call in a trial without one")
        };
        if let Some(Trial::Asking(request)) = rare.as_mut().project().trial {
            let permit = match ready!(request.as_mut().poll(cx)) {
                Ok(Ok(permit)) => permit,
                Ok(Err(open)) => {
                    *this.stage = Stage::Done;
                    return Poll::Ready(Err(CallError::Open(open)));
                }
                Err(mailbox) => {
                    *this.stage = Stage::Done;
                    return Poll::Ready(Err(CallError::Unavailable(mailbox)));
                }
            };
            if let Some(at) = permit.deadline() {
                let limit = at.saturating_duration_since(Instant::now());
                rare.as_mut().keep_deadline(at, limit);
            }
            *rare.as_mut().project().trial = Some(Trial::Running(permit));
        }
        let ended = ready!(poll_once(
            this.future.as_mut(),
            this.polling,
            this.rare.as_mut(),
            cx
        ));
        this.future.set(None);
        *this.polling = true;
        let (stage, rare) = (&mut *this.stage, this.rare.as_mut());
        let result = settle(ended, &*this.classifier, false, |outcome| {
            *stage = Stage::Done;
            let trial = rare.and_then(|rare| rare.as_mut().project().trial.take());
            if let Some(Trial::Running(permit)) = trial {
                permit.report_outcome(outcome);
            }
        });
        *this.polling = false;
        Poll::Ready(result)
    }

    /// Drives the call through the circuit behind `inner`.
    #[inline]
    pub(crate) fn poll_with<T, E>(
        mut self: Pin<&mut Self>,
        inner: &Inner,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, CallError<E>>>
    where
        F: Future<Output = Result<T, E>>,
        C: Classifier<T, E>,
    {
        let mut this = self.as_mut().project();
        loop {
            match *this.stage {
                Stage::Fresh => {
                    let word = inner.published.word();
                    if !word.admits() {
                        if let Some(refused) = inner.refuse(word) {
                            *this.stage = Stage::Done;
                            return Poll::Ready(Err(refused));
                        }
                        let mut rare = Rare::boxed();
                        *rare.as_mut().project().trial = Some(inner.ask_for_trial());
                        *this.rare = Some(rare);
                        *this.stage = Stage::Trial;
                        continue;
                    }
                    inner.slots.add(Count::Admitted);
                    *this.stage = Stage::Closed(word);
                    if let Some(limit) = inner.rules.call_timeout() {
                        let mut rare = Rare::boxed();
                        rare.as_mut().keep_deadline(Instant::now() + limit, limit);
                        *this.rare = Some(rare);
                    }
                }
                Stage::Closed(word) => {
                    let ended = ready!(poll_once(
                        this.future.as_mut(),
                        this.polling,
                        this.rare.as_mut(),
                        cx
                    ));
                    this.future.set(None);
                    // Until the outcome is counted the call is still
                    // running: a classifier that panics is counted on drop.
                    *this.polling = true;
                    let stage = &mut *this.stage;
                    let result = settle(ended, &*this.classifier, false, |outcome| {
                        *stage = Stage::Done;
                        inner.finish(word, outcome);
                    });
                    *this.polling = false;
                    return Poll::Ready(result);
                }
                Stage::Trial => return self.poll_trial(cx),
                Stage::Done => panic!("a fast-path call polled after it completed"),
            }
        }
    }
}

/// Polls the caller's future once, then the deadline. A call that ends
/// after its deadline is a timeout ([`Rules::is_late`]), whether or not a
/// timer fired first.
///
/// A panic in the caller's future is not caught here: on the fast path the
/// future runs in the caller's own task, so its panic unwinds there as it
/// would without a circuit (and costs nothing when there is none). `polling`
/// stays set, and the call's drop counts the panic.
#[inline]
fn poll_once<F: Future>(
    future: Pin<&mut Option<F>>,
    polling: &mut bool,
    rare: Option<&mut Pin<Box<Rare>>>,
    cx: &mut Context<'_>,
) -> Poll<Ended<F::Output>> {
    let Some(future) = future.as_pin_mut() else {
        panic!("a fast-path call polled after its future ended")
    };
    *polling = true;
    let polled = future.poll(cx);
    *polling = false;
    let Some(rare) = rare else {
        return polled.map(Ended::Completed);
    };
    let rare = rare.as_mut().project();
    let Some(at) = *rare.at else {
        return polled.map(Ended::Completed);
    };
    match polled {
        // Ended, but later than allowed: a timeout, as on every path.
        Poll::Ready(_) if Rules::is_late(at.into_std(), Instant::now().into_std()) => {
            Poll::Ready(Ended::TimedOut(*rare.limit))
        }
        Poll::Ready(output) => Poll::Ready(Ended::Completed(output)),
        Poll::Pending => match rare.timer.as_pin_mut().map(|timer| timer.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Ended::TimedOut(*rare.limit)),
            _ => Poll::Pending,
        },
    }
}

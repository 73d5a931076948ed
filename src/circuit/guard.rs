//! Runs a protected future so that neither a panic nor a hang escapes it,
//! and turns how it ended into the outcome to count and the caller's result.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use actix::clock::Instant;
use futures_util::FutureExt;

use super::CallError;
use crate::classifier::Classifier;
use crate::outcome::Outcome;
use crate::rules::Rules;

/// How a guarded future ended.
pub(crate) enum Ended<O> {
    Completed(O),
    /// Cut off at its deadline; the call was allowed this long.
    TimedOut(Duration),
    Panicked(String),
}

/// When a call must be done, and how long that allowed it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) limit: Duration,
}

impl Deadline {
    /// The deadline of a call admitted at `admitted_at` that must end by `at`.
    pub(crate) fn from_std(admitted_at: std::time::Instant, at: std::time::Instant) -> Self {
        Deadline {
            at: Instant::from_std(at),
            limit: at.saturating_duration_since(admitted_at),
        }
    }
}

/// Polls `future` to its end, catching a panic and cutting it off at the
/// deadline; one that ends after it (in the poll its timer fires, say) is a
/// timeout too ([`Rules::is_late`]). Without a deadline it reads no clock
/// and sets no timer.
pub(crate) async fn guarded<F: Future>(future: F, deadline: Option<Deadline>) -> Ended<F::Output> {
    let caught = AssertUnwindSafe(future).catch_unwind();
    let result = match deadline {
        Some(Deadline { at, limit }) => match tokio::time::timeout_at(at, caught).await {
            Ok(_) if Rules::is_late(at.into_std(), Instant::now().into_std()) => {
                return Ended::TimedOut(limit);
            }
            Ok(result) => result,
            Err(_) => return Ended::TimedOut(limit),
        },
        None => caught.await,
    };
    match result {
        Ok(output) => Ended::Completed(output),
        Err(payload) => Ended::Panicked(panic_message(payload.as_ref())),
    }
}

/// What to count and what to answer for a call that ended so: the one
/// place a result becomes an outcome, on every path. The outcome goes to
/// `count`, the answer is returned: not the two as a pair, which the fast
/// path would write piecewise and read back whole (a store-forwarding stall
/// that cost it half its time).
///
/// `contain`: catch a panic of the classifier and count a panic (the actor
/// does, so that a bad classifier cannot take the circuit down); the fast
/// path lets it unwind into the caller's task, like a panic of the call.
#[inline]
pub(crate) fn settle<T, E, C: Classifier<T, E>>(
    ended: Ended<Result<T, E>>,
    classifier: &C,
    contain: bool,
    count: impl FnOnce(Outcome),
) -> Result<T, CallError<E>> {
    match ended {
        Ended::Completed(result) => {
            count(if contain {
                classify_contained(&result, classifier)
            } else {
                classifier.classify(&result).into()
            });
            result.map_err(CallError::Failed)
        }
        Ended::TimedOut(limit) => {
            count(Outcome::Timeout);
            Err(CallError::Timeout(limit))
        }
        Ended::Panicked(message) => {
            count(Outcome::Panic);
            Err(CallError::Panicked(message))
        }
    }
}

/// What `result` counts as by the classifier. A classifier that panics is
/// treated like a protected call that panicked.
fn classify_contained<T, E, C: Classifier<T, E>>(result: &Result<T, E>, classifier: &C) -> Outcome {
    match catch_unwind(AssertUnwindSafe(|| classifier.classify(result))) {
        Ok(classification) => classification.into(),
        Err(payload) => {
            tracing::error!(
                panic = %panic_message(payload.as_ref()),
                "call classifier panicked; counting the call as a panic"
            );
            Outcome::Panic
        }
    }
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

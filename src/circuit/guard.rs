//! Runs a protected future so that neither a panic nor a hang escapes it.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use actix::clock::Instant;
use futures_util::FutureExt;

use crate::outcome::{Classification, Outcome};

/// How a guarded future ended.
pub(crate) enum Ended<O> {
    Completed(O),
    /// Cut off at its deadline, after running for this long.
    TimedOut(Duration),
    Panicked(String),
}

/// Polls `future` to its end, catching a panic and cutting it off at `deadline`.
pub(crate) async fn guarded<F: Future>(future: F, deadline: Option<Instant>) -> Ended<F::Output> {
    let started = Instant::now();
    let caught = AssertUnwindSafe(future).catch_unwind();
    let result = match deadline {
        Some(deadline) => match tokio::time::timeout_at(deadline, caught).await {
            Ok(result) => result,
            Err(_) => return Ended::TimedOut(deadline.saturating_duration_since(started)),
        },
        None => caught.await,
    };
    match result {
        Ok(output) => Ended::Completed(output),
        Err(payload) => Ended::Panicked(panic_message(payload.as_ref())),
    }
}

/// A caller's classifier of a call's result.
pub(crate) type Classifier<O> = Box<dyn Fn(&O) -> Classification + Send>;

/// What `result` counts as: the classifier's word, or the default rule. A
/// classifier that panics is treated like a protected call that panicked.
pub(crate) fn classify<T, E>(
    result: &Result<T, E>,
    classifier: Option<&Classifier<Result<T, E>>>,
) -> Outcome {
    let Some(classifier) = classifier else {
        return Classification::of_result(result).into();
    };
    match catch_unwind(AssertUnwindSafe(|| classifier(result))) {
        Ok(classification) => classification.into(),
        Err(payload) => {
            tracing::error!(panic = %panic_message(payload.as_ref()), "call classifier panicked; counting the call as a panic");
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

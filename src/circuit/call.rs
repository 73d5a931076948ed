//! `ProtectedCall`: run a future through the circuit.

use std::fmt;
use std::future::Future;

use actix::{ActorFutureExt, Context, Handler, Message, ResponseActFuture, WrapFuture};

use super::guard::{Deadline, guarded, settle};
use super::{CallError, CircuitBreaker};
use crate::classifier::{Classifier, OkIsSuccess};
use crate::outcome::Classification;

/// A future to run under the circuit's protection, with the classifier
/// that judges its result.
///
/// Send it to a circuit with `addr.send(ProtectedCall::new(future)).await`.
/// If the circuit admits the call, the future runs on the circuit's arbiter,
/// concurrently with every other admitted call, and its outcome is recorded
/// when it ends; a rejected future is never polled. The only bounds are
/// `Send + 'static` on the future, its `T` and `E` and the classifier. The
/// same `ProtectedCall` can instead run on the caller's own task through a
/// [`CircuitHandle::call_with`](crate::circuit::CircuitHandle::call_with), where the
/// future need not be `Send`.
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let breaker = CircuitBreaker::new("cache", CircuitBreakerConfig::default())?.start();
/// let result = breaker
///     .send(ProtectedCall::new(async { Err::<u32, _>("connection refused".to_string()) }))
///     .await?;
/// assert!(matches!(result, Err(CallError::Failed(e)) if e == "connection refused"));
/// # Ok(())
/// # }
/// ```
#[must_use = "a ProtectedCall does nothing until it is sent to a circuit or run through a handle"]
pub struct ProtectedCall<F, C = OkIsSuccess> {
    pub(crate) future: F,
    pub(crate) classifier: C,
}

impl<F, T, E> ProtectedCall<F>
where
    F: Future<Output = Result<T, E>>,
{
    /// Wraps `future`; `Ok` will count as a success and `Err` as a failure.
    pub fn new(future: F) -> Self {
        ProtectedCall {
            future,
            classifier: OkIsSuccess,
        }
    }
}

impl<F, C, T, E> ProtectedCall<F, C>
where
    F: Future<Output = Result<T, E>>,
{
    /// Decides what the result counts as instead of the default rule, for
    /// example to ignore a "not found" error. The caller still receives the
    /// result as it is.
    pub fn classify<D>(self, classifier: D) -> ProtectedCall<F, D>
    where
        D: Fn(&Result<T, E>) -> Classification,
    {
        self.classify_with(classifier)
    }

    /// Like [`classify`](Self::classify), for any [`Classifier`] (a type of
    /// your own, say, shared by several call sites).
    pub fn classify_with<D: Classifier<T, E>>(self, classifier: D) -> ProtectedCall<F, D> {
        ProtectedCall {
            future: self.future,
            classifier,
        }
    }
}

impl<F, C> fmt::Debug for ProtectedCall<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectedCall")
            .field("classifier", &std::any::type_name::<C>())
            .finish_non_exhaustive()
    }
}

impl<F, C, T, E> Message for ProtectedCall<F, C>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    C: Classifier<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    type Result = Result<T, CallError<E>>;
}

impl<F, C, T, E> Handler<ProtectedCall<F, C>> for CircuitBreaker
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    C: Classifier<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    // `ResponseActFuture` runs each call as its own spawned future on the
    // actor, so calls overlap; the `map` step gets `&mut self` when the call
    // ends, to record its outcome. A rejection is spawned too, ready: answered
    // from the handler instead (`ActorResponse::reply`), rejected callers
    // send again so fast that the mailbox never drains, and actix serves
    // queued messages before spawned futures, so trials in flight starved
    // (in the half-open race test, HALF_OPEN episodes fell tenfold).
    type Result = ResponseActFuture<Self, Result<T, CallError<E>>>;

    fn handle(&mut self, call: ProtectedCall<F, C>, ctx: &mut Context<Self>) -> Self::Result {
        let ticket = match self.admit(ctx, true) {
            Ok(ticket) => ticket,
            Err(rejected) => return Box::pin(actix::fut::ready(Err(CallError::Open(rejected)))),
        };
        let ProtectedCall { future, classifier } = call;
        let deadline = ticket
            .deadline()
            .map(|at| Deadline::from_std(ticket.admitted_at(), at));
        Box::pin(
            guarded(future, deadline)
                .into_actor(self)
                .map(move |ended, circuit, ctx| {
                    settle(ended, &classifier, true, |outcome| {
                        circuit.finish(ticket, outcome, None, ctx)
                    })
                }),
        )
    }
}

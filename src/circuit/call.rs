//! `ProtectedCall`: run a future through the circuit.

use std::fmt;
use std::future::Future;

use actix::{ActorFutureExt, Context, Handler, Message, ResponseActFuture, WrapFuture};

use super::guard::{Classifier, Deadline, guarded, settle};
use super::{CallError, CircuitBreaker};
use crate::outcome::Classification;

/// A future to run under the circuit's protection.
///
/// Send it to a circuit with `addr.send(ProtectedCall::new(future)).await`.
/// If the circuit admits the call, the future runs on the circuit's arbiter,
/// concurrently with every other admitted call, and its outcome is recorded
/// when it ends; a rejected future is never polled. The only bounds are
/// `Send + 'static` on the future and on its `T` and `E`; for a future that
/// is not `Send`, use the permit path ([`Acquire`](crate::Acquire)).
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::{CallError, CircuitBreaker, CircuitBreakerConfig, ProtectedCall};
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
#[must_use = "a ProtectedCall does nothing until it is sent to a circuit"]
pub struct ProtectedCall<F: Future> {
    future: F,
    classifier: Option<Classifier<F::Output>>,
}

impl<F, T, E> ProtectedCall<F>
where
    F: Future<Output = Result<T, E>>,
{
    /// Wraps `future`; `Ok` will count as a success and `Err` as a failure.
    pub fn new(future: F) -> Self {
        ProtectedCall {
            future,
            classifier: None,
        }
    }

    /// Decides what the result counts as instead of the default rule, for
    /// example to ignore a "not found" error (see [`Classification`]). The
    /// caller still receives the result as it is.
    pub fn classify(
        mut self,
        classifier: impl Fn(&Result<T, E>) -> Classification + Send + 'static,
    ) -> Self {
        self.classifier = Some(Box::new(classifier));
        self
    }
}

impl<F: Future> fmt::Debug for ProtectedCall<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectedCall")
            .field("classified", &self.classifier.is_some())
            .finish_non_exhaustive()
    }
}

impl<F, T, E> Message for ProtectedCall<F>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    type Result = Result<T, CallError<E>>;
}

impl<F, T, E> Handler<ProtectedCall<F>> for CircuitBreaker
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    // `ResponseActFuture` runs each call as its own spawned future on the
    // actor, so calls overlap; the `map` step gets `&mut self` when the call
    // ends, to record its outcome.
    type Result = ResponseActFuture<Self, Result<T, CallError<E>>>;

    fn handle(&mut self, call: ProtectedCall<F>, ctx: &mut Context<Self>) -> Self::Result {
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
                    let (outcome, result) = settle(ended, classifier.as_ref());
                    circuit.finish(ticket, outcome, ctx);
                    result
                }),
        )
    }
}

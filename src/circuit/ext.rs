//! One `Result` for callers who do not care to tell a mailbox error apart.

use std::future::Future;

use actix::Addr;

use super::{CallError, CircuitBreaker, ProtectedCall};
use crate::classifier::Classifier;

/// Calls through a circuit's address with the mailbox error folded into
/// [`CallError::Unavailable`].
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let breaker = CircuitBreaker::new("search", CircuitBreakerConfig::default())?.start();
/// let hits = breaker.call(async { Ok::<_, String>(vec!["rust"]) }).await;
/// assert_eq!(hits.ok(), Some(vec!["rust"]));
/// # Ok(())
/// # }
/// ```
pub trait CircuitBreakerExt {
    /// Runs `future` through the circuit.
    fn call<F, T, E>(&self, future: F) -> impl Future<Output = Result<T, CallError<E>>> + Send
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static;

    /// Runs a [`ProtectedCall`] (one with a classifier, say) through the circuit.
    fn call_with<F, C, T, E>(
        &self,
        call: ProtectedCall<F, C>,
    ) -> impl Future<Output = Result<T, CallError<E>>> + Send
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        C: Classifier<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static;
}

impl CircuitBreakerExt for Addr<CircuitBreaker> {
    fn call<F, T, E>(&self, future: F) -> impl Future<Output = Result<T, CallError<E>>> + Send
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.call_with(ProtectedCall::new(future))
    }

    fn call_with<F, C, T, E>(
        &self,
        call: ProtectedCall<F, C>,
    ) -> impl Future<Output = Result<T, CallError<E>>> + Send
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        C: Classifier<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let request = self.send(call);
        async move {
            request
                .await
                .unwrap_or_else(|mailbox| Err(CallError::Unavailable(mailbox)))
        }
    }
}

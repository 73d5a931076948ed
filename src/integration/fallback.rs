//! Fallbacks for protected calls, and saying which one answered.

use std::fmt;
use std::future::Future;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;

use crate::circuit::CallError;

/// What to do instead of the service when a protected call cannot be served.
///
/// [`Fallback::new`] runs only when the circuit **rejects** the call (it is
/// OPEN, or HALF_OPEN with every trial slot taken): the service was not
/// asked, so answering from a cache, a queue or simpler logic is safe. A call
/// that ran and failed is returned as the error it is, since retrying it
/// elsewhere may not be safe (a write may have happened). Where it is safe,
/// [`Fallback::on_any_error`] also covers failures, timeouts and panics.
///
/// The fallback runs on the caller's task, so it need not be `Send`.
///
/// ```
/// use vibezen_recovery::integration::Fallback;
///
/// let cached = Fallback::new(|| async { "cached answer".to_string() });
/// assert!(!cached.covers_failures());
/// let anything = Fallback::on_any_error(|| async { "simplified answer".to_string() });
/// assert!(anything.covers_failures());
/// ```
pub struct Fallback<T> {
    run: Box<dyn FnOnce() -> LocalBoxFuture<'static, T>>,
    on_any_error: bool,
}

impl<T: 'static> Fallback<T> {
    /// A fallback for rejected calls only.
    pub fn new<F, Fut>(fallback: F) -> Self
    where
        F: FnOnce() -> Fut + 'static,
        Fut: Future<Output = T> + 'static,
    {
        Fallback {
            run: Box::new(move || fallback().boxed_local()),
            on_any_error: false,
        }
    }

    /// A fallback for rejected calls and for calls that failed, timed out,
    /// panicked or found the circuit gone.
    pub fn on_any_error<F, Fut>(fallback: F) -> Self
    where
        F: FnOnce() -> Fut + 'static,
        Fut: Future<Output = T> + 'static,
    {
        Fallback {
            on_any_error: true,
            ..Fallback::new(fallback)
        }
    }
}

impl<T> Fallback<T> {
    /// Whether it also runs for calls that ran and failed.
    pub fn covers_failures(&self) -> bool {
        self.on_any_error
    }

    /// Whether it answers for a call that ended in `error`.
    pub fn applies_to<E>(&self, error: &CallError<E>) -> bool {
        self.on_any_error || error.is_rejected()
    }

    /// Answers for a call that came to `result`, if the result is an error
    /// this fallback covers; otherwise returns the result as it is. It
    /// takes a result, not a call, so that it serves every path alike: a
    /// [`CircuitHandle`](crate::circuit::CircuitHandle) or registry call, a
    /// [`ProtectedCall`](crate::circuit::ProtectedCall) sent to the circuit,
    /// or a [`Permit`](crate::circuit::Permit) that was refused.
    ///
    /// ```
    /// use actix::Actor;
    /// use vibezen_recovery::integration::Fallback;
    /// use vibezen_recovery::prelude::*;
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = CircuitBreakerConfig { failure_threshold: 1, ..Default::default() };
    /// let breaker = CircuitBreaker::new("search", config)?.start();
    /// let search = breaker.send(GetHandle).await?;
    /// let _ = search.call(async { Err::<Vec<&str>, _>("503") }).await; // now OPEN
    ///
    /// // The fast path:
    /// let cached = Fallback::new(|| async { vec!["cached"] });
    /// let served = cached.answer(search.call(async { Ok::<_, &str>(vec!["fresh"]) }).await).await?;
    /// assert!(served.used_fallback());
    ///
    /// // The permit path: a refused permit is an `Open` rejection.
    /// let refused = breaker.send(Acquire).await?.map_err(CallError::<&str>::Open);
    /// let cached = Fallback::new(|| async { vec!["cached"] });
    /// let served = match refused {
    ///     Ok(permit) => { permit.success(); Served::Service(vec!["fresh"]) }
    ///     Err(rejected) => cached.answer(Err(rejected)).await?,
    /// };
    /// assert_eq!(served.into_value(), ["cached"]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn answer<E>(
        self,
        result: Result<T, CallError<E>>,
    ) -> Result<Served<T, E>, CallError<E>> {
        match result {
            Ok(value) => Ok(Served::Service(value)),
            Err(cause) if self.applies_to(&cause) => Ok(Served::Fallback {
                value: (self.run)().await,
                cause,
            }),
            Err(cause) => Err(cause),
        }
    }
}

impl<T> fmt::Debug for Fallback<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback")
            .field("on_any_error", &self.on_any_error)
            .finish_non_exhaustive()
    }
}

/// Who answered a protected call.
///
/// ```
/// use vibezen_recovery::circuit::CallError;
/// use vibezen_recovery::integration::Served;
///
/// let served: Served<&str, String> = Served::Service("fresh");
/// assert!(!served.used_fallback());
/// assert_eq!(served.into_value(), "fresh");
/// ```
#[derive(Debug)]
pub enum Served<T, E> {
    /// The service did.
    Service(T),
    /// The fallback did, because of `cause`.
    Fallback {
        /// The fallback's answer.
        value: T,
        /// Why the service's answer was not used: a rejection, or (with
        /// [`Fallback::on_any_error`]) the error the call ended in.
        cause: CallError<E>,
    },
}

impl<T, E> Served<T, E> {
    /// Whether the fallback answered.
    pub fn used_fallback(&self) -> bool {
        matches!(self, Served::Fallback { .. })
    }

    /// The answer, whoever gave it.
    pub fn value(&self) -> &T {
        match self {
            Served::Service(value) | Served::Fallback { value, .. } => value,
        }
    }

    /// The answer, whoever gave it.
    pub fn into_value(self) -> T {
        match self {
            Served::Service(value) | Served::Fallback { value, .. } => value,
        }
    }
}

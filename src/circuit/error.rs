//! What a protected call can come to, besides its own result.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use actix::MailboxError;
use actix::clock::Instant;

use crate::config::ConfigError;
use crate::manager::UnknownCircuit;
use crate::rules::Refusal;
use crate::state::CircuitState;

/// A call refused because the circuit is OPEN, HALF_OPEN with every trial
/// slot taken, or FORCED_OPEN by an operator. The protected future was
/// never polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitBreakerOpenError {
    circuit: &'static String,
    refusal: Refusal,
    /// When a trial may go through, as an instant and an offset from it:
    /// the fast path hands over what it published (an epoch and
    /// nanoseconds) and the sum is made only if someone asks.
    retry: Option<(Instant, u64)>,
}

impl CircuitBreakerOpenError {
    pub(crate) fn new(
        circuit: &'static String,
        refusal: Refusal,
        retry_at: Option<Instant>,
    ) -> Self {
        CircuitBreakerOpenError {
            circuit,
            refusal,
            retry: retry_at.map(|at| (at, 0)),
        }
    }

    /// A refusal whose retry time is `nanos` after `epoch`, if `nanos` is
    /// not zero: built without clock arithmetic, on the fast path.
    #[inline]
    pub(crate) fn published(
        circuit: &'static String,
        refusal: Refusal,
        epoch: Instant,
        nanos: u64,
    ) -> Self {
        CircuitBreakerOpenError {
            circuit,
            refusal,
            retry: (nanos != 0 && refusal.waits_for_open_timeout()).then_some((epoch, nanos)),
        }
    }

    /// The circuit that refused the call.
    pub fn circuit(&self) -> &str {
        self.circuit
    }

    /// The state it refused in.
    pub fn state(&self) -> CircuitState {
        self.refusal.state()
    }

    /// Why it refused.
    pub fn refusal(&self) -> Refusal {
        self.refusal
    }

    /// When the circuit will let a trial call through (the end of its OPEN
    /// timeout); `None` when it is HALF_OPEN with every trial slot taken,
    /// where a slot may free up at any moment, when it is only opening, or
    /// when an operator forced it open (no one knows when it is released).
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry
            .map(|(base, nanos)| base + Duration::from_nanos(nanos))
    }

    /// How long from now until [`retry_at`](Self::retry_at); zero if it has passed.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_at()
            .map(|at| at.saturating_duration_since(Instant::now()))
    }
}

impl fmt::Display for CircuitBreakerOpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let circuit = self.circuit;
        match (self.refusal, self.retry_after()) {
            (Refusal::TrialsTaken, _) => write!(
                f,
                "circuit `{circuit}` is HALF_OPEN and every trial slot is taken; retry shortly"
            ),
            (Refusal::ForcedOpen, _) => write!(
                f,
                "circuit `{circuit}` was forced open by an operator; \
                 calls are rejected until it is released"
            ),
            (refusal, Some(wait)) => write!(
                f,
                "circuit `{circuit}` is {}; calls are rejected for another {:.1} s",
                refusal.state(),
                wait.as_secs_f64()
            ),
            (refusal, None) => write!(
                f,
                "circuit `{circuit}` is {}; the call was rejected",
                refusal.state()
            ),
        }
    }
}

impl Error for CircuitBreakerOpenError {}

/// Why a protected call did not produce its own `Ok` value.
///
/// It is a [`std::error::Error`] whenever the service's error `E` is
/// `Debug + Display`, so `?` takes it into a `Box<dyn Error>` even when the
/// service fails with a plain `String`:
///
/// ```
/// use std::error::Error;
/// use actix::Actor;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn Error>> {
/// let breaker = CircuitBreaker::new("search", CircuitBreakerConfig::default())?.start();
///
/// // `?` on a `CallError<String>`, into the `Box<dyn Error>` of `main`.
/// let hits = breaker.call(async { Ok::<_, String>(vec!["rust"]) }).await?;
/// assert_eq!(hits, ["rust"]);
///
/// let failed = breaker.call(async { Err::<(), _>("503 Service Unavailable".to_string()) });
/// let err: Box<dyn Error> = failed.await.unwrap_err().into();
/// assert_eq!(err.to_string(), "protected call failed: 503 Service Unavailable");
/// // The service's error is in the message, not a `source()`: a `String`
/// // is no `dyn Error`.
/// assert!(err.source().is_none());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum CallError<E> {
    /// Rejected without running: the circuit is open.
    Open(CircuitBreakerOpenError),
    /// The call ran and returned this error.
    Failed(E),
    /// The call ran past its deadline (of this length) and was cut off.
    Timeout(Duration),
    /// The call panicked with this message; the circuit counted a failure
    /// and kept running.
    Panicked(String),
    /// The circuit actor is gone (stopped, or its arbiter shut down).
    Unavailable(MailboxError),
    /// A name the manager refused (see
    /// [`validate_circuit_name`](crate::name::validate_circuit_name)): nothing was
    /// created and the call did not run. Only a call routed by name, through
    /// the manager's [`Call`](crate::manager::Call), can get this.
    ///
    /// Boxed so that this rare error does not make every `CallError`, and
    /// every `Result` of a protected call, larger: a `ConfigError` is 48
    /// bytes, a `CallError` 40, and the fast path pays for each byte of its
    /// result (docs/performance.md).
    InvalidName(Box<ConfigError>),
    /// A name no circuit has, refused where names must be set up first
    /// (the integration once circuits came from a file or presets, or a
    /// [`Registry::known_only`](crate::manager::Registry::known_only)); it
    /// names the nearest circuit there is. Nothing was created and the call
    /// did not run. Boxed, like `InvalidName`.
    UnknownCircuit(Box<UnknownCircuit>),
}

impl<E> CallError<E> {
    /// Whether the circuit refused the call without running it.
    pub fn is_rejected(&self) -> bool {
        self.rejection().is_some()
    }

    /// The refusal, if the circuit refused the call without running it: which
    /// circuit, in what state, and when to retry. The one place that says
    /// which variants are rejections, so that whatever answers a rejection
    /// (such as the `actix-web` feature's `503` with `Retry-After`) answers
    /// every kind of it.
    ///
    /// ```
    /// use actix::Actor;
    /// use vibezen_recovery::prelude::*;
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = CircuitBreakerConfig { failure_threshold: 1, ..Default::default() };
    /// let breaker = CircuitBreaker::new("search", config)?.start();
    ///
    /// let failed = breaker.call(async { Err::<(), _>("503") }).await.unwrap_err();
    /// assert!(failed.rejection().is_none());
    ///
    /// let refused = breaker.call(async { Ok::<_, &str>(()) }).await.unwrap_err();
    /// let open = refused.rejection().expect("the circuit opened on the first failure");
    /// assert_eq!((open.circuit(), open.state()), ("search", CircuitState::Open));
    /// # Ok(())
    /// # }
    /// ```
    pub fn rejection(&self) -> Option<&CircuitBreakerOpenError> {
        match self {
            CallError::Open(refused) => Some(refused),
            // Listed rather than `_`, so that a new variant is a decision.
            CallError::Failed(_)
            | CallError::Timeout(_)
            | CallError::Panicked(_)
            | CallError::Unavailable(_)
            | CallError::InvalidName(_)
            | CallError::UnknownCircuit(_) => None,
        }
    }

    /// The service's own error, if that is what this is.
    pub fn into_inner(self) -> Option<E> {
        match self {
            CallError::Failed(err) => Some(err),
            _ => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Open(err) => err.fmt(f),
            CallError::Failed(err) => write!(f, "protected call failed: {err}"),
            CallError::Timeout(limit) => write!(
                f,
                "protected call cut off at its deadline, after {:.3} s; \
                 the service is slow or hung, or `call_timeout` is too short",
                limit.as_secs_f64()
            ),
            CallError::Panicked(message) => write!(f, "protected call panicked: {message}"),
            CallError::Unavailable(MailboxError::Closed) => f.write_str(
                "circuit breaker actor unavailable: it has stopped, or its arbiter shut down; \
                 a manager recreates the circuits it owns, so call again through the manager",
            ),
            CallError::Unavailable(err) => write!(f, "circuit breaker actor unavailable: {err}"),
            CallError::InvalidName(err) => {
                write!(f, "{err}; no circuit was created and the call did not run")
            }
            CallError::UnknownCircuit(unknown) => {
                write!(f, "{unknown}; the call did not run")
            }
        }
    }
}

/// [`source`](Error::source) is the [`CircuitBreakerOpenError`] of
/// [`Open`](CallError::Open), the [`MailboxError`] of
/// [`Unavailable`](CallError::Unavailable) and the [`ConfigError`] of
/// [`InvalidName`](CallError::InvalidName).
///
/// For [`Failed`](CallError::Failed) it is `None`, even when `E` is itself an
/// `Error`: `E` need only be `Display`, and without specialization there is
/// no way to hand out `&E` as a `dyn Error` for some `E` and not others. The
/// service's message is in this error's own message instead, so a report
/// loses nothing; match on `Failed` or call
/// [`into_inner`](CallError::into_inner) to get at `E` itself.
impl<E: fmt::Debug + fmt::Display> Error for CallError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            CallError::Open(err) => Some(err),
            CallError::Unavailable(err) => Some(err),
            CallError::InvalidName(err) => Some(&**err),
            CallError::UnknownCircuit(unknown) => Some(&**unknown),
            CallError::Failed(_) | CallError::Timeout(_) | CallError::Panicked(_) => None,
        }
    }
}

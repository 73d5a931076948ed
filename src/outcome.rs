//! What became of a call, as the breaker counts it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a caller's classifier judges a finished call.
///
/// By default `Ok` is a success and `Err` a failure; a classifier can say
/// otherwise, for example that a "not found" error is no sign of an outage.
///
/// ```
/// use vibezen_recovery::{Classification, ProtectedCall};
///
/// let call = ProtectedCall::new(async { Err::<u32, _>("404 not found".to_string()) })
///     .classify(|result| match result {
///         Err(e) if e.starts_with("404") => Classification::Ignored,
///         Err(_) => Classification::Failure,
///         Ok(_) => Classification::Success,
///     });
/// # drop(call);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    /// Counts as a success.
    Success,
    /// Counts as a failure.
    Failure,
    /// Counts toward neither: the window, the consecutive-failure count and
    /// the half-open trial count do not see it.
    Ignored,
}

impl Classification {
    /// The default rule: `Ok` is a success, `Err` a failure.
    pub fn of_result<T, E>(result: &Result<T, E>) -> Self {
        match result {
            Ok(_) => Classification::Success,
            Err(_) => Classification::Failure,
        }
    }
}

/// The recorded outcome of an admitted call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The call succeeded.
    Success,
    /// The call failed.
    Failure,
    /// The call ran past its deadline and was cut off (or its half-open slot
    /// was reclaimed); a kind of failure.
    Timeout,
    /// The call panicked; a kind of failure.
    Panic,
    /// The classifier said the outcome does not count.
    Ignored,
    /// The call was given up before it reported (a permit dropped unused).
    Cancelled,
}

impl Outcome {
    /// Whether the outcome counts against the service.
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Failure | Outcome::Timeout | Outcome::Panic)
    }
}

impl From<Classification> for Outcome {
    fn from(classification: Classification) -> Self {
        match classification {
            Classification::Success => Outcome::Success,
            Classification::Failure => Outcome::Failure,
            Classification::Ignored => Outcome::Ignored,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Timeout => "timeout",
            Outcome::Panic => "panic",
            Outcome::Ignored => "ignored",
            Outcome::Cancelled => "cancelled",
        })
    }
}

//! The settings of one circuit: thresholds, timeouts and the sliding window
//! ([`CircuitBreakerConfig`], [`WindowConfig`]), the bounds they are checked
//! against, and the [`ConfigError`] a bad one gets.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::seconds;

pub(crate) mod json;

pub use crate::seconds::MAX_DURATION;

/// The largest count-based window, in calls.
pub const MAX_WINDOW_CALLS: u32 = 100_000;
/// The largest number of buckets in a time-based window.
pub const MAX_WINDOW_BUCKETS: u32 = 3_600;
/// The shortest bucket of a time-based window.
pub const MIN_BUCKET: Duration = Duration::from_millis(1);

/// How one circuit decides to open, probe and close.
///
/// A plain struct with public fields: start from [`Default`] (VIBEZEN's
/// values) and change what you need. [`validate`](Self::validate) refuses a
/// config the breaker cannot work with; every constructor that takes a config
/// calls it.
///
/// ```
/// use std::time::Duration;
/// use vibezen_recovery::config::CircuitBreakerConfig;
///
/// let config = CircuitBreakerConfig {
///     failure_threshold: 3,
///     timeout: Duration::from_secs(10),
///     ..Default::default()
/// };
/// assert!(config.validate().is_ok());
/// ```
///
/// On the wire durations are seconds in floating point, missing fields take
/// their defaults and unknown fields are refused:
///
/// ```
/// use std::time::Duration;
/// use vibezen_recovery::config::CircuitBreakerConfig;
///
/// let config = CircuitBreakerConfig::from_json(r#"{"failure_threshold": 5, "timeout": 60.0}"#)?;
/// assert_eq!(config.timeout, Duration::from_secs(60));
///
/// let err = CircuitBreakerConfig::from_json(r#"{"timout": 60.0}"#).unwrap_err();
/// assert_eq!(err.field(), "timout");
/// # Ok::<(), vibezen_recovery::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CircuitBreakerConfig {
    /// Consecutive failures in CLOSED that open the circuit.
    pub failure_threshold: u32,
    /// Successful trial calls in HALF_OPEN that close the circuit.
    pub success_threshold: u32,
    /// Time spent OPEN before the circuit moves to HALF_OPEN on its own.
    #[serde(with = "seconds")]
    pub timeout: Duration,
    /// Open when the failure rate over the window is at least this, in (0, 1].
    pub failure_rate_threshold: f64,
    /// Calls the window must hold before its failure rate counts.
    pub min_calls: u32,
    /// After this long with no admitted call, a CLOSED or HALF_OPEN circuit
    /// forgets its window and counters and is CLOSED.
    #[serde(with = "seconds")]
    pub reset_timeout: Duration,
    /// The sliding window over which the failure rate is measured.
    pub window: WindowConfig,
    /// Trial calls allowed in flight at once in HALF_OPEN; `None` means
    /// `success_threshold`.
    pub half_open_max_calls: Option<u32>,
    /// A protected call that runs longer is cut off and counts as a failure.
    #[serde(with = "seconds::option")]
    pub call_timeout: Option<Duration>,
    /// Whether the workflow depends on this service: a critical circuit
    /// weighs three times as much in the health score, is listed among the
    /// critical services while it is down, and stops
    /// `should_continue_workflow` while it is down: from the moment it opens
    /// until it closes again, HALF_OPEN included. It does not change how the
    /// circuit itself behaves.
    #[serde(default)]
    pub critical: bool,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerConfig {
            failure_threshold: 5,
            success_threshold: 2,
            timeout: Duration::from_secs(60),
            failure_rate_threshold: 0.5,
            min_calls: 10,
            reset_timeout: Duration::from_secs(120),
            window: WindowConfig::default(),
            half_open_max_calls: None,
            call_timeout: None,
            critical: false,
        }
    }
}

/// The sliding window that the failure rate is computed over.
///
/// In JSON: `{"kind": "count", "size": 100}` or
/// `{"kind": "time", "duration": 60.0, "buckets": 60}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WindowConfig {
    /// The last `size` recorded calls.
    Count {
        /// How many calls the window holds.
        size: u32,
    },
    /// The calls recorded in the last `duration`, kept in `buckets` equal
    /// slices; a slice leaves the window whole, so the window spans between
    /// `duration - duration / buckets` and `duration`.
    Time {
        /// How far back the window reaches.
        #[serde(with = "seconds")]
        duration: Duration,
        /// How many slices the duration is cut into.
        buckets: u32,
    },
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig::Count { size: 100 }
    }
}

impl CircuitBreakerConfig {
    /// Reads a config from JSON and validates it.
    ///
    /// Stricter than plain serde: the document must be one JSON object with
    /// no field given twice, and every error names the field it is about
    /// (`window.size` for a nested one): a wrong type, an unknown field, a
    /// value out of range.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let config = json::config_from_json(json)?;
        config.validate()?;
        Ok(config)
    }

    /// The number of trial calls allowed in flight at once in HALF_OPEN.
    pub fn max_trial_calls(&self) -> u32 {
        self.half_open_max_calls.unwrap_or(self.success_threshold)
    }

    /// Checks every field; the first one that is wrong is named in the error.
    ///
    /// ```
    /// use vibezen_recovery::config::CircuitBreakerConfig;
    ///
    /// let config = CircuitBreakerConfig { failure_rate_threshold: 1.5, ..Default::default() };
    /// let err = config.validate().unwrap_err();
    /// assert_eq!(err.field(), "failure_rate_threshold");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("failure_threshold", self.failure_threshold)?;
        at_least_one("success_threshold", self.success_threshold)?;
        positive_duration("timeout", self.timeout)?;
        let rate = self.failure_rate_threshold;
        if !(rate > 0.0 && rate <= 1.0) {
            return Err(invalid(
                "failure_rate_threshold",
                format!("must be greater than 0 and at most 1 (got {rate})"),
            ));
        }
        at_least_one("min_calls", self.min_calls)?;
        positive_duration("reset_timeout", self.reset_timeout)?;
        self.window.validate(self.min_calls)?;
        if let Some(max) = self.half_open_max_calls {
            at_least_one("half_open_max_calls", max)?;
        }
        if let Some(call_timeout) = self.call_timeout {
            positive_duration("call_timeout", call_timeout)?;
        }
        Ok(())
    }
}

impl WindowConfig {
    fn validate(&self, min_calls: u32) -> Result<(), ConfigError> {
        match *self {
            WindowConfig::Count { size } => {
                if size < min_calls {
                    return Err(invalid(
                        "window.size",
                        format!(
                            "must hold at least min_calls ({min_calls}) calls, or the failure rate never counts (got {size})"
                        ),
                    ));
                }
                if size > MAX_WINDOW_CALLS {
                    return Err(invalid(
                        "window.size",
                        format!("must be at most {MAX_WINDOW_CALLS} calls (got {size})"),
                    ));
                }
            }
            WindowConfig::Time { duration, buckets } => {
                positive_duration("window.duration", duration)?;
                at_least_one("window.buckets", buckets)?;
                if buckets > MAX_WINDOW_BUCKETS {
                    return Err(invalid(
                        "window.buckets",
                        format!("must be at most {MAX_WINDOW_BUCKETS} (got {buckets})"),
                    ));
                }
                if duration / buckets < MIN_BUCKET {
                    return Err(invalid(
                        "window.buckets",
                        format!(
                            "each bucket must span at least {} ms ({buckets} buckets over {duration:?})",
                            MIN_BUCKET.as_millis()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn invalid(field: &'static str, reason: String) -> ConfigError {
    ConfigError::Invalid { field, reason }
}

fn at_least_one(field: &'static str, value: u32) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(invalid(field, "must be at least 1 (got 0)".to_owned()));
    }
    Ok(())
}

fn positive_duration(field: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(invalid(field, "must be longer than zero".to_owned()));
    }
    if value > MAX_DURATION {
        return Err(invalid(
            field,
            format!(
                "must be at most {} s, one year (got {value:?})",
                MAX_DURATION.as_secs()
            ),
        ));
    }
    Ok(())
}

/// A config, a JSON document or a circuit name that the breaker refuses.
///
/// [`field`](Self::field) says where the problem is, as the field is spelled
/// in [`CircuitBreakerConfig`] (`window.size` for a nested one).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field holds a value the breaker cannot work with.
    Invalid {
        /// The field, as spelled in the struct.
        field: &'static str,
        /// What is wrong with it and what would be right.
        reason: String,
    },
    /// JSON that does not describe a config: bad syntax, a wrong type, an
    /// unknown or repeated field, a value out of range.
    Json {
        /// Where in the document, such as `window.size`; empty when the
        /// document itself is at fault (bad syntax, not an object). Control
        /// characters are escaped and the length is bounded.
        field: String,
        /// What is wrong, bounded in length.
        reason: String,
    },
    /// A circuit name the breaker refuses (see [`validate_circuit_name`](crate::name::validate_circuit_name)).
    InvalidName {
        /// The name as given, with control characters escaped.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
}

impl ConfigError {
    /// The field at fault (`"name"` for a refused circuit name, empty when a
    /// JSON document is malformed as a whole).
    pub fn field(&self) -> &str {
        match self {
            ConfigError::Invalid { field, .. } => field,
            ConfigError::Json { field, .. } => field,
            ConfigError::InvalidName { .. } => "name",
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Invalid { field, reason } => {
                write!(f, "invalid circuit breaker config: `{field}` {reason}")
            }
            ConfigError::Json { field, reason } if field.is_empty() => {
                write!(f, "invalid circuit breaker config JSON: {reason}")
            }
            ConfigError::Json { field, reason } => {
                write!(
                    f,
                    "invalid circuit breaker config JSON at `{field}`: {reason}"
                )
            }
            ConfigError::InvalidName { name, reason } => {
                write!(f, "invalid circuit name \"{name}\": {reason}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

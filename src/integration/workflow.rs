//! `WorkflowConfig`: how a VIBEZEN workflow uses circuit breakers, and
//! `StartError`: why an integration could not be started with one.

use std::fmt;
use std::time::Duration;

use crate::config::{CircuitBreakerConfig, ConfigError};
use crate::seconds::MAX_DURATION;

/// The settings of a [`VibezenIntegration`](super::VibezenIntegration)
/// (VIBEZEN's `VIBEZENConfig(enable_circuit_breaker=True, ...)`).
///
/// ```
/// use vibezen_recovery::integration::WorkflowConfig;
///
/// let config = WorkflowConfig { min_health_score: 0.8, ..Default::default() };
/// assert!(config.enable_circuit_breaker);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowConfig {
    /// Whether calls go through circuit breakers. When false, protected
    /// calls run the service directly (no rejection, no timeout, no panic
    /// shield, no fallback on rejection), no circuit is created, and the
    /// health report says protection is off.
    pub enable_circuit_breaker: bool,
    /// The system health score (in [0, 1]) below which
    /// `should_continue_workflow` (and the health report's
    /// `should_continue`) says stop, even with every critical circuit
    /// closed.
    pub min_health_score: f64,
    /// The config of a circuit created on its first call, without a preset.
    pub default_config: CircuitBreakerConfig,
    /// How long one degradation or recovery handler may run before it is cut
    /// off (and logged), so a hung handler cannot hold up the others.
    pub handler_timeout: Duration,
    /// Whether a protected call by a name no circuit has creates one with
    /// `default_config`, even after circuits were set up from a file or
    /// presets. False by default: once set up, every circuit a service uses
    /// is in its file, so a new name is a typo, and the call is refused
    /// with [`CallError::UnknownCircuit`](crate::circuit::CallError::UnknownCircuit)
    /// naming the nearest circuit. Before any set-up, names are always
    /// created on first use (VIBEZEN's `get_breaker`).
    pub create_unknown_circuits: bool,
}

impl Default for WorkflowConfig {
    fn default() -> Self {
        WorkflowConfig {
            enable_circuit_breaker: true,
            min_health_score: 0.5,
            default_config: CircuitBreakerConfig::default(),
            handler_timeout: Duration::from_secs(30),
            create_unknown_circuits: false,
        }
    }
}

impl WorkflowConfig {
    /// Checks every setting; the first one that is wrong is named.
    ///
    /// ```
    /// use vibezen_recovery::integration::WorkflowConfig;
    ///
    /// let config = WorkflowConfig { min_health_score: 1.5, ..Default::default() };
    /// assert_eq!(config.validate().unwrap_err().field(), "min_health_score");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let floor = self.min_health_score;
        if !(0.0..=1.0).contains(&floor) {
            return Err(ConfigError::Invalid {
                field: "min_health_score",
                reason: format!("must be between 0 and 1 (got {floor})"),
            });
        }
        if self.handler_timeout.is_zero() || self.handler_timeout > MAX_DURATION {
            return Err(ConfigError::Invalid {
                field: "handler_timeout",
                reason: format!(
                    "must be longer than zero and at most one year (got {:?})",
                    self.handler_timeout
                ),
            });
        }
        self.default_config.validate()
    }
}

/// Why [`VibezenIntegration::new`](super::VibezenIntegration::new) started
/// nothing.
///
/// ```
/// use vibezen_recovery::integration::{StartError, VibezenIntegration, WorkflowConfig};
///
/// // No actix System runs here: an error to handle, not a crash.
/// let err = VibezenIntegration::new(WorkflowConfig::default()).unwrap_err();
/// assert_eq!(err, StartError::NoSystem);
/// assert!(err.to_string().contains("#[actix::main]"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartError {
    /// A setting of the [`WorkflowConfig`] is refused; the error names it.
    InvalidConfig(ConfigError),
    /// No actix System runs on this thread. The integration starts actors on
    /// the current arbiter, which only a running System provides.
    NoSystem,
}

impl StartError {
    /// [`StartError::NoSystem`] unless this thread can start actors.
    pub(crate) fn unless_in_a_system() -> Result<(), StartError> {
        if crate::system::can_start_actors() {
            Ok(())
        } else {
            Err(StartError::NoSystem)
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::InvalidConfig(err) => err.fmt(f),
            StartError::NoSystem => f.write_str(
                "VibezenIntegration::new found no running actix System on this thread, and it \
                 starts actors: create it inside an actix System (#[actix::main], \
                 #[actix_web::main] or System::new().block_on(...))",
            ),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::InvalidConfig(err) => Some(err),
            StartError::NoSystem => None,
        }
    }
}

impl From<ConfigError> for StartError {
    fn from(err: ConfigError) -> Self {
        StartError::InvalidConfig(err)
    }
}

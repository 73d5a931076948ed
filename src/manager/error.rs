//! What can go wrong when asking the manager for something.

use std::fmt;

use super::UnknownCircuit;
use crate::config::ConfigError;
use crate::name::shown_name;

/// A request the manager could not carry out.
///
/// ```
/// use vibezen_recovery::manager::{ManagerError, UnknownCircuit};
///
/// let err = ManagerError::UnknownCircuit(UnknownCircuit::among("serch", ["search"]));
/// assert_eq!(
///     err.to_string(),
///     "no circuit named \"serch\" (did you mean \"search\"?): \
///      set it up first (a circuits file, presets or GetBreaker), or check the spelling"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManagerError {
    /// No circuit has this name (and this is the nearest one has).
    UnknownCircuit(UnknownCircuit),
    /// A name or config was refused; nothing was created.
    InvalidConfig(ConfigError),
    /// The named circuit stopped while the request was on its way and will
    /// be recreated; try again.
    CircuitUnavailable(String),
    /// The manager actor itself has stopped (its System is shutting down).
    ManagerUnavailable,
}

impl fmt::Display for ManagerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagerError::UnknownCircuit(unknown) => unknown.fmt(f),
            ManagerError::InvalidConfig(err) => err.fmt(f),
            ManagerError::CircuitUnavailable(name) => write!(
                f,
                "circuit \"{}\" stopped before it could answer; the manager recreates it, try again",
                shown_name(name)
            ),
            ManagerError::ManagerUnavailable => {
                f.write_str("the circuit breaker manager has stopped; its System is shutting down")
            }
        }
    }
}

impl std::error::Error for ManagerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ManagerError::InvalidConfig(err) => Some(err),
            ManagerError::UnknownCircuit(unknown) => Some(unknown),
            _ => None,
        }
    }
}

impl From<ConfigError> for ManagerError {
    fn from(err: ConfigError) -> Self {
        ManagerError::InvalidConfig(err)
    }
}

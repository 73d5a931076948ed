//! What a circuit may be called.

use crate::ConfigError;

/// The longest circuit name, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// Checks a circuit name: it must not be empty or only white space, must be
/// at most [`MAX_NAME_LEN`] bytes, and must hold no control characters (they
/// break logs, metrics labels and file names). Any other Unicode is welcome.
///
/// ```
/// use vibezen_recovery::validate_circuit_name;
///
/// assert!(validate_circuit_name("ai_provider_openai").is_ok());
/// assert!(validate_circuit_name("検索").is_ok());
/// assert!(validate_circuit_name("").is_err());
/// assert!(validate_circuit_name("line\nbreak").is_err());
/// ```
pub fn validate_circuit_name(name: &str) -> Result<(), ConfigError> {
    let reason = if name.trim().is_empty() {
        "must not be empty or only white space"
    } else if name.len() > MAX_NAME_LEN {
        "must be at most 256 bytes long"
    } else if name.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    let shown: String = name.chars().take(64).collect();
    Err(ConfigError::InvalidName {
        name: shown.escape_debug().to_string(),
        reason,
    })
}

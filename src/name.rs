//! What a circuit may be called.

use crate::config::ConfigError;

/// The longest circuit name, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// Checks a circuit name: it must not be empty or only white space, must be
/// at most [`MAX_NAME_LEN`] bytes, and must hold no control characters (they
/// break logs, metrics labels and file names). Any other Unicode is welcome.
///
/// ```
/// use vibezen_recovery::name::validate_circuit_name;
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
    Err(ConfigError::InvalidName {
        name: shown_name(name),
        reason,
    })
}

/// A name as error messages and logs show it: control characters escaped
/// and at most 64 characters, so that a hostile name cannot forge a log
/// line or make a megabyte-long message.
pub(crate) fn shown_name(name: &str) -> String {
    let mut shown = String::new();
    for (count, c) in name.chars().enumerate() {
        if count == 64 {
            shown.push('…');
            break;
        }
        if c.is_control() {
            shown.extend(c.escape_debug());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// The one `&'static` copy of `name`, so that errors can name their circuit
/// without allocating or touching a shared reference count on every
/// rejection. A thin reference (to a `String`), so that an error naming its
/// circuit stays small.
///
/// Each distinct name is stored once for the life of the process; names are
/// short (at most [`MAX_NAME_LEN`] bytes) and a service has a bounded set of
/// them, so this costs what the names cost.
pub(crate) fn intern(name: &str) -> &'static String {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    static NAMES: OnceLock<Mutex<HashMap<&'static str, &'static String>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(&interned) = names.get(name) {
        return interned;
    }
    let interned: &'static String = Box::leak(Box::new(name.to_owned()));
    names.insert(interned.as_str(), interned);
    interned
}

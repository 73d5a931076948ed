//! What must hold for any config or circuits-file document, however hostile.
//!
//! Shared by the proptests of this binary and the fuzz target
//! (`fuzz/fuzz_targets/config_json.rs` includes this file), so both check
//! the same properties. Each check returns a description of what broke
//! rather than panicking, so a proptest can shrink and print it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use vibezen_recovery::config::{CircuitBreakerConfig, ConfigError, MAX_DURATION, WindowConfig};
use vibezen_recovery::integration::{CircuitsFile, CircuitsFileError};
use vibezen_recovery::name::validate_circuit_name;
use vibezen_recovery::outcome::Outcome;
use vibezen_recovery::state_machine::StateMachine;

/// The longest field path a JSON error names, in characters: at most 200
/// characters of the document are shown, then an ellipsis, and each control
/// character among them is escaped to at most six (`\u{9f}`).
pub const MAX_FIELD: usize = 200 * 6 + 1;

/// The longest message an error about a config may have, in bytes. A JSON
/// error holds a field path and a reason of at most 200 characters each
/// before escaping, some 1,200 bytes each after; validation errors stay far
/// below (the longest write a number out in full: `1e308` as 309 digits),
/// and so do refused names, shown to 64 characters.
pub const MAX_MESSAGE: usize = 4_096;

/// Every field a validation error may name.
pub const KNOWN_FIELDS: [&str; 13] = [
    "failure_threshold",
    "success_threshold",
    "timeout",
    "failure_rate_threshold",
    "min_calls",
    "reset_timeout",
    "window",
    "window.size",
    "window.duration",
    "window.buckets",
    "half_open_max_calls",
    "call_timeout",
    "critical",
];

/// `text` has no control character other than the line breaks in `allowed`.
fn printable(what: &str, text: &str, allowed: &[char]) -> Result<(), String> {
    match text
        .chars()
        .find(|c| c.is_control() && !allowed.contains(c))
    {
        Some(c) => Err(format!(
            "{what} holds the raw control character {c:?}: {text:?}"
        )),
        None => Ok(()),
    }
}

/// A refusal is readable and bounded, and names a field it can.
pub fn config_error(err: &ConfigError) -> Result<(), String> {
    let message = err.to_string();
    let field = err.field();
    printable("the message", &message, &[])?;
    printable("the field", field, &[])?;
    if message.len() > MAX_MESSAGE {
        return Err(format!(
            "a message of {} bytes: {:?}…",
            message.len(),
            message.chars().take(120).collect::<String>()
        ));
    }
    if message.trim().is_empty() {
        return Err(format!("an empty message for {err:?}"));
    }
    if field.chars().count() > MAX_FIELD {
        return Err(format!(
            "a field path of {} characters",
            field.chars().count()
        ));
    }
    if !field.is_empty() && !message.contains(field) {
        return Err(format!("the message does not name {field:?}: {message:?}"));
    }
    match err {
        ConfigError::Invalid { field, .. } if !KNOWN_FIELDS.contains(field) => Err(format!(
            "a validation error names no field of the config: {err:?}"
        )),
        ConfigError::InvalidName { .. } if field != "name" => {
            Err(format!("a name error names {field:?}"))
        }
        _ => Ok(()),
    }
}

/// `from_json` on any text: a config that validates and works, or a
/// readable refusal.
pub fn config_json(json: &str) -> Result<Option<CircuitBreakerConfig>, String> {
    match CircuitBreakerConfig::from_json(json) {
        Ok(config) => {
            accepted(&config)?;
            Ok(Some(config))
        }
        Err(err) => config_error(&err).map(|()| None),
    }
}

/// A config that `from_json` or `validate` let through: it validates, a
/// state machine runs with it at the edges of time, and it saves and loads
/// again as itself (durations to within a microsecond, as they travel as
/// floating-point seconds, and the rate to within a few units in the last
/// place).
pub fn accepted(config: &CircuitBreakerConfig) -> Result<(), String> {
    config
        .validate()
        .map_err(|err| format!("accepted, then refused by validate: {err}"))?;
    usable(config)?;
    let saved = serde_json::to_string(config).map_err(|err| format!("does not save: {err}"))?;
    let loaded = CircuitBreakerConfig::from_json(&saved)
        .map_err(|err| format!("saved as {saved}, does not load again: {err}"))?;
    if !about_the_same(config, &loaded) {
        return Err(format!("saved and loaded, {config:?} became {loaded:?}"));
    }
    Ok(())
}

fn about_the_same(a: &CircuitBreakerConfig, b: &CircuitBreakerConfig) -> bool {
    let close = |x: Duration, y: Duration| x.abs_diff(y) <= Duration::from_micros(1);
    let windows = match (a.window, b.window) {
        (WindowConfig::Count { size: x }, WindowConfig::Count { size: y }) => x == y,
        (
            WindowConfig::Time {
                duration: x,
                buckets: p,
            },
            WindowConfig::Time {
                duration: y,
                buckets: q,
            },
        ) => close(x, y) && p == q,
        _ => false,
    };
    let call_timeouts = match (a.call_timeout, b.call_timeout) {
        (Some(x), Some(y)) => close(x, y),
        (x, y) => x == y,
    };
    windows
        && call_timeouts
        && close(a.timeout, b.timeout)
        && close(a.reset_timeout, b.reset_timeout)
        && a.failure_threshold == b.failure_threshold
        && a.success_threshold == b.success_threshold
        && ulps_apart(a.failure_rate_threshold, b.failure_rate_threshold) <= 4
        && a.min_calls == b.min_calls
        && a.half_open_max_calls == b.half_open_max_calls
        && a.critical == b.critical
}

/// How many representable doubles lie between two finite positive ones.
/// Without its `float_roundtrip` feature serde_json parses a float to
/// within a unit or two in the last place, so a rate may come back a few
/// units off.
fn ulps_apart(a: f64, b: f64) -> u64 {
    a.to_bits().abs_diff(b.to_bits())
}

/// A machine with this config admits, counts, opens, probes and resets
/// without panicking, even with every duration at its largest and time
/// moved years ahead.
pub fn usable(config: &CircuitBreakerConfig) -> Result<(), String> {
    let t0 = Instant::now();
    let mut machine = StateMachine::new(config.clone(), t0)
        .map_err(|err| format!("valid, but StateMachine::new refuses it: {err}"))?;
    let mut now = t0;
    for step in 0..4 {
        for _ in 0..3 {
            if let Ok(ticket) = machine.try_acquire(now) {
                let outcome = if step % 2 == 0 {
                    Outcome::Failure
                } else {
                    Outcome::Success
                };
                machine.record(ticket, outcome, now);
            }
        }
        let _ = machine.failure_rate(now);
        let _ = machine.window_counts(now);
        now = machine.next_deadline(now).unwrap_or(now).max(now) + config.timeout;
        machine.poll(now);
    }
    let far = now + MAX_DURATION * 3;
    machine.poll(far);
    let _ = machine.next_deadline(far);
    machine.reset(far);
    let _ = machine.drain_transitions().count();
    let totals = machine.totals();
    if totals.calls < totals.in_flight() {
        return Err(format!("the totals do not add up: {totals:?}"));
    }
    Ok(())
}

/// `CircuitsFile::from_json` on any text: every circuit valid, or a
/// document error, or the entries at fault, each readable.
pub fn circuits_json(json: &str) -> Result<(), String> {
    match CircuitsFile::from_json(json) {
        Ok(file) => {
            for (name, config) in &file.circuits {
                validate_circuit_name(name)
                    .map_err(|err| format!("loaded a circuit with a refused name: {err}"))?;
                accepted(config).map_err(|err| format!("circuit {name:?}: {err}"))?;
            }
            Ok(())
        }
        Err(CircuitsFileError::Read { .. }) => Err("a read error without a read".to_owned()),
        Err(CircuitsFileError::Document(err)) => config_error(&err),
        Err(err @ CircuitsFileError::Entries(_)) => {
            let CircuitsFileError::Entries(entries) = &err else {
                unreachable!()
            };
            if entries.is_empty() {
                return Err("an entries error with no entry".to_owned());
            }
            for entry in entries {
                config_error(&entry.error)
                    .map_err(|problem| format!("circuit {:?}: {problem}", entry.circuit))?;
                printable("an entry's message", &entry.to_string(), &[])?;
            }
            // One entry per line, and nothing else breaks a line.
            printable("the message", &err.to_string(), &['\n'])
        }
        // `CircuitsFileError` is `#[non_exhaustive]`: a kind added later
        // must be given its own check here.
        Err(other) => Err(format!("an error this check does not know: {other:?}")),
    }
}

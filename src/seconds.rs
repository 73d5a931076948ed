//! Durations on the wire as seconds in floating point (`"timeout": 60.0`), the
//! shape VIBEZEN's configs use.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// The longest duration any setting accepts: one year.
///
/// A bound keeps `Instant + duration` from overflowing (which would panic deep
/// inside a timer) and catches values that are surely typos, such as
/// milliseconds written where seconds were meant.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

fn from_secs(secs: f64) -> Result<Duration, String> {
    let shown = show(secs);
    if !secs.is_finite() {
        return Err(format!("must be a finite number of seconds (got {shown})"));
    }
    if secs < 0.0 {
        return Err(format!("must not be negative (got {shown} s)"));
    }
    match Duration::try_from_secs_f64(secs) {
        Ok(duration) if duration.is_zero() && secs > 0.0 => {
            Err(format!("must be at least one nanosecond (got {shown} s)"))
        }
        Ok(duration) if duration <= MAX_DURATION => Ok(duration),
        _ => Err(format!(
            "must be at most {} s, one year (got {shown} s)",
            MAX_DURATION.as_secs()
        )),
    }
}

/// A number as a person would write it: no 300-digit expansions.
fn show(secs: f64) -> String {
    if secs != 0.0 && !(1e-6..1e12).contains(&secs.abs()) {
        format!("{secs:e}")
    } else {
        format!("{secs}")
    }
}

pub(crate) fn serialize<S: Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(deserializer)?;
    from_secs(secs).map_err(serde::de::Error::custom)
}

/// The same for `Option<Duration>`, with `null` as `None`.
pub(crate) mod option {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => serializer.serialize_some(&duration.as_secs_f64()),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<f64>::deserialize(deserializer)? {
            Some(secs) => from_secs(secs).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

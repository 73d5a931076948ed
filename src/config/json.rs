//! Strict JSON loading: one object, no repeated field, and every error
//! naming the field at fault.
//!
//! Plain serde would accept an array in place of the object (the positional
//! form of a struct), silently keep the last of two equal keys, and report
//! errors inside the internally tagged `window` as just `window`. Loading
//! goes through a [`Value`] instead, so each part is checked where its path
//! is known.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use serde::de::{DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{CircuitBreakerConfig, ConfigError, WindowConfig};
use crate::seconds;

/// The longest field path or reason a JSON error carries, in characters.
const MAX_ERROR_TEXT: usize = 200;

/// Parses `json` into a config without validating its values.
pub(crate) fn config_from_json(json: &str) -> Result<CircuitBreakerConfig, ConfigError> {
    config_from_value(parse_object_document(json)?, "")
}

/// Parses a whole document: valid JSON (nesting at most 128 deep, nothing
/// after it), with no object that repeats a key.
pub(crate) fn parse_object_document(json: &str) -> Result<Value, ConfigError> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let value: Value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|err| json_error(&field_path("", err.path()), err.into_inner().to_string()))?;
    deserializer
        .end()
        .map_err(|err| json_error("", err.to_string()))?;
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let duplicate = DuplicateKeys { path: "" }
        .deserialize(&mut deserializer)
        .map_err(|err| json_error("", err.to_string()))?;
    if let Some(path) = duplicate {
        return Err(json_error(&path, "is given more than once".to_owned()));
    }
    Ok(value)
}

/// Reads a config out of `value`, naming fields below `prefix` (such as
/// `circuits.search` when configs are nested in a larger document).
pub(crate) fn config_from_value(
    value: Value,
    prefix: &str,
) -> Result<CircuitBreakerConfig, ConfigError> {
    let Value::Object(mut fields) = value else {
        return Err(json_error(
            prefix,
            format!("must be a JSON object, not {}", kind_of(&value)),
        ));
    };
    let window = fields.remove("window");
    let mut config: CircuitBreakerConfig = typed(Value::Object(fields), prefix)?;
    if let Some(window) = window {
        config.window = window_from_value(window, &join(prefix, "window"))?;
    }
    Ok(config)
}

fn window_from_value(value: Value, path: &str) -> Result<WindowConfig, ConfigError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Count {
        size: u32,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Time {
        #[serde(with = "seconds")]
        duration: Duration,
        buckets: u32,
    }

    let Value::Object(mut fields) = value else {
        return Err(json_error(
            path,
            format!(
                r#"must be an object such as {{"kind": "count", "size": 100}}, not {}"#,
                kind_of(&value)
            ),
        ));
    };
    let kind_path = join(path, "kind");
    match fields.remove("kind") {
        Some(Value::String(kind)) if kind == "count" => {
            let Count { size } = typed(Value::Object(fields), path)?;
            Ok(WindowConfig::Count { size })
        }
        Some(Value::String(kind)) if kind == "time" => {
            let Time { duration, buckets } = typed(Value::Object(fields), path)?;
            Ok(WindowConfig::Time { duration, buckets })
        }
        Some(other) => Err(json_error(
            &kind_path,
            format!(r#"must be "count" or "time" (got {other})"#),
        )),
        None => Err(json_error(
            &kind_path,
            r#"is missing: say "count" or "time""#.to_owned(),
        )),
    }
}

/// Deserializes `value` as a `T`, naming the failing field below `prefix`.
fn typed<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let mut field = field_path(prefix, err.path());
        let reason = err.into_inner().to_string();
        // serde reports a missing field at its parent; name the field itself.
        if let Some(missing) = reason
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            field = join(&field, missing);
        }
        json_error(&field, reason)
    })
}

/// The part of a syntax error's path that is known (serde_path_to_error
/// writes `?` for a key it had not read yet).
/// A path below `prefix` as fields are named here: `window.size`,
/// `circuits.a`, `[3]`, empty for the document itself. Keys are taken as
/// written (even `.` or an empty key, which the path's `Display` would
/// blur), and a path ends where the parser had not yet read a key.
fn field_path(prefix: &str, path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;

    let mut field = prefix.to_owned();
    let mut at_root = prefix.is_empty();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => field.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !at_root {
                    field.push('.');
                }
                field.push_str(key);
            }
            Segment::Unknown => break,
        }
        at_root = false;
    }
    field
}

fn join(prefix: &str, field: &str) -> String {
    match (prefix.is_empty(), field.is_empty()) {
        (true, _) => field.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}.{field}"),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON error whose texts are safe to log: control characters escaped,
/// length bounded (a hostile document cannot make a megabyte-long error).
pub(crate) fn json_error(field: &str, reason: String) -> ConfigError {
    ConfigError::Json {
        field: printable(field),
        reason: printable(&reason),
    }
}

fn printable(text: &str) -> String {
    let mut shown = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == MAX_ERROR_TEXT {
            shown.push('…');
            break;
        }
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// Walks a document and returns the path of the first key that an object
/// repeats (serde_json's `Value` would silently keep the last one).
struct DuplicateKeys<'a> {
    path: &'a str,
}

impl<'de> DeserializeSeed<'de> for DuplicateKeys<'_> {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DuplicateKeys<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        let mut index = 0;
        loop {
            let path = format!("{}[{index}]", self.path);
            match seq.next_element_seed(DuplicateKeys { path: &path })? {
                Some(inner) => found = found.or(inner),
                None => return Ok(found),
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = HashSet::new();
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            let path = join(self.path, &key);
            let inner = map.next_value_seed(DuplicateKeys { path: &path })?;
            if !seen.insert(key) {
                found = found.or(Some(path));
            }
            found = found.or(inner);
        }
        Ok(found)
    }
}

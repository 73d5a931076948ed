//! A whole set of circuits from one JSON file.
//!
//! ```json
//! {
//!   "circuits": {
//!     "ai_provider_openai": { "preset": "AI_PROVIDER" },
//!     "cache": { "preset": "CACHE_SERVICE", "overrides": { "timeout": 5.0 } },
//!     "billing": { "failure_threshold": 2, "timeout": 30.0, "critical": true }
//!   }
//! }
//! ```
//!
//! An entry is a preset (its JSON name, see [`Preset`]) with optional
//! `overrides` (any config fields; a `window` replaces the preset's whole), or
//! an explicit config whose missing fields take their defaults. The file is
//! read strictly: one object, no key given twice, no unknown field. Every bad
//! entry is reported by name, not just the first, and nothing is loaded
//! unless the whole file is valid.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::config::json::{config_from_value, json_error, parse_object_document};
use crate::config::{CircuitBreakerConfig, ConfigError};
use crate::name::{shown_name, validate_circuit_name};
use crate::presets::Preset;

/// A set of named circuit configs, every one valid.
///
/// ```
/// use vibezen_recovery::integration::CircuitsFile;
/// use vibezen_recovery::presets;
///
/// let file = CircuitsFile::from_json(r#"{"circuits": {
///     "search": {"preset": "SEARCH_SERVICE", "overrides": {"critical": true}},
///     "billing": {"failure_threshold": 2}
/// }}"#)?;
/// assert!(file.circuits["search"].critical);
/// assert_eq!(file.circuits["search"].timeout, presets::search_service().timeout);
/// assert_eq!(file.circuits["billing"].failure_threshold, 2);
/// # Ok::<(), vibezen_recovery::integration::CircuitsFileError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CircuitsFile {
    /// Each circuit's config, by name.
    pub circuits: BTreeMap<String, CircuitBreakerConfig>,
}

/// A circuits file that was not loaded; nothing from it was used.
#[derive(Debug)]
#[non_exhaustive]
pub enum CircuitsFileError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The document as a whole is wrong: not JSON, a key given twice, no
    /// `circuits` object, an unknown top-level field.
    Document(ConfigError),
    /// Some entries are wrong: every one of them, by name.
    Entries(Vec<EntryError>),
}

/// One circuit entry that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    /// The circuit's name, as written in the file.
    pub circuit: String,
    /// What is wrong with it.
    pub error: ConfigError,
}

impl EntryError {
    /// Where in the document the problem is, such as
    /// `circuits.cache.overrides.timeout`.
    pub fn path(&self) -> String {
        let circuit = shown_name(&self.circuit);
        match &self.error {
            ConfigError::Json { field, .. } => field.clone(),
            ConfigError::Invalid { field, .. } => format!("circuits.{circuit}.{field}"),
            ConfigError::InvalidName { .. } => format!("circuits.{circuit}"),
        }
    }
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "circuit \"{}\": {}",
            shown_name(&self.circuit),
            self.error
        )
    }
}

impl std::error::Error for EntryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl fmt::Display for CircuitsFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CircuitsFileError::Read { path, source } => {
                write!(
                    f,
                    "cannot read circuits file `{}`: {source}",
                    path.display()
                )
            }
            CircuitsFileError::Document(err) => write!(f, "invalid circuits file: {err}"),
            CircuitsFileError::Entries(errors) => {
                write!(
                    f,
                    "{} circuit entr{} invalid; nothing was loaded:",
                    errors.len(),
                    if errors.len() == 1 { "y is" } else { "ies are" }
                )?;
                for error in errors {
                    write!(f, "\n  - {error}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for CircuitsFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CircuitsFileError::Read { source, .. } => Some(source),
            CircuitsFileError::Document(err) => Some(err),
            CircuitsFileError::Entries(errors) => errors
                .first()
                .map(|err| err as &(dyn std::error::Error + 'static)),
        }
    }
}

impl CircuitsFile {
    /// Reads and checks a circuits file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CircuitsFileError> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path).map_err(|source| CircuitsFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        CircuitsFile::from_json(&json)
    }

    /// Checks a circuits document.
    ///
    /// ```
    /// use vibezen_recovery::integration::{CircuitsFile, CircuitsFileError};
    ///
    /// let err = CircuitsFile::from_json(r#"{"circuits": {
    ///     "a": {"preset": "AI_PROVIDR"},
    ///     "b": {"timeout": -1.0},
    ///     "c": {"preset": "CACHE_SERVICE"}
    /// }}"#).unwrap_err();
    /// let CircuitsFileError::Entries(errors) = err else { panic!("{err}") };
    /// let named: Vec<_> = errors.iter().map(|e| e.path()).collect();
    /// assert_eq!(named, ["circuits.a.preset", "circuits.b.timeout"]);
    /// ```
    pub fn from_json(json: &str) -> Result<Self, CircuitsFileError> {
        let document = parse_object_document(json).map_err(CircuitsFileError::Document)?;
        let entries = circuits_of(document).map_err(CircuitsFileError::Document)?;
        let mut circuits = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, entry) in entries {
            match entry_config(&name, entry) {
                Ok(config) => {
                    circuits.insert(name, config);
                }
                Err(error) => errors.push(EntryError {
                    circuit: name,
                    error,
                }),
            }
        }
        if errors.is_empty() {
            Ok(CircuitsFile { circuits })
        } else {
            Err(CircuitsFileError::Entries(errors))
        }
    }
}

/// The `circuits` object of a document that has nothing else.
fn circuits_of(document: Value) -> Result<Map<String, Value>, ConfigError> {
    let Value::Object(mut top) = document else {
        return Err(json_error(
            "",
            r#"must be an object such as {"circuits": {"search": {"preset": "SEARCH_SERVICE"}}}"#
                .to_owned(),
        ));
    };
    let circuits = top.remove("circuits");
    if let Some(unknown) = top.keys().next() {
        return Err(json_error(
            unknown,
            "is not a known field; the file holds only `circuits`".to_owned(),
        ));
    }
    match circuits {
        Some(Value::Object(circuits)) => Ok(circuits),
        Some(_) => Err(json_error(
            "circuits",
            "must be an object from circuit names to configs".to_owned(),
        )),
        None => Err(json_error(
            "circuits",
            "is missing: say which circuits to create".to_owned(),
        )),
    }
}

fn entry_config(name: &str, entry: Value) -> Result<CircuitBreakerConfig, ConfigError> {
    validate_circuit_name(name)?;
    let path = format!("circuits.{}", shown_name(name));
    let config = match entry {
        Value::Object(mut fields) if fields.contains_key("preset") => {
            let preset = preset_of(fields.remove("preset"), &format!("{path}.preset"))?;
            let overrides = fields.remove("overrides");
            if let Some(unknown) = fields.keys().next() {
                return Err(json_error(
                    &format!("{path}.{unknown}"),
                    "is not a known field; a preset entry takes `preset` and `overrides` \
                     (put config fields inside `overrides`)"
                        .to_owned(),
                ));
            }
            let overrides_path = format!("{path}.overrides");
            let config = with_overrides(preset, overrides, &overrides_path)?;
            // The preset's own values are valid, so a value out of range
            // came from an override: name it there.
            return match config.validate() {
                Ok(()) => Ok(config),
                Err(ConfigError::Invalid { field, reason }) => {
                    Err(json_error(&format!("{overrides_path}.{field}"), reason))
                }
                Err(other) => Err(other),
            };
        }
        Value::Object(fields) if fields.contains_key("overrides") => {
            return Err(json_error(
                &format!("{path}.overrides"),
                "needs a `preset` to override; for an explicit config write its fields directly"
                    .to_owned(),
            ));
        }
        explicit => config_from_value(explicit, &path)?,
    };
    config.validate()?;
    Ok(config)
}

fn preset_of(value: Option<Value>, path: &str) -> Result<Preset, ConfigError> {
    let known = || {
        Preset::ALL
            .iter()
            .map(|preset| preset.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match value {
        Some(Value::String(name)) => Preset::from_name(&name).ok_or_else(|| {
            json_error(
                path,
                format!("names no preset (got \"{name}\"); use one of {}", known()),
            )
        }),
        _ => Err(json_error(
            path,
            format!("must be a preset name: one of {}", known()),
        )),
    }
}

fn with_overrides(
    preset: Preset,
    overrides: Option<Value>,
    path: &str,
) -> Result<CircuitBreakerConfig, ConfigError> {
    let overrides = match overrides {
        None => return Ok(preset.config()),
        Some(Value::Object(overrides)) => overrides,
        Some(_) => {
            return Err(json_error(
                path,
                r#"must be an object of config fields, such as {"timeout": 5.0}"#.to_owned(),
            ));
        }
    };
    let Ok(Value::Object(mut merged)) = serde_json::to_value(preset.config()) else {
        // A config always serializes to an object; say so rather than panic.
        return Err(json_error(
            path,
            format!("preset {preset} could not be merged"),
        ));
    };
    merged.extend(overrides);
    // The preset's own values are valid, so any error is in an override:
    // name it below `overrides`.
    config_from_value(Value::Object(merged), path)
}

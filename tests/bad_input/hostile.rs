//! Generators of hostile input: random JSON, valid configs as text that a
//! fault can be put into field by field, hostile value texts (some not
//! JSON at all), and random text edits.

use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Number, Value};
use vibezen_recovery::config::{
    CircuitBreakerConfig, MAX_DURATION, MAX_WINDOW_BUCKETS, MAX_WINDOW_CALLS, WindowConfig,
};

/// The config's field names, and the window's, so that random JSON often
/// speaks the config's language.
pub const FIELD_NAMES: [&str; 16] = [
    "failure_threshold",
    "success_threshold",
    "timeout",
    "failure_rate_threshold",
    "min_calls",
    "reset_timeout",
    "window",
    "half_open_max_calls",
    "call_timeout",
    "critical",
    "kind",
    "size",
    "duration",
    "buckets",
    "count",
    "time",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(&FIELD_NAMES[..]).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|x| Number::from_f64(x).map_or(Value::Null, Value::Number)),
        (0..=10u32).prop_map(Value::from),
        (0.0..=2.0f64).prop_map(Value::from),
    ]
}

/// Any JSON value up to a few levels deep, objects keyed mostly by the
/// config's own field names.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        key().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A valid config, anywhere in the valid space (not only small values).
pub fn valid_config() -> impl Strategy<Value = CircuitBreakerConfig> {
    let duration = prop_oneof![
        (1..=1_000_000_000u64).prop_map(Duration::from_nanos),
        (1..=MAX_DURATION.as_millis() as u64).prop_map(Duration::from_millis),
        Just(MAX_DURATION),
    ];
    let min_calls = prop_oneof![1..=20u32, 1..=MAX_WINDOW_CALLS];
    let rate = prop_oneof![
        Just(1.0),
        (1..=1_000u32).prop_map(|k| f64::from(k) / 1_000.0)
    ];
    (
        (1..=u32::MAX, 1..=u32::MAX, duration.clone(), rate),
        (min_calls, duration.clone(), any::<bool>()),
        (
            prop::option::of(1..=u32::MAX),
            prop::option::of(duration),
            any::<bool>(),
            any::<Index>(),
            any::<Index>(),
        ),
    )
        .prop_map(
            |(
                (failure_threshold, success_threshold, timeout, failure_rate_threshold),
                (min_calls, reset_timeout, count),
                (half_open_max_calls, call_timeout, critical, a, b),
            )| {
                let window = if count {
                    let spare = (MAX_WINDOW_CALLS - min_calls) as usize + 1;
                    WindowConfig::Count {
                        size: min_calls + a.index(spare) as u32,
                    }
                } else {
                    // At least a millisecond per bucket.
                    let millis = 1 + a.index(MAX_DURATION.as_millis() as usize) as u64;
                    let most = millis.min(u64::from(MAX_WINDOW_BUCKETS)) as usize;
                    WindowConfig::Time {
                        duration: Duration::from_millis(millis),
                        buckets: 1 + b.index(most) as u32,
                    }
                };
                CircuitBreakerConfig {
                    failure_threshold,
                    success_threshold,
                    timeout,
                    failure_rate_threshold,
                    min_calls,
                    reset_timeout,
                    window,
                    half_open_max_calls,
                    call_timeout,
                    critical,
                }
            },
        )
}

/// A config document as text, field by field, so that a fault can be put
/// into one field. Fields keep their raw text.
#[derive(Debug, Clone)]
pub struct Doc {
    pub top: Vec<(String, String)>,
    pub window: Vec<(String, String)>,
}

/// Where a fault goes.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// A top-level field, picked among those present.
    Top,
    /// A field of the window, picked among those present.
    Window,
}

impl Doc {
    pub fn from_value(value: Value) -> Doc {
        let Value::Object(fields) = value else {
            panic!("a config serializes to an object")
        };
        let mut doc = Doc {
            top: Vec::new(),
            window: Vec::new(),
        };
        for (key, value) in fields {
            match (key.as_str(), value) {
                ("window", Value::Object(window)) => {
                    doc.top.push((key, String::new()));
                    doc.window = window
                        .into_iter()
                        .map(|(key, value)| (key, value.to_string()))
                        .collect();
                }
                (_, value) => doc.top.push((key, value.to_string())),
            }
        }
        doc
    }

    /// The key a fault at `target`, `at` lands on, with its path.
    pub fn pick(&self, target: Target, at: Index) -> (usize, String) {
        match target {
            Target::Top => {
                let index = at.index(self.top.len());
                (index, self.top[index].0.clone())
            }
            Target::Window => {
                let index = at.index(self.window.len());
                (index, format!("window.{}", self.window[index].0))
            }
        }
    }

    fn edit(
        &self,
        top: &mut Vec<(String, String)>,
        window: &mut Vec<(String, String)>,
        target: Target,
        change: impl FnOnce(&mut Vec<(String, String)>),
    ) {
        match target {
            Target::Top => change(top),
            Target::Window => change(window),
        }
    }

    /// The document with `fault` in it, as text.
    pub fn with(&self, fault: &Fault) -> String {
        let mut top = self.top.clone();
        let mut window = self.window.clone();
        match fault {
            Fault::None => {}
            Fault::Value { target, at, text } => {
                let (index, _) = self.pick(*target, *at);
                self.edit(&mut top, &mut window, *target, |fields| {
                    fields[index].1 = text.clone();
                });
            }
            Fault::Duplicate { target, at, value } => {
                let (index, _) = self.pick(*target, *at);
                self.edit(&mut top, &mut window, *target, |fields| {
                    let key = fields[index].0.clone();
                    fields.push((key, value.to_string()));
                });
            }
            Fault::Unknown { target, key } => {
                self.edit(&mut top, &mut window, *target, |fields| {
                    fields.push((key.clone(), "1".to_owned()));
                });
            }
            Fault::Missing { at } => {
                let (index, _) = self.pick(Target::Window, *at);
                window.remove(index);
            }
        }
        let object = |fields: &[(String, String)], window: &str| {
            let fields: Vec<String> = fields
                .iter()
                .map(|(key, text)| {
                    let text = if key == "window" && text.is_empty() {
                        window
                    } else {
                        text
                    };
                    format!("{}: {text}", Value::String(key.clone()))
                })
                .collect();
            format!("{{{}}}", fields.join(", "))
        };
        let window = object(&window, "");
        object(&top, &window)
    }
}

pub fn valid_doc() -> impl Strategy<Value = Doc> {
    valid_config().prop_map(|config| Doc::from_value(serde_json::to_value(config).unwrap()))
}

/// One thing wrong with a valid document.
#[derive(Debug, Clone)]
pub enum Fault {
    None,
    /// A field's value replaced by this text, which may not be JSON.
    Value {
        target: Target,
        at: Index,
        text: String,
    },
    /// A field given again, later, with this value.
    Duplicate {
        target: Target,
        at: Index,
        value: Value,
    },
    /// A field the config does not have.
    Unknown {
        target: Target,
        key: String,
    },
    /// A field of the window left out.
    Missing {
        at: Index,
    },
}

/// What an error may name, for a fault.
#[derive(Debug, Clone, PartialEq)]
pub enum Blame {
    /// Exactly this field.
    Exactly(String),
    /// This field or something inside it (`window.size`, `timeout[0]`).
    Within(String),
}

impl Blame {
    pub fn matches(&self, field: &str) -> bool {
        match self {
            Blame::Exactly(expected) => field == expected,
            Blame::Within(outer) => {
                field == outer
                    || outer.is_empty()
                    || field.starts_with(&format!("{outer}."))
                    || field.starts_with(&format!("{outer}["))
            }
        }
    }
}

/// How a JSON error shows a field name: control characters escaped, at
/// most 200 characters and an ellipsis (the `ConfigError::Json` docs).
pub fn shown(field: &str) -> String {
    let mut shown = String::new();
    for (count, c) in field.chars().enumerate() {
        if count == 200 {
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

impl Fault {
    /// The fields an error about this fault may rightly name.
    pub fn blamed(&self, doc: &Doc) -> Vec<Blame> {
        match self {
            Fault::None => Vec::new(),
            Fault::Value { target, at, text } => {
                let (_, path) = doc.pick(*target, *at);
                let mut blamed = vec![Blame::Within(path.clone())];
                // A value that is not JSON may be noticed only after it, at
                // its parent.
                if serde_json::from_str::<Value>(text).is_err() {
                    blamed.push(Blame::Exactly(match target {
                        Target::Top => String::new(),
                        Target::Window => "window".to_owned(),
                    }));
                }
                match path.as_str() {
                    // The rules that tie two fields together.
                    "min_calls" => blamed.push(Blame::Exactly("window.size".to_owned())),
                    "window.duration" => blamed.push(Blame::Exactly("window.buckets".to_owned())),
                    // Another kind makes the other fields wrong.
                    "window.kind" => blamed.push(Blame::Within("window".to_owned())),
                    _ => {}
                }
                blamed
            }
            Fault::Duplicate { target, at, .. } => vec![Blame::Exactly(doc.pick(*target, *at).1)],
            Fault::Unknown { target, key } => vec![Blame::Exactly(match target {
                Target::Top => shown(key),
                Target::Window => shown(&format!("window.{key}")),
            })],
            Fault::Missing { at } => vec![Blame::Exactly(doc.pick(Target::Window, *at).1)],
        }
    }
}

/// Value texts meant to break things, JSON or not.
pub fn hostile_text() -> impl Strategy<Value = String> {
    let lexical = prop::sample::select(vec![
        "NaN",
        "Infinity",
        "-Infinity",
        "1e400",
        "-1e400",
        "1e-400",
        "-0",
        "-0.0",
        "01",
        "1.",
        ".5",
        "+1",
        "0x10",
        "1e",
        "--1",
        "tru",
        "nul",
        "",
        "1 2",
        "[1,]",
        "{\"a\":1,}",
        "'x'",
        "\"\\ud800\"",
        "\"\u{0}\"",
        "\"\\u0000\\n\\u001b[31m\"",
        "\"abc",
        "[[[[",
        "4294967296",
        "18446744073709551616",
        "-9223372036854775809",
        "31536000.000001",
        "1e-10",
        "\"60\"",
        "\"count\"",
        "\"time\"",
        "{}",
        "[]",
        "null",
        "true",
    ]);
    prop_oneof![
        3 => lexical.prop_map(str::to_owned),
        3 => json_value().prop_map(|value| value.to_string()),
        1 => (1..400usize).prop_map(|digits| "9".repeat(digits)),
        1 => (1..400usize).prop_map(|zeros| format!("0.{}1", "0".repeat(zeros))),
        1 => any::<f64>().prop_map(|x| format!("{x:e}")),
        1 => any::<i128>().prop_map(|x| x.to_string()),
        1 => (1..300usize).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth))),
        1 => (0..20_000usize).prop_map(|len| format!("\"{}\"", "x".repeat(len))),
        1 => any::<String>().prop_map(|text| Value::String(text).to_string()),
    ]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![2 => Just(Target::Top), 1 => Just(Target::Window)]
}

fn unknown_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{1,12}",
        any::<String>(),
        (200..400usize).prop_map(|len| "k".repeat(len)),
        Just("\u{1b}[2J".to_owned()),
    ]
    // A field named "." is blamed on its parent: see the ignored test
    // `bug_an_unknown_field_named_dot_is_blamed_on_its_parent`.
    .prop_filter("an unknown field", |key| {
        key != "."
            && !FIELD_NAMES[..10].contains(&key.as_str())
            && !["kind", "size", "duration", "buckets"].contains(&key.as_str())
    })
}

pub fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        6 => (target(), any::<Index>(), hostile_text())
            .prop_map(|(target, at, text)| Fault::Value { target, at, text }),
        2 => (target(), any::<Index>(), json_value())
            .prop_map(|(target, at, value)| Fault::Duplicate { target, at, value }),
        2 => (target(), unknown_key()).prop_map(|(target, key)| Fault::Unknown { target, key }),
        1 => any::<Index>().prop_map(|at| Fault::Missing { at }),
    ]
}

/// One edit to a text.
#[derive(Debug, Clone)]
pub enum Edit {
    Insert(char),
    Replace(char),
    Delete,
    /// Cut the text here.
    Truncate,
    /// Repeat the text from here to the end once more.
    Repeat,
}

impl Edit {
    pub fn apply(&self, text: &mut String, at: Index) {
        let boundaries: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        let i = boundaries[at.index(boundaries.len())];
        let next = boundaries.iter().copied().find(|&b| b > i);
        match (self, next) {
            (Edit::Insert(c), _) => text.insert(i, *c),
            (Edit::Replace(c), Some(end)) => text.replace_range(i..end, &c.to_string()),
            (Edit::Delete, Some(end)) => text.replace_range(i..end, ""),
            (Edit::Truncate, _) => text.truncate(i),
            (Edit::Repeat, _) => {
                let tail = text[i..].to_owned();
                text.push_str(&tail);
            }
            (Edit::Replace(_) | Edit::Delete, None) => {}
        }
    }
}

pub fn edit() -> impl Strategy<Value = Edit> {
    let significant = prop::sample::select(
        "{}[]\":,.-+eE0123456789 \n\\/untfal\u{0}\u{7f}é"
            .chars()
            .collect::<Vec<_>>(),
    );
    let character = prop_oneof![3 => significant, 1 => any::<char>()];
    prop_oneof![
        3 => character.clone().prop_map(Edit::Insert),
        3 => character.prop_map(Edit::Replace),
        3 => Just(Edit::Delete),
        1 => Just(Edit::Truncate),
        1 => Just(Edit::Repeat),
    ]
}

//! Hostile configs: `CircuitBreakerConfig::from_json` on random text,
//! random JSON and valid configs with one field broken, and `validate` on
//! random struct values. Every case ends in `Ok` or a readable
//! `ConfigError` naming the field at fault.

use std::time::Duration;

use proptest::prelude::*;
use vibezen_recovery::config::{
    CircuitBreakerConfig, ConfigError, MAX_DURATION, MAX_WINDOW_BUCKETS, MAX_WINDOW_CALLS,
    MIN_BUCKET, WindowConfig,
};

use crate::checks;
use crate::hostile::{self, Fault};

fn config(cases: u32) -> ProptestConfig {
    crate::proptest_config(cases)
}

proptest! {
    #![proptest_config(config(2_000))]

    /// Any text at all, valid UTF-8 or not (decoded lossily).
    #[test]
    fn any_text_is_a_config_or_a_readable_refusal(
        text in prop_oneof![
            any::<String>(),
            prop::collection::vec(any::<u8>(), 0..200)
                .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        ]
    ) {
        checks::config_json(&text).map_err(TestCaseError::fail)?;
    }

    /// Any JSON value, often an object with the config's own field names.
    #[test]
    fn any_json_value_is_a_config_or_a_readable_refusal(value in hostile::json_value()) {
        checks::config_json(&value.to_string()).map_err(TestCaseError::fail)?;
    }

    /// A valid config with one fault (a hostile value in one field, a field
    /// given twice, an unknown field, a field of the window missing): the
    /// config loads, or the error names the field at fault.
    #[test]
    fn one_fault_in_a_valid_config_is_named(doc in hostile::valid_doc(), fault in hostile::fault()) {
        let text = doc.with(&fault);
        let loaded = checks::config_json(&text).map_err(TestCaseError::fail)?;
        if loaded.is_none() {
            let err = CircuitBreakerConfig::from_json(&text).unwrap_err();
            let expected = fault.blamed(&doc);
            prop_assert!(
                expected.iter().any(|blamed| blamed.matches(err.field())),
                "expected the error to name one of {expected:?}, got {:?}: {err}\nin {text}",
                err.field()
            );
        }
        // Only a fault in a value can leave the document valid.
        if !matches!(fault, Fault::Value { .. }) {
            prop_assert!(loaded.is_none(), "{fault:?} was accepted: {text}");
        }
    }

    /// Random edits to the text of a valid config: whatever they break.
    #[test]
    fn edits_to_the_text_of_a_valid_config_are_refused_readably(
        doc in hostile::valid_doc(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), hostile::edit()), 1..6),
    ) {
        let mut text = doc.with(&Fault::None);
        for (at, edit) in edits {
            edit.apply(&mut text, at);
        }
        checks::config_json(&text).map_err(TestCaseError::fail)?;
    }

    /// `validate` on any struct value: it refuses exactly what the rules
    /// refuse, names the first wrong field in declaration order, and what
    /// it accepts a machine can run with.
    #[test]
    fn validate_refuses_exactly_the_invalid_structs(config in any_struct()) {
        let wrong = wrong_fields(&config);
        match config.validate() {
            Ok(()) => {
                prop_assert!(wrong.is_empty(), "accepted although {wrong:?} are wrong: {config:?}");
                checks::accepted(&config).map_err(TestCaseError::fail)?;
            }
            Err(err) => {
                checks::config_error(&err).map_err(TestCaseError::fail)?;
                prop_assert_eq!(
                    Some(&err.field()),
                    wrong.first(),
                    "{} for {:?}",
                    err,
                    config
                );
                prop_assert!(matches!(err, ConfigError::Invalid { .. }), "{:?}", err);
            }
        }
    }
}

/// The fields that the rules (issue 2, the field docs) say are wrong, in
/// declaration order: an independent statement of `validate`.
fn wrong_fields(c: &CircuitBreakerConfig) -> Vec<&'static str> {
    let duration_ok = |d: Duration| !d.is_zero() && d <= MAX_DURATION;
    let mut wrong = Vec::new();
    if c.failure_threshold == 0 {
        wrong.push("failure_threshold");
    }
    if c.success_threshold == 0 {
        wrong.push("success_threshold");
    }
    if !duration_ok(c.timeout) {
        wrong.push("timeout");
    }
    if !(c.failure_rate_threshold > 0.0 && c.failure_rate_threshold <= 1.0) {
        wrong.push("failure_rate_threshold");
    }
    if c.min_calls == 0 {
        wrong.push("min_calls");
    }
    if !duration_ok(c.reset_timeout) {
        wrong.push("reset_timeout");
    }
    match c.window {
        WindowConfig::Count { size } => {
            if size < c.min_calls || size > MAX_WINDOW_CALLS {
                wrong.push("window.size");
            }
        }
        WindowConfig::Time { duration, buckets } => {
            if !duration_ok(duration) {
                wrong.push("window.duration");
            } else if buckets == 0
                || buckets > MAX_WINDOW_BUCKETS
                || duration / buckets < MIN_BUCKET
            {
                wrong.push("window.buckets");
            }
        }
    }
    if c.half_open_max_calls == Some(0) {
        wrong.push("half_open_max_calls");
    }
    if c.call_timeout.is_some_and(|d| !duration_ok(d)) {
        wrong.push("call_timeout");
    }
    wrong
}

fn edge_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0),
        Just(1),
        1..=20u32,
        Just(MAX_WINDOW_CALLS),
        Just(MAX_WINDOW_CALLS + 1),
        Just(MAX_WINDOW_BUCKETS),
        Just(MAX_WINDOW_BUCKETS + 1),
        Just(u32::MAX),
        any::<u32>(),
    ]
}

fn edge_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_nanos(1)),
        Just(MIN_BUCKET - Duration::from_nanos(1)),
        Just(MIN_BUCKET),
        (1..=120u64).prop_map(Duration::from_secs),
        Just(MAX_DURATION),
        Just(MAX_DURATION + Duration::from_nanos(1)),
        Just(Duration::MAX),
        (any::<u64>(), 0..1_000_000_000u32).prop_map(|(s, n)| Duration::new(s, n)),
        (0..MAX_DURATION.as_nanos() as u64).prop_map(Duration::from_nanos),
    ]
}

fn edge_rate() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.0),
        Just(f64::from_bits(1)),
        Just(f64::MIN_POSITIVE),
        Just(1.0),
        Just(1.0 + f64::EPSILON),
        Just(1.0 - f64::EPSILON / 2.0),
        Just(-1.0),
        0.0..=1.0f64,
        any::<f64>(),
    ]
}

fn any_struct() -> impl Strategy<Value = CircuitBreakerConfig> {
    let window = prop_oneof![
        edge_u32().prop_map(|size| WindowConfig::Count { size }),
        (edge_duration(), edge_u32())
            .prop_map(|(duration, buckets)| WindowConfig::Time { duration, buckets }),
    ];
    (
        (edge_u32(), edge_u32(), edge_duration(), edge_rate()),
        (edge_u32(), edge_duration(), window),
        (
            prop::option::of(edge_u32()),
            prop::option::of(edge_duration()),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (failure_threshold, success_threshold, timeout, failure_rate_threshold),
                (min_calls, reset_timeout, window),
                (half_open_max_calls, call_timeout, critical),
            )| CircuitBreakerConfig {
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
            },
        )
}

// ------------------------------------------------------------------------
// Fixed hostile documents, too big for a random search to stumble on.
// ------------------------------------------------------------------------

#[track_caller]
fn refused(json: &str) -> ConfigError {
    match checks::config_json(json) {
        Ok(Some(config)) => panic!("accepted: {config:?}"),
        Ok(None) => CircuitBreakerConfig::from_json(json).unwrap_err(),
        Err(problem) => panic!("{problem}"),
    }
}

#[test]
fn deep_nesting_is_refused_by_field_without_exhausting_the_stack() {
    for depth in [129, 10_000, 1_000_000] {
        let arrays = format!(
            r#"{{"timeout": {}1{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let err = refused(&arrays);
        assert!(err.field().starts_with("timeout"), "{err}");
        let objects = format!(
            r#"{{"window": {}1{}}}"#,
            r#"{"a":"#.repeat(depth),
            "}".repeat(depth)
        );
        let err = refused(&objects);
        assert!(err.field().starts_with("window"), "{err}");
        // Unclosed, too.
        refused(&"[".repeat(depth));
        refused(&r#"{"a":"#.repeat(depth));
    }
}

#[test]
fn huge_documents_are_refused_with_bounded_messages() {
    let huge = "x".repeat(10 << 20);
    let err = refused(&format!(r#"{{"timeout": "{huge}"}}"#));
    assert_eq!(err.field(), "timeout");
    let err = refused(&format!(r#"{{"{huge}": 1}}"#));
    assert!(err.field().starts_with("xxx"), "{err}");
    let err = refused(&format!(r#"{{"window": {{"kind": "{huge}"}}}}"#));
    assert_eq!(err.field(), "window.kind");
    let digits = "9".repeat(1 << 20);
    let err = refused(&format!(r#"{{"failure_threshold": {digits}}}"#));
    assert_eq!(err.field(), "failure_threshold");
    let err = refused(&format!(r#"{{"timeout": {digits}.5}}"#));
    assert_eq!(err.field(), "timeout");
    // A million digits of a valid number load, as about one second.
    let loaded = checks::config_json(&format!(r#"{{"timeout": 0.{digits}}}"#));
    assert_eq!(loaded.unwrap().unwrap().timeout, Duration::from_secs(1));
    // A hundred thousand unknown fields: the first is named.
    let many: Vec<String> = (0..100_000).map(|i| format!(r#""f{i}": {i}"#)).collect();
    let err = refused(&format!("{{{}}}", many.join(",")));
    assert!(err.field().starts_with('f'), "{err}");
    // A field repeated a hundred thousand times.
    let repeated = vec![r#""timeout": 1.0"#; 100_000].join(",");
    assert_eq!(refused(&format!("{{{repeated}}}")).field(), "timeout");
}

#[test]
fn numbers_at_the_edges_of_every_numeric_type_are_named() {
    for (field, value) in [
        ("failure_threshold", "4294967296"),
        ("failure_threshold", "-1"),
        ("failure_threshold", "1e3"),
        ("failure_threshold", "1.0"),
        ("failure_threshold", "18446744073709551616"),
        ("min_calls", "-0"),
        ("half_open_max_calls", "-2147483649"),
        ("failure_rate_threshold", "1e400"),
        ("failure_rate_threshold", "-1e400"),
        ("failure_rate_threshold", "1.0000000000000002"),
        ("failure_rate_threshold", "-0.0"),
        ("failure_rate_threshold", "5e-324"), // valid: tiny, but above 0
        ("timeout", "1e-10"),
        ("timeout", "-0.0"),
        ("timeout", "31536000.000001"),
        ("timeout", "1e19"),
        ("timeout", "NaN"),
        ("timeout", "Infinity"),
        ("reset_timeout", "-1e-300"),
        ("call_timeout", "0"),
        ("call_timeout", "\"1\""),
    ] {
        let json = format!(r#"{{"{field}": {value}}}"#);
        match checks::config_json(&json) {
            Ok(Some(_)) => assert_eq!(value, "5e-324", "{json} accepted"),
            Ok(None) => {
                let err = CircuitBreakerConfig::from_json(&json).unwrap_err();
                // The syntax errors (NaN, Infinity) are about the whole
                // document; everything else names its field.
                if !["NaN", "Infinity"].contains(&value) {
                    assert_eq!(err.field(), field, "{json}: {err}");
                }
            }
            Err(problem) => panic!("{json}: {problem}"),
        }
    }
}

#[test]
fn control_characters_and_odd_unicode_never_reach_a_message_raw() {
    for json in [
        "{\"time\u{0}out\": 1}",
        "{\"timeout\": \"\\u0000\\u001b[31m\\u007f\\u0085\"}",
        "{\"\\u001b[2J\": 1}",
        "{\"window\": {\"kind\": \"\\n\"}}",
        "{\"window\": {\"kind\": \"count\", \"\\r\": 1}}",
        "{\"timeout\": \"\\ud800\"}",
        "{\"\\ud800\": 1}",
        "\u{feff}{}",
        "{\"timeout\": 1}\u{0}",
        "{\"timeout\":\u{b}1}",
    ] {
        checks::config_json(json).unwrap_or_else(|problem| panic!("{json:?}: {problem}"));
    }
}

/// `ConfigError::field` names the field at fault; for an unknown field
/// literally named `.` it names the parent instead (nothing at the top
/// level, which means "the document as a whole"), because the path `.` is
/// taken for the root. Found by `one_fault_in_a_valid_config_is_named`.
#[test]
fn bug_an_unknown_field_named_dot_is_blamed_on_its_parent() {
    let err = CircuitBreakerConfig::from_json(r#"{".": 1}"#).unwrap_err();
    assert_eq!(err.field(), ".", "{err}");
    let err =
        CircuitBreakerConfig::from_json(r#"{"window": {"kind": "count", "size": 100, ".": 1}}"#)
            .unwrap_err();
    assert_eq!(err.field(), "window..", "{err}");
}

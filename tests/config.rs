//! Integration tests for the public configuration surface: `CircuitBreakerConfig`
//! (defaults, `validate`, JSON), `WindowConfig`, `ConfigError` and
//! `validate_circuit_name`.

use std::time::Duration;

use vibezen_recovery::config::{
    CircuitBreakerConfig, ConfigError, MAX_DURATION, MAX_WINDOW_BUCKETS, MAX_WINDOW_CALLS,
    MIN_BUCKET, WindowConfig,
};
use vibezen_recovery::name::{MAX_NAME_LEN, validate_circuit_name};

const ONE_NS: Duration = Duration::from_nanos(1);

fn over_max() -> Duration {
    MAX_DURATION + ONE_NS
}

fn time_window(duration: Duration, buckets: u32) -> WindowConfig {
    WindowConfig::Time { duration, buckets }
}

/// Asserts that `err` names `field` and that its message is non-empty and
/// mentions the field when there is one.
fn assert_names_field(err: &ConfigError, field: &str, context: &str) {
    assert_eq!(err.field(), field, "{context}: wrong field in {err:?}");
    let message = err.to_string();
    assert!(!message.is_empty(), "{context}: empty message");
    if !field.is_empty() {
        assert!(
            message.contains(field),
            "{context}: message {message:?} does not mention {field:?}"
        );
    }
}

/// Asserts that `from_json` refuses `json` without panicking, with a
/// non-empty message that mentions the field if one is named.
fn refused_json(json: &str, context: &str) -> ConfigError {
    let err = match CircuitBreakerConfig::from_json(json) {
        Ok(config) => panic!("{context}: accepted as {config:?}"),
        Err(err) => err,
    };
    let message = err.to_string();
    assert!(!message.is_empty(), "{context}: empty message");
    if !err.field().is_empty() {
        assert!(
            message.contains(err.field()),
            "{context}: message does not mention field {:?}",
            err.field()
        );
    }
    err
}

// ---------------------------------------------------------------------------
// 1. Defaults
// ---------------------------------------------------------------------------

#[test]
fn defaults_are_the_seed_values() {
    let config = CircuitBreakerConfig::default();
    assert_eq!(config.failure_threshold, 5);
    assert_eq!(config.success_threshold, 2);
    assert_eq!(config.timeout, Duration::from_secs(60));
    assert_eq!(config.failure_rate_threshold, 0.5);
    assert_eq!(config.min_calls, 10);
    assert_eq!(config.reset_timeout, Duration::from_secs(120));
    assert_eq!(config.window, WindowConfig::Count { size: 100 });
    assert_eq!(config.half_open_max_calls, None);
    assert_eq!(config.call_timeout, None);
    assert_eq!(WindowConfig::default(), WindowConfig::Count { size: 100 });
}

#[test]
fn default_config_validates() {
    assert_eq!(CircuitBreakerConfig::default().validate(), Ok(()));
}

#[test]
fn max_trial_calls_defaults_to_success_threshold() {
    let config = CircuitBreakerConfig::default();
    assert_eq!(config.max_trial_calls(), 2);

    let config = CircuitBreakerConfig {
        success_threshold: 4,
        ..Default::default()
    };
    assert_eq!(config.max_trial_calls(), 4);

    let config = CircuitBreakerConfig {
        success_threshold: 4,
        half_open_max_calls: Some(7),
        ..Default::default()
    };
    assert_eq!(config.max_trial_calls(), 7);

    let config = CircuitBreakerConfig {
        success_threshold: 4,
        half_open_max_calls: Some(1),
        ..Default::default()
    };
    assert_eq!(config.max_trial_calls(), 1);
}

// ---------------------------------------------------------------------------
// 2. validate()
// ---------------------------------------------------------------------------

#[test]
fn validate_refuses_every_kind_of_invalid_value() {
    type Edit = fn(&mut CircuitBreakerConfig);
    let cases: &[(&str, &str, Edit)] = &[
        // Counts that must be at least one.
        ("zero failure_threshold", "failure_threshold", |c| {
            c.failure_threshold = 0
        }),
        ("zero success_threshold", "success_threshold", |c| {
            c.success_threshold = 0
        }),
        ("zero min_calls", "min_calls", |c| c.min_calls = 0),
        ("zero half_open_max_calls", "half_open_max_calls", |c| {
            c.half_open_max_calls = Some(0)
        }),
        // Failure rate in (0, 1].
        ("zero rate", "failure_rate_threshold", |c| {
            c.failure_rate_threshold = 0.0
        }),
        ("negative zero rate", "failure_rate_threshold", |c| {
            c.failure_rate_threshold = -0.0
        }),
        ("negative rate", "failure_rate_threshold", |c| {
            c.failure_rate_threshold = -0.5
        }),
        ("rate just above one", "failure_rate_threshold", |c| {
            c.failure_rate_threshold = 1.0 + f64::EPSILON
        }),
        ("rate above one", "failure_rate_threshold", |c| {
            c.failure_rate_threshold = 1.5
        }),
        ("NaN rate", "failure_rate_threshold", |c| {
            c.failure_rate_threshold = f64::NAN
        }),
        ("infinite rate", "failure_rate_threshold", |c| {
            c.failure_rate_threshold = f64::INFINITY
        }),
        ("negative infinite rate", "failure_rate_threshold", |c| {
            c.failure_rate_threshold = f64::NEG_INFINITY
        }),
        // Zero durations.
        ("zero timeout", "timeout", |c| c.timeout = Duration::ZERO),
        ("zero reset_timeout", "reset_timeout", |c| {
            c.reset_timeout = Duration::ZERO
        }),
        ("zero call_timeout", "call_timeout", |c| {
            c.call_timeout = Some(Duration::ZERO)
        }),
        ("zero window duration", "window.duration", |c| {
            c.window = time_window(Duration::ZERO, 10)
        }),
        // Durations over one year.
        ("timeout over a year", "timeout", |c| c.timeout = over_max()),
        ("timeout Duration::MAX", "timeout", |c| {
            c.timeout = Duration::MAX
        }),
        ("reset_timeout over a year", "reset_timeout", |c| {
            c.reset_timeout = over_max()
        }),
        ("call_timeout over a year", "call_timeout", |c| {
            c.call_timeout = Some(over_max())
        }),
        ("window duration over a year", "window.duration", |c| {
            c.window = time_window(over_max(), 10)
        }),
        // Count window size.
        ("window smaller than min_calls", "window.size", |c| {
            c.min_calls = 10;
            c.window = WindowConfig::Count { size: 9 };
        }),
        ("zero window size", "window.size", |c| {
            c.window = WindowConfig::Count { size: 0 }
        }),
        ("window larger than MAX_WINDOW_CALLS", "window.size", |c| {
            c.window = WindowConfig::Count {
                size: MAX_WINDOW_CALLS + 1,
            }
        }),
        ("window size u32::MAX", "window.size", |c| {
            c.window = WindowConfig::Count { size: u32::MAX }
        }),
        ("min_calls above MAX_WINDOW_CALLS", "window.size", |c| {
            c.min_calls = MAX_WINDOW_CALLS + 1;
            c.window = WindowConfig::Count {
                size: MAX_WINDOW_CALLS + 1,
            };
        }),
        // Time window buckets.
        ("zero buckets", "window.buckets", |c| {
            c.window = time_window(Duration::from_secs(60), 0)
        }),
        ("too many buckets", "window.buckets", |c| {
            c.window = time_window(Duration::from_secs(3_600), MAX_WINDOW_BUCKETS + 1)
        }),
        ("u32::MAX buckets", "window.buckets", |c| {
            c.window = time_window(Duration::from_secs(3_600), u32::MAX)
        }),
        ("buckets shorter than 1 ms", "window.buckets", |c| {
            c.window = time_window(Duration::from_secs(1), 1_001)
        }),
        ("buckets far shorter than 1 ms", "window.buckets", |c| {
            c.window = time_window(Duration::from_millis(10), 100)
        }),
    ];

    for (name, field, edit) in cases {
        let mut config = CircuitBreakerConfig::default();
        edit(&mut config);
        let err = match config.validate() {
            Ok(()) => panic!("{name}: accepted {config:?}"),
            Err(err) => err,
        };
        assert!(
            matches!(err, ConfigError::Invalid { .. }),
            "{name}: expected ConfigError::Invalid, got {err:?}"
        );
        assert_names_field(&err, field, name);
    }
}

#[test]
fn validate_accepts_boundary_values() {
    type Edit = fn(&mut CircuitBreakerConfig);
    let cases: &[(&str, Edit)] = &[
        ("rate exactly one", |c| c.failure_rate_threshold = 1.0),
        ("smallest positive rate", |c| {
            c.failure_rate_threshold = f64::MIN_POSITIVE
        }),
        ("thresholds of one", |c| {
            c.failure_threshold = 1;
            c.success_threshold = 1;
            c.min_calls = 1;
            c.half_open_max_calls = Some(1);
        }),
        ("u32::MAX thresholds", |c| {
            c.failure_threshold = u32::MAX;
            c.success_threshold = u32::MAX;
            c.half_open_max_calls = Some(u32::MAX);
        }),
        ("one nanosecond durations", |c| {
            c.timeout = ONE_NS;
            c.reset_timeout = ONE_NS;
            c.call_timeout = Some(ONE_NS);
        }),
        ("durations of exactly one year", |c| {
            c.timeout = MAX_DURATION;
            c.reset_timeout = MAX_DURATION;
            c.call_timeout = Some(MAX_DURATION);
            c.window = time_window(MAX_DURATION, 1);
        }),
        ("window size equal to min_calls", |c| {
            c.min_calls = 10;
            c.window = WindowConfig::Count { size: 10 };
        }),
        ("window size MAX_WINDOW_CALLS", |c| {
            c.window = WindowConfig::Count {
                size: MAX_WINDOW_CALLS,
            }
        }),
        ("min_calls equal to MAX_WINDOW_CALLS", |c| {
            c.min_calls = MAX_WINDOW_CALLS;
            c.window = WindowConfig::Count {
                size: MAX_WINDOW_CALLS,
            };
        }),
        ("one bucket", |c| {
            c.window = time_window(Duration::from_secs(60), 1)
        }),
        ("MAX_WINDOW_BUCKETS buckets", |c| {
            c.window = time_window(Duration::from_secs(3_600), MAX_WINDOW_BUCKETS)
        }),
        ("buckets of exactly 1 ms", |c| {
            c.window = time_window(Duration::from_secs(1), 1_000)
        }),
        ("one bucket of 1 ms", |c| {
            c.window = time_window(MIN_BUCKET, 1)
        }),
    ];

    for (name, edit) in cases {
        let mut config = CircuitBreakerConfig::default();
        edit(&mut config);
        assert_eq!(config.validate(), Ok(()), "{name}: refused {config:?}");
    }
}

#[test]
fn validate_names_the_first_wrong_field() {
    let config = CircuitBreakerConfig {
        failure_threshold: 0,
        timeout: Duration::ZERO,
        window: WindowConfig::Count { size: 0 },
        ..Default::default()
    };
    assert_eq!(config.validate().unwrap_err().field(), "failure_threshold");
}

// ---------------------------------------------------------------------------
// 3. JSON that loads
// ---------------------------------------------------------------------------

#[test]
fn seed_shaped_json_loads_as_the_default() {
    let json = r#"{"failure_threshold": 5, "success_threshold": 2, "timeout": 60.0,
        "failure_rate_threshold": 0.5, "min_calls": 10, "reset_timeout": 120.0}"#;
    let config = CircuitBreakerConfig::from_json(json).unwrap();
    assert_eq!(config, CircuitBreakerConfig::default());
}

#[test]
fn seed_shaped_json_with_other_values_loads_them() {
    let json = r#"{"failure_threshold": 3, "success_threshold": 4, "timeout": 10.5,
        "failure_rate_threshold": 0.25, "min_calls": 20, "reset_timeout": 300.0}"#;
    let config = CircuitBreakerConfig::from_json(json).unwrap();
    assert_eq!(config.failure_threshold, 3);
    assert_eq!(config.success_threshold, 4);
    assert_eq!(config.timeout, Duration::from_millis(10_500));
    assert_eq!(config.failure_rate_threshold, 0.25);
    assert_eq!(config.min_calls, 20);
    assert_eq!(config.reset_timeout, Duration::from_secs(300));
    assert_eq!(config.window, WindowConfig::default());
}

#[test]
fn integer_seconds_load() {
    let config = CircuitBreakerConfig::from_json(r#"{"timeout": 60, "reset_timeout": 7}"#).unwrap();
    assert_eq!(config.timeout, Duration::from_secs(60));
    assert_eq!(config.reset_timeout, Duration::from_secs(7));

    let config = CircuitBreakerConfig::from_json(r#"{"call_timeout": 3}"#).unwrap();
    assert_eq!(config.call_timeout, Some(Duration::from_secs(3)));

    // An integer rate is a float too.
    let config = CircuitBreakerConfig::from_json(r#"{"failure_rate_threshold": 1}"#).unwrap();
    assert_eq!(config.failure_rate_threshold, 1.0);
}

#[test]
fn fractional_seconds_load() {
    let config = CircuitBreakerConfig::from_json(r#"{"timeout": 0.25}"#).unwrap();
    assert_eq!(config.timeout, Duration::from_millis(250));
    let config = CircuitBreakerConfig::from_json(r#"{"timeout": 0.001}"#).unwrap();
    assert_eq!(config.timeout, Duration::from_millis(1));
}

#[test]
fn one_year_of_seconds_is_the_limit() {
    let config = CircuitBreakerConfig::from_json(r#"{"timeout": 31536000}"#).unwrap();
    assert_eq!(config.timeout, MAX_DURATION);
    let config = CircuitBreakerConfig::from_json(r#"{"reset_timeout": 31536000.0}"#).unwrap();
    assert_eq!(config.reset_timeout, MAX_DURATION);

    let err = refused_json(r#"{"timeout": 31536000.5}"#, "just over a year");
    assert_names_field(&err, "timeout", "just over a year");
    let err = refused_json(r#"{"reset_timeout": 31536001}"#, "a year and a second");
    assert_names_field(&err, "reset_timeout", "a year and a second");
}

#[test]
fn missing_fields_take_defaults() {
    assert_eq!(
        CircuitBreakerConfig::from_json("{}").unwrap(),
        CircuitBreakerConfig::default()
    );
    assert_eq!(
        CircuitBreakerConfig::from_json(" \n\t{ }\n ").unwrap(),
        CircuitBreakerConfig::default()
    );

    let config = CircuitBreakerConfig::from_json(r#"{"failure_threshold": 9}"#).unwrap();
    assert_eq!(
        config,
        CircuitBreakerConfig {
            failure_threshold: 9,
            ..Default::default()
        }
    );
}

#[test]
fn call_timeout_null_and_number() {
    let config = CircuitBreakerConfig::from_json(r#"{"call_timeout": null}"#).unwrap();
    assert_eq!(config.call_timeout, None);

    let config = CircuitBreakerConfig::from_json(r#"{"call_timeout": 2.5}"#).unwrap();
    assert_eq!(config.call_timeout, Some(Duration::from_millis(2_500)));
}

#[test]
fn half_open_max_calls_null_and_number() {
    let config = CircuitBreakerConfig::from_json(r#"{"half_open_max_calls": null}"#).unwrap();
    assert_eq!(config.half_open_max_calls, None);

    let config = CircuitBreakerConfig::from_json(r#"{"half_open_max_calls": 3}"#).unwrap();
    assert_eq!(config.half_open_max_calls, Some(3));
    assert_eq!(config.max_trial_calls(), 3);
}

#[test]
fn windows_load() {
    let config =
        CircuitBreakerConfig::from_json(r#"{"window": {"kind": "count", "size": 50}}"#).unwrap();
    assert_eq!(config.window, WindowConfig::Count { size: 50 });

    let config = CircuitBreakerConfig::from_json(
        r#"{"window": {"kind": "time", "duration": 30.0, "buckets": 30}}"#,
    )
    .unwrap();
    assert_eq!(
        config.window,
        WindowConfig::Time {
            duration: Duration::from_secs(30),
            buckets: 30
        }
    );

    // The tag may come after the other fields, and integer seconds work here too.
    let config = CircuitBreakerConfig::from_json(
        r#"{"window": {"buckets": 4, "duration": 2, "kind": "time"}}"#,
    )
    .unwrap();
    assert_eq!(
        config.window,
        WindowConfig::Time {
            duration: Duration::from_secs(2),
            buckets: 4
        }
    );
}

#[test]
fn durations_serialize_as_float_seconds() {
    let value = serde_json::to_value(CircuitBreakerConfig::default()).unwrap();
    assert_eq!(value["timeout"], 60.0);
    assert!(value["timeout"].is_f64(), "{:?}", value["timeout"]);
    assert_eq!(value["reset_timeout"], 120.0);
    assert!(value["call_timeout"].is_null());
    assert!(value["half_open_max_calls"].is_null());
    assert_eq!(value["failure_threshold"], 5);
    assert_eq!(value["failure_rate_threshold"], 0.5);
    assert_eq!(
        value["window"],
        serde_json::json!({"kind": "count", "size": 100})
    );

    let config = CircuitBreakerConfig {
        call_timeout: Some(Duration::from_millis(2_500)),
        window: time_window(Duration::from_secs(30), 30),
        ..Default::default()
    };
    let value = serde_json::to_value(&config).unwrap();
    assert_eq!(value["call_timeout"], 2.5);
    assert_eq!(value["window"]["kind"], "time");
    assert_eq!(value["window"]["duration"], 30.0);
    assert_eq!(value["window"]["buckets"], 30);
}

#[test]
fn serialize_then_from_json_round_trips() {
    let configs = [
        CircuitBreakerConfig::default(),
        CircuitBreakerConfig {
            failure_threshold: 3,
            success_threshold: 4,
            timeout: Duration::from_millis(10_500),
            failure_rate_threshold: 0.75,
            min_calls: 1,
            reset_timeout: Duration::from_millis(1),
            window: time_window(Duration::from_secs(30), 30),
            half_open_max_calls: Some(6),
            call_timeout: Some(Duration::from_millis(2_500)),
            critical: true,
        },
        CircuitBreakerConfig {
            timeout: MAX_DURATION,
            reset_timeout: Duration::from_nanos(1_234_567_891),
            window: WindowConfig::Count {
                size: MAX_WINDOW_CALLS,
            },
            call_timeout: Some(Duration::from_millis(86_399_999)),
            ..Default::default()
        },
    ];
    for config in configs {
        let json = serde_json::to_string(&config).unwrap();
        let back = CircuitBreakerConfig::from_json(&json).unwrap();
        assert_eq!(back, config, "round trip through {json}");

        let pretty = serde_json::to_string_pretty(&config).unwrap();
        assert_eq!(CircuitBreakerConfig::from_json(&pretty).unwrap(), config);
    }
}

// ---------------------------------------------------------------------------
// 4. JSON that is refused
// ---------------------------------------------------------------------------

#[test]
fn bad_json_names_the_field() {
    let u32_too_large = format!(r#"{{"failure_threshold": {}}}"#, u64::from(u32::MAX) + 1);
    let cases: &[(&str, &str)] = &[
        // Unknown top-level field.
        (r#"{"timout": 60.0}"#, "timout"),
        (r#"{"failure_threshold": 5, "Timeout": 1}"#, "Timeout"),
        // Wrong types.
        (r#"{"failure_threshold": "five"}"#, "failure_threshold"),
        (r#"{"failure_threshold": null}"#, "failure_threshold"),
        (r#"{"failure_threshold": 5.5}"#, "failure_threshold"),
        (r#"{"failure_threshold": -1}"#, "failure_threshold"),
        (r#"{"success_threshold": true}"#, "success_threshold"),
        (r#"{"min_calls": [10]}"#, "min_calls"),
        (r#"{"timeout": "60"}"#, "timeout"),
        (r#"{"timeout": null}"#, "timeout"),
        (r#"{"reset_timeout": {}}"#, "reset_timeout"),
        (r#"{"call_timeout": "2.5"}"#, "call_timeout"),
        (
            r#"{"failure_rate_threshold": "0.5"}"#,
            "failure_rate_threshold",
        ),
        (r#"{"half_open_max_calls": -1}"#, "half_open_max_calls"),
        (r#"{"window": null}"#, "window"),
        (r#"{"window": 100}"#, "window"),
        // A number too large for u32.
        (&u32_too_large, "failure_threshold"),
        (r#"{"min_calls": 99999999999999999999}"#, "min_calls"),
        // Negative, huge and out-of-range seconds.
        (r#"{"timeout": -1}"#, "timeout"),
        (r#"{"timeout": -0.001}"#, "timeout"),
        (r#"{"reset_timeout": -1.0}"#, "reset_timeout"),
        (r#"{"call_timeout": -1}"#, "call_timeout"),
        (r#"{"timeout": 1e300}"#, "timeout"),
        (r#"{"reset_timeout": 1e300}"#, "reset_timeout"),
        (r#"{"call_timeout": 1e300}"#, "call_timeout"),
        (r#"{"timeout": 1e400}"#, "timeout"),
        (r#"{"timeout": 18446744073709551615}"#, "timeout"),
        // Valid JSON, invalid values: validate() names the field.
        (r#"{"min_calls": 0}"#, "min_calls"),
        (r#"{"failure_threshold": 0}"#, "failure_threshold"),
        (r#"{"success_threshold": 0}"#, "success_threshold"),
        (r#"{"half_open_max_calls": 0}"#, "half_open_max_calls"),
        (r#"{"failure_rate_threshold": 0}"#, "failure_rate_threshold"),
        (
            r#"{"failure_rate_threshold": 1.5}"#,
            "failure_rate_threshold",
        ),
        (
            r#"{"failure_rate_threshold": -0.5}"#,
            "failure_rate_threshold",
        ),
        (r#"{"timeout": 0}"#, "timeout"),
        (r#"{"timeout": 0.0}"#, "timeout"),
        (r#"{"timeout": -0.0}"#, "timeout"),
        (r#"{"reset_timeout": 0}"#, "reset_timeout"),
        (r#"{"call_timeout": 0}"#, "call_timeout"),
        (r#"{"window": {"kind": "count", "size": 5}}"#, "window.size"),
        (
            r#"{"window": {"kind": "count", "size": 100001}}"#,
            "window.size",
        ),
        (
            r#"{"window": {"kind": "time", "duration": 0, "buckets": 1}}"#,
            "window.duration",
        ),
        (
            r#"{"window": {"kind": "time", "duration": 60, "buckets": 0}}"#,
            "window.buckets",
        ),
        (
            r#"{"window": {"kind": "time", "duration": 3600, "buckets": 3601}}"#,
            "window.buckets",
        ),
        (
            r#"{"window": {"kind": "time", "duration": 1, "buckets": 1001}}"#,
            "window.buckets",
        ),
    ];
    for (json, field) in cases {
        let err = refused_json(json, json);
        assert_names_field(&err, field, json);
    }
}

#[test]
fn bad_json_inside_window_names_the_window() {
    // Errors in the window object name at least `window` (see the ignored
    // test below for the exact nested field).
    let cases = [
        r#"{"window": {"kind": "count", "size": 50, "extra": 1}}"#,
        r#"{"window": {"kind": "time", "duration": 30, "buckets": 30, "size": 1}}"#,
        r#"{"window": {"kind": "sliding", "size": 50}}"#,
        r#"{"window": {"kind": "Count", "size": 50}}"#,
        r#"{"window": {"kind": 1, "size": 50}}"#,
        r#"{"window": {"size": 50}}"#,
        r#"{"window": {"kind": "count"}}"#,
        r#"{"window": {"kind": "time", "duration": 30}}"#,
        r#"{"window": {"kind": "count", "size": "fifty"}}"#,
        r#"{"window": {"kind": "count", "size": 4294967296}}"#,
        r#"{"window": {"kind": "time", "duration": -1, "buckets": 3}}"#,
        r#"{"window": {"kind": "time", "duration": 1e300, "buckets": 3}}"#,
        r#"{"window": {"kind": "time", "duration": "30", "buckets": 3}}"#,
        r#"{"window": {"kind": "count", "kind": "time", "size": 5}}"#,
        r#"{"window": {}}"#,
        r#"{"window": []}"#,
    ];
    for json in cases {
        let err = refused_json(json, json);
        assert!(
            err.field() == "window" || err.field().starts_with("window."),
            "{json}: field {:?} does not name the window",
            err.field()
        );
    }
}

#[test]
fn unknown_window_kind_is_refused() {
    let err = refused_json(r#"{"window": {"kind": "sliding"}}"#, "unknown kind");
    assert!(err.field().starts_with("window"), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("sliding"), "{message}");
}

#[test]
fn malformed_documents_are_refused_without_panicking() {
    let deep_arrays = "[".repeat(10_000);
    let deep_closed_arrays = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_objects = "{\"a\":".repeat(10_000);
    let deep_in_window = format!(r#"{{"window": {}"#, "[".repeat(10_000));
    let deep_in_window_size = format!(
        r#"{{"window": {{"kind": "count", "size": {}"#,
        "[".repeat(10_000)
    );
    let deep_in_window_objects = format!(r#"{{"window": {}"#, "{\"a\":".repeat(10_000));
    let deep_in_field = format!(r#"{{"timeout": {}"#, "[".repeat(10_000));
    let cases: Vec<&str> = vec![
        "",
        " ",
        "\n",
        "{",
        "}",
        "{{",
        "nope",
        "null",
        "true",
        "5",
        "-1",
        "\"config\"",
        r#"{"timeout": }"#,
        r#"{"timeout": 1"#,
        r#"{"timeout": 1,"#,
        r#"{"timeout": 1,}"#,
        r#"{"timeout" 1}"#,
        r#"{timeout: 1}"#,
        r#"{'timeout': 1}"#,
        r#"{"timeout": NaN}"#,
        r#"{"timeout": Infinity}"#,
        r#"{"timeout": 60, "timeout": 30}"#,
        "\u{feff}{}",
        &deep_arrays,
        &deep_closed_arrays,
        &deep_objects,
        &deep_in_window,
        &deep_in_window_size,
        &deep_in_window_objects,
        &deep_in_field,
    ];
    for json in cases {
        let shown: String = json.chars().take(40).collect();
        refused_json(json, &format!("{shown:?}"));
    }
}

#[test]
fn syntax_errors_with_no_field_have_an_empty_field() {
    for json in ["", "}", "nope", "5", "\"config\"", "{\"timeout\" 1}"] {
        let err = refused_json(json, json);
        assert_eq!(err.field(), "", "{json:?}: {err:?}");
        assert!(matches!(err, ConfigError::Json { .. }), "{json:?}: {err:?}");
    }
}

#[test]
fn huge_string_values_are_refused_by_field() {
    let huge = "a".repeat(1 << 20);

    let json = format!(r#"{{"failure_threshold": "{huge}"}}"#);
    let err = refused_json(&json, "huge string for a count");
    assert_eq!(err.field(), "failure_threshold");

    let json = format!(r#"{{"timeout": "{huge}"}}"#);
    let err = refused_json(&json, "huge string for seconds");
    assert_eq!(err.field(), "timeout");

    let json = format!(r#"{{"window": {{"kind": "{huge}"}}}}"#);
    let err = refused_json(&json, "huge window kind");
    assert!(err.field().starts_with("window"), "{}", err.field());

    let json = format!(r#"{{"{huge}": 1}}"#);
    refused_json(&json, "huge unknown key");
}

#[test]
fn json_errors_are_json_variants_and_validation_errors_are_invalid() {
    let err = refused_json(r#"{"timout": 1}"#, "unknown field");
    assert!(matches!(err, ConfigError::Json { .. }), "{err:?}");
    let err = refused_json(r#"{"min_calls": 0}"#, "zero min_calls");
    assert!(matches!(err, ConfigError::Invalid { .. }), "{err:?}");
    assert_eq!(
        err,
        CircuitBreakerConfig {
            min_calls: 0,
            ..Default::default()
        }
        .validate()
        .unwrap_err()
    );
}

#[test]

fn from_json_refuses_trailing_characters() {
    for json in [
        "{} trailing",
        "{}{}",
        r#"{"timeout": 1} {"timeout": 2}"#,
        "{}]",
        "{\"timeout\": 1}\u{0}",
    ] {
        refused_json(json, json);
    }
}

#[test]

fn from_json_refuses_documents_that_are_not_objects() {
    for json in ["[]", "[1, 1, 30]", "[5, 2, 60.0, 0.5, 10, 120.0]"] {
        let err = refused_json(json, json);
        assert_eq!(err.field(), "", "{json}: {err:?}");
    }
}

#[test]

fn truncated_objects_have_an_empty_or_real_field() {
    for json in ["{", "{{", r#"{"timeout": 1"#, r#"{"timeout": 1,"#] {
        let err = refused_json(json, json);
        assert!(
            err.field().is_empty() || err.field() == "timeout",
            "{json:?}: field {:?}",
            err.field()
        );
        assert!(!err.field().contains('?'), "{json:?}: {err:?}");
    }
}

#[test]

fn json_errors_inside_window_name_the_nested_field() {
    let cases = [
        (
            r#"{"window": {"kind": "count", "size": "fifty"}}"#,
            "window.size",
        ),
        (
            r#"{"window": {"kind": "time", "duration": -1, "buckets": 3}}"#,
            "window.duration",
        ),
        (
            r#"{"window": {"kind": "time", "duration": 31536001, "buckets": 1}}"#,
            "window.duration",
        ),
        (
            r#"{"window": {"kind": "time", "duration": 30, "buckets": "x"}}"#,
            "window.buckets",
        ),
        (
            r#"{"window": {"kind": "count", "size": 50, "extra": 1}}"#,
            "window.extra",
        ),
    ];
    for (json, field) in cases {
        let err = refused_json(json, json);
        assert_names_field(&err, field, json);
    }
}

#[test]

fn duplicate_fields_are_named() {
    let err = refused_json(r#"{"timeout": 60, "timeout": 30}"#, "duplicate timeout");
    assert_names_field(&err, "timeout", "duplicate timeout");
}

#[test]

fn huge_values_give_bounded_error_messages() {
    let huge = "a".repeat(1 << 20);
    for json in [
        format!(r#"{{"failure_threshold": "{huge}"}}"#),
        format!(r#"{{"{huge}": 1}}"#),
    ] {
        let err = refused_json(&json, "huge value");
        assert!(
            err.to_string().len() < 4_096,
            "message of {} bytes",
            err.to_string().len()
        );
        assert!(
            err.field().len() < 4_096,
            "field of {} bytes",
            err.field().len()
        );
    }
}

#[test]

fn json_errors_do_not_echo_raw_control_characters() {
    let err = refused_json("{\"time\\nout\": 1, \"x\": 2}", "newline in key");
    assert!(
        !err.to_string().chars().any(char::is_control),
        "{:?}",
        err.to_string()
    );
    assert!(!err.field().chars().any(char::is_control), "{err:?}");
}

// ---------------------------------------------------------------------------
// 5. Circuit names
// ---------------------------------------------------------------------------

#[test]
fn valid_circuit_names() {
    let max_ascii = "a".repeat(MAX_NAME_LEN);
    let max_multibyte = "é".repeat(MAX_NAME_LEN / 2);
    let names: Vec<&str> = vec![
        "ai_provider_openai",
        "cache",
        "a",
        "search-v2.eu/west:1",
        "検索",
        "café",
        "🔌 plug",
        " padded ",
        "with space",
        &max_ascii,
        &max_multibyte,
    ];
    assert_eq!(MAX_NAME_LEN, 256);
    assert_eq!(max_ascii.len(), 256);
    assert_eq!(max_multibyte.len(), 256);
    for name in names {
        assert_eq!(validate_circuit_name(name), Ok(()), "{name:?}");
    }
}

#[test]
fn refused_circuit_names() {
    let too_long_ascii = "a".repeat(MAX_NAME_LEN + 1);
    let too_long_multibyte = format!("a{}", "é".repeat(MAX_NAME_LEN / 2));
    let too_long_with_control = format!("{}\n", "b".repeat(300));
    let control_late = format!("{}\u{1b}[31m", "c".repeat(100));
    let names: Vec<&str> = vec![
        "",
        " ",
        "   ",
        "\t",
        "\n",
        "\r\n",
        "\u{3000}",
        "\u{0}",
        "nul\u{0}inside",
        "tab\there",
        "line\nbreak",
        "carriage\rreturn",
        "escape\u{1b}[31mred",
        "del\u{7f}",
        "next\u{85}line",
        "bell\u{7}",
        &too_long_ascii,
        &too_long_multibyte,
        &too_long_with_control,
        &control_late,
    ];
    assert_eq!(too_long_ascii.len(), 257);
    assert_eq!(too_long_multibyte.len(), 257);
    for name in names {
        let err = match validate_circuit_name(name) {
            Ok(()) => panic!("{name:?} accepted"),
            Err(err) => err,
        };
        assert!(
            matches!(err, ConfigError::InvalidName { .. }),
            "{name:?}: {err:?}"
        );
        assert_eq!(err.field(), "name", "{name:?}");
        let message = err.to_string();
        assert!(!message.is_empty(), "{name:?}");
        assert!(
            !message.chars().any(char::is_control),
            "{name:?}: raw control character in {message:?}"
        );
        assert!(
            message.len() < 1_024,
            "{name:?}: message of {} bytes",
            message.len()
        );
    }
}

#[test]
fn refused_name_message_shows_escaped_name() {
    let err = validate_circuit_name("tab\there").unwrap_err();
    assert!(err.to_string().contains(r"tab\there"), "{err}");
    let err = validate_circuit_name("\u{0}").unwrap_err();
    assert!(err.to_string().contains(r"\0"), "{err}");
}

// ---------------------------------------------------------------------------
// 6. Trait bounds
// ---------------------------------------------------------------------------

fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}
fn assert_config_bounds<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}

#[test]
fn trait_bounds() {
    assert_error::<ConfigError>();
    assert_config_bounds::<CircuitBreakerConfig>();
    assert_config_bounds::<WindowConfig>();

    // ConfigError fits in a Box<dyn Error + Send + Sync>, as `?` needs.
    let boxed: Box<dyn std::error::Error + Send + Sync> =
        Box::new(validate_circuit_name("").unwrap_err());
    assert!(!boxed.to_string().is_empty());

    let config = CircuitBreakerConfig::default();
    assert_eq!(config.clone(), config);
    assert!(format!("{config:?}").contains("failure_threshold"));
}

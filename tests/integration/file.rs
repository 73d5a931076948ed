//! Loading a set of circuits from JSON: presets, overrides, explicit
//! configs; every bad entry named; nothing loaded from a bad file.

use std::time::Duration;

use vibezen_recovery::config::{ConfigError, WindowConfig};
use vibezen_recovery::integration::{CircuitsFile, CircuitsFileError};
use vibezen_recovery::manager::AllStats;
use vibezen_recovery::presets::{self, Preset};

use crate::support::*;

const GOOD: &str = r#"{
  "circuits": {
    "ai_provider_openai": { "preset": "AI_PROVIDER" },
    "cache": { "preset": "CACHE_SERVICE", "overrides": { "timeout": 5.0, "critical": true } },
    "search": { "preset": "SEARCH_SERVICE", "overrides": { "window": { "kind": "time", "duration": 60.0, "buckets": 6 } } },
    "billing": { "failure_threshold": 2, "timeout": 30.0, "critical": true }
  }
}"#;

fn entry_errors(json: &str) -> Vec<(String, String)> {
    match CircuitsFile::from_json(json) {
        Err(CircuitsFileError::Entries(errors)) => errors
            .iter()
            .map(|err| (err.circuit.clone(), err.path()))
            .collect(),
        other => panic!("expected entry errors, got {other:?}"),
    }
}

fn document_error(json: &str) -> ConfigError {
    match CircuitsFile::from_json(json) {
        Err(CircuitsFileError::Document(err)) => err,
        other => panic!("expected a document error, got {other:?}"),
    }
}

#[test]
fn presets_overrides_and_explicit_configs_load() {
    let file = CircuitsFile::from_json(GOOD).unwrap();
    let names: Vec<_> = file.circuits.keys().map(String::as_str).collect();
    assert_eq!(names, ["ai_provider_openai", "billing", "cache", "search"]);

    assert_eq!(file.circuits["ai_provider_openai"], presets::ai_provider());

    let cache = &file.circuits["cache"];
    assert_eq!(cache.timeout, Duration::from_secs(5));
    assert!(cache.critical);
    assert_eq!(cache.call_timeout, presets::cache_service().call_timeout);
    assert_eq!(
        cache.failure_threshold,
        presets::cache_service().failure_threshold
    );

    assert_eq!(
        file.circuits["search"].window,
        WindowConfig::Time {
            duration: Duration::from_secs(60),
            buckets: 6
        }
    );

    let billing = &file.circuits["billing"];
    assert_eq!(billing.failure_threshold, 2);
    assert_eq!(billing.timeout, Duration::from_secs(30));
    assert!(billing.critical);
    assert_eq!(
        billing.success_threshold, 2,
        "missing fields take their defaults"
    );
}

#[test]
fn every_bad_entry_is_named() {
    let errors = entry_errors(
        r#"{"circuits": {
            "good": {"preset": "CACHE_SERVICE"},
            "typo_preset": {"preset": "AI_PROVIDR"},
            "preset_not_text": {"preset": 3},
            "bad_override": {"preset": "SEARCH_SERVICE", "overrides": {"timeout": "soon"}},
            "unknown_override": {"preset": "SEARCH_SERVICE", "overrides": {"timout": 5.0}},
            "overrides_not_object": {"preset": "SEARCH_SERVICE", "overrides": [1]},
            "stray_field": {"preset": "SEARCH_SERVICE", "timeout": 5.0},
            "orphan_overrides": {"overrides": {"timeout": 5.0}},
            "unknown_field": {"failure_treshold": 3},
            "out_of_range": {"failure_rate_threshold": 1.5},
            "window_too_small": {"min_calls": 50, "window": {"kind": "count", "size": 10}},
            "not_an_object": 42,
            "bad\u0007name": {"preset": "CACHE_SERVICE"},
            "also_good": {}
        }}"#,
    );
    let expected = [
        ("bad\u{7}name", r"circuits.bad\u{7}name"), // escaped, safe to log
        ("bad_override", "circuits.bad_override.overrides.timeout"),
        ("not_an_object", "circuits.not_an_object"),
        ("orphan_overrides", "circuits.orphan_overrides.overrides"),
        (
            "out_of_range",
            "circuits.out_of_range.failure_rate_threshold",
        ),
        (
            "overrides_not_object",
            "circuits.overrides_not_object.overrides",
        ),
        ("preset_not_text", "circuits.preset_not_text.preset"),
        ("stray_field", "circuits.stray_field.timeout"),
        ("typo_preset", "circuits.typo_preset.preset"),
        ("unknown_field", "circuits.unknown_field.failure_treshold"),
        (
            "unknown_override",
            "circuits.unknown_override.overrides.timout",
        ),
        ("window_too_small", "circuits.window_too_small.window.size"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(name, path)| ((*name).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(errors, expected);
}

#[test]
fn the_error_message_lists_every_bad_entry_and_says_nothing_was_loaded() {
    let err = CircuitsFile::from_json(
        r#"{"circuits": {"a": {"preset": "NOPE"}, "b": {"timeout": -1.0}}}"#,
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("2 circuit entries are invalid; nothing was loaded:"),
        "{message}"
    );
    assert!(message.contains("circuit \"a\""), "{message}");
    assert!(message.contains("AI_PROVIDER, CACHE_SERVICE"), "{message}");
    assert!(message.contains("circuit \"b\""), "{message}");
    assert!(message.contains("must not be negative"), "{message}");
}

#[test]
fn a_malformed_document_is_refused_as_a_whole() {
    assert_eq!(document_error("{").field(), "");
    assert_eq!(document_error("[]").field(), "");
    assert_eq!(document_error(r#"{}"#).field(), "circuits");
    assert_eq!(document_error(r#"{"circuits": []}"#).field(), "circuits");
    assert_eq!(
        document_error(r#"{"circuits": {}, "extra": 1}"#).field(),
        "extra"
    );
    let twice = document_error(r#"{"circuits": {"a": {}, "a": {"timeout": 1.0}}}"#);
    assert_eq!(twice.field(), "circuits.a");
    assert!(twice.to_string().contains("more than once"), "{twice}");
    assert!(
        CircuitsFile::from_json(r#"{"circuits": {}}"#)
            .unwrap()
            .circuits
            .is_empty()
    );
}

#[test]
fn a_missing_file_is_a_read_error_naming_it() {
    let folder = TempDir::new();
    let path = folder.path().join("circuits.json");
    let err = CircuitsFile::load(&path).unwrap_err();
    assert!(matches!(err, CircuitsFileError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("circuits.json"), "{err}");
}

#[actix::test]
async fn a_valid_file_creates_its_circuits_and_a_bad_one_creates_none() {
    tokio::time::pause();
    within(async {
        let vibezen = integration();
        let folder = TempDir::new();

        let bad = folder.path().join("bad.json");
        std::fs::write(
            &bad,
            r#"{"circuits": {"ok": {}, "broken": {"preset": "X"}}}"#,
        )
        .unwrap();
        assert!(CircuitsFile::load(&bad).is_err());
        assert!(vibezen.manager().send(AllStats).await.unwrap().is_empty());

        let good = folder.path().join("circuits.json");
        std::fs::write(&good, GOOD).unwrap();
        let file = CircuitsFile::load(&good).unwrap();
        let created = vibezen.add_circuits(&file).await.unwrap();
        assert_eq!(
            created,
            ["ai_provider_openai", "billing", "cache", "search"]
        );
        let stats = vibezen.manager().send(AllStats).await.unwrap();
        assert_eq!(stats.len(), 4);
        for circuit in &stats {
            assert_eq!(
                circuit.config, file.circuits[&circuit.name],
                "{}",
                circuit.name
            );
        }
        assert_eq!(stats[0].config, Preset::AiProvider.config());
    })
    .await;
}

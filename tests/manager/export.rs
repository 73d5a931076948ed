//! The JSON export round-trips through serde_json, and the file write is
//! atomic: all or nothing, nothing left behind.

use std::io::ErrorKind;
use std::path::Path;

use actix::prelude::*;
use serde_json::Value;
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::export::{EXPORT_SCHEMA_VERSION, ExportError, WriteStep, write_atomically};
use vibezen_recovery::manager::{
    CircuitBreakerManager, DisableCircuit, ExportStats, ExportStatsToFile, ForceOpenCircuit,
    GetBreaker,
};

use crate::support::*;

/// A manager with an open critical circuit and a healthy one.
async fn busy_manager() -> Addr<CircuitBreakerManager> {
    let manager = manager(touchy());
    let critical = CircuitBreakerConfig {
        critical: true,
        ..touchy()
    };
    manager
        .send(GetBreaker::with_config("ai", critical))
        .await
        .unwrap()
        .unwrap();
    fail(&manager, "ai").await.unwrap_err();
    succeed(&manager, "cache").await.unwrap();
    manager
}

async fn export(path: &Path, manager: &Addr<CircuitBreakerManager>) -> Result<(), ExportError> {
    manager
        .send(ExportStatsToFile(path.to_owned()))
        .await
        .unwrap()
}

fn check_document(json: &Value) {
    assert_eq!(json["schema_version"], EXPORT_SCHEMA_VERSION);
    let exported_at = json["exported_at"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(exported_at).expect("an RFC 3339 timestamp");

    let health = &json["health"];
    assert_eq!(health["health_score"], 0.25);
    assert_eq!(health["open"], serde_json::json!(["ai"]));
    assert_eq!(health["half_open"], serde_json::json!([]));
    assert_eq!(health["circuits"][0]["name"], "ai");
    assert_eq!(health["circuits"][0]["state"], "OPEN");
    assert_eq!(health["circuits"][0]["critical"], true);
    assert_eq!(health["circuits"][0]["score"], 0.0);
    assert_eq!(health["circuits"][0]["calls"], 1);
    assert!(health["circuits"][1]["failure_rate"].is_null());

    let circuits = json["circuits"].as_array().unwrap();
    let names: Vec<_> = circuits
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ai", "cache"]);
    let ai = &circuits[0];
    assert_eq!(ai["state"], "OPEN");
    assert_eq!(ai["totals"]["failures"], 1);
    assert_eq!(ai["config"]["failure_threshold"], 1);
    assert_eq!(ai["config"]["timeout"], 60.0);
    assert_eq!(ai["config"]["critical"], true);
    assert_eq!(ai["config"]["window"]["kind"], "count");
    let change = &ai["state_changes"][0];
    assert_eq!(change["circuit"], "ai");
    assert_eq!(change["from"], "CLOSED");
    assert_eq!(change["to"], "OPEN");
    assert_eq!(change["reason"]["kind"], "consecutive_failures");
    assert_eq!(change["reason"]["count"], 1);
    chrono::DateTime::parse_from_rfc3339(change["at"].as_str().unwrap()).unwrap();
    chrono::DateTime::parse_from_rfc3339(ai["last_state_change_at"].as_str().unwrap()).unwrap();
    assert!(ai["last_failure_at"].is_string());
    assert_eq!(circuits[1]["totals"]["successes"], 1);
    assert!(circuits[1]["last_failure_at"].is_null());
}

#[actix::test]
async fn the_export_round_trips_through_serde_json() {
    tokio::time::pause();
    within(async {
        let manager = busy_manager().await;
        let text = manager.send(ExportStats).await.unwrap();
        assert!(
            text.contains("\n  \"schema_version\""),
            "not pretty: {text}"
        );
        let json: Value = serde_json::from_str(&text).unwrap();
        check_document(&json);
    })
    .await;
}

/// Issue 9: the operator's states and reasons are exported by their names,
/// and the health lists the circuits in each.
#[actix::test]
async fn the_export_names_the_operator_states_and_reasons() {
    tokio::time::pause();
    within(async {
        let manager = busy_manager().await;
        manager
            .send(ForceOpenCircuit("ai".into()))
            .await
            .unwrap()
            .unwrap();
        manager
            .send(DisableCircuit("cache".into()))
            .await
            .unwrap()
            .unwrap();
        let json: Value = serde_json::from_str(&manager.send(ExportStats).await.unwrap()).unwrap();
        let health = &json["health"];
        assert_eq!(health["forced_open"], serde_json::json!(["ai"]));
        assert_eq!(health["disabled"], serde_json::json!(["cache"]));
        assert_eq!(health["open"], serde_json::json!([]));
        let circuits = json["circuits"].as_array().unwrap();
        assert_eq!(circuits[0]["state"], "FORCED_OPEN");
        assert_eq!(circuits[1]["state"], "DISABLED");
        let forced = &circuits[0]["state_changes"][1];
        assert_eq!(
            (&forced["from"], &forced["to"]),
            (&"OPEN".into(), &"FORCED_OPEN".into())
        );
        assert_eq!(forced["reason"]["kind"], "forced_open");
        assert_eq!(
            circuits[1]["state_changes"][0]["reason"]["kind"],
            "disabled"
        );
    })
    .await;
}

#[actix::test]
async fn exporting_to_a_file_writes_the_document_and_leaves_nothing_else() {
    tokio::time::pause();
    within(async {
        let manager = busy_manager().await;
        let folder = TempDir::new();
        let path = folder.path().join("stats.json");
        std::fs::write(&path, "old contents").unwrap();

        export(&path, &manager).await.unwrap();
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        check_document(&json);
        assert_eq!(folder.listing(), ["stats.json"]);
    })
    .await;
}

#[actix::test]
async fn a_folder_in_the_way_is_an_error_and_stays_intact() {
    tokio::time::pause();
    within(async {
        let manager = busy_manager().await;
        let folder = TempDir::new();
        let target = folder.path().join("stats.json");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep.txt"), "precious").unwrap();

        let err = export(&target, &manager).await.unwrap_err();
        match &err {
            ExportError::Io { path, step, source } => {
                assert_eq!(path, &target);
                assert_eq!(*step, WriteStep::Rename);
                assert_eq!(source.kind(), ErrorKind::IsADirectory);
            }
            other => panic!("expected an I/O error, got {other:?}"),
        }
        let message = err.to_string();
        assert!(
            message.contains("stats.json") && message.contains("folder"),
            "{message}"
        );
        assert_eq!(
            folder.listing(),
            ["stats.json"],
            "a temporary file was left"
        );
        assert_eq!(
            std::fs::read_to_string(target.join("keep.txt")).unwrap(),
            "precious"
        );
    })
    .await;
}

#[actix::test]
async fn a_missing_folder_is_an_error_that_says_so() {
    tokio::time::pause();
    within(async {
        let manager = busy_manager().await;
        let folder = TempDir::new();
        let target = folder.path().join("no-such-folder").join("stats.json");
        let err = export(&target, &manager).await.unwrap_err();
        assert!(
            matches!(&err, ExportError::Io { step: WriteStep::CreateTemporary, source, .. } if source.kind() == ErrorKind::NotFound),
            "{err:?}"
        );
        assert!(err.to_string().contains("create the folder first"), "{err}");
        assert!(folder.listing().is_empty());
    })
    .await;
}

#[test]
fn a_path_that_names_no_file_is_refused() {
    for path in ["", "..", "/"] {
        let err = write_atomically(Path::new(path), b"{}").unwrap_err();
        assert!(
            matches!(err, ExportError::InvalidPath { .. }),
            "{path:?}: {err:?}"
        );
        assert!(err.to_string().contains("such as `stats.json`"), "{err}");
    }
}

#[test]
fn an_atomic_write_replaces_the_whole_file_and_keeps_its_permissions() {
    let folder = TempDir::new();
    let path = folder.path().join("stats.json");
    std::fs::write(&path, "a much longer previous document than the new one").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    write_atomically(&path, b"{}").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }
    assert_eq!(folder.listing(), ["stats.json"]);

    // Many writes in a row leave one file, holding the last.
    for n in 0..20 {
        write_atomically(&path, n.to_string().as_bytes()).unwrap();
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "19");
    assert_eq!(folder.listing(), ["stats.json"]);
}

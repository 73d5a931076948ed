//! Hostile circuit names through every entry point: refused exactly when
//! `validate_circuit_name` says (empty or only white space, over 256 bytes,
//! a control character), with a readable error, and never a panic.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use vibezen_recovery::circuit::{CallError, CircuitBreaker};
use vibezen_recovery::config::{CircuitBreakerConfig, ConfigError};
use vibezen_recovery::integration::{Fallback, Served, VibezenIntegration, WorkflowConfig};
use vibezen_recovery::manager::{
    AllStats, Call, ExportStats, GetBreaker, GetCircuitHandle, ManagerError, ResetCircuit,
};
use vibezen_recovery::name::{MAX_NAME_LEN, validate_circuit_name};

use crate::checks;
use crate::common::within;

/// The rule as `validate_circuit_name` documents it.
fn documented_ok(name: &str) -> bool {
    !name.trim().is_empty() && name.len() <= MAX_NAME_LEN && !name.chars().any(char::is_control)
}

/// Names at every edge of the rule, and anything at all.
fn hostile_name() -> impl Strategy<Value = String> {
    let spaces = prop::collection::vec(
        prop::sample::select(vec![' ', '\u{3000}', '\u{a0}', '\u{2003}', '\n', '\t']),
        0..4,
    )
    .prop_map(|chars| chars.into_iter().collect::<String>());
    let near_the_limit = (
        MAX_NAME_LEN - 6..=MAX_NAME_LEN + 2,
        prop::sample::select(vec!["", "é", "検", "😀"]),
    )
        .prop_map(|(ascii, tail)| format!("{}{tail}", "a".repeat(ascii)));
    let with_a_control = (
        "[a-z]{0,5}",
        prop::sample::select(vec![
            '\0', '\n', '\r', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}',
        ]),
        "[a-z]{0,5}",
    )
        .prop_map(|(before, control, after)| format!("{before}{control}{after}"));
    let odd = prop::sample::select(vec![
        "\u{202e}evil",
        "line\u{2028}separator",
        "\u{feff}bom",
        "zero\u{200b}width",
        "%s%n%x",
        "../../etc/passwd",
        "a\"b\\c",
        " padded ",
        "👩‍👩‍👧",
        "検索",
        "circuits.a",
    ])
    .prop_map(str::to_owned);
    prop_oneof![
        any::<String>(),
        "\\PC{0,40}",
        spaces,
        near_the_limit,
        with_a_control,
        odd,
        (0..3usize).prop_map(|n| "x".repeat(n * 100_000)),
    ]
}

proptest! {
    #![proptest_config(crate::proptest_config(2_000))]

    /// `validate_circuit_name` and `CircuitBreaker::new` refuse exactly what
    /// the rule refuses, with a readable error about the name.
    #[test]
    fn a_name_is_refused_exactly_when_the_rule_says(name in hostile_name()) {
        let ok = documented_ok(&name);
        match validate_circuit_name(&name) {
            Ok(()) => prop_assert!(ok, "accepted {:?}", name),
            Err(err) => {
                prop_assert!(!ok, "refused {:?}: {}", name, err);
                refused_readably(&err).map_err(TestCaseError::fail)?;
            }
        }
        match CircuitBreaker::new(name.clone(), CircuitBreakerConfig::default()) {
            Ok(circuit) => {
                prop_assert!(ok, "created {:?}", name);
                prop_assert_eq!(circuit.name(), name.as_str());
            }
            Err(err) => {
                prop_assert!(!ok, "refused {:?}: {}", name, err);
                refused_readably(&err).map_err(TestCaseError::fail)?;
            }
        }
    }
}

fn refused_readably(err: &ConfigError) -> Result<(), String> {
    checks::config_error(err)?;
    match err {
        ConfigError::InvalidName { .. } => Ok(()),
        other => Err(format!("not a name error: {other:?}")),
    }
}

/// The fixed edges, then a few hundred generated names.
fn names() -> Vec<String> {
    let mut names: Vec<String> = [
        "",
        " ",
        "\u{3000}",
        "a\nb",
        "\0",
        "\u{7f}",
        "\u{85}",
        "\u{202e}evil",
        "line\u{2028}separator",
        "検索",
        "😀",
        " padded ",
        "a\"b\\c",
    ]
    .map(str::to_owned)
    .to_vec();
    names.push("a".repeat(MAX_NAME_LEN));
    names.push("a".repeat(MAX_NAME_LEN + 1));
    names.push(format!("{}é", "a".repeat(MAX_NAME_LEN - 2)));
    names.push(format!("{}é", "a".repeat(MAX_NAME_LEN - 1)));
    names.push("x".repeat(1 << 20));
    let mut runner = TestRunner::deterministic();
    let strategy = hostile_name();
    for _ in 0..300 {
        let name = strategy.new_tree(&mut runner).unwrap().current();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Every entry point that takes a name: the circuit itself, the manager's
/// `GetBreaker`, `GetCircuitHandle`, `Call` and `ResetCircuit`, and the
/// integration's `protected_call` and handler registration. A refused name
/// creates nothing and never runs the caller's future.
#[actix::test]
async fn every_entry_point_accepts_or_refuses_a_name_as_documented() {
    tokio::time::pause();
    within(async {
        let vibezen = VibezenIntegration::new(WorkflowConfig::default()).unwrap();
        let manager = vibezen.manager().clone();
        let mut accepted: Vec<String> = Vec::new();
        for name in names() {
            let ok = documented_ok(&name);
            let shown: String = name.chars().take(40).collect();
            let context = format!("{shown:?} ({} bytes)", name.len());

            match manager.send(GetBreaker::new(name.clone())).await.unwrap() {
                Ok(_) => assert!(ok, "GetBreaker created {context}"),
                Err(err) => {
                    assert!(!ok, "GetBreaker refused {context}: {err}");
                    refused_readably(&err).unwrap();
                }
            }
            match manager
                .send(GetCircuitHandle::new(name.clone()))
                .await
                .unwrap()
            {
                Ok(handle) => {
                    assert!(ok, "GetCircuitHandle made {context}");
                    assert_eq!(handle.name(), name);
                }
                Err(ManagerError::InvalidConfig(err)) => {
                    assert!(!ok, "GetCircuitHandle refused {context}: {err}");
                    refused_readably(&err).unwrap();
                }
                Err(other) => panic!("GetCircuitHandle {context}: {other}"),
            }

            let ran = Arc::new(AtomicBool::new(false));
            let service = |ran: &Arc<AtomicBool>| {
                let ran = Arc::clone(ran);
                async move {
                    ran.store(true, Ordering::SeqCst);
                    Ok::<_, String>(7)
                }
            };
            let reply = manager
                .send(Call::new(name.clone(), service(&ran)))
                .await
                .unwrap();
            match reply {
                Ok(7) => assert!(ok, "Call ran for {context}"),
                Err(ref err @ CallError::InvalidName(ref refused)) => {
                    assert!(!ok, "Call refused {context}: {err}");
                    assert!(!ran.swap(false, Ordering::SeqCst), "ran for {context}");
                    refused_readably(refused).unwrap();
                    assert!(err.to_string().starts_with(&refused.to_string()));
                }
                other => panic!("Call {context}: {other:?}"),
            }

            let served = vibezen
                .protected_call(
                    name.clone(),
                    service(&ran),
                    Some(Fallback::new(|| async { 0 })),
                )
                .await;
            match served {
                Ok(Served::Service(7)) => assert!(ok, "protected_call ran for {context}"),
                // A refusal is no rejection by an open circuit: the plain
                // fallback does not answer it.
                Err(CallError::InvalidName(refused)) => {
                    assert!(!ok, "protected_call refused {context}: {refused}");
                    assert!(!ran.swap(false, Ordering::SeqCst), "ran for {context}");
                    refused_readably(&refused).unwrap();
                }
                other => panic!("protected_call {context}: {other:?}"),
            }
            let served = vibezen
                .protected_call(
                    name.clone(),
                    service(&ran),
                    Some(Fallback::on_any_error(|| async { 0 })),
                )
                .await;
            match served {
                Ok(Served::Service(7)) => assert!(ok, "{context}"),
                Ok(Served::Fallback {
                    value: 0,
                    cause: CallError::InvalidName(_),
                }) => assert!(!ok, "{context}"),
                other => panic!("protected_call on any error {context}: {other:?}"),
            }
            if !ok {
                assert!(!ran.load(Ordering::SeqCst), "the service ran for {context}");
            }

            for registered in [
                vibezen.register_degradation_handler(name.clone(), || async {}),
                vibezen.register_recovery_handler(name.clone(), || async {}),
            ] {
                match registered {
                    Ok(()) => assert!(ok, "a handler registered for {context}"),
                    Err(err) => {
                        assert!(!ok, "a handler refused for {context}: {err}");
                        refused_readably(&err).unwrap();
                    }
                }
            }

            match manager.send(ResetCircuit(name.clone())).await.unwrap() {
                Ok(()) => assert!(ok, "{context}"),
                Err(err @ ManagerError::UnknownCircuit(_)) => {
                    assert!(!ok, "{context}");
                    assert!(!err.to_string().chars().any(char::is_control), "{err}");
                }
                Err(other) => panic!("ResetCircuit {context}: {other}"),
            }
            if ok {
                accepted.push(name);
            }
        }

        // Exactly the accepted names exist, and they survive the export.
        accepted.sort();
        let stats = manager.send(AllStats).await.unwrap();
        let existing: Vec<String> = stats.into_iter().map(|stats| stats.name).collect();
        assert_eq!(existing, accepted);
        let export: serde_json::Value =
            serde_json::from_str(&manager.send(ExportStats).await.unwrap()).unwrap();
        let exported: Vec<&str> = export["circuits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|circuit| circuit["name"].as_str().unwrap())
            .collect();
        assert_eq!(exported, accepted);
    })
    .await;
}

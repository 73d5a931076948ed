//! Getting, creating, calling, resetting and subscribing by name.

use actix::prelude::*;
use vibezen_recovery::circuit::{CallError, CircuitStats, ProtectedCall, Stats};
use vibezen_recovery::config::{CircuitBreakerConfig, ConfigError};
use vibezen_recovery::manager::{
    AllStats, Call, CircuitBreakerManager, GetBreaker, GetCircuitHandle, ManagerError, ResetAll,
    ResetCircuit, SubscribeAll, UnknownCircuit,
};
use vibezen_recovery::outcome::{Classification, Outcome};
use vibezen_recovery::state::CircuitState;

use crate::support::*;

#[actix::test]
async fn the_same_name_gives_the_same_circuit() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        let first = manager
            .send(GetBreaker::new("search"))
            .await
            .unwrap()
            .unwrap();
        let second = manager
            .send(GetBreaker::new("search"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first, second);

        // A call routed by name lands on the circuit everyone holds.
        fail(&manager, "search").await.unwrap_err();
        let stats = first.send(Stats).await.unwrap();
        assert_eq!(stats.state, CircuitState::Open);
        assert_eq!(stats.totals[Outcome::Failure], 1);
        assert_eq!(manager.send(AllStats).await.unwrap().len(), 1);
    })
    .await;
}

#[actix::test]
async fn another_config_for_a_live_name_returns_the_live_circuit() {
    tokio::time::pause();
    within(async {
        let (logs, _guard) = Logs::capture();
        let manager = manager(CircuitBreakerConfig::default());
        let original = CircuitBreakerConfig {
            failure_threshold: 7,
            ..Default::default()
        };
        let live = manager
            .send(GetBreaker::with_config("cache", original.clone()))
            .await
            .unwrap()
            .unwrap();
        let other = CircuitBreakerConfig {
            failure_threshold: 2,
            ..Default::default()
        };
        let again = manager
            .send(GetBreaker::with_config("cache", other))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again, live);
        assert_eq!(live.send(Stats).await.unwrap().config, original);
        let warnings = logs.warnings_about("cache");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].message.contains("another config"),
            "{warnings:?}"
        );

        // The same config again, or none, is no cause for a warning.
        manager
            .send(GetBreaker::with_config("cache", original))
            .await
            .unwrap()
            .unwrap();
        manager
            .send(GetBreaker::new("cache"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(logs.warnings_about("cache").len(), 1);
    })
    .await;
}

#[actix::test]
async fn a_refused_name_or_config_creates_nothing() {
    tokio::time::pause();
    within(async {
        let manager = manager(CircuitBreakerConfig::default());
        let bad = CircuitBreakerConfig {
            success_threshold: 0,
            ..Default::default()
        };
        let err = manager
            .send(GetBreaker::with_config("cache", bad.clone()))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.field(), "success_threshold");

        let err = manager
            .send(GetBreaker::new("line\nbreak"))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, ConfigError::InvalidName { .. }), "{err:?}");
        let err = manager
            .send(GetBreaker::new("  "))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.field(), "name");
        assert!(manager.send(AllStats).await.unwrap().is_empty());

        // A call under a refused name reaches no circuit and does not hang.
        let reply = manager
            .send(Call::new("", async { Ok::<u8, String>(1) }))
            .await
            .unwrap();
        match reply {
            Err(CallError::InvalidName(err)) => assert_eq!(err.field(), "name"),
            other => panic!("expected the name to be refused, got {other:?}"),
        }
        assert!(manager.send(AllStats).await.unwrap().is_empty());

        // A refused config for a live name is refused too; the circuit stays.
        let live = manager
            .send(GetBreaker::new("cache"))
            .await
            .unwrap()
            .unwrap();
        manager
            .send(GetBreaker::with_config("cache", bad))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(
            manager
                .send(GetBreaker::new("cache"))
                .await
                .unwrap()
                .unwrap(),
            live
        );
    })
    .await;
}

#[test]
fn a_refused_default_config_is_an_error() {
    let bad = CircuitBreakerConfig {
        min_calls: 0,
        ..Default::default()
    };
    let err = CircuitBreakerManager::new(bad).unwrap_err();
    assert_eq!(err.field(), "min_calls");
}

#[actix::test]
async fn a_call_creates_its_circuit_with_the_default_config() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        succeed(&manager, "ai").await.unwrap();
        fail(&manager, "ai").await.unwrap_err();
        let rejected = succeed(&manager, "ai").await.unwrap_err();
        match rejected {
            CallError::Open(open) => {
                assert_eq!(open.circuit(), "ai");
                assert_eq!(open.state(), CircuitState::Open);
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        let stats = manager.send(AllStats).await.unwrap();
        assert_eq!(stats[0].config, touchy());
        assert_eq!(stats[0].totals[Outcome::Success], 1);
        assert_eq!(stats[0].totals[Outcome::Failure], 1);
        assert_eq!(stats[0].totals.rejections, 1);
    })
    .await;
}

#[actix::test]
async fn a_call_keeps_its_classifier() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        let not_found = ProtectedCall::new(async { Err::<u8, _>("404".to_owned()) })
            .classify(|_| Classification::Ignored);
        let reply = manager
            .send(Call::protected("kg", not_found))
            .await
            .unwrap();
        assert!(matches!(reply, Err(CallError::Failed(ref e)) if e == "404"));
        let stats = &manager.send(AllStats).await.unwrap()[0];
        assert_eq!(stats.state, CircuitState::Closed);
        assert_eq!(stats.totals[Outcome::Ignored], 1);
    })
    .await;
}

#[actix::test]
async fn calls_through_the_manager_overlap() {
    tokio::time::pause();
    within(async {
        let manager = manager(CircuitBreakerConfig::default());
        let start = tokio::time::Instant::now();
        let calls = (0..20).map(|n| {
            manager.send(Call::new("slow", async move {
                tokio::time::sleep(secs(1)).await;
                Ok::<_, String>(n)
            }))
        });
        let results = futures_util::future::join_all(calls).await;
        // tokio's timer rounds each deadline up by at most a millisecond.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= secs(1) && elapsed <= secs(1) + std::time::Duration::from_millis(1),
            "the manager serialized the calls: {elapsed:?}"
        );
        for (n, result) in results.into_iter().enumerate() {
            assert_eq!(result.unwrap().unwrap(), n);
        }
    })
    .await;
}

#[actix::test]
async fn reset_circuit_resets_a_known_circuit_and_refuses_an_unknown_name() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        fail(&manager, "search").await.unwrap_err();
        manager
            .send(ResetCircuit("search".into()))
            .await
            .unwrap()
            .unwrap();
        // The reply came after the reset.
        let stats = &manager.send(AllStats).await.unwrap()[0];
        assert_eq!(stats.state, CircuitState::Closed);
        succeed(&manager, "search").await.unwrap();

        let err = manager
            .send(ResetCircuit("serch".into()))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(
            err,
            ManagerError::UnknownCircuit(UnknownCircuit::among("serch", ["search"]))
        );
        assert!(err.to_string().contains("did you mean \"search\""), "{err}");
        assert_eq!(manager.send(AllStats).await.unwrap().len(), 1);
    })
    .await;
}

#[actix::test]
async fn reset_all_replies_once_every_circuit_is_closed() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        for name in ["a", "b", "c"] {
            fail(&manager, name).await.unwrap_err();
        }
        let states =
            |stats: Vec<CircuitStats>| stats.into_iter().map(|s| s.state).collect::<Vec<_>>();
        assert_eq!(
            states(manager.send(AllStats).await.unwrap()),
            [CircuitState::Open; 3]
        );
        manager.send(ResetAll).await.unwrap();
        assert_eq!(
            states(manager.send(AllStats).await.unwrap()),
            [CircuitState::Closed; 3]
        );
    })
    .await;
}

#[actix::test]
async fn all_stats_are_sorted_by_name() {
    tokio::time::pause();
    within(async {
        let manager = manager(CircuitBreakerConfig::default());
        for name in ["zeta", "alpha", "Mid", "beta", "検索"] {
            manager.send(GetBreaker::new(name)).await.unwrap().unwrap();
        }
        let names: Vec<String> = manager
            .send(AllStats)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["Mid", "alpha", "beta", "zeta", "検索"]);
    })
    .await;
}

#[actix::test]
async fn subscribe_all_hears_present_and_future_circuits_in_order() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        manager
            .send(GetBreaker::new("before"))
            .await
            .unwrap()
            .unwrap();
        let mut events = record_all(&manager).await;

        fail(&manager, "before").await.unwrap_err();
        fail(&manager, "after").await.unwrap_err();
        // tokio's timer rounds a deadline up by up to a millisecond.
        advance(secs(61)).await;
        succeed(&manager, "before").await.unwrap();
        succeed(&manager, "before").await.unwrap();
        settle().await;

        let received = drain(&mut events);
        let edges = |name: &str| {
            received
                .iter()
                .filter(|e| e.circuit == name)
                .map(|e| (e.from, e.to))
                .collect::<Vec<_>>()
        };
        use CircuitState::*;
        assert_eq!(
            edges("before"),
            [(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)]
        );
        assert_eq!(edges("after"), [(Closed, Open), (Open, HalfOpen)]);
        assert_eq!(received.len(), 5);
    })
    .await;
}

#[actix::test]
async fn subscribing_twice_delivers_once() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        let (sender, mut events) = tokio::sync::mpsc::unbounded_channel();
        let recorder = Recorder(sender).start().recipient();
        for _ in 0..2 {
            manager.send(SubscribeAll(recorder.clone())).await.unwrap();
        }
        fail(&manager, "x").await.unwrap_err();
        settle().await;
        assert_eq!(drain(&mut events).len(), 1);
    })
    .await;
}

#[actix::test]
async fn a_handle_by_name_shares_the_managed_circuit() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        let handle = manager
            .send(GetCircuitHandle::new("search"))
            .await
            .unwrap()
            .unwrap();
        // A failure through the fast path opens the circuit everyone holds.
        let failed = handle.call(async { Err::<(), _>("down") }).await;
        assert!(matches!(failed, Err(CallError::Failed("down"))));
        assert!(fail(&manager, "search").await.unwrap_err().is_rejected());
        let circuit = manager
            .send(GetBreaker::new("search"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(circuit.send(Stats).await.unwrap().state, CircuitState::Open);

        let refused = CircuitBreakerConfig {
            min_calls: 0,
            ..Default::default()
        };
        let err = manager
            .send(GetCircuitHandle::with_config("other", refused))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, ManagerError::InvalidConfig(ref e) if e.field() == "min_calls"));
    })
    .await;
}

//! Dead circuits are noticed and recreated; old addresses fail fast.

use actix::prelude::*;
use vibezen_recovery::circuit::{CallError, CircuitBreaker, CircuitBreakerExt, Stats, Stop};
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::manager::{
    AllStats, Call, CircuitBreakerManager, GetBreaker, GetRestarts, SWEEP_INTERVAL,
};
use vibezen_recovery::outcome::Outcome;
use vibezen_recovery::state::CircuitState;

use crate::support::*;

/// Stops the named circuit's actor and waits until it is gone.
async fn kill(manager: &Addr<CircuitBreakerManager>, name: &str) -> Addr<CircuitBreaker> {
    let old = manager.send(GetBreaker::new(name)).await.unwrap().unwrap();
    old.send(Stop).await.unwrap();
    settle().await;
    assert!(!old.connected(), "the circuit did not stop");
    old
}

#[actix::test]
async fn a_stopped_circuit_is_recreated_when_a_message_is_routed_to_it() {
    tokio::time::pause();
    within(async {
        let (logs, _guard) = Logs::capture();
        let config = CircuitBreakerConfig {
            failure_threshold: 1,
            critical: true,
            ..Default::default()
        };
        let manager = manager(CircuitBreakerConfig::default());
        manager
            .send(GetBreaker::with_config("ai", config.clone()))
            .await
            .unwrap()
            .unwrap();
        fail(&manager, "ai").await.unwrap_err();
        let old = kill(&manager, "ai").await;

        // Recreated under the same name and config; the state is gone.
        let new = manager.send(GetBreaker::new("ai")).await.unwrap().unwrap();
        assert_ne!(new, old);
        let stats = new.send(Stats).await.unwrap();
        assert_eq!(stats.state, CircuitState::Closed);
        assert_eq!(stats.totals.calls, 0);
        assert!(stats.state_changes.is_empty());
        assert_eq!(stats.config, config);
        succeed(&manager, "ai").await.unwrap();
        assert_eq!(manager.send(GetRestarts).await.unwrap()["ai"], 1);
        let warnings = logs.warnings_about("ai");
        assert!(
            warnings.iter().any(|w| w.message.contains("recreated")),
            "{warnings:?}"
        );
    })
    .await;
}

#[actix::test]
async fn a_routed_call_reaches_the_recreated_circuit() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        fail(&manager, "search").await.unwrap_err();
        kill(&manager, "search").await;
        // The open circuit died; its replacement is CLOSED and admits the call.
        succeed(&manager, "search").await.unwrap();
        let stats = &manager.send(AllStats).await.unwrap()[0];
        assert_eq!(stats.totals[Outcome::Success], 1);
        assert_eq!(stats.totals[Outcome::Failure], 0);
    })
    .await;
}

#[actix::test]
async fn the_sweep_recreates_a_dead_circuit_without_any_message() {
    tokio::time::pause();
    within(async {
        let manager = manager(CircuitBreakerConfig::default());
        kill(&manager, "cache").await;
        assert_eq!(manager.send(GetRestarts).await.unwrap()["cache"], 0);
        // The next sweep is due within one interval (plus the millisecond by
        // which tokio's timer rounds up).
        advance(SWEEP_INTERVAL + std::time::Duration::from_millis(1)).await;
        assert_eq!(manager.send(GetRestarts).await.unwrap()["cache"], 1);
    })
    .await;
}

#[actix::test]
async fn holders_of_the_old_address_get_an_error_not_a_hang() {
    tokio::time::pause();
    within(async {
        let manager = manager(CircuitBreakerConfig::default());
        let old = manager.send(GetBreaker::new("kg")).await.unwrap().unwrap();

        // A call in flight when the circuit stops.
        let in_flight = manager.send(Call::new("kg", async {
            tokio::time::sleep(secs(3600)).await;
            Ok::<_, String>(())
        }));
        let in_flight = actix::spawn(in_flight);
        settle().await;
        old.send(Stop).await.unwrap();
        settle().await;

        let reply = in_flight.await.unwrap().unwrap();
        assert!(matches!(reply, Err(CallError::Unavailable(_))), "{reply:?}");
        assert!(matches!(
            old.send(Stats).await,
            Err(actix::MailboxError::Closed)
        ));
        let direct = old.call(async { Ok::<_, String>(()) }).await;
        assert!(
            matches!(direct, Err(CallError::Unavailable(_))),
            "{direct:?}"
        );
    })
    .await;
}

#[actix::test]
async fn a_recreated_circuit_keeps_its_subscribers() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        let mut events = record_all(&manager).await;
        fail(&manager, "ai").await.unwrap_err();
        kill(&manager, "ai").await;
        fail(&manager, "ai").await.unwrap_err();
        settle().await;

        let received = drain(&mut events);
        assert_eq!(received.len(), 2, "{received:?}");
        assert!(
            received
                .iter()
                .all(|e| e.circuit == "ai" && e.to == CircuitState::Open)
        );
        // The second event is a fresh circuit opening: CLOSED -> OPEN again,
        // in generation 1 again.
        assert_eq!(received[1].generation, 1);
        let stats = &manager.send(AllStats).await.unwrap()[0];
        assert_eq!(stats.subscribers, 1);
    })
    .await;
}

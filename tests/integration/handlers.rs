//! Degradation and recovery handlers: once per transition, in order, and a
//! failing one harms nothing.

use std::time::Duration;

use vibezen_recovery::integration::{VibezenIntegration, WorkflowConfig};
use vibezen_recovery::manager::{
    AllStats, DisableCircuit, ForceOpenCircuit, ReleaseCircuit, ResetCircuit,
};
use vibezen_recovery::state::CircuitState;

use crate::support::*;

#[actix::test]
async fn handlers_fire_once_per_outage_and_recovery_in_order() {
    tokio::time::pause();
    within(async {
        let vibezen = integration();
        let log = Log::default();
        vibezen
            .register_degradation_handler("ai", log.handler("ai degraded"))
            .unwrap();
        vibezen
            .register_recovery_handler("ai", log.handler("ai recovered"))
            .unwrap();
        vibezen
            .register_degradation_handler("cache", log.handler("cache degraded"))
            .unwrap();

        // CLOSED -> OPEN: degradation.
        fail(&vibezen, "ai").await;
        settle().await;
        assert_eq!(log.entries(), ["ai degraded"]);

        // OPEN -> HALF_OPEN -> OPEN: the same outage, nothing fires.
        advance(secs(61)).await;
        fail(&vibezen, "ai").await;
        advance(secs(61)).await;
        assert_eq!(log.entries(), ["ai degraded"]);

        // HALF_OPEN -> CLOSED: recovery, once.
        succeed(&vibezen, "ai").await.unwrap();
        succeed(&vibezen, "ai").await.unwrap();
        settle().await;
        assert_eq!(log.entries(), ["ai degraded", "ai recovered"]);

        // A second outage, ended by a manual reset.
        fail(&vibezen, "ai").await;
        vibezen
            .manager()
            .send(ResetCircuit("ai".into()))
            .await
            .unwrap()
            .unwrap();
        settle().await;
        assert_eq!(
            log.entries(),
            ["ai degraded", "ai recovered", "ai degraded", "ai recovered"]
        );

        // Another circuit's handlers are its own.
        succeed(&vibezen, "search").await.unwrap();
        fail(&vibezen, "cache").await;
        settle().await;
        assert_eq!(log.entries().last().unwrap(), "cache degraded");
        assert_eq!(log.entries().len(), 5);
    })
    .await;
}

/// Issue 9: DISABLED serves every call, so disabling and releasing a
/// CLOSED circuit fire nothing; forcing it open is a degradation, and
/// leaving FORCED_OPEN for a state that serves (DISABLED too) a recovery.
#[actix::test]
async fn an_operator_forcing_open_degrades_and_disabling_does_not() {
    tokio::time::pause();
    within(async {
        let vibezen = integration();
        let log = Log::default();
        vibezen
            .register_degradation_handler("ai", log.handler("ai degraded"))
            .unwrap();
        vibezen
            .register_recovery_handler("ai", log.handler("ai recovered"))
            .unwrap();
        succeed(&vibezen, "ai").await.unwrap();
        let manager = vibezen.manager();
        let name = || "ai".to_string();
        manager.send(DisableCircuit(name())).await.unwrap().unwrap();
        manager.send(ReleaseCircuit(name())).await.unwrap().unwrap();
        settle().await;
        assert!(log.entries().is_empty(), "{:?}", log.entries());

        manager
            .send(ForceOpenCircuit(name()))
            .await
            .unwrap()
            .unwrap();
        settle().await;
        assert_eq!(log.entries(), ["ai degraded"]);
        manager.send(DisableCircuit(name())).await.unwrap().unwrap();
        settle().await;
        assert_eq!(log.entries(), ["ai degraded", "ai recovered"]);
    })
    .await;
}

#[actix::test]
async fn handlers_run_one_at_a_time_in_registration_and_event_order() {
    tokio::time::pause();
    within(async {
        let vibezen = integration();
        let log = Log::default();
        let slow = {
            let log = log.clone();
            move || {
                let log = log.clone();
                async move {
                    log.push("first degradation handler starts");
                    tokio::time::sleep(secs(5)).await;
                    log.push("first degradation handler ends");
                }
            }
        };
        vibezen.register_degradation_handler("ai", slow).unwrap();
        vibezen
            .register_degradation_handler("ai", log.handler("second degradation handler"))
            .unwrap();
        vibezen
            .register_recovery_handler("ai", log.handler("recovery handler"))
            .unwrap();

        fail(&vibezen, "ai").await;
        settle().await;
        // Reset while the slow handler still runs: recovery waits its turn.
        vibezen
            .manager()
            .send(ResetCircuit("ai".into()))
            .await
            .unwrap()
            .unwrap();
        settle().await;
        assert_eq!(log.entries(), ["first degradation handler starts"]);

        advance(secs(6)).await;
        assert_eq!(
            log.entries(),
            [
                "first degradation handler starts",
                "first degradation handler ends",
                "second degradation handler",
                "recovery handler",
            ]
        );
    })
    .await;
}

async fn panics_while_running() {
    panic!("handler panicked while running")
}

#[actix::test]
async fn a_panicking_failing_or_hung_handler_harms_nothing() {
    tokio::time::pause();
    within(async {
        let vibezen = VibezenIntegration::new(WorkflowConfig {
            default_config: touchy(),
            handler_timeout: secs(10),
            ..Default::default()
        })
        .unwrap();
        let log = Log::default();

        vibezen
            .register_degradation_handler("ai", || -> std::future::Ready<()> {
                panic!("handler panicked before returning its future")
            })
            .unwrap();
        vibezen
            .register_degradation_handler("ai", panics_while_running)
            .unwrap();
        vibezen
            .register_degradation_handler("ai", || async { Err::<(), _>("queue is full") })
            .unwrap();
        vibezen
            .register_degradation_handler("ai", std::future::pending::<()>)
            .unwrap();
        vibezen
            .register_degradation_handler("ai", log.handler("healthy handler ran"))
            .unwrap();
        vibezen
            .register_recovery_handler("ai", panics_while_running)
            .unwrap();
        vibezen
            .register_recovery_handler("ai", log.handler("recovery ran"))
            .unwrap();

        fail(&vibezen, "ai").await;
        settle().await;
        // The hung handler holds the line until its timeout cuts it off.
        assert!(log.entries().is_empty());
        advance(secs(10) + Duration::from_millis(1)).await;
        assert_eq!(log.entries(), ["healthy handler ran"]);

        // The circuit and the manager are unharmed and the next event still
        // reaches the handlers.
        vibezen
            .manager()
            .send(ResetCircuit("ai".into()))
            .await
            .unwrap()
            .unwrap();
        settle().await;
        assert_eq!(log.entries(), ["healthy handler ran", "recovery ran"]);
        succeed(&vibezen, "ai").await.unwrap();
        let stats = &vibezen.manager().send(AllStats).await.unwrap()[0];
        assert_eq!(stats.state, CircuitState::Closed);
        assert_eq!(
            stats.subscribers, 1,
            "the handler runner is still subscribed"
        );

        fail(&vibezen, "ai").await;
        advance(secs(11)).await;
        assert_eq!(
            log.entries(),
            ["healthy handler ran", "recovery ran", "healthy handler ran"]
        );
    })
    .await;
}

#[actix::test]
async fn a_refused_circuit_name_is_an_error_when_registering() {
    tokio::time::pause();
    within(async {
        let vibezen = integration();
        let err = vibezen
            .register_degradation_handler("", || async {})
            .unwrap_err();
        assert_eq!(err.field(), "name");
        let err = vibezen
            .register_recovery_handler("tab\there", || async {})
            .unwrap_err();
        assert!(err.to_string().contains(r"tab\there"), "{err}");
    })
    .await;
}

//! The health score: 1.0, 0.0 and in between, with critical circuits
//! weighing more.

use actix::prelude::*;
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::health::{CRITICAL_WEIGHT, HealthSnapshot, circuit_score};
use vibezen_recovery::manager::{CircuitBreakerManager, GetBreaker, GetHealth};
use vibezen_recovery::state::CircuitState;

use crate::support::*;

fn critical() -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        critical: true,
        ..touchy()
    }
}

async fn create(manager: &Addr<CircuitBreakerManager>, name: &str, config: CircuitBreakerConfig) {
    manager
        .send(GetBreaker::with_config(name, config))
        .await
        .unwrap()
        .unwrap();
}

async fn health(manager: &Addr<CircuitBreakerManager>) -> HealthSnapshot {
    manager.send(GetHealth).await.unwrap()
}

#[actix::test]
async fn no_circuits_is_full_health() {
    tokio::time::pause();
    within(async {
        let health = health(&manager(touchy())).await;
        assert_eq!(health.health_score, 1.0);
        assert!(
            health.circuits.is_empty() && health.open.is_empty() && health.half_open.is_empty()
        );
    })
    .await;
}

#[actix::test]
async fn every_circuit_closed_and_healthy_is_full_health() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        create(&manager, "ai", critical()).await;
        for name in ["ai", "cache", "search"] {
            for _ in 0..5 {
                succeed(&manager, name).await.unwrap();
            }
        }
        let health = health(&manager).await;
        assert_eq!(health.health_score, 1.0);
        assert_eq!(health.circuits.len(), 3);
        assert!(
            health
                .circuits
                .iter()
                .all(|c| c.score == 1.0 && c.state == CircuitState::Closed)
        );
        assert!(health.circuits[0].critical && !health.circuits[1].critical);
    })
    .await;
}

#[actix::test]
async fn every_circuit_open_is_zero_health() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        create(&manager, "ai", critical()).await;
        for name in ["ai", "cache", "search"] {
            fail(&manager, name).await.unwrap_err();
        }
        let health = health(&manager).await;
        assert_eq!(health.health_score, 0.0);
        assert_eq!(health.open, ["ai", "cache", "search"]);
        assert!(health.half_open.is_empty());
    })
    .await;
}

#[actix::test]
async fn a_critical_circuit_down_costs_more_than_an_optional_one() {
    tokio::time::pause();
    within(async {
        // The critical one open, the optional one closed: (3 x 0 + 1 x 1) / 4.
        let manager_a = manager(touchy());
        create(&manager_a, "ai", critical()).await;
        succeed(&manager_a, "cache").await.unwrap();
        fail(&manager_a, "ai").await.unwrap_err();
        let critical_down = health(&manager_a).await;
        assert_eq!(critical_down.health_score, 1.0 / (CRITICAL_WEIGHT + 1.0));
        assert_eq!(critical_down.open, ["ai"]);

        // The optional one open, the critical one closed: (3 x 1 + 1 x 0) / 4.
        let manager_b = manager(touchy());
        create(&manager_b, "ai", critical()).await;
        succeed(&manager_b, "ai").await.unwrap();
        fail(&manager_b, "cache").await.unwrap_err();
        let optional_down = health(&manager_b).await;
        assert_eq!(
            optional_down.health_score,
            CRITICAL_WEIGHT / (CRITICAL_WEIGHT + 1.0)
        );
        assert!(critical_down.health_score < optional_down.health_score);
        assert!(optional_down.health_score > 0.0 && optional_down.health_score < 1.0);
    })
    .await;
}

#[actix::test]
async fn half_open_counts_half_and_the_failure_rate_lowers_a_closed_circuit() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        fail(&manager, "probing").await.unwrap_err();
        advance(secs(60)).await;

        // Closed, with 3 failures in its last 10 calls: a rate of 0.3.
        let rated = CircuitBreakerConfig {
            failure_threshold: 100,
            min_calls: 10,
            ..Default::default()
        };
        create(&manager, "rated", rated).await;
        for n in 0..10 {
            if n % 3 == 0 && n > 0 {
                fail(&manager, "rated").await.unwrap_err();
            } else {
                succeed(&manager, "rated").await.unwrap();
            }
        }

        let health = health(&manager).await;
        assert_eq!(health.half_open, ["probing"]);
        let probing = &health.circuits[0];
        assert_eq!((probing.name.as_str(), probing.score), ("probing", 0.5));
        let rated = &health.circuits[1];
        assert_eq!(rated.failure_rate, Some(0.3));
        assert!((rated.score - 0.7).abs() < 1e-9, "{}", rated.score);
        assert!(
            (health.health_score - 0.6).abs() < 1e-9,
            "{}",
            health.health_score
        );
    })
    .await;
}

#[actix::test]
async fn a_circuit_never_called_is_no_evidence_of_health() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        create(&manager, "ai", critical()).await;
        create(&manager, "search", touchy()).await;
        let idle = health(&manager).await;
        assert_eq!(idle.health_score, 1.0, "no called circuit");
        assert!(idle.circuits.iter().all(|c| c.calls == 0 && c.score == 1.0));

        // Counted as healthy, the idle critical circuit held this at 0.75.
        fail(&manager, "cache").await.unwrap_err();
        let cache_down = health(&manager).await;
        assert_eq!(cache_down.health_score, 0.0);
        let calls: Vec<_> = cache_down
            .circuits
            .iter()
            .map(|c| (c.name.as_str(), c.calls))
            .collect();
        assert_eq!(calls, [("ai", 0), ("cache", 1), ("search", 0)]);

        // Called once, it counts: (3 x 1 + 1 x 0) / 4.
        succeed(&manager, "ai").await.unwrap();
        assert_eq!(
            health(&manager).await.health_score,
            CRITICAL_WEIGHT / (CRITICAL_WEIGHT + 1.0)
        );
    })
    .await;
}

#[test]
fn a_circuit_score_stays_within_bounds() {
    for state in [
        CircuitState::Closed,
        CircuitState::HalfOpen,
        CircuitState::Open,
    ] {
        for rate in [
            None,
            Some(0.0),
            Some(0.5),
            Some(1.0),
            Some(-1.0),
            Some(2.0),
            Some(f64::NAN),
        ] {
            let score = circuit_score(state, rate);
            assert!((0.0..=1.0).contains(&score), "{state} {rate:?}: {score}");
        }
    }
    assert_eq!(circuit_score(CircuitState::Closed, Some(1.0)), 0.0);
    assert_eq!(circuit_score(CircuitState::Open, Some(0.0)), 0.0);
}

//! The health report, its recommendations, and whether the workflow should
//! go on.

use vibezen_recovery::circuit::CallError;
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::integration::{HealthReport, VibezenIntegration, WorkflowConfig};
use vibezen_recovery::manager::{GetBreaker, ResetCircuit};

use crate::support::*;

async fn create(vibezen: &VibezenIntegration, name: &str, config: CircuitBreakerConfig) {
    vibezen
        .manager()
        .send(GetBreaker::with_config(name, config))
        .await
        .unwrap()
        .unwrap();
}

async fn reset(vibezen: &VibezenIntegration, name: &str) {
    vibezen
        .manager()
        .send(ResetCircuit(name.into()))
        .await
        .unwrap()
        .unwrap();
}

/// The recommendations that name `circuit`.
fn about(report: &HealthReport, circuit: &str) -> Vec<String> {
    let tag = format!("`{circuit}`");
    report
        .recommendations
        .iter()
        .filter(|r| r.contains(&tag))
        .cloned()
        .collect()
}

#[track_caller]
fn assert_one(report: &HealthReport, circuit: &str, words: &[&str]) {
    let found = about(report, circuit);
    assert_eq!(found.len(), 1, "{circuit}: {:#?}", report.recommendations);
    for word in words {
        assert!(
            found[0].contains(word),
            "{circuit}: {word:?} missing from {:?}",
            found[0]
        );
    }
}

#[actix::test]
async fn a_healthy_system_needs_no_advice() {
    tokio::time::pause();
    within(async {
        let vibezen = integration();
        for _ in 0..30 {
            succeed(&vibezen, "search").await.unwrap();
        }
        let report = vibezen.get_health_report().await.unwrap();
        assert!(report.circuit_breaker_enabled);
        assert_eq!(report.health.health_score, 1.0);
        assert!(report.critical_services.is_empty());
        assert!(
            report.recommendations.is_empty(),
            "{:#?}",
            report.recommendations
        );
    })
    .await;
}

#[actix::test]
async fn recommendations_name_the_circuit_and_the_setting() {
    tokio::time::pause();
    within(async {
        let vibezen = integration();

        // Stuck open: three probes in a row failed.
        fail(&vibezen, "stuck").await;
        for _ in 0..3 {
            advance(secs(61)).await;
            fail(&vibezen, "stuck").await;
        }

        // Flapping: opened three times, closed in between.
        for _ in 0..3 {
            fail(&vibezen, "flappy").await;
            reset(&vibezen, "flappy").await;
        }

        // A failure rate near the threshold: 4 of the last 10 calls failed.
        let rated = CircuitBreakerConfig {
            failure_threshold: 100,
            ..Default::default()
        };
        create(&vibezen, "near", rated).await;
        for n in 0..10 {
            if n % 5 < 2 {
                fail(&vibezen, "near").await;
            } else {
                succeed(&vibezen, "near").await.unwrap();
            }
        }

        // Too tight: 30 good calls, then two failures in a row open it.
        create(
            &vibezen,
            "tight",
            CircuitBreakerConfig {
                failure_threshold: 2,
                ..Default::default()
            },
        )
        .await;
        for _ in 0..30 {
            succeed(&vibezen, "tight").await.unwrap();
        }
        fail(&vibezen, "tight").await;
        fail(&vibezen, "tight").await;

        // Too loose: half of 20 calls fail and it never opens.
        let loose = CircuitBreakerConfig {
            failure_threshold: 1_000,
            failure_rate_threshold: 1.0,
            ..Default::default()
        };
        create(&vibezen, "loose", loose).await;
        for n in 0..20 {
            if n % 2 == 0 {
                fail(&vibezen, "loose").await;
            } else {
                succeed(&vibezen, "loose").await.unwrap();
            }
        }

        // Cut off by its call timeout again and again.
        let impatient = CircuitBreakerConfig {
            failure_threshold: 100,
            call_timeout: Some(secs(1)),
            ..Default::default()
        };
        create(&vibezen, "slow", impatient).await;
        for _ in 0..5 {
            let err = vibezen
                .protected_call(
                    "slow",
                    async {
                        tokio::time::sleep(secs(2)).await;
                        Ok::<(), String>(())
                    },
                    None,
                )
                .await
                .unwrap_err();
            assert!(matches!(err, CallError::Timeout(_)), "{err:?}");
        }

        // Never called.
        create(&vibezen, "unused", touchy()).await;

        let report = vibezen.get_health_report().await.unwrap();
        assert_one(
            &report,
            "stuck",
            &[
                "stuck OPEN",
                "3 trial calls",
                "ResetCircuit",
                "`timeout` (60.0 s)",
            ],
        );
        assert_one(
            &report,
            "flappy",
            &[
                "flapping",
                "opened 3 times",
                "`success_threshold` (2)",
                "`timeout`",
            ],
        );
        assert_one(&report, "near", &["40%", "`failure_rate_threshold` (50%)"]);
        assert_one(
            &report,
            "tight",
            &["too tight", "`failure_threshold` (2)", "2 of its 32 calls"],
        );
        assert_one(
            &report,
            "loose",
            &[
                "too loose",
                "10 of its 20 calls",
                "`failure_threshold` (1000)",
                "`failure_rate_threshold` (100%)",
            ],
        );
        assert_one(
            &report,
            "slow",
            &["5 calls were cut off", "`call_timeout` (1.0 s)"],
        );
        assert_one(&report, "unused", &["no calls", "exact circuit name"]);
        assert_eq!(
            report.recommendations.len(),
            7,
            "{:#?}",
            report.recommendations
        );
    })
    .await;
}

#[actix::test]
async fn critical_services_lists_the_critical_circuits_that_are_down() {
    tokio::time::pause();
    within(async {
        let vibezen = integration();
        let critical = CircuitBreakerConfig {
            critical: true,
            ..touchy()
        };
        create(&vibezen, "ai", critical.clone()).await;
        create(&vibezen, "thinking", critical.clone()).await;
        create(&vibezen, "brain", critical).await;
        fail(&vibezen, "ai").await;
        fail(&vibezen, "thinking").await;
        fail(&vibezen, "cache").await;
        advance(secs(61)).await;
        fail(&vibezen, "ai").await;

        let report = vibezen.get_health_report().await.unwrap();
        // "ai" is OPEN again, "thinking" HALF_OPEN, "brain" closed, "cache" not critical.
        assert_eq!(report.critical_services, ["ai", "thinking"]);
        assert_eq!(report.health.open, ["ai"]);
        assert_eq!(report.health.half_open, ["cache", "thinking"]);
    })
    .await;
}

#[actix::test]
async fn a_critical_circuit_open_stops_the_workflow_whatever_the_score() {
    tokio::time::pause();
    within(async {
        let vibezen = integration();
        assert!(vibezen.should_continue_workflow().await, "no circuits yet");
        create(
            &vibezen,
            "ai",
            CircuitBreakerConfig {
                critical: true,
                ..touchy()
            },
        )
        .await;
        for n in 0..10 {
            succeed(&vibezen, &format!("service{n}")).await.unwrap();
        }
        assert!(vibezen.should_continue_workflow().await);

        fail(&vibezen, "ai").await;
        let health = vibezen.get_health().await.unwrap();
        assert!(health.health_score > 0.5, "{}", health.health_score);
        assert!(!vibezen.should_continue_workflow().await);

        // HALF_OPEN is not OPEN: the workflow may probe along.
        advance(secs(61)).await;
        assert!(vibezen.should_continue_workflow().await);
        fail(&vibezen, "ai").await;
        assert!(!vibezen.should_continue_workflow().await);
        reset(&vibezen, "ai").await;
        assert!(vibezen.should_continue_workflow().await);
    })
    .await;
}

#[actix::test]
async fn a_health_score_below_the_floor_stops_the_workflow() {
    tokio::time::pause();
    within(async {
        let vibezen = VibezenIntegration::new(WorkflowConfig {
            min_health_score: 0.6,
            default_config: touchy(),
            ..Default::default()
        })
        .unwrap();
        succeed(&vibezen, "search").await.unwrap();
        succeed(&vibezen, "cache").await.unwrap();
        fail(&vibezen, "cache").await;
        // One of two optional circuits open: 0.5, below the floor of 0.6.
        assert_eq!(vibezen.get_health().await.unwrap().health_score, 0.5);
        assert!(!vibezen.should_continue_workflow().await);

        succeed(&vibezen, "kg").await.unwrap();
        // Two of three closed: 0.67, above it.
        assert!(vibezen.should_continue_workflow().await);
    })
    .await;
}

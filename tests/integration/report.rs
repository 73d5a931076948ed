//! The health report, its recommendations, and whether the workflow should
//! go on.

use vibezen_recovery::circuit::CallError;
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::integration::{
    DEFAULT_BREAKERS, HealthReport, VibezenIntegration, WorkflowConfig,
};
use vibezen_recovery::manager::{
    DisableCircuit, ForceOpenCircuit, GetBreaker, ReleaseCircuit, ResetCircuit,
};
use vibezen_recovery::state::CircuitState;

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

        // Too tight: 30 good calls, then two failures in a row open it, and
        // its first probe finds the service up: a false alarm. First, so
        // waiting for its probe ages no other circuit.
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
        advance(secs(61)).await;
        succeed(&vibezen, "tight").await.unwrap();
        succeed(&vibezen, "tight").await.unwrap();

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

        // Never called: nothing to say about it.
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
            &[
                "opened once on 2 failures in a row",
                "first probe",
                "2 of its 34 calls (6%)",
                "too tight",
                "`failure_threshold` (2)",
            ],
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
            &[
                "5 calls were cut off",
                "`call_timeout` (1.0 s)",
                "all of its 5 failures",
            ],
        );
        assert!(about(&report, "unused").is_empty());
        assert_eq!(
            report.recommendations.len(),
            6,
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
        assert!(!vibezen.get_health_report().await.unwrap().should_continue);
        reset(&vibezen, "ai").await;
        assert!(vibezen.should_continue_workflow().await);
        assert!(vibezen.get_health_report().await.unwrap().should_continue);
    })
    .await;
}

/// `should_continue_workflow` and the report's `should_continue`, which
/// must agree.
async fn readiness(vibezen: &VibezenIntegration) -> bool {
    let report = vibezen.get_health_report().await.unwrap();
    let workflow = vibezen.should_continue_workflow().await;
    assert_eq!(report.should_continue, workflow, "{report:#?}");
    workflow
}

#[actix::test]
async fn readiness_stays_false_while_a_critical_circuit_probes() {
    tokio::time::pause();
    within(async {
        let vibezen = integration();
        // Two trial successes close it; one trial in flight at a time.
        let ai = CircuitBreakerConfig {
            critical: true,
            half_open_max_calls: Some(1),
            ..touchy()
        };
        create(&vibezen, "ai", ai).await;
        for _ in 0..10 {
            succeed(&vibezen, "search").await.unwrap();
        }
        succeed(&vibezen, "ai").await.unwrap();
        assert!(readiness(&vibezen).await);

        fail(&vibezen, "ai").await;
        assert!(!readiness(&vibezen).await, "OPEN");

        // Probing a service that is still down: ready for none of it.
        advance(secs(61)).await;
        assert_eq!(vibezen.get_health().await.unwrap().half_open, ["ai"]);
        assert!(!readiness(&vibezen).await, "HALF_OPEN, before the probe");
        fail(&vibezen, "ai").await;
        assert!(
            !readiness(&vibezen).await,
            "OPEN again after a failed probe"
        );

        // The service is back: one good trial is not yet enough to close.
        advance(secs(61)).await;
        succeed(&vibezen, "ai").await.unwrap();
        assert_eq!(vibezen.get_health().await.unwrap().half_open, ["ai"]);
        assert!(!readiness(&vibezen).await, "HALF_OPEN, one trial in");
        succeed(&vibezen, "ai").await.unwrap();
        assert!(vibezen.get_health().await.unwrap().half_open.is_empty());
        assert!(readiness(&vibezen).await, "CLOSED again");
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
        assert!(!readiness(&vibezen).await);

        succeed(&vibezen, "kg").await.unwrap();
        // Two of three closed: 0.67, above it.
        assert!(readiness(&vibezen).await);
    })
    .await;
}

#[actix::test]
async fn idle_preset_circuits_add_no_advice_and_do_not_pad_the_score() {
    tokio::time::pause();
    within(async {
        let vibezen = VibezenIntegration::new(WorkflowConfig::default()).unwrap();
        vibezen.setup_default_breakers().await.unwrap();
        let report = vibezen.get_health_report().await.unwrap();
        assert!(
            report.recommendations.is_empty(),
            "{:#?}",
            report.recommendations
        );
        assert_eq!(report.health.circuits.len(), DEFAULT_BREAKERS.len());
        assert!(report.health.circuits.iter().all(|c| c.calls == 0));
        assert_eq!(report.health.health_score, 1.0, "no called circuit");
        assert!(report.should_continue);

        // The only service in use goes down (CACHE_SERVICE trips on 3
        // failures). Counted as healthy, the five idle circuits held the
        // score at 11/12 and the workflow going.
        for _ in 0..3 {
            fail(&vibezen, "cache").await;
        }
        let report = vibezen.get_health_report().await.unwrap();
        assert_eq!(report.health.open, ["cache"]);
        assert_eq!(report.health.health_score, 0.0);
        assert!(!report.should_continue);
        assert!(
            report.recommendations.is_empty(),
            "{:#?}",
            report.recommendations
        );

        // A second service in use, healthy: the mean of the two.
        succeed(&vibezen, "search").await.unwrap();
        assert_eq!(vibezen.get_health().await.unwrap().health_score, 0.5);
        assert!(readiness(&vibezen).await, "0.5 is the default floor");
    })
    .await;
}

/// A circuit opened on 3 failures in a row after `successes` good calls,
/// whose first `failed_probes` probes failed; OPEN after the last of them.
async fn outage(vibezen: &VibezenIntegration, name: &str, successes: usize, failed_probes: usize) {
    create(
        vibezen,
        name,
        CircuitBreakerConfig {
            failure_threshold: 3,
            ..Default::default()
        },
    )
    .await;
    for _ in 0..successes {
        succeed(vibezen, name).await.unwrap();
    }
    for _ in 0..3 {
        fail(vibezen, name).await;
    }
    for _ in 0..failed_probes {
        advance(secs(61)).await;
        fail(vibezen, name).await;
    }
}

#[actix::test]
async fn a_real_outage_is_not_called_a_false_alarm() {
    tokio::time::pause();
    within(async {
        let vibezen = integration();
        // 100 successes, 3 failures, 2 failed probes, still OPEN: only 5 of
        // 105 calls failed, which the rule once read as a false alarm.
        outage(&vibezen, "ai", 100, 2).await;
        let report = vibezen.get_health_report().await.unwrap();
        assert_eq!(report.health.open, ["ai"]);
        assert!(about(&report, "ai").is_empty(), "{report:#?}");

        // The service comes back and the circuit closes: its probes failed,
        // so the alarm was true, and raising the threshold is still wrong.
        advance(secs(61)).await;
        succeed(&vibezen, "ai").await.unwrap();
        succeed(&vibezen, "ai").await.unwrap();
        let report = vibezen.get_health_report().await.unwrap();
        assert!(report.health.open.is_empty() && report.health.half_open.is_empty());
        assert!(about(&report, "ai").is_empty(), "{report:#?}");

        // Closed again, a blip opens it and the first probe finds the
        // service up: that one was a false alarm, and only that one counts.
        for _ in 0..3 {
            fail(&vibezen, "ai").await;
        }
        advance(secs(61)).await;
        succeed(&vibezen, "ai").await.unwrap();
        succeed(&vibezen, "ai").await.unwrap();
        let report = vibezen.get_health_report().await.unwrap();
        assert_one(
            &report,
            "ai",
            &["opened once on 3 failures in a row", "8 of its 112 calls"],
        );
    })
    .await;
}

#[actix::test]
async fn a_small_failure_share_does_not_read_as_zero_percent() {
    tokio::time::pause();
    within(async {
        let vibezen = integration();
        // 2215 good calls, 8 failures in a row, and a probe that closes it
        // again: "8 of its 2225 calls" once read "(0%)".
        create(
            &vibezen,
            "search",
            CircuitBreakerConfig {
                failure_threshold: 8,
                ..Default::default()
            },
        )
        .await;
        for _ in 0..2215 {
            succeed(&vibezen, "search").await.unwrap();
        }
        for _ in 0..8 {
            fail(&vibezen, "search").await;
        }
        advance(secs(61)).await;
        succeed(&vibezen, "search").await.unwrap();
        succeed(&vibezen, "search").await.unwrap();
        let report = vibezen.get_health_report().await.unwrap();
        assert_one(&report, "search", &["8 of its 2225 calls (0.4%)"]);
    })
    .await;
}

#[actix::test]
async fn timeouts_that_are_half_the_failures_are_not_called_most() {
    tokio::time::pause();
    within(async {
        let vibezen = integration();
        let impatient = CircuitBreakerConfig {
            failure_threshold: 100,
            call_timeout: Some(secs(1)),
            ..Default::default()
        };
        create(&vibezen, "slow", impatient).await;
        for _ in 0..5 {
            fail(&vibezen, "slow").await;
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
        let report = vibezen.get_health_report().await.unwrap();
        assert_one(
            &report,
            "slow",
            &["5 calls were cut off", "half of its 10 failures"],
        );
        assert!(!about(&report, "slow")[0].contains("most"));
    })
    .await;
}

/// Issue 9: a critical circuit an operator forced open is down (readiness
/// false, score 0, listed, advice naming who may release it); one an
/// operator disabled is not down, scores 1 however its calls fail, and gets
/// only the operator's finding, not a "too loose" one. Released, both are
/// CLOSED and the advice is gone.
#[actix::test]
async fn the_report_names_the_operator_states_and_who_may_release_them() {
    tokio::time::pause();
    within(async {
        let vibezen = integration();
        let critical = CircuitBreakerConfig {
            critical: true,
            ..touchy()
        };
        create(&vibezen, "ai", critical.clone()).await;
        create(&vibezen, "brain", critical).await;
        succeed(&vibezen, "ai").await.unwrap();
        let manager = vibezen.manager();
        manager
            .send(ForceOpenCircuit("ai".into()))
            .await
            .unwrap()
            .unwrap();
        manager
            .send(DisableCircuit("brain".into()))
            .await
            .unwrap()
            .unwrap();
        for _ in 0..25 {
            fail(&vibezen, "brain").await;
        }

        let report = vibezen.get_health_report().await.unwrap();
        assert!(!readiness(&vibezen).await, "a critical FORCED_OPEN is down");
        assert_eq!(report.critical_services, ["ai"]);
        assert_eq!(report.health.forced_open, ["ai"]);
        assert_eq!(report.health.disabled, ["brain"]);
        let score = |name: &str| {
            let circuit = report
                .health
                .circuits
                .iter()
                .find(|c| c.name == name)
                .unwrap();
            (circuit.state, circuit.score)
        };
        assert_eq!(score("ai"), (CircuitState::ForcedOpen, 0.0));
        assert_eq!(score("brain"), (CircuitState::Disabled, 1.0));
        assert_one(
            &report,
            "ai",
            &[
                "FORCED_OPEN by an operator since",
                "release it with ReleaseCircuit",
            ],
        );
        assert_one(
            &report,
            "brain",
            &["DISABLED by an operator", "ReleaseCircuit"],
        );

        manager
            .send(ReleaseCircuit("ai".into()))
            .await
            .unwrap()
            .unwrap();
        manager
            .send(ReleaseCircuit("brain".into()))
            .await
            .unwrap()
            .unwrap();
        assert!(readiness(&vibezen).await);
        let report = vibezen.get_health_report().await.unwrap();
        assert!(
            about(&report, "ai").is_empty(),
            "{:#?}",
            report.recommendations
        );
        assert!(report.health.forced_open.is_empty() && report.health.disabled.is_empty());
    })
    .await;
}

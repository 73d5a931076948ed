//! The permit path: acquire, work on the caller's task, report.

use std::rc::Rc;

use vibezen_recovery::circuit::{Acquire, Stats};
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::outcome::Outcome;
use vibezen_recovery::rules::RECLAIM_GRACE;
use vibezen_recovery::state::CircuitState;

use crate::support::*;

#[actix::test]
async fn permits_report_outcomes_from_work_that_is_not_send() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 2,
            ..Default::default()
        });
        let permit = circuit.send(Acquire).await.unwrap().unwrap();
        let local = Rc::new("not Send");
        tokio::time::sleep(secs(1)).await;
        assert_eq!(*local, "not Send");
        permit.success();
        for _ in 0..2 {
            let permit = circuit.send(Acquire).await.unwrap().unwrap();
            permit.record(&Err::<(), _>("down"));
        }
        settle().await;
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(stats.state, CircuitState::Open);
        assert_eq!(
            (
                stats.totals[Outcome::Success],
                stats.totals[Outcome::Failure]
            ),
            (1, 2)
        );
        let rejected = circuit.send(Acquire).await.unwrap().unwrap_err();
        assert_eq!(rejected.state(), CircuitState::Open);
    })
    .await;
}

#[actix::test]
async fn a_dropped_permit_is_cancelled_and_frees_its_trial_slot() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 1,
            half_open_max_calls: Some(1),
            success_threshold: 1,
            ..Default::default()
        });
        fail(&circuit).await.unwrap_err();
        advance(secs(60)).await;
        let trial = circuit.send(Acquire).await.unwrap().unwrap();
        assert!(trial.is_trial());
        assert_eq!(
            circuit.send(Acquire).await.unwrap().unwrap_err().state(),
            CircuitState::HalfOpen
        );
        drop(trial);
        settle().await;
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(
            (stats.state, stats.totals[Outcome::Cancelled]),
            (CircuitState::HalfOpen, 1)
        );
        let second = circuit.send(Acquire).await.unwrap().unwrap();
        second.success();
        settle().await;
        assert_eq!(
            circuit.send(Stats).await.unwrap().state,
            CircuitState::Closed
        );
    })
    .await;
}

#[actix::test]
async fn a_report_after_call_timeout_counts_as_a_timeout() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            call_timeout: Some(secs(1)),
            ..Default::default()
        });
        let permit = circuit.send(Acquire).await.unwrap().unwrap();
        tokio::time::sleep(secs(2)).await;
        permit.success();
        settle().await;
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(
            (
                stats.totals[Outcome::Success],
                stats.totals[Outcome::Timeout]
            ),
            (0, 1)
        );
    })
    .await;
}

#[actix::test]
async fn an_unreported_trial_permit_is_reclaimed_a_grace_after_its_deadline() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 1,
            half_open_max_calls: Some(1),
            call_timeout: Some(secs(5)),
            ..Default::default()
        });
        fail(&circuit).await.unwrap_err();
        advance(secs(60)).await;
        let hung = circuit.send(Acquire).await.unwrap().unwrap();
        // At its deadline the trial still holds its slot, for a report
        // already on its way; `RECLAIM_GRACE` later it loses it.
        advance(secs(5)).await;
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(
            (stats.state, stats.totals[Outcome::Timeout]),
            (CircuitState::HalfOpen, 0)
        );
        advance(RECLAIM_GRACE).await;
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(
            (stats.state, stats.totals[Outcome::Timeout]),
            (CircuitState::Open, 1)
        );
        // Late: the permit counts it a timeout, in place of the reclaim's.
        assert_eq!(hung.success(), Outcome::Timeout);
        settle().await;
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(
            (
                stats.totals[Outcome::Timeout],
                stats.totals[Outcome::Success],
                stats.in_flight
            ),
            (1, 0, 0)
        );
    })
    .await;
}

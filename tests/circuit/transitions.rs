//! Opening, probing, closing and resetting, through the actor.

use tokio::time::Instant;
use vibezen_recovery::circuit::{CallError, CircuitBreakerExt, ProtectedCall, Reset, Stats};
use vibezen_recovery::config::{CircuitBreakerConfig, WindowConfig};
use vibezen_recovery::outcome::Outcome;
use vibezen_recovery::state::CircuitState;
use vibezen_recovery::transition::TransitionReason;

use crate::support::*;

#[actix::test]
async fn opens_after_failure_threshold_consecutive_failures() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 3,
            ..Default::default()
        });
        for _ in 0..2 {
            assert!(matches!(
                fail(&circuit).await,
                Err(CallError::Failed("boom"))
            ));
        }
        succeed(&circuit).await.unwrap(); // clears the count
        for _ in 0..2 {
            fail(&circuit).await.unwrap_err();
        }
        assert_eq!(
            circuit.send(Stats).await.unwrap().state,
            CircuitState::Closed
        );
        fail(&circuit).await.unwrap_err();
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(stats.state, CircuitState::Open);
        assert_eq!(
            stats.state_changes.last().unwrap().reason,
            TransitionReason::ConsecutiveFailures { count: 3 }
        );
        assert!(succeed(&circuit).await.unwrap_err().is_rejected());
    })
    .await;
}

#[actix::test]
async fn opens_on_failure_rate_once_min_calls_are_in() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 100,
            failure_rate_threshold: 0.5,
            min_calls: 10,
            window: WindowConfig::Count { size: 10 },
            ..Default::default()
        });
        // Alternate: 5 failures in 9 calls is over 50%, but below min_calls.
        for i in 0..9 {
            if i % 2 == 0 {
                fail(&circuit).await.unwrap_err();
            } else {
                succeed(&circuit).await.unwrap();
            }
        }
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(
            (stats.state, stats.failure_rate),
            (CircuitState::Closed, None)
        );
        // The tenth call is a success; 5 of 10 failed, exactly the threshold.
        succeed(&circuit).await.unwrap();
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(stats.state, CircuitState::Open);
        assert!(matches!(
            stats.state_changes[0].reason,
            TransitionReason::FailureRate { rate, calls: 10 } if rate == 0.5
        ));
    })
    .await;
}

#[actix::test]
async fn turns_half_open_on_its_own_timer_then_closes_after_success_threshold() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 1,
            ..Default::default()
        });
        let mut events = record_events(&circuit).await;
        fail(&circuit).await.unwrap_err();
        let opened = next_event(&mut events).await;
        assert_eq!(
            (opened.from, opened.to),
            (CircuitState::Closed, CircuitState::Open)
        );
        let opened_at = Instant::now();

        // No call and no message: only the circuit's own timer can do this.
        let probing = next_event(&mut events).await;
        assert_eq!(
            (probing.from, probing.to),
            (CircuitState::Open, CircuitState::HalfOpen)
        );
        assert_eq!(probing.reason, TransitionReason::OpenTimeoutElapsed);
        assert_elapsed(Instant::now() - opened_at, secs(60));

        succeed(&circuit).await.unwrap();
        assert_eq!(
            circuit.send(Stats).await.unwrap().state,
            CircuitState::HalfOpen
        );
        succeed(&circuit).await.unwrap();
        let closed = next_event(&mut events).await;
        assert_eq!(
            (closed.from, closed.to),
            (CircuitState::HalfOpen, CircuitState::Closed)
        );
        assert_eq!(
            closed.reason,
            TransitionReason::TrialsSucceeded { successes: 2 }
        );
    })
    .await;
}

#[actix::test]
async fn a_failed_trial_reopens_and_restarts_the_timeout() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 1,
            ..Default::default()
        });
        fail(&circuit).await.unwrap_err();
        advance(secs(60)).await;
        assert_eq!(
            circuit.send(Stats).await.unwrap().state,
            CircuitState::HalfOpen
        );
        fail(&circuit).await.unwrap_err();
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(stats.state, CircuitState::Open);
        assert!(matches!(
            stats.state_changes.last().unwrap().reason,
            TransitionReason::TrialFailed { .. }
        ));
        advance(secs(59)).await;
        let rejected = succeed(&circuit).await.unwrap_err();
        let CallError::Open(open) = rejected else {
            panic!("expected a rejection")
        };
        assert_eq!(open.retry_after(), Some(secs(1)));
        advance(secs(1)).await;
        succeed(&circuit).await.unwrap();
    })
    .await;
}

#[actix::test]
async fn reset_closes_an_open_circuit_and_starts_a_new_generation() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 2,
            ..Default::default()
        });
        fail(&circuit).await.unwrap_err();
        circuit.send(Reset).await.unwrap();
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(
            (stats.state, stats.generation, stats.consecutive_failures),
            (CircuitState::Closed, 1, 0)
        );
        assert!(
            stats.state_changes.is_empty(),
            "a reset of a CLOSED circuit is no transition"
        );

        fail(&circuit).await.unwrap_err();
        fail(&circuit).await.unwrap_err();
        assert_eq!(circuit.send(Stats).await.unwrap().state, CircuitState::Open);
        circuit.send(Reset).await.unwrap();
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(stats.state, CircuitState::Closed);
        assert_eq!(
            stats.state_changes.last().unwrap().reason,
            TransitionReason::ManualReset
        );
        assert_eq!(stats.totals[Outcome::Failure], 3, "totals survive a reset");
        succeed(&circuit).await.unwrap();
        // The OPEN timer of the old generation must not fire into the new one.
        advance(secs(120)).await;
        assert_eq!(
            circuit.send(Stats).await.unwrap().state,
            CircuitState::Closed
        );
    })
    .await;
}

#[actix::test]
async fn a_call_from_before_a_reset_does_not_drive_the_new_generation() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 1,
            ..Default::default()
        });
        let slow_failure = {
            let circuit = circuit.clone();
            actix::spawn(async move {
                circuit
                    .call(async {
                        tokio::time::sleep(secs(5)).await;
                        Err::<(), _>("late")
                    })
                    .await
            })
        };
        settle().await;
        circuit.send(Reset).await.unwrap();
        assert!(slow_failure.await.unwrap().is_err());
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(
            stats.state,
            CircuitState::Closed,
            "a stale failure must not open the circuit"
        );
        assert_eq!(stats.totals[Outcome::Failure], 1, "but it is counted");
    })
    .await;
}

#[actix::test]
async fn inactivity_forgets_old_failures() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 3,
            ..Default::default()
        });
        fail(&circuit).await.unwrap_err();
        fail(&circuit).await.unwrap_err();
        advance(secs(120)).await;
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!((stats.consecutive_failures, stats.window_calls), (0, 0));
        fail(&circuit).await.unwrap_err();
        assert_eq!(
            circuit.send(Stats).await.unwrap().state,
            CircuitState::Closed
        );
    })
    .await;
}

#[actix::test]
async fn an_idle_half_open_circuit_closes_after_reset_timeout() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 1,
            ..Default::default()
        });
        let mut events = record_events(&circuit).await;
        fail(&circuit).await.unwrap_err();
        assert_eq!(next_event(&mut events).await.to, CircuitState::Open);
        assert_eq!(next_event(&mut events).await.to, CircuitState::HalfOpen);
        let half_open_at = Instant::now();
        let closed = next_event(&mut events).await;
        assert_eq!(
            (closed.to, closed.reason),
            (CircuitState::Closed, TransitionReason::Inactivity)
        );
        assert_elapsed(Instant::now() - half_open_at, secs(120));
    })
    .await;
}

#[actix::test]
async fn a_flood_of_calls_does_not_hold_an_open_circuit_past_its_timeout() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 1,
            ..Default::default()
        });
        fail(&circuit).await.unwrap_err();
        // Queue a flood while OPEN, then let the timeout pass before the
        // circuit runs again: actix serves the mailbox before its timers, so
        // the calls themselves must find the timeout over.
        let calls: Vec<_> = (0..1_000)
            .map(|_| circuit.send(ProtectedCall::new(async { Ok::<(), ()>(()) })))
            .collect();
        tokio::time::advance(secs(60)).await;
        let results = futures_util::future::join_all(calls).await;
        let admitted = results
            .iter()
            .filter(|r| r.as_ref().unwrap().is_ok())
            .count();
        assert!(
            admitted >= 2,
            "the timeout elapsed; trial calls must be admitted (got {admitted})"
        );
    })
    .await;
}

//! Protected calls: concurrency, rejection, timeouts, panics, classifiers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use actix::prelude::*;
use tokio::time::{Instant, sleep};
use vibezen_recovery::circuit::{
    CallError, CircuitBreaker, CircuitBreakerExt, CircuitBreakerOpenError, ProtectedCall, Stats,
    Stop,
};
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::outcome::{Classification, Outcome};
use vibezen_recovery::state::CircuitState;
use vibezen_recovery::transition::TransitionReason;

use crate::support::*;

#[actix::test]
async fn an_open_circuit_never_polls_the_future() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 1,
            ..Default::default()
        });
        fail(&circuit).await.unwrap_err();
        let polled = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&polled);
        let result = circuit
            .call(async move {
                flag.store(true, Ordering::SeqCst);
                Ok::<(), ()>(())
            })
            .await;
        let CallError::Open(open) = result.unwrap_err() else {
            panic!("expected a rejection")
        };
        assert_eq!((open.circuit(), open.state()), ("test", CircuitState::Open));
        assert_eq!(open.retry_after(), Some(secs(60)));
        assert!(!polled.load(Ordering::SeqCst));
        assert_eq!(circuit.send(Stats).await.unwrap().totals.rejections, 1);
    })
    .await;
}

#[actix::test]
async fn a_thousand_slow_calls_run_at_once_not_one_after_another() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig::default());
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let began = Instant::now();
        let calls = (0..1_000).map(|i| {
            let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
            circuit.call(async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                sleep(std::time::Duration::from_millis(100)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, ()>(i)
            })
        });
        let results = futures_util::future::join_all(calls).await;
        assert_elapsed(
            Instant::now() - began,
            std::time::Duration::from_millis(100),
        );
        assert_eq!(peak.load(Ordering::SeqCst), 1_000);
        assert!(
            results
                .into_iter()
                .enumerate()
                .all(|(i, r)| r.ok() == Some(i))
        );
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(
            (
                stats.totals.calls,
                stats.totals[Outcome::Success],
                stats.in_flight
            ),
            (1_000, 1_000, 0)
        );
    })
    .await;
}

#[actix::test]
async fn half_open_admits_at_most_max_calls_under_many_callers() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 1,
            success_threshold: 5,
            half_open_max_calls: Some(3),
            ..Default::default()
        });
        fail(&circuit).await.unwrap_err();
        advance(secs(60)).await;
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let calls = (0..200).map(|_| {
            let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
            circuit.call(async move {
                peak.fetch_max(running.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                sleep(secs(1)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<(), ()>(())
            })
        });
        let results = futures_util::future::join_all(calls).await;
        let admitted = results.iter().filter(|r| r.is_ok()).count();
        let half_open_rejections = results
            .iter()
            .filter(|r| matches!(r, Err(CallError::Open(open)) if open.state() == CircuitState::HalfOpen && open.retry_at().is_none()))
            .count();
        assert_eq!((admitted, half_open_rejections), (3, 197));
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    })
    .await;
}

#[actix::test]
async fn a_panicking_call_is_a_failure_and_the_circuit_lives_on() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 2,
            ..Default::default()
        });
        let result = circuit
            .call(async {
                if true {
                    panic!("model returned garbage")
                }
                Ok::<(), ()>(())
            })
            .await;
        assert!(matches!(result, Err(CallError::Panicked(ref m)) if m == "model returned garbage"));
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(
            (stats.totals[Outcome::Panic], stats.consecutive_failures),
            (1, 1)
        );
        let result = circuit
            .call(async { Err::<(), String>(format!("still {}", "down")) })
            .await;
        assert!(matches!(result, Err(CallError::Failed(ref e)) if e == "still down"));
        assert_eq!(circuit.send(Stats).await.unwrap().state, CircuitState::Open);
    })
    .await;
}

#[actix::test]
async fn a_call_past_call_timeout_is_cut_off_and_counted() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            call_timeout: Some(secs(2)),
            failure_threshold: 1,
            ..Default::default()
        });
        let finished = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&finished);
        let began = Instant::now();
        let result = circuit
            .call(async move {
                sleep(secs(10)).await;
                flag.store(true, Ordering::SeqCst);
                Ok::<(), ()>(())
            })
            .await;
        assert!(matches!(result, Err(CallError::Timeout(limit)) if limit == secs(2)));
        assert_elapsed(Instant::now() - began, secs(2));
        advance(secs(20)).await;
        assert!(
            !finished.load(Ordering::SeqCst),
            "a cut-off call is dropped, not left running"
        );
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(stats.totals[Outcome::Timeout], 1);
        assert!(matches!(
            stats.state_changes[0].reason,
            TransitionReason::ConsecutiveFailures { count: 1 }
        ));
    })
    .await;
}

#[actix::test]
async fn a_hung_trial_call_loses_its_slot_and_reopens_the_circuit() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 1,
            half_open_max_calls: Some(1),
            ..Default::default()
        });
        let mut events = record_events(&circuit).await;
        fail(&circuit).await.unwrap_err();
        next_event(&mut events).await; // OPEN
        next_event(&mut events).await; // HALF_OPEN, 60 s later
        let admitted_at = Instant::now();
        let hung = circuit.call(std::future::pending::<Result<(), ()>>());
        let (result, reopened) = tokio::join!(hung, next_event(&mut events));
        // No call timeout: the trial's deadline is the OPEN timeout.
        assert!(matches!(result, Err(CallError::Timeout(limit)) if limit == secs(60)));
        assert_elapsed(Instant::now() - admitted_at, secs(60));
        // The call's own guard cut it off and reported the timeout (the
        // machine never reclaims a protected call's slot): a failed trial.
        assert_eq!(
            (reopened.from, reopened.to, reopened.reason),
            (
                CircuitState::HalfOpen,
                CircuitState::Open,
                TransitionReason::TrialFailed {
                    outcome: Outcome::Timeout
                }
            )
        );
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!((stats.totals[Outcome::Timeout], stats.in_flight), (1, 0));
    })
    .await;
}

#[actix::test]
async fn a_classifier_decides_what_counts() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 1,
            ..Default::default()
        });
        let not_found =
            ProtectedCall::new(async { Err::<(), _>(404) }).classify(|result| match result {
                Err(404) => Classification::Ignored,
                other => Classification::of_result(other),
            });
        assert!(matches!(
            circuit.call_with(not_found).await,
            Err(CallError::Failed(404))
        ));
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(
            (
                stats.state,
                stats.totals[Outcome::Ignored],
                stats.window_calls
            ),
            (CircuitState::Closed, 1, 0)
        );

        let empty_answer =
            ProtectedCall::new(async { Ok::<_, ()>(String::new()) }).classify(|result| {
                if result.as_ref().is_ok_and(String::is_empty) {
                    Classification::Failure
                } else {
                    Classification::Success
                }
            });
        assert_eq!(circuit.call_with(empty_answer).await.unwrap(), "");
        assert_eq!(circuit.send(Stats).await.unwrap().state, CircuitState::Open);
    })
    .await;
}

#[actix::test]
async fn a_stopped_circuit_answers_unavailable_rather_than_hanging() {
    within(async {
        let arbiter = Arbiter::new();
        let circuit = CircuitBreaker::start_in_arbiter(&arbiter.handle(), |_| {
            CircuitBreaker::new("elsewhere", CircuitBreakerConfig::default()).unwrap()
        });
        assert_eq!(circuit.call(async { Ok::<_, ()>(1) }).await.unwrap(), 1);
        arbiter.stop();
        arbiter.join().unwrap();
        let result = circuit.call(async { Ok::<_, ()>(2) }).await;
        assert!(matches!(
            result,
            Err(CallError::Unavailable(MailboxError::Closed))
        ));
    })
    .await;
}

#[actix::test]
async fn an_invalid_config_or_name_is_refused_at_creation() {
    let err = CircuitBreaker::new(
        "db",
        CircuitBreakerConfig {
            success_threshold: 0,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.field(), "success_threshold");
    assert!(err.to_string().contains("success_threshold"));
    let err = CircuitBreaker::new("", CircuitBreakerConfig::default()).unwrap_err();
    assert_eq!(err.field(), "name");
}

#[actix::test]
async fn stop_drops_calls_in_flight_and_refuses_later_ones() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig::default());
        let in_flight = circuit.call(std::future::pending::<Result<(), ()>>());
        let stop = circuit.send(Stop);
        let (in_flight, stopped) = tokio::join!(in_flight, stop);
        stopped.unwrap();
        assert!(matches!(
            in_flight,
            Err(CallError::Unavailable(MailboxError::Closed))
        ));
        settle().await;
        assert!(!circuit.connected());
        assert!(matches!(
            succeed(&circuit).await,
            Err(CallError::Unavailable(_))
        ));
    })
    .await;
}

#[actix::test]
async fn a_call_error_is_an_error_for_any_displayable_service_error() {
    use std::error::Error;

    fn boxed<E: std::fmt::Debug + std::fmt::Display + Send + Sync + 'static>(
        err: CallError<E>,
    ) -> Box<dyn Error + Send + Sync> {
        err.into()
    }

    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 1,
            ..Default::default()
        });
        // A `String` is no `Error`, yet its `CallError` is one.
        let failed = circuit
            .call(async { Err::<(), _>("503".to_string()) })
            .await
            .unwrap_err();
        let failed = boxed(failed);
        assert_eq!(failed.to_string(), "protected call failed: 503");
        assert!(failed.source().is_none());

        // The open error is the source of a rejection.
        let open = boxed(succeed(&circuit).await.unwrap_err());
        let source = open
            .source()
            .expect("a rejection has its open error as source");
        assert!(source.is::<CircuitBreakerOpenError>());
    })
    .await;

    // The mailbox error is the source of an unavailable circuit.
    let unavailable = boxed(CallError::<String>::Unavailable(MailboxError::Closed));
    assert!(
        unavailable.to_string().contains("has stopped"),
        "{unavailable}"
    );
    let source = unavailable.source().expect("a mailbox error as source");
    assert!(source.is::<MailboxError>());

    // A service error that is an `Error` is still only in the message.
    let io = boxed(CallError::Failed(std::io::Error::other("disk on fire")));
    assert_eq!(io.to_string(), "protected call failed: disk on fire");
    assert!(io.source().is_none());
    for no_source in [
        CallError::<String>::Timeout(secs(2)),
        CallError::Panicked("boom".to_owned()),
    ] {
        assert!(boxed(no_source).source().is_none());
    }
}

//! Regression tests for the fast-path races and claims of issue 15 that the
//! rulebook redesign settled: each failed on the code before it.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use vibezen_recovery::circuit::{CallError, GetHandle, Stats};
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::outcome::Outcome;
use vibezen_recovery::rules::Refusal;
use vibezen_recovery::state::CircuitState;

use crate::support::*;
use crate::{fail_via, handle_of, succeed_via};

/// A HALF_OPEN circuit whose every trial slot is taken refuses a handle
/// call from the state it publishes: the call is answered on its first
/// poll, with no round trip to the actor (which would leave it pending).
#[actix::test]
async fn a_half_open_circuit_with_every_slot_taken_refuses_without_a_message() {
    tokio::time::pause();
    within(async {
        let (circuit, handle) = handle_of(CircuitBreakerConfig {
            failure_threshold: 1,
            half_open_max_calls: Some(1),
            ..Default::default()
        })
        .await;
        fail_via(&handle).await.unwrap_err();
        advance(secs(60)).await;
        let trial = actix::spawn({
            let handle = handle.clone();
            async move {
                handle
                    .call(async {
                        tokio::time::sleep(secs(1)).await;
                        Ok::<(), ()>(())
                    })
                    .await
            }
        });
        settle().await;
        assert_eq!(circuit.send(Stats).await.unwrap().in_flight, 1);
        let mut refused = pin!(handle.call(async { Ok::<(), ()>(()) }));
        match refused
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(Err(CallError::Open(open))) => {
                assert_eq!(open.refusal(), Refusal::TrialsTaken);
                assert_eq!(open.state(), CircuitState::HalfOpen);
            }
            Poll::Ready(other) => panic!("expected a refusal, got {other:?}"),
            Poll::Pending => panic!("the handle asked the actor instead of refusing at once"),
        }
        advance(secs(1)).await;
        trial.await.unwrap().unwrap();
    })
    .await;
}

/// Waits for a future on a plain thread: no tokio runtime, so no timer.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
            return output;
        }
        std::thread::park();
    }
}

/// A fast-path HALF_OPEN trial made on a plain thread (where no timer can
/// cut it off) that ends after its deadline is a timeout that reopens the
/// circuit, as it is on every other path; it used to close it.
#[actix::test]
async fn a_late_trial_on_a_thread_without_timers_reopens_the_circuit() {
    within(async {
        let config = CircuitBreakerConfig {
            failure_threshold: 1,
            success_threshold: 1,
            timeout: Duration::from_millis(50),
            call_timeout: Some(Duration::from_millis(20)),
            ..Default::default()
        };
        let circuit = start(config);
        let handle = circuit.send(GetHandle).await.unwrap();
        fail_via(&handle).await.unwrap_err();
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(handle.state(), CircuitState::HalfOpen);
        let trial = std::thread::spawn(move || {
            block_on(handle.call(async {
                std::thread::sleep(Duration::from_millis(60)); // well past 20 ms
                Ok::<(), ()>(())
            }))
        });
        let answer = actix_rt::task::spawn_blocking(move || trial.join())
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(answer, Err(CallError::Timeout(_))),
            "the caller saw {answer:?}"
        );
        settle().await;
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(stats.totals[Outcome::Timeout], 1, "{:?}", stats.totals);
        assert_eq!(stats.totals[Outcome::Success], 0, "{:?}", stats.totals);
        assert_eq!(stats.state, CircuitState::Open);
    })
    .await;
}

/// Race 4 of issue 15, settled as documented behaviour: tokio offers no
/// way to ask a runtime whether its timers are enabled, so inside one built
/// without them a call with a deadline panics as soon as it starts, with
/// tokio's own message naming the fix; the circuit counts the call as
/// cancelled, not as a panic of the work, and goes on. (Outside any
/// runtime there is nothing to ask, and the call runs to its end; see
/// above.)
#[actix::test]
async fn a_deadline_in_a_runtime_without_timers_fails_loudly_and_harms_nothing() {
    within(async {
        let circuit = start(CircuitBreakerConfig {
            call_timeout: Some(Duration::from_secs(1)),
            ..Default::default()
        });
        let handle = circuit.send(GetHandle).await.unwrap();
        let caller = handle.clone();
        let without_timers = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(caller.call(async { Ok::<(), ()>(()) }))
        });
        let panicked = actix_rt::task::spawn_blocking(move || without_timers.join())
            .await
            .unwrap()
            .unwrap_err();
        let message = panicked
            .downcast_ref::<&str>()
            .map(|m| m.to_string())
            .or_else(|| panicked.downcast_ref::<String>().cloned())
            .unwrap();
        assert!(message.contains("enable_time"), "{message}");
        settle().await;
        succeed_via(&handle).await.unwrap();
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(
            (
                stats.totals.calls,
                stats.totals[Outcome::Success],
                stats.in_flight
            ),
            (2, 1, 0),
            "{:?}",
            stats.totals
        );
    })
    .await;
}

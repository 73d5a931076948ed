//! An operator's states on every path (issue 9): FORCED_OPEN refuses every
//! call and DISABLED admits every call, from the moment the operator's
//! message is answered, whichever way the call comes.

use std::time::Duration;

use vibezen_recovery::circuit::{CallError, Disable, ForceOpen, Release, Stats};
use vibezen_recovery::classifier::OkIsSuccess;
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::manager::{
    DisableAll, DisableCircuit, ForceOpenCircuit, ReleaseAll, ReleaseCircuit,
};
use vibezen_recovery::rules::Refusal;
use vibezen_recovery::state::CircuitState;
use vibezen_recovery::transition::TransitionReason;

use crate::support::*;

fn config() -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        failure_threshold: 2,
        timeout: secs(30),
        call_timeout: Some(secs(1)),
        ..Default::default()
    }
}

/// The reasons of the circuit's history, oldest first.
async fn history(target: &Target) -> Vec<TransitionReason> {
    let stats = target.circuit.send(Stats).await.expect("circuit alive");
    stats
        .state_changes
        .iter()
        .map(|event| event.reason)
        .collect()
}

// Forced open by name through the manager: every call is refused with the
// operator's refusal (no retry time, the future never polled), however long
// it stays so, until it is released; then the rules apply from scratch.
on_every_path!(forced_open_refuses_every_call_until_released);

async fn forced_open_refuses_every_call_until_released(path: Path) {
    let target = Target::new(path, config()).await;
    assert_failed(
        path,
        target.run(now(Err("boom")), OkIsSuccess).await,
        "boom",
    );
    target
        .manager
        .send(ForceOpenCircuit(NAME.into()))
        .await
        .expect("manager alive")
        .expect("a known circuit");

    for _ in 0..2 {
        let (polled, future) = flagged(Ok(1));
        let answer = target.run(future, OkIsSuccess).await;
        assert!(!was_polled(&polled), "{path:?}: a refused call ran");
        let Err(CallError::Open(open)) = &answer else {
            panic!("{path:?}: expected a rejection, got {answer:?}");
        };
        assert_eq!(open.refusal(), Refusal::ForcedOpen, "{path:?}");
        assert_eq!(open.retry_at(), None, "{path:?}");
        assert_eq!(
            open.to_string(),
            "circuit `paths` was forced open by an operator; \
             calls are rejected until it is released"
        );
        // No timer moves it: well past the OPEN timeout.
        advance(secs(300)).await;
    }
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            state: CircuitState::ForcedOpen,
            failures: 1,
            rejections: 2,
            ..Counts::CLOSED
        },
    );

    target
        .manager
        .send(ReleaseCircuit(NAME.into()))
        .await
        .expect("manager alive")
        .expect("a known circuit");
    assert_ok(path, target.run(now(Ok(3)), OkIsSuccess).await, 3);
    // A fresh window and run: one failure is not two in a row.
    assert_failed(
        path,
        target.run(now(Err("boom")), OkIsSuccess).await,
        "boom",
    );
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            successes: 1,
            failures: 2,
            rejections: 2,
            consecutive_failures: 1,
            ..Counts::CLOSED
        },
    );
    assert_eq!(
        history(&target).await,
        [TransitionReason::ForcedOpen, TransitionReason::Released]
    );
}

// Disabled (the actor's own message): every call goes through and is
// counted, failures far past the threshold trip nothing, and a hung call is
// still cut off at `call_timeout` and counted as a timeout.
on_every_path!(disabled_admits_every_call_and_nothing_trips);

async fn disabled_admits_every_call_and_nothing_trips(path: Path) {
    let target = Target::new(path, config()).await;
    target.circuit.send(Disable).await.expect("circuit alive");
    for _ in 0..5 {
        assert_failed(
            path,
            target.run(now(Err("boom")), OkIsSuccess).await,
            "boom",
        );
    }
    assert_ok(path, target.run(now(Ok(2)), OkIsSuccess).await, 2);
    let answer = target.run(slow(secs(3), Ok(4)), OkIsSuccess).await;
    if path.cuts_off() {
        assert_timed_out(path, answer, secs(1));
    } else {
        assert_ok(path, answer, 4);
    }
    // No timer and no inactivity reset.
    advance(secs(3_600)).await;
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            state: CircuitState::Disabled,
            successes: 1,
            failures: 5,
            timeouts: 1,
            ..Counts::CLOSED
        },
    );

    target.circuit.send(Release).await.expect("circuit alive");
    for _ in 0..2 {
        assert_failed(
            path,
            target.run(now(Err("boom")), OkIsSuccess).await,
            "boom",
        );
    }
    assert_eq!(target.counts().await.state, CircuitState::Open, "{path:?}");
    assert_eq!(
        history(&target).await,
        [
            TransitionReason::Disabled,
            TransitionReason::Released,
            TransitionReason::ConsecutiveFailures { count: 2 },
        ]
    );
}

// A call running when the circuit is forced open ends, is counted, and
// moves nothing: its failure cannot open (or otherwise touch) a circuit in
// the operator's hands.
on_every_path!(a_call_in_flight_when_forced_open_is_counted_and_moves_nothing);

async fn a_call_in_flight_when_forced_open_is_counted_and_moves_nothing(path: Path) {
    let config = CircuitBreakerConfig {
        failure_threshold: 1,
        ..config()
    };
    let target = Target::new(path, config).await;
    let running = target.run(slow(Duration::from_millis(500), Err("boom")), OkIsSuccess);
    let operator = async {
        advance(Duration::from_millis(100)).await;
        target.circuit.send(ForceOpen).await.expect("circuit alive");
    };
    let (answer, ()) = futures_util::join!(running, operator);
    assert_failed(path, answer, "boom");
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            state: CircuitState::ForcedOpen,
            failures: 1,
            ..Counts::CLOSED
        },
    );
    assert_eq!(history(&target).await, [TransitionReason::ForcedOpen]);
}

// The manager's messages for one name and for all circuits, and a release
// of a circuit that is not the operator's: nothing happens to it.
on_every_path!(the_manager_steers_all_circuits_and_release_spares_the_others);

async fn the_manager_steers_all_circuits_and_release_spares_the_others(path: Path) {
    let target = Target::new(path, config()).await;
    target
        .manager
        .send(DisableAll)
        .await
        .expect("manager alive");
    assert_ok(path, target.run(now(Ok(1)), OkIsSuccess).await, 1);
    target
        .manager
        .send(ReleaseAll)
        .await
        .expect("manager alive");
    for _ in 0..2 {
        assert_failed(
            path,
            target.run(now(Err("boom")), OkIsSuccess).await,
            "boom",
        );
    }
    target
        .manager
        .send(ReleaseAll)
        .await
        .expect("manager alive");
    assert_rejected(
        path,
        target.run(now(Ok(1)), OkIsSuccess).await,
        CircuitState::Open,
    );
    let unknown = target
        .manager
        .send(DisableCircuit("patsh".into()))
        .await
        .expect("manager alive")
        .unwrap_err();
    assert!(
        unknown.to_string().contains("paths"),
        "names the nearest circuit: {unknown}"
    );
    assert_eq!(
        history(&target).await,
        [
            TransitionReason::Disabled,
            TransitionReason::Released,
            TransitionReason::ConsecutiveFailures { count: 2 },
        ]
    );
}

// Each operator change is a `StateChanged` event with its reason, sent to
// subscribers as every transition is.
#[actix::test]
async fn each_operator_change_is_an_event_with_its_reason() {
    use CircuitState::{Closed, Disabled, ForcedOpen};
    use actix::Actor;
    use vibezen_recovery::circuit::{CircuitBreaker, Subscribe};

    tokio::time::pause();
    within(async {
        let circuit = CircuitBreaker::new("operated", config())
            .expect("valid")
            .start();
        let (recipient, mut events) = recorder();
        circuit.send(Subscribe(recipient)).await.expect("alive");
        circuit.send(ForceOpen).await.expect("alive");
        circuit.send(ForceOpen).await.expect("alive");
        circuit.send(Disable).await.expect("alive");
        circuit.send(Release).await.expect("alive");
        circuit.send(Release).await.expect("alive");
        settle().await;
        let changes: Vec<_> = drain(&mut events)
            .into_iter()
            .map(|event| (event.from, event.to, event.reason))
            .collect();
        assert_eq!(
            changes,
            [
                (Closed, ForcedOpen, TransitionReason::ForcedOpen),
                (ForcedOpen, Disabled, TransitionReason::Disabled),
                (Disabled, Closed, TransitionReason::Released),
            ],
            "a repeated force or release is no change"
        );
    })
    .await;
}

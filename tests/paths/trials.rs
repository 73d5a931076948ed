//! HALF_OPEN trials on every path: the classifier decides what a trial
//! counts as, and so whether it closes or reopens the circuit.

use std::time::Duration;

use vibezen_recovery::classifier::OkIsSuccess;
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::outcome::Classification;
use vibezen_recovery::state::CircuitState;

use crate::support::*;

/// One failure opens it, one trial at a time, one trial success closes it.
fn one_trial(call_timeout: Option<Duration>) -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        failure_threshold: 1,
        success_threshold: 1,
        half_open_max_calls: Some(1),
        call_timeout,
        ..Default::default()
    }
}

/// Opens `target`'s circuit with one failure through its own path and waits
/// out the OPEN timeout.
async fn open_and_wait(target: &Target) {
    let path = target.path;
    assert_failed(
        path,
        target.run(now(Err("boom")), OkIsSuccess).await,
        "boom",
    );
    assert_eq!(
        target.counts().await.state,
        CircuitState::Open,
        "{path:?}: one failure should open the circuit"
    );
    advance(secs(60)).await;
    let counts = target.counts().await;
    assert_counts(
        target,
        counts,
        Counts {
            state: CircuitState::HalfOpen,
            failures: 1,
            ..Counts::CLOSED
        },
    );
}

// A trial whose `Err` the classifier counts as a success (stale data served:
// the service is up) closes the circuit; the caller still gets its `Err`.
// A path that ignored the classifier would count a failure and reopen.
on_every_path!(a_trial_classified_as_a_success_closes_the_circuit);

async fn a_trial_classified_as_a_success_closes_the_circuit(path: Path) {
    let stale_is_fine = |result: &Result<u32, &'static str>| match result {
        Err(e) if e.starts_with("stale") => Classification::Success,
        Err(_) => Classification::Failure,
        Ok(_) => Classification::Success,
    };
    let target = Target::new(path, one_trial(None)).await;
    open_and_wait(&target).await;

    let answer = target.run(now(Err("stale cache")), stale_is_fine).await;
    assert_failed(path, answer, "stale cache");
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            successes: 1,
            failures: 1,
            ..Counts::CLOSED
        },
    );
}

// A trial whose `Ok` the classifier counts as a failure reopens the circuit;
// the caller still gets its `Ok`.
on_every_path!(a_trial_classified_as_a_failure_reopens_the_circuit);

async fn a_trial_classified_as_a_failure_reopens_the_circuit(path: Path) {
    let empty_is_failure = |result: &Result<u32, &'static str>| match result {
        Ok(0) | Err(_) => Classification::Failure,
        Ok(_) => Classification::Success,
    };
    let target = Target::new(path, one_trial(None)).await;
    open_and_wait(&target).await;

    assert_ok(path, target.run(now(Ok(0)), empty_is_failure).await, 0);
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            state: CircuitState::Open,
            failures: 2,
            ..Counts::CLOSED
        },
    );
}

// An ignored trial neither closes nor reopens the circuit, and gives its
// slot back: an ignored `Ok` (which the default rule would count as a
// success, closing it) and an ignored `Err` (a failure by default, reopening
// it) leave it HALF_OPEN, and the next trial, a success, closes it.
on_every_path!(an_ignored_trial_neither_closes_nor_reopens_the_circuit);

async fn an_ignored_trial_neither_closes_nor_reopens_the_circuit(path: Path) {
    let ignore_all = |_: &Result<u32, &'static str>| Classification::Ignored;
    let target = Target::new(path, one_trial(None)).await;
    open_and_wait(&target).await;

    assert_ok(path, target.run(now(Ok(1)), ignore_all).await, 1);
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            state: CircuitState::HalfOpen,
            failures: 1,
            ignored: 1,
            ..Counts::CLOSED
        },
    );

    let answer = target.run(now(Err("404")), NotFoundIsNoOutage).await;
    assert_failed(path, answer, "404");
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            state: CircuitState::HalfOpen,
            failures: 1,
            ignored: 2,
            ..Counts::CLOSED
        },
    );

    assert_ok(path, target.run(now(Ok(2)), NotFoundIsNoOutage).await, 2);
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            successes: 1,
            failures: 1,
            ignored: 2,
            ..Counts::CLOSED
        },
    );
}

// A trial slower than `call_timeout` is a timeout and reopens the circuit.
// On the permit path the circuit reclaims the unreported trial's slot
// `RECLAIM_GRACE` after its deadline (a timeout) and the late report that
// follows is not counted again.
on_every_path!(a_trial_slower_than_call_timeout_reopens_the_circuit);

async fn a_trial_slower_than_call_timeout_reopens_the_circuit(path: Path) {
    let call_timeout = secs(1);
    let target = Target::new(path, one_trial(Some(call_timeout))).await;
    open_and_wait(&target).await;

    let answer = target.run(slow(secs(3), Ok(1)), OkIsSuccess).await;
    if path.cuts_off() {
        assert_timed_out(path, answer, call_timeout);
    } else {
        assert_ok(path, answer, 1);
    }
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            state: CircuitState::Open,
            failures: 1,
            timeouts: 1,
            ..Counts::CLOSED
        },
    );
}

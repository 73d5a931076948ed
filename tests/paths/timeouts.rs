//! `call_timeout` on every path.

use std::time::Duration;

use tokio::time::Instant;
use vibezen_recovery::classifier::OkIsSuccess;
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::outcome::Classification;
use vibezen_recovery::state::CircuitState;

use crate::support::*;

const CALL_TIMEOUT: Duration = Duration::from_secs(1);

fn with_call_timeout(failure_threshold: u32) -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        failure_threshold,
        call_timeout: Some(CALL_TIMEOUT),
        ..Default::default()
    }
}

// A call slower than `call_timeout` counts as a timeout (a kind of failure:
// two trip a threshold of two). The message, handle and manager paths cut
// it off at the timeout and answer `CallError::Timeout`; on the permit path
// the caller's work runs to its end and the caller gets its own result,
// while the circuit counts its late report as a timeout.
on_every_path!(a_call_slower_than_call_timeout_is_a_timeout);

async fn a_call_slower_than_call_timeout_is_a_timeout(path: Path) {
    let target = Target::new(path, with_call_timeout(2)).await;
    let slower = CALL_TIMEOUT * 3;

    let began = Instant::now();
    let answer = target.run(slow(slower, Ok(1)), OkIsSuccess).await;
    if path.cuts_off() {
        assert_timed_out(path, answer, CALL_TIMEOUT);
        assert_elapsed(began.elapsed(), CALL_TIMEOUT);
    } else {
        assert_ok(path, answer, 1);
        assert_elapsed(began.elapsed(), slower);
    }
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            timeouts: 1,
            consecutive_failures: 1,
            ..Counts::CLOSED
        },
    );

    let answer = target.run(slow(slower, Err("boom")), OkIsSuccess).await;
    if path.cuts_off() {
        assert_timed_out(path, answer, CALL_TIMEOUT);
    } else {
        assert_failed(path, answer, "boom");
    }
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            state: CircuitState::Open,
            timeouts: 2,
            ..Counts::CLOSED
        },
    );
}

// Whatever the classifier would have said of the result, a call slower than
// `call_timeout` is a timeout: here one that ignores every result.
//
// KNOWN DIFFERENCE (permit path): `Permit::record_with` turns only a late
// success or failure into a timeout (`Rules::judge_report`); a late result
// the classifier ignores is counted as `Ignored`, so a slow call does not
// count against the circuit. The other paths cut the call off before the
// classifier sees a result and count a timeout.
on_every_path!(a_slow_call_is_a_timeout_whatever_the_classifier_says);

async fn a_slow_call_is_a_timeout_whatever_the_classifier_says(path: Path) {
    let target = Target::new(path, with_call_timeout(5)).await;
    let ignore_all = |_: &Result<u32, &'static str>| Classification::Ignored;

    let answer = target.run(slow(CALL_TIMEOUT * 3, Ok(1)), ignore_all).await;
    if path.cuts_off() {
        assert_timed_out(path, answer, CALL_TIMEOUT);
    } else {
        assert_ok(path, answer, 1);
    }
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            timeouts: 1,
            consecutive_failures: 1,
            ..Counts::CLOSED
        },
    );
}

// A call that ends just before `call_timeout` counts as what it was, as the
// classifier judges it, and the caller gets its result.
on_every_path!(a_call_that_ends_just_before_call_timeout_counts_as_what_it_was);

async fn a_call_that_ends_just_before_call_timeout_counts_as_what_it_was(path: Path) {
    let target = Target::new(path, with_call_timeout(5)).await;
    // tokio's timer wheel rounds a sleep up by a millisecond: this one ends
    // at 999 ms, the last tick before the deadline (asserted below).
    let just_before = CALL_TIMEOUT - Duration::from_millis(2);

    let began = Instant::now();
    let answer = target
        .run(slow(just_before, Ok(1)), NotFoundIsNoOutage)
        .await;
    assert_ok(path, answer, 1);
    assert!(
        began.elapsed() < CALL_TIMEOUT,
        "{path:?}: the call was meant to end before its timeout, after {:?}",
        began.elapsed()
    );
    let answer = target
        .run(slow(just_before, Err("boom")), NotFoundIsNoOutage)
        .await;
    assert_failed(path, answer, "boom");
    let answer = target
        .run(slow(just_before, Err("404")), NotFoundIsNoOutage)
        .await;
    assert_failed(path, answer, "404");

    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            successes: 1,
            failures: 1,
            ignored: 1,
            consecutive_failures: 1,
            ..Counts::CLOSED
        },
    );
}

// A call that ends at its deadline counts the same on every path. One test
// for all four paths, since the question is whether they agree: a sleep of
// 999 ms ends with the clock at the deadline, which is in time; a sleep of
// exactly `call_timeout` ends (tokio rounds it up a millisecond) after it,
// in the tick the guard's deadline timer fires in, which is late
// (`Rules::is_late`) whichever of the call and the timer is polled first; so
// is a call 2 ms late.
#[actix::test]
async fn a_call_that_ends_at_call_timeout_counts_the_same_on_every_path() {
    tokio::time::pause();
    within(async {
        for took in [
            CALL_TIMEOUT - Duration::from_millis(1),
            CALL_TIMEOUT,
            CALL_TIMEOUT + Duration::from_millis(2),
        ] {
            let mut counted = Vec::new();
            for path in Path::ALL {
                let target = Target::new(path, with_call_timeout(5)).await;
                let began = Instant::now();
                let answer = target.run(slow(took, Ok(1)), OkIsSuccess).await;
                let ended = began.elapsed();
                assert!(
                    ended >= CALL_TIMEOUT,
                    "{path:?}: meant to end at the deadline, ended after {ended:?}"
                );
                let counts = target.counts().await;
                counted.push((path, counts.successes, counts.timeouts, answer.is_ok()));
                if path.cuts_off() {
                    assert_eq!(
                        answer.is_ok(),
                        counts.successes == 1,
                        "{path:?}: the caller saw {answer:?}, the circuit counted {counts:?}"
                    );
                }
            }
            let in_time = took < CALL_TIMEOUT;
            let (successes, timeouts) = if in_time { (1, 0) } else { (0, 1) };
            assert!(
                counted
                    .iter()
                    .all(|&(_, s, t, _)| (s, t) == (successes, timeouts)),
                "a call that took {took:?} (call_timeout {CALL_TIMEOUT:?}) counted differently: \
                 (path, successes, timeouts, caller got Ok) = {counted:?}"
            );
        }
    })
    .await;
}

//! What a finished call counts as: the default rule and classifiers, in
//! CLOSED, on every path.

use vibezen_recovery::classifier::OkIsSuccess;
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::outcome::Classification;
use vibezen_recovery::state::CircuitState;

use crate::support::*;

// The default rule: `Ok` is a success, `Err` a failure; `failure_threshold`
// failures in a row open the circuit, and the next call is refused without
// its future being polled.
on_every_path!(the_default_rule_counts_ok_and_err_and_trips_at_the_threshold);

async fn the_default_rule_counts_ok_and_err_and_trips_at_the_threshold(path: Path) {
    let target = Target::new(
        path,
        CircuitBreakerConfig {
            failure_threshold: 3,
            ..Default::default()
        },
    )
    .await;

    assert_ok(path, target.run(now(Ok(7)), OkIsSuccess).await, 7);
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            successes: 1,
            ..Counts::CLOSED
        },
    );

    for failures in 1..=2 {
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
                failures,
                consecutive_failures: failures as u32,
                ..Counts::CLOSED
            },
        );
    }

    assert_failed(
        path,
        target.run(now(Err("boom")), OkIsSuccess).await,
        "boom",
    );
    let (polled, future) = flagged(Ok(8));
    assert_rejected(
        path,
        target.run(future, OkIsSuccess).await,
        CircuitState::Open,
    );
    assert!(
        !was_polled(&polled),
        "{path:?}: a refused call ran its future"
    );
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            state: CircuitState::Open,
            successes: 1,
            failures: 3,
            rejections: 1,
            ..Counts::CLOSED
        },
    );
}

// A classifier (a named type) that ignores "404": the ignored calls count as
// `Ignored`, neither trip the circuit nor break a run of failures, and the
// caller still gets its `Err` unchanged.
on_every_path!(ignored_errors_neither_trip_nor_break_a_run_of_failures);

async fn ignored_errors_neither_trip_nor_break_a_run_of_failures(path: Path) {
    let target = Target::new(
        path,
        CircuitBreakerConfig {
            failure_threshold: 2,
            ..Default::default()
        },
    )
    .await;

    assert_ok(path, target.run(now(Ok(1)), NotFoundIsNoOutage).await, 1);
    // Well past the threshold: a path that counted them as failures trips.
    for _ in 0..3 {
        assert_failed(
            path,
            target
                .run(now(Err("404 no such node")), NotFoundIsNoOutage)
                .await,
            "404 no such node",
        );
    }
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            successes: 1,
            ignored: 3,
            ..Counts::CLOSED
        },
    );

    // failure, ignored, failure: still two in a row (a path that counted the
    // "404" as a success would have broken the run).
    assert_failed(
        path,
        target.run(now(Err("boom")), NotFoundIsNoOutage).await,
        "boom",
    );
    assert_failed(
        path,
        target.run(now(Err("404")), NotFoundIsNoOutage).await,
        "404",
    );
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            successes: 1,
            failures: 1,
            ignored: 4,
            consecutive_failures: 1,
            ..Counts::CLOSED
        },
    );
    assert_failed(
        path,
        target.run(now(Err("boom")), NotFoundIsNoOutage).await,
        "boom",
    );
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            state: CircuitState::Open,
            successes: 1,
            failures: 2,
            ignored: 4,
            ..Counts::CLOSED
        },
    );
}

// A classifier (a closure) that says an `Ok(0)`, an empty answer, is a
// failure: it is counted as one and trips at the threshold, and the caller
// still gets its `Ok`.
on_every_path!(an_ok_classified_as_a_failure_trips_and_the_caller_keeps_it);

async fn an_ok_classified_as_a_failure_trips_and_the_caller_keeps_it(path: Path) {
    let empty_is_failure = |result: &Result<u32, &'static str>| match result {
        Ok(0) | Err(_) => Classification::Failure,
        Ok(_) => Classification::Success,
    };
    let target = Target::new(
        path,
        CircuitBreakerConfig {
            failure_threshold: 2,
            ..Default::default()
        },
    )
    .await;

    assert_ok(path, target.run(now(Ok(5)), empty_is_failure).await, 5);
    assert_ok(path, target.run(now(Ok(0)), empty_is_failure).await, 0);
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            successes: 1,
            failures: 1,
            consecutive_failures: 1,
            ..Counts::CLOSED
        },
    );

    assert_ok(path, target.run(now(Ok(0)), empty_is_failure).await, 0);
    let (polled, future) = flagged(Ok(5));
    assert_rejected(
        path,
        target.run(future, empty_is_failure).await,
        CircuitState::Open,
    );
    assert!(
        !was_polled(&polled),
        "{path:?}: a refused call ran its future"
    );
    let counts = target.counts().await;
    assert_counts(
        &target,
        counts,
        Counts {
            state: CircuitState::Open,
            successes: 1,
            failures: 2,
            rejections: 1,
            ..Counts::CLOSED
        },
    );
}

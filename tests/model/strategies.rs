//! Random valid configs and operation sequences, small enough that every
//! rule fires within a few dozen steps: thresholds of a few calls, windows
//! of a few calls or seconds, timeouts of a few seconds, and time moving in
//! quarter seconds so that deadlines often coincide.

use std::time::Duration;

use proptest::prelude::*;
use vibezen_recovery::config::{CircuitBreakerConfig, WindowConfig};
use vibezen_recovery::outcome::Outcome;

use crate::run::{Case, Op};

fn quarter_seconds(range: std::ops::RangeInclusive<u64>) -> impl Strategy<Value = Duration> {
    range.prop_map(|quarters| Duration::from_millis(quarters * 250))
}

fn window(min_calls: u32) -> impl Strategy<Value = WindowConfig> {
    prop_oneof![
        (min_calls..=10).prop_map(|size| WindowConfig::Count { size }),
        (1..=10u64, 1..=5u32).prop_map(|(secs, buckets)| WindowConfig::Time {
            duration: Duration::from_secs(secs),
            buckets,
        }),
    ]
}

/// A valid config with small thresholds and durations.
pub fn config() -> impl Strategy<Value = CircuitBreakerConfig> {
    let rate = prop_oneof![
        Just(1.0),
        Just(0.5),
        Just(1.0 / 3.0),
        (1..=20u32).prop_map(|twentieths| f64::from(twentieths) / 20.0),
    ];
    (1..=6u32)
        .prop_flat_map(|min_calls| (Just(min_calls), window(min_calls)))
        .prop_flat_map(move |(min_calls, window)| {
            (
                (1..=5u32, 1..=3u32, prop::option::of(1..=3u32)),
                rate.clone(),
                (
                    prop::option::of(quarter_seconds(2..=16)),
                    quarter_seconds(4..=20),
                    quarter_seconds(4..=24),
                ),
                any::<bool>(),
            )
                .prop_map(
                    move |(
                        (failure_threshold, success_threshold, half_open_max_calls),
                        failure_rate_threshold,
                        (call_timeout, timeout, reset_timeout),
                        critical,
                    )| CircuitBreakerConfig {
                        failure_threshold,
                        success_threshold,
                        timeout,
                        failure_rate_threshold,
                        min_calls,
                        reset_timeout,
                        window,
                        half_open_max_calls,
                        call_timeout,
                        critical,
                    },
                )
        })
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        4 => Just(Outcome::Success),
        4 => Just(Outcome::Failure),
        1 => Just(Outcome::Timeout),
        1 => Just(Outcome::Panic),
        1 => Just(Outcome::Ignored),
        1 => Just(Outcome::Cancelled),
    ]
}

pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Acquire),
        3 => Just(Op::AcquireGuarded),
        7 => (any::<u8>(), outcome()).prop_map(|(pick, outcome)| Op::Record(pick, outcome)),
        3 => quarter_seconds(0..=24).prop_map(Op::Advance),
        1 => (10..=60u64).prop_map(|secs| Op::Advance(Duration::from_secs(secs))),
        3 => Just(Op::ToDeadline),
        1 => Just(Op::JustBeforeDeadline),
        1 => Just(Op::Poll),
        1 => Just(Op::Reset),
        1 => Just(Op::ForceOpen),
        1 => Just(Op::Disable),
        1 => Just(Op::Release),
    ]
}

/// A config and up to 60 operations.
pub fn case() -> impl Strategy<Value = Case> {
    (config(), prop::collection::vec(op(), 1..=60)).prop_map(|(config, ops)| Case { config, ops })
}

/// A config and up to 300 operations, for the machine's own invariants.
pub fn machine_only_case() -> impl Strategy<Value = Case> {
    (config(), prop::collection::vec(op(), 1..=300)).prop_map(|(config, ops)| Case { config, ops })
}

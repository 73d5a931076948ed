use super::*;

use std::time::Duration;

use crate::config::WindowConfig;
use CircuitState::{Closed, Disabled, ForcedOpen, HalfOpen, Open};
use Outcome::{Cancelled, Failure, Ignored, Panic, Success, Timeout};
use TransitionReason as Reason;

// ---------------------------------------------------------------- helpers

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const NS: Duration = Duration::from_nanos(1);

/// Opens after 3 failures in a row, closes after 2 trial successes,
/// OPEN for 60 s, full reset after 120 s; the rate rule needs 10 calls.
fn config() -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        failure_threshold: 3,
        success_threshold: 2,
        timeout: secs(60),
        reset_timeout: secs(120),
        ..Default::default()
    }
}

/// Only the failure-rate rule can open it.
fn rate_config(min_calls: u32, threshold: f64, window: WindowConfig) -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        failure_threshold: 1_000,
        failure_rate_threshold: threshold,
        min_calls,
        window,
        ..config()
    }
}

fn machine(config: CircuitBreakerConfig, now: Instant) -> StateMachine {
    StateMachine::new(config, now).expect("valid config")
}

/// One admitted call that ends at once with `outcome`.
fn call(m: &mut StateMachine, outcome: Outcome, at: Instant) {
    let ticket = m.try_acquire(at).expect("call admitted");
    m.record(ticket, outcome, at);
}

fn calls(m: &mut StateMachine, outcomes: &[Outcome], at: Instant) {
    outcomes.iter().for_each(|&outcome| call(m, outcome, at));
}

fn drained(m: &mut StateMachine) -> Vec<(CircuitState, CircuitState, TransitionReason)> {
    m.drain_transitions()
        .map(|t| (t.from, t.to, t.reason))
        .collect()
}

/// A machine opened at `t0` by consecutive failures, transitions drained.
fn opened(config: CircuitBreakerConfig, t0: Instant) -> StateMachine {
    let mut m = machine(config, t0);
    for _ in 0..m.config().failure_threshold {
        call(&mut m, Failure, t0);
    }
    assert_eq!(m.state(), Open);
    drained(&mut m);
    m
}

/// A machine opened at `t0` and HALF_OPEN since the returned instant.
fn half_open(config: CircuitBreakerConfig, t0: Instant) -> (StateMachine, Instant) {
    let mut m = opened(config, t0);
    let half = t0 + m.config().timeout;
    m.poll(half);
    assert_eq!(m.state(), HalfOpen);
    drained(&mut m);
    (m, half)
}

fn assert_totals_add_up(m: &StateMachine) {
    let t = m.totals();
    let finished = t.outcomes.total();
    assert!(finished <= t.calls, "more outcomes than calls: {t:?}");
    assert_eq!(t.calls, finished + t.in_flight(), "{t:?}");
}

// ---------------------------------------------------------------- CLOSED

#[test]
fn starts_closed_in_generation_zero() {
    let machine = StateMachine::new(CircuitBreakerConfig::default(), Instant::now()).unwrap();
    assert_eq!(machine.state(), CircuitState::Closed);
    assert_eq!(machine.generation(), 0);
}

#[test]
fn opens_exactly_at_failure_threshold() {
    let t0 = Instant::now();
    let mut m = machine(config(), t0);
    calls(&mut m, &[Failure, Failure], t0);
    assert_eq!(m.state(), Closed);
    assert_eq!(m.consecutive_failures(), 2);
    call(&mut m, Failure, t0);
    assert_eq!(m.state(), Open);
    let reason = Reason::ConsecutiveFailures { count: 3 };
    assert_eq!(drained(&mut m), [(Closed, Open, reason)]);
}

#[test]
fn success_clears_the_consecutive_failure_count() {
    let t0 = Instant::now();
    let mut m = machine(config(), t0);
    calls(&mut m, &[Failure, Failure, Success], t0);
    assert_eq!(m.consecutive_failures(), 0);
    calls(&mut m, &[Failure, Failure], t0);
    assert_eq!(m.state(), Closed);
    call(&mut m, Failure, t0);
    assert_eq!(m.state(), Open);
}

#[test]
fn timeouts_and_panics_count_as_failures() {
    let t0 = Instant::now();
    let mut m = machine(config(), t0);
    calls(&mut m, &[Timeout, Panic], t0);
    assert_eq!(m.consecutive_failures(), 2);
    assert_eq!(m.window_counts(t0), (2, 2));
    call(&mut m, Panic, t0);
    assert_eq!(m.state(), Open);
    assert_eq!(
        (m.totals()[Outcome::Timeout], m.totals()[Outcome::Panic]),
        (1, 2)
    );
    assert_eq!(m.last_failure(), Some(t0));
}

#[test]
fn ignored_and_cancelled_count_toward_nothing() {
    let t0 = Instant::now();
    let mut m = machine(config(), t0);
    calls(&mut m, &[Failure, Failure, Ignored, Cancelled, Ignored], t0);
    assert_eq!(m.state(), Closed);
    assert_eq!(m.consecutive_failures(), 2, "neutral outcomes do not reset");
    assert_eq!(m.window_counts(t0), (2, 2), "nor enter the window");
    assert_eq!(
        (m.totals()[Outcome::Ignored], m.totals()[Outcome::Cancelled]),
        (2, 1)
    );
    call(&mut m, Failure, t0);
    assert_eq!(m.state(), Open);
}

#[test]
fn a_closed_circuit_with_nothing_counted_has_no_deadline() {
    let t0 = Instant::now();
    let mut m = machine(config(), t0);
    call(&mut m, Ignored, t0);
    assert_eq!(m.next_deadline(t0), None);
    m.poll(t0 + secs(10_000));
    assert_eq!(m.generation(), 0);
}

// ---------------------------------------------------------------- failure rate

#[test]
fn rate_opens_exactly_at_threshold_not_just_below() {
    let t0 = Instant::now();
    let mut m = machine(rate_config(10, 0.5, WindowConfig::Count { size: 100 }), t0);
    calls(&mut m, &[Success; 11], t0);
    calls(&mut m, &[Failure; 10], t0);
    assert_eq!(m.state(), Closed, "10 of 21 is just below 50%");
    assert_eq!(m.failure_rate(t0), Some(10.0 / 21.0));
    call(&mut m, Failure, t0);
    let reason = Reason::FailureRate {
        rate: 0.5,
        calls: 22,
    };
    assert_eq!(drained(&mut m), [(Closed, Open, reason)]);
}

#[test]
fn rate_threshold_is_inclusive_for_non_binary_fractions() {
    let t0 = Instant::now();
    let mut m = machine(rate_config(10, 0.3, WindowConfig::Count { size: 10 }), t0);
    calls(&mut m, &[Success; 7], t0);
    calls(&mut m, &[Failure; 2], t0);
    assert_eq!(m.state(), Closed);
    call(&mut m, Failure, t0);
    let reason = Reason::FailureRate {
        rate: 0.3,
        calls: 10,
    };
    assert_eq!(drained(&mut m), [(Closed, Open, reason)]);
}

#[test]
fn rate_does_not_count_below_min_calls() {
    let t0 = Instant::now();
    let mut m = machine(rate_config(10, 0.5, WindowConfig::Count { size: 10 }), t0);
    calls(&mut m, &[Failure; 9], t0);
    assert_eq!(m.state(), Closed, "100% failures, but only 9 calls");
    assert_eq!(m.failure_rate(t0), None);
    call(&mut m, Failure, t0);
    let reason = Reason::FailureRate {
        rate: 1.0,
        calls: 10,
    };
    assert_eq!(drained(&mut m), [(Closed, Open, reason)]);
}

#[test]
fn rate_is_checked_after_a_success_too() {
    let t0 = Instant::now();
    let mut m = machine(rate_config(4, 0.5, WindowConfig::Count { size: 4 }), t0);
    calls(&mut m, &[Failure; 3], t0);
    assert_eq!(m.state(), Closed);
    call(&mut m, Success, t0);
    let reason = Reason::FailureRate {
        rate: 0.75,
        calls: 4,
    };
    assert_eq!(drained(&mut m), [(Closed, Open, reason)]);
}

#[test]
fn count_window_evicts_the_oldest_outcomes() {
    let t0 = Instant::now();
    let mut m = machine(rate_config(4, 0.5, WindowConfig::Count { size: 4 }), t0);
    calls(&mut m, &[Failure, Success, Success, Success], t0);
    assert_eq!(m.window_counts(t0), (4, 1));
    call(&mut m, Success, t0);
    assert_eq!(m.window_counts(t0), (4, 0), "the failure was evicted");
    call(&mut m, Failure, t0);
    assert_eq!(m.state(), Closed);
    // S S F F: 2 of 4, where all seven calls would be 2 of 7.
    call(&mut m, Failure, t0);
    assert_eq!(m.state(), Open);
}

#[test]
fn time_window_opens_on_failures_inside_the_window() {
    let t0 = Instant::now();
    let window = WindowConfig::Time {
        duration: secs(10),
        buckets: 10,
    };
    let mut m = machine(rate_config(4, 0.5, window), t0);
    calls(&mut m, &[Failure, Failure], t0);
    call(&mut m, Success, t0 + secs(9));
    assert_eq!(m.state(), Closed);
    call(&mut m, Success, t0 + secs(9));
    let reason = Reason::FailureRate {
        rate: 0.5,
        calls: 4,
    };
    assert_eq!(drained(&mut m), [(Closed, Open, reason)]);
}

#[test]
fn time_window_drops_old_buckets_as_time_passes() {
    let t0 = Instant::now();
    let window = WindowConfig::Time {
        duration: secs(10),
        buckets: 10,
    };
    let mut m = machine(rate_config(4, 0.5, window), t0);
    calls(&mut m, &[Failure, Failure], t0);
    assert_eq!(m.window_counts(t0 + secs(10) - NS), (2, 2));
    assert_eq!(m.window_counts(t0 + secs(10)), (0, 0));
    calls(&mut m, &[Success, Success], t0 + secs(10));
    assert_eq!(m.window_counts(t0 + secs(10)), (2, 0));
    assert_eq!(
        m.state(),
        Closed,
        "the failures of second 0 left the window"
    );
    calls(&mut m, &[Failure, Failure], t0 + secs(15));
    assert_eq!(m.state(), Open);
}

// ---------------------------------------------------------------- OPEN

#[test]
fn open_rejects_until_the_timeout_and_counts_rejections() {
    let t0 = Instant::now();
    let mut m = opened(config(), t0);
    let until = t0 + secs(60);
    assert_eq!(m.open_until(), Some(until));
    assert_eq!(m.next_deadline(t0), Some(until));
    for at in [t0, t0 + secs(30), until - NS] {
        let rejection = Rejection {
            refusal: Refusal::Open,
            retry_at: Some(until),
        };
        assert_eq!(m.try_acquire(at), Err(rejection));
    }
    assert_eq!(m.totals().rejections, 3);
    assert_eq!(m.totals().calls, 3, "rejections are not calls");
    m.poll(until - NS);
    assert_eq!(m.state(), Open);
    m.poll(until);
    assert_eq!(m.state(), HalfOpen);
    assert_eq!(m.open_until(), None);
    assert_eq!(
        drained(&mut m),
        [(Open, HalfOpen, Reason::OpenTimeoutElapsed)]
    );
}

#[test]
fn try_acquire_moves_to_half_open_lazily_at_the_deadline() {
    let t0 = Instant::now();
    let mut m = opened(config(), t0);
    let ticket = m
        .try_acquire(t0 + secs(60))
        .expect("the timeout has elapsed");
    assert!(ticket.is_trial());
    assert_eq!(m.state(), HalfOpen);
    assert_eq!(ticket.generation(), m.generation());
    assert_eq!(
        drained(&mut m),
        [(Open, HalfOpen, Reason::OpenTimeoutElapsed)]
    );
}

#[test]
fn open_is_never_left_for_inactivity() {
    let t0 = Instant::now();
    let cfg = CircuitBreakerConfig {
        timeout: secs(600),
        ..config()
    };
    let mut m = opened(cfg, t0);
    m.poll(t0 + secs(600) - NS);
    assert_eq!((m.state(), m.generation()), (Open, 1));
    assert_eq!(m.next_deadline(t0 + secs(300)), Some(t0 + secs(600)));
}

// ---------------------------------------------------------------- HALF_OPEN

#[test]
fn half_open_admits_at_most_max_trial_calls() {
    let t0 = Instant::now();
    let three = CircuitBreakerConfig {
        half_open_max_calls: Some(3),
        ..config()
    };
    for (max, cfg) in [(2, config()), (3, three)] {
        let (mut m, half) = half_open(cfg, t0);
        assert_eq!(m.config().max_trial_calls(), max);
        for _ in 0..max {
            assert!(m.try_acquire(half).expect("a slot is free").is_trial());
        }
        let rejection = Rejection {
            refusal: Refusal::TrialsTaken,
            retry_at: None,
        };
        assert_eq!(m.try_acquire(half), Err(rejection));
        assert_eq!(m.trials_in_flight(), max as usize);
        assert_eq!(m.totals().rejections, 1);
    }
}

#[test]
fn finished_trial_frees_its_slot_and_neutral_trials_change_nothing_else() {
    let t0 = Instant::now();
    let (mut m, half) = half_open(config(), t0);
    let (a, b) = (m.try_acquire(half).unwrap(), m.try_acquire(half).unwrap());
    assert!(m.try_acquire(half).is_err());
    m.record(a, Ignored, half);
    assert_eq!(m.trials_in_flight(), 1);
    let c = m.try_acquire(half).expect("a's slot was freed");
    m.record(b, Cancelled, half);
    m.record(c, Success, half);
    assert_eq!((m.state(), m.trial_successes()), (HalfOpen, 1));
    assert_eq!(m.trials_in_flight(), 0);
    assert!(drained(&mut m).is_empty());
}

#[test]
fn success_threshold_trial_successes_close_the_circuit() {
    let t0 = Instant::now();
    let (mut m, half) = half_open(
        CircuitBreakerConfig {
            success_threshold: 3,
            ..config()
        },
        t0,
    );
    calls(&mut m, &[Success, Success], half);
    assert_eq!((m.state(), m.trial_successes()), (HalfOpen, 2));
    call(&mut m, Success, half);
    let reason = Reason::TrialsSucceeded { successes: 3 };
    assert_eq!(drained(&mut m), [(HalfOpen, Closed, reason)]);
    assert_eq!(
        (m.consecutive_failures(), m.window_counts(half)),
        (0, (0, 0))
    );
}

#[test]
fn any_failed_trial_reopens_and_restarts_the_timeout() {
    let t0 = Instant::now();
    for outcome in [Failure, Timeout, Panic] {
        let (mut m, half) = half_open(config(), t0);
        call(&mut m, Success, half);
        let at = half + secs(5);
        call(&mut m, outcome, at);
        assert_eq!(m.state(), Open, "{outcome}");
        assert_eq!(m.open_until(), Some(at + secs(60)));
        let rejection = Rejection {
            refusal: Refusal::Open,
            retry_at: Some(at + secs(60)),
        };
        assert_eq!(m.try_acquire(at + secs(60) - NS), Err(rejection));
        let reason = Reason::TrialFailed { outcome };
        assert_eq!(drained(&mut m), [(HalfOpen, Open, reason)]);
        // The next HALF_OPEN starts with no trial successes.
        m.poll(at + secs(60));
        assert_eq!((m.state(), m.trial_successes()), (HalfOpen, 0));
    }
}

// ---------------------------------------------------------------- hung trials

#[test]
fn trial_deadline_is_call_timeout_or_else_the_open_timeout() {
    let t0 = Instant::now();
    let (mut m, half) = half_open(config(), t0);
    let ticket = m.try_acquire(half + secs(1)).unwrap();
    assert_eq!(ticket.deadline(), Some(half + secs(61)));
    // The machine's own deadline for it is the reclaim, a grace later.
    assert_eq!(
        m.next_deadline(half + secs(1)),
        Some(half + secs(61) + RECLAIM_GRACE)
    );

    let cfg = CircuitBreakerConfig {
        call_timeout: Some(secs(5)),
        ..config()
    };
    let (mut m, half) = half_open(cfg, t0);
    let ticket = m.try_acquire(half + secs(1)).unwrap();
    assert_eq!(ticket.admitted_at(), half + secs(1));
    assert_eq!(ticket.deadline(), Some(half + secs(6)));
    assert_eq!(
        m.next_deadline(half + secs(1)),
        Some(half + secs(6) + RECLAIM_GRACE)
    );
    // A guarded trial has the same deadline, but the machine never
    // reclaims it: it adds nothing to `next_deadline`.
    let guarded = m.try_acquire_guarded(half + secs(2)).unwrap();
    assert_eq!(guarded.deadline(), Some(half + secs(7)));
    assert_eq!(
        m.next_deadline(half + secs(2)),
        Some(half + secs(6) + RECLAIM_GRACE)
    );
}

#[test]
fn hung_trial_is_reclaimed_once_and_reopens_the_circuit() {
    let t0 = Instant::now();
    let cfg = CircuitBreakerConfig {
        call_timeout: Some(secs(5)),
        ..config()
    };
    let (mut m, half) = half_open(cfg, t0);
    let trial = m.try_acquire(half).unwrap();
    let deadline = half + secs(5);
    assert_eq!(trial.deadline(), Some(deadline));
    // Past its deadline, the trial keeps its slot for the grace.
    let reclaim = deadline + RECLAIM_GRACE;
    m.poll(deadline);
    assert_eq!((m.state(), m.trials_in_flight()), (HalfOpen, 1));
    m.poll(reclaim - NS);
    assert_eq!((m.state(), m.trials_in_flight()), (HalfOpen, 1));
    assert_eq!(m.totals()[Outcome::Timeout], 0);
    m.poll(reclaim);
    assert_eq!((m.state(), m.trials_in_flight()), (Open, 0));
    assert_eq!(m.open_until(), Some(reclaim + secs(60)));
    assert_eq!(
        drained(&mut m),
        [(HalfOpen, Open, Reason::TrialSlotReclaimed)]
    );
    assert_eq!(
        (m.totals()[Outcome::Timeout], m.totals().in_flight()),
        (1, 0)
    );
    assert_eq!(m.last_failure(), Some(reclaim));
    m.poll(reclaim + secs(1));
    assert_eq!(m.totals()[Outcome::Timeout], 1, "counted once");

    // The holder's report was slower than the grace: it drives nothing,
    // but the totals count what the holder saw in place of the timeout.
    let (totals, generation) = (m.totals(), m.generation());
    m.record(trial, Success, reclaim + secs(2));
    assert_eq!((m.state(), m.generation()), (Open, generation));
    assert_eq!(
        (m.totals()[Outcome::Success], m.totals()[Outcome::Timeout]),
        (totals[Outcome::Success] + 1, 0)
    );
    assert_eq!(m.totals().calls, totals.calls);
    assert_totals_add_up(&m);
}

#[test]
fn a_permit_trial_reported_within_the_grace_counts_as_what_it_was() {
    let t0 = Instant::now();
    let cfg = CircuitBreakerConfig {
        call_timeout: Some(secs(5)),
        success_threshold: 1,
        ..config()
    };
    let (mut m, half) = half_open(cfg, t0);
    let trial = m.try_acquire(half).unwrap();
    // The report was on its way at the deadline; the machine reads it
    // just before the grace runs out.
    let read_at = half + secs(5) + RECLAIM_GRACE - NS;
    m.record(trial, Success, read_at);
    assert_eq!(
        (m.totals()[Outcome::Success], m.totals()[Outcome::Timeout]),
        (1, 0)
    );
    assert_eq!(
        drained(&mut m),
        [(HalfOpen, Closed, Reason::TrialsSucceeded { successes: 1 })]
    );
}

#[test]
fn a_trial_reported_in_time_counts_as_what_it_was_however_late_it_is_read() {
    let t0 = Instant::now();
    let cfg = CircuitBreakerConfig {
        call_timeout: Some(secs(5)),
        success_threshold: 1,
        ..config()
    };
    let (mut m, half) = half_open(cfg, t0);
    let trial = m.try_acquire(half).unwrap();
    // Reported a second before its deadline; read long after the slot
    // would have been reclaimed (the circuit was busy).
    let reported_at = half + secs(4);
    let read_at = half + secs(5) + RECLAIM_GRACE + secs(10);
    m.hold_for_report(&trial, reported_at);
    m.poll(read_at);
    m.record(trial, Success, read_at);
    assert_eq!(
        (m.totals()[Outcome::Success], m.totals()[Outcome::Timeout]),
        (1, 0)
    );
    assert_eq!(
        drained(&mut m),
        [(HalfOpen, Closed, Reason::TrialsSucceeded { successes: 1 })]
    );
    assert_totals_add_up(&m);
}

#[test]
fn guarded_trial_is_never_reclaimed_and_frees_its_slot_when_its_timeout_is_recorded() {
    let t0 = Instant::now();
    let cfg = CircuitBreakerConfig {
        call_timeout: Some(secs(5)),
        half_open_max_calls: Some(1),
        ..config()
    };
    let (mut m, half) = half_open(cfg, t0);
    let trial = m.try_acquire_guarded(half).unwrap();
    assert!(trial.is_trial());
    let deadline = half + secs(5);
    assert_eq!(trial.deadline(), Some(deadline));
    // Nothing for the machine to do about it: no reclaim, and a trial in
    // flight is activity, so no inactivity reset either.
    assert_eq!(m.next_deadline(half), None);
    for at in [deadline, deadline + RECLAIM_GRACE, deadline + secs(1_000)] {
        m.poll(at);
        assert_eq!((m.state(), m.trials_in_flight()), (HalfOpen, 1), "{at:?}");
        assert_eq!(
            m.try_acquire(at).map(drop),
            Err(Rejection {
                refusal: Refusal::TrialsTaken,
                retry_at: None
            })
        );
    }
    assert_eq!(
        (m.totals()[Outcome::Timeout], m.totals().in_flight()),
        (0, 1)
    );
    assert!(drained(&mut m).is_empty());

    // Its guard cut it off and reported the timeout; however late the
    // machine reads that report, only then is the slot free.
    let cut_off = deadline + secs(1_000);
    m.record(trial, Timeout, cut_off);
    assert_eq!((m.state(), m.trials_in_flight()), (Open, 0));
    assert_eq!(
        (m.totals()[Outcome::Timeout], m.totals().in_flight()),
        (1, 0)
    );
    assert_eq!(m.last_failure(), Some(cut_off));
    assert_eq!(
        drained(&mut m),
        [(HalfOpen, Open, Reason::TrialFailed { outcome: Timeout })]
    );
    assert_totals_add_up(&m);
}

// ---------------------------------------------------------------- full reset

#[test]
fn inactivity_clears_a_closed_circuit_without_a_transition() {
    let t0 = Instant::now();
    let mut m = machine(config(), t0);
    // Only the window holds something: the success cleared the count.
    calls(&mut m, &[Failure, Success], t0);
    assert_eq!(m.next_deadline(t0), Some(t0 + secs(120)));
    m.poll(t0 + secs(120) - NS);
    assert_eq!((m.generation(), m.window_counts(t0)), (0, (2, 1)));
    m.poll(t0 + secs(120));
    assert_eq!((m.state(), m.generation()), (Closed, 1));
    assert_eq!(m.window_counts(t0 + secs(120)), (0, 0));
    assert!(drained(&mut m).is_empty());
    assert_eq!(m.next_deadline(t0 + secs(120)), None);
    // The consecutive count alone is enough too.
    calls(&mut m, &[Failure, Ignored], t0 + secs(130));
    m.poll(t0 + secs(250));
    assert_eq!((m.generation(), m.consecutive_failures()), (2, 0));
}

#[test]
fn inactivity_clears_failures_that_already_left_a_time_window() {
    let t0 = Instant::now();
    let window = WindowConfig::Time {
        duration: secs(10),
        buckets: 10,
    };
    let mut m = machine(CircuitBreakerConfig { window, ..config() }, t0);
    call(&mut m, Failure, t0);
    assert_eq!(m.window_counts(t0 + secs(60)), (0, 0));
    assert_eq!(m.consecutive_failures(), 1);
    m.poll(t0 + secs(120));
    assert_eq!((m.generation(), m.consecutive_failures()), (1, 0));
}

#[test]
fn a_call_in_flight_then_its_outcome_postpone_the_closed_reset() {
    let t0 = Instant::now();
    let mut m = machine(config(), t0);
    call(&mut m, Failure, t0);
    let in_flight = m.try_acquire(t0 + secs(100)).unwrap();
    // A call in flight is activity, however long it takes.
    m.poll(t0 + secs(500));
    assert_eq!(m.generation(), 0);
    m.record(in_flight, Ignored, t0 + secs(500));
    m.poll(t0 + secs(620) - NS);
    assert_eq!(m.generation(), 0);
    m.poll(t0 + secs(620));
    assert_eq!((m.generation(), m.consecutive_failures()), (1, 0));
}

#[test]
fn idle_half_open_closes_for_inactivity_counted_from_its_entry() {
    let t0 = Instant::now();
    let (mut m, half) = half_open(config(), t0);
    // The last admission (t0) is older than the entry into HALF_OPEN.
    assert_eq!(m.next_deadline(half), Some(half + secs(120)));
    let trial = m.try_acquire(half + secs(30)).unwrap();
    m.record(trial, Cancelled, half + secs(31));
    // Counted from the last outcome.
    m.poll(half + secs(151) - NS);
    assert_eq!(m.state(), HalfOpen);
    m.poll(half + secs(151));
    assert_eq!(drained(&mut m), [(HalfOpen, Closed, Reason::Inactivity)]);
}

#[test]
fn half_open_with_a_trial_in_flight_is_not_inactive() {
    let t0 = Instant::now();
    let cfg = CircuitBreakerConfig {
        call_timeout: Some(secs(300)),
        ..config()
    };
    let (mut m, half) = half_open(cfg, t0);
    let _trial = m.try_acquire(half).unwrap();
    let reclaim = half + secs(300) + RECLAIM_GRACE;
    assert_eq!(m.next_deadline(half), Some(reclaim));
    m.poll(reclaim - NS);
    assert_eq!((m.state(), m.trials_in_flight()), (HalfOpen, 1));
}

// ---------------------------------------------------------------- generations

#[test]
fn reset_bumps_the_generation_from_every_state() {
    let t0 = Instant::now();
    let mut m = machine(config(), t0);
    m.reset(t0);
    assert_eq!((m.state(), m.generation()), (Closed, 1));
    assert!(
        drained(&mut m).is_empty(),
        "CLOSED -> CLOSED is no transition"
    );

    let mut m = opened(config(), t0);
    m.reset(t0 + secs(1));
    assert_eq!((m.generation(), m.open_until()), (2, None));
    assert_eq!(drained(&mut m), [(Open, Closed, Reason::ManualReset)]);
    assert!(m.try_acquire(t0 + secs(1)).is_ok());

    let (mut m, half) = half_open(config(), t0);
    m.reset(half);
    assert_eq!((m.state(), m.generation()), (Closed, 3));
    assert_eq!(drained(&mut m), [(HalfOpen, Closed, Reason::ManualReset)]);
}

#[test]
fn stale_failure_after_reset_is_counted_but_does_not_drive_the_state() {
    let t0 = Instant::now();
    let mut m = machine(config(), t0);
    calls(&mut m, &[Failure, Failure], t0);
    let stale = m.try_acquire(t0).unwrap();
    m.reset(t0);
    assert_eq!((m.consecutive_failures(), m.window_counts(t0)), (0, (0, 0)));
    m.record(stale, Failure, t0);
    assert_eq!(m.totals()[Outcome::Failure], 3);
    assert_eq!((m.consecutive_failures(), m.window_counts(t0)), (0, (0, 0)));
    calls(&mut m, &[Failure, Failure], t0);
    assert_eq!(m.state(), Closed, "only two current failures");
}

#[test]
fn stale_success_does_not_count_toward_closing() {
    let t0 = Instant::now();
    let cfg = CircuitBreakerConfig {
        success_threshold: 1,
        ..config()
    };
    let mut m = machine(cfg, t0);
    let stale = m.try_acquire(t0).unwrap();
    calls(&mut m, &[Failure; 3], t0);
    m.poll(t0 + secs(60));
    m.record(stale, Success, t0 + secs(60));
    assert_eq!((m.state(), m.trial_successes()), (HalfOpen, 0));
    assert_eq!(m.totals()[Outcome::Success], 1);
}

#[test]
fn stale_trial_keeps_its_slot_across_generations_but_not_its_vote() {
    let t0 = Instant::now();
    let cfg = CircuitBreakerConfig {
        call_timeout: Some(secs(300)),
        ..config()
    };
    let (mut m, half) = half_open(cfg, t0);
    let old = m.try_acquire(half).unwrap();
    call(&mut m, Failure, half); // reopens until half + 60
    m.poll(half + secs(60));
    assert_eq!((m.state(), m.trials_in_flight()), (HalfOpen, 1));
    assert_eq!(
        m.inactivity_deadline(half + secs(60)),
        None,
        "a trial in flight is activity"
    );
    let fresh = m.try_acquire(half + secs(60)).unwrap();
    assert!(
        m.try_acquire(half + secs(60)).is_err(),
        "the old trial holds a slot"
    );
    m.record(old, Success, half + secs(61));
    assert_eq!((m.trial_successes(), m.trials_in_flight()), (0, 1));
    m.record(fresh, Success, half + secs(61));
    assert_eq!(m.trial_successes(), 1);
}

#[test]
fn stale_trial_hanging_past_its_deadline_does_not_reopen_a_new_half_open() {
    let t0 = Instant::now();
    let cfg = CircuitBreakerConfig {
        call_timeout: Some(secs(90)),
        ..config()
    };
    let (mut m, half) = half_open(cfg, t0);
    let _old = m.try_acquire(half).unwrap();
    call(&mut m, Failure, half); // reopens until half + 60
    m.poll(half + secs(60));
    drained(&mut m);
    let reclaim = half + secs(90) + RECLAIM_GRACE;
    m.poll(reclaim - NS);
    assert_eq!((m.state(), m.trials_in_flight()), (HalfOpen, 1));
    m.poll(reclaim);
    let timeouts = m.totals()[Outcome::Timeout];
    assert_eq!(
        (m.state(), m.trials_in_flight(), timeouts),
        (HalfOpen, 0, 1)
    );
    assert!(drained(&mut m).is_empty());
}

#[test]
fn hung_trial_of_an_earlier_generation_is_counted_without_a_transition() {
    let t0 = Instant::now();
    let cfg = CircuitBreakerConfig {
        success_threshold: 1,
        half_open_max_calls: Some(2),
        ..config()
    };
    let (mut m, half) = half_open(cfg, t0);
    let _hung = m.try_acquire(half).unwrap();
    call(&mut m, Success, half);
    assert_eq!((m.state(), m.trials_in_flight()), (Closed, 1));
    drained(&mut m);
    // Its deadline is the open timeout (no call timeout); then the grace.
    let reclaim = half + secs(60) + RECLAIM_GRACE;
    m.poll(reclaim - NS);
    assert_eq!((m.state(), m.trials_in_flight()), (Closed, 1));
    m.poll(reclaim);
    assert_eq!(
        (
            m.state(),
            m.trials_in_flight(),
            m.totals()[Outcome::Timeout]
        ),
        (Closed, 0, 1)
    );
    assert!(drained(&mut m).is_empty());
    assert_eq!(m.consecutive_failures(), 0);
}

#[test]
fn transitions_are_logged_in_order_with_generation_and_time() {
    let t0 = Instant::now();
    let mut m = machine(config(), t0);
    calls(&mut m, &[Failure; 3], t0);
    m.poll(t0 + secs(60));
    call(&mut m, Failure, t0 + secs(61));
    let back = t0 + secs(121);
    calls(&mut m, &[Success, Success], back); // lazily HALF_OPEN, then CLOSED
    m.reset(back + secs(1));
    let t = |from, to, reason, generation, at| Transition {
        from,
        to,
        reason,
        generation,
        at,
    };
    let expected = [
        t(
            Closed,
            Open,
            Reason::ConsecutiveFailures { count: 3 },
            1,
            t0,
        ),
        t(Open, HalfOpen, Reason::OpenTimeoutElapsed, 2, t0 + secs(60)),
        t(
            HalfOpen,
            Open,
            Reason::TrialFailed { outcome: Failure },
            3,
            t0 + secs(61),
        ),
        t(Open, HalfOpen, Reason::OpenTimeoutElapsed, 4, back),
        t(
            HalfOpen,
            Closed,
            Reason::TrialsSucceeded { successes: 2 },
            5,
            back,
        ),
    ];
    assert_eq!(m.drain_transitions().collect::<Vec<_>>(), expected);
    assert_eq!(m.generation(), 6);
    assert_eq!(m.drain_transitions().count(), 0);
    assert_totals_add_up(&m);
}

// ---------------------------------------------------------------- operator states

#[test]
fn forced_open_refuses_everything_and_no_timer_moves_it() {
    let t0 = Instant::now();
    let mut m = opened(config(), t0);
    m.force_open(t0 + secs(1));
    assert_eq!(drained(&mut m), [(Open, ForcedOpen, Reason::ForcedOpen)]);
    assert_eq!(m.open_until(), None, "the OPEN timer is gone");
    let far = t0 + secs(1_000_000);
    assert_eq!(m.next_deadline(far), None);
    m.poll(far);
    assert_eq!(m.state(), ForcedOpen);
    assert_eq!(
        m.try_acquire(far),
        Err(Rejection {
            refusal: Refusal::ForcedOpen,
            retry_at: None,
        })
    );
    assert_eq!(m.try_acquire_guarded(far).unwrap_err().state(), ForcedOpen);
    assert_eq!(m.totals().rejections, 2);
    assert!(drained(&mut m).is_empty());
}

#[test]
fn a_call_in_flight_when_forced_open_is_counted_and_moves_nothing() {
    let t0 = Instant::now();
    let mut m = machine(config(), t0);
    let tickets: Vec<_> = (0..3).map(|_| m.try_acquire(t0).unwrap()).collect();
    m.force_open(t0);
    let generation = m.generation();
    for ticket in tickets {
        m.record(ticket, Failure, t0);
    }
    assert_eq!((m.state(), m.generation()), (ForcedOpen, generation));
    assert_eq!(m.totals()[Failure], 3);
    assert_totals_add_up(&m);
}

#[test]
fn a_trial_in_flight_when_forced_open_keeps_its_lease_and_votes_nothing() {
    let t0 = Instant::now();
    let (mut m, half) = half_open(config(), t0);
    let guarded = m.try_acquire_guarded(half).unwrap();
    let permit = m.try_acquire(half).unwrap();
    m.force_open(half);
    assert_eq!(m.trials_in_flight(), 2, "leases outlive generations");
    m.record(guarded, Success, half);
    // The permit's trial hangs: reclaimed at its deadline as a timeout,
    // with no transition.
    let reclaim = permit.deadline().unwrap() + RECLAIM_GRACE;
    assert_eq!(m.next_deadline(half), Some(reclaim));
    m.poll(reclaim);
    assert_eq!((m.state(), m.trials_in_flight()), (ForcedOpen, 0));
    assert_eq!((m.totals()[Success], m.totals()[Timeout]), (1, 1));
    assert_eq!(
        drained(&mut m),
        [(HalfOpen, ForcedOpen, Reason::ForcedOpen)]
    );
    assert_eq!(m.next_deadline(reclaim), None);
}

#[test]
fn disabled_admits_everything_counts_it_and_never_trips() {
    let t0 = Instant::now();
    let config = CircuitBreakerConfig {
        call_timeout: Some(secs(5)),
        ..rate_config(4, 0.5, WindowConfig::Count { size: 10 })
    };
    let mut m = machine(config, t0);
    m.disable(t0);
    assert_eq!(drained(&mut m), [(Closed, Disabled, Reason::Disabled)]);
    let ticket = m.try_acquire(t0).unwrap();
    assert!(!ticket.is_trial());
    assert_eq!(
        ticket.deadline(),
        Some(t0 + secs(5)),
        "call_timeout applies"
    );
    m.record(ticket, Timeout, t0 + secs(5));
    calls(&mut m, &[Failure; 50], t0 + secs(5));
    calls(&mut m, &[Success, Panic, Ignored], t0 + secs(5));
    assert_eq!(m.state(), Disabled);
    assert_eq!(m.totals()[Failure], 50);
    assert_eq!((m.totals()[Timeout], m.totals()[Panic]), (1, 1));
    assert_eq!(m.consecutive_failures(), 0);
    assert_eq!(m.window_counts(t0 + secs(5)), (0, 0), "no window");
    let far = t0 + secs(1_000_000);
    assert_eq!(m.next_deadline(far), None, "no timer, no inactivity reset");
    m.poll(far);
    assert_eq!(m.state(), Disabled);
    assert!(drained(&mut m).is_empty());
    assert_totals_add_up(&m);
}

#[test]
fn release_returns_to_closed_in_a_new_generation_with_a_fresh_window() {
    let t0 = Instant::now();
    let mut m = machine(rate_config(4, 0.5, WindowConfig::Count { size: 10 }), t0);
    calls(&mut m, &[Failure, Success], t0);
    m.force_open(t0);
    m.disable(t0 + secs(1));
    let generation = m.generation();
    m.release(t0 + secs(2));
    assert_eq!((m.state(), m.generation()), (Closed, generation + 1));
    assert_eq!(m.window_counts(t0 + secs(2)), (0, 0));
    assert_eq!(m.entered_at(), t0 + secs(2));
    assert_eq!(
        drained(&mut m),
        [
            (Closed, ForcedOpen, Reason::ForcedOpen),
            (ForcedOpen, Disabled, Reason::Disabled),
            (Disabled, Closed, Reason::Released),
        ]
    );
    // The rules apply again from scratch: two failures are not yet four calls.
    calls(&mut m, &[Failure, Failure], t0 + secs(2));
    assert_eq!(m.state(), Closed);
}

#[test]
fn operator_changes_are_idempotent_and_release_leaves_other_states_alone() {
    let t0 = Instant::now();
    let mut m = opened(config(), t0);
    let generation = m.generation();
    m.release(t0);
    assert_eq!((m.state(), m.generation()), (Open, generation));
    m.force_open(t0);
    m.force_open(t0);
    m.disable(t0);
    m.disable(t0);
    assert_eq!(m.generation(), generation + 2);
    assert_eq!(drained(&mut m).len(), 2);
    let mut closed = machine(config(), t0);
    closed.release(t0);
    assert_eq!((closed.state(), closed.generation()), (Closed, 0));
}

#[test]
fn reset_ends_the_operator_states_too() {
    let t0 = Instant::now();
    let mut m = machine(config(), t0);
    m.force_open(t0);
    m.reset(t0);
    m.disable(t0);
    m.reset(t0);
    assert_eq!(
        drained(&mut m),
        [
            (Closed, ForcedOpen, Reason::ForcedOpen),
            (ForcedOpen, Closed, Reason::ManualReset),
            (Closed, Disabled, Reason::Disabled),
            (Disabled, Closed, Reason::ManualReset),
        ]
    );
}

// ---------------------------------------------------------------- regressions

#[test]
fn failures_of_calls_in_flight_past_reset_timeout_still_count() {
    let t0 = Instant::now();
    let cfg = CircuitBreakerConfig {
        failure_threshold: 2,
        ..config()
    };
    let mut m = machine(cfg, t0);
    let (a, b) = (m.try_acquire(t0).unwrap(), m.try_acquire(t0).unwrap());
    m.record(a, Failure, t0 + secs(200));
    // Both ran 200 s > reset_timeout. `b` in flight and `a`'s outcome are
    // activity, so no inactivity reset turns `b` stale before it reports.
    m.record(b, Failure, t0 + secs(200));
    assert_eq!(
        m.state(),
        Open,
        "two failures in a row, both while in flight"
    );
}

// Recording a ticket twice does not compile: see the `Ticket` doc test.

// ---------------------------------------------------------------- randomized

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

fn random_config(rng: &mut Rng) -> CircuitBreakerConfig {
    let min_calls = 1 + rng.below(5) as u32;
    let window = if rng.below(2) == 0 {
        WindowConfig::Count {
            size: min_calls + rng.below(6) as u32,
        }
    } else {
        let duration = secs(1 + rng.below(10));
        WindowConfig::Time {
            duration,
            buckets: 1 + rng.below(5) as u32,
        }
    };
    CircuitBreakerConfig {
        failure_threshold: 1 + rng.below(5) as u32,
        success_threshold: 1 + rng.below(3) as u32,
        timeout: secs(1 + rng.below(10)),
        failure_rate_threshold: rng.pick(&[0.25, 0.5, 0.75, 1.0]),
        min_calls,
        reset_timeout: secs(1 + rng.below(20)),
        window,
        half_open_max_calls: rng.pick(&[None, Some(1), Some(3)]),
        call_timeout: rng.pick(&[None, Some(secs(2)), Some(secs(15))]),
        critical: rng.pick(&[false, true]),
    }
}

/// What the test knows independently of the machine.
struct Model {
    now: Instant,
    /// Calls in flight, and whether each was admitted guarded.
    live: Vec<(Ticket, bool)>,
    /// Trial tickets whose slot was reclaimed.
    late: Vec<Ticket>,
    totals: CallTotals,
    state: CircuitState,
    generation: u64,
}

impl Model {
    /// Every machine call polls first, reclaiming the permits' trials that
    /// are `RECLAIM_GRACE` past their deadline (never a guarded trial).
    fn reclaim(&mut self) {
        let now = self.now;
        let (due, live): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.live)
                .into_iter()
                .partition(|(t, guarded)| {
                    !guarded
                        && t.is_trial()
                        && t.deadline().is_some_and(|d| d + RECLAIM_GRACE <= now)
                });
        self.totals[Outcome::Timeout] += due.len() as u64;
        self.late.extend(due.into_iter().map(|(t, _)| t));
        self.live = live;
    }

    fn count(&mut self, outcome: Outcome) {
        self.totals[outcome] += 1;
    }
}

fn is_legal(t: &Transition) -> bool {
    match (t.from, t.to) {
        (Closed, Open) => matches!(
            t.reason,
            Reason::ConsecutiveFailures { .. } | Reason::FailureRate { .. }
        ),
        (Open, HalfOpen) => t.reason == Reason::OpenTimeoutElapsed,
        (HalfOpen, Closed) => matches!(
            t.reason,
            Reason::TrialsSucceeded { .. } | Reason::Inactivity | Reason::ManualReset
        ),
        (HalfOpen, Open) => matches!(
            t.reason,
            Reason::TrialFailed { .. } | Reason::TrialSlotReclaimed
        ),
        (Open, Closed) => t.reason == Reason::ManualReset,
        (_, ForcedOpen) => t.reason == Reason::ForcedOpen,
        (_, Disabled) => t.reason == Reason::Disabled,
        (ForcedOpen | Disabled, Closed) => {
            matches!(t.reason, Reason::Released | Reason::ManualReset)
        }
        _ => false,
    }
}

/// What drives the state, to show an outcome changed nothing of it.
fn decision(m: &StateMachine, now: Instant) -> (CircuitState, u64, u32, u32, (u64, u64)) {
    let window = m.window_counts(now);
    (
        m.state(),
        m.generation(),
        m.consecutive_failures(),
        m.trial_successes(),
        window,
    )
}

fn check_invariants(m: &mut StateMachine, model: &mut Model, context: &str) {
    let now = model.now;
    assert_eq!(m.totals(), model.totals, "{context}");
    assert_totals_add_up(m);
    assert_eq!(m.totals().in_flight(), model.live.len() as u64, "{context}");
    let live_trials = model.live.iter().filter(|(t, _)| t.is_trial()).count();
    assert_eq!(m.trials_in_flight(), live_trials, "{context}");
    assert!(m.trials_in_flight() <= m.config().max_trial_calls() as usize);
    assert!(m.generation() >= model.generation, "{context}");
    for t in m.drain_transitions() {
        assert!(t.from != t.to && is_legal(&t), "{context}: {t:?}");
        assert_eq!(t.from, model.state, "{context}: {t:?}");
        assert!(t.generation > model.generation, "{context}: {t:?}");
        assert_eq!(t.at, now, "{context}: {t:?}");
        (model.state, model.generation) = (t.to, t.generation);
    }
    assert!(m.generation() >= model.generation, "{context}");
    assert_eq!(m.state(), model.state, "{context}");
    model.generation = m.generation();
    assert_eq!(m.open_until().is_some(), m.state() == Open, "{context}");
    // Nothing happens before the next deadline.
    let quiet = m
        .next_deadline(now)
        .map_or(now + secs(1_000_000), |d| d - NS);
    if quiet >= now {
        let mut probe = m.clone();
        probe.poll(quiet);
        assert_eq!(decision(&probe, quiet), decision(m, quiet), "{context}");
        assert_eq!(probe.totals(), m.totals(), "{context}");
    }
}

#[test]
fn random_operations_keep_the_invariants() {
    const OUTCOMES: [Outcome; 6] = [Success, Failure, Timeout, Panic, Ignored, Cancelled];
    for seed in 1..=16u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let config = random_config(&mut rng);
        let t0 = Instant::now();
        let mut m = machine(config.clone(), t0);
        let mut model = Model {
            now: t0,
            live: Vec::new(),
            late: Vec::new(),
            totals: CallTotals::default(),
            state: Closed,
            generation: 0,
        };
        for step in 0..2_000 {
            let roll = rng.below(100);
            let context = format!("seed {seed} step {step} roll {roll} {config:?}");
            let now = model.now;
            if (80..92).contains(&roll) {
                model.now += match rng.below(10) {
                    0 => m
                        .next_deadline(now)
                        .map_or(secs(1), |d| d.saturating_duration_since(now)),
                    1 => Duration::from_millis(rng.below(30_000)),
                    _ => Duration::from_millis(rng.below(2_000)),
                };
                continue;
            }
            model.reclaim();
            if roll < 40 || (roll < 75 && model.live.is_empty()) {
                // Both kinds: a permit, or a call under the circuit's guard.
                let guarded = rng.below(2) == 0;
                let admitted = if guarded {
                    m.try_acquire_guarded(now)
                } else {
                    m.try_acquire(now)
                };
                match admitted {
                    Ok(ticket) => {
                        assert_eq!(ticket.generation(), m.generation(), "{context}");
                        assert_eq!(ticket.is_trial(), m.state() == HalfOpen, "{context}");
                        assert_eq!(ticket.admitted_at(), now);
                        let timeout = config
                            .call_timeout
                            .or(ticket.is_trial().then_some(config.timeout));
                        assert_eq!(ticket.deadline(), timeout.map(|t| now + t), "{context}");
                        model.totals.calls += 1;
                        model.live.push((ticket, guarded));
                    }
                    Err(rejection) => {
                        assert_eq!(rejection.state(), m.state(), "{context}");
                        assert_eq!(rejection.retry_at, m.open_until(), "{context}");
                        assert!(!matches!(m.state(), Closed | Disabled), "{context}");
                        model.totals.rejections += 1;
                    }
                }
            } else if roll < 75 {
                let (ticket, _) = model
                    .live
                    .swap_remove(rng.below(model.live.len() as u64) as usize);
                let outcome = rng.pick(&OUTCOMES);
                m.poll(now);
                let before = decision(&m, now);
                let stale = ticket.generation() != before.1;
                m.record(ticket, outcome, now);
                model.count(outcome);
                let operator = matches!(before.0, ForcedOpen | Disabled);
                if stale || operator || matches!(outcome, Ignored | Cancelled) {
                    assert_eq!(
                        decision(&m, now),
                        before,
                        "{context}: {outcome} stale={stale}"
                    );
                }
            } else if roll < 80 {
                if let Some(late) = model.late.pop() {
                    m.poll(now);
                    let before = (decision(&m, now), m.trials_in_flight());
                    let outcome = rng.pick(&OUTCOMES);
                    m.record(late, outcome, now);
                    let after = (decision(&m, now), m.trials_in_flight());
                    assert_eq!(after, before, "{context}: late outcome");
                    // It takes the place of the timeout counted at the reclaim.
                    model.totals[Outcome::Timeout] -= 1;
                    model.count(outcome);
                }
            } else if roll < 95 {
                m.poll(now);
            } else if roll == 95 {
                m.force_open(now);
                assert_eq!(m.state(), ForcedOpen);
            } else if roll == 96 {
                m.disable(now);
                assert_eq!(m.state(), Disabled);
            } else if roll == 97 {
                m.poll(now);
                let before = m.state();
                m.release(now);
                let released = matches!(before, ForcedOpen | Disabled);
                assert_eq!(m.state(), if released { Closed } else { before });
            } else {
                m.reset(now);
                assert_eq!(m.state(), Closed);
            }
            check_invariants(&mut m, &mut model, &context);
        }
    }
}

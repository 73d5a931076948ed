//! Model-based tests of the pure state machine (issue 5, section 1).
//!
//! Random valid configs and random sequences of operations (admit a call,
//! report an outcome of any kind for any outstanding call, let time pass,
//! including exactly to the next deadline, poll, reset) drive the real
//! [`StateMachine`] and the plain [`reference::Model`] side by side. After
//! every operation every observable is compared: state, generation, each
//! admission decision and ticket, the decision counters, the window, the
//! failure rate, every total, the next deadline, the instants the machine
//! reports and the transitions it made. A divergence fails with the shrunk
//! sequence, printed one step per line.
//!
//! `PROPTEST_CASES=100000 cargo test --test model` runs a longer search.

mod reference;
mod run;
mod strategies;

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError};
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::outcome::Outcome;
use vibezen_recovery::state::CircuitState;
use vibezen_recovery::transition::{Transition, TransitionReason};

use run::{Case, Op, replay};
use strategies::{case, machine_only_case};

/// Cases per property: `PROPTEST_CASES` if set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

fn proptest_config(default_cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default_cases),
        // Counterexamples become named tests below, not files in the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(proptest_config(10_000))]

    /// The machine and the model agree after every operation.
    #[test]
    fn the_machine_matches_the_reference_model(case in case()) {
        replay(&case).map_err(TestCaseError::fail)?;
    }
}

proptest! {
    #![proptest_config(proptest_config(1_000))]

    /// Invariants of the machine alone, over longer sequences: the totals
    /// add up, no more trials than allowed hold a slot, the generation
    /// never goes back, only legal edges are taken, and nothing is due
    /// before `next_deadline`.
    #[test]
    fn the_machine_keeps_its_invariants(case in machine_only_case()) {
        run::check_invariants(&case).map_err(TestCaseError::fail)?;
    }
}

/// Whether a transition follows an edge of the rules table in
/// `docs/architecture.md`, for the reason the table gives.
pub fn is_legal(t: &Transition) -> bool {
    use CircuitState::{Closed, Disabled, ForcedOpen, HalfOpen, Open};
    use TransitionReason as R;
    match (t.from, t.to) {
        (Closed, Open) => matches!(
            t.reason,
            R::ConsecutiveFailures { .. } | R::FailureRate { .. }
        ),
        (Open, HalfOpen) => t.reason == R::OpenTimeoutElapsed,
        (HalfOpen, Closed) => matches!(
            t.reason,
            R::TrialsSucceeded { .. } | R::Inactivity | R::ManualReset
        ),
        (HalfOpen, Open) => matches!(t.reason, R::TrialFailed { .. } | R::TrialSlotReclaimed),
        (Open, Closed) => t.reason == R::ManualReset,
        (_, ForcedOpen) => t.reason == R::ForcedOpen,
        (_, Disabled) => t.reason == R::Disabled,
        (ForcedOpen | Disabled, Closed) => matches!(t.reason, R::Released | R::ManualReset),
        _ => false,
    }
}

// ------------------------------------------------------------------------
// The search reaches every rule.
// ------------------------------------------------------------------------

/// Every rule of the table, and every subtle case, fires many times in a
/// few thousand generated cases: a generator that drifted (say, timeouts
/// too long for any trial to be reclaimed) fails here, not silently.
#[test]
fn the_search_reaches_every_rule() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeMap;

    let mut runner = TestRunner::deterministic();
    let strategy = case();
    let mut fired: BTreeMap<String, u64> = BTreeMap::new();
    for _ in 0..2_000 {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let (_, model, _) = run::replay_traced(&case).unwrap();
        for (rule, times) in model.fired {
            *fired.entry(rule).or_default() += times;
        }
    }
    println!("rules fired in 2,000 cases:");
    for (rule, times) in &fired {
        println!("  {times:>6}  {rule}");
    }
    for rule in [
        "CLOSED -> OPEN: consecutive failures",
        "CLOSED -> OPEN: failure rate",
        "OPEN -> HALF_OPEN: open timeout",
        "HALF_OPEN -> CLOSED: trials succeeded",
        "HALF_OPEN -> OPEN: trial failed",
        "HALF_OPEN -> OPEN: trial slot reclaimed",
        "HALF_OPEN -> CLOSED: inactivity",
        "CLOSED -> CLOSED: inactivity",
        "CLOSED -> CLOSED: manual reset",
        "OPEN -> CLOSED: manual reset",
        "HALF_OPEN -> CLOSED: manual reset",
        "rejected while OPEN",
        "rejected: every trial slot taken",
        "late outcome of a reclaimed trial corrects the totals",
        "outcome of an earlier generation",
        "trial of an earlier generation reclaimed",
        "guarded trial kept its slot past a permit's grace",
        "CLOSED -> FORCED_OPEN: forced open",
        "HALF_OPEN -> FORCED_OPEN: forced open",
        "CLOSED -> DISABLED: disabled",
        "FORCED_OPEN -> CLOSED: released",
        "DISABLED -> CLOSED: released",
        "FORCED_OPEN -> CLOSED: manual reset",
        "rejected while FORCED_OPEN",
        "outcome in an operator state",
        "release outside an operator state",
    ] {
        let times = fired.get(rule).copied().unwrap_or(0);
        assert!(times >= 20, "{rule:?} fired only {times} times");
    }
}

// ------------------------------------------------------------------------
// Fixed sequences: edges spelled out, checked against the model and
// against what the rules say the end should be.
// ------------------------------------------------------------------------

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn fixed(config_json: &str, ops: Vec<Op>) -> Case {
    Case {
        config: CircuitBreakerConfig::from_json(config_json).expect("a valid config"),
        ops,
    }
}

/// Replays `case`, printing its trace (`--nocapture` shows it), and returns
/// the model as it ends.
#[track_caller]
fn agrees(case: Case) -> (reference::Model, std::time::Instant) {
    match run::replay_traced(&case) {
        Ok((trace, model, now)) => {
            println!("{case:?}{trace}");
            (model, now)
        }
        Err(report) => panic!("{report}"),
    }
}

use Op::{
    Acquire, AcquireGuarded, Advance, Disable, ForceOpen, JustBeforeDeadline, Poll, Record,
    Release, Reset, ToDeadline,
};
use vibezen_recovery::outcome::Outcome::{Failure, Ignored, Success, Timeout};

/// A permit's trial still unreported `RECLAIM_GRACE` (0.1 s) after its
/// deadline loses its slot: the machine reclaims it before it reads the
/// report and reopens on a timeout dated at that instant. The late outcome
/// drives nothing, but the totals count it in place of the timeout.
#[test]
fn a_permit_trial_reported_when_its_grace_ends_reopens_and_its_outcome_replaces_the_timeout() {
    let (model, now) = agrees(fixed(
        r#"{"failure_threshold": 1, "success_threshold": 1, "timeout": 1.0, "reset_timeout": 5.0}"#,
        vec![
            Acquire,
            Record(0, Failure), // OPEN at 0 s
            ToDeadline,         // 1 s
            Acquire,            // HALF_OPEN, a trial due at 2 s, reclaimed at 2.1 s
            JustBeforeDeadline, // 2.099 s
            Poll,               // still held
            ToDeadline,         // 2.1 s
            Record(0, Success), // reclaimed first, so OPEN again; the success is counted
            Acquire,            // rejected
        ],
    ));
    assert_eq!(model.state, CircuitState::Open);
    assert_eq!(model.generation, 3);
    assert_eq!(
        (
            model.totals[Outcome::Success],
            model.totals[Outcome::Timeout]
        ),
        (1, 0)
    );
    assert_eq!(model.totals.rejections, 1);
    assert_eq!(
        model.last_failure,
        Some(now),
        "the reclaim is dated at 2.1 s"
    );
}

/// A report that reaches the machine at the trial's deadline, or within
/// the grace after it, counts as what it was.
#[test]
fn a_permit_trial_reported_at_its_deadline_or_within_the_grace_counts_as_what_it_was() {
    let (model, _) = agrees(fixed(
        r#"{"failure_threshold": 1, "success_threshold": 2, "timeout": 1.0, "reset_timeout": 5.0}"#,
        vec![
            Acquire,
            Record(0, Failure), // OPEN at 0 s
            ToDeadline,         // 1 s
            Acquire,            // HALF_OPEN, trial X due at 2 s
            Acquire,            // trial Y, due at 2 s too
            Advance(ms(1_000)), // 2 s: both at their deadline
            Record(0, Success), // X: a success, 1 of 2
            JustBeforeDeadline, // 2.099 s: Y past its deadline, within the grace
            Record(0, Success), // Y: a success, 2 of 2: CLOSED
        ],
    ));
    assert_eq!(model.state, CircuitState::Closed);
    assert_eq!(model.generation, 3);
    assert_eq!(
        (
            model.totals[Outcome::Success],
            model.totals[Outcome::Timeout]
        ),
        (2, 0)
    );
}

/// A guarded trial (a `ProtectedCall`, cut off by its own guard) is never
/// reclaimed: it holds its slot, long past its deadline and the grace,
/// until its guard reports the timeout, which reopens the circuit as a
/// failed trial.
#[test]
fn a_guarded_trial_holds_its_slot_until_its_timeout_is_reported() {
    let (model, _) = agrees(fixed(
        r#"{"failure_threshold": 1, "success_threshold": 1, "timeout": 1.0, "reset_timeout": 5.0}"#,
        vec![
            Acquire,
            Record(0, Failure), // OPEN at 0 s
            ToDeadline,         // 1 s
            AcquireGuarded,     // HALF_OPEN, a trial due at 2 s; the only slot
            ToDeadline,         // nothing is due: the time stays at 1 s
            Advance(ms(1_500)), // 2.5 s: past its deadline and the grace
            Poll,               // still held: nothing to reclaim
            Acquire,            // rejected: the slot is taken
            Advance(ms(60_000)),
            Poll,               // still HALF_OPEN: a trial in flight is activity
            Record(0, Timeout), // 62.5 s: its guard reports; OPEN, the trial failed
        ],
    ));
    assert_eq!(model.state, CircuitState::Open);
    assert_eq!(model.generation, 3);
    assert_eq!(model.totals[Outcome::Timeout], 1);
    assert_eq!(model.totals.rejections, 1);
    assert!(model.in_flight.is_empty());
}

#[test]
fn a_time_window_starts_its_buckets_at_the_first_outcome_after_a_clear() {
    let (model, now) = agrees(fixed(
        r#"{"failure_threshold": 5, "min_calls": 2, "failure_rate_threshold": 0.5,
                "window": {"kind": "time", "duration": 3.0, "buckets": 3}, "reset_timeout": 60.0}"#,
        vec![
            Advance(ms(500)),
            Acquire,
            Record(0, Success), // buckets start at 0.5 s: [0.5, 1.5), [1.5, 2.5), ...
            Advance(ms(2_400)),
            Acquire,
            Record(0, Success), // 2.9 s
            Advance(ms(500)),
            Acquire,
            Record(0, Failure), // 3.4 s: the 0.5 s success is still in: 1 of 3, CLOSED
            Advance(ms(100)),
            Acquire,
            Record(0, Failure), // 3.5 s: it has left: 2 of 3, OPEN
            Reset,
            Advance(ms(1_700)),
            Acquire,
            Record(0, Failure), // 5.2 s: a new origin
            Advance(ms(2_999)),
            Poll, // 8.199 s: still in
        ],
    ));
    assert_eq!(model.state, CircuitState::Closed);
    assert_eq!(model.consecutive_failures, 1);
    assert_eq!(model.window_counts(now), (1, 1));
    assert_eq!(
        model.window_counts(now + ms(1)),
        (0, 0),
        "8.2 s: it has left"
    );
    assert_eq!(model.totals[Outcome::Failure], 3);
}

#[test]
fn stale_outcomes_count_in_totals_but_do_not_drive_the_state() {
    let (model, _) = agrees(fixed(
        r#"{"failure_threshold": 2, "success_threshold": 1, "timeout": 2.0, "reset_timeout": 30.0}"#,
        vec![
            Acquire,
            Acquire,
            Reset,              // the two calls are now of an earlier generation
            Record(0, Failure), // counted, but no failure run
            Record(0, Failure),
            Acquire,
            Acquire,
            Acquire,            // x: admitted before the circuit opens
            Record(0, Failure), // run 1
            Record(0, Failure), // run 2: OPEN
            ToDeadline,         // HALF_OPEN
            Acquire,            // the trial
            Record(0, Success), // x succeeds: counted, does not close
            Record(0, Success), // the trial succeeds: CLOSED
        ],
    ));
    assert_eq!(model.state, CircuitState::Closed);
    assert_eq!(model.generation, 4);
    assert_eq!(
        (
            model.totals[Outcome::Success],
            model.totals[Outcome::Failure]
        ),
        (2, 4)
    );
}

#[test]
fn a_trial_that_outlives_its_generation_keeps_its_slot_but_not_its_vote() {
    let (model, _) = agrees(fixed(
        r#"{"failure_threshold": 1, "success_threshold": 2, "half_open_max_calls": 2,
                "timeout": 1.0, "call_timeout": 4.0, "reset_timeout": 10.0}"#,
        vec![
            Acquire,
            Record(0, Failure), // OPEN
            ToDeadline,         // 1 s: HALF_OPEN
            Acquire,            // trial A, due at 5 s
            Acquire,            // trial B
            Record(1, Failure), // B fails: OPEN; A hangs on
            ToDeadline,         // 2 s: HALF_OPEN again
            Acquire,            // trial C; A still holds the other slot
            Acquire,            // rejected: both slots held
            Record(0, Success), // A succeeds, but was admitted two generations ago
            Acquire,            // its slot is free again: trial D
            Record(0, Success), // C: 1 of 2
            Record(0, Success), // D: 2 of 2, CLOSED
        ],
    ));
    assert_eq!(model.state, CircuitState::Closed);
    assert_eq!(model.totals.rejections, 1);
    assert_eq!(model.totals[Outcome::Success], 3);
}

#[test]
fn an_idle_half_open_circuit_closes_for_inactivity_counted_from_the_last_outcome() {
    let (model, _) = agrees(fixed(
        r#"{"failure_threshold": 1, "timeout": 1.0, "reset_timeout": 2.5}"#,
        vec![
            Acquire,
            Record(0, Failure), // OPEN
            ToDeadline,         // 1 s: HALF_OPEN
            Acquire,
            Advance(ms(500)),
            Record(0, Ignored), // 1.5 s: frees the slot, counts as activity
            JustBeforeDeadline, // 3.999 s
            Poll,               // still HALF_OPEN
            ToDeadline,         // 4 s
            Poll,               // CLOSED for inactivity
        ],
    ));
    assert_eq!(model.state, CircuitState::Closed);
    assert_eq!(model.generation, 3);
}

/// The architecture's rules table: HALF_OPEN -> CLOSED after
/// `reset_timeout` "with no call admitted, finishing or in flight". Here
/// trial A of an earlier HALF_OPEN generation is in flight until its slot
/// is reclaimed at 5.1 s (its deadline, 5 s, plus `RECLAIM_GRACE`), so the
/// circuit may not close for inactivity before 7.1 s. (Found by the model:
/// the machine once counted inactivity from the last admission or reported
/// outcome only, and closed when it reclaimed A.)
#[test]
fn a_reclaimed_trial_restarts_the_inactivity_count() {
    let case = fixed(
        r#"{"failure_threshold": 1, "success_threshold": 2, "half_open_max_calls": 2,
            "timeout": 1.0, "call_timeout": 4.0, "reset_timeout": 2.0}"#,
        vec![
            Acquire,
            Record(0, Failure), // OPEN
            ToDeadline,         // 1 s: HALF_OPEN
            Acquire,            // trial A, due at 5 s
            Acquire,            // trial B
            Record(1, Failure), // B fails: OPEN; A hangs on
            ToDeadline,         // 2 s: HALF_OPEN again
            Acquire,            // trial C
            Record(1, Success), // C: 1 of 2
            ToDeadline,         // 5.1 s: A's deadline and grace
            Poll,               // A reclaimed; the machine closes for inactivity here
        ],
    );
    let (model, _) = agrees(case);
    assert_eq!(model.state, CircuitState::HalfOpen);
}

/// Issue 9: a trial in flight when an operator forces the circuit open
/// keeps its slot, is reclaimed at its deadline as a timeout without a
/// transition, and no timer moves FORCED_OPEN; DISABLED admits everything
/// and trips on nothing; a release from either is CLOSED in a new
/// generation, and a release of an OPEN circuit does nothing.
#[test]
fn operator_states_hold_until_released_and_trials_in_flight_drive_nothing() {
    let (model, _) = agrees(fixed(
        r#"{"failure_threshold": 1, "success_threshold": 1, "timeout": 1.0, "reset_timeout": 5.0}"#,
        vec![
            Acquire,
            Record(0, Failure), // OPEN at 0 s
            Release,            // not the operator's: still OPEN
            ToDeadline,         // HALF_OPEN at 1 s
            Acquire,            // a permit's trial, due at 2 s
            ForceOpen,          // FORCED_OPEN; the trial keeps its slot
            ToDeadline,         // 2.1 s: reclaimed as a timeout, no transition
            Advance(Duration::from_secs(100)),
            Poll,
            Acquire,            // rejected
            Record(0, Success), // the late report replaces the timeout
            Disable,
            Acquire,
            Acquire,
            Record(0, Failure),
            Record(0, Failure), // nothing trips
            Release,            // CLOSED
            Acquire,
            Record(0, Failure), // OPEN again: the rules apply afresh
        ],
    ));
    assert_eq!(model.state, CircuitState::Open);
    assert_eq!(model.generation, 6);
    assert_eq!(model.totals.rejections, 1);
    assert_eq!(
        (
            model.totals[Outcome::Success],
            model.totals[Outcome::Failure],
            model.totals[Outcome::Timeout]
        ),
        (1, 4, 0)
    );
}

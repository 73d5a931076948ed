//! The fast path's shared state and its owner's side.
//!
//! A circuit that hands out a [`CircuitHandle`](crate::circuit::CircuitHandle)
//! publishes its state for callers to read without a message
//! ([`published`]) and lets them count outcomes in per-thread slots
//! ([`slots`]). [`FastPath`] is what the circuit actor keeps of it: before
//! each message it takes in what callers did ([`FastPath::sync`]), and after
//! it publishes what the state machine decided ([`FastPath::publish`]). The
//! state machine itself stays plain Rust; it is fed through its public
//! methods ([`StateMachine::trip`], [`StateMachine::absorb`],
//! [`StateMachine::record_with_run`]).

pub(crate) mod published;
pub(crate) mod slots;
pub(crate) mod thread_slot;
pub(crate) mod word;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::WindowConfig;
use crate::outcome::Outcome;
use crate::state::CircuitState;
use crate::state_machine::{Batch, StateMachine};
use crate::window::WindowCounts;

use published::{Published, RateBase};
use slots::{SlotTotals, Slots};
use word::Word;

/// The circuit actor's side of the fast path.
#[derive(Debug)]
pub(crate) struct FastPath {
    published: Arc<Published>,
    slots: Arc<Slots>,
    /// The slot totals as of the last fold.
    folded: SlotTotals,
    last_fold: Instant,
    fold_interval: Duration,
    /// The word last published, without the callers' flags.
    shown: Word,
    /// The rate base last shared: the owner is its only writer, so it
    /// compares with this copy and takes the lock only to change it.
    shared: RateBase,
    /// When a fold last found something counted.
    last_counted: Instant,
    /// CLOSED with nothing counted for a fold interval: no fold is due
    /// until a caller counts something and wakes the circuit.
    dormant: bool,
}

impl FastPath {
    /// Starts publishing `machine`'s state.
    pub(crate) fn new(machine: &StateMachine, now: Instant) -> Self {
        let published = Published::new(
            machine.status(),
            machine.generation(),
            machine.consecutive_failures(),
            now,
        );
        let mut fast = FastPath {
            shown: published.word(),
            published: Arc::new(published),
            slots: Arc::new(Slots::default()),
            folded: SlotTotals::default(),
            last_fold: now,
            fold_interval: fold_interval(&machine.config().window),
            shared: RateBase::default(),
            dormant: false,
            last_counted: now,
        };
        fast.published.publish(fast.shown, machine.open_until());
        fast.share_rate_base(machine, now);
        fast
    }

    pub(crate) fn published(&self) -> &Arc<Published> {
        &self.published
    }

    pub(crate) fn slots(&self) -> &Arc<Slots> {
        &self.slots
    }

    /// Brings `machine` up to date with what callers did since the last
    /// message: a trip a caller proposed, then everything they counted.
    ///
    /// A CLOSED circuit whose callers counted nothing for a whole fold
    /// interval goes dormant: it arms no fold timer, and the first caller
    /// to count something wakes it (an idle circuit does not wake every
    /// second to find nothing). Any message wakes it too.
    pub(crate) fn sync(&mut self, machine: &mut StateMachine, now: Instant) {
        if let Some(trip) = self.published.take_trip() {
            machine.trip(trip.generation, trip.reason, trip.at, now);
        }
        let counted = self.fold(machine, now);
        if self.dormant {
            self.published.wake();
            self.dormant = false;
        } else if !counted
            && machine.state() == CircuitState::Closed
            && now >= self.last_counted + self.fold_interval
        {
            self.published.fall_asleep();
            // A caller that counted before it could see the mark is in this
            // fold; one that saw it wakes the circuit.
            if self.fold(machine, now) {
                self.published.wake();
            } else {
                self.dormant = true;
            }
        }
    }

    /// Takes in what callers counted since the last fold, and says whether
    /// there was anything. Fresh outcomes belong to the generation of the
    /// word they were counted under, which is the one last published.
    fn fold(&mut self, machine: &mut StateMachine, now: Instant) -> bool {
        let totals = self.slots.totals();
        let new = totals.since(&self.folded);
        if new == SlotTotals::default() {
            self.last_fold = now;
            return false;
        }
        self.folded = totals;
        self.last_fold = now;
        self.last_counted = now;
        let generation = self.shown.generation();
        machine.absorb(
            Batch {
                generation,
                admitted: new.admitted,
                rejections: new.rejections,
                ended: new.ended(),
                window: WindowCounts::of(&new.fresh),
                consecutive_failures: self.published.consecutive_failures(generation),
            },
            now,
        );
        true
    }

    /// Publishes what `machine` decided. A new generation is published only
    /// after a fold, so that what callers counted in the old one stays out
    /// of the new window.
    pub(crate) fn publish(&mut self, machine: &mut StateMachine, now: Instant) {
        let word = Word::new(machine.status(), machine.generation());
        if word != self.shown {
            if word.generation() != self.shown.generation() {
                self.fold(machine, now);
            }
            // The new word carries no dormant mark: awake until a fold
            // finds nothing again.
            self.published.publish(word, machine.open_until());
            self.shown = word;
            self.dormant = false;
        }
        self.share_rate_base(machine, now);
    }

    /// Tells callers what the window holds, so that a failing caller can
    /// estimate the failure rate without asking the actor.
    fn share_rate_base(&mut self, machine: &StateMachine, now: Instant) {
        if machine.state() != CircuitState::Closed {
            return;
        }
        let (calls, failures) = machine.window_counts(now);
        let base = RateBase {
            generation: machine.generation(),
            window: WindowCounts { calls, failures },
            folded: WindowCounts::of(&self.folded.fresh),
        };
        if base != self.shared {
            self.published.set_rate_base(base);
            self.shared = base;
        }
    }

    /// Counts an outcome the actor recorded itself into the run callers
    /// share, so that "consecutive" spans every path: the run's new length,
    /// or `None` if `generation`'s run is over or the outcome is not judged.
    pub(crate) fn count_run(&self, generation: u64, outcome: Outcome) -> Option<u32> {
        match outcome {
            Outcome::Success => self.published.run_success(generation),
            outcome if outcome.is_failure() => self.published.run_failure(generation),
            _ => None,
        }
    }

    /// When the next fold is due: while CLOSED and awake, so that the rate
    /// rule (and a time window's buckets) see what callers counted. Other
    /// states have no rule that callers' counts feed (DISABLED keeps no
    /// window, and its "no timer runs" includes this one): what callers
    /// counted is folded in when the next message comes, so the totals a
    /// [`Stats`](crate::circuit::Stats) reads are exact all the same.
    pub(crate) fn next_fold(&self, machine: &StateMachine) -> Option<Instant> {
        (machine.state() == CircuitState::Closed && !self.dormant)
            .then(|| self.last_fold + self.fold_interval)
    }

    /// The circuit is gone: callers are told so.
    pub(crate) fn stop(&self) {
        self.published.mark_stopped();
    }
}

/// How often to fold while CLOSED: every bucket of a time window (so that
/// outcomes land in the right bucket), every second for a count window (so
/// that a success that brings the window to `min_calls` is noticed within a
/// second).
fn fold_interval(window: &WindowConfig) -> Duration {
    match *window {
        WindowConfig::Time { duration, buckets } => {
            (duration / buckets).clamp(Duration::from_millis(10), Duration::from_secs(1))
        }
        WindowConfig::Count { .. } => Duration::from_secs(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CircuitBreakerConfig;
    use crate::fast_path::slots::Count;

    /// Issue 15, race 2: a call admitted before a reset that fails after it
    /// is counted in the totals and never in the new window. Its ending is
    /// one store (into the stale counters), so no fold can catch it half
    /// counted; it used to be two (the failure, then a stale mark), and a
    /// fold between them put the old generation's failure into the new
    /// window for good.
    #[test]
    fn a_stale_failure_is_counted_once_and_never_in_the_new_window() {
        let t0 = Instant::now();
        let config = CircuitBreakerConfig {
            failure_threshold: 1_000,
            min_calls: 1,
            failure_rate_threshold: 1.0,
            ..Default::default()
        };
        let mut machine = StateMachine::new(config, t0).unwrap();
        let mut fast = FastPath::new(&machine, t0);
        fast.slots().add(Count::Admitted);
        machine.reset(t0);
        fast.publish(&mut machine, t0);
        // The call ends after the reset: one store.
        fast.slots().add(Count::Stale(Outcome::Failure));
        fast.sync(&mut machine, t0);
        assert_eq!(machine.window_counts(t0), (0, 0));
        assert_eq!(machine.totals()[Outcome::Failure], 1);
        assert_eq!(machine.totals().in_flight(), 0);
        assert_eq!(machine.state(), CircuitState::Closed);
        fast.sync(&mut machine, t0);
        assert_eq!(machine.totals()[Outcome::Failure], 1, "counted once");
    }

    /// The fresh outcomes of the published generation do enter its window.
    #[test]
    fn a_fresh_failure_enters_the_window_of_its_generation() {
        let t0 = Instant::now();
        let mut machine = StateMachine::new(CircuitBreakerConfig::default(), t0).unwrap();
        let mut fast = FastPath::new(&machine, t0);
        fast.slots().add(Count::Admitted);
        fast.slots().add(Count::Fresh(Outcome::Failure));
        fast.sync(&mut machine, t0);
        assert_eq!(machine.window_counts(t0), (1, 1));
    }

    /// Issue 15: an idle CLOSED circuit does not fold on a timer. After a
    /// fold interval with nothing counted it is dormant (no fold due, the
    /// mark published); the first caller that counts clears the mark (and
    /// alone would send the wake), and the next sync folds its count in and
    /// keeps the circuit awake.
    #[test]
    fn an_idle_circuit_goes_dormant_and_the_first_count_wakes_it() {
        let t0 = Instant::now();
        let mut machine = StateMachine::new(CircuitBreakerConfig::default(), t0).unwrap();
        let mut fast = FastPath::new(&machine, t0);
        let interval = fast.fold_interval;
        fast.sync(&mut machine, t0 + interval / 2);
        assert!(!fast.dormant, "not a whole interval yet");
        assert!(fast.next_fold(&machine).is_some());

        fast.sync(&mut machine, t0 + interval);
        assert!(fast.dormant);
        assert_eq!(fast.next_fold(&machine), None, "no fold timer");
        assert!(fast.published().word().is_dormant());
        assert!(fast.published().word().admits(), "a dormant circuit admits");

        // A caller counts; the first to clear the mark is the one to wake.
        fast.slots().add(Count::Admitted);
        fast.slots().add(Count::Fresh(Outcome::Success));
        assert!(fast.published().wake());
        assert!(!fast.published().wake());
        let woken = t0 + interval * 5;
        fast.sync(&mut machine, woken);
        assert!(!fast.dormant);
        assert_eq!(fast.next_fold(&machine), Some(woken + interval));
        assert_eq!(machine.totals()[Outcome::Success], 1);
        assert_eq!(machine.window_counts(woken), (1, 0));
    }

    /// A count that lands while the circuit falls asleep is in its last
    /// fold: the circuit marks itself dormant before that fold, and stays
    /// awake if it finds anything.
    #[test]
    fn a_count_that_races_the_fall_asleep_keeps_the_circuit_awake() {
        let t0 = Instant::now();
        let mut machine = StateMachine::new(CircuitBreakerConfig::default(), t0).unwrap();
        let mut fast = FastPath::new(&machine, t0);
        let interval = fast.fold_interval;
        // The mark is set first; the caller had read the word before it.
        fast.published().fall_asleep();
        fast.slots().add(Count::Admitted);
        assert!(fast.fold(&mut machine, t0 + interval));
        assert_eq!(machine.totals().calls, 1);
    }

    /// Issue 9: DISABLED is published so that callers admit from the word
    /// with the CLOSED mask; what they count lands in the totals, never in a
    /// window, and the rulebook lets no failure propose a trip.
    #[test]
    fn a_disabled_circuit_admits_from_the_word_and_counts_without_a_window() {
        let t0 = Instant::now();
        let mut machine = StateMachine::new(CircuitBreakerConfig::default(), t0).unwrap();
        let mut fast = FastPath::new(&machine, t0);
        machine.disable(t0);
        fast.publish(&mut machine, t0);
        let word = fast.published().word();
        assert!(word.admits());
        assert_eq!(word.state(), CircuitState::Disabled);
        assert_eq!(fast.next_fold(&machine), None, "no timer runs");
        for _ in 0..10 {
            fast.slots().add(Count::Admitted);
            fast.slots().add(Count::Fresh(Outcome::Failure));
        }
        assert_eq!(fast.published().run_failure(word.generation()), None);
        fast.sync(&mut machine, t0);
        assert_eq!(machine.totals()[Outcome::Failure], 10);
        assert_eq!(machine.window_counts(t0), (0, 0));
        assert_eq!(machine.state(), CircuitState::Disabled);
        assert!(!fast.published().word().is_dormant(), "only CLOSED sleeps");
    }

    /// FORCED_OPEN is refused from the word, by the rulebook, with its own
    /// refusal.
    #[test]
    fn a_forced_open_word_refuses_by_the_rulebook() {
        let t0 = Instant::now();
        let mut machine = StateMachine::new(CircuitBreakerConfig::default(), t0).unwrap();
        let mut fast = FastPath::new(&machine, t0);
        machine.force_open(t0);
        fast.publish(&mut machine, t0);
        let word = fast.published().word();
        assert!(!word.admits());
        assert_eq!(
            machine.rules().admission(word.status()),
            crate::rules::Admission::Refuse(crate::rules::Refusal::ForcedOpen)
        );
        assert_eq!(fast.published().open_until_nanos(), 0, "no retry time");
    }

    /// A caller's trip is not lost to the dormant mark coming or going
    /// between its read of the word and its compare-and-swap.
    #[test]
    fn a_trip_proposed_across_the_dormant_mark_is_taken() {
        let t0 = Instant::now();
        let mut machine = StateMachine::new(CircuitBreakerConfig::default(), t0).unwrap();
        let mut fast = FastPath::new(&machine, t0);
        let seen = fast.published().word();
        fast.sync(&mut machine, t0 + fast.fold_interval);
        assert!(fast.published().word().is_dormant());
        let reason = crate::transition::TransitionReason::ConsecutiveFailures { count: 5 };
        assert!(fast.published().propose_trip(seen, reason, t0));
        assert!(fast.published().word().is_pending());
        fast.sync(&mut machine, t0 + fast.fold_interval);
        assert_eq!(machine.state(), CircuitState::Open);
    }
}

//! The state word: a circuit's state, generation and flags in one atomic
//! value, so that a caller decides admission with one load.

use crate::rules::Status;
use crate::state::CircuitState;

/// CLOSED 0, OPEN 1, HALF_OPEN 2, FORCED_OPEN 3; DISABLED is 0 with the
/// [`DISABLED`] bit, so that the admit mask needs no change.
const STATE_MASK: u64 = 0b11;
const FORCED_OPEN: u64 = 0b11;
/// A caller crossed a threshold; the transition to OPEN is on its way.
const PENDING: u64 = 0b100;
/// The circuit actor is gone.
const STOPPED: u64 = 0b1000;
/// HALF_OPEN with every trial slot taken.
const TRIALS_TAKEN: u64 = 0b1_0000;
/// CLOSED, and the circuit folds no more until a caller counts something:
/// the first caller to see this clears it and wakes the circuit.
pub(super) const DORMANT: u64 = 0b10_0000;
/// DISABLED by an operator: admitted by the same one-mask test as CLOSED
/// (the bit is outside the mask), counted like CLOSED calls; the rulebook
/// never lets its failures trip it. Only with state bits 0.
const DISABLED: u64 = 0b100_0000;
const GENERATION_SHIFT: u32 = 7;

/// A decoded state word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(pub(super) u64);

impl Word {
    /// The word for `status` in `generation` (never pending: only a caller
    /// that crosses a threshold sets that, by compare-and-swap).
    pub(crate) fn new(status: Status, generation: u64) -> Self {
        let state = match status.state {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
            CircuitState::ForcedOpen => FORCED_OPEN,
            CircuitState::Disabled => DISABLED,
        };
        let taken = if status.state == CircuitState::HalfOpen && !status.trial_slot_free {
            TRIALS_TAKEN
        } else {
            0
        };
        Word(state | taken | (generation << GENERATION_SHIFT))
    }

    /// What [`Rules::admission`](crate::rules::Rules::admission) looks at.
    #[inline]
    pub(crate) fn status(self) -> Status {
        Status {
            state: self.state(),
            trip_pending: self.0 & PENDING != 0,
            trial_slot_free: self.0 & TRIALS_TAKEN == 0,
        }
    }

    #[inline]
    pub(crate) fn state(self) -> CircuitState {
        match self.0 & STATE_MASK {
            0 if self.0 & DISABLED != 0 => CircuitState::Disabled,
            0 => CircuitState::Closed,
            1 => CircuitState::Open,
            2 => CircuitState::HalfOpen,
            _ => CircuitState::ForcedOpen,
        }
    }

    #[inline]
    pub(crate) fn generation(self) -> u64 {
        self.0 >> GENERATION_SHIFT
    }

    /// The one-mask test for [`Admission::Admit`](crate::rules::Admission::Admit)
    /// on a live circuit: CLOSED with no trip pending, or DISABLED. A test
    /// proves it agrees with the rulebook for every word.
    #[inline]
    pub(crate) fn admits(self) -> bool {
        self.0 & (STATE_MASK | PENDING | STOPPED) == 0
    }

    #[inline]
    pub(crate) fn is_pending(self) -> bool {
        self.0 & PENDING != 0
    }

    #[inline]
    pub(crate) fn is_stopped(self) -> bool {
        self.0 & STOPPED != 0
    }

    #[inline]
    pub(crate) fn is_dormant(self) -> bool {
        self.0 & DORMANT != 0
    }

    /// The word as the owner published it, whether or not it has gone
    /// dormant since.
    pub(super) fn awake(self) -> Word {
        Word(self.0 & !DORMANT)
    }

    pub(super) fn pending(self) -> Word {
        Word(self.0 | PENDING)
    }

    pub(super) fn stopped(self) -> Word {
        Word(self.0 | STOPPED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CircuitBreakerConfig;
    use crate::rules::{Admission, Rules};

    #[test]
    fn the_admit_mask_agrees_with_the_rulebook_for_every_word() {
        let rules = Rules::new(&CircuitBreakerConfig::default());
        for bits in 0..(1u64 << GENERATION_SHIFT) {
            for generation in [0, 1, 7, 1 << 40] {
                let word = Word(bits | (generation << GENERATION_SHIFT));
                if word.0 & DISABLED != 0 && word.0 & STATE_MASK != 0 {
                    continue; // DISABLED is only encoded with state bits 0
                }
                let by_rules = rules.admission(word.status()) == Admission::Admit;
                assert_eq!(
                    word.admits(),
                    by_rules && !word.is_stopped(),
                    "{bits:#b} in generation {generation}"
                );
                assert_eq!(word.generation(), generation);
            }
        }
    }

    #[test]
    fn a_new_word_round_trips_its_status() {
        for state in [
            CircuitState::Closed,
            CircuitState::Open,
            CircuitState::HalfOpen,
            CircuitState::ForcedOpen,
            CircuitState::Disabled,
        ] {
            for trial_slot_free in [true, false] {
                let status = Status {
                    state,
                    trip_pending: false,
                    trial_slot_free: trial_slot_free || state != CircuitState::HalfOpen,
                };
                assert_eq!(Word::new(status, 42).status(), status);
            }
        }
    }
}

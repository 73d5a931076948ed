//! Running a case: the operations, replaying them through the machine and
//! the model, and comparing every observable after each one.

use std::fmt::{self, Write as _};
use std::time::{Duration, Instant};

use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::outcome::Outcome;
use vibezen_recovery::state::CircuitState;
use vibezen_recovery::state_machine::{Rejection, StateMachine, Ticket};
use vibezen_recovery::transition::Transition;

use crate::reference::{Call, Model};

/// One step of a case.
#[derive(Clone, Copy, PartialEq)]
pub enum Op {
    /// Ask for a permit (`try_acquire`): a trial's slot is reclaimed
    /// `RECLAIM_GRACE` after its deadline if it has not reported.
    Acquire,
    /// Ask to run a call under the circuit's guard (`try_acquire_guarded`):
    /// a trial's slot is never reclaimed, only freed by its outcome.
    AcquireGuarded,
    /// Report this outcome for the outstanding call at this index (modulo
    /// how many there are; the oldest first). Calls whose trial slot was
    /// reclaimed stay outstanding, so their late outcomes are reported too.
    Record(u8, Outcome),
    /// Let time pass.
    Advance(Duration),
    /// Let time pass exactly to `next_deadline` (nothing if there is none).
    ToDeadline,
    /// Let time pass to one millisecond before `next_deadline`.
    JustBeforeDeadline,
    /// Apply what is due.
    Poll,
    /// `Reset`.
    Reset,
    /// `ForceOpen`.
    ForceOpen,
    /// `Disable`.
    Disable,
    /// `Release`.
    Release,
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Acquire => f.write_str("acquire"),
            Op::AcquireGuarded => f.write_str("acquire guarded"),
            Op::Record(pick, outcome) => write!(f, "record #{pick} {outcome}"),
            Op::Advance(by) => write!(f, "advance {} s", by.as_secs_f64()),
            Op::ToDeadline => f.write_str("advance to the next deadline"),
            Op::JustBeforeDeadline => f.write_str("advance to 1 ms before the next deadline"),
            Op::Poll => f.write_str("poll"),
            Op::Reset => f.write_str("reset"),
            Op::ForceOpen => f.write_str("force open"),
            Op::Disable => f.write_str("disable"),
            Op::Release => f.write_str("release"),
        }
    }
}

/// A config and the operations to run on it.
#[derive(Clone)]
pub struct Case {
    pub config: CircuitBreakerConfig,
    pub ops: Vec<Op>,
}

/// One line per operation, so a shrunk counterexample reads as a script.
impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = serde_json::to_string(&self.config).map_err(|_| fmt::Error)?;
        writeln!(f, "\nconfig: {config}")?;
        for (step, op) in self.ops.iter().enumerate() {
            writeln!(f, "  {step:>3}: {op:?}")?;
        }
        Ok(())
    }
}

/// The machine and the model side by side, with the calls outstanding.
struct Pair {
    t0: Instant,
    now: Instant,
    machine: StateMachine,
    model: Model,
    /// Outstanding calls, oldest first: the machine's ticket and the model's.
    tickets: Vec<(Ticket, Call)>,
}

/// Replays `case` through the machine and the model; on the first
/// divergence returns a report with the steps so far and what differs.
pub fn replay(case: &Case) -> Result<(), String> {
    replay_traced(case).map(drop)
}

/// As [`replay`], returning the steps (with the state after each), the
/// model as it ends and the instant it ends at.
pub fn replay_traced(case: &Case) -> Result<(String, Model, Instant), String> {
    let t0 = Instant::now();
    let machine = StateMachine::new(case.config.clone(), t0)
        .map_err(|err| format!("the generated config is invalid: {err}"))?;
    let mut pair = Pair {
        t0,
        now: t0,
        machine,
        model: Model::new(case.config.clone(), t0),
        tickets: Vec::new(),
    };
    let mut trace = String::new();
    for (step, &op) in case.ops.iter().enumerate() {
        let outcome = pair.step(op).and_then(|()| pair.compare());
        let _ = writeln!(
            trace,
            "  {step:>3}: {:<44} -> {}",
            format!("{op:?}"),
            pair.summary()
        );
        if let Err(difference) = outcome {
            let config = serde_json::to_string(&case.config).unwrap_or_default();
            return Err(format!(
                "machine and model diverge at step {step} ({op:?}): {difference}\n\
                 config: {config}\nsteps (state after each, by the model):\n{trace}"
            ));
        }
    }
    Ok((trace, pair.model, pair.now))
}

impl Pair {
    fn at(&self, instant: Instant) -> String {
        match instant.checked_duration_since(self.t0) {
            Some(after) => format!("{} s", after.as_secs_f64()),
            None => format!("-{} s", (self.t0 - instant).as_secs_f64()),
        }
    }

    fn at_opt(&self, instant: Option<Instant>) -> String {
        instant.map_or_else(|| "none".to_owned(), |at| self.at(at))
    }

    fn summary(&self) -> String {
        let model = &self.model;
        format!(
            "t={} {:?} gen {} run {} trial successes {} slots held {} window {:?} outstanding {}",
            self.at(self.now),
            model.state,
            model.generation,
            model.consecutive_failures,
            model.trial_successes,
            model.trials_in_flight(),
            model.window_counts(self.now),
            self.tickets.len(),
        )
    }

    fn step(&mut self, op: Op) -> Result<(), String> {
        let now = self.now;
        match op {
            Op::Acquire | Op::AcquireGuarded => {
                let real = admit(&mut self.machine, op, now);
                let expected = self.model.acquire(now, op == Op::AcquireGuarded);
                match (real, expected) {
                    (Ok(ticket), Ok(call)) => {
                        self.compare_ticket(&ticket, &call)?;
                        self.tickets.push((ticket, call));
                    }
                    (Err(real), Err(expected)) => self.compare_rejection(real, expected)?,
                    (real, expected) => {
                        return Err(format!(
                            "admission: machine {}, model {}",
                            self.decision(&real),
                            self.decision(&expected)
                        ));
                    }
                }
            }
            Op::Record(pick, outcome) => {
                if !self.tickets.is_empty() {
                    let index = usize::from(pick) % self.tickets.len();
                    let (ticket, call) = self.tickets.remove(index);
                    self.machine.record(ticket, outcome, now);
                    self.model.record(call.id, outcome, now);
                }
            }
            Op::Advance(by) => self.now += by,
            Op::ToDeadline => {
                if let Some(deadline) = self.model.next_deadline(now) {
                    self.now = self.now.max(deadline);
                }
            }
            Op::JustBeforeDeadline => {
                if let Some(deadline) = self.model.next_deadline(now) {
                    self.now = self.now.max(deadline - Duration::from_millis(1));
                }
            }
            Op::Poll => {
                self.machine.poll(now);
                self.model.catch_up(now);
            }
            Op::Reset => {
                self.machine.reset(now);
                self.model.reset(now);
            }
            Op::ForceOpen => {
                self.machine.force_open(now);
                self.model.force_open(now);
            }
            Op::Disable => {
                self.machine.disable(now);
                self.model.disable(now);
            }
            Op::Release => {
                self.machine.release(now);
                self.model.release(now);
            }
        }
        Ok(())
    }

    fn decision<T, U: fmt::Debug>(&self, decision: &Result<T, U>) -> String {
        match decision {
            Ok(_) => "admitted".to_owned(),
            Err(rejection) => format!("rejected ({rejection:?})"),
        }
    }

    fn compare_ticket(&self, ticket: &Ticket, call: &Call) -> Result<(), String> {
        let real = (
            ticket.generation(),
            ticket.is_trial(),
            self.at(ticket.admitted_at()),
            self.at_opt(ticket.deadline()),
        );
        let expected = (
            call.generation,
            call.trial,
            self.at(call.admitted_at),
            self.at_opt(call.deadline),
        );
        same(
            "ticket (generation, trial, admitted at, deadline)",
            real,
            expected,
        )
    }

    fn compare_rejection(&self, real: Rejection, expected: Rejection) -> Result<(), String> {
        same(
            "rejection (state, retry at)",
            (real.state(), self.at_opt(real.retry_at)),
            (expected.state(), self.at_opt(expected.retry_at)),
        )
    }

    /// Every observable of the machine against the model, as of `now`.
    fn compare(&mut self) -> Result<(), String> {
        let now = self.now;
        let (machine, model) = (&self.machine, &self.model);
        same("state", machine.state(), model.state)?;
        same("generation", machine.generation(), model.generation)?;
        same(
            "consecutive failures",
            machine.consecutive_failures(),
            model.consecutive_failures,
        )?;
        same(
            "trial successes",
            machine.trial_successes(),
            model.trial_successes,
        )?;
        same(
            "trials in flight",
            machine.trials_in_flight(),
            model.trials_in_flight(),
        )?;
        same(
            "window (calls, failures)",
            machine.window_counts(now),
            model.window_counts(now),
        )?;
        same(
            "failure rate",
            machine.failure_rate(now),
            model.failure_rate(now),
        )?;
        same("totals", machine.totals(), model.totals)?;
        same(
            "calls in flight",
            machine.totals().in_flight(),
            model.in_flight.len() as u64,
        )?;
        same(
            "next deadline",
            self.at_opt(machine.next_deadline(now)),
            self.at_opt(model.next_deadline(now)),
        )?;
        same(
            "entered at",
            self.at(machine.entered_at()),
            self.at(model.entered_at),
        )?;
        same(
            "open until",
            self.at_opt(machine.open_until()),
            self.at_opt(model.open_until),
        )?;
        same(
            "last failure",
            self.at_opt(machine.last_failure()),
            self.at_opt(model.last_failure),
        )?;
        let real: Vec<Transition> = self.machine.drain_transitions().collect();
        let expected = self.model.drain_transitions();
        same(
            "transitions (from, to, reason, generation, at)",
            self.transitions(&real),
            self.transitions(&expected),
        )
    }

    fn transitions(&self, transitions: &[Transition]) -> Vec<String> {
        transitions
            .iter()
            .map(|t| {
                format!(
                    "{} -> {} ({:?}) gen {} at {}",
                    t.from,
                    t.to,
                    t.reason,
                    t.generation,
                    self.at(t.at)
                )
            })
            .collect()
    }
}

fn same<T: PartialEq + fmt::Debug>(what: &str, machine: T, model: T) -> Result<(), String> {
    if machine == model {
        Ok(())
    } else {
        Err(format!("{what}: machine {machine:?}, model {model:?}"))
    }
}

/// `try_acquire` for `Acquire`, `try_acquire_guarded` for `AcquireGuarded`.
fn admit(machine: &mut StateMachine, op: Op, now: Instant) -> Result<Ticket, Rejection> {
    if op == Op::AcquireGuarded {
        machine.try_acquire_guarded(now)
    } else {
        machine.try_acquire(now)
    }
}

/// Runs `case` through the machine alone and checks its invariants after
/// every operation.
pub fn check_invariants(case: &Case) -> Result<(), String> {
    let t0 = Instant::now();
    let mut machine = StateMachine::new(case.config.clone(), t0)
        .map_err(|err| format!("the generated config is invalid: {err}"))?;
    let max_trials = case.config.max_trial_calls() as usize;
    let mut now = t0;
    let mut tickets: Vec<Ticket> = Vec::new();
    let mut state = CircuitState::Closed;
    let mut generation = 0;
    for (step, &op) in case.ops.iter().enumerate() {
        let fail = |now: Instant, what: String| {
            Err(format!("step {step} ({op:?}) at {:?}: {what}", now - t0))
        };
        match op {
            Op::Acquire | Op::AcquireGuarded => match admit(&mut machine, op, now) {
                Ok(ticket) => {
                    if ticket.is_trial() != (machine.state() == CircuitState::HalfOpen) {
                        return fail(now, format!("{ticket:?} admitted in {:?}", machine.state()));
                    }
                    tickets.push(ticket);
                }
                Err(rejection)
                    if matches!(
                        machine.state(),
                        CircuitState::Closed | CircuitState::Disabled
                    ) =>
                {
                    return fail(
                        now,
                        format!("{} rejected a call: {rejection:?}", machine.state()),
                    );
                }
                Err(_) => {}
            },
            Op::Record(pick, outcome) => {
                if !tickets.is_empty() {
                    let ticket = tickets.remove(usize::from(pick) % tickets.len());
                    machine.record(ticket, outcome, now);
                } else {
                    machine.poll(now);
                }
            }
            Op::Advance(by) => now += by,
            Op::ToDeadline => now = machine.next_deadline(now).map_or(now, |d| d.max(now)),
            Op::JustBeforeDeadline => {
                now = machine
                    .next_deadline(now)
                    .map_or(now, |d| (d - Duration::from_millis(1)).max(now));
            }
            Op::Poll => machine.poll(now),
            Op::Reset => machine.reset(now),
            Op::ForceOpen => machine.force_open(now),
            Op::Disable => machine.disable(now),
            Op::Release => machine.release(now),
        }

        let totals = machine.totals();
        let finished = totals.outcomes.total();
        if totals.calls != finished + totals.in_flight() || finished > totals.calls {
            return fail(now, format!("totals do not add up: {totals:?}"));
        }
        if machine.trials_in_flight() > max_trials {
            return fail(
                now,
                format!(
                    "{} trials hold a slot; at most {max_trials} may",
                    machine.trials_in_flight()
                ),
            );
        }
        if machine.generation() < generation {
            return fail(
                now,
                format!(
                    "generation went back from {generation} to {}",
                    machine.generation()
                ),
            );
        }
        for transition in machine.drain_transitions() {
            if !crate::is_legal(&transition) || transition.from != state {
                return fail(
                    now,
                    format!("illegal transition from {state:?}: {transition:?}"),
                );
            }
            if transition.generation <= generation || transition.at > now {
                return fail(
                    now,
                    format!(
                        "transition out of order after generation {generation}: {transition:?}"
                    ),
                );
            }
            (state, generation) = (transition.to, transition.generation);
        }
        if machine.state() != state || machine.generation() < generation {
            return fail(
                now,
                format!(
                    "state {:?} gen {} without a transition from {state:?} gen {generation}",
                    machine.state(),
                    machine.generation()
                ),
            );
        }
        generation = machine.generation();
        if (machine.state() == CircuitState::Open) != machine.open_until().is_some() {
            return fail(
                now,
                format!(
                    "open_until {:?} in {:?}",
                    machine.open_until(),
                    machine.state()
                ),
            );
        }
        // Every operation but letting time pass applies what is due, so
        // the next deadline is then in the future.
        let applied = !matches!(op, Op::Advance(_) | Op::ToDeadline | Op::JustBeforeDeadline);
        if applied && machine.next_deadline(now).is_some_and(|d| d <= now) {
            return fail(now, "a deadline was left due".to_owned());
        }
        // Nothing is due before the next deadline: a copy polled just
        // before it changes nothing.
        if let Some(deadline) = machine.next_deadline(now) {
            let quiet = deadline - Duration::from_nanos(1);
            if quiet > now {
                let mut copy = machine.clone();
                copy.poll(quiet);
                let before = (machine.state(), machine.generation(), machine.totals());
                let after = (copy.state(), copy.generation(), copy.totals());
                if before != after {
                    return fail(
                        now,
                        format!(
                            "something happened before next_deadline {:?}: {before:?} -> {after:?}",
                            deadline - t0
                        ),
                    );
                }
            }
        }
    }
    Ok(())
}

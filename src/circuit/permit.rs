//! The two-step permit path: acquire, run the work yourself, report.

use std::fmt;

use actix::clock::Instant;
use actix::{Addr, AsyncContext, Context, Handler, Message};

use super::{CircuitBreaker, CircuitBreakerOpenError};
use crate::classifier::Classifier;
use crate::outcome::{Classification, Outcome};
use crate::rules::Rules;
use crate::state_machine::Ticket;

/// Asks a circuit for a [`Permit`] to make one call on the caller's own task.
///
/// For work that is not `Send` (it holds an `Rc`, say) or that blocks: the
/// circuit only decides admission and records the outcome, while the work
/// runs wherever the caller is.
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let breaker = CircuitBreaker::new("knowledge_graph", CircuitBreakerConfig::default())?.start();
/// let permit = breaker.send(Acquire).await??;
/// let not_send = std::rc::Rc::new(41);
/// let answer = *not_send + 1;
/// permit.success();
/// assert_eq!(answer, 42);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<Permit, CircuitBreakerOpenError>")]
pub struct Acquire;

impl Handler<Acquire> for CircuitBreaker {
    type Result = Result<Permit, CircuitBreakerOpenError>;

    fn handle(&mut self, _: Acquire, ctx: &mut Context<Self>) -> Self::Result {
        let ticket = self.admit(ctx, false)?;
        Ok(Permit {
            circuit: ctx.address(),
            ticket: Some(ticket),
        })
    }
}

/// A fast-path handle's HALF_OPEN trial asks for its permit: the call runs
/// under the handle's own guard, which cuts it off at the deadline and
/// reports, so the circuit never reclaims its slot (as for a
/// `ProtectedCall`), and a new trial never overlaps a hung one however
/// late the caller's runtime fires the guard.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<Permit, CircuitBreakerOpenError>")]
pub(crate) struct AcquireGuarded;

impl Handler<AcquireGuarded> for CircuitBreaker {
    type Result = Result<Permit, CircuitBreakerOpenError>;

    fn handle(&mut self, _: AcquireGuarded, ctx: &mut Context<Self>) -> Self::Result {
        let ticket = self.admit(ctx, true)?;
        Ok(Permit {
            circuit: ctx.address(),
            ticket: Some(ticket),
        })
    }
}

/// The right to make one call through a circuit, and the duty to say how it
/// went.
///
/// Report with [`success`](Self::success), [`failure`](Self::failure),
/// [`ignore`](Self::ignore) or [`record`](Self::record). A report after the
/// permit's [`deadline`](Self::deadline) counts as a timeout whatever it
/// says, since the work ran longer than `call_timeout` allows (a call the
/// circuit runs itself is cut off then). A permit dropped without a report
/// counts as cancelled (neither success nor failure) and frees its
/// half-open trial slot.
///
/// The circuit cannot stop work it does not run: stop by the deadline. A
/// HALF_OPEN trial that has not reported [`RECLAIM_GRACE`](crate::rules::RECLAIM_GRACE)
/// after its deadline loses its slot (counted as a timeout, which reopens
/// the circuit), and a new trial may then start while the old work still
/// runs.
#[must_use = "a permit must be reported; dropping it counts the call as cancelled"]
pub struct Permit {
    circuit: Addr<CircuitBreaker>,
    ticket: Option<Ticket>,
}

impl Permit {
    /// The call succeeded. Every report returns what the circuit counts
    /// the call as ([`report`](Self::report)).
    pub fn success(self) -> Outcome {
        self.report(Classification::Success)
    }

    /// The call failed.
    pub fn failure(self) -> Outcome {
        self.report(Classification::Failure)
    }

    /// The call's outcome should not count.
    pub fn ignore(self) -> Outcome {
        self.report(Classification::Ignored)
    }

    /// Reports a result by the default rule: `Ok` succeeded, `Err` failed.
    pub fn record<T, E>(self, result: &Result<T, E>) -> Outcome {
        self.report(Classification::of_result(result))
    }

    /// Reports a result as `classifier` judges it: the same classifiers
    /// that [`ProtectedCall::classify`](crate::circuit::ProtectedCall::classify) takes.
    ///
    /// ```
    /// use actix::Actor;
    /// use vibezen_recovery::prelude::*;
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let breaker = CircuitBreaker::new("search", CircuitBreakerConfig::default())?.start();
    /// let permit = breaker.send(Acquire).await??;
    /// let result: Result<u32, &str> = Err("404");
    /// permit.record_with(&result, |_: &Result<u32, &str>| Classification::Ignored);
    /// assert_eq!(breaker.send(Stats).await?.totals[Outcome::Ignored], 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn record_with<T, E>(
        self,
        result: &Result<T, E>,
        classifier: impl Classifier<T, E>,
    ) -> Outcome {
        self.report(classifier.classify(result))
    }

    /// Reports the call as `classification` says, and returns what the
    /// circuit counts it as: reported after the deadline, a timeout
    /// ([`Rules::judge_report`]). Tell your caller that, not what the work
    /// returned, and the two always agree.
    ///
    /// ```
    /// use actix::Actor;
    /// use vibezen_recovery::prelude::*;
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let breaker = CircuitBreaker::new("search", CircuitBreakerConfig::default())?.start();
    /// let permit = breaker.send(Acquire).await??;
    /// assert_eq!(permit.report(Classification::Success), Outcome::Success);
    /// # Ok(())
    /// # }
    /// ```
    pub fn report(mut self, classification: Classification) -> Outcome {
        let outcome = Rules::judge_report(
            classification.into(),
            self.deadline().map(Instant::into_std),
            Instant::now().into_std(),
        );
        self.send(outcome);
        outcome
    }

    /// Reports what the call came to as the fast path judged it, its
    /// deadline included (a timeout or a panic among them).
    pub(crate) fn report_outcome(mut self, outcome: Outcome) {
        self.send(outcome);
    }

    /// When the call must be done: a report from then on counts as a timeout,
    /// and a HALF_OPEN trial still unreported then loses its slot.
    pub fn deadline(&self) -> Option<Instant> {
        self.ticket
            .as_ref()
            .and_then(|ticket| ticket.deadline())
            .map(Instant::from_std)
    }

    /// Whether this is a HALF_OPEN trial call.
    pub fn is_trial(&self) -> bool {
        self.ticket.as_ref().is_some_and(|ticket| ticket.is_trial())
    }

    fn send(&mut self, outcome: Outcome) {
        if let Some(ticket) = self.ticket.take() {
            // `do_send`: reporting never waits, and a circuit that is gone
            // has nothing left to count.
            self.circuit.do_send(Report {
                ticket,
                outcome,
                at: Instant::now().into_std(),
            });
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.send(Outcome::Cancelled);
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("ticket", &self.ticket)
            .finish_non_exhaustive()
    }
}

/// A permit's report, sent to its circuit.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Report {
    ticket: Ticket,
    outcome: Outcome,
    /// When it was made: its trial keeps its slot if this was in time.
    at: std::time::Instant,
}

impl Handler<Report> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, report: Report, ctx: &mut Context<Self>) {
        self.finish(report.ticket, report.outcome, Some(report.at), ctx);
    }
}

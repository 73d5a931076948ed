//! An operator's hand on one circuit: force it open, disable it, release it.
//!
//! Each is a rule of the state machine
//! ([`force_open`](crate::state_machine::StateMachine::force_open),
//! [`disable`](crate::state_machine::StateMachine::disable),
//! [`release`](crate::state_machine::StateMachine::release)), taken in one
//! step like every other message: what fast-path callers counted is folded
//! in first, and the new state word is published before the reply, so a
//! handle obeys it from the moment the reply arrives. Each change is a
//! [`StateChanged`](super::StateChanged) event with its own reason, and
//! lands in the history.

use actix::{Context, Handler, Message};

use super::CircuitBreaker;

/// Forces the circuit open, from any state: every call is refused with
/// [`Refusal::ForcedOpen`](crate::rules::Refusal::ForcedOpen) until a
/// [`Release`] (or a [`Reset`](super::Reset)). No timer and no outcome
/// moves it; calls already running finish and are counted, and drive
/// nothing. Forcing open a FORCED_OPEN circuit changes nothing.
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::prelude::*;
/// use vibezen_recovery::circuit::{ForceOpen, Release};
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let breaker = CircuitBreaker::new("payments", CircuitBreakerConfig::default())?.start();
/// breaker.send(ForceOpen).await?;
/// let refused = breaker.call(async { Ok::<_, String>(1) }).await.unwrap_err();
/// assert_eq!(
///     refused.to_string(),
///     "circuit `payments` was forced open by an operator; calls are rejected until it is released"
/// );
/// breaker.send(Release).await?;
/// assert_eq!(breaker.send(Stats).await?.state, CircuitState::Closed);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct ForceOpen;

impl Handler<ForceOpen> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, _: ForceOpen, ctx: &mut Context<Self>) {
        self.step(ctx, |machine, _, now| machine.force_open(now));
    }
}

/// Disables the circuit, from any state: every call is admitted and counted
/// in the totals, and nothing trips it (no window, no OPEN timer, no reset
/// for inactivity) until a [`Release`] (or a [`Reset`](super::Reset)). A
/// `call_timeout` still cuts off a hung call, counted as a timeout.
/// Disabling a DISABLED circuit changes nothing.
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::prelude::*;
/// use vibezen_recovery::circuit::Disable;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = CircuitBreakerConfig { failure_threshold: 1, ..Default::default() };
/// let breaker = CircuitBreaker::new("search", config)?.start();
/// breaker.send(Disable).await?;
/// for _ in 0..3 {
///     let _ = breaker.call(async { Err::<(), _>("503") }).await;
/// }
/// let stats = breaker.send(Stats).await?;
/// assert_eq!((stats.state, stats.totals[Outcome::Failure]), (CircuitState::Disabled, 3));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Disable;

impl Handler<Disable> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, _: Disable, ctx: &mut Context<Self>) {
        self.step(ctx, |machine, _, now| machine.disable(now));
    }
}

/// Releases a FORCED_OPEN or DISABLED circuit: CLOSED again, in a new
/// generation with an empty window. A circuit in any other state is left
/// as it is, so a late or repeated release never resets a circuit that
/// opened on its own since; send [`Reset`](super::Reset) for that.
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::prelude::*;
/// use vibezen_recovery::circuit::{Disable, Release};
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let breaker = CircuitBreaker::new("cache", CircuitBreakerConfig::default())?.start();
/// breaker.send(Disable).await?;
/// breaker.send(Release).await?;
/// let stats = breaker.send(Stats).await?;
/// assert_eq!(stats.state, CircuitState::Closed);
/// assert_eq!(stats.state_changes.len(), 2);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Release;

impl Handler<Release> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, _: Release, ctx: &mut Context<Self>) {
        self.step(ctx, |machine, _, now| machine.release(now));
    }
}

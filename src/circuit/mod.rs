//! The circuit actor: a thin shell that owns a [`StateMachine`], its timer,
//! its subscribers and its history.
//!
//! This module holds the actor, [`CircuitBreaker`]; the messages it answers
//! ([`ProtectedCall`], [`Acquire`], [`GetHandle`], [`Reset`], [`Stop`],
//! [`Stats`], [`Subscribe`], [`Unsubscribe`], and an operator's
//! [`ForceOpen`], [`Disable`] and [`Release`]) and what they answer with
//! ([`Permit`], [`CircuitHandle`] and its [`HandleCall`], [`CircuitStats`],
//! [`StateChanged`] events); [`StateChanges`], events read from a channel,
//! and [`SubscribeError`]; [`CircuitBreakerExt`]; and the errors a call
//! can end in, [`CallError`] and [`CircuitBreakerOpenError`].
//!
//! Every message handler reads the clock once, lets the state machine apply
//! whatever came due, does its work, then publishes the transitions the
//! machine made and re-arms the one timer to the machine's next deadline.
//! Because due transitions are applied on every message, a flood of calls
//! cannot hold a circuit OPEN past its timeout: the first call handled after
//! the deadline finds it HALF_OPEN, whether or not the timer got to run.

mod call;
mod call_state;
mod control;
mod error;
pub(crate) mod events;
mod ext;
mod guard;
mod handle;
mod listener;
mod permit;
mod stats;

use std::collections::VecDeque;
use std::fmt;

use actix::clock::Instant;
use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Message, SpawnHandle};
use chrono::{DateTime, Utc};

use crate::config::{CircuitBreakerConfig, ConfigError};
use crate::fast_path::FastPath;
use crate::name::{intern, validate_circuit_name};
use crate::outcome::Outcome;
use crate::state_machine::{StateMachine, Ticket};

pub use call::ProtectedCall;
pub use control::{Disable, ForceOpen, Release};
pub use error::{CallError, CircuitBreakerOpenError};
pub use events::{MAX_SUBSCRIBER_BACKLOG, StateChanged, Subscribe, Unsubscribe};
pub use ext::CircuitBreakerExt;
pub use handle::{CircuitHandle, GetHandle, HandleCall};
pub use listener::{StateChanges, SubscribeError};
pub use permit::{Acquire, Permit};
pub use stats::{CircuitStats, Stats};

use events::Subscribers;

pub(crate) use call_state::CallState;
pub(crate) use guard::panic_message;

/// How many state changes a circuit remembers for [`CircuitStats`].
pub const HISTORY_LIMIT: usize = 100;

/// One circuit, as an actix actor.
///
/// ```
/// use vibezen_recovery::prelude::*;
/// use actix::Actor;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let breaker = CircuitBreaker::new("search", CircuitBreakerConfig::default())?.start();
/// let answer = breaker.send(ProtectedCall::new(async { Ok::<_, String>(42) })).await?;
/// assert_eq!(answer.ok(), Some(42));
/// # Ok(())
/// # }
/// ```
pub struct CircuitBreaker {
    name: &'static String,
    machine: StateMachine,
    /// What handles read and count, once one was asked for.
    fast: Option<FastPath>,
    subscribers: Subscribers,
    history: VecDeque<StateChanged>,
    timer: Option<ArmedTimer>,
    clock: WallClock,
}

#[derive(Debug)]
struct ArmedTimer {
    handle: SpawnHandle,
    due: Instant,
}

impl CircuitBreaker {
    /// A CLOSED circuit named `name`; refuses an invalid name or config.
    pub fn new(name: impl Into<String>, config: CircuitBreakerConfig) -> Result<Self, ConfigError> {
        let name = name.into();
        validate_circuit_name(&name)?;
        let now = Instant::now();
        Ok(CircuitBreaker {
            name: intern(&name),
            machine: StateMachine::new(config, now.into_std())?,
            fast: None,
            subscribers: Subscribers::default(),
            history: VecDeque::new(),
            timer: None,
            clock: WallClock::new(now),
        })
    }

    /// The circuit's name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// One step of the circuit, as every handler takes it: read the clock,
    /// take in what fast-path callers did, let the machine apply what came
    /// due and do `work`, then publish what it decided and re-arm the timer.
    fn step<R>(
        &mut self,
        ctx: &mut Context<Self>,
        work: impl FnOnce(&mut StateMachine, Option<&FastPath>, std::time::Instant) -> R,
    ) -> R {
        let now = Instant::now().into_std();
        if let Some(fast) = &mut self.fast {
            fast.sync(&mut self.machine, now);
        }
        self.machine.poll(now);
        let result = work(&mut self.machine, self.fast.as_ref(), now);
        self.publish(ctx, now);
        result
    }

    /// Publishes the machine's decisions: the state word for handles first,
    /// then each transition (history, tracing, subscribers); re-arms the
    /// timer to the next deadline.
    fn publish(&mut self, ctx: &mut Context<Self>, now: std::time::Instant) {
        if let Some(fast) = &mut self.fast {
            fast.publish(&mut self.machine, now);
        }
        let transitions: Vec<_> = self.machine.drain_transitions().collect();
        for transition in transitions {
            let event = StateChanged {
                circuit: self.name.to_string(),
                from: transition.from,
                to: transition.to,
                at: self.clock.wall(transition.at),
                reason: transition.reason,
                generation: transition.generation,
            };
            event.trace();
            if self.history.len() == HISTORY_LIMIT {
                self.history.pop_front();
            }
            self.history.push_back(event.clone());
            self.subscribers.broadcast(self.name, event);
        }
        self.arm_timer(ctx, now);
    }

    /// Keeps one timer armed at or before the next deadline (the machine's,
    /// or the fast path's next fold). A timer that fires early (the deadline
    /// moved later) finds nothing due and re-arms, so a busy circuit does
    /// not cancel a timer per call.
    fn arm_timer(&mut self, ctx: &mut Context<Self>, now: std::time::Instant) {
        let fold = self
            .fast
            .as_ref()
            .and_then(|fast| fast.next_fold(&self.machine));
        let Some(due) = [self.machine.next_deadline(now), fold]
            .into_iter()
            .flatten()
            .min()
            .map(Instant::from_std)
        else {
            return;
        };
        if let Some(armed) = &self.timer {
            if armed.due <= due {
                return;
            }
            ctx.cancel_future(armed.handle);
        }
        let delay = due.saturating_duration_since(Instant::from_std(now));
        let handle = ctx.run_later(delay, |circuit, ctx| {
            circuit.timer = None;
            circuit.step(ctx, |_, _, _| ());
        });
        self.timer = Some(ArmedTimer { handle, due });
    }

    /// Asks the machine to admit one call; a refusal becomes the caller's error.
    /// `guarded`: the call runs under the circuit's own guard, which cuts it
    /// off at its deadline (a `ProtectedCall`); otherwise it is a permit.
    fn admit(
        &mut self,
        ctx: &mut Context<Self>,
        guarded: bool,
    ) -> Result<Ticket, CircuitBreakerOpenError> {
        let name = self.name;
        self.step(ctx, |machine, _, now| {
            let admitted = if guarded {
                machine.try_acquire_guarded(now)
            } else {
                machine.try_acquire(now)
            };
            admitted.map_err(|rejection| {
                CircuitBreakerOpenError::new(
                    name,
                    rejection.refusal,
                    rejection.retry_at.map(Instant::from_std),
                )
            })
        })
    }

    /// Records how an admitted call ended, in the run it shares with the
    /// fast path too; `reported_at` is when its holder reported it, if it
    /// did so elsewhere (a permit's report waits in the mailbox).
    fn finish(
        &mut self,
        ticket: Ticket,
        outcome: Outcome,
        reported_at: Option<std::time::Instant>,
        ctx: &mut Context<Self>,
    ) {
        // Before the step's fold and poll, which could otherwise reclaim
        // the slot of a trial that reported in time.
        if let Some(at) = reported_at {
            self.machine.hold_for_report(&ticket, at);
        }
        self.step(ctx, |machine, fast, now| {
            let run = fast.and_then(|fast| fast.count_run(ticket.generation(), outcome));
            machine.record_with_run(ticket, outcome, run, now);
        });
    }
}

impl Actor for CircuitBreaker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.step(ctx, |_, _, _| ());
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        // Handles outlive the actor; tell them to stop calling.
        if let Some(fast) = &self.fast {
            fast.stop();
        }
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("state", &self.machine.state())
            .field("generation", &self.machine.generation())
            .field("subscribers", &self.subscribers.len())
            .finish_non_exhaustive()
    }
}

/// Back to CLOSED with the window, counters and timers cleared (VIBEZEN's
/// `breaker.reset()`). Starts a new generation even if the circuit was
/// CLOSED, so outcomes of calls admitted before the reset no longer count.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Reset;

impl Handler<Reset> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, _: Reset, ctx: &mut Context<Self>) {
        self.step(ctx, |machine, _, now| machine.reset(now));
    }
}

/// Stops the circuit actor. Calls in flight are dropped (their callers get
/// [`MailboxError::Closed`](actix::MailboxError::Closed)), later messages are
/// refused the same way, and subscribers hear nothing more. A manager that
/// supervises the circuit recreates it.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Stop> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        tracing::info!(circuit = %self.name, "circuit stopped on request");
        ctx.stop();
    }
}

/// Maps the tokio clock to wall-clock time for reports and events.
///
/// One anchor taken at creation, so timestamps follow the same (possibly
/// paused) clock the state machine runs on and never go backwards.
#[derive(Debug, Clone, Copy)]
struct WallClock {
    instant: Instant,
    wall: DateTime<Utc>,
}

impl WallClock {
    fn new(now: Instant) -> Self {
        WallClock {
            instant: now,
            wall: Utc::now(),
        }
    }

    fn wall(&self, at: std::time::Instant) -> DateTime<Utc> {
        let at = Instant::from_std(at);
        let signed = |d| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero());
        let wall = if at >= self.instant {
            self.wall.checked_add_signed(signed(at - self.instant))
        } else {
            self.wall.checked_sub_signed(signed(self.instant - at))
        };
        wall.unwrap_or(self.wall)
    }
}

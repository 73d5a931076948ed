//! State-change broadcasts: the events, subscribing, and the fan-out.

use actix::dev::SendError;
use actix::{Context, Handler, Message, Recipient};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::CircuitBreaker;
use crate::state::CircuitState;
use crate::transition::TransitionReason;

/// A circuit changed state. Broadcast to every subscriber, in the order the
/// transitions happened, and kept in the circuit's history.
#[derive(Debug, Clone, PartialEq, Serialize, Message)]
#[rtype(result = "()")]
pub struct StateChanged {
    /// The circuit's name.
    pub circuit: String,
    /// The state it left.
    pub from: CircuitState,
    /// The state it entered.
    pub to: CircuitState,
    /// When, in wall-clock time.
    pub at: DateTime<Utc>,
    /// Why.
    pub reason: TransitionReason,
    /// The generation the new state runs in.
    pub generation: u64,
}

impl StateChanged {
    /// Logs the transition as a structured `tracing` event: a warning when a
    /// circuit opens, info otherwise.
    pub(crate) fn trace(&self) {
        let (circuit, from, to, reason) = (&self.circuit, self.from, self.to, &self.reason);
        if to == CircuitState::Open {
            tracing::warn!(circuit, %from, %to, %reason, generation = self.generation, "circuit opened");
        } else {
            tracing::info!(circuit, %from, %to, %reason, generation = self.generation, "circuit state changed");
        }
    }
}

/// Subscribes a recipient to a circuit's [`StateChanged`] events. Subscribing
/// the same recipient twice has no further effect.
///
/// ```
/// use actix::prelude::*;
/// use vibezen_recovery::prelude::*;
///
/// struct Alerts;
/// impl Actor for Alerts { type Context = Context<Self>; }
/// impl Handler<StateChanged> for Alerts {
///     type Result = ();
///     fn handle(&mut self, event: StateChanged, _: &mut Context<Self>) {
///         println!("{} went {} -> {}: {}", event.circuit, event.from, event.to, event.reason);
///     }
/// }
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let breaker = CircuitBreaker::new("ai_provider_openai", CircuitBreakerConfig::default())?.start();
/// breaker.send(Subscribe(Alerts.start().recipient())).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Subscribe(pub Recipient<StateChanged>);

/// Removes a subscription made with [`Subscribe`] (recipients compare equal
/// when they reach the same actor).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Unsubscribe(pub Recipient<StateChanged>);

impl Handler<Subscribe> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, Subscribe(recipient): Subscribe, _: &mut Context<Self>) {
        self.subscribers.add(recipient);
    }
}

impl Handler<Unsubscribe> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, Unsubscribe(recipient): Unsubscribe, _: &mut Context<Self>) {
        self.subscribers.remove(&recipient);
    }
}

/// How far behind a subscriber may fall, in events queued past its
/// mailbox's capacity, before the circuit gives up on it.
pub const MAX_SUBSCRIBER_BACKLOG: u32 = 1_000;

/// The recipients of a circuit's events.
#[derive(Debug, Default)]
pub(crate) struct Subscribers(Vec<Subscriber>);

#[derive(Debug)]
struct Subscriber {
    recipient: Recipient<StateChanged>,
    /// Events queued past the mailbox's capacity since it last had room.
    backlog: u32,
}

impl Subscribers {
    pub(crate) fn add(&mut self, recipient: Recipient<StateChanged>) {
        if !self
            .0
            .iter()
            .any(|subscriber| subscriber.recipient == recipient)
        {
            self.0.push(Subscriber {
                recipient,
                backlog: 0,
            });
        }
    }

    pub(crate) fn remove(&mut self, recipient: &Recipient<StateChanged>) {
        self.0
            .retain(|subscriber| subscriber.recipient != *recipient);
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Delivers `event` to every live subscriber without ever waiting.
    ///
    /// A full mailbox still takes it (`do_send` past the soft limit), so a
    /// slow subscriber loses nothing and blocks no one. One that falls
    /// [`MAX_SUBSCRIBER_BACKLOG`] events behind is taken for stuck and
    /// dropped with a warning, so that a subscriber that never reads cannot
    /// make the circuit's memory grow without bound. A closed one is pruned.
    pub(crate) fn broadcast(&mut self, circuit: &str, event: StateChanged) {
        self.0.retain_mut(
            |subscriber| match subscriber.recipient.try_send(event.clone()) {
                Ok(()) => {
                    subscriber.backlog = 0;
                    true
                }
                Err(SendError::Full(_)) if subscriber.backlog >= MAX_SUBSCRIBER_BACKLOG => {
                    tracing::warn!(
                        circuit,
                        backlog = subscriber.backlog,
                        "subscriber fell too far behind; unsubscribed"
                    );
                    false
                }
                Err(SendError::Full(event)) => {
                    subscriber.recipient.do_send(event);
                    subscriber.backlog += 1;
                    true
                }
                Err(SendError::Closed(_)) => false,
            },
        );
    }
}

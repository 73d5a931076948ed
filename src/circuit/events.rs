//! State-change broadcasts: the events, subscribing, and the fan-out.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};

use actix::{Context, Handler, Message, Recipient, WeakRecipient};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::CircuitBreaker;
use super::listener::{self, StateChanges, SubscribeError};
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
/// Events are delivered in order and never wait: a full mailbox still takes
/// them. What one subscriber may have queued past its mailbox's capacity is
/// bounded across every circuit it listens to together: one that falls
/// [`MAX_SUBSCRIBER_BACKLOG`] events behind is unsubscribed from all of them
/// with a warning, and a manager does not subscribe it to the circuits it
/// creates or recreates afterwards. Subscribing it again on purpose starts
/// it afresh.
///
/// Without writing an actor, subscribe a closure ([`Subscribe::closure`])
/// or get a bounded channel of events ([`Subscribe::channel`]); both are
/// subscribers under the same rules.
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

impl Subscribe {
    /// Subscribes `on_event`, called with each event on the arbiter this
    /// is called on (the current thread), one event at a time and in order.
    /// It runs on that thread's event loop, so keep it short and hand long
    /// work off; a circuit on the same arbiter waits for it.
    ///
    /// A closure that panics is logged as an error with `tracing` and stays
    /// subscribed: the next event calls it again, as a degradation handler
    /// stays registered after a panic. If it cannot go on after a panic,
    /// catch the panic inside it. It falls behind, and is unsubscribed,
    /// under the same rule as any subscriber. To unsubscribe it, keep a
    /// clone of its recipient (the `Subscribe`'s field) for [`Unsubscribe`].
    ///
    /// Refused outside an actix System ([`SubscribeError::NoSystem`]).
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use actix::Actor;
    /// use vibezen_recovery::prelude::*;
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = CircuitBreakerConfig { failure_threshold: 1, ..Default::default() };
    /// let breaker = CircuitBreaker::new("search", config)?.start();
    /// // The closure runs on this thread, so it need not be `Send`.
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let log = Rc::clone(&seen);
    /// breaker
    ///     .send(Subscribe::closure(move |event: StateChanged| log.borrow_mut().push(event.to))?)
    ///     .await?;
    ///
    /// let _ = breaker.call(async { Err::<(), _>("down") }).await;
    /// breaker.send(Stats).await?; // the event is handled by now
    /// assert_eq!(*seen.borrow(), [CircuitState::Open]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn closure<F>(on_event: F) -> Result<Subscribe, SubscribeError>
    where
        F: FnMut(StateChanged) + 'static,
    {
        listener::calling(on_event).map(Subscribe)
    }

    /// A subscription that delivers into a bounded channel of `capacity`
    /// events, and the channel's receiving end ([`StateChanges`]: `recv`,
    /// or a `Stream`). A reader that lets more than `capacity` +
    /// [`MAX_SUBSCRIBER_BACKLOG`] events pile up is unsubscribed; dropping
    /// the reader unsubscribes. See [`StateChanges`].
    ///
    /// Refused with a capacity of 0 ([`SubscribeError::InvalidCapacity`])
    /// and outside an actix System ([`SubscribeError::NoSystem`]).
    ///
    /// ```
    /// use actix::Actor;
    /// use vibezen_recovery::prelude::*;
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = CircuitBreakerConfig { failure_threshold: 1, ..Default::default() };
    /// let breaker = CircuitBreaker::new("cache", config)?.start();
    /// let (subscribe, mut changes) = Subscribe::channel(64)?;
    /// breaker.send(subscribe).await?;
    ///
    /// let _ = breaker.call(async { Err::<(), _>("down") }).await;
    /// let event = changes.recv().await.expect("subscribed");
    /// assert_eq!(event.to, CircuitState::Open);
    /// # Ok(())
    /// # }
    /// ```
    pub fn channel(capacity: usize) -> Result<(Subscribe, StateChanges), SubscribeError> {
        let (recipient, changes) = listener::channel(capacity)?;
        Ok((Subscribe(recipient), changes))
    }
}

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
/// mailbox's capacity by all the circuits it listens to together, before
/// every circuit gives up on it.
pub const MAX_SUBSCRIBER_BACKLOG: u32 = 1_000;

/// What every circuit knows of one subscriber. Its mailbox is one, shared
/// by every circuit it listens to, so its backlog is counted once for all
/// of them, and once given up on it stays given up: not handed to a new or
/// recreated circuit as if it were fresh.
#[derive(Debug, Default)]
struct Standing {
    /// Events sent to it, by every circuit, that it has not handled yet.
    backlog: AtomicU32,
    /// Dropped for falling [`MAX_SUBSCRIBER_BACKLOG`] behind.
    given_up: AtomicBool,
}

/// The standing of every subscriber some circuit holds. A circuit keeps
/// the standing alive; a recipient no circuit holds is forgotten. Both are
/// held weakly here: the registry keeps no subscriber alive, so one that no
/// circuit or manager holds any more stops, as an actor with no address
/// does.
type Standings = Vec<(WeakRecipient<StateChanged>, Weak<Standing>)>;
static STANDINGS: Mutex<Standings> = Mutex::new(Vec::new());

fn standing_of(recipient: &Recipient<StateChanged>) -> Arc<Standing> {
    let mut standings = STANDINGS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    standings.retain(|(_, standing)| standing.strong_count() > 0);
    if let Some(standing) = known_standing(&standings, recipient) {
        return standing;
    }
    let standing = Arc::new(Standing::default());
    standings.push((recipient.downgrade(), Arc::downgrade(&standing)));
    standing
}

fn known_standing(
    standings: &Standings,
    recipient: &Recipient<StateChanged>,
) -> Option<Arc<Standing>> {
    standings
        .iter()
        .find(|(known, _)| known.upgrade().is_some_and(|known| known == *recipient))
        .and_then(|(_, standing)| standing.upgrade())
}

/// Whether `recipient` was given up on for falling too far behind: the
/// manager does not subscribe it to circuits it creates or recreates.
pub(crate) fn given_up(recipient: &Recipient<StateChanged>) -> bool {
    let standings = STANDINGS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    known_standing(&standings, recipient)
        .is_some_and(|standing| standing.given_up.load(Ordering::Relaxed))
}

/// The recipients of a circuit's events.
#[derive(Debug, Default)]
pub(crate) struct Subscribers(Vec<Subscriber>);

#[derive(Debug)]
struct Subscriber {
    recipient: Recipient<StateChanged>,
    standing: Arc<Standing>,
}

impl Subscribers {
    /// Adds `recipient`. Subscribing on purpose is a fresh start, even for
    /// one given up on before.
    pub(crate) fn add(&mut self, recipient: Recipient<StateChanged>) {
        if self
            .0
            .iter()
            .any(|subscriber| subscriber.recipient == recipient)
        {
            return;
        }
        let standing = standing_of(&recipient);
        standing.given_up.store(false, Ordering::Relaxed);
        self.0.push(Subscriber {
            recipient,
            standing,
        });
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
    /// The event goes into the subscriber's mailbox at once, in order,
    /// past the mailbox's soft limit if need be, so a slow subscriber loses
    /// nothing and blocks no one; a small task on this arbiter waits until
    /// it was handled, so that what the subscriber has not handled yet is
    /// counted, over every circuit it listens to together. One with
    /// [`MAX_SUBSCRIBER_BACKLOG`] events unhandled is taken for stuck and
    /// dropped by all of them with a warning, so that a subscriber that
    /// reads too slowly, or never, cannot make memory grow without bound.
    /// A closed one is pruned.
    pub(crate) fn broadcast(&mut self, circuit: &str, event: StateChanged) {
        self.0.retain_mut(|subscriber| {
            let standing = &subscriber.standing;
            if standing.given_up.load(Ordering::Relaxed) || !subscriber.recipient.connected() {
                return false;
            }
            let backlog = standing.backlog.fetch_add(1, Ordering::AcqRel);
            if backlog >= MAX_SUBSCRIBER_BACKLOG {
                standing.backlog.fetch_sub(1, Ordering::AcqRel);
                standing.given_up.store(true, Ordering::Relaxed);
                tracing::warn!(
                    circuit,
                    backlog,
                    "subscriber fell too far behind; unsubscribed from every circuit"
                );
                return false;
            }
            // A sender of its own: one that has filled the mailbox once is
            // parked, and would hold later events back out of order.
            let handled = subscriber.recipient.clone().send(event.clone());
            let standing = Arc::clone(standing);
            actix::spawn(async move {
                // Handled, or the subscriber is gone: either way no longer queued.
                let _ = handled.await;
                standing.backlog.fetch_sub(1, Ordering::AcqRel);
            });
            true
        });
    }
}

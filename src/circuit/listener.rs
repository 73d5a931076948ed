//! Listening without writing an actor: a closure called with each
//! [`StateChanged`], or a bounded channel to read them from.
//!
//! Both are a small actor of the crate's, the [`Listener`], and its
//! recipient is what gets subscribed. So a closure or a channel is a
//! subscriber like any other: its events arrive in order, its backlog is
//! counted with every circuit it listens to, it is unsubscribed everywhere
//! once [`MAX_SUBSCRIBER_BACKLOG`](super::MAX_SUBSCRIBER_BACKLOG) events
//! behind, and circuits and the manager prune it like any dead recipient.
//! None of the fan-out is written twice.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, Recipient,
    WeakAddr, WrapFuture,
};
use futures_util::Stream;
use tokio::sync::Semaphore;
use tokio::sync::mpsc::{self, error::TrySendError};

use super::StateChanged;
use super::events::given_up;
use super::guard::panic_message;

/// Why a closure or channel subscription could not be made.
///
/// ```
/// use vibezen_recovery::circuit::{Subscribe, SubscribeError};
///
/// assert_eq!(Subscribe::channel(0).unwrap_err(), SubscribeError::InvalidCapacity(0));
/// // Outside an actix System there is no arbiter to serve the closure on.
/// assert_eq!(Subscribe::closure(|_| {}).unwrap_err(), SubscribeError::NoSystem);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscribeError {
    /// A channel must hold at least one event, and at most
    /// [`Semaphore::MAX_PERMITS`] (tokio's limit for a bounded channel).
    InvalidCapacity(usize),
    /// Not on a running actix arbiter: the closure or channel is served by
    /// an actor started on the current one, so subscribe from inside an
    /// actix `System`.
    NoSystem,
    /// The manager has stopped (its System is shutting down); nothing was
    /// subscribed. Only the [`VibezenIntegration`](crate::integration::VibezenIntegration)
    /// methods, which also send the subscription, answer this.
    ManagerUnavailable,
}

impl fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscribeError::InvalidCapacity(capacity) => write!(
                f,
                "a state-change channel holds 1 to {} events, not {capacity}",
                Semaphore::MAX_PERMITS
            ),
            SubscribeError::NoSystem => f.write_str(
                "no actix System runs on this thread; subscribe a closure or a channel from inside one",
            ),
            SubscribeError::ManagerUnavailable => f.write_str(
                "the circuit breaker manager has stopped; its System is shutting down",
            ),
        }
    }
}

impl std::error::Error for SubscribeError {}

/// The receiving end of a channel subscription ([`Subscribe::channel`](super::Subscribe::channel),
/// [`SubscribeAll::channel`](crate::manager::SubscribeAll::channel),
/// [`VibezenIntegration::state_changes`](crate::integration::VibezenIntegration::state_changes)):
/// the [`StateChanged`] events in order, read with [`recv`](Self::recv) or
/// as a [`Stream`].
///
/// The channel holds up to its capacity of unread events. Past that nothing
/// is lost: events wait in the subscription's mailbox, where they count
/// towards [`MAX_SUBSCRIBER_BACKLOG`](super::MAX_SUBSCRIBER_BACKLOG), so a
/// reader that falls that far behind the capacity is unsubscribed from
/// every circuit, reads what was queued, then `None`.
///
/// The events end (`None`) once no circuit can send more: the reader fell
/// too far behind, the circuit stopped (a circuit's subscription), or the
/// manager did (one through the manager). Dropping it unsubscribes: circuits
/// and the manager forget it.
///
/// ```
/// use actix::Actor;
/// use futures_util::StreamExt;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = CircuitBreakerConfig { failure_threshold: 1, ..Default::default() };
/// let breaker = CircuitBreaker::new("search", config)?.start();
/// let (subscribe, mut changes) = Subscribe::channel(16)?;
/// breaker.send(subscribe).await?;
///
/// let _ = breaker.call(async { Err::<(), _>("down") }).await;
/// breaker.send(Reset).await?;
/// let opened = changes.recv().await.expect("subscribed");
/// assert_eq!((opened.from, opened.to), (CircuitState::Closed, CircuitState::Open));
/// let closed = changes.next().await.expect("subscribed");
/// assert_eq!(closed.to, CircuitState::Closed);
/// # Ok(())
/// # }
/// ```
pub struct StateChanges {
    receiver: mpsc::Receiver<StateChanged>,
    listener: WeakAddr<Listener>,
}

impl StateChanges {
    /// The next event, waiting for it; `None` once the subscription ended.
    pub async fn recv(&mut self) -> Option<StateChanged> {
        self.receiver.recv().await
    }
}

impl Stream for StateChanges {
    type Item = StateChanged;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<StateChanged>> {
        self.receiver.poll_recv(cx)
    }
}

impl Drop for StateChanges {
    fn drop(&mut self) {
        // Stop the listener now rather than at its next event, so that the
        // manager, which keeps only live recipients, hands it to no circuit
        // it creates meanwhile.
        if let Some(listener) = self.listener.upgrade() {
            listener.do_send(Close);
        }
    }
}

impl fmt::Debug for StateChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateChanges")
            .field("unread", &self.receiver.len())
            .finish_non_exhaustive()
    }
}

/// A recipient that calls `on_event` with each event, on the current arbiter.
pub(crate) fn calling<F>(on_event: F) -> Result<Recipient<StateChanged>, SubscribeError>
where
    F: FnMut(StateChanged) + 'static,
{
    on_an_arbiter()?;
    let listener = Listener::new(Delivery::Call(Box::new(on_event)));
    Ok(listener.start().recipient())
}

/// A recipient that forwards each event into a channel of `capacity`, and
/// the channel's receiving end.
pub(crate) fn channel(
    capacity: usize,
) -> Result<(Recipient<StateChanged>, StateChanges), SubscribeError> {
    if capacity == 0 || capacity > Semaphore::MAX_PERMITS {
        return Err(SubscribeError::InvalidCapacity(capacity));
    }
    on_an_arbiter()?;
    let (sender, receiver) = mpsc::channel(capacity);
    let listener = Listener::new(Delivery::Send(sender)).start();
    let changes = StateChanges {
        receiver,
        listener: listener.downgrade(),
    };
    Ok((listener.recipient(), changes))
}

fn on_an_arbiter() -> Result<(), SubscribeError> {
    if crate::system::can_start_actors() {
        Ok(())
    } else {
        Err(SubscribeError::NoSystem)
    }
}

/// The actor behind a closure or channel subscription.
struct Listener {
    delivery: Delivery,
    /// It was given up on and a [`Close`] is queued behind the last events.
    closing: bool,
}

/// Where a listener's events go: the only difference between the two kinds.
enum Delivery {
    Call(Box<dyn FnMut(StateChanged)>),
    Send(mpsc::Sender<StateChanged>),
}

impl Listener {
    fn new(delivery: Delivery) -> Self {
        Listener {
            delivery,
            closing: false,
        }
    }

    /// Once every circuit gave up on it, the events still queued are the
    /// last it gets: it stops after them, so a channel's reader sees the
    /// end and a closure is freed, instead of waiting for the manager to
    /// forget it.
    fn close_once_given_up(&mut self, ctx: &mut Context<Self>) {
        if self.closing || !given_up(&ctx.address().recipient()) {
            return;
        }
        self.closing = true;
        ctx.address().do_send(Close);
    }
}

impl Actor for Listener {
    type Context = Context<Self>;
}

impl Handler<StateChanged> for Listener {
    type Result = ();

    fn handle(&mut self, event: StateChanged, ctx: &mut Context<Self>) {
        self.close_once_given_up(ctx);
        match &mut self.delivery {
            Delivery::Call(on_event) => call_contained(on_event.as_mut(), event),
            Delivery::Send(sender) => match sender.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(event)) => {
                    // Nothing else is handled until there is room, so order
                    // is kept, and what queues up meanwhile is the mailbox
                    // the circuits count as this subscriber's backlog.
                    let sender = sender.clone();
                    let sent = async move { sender.send(event).await }.into_actor(self);
                    ctx.wait(sent.map(|sent, _, ctx: &mut Context<Self>| {
                        if sent.is_err() {
                            ctx.stop();
                        }
                    }));
                }
                // The reader is gone.
                Err(TrySendError::Closed(_)) => ctx.stop(),
            },
        }
    }
}

/// Calls a subscriber's closure. A panic is logged and the closure stays
/// subscribed, as a degradation handler stays registered: one event that
/// hits a bug should not cost every later alert. Nothing else is touched.
fn call_contained(on_event: &mut dyn FnMut(StateChanged), event: StateChanged) {
    let (from, to, generation) = (event.from, event.to, event.generation);
    let circuit = event.circuit.clone();
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| on_event(event))) {
        tracing::error!(
            circuit,
            %from,
            %to,
            generation,
            panic = %panic_message(panic.as_ref()),
            "state-change closure panicked; it stays subscribed and gets the next event"
        );
    }
}

/// Stops a listener: its reader is gone, or every circuit gave up on it.
#[derive(Message)]
#[rtype(result = "()")]
struct Close;

impl Handler<Close> for Listener {
    type Result = ();

    fn handle(&mut self, _: Close, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

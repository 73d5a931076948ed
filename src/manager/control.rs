//! Resets, an operator's controls and subscriptions, by name and across
//! circuits.

use actix::{Context, Handler, Message, Recipient, ResponseFuture};
use futures_util::future::join_all;

use super::{CircuitBreakerManager, ManagerError};
use crate::circuit::{
    CircuitBreaker, Disable, ForceOpen, Release, Reset, StateChanged, StateChanges, Subscribe,
    SubscribeError,
};

/// Resets the named circuit to CLOSED (VIBEZEN's `breaker.reset()`, by
/// name). The reply comes once the circuit has reset. A name the manager
/// does not know is [`ManagerError::UnknownCircuit`], not a silent no-op.
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::manager::ResetCircuit;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = CircuitBreakerManager::default().start();
/// manager.send(GetBreaker::new("search")).await??;
/// manager.send(ResetCircuit("search".into())).await??;
/// let err = manager.send(ResetCircuit("serch".into())).await?.unwrap_err();
/// assert!(matches!(err, ManagerError::UnknownCircuit(u) if u.nearest() == Some("search")));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ManagerError>")]
pub struct ResetCircuit(pub String);

impl Handler<ResetCircuit> for CircuitBreakerManager {
    type Result = ResponseFuture<Result<(), ManagerError>>;

    fn handle(&mut self, ResetCircuit(name): ResetCircuit, _: &mut Context<Self>) -> Self::Result {
        self.send_to_named(name, Reset)
    }
}

/// Resets every circuit to CLOSED; the reply comes once all have reset.
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::manager::ResetAll;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = CircuitBreakerManager::default().start();
/// manager.send(GetBreaker::new("cache")).await??;
/// manager.send(ResetAll).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct ResetAll;

impl Handler<ResetAll> for CircuitBreakerManager {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: ResetAll, _: &mut Context<Self>) -> Self::Result {
        // A circuit that stopped meanwhile is reset in effect: it is
        // recreated CLOSED.
        self.send_to_all(Reset, "ResetAll")
    }
}

/// Forces the named circuit open ([`ForceOpen`], by name): every call to it
/// is refused, on every path, until a [`ReleaseCircuit`] (or a reset). The
/// reply comes once the circuit is FORCED_OPEN. A name the manager does not
/// know is [`ManagerError::UnknownCircuit`].
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::manager::{ForceOpenCircuit, ReleaseCircuit};
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = CircuitBreakerManager::default().start();
/// manager.send(GetBreaker::new("payments")).await??;
/// manager.send(ForceOpenCircuit("payments".into())).await??;
/// let refused = manager.send(Call::new("payments", async { Ok::<_, String>(()) })).await?;
/// assert!(matches!(refused, Err(CallError::Open(open)) if open.state() == CircuitState::ForcedOpen));
/// manager.send(ReleaseCircuit("payments".into())).await??;
/// let err = manager.send(ForceOpenCircuit("paymnets".into())).await?.unwrap_err();
/// assert!(matches!(err, ManagerError::UnknownCircuit(u) if u.nearest() == Some("payments")));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ManagerError>")]
pub struct ForceOpenCircuit(pub String);

impl Handler<ForceOpenCircuit> for CircuitBreakerManager {
    type Result = ResponseFuture<Result<(), ManagerError>>;

    fn handle(
        &mut self,
        ForceOpenCircuit(name): ForceOpenCircuit,
        _: &mut Context<Self>,
    ) -> Self::Result {
        self.send_to_named(name, ForceOpen)
    }
}

/// Disables the named circuit ([`Disable`], by name): every call to it is
/// admitted and counted, and nothing trips it, until a [`ReleaseCircuit`]
/// (or a reset). A name the manager does not know is
/// [`ManagerError::UnknownCircuit`].
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::manager::DisableCircuit;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = CircuitBreakerManager::default().start();
/// let search = manager.send(GetBreaker::new("search")).await??;
/// manager.send(DisableCircuit("search".into())).await??;
/// assert_eq!(search.send(Stats).await?.state, CircuitState::Disabled);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ManagerError>")]
pub struct DisableCircuit(pub String);

impl Handler<DisableCircuit> for CircuitBreakerManager {
    type Result = ResponseFuture<Result<(), ManagerError>>;

    fn handle(
        &mut self,
        DisableCircuit(name): DisableCircuit,
        _: &mut Context<Self>,
    ) -> Self::Result {
        self.send_to_named(name, Disable)
    }
}

/// Releases the named circuit ([`Release`], by name): a FORCED_OPEN or
/// DISABLED circuit is CLOSED again, in a new generation; one in any other
/// state is left as it is. A name the manager does not know is
/// [`ManagerError::UnknownCircuit`].
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::manager::{DisableCircuit, ReleaseCircuit};
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = CircuitBreakerManager::default().start();
/// let cache = manager.send(GetBreaker::new("cache")).await??;
/// manager.send(DisableCircuit("cache".into())).await??;
/// manager.send(ReleaseCircuit("cache".into())).await??;
/// assert_eq!(cache.send(Stats).await?.state, CircuitState::Closed);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ManagerError>")]
pub struct ReleaseCircuit(pub String);

impl Handler<ReleaseCircuit> for CircuitBreakerManager {
    type Result = ResponseFuture<Result<(), ManagerError>>;

    fn handle(
        &mut self,
        ReleaseCircuit(name): ReleaseCircuit,
        _: &mut Context<Self>,
    ) -> Self::Result {
        self.send_to_named(name, Release)
    }
}

/// Forces every circuit open; the reply comes once all are FORCED_OPEN.
/// Circuits created later start CLOSED.
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::manager::{ForceOpenAll, ReleaseAll};
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = CircuitBreakerManager::default().start();
/// let cache = manager.send(GetBreaker::new("cache")).await??;
/// manager.send(ForceOpenAll).await?;
/// assert_eq!(cache.send(Stats).await?.state, CircuitState::ForcedOpen);
/// manager.send(ReleaseAll).await?;
/// assert_eq!(cache.send(Stats).await?.state, CircuitState::Closed);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct ForceOpenAll;

impl Handler<ForceOpenAll> for CircuitBreakerManager {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: ForceOpenAll, _: &mut Context<Self>) -> Self::Result {
        self.send_to_all(ForceOpen, "ForceOpenAll")
    }
}

/// Disables every circuit; the reply comes once all are DISABLED. Circuits
/// created later start CLOSED.
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::manager::DisableAll;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = CircuitBreakerManager::default().start();
/// let cache = manager.send(GetBreaker::new("cache")).await??;
/// manager.send(DisableAll).await?;
/// assert_eq!(cache.send(Stats).await?.state, CircuitState::Disabled);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct DisableAll;

impl Handler<DisableAll> for CircuitBreakerManager {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: DisableAll, _: &mut Context<Self>) -> Self::Result {
        self.send_to_all(Disable, "DisableAll")
    }
}

/// Releases every FORCED_OPEN or DISABLED circuit; the others are left as
/// they are. The reply comes once every circuit has handled it.
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::manager::ReleaseAll;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = CircuitBreakerManager::default().start();
/// manager.send(GetBreaker::new("cache")).await??;
/// manager.send(ReleaseAll).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct ReleaseAll;

impl Handler<ReleaseAll> for CircuitBreakerManager {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: ReleaseAll, _: &mut Context<Self>) -> Self::Result {
        self.send_to_all(Release, "ReleaseAll")
    }
}

impl CircuitBreakerManager {
    /// Sends `message` to the named circuit (recreated first if it died)
    /// and replies once it has been handled; an unknown name is an error
    /// naming the nearest known one, never a silent no-op.
    fn send_to_named<M>(
        &mut self,
        name: String,
        message: M,
    ) -> ResponseFuture<Result<(), ManagerError>>
    where
        M: Message<Result = ()> + Send + 'static,
        CircuitBreaker: Handler<M>,
    {
        let Some(circuit) = self.live(&name) else {
            let unknown = self.unknown(name);
            return Box::pin(async move { Err(ManagerError::UnknownCircuit(unknown)) });
        };
        let sent = circuit.send(message);
        Box::pin(async move {
            sent.await
                .map_err(|_| ManagerError::CircuitUnavailable(name))
        })
    }

    /// Sends `message` to every circuit and replies once all have handled
    /// it. A circuit that stops meanwhile is recreated CLOSED, without it;
    /// a warning names it, and `what` the message.
    fn send_to_all<M>(&mut self, message: M, what: &'static str) -> ResponseFuture<()>
    where
        M: Message<Result = ()> + Clone + Send + 'static,
        CircuitBreaker: Handler<M>,
    {
        let sent: Vec<_> = self
            .all_live()
            .into_iter()
            .map(|(name, circuit)| {
                let sent = circuit.send(message.clone());
                async move {
                    if sent.await.is_err() {
                        tracing::warn!(circuit = %name, "circuit stopped during {what}");
                    }
                }
            })
            .collect();
        Box::pin(async move {
            join_all(sent).await;
        })
    }
}

/// Subscribes a recipient to the [`StateChanged`] events of every circuit,
/// those there are now and those created later (recreated ones included).
/// Each circuit's events arrive in that circuit's order. The reply comes
/// once every present circuit has taken the subscription. Subscribing the
/// same recipient twice has no further effect.
///
/// A subscriber that falls [`MAX_SUBSCRIBER_BACKLOG`](crate::circuit::MAX_SUBSCRIBER_BACKLOG)
/// events behind, counted over every circuit together, is dropped by all of
/// them (see [`Subscribe`](crate::circuit::Subscribe)), and the manager no
/// longer hands it to the circuits it creates or recreates: a stuck
/// subscriber costs at most that many queued events, however many circuits
/// there are and however often they restart.
///
/// Without writing an actor, subscribe a closure ([`SubscribeAll::closure`])
/// or get a bounded channel of events ([`SubscribeAll::channel`]); both are
/// subscribers under the same rules, and the manager forgets them like any
/// other once they are dropped.
///
/// ```
/// use actix::prelude::*;
/// use vibezen_recovery::manager::SubscribeAll;
/// use vibezen_recovery::prelude::*;
///
/// struct Alerts;
/// impl Actor for Alerts { type Context = Context<Self>; }
/// impl Handler<StateChanged> for Alerts {
///     type Result = ();
///     fn handle(&mut self, event: StateChanged, _: &mut Context<Self>) {
///         println!("{}: {} -> {}", event.circuit, event.from, event.to);
///     }
/// }
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = CircuitBreakerManager::default().start();
/// manager.send(SubscribeAll(Alerts.start().recipient())).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct SubscribeAll(pub Recipient<StateChanged>);

impl SubscribeAll {
    /// Subscribes `on_event` to every circuit, called with each event on
    /// the arbiter this is called on, one at a time; each circuit's events
    /// in its order. Panics, threads and unsubscribing as for
    /// [`Subscribe::closure`](crate::circuit::Subscribe::closure).
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use actix::Actor;
    /// use vibezen_recovery::manager::SubscribeAll;
    /// use vibezen_recovery::prelude::*;
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let manager = CircuitBreakerManager::default().start();
    /// let opened = Rc::new(RefCell::new(Vec::new()));
    /// let log = Rc::clone(&opened);
    /// manager
    ///     .send(SubscribeAll::closure(move |event: StateChanged| {
    ///         if event.to == CircuitState::Open {
    ///             log.borrow_mut().push(event.circuit);
    ///         }
    ///     })?)
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn closure<F>(on_event: F) -> Result<SubscribeAll, SubscribeError>
    where
        F: FnMut(StateChanged) + 'static,
    {
        Subscribe::closure(on_event).map(|Subscribe(recipient)| SubscribeAll(recipient))
    }

    /// A subscription to every circuit that delivers into a bounded channel
    /// of `capacity` events, and its receiving end; each circuit's events
    /// in its order. Capacity, falling behind and dropping the reader as
    /// for [`Subscribe::channel`](crate::circuit::Subscribe::channel); the
    /// events end when the manager stops.
    ///
    /// ```
    /// use actix::Actor;
    /// use vibezen_recovery::manager::SubscribeAll;
    /// use vibezen_recovery::prelude::*;
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = CircuitBreakerConfig { failure_threshold: 1, ..Default::default() };
    /// let manager = CircuitBreakerManager::new(config)?.start();
    /// let (subscribe, mut changes) = SubscribeAll::channel(64)?;
    /// manager.send(subscribe).await?;
    ///
    /// // Created after the subscription, and heard all the same.
    /// let _ = manager.send(Call::new("ai_provider_openai", async { Err::<(), _>("down") })).await?;
    /// let event = changes.recv().await.expect("subscribed");
    /// assert_eq!((event.circuit.as_str(), event.to), ("ai_provider_openai", CircuitState::Open));
    /// # Ok(())
    /// # }
    /// ```
    pub fn channel(capacity: usize) -> Result<(SubscribeAll, StateChanges), SubscribeError> {
        let (Subscribe(recipient), changes) = Subscribe::channel(capacity)?;
        Ok((SubscribeAll(recipient), changes))
    }
}

impl Handler<SubscribeAll> for CircuitBreakerManager {
    type Result = ResponseFuture<()>;

    fn handle(
        &mut self,
        SubscribeAll(recipient): SubscribeAll,
        _: &mut Context<Self>,
    ) -> Self::Result {
        self.prune_subscribers();
        if !self.subscribers.contains(&recipient) {
            self.subscribers.push(recipient.clone());
        }
        let subscriptions: Vec<_> = self
            .all_live()
            .into_iter()
            .map(|(_, circuit)| circuit.send(Subscribe(recipient.clone())))
            .collect();
        Box::pin(async move {
            // A circuit that stopped meanwhile is recreated with the
            // subscription, so its error changes nothing.
            join_all(subscriptions).await;
        })
    }
}

//! Every circuit's state changes, to a closure or a channel, without
//! writing an actor: [`SubscribeAll::closure`] and
//! [`SubscribeAll::channel`] sent to the integration's manager.

use super::VibezenIntegration;
use crate::circuit::{StateChanged, StateChanges, SubscribeError};
use crate::manager::SubscribeAll;

impl VibezenIntegration {
    /// Calls `on_event` with every circuit's [`StateChanged`], present and
    /// future circuits alike, each circuit's events in its order; on this
    /// thread's arbiter, one event at a time. Once this returns, every
    /// present circuit has taken the subscription. A panic in `on_event` is
    /// logged and it stays subscribed; see
    /// [`Subscribe::closure`](crate::circuit::Subscribe::closure) for that
    /// and for the rule that drops a subscriber that falls behind.
    ///
    /// For what a workflow does on an outage and a recovery,
    /// [`register_degradation_handler`](Self::register_degradation_handler)
    /// and [`register_recovery_handler`](Self::register_recovery_handler)
    /// say it more directly; this is for everything else (metrics, alerts,
    /// logs).
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use vibezen_recovery::integration::{VibezenIntegration, WorkflowConfig};
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let vibezen = VibezenIntegration::new(WorkflowConfig::default())?;
    /// let changes = Rc::new(Cell::new(0));
    /// let count = Rc::clone(&changes);
    /// vibezen
    ///     .on_state_change(move |event| {
    ///         println!("{}: {} -> {} ({})", event.circuit, event.from, event.to, event.reason);
    ///         count.set(count.get() + 1);
    ///     })
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn on_state_change<F>(&self, on_event: F) -> Result<(), SubscribeError>
    where
        F: FnMut(StateChanged) + 'static,
    {
        self.subscribe_all(SubscribeAll::closure(on_event)?).await
    }

    /// Every circuit's [`StateChanged`] events through a bounded channel of
    /// `capacity`, present and future circuits alike, each circuit's events
    /// in its order. Once this returns, every present circuit has taken the
    /// subscription. Read them with [`StateChanges::recv`] or as a
    /// `Stream`; a reader that falls more than `capacity` +
    /// [`MAX_SUBSCRIBER_BACKLOG`](crate::circuit::MAX_SUBSCRIBER_BACKLOG)
    /// events behind is unsubscribed, and dropping it unsubscribes.
    ///
    /// Refused with a capacity of 0 ([`SubscribeError::InvalidCapacity`]).
    ///
    /// ```
    /// use vibezen_recovery::integration::{VibezenIntegration, WorkflowConfig};
    /// use vibezen_recovery::state::CircuitState;
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let vibezen = VibezenIntegration::new(WorkflowConfig::default())?;
    /// let mut changes = vibezen.state_changes(64).await?;
    /// actix::spawn(async move {
    ///     while let Some(event) = changes.recv().await {
    ///         if event.to == CircuitState::Open {
    ///             eprintln!("{} is down: {}", event.circuit, event.reason);
    ///         }
    ///     }
    /// });
    /// # Ok(())
    /// # }
    /// ```
    pub async fn state_changes(&self, capacity: usize) -> Result<StateChanges, SubscribeError> {
        let (subscribe, changes) = SubscribeAll::channel(capacity)?;
        self.subscribe_all(subscribe).await?;
        Ok(changes)
    }

    async fn subscribe_all(&self, subscribe: SubscribeAll) -> Result<(), SubscribeError> {
        self.manager
            .send(subscribe)
            .await
            .map_err(|_| SubscribeError::ManagerUnavailable)
    }
}

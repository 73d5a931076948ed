//! `on_state_change` and `state_changes`: every circuit's events without
//! writing an actor.

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::StreamExt;
use vibezen_recovery::circuit::{StateChanged, SubscribeError};
use vibezen_recovery::state::CircuitState;

use crate::support::*;

/// Opens "ai" and then "search", then closes both with trial successes.
async fn two_outages(vibezen: &vibezen_recovery::integration::VibezenIntegration) {
    fail(vibezen, "ai").await;
    fail(vibezen, "search").await;
    advance(secs(61)).await;
    for name in ["ai", "search"] {
        succeed(vibezen, name).await.unwrap();
        succeed(vibezen, name).await.unwrap();
    }
    settle().await;
}

fn edges(events: &[StateChanged], circuit: &str) -> Vec<(CircuitState, CircuitState)> {
    events
        .iter()
        .filter(|e| e.circuit == circuit)
        .map(|e| (e.from, e.to))
        .collect()
}

const OUTAGE: [(CircuitState, CircuitState); 3] = [
    (CircuitState::Closed, CircuitState::Open),
    (CircuitState::Open, CircuitState::HalfOpen),
    (CircuitState::HalfOpen, CircuitState::Closed),
];

#[actix::test]
async fn on_state_change_calls_the_closure_for_every_circuit() {
    tokio::time::pause();
    within(async {
        let vibezen = integration();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let log = Rc::clone(&seen);
        vibezen
            .on_state_change(move |event| log.borrow_mut().push(event))
            .await
            .unwrap();
        two_outages(&vibezen).await;
        let seen = seen.borrow().clone();
        assert_eq!(seen.len(), 6);
        assert_eq!(edges(&seen, "ai"), OUTAGE);
        assert_eq!(edges(&seen, "search"), OUTAGE);
    })
    .await;
}

#[actix::test]
async fn state_changes_delivers_every_circuit_in_order() {
    tokio::time::pause();
    within(async {
        let vibezen = integration();
        let changes = vibezen.state_changes(2).await.unwrap();
        two_outages(&vibezen).await;
        // Six events through a channel of two: none lost, none reordered.
        let received: Vec<_> = changes.take(6).collect().await;
        assert_eq!(edges(&received, "ai"), OUTAGE);
        assert_eq!(edges(&received, "search"), OUTAGE);
    })
    .await;
}

#[actix::test]
async fn state_changes_refuses_a_channel_of_no_capacity() {
    within(async {
        let vibezen = integration();
        assert_eq!(
            vibezen.state_changes(0).await.unwrap_err(),
            SubscribeError::InvalidCapacity(0)
        );
    })
    .await;
}

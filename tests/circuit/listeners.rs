//! Subscribing a closure or a channel to one circuit: order, backpressure
//! without loss, the end of the events, and what is refused.

use std::cell::RefCell;
use std::rc::Rc;

use actix::prelude::*;
use futures_util::StreamExt;
use vibezen_recovery::circuit::{
    CircuitBreaker, StateChanged, Stats, Stop, Subscribe, SubscribeError, Unsubscribe,
};
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::state::CircuitState;

use crate::support::*;

/// CLOSED -> OPEN -> HALF_OPEN -> OPEN -> HALF_OPEN -> CLOSED.
const CYCLE: [(CircuitState, CircuitState); 5] = [
    (CircuitState::Closed, CircuitState::Open),
    (CircuitState::Open, CircuitState::HalfOpen),
    (CircuitState::HalfOpen, CircuitState::Open),
    (CircuitState::Open, CircuitState::HalfOpen),
    (CircuitState::HalfOpen, CircuitState::Closed),
];

async fn full_cycle(circuit: &Addr<CircuitBreaker>) {
    fail(circuit).await.unwrap_err();
    advance(secs(60)).await;
    fail(circuit).await.unwrap_err();
    advance(secs(60)).await;
    succeed(circuit).await.unwrap();
    succeed(circuit).await.unwrap();
    settle().await;
}

fn touchy() -> Addr<CircuitBreaker> {
    start(CircuitBreakerConfig {
        failure_threshold: 1,
        ..Default::default()
    })
}

fn edges(events: &[StateChanged]) -> Vec<(CircuitState, CircuitState)> {
    events.iter().map(|e| (e.from, e.to)).collect()
}

#[actix::test]
async fn a_closure_gets_every_event_in_order() {
    tokio::time::pause();
    within(async {
        let circuit = touchy();
        // Not `Send`: the closure runs on this thread.
        let seen = Rc::new(RefCell::new(Vec::new()));
        let log = Rc::clone(&seen);
        let subscribe = Subscribe::closure(move |event| log.borrow_mut().push(event)).unwrap();
        circuit.send(subscribe).await.unwrap();
        full_cycle(&circuit).await;
        let seen = seen.borrow().clone();
        assert_eq!(edges(&seen), CYCLE);
        assert_eq!(circuit.send(Stats).await.unwrap().state_changes, seen);
    })
    .await;
}

#[actix::test]
async fn a_closure_is_unsubscribed_through_its_recipient() {
    tokio::time::pause();
    within(async {
        let circuit = touchy();
        let seen = Rc::new(RefCell::new(0));
        let count = Rc::clone(&seen);
        let subscribe = Subscribe::closure(move |_| *count.borrow_mut() += 1).unwrap();
        let recipient = subscribe.0.clone();
        circuit.send(subscribe).await.unwrap();
        fail(&circuit).await.unwrap_err();
        settle().await;
        assert_eq!(*seen.borrow(), 1);
        circuit.send(Unsubscribe(recipient)).await.unwrap();
        full_cycle(&circuit).await;
        assert_eq!(*seen.borrow(), 1, "nothing after unsubscribing");
        assert_eq!(circuit.send(Stats).await.unwrap().subscribers, 0);
    })
    .await;
}

#[actix::test]
async fn a_channel_read_after_the_events_loses_nothing_and_keeps_their_order() {
    tokio::time::pause();
    within(async {
        let circuit = touchy();
        // Room for one: the other four wait, in order, in the subscription.
        let (subscribe, mut changes) = Subscribe::channel(1).unwrap();
        circuit.send(subscribe).await.unwrap();
        full_cycle(&circuit).await;
        let mut received = Vec::new();
        for _ in 0..CYCLE.len() {
            received.push(within(changes.recv()).await.expect("subscribed"));
        }
        assert_eq!(edges(&received), CYCLE);
        assert_eq!(circuit.send(Stats).await.unwrap().state_changes, received);
    })
    .await;
}

#[actix::test]
async fn a_channel_is_a_stream() {
    tokio::time::pause();
    within(async {
        let circuit = touchy();
        let (subscribe, changes) = Subscribe::channel(8).unwrap();
        circuit.send(subscribe).await.unwrap();
        let read = actix::spawn(changes.take(CYCLE.len()).collect::<Vec<_>>());
        full_cycle(&circuit).await;
        let received = read.await.unwrap();
        assert_eq!(edges(&received), CYCLE);
    })
    .await;
}

#[actix::test]
async fn a_channel_ends_when_its_circuit_stops() {
    tokio::time::pause();
    within(async {
        let circuit = touchy();
        let (subscribe, mut changes) = Subscribe::channel(8).unwrap();
        circuit.send(subscribe).await.unwrap();
        fail(&circuit).await.unwrap_err();
        circuit.send(Stop).await.unwrap();
        assert_eq!(changes.recv().await.map(|e| e.to), Some(CircuitState::Open));
        assert_eq!(changes.recv().await, None, "nothing can come any more");
    })
    .await;
}

#[actix::test]
async fn dropping_the_reader_unsubscribes() {
    tokio::time::pause();
    within(async {
        let circuit = touchy();
        let (subscribe, changes) = Subscribe::channel(8).unwrap();
        let recipient = subscribe.0.clone();
        circuit.send(subscribe).await.unwrap();
        drop(changes);
        settle().await;
        assert!(
            !recipient.connected(),
            "the listener stopped with its reader"
        );
        // The circuit prunes it at its next event, like any dead subscriber.
        fail(&circuit).await.unwrap_err();
        assert_eq!(circuit.send(Stats).await.unwrap().subscribers, 0);
    })
    .await;
}

#[test]
fn a_channel_of_no_capacity_is_refused() {
    let err = Subscribe::channel(0).unwrap_err();
    assert_eq!(err, SubscribeError::InvalidCapacity(0));
    assert_eq!(
        err.to_string(),
        format!(
            "a state-change channel holds 1 to {} events, not 0",
            tokio::sync::Semaphore::MAX_PERMITS
        )
    );
    assert_eq!(
        Subscribe::channel(usize::MAX).unwrap_err(),
        SubscribeError::InvalidCapacity(usize::MAX)
    );
}

/// Without a System there is no arbiter to start the listener on: an
/// error, not a panic inside actix.
#[test]
fn outside_a_system_subscribing_is_refused() {
    assert_eq!(
        Subscribe::closure(|_| {}).unwrap_err(),
        SubscribeError::NoSystem
    );
    assert_eq!(Subscribe::channel(4).unwrap_err(), SubscribeError::NoSystem);
}

/// A plain tokio runtime is not an actix System either.
#[tokio::test]
async fn inside_a_plain_tokio_runtime_subscribing_is_refused() {
    assert_eq!(Subscribe::channel(4).unwrap_err(), SubscribeError::NoSystem);
}

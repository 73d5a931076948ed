//! State-change broadcasts: order, history, dead and slow subscribers.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::{Arc, Barrier};

use actix::prelude::*;
use tokio::sync::mpsc;
use vibezen_recovery::circuit::{
    CircuitBreaker, HISTORY_LIMIT, MAX_SUBSCRIBER_BACKLOG, Reset, StateChanged, Stats, Stop,
    Subscribe, Unsubscribe,
};
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::state::CircuitState;

use crate::support::*;

/// Drives a circuit through CLOSED -> OPEN -> HALF_OPEN -> OPEN -> HALF_OPEN -> CLOSED.
async fn full_cycle(circuit: &Addr<CircuitBreaker>) {
    fail(circuit).await.unwrap_err();
    advance(secs(60)).await;
    fail(circuit).await.unwrap_err();
    advance(secs(60)).await;
    succeed(circuit).await.unwrap();
    succeed(circuit).await.unwrap();
    settle().await;
}

const CYCLE: [(CircuitState, CircuitState); 5] = [
    (CircuitState::Closed, CircuitState::Open),
    (CircuitState::Open, CircuitState::HalfOpen),
    (CircuitState::HalfOpen, CircuitState::Open),
    (CircuitState::Open, CircuitState::HalfOpen),
    (CircuitState::HalfOpen, CircuitState::Closed),
];

fn edges(events: &[StateChanged]) -> Vec<(CircuitState, CircuitState)> {
    events.iter().map(|e| (e.from, e.to)).collect()
}

#[actix::test]
async fn events_arrive_in_order_and_match_the_history() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 1,
            ..Default::default()
        });
        let mut first = record_events(&circuit).await;
        let mut second = record_events(&circuit).await;
        full_cycle(&circuit).await;
        let mut received = Vec::new();
        for _ in 0..CYCLE.len() {
            received.push(next_event(&mut first).await);
        }
        assert_eq!(edges(&received), CYCLE);
        for expected in &received {
            assert_eq!(&next_event(&mut second).await, expected);
        }
        assert!(
            received
                .windows(2)
                .all(|w| w[0].at <= w[1].at && w[0].generation < w[1].generation)
        );
        assert!(received.iter().all(|e| e.circuit == "test"));
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(stats.state_changes, received);
        assert_eq!(stats.last_state_change_at, received.last().unwrap().at);
    })
    .await;
}

#[actix::test]
async fn the_history_is_bounded() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 1,
            ..Default::default()
        });
        for _ in 0..150 {
            fail(&circuit).await.unwrap_err();
            circuit.send(Reset).await.unwrap();
        }
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(stats.state_changes.len(), HISTORY_LIMIT);
        assert_eq!(stats.generation, 300);
        assert_eq!(stats.state_changes.last().unwrap().generation, 300);
    })
    .await;
}

#[actix::test]
async fn unsubscribed_recipients_hear_nothing_more() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 1,
            ..Default::default()
        });
        let (sender, mut events) = mpsc::unbounded_channel();
        let recipient = Recorder(sender).start().recipient();
        circuit.send(Subscribe(recipient.clone())).await.unwrap();
        circuit.send(Subscribe(recipient.clone())).await.unwrap(); // no double delivery
        fail(&circuit).await.unwrap_err();
        assert_eq!(next_event(&mut events).await.to, CircuitState::Open);
        circuit.send(Unsubscribe(recipient)).await.unwrap();
        circuit.send(Reset).await.unwrap();
        settle().await;
        assert!(
            events.try_recv().is_err(),
            "no duplicate and nothing after unsubscribing"
        );
        assert_eq!(circuit.send(Stats).await.unwrap().subscribers, 0);
    })
    .await;
}

/// Stops itself on the first event it gets.
struct OneShot;

impl Actor for OneShot {
    type Context = Context<Self>;
}

impl Handler<StateChanged> for OneShot {
    type Result = ();

    fn handle(&mut self, _: StateChanged, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

#[actix::test]
async fn dead_subscribers_are_pruned_and_harm_no_one() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 1,
            ..Default::default()
        });
        circuit
            .send(Subscribe(OneShot.start().recipient()))
            .await
            .unwrap();
        let mut events = record_events(&circuit).await;
        full_cycle(&circuit).await;
        for expected in CYCLE {
            let event = next_event(&mut events).await;
            assert_eq!((event.from, event.to), expected);
        }
        assert_eq!(circuit.send(Stats).await.unwrap().subscribers, 1);
    })
    .await;
}

/// Says when it has stopped.
struct Watched(Rc<Cell<bool>>);

impl Actor for Watched {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.0.set(true);
    }
}

impl Handler<StateChanged> for Watched {
    type Result = ();

    fn handle(&mut self, _: StateChanged, _: &mut Context<Self>) {}
}

/// The registry of subscribers' standings held a strong recipient, which
/// kept a subscriber that nobody else held alive until some later
/// subscription happened to sweep the registry. (The registry is shared by
/// the whole binary, so on that code this passed whenever another test
/// subscribed during the `settle`.)
#[actix::test]
async fn a_subscriber_no_circuit_holds_any_more_stops() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig::default());
        let stopped = Rc::new(Cell::new(false));
        let subscriber = Watched(Rc::clone(&stopped)).start().recipient();
        circuit.send(Subscribe(subscriber)).await.unwrap();
        circuit.send(Stop).await.unwrap();
        settle().await;
        assert!(stopped.get(), "something still holds the subscriber");
    })
    .await;
}

/// Takes events only after the test opens its gate.
struct Blocked {
    gate: Arc<Barrier>,
    sender: std::sync::mpsc::Sender<StateChanged>,
}

impl Actor for Blocked {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1);
    }
}

impl Handler<StateChanged> for Blocked {
    type Result = ();

    fn handle(&mut self, event: StateChanged, _: &mut Context<Self>) {
        self.gate.wait();
        let _ = self.sender.send(event);
    }
}

#[actix::test]
async fn a_stuck_subscriber_blocks_no_one_and_loses_nothing() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 1,
            ..Default::default()
        });
        let gate = Arc::new(Barrier::new(2));
        let (sender, slow_events) = std::sync::mpsc::channel();
        let slow_events = Arc::new(std::sync::Mutex::new(slow_events));
        let arbiter = Arbiter::new();
        let blocked = {
            let gate = Arc::clone(&gate);
            Blocked::start_in_arbiter(&arbiter.handle(), move |_| Blocked { gate, sender })
        };
        circuit.send(Subscribe(blocked.recipient())).await.unwrap();
        let mut events = record_events(&circuit).await;
        // The slow subscriber's thread waits at the gate while the circuit
        // goes through a whole cycle.
        full_cycle(&circuit).await;
        for expected in CYCLE {
            assert_eq!(next_event(&mut events).await.to, expected.1);
        }
        // Open the gate once per event. The wait runs on a blocking thread,
        // which keeps the paused clock from jumping to the test's deadline
        // while the other arbiter works.
        for expected in CYCLE {
            let (gate, slow_events) = (Arc::clone(&gate), Arc::clone(&slow_events));
            let event = tokio::task::spawn_blocking(move || {
                gate.wait();
                slow_events
                    .lock()
                    .unwrap()
                    .recv_timeout(std::time::Duration::from_secs(30))
            })
            .await
            .unwrap()
            .expect("the slow subscriber lost an event");
            assert_eq!((event.from, event.to), expected);
        }
        arbiter.stop();
    })
    .await;
}

/// Holds up its thread until the test lets go, then takes events as they come.
struct Stuck {
    release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Actor for Stuck {
    type Context = Context<Self>;
}

impl Handler<StateChanged> for Stuck {
    type Result = ();

    fn handle(&mut self, _: StateChanged, _: &mut Context<Self>) {
        // Returns once the sender is dropped.
        let _ = self.release.lock().unwrap().recv();
    }
}

#[actix::test]
async fn a_subscriber_that_never_reads_is_dropped_before_memory_grows_without_bound() {
    tokio::time::pause();
    within(async {
        let circuit = start(CircuitBreakerConfig {
            failure_threshold: 1,
            ..Default::default()
        });
        let (release, held) = std::sync::mpsc::channel();
        let arbiter = Arbiter::new();
        let stuck = Stuck::start_in_arbiter(&arbiter.handle(), move |_| Stuck {
            release: std::sync::Mutex::new(held),
        });
        circuit.send(Subscribe(stuck.recipient())).await.unwrap();
        let mut events = record_events(&circuit).await;
        let cycles = MAX_SUBSCRIBER_BACKLOG as usize;
        for _ in 0..cycles {
            fail(&circuit).await.unwrap_err();
            circuit.send(Reset).await.unwrap();
        }
        // The stuck one is gone; the live one missed nothing.
        assert_eq!(circuit.send(Stats).await.unwrap().subscribers, 1);
        for _ in 0..cycles {
            assert_eq!(next_event(&mut events).await.to, CircuitState::Open);
            assert_eq!(next_event(&mut events).await.to, CircuitState::Closed);
        }
        drop(release);
        arbiter.stop();
    })
    .await;
}

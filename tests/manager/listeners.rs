//! A closure or a channel subscribed to every circuit through the manager:
//! order across circuits, panics, a reader that never reads, a reader that
//! is dropped.

use std::cell::RefCell;
use std::rc::Rc;

use actix::prelude::*;
use vibezen_recovery::circuit::{MAX_SUBSCRIBER_BACKLOG, StateChanged, Stats, Stop};
use vibezen_recovery::manager::{CircuitBreakerManager, GetBreaker, ResetCircuit, SubscribeAll};
use vibezen_recovery::state::CircuitState;

use crate::support::*;

const NAMES: [&str; 3] = ["ai", "cache", "search"];

async fn subscribers(manager: &Addr<CircuitBreakerManager>, name: &str) -> usize {
    let circuit = manager.send(GetBreaker::new(name)).await.unwrap().unwrap();
    circuit.send(Stats).await.unwrap().subscribers
}

/// Every circuit opens, turns HALF_OPEN and closes again: three events each.
async fn outage_and_recovery(manager: &Addr<CircuitBreakerManager>) {
    for name in NAMES {
        fail(manager, name).await.unwrap_err();
    }
    advance(secs(61)).await;
    for name in NAMES {
        succeed(manager, name).await.unwrap();
        succeed(manager, name).await.unwrap();
    }
    settle().await;
}

/// Each circuit's events, in the order they came.
fn of_circuit<'a>(events: &'a [StateChanged], name: &str) -> Vec<&'a StateChanged> {
    events.iter().filter(|e| e.circuit == name).collect()
}

#[actix::test]
async fn a_closure_hears_every_circuit_in_order() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        manager.send(GetBreaker::new("ai")).await.unwrap().unwrap();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let log = Rc::clone(&seen);
        manager
            .send(SubscribeAll::closure(move |event| log.borrow_mut().push(event)).unwrap())
            .await
            .unwrap();
        let mut recorded = record_all(&manager).await;
        // "cache" and "search" are created after the subscription.
        outage_and_recovery(&manager).await;
        let seen = seen.borrow().clone();
        assert_eq!(seen.len(), 3 * NAMES.len());
        assert_eq!(
            seen,
            drain(&mut recorded),
            "as an actor subscriber hears them"
        );
        for name in NAMES {
            let circuit = manager.send(GetBreaker::new(name)).await.unwrap().unwrap();
            let history = circuit.send(Stats).await.unwrap().state_changes;
            assert_eq!(of_circuit(&seen, name), history.iter().collect::<Vec<_>>());
        }
    })
    .await;
}

#[actix::test]
async fn a_panicking_closure_is_logged_and_stays_subscribed() {
    tokio::time::pause();
    within(async {
        let (logs, _guard) = Logs::capture();
        let manager = manager(touchy());
        let seen = Rc::new(RefCell::new(Vec::new()));
        let log = Rc::clone(&seen);
        let subscribe = SubscribeAll::closure(move |event: StateChanged| {
            log.borrow_mut().push((event.circuit.clone(), event.to));
            if event.to == CircuitState::Open {
                panic!("alerting is broken");
            }
        })
        .unwrap();
        manager.send(subscribe).await.unwrap();
        outage_and_recovery(&manager).await;
        let seen = seen.borrow().clone();
        for name in NAMES {
            let edges: Vec<_> = seen
                .iter()
                .filter(|(c, _)| c == name)
                .map(|(_, to)| *to)
                .collect();
            assert_eq!(
                edges,
                [
                    CircuitState::Open,
                    CircuitState::HalfOpen,
                    CircuitState::Closed
                ],
                "{name}: the closure was called again after it panicked"
            );
            let errors = logs.errors_about(name);
            assert_eq!(errors.len(), 1, "{name}: {errors:?}");
            assert!(errors[0].message.contains("closure panicked"), "{errors:?}");
            assert_eq!(subscribers(&manager, name).await, 1);
        }
    })
    .await;
}

/// A reader that never reads costs the channel's capacity, one event in
/// hand and the backlog the circuits allow, counted across all of them;
/// then it is dropped everywhere, the manager hands it to no new circuit,
/// the circuits go on, and the reader sees what was queued, then the end.
#[actix::test]
async fn a_channel_that_is_never_read_is_dropped_and_the_circuits_go_on() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        for name in NAMES {
            manager.send(GetBreaker::new(name)).await.unwrap().unwrap();
        }
        let mut recorded = record_all(&manager).await;
        let capacity = 4;
        let (subscribe, mut changes) = SubscribeAll::channel(capacity).unwrap();
        manager.send(subscribe).await.unwrap();
        let most = capacity + 1 + MAX_SUBSCRIBER_BACKLOG as usize;
        let mut emitted = 0;
        while emitted < most + 60 {
            for name in NAMES {
                fail(&manager, name).await.unwrap_err();
                manager
                    .send(ResetCircuit(name.into()))
                    .await
                    .unwrap()
                    .unwrap();
                emitted += 2;
            }
        }
        settle().await;
        for name in NAMES {
            assert_eq!(
                subscribers(&manager, name).await,
                1,
                "{name} still sends to it"
            );
        }
        let all = drain(&mut recorded);
        assert_eq!(all.len(), emitted, "the live subscriber lost an event");

        // The events end although the manager still holds the recipient
        // (it forgets it when it next creates a circuit).
        let mut held = Vec::new();
        while let Some(event) = changes.recv().await {
            held.push(event);
        }
        assert_eq!(held.len(), most);
        assert_eq!(
            held,
            all[..most],
            "what it got is the first events, in order"
        );
        assert_eq!(
            subscribers(&manager, "new").await,
            1,
            "handed to a new circuit"
        );
    })
    .await;
}

#[actix::test]
async fn the_manager_forgets_a_channel_whose_reader_is_dropped() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        for name in ["ai", "cache"] {
            manager.send(GetBreaker::new(name)).await.unwrap().unwrap();
        }
        let mut recorded = record_all(&manager).await;
        let (subscribe, changes) = SubscribeAll::channel(8).unwrap();
        manager.send(subscribe).await.unwrap();
        assert_eq!(subscribers(&manager, "ai").await, 2);
        drop(changes);
        settle().await;

        // Before any event could tell it the reader is gone, the manager
        // hands it to no new circuit ...
        assert_eq!(subscribers(&manager, "search").await, 1);
        // ... and no recreated one.
        let cache = manager
            .send(GetBreaker::new("cache"))
            .await
            .unwrap()
            .unwrap();
        cache.send(Stop).await.unwrap();
        settle().await;
        assert_eq!(subscribers(&manager, "cache").await, 1);
        // A circuit that had it drops it at its next event.
        fail(&manager, "ai").await.unwrap_err();
        assert_eq!(subscribers(&manager, "ai").await, 1);
        assert_eq!(next_event(&mut recorded).await.to, CircuitState::Open);
    })
    .await;
}

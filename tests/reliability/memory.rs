//! Section 3, memory: a subscriber that never reads, long histories, a
//! million distinct outcomes, many handles, many threads and recreated
//! circuits. Resident memory (VmRSS) is read before and after each load
//! (the tests of this binary run one at a time); each bound is several
//! times what the data would take if it were kept, so a leak shows and
//! allocator noise does not.

use std::time::Duration;

use actix::prelude::*;
use vibezen_recovery::circuit::{
    CircuitBreaker, GetHandle, HISTORY_LIMIT, MAX_SUBSCRIBER_BACKLOG, ProtectedCall, Reset, Stats,
    Stop, Subscribe,
};
use vibezen_recovery::config::{CircuitBreakerConfig, MAX_DURATION};
use vibezen_recovery::manager::{CircuitBreakerManager, GetBreaker, GetRegistry, SubscribeAll};
use vibezen_recovery::outcome::Outcome;
use vibezen_recovery::state::CircuitState;

use crate::paths::caught;
use crate::support::*;

const MIB: u64 = 1024;

/// Resident memory growth in KiB while `load` runs (negative counts as 0).
async fn growth<F: std::future::Future>(load: F) -> (u64, F::Output) {
    let before = rss_kib();
    let output = load.await;
    let after = rss_kib();
    (after.saturating_sub(before), output)
}

fn never_opening() -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        failure_threshold: u32::MAX,
        failure_rate_threshold: 1.0,
        reset_timeout: MAX_DURATION,
        ..Default::default()
    }
}

/// One subscriber's arbiter is blocked, so it never reads an event; a
/// live one reads them all. 100,000 transitions (a failure opens the
/// circuit, a reset closes it): the stuck subscriber is dropped once
/// [`MAX_SUBSCRIBER_BACKLOG`] events behind, the live one loses nothing,
/// the history stays at [`HISTORY_LIMIT`], and memory does not grow with
/// the number of transitions. Kept, 100,000 events would take some 25 MiB.
#[test]
fn a_subscriber_that_never_reads_and_a_long_history_stay_bounded() {
    serial_test(async {
        deadline(Duration::from_secs(120), "stuck subscriber", async {
        let circuit = CircuitBreaker::new(
            "stuck",
            CircuitBreakerConfig {
                failure_threshold: 1,
                reset_timeout: MAX_DURATION,
                ..Default::default()
            },
        )
        .unwrap()
        .start();
        let arbiters = Callers::new(2);
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        assert!(arbiters.arbiter(0).spawn(async move {
            let _ = blocked.recv();
        }));
        let stuck = Events::default();
        let live = Checked::default();
        circuit
            .send(Subscribe(stuck.subscriber(&arbiters.arbiter(0))))
            .await
            .unwrap();
        circuit
            .send(Subscribe(live.subscriber(&arbiters.arbiter(1), Duration::ZERO)))
            .await
            .unwrap();
        // Every 100 rounds the live subscriber is let catch up: it must
        // never be the one that falls too far behind (a live subscriber
        // slower than a burst of over 1,000 events is dropped too; see
        // docs/reliability.md).
        let cycle = |rounds: u32| {
            let (circuit, live) = (circuit.clone(), live.clone());
            async move {
                for round in 1..=rounds {
                    let _ = circuit
                        .send(ProtectedCall::new(async { Err::<(), u32>(1) }))
                        .await
                        .unwrap();
                    circuit.send(Reset).await.unwrap();
                    if round % 100 == 0 {
                        let generation = circuit.send(Stats).await.unwrap().generation;
                        while live.events("stuck") + 200 < generation {
                            tokio::task::yield_now().await;
                            std::thread::yield_now();
                        }
                    }
                }
            }
        };
        // Past the cap, so that what is kept is at its steady size.
        cycle(MAX_SUBSCRIBER_BACKLOG + 1_000).await;
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(stats.subscribers, 1, "the stuck subscriber was dropped");
        let (grown, ()) = growth(cycle(50_000)).await;
        let stats = circuit.send(Stats).await.unwrap();
        // The live subscriber may lag a little behind (debug build).
        deadline(Duration::from_secs(30), "live subscriber", async {
            while live.events("stuck") < stats.generation {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        // Unblocked, the stuck subscriber reads what its mailbox held: at
        // most its capacity (16) plus the backlog the circuit allows.
        let _ = release.send(());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let held = stuck.len();
        arbiters.shut_down();

        println!(
            "stuck subscriber (its mailbox held {held} events): {} transitions, VmRSS grew {grown} KiB over the last 100,000; \
             history {}, live subscriber got {}",
            stats.generation,
            stats.state_changes.len(),
            live.events("stuck")
        );
        assert_eq!(stats.state_changes.len(), HISTORY_LIMIT);
        assert_eq!(stats.subscribers, 1);
        assert_eq!(stats.state, CircuitState::Closed);
        assert_eq!(live.events("stuck"), stats.generation, "the live one lost nothing");
        let (count, violations) = live.violations();
        assert_eq!(count, 0, "{violations:#?}");
        assert!(
            held > 0 && held <= 16 + MAX_SUBSCRIBER_BACKLOG as usize + 1,
            "the stuck subscriber's mailbox held {held} events"
        );
        assert!(grown < 4 * MIB, "VmRSS grew {grown} KiB");
    })
    .await;
    })
}

/// A million fast-path calls with a million distinct answers (strings
/// that are made, returned and dropped), 20,000 `ProtectedCall`s with
/// distinct errors and 2,000 distinct panics: the circuit keeps counts,
/// not outcomes, so memory does not grow with them.
#[test]
fn a_million_distinct_outcomes_leave_no_trace() {
    serial_test(async {
        quiet_injected_panics();
        deadline(Duration::from_secs(300), "distinct outcomes", async {
            let circuit = CircuitBreaker::new("distinct", never_opening())
                .unwrap()
                .start();
            let handle = circuit.send(GetHandle).await.unwrap();
            let calls = |from: u64, to: u64| {
                let handle = handle.clone();
                async move {
                    for i in from..to {
                        let answer = handle
                            .call(async move {
                                if i % 5 == 0 {
                                    Err(format!("distinct error number {i}"))
                                } else {
                                    Ok(format!("distinct answer number {i}"))
                                }
                            })
                            .await;
                        assert_eq!(answer.is_ok(), i % 5 != 0);
                        if i % 10_000 == 0 {
                            // Let the circuit fold its counters in now and then.
                            tokio::task::yield_now().await;
                        }
                    }
                }
            };
            calls(0, 20_000).await;
            let (grown, ()) = growth(async {
                // Handle calls on the circuit's own thread (the fold race with
                // other threads is a bug of its own, tested elsewhere).
                calls(20_000, 1_020_000).await;
                // One in eleven panics, two fail: the window never reaches
                // the failure rate that would open the circuit.
                for i in 0..22_000u64 {
                    let answer = circuit
                        .send(ProtectedCall::new(async move {
                            match i % 11 {
                                0 => inject_panic(format!("distinct panic {i}")),
                                1 | 2 => Err(format!("distinct protected error {i}")),
                                _ => Ok(format!("distinct protected answer {i}")),
                            }
                        }))
                        .await
                        .unwrap();
                    assert_eq!(answer.is_ok(), i % 11 > 2);
                }
            })
            .await;
            let stats = circuit.send(Stats).await.unwrap();
            let t = stats.totals;
            println!(
                "distinct outcomes: VmRSS grew {grown} KiB over {} calls; {t:?}",
                t.calls
            );
            assert_eq!(t.calls, 1_020_000 + 22_000);
            assert_eq!(t[Outcome::Failure], 1_020_000 / 5 + 4_000);
            assert_eq!(t[Outcome::Panic], 2_000);
            assert_eq!(t.rejections, 0);
            assert_eq!(stats.window_calls, 100);
            assert!(grown < 4 * MIB, "VmRSS grew {grown} KiB");
        })
        .await;
    })
}

/// 100,000 live handles cost what their small shared state costs, and are
/// given back; 2,000 short-lived threads calling through one handle are
/// all counted and leave nothing behind (per-thread counter slots are
/// reused).
#[test]
fn many_handles_and_threads_stay_bounded() {
    serial_test(async {
        deadline(Duration::from_secs(120), "handles and threads", async {
            // The circuit runs on an arbiter of its own, which each wave of
            // threads finds blocked: no fold runs while they call (a fold
            // racing fast-path calls on other threads is a bug of its own,
            // see docs/reliability.md); the counts are folded in after.
            let home = Arbiter::new();
            let circuit = CircuitBreaker::start_in_arbiter(&home.handle(), |_| {
                CircuitBreaker::new("handles", never_opening()).unwrap()
            });
            let mut handles = Vec::with_capacity(100_000);
            let before = rss_kib();
            for _ in 0..100_000 {
                handles.push(circuit.send(GetHandle).await.unwrap());
            }
            let live = rss_kib().saturating_sub(before);
            drop(handles);
            let (again, ()) = growth(async {
                for _ in 0..100_000 {
                    drop(circuit.send(GetHandle).await.unwrap());
                }
            })
            .await;

            let handle = circuit.send(GetHandle).await.unwrap();
            let (threads, ()) = growth(async {
                for wave in 0..20 {
                    let (blocked, held) = std::sync::mpsc::channel::<()>();
                    let (release, hold) = std::sync::mpsc::channel::<()>();
                    home.spawn(async move {
                        let _ = blocked.send(());
                        let _ = hold.recv();
                    });
                    held.recv().unwrap();
                    let workers: Vec<_> = (0..100)
                        .map(|_| {
                            let handle = handle.clone();
                            std::thread::spawn(move || {
                                let runtime = tokio::runtime::Builder::new_current_thread()
                                    .enable_time()
                                    .build()
                                    .unwrap();
                                runtime.block_on(async {
                                    for i in 0..100u32 {
                                        let _ = caught(handle.call(async move {
                                            if i % 4 == 0 { Err(i) } else { Ok(i) }
                                        }))
                                        .await;
                                    }
                                });
                            })
                        })
                        .collect();
                    for worker in workers {
                        worker.join().unwrap();
                    }
                    release.send(()).unwrap();
                    if wave % 5 == 0 {
                        circuit.send(Stats).await.unwrap();
                    }
                }
            })
            .await;
            let stats = circuit.send(Stats).await.unwrap();
            home.stop();
            let _ = home.join();
            println!(
                "handles: 100,000 live handles took {live} KiB ({} bytes each); another 100,000 \
             made and dropped grew VmRSS {again} KiB; 2,000 threads x 100 calls grew it \
             {threads} KiB; totals {:?}",
                live * 1024 / 100_000,
                stats.totals
            );
            assert_eq!(stats.totals.calls, 200_000);
            assert_eq!(stats.totals[Outcome::Failure], 50_000);
            assert_eq!(stats.in_flight, 0);
            assert!(live < 50 * MIB, "100,000 handles took {live} KiB");
            assert!(again < 2 * MIB, "VmRSS grew {again} KiB");
            assert!(threads < 8 * MIB, "VmRSS grew {threads} KiB");
        })
        .await;
    })
}

/// A circuit stopped and recreated 5,000 times under one name costs
/// nothing more: the dead actors are freed. Distinct names are another
/// matter: the manager keeps every circuit it ever made and each name is
/// interned for the life of the process; the test measures what one
/// costs (a figure for the docs, with a loose bound).
#[test]
fn recreated_circuits_are_freed_and_distinct_ones_cost_a_little_each() {
    serial_test(async {
        deadline(Duration::from_secs(120), "recreated circuits", async {
            let manager = CircuitBreakerManager::default().start();
            let recreate = |rounds: u32| {
                let manager = manager.clone();
                async move {
                    for _ in 0..rounds {
                        let circuit = manager
                            .send(GetBreaker::new("phoenix"))
                            .await
                            .unwrap()
                            .unwrap();
                        circuit.send(Stop).await.unwrap();
                        while circuit.connected() {
                            tokio::task::yield_now().await;
                        }
                    }
                }
            };
            recreate(500).await;
            let (recreated, ()) = growth(recreate(5_000)).await;
            let (distinct, ()) = growth(async {
                for i in 0..20_000 {
                    manager
                        .send(GetBreaker::new(format!("tenant-{i:06}")))
                        .await
                        .unwrap()
                        .unwrap();
                }
            })
            .await;
            println!(
                "circuits: 5,000 recreations grew VmRSS {recreated} KiB; 20,000 distinct circuits \
             took {distinct} KiB ({} bytes each, kept for the life of the manager)",
                distinct * 1024 / 20_000
            );
            assert!(recreated < 2 * MIB, "VmRSS grew {recreated} KiB");
            assert!(
                distinct < 20_000 * 16,
                "{distinct} KiB for 20,000 circuits: over 16 KiB each"
            );
        })
        .await;
    })
}

/// Issue 15: the live heap (the counting allocator's bytes in use, not
/// VmRSS) stops growing under flapping circuits that are stopped and
/// recreated, with a stuck subscriber (its arbiter blocked, it never reads)
/// and a slow one (2 ms per event) on every circuit through the manager.
/// Before backlogs were counted per subscriber across circuits, each
/// recreated circuit handed the stuck subscriber up to
/// [`MAX_SUBSCRIBER_BACKLOG`] more events, and the heap grew for as long as
/// the run went on.
#[test]
fn the_live_heap_stays_flat_under_restarts_and_stuck_subscribers() {
    serial_test(async {
        let manager = CircuitBreakerManager::default()
            .sweep_every(Duration::from_millis(20))
            .start();
        let flappy = CircuitBreakerConfig {
            failure_threshold: 1,
            success_threshold: 1,
            timeout: Duration::from_millis(2),
            ..Default::default()
        };
        let names: Vec<String> = (0..8).map(|i| format!("flap_{i}")).collect();
        for name in &names {
            manager
                .send(GetBreaker::with_config(name.clone(), flappy.clone()))
                .await
                .unwrap()
                .unwrap();
        }
        let listeners = Callers::new(2);
        let (_release, blocked) = std::sync::mpsc::channel::<()>();
        assert!(listeners.arbiter(1).spawn(async move {
            let _ = blocked.recv();
        }));
        let (stuck, slow) = (Events::default(), Events::default());
        for recipient in [
            stuck.subscriber(&listeners.arbiter(1)),
            slow.slow_subscriber(&listeners.arbiter(0), Duration::from_millis(2)),
        ] {
            manager.send(SubscribeAll(recipient)).await.unwrap();
        }
        let registry = manager.send(GetRegistry).await.unwrap();

        let started = std::time::Instant::now();
        let mut samples = Vec::new();
        let mut restarts = 0u64;
        let mut round = 0u64;
        deadline(Duration::from_secs(60), "heap load", async {
            for at in [Duration::from_secs(10), Duration::from_secs(20)] {
                while started.elapsed() < at {
                    round += 1;
                    for name in &names {
                        let _ = registry.call(name, async { Err::<(), _>("down") }).await;
                    }
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    for name in &names {
                        let _ = registry.call(name, async { Ok::<(), &str>(()) }).await;
                    }
                    if round % 20 == 0 {
                        let victim = &names[(round / 20) as usize % names.len()];
                        let circuit = manager
                            .send(GetBreaker::new(victim.clone()))
                            .await
                            .unwrap()
                            .unwrap();
                        let _ = circuit.send(Stop).await;
                        restarts += 1;
                    }
                }
                // The lowest of a few readings: messages in flight come and go.
                let mut lowest = u64::MAX;
                for _ in 0..10 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    lowest = lowest.min(crate::heap::live_bytes());
                }
                samples.push(lowest);
            }
        })
        .await;
        let grown = samples[1].saturating_sub(samples[0]);
        println!(
            "live heap {} KiB at 10 s, {} KiB at 20 s ({round} rounds, {restarts} restarts; \
             the slow subscriber read {} events, the stuck one {})",
            samples[0] / 1024,
            samples[1] / 1024,
            slow.len(),
            stuck.len()
        );
        assert!(
            grown < 1024 * 1024,
            "the live heap grew {} KiB between 10 s and 20 s",
            grown / 1024
        );
        listeners.abandon();
    })
}

//! Criterion benchmarks: every way to call through a circuit, next to
//! failsafe-rs, tower-resilience-circuitbreaker and a bare actix round trip.
//!
//! `cargo bench --bench breakers` (a few minutes); `cargo bench --bench
//! breakers -- handle` for one group. For a one-minute overview with
//! allocation counts, the flood, trip and scale checks and the targets, run
//! `cargo run --release --example bench_report` instead; allocations, those
//! checks and the 10,000-circuit scale run are only there.
//!
//! Groups:
//! - `closed`: direct call, failsafe-rs (default config, 5 consecutive
//!   failures), tower-resilience-circuitbreaker (count window 100), and the
//!   fast-path handle (all successes, 1 % failures, and a handle obtained
//!   from the manager with `GetCircuitHandle`);
//! - `open`: rejection by an OPEN breaker through each of those and through
//!   `ProtectedCall`, `Acquire` and the manager's `Call`;
//! - `actor`: a bare `send` round trip and our message paths (`ProtectedCall`,
//!   the permit path, `addr.call`, the manager's `Call`), on the same arbiter
//!   and across arbiters;
//! - `two_threads`: two threads calling at once (one handle circuit, two
//!   circuits, failsafe-rs and tower on one breaker); time per call on each
//!   thread.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use actix::{Actor, Addr, Arbiter, System, SystemRunner};
use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use vibezen_recovery::prelude::*;

use support::*;

fn quick(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
}

/// A circuit and its handle, started on the System's arbiter.
fn circuit(
    system: &SystemRunner,
    name: &str,
    config: CircuitBreakerConfig,
) -> (Addr<CircuitBreaker>, CircuitHandle) {
    let name = name.to_owned();
    system.block_on(async move {
        let addr = CircuitBreaker::new(name, config)
            .expect("valid circuit")
            .start();
        let handle = addr.send(GetHandle).await.expect("circuit running");
        (addr, handle)
    })
}

fn opened(system: &SystemRunner, name: &str) -> (Addr<CircuitBreaker>, CircuitHandle) {
    let (addr, handle) = circuit(system, name, opens_on_first_failure());
    system.block_on(async {
        let _ = addr.call(maybe_fail(true)).await;
    });
    assert_eq!(handle.state(), CircuitState::Open);
    (addr, handle)
}

/// A manager on the System's arbiter, with a CLOSED circuit `closed` and an
/// OPEN one `open`.
fn manager(system: &SystemRunner) -> Addr<CircuitBreakerManager> {
    system.block_on(async {
        let manager = CircuitBreakerManager::default().start();
        manager
            .send(GetBreaker::new("closed"))
            .await
            .expect("manager running")
            .expect("valid circuit");
        let open = manager
            .send(GetBreaker::with_config("open", opens_on_first_failure()))
            .await
            .expect("manager running")
            .expect("valid circuit");
        let _ = open.call(maybe_fail(true)).await;
        manager
    })
}

fn closed(c: &mut Criterion) {
    let system = System::new();
    let (_a, handle) = circuit(&system, "closed", closed_config());
    let (_b, never_trips) = circuit(&system, "never_trips", never_trips_config());
    let managed = system.block_on(async {
        let manager = CircuitBreakerManager::default().start();
        manager
            .send(GetCircuitHandle::new("managed"))
            .await
            .expect("manager running")
            .expect("valid circuit")
    });
    let mut group = c.benchmark_group("closed");
    quick(&mut group);
    group.bench_function("direct", |b| b.iter(direct));
    let breaker = failsafe_default();
    group.bench_function("failsafe_default", |b| b.iter(|| failsafe_call(&breaker)));
    let breaker = failsafe_consecutive(5, Duration::from_secs(30));
    group.bench_function("failsafe_consecutive_5", |b| {
        b.iter(|| failsafe_call(&breaker))
    });
    let mut service = tower_count_100();
    group.bench_function("tower_count_100", |b| {
        b.iter(|| block_on(tower_call(&mut service, false)))
    });
    group.bench_function("handle", |b| {
        b.iter(|| block_on(handle.call(black_box(ok()))))
    });
    let mut one_percent = OnePercent::default();
    group.bench_function("handle_1pct_failures", |b| {
        b.iter(|| block_on(never_trips.call(black_box(maybe_fail(one_percent.next())))))
    });
    group.bench_function("handle_via_get_circuit_handle", |b| {
        b.iter(|| block_on(managed.call(black_box(ok()))))
    });
    group.finish();
}

fn open(c: &mut Criterion) {
    let system = System::new();
    let (addr, handle) = opened(&system, "open");
    let manager = manager(&system);
    let mut group = c.benchmark_group("open");
    quick(&mut group);
    let breaker = failsafe_open();
    group.bench_function("failsafe", |b| b.iter(|| failsafe_call(&breaker)));
    let mut service = tower_open();
    group.bench_function("tower", |b| {
        b.iter(|| block_on(tower_call(&mut service, false)))
    });
    group.bench_function("handle", |b| {
        b.iter(|| block_on(handle.call(black_box(ok()))))
    });
    group.bench_function("protected_call", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let _ = black_box(addr.send(ProtectedCall::new(black_box(ok()))).await);
                }
                started.elapsed()
            })
        })
    });
    group.bench_function("acquire", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let _ = black_box(addr.send(Acquire).await);
                }
                started.elapsed()
            })
        })
    });
    group.bench_function("manager_call", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let _ = black_box(manager.send(Call::new("open", black_box(ok()))).await);
                }
                started.elapsed()
            })
        })
    });
    group.finish();
}

fn actor(c: &mut Criterion) {
    let system = System::new();
    let other = system.block_on(async { Arbiter::new() });
    let (same, _) = circuit(&system, "same", closed_config());
    let config = closed_config();
    let across = system.block_on(async {
        CircuitBreaker::start_in_arbiter(&other.handle(), move |_| {
            CircuitBreaker::new("across", config).expect("valid circuit")
        })
    });
    let manager = manager(&system);
    let (echo_same, echo_across) = system.block_on(async {
        (
            Echo.start(),
            Echo::start_in_arbiter(&other.handle(), |_| Echo),
        )
    });
    let mut group = c.benchmark_group("actor");
    quick(&mut group);
    // Each bench awaits `iters` calls on the System's arbiter.
    macro_rules! awaited {
        ($name:expr, $call:expr) => {
            group.bench_function($name, |b| {
                b.iter_custom(|iters| {
                    system.block_on(async {
                        let started = Instant::now();
                        for _ in 0..iters {
                            let _ = black_box($call);
                        }
                        started.elapsed()
                    })
                })
            });
        };
    }
    awaited!("send_same_arbiter", echo_same.send(Ping).await);
    awaited!("send_across_arbiters", echo_across.send(Ping).await);
    awaited!(
        "protected_call_same_arbiter",
        same.send(ProtectedCall::new(black_box(ok()))).await
    );
    awaited!(
        "protected_call_across_arbiters",
        across.send(ProtectedCall::new(black_box(ok()))).await
    );
    awaited!("permit", {
        let permit = same.send(Acquire).await.expect("running").expect("closed");
        let result = block_on(black_box(ok()));
        permit.record(&result);
        result
    });
    awaited!("ext_call", same.call(black_box(ok())).await);
    awaited!(
        "manager_call_same_arbiter",
        manager.send(Call::new("closed", black_box(ok()))).await
    );
    group.finish();
    system.block_on(async move { other.stop() });
}

/// Two threads each make `iters` calls at once; the mean time per thread.
fn two_at_once<F: FnMut() + Send>(workers: [F; 2], iters: u64) -> Duration {
    let ready = Barrier::new(2);
    let times: Vec<Duration> = std::thread::scope(|scope| {
        let threads: Vec<_> = workers
            .into_iter()
            .map(|mut call| {
                let ready = &ready;
                scope.spawn(move || {
                    for _ in 0..1_000 {
                        call();
                    }
                    ready.wait();
                    let started = Instant::now();
                    for _ in 0..iters {
                        call();
                    }
                    started.elapsed()
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("bench thread"))
            .collect()
    });
    times.iter().sum::<Duration>() / 2
}

fn two_threads(c: &mut Criterion) {
    let system = System::new();
    let (_a, one) = circuit(&system, "two_threads_one", closed_config());
    let (_b, first) = circuit(&system, "two_threads_a", closed_config());
    let (_c, second) = circuit(&system, "two_threads_b", closed_config());
    let mut group = c.benchmark_group("two_threads");
    quick(&mut group);
    let call_through = |handle: &CircuitHandle| {
        let handle = handle.clone();
        move || {
            let _ = black_box(block_on(handle.call(black_box(ok()))));
        }
    };
    group.bench_function("handle_one_circuit", |b| {
        b.iter_custom(|iters| two_at_once([call_through(&one), call_through(&one)], iters))
    });
    group.bench_function("handle_two_circuits", |b| {
        b.iter_custom(|iters| two_at_once([call_through(&first), call_through(&second)], iters))
    });
    let breaker = failsafe_default();
    group.bench_function("failsafe_one_breaker", |b| {
        b.iter_custom(|iters| {
            let call = || {
                let breaker = breaker.clone();
                move || {
                    let _ = black_box(failsafe_call(&breaker));
                }
            };
            two_at_once([call(), call()], iters)
        })
    });
    let service = tower_count_100();
    group.bench_function("tower_one_breaker", |b| {
        b.iter_custom(|iters| {
            let call = || {
                let mut service = service.clone();
                move || {
                    let _ = black_box(block_on(tower_call(&mut service, false)));
                }
            };
            two_at_once([call(), call()], iters)
        })
    });
    group.finish();
}

criterion_group!(benches, closed, open, actor, two_threads);
criterion_main!(benches);

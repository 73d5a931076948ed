//! The quick benchmark report: every way to call through a circuit, side by
//! side with failsafe-rs, tower-resilience-circuitbreaker and a bare actix
//! round trip, in one run, plus the checks of issue 4's targets.
//!
//! Run with `cargo run --release --example bench_report`; it takes well under
//! a minute. Each path is timed in batches of calls, in rounds that visit
//! every path in turn, so that a noisy moment of the machine hits all paths
//! alike; the table shows each path's median over the rounds. A second pass
//! counts heap allocations per call with a counting global allocator. The
//! scale check (10,000 circuits in one `CircuitBreakerManager`) runs in a
//! child process, this program started again with `--scale-child`, so that
//! its resident-memory deltas start from a fresh heap.

#[path = "../benches/support/mod.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System as SystemAllocator};
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use failsafe::futures::CircuitBreaker as _;
use futures_util::future::join_all;
use vibezen_recovery::circuit::Stop;
use vibezen_recovery::config::WindowConfig;
use vibezen_recovery::manager::{AllStats, ExportStats};
use vibezen_recovery::prelude::*;
use vibezen_recovery::transition::TransitionReason;

use support::*;

// ---- allocation counting ----------------------------------------------------

/// Counts allocations while [`COUNTING`] is set; otherwise `System` as is.
struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

impl CountingAllocator {
    #[inline]
    fn note(&self) {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// SAFETY: every method passes its arguments unchanged to `System`, which
// upholds `GlobalAlloc`'s contract, and returns what `System` returned. The
// only addition is a relaxed load of a flag and, while counting, a relaxed
// add to a counter: neither allocates, unwinds, nor touches the memory
// being managed.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.note();
        // SAFETY: the caller's guarantees for `layout` are passed on as is.
        unsafe { SystemAllocator.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.note();
        // SAFETY: as for `alloc`.
        unsafe { SystemAllocator.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.note();
        // SAFETY: `ptr` came from this allocator, that is from `System`.
        unsafe { SystemAllocator.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`.
        unsafe { SystemAllocator.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Counts allocations from its creation (when `on`) until it is dropped.
struct Counting(bool);

impl Counting {
    fn start(on: bool) -> Counting {
        if on {
            COUNTING.store(true, Ordering::SeqCst);
        }
        Counting(on)
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        if self.0 {
            COUNTING.store(false, Ordering::SeqCst);
        }
    }
}

// ---- the benches --------------------------------------------------------------

/// Rounds timed per path (after one warm-up round).
const ROUNDS: usize = 9;
/// Calls each thread of a two-thread path makes before the timed batch.
const WARM_UP: u64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    OneThread,
    TwoThreads,
}

type Run = Box<dyn FnMut(u64, bool) -> Pin<Box<dyn Future<Output = Duration>>>>;

struct Bench {
    id: &'static str,
    label: &'static str,
    setup: Setup,
    /// The id of the row whose time is this row's "direct call".
    baseline: &'static str,
    /// Calls per thread in a timed batch.
    batch: u64,
    /// `run(calls, count_allocations)`: the time one thread took, on average,
    /// for `calls` calls.
    run: Run,
    /// Calls made so far through this path (all threads, warm-ups included).
    calls_made: u64,
    ns: Vec<f64>,
    allocs_per_call: f64,
}

impl Bench {
    fn threads(&self) -> u64 {
        match self.setup {
            Setup::OneThread => 1,
            Setup::TwoThreads => 2,
        }
    }

    fn median(&self) -> f64 {
        median(&self.ns)
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// A path that runs without a runtime: each batch on a plain thread of its
/// own, outside the actix System (whose tokio context would otherwise give
/// the tower breaker's async mutex a cooperative budget that a poll loop
/// never replenishes).
fn sync_bench(
    id: &'static str,
    label: &'static str,
    baseline: &'static str,
    batch: u64,
    mut call: impl FnMut() + Send + 'static,
) -> Bench {
    let run: Run = Box::new(move |calls, count| {
        let call = &mut call;
        let elapsed = std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let counting = Counting::start(count);
                    let started = Instant::now();
                    for _ in 0..calls {
                        call();
                    }
                    let elapsed = started.elapsed();
                    drop(counting);
                    elapsed
                })
                .join()
                .expect("bench thread")
        });
        Box::pin(std::future::ready(elapsed))
    });
    bench(id, label, Setup::OneThread, baseline, batch, run)
}

/// A path that awaits on the actix System's arbiter. `make` builds one
/// batch's future from `(calls, count_allocations)`.
fn async_bench<Fut>(
    id: &'static str,
    label: &'static str,
    batch: u64,
    mut make: impl FnMut(u64, bool) -> Fut + 'static,
) -> Bench
where
    Fut: Future<Output = Duration> + 'static,
{
    let run: Run = Box::new(move |calls, count| Box::pin(make(calls, count)));
    bench(id, label, Setup::OneThread, "direct", batch, run)
}

/// Times `calls` awaited calls of `$call`, counting allocations if `$count`.
macro_rules! timed {
    ($calls:expr, $count:expr, $call:expr) => {{
        let counting = Counting::start($count);
        let started = Instant::now();
        for _ in 0..$calls {
            let _ = black_box($call);
        }
        let elapsed = started.elapsed();
        drop(counting);
        elapsed
    }};
}

/// A path that two threads call at once; `make(i)` builds thread `i`'s call.
fn two_thread_bench<F>(
    id: &'static str,
    label: &'static str,
    batch: u64,
    make: impl Fn(usize) -> F + 'static,
) -> Bench
where
    F: FnMut() + Send,
{
    let run: Run = Box::new(move |calls, count| {
        let elapsed = run_two_threads([make(0), make(1)], calls, count);
        Box::pin(std::future::ready(elapsed))
    });
    bench(id, label, Setup::TwoThreads, "direct_2t", batch, run)
}

/// Runs `calls` calls on each of two threads started together; the mean of
/// the two threads' times. Allocations are counted (when `count`) only
/// between the barriers around the timed loops.
fn run_two_threads<F: FnMut() + Send>(workers: [F; 2], calls: u64, count: bool) -> Duration {
    let (ready, armed, done, off) = (
        Barrier::new(2),
        Barrier::new(2),
        Barrier::new(2),
        Barrier::new(2),
    );
    let times: Vec<Duration> = std::thread::scope(|scope| {
        let threads: Vec<_> = workers
            .into_iter()
            .enumerate()
            .map(|(index, mut call)| {
                let (ready, armed, done, off) = (&ready, &armed, &done, &off);
                scope.spawn(move || {
                    for _ in 0..WARM_UP {
                        call();
                    }
                    ready.wait();
                    if index == 0 && count {
                        COUNTING.store(true, Ordering::SeqCst);
                    }
                    armed.wait();
                    let started = Instant::now();
                    for _ in 0..calls {
                        call();
                    }
                    let elapsed = started.elapsed();
                    done.wait();
                    if index == 0 {
                        COUNTING.store(false, Ordering::SeqCst);
                    }
                    off.wait();
                    elapsed
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    times.iter().sum::<Duration>() / times.len() as u32
}

fn bench(
    id: &'static str,
    label: &'static str,
    setup: Setup,
    baseline: &'static str,
    batch: u64,
    run: Run,
) -> Bench {
    Bench {
        id,
        label,
        setup,
        baseline,
        batch,
        run,
        calls_made: 0,
        ns: Vec::new(),
        allocs_per_call: f64::NAN,
    }
}

// ---- circuits -------------------------------------------------------------------

fn start_here(name: &str, config: CircuitBreakerConfig) -> Addr<CircuitBreaker> {
    CircuitBreaker::new(name, config)
        .expect("valid circuit")
        .start()
}

fn start_on(arbiter: &Arbiter, name: &str, config: CircuitBreakerConfig) -> Addr<CircuitBreaker> {
    let name = name.to_owned();
    CircuitBreaker::start_in_arbiter(&arbiter.handle(), move |_| {
        CircuitBreaker::new(name, config).expect("valid circuit")
    })
}

async fn open(circuit: &Addr<CircuitBreaker>) {
    let _ = circuit.call(maybe_fail(true)).await;
    match circuit.call(ok()).await {
        Err(CallError::Open(_)) => {}
        other => panic!("circuit should be open: {other:?}"),
    }
}

// ---- the table ---------------------------------------------------------------------

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|model| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let rustc = std::process::Command::new(std::env::var("RUSTC").unwrap_or("rustc".into()))
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| "rustc (unknown version)".to_owned());
    let profile = if cfg!(debug_assertions) {
        "DEBUG build: numbers are meaningless, use --release"
    } else {
        "release build"
    };
    format!("{cores} cores ({cpu}), {rustc}, {profile}")
}

fn find<'a>(benches: &'a [Bench], id: &str) -> &'a Bench {
    benches
        .iter()
        .find(|bench| bench.id == id)
        .unwrap_or_else(|| panic!("no bench {id}"))
}

fn ratio(value: f64, to: f64) -> String {
    let r = value / to;
    if r >= 10.0 {
        format!("{r:.0}x")
    } else if r >= 1.0 {
        format!("{r:.1}x")
    } else if r >= 0.1 {
        format!("{r:.2}x")
    } else {
        format!("1/{:.0}", to / value)
    }
}

fn ns(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn print_table(benches: &[Bench]) {
    println!(
        "{:<44} {:>9} {:>14} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "path", "ns/call", "rounds min-max", "overhead", "allocs", "/failsf", "/tower", "/send"
    );
    let send = find(benches, "send_same").median();
    let mut setup = None;
    for bench in benches {
        if setup != Some(bench.setup) {
            setup = Some(bench.setup);
            println!(
                "{}",
                match bench.setup {
                    Setup::OneThread => "-- one thread",
                    Setup::TwoThreads => "-- two threads at once (ns per call on each thread)",
                }
            );
        }
        let (failsafe, tower) = match bench.setup {
            Setup::OneThread => ("failsafe_default", "tower"),
            Setup::TwoThreads => ("failsafe_2t", "tower_2t"),
        };
        let value = bench.median();
        let (min, max) = bench
            .ns
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let overhead = if bench.baseline == bench.id {
            "-".to_owned()
        } else {
            ns(value - find(benches, bench.baseline).median())
        };
        println!(
            "{:<44} {:>9} {:>14} {:>9} {:>8.2} {:>8} {:>8} {:>8}",
            bench.label,
            ns(value),
            format!("{}-{}", ns(min), ns(max)),
            overhead,
            bench.allocs_per_call,
            ratio(value, find(benches, failsafe).median()),
            ratio(value, find(benches, tower).median()),
            ratio(value, send),
        );
    }
}

// ---- main ----------------------------------------------------------------------------

fn main() {
    // The scale check runs in a child process of its own, so that its
    // resident-memory deltas start from a clean heap.
    if std::env::args().any(|arg| arg == SCALE_CHILD) {
        System::new().block_on(scale_child());
        return;
    }
    println!("vibezen-recovery bench_report");
    println!("machine: {}", machine());
    let total = Instant::now();
    let system = System::new();
    system.block_on(report());
    println!("\nreport took {:.1} s", total.elapsed().as_secs_f64());
}

async fn report() {
    let other = Arbiter::new();

    // Our circuits, one per path so that their counts can be checked.
    let pc_same = start_here("pc_same", closed_config());
    let pc_across = start_on(&other, "pc_across", closed_config());
    let permit_circuit = start_here("permit", closed_config());
    let ext_circuit = start_here("ext", closed_config());
    let handle_closed = start_here("handle_closed", closed_config());
    let handle_1pct = start_here("handle_1pct", never_trips_config());
    let handle_2t = start_here("handle_2t", closed_config());
    let handle_2c = [
        start_here("handle_2c_a", closed_config()),
        start_here("handle_2c_b", closed_config()),
    ];
    let opened = start_here("opened", opens_on_first_failure());
    open(&opened).await;
    let echo_same = Echo.start();
    let echo_across = Echo::start_in_arbiter(&other.handle(), |_| Echo);

    let handle = |addr: &Addr<CircuitBreaker>| addr.send(GetHandle);
    let h_closed = handle(&handle_closed).await.unwrap();
    let h_1pct = handle(&handle_1pct).await.unwrap();
    let h_2t = handle(&handle_2t).await.unwrap();
    let h_2c = [
        handle(&handle_2c[0]).await.unwrap(),
        handle(&handle_2c[1]).await.unwrap(),
    ];
    let h_open = handle(&opened).await.unwrap();
    assert_eq!(h_open.state(), CircuitState::Open);

    // The manager, on this arbiter: its circuits run here too.
    let manager = CircuitBreakerManager::default().start();
    let mgr_call_circuit = manager
        .send(GetBreaker::new("mgr_call"))
        .await
        .unwrap()
        .unwrap();
    let mgr_opened = manager
        .send(GetBreaker::with_config(
            "mgr_open",
            opens_on_first_failure(),
        ))
        .await
        .unwrap()
        .unwrap();
    open(&mgr_opened).await;
    // Created by `GetCircuitHandle` itself.
    let h_mgr: CircuitHandle = manager
        .send(GetCircuitHandle::new("mgr_handle"))
        .await
        .unwrap()
        .unwrap();
    let mgr_handle_circuit = manager
        .send(GetBreaker::new("mgr_handle"))
        .await
        .unwrap()
        .unwrap();
    // Named calls through the registry; the first one creates the circuit.
    let registry = manager.send(GetRegistry).await.unwrap();
    registry.call("mgr_registry", ok()).await.unwrap();
    // The integration's protected call: the registry, plus its panic shield
    // and fallback.
    let vibezen = VibezenIntegration::new(vibezen_recovery::integration::WorkflowConfig {
        default_config: closed_config(),
        ..Default::default()
    })
    .unwrap();
    vibezen
        .protected_call("integration", ok(), None)
        .await
        .unwrap();

    let fs_default = failsafe_default();
    let fs_consecutive = failsafe_consecutive(5, Duration::from_secs(30));
    let fs_open = failsafe_open();
    let tw = tower_count_100();
    let tw_open = tower_open();

    let mut benches = vec![
        // Direct calls: the baselines.
        sync_bench(
            "direct",
            "direct call (baseline)",
            "direct",
            2_000_000,
            || {
                let _ = black_box(direct());
            },
        ),
        {
            let mut one_percent = OnePercent::default();
            sync_bench(
                "direct_1pct",
                "direct call, 1% Err (baseline)",
                "direct_1pct",
                2_000_000,
                move || {
                    let _ = black_box(block_on(black_box(maybe_fail(one_percent.next()))));
                },
            )
        },
        // The breakers we compare with.
        {
            let breaker = fs_default.clone();
            sync_bench(
                "failsafe_default",
                "failsafe-rs, default config",
                "direct",
                100_000,
                move || {
                    let _ = black_box(failsafe_call(&breaker));
                },
            )
        },
        {
            let breaker = fs_consecutive.clone();
            sync_bench(
                "failsafe_consecutive",
                "failsafe-rs, 5 consecutive failures",
                "direct",
                100_000,
                move || {
                    let _ = black_box(failsafe_call(&breaker));
                },
            )
        },
        {
            let breaker = failsafe_default();
            let mut one_percent = OnePercent::default();
            sync_bench(
                "failsafe_1pct",
                "failsafe-rs, default config, 1% failures",
                "direct_1pct",
                100_000,
                move || {
                    let _ = black_box(block_on(
                        breaker.call(black_box(maybe_fail(one_percent.next()))),
                    ));
                },
            )
        },
        {
            let mut service = tw.clone();
            sync_bench(
                "tower",
                "tower-resilience-cb, count window 100",
                "direct",
                50_000,
                move || {
                    let _ = black_box(block_on(tower_call(&mut service, false)));
                },
            )
        },
        // Actix round trips.
        {
            let echo = echo_same.clone();
            async_bench(
                "send_same",
                "actix send round trip, same arbiter",
                20_000,
                move |n, c| {
                    let echo = echo.clone();
                    async move { timed!(n, c, echo.send(Ping).await.unwrap()) }
                },
            )
        },
        {
            let echo = echo_across.clone();
            async_bench(
                "send_across",
                "actix send round trip, across arbiters",
                2_000,
                move |n, c| {
                    let echo = echo.clone();
                    async move { timed!(n, c, echo.send(Ping).await.unwrap()) }
                },
            )
        },
        // Our message paths.
        {
            let circuit = pc_same.clone();
            async_bench(
                "pc_same",
                "ProtectedCall, same arbiter",
                20_000,
                move |n, c| {
                    let circuit = circuit.clone();
                    async move {
                        timed!(n, c, {
                            let r = circuit.send(ProtectedCall::new(black_box(ok()))).await;
                            debug_assert!(matches!(r, Ok(Ok(()))));
                            r
                        })
                    }
                },
            )
        },
        {
            let circuit = pc_across.clone();
            async_bench(
                "pc_across",
                "ProtectedCall, across arbiters",
                2_000,
                move |n, c| {
                    let circuit = circuit.clone();
                    async move {
                        timed!(
                            n,
                            c,
                            circuit.send(ProtectedCall::new(black_box(ok()))).await
                        )
                    }
                },
            )
        },
        {
            let circuit = permit_circuit.clone();
            async_bench(
                "permit",
                "permit path: Acquire, then success()",
                20_000,
                move |n, c| {
                    let circuit = circuit.clone();
                    async move {
                        timed!(n, c, {
                            let permit = circuit.send(Acquire).await.unwrap().unwrap();
                            let r = block_on(black_box(ok()));
                            permit.record(&r);
                            r
                        })
                    }
                },
            )
        },
        {
            let circuit = ext_circuit.clone();
            async_bench(
                "ext",
                "addr.call(fut) (CircuitBreakerExt)",
                20_000,
                move |n, c| {
                    let circuit = circuit.clone();
                    async move { timed!(n, c, circuit.call(black_box(ok())).await) }
                },
            )
        },
        {
            let manager = manager.clone();
            async_bench(
                "mgr_call",
                "manager Call, same arbiter",
                20_000,
                move |n, c| {
                    let manager = manager.clone();
                    async move {
                        timed!(n, c, {
                            let r = manager.send(Call::new("mgr_call", black_box(ok()))).await;
                            debug_assert!(matches!(r, Ok(Ok(()))));
                            r
                        })
                    }
                },
            )
        },
        // The fast path.
        {
            let h = h_closed.clone();
            sync_bench(
                "handle",
                "handle.call, CLOSED, all successes",
                "direct",
                500_000,
                move || {
                    let _ = black_box(block_on(h.call(black_box(ok()))));
                },
            )
        },
        {
            let h = h_1pct.clone();
            let mut one_percent = OnePercent::default();
            sync_bench(
                "handle_1pct",
                "handle.call, CLOSED, 1% failures",
                "direct_1pct",
                500_000,
                move || {
                    let _ = black_box(block_on(h.call(black_box(maybe_fail(one_percent.next())))));
                },
            )
        },
        {
            let h = h_mgr.clone();
            sync_bench(
                "handle_mgr",
                "handle.call via GetCircuitHandle, CLOSED",
                "direct",
                500_000,
                move || {
                    let _ = black_box(block_on(h.call(black_box(ok()))));
                },
            )
        },
        {
            let registry = registry.clone();
            sync_bench(
                "registry",
                "registry.call(name), CLOSED",
                "direct",
                500_000,
                move || {
                    let _ = black_box(block_on(
                        registry.call(black_box("mgr_registry"), black_box(ok())),
                    ));
                },
            )
        },
        {
            let vibezen = vibezen.clone();
            sync_bench(
                "integration",
                "vibezen.protected_call(name), CLOSED",
                "direct",
                500_000,
                move || {
                    let _ = black_box(block_on(vibezen.protected_call(
                        black_box("integration"),
                        black_box(ok()),
                        None,
                    )));
                },
            )
        },
        // OPEN: rejection through each path.
        {
            let breaker = fs_open.clone();
            sync_bench(
                "failsafe_open",
                "failsafe-rs, OPEN rejection",
                "direct",
                200_000,
                move || {
                    let _ = black_box(failsafe_call(&breaker));
                },
            )
        },
        {
            let mut service = tw_open.clone();
            sync_bench(
                "tower_open",
                "tower-resilience-cb, OPEN rejection",
                "direct",
                50_000,
                move || {
                    let _ = black_box(block_on(tower_call(&mut service, false)));
                },
            )
        },
        {
            let circuit = opened.clone();
            async_bench(
                "pc_open",
                "ProtectedCall, OPEN rejection",
                20_000,
                move |n, c| {
                    let circuit = circuit.clone();
                    async move {
                        timed!(
                            n,
                            c,
                            circuit.send(ProtectedCall::new(black_box(ok()))).await
                        )
                    }
                },
            )
        },
        {
            let circuit = opened.clone();
            async_bench(
                "acquire_open",
                "Acquire, OPEN rejection",
                20_000,
                move |n, c| {
                    let circuit = circuit.clone();
                    async move { timed!(n, c, circuit.send(Acquire).await) }
                },
            )
        },
        {
            let manager = manager.clone();
            async_bench(
                "mgr_open",
                "manager Call, OPEN rejection",
                20_000,
                move |n, c| {
                    let manager = manager.clone();
                    async move {
                        timed!(
                            n,
                            c,
                            manager.send(Call::new("mgr_open", black_box(ok()))).await
                        )
                    }
                },
            )
        },
        {
            let h = h_open.clone();
            sync_bench(
                "handle_open",
                "handle.call, OPEN rejection",
                "direct",
                1_000_000,
                move || {
                    let _ = black_box(block_on(h.call(black_box(ok()))));
                },
            )
        },
        // Two threads at once.
        two_thread_bench("direct_2t", "direct call (baseline)", 2_000_000, |_| {
            || {
                let _ = black_box(direct());
            }
        }),
        {
            let breaker = fs_default.clone();
            two_thread_bench(
                "failsafe_2t",
                "failsafe-rs, one breaker",
                100_000,
                move |_| {
                    let breaker = breaker.clone();
                    move || {
                        let _ = black_box(failsafe_call(&breaker));
                    }
                },
            )
        },
        {
            let service = tower_count_100();
            two_thread_bench(
                "tower_2t",
                "tower-resilience-cb, one breaker",
                20_000,
                move |_| {
                    let mut service = service.clone();
                    move || {
                        let _ = black_box(block_on(tower_call(&mut service, false)));
                    }
                },
            )
        },
        {
            let h = h_2t.clone();
            two_thread_bench(
                "handle_2t",
                "handle.call, one circuit",
                500_000,
                move |_| {
                    let h = h.clone();
                    move || {
                        let _ = black_box(block_on(h.call(black_box(ok()))));
                    }
                },
            )
        },
        {
            let hs = h_2c.clone();
            two_thread_bench(
                "handle_2c",
                "handle.call, two circuits",
                500_000,
                move |i| {
                    let h = hs[i].clone();
                    move || {
                        let _ = black_box(block_on(h.call(black_box(ok()))));
                    }
                },
            )
        },
        {
            let h = h_open.clone();
            two_thread_bench(
                "handle_open_2t",
                "handle.call, OPEN rejection, one circuit",
                1_000_000,
                move |_| {
                    let h = h.clone();
                    move || {
                        let _ = black_box(block_on(h.call(black_box(ok()))));
                    }
                },
            )
        },
    ];

    // Timing: one warm-up round, then ROUNDS rounds visiting every path.
    let timing = Instant::now();
    for round in 0..=ROUNDS {
        for bench in benches.iter_mut() {
            let elapsed = (bench.run)(bench.batch, false).await;
            bench.calls_made += bench.threads() * (bench.batch + warm_up(bench));
            if round > 0 {
                bench
                    .ns
                    .push(elapsed.as_secs_f64() * 1e9 / bench.batch as f64);
            }
        }
    }
    // Allocations: one more batch per path, counted.
    for bench in benches.iter_mut() {
        let calls = bench.batch.min(10_000);
        ALLOCATIONS.store(0, Ordering::SeqCst);
        (bench.run)(calls, true).await;
        let counted = ALLOCATIONS.load(Ordering::SeqCst);
        bench.calls_made += bench.threads() * (calls + warm_up(bench));
        bench.allocs_per_call = counted as f64 / (calls * bench.threads()) as f64;
    }
    let timing = timing.elapsed();

    println!(
        "\n{ROUNDS} rounds (after a warm-up round), median ns per call; took {:.1} s\n",
        timing.as_secs_f64()
    );
    print_table(&benches);
    println!(
        "\noverhead: ns/call minus the direct call in the same setup (the 1% rows: minus the \
         direct call with 1% Err).\n/failsf, /tower: ratio to failsafe-rs (default config) and \
         to tower-resilience-cb in the same setup (one thread or two);\n/send: ratio to a bare \
         actix send round trip on the same arbiter. 1/N: N times faster."
    );

    // Did the fast path count what it was given, and did anything trip?
    println!("\ncounter check (fast-path circuits; Stats after the run):");
    let mut counter_checks = Vec::new();
    for (id, circuit, expected_failures) in [
        ("handle", &handle_closed, 0.0),
        ("handle_1pct", &handle_1pct, 0.01),
        ("handle_2t", &handle_2t, 0.0),
        ("handle_mgr", &mgr_handle_circuit, 0.0),
    ] {
        let made = find(&benches, id).calls_made;
        let stats = circuit.send(Stats).await.unwrap();
        let t = stats.totals;
        let ok = t.calls == made
            && t[Outcome::Success] + t[Outcome::Failure] == made
            && stats.state == CircuitState::Closed
            && (t[Outcome::Failure] as f64 - made as f64 * expected_failures).abs() <= 2.0;
        counter_checks.push(ok);
        println!(
            "  {id:<12} calls made {made:>10}, counted: calls {:>10} successes {:>10} failures {:>7} \
             rejections {:>3}; state {:?}, window {}/{}: {}",
            t.calls,
            t[Outcome::Success],
            t[Outcome::Failure],
            t.rejections,
            stats.state,
            stats.window_failures,
            stats.window_calls,
            if ok { "ok" } else { "MISMATCH" }
        );
    }
    let made_2c: u64 = find(&benches, "handle_2c").calls_made;
    let mut counted_2c = 0;
    for circuit in &handle_2c {
        counted_2c += circuit.send(Stats).await.unwrap().totals.calls;
    }
    println!(
        "  handle_2c    calls made {made_2c:>10}, counted over both circuits {counted_2c:>10}: {}",
        if made_2c == counted_2c {
            "ok"
        } else {
            "MISMATCH"
        }
    );
    counter_checks.push(made_2c == counted_2c);
    let open_stats = opened.send(Stats).await.unwrap();
    let rejections_made = ["pc_open", "acquire_open", "handle_open", "handle_open_2t"]
        .iter()
        .map(|id| find(&benches, id).calls_made)
        .sum::<u64>()
        + 1; // `open` checked one rejection
    println!(
        "  opened       rejections made {rejections_made:>10}, counted {:>10}: {}",
        open_stats.totals.rejections,
        if open_stats.totals.rejections == rejections_made {
            "ok"
        } else {
            "MISMATCH"
        }
    );
    counter_checks.push(open_stats.totals.rejections == rejections_made);
    let mgr_calls_made = find(&benches, "mgr_call").calls_made;
    let mgr_calls = mgr_call_circuit.send(Stats).await.unwrap().totals;
    let mgr_calls_ok =
        mgr_calls.calls == mgr_calls_made && mgr_calls[Outcome::Success] == mgr_calls_made;
    println!(
        "  mgr_call     calls made {mgr_calls_made:>10}, counted: calls {:>10} successes {:>10}: {}",
        mgr_calls.calls,
        mgr_calls[Outcome::Success],
        if mgr_calls_ok { "ok" } else { "MISMATCH" }
    );
    counter_checks.push(mgr_calls_ok);
    let mgr_rejections_made = find(&benches, "mgr_open").calls_made + 1;
    let mgr_rejections = mgr_opened.send(Stats).await.unwrap().totals.rejections;
    println!(
        "  mgr_open     rejections made {mgr_rejections_made:>10}, counted {mgr_rejections:>10}: {}",
        if mgr_rejections == mgr_rejections_made {
            "ok"
        } else {
            "MISMATCH"
        }
    );
    counter_checks.push(mgr_rejections == mgr_rejections_made);

    // The rarer checks.
    println!("\nflood: one million calls or more at an OPEN circuit whose timeout is 200 ms");
    let flood_handles = flood_through_handles().await;
    let flood_messages = flood_through_messages().await;
    println!("\ntrip promptness: two threads hammer one circuit; every call starts failing");
    let trips = [trip_promptness(1).await, trip_promptness(5).await];
    println!(
        "\nscale: 10,000 circuits in one CircuitBreakerManager (GetBreaker, then GetCircuitHandle \
         and one call each), in a child process"
    );
    let scale = scale();

    // The targets of issue 4.
    let m = |id| find(&benches, id).median();
    let a = |id| find(&benches, id).allocs_per_call;
    let overhead = m("handle") - m("direct");
    let failsafe_overhead = m("failsafe_default") - m("direct");
    let targets: Vec<(String, String, bool)> = vec![
        (
            "handle, CLOSED: overhead <= 15 ns".into(),
            format!("{overhead:.1} ns"),
            overhead <= 15.0,
        ),
        (
            "handle, CLOSED: overhead <= 1/13 of failsafe's".into(),
            format!(
                "{overhead:.1} vs {failsafe_overhead:.1} ns (1/{:.1})",
                failsafe_overhead / overhead
            ),
            overhead * 13.0 <= failsafe_overhead,
        ),
        (
            "handle, CLOSED: 0 allocations (all successes, 1% failures)".into(),
            format!("{:.3}, {:.3} per call", a("handle"), a("handle_1pct")),
            a("handle") == 0.0 && a("handle_1pct") == 0.0,
        ),
        (
            "two threads, one circuit: <= 1/25 of failsafe, two threads".into(),
            format!(
                "{:.1} vs {:.0} ns (1/{:.0})",
                m("handle_2t"),
                m("failsafe_2t"),
                m("failsafe_2t") / m("handle_2t")
            ),
            m("handle_2t") * 25.0 <= m("failsafe_2t"),
        ),
        (
            "two threads, one circuit: within 20% of two circuits".into(),
            format!(
                "{:.1} vs {:.1} ns ({:+.0}%)",
                m("handle_2t"),
                m("handle_2c"),
                (m("handle_2t") / m("handle_2c") - 1.0) * 100.0
            ),
            m("handle_2t") <= 1.2 * m("handle_2c"),
        ),
        (
            "handle, OPEN rejection: <= 1/10 of failsafe's".into(),
            format!(
                "{:.1} vs {:.1} ns (1/{:.1})",
                m("handle_open"),
                m("failsafe_open"),
                m("failsafe_open") / m("handle_open")
            ),
            m("handle_open") * 10.0 <= m("failsafe_open"),
        ),
        (
            "handle, OPEN rejection: <= 0.5x a CLOSED handle call".into(),
            format!("{:.2}x", m("handle_open") / m("handle")),
            m("handle_open") <= 0.5 * m("handle"),
        ),
        (
            "registry named call, CLOSED: <= 3x a handle call".into(),
            format!("{:.2}x", m("registry") / m("handle")),
            m("registry") <= 3.0 * m("handle"),
        ),
        (
            "registry named call, CLOSED: <= 1/3 of failsafe's".into(),
            format!("1/{:.1}", m("failsafe_default") / m("registry")),
            m("registry") * 3.0 <= m("failsafe_default"),
        ),
        (
            "registry named call: allocates only on a thread's first call".into(),
            format!(
                "{:.1} in 10,000 calls (each batch runs on a new thread)",
                a("registry") * 10_000.0
            ),
            a("registry") * 10_000.0 <= 4.0,
        ),
        (
            "handle, OPEN rejection: 0 allocations".into(),
            format!("{:.3} per call", a("handle_open")),
            a("handle_open") == 0.0,
        ),
        (
            "ProtectedCall, same arbiter: <= 1.3x bare send".into(),
            format!("{:.2}x", m("pc_same") / m("send_same")),
            m("pc_same") <= 1.3 * m("send_same"),
        ),
        (
            "permit path: <= 1.3x bare send".into(),
            format!("{:.2}x", m("permit") / m("send_same")),
            m("permit") <= 1.3 * m("send_same"),
        ),
        (
            "flood through handles delays OPEN -> HALF_OPEN < 10 ms".into(),
            flood_handles.summary(),
            flood_handles.delay_ms < 10.0,
        ),
        (
            "flood of ProtectedCall messages delays it < 10 ms".into(),
            flood_messages.summary(),
            flood_messages.delay_ms < 10.0,
        ),
        (
            "trip promptness: no call admitted after the trip (1)".into(),
            trips[0].summary(),
            trips[0].pass(),
        ),
        (
            "trip promptness: no call admitted after the trip (5)".into(),
            trips[1].summary(),
            trips[1].pass(),
        ),
        (
            "10,000 circuits: <= 8 KiB resident per circuit".into(),
            format!(
                "{:.2} KiB (circuit {:.2} + handle {:.2})",
                scale.kib_total(),
                scale.kib_circuit,
                scale.kib_handle
            ),
            scale.kib_total() <= 8.0,
        ),
        (
            "10,000 circuits: GetHealth over all <= 100 ms".into(),
            format!(
                "{:.1} ms (median of {SCALE_RUNS}; AllStats {:.1}, ExportStats {:.1})",
                scale.health_ms, scale.all_stats_ms, scale.export_ms
            ),
            scale.health_ms <= 100.0,
        ),
        (
            "fast-path counters match the calls made".into(),
            format!(
                "{} of {} checks",
                counter_checks.iter().filter(|ok| **ok).count(),
                counter_checks.len()
            ),
            counter_checks.iter().all(|ok| *ok),
        ),
    ];
    println!("\ntargets (issues 4 and 8)");
    for (target, measured, pass) in &targets {
        println!(
            "  {:<4} {target:<62} {measured}",
            if *pass { "PASS" } else { "MISS" }
        );
    }
    println!(
        "\nno target: manager Call {:.2}x a bare send ({:.2}x a ProtectedCall); a handle from \
         GetCircuitHandle {:.1} ns vs {:.1} ns from GetHandle",
        m("mgr_call") / m("send_same"),
        m("mgr_call") / m("pc_same"),
        m("handle_mgr"),
        m("handle"),
    );
    other.stop();
}

fn warm_up(bench: &Bench) -> u64 {
    match bench.setup {
        Setup::OneThread => 0,
        Setup::TwoThreads => WARM_UP,
    }
}

// ---- flood ---------------------------------------------------------------------------

/// Timestamps each state change it hears of.
struct Watcher {
    seen: Arc<Mutex<Vec<(StateChanged, Instant)>>>,
    half_open: Arc<AtomicBool>,
}

impl Actor for Watcher {
    type Context = Context<Self>;
}

impl Handler<StateChanged> for Watcher {
    type Result = ();

    fn handle(&mut self, event: StateChanged, _: &mut Context<Self>) {
        if event.to == CircuitState::HalfOpen {
            self.half_open.store(true, Ordering::SeqCst);
        }
        self.seen.lock().unwrap().push((event, Instant::now()));
    }
}

struct Flood {
    calls: u64,
    /// How late OPEN -> HALF_OPEN happened, by the circuit's own timestamps.
    delay_ms: f64,
    /// How late the subscriber heard of it, by its own clock.
    heard_ms: f64,
}

impl Flood {
    fn summary(&self) -> String {
        format!(
            "{:.2} ms late ({} calls; heard {:.2} ms late)",
            self.delay_ms, self.calls, self.heard_ms
        )
    }
}

const FLOOD_TIMEOUT: Duration = Duration::from_millis(200);

/// A circuit on its own arbiter, watched from a third one, opened now.
async fn flood_circuit(
    name: &str,
) -> (
    Arbiter,
    Arbiter,
    Addr<CircuitBreaker>,
    Arc<Mutex<Vec<(StateChanged, Instant)>>>,
    Arc<AtomicBool>,
) {
    let (home, watching) = (Arbiter::new(), Arbiter::new());
    let config = CircuitBreakerConfig {
        failure_threshold: 1,
        timeout: FLOOD_TIMEOUT,
        ..CircuitBreakerConfig::default()
    };
    let circuit = start_on(&home, name, config);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let half_open = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (seen, half_open) = (Arc::clone(&seen), Arc::clone(&half_open));
        Watcher::start_in_arbiter(&watching.handle(), move |_| Watcher { seen, half_open })
    };
    circuit.send(Subscribe(watcher.recipient())).await.unwrap();
    open(&circuit).await;
    (home, watching, circuit, seen, half_open)
}

/// How late OPEN -> HALF_OPEN came, by the events' timestamps and by when
/// the watcher heard them.
async fn lateness(
    seen: &Mutex<Vec<(StateChanged, Instant)>>,
    half_open: &AtomicBool,
) -> (f64, f64) {
    let waited = Instant::now();
    while !half_open.load(Ordering::SeqCst) && waited.elapsed() < Duration::from_secs(10) {
        actix::clock::sleep(Duration::from_millis(5)).await;
    }
    let seen = seen.lock().unwrap();
    let find = |to| seen.iter().find(|(event, _)| event.to == to);
    let (Some((opened, heard_open)), Some((half, heard_half))) =
        (find(CircuitState::Open), find(CircuitState::HalfOpen))
    else {
        println!("  the circuit never turned HALF_OPEN within 10 s");
        return (f64::INFINITY, f64::INFINITY);
    };
    let timeout_ms = FLOOD_TIMEOUT.as_secs_f64() * 1e3;
    let by_events = (half.at - opened.at).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e3;
    let heard = heard_half.duration_since(*heard_open).as_secs_f64() * 1e3;
    (by_events - timeout_ms, heard - timeout_ms)
}

/// Two threads call an OPEN circuit through handles, nonstop, until it
/// turns HALF_OPEN: both cores busy with rejections. Each thread runs its
/// own current-thread tokio runtime, since a HALF_OPEN trial through a
/// handle sets a timer for its deadline.
async fn flood_through_handles() -> Flood {
    let (home, watching, circuit, seen, half_open) = flood_circuit("flood_handles").await;
    let handle = circuit.send(GetHandle).await.unwrap();
    let calls = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .expect("a tokio runtime");
                let made = runtime.block_on(async {
                    let started = Instant::now();
                    let mut made = 0u64;
                    while !half_open.load(Ordering::Relaxed)
                        && started.elapsed() < Duration::from_secs(5)
                    {
                        for _ in 0..1_000 {
                            let _ = black_box(handle.call(black_box(ok())).await);
                        }
                        made += 1_000;
                    }
                    made
                });
                calls.fetch_add(made, Ordering::Relaxed);
            });
        }
    });
    let (delay_ms, heard_ms) = lateness(&seen, &half_open).await;
    let flood = Flood {
        calls: calls.into_inner(),
        delay_ms,
        heard_ms,
    };
    println!(
        "  through handles (2 threads, nonstop):        {}",
        flood.summary()
    );
    let _ = circuit.send(Stop).await;
    home.stop();
    watching.stop();
    flood
}

/// One million `ProtectedCall`s sent with `do_send` from another thread,
/// starting 100 ms before the OPEN timeout ends.
async fn flood_through_messages() -> Flood {
    const CALLS: u64 = 1_000_000;
    let (home, watching, circuit, seen, half_open) = flood_circuit("flood_messages").await;
    actix::clock::sleep(FLOOD_TIMEOUT - Duration::from_millis(100)).await;
    let sender = {
        let circuit = circuit.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            for _ in 0..CALLS {
                circuit.do_send(ProtectedCall::new(ok()));
            }
            started.elapsed()
        })
    };
    let (delay_ms, heard_ms) = lateness(&seen, &half_open).await;
    let sent_in = sender.join().unwrap();
    // Wait for the flood to drain before moving on.
    let drained = Instant::now();
    let _ = circuit.send(Stats).await;
    let flood = Flood {
        calls: CALLS,
        delay_ms,
        heard_ms,
    };
    println!(
        "  ProtectedCall via do_send (1 thread):        {} (sent in {:.0} ms, drained {:.0} ms later)",
        flood.summary(),
        sent_in.as_secs_f64() * 1e3,
        drained.elapsed().as_secs_f64() * 1e3
    );
    let _ = circuit.send(Stop).await;
    home.stop();
    watching.stop();
    flood
}

// ---- trip promptness -----------------------------------------------------------------

struct Trips {
    threshold: u32,
    /// Per trial: failing calls admitted beyond `failure_threshold`.
    excess: Vec<u64>,
    /// Per trial: calls whose work ran after the handle already read OPEN
    /// (the trip marked), i.e. admitted at about the moment of the trip.
    late: Vec<u64>,
    /// Trials whose `Stats` counted a different number of failures than
    /// the work returned.
    miscounted: usize,
}

impl Trips {
    fn worst_excess(&self) -> u64 {
        self.excess.iter().copied().max().unwrap_or(0)
    }

    fn worst_late(&self) -> u64 {
        self.late.iter().copied().max().unwrap_or(0)
    }

    /// What a correct fast path allows with two threads: the other thread's
    /// one call admitted just before the trip; with a threshold above 1, also
    /// one more run of failures if a success admitted before the flip is
    /// recorded after the first failure and ends the run.
    fn allowed_excess(&self) -> u64 {
        if self.threshold == 1 { 1 } else { 2 }
    }

    fn pass(&self) -> bool {
        self.worst_excess() <= self.allowed_excess()
            && self.worst_late() <= 1
            && self.miscounted == 0
    }

    fn summary(&self) -> String {
        format!(
            "threshold {}: worst {} beyond it (allowed {}), {} ran after the trip (allowed 1), {} trials",
            self.threshold,
            self.worst_excess(),
            self.allowed_excess(),
            self.worst_late(),
            self.excess.len()
        )
    }
}

/// Two threads call one circuit through handles, nonstop; at some call every
/// call starts failing. Counts the failing calls that got through.
async fn trip_promptness(threshold: u32) -> Trips {
    const TRIALS: usize = 25;
    let home = Arbiter::new();
    let (mut excess, mut late) = (Vec::new(), Vec::new());
    let (mut consecutive, mut miscounted) = (0, 0);
    for trial in 0..TRIALS {
        let config = CircuitBreakerConfig {
            failure_threshold: threshold,
            failure_rate_threshold: 1.0,
            window: WindowConfig::Count { size: 100 },
            timeout: Duration::from_secs(3600),
            ..CircuitBreakerConfig::default()
        };
        let circuit = start_on(&home, &format!("trip_{threshold}_{trial}"), config);
        let handle: CircuitHandle = circuit.send(GetHandle).await.unwrap();
        let failing = AtomicBool::new(false);
        let failed = AtomicU64::new(0);
        let ran_late = AtomicU64::new(0);
        let flip_at = 50_000 + 7_919 * trial as u64;
        std::thread::scope(|scope| {
            for thread in 0..2 {
                let (handle, failing, failed, ran_late) = (&handle, &failing, &failed, &ran_late);
                scope.spawn(move || {
                    let started = Instant::now();
                    let (mut calls, mut rejected) = (0u64, 0u64);
                    // Stop after 100,000 rejections, or 5 s.
                    while rejected < 100_000 && started.elapsed() < Duration::from_secs(5) {
                        for _ in 0..100 {
                            calls += 1;
                            if thread == 0 && calls == flip_at {
                                failing.store(true, Ordering::SeqCst);
                            }
                            let work = async {
                                if handle.state() != CircuitState::Closed {
                                    ran_late.fetch_add(1, Ordering::SeqCst);
                                }
                                if failing.load(Ordering::SeqCst) {
                                    failed.fetch_add(1, Ordering::SeqCst);
                                    Err(())
                                } else {
                                    Ok(())
                                }
                            };
                            if let Err(CallError::Open(_)) = block_on(handle.call(work)) {
                                rejected += 1;
                            }
                        }
                    }
                });
            }
        });
        let stats = circuit.send(Stats).await.unwrap();
        if let Some(TransitionReason::ConsecutiveFailures { .. }) =
            stats.state_changes.first().map(|change| &change.reason)
        {
            consecutive += 1;
        }
        let failed = failed.into_inner();
        if stats.totals[Outcome::Failure] != failed {
            miscounted += 1;
        }
        excess.push(failed.saturating_sub(u64::from(threshold)));
        late.push(ran_late.into_inner());
        let _ = circuit.send(Stop).await;
    }
    home.stop();
    println!(
        "  failure_threshold {threshold}, {TRIALS} trials: opened by consecutive failures in {consecutive}, \
         failures miscounted by Stats in {miscounted}"
    );
    println!("    failing calls admitted beyond the threshold, per trial: {excess:?}");
    println!("    calls whose work ran after the handle read OPEN:        {late:?}");
    Trips {
        threshold,
        excess,
        late,
        miscounted,
    }
}

// ---- scale ------------------------------------------------------------------------------

/// The argument that makes the report run only the scale check.
const SCALE_CHILD: &str = "--scale-child";
/// Circuits in the scale check.
const CIRCUITS: usize = 10_000;
/// Runs of each report over all circuits; the median counts.
const SCALE_RUNS: usize = 7;

struct Scale {
    /// Resident KiB per circuit created with `GetBreaker` (the actor, its
    /// mailbox and state, the manager's entry).
    kib_circuit: f64,
    /// Resident KiB per circuit added by `GetCircuitHandle` and one call
    /// through the handle (the handle and the fast-path counters).
    kib_handle: f64,
    health_ms: f64,
    all_stats_ms: f64,
    export_ms: f64,
}

impl Scale {
    fn kib_total(&self) -> f64 {
        self.kib_circuit + self.kib_handle
    }
}

fn resident_kib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(f64::NAN)
}

/// Runs the scale check in a child process (this program, with
/// [`SCALE_CHILD`]), prints what it printed and reads its results.
fn scale() -> Scale {
    let failed = Scale {
        kib_circuit: f64::NAN,
        kib_handle: f64::NAN,
        health_ms: f64::NAN,
        all_stats_ms: f64::NAN,
        export_ms: f64::NAN,
    };
    let output = std::env::current_exe().and_then(|exe| {
        std::process::Command::new(exe)
            .arg(SCALE_CHILD)
            .stderr(std::process::Stdio::inherit())
            .output()
    });
    let output = match output {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            println!("  the scale check failed: {}", output.status);
            return failed;
        }
        Err(err) => {
            println!("  the scale check could not start: {err}");
            return failed;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut values = std::collections::HashMap::new();
    for line in stdout.lines() {
        match line.strip_prefix("RESULT ") {
            Some(result) => {
                for pair in result.split_whitespace() {
                    if let Some((key, value)) = pair.split_once('=') {
                        values.insert(key.to_owned(), value.parse::<f64>().unwrap_or(f64::NAN));
                    }
                }
            }
            None => println!("{line}"),
        }
    }
    let get = |key: &str| values.get(key).copied().unwrap_or(f64::NAN);
    Scale {
        kib_circuit: get("kib_circuit"),
        kib_handle: get("kib_handle"),
        health_ms: get("health_ms"),
        all_stats_ms: get("all_stats_ms"),
        export_ms: get("export_ms"),
    }
}

fn ms_list(times: &[f64]) -> String {
    let list: Vec<String> = times.iter().map(|t| format!("{t:.1}")).collect();
    list.join(", ")
}

/// The scale check, in the child process: 10,000 circuits in one manager,
/// created with `GetBreaker`, then a handle to each from `GetCircuitHandle`
/// and one call through it; resident memory after each step, then the
/// time of `GetHealth`, `AllStats` and `ExportStats` over all of them.
async fn scale_child() {
    let name = |i: usize| format!("scale_{i:05}");
    // A warm-up manager with 200 circuits, so that one-time costs (the name
    // interner's first pages, the runtime's and the allocator's buffers) are
    // not charged to the 10,000; the measured manager holds exactly those.
    let warm_manager = CircuitBreakerManager::default().start();
    let mut warm = Vec::new();
    for i in 0..200 {
        let handle = warm_manager
            .send(GetCircuitHandle::new(format!("warm_{i:03}")))
            .await
            .unwrap()
            .unwrap();
        let _ = block_on(handle.call(ok()));
        warm.push(handle);
    }
    let _ = warm_manager.send(GetHealth).await.unwrap();
    let _ = warm_manager.send(ExportStats).await.unwrap();
    let manager = CircuitBreakerManager::default().start();

    let before = resident_kib();
    let created = Instant::now();
    let mut circuits = Vec::with_capacity(CIRCUITS);
    for i in 0..CIRCUITS {
        circuits.push(
            manager
                .send(GetBreaker::new(name(i)))
                .await
                .unwrap()
                .unwrap(),
        );
    }
    // Every actor has started and answered once.
    join_all(circuits.iter().map(|c| c.send(Stats))).await;
    let created = created.elapsed();
    let with_circuits = resident_kib();

    let handled = Instant::now();
    let mut handles = Vec::with_capacity(CIRCUITS);
    for i in 0..CIRCUITS {
        let handle: CircuitHandle = manager
            .send(GetCircuitHandle::new(name(i)))
            .await
            .unwrap()
            .unwrap();
        let _ = block_on(handle.call(ok()));
        handles.push(handle);
    }
    let handled = handled.elapsed();
    let with_handles = resident_kib();
    let kib_circuit = (with_circuits - before) / CIRCUITS as f64;
    let kib_handle = (with_handles - with_circuits) / CIRCUITS as f64;
    println!(
        "  10,000 circuits created through GetBreaker in {:.0} ms: {kib_circuit:.2} KiB resident \
         per circuit; GetCircuitHandle and one call each in {:.0} ms: +{kib_handle:.2} KiB; total \
         {:.2} KiB per circuit",
        created.as_secs_f64() * 1e3,
        handled.as_secs_f64() * 1e3,
        kib_circuit + kib_handle
    );

    let (mut health, mut all_stats, mut export) = (Vec::new(), Vec::new(), Vec::new());
    let mut export_bytes = 0;
    let elapsed_ms = |since: Instant| since.elapsed().as_secs_f64() * 1e3;
    for _ in 0..SCALE_RUNS {
        let started = Instant::now();
        let snapshot = manager.send(GetHealth).await.unwrap();
        health.push(elapsed_ms(started));
        assert_eq!(snapshot.circuits.len(), CIRCUITS);

        let started = Instant::now();
        let stats = manager.send(AllStats).await.unwrap();
        all_stats.push(elapsed_ms(started));
        assert_eq!(stats.len(), CIRCUITS);

        let started = Instant::now();
        let json = manager.send(ExportStats).await.unwrap();
        export.push(elapsed_ms(started));
        export_bytes = json.len();
    }
    let (health_ms, all_stats_ms, export_ms) =
        (median(&health), median(&all_stats), median(&export));
    println!(
        "  over all 10,000, median of {SCALE_RUNS}: GetHealth {health_ms:.1} ms [{}]; AllStats \
         {all_stats_ms:.1} ms [{}]; ExportStats {export_ms:.1} ms [{}], {:.1} MB of JSON",
        ms_list(&health),
        ms_list(&all_stats),
        ms_list(&export),
        export_bytes as f64 / 1e6
    );
    println!(
        "RESULT kib_circuit={kib_circuit} kib_handle={kib_handle} health_ms={health_ms} \
         all_stats_ms={all_stats_ms} export_ms={export_ms}"
    );
    drop((handles, warm));
}

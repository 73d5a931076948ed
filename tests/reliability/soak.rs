//! Section 5: the soak run. Mixed load over several circuits and every call
//! path, with faults injected all along (panics, timeouts, dropped callers
//! and permits, stopped circuits, resets, slow, stuck and panicking
//! subscribers) and the invariants checked continuously. Prints its
//! figures; fails if any invariant was ever violated.
//!
//! `cargo test --release --test reliability -- --ignored soak --nocapture`
//! (`SOAK_SECS` sets the length, 60 s by default; `SOAK_HANDLES_ELSEWHERE=1`
//! puts the handle callers on other threads than the circuits', which
//! exposes the fold bug described in `docs/reliability.md`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::{Either, select};
use vibezen_recovery::circuit::{
    Acquire, CallError, CircuitBreaker, CircuitStats, StateChanged, Stats, Stop,
};
use vibezen_recovery::config::{CircuitBreakerConfig, MAX_DURATION, WindowConfig};
use vibezen_recovery::manager::{
    CircuitBreakerManager, GetBreaker, GetCircuitHandle, GetRestarts, ResetAll, ResetCircuit,
    SubscribeAll,
};
use vibezen_recovery::outcome::{Classification, Outcome};

use crate::paths::{Path, Target, caught, run_with_permit, send_classified};
use crate::support::*;

/// The circuits under load, each standing for one kind of service.
fn circuits() -> Vec<(&'static str, CircuitBreakerConfig)> {
    let ms = Duration::from_millis;
    let base = CircuitBreakerConfig::default();
    vec![
        (
            "ai_provider",
            CircuitBreakerConfig {
                failure_threshold: 3,
                success_threshold: 3,
                half_open_max_calls: Some(1),
                timeout: ms(20),
                call_timeout: Some(ms(30)),
                critical: true,
                ..base.clone()
            },
        ),
        (
            "cache",
            CircuitBreakerConfig {
                failure_threshold: 3,
                success_threshold: 1,
                failure_rate_threshold: 0.3,
                min_calls: 10,
                window: WindowConfig::Count { size: 20 },
                timeout: ms(10),
                call_timeout: Some(ms(10)),
                ..base.clone()
            },
        ),
        (
            "search",
            CircuitBreakerConfig {
                failure_threshold: 5,
                success_threshold: 2,
                half_open_max_calls: Some(2),
                failure_rate_threshold: 0.5,
                min_calls: 20,
                window: WindowConfig::Time {
                    duration: ms(200),
                    buckets: 10,
                },
                timeout: ms(15),
                call_timeout: Some(ms(20)),
                ..base.clone()
            },
        ),
        (
            "knowledge_graph",
            CircuitBreakerConfig {
                failure_threshold: 5,
                success_threshold: 2,
                timeout: ms(5),
                call_timeout: Some(ms(15)),
                // Quiet spells reset it (HALF_OPEN -> CLOSED for inactivity).
                reset_timeout: ms(150),
                ..base.clone()
            },
        ),
        (
            "thinking_engine",
            // No call timeout: a trial is cut off at `timeout`, a CLOSED
            // call runs to its end.
            CircuitBreakerConfig {
                failure_threshold: 2,
                success_threshold: 1,
                timeout: ms(30),
                critical: true,
                ..base
            },
        ),
    ]
}

/// The probe: a circuit on a manager of its own (never stopped, never
/// reset) that never closes once opened, so every call it admits is a
/// trial and the gauge of its calls running at once checks the half-open
/// limit all along.
const PROBE_TRIALS: u32 = 2;

fn probe_config() -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        failure_threshold: 1,
        success_threshold: 1_000_000,
        half_open_max_calls: Some(PROBE_TRIALS),
        timeout: Duration::from_millis(2),
        call_timeout: Some(Duration::from_secs(2)),
        reset_timeout: MAX_DURATION,
        ..Default::default()
    }
}

/// How long a hanging call runs: past every call timeout above.
const HANG: Duration = Duration::from_millis(60);

/// Counters shared by every task of the run.
#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    admitted: AtomicU64,
    rejected: AtomicU64,
    unavailable: AtomicU64,
    /// Callers gone before the answer: the outcome is the circuit's to count.
    dropped_unknown: AtomicU64,
    slowest_micros: AtomicU64,
    stats_checks: AtomicU64,
    // Faults injected, by kind.
    panics: AtomicU64,
    hangs: AtomicU64,
    dropped_callers: AtomicU64,
    dropped_permits: AtomicU64,
    stops: AtomicU64,
    resets: AtomicU64,
    reset_alls: AtomicU64,
    weather_changes: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Invariant violations: counted, the first 50 kept.
#[derive(Debug, Default, Clone)]
struct Violations(Arc<Mutex<(u64, Vec<String>)>>);

impl Violations {
    fn report(&self, what: String) {
        let mut state = self.0.lock().unwrap();
        state.0 += 1;
        if state.1.len() < 50 {
            eprintln!("soak: VIOLATION: {what}");
            state.1.push(what);
        }
    }

    fn count(&self) -> u64 {
        self.0.lock().unwrap().0
    }

    fn list(&self) -> Vec<String> {
        self.0.lock().unwrap().1.clone()
    }
}

/// Everything the soak's tasks share.
#[derive(Clone)]
struct Shared {
    manager: Addr<CircuitBreakerManager>,
    names: Arc<Vec<&'static str>>,
    /// Per circuit, the percent of calls its service fails now.
    weather: Arc<Vec<AtomicU64>>,
    probe: Target,
    probe_gauge: Arc<Gauge>,
    counters: Arc<Counters>,
    violations: Violations,
    stop: StopFlag,
}

/// What a call's work does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Success,
    Ignored,
    Failure,
    Panic,
    Hang,
}

fn pick(rng: &mut Rng, failing_percent: u64) -> Kind {
    if rng.percent(failing_percent) {
        match rng.below(100) {
            0..60 => Kind::Failure,
            60..75 => Kind::Panic,
            _ => Kind::Hang,
        }
    } else if rng.percent(10) {
        Kind::Ignored
    } else {
        Kind::Success
    }
}

type Work = std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, u32>> + Send>>;

fn work(
    kind: Kind,
    delay: Duration,
    gauge: Option<Arc<Gauge>>,
    started: Option<tokio::sync::oneshot::Sender<()>>,
) -> Work {
    Box::pin(async move {
        let _running = gauge.map(|gauge| gauge.enter());
        if let Some(started) = started {
            let _ = started.send(());
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match kind {
            Kind::Success => Ok(1),
            Kind::Ignored => Err(2),
            Kind::Failure => Err(1),
            Kind::Panic => inject_panic("soak"),
            Kind::Hang => {
                tokio::time::sleep(HANG).await;
                Ok(1)
            }
        }
    })
}

async fn target(shared: &Shared, name: &str) -> Option<Target> {
    let circuit = shared
        .manager
        .send(GetBreaker::new(name))
        .await
        .ok()?
        .ok()?;
    let handle = shared
        .manager
        .send(GetCircuitHandle::new(name))
        .await
        .ok()?
        .ok()?;
    Some(Target {
        name: name.to_owned(),
        circuit,
        handle,
        manager: shared.manager.clone(),
    })
}

/// One caller: calls until the run ends, through `paths`, at random
/// circuits (one call in ten at the probe), with random work and faults.
async fn caller(shared: Shared, paths: Vec<Path>, mut rng: Rng) {
    let counters = &shared.counters;
    let mut targets: Vec<Option<Target>> = vec![None; shared.names.len()];
    while !shared.stop.raised() {
        let at_probe = rng.percent(10);
        let index = rng.below(shared.names.len() as u64) as usize;
        let target = if at_probe {
            shared.probe.clone()
        } else {
            if targets[index].is_none() {
                targets[index] = target(&shared, shared.names[index]).await;
            }
            match &targets[index] {
                Some(target) => target.clone(),
                None => continue,
            }
        };
        let path = paths[rng.below(paths.len() as u64) as usize];
        let kind = if at_probe {
            // The probe's calls end in time, so its trials report within their deadline.
            if rng.percent(45) {
                Kind::Failure
            } else {
                Kind::Success
            }
        } else {
            pick(&mut rng, shared.weather[index].load(Ordering::Relaxed))
        };
        let delay = if rng.percent(50) {
            Duration::ZERO
        } else {
            rng.micros(Duration::from_millis(2))
        };
        let gauge = at_probe.then(|| Arc::clone(&shared.probe_gauge));
        let drop_it = rng.percent(5);
        match kind {
            Kind::Panic => add(&counters.panics, 1),
            Kind::Hang => add(&counters.hangs, 1),
            _ => {}
        }
        add(&counters.calls, 1);
        let started = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(10), async {
            if drop_it && path == Path::Permit {
                // Acquire, then drop the permit unreported.
                add(&counters.dropped_permits, 1);
                return match target.circuit.send(Acquire).await {
                    Ok(Ok(permit)) => {
                        drop(permit);
                        Some(Ok(0))
                    }
                    Ok(Err(open)) => Some(Err(CallError::Open(open))),
                    Err(mailbox) => Some(Err(CallError::Unavailable(mailbox))),
                };
            }
            if drop_it {
                // Leave once the work has started (or the answer came).
                add(&counters.dropped_callers, 1);
                let (on_start, started) = tokio::sync::oneshot::channel();
                let call = Box::pin(call(
                    &target,
                    path,
                    work(kind, delay, gauge, Some(on_start)),
                ));
                return match select(call, started).await {
                    Either::Left((answer, _)) => Some(answer),
                    Either::Right((Ok(()), _call)) => None,
                    Either::Right((Err(_), call)) => Some(call.await),
                };
            }
            Some(call(&target, path, work(kind, delay, gauge, None)).await)
        })
        .await;
        let took = started.elapsed();
        counters
            .slowest_micros
            .fetch_max(took.as_micros() as u64, Ordering::Relaxed);
        match answer {
            Err(_) => shared.violations.report(format!(
                "a call through {path:?} to {} hung for 10 s",
                target.name
            )),
            Ok(None) => add(&counters.dropped_unknown, 1),
            Ok(Some(Err(CallError::Open(_)))) => {
                add(&counters.rejected, 1);
                tokio::task::yield_now().await;
            }
            Ok(Some(Err(CallError::Unavailable(_)))) => {
                add(&counters.unavailable, 1);
                if at_probe {
                    shared
                        .violations
                        .report("the probe (never stopped) answered unavailable".into());
                } else {
                    targets[index] = None;
                }
            }
            Ok(Some(_)) => add(&counters.admitted, 1),
        }
    }
}

async fn call(target: &Target, path: Path, work: Work) -> Result<u64, CallError<u32>> {
    match path {
        Path::Handle => caught(target.handle.call(work)).await,
        Path::Permit => match target.circuit.send(Acquire).await {
            Ok(Ok(permit)) => run_with_permit(permit, work).await,
            Ok(Err(open)) => Err(CallError::Open(open)),
            Err(mailbox) => Err(CallError::Unavailable(mailbox)),
        },
        Path::Message | Path::Manager => send_classified(target, path, work, classify).await,
    }
}

fn classify(result: &Result<u64, u32>) -> Classification {
    match result {
        Ok(_) => Classification::Success,
        Err(2) => Classification::Ignored,
        Err(_) => Classification::Failure,
    }
}

/// Checks every circuit's statistics: the totals add up, and within one
/// incarnation of a circuit (one actor) no counter ever goes down.
async fn check_stats(
    shared: &Shared,
    last: &mut BTreeMap<&'static str, (Addr<CircuitBreaker>, CircuitStats)>,
) {
    for &name in shared.names.iter() {
        let Ok(Ok(circuit)) = shared.manager.send(GetBreaker::new(name)).await else {
            shared.violations.report(format!("the manager lost {name}"));
            continue;
        };
        let Ok(stats) = circuit.send(Stats).await else {
            continue; // stopped meanwhile
        };
        add(&shared.counters.stats_checks, 1);
        check_totals(shared, &stats);
        if let Some((previous_circuit, previous)) = last.get(name) {
            if *previous_circuit == circuit {
                let (a, b) = (previous.totals, stats.totals);
                let pairs = [
                    (a.calls, b.calls),
                    (a.rejections, b.rejections),
                    (previous.generation, stats.generation),
                ]
                .into_iter()
                .chain(Outcome::ALL.map(|outcome| (a[outcome], b[outcome])));
                if pairs.into_iter().any(|(before, after)| after < before) {
                    shared
                        .violations
                        .report(format!("{name}: a count went down: {a:?} then {b:?}"));
                }
            }
        }
        last.insert(name, (circuit, stats));
    }
    if let Ok(stats) = shared.probe.circuit.send(Stats).await {
        add(&shared.counters.stats_checks, 1);
        check_totals(shared, &stats);
    }
}

fn check_totals(shared: &Shared, stats: &CircuitStats) {
    let t = stats.totals;
    let outcomes = t.outcomes.total();
    if outcomes > t.calls || stats.in_flight > 100_000 {
        shared.violations.report(format!(
            "{}: {outcomes} outcomes for {} admitted calls (in_flight {})",
            stats.name, t.calls, stats.in_flight
        ));
    }
}

/// A subscriber that panics at its first event.
struct Exploding;

impl Actor for Exploding {
    type Context = Context<Self>;
}

impl Handler<StateChanged> for Exploding {
    type Result = ();

    fn handle(&mut self, _: StateChanged, _: &mut Context<Self>) {
        inject_panic("soak subscriber");
    }
}

/// What a soak run measured.
#[derive(Debug)]
pub struct SoakFigures {
    pub elapsed: Duration,
    pub calls: u64,
    pub admitted: u64,
    pub rejected: u64,
    pub unavailable: u64,
    pub dropped_unknown: u64,
    pub transitions: u64,
    pub edges: [u64; 5],
    pub restarts: u64,
    pub faults: Vec<(&'static str, u64)>,
    pub stats_checks: u64,
    pub probe_peak: usize,
    pub slowest: Duration,
    pub rss_start_kib: u64,
    pub rss_end_kib: u64,
    pub hwm_kib: u64,
    pub heap_start_kib: u64,
    pub heap_end_kib: u64,
    pub violations: u64,
}

async fn run_soak(length: Duration, handles_elsewhere: bool) -> (SoakFigures, Vec<String>) {
    quiet_injected_panics();
    let mut rng = Rng::new(seed("soak"));
    let rss_start = rss_kib();
    let heap_start = crate::heap::live_bytes() / 1024;
    let manager = CircuitBreakerManager::default().start();
    let probe_manager = CircuitBreakerManager::default().start();
    let names: Vec<&'static str> = circuits().iter().map(|(name, _)| *name).collect();
    for (name, config) in circuits() {
        manager
            .send(GetBreaker::with_config(name, config))
            .await
            .unwrap()
            .unwrap();
    }
    let probe = Target::create(&probe_manager, "probe", probe_config()).await;

    // Subscribers: a fast checker, a slow one (5 ms per event), a stuck
    // one (its arbiter blocked) and one that panics at once, all on every
    // circuit through the manager; the fast checker on the probe too.
    let listeners = Callers::new(4);
    let fast = Checked::default();
    let slow = Checked::default();
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    assert!(listeners.arbiter(2).spawn(async move {
        let _ = blocked.recv();
    }));
    let stuck = Events::default();
    for recipient in [
        fast.subscriber(&listeners.arbiter(0), Duration::ZERO),
        slow.subscriber(&listeners.arbiter(1), Duration::from_millis(5)),
        stuck.subscriber(&listeners.arbiter(2)),
        Exploding::start_in_arbiter(&listeners.arbiter(3), |_| Exploding).recipient(),
    ] {
        manager.send(SubscribeAll(recipient)).await.unwrap();
    }
    probe_manager
        .send(SubscribeAll(
            fast.subscriber(&listeners.arbiter(0), Duration::ZERO),
        ))
        .await
        .unwrap();

    let shared = Shared {
        manager: manager.clone(),
        names: Arc::new(names.clone()),
        weather: Arc::new(names.iter().map(|_| AtomicU64::new(2)).collect()),
        probe,
        probe_gauge: Arc::new(Gauge::default()),
        counters: Arc::new(Counters::default()),
        violations: Violations::default(),
        stop: StopFlag::default(),
    };
    // Open the probe: from now on it only admits trials.
    let _ = shared
        .probe
        .call(Path::Message, async { Err::<(), u32>(1) })
        .await;

    // Callers: 30 tasks on 3 arbiters through the message, permit and
    // manager paths; 8 handle callers, on the circuits' thread (or, with
    // SOAK_HANDLES_ELSEWHERE, on the caller arbiters).
    let callers = Callers::new(3);
    let mut tasks = Vec::new();
    for index in 0..30 {
        let job = caller(
            shared.clone(),
            vec![Path::Message, Path::Permit, Path::Manager],
            Rng::new(rng.next_u64()),
        );
        tasks.push(callers.spawn(index, job));
    }
    for index in 0..8 {
        let job = caller(shared.clone(), vec![Path::Handle], Rng::new(rng.next_u64()));
        if handles_elsewhere {
            tasks.push(callers.spawn(index, job));
        } else {
            tasks.push(spawn_here(job));
        }
    }

    // The weather: each service's failure rate changes every 0.5-2 s.
    let weather = {
        let (shared, mut rng) = (shared.clone(), Rng::new(rng.next_u64()));
        actix::spawn(async move {
            while !shared.stop.raised() {
                tokio::time::sleep(Duration::from_millis(500 + rng.below(1_500))).await;
                let index = rng.below(shared.names.len() as u64) as usize;
                let percent = [2, 2, 30, 90][rng.below(4) as usize];
                shared.weather[index].store(percent, Ordering::Relaxed);
                add(&shared.counters.weather_changes, 1);
            }
        })
    };
    // Stops: a random circuit's actor every 0.3-1.5 s.
    let stopper = {
        let (shared, mut rng) = (shared.clone(), Rng::new(rng.next_u64()));
        let (fast, slow) = (fast.clone(), slow.clone());
        actix::spawn(async move {
            while !shared.stop.raised() {
                tokio::time::sleep(Duration::from_millis(300 + rng.below(1_200))).await;
                let name = shared.names[rng.below(shared.names.len() as u64) as usize];
                let Ok(Ok(circuit)) = shared.manager.send(GetBreaker::new(name)).await else {
                    continue;
                };
                fast.expect_restart(name);
                slow.expect_restart(name);
                if circuit.send(Stop).await.is_ok() {
                    add(&shared.counters.stops, 1);
                } else {
                    fast.cancel_restart(name);
                    slow.cancel_restart(name);
                }
            }
        })
    };
    // Resets: one circuit every 0.2-0.8 s, all of them one time in five.
    let resetter = {
        let (shared, mut rng) = (shared.clone(), Rng::new(rng.next_u64()));
        actix::spawn(async move {
            while !shared.stop.raised() {
                tokio::time::sleep(Duration::from_millis(200 + rng.below(600))).await;
                if rng.percent(20) {
                    let _ = shared.manager.send(ResetAll).await;
                    add(&shared.counters.reset_alls, 1);
                } else {
                    let name = shared.names[rng.below(shared.names.len() as u64) as usize];
                    let _ = shared.manager.send(ResetCircuit(name.into())).await;
                    add(&shared.counters.resets, 1);
                }
            }
        })
    };

    // The run: statistics checked every 25 ms, memory sampled.
    let started = Instant::now();
    let mut last = BTreeMap::new();
    let mut next_report = Duration::from_secs(10);
    while started.elapsed() < length {
        tokio::time::sleep(Duration::from_millis(25)).await;
        check_stats(&shared, &mut last).await;
        if shared.probe_gauge.peak() > PROBE_TRIALS as usize {
            shared.violations.report(format!(
                "{} trial calls ran at once at the probe (limit {PROBE_TRIALS})",
                shared.probe_gauge.peak()
            ));
        }
        if started.elapsed() >= next_report {
            next_report += Duration::from_secs(10);
            println!(
                "soak: {:.0?}: {} calls, {} transitions, {} violations, VmRSS {} KiB, live heap {} KiB",
                started.elapsed(),
                get(&shared.counters.calls),
                fast.total(),
                shared.violations.count(),
                rss_kib(),
                crate::heap::live_bytes() / 1024
            );
        }
    }
    shared.stop.raise();
    let elapsed = started.elapsed();
    let ended = join_all_or_report(&shared, tasks).await;
    for task in [weather, stopper, resetter] {
        let _ = deadline(Duration::from_secs(5), "fault injectors", task).await;
    }
    if !ended {
        shared.violations.report("a caller task died".into());
    }

    // Quiet: every circuit back (a stopped one is recreated by asking),
    // nothing in flight, timers run out (OPEN turns HALF_OPEN).
    deadline(Duration::from_secs(10), "quiescence", async {
        loop {
            let mut busy = 0;
            for &name in names.iter() {
                let circuit = manager.send(GetBreaker::new(name)).await.unwrap().unwrap();
                if let Ok(stats) = circuit.send(Stats).await {
                    busy += stats.in_flight;
                }
            }
            if busy == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Final checks: totals, restarts, history against what the fast
    // checker got (none lost), the checkers' own findings.
    let restarts: u64 = manager.send(GetRestarts).await.unwrap().values().sum();
    if restarts != get(&shared.counters.stops) {
        shared.violations.report(format!(
            "{restarts} restarts for {} stops injected",
            get(&shared.counters.stops)
        ));
    }
    for &name in names.iter().chain(["probe"].iter()) {
        let stats = if name == "probe" {
            shared.probe.circuit.send(Stats).await.unwrap()
        } else {
            let circuit = manager.send(GetBreaker::new(name)).await.unwrap().unwrap();
            circuit.send(Stats).await.unwrap()
        };
        let t = stats.totals;
        let outcomes = t.outcomes.total();
        if stats.in_flight != 0 || outcomes != t.calls {
            shared.violations.report(format!(
                "{name}: at rest, {t:?} with {} in flight",
                stats.in_flight
            ));
        }
        let log = fast.log(name);
        let tail: Vec<StateChanged> = log
            .map(|log| log.last.into_iter().collect())
            .unwrap_or_default();
        let history = &stats.state_changes;
        if tail.len() < history.len() || tail[tail.len() - history.len()..] != history[..] {
            shared.violations.report(format!(
                "{name}: the fast subscriber's last events differ from the circuit's history \
                 ({} events kept, history of {})",
                tail.len(),
                history.len()
            ));
        }
    }
    for (which, checked) in [("fast", &fast), ("slow", &slow)] {
        let (count, found) = checked.violations();
        for problem in found {
            shared
                .violations
                .report(format!("{which} subscriber: {problem}"));
        }
        if count > 100 {
            shared
                .violations
                .report(format!("{which} subscriber: {} more problems", count - 100));
        }
    }
    let _ = release.send(());
    // The slow subscriber may still have a backlog to read at 5 ms an
    // event: do not wait for it.
    listeners.abandon();
    callers.shut_down();

    let counters = &shared.counters;
    let figures = SoakFigures {
        elapsed,
        calls: get(&counters.calls),
        admitted: get(&counters.admitted),
        rejected: get(&counters.rejected),
        unavailable: get(&counters.unavailable),
        dropped_unknown: get(&counters.dropped_unknown),
        transitions: fast.total(),
        edges: fast.edges(),
        restarts,
        faults: vec![
            ("panics in protected calls", get(&counters.panics)),
            ("calls past their timeout", get(&counters.hangs)),
            ("callers gone mid-call", get(&counters.dropped_callers)),
            ("permits dropped unreported", get(&counters.dropped_permits)),
            ("circuit actors stopped", get(&counters.stops)),
            ("single resets", get(&counters.resets)),
            ("resets of all circuits", get(&counters.reset_alls)),
            ("service health changes", get(&counters.weather_changes)),
            ("subscribers: 5 ms per event, stuck, panicking", 3),
        ],
        stats_checks: get(&counters.stats_checks),
        probe_peak: shared.probe_gauge.peak(),
        slowest: Duration::from_micros(get(&counters.slowest_micros)),
        rss_start_kib: rss_start,
        rss_end_kib: rss_kib(),
        hwm_kib: hwm_kib(),
        heap_start_kib: heap_start,
        heap_end_kib: crate::heap::live_bytes() / 1024,
        violations: shared.violations.count(),
    };
    (figures, shared.violations.list())
}

/// Waits for every caller; false if one died.
async fn join_all_or_report(
    shared: &Shared,
    tasks: Vec<tokio::sync::oneshot::Receiver<()>>,
) -> bool {
    let mut all = true;
    let outcome = tokio::time::timeout(Duration::from_secs(30), async {
        for task in tasks {
            all &= task.await.is_ok();
        }
    })
    .await;
    if outcome.is_err() {
        shared
            .violations
            .report("callers did not stop within 30 s".into());
    }
    all
}

impl SoakFigures {
    fn print(&self) {
        let [closed_open, open_half, half_closed, half_open, open_closed] = self.edges;
        println!("== soak figures");
        println!("length                 {:.1?}", self.elapsed);
        println!(
            "calls made             {} ({:.0}/s)",
            self.calls,
            self.calls as f64 / self.elapsed.as_secs_f64()
        );
        println!("  admitted             {}", self.admitted);
        println!("  rejected             {}", self.rejected);
        println!("  circuit gone         {}", self.unavailable);
        println!("  caller left first    {}", self.dropped_unknown);
        println!(
            "transitions            {} (CLOSED->OPEN {closed_open}, OPEN->HALF_OPEN {open_half}, \
             HALF_OPEN->CLOSED {half_closed}, HALF_OPEN->OPEN {half_open}, OPEN->CLOSED {open_closed})",
            self.transitions
        );
        println!("circuits recreated     {}", self.restarts);
        println!("faults injected");
        for (kind, count) in &self.faults {
            println!("  {kind:<45} {count}");
        }
        println!("statistics checks      {}", self.stats_checks);
        println!(
            "probe trials at once   {} (limit {PROBE_TRIALS})",
            self.probe_peak
        );
        println!("slowest call           {:.1?}", self.slowest);
        println!(
            "memory                 VmRSS {} KiB at start, {} KiB at end; VmHWM {} KiB; \
             live heap {} KiB at start, {} KiB at end",
            self.rss_start_kib,
            self.rss_end_kib,
            self.hwm_kib,
            self.heap_start_kib,
            self.heap_end_kib
        );
        println!("invariant violations   {}", self.violations);
    }
}

#[test]
#[ignore = "soak: runs SOAK_SECS seconds (60 by default); see docs/reliability.md"]
fn soak() {
    serial_test(async {
        let secs = std::env::var("SOAK_SECS")
            .ok()
            .and_then(|secs| secs.parse().ok())
            .unwrap_or(60);
        let elsewhere = std::env::var("SOAK_HANDLES_ELSEWHERE").is_ok_and(|v| v == "1");
        let (figures, violations) = run_soak(Duration::from_secs(secs), elsewhere).await;
        figures.print();
        assert_eq!(
            figures.violations, 0,
            "invariant violations: {violations:#?}"
        );
        if secs >= 2 {
            assert!(
                figures.transitions > 0 && figures.restarts > 0,
                "{figures:?}"
            );
        }
    })
}

//! Helpers for the reliability tests: real-time deadlines, a lock that runs
//! the tests of this binary one at a time, caller arbiters, a gauge of
//! calls running at once, an event log that checks what a circuit
//! broadcasts, memory readings and a small random number generator.

pub use crate::common::*;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::Duration;

use actix::prelude::*;
use vibezen_recovery::circuit::{HISTORY_LIMIT, StateChanged};
use vibezen_recovery::state::CircuitState;
use vibezen_recovery::transition::TransitionReason;

/// The tests of this binary load both cores, measure memory and time
/// transitions: each runs under this lock so that none disturbs another.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs one test in an actix `System` of its own (as `#[actix::test]`
/// does), holding the lock that keeps the tests of this binary apart.
pub fn serial_test<F: Future>(test: F) -> F::Output {
    let _serial = serial();
    actix::System::new().block_on(test)
}

/// Runs `future` under a real-time deadline: a bug fails the test instead
/// of hanging it.
pub async fn deadline<F: Future>(limit: Duration, what: &str, future: F) -> F::Output {
    match tokio::time::timeout(limit, future).await {
        Ok(output) => output,
        Err(_) => panic!("{what}: still not done after {limit:?}; something hangs"),
    }
}

/// The payload of every panic these tests inject on purpose.
pub const INJECTED: &str = "injected panic";

/// Keeps the panics the tests inject on purpose off stderr (a million calls
/// with a few percent of panics would print tens of thousands of
/// backtraces); every other panic is reported as usual.
pub fn quiet_injected_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let text = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("");
            if !text.starts_with(INJECTED) {
                default(info);
            }
        }));
    });
}

/// Panics with the marker [`quiet_injected_panics`] looks for.
pub fn inject_panic(detail: impl std::fmt::Display) -> ! {
    std::panic::panic_any(format!("{INJECTED}: {detail}"))
}

/// A handful of arbiters (threads with their own event loop) for callers.
pub struct Callers {
    arbiters: Vec<Arbiter>,
}

impl Callers {
    pub fn new(count: usize) -> Self {
        Callers {
            arbiters: (0..count).map(|_| Arbiter::new()).collect(),
        }
    }

    pub fn arbiter(&self, index: usize) -> ArbiterHandle {
        self.arbiters[index % self.arbiters.len()].handle()
    }

    /// Runs `future` on arbiter `index`; the receiver gets its output.
    pub fn spawn<F>(&self, index: usize, future: F) -> tokio::sync::oneshot::Receiver<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let spawned = self.arbiters[index % self.arbiters.len()].spawn(async move {
            let _ = sender.send(future.await);
        });
        assert!(spawned, "caller arbiter is gone");
        receiver
    }

    /// Runs the future `make` builds on arbiter `index`; unlike
    /// [`spawn`](Self::spawn) the future need not be `Send`.
    pub fn spawn_local<M, F>(
        &self,
        index: usize,
        make: M,
    ) -> tokio::sync::oneshot::Receiver<F::Output>
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let spawned = self.arbiters[index % self.arbiters.len()].spawn_fn(move || {
            actix::spawn(async move {
                let _ = sender.send(make().await);
            });
        });
        assert!(spawned, "caller arbiter is gone");
        receiver
    }

    /// Stops every arbiter without waiting for its thread (one may still be
    /// working through a slow subscriber's backlog).
    pub fn abandon(self) {
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
    }

    /// Stops every arbiter and waits for its thread.
    pub fn shut_down(self) {
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
        for arbiter in self.arbiters {
            let _ = arbiter.join();
        }
    }
}

/// Runs `future` on the current arbiter (the test's own); the receiver
/// gets its output.
pub fn spawn_here<F>(future: F) -> tokio::sync::oneshot::Receiver<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let (sender, receiver) = tokio::sync::oneshot::channel();
    actix::spawn(async move {
        let _ = sender.send(future.await);
    });
    receiver
}

/// Waits for every receiver, under one deadline.
pub async fn join_all<T>(
    limit: Duration,
    what: &str,
    receivers: Vec<tokio::sync::oneshot::Receiver<T>>,
) -> Vec<T> {
    deadline(limit, what, async {
        let mut outputs = Vec::with_capacity(receivers.len());
        for receiver in receivers {
            outputs.push(receiver.await.expect("a caller task died (panicked?)"));
        }
        outputs
    })
    .await
}

/// How many instrumented calls run at once, and the most that ever did.
#[derive(Debug, Default)]
pub struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
    entered: AtomicU64,
}

impl Gauge {
    pub fn enter(self: &Arc<Self>) -> GaugeGuard {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        self.entered.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(Arc::clone(self))
    }

    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    pub fn now(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }

    pub fn entered(&self) -> u64 {
        self.entered.load(Ordering::Relaxed)
    }
}

/// Leaves the gauge when dropped: when the call ends, or when its future
/// is dropped unfinished (cut off at its deadline, or its caller gone).
pub struct GaugeGuard(Arc<Gauge>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A flag callers poll to know when to stop.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// An event as a subscriber received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub event: StateChanged,
    /// Wall-clock time of arrival, comparable with `event.at`.
    pub wall: chrono::DateTime<chrono::Utc>,
}

/// A subscriber that keeps every event with the moment it arrived, and may
/// be made slow (it blocks its own arbiter for `delay` per event).
pub struct EventLog {
    events: Arc<Mutex<Vec<Received>>>,
    delay: Duration,
}

impl Actor for EventLog {
    type Context = Context<Self>;
}

impl Handler<StateChanged> for EventLog {
    type Result = ();

    fn handle(&mut self, event: StateChanged, _: &mut Context<Self>) {
        let wall = chrono::Utc::now();
        self.events.lock().unwrap().push(Received { event, wall });
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
    }
}

/// The events an [`EventLog`] collected.
#[derive(Debug, Clone, Default)]
pub struct Events(Arc<Mutex<Vec<Received>>>);

impl Events {
    /// A fast [`EventLog`] on `arbiter`.
    pub fn subscriber(&self, arbiter: &ArbiterHandle) -> Recipient<StateChanged> {
        self.slow_subscriber(arbiter, Duration::ZERO)
    }

    /// An [`EventLog`] on `arbiter` that blocks `delay` per event.
    pub fn slow_subscriber(
        &self,
        arbiter: &ArbiterHandle,
        delay: Duration,
    ) -> Recipient<StateChanged> {
        let events = Arc::clone(&self.0);
        EventLog::start_in_arbiter(arbiter, move |_| EventLog { events, delay }).recipient()
    }

    pub fn snapshot(&self) -> Vec<Received> {
        self.0.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Events of `circuit` so far.
    pub fn of(&self, circuit: &str) -> Vec<StateChanged> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|received| received.event.circuit == circuit)
            .map(|received| received.event.clone())
            .collect()
    }

    /// How many events of `circuit` went `from` -> `to`.
    pub fn count(&self, circuit: &str, from: CircuitState, to: CircuitState) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.event.circuit == circuit && r.event.from == from && r.event.to == to)
            .count()
    }
}

/// A subscriber that checks each circuit's events as they arrive and keeps
/// only counts and the last [`HISTORY_LIMIT`] events: for long runs, where
/// keeping every event would itself take memory. A circuit that was
/// stopped (announced with [`Checked::expect_restart`]) may start over,
/// CLOSED in generation 0.
pub struct Checker {
    state: Arc<Mutex<CheckerState>>,
    delay: Duration,
}

/// What a [`Checker`] has seen.
#[derive(Debug, Default)]
pub struct CheckerState {
    pub circuits: std::collections::BTreeMap<String, CircuitLog>,
    /// Restarts announced and not yet seen, by circuit.
    pub pending_restarts: std::collections::HashMap<String, u64>,
    /// The first 100 problems found.
    pub violations: Vec<String>,
    /// Problems found in all.
    pub violation_count: u64,
}

/// One circuit's events, as a [`Checker`] saw them.
#[derive(Debug, Clone)]
pub struct CircuitLog {
    pub events: u64,
    pub state: CircuitState,
    pub generation: u64,
    /// Events by edge: CLOSED->OPEN, OPEN->HALF_OPEN, HALF_OPEN->CLOSED,
    /// HALF_OPEN->OPEN, OPEN->CLOSED.
    pub edges: [u64; 5],
    /// Restarts seen (a stopped circuit recreated).
    pub restarts: u64,
    /// The last events, oldest first.
    pub last: std::collections::VecDeque<StateChanged>,
}

impl CircuitLog {
    fn new() -> Self {
        CircuitLog {
            events: 0,
            state: CircuitState::Closed,
            generation: 0,
            edges: [0; 5],
            restarts: 0,
            last: Default::default(),
        }
    }

    /// What does not fit: a `from` that is not the last `to`, a
    /// generation that does not grow.
    fn misfits(&self, event: &StateChanged) -> Vec<String> {
        let mut problems = Vec::new();
        if event.generation <= self.generation {
            problems.push(format!(
                "{}: generation {} after {} (reordered)",
                event.circuit, event.generation, self.generation
            ));
        }
        if event.from != self.state {
            problems.push(format!(
                "{}: {} -> {} but the previous event left it {} (lost or reordered)",
                event.circuit, event.from, event.to, self.state
            ));
        }
        problems
    }
}

impl Actor for Checker {
    type Context = Context<Self>;
}

impl Handler<StateChanged> for Checker {
    type Result = ();

    fn handle(&mut self, event: StateChanged, _: &mut Context<Self>) {
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        let log = state
            .circuits
            .entry(event.circuit.clone())
            .or_insert_with(CircuitLog::new);
        let mut problems = log.misfits(&event);
        if !problems.is_empty() {
            if let Some(pending) = state
                .pending_restarts
                .get_mut(&event.circuit)
                .filter(|pending| **pending > 0)
            {
                *pending -= 1;
                log.state = CircuitState::Closed;
                log.generation = 0;
                log.restarts += 1;
                problems = log.misfits(&event);
            }
        }
        if !legal(event.from, event.to, &event.reason) {
            problems.push(format!(
                "{}: illegal transition {} -> {} ({:?})",
                event.circuit, event.from, event.to, event.reason
            ));
        }
        use CircuitState::{Closed, HalfOpen, Open};
        let edge = match (event.from, event.to) {
            (Closed, Open) => Some(0),
            (Open, HalfOpen) => Some(1),
            (HalfOpen, Closed) => Some(2),
            (HalfOpen, Open) => Some(3),
            (Open, Closed) => Some(4),
            _ => None,
        };
        if let Some(edge) = edge {
            log.edges[edge] += 1;
        }
        log.events += 1;
        log.state = event.to;
        log.generation = event.generation;
        if log.last.len() == HISTORY_LIMIT {
            log.last.pop_front();
        }
        log.last.push_back(event);
        state.violation_count += problems.len() as u64;
        for problem in problems {
            if state.violations.len() < 100 {
                state.violations.push(problem);
            }
        }
        drop(guard);
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
    }
}

/// The shared view of a [`Checker`].
#[derive(Debug, Clone, Default)]
pub struct Checked(pub Arc<Mutex<CheckerState>>);

impl Checked {
    /// A [`Checker`] on `arbiter` that blocks `delay` per event.
    pub fn subscriber(&self, arbiter: &ArbiterHandle, delay: Duration) -> Recipient<StateChanged> {
        let state = Arc::clone(&self.0);
        Checker::start_in_arbiter(arbiter, move |_| Checker { state, delay }).recipient()
    }

    /// Announces that `circuit` is about to be stopped (and recreated).
    pub fn expect_restart(&self, circuit: &str) {
        *self
            .0
            .lock()
            .unwrap()
            .pending_restarts
            .entry(circuit.to_owned())
            .or_default() += 1;
    }

    /// Takes back an announcement (the stop did not happen).
    pub fn cancel_restart(&self, circuit: &str) {
        if let Some(pending) = self.0.lock().unwrap().pending_restarts.get_mut(circuit) {
            *pending = pending.saturating_sub(1);
        }
    }

    /// How many events it got from `circuit`.
    pub fn events(&self, circuit: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .circuits
            .get(circuit)
            .map_or(0, |log| log.events)
    }

    /// A copy of what it saw of `circuit`.
    pub fn log(&self, circuit: &str) -> Option<CircuitLog> {
        self.0.lock().unwrap().circuits.get(circuit).cloned()
    }

    /// Every event it got.
    pub fn total(&self) -> u64 {
        self.0
            .lock()
            .unwrap()
            .circuits
            .values()
            .map(|log| log.events)
            .sum()
    }

    /// Events by edge, over every circuit.
    pub fn edges(&self) -> [u64; 5] {
        let mut edges = [0; 5];
        for log in self.0.lock().unwrap().circuits.values() {
            for (sum, count) in edges.iter_mut().zip(log.edges) {
                *sum += count;
            }
        }
        edges
    }

    pub fn violations(&self) -> (u64, Vec<String>) {
        let state = self.0.lock().unwrap();
        (state.violation_count, state.violations.clone())
    }
}

/// Whether `from -> to` for `reason` is an edge the circuit may take.
pub fn legal(from: CircuitState, to: CircuitState, reason: &TransitionReason) -> bool {
    use CircuitState::{Closed, Disabled, ForcedOpen, HalfOpen, Open};
    use TransitionReason as R;
    match (from, to) {
        (Closed, Open) => matches!(
            reason,
            R::ConsecutiveFailures { .. } | R::FailureRate { .. }
        ),
        (Open, HalfOpen) => matches!(reason, R::OpenTimeoutElapsed),
        (HalfOpen, Closed) => matches!(
            reason,
            R::TrialsSucceeded { .. } | R::Inactivity | R::ManualReset
        ),
        (HalfOpen, Open) => matches!(reason, R::TrialFailed { .. } | R::TrialSlotReclaimed),
        (Open, Closed) => matches!(reason, R::ManualReset | R::Inactivity),
        (_, ForcedOpen) => matches!(reason, R::ForcedOpen),
        (_, Disabled) => matches!(reason, R::Disabled),
        (ForcedOpen | Disabled, Closed) => matches!(reason, R::Released | R::ManualReset),
        _ => false,
    }
}

/// What is wrong with one circuit's event sequence as a subscriber got
/// it: an illegal edge, a generation that does not grow, a `from` that is
/// not the previous `to` (an event lost or reordered). `start` is the state
/// the circuit was in before the first event. With `gapless`, each event's
/// generation must be the previous one's plus one (no resets while CLOSED,
/// so every new generation is a broadcast transition): a lost event shows.
pub fn sequence_violations(
    events: &[StateChanged],
    start: CircuitState,
    gapless: bool,
) -> Vec<String> {
    let mut violations = Vec::new();
    let mut state = start;
    let mut generation = None::<u64>;
    for (index, event) in events.iter().enumerate() {
        if !legal(event.from, event.to, &event.reason) {
            violations.push(format!(
                "#{index}: illegal transition {} -> {} ({:?})",
                event.from, event.to, event.reason
            ));
        }
        if event.from != state {
            violations.push(format!(
                "#{index}: from {} but the previous event left it {state} (lost or reordered)",
                event.from
            ));
        }
        if let Some(previous) = generation {
            if event.generation <= previous {
                violations.push(format!(
                    "#{index}: generation {} after {previous} (reordered)",
                    event.generation
                ));
            } else if gapless && event.generation != previous + 1 {
                violations.push(format!(
                    "#{index}: generation {} after {previous} (events lost)",
                    event.generation
                ));
            }
        }
        state = event.to;
        generation = Some(event.generation);
    }
    violations
}

/// A field of /proc/self/status, in KiB (`VmRSS`, `VmHWM`).
pub fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            rest.trim().trim_end_matches("kB").trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Resident memory now, in KiB.
pub fn rss_kib() -> u64 {
    proc_status_kib("VmRSS")
}

/// Peak resident memory of the process so far, in KiB.
pub fn hwm_kib() -> u64 {
    proc_status_kib("VmHWM")
}

/// A small deterministic generator (splitmix64): no dependency, and a
/// failing run can be repeated from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A duration in `0..max`, in microseconds.
    pub fn micros(&mut self, max: Duration) -> Duration {
        Duration::from_micros(self.below(max.as_micros() as u64))
    }
}

/// A seed for a test: `RELIABILITY_SEED` if set, else from the clock. It is
/// printed, so a failing run can be repeated.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("RELIABILITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("{test}: RELIABILITY_SEED={seed}");
    seed
}

//! Section 2, accounting: many calls from several arbiters (and threads
//! using handles) with random outcomes, delays, call timeouts, panics and
//! dropped callers. Every admitted call must be counted exactly once, every
//! rejection once, and the final statistics must agree with what the
//! callers saw. The event stream is checked on the way: legal edges, in
//! order, none lost. An operator forces circuits open, disables and
//! releases them all the while (issue 9).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::{Either, select};
use vibezen_recovery::circuit::{
    Acquire, CallError, CircuitBreaker, CircuitStats, Disable, ForceOpen, GetHandle, Permit,
    ProtectedCall, Release, Stats, Stop, Subscribe,
};
use vibezen_recovery::config::{CircuitBreakerConfig, MAX_DURATION, WindowConfig};
use vibezen_recovery::manager::CircuitBreakerManager;
use vibezen_recovery::outcome::{Classification, Outcome};
use vibezen_recovery::state::CircuitState;

use crate::paths::{Path, Reply, Target, caught, send_classified};
use crate::support::*;

/// The error a failing call returns.
const FAIL: u32 = 1;
/// The error a classifier says to ignore (on the paths that classify).
const IGNORE: u32 = 2;

/// Every circuit's call timeout. Work that ends in time ends within 1 ms
/// (plus scheduling noise), work that hangs runs 60 ms: no call ends near
/// its deadline, where the caller's answer and the count could honestly
/// differ (a permit's report at or after its deadline counts as a
/// timeout; see also `a_trial_ending_at_its_deadline_is_counted_as_its_
/// caller_saw_it`).
const CALL_TIMEOUT: Duration = Duration::from_millis(20);

/// The circuits under load: one that flaps (trips after 3 failures in a
/// row, one trial at a time, 3 ms open), one with a count window and two
/// trial slots, one with a time window and three.
fn configs() -> Vec<(&'static str, CircuitBreakerConfig)> {
    let base = CircuitBreakerConfig {
        call_timeout: Some(CALL_TIMEOUT),
        reset_timeout: MAX_DURATION,
        ..Default::default()
    };
    vec![
        (
            "flappy",
            CircuitBreakerConfig {
                failure_threshold: 3,
                success_threshold: 1,
                half_open_max_calls: Some(1),
                timeout: Duration::from_millis(3),
                ..base.clone()
            },
        ),
        (
            "counted",
            CircuitBreakerConfig {
                failure_threshold: 6,
                success_threshold: 2,
                half_open_max_calls: Some(2),
                failure_rate_threshold: 0.3,
                min_calls: 10,
                window: WindowConfig::Count { size: 20 },
                timeout: Duration::from_millis(5),
                ..base.clone()
            },
        ),
        (
            "timed",
            CircuitBreakerConfig {
                failure_threshold: 10,
                success_threshold: 3,
                half_open_max_calls: Some(3),
                failure_rate_threshold: 0.25,
                min_calls: 20,
                window: WindowConfig::Time {
                    duration: Duration::from_millis(200),
                    buckets: 10,
                },
                timeout: Duration::from_millis(10),
                ..base
            },
        ),
    ]
}

/// What a call's work does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Success,
    Failure,
    /// Returns the error a classifier ignores (a plain failure on the paths
    /// without a classifier: the handle and, here, the manager).
    Ignored,
    Panic,
    /// Runs three call timeouts: cut off at its deadline.
    Hang,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Success,
        Kind::Failure,
        Kind::Ignored,
        Kind::Panic,
        Kind::Hang,
    ];

    fn pick(rng: &mut Rng) -> Kind {
        match rng.below(100) {
            0..72 => Kind::Success,
            72..84 => Kind::Failure,
            84..91 => Kind::Ignored,
            91..95 => Kind::Panic,
            _ => Kind::Hang,
        }
    }

    fn index(self) -> usize {
        Kind::ALL.iter().position(|&k| k == self).unwrap()
    }
}

/// How the work tells that it started (it is polled once admitted).
enum Start {
    Quiet,
    /// Signals the caller, which then drops its call.
    Signal(tokio::sync::oneshot::Sender<()>),
    /// Counts itself in the ledger: its caller is gone, and only this count
    /// tells that the call was admitted.
    Count(Arc<Ledger>, usize),
}

type Work = Pin<Box<dyn Future<Output = Result<u64, u32>> + Send>>;

fn work(kind: Kind, delay: Duration, start: Start) -> Work {
    Box::pin(async move {
        match start {
            Start::Quiet => {}
            Start::Signal(started) => {
                let _ = started.send(());
            }
            Start::Count(ledger, circuit) => {
                ledger.started[circuit][kind.index()].fetch_add(1, Ordering::Relaxed);
            }
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match kind {
            Kind::Success => Ok(7),
            Kind::Failure => Err(FAIL),
            Kind::Ignored => Err(IGNORE),
            Kind::Panic => inject_panic("in a protected call"),
            Kind::Hang => {
                tokio::time::sleep(CALL_TIMEOUT * 3).await;
                Ok(7)
            }
        }
    })
}

fn classify(result: &Result<u64, u32>) -> Classification {
    match result {
        Ok(_) => Classification::Success,
        Err(IGNORE) => Classification::Ignored,
        Err(_) => Classification::Failure,
    }
}

/// Counts kept by the works whose callers dropped them before the circuit
/// answered: per circuit, per kind, how many started (were admitted).
#[derive(Debug)]
struct Ledger {
    started: Vec<[AtomicU64; 5]>,
}

/// What the callers saw, for one circuit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Seen {
    success: u64,
    failure: u64,
    timeout: u64,
    panic: u64,
    ignored: u64,
    cancelled: u64,
    rejection: u64,
    /// Calls whose caller dropped the request before any answer and whose
    /// work never started: rejected, or never handled (actix skips a
    /// message whose sender is gone).
    maybe_rejected: u64,
    /// `Acquire`s dropped before the answer: a permit that was dropped
    /// (cancelled), a rejection, or nothing.
    maybe_cancelled: u64,
    /// Answers of a gone circuit: must stay 0 (nothing stops circuits here).
    unavailable: u64,
    /// Calls counted above by what their work does, whose callers left
    /// before the answer: a circuit that reads such a call's end after its
    /// deadline (it was starved of CPU, say) counts a timeout instead, and
    /// nobody saw which.
    unseen: u64,
    /// Every call made.
    attempts: u64,
}

impl Seen {
    fn add(&mut self, other: &Seen) {
        self.success += other.success;
        self.failure += other.failure;
        self.timeout += other.timeout;
        self.panic += other.panic;
        self.ignored += other.ignored;
        self.cancelled += other.cancelled;
        self.rejection += other.rejection;
        self.maybe_rejected += other.maybe_rejected;
        self.maybe_cancelled += other.maybe_cancelled;
        self.unavailable += other.unavailable;
        self.unseen += other.unseen;
        self.attempts += other.attempts;
    }

    /// Counts an answer; `classified` says whether an `IGNORE` error was
    /// classified as ignored on this path.
    fn answer(&mut self, result: &Result<u64, CallError<u32>>, classified: bool) {
        match result {
            Ok(_) => self.success += 1,
            Err(CallError::Failed(IGNORE)) if classified => self.ignored += 1,
            Err(CallError::Failed(_)) => self.failure += 1,
            Err(CallError::Timeout(_)) => self.timeout += 1,
            Err(CallError::Panicked(_)) => self.panic += 1,
            Err(CallError::Open(_)) => self.rejection += 1,
            Err(CallError::Unavailable(_)) => self.unavailable += 1,
            // `CallError` is `#[non_exhaustive]`; no other answer may reach
            // a circuit called directly, and a new kind must be counted here.
            Err(other) => panic!("an answer the accounting does not count: {other:?}"),
        }
    }

    /// Counts an admitted call by what its work does.
    fn admitted(&mut self, kind: Kind, classified: bool) {
        match kind {
            Kind::Success => self.success += 1,
            Kind::Failure => self.failure += 1,
            Kind::Ignored if classified => self.ignored += 1,
            Kind::Ignored => self.failure += 1,
            Kind::Panic => self.panic += 1,
            Kind::Hang => self.timeout += 1,
        }
    }

    /// Like [`admitted`](Self::admitted), for a call whose caller left
    /// before the answer.
    fn admitted_unseen(&mut self, kind: Kind, classified: bool) {
        self.admitted(kind, classified);
        if kind != Kind::Hang {
            self.unseen += 1;
        }
    }

    fn admitted_count(&self) -> u64 {
        self.success + self.failure + self.timeout + self.panic + self.ignored + self.cancelled
    }
}

/// One caller's loop: `calls` calls at random circuits through random
/// `paths`, with random work, delays and ways of giving up.
async fn caller(
    targets: Arc<Vec<Target>>,
    paths: Vec<Path>,
    calls: u64,
    mut rng: Rng,
    ledger: Arc<Ledger>,
) -> Vec<Seen> {
    let mut seen = vec![Seen::default(); targets.len()];
    for _ in 0..calls {
        let index = rng.below(targets.len() as u64) as usize;
        let target = &targets[index];
        let seen = &mut seen[index];
        seen.attempts += 1;
        let path = paths[rng.below(paths.len() as u64) as usize];
        let kind = Kind::pick(&mut rng);
        let delay = if rng.percent(50) {
            Duration::ZERO
        } else {
            rng.micros(Duration::from_millis(1))
        };
        let style = rng.below(100);
        match path {
            Path::Message | Path::Manager => {
                // The manager routes a prepared ProtectedCall with the
                // same classifier.
                let send = |work: Work| send_protected(target, path, work);
                if style < 6 {
                    // Gone before the circuit handled the request, or soon
                    // after: the work's own count tells if it was admitted.
                    let start = Start::Count(Arc::clone(&ledger), index);
                    let reply = send(work(kind, delay, start));
                    match tokio::time::timeout(Duration::ZERO, reply).await {
                        Err(_) => seen.maybe_rejected += 1,
                        Ok(Err(CallError::Open(_))) => seen.rejection += 1,
                        Ok(Err(CallError::Unavailable(_))) => seen.unavailable += 1,
                        Ok(_) => {} // admitted: the work counted itself
                    }
                } else if style < 12 {
                    // Gone once the work started: the call runs on.
                    let (started, on_start) = tokio::sync::oneshot::channel();
                    let reply = send(work(kind, delay, Start::Signal(started)));
                    match select(reply, on_start).await {
                        Either::Left((result, _)) => seen.answer(&result, true),
                        Either::Right((Ok(()), reply)) => {
                            drop(reply);
                            seen.admitted_unseen(kind, true);
                        }
                        Either::Right((Err(_), reply)) => seen.answer(&reply.await, true),
                    }
                } else {
                    let result = send(work(kind, delay, Start::Quiet)).await;
                    seen.answer(&result, true);
                }
            }
            Path::Handle => {
                if style < 8 {
                    // Dropped once the work started: counted as cancelled.
                    let (started, on_start) = tokio::sync::oneshot::channel();
                    let call = Box::pin(caught(target.handle.call(work(
                        kind,
                        delay,
                        Start::Signal(started),
                    ))));
                    match select(call, on_start).await {
                        Either::Left((result, _)) => seen.answer(&result, false),
                        Either::Right((Ok(()), call)) => {
                            drop(call);
                            seen.cancelled += 1;
                        }
                        Either::Right((Err(_), call)) => seen.answer(&call.await, false),
                    }
                } else {
                    let result = caught(target.handle.call(work(kind, delay, Start::Quiet))).await;
                    seen.answer(&result, false);
                    if matches!(result, Err(CallError::Open(_))) {
                        // The fast path rejects without awaiting.
                        tokio::task::yield_now().await;
                    }
                }
            }
            Path::Permit => {
                let acquire = target.circuit.send(Acquire);
                let permit = if style < 5 {
                    match tokio::time::timeout(Duration::ZERO, acquire).await {
                        Err(_) => {
                            seen.maybe_cancelled += 1;
                            continue;
                        }
                        Ok(answer) => answer,
                    }
                } else {
                    acquire.await
                };
                let permit = match permit {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_open)) => {
                        seen.rejection += 1;
                        continue;
                    }
                    Err(_mailbox) => {
                        seen.unavailable += 1;
                        continue;
                    }
                };
                if style < 5 || rng.percent(5) {
                    drop(permit); // unreported: cancelled
                    seen.cancelled += 1;
                    continue;
                }
                let result = run_permit(permit, work(kind, delay, Start::Quiet)).await;
                seen.answer(&result, true);
            }
        }
    }
    seen
}

/// Sends `work` as a classified `ProtectedCall`, to the circuit or (routed
/// by name) through the manager.
fn send_protected(target: &Target, path: Path, work: Work) -> Reply<u64> {
    send_classified(target, path, work, classify)
}

/// The permit holder's side: runs the work to the permit's deadline and
/// reports what it came to (a panic as a failure, a cut-off as a failure
/// past the deadline, which the circuit counts as a timeout). The caller
/// hears what the permit counted: an answer may come in past the deadline.
async fn run_permit(permit: Permit, work: Work) -> Result<u64, CallError<u32>> {
    use futures_util::FutureExt;
    let guarded = std::panic::AssertUnwindSafe(work).catch_unwind();
    let deadline = permit
        .deadline()
        .expect("every circuit here has a call timeout");
    let (counted, answer) = match tokio::time::timeout_at(deadline, guarded).await {
        Ok(Ok(result)) => (permit.report(classify(&result)), result),
        Ok(Err(_panic)) => (permit.failure(), Err(FAIL)),
        Err(_elapsed) => (permit.failure(), Err(FAIL)),
    };
    match counted {
        Outcome::Timeout => Err(CallError::Timeout(CALL_TIMEOUT)),
        _ => answer.map_err(CallError::Failed),
    }
}

/// Where the handle callers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handles {
    /// On the circuits' own arbiter (the test's thread).
    WithTheCircuits,
    /// On the caller arbiters: other threads than the circuits'.
    OnOtherThreads,
}

/// The figures of one accounting run.
#[derive(Debug)]
pub struct AccountingFigures {
    pub calls: u64,
    pub admitted: u64,
    pub rejected: u64,
    /// Callers gone before any answer whose call never started: each was
    /// rejected, cancelled (a permit) or never handled.
    pub unanswered: u64,
    pub transitions: u64,
    pub elapsed: Duration,
    pub stats_checks: u64,
}

/// Makes `total` calls through every path from 3 caller arbiters (8 tasks
/// each) and `handle_tasks` handle callers, at the circuits of [`configs`];
/// checks the invariants during and after, and returns the figures.
async fn accounting_run(total: u64, handles: Handles) -> AccountingFigures {
    quiet_injected_panics();
    let mut rng = Rng::new(seed(&format!("accounting {total} {handles:?}")));
    let manager = CircuitBreakerManager::default().start();
    let mut targets = Vec::new();
    for (name, config) in configs() {
        targets.push(Target::create(&manager, name, config).await);
    }
    let targets = Arc::new(targets);
    let callers = Callers::new(3);
    let events = Events::default();
    for target in targets.iter() {
        // A fast subscriber on its own arbiter and one on the circuits'.
        target
            .circuit
            .send(Subscribe(events.subscriber(&callers.arbiter(2))))
            .await
            .unwrap();
    }
    let ledger = Arc::new(Ledger {
        started: targets.iter().map(|_| Default::default()).collect(),
    });

    let arbiter_tasks = 24u64;
    let handle_tasks = 8u64;
    // Handles are the cheap path: they take a third of the calls.
    let per_handle_task = (total / 3).div_ceil(handle_tasks);
    let per_arbiter_task = (total - per_handle_task * handle_tasks).div_ceil(arbiter_tasks);
    let mut tasks = Vec::new();
    for index in 0..arbiter_tasks as usize {
        let job = caller(
            Arc::clone(&targets),
            vec![Path::Message, Path::Permit, Path::Manager],
            per_arbiter_task,
            Rng::new(rng.next_u64()),
            Arc::clone(&ledger),
        );
        tasks.push(callers.spawn(index, job));
    }
    for index in 0..handle_tasks as usize {
        let job = caller(
            Arc::clone(&targets),
            vec![Path::Handle],
            per_handle_task,
            Rng::new(rng.next_u64()),
            Arc::clone(&ledger),
        );
        match handles {
            Handles::OnOtherThreads => tasks.push(callers.spawn(index, job)),
            Handles::WithTheCircuits => tasks.push(spawn_here(job)),
        }
    }

    // While they run, ask every circuit for its statistics again and
    // again: the totals must always add up (no outcome without its call).
    // Each round an operator also steers one circuit: forced open,
    // disabled or released, so that calls and trials in flight cross the
    // operator's transitions too.
    let started = Instant::now();
    let mut stats_checks = 0u64;
    let mut operator_round = 0usize;
    let mut broken = Vec::new();
    let mut answers = Box::pin(join_all(
        Duration::from_secs(1_800),
        "accounting callers",
        tasks,
    ));
    let answers = loop {
        tokio::select! {
            answers = &mut answers => break answers,
            _ = tokio::time::sleep(Duration::from_millis(10)) => {
                for target in targets.iter() {
                    let stats = target.circuit.send(Stats).await.unwrap_or_else(|err| {
                        panic!("circuit {} died under load: {err}", target.name)
                    });
                    stats_checks += 1;
                    broken.extend(totals_problem(&stats));
                }
                let target = &targets[operator_round % targets.len()];
                match (operator_round / targets.len()) % 4 {
                    0 => target.circuit.send(ForceOpen).await,
                    2 => target.circuit.send(Disable).await,
                    _ => target.circuit.send(Release).await,
                }
                .unwrap_or_else(|err| panic!("circuit {} died under load: {err}", target.name));
                operator_round += 1;
            }
        }
    };
    for target in targets.iter() {
        target.circuit.send(Release).await.expect("circuit alive");
    }
    let elapsed = started.elapsed();

    // Dropped callers' calls run on to their end (a hung one to its
    // deadline); wait until nothing is in flight.
    let stats = deadline(Duration::from_secs(10), "calls in flight", async {
        loop {
            let mut all = Vec::new();
            for target in targets.iter() {
                all.push(target.circuit.send(Stats).await.expect("circuit alive"));
            }
            if all.iter().all(|stats| stats.in_flight == 0) {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    // An OPEN circuit still turns HALF_OPEN on its timer: let that happen,
    // then read the final statistics and let the last events arrive.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut stats = stats;
    for (target, stats) in targets.iter().zip(stats.iter_mut()) {
        *stats = target.circuit.send(Stats).await.expect("circuit alive");
        assert_ne!(
            stats.state,
            CircuitState::Open,
            "{}: still OPEN",
            target.name
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    callers.shut_down();

    assert!(broken.is_empty(), "totals that do not add up: {broken:#?}");
    let mut figures = AccountingFigures {
        calls: 0,
        admitted: 0,
        rejected: 0,
        unanswered: 0,
        transitions: 0,
        elapsed,
        stats_checks,
    };
    for (index, (target, stats)) in targets.iter().zip(&stats).enumerate() {
        let mut seen = Seen::default();
        for answer in &answers {
            seen.add(&answer[index]);
        }
        for kind in Kind::ALL {
            let started = ledger.started[index][kind.index()].load(Ordering::Relaxed);
            for _ in 0..started {
                seen.admitted_unseen(kind, true);
            }
        }
        check_against_stats(&target.name, &seen, stats);
        let received = events.of(&target.name);
        let violations = sequence_violations(&received, CircuitState::Closed, true);
        assert!(violations.is_empty(), "{}: {violations:#?}", target.name);
        // Every generation was a broadcast transition (no resets here), so
        // the subscriber got one event per generation: none lost.
        assert_eq!(
            received.len() as u64,
            stats.generation,
            "{}: events received vs. transitions made",
            target.name
        );
        let history_tail = &received[received.len().saturating_sub(stats.state_changes.len())..];
        assert_eq!(history_tail, &stats.state_changes[..], "{}", target.name);
        println!(
            "{}: {} calls; stats {:?}; {} transitions",
            target.name, seen.attempts, stats.totals, stats.generation
        );
        figures.calls += seen.attempts;
        figures.unanswered += seen.maybe_rejected + seen.maybe_cancelled;
        figures.admitted += stats.totals.calls;
        figures.rejected += stats.totals.rejections;
        figures.transitions += stats.generation;
    }
    println!(
        "accounting ({handles:?}): {} calls ({} admitted, {} rejected, {} callers gone before \
         any answer), {} transitions, {} statistics checks, in {:.1?}",
        figures.calls,
        figures.admitted,
        figures.rejected,
        figures.unanswered,
        figures.transitions,
        figures.stats_checks,
        figures.elapsed
    );
    figures
}

/// Compares a circuit's final statistics with what its callers saw.
fn check_against_stats(name: &str, seen: &Seen, stats: &CircuitStats) {
    let t = stats.totals;
    let context = format!("{name}: callers saw {seen:?}, the circuit counted {t:?}");
    assert_eq!(seen.unavailable, 0, "{context}");
    assert_eq!(stats.in_flight, 0, "{context}");
    assert_eq!(
        t.calls,
        t.outcomes.total(),
        "every admitted call counted exactly once: {context}"
    );
    // Every outcome as its caller saw it: a trial whose outcome a busy
    // circuit reads after the trial's deadline still counts as what it was
    // (see `a_trial_ending_at_its_deadline_is_counted_as_its_caller_saw_it`).
    // Only a call nobody waited for may have become a timeout instead of
    // what its work did, if the circuit saw it end after its deadline.
    let counted = [
        t[Outcome::Success],
        t[Outcome::Failure],
        t[Outcome::Panic],
        t[Outcome::Ignored],
    ];
    let expected = [seen.success, seen.failure, seen.panic, seen.ignored];
    let late: u64 = expected
        .iter()
        .zip(&counted)
        .map(|(&expected, &counted)| {
            assert!(
                counted <= expected,
                "(successes, failures, panics, ignored) counted {counted:?} \
                 above what the callers saw, {expected:?}: {context}"
            );
            expected - counted
        })
        .sum();
    assert!(
        late <= seen.unseen,
        "{late} calls counted as timeouts, more than the {} nobody waited for: {context}",
        seen.unseen
    );
    assert_eq!(
        t[Outcome::Timeout],
        seen.timeout + late,
        "timeouts: those seen, plus the unseen calls that ended late: {context}"
    );
    // Callers that left before an answer may account for some
    // cancellations and rejections the others did not see, never more.
    let extra_cancelled = t[Outcome::Cancelled].checked_sub(seen.cancelled);
    let extra_rejections = t.rejections.checked_sub(seen.rejection);
    match (extra_cancelled, extra_rejections) {
        (Some(cancelled), Some(rejections)) => {
            assert!(cancelled <= seen.maybe_cancelled, "{context}");
            assert!(
                cancelled + rejections <= seen.maybe_cancelled + seen.maybe_rejected,
                "{context}"
            );
            assert_eq!(t.calls, seen.admitted_count() + cancelled, "{context}");
        }
        _ => panic!("fewer cancellations or rejections than the callers saw: {context}"),
    }
}

/// What is wrong with a circuit's totals, if anything: more outcomes than
/// admitted calls means a call was counted twice (or an outcome without
/// its call).
fn totals_problem(stats: &CircuitStats) -> Option<String> {
    let t = stats.totals;
    let outcomes = t.outcomes.total();
    (outcomes > t.calls || stats.in_flight > 1_000_000).then(|| {
        format!(
            "{}: {} outcomes for {} admitted calls (in_flight {}): {t:?}",
            stats.name, outcomes, t.calls, stats.in_flight
        )
    })
}

/// The always-on run: 120,000 calls; handle callers share the circuits'
/// thread (see the next test for other threads).
#[test]
fn every_call_is_counted_once_and_as_its_caller_saw_it() {
    serial_test(async {
        let figures = accounting_run(120_000, Handles::WithTheCircuits).await;
        assert!(figures.calls >= 120_000);
    })
}

/// The same with the handle callers on other threads than the circuits'.
#[test]
fn every_call_is_counted_once_with_handles_on_other_threads() {
    serial_test(async {
        accounting_run(120_000, Handles::OnOtherThreads).await;
    })
}

/// The full run the issue asks for: at least a million calls, handles on
/// other threads. Run it in release (`cargo test --release --test
/// reliability -- --ignored accounting_million --nocapture`): in a debug
/// build it trips the fold bug above; in release that bug only shows as a
/// transient wrong `in_flight`, which the run reports.
#[test]
#[ignore = "long: a million calls; run in release"]
fn accounting_million() {
    serial_test(async {
        let total = std::env::var("ACCOUNTING_CALLS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
        let figures = accounting_run(total, Handles::OnOtherThreads).await;
        assert!(figures.calls >= total);
    })
}

/// A HALF_OPEN trial whose work ends at its deadline: the circuit must
/// count it as its caller saw it (a work's `Ok` a success that closes the
/// circuit, a cut-off a timeout that reopens it; work that sleeps exactly
/// `call_timeout` wakes on the timer tick after its deadline, which is late
/// on every path by `Rules::is_late`). (Once bug 2 of docs/reliability.md: the circuit reclaimed a
/// trial's slot at its deadline, counted a timeout and reopened, whenever
/// the outcome reached it after the deadline.) Now a `ProtectedCall` trial
/// is never reclaimed, and a permit's (or the handle's) only
/// `RECLAIM_GRACE` after its deadline, so an outcome already on its way
/// counts as what it was. Checked on the paused clock through
/// `ProtectedCall` and the handle (work that ends exactly at the
/// deadline), and a permit whose success, reported 0.5 ms before the
/// deadline, reaches the circuit 0.5 ms after it (the permit judges a
/// report by when it was made: at or after the deadline it is a timeout).
#[test]
fn a_trial_ending_at_its_deadline_is_counted_as_its_caller_saw_it() {
    serial_test(async {
        tokio::time::pause();
        let mismatches = within(async {
            let mut mismatches = Vec::new();
            for path in [Path::Message, Path::Handle, Path::Permit] {
                let call_timeout = Duration::from_millis(5);
                let circuit = CircuitBreaker::new(
                    "deadline",
                    CircuitBreakerConfig {
                        failure_threshold: 1,
                        success_threshold: 1,
                        timeout: Duration::from_millis(10),
                        call_timeout: Some(call_timeout),
                        ..Default::default()
                    },
                )
                .unwrap()
                .start();
                let handle = circuit.send(GetHandle).await.unwrap();
                let _ = circuit
                    .send(ProtectedCall::new(async { Err::<(), u32>(FAIL) }))
                    .await;
                advance(Duration::from_millis(11)).await;
                let on_time = async move {
                    tokio::time::sleep(call_timeout).await;
                    Ok::<u64, u32>(1)
                };
                let answer = match path {
                    Path::Message => circuit
                        .send(ProtectedCall::new(on_time))
                        .await
                        .unwrap_or_else(|e| Err(CallError::Unavailable(e))),
                    Path::Handle => handle.call(on_time).await,
                    _ => {
                        // The permit holder reports a success half a
                        // millisecond before the deadline; the circuit gets to
                        // the report half a millisecond after it.
                        let permit = circuit.send(Acquire).await.unwrap().unwrap();
                        tokio::time::advance(call_timeout - Duration::from_micros(500)).await;
                        permit.success();
                        tokio::time::advance(Duration::from_millis(1)).await;
                        Ok(1)
                    }
                };
                settle().await;
                let stats = circuit.send(Stats).await.unwrap();
                let agrees = match &answer {
                    Ok(_) => {
                        stats.totals[Outcome::Success] == 1 && stats.state == CircuitState::Closed
                    }
                    Err(CallError::Timeout(_)) => {
                        stats.totals[Outcome::Timeout] == 1 && stats.state == CircuitState::Open
                    }
                    Err(_) => false,
                };
                // The permit holder reports before its deadline: in time.
                if !agrees || (path == Path::Permit && answer.is_err()) {
                    mismatches.push(format!(
                        "{path:?}: caller saw {answer:?}; the circuit counted {:?} and is {}",
                        stats.totals, stats.state
                    ));
                }
                circuit.send(Stop).await.unwrap();
            }
            mismatches
        })
        .await;
        assert!(mismatches.is_empty(), "{mismatches:#?}");
    })
}

/// A circuit folds the handles' per-thread counters in with one load per
/// counter. A fast-path call on another thread that starts and ends
/// between the load of "admitted" and the load of its outcome is counted
/// as an outcome without its call: `calls` falls below the sum of the
/// outcomes. `CallTotals::in_flight` then subtracts past zero: in a debug
/// build the circuit actor panics ("attempt to subtract with overflow")
/// and dies, within a fraction of a second here; in a release build
/// `in_flight` wraps to about 1.8e19 until the next fold. One thread calls
/// through a handle as fast as it can while this one asks for statistics.
#[test]
fn a_fold_never_counts_an_outcome_before_its_call() {
    serial_test(async {
        let circuit_arbiter = Arbiter::new();
        let circuit = CircuitBreaker::start_in_arbiter(&circuit_arbiter.handle(), |_| {
            CircuitBreaker::new(
                "fold",
                CircuitBreakerConfig {
                    failure_threshold: u32::MAX,
                    failure_rate_threshold: 1.0,
                    ..Default::default()
                },
            )
            .unwrap()
        });
        let handle = circuit.send(GetHandle).await.unwrap();
        let stop = StopFlag::default();
        let caller = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let mut calls = 0u64;
                    while !stop.raised() {
                        let _ = handle.call(async { Ok::<(), ()>(()) }).await;
                        calls += 1;
                    }
                    calls
                })
            })
        };
        let started = Instant::now();
        let mut problems = Vec::new();
        let mut queries = 0u64;
        while started.elapsed() < Duration::from_secs(5) && problems.is_empty() {
            match circuit.send(Stats).await {
                Ok(stats) => {
                    queries += 1;
                    problems.extend(totals_problem(&stats));
                }
                Err(err) => problems.push(format!(
                    "the circuit actor died after {queries} statistics queries: {err}"
                )),
            }
        }
        stop.raise();
        let calls = caller.join().unwrap();
        circuit_arbiter.stop();
        let _ = circuit_arbiter.join();
        assert!(
            problems.is_empty(),
            "after {calls} fast-path calls and {queries} queries: {problems:#?}"
        );
    })
}

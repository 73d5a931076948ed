//! What the criterion benches (`benches/breakers.rs`) and the quick report
//! (`examples/bench_report.rs`) share: the protected work, the poll loop that
//! drives ready futures, the breakers we compare with, and the configs of
//! our own circuits. One file, so that both measure the same things.
#![allow(dead_code)] // each includer uses a different part

use std::future::Future;
use std::hint::black_box;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use actix::{Actor, Handler, Message};
use failsafe::failure_policy::{ConsecutiveFailures, consecutive_failures};
use failsafe::{Config, StateMachine, backoff};
use tower::{Service, ServiceExt};
use tower_resilience_circuitbreaker::{CircuitBreakerError, CircuitBreakerLayer};
use vibezen_recovery::config::{CircuitBreakerConfig, WindowConfig};

/// The protected work: a trivial async fn that succeeds.
#[inline(never)]
pub async fn ok() -> Result<(), ()> {
    Ok(())
}

/// The protected work when it may fail.
#[inline(never)]
pub async fn maybe_fail(fail: bool) -> Result<(), ()> {
    if fail { Err(()) } else { Ok(()) }
}

/// Fails one call in a hundred: `next()` is true on every 100th call.
#[derive(Debug, Default)]
pub struct OnePercent(u32);

impl OnePercent {
    #[inline]
    pub fn next(&mut self) -> bool {
        self.0 += 1;
        if self.0 == 100 {
            self.0 = 0;
            true
        } else {
            false
        }
    }
}

/// Drives `future` to its end on this thread, with no runtime.
///
/// Every path that can run without a runtime is driven by this, so that no
/// executor's cost is measured: a ready future is polled exactly once, with
/// a no-op waker. A future that is pending (the tower breaker's async mutex
/// under contention) gets this thread's parking waker and is polled again
/// when woken.
#[inline]
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => wait(future),
    }
}

/// Polls a pending future until it is ready: after each poll, spins for up
/// to 50 µs waiting for a wake-up, then parks. Spinning first keeps a
/// contended async lock from paying a sleeping thread's wake-up (tens of
/// microseconds on an idle virtual CPU) on every hand-off; parking after it
/// keeps a waiter from burning the time slice of a lock holder that was
/// preempted.
#[cold]
#[inline(never)]
fn wait<F: Future>(mut future: Pin<&mut F>) -> F::Output {
    struct Unpark {
        thread: std::thread::Thread,
        woken: AtomicBool,
    }

    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.woken.store(true, Ordering::Release);
            self.thread.unpark();
        }
    }

    thread_local! {
        static UNPARK: Arc<Unpark> = Arc::new(Unpark {
            thread: std::thread::current(),
            woken: AtomicBool::new(false),
        });
    }
    UNPARK.with(|unpark| {
        let waker = Waker::from(Arc::clone(unpark));
        let mut cx = Context::from_waker(&waker);
        loop {
            unpark.woken.store(false, Ordering::Relaxed);
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            let spinning = Instant::now();
            while !unpark.woken.load(Ordering::Acquire) {
                if spinning.elapsed() > Duration::from_micros(50) {
                    // A wake-up that came before the park makes it return
                    // at once; the timeout only guards against a future
                    // that never wakes.
                    std::thread::park_timeout(Duration::from_millis(1));
                    break;
                }
                for _ in 0..64 {
                    std::hint::spin_loop();
                }
            }
        }
    })
}

/// One direct call of the work, driven like every other path.
#[inline]
pub fn direct() -> Result<(), ()> {
    block_on(black_box(ok()))
}

// ---- failsafe-rs 1.3 -------------------------------------------------------

/// failsafe-rs with its default config: success rate over a time window or
/// five consecutive failures, jittered backoff.
pub fn failsafe_default() -> impl failsafe::futures::CircuitBreaker + Clone + Send + Sync + 'static
{
    Config::new().build()
}

/// failsafe-rs with one consecutive-failures policy.
pub fn failsafe_consecutive(
    failures: u32,
    open_for: Duration,
) -> StateMachine<ConsecutiveFailures<backoff::Constant>, ()> {
    Config::new()
        .failure_policy(consecutive_failures(failures, backoff::constant(open_for)))
        .build()
}

/// A failsafe-rs breaker, opened by one failure for an hour.
pub fn failsafe_open() -> StateMachine<ConsecutiveFailures<backoff::Constant>, ()> {
    use failsafe::futures::CircuitBreaker as _;
    let breaker = failsafe_consecutive(1, Duration::from_secs(3600));
    let _ = block_on(breaker.call(maybe_fail(true)));
    assert!(
        matches!(block_on(breaker.call(ok())), Err(failsafe::Error::Rejected)),
        "failsafe breaker should be open"
    );
    breaker
}

/// One call through a failsafe-rs breaker's futures API.
#[inline]
pub fn failsafe_call<B: failsafe::futures::CircuitBreaker>(
    breaker: &B,
) -> Result<(), failsafe::Error<()>> {
    block_on(breaker.call(black_box(ok())))
}

// ---- tower-resilience-circuitbreaker 0.14 ----------------------------------

/// A tower breaker around `service_fn(maybe_fail)`: the request says whether
/// the call fails.
pub trait TowerBreakerService:
    Service<bool, Response = (), Error = CircuitBreakerError<()>> + Clone + Send + 'static
{
}

impl<S> TowerBreakerService for S where
    S: Service<bool, Response = (), Error = CircuitBreakerError<()>> + Clone + Send + 'static
{
}

fn tower_layer() -> tower_resilience_circuitbreaker::CircuitBreakerConfigBuilder<
    tower_resilience_circuitbreaker::DefaultClassifier,
> {
    CircuitBreakerLayer::builder()
        .sliding_window_size(100)
        .failure_rate_threshold(0.5)
}

/// tower-resilience-circuitbreaker with a count window of 100 calls, a 50 %
/// failure rate threshold, and its defaults otherwise.
pub fn tower_count_100() -> impl TowerBreakerService {
    tower_layer()
        .build()
        .expect("valid tower breaker config")
        .layer_fn(tower::service_fn(maybe_fail))
}

/// A tower breaker opened by one failure (its consecutive-failures model), for an hour.
pub fn tower_open() -> impl TowerBreakerService {
    let mut service = tower_layer()
        .consecutive_failures(1)
        .wait_duration_in_open(Duration::from_secs(3600))
        .build()
        .expect("valid tower breaker config")
        .layer_fn(tower::service_fn(maybe_fail));
    let _ = block_on(tower_call(&mut service, true));
    assert!(
        matches!(
            block_on(tower_call(&mut service, false)),
            Err(CircuitBreakerError::OpenCircuit)
        ),
        "tower breaker should be open"
    );
    service
}

/// One call through a tower service: `ready().await`, then `call().await`.
#[inline]
pub async fn tower_call<S: Service<bool>>(
    service: &mut S,
    fail: bool,
) -> Result<S::Response, S::Error> {
    service.ready().await?.call(black_box(fail)).await
}

// ---- our circuits ----------------------------------------------------------

/// The default config: five consecutive failures or a 50 % failure rate over
/// the last 100 calls.
pub fn closed_config() -> CircuitBreakerConfig {
    CircuitBreakerConfig::default()
}

/// Thresholds that a 1 % failure rate never reaches: no consecutive-failure
/// trip, and a rate trip only at 100 %.
pub fn never_trips_config() -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        failure_threshold: u32::MAX,
        failure_rate_threshold: 1.0,
        window: WindowConfig::Count { size: 100 },
        ..CircuitBreakerConfig::default()
    }
}

/// One failure opens it, for an hour.
pub fn opens_on_first_failure() -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        failure_threshold: 1,
        timeout: Duration::from_secs(3600),
        ..CircuitBreakerConfig::default()
    }
}

// ---- a bare actor, for the cost of an actix round trip ----------------------

/// A trivial actor: answers `Ping` with `()`.
#[derive(Debug, Default)]
pub struct Echo;

impl Actor for Echo {
    type Context = actix::Context<Self>;
}

/// The message of a bare round trip.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Ping;

impl Handler<Ping> for Echo {
    type Result = ();

    fn handle(&mut self, _: Ping, _: &mut Self::Context) {}
}

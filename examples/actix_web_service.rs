//! A front service on actix-web that calls a flaky upstream through awc,
//! behind a circuit breaker: a fallback answers while the upstream is down,
//! degradation and recovery handlers fire once per outage, and `/health`
//! is a readiness probe that stays 503 from the moment the circuit opens
//! until it closes again.
//!
//! Run with `cargo run --example actix_web_service --features actix-web`.
//! It starts the upstream and the front service (two workers) on free
//! loopback ports, drives eight callers through an outage (503s, then
//! requests that hang for 5 s) and the recovery, and prints what reached
//! the upstream, how fast the callers were answered and how long the
//! circuit took to notice and to recover; about eight seconds. The same
//! run is the test `tests/actix_web_service.rs`. docs/actix-web.md walks
//! through it.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use vibezen_recovery::integration::{CircuitsFile, Fallback, WorkflowConfig};
use vibezen_recovery::manager::AllStats;
use vibezen_recovery::prelude::*;

/// The front service's one circuit.
pub const UPSTREAM: &str = "upstream";

/// The circuit's config: open after 3 failures in a row, cut a call off
/// after 300 ms, probe again after 1 s, close after 2 good trials. Critical:
/// the service is not ready while it is down.
pub const CIRCUITS: &str = r#"{"circuits": {"upstream": {
    "failure_threshold": 3,
    "call_timeout": 0.3,
    "timeout": 1.0,
    "success_threshold": 2,
    "critical": true
}}}"#;

/// How the pretend upstream answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Healthy = 0,
    /// 503 at once.
    Failing = 1,
    /// Answers after 5 s.
    Hanging = 2,
}

/// The upstream: answers `GET /answer` as its mode says, and counts the
/// requests that reach it.
#[derive(Debug, Clone, Default)]
pub struct Upstream {
    mode: Arc<AtomicU8>,
    requests: Arc<AtomicU64>,
}

impl Upstream {
    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Starts it on a free loopback port.
    pub fn start(&self) -> io::Result<(ServerHandle, SocketAddr)> {
        let upstream = self.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(upstream.clone()))
                .route("/answer", web::get().to(upstream_answer))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))?;
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Ok((handle, addr))
    }
}

async fn upstream_answer(upstream: web::Data<Upstream>) -> HttpResponse {
    upstream.requests.fetch_add(1, Ordering::SeqCst);
    match upstream.mode.load(Ordering::SeqCst) {
        mode if mode == Mode::Failing as u8 => HttpResponse::ServiceUnavailable().finish(),
        mode if mode == Mode::Hanging as u8 => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            HttpResponse::Ok().body("late answer")
        }
        _ => HttpResponse::Ok().body("fresh answer"),
    }
}

/// Where the front service finds the upstream.
#[derive(Debug, Clone)]
struct UpstreamUrl(String);

/// `GET /answer`: the upstream's answer through the circuit, or the cached
/// one when the circuit rejects the call or the call fails. The body says
/// which: `fresh answer` or `cached answer`.
async fn answer(
    vibezen: web::Data<VibezenIntegration>,
    client: web::Data<awc::Client>,
    upstream: web::Data<UpstreamUrl>,
) -> Result<HttpResponse, CallError<String>> {
    // An awc request is not `Send`: it runs on this worker's own task.
    let call = async {
        let mut response = client
            .get(&upstream.0)
            .send()
            .await
            .map_err(|err| err.to_string())?;
        if !response.status().is_success() {
            return Err(format!("upstream answered {}", response.status()));
        }
        let body = response.body().await.map_err(|err| err.to_string())?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    };
    // Reading is safe to answer from a cache whatever went wrong.
    let cached = Fallback::on_any_error(|| async { "cached answer".to_owned() });
    let served = vibezen.protected_call(UPSTREAM, call, Some(cached)).await?;
    Ok(HttpResponse::Ok().body(served.into_value()))
}

/// `GET /health`: readiness. 200 while the workflow may go on, 503 while a
/// critical circuit is down (OPEN or HALF_OPEN) or health is too low; the
/// body is the report.
async fn health(vibezen: web::Data<VibezenIntegration>) -> Result<HttpResponse, ManagerError> {
    let report = vibezen.get_health_report().await?;
    let status = if report.should_continue {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(HttpResponse::build(status).json(report))
}

/// `GET /health/live`: liveness, 200 while the process serves at all.
async fn live() -> HttpResponse {
    HttpResponse::Ok().finish()
}

/// The front service, and what its handlers counted.
pub struct Front {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    pub vibezen: VibezenIntegration,
    pub degraded: Arc<AtomicU64>,
    pub recovered: Arc<AtomicU64>,
}

/// Starts the front service on a free loopback port, with two workers,
/// calling the upstream at `upstream`.
pub async fn start_front(upstream: SocketAddr) -> Result<Front, Box<dyn std::error::Error>> {
    // One integration for the whole service, made on the System's own
    // arbiter before the server starts; its clones share the circuits.
    let vibezen = VibezenIntegration::new(WorkflowConfig::default())?;
    vibezen
        .add_circuits(&CircuitsFile::from_json(CIRCUITS)?)
        .await?;
    let degraded = Arc::new(AtomicU64::new(0));
    let recovered = Arc::new(AtomicU64::new(0));
    let count = |counter: &Arc<AtomicU64>, what: &'static str| {
        let counter = Arc::clone(counter);
        move || {
            counter.fetch_add(1, Ordering::SeqCst);
            tracing::warn!(circuit = UPSTREAM, "{what}");
            std::future::ready(())
        }
    };
    vibezen.register_degradation_handler(UPSTREAM, count(&degraded, "serving cached answers"))?;
    vibezen
        .register_recovery_handler(UPSTREAM, count(&recovered, "serving fresh answers again"))?;

    let url = UpstreamUrl(format!("http://{upstream}/answer"));
    let shared = vibezen.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(shared.clone()))
            // awc's client is per worker (it is not `Send`).
            .app_data(web::Data::new(awc::Client::default()))
            .app_data(web::Data::new(url.clone()))
            .route("/answer", web::get().to(answer))
            .route("/health", web::get().to(health))
            .route("/health/live", web::get().to(live))
    })
    .workers(2)
    .disable_signals()
    .bind(("127.0.0.1", 0))?;
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok(Front {
        addr,
        handle,
        vibezen,
        degraded,
        recovered,
    })
}

/// What one scripted outage came to.
#[derive(Debug, Default)]
pub struct Figures {
    /// Requests the callers made, and how many the fallback answered.
    pub requests: u64,
    pub fallbacks: u64,
    /// Answers that were not 200.
    pub errors: u64,
    /// Requests that reached the upstream while it was down.
    pub upstream_calls_during_outage: u64,
    /// Requests the callers made while it was down.
    pub requests_during_outage: u64,
    /// Latency of the answers the fallback gave while the upstream was
    /// down: all but a handful are rejections by the OPEN circuit.
    pub open_p50: Duration,
    pub open_p99: Duration,
    /// From the upstream going down to the first 503 from `/health`.
    pub detected_after: Duration,
    /// From the upstream coming back to the first 200 from `/health`.
    pub recovered_after: Duration,
    /// Readiness answers whose report showed the circuit not CLOSED, how
    /// many of them said ready (must be none), and how many showed it
    /// HALF_OPEN (probing).
    pub readiness_checks_while_down: u64,
    pub ready_while_down: u64,
    pub readiness_checks_while_probing: u64,
    /// What the handlers counted.
    pub degradations: u64,
    pub recoveries: u64,
}

/// One caller's answer.
struct Answered {
    at: Instant,
    took: Duration,
    fallback: bool,
    ok: bool,
}

/// One readiness check: sent at `from`, answered at `to`, with the state of
/// the circuit the report it answered with was made from.
struct Checked {
    from: Instant,
    to: Instant,
    ready: bool,
    state: Option<CircuitState>,
}

/// Drives eight callers and a readiness probe (every 20 ms) through the
/// script: healthy for `phase`, failing (503) for `phase`, hanging for
/// `phase`, then healthy until the circuit has closed.
pub async fn run_outage(
    upstream: &Upstream,
    front: &Front,
    phase: Duration,
) -> Result<Figures, Box<dyn std::error::Error>> {
    let answer_url = format!("http://{}/answer", front.addr);
    let health_url = format!("http://{}/health", front.addr);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut callers = Vec::new();
    for _ in 0..8 {
        let (url, stop) = (answer_url.clone(), Arc::clone(&stop));
        callers.push(actix_web::rt::spawn(async move {
            let client = awc::Client::default();
            let mut answered = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let sent = Instant::now();
                let reply = client.get(&url).send().await;
                let (ok, fallback) = match reply {
                    Ok(mut response) => {
                        let body = response.body().await.unwrap_or_default();
                        (
                            response.status().is_success(),
                            &body[..] == b"cached answer",
                        )
                    }
                    Err(_) => (false, false),
                };
                answered.push(Answered {
                    at: sent,
                    took: sent.elapsed(),
                    fallback,
                    ok,
                });
            }
            answered
        }));
    }
    let probe = {
        let stop = Arc::clone(&stop);
        actix_web::rt::spawn(async move {
            let client = awc::Client::default();
            let mut checks = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let from = Instant::now();
                if let Ok(mut response) = client.get(&health_url).send().await {
                    let ready = response.status() == StatusCode::OK;
                    let report: serde_json::Value = response.json().await.unwrap_or_default();
                    let state =
                        serde_json::from_value(report["health"]["circuits"][0]["state"].clone());
                    checks.push(Checked {
                        from,
                        to: Instant::now(),
                        ready,
                        state: state.ok(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            checks
        })
    };

    tokio::time::sleep(phase).await;
    let before_outage = upstream.requests();
    let down_at = Instant::now();
    upstream.set(Mode::Failing);
    tokio::time::sleep(phase).await;
    upstream.set(Mode::Hanging);
    tokio::time::sleep(phase).await;
    let up_at = Instant::now();
    let during_outage = upstream.requests() - before_outage;
    upstream.set(Mode::Healthy);
    // Until the circuit has closed again (two good trials after its 1 s
    // OPEN timeout), at most 10 s.
    let closed_by = up_at + Duration::from_secs(10);
    loop {
        let stats = front.vibezen.manager().send(AllStats).await?;
        if stats[0].state == CircuitState::Closed || Instant::now() > closed_by {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);

    let mut answered = Vec::new();
    for caller in callers {
        answered.extend(caller.await?);
    }
    let checks = probe.await?;

    let mut open_latencies: Vec<Duration> = answered
        .iter()
        .filter(|answer| answer.fallback && answer.at >= down_at && answer.at < up_at)
        .map(|answer| answer.took)
        .collect();
    open_latencies.sort();
    let percentile = |p: f64| {
        open_latencies
            .get(((open_latencies.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    let first_check = |after: Instant, ready: bool| {
        checks
            .iter()
            .find(|check| check.from >= after && check.ready == ready)
            .map(|check| check.to - after)
            .unwrap_or_default()
    };
    // Read from the report each answer was made from, not from clocks: the
    // circuit's history is in wall-clock time, which on a VM can drift from
    // the monotonic clock by milliseconds a second.
    let checks_while_down: Vec<&Checked> = checks
        .iter()
        .filter(|check| {
            check
                .state
                .is_some_and(|state| state != CircuitState::Closed)
        })
        .collect();
    Ok(Figures {
        requests: answered.len() as u64,
        fallbacks: answered.iter().filter(|answer| answer.fallback).count() as u64,
        errors: answered.iter().filter(|answer| !answer.ok).count() as u64,
        upstream_calls_during_outage: during_outage,
        requests_during_outage: answered
            .iter()
            .filter(|answer| answer.at >= down_at && answer.at < up_at)
            .count() as u64,
        open_p50: percentile(0.5),
        open_p99: percentile(0.99),
        detected_after: first_check(down_at, false),
        recovered_after: first_check(up_at, true),
        readiness_checks_while_down: checks_while_down.len() as u64,
        ready_while_down: checks_while_down.iter().filter(|check| check.ready).count() as u64,
        readiness_checks_while_probing: checks
            .iter()
            .filter(|check| check.state == Some(CircuitState::HalfOpen))
            .count() as u64,
        degradations: front.degraded.load(Ordering::SeqCst),
        recoveries: front.recovered.load(Ordering::SeqCst),
    })
}

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The library reports through `tracing`: without a subscriber its
    // warnings (a circuit opened, a handler failed) go nowhere.
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "vibezen_recovery=warn,actix_web_service=warn".into()),
        )
        .init();

    let upstream = Upstream::default();
    let (upstream_server, upstream_addr) = upstream.start()?;
    let front = start_front(upstream_addr).await?;
    println!(
        "front service on http://{}, upstream on http://{upstream_addr}",
        front.addr
    );
    println!(
        "eight callers; the upstream fails (503) for 2 s, then hangs for 2 s, then recovers\n"
    );

    let figures = run_outage(&upstream, &front, Duration::from_secs(2)).await?;
    println!(
        "requests: {} answered, {} by the fallback, {} errors",
        figures.requests, figures.fallbacks, figures.errors
    );
    println!(
        "during the outage: {} requests reached the upstream, of {} the callers made",
        figures.upstream_calls_during_outage, figures.requests_during_outage
    );
    println!(
        "while OPEN: p50 {:.2?}, p99 {:.2?}",
        figures.open_p50, figures.open_p99
    );
    println!(
        "readiness: 503 {:.0?} after the upstream went down, 200 {:.0?} after it came back; \
         {} checks while the circuit was down ({} while it probed), {} said ready",
        figures.detected_after,
        figures.recovered_after,
        figures.readiness_checks_while_down,
        figures.readiness_checks_while_probing,
        figures.ready_while_down
    );
    println!(
        "handlers: {} degradation, {} recovery",
        figures.degradations, figures.recoveries
    );

    front.handle.stop(true).await;
    upstream_server.stop(false).await;
    Ok(())
}

//! A flaky service behind a circuit breaker: watch the circuit open, reject,
//! probe and close, and see the events a subscriber received.
//!
//! Run with `cargo run --example quickstart`; it takes about two seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::prelude::*;
use vibezen_recovery::prelude::*;

/// A pretend AI provider that is down until someone says it recovered.
#[derive(Clone, Default)]
struct FlakyService {
    healthy: Arc<AtomicBool>,
}

impl FlakyService {
    async fn complete(&self, prompt: &str) -> Result<String, String> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if self.healthy.load(Ordering::SeqCst) {
            Ok(format!("answer to {prompt:?}"))
        } else {
            Err("503 Service Unavailable".to_owned())
        }
    }
}

/// Prints every state change as it happens.
struct Watcher;

impl Actor for Watcher {
    type Context = Context<Self>;
}

impl Handler<StateChanged> for Watcher {
    type Result = ();

    fn handle(&mut self, event: StateChanged, _: &mut Context<Self>) {
        println!(
            "    event: {} {} -> {} ({})",
            event.circuit, event.from, event.to, event.reason
        );
    }
}

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = CircuitBreakerConfig {
        failure_threshold: 3,
        success_threshold: 2,
        timeout: Duration::from_millis(500),
        call_timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    let breaker = CircuitBreaker::new("ai_provider", config)?.start();
    breaker.send(Subscribe(Watcher.start().recipient())).await?;
    let service = FlakyService::default();

    let call = |n: u32| {
        let service = service.clone();
        let breaker = breaker.clone();
        async move {
            let prompt = format!("question {n}");
            let result = breaker
                .call(async move { service.complete(&prompt).await })
                .await;
            match result {
                Ok(answer) => println!("call {n}: ok, {answer}"),
                Err(CallError::Open(open)) => println!("call {n}: rejected at once: {open}"),
                Err(err) => println!("call {n}: {err}"),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };

    println!("The service is down; three failures in a row open the circuit:");
    for n in 1..=5 {
        call(n).await;
    }

    println!("\nThe service recovers while the circuit waits out its timeout...");
    service.healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(600)).await;

    println!("\nHALF_OPEN: trial calls go through; two successes close the circuit:");
    for n in 6..=8 {
        call(n).await;
    }
    // Let the watcher print the last event before the summary.
    tokio::time::sleep(Duration::from_millis(10)).await;

    let stats = breaker.send(Stats).await?;
    println!(
        "\nFinal state {}: {} calls admitted ({} ok, {} failed), {} rejected, {} state changes.",
        stats.state,
        stats.totals.calls,
        stats.totals[Outcome::Success],
        stats.totals[Outcome::Failure],
        stats.totals.rejections,
        stats.state_changes.len()
    );
    Ok(())
}

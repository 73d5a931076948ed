//! A simulated VIBEZEN workflow: a flaky AI provider, a cache and a search
//! service behind circuit breakers. Watch the fallbacks answer while the AI
//! provider is down, the degradation and recovery handlers fire, the health
//! report and its recommendations, `should_continue_workflow` change, and
//! the exported statistics.
//!
//! Run with `cargo run --example vibezen_workflow`; it takes a few
//! seconds (the circuits use short timeouts so the story fits).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use vibezen_recovery::integration::{CircuitsFile, HealthReport, Served, WorkflowConfig};
use vibezen_recovery::manager::ExportStatsToFile;
use vibezen_recovery::prelude::*;

/// The circuits, as a VIBEZEN deployment would keep them in a file:
/// VIBEZEN's presets, with timeouts shortened for a demo that runs in seconds.
const CIRCUITS: &str = r#"{
  "circuits": {
    "ai_provider_openai": {
      "preset": "AI_PROVIDER",
      "overrides": { "timeout": 0.4, "call_timeout": 0.3, "success_threshold": 2 }
    },
    "cache": { "preset": "CACHE_SERVICE" },
    "search": { "preset": "SEARCH_SERVICE", "overrides": { "timeout": 1.0, "call_timeout": 0.5 } },
    "knowledge_graph": { "preset": "KNOWLEDGE_GRAPH" }
  }
}"#;

/// A pretend AI provider that answers in 30 ms while healthy and fails with
/// a 503 while down.
#[derive(Clone, Default)]
struct AiProvider {
    down: Arc<AtomicBool>,
}

impl AiProvider {
    fn complete(&self, prompt: String) -> impl Future<Output = Result<String, String>> + use<> {
        let down = Arc::clone(&self.down);
        async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            if down.load(Ordering::SeqCst) {
                Err("503 Service Unavailable".to_owned())
            } else {
                Ok(format!("model answer to {prompt:?}"))
            }
        }
    }
}

/// The VIBEZEN steps for one task: look in the cache, ask the model (with a
/// local fallback), search for references.
/// Returns whether the review came from the fallback (and so should be
/// re-run once the model is back).
async fn run_task(vibezen: &VibezenIntegration, ai: &AiProvider, task: u32) -> bool {
    let prompt = format!("review task {task}");

    let cached = vibezen
        .protected_call(
            "cache",
            async move { Ok::<Option<String>, String>((task % 3 == 0).then(|| "cached".into())) },
            Some(Fallback::new(|| async { None })),
        )
        .await;
    let hit = matches!(cached, Ok(ref served) if served.value().is_some());

    let answer = vibezen
        .protected_call(
            "ai_provider_openai",
            ai.complete(prompt.clone()),
            Some(Fallback::new(move || async move {
                format!("local rule-based answer to {prompt:?}")
            })),
        )
        .await;
    let fell_back = matches!(answer, Ok(Served::Fallback { .. }));
    let answer = match answer {
        Ok(Served::Service(text)) => format!("model: {text}"),
        Ok(Served::Fallback { value, cause }) => format!("FALLBACK: {value} [{cause}]"),
        Err(err) => format!("FAILED: {err} [it ran, so no fallback]"),
    };

    let references = vibezen
        .protected_call(
            "search",
            async { Ok::<_, String>(vec!["design doc", "spec"]) },
            None,
        )
        .await
        .map(|served| served.into_value().len())
        .unwrap_or(0);

    println!(
        "  task {task:>2}: cache {}, {references} references, {answer}",
        if hit { "hit " } else { "miss" }
    );
    fell_back
}

fn print_report(report: &HealthReport) {
    println!("  system health {:.2}", report.health.health_score);
    for circuit in &report.health.circuits {
        println!(
            "    {:<20} {:<9} score {:.2}{}",
            circuit.name,
            circuit.state.to_string(),
            circuit.score,
            if circuit.critical { "  (critical)" } else { "" }
        );
    }
    if !report.critical_services.is_empty() {
        println!(
            "  critical services down: {}",
            report.critical_services.join(", ")
        );
    }
    if report.recommendations.is_empty() {
        println!("  recommendations: none");
    } else {
        println!("  recommendations:");
        for recommendation in &report.recommendations {
            println!("    - {recommendation}");
        }
    }
}

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let vibezen = VibezenIntegration::new(WorkflowConfig::default())?;
    let circuits = CircuitsFile::from_json(CIRCUITS)?;
    let names = vibezen.add_circuits(&circuits).await?;
    println!("Circuits loaded from JSON: {}", names.join(", "));

    let queued = Arc::new(AtomicU32::new(0));
    vibezen.register_degradation_handler("ai_provider_openai", {
        move || async {
            println!("  [degradation handler] AI provider down: switching to the local model, queueing reviews");
        }
    })?;
    vibezen.register_recovery_handler("ai_provider_openai", {
        let queued = Arc::clone(&queued);
        move || {
            let queued = Arc::clone(&queued);
            async move {
                let n = queued.swap(0, Ordering::SeqCst);
                println!("  [recovery handler] AI provider back: re-running {n} queued reviews with the model");
            }
        }
    })?;

    let ai = AiProvider::default();
    let mut task = 0;

    println!("\n1. Every service healthy:");
    for _ in 0..3 {
        task += 1;
        if run_task(&vibezen, &ai, task).await {
            queued.fetch_add(1, Ordering::SeqCst);
        }
    }
    println!(
        "  should_continue_workflow: {}",
        vibezen.should_continue_workflow().await
    );

    println!("\n2. The AI provider goes down; three failures open its circuit:");
    ai.down.store(true, Ordering::SeqCst);
    for _ in 0..5 {
        task += 1;
        if run_task(&vibezen, &ai, task).await {
            queued.fetch_add(1, Ordering::SeqCst);
        }
    }
    println!(
        "  should_continue_workflow: {} (a critical circuit is open)",
        vibezen.should_continue_workflow().await
    );

    println!("\n3. While it stays down, every probe fails and the circuit opens again:");
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(450)).await;
        task += 1;
        if run_task(&vibezen, &ai, task).await {
            queued.fetch_add(1, Ordering::SeqCst);
        }
    }
    println!("\nHealth report during the outage:");
    print_report(&vibezen.get_health_report().await?);
    println!(
        "  should_continue_workflow: {}",
        vibezen.should_continue_workflow().await
    );

    println!("\n4. The AI provider recovers; after its timeout two trial calls close the circuit:");
    ai.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(450)).await;
    for _ in 0..3 {
        task += 1;
        if run_task(&vibezen, &ai, task).await {
            queued.fetch_add(1, Ordering::SeqCst);
        }
    }
    // Let the recovery handler print before the report.
    tokio::time::sleep(Duration::from_millis(20)).await;
    println!(
        "  should_continue_workflow: {}",
        vibezen.should_continue_workflow().await
    );

    println!("\nHealth report after recovery:");
    print_report(&vibezen.get_health_report().await?);

    let path = std::env::temp_dir().join("vibezen_circuit_breaker_stats.json");
    vibezen
        .manager()
        .send(ExportStatsToFile(path.clone()))
        .await??;
    let export: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    println!(
        "\nStatistics exported to {} (atomically); in it:",
        path.display()
    );
    for circuit in export["circuits"].as_array().into_iter().flatten() {
        let totals = &circuit["totals"];
        let changes: Vec<String> = circuit["state_changes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|change| {
                format!(
                    "{}->{}",
                    change["from"].as_str().unwrap_or("?"),
                    change["to"].as_str().unwrap_or("?")
                )
            })
            .collect();
        println!(
            "  {:<20} {} calls ({} ok, {} failed), {} rejected; changes: {}",
            circuit["name"].as_str().unwrap_or("?"),
            totals["calls"],
            totals["successes"],
            totals["failures"],
            totals["rejections"],
            if changes.is_empty() {
                "none".to_owned()
            } else {
                changes.join(", ")
            }
        );
    }
    println!("  health_score: {}", export["health"]["health_score"]);
    Ok(())
}

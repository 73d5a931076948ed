//! Statistics, health and export across every circuit.

use std::future::Future;
use std::path::PathBuf;

use actix::{Context, Handler, Message, ResponseFuture};
use futures_util::future::join_all;

use super::CircuitBreakerManager;
use crate::circuit::{CircuitStats, Stats};
use crate::export::{ExportError, StatsExport, write_atomically};
use crate::health::HealthSnapshot;

/// Asks for every circuit's [`CircuitStats`], sorted by name.
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::manager::AllStats;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = CircuitBreakerManager::default().start();
/// for name in ["search", "cache"] {
///     manager.send(GetBreaker::new(name)).await??;
/// }
/// let names: Vec<_> = manager.send(AllStats).await?.into_iter().map(|s| s.name).collect();
/// assert_eq!(names, ["cache", "search"]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Vec<CircuitStats>")]
pub struct AllStats;

/// Asks for the [`HealthSnapshot`] of every circuit (VIBEZEN's
/// `manager.get_circuit_health()`).
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = CircuitBreakerManager::default().start();
/// assert_eq!(manager.send(GetHealth).await?.health_score, 1.0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "HealthSnapshot")]
pub struct GetHealth;

/// Asks for every circuit's statistics and the health snapshot as pretty
/// JSON (a [`StatsExport`]; VIBEZEN's `manager.export_stats()`). The schema
/// is in `docs/manager.md`.
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::manager::ExportStats;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = CircuitBreakerManager::default().start();
/// manager.send(GetBreaker::new("cache")).await??;
/// let json: serde_json::Value = serde_json::from_str(&manager.send(ExportStats).await?)?;
/// assert_eq!(json["circuits"][0]["name"], "cache");
/// assert_eq!(json["circuits"][0]["config"]["timeout"], 60.0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "String")]
pub struct ExportStats;

/// Writes the [`ExportStats`] document to a file, atomically (see
/// [`write_atomically`]): a reader sees the previous file or the new one,
/// never part of one; on error the previous file is untouched and no
/// temporary file is left (VIBEZEN's `manager.export_stats(path)`).
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::manager::{CircuitBreakerManager, ExportStatsToFile};
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = CircuitBreakerManager::default().start();
/// let path = std::env::temp_dir().join(format!("vibezen-stats-{}.json", std::process::id()));
/// manager.send(ExportStatsToFile(path.clone())).await??;
/// assert!(std::fs::read_to_string(&path)?.contains("health_score"));
/// # std::fs::remove_file(&path)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ExportError>")]
pub struct ExportStatsToFile(pub PathBuf);

impl CircuitBreakerManager {
    /// Every circuit's statistics, sorted by name. A circuit that stops
    /// while answering is left out (and recreated by the next sweep).
    fn gather(&mut self) -> impl Future<Output = Vec<CircuitStats>> + use<> {
        let requests: Vec<_> = self
            .all_live()
            .into_iter()
            .map(|(name, circuit)| {
                let stats = circuit.send(Stats);
                async move {
                    let stats = stats.await;
                    if stats.is_err() {
                        tracing::warn!(circuit = %name, "circuit stopped while reporting its statistics");
                    }
                    stats.ok()
                }
            })
            .collect();
        // Unconstrained: joining thousands of replies inside the task actix
        // spawns for the answer otherwise runs out of tokio's cooperative
        // budget again and again, which measured about half of `GetHealth`
        // over 10,000 circuits.
        async move {
            tokio::task::unconstrained(join_all(requests))
                .await
                .into_iter()
                .flatten()
                .collect()
        }
    }
}

impl Handler<AllStats> for CircuitBreakerManager {
    type Result = ResponseFuture<Vec<CircuitStats>>;

    fn handle(&mut self, _: AllStats, _: &mut Context<Self>) -> Self::Result {
        Box::pin(self.gather())
    }
}

impl Handler<GetHealth> for CircuitBreakerManager {
    type Result = ResponseFuture<HealthSnapshot>;

    fn handle(&mut self, _: GetHealth, _: &mut Context<Self>) -> Self::Result {
        let stats = self.gather();
        Box::pin(async move { HealthSnapshot::from_stats(&stats.await) })
    }
}

impl Handler<ExportStats> for CircuitBreakerManager {
    type Result = ResponseFuture<String>;

    fn handle(&mut self, _: ExportStats, _: &mut Context<Self>) -> Self::Result {
        let stats = self.gather();
        Box::pin(async move { StatsExport::new(stats.await).to_json() })
    }
}

impl Handler<ExportStatsToFile> for CircuitBreakerManager {
    type Result = ResponseFuture<Result<(), ExportError>>;

    fn handle(
        &mut self,
        ExportStatsToFile(path): ExportStatsToFile,
        _: &mut Context<Self>,
    ) -> Self::Result {
        let stats = self.gather();
        Box::pin(async move {
            let json = StatsExport::new(stats.await).to_json();
            // File system calls block; keep them off the arbiter the circuits
            // run on.
            let written = actix_rt::task::spawn_blocking({
                let path = path.clone();
                move || write_atomically(&path, json.as_bytes())
            })
            .await;
            written.unwrap_or_else(|join| {
                Err(ExportError::Io {
                    path,
                    step: crate::export::WriteStep::Write,
                    source: std::io::Error::other(join.to_string()),
                })
            })
        })
    }
}

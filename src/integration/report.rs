//! The health report: the snapshot, the critical services that are down,
//! and what to tune, read from the statistics.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::WorkflowConfig;
use crate::circuit::CircuitStats;
use crate::health::HealthSnapshot;
use crate::outcome::Outcome;
use crate::state::CircuitState;
use crate::transition::TransitionReason;

/// A circuit whose trial calls failed this many times in a row since it
/// opened is reported as stuck open.
pub const STUCK_OPEN_TRIALS: usize = 3;
/// A circuit that opened this many times within [`FLAPPING_WINDOW`] is
/// reported as flapping.
pub const FLAPPING_OPENINGS: usize = 3;
/// How far back openings count toward flapping.
pub const FLAPPING_WINDOW: Duration = Duration::from_secs(3600);
/// A failure rate at or above this share of `failure_rate_threshold` is
/// reported as near the threshold.
pub const NEAR_THRESHOLD: f64 = 0.8;
/// Completed calls needed before totals say anything about thresholds.
pub const MIN_CALLS_FOR_ADVICE: u64 = 20;

/// VIBEZEN's `get_health_report()`: the health snapshot, the critical
/// services that are down, whether the workflow should go on, and
/// recommendations.
///
/// ```
/// use vibezen_recovery::integration::{HealthReport, WorkflowConfig};
///
/// let report = HealthReport::from_stats(&[], &WorkflowConfig::default());
/// assert_eq!(report.health.health_score, 1.0);
/// assert!(report.should_continue);
/// assert!(report.critical_services.is_empty() && report.recommendations.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    /// Whether calls are protected at all (`WorkflowConfig::enable_circuit_breaker`).
    pub circuit_breaker_enabled: bool,
    /// Whether the workflow may go on: what `should_continue_workflow`
    /// answers ([`HealthSnapshot::should_continue`] with
    /// `WorkflowConfig::min_health_score`), read from `health` itself so the
    /// two never disagree. False while a critical circuit is OPEN,
    /// HALF_OPEN or FORCED_OPEN, or the score is below the floor; serve
    /// readiness from it.
    pub should_continue: bool,
    /// The health of the system and of each circuit.
    pub health: HealthSnapshot,
    /// The critical circuits that are down (OPEN, HALF_OPEN or
    /// FORCED_OPEN), sorted.
    pub critical_services: Vec<String>,
    /// What to look at, each naming the circuit and the setting, most
    /// urgent kinds first.
    pub recommendations: Vec<String>,
}

impl HealthReport {
    /// The report on these circuits' statistics, for a workflow run with
    /// `config`.
    pub fn from_stats(stats: &[CircuitStats], config: &WorkflowConfig) -> Self {
        let health = HealthSnapshot::from_stats(stats);
        let mut recommendations = Vec::new();
        let circuit_breaker_enabled = config.enable_circuit_breaker;
        if !circuit_breaker_enabled {
            recommendations.push(
                "circuit breakers are disabled (`enable_circuit_breaker` = false): calls reach \
                 services unprotected, with no fast rejection, no call timeout and no fallback; \
                 enable them in WorkflowConfig"
                    .to_owned(),
            );
        }
        recommendations.extend(recommend(stats, Utc::now()));
        HealthReport {
            circuit_breaker_enabled,
            should_continue: health.should_continue(config.min_health_score),
            critical_services: health.critical_down(),
            health,
            recommendations,
        }
    }
}

/// Recommendations read from statistics, as of `now`. Each names the
/// circuit and the setting to look at:
///
/// - held by an operator: FORCED_OPEN (every call rejected) or DISABLED
///   (calls unprotected) since when, and that only an operator's
///   `ReleaseCircuit` ends it. Such a circuit gets no other finding: its
///   thresholds did not decide what it did;
/// - stuck open: [`STUCK_OPEN_TRIALS`] trial calls in a row failed since it
///   opened (check the service, reset, or `timeout`);
/// - flapping: it opened [`FLAPPING_OPENINGS`] times within
///   [`FLAPPING_WINDOW`] (`success_threshold`, `timeout`);
/// - a CLOSED circuit whose failure rate is at least [`NEAR_THRESHOLD`] of
///   its `failure_rate_threshold`;
/// - thresholds too tight: a CLOSED circuit that opened on consecutive
///   failures and was closed by its very first round of trial calls (the
///   service was up again at the first probe), though under a fifth of its
///   calls fail overall (`failure_threshold`). An opening whose trial calls
///   failed, or a circuit still OPEN or HALF_OPEN, is a true alarm and never
///   counts;
/// - thresholds too loose: it never opened though at least half of its calls
///   failed (`failure_threshold`, `failure_rate_threshold`), and no operator
///   ever disabled or forced it (its failures may have been counted while
///   no threshold applied);
/// - many calls cut off by `call_timeout`: at least 5, and at least half of
///   its failures.
///
/// A circuit that has never been called gets no recommendation: it costs
/// nothing, and with presets most services leave some unused, so a line for
/// each (or one for all) would stay in every report and keep an empty list
/// from meaning "nothing to do". The snapshot still shows its `calls` as 0.
///
/// ```
/// use vibezen_recovery::integration::recommend;
///
/// assert!(recommend(&[], chrono::Utc::now()).is_empty());
/// ```
pub fn recommend(stats: &[CircuitStats], now: DateTime<Utc>) -> Vec<String> {
    let mut sorted: Vec<&CircuitStats> = stats.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let rules: [Rule; 7] = [
        held_by_operator,
        stuck_open,
        flapping,
        near_threshold,
        too_tight,
        too_loose,
        cut_off,
    ];
    rules
        .iter()
        .flat_map(|rule| sorted.iter().filter_map(move |stats| rule(stats, now)))
        .collect()
}

/// One finding: a recommendation about a circuit, or none.
type Rule = fn(&CircuitStats, DateTime<Utc>) -> Option<String>;

fn secs(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

/// A share in [0, 1] as a percentage: whole percents, but one decimal below
/// 1% and above 99%, so a share that is not nothing never reads "0%" and one
/// that is not everything never reads "100%".
fn percent(share: f64) -> String {
    let percent = share * 100.0;
    if percent > 0.0 && percent < 0.1 {
        "<0.1%".to_owned()
    } else if percent > 99.9 && percent < 100.0 {
        ">99.9%".to_owned()
    } else if percent > 0.0 && percent < 1.0 || percent > 99.0 && percent < 100.0 {
        format!("{percent:.1}%")
    } else {
        format!("{percent:.0}%")
    }
}

/// Calls that ran to an outcome that counts.
fn completed(stats: &CircuitStats) -> u64 {
    stats.totals.outcomes.judged()
}

fn failed(stats: &CircuitStats) -> u64 {
    stats.totals.outcomes.failures_of_any_kind()
}

fn openings(stats: &CircuitStats) -> impl Iterator<Item = &crate::circuit::StateChanged> {
    stats
        .state_changes
        .iter()
        .filter(|change| change.from == CircuitState::Closed && change.to == CircuitState::Open)
}

/// Whether an operator holds the circuit now: its own rules are off.
fn is_held(stats: &CircuitStats) -> bool {
    matches!(
        stats.state,
        CircuitState::ForcedOpen | CircuitState::Disabled
    )
}

fn held_by_operator(stats: &CircuitStats, _: DateTime<Utc>) -> Option<String> {
    let since = stats.last_state_change_at.format("%H:%M:%S UTC");
    let name = &stats.name;
    match stats.state {
        CircuitState::ForcedOpen => Some(format!(
            "circuit `{name}` is FORCED_OPEN by an operator since {since}: every call to it is              rejected; release it with ReleaseCircuit when the service is back"
        )),
        CircuitState::Disabled => Some(format!(
            "circuit `{name}` is DISABLED by an operator since {since}: its calls reach the              service unprotected and nothing trips it; release it with ReleaseCircuit to protect              them again"
        )),
        _ => None,
    }
}

fn stuck_open(stats: &CircuitStats, _: DateTime<Utc>) -> Option<String> {
    if !matches!(stats.state, CircuitState::Open | CircuitState::HalfOpen) {
        return None;
    }
    // Failed trials since the circuit last left CLOSED.
    let failed_trials = stats
        .state_changes
        .iter()
        .rev()
        .take_while(|change| change.from != CircuitState::Closed)
        .filter(|change| {
            matches!(
                change.reason,
                TransitionReason::TrialFailed { .. } | TransitionReason::TrialSlotReclaimed
            )
        })
        .count();
    if failed_trials < STUCK_OPEN_TRIALS {
        return None;
    }
    let since = openings(stats)
        .last()
        .map(|opened| format!(" since {}", opened.at.format("%H:%M:%S UTC")))
        .unwrap_or_default();
    Some(format!(
        "`{}` is stuck {}: {failed_trials} trial calls in a row failed{since}; check that the \
         service is up and send ResetCircuit once it is, or raise `timeout` ({}) to probe it less \
         often",
        stats.name,
        stats.state,
        secs(stats.config.timeout)
    ))
}

fn flapping(stats: &CircuitStats, now: DateTime<Utc>) -> Option<String> {
    // Event times follow the circuit's (possibly paused) clock; measure from
    // the later of it and the wall clock.
    let latest = stats
        .state_changes
        .last()
        .map_or(now, |last| last.at.max(now));
    let window = chrono::Duration::from_std(FLAPPING_WINDOW).unwrap_or(chrono::Duration::zero());
    let recent = openings(stats)
        .filter(|opened| opened.at >= latest - window)
        .count();
    if recent < FLAPPING_OPENINGS {
        return None;
    }
    Some(format!(
        "`{}` is flapping: it opened {recent} times in the last hour and closed in between; raise \
         `success_threshold` ({}) so a recovery must prove itself longer, or `timeout` ({}) to give \
         the service more time",
        stats.name,
        stats.config.success_threshold,
        secs(stats.config.timeout)
    ))
}

fn near_threshold(stats: &CircuitStats, _: DateTime<Utc>) -> Option<String> {
    let rate = stats.failure_rate?;
    let threshold = stats.config.failure_rate_threshold;
    if stats.state != CircuitState::Closed || rate < NEAR_THRESHOLD * threshold {
        return None;
    }
    Some(format!(
        "`{}` fails {} of its recent calls, close to its `failure_rate_threshold` ({}): look into \
         the service before the circuit opens; if these errors are expected, classify them as \
         ignored rather than raising the threshold",
        stats.name,
        percent(rate),
        percent(threshold)
    ))
}

/// Openings on consecutive failures that the first round of trial calls
/// closed: the service answered again at the first probe, so callers were
/// cut off for a whole `timeout` over a blip. An opening whose trials failed
/// (or were reclaimed), or that a reset or inactivity ended, is not one.
fn quick_recoveries(stats: &CircuitStats) -> usize {
    stats
        .state_changes
        .windows(3)
        .filter(|changes| {
            matches!(
                [changes[0].reason, changes[1].reason, changes[2].reason],
                [
                    TransitionReason::ConsecutiveFailures { .. },
                    TransitionReason::OpenTimeoutElapsed,
                    TransitionReason::TrialsSucceeded { .. },
                ]
            )
        })
        .count()
}

fn too_tight(stats: &CircuitStats, _: DateTime<Utc>) -> Option<String> {
    // OPEN or probing, the circuit is in an outage now: whatever its
    // history, this alarm is not known to be false.
    if stats.state != CircuitState::Closed {
        return None;
    }
    let false_alarms = quick_recoveries(stats);
    let (completed, failed) = (completed(stats), failed(stats));
    if false_alarms == 0 || completed < MIN_CALLS_FOR_ADVICE || failed * 5 >= completed {
        return None;
    }
    let times = if false_alarms == 1 {
        "once".to_owned()
    } else {
        format!("{false_alarms} times")
    };
    let each_time = if false_alarms == 1 { "" } else { "each time " };
    Some(format!(
        "`{}` opened {times} on {} failures in a row and {each_time}its first probe found the \
         service up again, though only {failed} of its {completed} calls ({}) failed: \
         `failure_threshold` ({}) looks too tight for short blips; raise it to stop these false \
         alarms",
        stats.name,
        stats.config.failure_threshold,
        percent(failed as f64 / completed as f64),
        stats.config.failure_threshold
    ))
}

fn too_loose(stats: &CircuitStats, _: DateTime<Utc>) -> Option<String> {
    let (completed, failed) = (completed(stats), failed(stats));
    let ever_opened_or_held = stats.state_changes.iter().any(|change| {
        matches!(
            change.to,
            CircuitState::Open | CircuitState::ForcedOpen | CircuitState::Disabled
        )
    });
    if ever_opened_or_held || completed < MIN_CALLS_FOR_ADVICE || failed * 2 < completed {
        return None;
    }
    Some(format!(
        "`{}` never opened though {failed} of its {completed} calls failed: `failure_threshold` \
         ({}) and `failure_rate_threshold` ({}) look too loose to protect callers; lower them",
        stats.name,
        stats.config.failure_threshold,
        percent(stats.config.failure_rate_threshold)
    ))
}

fn cut_off(stats: &CircuitStats, _: DateTime<Utc>) -> Option<String> {
    if is_held(stats) {
        return None;
    }
    let timeouts = stats.totals[Outcome::Timeout];
    let limit = stats.config.call_timeout?;
    let failed = failed(stats);
    if timeouts < 5 || timeouts * 2 < failed {
        return None;
    }
    let share = if timeouts >= failed {
        "all"
    } else if timeouts * 2 > failed {
        "most"
    } else {
        "half"
    };
    Some(format!(
        "`{}`: {timeouts} calls were cut off by `call_timeout` ({}), {share} of its {failed} \
         failures; if the service is slow rather than down, raise `call_timeout`",
        stats.name,
        secs(limit)
    ))
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn a_share_that_is_not_nothing_never_reads_zero_percent() {
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(8.0 / 2225.0), "0.4%");
        assert_eq!(percent(0.0004), "<0.1%");
        assert_eq!(percent(0.25), "25%");
        assert_eq!(percent(0.995), "99.5%");
        assert_eq!(percent(0.9996), ">99.9%");
        assert_eq!(percent(1.0), "100%");
    }
}

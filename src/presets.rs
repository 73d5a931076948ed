//! Ready-made configs for the five kinds of service a VIBEZEN workflow calls.
//!
//! Each value follows VIBEZEN's best practices: services that fail fast and
//! cheaply trip sooner, critical services must prove a recovery with more
//! trial successes, and slow AI calls get a call timeout so a hung request
//! counts as the failure it is. Start from a preset and change what your
//! service needs:
//!
//! ```
//! use std::time::Duration;
//! use vibezen_recovery::prelude::*;
//!
//! let config = CircuitBreakerConfig {
//!     call_timeout: Some(Duration::from_secs(90)), // our model is slower still
//!     ..presets::ai_provider()
//! };
//! assert!(config.validate().is_ok());
//! ```

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{CircuitBreakerConfig, WindowConfig};

/// A kind of service with a ready-made config. In JSON it is named as in
/// VIBEZEN's Python API (`"AI_PROVIDER"`), for example in a circuits file.
///
/// ```
/// use vibezen_recovery::presets::Preset;
///
/// let preset: Preset = serde_json::from_str(r#""THINKING_ENGINE""#)?;
/// assert_eq!(preset, Preset::ThinkingEngine);
/// assert!(preset.config().critical);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Preset {
    /// AI API calls (OpenAI, Google and the like): [`ai_provider`].
    AiProvider,
    /// Cache reads and writes: [`cache_service`].
    CacheService,
    /// External search: [`search_service`].
    SearchService,
    /// Knowledge Graph queries: [`knowledge_graph`].
    KnowledgeGraph,
    /// Sequential Thinking calls: [`thinking_engine`].
    ThinkingEngine,
}

impl Preset {
    /// Every preset, in the order VIBEZEN's Python API lists them.
    pub const ALL: [Preset; 5] = [
        Preset::AiProvider,
        Preset::CacheService,
        Preset::SearchService,
        Preset::KnowledgeGraph,
        Preset::ThinkingEngine,
    ];

    /// The preset's config.
    ///
    /// ```
    /// use vibezen_recovery::presets::Preset;
    ///
    /// for preset in Preset::ALL {
    ///     assert!(preset.config().validate().is_ok(), "{preset}");
    /// }
    /// ```
    pub fn config(self) -> CircuitBreakerConfig {
        match self {
            Preset::AiProvider => ai_provider(),
            Preset::CacheService => cache_service(),
            Preset::SearchService => search_service(),
            Preset::KnowledgeGraph => knowledge_graph(),
            Preset::ThinkingEngine => thinking_engine(),
        }
    }

    /// The name used in JSON and in VIBEZEN's Python API, such as `AI_PROVIDER`.
    pub fn name(self) -> &'static str {
        match self {
            Preset::AiProvider => "AI_PROVIDER",
            Preset::CacheService => "CACHE_SERVICE",
            Preset::SearchService => "SEARCH_SERVICE",
            Preset::KnowledgeGraph => "KNOWLEDGE_GRAPH",
            Preset::ThinkingEngine => "THINKING_ENGINE",
        }
    }

    /// The preset with this JSON name, if there is one.
    ///
    /// ```
    /// use vibezen_recovery::presets::Preset;
    ///
    /// assert_eq!(Preset::from_name("CACHE_SERVICE"), Some(Preset::CacheService));
    /// assert_eq!(Preset::from_name("cache_service"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|preset| preset.name() == name)
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// For AI API calls (OpenAI, Google, ...): slow, costly, rate limited, and
/// the workflow cannot do its main job without them, so critical.
///
/// ```
/// let config = vibezen_recovery::presets::ai_provider();
/// assert!(config.critical && config.call_timeout.is_some());
/// ```
pub fn ai_provider() -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        // Each failed call costs seconds and quota; three in a row is an
        // outage or a rate limit, not bad luck.
        failure_threshold: 3,
        // Critical: one lucky response after a rate limit proves little;
        // three in a row do.
        success_threshold: 3,
        // Providers' rate-limit windows and incident blips last about a
        // minute; probing sooner only burns quota.
        timeout: Duration::from_secs(60),
        // Transient 5xx are common at low volume; half the calls failing is
        // a real degradation.
        failure_rate_threshold: 0.5,
        // Low call volume: 10 calls are enough for a rate to mean something.
        min_calls: 10,
        // Forget stale failures after five quiet minutes.
        reset_timeout: Duration::from_secs(300),
        // The last 50 calls span minutes of traffic, not hours.
        window: WindowConfig::Count { size: 50 },
        // One trial at a time: a struggling provider is not stampeded.
        half_open_max_calls: Some(1),
        // Long completions take 10-20 s; past 30 s the request is hung.
        call_timeout: Some(Duration::from_secs(30)),
        critical: true,
    }
}

/// For cache reads and writes: fast, cheap, and a miss has a natural
/// fallback (ask the source), so it trips early and is not critical.
///
/// ```
/// let config = vibezen_recovery::presets::cache_service();
/// assert!(!config.critical);
/// ```
pub fn cache_service() -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        // A healthy cache almost never errs: three in a row means it is down,
        // and failing fast to the source is cheap.
        failure_threshold: 3,
        // One good round trip shows it is back; if not, reopening costs
        // nothing.
        success_threshold: 1,
        // Caches restart in seconds; probing often is cheap.
        timeout: Duration::from_secs(10),
        // A cache that fails a third of its calls is worse than none.
        failure_rate_threshold: 0.3,
        // High traffic fills the window fast: wait for 20 calls so one blip
        // is not a rate.
        min_calls: 20,
        // Traffic is constant; a minute of silence means the past is stale.
        reset_timeout: Duration::from_secs(60),
        // The last 100 calls are a fraction of a second of traffic.
        window: WindowConfig::Count { size: 100 },
        // Trials are cheap; let two through to decide sooner.
        half_open_max_calls: Some(2),
        // A cache slower than half a second is worse than a miss.
        call_timeout: Some(Duration::from_millis(500)),
        critical: false,
    }
}

/// For external search: medium latency, occasional errors, and a workflow
/// can go on without its results, so not critical.
///
/// ```
/// let config = vibezen_recovery::presets::search_service();
/// assert_eq!(config.failure_threshold, 5);
/// ```
pub fn search_service() -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        // Search APIs throw the odd error under load; five in a row is an
        // outage.
        failure_threshold: 5,
        // Two successes show it is answering again.
        success_threshold: 2,
        // Search backends recover from overload within half a minute.
        timeout: Duration::from_secs(30),
        // Half the calls failing is degradation worth stopping for.
        failure_rate_threshold: 0.5,
        // Moderate traffic: 10 calls make a meaningful rate.
        min_calls: 10,
        // Two quiet minutes and the old failures no longer describe it.
        reset_timeout: Duration::from_secs(120),
        // The last 50 searches.
        window: WindowConfig::Count { size: 50 },
        // Trials as many as the successes needed (the default).
        half_open_max_calls: None,
        // A search that has not answered in 15 s will not be useful.
        call_timeout: Some(Duration::from_secs(15)),
        critical: false,
    }
}

/// For Knowledge Graph queries: a local, indexed store that answers fast or
/// is broken; the workflow can go on with less context, so not critical.
///
/// ```
/// let config = vibezen_recovery::presets::knowledge_graph();
/// assert!(config.call_timeout.unwrap().as_secs() <= 5);
/// ```
pub fn knowledge_graph() -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        // Graph queries fail for real reasons (a bad query) as well as
        // outages; five in a row rules out the first.
        failure_threshold: 5,
        // Two successes show the store is serving again.
        success_threshold: 2,
        // A restarted graph store is back within half a minute.
        timeout: Duration::from_secs(30),
        // Half the queries failing means the store is sick.
        failure_rate_threshold: 0.5,
        // 10 queries make a meaningful rate.
        min_calls: 10,
        // Two quiet minutes and old failures are stale.
        reset_timeout: Duration::from_secs(120),
        // The last 50 queries.
        window: WindowConfig::Count { size: 50 },
        // Trials as many as the successes needed (the default).
        half_open_max_calls: None,
        // Indexed queries take milliseconds; one still running after 5 s is a
        // runaway traversal.
        call_timeout: Some(Duration::from_secs(5)),
        critical: false,
    }
}

/// For Sequential Thinking calls: long multi-step reasoning that the
/// workflow's decisions depend on, so critical and patient.
///
/// ```
/// let config = vibezen_recovery::presets::thinking_engine();
/// assert!(config.critical && config.success_threshold >= 3);
/// ```
pub fn thinking_engine() -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        // Each call is long and costly; three failures in a row is enough
        // evidence.
        failure_threshold: 3,
        // Critical: the workflow trusts its answers, so a recovery must hold
        // for three calls.
        success_threshold: 3,
        // It runs on an AI provider and shares its recovery time.
        timeout: Duration::from_secs(60),
        // Half the calls failing is a real degradation.
        failure_rate_threshold: 0.5,
        // Few calls per workflow: 5 are enough to judge a rate.
        min_calls: 5,
        // Five quiet minutes and old failures are stale.
        reset_timeout: Duration::from_secs(300),
        // The last 20 calls span a few workflows.
        window: WindowConfig::Count { size: 20 },
        // One trial at a time: each is expensive.
        half_open_max_calls: Some(1),
        // Multi-step reasoning takes up to a minute; longer is hung.
        call_timeout: Some(Duration::from_secs(60)),
        critical: true,
    }
}

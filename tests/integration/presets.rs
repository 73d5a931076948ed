//! The five presets and the default circuits made from them.

use vibezen_recovery::integration::{DEFAULT_BREAKERS, VibezenIntegration, WorkflowConfig};
use vibezen_recovery::manager::AllStats;
use vibezen_recovery::presets::{self, Preset};

use crate::support::*;

#[test]
fn every_preset_validates_and_says_whether_it_is_critical() {
    for preset in Preset::ALL {
        let config = preset.config();
        config
            .validate()
            .unwrap_or_else(|err| panic!("{preset}: {err}"));
        let critical = matches!(preset, Preset::AiProvider | Preset::ThinkingEngine);
        assert_eq!(config.critical, critical, "{preset}");
    }
    assert_eq!(presets::ai_provider(), Preset::AiProvider.config());
    assert_eq!(presets::cache_service(), Preset::CacheService.config());
    assert_eq!(presets::search_service(), Preset::SearchService.config());
    assert_eq!(presets::knowledge_graph(), Preset::KnowledgeGraph.config());
    assert_eq!(presets::thinking_engine(), Preset::ThinkingEngine.config());
}

#[test]
fn presets_follow_the_seeds_best_practices() {
    let ai = presets::ai_provider();
    let cache = presets::cache_service();
    // Slow AI calls get a call timeout; a fast cache a much shorter one.
    assert!(ai.call_timeout.unwrap() > cache.call_timeout.unwrap());
    // Critical services need more trial successes to close.
    assert!(ai.success_threshold > cache.success_threshold);
    assert!(
        presets::thinking_engine().success_threshold > presets::search_service().success_threshold
    );
    // A fast-failing cache trips sooner and probes sooner.
    assert!(cache.failure_threshold <= presets::search_service().failure_threshold);
    assert!(cache.timeout < ai.timeout);
}

#[test]
fn preset_names_match_the_seed() {
    let names: Vec<String> = Preset::ALL
        .iter()
        .map(|preset| {
            serde_json::to_value(preset)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "AI_PROVIDER",
            "CACHE_SERVICE",
            "SEARCH_SERVICE",
            "KNOWLEDGE_GRAPH",
            "THINKING_ENGINE"
        ]
    );
    for preset in Preset::ALL {
        assert_eq!(Preset::from_name(preset.name()), Some(preset));
        assert_eq!(preset.to_string(), preset.name());
        let back: Preset = serde_json::from_value(serde_json::json!(preset.name())).unwrap();
        assert_eq!(back, preset);
    }
    assert_eq!(Preset::from_name("AI PROVIDER"), None);
}

#[actix::test]
async fn the_default_breakers_come_from_the_presets() {
    tokio::time::pause();
    within(async {
        let vibezen = VibezenIntegration::new(WorkflowConfig::default()).unwrap();
        vibezen.setup_default_breakers().await.unwrap();
        // Twice changes nothing.
        vibezen.setup_default_breakers().await.unwrap();
        let stats = vibezen.manager().send(AllStats).await.unwrap();
        assert_eq!(stats.len(), DEFAULT_BREAKERS.len());
        for (name, preset) in DEFAULT_BREAKERS {
            let circuit = stats.iter().find(|s| s.name == name).unwrap();
            assert_eq!(circuit.config, preset.config(), "{name}");
        }
        let critical: Vec<_> = stats
            .iter()
            .filter(|s| s.config.critical)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(
            critical,
            [
                "ai_provider_google",
                "ai_provider_openai",
                "thinking_engine"
            ]
        );
    })
    .await;
}

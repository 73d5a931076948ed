//! Protected calls: fallbacks only on rejection (unless asked otherwise),
//! and straight-through calls when circuit breakers are disabled.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use vibezen_recovery::circuit::CallError;
use vibezen_recovery::integration::{Fallback, Served, VibezenIntegration, WorkflowConfig};
use vibezen_recovery::manager::AllStats;
use vibezen_recovery::state::CircuitState;

use crate::support::*;

/// A fallback that counts its runs and answers "fallback".
fn counted(runs: &Arc<AtomicUsize>) -> Fallback<&'static str> {
    let runs = Arc::clone(runs);
    Fallback::new(move || async move {
        runs.fetch_add(1, Ordering::SeqCst);
        "fallback"
    })
}

#[actix::test]
async fn the_fallback_answers_a_rejected_call_and_only_that() {
    tokio::time::pause();
    within(async {
        let vibezen = integration();
        let runs = Arc::new(AtomicUsize::new(0));

        // A success is the service's answer; the fallback does not run.
        let served = vibezen
            .protected_call(
                "ai",
                async { Ok::<_, String>("service") },
                Some(counted(&runs)),
            )
            .await
            .unwrap();
        assert!(matches!(served, Served::Service("service")));

        // A call that ran and failed is returned as its error.
        let failed = vibezen
            .protected_call(
                "ai",
                async { Err::<&str, _>("503".to_owned()) },
                Some(counted(&runs)),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(failed, CallError::Failed(ref e) if e == "503"),
            "{failed:?}"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 0);

        // Now the circuit is open: the call is rejected, the fallback answers
        // and the service is never asked.
        let asked = Arc::new(AtomicUsize::new(0));
        let service = {
            let asked = Arc::clone(&asked);
            async move {
                asked.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>("service")
            }
        };
        let served = vibezen
            .protected_call("ai", service, Some(counted(&runs)))
            .await
            .unwrap();
        assert!(served.used_fallback());
        assert_eq!(*served.value(), "fallback");
        match served {
            Served::Fallback {
                cause: CallError::Open(open),
                ..
            } => {
                assert_eq!(open.circuit(), "ai");
                assert_eq!(open.state(), CircuitState::Open);
            }
            other => panic!("expected a rejection as the cause, got {other:?}"),
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(asked.load(Ordering::SeqCst), 0);

        // Without a fallback the rejection is the caller's.
        let rejected = vibezen
            .protected_call("ai", async { Ok::<_, String>("service") }, None)
            .await
            .unwrap_err();
        assert!(rejected.is_rejected());
    })
    .await;
}

async fn buggy_client() -> Result<u8, String> {
    panic!("bug in the client")
}

#[actix::test]
async fn a_fallback_on_any_error_also_answers_failed_calls() {
    tokio::time::pause();
    within(async {
        let vibezen = integration();
        let fallback = Fallback::on_any_error(|| async { "simplified" });
        let served = vibezen
            .protected_call(
                "search",
                async { Err::<&str, _>("timeout".to_owned()) },
                Some(fallback),
            )
            .await
            .unwrap();
        match served {
            Served::Fallback {
                value,
                cause: CallError::Failed(error),
            } => {
                assert_eq!(value, "simplified");
                assert_eq!(error, "timeout");
            }
            other => panic!("expected the fallback after a failure, got {other:?}"),
        }
        // A panicking call too: the circuit shields the caller from the panic.
        let served = vibezen
            .protected_call(
                "search2",
                buggy_client(),
                Some(Fallback::<u8>::on_any_error(|| async { 7 })),
            )
            .await
            .map(Served::into_value);
        assert_eq!(served.unwrap(), 7);
    })
    .await;
}

#[actix::test]
async fn the_fallback_may_hold_what_is_not_send() {
    tokio::time::pause();
    within(async {
        let vibezen = integration();
        fail(&vibezen, "cache").await;
        let local = std::rc::Rc::new("cached value".to_owned());
        let served = vibezen
            .protected_call(
                "cache",
                async { Ok::<String, String>("fresh".to_owned()) },
                Some(Fallback::new(move || async move { (*local).clone() })),
            )
            .await
            .unwrap();
        assert_eq!(served.into_value(), "cached value");
    })
    .await;
}

#[actix::test]
async fn disabled_circuit_breakers_pass_calls_straight_through() {
    tokio::time::pause();
    within(async {
        let vibezen = VibezenIntegration::new(WorkflowConfig {
            enable_circuit_breaker: false,
            default_config: touchy(),
            ..Default::default()
        })
        .unwrap();
        assert!(!vibezen.is_enabled());
        vibezen.setup_default_breakers().await.unwrap();

        let runs = Arc::new(AtomicUsize::new(0));
        for _ in 0..5 {
            let err = vibezen
                .protected_call("ai", async { Err::<&str, _>("503") }, Some(counted(&runs)))
                .await
                .unwrap_err();
            assert!(matches!(err, CallError::Failed("503")));
        }
        // Never rejected, so the rejection fallback never ran.
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        let served = succeed(&vibezen, "ai").await.unwrap();
        assert!(!served.used_fallback());

        assert!(vibezen.manager().send(AllStats).await.unwrap().is_empty());
        let report = vibezen.get_health_report().await.unwrap();
        assert!(!report.circuit_breaker_enabled);
        assert!(report.recommendations[0].contains("enable_circuit_breaker"));
        assert!(vibezen.should_continue_workflow().await);
    })
    .await;
}

//! Protected calls on the caller's own task: the future runs on the thread
//! that called (need not be `Send`), a panic is counted and answered, and
//! once circuits are set up a misspelled name is refused with the nearest.

use std::rc::Rc;
use std::sync::mpsc;
use std::thread::{self, ThreadId};

use actix::Arbiter;
use vibezen_recovery::circuit::CallError;
use vibezen_recovery::integration::{
    CircuitsFile, Fallback, Served, VibezenIntegration, WorkflowConfig,
};
use vibezen_recovery::manager::AllStats;
use vibezen_recovery::outcome::Outcome;

use crate::support::*;

/// Where a protected future ran, and where the circuit it went through runs.
#[actix::test]
async fn the_protected_future_runs_on_the_calling_thread() {
    within(async {
        let vibezen = integration();
        let circuits_thread = thread::current().id();
        // Another arbiter is another thread, as an actix-web worker is.
        let worker = Arbiter::new();
        let (sent, ran) = mpsc::channel::<(ThreadId, ThreadId)>();
        let caller = vibezen.clone();
        // The call's future need not be `Send`: spawned on the worker's own
        // thread, as actix-web does with a handler's.
        worker.spawn_fn(move || {
            actix::spawn(async move {
                let calling = thread::current().id();
                let served = caller
                    .protected_call(
                        "search",
                        async { Ok::<_, String>(thread::current().id()) },
                        None,
                    )
                    .await
                    .expect("a closed circuit admits");
                sent.send((calling, served.into_value())).unwrap();
            });
        });
        let (calling, ran_on) = tokio::task::spawn_blocking(move || ran.recv().unwrap())
            .await
            .unwrap();
        assert_eq!(ran_on, calling, "the future ran on the caller's thread");
        assert_ne!(ran_on, circuits_thread, "not on the circuits' arbiter");
        // And the circuit counted it.
        let stats = vibezen.manager().send(AllStats).await.unwrap();
        assert_eq!(stats[0].totals[Outcome::Success], 1);
        worker.stop();
    })
    .await;
}

#[actix::test]
async fn a_future_that_is_not_send_is_protected() {
    within(async {
        let vibezen = integration();
        let shared = Rc::new(41);
        let held = Rc::clone(&shared);
        let answer = vibezen
            .protected_call("local", async move { Ok::<_, String>(*held + 1) }, None)
            .await
            .unwrap();
        assert_eq!(answer.into_value(), 42);
        assert_eq!(Rc::strong_count(&shared), 1, "the future was dropped");
    })
    .await;
}

#[actix::test]
async fn a_panic_is_counted_and_answered_not_unwound_into_the_caller() {
    within(async {
        let vibezen = integration();
        let answer = vibezen
            .protected_call(
                "ai",
                async { panic!("the client's parser blew up") as Result<(), String> },
                None,
            )
            .await;
        match answer {
            Err(CallError::Panicked(message)) => {
                assert_eq!(message, "the client's parser blew up")
            }
            other => panic!("expected a panic answered, got {other:?}"),
        }
        settle().await;
        let stats = vibezen.manager().send(AllStats).await.unwrap();
        assert_eq!(stats[0].totals[Outcome::Panic], 1);

        // A fallback on any error answers it (on a circuit the first panic
        // did not open).
        let served = vibezen
            .protected_call(
                "parser",
                async { panic!("again") as Result<&str, String> },
                Some(Fallback::on_any_error(|| async { "simplified" })),
            )
            .await
            .unwrap();
        assert!(matches!(
            served,
            Served::Fallback {
                value: "simplified",
                cause: CallError::Panicked(_)
            }
        ));
    })
    .await;
}

#[actix::test]
async fn after_set_up_a_misspelled_name_is_refused_with_the_nearest() {
    within(async {
        let vibezen = integration();
        // Before any set-up, names are created on first use.
        succeed(&vibezen, "scratch").await.unwrap();
        vibezen.setup_default_breakers().await.unwrap();
        let before = vibezen.manager().send(AllStats).await.unwrap().len();

        let ran = std::cell::Cell::new(false);
        let typo = vibezen
            .protected_call(
                "ai_provider_opnai",
                async {
                    ran.set(true);
                    Ok::<_, String>(())
                },
                Some(Fallback::new(|| async {})),
            )
            .await;
        match typo {
            Err(CallError::UnknownCircuit(unknown)) => {
                assert_eq!(unknown.name(), "ai_provider_opnai");
                assert_eq!(unknown.nearest(), Some("ai_provider_openai"));
            }
            other => panic!("expected the typo refused, got {other:?}"),
        }
        assert!(!ran.get(), "the future did not run");
        assert_eq!(
            vibezen.manager().send(AllStats).await.unwrap().len(),
            before,
            "no circuit was created"
        );
        // Set-up names and names created before still work.
        succeed(&vibezen, "cache").await.unwrap();
        succeed(&vibezen, "scratch").await.unwrap();
    })
    .await;
}

#[actix::test]
async fn unknown_names_are_created_when_the_config_says_so() {
    within(async {
        let vibezen = VibezenIntegration::new(WorkflowConfig {
            create_unknown_circuits: true,
            ..WorkflowConfig::default()
        })
        .unwrap();
        let file =
            CircuitsFile::from_json(r#"{"circuits": {"search": {"preset": "SEARCH_SERVICE"}}}"#)
                .unwrap();
        vibezen.add_circuits(&file).await.unwrap();
        vibezen
            .protected_call("billing", async { Ok::<_, String>(()) }, None)
            .await
            .unwrap();
        let names: Vec<_> = vibezen
            .manager()
            .send(AllStats)
            .await
            .unwrap()
            .into_iter()
            .map(|stats| stats.name)
            .collect();
        assert_eq!(names, ["billing", "search"]);
    })
    .await;
}

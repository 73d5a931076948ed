//! The registry: named calls on the caller's own task, through the fast path.

use std::rc::Rc;
use std::thread;

use vibezen_recovery::circuit::{CallError, ProtectedCall, Stats, Stop};
use vibezen_recovery::manager::{
    AllStats, DisableCircuit, ForceOpenCircuit, GetBreaker, GetRegistry, GetRestarts, Registry,
    RegistryCall, ReleaseCircuit,
};
use vibezen_recovery::outcome::{Classification, Outcome};
use vibezen_recovery::rules::Refusal;
use vibezen_recovery::state::CircuitState;

use crate::support::*;

fn assert_send_sync<T: Send + Sync + Clone>() {}
fn assert_send<T: Send>(_: &T) {}

#[test]
fn a_registry_is_send_sync_and_a_call_is_send_when_its_future_is() {
    assert_send_sync::<Registry>();
    fn call<'a>(registry: &'a Registry) -> RegistryCall<'a, std::future::Ready<Result<(), ()>>> {
        registry.call("x", std::future::ready(Ok(())))
    }
    let _ = call;
}

#[actix::test]
async fn a_named_call_creates_the_circuit_once_and_is_counted_on_it() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        let registry = manager.send(GetRegistry).await.unwrap();
        for n in 0..3u32 {
            let call = registry.call("database", async move { Ok::<_, String>(n) });
            assert_send(&call);
            assert_eq!(call.await.unwrap(), n);
        }
        let restarts = manager.send(GetRestarts).await.unwrap();
        assert_eq!(restarts.keys().collect::<Vec<_>>(), ["database"]);
        let circuit = manager
            .send(GetBreaker::new("database"))
            .await
            .unwrap()
            .unwrap();
        settle().await;
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!((stats.totals.calls, stats.totals[Outcome::Success]), (3, 3));
        // The circuit's own config: the manager's default, touchy.
        assert!(
            registry
                .call("database", async { Err::<(), _>("down") })
                .await
                .is_err()
        );
        let rejected = registry
            .call("database", async { Ok::<_, &str>(()) })
            .await
            .unwrap_err();
        assert!(rejected.is_rejected(), "{rejected:?}");
        assert_eq!(
            manager.send(AllStats).await.unwrap()[0].state,
            CircuitState::Open
        );
    })
    .await;
}

#[actix::test]
async fn a_named_call_takes_a_classifier() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        let registry = manager.send(GetRegistry).await.unwrap();
        let lookup = ProtectedCall::new(async { Err::<u32, _>("404") })
            .classify(|_: &Result<u32, &str>| Classification::Ignored);
        assert!(matches!(
            registry.call_with("kg", lookup).await,
            Err(CallError::Failed("404"))
        ));
        let circuit = manager.send(GetBreaker::new("kg")).await.unwrap().unwrap();
        settle().await;
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(stats.totals[Outcome::Ignored], 1);
        assert_eq!(
            stats.state,
            CircuitState::Closed,
            "an ignored error trips nothing"
        );
    })
    .await;
}

#[actix::test]
async fn a_refused_name_answers_invalid_name_and_creates_nothing() {
    within(async {
        let manager = manager(touchy());
        let registry = manager.send(GetRegistry).await.unwrap();
        let ran = std::cell::Cell::new(false);
        let answer = registry
            .call("bad\nname", async {
                ran.set(true);
                Ok::<_, ()>(())
            })
            .await;
        assert!(
            matches!(answer, Err(CallError::InvalidName(_))),
            "{answer:?}"
        );
        assert!(!ran.get(), "the future ran");
        assert!(manager.send(GetRestarts).await.unwrap().is_empty());
    })
    .await;
}

#[actix::test]
async fn after_a_circuit_is_recreated_the_registry_calls_the_new_one() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        let registry = manager.send(GetRegistry).await.unwrap();
        registry
            .call("cache", async { Ok::<_, ()>(()) })
            .await
            .unwrap();
        let old = manager
            .send(GetBreaker::new("cache"))
            .await
            .unwrap()
            .unwrap();
        old.send(Stop).await.unwrap();
        settle().await;
        registry
            .call("cache", async { Ok::<_, ()>(()) })
            .await
            .expect("the registry asks the manager, which recreates the circuit");
        let new = manager
            .send(GetBreaker::new("cache"))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(new, old);
        settle().await;
        assert_eq!(new.send(Stats).await.unwrap().totals.calls, 1);
        assert_eq!(manager.send(GetRestarts).await.unwrap()["cache"], 1);
    })
    .await;
}

/// The future runs on the thread that awaits the call, not on the
/// manager's, and need not be `Send`.
#[actix::test]
async fn the_future_runs_on_the_callers_thread_and_need_not_be_send() {
    within(async {
        let manager = manager(touchy());
        let registry = manager.send(GetRegistry).await.unwrap();
        let manager_thread = thread::current().id();
        let worker = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut ran_on = Vec::new();
                for _ in 0..3 {
                    let not_send = Rc::new(thread::current().id());
                    let id = registry
                        .call("search", async move { Ok::<_, ()>(*not_send) })
                        .await
                        .unwrap();
                    ran_on.push(id);
                }
                (thread::current().id(), ran_on)
            })
        });
        let (worker_thread, ran_on) = actix_rt::task::spawn_blocking(move || worker.join())
            .await
            .unwrap()
            .unwrap();
        assert_ne!(worker_thread, manager_thread);
        assert_eq!(ran_on, [worker_thread; 3]);
    })
    .await;
}

/// Issue 9: the registry obeys an operator's state from the published word:
/// FORCED_OPEN refuses with the operator's refusal, DISABLED admits and
/// counts every call without tripping, and a release is CLOSED again.
#[actix::test]
async fn a_named_call_obeys_the_operator_states() {
    tokio::time::pause();
    within(async {
        let manager = manager(touchy());
        let registry = manager.send(GetRegistry).await.unwrap();
        registry
            .call("database", async { Ok::<_, &str>(()) })
            .await
            .unwrap();
        let name = || "database".to_string();
        manager
            .send(ForceOpenCircuit(name()))
            .await
            .unwrap()
            .unwrap();
        let refused = registry
            .call("database", async { Ok::<_, &str>(()) })
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, CallError::Open(open) if open.refusal() == Refusal::ForcedOpen),
            "{refused:?}"
        );

        manager.send(DisableCircuit(name())).await.unwrap().unwrap();
        for _ in 0..3 {
            let failed = registry
                .call("database", async { Err::<(), _>("down") })
                .await
                .unwrap_err();
            assert!(matches!(failed, CallError::Failed("down")), "{failed:?}");
        }
        let circuit = manager
            .send(GetBreaker::new("database"))
            .await
            .unwrap()
            .unwrap();
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(stats.state, CircuitState::Disabled);
        assert_eq!(
            (stats.totals[Outcome::Failure], stats.totals.rejections),
            (3, 1)
        );

        manager.send(ReleaseCircuit(name())).await.unwrap().unwrap();
        let _ = registry
            .call("database", async { Err::<(), _>("down") })
            .await;
        let stats = circuit.send(Stats).await.unwrap();
        assert_eq!(stats.state, CircuitState::Open, "touchy trips again");
    })
    .await;
}

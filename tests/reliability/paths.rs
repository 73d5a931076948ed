//! The four ways to call through a circuit, behind one interface, so that
//! every concurrency and fault test runs through each of them.

use std::future::Future;
use std::time::Duration;

use actix::prelude::*;
use vibezen_recovery::circuit::{
    Acquire, CallError, CircuitBreaker, CircuitHandle, GetHandle, Permit, ProtectedCall,
};
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::manager::{Call, CircuitBreakerManager, GetBreaker};
use vibezen_recovery::outcome::Classification;

/// How a caller reaches a circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// `addr.send(ProtectedCall)`: the future runs on the circuit's arbiter.
    Message,
    /// `Acquire` a `Permit`, run the work on the caller's task, report.
    Permit,
    /// The fast-path `CircuitHandle::call`.
    Handle,
    /// The manager's `Call`, routed by name.
    Manager,
}

impl Path {
    pub const ALL: [Path; 4] = [Path::Message, Path::Permit, Path::Handle, Path::Manager];
}

/// One circuit, reachable by every path.
#[derive(Clone)]
pub struct Target {
    pub name: String,
    pub circuit: Addr<CircuitBreaker>,
    pub handle: CircuitHandle,
    pub manager: Addr<CircuitBreakerManager>,
}

impl Target {
    /// A circuit named `name` created through `manager` with `config` (so it
    /// runs on the manager's arbiter), with its address and a handle.
    pub async fn create(
        manager: &Addr<CircuitBreakerManager>,
        name: &str,
        config: CircuitBreakerConfig,
    ) -> Target {
        let circuit = manager
            .send(GetBreaker::with_config(name, config))
            .await
            .expect("manager alive")
            .expect("valid config");
        let handle = circuit.send(GetHandle).await.expect("circuit alive");
        Target {
            name: name.to_owned(),
            circuit,
            handle,
            manager: manager.clone(),
        }
    }

    /// Calls `work` through `path`. The permit path cuts the work off at the
    /// permit's deadline, as a well-behaved permit holder does, and reports
    /// by the default rule (an injected panic is caught and reported as a
    /// failure: a permit holder's own panic is its own business).
    pub async fn call<F, T, E>(&self, path: Path, work: F) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        match path {
            Path::Message => self
                .circuit
                .send(ProtectedCall::new(work))
                .await
                .unwrap_or_else(|mailbox| Err(CallError::Unavailable(mailbox))),
            Path::Manager => self
                .manager
                .send(Call::new(self.name.clone(), work))
                .await
                .unwrap_or_else(|mailbox| Err(CallError::Unavailable(mailbox))),
            Path::Handle => caught(self.handle.call(work)).await,
            Path::Permit => {
                let permit = match self.circuit.send(Acquire).await {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(open)) => return Err(CallError::Open(open)),
                    Err(mailbox) => return Err(CallError::Unavailable(mailbox)),
                };
                run_with_permit(permit, work).await
            }
        }
    }
}

/// A boxed protected future, as the tests build them.
pub type Work<T> = std::pin::Pin<Box<dyn Future<Output = Result<T, u32>> + Send>>;

/// The answer to a call sent as a message.
pub type Reply<T> = std::pin::Pin<Box<dyn Future<Output = Result<T, CallError<u32>>> + Send>>;

/// Sends `work` as a `ProtectedCall` with `classify`, to the circuit
/// (`Path::Message`) or, routed by name, through the manager. Built with
/// combinators rather than an `async` block: a request holding a
/// classifier (a higher-ranked closure) across an `.await` trips rustc's
/// `Send` inference.
pub fn send_classified<T: Send + 'static>(
    target: &Target,
    path: Path,
    work: Work<T>,
    classify: fn(&Result<T, u32>) -> Classification,
) -> Reply<T> {
    use futures_util::FutureExt;
    fn unavailable<T>(mailbox: actix::MailboxError) -> Result<T, CallError<u32>> {
        Err(CallError::Unavailable(mailbox))
    }
    let call = ProtectedCall::new(work).classify(classify);
    if path == Path::Message {
        let reply = target.circuit.send(call);
        Box::pin(reply.map(|answer| answer.unwrap_or_else(unavailable)))
    } else {
        let reply = target
            .manager
            .send(Call::protected(target.name.clone(), call));
        Box::pin(reply.map(|answer| answer.unwrap_or_else(unavailable)))
    }
}

/// Runs a handle call, turning a panic of its work into
/// `CallError::Panicked`: on the fast path the work runs in the caller's
/// task, and its panic unwinds there (after the circuit counted it).
pub async fn caught<F, T, E>(call: F) -> Result<T, CallError<E>>
where
    F: Future<Output = Result<T, CallError<E>>>,
{
    use futures_util::FutureExt;
    std::panic::AssertUnwindSafe(call)
        .catch_unwind()
        .await
        .unwrap_or_else(|payload| Err(CallError::Panicked(panic_text(payload.as_ref()))))
}

/// The message of a panic payload.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with another payload".to_owned())
}

/// The permit path's caller side: the work runs here, cut off at the
/// permit's deadline, and its outcome is reported. A panic is caught and
/// reported as a failure (it is the holder's own business); a cut-off is
/// reported as a failure past the deadline, which the circuit counts as a
/// timeout (dropping the permit would count as cancelled).
pub async fn run_with_permit<F, T, E>(permit: Permit, work: F) -> Result<T, CallError<E>>
where
    F: Future<Output = Result<T, E>>,
{
    use futures_util::FutureExt;
    let guarded = std::panic::AssertUnwindSafe(work).catch_unwind();
    let ended = match permit.deadline() {
        Some(at) => tokio::time::timeout_at(at, guarded).await.ok(),
        None => Some(guarded.await),
    };
    match ended {
        Some(Ok(result)) => {
            permit.record(&result);
            result.map_err(CallError::Failed)
        }
        Some(Err(payload)) => {
            permit.failure();
            Err(CallError::Panicked(panic_text(payload.as_ref())))
        }
        None => {
            permit.failure();
            Err(CallError::Timeout(Duration::ZERO))
        }
    }
}

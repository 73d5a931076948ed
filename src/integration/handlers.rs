//! Degradation and recovery handlers, run by an actor that subscribes to
//! every circuit's state changes.
//!
//! A circuit only broadcasts [`StateChanged`]; it never runs user code. The
//! [`HandlerRunner`] receives the broadcasts and runs the handlers registered
//! for that circuit:
//!
//! - **degradation** when the circuit stops serving: CLOSED -> OPEN. A
//!   failed probe (HALF_OPEN -> OPEN) is the same outage, so it does not fire
//!   again: once per outage.
//! - **recovery** when it serves again: OPEN or HALF_OPEN -> CLOSED (trial
//!   successes, a manual reset, or the inactivity reset).
//!
//! Handlers run one at a time, in the order the events happened and, for one
//! event, in the order they were registered. A handler that returns an
//! error, panics or runs past its timeout is logged and skipped; the others
//! still run and nothing else is touched.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Handler, Message, WrapFuture};
use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;

use crate::circuit::StateChanged;
use crate::state::CircuitState;

/// What a degradation or recovery handler may return: nothing, or a
/// `Result` whose error is logged.
///
/// ```
/// use vibezen_recovery::integration::HandlerOutcome;
///
/// assert_eq!(().into_outcome(), Ok(()));
/// assert_eq!(Err::<(), _>("queue full").into_outcome(), Err("queue full".to_string()));
/// ```
pub trait HandlerOutcome {
    /// `Ok` for success, or the error as text for the log.
    fn into_outcome(self) -> Result<(), String>;
}

impl HandlerOutcome for () {
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Display> HandlerOutcome for Result<(), E> {
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|err| err.to_string())
    }
}

/// Which handlers an event calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum HandlerKind {
    Degradation,
    Recovery,
}

impl HandlerKind {
    /// The handlers a transition calls for, if any: degradation when a
    /// serving circuit stops serving, recovery when it serves again. A
    /// DISABLED circuit serves (every call goes through), so disabling or
    /// releasing a CLOSED circuit calls neither; forcing one open is a
    /// degradation, and its release a recovery.
    fn of(event: &StateChanged) -> Option<HandlerKind> {
        let serving = |state| matches!(state, CircuitState::Closed | CircuitState::Disabled);
        match (serving(event.from), serving(event.to)) {
            (true, false) => Some(HandlerKind::Degradation),
            (false, true) => Some(HandlerKind::Recovery),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            HandlerKind::Degradation => "degradation",
            HandlerKind::Recovery => "recovery",
        }
    }
}

type HandlerFuture = LocalBoxFuture<'static, Result<(), String>>;
type BoxedHandler = Box<dyn Fn() -> HandlerFuture + Send>;
/// Shared with the future that runs it, which must own what it calls.
type SharedHandler = Rc<dyn Fn() -> HandlerFuture + Send>;

/// Boxes a user's async handler.
pub(crate) fn boxed<H, Fut>(handler: H) -> BoxedHandler
where
    H: Fn() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerOutcome,
{
    Box::new(move || handler().map(HandlerOutcome::into_outcome).boxed_local())
}

/// Adds a handler for one circuit.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Register {
    pub(crate) circuit: String,
    pub(crate) kind: HandlerKind,
    pub(crate) handler: BoxedHandler,
}

/// The actor that runs handlers when circuits change state.
pub(crate) struct HandlerRunner {
    handlers: HashMap<(String, HandlerKind), Vec<SharedHandler>>,
    timeout: Duration,
}

impl HandlerRunner {
    pub(crate) fn new(timeout: Duration) -> Self {
        HandlerRunner {
            handlers: HashMap::new(),
            timeout,
        }
    }
}

impl fmt::Debug for HandlerRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerRunner")
            .field(
                "registered",
                &self.handlers.values().map(Vec::len).sum::<usize>(),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Actor for HandlerRunner {
    type Context = Context<Self>;
}

impl Handler<Register> for HandlerRunner {
    type Result = ();

    fn handle(&mut self, register: Register, _: &mut Context<Self>) {
        self.handlers
            .entry((register.circuit, register.kind))
            .or_default()
            .push(Rc::from(register.handler));
    }
}

impl Handler<StateChanged> for HandlerRunner {
    type Result = ();

    fn handle(&mut self, event: StateChanged, ctx: &mut Context<Self>) {
        let Some(kind) = HandlerKind::of(&event) else {
            return;
        };
        let Some(handlers) = self.handlers.get(&(event.circuit.clone(), kind)) else {
            return;
        };
        let handlers = handlers.clone();
        let timeout = self.timeout;
        let circuit = event.circuit;
        let run_all = async move {
            for (index, handler) in handlers.iter().enumerate() {
                let outcome = match start(handler) {
                    Ok(future) => finish(future, timeout).await,
                    Err(panic) => Err(panic),
                };
                match outcome {
                    Ok(()) => tracing::debug!(circuit, handler = kind.name(), index, "handler ran"),
                    Err(error) => tracing::error!(
                        circuit,
                        handler = kind.name(),
                        index,
                        %error,
                        "handler failed; the other handlers and the circuit are unaffected"
                    ),
                }
            }
        };
        // `wait` holds the next event back until these handlers are done, so
        // handlers run in the order the transitions happened.
        ctx.wait(run_all.into_actor(self));
    }
}

/// Calls the handler, which may panic before it returns its future.
fn start(handler: &SharedHandler) -> Result<HandlerFuture, String> {
    std::panic::catch_unwind(AssertUnwindSafe(|| handler())).map_err(|panic| panicked(&*panic))
}

async fn finish(future: HandlerFuture, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, AssertUnwindSafe(future).catch_unwind()).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(panic)) => Err(panicked(&*panic)),
        Err(_) => Err(format!(
            "did not finish within handler_timeout ({:.1} s); cut off",
            timeout.as_secs_f64()
        )),
    }
}

fn panicked(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text payload".to_owned());
    format!("panicked: {message}")
}

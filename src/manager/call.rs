//! `Call`: a protected call routed to a named circuit.

use std::fmt;
use std::future::Future;

use actix::{Context, Handler, Message, ResponseFuture};

use super::CircuitBreakerManager;
use crate::circuit::{CallError, ProtectedCall};
use crate::classifier::{Classifier, OkIsSuccess};

/// Runs a future through the circuit named `name`, creating the circuit with
/// the manager's default config if it does not exist yet (VIBEZEN's
/// `manager.call(name, func)`).
///
/// The reply is the circuit's: the future's `Ok`, or a [`CallError`]. If the
/// circuit actor is gone before it answers, the reply is
/// [`CallError::Unavailable`], never a hang. A name that
/// [`validate_circuit_name`](crate::name::validate_circuit_name) refuses creates
/// nothing, does not run the future and yields
/// [`CallError::InvalidName`] with the reason.
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::prelude::*;
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = CircuitBreakerManager::default().start();
/// let user = manager
///     .send(Call::new("database", async { Ok::<_, String>("ada") }))
///     .await?;
/// assert_eq!(user.ok(), Some("ada"));
///
/// let reply = manager
///     .send(Call::new("line\nbreak", async { Ok::<_, String>("never runs") }))
///     .await?;
/// let err = reply.unwrap_err();
/// assert!(matches!(err, CallError::InvalidName(_)));
/// assert_eq!(
///     err.to_string(),
///     "invalid circuit name \"line\\nbreak\": must not contain control characters; \
///      no circuit was created and the call did not run"
/// );
/// # Ok(())
/// # }
/// ```
#[must_use = "a Call does nothing until it is sent to the manager"]
pub struct Call<F, C = OkIsSuccess> {
    name: String,
    call: ProtectedCall<F, C>,
}

impl<F, T, E> Call<F>
where
    F: Future<Output = Result<T, E>>,
{
    /// Runs `future` through the circuit named `name`.
    pub fn new(name: impl Into<String>, future: F) -> Self {
        Call {
            name: name.into(),
            call: ProtectedCall::new(future),
        }
    }

    /// Runs a prepared [`ProtectedCall`] (one with a classifier, say) through
    /// the circuit named `name`.
    ///
    /// ```
    /// use actix::Actor;
    /// use vibezen_recovery::prelude::*;
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let manager = CircuitBreakerManager::default().start();
    /// let lookup = ProtectedCall::new(async { Err::<u32, _>("404".to_string()) })
    ///     .classify(|_| Classification::Ignored);
    /// let reply = manager.send(Call::protected("knowledge_graph", lookup)).await?;
    /// assert!(reply.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn protected<C: Classifier<T, E>>(
        name: impl Into<String>,
        call: ProtectedCall<F, C>,
    ) -> Call<F, C> {
        Call {
            name: name.into(),
            call,
        }
    }
}

impl<F, C> fmt::Debug for Call<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("name", &self.name)
            .field("call", &self.call)
            .finish()
    }
}

impl<F, C, T, E> Message for Call<F, C>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    C: Classifier<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    type Result = Result<T, CallError<E>>;
}

impl<F, C, T, E> Handler<Call<F, C>> for CircuitBreakerManager
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    C: Classifier<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    // A detached future: waiting for the circuit's answer must not hold up
    // the manager, which routes everyone's calls.
    type Result = ResponseFuture<Result<T, CallError<E>>>;

    fn handle(&mut self, Call { name, call }: Call<F, C>, _: &mut Context<Self>) -> Self::Result {
        let circuit = match self.get_or_create(name, None) {
            Ok(circuit) => circuit,
            Err(err) => return Box::pin(async { Err(CallError::InvalidName(Box::new(err))) }),
        };
        // Enqueued now, so calls reach the circuit in the order the manager
        // received them.
        let reply = circuit.send(call);
        Box::pin(async move {
            reply
                .await
                .unwrap_or_else(|err| Err(CallError::Unavailable(err)))
        })
    }
}

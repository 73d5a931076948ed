//! The registry: circuits by name on the caller's own task, at fast-path
//! speed.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll, ready};

use actix::dev::Request;
use actix::{Addr, AsyncContext, Handler, MailboxError, Message, MessageResult};
use pin_project_lite::pin_project;

use super::{CircuitBreakerManager, GetCircuitHandle, ManagerError};
use crate::circuit::{CallError, CallState, CircuitHandle, ProtectedCall};
use crate::classifier::{Classifier, OkIsSuccess};

/// Asks the manager for its [`Registry`].
///
/// ```
/// use actix::Actor;
/// use vibezen_recovery::manager::{CircuitBreakerManager, GetRegistry};
///
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = CircuitBreakerManager::default().start();
/// let circuits = manager.send(GetRegistry).await?;
/// // VIBEZEN's `manager.call("database", fetch_data, user_id)`:
/// let rows = circuits.call("database", async { Ok::<_, String>(vec![7]) }).await?;
/// assert_eq!(rows, [7]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Registry")]
pub struct GetRegistry;

impl Handler<GetRegistry> for CircuitBreakerManager {
    type Result = MessageResult<GetRegistry>;

    fn handle(&mut self, _: GetRegistry, ctx: &mut actix::Context<Self>) -> Self::Result {
        let manager = ctx.address();
        MessageResult(
            self.registry
                .get_or_insert_with(|| Registry::new(manager))
                .clone(),
        )
    }
}

impl CircuitBreakerManager {
    /// Starts the manager with its registry made already, for a caller that
    /// needs both at once (the integration's constructor cannot wait for a
    /// reply). It must run inside an actix `System`, like any `start`.
    pub(crate) fn start_with_registry(mut self) -> (Addr<Self>, Registry) {
        let ctx = actix::Context::new();
        let registry = Registry::new(ctx.address());
        self.registry = Some(registry.clone());
        (ctx.run(self), registry)
    }
}

/// A cloneable, `Send + Sync` view of a manager's circuits by name, for
/// calls on the caller's own task.
///
/// `registry.call(name, future)` looks the name up without a message (in a
/// per-thread cache of the circuits' handles) and calls through the
/// circuit's [`CircuitHandle`]: the future runs where the caller is, need
/// not be `Send`, and its I/O stays on the caller's thread. The first call
/// by a name asks the manager for the circuit, creating it with the
/// manager's default config as [`GetBreaker`](super::GetBreaker) would; so
/// does the first call after the circuit's actor was recreated. The manager
/// stays the only owner of its circuits; the registry only reads the
/// handles it hands out.
///
/// Each call clones the circuit's handle (one reference-count increment),
/// so that the call owns what it calls through; a loop on many threads
/// that calls one circuit in a tight loop is faster with the handle itself
/// ([`handle`](Self::handle)), which costs nothing shared per call.
#[derive(Clone)]
pub struct Registry {
    shared: Arc<Shared>,
    /// Whether a name no circuit has is created on its first call (or
    /// refused: [`known_only`](Self::known_only)).
    creates: bool,
}

struct Shared {
    /// Tells this registry's entries apart in the per-thread caches.
    id: u64,
    manager: Addr<CircuitBreakerManager>,
    /// Every handle the manager handed out through this registry.
    handles: RwLock<HashMap<Box<str>, CircuitHandle>>,
}

/// How many names one thread keeps per registry before it starts over, so
/// that calls by ever new names cannot grow a thread's cache without bound.
const VIEW_LIMIT: usize = 1_024;

/// One thread's copy of the handles it has called through.
struct View {
    id: u64,
    registry: Weak<Shared>,
    /// The circuit called last: a loop that calls one name again and again
    /// compares the name instead of hashing it.
    last: Option<(Box<str>, CircuitHandle)>,
    handles: HashMap<Box<str>, CircuitHandle, BuildHasherDefault<NameHasher>>,
}

impl View {
    #[inline]
    fn get(&mut self, name: &str) -> Option<&CircuitHandle> {
        if !matches!(&self.last, Some((last, _)) if **last == *name) {
            let handle = self.handles.get(name)?;
            self.last = Some((name.into(), handle.clone()));
        }
        self.last.as_ref().map(|(_, handle)| handle)
    }
}

thread_local! {
    static VIEWS: RefCell<Vec<View>> = const { RefCell::new(Vec::new()) };
}

impl Registry {
    fn new(manager: Addr<CircuitBreakerManager>) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Registry {
            shared: Arc::new(Shared {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                manager,
                handles: RwLock::new(HashMap::new()),
            }),
            creates: true,
        }
    }

    /// The same registry, but a call by a name the manager has no circuit
    /// for is refused with [`CallError::UnknownCircuit`] (naming the nearest
    /// circuit there is) instead of creating one: for services whose
    /// circuits are all set up from a file or presets, where a new name can
    /// only be a typo.
    ///
    /// ```
    /// use actix::Actor;
    /// use vibezen_recovery::prelude::*;
    ///
    /// # #[actix::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let manager = CircuitBreakerManager::default().start();
    /// manager.send(GetBreaker::with_config("search", presets::search_service())).await??;
    /// let circuits = manager.send(GetRegistry).await?.known_only();
    /// assert!(circuits.call("search", async { Ok::<_, String>(1) }).await.is_ok());
    /// let err = circuits.call("serch", async { Ok::<_, String>(1) }).await.unwrap_err();
    /// assert!(matches!(err, CallError::UnknownCircuit(u) if u.nearest() == Some("search")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn known_only(&self) -> Registry {
        Registry {
            creates: false,
            ..self.clone()
        }
    }

    /// What to ask the manager for the circuit named `name`.
    fn request(&self, name: &str) -> GetCircuitHandle {
        if self.creates {
            GetCircuitHandle::new(name)
        } else {
            GetCircuitHandle::existing(name)
        }
    }

    /// Runs `future` through the circuit named `name`, on the caller's task.
    /// See [`CircuitHandle::call`] for what the fast path does and does not
    /// do (a panic unwinds into the caller); the answers are the handle's,
    /// plus [`CallError::InvalidName`] for a name the manager refuses,
    /// [`CallError::UnknownCircuit`] for a new name in a
    /// [`known_only`](Self::known_only) registry, and
    /// [`CallError::Unavailable`] if the manager has stopped.
    pub fn call<'a, F, T, E>(&'a self, name: &'a str, future: F) -> RegistryCall<'a, F>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.call_with(name, ProtectedCall::new(future))
    }

    /// Like [`call`](Self::call), for a [`ProtectedCall`] (one with a
    /// classifier, say).
    pub fn call_with<'a, F, C, T, E>(
        &'a self,
        name: &'a str,
        call: ProtectedCall<F, C>,
    ) -> RegistryCall<'a, F, C>
    where
        F: Future<Output = Result<T, E>>,
        C: Classifier<T, E>,
    {
        RegistryCall {
            registry: self,
            name,
            lookup: Lookup::Fresh,
            call: CallState::new(call),
        }
    }

    /// The handle of the circuit named `name`, created as
    /// [`GetCircuitHandle`] would if there is none (refused instead by a
    /// [`known_only`](Self::known_only) registry).
    pub async fn handle(&self, name: &str) -> Result<CircuitHandle, ManagerError> {
        if let Some(handle) = self.cached(name) {
            return Ok(handle);
        }
        let handle = self
            .shared
            .manager
            .send(self.request(name))
            .await
            .map_err(|_| ManagerError::ManagerUnavailable)??;
        self.remember(name, &handle);
        Ok(handle)
    }

    /// The live handle for `name` this thread has, or the registry has;
    /// `None` if the manager must be asked.
    #[inline]
    fn cached(&self, name: &str) -> Option<CircuitHandle> {
        let found = VIEWS.with_borrow_mut(|views| {
            views
                .iter_mut()
                .find(|view| view.id == self.shared.id)
                .and_then(|view| view.get(name))
                .filter(|handle| !handle.is_stopped())
                .cloned()
        });
        found.or_else(|| self.cached_slow(name))
    }

    #[cold]
    fn cached_slow(&self, name: &str) -> Option<CircuitHandle> {
        let handle = self
            .shared
            .handles
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(name)
            .filter(|handle| !handle.is_stopped())
            .cloned()?;
        self.keep_in_view(name, &handle);
        Some(handle)
    }

    /// Records a handle the manager handed out, for every thread.
    fn remember(&self, name: &str, handle: &CircuitHandle) {
        self.shared
            .handles
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(name.into(), handle.clone());
        self.keep_in_view(name, handle);
    }

    fn keep_in_view(&self, name: &str, handle: &CircuitHandle) {
        VIEWS.with_borrow_mut(|views| {
            // Views of registries that are gone go first.
            views.retain(|view| view.registry.strong_count() > 0);
            let index = match views.iter().position(|view| view.id == self.shared.id) {
                Some(index) => index,
                None => {
                    views.push(View {
                        id: self.shared.id,
                        registry: Arc::downgrade(&self.shared),
                        last: None,
                        handles: HashMap::default(),
                    });
                    views.len() - 1
                }
            };
            let view = &mut views[index];
            if view.handles.len() >= VIEW_LIMIT {
                view.handles.clear();
            }
            view.last = None;
            view.handles.insert(name.into(), handle.clone());
        });
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let circuits = self
            .shared
            .handles
            .read()
            .map_or(0, |handles| handles.len());
        f.debug_struct("Registry")
            .field("circuits", &circuits)
            .finish_non_exhaustive()
    }
}

enum Lookup {
    /// Not polled yet.
    Fresh,
    /// Asking the manager for the circuit (the first call by this name).
    Asking(Pin<Box<Request<CircuitBreakerManager, GetCircuitHandle>>>),
    /// Calling through it.
    Found(CircuitHandle),
}

pin_project! {
    /// The future of [`Registry::call`] and [`Registry::call_with`].
    #[must_use = "futures do nothing unless polled"]
    pub struct RegistryCall<'a, F, C = OkIsSuccess> {
        registry: &'a Registry,
        name: &'a str,
        lookup: Lookup,
        #[pin]
        call: CallState<F, C>,
    }

    impl<F, C> PinnedDrop for RegistryCall<'_, F, C> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Lookup::Found(handle) = this.lookup {
                this.call.abandon(handle.inner());
            }
        }
    }
}

impl<F, C, T, E> Future for RegistryCall<'_, F, C>
where
    F: Future<Output = Result<T, E>>,
    C: Classifier<T, E>,
{
    type Output = Result<T, CallError<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        loop {
            match this.lookup {
                Lookup::Found(handle) => return this.call.poll_with(handle.inner(), cx),
                Lookup::Fresh => {
                    *this.lookup = match this.registry.cached(this.name) {
                        Some(handle) => Lookup::Found(handle),
                        None => Lookup::Asking(Box::pin(
                            this.registry
                                .shared
                                .manager
                                .send(this.registry.request(this.name)),
                        )),
                    };
                }
                Lookup::Asking(request) => {
                    let handle = match ready!(request.as_mut().poll(cx)) {
                        Ok(Ok(handle)) => handle,
                        Ok(Err(refused)) => return Poll::Ready(Err(refused.into())),
                        Err(mailbox) => return Poll::Ready(Err(CallError::Unavailable(mailbox))),
                    };
                    this.registry.remember(this.name, &handle);
                    *this.lookup = Lookup::Found(handle);
                }
            }
        }
    }
}

impl<F, C> fmt::Debug for RegistryCall<'_, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryCall")
            .field("circuit", &self.name)
            .finish_non_exhaustive()
    }
}

/// What a manager's refusal means to a caller who only wanted a call made.
impl<E> From<ManagerError> for CallError<E> {
    fn from(refused: ManagerError) -> Self {
        match refused {
            ManagerError::InvalidConfig(err) => CallError::InvalidName(Box::new(err)),
            ManagerError::UnknownCircuit(unknown) => CallError::UnknownCircuit(Box::new(unknown)),
            ManagerError::CircuitUnavailable(_) | ManagerError::ManagerUnavailable => {
                CallError::Unavailable(MailboxError::Closed)
            }
        }
    }
}

/// A small, fast hash for circuit names in a thread's own cache (the names
/// are the program's own, and the cache is bounded): FxHash's mix.
#[derive(Default)]
struct NameHasher(u64);

impl Hasher for NameHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.mix(u64::from(byte));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

impl NameHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

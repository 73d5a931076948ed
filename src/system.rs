//! Whether this thread can start actors.

/// True on a thread where `Actor::start` works: an actix arbiter (a running
/// `System`'s, or one of its `Arbiter`s, as an actix-web worker is) inside
/// its tokio runtime. Elsewhere actix panics in `spawn_local`, and again in
/// a destructor while unwinding, which aborts the whole process; so every
/// constructor that starts actors asks this first and returns an error.
/// (A thread whose `System::block_on` has returned still has its arbiter,
/// but no runtime to spawn on.)
pub(crate) fn can_start_actors() -> bool {
    actix_rt::Arbiter::try_current().is_some() && tokio::runtime::Handle::try_current().is_ok()
}

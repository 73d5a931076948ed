//! The circuit actor, end to end, on tokio's paused clock.

mod calls;
mod events;
mod permits;
mod support;
mod transitions;

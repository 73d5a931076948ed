//! The circuit actor, end to end, on tokio's paused clock.

mod calls;
#[path = "../common/mod.rs"]
mod common;
mod events;
mod listeners;
mod permits;
mod support;
mod transitions;

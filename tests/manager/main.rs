//! The supervisor actor, end to end, on tokio's paused clock.

#[path = "../common/mod.rs"]
mod common;
mod export;
mod health;
mod listeners;
mod registry;
mod routing;
mod supervision;
mod support;

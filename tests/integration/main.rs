//! The VIBEZEN integration facade, end to end, on tokio's paused clock.

mod caller_task;
mod calls;
#[path = "../common/mod.rs"]
mod common;
mod events;
mod file;
mod handlers;
mod presets;
mod report;
mod start;
mod support;

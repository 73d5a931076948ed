//! The supervisor actor, end to end, on tokio's paused clock.

mod export;
mod health;
mod routing;
mod supervision;
mod support;

//! The same features on every path (issue 8): each case runs through the
//! four ways to make a protected call (a `ProtectedCall` message, a
//! `Permit`, a `CircuitHandle` and the manager's `Call`) with the same
//! classifier, and asserts both what the caller gets and what the circuit
//! counts. Every case is one test per path, so a failure names the path
//! that differs.

#[path = "../common/mod.rs"]
mod common;
mod support;

/// Defines `mod $case` with one test per path, each running the
/// `async fn $case(path: Path)` beside it on the paused clock. Attributes
/// after `permit:` go on the permit path's test alone (to mark a known
/// difference of that path).
macro_rules! on_every_path {
    ($case:ident) => {
        on_every_path!($case, permit:);
    };
    ($case:ident, permit: $(#[$permit:meta])*) => {
        mod $case {
            use crate::support::{Path, on_paused_clock};

            #[actix::test]
            async fn message() {
                on_paused_clock(super::$case, Path::Message).await;
            }

            #[actix::test]
            $(#[$permit])*
            async fn permit() {
                on_paused_clock(super::$case, Path::Permit).await;
            }

            #[actix::test]
            async fn handle() {
                on_paused_clock(super::$case, Path::Handle).await;
            }

            #[actix::test]
            async fn manager() {
                on_paused_clock(super::$case, Path::Manager).await;
            }
        }
    };
}

mod operator;
mod rules;
mod timeouts;
mod trials;

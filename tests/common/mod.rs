//! Helpers every test binary shares: deadlines, the paused clock, an event
//! recorder and temporary folders. Each binary includes this file with
//! `#[path = "../common/mod.rs"] mod common;` and uses what it needs.
#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::mpsc;
use vibezen_recovery::circuit::StateChanged;

/// Every test runs under this deadline, so a bug shows as a failure, not a
/// hang. On the paused clock an idle runtime jumps straight to it.
pub async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(24 * 3600), future)
        .await
        .expect("test deadline passed: something hangs")
}

/// Lets the actors run what is queued: actix serves queued messages before
/// it polls timers and spawned futures, and a call routed through the
/// manager, or an event on its way to a handler, takes more than one hop.
pub async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// Moves the paused clock forward and lets everything due run.
pub async fn advance(by: Duration) {
    tokio::time::advance(by).await;
    settle().await;
}

pub fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// Asserts that `elapsed` is `expected`, up to the one millisecond by which
/// tokio's timer wheel rounds every deadline up.
#[track_caller]
pub fn assert_elapsed(elapsed: Duration, expected: Duration) {
    assert!(
        elapsed >= expected && elapsed <= expected + Duration::from_millis(1),
        "expected {expected:?} to have passed, but {elapsed:?} did"
    );
}

/// Forwards every event it receives to a channel the test reads.
pub struct Recorder(pub mpsc::UnboundedSender<StateChanged>);

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl Handler<StateChanged> for Recorder {
    type Result = ();

    fn handle(&mut self, event: StateChanged, _: &mut Context<Self>) {
        let _ = self.0.send(event);
    }
}

/// A started [`Recorder`] and the channel it fills.
pub fn recorder() -> (
    Recipient<StateChanged>,
    mpsc::UnboundedReceiver<StateChanged>,
) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (Recorder(sender).start().recipient(), receiver)
}

/// The next event, waiting (on the paused clock) as long as it takes.
pub async fn next_event(events: &mut mpsc::UnboundedReceiver<StateChanged>) -> StateChanged {
    within(events.recv()).await.expect("recorder alive")
}

/// Every event received so far.
pub fn drain(events: &mut mpsc::UnboundedReceiver<StateChanged>) -> Vec<StateChanged> {
    let mut received = Vec::new();
    while let Ok(event) = events.try_recv() {
        received.push(event);
    }
    received
}

/// A folder of its own under the system's temporary folder, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "vibezen-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create a temporary folder");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The names of the files in the folder, sorted.
    pub fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("read the temporary folder")
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

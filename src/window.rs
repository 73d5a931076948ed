//! Sliding windows of recent outcomes, for the failure rate.
//!
//! Both kinds keep running sums, so recording and reading are O(1) (the time
//! window clears at most one bucket per elapsed bucket, amortized O(1)).

use std::time::{Duration, Instant};

use crate::config::WindowConfig;
use crate::outcome::OutcomeCounts;

/// Calls and failures in a failure-rate window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowCounts {
    /// Calls judged (successes and failures of every kind).
    pub calls: u64,
    /// Of those, failures, timeouts and panics.
    pub failures: u64,
}

impl WindowCounts {
    /// What of `outcomes` enters a window.
    pub fn of(outcomes: &OutcomeCounts) -> Self {
        WindowCounts {
            calls: outcomes.judged(),
            failures: outcomes.failures_of_any_kind(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum SlidingWindow {
    Count(CountWindow),
    Time(TimeWindow),
}

impl SlidingWindow {
    pub(crate) fn new(config: &WindowConfig) -> Self {
        match *config {
            WindowConfig::Count { size } => SlidingWindow::Count(CountWindow::new(size as usize)),
            WindowConfig::Time { duration, buckets } => {
                SlidingWindow::Time(TimeWindow::new(duration, buckets as usize))
            }
        }
    }

    pub(crate) fn record(&mut self, failed: bool, now: Instant) {
        match self {
            SlidingWindow::Count(window) => window.record(failed),
            SlidingWindow::Time(window) => window.record(failed, now),
        }
    }

    /// Records outcomes that happened since the last batch, in an unknown
    /// order: a count window takes them evenly interleaved (only the last
    /// `size` of them can stay), a time window puts them all in the bucket
    /// of `now`.
    pub(crate) fn record_batch(&mut self, batch: WindowCounts, now: Instant) {
        let successes = batch.calls - batch.failures;
        match self {
            SlidingWindow::Count(window) => window.record_batch(successes, batch.failures),
            SlidingWindow::Time(window) => window.record_counts(successes, batch.failures, now),
        }
    }

    /// What the window holds as of `now` (a time window drops what is too old).
    pub(crate) fn counts(&self, now: Instant) -> WindowCounts {
        match self {
            SlidingWindow::Count(window) => window.counts,
            SlidingWindow::Time(window) => window.counts(now),
        }
    }

    pub(crate) fn is_empty(&self, now: Instant) -> bool {
        self.counts(now).calls == 0
    }

    pub(crate) fn clear(&mut self) {
        match self {
            SlidingWindow::Count(window) => window.clear(),
            SlidingWindow::Time(window) => window.clear(),
        }
    }
}

/// The last `capacity` outcomes in a ring, grown on demand so that an idle
/// circuit costs no more than its header.
#[derive(Debug, Clone)]
pub(crate) struct CountWindow {
    failed: Vec<bool>,
    capacity: usize,
    next: usize,
    counts: WindowCounts,
}

impl CountWindow {
    fn new(capacity: usize) -> Self {
        CountWindow {
            failed: Vec::new(),
            capacity,
            next: 0,
            counts: WindowCounts::default(),
        }
    }

    fn record(&mut self, failed: bool) {
        if self.failed.len() < self.capacity {
            self.failed.push(failed);
            self.counts.calls += 1;
        } else {
            let evicted = std::mem::replace(&mut self.failed[self.next], failed);
            self.counts.failures -= u64::from(evicted);
        }
        self.counts.failures += u64::from(failed);
        self.next = (self.next + 1) % self.capacity;
    }

    fn record_batch(&mut self, successes: u64, failures: u64) {
        let total = successes + failures;
        // Outcome i of the batch is a failure when the running share of
        // failures steps up there; skip what would be evicted anyway.
        let skip = total.saturating_sub(self.capacity as u64);
        let failures_before =
            |i: u64| (u128::from(i) * u128::from(failures) / u128::from(total)) as u64;
        for i in skip..total {
            self.record(failures_before(i + 1) > failures_before(i));
        }
    }

    fn clear(&mut self) {
        self.failed.clear();
        self.next = 0;
        self.counts = WindowCounts::default();
    }
}

/// Outcomes of the last `duration`, in equal buckets. A bucket is identified
/// by its absolute index since the window's origin, so a stale bucket is
/// recognised without any timer.
#[derive(Debug, Clone)]
pub(crate) struct TimeWindow {
    bucket_len: Duration,
    buckets: Vec<Bucket>,
    origin: Option<Instant>,
    /// The newest bucket index that has been written.
    head: u64,
    counts: WindowCounts,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    index: u64,
    counts: WindowCounts,
}

impl TimeWindow {
    fn new(duration: Duration, buckets: usize) -> Self {
        TimeWindow {
            bucket_len: duration / buckets as u32,
            buckets: vec![Bucket::default(); buckets],
            origin: None,
            head: 0,
            counts: WindowCounts::default(),
        }
    }

    fn index(&self, now: Instant) -> u64 {
        let Some(origin) = self.origin else { return 0 };
        let elapsed = now.saturating_duration_since(origin).as_nanos();
        (elapsed / self.bucket_len.as_nanos()) as u64
    }

    fn record(&mut self, failed: bool, now: Instant) {
        self.record_counts(u64::from(!failed), u64::from(failed), now);
    }

    fn record_counts(&mut self, successes: u64, failures: u64, now: Instant) {
        self.origin.get_or_insert(now);
        let index = self.index(now);
        self.advance(index);
        let slot = (index % self.buckets.len() as u64) as usize;
        let bucket = &mut self.buckets[slot];
        bucket.counts.calls += successes + failures;
        bucket.counts.failures += failures;
        self.counts.calls += successes + failures;
        self.counts.failures += failures;
    }

    /// Moves the head to `index`, dropping every bucket that falls out.
    fn advance(&mut self, index: u64) {
        if index <= self.head {
            return;
        }
        let len = self.buckets.len() as u64;
        if index - self.head >= len {
            self.clear_counts();
        } else {
            for stale in self.head + 1..=index {
                let bucket = &mut self.buckets[(stale % len) as usize];
                self.counts.calls -= bucket.counts.calls;
                self.counts.failures -= bucket.counts.failures;
                *bucket = Bucket {
                    index: stale,
                    counts: WindowCounts::default(),
                };
            }
        }
        self.buckets[(index % len) as usize].index = index;
        self.head = index;
    }

    fn counts(&self, now: Instant) -> WindowCounts {
        if self.counts.calls == 0 {
            return WindowCounts::default();
        }
        let index = self.index(now);
        let len = self.buckets.len() as u64;
        if index == self.head {
            return self.counts;
        }
        // Read-only: sum the buckets still inside the window.
        let oldest = index.saturating_sub(len - 1);
        let mut counts = WindowCounts::default();
        for bucket in &self.buckets {
            if bucket.index >= oldest && bucket.index <= index {
                counts.calls += bucket.counts.calls;
                counts.failures += bucket.counts.failures;
            }
        }
        counts
    }

    fn clear_counts(&mut self) {
        self.buckets
            .iter_mut()
            .for_each(|bucket| *bucket = Bucket::default());
        self.counts = WindowCounts::default();
    }

    fn clear(&mut self) {
        self.clear_counts();
        self.origin = None;
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_window(size: u32) -> SlidingWindow {
        SlidingWindow::new(&WindowConfig::Count { size })
    }

    fn time_window(secs: u64, buckets: u32) -> SlidingWindow {
        SlidingWindow::new(&WindowConfig::Time {
            duration: Duration::from_secs(secs),
            buckets,
        })
    }

    #[test]
    fn count_window_keeps_the_last_n_outcomes() {
        let now = Instant::now();
        let mut window = count_window(3);
        for failed in [true, true, false] {
            window.record(failed, now);
        }
        assert_eq!(
            window.counts(now),
            WindowCounts {
                calls: 3,
                failures: 2
            }
        );
        window.record(false, now); // evicts the first failure
        assert_eq!(
            window.counts(now),
            WindowCounts {
                calls: 3,
                failures: 1
            }
        );
        window.record(false, now); // evicts the second failure
        window.record(true, now); // evicts a success
        assert_eq!(
            window.counts(now),
            WindowCounts {
                calls: 3,
                failures: 1
            }
        );
        window.clear();
        assert!(window.is_empty(now));
    }

    #[test]
    fn a_batch_keeps_its_share_of_failures_and_only_the_last_size_outcomes() {
        let now = Instant::now();
        let mut window = count_window(10);
        window.record_batch(
            WindowCounts {
                calls: 4,
                failures: 1,
            },
            now,
        );
        assert_eq!(
            window.counts(now),
            WindowCounts {
                calls: 4,
                failures: 1
            }
        );
        window.record_batch(
            WindowCounts {
                calls: 2_000_000,
                failures: 1_000_000,
            },
            now,
        );
        assert_eq!(
            window.counts(now),
            WindowCounts {
                calls: 10,
                failures: 5
            }
        );
        window.record_batch(WindowCounts::default(), now);
        assert_eq!(
            window.counts(now),
            WindowCounts {
                calls: 10,
                failures: 5
            }
        );
        let mut window = time_window(10, 10);
        window.record_batch(
            WindowCounts {
                calls: 10,
                failures: 3,
            },
            now,
        );
        assert_eq!(
            window.counts(now),
            WindowCounts {
                calls: 10,
                failures: 3
            }
        );
    }

    #[test]
    fn time_window_drops_whole_buckets_as_time_passes() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut window = time_window(10, 10);
        window.record(true, at(0));
        window.record(false, at(0));
        window.record(true, at(5));
        assert_eq!(
            window.counts(at(5)),
            WindowCounts {
                calls: 3,
                failures: 2
            }
        );
        assert_eq!(
            window.counts(at(9)),
            WindowCounts {
                calls: 3,
                failures: 2
            }
        );
        // At 10 s the bucket of second 0 has left the window.
        assert_eq!(
            window.counts(at(10)),
            WindowCounts {
                calls: 1,
                failures: 1
            }
        );
        window.record(false, at(10));
        assert_eq!(
            window.counts(at(10)),
            WindowCounts {
                calls: 2,
                failures: 1
            }
        );
        assert_eq!(
            window.counts(at(15)),
            WindowCounts {
                calls: 1,
                failures: 0
            }
        );
        // Long silence empties it; recording again starts afresh.
        assert!(window.is_empty(at(100)));
        window.record(true, at(100));
        assert_eq!(
            window.counts(at(100)),
            WindowCounts {
                calls: 1,
                failures: 1
            }
        );
    }

    #[test]
    fn time_window_matches_a_naive_model() {
        // Every outcome at a pseudo-random time; compare with a plain list.
        let start = Instant::now();
        let mut window = time_window(5, 5);
        let mut log: Vec<(u64, bool)> = Vec::new();
        let mut t = 0u64;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            t += seed % 1_500; // milliseconds
            let failed = seed % 3 == 0;
            let now = start + Duration::from_millis(t);
            window.record(failed, now);
            log.push((t, failed));
            // Buckets start at the window's first outcome.
            let first = log[0].0;
            let bucket = (t - first) / 1_000;
            let expected = log
                .iter()
                .filter(|(at, _)| (at - first) / 1_000 + 5 > bucket)
                .fold(WindowCounts::default(), |mut acc, (_, failed)| {
                    acc.calls += 1;
                    acc.failures += u64::from(*failed);
                    acc
                });
            assert_eq!(window.counts(now), expected, "at {t} ms");
        }
    }
}

//! A latency histogram of atomics: observing is a few relaxed additions,
//! no lock, so it can sit on the signing path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds: from a fast software key
/// (well under a millisecond) to a YubiKey waiting for a touch.
pub(crate) const BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub(crate) struct Histogram {
    /// Observations per bucket (not cumulative); the last one is +Inf.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_micros: AtomicU64,
}

/// What a histogram held when it was read, cumulative as Prometheus wants.
pub(crate) struct Snapshot {
    /// (upper bound, observations at or below it); the last bound is +Inf.
    pub(crate) cumulative: Vec<(f64, u64)>,
    pub(crate) count: u64,
    pub(crate) sum_seconds: f64,
}

impl Histogram {
    pub(crate) const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BOUNDS.len() + 1],
            sum_micros: AtomicU64::new(0),
        }
    }

    pub(crate) fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = BOUNDS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BOUNDS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut total = 0;
        let cumulative = BOUNDS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(&self.buckets)
            .map(|(bound, bucket)| {
                total += bucket.load(Ordering::Relaxed);
                (bound, total)
            })
            .collect();
        Snapshot {
            cumulative,
            count: total,
            // Micros to seconds for display: exact below 2^53 µs.
            #[allow(clippy::cast_precision_loss)]
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

impl Snapshot {
    /// The mean observation in microseconds; 0 when there is none.
    pub(crate) fn mean_micros(&self) -> u64 {
        match self.count {
            0 => 0,
            // Rounded to whole microseconds, which is all a person reads.
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            n => (self.sum_seconds * 1e6 / n as f64).round() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_add_up() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.cumulative[0], (0.0005, 1));
        assert_eq!(s.cumulative[1], (0.001, 2));
        assert_eq!(s.cumulative[BOUNDS.len() - 1], (10.0, 2));
        assert_eq!(s.cumulative[BOUNDS.len()], (f64::INFINITY, 3));
        assert!((s.sum_seconds - 60.0013).abs() < 1e-9);
        assert_eq!(s.mean_micros(), 20_000_433);
        assert_eq!(Histogram::new().snapshot().mean_micros(), 0);
    }
}

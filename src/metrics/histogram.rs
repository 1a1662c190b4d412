//! A histogram of durations with fixed buckets, as Prometheus shows one: for each upper
//! bound, how many observations were at most that long; and their count and sum.
//!
//! Each observation costs one comparison per bucket at most; nothing grows.

use std::time::Duration;

/// Upper bounds of the buckets, in seconds (the last bucket, `+Inf`, is the count).
pub const BOUNDS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Durations observed since start.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Histogram {
    /// Observations in each bucket alone (not cumulative); beyond the last bound they are
    /// only in `count`.
    within: [u64; BOUNDS.len()],
    count: u64,
    sum: Duration,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BOUNDS.iter().position(|&le| secs <= le) {
            self.within[i] += 1;
        }
        self.count += 1;
        self.sum = self.sum.saturating_add(d);
    }

    /// `(upper bound in seconds, observations at most that long)`, for each bound in
    /// [`BOUNDS`], cumulative as Prometheus wants them (`+Inf` is [`Histogram::count`]).
    pub fn buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        BOUNDS
            .iter()
            .zip(self.within.iter())
            .scan(0, |seen, (&le, &n)| {
                *seen += n;
                Some((le, *seen))
            })
    }

    /// How many durations were observed.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Their sum, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bounds_inclusive() {
        let mut h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(1)); // exactly on a bound: in it
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_secs(11)); // beyond every bound: only +Inf
        let b: Vec<(f64, u64)> = h.buckets().collect();
        assert_eq!(b.len(), BOUNDS.len());
        assert_eq!(b[0], (0.001, 2));
        assert_eq!(b[4], (0.025, 2));
        assert_eq!(b[5], (0.05, 3));
        assert_eq!(b[12], (10.0, 3));
        assert_eq!(h.count(), 4);
        assert!((h.sum_seconds() - 11.0315).abs() < 1e-9);
        assert!(b.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
    }
}

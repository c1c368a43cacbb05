//! How long frames waited between their capture and a worker reading them.

use serde::{Deserialize, Serialize};

/// Lags at or beyond this many milliseconds share the last bucket.
pub const READ_LAG_MAX_MS: usize = 2_000;

/// A histogram of capture→read lags with 1 ms buckets: exact enough to quote percentiles in
/// milliseconds, small on the wire (trailing empty buckets are not kept), and mergeable, so a
/// measurement over many sessions is a true percentile over all their frames.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReadLag {
    /// `counts[i]`: frames read between `i` and `i + 1` ms after their capture; the bucket
    /// [`READ_LAG_MAX_MS`] counts everything from there on.
    pub counts: Vec<u32>,
}

impl ReadLag {
    /// Counts one frame read `lag_ns` after its capture.
    pub fn record(&mut self, lag_ns: u64) {
        let bucket = ((lag_ns / 1_000_000) as usize).min(READ_LAG_MAX_MS);
        if self.counts.len() <= bucket {
            self.counts.resize(bucket + 1, 0);
        }
        self.counts[bucket] = self.counts[bucket].saturating_add(1);
    }

    /// Adds another histogram's counts to this one.
    pub fn merge(&mut self, other: &ReadLag) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
    }

    /// Frames counted.
    pub fn frames(&self) -> u64 {
        self.counts.iter().map(|&c| c as u64).sum()
    }

    /// The `q` quantile (0..=1) in ms: the upper edge of the bucket holding it, so the figure
    /// never understates the lag. `None` when nothing was counted.
    pub fn quantile_ms(&self, q: f64) -> Option<f32> {
        let total = self.frames();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c as u64;
            if seen >= rank {
                return Some((i + 1) as f32);
            }
        }
        Some(self.counts.len() as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_merge_and_clamp() {
        let mut a = ReadLag::default();
        assert_eq!(a.quantile_ms(0.5), None);
        for ms in 0..100u64 {
            a.record(ms * 1_000_000 + 500_000);
        }
        assert_eq!(a.frames(), 100);
        assert_eq!(a.quantile_ms(0.5), Some(50.0));
        assert_eq!(a.quantile_ms(0.99), Some(99.0));
        assert_eq!(a.quantile_ms(1.0), Some(100.0));
        let mut b = ReadLag::default();
        b.record(10_000_000_000); // 10 s: the last bucket
        assert_eq!(b.counts.len(), READ_LAG_MAX_MS + 1);
        a.merge(&b);
        assert_eq!(a.frames(), 101);
        assert_eq!(a.quantile_ms(1.0), Some((READ_LAG_MAX_MS + 1) as f32));
        assert_eq!(a.quantile_ms(0.5), Some(51.0));
    }
}

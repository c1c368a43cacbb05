//! Lock-free, allocation-free duration histograms for the realtime threads: recording is a
//! few atomic adds; reading (status) takes percentiles from a snapshot.
//!
//! Buckets: 1 µs wide below 1024 µs, then 32 per power of two (about 3% wide) up to ~67 s.

use std::sync::atomic::{AtomicU64, Ordering};

const LINEAR: usize = 1024;
const SUB: usize = 32;
const OCTAVES: usize = 16;
const BUCKETS: usize = LINEAR + SUB * OCTAVES;

/// A histogram of microsecond values.
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    max_ns: AtomicU64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count())
            .field("max_us", &self.max_us())
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }
}

fn bucket_of(us: u64) -> usize {
    if us < LINEAR as u64 {
        return us as usize;
    }
    let octave = (63 - us.leading_zeros()) as usize - 10; // 1024 µs is octave 0
    if octave >= OCTAVES {
        return BUCKETS - 1;
    }
    let sub = ((us >> (octave + 10 - 5)) as usize) & (SUB - 1);
    LINEAR + octave * SUB + sub
}

/// Lower edge of a bucket, µs.
fn bucket_floor(b: usize) -> u64 {
    if b < LINEAR {
        return b as u64;
    }
    let octave = (b - LINEAR) / SUB;
    let sub = (b - LINEAR) % SUB;
    (1u64 << (octave + 10)) + ((sub as u64) << (octave + 10 - 5))
}

impl Histogram {
    /// Records one duration in nanoseconds. Allocation-free, lock-free.
    pub fn record_ns(&self, ns: u64) {
        self.buckets[bucket_of(ns / 1000)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Largest value, µs.
    pub fn max_us(&self) -> f32 {
        self.max_ns.load(Ordering::Relaxed) as f32 / 1000.0
    }

    /// The `q` quantile (0..=1), µs: the lower edge of the bucket holding it; 0 when empty.
    pub fn quantile_us(&self, q: f64) -> f32 {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_floor(b) as f32;
            }
        }
        self.max_us()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for us in [
            0u64, 1, 999, 1023, 1024, 1100, 2047, 2048, 5000, 20_000, 1_000_000,
        ] {
            let b = bucket_of(us);
            assert!(b >= last, "{us}");
            last = b;
            let floor = bucket_floor(b);
            assert!(floor <= us && us - floor <= us / 30 + 1, "{us} -> {floor}");
        }
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let h = Histogram::default();
        for us in 1..=1000u64 {
            h.record_ns(us * 1000);
        }
        assert_eq!(h.count(), 1000);
        assert_eq!(h.quantile_us(0.5), 500.0);
        assert_eq!(h.quantile_us(0.99), 990.0);
        assert_eq!(h.max_us(), 1000.0);
        h.record_ns(20_000_000);
        assert!((h.quantile_us(1.0) - 20_000.0).abs() <= 20_000.0 / 30.0);
    }
}

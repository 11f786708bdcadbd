//! A log-linear latency histogram in the spirit of HdrHistogram: exact below 128 ns, then 64
//! sub-buckets per power of two, so any recorded value is known within 1/64 (1.6 %). Fixed
//! size (about 30 KiB), no allocation while recording, mergeable across connections.

use std::time::Duration;

const SUB: u64 = 64;
/// Values below this are their own bucket.
const LINEAR: u64 = 2 * SUB;
const BUCKETS: usize = (LINEAR + (64 - 7) * SUB) as usize;

#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: Box::new([0; BUCKETS]), total: 0, max: 0 }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram").field("total", &self.total).field("max", &self.max).finish()
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let msb = 63 - u64::from(v.leading_zeros()); // >= 7
    let m = v >> (msb - 6); // in [64, 128)
    (LINEAR + (msb - 7) * SUB + (m - SUB)) as usize
}

/// The lowest and highest value of bucket `i`.
fn bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < LINEAR {
        return (i, i);
    }
    let msb = (i - LINEAR) / SUB + 7;
    let m = (i - LINEAR) % SUB + SUB;
    let shift = msb - 6;
    let low = m << shift;
    (low, low + ((1u64 << shift) - 1))
}

impl Histogram {
    /// Record one value in nanoseconds.
    pub fn record_ns(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    pub fn record(&mut self, d: Duration) {
        self.record_ns(d.as_nanos().min(u128::from(u64::MAX)) as u64);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value at quantile `q` (0..=1), in nanoseconds: the middle of the bucket holding the
    /// `ceil(q·n)`-th smallest value (never above the largest recorded). 0 when empty.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, hi) = bounds(i);
                return (lo + (hi - lo) / 2).min(self.max);
            }
        }
        self.max
    }

    pub fn quantile(&self, q: f64) -> Duration {
        Duration::from_nanos(self.quantile_ns(q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_in_order() {
        let mut last = 0;
        for v in (0..200_000u64).chain([u64::MAX / 3, u64::MAX]) {
            let i = index(v);
            assert!(i >= last, "{v}");
            last = i;
            let (lo, hi) = bounds(i);
            assert!(lo <= v && v <= hi, "{v} not in {lo}..={hi}");
            assert!((hi - lo) as f64 <= v as f64 / 64.0 + 1.0, "{v}: bucket too wide");
        }
        assert!(index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles_of_a_uniform_sample() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record_ns(v * 1000); // 1 µs … 10 ms
        }
        let within = |got: u64, want: u64| (got as f64 - want as f64).abs() <= want as f64 / 50.0;
        assert!(within(h.quantile_ns(0.5), 5_000_000), "{}", h.quantile_ns(0.5));
        assert!(within(h.quantile_ns(0.99), 9_900_000), "{}", h.quantile_ns(0.99));
        assert_eq!(h.quantile_ns(1.0), 10_000_000);
        assert!(within(h.quantile_ns(0.0), 1000));
    }

    #[test]
    fn merge_adds_counts() {
        let (mut a, mut b) = (Histogram::default(), Histogram::default());
        a.record_ns(10);
        b.record_ns(1_000_000);
        b.record_ns(1_000_000);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.quantile_ns(0.34), h_mid(1_000_000));
        assert_eq!(a.quantile_ns(0.33), 10);
        assert_eq!(Histogram::default().quantile_ns(0.5), 0);
    }

    fn h_mid(v: u64) -> u64 {
        let (lo, hi) = bounds(index(v));
        (lo + (hi - lo) / 2).min(v)
    }
}

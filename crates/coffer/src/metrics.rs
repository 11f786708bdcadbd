//! The Prometheus registry, written by hand: a few counters and one histogram do not need a
//! metrics framework. Rendered in the text exposition format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Latency buckets, in seconds.
const BUCKETS: [f64; 14] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The server's metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

impl Metrics {
    /// One request answered.
    pub fn observe(&self, operation: &str, status: u16, elapsed: Duration) {
        *self.requests.lock().unwrap().entry((operation.to_owned(), status)).or_default() += 1;
        let secs = elapsed.as_secs_f64();
        let mut l = self.latency.lock().unwrap();
        let h = l.entry(operation.to_owned()).or_default();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    pub fn add_bytes_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_bytes_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP coffer_http_requests_total S3 requests answered, by operation and HTTP status.\n");
        out.push_str("# TYPE coffer_http_requests_total counter\n");
        for ((op, status), n) in self.requests.lock().unwrap().iter() {
            let _ = writeln!(out, "coffer_http_requests_total{{operation=\"{op}\",status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP coffer_http_request_duration_seconds Time to the response head, by operation.\n");
        out.push_str("# TYPE coffer_http_request_duration_seconds histogram\n");
        for (op, h) in self.latency.lock().unwrap().iter() {
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "coffer_http_request_duration_seconds_bucket{{operation=\"{op}\",le=\"{le}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "coffer_http_request_duration_seconds_bucket{{operation=\"{op}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "coffer_http_request_duration_seconds_sum{{operation=\"{op}\"}} {}", h.sum);
            let _ = writeln!(out, "coffer_http_request_duration_seconds_count{{operation=\"{op}\"}} {}", h.count);
        }
        out.push_str("# HELP coffer_bytes_in_total Request body bytes received by the S3 API.\n");
        out.push_str("# TYPE coffer_bytes_in_total counter\n");
        let _ = writeln!(out, "coffer_bytes_in_total {}", self.bytes_in.load(Ordering::Relaxed));
        out.push_str("# HELP coffer_bytes_out_total Response body bytes sent by the S3 API.\n");
        out.push_str("# TYPE coffer_bytes_out_total counter\n");
        let _ = writeln!(out, "coffer_bytes_out_total {}", self.bytes_out.load(Ordering::Relaxed));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe("PutObject", 200, Duration::from_millis(3));
        m.observe("PutObject", 200, Duration::from_millis(200));
        m.observe("GetObject", 404, Duration::from_millis(1));
        m.add_bytes_in(10);
        m.add_bytes_out(7);
        let text = m.render();
        assert!(text.contains("coffer_http_requests_total{operation=\"PutObject\",status=\"200\"} 2"));
        assert!(text.contains("coffer_http_requests_total{operation=\"GetObject\",status=\"404\"} 1"));
        assert!(text.contains("coffer_http_request_duration_seconds_bucket{operation=\"PutObject\",le=\"0.005\"} 1"));
        assert!(text.contains("coffer_http_request_duration_seconds_bucket{operation=\"PutObject\",le=\"0.25\"} 2"));
        assert!(text.contains("coffer_http_request_duration_seconds_bucket{operation=\"PutObject\",le=\"+Inf\"} 2"));
        assert!(text.contains("coffer_http_request_duration_seconds_count{operation=\"PutObject\"} 2"));
        assert!(text.contains("coffer_bytes_in_total 10"));
        assert!(text.contains("coffer_bytes_out_total 7"));
    }
}

//! Prometheus metrics: request counts and latency histograms per route template and status,
//! database unavailability, evidence bytes stored, and the pool's connections (read at scrape
//! time). Exposed at `/metrics` in the text format, behind a token with the audit permission.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// The process's counters.
/// Series by route template, then by (method, status): a request that repeats a known series
/// finds it without allocating.
type Requests = BTreeMap<String, BTreeMap<(&'static str, u16), Series>>;

/// The methods the API answers, as static labels (anything else is `OTHER`).
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    KNOWN
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("OTHER")
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<Requests>,
    unavailable: AtomicU64,
    internal_errors: AtomicU64,
    evidence_bytes: AtomicU64,
}

/// The one registry of this process.
pub fn metrics() -> &'static Metrics {
    static METRICS: std::sync::OnceLock<Metrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

impl Metrics {
    /// Records one answered request.
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if status == 503 {
            self.unavailable.fetch_add(1, Ordering::Relaxed);
        }
        if status == 500 {
            self.internal_errors.fetch_add(1, Ordering::Relaxed);
        }
        let Ok(mut map) = self.requests.lock() else {
            return;
        };
        let key = (method_label(method), status);
        let series = match map.get_mut(route) {
            Some(by_key) => by_key.entry(key).or_default(),
            None => map
                .entry(route.to_owned())
                .or_default()
                .entry(key)
                .or_default(),
        };
        let s = series;
        s.count += 1;
        s.sum += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                s.buckets[i] += 1;
            }
        }
    }

    /// Counts stored evidence bytes.
    pub fn evidence_stored(&self, bytes: u64) {
        self.evidence_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self, pool: &poam_persistence::DbPool) -> String {
        let mut out = String::new();
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        out.push_str("# HELP poam_http_requests_total Requests answered, by method, route template and status.\n");
        out.push_str("# TYPE poam_http_requests_total counter\n");
        let map = self.requests.lock().map(|m| {
            m.iter()
                .flat_map(|(route, by_key)| {
                    by_key.iter().map(move |((method, status), s)| {
                        (
                            ((*method).to_owned(), route.clone(), *status),
                            s.count,
                            s.sum,
                            s.buckets,
                        )
                    })
                })
                .collect::<Vec<_>>()
        });
        let rows = map.unwrap_or_default();
        for ((method, route, status), count, _, _) in &rows {
            let _ = writeln!(
                out,
                "poam_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
                esc(route)
            );
        }
        out.push_str("# HELP poam_http_request_duration_seconds Time to answer, by method, route template and status.\n");
        out.push_str("# TYPE poam_http_request_duration_seconds histogram\n");
        for ((method, route, status), count, sum, buckets) in &rows {
            let labels = format!(
                "method=\"{method}\",route=\"{}\",status=\"{status}\"",
                esc(route)
            );
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "poam_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "poam_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "poam_http_request_duration_seconds_sum{{{labels}}} {sum}"
            );
            let _ = writeln!(
                out,
                "poam_http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        let state = pool.state();
        let gauges = [
            (
                "poam_db_pool_connections",
                "Open database connections.",
                "gauge",
                u64::from(state.connections),
            ),
            (
                "poam_db_pool_idle_connections",
                "Idle database connections.",
                "gauge",
                u64::from(state.idle_connections),
            ),
            (
                "poam_db_pool_max_connections",
                "The pool's size.",
                "gauge",
                u64::from(pool.max_size()),
            ),
            (
                "poam_db_unavailable_total",
                "Requests answered 503 because the database was unreachable, saturated or busy.",
                "counter",
                self.unavailable.load(Ordering::Relaxed),
            ),
            (
                "poam_internal_errors_total",
                "Requests answered 500 (the cause is in the log).",
                "counter",
                self.internal_errors.load(Ordering::Relaxed),
            ),
            (
                "poam_evidence_stored_bytes_total",
                "Bytes of evidence stored by this process.",
                "counter",
                self.evidence_bytes.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, kind, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

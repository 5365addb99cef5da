//! Prometheus metrics: request counts and latency histograms per route template and status,
//! database unavailability, evidence bytes stored, and the pool's connections (read at scrape
//! time). Exposed at `/metrics` in the OpenMetrics text format, behind a token with the audit
//! permission.
//!
//! The registry is `prometheus-client`'s. A request series (method, route template, status)
//! is [`Sharded`]: each worker thread adds its count and latency to a cache line of its own,
//! and a scrape sums the parts, so two workers answering the same route never pass a line (or a
//! lock: the crate's `Histogram` takes a mutex per observation) between cores. A worker keeps
//! handles to the last few series it counted; it finds a new one under a shared (read) lock.
//! Concurrent requests never queue behind one another here.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

/// The media type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The labels of a request series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

/// The methods the API answers, as static labels (anything else is `OTHER`).
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    KNOWN
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("OTHER")
}

/// How many ways a sharded count is split: threads take shards in turn (a thread beyond the
/// sixteenth shares one, correctly, as atomics do).
pub const SHARDS: usize = 16;

/// The shard the current thread adds to.
pub fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

/// A counter split by thread ([`shard`]), each part on its own cache line.
#[derive(Debug, Default)]
pub struct ShardedCounter([Line; SHARDS]);

#[repr(align(128))]
#[derive(Debug, Default)]
struct Line(AtomicU64);

impl ShardedCounter {
    pub fn inc(&self) {
        self.0[shard()].0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.iter().map(|l| l.0.load(Ordering::Relaxed)).sum()
    }
}

/// One thread's part of a request series: its latencies' sum in nanoseconds and its
/// per-bucket counts (the last one above every bound; their sum is the count), on cache lines
/// of their own.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Part {
    sum_nanos: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len() + 1],
}

/// A series' count, latencies' sum in seconds, and per-bucket counts (upper bound, count).
type Totals = (u64, f64, Vec<(f64, u64)>);

/// A request series' count and latency histogram, split by thread ([`shard`]) and summed when
/// rendered. Clones share the parts.
#[derive(Clone, Debug, Default)]
struct Sharded(Arc<[Part; SHARDS]>);

impl Sharded {
    fn observe(&self, seconds: f64) {
        let part = &self.0[shard()];
        // Saturating, and NaN as zero (`as` does both); 2^64 ns is 584 years.
        part.sum_nanos
            .fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        part.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// The count, the sum in seconds and the per-bucket counts, upper bound first.
    fn totals(&self) -> Totals {
        let mut buckets: Vec<(f64, u64)> = BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .map(|bound| (bound, 0))
            .collect();
        let mut nanos = 0u64;
        for part in self.0.iter() {
            nanos = nanos.saturating_add(part.sum_nanos.load(Ordering::Relaxed));
            for (total, n) in buckets.iter_mut().zip(&part.buckets) {
                total.1 += n.load(Ordering::Relaxed);
            }
        }
        let count = buckets.iter().map(|(_, n)| n).sum();
        (count, nanos as f64 / 1e9, buckets)
    }
}

/// Every request series, rendered as two families: the count and the latency histogram.
#[derive(Debug, Default)]
struct RequestSeries(RwLock<HashMap<RequestLabels, Sharded>>);

impl RequestSeries {
    fn get_or_create(&self, labels: &RequestLabels) -> Sharded {
        if let Some(s) = self.0.read().unwrap_or_else(|p| p.into_inner()).get(labels) {
            return s.clone();
        }
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(labels.clone())
            .or_default()
            .clone()
    }
}

impl Collector for RequestSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut series: Vec<(RequestLabels, Totals)> = self
            .0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(labels, s)| (labels.clone(), s.totals()))
            .collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        {
            let mut family = encoder.encode_descriptor(
                "poam_http_requests",
                "Requests answered, by method, route template and status",
                None,
                MetricType::Counter,
            )?;
            for (labels, (count, _, _)) in &series {
                family
                    .encode_family(labels)?
                    .encode_counter::<NoLabelSet, _, u64>(count, None)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "poam_http_request_duration_seconds",
            "Time to answer, by method, route template and status",
            None,
            MetricType::Histogram,
        )?;
        for (labels, (count, sum, buckets)) in &series {
            family
                .encode_family(labels)?
                .encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?;
        }
        Ok(())
    }
}

/// How many request series each worker thread keeps at hand.
const RECENT_SERIES: usize = 8;

/// A request series' handle, with its labels and the registry it belongs to.
struct Recent {
    registry: u64,
    labels: RequestLabels,
    series: Sharded,
}

impl Recent {
    fn is(&self, registry: u64, method: &'static str, route: &str, status: u16) -> bool {
        self.registry == registry
            && self.labels.status == status
            && self.labels.method == method
            && self.labels.route == route
    }
}

thread_local! {
    static RECENT: std::cell::RefCell<Vec<Recent>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The process's metrics and the registry that renders them.
pub struct Metrics {
    /// Tells this registry's series from another's (tests make their own).
    id: u64,
    registry: Registry,
    series: Arc<RequestSeries>,
    unavailable: Counter,
    internal_errors: Counter,
    evidence_bytes: Counter,
    pool_connections: Gauge,
    pool_idle: Gauge,
    pool_max: Gauge,
}

/// The one registry of this process.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::default();
        let series = Arc::new(RequestSeries::default());
        registry.register_collector(Box::new(series.clone()));
        let unavailable = Counter::default();
        let internal_errors = Counter::default();
        let evidence_bytes = Counter::default();
        let (pool_connections, pool_idle, pool_max) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register(
            "poam_db_pool_connections",
            "Open database connections",
            pool_connections.clone(),
        );
        registry.register(
            "poam_db_pool_idle_connections",
            "Idle database connections",
            pool_idle.clone(),
        );
        registry.register(
            "poam_db_pool_max_connections",
            "The pool's size",
            pool_max.clone(),
        );
        registry.register(
            "poam_db_unavailable",
            "Requests answered 503 because the database was unreachable, saturated or busy",
            unavailable.clone(),
        );
        registry.register(
            "poam_internal_errors",
            "Requests answered 500 (the cause is in the log)",
            internal_errors.clone(),
        );
        registry.register(
            "poam_evidence_stored_bytes",
            "Bytes of evidence stored by this process",
            evidence_bytes.clone(),
        );
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Metrics {
            id: IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            registry,
            series,
            unavailable,
            internal_errors,
            evidence_bytes,
            pool_connections,
            pool_idle,
            pool_max,
        }
    }

    /// Records one answered request.
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if status == 503 {
            self.unavailable.inc();
        }
        if status == 500 {
            self.internal_errors.inc();
        }
        let method = method_label(method);
        // The series this worker thread counted last few times, by their labels: a request
        // like one of them counts without hashing its labels or taking the series' lock.
        // The handles share their parts with the registry's series.
        RECENT.with(|recent| {
            let mut recent = recent.borrow_mut();
            if let Some(i) = recent
                .iter()
                .position(|s| s.is(self.id, method, route, status))
            {
                recent[i].series.observe(seconds);
                // The most recent first.
                recent[..=i].rotate_right(1);
                return;
            }
            let labels = RequestLabels {
                method,
                route: route.to_owned(),
                status,
            };
            let series = self.series.get_or_create(&labels);
            series.observe(seconds);
            let series = Recent {
                registry: self.id,
                labels,
                series,
            };
            if recent.len() == RECENT_SERIES {
                recent.pop();
            }
            recent.insert(0, series);
        });
    }

    /// Counts stored evidence bytes.
    pub fn evidence_stored(&self, bytes: u64) {
        self.evidence_bytes.inc_by(bytes);
    }

    /// The OpenMetrics text format, with the pool's gauges read now.
    pub fn render(&self, pool: &poam_persistence::DbPool) -> String {
        let state = pool.state();
        self.pool_connections.set(i64::from(state.connections));
        self.pool_idle.set(i64::from(state.idle_connections));
        self.pool_max.set(i64::from(pool.max_size()));
        self.text()
    }

    fn text(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The series a thread keeps at hand count into the registry's: more series than it keeps,
    /// interleaved, each counted exactly, and two registries on one thread kept apart.
    #[test]
    fn series_kept_at_hand_count_into_their_own_registry() {
        let (a, b) = (Metrics::new(), Metrics::new());
        let routes: Vec<String> = (0..RECENT_SERIES + 3).map(|i| format!("/r{i}")).collect();
        for round in 0..5 {
            for (i, r) in routes.iter().enumerate() {
                a.request("GET", r, 200, 0.002);
                if (i + round) % 2 == 0 {
                    a.request("GET", &routes[0], 200, 0.002);
                }
            }
            b.request("GET", &routes[0], 200, 0.002);
        }
        let (ta, tb) = (a.text(), b.text());
        let count = |text: &str, r: &str| -> Option<u64> {
            let key =
                format!("poam_http_requests_total{{method=\"GET\",route=\"{r}\",status=\"200\"}} ");
            let line = text.lines().find(|l| l.starts_with(&key))?;
            line[key.len()..].parse().ok()
        };
        // routes[0]: once per round on its own, and on every other position of each round.
        let extra: u64 = (0..5u64)
            .map(|round| {
                (0..routes.len() as u64)
                    .filter(|i| (i + round) % 2 == 0)
                    .count() as u64
            })
            .sum();
        assert_eq!(count(&ta, &routes[0]), Some(5 + extra), "{ta}");
        for r in &routes[1..] {
            assert_eq!(count(&ta, r), Some(5), "{r}: {ta}");
            assert_eq!(count(&tb, r), None, "{r}: {tb}");
        }
        assert_eq!(count(&tb, &routes[0]), Some(5), "{tb}");
    }

    /// Threads count into parts of their own; the rendering sums them: every request is
    /// counted once, in the right bucket, with its time in the sum.
    #[test]
    fn parts_counted_by_many_threads_sum_to_every_request() {
        let m = Metrics::new();
        std::thread::scope(|scope| {
            for t in 0..(SHARDS + 4) {
                let m = &m;
                scope.spawn(move || {
                    for _ in 0..1000 {
                        m.request("GET", "/v1/items/{item_id}", 200, 0.002);
                    }
                    if t == 0 {
                        m.request("GET", "/v1/items/{item_id}", 200, 20.0);
                    }
                });
            }
        });
        let text = m.text();
        let n = (SHARDS + 4) * 1000;
        let labels = "method=\"GET\",route=\"/v1/items/{item_id}\",status=\"200\"";
        for line in [
            format!("poam_http_requests_total{{{labels}}} {}", n + 1),
            format!(
                "poam_http_request_duration_seconds_count{{{labels}}} {}",
                n + 1
            ),
            format!("poam_http_request_duration_seconds_bucket{{le=\"0.001\",{labels}}} 0"),
            format!("poam_http_request_duration_seconds_bucket{{le=\"0.0025\",{labels}}} {n}"),
            format!("poam_http_request_duration_seconds_bucket{{le=\"10.0\",{labels}}} {n}"),
            format!(
                "poam_http_request_duration_seconds_bucket{{le=\"+Inf\",{labels}}} {}",
                n + 1
            ),
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line} in:\n{text}");
        }
        let sum: f64 = text
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "poam_http_request_duration_seconds_sum{{{labels}}} "
                ))
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or_default();
        assert!((sum - (n as f64 * 0.002 + 20.0)).abs() < 1e-6, "{sum}");
    }

    #[test]
    fn series_render_in_the_openmetrics_text_format() {
        let m = Metrics::new();
        for _ in 0..3 {
            m.request("GET", "/v1/systems/{system_id}", 200, 0.002);
        }
        m.request("BREW", "/v1/systems/{system_id}", 404, 0.02);
        m.request("GET", "/v1/items/{item_id}", 503, 0.2);
        m.evidence_stored(42);
        let text = m.text();
        for line in [
            "poam_http_requests_total{method=\"GET\",route=\"/v1/systems/{system_id}\",status=\"200\"} 3",
            "poam_http_requests_total{method=\"OTHER\",route=\"/v1/systems/{system_id}\",status=\"404\"} 1",
            "poam_http_request_duration_seconds_bucket{le=\"0.0025\",method=\"GET\",route=\"/v1/systems/{system_id}\",status=\"200\"} 3",
            "poam_http_request_duration_seconds_bucket{le=\"0.001\",method=\"GET\",route=\"/v1/systems/{system_id}\",status=\"200\"} 0",
            "poam_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/systems/{system_id}\",status=\"200\"} 3",
            "poam_db_unavailable_total 1",
            "poam_internal_errors_total 0",
            "poam_evidence_stored_bytes_total 42",
            "# EOF",
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
    }
}

//! Prometheus metrics: request counts and latency histograms per route template and status,
//! database unavailability, evidence bytes stored, and the pool's connections (read at scrape
//! time). Exposed at `/metrics` in the OpenMetrics text format, behind a token with the audit
//! permission.
//!
//! The registry is `prometheus-client`'s: a request counts with atomics through handles to its
//! series that its worker thread keeps for the last few series it counted, and finds a new one
//! under the families' shared (read) lock; concurrent requests never queue behind one another
//! here.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::OnceLock;

/// The media type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The labels of a request series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
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

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

type Durations = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// How many request series each worker thread keeps at hand.
const RECENT_SERIES: usize = 8;

/// A request series' handles, with its labels and the registry they belong to.
struct Series {
    registry: u64,
    labels: RequestLabels,
    count: Counter,
    duration: Histogram,
}

impl Series {
    fn is(&self, registry: u64, method: &'static str, route: &str, status: u16) -> bool {
        self.registry == registry
            && self.labels.status == status
            && self.labels.method == method
            && self.labels.route == route
    }
}

thread_local! {
    static RECENT: std::cell::RefCell<Vec<Series>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The process's metrics and the registry that renders them.
pub struct Metrics {
    /// Tells this registry's series from another's (tests make their own).
    id: u64,
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Durations,
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
        let requests = Family::<RequestLabels, Counter>::default();
        let durations: Durations = Family::new_with_constructor(latency_histogram);
        let unavailable = Counter::default();
        let internal_errors = Counter::default();
        let evidence_bytes = Counter::default();
        let (pool_connections, pool_idle, pool_max) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register(
            "poam_http_requests",
            "Requests answered, by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "poam_http_request_duration_seconds",
            "Time to answer, by method, route template and status",
            durations.clone(),
        );
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
            requests,
            durations,
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
        // like one of them counts without hashing its labels or taking the families' locks.
        // The handles share their atomics with the registry's series.
        RECENT.with(|recent| {
            let mut recent = recent.borrow_mut();
            if let Some(i) = recent
                .iter()
                .position(|s| s.is(self.id, method, route, status))
            {
                let series = &recent[i];
                series.count.inc();
                series.duration.observe(seconds);
                // The most recent first.
                recent[..=i].rotate_right(1);
                return;
            }
            let labels = RequestLabels {
                method,
                route: route.to_owned(),
                status,
            };
            let series = Series {
                registry: self.id,
                count: self.requests.get_or_create(&labels).clone(),
                duration: self.durations.get_or_create(&labels).clone(),
                labels,
            };
            series.count.inc();
            series.duration.observe(seconds);
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

//! Prometheus metrics at `/-/metrics`: the license gauges GitLab license exporters publish
//! (same names, so dashboards keep working), add-on seats, HTTP traffic, jobs, the database
//! pool and build information.
//!
//! Counters and histograms live for the process, here; everything about the license, seats and
//! the pool is read from the store at scrape time (`api::metrics`), so a scrape is never stale.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{
    EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder, MetricEncoder,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::logging::Route;

/// The exposition's content type (OpenMetrics text, which Prometheus scrapes natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: &'static str,
    /// The matched route (`/api/v4/license/{id}`), never the raw path.
    pub route: Route,
    pub status: u16,
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// A histogram recorded with atomic adds only. The crate's own histogram takes a write lock
/// per observation, which on the request path cost a fifth of `GET /license`'s throughput
/// (lock hand-offs between cores); this one costs a few uncontended atomic adds.
#[derive(Debug)]
pub struct AtomicHistogram {
    /// Upper bounds, ascending; a value lands in the first bucket whose bound it does not
    /// exceed, or in none (only `+Inf`, which is `count`).
    bounds: &'static [f64],
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl AtomicHistogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(index) = self.bounds.iter().position(|bound| seconds <= *bound) {
            self.buckets[index].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .zip(self.buckets.iter())
            .map(|(bound, count)| (*bound, count.load(Ordering::Relaxed)))
            .chain(std::iter::once((f64::MAX, 0)))
            .collect();
        let count = self.count.load(Ordering::Relaxed);
        // The `+Inf` bucket holds what no bound took, so the cumulative counts end at `count`.
        let counted: u64 = buckets.iter().map(|(_, n)| n).sum();
        let mut buckets = buckets;
        if let Some(last) = buckets.last_mut() {
            *last = (f64::MAX, count.saturating_sub(counted));
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<()>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Request latencies: 0.5 ms doubling to about 16 s.
const HTTP_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048,
    4.096, 8.192, 16.384,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub kind: String,
    /// `done`, `failed` (will be retried or was given up) or `lost` (its lease ran out).
    pub outcome: String,
}

/// The process-lifetime metrics.
pub struct Metrics {
    registry: Registry,
    http_duration: Family<HttpLabels, AtomicHistogram>,
    job_runs: Family<JobLabels, Counter>,
    job_duration: Family<JobLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gitlab_license_server");
        let http_duration = Family::<HttpLabels, AtomicHistogram>::new_with_constructor(|| {
            AtomicHistogram::new(HTTP_BOUNDS)
        });
        let job_runs = Family::<JobLabels, Counter>::default();
        let job_duration = Family::<JobLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 4.0, 10))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests, by method, matched route and status (its _count is the number of requests)",
            http_duration.clone(),
        );
        registry.register(
            "job_runs",
            "Background jobs run, by kind and outcome",
            job_runs.clone(),
        );
        registry.register(
            "job_duration_seconds",
            "Time background jobs took, by kind and outcome",
            job_duration.clone(),
        );
        Self {
            registry,
            http_duration,
            job_runs,
            job_duration,
        }
    }

    pub fn observe_request(&self, labels: &HttpLabels, elapsed: Duration) {
        self.http_duration.get_or_create(labels).observe(elapsed);
    }

    /// The process-lifetime metrics in the exposition format, ending with `# EOF`.
    pub fn encode(&self, text: &mut String) -> std::fmt::Result {
        encode(text, &self.registry)
    }

    pub fn observe_job(&self, kind: &str, outcome: &str, elapsed: Duration) {
        let labels = JobLabels {
            kind: kind.to_string(),
            outcome: outcome.to_string(),
        };
        self.job_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        self.job_runs.get_or_create(&labels).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_atomic_histogram_encodes_cumulative_buckets() {
        let mut registry = Registry::default();
        let histogram = Family::<HttpLabels, AtomicHistogram>::new_with_constructor(|| {
            AtomicHistogram::new(HTTP_BOUNDS)
        });
        registry.register("latency", "test", histogram.clone());
        let labels = HttpLabels {
            method: "GET",
            route: Route::Unmatched,
            status: 200,
        };
        for millis in [0.3, 3.0, 20_000.0] {
            histogram
                .get_or_create(&labels)
                .observe(Duration::from_secs_f64(millis / 1000.0));
        }
        let mut text = String::new();
        encode(&mut text, &registry).expect("encode");
        let line = |le: &str| {
            format!(
                "latency_bucket{{le=\"{le}\",method=\"GET\",route=\"unmatched\",status=\"200\"}} "
            )
        };
        let value = |prefix: String| {
            text.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()).map(str::to_string))
                .unwrap_or_else(|| panic!("no {prefix} in {text}"))
        };
        assert_eq!(value(line("0.0005")), "1");
        assert_eq!(value(line("0.004")), "2");
        assert_eq!(value(line("16.384")), "2");
        assert_eq!(value(line("+Inf")), "3");
        assert_eq!(
            value("latency_count{method=\"GET\",route=\"unmatched\",status=\"200\"} ".into()),
            "3"
        );
        let sum: f64 =
            value("latency_sum{method=\"GET\",route=\"unmatched\",status=\"200\"} ".into())
                .parse()
                .expect("sum");
        assert!((sum - 20.0033).abs() < 1e-6, "{sum}");
    }
}

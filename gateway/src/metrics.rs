//! Prometheus metrics: every metric name is defined here, once. Label values come from small
//! fixed sets (route names from the config, reason codes, states), never from user or device
//! ids. Per-request recording uses handles resolved at start-up (`RouteMetrics`), so the hot
//! path does no label hashing: a few atomic adds.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::model::ComplianceState;
use crate::reason::ReasonCode;

/// Buckets for request latencies, in seconds: 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Buckets for signal-to-enforcement latency and snapshot builds: 100 µs to 10 s.
const FAST_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// Kinds of upstream failure (label `kind`).
pub const UPSTREAM_ERROR_KINDS: [&str; 3] = ["connect", "timeout", "protocol"];

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub upstream_duration: HistogramVec,
    pub upstream_errors: IntCounterVec,
    pub open_connections: IntGaugeVec,
    pub tls_handshake_failures: IntCounterVec,
    pub snapshot_version: IntGauge,
    pub snapshot_age_seconds: IntGauge,
    pub devices: IntGaugeVec,
    pub snapshot_build_duration: Histogram,
    pub snapshot_build_failures: IntCounter,
    pub token_cache_requests: IntCounterVec,
    pub policy_results: IntCounterVec,
    pub signal_to_enforcement: Histogram,
    pub config_reloads: IntCounterVec,
    pub ready: IntGauge,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

impl Metrics {
    /// Creates and registers every metric. Registration of fixed, distinct names cannot fail;
    /// a failure would be a programming error caught by the tests.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let m = Self {
            requests: IntCounterVec::new(
                opts("portcullis_requests_total", "Requests by app (route), decision and reason code."),
                &["app", "decision", "reason"],
            )?,
            request_duration: HistogramVec::new(
                HistogramOpts::new("portcullis_request_duration_seconds", "Time from request head to response head, by app.")
                    .buckets(LATENCY_BUCKETS.to_vec()),
                &["app"],
            )?,
            upstream_duration: HistogramVec::new(
                HistogramOpts::new("portcullis_upstream_duration_seconds", "Time the upstream took to answer with its response head, by app.")
                    .buckets(LATENCY_BUCKETS.to_vec()),
                &["app"],
            )?,
            upstream_errors: IntCounterVec::new(
                opts("portcullis_upstream_errors_total", "Upstream failures by app and kind (connect, timeout, protocol)."),
                &["app", "kind"],
            )?,
            open_connections: IntGaugeVec::new(
                opts("portcullis_open_connections", "Client connections open now, by listener."),
                &["listener"],
            )?,
            tls_handshake_failures: IntCounterVec::new(
                opts("portcullis_tls_handshake_failures_total", "TLS handshakes that failed or timed out, by listener."),
                &["listener"],
            )?,
            snapshot_version: IntGauge::with_opts(opts("portcullis_snapshot_version", "Version of the snapshot decisions are made on."))?,
            snapshot_age_seconds: IntGauge::with_opts(opts("portcullis_snapshot_age_seconds", "Seconds since the newest source data in the snapshot was loaded."))?,
            devices: IntGaugeVec::new(
                opts("portcullis_devices", "Devices in the snapshot by compliance state."),
                &["state"],
            )?,
            snapshot_build_duration: Histogram::with_opts(
                HistogramOpts::new("portcullis_snapshot_build_duration_seconds", "Time to build a full snapshot from the sources.")
                    .buckets(FAST_BUCKETS.to_vec()),
            )?,
            snapshot_build_failures: IntCounter::with_opts(opts("portcullis_snapshot_build_failures_total", "Snapshot builds that failed (the last good snapshot was kept)."))?,
            token_cache_requests: IntCounterVec::new(
                opts("portcullis_token_cache_requests_total", "Token cache lookups by result (hit, miss)."),
                &["result"],
            )?,
            policy_results: IntCounterVec::new(
                opts("portcullis_policy_results_total", "Conditional-access policy results by policy id and result (report-only included)."),
                &["policy", "result"],
            )?,
            signal_to_enforcement: Histogram::with_opts(
                HistogramOpts::new("portcullis_signal_to_enforcement_seconds", "Time from a risk signal accepted to the snapshot that enforces it being published.")
                    .buckets(FAST_BUCKETS.to_vec()),
            )?,
            config_reloads: IntCounterVec::new(
                opts("portcullis_config_reloads_total", "Reloads of config and sources by result (success, failure)."),
                &["result"],
            )?,
            ready: IntGauge::with_opts(opts("portcullis_ready", "1 when the gateway is ready to decide (a good, fresh snapshot), else 0."))?,
            registry,
        };
        let r = &m.registry;
        r.register(Box::new(m.requests.clone()))?;
        r.register(Box::new(m.request_duration.clone()))?;
        r.register(Box::new(m.upstream_duration.clone()))?;
        r.register(Box::new(m.upstream_errors.clone()))?;
        r.register(Box::new(m.open_connections.clone()))?;
        r.register(Box::new(m.tls_handshake_failures.clone()))?;
        r.register(Box::new(m.snapshot_version.clone()))?;
        r.register(Box::new(m.snapshot_age_seconds.clone()))?;
        r.register(Box::new(m.devices.clone()))?;
        r.register(Box::new(m.snapshot_build_duration.clone()))?;
        r.register(Box::new(m.snapshot_build_failures.clone()))?;
        r.register(Box::new(m.token_cache_requests.clone()))?;
        r.register(Box::new(m.policy_results.clone()))?;
        r.register(Box::new(m.signal_to_enforcement.clone()))?;
        r.register(Box::new(m.config_reloads.clone()))?;
        r.register(Box::new(m.ready.clone()))?;
        for state in ComplianceState::ALL {
            m.devices.with_label_values(&[state.as_str()]).set(0);
        }
        for result in ["hit", "miss"] {
            m.token_cache_requests.with_label_values(&[result]);
        }
        for result in ["success", "failure"] {
            m.config_reloads.with_label_values(&[result]);
        }
        Ok(m)
    }

    /// Handles for one route, resolved once.
    pub fn for_route(&self, app: &str) -> RouteMetrics {
        let by_reason = |decision: &str| -> Vec<IntCounter> {
            ReasonCode::ALL
                .iter()
                .map(|r| {
                    self.requests
                        .with_label_values(&[app, decision, r.as_str()])
                })
                .collect()
        };
        RouteMetrics {
            allow: by_reason("allow"),
            deny: by_reason("deny"),
            duration: self.request_duration.with_label_values(&[app]),
            upstream_duration: self.upstream_duration.with_label_values(&[app]),
            upstream_errors: UPSTREAM_ERROR_KINDS
                .map(|k| self.upstream_errors.with_label_values(&[app, k])),
        }
    }

    /// Counter for requests no route matched.
    pub fn unrouted(&self) -> IntCounter {
        self.requests
            .with_label_values(&["none", "deny", "no_route"])
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = encoder.encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Pre-resolved per-route handles for the hot path.
pub struct RouteMetrics {
    allow: Vec<IntCounter>,
    deny: Vec<IntCounter>,
    duration: Histogram,
    upstream_duration: Histogram,
    upstream_errors: [IntCounter; 3],
}

impl RouteMetrics {
    pub fn decision(&self, allowed: bool, reason: ReasonCode) {
        let idx = ReasonCode::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        let set = if allowed { &self.allow } else { &self.deny };
        if let Some(c) = set.get(idx) {
            c.inc();
        }
    }

    pub fn duration(&self, d: Duration) {
        self.duration.observe(d.as_secs_f64());
    }

    pub fn upstream_duration(&self, d: Duration) {
        self.upstream_duration.observe(d.as_secs_f64());
    }

    /// `kind` is one of `UPSTREAM_ERROR_KINDS`.
    pub fn upstream_error(&self, kind: &str) {
        if let Some(i) = UPSTREAM_ERROR_KINDS.iter().position(|k| *k == kind) {
            self.upstream_errors[i].inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let m = Metrics::new().unwrap();
        let route = m.for_route("sharepoint");
        route.decision(false, ReasonCode::RiskAboveThreshold);
        route.decision(true, ReasonCode::PolicySatisfied);
        route.duration(Duration::from_millis(3));
        route.upstream_error("timeout");
        let text = m.render();
        assert!(text.contains(
            "portcullis_requests_total{app=\"sharepoint\",decision=\"deny\",reason=\"risk_above_threshold\"} 1"
        ));
        assert!(text
            .contains("portcullis_upstream_errors_total{app=\"sharepoint\",kind=\"timeout\"} 1"));
        assert!(text.contains(
            "portcullis_request_duration_seconds_bucket{app=\"sharepoint\",le=\"0.005\"} 1"
        ));
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let mut parts = line.split_whitespace().skip(2);
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(name.starts_with("portcullis_"), "{name}");
            assert_eq!(
                kind == "counter",
                name.ends_with("_total"),
                "{name} is a {kind}"
            );
        }
    }
}

//! One metrics facade (the `metrics` crate) for the whole product: request counts and
//! latencies by route and status, automation events evaluated, rules matched, actions by
//! type and outcome. The local server exports them as Prometheus text (`GET /metrics`,
//! `metrics-exporter-prometheus`); where no recorder is installed the calls cost nothing.
//! No metric carries a tenant: label values are routes, methods, statuses, action types.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
pub const EVENTS_EVALUATED: &str = "automation_events_evaluated_total";
pub const RULES_MATCHED: &str = "automation_rules_matched_total";
pub const ACTIONS: &str = "automation_actions_total";

/// Installs the Prometheus recorder once per process and answers its handle.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(HTTP_DURATION.to_string()),
                    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
                )
                .expect("valid buckets")
                .install_recorder()
                .expect("the only metrics recorder of the process")
        })
        .clone()
}

/// One answered request.
pub fn request(route: &str, method: &str, status: u16, seconds: f64) {
    let labels = [("route", route.to_string()), ("method", method.to_string()), ("status", status.to_string())];
    ::metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    ::metrics::histogram!(HTTP_DURATION, &labels[..2]).record(seconds);
}

/// One event evaluated, and how many rules it matched.
pub fn evaluated(module: &str, matched: usize) {
    ::metrics::counter!(EVENTS_EVALUATED, "module" => module.to_string()).increment(1);
    ::metrics::counter!(RULES_MATCHED, "module" => module.to_string()).increment(matched as u64);
}

/// One action's attempt ended: `succeeded`, `failed` or `dead`.
pub fn action(kind: &str, outcome: &str) {
    ::metrics::counter!(ACTIONS, "type" => kind.to_string(), "outcome" => outcome.to_string()).increment(1);
}

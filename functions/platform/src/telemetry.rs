//! One metrics facade (the `metrics` crate) for the whole product: request counts and
//! latencies by route and status, automation events evaluated, rules matched, actions by
//! type and outcome, the local action queue's depth and oldest age, cold starts. The local
//! server exports them as Prometheus text (`GET /metrics`, `metrics-exporter-prometheus`);
//! each Lambda function writes them to its log as CloudWatch Embedded Metric Format, one
//! document per invocation (`metrics_cloudwatch_embedded`); where no recorder is installed
//! the calls cost nothing. No metric carries a tenant: label values are routes, methods,
//! statuses, modules, action types.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
pub const EVENTS_EVALUATED: &str = "automation_events_evaluated_total";
pub const RULES_MATCHED: &str = "automation_rules_matched_total";
pub const ACTIONS: &str = "automation_actions_total";
pub const QUEUE_DEPTH: &str = "automation_queue_depth";
pub const QUEUE_OLDEST_AGE: &str = "automation_queue_oldest_age_seconds";
pub const COLD_STARTS: &str = "cold_starts_total";

/// The CloudWatch namespace of the product's metrics.
pub const NAMESPACE: &str = "BusinessPlatform";

/// Installs the Embedded Metric Format recorder once per process (Lambda): the metrics of
/// each invocation are written to stdout as one EMF document when it ends (see
/// [`emf_layer`]), with the function's name as dimension, the request id and X-Ray trace
/// id as properties, and one `cold_starts_total` on the first invocation.
pub fn emf() -> &'static metrics_cloudwatch_embedded::Collector {
    static COLLECTOR: OnceLock<&'static metrics_cloudwatch_embedded::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(|| {
        let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".to_string());
        metrics_cloudwatch_embedded::Builder::new()
            .cloudwatch_namespace(NAMESPACE)
            .with_dimension("function", function)
            .lambda_cold_start_metric(COLD_STARTS)
            .with_lambda_request_id("RequestId")
            .with_lambda_xray_trace_id("TraceId")
            .init()
            .expect("the only metrics recorder of the process")
    })
}

/// The Lambda runtime layer that flushes [`emf`] after every invocation.
pub fn emf_layer() -> metrics_cloudwatch_embedded::lambda::MetricsLayer {
    metrics_cloudwatch_embedded::lambda::MetricsLayer::new(emf())
}

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

/// The request metrics of one route and method: answers by status, and latency.
struct RouteMetrics {
    method: http::Method,
    by_status: Vec<(u16, ::metrics::Counter)>,
    duration: ::metrics::Histogram,
}

/// Handles registered once per route, method and status: the recorder's registry is not
/// searched, and no label is built, on every request (the local server's hot path).
static ROUTES: std::sync::LazyLock<std::sync::RwLock<std::collections::HashMap<Box<str>, Vec<RouteMetrics>>>> =
    std::sync::LazyLock::new(Default::default);

fn labels(route: &str, method: &http::Method, status: Option<u16>) -> Vec<::metrics::Label> {
    let mut labels =
        vec![::metrics::Label::new("route", route.to_string()), ::metrics::Label::new("method", method.to_string())];
    if let Some(status) = status {
        labels.push(::metrics::Label::new("status", status.to_string()));
    }
    labels
}

/// One answered request.
pub fn request(route: &str, method: &http::Method, status: u16, seconds: f64) {
    {
        let routes = ROUTES.read().expect("lock");
        let known = routes.get(route).and_then(|methods| methods.iter().find(|m| m.method == method));
        if let Some((m, (_, counter))) = known.and_then(|m| Some((m, m.by_status.iter().find(|(s, _)| *s == status)?)))
        {
            m.duration.record(seconds);
            counter.increment(1);
            return;
        }
    }
    let mut routes = ROUTES.write().expect("lock");
    let methods = routes.entry(route.into()).or_default();
    if !methods.iter().any(|m| m.method == method) {
        let duration = ::metrics::histogram!(HTTP_DURATION, labels(route, method, None));
        methods.push(RouteMetrics { method: method.clone(), by_status: Vec::new(), duration });
    }
    let m = methods.iter_mut().find(|m| m.method == method).expect("registered above");
    if !m.by_status.iter().any(|(s, _)| *s == status) {
        m.by_status.push((status, ::metrics::counter!(HTTP_REQUESTS, labels(route, method, Some(status)))));
    }
    m.duration.record(seconds);
    m.by_status.iter().find(|(s, _)| *s == status).expect("registered above").1.increment(1);
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

/// The local action queue's backlog: how many messages wait, and the oldest one's age.
pub fn queue(depth: usize, oldest_age_seconds: f64) {
    ::metrics::gauge!(QUEUE_DEPTH).set(depth as f64);
    ::metrics::gauge!(QUEUE_OLDEST_AGE).set(oldest_age_seconds);
}

/// The X-Ray trace header of the invocation being handled (`Root=...;Parent=...;Sampled=...`):
/// the Lambda runtime sets `_X_AMZN_TRACE_ID` for each invocation. What this process
/// puts on EventBridge and SQS carries it, so the trace continues to the executor.
pub fn trace_header() -> Option<String> {
    std::env::var("_X_AMZN_TRACE_ID").ok().filter(|t| !t.is_empty())
}

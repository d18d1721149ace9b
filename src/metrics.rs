//! The process's Prometheus metrics: one registry of typed families with bounded
//! labels, encoded as OpenMetrics text for `GET /metrics`; and the mappings that keep
//! the labels bounded: a request path to its route template, an apiserver request to
//! its Kubernetes verb and resource.
//!
//! The registry is global, like client-go's, because the Kubernetes client does not
//! see the application state. Recording takes no allocation once a label set exists:
//! every label value is a `&'static str` or a number.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::names::JobName;

/// What [`Metrics::encode`] writes: the OpenMetrics text format, which Prometheus
/// scrapes natively.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric name starts with this and `_`.
pub const PREFIX: &str = "sparktest_k8s";

/// Upper bounds (seconds) of the API's latency buckets: sub-millisecond cached answers
/// up to long log reads.
const HTTP_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];
/// Upper bounds (seconds) of the apiserver latency buckets: 5 ms to 60 s (a long log
/// or a large list).
const APISERVER_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The value of `route` for any path that is not one of the routes.
pub const OTHER: &str = "other";

/// Every value `route` can take.
pub const ROUTES: &[&str] = &[
    "/livez",
    "/readyz",
    "/metrics",
    "/api/k8s/health",
    "/api/k8s/jobs",
    "/api/k8s/jobs/{job_name}",
    "/api/k8s/jobs/{job_name}/status",
    "/api/k8s/jobs/{job_name}/logs",
    "/api/k8s/jobs/{job_name}/logs/stream",
    "/api/k8s/jobs/{job_name}/watch",
    "/api/k8s/jobs/{job_name}/events",
    "/api/k8s/status/{job_name}",
    "/api/k8s/logs/{job_name}",
    "/api/k8s/templates",
    "/api/test-runs",
    "/api/test-runs/{run_id}/logs",
    "/api/test-runs/{run_id}/logs/stream",
    OTHER,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLatencyLabels {
    route: &'static str,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiserverLabels {
    verb: &'static str,
    resource: &'static str,
    code: ApiserverCode,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiserverLatencyLabels {
    verb: &'static str,
    resource: &'static str,
}

/// How an apiserver call ended: its HTTP status, or `error` when no answer came
/// (transport failure, timeout, or the call was abandoned).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ApiserverCode {
    Status(u16),
    Error,
}

impl EncodeLabelValue for ApiserverCode {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        match self {
            Self::Status(code) => EncodeLabelValue::encode(code, encoder),
            Self::Error => EncodeLabelValue::encode(&"error", encoder),
        }
    }
}

/// One field per metric; the README's Metrics section says what each means.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<HttpLatencyLabels, Histogram, fn() -> Histogram>,
    apiserver_requests: Family<ApiserverLabels, Counter>,
    apiserver_duration: Family<ApiserverLatencyLabels, Histogram, fn() -> Histogram>,
    jobs_created: Counter,
    jobs_deleted: Counter,
    log_bytes: Counter,
    active_streams: Gauge,
    auth_failures: Counter,
    cluster_connected: Gauge,
    archive_runs: Family<ArchiveLabels, Counter>,
    archive_store_errors: Counter,
    archive_bytes: Counter,
    archive_pending: Gauge,
    // The TestRun controller (crate::testruns).
    testrun_reconciles: Family<ResultLabels, Counter>,
    testrun_leader: Gauge,
}

/// `result` of `testrun_reconciles`: one of `crate::testruns::controller::result::ALL`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ArchiveLabels {
    result: &'static str,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Self {
        let metrics = Self {
            registry: Registry::with_prefix(PREFIX),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(|| Histogram::new(HTTP_BUCKETS)),
            apiserver_requests: Family::default(),
            apiserver_duration: Family::new_with_constructor(|| Histogram::new(APISERVER_BUCKETS)),
            jobs_created: Counter::default(),
            jobs_deleted: Counter::default(),
            log_bytes: Counter::default(),
            active_streams: Gauge::default(),
            auth_failures: Counter::default(),
            cluster_connected: Gauge::default(),
            archive_runs: Family::default(),
            archive_store_errors: Counter::default(),
            archive_bytes: Counter::default(),
            archive_pending: Gauge::default(),
            testrun_reconciles: Family::default(),
            testrun_leader: Gauge::default(),
        };
        metrics.registered()
    }

    /// Registers every metric (clones share their values). Counters are named without
    /// `_total`: the encoder appends it.
    fn registered(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "http_requests",
            "Requests answered, by route template, method and status",
            self.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response headers, by route template and method",
            self.http_duration.clone(),
        );
        r.register(
            "apiserver_requests",
            "Requests sent to the apiserver, each retry counted, by verb, resource and status code (error: no answer)",
            self.apiserver_requests.clone(),
        );
        r.register(
            "apiserver_request_duration_seconds",
            "Time from sending an apiserver request to its response headers, by verb and resource",
            self.apiserver_duration.clone(),
        );
        r.register(
            "jobs_created",
            "Jobs created through the API",
            self.jobs_created.clone(),
        );
        r.register(
            "jobs_deleted",
            "Jobs deleted through the API",
            self.jobs_deleted.clone(),
        );
        r.register(
            "log_bytes",
            "Bytes of log text served by log replies and live log streams",
            self.log_bytes.clone(),
        );
        r.register(
            "active_streams",
            "Live streams (log streams and watches) open now",
            self.active_streams.clone(),
        );
        r.register(
            "auth_failures",
            "Requests refused with 401 for want of a valid API token",
            self.auth_failures.clone(),
        );
        r.register(
            "cluster_connected",
            "1 when the last health probe or apiserver call reached the apiserver, else 0",
            self.cluster_connected.clone(),
        );
        r.register(
            "archive_runs",
            "Finished runs the log archive dealt with, by result (archived; failed: not collected, asked again by the sweep)",
            self.archive_runs.clone(),
        );
        r.register(
            "archive_store_errors",
            "Writes to the archive's store that failed and are retried with backoff",
            self.archive_store_errors.clone(),
        );
        r.register(
            "archive_bytes",
            "Compressed bytes of log written to the archive",
            self.archive_bytes.clone(),
        );
        r.register(
            "archive_pending",
            "Runs waiting to be archived (being collected, or stored again after a failure)",
            self.archive_pending.clone(),
        );
        // The TestRun controller: every result exists from the start (at 0), so that a
        // rate over it is defined before the first reconcile.
        for result in crate::testruns::controller::result::ALL {
            drop(
                self.testrun_reconciles
                    .get_or_create(&ResultLabels { result }),
            );
        }
        r.register(
            "testrun_reconciles",
            "TestRun reconciles by result (created, updated, unchanged, invalid, error)",
            self.testrun_reconciles.clone(),
        );
        r.register(
            "testrun_leader",
            "1 while this replica leads the TestRun controller (holds the lease), else 0",
            self.testrun_leader.clone(),
        );
        self
    }

    /// Records a request answered by the API. `path` is the path only, never the query
    /// (which may carry an access token).
    pub fn http_request(&self, method: &Method, path: &str, status: StatusCode, elapsed: Duration) {
        let route = route(path);
        let method = method_label(method);
        self.http_requests
            .get_or_create(&HttpLabels {
                route,
                method,
                status: status.as_u16(),
            })
            .inc();
        self.http_duration
            .get_or_create(&HttpLatencyLabels { route, method })
            .observe(elapsed.as_secs_f64());
    }

    /// Records one apiserver request (one attempt: retries are recorded each).
    pub fn apiserver_call(
        &self,
        verb: &'static str,
        resource: &'static str,
        code: ApiserverCode,
        elapsed: Duration,
    ) {
        self.apiserver_requests
            .get_or_create(&ApiserverLabels {
                verb,
                resource,
                code,
            })
            .inc();
        self.apiserver_duration
            .get_or_create(&ApiserverLatencyLabels { verb, resource })
            .observe(elapsed.as_secs_f64());
    }

    /// Starts timing an apiserver request; see [`ApiserverCall`].
    pub fn apiserver_start(&'static self, method: &Method, path_and_query: &str) -> ApiserverCall {
        let (verb, resource) = verb_and_resource(method, path_and_query);
        ApiserverCall {
            metrics: self,
            verb,
            resource,
            started: Instant::now(),
            recorded: false,
        }
    }

    pub fn job_created(&self) {
        self.jobs_created.inc();
    }

    pub fn job_deleted(&self) {
        self.jobs_deleted.inc();
    }

    /// Counts bytes of log text served to a caller.
    pub fn log_bytes(&self, bytes: usize) {
        self.log_bytes.inc_by(bytes as u64);
    }

    /// Counts a live stream as open until the returned guard is dropped.
    pub fn stream_opened(&'static self) -> ActiveStream {
        self.active_streams.inc();
        ActiveStream { metrics: self }
    }

    pub fn auth_failure(&self) {
        self.auth_failures.inc();
    }

    /// Sets `cluster_connected` to 1 or 0.
    pub fn set_connected(&self, connected: bool) {
        self.cluster_connected.set(i64::from(connected));
    }

    /// Counts a run the archive finished with: `archived`, or `failed` (it could not be
    /// collected; the sweep asks again).
    pub fn archive_run(&self, result: &'static str) {
        self.archive_runs
            .get_or_create(&ArchiveLabels { result })
            .inc();
    }

    /// Counts a failed write to the archive's store (it is retried).
    pub fn archive_store_error(&self) {
        self.archive_store_errors.inc();
    }

    /// Counts compressed bytes of log written to the archive.
    pub fn archive_bytes(&self, bytes: u64) {
        self.archive_bytes.inc_by(bytes);
    }

    /// Runs waiting to be archived (being collected, or stored again after a failure).
    pub fn archive_pending(&self, runs: usize) {
        self.archive_pending
            .set(i64::try_from(runs).unwrap_or(i64::MAX));
    }

    /// Counts a TestRun reconcile by its result, one of
    /// `crate::testruns::controller::result::ALL` (anything else counts as `error`).
    pub fn testrun_reconciled(&self, result: &'static str) {
        let result = if crate::testruns::controller::result::ALL.contains(&result) {
            result
        } else {
            crate::testruns::controller::result::ERROR
        };
        self.testrun_reconciles
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Sets `testrun_leader`: whether this replica leads the TestRun controller.
    pub fn set_testrun_leader(&self, leading: bool) {
        self.testrun_leader.set(i64::from(leading));
    }

    /// Every metric in the OpenMetrics text format ([`CONTENT_TYPE`]), `# EOF` last.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// An apiserver request being timed. [`answered`](Self::answered) or
/// [`failed`](Self::failed) records it; dropped before either (a timeout, or the
/// caller went away) it is recorded with code `error`.
#[must_use = "record how the call ended"]
pub struct ApiserverCall {
    metrics: &'static Metrics,
    verb: &'static str,
    resource: &'static str,
    started: Instant,
    recorded: bool,
}

impl ApiserverCall {
    /// The apiserver answered with `status`. A 2xx answer sets `cluster_connected` to 1.
    pub fn answered(mut self, status: StatusCode) {
        self.record(ApiserverCode::Status(status.as_u16()));
        if status.is_success() {
            self.metrics.set_connected(true);
        }
    }

    /// No answer: the connection or TLS failed. Sets `cluster_connected` to 0.
    pub fn failed(mut self) {
        self.record(ApiserverCode::Error);
        self.metrics.set_connected(false);
    }

    fn record(&mut self, code: ApiserverCode) {
        self.recorded = true;
        self.metrics
            .apiserver_call(self.verb, self.resource, code, self.started.elapsed());
    }
}

impl Drop for ApiserverCall {
    fn drop(&mut self) {
        if !self.recorded {
            self.record(ApiserverCode::Error);
        }
    }
}

/// A live stream counted in `active_streams` while this lives.
#[must_use = "the stream counts as open while this guard lives"]
pub struct ActiveStream {
    metrics: &'static Metrics,
}

impl Drop for ActiveStream {
    fn drop(&mut self) {
        self.metrics.active_streams.dec();
    }
}

/// The `method` label: a standard method's name, else `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => OTHER,
    }
}

/// Whether a path segment could be a job name: what the routes accept is a subset of
/// this (checked without allocating; the routes' own parsing decides the answer).
fn is_name(segment: &str) -> bool {
    (1..=JobName::MAX_LEN).contains(&segment.len())
        && segment
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Whether a path segment could be a run id (a UUID).
fn is_run_id(segment: &str) -> bool {
    segment.len() == 36 && segment.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// The route template of a request path (one of [`ROUTES`]): a name or id never
/// becomes a label value, and anything that is not a route's shape is [`OTHER`].
pub fn route(path: &str) -> &'static str {
    let Some(rest) = path.strip_prefix('/') else {
        return OTHER;
    };
    // The longest route has 6 segments; a longer path is no route.
    let mut segments = [""; 6];
    let mut count = 0;
    for segment in rest.split('/') {
        let Some(slot) = segments.get_mut(count) else {
            return OTHER;
        };
        *slot = segment;
        count += 1;
    }
    match segments[..count] {
        ["livez"] => "/livez",
        ["readyz"] => "/readyz",
        ["metrics"] => "/metrics",
        ["api", "k8s", "health"] => "/api/k8s/health",
        ["api", "k8s", "jobs"] => "/api/k8s/jobs",
        ["api", "k8s", "templates"] => "/api/k8s/templates",
        ["api", "k8s", "jobs", name] if is_name(name) => "/api/k8s/jobs/{job_name}",
        ["api", "k8s", "jobs", name, tail] if is_name(name) => match tail {
            "status" => "/api/k8s/jobs/{job_name}/status",
            "logs" => "/api/k8s/jobs/{job_name}/logs",
            "watch" => "/api/k8s/jobs/{job_name}/watch",
            "events" => "/api/k8s/jobs/{job_name}/events",
            _ => OTHER,
        },
        ["api", "k8s", "status", name] if is_name(name) => "/api/k8s/status/{job_name}",
        ["api", "k8s", "logs", name] if is_name(name) => "/api/k8s/logs/{job_name}",
        ["api", "k8s", "jobs", name, "logs", "stream"] if is_name(name) => {
            "/api/k8s/jobs/{job_name}/logs/stream"
        }
        ["api", "test-runs"] => "/api/test-runs",
        ["api", "test-runs", id, "logs"] if is_run_id(id) => "/api/test-runs/{run_id}/logs",
        ["api", "test-runs", id, "logs", "stream"] if is_run_id(id) => {
            "/api/test-runs/{run_id}/logs/stream"
        }
        _ => OTHER,
    }
}

/// The Kubernetes verb and resource of an apiserver request, as the apiserver's own
/// audit and RBAC name them: `get`, `list`, `watch` (`watch=true` or `watch=1`),
/// `create`, `update`, `patch`, `delete`, `deletecollection`; resources `jobs`, `pods`,
/// `pods/log`, `events`, `selfsubjectaccessreviews`, `version`, else `other`.
pub fn verb_and_resource(method: &Method, path_and_query: &str) -> (&'static str, &'static str) {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let (resource, named) = resource(path);
    let watch = query
        .split('&')
        .any(|pair| pair == "watch=true" || pair == "watch=1");
    let verb = match *method {
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD if named => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => OTHER,
    };
    (verb, resource)
}

/// The resource of an apiserver path, and whether the path names one object.
/// `/api/v1/...` and `/apis/{group}/{version}/...`, namespaced
/// (`namespaces/{ns}/{resource}[/{name}[/{subresource}]]`) or cluster-scoped.
fn resource(path: &str) -> (&'static str, bool) {
    if path == "/version" {
        return ("version", true);
    }
    let rest = match path.strip_prefix("/api/v1/") {
        Some(rest) => rest,
        None => match path
            .strip_prefix("/apis/")
            .and_then(|r| r.split_once('/'))
            .and_then(|(_group, r)| r.split_once('/'))
        {
            Some((_version, rest)) => rest,
            None => return (OTHER, false),
        },
    };
    let mut segments = [""; 5];
    let mut count = 0;
    for segment in rest.split('/') {
        let Some(slot) = segments.get_mut(count) else {
            return (OTHER, false);
        };
        *slot = segment;
        count += 1;
    }
    let segments = match segments[..count] {
        ["namespaces", ns, ref tail @ ..] if !ns.is_empty() && !tail.is_empty() => tail,
        ref all => all,
    };
    let (kind, named) = match segments {
        [kind] => (*kind, false),
        [kind, name] if !name.is_empty() => (*kind, true),
        ["pods", name, "log"] if !name.is_empty() => ("pods/log", true),
        [_, name, _] if !name.is_empty() => (OTHER, true),
        _ => return (OTHER, false),
    };
    let kind = match kind {
        "jobs" => "jobs",
        "pods" => "pods",
        "pods/log" => "pods/log",
        "events" => "events",
        "selfsubjectaccessreviews" => "selfsubjectaccessreviews",
        _ => OTHER,
    };
    (kind, named)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_route_maps_to_its_template() {
        let id = "550e8400-e29b-41d4-a716-446655440000";
        for (path, template) in [
            ("/livez", "/livez"),
            ("/readyz", "/readyz"),
            ("/metrics", "/metrics"),
            ("/api/k8s/health", "/api/k8s/health"),
            ("/api/k8s/jobs", "/api/k8s/jobs"),
            ("/api/k8s/templates", "/api/k8s/templates"),
            ("/api/k8s/jobs/test-job-123", "/api/k8s/jobs/{job_name}"),
            (
                "/api/k8s/jobs/test-job-123/status",
                "/api/k8s/jobs/{job_name}/status",
            ),
            ("/api/k8s/jobs/a.b-1/logs", "/api/k8s/jobs/{job_name}/logs"),
            (
                "/api/k8s/jobs/test-job-123/logs/stream",
                "/api/k8s/jobs/{job_name}/logs/stream",
            ),
            (
                "/api/k8s/jobs/test-job-123/watch",
                "/api/k8s/jobs/{job_name}/watch",
            ),
            (
                "/api/k8s/jobs/test-job-123/events",
                "/api/k8s/jobs/{job_name}/events",
            ),
            ("/api/k8s/status/test-job-123", "/api/k8s/status/{job_name}"),
            ("/api/k8s/logs/test-job-123", "/api/k8s/logs/{job_name}"),
            ("/api/test-runs", "/api/test-runs"),
            (
                &format!("/api/test-runs/{id}/logs"),
                "/api/test-runs/{run_id}/logs",
            ),
            (
                &format!("/api/test-runs/{id}/logs/stream"),
                "/api/test-runs/{run_id}/logs/stream",
            ),
        ] {
            assert_eq!(route(path), template, "{path}");
            assert!(ROUTES.contains(&template), "{template} is listed in ROUTES");
        }
    }

    #[test]
    fn hostile_paths_map_to_other() {
        let long_name = "a".repeat(JobName::MAX_LEN + 1);
        let huge = format!("/api/k8s/jobs/{}/status", "x".repeat(64 * 1024));
        let many = "/api".repeat(10_000);
        for path in [
            "",
            "/",
            "livez",
            "/livez/",
            "//livez",
            "/LIVEZ",
            "/api/k8s/jobs/",
            "/api/k8s/jobs//status",
            "/api/k8s/jobs/Test-Job/status",
            "/api/k8s/jobs/test%2Djob/status",
            "/api/k8s/jobs/test job/status",
            "/api/k8s/jobs/t\u{e9}st/status",
            "/api/k8s/jobs/test\0job/status",
            "/api/k8s/jobs/test-job-123/status/",
            "/api/k8s/jobs/test-job-123/secrets",
            "/api/k8s/jobs/test-job-123/logs/stream/more",
            "/api/k8s/jobs/test-job-123/logs/follow",
            "/api/test-runs/not-a-uuid/logs",
            "/api/test-runs/550e8400-e29b-41d4-a716-44665544000g/logs",
            "/api/k8s/health?access_token=secret",
            "/../../etc/passwd",
            &format!("/api/k8s/jobs/{long_name}/status"),
            &huge,
            &many,
        ] {
            assert_eq!(route(path), OTHER, "{:?}", &path[..path.len().min(80)]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Whatever the path, the label is one of the fixed values.
        #[test]
        fn any_path_maps_to_a_fixed_label(
            segments in prop::collection::vec(
                prop_oneof![
                    Just("api".to_string()),
                    Just("k8s".to_string()),
                    Just("jobs".to_string()),
                    Just("logs".to_string()),
                    Just("test-job-123".to_string()),
                    any::<String>(),
                ],
                0..9,
            )
        ) {
            let path = format!("/{}", segments.join("/"));
            let label = route(&path);
            prop_assert!(ROUTES.contains(&label));
            prop_assert!(!label.contains("test-job-123"));
        }

        #[test]
        fn any_apiserver_request_maps_to_fixed_labels(path in any::<String>(), delete in any::<bool>()) {
            let method = if delete { Method::DELETE } else { Method::GET };
            let (verb, resource) = verb_and_resource(&method, &path);
            prop_assert!(["get", "list", "watch", "delete", "deletecollection"].contains(&verb));
            prop_assert!(
                ["jobs", "pods", "pods/log", "events", "selfsubjectaccessreviews", "version", OTHER]
                    .contains(&resource)
            );
        }
    }

    #[test]
    fn methods_are_standard_or_other() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::OPTIONS), "OPTIONS");
        assert_eq!(method_label(&Method::from_bytes(b"PURGE").unwrap()), OTHER);
    }

    #[test]
    fn apiserver_requests_map_to_kubernetes_verbs_and_resources() {
        let jobs = "/apis/batch/v1/namespaces/default/jobs";
        for (method, path, verb, resource) in [
            (Method::GET, "/version", "get", "version"),
            (Method::GET, jobs, "list", "jobs"),
            (Method::GET, &format!("{jobs}?limit=1"), "list", "jobs"),
            (
                Method::GET,
                &format!("{jobs}?labelSelector=a%3Db&watch=true&resourceVersion=5"),
                "watch",
                "jobs",
            ),
            (Method::GET, &format!("{jobs}?watch=1"), "watch", "jobs"),
            (Method::GET, &format!("{jobs}?watch=false"), "list", "jobs"),
            (Method::GET, &format!("{jobs}/test-job-123"), "get", "jobs"),
            (Method::POST, jobs, "create", "jobs"),
            (
                Method::DELETE,
                &format!("{jobs}/test-job-123?propagationPolicy=Background"),
                "delete",
                "jobs",
            ),
            (Method::DELETE, jobs, "deletecollection", "jobs"),
            (
                Method::GET,
                "/api/v1/namespaces/default/pods?labelSelector=controller-uid%3Dx",
                "list",
                "pods",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/default/pods/p-1",
                "get",
                "pods",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/default/pods/p-1/log?follow=true&container=main",
                "get",
                "pods/log",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/default/events?fieldSelector=involvedObject.kind%3DJob",
                "list",
                "events",
            ),
            (
                Method::GET,
                "/apis/events.k8s.io/v1/namespaces/default/events",
                "list",
                "events",
            ),
            (
                Method::POST,
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                "create",
                "selfsubjectaccessreviews",
            ),
            (
                Method::PATCH,
                &format!("{jobs}/test-job-123"),
                "patch",
                "jobs",
            ),
            (
                Method::PUT,
                &format!("{jobs}/test-job-123"),
                "update",
                "jobs",
            ),
            // Anything else is `other`, never a name from the path.
            (
                Method::GET,
                "/api/v1/namespaces/default/secrets",
                "list",
                OTHER,
            ),
            (
                Method::GET,
                &format!("{jobs}/test-job-123/status"),
                "get",
                OTHER,
            ),
            (Method::GET, "/api/v1/namespaces/default", "get", OTHER),
            (Method::GET, "/apis/batch", "list", OTHER),
            (Method::GET, "/healthz", "list", OTHER),
            (Method::GET, &format!("{jobs}/a/b/c/d/e"), "list", OTHER),
        ] {
            assert_eq!(
                verb_and_resource(&method, path),
                (verb, resource),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn jobs_created_and_deleted_are_counted() {
        let m = metrics();
        let (created, deleted) = (m.jobs_created.get(), m.jobs_deleted.get());
        m.job_created();
        m.job_deleted();
        assert!(m.jobs_created.get() > created);
        assert!(m.jobs_deleted.get() > deleted);
        let text = m.encode();
        assert!(
            text.contains("\nsparktest_k8s_jobs_created_total "),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn an_abandoned_apiserver_call_counts_as_error() {
        let m = metrics();
        let labels = ApiserverLabels {
            verb: "get",
            resource: "pods/log",
            code: ApiserverCode::Error,
        };
        let count = || m.apiserver_requests.get(&labels).map_or(0, |c| c.get());
        let before = count();
        drop(m.apiserver_start(&Method::GET, "/api/v1/namespaces/default/pods/p/log"));
        assert!(count() > before);
    }

    #[test]
    fn an_open_stream_counts_until_its_guard_drops() {
        let m = metrics();
        let before = m.active_streams.get();
        let guard = m.stream_opened();
        assert_eq!(m.active_streams.get(), before + 1);
        drop(guard);
        assert_eq!(m.active_streams.get(), before);
    }
}

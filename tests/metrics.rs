//! `GET /metrics` scraped through the whole filter tree after real requests (a TLS mock
//! apiserver replaying recorded answers), its body parsed by a strict OpenMetrics
//! parser. The registry is global and tests run in parallel: values are compared
//! before and after, never as absolutes.

mod common;

use std::sync::Arc;

use common::*;
use openmetrics_parser::{
    MetricFamily, MetricsExposition, OpenMetricsType, OpenMetricsValue,
    openmetrics::parse_openmetrics,
};
use sparktest_k8s::AppState;
use sparktest_k8s::state::Policy;
use sparktest_k8s::tokens::ApiTokens;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, ResponseTemplate};

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;
type Family = MetricFamily<OpenMetricsType, OpenMetricsValue>;

/// The documented families (the names of counters without their `_total` samples'
/// suffix) and their types.
const FAMILIES: &[(&str, OpenMetricsType)] = &[
    ("sparktest_k8s_http_requests", OpenMetricsType::Counter),
    (
        "sparktest_k8s_http_request_duration_seconds",
        OpenMetricsType::Histogram,
    ),
    ("sparktest_k8s_apiserver_requests", OpenMetricsType::Counter),
    (
        "sparktest_k8s_apiserver_request_duration_seconds",
        OpenMetricsType::Histogram,
    ),
    ("sparktest_k8s_jobs_created", OpenMetricsType::Counter),
    ("sparktest_k8s_jobs_deleted", OpenMetricsType::Counter),
    ("sparktest_k8s_log_bytes", OpenMetricsType::Counter),
    ("sparktest_k8s_active_streams", OpenMetricsType::Gauge),
    ("sparktest_k8s_auth_failures", OpenMetricsType::Counter),
    ("sparktest_k8s_cluster_connected", OpenMetricsType::Gauge),
];

/// Tests that read the connectivity gauge, or set it, run one at a time.
static GAUGE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `GET /metrics` without any token: status, content type, and the parsed body.
async fn scrape(state: &AppState) -> (String, Exposition) {
    let response = warp::test::request()
        .method("GET")
        .path("/metrics")
        .reply(&sparktest_k8s::api::routes(state.clone()))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let body = String::from_utf8(response.body().to_vec()).unwrap();
    let parsed =
        parse_openmetrics(&body).unwrap_or_else(|e| panic!("not OpenMetrics text: {e:?}\n{body}"));
    (body, parsed)
}

fn family<'a>(exposition: &'a Exposition, name: &str) -> &'a Family {
    exposition
        .families
        .get(name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

/// The value of the sample of `name` whose labels include `labels` (0 when absent):
/// a counter's total, a gauge's value, a histogram's count.
fn value(exposition: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    family(exposition, name)
        .iter_samples()
        .find(|s| {
            let set = s.get_labelset().unwrap();
            labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
        })
        .map_or(0.0, |s| match &s.value {
            OpenMetricsValue::Counter(c) => c.value.as_f64(),
            OpenMetricsValue::Gauge(g) => g.as_f64(),
            OpenMetricsValue::Histogram(h) => h.count.unwrap() as f64,
            other => panic!("unexpected value {other:?}"),
        })
}

/// A state whose callers need a token (and without a cluster: a request that passes
/// authentication is 503).
fn locked_state(dir: &std::path::Path) -> AppState {
    let file = dir.join("tokens");
    std::fs::write(&file, "caller-token\n").unwrap();
    state_without_cluster(Policy {
        api_tokens: Some(Arc::new(ApiTokens::load(file).unwrap())),
        ..Policy::default()
    })
}

#[tokio::test]
async fn a_scrape_counts_requests_apiserver_calls_logs_and_auth_failures() {
    let _serial = GAUGE.lock().await;
    let (pki, api) = apiserver().await;
    Mock::given(method("GET"))
        .and(path("/apis/batch/v1/namespaces/default/jobs/test-job-123"))
        .respond_with(replay("09_job_get_completed"))
        .mount(&api.mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/default/pods"))
        .respond_with(replay("19_pods_list_job_completed"))
        .mount(&api.mock)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/api/v1/namespaces/default/pods/[^/]+/log$"))
        .respond_with(replay("28_log_completed_timestamps"))
        .mount(&api.mock)
        .await;
    let state = state_for(&pki, &api);
    let status_path = "/api/k8s/jobs/test-job-123/status";

    // One request first, so that every labelled family has a sample when scraped.
    assert_eq!(call(&state, "GET", status_path).await.0, 200);
    let (_, before) = scrape(&state).await;

    assert_eq!(call(&state, "GET", status_path).await.0, 200);
    let (code, logs) = call(&state, "GET", "/api/k8s/jobs/test-job-123/logs").await;
    assert_eq!(code, 200, "{logs}");
    let log_len = logs["logs"].as_str().unwrap().len() as f64;
    assert!(log_len > 0.0);
    assert_eq!(call(&state, "GET", "/no/such/route").await.0, 404);
    let dir = tempfile::tempdir().unwrap();
    let locked = locked_state(dir.path());
    assert_eq!(call(&locked, "GET", status_path).await.0, 401);

    // Open even where callers need a token.
    let (body, after) = scrape(&locked).await;

    for (name, kind) in FAMILIES {
        assert_eq!(family(&after, name).family_type, *kind, "{name}");
        assert!(!family(&after, name).help.is_empty(), "{name} has help");
    }
    assert!(body.ends_with("# EOF\n"));
    assert!(
        parse_openmetrics(body.trim_end_matches("# EOF\n")).is_err(),
        "the parser is strict: no EOF, no exposition"
    );

    let increased = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let status_route = [
        ("route", "/api/k8s/jobs/{job_name}/status"),
        ("method", "GET"),
    ];
    let ok = [status_route[0], status_route[1], ("status", "200")];
    assert!(
        increased("sparktest_k8s_http_requests", &ok) >= 1.0,
        "{body}"
    );
    assert!(increased("sparktest_k8s_http_request_duration_seconds", &status_route) >= 1.0);
    let unauthorized = [status_route[0], status_route[1], ("status", "401")];
    assert!(increased("sparktest_k8s_http_requests", &unauthorized) >= 1.0);
    let not_found = [("route", "other"), ("method", "GET"), ("status", "404")];
    assert!(increased("sparktest_k8s_http_requests", &not_found) >= 1.0);
    assert!(increased("sparktest_k8s_auth_failures", &[]) >= 1.0);

    let get_jobs = [("verb", "get"), ("resource", "jobs")];
    let get_jobs_ok = [get_jobs[0], get_jobs[1], ("code", "200")];
    assert!(increased("sparktest_k8s_apiserver_requests", &get_jobs_ok) >= 1.0);
    assert!(
        increased(
            "sparktest_k8s_apiserver_request_duration_seconds",
            &get_jobs
        ) >= 1.0
    );
    let list_pods = [("verb", "list"), ("resource", "pods"), ("code", "200")];
    assert!(increased("sparktest_k8s_apiserver_requests", &list_pods) >= 1.0);
    let get_log = [("verb", "get"), ("resource", "pods/log"), ("code", "200")];
    assert!(increased("sparktest_k8s_apiserver_requests", &get_log) >= 1.0);
    assert!(increased("sparktest_k8s_log_bytes", &[]) >= log_len);
    assert_eq!(value(&after, "sparktest_k8s_cluster_connected", &[]), 1.0);

    // No job or pod name anywhere: not in a label value, not in the text at all.
    assert!(!body.contains("test-job-123"), "{body}");
    for family in after.families.values() {
        for sample in family.iter_samples() {
            for value in sample.get_labelset().unwrap().iter_values() {
                assert!(!value.contains("test-job"), "{value}");
            }
        }
    }

    // Histograms: cumulative buckets ending at +Inf, which counts every observation.
    for (name, kind) in FAMILIES {
        if *kind != OpenMetricsType::Histogram {
            continue;
        }
        for sample in family(&after, name).iter_samples() {
            let OpenMetricsValue::Histogram(h) = &sample.value else {
                panic!("{name}: not a histogram sample");
            };
            let counts: Vec<f64> = h.buckets.iter().map(|b| b.count.as_f64()).collect();
            assert!(
                counts.windows(2).all(|w| w[0] <= w[1]),
                "{name}: {counts:?}"
            );
            let last = h.buckets.last().unwrap();
            assert_eq!(last.upper_bound, f64::INFINITY, "{name}");
            assert_eq!(last.count.as_f64(), h.count.unwrap() as f64, "{name}");
            let bounds: Vec<f64> = h.buckets.iter().map(|b| b.upper_bound).collect();
            assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{name}: {bounds:?}");
        }
    }
}

#[tokio::test]
async fn cluster_connected_follows_the_health_probe() {
    let _serial = GAUGE.lock().await;
    let (pki, api) = apiserver().await;
    Mock::given(path("/version"))
        .respond_with(ResponseTemplate::new(503).set_body_string("apiserver is shutting down"))
        .mount(&api.mock)
        .await;
    let down = state_for(&pki, &api);
    let (_, body) = call(&down, "GET", "/api/k8s/health").await;
    assert_eq!(body["kubernetes_connected"], false);
    let (_, scraped) = scrape(&down).await;
    assert_eq!(value(&scraped, "sparktest_k8s_cluster_connected", &[]), 0.0);
    let unavailable = [("verb", "get"), ("resource", "version"), ("code", "503")];
    assert!(value(&scraped, "sparktest_k8s_apiserver_requests", &unavailable) >= 1.0);

    let (pki, api) = apiserver().await;
    Mock::given(path("/version"))
        .respond_with(replay("01_version"))
        .mount(&api.mock)
        .await;
    Mock::given(path("/apis/batch/v1/namespaces/default/jobs"))
        .respond_with(replay("17_job_list_limit2"))
        .mount(&api.mock)
        .await;
    let up = state_for(&pki, &api);
    let (_, body) = call(&up, "GET", "/api/k8s/health").await;
    assert_eq!(body["kubernetes_connected"], true);
    let (_, scraped) = scrape(&up).await;
    assert_eq!(value(&scraped, "sparktest_k8s_cluster_connected", &[]), 1.0);
}

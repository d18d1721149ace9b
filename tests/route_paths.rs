//! No input reaches an unintended apiserver path: arbitrary route parameters and
//! queries (slashes, dot segments, percent-encoding, query syntax, unicode, long
//! strings) go through every route, and every request the apiserver sees must be one
//! of the paths the routes are meant to call, with names that are valid Kubernetes
//! names.

mod common;

use common::*;
use proptest::prelude::*;
use wiremock::ResponseTemplate;

/// Whether a request the apiserver received is one the API is meant to make.
fn allowed(method: &str, path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    let name_ok = |s: &str| s.parse::<sparktest_k8s::names::JobName>().is_ok();
    match (method, segments.as_slice()) {
        ("GET", ["", "version"]) => true,
        ("GET", ["", "apis", "batch", "v1", "namespaces", "default", "jobs"]) => true,
        (
            "GET" | "DELETE",
            [
                "",
                "apis",
                "batch",
                "v1",
                "namespaces",
                "default",
                "jobs",
                job,
            ],
        ) => name_ok(job),
        ("GET", ["", "api", "v1", "namespaces", "default", "pods"]) => true,
        ("GET", ["", "api", "v1", "namespaces", "default", "pods", pod, "log"]) => name_ok(pod),
        ("GET", ["", "api", "v1", "namespaces", "default", "events"]) => true,
        _ => false,
    }
}

fn encode(s: &str) -> String {
    sparktest_k8s::kube::resources::encode(s)
}

/// Strings that try to escape: path syntax, encodings, unicode, long runs.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        ".*",
        "[a-z0-9./%?&=#-]{0,80}",
        Just("..".to_string()),
        Just("../../api/v1/secrets".to_string()),
        Just("%2e%2e%2f%2e%2e%2fsecrets".to_string()),
        Just("job?watch=true".to_string()),
        Just("a".repeat(10_240)),
        "[a-z0-9-]{1,63}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_apiserver_request_is_an_intended_one(name in hostile(), query in hostile(), run_id in hostile()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let (pki, api) = apiserver().await;
            // Every apiserver answer is a 404: handlers stop at the first call.
            wiremock::Mock::given(wiremock::matchers::any())
                .respond_with(ResponseTemplate::new(404).set_body_raw(recorded("14_job_get_not_found").body, "application/json"))
                .mount(&api.mock)
                .await;
            let state = state_for(&pki, &api);
            let routes = sparktest_k8s::api::routes(state);
            let n = encode(&name);
            let q = encode(&query);
            let r = encode(&run_id);
            let targets = [
                ("GET", format!("/api/k8s/jobs/{n}/status")),
                ("GET", format!("/api/k8s/jobs/{n}/logs?pod={q}&container={q}&tail={q}&since_time={q}")),
                ("GET", format!("/api/k8s/jobs/{n}/logs?{query}")),
                ("GET", format!("/api/test-runs/{r}/logs")),
                ("DELETE", format!("/api/k8s/jobs/{n}")),
                ("GET", format!("/api/k8s/jobs/{n}/events")),
                ("GET", format!("/api/k8s/jobs/{n}/logs/stream?container={q}")),
                ("GET", format!("/api/k8s/jobs/{n}/watch")),
                ("GET", format!("/api/test-runs/{r}/logs/stream")),
                ("GET", format!("/api/k8s/jobs/{name}/status")),
            ];
            for (method, target) in &targets {
                // A target that is not a valid URI never reaches a route (hyper refuses
                // it while parsing the request line).
                if target.parse::<http::Uri>().is_err() {
                    continue;
                }
                let response = warp::test::request().method(method).path(target).reply(&routes).await;
                // Never a server error from input alone.
                assert!(response.status().as_u16() < 500 || response.status() == 502 || response.status() == 503, "{method} {target}: {}", response.status());
            }
            for request in api.mock.received_requests().await.unwrap() {
                let method = request.method.as_str();
                let path = request.url.path();
                assert!(allowed(method, path), "unintended apiserver request {method} {path} from {name:?} / {query:?} / {run_id:?}");
            }
        });
    }
}

#[test]
fn the_allowed_list_itself_refuses_escapes() {
    assert!(allowed(
        "GET",
        "/apis/batch/v1/namespaces/default/jobs/test-job-123"
    ));
    assert!(!allowed(
        "GET",
        "/apis/batch/v1/namespaces/default/jobs/..%2Fsecrets"
    ));
    assert!(!allowed("GET", "/api/v1/namespaces/default/secrets"));
    assert!(!allowed("DELETE", "/api/v1/namespaces/default/pods/x"));
    assert!(!allowed(
        "GET",
        "/apis/batch/v1/namespaces/default/jobs/a/b"
    ));
}

//! How failures reach the client: the apiserver's error answers (401, 403, 400 and 422,
//! 500, a garbage body) mapped in one place (driven through `/status`); an apiserver that
//! does not answer in time (504), cannot be reached or is not configured at all (503) on
//! every job endpoint; and bad input refused (400; unknown routes 404 and wrong methods
//! 405, as JSON) before any apiserver call. Each request goes through the whole warp
//! filter tree to a TLS mock of the apiserver replaying answers recorded from a real
//! kube-apiserver (fixtures/recorded/).

mod common;

use common::*;
use serde_json::json;
use sparktest_k8s::state::Policy;
use wiremock::matchers::path;
use wiremock::{Mock, ResponseTemplate};

// ---------------------------------------------------------------------------------
// Errors of the apiserver, mapped in one place

async fn status_with(answer: ResponseTemplate) -> (u16, serde_json::Value) {
    let (pki, api) = apiserver().await;
    Mock::given(path("/apis/batch/v1/namespaces/default/jobs/test-job-123"))
        .respond_with(answer)
        .mount(&api.mock)
        .await;
    call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-123/status",
    )
    .await
}

#[tokio::test]
async fn apiserver_401_is_502_authentication_error() {
    let (code, body) = status_with(replay("53_unauthorized_bad_token")).await;
    assert_eq!(code, 502);
    assert_eq!(body["error_type"], "AuthenticationError");
    assert!(body["message"].as_str().unwrap().contains("401"));
}

#[tokio::test]
async fn apiserver_403_is_502_naming_the_missing_permission() {
    let (code, body) = status_with(replay("51_forbidden_jobs_other_namespace")).await;
    assert_eq!(code, 502);
    assert_eq!(body["error_type"], "AuthenticationError");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("cannot list resource \"jobs\""),
        "{message}"
    );
}

#[tokio::test]
async fn apiserver_422_and_400_are_502_kubernetes_errors_with_the_reason() {
    for fixture in ["48_log_invalid_tailLines", "18_job_list_bad_labelselector"] {
        let (code, body) = status_with(replay(fixture)).await;
        assert_eq!(code, 502, "{fixture}");
        assert_eq!(body["error_type"], "KubernetesError");
        assert!(body["details"]["apiserver_code"].as_u64().unwrap() >= 400);
    }
}

#[tokio::test]
async fn apiserver_500_is_502_and_a_garbage_body_falls_back_to_its_text() {
    let (code, body) =
        status_with(ResponseTemplate::new(500).set_body_string("<html>oops</html>")).await;
    assert_eq!(code, 502);
    assert_eq!(body["error_type"], "KubernetesError");
    assert!(body["message"].as_str().unwrap().contains("oops"));
}

#[tokio::test]
async fn a_2xx_garbage_body_is_502_not_a_panic() {
    let (code, body) = status_with(ResponseTemplate::new(200).set_body_string("not json")).await;
    assert_eq!(code, 502);
    assert_eq!(body["error_type"], "KubernetesError");
}

// ---------------------------------------------------------------------------------
// An apiserver too slow, unreachable or not configured

#[tokio::test]
async fn an_apiserver_that_does_not_answer_in_time_is_504() {
    let (pki, api) = apiserver().await;
    Mock::given(path("/apis/batch/v1/namespaces/default/jobs/test-job-123"))
        .respond_with(replay("09_job_get_completed").set_delay(std::time::Duration::from_secs(30)))
        .mount(&api.mock)
        .await;
    let config = cluster_config(&pki, &api);
    let client = client_for(&config, std::time::Duration::from_millis(200));
    let state = sparktest_k8s::AppState::new(
        sparktest_k8s::state::Connection {
            client: Ok(client),
            source: None,
        },
        "default".parse().unwrap(),
        sparktest_k8s::state::LogLimits {
            max_lines: 10,
            max_bytes: 1024,
        },
    );
    let (code, body) = call(&state, "GET", "/api/k8s/jobs/test-job-123/status").await;
    assert_eq!(code, 504);
    assert_eq!(body["error_type"], "NetworkError");
}

#[tokio::test]
async fn an_unreachable_apiserver_is_503_network_error() {
    let (pki, api) = apiserver().await;
    let mut config = cluster_config(&pki, &api);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    config.server =
        sparktest_k8s::cluster::ServerUrl::parse(&format!("https://127.0.0.1:{port}")).unwrap();
    let state = sparktest_k8s::AppState::new(
        sparktest_k8s::state::Connection {
            client: Ok(client_for(&config, std::time::Duration::from_secs(5))),
            source: None,
        },
        "default".parse().unwrap(),
        sparktest_k8s::state::LogLimits {
            max_lines: 10,
            max_bytes: 1024,
        },
    );
    let (code, body) = call(&state, "GET", "/api/k8s/jobs/test-job-123/status").await;
    assert_eq!(code, 503);
    assert_eq!(body["error_type"], "NetworkError");
}

#[tokio::test]
async fn without_a_cluster_job_endpoints_are_503_naming_what_was_tried() {
    let state = sparktest_k8s::AppState::new(
        sparktest_k8s::state::Connection {
            client: Err("no Kubernetes cluster configured: tried kubeconfig (...)".into()),
            source: None,
        },
        "default".parse().unwrap(),
        sparktest_k8s::state::LogLimits {
            max_lines: 10,
            max_bytes: 1024,
        },
    );
    for (m, p) in [
        ("GET", "/api/k8s/jobs/test-job-123/status"),
        ("GET", "/api/k8s/jobs/test-job-123/logs"),
        (
            "GET",
            "/api/test-runs/550e8400-e29b-41d4-a716-446655440000/logs",
        ),
        ("DELETE", "/api/k8s/jobs/test-job-123"),
    ] {
        let (code, body) = call(&state, m, p).await;
        assert_eq!(code, 503, "{m} {p}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("tried kubeconfig")
        );
    }
    let (code, body) = call(&state, "GET", "/api/k8s/health").await;
    assert_eq!(code, 200);
    assert_eq!(body["kubernetes_connected"], false);
}

#[tokio::test]
async fn without_a_cluster_creating_and_listing_are_503_after_validation() {
    let state = state_without_cluster(Policy::default());
    let (code, body) = post_run(
        &state,
        "/api/test-runs",
        json!({"image": "busybox:1.36", "commands": ["true"]}),
    )
    .await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["error_type"], "KubernetesError");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no Kubernetes cluster configured"),
        "the reason is passed on: {body}"
    );
    let (code, body) = request(&state, "GET", "/api/k8s/jobs", None).await;
    assert_eq!(code, 503, "{body}");
    // A bad run is still a 400: it could never become a Job.
    let (code, body) = post_run(&state, "/api/test-runs", json!({"image": "busybox:1.36"})).await;
    assert_eq!(code, 400, "{body}");
}

// ---------------------------------------------------------------------------------
// Bad input never reaches the apiserver

#[tokio::test]
async fn invalid_names_and_ids_are_400_before_any_apiserver_call() {
    let (pki, api) = apiserver().await;
    let state = state_for(&pki, &api);
    let long = "a".repeat(10_240);
    let bad_paths = [
        "/api/k8s/jobs/Test-Job/status".to_string(),
        "/api/k8s/jobs/..%2F..%2Fsecrets/status".to_string(),
        "/api/k8s/jobs/job%3Fx%3D1/logs".to_string(),
        "/api/k8s/jobs/%E2%9C%93/status".to_string(),
        "/api/k8s/jobs/-x/logs".to_string(),
        "/api/k8s/jobs/a..b/status".to_string(),
        format!("/api/k8s/jobs/{long}/status"),
        format!("/api/k8s/jobs/{}", "b".repeat(64)),
        "/api/test-runs/not-a-uuid/logs".to_string(),
        "/api/test-runs/550e8400-e29b-41d4-a716-44665544000/logs".to_string(),
        "/api/test-runs/..%2F..%2F..%2Fx/logs".to_string(),
        "/api/k8s/jobs/test-job-123/logs?tail=-1".to_string(),
        "/api/k8s/jobs/test-job-123/logs?since_time=yesterday".to_string(),
        "/api/k8s/jobs/test-job-123/logs?pod=..%2Fx".to_string(),
        "/api/k8s/jobs/test-job-123/logs?unknown=1".to_string(),
        "/api/k8s/jobs/test-job-123/logs?limit_bytes=0".to_string(),
    ];
    for p in &bad_paths {
        let method = if p.ends_with("/status") || p.contains("/logs") {
            "GET"
        } else {
            "DELETE"
        };
        let (code, body) = call(&state, method, p).await;
        assert_eq!(code, 400, "{method} {p}: {body}");
        assert_eq!(body["error_type"], "ValidationError", "{p}");
    }
    assert!(
        api.mock.received_requests().await.unwrap().is_empty(),
        "the apiserver was called"
    );
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_json() {
    let (pki, api) = apiserver().await;
    let state = state_for(&pki, &api);
    let (code, body) = call(&state, "GET", "/api/k8s/nothing-here").await;
    assert_eq!(code, 404);
    assert_eq!(body["error_type"], "NotFoundError");
    let (code, _) = call(&state, "POST", "/api/k8s/jobs/test-job-123/status").await;
    assert_eq!(code, 405);
    let (code, _) = call(&state, "PUT", "/api/k8s/jobs/test-job-123").await;
    assert_eq!(code, 405);
}

//! A hung apiserver: one that accepts connections and never answers (what a stopped or
//! overloaded apiserver, or a black-holed network, looks like). Every endpoint answers
//! in bounded time with a typed error, health never queues behind a probe, and all of
//! it recovers when the apiserver does, without a restart.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use serde_json::Value;
use sparktest_k8s::kube::ClientOptions;
use sparktest_k8s::state::AppState;
use wiremock::Mock;
use wiremock::matchers::{method, path};

/// The interactive bound these tests configure; the default is 30 s.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(800);

/// Long enough for any bounded answer here; a hang fails the test at this point.
const NO_HANG: Duration = Duration::from_secs(15);

fn hung_state(pki: &Pki, api: &TlsMock) -> AppState {
    state_with_client_options(
        pki,
        api,
        ClientOptions {
            request_timeout: REQUEST_TIMEOUT,
            ..ClientOptions::default()
        },
    )
}

async fn bounded_call(state: &AppState, m: &str, p: &str) -> (u16, Value) {
    tokio::time::timeout(NO_HANG, call(state, m, p))
        .await
        .unwrap_or_else(|_| panic!("{m} {p} hung"))
}

async fn mount_healthy(api: &TlsMock) {
    Mock::given(method("GET"))
        .and(path("/version"))
        .respond_with(replay("01_version"))
        .mount(&api.mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/apis/batch/v1/namespaces/default/jobs"))
        .respond_with(replay("17_job_list_limit2"))
        .mount(&api.mock)
        .await;
}

#[tokio::test]
async fn every_job_endpoint_answers_a_typed_504_while_the_apiserver_hangs() {
    let (pki, api) = apiserver().await;
    mount_healthy(&api).await;
    let state = hung_state(&pki, &api);
    api.freeze();
    for (m, p) in [
        ("GET", "/api/k8s/jobs/test-job-123/status"),
        ("GET", "/api/k8s/status/test-job-123"),
        ("GET", "/api/k8s/jobs/test-job-123/logs"),
        ("GET", "/api/k8s/jobs"),
        ("DELETE", "/api/k8s/jobs/test-job-123"),
    ] {
        let (code, body) = bounded_call(&state, m, p).await;
        assert_eq!(code, 504, "{m} {p}: {body}");
        assert_eq!(body["error_type"], "NetworkError", "{m} {p}: {body}");
    }
}

#[tokio::test]
async fn health_answers_within_its_deadline_and_many_callers_share_one_probe() {
    let (pki, api) = apiserver().await;
    mount_healthy(&api).await;
    let state = hung_state(&pki, &api);
    api.freeze();
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let state = state.clone();
            tokio::spawn(async move { bounded_call(&state, "GET", "/api/k8s/health").await })
        })
        .collect();
    for c in calls {
        let (code, body) = c.await.unwrap();
        assert_eq!(code, 200);
        assert_eq!(body["kubernetes_connected"], false, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("did not answer"),
            "{body}"
        );
    }
    // One probe: one connection to the apiserver (it is stuck on its first request).
    assert_eq!(api.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_caller_that_gives_up_does_not_cancel_or_restart_the_probe() {
    let (pki, api) = apiserver().await;
    mount_healthy(&api).await;
    let state = hung_state(&pki, &api);
    api.freeze();
    // The first caller leaves before the probe's deadline.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        call(&state, "GET", "/api/k8s/health"),
    )
    .await;
    assert!(gave_up.is_err(), "the probe cannot have answered yet");
    // The next caller waits for that same probe: still one connection.
    let (_, body) = bounded_call(&state, "GET", "/api/k8s/health").await;
    assert_eq!(body["kubernetes_connected"], false, "{body}");
    assert_eq!(api.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn everything_recovers_when_the_apiserver_resumes() {
    let (pki, api) = apiserver().await;
    mount_healthy(&api).await;
    mount_job(
        &api.mock,
        "09_job_get_completed",
        Some("19_pods_list_job_completed"),
    )
    .await;
    let state = hung_state(&pki, &api);
    // A pooled connection exists, then the apiserver freezes with it open.
    let (code, _) = bounded_call(&state, "GET", "/api/k8s/jobs/test-job-123/status").await;
    assert_eq!(code, 200);
    api.freeze();
    let (code, _) = bounded_call(&state, "GET", "/api/k8s/jobs/test-job-123/status").await;
    assert_eq!(code, 504);
    let (_, health) = bounded_call(&state, "GET", "/api/k8s/health").await;
    assert_eq!(health["kubernetes_connected"], false);

    api.thaw();
    let (code, body) = bounded_call(&state, "GET", "/api/k8s/jobs/test-job-123/status").await;
    assert_eq!(
        code, 200,
        "the next request after recovery succeeds: {body}"
    );
    assert_eq!(body["status"], "completed");
    // A failed probe is reused for a second at most; within a few, health is back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, health) = bounded_call(&state, "GET", "/api/k8s/health").await;
        if health["kubernetes_connected"] == true {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "health did not recover: {health}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

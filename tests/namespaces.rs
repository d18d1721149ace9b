//! The `?namespace=` rule of every endpoint that takes it (and the `namespace` in a run's
//! body): in an allowed namespace a run is posted there, a status read there and the
//! jobs listed there; a namespace not allowed is 403, an invalid name 400, a misspelt
//! parameter 400 (not the home namespace), and a query and body that disagree 400, all
//! without an apiserver call. Each request goes through the whole warp filter tree to a
//! TLS mock of the apiserver replaying answers recorded from a real kube-apiserver
//! (fixtures/recorded/), and the paths it receives are asserted.

mod common;

use common::*;
use serde_json::{Value, json};
use sparktest_k8s::runs::RunDefaults;
use sparktest_k8s::runs::templates::Templates;
use sparktest_k8s::state::AppState;
use wiremock::Mock;
use wiremock::matchers::{method, path};

/// The mock's state serving `default` and `team-a`.
fn state_with_team_a(pki: &Pki, api: &TlsMock) -> AppState {
    state_with_policy(
        pki,
        api,
        policy_with(RunDefaults::default(), Templates::default(), &["team-a"]),
    )
}

// ---------------------------------------------------------------------------------
// In an allowed namespace

#[tokio::test]
async fn a_run_in_an_allowed_namespace_is_posted_there() {
    let (pki, api) = apiserver().await;
    // The recorded create answer, moved to team-a.
    mount_create(
        &api,
        "team-a",
        replay_edited("57_job_create_201", |b| {
            b["metadata"]["namespace"] = "team-a".into()
        }),
    )
    .await;
    let state = state_with_team_a(&pki, &api);
    let run = json!({"image": "busybox:1.36", "argv": ["true"]});
    let mut in_body = run.clone();
    in_body["namespace"] = "team-a".into();
    let mut both = in_body.clone();
    both["run_id"] = RUN_ID.into();
    for (p, body) in [
        ("/api/test-runs?namespace=team-a", run),
        ("/api/test-runs", in_body),
        ("/api/test-runs?namespace=team-a", both),
    ] {
        let (code, reply) = post_run(&state, p, body.clone()).await;
        assert_eq!(code, 201, "{p} {body}: {reply}");
        assert_eq!(reply["namespace"], "team-a", "{reply}");
    }
    let posts = received(&api).await;
    assert_eq!(posts.len(), 3);
    for post in &posts {
        assert_eq!(post.url.path(), "/apis/batch/v1/namespaces/team-a/jobs");
        assert_eq!(json_body(post)["metadata"]["namespace"], "team-a");
    }
}

#[tokio::test]
async fn status_in_an_allowed_namespace_reads_that_namespace() {
    let (pki, api) = apiserver().await;
    // The recorded completed Job, moved to team-a.
    Mock::given(method("GET"))
        .and(path("/apis/batch/v1/namespaces/team-a/jobs/test-job-123"))
        .and(Query::none())
        .and(bearer())
        .respond_with(replay_edited("09_job_get_completed", |b| {
            b["metadata"]["namespace"] = "team-a".into()
        }))
        .mount(&api.mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/team-a/pods"))
        .and(bearer())
        .respond_with(replay("24_pods_list_no_match"))
        .mount(&api.mock)
        .await;
    let state = state_with_team_a(&pki, &api);
    let (code, body) = request(
        &state,
        "GET",
        "/api/k8s/jobs/test-job-123/status?namespace=team-a",
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["job_name"], "test-job-123");
    assert_eq!(body["namespace"], "team-a");
    assert_eq!(body["status"], "completed");
    let paths: Vec<String> = received(&api)
        .await
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect();
    assert_eq!(
        paths,
        [
            "GET /apis/batch/v1/namespaces/team-a/jobs/test-job-123",
            "GET /api/v1/namespaces/team-a/pods"
        ]
    );
}

#[tokio::test]
async fn the_job_list_of_an_allowed_namespace_reads_that_namespace() {
    let (pki, api) = apiserver().await;
    mount_list(
        &api,
        "team-a",
        "labelSelector=app%3Dsparktest&limit=100",
        replay("16_job_list_labelselector"),
    )
    .await;
    mount_running_pods(&api, "team-a").await;
    let state = state_with_team_a(&pki, &api);
    let (code, body) = request(&state, "GET", "/api/k8s/jobs?namespace=team-a", None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["namespace"], "team-a");
    let paths: Vec<String> = received(&api)
        .await
        .iter()
        .map(|r| r.url.path().to_string())
        .collect();
    assert_eq!(
        paths,
        [
            "/apis/batch/v1/namespaces/team-a/jobs",
            "/api/v1/namespaces/team-a/pods"
        ]
    );
}

// ---------------------------------------------------------------------------------
// Refused before any call

#[tokio::test]
async fn query_and_body_namespaces_disagreeing_is_400_without_a_call() {
    let (pki, api) = apiserver().await;
    let state = state_with_team_a(&pki, &api);
    for (p, ns) in [
        ("/api/test-runs?namespace=team-a", "default"),
        ("/api/test-runs?namespace=default", "team-a"),
    ] {
        let (code, body) = post_run(
            &state,
            p,
            json!({"namespace": ns, "image": "busybox:1.36", "argv": ["true"]}),
        )
        .await;
        assert_eq!(code, 400, "{p} {ns}: {body}");
        assert_eq!(body["error_type"], "ValidationError");
        assert!(
            body["message"].as_str().unwrap().contains("namespace"),
            "{body}"
        );
    }
    assert_no_apiserver_call(&api, "disagreeing namespaces").await;
}

/// Every endpoint that takes `?namespace=`, with `{ns}` to fill in.
const NAMESPACED: &[(&str, &str)] = &[
    ("POST", "/api/test-runs?namespace={ns}"),
    ("GET", "/api/k8s/jobs?namespace={ns}"),
    ("GET", "/api/k8s/jobs/test-job-123/status?namespace={ns}"),
    ("GET", "/api/k8s/jobs/test-job-123/logs?namespace={ns}"),
    (
        "GET",
        "/api/test-runs/550e8400-e29b-41d4-a716-446655440000/logs?namespace={ns}",
    ),
    ("DELETE", "/api/k8s/jobs/test-job-123?namespace={ns}"),
    ("GET", "/api/k8s/jobs/test-job-123/watch?namespace={ns}"),
    ("GET", "/api/k8s/jobs/test-job-123/events?namespace={ns}"),
    (
        "GET",
        "/api/k8s/jobs/test-job-123/logs/stream?namespace={ns}",
    ),
    (
        "GET",
        "/api/test-runs/550e8400-e29b-41d4-a716-446655440000/logs/stream?namespace={ns}",
    ),
];

async fn call_namespaced(state: &AppState, m: &str, p: &str) -> (u16, Value) {
    let body = (m == "POST").then(|| json!({"image": "busybox:1.36", "argv": ["true"]}));
    request(state, m, p, body).await
}

#[tokio::test]
async fn a_namespace_not_allowed_is_403_on_every_endpoint_without_a_call() {
    let (pki, api) = apiserver().await;
    let state = state_with_team_a(&pki, &api);
    for ns in ["team-b", "kube-system"] {
        for (m, p) in NAMESPACED {
            let p = p.replace("{ns}", ns);
            let (code, body) = call_namespaced(&state, m, &p).await;
            assert_eq!(code, 403, "{m} {p}: {body}");
            assert_eq!(body["error_type"], "AuthenticationError", "{m} {p}: {body}");
            let message = body["message"].as_str().unwrap();
            assert!(
                message.contains(ns) && message.contains("team-a"),
                "{m} {p}: names the namespace and the allowed ones: {message}"
            );
        }
    }
    // A namespace only in the body is held to the same rule.
    let (code, body) = post_run(
        &state,
        "/api/test-runs",
        json!({"namespace": "team-b", "image": "busybox:1.36", "argv": ["true"]}),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert_no_apiserver_call(&api, "namespace not allowed").await;
}

#[tokio::test]
async fn an_invalid_namespace_name_is_400_on_every_endpoint_without_a_call() {
    let (pki, api) = apiserver().await;
    let state = state_with_team_a(&pki, &api);
    for ns in ["Bad_Name", "", "team-a%2F..", &"a".repeat(64)] {
        for (m, p) in NAMESPACED {
            let p = p.replace("{ns}", ns);
            let (code, body) = call_namespaced(&state, m, &p).await;
            assert_eq!(code, 400, "{m} {p}: {body}");
            assert_eq!(body["error_type"], "ValidationError", "{m} {p}: {body}");
        }
    }
    assert_no_apiserver_call(&api, "invalid namespace names").await;
}

#[tokio::test]
async fn a_misspelt_namespace_parameter_is_400_not_the_home_namespace() {
    let (pki, api) = apiserver().await;
    let state = state_for(&pki, &api);
    for (m, target) in [
        ("GET", "/api/k8s/jobs/test-job-123/status?namepsace=team-a"),
        ("DELETE", "/api/k8s/jobs/test-job-123?namepsace=team-a"),
        ("GET", "/api/k8s/jobs/test-job-123/events?namepsace=team-a"),
    ] {
        let (code, body) = call(&state, m, target).await;
        assert_eq!(code, 400, "{m} {target}: {body}");
    }
    let (code, body) = post_run(
        &state,
        "/api/test-runs?namepsace=team-a",
        json!({"image": "busybox:1.36", "argv": ["a"]}),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert_no_apiserver_call(&api, "misspelt namespace parameter").await;
}

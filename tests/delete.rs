//! Contract tests of `DELETE /api/k8s/jobs/{job_name}`: the Job is read first and only
//! one SparkTest manages is deleted (any Job with `delete_unmanaged`); the DELETE the
//! apiserver receives carries background propagation and the uid of the Job that was
//! checked, so a Job replaced in between is a 409 and not deleted. Each request goes
//! through the whole warp filter tree to a TLS mock of the apiserver replaying answers
//! recorded from a real kube-apiserver (fixtures/recorded/).

mod common;

use common::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The Job `test-job-delete-me` as the apiserver returned it on creation (57).
fn delete_me() -> serde_json::Value {
    serde_json::from_slice(&recorded("57_job_create_201").body).unwrap()
}

async fn mount_get(mock: &MockServer, name: &str, job: serde_json::Value) {
    Mock::given(method("GET"))
        .and(path(format!(
            "/apis/batch/v1/namespaces/default/jobs/{name}"
        )))
        .and(bearer())
        .respond_with(ResponseTemplate::new(200).set_body_json(job))
        .mount(mock)
        .await;
}

#[tokio::test]
async fn delete_sends_background_propagation_with_the_uid_precondition() {
    let (pki, api) = apiserver().await;
    let job = delete_me();
    mount_get(&api.mock, "test-job-delete-me", job.clone()).await;
    // The recorded request body of 61, plus the uid of the Job that was checked.
    let mut options = recorded_request_body("61_job_delete_background");
    options["preconditions"] = serde_json::json!({"uid": job["metadata"]["uid"]});
    Mock::given(method("DELETE"))
        .and(path(
            "/apis/batch/v1/namespaces/default/jobs/test-job-delete-me",
        ))
        .and(Query::none())
        .and(bearer())
        .and(wiremock::matchers::header(
            "content-type",
            "application/json",
        ))
        .and(wiremock::matchers::body_json(options))
        .respond_with(replay("61_job_delete_background"))
        .expect(1)
        .mount(&api.mock)
        .await;
    let (code, body) = call(
        &state_for(&pki, &api),
        "DELETE",
        "/api/k8s/jobs/test-job-delete-me",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["message"],
        "Job 'test-job-delete-me' deleted successfully"
    );
    assert!(is_reply_timestamp(&body["timestamp"]));
}

fn recorded_request_body(name: &str) -> serde_json::Value {
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(recorded_dir().join(format!("{name}.meta.json"))).unwrap(),
    )
    .unwrap();
    meta["request_body"].clone()
}

async fn expect_no_delete(mock: &MockServer) {
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(mock)
        .await;
}

#[tokio::test]
async fn delete_of_a_missing_job_is_404_and_nothing_is_deleted() {
    let (pki, api) = apiserver().await;
    Mock::given(method("GET"))
        .respond_with(replay("14_job_get_not_found"))
        .mount(&api.mock)
        .await;
    expect_no_delete(&api.mock).await;
    let (code, body) = call(
        &state_for(&pki, &api),
        "DELETE",
        "/api/k8s/jobs/test-job-delete-me",
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(body["error_type"], "NotFoundError");
}

#[tokio::test]
async fn a_job_sparktest_does_not_manage_is_not_deleted() {
    let (pki, api) = apiserver().await;
    let mut job = delete_me();
    job["metadata"]["labels"] = serde_json::json!({"team": "payments"});
    mount_get(&api.mock, "test-job-delete-me", job).await;
    expect_no_delete(&api.mock).await;
    let (code, body) = call(
        &state_for(&pki, &api),
        "DELETE",
        "/api/k8s/jobs/test-job-delete-me",
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["error_type"], "AuthenticationError");
    assert!(body["message"].as_str().unwrap().contains("managed-by"));
}

#[tokio::test]
async fn the_managed_by_label_alone_is_enough() {
    let (pki, api) = apiserver().await;
    let mut job = delete_me();
    job["metadata"]["labels"] = serde_json::json!({"app.kubernetes.io/managed-by": "sparktest"});
    mount_get(&api.mock, "test-job-delete-me", job).await;
    Mock::given(method("DELETE"))
        .respond_with(replay("61_job_delete_background"))
        .expect(1)
        .mount(&api.mock)
        .await;
    let (code, _) = call(
        &state_for(&pki, &api),
        "DELETE",
        "/api/k8s/jobs/test-job-delete-me",
    )
    .await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn delete_unmanaged_allows_any_job() {
    let (pki, api) = apiserver().await;
    let mut job = delete_me();
    job["metadata"]["labels"] = serde_json::json!({});
    mount_get(&api.mock, "test-job-delete-me", job).await;
    Mock::given(method("DELETE"))
        .respond_with(replay("61_job_delete_background"))
        .expect(1)
        .mount(&api.mock)
        .await;
    let base = state_for(&pki, &api);
    let state = sparktest_k8s::AppState::with_policy(
        base.connection().clone(),
        "default".parse().unwrap(),
        base.log_limits(),
        base.stream_limits(),
        sparktest_k8s::state::Policy {
            delete_unmanaged: true,
            ..Default::default()
        },
    );
    let (code, _) = call(&state, "DELETE", "/api/k8s/jobs/test-job-delete-me").await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn a_job_replaced_since_it_was_checked_is_a_409() {
    let (pki, api) = apiserver().await;
    mount_get(&api.mock, "test-job-delete-me", delete_me()).await;
    Mock::given(method("DELETE"))
        .respond_with(replay("58_job_create_conflict_409"))
        .mount(&api.mock)
        .await;
    let (code, body) = call(
        &state_for(&pki, &api),
        "DELETE",
        "/api/k8s/jobs/test-job-delete-me",
    )
    .await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["error_type"], "KubernetesError");
}

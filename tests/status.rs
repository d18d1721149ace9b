//! Contract tests of `GET /api/k8s/jobs/{job_name}/status`: the status of a Job in each
//! state the recorded answers show (completed, failed, running, pending on an image pull
//! or on the scheduler, suspended, being deleted, missing). Each request goes through the
//! whole warp filter tree to a TLS mock of the apiserver replaying answers recorded from
//! a real kube-apiserver (fixtures/recorded/). How the apiserver's errors become replies
//! is pinned in `tests/errors.rs`, status from the watch cache in `tests/caches.rs`, and
//! status in another namespace in `tests/namespaces.rs`.

mod common;

use common::*;
use wiremock::Mock;
use wiremock::matchers::{method, path};

#[tokio::test]
async fn status_of_a_completed_job() {
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "09_job_get_completed",
        Some("19_pods_list_job_completed"),
    )
    .await;
    let (code, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-123/status",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["job_name"], "test-job-123");
    assert_eq!(body["status"], "completed");
    assert!(is_reply_timestamp(&body["timestamp"]), "{body}");
    assert_eq!(body["succeeded"], 1);
    assert_eq!(body["start_time"], "2026-11-26T11:48:17Z");
    assert_eq!(body["completion_time"], "2026-11-26T11:48:22Z");
}

#[tokio::test]
async fn status_of_a_failed_job_carries_the_conditions_reason() {
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "10_job_get_failed",
        Some("20_pods_list_job_failed"),
    )
    .await;
    let (code, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-failed/status",
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["status"], "failed");
    assert_eq!(body["reason"], "BackoffLimitExceeded");
    assert_eq!(body["failed"], 1);
}

#[tokio::test]
async fn status_of_a_running_job_without_conditions_is_running() {
    // 1.24 Jobs have no `ready` count: the pods tell running from pending.
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "11_job_get_running",
        Some("21_pods_list_job_running"),
    )
    .await;
    let (_, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-running/status",
    )
    .await;
    assert_eq!(body["status"], "running", "{body}");
    assert_eq!(body["active"], 1);
}

#[tokio::test]
async fn status_of_a_job_whose_pod_cannot_pull_its_image_is_pending_with_the_reason() {
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "85_job_get_imagepull",
        Some("86_pods_list_job_imagepull"),
    )
    .await;
    let (_, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-imagepull/status",
    )
    .await;
    assert_eq!(body["status"], "pending", "{body}");
    assert_eq!(body["reason"], "ImagePullBackOff");
}

#[tokio::test]
async fn status_of_an_unschedulable_job_is_pending_with_the_schedulers_message() {
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "81_job_get_unscheduled",
        Some("82_pods_list_job_unscheduled"),
    )
    .await;
    let (_, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-unscheduled/status",
    )
    .await;
    assert_eq!(body["status"], "pending", "{body}");
    assert_eq!(body["reason"], "Unschedulable");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Insufficient cpu"),
        "{body}"
    );
}

#[tokio::test]
async fn status_of_a_suspended_job() {
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "79_job_get_suspended",
        Some("80_pods_list_job_suspended"),
    )
    .await;
    let (_, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-suspended/status",
    )
    .await;
    assert_eq!(body["status"], "suspended");
    assert_eq!(body["reason"], "JobSuspended");
}

#[tokio::test]
async fn status_of_a_job_being_deleted_is_terminating() {
    let (pki, api) = apiserver().await;
    Mock::given(path(
        "/apis/batch/v1/namespaces/default/jobs/test-job-delete-fg",
    ))
    .respond_with(replay("66_job_get_during_foreground_delete"))
    .mount(&api.mock)
    .await;
    // Its pods are gone already (foreground deletion removes them first).
    Mock::given(path("/api/v1/namespaces/default/pods"))
        .respond_with(replay("24_pods_list_no_match"))
        .mount(&api.mock)
        .await;
    let (_, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-delete-fg/status",
    )
    .await;
    assert_eq!(body["status"], "terminating", "{body}");
}

#[tokio::test]
async fn status_of_a_missing_job_is_404() {
    let (pki, api) = apiserver().await;
    Mock::given(path(
        "/apis/batch/v1/namespaces/default/jobs/does-not-exist",
    ))
    .respond_with(replay("14_job_get_not_found"))
    .mount(&api.mock)
    .await;
    let (code, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/does-not-exist/status",
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(body["error_type"], "NotFoundError");
    assert!(body["message"].as_str().unwrap().contains("does-not-exist"));
    assert!(is_reply_timestamp(&body["timestamp"]));
}

#[tokio::test]
async fn concurrent_polls_of_one_job_share_one_apiserver_read_and_reuse_it() {
    // The documented Role has no `watch`, so there is no job cache: 30 callers polling
    // the same job at once make one Job GET and one pod list, not 30 of each.
    let (pki, api) = apiserver().await;
    let job: serde_json::Value =
        serde_json::from_slice(&recorded("11_job_get_running").body).unwrap();
    let uid = job["spec"]["selector"]["matchLabels"]["controller-uid"]
        .as_str()
        .unwrap()
        .to_string();
    Mock::given(method("GET"))
        .and(path(
            "/apis/batch/v1/namespaces/default/jobs/test-job-running",
        ))
        .respond_with(replay("11_job_get_running").set_delay(std::time::Duration::from_millis(200)))
        .expect(1)
        .mount(&api.mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/default/pods"))
        .and(Query::exact(&format!(
            "labelSelector=controller-uid%3D{uid}"
        )))
        .respond_with(replay("21_pods_list_job_running"))
        .expect(1)
        .mount(&api.mock)
        .await;
    let state = state_with_policy(
        &pki,
        &api,
        sparktest_k8s::state::Policy {
            answer_reuse: std::time::Duration::from_secs(60),
            ..sparktest_k8s::state::Policy::default()
        },
    );
    let polls: Vec<_> = (0..30)
        .map(|_| {
            let state = state.clone();
            tokio::spawn(async move {
                call(&state, "GET", "/api/k8s/jobs/test-job-running/status").await
            })
        })
        .collect();
    for poll in polls {
        let (code, body) = poll.await.unwrap();
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["status"], "running");
    }
    // A poll after them reuses the answer; the mocks' expect(1) check the apiserver saw
    // one of each.
    let (code, _) = call(&state, "GET", "/api/k8s/jobs/test-job-running/status").await;
    assert_eq!(code, 200);
}

//! Contract tests of the job endpoints: each request goes through the whole warp filter
//! tree to a TLS mock of the apiserver replaying answers recorded from a real
//! kube-apiserver (fixtures/recorded/), and the exact requests the apiserver receives
//! are asserted (method, path, query, Authorization).

mod common;

use common::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The default log query: the main container, 1000 lines, timestamps, 10 MiB + 1 byte.
const DEFAULT_LOG_QUERY: &str = "container=main&tailLines=1000&timestamps=true&limitBytes=10485761";

fn text(fixture: &str) -> String {
    String::from_utf8(recorded(fixture).body).unwrap()
}

fn is_reply_timestamp(v: &serde_json::Value) -> bool {
    let s = v.as_str().unwrap_or_default();
    s.len() == 20 && s.ends_with('Z') && sparktest_k8s::time::parse_rfc3339(s).is_some()
}

// ---------------------------------------------------------------------------------
// Status

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

// ---------------------------------------------------------------------------------
// Logs

#[tokio::test]
async fn logs_of_a_completed_job_as_kubectl_shows_them() {
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "09_job_get_completed",
        Some("19_pods_list_job_completed"),
    )
    .await;
    mount_log(
        &api.mock,
        "test-job-123-h6gvc",
        DEFAULT_LOG_QUERY,
        "28_log_completed_timestamps",
    )
    .await;
    let (code, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-123/logs",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["job_name"], "test-job-123");
    assert_eq!(body["pod_name"], "test-job-123-h6gvc");
    assert_eq!(body["logs"], text("28_log_completed_timestamps"));
    assert_eq!(body["status"], "completed");
    assert_eq!(body["container"], "main");
    assert_eq!(body["truncated"], false);
    assert!(is_reply_timestamp(&body["timestamp"]));
}

#[tokio::test]
async fn logs_of_a_failed_job() {
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "10_job_get_failed",
        Some("20_pods_list_job_failed"),
    )
    .await;
    mount_log(
        &api.mock,
        "test-job-failed-pg55l",
        DEFAULT_LOG_QUERY,
        "33_log_failed",
    )
    .await;
    let (_, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-failed/logs",
    )
    .await;
    assert_eq!(body["logs"], text("33_log_failed"));
    assert_eq!(body["status"], "failed");
}

#[tokio::test]
async fn logs_of_a_running_job() {
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "11_job_get_running",
        Some("21_pods_list_job_running"),
    )
    .await;
    mount_log(
        &api.mock,
        "test-job-running-dvhw8",
        DEFAULT_LOG_QUERY,
        "42_log_running",
    )
    .await;
    let (_, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-running/logs",
    )
    .await;
    assert_eq!(body["logs"], text("42_log_running"));
    assert_eq!(body["status"], "running");
}

#[tokio::test]
async fn logs_of_a_retried_job_come_from_the_pod_kubectl_picks() {
    // Both pods are assigned and finished; kubectl's ByLogging order ranks Failed and
    // Succeeded alike and then prefers the older pod: the first, failed attempt.
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "13_job_get_retry_failed_then_succeeded",
        Some("23_pods_list_job_retry_two_pods"),
    )
    .await;
    mount_log(
        &api.mock,
        "test-job-retry-pv8j6",
        DEFAULT_LOG_QUERY,
        "34_log_retry_first_failed_pod",
    )
    .await;
    let (_, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-retry/logs",
    )
    .await;
    assert_eq!(body["pod_name"], "test-job-retry-pv8j6", "{body}");
    assert_eq!(body["pod_count"], 2);
    assert_eq!(body["logs"], text("34_log_retry_first_failed_pod"));
}

/// One pod of a recorded pod list, as `GET pods/NAME` answers it.
fn pod_of(list_fixture: &str, name: &str) -> serde_json::Value {
    let list: serde_json::Value = serde_json::from_slice(&recorded(list_fixture).body).unwrap();
    let mut pod = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["metadata"]["name"] == name)
        .unwrap()
        .clone();
    pod["kind"] = "Pod".into();
    pod["apiVersion"] = "v1".into();
    pod
}

#[tokio::test]
async fn logs_of_another_pod_of_the_job_with_the_pod_parameter() {
    let (pki, api) = apiserver().await;
    // With ?pod= the pod is read by name (pods get), not listed.
    mount_job(&api.mock, "13_job_get_retry_failed_then_succeeded", None).await;
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/default/pods/test-job-retry-wdgs5"))
        .and(bearer())
        .respond_with(ResponseTemplate::new(200).set_body_json(pod_of(
            "23_pods_list_job_retry_two_pods",
            "test-job-retry-wdgs5",
        )))
        .expect(1)
        .mount(&api.mock)
        .await;
    mount_log(
        &api.mock,
        "test-job-retry-wdgs5",
        DEFAULT_LOG_QUERY,
        "35_log_retry_second_succeeded_pod",
    )
    .await;
    let (_, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-retry/logs?pod=test-job-retry-wdgs5",
    )
    .await;
    assert_eq!(body["pod_name"], "test-job-retry-wdgs5", "{body}");
    assert_eq!(body["logs"], text("35_log_retry_second_succeeded_pod"));
}

#[tokio::test]
async fn a_pod_that_is_not_the_jobs_is_404_and_no_log_is_read() {
    let (pki, api) = apiserver().await;
    mount_job(&api.mock, "13_job_get_retry_failed_then_succeeded", None).await;
    // test-job-123's pod exists, but the retry job's selector does not select it.
    Mock::given(path("/api/v1/namespaces/default/pods/test-job-123-h6gvc"))
        .respond_with(replay("25_pod_get_completed"))
        .mount(&api.mock)
        .await;
    Mock::given(path("/api/v1/namespaces/default/pods/does-not-exist"))
        .respond_with(replay("26_pod_get_not_found"))
        .mount(&api.mock)
        .await;
    let state = state_for(&pki, &api);
    for pod in ["test-job-123-h6gvc", "does-not-exist"] {
        let (code, body) = call(
            &state,
            "GET",
            &format!("/api/k8s/jobs/test-job-retry/logs?pod={pod}"),
        )
        .await;
        assert_eq!(code, 404, "{pod}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("not a pod of job")
        );
    }
    let logs_read = api
        .mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/log"))
        .count();
    assert_eq!(logs_read, 0);
}

#[tokio::test]
async fn test_run_logs_read_job_test_run_id_with_two_containers() {
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "12_job_get_uuid_name",
        Some("22_pods_list_job_uuid_two_containers"),
    )
    .await;
    mount_log(
        &api.mock,
        "test-run-550e8400-e29b-41d4-a716-446655440000-d75q9",
        DEFAULT_LOG_QUERY,
        "37_log_two_containers_main",
    )
    .await;
    let (code, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/test-runs/550e8400-e29b-41d4-a716-446655440000/logs",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["job_name"],
        "test-run-550e8400-e29b-41d4-a716-446655440000"
    );
    assert_eq!(body["container"], "main");
    assert_eq!(body["logs"], text("37_log_two_containers_main"));
}

#[tokio::test]
async fn all_containers_are_prefixed_like_kubectl_logs_prefix() {
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "12_job_get_uuid_name",
        Some("22_pods_list_job_uuid_two_containers"),
    )
    .await;
    let pod = "test-run-550e8400-e29b-41d4-a716-446655440000-d75q9";
    mount_log(
        &api.mock,
        pod,
        "container=main&tailLines=1000&timestamps=true&limitBytes=10485761",
        "37_log_two_containers_main",
    )
    .await;
    // The room left after main's bytes (and their prefixes) is what the sidecar may send.
    Mock::given(path(format!("/api/v1/namespaces/default/pods/{pod}/log")))
        .and(wiremock::matchers::query_param("container", "sidecar"))
        .respond_with(replay("38_log_two_containers_sidecar"))
        .expect(1)
        .mount(&api.mock)
        .await;
    let (_, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/test-runs/550e8400-e29b-41d4-a716-446655440000/logs?all_containers=true",
    )
    .await;
    let logs = body["logs"].as_str().unwrap();
    let main_prefix = format!("[pod/{pod}/main] ");
    let sidecar_prefix = format!("[pod/{pod}/sidecar] ");
    let expected: String = text("37_log_two_containers_main")
        .lines()
        .map(|l| format!("{main_prefix}{l}\n"))
        .chain(
            text("38_log_two_containers_sidecar")
                .lines()
                .map(|l| format!("{sidecar_prefix}{l}\n")),
        )
        .collect();
    assert_eq!(logs, expected);
    assert!(body.get("container").is_none());
}

#[tokio::test]
async fn query_parameters_are_passed_through_and_capped() {
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "09_job_get_completed",
        Some("19_pods_list_job_completed"),
    )
    .await;
    // tail 5000 is capped at --max-log-lines (1000); limit_bytes is passed +1.
    mount_log(
        &api.mock,
        "test-job-123-h6gvc",
        "container=main&tailLines=1000&sinceSeconds=3600&previous=true&limitBytes=21",
        "30_log_completed_limitBytes20",
    )
    .await;
    let (code, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-123/logs?tail=5000&timestamps=false&since_seconds=3600&previous=true&limit_bytes=20&container=main",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["logs"], text("30_log_completed_limitBytes20"));
    assert_eq!(body["truncated"], false, "20 bytes asked, 20 returned");
}

#[tokio::test]
async fn since_time_is_normalised_and_sent() {
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "11_job_get_running",
        Some("21_pods_list_job_running"),
    )
    .await;
    mount_log(
        &api.mock,
        "test-job-running-dvhw8",
        "container=main&tailLines=2&timestamps=true&sinceTime=2026-11-26T11%3A48%3A24Z&limitBytes=10485761",
        "104_log_running_sinceTime_within",
    )
    .await;
    let (code, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-running/logs?tail=2&since_time=2026-11-26T12:48:24%2B01:00",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["logs"], text("104_log_running_sinceTime_within"));
}

#[tokio::test]
async fn a_log_longer_than_the_cap_is_cut_and_marked_truncated() {
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "09_job_get_completed",
        Some("19_pods_list_job_completed"),
    )
    .await;
    mount_log(
        &api.mock,
        "test-job-123-h6gvc",
        "container=main&tailLines=1000&timestamps=true&limitBytes=101",
        "28_log_completed_timestamps",
    )
    .await;
    let limits = sparktest_k8s::state::LogLimits {
        max_lines: 1000,
        max_bytes: 100,
    };
    let full = text("28_log_completed_timestamps");
    assert!(full.len() > 100, "the fixture must be longer than the cap");
    let (_, body) = call(
        &state_with_limits(&pki, &api, limits),
        "GET",
        "/api/k8s/jobs/test-job-123/logs",
    )
    .await;
    assert_eq!(body["truncated"], true);
    assert_eq!(body["logs"], full[..100]);
}

#[tokio::test]
async fn an_unknown_container_is_400_before_any_log_call() {
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
        "/api/k8s/jobs/test-job-123/logs?container=nope",
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(body["error_type"], "ValidationError");
    assert!(body["message"].as_str().unwrap().contains("main"), "{body}");
}

#[tokio::test]
async fn an_unschedulable_pod_gives_empty_logs_with_the_reason_not_an_error() {
    // The apiserver answers 204 with no body for a pod that has no node.
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "81_job_get_unscheduled",
        Some("82_pods_list_job_unscheduled"),
    )
    .await;
    mount_log(
        &api.mock,
        "test-job-unscheduled-97ng2",
        DEFAULT_LOG_QUERY,
        "83_log_unscheduled_pod_no_node",
    )
    .await;
    let (code, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-unscheduled/logs",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["logs"], "");
    assert_eq!(body["status"], "pending");
    assert!(
        body["message"].as_str().unwrap().contains("Unschedulable"),
        "{body}"
    );
}

#[tokio::test]
async fn an_image_pull_backoff_gives_empty_logs_with_the_kubelets_message() {
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "85_job_get_imagepull",
        Some("86_pods_list_job_imagepull"),
    )
    .await;
    mount_log(
        &api.mock,
        "test-job-imagepull-qbf8z",
        DEFAULT_LOG_QUERY,
        "87_log_imagepull_waiting",
    )
    .await;
    let (code, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-imagepull/logs",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["logs"], "");
    assert_eq!(body["status"], "pending");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("waiting to start") && message.contains("ImagePullBackOff"),
        "{message}"
    );
}

#[tokio::test]
async fn a_suspended_job_without_pods_gives_empty_logs_with_a_message() {
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "79_job_get_suspended",
        Some("80_pods_list_job_suspended"),
    )
    .await;
    let (code, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-suspended/logs",
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["logs"], "");
    assert_eq!(body["pod_name"], "");
    assert_eq!(body["status"], "suspended");
    assert!(body["message"].as_str().unwrap().contains("suspended"));
}

#[tokio::test]
async fn a_finished_job_whose_pods_were_cleaned_up_says_so() {
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "09_job_get_completed",
        Some("24_pods_list_no_match"),
    )
    .await;
    let (code, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-123/logs",
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["logs"], "");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no longer exist"),
        "{body}"
    );
}

#[tokio::test]
async fn logs_of_a_missing_job_are_404() {
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
        "/api/k8s/jobs/does-not-exist/logs",
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(body["error_type"], "NotFoundError");
}

// ---------------------------------------------------------------------------------
// Delete

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

// ---------------------------------------------------------------------------------
// The watch-backed job cache

#[tokio::test]
async fn status_is_served_from_the_watch_backed_cache() {
    let (pki, api) = apiserver().await;
    // The namespace's jobs: one list (the recorded JobList, one page), then a watch
    // that stays open.
    Mock::given(method("GET"))
        .and(path("/apis/batch/v1/namespaces/default/jobs"))
        .and(Query::exact("limit=500"))
        .and(bearer())
        .respond_with(replay("68_job_list_final"))
        .expect(1)
        .mount(&api.mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/apis/batch/v1/namespaces/default/jobs"))
        .and(wiremock::matchers::query_param("watch", "true"))
        .and(wiremock::matchers::query_param(
            "allowWatchBookmarks",
            "true",
        ))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(60)))
        .mount(&api.mock)
        .await;
    let state = state_for(&pki, &api);
    state.start_caches();
    let cache = &state.caches(&"default".parse().unwrap()).unwrap().jobs;
    until_synced(|| cache.is_synced()).await;
    let list: serde_json::Value =
        serde_json::from_slice(&recorded("68_job_list_final").body).unwrap();
    let name = list["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    // Its pods (for the timeline): not SparkTest's, so not in the pod cache.
    let uid = list["items"][0]["metadata"]["uid"].as_str().unwrap();
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/default/pods"))
        .and(Query::exact(&format!(
            "labelSelector=controller-uid%3D{uid}"
        )))
        .respond_with(replay("24_pods_list_no_match"))
        .mount(&api.mock)
        .await;
    for _ in 0..20 {
        let (code, body) = call(&state, "GET", &format!("/api/k8s/jobs/{name}/status")).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["job_name"], name.as_str());
    }
    let job_reads = api
        .mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| {
            r.url
                .path()
                .starts_with("/apis/batch/v1/namespaces/default/jobs/")
        })
        .count();
    assert_eq!(job_reads, 0, "20 status requests, no direct job read");
    // A job the cache does not hold is read directly.
    Mock::given(method("GET"))
        .and(path(
            "/apis/batch/v1/namespaces/default/jobs/does-not-exist",
        ))
        .respond_with(replay("14_job_get_not_found"))
        .expect(1)
        .mount(&api.mock)
        .await;
    let (code, _) = call(&state, "GET", "/api/k8s/jobs/does-not-exist/status").await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn logs_of_a_managed_run_take_its_pods_from_the_pod_cache() {
    let (pki, api) = apiserver().await;
    let uid = mount_job(
        &api.mock,
        "09_job_get_completed",
        Some("19_pods_list_job_completed"),
    )
    .await;
    mount_log(
        &api.mock,
        "test-job-123-h6gvc",
        DEFAULT_LOG_QUERY,
        "28_log_completed_timestamps",
    )
    .await;
    // The pods of SparkTest's runs: the recorded list, each pod carrying the label its
    // Job's template gives it; then a watch that stays open.
    let mut pods: serde_json::Value =
        serde_json::from_slice(&recorded("19_pods_list_job_completed").body).unwrap();
    for pod in pods["items"].as_array_mut().unwrap() {
        pod["metadata"]["labels"]["app"] = "sparktest".into();
    }
    let managed = || wiremock::matchers::query_param("labelSelector", "app=sparktest");
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/default/pods"))
        .and(managed())
        .and(wiremock::matchers::query_param("watch", "true"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(60)))
        .mount(&api.mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/default/pods"))
        .and(managed())
        .and(bearer())
        .respond_with(ResponseTemplate::new(200).set_body_json(&pods))
        .expect(1)
        .mount(&api.mock)
        .await;
    let state = state_for(&pki, &api);
    state.start_caches();
    let cache = &state.caches(&"default".parse().unwrap()).unwrap().pods;
    until_synced(|| cache.is_synced()).await;
    let (code, body) = call(&state, "GET", "/api/k8s/jobs/test-job-123/logs").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["pod_name"], "test-job-123-h6gvc");
    assert_eq!(body["logs"], text("28_log_completed_timestamps"));
    let job_pod_lists = api
        .mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.query().is_some_and(|q| q.contains(&uid)))
        .count();
    assert_eq!(job_pod_lists, 0, "the job's pods came from the cache");
}

#[tokio::test]
async fn the_job_cache_lists_in_pages_and_starts_over_when_the_token_expires() {
    let (pki, api) = apiserver().await;
    let first: serde_json::Value =
        serde_json::from_slice(&recorded("17_job_list_limit2").body).unwrap();
    let token = first["metadata"]["continue"].as_str().unwrap();
    let second: serde_json::Value =
        serde_json::from_slice(&recorded("68_job_list_final").body).unwrap();
    let jobs = "/apis/batch/v1/namespaces/default/jobs";
    Mock::given(method("GET"))
        .and(path(jobs))
        .and(Query::exact("limit=500"))
        .respond_with(replay("17_job_list_limit2"))
        .expect(2)
        .mount(&api.mock)
        .await;
    // The second page: first the token has expired (a real 410, recorded), then it
    // is served.
    let next = format!(
        "limit=500&continue={}",
        sparktest_k8s::kube::resources::encode(token)
    );
    Mock::given(method("GET"))
        .and(path(jobs))
        .and(Query::exact(&next))
        .respond_with(replay("97_job_list_rv1_exact_expired"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&api.mock)
        .await;
    Mock::given(method("GET"))
        .and(path(jobs))
        .and(Query::exact(&next))
        .respond_with(replay("68_job_list_final"))
        .expect(1)
        .mount(&api.mock)
        .await;
    Mock::given(method("GET"))
        .and(path(jobs))
        .and(wiremock::matchers::query_param("watch", "true"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(60)))
        .mount(&api.mock)
        .await;
    let state = state_for(&pki, &api);
    state.start_caches();
    let cache = &state.caches(&"default".parse().unwrap()).unwrap().jobs;
    until_synced(|| cache.is_synced()).await;
    for page in [&first, &second] {
        for job in page["items"].as_array().unwrap() {
            let name = job["metadata"]["name"].as_str().unwrap();
            assert!(cache.get(name).is_some(), "{name} is cached");
        }
    }
}

/// Waits (at most 2 s) until a cache has applied its first list.
async fn until_synced(synced: impl Fn() -> bool) {
    for _ in 0..200 {
        if synced() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the cache did not sync");
}

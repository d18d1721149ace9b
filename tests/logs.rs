//! Contract tests of the log endpoints, `GET /api/k8s/jobs/{job_name}/logs` and
//! `GET /api/test-runs/{run_id}/logs`: which pod and container are read (the pod
//! `kubectl logs` picks, or `?pod=` if it is the Job's), the exact log query the
//! apiserver receives (passed through, capped, normalised), truncation, and the empty
//! logs with a reason of a Job whose pods never ran or are gone. Each request goes through
//! the whole warp filter tree to a TLS mock of the apiserver replaying answers recorded
//! from a real kube-apiserver (fixtures/recorded/). The live streams (`.../logs/stream`)
//! are pinned in `tests/streams.rs`, logs from the pod cache in `tests/caches.rs`.

mod common;

use common::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

// ---------------------------------------------------------------------------------
// Which pod and container

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

// ---------------------------------------------------------------------------------
// The log query

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

// ---------------------------------------------------------------------------------
// Jobs without logs to read

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

//! What SparkTest's own frontend sends and reads (github.com/kevintatou/sparktest, its
//! Next.js app): the two bodies it posts to `POST /api/test-runs`, the paths its
//! backend calls (`/api/k8s/logs/{job}`, `/api/k8s/status/{job}`), and the timeline
//! its run page shows. Each request goes through the whole filter tree to a TLS mock
//! replaying answers recorded from a real kube-apiserver.

mod common;

use common::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request};

const DEFINITION_ID: &str = "7a1b2c3d-5e6f-4a1b-8c2d-3e4f5a6b7c8d";

async fn mount_create(api: &TlsMock) {
    Mock::given(method("POST"))
        .and(path("/apis/batch/v1/namespaces/default/jobs"))
        .and(bearer())
        .respond_with(replay("57_job_create_201"))
        .mount(&api.mock)
        .await;
}

async fn received(api: &TlsMock) -> Vec<Request> {
    api.mock.received_requests().await.unwrap()
}

/// The Job the service posted (the one request the apiserver received).
async fn posted_job(api: &TlsMock) -> Value {
    let all = received(api).await;
    assert_eq!(all.len(), 1, "one POST expected");
    serde_json::from_slice(&all[0].body).unwrap()
}

// ---------------------------------------------------------------------------------
// POST /api/test-runs as SparkTest sends it

#[tokio::test]
async fn the_definitions_page_body_creates_a_run_named_by_an_annotation() {
    let (pki, api) = apiserver().await;
    mount_create(&api).await;
    let state = state_for(&pki, &api);
    // apps/oss/app/definitions/page.tsx: {name, image, commands}.
    let (code, reply) = call_json(
        &state,
        "POST",
        "/api/test-runs",
        json!({"name": "Login flow (smoke)", "image": "node:20", "commands": ["npm ci", "npm test"]}),
    )
    .await;
    assert_eq!(code, 201, "{reply}");
    assert_eq!(reply["name"], "Login flow (smoke)");
    assert!(reply.get("test_definition_id").is_none(), "{reply}");

    let job = posted_job(&api).await;
    assert_eq!(
        job["metadata"]["annotations"],
        json!({"sparktest.dev/name": "Login flow (smoke)"})
    );
    assert!(
        job["metadata"]["labels"]
            .get("sparktest.dev/definition-id")
            .is_none(),
        "{job}"
    );
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["command"],
        json!(["sh", "-c", "npm ci && npm test"])
    );
}

#[tokio::test]
async fn the_new_test_form_body_labels_the_job_with_its_definition() {
    let (pki, api) = apiserver().await;
    mount_create(&api).await;
    let state = state_for(&pki, &api);
    // The new-test form: {test_definition_id, name, image, commands}; a name is free
    // text up to 253 characters, quotes and non-ASCII included.
    let name = format!("Checkout — \"EU\" {}", "x".repeat(230));
    let (code, reply) = call_json(
        &state,
        "POST",
        "/api/test-runs",
        json!({"test_definition_id": DEFINITION_ID, "name": name, "image": "python:3.12", "commands": ["pytest -q"]}),
    )
    .await;
    assert_eq!(code, 201, "{reply}");
    assert_eq!(reply["name"], name.as_str());
    assert_eq!(reply["test_definition_id"], DEFINITION_ID);

    let job = posted_job(&api).await;
    let labels = &job["metadata"]["labels"];
    assert_eq!(labels["sparktest.dev/definition-id"], DEFINITION_ID);
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"], *labels,
        "the pods carry the definition too"
    );
    assert_eq!(
        job["metadata"]["annotations"]["sparktest.dev/name"],
        name.as_str()
    );
}

#[tokio::test]
async fn a_bad_name_or_definition_id_or_a_misspelt_field_is_400_naming_it_without_a_call() {
    let (pki, api) = apiserver().await;
    mount_create(&api).await;
    let state = state_for(&pki, &api);
    let base = json!({"name": "n", "image": "busybox:1.36", "commands": ["true"]});
    for (edit, field) in [
        (json!({"timout_seconds": 60}), "timout_seconds"),
        (json!({"test_definition_id": "def-1"}), "test_definition_id"),
        (json!({"test_definition_id": 42}), "test_definition_id"),
        (json!({"name": "n".repeat(254)}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "two\nlines"}), "name"),
        (json!({"name": ["a"]}), "name"),
    ] {
        let mut body = base.clone();
        body.as_object_mut()
            .unwrap()
            .extend(edit.as_object().unwrap().clone());
        let (code, reply) = call_json(&state, "POST", "/api/test-runs", body).await;
        assert_eq!(code, 400, "{edit}: {reply}");
        assert_eq!(reply["error_type"], "ValidationError", "{reply}");
        assert_eq!(
            reply["details"]["fields"],
            json!([field]),
            "{edit}: {reply}"
        );
    }
    assert!(received(&api).await.is_empty(), "nothing was sent");
}

#[tokio::test]
async fn listed_jobs_carry_the_name_and_definition_they_were_started_with() {
    let (pki, api) = apiserver().await;
    let recorded = recorded("16_job_list_labelselector");
    let mut list: Value = serde_json::from_slice(&recorded.body).unwrap();
    let run = list["items"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|j| j["metadata"]["name"] == "test-run-550e8400-e29b-41d4-a716-446655440000")
        .unwrap();
    run["metadata"]["labels"]["sparktest.dev/definition-id"] = DEFINITION_ID.into();
    run["metadata"]["annotations"] = json!({"sparktest.dev/name": "Nightly API suite"});
    Mock::given(method("GET"))
        .and(path("/apis/batch/v1/namespaces/default/jobs"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_raw(serde_json::to_vec(&list).unwrap(), "application/json"),
        )
        .mount(&api.mock)
        .await;
    // The running job's pods, read for its status.
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/default/pods"))
        .respond_with(replay("21_pods_list_job_running"))
        .mount(&api.mock)
        .await;
    let (code, body) = call(&state_for(&pki, &api), "GET", "/api/k8s/jobs").await;
    assert_eq!(code, 200, "{body}");
    let rows = body["jobs"].as_array().unwrap();
    let row = rows
        .iter()
        .find(|r| r["run_id"] == "550e8400-e29b-41d4-a716-446655440000")
        .unwrap();
    assert_eq!(row["name"], "Nightly API suite");
    assert_eq!(row["test_definition_id"], DEFINITION_ID);
    let other = rows
        .iter()
        .find(|r| r["job_name"] == "test-job-123")
        .unwrap();
    assert!(other.get("name").is_none() && other.get("test_definition_id").is_none());
}

// ---------------------------------------------------------------------------------
// The paths SparkTest's backend calls: aliases of the documented ones

/// An answer without its `timestamp` (the one field that differs between two calls).
fn untimed(mut body: Value) -> Value {
    body.as_object_mut().unwrap().remove("timestamp");
    body
}

/// Calls `documented` and `alias` on fresh mocks set up by `mount` and asserts the
/// same status and body.
async fn assert_same_answer<F, Fut>(documented: &str, alias: &str, mount: F) -> (u16, Value)
where
    F: Fn(TlsMock) -> Fut,
    Fut: std::future::Future<Output = TlsMock>,
{
    let mut answers = Vec::new();
    for p in [documented, alias] {
        let (pki, api) = apiserver().await;
        let api = mount(api).await;
        let (code, body) = call(&state_for(&pki, &api), "GET", p).await;
        answers.push((code, untimed(body), received(&api).await));
    }
    let (code, body, requests) = &answers[0];
    assert_eq!(
        (code, body),
        (&answers[1].0, &answers[1].1),
        "{documented} vs {alias}"
    );
    let sent = |r: &[Request]| -> Vec<String> { r.iter().map(|r| r.url.to_string()).collect() };
    assert_eq!(
        sent(requests),
        sent(&answers[1].2),
        "the same apiserver calls"
    );
    (*code, body.clone())
}

#[tokio::test]
async fn the_status_alias_answers_exactly_like_the_documented_path() {
    let mount = |api: TlsMock| async move {
        mount_job(
            &api.mock,
            "09_job_get_completed",
            Some("19_pods_list_job_completed"),
        )
        .await;
        api
    };
    let (code, body) = assert_same_answer(
        "/api/k8s/jobs/test-job-123/status",
        "/api/k8s/status/test-job-123",
        mount,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["status"], "completed");

    // A missing job: the same 404.
    let missing = |api: TlsMock| async move {
        Mock::given(path("/apis/batch/v1/namespaces/default/jobs/gone"))
            .respond_with(replay("14_job_get_not_found"))
            .mount(&api.mock)
            .await;
        api
    };
    let (code, body) =
        assert_same_answer("/api/k8s/jobs/gone/status", "/api/k8s/status/gone", missing).await;
    assert_eq!(code, 404);
    assert_eq!(body["error_type"], "NotFoundError");

    // An invalid name and an unknown parameter: the same 400, with no call.
    let nothing = |api: TlsMock| async move { api };
    for (documented, alias) in [
        ("/api/k8s/jobs/Bad_Name/status", "/api/k8s/status/Bad_Name"),
        (
            "/api/k8s/jobs/test-job-123/status?namespce=x",
            "/api/k8s/status/test-job-123?namespce=x",
        ),
    ] {
        let (code, body) = assert_same_answer(documented, alias, nothing).await;
        assert_eq!(code, 400, "{documented}: {body}");
    }
}

#[tokio::test]
async fn the_logs_alias_answers_exactly_like_the_documented_path() {
    let mount = |api: TlsMock| async move {
        mount_job(
            &api.mock,
            "09_job_get_completed",
            Some("19_pods_list_job_completed"),
        )
        .await;
        mount_log(
            &api.mock,
            "test-job-123-h6gvc",
            "container=main&tailLines=2&timestamps=true&limitBytes=10485761",
            "31_log_completed_tail2_timestamps",
        )
        .await;
        api
    };
    let (code, body) = assert_same_answer(
        "/api/k8s/jobs/test-job-123/logs?tail=2",
        "/api/k8s/logs/test-job-123?tail=2",
        mount,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["pod_name"], "test-job-123-h6gvc");
    assert!(!body["logs"].as_str().unwrap().is_empty());

    let nothing = |api: TlsMock| async move { api };
    for (documented, alias) in [
        (
            "/api/k8s/jobs/test-job-123/logs?since_seconds=0",
            "/api/k8s/logs/test-job-123?since_seconds=0",
        ),
        ("/api/k8s/jobs/-x/logs", "/api/k8s/logs/-x"),
    ] {
        let (code, body) = assert_same_answer(documented, alias, nothing).await;
        assert_eq!(code, 400, "{documented}: {body}");
        assert_eq!(body["error_type"], "ValidationError");
    }
}

// ---------------------------------------------------------------------------------
// The timeline of the status answer, from recorded pods

async fn timeline_of(job_fixture: &str, pods_fixture: &str) -> Value {
    let (pki, api) = apiserver().await;
    mount_job(&api.mock, job_fixture, Some(pods_fixture)).await;
    let job: Value = serde_json::from_slice(&recorded(job_fixture).body).unwrap();
    let name = job["metadata"]["name"].as_str().unwrap();
    let (code, body) = call(
        &state_for(&pki, &api),
        "GET",
        &format!("/api/k8s/jobs/{name}/status"),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    body["timeline"].clone()
}

#[tokio::test]
async fn a_completed_runs_timeline_is_filled_from_its_pod() {
    assert_eq!(
        timeline_of("09_job_get_completed", "19_pods_list_job_completed").await,
        json!({
            "pod_scheduled": "2026-11-26T11:48:18Z",
            "container_created": "2026-11-26T11:48:19Z",
            "container_started": "2026-11-26T11:48:19Z",
            "completed": "2026-11-26T11:48:22Z",
            "failed": null,
        })
    );
}

#[tokio::test]
async fn a_failed_runs_timeline_ends_in_failed() {
    assert_eq!(
        timeline_of("10_job_get_failed", "20_pods_list_job_failed").await,
        json!({
            "pod_scheduled": "2026-11-26T11:48:18Z",
            "container_created": "2026-11-26T11:48:19Z",
            "container_started": "2026-11-26T11:48:19Z",
            "completed": null,
            "failed": "2026-11-26T11:48:22Z",
        })
    );
}

#[tokio::test]
async fn an_unscheduled_runs_timeline_is_all_null() {
    assert_eq!(
        timeline_of("81_job_get_unscheduled", "82_pods_list_job_unscheduled").await,
        json!({
            "pod_scheduled": null,
            "container_created": null,
            "container_started": null,
            "completed": null,
            "failed": null,
        })
    );
}

#[tokio::test]
async fn a_run_pulling_its_image_is_scheduled_and_creating_but_not_started() {
    assert_eq!(
        timeline_of("85_job_get_imagepull", "86_pods_list_job_imagepull").await,
        json!({
            "pod_scheduled": "2026-11-26T12:06:16Z",
            "container_created": "2026-11-26T12:06:16Z",
            "container_started": null,
            "completed": null,
            "failed": null,
        })
    );
}

#[tokio::test]
async fn a_retried_runs_timeline_is_the_pod_its_logs_come_from() {
    // Two pods: the first failed, the second succeeded; kubectl (and the logs
    // endpoint) read the older one, so the timeline does too.
    let timeline = timeline_of(
        "13_job_get_retry_failed_then_succeeded",
        "23_pods_list_job_retry_two_pods",
    )
    .await;
    let (pki, api) = apiserver().await;
    mount_job(
        &api.mock,
        "13_job_get_retry_failed_then_succeeded",
        Some("23_pods_list_job_retry_two_pods"),
    )
    .await;
    Mock::given(path_regex_log())
        .respond_with(replay("34_log_retry_first_failed_pod"))
        .mount(&api.mock)
        .await;
    let (_, logs) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs/test-job-retry/logs",
    )
    .await;
    let pods: Value =
        serde_json::from_slice(&recorded("23_pods_list_job_retry_two_pods").body).unwrap();
    let read = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["metadata"]["name"] == logs["pod_name"])
        .unwrap_or_else(|| panic!("{logs}"));
    let finished = read["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]
        .as_str()
        .unwrap();
    let exit_code = read["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"]
        .as_i64()
        .unwrap();
    let key = if exit_code == 0 {
        "completed"
    } else {
        "failed"
    };
    assert_eq!(timeline[key], finished, "{timeline}");
}

fn path_regex_log() -> wiremock::matchers::PathRegexMatcher {
    wiremock::matchers::path_regex(r"^/api/v1/namespaces/default/pods/[^/]+/log$")
}

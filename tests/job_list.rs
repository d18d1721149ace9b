//! Contract tests of `GET /api/k8s/jobs`: SparkTest's Jobs (`app=sparktest`) a page of
//! 100 by default, each row's status what `/status` says, the apiserver's continue token
//! passed on and back exactly (expired or unreadable: 400), and page sizes checked before
//! any call. Each request goes through the whole warp filter tree to a TLS mock of the
//! apiserver replaying answers recorded from a real kube-apiserver (fixtures/recorded/),
//! and the exact list requests it receives are asserted. The list of another namespace
//! is pinned in `tests/namespaces.rs`.

mod common;

use common::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, Request, ResponseTemplate};

#[tokio::test]
async fn the_job_list_says_what_status_says_for_jobs_whose_pods_wait() {
    // A page with a completed Job and two whose pods wait (unschedulable; pulling its
    // image): the list reads those two Jobs' pods in one pod list and reports the
    // same pending reasons as their /status.
    let (pki, api) = apiserver().await;
    let body = |name: &str| -> Value { serde_json::from_slice(&recorded(name).body).unwrap() };
    let jobs = [
        body("09_job_get_completed"),
        body("81_job_get_unscheduled"),
        body("85_job_get_imagepull"),
    ];
    let list = json!({"kind": "JobList", "apiVersion": "batch/v1",
        "metadata": {"resourceVersion": "1"}, "items": jobs});
    mount_list(
        &api,
        "default",
        "labelSelector=app%3Dsparktest&limit=100",
        ResponseTemplate::new(200).set_body_json(&list),
    )
    .await;
    let uid = |job: &Value| job["metadata"]["uid"].as_str().unwrap().to_string();
    let mut pods = body("82_pods_list_job_unscheduled");
    let imagepull = body("86_pods_list_job_imagepull");
    pods["items"]
        .as_array_mut()
        .unwrap()
        .extend(imagepull["items"].as_array().unwrap().iter().cloned());
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/default/pods"))
        .and(query_param(
            "labelSelector",
            format!("controller-uid in ({},{})", uid(&jobs[1]), uid(&jobs[2])).as_str(),
        ))
        .and(bearer())
        .respond_with(ResponseTemplate::new(200).set_body_json(&pods))
        .expect(1)
        .mount(&api.mock)
        .await;
    let state = state_for(&pki, &api);
    let (code, listed) = request(&state, "GET", "/api/k8s/jobs", None).await;
    assert_eq!(code, 200, "{listed}");
    let rows = listed["jobs"].as_array().unwrap();
    let row = |name: &str| rows.iter().find(|r| r["job_name"] == name).unwrap().clone();
    assert_eq!(row("test-job-123")["status"], "completed");
    for (name, reason) in [
        ("test-job-unscheduled", "Unschedulable"),
        ("test-job-imagepull", "ImagePullBackOff"),
    ] {
        assert_eq!(row(name)["status"], "pending", "{listed}");
        assert_eq!(row(name)["reason"], reason, "{listed}");
    }
    // And /status says the same.
    mount_job(
        &api.mock,
        "81_job_get_unscheduled",
        Some("82_pods_list_job_unscheduled"),
    )
    .await;
    let (_, status) = request(
        &state,
        "GET",
        "/api/k8s/jobs/test-job-unscheduled/status",
        None,
    )
    .await;
    let listed_row = row("test-job-unscheduled");
    for field in ["status", "reason", "message"] {
        assert_eq!(status[field], listed_row[field], "{field}");
    }
}

/// The decoded query parameters of a request, in order.
fn query_pairs(request: &Request) -> Vec<(String, String)> {
    request
        .url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test]
async fn the_job_list_selects_sparktests_jobs_a_page_of_100_by_default() {
    let (pki, api) = apiserver().await;
    mount_list(
        &api,
        "default",
        "labelSelector=app%3Dsparktest&limit=100",
        replay("16_job_list_labelselector"),
    )
    .await;
    // test-job-running has an active pod and no ready count (1.24): its pods are read.
    mount_running_pods(&api, "default").await;
    let state = state_for(&pki, &api);
    let (code, body) = request(&state, "GET", "/api/k8s/jobs", None).await;
    assert_eq!(code, 200, "{body}");
    let get = received(&api).await.remove(0);
    assert_eq!(
        query_pairs(&get),
        [
            ("labelSelector".to_string(), "app=sparktest".to_string()),
            ("limit".to_string(), "100".to_string()),
        ]
    );
    assert_eq!(body["namespace"], "default");
    assert!(body.get("continue").is_none(), "last page: {body}");
    assert!(is_reply_timestamp(&body["timestamp"]), "{body}");
    let jobs = body["jobs"].as_array().unwrap();
    let names: Vec<&str> = jobs
        .iter()
        .map(|j| j["job_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "test-job-123",
            "test-job-failed",
            "test-job-retry",
            "test-job-running",
            "test-run-550e8400-e29b-41d4-a716-446655440000"
        ]
    );
    for job in jobs {
        assert_eq!(job["namespace"], "default", "{job}");
        assert!(job["status"].is_string(), "{job}");
        assert!(is_reply_timestamp(&job["created_at"]), "{job}");
    }
    assert_eq!(jobs[0]["status"], "completed");
    assert_eq!(jobs[1]["status"], "failed");
    assert_eq!(jobs[3]["status"], "running", "from its running pod");
}

// ---------------------------------------------------------------------------------
// Pages and continue tokens

#[tokio::test]
async fn a_page_with_more_after_it_carries_the_apiservers_continue_token() {
    let (pki, api) = apiserver().await;
    let recorded_page: Value =
        serde_json::from_slice(&recorded("17_job_list_limit2").body).unwrap();
    let token = recorded_page["metadata"]["continue"].as_str().unwrap();
    mount_list(
        &api,
        "default",
        "labelSelector=app%3Dsparktest&limit=2",
        replay("17_job_list_limit2"),
    )
    .await;
    let state = state_for(&pki, &api);
    let (code, body) = request(&state, "GET", "/api/k8s/jobs?limit=2", None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["continue"], token);
    let jobs = body["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0]["job_name"], "test-job-123");
    assert_eq!(jobs[1]["job_name"], "test-job-failed");
    assert_eq!(received(&api).await.len(), 1);
}

#[tokio::test]
async fn the_continue_token_is_passed_to_the_apiserver_exactly() {
    let (pki, api) = apiserver().await;
    // The last page (no metadata.continue), for any query: the query is asserted below.
    Mock::given(method("GET"))
        .and(path(jobs_path("default")))
        .and(bearer())
        .respond_with(replay("68_job_list_final"))
        .mount(&api.mock)
        .await;
    mount_running_pods(&api, "default").await;
    let state = state_for(&pki, &api);
    let recorded_page: Value =
        serde_json::from_slice(&recorded("17_job_list_limit2").body).unwrap();
    let real = recorded_page["metadata"]["continue"]
        .as_str()
        .unwrap()
        .to_string();
    // A real token, and one with every character that percent-encoding matters for.
    for (sent, token) in [
        (real.clone(), real.clone()),
        (
            "ab%2Bc%2F%3D%3D%26limit%3D9".to_string(),
            "ab+c/==&limit=9".to_string(),
        ),
    ] {
        let (code, body) = request(
            &state,
            "GET",
            &format!("/api/k8s/jobs?limit=2&continue={sent}"),
            None,
        )
        .await;
        assert_eq!(code, 200, "{body}");
        assert!(body.get("continue").is_none(), "last page: {body}");
        let get = job_lists(&api).await.pop().unwrap();
        assert_eq!(
            query_pairs(&get),
            [
                ("labelSelector".to_string(), "app=sparktest".to_string()),
                ("limit".to_string(), "2".to_string()),
                ("continue".to_string(), token),
            ],
            "{}",
            get.url
        );
    }
    assert_eq!(job_lists(&api).await.len(), 2);
}

/// The job list requests the apiserver received, in order.
async fn job_lists(api: &TlsMock) -> Vec<Request> {
    received(api)
        .await
        .into_iter()
        .filter(|r| r.url.path() == jobs_path("default"))
        .collect()
}

#[tokio::test]
async fn a_page_size_out_of_range_or_an_unknown_parameter_is_400_without_a_call() {
    let (pki, api) = apiserver().await;
    let state = state_for(&pki, &api);
    for q in [
        "limit=0",
        "limit=501",
        "limit=-1",
        "limit=ten",
        "labelSelector=app%3Dother",
        "fieldSelector=metadata.name%3Dx",
    ] {
        let p = format!("/api/k8s/jobs?{q}");
        let (code, body) = request(&state, "GET", &p, None).await;
        assert_eq!(code, 400, "{p}: {body}");
        assert_eq!(body["error_type"], "ValidationError", "{p}: {body}");
    }
    assert_no_apiserver_call(&api, "bad list queries").await;
}

#[tokio::test]
async fn a_page_size_at_the_bounds_is_passed() {
    let (pki, api) = apiserver().await;
    Mock::given(method("GET"))
        .and(path(jobs_path("default")))
        .and(bearer())
        .respond_with(replay("68_job_list_final"))
        .mount(&api.mock)
        .await;
    mount_running_pods(&api, "default").await;
    let state = state_for(&pki, &api);
    for limit in ["1", "500"] {
        let (code, body) =
            request(&state, "GET", &format!("/api/k8s/jobs?limit={limit}"), None).await;
        assert_eq!(code, 200, "{body}");
        let get = job_lists(&api).await.pop().unwrap();
        assert!(
            query_pairs(&get).contains(&("limit".to_string(), limit.to_string())),
            "{}",
            get.url
        );
    }
}

#[tokio::test]
async fn an_expired_continue_token_is_400_saying_so() {
    let (pki, api) = apiserver().await;
    // The apiserver's 410 Expired Status, as recorded for a compacted resourceVersion:
    // an expired continue token is answered with the same Status.
    Mock::given(method("GET"))
        .and(path(jobs_path("default")))
        .and(bearer())
        .respond_with(replay("97_job_list_rv1_exact_expired"))
        .mount(&api.mock)
        .await;
    let state = state_for(&pki, &api);
    let (code, body) = request(
        &state,
        "GET",
        "/api/k8s/jobs?continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MX0",
        None,
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error_type"], "ValidationError");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("expired"), "{message}");
    assert!(
        message.contains("too old"),
        "the apiserver's reason: {message}"
    );
    assert_eq!(received(&api).await.len(), 1);
}

#[tokio::test]
async fn a_continue_token_the_apiserver_cannot_read_is_400() {
    let (pki, api) = apiserver().await;
    // The apiserver's 400 BadRequest Status (recorded for a bad label selector).
    Mock::given(method("GET"))
        .and(path("/apis/batch/v1/namespaces/default/jobs"))
        .and(query_param("continue", "not-a-token"))
        .respond_with(replay("18_job_list_bad_labelselector"))
        .expect(1)
        .mount(&api.mock)
        .await;
    let (code, body) = call(
        &state_for(&pki, &api),
        "GET",
        "/api/k8s/jobs?continue=not-a-token",
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error_type"], "ValidationError");
    assert!(
        body["message"].as_str().unwrap().contains("continue"),
        "{body}"
    );
}

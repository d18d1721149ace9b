//! Helpers of the endpoint contract tests (`tests/status.rs`, `logs.rs`, `delete.rs`,
//! `caches.rs`, `errors.rs`, `create_run.rs`, `job_list.rs`, `namespaces.rs`): requests
//! through the filter tree with a deadline, the apiserver answers they mount (created,
//! listed, edited from a recording), what the apiserver received, and the fixtures and
//! policies several of those files share. Re-exported from `common`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sparktest_k8s::names::Namespace;
use sparktest_k8s::runs::RunDefaults;
use sparktest_k8s::runs::templates::Templates;
use sparktest_k8s::state::{AppState, Policy, RunConfig};
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, ResponseTemplate};

use super::{Query, TlsMock, bearer, call, call_json, recorded, replay};

// ---------------------------------------------------------------------------------
// Fixtures

/// The default log query: the main container, 1000 lines, timestamps, 10 MiB + 1 byte.
pub const DEFAULT_LOG_QUERY: &str =
    "container=main&tailLines=1000&timestamps=true&limitBytes=10485761";

/// A recorded answer's body as text (a log).
pub fn text(fixture: &str) -> String {
    String::from_utf8(recorded(fixture).body).unwrap()
}

/// A run id chosen by the client (a version 4 UUID).
pub const RUN_ID: &str = "0b7f3c1e-5d2a-4c8e-9f10-2a3b4c5d6e7f";

/// Whether `v` is a timestamp in the form of every reply: RFC 3339 in UTC with whole
/// seconds (`2025-07-07T10:30:00Z`), as Kubernetes writes its own.
pub fn is_reply_timestamp(v: &Value) -> bool {
    let s = v.as_str().unwrap_or_default();
    s.len() == 20 && s.ends_with('Z') && sparktest_k8s::time::parse_rfc3339(s).is_some()
}

// ---------------------------------------------------------------------------------
// Calling the service

/// `call` / `call_json` with a deadline, so that a route that wrongly starts a stream
/// (which never ends) fails the test instead of hanging it.
pub async fn request(state: &AppState, m: &str, p: &str, body: Option<Value>) -> (u16, Value) {
    let fut = async {
        match body {
            Some(b) => call_json(state, m, p, b).await,
            None => call(state, m, p).await,
        }
    };
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("{m} {p}: no answer within 20 s"))
}

/// `POST` of a JSON body, with the deadline of [`request`].
pub async fn post_run(state: &AppState, p: &str, body: Value) -> (u16, Value) {
    request(state, "POST", p, Some(body)).await
}

/// A policy with these run defaults and templates, serving the home namespace and
/// `allowed`.
pub fn policy_with(defaults: RunDefaults, templates: Templates, allowed: &[&str]) -> Policy {
    Policy {
        allowed_namespaces: allowed
            .iter()
            .map(|n| n.parse::<Namespace>().unwrap())
            .collect(),
        runs: Arc::new(RunConfig {
            defaults,
            templates,
        }),
        ..Policy::default()
    }
}

// ---------------------------------------------------------------------------------
// Answers of the apiserver

/// The apiserver path of the Jobs of `ns`.
pub fn jobs_path(ns: &str) -> String {
    format!("/apis/batch/v1/namespaces/{ns}/jobs")
}

/// A recorded JSON answer with its body edited by `edit` (same status and type).
pub fn replay_edited(name: &str, edit: impl FnOnce(&mut Value)) -> ResponseTemplate {
    let r = recorded(name);
    let mut body: Value = serde_json::from_slice(&r.body).unwrap();
    edit(&mut body);
    ResponseTemplate::new(r.status)
        .set_body_raw(serde_json::to_vec(&body).unwrap(), &r.content_type)
}

/// Mounts `POST /apis/batch/v1/namespaces/{ns}/jobs` (with the service's bearer token)
/// answering `answer`.
pub async fn mount_create(api: &TlsMock, ns: &str, answer: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(jobs_path(ns)))
        .and(bearer())
        .respond_with(answer)
        .mount(&api.mock)
        .await;
}

/// Mounts the job list of `ns` for exactly `query`.
pub async fn mount_list(api: &TlsMock, ns: &str, query: &str, answer: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(jobs_path(ns)))
        .and(Query::exact(query))
        .and(bearer())
        .respond_with(answer)
        .mount(&api.mock)
        .await;
}

/// The pods of the recorded running job, answering any pod list in `ns`.
pub async fn mount_running_pods(api: &TlsMock, ns: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/namespaces/{ns}/pods")))
        .and(bearer())
        .respond_with(replay("21_pods_list_job_running"))
        .mount(&api.mock)
        .await;
}

// ---------------------------------------------------------------------------------
// What the apiserver received

/// Every request the apiserver received, in order.
pub async fn received(api: &TlsMock) -> Vec<Request> {
    api.mock.received_requests().await.unwrap()
}

/// Asserts that the apiserver received no request at all (`what` names the case).
pub async fn assert_no_apiserver_call(api: &TlsMock, what: &str) {
    let all = received(api).await;
    assert!(
        all.is_empty(),
        "{what}: the apiserver must not be called, got {:?}",
        all.iter()
            .map(|r| format!("{} {}", r.method, r.url))
            .collect::<Vec<_>>()
    );
}

/// The JSON body of a received request.
pub fn json_body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap_or_else(|e| {
        panic!(
            "request body is not JSON ({e}): {}",
            String::from_utf8_lossy(&request.body)
        )
    })
}

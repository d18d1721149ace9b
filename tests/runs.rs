//! Contract tests of starting and listing test runs: `POST /api/test-runs`,
//! `GET /api/k8s/templates`, `GET /api/k8s/jobs`, and the `?namespace=` rule of every
//! job endpoint. Each request goes through the whole warp filter tree to a TLS mock of
//! the apiserver replaying answers recorded from a real kube-apiserver
//! (fixtures/recorded/), and the exact requests the apiserver receives are asserted:
//! how many, method, path, query, content type and the Job body itself.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use sparktest_k8s::names::{Namespace, RunId};
use sparktest_k8s::runs::RunDefaults;
use sparktest_k8s::runs::templates::Templates;
use sparktest_k8s::state::{AppState, Policy, RunConfig};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, Request, ResponseTemplate};

// ---------------------------------------------------------------------------------
// Helpers

/// A run id chosen by the client (a version 4 UUID).
const RUN_ID: &str = "0b7f3c1e-5d2a-4c8e-9f10-2a3b4c5d6e7f";

fn jobs_path(ns: &str) -> String {
    format!("/apis/batch/v1/namespaces/{ns}/jobs")
}

/// A recorded JSON answer with its body edited by `edit` (same status and type).
fn replay_edited(name: &str, edit: impl FnOnce(&mut Value)) -> ResponseTemplate {
    let r = recorded(name);
    let mut body: Value = serde_json::from_slice(&r.body).unwrap();
    edit(&mut body);
    ResponseTemplate::new(r.status)
        .set_body_raw(serde_json::to_vec(&body).unwrap(), &r.content_type)
}

/// Mounts `POST /apis/batch/v1/namespaces/{ns}/jobs` (with the service's bearer token)
/// answering `answer`.
async fn mount_create(api: &TlsMock, ns: &str, answer: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(jobs_path(ns)))
        .and(bearer())
        .respond_with(answer)
        .mount(&api.mock)
        .await;
}

/// Every request the apiserver received, in order.
async fn received(api: &TlsMock) -> Vec<Request> {
    api.mock.received_requests().await.unwrap()
}

/// The one request the apiserver received (fails on none or more).
async fn only_request(api: &TlsMock) -> Request {
    let mut all = received(api).await;
    assert_eq!(
        all.len(),
        1,
        "exactly one apiserver request expected, got {:?}",
        all.iter()
            .map(|r| format!("{} {}", r.method, r.url))
            .collect::<Vec<_>>()
    );
    all.remove(0)
}

async fn assert_no_apiserver_call(api: &TlsMock, what: &str) {
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
fn json_body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap_or_else(|e| {
        panic!(
            "request body is not JSON ({e}): {}",
            String::from_utf8_lossy(&request.body)
        )
    })
}

/// The one container of the Job's pod template.
fn container(job: &Value) -> &Value {
    let containers = job["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap_or_else(|| panic!("no containers: {job}"));
    assert_eq!(containers.len(), 1, "{job}");
    &containers[0]
}

/// `call` / `call_json` with a deadline, so that a route that wrongly starts a stream
/// (which never ends) fails the test instead of hanging it.
async fn request(state: &AppState, m: &str, p: &str, body: Option<Value>) -> (u16, Value) {
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

async fn post_run(state: &AppState, p: &str, body: Value) -> (u16, Value) {
    request(state, "POST", p, Some(body)).await
}

fn is_reply_timestamp(v: &Value) -> bool {
    let s = v.as_str().unwrap_or_default();
    s.ends_with('Z') && sparktest_k8s::time::parse_rfc3339(s).is_some()
}

/// Whether `s` is a lowercase version 4 UUID (8-4-4-4-12 hex, version nibble 4,
/// variant 8-b).
fn is_v4_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_digit() || (b'a'..=b'f').contains(c)
            }
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

fn example_templates(defaults: &RunDefaults) -> Templates {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/templates.yaml");
    Templates::load(&file, defaults).unwrap()
}

fn policy_with(defaults: RunDefaults, templates: Templates, allowed: &[&str]) -> Policy {
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

/// The mock's state with the example templates and the default run limits.
fn state_with_templates(pki: &Pki, api: &TlsMock) -> AppState {
    let defaults = RunDefaults::default();
    let templates = example_templates(&defaults);
    state_with_policy(pki, api, policy_with(defaults, templates, &[]))
}

/// The mock's state serving `default` and `team-a`.
fn state_with_team_a(pki: &Pki, api: &TlsMock) -> AppState {
    state_with_policy(
        pki,
        api,
        policy_with(RunDefaults::default(), Templates::default(), &["team-a"]),
    )
}

/// Asserts a 400 `ValidationError` whose `details.fields` is exactly `fields`.
fn assert_invalid_fields(code: u16, body: &Value, fields: &[&str]) {
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error_type"], "ValidationError", "{body}");
    assert_eq!(body["details"]["fields"], json!(fields), "{body}");
}

// ---------------------------------------------------------------------------------
// 1. Create from an image and commands

#[tokio::test]
async fn a_run_from_an_image_and_commands_is_one_labelled_job_post() {
    let (pki, api) = apiserver().await;
    // The service uses only the status of the create answer, not the created Job.
    mount_create(&api, "default", replay("57_job_create_201")).await;
    let state = state_for(&pki, &api);
    let (code, reply) = post_run(
        &state,
        "/api/test-runs",
        json!({"image": "busybox:1.36", "commands": ["a", "b"], "env": {"B": "2", "A": "1"}}),
    )
    .await;

    // The documented reply, and nothing else.
    assert_eq!(code, 201, "{reply}");
    let run_id = reply["run_id"].as_str().unwrap().to_string();
    assert!(is_v4_uuid(&run_id), "run_id {run_id} is not a v4 UUID");
    let job_name = format!("test-run-{run_id}");
    assert_eq!(reply["job_name"], job_name.as_str());
    assert_eq!(reply["namespace"], "default");
    assert_eq!(reply["status"], "pending");
    assert!(is_reply_timestamp(&reply["timestamp"]), "{reply}");
    let mut keys: Vec<&str> = reply
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["job_name", "namespace", "run_id", "status", "timestamp"],
        "no template key without a template: {reply}"
    );

    // Exactly one POST, where and as the apiserver takes it.
    let post = only_request(&api).await;
    assert_eq!(post.method.as_str(), "POST");
    assert_eq!(post.url.path(), "/apis/batch/v1/namespaces/default/jobs");
    assert_eq!(post.url.query(), None);
    assert_eq!(
        post.headers.get("content-type").unwrap().to_str().unwrap(),
        "application/json"
    );
    let job = json_body(&post);

    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["metadata"]["name"], job_name.as_str());
    assert_eq!(job["metadata"]["namespace"], "default");
    let labels = json!({
        "app.kubernetes.io/managed-by": "sparktest",
        "app": "sparktest",
        "sparktest.dev/run-id": run_id,
    });
    assert_eq!(job["metadata"]["labels"], labels, "Job labels");
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"], labels,
        "pod template labels"
    );
    // The defaults: no retry, an hour's deadline, removed a day after finishing.
    assert_eq!(job["spec"]["backoffLimit"], 0);
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 3600);
    assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 86400);
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    let c = container(&job);
    assert_eq!(c["name"], "main");
    assert_eq!(c["image"], "busybox:1.36");
    assert_eq!(c["command"], json!(["sh", "-c", "a && b"]));
    assert!(c.get("args").is_none(), "{c}");
    // Requests and limits are always both set: the configured defaults here.
    assert_eq!(
        c["resources"],
        json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}})
    );
    assert_eq!(
        c["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    );
}

#[tokio::test]
async fn every_field_a_run_gives_reaches_the_job_and_defaults_fill_the_rest() {
    let (pki, api) = apiserver().await;
    mount_create(&api, "default", replay("57_job_create_201")).await;
    let state = state_for(&pki, &api);
    let (code, reply) = post_run(
        &state,
        "/api/test-runs",
        json!({
            "run_id": RUN_ID,
            "image": "python:3.12",
            "commands": ["pytest -q"],
            "env": {"URL": "http://svc:8080/?a=1&b=2", "EMPTY": ""},
            "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi"}},
            "timeout_seconds": 120,
            "ttl_seconds_after_finished": 600,
            "backoff_limit": 2,
        }),
    )
    .await;
    assert_eq!(code, 201, "{reply}");
    assert_eq!(reply["run_id"], RUN_ID);
    let job = json_body(&only_request(&api).await);
    assert_eq!(job["metadata"]["name"], format!("test-run-{RUN_ID}"));
    assert_eq!(job["spec"]["backoffLimit"], 2);
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 120);
    assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 600);
    let c = container(&job);
    assert_eq!(c["command"], json!(["sh", "-c", "pytest -q"]));
    // The given request and limit, the defaults for the others.
    assert_eq!(
        c["resources"],
        json!({"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}})
    );
    assert_eq!(
        c["env"],
        json!([{"name": "EMPTY", "value": ""}, {"name": "URL", "value": "http://svc:8080/?a=1&b=2"}])
    );
}

// ---------------------------------------------------------------------------------
// 2. argv

#[tokio::test]
async fn argv_is_the_containers_command_verbatim() {
    let (pki, api) = apiserver().await;
    mount_create(&api, "default", replay("57_job_create_201")).await;
    let state = state_for(&pki, &api);
    let argv = json!(["k6", "run", "--vus", "2", "my script.js", "a && b", "$HOME"]);
    let (code, reply) = post_run(
        &state,
        "/api/test-runs",
        json!({"image": "grafana/k6:0.54.0", "argv": argv}),
    )
    .await;
    assert_eq!(code, 201, "{reply}");
    let job = json_body(&only_request(&api).await);
    let c = container(&job);
    assert_eq!(c["command"], argv, "no shell, no joining, no splitting");
    assert!(c.get("args").is_none(), "{c}");
}

#[tokio::test]
async fn commands_and_argv_together_are_400_naming_commands_without_a_call() {
    let (pki, api) = apiserver().await;
    let state = state_for(&pki, &api);
    let (code, body) = post_run(
        &state,
        "/api/test-runs",
        json!({"image": "busybox:1.36", "commands": ["a"], "argv": ["b"]}),
    )
    .await;
    assert_invalid_fields(code, &body, &["commands"]);
    assert!(body["message"].as_str().unwrap().contains("argv"), "{body}");
    assert_no_apiserver_call(&api, "commands and argv").await;
}

#[tokio::test]
async fn bad_run_fields_are_400_naming_the_field_without_a_call() {
    let (pki, api) = apiserver().await;
    let state = state_for(&pki, &api);
    for (run, field) in [
        (json!({"commands": ["a"]}), "image"),
        (json!({"image": "busybox:1.36"}), "commands"),
        (json!({"image": "busy box", "argv": ["a"]}), "image"),
        (json!({"image": "busybox:1.36", "argv": []}), "argv"),
        (
            json!({"image": "busybox:1.36", "commands": ["a", " "]}),
            "commands[1]",
        ),
        (
            json!({"image": "busybox:1.36", "argv": ["a"], "env": {"1X": "v"}}),
            "env.1X",
        ),
        (
            json!({"image": "busybox:1.36", "argv": ["a"], "timeout_seconds": 0}),
            "timeout_seconds",
        ),
        (
            json!({"image": "busybox:1.36", "argv": ["a"], "timeout_seconds": 7 * 24 * 3600 + 1}),
            "timeout_seconds",
        ),
        (
            json!({"image": "busybox:1.36", "argv": ["a"], "ttl_seconds_after_finished": 30 * 24 * 3600 + 1}),
            "ttl_seconds_after_finished",
        ),
        (
            json!({"image": "busybox:1.36", "argv": ["a"], "backoff_limit": 21}),
            "backoff_limit",
        ),
    ] {
        let (code, body) = post_run(&state, "/api/test-runs", run.clone()).await;
        assert_eq!(code, 400, "{run}: {body}");
        assert_eq!(body["details"]["fields"], json!([field]), "{run}: {body}");
    }
    // Not a RunSpec at all: refused by serde. An unknown field is named; a value of
    // the wrong type is only described (serde_json::from_value carries no path).
    for (run, needle) in [
        (
            json!({"image": "busybox:1.36", "comands": ["a"]}),
            "comands",
        ),
        (
            json!({"image": "busybox:1.36", "argv": "a b"}),
            "expected a sequence",
        ),
        (json!(["busybox:1.36"]), "JSON object"),
    ] {
        let (code, body) = post_run(&state, "/api/test-runs", run.clone()).await;
        assert_eq!(code, 400, "{run}: {body}");
        assert_eq!(body["error_type"], "ValidationError", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains(needle),
            "{run}: {body}"
        );
    }
    assert_no_apiserver_call(&api, "invalid runs").await;
}

// ---------------------------------------------------------------------------------
// 3. Templates

#[tokio::test]
async fn a_template_run_is_the_templates_image_commands_resources_and_timeout() {
    let (pki, api) = apiserver().await;
    mount_create(&api, "default", replay("57_job_create_201")).await;
    let state = state_with_templates(&pki, &api);
    let (code, reply) = post_run(
        &state,
        "/api/test-runs",
        json!({"template": "k6", "run_id": RUN_ID}),
    )
    .await;
    assert_eq!(code, 201, "{reply}");
    assert_eq!(reply["template"], "k6");
    let job = json_body(&only_request(&api).await);
    for labels in [
        &job["metadata"]["labels"],
        &job["spec"]["template"]["metadata"]["labels"],
    ] {
        assert_eq!(labels["sparktest.dev/template"], "k6", "{labels}");
        assert_eq!(labels["sparktest.dev/run-id"], RUN_ID, "{labels}");
        assert_eq!(labels["app"], "sparktest", "{labels}");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "sparktest");
    }
    let c = container(&job);
    assert_eq!(c["image"], "grafana/k6:0.54.0");
    assert_eq!(
        c["command"],
        json!([
            "sh",
            "-c",
            "wget -qO /tmp/script.js \"$K6_SCRIPT_URL\" && k6 run --quiet /tmp/script.js"
        ])
    );
    assert_eq!(
        c["resources"],
        json!({"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}})
    );
    assert_eq!(
        c["env"],
        json!([{"name": "K6_NO_USAGE_REPORT", "value": "true"}])
    );
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 1800);
    // What the template leaves out comes from the defaults.
    assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 86400);
    assert_eq!(job["spec"]["backoffLimit"], 0);
}

#[tokio::test]
async fn a_requests_fields_override_its_templates_field_by_field() {
    let (pki, api) = apiserver().await;
    mount_create(&api, "default", replay("57_job_create_201")).await;
    let state = state_with_templates(&pki, &api);
    let (code, reply) = post_run(
        &state,
        "/api/test-runs",
        json!({
            "template": "pytest",
            "env": {"REPO_URL": "https://example.com/app.git", "PYTHONUNBUFFERED": "0"},
            "resources": {"limits": {"memory": "2Gi"}},
            "timeout_seconds": 60,
        }),
    )
    .await;
    assert_eq!(code, 201, "{reply}");
    let job = json_body(&only_request(&api).await);
    let c = container(&job);
    assert_eq!(c["image"], "python:3.12", "the template's image");
    assert_eq!(
        c["command"][2],
        "git clone --depth 1 \"$REPO_URL\" /tmp/app && cd /tmp/app && pip install --quiet -r requirements.txt pytest && pytest -q"
    );
    // env merged: the request's added, the request's value winning on a clash.
    assert_eq!(
        c["env"],
        json!([
            {"name": "PYTHONUNBUFFERED", "value": "0"},
            {"name": "REPO_URL", "value": "https://example.com/app.git"},
        ])
    );
    // One limit overridden; the template's other limit and its requests kept.
    assert_eq!(
        c["resources"],
        json!({"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "2Gi"}})
    );
    assert_eq!(
        job["spec"]["activeDeadlineSeconds"], 60,
        "request's timeout"
    );
    assert_eq!(
        job["spec"]["ttlSecondsAfterFinished"], 3600,
        "template's TTL"
    );
}

#[tokio::test]
async fn argv_in_a_request_replaces_its_templates_commands() {
    let (pki, api) = apiserver().await;
    mount_create(&api, "default", replay("57_job_create_201")).await;
    let state = state_with_templates(&pki, &api);
    let (code, reply) = post_run(
        &state,
        "/api/test-runs",
        json!({"template": "k6", "argv": ["k6", "version"]}),
    )
    .await;
    assert_eq!(
        code, 201,
        "not 'commands and argv' for a template's commands: {reply}"
    );
    let job = json_body(&only_request(&api).await);
    assert_eq!(container(&job)["command"], json!(["k6", "version"]));
    assert_eq!(container(&job)["image"], "grafana/k6:0.54.0");
}

#[tokio::test]
async fn an_unknown_template_is_400_listing_the_known_ones_without_a_call() {
    let (pki, api) = apiserver().await;
    let state = state_with_templates(&pki, &api);
    let (code, body) = post_run(
        &state,
        "/api/test-runs",
        json!({"template": "jmeter", "image": "busybox:1.36", "argv": ["a"]}),
    )
    .await;
    assert_invalid_fields(code, &body, &["template"]);
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("jmeter"), "{message}");
    for known in ["k6", "newman", "playwright", "pytest"] {
        assert!(message.contains(known), "{known} not listed: {message}");
    }
    assert_no_apiserver_call(&api, "unknown template").await;
}

#[tokio::test]
async fn the_templates_endpoint_lists_the_four_example_templates() {
    let (pki, api) = apiserver().await;
    let state = state_with_templates(&pki, &api);
    let (code, body) = request(&state, "GET", "/api/k8s/templates", None).await;
    assert_eq!(code, 200, "{body}");
    let templates = body["templates"].as_array().unwrap();
    let names: Vec<&str> = templates
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["k6", "newman", "playwright", "pytest"]);
    let pytest = &templates[3];
    assert_eq!(pytest["image"], "python:3.12");
    assert_eq!(pytest["timeout_seconds"], 1800);
    assert!(pytest["description"].as_str().unwrap().contains("pytest"));
    assert!(is_reply_timestamp(&body["timestamp"]), "{body}");
    assert_no_apiserver_call(&api, "templates").await;
}

// ---------------------------------------------------------------------------------
// 4. Idempotency: the client's run id names the Job

#[tokio::test]
async fn the_same_run_id_twice_is_the_same_job_name_and_then_409() {
    let (pki, api) = apiserver().await;
    let job_name = format!("test-run-{RUN_ID}");
    // The recorded create answers, renamed to this run's Job.
    let created = {
        let name = job_name.clone();
        replay_edited("57_job_create_201", move |b| {
            b["metadata"]["name"] = name.into()
        })
    };
    let conflict = {
        let name = job_name.clone();
        replay_edited("58_job_create_conflict_409", move |b| {
            b["message"] = format!("jobs.batch \"{name}\" already exists").into();
            b["details"]["name"] = name.into();
        })
    };
    // First POST: created; any later one: AlreadyExists.
    Mock::given(method("POST"))
        .and(path(jobs_path("default")))
        .and(bearer())
        .respond_with(created)
        .up_to_n_times(1)
        .mount(&api.mock)
        .await;
    mount_create(&api, "default", conflict).await;
    let state = state_for(&pki, &api);
    let run = json!({"run_id": RUN_ID, "image": "busybox:1.36", "commands": ["true"]});

    let (code, first) = post_run(&state, "/api/test-runs", run.clone()).await;
    assert_eq!(code, 201, "{first}");
    assert_eq!(first["run_id"], RUN_ID);
    assert_eq!(first["job_name"], job_name.as_str());

    let (code, second) = post_run(&state, "/api/test-runs", run).await;
    assert_eq!(code, 409, "{second}");
    assert_eq!(second["error_type"], "KubernetesError", "{second}");
    assert!(
        second["message"].as_str().unwrap().contains(RUN_ID),
        "{second}"
    );

    // The same id in capitals is the same run: the same Job name, so the same 409.
    let (code, third) = post_run(
        &state,
        "/api/test-runs",
        json!({"run_id": RUN_ID.to_uppercase(), "image": "busybox:1.36", "commands": ["true"]}),
    )
    .await;
    assert_eq!(code, 409, "{third}");

    let posts = received(&api).await;
    assert_eq!(posts.len(), 3);
    for post in &posts {
        assert_eq!(post.url.path(), "/apis/batch/v1/namespaces/default/jobs");
        let job = json_body(post);
        assert_eq!(
            job["metadata"]["name"],
            job_name.as_str(),
            "every POST names the same Job, so the apiserver can never create two"
        );
        assert_eq!(job["metadata"]["labels"]["sparktest.dev/run-id"], RUN_ID);
    }
}

#[tokio::test]
async fn an_invalid_run_id_is_400_without_a_call() {
    let (pki, api) = apiserver().await;
    let state = state_for(&pki, &api);
    for run_id in [
        json!("not-a-uuid"),
        json!("0b7f3c1e5d2a4c8e9f102a3b4c5d6e7f"),
        json!("0b7f3c1e-5d2a-4c8e-9f10-2a3b4c5d6e7g"),
        json!("../../0b7f3c1e-5d2a-4c8e-9f10-2a3b4c5d"),
        json!(""),
        json!(12345),
    ] {
        let (code, body) = post_run(
            &state,
            "/api/test-runs",
            json!({"run_id": run_id, "image": "busybox:1.36", "commands": ["true"]}),
        )
        .await;
        assert_eq!(code, 400, "{run_id}: {body}");
        assert_eq!(body["error_type"], "ValidationError", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("run"),
            "{run_id}: {body}"
        );
    }
    assert_no_apiserver_call(&api, "invalid run ids").await;
}

// ---------------------------------------------------------------------------------
// 5. Limits

#[tokio::test]
async fn a_resource_over_the_maximum_is_400_naming_it_without_a_call() {
    let (pki, api) = apiserver().await;
    let state = state_for(&pki, &api);
    for (resources, field) in [
        (
            json!({"limits": {"memory": "16Gi"}}),
            "resources.limits.memory",
        ),
        (
            json!({"limits": {"memory": "8193Mi"}}),
            "resources.limits.memory",
        ),
        (
            json!({"requests": {"cpu": "4001m"}}),
            "resources.requests.cpu",
        ),
        (json!({"limits": {"cpu": 5}}), "resources.limits.cpu"),
    ] {
        let (code, body) = post_run(
            &state,
            "/api/test-runs",
            json!({"image": "busybox:1.36", "argv": ["a"], "resources": resources}),
        )
        .await;
        assert_invalid_fields(code, &body, &[field]);
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("8Gi") || message.contains('4'),
            "the maximum is named: {message}"
        );
    }
    assert_no_apiserver_call(&api, "over the default maximum").await;
}

#[tokio::test]
async fn a_zero_limit_is_400_because_the_kubelet_reads_it_as_no_limit() {
    let (pki, api) = apiserver().await;
    let state = state_for(&pki, &api);
    for (resources, field) in [
        (json!({"limits": {"cpu": "0"}}), "resources.limits.cpu"),
        (
            json!({"limits": {"memory": "0Gi"}}),
            "resources.limits.memory",
        ),
    ] {
        let (code, body) = post_run(
            &state,
            "/api/test-runs",
            json!({"image": "busybox:1.36", "argv": ["a"], "resources": resources}),
        )
        .await;
        assert_invalid_fields(code, &body, &[field]);
    }
    assert_no_apiserver_call(&api, "zero limits").await;
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

#[tokio::test]
async fn a_lower_configured_maximum_is_the_one_applied() {
    let (pki, api) = apiserver().await;
    mount_create(&api, "default", replay("57_job_create_201")).await;
    let q = |s: &str| Some(s.parse().unwrap());
    let defaults = RunDefaults {
        max: sparktest_k8s::runs::ResourceList {
            cpu: q("2"),
            memory: q("2Gi"),
        },
        ..RunDefaults::default()
    };
    defaults.check().unwrap();
    let strict = state_with_policy(&pki, &api, policy_with(defaults, Templates::default(), &[]));
    let run =
        json!({"image": "busybox:1.36", "argv": ["a"], "resources": {"limits": {"memory": "4Gi"}}});
    let (code, body) = post_run(&strict, "/api/test-runs", run.clone()).await;
    assert_invalid_fields(code, &body, &["resources.limits.memory"]);
    assert!(body["message"].as_str().unwrap().contains("2Gi"), "{body}");
    assert_no_apiserver_call(&api, "over the configured maximum").await;

    // The same run is within the default maximum (8Gi).
    let (code, body) = post_run(&state_for(&pki, &api), "/api/test-runs", run).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(received(&api).await.len(), 1);
}

#[tokio::test]
async fn a_request_above_its_limit_is_400_and_equal_values_in_other_units_are_not() {
    let (pki, api) = apiserver().await;
    mount_create(&api, "default", replay("57_job_create_201")).await;
    let state = state_for(&pki, &api);
    for (resources, field) in [
        (
            json!({"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}),
            "resources.requests.memory",
        ),
        (
            json!({"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}}),
            "resources.requests.cpu",
        ),
    ] {
        let (code, body) = post_run(
            &state,
            "/api/test-runs",
            json!({"image": "busybox:1.36", "argv": ["a"], "resources": resources}),
        )
        .await;
        assert_invalid_fields(code, &body, &[field]);
    }
    assert_no_apiserver_call(&api, "request above limit").await;

    // Compared by value, not as text: 1Gi == 1024Mi, 1500m < 2.
    let resources = json!({"requests": {"cpu": "1500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1024Mi"}});
    let (code, body) = post_run(
        &state,
        "/api/test-runs",
        json!({"image": "busybox:1.36", "argv": ["a"], "resources": resources}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let job = json_body(&only_request(&api).await);
    assert_eq!(container(&job)["resources"], resources, "sent as written");
}

// ---------------------------------------------------------------------------------
// 6. The apiserver's 422

#[tokio::test]
async fn an_apiserver_422_is_400_naming_its_cause_fields() {
    let (pki, api) = apiserver().await;
    mount_create(&api, "default", replay("59_job_create_invalid_422")).await;
    let state = state_for(&pki, &api);
    let (code, body) = post_run(
        &state,
        "/api/test-runs",
        json!({"image": "busybox:1.36", "commands": ["true"]}),
    )
    .await;
    assert_invalid_fields(
        code,
        &body,
        &["metadata.name", "spec.template.spec.containers"],
    );
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("metadata.name"), "{message}");
    assert!(
        message.contains("spec.template.spec.containers: Required value"),
        "{message}"
    );
    assert_eq!(received(&api).await.len(), 1, "no retry of a 422");
}

// ---------------------------------------------------------------------------------
// 7. Namespaces

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

// ---------------------------------------------------------------------------------
// 8. GET /api/k8s/jobs

/// Mounts the job list of `ns` for exactly `query`.
async fn mount_list(api: &TlsMock, ns: &str, query: &str, answer: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(jobs_path(ns)))
        .and(Query::exact(query))
        .and(bearer())
        .respond_with(answer)
        .mount(&api.mock)
        .await;
}

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

/// The pods of the recorded running job, answering any pod list in `ns`.
async fn mount_running_pods(api: &TlsMock, ns: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/namespaces/{ns}/pods")))
        .and(bearer())
        .respond_with(replay("21_pods_list_job_running"))
        .mount(&api.mock)
        .await;
}

// ---------------------------------------------------------------------------------
// 9. Without a cluster

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

#[test]
fn the_run_id_helper_agrees_with_the_service() {
    // The UUID check above is the service's own rule (a sanity check of the helper).
    assert!(is_v4_uuid(RUN_ID));
    assert!(RUN_ID.parse::<RunId>().is_ok());
    assert!(is_v4_uuid(sparktest_k8s::runs::new_run_id().as_str()));
    assert!(!is_v4_uuid("550e8400-e29b-11d4-a716-446655440000"));
}

#[tokio::test]
async fn description_belongs_to_templates_and_is_400_in_a_run() {
    let (pki, api) = apiserver().await;
    let state = state_for(&pki, &api);
    let (code, body) = post_run(
        &state,
        "/api/test-runs",
        json!({"image": "busybox:1.36", "argv": ["a"], "description": "x"}),
    )
    .await;
    assert_invalid_fields(code, &body, &["description"]);
    assert_no_apiserver_call(&api, "description in a run").await;
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

#[tokio::test]
async fn a_body_over_the_limit_is_413_without_a_call() {
    let (pki, api) = apiserver().await;
    let state = state_for(&pki, &api);
    let big = "x".repeat(300 * 1024);
    let (code, body) = post_run(
        &state,
        "/api/test-runs",
        json!({"image": "busybox:1.36", "commands": ["true"], "env": {"BIG": big}}),
    )
    .await;
    assert_eq!(code, 413, "{body}");
    assert_eq!(body["error_type"], "ValidationError");
    assert!(
        body["message"].as_str().unwrap().contains("262144"),
        "{body}"
    );
    assert_no_apiserver_call(&api, "an oversize body").await;
}

//! Contract tests of starting a test run, `POST /api/test-runs`: from an image and
//! commands or argv, or from a template (with `GET /api/k8s/templates`, the templates a
//! run can start from). The exact Job the apiserver receives is asserted (one POST, its
//! labels, container, resources and the defaults filling the rest), the client's run id
//! naming the Job (idempotency), the resource limits, and every run refused before any
//! apiserver call or by the apiserver's 422. Each request goes through the whole warp
//! filter tree to a TLS mock of the apiserver replaying answers recorded from a real
//! kube-apiserver (fixtures/recorded/). A run's namespace is pinned in
//! `tests/namespaces.rs`.

mod common;

use std::path::Path;

use common::*;
use serde_json::{Value, json};
use sparktest_k8s::names::RunId;
use sparktest_k8s::runs::RunDefaults;
use sparktest_k8s::runs::templates::Templates;
use sparktest_k8s::state::AppState;
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request};

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

/// The one container of the Job's pod template.
fn container(job: &Value) -> &Value {
    let containers = job["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap_or_else(|| panic!("no containers: {job}"));
    assert_eq!(containers.len(), 1, "{job}");
    &containers[0]
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

/// The mock's state with the example templates and the default run limits.
fn state_with_templates(pki: &Pki, api: &TlsMock) -> AppState {
    let defaults = RunDefaults::default();
    let templates = example_templates(&defaults);
    state_with_policy(pki, api, policy_with(defaults, templates, &[]))
}

/// Asserts a 400 `ValidationError` whose `details.fields` is exactly `fields`.
fn assert_invalid_fields(code: u16, body: &Value, fields: &[&str]) {
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error_type"], "ValidationError", "{body}");
    assert_eq!(body["details"]["fields"], json!(fields), "{body}");
}

// ---------------------------------------------------------------------------------
// From an image and commands

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
// argv

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

// ---------------------------------------------------------------------------------
// Runs refused before any call

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

// ---------------------------------------------------------------------------------
// Templates

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
// Idempotency: the client's run id names the Job

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

#[test]
fn the_run_id_helper_agrees_with_the_service() {
    // The UUID check above is the service's own rule (a sanity check of the helper).
    assert!(is_v4_uuid(RUN_ID));
    assert!(RUN_ID.parse::<RunId>().is_ok());
    assert!(is_v4_uuid(sparktest_k8s::runs::new_run_id().as_str()));
    assert!(!is_v4_uuid("550e8400-e29b-11d4-a716-446655440000"));
}

// ---------------------------------------------------------------------------------
// Limits

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
// The apiserver's 422

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

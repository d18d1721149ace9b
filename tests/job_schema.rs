//! Every Job body the service can send validates against the Kubernetes 1.37 JSON
//! Schema of `batch/v1` Job (`fixtures/k8s-schemas/v1.37/`, generated from the
//! Kubernetes OpenAPI by the kubernetes-validate package: see
//! `fixtures/k8s-schemas/README.md`). The schema's `$ref`s point at
//! `/api/_definitions.json#/$defs/...`: the local `_definitions.json` is registered
//! under that URI, so nothing is fetched.
//!
//! The schema is strict: `additionalProperties: false` on the Job and on every object
//! definition (ObjectMeta, JobSpec, PodSpec, Container, EnvVar, ...), so a misspelt or
//! invented field fails here instead of being dropped by an apiserver that does not
//! validate fields strictly. It does not check names or quantities against their
//! patterns (the apiserver does: see `tests/create_run.rs` for its 422).

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use common::*;
use jsonschema::{Registry, Resource, Validator};
use serde_json::{Value, json};
use sparktest_k8s::names::Namespace;
use sparktest_k8s::runs::templates::Templates;
use sparktest_k8s::runs::{RunDefaults, RunIdentity, RunSpec, job_body, new_run_id};
use sparktest_k8s::state::{Policy, RunConfig};
use wiremock::Mock;
use wiremock::matchers::method;

const DEFINITIONS_URI: &str = "https://kubernetes.io/api/_definitions.json";

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/k8s-schemas/v1.37")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The batch/v1 Job validator, built once.
fn job_validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let dir = schemas_dir();
        let schema = read_json(&dir.join("job-batch-v1.json"));
        assert_eq!(schema["$id"], "https://kubernetes.io/api/job/batch/v1");
        let definitions = read_json(&dir.join("_definitions.json"));
        // The registry is borrowed by the options while building; the built validator
        // owns what it resolved, so leaking the registry keeps lifetimes simple.
        let registry: &'static Registry<'static> = Box::leak(Box::new(
            Registry::new()
                .add(DEFINITIONS_URI, Resource::from_contents(definitions))
                .expect("the definitions URI is valid")
                .prepare()
                .expect("the definitions register"),
        ));
        jsonschema::options()
            .with_registry(registry)
            .build(&schema)
            .unwrap_or_else(|e| panic!("the Job schema does not build: {e}"))
    })
}

/// Panics with every schema error (and the body) when `job` does not validate.
fn assert_valid_job(what: &str, job: &Value) {
    let errors: Vec<String> = job_validator()
        .iter_errors(job)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: the Job body does not validate against the 1.37 schema:\n  {}\nbody: {}",
        errors.join("\n  "),
        serde_json::to_string_pretty(job).unwrap()
    );
}

fn assert_rejected(what: &str, job: &Value) {
    assert!(
        !job_validator().is_valid(job),
        "{what}: the validator accepted a broken Job, so it checks nothing: {job}"
    );
}

fn spec(value: Value) -> RunSpec {
    serde_json::from_value(value).unwrap()
}

fn example_templates() -> Templates {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/templates.yaml");
    Templates::load(&file, &RunDefaults::default()).unwrap()
}

fn default_ns() -> Namespace {
    "default".parse().unwrap()
}

/// A Job body as the service builds it from `run` (no template), with the display
/// name and test definition SparkTest's frontend sends.
fn body_of(run: Value) -> Value {
    let resolved = spec(run).resolve(&RunDefaults::default()).unwrap();
    let identity = RunIdentity {
        name: Some("Login flow: \"smoke\" über alles".parse().unwrap()),
        test_definition_id: Some("7a1b2c3d-0000-4000-8000-000000000001".parse().unwrap()),
        ..RunIdentity::new(new_run_id())
    };
    job_body(&identity, &default_ns(), &resolved)
}

/// The identity of a run from a template.
fn from_template(name: &str) -> RunIdentity {
    RunIdentity {
        template: Some(name.to_string()),
        ..RunIdentity::new(new_run_id())
    }
}

// ---------------------------------------------------------------------------------
// The validator is live

/// One way to break a valid Job body.
type Breakage = Box<dyn Fn(&mut Value)>;

#[test]
fn the_validator_rejects_broken_jobs() {
    let good = body_of(json!({"image": "busybox:1.36", "commands": ["true"]}));
    assert_valid_job("the baseline", &good);

    let broken: Vec<(&str, Breakage)> = vec![
        (
            "backoffLimit as text",
            Box::new(|j| j["spec"]["backoffLimit"] = json!("six")),
        ),
        (
            "activeDeadlineSeconds as text",
            Box::new(|j| j["spec"]["activeDeadlineSeconds"] = json!("3600")),
        ),
        (
            "an unknown top-level field",
            Box::new(|j| j["specification"] = json!({})),
        ),
        (
            "an unknown JobSpec field",
            Box::new(|j| j["spec"]["ttlSecondsAfterFinish"] = json!(60)),
        ),
        (
            "an unknown metadata field",
            Box::new(|j| j["metadata"]["label"] = json!({"a": "b"})),
        ),
        (
            "an unknown container field (commands for command)",
            Box::new(|j| {
                let c = &mut j["spec"]["template"]["spec"]["containers"][0];
                c["commands"] = c["command"].take();
                c.as_object_mut().unwrap().remove("command");
            }),
        ),
        (
            "command as one string",
            Box::new(|j| {
                j["spec"]["template"]["spec"]["containers"][0]["command"] = json!("sh -c true")
            }),
        ),
        (
            "a container without a name",
            Box::new(|j| {
                j["spec"]["template"]["spec"]["containers"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("name");
            }),
        ),
        (
            "a pod spec without containers",
            Box::new(|j| {
                j["spec"]["template"]["spec"]
                    .as_object_mut()
                    .unwrap()
                    .remove("containers");
            }),
        ),
        (
            "a job without a pod template",
            Box::new(|j| {
                j["spec"].as_object_mut().unwrap().remove("template");
            }),
        ),
        (
            "env as a map",
            Box::new(|j| j["spec"]["template"]["spec"]["containers"][0]["env"] = json!({"A": "1"})),
        ),
        (
            "an env var without a name",
            Box::new(|j| {
                j["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"value": "1"}])
            }),
        ),
        (
            "a quantity as an object",
            Box::new(|j| {
                j["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] =
                    json!({"value": 1})
            }),
        ),
        (
            "an unknown resources field",
            Box::new(|j| {
                j["spec"]["template"]["spec"]["containers"][0]["resources"]["limit"] =
                    json!({"cpu": "1"})
            }),
        ),
        (
            "a label value that is not a string",
            Box::new(|j| j["metadata"]["labels"]["app"] = json!(1)),
        ),
        (
            "another apiVersion",
            Box::new(|j| j["apiVersion"] = json!("batch/v2")),
        ),
        ("another kind", Box::new(|j| j["kind"] = json!("CronJob"))),
    ];
    for (what, breaking) in broken {
        let mut job = good.clone();
        breaking(&mut job);
        assert_ne!(job, good, "{what}: the edit changed nothing");
        assert_rejected(what, &job);
    }
}

// ---------------------------------------------------------------------------------
// Every body the service builds

#[test]
fn the_job_of_every_example_template_validates() {
    let defaults = RunDefaults::default();
    let templates = example_templates();
    let mut names = Vec::new();
    for (name, template) in templates.iter() {
        let resolved = template.clone().resolve(&defaults).unwrap();
        let job = job_body(&from_template(name), &default_ns(), &resolved);
        assert_valid_job(&format!("template {name}"), &job);
        assert_eq!(
            job["metadata"]["labels"]["sparktest.dev/template"],
            name.as_str()
        );
        names.push(name.as_str());
    }
    assert_eq!(names, ["k6", "newman", "playwright", "pytest"]);
}

#[test]
fn a_job_with_every_optional_field_validates() {
    let job = body_of(json!({
        "image": "registry.example.com:5000/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "commands": ["pip install -r requirements.txt", "pytest -q --junitxml=/tmp/r.xml"],
        "env": {"A": "1", "EMPTY": "", "with.dot-and_dash": "x", "JSON": "{\"a\": [1, 2]}"},
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": 2, "memory": "1.5Gi"}
        },
        "timeout_seconds": 7 * 24 * 3600,
        "ttl_seconds_after_finished": 0,
        "backoff_limit": 20,
    }));
    assert_valid_job("every optional field", &job);
    // What was checked is what was asked for.
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["env"].as_array().unwrap().len(), 4);
    assert_eq!(c["resources"]["limits"]["cpu"], "2");
    assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 0);
    assert_eq!(job["spec"]["backoffLimit"], 20);
}

#[test]
fn a_job_from_argv_validates() {
    let job = body_of(json!({"image": "grafana/k6:0.54.0", "argv": ["k6", "run", "-"]}));
    assert_valid_job("argv", &job);
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"],
        json!(["k6", "run", "-"])
    );
}

#[test]
fn a_template_with_request_overrides_in_another_namespace_validates() {
    let defaults = RunDefaults::default();
    let templates = example_templates();
    let request = spec(json!({
        "argv": ["npx", "playwright", "test"],
        "env": {"REPO_URL": "https://example.com/app.git"},
        "resources": {"limits": {"memory": "8Gi"}},
    }));
    let (merged, defaults) = request.over(templates.get("playwright").unwrap(), &defaults);
    let resolved = merged.resolve(&defaults).unwrap();
    let ns: Namespace = "team-a".parse().unwrap();
    let job = job_body(&from_template("playwright"), &ns, &resolved);
    assert_valid_job("playwright with overrides in team-a", &job);
}

/// The bodies that really leave the service: `POST /api/test-runs` through the filter
/// tree to the mock, for each template and for image + commands / argv; each POSTed
/// body is validated as the apiserver received it.
#[tokio::test]
async fn the_bodies_posted_by_the_api_validate() {
    let (pki, api) = apiserver().await;
    Mock::given(method("POST"))
        .respond_with(replay("57_job_create_201"))
        .mount(&api.mock)
        .await;
    let defaults = RunDefaults::default();
    let state = state_with_policy(
        &pki,
        &api,
        Policy {
            runs: Arc::new(RunConfig {
                templates: example_templates(),
                defaults,
            }),
            ..Policy::default()
        },
    );
    let runs = [
        json!({"template": "k6"}),
        json!({"template": "newman", "env": {"COLLECTION_URL": "https://example.com/c.json"}}),
        json!({"template": "playwright", "resources": {"requests": {"cpu": "1500m"}}}),
        json!({"template": "pytest", "backoff_limit": 1, "ttl_seconds_after_finished": 60}),
        json!({"image": "busybox:1.36", "commands": ["echo hi", "true"], "env": {"A": "1"}}),
        json!({"image": "busybox:1.36", "argv": ["sleep", "1"], "timeout_seconds": 5,
               "resources": {"limits": {"cpu": "50m"}, "requests": {"memory": "1Gi"}}}),
    ];
    for run in &runs {
        let (code, reply) = call_json(&state, "POST", "/api/test-runs", run.clone()).await;
        assert_eq!(code, 201, "{run}: {reply}");
    }
    let posted = api.mock.received_requests().await.unwrap();
    assert_eq!(posted.len(), runs.len());
    for (run, request) in runs.iter().zip(&posted) {
        let job: Value = serde_json::from_slice(&request.body).unwrap();
        assert_valid_job(&format!("POSTed for {run}"), &job);
    }
}

// ---------------------------------------------------------------------------------
// The wiring on real bodies

#[test]
fn the_recorded_create_requests_validate() {
    for name in ["57_job_create_201", "58_job_create_conflict_409"] {
        let meta = read_json(&recorded_dir().join(format!("{name}.meta.json")));
        assert_eq!(meta["method"], "POST");
        let body = &meta["request_body"];
        assert_eq!(body["kind"], "Job", "{name}");
        assert_valid_job(name, body);
    }
}

#[test]
fn the_job_the_apiserver_returned_validates() {
    // The created Job as the apiserver answered it: status, managedFields,
    // `creationTimestamp: null` in the pod template, defaults filled in. Every one of
    // its fields is known to the schema.
    let job: Value = serde_json::from_slice(&recorded("57_job_create_201").body).unwrap();
    assert_valid_job("57_job_create_201 answer", &job);
}

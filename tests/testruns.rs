//! The TestRun controller (`--watch-testruns`) against a stateful fake apiserver
//! (tests/common/testruns.rs: TestRuns, Jobs and Leases with resourceVersions, watches,
//! 409s and 410s as kube-apiserver answers them): a TestRun becomes its owned Job and
//! its status follows the Job; refused specs, unknown templates, a Job that exists
//! already, a conflicting status write, an expired watch, a changed spec, leadership
//! (a fake gate, and the real `crate::lease` election between two controllers); the
//! metrics; and the CRD (deploy/components/testruns/crd.yaml) against what the
//! controller writes and the README's example.

mod common;
#[path = "common/testruns.rs"]
mod fake_kube;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use fake_kube::{FakeKube, JOBS, LEASES, TESTRUNS, conflict};
use serde_json::{Value, json};
use sparktest_k8s::runs::RunDefaults;
use sparktest_k8s::runs::templates::Templates;
use sparktest_k8s::state::RunConfig;
use sparktest_k8s::testruns::resource::phase;
use sparktest_k8s::testruns::{Controller, ControllerOptions, WatchGate};

/// Long enough for any step of a controller on a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(15);

/// Tests that start controllers hold this for reading; the test that reads the
/// process-wide leader gauge holds it for writing, alone.
static CONTROLLERS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn options() -> ControllerOptions {
    ControllerOptions {
        // No resync unless a test asks for one: every step here is event-driven.
        resync: Duration::from_secs(3600),
        backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(500),
    }
}

fn config() -> RunConfig {
    RunConfig {
        defaults: RunDefaults::default(),
        templates: Templates::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/templates.yaml"),
            &RunDefaults::default(),
        )
        .unwrap(),
    }
}

fn client(kube: &FakeKube) -> sparktest_k8s::kube::Client {
    common::plain_http_client(&kube.url(), Duration::from_secs(5))
}

/// A controller of namespace `default` behind a fake gate.
struct Running {
    gate: tokio::sync::watch::Sender<bool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn start(kube: &FakeKube, leading: bool) -> Self {
        Self::start_with(kube, config(), options(), leading)
    }

    fn start_with(
        kube: &FakeKube,
        runs: RunConfig,
        options: ControllerOptions,
        leading: bool,
    ) -> Self {
        let (gate, leader) = WatchGate::new(leading);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let controller = Controller::new(
            client(kube),
            vec!["default".parse().unwrap()],
            Arc::new(runs),
            options,
        );
        let task = tokio::spawn(controller.run(leader, async move {
            let _ = stopped.await;
        }));
        Self {
            gate,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("the controller stops")
            .unwrap();
    }
}

fn uid_of(run: &Value) -> String {
    run["metadata"]["uid"].as_str().unwrap().to_string()
}

fn job_of(run: &Value) -> String {
    format!("test-run-{}", uid_of(run))
}

fn status(kube: &FakeKube, name: &str) -> Value {
    kube.get(TESTRUNS, name)
        .map_or(Value::Null, |r| r["status"].clone())
}

fn phase_of(kube: &FakeKube, name: &str) -> Option<String> {
    status(kube, name)["phase"].as_str().map(str::to_string)
}

fn condition(status: &Value, type_: &str) -> Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_).cloned())
        .unwrap_or(Value::Null)
}

async fn until_phase(kube: &FakeKube, name: &str, want: &str) -> Value {
    let reached = kube
        .wait_for(WAIT, |k| phase_of(k, name).as_deref() == Some(want))
        .await;
    assert!(
        reached,
        "{name} never reached {want}: {}",
        status(kube, name)
    );
    status(kube, name)
}

/// The status writes of a TestRun the apiserver accepted. (Under load, a watch event
/// older than the controller's own last write may briefly stand in its store: its next
/// write then carries an old resourceVersion and is refused with 409, as it should be,
/// and it reads the TestRun again. Those attempts are not writes.)
fn status_writes(kube: &FakeKube, name: &str) -> usize {
    kube.status_writes(TESTRUNS, name)
}

fn job_creates(kube: &FakeKube) -> Vec<fake_kube::Request> {
    kube.requests_to("POST", JOBS)
}

/// The CRD of deploy/components/testruns, as JSON.
fn crd() -> &'static Value {
    static CRD: OnceLock<Value> = OnceLock::new();
    CRD.get_or_init(|| {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/components/testruns/crd.yaml"),
        )
        .unwrap();
        serde_saphyr::from_str(&text).unwrap()
    })
}

/// The schema as the apiserver applies it: what it does not list is pruned, so here
/// it is refused (`additionalProperties: false` wherever properties are listed).
fn pruning(mut schema: Value) -> Value {
    fn walk(node: &mut Value) {
        let Some(map) = node.as_object_mut() else {
            return;
        };
        if map.contains_key("properties") && !map.contains_key("additionalProperties") {
            map.insert("additionalProperties".into(), false.into());
        }
        for key in ["properties"] {
            if let Some(Value::Object(props)) = map.get_mut(key) {
                props.values_mut().for_each(walk);
            }
        }
        for key in ["items", "additionalProperties"] {
            if let Some(sub) = map.get_mut(key) {
                walk(sub);
            }
        }
    }
    walk(&mut schema);
    // metadata is the apiserver's own; the CRD says only `type: object`.
    schema
}

fn schema() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
        jsonschema::validator_for(&pruning(schema)).unwrap()
    })
}

fn status_schema() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema =
            crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
                .clone();
        jsonschema::validator_for(&pruning(schema)).unwrap()
    })
}

fn assert_valid(validator: &jsonschema::Validator, what: &str, value: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:?}\n{value:#}");
}

/// Every status the controller wrote validates against the CRD's status schema
/// (nothing it writes would be pruned, so a status read back compares equal).
fn assert_written_statuses_valid(kube: &FakeKube) {
    for write in kube
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with("/status"))
    {
        let body = write.body.expect("a status write has a body");
        assert_eq!(body["apiVersion"], "sparktest.dev/v1alpha1");
        assert_eq!(body["kind"], "TestRun");
        assert!(body["metadata"]["resourceVersion"].is_string(), "{body}");
        assert_valid(status_schema(), "a written status", &body["status"]);
    }
}

fn valid_spec() -> Value {
    json!({
        "image": "busybox:1.36",
        "commands": ["echo start", "sleep 1"],
        "env": {"SUITE": "smoke"},
        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
        "timeoutSeconds": 600,
        "name": "Nightly smoke",
        "testDefinitionId": "7a1b2c3d-0000-4000-8000-000000000001",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_testrun_becomes_its_owned_job_and_its_status_follows_the_job() {
    let _serial = CONTROLLERS.read().await;
    let kube = FakeKube::start().await;
    let run = kube.create_testrun("nightly", valid_spec());
    let uid = uid_of(&run);
    let job = job_of(&run);
    let controller = Running::start(&kube, true);

    // The Job: the REST path's body for this run (run id = the TestRun's uid), owned by
    // the TestRun.
    assert!(
        kube.wait_for(WAIT, |k| k.get(JOBS, &job).is_some()).await,
        "no Job created"
    );
    let posted = job_creates(&kube)[0].body.clone().unwrap();
    let identity = sparktest_k8s::runs::RunIdentity {
        run_id: uid.parse().unwrap(),
        template: None,
        name: Some("Nightly smoke".parse().unwrap()),
        test_definition_id: Some("7a1b2c3d-0000-4000-8000-000000000001".parse().unwrap()),
    };
    let rest: sparktest_k8s::runs::RunSpec = serde_json::from_value(json!({
        "image": "busybox:1.36", "commands": ["echo start", "sleep 1"], "env": {"SUITE": "smoke"},
        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}, "timeout_seconds": 600
    }))
    .unwrap();
    let mut expected = sparktest_k8s::runs::job_body(
        &identity,
        &"default".parse().unwrap(),
        &rest.resolve(&RunDefaults::default()).unwrap(),
    );
    expected["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "sparktest.dev/v1alpha1", "kind": "TestRun", "name": "nightly",
        "uid": uid, "controller": true, "blockOwnerDeletion": true
    }]);
    assert_eq!(
        posted, expected,
        "the REST path's Job, with the ownerReference"
    );
    assert_eq!(posted["metadata"]["name"], job.as_str());
    let labels = &posted["metadata"]["labels"];
    assert_eq!(labels["sparktest.dev/run-id"], uid.as_str());
    assert_eq!(labels["app.kubernetes.io/managed-by"], "sparktest");
    assert_eq!(labels["app"], "sparktest");
    assert_eq!(
        labels["sparktest.dev/definition-id"],
        "7a1b2c3d-0000-4000-8000-000000000001"
    );
    assert_eq!(
        posted["metadata"]["annotations"]["sparktest.dev/name"],
        "Nightly smoke"
    );
    assert_eq!(posted["spec"]["activeDeadlineSeconds"], 600);
    job_schema::assert_valid_job(&posted);

    // Pending: accepted, the Job named, nothing started.
    let s = until_phase(&kube, "nightly", phase::PENDING).await;
    assert_eq!(s["runId"], uid.as_str());
    assert_eq!(s["jobName"], job.as_str());
    assert_eq!(s["observedGeneration"], 1);
    assert!(s.get("startedAt").is_none(), "{s}");
    assert_eq!(condition(&s, "Accepted")["status"], "True");
    assert_eq!(condition(&s, "Accepted")["reason"], "JobCreated");
    assert_eq!(condition(&s, "Complete")["status"], "False");

    // Running, from the Job's status.
    kube.set_job_status(
        &job,
        json!({"active": 1, "ready": 1, "startTime": "2026-03-01T11:00:05Z"}),
    );
    let s = until_phase(&kube, "nightly", phase::RUNNING).await;
    assert_eq!(s["startedAt"], "2026-03-01T11:00:05Z");
    assert_eq!(condition(&s, "Complete")["reason"], "Running");

    // Succeeded.
    kube.set_job_status(
        &job,
        json!({"succeeded": 1, "startTime": "2026-03-01T11:00:05Z",
               "completionTime": "2026-03-01T11:03:00Z",
               "conditions": [{"type": "Complete", "status": "True",
                               "lastTransitionTime": "2026-03-01T11:03:00Z"}]}),
    );
    let s = until_phase(&kube, "nightly", phase::SUCCEEDED).await;
    assert_eq!(s["finishedAt"], "2026-03-01T11:03:00Z");
    let complete = condition(&s, "Complete");
    assert_eq!(
        (complete["status"].as_str(), complete["reason"].as_str()),
        (Some("True"), Some("Succeeded"))
    );
    assert_eq!(complete["lastTransitionTime"], "2026-03-01T11:03:00Z");
    assert_eq!(job_creates(&kube).len(), 1, "one Job");

    // Written only on change: three transitions, three writes. Events that change
    // nothing (a label on the TestRun, the Job's labels, the Job removed by its TTL) write
    // nothing and create nothing.
    assert_eq!(status_writes(&kube, "nightly"), 3);
    kube.modify(TESTRUNS, "nightly", |r| {
        r["metadata"]["labels"] = json!({"team": "a"})
    });
    kube.modify(JOBS, &job, |j| {
        j["metadata"]["labels"]["extra"] = "1".into()
    });
    kube.delete(JOBS, &job);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(status_writes(&kube, "nightly"), 3, "nothing changed");
    assert_eq!(
        phase_of(&kube, "nightly").as_deref(),
        Some(phase::SUCCEEDED)
    );
    assert_eq!(
        job_creates(&kube).len(),
        1,
        "a finished run is never run again"
    );
    assert_written_statuses_valid(&kube);
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_deadline_a_run_timed_out_and_out_of_retries_it_failed() {
    let _serial = CONTROLLERS.read().await;
    let kube = FakeKube::start().await;
    let slow = kube.create_testrun("slow", valid_spec());
    let flaky = kube.create_testrun("flaky", valid_spec());
    let controller = Running::start(&kube, true);
    for run in ["slow", "flaky"] {
        until_phase(&kube, run, phase::PENDING).await;
    }
    kube.set_job_status(
        &job_of(&slow),
        json!({"failed": 1, "startTime": "2026-03-01T11:00:05Z",
               "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                   "message": "Job was active longer than specified deadline",
                   "lastTransitionTime": "2026-03-01T11:10:05Z"}]}),
    );
    kube.set_job_status(
        &job_of(&flaky),
        json!({"failed": 1, "startTime": "2026-03-01T11:00:05Z",
               "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                   "message": "Job has reached the specified backoff limit",
                   "lastTransitionTime": "2026-03-01T11:01:00Z"}]}),
    );
    let s = until_phase(&kube, "slow", phase::TIMED_OUT).await;
    let c = condition(&s, "Complete");
    assert_eq!(
        (c["status"].as_str(), c["reason"].as_str()),
        (Some("True"), Some("DeadlineExceeded"))
    );
    assert_eq!(
        c["message"],
        "Job was active longer than specified deadline"
    );
    assert_eq!(s["finishedAt"], "2026-03-01T11:10:05Z");
    let s = until_phase(&kube, "flaky", phase::FAILED).await;
    assert_eq!(condition(&s, "Complete")["reason"], "BackoffLimitExceeded");
    assert_eq!(s["finishedAt"], "2026-03-01T11:01:00Z");
    assert_written_statuses_valid(&kube);
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_spec_fails_with_accepted_false_naming_the_field_and_no_job() {
    let _serial = CONTROLLERS.read().await;
    let kube = FakeKube::start().await;
    let mut spec = valid_spec();
    spec["resources"]["limits"]["memory"] = "64Gi".into();
    let run = kube.create_testrun("too-big", spec);
    kube.create_testrun("no-image", json!({"commands": ["true"]}));
    let controller = Running::start(&kube, true);
    let s = until_phase(&kube, "too-big", phase::FAILED).await;
    let accepted = condition(&s, "Accepted");
    assert_eq!(accepted["status"], "False");
    assert_eq!(accepted["reason"], "InvalidSpec");
    assert_eq!(
        accepted["message"],
        "spec.resources.limits.memory: 64Gi exceeds the configured maximum 8Gi"
    );
    assert_eq!(condition(&s, "Complete")["status"], "True");
    assert_eq!(s["runId"], uid_of(&run).as_str());
    assert!(s.get("jobName").is_none(), "{s}");
    assert_eq!(s["observedGeneration"], 1);
    let s = until_phase(&kube, "no-image", phase::FAILED).await;
    assert!(
        condition(&s, "Accepted")["message"]
            .as_str()
            .unwrap()
            .starts_with("spec.image: required"),
        "{s}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(job_creates(&kube).is_empty(), "no Job for a refused spec");
    assert!(kube.list(JOBS).is_empty());
    assert_eq!(
        status_writes(&kube, "too-big"),
        1,
        "refused once, then final"
    );
    assert_written_statuses_valid(&kube);
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_is_merged_like_the_rest_path_and_an_unknown_one_is_template_not_found() {
    let _serial = CONTROLLERS.read().await;
    let kube = FakeKube::start().await;
    kube.create_testrun("missing", json!({"template": "jmeter"}));
    let from_template = kube.create_testrun(
        "pytest",
        json!({"template": "pytest", "env": {"REPO_URL": "https://git.example.com/app.git"}}),
    );
    let controller = Running::start(&kube, true);
    let s = until_phase(&kube, "missing", phase::FAILED).await;
    let accepted = condition(&s, "Accepted");
    assert_eq!(accepted["reason"], "TemplateNotFound");
    assert_eq!(
        accepted["message"],
        "spec.template: no template named 'jmeter' (known: k6, newman, playwright, pytest)"
    );
    until_phase(&kube, "pytest", phase::PENDING).await;
    let creates = job_creates(&kube);
    assert_eq!(creates.len(), 1, "only the known template's run");
    let body = creates[0].body.clone().unwrap();
    assert_eq!(body["metadata"]["name"], job_of(&from_template).as_str());
    assert_eq!(
        body["metadata"]["labels"]["sparktest.dev/template"],
        "pytest"
    );
    let container = &body["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "python:3.12");
    let env: Vec<&str> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"REPO_URL") && env.contains(&"PYTHONUNBUFFERED"),
        "{env:?}"
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_exists_already_is_taken_not_an_error() {
    let _serial = CONTROLLERS.read().await;
    let kube = FakeKube::start().await;
    let run = kube.create_testrun("again", valid_spec());
    let job = job_of(&run);
    // The Job was made (by the replica that led before) and this controller does not
    // see it yet: not in its watch (here: without the label it selects by), and the
    // read that raced its creation said 404. Its create is then a 409 AlreadyExists.
    kube.create(
        JOBS,
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": job, "ownerReferences": [{
                   "apiVersion": "sparktest.dev/v1alpha1", "kind": "TestRun", "name": "again",
                   "uid": uid_of(&run), "controller": true, "blockOwnerDeletion": true}]},
               "status": {"active": 1, "startTime": "2026-03-01T11:00:05Z"}}),
    );
    kube.fail_next(
        "GET",
        &format!("{JOBS}/{job}"),
        (
            404,
            json!({"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}),
        ),
    );
    let errors_before = reconciles("error");
    let controller = Running::start(&kube, true);
    let s = until_phase(&kube, "again", phase::RUNNING).await;
    assert_eq!(s["jobName"], job.as_str());
    assert_eq!(condition(&s, "Accepted")["status"], "True");
    assert_eq!(job_creates(&kube).len(), 1, "one create, answered 409");
    assert_eq!(kube.list(JOBS).len(), 1);
    assert_eq!(
        reconciles("error"),
        errors_before,
        "an existing Job is not an error"
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_status_write_is_read_again_decided_again_and_written() {
    let _serial = CONTROLLERS.read().await;
    let kube = FakeKube::start().await;
    kube.create_testrun("contested", valid_spec());
    let path = format!("{TESTRUNS}/contested/status");
    kube.fail_next("PUT", &path, conflict("contested"));
    kube.fail_next("PUT", &path, conflict("contested"));
    let errors_before = reconciles("error");
    let controller = Running::start(&kube, true);
    until_phase(&kube, "contested", phase::PENDING).await;
    let sequence: Vec<String> = kube
        .requests()
        .into_iter()
        .filter(|r| r.path == path || r.path == format!("{TESTRUNS}/contested"))
        .map(|r| format!("{} {}", r.method, r.path.rsplit('/').next().unwrap()))
        .collect();
    assert_eq!(
        sequence,
        [
            "PUT status",
            "GET contested",
            "PUT status",
            "GET contested",
            "PUT status"
        ],
        "each 409: read again, decide again, write"
    );
    assert_eq!(job_creates(&kube).len(), 1, "the Job is not created again");
    assert_eq!(
        reconciles("error"),
        errors_before,
        "retried within the reconcile"
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_watch_410_is_listed_again() {
    let _serial = CONTROLLERS.read().await;
    let kube = FakeKube::start().await;
    // The controller's first list is old (resourceVersion 1, empty), and the history
    // after it is compacted: its watch gets ERROR 410 and it must list again to find
    // the TestRun.
    kube.create_testrun("late", valid_spec());
    kube.stale_lists(TESTRUNS, 1);
    kube.expire_watches();
    let controller = Running::start(&kube, true);
    until_phase(&kube, "late", phase::PENDING).await;
    let requests = kube.requests_to("GET", TESTRUNS);
    let lists = requests.iter().filter(|r| !r.is_watch()).count();
    let expired = requests
        .iter()
        .filter(|r| r.is_watch() && r.query.contains("resourceVersion=1&"))
        .count();
    assert_eq!(lists, 2, "listed, then listed again after the 410");
    assert_eq!(expired, 1, "the watch from the old list's version");
    assert!(
        requests
            .iter()
            .all(|r| r.is_watch() || r.query == "limit=500"),
        "lists are paged: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.is_watch())
            .all(|r| r.query.contains("allowWatchBookmarks=true")),
        "watches ask for bookmarks"
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_spec_does_not_restart_a_started_run() {
    let _serial = CONTROLLERS.read().await;
    let kube = FakeKube::start().await;
    let run = kube.create_testrun("steady", valid_spec());
    let controller = Running::start(&kube, true);
    until_phase(&kube, "steady", phase::PENDING).await;
    kube.modify(TESTRUNS, "steady", |r| {
        r["spec"]["image"] = "busybox:1.37".into();
        r["spec"]["commands"] = json!(["exit 1"]);
    });
    kube.set_job_status(
        &job_of(&run),
        json!({"active": 1, "startTime": "2026-03-01T11:00:05Z"}),
    );
    let s = until_phase(&kube, "steady", phase::RUNNING).await;
    let current = kube.get(TESTRUNS, "steady").unwrap();
    assert_eq!(current["metadata"]["generation"], 2);
    assert_eq!(s["observedGeneration"], 1, "what was acted on");
    assert_eq!(condition(&s, "Accepted")["observedGeneration"], 1);
    assert_eq!(job_creates(&kube).len(), 1, "not restarted");
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_is_retried_with_backoff_and_a_job_deleted_midway_fails_the_run() {
    let _serial = CONTROLLERS.read().await;
    let kube = FakeKube::start().await;
    let run = kube.create_testrun("retried", valid_spec());
    kube.fail_next(
        "POST",
        JOBS,
        (500, json!({"kind": "Status", "status": "Failure", "message": "etcdserver: request timed out", "code": 500})),
    );
    let errors_before = reconciles("error");
    let controller = Running::start(&kube, true);
    until_phase(&kube, "retried", phase::PENDING).await;
    assert_eq!(
        job_creates(&kube).len(),
        2,
        "failed once, then created on the retry"
    );
    assert!(reconciles("error") > errors_before);
    // Its Job deleted while it runs: Failed (JobDeleted), and never started again.
    kube.set_job_status(
        &job_of(&run),
        json!({"active": 1, "startTime": "2026-03-01T11:00:05Z"}),
    );
    until_phase(&kube, "retried", phase::RUNNING).await;
    kube.delete(JOBS, &job_of(&run));
    let s = until_phase(&kube, "retried", phase::FAILED).await;
    let complete = condition(&s, "Complete");
    assert_eq!(complete["reason"], "JobDeleted");
    assert_eq!(s["startedAt"], "2026-03-01T11:00:05Z");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(job_creates(&kube).len(), 2, "not started again");
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resync_catches_what_no_watch_reports() {
    let _serial = CONTROLLERS.read().await;
    let kube = FakeKube::start().await;
    let run = kube.create_testrun("unwatched", valid_spec());
    let job = job_of(&run);
    // Its Job lost the `app: sparktest` label the Job watch selects by: no event of it
    // ever reaches the controller, which reads it directly when it reconciles.
    kube.create(
        JOBS,
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": job, "ownerReferences": [{
                   "apiVersion": "sparktest.dev/v1alpha1", "kind": "TestRun", "name": "unwatched",
                   "uid": uid_of(&run), "controller": true, "blockOwnerDeletion": true}]},
               "status": {}}),
    );
    let controller = Running::start_with(
        &kube,
        config(),
        ControllerOptions {
            resync: Duration::from_millis(700),
            ..options()
        },
        true,
    );
    until_phase(&kube, "unwatched", phase::PENDING).await;
    let reads = || kube.requests_to("GET", &format!("{JOBS}/{job}")).len();
    let before = reads();
    kube.set_job_status(
        &job,
        json!({"active": 1, "startTime": "2026-03-01T11:00:05Z"}),
    );
    until_phase(&kube, "unwatched", phase::RUNNING).await;
    assert!(reads() > before, "read again by the resync");
    assert!(job_creates(&kube).is_empty(), "adopted, never created");
    controller.stop().await;
}

/// The process-wide counter of reconciles with this result.
fn reconciles(result: &str) -> f64 {
    let text = sparktest_k8s::metrics::metrics().encode();
    let prefix = format!("sparktest_k8s_testrun_reconciles_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

fn leader_gauge() -> f64 {
    let text = sparktest_k8s::metrics::metrics().encode();
    text.lines()
        .find_map(|l| l.strip_prefix("sparktest_k8s_testrun_leader "))
        .map_or(-1.0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_reconciles_and_a_new_leader_starts_from_a_fresh_list() {
    // Alone: the leader gauge is process-wide.
    let _alone = CONTROLLERS.write().await;
    let kube = FakeKube::start().await;
    let run = kube.create_testrun("gated", valid_spec());
    let controller = Running::start(&kube, false);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        kube.requests()
            .iter()
            .all(|r| !r.path.starts_with(TESTRUNS) && r.path != JOBS),
        "not leading: no list, no watch, no write: {:?}",
        kube.requests()
    );
    assert_eq!(leader_gauge(), 0.0);

    controller.gate.send_replace(true);
    until_phase(&kube, "gated", phase::PENDING).await;
    assert_eq!(leader_gauge(), 1.0);

    // Leadership lost: the workers and their watches stop at once; what happens
    // meanwhile is not acted on.
    controller.gate.send_replace(false);
    assert!(kube.wait_for(WAIT, |_| leader_gauge() == 0.0).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = kube.requests().len();
    kube.set_job_status(
        &job_of(&run),
        json!({"active": 1, "startTime": "2026-03-01T11:00:05Z"}),
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let meanwhile = kube.requests().split_off(seen);
    assert!(
        meanwhile.is_empty(),
        "a follower makes no call at all: {meanwhile:?}"
    );
    assert_eq!(phase_of(&kube, "gated").as_deref(), Some(phase::PENDING));

    // Leading again: a new term lists afresh and catches up.
    let lists = kube
        .requests_to("GET", TESTRUNS)
        .iter()
        .filter(|r| !r.is_watch())
        .count();
    controller.gate.send_replace(true);
    until_phase(&kube, "gated", phase::RUNNING).await;
    let relisted = kube
        .requests_to("GET", TESTRUNS)
        .iter()
        .filter(|r| !r.is_watch())
        .count();
    assert_eq!(relisted, lists + 1);
    controller.stop().await;
    assert_eq!(leader_gauge(), 0.0, "0 once stopped");
}

/// Two replicas electing through the Lease (crate::lease, as the service runs them):
/// one reconciles; when it stops it hands the Lease back and the other takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_elect_one_reconciler_and_hand_over_on_shutdown() {
    let _serial = CONTROLLERS.read().await;
    let kube = FakeKube::start().await;
    let lease = |identity: &str| sparktest_k8s::lease::LeaseConfig {
        namespace: "default".parse().unwrap(),
        name: sparktest_k8s::testruns::LEASE_NAME.into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(200),
    };
    let replica = |identity: &str| {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = sparktest_k8s::testruns::spawn_elected(
            client(&kube),
            vec!["default".parse().unwrap()],
            Arc::new(config()),
            lease(identity),
            options(),
            async move {
                let _ = stopped.await;
            },
        );
        (stop, task)
    };
    let holder = |k: &FakeKube| {
        k.get(LEASES, sparktest_k8s::testruns::LEASE_NAME)
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
    };
    let (stop_a, task_a) = replica("replica-a");
    assert!(
        kube.wait_for(WAIT, |k| holder(k).as_deref() == Some("replica-a"))
            .await,
        "replica-a leads"
    );
    let (stop_b, task_b) = replica("replica-b");
    let run = kube.create_testrun("elected", valid_spec());
    until_phase(&kube, "elected", phase::PENDING).await;
    // Meanwhile replica-b only read the Lease: one term, one list.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let lists = || {
        kube.requests_to("GET", TESTRUNS)
            .iter()
            .filter(|r| !r.is_watch())
            .count()
    };
    assert_eq!(lists(), 1, "only the leader lists TestRuns");
    assert_eq!(holder(&kube).as_deref(), Some("replica-a"));
    assert_eq!(job_creates(&kube).len(), 1);

    // replica-a shuts down: its controller stops, then it releases the Lease, and
    // replica-b takes over without waiting for the Lease to expire.
    let _ = stop_a.send(());
    tokio::time::timeout(WAIT, task_a).await.unwrap().unwrap();
    let released = std::time::Instant::now();
    assert!(
        kube.wait_for(WAIT, |k| holder(k).as_deref() == Some("replica-b"))
            .await,
        "replica-b leads"
    );
    assert!(
        released.elapsed() < Duration::from_secs(3),
        "taken over before the lease duration: {:?}",
        released.elapsed()
    );
    kube.set_job_status(
        &job_of(&run),
        json!({"active": 1, "startTime": "2026-03-01T11:00:05Z"}),
    );
    until_phase(&kube, "elected", phase::RUNNING).await;
    assert_eq!(lists(), 2, "replica-b's term listed afresh");
    assert_eq!(job_creates(&kube).len(), 1, "the run was not started twice");
    let _ = stop_b.send(());
    tokio::time::timeout(WAIT, task_b).await.unwrap().unwrap();
    let lease = kube
        .get(LEASES, sparktest_k8s::testruns::LEASE_NAME)
        .unwrap();
    assert_eq!(
        lease["spec"]["holderIdentity"], "",
        "released on shutdown: {lease}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_count_reconciles_by_a_fixed_set_of_results() {
    let _serial = CONTROLLERS.read().await;
    let kube = FakeKube::start().await;
    let before: Vec<f64> = ["created", "updated", "unchanged", "invalid"]
        .iter()
        .map(|r| reconciles(r))
        .collect();
    let run = kube.create_testrun("counted", valid_spec());
    kube.create_testrun("refused", json!({"image": "busybox"}));
    let controller = Running::start(&kube, true);
    until_phase(&kube, "counted", phase::PENDING).await;
    until_phase(&kube, "refused", phase::FAILED).await;
    kube.set_job_status(&job_of(&run), json!({"active": 1}));
    until_phase(&kube, "counted", phase::RUNNING).await;
    // Its own status write comes back as an event: unchanged.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (i, result) in ["created", "updated", "unchanged", "invalid"]
        .iter()
        .enumerate()
    {
        assert!(reconciles(result) > before[i], "{result}");
    }
    // Scraped as Prometheus would: OpenMetrics, the families typed and helped, every
    // result label from the fixed set.
    let state = common::state_without_cluster(Default::default());
    let response = warp::test::request()
        .path("/metrics")
        .reply(&sparktest_k8s::api::routes(state))
        .await;
    let body = String::from_utf8(response.body().to_vec()).unwrap();
    let parsed = openmetrics_parser::openmetrics::parse_openmetrics(&body).unwrap();
    let reconciles = &parsed.families["sparktest_k8s_testrun_reconciles"];
    assert_eq!(
        reconciles.family_type,
        openmetrics_parser::OpenMetricsType::Counter
    );
    assert!(!reconciles.help.is_empty());
    let mut results: Vec<String> = reconciles
        .iter_samples()
        .map(|s| {
            s.get_labelset()
                .unwrap()
                .get_label_value("result")
                .unwrap()
                .to_string()
        })
        .collect();
    results.sort();
    assert_eq!(
        results,
        ["created", "error", "invalid", "unchanged", "updated"]
    );
    let leader = &parsed.families["sparktest_k8s_testrun_leader"];
    assert_eq!(
        leader.family_type,
        openmetrics_parser::OpenMetricsType::Gauge
    );
    controller.stop().await;
}

#[test]
fn the_crd_matches_the_code() {
    let spec = &crd()["spec"];
    assert_eq!(spec["group"], sparktest_k8s::testruns::GROUP);
    assert_eq!(spec["names"]["kind"], sparktest_k8s::testruns::KIND);
    assert_eq!(spec["names"]["plural"], sparktest_k8s::testruns::PLURAL);
    assert_eq!(spec["names"]["shortNames"], json!(["strun"]));
    assert_eq!(spec["scope"], "Namespaced");
    let version = &spec["versions"][0];
    assert_eq!(version["name"], sparktest_k8s::testruns::VERSION);
    assert_eq!(version["subresources"], json!({"status": {}}));
    let schema = &version["schema"]["openAPIV3Schema"]["properties"];
    assert_eq!(
        schema["status"]["properties"]["phase"]["enum"],
        json!(phase::ALL)
    );
    // Every spec field the controller reads is in the schema (else it is pruned), and
    // the schema has no field the controller would refuse as unknown.
    let mut fields: Vec<&str> = schema["spec"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "argv",
            "backoffLimit",
            "commands",
            "env",
            "image",
            "name",
            "resources",
            "template",
            "testDefinitionId",
            "timeoutSeconds",
            "ttlSecondsAfterFinished"
        ]
    );
    let runs = config();
    for field in &fields {
        let one = json!({ *field: Value::Null });
        assert!(
            !matches!(
                sparktest_k8s::testruns::spec::accept(
                    "0b6f3a52-3d2c-4c3e-9d8a-5b1f6f0e2a11",
                    &one,
                    &runs
                ),
                Err(sparktest_k8s::testruns::spec::Refusal::InvalidSpec { ref message, .. })
                    if message.starts_with("unknown field")
            ),
            "{field} is known to the controller"
        );
    }
}

#[test]
fn the_schema_takes_what_the_controller_writes_and_refuses_what_it_would_prune() {
    let written = json!({
        "phase": "TimedOut", "runId": "0b6f3a52-3d2c-4c3e-9d8a-5b1f6f0e2a11",
        "jobName": "test-run-0b6f3a52-3d2c-4c3e-9d8a-5b1f6f0e2a11",
        "startedAt": "2026-03-01T11:00:05Z", "finishedAt": "2026-03-01T11:10:05Z",
        "observedGeneration": 1,
        "conditions": [
            {"type": "Accepted", "status": "True", "observedGeneration": 1,
             "lastTransitionTime": "2026-03-01T11:00:00Z", "reason": "JobCreated", "message": "m"},
            {"type": "Complete", "status": "True", "observedGeneration": 1,
             "lastTransitionTime": "2026-03-01T11:10:05Z", "reason": "DeadlineExceeded", "message": ""}]
    });
    assert_valid(status_schema(), "a status", &written);
    for broken in [
        json!({"phase": "Done"}),
        json!({"startedat": "2026-03-01T11:00:05Z"}),
        json!({"conditions": [{"type": "Complete", "status": "True", "reason": "Deadline Exceeded",
            "lastTransitionTime": "2026-03-01T11:10:05Z", "message": ""}]}),
        json!({"conditions": [{"type": "Complete", "status": "Yes", "reason": "R",
            "lastTransitionTime": "2026-03-01T11:10:05Z", "message": ""}]}),
        json!({"conditions": [{"type": "Complete", "status": "True", "reason": "R",
            "lastTransitionTime": "2026-03-01T11:10:05Z"}]}),
    ] {
        assert!(!status_schema().is_valid(&broken), "accepted: {broken}");
    }
    // The spec: quantities as strings or integers, never floats; env values strings.
    let run = |spec: Value| {
        json!({"apiVersion": "sparktest.dev/v1alpha1", "kind": "TestRun",
        "metadata": {"name": "x"}, "spec": spec})
    };
    assert_valid(
        schema(),
        "a spec",
        &run(
            json!({"image": "x", "argv": ["y"], "resources": {"requests": {"cpu": 1, "memory": "1Gi"}}}),
        ),
    );
    for broken in [
        json!({"image": "x", "resources": {"limits": {"cpu": 0.5}}}),
        json!({"image": "x", "env": {"A": 1}}),
        json!({"image": "x", "timeoutSeconds": "600"}),
        json!({"image": "x", "timout": 600}),
    ] {
        assert!(
            !schema().is_valid(&run(broken.clone())),
            "accepted: {broken}"
        );
    }
}

/// The README's example TestRun is valid for the CRD and accepted by the controller.
#[test]
fn the_readme_example_is_valid_and_accepted() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme
        .split("### Declarative runs: the TestRun resource")
        .nth(1)
        .expect("the README's TestRun section");
    let yaml = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("a YAML example in it");
    let example: Value = serde_saphyr::from_str(yaml).unwrap();
    assert_eq!(example["kind"], "TestRun");
    assert_valid(schema(), "the README's example", &example);
    let accepted = sparktest_k8s::testruns::spec::accept(
        "0b6f3a52-3d2c-4c3e-9d8a-5b1f6f0e2a11",
        &example["spec"],
        &config(),
    );
    assert!(accepted.is_ok(), "{accepted:?}");
}

/// The batch/v1 Job schema of tests/job_schema.rs (Kubernetes 1.37), for the Job the
/// controller creates: the REST path's body plus ownerReferences.
mod job_schema {
    use std::path::Path;
    use std::sync::OnceLock;

    use jsonschema::{Registry, Resource, Validator};
    use serde_json::Value;

    const DEFINITIONS_URI: &str = "https://kubernetes.io/api/_definitions.json";

    fn read(path: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn validator() -> &'static Validator {
        static VALIDATOR: OnceLock<Validator> = OnceLock::new();
        VALIDATOR.get_or_init(|| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/k8s-schemas/v1.37");
            let schema = read(&dir.join("job-batch-v1.json"));
            let registry: &'static Registry<'static> = Box::leak(Box::new(
                Registry::new()
                    .add(
                        DEFINITIONS_URI,
                        Resource::from_contents(read(&dir.join("_definitions.json"))),
                    )
                    .unwrap()
                    .prepare()
                    .unwrap(),
            ));
            jsonschema::options()
                .with_registry(registry)
                .build(&schema)
                .unwrap()
        })
    }

    pub fn assert_valid_job(job: &Value) {
        let errors: Vec<String> = validator()
            .iter_errors(job)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:?}\n{job:#}");
        let mut broken = job.clone();
        broken["metadata"]["ownerReferences"][0]["controller"] = "yes".into();
        assert!(
            !validator().is_valid(&broken),
            "the schema checks ownerReferences"
        );
    }
}

#[test]
fn the_controller_is_off_unless_asked_for() {
    use clap::Parser as _;
    use sparktest_k8s::cli::Cli;
    // The variable is not set where the tests run; the flag turns it on.
    if std::env::var_os("WATCH_TESTRUNS").is_none() {
        let cli = Cli::try_parse_from(["sparktest-k8s"]).unwrap();
        assert!(!cli.settings.watch_testruns, "off by default");
    }
    let cli = Cli::try_parse_from(["sparktest-k8s", "--watch-testruns"]).unwrap();
    assert!(cli.settings.watch_testruns);
}

/// What main.rs does with `--watch-testruns`: `testruns::start` on the service's state
/// (its client, namespaces and templates), leader election with the service's Lease,
/// and on the drain the controller stops and the Lease is handed back before the
/// returned task ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_starts_the_controller_and_hands_the_lease_back_when_it_drains() {
    let _serial = CONTROLLERS.read().await;
    let kube = FakeKube::start().await;
    kube.create_testrun("served", json!({"template": "k6"}));
    let policy = sparktest_k8s::state::Policy {
        runs: Arc::new(config()),
        ..Default::default()
    };
    let state = sparktest_k8s::AppState::with_policy(
        sparktest_k8s::state::Connection {
            client: Ok(client(&kube)),
            source: None,
        },
        "default".parse().unwrap(),
        sparktest_k8s::state::LogLimits {
            max_lines: 10,
            max_bytes: 1024,
        },
        sparktest_k8s::state::StreamLimits::default(),
        policy,
    );
    let task = sparktest_k8s::testruns::start(&state).expect("a cluster: started");
    // The service's templates reach the controller: k6 is one of examples/templates.yaml.
    until_phase(&kube, "served", phase::PENDING).await;
    let lease = kube
        .get(LEASES, sparktest_k8s::testruns::LEASE_NAME)
        .unwrap();
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 15);
    assert_ne!(lease["spec"]["holderIdentity"], "");
    state.begin_shutdown();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("stopped with the drain")
        .unwrap();
    let lease = kube
        .get(LEASES, sparktest_k8s::testruns::LEASE_NAME)
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "", "handed back: {lease}");
    // Without a cluster there is nothing to start.
    assert!(
        sparktest_k8s::testruns::start(&common::state_without_cluster(Default::default()))
            .is_none()
    );
}

//! Integration tests against a REAL cluster: the service runs in-process (on
//! 127.0.0.1:0) against whatever cluster the current kubeconfig names, finding it the
//! way the binary does (`KUBECONFIG`, else in-cluster, else `~/.kube/config`;
//! `KUBE_CONTEXT` picks a context), and creates, follows, reads, lists and deletes real
//! Jobs running `busybox:1.36` from Docker Hub.
//!
//! Every test is `#[ignore]`d. To run them:
//!
//! ```bash
//! kind create cluster                              # or k3d / minikube; any kubeconfig will do
//! cargo test --test cluster -- --ignored           # these tests only
//! cargo test -- --ignored                          # every ignored test of the crate
//! SPARKTEST_IT_NAMESPACE=sparktest-it cargo test --test cluster -- --ignored
//! ```
//!
//! The Jobs go to the namespace `SPARKTEST_IT_NAMESPACE` (default `default`), which
//! must exist; the kubeconfig's user needs the documented Role's permissions there
//! (README, "RBAC": jobs get/list/create/delete/watch, pods get/list/watch, pods/log get;
//! `sparktest-k8s check` verifies them), and the nodes must be able to pull
//! `busybox:1.36`.
//!
//! Each test makes its own run id (a random UUID), so the tests can run in parallel and
//! beside other users of the namespace. A guard deletes each run's Job with `kubectl`
//! when the test ends, passed or failed (see [`JobGuard`]); every Job also carries a
//! short `ttlSecondsAfterFinished` and `activeDeadlineSeconds` as a second net. Every
//! wait is bounded: a test fails, never hangs.
//!
//! Without a reachable cluster every test fails within seconds, saying what it needs
//! ([`NO_CLUSTER`]).
//!
//! CI does not run them: there is no cluster there. CI's evidence that the client
//! speaks the real API is the contract tests against answers recorded from a real
//! kube-apiserver (`fixtures/recorded/`, tests/client_contract.rs, tests/streams.rs).
//!
//! (`tests/common` is not used: its helpers stand up a mock apiserver, while these tests
//! want the real one, found as the binary finds it.)

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};
use http::Method;
use http_body_util::{BodyDataStream, BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sparktest_k8s::Drain;
use sparktest_k8s::cli::Cli;
use sparktest_k8s::kube::resources::{pods_path, query};
use sparktest_k8s::runs::{RUN_ID_LABEL, new_run_id};
use sparktest_k8s::state::AppState;
use tokio::time::Instant;

/// What a test says when it finds no cluster.
const NO_CLUSTER: &str = "no cluster: set KUBECONFIG or create one with `kind create cluster`, then `cargo test -- --ignored`";

/// The namespace of the tests' Jobs; `default` when unset.
const NAMESPACE_VAR: &str = "SPARKTEST_IT_NAMESPACE";

/// The image of every run: small, on Docker Hub, with `sh`.
const IMAGE: &str = "busybox:1.36";

/// Bounds a whole test (a first image pull included).
const TEST_DEADLINE: Duration = Duration::from_secs(120);
/// Bounds a run from its creation to its end (completed or failed).
const RUN_DEADLINE: Duration = Duration::from_secs(90);
/// Bounds the disappearance of a deleted Job and its pods.
const GONE_DEADLINE: Duration = Duration::from_secs(60);
/// Bounds one request to the service (headers and body).
const CALL_LIMIT: Duration = Duration::from_secs(30);
/// Each apiserver call of the service (`--timeout-seconds`): short, so that a kubeconfig
/// naming an address that drops packets fails the health check in seconds, not 300.
const APISERVER_TIMEOUT_SECONDS: &str = "10";

// ---------------------------------------------------------------------------------------
// The service under test, against the real cluster.

type Events =
    Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<hyper::Error>>> + Send + 'static>>;

struct Service {
    addr: SocketAddr,
    state: AppState,
    http: HttpClient<HttpConnector, Full<Bytes>>,
    namespace: String,
    /// `KUBE_CONTEXT`, which the service honours and kubectl must be told.
    context: Option<String>,
}

/// Starts the service in-process as `main.rs` does (the same settings, cluster
/// discovery, run defaults and caches), on 127.0.0.1:0 and in `SPARKTEST_IT_NAMESPACE`,
/// and fails the test at once with [`NO_CLUSTER`] unless `/api/k8s/health` says the
/// cluster answered.
async fn start_service() -> Service {
    init_logging();
    let namespace = std::env::var(NAMESPACE_VAR)
        .ok()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".to_string());
    // The binary's own flag parsing: the environment (KUBE_CONTEXT, DEFAULT_LIMITS, ...)
    // applies as it would to the binary; these flags override it.
    let settings = Cli::try_parse_from([
        "sparktest-k8s",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--namespace",
        &namespace,
        "--timeout-seconds",
        APISERVER_TIMEOUT_SECONDS,
        "--request-timeout-seconds",
        APISERVER_TIMEOUT_SECONDS,
    ])
    .unwrap_or_else(|e| panic!("the service's settings do not parse: {e}"))
    .settings;
    let state = AppState::from_settings(&settings)
        .unwrap_or_else(|e| panic!("the service's settings: {e}"));
    state.start_caches();
    let listener = tokio::net::TcpListener::bind((settings.bind, settings.port))
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(sparktest_k8s::run(
        listener,
        state.clone(),
        std::future::pending::<()>(),
        Drain {
            delay: Duration::ZERO,
            grace: Duration::from_millis(100),
        },
    ));
    let service = Service {
        addr,
        state,
        http: HttpClient::builder(TokioExecutor::new()).build_http(),
        namespace,
        context: settings.cluster.context.clone(),
    };
    service.require_cluster().await;
    service
}

/// Service logs (cluster discovery, apiserver errors) in the test output, shown when a
/// test fails; `RUST_LOG` as for the binary.
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "info,warp::server=off".into());
    let filter: tracing_subscriber::filter::Targets = directives
        .parse()
        .unwrap_or_else(|_| "info".parse().unwrap());
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_test_writer())
        .try_init();
}

impl Service {
    /// Fails the test with [`NO_CLUSTER`] and the reason unless the health endpoint says
    /// `kubernetes_connected: true`.
    async fn require_cluster(&self) {
        let (code, health) = self.call(Method::GET, "/api/k8s/health", None).await;
        assert_eq!(code, 200, "GET /api/k8s/health: {health}");
        if health["kubernetes_connected"] == true {
            return;
        }
        let reason = health["error"].as_str().unwrap_or("(no reason given)");
        panic!(
            "{NO_CLUSTER}\n  /api/k8s/health: kubernetes_connected false: {reason}\n  {}",
            kubeconfig_note()
        );
    }

    /// Sends a request (with a JSON body when given); returns status and JSON body.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let what = format!("{method} {path}");
        let exchange = async {
            let response = self.send(method, path, body).await;
            let code = response.status().as_u16();
            let bytes = response
                .into_body()
                .collect()
                .await
                .unwrap_or_else(|e| panic!("{what}: reading the body: {e}"))
                .to_bytes();
            let value: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{what}: not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            (code, value)
        };
        tokio::time::timeout(CALL_LIMIT, exchange)
            .await
            .unwrap_or_else(|_| panic!("{what}: no whole answer within {CALL_LIMIT:?}"))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> http::Response<hyper::body::Incoming> {
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(format!("http://{}{path}", self.addr));
        let body = match body {
            Some(json) => {
                request = request.header(http::header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(json.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        self.http
            .request(request.body(body).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Opens an SSE stream; fails unless it is a 200 `text/event-stream`.
    async fn open_sse(&self, path: &str) -> Events {
        let response = tokio::time::timeout(CALL_LIMIT, self.send(Method::GET, path, None))
            .await
            .unwrap_or_else(|_| panic!("GET {path}: no answer within {CALL_LIMIT:?}"));
        let status = response.status();
        if status != http::StatusCode::OK {
            let body = response.into_body().collect().await.unwrap().to_bytes();
            panic!("GET {path}: {status} {}", String::from_utf8_lossy(&body));
        }
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            content_type.starts_with("text/event-stream"),
            "GET {path}: content-type {content_type:?}"
        );
        Box::pin(BodyDataStream::new(response.into_body()).eventsource())
    }

    /// Creates a run of [`IMAGE`] with these commands, its Job guarded before the
    /// request is sent (so a Job created by a request whose answer was lost is deleted
    /// too). Returns the guard and the `201` body.
    async fn create_run(&self, commands: &[&str]) -> (JobGuard, Value) {
        let run_id = new_run_id();
        let guard = JobGuard {
            job: run_id.job_name().as_str().to_string(),
            namespace: self.namespace.clone(),
            context: self.context.clone(),
        };
        let (code, body) = self
            .call(
                Method::POST,
                "/api/test-runs",
                Some(json!({
                    "run_id": run_id.as_str(),
                    "image": IMAGE,
                    "commands": commands,
                    // Second net behind the guard: Kubernetes removes the Job 5 minutes
                    // after it ends, and ends it after 2 minutes whatever happens.
                    "timeout_seconds": 120,
                    "ttl_seconds_after_finished": 300,
                })),
            )
            .await;
        assert_eq!(code, 201, "POST /api/test-runs: {body}");
        assert_eq!(body["run_id"], run_id.as_str(), "{body}");
        assert_eq!(body["job_name"], guard.job, "{body}");
        assert_eq!(body["namespace"], self.namespace, "{body}");
        (guard, body)
    }

    /// Polls the job's status until it is `completed` or `failed` with its pod counted
    /// and none active, at most [`RUN_DEADLINE`]; returns that body.
    ///
    /// From Kubernetes 1.31 the Job controller marks the outcome (`SuccessCriteriaMet`,
    /// `FailureTarget`, which the service reports as completed/failed) before it has
    /// moved the finished pod from `uncountedTerminatedPods` into `succeeded`/`failed`
    /// and set `completionTime`; waiting for the count keeps the assertions free of
    /// that race.
    async fn wait_until_finished(&self, job: &str) -> Value {
        let path = format!("/api/k8s/jobs/{job}/status");
        let deadline = Instant::now() + RUN_DEADLINE;
        loop {
            let (code, status) = self.call(Method::GET, &path, None).await;
            assert_eq!(code, 200, "GET {path}: {status}");
            let terminal = status["status"] == "completed" || status["status"] == "failed";
            let counted = status["succeeded"].as_i64().unwrap_or(0)
                + status["failed"].as_i64().unwrap_or(0)
                >= 1;
            if terminal && counted && status["active"] == 0 {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "job {job} did not finish within {RUN_DEADLINE:?}; last status: {status}"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// The pods of the namespace matching `selector`, asked of the apiserver directly
    /// (the service's client, not its API).
    async fn pods(&self, selector: &str) -> Vec<String> {
        let client = self.state.client().expect("the cluster was found");
        let path = format!(
            "{}{}",
            pods_path(&self.namespace),
            query(&[("labelSelector", selector.to_string())])
        );
        let list: Value = client
            .get_json(&path)
            .await
            .unwrap_or_else(|e| panic!("GET {path} from the apiserver: {e}"));
        list["items"]
            .as_array()
            .unwrap_or_else(|| panic!("a pod list without items: {list}"))
            .iter()
            .map(|pod| pod["metadata"]["name"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    /// The row of `job` in `GET /api/k8s/jobs`, following `continue` through at most 50
    /// pages of 500.
    async fn listed(&self, job: &str) -> Option<Value> {
        let mut path = "/api/k8s/jobs?limit=500".to_string();
        for _ in 0..50 {
            let (code, page) = self.call(Method::GET, &path, None).await;
            assert_eq!(code, 200, "GET {path}: {page}");
            assert_eq!(page["namespace"], self.namespace, "{page}");
            let rows = page["jobs"]
                .as_array()
                .unwrap_or_else(|| panic!("GET {path}: no `jobs` array: {page}"));
            if let Some(row) = rows.iter().find(|row| row["job_name"] == job) {
                return Some(row.clone());
            }
            match page["continue"].as_str() {
                Some(token) if !token.is_empty() => {
                    path = format!("/api/k8s/jobs?limit=500&continue={}", encode(token));
                }
                _ => return None,
            }
        }
        panic!("GET /api/k8s/jobs: more than 50 pages of 500 jobs");
    }
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    sparktest_k8s::kube::resources::encode(value)
}

/// Says where the kubeconfig was looked for and whether it exists.
fn kubeconfig_note() -> String {
    match std::env::var("KUBECONFIG") {
        Ok(list) if !list.is_empty() => format!("KUBECONFIG={list}"),
        _ => match std::env::var("HOME") {
            Ok(home) => {
                let path = std::path::Path::new(&home).join(".kube/config");
                if path.exists() {
                    format!("KUBECONFIG is unset; {} exists", path.display())
                } else {
                    format!("KUBECONFIG is unset and {} does not exist", path.display())
                }
            }
            Err(_) => "KUBECONFIG and HOME are unset".to_string(),
        },
    }
}

// ---------------------------------------------------------------------------------------
// Cleanup.

/// Deletes a run's Job (and, by background cascade, its pods) when dropped: at the end
/// of the test, when it panics, and when the test's deadline drops it mid-await.
///
/// It shells out to `kubectl delete job NAME --ignore-not-found --wait=false` rather
/// than calling the service's `DELETE`, because:
/// - `Drop` cannot await, and a blocking HTTP call to a service served by the same
///   runtime the test is unwinding through needs that runtime's workers free, and the
///   failure being cleaned up after may be the service's own; kubectl is a separate
///   process;
/// - it does not depend on the code under test: a broken DELETE must not leave Jobs;
/// - it uses the same kubeconfig (`KUBECONFIG`, else `~/.kube/config`; `KUBE_CONTEXT`
///   is passed as `--context`), and `cargo test` already needs kubectl on the PATH;
/// - `--ignore-not-found` makes it idempotent (a test that deleted its Job already),
///   `--wait=false`, `--request-timeout` and [`KUBECTL_LIMIT`] (then it is killed)
///   keep it from blocking long, and stdin is closed so an exec credential plugin
///   cannot prompt.
///
/// If kubectl fails, the command to run by hand is printed, and the Job's
/// `ttlSecondsAfterFinished` removes it within minutes anyway.
struct JobGuard {
    job: String,
    namespace: String,
    context: Option<String>,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        let mut args = vec![
            "delete".to_string(),
            "job".into(),
            self.job.clone(),
            "-n".into(),
            self.namespace.clone(),
            "--ignore-not-found".into(),
            "--wait=false".into(),
            "--cascade=background".into(),
            "--request-timeout=20s".into(),
        ];
        if let Some(context) = &self.context {
            args.push(format!("--context={context}"));
        }
        let failure = match run_bounded("kubectl", &args, KUBECTL_LIMIT) {
            Ok(()) => return,
            Err(why) => why,
        };
        eprintln!(
            "cleanup of job {} failed ({failure}); delete it by hand: kubectl {}",
            self.job,
            args.join(" ")
        );
    }
}

/// How long the guard's kubectl may take before it is killed.
const KUBECTL_LIMIT: Duration = Duration::from_secs(30);

/// Runs `program` with `args` (stdin closed, stderr kept for the error) and waits at
/// most `limit` for it, killing it after; `Err` says why it did not succeed.
fn run_bounded(program: &str, args: &[String], limit: Duration) -> Result<(), String> {
    use std::io::Read as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{program} did not finish within {limit:?}"));
            }
            Err(e) => return Err(format!("waiting for {program}: {e}")),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    // kubectl repeats its error; the last line says it.
    let last = stderr.trim().lines().last().unwrap_or_default();
    Err(format!("{program} {status}: {last}"))
}

// ---------------------------------------------------------------------------------------
// Log streams.

/// What a log stream carried, once it ended.
struct Followed {
    /// The `line` of every `log` event, in order.
    lines: Vec<String>,
    /// The final `status` event's data.
    status: Value,
}

/// Follows `path` to its end, at most [`RUN_DEADLINE`]: collects the log lines, and
/// requires the stream to end right after a `status` event (an `error` event fails).
async fn follow_to_end(service: &Service, path: &str) -> Followed {
    let mut events = service.open_sse(path).await;
    let deadline = Instant::now() + RUN_DEADLINE;
    let mut lines = Vec::new();
    let mut waiting = Vec::new();
    loop {
        let next = tokio::time::timeout_at(deadline, events.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "GET {path}: no final status event within {RUN_DEADLINE:?}; lines so far \
                     {lines:?}; waiting reasons {waiting:?}"
                )
            });
        let Some(event) = next else {
            panic!("GET {path}: the stream ended without a status event; lines {lines:?}")
        };
        let event = event.unwrap_or_else(|e| panic!("GET {path}: a malformed SSE event: {e}"));
        let data: Value = serde_json::from_str(&event.data)
            .unwrap_or_else(|e| panic!("GET {path}: event data is not JSON ({e}): {event:?}"));
        match event.event.as_str() {
            "log" => {
                assert!(!event.id.is_empty(), "a log event without an id: {event:?}");
                let line = data["line"].as_str().unwrap_or_else(|| panic!("{data}"));
                lines.push(line.trim_end_matches(['\n', '\r']).to_string());
            }
            "pod" => {}
            "waiting" => waiting.push(format!("{} {}", data["reason"], data["message"])),
            "status" => {
                let after = tokio::time::timeout_at(deadline, events.next())
                    .await
                    .unwrap_or_else(|_| panic!("GET {path}: still open after its status event"));
                assert!(
                    after.is_none(),
                    "GET {path}: an event after the final status: {after:?}"
                );
                return Followed {
                    lines,
                    status: data,
                };
            }
            "error" => panic!("GET {path}: the stream failed: {data}; lines {lines:?}"),
            other => panic!("GET {path}: an undocumented event `{other}`: {data}"),
        }
    }
}

/// Runs `test` with the whole-test deadline; a test past it fails (its guards, dropped
/// with it, still delete its Jobs).
async fn within_deadline(name: &str, test: impl Future<Output = ()>) {
    if tokio::time::timeout(TEST_DEADLINE, test).await.is_err() {
        panic!("{name}: not done within {TEST_DEADLINE:?}");
    }
}

// ---------------------------------------------------------------------------------------
// The tests. Multi-threaded runtimes: the guard's kubectl blocks its thread briefly.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: kind create cluster, then cargo test --test cluster -- --ignored"]
async fn a_runs_log_stream_carries_both_lines_and_ends_with_completed() {
    within_deadline(
        "a_runs_log_stream_carries_both_lines_and_ends_with_completed",
        async {
            let service = start_service().await;
            let (guard, created) = service
                .create_run(&["echo hello-from-sparktest", "echo second line"])
                .await;
            let run_id = created["run_id"].as_str().unwrap();
            let followed =
                follow_to_end(&service, &format!("/api/test-runs/{run_id}/logs/stream")).await;
            assert_eq!(
                followed.lines,
                ["hello-from-sparktest", "second line"],
                "the log lines, in order, each once"
            );
            assert_eq!(
                followed.status["status"], "completed",
                "{}",
                followed.status
            );
            assert_eq!(
                followed.status["job_name"], guard.job,
                "{}",
                followed.status
            );
            drop(guard);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: kind create cluster, then cargo test --test cluster -- --ignored"]
async fn a_completed_run_reads_completed_has_its_logs_and_is_listed() {
    within_deadline(
        "a_completed_run_reads_completed_has_its_logs_and_is_listed",
        async {
            let service = start_service().await;
            let (guard, created) = service
                .create_run(&["echo hello-from-sparktest", "echo second line"])
                .await;
            let run_id = created["run_id"].as_str().unwrap();
            let job = guard.job.as_str();

            let status = service.wait_until_finished(job).await;
            assert_eq!(status["status"], "completed", "{status}");
            assert_eq!(status["succeeded"], 1, "{status}");
            assert_eq!(status["failed"], 0, "{status}");
            assert_eq!(status["job_name"], job, "{status}");
            assert_eq!(status["namespace"], service.namespace, "{status}");
            assert!(status["start_time"].is_string(), "{status}");

            let path = format!("/api/test-runs/{run_id}/logs");
            let (code, logs) = service.call(Method::GET, &path, None).await;
            assert_eq!(code, 200, "GET {path}: {logs}");
            assert_eq!(logs["job_name"], job, "{logs}");
            assert_eq!(logs["container"], "main", "{logs}");
            assert_eq!(logs["truncated"], false, "{logs}");
            let text = logs["logs"].as_str().unwrap_or_else(|| panic!("{logs}"));
            assert!(text.contains("hello-from-sparktest\n"), "{text:?}");
            assert!(text.contains("second line\n"), "{text:?}");

            let row = service
                .listed(job)
                .await
                .unwrap_or_else(|| panic!("job {job} is not in GET /api/k8s/jobs"));
            assert_eq!(row["run_id"], run_id, "{row}");
            assert_eq!(row["status"], "completed", "{row}");
            assert_eq!(row["namespace"], service.namespace, "{row}");
            drop(guard);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: kind create cluster, then cargo test --test cluster -- --ignored"]
async fn deleting_a_run_removes_its_job_and_its_pods() {
    within_deadline("deleting_a_run_removes_its_job_and_its_pods", async {
        let service = start_service().await;
        let (guard, created) = service.create_run(&["echo to-be-deleted"]).await;
        let run_id = created["run_id"].as_str().unwrap();
        let job = guard.job.as_str();
        service.wait_until_finished(job).await;
        let job_pods = format!("job-name={job}");
        let run_pods = format!("{RUN_ID_LABEL}={run_id}");
        assert!(
            !service.pods(&job_pods).await.is_empty(),
            "the finished run has a pod to delete"
        );

        let path = format!("/api/k8s/jobs/{job}");
        let (code, body) = service.call(Method::DELETE, &path, None).await;
        assert_eq!(code, 200, "DELETE {path}: {body}");
        assert_eq!(
            body["message"],
            format!("Job '{job}' deleted successfully"),
            "{body}"
        );

        // The Job goes at once (background propagation); its pods follow when the
        // garbage collector gets to them.
        let deadline = Instant::now() + GONE_DEADLINE;
        let status_path = format!("/api/k8s/jobs/{job}/status");
        loop {
            let (code, status) = service.call(Method::GET, &status_path, None).await;
            let by_job = service.pods(&job_pods).await;
            let by_run = service.pods(&run_pods).await;
            if code == 404 && by_job.is_empty() && by_run.is_empty() {
                assert_eq!(status["error_type"], "NotFoundError", "{status}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{GONE_DEADLINE:?} after DELETE: status {code} {status}; pods {by_job:?} \
                 (job-name), {by_run:?} ({RUN_ID_LABEL})"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let (code, body) = service.call(Method::DELETE, &path, None).await;
        assert_eq!(code, 404, "a second DELETE {path}: {body}");
        drop(guard);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: kind create cluster, then cargo test --test cluster -- --ignored"]
async fn a_failing_run_ends_failed_and_keeps_its_logs() {
    within_deadline("a_failing_run_ends_failed_and_keeps_its_logs", async {
        let service = start_service().await;
        let (guard, created) = service.create_run(&["echo boom", "exit 3"]).await;
        let run_id = created["run_id"].as_str().unwrap();
        let job = guard.job.as_str();

        let followed =
            follow_to_end(&service, &format!("/api/test-runs/{run_id}/logs/stream")).await;
        assert_eq!(followed.lines, ["boom"], "the log lines");
        assert_eq!(followed.status["status"], "failed", "{}", followed.status);

        // backoffLimit 0 (the default): one failed pod fails the run, without retries.
        let status = service.wait_until_finished(job).await;
        assert_eq!(status["status"], "failed", "{status}");
        assert_eq!(status["reason"], "BackoffLimitExceeded", "{status}");
        assert_eq!(status["succeeded"], 0, "{status}");
        assert_eq!(status["failed"], 1, "{status}");

        let path = format!("/api/test-runs/{run_id}/logs");
        let (code, logs) = service.call(Method::GET, &path, None).await;
        assert_eq!(code, 200, "GET {path}: {logs}");
        let text = logs["logs"].as_str().unwrap_or_else(|| panic!("{logs}"));
        assert!(text.contains("boom\n"), "{text:?}");
        assert_eq!(logs["status"], "failed", "{logs}");
        drop(guard);
    })
    .await;
}

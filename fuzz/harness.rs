//! The body of every fuzz target, shared by `fuzz/fuzz_targets/*.rs` (libFuzzer) and
//! `tests/fuzz_regressions.rs` (plain `cargo test`, through `#[path]`), so that a
//! regression test runs exactly the code the fuzzer ran.
//!
//! Each function must never panic on any input; the assertions in it are the
//! properties the fuzzer checks. Each returns what the tests assert on.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use percent_encoding::percent_decode_str;
use sparktest_k8s::AppState;
use sparktest_k8s::cluster::kubeconfig::{self, KubeconfigError};
use sparktest_k8s::cluster::{ClusterConfig, ExecConfig, ExecInteractiveMode, ServerUrl};
use sparktest_k8s::jobs::{pods, status, timeline};
use sparktest_k8s::kube::KubeError;
use sparktest_k8s::kube::error::Status;
use sparktest_k8s::kube::exec::{ExecCredential, parse_output};
use sparktest_k8s::kube::resources::{
    AccessReview, Job, List, Pod, Version, job_path, jobs_path, pod_log_path, pods_path, query,
};
use sparktest_k8s::names::{JobName, Namespace, RunId};
use sparktest_k8s::state::{Connection, LogLimits};
use sparktest_k8s::time::{format_rfc3339, parse_rfc3339};

// ---------------------------------------------------------------------------------------
// kubeconfig

/// Where the fuzzed kubeconfig "lives": no such directory exists, so the relative
/// certificate-authority / client-certificate / client-key paths a kubeconfig names fail
/// to read at once. (Absolute paths are read: see fuzz/README.md.)
pub const KUBECONFIG_PATH: &str = "/nonexistent-sparktest-fuzz/kubeconfig";

/// `load_bytes` then `resolve(None)`, as startup does with a file from `KUBECONFIG`.
/// Whatever comes back must format (errors are shown to operators).
pub fn kubeconfig(data: &[u8]) -> Result<ClusterConfig, KubeconfigError> {
    let path = Path::new(KUBECONFIG_PATH);
    let result = kubeconfig::load_bytes(path, data).and_then(|merged| merged.resolve(None));
    match &result {
        Ok(config) => {
            let _ = format!("{config:?}");
            let _ = config.auth.kind(config.tls.identity.is_some());
            let _ = config.server.is_loopback();
            // The server URL was validated: it parses again to itself.
            let again = ServerUrl::parse(config.server.as_str());
            assert_eq!(again.as_ref(), Ok(&config.server), "server URL round trip");
        }
        Err(e) => {
            let _ = e.to_string();
            let _ = format!("{e:?}");
        }
    }
    result
}

// ---------------------------------------------------------------------------------------
// status

/// A non-2xx answer: two bytes of HTTP status code (big-endian), then the body.
pub fn status(data: &[u8]) -> KubeError {
    let (code, body) = match data {
        [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
        _ => (500, data),
    };
    let err = KubeError::from_response(code, body);
    assert_eq!(err.code(), Some(code));
    let _ = err.reason();
    let _ = err.to_string();
    let _ = format!("{err:?}");
    match &err {
        // Either the body's own Status (with a message or a reason), or one built from
        // the body's first bytes.
        KubeError::Api { status, .. } => {
            assert!(status.message.is_some() || status.reason.is_some());
        }
        other => panic!("from_response returned {other:?}"),
    }
    err
}

// ---------------------------------------------------------------------------------------
// objects

fn check_job(job: &Job, pods: Option<&[Pod]>) -> status::JobState {
    if let Some(pods) = pods {
        let timeline = timeline::job_timeline(pods);
        serde_json::to_string(&timeline).expect("a Timeline serializes");
    }
    let state = status::job_state(job, pods);
    let view = status::StatusView::new(job, state.clone());
    serde_json::to_string(&view).expect("a StatusView serializes");
    let _ = state.phase.is_terminal();
    if let Some(selector) = &job.spec.selector {
        let _ = selector.to_query();
    }
    state
}

fn check_pods(list: &[Pod]) {
    let picked = pods::pick_pod(list);
    assert_eq!(picked.is_some(), !list.is_empty());
    for pod in list {
        let _ = pods::default_container(pod);
        let _ = pods::container_names(pod);
        let _ = status::pod_waiting_reason(pod);
    }
}

/// What [`objects`] decoded, for the tests.
#[derive(Debug, Default)]
pub struct Decoded {
    pub job: Option<Job>,
    pub pod: Option<Pod>,
    pub jobs: Option<List<Job>>,
    pub pods: Option<List<Pod>>,
    /// The state of the Job before the NUL byte with the pods after it.
    pub state_with_pods: Option<status::JobState>,
}

/// The input as a Job, a Pod, a JobList, a PodList (and Version, AccessReview); as a
/// watch event line (`{"type":..,"object":..}`, decoded the way `kube::watch` does);
/// and, when it holds a NUL byte (never valid JSON), as a Job before it and its PodList
/// after it, through `job_state` with pods as the status endpoint does.
pub fn objects(data: &[u8]) -> Decoded {
    let mut out = Decoded::default();
    if let Ok(job) = serde_json::from_slice::<Job>(data) {
        check_job(&job, None);
        check_job(&job, Some(&[]));
        out.job = Some(job);
    }
    if let Ok(pod) = serde_json::from_slice::<Pod>(data) {
        check_pods(std::slice::from_ref(&pod));
        out.pod = Some(pod);
    }
    if let Ok(list) = serde_json::from_slice::<List<Job>>(data) {
        for job in &list.items {
            check_job(job, None);
        }
        out.jobs = Some(list);
    }
    if let Ok(list) = serde_json::from_slice::<List<Pod>>(data) {
        check_pods(&list.items);
        out.pods = Some(list);
    }
    let _ = serde_json::from_slice::<Version>(data);
    let _ = serde_json::from_slice::<AccessReview>(data);

    if let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) {
        let object = &event["object"];
        let _ = object["metadata"]["resourceVersion"].as_str();
        if let Ok(job) = serde_json::from_value::<Job>(object.clone()) {
            check_job(&job, None);
        }
        if let Ok(pod) = serde_json::from_value::<Pod>(object.clone()) {
            check_pods(std::slice::from_ref(&pod));
        }
        let _ = serde_json::from_value::<Status>(object.clone()).unwrap_or_default();
    }

    if let Some(nul) = data.iter().position(|b| *b == 0) {
        let (job, pods) = (&data[..nul], &data[nul + 1..]);
        if let (Ok(job), Ok(pods)) = (
            serde_json::from_slice::<Job>(job),
            serde_json::from_slice::<List<Pod>>(pods),
        ) {
            out.state_with_pods = Some(check_job(&job, Some(&pods.items)));
            check_pods(&pods.items);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// names

/// `path` has the fixed segments of `template` (`{}` marks a value), and each value
/// segment is free of `?`, `#` and spaces and percent-decodes back to its value.
fn check_path(path: &str, template: &str, values: &[&str]) {
    let got: Vec<&str> = path.split('/').collect();
    let want: Vec<&str> = template.split('/').collect();
    assert_eq!(got.len(), want.len(), "{path:?} is not shaped {template:?}");
    let mut values = values.iter();
    for (g, w) in got.iter().zip(&want) {
        if *w == "{}" {
            let value = values.next().expect("as many values as {}");
            assert!(!g.contains(['?', '#', ' ']), "{path:?}");
            let decoded = percent_decode_str(g)
                .decode_utf8()
                .expect("decodes to UTF-8");
            assert_eq!(decoded, *value, "{path:?}");
        } else {
            assert_eq!(g, w, "{path:?}");
        }
    }
}

fn check_paths(ns: &str, name: &str) {
    check_path(&jobs_path(ns), "/apis/batch/v1/namespaces/{}/jobs", &[ns]);
    check_path(
        &job_path(ns, name),
        "/apis/batch/v1/namespaces/{}/jobs/{}",
        &[ns, name],
    );
    check_path(&pods_path(ns), "/api/v1/namespaces/{}/pods", &[ns]);
    check_path(
        &pod_log_path(ns, name),
        "/api/v1/namespaces/{}/pods/{}/log",
        &[ns, name],
    );
    let q = query(&[
        ("labelSelector", name.to_string()),
        ("container", ns.to_string()),
    ]);
    let pairs: Vec<&str> = q.strip_prefix('?').expect("a query").split('&').collect();
    assert_eq!(pairs.len(), 2, "{q:?}");
    for (pair, (key, value)) in pairs
        .iter()
        .zip([("labelSelector", name), ("container", ns)])
    {
        let (k, v) = pair.split_once('=').expect("key=value");
        assert_eq!(k, key);
        assert!(!v.contains(['=', '&', '#', '+', ' ']), "{q:?}");
        assert_eq!(percent_decode_str(v).decode_utf8().unwrap(), value);
    }
}

/// What [`names`] parsed, for the tests.
#[derive(Debug)]
pub struct Names {
    pub job: Option<JobName>,
    pub namespace: Option<Namespace>,
    pub run_id: Option<RunId>,
}

/// Any text (invalid UTF-8 is taken lossily) as a job name, namespace and run id. A
/// value that parses parses again to itself, and needs no encoding in a path; and any
/// text at all stays exactly one path segment (or query value) of the apiserver paths.
pub fn names(data: &[u8]) -> Names {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let (a, b) = text.split_once('\n').unwrap_or((text, text));
    check_paths(a, b);

    let job = text.parse::<JobName>().ok();
    if let Some(name) = &job {
        assert_eq!(name.as_str(), text);
        assert!(name.as_str().len() <= JobName::MAX_LEN);
        assert_eq!(name.to_string().parse::<JobName>().as_ref(), Ok(name));
        assert_eq!(
            job_path("default", name.as_str()),
            format!("/apis/batch/v1/namespaces/default/jobs/{name}"),
            "a valid job name needs no encoding"
        );
        check_paths("default", name.as_str());
    }
    let namespace = text.parse::<Namespace>().ok();
    if let Some(ns) = &namespace {
        assert_eq!(ns.as_str(), text);
        assert_eq!(ns.to_string().parse::<Namespace>().as_ref(), Ok(ns));
        assert!(
            ns.as_str().parse::<JobName>().is_ok(),
            "a namespace (a DNS label) is also a valid job name (a DNS subdomain)"
        );
        assert_eq!(
            jobs_path(ns.as_str()),
            format!("/apis/batch/v1/namespaces/{ns}/jobs")
        );
        check_paths(ns.as_str(), "job");
    }
    let run_id = text.parse::<RunId>().ok();
    if let Some(id) = &run_id {
        assert_eq!(id.as_str(), text.to_ascii_lowercase());
        assert_eq!(id.to_string().parse::<RunId>().as_ref(), Ok(id));
        let job = id.job_name();
        assert_eq!(
            job.as_str().parse::<JobName>().as_ref(),
            Ok(&job),
            "the job of a run id is a valid job name"
        );
        check_paths("default", job.as_str());
    }
    Names {
        job,
        namespace,
        run_id,
    }
}

// ---------------------------------------------------------------------------------------
// rfc3339

/// Any text (invalid UTF-8 is taken lossily) as an RFC 3339 time. A time that parses
/// formats to text that parses again, to the same whole second.
pub fn rfc3339(data: &[u8]) -> Option<SystemTime> {
    let text = String::from_utf8_lossy(data);
    let t = parse_rfc3339(&text)?;
    let formatted = format_rfc3339(t);
    let again = parse_rfc3339(&formatted);
    assert!(
        again.is_some(),
        "{text:?} parses, but its formatting {formatted:?} does not"
    );
    let whole = t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
    assert_eq!(
        again,
        Some(UNIX_EPOCH + Duration::from_secs(whole)),
        "{text:?}"
    );
    Some(t)
}

// ---------------------------------------------------------------------------------------
// exec_output

/// A plugin's stdout; the first byte picks the apiVersion the kubeconfig asks for (odd:
/// v1, even: v1beta1). A credential has a token or a client certificate.
pub fn exec_output(data: &[u8]) -> Result<ExecCredential, String> {
    let (api_version, stdout) = match data.split_first() {
        Some((b, rest)) if b & 1 == 1 => ("client.authentication.k8s.io/v1", rest),
        Some((_, rest)) => ("client.authentication.k8s.io/v1beta1", rest),
        None => ("client.authentication.k8s.io/v1beta1", data),
    };
    let config = ExecConfig {
        api_version: api_version.into(),
        command: "fuzz-plugin".into(),
        args: vec![],
        env: vec![],
        interactive_mode: ExecInteractiveMode::Never,
        install_hint: None,
        cluster_info: None,
    };
    let result = parse_output(&config, stdout);
    match &result {
        Ok(credential) => {
            assert!(credential.token.is_some() || credential.identity.is_some());
            let _ = credential.is_fresh(SystemTime::now());
            let _ = format!("{credential:?}");
        }
        Err(message) => assert!(!message.is_empty()),
    }
    result
}

// ---------------------------------------------------------------------------------------
// log_query

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    static STATE: AppState = AppState::new(
        Connection {
            client: Err("no cluster (fuzzing)".into()),
            source: None,
        },
        "default".parse().expect("a namespace"),
        LogLimits {
            max_lines: 1000,
            max_bytes: 1 << 20,
        },
    );
}

/// The request path [`log_query`] sends for an input: the first byte picks the route
/// (0: job logs + query, 1: test-run logs + query, 2: job name segment, 3: run id
/// segment). `None` for inputs it skips: not UTF-8, a segment holding `/`, `?` or `#`
/// (which would reach other routes, such as the live streams), or a URI that does not
/// parse (which `warp::test` panics on, and no client could send).
pub fn log_query_path(data: &[u8]) -> Option<String> {
    let (mode, rest) = data.split_first()?;
    let rest = std::str::from_utf8(rest).ok()?;
    let path = match mode % 4 {
        0 => format!("/api/k8s/jobs/test-job-123/logs?{rest}"),
        1 => format!("/api/test-runs/550e8400-e29b-41d4-a716-446655440000/logs?{rest}"),
        _ if rest.contains(['/', '?', '#']) => return None,
        2 => format!("/api/k8s/jobs/{rest}/logs"),
        _ => format!("/api/test-runs/{rest}/logs"),
    };
    path.parse::<warp::http::Uri>().ok()?;
    Some(path)
}

/// A log request through the whole filter tree (`api::routes`) with no cluster: it is
/// answered 400 (invalid), 404 (no route), 414 (too long) or 503 (valid, no cluster),
/// never 500, always with a JSON error body. Returns the status and body.
pub fn log_query(data: &[u8]) -> Option<(u16, serde_json::Value)> {
    let path = log_query_path(data)?;
    let (status, body) = RUNTIME.with(|rt| {
        rt.block_on(async {
            let state = STATE.with(Clone::clone);
            let response = warp::test::request()
                .method("GET")
                .path(&path)
                .reply(&sparktest_k8s::api::routes(state))
                .await;
            (response.status().as_u16(), response.body().clone())
        })
    });
    assert!(
        matches!(status, 400 | 404 | 414 | 503),
        "{path:?} answered {status}: {body:?}"
    );
    let json: serde_json::Value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{path:?}: the body is not JSON ({e}): {body:?}"));
    assert!(json.get("error_type").is_some(), "{path:?}: {json}");
    Some((status, json))
}

//! End-to-end tests of the live endpoints: log streams (SSE and WebSocket), the status
//! watch and a job's Kubernetes Events, through the real server (`sparktest_k8s::run`
//! on a loopback port) against a scriptable fake apiserver that replays answers
//! recorded from a real kube-apiserver 1.24 (`fixtures/recorded/`), streamed bodies in
//! the chunks they arrived in (delays scaled down to ~20 ms).
//!
//! SSE is parsed with a real parser (`eventsource-stream`) over a hyper client;
//! WebSocket with a real client (`tokio-tungstenite`). Every wait is bounded.

mod common;
#[path = "common/fake_apiserver.rs"]
mod fake_apiserver;

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::{Event, EventStreamError, Eventsource};
use fake_apiserver::{Answer, FakeApiserver, LineMaker};
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyDataStream, BodyExt, Empty};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sparktest_k8s::AppState;
use sparktest_k8s::state::{Connection, LogLimits, StreamLimits};
use tokio_tungstenite::tungstenite::Message;

/// Bounds every single read from a stream.
const READ_LIMIT: Duration = Duration::from_secs(10);
/// A recorded second becomes this much here.
const SCALED_SECOND: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------------------
// Recorded answers and the states derived from them.

fn recorded_json(name: &str) -> Value {
    serde_json::from_slice(&common::recorded(name).body).unwrap()
}

fn recorded_answer(name: &str) -> Answer {
    let r = common::recorded(name);
    Answer::full(r.status, &r.content_type, r.body)
}

/// `body` cut in the chunks of `name`'s `chunks_arrival`, each pause between chunks
/// (seconds in the recording) scaled to ~20 ms; chunks that arrived together still do.
fn arrival_chunks(name: &str, body: &[u8]) -> Vec<(Duration, Vec<u8>)> {
    let meta: Value = serde_json::from_slice(
        &std::fs::read(common::recorded_dir().join(format!("{name}.meta.json"))).unwrap(),
    )
    .unwrap();
    let mut chunks = Vec::new();
    let (mut at, mut previous) = (0usize, 0f64);
    for arrival in meta["chunks_arrival"].as_array().unwrap() {
        let t = arrival["t"].as_f64().unwrap();
        let n = arrival["bytes"].as_u64().unwrap() as usize;
        let delay = if t - previous >= 0.1 {
            SCALED_SECOND
        } else {
            Duration::ZERO
        };
        chunks.push((delay, body[at..at + n].to_vec()));
        at += n;
        previous = t;
    }
    assert_eq!(at, body.len(), "{name}: chunks_arrival covers the body");
    chunks
}

/// A recorded stream replayed in the chunks it arrived in.
fn streamed(name: &str) -> Answer {
    let r = common::recorded(name);
    let chunks = arrival_chunks(name, &r.body);
    Answer::chunks(r.status, &r.content_type, chunks)
}

/// The lines of a recorded log body, newline included.
fn lines_of(name: &str) -> Vec<String> {
    String::from_utf8(common::recorded(name).body)
        .unwrap()
        .split_inclusive('\n')
        .map(str::to_string)
        .collect()
}

/// `(timestamp, text)` of a `TIMESTAMP text\n` line.
fn split_line(line: &str) -> (String, String) {
    let (ts, text) = line.trim_end_matches('\n').split_once(' ').unwrap();
    (ts.to_string(), text.to_string())
}

/// Job `base` with the `status` of job `status_of` (a later state of the same Job).
fn job_with_status_of(base: &str, status_of: &str) -> Value {
    let mut job = recorded_json(base);
    job["status"] = recorded_json(status_of)["status"].clone();
    job
}

/// A pod list with every pod in `phase` (a later state of the same pods).
fn pods_in_phase(list: &str, phase: &str) -> Value {
    let mut pods = recorded_json(list);
    for pod in pods["items"].as_array_mut().unwrap() {
        pod["status"]["phase"] = phase.into();
    }
    pods
}

/// `HH:MM:SS` of `2026-11-26THH:MM:SSZ` as seconds of the day.
fn seconds_of_day(rfc3339: &str) -> u64 {
    let time = &rfc3339[11..19];
    let mut parts = time.split(':').map(|p| p.parse::<u64>().unwrap());
    let (h, m, s) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    h * 3600 + m * 60 + s
}

/// A kubelet timestamp on 2026-11-26, nanosecond precision like the recorded ones.
fn kubelet_timestamp(nanos_of_day: u64) -> String {
    let (secs, nanos) = (nanos_of_day / 1_000_000_000, nanos_of_day % 1_000_000_000);
    format!(
        "2026-11-26T{:02}:{:02}:{:02}.{nanos:09}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A recorded log body taken without `timestamps=true` (34, 35) as the follow with
/// `timestamps=true` returns it: the kubelet's timestamp before each line (as 28 is to
/// 27), one line every 250 ms from the container's `startedAt` in `pods`.
/// (Untimestamped lines would not do: the service takes a line's first word as its
/// timestamp, since it always asks for `timestamps=true`.)
fn with_timestamps(log: &str, pods: &Value, pod: &str, container: &str) -> Vec<u8> {
    let item = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["metadata"]["name"] == pod)
        .unwrap();
    let status = item["status"]["containerStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == container)
        .unwrap();
    let started = status["state"]["terminated"]["startedAt"].as_str().unwrap();
    let start = seconds_of_day(started) * 1_000_000_000;
    lines_of(log)
        .iter()
        .enumerate()
        .map(|(i, line)| {
            format!(
                "{} {line}",
                kubelet_timestamp(start + i as u64 * 250_000_000)
            )
        })
        .collect::<String>()
        .into_bytes()
}

/// After 45's last line (11:48:37): one more line of its shape per call, a second apart.
fn more_batches() -> LineMaker {
    std::sync::Arc::new(|n: u64| {
        let at = (seconds_of_day("2026-11-26T11:48:38Z") + n) * 1_000_000_000;
        format!(
            "{} Processing batch {} of 100\n",
            kubelet_timestamp(at),
            11 + n
        )
        .into_bytes()
    })
}

// ---------------------------------------------------------------------------------------
// The requests the service sends.

fn job_path(name: &str) -> String {
    format!("/apis/batch/v1/namespaces/default/jobs/{name}")
}

fn uid_of(job: &Value) -> String {
    job["metadata"]["uid"].as_str().unwrap().to_string()
}

fn pods_path(uid: &str) -> String {
    format!("/api/v1/namespaces/default/pods?labelSelector=controller-uid%3D{uid}")
}

fn follow_tail(pod: &str, tail: u32) -> String {
    format!(
        "/api/v1/namespaces/default/pods/{pod}/log?container=main&follow=true&timestamps=true&tailLines={tail}"
    )
}

fn follow_since(pod: &str, since_encoded: &str) -> String {
    format!(
        "/api/v1/namespaces/default/pods/{pod}/log?container=main&follow=true&timestamps=true&sinceTime={since_encoded}"
    )
}

fn follow_plain(pod: &str) -> String {
    format!("/api/v1/namespaces/default/pods/{pod}/log?container=main&follow=true&timestamps=true")
}

fn job_list_path(name: &str) -> String {
    format!("/apis/batch/v1/namespaces/default/jobs?fieldSelector=metadata.name%3D{name}")
}

fn watch_path(list_path: &str, rv: &str) -> String {
    format!(
        "{list_path}&watch=true&allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=290"
    )
}

fn get(target: &str) -> String {
    format!("GET {target}")
}

// ---------------------------------------------------------------------------------------
// The service under test.

struct Service {
    addr: SocketAddr,
    state: AppState,
}

/// Runs the real server on 127.0.0.1:0, pointed at `api` over plain HTTP.
async fn start_service(api: &FakeApiserver, max_streams: usize) -> Service {
    let client = common::plain_http_client(&api.url(), Duration::from_secs(10));
    let state = AppState::with_streams(
        Connection {
            client: Ok(client),
            source: None,
        },
        "default".parse().unwrap(),
        LogLimits {
            max_lines: 1000,
            max_bytes: 10 * 1024 * 1024,
        },
        StreamLimits {
            max_streams,
            poll: Duration::from_millis(50),
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(sparktest_k8s::run(
        listener,
        state.clone(),
        std::future::pending::<()>(),
        sparktest_k8s::Drain {
            delay: Duration::ZERO,
            grace: Duration::from_millis(100),
        },
    ));
    Service { addr, state }
}

impl Service {
    /// Waits (polling) until no live stream holds a permit. Returns whether it happened.
    async fn streams_drain(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.state.active_streams() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

// ---------------------------------------------------------------------------------------
// An HTTP client for the service: SSE through a real parser, or whole JSON bodies.

type Events =
    Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<hyper::Error>>> + Send + 'static>>;

async fn request(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> http::Response<hyper::body::Incoming> {
    let client = HttpClient::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut builder = http::Request::get(format!("http://{addr}{path}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    tokio::time::timeout(
        READ_LIMIT,
        client.request(builder.body(Empty::new()).unwrap()),
    )
    .await
    .unwrap_or_else(|_| panic!("GET {path}: no answer within {READ_LIMIT:?}"))
    .unwrap()
}

/// Opens an SSE stream; panics unless the answer is a 200 `text/event-stream`.
async fn open_sse(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Events {
    let response = request(addr, path, headers).await;
    let status = response.status();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    if status != http::StatusCode::OK {
        let body = response.into_body().collect().await.unwrap().to_bytes();
        panic!("GET {path}: {status} {}", String::from_utf8_lossy(&body));
    }
    assert!(
        content_type.starts_with("text/event-stream"),
        "GET {path}: content-type {content_type}"
    );
    Box::pin(BodyDataStream::new(response.into_body()).eventsource())
}

/// The next SSE event, `None` at the end of the stream; panics after [`READ_LIMIT`].
async fn next_event(events: &mut Events) -> Option<Event> {
    tokio::time::timeout(READ_LIMIT, events.next())
        .await
        .expect("no SSE event within the read limit")
        .map(|e| e.expect("a well-formed SSE event"))
}

/// The next event, which must exist and be named `name`; returns its JSON data.
async fn expect_event(events: &mut Events, name: &str) -> (Event, Value) {
    let event = next_event(events)
        .await
        .unwrap_or_else(|| panic!("the stream ended before a `{name}` event"));
    assert_eq!(event.event, name, "unexpected event: {event:?}");
    let data = serde_json::from_str(&event.data).unwrap();
    (event, data)
}

/// Reads every remaining event until the stream ends.
async fn rest(events: &mut Events) -> Vec<Event> {
    let mut all = Vec::new();
    while let Some(event) = next_event(events).await {
        all.push(event);
    }
    all
}

/// GET a JSON answer: status, content type, body.
async fn get_json(addr: SocketAddr, path: &str) -> (u16, String, Value) {
    let response = request(addr, path, &[]).await;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = tokio::time::timeout(READ_LIMIT, response.into_body().collect())
        .await
        .expect("the body within the read limit")
        .unwrap()
        .to_bytes();
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body:?}"));
    (status, content_type, value)
}

/// Checks a `log` event against a `TIMESTAMP text` line of `pod`'s `main` container.
fn assert_log(event: &Event, data: &Value, pod: &str, line: &str) {
    assert_container_log(event, data, pod, "main", line);
}

fn assert_container_log(event: &Event, data: &Value, pod: &str, container: &str, line: &str) {
    let (timestamp, text) = split_line(line);
    assert_eq!(
        event.id, timestamp,
        "a log event's id is its kubelet timestamp"
    );
    assert_eq!(
        data,
        &json!({"pod": pod, "container": container, "timestamp": timestamp, "line": text})
    );
}

// ---------------------------------------------------------------------------------------
// Scenarios.

/// Job 11 running with pod 21; the follow answers 45 in its recorded chunks; afterwards
/// the job is completed (09's status) and its pod Succeeded.
fn running_job_scenario(api: &FakeApiserver, follow: (String, Answer)) {
    let job = recorded_json("11_job_get_running");
    let done = job_with_status_of("11_job_get_running", "09_job_get_completed");
    let uid = uid_of(&job);
    api.get(
        &job_path("test-job-running"),
        vec![
            Answer::json(200, &job),
            Answer::json(200, &job),
            Answer::json(200, &done),
        ],
    );
    api.get(
        &pods_path(&uid),
        vec![
            recorded_answer("21_pods_list_job_running"),
            Answer::json(200, &pods_in_phase("21_pods_list_job_running", "Succeeded")),
        ],
    );
    api.get(&follow.0, vec![follow.1]);
}

/// Job 13 (retried) with its pods 23: pv8j6 Failed, then wdgs5 Succeeded; each follow
/// returns the whole log and ends (a finished container). Returns both logs' lines.
fn retry_scenario(api: &FakeApiserver) -> (Vec<String>, Vec<String>) {
    let job = recorded_json("13_job_get_retry_failed_then_succeeded");
    let pods = recorded_json("23_pods_list_job_retry_two_pods");
    let first = with_timestamps(
        "34_log_retry_first_failed_pod",
        &pods,
        "test-job-retry-pv8j6",
        "main",
    );
    let second = with_timestamps(
        "35_log_retry_second_succeeded_pod",
        &pods,
        "test-job-retry-wdgs5",
        "main",
    );
    let first_lines: Vec<String> = String::from_utf8(first.clone())
        .unwrap()
        .split_inclusive('\n')
        .map(str::to_string)
        .collect();
    let second_lines: Vec<String> = String::from_utf8(second.clone())
        .unwrap()
        .split_inclusive('\n')
        .map(str::to_string)
        .collect();
    // The second pod is followed from the first one's last line, in whole seconds.
    let (last, _) = split_line(first_lines.last().unwrap());
    let since = format!("{}Z", &last[..19]).replace(':', "%3A");
    api.get(&job_path("test-job-retry"), vec![Answer::json(200, &job)]);
    api.get(
        &pods_path(&uid_of(&job)),
        vec![recorded_answer("23_pods_list_job_retry_two_pods")],
    );
    api.get(
        &follow_tail("test-job-retry-pv8j6", 100),
        vec![Answer::full(200, "text/plain", first)],
    );
    api.get(
        &follow_since("test-job-retry-wdgs5", &since),
        vec![Answer::full(200, "text/plain", second)],
    );
    (first_lines, second_lines)
}

// ---------------------------------------------------------------------------------------
// 1. Lines arriving over time.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_arrive_as_they_are_written_then_the_final_status() {
    let api = FakeApiserver::start().await;
    let follow = follow_tail("test-job-running-dvhw8", 100);
    running_job_scenario(&api, (follow.clone(), streamed("45_log_running_follow")));
    api.pace(&follow);
    let service = start_service(&api, 8).await;

    let mut events = open_sse(
        service.addr,
        "/api/k8s/jobs/test-job-running/logs/stream",
        &[],
    )
    .await;

    let (_, pod) = expect_event(&mut events, "pod").await;
    assert_eq!(
        pod,
        json!({"pod": "test-job-running-dvhw8", "previous_pod": null,
               "message": "streaming pod test-job-running-dvhw8"})
    );
    // The apiserver sends each later line only once the client has the one before: a
    // service that held lines back (until the body ends, or a buffer fills) would
    // never see the end of this log.
    let lines = lines_of("45_log_running_follow");
    for (i, line) in lines.iter().enumerate() {
        let (event, data) = expect_event(&mut events, "log").await;
        assert_log(&event, &data, "test-job-running-dvhw8", line);
        if i >= 1 {
            api.release(&follow);
        }
    }
    let (_, status) = expect_event(&mut events, "status").await;
    assert_eq!(status["job_name"], "test-job-running");
    assert_eq!(status["status"], "completed");
    assert_eq!(status["succeeded"], 1);
    assert_eq!(status["completion_time"], "2026-11-26T11:48:22Z");
    assert_eq!(
        rest(&mut events).await,
        [],
        "the stream ends after the status"
    );

    let job = job_path("test-job-running");
    let pods = pods_path("c0638009-f2af-4632-a038-062e7251fe75");
    assert_eq!(
        api.requests(),
        [
            get(&job),
            get(&job),
            get(&pods),
            get(&follow),
            get(&job),
            get(&pods)
        ]
    );
}

// ---------------------------------------------------------------------------------------
// 2. A retried job: the stream moves to the next pod.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_moves_the_stream_to_the_next_pod() {
    let api = FakeApiserver::start().await;
    let (first, second) = retry_scenario(&api);
    let service = start_service(&api, 8).await;

    let mut events = open_sse(
        service.addr,
        "/api/k8s/jobs/test-job-retry/logs/stream",
        &[],
    )
    .await;

    let (_, pod) = expect_event(&mut events, "pod").await;
    assert_eq!(pod["pod"], "test-job-retry-pv8j6");
    assert_eq!(pod["previous_pod"], Value::Null);
    for line in &first {
        let (event, data) = expect_event(&mut events, "log").await;
        assert_log(&event, &data, "test-job-retry-pv8j6", line);
    }
    let (_, pod) = expect_event(&mut events, "pod").await;
    assert_eq!(
        pod,
        json!({"pod": "test-job-retry-wdgs5", "previous_pod": "test-job-retry-pv8j6",
               "message": "pod test-job-retry-pv8j6 finished; the Job controller started test-job-retry-wdgs5"})
    );
    for line in &second {
        let (event, data) = expect_event(&mut events, "log").await;
        assert_log(&event, &data, "test-job-retry-wdgs5", line);
    }
    let (_, status) = expect_event(&mut events, "status").await;
    assert_eq!(status["status"], "completed");
    assert_eq!(
        (status["succeeded"].as_i64(), status["failed"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(rest(&mut events).await, []);

    let (job, pods) = (
        job_path("test-job-retry"),
        pods_path("a780509e-8d13-4b8a-b830-2b42265e624b"),
    );
    assert_eq!(
        api.requests(),
        [
            get(&job),
            get(&job),
            get(&pods),
            get(&follow_tail("test-job-retry-pv8j6", 100)),
            get(&job),
            get(&pods),
            get(&follow_since(
                "test-job-retry-wdgs5",
                "2026-11-26T11%3A48%3A21Z"
            )),
            get(&job),
            get(&pods),
        ]
    );
}

// ---------------------------------------------------------------------------------------
// 2b. A test run's stream, another container, a shorter tail.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_run_stream_follows_the_chosen_container_and_tail() {
    let run = "550e8400-e29b-41d4-a716-446655440000";
    let name = format!("test-run-{run}");
    let pod = format!("{name}-d75q9");
    let api = FakeApiserver::start().await;
    let job = recorded_json("12_job_get_uuid_name");
    let pods = recorded_json("22_pods_list_job_uuid_two_containers");
    api.get(&job_path(&name), vec![Answer::json(200, &job)]);
    api.get(&pods_path(&uid_of(&job)), vec![Answer::json(200, &pods)]);
    // With tailLines=2 the apiserver sends the last two lines of the sidecar's log.
    let log = with_timestamps("38_log_two_containers_sidecar", &pods, &pod, "sidecar");
    let lines: Vec<String> = String::from_utf8(log)
        .unwrap()
        .split_inclusive('\n')
        .map(str::to_string)
        .collect();
    let tail = lines[lines.len() - 2..].to_vec();
    let follow = format!(
        "/api/v1/namespaces/default/pods/{pod}/log?container=sidecar&follow=true&timestamps=true&tailLines=2"
    );
    api.get(
        &follow,
        vec![Answer::full(200, "text/plain", tail.concat())],
    );
    let service = start_service(&api, 8).await;

    let mut events = open_sse(
        service.addr,
        &format!("/api/test-runs/{run}/logs/stream?container=sidecar&tail=2"),
        &[],
    )
    .await;

    let (_, first) = expect_event(&mut events, "pod").await;
    assert_eq!(first["pod"], pod.as_str());
    for line in &tail {
        let (event, data) = expect_event(&mut events, "log").await;
        assert_container_log(&event, &data, &pod, "sidecar", line);
    }
    let (_, status) = expect_event(&mut events, "status").await;
    assert_eq!(status["job_name"], name.as_str());
    assert_eq!(status["status"], "completed");
    assert_eq!(rest(&mut events).await, []);
    let (job, pods) = (job_path(&name), pods_path(&uid_of(&job)));
    assert_eq!(
        api.requests(),
        [
            get(&job),
            get(&job),
            get(&pods),
            get(&follow),
            get(&job),
            get(&pods)
        ]
    );
}

// ---------------------------------------------------------------------------------------
// 3. Resuming with Last-Event-ID.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_resumes_after_that_line() {
    let lines = lines_of("45_log_running_follow");
    let (resume_at, _) = split_line(&lines[2]);
    assert_eq!(resume_at, "2026-11-26T11:48:33.479859000Z");
    // What the apiserver sends for sinceTime=11:48:33: the lines from that second on,
    // in the chunks they arrived in.
    let chunks = arrival_chunks(
        "45_log_running_follow",
        &common::recorded("45_log_running_follow").body,
    );
    let follow = follow_since("test-job-running-dvhw8", "2026-11-26T11%3A48%3A33Z");
    let api = FakeApiserver::start().await;
    running_job_scenario(
        &api,
        (
            follow.clone(),
            Answer::chunks(200, "text/plain", chunks[2..].to_vec()),
        ),
    );
    let service = start_service(&api, 8).await;

    let mut events = open_sse(
        service.addr,
        "/api/k8s/jobs/test-job-running/logs/stream",
        &[("Last-Event-ID", &resume_at)],
    )
    .await;

    expect_event(&mut events, "pod").await;
    for line in &lines[3..] {
        let (event, data) = expect_event(&mut events, "log").await;
        assert_log(&event, &data, "test-job-running-dvhw8", line);
    }
    let (_, status) = expect_event(&mut events, "status").await;
    assert_eq!(status["status"], "completed");
    assert_eq!(rest(&mut events).await, []);
    // The follow asked from that second on, with no tailLines.
    assert_eq!(api.count(&follow), 1, "requests: {:#?}", api.requests());
    assert!(
        api.requests().iter().all(|r| !r.contains("tailLines")),
        "requests: {:#?}",
        api.requests()
    );
}

// ---------------------------------------------------------------------------------------
// 3b. A follow the apiserver ends while the pod still runs.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_follow_resumes_without_gaps_or_repeats() {
    let lines = lines_of("45_log_running_follow");
    let chunks = arrival_chunks(
        "45_log_running_follow",
        &common::recorded("45_log_running_follow").body,
    );
    let api = FakeApiserver::start().await;
    let job = recorded_json("11_job_get_running");
    let done = job_with_status_of("11_job_get_running", "09_job_get_completed");
    let pods = pods_path(&uid_of(&job));
    let running = recorded_answer("21_pods_list_job_running");
    let succeeded = Answer::json(200, &pods_in_phase("21_pods_list_job_running", "Succeeded"));
    api.get(
        &job_path("test-job-running"),
        vec![
            Answer::json(200, &job),
            Answer::json(200, &job),
            Answer::json(200, &job),
            Answer::json(200, &done),
        ],
    );
    api.get(&pods, vec![running.clone(), running, succeeded]);
    // The first follow ends after the 4th line (11:48:34.48) with the pod still running;
    // the next one, from 11:48:34, gets that line again and the rest.
    let first = follow_tail("test-job-running-dvhw8", 100);
    api.get(
        &first,
        vec![Answer::chunks(200, "text/plain", chunks[..4].to_vec())],
    );
    let second = follow_since("test-job-running-dvhw8", "2026-11-26T11%3A48%3A34Z");
    api.get(
        &second,
        vec![Answer::chunks(200, "text/plain", chunks[3..].to_vec())],
    );
    let service = start_service(&api, 8).await;

    let mut events = open_sse(
        service.addr,
        "/api/k8s/jobs/test-job-running/logs/stream",
        &[],
    )
    .await;

    expect_event(&mut events, "pod").await;
    for line in &lines {
        let (event, data) = expect_event(&mut events, "log").await;
        assert_log(&event, &data, "test-job-running-dvhw8", line);
    }
    let (_, status) = expect_event(&mut events, "status").await;
    assert_eq!(status["status"], "completed");
    assert_eq!(
        rest(&mut events).await,
        [],
        "no `pod` event again, no repeat"
    );
    let job = job_path("test-job-running");
    assert_eq!(
        api.requests(),
        [
            get(&job),
            get(&job),
            get(&pods),
            get(&first),
            get(&job),
            get(&pods),
            get(&second),
            get(&job),
            get(&pods),
        ]
    );
}

// ---------------------------------------------------------------------------------------
// 3c. A line longer than the service's piece size.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_very_long_line_arrives_whole_and_the_stream_goes_on() {
    // 45 with its 3rd line's text made ~100 KiB long (a JSON blob, a stack dump).
    let mut lines = lines_of("45_log_running_follow");
    let (timestamp, text) = split_line(&lines[2]);
    let long_text = format!("{text} ").repeat(4000).trim_end().to_string();
    assert!(long_text.len() > 64 * 1024);
    lines[2] = format!("{timestamp} {long_text}\n");
    let api = FakeApiserver::start().await;
    let follow = follow_tail("test-job-running-dvhw8", 100);
    // Sent in 8 KiB chunks, as an apiserver flushes a long log.
    let body = lines.concat().into_bytes();
    let chunks = body
        .chunks(8 * 1024)
        .map(|c| (Duration::ZERO, c.to_vec()))
        .collect();
    let body = Answer::chunks(200, "text/plain", chunks);
    running_job_scenario(&api, (follow, body));
    let service = start_service(&api, 8).await;

    let mut events = open_sse(
        service.addr,
        "/api/k8s/jobs/test-job-running/logs/stream",
        &[],
    )
    .await;
    expect_event(&mut events, "pod").await;
    let all = rest(&mut events).await;

    let logs: Vec<Value> = all
        .iter()
        .filter(|e| e.event == "log")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    // The long line may come in pieces, each with the line's timestamp.
    let mut texts: Vec<(String, String)> = Vec::new();
    for log in &logs {
        let (ts, text) = (
            log["timestamp"].as_str().unwrap(),
            log["line"].as_str().unwrap(),
        );
        match texts.last_mut() {
            Some((last, whole)) if last == ts => whole.push_str(text),
            _ => texts.push((ts.to_string(), text.to_string())),
        }
    }
    let expected: Vec<(String, String)> = lines.iter().map(|l| split_line(l)).collect();
    assert_eq!(
        texts.len(),
        expected.len(),
        "timestamps: {:?}",
        texts.iter().map(|t| &t.0).collect::<Vec<_>>()
    );
    assert_eq!(texts, expected);
    assert_eq!(all.last().unwrap().event, "status");
}

// ---------------------------------------------------------------------------------------
// 4. A pod that cannot start.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_cannot_pull_its_image_gives_one_waiting_event() {
    let api = FakeApiserver::start().await;
    let job = recorded_json("85_job_get_imagepull");
    api.get(
        &job_path("test-job-imagepull"),
        vec![Answer::json(200, &job)],
    );
    api.get(
        &pods_path(&uid_of(&job)),
        vec![recorded_answer("86_pods_list_job_imagepull")],
    );
    let first_follow = follow_tail("test-job-imagepull-qbf8z", 100);
    let later_follow = follow_plain("test-job-imagepull-qbf8z");
    api.get(
        &first_follow,
        vec![recorded_answer("88_log_imagepull_waiting_follow")],
    );
    api.get(
        &later_follow,
        vec![recorded_answer("88_log_imagepull_waiting_follow")],
    );
    let service = start_service(&api, 8).await;

    let mut events = open_sse(
        service.addr,
        "/api/k8s/jobs/test-job-imagepull/logs/stream",
        &[],
    )
    .await;

    let (_, pod) = expect_event(&mut events, "pod").await;
    assert_eq!(pod["pod"], "test-job-imagepull-qbf8z");
    let (_, waiting) = expect_event(&mut events, "waiting").await;
    let kubelet = recorded_json("88_log_imagepull_waiting_follow")["message"].clone();
    assert_eq!(
        waiting,
        json!({"pod": "test-job-imagepull-qbf8z", "reason": "ImagePullBackOff", "message": kubelet})
    );
    // The stream keeps looking (every poll) without repeating the same waiting event.
    let follows = |api: &FakeApiserver| api.count(&first_follow) + api.count(&later_follow);
    assert!(
        api.wait_for(Duration::from_secs(5), |api| follows(api) >= 3)
            .await,
        "the pod's log is asked again while it waits: {:#?}",
        api.requests()
    );
    assert_eq!(api.count(&first_follow), 1);
    let more = tokio::time::timeout(Duration::from_millis(100), events.next()).await;
    assert!(more.is_err(), "no further event while waiting: {more:?}");

    // The client leaves: the stream ends and gives its place back.
    drop(events);
    assert!(
        service.streams_drain(Duration::from_secs(3)).await,
        "the stream still holds a place after the client left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unscheduled_pod_gives_the_schedulers_reason() {
    let api = FakeApiserver::start().await;
    let job = recorded_json("81_job_get_unscheduled");
    api.get(
        &job_path("test-job-unscheduled"),
        vec![Answer::json(200, &job)],
    );
    api.get(
        &pods_path(&uid_of(&job)),
        vec![recorded_answer("82_pods_list_job_unscheduled")],
    );
    // A pod with no node: the apiserver answers 204 without asking a kubelet.
    let pod = "test-job-unscheduled-97ng2";
    api.get(
        &follow_tail(pod, 100),
        vec![recorded_answer("84_log_unscheduled_pod_no_node_follow")],
    );
    api.get(
        &follow_plain(pod),
        vec![recorded_answer("84_log_unscheduled_pod_no_node_follow")],
    );
    let service = start_service(&api, 8).await;

    let mut events = open_sse(
        service.addr,
        "/api/k8s/jobs/test-job-unscheduled/logs/stream",
        &[],
    )
    .await;

    expect_event(&mut events, "pod").await;
    let (_, waiting) = expect_event(&mut events, "waiting").await;
    assert_eq!(
        waiting,
        json!({"pod": pod, "reason": "Unschedulable",
               "message": "0/1 nodes are available: 1 Insufficient cpu."})
    );
    drop(events);
    assert!(service.streams_drain(Duration::from_secs(3)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_job_waits_without_a_pod() {
    let api = FakeApiserver::start().await;
    let job = recorded_json("79_job_get_suspended");
    let pods = pods_path(&uid_of(&job));
    api.get(
        &job_path("test-job-suspended"),
        vec![Answer::json(200, &job)],
    );
    api.get(&pods, vec![recorded_answer("80_pods_list_job_suspended")]);
    let service = start_service(&api, 8).await;

    let mut events = open_sse(
        service.addr,
        "/api/k8s/jobs/test-job-suspended/logs/stream",
        &[],
    )
    .await;

    let (_, waiting) = expect_event(&mut events, "waiting").await;
    assert_eq!(
        waiting,
        json!({"pod": null, "reason": "JobSuspended", "message": "Job suspended"})
    );
    // It keeps looking for a pod, and says nothing new while nothing changes.
    assert!(
        api.wait_for(Duration::from_secs(5), |api| api.count(&pods) >= 3)
            .await
    );
    let more = tokio::time::timeout(Duration::from_millis(100), events.next()).await;
    assert!(more.is_err(), "no further event while suspended: {more:?}");
    assert!(api.requests().iter().all(|r| !r.contains("/log")));
    drop(events);
    assert!(service.streams_drain(Duration::from_secs(3)).await);
}

// ---------------------------------------------------------------------------------------
// 5. A client that leaves closes the upstream request.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_closes_the_upstream_follow() {
    let api = FakeApiserver::start().await;
    let follow = follow_tail("test-job-running-dvhw8", 100);
    let endless = Answer::endless(200, "text/plain", SCALED_SECOND, Some(more_batches()));
    running_job_scenario(&api, (follow.clone(), endless));
    let service = start_service(&api, 8).await;

    let mut events = open_sse(
        service.addr,
        "/api/k8s/jobs/test-job-running/logs/stream",
        &[],
    )
    .await;
    expect_event(&mut events, "pod").await;
    let (event, data) = expect_event(&mut events, "log").await;
    let first = String::from_utf8(more_batches()(0)).unwrap();
    assert_log(&event, &data, "test-job-running-dvhw8", &first);
    assert!(api.closed().is_empty());

    drop(events);
    assert!(
        api.wait_for(Duration::from_secs(2), |api| api.closed().contains(&follow))
            .await,
        "the upstream follow is still open 2 s after the client left"
    );
    assert!(service.streams_drain(Duration::from_secs(2)).await);
}

// ---------------------------------------------------------------------------------------
// 6. The same stream over WebSocket.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_stream_over_websocket() {
    let api = FakeApiserver::start().await;
    let (first, second) = retry_scenario(&api);
    let service = start_service(&api, 8).await;

    let url = format!(
        "ws://{}/api/k8s/jobs/test-job-retry/logs/stream",
        service.addr
    );
    let (mut socket, _) = tokio::time::timeout(READ_LIMIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("the upgrade within the read limit")
        .unwrap();

    let mut messages = Vec::new();
    let mut closed = false;
    while let Some(message) = tokio::time::timeout(READ_LIMIT, socket.next())
        .await
        .expect("a message within the read limit")
    {
        match message.unwrap() {
            Message::Text(text) => messages.push(serde_json::from_str::<Value>(&text).unwrap()),
            Message::Close(_) => {
                closed = true;
                break;
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected message {other:?}"),
        }
    }
    assert!(closed, "the server closes the socket after the last event");

    let types: Vec<&str> = messages
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    let mut expected = vec!["pod"];
    expected.extend(std::iter::repeat_n("log", first.len()));
    expected.push("pod");
    expected.extend(std::iter::repeat_n("log", second.len()));
    expected.push("status");
    assert_eq!(types, expected);

    let logs: Vec<&Value> = messages.iter().filter(|m| m["type"] == "log").collect();
    for (message, line) in logs.iter().zip(first.iter().chain(&second)) {
        let (timestamp, text) = split_line(line);
        assert_eq!(message["id"], timestamp.as_str());
        assert_eq!(message["timestamp"], timestamp.as_str());
        assert_eq!(message["line"], text.as_str());
    }
    assert_eq!(messages[0]["pod"], "test-job-retry-pv8j6");
    assert_eq!(
        messages[first.len() + 1]["previous_pod"],
        "test-job-retry-pv8j6"
    );
    assert!(
        messages[0].get("id").is_none(),
        "only log messages carry an id"
    );
    let status = messages.last().unwrap();
    assert_eq!(status["status"], "completed");
    assert!(status.get("id").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_that_leaves_closes_the_upstream_follow() {
    let api = FakeApiserver::start().await;
    let follow = follow_tail("test-job-running-dvhw8", 100);
    let endless = Answer::endless(200, "text/plain", SCALED_SECOND, Some(more_batches()));
    running_job_scenario(&api, (follow.clone(), endless));
    let service = start_service(&api, 8).await;

    let url = format!(
        "ws://{}/api/k8s/jobs/test-job-running/logs/stream",
        service.addr
    );
    let (mut socket, _) = tokio::time::timeout(READ_LIMIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("the upgrade within the read limit")
        .unwrap();
    let mut types = Vec::new();
    while types.last() != Some(&"log".to_string()) {
        let message = tokio::time::timeout(READ_LIMIT, socket.next())
            .await
            .expect("a message within the read limit")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).unwrap();
            types.push(value["type"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(types, ["pod", "log"]);
    assert!(api.closed().is_empty());

    socket.close(None).await.unwrap();
    drop(socket);
    assert!(
        api.wait_for(Duration::from_secs(2), |api| api.closed().contains(&follow))
            .await,
        "the upstream follow is still open 2 s after the WebSocket closed"
    );
    assert!(service.streams_drain(Duration::from_secs(2)).await);
}

// ---------------------------------------------------------------------------------------
// 7-8. The status watch.

/// The events (one JSON line each) of 56.
fn watch_events() -> Vec<Value> {
    common::recorded("56_watch_jobs_from_rv_create_complete_delete_admin")
        .body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

/// 15's JobList shape holding `items`, at collection version `rv`.
fn job_list(items: Vec<Value>, rv: &str) -> Value {
    let mut list = recorded_json("15_job_list");
    list["items"] = Value::Array(items);
    list["metadata"] = json!({"resourceVersion": rv});
    list
}

const WATCHED: &str = "test-job-watch-demo";

/// The job GET, an empty pod list (24) and a quiet, endless pod watch.
fn watch_scenario(api: &FakeApiserver) -> (String, String) {
    let added = watch_events()[0]["object"].clone();
    api.get(&job_path(WATCHED), vec![Answer::json(200, &added)]);
    let pods = pods_path(&uid_of(&added));
    api.get(&pods, vec![recorded_answer("24_pods_list_no_match")]);
    let pod_watch = watch_path(&pods, "380");
    api.get(
        &pod_watch,
        vec![Answer::endless(
            200,
            "application/json",
            SCALED_SECOND,
            None,
        )],
    );
    (pods, pod_watch)
}

/// Reads `status` events to the end of the stream.
async fn statuses(events: &mut Events) -> Vec<Value> {
    rest(events)
        .await
        .iter()
        .map(|e| {
            assert_eq!(e.event, "status", "{e:?}");
            serde_json::from_str(&e.data).unwrap()
        })
        .collect()
}

/// Each event is a change, starting pending and ending completed.
fn assert_status_changes(statuses: &[Value], expected_first: &str) {
    assert!(statuses.len() >= 2, "statuses: {statuses:#?}");
    for pair in statuses.windows(2) {
        assert_ne!(pair[0], pair[1], "a status event repeats the previous one");
    }
    assert_eq!(statuses[0]["status"], expected_first, "{statuses:#?}");
    let names: Vec<&str> = statuses
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"running"), "statuses: {names:?}");
    let last = statuses.last().unwrap();
    assert_eq!(last["status"], "completed");
    assert_eq!(last["succeeded"], 1);
    assert_eq!(last["completion_time"], "2026-11-26T11:48:44Z");
    assert!(
        names[..names.len() - 1]
            .iter()
            .all(|s| matches!(*s, "pending" | "running")),
        "statuses: {names:?}"
    );
}

/// The requests of the job collection (lists and watches), in order.
fn job_collection_requests(api: &FakeApiserver) -> Vec<String> {
    api.requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /apis/batch/v1/namespaces/default/jobs?"))
        .collect()
}

/// The job watch scenario of 7: the list at 380 holding 56's first object, then 56
/// streamed as the watch from 380 (`latency` before its headers).
fn create_complete_scenario(api: &FakeApiserver, latency: Duration) -> (String, String) {
    let list = job_list_path(WATCHED);
    let added = watch_events()[0]["object"].clone();
    api.get(
        &list,
        vec![Answer::json(200, &job_list(vec![added], "380"))],
    );
    let job_watch = watch_path(&list, "380");
    let watch = streamed("56_watch_jobs_from_rv_create_complete_delete_admin");
    api.get(&job_watch, vec![watch.after(latency)]);
    (list, job_watch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_sends_each_status_change_until_completed() {
    let api = FakeApiserver::start().await;
    let (pods, pod_watch) = watch_scenario(&api);
    let (list, job_watch) = create_complete_scenario(&api, Duration::ZERO);
    let service = start_service(&api, 8).await;

    let mut events = open_sse(service.addr, &format!("/api/k8s/jobs/{WATCHED}/watch"), &[]).await;
    let statuses = statuses(&mut events).await;

    assert_status_changes(&statuses, "pending");
    assert_eq!(statuses[0]["reason"], "NoActivePod");
    assert_eq!(
        job_collection_requests(&api),
        [get(&list), get(&job_watch)],
        "one list, then the watch from its resourceVersion 380"
    );
    assert!(
        api.count(&pods) >= 1 && api.count(&pod_watch) >= 1,
        "{:#?}",
        api.requests()
    );
    // Done: every upstream watch is closed.
    assert!(
        api.wait_for(Duration::from_secs(2), |api| {
            let closed = api.closed();
            let closed_count = |t: &String| closed.iter().filter(|c| *c == t).count();
            closed_count(&pod_watch) == api.count(&pod_watch)
        })
        .await,
        "the pod watch is still open after the stream ended"
    );
    assert!(service.streams_drain(Duration::from_secs(2)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_watch_request_is_sent_once() {
    // The job watch's answer comes 100 ms after the request (a distant apiserver); the
    // pod list, asked at the same time, comes at once.
    let api = FakeApiserver::start().await;
    watch_scenario(&api);
    let (list, job_watch) = create_complete_scenario(&api, Duration::from_millis(100));
    let service = start_service(&api, 8).await;

    let mut events = open_sse(service.addr, &format!("/api/k8s/jobs/{WATCHED}/watch"), &[]).await;
    let statuses = statuses(&mut events).await;

    assert_eq!(statuses.last().unwrap()["status"], "completed");
    assert_eq!(
        job_collection_requests(&api),
        [get(&list), get(&job_watch)],
        "the watch request was aborted and sent again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finishing_job_is_not_reported_pending_again() {
    // 56 at 389: `active` 0, the pod's success still in uncountedTerminatedPods; the
    // Job is finishing, not "starting the next pod".
    let api = FakeApiserver::start().await;
    watch_scenario(&api);
    create_complete_scenario(&api, Duration::ZERO);
    let service = start_service(&api, 8).await;

    let mut events = open_sse(service.addr, &format!("/api/k8s/jobs/{WATCHED}/watch"), &[]).await;
    let statuses = statuses(&mut events).await;

    // Each event is a change (counts included: active 1 -> 0 is news); the status
    // names never go back to pending.
    let mut names: Vec<&str> = statuses
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    names.dedup();
    assert_eq!(names, ["pending", "running", "completed"], "{statuses:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_watch_lists_again_and_watches_from_the_new_version() {
    let api = FakeApiserver::start().await;
    watch_scenario(&api);
    let events = watch_events();
    let list = job_list_path(WATCHED);
    // First list at 380 (the job just created), then, after the 410, at 384 (running).
    api.get(
        &list,
        vec![
            Answer::json(200, &job_list(vec![events[0]["object"].clone()], "380")),
            Answer::json(200, &job_list(vec![events[1]["object"].clone()], "384")),
        ],
    );
    let expired = watch_path(&list, "380");
    api.get(
        &expired,
        vec![recorded_answer("91_watch_jobs_rv1_expired_admin")],
    );
    // From 384 on: the rest of 56 (389, 391, 393, the bookmark).
    let name = "56_watch_jobs_from_rv_create_complete_delete_admin";
    let chunks = arrival_chunks(name, &common::recorded(name).body);
    let rewatch = watch_path(&list, "384");
    api.get(
        &rewatch,
        vec![Answer::chunks(
            200,
            "application/json",
            chunks[2..].to_vec(),
        )],
    );
    let service = start_service(&api, 8).await;

    let mut stream = open_sse(service.addr, &format!("/api/k8s/jobs/{WATCHED}/watch"), &[]).await;
    let statuses = statuses(&mut stream).await;

    assert_status_changes(&statuses, "pending");
    assert_eq!(
        statuses[1]["status"], "running",
        "the re-list's state: {statuses:#?}"
    );
    assert_eq!(api.requests()[0], get(&job_path(WATCHED)));
    assert_eq!(
        job_collection_requests(&api),
        [get(&list), get(&expired), get(&list), get(&rewatch)],
        "list, watch from 380 (expired), list again, watch from the new list's 384"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_refused_with_http_410_lists_again() {
    // The watch cache refuses a too-old version before the stream starts: a real 410
    // (97's Status), not an ERROR event.
    let api = FakeApiserver::start().await;
    watch_scenario(&api);
    let events = watch_events();
    let list = job_list_path(WATCHED);
    api.get(
        &list,
        vec![
            Answer::json(200, &job_list(vec![events[0]["object"].clone()], "380")),
            Answer::json(200, &job_list(vec![events[1]["object"].clone()], "384")),
        ],
    );
    let expired = watch_path(&list, "380");
    api.get(
        &expired,
        vec![recorded_answer("97_job_list_rv1_exact_expired")],
    );
    let name = "56_watch_jobs_from_rv_create_complete_delete_admin";
    let chunks = arrival_chunks(name, &common::recorded(name).body);
    let rewatch = watch_path(&list, "384");
    api.get(
        &rewatch,
        vec![Answer::chunks(
            200,
            "application/json",
            chunks[2..].to_vec(),
        )],
    );
    let service = start_service(&api, 8).await;

    let mut stream = open_sse(service.addr, &format!("/api/k8s/jobs/{WATCHED}/watch"), &[]).await;
    let statuses = statuses(&mut stream).await;

    assert_status_changes(&statuses, "pending");
    assert_eq!(
        job_collection_requests(&api),
        [get(&list), get(&expired), get(&list), get(&rewatch)]
    );
}

/// 56's event lines (newline included), as bytes.
fn watch_lines() -> Vec<Vec<u8>> {
    common::recorded("56_watch_jobs_from_rv_create_complete_delete_admin")
        .body
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_the_apiserver_ends_resumes_from_the_last_bookmark() {
    let api = FakeApiserver::start().await;
    watch_scenario(&api);
    let lines = watch_lines();
    let list = job_list_path(WATCHED);
    let added = watch_events()[0]["object"].clone();
    api.get(
        &list,
        vec![Answer::json(200, &job_list(vec![added], "380"))],
    );
    // The first watch: ADDED, MODIFIED (384), then a bookmark (56's, at 386), then the
    // apiserver ends it (timeoutSeconds). The next watch must start from 386.
    let mut bookmark = watch_events()[5].clone();
    assert_eq!(bookmark["type"], "BOOKMARK");
    bookmark["object"]["metadata"]["resourceVersion"] = "386".into();
    let first = watch_path(&list, "380");
    api.get(
        &first,
        vec![Answer::chunks(
            200,
            "application/json",
            vec![
                (SCALED_SECOND, lines[0].clone()),
                (Duration::ZERO, lines[1].clone()),
                (SCALED_SECOND, format!("{bookmark}\n").into_bytes()),
            ],
        )],
    );
    let second = watch_path(&list, "386");
    api.get(
        &second,
        vec![Answer::chunks(
            200,
            "application/json",
            vec![
                (SCALED_SECOND, lines[2].clone()),
                (SCALED_SECOND, lines[3].clone()),
            ],
        )],
    );
    let service = start_service(&api, 8).await;

    let mut stream = open_sse(service.addr, &format!("/api/k8s/jobs/{WATCHED}/watch"), &[]).await;
    let statuses = statuses(&mut stream).await;

    assert_status_changes(&statuses, "pending");
    assert_eq!(
        job_collection_requests(&api),
        [get(&list), get(&first), get(&second)],
        "no re-list: the watch goes on from the bookmark's version"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_without_the_watch_permission_ends_with_an_error_event() {
    let api = FakeApiserver::start().await;
    watch_scenario(&api);
    let list = job_list_path(WATCHED);
    let added = watch_events()[0]["object"].clone();
    api.get(
        &list,
        vec![Answer::json(200, &job_list(vec![added], "380"))],
    );
    let watch = watch_path(&list, "380");
    api.get(&watch, vec![recorded_answer("50_forbidden_watch_jobs_sa")]);
    let service = start_service(&api, 8).await;

    let mut events = open_sse(service.addr, &format!("/api/k8s/jobs/{WATCHED}/watch"), &[]).await;

    let (_, status) = expect_event(&mut events, "status").await;
    assert_eq!(status["status"], "pending");
    let (_, error) = expect_event(&mut events, "error").await;
    assert_eq!(error["error_type"], "AuthenticationError");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("cannot watch resource \"jobs\""),
        "the message names the missing permission: {message}"
    );
    assert_eq!(
        rest(&mut events).await,
        [],
        "a 403 is final: the stream ends"
    );
    assert_eq!(
        job_collection_requests(&api),
        [get(&list), get(&watch)],
        "no retry of a forbidden watch"
    );
    assert!(service.streams_drain(Duration::from_secs(2)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_deleted_while_running_ends_the_watch_as_terminating() {
    let api = FakeApiserver::start().await;
    watch_scenario(&api);
    let events = watch_events();
    let list = job_list_path(WATCHED);
    let running = events[1]["object"].clone();
    api.get(
        &list,
        vec![Answer::json(200, &job_list(vec![running.clone()], "384"))],
    );
    // 56's DELETED event, the Job deleted while still running (384's status).
    let mut deleted = events[4].clone();
    assert_eq!(deleted["type"], "DELETED");
    deleted["object"]["status"] = running["status"].clone();
    api.get(
        &watch_path(&list, "384"),
        vec![Answer::chunks(
            200,
            "application/json",
            vec![(SCALED_SECOND, format!("{deleted}\n").into_bytes())],
        )],
    );
    let service = start_service(&api, 8).await;

    let mut stream = open_sse(service.addr, &format!("/api/k8s/jobs/{WATCHED}/watch"), &[]).await;
    let statuses = statuses(&mut stream).await;

    let seen: Vec<(&str, Option<&str>)> = statuses
        .iter()
        .map(|s| (s["status"].as_str().unwrap(), s["reason"].as_str()))
        .collect();
    assert_eq!(seen, [("running", None), ("terminating", Some("Deleted"))]);
}

// ---------------------------------------------------------------------------------------
// 9. The limit on live streams.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_stream_limit_the_answer_is_503() {
    let api = FakeApiserver::start().await;
    let follow = follow_tail("test-job-running-dvhw8", 100);
    let endless = Answer::endless(200, "text/plain", SCALED_SECOND, Some(more_batches()));
    running_job_scenario(&api, (follow, endless));
    let service = start_service(&api, 1).await;
    let path = "/api/k8s/jobs/test-job-running/logs/stream";

    let mut events = open_sse(service.addr, path, &[]).await;
    expect_event(&mut events, "pod").await;
    expect_event(&mut events, "log").await;
    let before = api.requests().len();

    let (status, content_type, body) = get_json(service.addr, path).await;
    assert_eq!(status, 503);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(body["error_type"], "KubernetesError");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("too many live streams"),
        "{body}"
    );
    let watch = get_json(service.addr, "/api/k8s/jobs/test-job-running/watch").await;
    assert_eq!(watch.0, 503, "the limit covers watches too");
    assert_eq!(
        api.requests().len(),
        before,
        "a refused stream sends nothing to the apiserver: {:#?}",
        api.requests()
    );

    // The first stream ends: its place is free again.
    drop(events);
    assert!(service.streams_drain(Duration::from_secs(3)).await);
    let mut again = open_sse(service.addr, path, &[]).await;
    expect_event(&mut again, "pod").await;
}

// ---------------------------------------------------------------------------------------
// 10. A missing job.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_for_a_missing_job_is_a_404_answer() {
    let api = FakeApiserver::start().await;
    api.get(
        &job_path("does-not-exist"),
        vec![recorded_answer("14_job_get_not_found")],
    );
    let service = start_service(&api, 8).await;

    for path in [
        "/api/k8s/jobs/does-not-exist/logs/stream",
        "/api/k8s/jobs/does-not-exist/watch",
    ] {
        let (status, content_type, body) = get_json(service.addr, path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(
            content_type.starts_with("application/json"),
            "{path}: {content_type}"
        );
        assert_eq!(body["error_type"], "NotFoundError");
        assert_eq!(
            body["message"],
            "job 'does-not-exist' not found in namespace 'default'"
        );
    }
    let job = get(&job_path("does-not-exist"));
    assert_eq!(api.requests(), [job.clone(), job]);
    assert_eq!(service.state.active_streams(), 0);
}

// ---------------------------------------------------------------------------------------
// 11. A job's Kubernetes Events.

fn events_path(kind: &str, name: &str) -> String {
    format!(
        "/api/v1/namespaces/default/events?fieldSelector=involvedObject.kind%3D{kind}%2CinvolvedObject.name%3D{name}"
    )
}

fn failed_job_scenario(api: &FakeApiserver) {
    let job = recorded_json("10_job_get_failed");
    api.get(&job_path("test-job-failed"), vec![Answer::json(200, &job)]);
    api.get(
        &pods_path(&uid_of(&job)),
        vec![recorded_answer("20_pods_list_job_failed")],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_of_a_job_and_its_pods() {
    let api = FakeApiserver::start().await;
    failed_job_scenario(&api);
    let job_events = events_path("Job", "test-job-failed");
    let pod_events = events_path("Pod", "test-job-failed-pg55l");
    api.get(
        &job_events,
        vec![recorded_answer("72_events_job_failed_admin")],
    );
    api.get(
        &pod_events,
        vec![recorded_answer("74_events_pod_completed_admin")],
    );
    let service = start_service(&api, 8).await;

    let (status, _, body) = get_json(service.addr, "/api/k8s/jobs/test-job-failed/events").await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["job_name"], "test-job-failed");
    assert_eq!(body["namespace"], "default");
    assert_eq!(
        body["events"],
        json!([
            {"type": "Normal", "reason": "SuccessfulCreate",
             "message": "Created pod: test-job-failed-pg55l", "count": 1,
             "first_time": "2026-11-26T11:48:17Z", "last_time": "2026-11-26T11:48:17Z",
             "object": "Job/test-job-failed"},
            {"type": "Warning", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit", "count": 1,
             "first_time": "2026-11-26T11:48:22Z", "last_time": "2026-11-26T11:48:22Z",
             "object": "Job/test-job-failed"},
        ])
    );
    let requests = api.requests();
    assert!(requests.contains(&get(&job_events)), "{requests:#?}");
    assert!(requests.contains(&get(&pod_events)), "{requests:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_without_the_permission_are_a_502_naming_it() {
    let api = FakeApiserver::start().await;
    failed_job_scenario(&api);
    api.get(
        &events_path("Job", "test-job-failed"),
        vec![recorded_answer("71_events_job_failed_sa_forbidden")],
    );
    api.get(
        &events_path("Pod", "test-job-failed-pg55l"),
        vec![recorded_answer("69_events_job_completed_sa_forbidden")],
    );
    let service = start_service(&api, 8).await;

    let (status, content_type, body) =
        get_json(service.addr, "/api/k8s/jobs/test-job-failed/events").await;

    assert_eq!(status, 502, "{body}");
    assert!(content_type.starts_with("application/json"));
    assert_eq!(body["error_type"], "AuthenticationError");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("cannot list resource \"events\""),
        "the message names the missing permission: {message}"
    );
    assert_eq!(body["details"]["apiserver_code"], 403);
}

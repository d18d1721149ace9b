//! Helpers of the live-endpoint tests (`tests/streams.rs`, `tests/streams_watch.rs`):
//! recorded answers replayed in the chunks they arrived in, the requests the service
//! sends, the real server on a loopback port, and an HTTP client that parses SSE with a
//! real parser (`eventsource-stream`). Every wait is bounded.
//!
//! Declare it with the modules it uses:
//!
//! ```text
//! mod common;
//! #[path = "common/fake_apiserver.rs"]
//! mod fake_apiserver;
//! #[path = "common/streams.rs"]
//! mod streams;
//! ```
#![allow(dead_code)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyDataStream, BodyExt, Empty};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sparktest_k8s::AppState;
use sparktest_k8s::state::{Connection, LogLimits, StreamLimits};

use crate::common;
use crate::fake_apiserver::{Answer, FakeApiserver, LineMaker};

/// Bounds every single read from a stream.
pub const READ_LIMIT: Duration = Duration::from_secs(10);
/// A recorded second becomes this much here.
pub const SCALED_SECOND: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------------------
// Recorded answers and the states derived from them.

pub fn recorded_json(name: &str) -> Value {
    serde_json::from_slice(&common::recorded(name).body).unwrap()
}

pub fn recorded_answer(name: &str) -> Answer {
    let r = common::recorded(name);
    Answer::full(r.status, &r.content_type, r.body)
}

/// `body` cut in the chunks of `name`'s `chunks_arrival`, each pause between chunks
/// (seconds in the recording) scaled to ~20 ms; chunks that arrived together still do.
pub fn arrival_chunks(name: &str, body: &[u8]) -> Vec<(Duration, Vec<u8>)> {
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
pub fn streamed(name: &str) -> Answer {
    let r = common::recorded(name);
    let chunks = arrival_chunks(name, &r.body);
    Answer::chunks(r.status, &r.content_type, chunks)
}

/// The lines of a recorded log body, newline included.
pub fn lines_of(name: &str) -> Vec<String> {
    String::from_utf8(common::recorded(name).body)
        .unwrap()
        .split_inclusive('\n')
        .map(str::to_string)
        .collect()
}

/// `(timestamp, text)` of a `TIMESTAMP text\n` line.
pub fn split_line(line: &str) -> (String, String) {
    let (ts, text) = line.trim_end_matches('\n').split_once(' ').unwrap();
    (ts.to_string(), text.to_string())
}

/// Job `base` with the `status` of job `status_of` (a later state of the same Job).
pub fn job_with_status_of(base: &str, status_of: &str) -> Value {
    let mut job = recorded_json(base);
    job["status"] = recorded_json(status_of)["status"].clone();
    job
}

/// A pod list with every pod in `phase` (a later state of the same pods).
pub fn pods_in_phase(list: &str, phase: &str) -> Value {
    let mut pods = recorded_json(list);
    for pod in pods["items"].as_array_mut().unwrap() {
        pod["status"]["phase"] = phase.into();
    }
    pods
}

/// `HH:MM:SS` of `2026-11-26THH:MM:SSZ` as seconds of the day.
pub fn seconds_of_day(rfc3339: &str) -> u64 {
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
pub fn kubelet_timestamp(nanos_of_day: u64) -> String {
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
pub fn with_timestamps(log: &str, pods: &Value, pod: &str, container: &str) -> Vec<u8> {
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
pub fn more_batches() -> LineMaker {
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

pub fn job_path(name: &str) -> String {
    format!("/apis/batch/v1/namespaces/default/jobs/{name}")
}

pub fn uid_of(job: &Value) -> String {
    job["metadata"]["uid"].as_str().unwrap().to_string()
}

pub fn pods_path(uid: &str) -> String {
    format!("/api/v1/namespaces/default/pods?labelSelector=controller-uid%3D{uid}")
}

pub fn follow_tail(pod: &str, tail: u32) -> String {
    format!(
        "/api/v1/namespaces/default/pods/{pod}/log?container=main&follow=true&timestamps=true&tailLines={tail}"
    )
}

pub fn follow_since(pod: &str, since_encoded: &str) -> String {
    format!(
        "/api/v1/namespaces/default/pods/{pod}/log?container=main&follow=true&timestamps=true&sinceTime={since_encoded}"
    )
}

pub fn follow_plain(pod: &str) -> String {
    format!("/api/v1/namespaces/default/pods/{pod}/log?container=main&follow=true&timestamps=true")
}

pub fn job_list_path(name: &str) -> String {
    format!("/apis/batch/v1/namespaces/default/jobs?fieldSelector=metadata.name%3D{name}")
}

pub fn watch_path(list_path: &str, rv: &str) -> String {
    format!(
        "{list_path}&watch=true&allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=290"
    )
}

pub fn get(target: &str) -> String {
    format!("GET {target}")
}

// ---------------------------------------------------------------------------------------
// The service under test.

pub struct Service {
    pub addr: SocketAddr,
    pub state: AppState,
}

/// Runs the real server on 127.0.0.1:0, pointed at `api` over plain HTTP.
pub async fn start_service(api: &FakeApiserver, max_streams: usize) -> Service {
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
            // Tests count upstream requests: a stream closed is closed at once.
            linger: Duration::ZERO,
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
    pub async fn streams_drain(&self, limit: Duration) -> bool {
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

pub type Events =
    Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<hyper::Error>>> + Send + 'static>>;

pub async fn request(
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
pub async fn open_sse(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Events {
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
pub async fn next_event(events: &mut Events) -> Option<Event> {
    tokio::time::timeout(READ_LIMIT, events.next())
        .await
        .expect("no SSE event within the read limit")
        .map(|e| e.expect("a well-formed SSE event"))
}

/// The next event, which must exist and be named `name`; returns its JSON data.
pub async fn expect_event(events: &mut Events, name: &str) -> (Event, Value) {
    let event = next_event(events)
        .await
        .unwrap_or_else(|| panic!("the stream ended before a `{name}` event"));
    assert_eq!(event.event, name, "unexpected event: {event:?}");
    let data = serde_json::from_str(&event.data).unwrap();
    (event, data)
}

/// Reads every remaining event until the stream ends.
pub async fn rest(events: &mut Events) -> Vec<Event> {
    let mut all = Vec::new();
    while let Some(event) = next_event(events).await {
        all.push(event);
    }
    all
}

/// GET a JSON answer: status, content type, body.
pub async fn get_json(addr: SocketAddr, path: &str) -> (u16, String, Value) {
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
pub fn assert_log(event: &Event, data: &Value, pod: &str, line: &str) {
    assert_container_log(event, data, pod, "main", line);
}

pub fn assert_container_log(event: &Event, data: &Value, pod: &str, container: &str, line: &str) {
    let (timestamp, text) = split_line(line);
    assert_eq!(
        data,
        &json!({"pod": pod, "container": container, "timestamp": timestamp, "line": text})
    );
    assert_eq!(
        event.id,
        event_id(pod, &timestamp),
        "a log event's id is its pod and kubelet timestamp"
    );
}

/// The id of a log event: `POD/TIMESTAMP` (the README's live-stream section).
pub fn event_id(pod: &str, timestamp: &str) -> String {
    format!("{pod}/{timestamp}")
}

/// The lines of a log body, newline included.
pub fn body_lines(body: &[u8]) -> Vec<String> {
    String::from_utf8(body.to_vec())
        .unwrap()
        .split_inclusive('\n')
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Scenarios.

/// Job 11 running with pod 21; the follow answers 45 in its recorded chunks; afterwards
/// the job is completed (09's status) and its pod Succeeded.
pub fn running_job_scenario(api: &FakeApiserver, follow: (String, Answer)) {
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

/// Job 13 (retried) with its pods `pods` (23, or a variant of it): pv8j6 Failed, then
/// wdgs5 Succeeded; each follow returns the whole log and ends (a finished container):
/// the first with the history (`tailLines`), the next from its start. Returns both logs'
/// lines.
pub fn retry_scenario(api: &FakeApiserver, pods: &Value) -> (Vec<String>, Vec<String>) {
    let job = recorded_json("13_job_get_retry_failed_then_succeeded");
    let first = with_timestamps(
        "34_log_retry_first_failed_pod",
        pods,
        "test-job-retry-pv8j6",
        "main",
    );
    let second = with_timestamps(
        "35_log_retry_second_succeeded_pod",
        pods,
        "test-job-retry-wdgs5",
        "main",
    );
    let (first_lines, second_lines) = (body_lines(&first), body_lines(&second));
    api.get(&job_path("test-job-retry"), vec![Answer::json(200, &job)]);
    api.get(&pods_path(&uid_of(&job)), vec![Answer::json(200, pods)]);
    api.get(
        &follow_tail("test-job-retry-pv8j6", 100),
        vec![Answer::full(200, "text/plain", first)],
    );
    api.get(
        &follow_plain("test-job-retry-wdgs5"),
        vec![Answer::full(200, "text/plain", second)],
    );
    (first_lines, second_lines)
}

//! End-to-end tests of the log streams (SSE and WebSocket), the limit on live streams
//! and a job's Kubernetes Events, through the real server (`sparktest_k8s::run` on a
//! loopback port) against a scriptable fake apiserver that replays answers recorded
//! from a real kube-apiserver 1.24 (`fixtures/recorded/`), streamed bodies in the chunks
//! they arrived in (delays scaled down to ~20 ms). The status watch is in
//! `tests/streams_watch.rs`; the helpers of both in `tests/common/streams.rs`.
//!
//! SSE is parsed with a real parser (`eventsource-stream`) over a hyper client;
//! WebSocket with a real client (`tokio-tungstenite`). Every wait is bounded.

mod common;
#[path = "common/fake_apiserver.rs"]
mod fake_apiserver;
#[path = "common/streams.rs"]
mod streams;

use std::time::Duration;

use fake_apiserver::{Answer, FakeApiserver};
use futures_util::StreamExt;
use serde_json::{Value, json};
use streams::*;
use tokio_tungstenite::tungstenite::Message;

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
    let (first, second) = retry_scenario(&api, &recorded_json("23_pods_list_job_retry_two_pods"));
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
            // The next pod from its start: what it logged is all new to the client,
            // whatever its node's clock says of it.
            get(&follow_plain("test-job-retry-wdgs5")),
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
    let last_event_id = event_id("test-job-running-dvhw8", &resume_at);
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
        &[("Last-Event-ID", &last_event_id)],
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
// 3d. Several pods: each pod's lines are its own (issue 13).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_on_a_node_whose_clock_is_behind_loses_no_line() {
    // wdgs5 ran on a node whose clock is 7 s behind pv8j6's: its kubelet stamps every
    // line of it before pv8j6's last one.
    let mut pods = recorded_json("23_pods_list_job_retry_two_pods");
    let wdgs5 = &mut pods["items"][1];
    assert_eq!(wdgs5["metadata"]["name"], "test-job-retry-wdgs5");
    wdgs5["status"]["containerStatuses"][0]["state"]["terminated"]["startedAt"] =
        "2026-11-26T11:48:18Z".into();
    let api = FakeApiserver::start().await;
    let (first, second) = retry_scenario(&api, &pods);
    assert!(split_line(second.last().unwrap()).0 < split_line(first.last().unwrap()).0);
    let service = start_service(&api, 8).await;

    let mut events = open_sse(
        service.addr,
        "/api/k8s/jobs/test-job-retry/logs/stream",
        &[],
    )
    .await;

    expect_event(&mut events, "pod").await;
    for line in &first {
        let (event, data) = expect_event(&mut events, "log").await;
        assert_log(&event, &data, "test-job-retry-pv8j6", line);
    }
    expect_event(&mut events, "pod").await;
    for line in &second {
        let (event, data) = expect_event(&mut events, "log").await;
        assert_log(&event, &data, "test-job-retry-wdgs5", line);
    }
    let (_, status) = expect_event(&mut events, "status").await;
    assert_eq!(status["status"], "completed");
    assert_eq!(rest(&mut events).await, []);
}

/// `count` lines of `pod`, a quarter of a second apart from `first_nanos` (of the day).
fn parallel_log(pod: &str, first_nanos: u64, count: u64) -> Vec<String> {
    (0..count)
        .map(|i| {
            let at = kubelet_timestamp(first_nanos + i * 250_000_000);
            format!("{at} Processing batch {} of {count} on {pod}\n", i + 1)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_stream_skips_exactly_what_each_pod_delivered() {
    // Job 90 (parallelism 2) with its two pods 89, both done: they ran side by side, so
    // their lines interleave in time.
    let (a, b) = ("test-job-parallel-2bb9x", "test-job-parallel-w85n9");
    let mut job = job_with_status_of("90_job_get_parallel_two_active", "09_job_get_completed");
    job["status"]["succeeded"] = 2.into();
    let mut pods = recorded_json("89_pods_list_job_parallel_two_running");
    for pod in pods["items"].as_array_mut().unwrap() {
        pod["status"]["phase"] = "Succeeded".into();
        pod["status"]["containerStatuses"][0]["state"] = json!({"terminated": {
            "exitCode": 0, "reason": "Completed",
            "startedAt": "2026-11-26T12:06:19Z", "finishedAt": "2026-11-26T12:06:21Z"}});
    }
    assert_eq!(pods["items"][0]["metadata"]["name"], a);
    let start = seconds_of_day("2026-11-26T12:06:19Z") * 1_000_000_000;
    let (a_lines, b_lines) = (
        parallel_log(a, start, 6),
        parallel_log(b, start + 100_000_000, 6),
    );
    let api = FakeApiserver::start().await;
    api.get(
        &job_path("test-job-parallel"),
        vec![Answer::json(200, &job)],
    );
    api.get(&pods_path(&uid_of(&job)), vec![Answer::json(200, &pods)]);
    // The first client gets three lines of a, then leaves.
    api.get(
        &follow_tail(a, 100),
        vec![Answer::chunks(
            200,
            "text/plain",
            vec![
                (Duration::ZERO, a_lines[..3].concat().into_bytes()),
                (Duration::from_secs(5), a_lines[3..].concat().into_bytes()),
            ],
        )],
    );
    let service = start_service(&api, 8).await;
    let path = "/api/k8s/jobs/test-job-parallel/logs/stream";
    let mut events = open_sse(service.addr, path, &[]).await;
    expect_event(&mut events, "pod").await;
    let mut last_id = String::new();
    for line in &a_lines[..3] {
        let (event, data) = expect_event(&mut events, "log").await;
        assert_log(&event, &data, a, line);
        last_id = event.id;
    }
    drop(events);
    assert!(service.streams_drain(Duration::from_secs(3)).await);

    // It comes back with the last id it saw, as EventSource does. a is asked from that
    // line's second; b, which the client has nothing of, from its start, although its
    // first lines are older than the resume point.
    let (resume_at, _) = split_line(&a_lines[2]);
    let since = format!("{}Z", &resume_at[..19]).replace(':', "%3A");
    api.get(
        &follow_since(a, &since),
        vec![Answer::full(200, "text/plain", a_lines.concat())],
    );
    api.get(
        &follow_plain(b),
        vec![Answer::full(200, "text/plain", b_lines.concat())],
    );
    let mut events = open_sse(service.addr, path, &[("Last-Event-ID", &last_id)]).await;

    let (_, pod) = expect_event(&mut events, "pod").await;
    assert_eq!(pod["pod"], a);
    for line in &a_lines[3..] {
        let (event, data) = expect_event(&mut events, "log").await;
        assert_log(&event, &data, a, line);
    }
    let (_, pod) = expect_event(&mut events, "pod").await;
    assert_eq!(
        (pod["pod"].as_str(), pod["previous_pod"].as_str()),
        (Some(b), Some(a))
    );
    for line in &b_lines {
        let (event, data) = expect_event(&mut events, "log").await;
        assert_log(&event, &data, b, line);
    }
    let (_, status) = expect_event(&mut events, "status").await;
    assert_eq!(status["status"], "completed");
    assert_eq!(rest(&mut events).await, []);
    assert_eq!(
        api.count(&follow_since(a, &since)),
        1,
        "{:#?}",
        api.requests()
    );
    assert_eq!(api.count(&follow_plain(b)), 1, "{:#?}", api.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_event_id_with_an_offset_is_a_time_not_text() {
    // 45's third line, 11:48:33.479859Z, written at +02:00: the same instant.
    let lines = lines_of("45_log_running_follow");
    assert_eq!(split_line(&lines[2]).0, "2026-11-26T11:48:33.479859000Z");
    let at = "2026-11-26T13:48:33.479859+02:00";
    let chunks = arrival_chunks(
        "45_log_running_follow",
        &common::recorded("45_log_running_follow").body,
    );
    // The bare timestamp an earlier version sent, and the pod's form.
    for id in [at.to_string(), format!("test-job-running-dvhw8/{at}")] {
        let api = FakeApiserver::start().await;
        let follow = follow_since("test-job-running-dvhw8", "2026-11-26T11%3A48%3A33Z");
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
            &[("Last-Event-ID", &id)],
        )
        .await;

        expect_event(&mut events, "pod").await;
        for line in &lines[3..] {
            let (event, data) = expect_event(&mut events, "log").await;
            assert_log(&event, &data, "test-job-running-dvhw8", line);
        }
        let (_, status) = expect_event(&mut events, "status").await;
        assert_eq!(status["status"], "completed", "{id}");
        assert_eq!(api.count(&follow), 1, "{id}: {:#?}", api.requests());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_event_id_that_is_no_event_id_is_a_400_answer() {
    let api = FakeApiserver::start().await;
    let service = start_service(&api, 8).await;
    for id in [
        "yesterday",
        "Pod-A/2026-11-26T11:48:19Z",
        "p/2026-11-26T11:48:19",
        "p/q/2026-11-26T11:48:19Z",
    ] {
        let path = format!(
            "/api/k8s/jobs/test-job-running/logs/stream?last_event_id={}",
            id.replace(':', "%3A").replace('/', "%2F")
        );
        let (status, _, body) = get_json(service.addr, &path).await;
        assert_eq!(status, 400, "{id}: {body}");
        assert_eq!(body["error_type"], "ValidationError", "{id}");
    }
    assert_eq!(
        api.requests(),
        [] as [String; 0],
        "refused before any request"
    );
}

// ---------------------------------------------------------------------------------------
// 3e. A container that finished in a pod that runs on (a sidecar; issue 13).

/// 22's pod d75q9 still Running: `main` has terminated as recorded, `sidecar` runs on.
fn sidecar_pods() -> Value {
    let mut pods = recorded_json("22_pods_list_job_uuid_two_containers");
    let status = &mut pods["items"][0]["status"];
    status["phase"] = "Running".into();
    assert_eq!(status["containerStatuses"][1]["name"], "sidecar");
    status["containerStatuses"][1]["state"] =
        json!({"running": {"startedAt": "2026-11-26T11:48:19Z"}});
    status["containerStatuses"][1]["ready"] = true.into();
    pods
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_container_in_a_running_pod_is_not_followed_again() {
    let run = "550e8400-e29b-41d4-a716-446655440000";
    let name = format!("test-run-{run}");
    let pod = format!("{name}-d75q9");
    let running = job_with_status_of("12_job_get_uuid_name", "11_job_get_running");
    let (job, pods) = (job_path(&name), pods_path(&uid_of(&running)));
    let sidecar = sidecar_pods();
    let log = with_timestamps("37_log_two_containers_main", &sidecar, &pod, "main");
    let lines = body_lines(&log);
    let api = FakeApiserver::start().await;
    api.get(&job, vec![Answer::json(200, &running)]);
    api.get(&pods, vec![Answer::json(200, &sidecar)]);
    let follow = follow_tail(&pod, 100);
    api.get(&follow, vec![Answer::full(200, "text/plain", log.clone())]);
    // A follow from the last line's second would get that line again, and end at once.
    let (last, _) = split_line(lines.last().unwrap());
    let again = follow_since(&pod, &format!("{}Z", &last[..19]).replace(':', "%3A"));
    api.get(
        &again,
        vec![Answer::full(
            200,
            "text/plain",
            lines.last().unwrap().clone(),
        )],
    );
    let service = start_service(&api, 8).await;

    let mut events = open_sse(
        service.addr,
        &format!("/api/test-runs/{run}/logs/stream"),
        &[],
    )
    .await;
    expect_event(&mut events, "pod").await;
    for line in &lines {
        let (event, data) = expect_event(&mut events, "log").await;
        assert_log(&event, &data, &pod, line);
    }

    // 3 s here are 60 polls (50 ms here, 2 s in a cluster: two minutes). The stream
    // looks again more and more rarely, and never opens main's log again.
    let before = api.requests().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = api.requests()[before..].to_vec();
    assert!(
        during.len() <= 24,
        "{} apiserver requests in 60 polls: {during:#?}",
        during.len()
    );
    assert_eq!(
        (api.count(&follow), api.count(&again)),
        (1, 0),
        "main's log is followed once: {:#?}",
        api.requests()
    );
    // It says once why nothing comes: main exited, the pod runs on.
    let (_, waiting) = expect_event(&mut events, "waiting").await;
    assert_eq!(waiting["pod"], pod.as_str());
    assert_eq!(waiting["reason"], "Completed");
    assert!(
        waiting["message"].as_str().unwrap().contains("main"),
        "{waiting}"
    );

    // The Job finishes (the sidecar stopped): the stream ends with the final status.
    api.get(&job, vec![recorded_answer("12_job_get_uuid_name")]);
    api.get(
        &pods,
        vec![recorded_answer("22_pods_list_job_uuid_two_containers")],
    );
    let (_, status) = expect_event(&mut events, "status").await;
    assert_eq!(status["status"], "completed");
    assert_eq!(rest(&mut events).await, []);
    assert_eq!((api.count(&follow), api.count(&again)), (1, 0));
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
    let (first, second) = retry_scenario(&api, &recorded_json("23_pods_list_job_retry_two_pods"));
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
    let pods = std::iter::repeat_n("test-job-retry-pv8j6", first.len())
        .chain(std::iter::repeat_n("test-job-retry-wdgs5", second.len()));
    for ((message, line), pod) in logs.iter().zip(first.iter().chain(&second)).zip(pods) {
        let (timestamp, text) = split_line(line);
        assert_eq!(message["id"], event_id(pod, &timestamp).as_str());
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

//! End-to-end tests of the status watch (`GET /api/k8s/jobs/{job_name}/watch`) through
//! the real server against the scriptable fake apiserver, replaying the watch recorded
//! from a real kube-apiserver 1.24 (56: a Job created, completed and deleted), its
//! expiry (91, 97) and a forbidden watch (50). Helpers: `tests/common/streams.rs`.

mod common;
#[path = "common/fake_apiserver.rs"]
mod fake_apiserver;
#[path = "common/streams.rs"]
mod streams;

use std::time::Duration;

use fake_apiserver::{Answer, FakeApiserver};
use serde_json::{Value, json};
use streams::*;

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
// The first event already knows the pods (issue 13).

const IMAGEPULL: &str = "test-job-imagepull";

/// Job `job` (85 or a variant) with 86's pod, stuck in ImagePullBackOff; its watch and
/// the pods' watch stay quiet. The pods are listed by `pod_selector`. Returns the pod
/// list's path.
fn imagepull_scenario(api: &FakeApiserver, job: &Value, pod_selector: &str) -> String {
    api.get(&job_path(IMAGEPULL), vec![Answer::json(200, job)]);
    let list = job_list_path(IMAGEPULL);
    api.get(
        &list,
        vec![Answer::json(200, &job_list(vec![job.clone()], "560"))],
    );
    let quiet = Answer::endless(200, "application/json", SCALED_SECOND, None);
    api.get(&watch_path(&list, "560"), vec![quiet.clone()]);
    let pods = format!("/api/v1/namespaces/default/pods?labelSelector={pod_selector}");
    api.get(&pods, vec![recorded_answer("86_pods_list_job_imagepull")]);
    api.get(&watch_path(&pods, "564"), vec![quiet]);
    pods
}

/// Opens the watch of the image-pull job: its first event, and what came in the next
/// 300 ms (nothing, when nothing changes).
async fn first_watch_event(api: &FakeApiserver) -> (Value, Vec<String>) {
    let service = start_service(api, 8).await;
    let mut events = open_sse(
        service.addr,
        &format!("/api/k8s/jobs/{IMAGEPULL}/watch"),
        &[],
    )
    .await;
    let (_, first) = expect_event(&mut events, "status").await;
    let mut more = Vec::new();
    let quiet = tokio::time::timeout(Duration::from_millis(300), async {
        while let Some(event) = next_event(&mut events).await {
            more.push(format!("{}: {}", event.event, event.data));
        }
    })
    .await;
    if quiet.is_ok() {
        more.push("(the stream ended)".into());
    }
    drop(events);
    assert!(service.streams_drain(Duration::from_secs(3)).await);
    (first, more)
}

/// The first event is `pending` with the kubelet's reason, and nothing follows.
fn assert_image_pull(first: &Value, more: &[String]) {
    assert_eq!(
        (first["status"].as_str(), first["reason"].as_str()),
        (Some("pending"), Some("ImagePullBackOff")),
        "{first}"
    );
    assert_eq!(
        first["message"],
        "Back-off pulling image \"registry.invalid/nope:1\""
    );
    assert_eq!(
        more,
        [] as [String; 0],
        "nothing else while nothing changes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_watch_event_of_a_pod_that_cannot_pull_is_pending() {
    // 85: `active` 1 and no `ready` count: only the pod says it is not running.
    let api = FakeApiserver::start().await;
    let job = recorded_json("85_job_get_imagepull");
    let uid = uid_of(&job);
    imagepull_scenario(&api, &job, &format!("controller-uid%3D{uid}"));
    let (first, more) = first_watch_event(&api).await;
    assert_image_pull(&first, &more);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_without_a_selector_never_watches_every_pod_of_the_namespace() {
    // A Job as a client may hold it with neither `spec.selector` nor a uid: its pods are
    // the ones labelled with its name, as `jobs::job_pods` selects them.
    let api = FakeApiserver::start().await;
    let mut job = recorded_json("85_job_get_imagepull");
    job["spec"].as_object_mut().unwrap().remove("selector");
    job["metadata"].as_object_mut().unwrap().remove("uid");
    let pods = imagepull_scenario(&api, &job, &format!("job-name%3D{IMAGEPULL}"));
    let (first, more) = first_watch_event(&api).await;
    let pod_requests: Vec<String> = api
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /api/v1/namespaces/default/pods"))
        .collect();
    assert!(!pod_requests.is_empty());
    assert!(
        pod_requests.iter().all(|r| r.starts_with(&get(&pods))),
        "{pod_requests:#?}"
    );
    assert_image_pull(&first, &more);
}

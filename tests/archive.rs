//! The log archive in a directory: a finished run is archived (logs, status, pods) and
//! served with `"source": "archive"` once Kubernetes no longer has it — and, once
//! archived, without any apiserver call; a DELETE archives first; a new instance on the
//! same directory serves what an earlier one archived; a partial archive is never served.

#[path = "common/archive.rs"]
mod archived;
mod common;

use std::path::Path;
use std::time::Duration;

use archived::*;
use common::*;
use serde_json::{Value, json};
use sparktest_k8s::archive::{self, Archive, DirStore, Store};
use sparktest_k8s::names::JobName;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

/// An archive in `dir`, spilling into `dir/spill`, sweeping rarely (the tests trigger
/// archiving themselves).
fn dir_archive(dir: &Path) -> Archive {
    dir_archive_with(dir, archive::Options::default())
}

fn dir_archive_with(dir: &Path, options: archive::Options) -> Archive {
    let store = DirStore::open(dir.join("archive")).unwrap();
    Archive::new(
        Store::Dir(store),
        archive::Options {
            spill: dir.join("spill"),
            sweep: Duration::from_secs(3600),
            ..options
        },
    )
}

async fn apiserver_requests(api: &TlsMock) -> Vec<String> {
    api.mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect()
}

#[tokio::test]
async fn a_finished_run_is_archived_and_served_after_kubernetes_removed_it() {
    let (pki, api) = apiserver().await;
    let dir = tempfile::tempdir().unwrap();
    mount_completed_run(&api).await;
    let archive = dir_archive(dir.path());
    let state = with_archive(state_for(&pki, &api), archive.clone());

    // The cluster's answer says it finished: that alone archives it.
    let (code, body) = call(&state, "GET", &format!("/api/k8s/jobs/{JOB}/status")).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["source"], "cluster");
    until_archived(&archive, Duration::from_secs(10)).await;

    // Kubernetes removes the Job (TTL): every answer now comes from the archive.
    api.mock.reset().await;
    Mock::given(method("GET"))
        .respond_with(replay("14_job_get_not_found"))
        .mount(&api.mock)
        .await;
    let (code, status) = call(&state, "GET", &format!("/api/k8s/jobs/{JOB}/status")).await;
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["source"], "archive");
    assert_eq!(status["status"], "completed");
    assert_eq!(status["succeeded"], 1);
    assert_eq!(status["timeline"]["completed"], "2026-11-26T11:48:22Z");
    let (code, logs) = call(&state, "GET", &format!("/api/k8s/jobs/{JOB}/logs")).await;
    assert_eq!(code, 200, "{logs}");
    assert_eq!(logs["source"], "archive");
    assert_eq!(logs["pod_name"], POD);
    assert_eq!(logs["container"], "main");
    assert_eq!(logs["logs"], recorded_log());
    assert_eq!(logs["status"], "completed");
    // The log endpoints' parameters apply to the archived log.
    let (_, tail) = call(
        &state,
        "GET",
        &format!("/api/k8s/jobs/{JOB}/logs?tail=2&timestamps=false"),
    )
    .await;
    let last_two: String = recorded_log()
        .lines()
        .rev()
        .take(2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(|l| format!("{}\n", l.split_once(' ').unwrap().1))
        .collect();
    assert_eq!(tail["logs"], last_two);
    let (code, _) = call(
        &state,
        "GET",
        &format!("/api/k8s/jobs/{JOB}/logs?pod=not-a-pod-of-it"),
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(
        apiserver_requests(&api).await,
        Vec::<String>::new(),
        "an archived run is answered without the apiserver"
    );
    // A job neither has is still 404.
    let (code, body) = call(&state, "GET", "/api/k8s/jobs/never-was/status").await;
    assert_eq!(code, 404, "{body}");
}

#[tokio::test]
async fn the_job_list_includes_archived_runs_whose_jobs_are_gone_on_request() {
    let (pki, api) = apiserver().await;
    let dir = tempfile::tempdir().unwrap();
    mount_completed_run(&api).await;
    let archive = dir_archive(dir.path());
    let state = with_archive(state_for(&pki, &api), archive.clone());
    archive.request(&ns(), &job());
    until_archived(&archive, Duration::from_secs(10)).await;
    // The cluster lists no SparkTest job any more.
    Mock::given(method("GET"))
        .and(path("/apis/batch/v1/namespaces/default/jobs"))
        .and(query_param("labelSelector", "app=sparktest"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"kind": "JobList", "apiVersion": "batch/v1", "metadata": {"resourceVersion": "9"}, "items": []}),
        ))
        .mount(&api.mock)
        .await;
    let (_, without) = call(&state, "GET", "/api/k8s/jobs").await;
    assert_eq!(without["jobs"], json!([]));
    let (code, with) = call(&state, "GET", "/api/k8s/jobs?include_archived=true").await;
    assert_eq!(code, 200, "{with}");
    let rows = with["jobs"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{with}");
    assert_eq!(rows[0]["job_name"], JOB);
    assert_eq!(rows[0]["status"], "completed");
    assert_eq!(rows[0]["source"], "archive");
}

#[tokio::test]
async fn a_new_instance_on_the_same_directory_serves_what_an_earlier_one_archived() {
    let (pki, api) = apiserver().await;
    let dir = tempfile::tempdir().unwrap();
    mount_completed_run(&api).await;
    let first = dir_archive(dir.path());
    let _state = with_archive(state_for(&pki, &api), first.clone());
    first.request(&ns(), &job());
    until_archived(&first, Duration::from_secs(10)).await;

    // A restart: a new state on the same directory, and a cluster without the Job.
    let (pki2, api2) = apiserver().await;
    Mock::given(method("GET"))
        .respond_with(replay("14_job_get_not_found"))
        .mount(&api2.mock)
        .await;
    let second = dir_archive(dir.path());
    assert_eq!(second.load_index().await.unwrap(), 1);
    let state = state_for(&pki2, &api2);
    state.set_archive(second);
    let (code, logs) = call(&state, "GET", &format!("/api/k8s/jobs/{JOB}/logs")).await;
    assert_eq!(code, 200, "{logs}");
    assert_eq!(logs["source"], "archive");
    assert_eq!(logs["logs"], recorded_log());
}

#[tokio::test]
async fn a_delete_archives_a_running_run_first_as_cancelled() {
    let (pki, api) = apiserver().await;
    let dir = tempfile::tempdir().unwrap();
    mount_job(
        &api.mock,
        "11_job_get_running",
        Some("21_pods_list_job_running"),
    )
    .await;
    Mock::given(method("GET"))
        .and(path(
            "/api/v1/namespaces/default/pods/test-job-running-dvhw8/log",
        ))
        .respond_with(replay("42_log_running"))
        .mount(&api.mock)
        .await;
    Mock::given(method("DELETE"))
        .and(path(
            "/apis/batch/v1/namespaces/default/jobs/test-job-running",
        ))
        .respond_with(replay("61_job_delete_background"))
        .expect(1)
        .mount(&api.mock)
        .await;
    let archive = dir_archive(dir.path());
    let state = with_archive(state_for(&pki, &api), archive.clone());
    let (code, body) = call(&state, "DELETE", "/api/k8s/jobs/test-job-running").await;
    assert_eq!(code, 200, "{body}");
    let name: JobName = "test-job-running".parse().unwrap();
    for _ in 0..1000 {
        if archive.contains(&ns(), &name) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let record = archive
        .lookup(&ns(), &name)
        .await
        .unwrap()
        .expect("archived");
    assert_eq!(record.status["status"], "cancelled");
    assert!(
        sparktest_k8s::time::parse_rfc3339(record.status["cancelled_at"].as_str().unwrap())
            .is_some()
    );
    let log_key = record.pods[0].containers[0].log_key.clone().unwrap();
    let text = archive.log_text(&log_key).await.unwrap().unwrap();
    assert_eq!(
        *text,
        String::from_utf8(recorded("42_log_running").body).unwrap()
    );
}

#[tokio::test]
async fn logs_without_their_record_are_not_an_archived_run() {
    // What a crash between writing the logs and the record leaves behind.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("archive");
    std::fs::create_dir_all(root.join(format!("default/{JOB}/logs/{POD}"))).unwrap();
    std::fs::write(
        root.join(format!("default/{JOB}/logs/{POD}/main.log.gz")),
        b"partial",
    )
    .unwrap();
    let archive = dir_archive(dir.path());
    assert_eq!(archive.load_index().await.unwrap(), 0);
    assert!(archive.lookup(&ns(), &job()).await.unwrap().is_none());
    let (pki, api) = apiserver().await;
    Mock::given(method("GET"))
        .respond_with(replay("14_job_get_not_found"))
        .mount(&api.mock)
        .await;
    let state = state_for(&pki, &api);
    state.set_archive(archive);
    let (code, _) = call(&state, "GET", &format!("/api/k8s/jobs/{JOB}/logs")).await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn the_retention_prunes_runs_archived_longer_ago() {
    let (pki, api) = apiserver().await;
    let dir = tempfile::tempdir().unwrap();
    mount_completed_run(&api).await;
    let archive = dir_archive(dir.path());
    let _state = with_archive(state_for(&pki, &api), archive.clone());
    archive.request(&ns(), &job());
    until_archived(&archive, Duration::from_secs(10)).await;
    assert_eq!(archive.prune(Duration::from_secs(3600)).await.unwrap(), 0);
    // Make the record a day old.
    let record_file = dir.path().join(format!("archive/default/{JOB}/run.json"));
    let mut record: Value = serde_json::from_slice(&std::fs::read(&record_file).unwrap()).unwrap();
    record["archived_at"] = "2020-01-01T00:00:00Z".into();
    std::fs::write(&record_file, serde_json::to_vec(&record).unwrap()).unwrap();
    assert_eq!(archive.prune(Duration::from_secs(3600)).await.unwrap(), 1);
    assert!(!archive.contains(&ns(), &job()));
    let left = archive.store().list("").await.unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_large_archived_log_is_answered_from_a_stream_with_the_same_text() {
    // Every log counts as large here: each answer reads the file as a stream, holding
    // only its window, and must be the answer a held log gives.
    let (pki, api) = apiserver().await;
    let dir = tempfile::tempdir().unwrap();
    mount_completed_run(&api).await;
    let archive = dir_archive_with(
        dir.path(),
        archive::Options {
            stream_above: 0,
            ..archive::Options::default()
        },
    );
    let state = with_archive(state_for(&pki, &api), archive.clone());
    archive.request(&ns(), &job());
    until_archived(&archive, Duration::from_secs(10)).await;
    let (_, whole) = call(&state, "GET", &format!("/api/k8s/jobs/{JOB}/logs")).await;
    assert_eq!(whole["logs"], recorded_log());
    assert_eq!(whole["source"], "archive");
    let (_, tail) = call(&state, "GET", &format!("/api/k8s/jobs/{JOB}/logs?tail=1")).await;
    let last = recorded_log().lines().last().unwrap().to_string() + "\n";
    assert_eq!(tail["logs"], last);
}

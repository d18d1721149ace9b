//! The log archive in an S3 bucket, against a real S3 server process (s3s-fs): a
//! finished run is archived and served once Kubernetes removed it; a second service
//! instance on the same bucket serves the same run; a store that is down makes nobody
//! wait, and the run is archived once it is back; what a kill during archiving leaves is
//! never served.

#[path = "common/archive.rs"]
mod archived;
mod common;
#[path = "common/s3s.rs"]
mod s3s;

use std::collections::HashMap;
use std::time::Duration;

use archived::*;
use common::*;
use s3s::{ACCESS_KEY, BUCKET, S3Server, SECRET_KEY, server};
use sparktest_k8s::archive::s3::{S3Config, S3Options, S3Store};
use sparktest_k8s::archive::{self, Archive, Store};

/// An archive in the server's bucket under `runs/`, with short S3 timeouts.
fn s3_archive(server: &S3Server, spill: &std::path::Path) -> Archive {
    let vars = HashMap::from([
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
        ("AWS_ENDPOINT_URL_S3", server.endpoint()),
    ]);
    let config =
        S3Config::parse(&format!("s3://{BUCKET}/runs"), &|k| vars.get(k).cloned()).unwrap();
    let store = S3Store::with_options(
        config,
        S3Options {
            request_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            ..S3Options::default()
        },
    )
    .unwrap();
    Archive::new(
        Store::S3(store),
        archive::Options {
            spill: spill.to_path_buf(),
            sweep: Duration::from_secs(3600),
            ..archive::Options::default()
        },
    )
}

#[tokio::test]
async fn a_run_archived_to_s3_is_served_by_this_and_a_second_instance_after_the_job_is_gone() {
    let Some(server) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (pki, api) = apiserver().await;
    mount_completed_run(&api).await;
    let first = s3_archive(&server, &dir.path().join("spill-1"));
    let _state = with_archive(state_for(&pki, &api), first.clone());
    first.request(&ns(), &job());
    until_archived(&first, Duration::from_secs(10)).await;
    // Whole objects in the bucket: the log, then the record.
    assert!(
        server
            .object_file("runs/default/test-job-123/run.json")
            .is_file()
    );
    assert!(
        server
            .object_file(&format!("runs/default/{JOB}/logs/{POD}/main.log.gz"))
            .is_file()
    );

    // Another replica, which archived nothing itself, on a cluster without the Job.
    let (pki2, api2) = gone().await;
    let state = state_for(&pki2, &api2);
    state.set_archive(s3_archive(&server, &dir.path().join("spill-2")));
    let (code, logs) = call(&state, "GET", &format!("/api/k8s/jobs/{JOB}/logs")).await;
    assert_eq!(code, 200, "{logs}");
    assert_eq!(logs["source"], "archive");
    assert_eq!(logs["logs"], recorded_log());
    let (code, status) = call(&state, "GET", &format!("/api/k8s/jobs/{JOB}/status")).await;
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["status"], "completed");
    assert_eq!(status["source"], "archive");
}

#[tokio::test]
async fn a_store_that_is_down_delays_the_archive_not_the_answers() {
    let Some(mut server) = server() else { return };
    let bin = s3s::s3s_fs().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (pki, api) = apiserver().await;
    mount_completed_run(&api).await;
    let archive = s3_archive(&server, &dir.path().join("spill"));
    let state = with_archive(state_for(&pki, &api), archive.clone());
    server.stop();
    // The answer that observes the finished run does not wait for the store.
    let (code, body) = tokio::time::timeout(
        Duration::from_secs(5),
        call(&state, "GET", &format!("/api/k8s/jobs/{JOB}/status")),
    )
    .await
    .expect("no answer waits for the store");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["source"], "cluster");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!archive.contains(&ns(), &job()), "the store is down");
    let metrics = sparktest_k8s::metrics::metrics().encode();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("sparktest_k8s_archive_store_errors_total ") && !l.ends_with(" 0")
        ),
        "store errors are counted"
    );
    // Back: the run is archived from its spill files, with no new apiserver call.
    let before = api.mock.received_requests().await.unwrap().len();
    server.restart(&bin);
    until_archived(&archive, Duration::from_secs(15)).await;
    assert_eq!(api.mock.received_requests().await.unwrap().len(), before);
    let text = archive
        .log_text(&format!("default/{JOB}/logs/{POD}/main.log.gz"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*text, recorded_log());
}

#[tokio::test]
async fn what_a_kill_during_archiving_leaves_is_not_served_and_is_archived_again() {
    let Some(server) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A kill after the log was written and before the record: the log object alone.
    let partial = server.object_file(&format!("runs/default/{JOB}/logs/{POD}/main.log.gz"));
    std::fs::create_dir_all(partial.parent().unwrap()).unwrap();
    std::fs::write(&partial, b"not all of it").unwrap();
    let (pki, api) = gone().await;
    let archive = s3_archive(&server, &dir.path().join("spill"));
    assert_eq!(archive.load_index().await.unwrap(), 0);
    let state = state_for(&pki, &api);
    state.set_archive(archive);
    let (code, _) = call(&state, "GET", &format!("/api/k8s/jobs/{JOB}/logs")).await;
    assert_eq!(code, 404, "a run without its record is not archived");

    // The restarted service (its start-up sweep) archives the run again, whole.
    let (pki2, api2) = apiserver().await;
    mount_completed_run(&api2).await;
    let again = s3_archive(&server, &dir.path().join("spill-2"));
    let _state = with_archive(state_for(&pki2, &api2), again.clone());
    again.request(&ns(), &job());
    until_archived(&again, Duration::from_secs(10)).await;
    let text = again
        .log_text(&format!("default/{JOB}/logs/{POD}/main.log.gz"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*text, recorded_log());
}

//! The archive tests' shared pieces: the completed run as the cluster has it, waiting
//! until it is archived, and the archive's background work. Included with `#[path]`.
#![allow(dead_code)]

use std::time::Duration;

use sparktest_k8s::archive::Archive;
use sparktest_k8s::names::{JobName, Namespace};
use sparktest_k8s::state::AppState;
use wiremock::Mock;
use wiremock::matchers::{method, path, query_param};

use super::common::*;

pub const JOB: &str = "test-job-123";
pub const POD: &str = "test-job-123-h6gvc";

pub fn ns() -> Namespace {
    "default".parse().unwrap()
}

pub fn job() -> JobName {
    JOB.parse().unwrap()
}

/// The service's state with `archive`, its background work started.
pub fn with_archive(state: AppState, archive: Archive) -> AppState {
    state.set_archive(archive.clone());
    let client = state.client().unwrap().clone();
    archive.spawn(client, vec![ns()], std::future::pending::<()>);
    state
}

/// The completed run as the cluster has it: Job, pods and the container's whole log.
pub async fn mount_completed_run(api: &TlsMock) {
    mount_job(
        &api.mock,
        "09_job_get_completed",
        Some("19_pods_list_job_completed"),
    )
    .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/namespaces/default/pods/{POD}/log")))
        .and(query_param("timestamps", "true"))
        .and(query_param("container", "main"))
        .respond_with(replay("28_log_completed_timestamps"))
        .mount(&api.mock)
        .await;
}

/// Waits until the run is archived, at most `within`.
pub async fn until_archived(archive: &Archive, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while !archive.contains(&ns(), &job()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not archived within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A cluster that no longer has any Job.
pub async fn gone() -> (Pki, TlsMock) {
    let (pki, api) = apiserver().await;
    Mock::given(method("GET"))
        .respond_with(replay("14_job_get_not_found"))
        .mount(&api.mock)
        .await;
    (pki, api)
}

/// The completed run's log as the kubelet gave it.
pub fn recorded_log() -> String {
    String::from_utf8(recorded("28_log_completed_timestamps").body).unwrap()
}

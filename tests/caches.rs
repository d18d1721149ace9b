//! The watch-backed caches (`AppState::start_caches`): the namespace's Jobs and
//! SparkTest's pods are listed (in pages, starting over when a continue token expires)
//! and then watched, and `/status` and `/logs` are answered from them without reading the
//! Job or listing its pods; a Job the cache does not hold is read directly. Against a TLS
//! mock of the apiserver replaying answers recorded from a real kube-apiserver
//! (fixtures/recorded/); the requests it receives are counted.

mod common;

use common::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

#[tokio::test]
async fn status_is_served_from_the_watch_backed_cache() {
    let (pki, api) = apiserver().await;
    // The namespace's jobs: one list (the recorded JobList, one page), then a watch
    // that stays open.
    Mock::given(method("GET"))
        .and(path("/apis/batch/v1/namespaces/default/jobs"))
        .and(Query::exact("limit=500"))
        .and(bearer())
        .respond_with(replay("68_job_list_final"))
        .expect(1)
        .mount(&api.mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/apis/batch/v1/namespaces/default/jobs"))
        .and(wiremock::matchers::query_param("watch", "true"))
        .and(wiremock::matchers::query_param(
            "allowWatchBookmarks",
            "true",
        ))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(60)))
        .mount(&api.mock)
        .await;
    let state = state_for(&pki, &api);
    state.start_caches();
    let cache = &state.caches(&"default".parse().unwrap()).unwrap().jobs;
    until_synced(|| cache.is_synced()).await;
    let list: serde_json::Value =
        serde_json::from_slice(&recorded("68_job_list_final").body).unwrap();
    let name = list["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    // Its pods (for the timeline): not SparkTest's, so not in the pod cache.
    let uid = list["items"][0]["metadata"]["uid"].as_str().unwrap();
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/default/pods"))
        .and(Query::exact(&format!(
            "labelSelector=controller-uid%3D{uid}"
        )))
        .respond_with(replay("24_pods_list_no_match"))
        .mount(&api.mock)
        .await;
    for _ in 0..20 {
        let (code, body) = call(&state, "GET", &format!("/api/k8s/jobs/{name}/status")).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["job_name"], name.as_str());
    }
    let job_reads = api
        .mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| {
            r.url
                .path()
                .starts_with("/apis/batch/v1/namespaces/default/jobs/")
        })
        .count();
    assert_eq!(job_reads, 0, "20 status requests, no direct job read");
    // A job the cache does not hold is read directly.
    Mock::given(method("GET"))
        .and(path(
            "/apis/batch/v1/namespaces/default/jobs/does-not-exist",
        ))
        .respond_with(replay("14_job_get_not_found"))
        .expect(1)
        .mount(&api.mock)
        .await;
    let (code, _) = call(&state, "GET", "/api/k8s/jobs/does-not-exist/status").await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn logs_of_a_managed_run_take_its_pods_from_the_pod_cache() {
    let (pki, api) = apiserver().await;
    let uid = mount_job(
        &api.mock,
        "09_job_get_completed",
        Some("19_pods_list_job_completed"),
    )
    .await;
    mount_log(
        &api.mock,
        "test-job-123-h6gvc",
        DEFAULT_LOG_QUERY,
        "28_log_completed_timestamps",
    )
    .await;
    // The pods of SparkTest's runs: the recorded list, each pod carrying the label its
    // Job's template gives it; then a watch that stays open.
    let mut pods: serde_json::Value =
        serde_json::from_slice(&recorded("19_pods_list_job_completed").body).unwrap();
    for pod in pods["items"].as_array_mut().unwrap() {
        pod["metadata"]["labels"]["app"] = "sparktest".into();
    }
    let managed = || wiremock::matchers::query_param("labelSelector", "app=sparktest");
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/default/pods"))
        .and(managed())
        .and(wiremock::matchers::query_param("watch", "true"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(60)))
        .mount(&api.mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/default/pods"))
        .and(managed())
        .and(bearer())
        .respond_with(ResponseTemplate::new(200).set_body_json(&pods))
        .expect(1)
        .mount(&api.mock)
        .await;
    let state = state_for(&pki, &api);
    state.start_caches();
    let cache = &state.caches(&"default".parse().unwrap()).unwrap().pods;
    until_synced(|| cache.is_synced()).await;
    let (code, body) = call(&state, "GET", "/api/k8s/jobs/test-job-123/logs").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["pod_name"], "test-job-123-h6gvc");
    assert_eq!(body["logs"], text("28_log_completed_timestamps"));
    let job_pod_lists = api
        .mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.query().is_some_and(|q| q.contains(&uid)))
        .count();
    assert_eq!(job_pod_lists, 0, "the job's pods came from the cache");
}

#[tokio::test]
async fn the_job_cache_lists_in_pages_and_starts_over_when_the_token_expires() {
    let (pki, api) = apiserver().await;
    let first: serde_json::Value =
        serde_json::from_slice(&recorded("17_job_list_limit2").body).unwrap();
    let token = first["metadata"]["continue"].as_str().unwrap();
    let second: serde_json::Value =
        serde_json::from_slice(&recorded("68_job_list_final").body).unwrap();
    let jobs = "/apis/batch/v1/namespaces/default/jobs";
    Mock::given(method("GET"))
        .and(path(jobs))
        .and(Query::exact("limit=500"))
        .respond_with(replay("17_job_list_limit2"))
        .expect(2)
        .mount(&api.mock)
        .await;
    // The second page: first the token has expired (a real 410, recorded), then it
    // is served.
    let next = format!(
        "limit=500&continue={}",
        sparktest_k8s::kube::resources::encode(token)
    );
    Mock::given(method("GET"))
        .and(path(jobs))
        .and(Query::exact(&next))
        .respond_with(replay("97_job_list_rv1_exact_expired"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&api.mock)
        .await;
    Mock::given(method("GET"))
        .and(path(jobs))
        .and(Query::exact(&next))
        .respond_with(replay("68_job_list_final"))
        .expect(1)
        .mount(&api.mock)
        .await;
    Mock::given(method("GET"))
        .and(path(jobs))
        .and(wiremock::matchers::query_param("watch", "true"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(60)))
        .mount(&api.mock)
        .await;
    let state = state_for(&pki, &api);
    state.start_caches();
    let cache = &state.caches(&"default".parse().unwrap()).unwrap().jobs;
    until_synced(|| cache.is_synced()).await;
    for page in [&first, &second] {
        for job in page["items"].as_array().unwrap() {
            let name = job["metadata"]["name"].as_str().unwrap();
            assert!(cache.get(name).is_some(), "{name} is cached");
        }
    }
}

/// Waits (at most 2 s) until a cache has applied its first list.
async fn until_synced(synced: impl Fn() -> bool) {
    for _ in 0..200 {
        if synced() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the cache did not sync");
}

//! `GET /api/k8s/health` against a TLS mock of the apiserver.

mod common;

use common::*;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

#[tokio::test]
async fn connected_after_an_authenticated_round_trip() {
    let (pki, api) = apiserver().await;
    Mock::given(method("GET"))
        .and(path("/version"))
        .respond_with(replay("01_version"))
        .expect(1)
        .mount(&api.mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/apis/batch/v1/namespaces/default/jobs"))
        .and(query_param("limit", "1"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(replay("17_job_list_limit2"))
        .expect(1)
        .mount(&api.mock)
        .await;
    let state = state_for(&pki, &api);
    let (status, body) = call(&state, "GET", "/api/k8s/health").await;
    assert_eq!(status, 200);
    assert_eq!(body["kubernetes_connected"], true);
    assert_eq!(body["server_version"], "v1.24.0-alpha.1+e5f3f020084e");
    assert_eq!(body["auth_method"], "token");
    let ts = body["timestamp"].as_str().unwrap();
    assert!(
        sparktest_k8s::time::parse_rfc3339(ts).is_some() && ts.ends_with('Z') && ts.len() == 20,
        "{ts}"
    );

    // A polling frontend is served from the cache: the mock's expect(1) checks the
    // apiserver saw one probe only.
    for _ in 0..5 {
        let (_, again) = call(&state, "GET", "/api/k8s/health").await;
        assert_eq!(again["kubernetes_connected"], true);
    }
}

#[tokio::test]
async fn a_rejected_token_is_not_connected_even_though_version_answers() {
    let (pki, api) = apiserver().await;
    Mock::given(path("/version"))
        .respond_with(replay("01_version"))
        .mount(&api.mock)
        .await;
    Mock::given(path("/apis/batch/v1/namespaces/default/jobs"))
        .respond_with(replay("53_unauthorized_bad_token"))
        .mount(&api.mock)
        .await;
    let (status, body) = call(&state_for(&pki, &api), "GET", "/api/k8s/health").await;
    assert_eq!(status, 200);
    assert_eq!(body["kubernetes_connected"], false);
    assert!(body["error"].as_str().unwrap().contains("401"), "{body}");
    assert!(!body.to_string().contains(TOKEN));
}

#[tokio::test]
async fn an_apiserver_that_is_down_is_not_connected() {
    let (pki, api) = apiserver().await;
    let state = state_for(&pki, &api);
    Mock::given(path("/version"))
        .respond_with(ResponseTemplate::new(503).set_body_string("apiserver is shutting down"))
        .mount(&api.mock)
        .await;
    let (_, body) = call(&state, "GET", "/api/k8s/health").await;
    assert_eq!(body["kubernetes_connected"], false);
    assert!(
        body["error"].as_str().unwrap().contains("shutting down"),
        "{body}"
    );
}

//! `sparktest-k8s check` against a TLS mock: config source, server, auth kind, server
//! version and one SelfSubjectAccessReview per permission of the documented Role.

mod common;

use base64::Engine as _;
use clap::Parser;
use common::*;
use sparktest_k8s::cli::Cli;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer};

fn kubeconfig(dir: &std::path::Path, pki: &Pki, url: &str) -> std::path::PathBuf {
    let ca = base64::engine::general_purpose::STANDARD.encode(&pki.ca_pem);
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: test\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: sa\n  user:\n    token: {TOKEN}\ncontexts:\n- name: test\n  context: {{cluster: test, user: sa, namespace: default}}\n"
    );
    let file = dir.join("kubeconfig");
    std::fs::write(&file, text).unwrap();
    file
}

async fn mount_ssar(mock: &MockServer, verb: &str, resource: &str, allowed: bool) {
    let fixture = if allowed {
        "98_ssar_get_jobs_default_allowed"
    } else {
        "99_ssar_watch_jobs_default_denied"
    };
    Mock::given(method("POST"))
        .and(path("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"))
        .and(body_partial_json(serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": "default", "verb": verb, "resource": resource}}
        })))
        .respond_with(replay(fixture))
        .mount(mock)
        .await;
}

async fn run_check(denied: Option<(&str, &str)>) -> (String, bool, String) {
    let (pki, api) = apiserver().await;
    Mock::given(path("/version"))
        .respond_with(replay("01_version"))
        .mount(&api.mock)
        .await;
    for (verb, resource) in [
        ("get", "jobs"),
        ("list", "jobs"),
        ("create", "jobs"),
        ("delete", "jobs"),
        ("get", "pods"),
        ("list", "pods"),
    ] {
        mount_ssar(&api.mock, verb, resource, denied != Some((verb, resource))).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = kubeconfig(dir.path(), &pki, &api.url);
    let cli = Cli::try_parse_from([
        "sparktest-k8s",
        "check",
        "--kubeconfig",
        file.to_str().unwrap(),
    ])
    .unwrap();
    let (report, ok) = sparktest_k8s::check::report(&cli.settings).await;
    (report, ok, file.display().to_string())
}

#[tokio::test]
async fn check_passes_when_every_permission_is_granted() {
    let (report, ok, file) = run_check(None).await;
    assert!(ok, "{report}");
    assert!(report.contains(&file), "{report}");
    assert!(report.contains("auth:           token"), "{report}");
    assert!(report.contains("v1.24.0-alpha.1"), "{report}");
    assert!(report.contains("ok       get core/pods/log"), "{report}");
    assert!(report.contains("all checks passed"));
    assert!(!report.contains(TOKEN), "the token leaked into the report");
}

#[tokio::test]
async fn check_fails_with_the_fix_when_a_permission_is_missing() {
    let (report, ok, _) = run_check(Some(("delete", "jobs"))).await;
    assert!(!ok);
    assert!(report.contains("MISSING  delete batch/jobs"), "{report}");
    assert!(report.contains("verbs: [\"delete\"]"), "{report}");
}

#[tokio::test]
async fn check_fails_when_no_cluster_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent");
    let cli = Cli::try_parse_from([
        "sparktest-k8s",
        "check",
        "--kubeconfig",
        missing.to_str().unwrap(),
    ])
    .unwrap();
    let (report, ok) = sparktest_k8s::check::report(&cli.settings).await;
    assert!(!ok);
    assert!(report.contains("no kubeconfig file found"), "{report}");
}

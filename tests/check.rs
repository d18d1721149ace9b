//! `sparktest-k8s check` against a TLS mock: config source, server, auth kind, server
//! version and one SelfSubjectAccessReview per permission of the documented Role. And
//! the binary's `check`: only the flags it reads, and no word of serving.

mod common;

use base64::Engine as _;
use clap::Parser;
use common::*;
use sparktest_k8s::cli::{Cli, ClusterFlags, Command};
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

/// `sparktest-k8s check --kubeconfig FILE` as the binary parses it.
fn check_flags(kubeconfig: &std::path::Path) -> ClusterFlags {
    let cli = Cli::try_parse_from([
        "sparktest-k8s",
        "check",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ])
    .unwrap();
    match cli.command {
        Some(Command::Check(args)) => args.cluster,
        other => panic!("parsed as {other:?}"),
    }
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
        ("watch", "jobs"),
        ("watch", "pods"),
        ("list", "events"),
    ] {
        mount_ssar(&api.mock, verb, resource, denied != Some((verb, resource))).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = kubeconfig(dir.path(), &pki, &api.url);
    let (report, ok) = sparktest_k8s::check::report(&check_flags(&file)).await;
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
async fn check_reports_a_missing_watch_or_events_permission_as_optional_with_its_cost() {
    for (denied, line, cost) in [
        (
            ("watch", "jobs"),
            "absent   watch batch/jobs",
            "no watch-backed job cache",
        ),
        (
            ("watch", "pods"),
            "absent   watch core/pods",
            "no run-pod cache",
        ),
        (
            ("list", "events"),
            "absent   list core/events",
            "/events answers 502",
        ),
    ] {
        let (report, ok, _) = run_check(Some(denied)).await;
        assert!(ok, "optional: the check still passes\n{report}");
        assert!(report.contains(line), "{report}");
        assert!(report.contains(cost), "{report}");
    }
    let (report, _, _) = run_check(None).await;
    assert!(report.contains("ok       watch batch/jobs"), "{report}");
    assert!(report.contains("ok       list core/events"), "{report}");
}

#[tokio::test]
async fn check_fails_when_no_cluster_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent");
    let (report, ok) = sparktest_k8s::check::report(&check_flags(&missing)).await;
    assert!(!ok);
    assert!(report.contains("no kubeconfig file found"), "{report}");
}

// ---------------------------------------------------------------------------------
// The binary

fn binary(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sparktest-k8s"))
        .args(args)
        .env_remove("KUBECONFIG")
        .env("RUST_LOG", "info")
        .env("LOG_FORMAT", "text")
        .output()
        .unwrap()
}

#[test]
fn check_help_lists_only_the_flags_check_reads() {
    let out = binary(&["check", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    for flag in [
        "--kubeconfig",
        "--context",
        "--namespace",
        "--timeout-seconds",
        "--service-account-dir",
        "--log-format",
    ] {
        assert!(help.contains(flag), "check --help lacks {flag}:\n{help}");
    }
    for flag in [
        "--port",
        "--bind",
        "--cors-origins",
        "--api-tokens-file",
        "--shutdown-grace-seconds",
        "--shutdown-delay-seconds",
        "--max-streams",
        "--max-log-lines",
        "--templates",
        "--allowed-namespaces",
        "--delete-unmanaged",
        "--default-limits",
    ] {
        assert!(
            !help.contains(flag),
            "check --help lists the server's {flag}:\n{help}"
        );
    }
    // The server's own --help still lists everything.
    let out = binary(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--port", "--cors-origins", "--kubeconfig", "--context"] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn check_does_not_say_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent");
    let out = binary(&["check", "--kubeconfig", missing.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("no usable cluster configuration"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("serving") && !stderr.contains("serving"),
        "check speaks of serving:\n{stdout}{stderr}"
    );
    // A server flag is refused, not ignored, on either side of `check`.
    assert!(!binary(&["check", "--port", "1"]).status.success());
    assert!(!binary(&["--port", "1", "check"]).status.success());
}

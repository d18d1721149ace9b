//! The binary refuses to start on broken run settings, naming what is wrong, before it
//! binds its port.

use std::process::Command;

fn start(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sparktest-k8s"))
        .args(args)
        // No cluster needed: the settings are checked first; port 0 never conflicts.
        .args(["--port", "0", "--kubeconfig", "/nonexistent/kubeconfig"])
        .env_remove("KUBECONFIG")
        .env("RUST_LOG", "info")
        .env("LOG_FORMAT", "text")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_broken_templates_file_stops_the_service_naming_file_template_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("templates.yaml");
    std::fs::write(
        &file,
        "templates:\n  k6:\n    image: grafana/k6\n    argv: [k6, run]\n    resources:\n      limits:\n        memory: 64Gi\n",
    )
    .unwrap();
    let (ok, stderr) = start(&["--templates", file.to_str().unwrap()]);
    assert!(!ok, "started with a broken templates file: {stderr}");
    let expected = format!(
        "templates file {}: template 'k6': resources.limits.memory: 64Gi exceeds the configured maximum 8Gi",
        file.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(
        !stderr.contains("serving the SparkTest"),
        "it bound its port: {stderr}"
    );
}

#[test]
fn a_missing_templates_file_or_contradicting_defaults_stop_the_service() {
    let (ok, stderr) = start(&["--templates", "/nonexistent/templates.yaml"]);
    assert!(!ok);
    assert!(
        stderr.contains("templates file /nonexistent/templates.yaml"),
        "{stderr}"
    );
    let (ok, stderr) = start(&[
        "--default-requests",
        "cpu=2,memory=128Mi",
        "--default-limits",
        "cpu=1,memory=512Mi",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("DEFAULT_REQUESTS cpu=2 exceeds DEFAULT_LIMITS cpu=1"),
        "{stderr}"
    );
    // A resource left out would leave runs without that limit.
    let (ok, stderr) = start(&["--default-limits", "cpu=2"]);
    assert!(!ok);
    assert!(
        stderr.contains("DEFAULT_LIMITS must give both cpu and memory"),
        "{stderr}"
    );
    let (ok, stderr) = start(&["--allowed-namespaces", "team-a,Team_B"]);
    assert!(!ok);
    assert!(stderr.contains("Team_B"), "{stderr}");
}

#[test]
fn a_cors_origin_without_its_scheme_is_an_error_naming_the_flag_not_a_panic() {
    let output = Command::new(env!("CARGO_BIN_EXE_sparktest-k8s"))
        .args(["--port", "0", "--kubeconfig", "/nonexistent/kubeconfig"])
        .env_remove("KUBECONFIG")
        .env("CORS_ORIGINS", "http://localhost:5173,localhost:3000")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "a usage error: {stderr}");
    assert!(stderr.contains("--cors-origins"), "{stderr}");
    assert!(stderr.contains("'localhost:3000'"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The settings of `sparktest-k8s ARGS`, parsed as the binary parses them.
fn settings(args: &[&str]) -> sparktest_k8s::cli::Settings {
    use clap::Parser as _;
    let mut argv = vec![
        "sparktest-k8s",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
        "--log-archive",
        "off",
    ];
    argv.extend_from_slice(args);
    sparktest_k8s::cli::Cli::try_parse_from(argv)
        .unwrap()
        .settings
}

#[test]
fn start_up_is_checked_in_process_with_a_typed_error_for_each_broken_setting() {
    use sparktest_k8s::state::{AppState, StartupError};
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates.yaml");
    std::fs::write(&templates, "templates:\n  x:\n    image: a b\n").unwrap();
    let empty_tokens = dir.path().join("tokens");
    std::fs::write(&empty_tokens, "# none yet\n").unwrap();
    type Expected = fn(&StartupError) -> bool;
    let cases: [(Vec<&str>, Expected); 5] = [
        (vec!["--namespace", "Team_A"], |e| {
            matches!(e, StartupError::Namespace { .. })
        }),
        (vec!["--allowed-namespaces", "ok,Not_Ok"], |e| {
            matches!(e, StartupError::AllowedNamespaces(_))
        }),
        (
            vec!["--api-tokens-file", empty_tokens.to_str().unwrap()],
            |e| matches!(e, StartupError::Tokens(_)),
        ),
        (vec!["--default-limits", "cpu=9,memory=1Gi"], |e| {
            matches!(e, StartupError::RunDefaults(_))
        }),
        (vec!["--templates", templates.to_str().unwrap()], |e| {
            matches!(e, StartupError::Templates(_))
        }),
    ];
    for (args, expected) in cases {
        let error = AppState::from_settings(&settings(&args))
            .err()
            .unwrap_or_else(|| panic!("{args:?} started"));
        assert!(expected(&error), "{args:?}: {error:?}");
    }
    // Without any cluster the service still starts: the job endpoints answer 503.
    let state = AppState::from_settings(&settings(&[])).unwrap();
    assert!(state.client().is_err());
    assert_eq!(state.namespace().as_str(), "default");
}

//! Caller authentication, CORS, request limits and secrets in logs — the service is
//! safe to expose.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use sparktest_k8s::AppState;
use sparktest_k8s::state::Policy;
use sparktest_k8s::tokens::ApiTokens;
use wiremock::Mock;
use wiremock::matchers::path;

const API_TOKEN: &str = "caller-token-9f8e7d";

fn tokens_file(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("tokens");
    std::fs::write(
        &file,
        format!("# current, then the one being rotated out\n{API_TOKEN}\nold-caller-token\n"),
    )
    .unwrap();
    file
}

/// A state without a cluster (job endpoints answer 503: past authentication) and with
/// the given policy.
fn state_with(policy: Policy) -> AppState {
    state_without_cluster(policy)
}

fn authenticated_state(dir: &std::path::Path) -> AppState {
    state_with(Policy {
        api_tokens: Some(Arc::new(ApiTokens::load(tokens_file(dir)).unwrap())),
        ..Policy::default()
    })
}

async fn send(
    state: &AppState,
    method: &str,
    path: &str,
    auth: Option<&str>,
) -> warp::http::Response<bytes::Bytes> {
    let mut request = warp::test::request().method(method).path(path);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    request
        .reply(&sparktest_k8s::api::routes(state.clone()))
        .await
}

#[tokio::test]
async fn without_a_token_the_job_endpoints_are_401_with_www_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let state = authenticated_state(dir.path());
    for (method, p) in [
        ("GET", "/api/k8s/jobs/test-job-123/status"),
        ("GET", "/api/k8s/jobs/test-job-123/logs"),
        (
            "GET",
            "/api/test-runs/550e8400-e29b-41d4-a716-446655440000/logs",
        ),
        ("DELETE", "/api/k8s/jobs/test-job-123"),
        ("GET", "/api/k8s/jobs/test-job-123/logs/stream"),
        ("GET", "/api/k8s/jobs/test-job-123/watch"),
        ("GET", "/api/k8s/jobs/test-job-123/events"),
        // Even a name that would be 400 is 401 first: nothing is said to strangers.
        ("GET", "/api/k8s/jobs/Bad..Name/status"),
    ] {
        for auth in [
            None,
            Some("Bearer wrong-token"),
            Some("Basic YTpi"),
            Some(API_TOKEN),
        ] {
            let response = send(&state, method, p, auth).await;
            assert_eq!(response.status(), 401, "{method} {p} {auth:?}");
            assert_eq!(
                response.headers()["www-authenticate"],
                "Bearer realm=\"sparktest-k8s\""
            );
            let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
            assert_eq!(body["error_type"], "AuthenticationError");
        }
    }
}

#[tokio::test]
async fn a_valid_token_passes_and_either_rotated_token_works() {
    let dir = tempfile::tempdir().unwrap();
    let state = authenticated_state(dir.path());
    for token in [API_TOKEN, "old-caller-token"] {
        let response = send(
            &state,
            "GET",
            "/api/k8s/jobs/test-job-123/status",
            Some(&format!("Bearer {token}")),
        )
        .await;
        assert_eq!(response.status(), 503, "past authentication, no cluster");
    }
    // Browsers' EventSource cannot set headers: the live endpoints take ?access_token=.
    let response = send(
        &state,
        "GET",
        &format!("/api/k8s/jobs/test-job-123/logs/stream?access_token={API_TOKEN}"),
        None,
    )
    .await;
    assert_eq!(response.status(), 503);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    let state = authenticated_state(dir.path());
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let response = send(
            &state,
            "GET",
            "/api/k8s/jobs/test-job-123/status",
            Some(&format!("{scheme} {API_TOKEN}")),
        )
        .await;
        assert_eq!(response.status(), 503, "{scheme}: past authentication");
    }
    let response = send(
        &state,
        "GET",
        "/api/k8s/jobs/test-job-123/status",
        Some(&format!("Basic {API_TOKEN}")),
    )
    .await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn access_token_is_taken_on_every_protected_endpoint() {
    // EventSource cannot set headers, and a page that links a log download cannot
    // either: every protected endpoint takes ?access_token=, the log endpoints too.
    let dir = tempfile::tempdir().unwrap();
    let state = authenticated_state(dir.path());
    let id = "550e8400-e29b-41d4-a716-446655440000";
    for p in [
        "/api/k8s/jobs/test-job-123/status".to_string(),
        "/api/k8s/jobs/test-job-123/logs".to_string(),
        "/api/k8s/logs/test-job-123".to_string(),
        format!("/api/test-runs/{id}/logs"),
        "/api/k8s/jobs".to_string(),
        "/api/k8s/jobs/test-job-123/logs/stream".to_string(),
    ] {
        let response = send(
            &state,
            "GET",
            &format!("{p}?access_token={API_TOKEN}"),
            None,
        )
        .await;
        assert_eq!(
            response.status(),
            503,
            "{p}: past authentication and validation"
        );
        let response = send(&state, "GET", &format!("{p}?access_token=wrong"), None).await;
        assert_eq!(response.status(), 401, "{p}");
    }
}

#[tokio::test]
async fn health_and_probes_stay_open() {
    let dir = tempfile::tempdir().unwrap();
    let state = authenticated_state(dir.path());
    for p in ["/api/k8s/health", "/livez", "/readyz"] {
        assert_eq!(send(&state, "GET", p, None).await.status(), 200, "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigterm_the_server_stays_up_unready_for_the_delay_then_stops() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sparktest_k8s::run(
        listener,
        state_with(Policy::default()),
        async move {
            let _ = stopped.await;
        },
        sparktest_k8s::Drain {
            delay: Duration::from_millis(800),
            grace: Duration::from_secs(1),
        },
    ));
    let get = move |target: &'static str| {
        tokio::task::spawn_blocking(move || {
            raw_exchange(
                addr,
                format!("GET {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
            )
        })
    };
    assert!(get("/readyz").await.unwrap().starts_with("HTTP/1.1 200"));
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Still accepting during the delay, but unready, so the endpoint is removed.
    assert!(get("/readyz").await.unwrap().starts_with("HTTP/1.1 503"));
    assert!(get("/livez").await.unwrap().starts_with("HTTP/1.1 200"));
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("stops after the delay")
        .unwrap();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn without_tokens_configured_authentication_is_off() {
    let state = state_with(Policy::default());
    assert_eq!(
        send(&state, "GET", "/api/k8s/jobs/test-job-123/status", None)
            .await
            .status(),
        503
    );
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let state = state_with(Policy {
        cors_origins: vec!["http://localhost:3000".into()],
        ..Policy::default()
    });
    let routes = sparktest_k8s::api::routes(state);
    let preflight = |origin: &'static str| {
        warp::test::request()
            .method("OPTIONS")
            .path("/api/k8s/jobs/test-job-123/status")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
    };
    let ok = preflight("http://localhost:3000").reply(&routes).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let refused = preflight("https://evil.example").reply(&routes).await;
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert!(!refused.status().is_success());
    let get = warp::test::request()
        .path("/api/k8s/health")
        .header("origin", "http://localhost:3000")
        .reply(&routes)
        .await;
    assert_eq!(
        get.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );

    // None configured: no browser on another origin is let in.
    let closed = sparktest_k8s::api::routes(state_with(Policy::default()));
    let get = warp::test::request()
        .path("/api/k8s/health")
        .header("origin", "http://localhost:3000")
        .reply(&closed)
        .await;
    assert!(get.headers().get("access-control-allow-origin").is_none());
}

/// A browser page on an allowed origin must be able to read error answers too: a 401
/// without CORS headers is an opaque network error to `fetch` (found with Chromium,
/// tests/browser/check.py).
#[tokio::test]
async fn error_answers_carry_cors_headers_for_allowed_origins() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    std::fs::write(&file, "caller-token\n").unwrap();
    let routes = sparktest_k8s::api::routes(state_with(Policy {
        cors_origins: vec!["http://localhost:3000".into()],
        api_tokens: Some(std::sync::Arc::new(ApiTokens::load(file).unwrap())),
        ..Policy::default()
    }));
    for (target, code) in [
        ("/api/k8s/jobs/test-job-123/status", 401),
        ("/api/no-such-route", 401),
    ] {
        let response = warp::test::request()
            .path(target)
            .header("origin", "http://localhost:3000")
            .reply(&routes)
            .await;
        assert_eq!(response.status(), code, "{target}");
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "http://localhost:3000",
            "{target}"
        );
    }
    let response = warp::test::request()
        .path("/api/k8s/jobs/Bad_Name/status")
        .header("origin", "http://localhost:3000")
        .header("authorization", "Bearer caller-token")
        .reply(&routes)
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
}

#[tokio::test]
async fn an_over_long_url_is_414_before_routing() {
    let state = state_with(Policy::default());
    let long = format!("/api/k8s/jobs/{}/status", "a".repeat(13 * 1024));
    let response = send(&state, "GET", &long, None).await;
    assert_eq!(response.status(), 414);
}

/// Starts the real server (hyper accept loop and limits) on a free port.
async fn start(state: AppState) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sparktest_k8s::run(
        listener,
        state,
        async move {
            let _ = stopped.await;
        },
        sparktest_k8s::Drain {
            delay: Duration::ZERO,
            grace: Duration::from_secs(1),
        },
    ));
    (addr, stop)
}

fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    socket.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_are_431() {
    let (addr, _stop) = start(state_with(Policy::default())).await;
    let request = format!(
        "GET /livez HTTP/1.1\r\nhost: x\r\nx-big: {}\r\nconnection: close\r\n\r\n",
        "a".repeat(20_000)
    );
    let answer = tokio::task::spawn_blocking(move || raw_exchange(addr, request.as_bytes()))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = sparktest_k8s::server::ServerLimits {
        header_read_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let routes = sparktest_k8s::api::routes(state_with(Policy::default()));
    tokio::spawn(sparktest_k8s::server::serve(
        listener,
        routes,
        limits,
        std::future::pending(),
        || {},
        Duration::from_secs(1),
    ));
    let started = std::time::Instant::now();
    let answer = tokio::task::spawn_blocking(move || {
        raw_exchange(addr, b"GET /livez HTTP/1.1\r\nhost: x\r\n")
    })
    .await
    .unwrap();
    let waited = started.elapsed();
    // hyper answers 408 or just closes; either way the slow client is gone, long before
    // the 20 s read timeout of this test.
    assert!(waited < Duration::from_secs(10), "kept for {waited:?}");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_reach_a_log_line_even_at_trace() {
    // The apiserver (a TLS mock) accepts TOKEN; callers present API_TOKEN. The binary
    // runs at RUST_LOG=trace through health, status, logs, a stream and a delete.
    let (pki, api) = apiserver().await;
    Mock::given(path("/version"))
        .respond_with(replay("01_version"))
        .mount(&api.mock)
        .await;
    Mock::given(path("/apis/batch/v1/namespaces/default/jobs"))
        .respond_with(replay("17_job_list_limit2"))
        .mount(&api.mock)
        .await;
    Mock::given(path("/apis/batch/v1/namespaces/default/jobs/test-job-123"))
        .respond_with(replay("09_job_get_completed"))
        .mount(&api.mock)
        .await;
    Mock::given(path("/api/v1/namespaces/default/pods"))
        .respond_with(replay("19_pods_list_job_completed"))
        .mount(&api.mock)
        .await;
    Mock::given(path(
        "/api/v1/namespaces/default/pods/test-job-123-h6gvc/log",
    ))
    .respond_with(replay("28_log_completed_timestamps"))
    .mount(&api.mock)
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca = base64::engine::general_purpose::STANDARD.encode(&pki.ca_pem);
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: t\n  cluster: {{server: '{}', certificate-authority-data: {ca}}}\nusers:\n- name: u\n  user: {{token: {TOKEN}}}\ncontexts:\n- name: t\n  context: {{cluster: t, user: u, namespace: default}}\n",
        api.url
    )).unwrap();
    let tokens = tokens_file(dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sparktest-k8s"))
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .env("RUST_LOG", "trace")
        .env("API_TOKENS_FILE", &tokens)
        // The run is archived too, here rather than in the default directory under
        // $HOME, where it would outlive the test and answer for the next one.
        .env("LOG_ARCHIVE", dir.path().join("archive"))
        .env_remove("KUBECONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let exchanges = tokio::task::spawn_blocking(move || {
        let auth = format!("Authorization: Bearer {API_TOKEN}\r\n");
        let mut answers = Vec::new();
        for _ in 0..100 {
            if std::net::TcpStream::connect(addr).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for (method, target) in [
            ("GET", "/api/k8s/health".to_string()),
            ("GET", "/api/k8s/jobs/test-job-123/status".to_string()),
            ("GET", "/api/k8s/jobs/test-job-123/logs".to_string()),
            (
                "GET",
                format!("/api/k8s/jobs/test-job-123/logs/stream?access_token={API_TOKEN}"),
            ),
        ] {
            let request =
                format!("{method} {target} HTTP/1.1\r\nhost: x\r\n{auth}connection: close\r\n\r\n");
            answers.push(raw_exchange(addr, request.as_bytes()));
        }
        answers
    })
    .await
    .unwrap();
    assert!(
        exchanges[0].contains("\"kubernetes_connected\":true"),
        "{}",
        exchanges[0]
    );
    assert!(exchanges[1].contains("\"completed\""), "{}", exchanges[1]);
    assert!(exchanges[2].contains("Starting main"), "{}", exchanges[2]);
    assert!(exchanges[3].contains("event:"), "{}", exchanges[3]);

    unsafe_sigterm(child.id());
    let output = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut logs = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut logs)
            .unwrap();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut logs)
            .unwrap();
        (status, logs)
    })
    .await
    .unwrap();
    let (status, logs) = output;
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert!(
        logs.lines().count() > 50,
        "trace logging was not on:\n{logs}"
    );
    for secret in [TOKEN, API_TOKEN, "old-caller-token"] {
        let hits: Vec<&str> = logs.lines().filter(|l| l.contains(secret)).collect();
        assert!(hits.is_empty(), "{secret} logged:\n{}", hits.join("\n"));
    }
}

/// SIGTERM without a libc dependency: `kill` is on every machine here.
fn unsafe_sigterm(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Recognizable fake S3 credentials: the access key id is not a secret (it is in every
/// request's Authorization header); the secret key and the session token are.
const S3_ACCESS_KEY: &str = "AKIDSECURITYLOGTEST";
const S3_SECRET_KEY: &str = "s3-secret-key-5e1f0c9b7a3d2468-never-logged";
const S3_SESSION_TOKEN: &str = "s3-session-token-0f9e8d7c6b5a4321-never-logged";

/// What an S3 store answers to a request whose signature it rejects, made hostile: real
/// S3 echoes the canonical request (with `x-amz-security-token`) and the string to sign;
/// this one also echoes both secrets in the message the service keeps.
fn s3_refusal() -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(403)
        .insert_header("content-type", "application/xml")
        .set_body_string(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code>\
             <Message>signed with {S3_SECRET_KEY} and {S3_SESSION_TOKEN}</Message>\
             <AWSAccessKeyId>{S3_ACCESS_KEY}</AWSAccessKeyId>\
             <StringToSign>AWS4-HMAC-SHA256 {S3_SECRET_KEY}</StringToSign>\
             <CanonicalRequest>PUT\n/\n\nx-amz-security-token:{S3_SESSION_TOKEN}\n</CanonicalRequest>\
             <RequestId>4442587FB7D0A2F9</RequestId></Error>"
        ))
}

/// The lines of `logs` holding an S3 secret or a request signature (never logged: the
/// Authorization and x-amz-security-token headers are marked sensitive).
fn s3_secrets_in(logs: &str) -> Vec<&str> {
    logs.lines()
        .filter(|l| {
            l.contains(S3_SECRET_KEY) || l.contains(S3_SESSION_TOKEN) || l.contains("Signature=")
        })
        .collect()
}

#[tokio::test]
async fn s3_credentials_never_reach_a_log_line_even_at_trace() {
    // The binary archives to an S3 mock (plain http on loopback) that refuses every
    // request with an error document echoing the credentials, at RUST_LOG=trace: the
    // index listing at start, the upload of a finished run (retried), and the lookup of
    // a run the cluster no longer has.
    let (pki, api) = apiserver().await;
    Mock::given(path("/version"))
        .respond_with(replay("01_version"))
        .mount(&api.mock)
        .await;
    // A list without a continue token: the sweep asks for every finished run once.
    Mock::given(path("/apis/batch/v1/namespaces/default/jobs"))
        .respond_with(replay("15_job_list"))
        .mount(&api.mock)
        .await;
    Mock::given(path("/apis/batch/v1/namespaces/default/jobs/test-job-123"))
        .respond_with(replay("09_job_get_completed"))
        .mount(&api.mock)
        .await;
    Mock::given(path("/apis/batch/v1/namespaces/default/jobs/gone-job"))
        .respond_with(replay("14_job_get_not_found"))
        .mount(&api.mock)
        .await;
    Mock::given(path("/api/v1/namespaces/default/pods"))
        .respond_with(replay("19_pods_list_job_completed"))
        .mount(&api.mock)
        .await;
    Mock::given(path(
        "/api/v1/namespaces/default/pods/test-job-123-h6gvc/log",
    ))
    .respond_with(replay("28_log_completed_timestamps"))
    .mount(&api.mock)
    .await;
    let s3 = wiremock::MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(s3_refusal())
        .mount(&s3)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let ca = base64::engine::general_purpose::STANDARD.encode(&pki.ca_pem);
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: t\n  cluster: {{server: '{}', certificate-authority-data: {ca}}}\nusers:\n- name: u\n  user: {{token: {TOKEN}}}\ncontexts:\n- name: t\n  context: {{cluster: t, user: u, namespace: default}}\n",
        api.url
    )).unwrap();
    let spill = dir.path().join("tmp");
    std::fs::create_dir(&spill).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sparktest-k8s"));
    command
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .env("RUST_LOG", "trace")
        .env("TMPDIR", &spill)
        .env("LOG_ARCHIVE", "s3://sparktest-archive/runs")
        .env("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
        .env("AWS_SESSION_TOKEN", S3_SESSION_TOKEN)
        .env("AWS_REGION", "eu-west-3")
        .env("AWS_ENDPOINT_URL_S3", s3.uri())
        .env_remove("KUBECONFIG")
        .env_remove("API_TOKENS_FILE");
    for inherited in ["AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_CA_BUNDLE"] {
        command.env_remove(inherited);
    }
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let answers = tokio::task::spawn_blocking(move || {
        for _ in 0..100 {
            if std::net::TcpStream::connect(addr).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        [
            "/api/k8s/jobs/test-job-123/status",
            "/api/k8s/jobs/gone-job/status",
            "/api/k8s/jobs/gone-job/logs",
            "/api/k8s/jobs?include_archived=true",
        ]
        .map(|target| {
            raw_exchange(
                addr,
                format!("GET {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
            )
        })
    })
    .await
    .unwrap();
    assert!(answers[0].contains("\"completed\""), "{}", answers[0]);
    // The store refuses: a run the cluster no longer has cannot be answered for (the
    // store's message reaches the caller, scrubbed).
    assert!(
        answers[1].starts_with("HTTP/1.1 50") && answers[1].contains("the log archive"),
        "{}",
        answers[1]
    );
    for answer in &answers {
        assert!(
            s3_secrets_in(answer).is_empty(),
            "an answer holds a secret:\n{answer}"
        );
    }

    // The credentials did go out (signed headers), on every kind of request: a listing,
    // a lookup and an upload (retried after 1 s).
    let mut seen = Vec::new();
    for _ in 0..150 {
        seen = s3.received_requests().await.unwrap_or_default();
        if seen.iter().filter(|r| r.method.as_str() == "PUT").count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for method in ["GET", "PUT"] {
        assert!(
            seen.iter().any(|r| r.method.as_str() == method),
            "no {method} reached the store: {seen:?}"
        );
    }
    for request in &seen {
        assert_eq!(
            request
                .headers
                .get("x-amz-security-token")
                .map(|v| v.as_bytes()),
            Some(S3_SESSION_TOKEN.as_bytes()),
            "{} {}",
            request.method,
            request.url
        );
        let authorization = request
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(authorization.contains(S3_ACCESS_KEY), "{authorization}");
    }

    unsafe_sigterm(child.id());
    let (status, logs) = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut logs = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut logs)
            .unwrap();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut logs)
            .unwrap();
        (status, logs)
    })
    .await
    .unwrap();
    assert!(status.success(), "exit after SIGTERM: {status}\n{logs}");
    assert!(
        logs.lines().count() > 50,
        "trace logging was not on:\n{logs}"
    );
    // The refusals were logged (with the store's message, scrubbed), so the search
    // below looked at the lines that could have held a secret.
    assert!(
        logs.contains("cannot store an archived run") && logs.contains("SignatureDoesNotMatch"),
        "the store's refusal was not logged:\n{logs}"
    );
    assert!(logs.contains("s3://sparktest-archive/runs"), "{logs}");
    let hits = s3_secrets_in(&logs);
    assert!(hits.is_empty(), "S3 secrets logged:\n{}", hits.join("\n"));
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn s3_store_errors_and_debug_hold_no_credential() {
    // In process, every event at trace (this thread's subscriber: the runtime is
    // current-thread, so the store's connection tasks log here too): the store built
    // from the AWS variables, each operation against a port that refuses connections,
    // and everything an operator's code could print — the config's and the store's
    // Debug, each error's Display and Debug.
    use sparktest_k8s::archive::s3::{S3Config, S3Options, S3Store};
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let vars = |name: &str| {
        match name {
            "AWS_ACCESS_KEY_ID" => Some(S3_ACCESS_KEY),
            "AWS_SECRET_ACCESS_KEY" => Some(S3_SECRET_KEY),
            "AWS_SESSION_TOKEN" => Some(S3_SESSION_TOKEN),
            "AWS_REGION" => Some("eu-west-3"),
            "AWS_ENDPOINT_URL_S3" => Some("http://127.0.0.1:1"),
            _ => None,
        }
        .map(str::to_string)
    };
    let config = S3Config::parse("s3://sparktest-archive/runs", &vars).unwrap();
    tracing::trace!(?config, "config");
    let options = S3Options {
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        ..S3Options::default()
    };
    let store = S3Store::with_options(config, options).unwrap();
    tracing::trace!(?store, location = %store.describe(), "store");
    let mut errors = vec![
        store
            .put("ns/job/run.json", bytes::Bytes::from_static(b"{}"))
            .await
            .unwrap_err(),
        store.get("ns/job/run.json", 1024).await.unwrap_err(),
        store.list("").await.unwrap_err(),
        store.delete("ns/job/run.json").await.unwrap_err(),
    ];
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), b"log").unwrap();
    errors.push(
        store
            .put_file(
                "ns/job/logs/p/c.log.gz",
                file.path(),
                3,
                "a0b2b5d5e4ee2a4ab5dd4ac8feaa93d92e2d1a3b2b8e2f8b1f0c2c8e4e9a3b51",
            )
            .await
            .unwrap_err(),
    );
    for e in &errors {
        tracing::error!(error = %e, debug = ?e, "store operation failed");
    }
    // Refused configurations: their errors name the variable, never its value.
    for (name, value) in [
        (
            "AWS_ENDPOINT_URL_S3",
            format!("https://{S3_ACCESS_KEY}:{S3_SECRET_KEY}@store:9000"),
        ),
        (
            "AWS_SESSION_TOKEN",
            format!("{S3_SESSION_TOKEN} {S3_SECRET_KEY}"),
        ),
        ("AWS_SESSION_TOKEN", format!("{S3_SESSION_TOKEN}\u{7f}")),
    ] {
        let bad = |var: &str| {
            if var == name {
                Some(value.clone())
            } else {
                vars(var)
            }
        };
        let e = S3Config::parse("s3://sparktest-archive/runs", &bad).unwrap_err();
        tracing::error!(error = %e, "refused");
    }
    drop(_guard);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("127.0.0.1:1") && logs.contains("store operation failed"),
        "the errors were not captured:\n{logs}"
    );
    assert!(
        logs.contains("<redacted>"),
        "the config's Debug was not captured:\n{logs}"
    );
    let hits = s3_secrets_in(&logs);
    assert!(hits.is_empty(), "S3 secrets logged:\n{}", hits.join("\n"));
}

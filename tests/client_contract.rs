//! Contract tests of the hand-built Kubernetes client (`sparktest_k8s::kube::Client`)
//! against a TLS terminator in front of wiremock and recorded apiserver answers: TLS
//! verification, client certificates, token, token-file and exec-plugin
//! authentication, timeouts, connect errors, 429 back-off, Status errors, plain HTTP
//! and the redaction of secrets.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use common::*;
use serde_json::{Value, json};
use sparktest_k8s::cluster::{
    AuthConfig, ClusterConfig, ConfigSource, ExecConfig, ExecInteractiveMode, Identity, ServerUrl,
    TlsConfig,
};
use sparktest_k8s::kube::{Client, ClientOptions, KubeError};
use sparktest_k8s::secret::Secret;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Every request of these tests is bounded by this; the tests finish far sooner.
const TIMEOUT: Duration = Duration::from_secs(10);

fn client(config: &ClusterConfig) -> Client {
    client_for(config, TIMEOUT)
}

fn identity(leaf: &Leaf) -> Identity {
    Identity {
        cert_pem: leaf.cert_pem.clone().into_bytes(),
        key_pem: Secret::new(leaf.key_pem.clone().into_bytes()),
    }
}

/// `GET /version` answers the recorded version to anyone.
async fn mount_version(mock: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/version"))
        .respond_with(replay("01_version"))
        .mount(mock)
        .await;
}

async fn get_version(client: &Client) -> Result<Value, KubeError> {
    client.get_json::<Value>("/version").await
}

/// The `Authorization` headers the mock received, in order (`None` for a request
/// without one).
async fn authorizations(mock: &MockServer) -> Vec<Option<String>> {
    mock.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| {
            r.headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string())
        })
        .collect()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

// ---------------------------------------------------------------------------------
// TLS: server verification
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_server_certificate_from_another_ca_fails_with_a_tls_error() {
    let server_pki = Pki::new("rogue-ca");
    let api = tls_mock(&server_pki.server(&["127.0.0.1"]), None).await;
    mount_version(&api.mock).await;
    let trusted = Pki::new("configured-ca");

    let err = get_version(&client(&cluster_config(&trusted, &api)))
        .await
        .unwrap_err();

    let KubeError::Tls { server, message } = &err else {
        panic!("expected KubeError::Tls, got {err:?}");
    };
    assert_eq!(server, &api.url);
    assert!(
        message.to_lowercase().contains("unknownissuer")
            || message.to_lowercase().contains("unknown issuer"),
        "{message}"
    );
    assert!(err.to_string().contains(&api.url), "{err}");
    assert!(
        authorizations(&api.mock).await.is_empty(),
        "nothing got through"
    );
}

#[tokio::test]
async fn a_certificate_with_an_ip_san_verifies_against_an_ip_url() {
    let pki = Pki::new("ip-ca");
    let api = tls_mock(&pki.server(&["127.0.0.1"]), None).await;
    mount_version(&api.mock).await;
    let config = cluster_config(&pki, &api);
    assert!(config.server.as_str().starts_with("https://127.0.0.1:"));

    let version = get_version(&client(&config)).await.unwrap();

    assert_eq!(version["gitVersion"], "v1.24.0-alpha.1+e5f3f020084e");
}

#[tokio::test]
async fn a_dns_only_certificate_needs_tls_server_name_on_an_ip_url() {
    let pki = Pki::new("svc-ca");
    let api = tls_mock(&pki.server(&["kubernetes.default.svc"]), None).await;
    mount_version(&api.mock).await;
    let mut config = cluster_config(&pki, &api);

    let err = get_version(&client(&config)).await.unwrap_err();
    let KubeError::Tls { message, .. } = &err else {
        panic!("expected KubeError::Tls for a name mismatch, got {err:?}");
    };
    assert!(
        message.contains("NotValidForName") || message.contains("not valid for name"),
        "{message}"
    );

    config.tls.server_name = Some("kubernetes.default.svc".into());
    let version = get_version(&client(&config)).await.unwrap();
    assert_eq!(version["major"], "1");
}

/// The half of the rule above that does not depend on how the failure is classified.
#[tokio::test]
async fn tls_server_name_makes_a_dns_only_certificate_verify_on_an_ip_url() {
    let pki = Pki::new("svc-ca");
    let api = tls_mock(&pki.server(&["kubernetes.default.svc"]), None).await;
    mount_version(&api.mock).await;
    let mut config = cluster_config(&pki, &api);

    assert!(
        get_version(&client(&config)).await.is_err(),
        "127.0.0.1 is not in the certificate"
    );
    assert!(authorizations(&api.mock).await.is_empty());

    config.tls.server_name = Some("kubernetes.default.svc".into());
    get_version(&client(&config)).await.unwrap();
    assert_eq!(authorizations(&api.mock).await, [Some(bearer(TOKEN))]);
}

#[tokio::test]
async fn insecure_skip_verify_accepts_a_certificate_from_an_unknown_ca() {
    let unknown = Pki::new("unknown-ca");
    let api = tls_mock(&unknown.server(&["some.other.name"]), None).await;
    mount_version(&api.mock).await;
    let mut config = cluster_config(&Pki::new("unrelated-ca"), &api);
    config.tls = TlsConfig {
        insecure_skip_verify: true,
        ..TlsConfig::default()
    };

    let version = get_version(&client(&config)).await.unwrap();

    assert_eq!(version["major"], "1");
}

#[tokio::test]
async fn a_ca_bundle_that_is_not_pem_fails_at_client_new() {
    let (pki, api) = apiserver().await;
    let mut config = cluster_config(&pki, &api);
    config.tls.ca_pem = Some(b"this is not a certificate".to_vec());

    let err = Client::new(&config, ClientOptions::default()).unwrap_err();

    let KubeError::TlsConfig(message) = &err else {
        panic!("expected KubeError::TlsConfig, got {err:?}");
    };
    assert!(message.contains("certificate authority"), "{message}");
}

// ---------------------------------------------------------------------------------
// TLS: client certificates
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_client_certificate_is_presented_to_a_server_that_requires_one() {
    let pki = Pki::new("server-ca");
    let client_pki = Pki::new("client-ca");
    let api = tls_mock(&pki.server(&["127.0.0.1"]), Some(&client_pki)).await;
    mount_version(&api.mock).await;
    let mut config = cluster_config(&pki, &api);
    config.auth = AuthConfig::None;
    config.tls.identity = Some(identity(&client_pki.client("sparktest-operator")));

    let c = client(&config);
    get_version(&c).await.unwrap();

    assert_eq!(c.auth_kind(), "client-certificate");
    assert_eq!(
        api.client_names.lock().unwrap().len(),
        1,
        "one connection, one client certificate"
    );
    assert_eq!(authorizations(&api.mock).await, [None]);
}

#[tokio::test]
async fn the_mock_records_the_common_name_of_the_client_certificate() {
    let pki = Pki::new("server-ca");
    let client_pki = Pki::new("client-ca");
    let api = tls_mock(&pki.server(&["127.0.0.1"]), Some(&client_pki)).await;
    mount_version(&api.mock).await;
    let mut config = cluster_config(&pki, &api);
    config.tls.identity = Some(identity(&client_pki.client("sparktest-operator")));

    get_version(&client(&config)).await.unwrap();

    assert_eq!(*api.client_names.lock().unwrap(), ["sparktest-operator"]);
}

#[tokio::test]
async fn without_a_client_certificate_the_handshake_fails_with_a_tls_error() {
    let pki = Pki::new("server-ca");
    let client_pki = Pki::new("client-ca");
    let api = tls_mock(&pki.server(&["127.0.0.1"]), Some(&client_pki)).await;
    mount_version(&api.mock).await;
    let c = client(&cluster_config(&pki, &api));

    // Run on its own task so that a panic in the client would show as a JoinError.
    let outcome = tokio::spawn(async move { get_version(&c).await }).await;

    let err = outcome.expect("the client must not panic").unwrap_err();
    // TLS 1.3: the client's side of the handshake completes, and the server's
    // certificate_required alert arrives with the answer to the request.
    let KubeError::Tls { server, message } = &err else {
        panic!("expected KubeError::Tls, got {err:?}");
    };
    assert_eq!(server, &api.url);
    assert!(message.contains("CertificateRequired"), "{message}");
    assert!(api.client_names.lock().unwrap().is_empty());
    assert!(authorizations(&api.mock).await.is_empty());
}

// ---------------------------------------------------------------------------------
// Token and token-file authentication
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_static_token_is_sent_as_a_bearer_header_with_the_exact_method_and_path() {
    let (pki, api) = apiserver().await;
    Mock::given(method("DELETE"))
        .and(path(
            "/apis/batch/v1/namespaces/default/jobs/test-job-delete-me",
        ))
        .and(header("authorization", bearer(TOKEN).as_str()))
        .respond_with(replay("61_job_delete_background"))
        .expect(1)
        .mount(&api.mock)
        .await;

    let status: Value = client(&cluster_config(&pki, &api))
        .request_json(
            http::Method::DELETE,
            "/apis/batch/v1/namespaces/default/jobs/test-job-delete-me",
            None,
        )
        .await
        .unwrap();

    assert_eq!(status["details"]["name"], "test-job-delete-me");
    let requests = api.mock.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method.as_str(), "DELETE");
    assert_eq!(
        requests[0].url.path(),
        "/apis/batch/v1/namespaces/default/jobs/test-job-delete-me"
    );
    assert_eq!(requests[0].url.query(), None);
    api.mock.verify().await;
}

#[tokio::test]
async fn a_401_rereads_a_rotated_token_file_at_once_and_retries() {
    let (pki, api) = apiserver().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "token-a\n").unwrap();
    mount_version(&api.mock).await;
    let jobs = "/apis/batch/v1/namespaces/default/jobs";
    Mock::given(method("GET"))
        .and(path(jobs))
        .and(header("authorization", "Bearer token-a"))
        .respond_with(replay("53_unauthorized_bad_token"))
        .with_priority(1)
        .expect(1)
        .mount(&api.mock)
        .await;
    Mock::given(method("GET"))
        .and(path(jobs))
        .and(header("authorization", "Bearer token-b"))
        .respond_with(replay("15_job_list"))
        .with_priority(1)
        .expect(1)
        .mount(&api.mock)
        .await;
    Mock::given(path(jobs))
        .respond_with(ResponseTemplate::new(500).set_body_string("unexpected credentials"))
        .with_priority(10)
        .expect(0)
        .mount(&api.mock)
        .await;
    let mut config = cluster_config(&pki, &api);
    config.auth = AuthConfig::TokenFile(token_file.clone());
    let c = client(&config);

    // The first request reads (and caches) token A.
    get_version(&c).await.unwrap();
    std::fs::write(&token_file, "token-b\n").unwrap();
    // Cached A is refused; the client re-reads the file and retries with B.
    let list: Value = c.get_json(jobs).await.unwrap();

    assert_eq!(list["kind"], "JobList");
    assert_eq!(
        authorizations(&api.mock).await,
        [
            Some(bearer("token-a")),
            Some(bearer("token-a")),
            Some(bearer("token-b"))
        ]
    );
    api.mock.verify().await;
}

#[tokio::test]
async fn a_401_with_an_unchanged_static_token_is_not_retried() {
    let (pki, api) = apiserver().await;
    Mock::given(method("GET"))
        .and(path("/apis/batch/v1/namespaces/default/jobs"))
        .respond_with(replay("53_unauthorized_bad_token"))
        .expect(1)
        .mount(&api.mock)
        .await;

    let err = client(&cluster_config(&pki, &api))
        .get_json::<Value>("/apis/batch/v1/namespaces/default/jobs")
        .await
        .unwrap_err();

    let KubeError::Api { code, status } = &err else {
        panic!("expected KubeError::Api, got {err:?}");
    };
    assert_eq!(*code, 401);
    assert_eq!(status.reason.as_deref(), Some("Unauthorized"));
    api.mock.verify().await;
}

// ---------------------------------------------------------------------------------
// Exec credential plugins
// ---------------------------------------------------------------------------------

const EXEC_API_VERSION: &str = "client.authentication.k8s.io/v1beta1";
const FAR_FUTURE: &str = "2099-01-01T00:00:00Z";

/// Writing an executable while another thread forks can make its `exec` fail with
/// ETXTBSY ("text file busy"): the child holds the write descriptor until it execs.
/// Plugin scripts are written under the write lock; a test holds the read lock while its
/// client may start a plugin.
static SPAWNING: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// `$1`: a file that gets one line per run; `$2`: the ExecCredential to print, with
/// `@RUN@` replaced by the run number; `$3`: an exit status (non-zero: fail, with a
/// message on stderr).
const PLUGIN_SCRIPT: &str = r#"#!/bin/sh
echo run >> "$1"
if [ "$3" != 0 ]; then
  echo "plugin says: the SSO session expired, run 'login' again" >&2
  exit "$3"
fi
n=$(wc -l < "$1" | tr -d ' ')
sed "s/@RUN@/$n/g" "$2"
"#;

/// An exec plugin script in a test's own directory, counting its runs.
struct Plugin {
    _dir: tempfile::TempDir,
    script: PathBuf,
    runs_file: PathBuf,
    credential_file: PathBuf,
}

impl Plugin {
    /// A plugin printing an ExecCredential with this `status`.
    async fn new(status: Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let credential = json!({
            "apiVersion": EXEC_API_VERSION,
            "kind": "ExecCredential",
            "status": status,
        });
        let credential_file = dir.path().join("credential.json");
        std::fs::write(&credential_file, credential.to_string()).unwrap();
        let script = dir.path().join("credential-plugin");
        {
            let _writing = SPAWNING.write().await;
            std::fs::write(&script, PLUGIN_SCRIPT).unwrap();
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Self {
            script,
            runs_file: dir.path().join("runs"),
            credential_file,
            _dir: dir,
        }
    }

    fn auth(&self, exit_status: u8) -> AuthConfig {
        AuthConfig::Exec(ExecConfig {
            api_version: EXEC_API_VERSION.into(),
            command: self.script.to_str().unwrap().into(),
            args: vec![
                self.runs_file.to_str().unwrap().into(),
                self.credential_file.to_str().unwrap().into(),
                exit_status.to_string(),
            ],
            env: vec![],
            interactive_mode: ExecInteractiveMode::Never,
            install_hint: None,
            cluster_info: None,
        })
    }

    fn runs(&self) -> usize {
        std::fs::read_to_string(&self.runs_file)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

/// Two requests with a plugin credential expiring at `expires`: how often the plugin
/// ran, and the headers the mock saw.
async fn two_requests_with_expiry(expires: &str) -> (usize, Vec<Option<String>>) {
    let (pki, api) = apiserver().await;
    mount_version(&api.mock).await;
    let plugin = Plugin::new(json!({"token": "exec-@RUN@", "expirationTimestamp": expires})).await;
    let mut config = cluster_config(&pki, &api);
    config.auth = plugin.auth(0);
    let c = client(&config);
    let _spawning = SPAWNING.read().await;

    get_version(&c).await.unwrap();
    get_version(&c).await.unwrap();

    (plugin.runs(), authorizations(&api.mock).await)
}

#[tokio::test]
async fn an_exec_credential_is_cached_until_it_expires() {
    let (runs, seen) = two_requests_with_expiry(FAR_FUTURE).await;

    assert_eq!(runs, 1, "the second request reuses the cached credential");
    assert_eq!(seen, [Some(bearer("exec-1")), Some(bearer("exec-1"))]);
}

#[tokio::test]
async fn an_expired_exec_credential_makes_each_request_run_the_plugin() {
    let (runs, seen) = two_requests_with_expiry("2000-01-01T00:00:00Z").await;

    assert_eq!(runs, 2);
    assert_eq!(seen, [Some(bearer("exec-1")), Some(bearer("exec-2"))]);
}

#[tokio::test]
async fn an_exec_credential_within_the_expiry_margin_is_not_reused() {
    // Expires in 10 s: inside the 30 s margin, so it is never considered fresh.
    let expires = sparktest_k8s::time::format_rfc3339(SystemTime::now() + Duration::from_secs(10));
    assert!(Duration::from_secs(10) < sparktest_k8s::kube::exec::EXPIRY_MARGIN);

    let (runs, seen) = two_requests_with_expiry(&expires).await;

    assert_eq!(runs, 2);
    assert_eq!(seen, [Some(bearer("exec-1")), Some(bearer("exec-2"))]);
}

#[tokio::test]
async fn a_401_clears_the_exec_cache_and_reruns_the_plugin_once() {
    let (pki, api) = apiserver().await;
    let jobs = "/apis/batch/v1/namespaces/default/jobs";
    Mock::given(method("GET"))
        .and(path(jobs))
        .and(header("authorization", "Bearer exec-1"))
        .respond_with(replay("53_unauthorized_bad_token"))
        .expect(1)
        .mount(&api.mock)
        .await;
    Mock::given(method("GET"))
        .and(path(jobs))
        .and(header("authorization", "Bearer exec-2"))
        .respond_with(replay("15_job_list"))
        .expect(1)
        .mount(&api.mock)
        .await;
    let plugin =
        Plugin::new(json!({"token": "exec-@RUN@", "expirationTimestamp": FAR_FUTURE})).await;
    let mut config = cluster_config(&pki, &api);
    config.auth = plugin.auth(0);
    let _spawning = SPAWNING.read().await;

    let list: Value = client(&config).get_json(jobs).await.unwrap();

    assert_eq!(list["kind"], "JobList");
    assert_eq!(
        plugin.runs(),
        2,
        "one run, then exactly one rerun after the 401"
    );
    api.mock.verify().await;
}

#[tokio::test]
async fn a_failing_exec_plugin_is_a_credentials_error_carrying_its_stderr() {
    let (pki, api) = apiserver().await;
    mount_version(&api.mock).await;
    let plugin = Plugin::new(json!({"token": "never-printed"})).await;
    let mut config = cluster_config(&pki, &api);
    config.auth = plugin.auth(3);
    let _spawning = SPAWNING.read().await;

    let err = get_version(&client(&config)).await.unwrap_err();

    let KubeError::Credentials(message) = &err else {
        panic!("expected KubeError::Credentials, got {err:?}");
    };
    assert!(message.contains("the SSO session expired"), "{message}");
    assert_eq!(plugin.runs(), 1);
    assert!(
        authorizations(&api.mock).await.is_empty(),
        "no request without credentials"
    );
}

#[tokio::test]
async fn an_exec_plugin_client_certificate_is_used_for_the_handshake() {
    let pki = Pki::new("server-ca");
    let client_pki = Pki::new("client-ca");
    let api = tls_mock(&pki.server(&["127.0.0.1"]), Some(&client_pki)).await;
    mount_version(&api.mock).await;
    let leaf = client_pki.client("exec-user");
    let plugin = Plugin::new(json!({
        "clientCertificateData": leaf.cert_pem,
        "clientKeyData": leaf.key_pem,
        "expirationTimestamp": FAR_FUTURE,
    }))
    .await;
    let mut config = cluster_config(&pki, &api);
    config.auth = plugin.auth(0);
    let c = client(&config);
    let _spawning = SPAWNING.read().await;

    get_version(&c).await.unwrap();
    get_version(&c).await.unwrap();

    assert_eq!(plugin.runs(), 1);
    // Both requests went through the server's client-certificate check (one pooled
    // connection, or two); the CN test pins which name is recorded.
    let names = api.client_names.lock().unwrap().len();
    assert!((1..=2).contains(&names), "{names} client certificates");
    assert_eq!(
        authorizations(&api.mock).await,
        [None, None],
        "no token was issued"
    );
}

// ---------------------------------------------------------------------------------
// Timeouts, connect errors, 429
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_slow_answer_is_a_timeout_error_without_waiting_for_it() {
    let (pki, api) = apiserver().await;
    Mock::given(method("GET"))
        .and(path("/version"))
        .respond_with(replay("01_version").set_delay(Duration::from_secs(5)))
        .mount(&api.mock)
        .await;
    let c = client_for(&cluster_config(&pki, &api), Duration::from_millis(200));

    let started = Instant::now();
    let err = get_version(&c).await.unwrap_err();
    let elapsed = started.elapsed();

    let KubeError::Timeout(after) = err else {
        panic!("expected KubeError::Timeout, got {err:?}");
    };
    assert_eq!(after, Duration::from_millis(200));
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let pki = Pki::new("closed-port-ca");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("https://127.0.0.1:{port}");
    let config = ClusterConfig {
        source: ConfigSource::Environment { variable: "TEST" },
        server: ServerUrl::parse(&url).unwrap(),
        tls: TlsConfig {
            ca_pem: Some(pki.ca_pem.clone().into_bytes()),
            ..TlsConfig::default()
        },
        auth: AuthConfig::Token(Secret::new(TOKEN.to_string())),
        namespace: None,
        proxy_url: None,
    };

    let err = get_version(&client(&config)).await.unwrap_err();

    let KubeError::Connect { server, .. } = &err else {
        panic!("expected KubeError::Connect, got {err:?}");
    };
    assert_eq!(server, &url);
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after() {
    let (pki, api) = apiserver().await;
    Mock::given(method("GET"))
        .and(path("/version"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&api.mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/version"))
        .respond_with(replay("01_version"))
        .with_priority(2)
        .expect(1)
        .mount(&api.mock)
        .await;
    let c = client(&cluster_config(&pki, &api));

    let started = Instant::now();
    let version = get_version(&c).await.unwrap();
    let elapsed = started.elapsed();

    assert_eq!(version["major"], "1");
    assert_eq!(api.mock.received_requests().await.unwrap().len(), 2);
    assert!(
        elapsed >= Duration::from_millis(900),
        "Retry-After honoured: {elapsed:?}"
    );
    api.mock.verify().await;
}

// ---------------------------------------------------------------------------------
// Non-2xx and oversized bodies
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn recorded_error_answers_become_api_errors_with_their_status() {
    let (pki, api) = apiserver().await;
    let names = [
        "14_job_get_not_found",
        "49_forbidden_list_secrets",
        "51_forbidden_jobs_other_namespace",
        "48_log_invalid_tailLines",
        "41_log_previous_not_found",
        "97_job_list_rv1_exact_expired",
    ];
    for name in names {
        let r = recorded(name);
        let (p, query) = r.path.split_once('?').unwrap_or((&r.path, ""));
        let mut mock = Mock::given(method(r.method.as_str())).and(path(p));
        for pair in query.split('&').filter(|q| !q.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap();
            mock = mock.and(query_param(k, v));
        }
        mock.respond_with(replay(name))
            .expect(1)
            .mount(&api.mock)
            .await;
    }
    let c = client(&cluster_config(&pki, &api));

    for name in names {
        let r = recorded(name);
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let err = c.get_json::<Value>(&r.path).await.unwrap_err();
        let KubeError::Api { code, status } = &err else {
            panic!("{name}: expected KubeError::Api, got {err:?}");
        };
        assert_eq!(*code, r.status, "{name}");
        assert_eq!(err.code(), Some(r.status), "{name}");
        assert_eq!(status.reason.as_deref(), body["reason"].as_str(), "{name}");
        assert_eq!(err.reason(), body["reason"].as_str(), "{name}");
        assert_eq!(
            status.message.as_deref(),
            body["message"].as_str(),
            "{name}"
        );
        assert_eq!(status.code, Some(r.status), "{name}");
    }
    let reasons: Vec<_> = names
        .iter()
        .map(|n| {
            let body: Value = serde_json::from_slice(&recorded(n).body).unwrap();
            body["reason"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "NotFound",
            "Forbidden",
            "Forbidden",
            "Invalid",
            "BadRequest",
            "Expired"
        ]
    );
    api.mock.verify().await;
}

#[tokio::test]
async fn a_500_with_an_html_body_falls_back_to_its_text() {
    let (pki, api) = apiserver().await;
    Mock::given(method("GET"))
        .and(path("/version"))
        .respond_with(ResponseTemplate::new(500).set_body_raw(
            "<html><body><h1>502 Bad Gateway from the load balancer</h1></body></html>",
            "text/html",
        ))
        .mount(&api.mock)
        .await;

    let err = get_version(&client(&cluster_config(&pki, &api)))
        .await
        .unwrap_err();

    let KubeError::Api { code, status } = &err else {
        panic!("expected KubeError::Api, got {err:?}");
    };
    assert_eq!(*code, 500);
    assert_eq!(status.reason, None);
    let message = status.message.as_deref().unwrap();
    assert!(
        message.contains("Bad Gateway from the load balancer"),
        "{message}"
    );
}

#[tokio::test]
async fn a_2xx_body_larger_than_max_body_is_a_decode_error() {
    let (pki, api) = apiserver().await;
    let items: Vec<Value> = (0..2000)
        .map(|i| json!({"metadata": {"name": format!("job-{i}")}}))
        .collect();
    let big = json!({"kind": "JobList", "items": items}).to_string();
    assert!(big.len() > 16 * 1024);
    Mock::given(method("GET"))
        .and(path("/apis/batch/v1/namespaces/default/jobs"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(big, "application/json"))
        .mount(&api.mock)
        .await;
    mount_version(&api.mock).await;
    let c = Client::new(
        &cluster_config(&pki, &api),
        ClientOptions {
            timeout: TIMEOUT,
            request_timeout: TIMEOUT,
            max_body: 16 * 1024,
        },
    )
    .unwrap();

    let err = c
        .get_json::<Value>("/apis/batch/v1/namespaces/default/jobs")
        .await
        .unwrap_err();

    let KubeError::Decode(message) = &err else {
        panic!("expected KubeError::Decode, got {err:?}");
    };
    assert!(message.contains("16384"), "{message}");
    // A body under the limit still decodes with the same client.
    get_version(&c).await.unwrap();
}

// ---------------------------------------------------------------------------------
// Plain HTTP and secrets
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn plain_http_never_sends_credentials() {
    let mock = MockServer::start().await;
    mount_version(&mock).await;
    let (pki, api) = apiserver().await;
    let mut config = cluster_config(&pki, &api);
    config.server = ServerUrl::parse(&mock.uri()).unwrap();
    assert!(config.server.as_str().starts_with("http://127.0.0.1:"));
    assert!(matches!(config.auth, AuthConfig::Token(_)));

    let c = client(&config);
    get_version(&c).await.unwrap();
    get_version(&c).await.unwrap();

    assert_eq!(authorizations(&mock).await, [None, None]);
    assert_eq!(c.auth_kind(), "anonymous");
}

#[tokio::test]
async fn debug_output_never_contains_the_token() {
    let (pki, api) = apiserver().await;
    mount_version(&api.mock).await;
    let config = cluster_config(&pki, &api);
    let c = client(&config);
    get_version(&c).await.unwrap();
    assert_eq!(authorizations(&api.mock).await, [Some(bearer(TOKEN))]);

    for printed in [
        format!("{c:?}"),
        format!("{c:#?}"),
        format!("{config:?}"),
        format!("{config:#?}"),
    ] {
        assert!(!printed.contains(TOKEN), "{printed}");
    }
    assert!(format!("{c:?}").contains(&api.url));
    assert!(format!("{config:?}").contains("redacted"));
}

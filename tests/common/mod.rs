//! Shared test helpers: a PKI made at test time (rcgen), TLS terminated in front of
//! wiremock, recorded apiserver answers from `fixtures/recorded/`, and an `AppState`
//! pointed at the mock. The helpers of the endpoint contract tests are in
//! [`contract`], re-exported here.
#![allow(dead_code)]

mod contract;

// Every test binary includes `common` whole, and not all of them use these.
#[allow(unused_imports)]
pub use contract::*;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use sparktest_k8s::cluster::{AuthConfig, ClusterConfig, ConfigSource, ServerUrl, TlsConfig};
use sparktest_k8s::kube::{Client, ClientOptions};
use sparktest_k8s::names::Namespace;
use sparktest_k8s::secret::Secret;
use sparktest_k8s::state::{AppState, Connection, LogLimits};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use wiremock::MockServer;

/// The token the tests authenticate with.
pub const TOKEN: &str = "test-token-abc123";

/// A certificate authority made for one test.
pub struct Pki {
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, both PEM.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for these names; IP addresses become IP SANs.
    pub fn server(&self, names: &[&str]) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        for name in names {
            params
                .subject_alt_names
                .push(match name.parse::<std::net::IpAddr>() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) => SanType::DnsName((*name).try_into().unwrap()),
                });
        }
        self.sign(params)
    }

    /// A client certificate with this common name (the apiserver's user name).
    pub fn client(&self, common_name: &str) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// wiremock behind a TLS terminator: what the client sees as the apiserver.
pub struct TlsMock {
    pub mock: MockServer,
    /// `https://127.0.0.1:PORT`
    pub url: String,
    pub addr: SocketAddr,
    /// The common names of the client certificates presented, in order.
    pub client_names: Arc<std::sync::Mutex<Vec<String>>>,
    /// TCP connections accepted so far.
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
    freeze: tokio::sync::watch::Sender<bool>,
}

impl TlsMock {
    /// Freezes the apiserver as SIGSTOP does: connections are still accepted (the
    /// kernel's backlog), but no handshake is made and no byte moves either way, on
    /// new and pooled connections alike, until [`TlsMock::thaw`].
    pub fn freeze(&self) {
        self.freeze.send_replace(true);
    }

    /// Lets everything that waited move on.
    pub fn thaw(&self) {
        self.freeze.send_replace(false);
    }
}

/// Waits while `frozen` says so.
async fn thawed(frozen: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = frozen.wait_for(|f| !f).await;
}

/// Copies `from` to `to` chunk by chunk, holding each chunk while frozen.
async fn pump<R, W>(mut from: R, mut to: W, mut frozen: tokio::sync::watch::Receiver<bool>)
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        thawed(&mut frozen).await;
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Starts wiremock and a TLS terminator in front of it with `leaf` as its certificate.
/// With `client_ca`, the terminator requires a client certificate signed by it.
pub async fn tls_mock(leaf: &Leaf, client_ca: Option<&Pki>) -> TlsMock {
    let mock = MockServer::start().await;
    let upstream = *mock.address();
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    use rustls::pki_types::pem::PemObject;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca.ca_pem.as_bytes()) {
                roots.add(c.unwrap()).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client_names = Arc::new(std::sync::Mutex::new(Vec::new()));
    let names = client_names.clone();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let accepted = connections.clone();
    let (freeze, frozen) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let names = names.clone();
            let mut frozen = frozen.clone();
            tokio::spawn(async move {
                thawed(&mut frozen).await;
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Some(cert) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                    names.lock().unwrap().push(common_name(cert.as_ref()));
                }
                let Ok(plain) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (tls_read, tls_write) = tokio::io::split(tls);
                let (plain_read, plain_write) = plain.into_split();
                tokio::join!(
                    pump(tls_read, plain_write, frozen.clone()),
                    pump(plain_read, tls_write, frozen),
                );
            });
        }
    });
    TlsMock {
        mock,
        url: format!("https://{addr}"),
        addr,
        client_names,
        connections,
        freeze,
    }
}

/// The subject CN of a DER certificate: the last CN (2.5.4.3) in it, since the
/// subject comes after the issuer.
fn common_name(der: &[u8]) -> String {
    let oid = [0x06, 0x03, 0x55, 0x04, 0x03];
    der.windows(oid.len())
        .rposition(|w| w == oid)
        .and_then(|i| {
            let len = *der.get(i + 6)? as usize;
            der.get(i + 7..i + 7 + len)
        })
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

/// A PKI, a server certificate for 127.0.0.1 and a TLS mock in front of wiremock.
pub async fn apiserver() -> (Pki, TlsMock) {
    let pki = Pki::new("test-apiserver-ca");
    let leaf = pki.server(&["127.0.0.1", "localhost"]);
    let mock = tls_mock(&leaf, None).await;
    (pki, mock)
}

/// A cluster config for the mock: token auth, trusting the test CA.
pub fn cluster_config(pki: &Pki, mock: &TlsMock) -> ClusterConfig {
    ClusterConfig {
        source: ConfigSource::Environment { variable: "TEST" },
        server: ServerUrl::parse(&mock.url).unwrap(),
        tls: TlsConfig {
            ca_pem: Some(pki.ca_pem.clone().into_bytes()),
            ..TlsConfig::default()
        },
        auth: AuthConfig::Token(Secret::new(TOKEN.to_string())),
        namespace: None,
        proxy_url: None,
    }
}

/// A client for a plain-HTTP loopback apiserver (as with `KUBERNETES_API_URL` and a
/// `kubectl proxy` sidecar): no TLS, and so no credentials.
pub fn plain_http_client(url: &str, timeout: Duration) -> Client {
    let config = ClusterConfig {
        source: ConfigSource::Environment {
            variable: "KUBERNETES_API_URL",
        },
        server: ServerUrl::parse(url).unwrap(),
        tls: TlsConfig::default(),
        auth: AuthConfig::None,
        namespace: None,
        proxy_url: None,
    };
    client_for(&config, timeout)
}

pub fn client_for(config: &ClusterConfig, timeout: Duration) -> Client {
    Client::new(
        config,
        ClientOptions {
            timeout,
            request_timeout: timeout,
            ..ClientOptions::default()
        },
    )
    .unwrap()
}

/// The service's state pointed at the mock (namespace `default`), its client built
/// with `options`.
pub fn state_with_client_options(pki: &Pki, mock: &TlsMock, options: ClientOptions) -> AppState {
    let config = cluster_config(pki, mock);
    let client = Client::new(&config, options).unwrap();
    let limits = LogLimits {
        max_lines: 1000,
        max_bytes: 10 * 1024 * 1024,
    };
    state_around(
        client,
        &config,
        limits,
        sparktest_k8s::state::Policy::default(),
    )
}

/// The service's state, pointed at the mock, namespace `default`.
pub fn state_for(pki: &Pki, mock: &TlsMock) -> AppState {
    state_with_limits(
        pki,
        mock,
        LogLimits {
            max_lines: 1000,
            max_bytes: 10 * 1024 * 1024,
        },
    )
}

pub fn state_with_limits(pki: &Pki, mock: &TlsMock, limits: LogLimits) -> AppState {
    mock_state(pki, mock, limits, sparktest_k8s::state::Policy::default())
}

/// The service's state pointed at the mock, namespace `default`.
fn mock_state(
    pki: &Pki,
    mock: &TlsMock,
    limits: LogLimits,
    policy: sparktest_k8s::state::Policy,
) -> AppState {
    let config = cluster_config(pki, mock);
    let client = client_for(&config, Duration::from_secs(10));
    state_around(client, &config, limits, policy)
}

fn state_around(
    client: Client,
    config: &ClusterConfig,
    limits: LogLimits,
    policy: sparktest_k8s::state::Policy,
) -> AppState {
    AppState::with_policy(
        Connection {
            client: Ok(client),
            source: Some(config.source.clone()),
        },
        "default".parse::<Namespace>().unwrap(),
        limits,
        sparktest_k8s::state::StreamLimits::default(),
        policy,
    )
}

/// The directory of the recorded apiserver answers copied into the repository.
pub fn recorded_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/recorded")
}

/// A recorded answer: status, content type and body bytes of `NN_name`.
pub struct Recorded {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    pub path: String,
    pub method: String,
}

pub fn recorded(name: &str) -> Recorded {
    let dir = recorded_dir();
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.meta.json"))).unwrap())
            .unwrap();
    let body_file = meta["body_file"].as_str().unwrap();
    Recorded {
        status: meta["status"].as_u64().unwrap() as u16,
        content_type: meta["content_type"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body: std::fs::read(dir.join(body_file)).unwrap(),
        path: meta["path"].as_str().unwrap().to_string(),
        method: meta["method"].as_str().unwrap().to_string(),
    }
}

/// A wiremock response replaying a recorded answer exactly (status, type, bytes).
pub fn replay(name: &str) -> wiremock::ResponseTemplate {
    let r = recorded(name);
    let t = wiremock::ResponseTemplate::new(r.status);
    if r.body.is_empty() && r.content_type.is_empty() {
        return t;
    }
    t.set_body_raw(r.body, &r.content_type)
}

/// Sends a request through the whole filter tree and returns status and JSON body.
pub async fn call(state: &AppState, method: &str, path: &str) -> (u16, serde_json::Value) {
    let request = warp::test::request().method(method).path(path);
    reply_json(state, request, method, path).await
}

/// Sends `request` through the whole filter tree; its answer must be JSON.
async fn reply_json(
    state: &AppState,
    request: warp::test::RequestBuilder,
    method: &str,
    path: &str,
) -> (u16, serde_json::Value) {
    let response = request
        .reply(&sparktest_k8s::api::routes(state.clone()))
        .await;
    let status = response.status().as_u16();
    let body = serde_json::from_slice(response.body()).unwrap_or_else(|e| {
        panic!(
            "{method} {path}: body is not JSON ({e}): {:?}",
            response.body()
        )
    });
    (status, body)
}

/// The service's state pointed at the mock (namespace `default`, the log limits of
/// [`state_for`]) with the given policy (allowed namespaces, run defaults, templates).
pub fn state_with_policy(
    pki: &Pki,
    mock: &TlsMock,
    policy: sparktest_k8s::state::Policy,
) -> AppState {
    let limits = LogLimits {
        max_lines: 1000,
        max_bytes: 10 * 1024 * 1024,
    };
    mock_state(pki, mock, limits, policy)
}

/// Sends a request with a JSON body (`Content-Type: application/json`) through the
/// whole filter tree and returns status and JSON body.
pub async fn call_json(
    state: &AppState,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let request = warp::test::request()
        .method(method)
        .path(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap());
    reply_json(state, request, method, path).await
}

/// A state without a cluster (job endpoints answer 503 once past validation and
/// authentication) and with the given policy.
pub fn state_without_cluster(policy: sparktest_k8s::state::Policy) -> AppState {
    AppState::with_policy(
        Connection {
            client: Err("no Kubernetes cluster configured in this test".into()),
            source: None,
        },
        "default".parse().unwrap(),
        LogLimits {
            max_lines: 10,
            max_bytes: 1024,
        },
        sparktest_k8s::state::StreamLimits::default(),
        policy,
    )
}

/// Matches the whole query string exactly (order included), or its absence (`None`).
pub struct Query(pub Option<String>);

impl Query {
    /// No query string at all.
    pub fn none() -> Self {
        Self(None)
    }

    /// Exactly this query string.
    pub fn exact(query: &str) -> Self {
        Self(Some(query.to_string()))
    }
}

impl wiremock::Match for Query {
    fn matches(&self, request: &wiremock::Request) -> bool {
        request.url.query() == self.0.as_deref()
    }
}

/// The service's own `Authorization` header, as the apiserver must receive it.
pub fn bearer() -> wiremock::matchers::HeaderExactMatcher {
    wiremock::matchers::header("authorization", format!("Bearer {TOKEN}").as_str())
}

/// Mounts `GET job` (replaying `job_fixture`, namespace `default`) and, when given,
/// `GET pods` selected by the Job's own `spec.selector` (replaying `pods_fixture`).
/// Returns the job's controller-uid.
pub async fn mount_job(mock: &MockServer, job_fixture: &str, pods_fixture: Option<&str>) -> String {
    use wiremock::matchers::{method, path};
    let job: serde_json::Value = serde_json::from_slice(&recorded(job_fixture).body).unwrap();
    let name = job["metadata"]["name"].as_str().unwrap().to_string();
    let uid = job["spec"]["selector"]["matchLabels"]["controller-uid"]
        .as_str()
        .unwrap()
        .to_string();
    wiremock::Mock::given(method("GET"))
        .and(path(format!(
            "/apis/batch/v1/namespaces/default/jobs/{name}"
        )))
        .and(Query::none())
        .and(bearer())
        .respond_with(replay(job_fixture))
        .mount(mock)
        .await;
    if let Some(pods) = pods_fixture {
        wiremock::Mock::given(method("GET"))
            .and(path("/api/v1/namespaces/default/pods"))
            .and(Query::exact(&format!(
                "labelSelector=controller-uid%3D{uid}"
            )))
            .and(bearer())
            .respond_with(replay(pods))
            .mount(mock)
            .await;
    }
    uid
}

/// Mounts a pod's log answer (namespace `default`) for an exact query, expected once.
pub async fn mount_log(mock: &MockServer, pod: &str, query: &str, fixture: &str) {
    use wiremock::matchers::{method, path};
    wiremock::Mock::given(method("GET"))
        .and(path(format!("/api/v1/namespaces/default/pods/{pod}/log")))
        .and(Query::exact(query))
        .and(bearer())
        .respond_with(replay(fixture))
        .expect(1)
        .mount(mock)
        .await;
}

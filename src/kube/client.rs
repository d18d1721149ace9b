//! One pooled HTTPS client for the process: builds requests to the apiserver, adds
//! credentials, bounds every call by a timeout, retries 401 (fresh credentials) and 429
//! (`Retry-After`), turns non-2xx answers into [`KubeError`]s, replaces connections
//! that stop answering, and records every attempt in the apiserver metrics.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::de::DeserializeOwned;

use super::KubeError;
use super::auth::{Auth, Credentials};
use super::tls;
use crate::cluster::{AuthConfig, ClusterConfig, Identity, ServerUrl, TlsConfig};

/// Error bodies are read up to this size; a Status is a few hundred bytes.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// How often a 429 is retried before giving up.
const MAX_429_RETRIES: u32 = 3;
/// The longest `Retry-After` honoured; longer ones are capped.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

type Http = HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Tunables of the client, given as values so tests can point it at a mock.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Bounds the long reads: a log body as it streams in (`TIMEOUT_SECONDS`).
    pub timeout: Duration,
    /// Bounds every request until its answer's headers, and whole JSON answers with
    /// their body (`REQUEST_TIMEOUT_SECONDS`): what an interactive caller waits at most
    /// for a hung apiserver before a typed 504.
    pub request_timeout: Duration,
    /// The largest 2xx body read whole (a JobList or PodList).
    pub max_body: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(30),
            max_body: 32 * 1024 * 1024,
        }
    }
}

/// An HTTP/2 connection is pinged after this long without a frame from the apiserver,
/// and dropped when the ping is not answered within [`PING_TIMEOUT`]: client-go's
/// `ReadIdleTimeout` (30 s) and `PingTimeout` (15 s), so that a connection to a
/// black-holed or frozen apiserver is replaced instead of reused.
const PING_INTERVAL: Duration = Duration::from_secs(30);
const PING_TIMEOUT: Duration = Duration::from_secs(15);

/// A Kubernetes client for one apiserver. Cheap to clone: clones share the connection
/// pool and credentials.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    server: ServerUrl,
    tls: TlsConfig,
    auth: Auth,
    auth_kind: &'static str,
    options: ClientOptions,
    /// The pool, rebuilt only when an exec plugin hands out a new client certificate.
    transport: RwLock<Transport>,
}

#[derive(Clone)]
struct Transport {
    identity: Option<Identity>,
    http: Http,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.server.as_str())
            .field("auth", &self.inner.auth_kind)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds the client (TLS configuration, connection pool) once for the process.
    pub fn new(config: &ClusterConfig, options: ClientOptions) -> Result<Self, KubeError> {
        let identity_present = config.tls.identity.is_some();
        // Credentials never travel over plain HTTP, as kubectl refuses too.
        let auth_config = if config.server.is_https() {
            config.auth.clone()
        } else {
            if config.auth != AuthConfig::None {
                tracing::warn!(server = %config.server, "plain http: credentials are not sent");
            }
            AuthConfig::None
        };
        let transport = Transport {
            identity: None,
            http: build_http(&config.server, &config.tls, None, options.request_timeout)?,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                server: config.server.clone(),
                tls: config.tls.clone(),
                auth: Auth::new(&auth_config)?,
                auth_kind: auth_config.kind(identity_present),
                options,
                transport: RwLock::new(transport),
            }),
        })
    }

    /// The kind of authentication in use (never the secret).
    pub fn auth_kind(&self) -> &'static str {
        self.inner.auth_kind
    }

    /// The bound of long reads (a log body).
    pub fn timeout(&self) -> Duration {
        self.inner.options.timeout
    }

    /// The bound of a request until its answer (see [`ClientOptions::request_timeout`]).
    pub fn request_timeout(&self) -> Duration {
        self.inner.options.request_timeout
    }

    /// Sends a request and returns the 2xx response with its body unread (for streams).
    /// The request timeout bounds the wait for the response headers; an abandoned
    /// HTTP/1 request takes its connection with it, so the next one opens a fresh one.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<(Bytes, &'static str)>,
    ) -> Result<Response<Incoming>, KubeError> {
        let timeout = self.inner.options.request_timeout;
        tokio::time::timeout(
            timeout,
            self.send_with_retries(method, path_and_query, body),
        )
        .await
        .map_err(|_| KubeError::Timeout(timeout))?
    }

    /// Sends a request and decodes the whole 2xx body as JSON; the request timeout
    /// bounds it all.
    pub async fn request_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<(Bytes, &'static str)>,
    ) -> Result<T, KubeError> {
        let timeout = self.inner.options.request_timeout;
        tokio::time::timeout(timeout, async {
            let response = self.send_with_retries(method, path_and_query, body).await?;
            let bytes = read_limited(response.into_body(), self.inner.options.max_body).await?;
            serde_json::from_slice(&bytes).map_err(|e| KubeError::Decode(e.to_string()))
        })
        .await
        .map_err(|_| KubeError::Timeout(timeout))?
    }

    /// `GET` a JSON object.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> Result<T, KubeError> {
        self.request_json(Method::GET, path_and_query, None).await
    }

    async fn send_with_retries(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<(Bytes, &'static str)>,
    ) -> Result<Response<Incoming>, KubeError> {
        let mut retried_401 = false;
        let mut retries_429 = 0;
        loop {
            let credentials = self
                .inner
                .auth
                .credentials(self.inner.options.request_timeout)
                .await?;
            let http = self.transport_for(credentials.identity.as_ref())?;
            let request = self.build(&method, path_and_query, body.clone(), &credentials)?;
            let call = crate::metrics::metrics().apiserver_start(&method, path_and_query);
            let response = match http.request(request).await {
                Ok(response) => response,
                Err(e) => {
                    call.failed();
                    return Err(self.classify(&e));
                }
            };
            let status = response.status();
            call.answered(status);
            if status.is_success() {
                return Ok(response);
            }
            if status == StatusCode::UNAUTHORIZED && !retried_401 && self.inner.auth.invalidate() {
                tracing::info!("apiserver answered 401: retrying once with fresh credentials");
                retried_401 = true;
                continue;
            }
            if status == StatusCode::TOO_MANY_REQUESTS && retries_429 < MAX_429_RETRIES {
                let wait = retry_after(&response).unwrap_or(Duration::from_secs(1 << retries_429));
                retries_429 += 1;
                tracing::warn!(
                    ?wait,
                    attempt = retries_429,
                    "apiserver answered 429: backing off"
                );
                tokio::time::sleep(wait.min(MAX_RETRY_AFTER)).await;
                continue;
            }
            let code = status.as_u16();
            let bytes = read_limited(response.into_body(), MAX_ERROR_BODY)
                .await
                .unwrap_or_default();
            return Err(KubeError::from_response(code, &bytes));
        }
    }

    fn build(
        &self,
        method: &Method,
        path_and_query: &str,
        body: Option<(Bytes, &'static str)>,
        credentials: &Credentials,
    ) -> Result<Request<Full<Bytes>>, KubeError> {
        let uri = format!("{}{path_and_query}", self.inner.server.as_str());
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("sparktest-k8s/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(authorization) = &credentials.authorization {
            builder = builder.header(header::AUTHORIZATION, authorization.clone());
        }
        let body = match body {
            Some((bytes, content_type)) => {
                builder = builder.header(header::CONTENT_TYPE, content_type);
                Full::new(bytes)
            }
            None => Full::new(Bytes::new()),
        };
        builder
            .body(body)
            .map_err(|e| KubeError::Decode(format!("cannot build request: {e}")))
    }

    /// The pool for this identity: the configured one, or a new pool when an exec plugin
    /// hands out a different client certificate.
    fn transport_for(&self, identity: Option<&Identity>) -> Result<Http, KubeError> {
        {
            let current = self
                .inner
                .transport
                .read()
                .unwrap_or_else(|e| e.into_inner());
            if current.identity.as_ref() == identity {
                return Ok(current.http.clone());
            }
        }
        let http = build_http(
            &self.inner.server,
            &self.inner.tls,
            identity,
            self.inner.options.request_timeout,
        )?;
        *self
            .inner
            .transport
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Transport {
            identity: identity.cloned(),
            http: http.clone(),
        };
        Ok(http)
    }

    fn classify(&self, error: &hyper_util::client::legacy::Error) -> KubeError {
        let server = self.inner.server.to_string();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        let mut messages = Vec::new();
        let mut tls_error = None;
        while let Some(e) = source {
            messages.push(e.to_string());
            if let Some(r) = rustls_error(e) {
                tls_error = Some(r.to_string());
            }
            source = e.source();
        }
        messages.dedup();
        if let Some(message) = tls_error {
            return KubeError::Tls { server, message };
        }
        KubeError::Connect {
            server,
            message: messages.last().cloned().unwrap_or_default(),
        }
    }
}

fn build_http(
    server: &ServerUrl,
    tls_config: &TlsConfig,
    identity: Option<&Identity>,
    timeout: Duration,
) -> Result<Http, KubeError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(timeout.min(Duration::from_secs(30))));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let connector = if server.is_https() {
        let config = tls::client_config(tls_config, identity)?;
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only();
        let builder = match &tls_config.server_name {
            Some(name) => {
                let name = rustls::pki_types::ServerName::try_from(name.clone()).map_err(|e| {
                    KubeError::TlsConfig(format!(
                        "tls-server-name {name:?} is not a valid name: {e}"
                    ))
                })?;
                builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
            }
            None => builder,
        };
        builder.enable_http1().enable_http2().wrap_connector(http)
    } else {
        // Plain HTTP to a loopback proxy; the TLS config is never used.
        let config = rustls::ClientConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| KubeError::TlsConfig(e.to_string()))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http)
    };
    // Over HTTP/1.1 every concurrent request holds its own connection. Idle ones are
    // kept (up to 256) so a busy frontend does not pay a TLS handshake per request;
    // each connection's read buffer stays small (bodies stream through it in pieces).
    Ok(HyperClient::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .http1_max_buf_size(64 * 1024)
        .http2_keep_alive_interval(PING_INTERVAL)
        .http2_keep_alive_timeout(PING_TIMEOUT)
        .http2_keep_alive_while_idle(true)
        .build(connector))
}

/// The rustls error inside an error chain. hyper-util wraps the TLS error in an
/// `io::Error` inside another `io::Error`, and `io::Error::source()` skips the error it
/// wraps, so nested `io::Error`s are unwrapped by hand.
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(r) = e.downcast_ref::<rustls::Error>() {
        return Some(r);
    }
    rustls_error(e.downcast_ref::<std::io::Error>()?.get_ref()?)
}

/// Reads a body whole, failing past `limit` bytes.
pub async fn read_limited(body: Incoming, limit: usize) -> Result<Bytes, KubeError> {
    Limited::new(body, limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| {
            KubeError::Decode(format!(
                "reading the body failed (limit {limit} bytes): {e}"
            ))
        })
}

fn retry_after(response: &Response<Incoming>) -> Option<Duration> {
    response
        .headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

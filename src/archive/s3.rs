//! The archive in an S3-compatible bucket (AWS S3, MinIO, Garage, Ceph RGW, GCS in
//! interoperability mode): whole-object PUT (from memory, or streamed from a file), GET,
//! ListObjectsV2 and DELETE, signed with AWS Signature Version 4 ([`super::sigv4`]) and
//! sent with hyper over rustls (the process's ring provider). No AWS SDK.
//!
//! Configuration follows the AWS conventions: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (else `AWS_DEFAULT_REGION`,
//! else `us-east-1`), `AWS_ENDPOINT_URL_S3` (else `AWS_ENDPOINT_URL`) and `AWS_CA_BUNDLE`.
//! With an endpoint, requests are path-style (`{endpoint}/{bucket}/{key}`, what MinIO and
//! Garage expect); without one they go to AWS, virtual-hosted
//! (`https://{bucket}.s3.{region}.amazonaws.com/{key}`), or path-style for a bucket name
//! that is not a DNS label (one with a `.` would not match the wildcard certificate).
//!
//! Every payload is signed (`x-amz-content-sha256` is the body's SHA-256, never
//! `UNSIGNED-PAYLOAD`), so the store checks what it received, over plain HTTP too. Every
//! request is bounded in time. Errors name the operation, bucket, key, status and S3
//! error code, never a header or a credential.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::AsyncReadExt;

use super::sigv4;
use crate::secret::Secret;

const SERVICE: &str = "s3";
const DEFAULT_REGION: &str = "us-east-1";
/// Error answers are read up to this size (an S3 error document is a few hundred bytes).
const MAX_ERROR_BODY: usize = 64 * 1024;
/// A ListObjectsV2 page of 1000 keys of 1 KiB is about 1.5 MB of XML.
const MAX_LIST_PAGE: usize = 16 * 1024 * 1024;
/// What a PUT from a file reads and sends at a time.
const CHUNK: usize = 256 * 1024;
/// A PUT from a file is given one second more per this many bytes.
const MIN_UPLOAD_RATE: u64 = 1024 * 1024;
/// Idle connections are dropped before S3 closes them (it does after about 20 s).
const POOL_IDLE: Duration = Duration::from_secs(15);
/// Where the system's CA bundle is looked for, after `SSL_CERT_FILE` (as kube::tls).
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Where and how to reach the bucket. `Debug` never prints the secret key or the
/// session token (the access key id is not a secret: it is in every request).
#[derive(Clone, Debug)]
pub struct S3Config {
    pub bucket: String,
    /// The root of the archive in the bucket, without leading or trailing `/`; empty for
    /// the bucket's root. Keys given to the store are relative to it.
    pub prefix: String,
    pub region: String,
    /// `http[s]://host[:port]` of an S3-compatible service (path-style addressing);
    /// `None` for AWS.
    pub endpoint: Option<String>,
    pub access_key: String,
    pub secret_key: Secret<String>,
    pub session_token: Option<Secret<String>>,
    /// A PEM file of roots trusted for the endpoint besides the system's.
    pub ca_bundle: Option<PathBuf>,
}

impl S3Config {
    /// `s3://BUCKET[/PREFIX]` and the AWS variables, read through `var` (so tests never
    /// set process env).
    pub fn parse(location: &str, var: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let var = |name: &str| {
            var(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let rest = location.strip_prefix("s3://").ok_or_else(|| {
            format!("{location:?} is not an S3 location: expected s3://BUCKET[/PREFIX]")
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket(bucket)?;
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() && !valid_key(prefix) {
            return Err(format!(
                "the prefix of {location:?} has an empty, `.` or `..` segment or a control character"
            ));
        }
        let access_key = var("AWS_ACCESS_KEY_ID")
            .ok_or("AWS_ACCESS_KEY_ID is not set: the S3 archive needs credentials")?;
        if !access_key
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b',')
        {
            return Err("AWS_ACCESS_KEY_ID holds characters an access key id cannot have".into());
        }
        let secret_key = var("AWS_SECRET_ACCESS_KEY")
            .ok_or("AWS_SECRET_ACCESS_KEY is not set: the S3 archive needs credentials")?;
        let session_token = var("AWS_SESSION_TOKEN");
        if let Some(token) = &session_token
            && !token.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err("AWS_SESSION_TOKEN holds characters a header cannot carry".into());
        }
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        if !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!("AWS_REGION {region:?} is not a region name"));
        }
        let endpoint = var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL"));
        let config = Self {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            region,
            endpoint,
            access_key,
            secret_key: Secret::new(secret_key),
            session_token: session_token.map(Secret::new),
            ca_bundle: var("AWS_CA_BUNDLE").map(PathBuf::from),
        };
        Endpoint::of(&config)?;
        Ok(config)
    }
}

/// Bucket names S3 and its look-alikes accept (AWS's rules, with `_` and capitals
/// tolerated for older S3-compatible stores, which are then reached path-style).
fn check_bucket(bucket: &str) -> Result<(), String> {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && edge_ok(bucket.chars().next())
        && edge_ok(bucket.chars().last());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{bucket:?} is not a bucket name (3 to 63 letters, digits, `.`, `-`)"
        ))
    }
}

/// A key (or prefix) the store writes: segments that are neither empty, `.` nor `..`,
/// no control character (a listing could not carry it in XML 1.0).
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key.chars().any(char::is_control)
        && key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// What the store failed at.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer, answered 5xx or 429, or the network failed: retry later.
    #[error("archive store unavailable: {0}")]
    Unavailable(String),
    /// The store refused (4xx other than 404/429): configuration or permissions.
    #[error("archive store refused: {0}")]
    Refused(String),
}

/// Tunables, given as values so tests can shorten them.
#[derive(Debug, Clone)]
pub struct S3Options {
    /// Bounds every request, from sending to the end of its answer's body; a PUT from a
    /// file gets one more second per MiB.
    pub request_timeout: Duration,
    /// Bounds opening a connection.
    pub connect_timeout: Duration,
    /// Keys asked for per ListObjectsV2 page (`max-keys`; S3 gives at most 1000).
    pub page_size: u32,
}

impl Default for S3Options {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            page_size: 1000,
        }
    }
}

/// Where requests go.
#[derive(Debug, Clone)]
struct Endpoint {
    https: bool,
    /// `host[:port]`, the port only when not the scheme's: the URI's authority and the
    /// `Host` header, as signed.
    authority: String,
    /// `/{bucket}/{key}` rather than `{bucket}.host/{key}`.
    path_style: bool,
}

impl Endpoint {
    fn of(config: &S3Config) -> Result<Self, String> {
        let Some(url) = &config.endpoint else {
            let domain = if config.region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            let dns_label = config
                .bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            return Ok(if dns_label {
                Self {
                    https: true,
                    authority: format!("{}.s3.{}.{domain}", config.bucket, config.region),
                    path_style: false,
                }
            } else {
                Self {
                    https: true,
                    authority: format!("s3.{}.{domain}", config.region),
                    path_style: true,
                }
            });
        };
        // Checked before the URL is ever printed: it would carry a password.
        if url.contains('@') {
            return Err("the S3 endpoint must not carry a user name or password".into());
        }
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("the S3 endpoint {url:?} is not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(format!(
                    "the S3 endpoint {url:?} must start with https:// or http://"
                ));
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("the S3 endpoint {url:?} has no host"))?;
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(format!(
                "the S3 endpoint {url:?} must be scheme://host[:port], without a path"
            ));
        }
        let default_port = if https { 443 } else { 80 };
        let authority = match authority.port_u16() {
            Some(port) if port != default_port => format!("{}:{port}", authority.host()),
            _ => authority.host().to_string(),
        };
        Ok(Self {
            https,
            authority,
            path_style: true,
        })
    }

    fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    fn is_loopback(&self) -> bool {
        let host =
            self.authority
                .rsplit_once(':')
                .map_or(self.authority.as_str(), |(host, port)| {
                    if port.bytes().all(|b| b.is_ascii_digit()) {
                        host
                    } else {
                        &self.authority
                    }
                });
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

type Body = UnsyncBoxBody<Bytes, std::io::Error>;
type Http = HyperClient<HttpsConnector<HttpConnector>, Body>;

/// An S3 bucket (under a prefix) holding the archive. Cheap to clone: clones share the
/// connection pool.
#[derive(Clone)]
pub struct S3Store {
    inner: Arc<Inner>,
}

struct Inner {
    config: S3Config,
    options: S3Options,
    endpoint: Endpoint,
    http: Http,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("location", &self.describe())
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// Builds the store (TLS configuration, connection pool); nothing is sent yet.
    pub fn new(config: S3Config) -> Result<Self, String> {
        Self::with_options(config, S3Options::default())
    }

    /// [`S3Store::new`] with other timeouts or page size.
    pub fn with_options(config: S3Config, options: S3Options) -> Result<Self, String> {
        let endpoint = Endpoint::of(&config)?;
        let http = build_http(&endpoint, config.ca_bundle.as_deref(), &options)?;
        let store = Self {
            inner: Arc::new(Inner {
                config,
                options,
                endpoint,
                http,
            }),
        };
        if !store.inner.endpoint.https && !store.inner.endpoint.is_loopback() {
            tracing::warn!(store = %store.describe(), "plain http: archived logs travel unencrypted");
        }
        Ok(store)
    }

    /// Where the archive is, for logs (never a credential).
    pub fn describe(&self) -> String {
        let config = &self.inner.config;
        let endpoint = &self.inner.endpoint;
        let root = if config.prefix.is_empty() {
            String::new()
        } else {
            format!("/{}", config.prefix)
        };
        format!(
            "s3://{}{root} at {}://{} ({})",
            config.bucket,
            endpoint.scheme(),
            endpoint.authority,
            if endpoint.path_style {
                "path-style"
            } else {
                "virtual-hosted"
            }
        )
    }

    /// Whole-object PUT of bytes (small objects).
    pub async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        let (path, what) = self.object("PUT", key)?;
        let sha256 = sigv4::sha256_hex(&body);
        let len = body.len() as u64;
        let body = Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync();
        self.bounded(&what, self.inner.options.request_timeout, async {
            let response = self
                .send(&what, Method::PUT, &path, &[], &sha256, body, Some(len))
                .await?;
            self.drain(&what, response).await
        })
        .await
    }

    /// Whole-object PUT streamed from a file of `len` bytes whose SHA-256 is
    /// `sha256_hex`, never holding it in memory. The store checks the hash: a file that
    /// changed since it was hashed is refused, not stored.
    pub async fn put_file(
        &self,
        key: &str,
        path: &Path,
        len: u64,
        sha256_hex: &str,
    ) -> Result<(), StoreError> {
        let (object, what) = self.object("PUT", key)?;
        if sha256_hex.len() != 64
            || !sha256_hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(StoreError::Refused(format!(
                "{what}: {sha256_hex:?} is not a lower-case hex SHA-256"
            )));
        }
        let file = tokio::fs::File::open(path).await.map_err(|e| {
            StoreError::Unavailable(format!("{what}: opening {}: {e}", path.display()))
        })?;
        let actual = file
            .metadata()
            .await
            .map_err(|e| StoreError::Unavailable(format!("{what}: {}: {e}", path.display())))?
            .len();
        if actual != len {
            return Err(StoreError::Refused(format!(
                "{what}: {} has {actual} bytes, not the {len} given",
                path.display()
            )));
        }
        let timeout =
            self.inner.options.request_timeout + Duration::from_secs(len / MIN_UPLOAD_RATE);
        self.bounded(&what, timeout, async {
            let response = self
                .send(
                    &what,
                    Method::PUT,
                    &object,
                    &[],
                    sha256_hex,
                    file_body(file, len),
                    Some(len),
                )
                .await?;
            self.drain(&what, response).await
        })
        .await
    }

    /// GET the whole object (refused past `max` bytes); `Ok(None)` on 404 NoSuchKey.
    pub async fn get(&self, key: &str, max: u64) -> Result<Option<Bytes>, StoreError> {
        let (path, what) = self.object("GET", key)?;
        self.bounded(&what, self.inner.options.request_timeout, async {
            let response = self
                .send(
                    &what,
                    Method::GET,
                    &path,
                    &[],
                    sigv4::EMPTY_SHA256,
                    empty(),
                    None,
                )
                .await?;
            if response.status() == StatusCode::NOT_FOUND {
                let (code, error) = self.failure(&what, response).await;
                return if code == "NoSuchKey" {
                    Ok(None)
                } else {
                    Err(error)
                };
            }
            let response = self.success(&what, response).await?;
            let declared = response
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(declared) = declared
                && declared > max
            {
                return Err(StoreError::Refused(format!(
                    "{what}: the object has {declared} bytes, more than the {max} allowed"
                )));
            }
            let limit = usize::try_from(max).unwrap_or(usize::MAX);
            match read_body(response.into_body(), limit).await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(ReadError::TooLarge) => Err(StoreError::Refused(format!(
                    "{what}: the object is larger than the {max} bytes allowed"
                ))),
                Err(ReadError::Failed(e)) => Err(StoreError::Unavailable(format!(
                    "{what}: reading the object: {e}"
                ))),
            }
        })
        .await
    }

    /// Every key under `prefix` (relative to the store's prefix, as the keys returned),
    /// with ListObjectsV2, following continuation tokens. Each page is one bounded
    /// request.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let root = self.root();
        let full_prefix = format!("{root}{prefix}");
        let what = format!("LIST s3://{}/{full_prefix}", self.inner.config.bucket);
        let path = self.bucket_path();
        let page_size = self.inner.options.page_size.clamp(1, 1000).to_string();
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![
                ("list-type", "2"),
                ("prefix", full_prefix.as_str()),
                ("max-keys", page_size.as_str()),
            ];
            if let Some(token) = &token {
                query.push(("continuation-token", token.as_str()));
            }
            let xml = self
                .bounded(&what, self.inner.options.request_timeout, async {
                    let response = self
                        .send(
                            &what,
                            Method::GET,
                            &path,
                            &query,
                            sigv4::EMPTY_SHA256,
                            empty(),
                            None,
                        )
                        .await?;
                    let response = self.success(&what, response).await?;
                    match read_body(response.into_body(), MAX_LIST_PAGE).await {
                        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
                        Err(ReadError::TooLarge) => Err(StoreError::Refused(format!(
                            "{what}: a listing page is larger than {MAX_LIST_PAGE} bytes"
                        ))),
                        Err(ReadError::Failed(e)) => Err(StoreError::Unavailable(format!(
                            "{what}: reading the listing: {e}"
                        ))),
                    }
                })
                .await?;
            let page = parse_list_page(&xml);
            keys.extend(
                page.keys
                    .into_iter()
                    .filter_map(|key| key.strip_prefix(&root).map(str::to_string)),
            );
            if !page.truncated {
                return Ok(keys);
            }
            match page.next_token {
                Some(next) if token.as_deref() != Some(next.as_str()) => token = Some(next),
                _ => {
                    return Err(StoreError::Refused(format!(
                        "{what}: the listing is truncated but gives no new continuation token"
                    )));
                }
            }
        }
    }

    /// DELETE an object (for retention pruning); deleting a missing object succeeds.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let (path, what) = self.object("DELETE", key)?;
        self.bounded(&what, self.inner.options.request_timeout, async {
            let response = self
                .send(
                    &what,
                    Method::DELETE,
                    &path,
                    &[],
                    sigv4::EMPTY_SHA256,
                    empty(),
                    None,
                )
                .await?;
            if response.status() == StatusCode::NOT_FOUND {
                let (code, error) = self.failure(&what, response).await;
                return if code == "NoSuchKey" {
                    Ok(())
                } else {
                    Err(error)
                };
            }
            self.drain(&what, response).await
        })
        .await
    }

    /// `prefix/`, or nothing for the bucket's root.
    fn root(&self) -> String {
        let prefix = &self.inner.config.prefix;
        if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        }
    }

    /// The encoded path of an object and a description of the call for errors.
    fn object(&self, method: &str, key: &str) -> Result<(String, String), StoreError> {
        let full = format!("{}{key}", self.root());
        let what = format!("{method} s3://{}/{full}", self.inner.config.bucket);
        if !valid_key(key) {
            return Err(StoreError::Refused(format!(
                "{what}: invalid archive key {key:?}"
            )));
        }
        let path = if self.inner.endpoint.path_style {
            sigv4::encode_path(&format!("/{}/{full}", self.inner.config.bucket))
        } else {
            sigv4::encode_path(&format!("/{full}"))
        };
        Ok((path, what))
    }

    fn bucket_path(&self) -> String {
        if self.inner.endpoint.path_style {
            sigv4::encode_path(&format!("/{}", self.inner.config.bucket))
        } else {
            "/".to_string()
        }
    }

    async fn bounded<T>(
        &self,
        what: &str,
        limit: Duration,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "{what}: no answer within {limit:?}"
            )))
        })
    }

    /// Signs and sends one request; returns the answer whatever its status.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        what: &str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        payload_sha256: &str,
        body: Body,
        content_length: Option<u64>,
    ) -> Result<Response<Incoming>, StoreError> {
        let config = &self.inner.config;
        let endpoint = &self.inner.endpoint;
        let date = sigv4::amz_date(SystemTime::now());
        let mut signed: Vec<(&'static str, &str)> = vec![
            ("host", endpoint.authority.as_str()),
            ("x-amz-content-sha256", payload_sha256),
            ("x-amz-date", date.as_str()),
        ];
        if let Some(token) = &config.session_token {
            signed.push(("x-amz-security-token", token.expose().as_str()));
        }
        let signature = sigv4::sign(
            &sigv4::Request {
                method: method.as_str(),
                path,
                query,
                headers: &signed,
                payload_sha256,
            },
            &sigv4::Credentials {
                access_key: &config.access_key,
                secret_key: config.secret_key.expose(),
            },
            &sigv4::Scope {
                date_time: &date,
                region: &config.region,
                service: SERVICE,
            },
        );
        let query = sigv4::canonical_query(query);
        let uri = format!(
            "{}://{}{path}{}{query}",
            endpoint.scheme(),
            endpoint.authority,
            if query.is_empty() { "" } else { "?" }
        );
        let refused = |what_part: &str| {
            StoreError::Refused(format!("{what}: cannot build the request ({what_part})"))
        };
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .body(body)
            .map_err(|_| refused("URI"))?;
        let headers = request.headers_mut();
        for (name, value) in signed {
            let mut value = HeaderValue::from_str(value).map_err(|_| refused(name))?;
            value.set_sensitive(name == "x-amz-security-token");
            headers.insert(name, value);
        }
        let mut authorization = HeaderValue::from_str(&signature.authorization)
            .map_err(|_| refused("authorization"))?;
        authorization.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, authorization);
        if let Some(len) = content_length {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("sparktest-k8s/", env!("CARGO_PKG_VERSION"))),
        );
        self.inner
            .http
            .request(request)
            .await
            .map_err(|e| StoreError::Unavailable(format!("{what}: {}", error_chain(&e))))
    }

    /// Reads a successful answer's (small) body, so that its connection goes back to the
    /// pool.
    async fn drain(&self, what: &str, response: Response<Incoming>) -> Result<(), StoreError> {
        let response = self.success(what, response).await?;
        let _ = read_body(response.into_body(), MAX_ERROR_BODY).await;
        Ok(())
    }

    /// The answer if it is a success, else its error.
    async fn success(
        &self,
        what: &str,
        response: Response<Incoming>,
    ) -> Result<Response<Incoming>, StoreError> {
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(self.failure(what, response).await.1)
        }
    }

    /// The S3 error code of a failed answer and the error it makes.
    async fn failure(&self, what: &str, response: Response<Incoming>) -> (String, StoreError) {
        let status = response.status();
        let body = read_body(response.into_body(), MAX_ERROR_BODY)
            .await
            .unwrap_or_default();
        let xml = String::from_utf8_lossy(&body);
        let code = elements(&xml, "Code")
            .first()
            .copied()
            .map(unescape)
            .unwrap_or_default();
        let message = elements(&xml, "Message")
            .first()
            .copied()
            .map(unescape)
            .unwrap_or_default();
        let error = classify(what, status, &code, &message);
        (code, self.scrub(error))
    }

    /// Defence in depth: a credential echoed by a store never reaches an error text.
    fn scrub(&self, error: StoreError) -> StoreError {
        let config = &self.inner.config;
        let secrets = [
            Some(config.secret_key.expose().as_str()),
            config.session_token.as_ref().map(|t| t.expose().as_str()),
        ];
        let clean = |mut text: String| {
            for secret in secrets.iter().flatten().filter(|s| !s.is_empty()) {
                text = text.replace(secret, "<redacted>");
            }
            text
        };
        match error {
            StoreError::Unavailable(t) => StoreError::Unavailable(clean(t)),
            StoreError::Refused(t) => StoreError::Refused(clean(t)),
        }
    }
}

/// An error answer as a [`StoreError`]: 429, 408, 5xx and S3's "try again" codes are
/// [`StoreError::Unavailable`]; the rest is [`StoreError::Refused`].
fn classify(what: &str, status: StatusCode, code: &str, message: &str) -> StoreError {
    let mut text = format!("{what}: HTTP {}", status.as_u16());
    if !code.is_empty() {
        text.push(' ');
        text.push_str(code);
    }
    if !message.is_empty() {
        let message: String = message.chars().take(300).collect();
        text.push_str(": ");
        text.push_str(&message);
    }
    let hint = match code {
        "SignatureDoesNotMatch" | "InvalidAccessKeyId" | "InvalidToken" | "ExpiredToken" => {
            " (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN)"
        }
        "PermanentRedirect" | "AuthorizationHeaderMalformed" | "IncorrectEndpoint" => {
            " (check AWS_REGION and the endpoint)"
        }
        "RequestTimeTooSkewed" => " (check this host's clock)",
        "NoSuchBucket" => " (the bucket does not exist)",
        _ => "",
    };
    text.push_str(hint);
    let transient = status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
        || matches!(
            code,
            "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable"
        );
    if transient {
        StoreError::Unavailable(text)
    } else {
        StoreError::Refused(text)
    }
}

/// The messages of an error and its sources, joined (a refused connection, a TLS
/// failure, a reset); never a header.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut messages: Vec<String> = Vec::new();
    let mut source = Some(error);
    while let Some(e) = source {
        let message = e.to_string();
        if !messages.iter().any(|m| m.contains(&message)) {
            messages.push(message);
        }
        source = e.source();
    }
    messages.join(": ")
}

fn empty() -> Body {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The body of a PUT from a file: `len` bytes read [`CHUNK`] at a time as hyper sends
/// them; a file shorter than `len` fails the request.
fn file_body(file: tokio::fs::File, len: u64) -> Body {
    let chunks =
        futures_util::stream::unfold((file.take(len), len), |(mut file, left)| async move {
            if left == 0 {
                return None;
            }
            let size = usize::try_from(left).map_or(CHUNK, |left| left.min(CHUNK));
            let mut buf = BytesMut::with_capacity(size);
            match file.read_buf(&mut buf).await {
                Ok(0) => Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file is shorter than its length",
                    )),
                    (file, 0),
                )),
                Ok(n) => Some((Ok(Frame::data(buf.freeze())), (file, left - n as u64))),
                Err(e) => Some((Err(e), (file, 0))),
            }
        });
    StreamBody::new(chunks).boxed_unsync()
}

enum ReadError {
    TooLarge,
    Failed(String),
}

async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, ReadError> {
    Limited::new(body, limit)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|e| {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                ReadError::TooLarge
            } else {
                ReadError::Failed(error_chain(e.as_ref()))
            }
        })
}

/// What a ListObjectsV2 page says.
#[derive(Debug, PartialEq)]
struct ListPage {
    keys: Vec<String>,
    truncated: bool,
    next_token: Option<String>,
}

/// Reads the few fields of a ListObjectsV2 answer the store needs by hand: S3's XML is
/// flat, generated, without attributes on these elements nor CDATA.
fn parse_list_page(xml: &str) -> ListPage {
    ListPage {
        keys: elements(xml, "Key").into_iter().map(unescape).collect(),
        truncated: elements(xml, "IsTruncated")
            .first()
            .is_some_and(|t| t.trim() == "true"),
        next_token: elements(xml, "NextContinuationToken")
            .first()
            .copied()
            .map(unescape)
            .filter(|t| !t.is_empty()),
    }
}

/// The text of every `<tag>…</tag>` element, in order, entities not yet replaced.
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else {
            break;
        };
        found.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    found
}

/// XML's five entities and character references; anything else is kept as it is.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';') else {
            break;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse::<u32>))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn build_http(
    endpoint: &Endpoint,
    ca_bundle: Option<&Path>,
    options: &S3Options,
) -> Result<Http, String> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(options.connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    // Plain HTTP never uses the TLS configuration: no system bundle is needed then.
    let roots = if endpoint.https {
        root_store(ca_bundle)?
    } else {
        RootCertStore::empty()
    };
    let tls = rustls::ClientConfig::builder_with_provider(crate::kube::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("S3 TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
    let builder = if endpoint.https {
        builder.https_only()
    } else {
        builder.https_or_http()
    };
    // S3 speaks HTTP/1.1.
    let connector = builder.enable_http1().wrap_connector(http);
    Ok(HyperClient::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(32)
        .build(connector))
}

/// The system's roots (`SSL_CERT_FILE`, else the usual bundle paths) and those of
/// `AWS_CA_BUNDLE`, which must hold at least one valid certificate.
fn root_store(ca_bundle: Option<&Path>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    let explicit = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let system = explicit
        .into_iter()
        .chain(SYSTEM_CA_BUNDLES.iter().map(PathBuf::from))
        .find_map(|path| crate::files::read(&path).ok());
    if let Some(pem) = system {
        let certs = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
        store.add_parsable_certificates(certs);
    }
    if let Some(path) = ca_bundle {
        let what = format!("AWS_CA_BUNDLE {}", path.display());
        let pem = crate::files::read(path).map_err(|e| format!("{what}: {e}"))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{what} is not valid PEM: {e}"))?;
        if certs.is_empty() {
            return Err(format!("{what} holds no PEM certificate"));
        }
        for cert in certs {
            store.add(cert).map_err(|e| format!("{what}: {e}"))?;
        }
    }
    if store.is_empty() {
        return Err(
            "no CA certificates for the S3 endpoint: no system CA bundle was found; set \
             AWS_CA_BUNDLE"
                .into(),
        );
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-Secret-Key-0123456789";
    const TOKEN: &str = "FwoGZXIvYXdzE-session-token";

    /// Variables besides a valid access key id and secret key (which they override).
    type Vars = &'static [(&'static str, &'static str)];

    fn env(pairs: Vars) -> impl Fn(&str) -> Option<String> {
        move |name: &str| {
            [
                ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
            ]
            .iter()
            .chain(pairs)
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
        }
    }

    fn store(config: S3Config) -> S3Store {
        S3Store::new(config).unwrap()
    }

    #[test]
    fn the_location_and_the_aws_variables() {
        let c = S3Config::parse("s3://my-bucket/runs/ci/", &env(&[])).unwrap();
        assert_eq!(
            (c.bucket.as_str(), c.prefix.as_str()),
            ("my-bucket", "runs/ci")
        );
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.endpoint, None);
        assert!(c.session_token.is_none() && c.ca_bundle.is_none());

        let c = S3Config::parse("s3://b12", &env(&[("AWS_DEFAULT_REGION", "eu-west-3")])).unwrap();
        assert_eq!((c.prefix.as_str(), c.region.as_str()), ("", "eu-west-3"));
        let c = S3Config::parse(
            "s3://b12",
            &env(&[
                ("AWS_DEFAULT_REGION", "eu-west-3"),
                ("AWS_REGION", "garage"),
            ]),
        )
        .unwrap();
        assert_eq!(c.region, "garage");

        let c = S3Config::parse(
            "s3://b12",
            &env(&[
                ("AWS_ENDPOINT_URL", "https://generic.example"),
                ("AWS_ENDPOINT_URL_S3", "http://minio.minio.svc:9000/"),
                ("AWS_SESSION_TOKEN", TOKEN),
                ("AWS_CA_BUNDLE", "/etc/ca.pem"),
            ]),
        )
        .unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("http://minio.minio.svc:9000/"));
        assert_eq!(
            c.session_token.as_ref().map(|t| t.expose().as_str()),
            Some(TOKEN)
        );
        assert_eq!(c.ca_bundle, Some(PathBuf::from("/etc/ca.pem")));
        // An empty variable is an unset one.
        let c = S3Config::parse(
            "s3://b12",
            &env(&[("AWS_SESSION_TOKEN", ""), ("AWS_REGION", " ")]),
        )
        .unwrap();
        assert!(c.session_token.is_none());
        assert_eq!(c.region, "us-east-1");
    }

    #[test]
    fn what_is_refused_and_that_no_error_echoes_a_credential() {
        let cases: &[(&str, Vars, &str)] = &[
            ("/var/archive", &[], "not an S3 location"),
            ("s3://", &[], "not a bucket name"),
            ("s3://ab", &[], "not a bucket name"),
            ("s3://bad/bucket/../x", &[], "prefix"),
            ("s3://-bucket", &[], "not a bucket name"),
            (
                "s3://b12",
                &[("AWS_ACCESS_KEY_ID", "")],
                "AWS_ACCESS_KEY_ID is not set",
            ),
            (
                "s3://b12",
                &[("AWS_SECRET_ACCESS_KEY", "")],
                "AWS_SECRET_ACCESS_KEY is not set",
            ),
            ("s3://b12", &[("AWS_REGION", "us east")], "region"),
            (
                "s3://b12",
                &[("AWS_ENDPOINT_URL", "ftp://x")],
                "https:// or http://",
            ),
            (
                "s3://b12",
                &[("AWS_ENDPOINT_URL", "http://x:9000/s3")],
                "without a path",
            ),
            (
                "s3://b12",
                &[(
                    "AWS_ENDPOINT_URL",
                    "http://user:s3cr3t-Secret-Key-0123456789@x",
                )],
                "user name or password",
            ),
            (
                "s3://b12",
                &[("AWS_SESSION_TOKEN", "a b")],
                "AWS_SESSION_TOKEN",
            ),
        ];
        for (location, pairs, want) in cases {
            let err = S3Config::parse(location, &env(pairs)).unwrap_err();
            assert!(err.contains(want), "{location} {pairs:?}: {err}");
            assert!(!err.contains(SECRET), "{err}");
        }
    }

    #[test]
    fn debug_redacts_the_secret_key_and_the_session_token() {
        let c = S3Config::parse("s3://b12/p", &env(&[("AWS_SESSION_TOKEN", TOKEN)])).unwrap();
        let printed = format!("{c:?} {c:#?} {:?}", store(c.clone()));
        assert!(
            !printed.contains(SECRET) && !printed.contains(TOKEN),
            "{printed}"
        );
        assert!(printed.contains("<redacted>"));
    }

    #[test]
    fn addressing_path_style_with_an_endpoint_virtual_hosted_on_aws() {
        let at = |location: &str, pairs: Vars| {
            let s = store(S3Config::parse(location, &env(pairs)).unwrap());
            let (path, what) = s.object("PUT", "ns/job/logs/p/c d.log.gz").unwrap();
            (s.describe(), path, what, s.bucket_path())
        };
        assert_eq!(
            at(
                "s3://runs/archive",
                &[("AWS_ENDPOINT_URL", "http://127.0.0.1:9000/")]
            ),
            (
                "s3://runs/archive at http://127.0.0.1:9000 (path-style)".into(),
                "/runs/archive/ns/job/logs/p/c%20d.log.gz".into(),
                "PUT s3://runs/archive/ns/job/logs/p/c d.log.gz".into(),
                "/runs".into()
            )
        );
        // The scheme's own port is not part of the Host header.
        assert_eq!(
            at(
                "s3://runs",
                &[("AWS_ENDPOINT_URL", "https://minio.example:443")]
            )
            .0,
            "s3://runs at https://minio.example (path-style)"
        );
        assert_eq!(
            at("s3://runs", &[("AWS_REGION", "eu-central-1")]),
            (
                "s3://runs at https://runs.s3.eu-central-1.amazonaws.com (virtual-hosted)".into(),
                "/ns/job/logs/p/c%20d.log.gz".into(),
                "PUT s3://runs/ns/job/logs/p/c d.log.gz".into(),
                "/".into()
            )
        );
        // A dotted bucket would not match *.s3.region.amazonaws.com's certificate.
        let (describe, path, _, _) = at("s3://logs.example.com/x", &[]);
        assert_eq!(
            describe,
            "s3://logs.example.com/x at https://s3.us-east-1.amazonaws.com (path-style)"
        );
        assert_eq!(path, "/logs.example.com/x/ns/job/logs/p/c%20d.log.gz");
        assert!(
            at("s3://runs", &[("AWS_REGION", "cn-north-1")])
                .0
                .contains("runs.s3.cn-north-1.amazonaws.com.cn")
        );
    }

    #[test]
    fn keys_that_could_escape_or_not_list_are_refused() {
        let s = store(S3Config::parse("s3://b12", &env(&[])).unwrap());
        for key in ["", "/abs", "a//b", "a/./b", "../x", "a/..", "tab\there"] {
            assert!(
                matches!(s.object("PUT", key), Err(StoreError::Refused(_))),
                "{key:?}"
            );
        }
        assert!(s.object("PUT", "a b/ü/ሴ/x+y%z").is_ok());
    }

    #[test]
    fn error_answers_are_classified() {
        let cases = [
            (503, "SlowDown", true),
            (500, "InternalError", true),
            (429, "", true),
            (408, "", true),
            (400, "RequestTimeout", true),
            (403, "SignatureDoesNotMatch", false),
            (403, "AccessDenied", false),
            (404, "NoSuchBucket", false),
            (400, "AuthorizationHeaderMalformed", false),
            (301, "PermanentRedirect", false),
        ];
        for (status, code, transient) in cases {
            let e = classify(
                "GET s3://b/k",
                StatusCode::from_u16(status).unwrap(),
                code,
                "m",
            );
            assert_eq!(
                matches!(e, StoreError::Unavailable(_)),
                transient,
                "{status} {code}: {e}"
            );
            assert!(e.to_string().contains("GET s3://b/k: HTTP"), "{e}");
        }
    }

    #[test]
    fn list_pages_and_error_documents_are_read_by_hand() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated><Contents><Key>p/a &amp; b&lt;c&gt;.log</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><Size>3</Size></Contents><Contents><Key>p/&#xE9;t&#233; &quot;x&apos;</Key></Contents><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken></ListBucketResult>"#;
        assert_eq!(
            parse_list_page(xml),
            ListPage {
                keys: vec!["p/a & b<c>.log".into(), "p/été \"x'".into()],
                truncated: true,
                next_token: Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=".into()),
            }
        );
        let last = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
        assert_eq!(
            parse_list_page(last),
            ListPage {
                keys: vec![],
                truncated: false,
                next_token: None
            }
        );
        assert_eq!(
            unescape("a &unknown; & b &#xZZ; &#38;"),
            "a &unknown; & b &#xZZ; &"
        );
        let error = "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>k</Key></Error>";
        assert_eq!(elements(error, "Code"), ["NoSuchKey"]);
        assert_eq!(
            elements(error, "Message"),
            ["The specified key does not exist."]
        );
    }

    #[test]
    fn loopback_endpoints_are_recognised() {
        let loopback = |url: &str| {
            let var = |name: &str| match name {
                "AWS_ENDPOINT_URL" => Some(url.to_string()),
                _ => env(&[])(name),
            };
            Endpoint::of(&S3Config::parse("s3://b12", &var).unwrap())
                .unwrap()
                .is_loopback()
        };
        assert!(loopback("http://127.0.0.1:9000"));
        assert!(loopback("http://localhost"));
        assert!(loopback("http://[::1]:9000"));
        assert!(!loopback("http://minio.minio.svc:9000"));
        assert!(!loopback("http://10.0.0.1"));
    }
}

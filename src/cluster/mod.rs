//! Finding the cluster: which source the connection comes from (explicit kubeconfig,
//! in-cluster service account, `~/.kube/config`, environment), resolved into one
//! [`ClusterConfig`] that the Kubernetes client takes as a value.
//!
//! Of this module, only [`Environment::from_process`] reads the process environment;
//! the rest are functions of an [`Environment`] value and the filesystem, tested with
//! tables and temporary directories. (Elsewhere, `kube::tls` reads `SSL_CERT_FILE`, and
//! exec credential plugins inherit the environment.)

pub mod incluster;
pub mod kubeconfig;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::secret::Secret;

/// The default directory of the service-account files in a pod.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Where the connection settings came from: logged at start and reported by `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A kubeconfig: `--kubeconfig`, `$KUBECONFIG` or `~/.kube/config`.
    Kubeconfig {
        files: Vec<PathBuf>,
        context: String,
    },
    /// The pod's service account (`KUBERNETES_SERVICE_HOST` and the token files).
    InCluster { dir: PathBuf },
    /// Environment only: an apiserver URL without credentials.
    Environment { variable: &'static str },
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kubeconfig { files, context } => {
                let files: Vec<_> = files.iter().map(|p| p.display().to_string()).collect();
                write!(f, "kubeconfig {} (context {context})", files.join(":"))
            }
            Self::InCluster { dir } => write!(f, "in-cluster service account ({})", dir.display()),
            Self::Environment { variable } => write!(f, "environment ({variable})"),
        }
    }
}

/// The apiserver's base URL: scheme, authority and any path prefix (rancher-style
/// proxies serve the API under one), without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    text: String,
    https: bool,
    host: String,
}

impl ServerUrl {
    /// Parses `https://host[:port][/prefix]` or `http://...`. A URL without a scheme is
    /// taken as https, as client-go does.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let with_scheme = if raw.contains("://") {
            raw.to_string()
        } else {
            format!("https://{raw}")
        };
        let uri: http::Uri = with_scheme
            .parse()
            .map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            other => {
                return Err(format!(
                    "scheme {:?} is not supported: use https://",
                    other.unwrap_or_default()
                ));
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{raw:?} has no host"))?;
        if authority.as_str().contains('@') {
            return Err("credentials in the URL are not supported".into());
        }
        if uri.query().is_some() {
            return Err(format!("{raw:?} must not have a query"));
        }
        let prefix = uri.path().trim_end_matches('/');
        let scheme = if https { "https" } else { "http" };
        Ok(Self {
            text: format!("{scheme}://{authority}{prefix}"),
            https,
            host: authority.host().to_string(),
        })
    }

    /// The URL as text, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_https(&self) -> bool {
        self.https
    }

    /// Whether the host is a loopback address or `localhost` (where plain HTTP, such as a
    /// `kubectl proxy` sidecar, is acceptable).
    pub fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A client certificate and its private key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Secret<Vec<u8>>,
}

/// How the server's certificate is verified and which client certificate is offered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM bundle of the CA(s) to trust; `None`: the system bundle.
    pub ca_pem: Option<Vec<u8>>,
    /// `insecure-skip-tls-verify`: accept any certificate (warned about loudly).
    pub insecure_skip_verify: bool,
    /// `tls-server-name`: the name verified instead of the URL's host.
    pub server_name: Option<String>,
    pub identity: Option<Identity>,
}

/// When an exec plugin may talk to a person. The service never prompts: `Always` fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecInteractiveMode {
    Never,
    IfAvailable,
    Always,
}

/// An exec credential plugin (`client.authentication.k8s.io/v1` or `v1beta1`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecConfig {
    pub api_version: String,
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, Secret<String>)>,
    pub interactive_mode: ExecInteractiveMode,
    pub install_hint: Option<String>,
    /// `spec.cluster` of `KUBERNETES_EXEC_INFO`, when `provideClusterInfo` is set.
    pub cluster_info: Option<serde_json::Value>,
}

/// How requests authenticate to the apiserver.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthConfig {
    /// Anonymous (or client certificate only).
    None,
    Token(Secret<String>),
    /// A token re-read from this file (service-account tokens rotate).
    TokenFile(PathBuf),
    Basic {
        username: String,
        password: Secret<String>,
    },
    Exec(ExecConfig),
}

impl AuthConfig {
    /// The kind of authentication, for logs, health and `check`: never the secret.
    pub fn kind(&self, identity: bool) -> &'static str {
        match self {
            Self::None if identity => "client-certificate",
            Self::None => "anonymous",
            Self::Token(_) => "token",
            Self::TokenFile(_) => "token-file",
            Self::Basic { .. } => "basic",
            Self::Exec(_) => "exec-plugin",
        }
    }
}

/// Everything the Kubernetes client needs to reach and authenticate to one apiserver.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    pub source: ConfigSource,
    pub server: ServerUrl,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    /// The namespace the source names (kubeconfig context, in-cluster file), if any.
    pub namespace: Option<String>,
    /// `proxy-url` of the kubeconfig cluster. Not used: reported by `check` and logged.
    pub proxy_url: Option<String>,
}

/// The inputs of cluster discovery, read once from the process.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `--kubeconfig`.
    pub kubeconfig_flag: Option<PathBuf>,
    /// `$KUBECONFIG` (a path list).
    pub kubeconfig_env: Option<String>,
    /// `--context`.
    pub context: Option<String>,
    /// `$KUBERNETES_SERVICE_HOST` and `$KUBERNETES_SERVICE_PORT`.
    pub service_host: Option<String>,
    pub service_port: Option<String>,
    /// `$KUBERNETES_API_URL`: a plain-HTTP loopback URL such as a `kubectl proxy` sidecar.
    pub api_url: Option<String>,
    /// The service-account directory (`--service-account-dir`).
    pub service_account_dir: PathBuf,
    /// `$HOME`, for `~/.kube/config`.
    pub home: Option<PathBuf>,
}

impl Environment {
    /// Reads the discovery inputs from the process environment.
    pub fn from_process(
        kubeconfig_flag: Option<PathBuf>,
        context: Option<String>,
        service_account_dir: PathBuf,
    ) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            kubeconfig_flag,
            kubeconfig_env: var("KUBECONFIG"),
            context,
            service_host: var("KUBERNETES_SERVICE_HOST"),
            service_port: var("KUBERNETES_SERVICE_PORT"),
            api_url: var("KUBERNETES_API_URL"),
            service_account_dir,
            home: var("HOME").map(PathBuf::from),
        }
    }
}

/// Why no cluster could be used. Each variant documents one failure of the discovery.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// An explicitly named kubeconfig (flag or `$KUBECONFIG`) is broken.
    #[error(transparent)]
    Kubeconfig(#[from] kubeconfig::KubeconfigError),
    /// The in-cluster files exist but cannot be used.
    #[error(transparent)]
    InCluster(#[from] incluster::InClusterError),
    /// `$KUBERNETES_API_URL` cannot be used.
    #[error("KUBERNETES_API_URL: {0}")]
    ApiUrl(String),
    /// Nothing was found; the message lists what was tried.
    #[error("no Kubernetes cluster configured: tried {tried}")]
    NothingFound { tried: String },
}

/// One step of the discovery: what was tried and, if skipped, why (logged at info).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub method: &'static str,
    pub skipped_because: String,
}

/// Finds the cluster, in order: an explicit kubeconfig (`--kubeconfig`, else
/// `$KUBECONFIG`), in-cluster, `~/.kube/config`, then the environment alone
/// (`$KUBERNETES_API_URL`, or `$KUBERNETES_SERVICE_HOST`/`_PORT` without service-account
/// files). Returns the steps skipped before the one chosen.
pub fn discover(env: &Environment) -> (Result<ClusterConfig, DiscoveryError>, Vec<Attempt>) {
    let mut attempts = Vec::new();
    let mut skip = |method: &'static str, why: String| {
        attempts.push(Attempt {
            method,
            skipped_because: why,
        })
    };

    // 1. An explicit kubeconfig: whatever is wrong with it is the answer.
    let explicit = match (&env.kubeconfig_flag, &env.kubeconfig_env) {
        (Some(flag), _) => Some(vec![flag.clone()]),
        (None, Some(list)) => Some(kubeconfig::split_path_list(list)),
        (None, None) => None,
    };
    match explicit {
        Some(paths) if !paths.is_empty() => {
            let result = kubeconfig::load(&paths)
                .and_then(|merged| merged.resolve(env.context.as_deref()))
                .map_err(DiscoveryError::from);
            return (result, attempts);
        }
        _ => skip(
            "kubeconfig",
            "neither --kubeconfig nor KUBECONFIG is set".into(),
        ),
    }

    // 2. In-cluster.
    match (&env.service_host, &env.service_port) {
        (Some(host), Some(port)) => {
            if env.service_account_dir.join("token").exists() {
                let result = incluster::load(host, port, &env.service_account_dir)
                    .map_err(DiscoveryError::from);
                return (result, attempts);
            }
            skip(
                "in-cluster",
                format!(
                    "no service-account token in {}",
                    env.service_account_dir.display()
                ),
            );
        }
        _ => skip(
            "in-cluster",
            "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not both set".into(),
        ),
    }

    // 3. ~/.kube/config.
    match &env.home {
        Some(home) => {
            let path = home.join(".kube").join("config");
            if path.exists() {
                let result = kubeconfig::load(std::slice::from_ref(&path))
                    .and_then(|merged| merged.resolve(env.context.as_deref()))
                    .map_err(DiscoveryError::from);
                return (result, attempts);
            }
            skip(
                "home kubeconfig",
                format!("{} does not exist", path.display()),
            );
        }
        None => skip("home kubeconfig", "HOME is not set".into()),
    }

    // 4. The environment alone.
    if let Some(url) = &env.api_url {
        return (environment_url(url), attempts);
    }
    if let (Some(host), Some(port)) = (&env.service_host, &env.service_port) {
        let result = incluster::try_uri(host, port)
            .map(|server| ClusterConfig {
                source: ConfigSource::Environment {
                    variable: "KUBERNETES_SERVICE_HOST",
                },
                server,
                tls: TlsConfig::default(),
                auth: AuthConfig::None,
                namespace: None,
                proxy_url: None,
            })
            .map_err(DiscoveryError::from);
        return (result, attempts);
    }
    skip("environment", "KUBERNETES_API_URL is not set".into());

    let tried = attempts
        .iter()
        .map(|a| format!("{} ({})", a.method, a.skipped_because))
        .collect::<Vec<_>>()
        .join("; ");
    (Err(DiscoveryError::NothingFound { tried }), attempts)
}

/// `$KUBERNETES_API_URL`: plain HTTP only on loopback (a `kubectl proxy` sidecar), and
/// never with credentials, as kubectl does.
fn environment_url(url: &str) -> Result<ClusterConfig, DiscoveryError> {
    let server = ServerUrl::parse(url).map_err(DiscoveryError::ApiUrl)?;
    if !server.is_https() && !server.is_loopback() {
        return Err(DiscoveryError::ApiUrl(format!(
            "plain http is only allowed to a loopback address (a kubectl proxy sidecar), not {server}"
        )));
    }
    Ok(ClusterConfig {
        source: ConfigSource::Environment {
            variable: "KUBERNETES_API_URL",
        },
        server,
        tls: TlsConfig::default(),
        auth: AuthConfig::None,
        namespace: None,
        proxy_url: None,
    })
}

/// [`discover`], logged: each source skipped and why, the one chosen, and what about
/// it deserves a warning (no TLS verification, a proxy that is not used). A missing or
/// broken cluster is returned, never fatal: the service serves without one.
pub fn find(env: &Environment) -> Result<ClusterConfig, DiscoveryError> {
    let (result, attempts) = discover(env);
    for attempt in &attempts {
        tracing::info!(method = attempt.method, reason = %attempt.skipped_because, "cluster config source skipped");
    }
    match &result {
        Err(e @ DiscoveryError::NothingFound { .. }) => {
            tracing::warn!(error = %e, "no Kubernetes cluster found");
        }
        Err(e) => tracing::error!(error = %e, "cluster configuration is broken"),
        Ok(config) => {
            tracing::info!(
                source = %config.source,
                server = %config.server,
                auth = config.auth.kind(config.tls.identity.is_some()),
                "cluster config source chosen"
            );
            if config.tls.insecure_skip_verify {
                tracing::warn!(server = %config.server, "insecure-skip-tls-verify is set: the apiserver's certificate is NOT verified; anyone on the path can read the credentials");
            }
            if let Some(proxy) = &config.proxy_url {
                tracing::warn!(%proxy, "proxy-url is not supported: connecting to the apiserver directly");
            }
        }
    }
    result
}

/// The namespace used when none is asked for: `--namespace`, else the source's namespace
/// (kubeconfig context or in-cluster file), else `default`.
pub fn default_namespace(flag: Option<&str>, cluster: Option<&ClusterConfig>) -> String {
    flag.filter(|n| !n.is_empty())
        .map(str::to_string)
        .or_else(|| cluster.and_then(|c| c.namespace.clone()))
        .unwrap_or_else(|| "default".to_string())
}

/// Reads a file, naming it in the error.
pub(crate) fn read_named(path: &Path) -> Result<Vec<u8>, String> {
    crate::files::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_url_keeps_path_prefix_and_drops_trailing_slash() {
        let url = ServerUrl::parse("https://rancher.example.com/k8s/clusters/c-abc/").unwrap();
        assert_eq!(
            url.as_str(),
            "https://rancher.example.com/k8s/clusters/c-abc"
        );
        assert!(url.is_https());
    }

    #[test]
    fn server_url_without_scheme_is_https() {
        assert_eq!(
            ServerUrl::parse("10.96.0.1:443").unwrap().as_str(),
            "https://10.96.0.1:443"
        );
    }

    #[test]
    fn server_url_rejects_other_schemes_queries_and_userinfo() {
        for bad in [
            "ftp://h",
            "https://h/?x=1",
            "https://user:pw@h",
            "https://",
            "",
        ] {
            assert!(ServerUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_detection() {
        for (url, lo) in [
            ("http://127.0.0.1:8001", true),
            ("http://localhost:8001", true),
            ("http://[::1]:8001", true),
            ("http://10.0.0.1:8001", false),
            ("http://example.com", false),
        ] {
            assert_eq!(ServerUrl::parse(url).unwrap().is_loopback(), lo, "{url}");
        }
    }

    #[test]
    fn plain_http_api_url_is_only_for_loopback() {
        assert!(environment_url("http://127.0.0.1:8001").is_ok());
        let err = environment_url("http://10.1.2.3:8001").unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
    }

    #[test]
    fn namespace_precedence_flag_then_source_then_default() {
        let mut cluster = environment_url("http://127.0.0.1:8001").unwrap();
        cluster.namespace = Some("from-context".into());
        assert_eq!(default_namespace(Some("flag"), Some(&cluster)), "flag");
        assert_eq!(default_namespace(None, Some(&cluster)), "from-context");
        assert_eq!(default_namespace(Some(""), None), "default");
    }

    #[test]
    fn nothing_configured_names_every_attempt() {
        let env = Environment {
            service_account_dir: PathBuf::from("/nonexistent/sa"),
            home: Some(PathBuf::from("/nonexistent/home")),
            ..Environment::default()
        };
        let (result, attempts) = discover(&env);
        let err = result.unwrap_err().to_string();
        assert_eq!(attempts.len(), 4);
        for needle in [
            "KUBECONFIG",
            "KUBERNETES_SERVICE_HOST",
            ".kube/config",
            "KUBERNETES_API_URL",
        ] {
            assert!(err.contains(needle), "{needle} missing in {err}");
        }
    }
}

//! In-cluster configuration: `KUBERNETES_SERVICE_HOST`/`_PORT` and the service-account
//! files (`token`, `ca.crt`, `namespace`) that the kubelet mounts into every pod.

use std::path::Path;

use super::{AuthConfig, ClusterConfig, ConfigSource, ServerUrl, TlsConfig, read_named};

/// Why the in-cluster configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InClusterError {
    /// `KUBERNETES_SERVICE_HOST`/`_PORT` do not form a URL.
    #[error(
        "invalid in-cluster address KUBERNETES_SERVICE_HOST={host:?} KUBERNETES_SERVICE_PORT={port:?}: {message}"
    )]
    Address {
        host: String,
        port: String,
        message: String,
    },
    /// A service-account file exists but cannot be read.
    #[error("in-cluster service account: {0}")]
    Files(String),
}

/// The apiserver URL from the service host and port; IPv6 hosts are bracketed.
pub fn try_uri(host: &str, port: &str) -> Result<ServerUrl, InClusterError> {
    let error = |message: String| InClusterError::Address {
        host: host.to_string(),
        port: port.to_string(),
        message,
    };
    port.parse::<u16>()
        .map_err(|_| error("the port is not a number from 1 to 65535".into()))
        .and_then(|p| {
            if p == 0 {
                Err(error("the port is not a number from 1 to 65535".into()))
            } else {
                Ok(p)
            }
        })?;
    let host = if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    ServerUrl::parse(&format!("https://{host}:{port}")).map_err(error)
}

/// Loads the in-cluster configuration from the service-account directory. The token is
/// not read here: the client re-reads the file as it rotates.
pub fn load(host: &str, port: &str, dir: &Path) -> Result<ClusterConfig, InClusterError> {
    let server = try_uri(host, port)?;
    let ca_pem = read_named(&dir.join("ca.crt")).map_err(InClusterError::Files)?;
    let namespace = crate::files::read_to_string(&dir.join("namespace"))
        .ok()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    Ok(ClusterConfig {
        source: ConfigSource::InCluster {
            dir: dir.to_path_buf(),
        },
        server,
        tls: TlsConfig {
            ca_pem: Some(ca_pem),
            ..TlsConfig::default()
        },
        auth: AuthConfig::TokenFile(dir.join("token")),
        namespace,
        proxy_url: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_uri_table() {
        let cases = [
            ("10.96.0.1", "443", Some("https://10.96.0.1:443")),
            ("fd00::1", "443", Some("https://[fd00::1]:443")),
            ("::1", "6443", Some("https://[::1]:6443")),
            (
                "kubernetes.default.svc",
                "443",
                Some("https://kubernetes.default.svc:443"),
            ),
            ("10.96.0.1", "https", None),
            ("10.96.0.1", "0", None),
            ("10.96.0.1", "70000", None),
            ("bad host", "443", None),
        ];
        for (host, port, want) in cases {
            let got = try_uri(host, port).ok().map(|u| u.as_str().to_string());
            assert_eq!(got.as_deref(), want, "{host} {port}");
        }
    }

    #[test]
    fn load_reads_ca_and_namespace_and_points_at_the_token_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), b"PEM").unwrap();
        std::fs::write(dir.path().join("namespace"), b"sparktest\n").unwrap();
        std::fs::write(dir.path().join("token"), b"t").unwrap();
        let config = load("10.96.0.1", "443", dir.path()).unwrap();
        assert_eq!(config.namespace.as_deref(), Some("sparktest"));
        assert_eq!(config.tls.ca_pem.as_deref(), Some(&b"PEM"[..]));
        assert_eq!(config.auth, AuthConfig::TokenFile(dir.path().join("token")));
    }

    #[test]
    fn load_without_ca_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = load("10.96.0.1", "443", dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("ca.crt"), "{err}");
    }
}

//! The TLS resolver: what a kubeconfig's cluster entry decides about reaching the
//! apiserver. Its URL (`server`), the certificate authority it is verified against
//! (`certificate-authority-data` or `certificate-authority`), whether it is verified at
//! all (`insecure-skip-tls-verify`), the name verified (`tls-server-name`), and the
//! `proxy-url` that is carried along to be reported (it is not used).

use super::KubeconfigError;
use super::format::Cluster;
use super::origin::Origin;
use crate::cluster::ServerUrl;

/// A cluster entry, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ClusterTls {
    pub(super) server: ServerUrl,
    /// The CA bundle (PEM) to trust; `None`: the system bundle.
    pub(super) ca_pem: Option<Vec<u8>>,
    pub(super) insecure_skip_verify: bool,
    pub(super) server_name: Option<String>,
    /// Not TLS and not used: `check` and the start-up log report it.
    pub(super) proxy_url: Option<String>,
}

/// Resolves a cluster entry; `at` anchors its relative paths and names it in errors.
pub(super) fn resolve(cluster: &Cluster, at: &Origin) -> Result<ClusterTls, KubeconfigError> {
    // client-go would fall back to localhost:8080; a service must not guess.
    let server_text = cluster.server.as_deref().unwrap_or_default();
    if server_text.is_empty() {
        return Err(at.error("server", "is empty"));
    }
    let server = ServerUrl::parse(server_text).map_err(|m| at.error("server", m))?;

    let ca_pem = at.data_or_file(
        (
            "certificate-authority-data",
            &cluster.certificate_authority_data,
        ),
        ("certificate-authority", &cluster.certificate_authority),
    )?;
    let insecure_skip_verify = cluster.insecure_skip_tls_verify.unwrap_or(false);
    if insecure_skip_verify && ca_pem.is_some() {
        // kubectl refuses this combination too.
        return Err(at.error(
            "insecure-skip-tls-verify",
            "cannot be combined with a certificate authority: remove one of them",
        ));
    }

    Ok(ClusterTls {
        server,
        ca_pem,
        insecure_skip_verify,
        server_name: cluster.tls_server_name.clone().filter(|s| !s.is_empty()),
        proxy_url: cluster.proxy_url.clone().filter(|p| !p.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::kubeconfig::testing::{assert_field_error, entry, kubeconfig_dir};

    /// What a row expects of [`ClusterTls`]; `ca` is the CA's text.
    #[derive(Debug, Clone, Copy)]
    struct Want {
        server: &'static str,
        ca: Option<&'static str>,
        insecure: bool,
        server_name: Option<&'static str>,
        proxy_url: Option<&'static str>,
    }

    /// `CA-DATA` is `Q0EtREFUQQ==` in base64; `certs/ca.crt` holds `CA-FILE`.
    const PLAIN: Want = Want {
        server: "https://k:6443",
        ca: None,
        insecure: false,
        server_name: None,
        proxy_url: None,
    };

    /// (rule, cluster entry, the result: what it resolves to, or the field refused and a
    /// phrase of the message).
    type Row = (
        &'static str,
        &'static str,
        Result<Want, (&'static str, &'static str)>,
    );

    fn rows() -> Vec<Row> {
        vec![
            (
                "the server is kept without its trailing slash",
                "{server: 'https://k:6443/'}",
                Ok(PLAIN),
            ),
            (
                "a path prefix of the server is kept (rancher-style proxies)",
                "{server: 'https://r.example/k8s/clusters/c-1'}",
                Ok(Want {
                    server: "https://r.example/k8s/clusters/c-1",
                    ..PLAIN
                }),
            ),
            (
                "a server without a scheme is https, as in client-go",
                "{server: '10.0.0.1:6443'}",
                Ok(Want {
                    server: "https://10.0.0.1:6443",
                    ..PLAIN
                }),
            ),
            (
                "plain http is resolved here (the client sends it no credential)",
                "{server: 'http://127.0.0.1:8001'}",
                Ok(Want {
                    server: "http://127.0.0.1:8001",
                    ..PLAIN
                }),
            ),
            (
                "no server is refused (client-go would guess localhost:8080)",
                "{insecure-skip-tls-verify: true}",
                Err(("server", "is empty")),
            ),
            (
                "an empty server is refused",
                "{server: ''}",
                Err(("server", "is empty")),
            ),
            (
                "a server in another scheme is refused",
                "{server: 'ftp://k'}",
                Err(("server", "not supported")),
            ),
            (
                "the server is checked before the CA",
                "{server: '', certificate-authority: missing.crt}",
                Err(("server", "is empty")),
            ),
            (
                "no CA: the system bundle",
                "{server: 'https://k:6443'}",
                Ok(PLAIN),
            ),
            (
                "certificate-authority-data is base64",
                "{server: 'https://k:6443', certificate-authority-data: Q0EtREFUQQ==}",
                Ok(Want {
                    ca: Some("CA-DATA"),
                    ..PLAIN
                }),
            ),
            (
                "whitespace in certificate-authority-data is ignored",
                "{server: 'https://k:6443', certificate-authority-data: 'Q0Et REFU\tQQ=='}",
                Ok(Want {
                    ca: Some("CA-DATA"),
                    ..PLAIN
                }),
            ),
            (
                "certificate-authority-data that is not base64 is refused",
                "{server: 'https://k:6443', certificate-authority-data: 'not base64!!'}",
                Err(("certificate-authority-data", "base64")),
            ),
            (
                "a relative certificate-authority resolves against the kubeconfig's directory",
                "{server: 'https://k:6443', certificate-authority: certs/ca.crt}",
                Ok(Want {
                    ca: Some("CA-FILE"),
                    ..PLAIN
                }),
            ),
            (
                "an absolute certificate-authority is read as is",
                "{server: 'https://k:6443', certificate-authority: $DIR/certs/ca.crt}",
                Ok(Want {
                    ca: Some("CA-FILE"),
                    ..PLAIN
                }),
            ),
            (
                "a certificate-authority that cannot be read is refused, naming the path",
                "{server: 'https://k:6443', certificate-authority: certs/missing.crt}",
                Err(("certificate-authority", "certs/missing.crt")),
            ),
            (
                "a directory is not a certificate-authority",
                "{server: 'https://k:6443', certificate-authority: certs}",
                Err(("certificate-authority", "not a regular file")),
            ),
            (
                "certificate-authority-data with certificate-authority is refused, as kubectl does",
                "{server: 'https://k:6443', certificate-authority-data: Q0EtREFUQQ==, certificate-authority: certs/ca.crt}",
                Err((
                    "certificate-authority-data",
                    "cannot be combined with `certificate-authority`",
                )),
            ),
            (
                "an empty certificate-authority-data is unset: the path is used",
                "{server: 'https://k:6443', certificate-authority-data: '', certificate-authority: certs/ca.crt}",
                Ok(Want {
                    ca: Some("CA-FILE"),
                    ..PLAIN
                }),
            ),
            (
                "insecure-skip-tls-verify without a CA",
                "{server: 'https://k:6443', insecure-skip-tls-verify: true}",
                Ok(Want {
                    insecure: true,
                    ..PLAIN
                }),
            ),
            (
                "insecure-skip-tls-verify with a CA is refused, as kubectl does",
                "{server: 'https://k:6443', insecure-skip-tls-verify: true, certificate-authority: certs/ca.crt}",
                Err(("insecure-skip-tls-verify", "certificate authority")),
            ),
            (
                "insecure-skip-tls-verify: false beside a CA verifies with it",
                "{server: 'https://k:6443', insecure-skip-tls-verify: false, certificate-authority-data: Q0EtREFUQQ==}",
                Ok(Want {
                    ca: Some("CA-DATA"),
                    ..PLAIN
                }),
            ),
            (
                "tls-server-name is the name verified",
                "{server: 'https://10.0.0.1:6443', tls-server-name: kubernetes.default.svc}",
                Ok(Want {
                    server: "https://10.0.0.1:6443",
                    server_name: Some("kubernetes.default.svc"),
                    ..PLAIN
                }),
            ),
            (
                "an empty tls-server-name is unset",
                "{server: 'https://k:6443', tls-server-name: ''}",
                Ok(PLAIN),
            ),
            (
                "proxy-url is carried, to be reported",
                "{server: 'https://k:6443', proxy-url: 'http://proxy:3128'}",
                Ok(Want {
                    proxy_url: Some("http://proxy:3128"),
                    ..PLAIN
                }),
            ),
            (
                "an empty proxy-url is unset",
                "{server: 'https://k:6443', proxy-url: ''}",
                Ok(PLAIN),
            ),
        ]
    }

    #[test]
    fn tls_resolver_rules() {
        let (dir, config) = kubeconfig_dir(&[("certs/ca.crt", "CA-FILE")]);
        for (rule, yaml, want) in rows() {
            let cluster: Cluster = entry(yaml, dir.path());
            let got = resolve(&cluster, &Origin::new(&config, "cluster", "k"));
            match (got, want) {
                (Ok(got), Ok(want)) => {
                    assert_eq!(got.server.as_str(), want.server, "{rule}: server");
                    assert_eq!(
                        got.ca_pem.as_deref(),
                        want.ca.map(str::as_bytes),
                        "{rule}: CA"
                    );
                    assert_eq!(got.insecure_skip_verify, want.insecure, "{rule}: insecure");
                    assert_eq!(
                        got.server_name.as_deref(),
                        want.server_name,
                        "{rule}: tls-server-name"
                    );
                    assert_eq!(
                        got.proxy_url.as_deref(),
                        want.proxy_url,
                        "{rule}: proxy-url"
                    );
                }
                (Err(err), Err((field, needle))) => {
                    assert_field_error(rule, &err, &config, field, needle);
                    assert!(err.to_string().contains(r#"cluster "k""#), "{rule}: {err}");
                }
                (got, want) => panic!("{rule}: got {got:?}, want {want:?}"),
            }
        }
    }
}

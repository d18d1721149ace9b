//! TLS to the apiserver with rustls and the `ring` provider, chosen explicitly: trust
//! exactly the configured CA, offer the client certificate when there is one.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::KubeError;
use crate::cluster::{Identity, TlsConfig};

/// Where the system's CA bundle is looked for when a cluster configures no CA (a public
/// apiserver certificate), unless `SSL_CERT_FILE` names another file.
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The one crypto provider of the process.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls client configuration for one apiserver.
pub fn client_config(
    tls: &TlsConfig,
    identity: Option<&Identity>,
) -> Result<ClientConfig, KubeError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| KubeError::TlsConfig(e.to_string()))?;
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else {
        builder.with_root_certificates(root_store(tls.ca_pem.as_deref())?)
    };
    match identity.or(tls.identity.as_ref()) {
        Some(identity) => {
            let certs = parse_certs(&identity.cert_pem, "client certificate")?;
            let key = PrivateKeyDer::from_pem_slice(identity.key_pem.expose()).map_err(|e| {
                KubeError::TlsConfig(format!("client key is not a PEM private key: {e}"))
            })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| KubeError::TlsConfig(format!("client certificate and key: {e}")))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// An empty store plus the configured CA(s), so that a wrong CA fails loudly; the
/// system bundle only when no CA is configured at all.
fn root_store(ca_pem: Option<&[u8]>) -> Result<RootCertStore, KubeError> {
    let mut store = RootCertStore::empty();
    let (pem, what) = match ca_pem {
        Some(pem) => (pem.to_vec(), "certificate authority".to_string()),
        None => system_bundle()?,
    };
    for cert in parse_certs(&pem, &what)? {
        store
            .add(cert)
            .map_err(|e| KubeError::TlsConfig(format!("{what}: {e}")))?;
    }
    Ok(store)
}

fn system_bundle() -> Result<(Vec<u8>, String), KubeError> {
    let explicit = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    let candidates = explicit
        .into_iter()
        .chain(SYSTEM_CA_BUNDLES.iter().map(std::path::PathBuf::from));
    for path in candidates {
        if let Ok(pem) = crate::files::read(&path) {
            return Ok((pem, format!("system CA bundle {}", path.display())));
        }
    }
    Err(KubeError::TlsConfig(
        "no certificate authority is configured for the cluster and no system CA bundle was \
         found: set certificate-authority in the kubeconfig"
            .into(),
    ))
}

fn parse_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, KubeError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| KubeError::TlsConfig(format!("{what} is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(KubeError::TlsConfig(format!(
            "{what} holds no PEM certificate"
        )));
    }
    Ok(certs)
}

/// `insecure-skip-tls-verify: true`: any certificate is accepted (signatures are still
/// checked so the handshake is well-formed). Logged as a warning at start.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_that_is_not_pem_fails_loudly() {
        let tls = TlsConfig {
            ca_pem: Some(b"not-a-real-certificate".to_vec()),
            ..TlsConfig::default()
        };
        let err = client_config(&tls, None).unwrap_err().to_string();
        assert!(err.contains("certificate authority"), "{err}");
    }

    #[test]
    fn the_placeholder_certificates_of_the_fixture_kubeconfigs_are_rejected() {
        // fixtures/kubeconfigs/kind.yaml carries "-----BEGIN CERTIFICATE-----
        // not-a-real-certificate": a PEM frame around something that is not DER.
        let pem =
            b"-----BEGIN CERTIFICATE-----\nnot-a-real-certificate\n-----END CERTIFICATE-----\n";
        let tls = TlsConfig {
            ca_pem: Some(pem.to_vec()),
            ..TlsConfig::default()
        };
        assert!(client_config(&tls, None).is_err());
    }
}

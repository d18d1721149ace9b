//! Errors of the Kubernetes client: what the apiserver answered (as a `metav1.Status`),
//! or why it could not be asked. The client never picks our HTTP statuses; `api::error`
//! maps these.

use std::time::Duration;

use serde::Deserialize;

/// A `metav1.Status`, the body of every non-2xx answer of the apiserver.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Status {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub code: Option<u16>,
    #[serde(default)]
    pub details: Option<StatusDetails>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct StatusDetails {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub causes: Option<Vec<StatusCause>>,
    #[serde(default, rename = "retryAfterSeconds")]
    pub retry_after_seconds: Option<u64>,
}

/// One cause of a 422 Invalid answer; `field` names the offending field.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct StatusCause {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub field: Option<String>,
}

/// Why a call to the apiserver failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KubeError {
    /// No cluster is configured, or its configuration is broken; the message says what
    /// was tried.
    #[error("{0}")]
    NotConfigured(String),
    /// The apiserver answered with a non-2xx status. `status` is its `metav1.Status`
    /// (for a body that is not JSON, a Status built from the first bytes of the body).
    #[error("apiserver answered {code}: {}", status.message.as_deref().unwrap_or("no message"))]
    Api { code: u16, status: Box<Status> },
    /// The TCP connection could not be made (refused, DNS, reset).
    #[error("cannot connect to the apiserver at {server}: {message}")]
    Connect { server: String, message: String },
    /// The TLS handshake failed (unknown CA, name mismatch, client certificate refused).
    #[error("TLS handshake with the apiserver at {server} failed: {message}")]
    Tls { server: String, message: String },
    /// The apiserver did not answer in time.
    #[error("the apiserver did not answer within {0:?}")]
    Timeout(Duration),
    /// Credentials could not be obtained (exec plugin, token file).
    #[error("cannot obtain credentials: {0}")]
    Credentials(String),
    /// The TLS material (CA, client certificate or key) cannot be used.
    #[error("TLS configuration: {0}")]
    TlsConfig(String),
    /// A 2xx body is not the expected object, or is larger than allowed.
    #[error("unexpected answer from the apiserver: {0}")]
    Decode(String),
}

impl KubeError {
    /// The apiserver's HTTP status, for answers.
    pub fn code(&self) -> Option<u16> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The Status `reason` (`NotFound`, `Forbidden`, `Expired`, ...), for answers.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Api { status, .. } => status.reason.as_deref(),
            _ => None,
        }
    }

    /// Builds the error for a non-2xx answer from its body: a `metav1.Status` when the
    /// body is one, else a Status carrying the body's first bytes as its message.
    pub fn from_response(code: u16, body: &[u8]) -> Self {
        let status = serde_json::from_slice::<Status>(body)
            .ok()
            .filter(|s| s.message.is_some() || s.reason.is_some())
            .unwrap_or_else(|| {
                let text = String::from_utf8_lossy(&body[..body.len().min(256)]);
                let text = text.trim();
                Status {
                    status: Some("Failure".into()),
                    message: Some(if text.is_empty() {
                        format!("HTTP {code} with no Status body")
                    } else {
                        text.to_string()
                    }),
                    reason: None,
                    code: Some(code),
                    details: None,
                }
            });
        Self::Api {
            code,
            status: Box::new(status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bodies_become_typed_errors() {
        let body = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"jobs.batch \"does-not-exist\" not found","reason":"NotFound","details":{"name":"does-not-exist","group":"batch","kind":"jobs"},"code":404}"#;
        let err = KubeError::from_response(404, body);
        assert_eq!(err.code(), Some(404));
        assert_eq!(err.reason(), Some("NotFound"));
        assert!(err.to_string().contains("not found"), "{err}");
    }

    #[test]
    fn non_json_bodies_fall_back_to_their_text() {
        let err = KubeError::from_response(502, b"<html>bad gateway</html>");
        assert_eq!(err.reason(), None);
        assert!(err.to_string().contains("bad gateway"), "{err}");
        let empty = KubeError::from_response(500, b"");
        assert!(empty.to_string().contains("no Status body"), "{empty}");
    }
}

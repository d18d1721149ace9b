//! Exec credential plugins (`client.authentication.k8s.io/v1` and `v1beta1`): run the
//! command, read its `ExecCredential`, cache it until it expires.

use std::process::Stdio;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde::Deserialize;

use crate::cluster::{ExecConfig, ExecInteractiveMode, Identity};
use crate::secret::Secret;

/// A credential is renewed this long before its `expirationTimestamp`, so that a
/// request never leaves with a token that expires on the way.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(30);

/// What a plugin returned: a bearer token, a client certificate, or both.
#[derive(Debug, Clone)]
pub struct ExecCredential {
    pub token: Option<Secret<String>>,
    pub identity: Option<Identity>,
    pub expires: Option<SystemTime>,
}

impl ExecCredential {
    /// Whether the credential can still be used at `now`.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        match self.expires {
            None => true,
            Some(at) => now + EXPIRY_MARGIN < at,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Output {
    api_version: Option<String>,
    kind: Option<String>,
    status: Option<OutputStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutputStatus {
    token: Option<String>,
    client_certificate_data: Option<String>,
    client_key_data: Option<String>,
    expiration_timestamp: Option<String>,
}

/// Runs the plugin once. The service never prompts: standard input is closed and
/// `KUBERNETES_EXEC_INFO` says `interactive: false`.
pub async fn run(config: &ExecConfig, timeout: Duration) -> Result<ExecCredential, String> {
    if config.interactive_mode == ExecInteractiveMode::Always {
        return Err(format!(
            "exec plugin {:?} requires an interactive terminal (interactiveMode: Always), \
             which a service never has: use a non-interactive login for it",
            config.command
        ));
    }
    let mut spec = serde_json::json!({ "interactive": false });
    if let Some(cluster) = &config.cluster_info {
        spec["cluster"] = cluster.clone();
    }
    let exec_info = serde_json::json!({
        "apiVersion": config.api_version,
        "kind": "ExecCredential",
        "spec": spec,
    });
    let mut command = tokio::process::Command::new(&config.command);
    command
        .args(&config.args)
        .env("KUBERNETES_EXEC_INFO", exec_info.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in &config.env {
        command.env(name, value.expose());
    }
    let child = command.spawn().map_err(|e| {
        let mut message = format!("exec plugin {:?} could not be started: {e}", config.command);
        if e.kind() == std::io::ErrorKind::NotFound
            && let Some(hint) = &config.install_hint
        {
            message.push_str(&format!(". {hint}"));
        }
        message
    })?;
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| {
            format!(
                "exec plugin {:?} did not finish within {timeout:?}",
                config.command
            )
        })?
        .map_err(|e| format!("exec plugin {:?}: {e}", config.command))?;
    if !output.status.success() {
        // stderr is the plugin's explanation; keep it short, it is shown to operators.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr: String = stderr.trim().chars().take(300).collect();
        return Err(format!(
            "exec plugin {:?} failed ({}): {stderr}",
            config.command, output.status
        ));
    }
    parse_output(config, &output.stdout)
}

/// Parses and checks a plugin's standard output.
pub fn parse_output(config: &ExecConfig, stdout: &[u8]) -> Result<ExecCredential, String> {
    let name = &config.command;
    let output: Output = serde_json::from_slice(stdout)
        .map_err(|e| format!("exec plugin {name:?} printed no ExecCredential JSON: {e}"))?;
    if output.kind.as_deref() != Some("ExecCredential") {
        return Err(format!(
            "exec plugin {name:?} printed kind {:?}, not ExecCredential",
            output.kind
        ));
    }
    if output.api_version.as_deref() != Some(config.api_version.as_str()) {
        return Err(format!(
            "exec plugin {name:?} answered apiVersion {:?}, but the kubeconfig asks for {:?}",
            output.api_version, config.api_version
        ));
    }
    let status = output
        .status
        .ok_or_else(|| format!("exec plugin {name:?} returned no status"))?;
    let decode_pem = |field: &str, value: String| -> Result<Vec<u8>, String> {
        // The ExecCredential fields are PEM text, not base64.
        if value.contains("-----BEGIN") {
            Ok(value.into_bytes())
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .map_err(|_| format!("exec plugin {name:?}: status.{field} is not PEM"))
        }
    };
    let identity = match (status.client_certificate_data, status.client_key_data) {
        (Some(cert), Some(key)) if !cert.is_empty() && !key.is_empty() => Some(Identity {
            cert_pem: decode_pem("clientCertificateData", cert)?,
            key_pem: Secret::new(decode_pem("clientKeyData", key)?),
        }),
        (None, None) => None,
        (Some(c), Some(k)) if c.is_empty() && k.is_empty() => None,
        _ => {
            return Err(format!(
                "exec plugin {name:?} returned only one of clientCertificateData and clientKeyData"
            ));
        }
    };
    let token = status.token.filter(|t| !t.is_empty()).map(Secret::new);
    if token.is_none() && identity.is_none() {
        return Err(format!(
            "exec plugin {name:?} returned neither a token nor a client certificate"
        ));
    }
    let expires = match status.expiration_timestamp.as_deref() {
        None | Some("") => None,
        Some(ts) => Some(crate::time::parse_rfc3339(ts).ok_or_else(|| {
            format!("exec plugin {name:?}: expirationTimestamp {ts:?} is not RFC 3339")
        })?),
    };
    Ok(ExecCredential {
        token,
        identity,
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ExecConfig {
        ExecConfig {
            api_version: "client.authentication.k8s.io/v1beta1".into(),
            command: "plugin".into(),
            args: vec![],
            env: vec![],
            interactive_mode: ExecInteractiveMode::IfAvailable,
            install_hint: None,
            cluster_info: None,
        }
    }

    #[test]
    fn parses_a_token_with_expiry() {
        let out = br#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"k8s-aws-v1.abc","expirationTimestamp":"2030-01-01T00:00:00Z"}}"#;
        let cred = parse_output(&config(), out).unwrap();
        assert_eq!(cred.token.unwrap().expose(), "k8s-aws-v1.abc");
        assert!(cred.expires.is_some());
    }

    #[test]
    fn rejects_wrong_api_version_and_empty_status() {
        let wrong = br#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"t"}}"#;
        assert!(
            parse_output(&config(), wrong)
                .unwrap_err()
                .contains("apiVersion")
        );
        let empty = br#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{}}"#;
        assert!(
            parse_output(&config(), empty)
                .unwrap_err()
                .contains("neither")
        );
    }

    #[test]
    fn freshness_honours_the_margin() {
        let now = SystemTime::now();
        let soon = ExecCredential {
            token: None,
            identity: None,
            expires: Some(now + EXPIRY_MARGIN / 2),
        };
        assert!(!soon.is_fresh(now));
        let later = ExecCredential {
            expires: Some(now + EXPIRY_MARGIN * 4),
            ..soon.clone()
        };
        assert!(later.is_fresh(now));
    }

    #[tokio::test]
    async fn interactive_always_is_refused_without_running_anything() {
        let mut c = config();
        c.interactive_mode = ExecInteractiveMode::Always;
        c.command = "/nonexistent/must-not-run".into();
        let err = run(&c, Duration::from_secs(5)).await.unwrap_err();
        assert!(err.contains("interactive"), "{err}");
    }

    #[tokio::test]
    async fn a_missing_command_shows_the_install_hint() {
        let mut c = config();
        c.command = "sparktest-no-such-plugin".into();
        c.install_hint = Some("Install it with: apt-get install the-plugin".into());
        let err = run(&c, Duration::from_secs(5)).await.unwrap_err();
        assert!(err.contains("apt-get install the-plugin"), "{err}");
    }
}

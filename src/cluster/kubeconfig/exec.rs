//! Exec credential plugins (`user.exec`): the plugin's configuration, and the cluster as
//! the plugin sees it through `KUBERNETES_EXEC_INFO` when `provideClusterInfo` is set.
//! Part of the auth resolver ([`super::auth`]).

use base64::Engine as _;

use super::KubeconfigError;
use super::format::{Cluster, Exec};
use super::origin::Origin;
use crate::cluster::{ExecConfig, ExecInteractiveMode};
use crate::secret::Secret;

/// The named cluster extension that holds the per-cluster plugin configuration.
const EXEC_EXTENSION: &str = "client.authentication.k8s.io/exec";

/// Resolves a user's exec plugin; `at` (the user entry) anchors a relative command and
/// names the entry in errors. `cluster_info` is called only when the plugin asks for it.
pub(super) fn config(
    exec: &Exec,
    at: &Origin,
    cluster_info: impl FnOnce() -> serde_json::Value,
) -> Result<ExecConfig, KubeconfigError> {
    let api_version = exec.api_version.clone().unwrap_or_default();
    if !matches!(
        api_version.as_str(),
        "client.authentication.k8s.io/v1" | "client.authentication.k8s.io/v1beta1"
    ) {
        return Err(at.error(
            "exec.apiVersion",
            format!(
                "{api_version:?} is not supported: use client.authentication.k8s.io/v1 or v1beta1"
            ),
        ));
    }
    let command = exec.command.clone().unwrap_or_default();
    if command.is_empty() {
        return Err(at.error("exec.command", "is empty"));
    }
    // client-go resolves a command against the kubeconfig's directory only when it is a
    // relative path with a separator ("./bin/plugin"); a bare name is looked up on PATH.
    let command = if command.contains(std::path::MAIN_SEPARATOR) {
        at.path(&command).to_string_lossy().into_owned()
    } else {
        command
    };
    let interactive_mode = match exec.interactive_mode.as_deref() {
        None | Some("") => {
            if api_version.ends_with("/v1") {
                return Err(at.error(
                    "exec.interactiveMode",
                    "is required by client.authentication.k8s.io/v1 (Never, IfAvailable or Always)",
                ));
            }
            ExecInteractiveMode::IfAvailable
        }
        Some("Never") => ExecInteractiveMode::Never,
        Some("IfAvailable") => ExecInteractiveMode::IfAvailable,
        Some("Always") => ExecInteractiveMode::Always,
        Some(other) => {
            return Err(at.error(
                "exec.interactiveMode",
                format!("{other:?} is not one of Never, IfAvailable, Always"),
            ));
        }
    };
    let cluster_info = exec
        .provide_cluster_info
        .unwrap_or(false)
        .then(cluster_info);
    Ok(ExecConfig {
        api_version,
        command,
        args: exec.args.clone().unwrap_or_default(),
        env: exec
            .env
            .iter()
            .flatten()
            .map(|e| (e.name.clone(), Secret::new(e.value.clone())))
            .collect(),
        interactive_mode,
        install_hint: exec.install_hint.clone().filter(|h| !h.is_empty()),
        cluster_info,
    })
}

/// `spec.cluster` of `KUBERNETES_EXEC_INFO`, as kubectl builds it: the cluster entry's
/// fields as written (the server not normalised), the CA (from the file or the data,
/// `ca_pem` as resolved) as base64 data, and the plugin's extension as `config`.
pub(super) fn cluster_info(cluster: &Cluster, ca_pem: Option<&[u8]>) -> serde_json::Value {
    let mut info = serde_json::json!({ "server": cluster.server.clone().unwrap_or_default() });
    if let Some(name) = &cluster.tls_server_name {
        info["tls-server-name"] = name.clone().into();
    }
    if cluster.insecure_skip_tls_verify == Some(true) {
        info["insecure-skip-tls-verify"] = true.into();
    }
    if let Some(ca) = ca_pem {
        info["certificate-authority-data"] =
            base64::engine::general_purpose::STANDARD.encode(ca).into();
    }
    if let Some(proxy) = &cluster.proxy_url {
        info["proxy-url"] = proxy.clone().into();
    }
    if let Some(config) = cluster
        .extensions
        .iter()
        .flatten()
        .find(|e| e.name == EXEC_EXTENSION)
        .and_then(|e| e.extension.clone())
    {
        info["config"] = config;
    }
    info
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cluster::kubeconfig::testing::{assert_field_error, entry, kubeconfig_dir};

    /// What a row expects of [`ExecConfig`]. `command` starting with `$DIR` is under the
    /// kubeconfig's directory.
    #[derive(Debug, Clone, Copy)]
    struct Want {
        command: &'static str,
        mode: ExecInteractiveMode,
        args: &'static [&'static str],
        env: &'static [(&'static str, &'static str)],
        install_hint: Option<&'static str>,
        cluster_info: bool,
    }

    const PLUGIN: Want = Want {
        command: "plugin",
        mode: ExecInteractiveMode::IfAvailable,
        args: &[],
        env: &[],
        install_hint: None,
        cluster_info: false,
    };

    /// (rule, user.exec, the result, or the field refused and a phrase of the message).
    type Row = (
        &'static str,
        &'static str,
        Result<Want, (&'static str, &'static str)>,
    );

    fn rows() -> Vec<Row> {
        vec![
            (
                "v1beta1 without interactiveMode is IfAvailable, as kubectl defaults it",
                "{apiVersion: client.authentication.k8s.io/v1beta1, command: plugin}",
                Ok(PLUGIN),
            ),
            (
                "v1 requires interactiveMode, as kubectl does",
                "{apiVersion: client.authentication.k8s.io/v1, command: plugin}",
                Err(("exec.interactiveMode", "required")),
            ),
            (
                "an empty interactiveMode is none",
                "{apiVersion: client.authentication.k8s.io/v1, command: plugin, interactiveMode: ''}",
                Err(("exec.interactiveMode", "required")),
            ),
            (
                "interactiveMode Never",
                "{apiVersion: client.authentication.k8s.io/v1, command: plugin, interactiveMode: Never}",
                Ok(Want {
                    mode: ExecInteractiveMode::Never,
                    ..PLUGIN
                }),
            ),
            (
                "interactiveMode IfAvailable",
                "{apiVersion: client.authentication.k8s.io/v1, command: plugin, interactiveMode: IfAvailable}",
                Ok(PLUGIN),
            ),
            (
                "interactiveMode Always is resolved (refused when the plugin runs)",
                "{apiVersion: client.authentication.k8s.io/v1, command: plugin, interactiveMode: Always}",
                Ok(Want {
                    mode: ExecInteractiveMode::Always,
                    ..PLUGIN
                }),
            ),
            (
                "another interactiveMode is refused",
                "{apiVersion: client.authentication.k8s.io/v1, command: plugin, interactiveMode: Sometimes}",
                Err(("exec.interactiveMode", "\"Sometimes\"")),
            ),
            (
                "v1alpha1 is refused, as kubectl does",
                "{apiVersion: client.authentication.k8s.io/v1alpha1, command: plugin, interactiveMode: Never}",
                Err(("exec.apiVersion", "v1alpha1")),
            ),
            (
                "a missing apiVersion is refused",
                "{command: plugin}",
                Err(("exec.apiVersion", "not supported")),
            ),
            (
                "the apiVersion is checked before the command",
                "{command: ''}",
                Err(("exec.apiVersion", "not supported")),
            ),
            (
                "an empty command is refused",
                "{apiVersion: client.authentication.k8s.io/v1beta1, command: ''}",
                Err(("exec.command", "is empty")),
            ),
            (
                "a bare command is kept, to be looked up on PATH",
                "{apiVersion: client.authentication.k8s.io/v1beta1, command: aws}",
                Ok(Want {
                    command: "aws",
                    ..PLUGIN
                }),
            ),
            (
                "a relative command with a separator resolves against the kubeconfig's directory",
                "{apiVersion: client.authentication.k8s.io/v1beta1, command: bin/plugin}",
                Ok(Want {
                    command: "$DIR/bin/plugin",
                    ..PLUGIN
                }),
            ),
            (
                "an absolute command is kept",
                "{apiVersion: client.authentication.k8s.io/v1beta1, command: /usr/bin/plugin}",
                Ok(Want {
                    command: "/usr/bin/plugin",
                    ..PLUGIN
                }),
            ),
            (
                "args and env are carried in order; an env entry without value is empty",
                "{apiVersion: client.authentication.k8s.io/v1beta1, command: plugin, args: [a, --b], env: [{name: K, value: v}, {name: E}]}",
                Ok(Want {
                    args: &["a", "--b"],
                    env: &[("K", "v"), ("E", "")],
                    ..PLUGIN
                }),
            ),
            (
                "a null args and env are empty",
                "{apiVersion: client.authentication.k8s.io/v1beta1, command: plugin, args: null, env: null}",
                Ok(PLUGIN),
            ),
            (
                "installHint is carried",
                "{apiVersion: client.authentication.k8s.io/v1beta1, command: plugin, installHint: 'install it'}",
                Ok(Want {
                    install_hint: Some("install it"),
                    ..PLUGIN
                }),
            ),
            (
                "an empty installHint is none",
                "{apiVersion: client.authentication.k8s.io/v1beta1, command: plugin, installHint: ''}",
                Ok(PLUGIN),
            ),
            (
                "provideClusterInfo gives the plugin the cluster",
                "{apiVersion: client.authentication.k8s.io/v1beta1, command: plugin, provideClusterInfo: true}",
                Ok(Want {
                    cluster_info: true,
                    ..PLUGIN
                }),
            ),
            (
                "provideClusterInfo: false gives it none",
                "{apiVersion: client.authentication.k8s.io/v1beta1, command: plugin, provideClusterInfo: false}",
                Ok(PLUGIN),
            ),
        ]
    }

    #[test]
    fn exec_plugin_rules() {
        let (dir, config) = kubeconfig_dir(&[]);
        let info = json!({"server": "https://k:6443"});
        for (rule, yaml, want) in rows() {
            let exec: Exec = entry(yaml, dir.path());
            let asked = std::cell::Cell::new(false);
            let got = super::config(&exec, &Origin::new(&config, "user", "u"), || {
                asked.set(true);
                info.clone()
            });
            match (got, want) {
                (Ok(got), Ok(want)) => {
                    let command = want
                        .command
                        .replace("$DIR", &dir.path().display().to_string());
                    assert_eq!(got.command, command, "{rule}: command");
                    assert_eq!(got.interactive_mode, want.mode, "{rule}: interactiveMode");
                    assert_eq!(got.args, want.args, "{rule}: args");
                    let env: Vec<(&str, &str)> = got
                        .env
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.expose().as_str()))
                        .collect();
                    assert_eq!(env, want.env, "{rule}: env");
                    assert_eq!(
                        got.install_hint.as_deref(),
                        want.install_hint,
                        "{rule}: hint"
                    );
                    assert_eq!(
                        got.cluster_info,
                        want.cluster_info.then(|| info.clone()),
                        "{rule}: cluster info"
                    );
                    assert_eq!(asked.get(), want.cluster_info, "{rule}: cluster info asked");
                    assert!(
                        got.api_version
                            .starts_with("client.authentication.k8s.io/v1")
                    );
                }
                (Err(err), Err((field, needle))) => {
                    assert_field_error(rule, &err, &config, field, needle);
                }
                (got, want) => panic!("{rule}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn cluster_info_rules() {
        // (rule, cluster entry, CA as resolved, spec.cluster)
        let rows: Vec<(&str, &str, Option<&[u8]>, serde_json::Value)> = vec![
            (
                "the server as written, trailing slash and all",
                "{server: 'https://k:6443/'}",
                None,
                json!({"server": "https://k:6443/"}),
            ),
            (
                "a cluster without server gives an empty one",
                "{}",
                None,
                json!({"server": ""}),
            ),
            (
                "the CA, from the file or the data, as base64 data",
                "{server: 'https://k', certificate-authority: ca.crt}",
                Some(b"CA-FILE"),
                json!({"server": "https://k", "certificate-authority-data": "Q0EtRklMRQ=="}),
            ),
            (
                "tls-server-name, insecure-skip-tls-verify and proxy-url are carried",
                "{server: 'https://k', tls-server-name: n, insecure-skip-tls-verify: true, proxy-url: 'http://p:3128'}",
                None,
                json!({"server": "https://k", "tls-server-name": "n", "insecure-skip-tls-verify": true, "proxy-url": "http://p:3128"}),
            ),
            (
                "insecure-skip-tls-verify: false is left out",
                "{server: 'https://k', insecure-skip-tls-verify: false}",
                None,
                json!({"server": "https://k"}),
            ),
            (
                "the exec extension is the plugin's config; other extensions are not passed",
                "{server: 'https://k', extensions: [{name: other, extension: {x: 1}}, {name: client.authentication.k8s.io/exec, extension: {audience: a}}]}",
                None,
                json!({"server": "https://k", "config": {"audience": "a"}}),
            ),
            (
                "an exec extension without a value gives no config",
                "{server: 'https://k', extensions: [{name: client.authentication.k8s.io/exec}]}",
                None,
                json!({"server": "https://k"}),
            ),
        ];
        let (dir, _) = kubeconfig_dir(&[]);
        for (rule, yaml, ca, want) in rows {
            let cluster: Cluster = entry(yaml, dir.path());
            assert_eq!(cluster_info(&cluster, ca), want, "{rule}");
        }
    }
}

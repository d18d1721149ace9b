//! Kubeconfig files with client-go's semantics: the `KUBECONFIG` path list, first-wins
//! merging, `--context`, relative paths, and the resolution of one context into a
//! [`ClusterConfig`].
//!
//! `kubectl config view --minify --raw` is the reference for every rule here; the tests
//! in `tests/kubeconfig_vs_kubectl.rs` compare the two on the shapes in `fixtures/kubeconfigs/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use super::{
    AuthConfig, ClusterConfig, ConfigSource, ExecConfig, ExecInteractiveMode, Identity, ServerUrl,
    TlsConfig,
};
use crate::secret::Secret;

/// Why a kubeconfig could not be loaded or resolved. Each variant names the file, and
/// where it applies the entry and field, but never a secret.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// A file in the path list could not be read (other than not existing).
    #[error("cannot read kubeconfig {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file is neither valid YAML nor JSON of the kubeconfig shape.
    #[error("kubeconfig {path} does not parse: {message}")]
    Parse { path: PathBuf, message: String },
    /// None of the files in the path list exists.
    #[error("no kubeconfig file found at {paths}")]
    NoFile { paths: String },
    /// Neither `--context` nor `current-context` names a context.
    #[error(
        "kubeconfig {files}: no context chosen: current-context is not set and --context was not given"
    )]
    NoContext { files: String },
    /// A context, cluster or user named somewhere is not defined in any file.
    #[error("kubeconfig {files}: {kind} {name:?} is not defined (referenced by {referenced_by})")]
    Missing {
        files: String,
        kind: &'static str,
        name: String,
        referenced_by: String,
    },
    /// A field has a value that cannot be used.
    #[error("kubeconfig {file}: {entry}: field `{field}`: {message}")]
    Field {
        file: PathBuf,
        entry: String,
        field: &'static str,
        message: String,
    },
}

// ---------------------------------------------------------------------------------------
// The file format. Only the fields client-go uses for a connection; unknown fields
// (extensions, preferences) are ignored by serde.

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    clusters: Option<Vec<Named<Cluster>>>,
    #[serde(default)]
    users: Option<Vec<NamedUser>>,
    #[serde(default)]
    contexts: Option<Vec<Named<Context>>>,
    #[serde(default, rename = "current-context")]
    current_context: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "context")]
    #[serde(default = "Option::default")]
    value: Option<T>,
}

#[derive(Debug, Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: Option<User>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    server: Option<String>,
    tls_server_name: Option<String>,
    insecure_skip_tls_verify: Option<bool>,
    certificate_authority: Option<String>,
    certificate_authority_data: Option<String>,
    proxy_url: Option<String>,
    #[serde(default)]
    extensions: Option<Vec<NamedExtension>>,
}

#[derive(Debug, Clone, Deserialize)]
struct NamedExtension {
    name: String,
    #[serde(default)]
    extension: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Context {
    cluster: Option<String>,
    user: Option<String>,
    namespace: Option<String>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct User {
    client_certificate: Option<String>,
    client_certificate_data: Option<String>,
    client_key: Option<String>,
    client_key_data: Option<String>,
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<String>,
    username: Option<String>,
    password: Option<String>,
    #[serde(default)]
    exec: Option<Exec>,
    #[serde(default, rename = "auth-provider")]
    auth_provider: Option<serde_json::Value>,
}

// Hand-written so that a token or password in a kubeconfig can never reach a log line.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User").finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Exec {
    api_version: Option<String>,
    command: Option<String>,
    #[serde(default)]
    args: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<ExecEnv>>,
    #[serde(default)]
    provide_cluster_info: Option<bool>,
    interactive_mode: Option<String>,
    install_hint: Option<String>,
}

#[derive(Clone, Deserialize)]
struct ExecEnv {
    name: String,
    #[serde(default)]
    value: String,
}

// Plugin environment values can be credentials (AWS keys): only the name is printed.
impl std::fmt::Debug for ExecEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecEnv")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------
// Loading and merging.

/// Entries merged from a path list, each remembering the file that defined it so that
/// relative paths resolve against that file's directory and errors can name it.
#[derive(Debug, Default)]
pub struct Merged {
    files: Vec<PathBuf>,
    clusters: HashMap<String, (PathBuf, Cluster)>,
    users: HashMap<String, (PathBuf, User)>,
    contexts: HashMap<String, (PathBuf, Context)>,
    current_context: Option<String>,
}

/// Splits a `KUBECONFIG` value into paths: `:`-separated, empty entries skipped.
pub fn split_path_list(value: &str) -> Vec<PathBuf> {
    std::env::split_paths(value)
        .filter(|p| !p.as_os_str().is_empty())
        .collect()
}

/// Loads and merges the files of a path list, client-go's way: for every named cluster,
/// user and context, and for `current-context`, the first file that sets it wins; entries
/// are never merged field by field. A file that does not exist is skipped; a file that
/// does not parse is an error naming it.
pub fn load(paths: &[PathBuf]) -> Result<Merged, KubeconfigError> {
    let mut merged = Merged::default();
    for path in paths {
        let text = match crate::files::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(KubeconfigError::Read {
                    path: path.clone(),
                    source,
                });
            }
        };
        let file = parse(path, &text)?;
        merged.add(path, file)?;
    }
    if merged.files.is_empty() {
        return Err(KubeconfigError::NoFile {
            paths: display_list(paths),
        });
    }
    Ok(merged)
}

/// Parses and merges one file's bytes as [`load`] would (for tests and fuzzing: `path`
/// only names the file in errors and anchors relative paths).
pub fn load_bytes(path: &Path, text: &[u8]) -> Result<Merged, KubeconfigError> {
    let mut merged = Merged::default();
    merged.add(path, parse(path, text)?)?;
    Ok(merged)
}

fn parse(path: &Path, text: &[u8]) -> Result<File, KubeconfigError> {
    let parse_error = |message: String| KubeconfigError::Parse {
        path: path.to_path_buf(),
        message,
    };
    let text = std::str::from_utf8(text).map_err(|e| parse_error(format!("not UTF-8: {e}")))?;
    if text.trim().is_empty() {
        // client-go treats an empty file as an empty config.
        return Ok(File::default());
    }
    serde_saphyr::from_str::<File>(text).map_err(|e| parse_error(first_line(&e.to_string())))
}

/// YAML errors can quote the offending line, which may hold a token: keep the first line
/// (position and kind) only.
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_string()
}

impl Merged {
    fn add(&mut self, path: &Path, file: File) -> Result<(), KubeconfigError> {
        // kubectl rejects a file that names two entries alike; its message prints the
        // entries (tokens included), so ours names only the kind and the name.
        let duplicate = |kind: &str, names: &mut Vec<String>| {
            names.sort();
            match names.windows(2).find(|w| w[0] == w[1]) {
                Some(w) => Err(KubeconfigError::Parse {
                    path: path.to_path_buf(),
                    message: format!(
                        "duplicate {kind} {:?}: a name may appear once in a file",
                        w[0]
                    ),
                }),
                None => Ok(()),
            }
        };
        let names = |list: Option<Vec<String>>| list.unwrap_or_default();
        duplicate(
            "cluster",
            &mut names(
                file.clusters
                    .as_ref()
                    .map(|l| l.iter().map(|c| c.name.clone()).collect()),
            ),
        )?;
        duplicate(
            "user",
            &mut names(
                file.users
                    .as_ref()
                    .map(|l| l.iter().map(|u| u.name.clone()).collect()),
            ),
        )?;
        duplicate(
            "context",
            &mut names(
                file.contexts
                    .as_ref()
                    .map(|l| l.iter().map(|c| c.name.clone()).collect()),
            ),
        )?;
        self.files.push(path.to_path_buf());
        for c in file.clusters.unwrap_or_default() {
            self.clusters
                .entry(c.name)
                .or_insert_with(|| (path.to_path_buf(), c.value.unwrap_or_default()));
        }
        for u in file.users.unwrap_or_default() {
            self.users
                .entry(u.name)
                .or_insert_with(|| (path.to_path_buf(), u.user.unwrap_or_default()));
        }
        for c in file.contexts.unwrap_or_default() {
            self.contexts
                .entry(c.name)
                .or_insert_with(|| (path.to_path_buf(), c.value.unwrap_or_default()));
        }
        if self.current_context.is_none() {
            self.current_context = file.current_context.filter(|c| !c.is_empty());
        }
        Ok(())
    }

    /// Resolves one context (`context`, else `current-context`) into a connection.
    pub fn resolve(&self, context: Option<&str>) -> Result<ClusterConfig, KubeconfigError> {
        let files = display_list(&self.files);
        let context_name = context
            .filter(|c| !c.is_empty())
            .or(self.current_context.as_deref())
            .ok_or_else(|| KubeconfigError::NoContext {
                files: files.clone(),
            })?;
        let referenced_by = if context.is_some() {
            "--context".to_string()
        } else {
            "current-context".to_string()
        };
        let (context_file, ctx) =
            self.contexts
                .get(context_name)
                .ok_or_else(|| KubeconfigError::Missing {
                    files: files.clone(),
                    kind: "context",
                    name: context_name.to_string(),
                    referenced_by,
                })?;
        let in_context = format!("context {context_name:?}");
        let cluster_name = ctx.cluster.clone().unwrap_or_default();
        let (cluster_file, cluster) =
            self.clusters
                .get(&cluster_name)
                .ok_or_else(|| KubeconfigError::Missing {
                    files: files.clone(),
                    kind: "cluster",
                    name: cluster_name.clone(),
                    referenced_by: in_context.clone(),
                })?;
        // A context without a user is anonymous, as in client-go.
        let user_name = ctx.user.clone().unwrap_or_default();
        let (user_file, user) = match self.users.get(&user_name) {
            Some((file, user)) => (file.clone(), user.clone()),
            None if user_name.is_empty() => (context_file.clone(), User::default()),
            None => {
                return Err(KubeconfigError::Missing {
                    files,
                    kind: "user",
                    name: user_name,
                    referenced_by: in_context,
                });
            }
        };

        let cluster_entry = format!("cluster {cluster_name:?}");
        let field_error = |file: &Path, entry: &str, field: &'static str, message: String| {
            KubeconfigError::Field {
                file: file.to_path_buf(),
                entry: entry.to_string(),
                field,
                message,
            }
        };
        let server_text = cluster.server.as_deref().unwrap_or_default();
        if server_text.is_empty() {
            return Err(field_error(
                cluster_file,
                &cluster_entry,
                "server",
                "is empty".into(),
            ));
        }
        let server = ServerUrl::parse(server_text)
            .map_err(|m| field_error(cluster_file, &cluster_entry, "server", m))?;

        let ca_pem = data_or_file(
            cluster_file,
            &cluster_entry,
            (
                "certificate-authority-data",
                &cluster.certificate_authority_data,
            ),
            ("certificate-authority", &cluster.certificate_authority),
        )?;
        let insecure = cluster.insecure_skip_tls_verify.unwrap_or(false);
        if insecure && ca_pem.is_some() {
            // kubectl refuses this combination too.
            return Err(field_error(
                cluster_file,
                &cluster_entry,
                "insecure-skip-tls-verify",
                "cannot be combined with a certificate authority: remove one of them".into(),
            ));
        }

        let user_entry = format!("user {user_name:?}");
        let cert = data_or_file(
            &user_file,
            &user_entry,
            ("client-certificate-data", &user.client_certificate_data),
            ("client-certificate", &user.client_certificate),
        )?;
        let key = data_or_file(
            &user_file,
            &user_entry,
            ("client-key-data", &user.client_key_data),
            ("client-key", &user.client_key),
        )?;
        let identity = match (cert, key) {
            (Some(cert_pem), Some(key_pem)) => Some(Identity {
                cert_pem,
                key_pem: Secret::new(key_pem),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(field_error(
                    &user_file,
                    &user_entry,
                    "client-key",
                    "is missing: a client certificate needs its key".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(field_error(
                    &user_file,
                    &user_entry,
                    "client-certificate",
                    "is missing: a client key needs its certificate".into(),
                ));
            }
        };

        if user.auth_provider.is_some() {
            return Err(field_error(
                &user_file,
                &user_entry,
                "auth-provider",
                "auth-provider plugins are not supported (client-go removed the gcp and azure \
                 ones in Kubernetes 1.26); use the exec credential plugin that replaces it \
                 (gke-gcloud-auth-plugin for GKE, kubelogin for AKS, `aws eks get-token` for \
                 EKS, kubelogin/oidc-login for OIDC)"
                    .into(),
            ));
        }

        let has_token = user.token.as_deref().is_some_and(|t| !t.is_empty())
            || user.token_file.as_deref().is_some_and(|t| !t.is_empty());
        let has_basic = user.username.as_deref().is_some_and(|u| !u.is_empty())
            || user.password.as_deref().is_some_and(|p| !p.is_empty());
        if has_token && has_basic {
            // client-go: "more than one authentication method found".
            return Err(field_error(
                &user_file,
                &user_entry,
                "token",
                "cannot be combined with username/password: keep one authentication method".into(),
            ));
        }
        // client-go runs an exec plugin only when the user has no other credential.
        let exec = user
            .exec
            .as_ref()
            .filter(|_| !has_token && !has_basic && identity.is_none());
        let auth = if let Some(exec) = exec {
            let ca = ca_pem.as_deref();
            AuthConfig::Exec(self.exec_config(&user_file, &user_entry, exec, cluster, ca)?)
        } else if let Some(token_file) = user.token_file.as_deref().filter(|t| !t.is_empty()) {
            // tokenFile wins over token, as in client-go's rest.Config.
            AuthConfig::TokenFile(resolve_path(&user_file, token_file))
        } else if let Some(token) = user.token.as_deref().filter(|t| !t.is_empty()) {
            AuthConfig::Token(Secret::new(token.to_string()))
        } else if let Some(username) = user.username.as_deref().filter(|u| !u.is_empty()) {
            AuthConfig::Basic {
                username: username.to_string(),
                password: Secret::new(user.password.clone().unwrap_or_default()),
            }
        } else {
            AuthConfig::None
        };

        Ok(ClusterConfig {
            source: ConfigSource::Kubeconfig {
                files: self.files.clone(),
                context: context_name.to_string(),
            },
            server,
            tls: TlsConfig {
                ca_pem,
                insecure_skip_verify: insecure,
                server_name: cluster.tls_server_name.clone().filter(|s| !s.is_empty()),
                identity,
            },
            auth,
            namespace: ctx.namespace.clone().filter(|n| !n.is_empty()),
            proxy_url: cluster.proxy_url.clone().filter(|p| !p.is_empty()),
        })
    }

    fn exec_config(
        &self,
        file: &Path,
        entry: &str,
        exec: &Exec,
        cluster: &Cluster,
        ca_pem: Option<&[u8]>,
    ) -> Result<ExecConfig, KubeconfigError> {
        let field = |field: &'static str, message: String| KubeconfigError::Field {
            file: file.to_path_buf(),
            entry: entry.to_string(),
            field,
            message,
        };
        let api_version = exec.api_version.clone().unwrap_or_default();
        if !matches!(
            api_version.as_str(),
            "client.authentication.k8s.io/v1" | "client.authentication.k8s.io/v1beta1"
        ) {
            return Err(field(
                "exec.apiVersion",
                format!(
                    "{api_version:?} is not supported: use client.authentication.k8s.io/v1 or v1beta1"
                ),
            ));
        }
        let command = exec.command.clone().unwrap_or_default();
        if command.is_empty() {
            return Err(field("exec.command", "is empty".into()));
        }
        // client-go resolves a command against the kubeconfig's directory only when it
        // is a relative path with a separator ("./bin/plugin"); a bare name is looked up
        // on PATH.
        let command = if command.contains(std::path::MAIN_SEPARATOR) {
            resolve_path(file, &command).to_string_lossy().into_owned()
        } else {
            command
        };
        let interactive_mode = match exec.interactive_mode.as_deref() {
            None | Some("") => {
                if api_version.ends_with("/v1") {
                    return Err(field(
                        "exec.interactiveMode",
                        "is required by client.authentication.k8s.io/v1 (Never, IfAvailable or Always)"
                            .into(),
                    ));
                }
                ExecInteractiveMode::IfAvailable
            }
            Some("Never") => ExecInteractiveMode::Never,
            Some("IfAvailable") => ExecInteractiveMode::IfAvailable,
            Some("Always") => ExecInteractiveMode::Always,
            Some(other) => {
                return Err(field(
                    "exec.interactiveMode",
                    format!("{other:?} is not one of Never, IfAvailable, Always"),
                ));
            }
        };
        let provide_cluster_info = exec.provide_cluster_info.unwrap_or(false);
        let cluster_info = provide_cluster_info.then(|| {
            // As kubectl does: the server as written, the CA (file or data) as base64.
            let mut info =
                serde_json::json!({ "server": cluster.server.clone().unwrap_or_default() });
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
            // The per-cluster plugin configuration lives in this named extension.
            if let Some(config) = cluster
                .extensions
                .iter()
                .flatten()
                .find(|e| e.name == "client.authentication.k8s.io/exec")
                .and_then(|e| e.extension.clone())
            {
                info["config"] = config;
            }
            info
        });
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
}

/// `x-data` (base64) or `x` (a path, relative to the kubeconfig's directory); both at
/// once is an error, as kubectl's validation says.
fn data_or_file(
    file: &Path,
    entry: &str,
    (data_field, data): (&'static str, &Option<String>),
    (path_field, path): (&'static str, &Option<String>),
) -> Result<Option<Vec<u8>>, KubeconfigError> {
    if data.as_deref().is_some_and(|d| !d.is_empty())
        && path.as_deref().is_some_and(|p| !p.is_empty())
    {
        return Err(KubeconfigError::Field {
            file: file.to_path_buf(),
            entry: entry.to_string(),
            field: data_field,
            message: format!("cannot be combined with `{path_field}`: keep one of them"),
        });
    }
    if let Some(data) = data.as_deref().filter(|d| !d.is_empty()) {
        let compact: String = data.split_whitespace().collect();
        return base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map(Some)
            .map_err(|e| KubeconfigError::Field {
                file: file.to_path_buf(),
                entry: entry.to_string(),
                field: data_field,
                message: format!("is not valid base64: {e}"),
            });
    }
    if let Some(path) = path.as_deref().filter(|p| !p.is_empty()) {
        let resolved = resolve_path(file, path);
        return crate::files::read(&resolved)
            .map(Some)
            .map_err(|e| KubeconfigError::Field {
                file: file.to_path_buf(),
                entry: entry.to_string(),
                field: path_field,
                message: format!("cannot read {}: {e}", resolved.display()),
            });
    }
    Ok(None)
}

/// A path from a kubeconfig is relative to the directory of the file that named it.
fn resolve_path(kubeconfig: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let dir = kubeconfig.parent().unwrap_or_else(|| Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let joined = dir.join(path);
    std::path::absolute(&joined).unwrap_or(joined)
}

fn display_list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

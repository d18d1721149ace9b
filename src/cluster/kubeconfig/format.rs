//! The file format. Only the fields client-go uses for a connection; unknown fields
//! (extensions other than the exec one, preferences) are ignored by serde.
//!
//! Secrets (tokens, passwords, plugin environment values) can never reach a log line:
//! [`User`] and [`ExecEnv`] print no values in `Debug`.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub(super) struct File {
    #[serde(default)]
    pub(super) clusters: Option<Vec<Named<Cluster>>>,
    #[serde(default)]
    pub(super) users: Option<Vec<NamedUser>>,
    #[serde(default)]
    pub(super) contexts: Option<Vec<Named<Context>>>,
    #[serde(default, rename = "current-context")]
    pub(super) current_context: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Named<T> {
    pub(super) name: String,
    #[serde(alias = "cluster", alias = "context")]
    #[serde(default = "Option::default")]
    pub(super) value: Option<T>,
}

#[derive(Debug, Deserialize)]
pub(super) struct NamedUser {
    pub(super) name: String,
    #[serde(default)]
    pub(super) user: Option<User>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct Cluster {
    pub(super) server: Option<String>,
    pub(super) tls_server_name: Option<String>,
    pub(super) insecure_skip_tls_verify: Option<bool>,
    pub(super) certificate_authority: Option<String>,
    pub(super) certificate_authority_data: Option<String>,
    pub(super) proxy_url: Option<String>,
    #[serde(default)]
    pub(super) extensions: Option<Vec<NamedExtension>>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct NamedExtension {
    pub(super) name: String,
    #[serde(default)]
    pub(super) extension: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct Context {
    pub(super) cluster: Option<String>,
    pub(super) user: Option<String>,
    pub(super) namespace: Option<String>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct User {
    pub(super) client_certificate: Option<String>,
    pub(super) client_certificate_data: Option<String>,
    pub(super) client_key: Option<String>,
    pub(super) client_key_data: Option<String>,
    pub(super) token: Option<String>,
    #[serde(rename = "tokenFile")]
    pub(super) token_file: Option<String>,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    #[serde(default)]
    pub(super) exec: Option<Exec>,
    #[serde(default, rename = "auth-provider")]
    pub(super) auth_provider: Option<serde_json::Value>,
}

/// The user of a context that names none: no credential at all.
pub(super) static ANONYMOUS: User = User {
    client_certificate: None,
    client_certificate_data: None,
    client_key: None,
    client_key_data: None,
    token: None,
    token_file: None,
    username: None,
    password: None,
    exec: None,
    auth_provider: None,
};

// Hand-written so that a token or password in a kubeconfig can never reach a log line.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User").finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Exec {
    pub(super) api_version: Option<String>,
    pub(super) command: Option<String>,
    #[serde(default)]
    pub(super) args: Option<Vec<String>>,
    #[serde(default)]
    pub(super) env: Option<Vec<ExecEnv>>,
    #[serde(default)]
    pub(super) provide_cluster_info: Option<bool>,
    pub(super) interactive_mode: Option<String>,
    pub(super) install_hint: Option<String>,
}

#[derive(Clone, Deserialize)]
pub(super) struct ExecEnv {
    pub(super) name: String,
    #[serde(default)]
    pub(super) value: String,
}

// Plugin environment values can be credentials (AWS keys): only the name is printed.
impl std::fmt::Debug for ExecEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecEnv")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

//! The auth resolver: how requests of a kubeconfig's user entry authenticate. `tokenFile`
//! or `token`, `username`/`password`, or an exec plugin ([`super::exec`]); an
//! `auth-provider` is refused, pointing to the exec plugin that replaced it.

use super::KubeconfigError;
use super::exec;
use super::format::User;
use super::origin::Origin;
use crate::cluster::AuthConfig;
use crate::secret::Secret;

/// Resolves the authentication of a user entry; `at` anchors its relative paths and
/// names it in errors. `has_identity`: the user presents a client certificate (see
/// [`super::identity`]). `cluster_info` is the cluster as an exec plugin sees it, asked
/// for only when the plugin wants it.
///
/// Precedence, as in client-go: an exec plugin runs only when the user has no other
/// credential (token, basic auth or certificate); `tokenFile` wins over `token`
/// (client-go re-reads the file for every request, the token being only its fallback);
/// a token with basic auth is refused.
pub(super) fn resolve(
    user: &User,
    at: &Origin,
    has_identity: bool,
    cluster_info: impl FnOnce() -> serde_json::Value,
) -> Result<AuthConfig, KubeconfigError> {
    if user.auth_provider.is_some() {
        return Err(at.error(
            "auth-provider",
            "auth-provider plugins are not supported (client-go removed the gcp and azure \
             ones in Kubernetes 1.26); use the exec credential plugin that replaces it \
             (gke-gcloud-auth-plugin for GKE, kubelogin for AKS, `aws eks get-token` for \
             EKS, kubelogin/oidc-login for OIDC)",
        ));
    }

    let has_token = set(&user.token).is_some() || set(&user.token_file).is_some();
    let has_basic = set(&user.username).is_some() || set(&user.password).is_some();
    if has_token && has_basic {
        // client-go: "more than one authentication method found".
        return Err(at.error(
            "token",
            "cannot be combined with username/password: keep one authentication method",
        ));
    }

    // client-go runs an exec plugin only when the user has no other credential.
    if let Some(plugin) = user.exec.as_ref()
        && !has_token
        && !has_basic
        && !has_identity
    {
        return exec::config(plugin, at, cluster_info).map(AuthConfig::Exec);
    }
    Ok(if let Some(token_file) = set(&user.token_file) {
        AuthConfig::TokenFile(at.path(token_file))
    } else if let Some(token) = set(&user.token) {
        AuthConfig::Token(Secret::new(token.to_string()))
    } else if let Some(username) = set(&user.username) {
        AuthConfig::Basic {
            username: username.to_string(),
            password: Secret::new(user.password.clone().unwrap_or_default()),
        }
    } else {
        AuthConfig::None
    })
}

/// A field's value, if set: an empty one is unset, as in client-go.
fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::kubeconfig::testing::{assert_field_error, entry, kubeconfig_dir};

    /// What a row expects: the kind of [`AuthConfig`] and its value (a `TokenFile` path
    /// starting with `$DIR` is under the kubeconfig's directory).
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Want {
        Anonymous,
        Token(&'static str),
        TokenFile(&'static str),
        Basic(&'static str, &'static str),
        /// An exec plugin, by command.
        Exec(&'static str),
        /// Refused: the field named and a phrase of the message.
        Refused(&'static str, &'static str),
    }
    use Want::*;

    const EXEC: &str = "exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: plugin}";

    /// (rule, user entry, whether it has a client certificate, the result). `EXEC` in an
    /// entry is replaced by an exec plugin whose command is `plugin`.
    type Row = (&'static str, &'static str, bool, Want);

    fn rows() -> Vec<Row> {
        vec![
            ("no credential: anonymous", "{}", false, Anonymous),
            (
                "a client certificate alone: no request credential",
                "{}",
                true,
                Anonymous,
            ),
            ("a token", "{token: abc}", false, Token("abc")),
            (
                "a token beside a client certificate",
                "{token: abc}",
                true,
                Token("abc"),
            ),
            ("an empty token is unset", "{token: ''}", false, Anonymous),
            (
                "a relative tokenFile resolves against the kubeconfig's directory",
                "{tokenFile: tokens/sa.token}",
                false,
                TokenFile("$DIR/tokens/sa.token"),
            ),
            (
                "an absolute tokenFile is kept",
                "{tokenFile: /var/run/sa.token}",
                false,
                TokenFile("/var/run/sa.token"),
            ),
            (
                "a tokenFile is not read here: it is re-read when used",
                "{tokenFile: tokens/missing.token}",
                false,
                TokenFile("$DIR/tokens/missing.token"),
            ),
            (
                "tokenFile wins over token, as in client-go (the file is re-read per request)",
                "{token: abc, tokenFile: tokens/sa.token}",
                false,
                TokenFile("$DIR/tokens/sa.token"),
            ),
            (
                "an empty tokenFile leaves the token",
                "{token: abc, tokenFile: ''}",
                false,
                Token("abc"),
            ),
            (
                "username and password: basic auth",
                "{username: admin, password: 'p@ss:w0rd'}",
                false,
                Basic("admin", "p@ss:w0rd"),
            ),
            (
                "a username without password: basic auth with an empty password",
                "{username: admin}",
                false,
                Basic("admin", ""),
            ),
            (
                "a password without username sends nothing (client-go's HasBasicAuth looks at the username)",
                "{password: pw}",
                false,
                Anonymous,
            ),
            (
                "a token with basic auth is refused, as kubectl does",
                "{token: abc, username: admin, password: pw}",
                false,
                Refused("token", "username/password"),
            ),
            (
                "a token with a password alone is refused, as kubectl does",
                "{token: abc, password: pw}",
                false,
                Refused("token", "username/password"),
            ),
            (
                "a tokenFile with a username is refused, as kubectl does",
                "{tokenFile: tokens/sa.token, username: admin}",
                false,
                Refused("token", "username/password"),
            ),
            (
                // kubectl sends the file's token: a password without username is no basic
                // auth to client-go, and its validation counts `token`, not `tokenFile`.
                "a tokenFile with a password alone is refused (kubectl uses the tokenFile)",
                "{tokenFile: tokens/sa.token, password: pw}",
                false,
                Refused("token", "username/password"),
            ),
            (
                "auth-provider is refused, pointing to exec plugins",
                "{auth-provider: {name: oidc, config: {id-token: abc}}}",
                false,
                Refused("auth-provider", "exec credential plugin"),
            ),
            (
                "auth-provider is refused beside a token",
                "{token: abc, auth-provider: {name: gcp}}",
                false,
                Refused("auth-provider", "gke-gcloud-auth-plugin"),
            ),
            (
                "auth-provider is refused before token and basic auth are compared",
                "{token: abc, username: admin, auth-provider: {name: gcp}}",
                false,
                Refused("auth-provider", "not supported"),
            ),
            (
                "an exec plugin when the user has no other credential",
                "{EXEC}",
                false,
                Exec("plugin"),
            ),
            (
                "a token wins over an exec plugin (client-go does not run it)",
                "{token: abc, EXEC}",
                false,
                Token("abc"),
            ),
            (
                "a tokenFile wins over an exec plugin",
                "{tokenFile: tokens/sa.token, EXEC}",
                false,
                TokenFile("$DIR/tokens/sa.token"),
            ),
            (
                "basic auth wins over an exec plugin",
                "{username: admin, password: pw, EXEC}",
                false,
                Basic("admin", "pw"),
            ),
            (
                "a client certificate wins over an exec plugin",
                "{EXEC}",
                true,
                Anonymous,
            ),
            (
                // kubectl runs the plugin: to client-go a password alone is no basic auth.
                "a password alone beside an exec plugin: anonymous (kubectl runs the plugin)",
                "{password: pw, EXEC}",
                false,
                Anonymous,
            ),
            (
                "an exec plugin that does not run is not checked",
                "{token: abc, exec: {apiVersion: client.authentication.k8s.io/v1alpha1}}",
                false,
                Token("abc"),
            ),
            (
                "the errors of an exec plugin that runs are reported",
                "{exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: plugin}}",
                false,
                Refused("exec.apiVersion", "v1alpha1"),
            ),
        ]
    }

    #[test]
    fn auth_resolver_rules() {
        let (dir, config) = kubeconfig_dir(&[("tokens/sa.token", "from-the-file")]);
        let under_dir = |path: &str| path.replace("$DIR", &dir.path().display().to_string());
        for (rule, yaml, has_identity, want) in rows() {
            let user: User = entry(&yaml.replace("EXEC", EXEC), dir.path());
            let info = || serde_json::json!({"server": "https://k:6443"});
            let got = resolve(
                &user,
                &Origin::new(&config, "user", "u"),
                has_identity,
                info,
            );
            match (&got, want) {
                (Ok(AuthConfig::None), Anonymous) => {}
                (Ok(AuthConfig::Token(token)), Token(want)) => {
                    assert!(token.expose() == want, "{rule}: the token differs")
                }
                (Ok(AuthConfig::TokenFile(path)), TokenFile(want)) => {
                    assert_eq!(path.display().to_string(), under_dir(want), "{rule}")
                }
                (Ok(AuthConfig::Basic { username, password }), Basic(user, pass)) => {
                    assert_eq!(username, user, "{rule}: username");
                    assert!(password.expose() == pass, "{rule}: the password differs");
                }
                (Ok(AuthConfig::Exec(exec)), Exec(command)) => {
                    assert_eq!(exec.command, command, "{rule}: command")
                }
                (Err(err), Refused(field, needle)) => {
                    assert_field_error(rule, err, &config, field, needle)
                }
                (Ok(auth), want) => {
                    panic!(
                        "{rule}: resolved {}, want {want:?}",
                        auth.kind(has_identity)
                    )
                }
                (Err(err), want) => panic!("{rule}: {err}, want {want:?}"),
            }
        }
    }

    #[test]
    fn errors_carry_no_secret() {
        let (dir, config) = kubeconfig_dir(&[]);
        for yaml in [
            "{token: sekrit-token-4b1d9e, username: admin, password: sekrit-password-77c0}",
            "{auth-provider: {name: oidc, config: {id-token: sekrit-token-4b1d9e}}}",
            "{exec: {apiVersion: v1, command: p, env: [{name: K, value: sekrit-token-4b1d9e}]}}",
        ] {
            let user: User = entry(yaml, dir.path());
            let err = resolve(&user, &Origin::new(&config, "user", "u"), false, || {
                serde_json::Value::Null
            })
            .unwrap_err();
            let text = format!("{err} {err:?} {user:?}");
            assert!(!text.contains("sekrit"), "{text}");
        }
    }
}

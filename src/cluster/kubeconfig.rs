//! Kubeconfig files with client-go's semantics: the `KUBECONFIG` path list, first-wins
//! merging, `--context`, relative paths, and the resolution of one context into a
//! [`ClusterConfig`].
//!
//! [`Merged::resolve`] picks the context, then hands each entry to a resolver, a function
//! of the entry and of where it was defined (`origin`: the file, for relative paths and
//! errors), with table tests of its own:
//!
//! - `tls`: the cluster → server URL, certificate authority, `insecure-skip-tls-verify`,
//!   `tls-server-name` (and the unused `proxy-url`);
//! - `identity`: the user → its client certificate and key, both or neither;
//! - `auth`: the user → token, token file, basic auth or exec plugin (`exec`), and
//!   the refusals (auth-provider, token with basic auth).
//!
//! `kubectl config view --minify --raw` is the reference for every rule here; the tests
//! in `tests/kubeconfig_vs_kubectl.rs` compare the two on the shapes in `fixtures/kubeconfigs/`,
//! and `tests/auth_vs_kubectl.rs` compares the credentials sent.

mod auth;
mod exec;
mod format;
mod identity;
mod origin;
#[cfg(test)]
mod testing;
mod tls;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use self::format::{Cluster, Context, File, User};
use self::origin::Origin;
use super::{ClusterConfig, ConfigSource, TlsConfig};

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

    /// Resolves one context (`context`, else `current-context`) into a connection: the
    /// context is picked, its cluster resolved into TLS settings, its user into a client
    /// certificate and an authentication, and the three assembled.
    pub fn resolve(&self, context: Option<&str>) -> Result<ClusterConfig, KubeconfigError> {
        let chosen = self.pick(context)?;
        let tls = tls::resolve(chosen.cluster, &chosen.cluster_at)?;
        let identity = identity::resolve(chosen.user, &chosen.user_at)?;
        let auth = auth::resolve(chosen.user, &chosen.user_at, identity.is_some(), || {
            exec::cluster_info(chosen.cluster, tls.ca_pem.as_deref())
        })?;
        Ok(ClusterConfig {
            source: ConfigSource::Kubeconfig {
                files: self.files.clone(),
                context: chosen.name.to_string(),
            },
            server: tls.server,
            tls: TlsConfig {
                ca_pem: tls.ca_pem,
                insecure_skip_verify: tls.insecure_skip_verify,
                server_name: tls.server_name,
                identity,
            },
            auth,
            namespace: chosen.context.namespace.clone().filter(|n| !n.is_empty()),
            proxy_url: tls.proxy_url,
        })
    }

    /// The context named by `context` (else `current-context`), and the cluster and the
    /// user it names, each with the file that defined it. A context without a user is
    /// anonymous, as in client-go (its user "defined" by the context's file).
    fn pick<'a>(&'a self, context: Option<&'a str>) -> Result<Chosen<'a>, KubeconfigError> {
        let files = || display_list(&self.files);
        let name = context
            .filter(|c| !c.is_empty())
            .or(self.current_context.as_deref())
            .ok_or_else(|| KubeconfigError::NoContext { files: files() })?;
        let referenced_by = if context.is_some() {
            "--context"
        } else {
            "current-context"
        };
        let missing = |kind, name: &str, referenced_by: String| KubeconfigError::Missing {
            files: files(),
            kind,
            name: name.to_string(),
            referenced_by,
        };
        let (context_file, ctx) = self
            .contexts
            .get(name)
            .ok_or_else(|| missing("context", name, referenced_by.to_string()))?;
        let in_context = || format!("context {name:?}");

        let cluster_name = ctx.cluster.as_deref().unwrap_or_default();
        let (cluster_file, cluster) = self
            .clusters
            .get(cluster_name)
            .ok_or_else(|| missing("cluster", cluster_name, in_context()))?;

        let user_name = ctx.user.as_deref().unwrap_or_default();
        let (user_file, user) = match self.users.get(user_name) {
            Some((file, user)) => (file, user),
            None if user_name.is_empty() => (context_file, &format::ANONYMOUS),
            None => return Err(missing("user", user_name, in_context())),
        };

        Ok(Chosen {
            name,
            context: ctx,
            cluster,
            cluster_at: Origin::new(cluster_file, "cluster", cluster_name),
            user,
            user_at: Origin::new(user_file, "user", user_name),
        })
    }
}

/// A context picked, with the entries it names and where each was defined.
struct Chosen<'a> {
    name: &'a str,
    context: &'a Context,
    cluster: &'a Cluster,
    cluster_at: Origin<'a>,
    user: &'a User,
    user_at: Origin<'a>,
}

fn display_list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two files merged: `a.yaml`, then `b.yaml`.
    fn merged(dir: &Path) -> Merged {
        let a = "
clusters: [{name: k, cluster: {server: 'https://a'}}]
users: [{name: u, user: {token: a}}]
contexts:
- {name: c, context: {cluster: k, user: u, namespace: ns}}
- {name: no-user, context: {cluster: k}}
- {name: no-cluster, context: {user: u}}
- {name: ghost-cluster, context: {cluster: ghost, user: u}}
- {name: ghost-user, context: {cluster: k, user: ghost}}
- {name: cross, context: {cluster: kb, user: ub}}
current-context: c
";
        let b = "
clusters: [{name: kb, cluster: {server: 'https://b'}}, {name: k, cluster: {server: 'https://b-loses'}}]
users: [{name: ub, user: {}}, {name: u, user: {token: b-loses}}]
contexts: [{name: c, context: {cluster: kb}}, {name: only-b, context: {cluster: kb, user: ub}}]
current-context: only-b
";
        let mut merged = Merged::default();
        for (name, text) in [("a.yaml", a), ("b.yaml", b)] {
            let path = dir.join(name);
            merged
                .add(&path, parse(&path, text.as_bytes()).unwrap())
                .unwrap();
        }
        merged
    }

    /// What a row expects of [`Merged::pick`]: the context, and the file and name of its
    /// cluster and user; or the entry missing (kind, name, referenced by).
    type Want = Result<
        (
            &'static str,
            (&'static str, &'static str),
            (&'static str, &'static str),
        ),
        (&'static str, &'static str, &'static str),
    >;

    #[test]
    fn picking_the_context_and_its_entries() {
        let rows: Vec<(&str, Option<&str>, Want)> = vec![
            (
                "current-context without --context; the first file's entries and current-context win",
                None,
                Ok(("c", ("a.yaml", "k"), ("a.yaml", "u"))),
            ),
            (
                "--context wins over current-context; entries come from the file defining them",
                Some("cross"),
                Ok(("cross", ("b.yaml", "kb"), ("b.yaml", "ub"))),
            ),
            (
                "an empty --context is not given",
                Some(""),
                Ok(("c", ("a.yaml", "k"), ("a.yaml", "u"))),
            ),
            (
                "a context without user is anonymous, located in the context's file",
                Some("no-user"),
                Ok(("no-user", ("a.yaml", "k"), ("a.yaml", ""))),
            ),
            (
                "a context that does not exist names --context",
                Some("nope"),
                Err(("context", "nope", "--context")),
            ),
            (
                "a context without cluster names the cluster \"\" missing",
                Some("no-cluster"),
                Err(("cluster", "", "context \"no-cluster\"")),
            ),
            (
                "a cluster that does not exist names the context",
                Some("ghost-cluster"),
                Err(("cluster", "ghost", "context \"ghost-cluster\"")),
            ),
            (
                "a user that does not exist names the context",
                Some("ghost-user"),
                Err(("user", "ghost", "context \"ghost-user\"")),
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let merged = merged(dir.path());
        for (rule, flag, want) in rows {
            match (merged.pick(flag), want) {
                (Ok(chosen), Ok((name, (cluster_file, cluster), (user_file, user)))) => {
                    assert_eq!(chosen.name, name, "{rule}: context");
                    assert_eq!(
                        chosen.cluster_at,
                        Origin::new(&dir.path().join(cluster_file), "cluster", cluster),
                        "{rule}: cluster"
                    );
                    assert_eq!(
                        chosen.user_at,
                        Origin::new(&dir.path().join(user_file), "user", user),
                        "{rule}: user"
                    );
                }
                (
                    Err(KubeconfigError::Missing {
                        files,
                        kind,
                        name,
                        referenced_by,
                    }),
                    Err(want),
                ) => {
                    assert_eq!(
                        (kind, name.as_str(), referenced_by.as_str()),
                        want,
                        "{rule}"
                    );
                    assert!(
                        files.ends_with("b.yaml"),
                        "{rule}: names the files: {files}"
                    );
                }
                (Ok(chosen), Err(want)) => panic!("{rule}: picked {}, want {want:?}", chosen.name),
                (Err(err), want) => panic!("{rule}: {err}, want {want:?}"),
            }
        }
    }

    #[test]
    fn the_anonymous_user_has_no_credential_and_the_namespace_is_the_context_s() {
        let dir = tempfile::tempdir().unwrap();
        let merged = merged(dir.path());
        let chosen = merged.pick(Some("no-user")).unwrap();
        assert!(chosen.user.token.is_none() && chosen.user.exec.is_none());
        let config = merged.resolve(Some("no-user")).unwrap();
        assert_eq!(config.auth, crate::cluster::AuthConfig::None);
        assert_eq!(config.namespace, None);
        assert_eq!(
            merged.resolve(None).unwrap().namespace.as_deref(),
            Some("ns")
        );
    }

    #[test]
    fn no_context_anywhere_is_an_error_naming_the_files() {
        let path = Path::new("/etc/kube/config");
        let merged = load_bytes(
            path,
            b"clusters: [{name: k, cluster: {server: 'https://k'}}]",
        )
        .unwrap();
        let err = merged.resolve(None).unwrap_err();
        assert!(matches!(err, KubeconfigError::NoContext { .. }), "{err:?}");
        assert!(err.to_string().contains("/etc/kube/config"), "{err}");
    }
}

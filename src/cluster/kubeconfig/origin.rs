//! Where an entry of a kubeconfig was defined: the file, whose directory anchors the
//! entry's relative paths and which every error names, and the entry itself
//! (`cluster "kind"`, `user "admin"`). The resolvers take one with the entry they read.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::KubeconfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Origin<'a> {
    file: &'a Path,
    entry: String,
}

impl<'a> Origin<'a> {
    /// The entry `kind name` (`cluster "kind"`) of `file`.
    pub(super) fn new(file: &'a Path, kind: &str, name: &str) -> Self {
        Self {
            file,
            entry: format!("{kind} {name:?}"),
        }
    }

    /// An unusable `field` of this entry, naming the file and the entry. `message` must
    /// not carry the field's value when that can be a secret.
    pub(super) fn error(&self, field: &'static str, message: impl Into<String>) -> KubeconfigError {
        KubeconfigError::Field {
            file: self.file.to_path_buf(),
            entry: self.entry.clone(),
            field,
            message: message.into(),
        }
    }

    /// A path from the kubeconfig: relative to the directory of the file that named it
    /// (the working directory for a file named without one), as client-go resolves it;
    /// but a `..` is left to the filesystem where client-go cleans it away lexically.
    pub(super) fn path(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            return path.to_path_buf();
        }
        let dir = self.file.parent().unwrap_or_else(|| Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let joined = dir.join(path);
        std::path::absolute(&joined).unwrap_or(joined)
    }

    /// `x-data` (base64, whitespace ignored) or `x` (a path, see [`Origin::path`]), each
    /// given as (field name, value); an empty value is unset. Both at once is an error,
    /// as kubectl's validation says ("both specified"), although client-go's `rest.Config`
    /// alone would let the data win.
    pub(super) fn data_or_file(
        &self,
        (data_field, data): (&'static str, &Option<String>),
        (path_field, path): (&'static str, &Option<String>),
    ) -> Result<Option<Vec<u8>>, KubeconfigError> {
        let data = data.as_deref().filter(|d| !d.is_empty());
        let path = path.as_deref().filter(|p| !p.is_empty());
        if data.is_some() && path.is_some() {
            return Err(self.error(
                data_field,
                format!("cannot be combined with `{path_field}`: keep one of them"),
            ));
        }
        if let Some(data) = data {
            let compact: String = data.split_whitespace().collect();
            return base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                .map(Some)
                .map_err(|e| self.error(data_field, format!("is not valid base64: {e}")));
        }
        if let Some(path) = path {
            let resolved = self.path(path);
            return crate::files::read(&resolved).map(Some).map_err(|e| {
                self.error(
                    path_field,
                    format!("cannot read {}: {e}", resolved.display()),
                )
            });
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_against_the_kubeconfig_directory() {
        let cwd = std::env::current_dir().unwrap();
        // (kubeconfig file, path in it, resolved)
        let rows: &[(&str, &str, PathBuf)] = &[
            (
                "/etc/kube/config",
                "certs/ca.crt",
                "/etc/kube/certs/ca.crt".into(),
            ),
            ("/etc/kube/config", "ca.crt", "/etc/kube/ca.crt".into()),
            ("/etc/kube/config", "/pki/ca.crt", "/pki/ca.crt".into()),
            // `..` is kept for the filesystem to resolve. client-go cleans it away
            // lexically (filepath.Join): the two differ only below a symlinked directory.
            (
                "/etc/kube/config",
                "../pki/ca.crt",
                "/etc/kube/../pki/ca.crt".into(),
            ),
            // A kubeconfig named without a directory: the working directory.
            ("config", "ca.crt", cwd.join("ca.crt")),
            ("sub/config", "ca.crt", cwd.join("sub/ca.crt")),
        ];
        for (file, path, want) in rows {
            let origin = Origin::new(Path::new(file), "cluster", "k");
            assert_eq!(&origin.path(path), want, "{file}: {path}");
        }
    }

    #[test]
    fn errors_name_the_file_the_entry_and_the_field() {
        let origin = Origin::new(Path::new("/etc/kube/config"), "user", "admin");
        let err = origin.error("client-key", "is missing");
        assert_eq!(
            err.to_string(),
            r#"kubeconfig /etc/kube/config: user "admin": field `client-key`: is missing"#
        );
    }
}

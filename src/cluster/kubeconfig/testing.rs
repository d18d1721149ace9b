//! What the resolvers' table tests share: entries written as YAML, a kubeconfig
//! directory holding the files they name, and the check of a field error.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::KubeconfigError;

/// A kubeconfig entry (`Cluster`, `User`, `Exec`) from its YAML, with `$DIR` replaced by
/// `dir` (for absolute paths).
pub(super) fn entry<T: DeserializeOwned>(yaml: &str, dir: &Path) -> T {
    let yaml = yaml.replace("$DIR", &dir.display().to_string());
    serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

/// A directory with `files` (relative path, contents) in it, and the path of a
/// kubeconfig `config` in it (not written: the resolvers never read it).
pub(super) fn kubeconfig_dir(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let config = dir.path().join("config");
    (dir, config)
}

/// `err` is a field error naming `file`, the field `field`, and `needle` in its message.
pub(super) fn assert_field_error(
    rule: &str,
    err: &KubeconfigError,
    file: &Path,
    field: &str,
    needle: &str,
) {
    let KubeconfigError::Field {
        file: named,
        field: got,
        message,
        ..
    } = err
    else {
        panic!("{rule}: not a field error: {err}");
    };
    assert_eq!(named, file, "{rule}: the file named");
    assert_eq!(*got, field, "{rule}: the field named ({err})");
    assert!(
        message.contains(needle),
        "{rule}: {needle:?} missing in: {err}"
    );
}

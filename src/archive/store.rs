//! Where archived runs rest: a directory (objects are files written whole, under a
//! temporary name then renamed; directories 0700, files 0600) or an S3-compatible
//! bucket ([`super::s3`]). Both take whole objects by key and never show a partial one.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::s3::S3Store;
pub use super::s3::StoreError;

/// An archive's storage.
#[derive(Clone)]
pub enum Store {
    Dir(DirStore),
    S3(S3Store),
}

impl Store {
    /// Writes the object `key` from a file of `len` bytes with the given SHA-256.
    pub async fn put_file(
        &self,
        key: &str,
        path: &Path,
        len: u64,
        sha256_hex: &str,
    ) -> Result<(), StoreError> {
        match self {
            Self::Dir(d) => d.put_file(key, path).await,
            Self::S3(s) => s.put_file(key, path, len, sha256_hex).await,
        }
    }

    pub async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        match self {
            Self::Dir(d) => d.put(key, body).await,
            Self::S3(s) => s.put(key, body).await,
        }
    }

    /// The whole object, `None` when there is none; more than `max` bytes is an error.
    pub async fn get(&self, key: &str, max: u64) -> Result<Option<Bytes>, StoreError> {
        match self {
            Self::Dir(d) => d.get(key, max).await,
            Self::S3(s) => s.get(key, max).await,
        }
    }

    /// Every key under `prefix` (`""`: all).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        match self {
            Self::Dir(d) => d.list(prefix).await,
            Self::S3(s) => s.list(prefix).await,
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Self::Dir(d) => d.delete(key).await,
            Self::S3(s) => s.delete(key).await,
        }
    }

    /// Where it is, for logs (never a credential).
    pub fn describe(&self) -> String {
        match self {
            Self::Dir(d) => format!("directory {}", d.root.display()),
            Self::S3(s) => s.describe(),
        }
    }
}

/// An archive in a local directory.
#[derive(Clone, Debug)]
pub struct DirStore {
    root: PathBuf,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{what} {}: {e}", path.display()))
}

/// Creates `dir` and its missing parents, owner-only (0700).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// A temporary name beside `dest`, unique in this process.
fn temporary_beside(dest: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Writes a file whole: to a temporary name (0600), synced, then renamed over `dest`,
/// so that a reader (or a crash) never sees part of it.
fn write_whole(
    dest: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = dest.parent() {
        create_private_dir(parent)?;
    }
    let tmp = temporary_beside(dest);
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        write(&mut file)?;
        file.sync_all()?;
        std::fs::rename(&tmp, dest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl DirStore {
    /// Opens (creating it, 0700) the directory; an existing one must be writable.
    pub fn open(root: PathBuf) -> Result<Self, String> {
        create_private_dir(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        let probe = root.join(".write-probe");
        write_whole(&probe, |_| Ok(()))
            .map_err(|e| format!("{} is not writable: {e}", root.display()))?;
        let _ = std::fs::remove_file(&probe);
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of `key`; keys are built from validated names, and one that could leave
    /// the directory is refused anyway.
    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let safe = !key.is_empty()
            && !key.starts_with('/')
            && key
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if safe {
            Ok(self.root.join(key))
        } else {
            Err(StoreError::Refused(format!("invalid archive key {key:?}")))
        }
    }

    /// The object's file, open for reading; `None` when there is none.
    pub fn open_object(&self, key: &str) -> Result<Option<std::fs::File>, StoreError> {
        let path = self.path(key)?;
        match std::fs::File::open(&path) {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("reading", &path, e)),
        }
    }

    async fn put_file(&self, key: &str, source: &Path) -> Result<(), StoreError> {
        let dest = self.path(key)?;
        let source = source.to_path_buf();
        blocking(move || {
            write_whole(&dest, |file| {
                let mut from = std::fs::File::open(&source)?;
                std::io::copy(&mut from, file).map(|_| ())
            })
            .map_err(|e| io("writing", &dest, e))
        })
        .await
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        let dest = self.path(key)?;
        blocking(move || {
            write_whole(&dest, |file| std::io::Write::write_all(file, &body))
                .map_err(|e| io("writing", &dest, e))
        })
        .await
    }

    async fn get(&self, key: &str, max: u64) -> Result<Option<Bytes>, StoreError> {
        let path = self.path(key)?;
        blocking(move || {
            use std::io::Read;
            let file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io("reading", &path, e)),
            };
            let mut bytes = Vec::new();
            file.take(max + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| io("reading", &path, e))?;
            if bytes.len() as u64 > max {
                return Err(StoreError::Refused(format!(
                    "{} is larger than {max} bytes",
                    path.display()
                )));
            }
            Ok(Some(Bytes::from(bytes)))
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        blocking(move || {
            let mut keys = Vec::new();
            let mut dirs = vec![root.clone()];
            while let Some(dir) = dirs.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io("listing", &dir, e)),
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    let name = entry.file_name();
                    // Temporary files of writes in progress are not objects.
                    if name.to_string_lossy().starts_with('.') {
                        continue;
                    }
                    match entry.file_type() {
                        Ok(t) if t.is_dir() => dirs.push(path),
                        Ok(t) if t.is_file() => {
                            if let Ok(rel) = path.strip_prefix(&root) {
                                let key = rel.to_string_lossy().into_owned();
                                if key.starts_with(&prefix) {
                                    keys.push(key);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            keys.sort();
            Ok(keys)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("deleting", &path, e)),
        })
        .await
    }
}

/// Runs file I/O on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(StoreError::Unavailable(format!("archive I/O task: {e}"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn objects_are_written_whole_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path().join("archive")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(store.root()), 0o700);
        store
            .put("ns/job/run.json", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        let file = store.root().join("ns/job/run.json");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&store.root().join("ns/job")), 0o700);
        assert_eq!(
            store.get("ns/job/run.json", 10).await.unwrap().as_deref(),
            Some(&b"{}"[..])
        );
        assert_eq!(store.get("ns/other/run.json", 10).await.unwrap(), None);
        assert!(store.get("ns/job/run.json", 1).await.is_err(), "over max");
        // A temporary file left by a crash is not an object.
        std::fs::write(store.root().join("ns/job/.run.json.tmp-1-1"), "{").unwrap();
        assert_eq!(store.list("").await.unwrap(), ["ns/job/run.json"]);
        store.delete("ns/job/run.json").await.unwrap();
        assert!(store.list("").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_key_that_would_leave_the_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path().to_path_buf()).unwrap();
        for key in ["../x", "/etc/passwd", "a//b", "a/./b", ""] {
            assert!(
                matches!(
                    store.put(key, Bytes::new()).await,
                    Err(StoreError::Refused(_))
                ),
                "{key}"
            );
        }
    }
}

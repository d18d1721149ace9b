//! The bearer tokens callers of the API present, loaded from a file (mounted from a
//! Secret; several tokens, one per line, allow rotation) and reloaded when it changes.
//! Tokens are held and compared as SHA-256 digests, in constant time.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use ring::digest;
use tokio::time::Instant;

/// The file is looked at again at most this often (a Secret update reaches the mounted
/// file within about a minute).
const RELOAD_EVERY: Duration = Duration::from_secs(10);

/// The accepted tokens, as digests, reloaded from their file when it changes. A
/// request never waits for the file: one request at a time looks at it (without
/// blocking a runtime thread), the others compare against the tokens held meanwhile.
pub struct ApiTokens {
    path: PathBuf,
    digests: RwLock<Arc<Vec<digest::Digest>>>,
    reload: tokio::sync::Mutex<Reload>,
}

/// When the file was last looked at, and its modification time then.
struct Reload {
    modified: Option<SystemTime>,
    checked: Instant,
}

/// Why a token file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("API tokens file {path}: {message}")]
pub struct TokensError {
    pub path: PathBuf,
    pub message: String,
}

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiTokens")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Tokens of a file: one per line; blank lines and `#` comments are skipped.
fn parse(text: &str) -> Vec<digest::Digest> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|t| digest::digest(&digest::SHA256, t.as_bytes()))
        .collect()
}

/// The file's modification time, then its tokens: in that order, so that a rotation
/// between the two is seen as a change at the next look rather than missed.
fn read_tokens(
    path: &std::path::Path,
) -> (Option<SystemTime>, std::io::Result<Vec<digest::Digest>>) {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let digests = crate::files::read_to_string(path).map(|t| parse(&t));
    (modified, digests)
}

impl ApiTokens {
    /// Loads the file; it must exist and hold at least one token.
    pub fn load(path: PathBuf) -> Result<Self, TokensError> {
        let error = |message: String| TokensError {
            path: path.clone(),
            message,
        };
        let (modified, digests) = read_tokens(&path);
        let digests = digests.map_err(|e| error(e.to_string()))?;
        if digests.is_empty() {
            return Err(error("holds no token (one per line)".into()));
        }
        Ok(Self {
            digests: RwLock::new(Arc::new(digests)),
            reload: tokio::sync::Mutex::new(Reload {
                modified,
                checked: Instant::now(),
            }),
            path,
        })
    }

    /// How many tokens are accepted now.
    pub fn count(&self) -> usize {
        self.current().len()
    }

    fn current(&self) -> Arc<Vec<digest::Digest>> {
        self.digests
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether `presented` is one of the tokens. Every token is compared, each in
    /// constant time, so the time taken says nothing about which one matched.
    pub async fn accepts(&self, presented: &str) -> bool {
        if let Ok(mut reload) = self.reload.try_lock()
            && reload.checked.elapsed() >= RELOAD_EVERY
        {
            self.look_again(&mut reload).await;
        }
        let presented = digest::digest(&digest::SHA256, presented.as_bytes());
        self.current().iter().fold(false, |found, d| {
            equal_digests(d.as_ref(), presented.as_ref()) | found
        })
    }

    async fn look_again(&self, reload: &mut Reload) {
        reload.checked = Instant::now();
        let path = self.path.clone();
        let known = reload.modified;
        let Ok((modified, digests)) = tokio::task::spawn_blocking(move || {
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            if modified.is_some() && modified == known {
                return (modified, None);
            }
            let (modified, digests) = read_tokens(&path);
            (modified, Some(digests))
        })
        .await
        else {
            return;
        };
        match digests {
            None => {}
            Some(Ok(digests)) if !digests.is_empty() => {
                tracing::info!(path = %self.path.display(), tokens = digests.len(), "API tokens reloaded");
                *self.digests.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(digests);
                reload.modified = modified;
            }
            Some(Ok(_)) => {
                tracing::warn!(path = %self.path.display(), "API tokens file holds no token: keeping the previous tokens")
            }
            Some(Err(e)) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot read the API tokens file: keeping the previous tokens")
            }
        }
    }
}

/// Compares two digests without an early exit: the time does not depend on where they
/// differ. (Comparing digests, not tokens, also hides the tokens' lengths.)
fn equal_digests(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_tokens_one_per_line_with_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(
            &path,
            "# rotation: old then new\nold-token\n\n  new-token  \n",
        )
        .unwrap();
        let tokens = ApiTokens::load(path).unwrap();
        assert_eq!(tokens.count(), 2);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            assert!(tokens.accepts("old-token").await);
            assert!(tokens.accepts("new-token").await);
            assert!(!tokens.accepts("new-token-but-longer").await);
            assert!(!tokens.accepts("").await);
            assert!(!tokens.accepts("# rotation: old then new").await);
        });
    }

    #[test]
    fn an_empty_or_missing_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        assert!(ApiTokens::load(path.clone()).is_err());
        std::fs::write(&path, "# nothing\n").unwrap();
        assert!(
            ApiTokens::load(path)
                .unwrap_err()
                .to_string()
                .contains("no token")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotated_file_is_picked_up_and_a_broken_one_keeps_the_old_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "first\n").unwrap();
        let tokens = ApiTokens::load(path.clone()).unwrap();
        // A different length changes the size even where mtime has coarse resolution.
        std::fs::write(&path, "second-token\n").unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        tokio::time::advance(RELOAD_EVERY).await;
        assert!(tokens.accepts("second-token").await);
        assert!(!tokens.accepts("first").await);
        std::fs::remove_file(&path).unwrap();
        tokio::time::advance(RELOAD_EVERY).await;
        assert!(
            tokens.accepts("second-token").await,
            "kept after a failed read"
        );
    }
}

//! Inbound authentication: callers of our API present a bearer token from a file
//! (mounted from a Secret; several tokens, one per line, allow rotation). Tokens are
//! compared as SHA-256 digests in constant time. Off only when no file is configured.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use ring::digest;
use tokio::time::Instant;
use warp::Filter;

/// The file is looked at again at most this often (a Secret update reaches the mounted
/// file within about a minute).
const RELOAD_EVERY: Duration = Duration::from_secs(10);

/// The accepted tokens, as digests, reloaded from their file when it changes.
pub struct ApiTokens {
    path: PathBuf,
    state: Mutex<Loaded>,
}

struct Loaded {
    digests: Vec<digest::Digest>,
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

impl ApiTokens {
    /// Loads the file; it must exist and hold at least one token.
    pub fn load(path: PathBuf) -> Result<Self, TokensError> {
        let error = |message: String| TokensError {
            path: path.clone(),
            message,
        };
        let text = crate::files::read_to_string(&path).map_err(|e| error(e.to_string()))?;
        let digests = parse(&text);
        if digests.is_empty() {
            return Err(error("holds no token (one per line)".into()));
        }
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        Ok(Self {
            state: Mutex::new(Loaded {
                digests,
                modified,
                checked: Instant::now(),
            }),
            path,
        })
    }

    /// How many tokens are accepted now.
    pub fn count(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .digests
            .len()
    }

    /// Whether `presented` is one of the tokens. Every token is compared, each in
    /// constant time, so the time taken says nothing about which one matched.
    pub fn accepts(&self, presented: &str) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.checked.elapsed() >= RELOAD_EVERY {
            self.reload(&mut state);
        }
        let presented = digest::digest(&digest::SHA256, presented.as_bytes());
        state.digests.iter().fold(false, |found, d| {
            equal_digests(d.as_ref(), presented.as_ref()) | found
        })
    }

    fn reload(&self, state: &mut Loaded) {
        state.checked = Instant::now();
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if modified.is_some() && modified == state.modified {
            return;
        }
        match crate::files::read_to_string(&self.path).map(|t| parse(&t)) {
            Ok(digests) if !digests.is_empty() => {
                tracing::info!(path = %self.path.display(), tokens = digests.len(), "API tokens reloaded");
                state.digests = digests;
                state.modified = modified;
            }
            Ok(_) => {
                tracing::warn!(path = %self.path.display(), "API tokens file holds no token: keeping the previous tokens")
            }
            Err(e) => {
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

/// A request without a valid token: answered 401 with `WWW-Authenticate`.
#[derive(Debug)]
pub struct Unauthorized;

impl warp::reject::Reject for Unauthorized {}

/// Passes requests with a valid `Authorization: Bearer` token (or, for the live
/// endpoints whose browser clients cannot set headers, `?access_token=`), and every
/// request when no tokens are configured.
pub fn authorized(
    tokens: Option<std::sync::Arc<ApiTokens>>,
) -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and_then(move |header: Option<String>, query: String| {
            let tokens = tokens.clone();
            async move {
                let Some(tokens) = tokens else {
                    return Ok(());
                };
                let presented = header
                    .as_deref()
                    .and_then(|h| h.strip_prefix("Bearer "))
                    .map(str::to_string)
                    .or_else(|| access_token(&query));
                match presented {
                    Some(token) if tokens.accepts(&token) => Ok(()),
                    _ => {
                        crate::metrics::metrics().auth_failure();
                        Err(warp::reject::custom(Unauthorized))
                    }
                }
            }
        })
        .untuple_one()
}

/// `access_token` from a raw query string.
fn access_token(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let value = pair.strip_prefix("access_token=")?;
        percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .ok()
            .map(|v| v.into_owned())
    })
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
        assert!(tokens.accepts("old-token"));
        assert!(tokens.accepts("new-token"));
        assert!(!tokens.accepts("new-token-but-longer"));
        assert!(!tokens.accepts(""));
        assert!(!tokens.accepts("# rotation: old then new"));
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
        assert!(tokens.accepts("second-token"));
        assert!(!tokens.accepts("first"));
        std::fs::remove_file(&path).unwrap();
        tokio::time::advance(RELOAD_EVERY).await;
        assert!(tokens.accepts("second-token"), "kept after a failed read");
    }

    #[test]
    fn access_token_is_read_from_the_query() {
        assert_eq!(
            access_token("tail=5&access_token=a%2Bb").as_deref(),
            Some("a+b")
        );
        assert_eq!(access_token("tail=5"), None);
    }
}

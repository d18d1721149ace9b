//! Outbound authentication to the apiserver: static tokens, rotating token files, basic
//! auth and exec plugins, turned into an `Authorization` header marked sensitive.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use http::HeaderValue;
use tokio::time::Instant;

use super::KubeError;
use super::exec::{self, ExecCredential};
use crate::cluster::{AuthConfig, ExecConfig, Identity};

/// Service-account tokens are re-read at least this often (bound tokens expire after
/// about an hour and the kubelet rotates the file well before).
pub const TOKEN_FILE_REFRESH: Duration = Duration::from_secs(60);

/// What one request carries: an `Authorization` header and, from an exec plugin, a
/// client certificate.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub authorization: Option<HeaderValue>,
    pub identity: Option<Identity>,
}

/// The runtime side of [`AuthConfig`].
#[derive(Debug)]
pub enum Auth {
    None,
    Static(HeaderValue),
    TokenFile(TokenFile),
    Exec(Box<ExecAuth>),
}

impl Auth {
    pub fn new(config: &AuthConfig) -> Result<Self, KubeError> {
        Ok(match config {
            AuthConfig::None => Self::None,
            AuthConfig::Token(token) => Self::Static(bearer(token.expose())?),
            AuthConfig::Basic { username, password } => {
                let raw = format!("{username}:{}", password.expose());
                let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
                Self::Static(sensitive(&format!("Basic {encoded}"))?)
            }
            AuthConfig::TokenFile(path) => Self::TokenFile(TokenFile::new(path.clone())),
            AuthConfig::Exec(config) => Self::Exec(Box::new(ExecAuth::new(config.clone()))),
        })
    }

    /// The credentials for the next request.
    pub async fn credentials(&self, timeout: Duration) -> Result<Credentials, KubeError> {
        match self {
            Self::None => Ok(Credentials::default()),
            Self::Static(header) => Ok(Credentials {
                authorization: Some(header.clone()),
                identity: None,
            }),
            Self::TokenFile(file) => Ok(Credentials {
                authorization: Some(file.header(false)?),
                identity: None,
            }),
            Self::Exec(plugin) => plugin.credentials(timeout).await,
        }
    }

    /// Called after a 401: forget what may have expired. Returns whether a retry can
    /// carry different credentials.
    pub fn invalidate(&self) -> bool {
        match self {
            Self::None | Self::Static(_) => false,
            Self::TokenFile(file) => {
                let before = file.current();
                file.header(true).ok() != before
            }
            Self::Exec(plugin) => {
                *plugin.cached.lock().unwrap_or_else(|e| e.into_inner()) = None;
                true
            }
        }
    }
}

fn sensitive(value: &str) -> Result<HeaderValue, KubeError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        KubeError::Credentials("the credential contains characters not allowed in a header".into())
    })?;
    header.set_sensitive(true);
    Ok(header)
}

fn bearer(token: &str) -> Result<HeaderValue, KubeError> {
    sensitive(&format!("Bearer {}", token.trim()))
}

/// A token file re-read at most every [`TOKEN_FILE_REFRESH`] and at once after a 401,
/// keeping the last good token when a read fails.
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    state: Mutex<Option<(HeaderValue, Instant)>>,
}

impl TokenFile {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            state: Mutex::new(None),
        }
    }

    fn current(&self) -> Option<HeaderValue> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(h, _)| h.clone())
    }

    fn header(&self, force: bool) -> Result<HeaderValue, KubeError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((header, read_at)) = state.as_ref()
            && !force
            && read_at.elapsed() < TOKEN_FILE_REFRESH
        {
            return Ok(header.clone());
        }
        let read = crate::files::read_to_string(&self.path)
            .map_err(|e| format!("cannot read token file {}: {e}", self.path.display()))
            .and_then(|t| {
                let t = t.trim().to_string();
                if t.is_empty() {
                    Err(format!("token file {} is empty", self.path.display()))
                } else {
                    Ok(t)
                }
            });
        match (read, state.as_mut()) {
            (Ok(token), _) => {
                let header = bearer(&token)?;
                *state = Some((header.clone(), Instant::now()));
                Ok(header)
            }
            (Err(message), Some((last_good, read_at))) => {
                tracing::warn!(%message, "keeping the last good token");
                // Try again on the next request rather than in 60 s.
                *read_at = Instant::now() - TOKEN_FILE_REFRESH;
                Ok(last_good.clone())
            }
            (Err(message), None) => Err(KubeError::Credentials(message)),
        }
    }
}

/// An exec plugin with its cached credential.
#[derive(Debug)]
pub struct ExecAuth {
    config: ExecConfig,
    cached: Mutex<Option<ExecCredential>>,
    // One plugin run at a time: concurrent requests wait for the same credential.
    running: tokio::sync::Mutex<()>,
}

impl ExecAuth {
    fn new(config: ExecConfig) -> Self {
        Self {
            config,
            cached: Mutex::new(None),
            running: tokio::sync::Mutex::new(()),
        }
    }

    fn fresh(&self) -> Option<ExecCredential> {
        self.cached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|c| c.is_fresh(SystemTime::now()))
    }

    async fn credentials(&self, timeout: Duration) -> Result<Credentials, KubeError> {
        let credential = match self.fresh() {
            Some(c) => c,
            None => {
                let _one_at_a_time = self.running.lock().await;
                match self.fresh() {
                    Some(c) => c,
                    None => {
                        let c = exec::run(&self.config, timeout)
                            .await
                            .map_err(KubeError::Credentials)?;
                        tracing::debug!(command = %self.config.command, "exec plugin returned a credential");
                        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
                        c
                    }
                }
            }
        };
        Ok(Credentials {
            authorization: credential
                .token
                .as_ref()
                .map(|t| bearer(t.expose()))
                .transpose()?,
            identity: credential.identity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_headers_are_sensitive() {
        let auth = Auth::new(&AuthConfig::Token("abc".to_string().into())).unwrap();
        let Auth::Static(header) = auth else { panic!() };
        assert!(header.is_sensitive());
        assert_eq!(header, "Bearer abc");
    }

    #[test]
    fn basic_auth_is_base64_of_user_colon_password() {
        let auth = Auth::new(&AuthConfig::Basic {
            username: "admin".into(),
            password: "s3cret".to_string().into(),
        })
        .unwrap();
        let Auth::Static(header) = auth else { panic!() };
        assert_eq!(header, "Basic YWRtaW46czNjcmV0");
    }

    #[tokio::test(start_paused = true)]
    async fn token_file_is_reread_after_sixty_seconds_and_keeps_the_last_good_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let file = TokenFile::new(path.clone());
        assert_eq!(file.header(false).unwrap(), "Bearer first");

        std::fs::write(&path, "second").unwrap();
        assert_eq!(
            file.header(false).unwrap(),
            "Bearer first",
            "cached for 60 s"
        );
        tokio::time::advance(TOKEN_FILE_REFRESH + Duration::from_secs(1)).await;
        assert_eq!(file.header(false).unwrap(), "Bearer second");

        std::fs::remove_file(&path).unwrap();
        tokio::time::advance(TOKEN_FILE_REFRESH + Duration::from_secs(1)).await;
        assert_eq!(
            file.header(false).unwrap(),
            "Bearer second",
            "last good token kept"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn invalidate_rereads_the_token_file_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "old").unwrap();
        let auth = Auth::new(&AuthConfig::TokenFile(path.clone())).unwrap();
        let header = |c: Credentials| c.authorization.unwrap();
        assert_eq!(
            header(auth.credentials(Duration::from_secs(1)).await.unwrap()),
            "Bearer old"
        );
        assert!(!auth.invalidate(), "same token on disk: no point retrying");
        std::fs::write(&path, "new").unwrap();
        assert!(auth.invalidate());
        assert_eq!(
            header(auth.credentials(Duration::from_secs(1)).await.unwrap()),
            "Bearer new"
        );
    }
}

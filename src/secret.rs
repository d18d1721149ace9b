//! Secrets that cannot be logged: a newtype whose `Debug` prints a redaction.

use std::fmt;

/// A credential (bearer token, password, private key, client certificate key).
///
/// `Debug` prints `Secret(<redacted>)`; there is no `Display`. The only way to the
/// value is [`Secret::expose`], which makes every use visible in review.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret value itself. Call it only where the value is sent to the apiserver.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<String> for Secret<String> {
    fn from(value: String) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_value() {
        let token = Secret::new("sha256~very-secret".to_string());
        let printed = format!("{token:?} {:#?}", Some(&token));
        assert!(!printed.contains("very-secret"), "{printed}");
        assert!(printed.contains("<redacted>"));
        assert_eq!(token.expose(), "sha256~very-secret");
    }
}

//! Inbound authentication: the filter that lets a request in when it presents one of
//! the callers' tokens ([`crate::tokens`]) as `Authorization: Bearer` or, for clients
//! that cannot set headers, `?access_token=`. Off only when no file is configured.

use warp::Filter;

use crate::tokens::ApiTokens;

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
                    .and_then(bearer_token)
                    .map(str::to_string)
                    .or_else(|| access_token(&query));
                let accepted = match &presented {
                    Some(token) => tokens.accepts(token).await,
                    None => false,
                };
                match accepted {
                    true => Ok(()),
                    _ => {
                        crate::metrics::metrics().auth_failure();
                        Err(warp::reject::custom(Unauthorized))
                    }
                }
            }
        })
        .untuple_one()
}

/// The token of an `Authorization: Bearer <token>` header. The scheme is
/// case-insensitive (RFC 9110 §11.1: `bearer` and `BEARER` are `Bearer`), and one or
/// more spaces may follow it.
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
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
    fn the_bearer_scheme_is_case_insensitive() {
        for (header, token) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER abc", Some("abc")),
            ("Bearer   abc", Some("abc")),
            ("Basic abc", None),
            ("Bearer", None),
            ("Bearer ", None),
            ("Bearerabc", None),
            ("abc", None),
        ] {
            assert_eq!(bearer_token(header), token, "{header:?}");
        }
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

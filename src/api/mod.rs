//! The warp filter tree: one filter per endpoint, each doc comment naming its route;
//! handlers are plain async functions; one `recover` turns rejections into JSON.

pub mod auth;
pub mod error;
pub mod health;
pub mod jobs;
pub mod json;
pub mod metrics;
pub mod probes;
pub mod runs;
pub mod stream;

use std::convert::Infallible;

use warp::Filter;

use crate::state::AppState;

/// Requests whose path and query are longer than this are refused (414) before any
/// routing: no route needs more than a few hundred bytes.
pub const MAX_URL_BYTES: usize = 12 * 1024;

/// The whole API: probes, health and metrics stay open; everything else passes caller
/// authentication first.
pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (impl warp::Reply,), Error = Infallible> + Clone {
    let open = boxed(probes::livez())
        .or(boxed(probes::readyz(state.clone())))
        .unify()
        .or(boxed(health::route(state.clone())))
        .unify()
        .or(boxed(metrics::route()))
        .unify()
        .boxed();
    let protected = boxed(jobs::status_route(state.clone()))
        .or(boxed(jobs::logs_route(state.clone())))
        .unify()
        .or(boxed(jobs::test_run_logs_route(state.clone())))
        .unify()
        .or(boxed(jobs::delete_route(state.clone())))
        .unify()
        .or(boxed(stream::job_log_stream_route(state.clone())))
        .unify()
        .or(boxed(stream::test_run_log_stream_route(state.clone())))
        .unify()
        .or(boxed(stream::watch_route(state.clone())))
        .unify()
        .or(boxed(stream::events_route(state.clone())))
        .unify()
        .or(boxed(runs::create_route(state.clone())))
        .unify()
        .or(boxed(runs::list_route(state.clone())))
        .unify()
        .or(boxed(runs::templates_route(state.clone())))
        .unify()
        .boxed();
    let protected = auth::authorized(state.policy().api_tokens.clone()).and(protected);
    let cors = cors(&state.policy().cors_origins);
    // Errors are turned into replies inside CORS, so that a browser on an allowed
    // origin can read them too (a 401 the page cannot read is a network error to
    // fetch); then CORS's own refusals are turned into replies.
    url_limit()
        .and(open.or(protected).unify())
        .map(warp::Reply::into_response)
        .recover(error::recover)
        .unify()
        .with(cors)
        .map(warp::Reply::into_response)
        .recover(error::recover)
        .unify()
        .with(warp::log::custom(|info| {
            // The path only: a query may carry an access token.
            tracing::debug!(method = %info.method(), path = info.path(), status = info.status().as_u16(), elapsed = ?info.elapsed(), "request");
            crate::metrics::metrics().http_request(info.method(), info.path(), info.status(), info.elapsed());
        }))
}

/// One endpoint's filter behind a box: the route tree is then a chain of small types
/// instead of one type nested fifteen deep, whose instantiation alone took rustc 35 s
/// of a release build.
fn boxed<F>(route: F) -> warp::filters::BoxedFilter<(warp::reply::Response,)>
where
    F: Filter<Extract = (warp::reply::Response,), Error = warp::Rejection>
        + Clone
        + Send
        + Sync
        + 'static,
{
    route.boxed()
}

/// Refuses over-long URLs before routing.
fn url_limit() -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::path::full()
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and_then(|path: warp::path::FullPath, query: String| async move {
            if path.as_str().len() + query.len() > MAX_URL_BYTES {
                Err(warp::reject::custom(error::UriTooLong))
            } else {
                Ok(())
            }
        })
        .untuple_one()
}

/// CORS for the configured origins only; with none configured, browsers on other
/// origins are refused by their same-origin policy.
fn cors(origins: &[String]) -> warp::filters::cors::Cors {
    warp::cors()
        .allow_origins(origins.iter().map(String::as_str))
        .allow_methods(["GET", "POST", "DELETE", "OPTIONS"])
        .allow_headers(["authorization", "content-type", "last-event-id"])
        .max_age(600)
        .build()
}

/// Hands the shared state to a handler.
pub fn with_state(
    state: AppState,
) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

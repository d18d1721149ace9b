//! The warp filter tree: one filter per endpoint, each doc comment naming its route;
//! handlers are plain async functions; one `recover` turns rejections into JSON.

pub mod error;
pub mod health;
pub mod jobs;
pub mod stream;

use std::convert::Infallible;

use warp::Filter;

use crate::state::AppState;

/// The whole API.
pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (impl warp::Reply,), Error = Infallible> + Clone {
    health::route(state.clone())
        .or(jobs::status_route(state.clone()))
        .unify()
        .or(jobs::logs_route(state.clone()))
        .unify()
        .or(jobs::test_run_logs_route(state.clone()))
        .unify()
        .or(jobs::delete_route(state.clone()))
        .unify()
        .or(stream::job_log_stream_route(state.clone()))
        .unify()
        .or(stream::test_run_log_stream_route(state.clone()))
        .unify()
        .or(stream::watch_route(state.clone()))
        .unify()
        .or(stream::events_route(state))
        .unify()
        .recover(error::recover)
        .unify()
        .with(warp::log::custom(|info| {
            tracing::debug!(method = %info.method(), path = info.path(), status = info.status().as_u16(), elapsed = ?info.elapsed(), "request");
        }))
}

/// Hands the shared state to a handler.
pub fn with_state(
    state: AppState,
) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

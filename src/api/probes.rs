//! Probes of the service itself, for the kubelet: they never call the apiserver, so an
//! apiserver blip does not restart or unready the pods.

use warp::Filter;
use warp::http::StatusCode;

use crate::state::AppState;

/// `GET /livez`: 200 while the process serves.
pub fn livez() -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    use warp::Reply;
    warp::path!("livez")
        .and(warp::get())
        .map(|| warp::reply::json(&serde_json::json!({"status": "ok"})).into_response())
}

/// `GET /readyz`: 200 when serving, 503 from SIGTERM on (while the drain delay lets
/// the endpoint be removed from the Service).
pub fn readyz(
    state: AppState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    use warp::Reply;
    warp::path!("readyz")
        .and(warp::get())
        .and(super::with_state(state))
        .map(|state: AppState| {
            let (status, text) = if state.is_unready() {
                (StatusCode::SERVICE_UNAVAILABLE, "draining")
            } else {
                (StatusCode::OK, "ok")
            };
            warp::reply::with_status(
                warp::reply::json(&serde_json::json!({"status": text})),
                status,
            )
            .into_response()
        })
}

//! `GET /api/k8s/health`: whether the service can make an authenticated, authorized
//! round trip to the apiserver ([`crate::health`]), as SparkTest's frontend reads it.

use serde::Serialize;
use warp::Filter;

use crate::health::Probe;
use crate::kube::Client;
use crate::state::AppState;

#[derive(Serialize)]
struct HealthReply<'a> {
    kubernetes_connected: bool,
    timestamp: String,
    namespace: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_method: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `GET /api/k8s/health`
pub fn route(
    state: AppState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "k8s" / "health")
        .and(warp::get())
        .and(crate::api::with_state(state))
        .then(health)
}

async fn health(state: AppState) -> warp::reply::Response {
    use warp::Reply;
    let probe = match state.client() {
        Err(e) => Probe::failed(e.to_string()),
        Ok(client) => {
            state
                .health_cache()
                .probe(client, state.namespace().as_str())
                .await
        }
    };
    let reply = HealthReply {
        kubernetes_connected: probe.connected,
        timestamp: crate::time::now_rfc3339(),
        namespace: state.namespace().as_str(),
        auth_method: state.client().ok().map(Client::auth_kind),
        server_version: probe.server_version,
        error: probe.error,
    };
    warp::reply::json(&reply).into_response()
}

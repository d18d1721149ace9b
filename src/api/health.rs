//! `GET /api/k8s/health`: whether the service can make an authenticated, authorized
//! round trip to the apiserver, cached briefly so a polling frontend never hammers it.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use warp::Filter;

use crate::kube::resources::{List, Version, jobs_path, query};
use crate::kube::{Client, KubeError};
use crate::state::AppState;

/// How long a probe result is reused. Frontends poll every few seconds; the apiserver
/// sees at most one probe (two requests) per this period, however many poll.
pub const HEALTH_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
struct Probe {
    connected: bool,
    server_version: Option<String>,
    error: Option<String>,
}

/// The last probe; the mutex also makes concurrent callers share one probe.
#[derive(Default)]
pub struct HealthCache {
    last: tokio::sync::Mutex<Option<(Instant, Probe)>>,
}

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
        Err(e) => Probe {
            connected: false,
            server_version: None,
            error: Some(e.to_string()),
        },
        Ok(client) => cached_probe(&state, client).await,
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

async fn cached_probe(state: &AppState, client: &Client) -> Probe {
    let mut last = state.health_cache().last.lock().await;
    if let Some((at, probe)) = last.as_ref() {
        if at.elapsed() < HEALTH_TTL {
            return probe.clone();
        }
    }
    let probe = match probe(client, state.namespace().as_str()).await {
        Ok(version) => Probe {
            connected: true,
            server_version: Some(version),
            error: None,
        },
        Err(e) => {
            tracing::warn!(error = %e, "health probe failed");
            Probe {
                connected: false,
                server_version: None,
                error: Some(e.to_string()),
            }
        }
    };
    crate::metrics::metrics().set_connected(probe.connected);
    *last = Some((Instant::now(), probe.clone()));
    probe
}

/// `GET /version` (which anonymous users may read) for the version, then a one-item job
/// list in the namespace, which needs the service's own credentials and its `list`
/// permission: a real authenticated round trip, not just TCP.
pub async fn probe(client: &Client, namespace: &str) -> Result<String, KubeError> {
    let version: Version = client.get_json("/version").await?;
    let path = format!(
        "{}{}",
        jobs_path(namespace),
        query(&[("limit", "1".into())])
    );
    let _: List<serde::de::IgnoredAny> = client.get_json(&path).await?;
    Ok(version.git_version)
}

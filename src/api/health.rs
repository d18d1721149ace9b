//! `GET /api/k8s/health`: whether the service can make an authenticated, authorized
//! round trip to the apiserver, cached briefly so a polling frontend never hammers it.

use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use warp::Filter;

use crate::kube::resources::{List, Version, jobs_path, query};
use crate::kube::{Client, KubeError};
use crate::state::AppState;

/// How long a probe result is reused. Frontends poll every few seconds; the apiserver
/// sees at most one probe (two requests) per this period, however many poll.
pub const HEALTH_TTL: Duration = Duration::from_secs(5);

/// How long a failed probe is reused: a recovered apiserver is seen within a second,
/// and a down one still gets at most one probe a second.
pub const FAILED_TTL: Duration = Duration::from_secs(1);

/// The most a probe may take (less when the client's request timeout is shorter): an
/// apiserver that has not answered by then counts as not connected.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
struct Probe {
    connected: bool,
    server_version: Option<String>,
    error: Option<String>,
}

/// The last probe and the one running, if any. The lock is never held across an
/// apiserver call: a probe runs in a task of its own, so a caller that gives up does not
/// cancel it, and callers arriving meanwhile get the last answer (or, before the first
/// answer, wait for that one probe).
#[derive(Default)]
pub struct HealthCache {
    inner: std::sync::Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    last: Option<(Instant, Probe)>,
    running: Option<watch::Receiver<Option<Probe>>>,
}

/// What a caller does, decided under the lock.
enum Next {
    Answer(Probe),
    Wait(watch::Receiver<Option<Probe>>),
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
        Err(e) => failed(e.to_string()),
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
    let cache = state.health_cache();
    let next = {
        let mut guard = cache.inner.lock().unwrap_or_else(|e| e.into_inner());
        match (&guard.last, &guard.running) {
            (Some((at, probe)), _) if at.elapsed() < probe.ttl() => Next::Answer(probe.clone()),
            (Some((_, probe)), Some(_)) => Next::Answer(probe.clone()),
            (None, Some(running)) => Next::Wait(running.clone()),
            (_, None) => {
                let (tx, rx) = watch::channel(None);
                guard.running = Some(rx.clone());
                let deadline = PROBE_DEADLINE.min(client.request_timeout());
                tokio::spawn(run_probe(state.clone(), client.clone(), deadline, tx));
                Next::Wait(rx)
            }
        }
    };
    match next {
        Next::Answer(probe) => probe,
        Next::Wait(mut rx) => match rx.wait_for(Option::is_some).await {
            Ok(probe) => probe
                .clone()
                .unwrap_or_else(|| failed("no probe result".into())),
            // The probe task ended without an answer (the runtime is shutting down).
            Err(_) => failed("the health probe was cancelled".into()),
        },
    }
}

/// Probes within `deadline`, stores the answer and hands it to the waiting callers.
async fn run_probe(
    state: AppState,
    client: Client,
    deadline: Duration,
    tx: watch::Sender<Option<Probe>>,
) {
    let namespace = state.namespace().as_str();
    let probe = match tokio::time::timeout(deadline, probe(&client, namespace)).await {
        Ok(Ok(version)) => Probe {
            connected: true,
            server_version: Some(version),
            error: None,
        },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health probe failed");
            failed(e.to_string())
        }
        Err(_) => {
            tracing::warn!(
                ?deadline,
                "health probe: the apiserver did not answer in time"
            );
            failed(KubeError::Timeout(deadline).to_string())
        }
    };
    crate::metrics::metrics().set_connected(probe.connected);
    {
        let mut guard = state
            .health_cache()
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        guard.last = Some((Instant::now(), probe.clone()));
        guard.running = None;
    }
    let _ = tx.send(Some(probe));
}

impl Probe {
    fn ttl(&self) -> Duration {
        if self.connected {
            HEALTH_TTL
        } else {
            FAILED_TTL
        }
    }
}

fn failed(error: String) -> Probe {
    Probe {
        connected: false,
        server_version: None,
        error: Some(error),
    }
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

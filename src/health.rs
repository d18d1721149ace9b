//! Whether the service can make an authenticated, authorized round trip to the
//! apiserver: one probe at a time, run in a task of its own within a short deadline,
//! and its answer reused briefly so that pollers never hammer the apiserver.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::kube::resources::{List, Version, jobs_path, query};
use crate::kube::{Client, KubeError};

/// How long a probe result is reused. Frontends poll every few seconds; the apiserver
/// sees at most one probe (two requests) per this period, however many poll.
pub const HEALTH_TTL: Duration = Duration::from_secs(5);

/// How long a failed probe is reused: a recovered apiserver is seen within a second,
/// and a down one still gets at most one probe a second.
pub const FAILED_TTL: Duration = Duration::from_secs(1);

/// The most a probe may take (less when the client's request timeout is shorter): an
/// apiserver that has not answered by then counts as not connected.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(3);

/// What a probe found.
#[derive(Debug, Clone)]
pub struct Probe {
    pub connected: bool,
    pub server_version: Option<String>,
    pub error: Option<String>,
}

impl Probe {
    /// Not connected, for this reason.
    pub fn failed(error: String) -> Self {
        Self {
            connected: false,
            server_version: None,
            error: Some(error),
        }
    }

    fn ttl(&self) -> Duration {
        if self.connected {
            HEALTH_TTL
        } else {
            FAILED_TTL
        }
    }
}

/// The last probe and the one running, if any. The lock is never held across an
/// apiserver call: a probe runs in a task of its own, so a caller that gives up does not
/// cancel it, and callers arriving meanwhile get the last answer (or, before the first
/// answer, wait for that one probe). Clones share the cache.
#[derive(Clone, Default)]
pub struct HealthCache {
    inner: Arc<Mutex<CacheState>>,
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

impl HealthCache {
    /// A fresh answer from the cache, else the running probe's, else a new probe's.
    pub async fn probe(&self, client: &Client, namespace: &str) -> Probe {
        let next = {
            let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            match (&guard.last, &guard.running) {
                (Some((at, probe)), _) if at.elapsed() < probe.ttl() => Next::Answer(probe.clone()),
                (Some((_, probe)), Some(_)) => Next::Answer(probe.clone()),
                (None, Some(running)) => Next::Wait(running.clone()),
                (_, None) => {
                    let (tx, rx) = watch::channel(None);
                    guard.running = Some(rx.clone());
                    let deadline = PROBE_DEADLINE.min(client.request_timeout());
                    tokio::spawn(self.clone().run(
                        client.clone(),
                        namespace.to_string(),
                        deadline,
                        tx,
                    ));
                    Next::Wait(rx)
                }
            }
        };
        match next {
            Next::Answer(probe) => probe,
            Next::Wait(mut rx) => match rx.wait_for(Option::is_some).await {
                Ok(probe) => probe
                    .clone()
                    .unwrap_or_else(|| Probe::failed("no probe result".into())),
                // The probe task ended without an answer (the runtime is shutting down).
                Err(_) => Probe::failed("the health probe was cancelled".into()),
            },
        }
    }

    /// Probes within `deadline`, stores the answer and hands it to the waiting callers.
    async fn run(
        self,
        client: Client,
        namespace: String,
        deadline: Duration,
        tx: watch::Sender<Option<Probe>>,
    ) {
        let probe = match tokio::time::timeout(deadline, round_trip(&client, &namespace)).await {
            Ok(Ok(version)) => Probe {
                connected: true,
                server_version: Some(version),
                error: None,
            },
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "health probe failed");
                Probe::failed(e.to_string())
            }
            Err(_) => {
                tracing::warn!(
                    ?deadline,
                    "health probe: the apiserver did not answer in time"
                );
                Probe::failed(KubeError::Timeout(deadline).to_string())
            }
        };
        crate::metrics::metrics().set_connected(probe.connected);
        {
            let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            guard.last = Some((Instant::now(), probe.clone()));
            guard.running = None;
        }
        let _ = tx.send(Some(probe));
    }
}

/// `GET /version` (which anonymous users may read) for the version, then a one-item job
/// list in the namespace, which needs the service's own credentials and its `list`
/// permission: a real authenticated round trip, not just TCP.
pub async fn round_trip(client: &Client, namespace: &str) -> Result<String, KubeError> {
    let version: Version = client.get_json("/version").await?;
    let path = format!(
        "{}{}",
        jobs_path(namespace),
        query(&[("limit", "1".into())])
    );
    let _: List<serde::de::IgnoredAny> = client.get_json(&path).await?;
    Ok(version.git_version)
}

//! The live endpoints: log streams and status watches as Server-Sent Events by default,
//! WebSocket when the request upgrades; and a job's Kubernetes Events.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use warp::Filter;
use warp::filters::ws::{Message, WebSocket, Ws};
use warp::reply::{Reply, Response};

use super::error::{ApiError, reply};
use super::jobs::param;
use super::runs::{NamespaceQuery, namespace_query};
use super::with_state;
use crate::archive;
use crate::jobs::hub::{Follower, Producer, Topic};
use crate::jobs::stream::{FollowOptions, Resume, StreamEvent, follow_job, watch_job};
use crate::jobs::{self, events::JobEvent};
use crate::metrics::metrics;
use crate::names::{JobName, RunId};
use crate::state::AppState;
use crate::time::now_rfc3339;

/// Idle streams send a heartbeat this often, so proxies keep them open.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// Events buffered per stream; a slower client pauses reading from the apiserver.
const BUFFER: usize = 32;

/// `Some(ws)` when the request asks to upgrade to a WebSocket.
fn upgrade() -> impl Filter<Extract = (Option<Ws>,), Error = Infallible> + Clone {
    warp::ws().map(Some).or(warp::any().map(|| None)).unify()
}

/// `GET /api/k8s/jobs/{job_name}/logs/stream`
pub fn job_log_stream_route(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "k8s" / "jobs" / ..)
        .and(param::<JobName>())
        .and(warp::path!("logs" / "stream"))
        .and(warp::get())
        .and(stream_query())
        .and(upgrade())
        .and(with_state(state))
        .then(
            |name, query, ws, state| async move { reply(log_stream(name, query, ws, state).await) },
        )
}

/// `GET /api/test-runs/{run_id}/logs/stream`: the log stream of job `test-run-{run_id}`.
pub fn test_run_log_stream_route(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "test-runs" / ..)
        .and(param::<RunId>())
        .and(warp::path!("logs" / "stream"))
        .and(warp::get())
        .and(stream_query())
        .and(upgrade())
        .and(with_state(state))
        .then(|run_id: RunId, query, ws, state| async move {
            reply(log_stream(run_id.job_name(), query, ws, state).await)
        })
}

/// `GET /api/k8s/jobs/{job_name}/watch`
pub fn watch_route(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "k8s" / "jobs" / ..)
        .and(param::<JobName>())
        .and(warp::path!("watch"))
        .and(warp::get())
        .and(namespace_query())
        .and(upgrade())
        .and(with_state(state))
        .then(|name, q: NamespaceQuery, ws, state| async move {
            reply(watch(name, q.namespace, ws, state).await)
        })
}

/// `GET /api/k8s/jobs/{job_name}/events`
pub fn events_route(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "k8s" / "jobs" / ..)
        .and(param::<JobName>())
        .and(warp::path!("events"))
        .and(warp::get())
        .and(namespace_query())
        .and(with_state(state))
        .then(|name, q: NamespaceQuery, state| async move {
            reply(events(name, q.namespace, state).await)
        })
}

/// The query of the log streams. `last_event_id` stands in for the `Last-Event-ID`
/// header where a client cannot set it (a WebSocket from a browser).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    pub namespace: Option<String>,
    pub container: Option<String>,
    pub tail: Option<u32>,
    pub last_event_id: Option<String>,
    /// Checked by caller authentication (`api::auth`), not here.
    #[serde(default, rename = "access_token")]
    pub _access_token: Option<serde::de::IgnoredAny>,
}

fn stream_query() -> impl Filter<Extract = (StreamQuery,), Error = warp::Rejection> + Clone {
    warp::query::<StreamQuery>()
        .and(warp::header::optional::<String>("last-event-id"))
        .map(|mut q: StreamQuery, header: Option<String>| {
            if q.last_event_id.is_none() {
                q.last_event_id = header;
            }
            q
        })
}

async fn log_stream(
    name: JobName,
    query: StreamQuery,
    ws: Option<Ws>,
    state: AppState,
) -> Result<Response, ApiError> {
    let ns = state.scope(query.namespace.as_deref())?;
    if let Some(c) = &query.container {
        c.parse::<JobName>()
            .map_err(|e| ApiError::Validation(format!("invalid container name: {}", e.rule)))?;
    }
    // A Last-Event-ID is the id of a log event this service sent: `POD/TIMESTAMP` (or
    // the bare timestamp of earlier versions).
    let resume = match query.last_event_id.as_deref().map(Resume::parse) {
        None => None,
        Some(Some(resume)) => Some(resume),
        Some(None) => {
            return Err(ApiError::Validation(
                "Last-Event-ID must be the id of a log event (POD/TIMESTAMP, the timestamp \
                 in RFC 3339)"
                    .into(),
            ));
        }
    };
    let limits = state.log_limits();
    let tail_lines = query.tail.unwrap_or(100).min(limits.max_lines);
    if let Some((archive, record)) = super::jobs::known_archived(&state, &ns, &name).await {
        let events =
            archive::read::replay(&archive, &record, query.container.as_deref(), tail_lines)
                .await?;
        return Ok(replay(events, permit(&state)?, ws));
    }
    let client = state.client()?.clone();
    let permit = permit(&state)?;
    // A missing job is a 404 answer, not a stream that fails; or the replay of its
    // archive.
    match jobs::get_job(&client, &ns, &name).await {
        Ok(_) => {}
        Err(e @ jobs::JobError::NotFound { .. }) => {
            return match super::jobs::archived_instead(&state, &ns, &name).await? {
                Some((archive, record)) => {
                    let events = archive::read::replay(
                        &archive,
                        &record,
                        query.container.as_deref(),
                        tail_lines,
                    )
                    .await?;
                    Ok(replay(events, permit, ws))
                }
                None => Err(e.into()),
            };
        }
        Err(e) => return Err(e.into()),
    }
    let options = FollowOptions {
        container: query.container.clone(),
        resume,
        tail_lines,
        poll: state.stream_limits().poll,
    };
    if options.resume.is_none() {
        // Every viewer of this log (same container and tail) reads one upstream.
        let topic = Topic::Logs {
            container: query.container,
            tail: tail_lines,
        };
        let producer = {
            let (state, ns, name) = (state.clone(), ns.clone(), name.clone());
            move || -> Producer {
                Box::new(move |tx| {
                    Box::pin(async move {
                        tokio::select! {
                            () = follow_job(client, ns, name, options, tx) => {}
                            () = state.shutting_down() => {}
                        }
                    })
                })
            }
        };
        let follower = state.hub().follow(&ns, &name, topic, producer);
        return Ok(respond(shared(follower, permit), ws));
    }
    // A resumed stream starts where this client left off: a follow of its own.
    let (tx, rx) = mpsc::channel(BUFFER);
    let shutdown = state.shutting_down();
    tokio::spawn(async move {
        let _permit = permit;
        let _active = metrics().stream_opened();
        tokio::select! {
            () = follow_job(client, ns, name, options, tx) => {}
            () = shutdown => {}
        }
    });
    Ok(respond(rx, ws))
}

async fn watch(
    name: JobName,
    namespace: Option<String>,
    ws: Option<Ws>,
    state: AppState,
) -> Result<Response, ApiError> {
    let ns = state.scope(namespace.as_deref())?;
    if let Some((archive, record)) = super::jobs::known_archived(&state, &ns, &name).await {
        let events = archive::read::replay(&archive, &record, None, 0).await?;
        return Ok(replay(events, permit(&state)?, ws));
    }
    let client = state.client()?.clone();
    let permit = permit(&state)?;
    let job = match jobs::get_job(&client, &ns, &name).await {
        Ok(job) => job,
        Err(e @ jobs::JobError::NotFound { .. }) => {
            return match super::jobs::archived_instead(&state, &ns, &name).await? {
                Some((archive, record)) => {
                    let events = archive::read::replay(&archive, &record, None, 0).await?;
                    Ok(replay(events, permit, ws))
                }
                None => Err(e.into()),
            };
        }
        Err(e) => return Err(e.into()),
    };
    // Every viewer of this job's status reads one watch.
    let producer = {
        let (state, ns, name) = (state.clone(), ns.clone(), name.clone());
        move || -> Producer {
            Box::new(move |tx| {
                Box::pin(async move {
                    tokio::select! {
                        () = watch_job(client, ns, name, job, tx) => {}
                        () = state.shutting_down() => {}
                    }
                })
            })
        }
    };
    let follower = state.hub().follow(&ns, &name, Topic::Watch, producer);
    Ok(respond(shared(follower, permit), ws))
}

/// A client of a shared stream.
fn shared(follower: Follower, permit: OwnedSemaphorePermit) -> Events {
    Events::Shared {
        follower,
        _permit: permit,
        _active: metrics().stream_opened(),
    }
}

/// A stream of an archived run: the given events, then the end.
fn replay(events: Vec<StreamEvent>, permit: OwnedSemaphorePermit, ws: Option<Ws>) -> Response {
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        let _permit = permit;
        for event in events {
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    respond(rx, ws)
}

fn permit(state: &AppState) -> Result<OwnedSemaphorePermit, ApiError> {
    state
        .stream_permit()
        .ok_or_else(|| ApiError::TooManyStreams(state.stream_limits().max_streams))
}

/// The SSE event name of an event (and the `type` of a WebSocket message).
fn event_name(event: &StreamEvent) -> &'static str {
    match event {
        StreamEvent::Log { .. } => "log",
        StreamEvent::Pod { .. } => "pod",
        StreamEvent::Waiting { .. } => "waiting",
        StreamEvent::Status(_) => "status",
        StreamEvent::Failed(_) | StreamEvent::Behind { .. } => "error",
    }
}

/// The JSON payload of an event: its fields, or for `error` the error body.
fn payload(event: &StreamEvent) -> serde_json::Value {
    match event {
        StreamEvent::Failed(e) => ApiError::from(e.clone()).body(),
        StreamEvent::Behind { missed } => ApiError::StreamBehind(*missed).body(),
        other => serde_json::to_value(other).unwrap_or_default(),
    }
}

/// Counts a log line handed to the client in `log_bytes`.
fn count_log_bytes(event: &StreamEvent) {
    if let StreamEvent::Log { line, .. } = event {
        metrics().log_bytes(line.len());
    }
}

/// Where a client's events come from: a stream of its own, or a shared one.
enum Events {
    Own(mpsc::Receiver<StreamEvent>),
    Shared {
        follower: Follower,
        /// Held for the client's life: its place among `MAX_STREAMS` and in the gauge.
        _permit: OwnedSemaphorePermit,
        _active: crate::metrics::ActiveStream,
    },
}

impl Events {
    async fn next(&mut self) -> Option<Arc<StreamEvent>> {
        match self {
            Self::Own(rx) => rx.recv().await.map(Arc::new),
            Self::Shared { follower, .. } => follower.next().await,
        }
    }
}

impl From<mpsc::Receiver<StreamEvent>> for Events {
    fn from(rx: mpsc::Receiver<StreamEvent>) -> Self {
        Self::Own(rx)
    }
}

fn respond(rx: impl Into<Events>, ws: Option<Ws>) -> Response {
    let rx = rx.into();
    match ws {
        Some(ws) => ws
            .on_upgrade(move |socket| forward_ws(rx, socket))
            .into_response(),
        None => sse(rx),
    }
}

fn sse(rx: Events) -> Response {
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        let event = rx.next().await?;
        count_log_bytes(&event);
        let mut sse = warp::sse::Event::default()
            .event(event_name(&event))
            .data(payload(&event).to_string());
        if let Some(id) = event.id() {
            sse = sse.id(id);
        }
        Some((Ok::<_, Infallible>(sse), rx))
    });
    let stream = warp::sse::keep_alive()
        .interval(HEARTBEAT)
        .text("heartbeat")
        .stream(events);
    let mut response = warp::sse::reply(stream).into_response();
    // Proxies (nginx) must not buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", http::HeaderValue::from_static("no"));
    response
}

/// Forwards events as JSON text messages (`{"type": "log", "id": ..., ...}`), pings
/// every [`HEARTBEAT`], and stops when the client closes.
async fn forward_ws(mut rx: Events, socket: WebSocket) {
    let (mut sink, mut incoming) = socket.split();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            event = rx.next() => {
                let Some(event) = event else { break };
                let mut message = payload(&event);
                if let Some(object) = message.as_object_mut() {
                    object.insert("type".into(), event_name(&event).into());
                    if let Some(id) = event.id() {
                        object.insert("id".into(), id.into());
                    }
                }
                if sink.send(Message::text(message.to_string())).await.is_err() {
                    return;
                }
                count_log_bytes(&event);
            }
            incoming = incoming.next() => match incoming {
                Some(Ok(m)) if !m.is_close() => {}
                _ => return,
            },
            _ = heartbeat.tick() => {
                if sink.send(Message::ping(Vec::new())).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = sink.send(Message::close()).await;
}

#[derive(Serialize)]
struct EventsReply {
    job_name: String,
    namespace: String,
    events: Vec<JobEvent>,
    timestamp: String,
}

async fn events(
    name: JobName,
    namespace: Option<String>,
    state: AppState,
) -> Result<impl Reply, ApiError> {
    let ns = state.scope(namespace.as_deref())?;
    let client = state.client()?;
    let events = jobs::events::job_events(client, &ns, &name).await?;
    Ok(warp::reply::json(&EventsReply {
        job_name: name.to_string(),
        namespace: ns.to_string(),
        events,
        timestamp: now_rfc3339(),
    }))
}

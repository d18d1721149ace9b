//! The job endpoints: status, logs, test-run logs and delete. Each filter parses its
//! path into a [`JobName`] (or [`RunId`]) first, so that a name the apiserver could
//! never accept is answered 400 before any call.

use serde::{Deserialize, Serialize};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::error::{ApiError, InvalidInput, reply};
use super::runs::{NamespaceQuery, namespace_query};
use super::with_state;
use crate::archive::{self, Archive, record::RunRecord};
use crate::jobs::logs::{JobLogs, LogOptions, LogsError, job_logs};
use crate::jobs::status::{Phase, StatusView};
use crate::jobs::timeline::Timeline;
use crate::jobs::{self, JobError};
use crate::names::{JobName, Namespace, RunId};
use crate::state::AppState;
use crate::time::now_rfc3339;
use std::sync::Arc;

/// A path segment parsed as `T`; anything else is a 400 naming the rule it broke.
pub(crate) fn param<T>() -> impl Filter<Extract = (T,), Error = warp::Rejection> + Clone
where
    T: std::str::FromStr<Err = crate::names::InvalidName> + Send + 'static,
{
    warp::path::param::<String>().and_then(|raw: String| async move {
        raw.parse::<T>()
            .map_err(|e| warp::reject::custom(InvalidInput(e.to_string())))
    })
}

/// `GET /api/k8s/jobs/{job_name}/status`, and its alias `GET /api/k8s/status/{job_name}`
/// (the path SparkTest's own backend calls).
pub fn status_route(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    job_path("status")
        .and(warp::get())
        .and(namespace_query())
        .and(with_state(state))
        .then(|name, q: NamespaceQuery, state| async move {
            reply(status(name, q.namespace, state).await)
        })
}

/// `GET /api/k8s/jobs/{job_name}/logs`, and its alias `GET /api/k8s/logs/{job_name}`
/// (the path SparkTest's own backend calls).
pub fn logs_route(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    job_path("logs")
        .and(warp::get())
        .and(log_query())
        .and(with_state(state))
        .then(|name, query, state| async move { reply(logs(name, query, state).await) })
}

/// `/api/k8s/jobs/{job_name}/{action}` or `/api/k8s/{action}/{job_name}`: one filter,
/// so that both paths share every parameter, answer and error.
fn job_path(
    action: &'static str,
) -> impl Filter<Extract = (JobName,), Error = warp::Rejection> + Clone {
    let documented = warp::path!("api" / "k8s" / "jobs" / ..)
        .and(param::<JobName>())
        .and(warp::path(action))
        .and(warp::path::end());
    let alias = warp::path!("api" / "k8s" / ..)
        .and(warp::path(action))
        .and(param::<JobName>())
        .and(warp::path::end());
    documented.or(alias).unify()
}

/// `GET /api/test-runs/{run_id}/logs`: the logs of job `test-run-{run_id}`.
pub fn test_run_logs_route(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "test-runs" / ..)
        .and(param::<RunId>())
        .and(warp::path!("logs"))
        .and(warp::get())
        .and(log_query())
        .and(with_state(state))
        .then(|run_id: RunId, query, state| async move {
            reply(logs(run_id.job_name(), query, state).await)
        })
}

/// `DELETE /api/k8s/jobs/{job_name}`
pub fn delete_route(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "k8s" / "jobs" / ..)
        .and(param::<JobName>())
        .and(warp::path::end())
        .and(warp::delete())
        .and(namespace_query())
        .and(with_state(state))
        .then(|name, q: NamespaceQuery, state| async move {
            reply(delete(name, q.namespace, state).await)
        })
}

/// The query of the log endpoints, as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub container: Option<String>,
    pub all_containers: Option<bool>,
    pub tail: Option<u32>,
    pub timestamps: Option<bool>,
    pub since_seconds: Option<u64>,
    pub since_time: Option<String>,
    pub limit_bytes: Option<u64>,
    pub previous: Option<bool>,
    /// Checked by caller authentication (`api::auth`), not here.
    #[serde(default, rename = "access_token")]
    pub _access_token: Option<serde::de::IgnoredAny>,
}

fn log_query() -> impl Filter<Extract = (LogQuery,), Error = warp::Rejection> + Clone {
    warp::query::<LogQuery>()
}

impl LogQuery {
    /// Validates and caps the query: `tail` and `limit_bytes` never exceed the configured
    /// maxima, pod and container names must be names, `since_time` RFC 3339.
    fn into_options(self, limits: crate::state::LogLimits) -> Result<LogOptions, ApiError> {
        for (what, value) in [("pod", &self.pod), ("container", &self.container)] {
            if let Some(v) = value {
                v.parse::<JobName>().map_err(|e| {
                    ApiError::Validation(format!("invalid {what} name: {}", e.rule))
                })?;
            }
        }
        if self.container.is_some() && self.all_containers == Some(true) {
            return Err(ApiError::Validation(
                "container and all_containers=true exclude each other".into(),
            ));
        }
        if self.since_seconds.is_some() && self.since_time.is_some() {
            return Err(ApiError::Validation(
                "since_seconds and since_time exclude each other".into(),
            ));
        }
        if self.since_seconds == Some(0) {
            return Err(ApiError::Validation(
                "since_seconds must be at least 1".into(),
            ));
        }
        let since_time = match self.since_time {
            Some(t) => Some(
                crate::time::parse_rfc3339(&t)
                    .map(crate::time::format_rfc3339)
                    .ok_or_else(|| {
                        ApiError::Validation(
                            "since_time must be an RFC 3339 time such as 2025-07-07T10:30:00Z"
                                .into(),
                        )
                    })?,
            ),
            None => None,
        };
        if self.limit_bytes == Some(0) {
            return Err(ApiError::Validation(
                "limit_bytes must be at least 1".into(),
            ));
        }
        Ok(LogOptions {
            pod: self.pod,
            container: self.container,
            all_containers: self.all_containers.unwrap_or(false),
            tail_lines: self.tail.unwrap_or(limits.max_lines).min(limits.max_lines),
            timestamps: self.timestamps.unwrap_or(true),
            since_seconds: self.since_seconds,
            since_time,
            limit_bytes: self
                .limit_bytes
                .unwrap_or(limits.max_bytes)
                .min(limits.max_bytes),
            previous: self.previous.unwrap_or(false),
        })
    }
}

/// Where an answer comes from: the cluster, or the archive of a run that has finished
/// (whose Job may be gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Cluster,
    Archive,
}

#[derive(Serialize)]
struct StatusReply {
    #[serde(flatten)]
    view: StatusView,
    timeline: Timeline,
    source: Source,
    timestamp: String,
}

/// The archived record of a run when this service knows it archived: a finished run is
/// answered from there, with no apiserver call. A store that fails is not an answer:
/// the cluster is asked instead.
pub(crate) async fn known_archived(
    state: &AppState,
    ns: &Namespace,
    name: &JobName,
) -> Option<(Archive, Arc<RunRecord>)> {
    let archive = state.archive()?;
    let record = archive.known(ns, name).await.ok().flatten()?;
    Some((archive.clone(), record))
}

/// After the cluster answered 404: the run's archived record, if any.
pub(crate) async fn archived_instead(
    state: &AppState,
    ns: &Namespace,
    name: &JobName,
) -> Result<Option<(Archive, Arc<RunRecord>)>, ApiError> {
    let Some(archive) = state.archive() else {
        return Ok(None);
    };
    Ok(archive
        .lookup(ns, name)
        .await?
        .map(|record| (archive.clone(), record)))
}

/// A run the cluster reports finished goes to the archive (once).
fn archive_if_finished(state: &AppState, ns: &Namespace, name: &JobName, phase: Phase) {
    if phase.is_terminal()
        && let Some(archive) = state.archive()
    {
        archive.request(ns, name);
    }
}

/// The archived status answer: as the cluster gave it when the run ended.
fn archived_status(record: &RunRecord) -> warp::reply::Response {
    let mut body = record.status.clone();
    body["source"] = serde_json::to_value(Source::Archive).unwrap_or_default();
    body["timestamp"] = now_rfc3339().into();
    warp::reply::json(&body).into_response()
}

async fn status(
    name: JobName,
    namespace: Option<String>,
    state: AppState,
) -> Result<warp::reply::Response, ApiError> {
    let ns = state.scope(namespace.as_deref())?;
    if let Some((_, record)) = known_archived(&state, &ns, &name).await {
        return Ok(archived_status(&record));
    }
    let client = state.client()?;
    let shared = state
        .answers()
        .status
        .get((ns.clone(), name.clone()), || async {
            jobs::job_report(client, state.caches(&ns), &ns, &name)
                .await
                .map(Arc::new)
        });
    match shared.await {
        Ok(report) => {
            archive_if_finished(&state, &ns, &name, report.state.phase);
            Ok(warp::reply::json(&StatusReply {
                view: StatusView::new(&report.job, report.state.clone()),
                timeline: report.timeline.clone(),
                source: Source::Cluster,
                timestamp: now_rfc3339(),
            })
            .into_response())
        }
        Err(e @ JobError::NotFound { .. }) => match archived_instead(&state, &ns, &name).await? {
            Some((_, record)) => Ok(archived_status(&record)),
            None => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

#[derive(Serialize)]
struct LogsReply<'a> {
    job_name: &'a str,
    pod_name: &'a str,
    /// Written by [`json_reply`] itself, after the other fields.
    #[serde(skip)]
    logs: &'a str,
    timestamp: String,
    status: Phase,
    namespace: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<&'a str>,
    truncated: bool,
    pod_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    source: Source,
}

async fn logs(
    name: JobName,
    query: LogQuery,
    state: AppState,
) -> Result<warp::reply::Response, ApiError> {
    let ns = state.scope(query.namespace.as_deref())?;
    let ns = &ns;
    let options = query.into_options(state.log_limits())?;
    let (found, source) = match known_archived(&state, ns, &name).await {
        Some((archive, record)) => (
            Arc::new(archive::read::logs(&archive, &record, &options).await?),
            Source::Archive,
        ),
        None => {
            let client = state.client()?;
            let key = (ns.clone(), name.clone(), options.clone());
            let read = state
                .answers()
                .logs
                .get(key, || async {
                    let _turn = state.log_read_permit().await;
                    job_logs(client, state.caches(ns), ns, &name, &options)
                        .await
                        .map(Arc::new)
                })
                .await;
            match read {
                Ok(found) => {
                    archive_if_finished(&state, ns, &name, found.state.phase);
                    (found, Source::Cluster)
                }
                Err(LogsError::Job(e @ JobError::NotFound { .. })) => {
                    match archived_instead(&state, ns, &name).await? {
                        Some((archive, record)) => (
                            Arc::new(archive::read::logs(&archive, &record, &options).await?),
                            Source::Archive,
                        ),
                        None => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let JobLogs {
        pod_name,
        container,
        logs,
        truncated,
        state: job_state,
        message,
        pod_count,
    } = &*found;
    crate::metrics::metrics().log_bytes(logs.len());
    Ok(json_reply(&LogsReply {
        job_name: name.as_str(),
        pod_name: pod_name.as_deref().unwrap_or_default(),
        logs,
        timestamp: now_rfc3339(),
        status: job_state.phase,
        namespace: ns.as_str(),
        container: container.as_deref(),
        truncated: *truncated,
        pod_count: *pod_count,
        reason: job_state.reason.as_deref(),
        message: message.as_deref().or(job_state.message.as_deref()),
        source,
    }))
}

/// A log reply written once into a buffer sized for it (a log reply is mostly its
/// `logs`: growing a small buffer would copy it again and again): the other fields by
/// serde, then `"logs"` by the fast escaper of [`super::json`].
fn json_reply(reply: &LogsReply) -> warp::reply::Response {
    let mut body = Vec::with_capacity(reply.logs.len() + reply.logs.len() / 16 + 1024);
    if let Err(e) = serde_json::to_writer(&mut body, reply) {
        return ApiError::Validation(format!("cannot encode the reply: {e}")).into_response();
    }
    // `{...}` becomes `{...,"logs":"..."}`.
    body.pop();
    body.extend_from_slice(b",\"logs\":");
    super::json::push_json_string(&mut body, reply.logs);
    body.push(b'}');
    let mut response = warp::reply::Response::new(body.into());
    response.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("application/json"),
    );
    response
}

#[derive(Serialize)]
struct DeleteReply {
    message: String,
    timestamp: String,
}

async fn delete(
    name: JobName,
    namespace: Option<String>,
    state: AppState,
) -> Result<impl warp::Reply, ApiError> {
    let ns = state.scope(namespace.as_deref())?;
    let client = state.client()?;
    let allow_unmanaged = state.policy().delete_unmanaged;
    // What the run wrote is archived before the Job and its pods go (a run that had not
    // finished as `cancelled`); if that fails, nothing is deleted.
    if let Some(archive) = state.archive() {
        archive.before_delete(client, &ns, &name).await?;
    }
    jobs::delete_job(client, &ns, &name, allow_unmanaged).await?;
    crate::metrics::metrics().job_deleted();
    tracing::info!(job = %name, namespace = %ns, "job deleted");
    Ok(warp::reply::json(&DeleteReply {
        message: format!("Job '{name}' deleted successfully"),
        timestamp: now_rfc3339(),
    }))
}

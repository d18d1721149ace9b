//! Answers from the archive: a run's status and its logs, with the log endpoints'
//! parameters, as the cluster would have given them when the run ended.

use std::sync::Arc;

use super::record::{Render, RunRecord, render};
use super::{Archive, StoreError};
use crate::jobs::logs::{JobLogs, LogOptions, LogsError};
use crate::jobs::status::{JobState, Phase};

/// Why an archived log cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The request names a pod or container the run did not have.
    #[error(transparent)]
    Logs(#[from] LogsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The run's state as its archived status answer says.
pub fn state(record: &RunRecord) -> JobState {
    let text = |field: &str| record.status[field].as_str().map(str::to_string);
    JobState {
        phase: serde_json::from_value(record.status["status"].clone()).unwrap_or(Phase::Failed),
        reason: text("reason"),
        message: text("message"),
    }
}

/// The logs of an archived run, as `GET .../logs` answers them.
pub async fn logs(
    archive: &Archive,
    record: &Arc<RunRecord>,
    options: &LogOptions,
) -> Result<JobLogs, ReadError> {
    let state = state(record);
    let pod_count = record.pods.len();
    let empty = |pod: Option<String>, container: Option<String>, message: String| JobLogs {
        pod_name: pod,
        container,
        logs: Arc::from(""),
        truncated: false,
        state: state.clone(),
        message: Some(message),
        pod_count,
    };
    let pod_name = match options.pod.clone().or_else(|| record.default_pod.clone()) {
        Some(name) => name,
        None => {
            return Ok(empty(
                None,
                None,
                "the run had no pod when it was archived".into(),
            ));
        }
    };
    let Some(pod) = record.pod(&pod_name) else {
        return Err(LogsError::NoSuchPod {
            pod: pod_name,
            job: record.job_name.clone(),
        }
        .into());
    };
    if options.previous {
        return Ok(empty(
            Some(pod_name),
            None,
            "previous (restarted) containers are not archived".into(),
        ));
    }
    let names = || pod.containers.iter().map(|c| c.name.as_str());
    let containers: Vec<&super::record::ContainerSummary> = if options.all_containers {
        pod.containers.iter().collect()
    } else {
        let wanted = options
            .container
            .clone()
            .or_else(|| pod.default_container.clone())
            .unwrap_or_default();
        match pod.containers.iter().find(|c| c.name == wanted) {
            Some(c) => vec![c],
            None => {
                return Err(LogsError::NoSuchContainer {
                    container: wanted,
                    pod: pod_name,
                    containers: names().collect::<Vec<_>>().join(", "),
                }
                .into());
            }
        }
    };
    let since = match (&options.since_time, options.since_seconds) {
        (Some(t), _) => crate::time::parse_rfc3339(t),
        (None, Some(s)) => {
            std::time::SystemTime::now().checked_sub(std::time::Duration::from_secs(s))
        }
        (None, None) => None,
    };
    let mut text = String::new();
    let mut whole: Option<Arc<str>> = None;
    let mut truncated = false;
    let mut message = None;
    for container in &containers {
        let Some(key) = &container.log_key else {
            continue;
        };
        let how = Render {
            tail_lines: options.tail_lines,
            timestamps: options.timestamps,
            since,
            limit_bytes: options.limit_bytes.saturating_sub(text.len() as u64),
            prefix: options
                .all_containers
                .then(|| format!("[pod/{}/{}] ", pod.name, container.name)),
        };
        if container.log_bytes > archive.options().stream_above {
            // Too large to hold: read as a stream for this answer only.
            let Some((part, cut)) = archive.log_window(key, &how).await? else {
                message = Some(format!("the archived log {key} is missing"));
                continue;
            };
            text.push_str(&part);
            if cut {
                truncated = true;
                break;
            }
            continue;
        }
        let Some(log) = archive.log_text(key).await? else {
            message = Some(format!("the archived log {key} is missing"));
            continue;
        };
        if containers.len() == 1 && how.shows_all_of(&log) {
            // The whole log as archived: handed out as the archive holds it.
            whole = Some(log.clone());
            if container.truncated {
                message = Some(format!(
                    "the log of container {} was archived up to its first {} bytes",
                    container.name, container.log_bytes
                ));
            }
            break;
        }
        let (part, cut) = render(&log, &how);
        text.push_str(&part);
        if container.truncated {
            message = Some(format!(
                "the log of container {} was archived up to its first {} bytes",
                container.name, container.log_bytes
            ));
        }
        if cut {
            truncated = true;
            break;
        }
    }
    Ok(JobLogs {
        pod_name: Some(pod_name),
        container: (!options.all_containers)
            .then(|| containers.first().map(|c| c.name.clone()))
            .flatten(),
        logs: whole.unwrap_or_else(|| Arc::from(text)),
        truncated,
        state,
        message,
        pod_count,
    })
}

/// The events a live log stream of an archived run sends: the last `tail_lines` lines of
/// its default pod's container (`container`, else the default one), then its final
/// status; the stream then ends.
pub async fn replay(
    archive: &Archive,
    record: &Arc<RunRecord>,
    container: Option<&str>,
    tail_lines: u32,
) -> Result<Vec<crate::jobs::stream::StreamEvent>, ReadError> {
    use crate::jobs::stream::StreamEvent;
    let mut events = Vec::new();
    if let Some(pod) = record.default_pod.as_deref().and_then(|p| record.pod(p)) {
        let wanted = container
            .map(str::to_string)
            .or_else(|| pod.default_container.clone())
            .unwrap_or_default();
        let Some(summary) = pod.containers.iter().find(|c| c.name == wanted) else {
            return Err(LogsError::NoSuchContainer {
                container: wanted,
                pod: pod.name.clone(),
                containers: pod
                    .containers
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .into());
        };
        let text: Option<Arc<str>> = match &summary.log_key {
            None => None,
            Some(key) if summary.log_bytes > archive.options().stream_above => {
                let how = Render {
                    tail_lines,
                    timestamps: true,
                    since: None,
                    limit_bytes: u64::MAX,
                    prefix: None,
                };
                archive
                    .log_window(key, &how)
                    .await?
                    .map(|(text, _)| Arc::from(text))
            }
            Some(key) => archive.log_text(key).await?,
        };
        if let Some(log) = text {
            let lines: Vec<&str> = log.lines().collect();
            let skip = lines.len().saturating_sub(tail_lines as usize);
            for line in &lines[skip..] {
                let (timestamp, text) = line.split_once(' ').unwrap_or((line, ""));
                events.push(StreamEvent::Log {
                    pod: pod.name.clone(),
                    container: summary.name.clone(),
                    timestamp: timestamp.to_string(),
                    line: text.to_string(),
                });
            }
        }
    }
    if let Ok(view) = serde_json::from_value(record.status.clone()) {
        events.push(StreamEvent::Status(view));
    }
    Ok(events)
}

//! The Kubernetes Events of a job and its pods (core/v1), the answer to "why is my test
//! not running": FailedScheduling, ErrImagePull, BackoffLimitExceeded, DeadlineExceeded.

use serde::{Deserialize, Serialize};

use super::{JobError, get_job, job_pods};
use crate::kube::resources::{List, encode};
use crate::kube::{Client, KubeError};
use crate::names::{JobName, Namespace};

/// At most this many of a job's pods have their events read (the newest).
const MAX_PODS: usize = 10;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    #[serde(default, rename = "type")]
    type_: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    count: Option<i64>,
    #[serde(default)]
    first_timestamp: Option<String>,
    #[serde(default)]
    last_timestamp: Option<String>,
    #[serde(default)]
    event_time: Option<String>,
    #[serde(default)]
    series: Option<Series>,
    #[serde(default)]
    involved_object: InvolvedObject,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Series {
    #[serde(default)]
    count: Option<i64>,
    #[serde(default)]
    last_observed_time: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct InvolvedObject {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
}

/// One event as the API reports it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct JobEvent {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    pub count: i64,
    pub first_time: Option<String>,
    pub last_time: Option<String>,
    /// `Job/NAME` or `Pod/NAME`.
    pub object: String,
}

impl From<RawEvent> for JobEvent {
    /// Old-style events carry `firstTimestamp`/`lastTimestamp`/`count`; events written
    /// through events.k8s.io carry `eventTime` and `series` instead.
    fn from(e: RawEvent) -> Self {
        let series_count = e.series.as_ref().and_then(|s| s.count);
        let series_last = e.series.and_then(|s| s.last_observed_time);
        Self {
            type_: e.type_.unwrap_or_else(|| "Normal".into()),
            reason: e.reason.unwrap_or_default(),
            message: e.message.unwrap_or_default(),
            count: e.count.or(series_count).unwrap_or(1),
            first_time: e.first_timestamp.or_else(|| e.event_time.clone()),
            last_time: e.last_timestamp.or(series_last).or(e.event_time),
            object: format!("{}/{}", e.involved_object.kind, e.involved_object.name),
        }
    }
}

/// Lists the events of one object: `fieldSelector=involvedObject.kind=K,involvedObject.name=N`.
async fn events_of(
    client: &Client,
    ns: &Namespace,
    kind: &str,
    name: &str,
) -> Result<Vec<JobEvent>, KubeError> {
    let selector = format!("involvedObject.kind={kind},involvedObject.name={name}");
    let path = format!(
        "/api/v1/namespaces/{}/events?fieldSelector={}",
        encode(ns.as_str()),
        encode(&selector)
    );
    let list: List<RawEvent> = client.get_json(&path).await?;
    Ok(list.items.into_iter().map(JobEvent::from).collect())
}

/// The events of a job and of its (newest) pods, oldest first.
pub async fn job_events(
    client: &Client,
    ns: &Namespace,
    name: &JobName,
) -> Result<Vec<JobEvent>, JobError> {
    let job = get_job(client, ns, name).await?;
    let mut pods = job_pods(client, ns, &job).await?;
    pods.sort_by(|a, b| {
        b.metadata
            .creation_timestamp
            .cmp(&a.metadata.creation_timestamp)
    });
    let mut events = events_of(client, ns, "Job", name.as_str()).await?;
    for pod in pods.iter().take(MAX_PODS) {
        events.extend(events_of(client, ns, "Pod", &pod.metadata.name).await?);
    }
    events.sort_by(|a, b| {
        (&a.last_time, &a.first_time, &a.object).cmp(&(&b.last_time, &b.first_time, &b.object))
    });
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_style_events_use_event_time_and_series() {
        let raw: RawEvent = serde_json::from_value(serde_json::json!({
            "type": "Warning", "reason": "FailedScheduling", "message": "0/1 nodes are available",
            "eventTime": "2026-11-26T12:06:15.123456Z",
            "series": {"count": 4, "lastObservedTime": "2026-11-26T12:08:15.000000Z"},
            "involvedObject": {"kind": "Pod", "name": "p"}
        }))
        .unwrap();
        let e = JobEvent::from(raw);
        assert_eq!(e.count, 4);
        assert_eq!(e.first_time.as_deref(), Some("2026-11-26T12:06:15.123456Z"));
        assert_eq!(e.last_time.as_deref(), Some("2026-11-26T12:08:15.000000Z"));
        assert_eq!(e.object, "Pod/p");
    }
}

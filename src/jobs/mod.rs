//! SparkTest's operations on Jobs, over the Kubernetes client: read a Job and its pods,
//! derive its status, read its logs the way kubectl does, delete it with its pods.

pub mod cache;
pub mod events;
pub mod hub;
pub mod logs;
pub mod pods;
pub mod shared;
pub mod status;
pub mod stream;
pub mod timeline;

use http::Method;
use serde::de::IgnoredAny;

use crate::kube::resources::{self, Job, List, Pod, job_path, pods_path, query};
use crate::kube::{Client, KubeError};
use crate::names::{JobName, Namespace};

/// What went wrong with a job operation: the job is missing, or the client failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JobError {
    /// The Job does not exist in the namespace (the apiserver answered 404).
    #[error("job '{name}' not found in namespace '{namespace}'")]
    NotFound { name: String, namespace: String },
    /// The Job is not one SparkTest manages, and deleting others is not allowed.
    #[error(
        "job '{name}' is not managed by SparkTest (it has neither the label \
         app.kubernetes.io/managed-by=sparktest nor app=sparktest): refusing to delete it"
    )]
    Unmanaged { name: String },
    /// Any other failure of the call.
    #[error(transparent)]
    Kube(#[from] KubeError),
}

impl JobError {
    fn from_kube(e: KubeError, name: &JobName, namespace: &Namespace) -> Self {
        if e.code() == Some(404) {
            Self::NotFound {
                name: name.to_string(),
                namespace: namespace.to_string(),
            }
        } else {
            Self::Kube(e)
        }
    }
}

/// `GET /apis/batch/v1/namespaces/{ns}/jobs/{name}`
pub async fn get_job(client: &Client, ns: &Namespace, name: &JobName) -> Result<Job, JobError> {
    client
        .get_json(&job_path(ns.as_str(), name.as_str()))
        .await
        .map_err(|e| JobError::from_kube(e, name, ns))
}

/// The label selector of a Job's pods (`labelSelector` syntax): the Job's own
/// `spec.selector` (the `controller-uid` label, which every Kubernetes version sets;
/// the `job-name` label moved to `batch.kubernetes.io/job-name` in 1.27), else its
/// `controller-uid`, else its `job-name`. Never empty: no Job selects every pod.
pub fn pod_selector(job: &Job) -> String {
    job.spec
        .selector
        .as_ref()
        .and_then(resources::LabelSelector::to_query)
        .or_else(|| {
            job.metadata
                .uid
                .as_ref()
                .map(|uid| format!("controller-uid={uid}"))
        })
        .unwrap_or_else(|| format!("job-name={}", job.metadata.name))
}

/// The Job's pods, selected by [`pod_selector`].
pub async fn job_pods(client: &Client, ns: &Namespace, job: &Job) -> Result<Vec<Pod>, KubeError> {
    let selector = pod_selector(job);
    let path = format!(
        "{}{}",
        pods_path(ns.as_str()),
        query(&[("labelSelector", selector)])
    );
    let list: List<Pod> = client.get_json(&path).await?;
    Ok(list.items)
}

/// The Job's selector when Kubernetes generated it (its controller-uid): only that
/// one selects exactly the Job's own pods; a hand-written one may also select pods the
/// pod cache does not hold.
fn generated_selector(job: &Job) -> Option<&resources::LabelSelector> {
    job.spec.selector.as_ref().filter(|s| {
        s.match_expressions.is_empty()
            && s.match_labels
                .keys()
                .any(|k| k == "controller-uid" || k == "batch.kubernetes.io/controller-uid")
    })
}

/// The Job's pods from the pod cache when it holds them, else from the apiserver.
pub async fn cached_job_pods(
    client: &Client,
    cache: Option<&cache::PodCache>,
    ns: &Namespace,
    job: &Job,
) -> Result<Vec<Pod>, KubeError> {
    match cache
        .zip(generated_selector(job))
        .and_then(|(cache, selector)| cache.select(selector))
    {
        Some(pods) => Ok(pods),
        None => job_pods(client, ns, job).await,
    }
}

/// A Job with its derived state and the timeline of the pod its logs come from.
#[derive(Debug)]
pub struct JobReport {
    pub job: std::sync::Arc<Job>,
    pub state: status::JobState,
    pub timeline: timeline::Timeline,
}

/// The Job from the cache when it holds it, else from the apiserver.
pub async fn cached_job(
    client: &Client,
    caches: Option<&cache::Caches>,
    ns: &Namespace,
    name: &JobName,
) -> Result<std::sync::Arc<Job>, JobError> {
    match caches.and_then(|c| c.jobs.get(name.as_str())) {
        Some(job) => Ok(job),
        None => get_job(client, ns, name).await.map(std::sync::Arc::new),
    }
}

/// Reads a Job and its pods (each from the cache when it holds them) and derives its
/// state and timeline.
pub async fn job_report(
    client: &Client,
    caches: Option<&cache::Caches>,
    ns: &Namespace,
    name: &JobName,
) -> Result<JobReport, JobError> {
    let job = cached_job(client, caches, ns, name).await?;
    let pods = cached_job_pods(client, caches.map(|c| &c.pods), ns, &job).await?;
    let state = status::job_state(&job, Some(&pods));
    let timeline = timeline::job_timeline(&pods);
    Ok(JobReport {
        job,
        state,
        timeline,
    })
}

/// Why a page of SparkTest's Jobs cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The `continue` token has expired (the apiserver's 410): list from the start.
    #[error("the continue token expired; list again from the first page ({0})")]
    ContinueExpired(String),
    /// The apiserver cannot read the `continue` token (its 400).
    #[error("continue must be the token of the previous page ({0})")]
    ContinueInvalid(String),
    #[error(transparent)]
    Kube(#[from] KubeError),
}

/// A page of SparkTest's Jobs (label `app=sparktest`) in `ns`: `limit` of them, after
/// the page whose `continue` token is given.
pub async fn list_managed(
    client: &Client,
    ns: &Namespace,
    limit: u32,
    continue_token: Option<String>,
) -> Result<List<Job>, ListError> {
    let mut pairs = vec![
        ("labelSelector", crate::runs::SPARKTEST_SELECTOR.to_string()),
        ("limit", limit.to_string()),
    ];
    let continued = continue_token.is_some();
    if let Some(token) = continue_token {
        pairs.push(("continue", token));
    }
    let path = format!("{}{}", resources::jobs_path(ns.as_str()), query(&pairs));
    client.get_json(&path).await.map_err(|e| match e {
        KubeError::Api { code: 410, status } => {
            ListError::ContinueExpired(status.message.unwrap_or_else(|| "410 Gone".into()))
        }
        KubeError::Api { code: 400, status } if continued => {
            ListError::ContinueInvalid(status.message.unwrap_or_else(|| "400 Bad Request".into()))
        }
        other => ListError::Kube(other),
    })
}

/// The states of many Jobs (a page of the job list), each as [`job_report`] derives
/// it, so that the list and `/status` never disagree. Only the Jobs whose state depends
/// on their pods ([`status::needs_pods`]) have their pods read: from the pod cache when
/// it holds them, else all at once in one pod list selecting exactly those Jobs' pods.
pub async fn job_states(
    client: &Client,
    caches: Option<&cache::Caches>,
    ns: &Namespace,
    jobs: &[Job],
) -> Result<Vec<status::JobState>, KubeError> {
    let needing: Vec<&Job> = jobs.iter().filter(|j| status::needs_pods(j)).collect();
    let mut cached: Vec<(&str, Vec<Pod>)> = Vec::new();
    let mut uncached: Vec<&str> = Vec::new();
    for job in &needing {
        let Some(uid) = job.metadata.uid.as_deref() else {
            continue;
        };
        match caches
            .map(|c| &c.pods)
            .zip(generated_selector(job))
            .and_then(|(cache, selector)| cache.select(selector))
        {
            Some(pods) => cached.push((uid, pods)),
            None => uncached.push(uid),
        }
    }
    let listed: Vec<Pod> = if uncached.is_empty() {
        Vec::new()
    } else {
        // Every Kubernetes version labels a Job's pods `controller-uid` (1.27 on, also
        // `batch.kubernetes.io/controller-uid`).
        let selector = format!("controller-uid in ({})", uncached.join(","));
        let path = format!(
            "{}{}",
            pods_path(ns.as_str()),
            query(&[("labelSelector", selector)])
        );
        client.get_json::<List<Pod>>(&path).await?.items
    };
    Ok(jobs
        .iter()
        .map(|job| {
            if !status::needs_pods(job) {
                return status::job_state(job, None);
            }
            let uid = job.metadata.uid.as_deref().unwrap_or_default();
            let pods: Vec<Pod> = match cached.iter().find(|(u, _)| *u == uid) {
                Some((_, pods)) => pods.clone(),
                None => listed
                    .iter()
                    .filter(|p| {
                        job.spec
                            .selector
                            .as_ref()
                            .is_some_and(|s| s.matches(&p.metadata.labels))
                    })
                    .cloned()
                    .collect(),
            };
            status::job_state(job, Some(&pods))
        })
        .collect())
}

/// Whether SparkTest manages this Job: `app.kubernetes.io/managed-by: sparktest`, or
/// SparkTest's own `app: sparktest`.
pub fn is_managed(job: &Job) -> bool {
    let labels = &job.metadata.labels;
    labels
        .get("app.kubernetes.io/managed-by")
        .map(String::as_str)
        == Some("sparktest")
        || labels.get("app").map(String::as_str) == Some("sparktest")
}

/// Deletes a Job and its pods; unless `allow_unmanaged`, only a Job SparkTest manages.
///
/// batch/v1 Jobs keep the `orphan` default propagation policy for backward
/// compatibility: a plain DELETE removes the Job and leaves its pods running. Sending
/// `propagationPolicy: Background` makes the garbage collector delete the pods once the
/// Job is gone, which is what `kubectl delete job` does too. The uid precondition makes
/// the delete apply to the Job that was checked, not to one created in its place since
/// (the apiserver answers 409 then).
pub async fn delete_job(
    client: &Client,
    ns: &Namespace,
    name: &JobName,
    allow_unmanaged: bool,
) -> Result<(), JobError> {
    let job = get_job(client, ns, name).await?;
    if !allow_unmanaged && !is_managed(&job) {
        return Err(JobError::Unmanaged {
            name: name.to_string(),
        });
    }
    let body = delete_options(job.metadata.uid.as_deref());
    client
        .request_json::<IgnoredAny>(
            Method::DELETE,
            &job_path(ns.as_str(), name.as_str()),
            Some((body.to_string().into(), "application/json")),
        )
        .await
        .map(|_| ())
        .map_err(|e| JobError::from_kube(e, name, ns))
}

/// The `DeleteOptions` body of a delete: background propagation, and the uid
/// precondition when the uid is known.
pub fn delete_options(uid: Option<&str>) -> serde_json::Value {
    let mut body = serde_json::json!({
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "propagationPolicy": "Background",
    });
    if let Some(uid) = uid {
        body["preconditions"] = serde_json::json!({ "uid": uid });
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(selector: serde_json::Value) -> Job {
        serde_json::from_value(
            serde_json::json!({"metadata": {"name": "j"}, "spec": {"selector": selector}}),
        )
        .unwrap()
    }

    #[test]
    fn only_a_generated_selector_is_answered_from_the_pod_cache() {
        for generated in [
            serde_json::json!({"matchLabels": {"controller-uid": "u"}}),
            serde_json::json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}}),
        ] {
            assert!(generated_selector(&job(generated)).is_some());
        }
        for manual in [
            serde_json::json!({"matchLabels": {"app": "x"}}),
            serde_json::json!({}),
            serde_json::json!({"matchLabels": {"controller-uid": "u"},
                "matchExpressions": [{"key": "a", "operator": "Exists"}]}),
        ] {
            assert!(generated_selector(&job(manual)).is_none());
        }
    }
}

//! SparkTest's operations on Jobs, over the Kubernetes client: read a Job and its pods,
//! derive its status, read its logs the way kubectl does, delete it with its pods.

pub mod events;
pub mod logs;
pub mod pods;
pub mod status;
pub mod stream;

use http::Method;
use serde::de::IgnoredAny;

use crate::kube::resources::{self, Job, List, Pod, job_path, jobs_path, pods_path, query};
use crate::kube::{Client, KubeError};
use crate::names::{JobName, Namespace};

/// What went wrong with a job operation: the job is missing, or the client failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The Job does not exist in the namespace (the apiserver answered 404).
    #[error("job '{name}' not found in namespace '{namespace}'")]
    NotFound { name: String, namespace: String },
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

/// The Job's pods, selected by the Job's own `spec.selector` (the `controller-uid`
/// label, which every Kubernetes version sets; the `job-name` label moved to
/// `batch.kubernetes.io/job-name` in 1.27).
pub async fn job_pods(client: &Client, ns: &Namespace, job: &Job) -> Result<Vec<Pod>, KubeError> {
    let selector = job
        .spec
        .selector
        .as_ref()
        .and_then(resources::LabelSelector::to_query)
        .or_else(|| {
            job.metadata
                .uid
                .as_ref()
                .map(|uid| format!("controller-uid={uid}"))
        })
        .unwrap_or_else(|| format!("job-name={}", job.metadata.name));
    let path = format!(
        "{}{}",
        pods_path(ns.as_str()),
        query(&[("labelSelector", selector)])
    );
    let list: List<Pod> = client.get_json(&path).await?;
    Ok(list.items)
}

/// A Job with its derived state (and the pods, when they were needed).
pub struct JobReport {
    pub job: Job,
    pub state: status::JobState,
}

/// Reads a Job and derives its state, listing its pods only when the Job alone cannot
/// tell running from pending.
pub async fn job_report(
    client: &Client,
    ns: &Namespace,
    name: &JobName,
) -> Result<JobReport, JobError> {
    let job = get_job(client, ns, name).await?;
    let pods = if status::needs_pods(&job) {
        Some(job_pods(client, ns, &job).await?)
    } else {
        None
    };
    let state = status::job_state(&job, pods.as_deref());
    Ok(JobReport { job, state })
}

/// Deletes a Job and its pods.
///
/// batch/v1 Jobs keep the `orphan` default propagation policy for backward
/// compatibility: a plain DELETE removes the Job and leaves its pods running. Sending
/// `propagationPolicy=Background` makes the garbage collector delete the pods once the
/// Job is gone, which is what `kubectl delete job` does too.
pub async fn delete_job(client: &Client, ns: &Namespace, name: &JobName) -> Result<(), JobError> {
    let path = format!(
        "{}{}",
        job_path(ns.as_str(), name.as_str()),
        query(&[("propagationPolicy", "Background".into())])
    );
    client
        .request_json::<IgnoredAny>(Method::DELETE, &path, None)
        .await
        .map(|_| ())
        .map_err(|e| JobError::from_kube(e, name, ns))
}

/// The path of a namespace's Job list (for health and listing).
pub fn list_path(ns: &Namespace) -> String {
    jobs_path(ns.as_str())
}

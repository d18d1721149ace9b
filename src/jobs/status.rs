//! What a Job's state means to SparkTest: `pending`, `running`, `completed`, `failed`,
//! `suspended` or `terminating`, with the cluster's own reason when it is not running.

use serde::Serialize;

use crate::kube::resources::{Job, Pod};

/// A Job's status as the API reports it (the endpoints add their `timestamp`); read
/// back from the archive too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StatusView {
    pub job_name: String,
    pub status: Phase,
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub active: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<i32>,
    pub succeeded: i32,
    pub failed: i32,
    pub start_time: Option<String>,
    pub completion_time: Option<String>,
}

impl StatusView {
    pub fn new(job: &Job, state: JobState) -> Self {
        let s = &job.status;
        Self {
            job_name: job.metadata.name.clone(),
            status: state.phase,
            namespace: job.metadata.namespace.clone().unwrap_or_default(),
            reason: state.reason,
            message: state.message,
            active: s.active.unwrap_or(0),
            ready: s.ready,
            succeeded: s.succeeded.unwrap_or(0),
            failed: s.failed.unwrap_or(0),
            start_time: s.start_time.clone(),
            completion_time: s.completion_time.clone(),
        }
    }
}

/// SparkTest's view of a Job. The documented three are `running`, `completed` and
/// `failed`; the others say why a job is not running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Created, but no pod of it is running yet.
    Pending,
    Running,
    Completed,
    Failed,
    /// `spec.suspend` is true: the Job controller keeps no pods.
    Suspended,
    /// Being deleted (`metadata.deletionTimestamp` is set).
    Terminating,
    /// Deleted through the API before it finished: only archived runs say so.
    Cancelled,
}

impl Phase {
    /// Whether the job will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// A phase with the cluster's reason and message where it explains one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub phase: Phase,
    pub reason: Option<String>,
    pub message: Option<String>,
}

impl JobState {
    fn new(phase: Phase) -> Self {
        Self {
            phase,
            reason: None,
            message: None,
        }
    }

    fn because(phase: Phase, reason: Option<&str>, message: Option<&str>) -> Self {
        Self {
            phase,
            reason: reason.filter(|r| !r.is_empty()).map(str::to_string),
            message: message.filter(|m| !m.is_empty()).map(str::to_string),
        }
    }
}

/// Whether [`job_state`] needs the Job's pods to tell `running` from `pending`: only for
/// a Job with active pods that are not all known to be ready (before 1.24 the Job had no
/// `ready` count; then `ready` lags the pods).
pub fn needs_pods(job: &Job) -> bool {
    let s = &job.status;
    if job.metadata.deletion_timestamp.is_some() || terminal_condition(job).is_some() {
        return false;
    }
    let active = s.active.unwrap_or(0);
    active > 0 && s.ready.is_none_or(|ready| ready < active)
}

fn terminal_condition(job: &Job) -> Option<JobState> {
    let true_condition = |t: &str| {
        job.status
            .conditions
            .iter()
            .find(|c| c.type_ == t && c.status == "True")
    };
    // Newer clusters set FailureTarget / SuccessCriteriaMet first, then Failed / Complete
    // once the pods are gone: both mean the outcome is decided.
    for t in ["Failed", "FailureTarget"] {
        if let Some(c) = true_condition(t) {
            return Some(JobState::because(
                Phase::Failed,
                c.reason.as_deref(),
                c.message.as_deref(),
            ));
        }
    }
    for t in ["Complete", "SuccessCriteriaMet"] {
        if let Some(c) = true_condition(t) {
            return Some(JobState::because(
                Phase::Completed,
                c.reason.as_deref(),
                c.message.as_deref(),
            ));
        }
    }
    None
}

/// Derives the state from the Job's conditions first, then its deletion timestamp and
/// suspension, then its counts and (when given) its pods.
///
/// A running Job usually has no conditions at all: "no conditions" alone never means
/// pending.
pub fn job_state(job: &Job, pods: Option<&[Pod]>) -> JobState {
    if let Some(state) = terminal_condition(job) {
        return state;
    }
    if job.metadata.deletion_timestamp.is_some() {
        return JobState::because(Phase::Terminating, Some("Deleting"), None);
    }
    if let Some(c) = job
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Suspended" && c.status == "True")
    {
        return JobState::because(Phase::Suspended, c.reason.as_deref(), c.message.as_deref());
    }
    if job.spec.suspend == Some(true) {
        return JobState::because(
            Phase::Suspended,
            Some("JobSuspended"),
            Some("Job suspended"),
        );
    }
    let active = job.status.active.unwrap_or(0);
    // A pod just finished and the controller has not counted it yet: the job is still
    // running its course (about to complete, fail, or start a retry), not pending.
    if job
        .status
        .uncounted_terminated_pods
        .as_ref()
        .is_some_and(|u| !u.succeeded.is_empty() || !u.failed.is_empty())
    {
        return JobState::new(Phase::Running);
    }
    if active == 0 {
        let message = if job.status.start_time.is_none() {
            "the Job controller has not started a pod yet"
        } else {
            "no pod is active: the Job controller is starting the next one"
        };
        return JobState::because(Phase::Pending, Some("NoActivePod"), Some(message));
    }
    if job.status.ready.is_some_and(|r| r > 0) {
        return JobState::new(Phase::Running);
    }
    let Some(pods) = pods else {
        return JobState::new(Phase::Running);
    };
    let live: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| !matches!(p.status.phase.as_deref(), Some("Succeeded" | "Failed")))
        .collect();
    if live
        .iter()
        .any(|p| p.status.phase.as_deref() == Some("Running"))
    {
        return JobState::new(Phase::Running);
    }
    match live.first() {
        Some(pod) => {
            let (reason, message) = pod_waiting_reason(pod);
            JobState {
                phase: Phase::Pending,
                reason: Some(reason),
                message,
            }
        }
        None => JobState::new(Phase::Running),
    }
}

/// Why a pod is not running, in the cluster's words: a container's waiting reason
/// (`ImagePullBackOff`, `ContainerCreating`, ...), else the `PodScheduled` condition
/// (`Unschedulable`), else its phase.
pub fn pod_waiting_reason(pod: &Pod) -> (String, Option<String>) {
    let statuses = pod
        .status
        .init_container_statuses
        .iter()
        .chain(&pod.status.container_statuses);
    for status in statuses {
        if let Some(waiting) = &status.state.waiting
            && let Some(reason) = &waiting.reason
        {
            return (reason.clone(), waiting.message.clone());
        }
    }
    if let Some(c) = pod
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
    {
        return (
            c.reason.clone().unwrap_or_else(|| "Unschedulable".into()),
            c.message.clone(),
        );
    }
    (
        pod.status
            .reason
            .clone()
            .or_else(|| pod.status.phase.clone())
            .unwrap_or_else(|| "Pending".into()),
        pod.status.message.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(v: serde_json::Value) -> Job {
        serde_json::from_value(v).unwrap()
    }

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn status_mapping_table() {
        let cond = |t: &str, reason: &str| json!({"type": t, "status": "True", "reason": reason});
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            serde_json::Value,
            Option<Vec<Pod>>,
            Phase,
            Option<&str>,
        )> = vec![
            (
                "complete",
                json!({"status": {"conditions": [cond("Complete", "")], "succeeded": 1}}),
                None,
                Phase::Completed,
                None,
            ),
            (
                "success criteria met (1.31+)",
                json!({"status": {"conditions": [cond("SuccessCriteriaMet", "CompletionsReached")], "active": 1}}),
                None,
                Phase::Completed,
                Some("CompletionsReached"),
            ),
            (
                "failed, backoff",
                json!({"status": {"conditions": [cond("Failed", "BackoffLimitExceeded")]}}),
                None,
                Phase::Failed,
                Some("BackoffLimitExceeded"),
            ),
            (
                "failed, deadline",
                json!({"status": {"conditions": [cond("Failed", "DeadlineExceeded")], "active": 1}}),
                None,
                Phase::Failed,
                Some("DeadlineExceeded"),
            ),
            (
                "failure target (1.31+) before Failed",
                json!({"status": {"conditions": [cond("FailureTarget", "BackoffLimitExceeded")], "terminating": 1}}),
                None,
                Phase::Failed,
                Some("BackoffLimitExceeded"),
            ),
            (
                "condition False is ignored",
                json!({"status": {"conditions": [{"type": "Failed", "status": "False"}], "active": 1, "ready": 1}}),
                None,
                Phase::Running,
                None,
            ),
            (
                "terminal beats deletion",
                json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"conditions": [cond("Complete", "")]}}),
                None,
                Phase::Completed,
                None,
            ),
            (
                "being deleted",
                json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"active": 1}}),
                None,
                Phase::Terminating,
                Some("Deleting"),
            ),
            (
                "suspended condition",
                json!({"spec": {"suspend": true}, "status": {"conditions": [cond("Suspended", "JobSuspended")]}}),
                None,
                Phase::Suspended,
                Some("JobSuspended"),
            ),
            (
                "suspend before the controller noticed",
                json!({"spec": {"suspend": true}, "status": {}}),
                None,
                Phase::Suspended,
                Some("JobSuspended"),
            ),
            (
                "just created",
                json!({"status": {}}),
                None,
                Phase::Pending,
                Some("NoActivePod"),
            ),
            (
                "no conditions, active, ready (1.24+)",
                json!({"status": {"active": 1, "ready": 1}}),
                None,
                Phase::Running,
                None,
            ),
            (
                "no conditions, active, no ready count, pod running",
                json!({"status": {"active": 1}}),
                Some(vec![pod(json!({"status": {"phase": "Running"}}))]),
                Phase::Running,
                None,
            ),
            (
                "active but pod pulling",
                json!({"status": {"active": 1, "ready": 0}}),
                Some(vec![pod(
                    json!({"status": {"phase": "Pending", "containerStatuses": [{"name": "main", "state": {"waiting": {"reason": "ErrImagePull"}}}]}}),
                )]),
                Phase::Pending,
                Some("ErrImagePull"),
            ),
            (
                "active but container creating",
                json!({"status": {"active": 1}}),
                Some(vec![pod(
                    json!({"status": {"phase": "Pending", "containerStatuses": [{"name": "main", "state": {"waiting": {"reason": "ContainerCreating"}}}]}}),
                )]),
                Phase::Pending,
                Some("ContainerCreating"),
            ),
            (
                "active but unschedulable",
                json!({"status": {"active": 1}}),
                Some(vec![pod(
                    json!({"status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available"}]}}),
                )]),
                Phase::Pending,
                Some("Unschedulable"),
            ),
            (
                "retry: old pod failed, new pod running",
                json!({"status": {"active": 1, "failed": 1}}),
                Some(vec![
                    pod(json!({"status": {"phase": "Failed"}})),
                    pod(json!({"status": {"phase": "Running"}})),
                ]),
                Phase::Running,
                None,
            ),
            (
                "between retries",
                json!({"status": {"failed": 1, "startTime": "2026-01-01T00:00:00Z"}}),
                None,
                Phase::Pending,
                Some("NoActivePod"),
            ),
            (
                "finished pod not counted yet",
                json!({"status": {"startTime": "2026-01-01T00:00:00Z",
                    "uncountedTerminatedPods": {"succeeded": ["6b8f"]}}}),
                None,
                Phase::Running,
                None,
            ),
        ];
        for (name, j, pods, phase, reason) in cases {
            let state = job_state(&job(j), pods.as_deref());
            assert_eq!(state.phase, phase, "{name}");
            assert_eq!(state.reason.as_deref(), reason, "{name}");
        }
    }

    #[test]
    fn pods_are_needed_only_when_the_job_cannot_tell() {
        assert!(!needs_pods(&job(
            json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}})
        )));
        assert!(!needs_pods(&job(
            json!({"status": {"active": 1, "ready": 1}})
        )));
        assert!(needs_pods(&job(json!({"status": {"active": 1}}))));
        assert!(needs_pods(&job(
            json!({"status": {"active": 2, "ready": 1}})
        )));
        assert!(!needs_pods(&job(json!({"status": {}}))));
    }
}

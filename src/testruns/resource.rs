//! The TestRun resource as the controller reads and writes it ([`TestRun`],
//! [`TestRunStatus`], [`Condition`]), the Jobs it owns ([`OwnedJob`],
//! [`OwnerReference`]) and the paths that address them.
//!
//! Reading is lenient where people write: a TestRun is decoded whatever its spec and
//! status hold (the spec is checked by [`super::spec`], naming the field; a status
//! that does not decode is taken as none), so one odd object never stops the watch of
//! the others.

use serde::{Deserialize, Deserializer, Serialize};

use super::{API_VERSION, KIND, PLURAL};
use crate::kube::resources::{Job, encode};

/// `/apis/sparktest.dev/v1alpha1/namespaces/{ns}/testruns`
pub fn testruns_path(namespace: &str) -> String {
    format!(
        "/apis/{API_VERSION}/namespaces/{}/{PLURAL}",
        encode(namespace)
    )
}

/// `/apis/sparktest.dev/v1alpha1/namespaces/{ns}/testruns/{name}`
pub fn testrun_path(namespace: &str, name: &str) -> String {
    format!("{}/{}", testruns_path(namespace), encode(name))
}

/// `/apis/sparktest.dev/v1alpha1/namespaces/{ns}/testruns/{name}/status`: the status
/// subresource, the only way the controller writes.
pub fn testrun_status_path(namespace: &str, name: &str) -> String {
    format!("{}/status", testrun_path(namespace, name))
}

/// The metadata of a TestRun the controller uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestRunMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub resource_version: Option<String>,
    /// Bumped by the apiserver on every change of the spec.
    #[serde(default)]
    pub generation: Option<i64>,
    #[serde(default)]
    pub creation_timestamp: Option<String>,
    #[serde(default)]
    pub deletion_timestamp: Option<String>,
}

/// A TestRun: its spec as given (checked by [`super::spec::accept`]) and its status.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TestRun {
    #[serde(default)]
    pub metadata: TestRunMeta,
    #[serde(default)]
    pub spec: serde_json::Value,
    /// `None` when absent, or when it does not decode (then it is written anew).
    #[serde(default, deserialize_with = "lenient")]
    pub status: Option<TestRunStatus>,
}

fn lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TestRunStatus>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    if value.is_null() {
        return Ok(None);
    }
    Ok(serde_json::from_value(value).ok())
}

/// The phases of a run, in the order they can come. The last three are final.
pub mod phase {
    pub const PENDING: &str = "Pending";
    pub const RUNNING: &str = "Running";
    pub const SUCCEEDED: &str = "Succeeded";
    pub const FAILED: &str = "Failed";
    /// Failed because it ran past `timeoutSeconds` (the Job's `DeadlineExceeded`).
    pub const TIMED_OUT: &str = "TimedOut";

    /// Every phase, as the CRD's enum lists them.
    pub const ALL: [&str; 5] = [PENDING, RUNNING, SUCCEEDED, FAILED, TIMED_OUT];

    /// Whether a run in this phase is over: its status never changes again.
    pub fn is_final(phase: &str) -> bool {
        matches!(phase, SUCCEEDED | FAILED | TIMED_OUT)
    }
}

/// The condition types and the reasons the controller gives them.
pub mod condition {
    /// Whether the service took the spec: `True` once the Job exists, `False` when the
    /// spec was refused (and no Job was made).
    pub const ACCEPTED: &str = "Accepted";
    /// Whether the run is over (`True` with the outcome as the reason), whatever it was.
    pub const COMPLETE: &str = "Complete";

    pub const JOB_CREATED: &str = "JobCreated";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const TEMPLATE_NOT_FOUND: &str = "TemplateNotFound";
    /// A Job of that name exists and this TestRun does not own it.
    pub const JOB_CONFLICT: &str = "JobConflict";
    pub const SUCCEEDED: &str = "Succeeded";
    pub const FAILED: &str = "Failed";
    pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
    pub const BACKOFF_LIMIT_EXCEEDED: &str = "BackoffLimitExceeded";
    /// The Job was deleted (or is being deleted) before it finished.
    pub const JOB_DELETED: &str = "JobDeleted";
    /// The spec was refused: the run never started (`Complete` with `Accepted=False`).
    pub const NOT_ACCEPTED: &str = "NotAccepted";
}

/// What the controller reports of a run (`.status`). Serialized as written: absent
/// fields are left out, so that what is read back compares equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestRunStatus {
    /// One of [`phase::ALL`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The run id: the TestRun's `metadata.uid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// `test-run-{runId}`, once the Job exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// When the Job controller started the run (the Job's `status.startTime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When the run ended (the Job's completion, or its failure, or the refusal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The generation of the spec the controller acted on (created the Job from, or
    /// refused). A later change of the spec does not restart a run: the generation
    /// then runs ahead of this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl TestRunStatus {
    /// The condition of this type, if set.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// Whether the run is over: its phase is final.
    pub fn is_final(&self) -> bool {
        self.phase.as_deref().is_some_and(phase::is_final)
    }
}

/// A `metav1.Condition`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type", default)]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When `status` last changed.
    #[serde(default)]
    pub last_transition_time: String,
    /// CamelCase, one of [`condition`]'s reasons (or the Job's own failure reason).
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
}

pub use crate::kube::resources::OwnerReference;

/// The reference a run's Job carries to its TestRun: the controller, and the Job blocks
/// the TestRun's foreground deletion until it is gone.
pub fn run_owner(name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: API_VERSION.into(),
        kind: KIND.into(),
        name: name.into(),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether this reference is a TestRun controlling its object.
pub fn is_testrun_controller(owner: &OwnerReference) -> bool {
    owner.kind == KIND
        && owner.api_version.split('/').next() == Some(super::GROUP)
        && owner.controller == Some(true)
}

/// A Job as the controller sees it: a possible run's Job, with its owners.
pub trait RunJob {
    /// The TestRun controlling this Job, if one does.
    fn controller(&self) -> Option<&OwnerReference>;

    /// Whether the TestRun with this uid controls the Job.
    fn is_owned_by(&self, uid: &str) -> bool {
        self.controller().is_some_and(|o| o.uid == uid)
    }
}

impl RunJob for Job {
    fn controller(&self) -> Option<&OwnerReference> {
        self.metadata
            .owner_references
            .iter()
            .find(|o| is_testrun_controller(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_address_the_resource_and_its_status() {
        assert_eq!(
            testruns_path("team-a"),
            "/apis/sparktest.dev/v1alpha1/namespaces/team-a/testruns"
        );
        assert_eq!(
            testrun_status_path("team-a", "nightly"),
            "/apis/sparktest.dev/v1alpha1/namespaces/team-a/testruns/nightly/status"
        );
    }

    #[test]
    fn a_status_that_does_not_decode_is_none_and_the_run_still_decodes() {
        let run: TestRun = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a", "uid": "u", "generation": 3},
            "spec": {"image": 5},
            "status": {"phase": ["not", "a", "string"]}
        }))
        .unwrap();
        assert_eq!(run.status, None);
        assert_eq!(run.metadata.generation, Some(3));
        let run: TestRun = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a"},
            "status": {"phase": "Running", "someday": "a field of a newer version"}
        }))
        .unwrap();
        assert_eq!(run.status.unwrap().phase.as_deref(), Some("Running"));
    }

    #[test]
    fn a_status_round_trips_unchanged() {
        let status = serde_json::json!({
            "phase": "Running", "runId": "u", "jobName": "test-run-u",
            "startedAt": "2026-01-01T00:00:00Z", "observedGeneration": 1,
            "conditions": [{"type": "Accepted", "status": "True", "observedGeneration": 1,
                "lastTransitionTime": "2026-01-01T00:00:00Z", "reason": "JobCreated", "message": ""}]
        });
        let parsed: TestRunStatus = serde_json::from_value(status.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), status);
    }

    #[test]
    fn only_a_testrun_controller_reference_owns_a_job() {
        let job = |refs: serde_json::Value| -> Job {
            serde_json::from_value(
                serde_json::json!({"metadata": {"name": "j", "ownerReferences": refs}}),
            )
            .unwrap()
        };
        let owned = job(serde_json::to_value([run_owner("r", "u1")]).unwrap());
        assert!(owned.is_owned_by("u1"));
        assert!(!owned.is_owned_by("u2"));
        let not_controller = job(serde_json::json!([{"apiVersion": "sparktest.dev/v1alpha1",
            "kind": "TestRun", "name": "r", "uid": "u1"}]));
        assert!(!not_controller.is_owned_by("u1"));
        let other_kind = job(
            serde_json::json!([{"apiVersion": "batch/v1", "kind": "CronJob",
            "name": "r", "uid": "u1", "controller": true}]),
        );
        assert!(other_kind.controller().is_none());
    }
}

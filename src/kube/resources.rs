//! The Kubernetes objects the service reads and writes, decoded to the fields it uses
//! (unknown fields are skipped), and the apiserver paths that address them.

use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

/// Characters left as they are in a path segment or query value: RFC 3986 unreserved.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment or query value. Names reaching here are already
/// validated; encoding anyway means no value can ever change the path's shape.
pub fn encode(value: &str) -> String {
    utf8_percent_encode(value, ENCODE).to_string()
}

/// `/apis/batch/v1/namespaces/{ns}/jobs`
pub fn jobs_path(namespace: &str) -> String {
    format!("/apis/batch/v1/namespaces/{}/jobs", encode(namespace))
}

/// `/apis/batch/v1/namespaces/{ns}/jobs/{name}`
pub fn job_path(namespace: &str, name: &str) -> String {
    format!("{}/{}", jobs_path(namespace), encode(name))
}

/// `/api/v1/namespaces/{ns}/pods`
pub fn pods_path(namespace: &str) -> String {
    format!("/api/v1/namespaces/{}/pods", encode(namespace))
}

/// `/api/v1/namespaces/{ns}/pods/{name}`
pub fn pod_path(namespace: &str, pod: &str) -> String {
    format!("{}/{}", pods_path(namespace), encode(pod))
}

/// `/api/v1/namespaces/{ns}/pods/{name}/log`
pub fn pod_log_path(namespace: &str, pod: &str) -> String {
    format!("{}/{}/log", pods_path(namespace), encode(pod))
}

/// Builds a query string (`?a=b&c=d`, or empty) with every value percent-encoded.
pub fn query(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let joined = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    format!("?{joined}")
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub resource_version: Option<String>,
    #[serde(default)]
    pub creation_timestamp: Option<String>,
    #[serde(default)]
    pub deletion_timestamp: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub owner_references: Vec<OwnerReference>,
}

/// An object's owner (`metadata.ownerReferences[]`): the garbage collector deletes the
/// object with it; the one with `controller: true` manages it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_owner_deletion: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    #[serde(default)]
    pub resource_version: Option<String>,
    #[serde(default, rename = "continue")]
    pub continue_token: Option<String>,
}

/// A `JobList`, `PodList` or `EventList`.
#[derive(Debug, Clone, Deserialize)]
pub struct List<T> {
    #[serde(default)]
    pub metadata: ListMeta,
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
}

/// `version.Info` from `GET /version`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    #[serde(default)]
    pub git_version: String,
    #[serde(default)]
    pub platform: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: JobSpec,
    #[serde(default)]
    pub status: JobStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    #[serde(default)]
    pub selector: Option<LabelSelector>,
    #[serde(default)]
    pub suspend: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether an object with these labels is selected (`matchLabels` and
    /// `matchExpressions` together). An empty selector selects everything, as in
    /// Kubernetes; an unknown operator selects nothing.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let value = labels.get(&r.key);
                match r.operator.as_str() {
                    "In" => value.is_some_and(|v| r.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !r.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }

    /// The selector in the `labelSelector` query syntax (`a=b,c in (d,e)`), or `None`
    /// for a selector that selects nothing it can express.
    pub fn to_query(&self) -> Option<String> {
        let mut parts: Vec<String> = self
            .match_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for r in &self.match_expressions {
            parts.push(match r.operator.as_str() {
                "In" => format!("{} in ({})", r.key, r.values.join(",")),
                "NotIn" => format!("{} notin ({})", r.key, r.values.join(",")),
                "Exists" => r.key.clone(),
                "DoesNotExist" => format!("!{}", r.key),
                _ => return None,
            });
        }
        (!parts.is_empty()).then(|| parts.join(","))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    #[serde(default)]
    pub conditions: Vec<JobCondition>,
    #[serde(default)]
    pub active: Option<i32>,
    #[serde(default)]
    pub ready: Option<i32>,
    #[serde(default)]
    pub succeeded: Option<i32>,
    #[serde(default)]
    pub failed: Option<i32>,
    #[serde(default)]
    pub terminating: Option<i32>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub completion_time: Option<String>,
    /// Pods that finished but are not counted in `succeeded`/`failed` yet (the Job
    /// controller's finalizer-based tracking, 1.22+).
    #[serde(default)]
    pub uncounted_terminated_pods: Option<UncountedTerminatedPods>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct UncountedTerminatedPods {
    #[serde(default)]
    pub succeeded: Vec<String>,
    #[serde(default)]
    pub failed: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub last_transition_time: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PodSpec,
    #[serde(default)]
    pub status: PodStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default)]
    pub containers: Vec<Container>,
    #[serde(default)]
    pub node_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Container {
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub conditions: Vec<PodCondition>,
    #[serde(default)]
    pub container_statuses: Vec<ContainerStatus>,
    #[serde(default)]
    pub init_container_statuses: Vec<ContainerStatus>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub last_transition_time: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    pub name: String,
    #[serde(default)]
    pub state: ContainerState,
    #[serde(default)]
    pub restart_count: i32,
    #[serde(default)]
    pub ready: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerState {
    #[serde(default)]
    pub waiting: Option<StateDetail>,
    #[serde(default)]
    pub running: Option<StateDetail>,
    #[serde(default)]
    pub terminated: Option<StateDetail>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateDetail {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// When a running or terminated container started.
    #[serde(default)]
    pub started_at: Option<String>,
    /// When a terminated container finished.
    #[serde(default)]
    pub finished_at: Option<String>,
}

/// The answer of a `SelfSubjectAccessReview`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AccessReview {
    #[serde(default)]
    pub status: AccessReviewStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AccessReviewStatus {
    #[serde(default)]
    pub allowed: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(
            job_path("default", "../secrets?x=1"),
            "/apis/batch/v1/namespaces/default/jobs/..%2Fsecrets%3Fx%3D1"
        );
        assert_eq!(
            query(&[("labelSelector", "controller-uid=abc".into())]),
            "?labelSelector=controller-uid%3Dabc"
        );
    }

    #[test]
    fn label_selector_matches_like_kubernetes() {
        let labels: BTreeMap<String, String> = [
            ("controller-uid".into(), "u1".into()),
            ("tier".into(), "a".into()),
        ]
        .into();
        let select = |v: serde_json::Value| -> bool {
            serde_json::from_value::<LabelSelector>(v)
                .unwrap()
                .matches(&labels)
        };
        assert!(select(
            serde_json::json!({"matchLabels": {"controller-uid": "u1"}})
        ));
        assert!(!select(
            serde_json::json!({"matchLabels": {"controller-uid": "u2"}})
        ));
        assert!(select(
            serde_json::json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]})
        ));
        assert!(!select(
            serde_json::json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]})
        ));
        assert!(select(
            serde_json::json!({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]})
        ));
        assert!(!select(
            serde_json::json!({"matchExpressions": [{"key": "x", "operator": "Exists"}]})
        ));
        assert!(!select(
            serde_json::json!({"matchExpressions": [{"key": "tier", "operator": "Gt", "values": ["1"]}]})
        ));
    }

    #[test]
    fn label_selector_to_query() {
        let s = LabelSelector {
            match_labels: [("controller-uid".to_string(), "u1".to_string())].into(),
            match_expressions: vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: vec!["a".into(), "b".into()],
            }],
        };
        assert_eq!(s.to_query().unwrap(), "controller-uid=u1,tier in (a,b)");
        assert_eq!(LabelSelector::default().to_query(), None);
    }
}

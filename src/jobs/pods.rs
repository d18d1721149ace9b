//! Which pod and container `kubectl logs job/NAME` would read: kubectl's `ByLogging`
//! order and the `kubectl.kubernetes.io/default-container` annotation.

use std::cmp::Ordering;

use crate::kube::resources::Pod;

/// The annotation that names the container `kubectl logs` reads by default.
pub const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .container_statuses
        .iter()
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0)
}

/// kubectl's `podutils.ByLogging` rank of a phase. Go's map lookup gives 0 to phases
/// missing from the map, so `Succeeded` and `Failed` rank with `Running`.
fn phase_rank(pod: &Pod) -> u8 {
    match pod.status.phase.as_deref() {
        Some("Unknown") => 1,
        Some("Pending") => 2,
        _ => 0,
    }
}

/// kubectl's `ByLogging` order: assigned before unassigned; Running (and finished)
/// before Unknown before Pending; ready before not ready; more restarts first; older
/// first (a missing timestamp last). RFC 3339 UTC timestamps compare as strings.
fn by_logging(a: &Pod, b: &Pod) -> Ordering {
    let assigned = |p: &Pod| p.spec.node_name.as_deref().is_some_and(|n| !n.is_empty());
    assigned(b)
        .cmp(&assigned(a))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| is_ready(b).cmp(&is_ready(a)))
        .then_with(|| max_restarts(b).cmp(&max_restarts(a)))
        .then_with(|| {
            match (
                a.metadata.creation_timestamp.as_deref(),
                b.metadata.creation_timestamp.as_deref(),
            ) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
        })
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// The pod `kubectl logs job/NAME` reads.
pub fn pick_pod(pods: &[Pod]) -> Option<&Pod> {
    pods.iter().min_by(|a, b| by_logging(a, b))
}

/// The container `kubectl logs` reads when none is named: the default-container
/// annotation when it names a container of the pod, else the first container.
pub fn default_container(pod: &Pod) -> Option<&str> {
    let names = || pod.spec.containers.iter().map(|c| c.name.as_str());
    pod.metadata
        .annotations
        .get(DEFAULT_CONTAINER_ANNOTATION)
        .and_then(|wanted| names().find(|n| n == wanted))
        .or_else(|| names().next())
}

/// The containers of a pod, for error messages.
pub fn container_names(pod: &Pod) -> Vec<&str> {
    pod.spec
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(
        name: &str,
        node: Option<&str>,
        phase: &str,
        ready: bool,
        restarts: i32,
        created: &str,
    ) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"nodeName": node, "containers": [{"name": "main"}]},
            "status": {
                "phase": phase,
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
                "containerStatuses": [{"name": "main", "restartCount": restarts, "state": {}}]
            }
        }))
        .unwrap()
    }

    fn picked(pods: &[Pod]) -> &str {
        &pick_pod(pods).unwrap().metadata.name
    }

    #[test]
    fn pod_choice_follows_kubectl_by_logging() {
        let t1 = "2026-01-01T00:00:01Z";
        let t2 = "2026-01-01T00:00:02Z";
        // assigned before unassigned
        assert_eq!(
            picked(&[
                pod("a", None, "Pending", false, 0, t1),
                pod("b", Some("n"), "Pending", false, 0, t2)
            ]),
            "b"
        );
        // Running before Pending
        assert_eq!(
            picked(&[
                pod("a", Some("n"), "Pending", false, 0, t1),
                pod("b", Some("n"), "Running", false, 0, t2)
            ]),
            "b"
        );
        // Unknown between Running and Pending
        assert_eq!(
            picked(&[
                pod("a", Some("n"), "Pending", false, 0, t1),
                pod("b", Some("n"), "Unknown", false, 0, t2)
            ]),
            "b"
        );
        // ready before not ready
        assert_eq!(
            picked(&[
                pod("a", Some("n"), "Running", false, 0, t1),
                pod("b", Some("n"), "Running", true, 0, t2)
            ]),
            "b"
        );
        // more restarts first
        assert_eq!(
            picked(&[
                pod("a", Some("n"), "Running", false, 0, t1),
                pod("b", Some("n"), "Running", false, 3, t2)
            ]),
            "b"
        );
        // older first; Succeeded and Failed rank with Running (Go's zero value)
        assert_eq!(
            picked(&[
                pod("new", Some("n"), "Succeeded", false, 0, t2),
                pod("old", Some("n"), "Failed", false, 0, t1)
            ]),
            "old"
        );
        assert_eq!(
            picked(&[
                pod("done", Some("n"), "Succeeded", false, 0, t1),
                pod("run", Some("n"), "Running", false, 0, t2)
            ]),
            "done"
        );
        assert!(pick_pod(&[]).is_none());
    }

    #[test]
    fn default_container_honours_the_annotation() {
        let mut p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "annotations": {DEFAULT_CONTAINER_ANNOTATION: "sidecar"}},
            "spec": {"containers": [{"name": "main"}, {"name": "sidecar"}]}
        }))
        .unwrap();
        assert_eq!(default_container(&p), Some("sidecar"));
        p.metadata
            .annotations
            .insert(DEFAULT_CONTAINER_ANNOTATION.into(), "missing".into());
        assert_eq!(default_container(&p), Some("main"));
        p.metadata.annotations.clear();
        assert_eq!(default_container(&p), Some("main"));
    }
}

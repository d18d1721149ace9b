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
    pod.spec.containers.iter().map(|c| c.name.as_str()).collect()
}

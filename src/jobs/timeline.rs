//! A run's Kubernetes timeline: when its pod was scheduled, its container created and
//! started, and when it completed or failed, read from the pod's conditions and the
//! container's state (the pod and container the log endpoints read).

use serde::Serialize;

use super::pods;
use crate::kube::resources::{ContainerStatus, Pod};
use crate::time::{format_rfc3339, parse_rfc3339};

/// The moments SparkTest's run page shows, RFC 3339 in UTC with whole seconds, each
/// `null` until it has happened (or when the pod that would tell is gone).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Timeline {
    /// The `PodScheduled` condition turned `True`: a node was chosen.
    pub pod_scheduled: Option<String>,
    /// The kubelet began creating the container: the `PodReadyToStartContainers`
    /// condition (1.29 on: the sandbox and its network are up) turned `True`, else, on
    /// older clusters, `Initialized` (init containers done). Pulling the image comes
    /// after this; the pod API records no later creation time (the `Created` event
    /// does, which the documented Role may not read).
    pub container_created: Option<String>,
    /// The container's `startedAt`, running or terminated.
    pub container_started: Option<String>,
    /// The container terminated with exit code 0: its `finishedAt`.
    pub completed: Option<String>,
    /// The container terminated with another exit code: its `finishedAt`.
    pub failed: Option<String>,
}

/// The timeline of the pod `kubectl logs job/NAME` would read (kubectl's pick among
/// `pods`) and its default container; all `null` when there is no pod.
pub fn job_timeline(pods: &[Pod]) -> Timeline {
    pods::pick_pod(pods).map(pod_timeline).unwrap_or_default()
}

/// The timeline of one pod and its default container.
pub fn pod_timeline(pod: &Pod) -> Timeline {
    let condition = |wanted: &str| {
        pod.status
            .conditions
            .iter()
            .find(|c| c.type_ == wanted && c.status == "True")
            .and_then(|c| normalize(c.last_transition_time.as_deref()))
    };
    let container: Option<&ContainerStatus> = pods::default_container(pod).and_then(|name| {
        pod.status
            .container_statuses
            .iter()
            .find(|s| s.name == name)
    });
    let state = container.map(|c| &c.state);
    let terminated = state.and_then(|s| s.terminated.as_ref());
    let started = state
        .and_then(|s| s.running.as_ref().or(s.terminated.as_ref()))
        .and_then(|d| normalize(d.started_at.as_deref()));
    let finished = terminated.and_then(|t| normalize(t.finished_at.as_deref()));
    let exit_code = terminated.and_then(|t| t.exit_code);
    Timeline {
        pod_scheduled: condition("PodScheduled"),
        container_created: condition("PodReadyToStartContainers")
            .or_else(|| condition("Initialized")),
        container_started: started,
        completed: finished.clone().filter(|_| exit_code == Some(0)),
        failed: finished.filter(|_| exit_code.is_some_and(|c| c != 0)),
    }
}

/// A `metav1.Time` as RFC 3339 UTC seconds; `None` for a missing or unreadable one,
/// and for the zero time a runtime reports for a container that never started.
fn normalize(t: Option<&str>) -> Option<String> {
    let t = parse_rfc3339(t?)?;
    (t > std::time::UNIX_EPOCH).then(|| format_rfc3339(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn scheduled_at(t: &str) -> serde_json::Value {
        json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": t})
    }

    #[test]
    fn timeline_table() {
        let t = |s: &str| Some(s.to_string());
        let cases = [
            ("no pod status yet", json!({}), Timeline::default()),
            (
                "unschedulable: nothing happened",
                json!({"status": {"conditions": [{"type": "PodScheduled", "status": "False",
                    "lastTransitionTime": "2026-01-01T00:00:00Z", "reason": "Unschedulable"}]}}),
                Timeline::default(),
            ),
            (
                "pulling on 1.24: scheduled and creating, not started",
                json!({"status": {"conditions": [
                    scheduled_at("2026-01-01T00:00:00Z"),
                    {"type": "Initialized", "status": "True", "lastTransitionTime": "2026-01-01T00:00:01Z"}],
                    "containerStatuses": [{"name": "main", "state": {"waiting": {"reason": "ErrImagePull"}}}]}}),
                Timeline {
                    pod_scheduled: t("2026-01-01T00:00:00Z"),
                    container_created: t("2026-01-01T00:00:01Z"),
                    ..Timeline::default()
                },
            ),
            (
                "1.29+: the sandbox condition wins over Initialized",
                json!({"status": {"conditions": [
                    {"type": "Initialized", "status": "True", "lastTransitionTime": "2026-01-01T00:00:01Z"},
                    {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": "2026-01-01T00:00:02Z"}]}}),
                Timeline {
                    container_created: t("2026-01-01T00:00:02Z"),
                    ..Timeline::default()
                },
            ),
            (
                "running",
                json!({"status": {"containerStatuses": [{"name": "main",
                    "state": {"running": {"startedAt": "2026-01-01T00:00:03Z"}}}]}}),
                Timeline {
                    container_started: t("2026-01-01T00:00:03Z"),
                    ..Timeline::default()
                },
            ),
            (
                "exit 0 completes",
                json!({"status": {"containerStatuses": [{"name": "main", "state": {"terminated": {
                    "exitCode": 0, "startedAt": "2026-01-01T00:00:03Z", "finishedAt": "2026-01-01T00:00:09Z"}}}]}}),
                Timeline {
                    container_started: t("2026-01-01T00:00:03Z"),
                    completed: t("2026-01-01T00:00:09Z"),
                    ..Timeline::default()
                },
            ),
            (
                "another exit code fails; an offset becomes UTC",
                json!({"status": {"containerStatuses": [{"name": "main", "state": {"terminated": {
                    "exitCode": 137, "startedAt": "2026-01-01T02:00:03+02:00", "finishedAt": "2026-01-01T00:00:09.5Z"}}}]}}),
                Timeline {
                    container_started: t("2026-01-01T00:00:03Z"),
                    failed: t("2026-01-01T00:00:09Z"),
                    ..Timeline::default()
                },
            ),
            (
                "never started: the zero time is no time",
                json!({"status": {"containerStatuses": [{"name": "main", "state": {"terminated": {
                    "exitCode": 128, "reason": "StartError", "startedAt": "1970-01-01T00:00:00Z",
                    "finishedAt": "2026-01-01T00:00:09Z"}}}]}}),
                Timeline {
                    failed: t("2026-01-01T00:00:09Z"),
                    ..Timeline::default()
                },
            ),
        ];
        for (name, p, want) in cases {
            let mut p = pod(p);
            p.spec = serde_json::from_value(json!({"containers": [{"name": "main"}]})).unwrap();
            assert_eq!(pod_timeline(&p), want, "{name}");
        }
    }

    #[test]
    fn the_default_container_is_read() {
        let p = pod(json!({
            "metadata": {"annotations": {"kubectl.kubernetes.io/default-container": "tests"}},
            "spec": {"containers": [{"name": "proxy"}, {"name": "tests"}]},
            "status": {"containerStatuses": [
                {"name": "proxy", "state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}}},
                {"name": "tests", "state": {"terminated": {"exitCode": 1,
                    "startedAt": "2026-01-01T00:00:02Z", "finishedAt": "2026-01-01T00:00:05Z"}}}]}
        }));
        let timeline = pod_timeline(&p);
        assert_eq!(
            timeline.container_started.as_deref(),
            Some("2026-01-01T00:00:02Z")
        );
        assert_eq!(timeline.failed.as_deref(), Some("2026-01-01T00:00:05Z"));
        assert_eq!(job_timeline(&[]), Timeline::default());
    }
}

//! The Job a run becomes: who the run is ([`RunIdentity`]), [`job_body`], and the
//! labels, annotation, selector and container name SparkTest's Jobs carry.

use super::spec::Resolved;
use crate::names::{DefinitionId, DisplayName, Namespace, RunId};

/// The labels of every Job (and pod) SparkTest creates. `app: sparktest` is what
/// SparkTest's jobs have always carried; the pod cache and `GET /api/k8s/jobs` select
/// by it.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "sparktest");
pub const APP: (&str, &str) = ("app", "sparktest");
pub const RUN_ID_LABEL: &str = "sparktest.dev/run-id";
pub const TEMPLATE_LABEL: &str = "sparktest.dev/template";
/// The SparkTest test definition a run was started from (a UUID).
pub const DEFINITION_LABEL: &str = "sparktest.dev/definition-id";
/// A run's display name (free text, hence an annotation).
pub const NAME_ANNOTATION: &str = "sparktest.dev/name";

/// The label selector of SparkTest's jobs and their pods.
pub const SPARKTEST_SELECTOR: &str = "app=sparktest";

/// The name of the one container of a run (what the log endpoints read by default).
pub const CONTAINER: &str = "main";

/// Who a run is: its id, the template it came from, and what SparkTest shows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIdentity {
    pub run_id: RunId,
    pub template: Option<String>,
    /// SparkTest's display name: the annotation [`NAME_ANNOTATION`].
    pub name: Option<DisplayName>,
    /// SparkTest's test definition: the label [`DEFINITION_LABEL`].
    pub test_definition_id: Option<DefinitionId>,
}

impl RunIdentity {
    /// A run with only an id.
    pub fn new(run_id: RunId) -> Self {
        Self {
            run_id,
            template: None,
            name: None,
            test_definition_id: None,
        }
    }
}

/// The Job `test-run-{run_id}` for a resolved run.
pub fn job_body(
    run: &RunIdentity,
    namespace: &Namespace,
    resolved: &Resolved,
) -> serde_json::Value {
    let mut labels = serde_json::Map::new();
    labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    labels.insert(APP.0.into(), APP.1.into());
    labels.insert(RUN_ID_LABEL.into(), run.run_id.as_str().into());
    if let Some(template) = &run.template {
        labels.insert(TEMPLATE_LABEL.into(), template.as_str().into());
    }
    if let Some(id) = &run.test_definition_id {
        labels.insert(DEFINITION_LABEL.into(), id.as_str().into());
    }
    let labels = serde_json::Value::Object(labels);
    let mut metadata = serde_json::json!({
        "name": run.run_id.job_name().as_str(),
        "namespace": namespace.as_str(),
        "labels": labels.clone(),
    });
    if let Some(name) = &run.name {
        metadata["annotations"] = serde_json::json!({ NAME_ANNOTATION: name.as_str() });
    }
    let env: Vec<serde_json::Value> = resolved
        .env
        .iter()
        .map(|(name, value)| serde_json::json!({"name": name, "value": value}))
        .collect();
    let mut container = serde_json::json!({
        "name": CONTAINER,
        "image": resolved.image,
        "command": resolved.command,
        "resources": resolved.resources,
    });
    if !env.is_empty() {
        container["env"] = env.into();
    }
    serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": resolved.backoff_limit,
            "activeDeadlineSeconds": resolved.timeout_seconds,
            "ttlSecondsAfterFinished": resolved.ttl_seconds_after_finished,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    // A test run talks to what it tests, not to the Kubernetes API.
                    "automountServiceAccountToken": false,
                    "containers": [container],
                },
            },
        },
    })
}

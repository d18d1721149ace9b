//! Test runs as Jobs: what a run asks for ([`RunSpec`], from a template and the
//! request), the limits it is held to ([`RunDefaults`]), the Job body it becomes and
//! its creation through `POST /apis/batch/v1/namespaces/{ns}/jobs`.

pub mod templates;

use std::collections::BTreeMap;

use bytes::Bytes;
use http::Method;
use serde::{Deserialize, Serialize};

use crate::kube::resources::{Job, jobs_path};
use crate::kube::{Client, KubeError};
use crate::names::{DefinitionId, DisplayName, Namespace, RunId};
use crate::quantity::Quantity;

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

/// CPU and memory of one side (requests or limits) of a container's resources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceList {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
}

/// A container's resources as a run or template gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub requests: ResourceList,
    #[serde(default)]
    pub limits: ResourceList,
}

/// What a run (or a template) specifies; every field optional, a request's fields
/// override its template's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// What a template is for (shown by `GET /api/k8s/templates`); not part of a Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Shell commands, run as SparkTest runs them: `sh -c "c1 && c2 && ..."`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<String>>,
    /// An explicit argv instead of `commands` (no shell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// Environment variables; a request's are added to its template's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// The run's deadline (the Job's `activeDeadlineSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_limit: Option<u32>,
}

/// The most a run may ask for, in seconds / retries.
pub const MAX_TIMEOUT_SECONDS: u32 = 7 * 24 * 3600;
pub const MAX_TTL_SECONDS: u32 = 30 * 24 * 3600;
pub const MAX_BACKOFF_LIMIT: u32 = 20;
const MAX_ENV: usize = 256;
const MAX_TEXT: usize = 64 * 1024;

/// The configured defaults and maxima every run is held to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDefaults {
    pub requests: ResourceList,
    pub limits: ResourceList,
    /// Neither a request nor a limit may exceed these.
    pub max: ResourceList,
    pub timeout_seconds: u32,
    pub ttl_seconds_after_finished: u32,
    pub backoff_limit: u32,
}

impl Default for RunDefaults {
    fn default() -> Self {
        let q = |s: &str| Some(s.parse().expect("a valid default quantity"));
        Self {
            requests: ResourceList {
                cpu: q("100m"),
                memory: q("128Mi"),
            },
            limits: ResourceList {
                cpu: q("1"),
                memory: q("512Mi"),
            },
            max: ResourceList {
                cpu: q("4"),
                memory: q("8Gi"),
            },
            timeout_seconds: 3600,
            ttl_seconds_after_finished: 86400,
            backoff_limit: 0,
        }
    }
}

impl std::str::FromStr for ResourceList {
    type Err = String;

    /// `cpu=500m,memory=1Gi` (either may be left out), as `kubectl run --requests`
    /// took it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut list = ResourceList::default();
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').ok_or_else(|| {
                format!("'{pair}' is not name=quantity (e.g. cpu=500m,memory=1Gi)")
            })?;
            let value: Quantity = value
                .trim()
                .parse()
                .map_err(|e: crate::quantity::InvalidQuantity| e.to_string())?;
            match name.trim() {
                "cpu" => list.cpu = Some(value),
                "memory" => list.memory = Some(value),
                other => {
                    return Err(format!(
                        "unknown resource '{other}': cpu and memory are known"
                    ));
                }
            }
        }
        Ok(list)
    }
}

impl RunDefaults {
    /// Checks that the defaults themselves respect the maximum and each other.
    pub fn check(&self) -> Result<(), String> {
        for (side, list) in [
            ("DEFAULT_REQUESTS", &self.requests),
            ("DEFAULT_LIMITS", &self.limits),
            ("MAX_RESOURCES", &self.max),
        ] {
            if list.cpu.is_none() || list.memory.is_none() {
                return Err(format!(
                    "{side} must give both cpu and memory (e.g. cpu=1,memory=512Mi): every run's are always set"
                ));
            }
        }
        for (name, value) in [("cpu", &self.limits.cpu), ("memory", &self.limits.memory)] {
            if value.as_ref().is_some_and(Quantity::is_zero) {
                return Err(format!(
                    "DEFAULT_LIMITS {name} must be more than 0 (a zero limit is no limit)"
                ));
            }
        }
        for (side, list) in [
            ("DEFAULT_REQUESTS", &self.requests),
            ("DEFAULT_LIMITS", &self.limits),
        ] {
            for (name, value, max) in [
                ("cpu", &list.cpu, &self.max.cpu),
                ("memory", &list.memory, &self.max.memory),
            ] {
                if let (Some(v), Some(m)) = (value, max)
                    && v > m
                {
                    return Err(format!(
                        "{side} {name}={v} exceeds MAX_RESOURCES {name}={m}"
                    ));
                }
            }
        }
        for (name, r, l) in [
            ("cpu", &self.requests.cpu, &self.limits.cpu),
            ("memory", &self.requests.memory, &self.limits.memory),
        ] {
            if let (Some(r), Some(l)) = (r, l)
                && r > l
            {
                return Err(format!(
                    "DEFAULT_REQUESTS {name}={r} exceeds DEFAULT_LIMITS {name}={l}"
                ));
            }
        }
        Ok(())
    }
}

/// A run spec that breaks a rule; `field` is the path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidRun {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> InvalidRun {
    InvalidRun {
        field: field.into(),
        message: message.into(),
    }
}

impl RunSpec {
    /// `self` (a request) over `template`: every field given here wins, env maps are
    /// merged, and the template's resources become this run's defaults, so a request's
    /// own limit below the template's request lowers it as it would a configured
    /// default (only what the request itself gives can be at fault).
    pub fn over(self, template: &RunSpec, defaults: &RunDefaults) -> (RunSpec, RunDefaults) {
        let mut env = template.env.clone();
        env.extend(self.env);
        let (commands, argv) = if self.commands.is_some() || self.argv.is_some() {
            (self.commands, self.argv)
        } else {
            (template.commands.clone(), template.argv.clone())
        };
        let mut defaults = defaults.clone();
        if let Some(theirs) = &template.resources {
            for (default, given) in [
                (&mut defaults.requests.cpu, &theirs.requests.cpu),
                (&mut defaults.requests.memory, &theirs.requests.memory),
                (&mut defaults.limits.cpu, &theirs.limits.cpu),
                (&mut defaults.limits.memory, &theirs.limits.memory),
            ] {
                if given.is_some() {
                    default.clone_from(given);
                }
            }
        }
        let spec = RunSpec {
            description: None,
            image: self.image.or_else(|| template.image.clone()),
            commands,
            argv,
            env,
            resources: self.resources,
            timeout_seconds: self.timeout_seconds.or(template.timeout_seconds),
            ttl_seconds_after_finished: self
                .ttl_seconds_after_finished
                .or(template.ttl_seconds_after_finished),
            backoff_limit: self.backoff_limit.or(template.backoff_limit),
        };
        (spec, defaults)
    }

    /// Checks every field that is given (a template may leave the image to the
    /// request); `resolve` then requires what a Job needs.
    pub fn validate(&self, defaults: &RunDefaults) -> Result<(), InvalidRun> {
        if let Some(image) = &self.image {
            check_image(image)?;
        }
        if self.commands.is_some() && self.argv.is_some() {
            return Err(invalid(
                "commands",
                "give either commands (run by sh -c) or argv, not both",
            ));
        }
        if let Some(commands) = &self.commands {
            check_list("commands", commands, false)?;
        }
        if let Some(argv) = &self.argv {
            // An argument may be empty (`""` is a real argument); the program may not.
            check_list("argv", argv, true)?;
        }
        if self.env.len() > MAX_ENV {
            return Err(invalid("env", format!("at most {MAX_ENV} variables")));
        }
        for (name, value) in &self.env {
            check_env_name(name)?;
            check_text(&format!("env.{name}"), value)?;
        }
        if let Some(resources) = &self.resources {
            for (side, list) in [
                ("requests", &resources.requests),
                ("limits", &resources.limits),
            ] {
                for (name, value, max) in [
                    ("cpu", &list.cpu, &defaults.max.cpu),
                    ("memory", &list.memory, &defaults.max.memory),
                ] {
                    if let (Some(value), Some(max)) = (value, max)
                        && value > max
                    {
                        return Err(invalid(
                            format!("resources.{side}.{name}"),
                            format!("{value} exceeds the configured maximum {max}"),
                        ));
                    }
                    // The kubelet reads a zero limit as no limit at all.
                    if side == "limits" && value.as_ref().is_some_and(Quantity::is_zero) {
                        return Err(invalid(
                            format!("resources.{side}.{name}"),
                            "must be more than 0 (a zero limit is no limit)",
                        ));
                    }
                }
            }
        }
        for (field, value, max) in [
            ("timeout_seconds", self.timeout_seconds, MAX_TIMEOUT_SECONDS),
            (
                "ttl_seconds_after_finished",
                self.ttl_seconds_after_finished,
                MAX_TTL_SECONDS,
            ),
            ("backoff_limit", self.backoff_limit, MAX_BACKOFF_LIMIT),
        ] {
            if value.is_some_and(|v| v > max) {
                return Err(invalid(field, format!("at most {max}")));
            }
        }
        if self.timeout_seconds == Some(0) {
            return Err(invalid("timeout_seconds", "at least 1"));
        }
        Ok(())
    }

    /// The run as a Job needs it: an image, a command, and every resource, deadline,
    /// TTL and retry count set (from the defaults where neither the request nor its
    /// template gave one).
    pub fn resolve(self, defaults: &RunDefaults) -> Result<Resolved, InvalidRun> {
        self.validate(defaults)?;
        let image = self.image.ok_or_else(|| {
            invalid(
                "image",
                "required: give an image, or a template that names one",
            )
        })?;
        let command = match (self.commands, self.argv) {
            (Some(commands), None) => vec!["sh".into(), "-c".into(), commands.join(" && ")],
            (None, Some(argv)) => argv,
            _ => {
                return Err(invalid(
                    "commands",
                    "required: give commands (run by sh -c) or argv, or a template with them",
                ));
            }
        };
        let given = self.resources.unwrap_or_default();
        let pick =
            |mine: Option<Quantity>, default: &Option<Quantity>| mine.or_else(|| default.clone());
        let mut requests = ResourceList {
            cpu: pick(given.requests.cpu.clone(), &defaults.requests.cpu),
            memory: pick(given.requests.memory.clone(), &defaults.requests.memory),
        };
        let mut limits = ResourceList {
            cpu: pick(given.limits.cpu.clone(), &defaults.limits.cpu),
            memory: pick(given.limits.memory.clone(), &defaults.limits.memory),
        };
        // A default never contradicts what was given: a default request above a given
        // limit becomes the limit, a default limit below a given request the request.
        for (name, request, limit, request_given, limit_given) in [
            (
                "cpu",
                &mut requests.cpu,
                &mut limits.cpu,
                given.requests.cpu.is_some(),
                given.limits.cpu.is_some(),
            ),
            (
                "memory",
                &mut requests.memory,
                &mut limits.memory,
                given.requests.memory.is_some(),
                given.limits.memory.is_some(),
            ),
        ] {
            if let (Some(r), Some(l)) = (request.as_ref(), limit.as_ref())
                && r > l
            {
                match (request_given, limit_given) {
                    (true, true) => {
                        return Err(invalid(
                            format!("resources.requests.{name}"),
                            format!("{r} exceeds resources.limits.{name} {l}"),
                        ));
                    }
                    (false, _) => *request = limit.clone(),
                    (true, false) => *limit = request.clone(),
                }
            }
        }
        Ok(Resolved {
            image,
            command,
            env: self.env,
            resources: Resources { requests, limits },
            timeout_seconds: self.timeout_seconds.unwrap_or(defaults.timeout_seconds),
            ttl_seconds_after_finished: self
                .ttl_seconds_after_finished
                .unwrap_or(defaults.ttl_seconds_after_finished),
            backoff_limit: self.backoff_limit.unwrap_or(defaults.backoff_limit),
        })
    }
}

fn check_text(field: &str, value: &str) -> Result<(), InvalidRun> {
    if value.len() > MAX_TEXT {
        return Err(invalid(field, format!("longer than {MAX_TEXT} bytes")));
    }
    if value.contains('\0') {
        return Err(invalid(field, "must not contain NUL bytes"));
    }
    Ok(())
}

fn check_list(field: &str, list: &[String], empty_args: bool) -> Result<(), InvalidRun> {
    if list.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    for (i, item) in list.iter().enumerate() {
        let field = format!("{field}[{i}]");
        if item.trim().is_empty() && !(empty_args && i > 0) {
            return Err(invalid(field, "must not be empty"));
        }
        check_text(&field, item)?;
    }
    Ok(())
}

/// An image reference as a container runtime takes it: no spaces or control
/// characters (the registry resolves the rest).
fn check_image(image: &str) -> Result<(), InvalidRun> {
    if image.is_empty() || image.len() > 512 {
        return Err(invalid("image", "must be 1 to 512 characters"));
    }
    if image
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
    {
        return Err(invalid(
            "image",
            "must not contain spaces, control or non-ASCII characters",
        ));
    }
    Ok(())
}

/// Environment variable names as every Kubernetes version accepts them
/// (`[-._a-zA-Z][-._a-zA-Z0-9]*`, the rule until 1.29 relaxed it).
fn check_env_name(name: &str) -> Result<(), InvalidRun> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && !name.as_bytes()[0].is_ascii_digit()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            format!("env.{}", name.chars().take(64).collect::<String>()),
            "a variable name has letters, digits, '-', '.', '_' and does not start with a digit",
        ))
    }
}

/// A run with everything a Job needs decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub image: String,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub resources: Resources,
    pub timeout_seconds: u32,
    pub ttl_seconds_after_finished: u32,
    pub backoff_limit: u32,
}

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

/// Why the apiserver did not create a run's Job.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The Job `test-run-{run_id}` exists (the apiserver's 409 AlreadyExists): a run
    /// id is used once per namespace.
    #[error("test run {run_id} already exists (job test-run-{run_id} in namespace {namespace})")]
    AlreadyExists { run_id: String, namespace: String },
    /// The apiserver refused the Job (its 422 Invalid), naming the fields at fault.
    #[error("the apiserver refused the job: {message}")]
    Refused {
        message: String,
        fields: Vec<String>,
    },
    #[error(transparent)]
    Kube(#[from] KubeError),
}

/// `POST /apis/batch/v1/namespaces/{ns}/jobs`: the created Job, or the apiserver's
/// refusal (409 when the run id is taken, 422 naming the invalid fields).
pub async fn create_job(
    client: &Client,
    namespace: &Namespace,
    run_id: &RunId,
    body: &serde_json::Value,
) -> Result<Job, CreateError> {
    let bytes =
        Bytes::from(serde_json::to_vec(body).map_err(|e| KubeError::Decode(e.to_string()))?);
    let created = client
        .request_json(
            Method::POST,
            &jobs_path(namespace.as_str()),
            Some((bytes, "application/json")),
        )
        .await;
    created.map_err(|e| match e {
        KubeError::Api { code: 409, status }
            if status.reason.as_deref() == Some("AlreadyExists") =>
        {
            CreateError::AlreadyExists {
                run_id: run_id.to_string(),
                namespace: namespace.to_string(),
            }
        }
        KubeError::Api { code: 422, status } => {
            let causes = status
                .details
                .as_ref()
                .and_then(|d| d.causes.clone())
                .unwrap_or_default();
            let fields: Vec<String> = causes.iter().filter_map(|c| c.field.clone()).collect();
            let described: Vec<String> = causes
                .iter()
                .map(|c| {
                    format!(
                        "{}: {}",
                        c.field.as_deref().unwrap_or("(job)"),
                        c.message.as_deref().unwrap_or("invalid")
                    )
                })
                .collect();
            let message = if described.is_empty() {
                status.message.clone().unwrap_or_default()
            } else {
                described.join("; ")
            };
            CreateError::Refused { message, fields }
        }
        other => CreateError::Kube(other),
    })
}

/// A new run id: a random (version 4) UUID.
pub fn new_run_id() -> RunId {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut b = [0u8; 16];
    SystemRandom::new()
        .fill(&mut b)
        .expect("the system random source is available");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let text = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    text.parse().expect("a formatted UUID parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> RunSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn commands_run_as_sparktest_runs_them_and_argv_as_given() {
        let d = RunDefaults::default();
        let r = spec(serde_json::json!({"image": "python:3.12", "commands": ["pip install -r r.txt", "pytest -q"]}))
            .resolve(&d)
            .unwrap();
        assert_eq!(r.command, ["sh", "-c", "pip install -r r.txt && pytest -q"]);
        let r = spec(serde_json::json!({"image": "x", "argv": ["prog", ""]}))
            .resolve(&d)
            .unwrap();
        assert_eq!(r.command, ["prog", ""], "an empty argument is a real one");
        let r = spec(serde_json::json!({"image": "grafana/k6", "argv": ["k6", "run", "s.js"]}))
            .resolve(&d)
            .unwrap();
        assert_eq!(r.command, ["k6", "run", "s.js"]);
        let e = spec(serde_json::json!({"image": "x", "commands": ["a"], "argv": ["b"]}))
            .resolve(&d)
            .unwrap_err();
        assert_eq!(e.field, "commands");
        let e = spec(serde_json::json!({"commands": ["a"]}))
            .resolve(&d)
            .unwrap_err();
        assert_eq!(e.field, "image");
        let e = spec(serde_json::json!({"image": "x"}))
            .resolve(&d)
            .unwrap_err();
        assert_eq!(e.field, "commands");
    }

    #[test]
    fn resources_are_always_set_and_held_to_the_maximum() {
        let d = RunDefaults::default();
        let r = spec(serde_json::json!({"image": "x", "argv": ["y"]}))
            .resolve(&d)
            .unwrap();
        assert_eq!(r.resources.requests, d.requests);
        assert_eq!(r.resources.limits, d.limits);
        assert_eq!(r.timeout_seconds, 3600);
        let e = spec(serde_json::json!({"image": "x", "argv": ["y"], "resources": {"limits": {"memory": "16Gi"}}}))
            .resolve(&d)
            .unwrap_err();
        assert_eq!(e.field, "resources.limits.memory");
        assert!(e.message.contains("8Gi"), "{e}");
        let e = spec(serde_json::json!({"image": "x", "argv": ["y"], "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}))
            .resolve(&d)
            .unwrap_err();
        assert_eq!(e.field, "resources.requests.cpu");
        // A given limit below the default request lowers the request; a given request
        // above the default limit raises the limit.
        let r = spec(serde_json::json!({"image": "x", "argv": ["y"], "resources": {"limits": {"cpu": "50m"}, "requests": {"memory": "1Gi"}}}))
            .resolve(&d)
            .unwrap();
        assert_eq!(r.resources.requests.cpu.unwrap().as_str(), "50m");
        assert_eq!(r.resources.limits.memory.unwrap().as_str(), "1Gi");
    }

    #[test]
    fn a_request_overrides_its_template_field_by_field() {
        let template = spec(serde_json::json!({
            "image": "python:3.12", "commands": ["pytest"], "env": {"A": "1", "B": "2"},
            "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}, "timeout_seconds": 600
        }));
        let request = spec(serde_json::json!({
            "env": {"B": "3"}, "resources": {"limits": {"cpu": "3"}}
        }));
        let (merged, defaults) = request.over(&template, &RunDefaults::default());
        assert_eq!(merged.image.as_deref(), Some("python:3.12"));
        assert_eq!(merged.env["A"], "1");
        assert_eq!(merged.env["B"], "3");
        assert_eq!(merged.timeout_seconds, Some(600));
        let run = merged.resolve(&defaults).unwrap();
        assert_eq!(run.resources.limits.cpu.unwrap().as_str(), "3");
        assert_eq!(run.resources.limits.memory.unwrap().as_str(), "1Gi");
        // The template's request is lowered to the request's own lower limit, like a
        // default: the caller set only the limit.
        let template = spec(serde_json::json!({"image": "x", "argv": ["y"],
            "resources": {"requests": {"cpu": "250m"}}}));
        let request = spec(serde_json::json!({"resources": {"limits": {"cpu": "100m"}}}));
        let (merged, defaults) = request.over(&template, &RunDefaults::default());
        let run = merged.resolve(&defaults).unwrap();
        assert_eq!(run.resources.requests.cpu.unwrap().as_str(), "100m");
    }

    #[test]
    fn bad_fields_are_named() {
        let d = RunDefaults::default();
        for (json, field) in [
            (serde_json::json!({"image": "a b", "argv": ["y"]}), "image"),
            (serde_json::json!({"image": "x", "argv": []}), "argv"),
            (
                serde_json::json!({"image": "x", "commands": ["ok", " "]}),
                "commands[1]",
            ),
            (
                serde_json::json!({"image": "x", "argv": ["y"], "env": {"1X": "v"}}),
                "env.1X",
            ),
            (
                serde_json::json!({"image": "x", "argv": ["y"], "timeout_seconds": 0}),
                "timeout_seconds",
            ),
            (
                serde_json::json!({"image": "x", "argv": ["y"], "backoff_limit": 99}),
                "backoff_limit",
            ),
        ] {
            let e = spec(json.clone()).resolve(&d).unwrap_err();
            assert_eq!(e.field, field, "{json}");
        }
        assert!(serde_json::from_value::<RunSpec>(serde_json::json!({"comands": ["x"]})).is_err());
    }

    #[test]
    fn run_ids_are_random_v4_uuids() {
        let a = new_run_id();
        let b = new_run_id();
        assert_ne!(a, b);
        assert_eq!(&a.as_str()[14..15], "4");
        assert!(matches!(&a.as_str()[19..20], "8" | "9" | "a" | "b"));
    }
}

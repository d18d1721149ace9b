//! The request model of a run ([`RunSpec`], [`Resources`], [`ResourceList`]), the most a
//! run may ask for, and how a request is merged over its template ([`RunSpec::over`]),
//! checked ([`RunSpec::validate`], [`InvalidRun`]) and resolved into what a Job needs
//! ([`RunSpec::resolve`], [`Resolved`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::defaults::RunDefaults;
use crate::quantity::Quantity;

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
}

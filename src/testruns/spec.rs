//! A TestRun's spec as the REST path's [`RunSpec`] and [`RunIdentity`] ([`accept`]):
//! the same merge over the template ([`RunSpec::over`]), the same validation and limits
//! ([`RunSpec::resolve`]), then the same Job body ([`crate::runs::job_body`]). Only the
//! spelling differs: `timeoutSeconds` for `timeout_seconds`, and a refusal names the
//! field as the TestRun spells it (`spec.resources.limits.memory`).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use crate::names::{DefinitionId, DisplayName, RunId};
use crate::runs::{Resolved, Resources, RunIdentity, RunSpec};
use crate::state::RunConfig;

/// Why the service does not run a spec. Its reason becomes the `Accepted` condition's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A field breaks a rule; `field` is its path in the TestRun (`spec.image`).
    InvalidSpec { field: String, message: String },
    /// `spec.template` names no template of the templates file.
    TemplateNotFound { name: String, known: Vec<String> },
}

impl Refusal {
    /// The `Accepted=False` condition's reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidSpec { .. } => super::resource::condition::INVALID_SPEC,
            Self::TemplateNotFound { .. } => super::resource::condition::TEMPLATE_NOT_FOUND,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidSpec { field, message } => write!(f, "{field}: {message}"),
            Self::TemplateNotFound { name, known } => write!(
                f,
                "spec.template: no template named '{}' (known: {})",
                name.chars().take(64).collect::<String>(),
                if known.is_empty() {
                    "none; see TEMPLATES_FILE".to_string()
                } else {
                    known.join(", ")
                }
            ),
        }
    }
}

/// A spec the service runs: who the run is and what its Job needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub identity: RunIdentity,
    pub resolved: Resolved,
}

/// The fields of a TestRun's spec: a [`RunSpec`]'s (without `description`, which only
/// templates have) and the run's own `template`, `name` and `testDefinitionId`.
const FIELDS: [&str; 11] = [
    "template",
    "image",
    "commands",
    "argv",
    "env",
    "resources",
    "timeoutSeconds",
    "ttlSecondsAfterFinished",
    "backoffLimit",
    "name",
    "testDefinitionId",
];

/// The REST path's field names as the TestRun spells them, under `spec.`:
/// `timeout_seconds` → `spec.timeoutSeconds`, `resources.limits.cpu` →
/// `spec.resources.limits.cpu`, `commands[1]` → `spec.commands[1]`.
pub fn kube_field(field: &str) -> String {
    let split = field.find(['.', '[']).unwrap_or(field.len());
    let (head, rest) = field.split_at(split);
    let head = match head {
        "timeout_seconds" => "timeoutSeconds",
        "ttl_seconds_after_finished" => "ttlSecondsAfterFinished",
        "backoff_limit" => "backoffLimit",
        "test_definition_id" => "testDefinitionId",
        other => other,
    };
    format!("spec.{head}{rest}")
}

/// A refusal of the field at `path` (from the object's root).
fn invalid_at(path: &str, message: impl std::fmt::Display) -> Refusal {
    Refusal::InvalidSpec {
        field: path.to_string(),
        message: message.to_string(),
    }
}

/// A refusal of the spec's field `field`.
fn invalid(field: &str, message: impl std::fmt::Display) -> Refusal {
    invalid_at(&format!("spec.{field}"), message)
}

/// One field of the spec as `T`, or a refusal naming it.
fn field<T: DeserializeOwned>(
    spec: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<Option<T>, Refusal> {
    match spec.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| invalid(name, e)),
    }
}

/// The spec of the TestRun whose uid is `uid` as a run: identity (run id = the uid),
/// then the spec merged over its template and resolved against the configured
/// defaults and maxima, exactly as `POST /api/test-runs` does; or why not.
pub fn accept(
    uid: &str,
    spec: &serde_json::Value,
    config: &RunConfig,
) -> Result<Accepted, Refusal> {
    let empty = serde_json::Map::new();
    let spec = match spec {
        serde_json::Value::Object(map) => map,
        serde_json::Value::Null => &empty,
        _ => return Err(invalid_at("spec", "must be an object")),
    };
    if let Some(unknown) = spec.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        let unknown: String = unknown.chars().take(64).collect();
        return Err(invalid(
            &unknown,
            format!("unknown field (known: {})", FIELDS.join(", ")),
        ));
    }
    let run_id: RunId = uid
        .parse()
        .map_err(|e: crate::names::InvalidName| invalid_at("metadata.uid", e))?;
    let name: Option<String> = field(spec, "name")?;
    let name = name
        .map(|n| n.parse::<DisplayName>())
        .transpose()
        .map_err(|e| invalid("name", e.rule))?;
    let definition: Option<String> = field(spec, "testDefinitionId")?;
    let test_definition_id = definition
        .map(|d| d.parse::<DefinitionId>())
        .transpose()
        .map_err(|e| invalid("testDefinitionId", e.rule))?;
    let template: Option<String> = field(spec, "template")?;
    let run = RunSpec {
        description: None,
        image: field(spec, "image")?,
        commands: field(spec, "commands")?,
        argv: field(spec, "argv")?,
        env: field::<BTreeMap<String, String>>(spec, "env")?.unwrap_or_default(),
        resources: field::<Resources>(spec, "resources")?,
        timeout_seconds: field(spec, "timeoutSeconds")?,
        ttl_seconds_after_finished: field(spec, "ttlSecondsAfterFinished")?,
        backoff_limit: field(spec, "backoffLimit")?,
    };
    let (run, defaults) = match &template {
        Some(name) => {
            let Some(template) = config.templates.get(name) else {
                return Err(Refusal::TemplateNotFound {
                    name: name.clone(),
                    known: config.templates.iter().map(|(n, _)| n.clone()).collect(),
                });
            };
            run.over(template, &config.defaults)
        }
        None => (run, config.defaults.clone()),
    };
    let resolved = run.resolve(&defaults).map_err(|e| Refusal::InvalidSpec {
        field: kube_field(&e.field),
        message: e.message,
    })?;
    Ok(Accepted {
        identity: RunIdentity {
            run_id,
            template,
            name,
            test_definition_id,
        },
        resolved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::RunDefaults;
    use crate::runs::templates::Templates;

    const UID: &str = "0b6f3a52-3d2c-4c3e-9d8a-5b1f6f0e2a11";

    fn config() -> RunConfig {
        RunConfig {
            defaults: RunDefaults::default(),
            templates: Templates::parse(
                std::path::Path::new("t.yaml"),
                "templates:\n  pytest:\n    image: python:3.12\n    commands: [pytest -q]\n    env: {A: '1'}\n    timeout_seconds: 600\n",
                &RunDefaults::default(),
            )
            .unwrap(),
        }
    }

    fn refusal(spec: serde_json::Value) -> Refusal {
        accept(UID, &spec, &config()).unwrap_err()
    }

    fn field_of(spec: serde_json::Value) -> String {
        match refusal(spec.clone()) {
            Refusal::InvalidSpec { field, .. } => field,
            other => panic!("{spec}: {other:?}"),
        }
    }

    #[test]
    fn rest_field_names_are_spelt_as_the_testrun_spells_them() {
        for (rest, kube) in [
            ("image", "spec.image"),
            ("commands[1]", "spec.commands[1]"),
            ("env.1X", "spec.env.1X"),
            ("resources.limits.cpu", "spec.resources.limits.cpu"),
            ("timeout_seconds", "spec.timeoutSeconds"),
            ("ttl_seconds_after_finished", "spec.ttlSecondsAfterFinished"),
            ("backoff_limit", "spec.backoffLimit"),
        ] {
            assert_eq!(kube_field(rest), kube, "{rest}");
        }
    }

    #[test]
    fn a_spec_is_the_rest_request_merged_over_its_template() {
        let accepted = accept(
            UID,
            &serde_json::json!({"template": "pytest", "env": {"B": "2"}, "timeoutSeconds": 900,
                "name": "Nightly", "testDefinitionId": "7A1B2C3D-0000-4000-8000-000000000001"}),
            &config(),
        )
        .unwrap();
        assert_eq!(accepted.identity.run_id.as_str(), UID);
        assert_eq!(accepted.identity.template.as_deref(), Some("pytest"));
        assert_eq!(accepted.identity.name.as_ref().unwrap().as_str(), "Nightly");
        assert_eq!(
            accepted
                .identity
                .test_definition_id
                .as_ref()
                .unwrap()
                .as_str(),
            "7a1b2c3d-0000-4000-8000-000000000001"
        );
        let r = &accepted.resolved;
        assert_eq!(r.image, "python:3.12");
        assert_eq!(r.command, ["sh", "-c", "pytest -q"]);
        assert_eq!(r.env["A"], "1");
        assert_eq!(r.env["B"], "2");
        assert_eq!(r.timeout_seconds, 900);
        assert_eq!(r.ttl_seconds_after_finished, 86400);
        // Exactly what the REST path resolves for the same request.
        let rest: RunSpec =
            serde_json::from_value(serde_json::json!({"env": {"B": "2"}, "timeout_seconds": 900}))
                .unwrap();
        let config = config();
        let (merged, defaults) =
            rest.over(config.templates.get("pytest").unwrap(), &config.defaults);
        assert_eq!(merged.resolve(&defaults).unwrap(), accepted.resolved);
    }

    #[test]
    fn refusals_name_the_field_as_the_testrun_spells_it() {
        for (spec, field) in [
            (serde_json::json!({"commands": ["true"]}), "spec.image"),
            (
                serde_json::json!({"image": "a b", "argv": ["x"]}),
                "spec.image",
            ),
            (serde_json::json!({"image": "x"}), "spec.commands"),
            (
                serde_json::json!({"image": "x", "commands": ["a"], "argv": ["b"]}),
                "spec.commands",
            ),
            (
                serde_json::json!({"image": "x", "argv": ["y"], "timeoutSeconds": 0}),
                "spec.timeoutSeconds",
            ),
            (
                serde_json::json!({"image": "x", "argv": ["y"], "timeoutSeconds": 604801}),
                "spec.timeoutSeconds",
            ),
            (
                serde_json::json!({"image": "x", "argv": ["y"], "timeoutSeconds": -1}),
                "spec.timeoutSeconds",
            ),
            (
                serde_json::json!({"image": "x", "argv": ["y"], "backoffLimit": 21}),
                "spec.backoffLimit",
            ),
            (
                serde_json::json!({"image": "x", "argv": ["y"], "ttlSecondsAfterFinished": 2592001}),
                "spec.ttlSecondsAfterFinished",
            ),
            (
                serde_json::json!({"image": "x", "argv": ["y"], "resources": {"limits": {"memory": "16Gi"}}}),
                "spec.resources.limits.memory",
            ),
            (
                serde_json::json!({"image": "x", "argv": ["y"], "resources": {"limits": {"cpu": 0}}}),
                "spec.resources.limits.cpu",
            ),
            (
                serde_json::json!({"image": "x", "argv": ["y"], "env": {"1X": "v"}}),
                "spec.env.1X",
            ),
            (
                serde_json::json!({"image": "x", "argv": ["y"], "name": " "}),
                "spec.name",
            ),
            (
                serde_json::json!({"image": "x", "argv": ["y"], "testDefinitionId": "nope"}),
                "spec.testDefinitionId",
            ),
            (
                serde_json::json!({"image": "x", "argv": ["y"], "description": "templates only"}),
                "spec.description",
            ),
            (serde_json::json!({"image": 5, "argv": ["y"]}), "spec.image"),
        ] {
            assert_eq!(field_of(spec.clone()), field, "{spec}");
        }
        let message = refusal(serde_json::json!({"image": "x", "argv": ["y"],
            "resources": {"limits": {"memory": "16Gi"}}}))
        .to_string();
        assert_eq!(
            message,
            "spec.resources.limits.memory: 16Gi exceeds the configured maximum 8Gi"
        );
    }

    #[test]
    fn an_unknown_template_is_its_own_refusal_listing_the_known_ones() {
        let r = refusal(serde_json::json!({"template": "k6"}));
        assert_eq!(r.reason(), "TemplateNotFound");
        assert_eq!(
            r.to_string(),
            "spec.template: no template named 'k6' (known: pytest)"
        );
        let empty = RunConfig::default();
        let r = accept(UID, &serde_json::json!({"template": "k6"}), &empty).unwrap_err();
        assert!(r.to_string().contains("none; see TEMPLATES_FILE"), "{r}");
    }

    #[test]
    fn the_run_id_is_the_uid_and_the_spec_an_object() {
        let r = accept(UID, &serde_json::json!(["image"]), &config()).unwrap_err();
        assert!(
            matches!(r, Refusal::InvalidSpec { ref field, .. } if field == "spec"),
            "{r:?}"
        );
        let r = accept(
            "not-a-uid",
            &serde_json::json!({"image": "x", "argv": ["y"]}),
            &config(),
        )
        .unwrap_err();
        assert!(
            matches!(r, Refusal::InvalidSpec { ref field, .. } if field == "metadata.uid"),
            "{r:?}"
        );
    }
}

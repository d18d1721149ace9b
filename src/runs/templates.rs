//! The templates file (`--templates`): named executors (image, command, env,
//! resources, timeout, TTL, backoff) that runs start from, loaded and validated once
//! at startup with errors naming the file, the template and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{RunDefaults, RunSpec};
use crate::names::Namespace;

/// One named template: a [`RunSpec`] whose image and command are required (a request
/// may still override them).
pub type Template = RunSpec;

/// The file: `templates:` mapping each name to a template.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    templates: BTreeMap<String, Template>,
}

/// The loaded templates, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Templates {
    by_name: BTreeMap<String, Template>,
}

/// Why the templates file cannot be used; the service does not start with it.
#[derive(Debug, thiserror::Error)]
pub enum TemplatesError {
    #[error("templates file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("templates file {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("templates file {}: template '{template}': {message}", path.display())]
    Invalid {
        path: PathBuf,
        template: String,
        message: String,
    },
}

impl Templates {
    /// Reads and validates `path`.
    pub fn load(path: &Path, defaults: &RunDefaults) -> Result<Self, TemplatesError> {
        let text = crate::files::read_to_string(path).map_err(|source| TemplatesError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text, defaults)
    }

    /// Parses and validates a templates file's text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str, defaults: &RunDefaults) -> Result<Self, TemplatesError> {
        // serde-saphyr's messages carry the line and column of the offending key.
        let file: File = serde_saphyr::from_str(text).map_err(|e| TemplatesError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().lines().next().unwrap_or_default().to_string(),
        })?;
        for (name, template) in &file.templates {
            let invalid = |message: String| TemplatesError::Invalid {
                path: path.to_path_buf(),
                template: name.chars().take(80).collect(),
                message,
            };
            // The name becomes a label value: a DNS-1123 label fits every rule.
            name.parse::<Namespace>()
                .map_err(|e| invalid(format!("name: {}", e.rule)))?;
            if template.image.is_none() {
                return Err(invalid("image: required".into()));
            }
            if template.commands.is_none() && template.argv.is_none() {
                return Err(invalid(
                    "commands: give commands (run by sh -c) or argv".into(),
                ));
            }
            // Checked as a run from it alone would be (requests within limits too).
            template
                .clone()
                .resolve(defaults)
                .map_err(|e| invalid(e.to_string()))?;
        }
        Ok(Self {
            by_name: file.templates,
        })
    }

    pub fn get(&self, name: &str) -> Option<&Template> {
        self.by_name.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Template)> {
        self.by_name.iter()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Templates, TemplatesError> {
        Templates::parse(Path::new("t.yaml"), text, &RunDefaults::default())
    }

    #[test]
    fn the_example_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/templates.yaml");
        let t = Templates::load(&path, &RunDefaults::default()).unwrap();
        for name in ["k6", "newman", "playwright", "pytest"] {
            assert!(t.get(name).is_some(), "{name} missing");
        }
    }

    #[test]
    fn errors_name_the_template_and_the_field() {
        let e = parse("templates:\n  k6:\n    argv: [k6]\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "templates file t.yaml: template 'k6': image: required"
        );
        let e = parse(
            "templates:\n  big:\n    image: x\n    argv: [y]\n    resources:\n      limits:\n        memory: 64Gi\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("template 'big': resources.limits.memory: 64Gi exceeds"),
            "{e}"
        );
        let e = parse(
            "templates:\n  t:\n    image: x\n    argv: [y]\n    resources:\n      requests: {cpu: '3'}\n      limits: {cpu: '2'}\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("template 't': resources.requests.cpu: 3 exceeds resources.limits.cpu 2"),
            "checked as a run from it would be: {e}"
        );
        let e = parse("templates:\n  Bad_Name:\n    image: x\n    argv: [y]\n").unwrap_err();
        assert!(e.to_string().contains("template 'Bad_Name': name:"), "{e}");
        let e =
            parse("templates:\n  k6:\n    image: x\n    argv: [y]\n    timeout: 5\n").unwrap_err();
        assert!(
            e.to_string().starts_with("templates file t.yaml:")
                && e.to_string().contains("timeout"),
            "{e}"
        );
        let e = parse("templates:\n  k6:\n    image: x\n    argv: [y]\n    resources:\n      limits:\n        cpu: lots\n")
            .unwrap_err();
        assert!(e.to_string().contains("lots"), "{e}");
    }
}

//! Names that parse: job names, run ids, namespaces and what SparkTest shows of a run
//! are validated once, where they enter, so that nothing the apiserver could never
//! accept is ever sent to it.

use std::fmt;
use std::str::FromStr;

/// Why a name or id was rejected; the message says which rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {rule}")]
pub struct InvalidName {
    pub what: &'static str,
    pub rule: String,
}

fn invalid(what: &'static str, rule: impl Into<String>) -> InvalidName {
    InvalidName {
        what,
        rule: rule.into(),
    }
}

/// Checks a DNS-1123 label: lowercase alphanumerics and `-`, starting and ending with
/// an alphanumeric.
fn check_label(what: &'static str, label: &str) -> Result<(), InvalidName> {
    let bytes = label.as_bytes();
    if bytes.is_empty() {
        return Err(invalid(
            what,
            "must not be empty, nor have an empty part between dots",
        ));
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    {
        return Err(invalid(
            what,
            "may contain only lowercase letters, digits, '-' and '.'",
        ));
    }
    if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return Err(invalid(
            what,
            "must start and end with a lowercase letter or digit",
        ));
    }
    Ok(())
}

/// A Kubernetes Job name: a DNS-1123 subdomain of at most 63 characters (the Job
/// controller copies it into the `job-name` label of its pods, which limits it to 63).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobName(String);

impl JobName {
    pub const MAX_LEN: usize = 63;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for JobName {
    type Err = InvalidName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > Self::MAX_LEN {
            return Err(invalid(
                "job name",
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        for label in s.split('.') {
            check_label("job name", label)?;
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for JobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SparkTest run id: a UUID in its 8-4-4-4-12 hexadecimal form, kept lowercase
/// because it becomes part of the Job name `test-run-{run_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunId(String);

impl RunId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Job that runs this test run: `test-run-{run_id}`.
    pub fn job_name(&self) -> JobName {
        JobName(format!("test-run-{}", self.0))
    }
}

impl FromStr for RunId {
    type Err = InvalidName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_uuid("run id", s).map(Self)
    }
}

/// A UUID in its 8-4-4-4-12 hexadecimal form, lowercased.
fn parse_uuid(what: &'static str, s: &str) -> Result<String, InvalidName> {
    let rule = "must be a UUID such as 550e8400-e29b-41d4-a716-446655440000";
    let bytes = s.as_bytes();
    if bytes.len() != 36 {
        return Err(invalid(what, rule));
    }
    for (i, b) in bytes.iter().enumerate() {
        let ok = if matches!(i, 8 | 13 | 18 | 23) {
            *b == b'-'
        } else {
            b.is_ascii_hexdigit()
        };
        if !ok {
            return Err(invalid(what, rule));
        }
    }
    Ok(s.to_ascii_lowercase())
}

/// The id of the SparkTest test definition a run was started from: a UUID, kept as
/// the label `sparktest.dev/definition-id` (a UUID fits a label value's 63 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DefinitionId(String);

impl DefinitionId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DefinitionId {
    type Err = InvalidName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_uuid("test definition id", s).map(Self)
    }
}

/// A run's display name in SparkTest: free text of 1 to 253 characters with no
/// control characters, kept as the annotation `sparktest.dev/name` (annotation values
/// may hold any text; a label's 63 characters of `[-._a-zA-Z0-9]` could not).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 253;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DisplayName {
    type Err = InvalidName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        if s.chars().nth(Self::MAX_CHARS).is_some() {
            return Err(invalid(
                "name",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(invalid("name", "must not contain control characters"));
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A namespace name: a DNS-1123 label of at most 63 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(String);

impl Namespace {
    pub const MAX_LEN: usize = 63;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Namespace {
    type Err = InvalidName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > Self::MAX_LEN {
            return Err(invalid(
                "namespace",
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        if s.contains('.') {
            return Err(invalid("namespace", "must not contain '.'"));
        }
        check_label("namespace", s)?;
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_that_kubernetes_accepts() {
        for ok in ["test-job-123", "a", "job.v2", "0abc", &"a".repeat(63)] {
            assert!(ok.parse::<JobName>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn job_name_rules_one_by_one() {
        let cases = [
            ("", "empty"),
            (&*"a".repeat(64), "at most 63"),
            ("Test-Job", "lowercase"),
            ("-job", "start and end"),
            ("job-", "start and end"),
            ("a..b", "empty part"),
            (".job", "empty part"),
            ("a/b", "lowercase"),
            ("..", "empty part"),
            ("job%2Fx", "lowercase"),
            ("job?x=1", "lowercase"),
            ("jöb", "lowercase"),
            ("job name", "lowercase"),
            ("job\0", "lowercase"),
        ];
        for (input, rule) in cases {
            let err = input.parse::<JobName>().unwrap_err();
            assert!(err.to_string().contains(rule), "{input:?}: {err}");
        }
    }

    #[test]
    fn a_ten_kilobyte_name_is_rejected_by_length() {
        let err = "a".repeat(10_240).parse::<JobName>().unwrap_err();
        assert!(err.to_string().contains("at most 63"));
    }

    #[test]
    fn run_ids_are_uuids_and_map_to_test_run_jobs() {
        let id: RunId = "550E8400-e29b-41d4-a716-446655440000".parse().unwrap();
        assert_eq!(
            id.job_name().as_str(),
            "test-run-550e8400-e29b-41d4-a716-446655440000"
        );
        for bad in [
            "",
            "550e8400",
            "550e8400-e29b-41d4-a716-44665544000g",
            "550e8400e29b-41d4-a716-4466554400000",
            "550e8400-e29b-41d4-a716-446655440000/../x",
            "../../../../../../../../../../../../..",
        ] {
            assert!(bad.parse::<RunId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn definition_ids_are_uuids() {
        let id: DefinitionId = "7A1B2C3D-0000-4000-8000-000000000001".parse().unwrap();
        assert_eq!(id.as_str(), "7a1b2c3d-0000-4000-8000-000000000001");
        let err = "def-1".parse::<DefinitionId>().unwrap_err();
        assert_eq!(err.what, "test definition id");
    }

    #[test]
    fn display_names_are_free_text_within_bounds() {
        for ok in [
            "Login flow",
            "Größe: \"smoke\" / 2",
            &"n".repeat(253),
            "日本語テスト",
        ] {
            assert_eq!(ok.parse::<DisplayName>().unwrap().as_str(), ok);
        }
        for (bad, rule) in [
            ("", "empty"),
            ("   ", "empty"),
            (&*"n".repeat(254), "at most 253"),
            ("a\nb", "control"),
            ("a\u{7f}", "control"),
        ] {
            let err = bad.parse::<DisplayName>().unwrap_err();
            assert!(err.to_string().contains(rule), "{bad:?}: {err}");
        }
        // Characters, not bytes: 253 three-byte characters are fine.
        assert!("é".repeat(253).parse::<DisplayName>().is_ok());
    }

    #[test]
    fn namespaces_are_labels() {
        assert!("sparktest".parse::<Namespace>().is_ok());
        for bad in ["", "a.b", "Default", "-x", &"n".repeat(64)] {
            assert!(bad.parse::<Namespace>().is_err(), "{bad}");
        }
    }
}

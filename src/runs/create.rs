//! Creating a run's Job through `POST /apis/batch/v1/namespaces/{ns}/jobs`
//! ([`create_job`], [`CreateError`]) and new run ids ([`new_run_id`]).

use bytes::Bytes;
use http::Method;

use crate::kube::resources::{Job, jobs_path};
use crate::kube::{Client, KubeError};
use crate::names::{Namespace, RunId};

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

    #[test]
    fn run_ids_are_random_v4_uuids() {
        let a = new_run_id();
        let b = new_run_id();
        assert_ne!(a, b);
        assert_eq!(&a.as_str()[14..15], "4");
        assert!(matches!(&a.as_str()[19..20], "8" | "9" | "a" | "b"));
    }
}

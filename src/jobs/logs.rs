//! Reading a Job's logs as `kubectl logs job/NAME` shows them, with bounded memory: the
//! body is read up to a byte cap and the rest is never pulled from the apiserver.

use bytes::{Buf, BytesMut};
use http::Method;
use http_body_util::BodyExt;

use super::status::{self, JobState, Phase};
use super::{JobError, cached_job_pods, pods};
use crate::kube::resources::{Pod, pod_log_path, pod_path, query};
use crate::kube::{Client, KubeError};
use crate::names::{JobName, Namespace};

/// What the caller asked for, already validated and capped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LogOptions {
    /// `?pod=`: a pod of the job instead of kubectl's pick.
    pub pod: Option<String>,
    /// `?container=`: instead of the default container.
    pub container: Option<String>,
    /// `?all_containers=true`: every container, lines prefixed `[pod/P/C] `.
    pub all_containers: bool,
    pub tail_lines: u32,
    pub timestamps: bool,
    pub since_seconds: Option<u64>,
    pub since_time: Option<String>,
    /// The most bytes returned; more is cut and reported as truncated.
    pub limit_bytes: u64,
    pub previous: bool,
}

/// The logs of a job, or why there are none yet.
#[derive(Debug)]
pub struct JobLogs {
    pub pod_name: Option<String>,
    pub container: Option<String>,
    /// Shared, not copied: an archived log is handed out as the archive holds it.
    pub logs: std::sync::Arc<str>,
    pub truncated: bool,
    pub state: JobState,
    /// Why `logs` is empty when the pod cannot give logs yet (the cluster's reason).
    pub message: Option<String>,
    pub pod_count: usize,
}

/// Why a request for logs is refused before any log is read.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error(transparent)]
    Job(#[from] JobError),
    /// `?pod=` names a pod that does not exist or is not one of the job's.
    #[error("pod '{pod}' is not a pod of job '{job}'")]
    NoSuchPod { pod: String, job: String },
    /// `?container=` names a container the pod does not have.
    #[error("container '{container}' is not in pod '{pod}' (its containers: {containers})")]
    NoSuchContainer {
        container: String,
        pod: String,
        containers: String,
    },
}

impl From<KubeError> for LogsError {
    fn from(e: KubeError) -> Self {
        Self::Job(JobError::Kube(e))
    }
}

/// Reads the logs of a job's pod (kubectl's pick unless `?pod=` names one).
pub async fn job_logs(
    client: &Client,
    caches: Option<&super::cache::Caches>,
    ns: &Namespace,
    name: &JobName,
    options: &LogOptions,
) -> Result<JobLogs, LogsError> {
    let job = super::cached_job(client, caches, ns, name).await?;
    // `?pod=` reads that one pod (and checks it is the job's); otherwise the job's pods
    // are listed and kubectl's pick is read.
    let pods = match &options.pod {
        Some(wanted) => {
            let not_the_jobs = || LogsError::NoSuchPod {
                pod: wanted.clone(),
                job: name.to_string(),
            };
            let pod: Pod = client
                .get_json(&pod_path(ns.as_str(), wanted))
                .await
                .map_err(|e| match e.code() {
                    Some(404) => not_the_jobs(),
                    _ => LogsError::from(e),
                })?;
            let selected = job
                .spec
                .selector
                .as_ref()
                .is_some_and(|s| s.matches(&pod.metadata.labels));
            if !selected {
                return Err(not_the_jobs());
            }
            vec![pod]
        }
        None => cached_job_pods(client, caches.map(|c| &c.pods), ns, &job).await?,
    };
    let state = status::job_state(&job, Some(&pods));
    let pod_count = pods.len();
    let empty = |message: String, pod: Option<&Pod>, container: Option<String>| JobLogs {
        pod_name: pod.map(|p| p.metadata.name.clone()),
        container,
        logs: std::sync::Arc::from(""),
        truncated: false,
        state: state.clone(),
        message: Some(message),
        pod_count,
    };

    let pod = match &options.pod {
        Some(_) => &pods[0],
        None => match pods::pick_pod(&pods) {
            Some(pod) => pod,
            None => {
                let message = match state.phase {
                    Phase::Completed | Phase::Failed => {
                        "the job's pods no longer exist (removed by ttlSecondsAfterFinished or a cleanup)"
                            .to_string()
                    }
                    Phase::Suspended => "the job is suspended: it has no pods".to_string(),
                    _ => format!(
                        "the job has no pod yet{}",
                        state
                            .message
                            .as_deref()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    ),
                };
                return Ok(empty(message, None, None));
            }
        },
    };

    let containers: Vec<String> = if options.all_containers {
        pods::container_names(pod)
            .into_iter()
            .map(String::from)
            .collect()
    } else if let Some(wanted) = &options.container {
        if !pod.spec.containers.iter().any(|c| &c.name == wanted) {
            return Err(LogsError::NoSuchContainer {
                container: wanted.clone(),
                pod: pod.metadata.name.clone(),
                containers: pods::container_names(pod).join(", "),
            });
        }
        vec![wanted.clone()]
    } else {
        pods::default_container(pod)
            .map(String::from)
            .into_iter()
            .collect()
    };

    let mut out = BoundedBuffer::new(options.limit_bytes);
    let mut not_ready = None;
    for container in &containers {
        let prefix = options
            .all_containers
            .then(|| format!("[pod/{}/{}] ", pod.metadata.name, container));
        let prefix = prefix.as_deref();
        let outcome = read_container_log(client, ns, pod, container, options, &mut out, prefix);
        if let Some(message) = outcome.await? {
            not_ready.get_or_insert(message);
        }
        if out.truncated {
            break;
        }
    }
    let container = (!options.all_containers)
        .then(|| containers.first().cloned())
        .flatten();
    if let (Some(message), true) = (not_ready, out.buf.is_empty()) {
        return Ok(empty(message, Some(pod), container));
    }
    let truncated = out.truncated;
    Ok(JobLogs {
        pod_name: Some(pod.metadata.name.clone()),
        container,
        logs: std::sync::Arc::from(out.into_string()),
        truncated,
        state,
        message: None,
        pod_count,
    })
}

/// Reads one container's log into `out`. Returns `Some(reason)` when the pod cannot give
/// logs yet: the apiserver answers 204 for a pod with no node (unschedulable), and 400
/// with the kubelet's message for a container that is waiting to start.
async fn read_container_log(
    client: &Client,
    ns: &Namespace,
    pod: &Pod,
    container: &str,
    options: &LogOptions,
    out: &mut BoundedBuffer,
    prefix: Option<&str>,
) -> Result<Option<String>, KubeError> {
    let mut params = vec![("container", container.to_string())];
    params.push(("tailLines", options.tail_lines.to_string()));
    if options.timestamps {
        params.push(("timestamps", "true".into()));
    }
    if let Some(s) = options.since_seconds {
        params.push(("sinceSeconds", s.to_string()));
    } else if let Some(t) = &options.since_time {
        params.push(("sinceTime", t.clone()));
    }
    if options.previous {
        params.push(("previous", "true".into()));
    }
    // One byte more than the room left tells "exactly full" from "cut".
    params.push(("limitBytes", (out.remaining() + 1).to_string()));
    let path = format!(
        "{}{}",
        pod_log_path(ns.as_str(), &pod.metadata.name),
        query(&params)
    );
    let response = match client.send(Method::GET, &path, None).await {
        Ok(response) => response,
        Err(
            e @ KubeError::Api {
                code: 400 | 404, ..
            },
        ) => {
            let KubeError::Api { status, .. } = e else {
                unreachable!()
            };
            let (reason, _) = status::pod_waiting_reason(pod);
            return Ok(Some(format!(
                "{} ({reason})",
                status
                    .message
                    .unwrap_or_else(|| "the pod cannot give logs yet".into())
            )));
        }
        Err(e) => return Err(e),
    };
    if response.status() == http::StatusCode::NO_CONTENT {
        let (reason, message) = status::pod_waiting_reason(pod);
        return Ok(Some(match message {
            Some(m) => format!("the pod has not started: {reason}: {m}"),
            None => format!("the pod has not started: {reason}"),
        }));
    }
    // Room for the whole body at once when its length is known (within the cap).
    let hint = hyper::body::Body::size_hint(response.body())
        .upper()
        .unwrap_or(0);
    out.reserve(usize::try_from(hint).unwrap_or(usize::MAX));
    let mut body = response.into_body();
    let timeout = client.timeout();
    let read = async {
        let mut line_start = true;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| KubeError::Decode(format!("reading the log: {e}")))?;
            let Ok(mut data) = frame.into_data() else {
                continue;
            };
            while data.has_remaining() && !out.truncated {
                match prefix {
                    None => {
                        out.push(&data);
                        data.advance(data.len());
                    }
                    Some(prefix) => {
                        if line_start {
                            out.push(prefix.as_bytes());
                        }
                        let end = data.iter().position(|b| *b == b'\n').map(|i| i + 1);
                        let take = end.unwrap_or(data.len());
                        out.push(&data[..take]);
                        line_start = end.is_some();
                        data.advance(take);
                    }
                }
            }
            if out.truncated {
                // Dropping the body stops the transfer: the rest is never read.
                break;
            }
        }
        Ok::<_, KubeError>(())
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| KubeError::Timeout(timeout))??;
    Ok(None)
}

/// A buffer that never holds more than `cap` bytes, remembering that it cut.
struct BoundedBuffer {
    buf: BytesMut,
    cap: usize,
    truncated: bool,
}

impl BoundedBuffer {
    fn new(cap: u64) -> Self {
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        Self {
            // Empty: `reserve` sizes it from the body's length when that is known
            // (allocating 64 KiB first made the allocator copy it all on growing).
            buf: BytesMut::new(),
            cap,
            truncated: false,
        }
    }

    fn remaining(&self) -> usize {
        self.cap - self.buf.len()
    }

    /// Makes room for `additional` bytes, never beyond the cap.
    fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional.min(self.remaining()));
    }

    fn push(&mut self, bytes: &[u8]) {
        let room = self.remaining();
        if bytes.len() > room {
            self.buf.extend_from_slice(&bytes[..room]);
            self.truncated = true;
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The text, without a UTF-8 sequence the cut split in two. Valid UTF-8 (the usual
    /// case) becomes the String without a copy.
    fn into_string(self) -> String {
        let bytes = Vec::from(self.buf);
        let e = match String::from_utf8(bytes) {
            Ok(text) => return text,
            Err(e) => e,
        };
        let cut = e.utf8_error();
        let mut bytes = e.into_bytes();
        if cut.error_len().is_none() {
            bytes.truncate(cut.valid_up_to());
        }
        match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_buffer_cuts_at_the_cap_and_says_so() {
        let mut b = BoundedBuffer::new(10);
        b.push(b"hello ");
        assert!(!b.truncated);
        b.push(b"world!");
        assert!(b.truncated);
        assert_eq!(b.into_string(), "hello worl");
    }

    #[test]
    fn a_cut_inside_a_utf8_sequence_drops_the_partial_character() {
        let mut b = BoundedBuffer::new(4);
        b.push("abcé".as_bytes()); // é is two bytes: the cap falls inside it
        assert_eq!(b.into_string(), "abc");
    }
}

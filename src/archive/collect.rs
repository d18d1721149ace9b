//! Collecting a finished run from the apiserver into local spill files: every
//! container's log of every pod (retries included, kubelet timestamps), gzip-compressed
//! as it streams in (never held whole in memory), hashed for the upload, and capped per
//! container; and the run's record.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use http::Method;
use http_body_util::BodyExt as _;

use super::record::{self, ContainerSummary, PodSummary, RunRecord};
use crate::jobs::{self, JobError, pods, status, timeline};
use crate::kube::resources::{Job, Pod, pod_log_path, query};
use crate::kube::{Client, KubeError};
use crate::names::{JobName, Namespace};

/// A log written to a spill file, ready to be stored under `key`.
#[derive(Debug)]
pub struct SpilledLog {
    pub key: String,
    pub path: PathBuf,
    /// Bytes of the compressed file, and their SHA-256 (hex).
    pub len: u64,
    pub sha256: String,
}

/// A run collected: its record and its logs in a private spill directory, removed when
/// this is dropped (after the run is stored, or given up).
#[derive(Debug)]
pub struct Collected {
    pub record: RunRecord,
    pub logs: Vec<SpilledLog>,
    dir: PathBuf,
}

impl Drop for Collected {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads the Job and its pods and writes every container's log to `spill`. `cancelled`
/// (a time) marks a run deleted through the API before it finished. `Ok(None)`: the
/// Job does not exist (any more).
pub async fn collect(
    client: &Client,
    ns: &Namespace,
    name: &JobName,
    spill: &Path,
    cap: u64,
    cancelled: Option<&str>,
) -> Result<Option<Collected>, KubeError> {
    let job = match jobs::get_job(client, ns, name).await {
        Ok(job) => job,
        Err(JobError::NotFound { .. }) => return Ok(None),
        Err(JobError::Kube(e)) => return Err(e),
        Err(e @ JobError::Unmanaged { .. }) => return Err(KubeError::Decode(e.to_string())),
    };
    // Only SparkTest's runs are archived.
    if !jobs::is_managed(&job) {
        return Ok(None);
    }
    let pods = jobs::job_pods(client, ns, &job).await?;
    let dir = spill_dir(spill, ns, name).map_err(|e| {
        KubeError::Decode(format!(
            "cannot make a spill directory in {}: {e}",
            spill.display()
        ))
    })?;
    let mut collected = Collected {
        record: record_of(&job, &pods, cancelled),
        logs: Vec::new(),
        dir,
    };
    for (pod, summary) in pods.iter().zip(collected.record.pods.iter_mut()) {
        for container in &mut summary.containers {
            let key = record::log_key(
                ns.as_str(),
                name.as_str(),
                &pod.metadata.name,
                &container.name,
            );
            let file = collected
                .dir
                .join(format!("{}-{}.log.gz", pod.metadata.name, container.name));
            match spill_log(client, ns, pod, &container.name, cap, &file).await? {
                None => {}
                Some(spilled) => {
                    container.log_key = Some(key.clone());
                    container.log_bytes = spilled.plain_bytes;
                    container.truncated = spilled.truncated;
                    collected.logs.push(SpilledLog {
                        key,
                        path: file,
                        len: spilled.len,
                        sha256: spilled.sha256,
                    });
                }
            }
        }
    }
    Ok(Some(collected))
}

/// The record of a run from its Job and pods (logs are added as they are written).
pub fn record_of(job: &Job, pods: &[Pod], cancelled: Option<&str>) -> RunRecord {
    let state = status::job_state(job, Some(pods));
    let finished = state.phase.is_terminal();
    let mut status = serde_json::to_value(status::StatusView::new(job, state)).unwrap_or_default();
    status["timeline"] = serde_json::to_value(timeline::job_timeline(pods)).unwrap_or_default();
    if let Some(at) = cancelled
        && !finished
    {
        status["status"] = "cancelled".into();
        status["reason"] = "Cancelled".into();
        status["message"] = format!("deleted through the API at {at} before it finished").into();
        status["cancelled_at"] = at.into();
    }
    RunRecord {
        format: record::FORMAT,
        namespace: job.metadata.namespace.clone().unwrap_or_default(),
        job_name: job.metadata.name.clone(),
        job_uid: job.metadata.uid.clone(),
        created_at: job.metadata.creation_timestamp.clone(),
        labels: job.metadata.labels.clone(),
        annotations: job
            .metadata
            .annotations
            .iter()
            .filter(|(k, _)| k.starts_with("sparktest.dev/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        archived_at: crate::time::now_rfc3339(),
        status,
        default_pod: pods::pick_pod(pods).map(|p| p.metadata.name.clone()),
        pods: pods.iter().map(pod_summary).collect(),
    }
}

fn pod_summary(pod: &Pod) -> PodSummary {
    PodSummary {
        name: pod.metadata.name.clone(),
        phase: pod.status.phase.clone(),
        start_time: pod.status.start_time.clone(),
        default_container: pods::default_container(pod).map(str::to_string),
        containers: pod
            .spec
            .containers
            .iter()
            .map(|c| {
                let state = pod
                    .status
                    .container_statuses
                    .iter()
                    .find(|s| s.name == c.name)
                    .map(|s| &s.state);
                let terminated = state.and_then(|s| s.terminated.as_ref());
                ContainerSummary {
                    name: c.name.clone(),
                    exit_code: terminated.and_then(|t| t.exit_code),
                    reason: terminated
                        .and_then(|t| t.reason.clone())
                        .or_else(|| state.and_then(|s| s.waiting.as_ref()?.reason.clone())),
                    started_at: state
                        .and_then(|s| s.running.as_ref().or(s.terminated.as_ref()))
                        .and_then(|d| d.started_at.clone()),
                    finished_at: terminated.and_then(|t| t.finished_at.clone()),
                    log_key: None,
                    log_bytes: 0,
                    truncated: false,
                }
            })
            .collect(),
    }
}

/// A private directory for one run's spill files.
fn spill_dir(spill: &Path, ns: &Namespace, name: &JobName) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = spill.join(format!(
        "{ns}-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    Ok(dir)
}

struct Spilled {
    len: u64,
    sha256: String,
    plain_bytes: u64,
    truncated: bool,
}

/// Bytes of log gathered before they are compressed and written, off the runtime.
const BATCH: usize = 256 * 1024;

/// Streams one container's log (`timestamps=true`, at most `cap` bytes) through gzip
/// into `file`. `None` when the kubelet has no log to give (a container that never
/// started, a pod without a node).
async fn spill_log(
    client: &Client,
    ns: &Namespace,
    pod: &Pod,
    container: &str,
    cap: u64,
    file: &Path,
) -> Result<Option<Spilled>, KubeError> {
    let params = [
        ("container", container.to_string()),
        ("timestamps", "true".to_string()),
        // One byte more than the cap tells "exactly full" from "cut".
        ("limitBytes", (cap + 1).to_string()),
    ];
    let path = format!(
        "{}{}",
        pod_log_path(ns.as_str(), &pod.metadata.name),
        query(&params)
    );
    let response = match client.send(Method::GET, &path, None).await {
        Ok(r) => r,
        Err(KubeError::Api {
            code: 400 | 404, ..
        }) => return Ok(None),
        Err(e) => return Err(e),
    };
    if response.status() == http::StatusCode::NO_CONTENT {
        return Ok(None);
    }
    let mut writer = Some(
        GzipFile::create(file)
            .map_err(|e| KubeError::Decode(format!("spill file {}: {e}", file.display())))?,
    );
    let mut body = response.into_body();
    let mut batch: Vec<u8> = Vec::with_capacity(BATCH);
    let mut plain: u64 = 0;
    let mut truncated = false;
    let timeout = client.timeout();
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| KubeError::Decode(format!("reading the log: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let room = usize::try_from(cap - plain).unwrap_or(usize::MAX);
            let take = data.len().min(room);
            batch.extend_from_slice(&data[..take]);
            plain += take as u64;
            if take < data.len() {
                truncated = true;
                break;
            }
            if batch.len() >= BATCH {
                writer = Some(write_batch(writer.take(), std::mem::take(&mut batch)).await?);
            }
        }
        Ok::<_, KubeError>(())
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| KubeError::Timeout(timeout))??;
    let writer = write_batch(writer.take(), batch).await?;
    let (len, sha256) = tokio::task::spawn_blocking(move || writer.finish())
        .await
        .map_err(|e| KubeError::Decode(format!("spill task: {e}")))?
        .map_err(|e| KubeError::Decode(format!("spill file: {e}")))?;
    Ok(Some(Spilled {
        len,
        sha256,
        plain_bytes: plain,
        truncated,
    }))
}

async fn write_batch(writer: Option<GzipFile>, batch: Vec<u8>) -> Result<GzipFile, KubeError> {
    let mut writer = writer.expect("the spill writer is handed back after each batch");
    tokio::task::spawn_blocking(move || writer.write_all(&batch).map(|()| writer))
        .await
        .map_err(|e| KubeError::Decode(format!("spill task: {e}")))?
        .map_err(|e| KubeError::Decode(format!("spill file: {e}")))
}

/// A gzip file (0600) whose compressed bytes are counted and hashed as they are written.
pub struct GzipFile(flate2::write::GzEncoder<Hashing>);

pub struct Hashing {
    file: std::fs::File,
    digest: ring::digest::Context,
    len: u64,
}

impl std::io::Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.digest.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl GzipFile {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        Ok(Self(flate2::write::GzEncoder::new(
            Hashing {
                file,
                digest: ring::digest::Context::new(&ring::digest::SHA256),
                len: 0,
            },
            flate2::Compression::fast(),
        )))
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.write_all(bytes)
    }

    /// Ends the gzip stream; the compressed length and its SHA-256 (hex).
    pub fn finish(self) -> std::io::Result<(u64, String)> {
        let hashing = self.0.finish()?;
        hashing.file.sync_all()?;
        let digest = hashing.digest.finish();
        let hex = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        Ok((hashing.len, hex))
    }
}

/// The text of a gzip-compressed log.
pub fn gunzip(bytes: &[u8], max: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .take(max)
        .read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spilled_log_is_gzip_its_hash_and_length_are_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log.gz");
        let mut file = GzipFile::create(&path).unwrap();
        let line = "2026-01-01T00:00:00.000000000Z a line of a test log\n";
        for _ in 0..1000 {
            file.write_all(line.as_bytes()).unwrap();
        }
        let (len, sha) = file.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(len, bytes.len() as u64);
        let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(sha, hex);
        assert!(len * 5 < (line.len() * 1000) as u64, "compressed {len}");
        assert_eq!(gunzip(&bytes, u64::MAX).unwrap(), line.repeat(1000));
    }
}

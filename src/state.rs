//! What the handlers share: the Kubernetes client (or why there is none), the default
//! namespace, limits, and the health cache.

use std::sync::Arc;
use std::time::Duration;

use crate::cli::Settings;
use crate::cluster::{self, ClusterConfig, ConfigSource, DiscoveryError};
use crate::kube::{Client, ClientOptions, KubeError};
use crate::names::Namespace;

/// Limits on what the log endpoints return.
#[derive(Debug, Clone, Copy)]
pub struct LogLimits {
    pub max_lines: u32,
    pub max_bytes: u64,
}

/// The connection, or why there is none (shown by health, returned as 503 by the rest).
#[derive(Debug, Clone)]
pub struct Connection {
    pub client: Result<Client, String>,
    pub source: Option<ConfigSource>,
}

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// Log reads (`GET .../logs`) in flight at once, per CPU. Each holds a whole log, up
/// to `--max-log-bytes`, and its JSON; more at once only add memory (and apiserver
/// connections) and thrash the CPU caches, not throughput, so further requests queue
/// in order. On 2 cores 16 at once served 1.2x the throughput of 32 at 128 clients
/// (benches/compare.sh) with a lower p99 and less memory.
pub const LOG_READS_PER_CPU: usize = 8;

/// What the log reads in flight may hold at most together: each holds up to
/// `--max-log-bytes` of log and about as much again of JSON.
pub const LOG_READ_MEMORY: u64 = 512 * 1024 * 1024;

/// [`LOG_READS_PER_CPU`] times the CPUs this process may use, fewer when that many logs
/// of `max_bytes` would hold more than [`LOG_READ_MEMORY`] (at least one).
pub fn max_concurrent_log_reads(max_bytes: u64) -> usize {
    let cpus = std::thread::available_parallelism().map_or(2, usize::from);
    log_reads_within(LOG_READS_PER_CPU * cpus, max_bytes)
}

fn log_reads_within(by_cpu: usize, max_bytes: u64) -> usize {
    let by_memory = LOG_READ_MEMORY / max_bytes.saturating_mul(2).max(1);
    by_cpu
        .min(usize::try_from(by_memory).unwrap_or(usize::MAX))
        .max(1)
}

/// Why `?namespace=` cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// Not a namespace name at all.
    #[error(transparent)]
    Invalid(#[from] crate::names::InvalidName),
    /// A namespace, but not one of those served.
    #[error("namespace '{namespace}' is not served: allowed are {served} (ALLOWED_NAMESPACES)")]
    NotServed { namespace: String, served: String },
}

/// Limits of the live streams.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Concurrent streams (logs and watches); beyond it, 503.
    pub max_streams: usize,
    /// How often a waiting stream reads the job and its pods again.
    pub poll: Duration,
    /// How long a shared upstream outlives its last follower (a page reload does not
    /// reopen it).
    pub linger: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            max_streams: 256,
            poll: Duration::from_secs(2),
            linger: Duration::from_secs(5),
        }
    }
}

/// Who may call the API and what it may do.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Bearer tokens of callers; `None`: no caller authentication.
    pub api_tokens: Option<Arc<crate::tokens::ApiTokens>>,
    /// Whether DELETE may remove Jobs that SparkTest does not manage.
    pub delete_unmanaged: bool,
    /// Origins allowed by CORS; empty: none (same-origin only).
    pub cors_origins: Vec<String>,
    /// Namespaces `?namespace=` may name besides the service's own.
    pub allowed_namespaces: Vec<Namespace>,
    /// Run defaults, maxima and templates.
    pub runs: Arc<RunConfig>,
    /// How long a status or log answer is reused for other callers (zero: only
    /// concurrent callers share one apiserver call).
    pub answer_reuse: Duration,
}

/// What `POST /api/test-runs` starts from.
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    pub defaults: crate::runs::RunDefaults,
    pub templates: crate::runs::templates::Templates,
}

struct Inner {
    policy: Policy,
    connection: Connection,
    namespace: Namespace,
    logs: LogLimits,
    streams: StreamLimits,
    stream_permits: Arc<tokio::sync::Semaphore>,
    /// Log reads in flight (each holds a whole log and its JSON): more wait their turn.
    log_reads: tokio::sync::Semaphore,
    health: crate::health::HealthCache,
    /// Flips to true when the server starts draining: live streams end at once.
    shutdown: tokio::sync::watch::Sender<bool>,
    /// True from SIGTERM on: `/readyz` answers 503.
    unready: std::sync::atomic::AtomicBool,
    /// The watch-backed caches of each served namespace's Jobs and run pods, once
    /// started.
    caches: std::sync::OnceLock<std::collections::HashMap<Namespace, crate::jobs::cache::Caches>>,
    /// Where finished runs are archived, when an archive is configured.
    archive: std::sync::OnceLock<crate::archive::Archive>,
    /// Status and log answers shared by concurrent callers and briefly reused.
    answers: Answers,
    /// The live streams shared by their followers.
    hub: Arc<crate::jobs::hub::Hub>,
}

/// A status answer's key: the job.
pub type StatusKey = (Namespace, crate::names::JobName);
/// A log answer's key: the job and every parameter.
pub type LogsKey = (
    Namespace,
    crate::names::JobName,
    crate::jobs::logs::LogOptions,
);

/// Answers shared between callers ([`crate::jobs::shared`]).
pub struct Answers {
    pub status: crate::jobs::shared::Shared<StatusKey, Arc<crate::jobs::JobReport>>,
    pub logs: crate::jobs::shared::Shared<LogsKey, Arc<crate::jobs::logs::JobLogs>>,
}

impl Answers {
    /// Answers reused for `reuse` (zero: only concurrent callers share one).
    pub fn new(reuse: Duration) -> Self {
        Self {
            status: crate::jobs::shared::Shared::new(reuse),
            logs: crate::jobs::shared::Shared::new(reuse),
        }
    }
}

/// How long a status or log answer is reused by default.
pub const ANSWER_REUSE: Duration = Duration::from_secs(1);

impl AppState {
    pub fn new(connection: Connection, namespace: Namespace, logs: LogLimits) -> Self {
        Self::with_streams(connection, namespace, logs, StreamLimits::default())
    }

    pub fn with_streams(
        connection: Connection,
        namespace: Namespace,
        logs: LogLimits,
        streams: StreamLimits,
    ) -> Self {
        Self::with_policy(connection, namespace, logs, streams, Policy::default())
    }

    pub fn with_policy(
        connection: Connection,
        namespace: Namespace,
        logs: LogLimits,
        streams: StreamLimits,
        policy: Policy,
    ) -> Self {
        let reuse = policy.answer_reuse;
        Self {
            inner: Arc::new(Inner {
                policy,
                connection,
                namespace,
                logs,
                streams,
                stream_permits: Arc::new(tokio::sync::Semaphore::new(streams.max_streams)),
                log_reads: tokio::sync::Semaphore::new(max_concurrent_log_reads(logs.max_bytes)),
                health: crate::health::HealthCache::default(),
                shutdown: tokio::sync::watch::Sender::new(false),
                unready: std::sync::atomic::AtomicBool::new(false),
                caches: std::sync::OnceLock::new(),
                archive: std::sync::OnceLock::new(),
                answers: Answers::new(reuse),
                hub: crate::jobs::hub::Hub::new(streams.linger),
            }),
        }
    }

    /// Ends every live stream (called when the server starts draining): streams never
    /// finish on their own, so a drain would otherwise wait for the whole grace period.
    pub fn begin_shutdown(&self) {
        self.set_unready();
        self.inner.shutdown.send_replace(true);
    }

    /// From now on `/readyz` answers 503 (SIGTERM received).
    pub fn set_unready(&self) {
        self.inner
            .unready
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether `/readyz` should answer 503.
    pub fn is_unready(&self) -> bool {
        self.inner
            .unready
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Completes when the server starts draining.
    pub fn shutting_down(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        let mut rx = self.inner.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|down| *down).await;
        }
    }

    /// Starts the watch-backed caches of every served namespace and the archive's
    /// background work (when there is a cluster); they stop with the server.
    pub fn start_caches(&self) {
        let Ok(client) = self.client() else {
            return;
        };
        let caches = self
            .namespaces()
            .map(|ns| {
                let state = self.clone();
                let stop = move || state.shutting_down();
                let observer = self.archive().map(|archive| {
                    let archive = archive.clone();
                    let ns = ns.clone();
                    // A finished run reaches the archive the moment the watch sees it.
                    Arc::new(move |job: &crate::kube::resources::Job| {
                        if crate::jobs::is_managed(job)
                            && crate::jobs::status::job_state(job, None)
                                .phase
                                .is_terminal()
                            && let Ok(name) = job.metadata.name.parse()
                        {
                            archive.request(&ns, &name);
                        }
                    }) as crate::jobs::cache::JobObserver
                });
                let caches = crate::jobs::cache::Caches::spawn(client, ns, stop, observer);
                (ns.clone(), caches)
            })
            .collect();
        let _ = self.inner.caches.set(caches);
        if let Some(archive) = self.archive() {
            let state = self.clone();
            archive.spawn(
                client.clone(),
                self.namespaces().cloned().collect(),
                move || state.shutting_down(),
            );
        }
    }

    /// The archive of finished runs, when one is configured.
    pub fn archive(&self) -> Option<&crate::archive::Archive> {
        self.inner.archive.get()
    }

    /// Sets the archive (once, before serving).
    pub fn set_archive(&self, archive: crate::archive::Archive) {
        let _ = self.inner.archive.set(archive);
    }

    /// The caches of `namespace`, when started.
    pub fn caches(&self, namespace: &Namespace) -> Option<&crate::jobs::cache::Caches> {
        self.inner.caches.get()?.get(namespace)
    }

    /// Every namespace the API serves: the service's own, then the allowed ones.
    pub fn namespaces(&self) -> impl Iterator<Item = &Namespace> {
        let own = self.namespace();
        std::iter::once(own).chain(
            self.inner
                .policy
                .allowed_namespaces
                .iter()
                .filter(move |ns| *ns != own),
        )
    }

    /// `?namespace=`: the service's own namespace when absent; a namespace outside the
    /// allowed ones is refused before any apiserver call.
    pub fn scope(&self, requested: Option<&str>) -> Result<Namespace, ScopeError> {
        let Some(requested) = requested else {
            return Ok(self.namespace().clone());
        };
        let ns: Namespace = requested.parse()?;
        if self.namespaces().any(|allowed| *allowed == ns) {
            Ok(ns)
        } else {
            Err(ScopeError::NotServed {
                namespace: ns.to_string(),
                served: self
                    .namespaces()
                    .map(Namespace::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }

    /// The live streams shared by their followers.
    pub fn hub(&self) -> &Arc<crate::jobs::hub::Hub> {
        &self.inner.hub
    }

    /// Status and log answers shared between callers.
    pub fn answers(&self) -> &Answers {
        &self.inner.answers
    }

    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// Waits for a turn to read a log (see [`max_concurrent_log_reads`]).
    pub async fn log_read_permit(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.inner
            .log_reads
            .acquire()
            .await
            .expect("the log-read semaphore is never closed")
    }

    pub fn stream_limits(&self) -> StreamLimits {
        self.inner.streams
    }

    /// A place for one more live stream, held for the stream's life; `None` when the
    /// configured maximum is reached.
    pub fn stream_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.inner.stream_permits.clone().try_acquire_owned().ok()
    }

    /// Live streams open now.
    pub fn active_streams(&self) -> usize {
        self.inner.streams.max_streams - self.inner.stream_permits.available_permits()
    }

    /// The client, or [`KubeError::NotConfigured`] naming what was tried.
    pub fn client(&self) -> Result<&Client, KubeError> {
        self.inner
            .connection
            .client
            .as_ref()
            .map_err(|why| KubeError::NotConfigured(why.clone()))
    }

    pub fn connection(&self) -> &Connection {
        &self.inner.connection
    }

    pub fn namespace(&self) -> &Namespace {
        &self.inner.namespace
    }

    pub fn log_limits(&self) -> LogLimits {
        self.inner.logs
    }

    pub fn health_cache(&self) -> &crate::health::HealthCache {
        &self.inner.health
    }
}

impl Connection {
    /// A client for the cluster found, or the reason there is none (logged).
    pub fn to(found: &Result<ClusterConfig, DiscoveryError>, options: ClientOptions) -> Self {
        match found {
            Err(e) => Self {
                client: Err(e.to_string()),
                source: None,
            },
            Ok(config) => Self {
                client: Client::new(config, options).map_err(|e| {
                    tracing::error!(error = %e, "cannot build the Kubernetes client");
                    e.to_string()
                }),
                source: Some(config.source.clone()),
            },
        }
    }
}

/// Why the service does not start: its settings are broken. Reported before it binds.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The namespace (flag, kubeconfig context or in-cluster file) is no namespace name.
    #[error("the namespace '{namespace}' cannot be used: {source}")]
    Namespace {
        namespace: String,
        #[source]
        source: crate::names::InvalidName,
    },
    /// `ALLOWED_NAMESPACES` names something that is not a namespace.
    #[error("ALLOWED_NAMESPACES names an invalid namespace: {0}")]
    AllowedNamespaces(String),
    /// The API tokens file cannot be used.
    #[error(transparent)]
    Tokens(#[from] crate::tokens::TokensError),
    /// The run defaults and maxima contradict each other.
    #[error("the run resource settings contradict each other: {0}")]
    RunDefaults(String),
    /// The templates file cannot be used.
    #[error(transparent)]
    Templates(#[from] crate::runs::templates::TemplatesError),
    /// The log archive that `LOG_ARCHIVE` names cannot be used.
    #[error("LOG_ARCHIVE: {0}")]
    Archive(String),
}

impl AppState {
    /// The service's state from its settings: the cluster found (a missing one is not
    /// fatal: the job endpoints answer 503), the namespace, the callers' tokens, the
    /// run defaults and templates, each checked, so that a broken setting stops the
    /// service before it binds, named.
    pub fn from_settings(settings: &Settings) -> Result<Self, StartupError> {
        let found = cluster::find(&settings.cluster.environment());
        let connection = Connection::to(&found, settings.cluster.client_options());
        let namespace =
            cluster::default_namespace(settings.cluster.namespace.as_deref(), found.as_ref().ok());
        let namespace: Namespace = namespace
            .parse()
            .map_err(|source| StartupError::Namespace { namespace, source })?;
        let api_tokens = match &settings.api_tokens_file {
            None => {
                tracing::warn!(
                    "caller authentication is OFF: set API_TOKENS_FILE to require bearer tokens"
                );
                None
            }
            Some(path) => {
                let tokens = crate::tokens::ApiTokens::load(path.clone())?;
                tracing::info!(path = %path.display(), tokens = tokens.count(), "caller authentication is on");
                Some(Arc::new(tokens))
            }
        };
        let defaults = settings.run_defaults().map_err(StartupError::RunDefaults)?;
        let templates = match &settings.templates {
            None => Default::default(),
            Some(path) => {
                let templates = crate::runs::templates::Templates::load(path, &defaults)?;
                tracing::info!(path = %path.display(), templates = templates.len(), "run templates loaded");
                templates
            }
        };
        let policy = Policy {
            api_tokens,
            delete_unmanaged: settings.delete_unmanaged,
            cors_origins: settings.cors_origins.clone(),
            allowed_namespaces: settings
                .allowed_namespaces()
                .map_err(StartupError::AllowedNamespaces)?,
            runs: Arc::new(RunConfig {
                defaults,
                templates,
            }),
            answer_reuse: Duration::from_millis(settings.answer_reuse_ms),
        };
        let limits = LogLimits {
            max_lines: settings.max_log_lines,
            max_bytes: settings.max_log_bytes,
        };
        let streams = StreamLimits {
            max_streams: settings.max_streams as usize,
            ..StreamLimits::default()
        };
        let archive = open_archive(settings)?;
        let state = Self::with_policy(connection, namespace, limits, streams, policy);
        if let Some(archive) = archive {
            state.set_archive(archive);
        }
        Ok(state)
    }
}

/// The archive `--log-archive` names: an explicit one must work; the default
/// directory, when not writable (a read-only root filesystem), leaves the archive off
/// with a warning.
fn open_archive(settings: &Settings) -> Result<Option<crate::archive::Archive>, StartupError> {
    use crate::archive::{self, Archive, Location, Store};
    let var = |name: &str| std::env::var(name).ok();
    let explicit = settings.log_archive.is_some();
    let options = archive::Options {
        cap: settings.log_archive_max_bytes,
        retention: settings
            .log_archive_retention_days
            .map(|days| Duration::from_secs(u64::from(days) * 86_400)),
        ..archive::Options::default()
    };
    let off = "logs are lost once Kubernetes removes a run's Job (ttlSecondsAfterFinished, \
               pod garbage collection, DELETE); set LOG_ARCHIVE to a writable directory or \
               s3://BUCKET[/PREFIX] to keep them";
    let store = match Location::parse(settings.log_archive.as_deref(), &var) {
        Location::Off => {
            tracing::warn!("the log archive is off: {off}");
            return Ok(None);
        }
        Location::Dir(dir) => match archive::DirStore::open(dir) {
            Ok(store) => Store::Dir(store),
            Err(e) if explicit => return Err(StartupError::Archive(e)),
            Err(e) => {
                tracing::warn!(error = %e, "the default log archive directory is not writable, so the log archive is off: {off}");
                return Ok(None);
            }
        },
        Location::S3(location) => {
            let config =
                archive::s3::S3Config::parse(&location, &var).map_err(StartupError::Archive)?;
            Store::S3(archive::s3::S3Store::new(config).map_err(StartupError::Archive)?)
        }
    };
    tracing::info!(store = %store.describe(), "finished runs are archived");
    Ok(Some(Archive::new(store, options)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_reads_in_flight_are_held_to_the_memory_budget() {
        const MIB: u64 = 1024 * 1024;
        for (by_cpu, max_bytes, want) in [
            (16, 10 * MIB, 16),  // the default: the CPUs decide
            (16, 64 * MIB, 4),   // 4 x 128 MiB = the budget
            (16, 1024 * MIB, 1), // the largest allowed: one at a time, never none
            (2, 1024, 2),        // tiny logs: still the CPUs
        ] {
            assert_eq!(log_reads_within(by_cpu, max_bytes), want, "{max_bytes}");
        }
    }
}

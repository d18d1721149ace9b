//! Test evidence that outlives the Job: every finished SparkTest run's logs (every
//! container of every pod, retries included), final status and pods' summary, archived
//! to a directory or an S3-compatible bucket, and read back when Kubernetes no longer has
//! the run — or has it, finished, since an archived log cannot change.
//!
//! A run is archived when the job cache sees it finish, when any answer observes it
//! finished, when a periodic sweep of the managed Jobs finds it (also at start, for runs
//! that finished while the service was down), and before a DELETE through the API
//! removes it. Collecting reads the apiserver into local spill files ([`collect`]);
//! storing writes the logs, then the record last ([`record::RunRecord`]), so that a run
//! is archived exactly when its record exists. A store that is down is retried with
//! backoff from the spill files; no API answer waits for it.

pub mod collect;
pub mod read;
pub mod record;
pub mod s3;
pub mod sigv4;
pub mod store;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use self::collect::Collected;
use self::record::RunRecord;
pub use self::store::{DirStore, Store, StoreError};
use crate::kube::{Client, KubeError};
use crate::names::{JobName, Namespace};

/// `--log-archive`: where runs are archived.
#[derive(Debug, Clone)]
pub enum Location {
    Off,
    Dir(PathBuf),
    S3(String),
}

impl Location {
    /// `off`, `s3://BUCKET[/PREFIX]` or a directory; unset, the default directory
    /// `$XDG_DATA_HOME/sparktest-k8s/archive` (else `~/.local/share/...`), or off when
    /// neither variable is set. `var` reads the environment.
    pub fn parse(value: Option<&str>, var: &dyn Fn(&str) -> Option<String>) -> Self {
        match value.map(str::trim) {
            Some("off") => Self::Off,
            Some(s3) if s3.starts_with("s3://") => Self::S3(s3.to_string()),
            Some(dir) if !dir.is_empty() => Self::Dir(PathBuf::from(dir)),
            _ => match default_dir(var) {
                Some(dir) => Self::Dir(dir),
                None => Self::Off,
            },
        }
    }
}

/// `$XDG_DATA_HOME/sparktest-k8s/archive`, else `$HOME/.local/share/sparktest-k8s/archive`.
pub fn default_dir(var: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = match var("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(xdg) => PathBuf::from(xdg),
        None => PathBuf::from(var("HOME").filter(|v| !v.is_empty())?).join(".local/share"),
    };
    Some(base.join("sparktest-k8s/archive"))
}

/// How the archive behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// The most bytes of one container's log archived; the rest is cut, and recorded.
    pub cap: u64,
    /// Where logs are spilled while they are collected.
    pub spill: PathBuf,
    /// How often the managed Jobs are swept for finished runs not yet archived.
    pub sweep: Duration,
    /// Archived runs older than this are pruned.
    pub retention: Option<Duration>,
    /// Archived logs larger than this (uncompressed) are read as a stream for each
    /// answer instead of being held and cached whole.
    pub stream_above: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            cap: 64 * 1024 * 1024,
            spill: std::env::temp_dir().join("sparktest-k8s-spill"),
            sweep: Duration::from_secs(60),
            retention: None,
            stream_above: 16 * 1024 * 1024,
        }
    }
}

/// The most bytes of archived log kept decompressed in memory for answers.
const LOG_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// A store that failed is tried again after this, doubling up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

type RunKey = (String, String);

fn run_key(ns: &Namespace, job: &JobName) -> RunKey {
    (ns.to_string(), job.to_string())
}

/// The archive: cheap to clone.
#[derive(Clone)]
pub struct Archive {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    options: Options,
    /// The runs archived, with their records once read.
    index: RwLock<HashMap<RunKey, Option<Arc<RunRecord>>>>,
    /// Runs requested and not archived yet (being collected, or waiting to be stored).
    pending: Mutex<HashSet<RunKey>>,
    /// The managed Jobs each namespace had at the last sweep.
    swept: RwLock<HashMap<String, HashSet<String>>>,
    tasks: mpsc::UnboundedSender<Task>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Task>>>,
    logs: Mutex<LogCache>,
}

enum Task {
    /// Collect a finished run from the apiserver.
    Collect { ns: Namespace, job: JobName },
    /// Store a collected run (again, after a failure).
    Store {
        collected: Box<Collected>,
        backoff: Duration,
    },
}

impl Archive {
    /// An archive over `store`; nothing is read until [`Archive::load_index`].
    pub fn new(store: Store, options: Options) -> Self {
        let (tasks, receiver) = mpsc::unbounded_channel();
        Self {
            inner: Arc::new(Inner {
                store,
                options,
                index: RwLock::new(HashMap::new()),
                pending: Mutex::new(HashSet::new()),
                swept: RwLock::new(HashMap::new()),
                tasks,
                receiver: Mutex::new(Some(receiver)),
                logs: Mutex::new(LogCache::default()),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Reads which runs the store holds (their records are read when first needed).
    pub async fn load_index(&self) -> Result<usize, StoreError> {
        let keys = self.inner.store.list("").await?;
        let mut index = self.inner.index.write().unwrap_or_else(|e| e.into_inner());
        for key in &keys {
            if let Some((ns, job)) = record::parse_record_key(key) {
                index
                    .entry((ns.to_string(), job.to_string()))
                    .or_insert(None);
            }
        }
        Ok(index.len())
    }

    /// Whether this service knows the run to be archived (no store call).
    pub fn contains(&self, ns: &Namespace, job: &JobName) -> bool {
        self.inner
            .index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&run_key(ns, job))
    }

    /// The record of a run this service knows to be archived; `None` without a store
    /// call otherwise.
    pub async fn known(
        &self,
        ns: &Namespace,
        job: &JobName,
    ) -> Result<Option<Arc<RunRecord>>, StoreError> {
        let cached = {
            let index = self.inner.index.read().unwrap_or_else(|e| e.into_inner());
            match index.get(&run_key(ns, job)) {
                None => return Ok(None),
                Some(record) => record.clone(),
            }
        };
        match cached {
            Some(record) => Ok(Some(record)),
            None => self.read_record(ns, job).await,
        }
    }

    /// The record of a run, from the store when this service does not know it (another
    /// replica may have archived it).
    pub async fn lookup(
        &self,
        ns: &Namespace,
        job: &JobName,
    ) -> Result<Option<Arc<RunRecord>>, StoreError> {
        match self.known(ns, job).await? {
            Some(record) => Ok(Some(record)),
            None => self.read_record(ns, job).await,
        }
    }

    async fn read_record(
        &self,
        ns: &Namespace,
        job: &JobName,
    ) -> Result<Option<Arc<RunRecord>>, StoreError> {
        let key = record::record_key(ns.as_str(), job.as_str());
        let Some(bytes) = self.inner.store.get(&key, 16 * 1024 * 1024).await? else {
            return Ok(None);
        };
        let record: RunRecord = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Refused(format!("{key} is not a run record: {e}")))?;
        let record = Arc::new(record);
        self.inner
            .index
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(run_key(ns, job), Some(record.clone()));
        Ok(Some(record))
    }

    /// Asks for a finished run to be archived (once; a run archived or on its way is
    /// not asked again). Returns at once.
    pub fn request(&self, ns: &Namespace, job: &JobName) {
        if self.contains(ns, job) || !self.mark_pending(run_key(ns, job)) {
            return;
        }
        crate::metrics::metrics().archive_pending(self.pending());
        let _ = self.inner.tasks.send(Task::Collect {
            ns: ns.clone(),
            job: job.clone(),
        });
    }

    /// Collects a run before a DELETE through the API removes it (a run that had not
    /// finished is archived as `cancelled`, now); storing it follows in the background.
    /// An error leaves the run in place: the caller must not delete it then.
    pub async fn before_delete(
        &self,
        client: &Client,
        ns: &Namespace,
        job: &JobName,
    ) -> Result<(), KubeError> {
        if self.contains(ns, job) {
            return Ok(());
        }
        let now = crate::time::now_rfc3339();
        let collected = collect::collect(
            client,
            ns,
            job,
            &self.inner.options.spill,
            self.inner.options.cap,
            Some(&now),
        )
        .await?;
        if let Some(collected) = collected {
            self.mark_pending(run_key(ns, job));
            let _ = self.inner.tasks.send(Task::Store {
                collected: Box::new(collected),
                backoff: FIRST_BACKOFF,
            });
        }
        Ok(())
    }

    fn mark_pending(&self, key: RunKey) -> bool {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key)
    }

    fn pending(&self) -> usize {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// The text of an archived container log (kubelet timestamps on each line), kept
    /// decompressed in a bounded cache.
    pub async fn log_text(&self, key: &str) -> Result<Option<Arc<str>>, StoreError> {
        if let Some(text) = self
            .inner
            .logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
        {
            return Ok(Some(text));
        }
        let cap = self.inner.options.cap;
        // gzip never grows a text by more than a small fraction; a larger object is
        // not one the archive wrote.
        let Some(bytes) = self.inner.store.get(key, cap + cap / 8 + 1024).await? else {
            return Ok(None);
        };
        let text = tokio::task::spawn_blocking(move || collect::gunzip(&bytes, cap))
            .await
            .map_err(|e| StoreError::Unavailable(format!("archive task: {e}")))?
            .map_err(|e| StoreError::Refused(format!("{key} is not a gzip log: {e}")))?;
        let text: Arc<str> = Arc::from(text);
        self.inner
            .logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), text.clone());
        Ok(Some(text))
    }

    /// The answer's text from a large archived log, read as a stream: the log is never
    /// held whole, only the lines of the window (`tail`, within `limit_bytes`). A
    /// directory archive reads the file as it goes; an S3 archive holds the compressed
    /// object meanwhile.
    pub async fn log_window(
        &self,
        key: &str,
        how: &record::Render,
    ) -> Result<Option<(String, bool)>, StoreError> {
        let cap = self.inner.options.cap;
        let source: Box<dyn std::io::Read + Send> = match &self.inner.store {
            Store::Dir(dir) => match dir.open_object(key)? {
                Some(file) => Box::new(file),
                None => return Ok(None),
            },
            Store::S3(_) => match self.inner.store.get(key, cap + cap / 8 + 1024).await? {
                Some(bytes) => Box::new(std::io::Cursor::new(bytes)),
                None => return Ok(None),
            },
        };
        let how = how.clone();
        let key = key.to_string();
        tokio::task::spawn_blocking(move || record::render_stream(source, &how))
            .await
            .map_err(|e| StoreError::Unavailable(format!("archive task: {e}")))?
            .map(Some)
            .map_err(|e| StoreError::Refused(format!("{key} is not a gzip log: {e}")))
    }

    /// Starts archiving in the background: the worker, the sweep of `namespaces` (at
    /// once, then every [`Options::sweep`]) and, with a retention, the pruning. All end
    /// when `stop` completes.
    pub fn spawn<F>(&self, client: Client, namespaces: Vec<Namespace>, stop: impl Fn() -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let Some(receiver) = self
            .inner
            .receiver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        let worker = self.clone().work(client.clone(), receiver);
        let sweep = self.clone().sweep(client, namespaces);
        for task in [
            Box::pin(worker) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
            Box::pin(sweep),
        ] {
            let stop = stop();
            tokio::spawn(async move {
                tokio::select! {
                    () = task => {}
                    () = stop => {}
                }
            });
        }
        if let Some(retention) = self.inner.options.retention {
            let stop = stop();
            let archive = self.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = archive.prune_every(retention) => {}
                    () = stop => {}
                }
            });
        }
    }

    async fn work(self, client: Client, mut tasks: mpsc::UnboundedReceiver<Task>) {
        while let Some(task) = tasks.recv().await {
            match task {
                Task::Collect { ns, job } => self.collect_one(&client, ns, job).await,
                Task::Store { collected, backoff } => self.store_one(collected, backoff).await,
            }
        }
    }

    async fn collect_one(&self, client: &Client, ns: Namespace, job: JobName) {
        let options = &self.inner.options;
        match collect::collect(client, &ns, &job, &options.spill, options.cap, None).await {
            Ok(Some(collected)) => self.store_one(Box::new(collected), FIRST_BACKOFF).await,
            Ok(None) => {
                // Gone before it could be collected: nothing to archive.
                self.done(&run_key(&ns, &job));
            }
            Err(e) => {
                tracing::warn!(namespace = %ns, job = %job, error = %e, "cannot collect a finished run; the sweep tries again");
                crate::metrics::metrics().archive_run("failed");
                self.done(&run_key(&ns, &job));
            }
        }
    }

    /// Stores the logs, then the record; on failure, tries again after `backoff`.
    async fn store_one(&self, collected: Box<Collected>, backoff: Duration) {
        let record = &collected.record;
        let ns = record.namespace.clone();
        let job = record.job_name.clone();
        match self.put(&collected).await {
            Ok(()) => {
                tracing::info!(namespace = %ns, job = %job, store = %self.inner.store.describe(), "run archived");
                crate::metrics::metrics().archive_run("archived");
                let key = (ns, job);
                self.inner
                    .index
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key.clone(), Some(Arc::new(collected.record.clone())));
                self.done(&key);
            }
            Err(e) => {
                tracing::warn!(namespace = %ns, job = %job, error = %e, retry_in = ?backoff, "cannot store an archived run; trying again");
                crate::metrics::metrics().archive_store_error();
                let tasks = self.inner.tasks.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(backoff).await;
                    let _ = tasks.send(Task::Store {
                        collected,
                        backoff: (backoff * 2).min(MAX_BACKOFF),
                    });
                });
            }
        }
    }

    async fn put(&self, collected: &Collected) -> Result<(), StoreError> {
        let store = &self.inner.store;
        for log in &collected.logs {
            store
                .put_file(&log.key, &log.path, log.len, &log.sha256)
                .await?;
            crate::metrics::metrics().archive_bytes(log.len);
        }
        let record = &collected.record;
        let body = serde_json::to_vec_pretty(record)
            .map_err(|e| StoreError::Refused(format!("encoding the record: {e}")))?;
        store
            .put(
                &record::record_key(&record.namespace, &record.job_name),
                Bytes::from(body),
            )
            .await
    }

    fn done(&self, key: &RunKey) {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        crate::metrics::metrics().archive_pending(self.pending());
    }

    /// Lists the managed Jobs of each namespace, at once and then every sweep period,
    /// and asks for every finished one not archived yet.
    async fn sweep(self, client: Client, namespaces: Vec<Namespace>) {
        if let Err(e) = self.load_index().await {
            tracing::warn!(error = %e, store = %self.inner.store.describe(), "cannot list the archive; runs archived before are found when asked for");
        }
        loop {
            for ns in &namespaces {
                if let Err(e) = self.sweep_namespace(&client, ns).await {
                    tracing::debug!(namespace = %ns, error = %e, "archive sweep: cannot list the jobs");
                }
            }
            tokio::time::sleep(self.inner.options.sweep).await;
        }
    }

    async fn sweep_namespace(
        &self,
        client: &Client,
        ns: &Namespace,
    ) -> Result<(), crate::jobs::ListError> {
        let mut token = None;
        let mut seen = HashSet::new();
        loop {
            let page = crate::jobs::list_managed(client, ns, 500, token.clone()).await?;
            for job in &page.items {
                seen.insert(job.metadata.name.clone());
                if crate::jobs::status::job_state(job, None)
                    .phase
                    .is_terminal()
                    && let Ok(name) = job.metadata.name.parse::<JobName>()
                {
                    self.request(ns, &name);
                }
            }
            let next = page.metadata.continue_token.filter(|t| !t.is_empty());
            // A token handed back unchanged would page forever.
            if next.is_some() && next == token {
                return Ok(());
            }
            token = next;
            if token.is_none() {
                self.inner
                    .swept
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(ns.to_string(), seen);
                return Ok(());
            }
        }
    }

    async fn prune_every(self, retention: Duration) {
        loop {
            if let Err(e) = self.prune(retention).await {
                tracing::warn!(error = %e, "archive retention: cannot prune");
            }
            tokio::time::sleep(Duration::from_secs(3600).min(retention)).await;
        }
    }

    /// Deletes the runs archived longer ago than `retention`: the record first (the run
    /// is then no longer archived), then its logs.
    pub async fn prune(&self, retention: Duration) -> Result<usize, StoreError> {
        let keys = self.inner.store.list("").await?;
        let now = std::time::SystemTime::now();
        let mut pruned = 0;
        for key in &keys {
            let Some((ns, job)) = record::parse_record_key(key) else {
                continue;
            };
            let Some(bytes) = self.inner.store.get(key, 16 * 1024 * 1024).await? else {
                continue;
            };
            let Ok(record) = serde_json::from_slice::<RunRecord>(&bytes) else {
                continue;
            };
            let old = crate::time::parse_rfc3339(&record.archived_at)
                .and_then(|at| now.duration_since(at).ok())
                .is_some_and(|age| age > retention);
            if !old {
                continue;
            }
            self.inner.store.delete(key).await?;
            self.inner
                .index
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&(ns.to_string(), job.to_string()));
            let logs_prefix = format!("{ns}/{job}/");
            for log in keys.iter().filter(|k| k.starts_with(&logs_prefix)) {
                self.inner.store.delete(log).await?;
            }
            pruned += 1;
        }
        Ok(pruned)
    }

    /// Whether the last sweep of `ns` saw the Job `name` in the cluster (`None`: no
    /// sweep of it yet).
    pub fn swept_has(&self, ns: &Namespace, name: &str) -> Option<bool> {
        self.inner
            .swept
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(ns.as_str())
            .map(|names| names.contains(name))
    }

    /// The archived runs of `ns` this service knows, with their records.
    pub async fn runs_of(&self, ns: &Namespace) -> Vec<Arc<RunRecord>> {
        let jobs: Vec<String> = {
            let index = self.inner.index.read().unwrap_or_else(|e| e.into_inner());
            index
                .keys()
                .filter(|(n, _)| n == ns.as_str())
                .map(|(_, j)| j.clone())
                .collect()
        };
        let mut records = Vec::new();
        for job in jobs {
            if let Ok(name) = job.parse::<JobName>()
                && let Ok(Some(record)) = self.known(ns, &name).await
            {
                records.push(record);
            }
        }
        records.sort_by(|a, b| a.job_name.cmp(&b.job_name));
        records
    }
}

/// Decompressed archived logs, the oldest dropped first past [`LOG_CACHE_BYTES`].
#[derive(Default)]
struct LogCache {
    texts: HashMap<String, Arc<str>>,
    order: VecDeque<String>,
    bytes: usize,
}

impl LogCache {
    fn get(&self, key: &str) -> Option<Arc<str>> {
        self.texts.get(key).cloned()
    }

    fn insert(&mut self, key: String, text: Arc<str>) {
        if text.len() > LOG_CACHE_BYTES || self.texts.contains_key(&key) {
            return;
        }
        self.bytes += text.len();
        self.order.push_back(key.clone());
        self.texts.insert(key, text);
        while self.bytes > LOG_CACHE_BYTES {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(t) = self.texts.remove(&oldest) {
                self.bytes -= t.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_location_table() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let home = env(&[("HOME", "/home/u")]);
        let xdg = env(&[("HOME", "/home/u"), ("XDG_DATA_HOME", "/data")]);
        let none = env(&[]);
        let dir = |l: Location| match l {
            Location::Dir(d) => d.display().to_string(),
            other => format!("{other:?}"),
        };
        assert_eq!(
            dir(Location::parse(None, &home)),
            "/home/u/.local/share/sparktest-k8s/archive"
        );
        assert_eq!(
            dir(Location::parse(None, &xdg)),
            "/data/sparktest-k8s/archive"
        );
        assert!(matches!(Location::parse(None, &none), Location::Off));
        assert!(matches!(Location::parse(Some("off"), &home), Location::Off));
        assert!(matches!(
            Location::parse(Some("s3://bucket/runs"), &home),
            Location::S3(s) if s == "s3://bucket/runs"
        ));
        assert_eq!(
            dir(Location::parse(Some("/var/archive"), &none)),
            "/var/archive"
        );
    }

    #[test]
    fn the_log_cache_is_bounded() {
        let mut cache = LogCache::default();
        let big: Arc<str> = Arc::from("x".repeat(LOG_CACHE_BYTES / 2 + 1));
        cache.insert("a".into(), big.clone());
        cache.insert("b".into(), big.clone());
        assert!(cache.get("a").is_none(), "the oldest went");
        assert!(cache.get("b").is_some());
        assert!(cache.bytes <= LOG_CACHE_BYTES);
    }
}

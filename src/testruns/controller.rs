//! The TestRun controller: while this replica leads ([`LeaderGate`]), one worker per
//! served namespace lists and watches its TestRuns and the Jobs they own
//! ([`crate::kube::watch::Watcher`]: bookmarks, reconnects, re-list on `410 Gone`),
//! queues the TestRuns whose object or Job changed (and every TestRun at each resync),
//! and reconciles them one at a time: [`decide`], create the Job if asked (a `409
//! AlreadyExists` is not an error: the Job is read and the decision made again with
//! it), then write the status through the status subresource when it differs (a `409
//! Conflict` re-reads the TestRun and decides again). Errors are retried with backoff.
//!
//! Losing the lease ends the term: the workers and their watches stop at once, and the
//! next term starts from fresh lists.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::decide::{Context, decide, job_name, refused};
use super::leader::LeaderGate;
use super::resource::{
    RunJob, TestRun, TestRunStatus, testrun_path, testrun_status_path, testruns_path,
};
use super::{API_VERSION, KIND};
use crate::kube::resources::{Job, job_path, jobs_path, query};
use crate::kube::watch::{Event, Watcher};
use crate::kube::{Client, KubeError};
use crate::names::{Namespace, RunId};
use crate::runs::{CreateError, create_job};
use crate::state::RunConfig;

/// Tunables of the controller.
#[derive(Debug, Clone, Copy)]
pub struct ControllerOptions {
    /// Every TestRun is reconciled again this often, whatever the watches said: a
    /// level-triggered safety net that costs no apiserver call for a run with nothing
    /// to do.
    pub resync: Duration,
    /// The first retry of a TestRun whose reconcile failed; doubled on each failure up
    /// to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(120),
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// The values of `sparktest_k8s_testrun_reconciles_total{result}`.
pub mod result {
    /// A Job was created.
    pub const CREATED: &str = "created";
    /// The status was written.
    pub const UPDATED: &str = "updated";
    /// Nothing to do.
    pub const UNCHANGED: &str = "unchanged";
    /// The spec was refused: the status says `Failed`, `Accepted=False`.
    pub const INVALID: &str = "invalid";
    /// An apiserver call failed; retried with backoff.
    pub const ERROR: &str = "error";

    pub const ALL: [&str; 5] = [CREATED, UPDATED, UNCHANGED, INVALID, ERROR];
}

/// A status write that still conflicts after this many fresh reads is retried later.
const MAX_CONFLICTS: usize = 5;
/// The page size of the controller's lists (client-go's informers list 500 at a time).
const LIST_PAGE: u32 = 500;

/// The TestRun controller of the served namespaces.
pub struct Controller {
    client: Client,
    namespaces: Vec<Namespace>,
    runs: Arc<RunConfig>,
    options: ControllerOptions,
}

impl Controller {
    pub fn new(
        client: Client,
        namespaces: Vec<Namespace>,
        runs: Arc<RunConfig>,
        options: ControllerOptions,
    ) -> Self {
        Self {
            client,
            namespaces,
            runs,
            options,
        }
    }

    /// Reconciles while `gate` leads, until `stop` completes.
    pub async fn run<G: LeaderGate>(self, mut gate: G, stop: impl Future<Output = ()> + Send) {
        let metrics = crate::metrics::metrics();
        let mut stop = std::pin::pin!(stop);
        metrics.set_testrun_leader(false);
        loop {
            tokio::select! {
                () = stop.as_mut() => return,
                () = gate.acquired() => {}
            }
            if !gate.is_leader() {
                // A gate that says acquired without leading: do not spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            metrics.set_testrun_leader(true);
            tracing::info!("leading: reconciling TestRuns");
            let term = self.term();
            let stopped = tokio::select! {
                () = stop.as_mut() => true,
                () = gate.lost() => false,
            };
            // Dropping the term aborts its workers, and with them their watches.
            drop(term);
            metrics.set_testrun_leader(false);
            if stopped {
                return;
            }
            tracing::info!("no longer leading: TestRuns are left to the new leader");
        }
    }

    /// One worker per namespace, for one term of leadership.
    fn term(&self) -> JoinSet<()> {
        let mut workers = JoinSet::new();
        for namespace in &self.namespaces {
            let worker = Worker::new(
                self.client.clone(),
                namespace.clone(),
                Arc::clone(&self.runs),
                self.options,
            );
            workers.spawn(worker.run());
        }
        workers
    }
}

/// What the watches of one namespace report.
enum Update {
    Runs(Event<TestRun>),
    Jobs(Event<Job>),
}

/// How a reconcile ended.
#[derive(Debug, Default, Clone, Copy)]
struct Outcome {
    created: bool,
    wrote: bool,
    refused: bool,
}

impl Outcome {
    fn result(self) -> &'static str {
        if self.created {
            result::CREATED
        } else if self.wrote && self.refused {
            result::INVALID
        } else if self.wrote {
            result::UPDATED
        } else {
            result::UNCHANGED
        }
    }
}

/// The controller of one namespace for one term: its stores, its queue, its retries.
struct Worker {
    client: Client,
    namespace: Namespace,
    runs: Arc<RunConfig>,
    options: ControllerOptions,
    testruns: HashMap<String, TestRun>,
    /// The Jobs a TestRun controls, by name.
    jobs: HashMap<String, Job>,
    runs_synced: bool,
    jobs_synced: bool,
    queue: VecDeque<String>,
    queued: HashSet<String>,
    /// TestRuns whose reconcile failed: when to try again, and how often it failed.
    retries: HashMap<String, (Instant, u32)>,
}

impl Worker {
    fn new(
        client: Client,
        namespace: Namespace,
        runs: Arc<RunConfig>,
        options: ControllerOptions,
    ) -> Self {
        Self {
            client,
            namespace,
            runs,
            options,
            testruns: HashMap::new(),
            jobs: HashMap::new(),
            runs_synced: false,
            jobs_synced: false,
            queue: VecDeque::new(),
            queued: HashSet::new(),
            retries: HashMap::new(),
        }
    }

    async fn run(mut self) {
        let (tx, mut rx) = mpsc::channel(256);
        // Dropped with this future (the term ended): the watches stop with it.
        let mut watches = JoinSet::new();
        let ns = self.namespace.as_str();
        watches.spawn(watch(
            Watcher::<TestRun>::new(self.client.clone(), &testruns_path(ns), "").paged(LIST_PAGE),
            "testruns",
            tx.clone(),
            Update::Runs,
        ));
        // Every run's Job carries `app: sparktest` (runs::job_body); those a TestRun
        // controls are kept.
        let selector = query(&[("labelSelector", crate::runs::SPARKTEST_SELECTOR.to_string())]);
        watches.spawn(watch(
            Watcher::<Job>::new(self.client.clone(), &jobs_path(ns), &selector[1..])
                .paged(LIST_PAGE),
            "jobs",
            tx,
            Update::Jobs,
        ));
        let mut resync =
            tokio::time::interval_at(Instant::now() + self.options.resync, self.options.resync);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            while let Ok(update) = rx.try_recv() {
                self.apply(update);
            }
            if self.runs_synced
                && self.jobs_synced
                && let Some(name) = self.queue.pop_front()
            {
                self.queued.remove(&name);
                self.reconcile_counted(&name).await;
                continue;
            }
            let due = self.retries.values().map(|(at, _)| *at).min();
            tokio::select! {
                update = rx.recv() => match update {
                    Some(update) => self.apply(update),
                    None => return,
                },
                _ = resync.tick() => self.enqueue_all(),
                () = sleep_until(due) => self.enqueue_due(),
            }
        }
    }

    fn enqueue(&mut self, name: &str) {
        if self.queued.insert(name.to_string()) {
            self.queue.push_back(name.to_string());
        }
    }

    fn enqueue_all(&mut self) {
        let mut names: Vec<String> = self.testruns.keys().cloned().collect();
        names.sort();
        for name in names {
            self.enqueue(&name);
        }
    }

    fn enqueue_due(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .retries
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(name, _)| name.clone())
            .collect();
        for name in due {
            // Kept with its count until a reconcile succeeds.
            if let Some((at, _)) = self.retries.get_mut(&name) {
                *at = now + Duration::from_secs(24 * 3600);
            }
            self.enqueue(&name);
        }
    }

    fn apply(&mut self, update: Update) {
        match update {
            Update::Runs(Event::Restarted(list)) => {
                self.testruns = list
                    .into_iter()
                    .map(|r| (r.metadata.name.clone(), r))
                    .collect();
                self.retries
                    .retain(|name, _| self.testruns.contains_key(name));
                self.runs_synced = true;
                self.enqueue_all();
            }
            Update::Runs(Event::Applied(run)) => {
                let name = run.metadata.name.clone();
                self.testruns.insert(name.clone(), run);
                self.enqueue(&name);
            }
            Update::Runs(Event::Deleted(run)) => {
                // Its Job goes with it: the garbage collector follows the ownerReference.
                self.testruns.remove(&run.metadata.name);
                self.retries.remove(&run.metadata.name);
            }
            Update::Jobs(Event::Restarted(list)) => {
                self.jobs = list
                    .into_iter()
                    .filter(|j| j.controller().is_some())
                    .map(|j| (j.metadata.name.clone(), j))
                    .collect();
                self.jobs_synced = true;
                self.enqueue_all();
            }
            Update::Jobs(Event::Applied(job)) => {
                let name = job.metadata.name.clone();
                match job.controller().map(|o| o.name.clone()) {
                    Some(owner) => {
                        self.jobs.insert(name, job);
                        self.enqueue(&owner);
                    }
                    None => {
                        self.jobs.remove(&name);
                    }
                }
            }
            Update::Jobs(Event::Deleted(job)) => {
                self.jobs.remove(&job.metadata.name);
                if let Some(owner) = job.controller() {
                    let owner = owner.name.clone();
                    self.enqueue(&owner);
                }
            }
        }
    }

    async fn reconcile_counted(&mut self, name: &str) {
        let metrics = crate::metrics::metrics();
        match self.reconcile(name).await {
            Ok(outcome) => {
                self.retries.remove(name);
                metrics.testrun_reconciled(outcome.result());
            }
            Err(e) => {
                metrics.testrun_reconciled(result::ERROR);
                let failures = self.retries.get(name).map_or(0, |(_, n)| *n) + 1;
                let wait = self
                    .options
                    .backoff
                    .saturating_mul(1 << (failures - 1).min(16))
                    .min(self.options.max_backoff);
                tracing::warn!(testrun = name, namespace = %self.namespace, error = %e, retry_in = ?wait, "TestRun not reconciled; retrying");
                self.retries
                    .insert(name.to_string(), (Instant::now() + wait, failures));
            }
        }
    }

    /// Brings one TestRun to what [`decide`] says.
    async fn reconcile(&mut self, name: &str) -> Result<Outcome, KubeError> {
        let mut outcome = Outcome::default();
        let Some(mut run) = self.testruns.get(name).cloned() else {
            return Ok(outcome);
        };
        let mut conflicts = 0;
        loop {
            let Some(uid) = run.metadata.uid.clone() else {
                return Ok(outcome);
            };
            let settled = run.metadata.deletion_timestamp.is_some()
                || run.status.as_ref().is_some_and(TestRunStatus::is_final);
            if settled {
                return Ok(outcome);
            }
            let job = self.job(&uid).await?;
            let now = crate::time::now_rfc3339();
            let (runs, namespace) = (Arc::clone(&self.runs), self.namespace.clone());
            let ctx = Context {
                runs: &runs,
                namespace: &namespace,
                now: &now,
            };
            let mut decision = decide(&run, job.as_ref(), &ctx);
            if let Some(body) = decision.create.take() {
                let run_id: RunId = uid
                    .parse()
                    .map_err(|e: crate::names::InvalidName| KubeError::Decode(e.to_string()))?;
                match create_job(&self.client, &self.namespace, &run_id, &body).await {
                    Ok(_) => {
                        outcome.created = true;
                        tracing::info!(testrun = name, namespace = %self.namespace, job = %run_id.job_name(), "TestRun's Job created");
                    }
                    Err(CreateError::AlreadyExists { .. }) => {
                        // Made meanwhile (our store was behind): decide with it.
                        let Some(job) = self.get_job(&job_name(&uid)).await? else {
                            return Err(KubeError::Decode(format!(
                                "Job {} exists (409) but cannot be read (404): asked again",
                                job_name(&uid)
                            )));
                        };
                        decision = decide(&run, Some(&job), &ctx);
                    }
                    Err(CreateError::Refused { message, .. }) => {
                        decision = refused(&run, &ctx, &message);
                    }
                    Err(CreateError::Kube(e)) => return Err(e),
                }
            }
            outcome.refused = decision.refused;
            let Some(status) = decision.status else {
                return Ok(outcome);
            };
            if Some(&status) == run.status.as_ref() {
                return Ok(outcome);
            }
            match self.put_status(&run, &status).await {
                Ok(updated) => {
                    outcome.wrote = true;
                    if run.status.as_ref().and_then(|s| s.phase.as_ref()) != status.phase.as_ref() {
                        tracing::info!(testrun = name, namespace = %self.namespace, phase = status.phase.as_deref().unwrap_or("-"), "TestRun status");
                    }
                    self.testruns.insert(name.to_string(), updated);
                    return Ok(outcome);
                }
                Err(e) if e.code() == Some(409) && conflicts < MAX_CONFLICTS => {
                    conflicts += 1;
                    tracing::debug!(
                        testrun = name,
                        conflicts,
                        "status write conflicted: reading the TestRun again"
                    );
                    match self.get_run(name).await? {
                        Some(fresh) => {
                            self.testruns.insert(name.to_string(), fresh.clone());
                            run = fresh;
                        }
                        None => {
                            self.testruns.remove(name);
                            return Ok(outcome);
                        }
                    }
                }
                // Deleted in between: nothing left to report on.
                Err(e) if e.code() == Some(404) => return Ok(outcome),
                Err(e) => return Err(e),
            }
        }
    }

    /// The run's Job: from the store, else read (it may be a moment old).
    async fn job(&mut self, uid: &str) -> Result<Option<Job>, KubeError> {
        let name = job_name(uid);
        if let Some(job) = self.jobs.get(&name) {
            return Ok(Some(job.clone()));
        }
        self.get_job(&name).await
    }

    async fn get_job(&mut self, name: &str) -> Result<Option<Job>, KubeError> {
        match self
            .client
            .get_json::<Job>(&job_path(self.namespace.as_str(), name))
            .await
        {
            Ok(job) => {
                // Kept only when the watch will keep it current; one it cannot see (its
                // `app` label removed) is read again each time, the resync included.
                let watched = job
                    .metadata
                    .labels
                    .get(crate::runs::APP.0)
                    .map(String::as_str)
                    == Some(crate::runs::APP.1);
                if watched && job.controller().is_some() {
                    self.jobs.insert(name.to_string(), job.clone());
                }
                Ok(Some(job))
            }
            Err(e) if e.code() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn get_run(&self, name: &str) -> Result<Option<TestRun>, KubeError> {
        match self
            .client
            .get_json::<TestRun>(&testrun_path(self.namespace.as_str(), name))
            .await
        {
            Ok(run) => Ok(Some(run)),
            Err(e) if e.code() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PUT .../testruns/{name}/status` with the resourceVersion the status was decided
    /// from: a TestRun changed since is a `409 Conflict`, never overwritten.
    async fn put_status(
        &self,
        run: &TestRun,
        status: &TestRunStatus,
    ) -> Result<TestRun, KubeError> {
        let body = serde_json::json!({
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {
                "name": run.metadata.name,
                "namespace": self.namespace.as_str(),
                "uid": run.metadata.uid,
                "resourceVersion": run.metadata.resource_version,
            },
            "status": status,
        });
        let bytes =
            Bytes::from(serde_json::to_vec(&body).map_err(|e| KubeError::Decode(e.to_string()))?);
        self.client
            .request_json(
                Method::PUT,
                &testrun_status_path(self.namespace.as_str(), &run.metadata.name),
                Some((bytes, "application/json")),
            )
            .await
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Feeds a watcher's events to the worker until it is gone; errors are retried with
/// backoff (the watcher continues, or re-lists, where it was).
async fn watch<T: serde::de::DeserializeOwned>(
    mut watcher: Watcher<T>,
    what: &'static str,
    tx: mpsc::Sender<Update>,
    wrap: fn(Event<T>) -> Update,
) {
    let mut failures = 0u32;
    loop {
        match watcher.next().await {
            Ok(event) => {
                failures = 0;
                if tx.send(wrap(event)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let (wait, hint) = match e.code() {
                    Some(404) if what == "testruns" => (
                        Duration::from_secs(60),
                        "the TestRun resource is not installed (deploy/components/testruns)",
                    ),
                    Some(401 | 403) => (
                        Duration::from_secs(60),
                        "the service account may not list and watch them (deploy/components/testruns grants it)",
                    ),
                    _ => (Duration::from_millis(250 << failures.min(7)), "retrying"),
                };
                if failures == 1 || failures.is_multiple_of(10) {
                    tracing::warn!(error = %e, watch = what, failures, "TestRun controller: {hint}");
                } else {
                    tracing::debug!(error = %e, watch = what, failures, "watch failed; retrying");
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}

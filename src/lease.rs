//! Leader election through a `coordination.k8s.io/v1` Lease, with the semantics of
//! client-go's `tools/leaderelection` (`LeaderElector` over a `LeaseLock`), so that of
//! several replicas exactly one acts at a time.
//!
//! - A candidate reads the Lease every `retry_period` (jittered by up to 1.2 times,
//!   as `wait.JitterUntil`); a missing Lease is created holding it.
//! - A Lease held by another replica is taken only once `leaseDurationSeconds` (the
//!   record's) has passed, by this replica's monotonic clock, since this replica last
//!   saw the record change. The timestamps in the record are never compared with the
//!   local clock, so clock skew between nodes does not matter (only its rate does).
//! - Taking it is an update carrying the `resourceVersion` last read: of two replicas
//!   racing, the apiserver lets one through and answers the other 409, a lost race
//!   that is retried, not an error. A new holder counts one more `leaseTransitions`.
//! - The leader renews every `retry_period`, first optimistically with the Lease it
//!   last wrote, and steps down when a round of renewals has not succeeded within
//!   `renew_deadline` (a hung request is abandoned at the deadline).
//! - When `stop` completes, a held Lease is released as with `ReleaseOnCancel`:
//!   `holderIdentity` emptied and `leaseDurationSeconds` 1, so that another replica
//!   takes over at its next attempt rather than a whole lease duration later.
//!
//! Where this differs from client-go: leadership lost to failed renewals goes back
//! to candidacy instead of ending the elector (`Run` returns there, and callers
//! usually exit); a renewal that finds the Lease held by another replica steps down at
//! once instead of retrying until the deadline; the first renewal comes one
//! `retry_period` after acquiring, not at once; each attempt while a candidate is
//! bounded by `renew_deadline`; and on stop the Lease is also released when an
//! attempt interrupted by the stop may have taken it.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};

use crate::kube::resources::encode;
use crate::kube::{Client, KubeError};
use crate::names::Namespace;

/// client-go's default lease duration (and that of every core controller).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// client-go's default renew deadline.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// client-go's default retry period.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);
/// client-go's `JitterFactor`: a candidate waits between 1 and 2.2 retry periods.
const JITTER_FACTOR: f64 = 1.2;

const API_VERSION: &str = "coordination.k8s.io/v1";
const KIND: &str = "Lease";

/// Which Lease to elect through, who this replica is, and the timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    pub namespace: Namespace,
    /// The Lease's name, e.g. `sparktest-k8s-testruns`.
    pub name: String,
    /// This replica, unique among the candidates: see [`default_identity`].
    pub identity: String,
    /// How long a candidate waits, from the last change it saw, before taking a Lease
    /// held by another. Written as whole seconds (`leaseDurationSeconds`).
    pub lease_duration: Duration,
    /// How long the leader keeps retrying a renewal before stepping down.
    pub renew_deadline: Duration,
    /// The wait between attempts, as candidate and as leader.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// A configuration with client-go's timing (15 s, 10 s, 2 s) and
    /// [`default_identity`].
    pub fn new(namespace: Namespace, name: impl Into<String>) -> Self {
        Self {
            namespace,
            name: name.into(),
            identity: default_identity(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
        }
    }

    /// Checks what client-go's `NewLeaderElector` checks: lease duration > renew
    /// deadline > 1.2 × retry period > 0, and a non-empty identity; and that the lease
    /// duration is at least one second (the apiserver refuses 0 seconds).
    pub fn validate(&self) -> Result<(), InvalidLeaseConfig> {
        let invalid = |message: String| Err(InvalidLeaseConfig(message));
        if self.name.is_empty() {
            return invalid("the lease name is empty".into());
        }
        if self.identity.is_empty() {
            return invalid("the identity is empty".into());
        }
        if self.lease_duration < Duration::from_secs(1)
            || self.lease_duration.as_secs() > i32::MAX as u64
        {
            return invalid(format!(
                "the lease duration ({:?}) must be whole seconds, at least 1",
                self.lease_duration
            ));
        }
        if self.lease_duration <= self.renew_deadline {
            return invalid(format!(
                "the lease duration ({:?}) must be greater than the renew deadline ({:?})",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.retry_period.is_zero() {
            return invalid("the retry period must be greater than zero".into());
        }
        if self.renew_deadline <= self.retry_period.mul_f64(JITTER_FACTOR) {
            return invalid(format!(
                "the renew deadline ({:?}) must be greater than {JITTER_FACTOR} times the retry period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        Ok(())
    }

    /// `namespace/name`, for logs.
    fn describe(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// `leaseDurationSeconds`: whole seconds, as client-go's `int(d / time.Second)`.
    fn lease_duration_seconds(&self) -> i64 {
        self.lease_duration.as_secs() as i64
    }
}

/// Why a [`LeaseConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid leader election configuration: {0}")]
pub struct InvalidLeaseConfig(pub String);

/// This replica's identity: the pod name (`HOSTNAME`, else `sparktest-k8s`), `_`, and
/// 16 random hex digits, so that a restarted pod of the same name is a new holder (as
/// client-go's `hostname + "_" + uuid`).
pub fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "sparktest-k8s".to_string());
    let suffix: String = random_bytes::<8>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{host}_{suffix}")
}

fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source is available");
    bytes
}

/// `wait.Jitter(period, 1.2)`: between 1 and 2.2 periods.
fn jittered(period: Duration) -> Duration {
    let fraction = f64::from(u32::from_be_bytes(random_bytes::<4>())) / f64::from(u32::MAX);
    period + period.mul_f64(fraction * JITTER_FACTOR)
}

/// `/apis/coordination.k8s.io/v1/namespaces/{ns}/leases`
pub fn leases_path(namespace: &str) -> String {
    format!(
        "/apis/coordination.k8s.io/v1/namespaces/{}/leases",
        encode(namespace)
    )
}

/// `/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}`
pub fn lease_path(namespace: &str, name: &str) -> String {
    format!("{}/{}", leases_path(namespace), encode(name))
}

/// A `metav1.MicroTime` as the apiserver writes it: RFC 3339 in UTC with exactly six
/// fractional digits, e.g. `2026-11-26T11:48:24.123456Z`.
pub fn format_micro_time(t: SystemTime) -> String {
    let seconds = crate::time::format_rfc3339(t);
    let micros = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_micros())
        .unwrap_or(0);
    let whole = seconds.strip_suffix('Z').unwrap_or(&seconds);
    format!("{whole}.{micros:06}Z")
}

/// This replica's view of leadership, shared by clones. Accurate within the elector's
/// own timing: it turns false at the renew deadline of failing renewals (before the
/// Lease can expire for the other replicas), before a Lease is released on stop, and
/// when the elector ends for any reason (a panic or an abort included).
#[derive(Debug, Clone)]
pub struct Leadership {
    rx: watch::Receiver<bool>,
}

impl Leadership {
    /// Whether this replica leads now.
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes when this replica becomes (or is) leader. Never completes once the
    /// elector has ended without leading.
    pub async fn acquired(&mut self) {
        if self.rx.wait_for(|leading| *leading).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Completes when this replica stops being leader (at once when it is not, or when
    /// the elector has ended).
    pub async fn lost(&mut self) {
        let _ = self.rx.wait_for(|leading| !*leading).await;
    }
}

/// Runs leader election until `stop` completes; on stop, a held lease is released
/// (holderIdentity cleared, leaseDurationSeconds 1, as client-go's ReleaseOnCancel).
///
/// [`Leadership::is_leader`] turns false before the release is sent, but the release
/// does not wait for work done under leadership: as with client-go's
/// `ReleaseOnCancel`, make `stop` complete once that work has stopped, or another
/// replica may start while it still runs. The task ends after the release (bounded by
/// `renew_deadline`).
///
/// # Panics
///
/// When `config` is invalid (see [`LeaseConfig::validate`]), as client-go's
/// `RunOrDie`; validate a configuration built from user input first.
pub fn spawn(
    client: Client,
    config: LeaseConfig,
    stop: impl Future<Output = ()> + Send + 'static,
) -> (Leadership, JoinHandle<()>) {
    if let Err(e) = config.validate() {
        panic!("{e}");
    }
    let (tx, rx) = watch::channel(false);
    let elector = Elector {
        path: lease_path(config.namespace.as_str(), &config.name),
        collection: leases_path(config.namespace.as_str()),
        describe: config.describe(),
        client,
        config,
        observed: None,
        lease: None,
        interrupted: false,
        leading: Published(tx),
    };
    let handle = tokio::spawn(elector.run(Box::pin(stop)));
    (Leadership { rx }, handle)
}

type Stop = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The leader election record: the Lease's spec, as client-go's
/// `LeaderElectionRecord` reads it (absent fields are empty or zero).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Record {
    holder_identity: String,
    lease_duration_seconds: i64,
    acquire_time: Option<String>,
    renew_time: Option<String>,
    lease_transitions: i64,
}

impl Record {
    fn from_lease(lease: &Value) -> Self {
        let spec = &lease["spec"];
        let text = |key: &str| spec[key].as_str().map(str::to_string);
        Self {
            holder_identity: text("holderIdentity").unwrap_or_default(),
            lease_duration_seconds: spec["leaseDurationSeconds"].as_i64().unwrap_or(0),
            acquire_time: text("acquireTime"),
            renew_time: text("renewTime"),
            lease_transitions: spec["leaseTransitions"].as_i64().unwrap_or(0),
        }
    }

    /// The whole spec, as client-go's `LeaderElectionRecordToLeaseSpec` (fields of
    /// coordinated leader election, `strategy` and `preferredHolder`, are not kept).
    fn to_spec(&self) -> Value {
        json!({
            "holderIdentity": self.holder_identity,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "acquireTime": self.acquire_time,
            "renewTime": self.renew_time,
            "leaseTransitions": self.lease_transitions,
        })
    }
}

/// The last record seen and when (monotonic): the only clock leadership is judged by.
struct Observed {
    record: Record,
    at: Instant,
}

/// The outcome of one `tryAcquireOrRenew`.
enum Attempt {
    /// This replica holds the Lease (created, taken or renewed).
    Leading,
    /// Another replica holds it and its lease has not expired by our clock.
    HeldBy(String),
    /// The apiserver could not be asked, or a race was lost: try again later.
    Failed,
}

/// How leading ended.
enum Ended {
    Stopped,
    Lost,
}

/// The leader flag; false again when dropped, however the elector ends.
struct Published(watch::Sender<bool>);

impl Drop for Published {
    fn drop(&mut self) {
        self.0.send_replace(false);
    }
}

struct Elector {
    client: Client,
    config: LeaseConfig,
    path: String,
    collection: String,
    describe: String,
    observed: Option<Observed>,
    /// The Lease object last read or written: its `resourceVersion` makes an update
    /// conditional, and its metadata (labels, annotations) is written back as it is.
    lease: Option<Value>,
    /// `stop` came while a request that may take or renew the Lease was in flight.
    interrupted: bool,
    leading: Published,
}

impl Elector {
    async fn run(mut self, mut stop: Stop) {
        loop {
            if !self.acquire(&mut stop).await {
                break;
            }
            self.leading.0.send_replace(true);
            tracing::info!(lease = %self.describe, identity = %self.config.identity, "became leader");
            match self.renew(&mut stop).await {
                Ended::Stopped => break,
                Ended::Lost => {
                    self.leading.0.send_replace(false);
                    tracing::warn!(
                        lease = %self.describe,
                        renew_deadline = ?self.config.renew_deadline,
                        "stopped leading: the lease was not renewed in time or another replica holds it"
                    );
                }
            }
        }
        let was_leading = self.leading.0.send_replace(false);
        if was_leading || self.interrupted || self.observed_holder_is_me() {
            self.release().await;
        }
    }

    /// Tries at once, then every jittered retry period, until leading (true) or
    /// stopped (false).
    async fn acquire(&mut self, stop: &mut Stop) -> bool {
        tracing::info!(lease = %self.describe, identity = %self.config.identity, "attempting to acquire the leader lease");
        loop {
            let deadline = self.config.renew_deadline;
            let attempt = tokio::select! {
                biased;
                () = &mut *stop => None,
                attempt = timeout(deadline, self.try_acquire_or_renew()) => Some(attempt),
            };
            match attempt {
                None => {
                    self.interrupted = true;
                    return false;
                }
                Some(Ok(Attempt::Leading)) => return true,
                Some(Ok(Attempt::HeldBy(holder))) => {
                    tracing::debug!(lease = %self.describe, %holder, "the lease is held by another replica and has not expired");
                }
                Some(Ok(Attempt::Failed)) => {}
                Some(Err(_)) => {
                    tracing::warn!(lease = %self.describe, ?deadline, "acquiring the lease timed out");
                }
            }
            let wait = jittered(self.config.retry_period);
            tokio::select! {
                biased;
                () = &mut *stop => return false,
                () = sleep(wait) => {}
            }
        }
    }

    /// Renews every retry period; a round of attempts (one every retry period) that
    /// has not succeeded within the renew deadline ends leadership.
    async fn renew(&mut self, stop: &mut Stop) -> Ended {
        let retry = self.config.retry_period;
        loop {
            tokio::select! {
                biased;
                () = &mut *stop => return Ended::Stopped,
                () = sleep(retry) => {}
            }
            let deadline = Instant::now() + self.config.renew_deadline;
            loop {
                let started = Instant::now();
                let attempt = tokio::select! {
                    biased;
                    () = &mut *stop => None,
                    attempt = timeout_at(deadline, self.try_acquire_or_renew()) => Some(attempt),
                };
                match attempt {
                    None => {
                        self.interrupted = true;
                        return Ended::Stopped;
                    }
                    Some(Ok(Attempt::Leading)) => {
                        tracing::debug!(lease = %self.describe, "renewed the lease");
                        break;
                    }
                    Some(Ok(Attempt::HeldBy(holder))) => {
                        tracing::warn!(lease = %self.describe, %holder, "the lease is held by another replica");
                        return Ended::Lost;
                    }
                    Some(Ok(Attempt::Failed)) => {}
                    Some(Err(_)) => return Ended::Lost,
                }
                let next = (started + retry).min(deadline);
                tokio::select! {
                    biased;
                    () = &mut *stop => return Ended::Stopped,
                    () = sleep_until(next) => {}
                }
                if next >= deadline {
                    return Ended::Lost;
                }
            }
        }
    }

    fn observed_holder_is_me(&self) -> bool {
        self.observed
            .as_ref()
            .is_some_and(|o| o.record.holder_identity == self.config.identity)
    }

    /// client-go's `isLeaseValid`: the observed record's lease duration has not passed
    /// since it was observed.
    fn observed_is_valid(&self, now: Instant) -> bool {
        self.observed.as_ref().is_some_and(|o| {
            let duration = Duration::from_secs(o.record.lease_duration_seconds.max(0) as u64);
            o.at + duration > now
        })
    }

    fn observe(&mut self, record: Record) {
        self.observed = Some(Observed {
            record,
            at: Instant::now(),
        });
    }

    /// client-go's `tryAcquireOrRenew`.
    async fn try_acquire_or_renew(&mut self) -> Attempt {
        let now = Instant::now();
        let stamp = format_micro_time(SystemTime::now());
        let mut record = Record {
            holder_identity: self.config.identity.clone(),
            lease_duration_seconds: self.config.lease_duration_seconds(),
            acquire_time: Some(stamp.clone()),
            renew_time: Some(stamp),
            lease_transitions: 0,
        };

        // 1. The leader updates optimistically with the Lease it last wrote.
        if self.observed_holder_is_me() && self.observed_is_valid(now) && self.lease.is_some() {
            let observed = &self.observed.as_ref().expect("checked above").record;
            let mut renewal = record.clone();
            renewal.acquire_time = observed.acquire_time.clone();
            renewal.lease_transitions = observed.lease_transitions;
            match self.update(&renewal).await {
                Ok(()) => return Attempt::Leading,
                Err(e) => {
                    tracing::debug!(lease = %self.describe, error = %e, "optimistic renewal failed: reading the lease")
                }
            }
        }

        // 2. Read the Lease, or create it.
        let current = match self.client.get_json::<Value>(&self.path).await {
            Ok(lease) => lease,
            Err(e) if e.code() == Some(404) => {
                return match self.create(&record).await {
                    Ok(()) => Attempt::Leading,
                    Err(e) => {
                        self.log_write_failure("creating", &e);
                        Attempt::Failed
                    }
                };
            }
            Err(e) => {
                tracing::warn!(lease = %self.describe, error = %e, "cannot read the lease");
                return Attempt::Failed;
            }
        };
        let old = Record::from_lease(&current);
        self.lease = Some(current);
        if self.observed.as_ref().map(|o| &o.record) != Some(&old) {
            self.observe(old.clone());
        }
        let mine = self.observed_holder_is_me();
        if !old.holder_identity.is_empty() && self.observed_is_valid(now) && !mine {
            return Attempt::HeldBy(old.holder_identity);
        }

        // 3. Take it (or renew it through the slow path).
        if mine {
            record.acquire_time = old.acquire_time;
            record.lease_transitions = old.lease_transitions;
        } else {
            record.lease_transitions = old.lease_transitions + 1;
        }
        match self.update(&record).await {
            Ok(()) => Attempt::Leading,
            Err(e) => {
                self.log_write_failure("updating", &e);
                Attempt::Failed
            }
        }
    }

    /// A 409 is a race lost to another replica: expected, and retried.
    fn log_write_failure(&self, action: &str, e: &KubeError) {
        if e.code() == Some(409) {
            tracing::info!(lease = %self.describe, reason = e.reason().unwrap_or(""), "{action} the lease lost a race with another replica");
        } else {
            tracing::warn!(lease = %self.describe, error = %e, "{action} the lease failed");
        }
    }

    /// `POST` a Lease holding `record`.
    async fn create(&mut self, record: &Record) -> Result<(), KubeError> {
        let body = json!({
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {
                "name": self.config.name,
                "namespace": self.config.namespace.as_str(),
            },
            "spec": record.to_spec(),
        });
        let created = self.write(Method::POST, &self.collection, &body).await?;
        self.accept(created);
        Ok(())
    }

    /// `PUT` the last Lease read or written with `record` as its spec: conditional on
    /// its `resourceVersion`.
    async fn update(&mut self, record: &Record) -> Result<(), KubeError> {
        let mut body = self
            .lease
            .clone()
            .filter(Value::is_object)
            .ok_or_else(|| KubeError::Decode("no lease read to update".into()))?;
        body["apiVersion"] = json!(API_VERSION);
        body["kind"] = json!(KIND);
        body["spec"] = record.to_spec();
        let updated = self.write(Method::PUT, &self.path, &body).await?;
        self.accept(updated);
        Ok(())
    }

    async fn write(&self, method: Method, path: &str, body: &Value) -> Result<Value, KubeError> {
        let bytes = Bytes::from(body.to_string());
        self.client
            .request_json(method, path, Some((bytes, "application/json")))
            .await
    }

    /// Keeps what the apiserver answered to a write as the Lease and the observed
    /// record.
    fn accept(&mut self, lease: Value) {
        let record = Record::from_lease(&lease);
        self.lease = Some(lease);
        self.observe(record);
    }

    /// client-go's `release`: when the Lease (read afresh) still names this replica,
    /// empties its holder with a one-second duration; a 409 (a renewal interrupted by
    /// the stop may have landed) reads it again. Bounded by the renew deadline.
    async fn release(&mut self) {
        let deadline = self.config.renew_deadline;
        let outcome = timeout(deadline, async {
            for _ in 0..5 {
                let current = match self.client.get_json::<Value>(&self.path).await {
                    Ok(lease) => lease,
                    Err(e) if e.code() == Some(404) => return Ok(false),
                    Err(e) => return Err(e),
                };
                let old = Record::from_lease(&current);
                if old.holder_identity != self.config.identity {
                    return Ok(false);
                }
                self.lease = Some(current);
                let stamp = format_micro_time(SystemTime::now());
                let released = Record {
                    holder_identity: String::new(),
                    lease_duration_seconds: 1,
                    acquire_time: Some(stamp.clone()),
                    renew_time: Some(stamp),
                    lease_transitions: old.lease_transitions,
                };
                match self.update(&released).await {
                    Ok(()) => return Ok(true),
                    Err(e) if e.code() == Some(409) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(KubeError::Decode(
                "the lease kept changing while it was released".into(),
            ))
        })
        .await;
        match outcome {
            Ok(Ok(true)) => tracing::info!(lease = %self.describe, "released the leader lease"),
            Ok(Ok(false)) => {
                tracing::debug!(lease = %self.describe, "the lease is not held by this replica: nothing to release")
            }
            Ok(Err(e)) => {
                tracing::warn!(lease = %self.describe, error = %e, "cannot release the lease: it expires on its own")
            }
            Err(_) => {
                tracing::warn!(lease = %self.describe, ?deadline, "releasing the lease timed out: it expires on its own")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LeaseConfig {
        LeaseConfig {
            identity: "pod-0_abc".into(),
            ..LeaseConfig::new("default".parse().unwrap(), "sparktest-k8s-testruns")
        }
    }

    #[test]
    fn defaults_are_client_go_s_and_valid() {
        let c = LeaseConfig::new("default".parse().unwrap(), "l");
        assert_eq!(c.lease_duration, Duration::from_secs(15));
        assert_eq!(c.renew_deadline, Duration::from_secs(10));
        assert_eq!(c.retry_period, Duration::from_secs(2));
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.lease_duration_seconds(), 15);
    }

    #[test]
    fn invalid_timing_is_refused_as_client_go_does() {
        let cases = [
            LeaseConfig {
                lease_duration: Duration::from_secs(10),
                ..config()
            },
            LeaseConfig {
                renew_deadline: Duration::from_millis(2400),
                ..config()
            },
            LeaseConfig {
                retry_period: Duration::ZERO,
                ..config()
            },
            LeaseConfig {
                lease_duration: Duration::from_millis(900),
                renew_deadline: Duration::from_millis(500),
                retry_period: Duration::from_millis(100),
                ..config()
            },
            LeaseConfig {
                identity: String::new(),
                ..config()
            },
            LeaseConfig {
                name: String::new(),
                ..config()
            },
        ];
        for c in cases {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }

    #[test]
    fn identities_are_the_host_and_a_random_suffix() {
        let (a, b) = (default_identity(), default_identity());
        assert_ne!(a, b);
        let (host, suffix) = a.rsplit_once('_').unwrap();
        assert!(!host.is_empty());
        assert_eq!(suffix.len(), 16);
        assert!(suffix.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn micro_times_have_six_fractional_digits_in_utc() {
        let t = UNIX_EPOCH + Duration::new(1_751_884_200, 7_000);
        assert_eq!(format_micro_time(t), "2025-07-07T10:30:00.000007Z");
        let t = UNIX_EPOCH + Duration::new(1_751_884_200, 123_456_789);
        let s = format_micro_time(t);
        assert_eq!(s, "2025-07-07T10:30:00.123456Z");
        assert_eq!(
            crate::time::parse_rfc3339(&s),
            Some(UNIX_EPOCH + Duration::new(1_751_884_200, 123_456_000))
        );
    }

    #[test]
    fn jitter_stays_within_client_go_s_bounds() {
        let period = Duration::from_secs(2);
        for _ in 0..200 {
            let d = jittered(period);
            assert!(d >= period && d <= Duration::from_millis(4400), "{d:?}");
        }
    }

    #[test]
    fn paths_address_leases() {
        assert_eq!(
            lease_path("default", "sparktest-k8s-testruns"),
            "/apis/coordination.k8s.io/v1/namespaces/default/leases/sparktest-k8s-testruns"
        );
        assert_eq!(
            leases_path("ns"),
            "/apis/coordination.k8s.io/v1/namespaces/ns/leases"
        );
    }

    #[test]
    fn records_read_absent_fields_as_empty_and_write_the_whole_spec() {
        let free = Record::from_lease(&json!({"metadata": {"name": "l"}}));
        assert_eq!(free, Record::default());
        let lease = json!({"spec": {
            "holderIdentity": "a", "leaseDurationSeconds": 15,
            "acquireTime": "2025-07-07T10:30:00.000000Z",
            "renewTime": "2025-07-07T10:30:02.000000Z", "leaseTransitions": 3,
            "strategy": "OldestEmulationVersion"
        }});
        let record = Record::from_lease(&lease);
        assert_eq!(record.holder_identity, "a");
        assert_eq!(record.lease_transitions, 3);
        assert_eq!(
            record.to_spec(),
            json!({
                "holderIdentity": "a", "leaseDurationSeconds": 15,
                "acquireTime": "2025-07-07T10:30:00.000000Z",
                "renewTime": "2025-07-07T10:30:02.000000Z", "leaseTransitions": 3
            })
        );
    }
}

//! Leader election (`sparktest_k8s::lease`) against a fake apiserver holding one Lease
//! in memory: it creates, reads and updates it as the apiserver does (a
//! `resourceVersion` that must match on update, 409 otherwise), over HTTPS, so that
//! electors race for real.
//!
//! Time is virtual and frozen: it moves only when a test steps it (100 ms at a time),
//! and between steps the electors' requests get real time to finish. Tokio's paused
//! clock alone would not do: while a request waits for its answer the idle runtime
//! would jump to the next timer (a renew deadline, say). A blocking task held for the
//! whole test keeps the runtime from auto-advancing. The fake apiserver runs on the
//! test's own thread (wiremock answers from a thread of its own), so that a step can
//! wait for every request in flight however slow the machine is.

mod common;

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use sparktest_k8s::cluster::{AuthConfig, ClusterConfig, ConfigSource, ServerUrl, TlsConfig};
use sparktest_k8s::lease::{self, Leadership, LeaseConfig};
use sparktest_k8s::secret::Secret;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

const NAME: &str = "sparktest-k8s-testruns";
const STEP: Duration = Duration::from_millis(100);
const LEASE_DURATION: Duration = lease::DEFAULT_LEASE_DURATION;
const RENEW_DEADLINE: Duration = lease::DEFAULT_RENEW_DEADLINE;
const RETRY_PERIOD: Duration = lease::DEFAULT_RETRY_PERIOD;
/// The longest wait of a candidate between attempts: 2.2 retry periods, and a step.
const LONGEST_RETRY: Duration = Duration::from_millis(4400 + 100);

fn item_path() -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/default/leases/{NAME}")
}

fn collection_path() -> String {
    "/apis/coordination.k8s.io/v1/namespaces/default/leases".to_string()
}

// ---------------------------------------------------------------------------------
// The Lease store.

/// One request the store answered.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    status: u16,
    body: Value,
    /// What the watched replica's `is_leader` said when the request arrived.
    watched_leading: Option<bool>,
}

impl Call {
    fn short(&self) -> String {
        format!("{} {}", self.method, self.status)
    }
}

#[derive(Default)]
struct State {
    lease: Option<Value>,
    resource_version: u64,
    calls: Vec<Call>,
    /// Every request is answered with this status.
    fail_with: Option<u16>,
    /// Just before the next update applies, this holder takes the Lease.
    steal_next_put: Option<String>,
    watched: Option<Leadership>,
    /// Bodies that the apiserver would refuse (their shape is not a Lease's).
    problems: Vec<String>,
}

#[derive(Clone)]
struct Store {
    state: Arc<Mutex<State>>,
    /// Requests being answered (not those held by [`Store::hang`]).
    in_flight: Arc<AtomicUsize>,
    /// While true, requests are held unanswered.
    hung: Arc<watch::Sender<bool>>,
}

impl Store {
    fn new() -> Self {
        Self {
            state: Arc::default(),
            in_flight: Arc::default(),
            hung: Arc::new(watch::channel(false).0),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The apiserver hangs: requests arrive and wait, unanswered, until
    /// [`Store::answer_again`].
    fn hang(&self) {
        self.hung.send_replace(true);
    }

    fn answer_again(&self) {
        self.hung.send_replace(false);
    }

    fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    fn count(&self) -> usize {
        self.state().calls.len()
    }

    fn spec(&self) -> Value {
        self.state()
            .lease
            .as_ref()
            .map(|l| l["spec"].clone())
            .unwrap_or(Value::Null)
    }

    fn resource_version(&self) -> String {
        let state = self.state();
        state.lease.as_ref().unwrap()["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn fail_with(&self, status: Option<u16>) {
        self.state().fail_with = status;
    }

    fn steal_next_put(&self, holder: &str) {
        self.state().steal_next_put = Some(holder.to_string());
    }

    fn watch(&self, leadership: &Leadership) {
        self.state().watched = Some(leadership.clone());
    }

    /// A Lease written by another replica.
    fn seed(&self, holder: &str, duration: i64, renew_time: &str, transitions: i64) {
        let mut state = self.state();
        state.resource_version += 1;
        let rv = state.resource_version.to_string();
        state.lease = Some(json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": NAME, "namespace": "default", "resourceVersion": rv,
                "uid": "0b0e6c43-4c35-4f7a-9d55-2f0a5a3c1e11",
                "creationTimestamp": "2025-07-07T10:00:00Z",
                "labels": {"app.kubernetes.io/name": "sparktest-k8s"}
            },
            "spec": {
                "holderIdentity": holder, "leaseDurationSeconds": duration,
                "acquireTime": renew_time, "renewTime": renew_time,
                "leaseTransitions": transitions
            }
        }));
    }

    /// Another replica renews the Lease with this renew time (its clock, not ours).
    fn renew_as(&self, holder: &str, renew_time: &str) {
        let mut state = self.state();
        state.resource_version += 1;
        let rv = state.resource_version.to_string();
        let lease = state.lease.as_mut().unwrap();
        assert_eq!(lease["spec"]["holderIdentity"], holder);
        lease["spec"]["renewTime"] = json!(renew_time);
        lease["metadata"]["resourceVersion"] = json!(rv);
    }

    fn assert_well_formed(&self) {
        let problems = self.state().problems.clone();
        assert!(problems.is_empty(), "refused bodies: {problems:#?}");
    }
}

impl State {
    fn handle(&mut self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        if let Some(code) = self.fail_with {
            return (
                code,
                status(code, "InternalError", "etcdserver: request timed out"),
            );
        }
        let item = path == item_path();
        match method {
            "GET" if item => match &self.lease {
                Some(lease) => (200, lease.clone()),
                None => (404, not_found()),
            },
            "POST" if path == collection_path() => {
                if let Err(problem) = lease_shape(body) {
                    return self.refuse(problem);
                }
                if !body["metadata"]["resourceVersion"].is_null() {
                    return self.refuse("resourceVersion must not be set on create".into());
                }
                if self.lease.is_some() {
                    let message = format!("leases.coordination.k8s.io \"{NAME}\" already exists");
                    return (409, status(409, "AlreadyExists", &message));
                }
                self.resource_version += 1;
                let mut lease = body.clone();
                lease["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
                lease["metadata"]["uid"] = json!("5d1c1f3e-8f2a-4b59-a3f4-0c2d8e7b9a10");
                lease["metadata"]["creationTimestamp"] = json!("2025-07-07T10:30:00Z");
                self.lease = Some(lease.clone());
                (201, lease)
            }
            "PUT" if item => {
                if let Err(problem) = lease_shape(body) {
                    return self.refuse(problem);
                }
                if let Some(racer) = self.steal_next_put.take() {
                    self.resource_version += 1;
                    let rv = self.resource_version.to_string();
                    let lease = self.lease.as_mut().unwrap();
                    let transitions = lease["spec"]["leaseTransitions"].as_i64().unwrap();
                    lease["spec"] = json!({
                        "holderIdentity": racer, "leaseDurationSeconds": 15,
                        "acquireTime": "2025-07-07T10:31:00.000000Z",
                        "renewTime": "2025-07-07T10:31:00.000000Z",
                        "leaseTransitions": transitions + 1
                    });
                    lease["metadata"]["resourceVersion"] = json!(rv);
                }
                let Some(current) = &self.lease else {
                    return (404, not_found());
                };
                let sent = &body["metadata"]["resourceVersion"];
                if sent.is_null() {
                    return self.refuse("an update must carry the resourceVersion read".into());
                }
                if *sent != current["metadata"]["resourceVersion"] {
                    let message = format!(
                        "Operation cannot be fulfilled on leases.coordination.k8s.io \"{NAME}\": the object has been modified; please apply your changes to the latest version and try again"
                    );
                    return (409, status(409, "Conflict", &message));
                }
                if body["metadata"]["uid"] != current["metadata"]["uid"]
                    || body["metadata"]["labels"] != current["metadata"]["labels"]
                {
                    return self.refuse("the update dropped the object's metadata".into());
                }
                self.resource_version += 1;
                let mut lease = body.clone();
                lease["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
                self.lease = Some(lease.clone());
                (200, lease)
            }
            _ => self.refuse(format!("unexpected {method} {path}")),
        }
    }

    fn refuse(&mut self, problem: String) -> (u16, Value) {
        self.problems.push(problem.clone());
        (422, status(422, "Invalid", &problem))
    }
}

/// Counts a request in flight while alive.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Store {
    async fn answer(
        self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
        let (parts, body) = request.into_parts();
        let bytes = {
            let _reading = InFlight::new(&self.in_flight);
            body.collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default()
        };
        // Held requests are not in flight: settling does not wait for them.
        let _ = self.hung.subscribe().wait_for(|hung| !hung).await;
        let in_flight = InFlight::new(&self.in_flight);
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let bearer = format!("Bearer {}", common::TOKEN);
        let authorized = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .is_some_and(|v| v.as_bytes() == bearer.as_bytes());
        let (code, answer) = {
            let mut state = self.state();
            let watched_leading = state.watched.as_ref().map(Leadership::is_leader);
            let (code, answer) = if authorized {
                state.handle(parts.method.as_str(), parts.uri.path(), &body)
            } else {
                state.refuse("no bearer token".into())
            };
            state.calls.push(Call {
                method: parts.method.to_string(),
                status: code,
                body,
                watched_leading,
            });
            (code, answer)
        };
        let response = hyper::Response::builder()
            .status(code)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(answer.to_string())))
            .unwrap();
        drop(in_flight);
        Ok(response)
    }
}

/// Serves the store over HTTPS (HTTP/1.1) on 127.0.0.1, on the current runtime.
async fn serve(store: Store, leaf: &common::Leaf) -> SocketAddr {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, store) = (acceptor.clone(), store.clone());
            tokio::spawn(async move {
                // As the client does: without it, Nagle's algorithm holds the end of
                // an answer until the client's delayed ACK (40 ms of real time).
                tcp.set_nodelay(true).unwrap();
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |r| store.clone().answer(r));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason,
        "details": {"name": NAME, "group": "coordination.k8s.io", "kind": "leases"},
        "code": code
    })
}

fn not_found() -> Value {
    let message = format!("leases.coordination.k8s.io \"{NAME}\" not found");
    status(404, "NotFound", &message)
}

/// What the apiserver checks of a Lease, and the client-go record's shape: the five
/// spec fields, MicroTimes with six fractional digits.
fn lease_shape(body: &Value) -> Result<(), String> {
    let fail = |m: &str| Err(format!("{m}: {body}"));
    if body["apiVersion"] != "coordination.k8s.io/v1" || body["kind"] != "Lease" {
        return fail("not a coordination.k8s.io/v1 Lease");
    }
    if body["metadata"]["name"] != NAME {
        return fail("wrong name");
    }
    if !matches!(&body["metadata"]["namespace"], Value::Null)
        && body["metadata"]["namespace"] != "default"
    {
        return fail("wrong namespace");
    }
    let spec = body["spec"].as_object().ok_or("no spec")?;
    let keys: BTreeSet<&str> = spec.keys().map(String::as_str).collect();
    let expected = BTreeSet::from([
        "acquireTime",
        "holderIdentity",
        "leaseDurationSeconds",
        "leaseTransitions",
        "renewTime",
    ]);
    if keys != expected {
        return fail("spec fields are not the leader election record's");
    }
    if !spec["holderIdentity"].is_string() {
        return fail("holderIdentity is not a string");
    }
    if spec["leaseDurationSeconds"].as_i64().is_none_or(|d| d <= 0) {
        return fail("leaseDurationSeconds must be greater than 0");
    }
    if spec["leaseTransitions"].as_i64().is_none_or(|t| t < 0) {
        return fail("leaseTransitions must be a non-negative integer");
    }
    for key in ["acquireTime", "renewTime"] {
        if !spec[key].as_str().is_some_and(is_micro_time) {
            return fail("not a MicroTime");
        }
    }
    Ok(())
}

/// `2026-11-26T11:48:24.123456Z`
fn is_micro_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 27
        && b[19] == b'.'
        && b[20..26].iter().all(u8::is_ascii_digit)
        && b[26] == b'Z'
        && sparktest_k8s::time::parse_rfc3339(s).is_some()
}

// ---------------------------------------------------------------------------------
// Frozen virtual time, the fake apiserver and the replicas.

/// Keeps a blocking task alive, which stops the paused clock from auto-advancing
/// (current-thread runtime): virtual time then moves only by `tokio::time::advance`.
struct FrozenTime {
    _hold: std::sync::mpsc::Sender<()>,
}

fn freeze_time() -> FrozenTime {
    let (hold, released) = std::sync::mpsc::channel::<()>();
    tokio::task::spawn_blocking(move || {
        let _ = released.recv();
    });
    FrozenTime { _hold: hold }
}

/// Real time for I/O, virtual time standing still.
async fn real_pause(ms: u64) {
    tokio::task::spawn_blocking(move || std::thread::sleep(Duration::from_millis(ms)))
        .await
        .unwrap();
}

struct Harness {
    pki: common::Pki,
    addr: SocketAddr,
    store: Store,
    _time: FrozenTime,
}

async fn harness() -> Harness {
    let pki = common::Pki::new("test-apiserver-ca");
    let store = Store::new();
    let addr = serve(store.clone(), &pki.server(&["127.0.0.1"])).await;
    Harness {
        pki,
        addr,
        store,
        _time: freeze_time(),
    }
}

struct Replica {
    leadership: Leadership,
    handle: JoinHandle<()>,
    stop: Option<oneshot::Sender<()>>,
}

impl Replica {
    fn is_leader(&self) -> bool {
        self.leadership.is_leader()
    }

    fn stop(&mut self) {
        let _ = self.stop.take().expect("stopped once").send(());
    }
}

impl Harness {
    /// A replica with client-go's default timing and its own client (connections).
    fn replica(&self, identity: &str) -> Replica {
        let config = ClusterConfig {
            source: ConfigSource::Environment { variable: "TEST" },
            server: ServerUrl::parse(&format!("https://{}", self.addr)).unwrap(),
            tls: TlsConfig {
                ca_pem: Some(self.pki.ca_pem.clone().into_bytes()),
                ..TlsConfig::default()
            },
            auth: AuthConfig::Token(Secret::new(common::TOKEN.to_string())),
            namespace: None,
            proxy_url: None,
        };
        let client = common::client_for(&config, Duration::from_secs(30));
        let lease_config = LeaseConfig {
            identity: identity.to_string(),
            ..LeaseConfig::new("default".parse().unwrap(), NAME)
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let (leadership, handle) = lease::spawn(client, lease_config, async move {
            let _ = stopped.await;
        });
        Replica {
            leadership,
            handle,
            stop: Some(stop),
        }
    }

    /// Waits in real time (at most ~10 s) for `cond`, virtual time standing still.
    async fn until(&self, what: &str, mut cond: impl FnMut() -> bool) {
        for _ in 0..5000 {
            if cond() {
                return;
            }
            real_pause(2).await;
        }
        panic!("{what}: not within 10 s of real time");
    }

    /// Lets everything that virtual time does not hold back finish: requests, TLS
    /// handshakes, the electors' work on answers. Settled is when, twice in a row, the
    /// runtime slept through a pause in one piece (it parked once, woken only by the
    /// pause's end) and the store saw nothing new: every task then waits for a timer.
    async fn settle(&self) {
        let metrics = tokio::runtime::Handle::current().metrics();
        let mut quiet = 0;
        for _ in 0..10_000 {
            let parks = metrics.worker_park_count(0);
            let seen = self.store.count();
            real_pause(1).await;
            let slept_through = metrics.worker_park_count(0) == parks + 1;
            if slept_through && self.store.count() == seen && self.store.in_flight() == 0 {
                quiet += 1;
                if quiet == 2 {
                    return;
                }
            } else {
                quiet = 0;
            }
        }
        panic!("the electors never settled");
    }

    async fn step(&self) {
        tokio::time::advance(STEP).await;
        self.settle().await;
    }

    async fn run_for(&self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.step().await;
        }
    }

    /// Steps virtual time until `cond`; returns how long that took (to a step).
    async fn run_until(
        &self,
        what: &str,
        limit: Duration,
        mut cond: impl FnMut() -> bool,
    ) -> Duration {
        let start = Instant::now();
        while !cond() {
            assert!(
                start.elapsed() <= limit,
                "{what}: not within {limit:?}; requests: {:?}",
                shorts(&self.store.calls())
            );
            self.step().await;
        }
        start.elapsed()
    }
}

fn shorts(calls: &[Call]) -> Vec<String> {
    calls.iter().map(Call::short).collect()
}

// ---------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_single_replica_creates_a_missing_lease_and_renews_it() {
    let h = harness().await;
    let mut a = h.replica("pod-a_1");
    let mut leadership = a.leadership.clone();
    leadership.acquired().await;
    assert!(a.is_leader());

    let calls = h.store.calls();
    assert_eq!(shorts(&calls), ["GET 404", "POST 201"]);
    let created = &calls[1].body;
    assert_eq!(created["apiVersion"], "coordination.k8s.io/v1");
    assert_eq!(created["kind"], "Lease");
    assert_eq!(
        created["metadata"],
        json!({"name": NAME, "namespace": "default"})
    );
    let spec = &created["spec"];
    assert_eq!(spec["holderIdentity"], "pod-a_1");
    assert_eq!(spec["leaseDurationSeconds"], 15);
    assert_eq!(spec["leaseTransitions"], 0);
    assert_eq!(spec["acquireTime"], spec["renewTime"]);
    let created_rv = h.store.resource_version();

    // Nothing before a retry period; then one update with the Lease it wrote, no read.
    h.run_for(RETRY_PERIOD - STEP).await;
    assert_eq!(h.store.count(), 2);
    h.run_for(STEP * 2).await;
    let calls = h.store.calls();
    assert_eq!(shorts(&calls[2..]), ["PUT 200"]);
    let renewal = &calls[2].body;
    assert_eq!(renewal["metadata"]["resourceVersion"], created_rv.as_str());
    assert_eq!(
        renewal["metadata"]["uid"],
        "5d1c1f3e-8f2a-4b59-a3f4-0c2d8e7b9a10"
    );
    assert_eq!(renewal["spec"]["holderIdentity"], "pod-a_1");
    assert_eq!(renewal["spec"]["acquireTime"], spec["acquireTime"]);
    assert_eq!(renewal["spec"]["leaseTransitions"], 0);
    assert_eq!(renewal["spec"]["leaseDurationSeconds"], 15);
    assert!(
        renewal["spec"]["renewTime"].as_str() > spec["renewTime"].as_str(),
        "{renewal}"
    );

    // Every retry period after that, leading throughout.
    for _ in 0..100 {
        h.step().await;
        assert!(a.is_leader());
    }
    let calls = h.store.calls();
    assert_eq!(shorts(&calls[3..]), vec!["PUT 200"; 5]);

    // Stopped, it steps down and releases the Lease.
    h.store.watch(&a.leadership);
    a.stop();
    leadership.lost().await;
    h.until("the elector ends", || a.handle.is_finished()).await;
    assert!(!a.is_leader());
    let calls = h.store.calls();
    assert_eq!(shorts(&calls[8..]), ["GET 200", "PUT 200"]);
    assert_eq!(calls[9].watched_leading, Some(false));
    let released = h.store.spec();
    assert_eq!(released["holderIdentity"], "");
    assert_eq!(released["leaseDurationSeconds"], 1);
    assert_eq!(released["leaseTransitions"], 0);

    // An elector that has ended never leads again.
    tokio::select! {
        biased;
        () = leadership.acquired() => panic!("an ended elector acquired"),
        () = real_pause(20) => {}
    }
    h.store.assert_well_formed();
}

#[tokio::test(start_paused = true)]
async fn of_two_replicas_exactly_one_leads_at_any_time() {
    let h = harness().await;
    let a = h.replica("pod-a_1");
    let b = h.replica("pod-b_2");
    h.until("a leader", || a.is_leader() || b.is_leader()).await;
    h.settle().await;

    for _ in 0..600 {
        h.step().await;
        let leaders: Vec<&str> = [(&a, "pod-a_1"), (&b, "pod-b_2")]
            .iter()
            .filter(|(r, _)| r.is_leader())
            .map(|(_, id)| *id)
            .collect();
        assert_eq!(leaders.len(), 1, "leaders at once: {leaders:?}");
        assert_eq!(h.store.spec()["holderIdentity"], leaders[0]);
    }
    let spec = h.store.spec();
    assert_eq!(spec["leaseTransitions"], 0, "the lease never changed hands");
    let calls = h.store.calls();
    assert_eq!(calls.iter().filter(|c| c.short() == "POST 201").count(), 1);
    assert!(
        calls
            .iter()
            .all(|c| c.status < 300 || c.status == 404 || c.status == 409),
        "{:?}",
        shorts(&calls)
    );
    h.store.assert_well_formed();
}

#[tokio::test(start_paused = true)]
async fn a_stopped_leader_releases_the_lease_and_the_other_takes_over_within_a_retry_period() {
    let h = harness().await;
    let mut a = h.replica("pod-a_1");
    h.until("a leads", || a.is_leader()).await;
    let b = h.replica("pod-b_2");
    h.run_for(LEASE_DURATION + Duration::from_secs(5)).await;
    assert!(a.is_leader() && !b.is_leader());

    h.store.watch(&a.leadership);
    a.stop();
    h.until("a ends", || a.handle.is_finished()).await;
    assert!(!a.is_leader());
    let release = h.store.calls().last().cloned().unwrap();
    assert_eq!(release.short(), "PUT 200");
    assert_eq!(release.watched_leading, Some(false), "a stepped down first");
    assert_eq!(release.body["spec"]["holderIdentity"], "");
    assert_eq!(release.body["spec"]["leaseDurationSeconds"], 1);
    assert_eq!(release.body["spec"]["leaseTransitions"], 0);

    let waited = h
        .run_until("b leads", LEASE_DURATION, || b.is_leader())
        .await;
    assert!(waited <= LONGEST_RETRY, "took over after {waited:?}");
    let spec = h.store.spec();
    assert_eq!(spec["holderIdentity"], "pod-b_2");
    assert_eq!(spec["leaseTransitions"], 1);
    assert_eq!(spec["leaseDurationSeconds"], 15);
    h.store.assert_well_formed();
}

#[tokio::test(start_paused = true)]
async fn a_leader_whose_renewals_fail_steps_down_within_the_renew_deadline() {
    let h = harness().await;
    let a = h.replica("pod-a_1");
    h.until("a leads", || a.is_leader()).await;

    h.store.fail_with(Some(500));
    let before = h.store.count();
    h.run_until("a renewal", RETRY_PERIOD + STEP, || {
        h.store.count() > before
    })
    .await;
    let held = h
        .run_until("a steps down", LEASE_DURATION, || !a.is_leader())
        .await;
    // client-go's PollUntilContextTimeout: retried every retry period until the deadline.
    assert!(
        held <= RENEW_DEADLINE,
        "stepped down {held:?} after the first failure"
    );
    assert!(
        held >= RENEW_DEADLINE - STEP,
        "stepped down early: {held:?}"
    );
    let failures = h.store.calls()[before..]
        .iter()
        .filter(|c| c.status == 500)
        .count();
    assert!(failures >= 8, "{failures} failed requests");

    // Answered again, it leads again: the Lease never changed hands.
    h.store.fail_with(None);
    h.run_until("a leads again", LONGEST_RETRY * 2, || a.is_leader())
        .await;
    let spec = h.store.spec();
    assert_eq!(spec["holderIdentity"], "pod-a_1");
    assert_eq!(spec["leaseTransitions"], 0);
    h.store.assert_well_formed();
}

#[tokio::test(start_paused = true)]
async fn a_leader_cut_off_by_a_hung_apiserver_steps_down_within_the_renew_deadline() {
    let h = harness().await;
    let a = h.replica("pod-a_1");
    h.until("a leads", || a.is_leader()).await;
    h.run_for(RETRY_PERIOD + STEP).await;
    assert_eq!(shorts(&h.store.calls()), ["GET 404", "POST 201", "PUT 200"]);

    h.store.hang();
    // The next renewal (at 2 retry periods) hangs; its round ends at the deadline.
    let held = h
        .run_until("a steps down", LEASE_DURATION, || !a.is_leader())
        .await;
    let expected = RETRY_PERIOD - STEP + RENEW_DEADLINE;
    assert!(
        held >= expected - STEP && held <= expected + STEP,
        "stepped down {held:?} after the apiserver hung"
    );
    assert!(!a.handle.is_finished());

    // Answered again, it leads again.
    h.store.answer_again();
    h.run_until("a leads again", LONGEST_RETRY * 3, || a.is_leader())
        .await;
    assert_eq!(h.store.spec()["holderIdentity"], "pod-a_1");
    assert_eq!(h.store.spec()["leaseTransitions"], 0);
    h.store.assert_well_formed();
}

/// Log lines of the test's thread (the electors run on it).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(start_paused = true)]
async fn a_conflict_on_update_is_a_lost_race_not_an_error() {
    let logs = Logs::default();
    let _logging = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_max_level(tracing::Level::DEBUG)
            .finish(),
    );
    let h = harness().await;
    h.store
        .seed("old-leader_9", 15, "2025-07-07T10:29:00.000000Z", 3);
    h.store.steal_next_put("racer_7");
    let a = h.replica("pod-a_1");

    // A lease duration after it first saw the Lease, its update loses to the racer.
    let waited = h
        .run_until("a conflict", LEASE_DURATION + LONGEST_RETRY, || {
            h.store.calls().iter().any(|c| c.short() == "PUT 409")
        })
        .await;
    assert!(waited >= LEASE_DURATION, "took the lease after {waited:?}");
    h.run_for(Duration::from_secs(1)).await;
    assert!(!a.is_leader());
    assert!(!a.handle.is_finished());
    assert_eq!(h.store.spec()["holderIdentity"], "racer_7");

    // The racer never renews: a lease duration after seeing it, a takes it.
    let waited = h
        .run_until("a leads", LEASE_DURATION + LONGEST_RETRY * 2, || {
            a.is_leader()
        })
        .await;
    assert!(
        waited >= LEASE_DURATION - RETRY_PERIOD,
        "took it after {waited:?}"
    );
    let spec = h.store.spec();
    assert_eq!(spec["holderIdentity"], "pod-a_1");
    assert_eq!(spec["leaseTransitions"], 5);

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("lost a race"), "{text}");
    for line in text.lines() {
        assert!(
            !line.contains(" WARN ") && !line.contains(" ERROR "),
            "logged as a failure: {line}"
        );
    }
    h.store.assert_well_formed();
}

#[tokio::test(start_paused = true)]
async fn a_lease_renewed_by_another_replica_is_never_taken_whatever_its_clock_says() {
    let h = harness().await;
    // The other replica's clock is 25 years behind: were timestamps compared with
    // ours, its lease would look long expired.
    h.store
        .seed("other_3", 15, "2001-01-01T00:00:00.000000Z", 2);
    let a = h.replica("pod-a_1");
    for second in 1..=30 {
        h.run_for(RETRY_PERIOD).await;
        let renewed = format!(
            "2001-01-01T00:{:02}:{:02}.000000Z",
            second * 2 / 60,
            second * 2 % 60
        );
        h.store.renew_as("other_3", &renewed);
        assert!(!a.is_leader());
    }
    let calls = h.store.calls();
    assert!(calls.len() >= 10, "{:?}", shorts(&calls));
    assert!(
        calls.iter().all(|c| c.short() == "GET 200"),
        "{:?}",
        shorts(&calls)
    );
    assert_eq!(h.store.spec()["holderIdentity"], "other_3");
    assert_eq!(h.store.spec()["leaseTransitions"], 2);
}

#[tokio::test(start_paused = true)]
async fn an_expired_lease_is_taken_by_the_local_clock_with_one_more_transition() {
    let h = harness().await;
    // A renew time in the future, and the record's own duration (20 s): what counts
    // is 20 s without a change, by this replica's clock.
    h.store.seed("gone_5", 20, "2100-01-01T00:00:00.000000Z", 7);
    let seeded_rv = h.store.resource_version();
    let a = h.replica("pod-a_1");
    let waited = h
        .run_until("a leads", Duration::from_secs(20) + LONGEST_RETRY, || {
            a.is_leader()
        })
        .await;
    assert!(
        waited >= Duration::from_secs(20),
        "took it after {waited:?}"
    );

    let calls = h.store.calls();
    let take = calls.last().unwrap();
    assert_eq!(take.short(), "PUT 200");
    assert_eq!(take.body["metadata"]["resourceVersion"], seeded_rv.as_str());
    assert_eq!(
        take.body["metadata"]["labels"],
        json!({"app.kubernetes.io/name": "sparktest-k8s"})
    );
    let spec = h.store.spec();
    assert_eq!(spec["holderIdentity"], "pod-a_1");
    assert_eq!(spec["leaseTransitions"], 8);
    assert_eq!(spec["leaseDurationSeconds"], 15);
    assert_eq!(spec["acquireTime"], spec["renewTime"]);
    assert_ne!(spec["acquireTime"], "2100-01-01T00:00:00.000000Z");
    h.store.assert_well_formed();
}

#[tokio::test(start_paused = true)]
async fn a_candidate_that_stops_writes_nothing() {
    let h = harness().await;
    h.store
        .seed("other_3", 15, "2025-07-07T10:29:00.000000Z", 0);
    let mut a = h.replica("pod-a_1");
    h.run_for(Duration::from_secs(5)).await;
    a.stop();
    h.until("a ends", || a.handle.is_finished()).await;
    let calls = h.store.calls();
    assert!(
        calls.iter().all(|c| c.short() == "GET 200"),
        "{:?}",
        shorts(&calls)
    );
    assert_eq!(h.store.spec()["holderIdentity"], "other_3");
}

#[test]
#[should_panic(expected = "renew deadline")]
fn spawning_with_an_invalid_configuration_panics() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = common::plain_http_client("http://127.0.0.1:9", Duration::from_secs(1));
        let config = LeaseConfig {
            renew_deadline: Duration::from_secs(20),
            ..LeaseConfig::new("default".parse().unwrap(), NAME)
        };
        let _ = lease::spawn(client, config, std::future::pending());
    });
}

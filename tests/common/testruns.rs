//! A stateful fake kube-apiserver for the TestRun controller: plain HTTP/1.1 on
//! 127.0.0.1, one request per connection. It keeps objects of any namespaced resource
//! (TestRuns, Jobs, Leases) with resourceVersions, and answers as kube-apiserver does:
//!
//! - `GET` a collection lists it (`labelSelector=k=v` honoured) with the list's
//!   resourceVersion; with `watch=true` it streams every change after the given
//!   resourceVersion (a `BOOKMARK` first), and keeps streaming;
//! - `GET` an object, `404 NotFound` when absent;
//! - `POST` creates (uid, generation 1, creationTimestamp, resourceVersion), `409
//!   AlreadyExists` when the name is taken;
//! - `PUT` an object updates it, `PUT .../status` only its status: a resourceVersion
//!   that is not the current one is `409 Conflict`; a spec change bumps the generation;
//! - `DELETE` removes.
//!
//! Faults are scripted: [`FakeKube::fail_next`] answers the next request to a path with
//! an error, [`FakeKube::expire_watches`] makes every watch from an older
//! resourceVersion an `ERROR 410` event (history compacted), [`FakeKube::stale_lists`]
//! answers the next lists of a collection with an old, empty list. Every request is
//! recorded with its body.
//!
//! Declare it with `#[path = "common/testruns.rs"] mod fake_kube;`.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const TESTRUNS: &str = "/apis/sparktest.dev/v1alpha1/namespaces/default/testruns";
pub const JOBS: &str = "/apis/batch/v1/namespaces/default/jobs";
pub const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Option<Value>,
}

impl Request {
    pub fn is_watch(&self) -> bool {
        self.query.split('&').any(|p| p == "watch=true")
    }
}

struct Change {
    rv: u64,
    collection: String,
    kind: &'static str,
    object: Value,
}

#[derive(Default)]
struct World {
    rv: u64,
    uids: u64,
    /// (collection path, name) → object
    objects: BTreeMap<(String, String), Value>,
    history: Vec<Change>,
    requests: Vec<Request>,
    /// (method, path) → answers given instead, first first
    faults: HashMap<(String, String), VecDeque<(u16, Value)>>,
    /// Watches from a resourceVersion below this are expired (410).
    compacted: u64,
    /// collection → how many more lists are answered old and empty
    stale: HashMap<String, usize>,
    /// (collection, name) → status writes accepted (not those answered 409)
    status_writes: HashMap<(String, String), usize>,
}

/// The fake apiserver. Cheap to clone; clones share the world.
#[derive(Clone)]
pub struct FakeKube {
    pub addr: SocketAddr,
    world: Arc<Mutex<World>>,
    changed: Arc<tokio::sync::watch::Sender<u64>>,
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

/// A `409 Conflict` as kube-apiserver words it for a stale resourceVersion.
pub fn conflict(name: &str) -> (u16, Value) {
    (
        409,
        status(
            409,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on testruns.sparktest.dev \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
        ),
    )
}

/// A UUID-shaped uid, distinct per object.
fn uid(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

fn now() -> String {
    sparktest_k8s::time::now_rfc3339()
}

impl FakeKube {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let kube = Self {
            addr,
            world: Arc::new(Mutex::new(World {
                rv: 100,
                ..World::default()
            })),
            changed: Arc::new(tokio::sync::watch::Sender::new(100)),
        };
        let serving = kube.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let kube = serving.clone();
                tokio::spawn(async move { kube.serve(socket).await });
            }
        });
        kube
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    // --- the test's side: objects ---------------------------------------------------

    /// Creates an object in `collection` as a client would (uid, generation, rv set).
    pub fn create(&self, collection: &str, object: Value) -> Value {
        let mut w = self.world.lock().unwrap();
        let created = Self::insert(&mut w, collection, object).expect("a new name");
        drop(w);
        self.notify();
        created
    }

    /// A TestRun named `name` with this spec, created in `default`.
    pub fn create_testrun(&self, name: &str, spec: Value) -> Value {
        self.create(
            TESTRUNS,
            json!({"apiVersion": "sparktest.dev/v1alpha1", "kind": "TestRun",
                   "metadata": {"name": name, "namespace": "default"}, "spec": spec}),
        )
    }

    /// The object, if it exists.
    pub fn get(&self, collection: &str, name: &str) -> Option<Value> {
        let w = self.world.lock().unwrap();
        w.objects
            .get(&(collection.to_string(), name.to_string()))
            .cloned()
    }

    /// Every object of a collection.
    pub fn list(&self, collection: &str) -> Vec<Value> {
        let w = self.world.lock().unwrap();
        w.objects
            .iter()
            .filter(|((c, _), _)| c == collection)
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// Changes an object as another client would: `change` edits it, the
    /// resourceVersion moves (and the generation when the spec changed).
    pub fn modify(&self, collection: &str, name: &str, change: impl FnOnce(&mut Value)) {
        let mut w = self.world.lock().unwrap();
        let key = (collection.to_string(), name.to_string());
        let mut object = w.objects.get(&key).cloned().expect("an object to modify");
        let spec = object["spec"].clone();
        change(&mut object);
        if object["spec"] != spec {
            let g = object["metadata"]["generation"].as_i64().unwrap_or(1);
            object["metadata"]["generation"] = (g + 1).into();
        }
        Self::store(&mut w, collection, "MODIFIED", object);
        drop(w);
        self.notify();
    }

    /// Sets a Job's status, as the Job controller does.
    pub fn set_job_status(&self, name: &str, status: Value) {
        self.modify(JOBS, name, |job| job["status"] = status);
    }

    /// Deletes an object as another client would.
    pub fn delete(&self, collection: &str, name: &str) {
        let mut w = self.world.lock().unwrap();
        if let Some(object) = w
            .objects
            .remove(&(collection.to_string(), name.to_string()))
        {
            w.rv += 1;
            let rv = w.rv;
            w.history.push(Change {
                rv,
                collection: collection.to_string(),
                kind: "DELETED",
                object,
            });
        }
        drop(w);
        self.notify();
    }

    // --- the test's side: faults and records ------------------------------------------

    /// The next request `method path` (path without query) is answered `code` with
    /// `body` instead, once per call.
    pub fn fail_next(&self, method: &str, path: &str, answer: (u16, Value)) {
        self.world
            .lock()
            .unwrap()
            .faults
            .entry((method.to_string(), path.to_string()))
            .or_default()
            .push_back(answer);
    }

    /// From now on, a watch from a resourceVersion older than the current one is an
    /// `ERROR` event with a `410 Gone` Status (as after etcd compaction).
    pub fn expire_watches(&self) {
        let mut w = self.world.lock().unwrap();
        w.compacted = w.rv;
    }

    /// The next `count` lists of `collection` answer an old, empty list (resourceVersion
    /// 1): what a client that listed long ago would have seen.
    pub fn stale_lists(&self, collection: &str, count: usize) {
        self.world
            .lock()
            .unwrap()
            .stale
            .insert(collection.to_string(), count);
    }

    /// How many status writes of this object the fake accepted (a write refused with
    /// `409 Conflict` is a request, not a write).
    pub fn status_writes(&self, collection: &str, name: &str) -> usize {
        let w = self.world.lock().unwrap();
        w.status_writes
            .get(&(collection.to_string(), name.to_string()))
            .copied()
            .unwrap_or(0)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.world.lock().unwrap().requests.clone()
    }

    /// The requests `method` to exactly `path`.
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect()
    }

    /// Waits (polling every 10 ms) until `check` holds, at most `limit`.
    pub async fn wait_for(&self, limit: Duration, check: impl Fn(&Self) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if check(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    // --- the apiserver's side ---------------------------------------------------------

    fn notify(&self) {
        let rv = self.world.lock().unwrap().rv;
        self.changed.send_replace(rv);
    }

    fn insert(w: &mut World, collection: &str, mut object: Value) -> Result<Value, Value> {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let key = (collection.to_string(), name.clone());
        if w.objects.contains_key(&key) {
            return Err(status(
                409,
                "AlreadyExists",
                &format!(
                    "{} \"{name}\" already exists",
                    collection.rsplit('/').next().unwrap_or("")
                ),
            ));
        }
        w.uids += 1;
        let meta = &mut object["metadata"];
        if meta["uid"].is_null() {
            meta["uid"] = uid(w.uids).into();
        }
        meta["generation"] = 1.into();
        meta["creationTimestamp"] = now().into();
        let ns = collection
            .split('/')
            .skip_while(|s| *s != "namespaces")
            .nth(1);
        meta["namespace"] = ns.unwrap_or("default").into();
        Ok(Self::store(w, collection, "ADDED", object))
    }

    fn store(w: &mut World, collection: &str, kind: &'static str, mut object: Value) -> Value {
        w.rv += 1;
        let rv = w.rv;
        object["metadata"]["resourceVersion"] = rv.to_string().into();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        w.objects
            .insert((collection.to_string(), name), object.clone());
        w.history.push(Change {
            rv,
            collection: collection.to_string(),
            kind,
            object: object.clone(),
        });
        object
    }

    async fn serve(&self, mut socket: TcpStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < head_end + length {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = &buf[head_end..head_end + length];
        let mut words = head.lines().next().unwrap_or_default().split_whitespace();
        let method = words.next().unwrap_or_default().to_string();
        let target = words.next().unwrap_or_default().to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let request = Request {
            method: method.clone(),
            path: path.to_string(),
            query: query.to_string(),
            body: serde_json::from_slice(body).ok(),
        };
        let fault = {
            let mut w = self.world.lock().unwrap();
            w.requests.push(request.clone());
            w.faults
                .get_mut(&(method.clone(), path.to_string()))
                .and_then(VecDeque::pop_front)
        };
        if let Some((code, body)) = fault {
            return respond(&mut socket, code, &body).await;
        }
        if method == "GET" && request.is_watch() {
            return self.watch(&mut socket, path, query).await;
        }
        let (code, body) = self.answer(&request);
        if (200..300).contains(&code) && method != "GET" {
            self.notify();
        }
        respond(&mut socket, code, &body).await;
    }

    /// `(collection, name, subresource)` of a namespaced resource path.
    fn split(path: &str) -> (String, Option<String>, Option<String>) {
        let parts: Vec<&str> = path.split('/').collect();
        // ["", "apis", g, v, "namespaces", ns, resource, name?, sub?] or ["", "api", "v1", ...]
        let base = if parts.get(1) == Some(&"api") { 6 } else { 7 };
        let collection = parts[..base.min(parts.len())].join("/");
        let name = parts.get(base).map(|s| s.to_string());
        let sub = parts.get(base + 1).map(|s| s.to_string());
        (collection, name, sub)
    }

    fn answer(&self, request: &Request) -> (u16, Value) {
        let (collection, name, sub) = Self::split(&request.path);
        let mut w = self.world.lock().unwrap();
        let not_found = |name: &str| status(404, "NotFound", &format!("\"{name}\" not found"));
        match (request.method.as_str(), name, sub) {
            ("GET", None, _) => {
                if let Some(n) = w.stale.get_mut(&collection).filter(|n| **n > 0) {
                    *n -= 1;
                    return (
                        200,
                        json!({"metadata": {"resourceVersion": "1"}, "items": []}),
                    );
                }
                let selector = query_value(&request.query, "labelSelector");
                let items: Vec<Value> = w
                    .objects
                    .iter()
                    .filter(|((c, _), o)| *c == collection && selects(selector.as_deref(), o))
                    .map(|(_, o)| o.clone())
                    .collect();
                (
                    200,
                    json!({"metadata": {"resourceVersion": w.rv.to_string()}, "items": items}),
                )
            }
            ("GET", Some(name), None) => match w.objects.get(&(collection, name.clone())) {
                Some(o) => (200, o.clone()),
                None => (404, not_found(&name)),
            },
            ("POST", None, _) => match request.body.clone() {
                Some(object) => match Self::insert(&mut w, &collection, object) {
                    Ok(created) => (201, created),
                    Err(status) => (409, status),
                },
                None => (400, status(400, "BadRequest", "no body")),
            },
            ("PUT", Some(name), sub) => {
                let key = (collection.clone(), name.clone());
                let Some(current) = w.objects.get(&key).cloned() else {
                    return (404, not_found(&name));
                };
                let Some(body) = request.body.clone() else {
                    return (400, status(400, "BadRequest", "no body"));
                };
                if body["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"] {
                    return conflict(&name);
                }
                if !body["metadata"]["uid"].is_null()
                    && body["metadata"]["uid"] != current["metadata"]["uid"]
                {
                    return (409, status(409, "Conflict", "uid precondition failed"));
                }
                let mut updated = current.clone();
                if sub.as_deref() == Some("status") {
                    updated["status"] = body["status"].clone();
                    *w.status_writes.entry(key).or_default() += 1;
                } else {
                    updated["spec"] = body["spec"].clone();
                    if updated["spec"] != current["spec"] {
                        let g = current["metadata"]["generation"].as_i64().unwrap_or(1);
                        updated["metadata"]["generation"] = (g + 1).into();
                    }
                }
                (200, Self::store(&mut w, &collection, "MODIFIED", updated))
            }
            ("DELETE", Some(name), None) => {
                match w.objects.remove(&(collection.clone(), name.clone())) {
                    Some(object) => {
                        w.rv += 1;
                        let rv = w.rv;
                        w.history.push(Change {
                            rv,
                            collection,
                            kind: "DELETED",
                            object: object.clone(),
                        });
                        (200, object)
                    }
                    None => (404, not_found(&name)),
                }
            }
            _ => (
                405,
                status(405, "MethodNotAllowed", "not served by the fake"),
            ),
        }
    }

    /// Streams the changes of a collection after the watch's resourceVersion.
    async fn watch(&self, socket: &mut TcpStream, path: &str, query: &str) {
        let (collection, _, _) = Self::split(path);
        let selector = query_value(query, "labelSelector");
        let from: u64 = query_value(query, "resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
        if socket.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let expired = self.world.lock().unwrap().compacted > from;
        if expired {
            let event = json!({"type": "ERROR", "object": status(410, "Expired",
                &format!("too old resource version: {from}"))});
            let _ = chunk(socket, &event).await;
            let _ = socket.write_all(b"0\r\n\r\n").await;
            return;
        }
        let mut seen = from;
        let bookmark = {
            let w = self.world.lock().unwrap();
            json!({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": w.rv.to_string()}}})
        };
        // A bookmark first carries the current version, as a real one would later.
        if from > 0 && !chunk(socket, &bookmark).await {
            return;
        }
        let mut changed = self.changed.subscribe();
        loop {
            let events: Vec<(u64, Value)> = {
                let w = self.world.lock().unwrap();
                w.history
                    .iter()
                    .filter(|c| c.rv > seen && c.collection == collection)
                    .filter(|c| selects(selector.as_deref(), &c.object))
                    .map(|c| (c.rv, json!({"type": c.kind, "object": c.object})))
                    .collect()
            };
            for (rv, event) in events {
                seen = rv;
                if !chunk(socket, &event).await {
                    return;
                }
            }
            let mut byte = [0u8; 1];
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                r = socket.read(&mut byte) => if matches!(r, Ok(0) | Err(_)) { return },
            }
        }
    }
}

fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .to_string()
        })
    })
}

/// `k=v[,k=v]` label selectors.
fn selects(selector: Option<&str>, object: &Value) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    selector.split(',').all(|term| match term.split_once('=') {
        Some((k, v)) => object["metadata"]["labels"][k].as_str() == Some(v),
        None => !object["metadata"]["labels"][term].is_null(),
    })
}

async fn chunk(socket: &mut TcpStream, event: &Value) -> bool {
    let mut line = event.to_string().into_bytes();
    line.push(b'\n');
    let framed = [format!("{:x}\r\n", line.len()).as_bytes(), &line, b"\r\n"].concat();
    socket.write_all(&framed).await.is_ok() && socket.flush().await.is_ok()
}

async fn respond(socket: &mut TcpStream, code: u16, body: &Value) {
    let body = body.to_string();
    let head = format!(
        "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = socket.write_all(head.as_bytes()).await;
    let _ = socket.write_all(body.as_bytes()).await;
    let _ = socket.shutdown().await;
}

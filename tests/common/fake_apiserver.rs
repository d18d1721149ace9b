//! A scriptable fake kube-apiserver: plain HTTP/1.1 on 127.0.0.1, one request per
//! connection (`connection: close` on every answer).
//!
//! Routes match method + exact target (`/path?query`). Each route holds a sequence of
//! answers: the first call gets the first answer, later calls the next one, and once
//! the sequence is used up every call gets the last one. An answer is a whole body, a
//! body sent in chunks over time, or an endless stream, any of them possibly delayed
//! (latency). A chunked answer can also be paced by the test, chunk by chunk. Every
//! request is recorded in arrival order, and so is every streamed or delayed answer
//! the client closed before it was complete (a write failed or the client's side
//! reached EOF).
//!
//! Declare it with `#[path = "common/fake_apiserver.rs"] mod fake_apiserver;`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Makes the `n`th line (from 0) of an endless stream.
pub type LineMaker = Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync>;

/// One answer of a route.
#[derive(Clone)]
pub enum Answer {
    /// The whole body at once, with `content-length`.
    Full {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    /// A chunked body: each chunk is written after its delay (counted from the previous
    /// chunk, the first from the headers), then the body ends.
    Chunks {
        status: u16,
        content_type: String,
        chunks: Vec<(Duration, Vec<u8>)>,
    },
    /// A chunked body that never ends: every `period`, `line(n)` is written (or nothing,
    /// when `line` is `None`: a quiet watch).
    Endless {
        status: u16,
        content_type: String,
        period: Duration,
        line: Option<LineMaker>,
    },
    /// Nothing for this long (the headers included), then the inner answer: latency.
    Delayed(Duration, Box<Answer>),
}

impl Answer {
    pub fn full(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::Full {
            status,
            content_type: content_type.to_string(),
            body: body.into(),
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::full(status, "application/json", value.to_string())
    }

    pub fn chunks(status: u16, content_type: &str, chunks: Vec<(Duration, Vec<u8>)>) -> Self {
        Self::Chunks {
            status,
            content_type: content_type.to_string(),
            chunks,
        }
    }

    pub fn endless(
        status: u16,
        content_type: &str,
        period: Duration,
        line: Option<LineMaker>,
    ) -> Self {
        Self::Endless {
            status,
            content_type: content_type.to_string(),
            period,
            line,
        }
    }

    /// This answer after `delay` (nothing is sent before, not even the headers).
    pub fn after(self, delay: Duration) -> Self {
        Self::Delayed(delay, Box::new(self))
    }
}

struct Route {
    answers: Vec<Answer>,
    calls: usize,
}

#[derive(Default)]
struct Shared {
    routes: HashMap<(String, String), Route>,
    requests: Vec<String>,
    closed: Vec<String>,
    gates: HashMap<String, Arc<Semaphore>>,
}

/// The fake apiserver. Cheap to clone; clones share routes and records.
#[derive(Clone)]
pub struct FakeApiserver {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

impl FakeApiserver {
    /// Binds 127.0.0.1:0 and serves until the runtime ends.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let server = Self { addr, shared };
        let accepting = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let server = accepting.clone();
                tokio::spawn(async move { server.serve(socket).await });
            }
        });
        server
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds (or replaces) the answers of `method target`, `target` being `/path?query`
    /// exactly as the client sends it.
    pub fn route(&self, method: &str, target: &str, answers: Vec<Answer>) -> &Self {
        assert!(!answers.is_empty(), "a route needs an answer");
        self.shared.lock().unwrap().routes.insert(
            (method.to_string(), target.to_string()),
            Route { answers, calls: 0 },
        );
        self
    }

    /// `GET target` answered with these answers in turn.
    pub fn get(&self, target: &str, answers: Vec<Answer>) -> &Self {
        self.route("GET", target, answers)
    }

    /// Paces the chunked answers of `target`: from now on, each chunk that has a delay
    /// is also held until [`FakeApiserver::release`] lets one more through (chunks with
    /// no delay, sent together in the recording, still go together).
    pub fn pace(&self, target: &str) -> &Self {
        self.shared
            .lock()
            .unwrap()
            .gates
            .insert(target.to_string(), Arc::new(Semaphore::new(0)));
        self
    }

    /// Lets one more held chunk of `target` go (see [`FakeApiserver::pace`]).
    pub fn release(&self, target: &str) {
        let gate = self.shared.lock().unwrap().gates.get(target).cloned();
        gate.expect("release of a target that is not paced")
            .add_permits(1);
    }

    /// Every request so far, `METHOD /path?query`, in arrival order.
    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().unwrap().requests.clone()
    }

    /// How many requests had exactly this target (any method).
    pub fn count(&self, target: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.split_once(' ').map(|(_, t)| t) == Some(target))
            .count()
    }

    /// The targets of the streaming answers the client closed before they were complete.
    pub fn closed(&self) -> Vec<String> {
        self.shared.lock().unwrap().closed.clone()
    }

    /// Waits (polling every 10 ms) until `check` holds, at most `limit`. Returns whether
    /// it held.
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

    async fn serve(&self, mut socket: TcpStream) {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
            if head.len() > 64 * 1024 {
                return;
            }
        }
        let head = String::from_utf8_lossy(&head);
        let mut words = head.lines().next().unwrap_or_default().split_whitespace();
        let method = words.next().unwrap_or_default().to_string();
        let target = words.next().unwrap_or_default().to_string();
        let answer = {
            let mut shared = self.shared.lock().unwrap();
            shared.requests.push(format!("{method} {target}"));
            shared
                .routes
                .get_mut(&(method.clone(), target.clone()))
                .map(|route| {
                    let i = route.calls.min(route.answers.len() - 1);
                    route.calls += 1;
                    route.answers[i].clone()
                })
        };
        let mut answer = answer.unwrap_or_else(|| {
            // What the apiserver answers for a path it does not serve.
            Answer::json(
                404,
                &serde_json::json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {},
                    "status": "Failure", "message": "the server could not find the requested resource",
                    "reason": "NotFound", "details": {}, "code": 404
                }),
            )
        });
        while let Answer::Delayed(delay, inner) = answer {
            if !wait_or_closed(&mut socket, delay).await {
                return self.mark_closed(&target);
            }
            answer = *inner;
        }
        match answer {
            Answer::Delayed(..) => unreachable!("unwrapped above"),
            Answer::Full {
                status,
                content_type,
                body,
            } => {
                let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
                if !content_type.is_empty() {
                    head.push_str(&format!("content-type: {content_type}\r\n"));
                }
                // A 204 has no body, and says nothing of its length.
                if status != 204 {
                    head.push_str(&format!("content-length: {}\r\n", body.len()));
                }
                head.push_str("connection: close\r\n\r\n");
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                let _ = socket.shutdown().await;
            }
            Answer::Chunks {
                status,
                content_type,
                chunks,
            } => {
                if !self.stream_head(&mut socket, status, &content_type).await {
                    return self.mark_closed(&target);
                }
                let gate = self.shared.lock().unwrap().gates.get(&target).cloned();
                for (delay, bytes) in chunks {
                    if let Some(gate) = gate.as_ref().filter(|_| !delay.is_zero()) {
                        let mut byte = [0u8; 1];
                        tokio::select! {
                            permit = gate.acquire() => permit.unwrap().forget(),
                            r = socket.read(&mut byte) => if matches!(r, Ok(0) | Err(_)) {
                                return self.mark_closed(&target);
                            },
                        }
                    }
                    if !delay.is_zero() && !wait_or_closed(&mut socket, delay).await {
                        return self.mark_closed(&target);
                    }
                    if bytes.is_empty() {
                        continue;
                    }
                    if !write_chunk(&mut socket, &bytes).await {
                        return self.mark_closed(&target);
                    }
                }
                let _ = socket.write_all(b"0\r\n\r\n").await;
                let _ = socket.shutdown().await;
            }
            Answer::Endless {
                status,
                content_type,
                period,
                line,
            } => {
                if !self.stream_head(&mut socket, status, &content_type).await {
                    return self.mark_closed(&target);
                }
                for n in 0.. {
                    if !wait_or_closed(&mut socket, period).await {
                        return self.mark_closed(&target);
                    }
                    if let Some(line) = &line
                        && !write_chunk(&mut socket, &line(n)).await
                    {
                        return self.mark_closed(&target);
                    }
                }
            }
        }
    }

    async fn stream_head(&self, socket: &mut TcpStream, status: u16, content_type: &str) -> bool {
        let head = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
            reason(status)
        );
        socket.write_all(head.as_bytes()).await.is_ok() && socket.flush().await.is_ok()
    }

    fn mark_closed(&self, target: &str) {
        self.shared.lock().unwrap().closed.push(target.to_string());
    }
}

async fn write_chunk(socket: &mut TcpStream, bytes: &[u8]) -> bool {
    let framed = [format!("{:x}\r\n", bytes.len()).as_bytes(), bytes, b"\r\n"].concat();
    socket.write_all(&framed).await.is_ok() && socket.flush().await.is_ok()
}

/// Sleeps for `delay` unless the client closes its side first (the request is fully
/// read, so any read that ends or fails means the client went away). Returns false when
/// the client is gone.
async fn wait_or_closed(socket: &mut TcpStream, delay: Duration) -> bool {
    let mut byte = [0u8; 1];
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        r = socket.read(&mut byte) => !matches!(r, Ok(0) | Err(_)),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        410 => "Gone",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Unknown",
    }
}

//! Memory stays bounded whatever the log size: a 1 GiB log is served within the
//! configured cap, the heap never grows by much more than the cap, and the rest of the
//! stream is never pulled from the apiserver.
//!
//! The apiserver here is a raw HTTP/1.1 loopback server (plain HTTP, so no credentials
//! are sent) that generates the log lazily; a counting allocator measures the heap.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use sparktest_k8s::state::{Connection, LogLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const GIB: u64 = 1 << 30;
const CAP: u64 = 1 << 20;

/// Serves the job, its pod list and a 1 GiB log, counting the log bytes written.
async fn fake_apiserver(written: Arc<AtomicU64>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let job = common::recorded("09_job_get_completed").body;
    let pods = common::recorded("19_pods_list_job_completed").body;
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (job, pods, written) = (job.clone(), pods.clone(), written.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                let target = head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                if target.contains("/log") {
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
                        .await;
                    let line = b"2026-11-26T11:48:19.000000000Z a log line of a very chatty test\n";
                    let chunk: Vec<u8> = line.iter().copied().cycle().take(64 * 1024).collect();
                    let framed =
                        [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
                    let mut sent = 0u64;
                    while sent < GIB {
                        if socket.write_all(&framed).await.is_err() {
                            return;
                        }
                        sent += chunk.len() as u64;
                        written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    }
                    let _ = socket.write_all(b"0\r\n\r\n").await;
                } else {
                    let body = if target.contains("/pods") {
                        &pods
                    } else {
                        &job
                    };
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                    let _ = socket.write_all(body).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_one_gib_log_is_served_within_the_cap_with_bounded_memory() {
    let written = Arc::new(AtomicU64::new(0));
    let addr = fake_apiserver(written.clone()).await;
    let client = common::plain_http_client(
        &format!("http://{addr}"),
        std::time::Duration::from_secs(30),
    );
    let state = sparktest_k8s::AppState::new(
        Connection {
            client: Ok(client),
            source: None,
        },
        "default".parse().unwrap(),
        LogLimits {
            max_lines: 1000,
            max_bytes: CAP,
        },
    );

    let before = CURRENT.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let (code, body) = common::call(&state, "GET", "/api/k8s/jobs/test-job-123/logs").await;
    let peak_growth = PEAK.load(Ordering::Relaxed) - before;

    assert_eq!(code, 200);
    assert_eq!(body["truncated"], true);
    assert_eq!(body["logs"].as_str().unwrap().len() as u64, CAP);
    // The log is held once, then once more as the JSON reply (and once parsed back by
    // this test): a handful of caps, never the gigabyte.
    assert!(
        peak_growth < 8 * CAP as usize,
        "heap grew by {peak_growth} bytes for a {CAP}-byte cap"
    );
    // Reading stopped at the cap: the server could only push what fits in socket
    // buffers beyond it, not the gigabyte.
    let sent = written.load(Ordering::Relaxed);
    assert!(sent < 64 * CAP, "the apiserver streamed {sent} bytes");
}

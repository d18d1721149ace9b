//! A real S3 server for tests: s3s-fs (crates.io), which verifies every request's SigV4
//! signature and payload hash and keeps each object as the file `ROOT/BUCKET/KEY` (a
//! bucket is a directory of ROOT). Found through `S3S_FS`, else `s3s-fs` on `PATH`, else
//! `/tmp/s3s/bin/s3s-fs`; without it a test prints how to install it and passes, unless
//! `CI` is set: then it fails. Included with `#[path]` by the tests that need it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const INSTALL: &str =
    "cargo install s3s-fs --version 0.14.1 --features binary --locked --root /tmp/s3s";
pub const ACCESS_KEY: &str = "AKIDS3STORETEST";
pub const SECRET_KEY: &str = "sk-3f9a1c0e5b7d4e2a9c8b6d4f2e0a1b3c";
pub const BUCKET: &str = "archive-test";

/// s3s-fs on a free loopback port with its own root directory; killed on drop.
pub struct S3Server {
    child: Child,
    port: u16,
    root: tempfile::TempDir,
}

impl S3Server {
    pub fn start(bin: &Path) -> Self {
        let root = tempfile::tempdir().unwrap();
        // A bucket of s3s-fs is a directory of its root.
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let log_path = root.path().join("s3s-fs.log");
        for _attempt in 0..5 {
            let port = free_port();
            let mut child = spawn(bin, port, root.path(), &log_path);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if child.try_wait().unwrap().is_some() {
                    break; // the port was taken meanwhile: another one
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Self { child, port, root };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "s3s-fs did not listen within 10 s: {}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!(
            "s3s-fs did not start: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The file s3s-fs keeps an object in.
    pub fn object_file(&self, full_key: &str) -> PathBuf {
        self.root.path().join(BUCKET).join(full_key)
    }

    /// Starts the server again on the same port and root (the store back after an
    /// outage).
    pub fn restart(&mut self, bin: &Path) {
        self.stop();
        self.child = spawn(
            bin,
            self.port,
            self.root.path(),
            &self.root.path().join("s3s-fs.log"),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not listen again within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn s3s_fs() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("S3S_FS") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("s3s-fs"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        let fallback = Path::new("/tmp/s3s/bin/s3s-fs");
        fallback.is_file().then(|| fallback.to_path_buf())
    })
}

/// The server, or `None` (after a notice) when s3s-fs is not installed outside CI.
pub fn server() -> Option<S3Server> {
    match s3s_fs() {
        Some(bin) => Some(S3Server::start(&bin)),
        None if std::env::var_os("CI").is_some() => {
            panic!("s3s-fs is not installed (S3S_FS, PATH, /tmp/s3s/bin): {INSTALL}")
        }
        None => {
            eprintln!(
                "NOTICE: s3s-fs not found (S3S_FS, PATH, /tmp/s3s/bin/s3s-fs): the S3 store \
                 test is skipped. Install it with: {INSTALL}"
            );
            None
        }
    }
}

fn spawn(bin: &Path, port: u16, root: &Path, log_path: &Path) -> Child {
    let log = std::fs::File::create(log_path).unwrap();
    Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()))
}

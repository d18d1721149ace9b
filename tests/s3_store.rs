//! The S3 archive store against a real S3 server: s3s-fs (crates.io), which verifies
//! every request's SigV4 signature and payload hash and keeps each object as the file
//! `ROOT/BUCKET/KEY` (a bucket is a directory of ROOT).
//!
//! The binary is found through `S3S_FS`, else `s3s-fs` on `PATH`, else
//! `/tmp/s3s/bin/s3s-fs`. Without it each test prints how to install it and passes,
//! unless `CI` is set: then it fails.

use std::collections::HashMap;
use std::io::Write;

use std::time::{Duration, Instant};

use bytes::Bytes;
use sparktest_k8s::archive::s3::{S3Config, S3Options, S3Store, StoreError};
use sparktest_k8s::archive::sigv4;

#[path = "common/s3s.rs"]
mod s3s;

use s3s::{ACCESS_KEY, BUCKET, S3Server, SECRET_KEY, server};

const SESSION_TOKEN: &str = "tok-7b1e4d2c9a8f6e5d3c2b1a0f9e8d7c6b";

/// The configuration the archive would read from these variables.
fn config(location: &str, endpoint: &str, secret: &str, token: Option<&str>) -> S3Config {
    let mut vars = HashMap::from([
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", secret.to_string()),
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
    ]);
    if let Some(token) = token {
        vars.insert("AWS_SESSION_TOKEN", token.to_string());
    }
    S3Config::parse(location, &|name| vars.get(name).cloned()).unwrap()
}

fn store_at(server: &S3Server, options: S3Options) -> S3Store {
    let location = format!("s3://{BUCKET}/runs");
    S3Store::with_options(
        config(&location, &server.endpoint(), SECRET_KEY, None),
        options,
    )
    .unwrap()
}

fn store(server: &S3Server) -> S3Store {
    store_at(server, S3Options::default())
}

/// No error text carries a credential.
fn assert_clean(error: &StoreError) {
    let text = format!("{error} {error:?}");
    for secret in [SECRET_KEY, SESSION_TOKEN, "wrong-secret"] {
        assert!(!text.contains(secret), "a credential in {text}");
    }
}

fn sha256(bytes: &[u8]) -> String {
    sigv4::sha256_hex(bytes)
}

/// Keys with spaces, non-ASCII letters, slashes and every character URI-encoding
/// escapes, among them a literal `%20` (which must stay three characters).
const AWKWARD_KEYS: &[&str] = &[
    "team a/ünïcødé ሴ/pod-1/main.log.gz",
    "plus+equals=amp&semi;hash#q?.bin",
    "percent%20literal/50% done",
    "tilde~_paren(1)!*'$@,:.json",
    "deep/a/b/c/d/e/f/g.txt",
];

#[tokio::test]
async fn objects_round_trip_byte_exact_under_awkward_keys() {
    let Some(server) = server() else { return };
    let store = store(&server);
    let bytes: Bytes = (0..=255u8).cycle().take(70_000).collect::<Vec<_>>().into();
    for (i, key) in AWKWARD_KEYS.iter().enumerate() {
        let body = bytes.slice(i..);
        store.put(key, body.clone()).await.unwrap();
        assert_eq!(
            store.get(key, 1 << 20).await.unwrap(),
            Some(body.clone()),
            "{key}"
        );
        // Stored under exactly this key: the path was encoded once and decoded once.
        let on_disk = std::fs::read(server.object_file(&format!("runs/{key}"))).unwrap();
        assert_eq!(on_disk, body, "{key}");
    }
    let mut want: Vec<String> = AWKWARD_KEYS.iter().map(|k| k.to_string()).collect();
    want.sort();
    assert_eq!(store.list("").await.unwrap(), want);
    assert_eq!(store.list("team a/").await.unwrap(), [AWKWARD_KEYS[0]]);
    // Overwriting is a whole-object replace.
    store
        .put(AWKWARD_KEYS[0], Bytes::from_static(b"v2"))
        .await
        .unwrap();
    assert_eq!(
        store.get(AWKWARD_KEYS[0], 10).await.unwrap().as_deref(),
        Some(&b"v2"[..])
    );
}

#[tokio::test]
async fn a_large_file_is_streamed_and_stored_byte_exact() {
    let Some(server) = server() else { return };
    let store = store(&server);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spill.log.gz");
    // 20 MiB of xorshift noise, written and hashed a MiB at a time.
    let len: u64 = 20 * 1024 * 1024;
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut chunk = vec![0u8; 1024 * 1024];
        for _ in 0..len / chunk.len() as u64 {
            for word in chunk.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                word.copy_from_slice(&x.to_le_bytes());
            }
            hash.update(&chunk);
            file.write_all(&chunk).unwrap();
        }
        file.flush().unwrap();
    }
    let sha = sigv4::hex(hash.finish().as_ref());
    let key = "ns/job/logs/pod/main.log.gz";
    store.put_file(key, &path, len, &sha).await.unwrap();

    let on_disk = std::fs::read(server.object_file(&format!("runs/{key}"))).unwrap();
    assert_eq!(on_disk.len() as u64, len);
    assert_eq!(sha256(&on_disk), sha, "the stored object is the file");
    let got = store.get(key, len).await.unwrap().unwrap();
    assert_eq!(sha256(&got), sha, "GET gives it back whole");

    // A GET past its bound is refused, not truncated.
    let err = store.get(key, len - 1).await.unwrap_err();
    assert!(matches!(err, StoreError::Refused(_)), "{err}");

    // A hash that is not the file's: the store checks it and keeps nothing. (AWS answers
    // 400 XAmzContentSHA256Mismatch, Refused; s3s-fs 500 InternalError, Unavailable.)
    let wrong = sha256(b"something else");
    let err = store
        .put_file("ns/job/logs/pod/other.log.gz", &path, len, &wrong)
        .await
        .unwrap_err();
    assert_clean(&err);
    assert_eq!(
        store
            .get("ns/job/logs/pod/other.log.gz", len)
            .await
            .unwrap(),
        None
    );

    // A length that is not the file's is refused before anything is sent.
    let err = store.put_file(key, &path, len + 1, &sha).await.unwrap_err();
    assert!(matches!(err, StoreError::Refused(_)), "{err}");
}

#[tokio::test]
async fn a_missing_key_is_none_and_deleting_it_succeeds() {
    let Some(server) = server() else { return };
    let store = store(&server);
    assert_eq!(store.get("ns/nothing/run.json", 1024).await.unwrap(), None);
    store.delete("ns/nothing/run.json").await.unwrap();
    assert!(store.list("ns/").await.unwrap().is_empty());
}

#[tokio::test]
async fn delete_removes_the_object() {
    let Some(server) = server() else { return };
    let store = store(&server);
    store
        .put("ns/job/run.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    store
        .put("ns/job/logs/p/c.log.gz", Bytes::from_static(b"x"))
        .await
        .unwrap();
    store.delete("ns/job/run.json").await.unwrap();
    assert_eq!(store.get("ns/job/run.json", 1024).await.unwrap(), None);
    assert!(!server.object_file("runs/ns/job/run.json").exists());
    assert_eq!(store.list("ns/").await.unwrap(), ["ns/job/logs/p/c.log.gz"]);
}

#[tokio::test]
async fn listing_follows_continuation_tokens_and_stays_under_the_prefix() {
    let Some(server) = server() else { return };
    // Four keys a page: 23 keys are six pages.
    let store = store_at(
        &server,
        S3Options {
            page_size: 4,
            ..S3Options::default()
        },
    );
    let mut want = Vec::new();
    for i in 0..23 {
        let key = format!("ns/job-{i:02}/run.json");
        store.put(&key, Bytes::from(key.clone())).await.unwrap();
        want.push(key);
    }
    store
        .put("other/x", Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(store.list("ns/").await.unwrap(), want);
    assert_eq!(store.list("").await.unwrap().len(), 24);
    assert_eq!(store.list("ns/job-1").await.unwrap().len(), 10);

    // Another prefix of the same bucket sees none of it.
    let elsewhere = S3Store::new(config(
        &format!("s3://{BUCKET}/elsewhere"),
        &server.endpoint(),
        SECRET_KEY,
        None,
    ))
    .unwrap();
    assert!(elsewhere.list("").await.unwrap().is_empty());
    // And the bucket's root sees it under `runs/`.
    let root = S3Store::new(config(
        &format!("s3://{BUCKET}"),
        &server.endpoint(),
        SECRET_KEY,
        None,
    ))
    .unwrap();
    assert_eq!(root.list("runs/other").await.unwrap(), ["runs/other/x"]);
}

#[tokio::test]
async fn a_wrong_secret_key_is_refused_and_never_printed() {
    let Some(server) = server() else { return };
    store(&server)
        .put("ns/job/run.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let wrong = S3Store::new(config(
        &format!("s3://{BUCKET}/runs"),
        &server.endpoint(),
        "wrong-secret",
        None,
    ))
    .unwrap();
    let errors = [
        wrong
            .put("ns/job/run.json", Bytes::from_static(b"{}"))
            .await
            .unwrap_err(),
        // A refusal is not a missing object.
        wrong.get("ns/job/run.json", 1024).await.unwrap_err(),
        wrong.list("").await.unwrap_err(),
        wrong.delete("ns/job/run.json").await.unwrap_err(),
    ];
    for error in &errors {
        eprintln!("{error}");
        assert!(matches!(error, StoreError::Refused(_)), "{error}");
        assert!(
            error.to_string().contains("SignatureDoesNotMatch"),
            "{error}"
        );
        assert!(
            error.to_string().contains(&format!("s3://{BUCKET}/runs")),
            "{error}"
        );
        assert_clean(error);
    }
    // Nothing was changed.
    assert!(server.object_file("runs/ns/job/run.json").exists());
}

#[tokio::test]
async fn a_session_token_is_sent_and_signed() {
    let Some(server) = server() else { return };
    let store = S3Store::new(config(
        &format!("s3://{BUCKET}/runs"),
        &server.endpoint(),
        SECRET_KEY,
        Some(SESSION_TOKEN),
    ))
    .unwrap();
    store
        .put("ns/job/run.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    assert_eq!(
        store.get("ns/job/run.json", 10).await.unwrap().as_deref(),
        Some(&b"{}"[..])
    );
}

#[tokio::test]
async fn a_stopped_server_is_unavailable_at_once() {
    let Some(mut server) = server() else { return };
    let store = store(&server);
    store
        .put("ns/job/run.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    server.stop();
    let started = Instant::now();
    let errors = [
        store
            .put("ns/job/run.json", Bytes::from_static(b"{}"))
            .await
            .unwrap_err(),
        store.get("ns/job/run.json", 10).await.unwrap_err(),
        store.list("").await.unwrap_err(),
        store.delete("ns/job/run.json").await.unwrap_err(),
    ];
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    for error in &errors {
        eprintln!("{error}");
        assert!(matches!(error, StoreError::Unavailable(_)), "{error}");
        assert_clean(error);
    }
}

/// No s3s-fs needed: a listener that accepts and never answers.
#[tokio::test]
async fn a_store_that_never_answers_is_unavailable_after_the_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let store = S3Store::with_options(
        config(
            "s3://bucket/runs",
            &endpoint,
            SECRET_KEY,
            Some(SESSION_TOKEN),
        ),
        S3Options {
            request_timeout: Duration::from_millis(300),
            ..S3Options::default()
        },
    )
    .unwrap();
    let started = Instant::now();
    let error = store.get("ns/job/run.json", 10).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(error, StoreError::Unavailable(_)), "{error}");
    assert!(error.to_string().contains("no answer within"), "{error}");
    assert_clean(&error);
    held.abort();
}

#[test]
fn debug_of_the_config_and_store_shows_no_secret() {
    let config = config(
        "s3://bucket/runs",
        "http://127.0.0.1:9",
        SECRET_KEY,
        Some(SESSION_TOKEN),
    );
    let store = S3Store::new(config.clone()).unwrap();
    let printed = format!("{config:?} {config:#?} {store:?} {}", store.describe());
    assert!(
        !printed.contains(SECRET_KEY) && !printed.contains(SESSION_TOKEN),
        "{printed}"
    );
    assert!(printed.contains("s3://bucket/runs"), "{printed}");
}

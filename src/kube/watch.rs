//! Kubernetes watch done right: list, then watch from the list's `resourceVersion` with
//! bookmarks; reconnect from the last version seen when the apiserver closes the watch;
//! re-list when that version has expired (`410 Gone`, which arrives as an `ERROR` event
//! inside a 200 answer, or as a real HTTP 410).

use std::marker::PhantomData;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::Method;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::Status;
use super::resources::{List, query};
use super::{Client, KubeError};

/// The apiserver closes a watch after this long (it picks a random 5–10 min otherwise);
/// the watcher then continues from the last resourceVersion.
pub const WATCH_TIMEOUT: Duration = Duration::from_secs(290);
/// A watch that sends nothing for this long (not even a bookmark) is taken as dead.
const IDLE_LIMIT: Duration = Duration::from_secs(WATCH_TIMEOUT.as_secs() + 30);
/// A watch that ends sooner than this after it was opened is not reopened at once (a
/// proxy that closes watches immediately must not turn the watcher into a busy loop).
const MIN_WATCH_LIFE: Duration = Duration::from_secs(1);
/// One watch event may not be longer than this (a Job or Pod is a few KiB).
const MAX_EVENT: usize = 4 * 1024 * 1024;

/// What a watcher reports.
#[derive(Debug)]
pub enum Event<T> {
    /// A full list: at the start and after every re-list. Replace what you hold.
    Restarted(Vec<T>),
    /// An object was added or modified.
    Applied(T),
    /// An object was deleted (its last state).
    Deleted(T),
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: String,
    object: serde_json::Value,
}

/// Lists then watches one collection (with its selectors), forever.
pub struct Watcher<T> {
    client: Client,
    /// The collection path with its selector query (`...?fieldSelector=...`), or without.
    path: String,
    resource_version: Option<String>,
    stream: Option<Lines>,
    /// When the current (or last) watch was opened; `None` after a list.
    opened: Option<tokio::time::Instant>,
    /// List this many objects a request (`limit` and `continue`), or all at once.
    page: Option<u32>,
    _t: PhantomData<fn() -> T>,
}

/// A list whose `continue` token expires while it is paged through is started over at
/// most this many times.
const MAX_LIST_RESTARTS: u32 = 3;

impl<T: DeserializeOwned> Watcher<T> {
    /// `collection` is a list path such as `/apis/batch/v1/namespaces/ns/jobs`,
    /// `selectors` its query pairs (already encoded, e.g. `fieldSelector=a%3Db`).
    pub fn new(client: Client, collection: &str, selectors: &str) -> Self {
        let path = if selectors.is_empty() {
            format!("{collection}?")
        } else {
            format!("{collection}?{selectors}&")
        };
        Self {
            client,
            path,
            resource_version: None,
            stream: None,
            opened: None,
            page: None,
            _t: PhantomData,
        }
    }

    /// Lists in pages of `size` (client-go's informers list 500 at a time): a
    /// collection of any size is read without one answer over the client's body limit.
    pub fn paged(mut self, size: u32) -> Self {
        self.page = Some(size);
        self
    }

    /// The next event. Network and apiserver errors are returned; calling again retries
    /// from where the watcher was (the caller decides on backoff).
    pub async fn next(&mut self) -> Result<Event<T>, KubeError> {
        loop {
            let Some(rv) = self.resource_version.clone() else {
                return self.relist().await;
            };
            if self.stream.is_none() {
                if let Some(since) = self.opened.map(|t| t.elapsed())
                    && since < MIN_WATCH_LIFE
                {
                    tokio::time::sleep(MIN_WATCH_LIFE - since).await;
                }
                self.opened = Some(tokio::time::Instant::now());
                let path = format!(
                    "{}watch=true&allowWatchBookmarks=true&resourceVersion={}&timeoutSeconds={}",
                    self.path,
                    super::resources::encode(&rv),
                    WATCH_TIMEOUT.as_secs()
                );
                match self.client.send(Method::GET, &path, None).await {
                    Ok(response) => self.stream = Some(Lines::new(response.into_body())),
                    Err(e) if e.code() == Some(410) => {
                        self.resource_version = None;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let line = match self.stream.as_mut().map(Lines::next) {
                Some(next) => match tokio::time::timeout(IDLE_LIMIT, next).await {
                    Ok(line) => line,
                    Err(_) => Ok(None),
                },
                None => Ok(None),
            };
            let line = match line {
                Ok(Some(line)) => line,
                // The apiserver closed the watch (timeoutSeconds) or it went idle:
                // continue from the last resourceVersion.
                Ok(None) => {
                    self.stream = None;
                    continue;
                }
                Err(e) => {
                    self.stream = None;
                    return Err(e);
                }
            };
            let event: RawEvent = serde_json::from_slice(&line)
                .map_err(|e| KubeError::Decode(format!("watch event: {e}")))?;
            match event.kind.as_str() {
                "ADDED" | "MODIFIED" | "DELETED" => {
                    if let Some(rv) = event.object["metadata"]["resourceVersion"].as_str() {
                        self.resource_version = Some(rv.to_string());
                    }
                    let object: T = serde_json::from_value(event.object)
                        .map_err(|e| KubeError::Decode(format!("watch object: {e}")))?;
                    return Ok(if event.kind == "DELETED" {
                        Event::Deleted(object)
                    } else {
                        Event::Applied(object)
                    });
                }
                // A bookmark carries only a newer resourceVersion (its object is an
                // empty shell, e.g. `"containers": null`: never decoded as T).
                "BOOKMARK" => {
                    if let Some(rv) = event.object["metadata"]["resourceVersion"].as_str() {
                        self.resource_version = Some(rv.to_string());
                    }
                }
                "ERROR" => {
                    let status: Status = serde_json::from_value(event.object).unwrap_or_default();
                    self.stream = None;
                    if status.code == Some(410) {
                        tracing::debug!(message = ?status.message, "watch expired: re-listing");
                        self.resource_version = None;
                        continue;
                    }
                    let code = status.code.unwrap_or(500);
                    return Err(KubeError::Api {
                        code,
                        status: Box::new(status),
                    });
                }
                other => {
                    tracing::debug!(kind = other, "unknown watch event type ignored");
                }
            }
        }
    }

    async fn relist(&mut self) -> Result<Event<T>, KubeError> {
        let Some(size) = self.page else {
            let path = self.path.trim_end_matches(['?', '&']).to_string();
            let list: List<T> = self.client.get_json(&path).await?;
            return Ok(self.listed(list.metadata.resource_version, list.items));
        };
        // Every page of one list is read at the first page's resourceVersion, so the
        // pages together are one consistent snapshot to watch from.
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        let mut restarts = 0;
        loop {
            let mut pairs = vec![("limit", size.to_string())];
            if let Some(t) = &token {
                pairs.push(("continue", t.clone()));
            }
            let path = format!("{}{}", self.path, &query(&pairs)[1..]);
            match self.client.get_json::<List<T>>(&path).await {
                Ok(page) => {
                    items.extend(page.items);
                    token = page.metadata.continue_token.filter(|t| !t.is_empty());
                    if token.is_none() {
                        return Ok(self.listed(page.metadata.resource_version, items));
                    }
                }
                // The snapshot expired between pages (410): list again from the start.
                Err(KubeError::Api { code: 410, .. })
                    if token.is_some() && restarts < MAX_LIST_RESTARTS =>
                {
                    restarts += 1;
                    tracing::debug!(restarts, "list continue token expired: listing again");
                    items.clear();
                    token = None;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn listed(&mut self, resource_version: Option<String>, items: Vec<T>) -> Event<T> {
        self.resource_version = resource_version;
        self.stream = None;
        self.opened = None;
        Event::Restarted(items)
    }
}

/// Splits a streamed body into newline-terminated lines without holding more than one
/// line.
pub struct Lines {
    body: Incoming,
    buf: BytesMut,
    done: bool,
}

impl Lines {
    pub fn new(body: Incoming) -> Self {
        Self {
            body,
            buf: BytesMut::new(),
            done: false,
        }
    }

    /// The next line (without its newline), `None` at the end of the body.
    pub async fn next(&mut self) -> Result<Option<BytesMut>, KubeError> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line = self.buf.split_to(i + 1);
                line.truncate(i);
                return Ok(Some(line));
            }
            if self.done {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(self.buf.split()));
            }
            if self.buf.len() > MAX_EVENT {
                return Err(KubeError::Decode(format!(
                    "a watch event is longer than {MAX_EVENT} bytes"
                )));
            }
            match self.body.frame().await {
                None => self.done = true,
                Some(Err(e)) => return Err(KubeError::Decode(format!("reading the watch: {e}"))),
                Some(Ok(frame)) => {
                    if let Ok(mut data) = frame.into_data() {
                        while data.has_remaining() {
                            let chunk = data.chunk();
                            self.buf.extend_from_slice(chunk);
                            let n = chunk.len();
                            data.advance(n);
                        }
                    }
                }
            }
        }
    }
}

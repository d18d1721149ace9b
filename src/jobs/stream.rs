//! Live views of a job: its logs followed across pods (retries included) and its status
//! as it changes, sent as [`StreamEvent`]s into a bounded channel. A full channel
//! (a slow client) pauses reading from the apiserver; a closed one (the client left)
//! ends the task and drops the upstream request.
//!
//! [`follow_job`] reads the Job and its pods, asks [`follow::decide`] what to do next,
//! and does it; [`watch_job`] keeps a watch on the Job and one on its pods.

pub mod follow;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use bytes::{Buf, BytesMut};
use http::Method;
use http_body_util::BodyExt;
use serde::Serialize;
use tokio::sync::mpsc;

use self::follow::{Backoff, Next, Outcome, Progress, Start};
pub use self::follow::{Resume, event_id};
use super::status::{self, Phase, StatusView};
use super::{JobError, get_job, job_pods, pod_selector};
use crate::kube::resources::{Job, Pod, encode, jobs_path, pod_log_path, pods_path, query};
use crate::kube::watch::{Event, Watcher};
use crate::kube::{Client, KubeError};
use crate::names::{JobName, Namespace};
use crate::time::{format_rfc3339, parse_rfc3339};

/// A log line longer than this is sent in pieces.
const MAX_LINE: usize = 64 * 1024;

/// One event of a live stream. Its SSE event name is [`StreamEvent::name`].
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum StreamEvent {
    /// A log line; its event id is [`event_id`] of its pod and `timestamp` (the
    /// kubelet's, nanoseconds).
    Log {
        pod: String,
        container: String,
        timestamp: String,
        line: String,
    },
    /// The stream moved to another pod (the Job controller started a new one).
    Pod {
        pod: String,
        previous_pod: Option<String>,
        message: String,
    },
    /// Nothing to stream yet, in the cluster's words.
    Waiting {
        pod: Option<String>,
        reason: String,
        message: Option<String>,
    },
    /// The job's status (on the watch: each change; on log streams: the last event).
    Status(StatusView),
    /// The stream cannot go on.
    #[serde(skip)]
    Failed(JobError),
    /// This client fell behind a shared stream by `missed` events and is ended; it
    /// reconnects with `Last-Event-ID` to resume.
    #[serde(skip)]
    Behind { missed: u64 },
}

impl StreamEvent {
    /// The SSE event id, for `Last-Event-ID`: a log line's pod and timestamp
    /// ([`event_id`]).
    pub fn id(&self) -> Option<String> {
        match self {
            Self::Log { pod, timestamp, .. } => Some(event_id(pod, timestamp)),
            _ => None,
        }
    }
}

/// How a log stream starts and how often it looks again while waiting.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    pub container: Option<String>,
    /// Resume after this log event (`Last-Event-ID`): what each pod delivered up to it
    /// is skipped.
    pub resume: Option<Resume>,
    /// Lines of history sent first (`tailLines`), unless resuming.
    pub tail_lines: u32,
    /// How often the job and its pods are read again while nothing can be streamed.
    pub poll: Duration,
}

/// Why streaming one pod's log stopped.
enum PodLog {
    /// The body ended (container finished, or the apiserver closed the follow), after
    /// this many lines were sent.
    Ended { lines: u64 },
    /// The pod cannot give logs yet (204, or 400 "waiting to start").
    NotReady(String),
    /// The client went away.
    ClientGone,
}

/// Follows a job's logs until it reaches a terminal state or the client leaves: each
/// pass reads the Job and its pods, and [`follow::decide`] says what to do (follow a
/// pod's log, wait, or send the final status); this loop does it and records what was
/// delivered. Pods are taken in creation order, and a move to another pod is announced
/// by a `pod` event.
pub async fn follow_job(
    client: Client,
    ns: Namespace,
    name: JobName,
    options: FollowOptions,
    tx: mpsc::Sender<StreamEvent>,
) {
    let mut progress: Option<Progress> = None;
    let mut waiting: Option<(Option<String>, String)> = None;
    let mut backoff = Backoff::new(options.poll);
    loop {
        let (job, pods) = match job_and_pods(&client, &ns, &name).await {
            Ok(read) => read,
            Err(e) => {
                let _ = tx.send(StreamEvent::Failed(e)).await;
                return;
            }
        };
        // A resume point is placed among the pods as the first pass finds them.
        let progress = progress.get_or_insert_with(|| match &options.resume {
            Some(resume) => Progress::resumed(resume, &pods, options.container.as_deref()),
            None => Progress::default(),
        });
        let state = status::job_state(&job, Some(&pods));
        let container = options.container.as_deref();
        let follow = match follow::decide(&state, &pods, progress, container, options.tail_lines) {
            Next::Finish => {
                let view = StatusView::new(&job, state);
                let _ = tx.send(StreamEvent::Status(view)).await;
                return;
            }
            Next::Wait(wait) => {
                let period = backoff.wait(wait.settled);
                if !send_waiting(&tx, &mut waiting, wait.pod, wait.reason, wait.message).await
                    || !pause(&tx, period).await
                {
                    return;
                }
                continue;
            }
            Next::Follow(follow) => follow,
        };
        // `decide` picks one of `pods`.
        let Some(pod) = pods.iter().find(|p| p.metadata.name == follow.pod) else {
            continue;
        };
        if let Some(message) = follow.announce {
            let event = StreamEvent::Pod {
                pod: follow.pod.clone(),
                previous_pod: progress.current.replace(follow.pod.clone()),
                message,
            };
            if tx.send(event).await.is_err() {
                return;
            }
            waiting = None;
        }
        progress.followed = true;
        let delivered = progress.pods.entry(follow.pod.clone()).or_default();
        let log = stream_pod_log(
            &client,
            &ns,
            pod,
            &follow.container,
            follow.from,
            &mut delivered.after,
            &tx,
        )
        .await;
        match log {
            Ok(PodLog::ClientGone) => return,
            Ok(PodLog::Ended { lines }) => {
                delivered.last = Some((follow.restarts, Outcome::Ended));
                if lines > 0 {
                    backoff.reset();
                }
                // A follow that ended on a pod still running is looked at again soon
                // (resumed from its last line if the apiserver closed it, or left once
                // its container shows terminated); one that ended empty, later and
                // later.
                if !follow::pod_finished(pod) {
                    let period = if lines > 0 {
                        options.poll / 4
                    } else {
                        backoff.wait(true)
                    };
                    if !pause(&tx, period).await {
                        return;
                    }
                }
            }
            Ok(PodLog::NotReady(message)) => {
                delivered.last = Some((follow.restarts, Outcome::NotReady));
                let (reason, _) = status::pod_waiting_reason(pod);
                let pod_name = Some(follow.pod.clone());
                if !send_waiting(&tx, &mut waiting, pod_name, reason, Some(message)).await
                    || !pause(&tx, backoff.wait(false)).await
                {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(StreamEvent::Failed(e.into())).await;
                return;
            }
        }
    }
}

/// The Job and its pods in creation order (by name within a second).
async fn job_and_pods(
    client: &Client,
    ns: &Namespace,
    name: &JobName,
) -> Result<(Job, Vec<Pod>), JobError> {
    let job = get_job(client, ns, name).await?;
    let mut pods = job_pods(client, ns, &job).await?;
    pods.sort_by(|a, b| {
        (&a.metadata.creation_timestamp, &a.metadata.name)
            .cmp(&(&b.metadata.creation_timestamp, &b.metadata.name))
    });
    Ok((job, pods))
}

/// Sends a `waiting` event unless the same reason was the last one sent. Returns false
/// when the client is gone.
async fn send_waiting(
    tx: &mpsc::Sender<StreamEvent>,
    last: &mut Option<(Option<String>, String)>,
    pod: Option<String>,
    reason: String,
    message: Option<String>,
) -> bool {
    let key = (pod.clone(), reason.clone());
    if last.as_ref() == Some(&key) {
        return true;
    }
    *last = Some(key);
    tx.send(StreamEvent::Waiting {
        pod,
        reason,
        message,
    })
    .await
    .is_ok()
}

/// Waits, unless the client leaves first. Returns false when the client is gone.
async fn pause(tx: &mpsc::Sender<StreamEvent>, period: Duration) -> bool {
    tokio::select! {
        () = tx.closed() => false,
        () = tokio::time::sleep(period) => true,
    }
}

/// Follows one container's log from `from`, sending a `log` event per line. Lines not
/// newer than `after` (the kubelet's timestamps, compared as times) are skipped;
/// `after` advances with every line sent.
async fn stream_pod_log(
    client: &Client,
    ns: &Namespace,
    pod: &Pod,
    container: &str,
    from: Start,
    after: &mut Option<SystemTime>,
    tx: &mpsc::Sender<StreamEvent>,
) -> Result<PodLog, KubeError> {
    let mut params = vec![
        ("container", container.to_string()),
        ("follow", "true".to_string()),
        ("timestamps", "true".to_string()),
    ];
    match from {
        // `sinceTime` takes whole seconds: the lines of that second already sent are
        // skipped here.
        Start::After(since) => params.push(("sinceTime", format_rfc3339(since))),
        Start::Tail(lines) => params.push(("tailLines", lines.to_string())),
        Start::Beginning => {}
    }
    let path = format!(
        "{}{}",
        pod_log_path(ns.as_str(), &pod.metadata.name),
        query(&params)
    );
    let response = tokio::select! {
        () = tx.closed() => return Ok(PodLog::ClientGone),
        r = client.send(Method::GET, &path, None) => r,
    };
    let response = match response {
        Ok(r) => r,
        Err(KubeError::Api {
            code: 400 | 404,
            status,
        }) => {
            return Ok(PodLog::NotReady(
                status
                    .message
                    .unwrap_or_else(|| "the pod cannot give logs yet".into()),
            ));
        }
        Err(e) => return Err(e),
    };
    if response.status() == http::StatusCode::NO_CONTENT {
        let (reason, message) = status::pod_waiting_reason(pod);
        return Ok(PodLog::NotReady(message.unwrap_or(reason)));
    }
    let mut body = response.into_body();
    let mut line = BytesMut::new();
    let mut piece = Piece::default();
    let mut lines = 0u64;
    loop {
        let frame = tokio::select! {
            () = tx.closed() => return Ok(PodLog::ClientGone),
            frame = body.frame() => frame,
        };
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| KubeError::Decode(format!("reading the log: {e}")))?;
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        while data.has_remaining() {
            let chunk = data.chunk();
            let newline = chunk.iter().position(|b| *b == b'\n');
            let take = newline.map_or(chunk.len(), |i| i + 1);
            line.extend_from_slice(&chunk[..take]);
            data.advance(take);
            let part = if newline.is_some() {
                Some((line.split(), true))
            } else if line.len() >= MAX_LINE {
                // Cut on a character boundary; the rest starts the next piece.
                let cut = match std::str::from_utf8(&line) {
                    Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => e.valid_up_to(),
                    _ => line.len(),
                };
                Some((line.split_to(cut), false))
            } else {
                None
            };
            if let Some((bytes, ends_line)) = part {
                match piece
                    .send(&pod.metadata.name, container, &bytes, ends_line, after, tx)
                    .await
                {
                    Sent::Gone => return Ok(PodLog::ClientGone),
                    Sent::Line => lines += 1,
                    Sent::Nothing => {}
                }
            }
        }
    }
    if !line.is_empty() {
        match piece
            .send(&pod.metadata.name, container, &line, true, after, tx)
            .await
        {
            Sent::Gone => return Ok(PodLog::ClientGone),
            Sent::Line => lines += 1,
            Sent::Nothing => {}
        }
    }
    Ok(PodLog::Ended { lines })
}

/// What [`Piece::send`] did.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    /// Sent a `log` event.
    Line,
    /// Skipped the piece (a line already delivered).
    Nothing,
    /// The client is gone.
    Gone,
}

/// Where the stream is within a log line sent in pieces (a line longer than
/// [`MAX_LINE`]): the later pieces carry the first piece's timestamp, and are skipped
/// with it when the line is older than the resume point.
#[derive(Debug, Default)]
enum Piece {
    /// At the start of a line.
    #[default]
    LineStart,
    /// Inside a line being sent, with its timestamp.
    Sending(String),
    /// Inside a line being skipped.
    Skipping,
}

impl Piece {
    /// Sends one piece as a `log` event. At a line start the piece begins with the
    /// kubelet timestamp, and the line is skipped unless it is newer than `after`
    /// (compared as times: an offset is not text); `after` then advances.
    async fn send(
        &mut self,
        pod: &str,
        container: &str,
        raw: &[u8],
        ends_line: bool,
        after: &mut Option<SystemTime>,
        tx: &mpsc::Sender<StreamEvent>,
    ) -> Sent {
        let text = String::from_utf8_lossy(raw);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        let (timestamp, line) = match std::mem::take(self) {
            Piece::Skipping => {
                if !ends_line {
                    *self = Piece::Skipping;
                }
                return Sent::Nothing;
            }
            Piece::Sending(timestamp) => (timestamp, text),
            Piece::LineStart => {
                let (timestamp, line) = text.split_once(' ').unwrap_or((text, ""));
                let time = parse_rfc3339(timestamp);
                if let Some((time, after)) = time.zip(*after)
                    && time <= after
                {
                    if !ends_line {
                        *self = Piece::Skipping;
                    }
                    return Sent::Nothing;
                }
                if time.is_some() {
                    *after = time;
                }
                (timestamp.to_string(), line)
            }
        };
        if !ends_line {
            *self = Piece::Sending(timestamp.clone());
        }
        let event = StreamEvent::Log {
            pod: pod.to_string(),
            container: container.to_string(),
            timestamp,
            line: line.to_string(),
        };
        match tx.send(event).await {
            Ok(()) => Sent::Line,
            Err(_) => Sent::Gone,
        }
    }
}

/// Watches one Job (a watch with `fieldSelector=metadata.name=NAME`) and its pods (by
/// [`pod_selector`], the selector [`job_pods`] lists them by), sending a `status` event
/// whenever the derived status changes; ends after a terminal status or when the Job is
/// deleted. `job` is the Job as just read: its pods are listed first, so that the first
/// event already knows them (a pod in `ImagePullBackOff` makes the first event
/// `pending`, not `running`); the Job's watch starts once they are.
///
/// Each watcher runs in its own task feeding one channel, so an event of one never
/// cancels a request of the other in flight; both tasks end with this function.
pub async fn watch_job(
    client: Client,
    ns: Namespace,
    name: JobName,
    job: Job,
    tx: mpsc::Sender<StreamEvent>,
) {
    let (changes_tx, mut changes) = mpsc::channel::<Result<Change, KubeError>>(16);
    let watch_pods = |selector: &str, generation: u64| {
        let selector = format!("labelSelector={}", encode(selector));
        let watcher: Watcher<Pod> =
            Watcher::new(client.clone(), &pods_path(ns.as_str()), &selector);
        tokio::spawn(run_watcher(watcher, changes_tx.clone(), move |event| {
            Change::Pod(generation, event)
        }))
    };
    let mut selector = pod_selector(&job);
    let mut generation = 0u64;
    // tasks[0] watches the pods, tasks[1] (once the pods are listed) the Job.
    let mut tasks = Tasks(vec![watch_pods(&selector, generation)]);
    let mut job: Option<Job> = None;
    // `None` until the pods of the current selector are listed.
    let mut pods: Option<BTreeMap<String, Pod>> = None;
    let mut last_sent: Option<StatusView> = None;
    loop {
        let step = tokio::select! {
            () = tx.closed() => return,
            step = changes.recv() => step,
        };
        let change = match step {
            Some(Ok(change)) => change,
            Some(Err(e)) => {
                let _ = tx.send(StreamEvent::Failed(JobError::Kube(e))).await;
                return;
            }
            None => return,
        };
        match change {
            Change::Job(Event::Restarted(list)) => match list.into_iter().next() {
                Some(j) => job = Some(j),
                None => {
                    let e = JobError::NotFound {
                        name: name.to_string(),
                        namespace: ns.to_string(),
                    };
                    let _ = tx.send(StreamEvent::Failed(e)).await;
                    return;
                }
            },
            Change::Job(Event::Applied(j)) => job = Some(j),
            Change::Job(Event::Deleted(j)) => {
                let mut view = StatusView::new(&j, status::job_state(&j, None));
                if !view.status.is_terminal() {
                    view.status = Phase::Terminating;
                    view.reason = Some("Deleted".into());
                }
                let _ = tx.send(StreamEvent::Status(view)).await;
                return;
            }
            // Events of a pod watch since replaced.
            Change::Pod(g, _) if g != generation => {}
            Change::Pod(_, Event::Restarted(list)) => {
                pods = Some(
                    list.into_iter()
                        .map(|p| (p.metadata.name.clone(), p))
                        .collect(),
                );
                if tasks.0.len() == 1 {
                    let selector =
                        format!("fieldSelector={}", encode(&format!("metadata.name={name}")));
                    let jobs: Watcher<Job> =
                        Watcher::new(client.clone(), &jobs_path(ns.as_str()), &selector);
                    tasks.0.push(tokio::spawn(run_watcher(
                        jobs,
                        changes_tx.clone(),
                        Change::Job,
                    )));
                }
            }
            Change::Pod(_, Event::Applied(p)) => {
                if let Some(pods) = &mut pods {
                    pods.insert(p.metadata.name.clone(), p);
                }
            }
            Change::Pod(_, Event::Deleted(p)) => {
                if let Some(pods) = &mut pods {
                    pods.remove(&p.metadata.name);
                }
            }
        }
        let Some(current) = &job else { continue };
        let wanted = pod_selector(current);
        if wanted != selector {
            // Another Job of that name (deleted and created again): its own pods.
            selector = wanted;
            generation += 1;
            pods = None;
            tasks.0[0].abort();
            tasks.0[0] = watch_pods(&selector, generation);
            continue;
        }
        let Some(pods) = &pods else { continue };
        let pod_list: Vec<Pod> = pods.values().cloned().collect();
        let view = StatusView::new(current, status::job_state(current, Some(&pod_list)));
        if last_sent.as_ref() != Some(&view) {
            let terminal = view.status.is_terminal();
            if tx.send(StreamEvent::Status(view.clone())).await.is_err() {
                return;
            }
            last_sent = Some(view);
            if terminal {
                return;
            }
        }
    }
}

enum Change {
    Job(Event<Job>),
    /// An event of the pod watch of this generation (a new one starts when the Job's
    /// selector changes).
    Pod(u64, Event<Pod>),
}

/// Tasks aborted when dropped: a watcher's upstream request ends with its stream.
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Runs one watcher, passing its events on. Network blips are retried with backoff;
/// an answer such as 403 (no `watch` verb) is final and passed on as the error.
async fn run_watcher<T: serde::de::DeserializeOwned>(
    mut watcher: Watcher<T>,
    out: mpsc::Sender<Result<Change, KubeError>>,
    wrap: impl Fn(Event<T>) -> Change,
) {
    let mut failures = 0u32;
    loop {
        match watcher.next().await {
            Ok(event) => {
                failures = 0;
                if out.send(Ok(wrap(event))).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                if matches!(e.code(), Some(400..=499)) || failures >= 5 {
                    let _ = out.send(Err(e)).await;
                    return;
                }
                failures += 1;
                tokio::time::sleep(Duration::from_millis(200 << failures)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        parse_rfc3339(s).unwrap()
    }

    /// Sends `parts` through one [`Piece`] from the resume point `after`; returns the
    /// `(timestamp, line)` of the events sent and where `after` ended.
    async fn send_all(
        after: Option<&str>,
        parts: &[(&str, bool)],
    ) -> (Vec<(String, String)>, Option<SystemTime>) {
        let (tx, mut rx) = mpsc::channel(16);
        let mut after = after.map(at);
        let mut piece = Piece::default();
        for (part, ends_line) in parts {
            let sent = piece.send("p", "main", part.as_bytes(), *ends_line, &mut after, &tx);
            assert_ne!(sent.await, Sent::Gone);
        }
        drop(tx);
        let mut lines = Vec::new();
        while let Some(event) = rx.recv().await {
            let StreamEvent::Log {
                line, timestamp, ..
            } = event
            else {
                panic!("{event:?}")
            };
            lines.push((timestamp, line));
        }
        (lines, after)
    }

    #[test]
    fn since_time_takes_whole_seconds_in_utc() {
        let since = |s: &str| format_rfc3339(at(s));
        assert_eq!(
            since("2026-11-26T11:48:19.123456789Z"),
            "2026-11-26T11:48:19Z"
        );
        assert_eq!(
            since("2026-11-26T13:48:19.999+02:00"),
            "2026-11-26T11:48:19Z"
        );
    }

    #[tokio::test]
    async fn lines_not_newer_than_the_resume_point_are_skipped() {
        let (lines, after) = send_all(
            Some("2026-11-26T11:48:20.000000000Z"),
            &[
                ("2026-11-26T11:48:19.000000000Z old\n", true),
                ("2026-11-26T11:48:20.000000000Z seen, in two ", false),
                ("pieces\n", true),
                ("2026-11-26T11:48:21.000000000Z new, in two ", false),
                ("pieces\n", true),
            ],
        )
        .await;
        let ts = "2026-11-26T11:48:21.000000000Z".to_string();
        assert_eq!(
            lines,
            [(ts.clone(), "new, in two ".into()), (ts, "pieces".into())]
        );
        assert_eq!(after, Some(at("2026-11-26T11:48:21Z")));
    }

    #[tokio::test]
    async fn the_resume_point_is_a_time_whatever_its_offset() {
        // 13:48:20.5+02:00 is 11:48:20.5Z: as text it is after every line here.
        let (lines, _) = send_all(
            Some("2026-11-26T13:48:20.5+02:00"),
            &[
                ("2026-11-26T11:48:20.400000000Z seen\n", true),
                ("2026-11-26T11:48:20.500000000Z seen\n", true),
                ("2026-11-26T11:48:20.600000000Z new\n", true),
            ],
        )
        .await;
        assert_eq!(
            lines,
            [(
                "2026-11-26T11:48:20.600000000Z".to_string(),
                "new".to_string()
            )]
        );
    }

    #[tokio::test]
    async fn a_line_without_a_timestamp_is_sent_and_moves_nothing() {
        let (lines, after) =
            send_all(Some("2026-11-26T11:48:20Z"), &[("unstamped line\n", true)]).await;
        assert_eq!(lines, [("unstamped".to_string(), "line".to_string())]);
        assert_eq!(after, Some(at("2026-11-26T11:48:20Z")));
    }

    #[test]
    fn a_log_event_id_names_its_pod() {
        let event = StreamEvent::Log {
            pod: "test-job-x-abc12".into(),
            container: "main".into(),
            timestamp: "2026-11-26T11:48:19.123456789Z".into(),
            line: "hello".into(),
        };
        let id = event.id().unwrap();
        assert_eq!(id, "test-job-x-abc12/2026-11-26T11:48:19.123456789Z");
        assert_eq!(
            Resume::parse(&id).unwrap().pod.as_deref(),
            Some("test-job-x-abc12")
        );
        let waiting = StreamEvent::Waiting {
            pod: None,
            reason: "NoActivePod".into(),
            message: None,
        };
        assert_eq!(waiting.id(), None);
    }

    #[test]
    fn a_job_without_selector_or_uid_selects_its_pods_by_name() {
        let job = |v: serde_json::Value| -> Job { serde_json::from_value(v).unwrap() };
        assert_eq!(
            pod_selector(&job(serde_json::json!({"metadata": {"name": "j"}}))),
            "job-name=j",
            "never an empty selector, which would select every pod of the namespace"
        );
        assert_eq!(
            pod_selector(&job(serde_json::json!({
                "metadata": {"name": "j", "uid": "u"}, "spec": {"selector": {}}}))),
            "controller-uid=u"
        );
        assert_eq!(
            pod_selector(&job(
                serde_json::json!({"metadata": {"name": "j", "uid": "u"},
                "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "v"}}}})
            )),
            "batch.kubernetes.io/controller-uid=v"
        );
    }
}

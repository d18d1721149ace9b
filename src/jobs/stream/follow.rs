//! What a log stream does next: a pure function ([`decide`]) of what the stream has read
//! (the Job's state, its pods in creation order) and what it has delivered of each pod
//! ([`Progress`]). [`super::follow_job`] reads, decides, and carries the decision out.
//!
//! The rules, pod by pod in creation order:
//!
//! - a pod whose log was followed and that has finished (`Succeeded`, `Failed`) is done;
//! - a container whose log ended and that has not started again (it is terminated or
//!   waiting, with the restart count it had when its log was opened) is *settled*: it
//!   is not followed again until it restarts, and the stream moves on to the next pod
//!   (a sidecar keeps its pod running after the followed container exited);
//! - anything else is followed: the first pod that is neither done nor settled.
//!
//! With nothing to follow the stream ends with the status when the Job is over, and
//! otherwise waits: one poll while the Job is starting a pod, a backoff that grows to
//! [`MAX_IDLE_POLLS`] polls while everything is settled ([`Backoff`]).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use crate::jobs::pods::default_container;
use crate::jobs::status::JobState;
use crate::kube::resources::{ContainerStatus, Pod};
use crate::time::parse_rfc3339;

/// A settled stream looks again at most every this many polls (30 s at the default 2 s).
pub const MAX_IDLE_POLLS: u32 = 15;

/// The longest timestamp accepted in an event id (an RFC 3339 time with nanoseconds and
/// an offset is 35 characters).
const MAX_TIMESTAMP: usize = 40;

/// The id of a log event: `POD/TIMESTAMP`, the pod and the kubelet's timestamp of the
/// line. Pod names have no `/`.
pub fn event_id(pod: &str, timestamp: &str) -> String {
    format!("{pod}/{timestamp}")
}

/// Where a stream resumes: the id of the last log event the client received
/// (`Last-Event-ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The pod of that line; `None` for a bare timestamp (the ids of earlier versions).
    pub pod: Option<String>,
    /// The kubelet's time of that line.
    pub at: SystemTime,
}

impl Resume {
    /// Parses an event id: `POD/TIMESTAMP` (see [`event_id`]), or a bare timestamp.
    /// The timestamp is RFC 3339 with any offset; `None` for anything else.
    pub fn parse(id: &str) -> Option<Self> {
        let (pod, timestamp) = match id.split_once('/') {
            Some((pod, timestamp)) => (Some(pod), timestamp),
            None => (None, id),
        };
        if timestamp.len() > MAX_TIMESTAMP || !pod.is_none_or(is_pod_name) {
            return None;
        }
        Some(Self {
            pod: pod.map(str::to_string),
            at: parse_rfc3339(timestamp)?,
        })
    }
}

/// A pod's name as Kubernetes writes them: an RFC 1123 subdomain.
fn is_pod_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// How a follow of a pod's log ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The body ended: the container exited, or the apiserver closed the follow.
    Ended,
    /// The pod could not give logs (its container has not started).
    NotReady,
}

/// What the stream has delivered of one pod.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodProgress {
    /// The kubelet's time of the last line sent: the pod's next follow starts after it.
    pub after: Option<SystemTime>,
    /// How the pod's last follow ended, with the container's restart count when it was
    /// opened.
    pub last: Option<(i32, Outcome)>,
}

/// What a stream has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub pods: HashMap<String, PodProgress>,
    /// The pod of the last `pod` event.
    pub current: Option<String>,
    /// Whether a follow was opened already: only the first sends history (`tailLines`).
    pub followed: bool,
}

impl Progress {
    /// The progress of a stream that resumes at `resume`, given the Job's pods now (in
    /// creation order). The stream takes pods in that order and moves past a pod only
    /// once it is done or settled, so:
    ///
    /// - the pods before the resume pod were delivered as they are now: a container
    ///   that is not running is settled (a finished pod is done); one that runs has
    ///   restarted since, and its new run is followed from its start;
    /// - the resume pod goes on after the resume time;
    /// - the pods after it were not streamed at all: followed from their start.
    ///
    /// When the resume pod is gone, or the id is a bare timestamp, the pods created
    /// before the resume time go on after it and the later ones from their start.
    pub fn resumed(resume: &Resume, pods: &[Pod], container: Option<&str>) -> Self {
        let mut progress = Self {
            followed: true,
            ..Self::default()
        };
        let position = resume
            .pod
            .as_ref()
            .and_then(|name| pods.iter().position(|p| &p.metadata.name == name));
        for (i, pod) in pods.iter().enumerate() {
            let entry = match position {
                Some(p) if i < p => {
                    let status = container_status(pod, &container_of(pod, container));
                    let running = status.is_some_and(|s| s.state.running.is_some());
                    if running {
                        continue;
                    }
                    let restarts = status.map_or(0, |s| s.restart_count);
                    PodProgress {
                        after: None,
                        last: Some((restarts, Outcome::Ended)),
                    }
                }
                Some(p) if i > p => continue,
                Some(_) => PodProgress {
                    after: Some(resume.at),
                    last: None,
                },
                None => {
                    let created = pod
                        .metadata
                        .creation_timestamp
                        .as_deref()
                        .and_then(parse_rfc3339);
                    if created.is_some_and(|c| c > resume.at) {
                        continue;
                    }
                    PodProgress {
                        after: Some(resume.at),
                        last: None,
                    }
                }
            };
            progress.pods.insert(pod.metadata.name.clone(), entry);
        }
        progress
    }
}

/// What the stream does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Follow one pod's container.
    Follow(Follow),
    /// Nothing to follow now: say why (a `waiting` event), look again later.
    Wait(Wait),
    /// The Job is over and every pod's log was delivered: send the status and end.
    Finish,
}

/// A follow to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follow {
    pub pod: String,
    pub container: String,
    /// The container's restart count now, recorded with the follow's [`Outcome`].
    pub restarts: i32,
    pub from: Start,
    /// The message of the `pod` event to send first, when the stream moves to this pod.
    pub announce: Option<String>,
}

/// Where a follow starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The last lines (`tailLines`): the first follow of a stream that does not resume.
    Tail(u32),
    /// After this kubelet time: `sinceTime` in whole seconds, then the lines not newer
    /// than it are skipped.
    After(SystemTime),
    /// The whole log: the client has nothing of this pod.
    Beginning,
}

/// Why there is nothing to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub pod: Option<String>,
    pub reason: String,
    pub message: Option<String>,
    /// Every container the stream follows has ended while the Job runs on (a sidecar
    /// keeps its pod running, a container waits to restart): nothing is expected soon.
    pub settled: bool,
}

/// Where a pod stands for the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Standing {
    /// Delivered, and it will give nothing more.
    Done,
    /// Its container's log ended and the container has not started again.
    Settled {
        reason: String,
        message: Option<String>,
    },
    /// To be followed (its container has restarts so far).
    Open { restarts: i32 },
}

/// The container a stream follows in `pod`: the one asked for, else the default one.
fn container_of(pod: &Pod, asked: Option<&str>) -> String {
    asked
        .or_else(|| default_container(pod))
        .unwrap_or_default()
        .to_string()
}

fn container_status<'a>(pod: &'a Pod, container: &str) -> Option<&'a ContainerStatus> {
    pod.status
        .container_statuses
        .iter()
        .chain(&pod.status.init_container_statuses)
        .find(|s| s.name == container)
}

/// Whether the pod has finished (`Succeeded` or `Failed`): its containers will not run
/// again.
pub fn pod_finished(pod: &Pod) -> bool {
    matches!(pod.status.phase.as_deref(), Some("Succeeded" | "Failed"))
}

fn standing(pod: &Pod, container: &str, progress: Option<&PodProgress>, over: bool) -> Standing {
    let last = progress.and_then(|p| p.last);
    let status = container_status(pod, container);
    let restarts = status.map_or(0, |s| s.restart_count);
    let running = status.is_some_and(|s| s.state.running.is_some());
    if pod_finished(pod) {
        return match last {
            Some(_) => Standing::Done,
            None => Standing::Open { restarts },
        };
    }
    match last {
        Some((r, Outcome::Ended)) if r == restarts && !running => {
            let state = status.map(|s| &s.state);
            if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
                let code = t.exit_code.map(|c| format!(", exit code {c}"));
                Standing::Settled {
                    reason: t.reason.clone().unwrap_or_else(|| "Terminated".into()),
                    message: Some(format!(
                        "container {container} exited{}; pod {} runs on",
                        code.unwrap_or_default(),
                        pod.metadata.name
                    )),
                }
            } else {
                let waiting = state.and_then(|s| s.waiting.as_ref());
                Standing::Settled {
                    reason: waiting
                        .and_then(|w| w.reason.clone())
                        .unwrap_or_else(|| "Waiting".into()),
                    message: waiting.and_then(|w| w.message.clone()),
                }
            }
        }
        // The Job is over and this container never gave logs: it never will.
        Some((_, Outcome::NotReady)) if over && !running => Standing::Done,
        _ => Standing::Open { restarts },
    }
}

/// What the stream does next, given the Job's state, its pods in creation order, what
/// was delivered, the container asked for and the history asked for.
pub fn decide(
    state: &JobState,
    pods: &[Pod],
    progress: &Progress,
    container: Option<&str>,
    tail: u32,
) -> Next {
    let over = state.phase.is_terminal();
    let mut settled: Option<Wait> = None;
    for pod in pods {
        let name = &pod.metadata.name;
        let container = container_of(pod, container);
        let delivered = progress.pods.get(name);
        match standing(pod, &container, delivered, over) {
            Standing::Done => {}
            Standing::Settled { reason, message } => {
                settled.get_or_insert(Wait {
                    pod: Some(name.clone()),
                    reason,
                    message,
                    settled: true,
                });
            }
            Standing::Open { restarts } => {
                let from = match delivered.and_then(|d| d.after) {
                    Some(after) => Start::After(after),
                    None if !progress.followed => Start::Tail(tail),
                    None => Start::Beginning,
                };
                return Next::Follow(Follow {
                    announce: announce(progress, pods, pod, &container),
                    pod: name.clone(),
                    container,
                    restarts,
                    from,
                });
            }
        }
    }
    if over {
        return Next::Finish;
    }
    Next::Wait(settled.unwrap_or_else(|| Wait {
        pod: None,
        reason: state.reason.clone().unwrap_or_else(|| "NoPod".into()),
        message: state.message.clone(),
        settled: false,
    }))
}

/// The message of the `pod` event when the stream moves to `next`, `None` when it is
/// on it already.
fn announce(progress: &Progress, pods: &[Pod], next: &Pod, container: &str) -> Option<String> {
    let name = &next.metadata.name;
    let Some(previous) = progress.current.as_deref() else {
        return Some(format!("streaming pod {name}"));
    };
    if previous == name {
        return None;
    }
    if progress.pods.get(name).is_some_and(|p| p.last.is_some()) {
        return Some(format!(
            "container {container} of pod {name} started again; streaming it again"
        ));
    }
    Some(match pods.iter().find(|p| p.metadata.name == previous) {
        Some(p) if !pod_finished(p) => {
            format!("container {container} of pod {previous} exited; streaming pod {name}")
        }
        _ => format!("pod {previous} finished; the Job controller started {name}"),
    })
}

/// How long a stream waits before it reads the Job and its pods again.
#[derive(Debug, Clone)]
pub struct Backoff {
    poll: Duration,
    /// Settled waits in a row.
    idle: u32,
}

impl Backoff {
    pub fn new(poll: Duration) -> Self {
        Self { poll, idle: 0 }
    }

    /// The wait after a pass with nothing to follow: one poll; while `settled`, twice
    /// the previous wait, up to [`MAX_IDLE_POLLS`] polls.
    pub fn wait(&mut self, settled: bool) -> Duration {
        if !settled {
            self.idle = 0;
            return self.poll;
        }
        let polls = (1u32 << self.idle.min(4)).min(MAX_IDLE_POLLS);
        self.idle = self.idle.saturating_add(1);
        self.poll * polls
    }

    /// Lines arrived: the next settled wait is one poll again.
    pub fn reset(&mut self) {
        self.idle = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::status::Phase;
    use serde_json::json;

    const T0: &str = "2026-11-26T11:48:20Z";

    fn at(s: &str) -> SystemTime {
        parse_rfc3339(s).unwrap()
    }

    fn state(phase: Phase) -> JobState {
        JobState {
            phase,
            reason: (phase == Phase::Pending).then(|| "NoActivePod".into()),
            message: None,
        }
    }

    /// A pod of two containers, `main` in `main_state` with `restarts`, `sidecar` running.
    fn pod(name: &str, phase: &str, main_state: serde_json::Value, restarts: i32) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": T0},
            "spec": {"containers": [{"name": "main"}, {"name": "sidecar"}]},
            "status": {"phase": phase, "containerStatuses": [
                {"name": "main", "state": main_state, "restartCount": restarts},
                {"name": "sidecar", "state": {"running": {}}, "restartCount": 0},
            ]}
        }))
        .unwrap()
    }

    fn running() -> serde_json::Value {
        json!({"running": {"startedAt": T0}})
    }

    fn exited() -> serde_json::Value {
        json!({"terminated": {"reason": "Completed", "exitCode": 0}})
    }

    fn crashed() -> serde_json::Value {
        json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}})
    }

    fn pulling() -> serde_json::Value {
        json!({"waiting": {"reason": "ImagePullBackOff"}})
    }

    fn ended(restarts: i32, after: Option<&str>) -> PodProgress {
        PodProgress {
            after: after.map(at),
            last: Some((restarts, Outcome::Ended)),
        }
    }

    fn progress(current: Option<&str>, pods: &[(&str, PodProgress)]) -> Progress {
        Progress {
            pods: pods.iter().map(|(n, p)| (n.to_string(), *p)).collect(),
            current: current.map(str::to_string),
            followed: current.is_some(),
        }
    }

    /// A decision reduced to what the table checks: the pod and start of a follow; the
    /// pod, reason and settledness of a wait.
    #[derive(Debug, PartialEq)]
    enum Short {
        Follow(String, Start),
        Wait(Option<String>, String, bool),
        Finish,
    }

    fn follows(pod: &str, start: Start) -> Short {
        Short::Follow(pod.into(), start)
    }

    fn waits(pod: Option<&str>, reason: &str, settled: bool) -> Short {
        Short::Wait(pod.map(str::to_string), reason.into(), settled)
    }

    fn short(next: Next) -> Short {
        match next {
            Next::Follow(f) => Short::Follow(f.pod, f.from),
            Next::Wait(w) => Short::Wait(w.pod, w.reason, w.settled),
            Next::Finish => Short::Finish,
        }
    }

    #[test]
    fn what_a_stream_does_next() {
        let t1 = "2026-11-26T11:48:21.5Z";
        #[allow(clippy::type_complexity)]
        let cases: Vec<(&str, Phase, Vec<Pod>, Progress, Short)> = vec![
            (
                "no pod yet: wait for one, one poll at a time",
                Phase::Pending,
                vec![],
                Progress::default(),
                waits(None, "NoActivePod", false),
            ),
            (
                "the first follow sends history",
                Phase::Running,
                vec![pod("a", "Running", running(), 0)],
                Progress::default(),
                follows("a", Start::Tail(100)),
            ),
            (
                "a follow the apiserver closed while the container runs: go on",
                Phase::Running,
                vec![pod("a", "Running", running(), 0)],
                progress(Some("a"), &[("a", ended(0, Some(t1)))]),
                follows("a", Start::After(at(t1))),
            ),
            (
                "a finished pod whose log ended is done; the Job is over",
                Phase::Completed,
                vec![pod("a", "Succeeded", exited(), 0)],
                progress(Some("a"), &[("a", ended(0, Some(t1)))]),
                Short::Finish,
            ),
            (
                "a finished pod never followed is followed",
                Phase::Completed,
                vec![pod("a", "Succeeded", exited(), 0)],
                Progress::default(),
                follows("a", Start::Tail(100)),
            ),
            (
                "sidecar: main exited, the pod runs on: settled, not followed again",
                Phase::Running,
                vec![pod("a", "Running", exited(), 0)],
                progress(Some("a"), &[("a", ended(0, Some(t1)))]),
                waits(Some("a"), "Completed", true),
            ),
            (
                "sidecar, then the Job is over: the status",
                Phase::Failed,
                vec![pod("a", "Running", exited(), 0)],
                progress(Some("a"), &[("a", ended(0, Some(t1)))]),
                Short::Finish,
            ),
            (
                "main exited before its log was opened: followed once",
                Phase::Running,
                vec![pod("a", "Running", exited(), 0)],
                Progress::default(),
                follows("a", Start::Tail(100)),
            ),
            (
                "main exited after a log that never opened: followed",
                Phase::Running,
                vec![pod("a", "Running", exited(), 0)],
                progress(
                    Some("a"),
                    &[(
                        "a",
                        PodProgress {
                            after: None,
                            last: Some((0, Outcome::NotReady)),
                        },
                    )],
                ),
                follows("a", Start::Beginning),
            ),
            (
                "settled, then restarted: followed again after its last line",
                Phase::Running,
                vec![pod("a", "Running", running(), 1)],
                progress(Some("a"), &[("a", ended(0, Some(t1)))]),
                follows("a", Start::After(at(t1))),
            ),
            (
                "settled, waiting to restart (CrashLoopBackOff): still settled",
                Phase::Running,
                vec![pod("a", "Running", crashed(), 0)],
                progress(Some("a"), &[("a", ended(0, Some(t1)))]),
                waits(Some("a"), "CrashLoopBackOff", true),
            ),
            (
                "exited again between two looks: the new run is followed",
                Phase::Running,
                vec![pod("a", "Running", exited(), 1)],
                progress(Some("a"), &[("a", ended(0, Some(t1)))]),
                follows("a", Start::After(at(t1))),
            ),
            (
                "a settled pod does not hold back the next one",
                Phase::Running,
                vec![
                    pod("a", "Running", exited(), 0),
                    pod("b", "Running", running(), 0),
                ],
                progress(Some("a"), &[("a", ended(0, Some(t1)))]),
                follows("b", Start::Beginning),
            ),
            (
                "retry: the next pod from its start, whatever its clock",
                Phase::Running,
                vec![
                    pod("a", "Failed", exited(), 0),
                    pod("b", "Running", running(), 0),
                ],
                progress(Some("a"), &[("a", ended(0, Some(t1)))]),
                follows("b", Start::Beginning),
            ),
            (
                "between retries: wait for the Job controller",
                Phase::Pending,
                vec![pod("a", "Failed", exited(), 0)],
                progress(Some("a"), &[("a", ended(0, Some(t1)))]),
                waits(None, "NoActivePod", false),
            ),
            (
                "a pod that cannot start is tried again",
                Phase::Pending,
                vec![pod("a", "Pending", pulling(), 0)],
                progress(
                    Some("a"),
                    &[(
                        "a",
                        PodProgress {
                            after: None,
                            last: Some((0, Outcome::NotReady)),
                        },
                    )],
                ),
                follows("a", Start::Beginning),
            ),
            (
                "a pod that never started, of a Job that is over: nothing to wait for",
                Phase::Failed,
                vec![pod("a", "Pending", pulling(), 0)],
                progress(
                    Some("a"),
                    &[(
                        "a",
                        PodProgress {
                            after: None,
                            last: Some((0, Outcome::NotReady)),
                        },
                    )],
                ),
                Short::Finish,
            ),
        ];
        for (name, phase, pods, progress, expected) in cases {
            let next = decide(&state(phase), &pods, &progress, None, 100);
            assert_eq!(short(next), expected, "{name}");
        }
    }

    #[test]
    fn the_follow_names_the_container_and_the_move() {
        let pods = [
            pod("a", "Failed", exited(), 0),
            pod("b", "Running", exited(), 0),
            pod("c", "Running", running(), 0),
        ];
        let follow = |progress: &Progress, container| match decide(
            &state(Phase::Running),
            &pods,
            progress,
            container,
            10,
        ) {
            Next::Follow(f) => f,
            other => panic!("{other:?}"),
        };
        let first = follow(&Progress::default(), None);
        assert_eq!(
            (first.container.as_str(), first.announce.as_deref()),
            ("main", Some("streaming pod a"))
        );
        let f = follow(&Progress::default(), Some("sidecar"));
        assert_eq!((f.pod.as_str(), f.container.as_str()), ("a", "sidecar"));

        let after_a = progress(Some("a"), &[("a", ended(0, None))]);
        assert_eq!(
            follow(&after_a, None).announce.as_deref(),
            Some("pod a finished; the Job controller started b")
        );
        let after_b = progress(Some("b"), &[("a", ended(0, None)), ("b", ended(0, None))]);
        let f = follow(&after_b, None);
        assert_eq!(
            (f.pod.as_str(), f.announce.as_deref()),
            ("c", Some("container main of pod b exited; streaming pod c"))
        );
        let on_c = progress(Some("c"), &[("c", ended(0, None))]);
        let f = decide(&state(Phase::Running), &pods[2..], &on_c, None, 10);
        assert!(
            matches!(&f, Next::Follow(f) if f.announce.is_none()),
            "{f:?}"
        );
    }

    #[test]
    fn a_settled_wait_says_why() {
        let pods = [pod("a", "Running", exited(), 0)];
        let next = decide(
            &state(Phase::Running),
            &pods,
            &progress(Some("a"), &[("a", ended(0, None))]),
            None,
            10,
        );
        assert_eq!(
            next,
            Next::Wait(Wait {
                pod: Some("a".into()),
                reason: "Completed".into(),
                message: Some("container main exited, exit code 0; pod a runs on".into()),
                settled: true,
            })
        );
    }

    #[test]
    fn resuming_skips_what_each_pod_delivered() {
        let t = "2026-11-26T11:48:22.25Z";
        let pods = [
            pod("a", "Succeeded", exited(), 0),
            pod("b", "Running", exited(), 2),
            pod("c", "Running", running(), 1),
            pod("d", "Running", running(), 0),
            pod("e", "Pending", pulling(), 0),
        ];
        let resume = |id: &str| Progress::resumed(&Resume::parse(id).unwrap(), &pods, None);

        let on_d = resume(&format!("d/{t}"));
        assert!(on_d.followed && on_d.current.is_none());
        let entry = |p: &Progress, name: &str| p.pods.get(name).copied();
        assert_eq!(entry(&on_d, "a"), Some(ended(0, None)), "finished: done");
        assert_eq!(entry(&on_d, "b"), Some(ended(2, None)), "exited: settled");
        assert_eq!(entry(&on_d, "c"), None, "restarted since: from its start");
        assert_eq!(
            entry(&on_d, "d"),
            Some(PodProgress {
                after: Some(at(t)),
                last: None
            })
        );
        assert_eq!(
            entry(&on_d, "e"),
            None,
            "after the resume pod: from its start"
        );
        let next = decide(&state(Phase::Running), &pods, &on_d, None, 100);
        assert!(
            matches!(&next, Next::Follow(f) if f.pod == "c" && f.from == Start::Beginning),
            "{next:?}"
        );

        // A bare timestamp, or a pod that is gone: by creation time.
        let mut later = pod("f", "Running", running(), 0);
        later.metadata.creation_timestamp = Some("2026-11-26T11:49:00Z".into());
        let pods = [pods[3].clone(), later];
        for id in [t.to_string(), format!("gone/{t}")] {
            let p = Progress::resumed(&Resume::parse(&id).unwrap(), &pods, None);
            assert_eq!(p.pods.get("d").and_then(|d| d.after), Some(at(t)), "{id}");
            assert_eq!(p.pods.get("f"), None, "{id}");
        }
    }

    #[test]
    fn event_ids_parse_back_as_times() {
        let id = event_id("test-job-x-abc12", "2026-11-26T11:48:19.123456789Z");
        assert_eq!(id, "test-job-x-abc12/2026-11-26T11:48:19.123456789Z");
        assert_eq!(
            Resume::parse(&id),
            Some(Resume {
                pod: Some("test-job-x-abc12".into()),
                at: at("2026-11-26T11:48:19.123456789Z"),
            })
        );
        assert_eq!(
            Resume::parse("p/2026-11-26T13:48:19.5+02:00").map(|r| r.at),
            Some(at("2026-11-26T11:48:19.5Z")),
            "an offset is a time, not text"
        );
        assert_eq!(Resume::parse("2026-11-26T11:48:19Z").unwrap().pod, None);
        for bad in [
            "",
            "p/",
            "/2026-11-26T11:48:19Z",
            "P/2026-11-26T11:48:19Z",
            "a/b/2026-11-26T11:48:19Z",
            "p/2026-11-26T11:48:19.0000000000000000000000Z",
            "p/yesterday",
        ] {
            assert_eq!(Resume::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_settled_stream_backs_off_to_fifteen_polls() {
        let poll = Duration::from_secs(2);
        let mut backoff = Backoff::new(poll);
        let waits: Vec<u64> = (0..7).map(|_| backoff.wait(true).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff.wait(false), poll, "not settled: one poll");
        assert_eq!(backoff.wait(true), poll, "and the backoff starts again");
        backoff.wait(true);
        backoff.reset();
        assert_eq!(backoff.wait(true), poll);
    }
}

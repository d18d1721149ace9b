//! Live streams shared by their viewers: every follower of the same thing (a job's log
//! stream with the same container and tail, or a job's status watch) reads one upstream
//! (one log follow per pod, one watch), as Kubernetes' informers share one watch among
//! many readers.
//!
//! The upstream keeps the last events of its window (the `tail` of a log stream, the
//! last status of a watch); a follower that joins takes that history and then the live
//! events under one lock, so it gets exactly what it would have got alone, with no gap
//! and nothing twice at the seam. Each follower reads through a bounded buffer: one
//! that falls behind by more is told so and ended (it reconnects with `Last-Event-ID`),
//! and never slows the others. The upstream ends with its run, or shortly after its
//! last follower leaves.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use super::stream::StreamEvent;
use crate::names::{JobName, Namespace};

/// What a shared upstream streams.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A job's logs: the container asked for (or the default) and the tail.
    Logs {
        container: Option<String>,
        tail: u32,
    },
    /// A job's status.
    Watch,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    ns: Namespace,
    job: JobName,
    topic: Topic,
}

/// Events a follower may fall behind by before it is ended.
pub const FOLLOWER_BUFFER: usize = 1024;

/// A producer: streams events into the sender until its run ends.
pub type Producer =
    Box<dyn FnOnce(mpsc::Sender<StreamEvent>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// The shared upstreams by what they stream.
pub struct Hub {
    linger: Duration,
    upstreams: Mutex<HashMap<Key, Weak<Upstream>>>,
}

struct Upstream {
    state: Mutex<History>,
    followers: std::sync::atomic::AtomicUsize,
    /// Stops the producer (the run went on without followers past the linger).
    stop: tokio::sync::watch::Sender<bool>,
}

struct History {
    events: VecDeque<Arc<StreamEvent>>,
    /// Live events; a follower subscribes under this lock. `None` once the producer
    /// ended: the followers then read what is left and end.
    live: Option<broadcast::Sender<Arc<StreamEvent>>>,
    /// How many log events the window holds (`tail`), or for a watch only the last
    /// event.
    window: Topic,
    ended: bool,
}

impl History {
    fn push(&mut self, event: Arc<StreamEvent>) {
        match &self.window {
            Topic::Watch => {
                self.events.clear();
                self.events.push_back(event);
            }
            Topic::Logs { tail, .. } => {
                self.events.push_back(event);
                let mut logs = self
                    .events
                    .iter()
                    .filter(|e| matches!(***e, StreamEvent::Log { .. }))
                    .count();
                // The oldest lines go first, with what came before them.
                while logs > *tail as usize
                    || self.events.len() > (*tail as usize).saturating_mul(2) + 64
                {
                    match self.events.pop_front() {
                        Some(e) if matches!(*e, StreamEvent::Log { .. }) => logs -= 1,
                        Some(_) => {}
                        None => break,
                    }
                }
            }
        }
    }
}

/// One follower's view: the history when it joined, then the live events. Dropping it
/// leaves the upstream.
pub struct Follower {
    history: VecDeque<Arc<StreamEvent>>,
    live: Option<broadcast::Receiver<Arc<StreamEvent>>>,
    upstream: Arc<Upstream>,
    hub: Arc<Hub>,
    key: Key,
    done: bool,
}

impl Follower {
    /// The next event; `None` when the stream is over (the run ended, the service is
    /// stopping, or this follower fell behind after being told so).
    pub async fn next(&mut self) -> Option<Arc<StreamEvent>> {
        if let Some(event) = self.history.pop_front() {
            return Some(event);
        }
        if self.done {
            return None;
        }
        let live = self.live.as_mut()?;
        match live.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                self.done = true;
                Some(Arc::new(StreamEvent::Behind { missed }))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let left = self
            .upstream
            .followers
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            - 1;
        if left == 0 {
            let (hub, key, upstream) = (self.hub.clone(), self.key.clone(), self.upstream.clone());
            // A page reload reconnects at once: the upstream lingers a little (this
            // task keeps it alive meanwhile).
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    tokio::time::sleep(hub.linger).await;
                    hub.retire(&key, &upstream);
                });
            }
        }
    }
}

impl Hub {
    /// A hub whose upstreams outlive their last follower by `linger`.
    pub fn new(linger: Duration) -> Arc<Self> {
        Arc::new(Self {
            linger,
            upstreams: Mutex::new(HashMap::new()),
        })
    }

    /// How many upstreams are open.
    pub fn upstreams(&self) -> usize {
        self.upstreams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|u| u.strong_count() > 0)
            .count()
    }

    /// Joins the upstream of `topic` for this job, starting it with `producer` when
    /// there is none (or the last one ended).
    pub fn follow(
        self: &Arc<Self>,
        ns: &Namespace,
        job: &JobName,
        topic: Topic,
        producer: impl FnOnce() -> Producer,
    ) -> Follower {
        let key = Key {
            ns: ns.clone(),
            job: job.clone(),
            topic,
        };
        let upstream = {
            let mut upstreams = self.upstreams.lock().unwrap_or_else(|e| e.into_inner());
            let running = upstreams
                .get(&key)
                .and_then(Weak::upgrade)
                .filter(|u| !u.state.lock().unwrap_or_else(|e| e.into_inner()).ended);
            match running {
                Some(upstream) => upstream,
                None => {
                    let upstream = self.start(&key, producer());
                    upstreams.insert(key.clone(), Arc::downgrade(&upstream));
                    upstream
                }
            }
        };
        upstream
            .followers
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (history, live) = {
            let state = upstream.state.lock().unwrap_or_else(|e| e.into_inner());
            (
                state.events.clone(),
                state.live.as_ref().map(broadcast::Sender::subscribe),
            )
        };
        Follower {
            history,
            live,
            upstream,
            hub: self.clone(),
            key,
            done: false,
        }
    }

    fn start(self: &Arc<Self>, key: &Key, producer: Producer) -> Arc<Upstream> {
        let (live, _) = broadcast::channel(FOLLOWER_BUFFER);
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let upstream = Arc::new(Upstream {
            state: Mutex::new(History {
                events: VecDeque::new(),
                live: Some(live),
                window: key.topic.clone(),
                ended: false,
            }),
            followers: std::sync::atomic::AtomicUsize::new(0),
            stop,
        });
        let (tx, mut rx) = mpsc::channel(64);
        let weak = Arc::downgrade(&upstream);
        tokio::spawn(async move {
            let produce = producer(tx);
            let pump = async {
                while let Some(event) = rx.recv().await {
                    let Some(upstream) = weak.upgrade() else {
                        return;
                    };
                    let event = Arc::new(event);
                    {
                        let mut state = upstream.state.lock().unwrap_or_else(|e| e.into_inner());
                        state.push(event.clone());
                        // No follower may be listening (between a page's reload and its
                        // return): the history keeps what they will be shown.
                        if let Some(live) = &state.live {
                            let _ = live.send(event);
                        }
                    }
                    drop(upstream);
                    // Let the followers read before the next event: a burst from the
                    // apiserver must not outrun every follower's buffer at once.
                    tokio::task::yield_now().await;
                }
            };
            tokio::select! {
                _ = async { tokio::join!(produce, pump) } => {}
                _ = stopped.wait_for(|s| *s) => {}
            }
            if let Some(upstream) = weak.upgrade() {
                let mut state = upstream.state.lock().unwrap_or_else(|e| e.into_inner());
                state.ended = true;
                state.live = None;
            }
        });
        upstream
    }

    /// Stops the upstream of `key` if it still has no follower.
    fn retire(&self, key: &Key, upstream: &Arc<Upstream>) {
        if upstream.followers.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            return;
        }
        let mut upstreams = self.upstreams.lock().unwrap_or_else(|e| e.into_inner());
        if upstreams
            .get(key)
            .is_some_and(|w| w.ptr_eq(&Arc::downgrade(upstream)))
        {
            upstreams.remove(key);
        }
        upstream.stop.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn line(n: u64) -> StreamEvent {
        StreamEvent::Log {
            pod: "p".into(),
            container: "main".into(),
            timestamp: format!("2026-01-01T00:00:00.{n:09}Z"),
            line: format!("line {n}"),
        }
    }

    fn number(event: &StreamEvent) -> Option<u64> {
        match event {
            StreamEvent::Log { line, .. } => line.strip_prefix("line ")?.parse().ok(),
            _ => None,
        }
    }

    /// A producer sending `lines` log lines as `gate` permits (one permit a line), then
    /// ending; `started` counts how often one was started.
    fn producer(
        lines: u64,
        gate: Arc<tokio::sync::Semaphore>,
        started: Arc<AtomicUsize>,
    ) -> impl FnOnce() -> Producer {
        move || {
            started.fetch_add(1, Ordering::SeqCst);
            Box::new(move |tx| {
                Box::pin(async move {
                    for n in 0..lines {
                        gate.acquire().await.unwrap().forget();
                        if tx.send(line(n)).await.is_err() {
                            return;
                        }
                    }
                })
            })
        }
    }

    fn key() -> (Namespace, JobName) {
        ("default".parse().unwrap(), "job".parse().unwrap())
    }

    fn logs(tail: u32) -> Topic {
        Topic::Logs {
            container: None,
            tail,
        }
    }

    async fn numbers(follower: &mut Follower, count: usize) -> Vec<u64> {
        let mut seen = Vec::new();
        while seen.len() < count {
            let event = follower.next().await.expect("more lines");
            seen.extend(number(&event));
        }
        seen
    }

    #[tokio::test]
    async fn followers_share_one_upstream_and_a_late_joiner_gets_the_tail_then_live() {
        let hub = Hub::new(Duration::ZERO);
        let (ns, job) = key();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let mut first = hub.follow(
            &ns,
            &job,
            logs(3),
            producer(10, gate.clone(), started.clone()),
        );
        gate.add_permits(5);
        assert_eq!(numbers(&mut first, 5).await, [0, 1, 2, 3, 4]);
        // Joins after five lines: the last three (its tail), then the live ones, with no
        // gap and nothing twice at the seam.
        let mut late = hub.follow(
            &ns,
            &job,
            logs(3),
            producer(10, gate.clone(), started.clone()),
        );
        gate.add_permits(5);
        assert_eq!(numbers(&mut late, 8).await, [2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(numbers(&mut first, 5).await, [5, 6, 7, 8, 9]);
        assert_eq!(started.load(Ordering::SeqCst), 1, "one upstream");
        assert!(
            first.next().await.is_none(),
            "the run ended: the stream ends"
        );
        assert!(late.next().await.is_none());
    }

    #[tokio::test]
    async fn a_slow_follower_is_told_and_ended_while_a_fast_one_gets_every_line() {
        let hub = Hub::new(Duration::ZERO);
        let (ns, job) = key();
        let total = (FOLLOWER_BUFFER * 3) as u64;
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let mut fast = hub.follow(
            &ns,
            &job,
            logs(10),
            producer(total, gate.clone(), started.clone()),
        );
        let mut slow = hub.follow(&ns, &job, logs(10), producer(total, gate.clone(), started));
        gate.add_permits(total as usize);
        // The fast one reads everything while the slow one reads nothing.
        let all = numbers(&mut fast, total as usize).await;
        assert_eq!(all, (0..total).collect::<Vec<_>>());
        let mut behind = None;
        while let Some(event) = slow.next().await {
            if let StreamEvent::Behind { missed } = &*event {
                behind = Some(*missed);
            }
        }
        assert!(behind.is_some_and(|m| m > 0), "told it fell behind");
    }

    #[tokio::test(start_paused = true)]
    async fn the_upstream_lingers_after_its_last_follower_then_stops() {
        let hub = Hub::new(Duration::from_secs(5));
        let (ns, job) = key();
        let gate = Arc::new(tokio::sync::Semaphore::new(1));
        let started = Arc::new(AtomicUsize::new(0));
        let first = hub.follow(
            &ns,
            &job,
            logs(10),
            producer(100, gate.clone(), started.clone()),
        );
        drop(first);
        tokio::time::sleep(Duration::from_secs(2)).await;
        // A page reload within the linger: the same upstream.
        let again = hub.follow(
            &ns,
            &job,
            logs(10),
            producer(100, gate.clone(), started.clone()),
        );
        assert_eq!(started.load(Ordering::SeqCst), 1);
        assert_eq!(hub.upstreams(), 1);
        drop(again);
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(hub.upstreams(), 0, "closed after the linger");
        let _third = hub.follow(&ns, &job, logs(10), producer(100, gate, started.clone()));
        assert_eq!(started.load(Ordering::SeqCst), 2, "a new upstream");
    }

    #[tokio::test]
    async fn other_tails_and_other_jobs_are_other_upstreams() {
        let hub = Hub::new(Duration::ZERO);
        let (ns, job) = key();
        let other: JobName = "other".parse().unwrap();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let _a = hub.follow(
            &ns,
            &job,
            logs(10),
            producer(1, gate.clone(), started.clone()),
        );
        let _b = hub.follow(
            &ns,
            &job,
            logs(20),
            producer(1, gate.clone(), started.clone()),
        );
        let _c = hub.follow(
            &ns,
            &other,
            logs(10),
            producer(1, gate.clone(), started.clone()),
        );
        let _d = hub.follow(&ns, &job, Topic::Watch, producer(1, gate, started.clone()));
        assert_eq!(started.load(Ordering::SeqCst), 4);
    }
}

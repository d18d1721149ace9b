//! Answers shared between concurrent callers: the first caller for a key makes the
//! apiserver calls, the others arriving meanwhile wait for its answer (single flight),
//! and a successful answer is reused for a short time. With the documented Role (no
//! `watch`, so no watch-backed cache) this is what makes polling cost the apiserver
//! O(jobs per second) instead of O(polls).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// Past this many keys, expired answers are dropped when a new one is stored.
const TIDY_AT: usize = 4096;

/// Shared answers by key.
pub struct Shared<K, V> {
    reuse: Duration,
    slots: Mutex<HashMap<K, Slot<V>>>,
}

enum Slot<V> {
    /// An answer, reusable until its instant plus `reuse`.
    Ready(Instant, V),
    /// The first caller is fetching it; the others watch for it.
    Running(watch::Receiver<Option<V>>),
}

/// What a caller does, decided under the lock.
enum Turn<V> {
    Reuse(V),
    Wait(watch::Receiver<Option<V>>),
    Fetch(watch::Sender<Option<V>>),
}

impl<K: Eq + Hash + Clone, V: Clone> Shared<K, V> {
    /// Answers are reused for `reuse` (zero: only concurrent callers share one).
    pub fn new(reuse: Duration) -> Self {
        Self {
            reuse,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The answer for `key`: reused, or another caller's in flight, or `fetch`'s. An
    /// error is not shared: each waiting caller then fetches for itself (after the
    /// first's error, the next one fetches; a caller that gives up lets the next one
    /// take over).
    pub async fn get<E, F, Fut>(&self, key: K, fetch: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        let mut fetch = Some(fetch);
        loop {
            match self.turn(&key) {
                Turn::Reuse(value) => return Ok(value),
                Turn::Wait(mut rx) => {
                    if let Ok(value) = rx.wait_for(Option::is_some).await
                        && let Some(value) = value.clone()
                    {
                        return Ok(value);
                    }
                    // The fetching caller failed or went away: take a turn.
                }
                Turn::Fetch(tx) => {
                    let guard = Fetching {
                        shared: self,
                        key: &key,
                        done: false,
                    };
                    let fetch = fetch.take().expect("a caller fetches once");
                    let result = fetch().await;
                    guard.finish(result.as_ref().ok().cloned());
                    if let Ok(value) = &result {
                        let _ = tx.send(Some(value.clone()));
                    }
                    return result;
                }
            }
        }
    }

    fn turn(&self, key: &K) -> Turn<V> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        match slots.get(key) {
            Some(Slot::Ready(at, value)) if at.elapsed() < self.reuse => {
                return Turn::Reuse(value.clone());
            }
            Some(Slot::Running(rx)) if rx.has_changed().is_ok() => return Turn::Wait(rx.clone()),
            _ => {}
        }
        let (tx, rx) = watch::channel(None);
        slots.insert(key.clone(), Slot::Running(rx));
        Turn::Fetch(tx)
    }
}

/// The slot of a fetch in progress: replaced by its answer, or removed when the fetch
/// fails or its caller goes away.
struct Fetching<'a, K: Eq + Hash + Clone, V: Clone> {
    shared: &'a Shared<K, V>,
    key: &'a K,
    done: bool,
}

impl<K: Eq + Hash + Clone, V: Clone> Fetching<'_, K, V> {
    fn finish(mut self, value: Option<V>) {
        self.done = true;
        let mut slots = self.shared.slots.lock().unwrap_or_else(|e| e.into_inner());
        match value {
            Some(value) if !self.shared.reuse.is_zero() => {
                if slots.len() >= TIDY_AT {
                    let reuse = self.shared.reuse;
                    slots.retain(|_, slot| match slot {
                        Slot::Ready(at, _) => at.elapsed() < reuse,
                        Slot::Running(_) => true,
                    });
                }
                slots.insert(self.key.clone(), Slot::Ready(Instant::now(), value));
            }
            _ => {
                slots.remove(self.key);
            }
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Drop for Fetching<'_, K, V> {
    fn drop(&mut self) {
        if !self.done {
            // The caller went away mid-fetch: the next caller fetches.
            self.shared
                .slots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn slow_fetch(calls: Arc<AtomicUsize>) -> Result<usize, String> {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(n)
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch_and_reuse_it_briefly() {
        let shared = Arc::new(Shared::new(Duration::from_secs(1)));
        let calls = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..50)
            .map(|_| {
                let (shared, calls) = (shared.clone(), calls.clone());
                tokio::spawn(async move { shared.get("job", || slow_fetch(calls)).await })
            })
            .collect();
        for c in callers {
            assert_eq!(c.await.unwrap(), Ok(1));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Reused within a second, fetched again after it.
        assert_eq!(shared.get("job", || slow_fetch(calls.clone())).await, Ok(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(shared.get("job", || slow_fetch(calls.clone())).await, Ok(2));
        // Another key is another fetch.
        assert_eq!(
            shared.get("other", || slow_fetch(calls.clone())).await,
            Ok(3)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn zero_reuse_shares_only_what_is_in_flight() {
        let shared = Shared::new(Duration::ZERO);
        let calls = Arc::new(AtomicUsize::new(0));
        let (a, b) = tokio::join!(
            shared.get("job", || slow_fetch(calls.clone())),
            shared.get("job", || slow_fetch(calls.clone()))
        );
        assert_eq!((a, b), (Ok(1), Ok(1)));
        assert_eq!(shared.get("job", || slow_fetch(calls.clone())).await, Ok(2));
    }

    #[tokio::test(start_paused = true)]
    async fn errors_are_not_shared_and_a_caller_that_leaves_hands_over() {
        let shared = Arc::new(Shared::<&str, usize>::new(Duration::from_secs(1)));
        let failed: Result<usize, String> =
            shared.get("job", || async { Err("boom".into()) }).await;
        assert!(failed.is_err());
        assert_eq!(
            shared.get("job", || async { Ok::<_, String>(7) }).await,
            Ok(7)
        );

        // The first caller gives up mid-fetch; the one waiting fetches itself.
        let shared = Arc::new(Shared::<&str, usize>::new(Duration::from_secs(1)));
        let first = {
            let shared = shared.clone();
            tokio::spawn(async move {
                shared
                    .get("job", || async {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        Ok::<_, String>(1)
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let second = {
            let shared = shared.clone();
            tokio::spawn(async move { shared.get("job", || async { Ok::<_, String>(2) }).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        first.abort();
        assert_eq!(second.await.unwrap(), Ok(2));
    }
}

//! A watch-backed cache of the Jobs of the served namespace: listed once, then kept
//! current by a watch (bookmarks, reconnects, re-list on 410). Job status is served
//! from it, so frontends that poll never multiply the load on the apiserver; a Job
//! not (yet) in it is read directly.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::kube::Client;
use crate::kube::resources::{Job, jobs_path};
use crate::kube::watch::{Event, Watcher};
use crate::names::Namespace;

/// A cache of one namespace's Jobs. Cheap to clone.
#[derive(Clone, Default)]
pub struct JobCache {
    state: Arc<RwLock<State>>,
}

#[derive(Default)]
struct State {
    /// True once a list has been applied and while the watch is healthy.
    synced: bool,
    jobs: HashMap<String, Arc<Job>>,
}

impl std::fmt::Debug for JobCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("JobCache")
            .field("synced", &state.synced)
            .field("jobs", &state.jobs.len())
            .finish()
    }
}

impl JobCache {
    /// Starts keeping the cache for `namespace` in a background task that ends when
    /// `stop` completes.
    pub fn spawn(
        client: Client,
        namespace: &Namespace,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        let cache = Self::default();
        let watcher = Watcher::new(client, &jobs_path(namespace.as_str()), "");
        let task = cache.clone().keep(watcher);
        tokio::spawn(async move {
            tokio::select! {
                () = task => {}
                () = stop => {}
            }
        });
        cache
    }

    /// The cached Job, when the cache is in sync and holds it. `None` means "read it
    /// from the apiserver" (not synced yet, or a Job created a moment ago).
    pub fn get(&self, name: &str) -> Option<Arc<Job>> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        if !state.synced {
            return None;
        }
        state.jobs.get(name).cloned()
    }

    /// Whether the cache is in sync with the apiserver.
    pub fn is_synced(&self) -> bool {
        self.state.read().unwrap_or_else(|e| e.into_inner()).synced
    }

    /// How many Jobs the cache holds.
    pub fn len(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .jobs
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn apply(&self, event: Event<Job>) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Restarted(list) => {
                state.jobs = list
                    .into_iter()
                    .map(|j| (j.metadata.name.clone(), Arc::new(j)))
                    .collect();
                state.synced = true;
            }
            Event::Applied(job) => {
                state.jobs.insert(job.metadata.name.clone(), Arc::new(job));
            }
            Event::Deleted(job) => {
                state.jobs.remove(&job.metadata.name);
            }
        }
    }

    fn unsync(&self) {
        self.state.write().unwrap_or_else(|e| e.into_inner()).synced = false;
    }

    /// Applies the watcher's events forever. On an error the cache stops answering
    /// (callers read the apiserver directly) until the watcher recovers; without the
    /// `list`/`watch` permission it retries rarely, so the cache costs nothing.
    async fn keep(self, mut watcher: Watcher<Job>) {
        let mut failures = 0u32;
        loop {
            match watcher.next().await {
                Ok(event) => {
                    failures = 0;
                    self.apply(event);
                }
                Err(e) => {
                    self.unsync();
                    failures = failures.saturating_add(1);
                    let wait = if matches!(e.code(), Some(401 | 403)) {
                        if failures == 1 {
                            tracing::warn!(error = %e, "job cache disabled: the service account cannot list and watch jobs; status is read from the apiserver on each request");
                        }
                        Duration::from_secs(300)
                    } else {
                        tracing::debug!(error = %e, "job cache watch failed; retrying");
                        Duration::from_millis(250 << failures.min(7))
                    };
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str) -> Job {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap()
    }

    #[test]
    fn answers_only_when_synced() {
        let cache = JobCache::default();
        cache.apply(Event::Applied(job("a")));
        assert!(cache.get("a").is_none(), "not synced before the first list");
        cache.apply(Event::Restarted(vec![job("a"), job("b")]));
        assert!(cache.get("a").is_some());
        cache.apply(Event::Deleted(job("a")));
        assert!(cache.get("a").is_none());
        cache.apply(Event::Applied(job("c")));
        assert_eq!(cache.len(), 2);
        cache.unsync();
        assert!(
            cache.get("b").is_none(),
            "a broken watch falls back to direct reads"
        );
        cache.apply(Event::Restarted(vec![job("d")]));
        assert!(
            cache.get("b").is_none() && cache.get("d").is_some(),
            "a re-list replaces all"
        );
    }
}

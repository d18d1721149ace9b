//! Watch-backed caches of the served namespace: its Jobs, and the pods of the runs
//! SparkTest manages. Each is listed once, then kept current by a watch (bookmarks,
//! reconnects, re-list on 410). Job status and log requests are served from them, so
//! frontends that poll never multiply the load on the apiserver; whatever a cache does
//! not hold (not synced yet, created a moment ago, not managed) is read directly.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::kube::Client;
use crate::kube::resources::{Job, LabelSelector, ObjectMeta, Pod, jobs_path, pods_path, query};
use crate::kube::watch::{Event, Watcher};
use crate::names::Namespace;

/// A cache of one namespace's objects of one kind. Cheap to clone.
pub struct Cache<T> {
    state: Arc<RwLock<State<T>>>,
}

/// The namespace's Jobs (all of them: status is asked of any Job).
pub type JobCache = Cache<Job>;

/// The pods of the namespace's SparkTest-managed runs.
pub type PodCache = Cache<Pod>;

/// The caches of one namespace.
#[derive(Debug, Clone)]
pub struct Caches {
    pub jobs: JobCache,
    pub pods: PodCache,
}

/// Called with each object a cache receives (listed or changed).
type Observer<T> = Option<Arc<dyn Fn(&T) + Send + Sync>>;

/// Called with each Job the job cache receives (listed or changed): how a finished
/// run reaches the archive the moment the watch sees it.
pub type JobObserver = Arc<dyn Fn(&Job) + Send + Sync>;

impl Caches {
    /// Starts both caches of `namespace`; each stops when its `stop()` completes.
    pub fn spawn<F>(
        client: &Client,
        namespace: &Namespace,
        stop: impl Fn() -> F,
        observer: Option<JobObserver>,
    ) -> Self
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        Self {
            jobs: JobCache::spawn(client.clone(), namespace, stop(), observer),
            pods: PodCache::spawn(client.clone(), namespace, stop()),
        }
    }
}

/// An object the caches can key by name.
pub trait Cached: DeserializeOwned + Send + Sync + 'static {
    fn meta(&self) -> &ObjectMeta;
}

impl Cached for Job {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

impl Cached for Pod {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

struct State<T> {
    /// True once a list has been applied and while the watch is healthy.
    synced: bool,
    objects: HashMap<String, Arc<T>>,
}

impl<T> Default for State<T> {
    fn default() -> Self {
        Self {
            synced: false,
            objects: HashMap::new(),
        }
    }
}

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Self {
            state: Arc::default(),
        }
    }
}

impl<T> Clone for Cache<T> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Cache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("Cache")
            .field("synced", &state.synced)
            .field("objects", &state.objects.len())
            .finish()
    }
}

/// Objects a list request of the caches (client-go's informers list 500 at a time).
pub const LIST_PAGE: u32 = 500;

impl JobCache {
    /// Starts keeping the Jobs of `namespace` in a background task that ends when
    /// `stop` completes.
    pub fn spawn(
        client: Client,
        namespace: &Namespace,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
        observer: Option<JobObserver>,
    ) -> Self {
        Self::spawn_watch(
            Watcher::new(client, &jobs_path(namespace.as_str()), "").paged(LIST_PAGE),
            "jobs",
            stop,
            observer,
        )
    }
}

impl PodCache {
    /// Starts keeping the pods of SparkTest-managed runs in `namespace`.
    pub fn spawn(
        client: Client,
        namespace: &Namespace,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        // Every pod of a SparkTest run carries its Job template's `app: sparktest`.
        let selector = query(&[("labelSelector", crate::runs::SPARKTEST_SELECTOR.to_string())]);
        Self::spawn_watch(
            Watcher::new(client, &pods_path(namespace.as_str()), &selector[1..]).paged(LIST_PAGE),
            "pods",
            stop,
            None,
        )
    }

    /// The pods `selector` selects, when the cache is in sync and holds at least one:
    /// every pod of a Job carries its template's labels, so holding one pod of a run
    /// means holding all of them. `None` means "list them from the apiserver" (a Job
    /// SparkTest did not create, or one whose first pod is a moment old).
    pub fn select(&self, selector: &LabelSelector) -> Option<Vec<Pod>> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        if !state.synced {
            return None;
        }
        let pods: Vec<Pod> = state
            .objects
            .values()
            .filter(|p| selector.matches(&p.metadata.labels))
            .map(|p| Pod::clone(p))
            .collect();
        (!pods.is_empty()).then_some(pods)
    }
}

impl<T: Cached> Cache<T> {
    fn spawn_watch(
        watcher: Watcher<T>,
        what: &'static str,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
        observer: Observer<T>,
    ) -> Self {
        let cache = Self::default();
        let task = cache.clone().keep(watcher, what, observer);
        tokio::spawn(async move {
            tokio::select! {
                () = task => {}
                () = stop => {}
            }
        });
        cache
    }

    /// The cached object, when the cache is in sync and holds it. `None` means "read
    /// it from the apiserver" (not synced yet, or created a moment ago).
    pub fn get(&self, name: &str) -> Option<Arc<T>> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        if !state.synced {
            return None;
        }
        state.objects.get(name).cloned()
    }

    /// Whether the cache is in sync with the apiserver.
    pub fn is_synced(&self) -> bool {
        self.state.read().unwrap_or_else(|e| e.into_inner()).synced
    }

    /// How many objects the cache holds.
    pub fn len(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .objects
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn apply(&self, event: Event<T>) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Restarted(list) => {
                state.objects = list
                    .into_iter()
                    .map(|o| (o.meta().name.clone(), Arc::new(o)))
                    .collect();
                state.synced = true;
            }
            Event::Applied(o) => {
                state.objects.insert(o.meta().name.clone(), Arc::new(o));
            }
            Event::Deleted(o) => {
                state.objects.remove(&o.meta().name);
            }
        }
    }

    fn unsync(&self) {
        self.state.write().unwrap_or_else(|e| e.into_inner()).synced = false;
    }

    /// Applies the watcher's events forever. On an error the cache stops answering
    /// (callers read the apiserver directly) until the watcher recovers; without the
    /// `list`/`watch` permission it retries rarely, so the cache costs nothing.
    async fn keep(self, mut watcher: Watcher<T>, what: &'static str, observer: Observer<T>) {
        let mut failures = 0u32;
        loop {
            match watcher.next().await {
                Ok(event) => {
                    failures = 0;
                    if let Some(observe) = &observer {
                        match &event {
                            Event::Restarted(list) => list.iter().for_each(|o| observe(o)),
                            Event::Applied(o) => observe(o),
                            Event::Deleted(_) => {}
                        }
                    }
                    self.apply(event);
                }
                Err(e) => {
                    self.unsync();
                    failures = failures.saturating_add(1);
                    let wait = if matches!(e.code(), Some(401 | 403)) {
                        if failures == 1 {
                            tracing::warn!(error = %e, cache = what, "cache disabled: the service account cannot list and watch {what}; they are read from the apiserver on each request");
                        }
                        Duration::from_secs(300)
                    } else {
                        tracing::debug!(error = %e, cache = what, "cache watch failed; retrying");
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

    fn pod(name: &str, uid: &str) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name, "labels": {
            "batch.kubernetes.io/controller-uid": uid,
            "app": "sparktest"}}}))
        .unwrap()
    }

    fn selector(uid: &str) -> LabelSelector {
        serde_json::from_value(serde_json::json!({"matchLabels": {
            "batch.kubernetes.io/controller-uid": uid}}))
        .unwrap()
    }

    #[test]
    fn pods_are_selected_by_the_jobs_selector_and_absent_means_list() {
        let cache = PodCache::default();
        cache.apply(Event::Applied(pod("a-1", "u1")));
        assert!(cache.select(&selector("u1")).is_none(), "not synced yet");
        cache.apply(Event::Restarted(vec![
            pod("a-1", "u1"),
            pod("a-2", "u1"),
            pod("b-1", "u2"),
        ]));
        let mut names: Vec<String> = cache
            .select(&selector("u1"))
            .unwrap()
            .into_iter()
            .map(|p| p.metadata.name)
            .collect();
        names.sort();
        assert_eq!(names, ["a-1", "a-2"]);
        assert!(
            cache.select(&selector("u3")).is_none(),
            "no pod held: the caller lists (an unmanaged Job, or a new one)"
        );
        cache.unsync();
        assert!(cache.select(&selector("u1")).is_none());
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

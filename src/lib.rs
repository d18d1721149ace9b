//! sparktest-k8s connects SparkTest to Kubernetes: a REST API over a hand-built
//! Kubernetes client that creates test runs as Jobs, reads their status and logs, and
//! deletes them.
//!
//! # Layout
//!
//! - `main.rs`: parses flags, starts logging, builds the state
//!   ([`AppState::from_settings`]), binds, calls [`run`]; or calls [`check::run`].
//! - [`cli`]: flags and their environment variables.
//! - [`cluster`]: finding the cluster (kubeconfig, in-cluster, environment) as values;
//!   [`cluster::find`] logs what it chose.
//!   - [`cluster::kubeconfig`]: kubeconfig files with client-go's semantics.
//!   - [`cluster::incluster`]: the pod's service account.
//! - [`kube`]: the Kubernetes REST client.
//!   - [`kube::client`]: pooled HTTPS, timeouts, retries, Status errors.
//!   - [`kube::tls`]: rustls configuration (ring provider).
//!   - [`kube::auth`], [`kube::exec`]: outbound credentials and exec plugins.
//!   - [`kube::watch`]: list-then-watch with bookmarks, reconnects and re-lists.
//!   - [`kube::resources`]: the objects and paths used.
//!   - [`kube::error`]: [`kube::KubeError`] and `metav1.Status`.
//! - [`jobs`]: job status, pod choice and logs, deletion, listing, live streams
//!   ([`jobs::stream`], its decisions in `jobs::stream::follow`), events, a run's
//!   [`jobs::timeline`], and [`jobs::cache`], the watch-backed caches of each
//!   namespace's Jobs and run pods.
//! - [`runs`]: test runs as Jobs: [`runs::spec`] (the request model, merge,
//!   validation), [`runs::defaults`] (defaults and maxima), [`runs::manifest`] (the Job
//!   body and labels), [`runs::create`] (creation, run ids); [`runs::templates`], the
//!   templates file.
//! - [`testruns`]: declarative runs, the `TestRun` resource and its controller
//!   (`--watch-testruns`): the decision ([`testruns::decide`]), the watches and status
//!   writes ([`testruns::controller`]), the leader gate ([`testruns::leader`]).
//! - [`api`]: the warp filter tree, one filter per endpoint, and the error mapping;
//!   [`api::stream`] serves the live endpoints (SSE or WebSocket), [`api::auth`]
//!   authenticates callers, [`api::health`] reports the connection, [`api::probes`]
//!   answers the kubelet.
//! - [`health`]: the cached, deadline-bound connectivity probe behind `/api/k8s/health`.
//! - [`tokens`]: the callers' bearer tokens, loaded from their file and reloaded.
//! - [`metrics`]: the Prometheus metrics (one global registry) and their bounded labels;
//!   [`api::metrics`] serves them.
//! - [`server`]: the hyper accept loop, its limits and the graceful drain.
//! - [`lease`]: leader election over a `coordination.k8s.io/v1` Lease, as client-go's.
//! - [`check`]: the `sparktest-k8s check` subcommand.
//! - [`names`]: job names, run ids, namespaces that parse; [`quantity`]: CPU and
//!   memory quantities that compare.
//! - [`state`]: what handlers share, built from the settings with a typed
//!   [`state::StartupError`].
//! - [`secret`], [`time`], [`files`]: redacted secrets, RFC 3339, bounded file reads.

pub mod api;
pub mod archive;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod files;
pub mod health;
pub mod jobs;
pub mod kube;
pub mod lease;
pub mod metrics;
pub mod names;
pub mod quantity;
pub mod runs;
pub mod secret;
pub mod server;
pub mod state;
pub mod testruns;
pub mod time;
pub mod tokens;

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;

pub use state::AppState;

/// How the server stops on SIGTERM.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    /// Keep serving this long with `/readyz` answering 503, so the endpoint is removed
    /// from the Service before the listener closes.
    pub delay: Duration,
    /// Then let in-flight requests finish for at most this long.
    pub grace: Duration,
}

/// Serves the API on `listener` until `shutdown` completes; then turns unready, keeps
/// serving for `drain.delay`, stops accepting, ends live streams and drains in-flight
/// requests for at most `drain.grace`.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Drain,
) {
    serve(listener, state, Box::pin(shutdown), drain).await;
}

/// [`run`] without generics, so that the server and the route tree are compiled once,
/// here, rather than again in every crate that starts the service.
async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    drain: Drain,
) {
    let draining = state.clone();
    let unready = state.clone();
    let stop_accepting = async move {
        shutdown.await;
        unready.set_unready();
        if !drain.delay.is_zero() {
            tracing::info!(delay = ?drain.delay, "unready: serving on until the endpoint is removed");
            tokio::time::sleep(drain.delay).await;
        }
    };
    server::serve(
        listener,
        api::routes(state),
        server::ServerLimits::default(),
        stop_accepting,
        move || draining.begin_shutdown(),
        drain.grace,
    )
    .await;
}

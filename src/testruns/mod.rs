//! Declarative runs: the `TestRun` custom resource (`sparktest.dev/v1alpha1`,
//! `deploy/components/testruns/`) and its controller. A TestRun's spec is what
//! `POST /api/test-runs` takes, in Kubernetes spelling; the controller turns each one
//! into the Job `test-run-{metadata.uid}` through the same code as the REST path
//! ([`crate::runs`]: merge over the template, validation, the Job body), owned by the
//! TestRun, and reports the Job's progress in the TestRun's status.
//!
//! - [`resource`]: the TestRun, its status and conditions, the Jobs it owns, the paths.
//! - [`spec`]: a TestRun's spec as a [`crate::runs::RunSpec`] and
//!   [`crate::runs::RunIdentity`], or why it is refused (the field named).
//! - [`decide`]: the pure decision: given a TestRun and its Job (if any), what to
//!   create and what the status should be.
//! - [`controller`]: the watches (TestRuns and their Jobs), the work queue, the
//!   periodic resync, creating Jobs and writing the status subresource.
//! - [`leader`]: the leader gate the controller reconciles behind ([`LeaderGate`]):
//!   `crate::lease`'s leadership in the service, a fake in tests.
//!
//! Off unless `--watch-testruns` (`WATCH_TESTRUNS=true`); [`start`] starts it.

pub mod controller;
pub mod decide;
pub mod leader;
pub mod resource;
pub mod spec;

use std::sync::Arc;

pub use controller::{Controller, ControllerOptions};
pub use decide::{Decision, decide};
pub use leader::{LeaderGate, WatchGate};
pub use resource::{Condition, OwnerReference, RunJob, TestRun, TestRunStatus};

/// The API group of the TestRun resource.
pub const GROUP: &str = "sparktest.dev";
/// Its only version.
pub const VERSION: &str = "v1alpha1";
/// `sparktest.dev/v1alpha1`
pub const API_VERSION: &str = "sparktest.dev/v1alpha1";
pub const KIND: &str = "TestRun";
/// The resource name in paths and RBAC rules.
pub const PLURAL: &str = "testruns";

/// The Lease the replicas elect the controller's leader with, in the service's own
/// namespace. The RBAC of `deploy/components/testruns/` names it.
pub const LEASE_NAME: &str = "sparktest-k8s-testruns";

/// Starts the controller for every namespace the service serves, behind leader
/// election through [`crate::lease`] (the Lease [`LEASE_NAME`] in the service's own
/// namespace, client-go's timing), until the server starts draining: see
/// [`spawn_elected`]. Without a cluster there is nothing to start (a warning says so).
pub fn start(state: &crate::AppState) -> Option<tokio::task::JoinHandle<()>> {
    let client = match state.client() {
        Ok(client) => client.clone(),
        Err(e) => {
            tracing::warn!(error = %e, "WATCH_TESTRUNS is on but there is no cluster: TestRuns are not reconciled");
            return None;
        }
    };
    let namespaces: Vec<_> = state.namespaces().cloned().collect();
    let lease = crate::lease::LeaseConfig::new(state.namespace().clone(), LEASE_NAME);
    tracing::info!(
        namespaces = %namespaces.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(","),
        lease = %format!("{}/{LEASE_NAME}", state.namespace()),
        identity = %lease.identity,
        "TestRun controller on: it reconciles while this replica holds the lease"
    );
    Some(spawn_elected(
        client,
        namespaces,
        Arc::clone(&state.policy().runs),
        lease,
        ControllerOptions::default(),
        state.shutting_down(),
    ))
}

/// The controller of `namespaces` behind leader election through `lease`: it
/// reconciles while this replica holds the Lease, until `stop` completes. The Lease is
/// released only once the controller has stopped, never while it may still write; the
/// returned task ends after that release (await it before exiting, so that another
/// replica takes over at once rather than when the Lease expires).
///
/// # Panics
///
/// When `lease` is invalid ([`crate::lease::LeaseConfig::validate`]).
pub fn spawn_elected(
    client: crate::kube::Client,
    namespaces: Vec<crate::names::Namespace>,
    runs: Arc<crate::state::RunConfig>,
    lease: crate::lease::LeaseConfig,
    options: ControllerOptions,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let (stopped, released) = tokio::sync::oneshot::channel::<()>();
    let (leadership, election) = crate::lease::spawn(client.clone(), lease, async move {
        let _ = released.await;
    });
    let controller = Controller::new(client, namespaces, runs, options);
    tokio::spawn(async move {
        controller.run(leadership, stop).await;
        drop(stopped);
        let _ = election.await;
    })
}

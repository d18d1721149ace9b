//! Test runs as Jobs: what a run asks for ([`RunSpec`], from a template and the
//! request), the limits it is held to ([`RunDefaults`]), the Job body it becomes and
//! its creation through `POST /apis/batch/v1/namespaces/{ns}/jobs`.
//!
//! - [`spec`]: the request model, merging a request over its template, validation and
//!   resolution.
//! - [`defaults`]: the configured defaults and maxima, their flag syntax and check.
//! - [`manifest`]: the Job body, its labels and annotations.
//! - [`create`]: creating the Job, and new run ids.
//! - [`templates`]: the templates file.

pub mod create;
pub mod defaults;
pub mod manifest;
pub mod spec;
pub mod templates;

pub use create::{CreateError, create_job, new_run_id};
pub use defaults::RunDefaults;
pub use manifest::{
    APP, CONTAINER, DEFINITION_LABEL, MANAGED_BY, NAME_ANNOTATION, RUN_ID_LABEL, RunIdentity,
    SPARKTEST_SELECTOR, TEMPLATE_LABEL, job_body,
};
pub use spec::{
    InvalidRun, MAX_BACKOFF_LIMIT, MAX_TIMEOUT_SECONDS, MAX_TTL_SECONDS, Resolved, ResourceList,
    Resources, RunSpec,
};

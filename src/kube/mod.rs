//! The hand-built Kubernetes REST client: TLS to the apiserver, outbound authentication,
//! typed requests to `batch/v1` and `core/v1`, and `metav1.Status` errors.

pub mod auth;
pub mod client;
pub mod error;
pub mod exec;
pub mod resources;
pub mod tls;
pub mod watch;

pub use client::{Client, ClientOptions};
pub use error::KubeError;

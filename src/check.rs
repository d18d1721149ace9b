//! `sparktest-k8s check`: what the troubleshooting guide asks people to do by hand —
//! which config source, server, namespace and auth kind are used, the server version,
//! whether the service account holds every permission the service needs, and which of
//! the optional ones (watch, events) it has, with what is lost without each.

use std::fmt::Write as _;
use std::process::ExitCode;

use bytes::Bytes;
use http::Method;
use serde_json::json;

use crate::cli::ClusterFlags;
use crate::cluster;
use crate::kube::Client;
use crate::kube::resources::{AccessReview, Version};

/// One permission of the documented Role: API group, resource, subresource, verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
    pub verb: &'static str,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        let sub = if self.subresource.is_empty() {
            String::new()
        } else {
            format!("/{}", self.subresource)
        };
        write!(f, "{} {group}/{}{sub}", self.verb, self.resource)
    }
}

const fn perm(
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    verb: &'static str,
) -> Permission {
    Permission {
        group,
        resource,
        subresource,
        verb,
    }
}

/// The documented Role: jobs get/list/create/delete, pods get/list, pods/log get.
pub const REQUIRED: &[Permission] = &[
    perm("batch", "jobs", "", "get"),
    perm("batch", "jobs", "", "list"),
    perm("batch", "jobs", "", "create"),
    perm("batch", "jobs", "", "delete"),
    perm("", "pods", "", "get"),
    perm("", "pods", "", "list"),
    perm("", "pods", "log", "get"),
];

/// Beyond the documented Role, what `deploy/rbac.yaml` also grants, each with what is
/// lost without it: the service works without them, with less.
pub const OPTIONAL: &[(Permission, &str)] = &[
    (
        perm("batch", "jobs", "", "watch"),
        "no watch-backed job cache (every status and log request reads the Job from the \
         apiserver) and GET /api/k8s/jobs/{name}/watch fails",
    ),
    (
        perm("", "pods", "", "watch"),
        "no run-pod cache (every status, log and list request lists the pods) and \
         GET /api/k8s/jobs/{name}/watch fails",
    ),
    (
        perm("", "events", "", "list"),
        "GET /api/k8s/jobs/{name}/events answers 502",
    ),
];

/// The `SelfSubjectAccessReview` body asking whether `permission` is granted in `namespace`.
pub fn access_review(namespace: &str, permission: &Permission) -> serde_json::Value {
    let mut attributes = json!({
        "namespace": namespace,
        "verb": permission.verb,
        "resource": permission.resource,
    });
    if !permission.group.is_empty() {
        attributes["group"] = permission.group.into();
    }
    if !permission.subresource.is_empty() {
        attributes["subresource"] = permission.subresource.into();
    }
    json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": { "resourceAttributes": attributes },
    })
}

/// Asks the apiserver whether the service's credentials hold `permission`.
pub async fn is_allowed(
    client: &Client,
    namespace: &str,
    permission: &Permission,
) -> Result<AccessReview, crate::kube::KubeError> {
    let body = Bytes::from(access_review(namespace, permission).to_string());
    client
        .request_json(
            Method::POST,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            Some((body, "application/json")),
        )
        .await
}

/// Runs the check and prints its report on stdout. Exit 0 when everything is in place.
pub async fn run(flags: &ClusterFlags) -> ExitCode {
    let (report, ok) = report(flags).await;
    print!("{report}");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The report text and whether every check passed.
pub async fn report(flags: &ClusterFlags) -> (String, bool) {
    let mut out = String::new();
    let found = cluster::find(&flags.environment());
    let connection = crate::state::Connection::to(&found, flags.client_options());
    let config = found.ok();
    let namespace = cluster::default_namespace(flags.namespace.as_deref(), config.as_ref());
    let client = match (&connection.client, &config) {
        (Ok(client), Some(config)) => {
            let _ = writeln!(out, "config source:  {}", config.source);
            let _ = writeln!(out, "server:         {}", config.server);
            let _ = writeln!(out, "namespace:      {namespace}");
            let _ = writeln!(out, "auth:           {}", client.auth_kind());
            if config.tls.insecure_skip_verify {
                let _ = writeln!(
                    out,
                    "WARNING:        insecure-skip-tls-verify: the server certificate is not verified"
                );
            }
            client
        }
        _ => {
            let why = connection
                .client
                .as_ref()
                .err()
                .cloned()
                .unwrap_or_default();
            let _ = writeln!(out, "FAIL  no usable cluster configuration: {why}");
            let _ = writeln!(
                out,
                "fix:  point --kubeconfig or KUBECONFIG at a kubeconfig, or run in a pod with a service account"
            );
            return (out, false);
        }
    };
    match client.get_json::<Version>("/version").await {
        Ok(v) => {
            let _ = writeln!(out, "server version: {} ({})", v.git_version, v.platform);
        }
        Err(e) => {
            let _ = writeln!(out, "FAIL  cannot reach the apiserver: {e}");
            let _ = writeln!(
                out,
                "fix:  check the server URL, the network path and the certificate authority"
            );
            return (out, false);
        }
    }
    let _ = writeln!(out, "permissions in namespace {namespace}:");
    let mut missing = Vec::new();
    for permission in REQUIRED {
        match is_allowed(client, &namespace, permission).await {
            Ok(review) if review.status.allowed => {
                let _ = writeln!(out, "  ok       {permission}");
            }
            Ok(_) => {
                let _ = writeln!(out, "  MISSING  {permission}");
                missing.push(*permission);
            }
            Err(e) => {
                let _ = writeln!(out, "  FAIL     {permission}: {e}");
                missing.push(*permission);
            }
        }
    }
    let _ = writeln!(out, "optional, granted by deploy/rbac.yaml:");
    for (permission, without) in OPTIONAL {
        match is_allowed(client, &namespace, permission).await {
            Ok(review) if review.status.allowed => {
                let _ = writeln!(out, "  ok       {permission}");
            }
            Ok(_) => {
                let _ = writeln!(out, "  absent   {permission}: {without}");
            }
            Err(e) => {
                let _ = writeln!(out, "  unknown  {permission}: {e}");
            }
        }
    }
    if missing.is_empty() {
        let _ = writeln!(out, "all checks passed");
        return (out, true);
    }
    let _ = writeln!(
        out,
        "fix:  bind the Role of deploy/rbac.yaml to the service account in namespace {namespace} \
         (kubectl apply -k deploy/), or add to its Role:"
    );
    for p in &missing {
        let _ = writeln!(
            out,
            "      - apiGroups: [\"{}\"]  resources: [\"{}{}\"]  verbs: [\"{}\"]",
            p.group,
            p.resource,
            if p.subresource.is_empty() {
                String::new()
            } else {
                format!("/{}", p.subresource)
            },
            p.verb
        );
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_review_matches_the_recorded_request() {
        // fixtures/recorded/102_ssar_get_pods_log_default_allowed.meta.json (request_body)
        let recorded = json!({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "spec": {"resourceAttributes": {"namespace": "default", "verb": "get", "resource": "pods", "subresource": "log"}}});
        assert_eq!(
            access_review("default", &perm("", "pods", "log", "get")),
            recorded
        );
    }
}

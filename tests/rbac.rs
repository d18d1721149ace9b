//! The Role in deploy/rbac.yaml against the code: every apiserver request the service
//! makes — driven through every endpoint against a recording mock — must be allowed by
//! the Role, and every verb the Role grants must be used by some request.
//!
//! Requests are turned into RBAC attributes the way kube-apiserver's RequestInfo
//! resolver does (path → group, resource, subresource, name; method and `watch=true` →
//! verb).

mod common;
#[path = "common/testruns.rs"]
mod fake_kube;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use serde::Deserialize;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

#[derive(Debug, Deserialize)]
struct Object {
    kind: String,
    #[serde(default)]
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    api_groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
}

/// (api group, resource with subresource, verb)
type Attributes = (String, String, String);

fn role_rules() -> Vec<Rule> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/rbac.yaml")).unwrap();
    let objects: Vec<Object> = serde_saphyr::from_str_multiple(&text).unwrap();
    let roles: Vec<Object> = objects.into_iter().filter(|o| o.kind == "Role").collect();
    assert_eq!(roles.len(), 1, "one Role in deploy/rbac.yaml");
    roles.into_iter().next().unwrap().rules
}

/// RBAC attributes of a resource request; `None` for non-resource URLs (`/version`).
fn attributes(method: &str, path: &str, query: Option<&str>) -> Option<Attributes> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None,
    };
    let rest = match rest {
        ["namespaces", _ns, rest @ ..] => rest,
        other => other,
    };
    let (resource, name) = match rest {
        [resource] => (resource.to_string(), None),
        [resource, name] => (resource.to_string(), Some(*name)),
        [resource, name, sub] => (format!("{resource}/{sub}"), Some(*name)),
        _ => panic!("unexpected path {path}"),
    };
    let watch = query.is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    let verb = match (method, name) {
        ("GET", Some(_)) => "get",
        ("GET", None) if watch => "watch",
        ("GET", None) => "list",
        ("POST", None) => "create",
        ("DELETE", Some(_)) => "delete",
        ("DELETE", None) => "deletecollection",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        other => panic!("unexpected request {other:?} {path}"),
    };
    Some((group.to_string(), resource, verb.to_string()))
}

fn allowed(rules: &[Rule], (group, resource, verb): &Attributes) -> bool {
    rules.iter().any(|r| {
        r.api_groups.iter().any(|g| g == group)
            && r.resources.iter().any(|x| x == resource)
            && r.verbs.iter().any(|v| v == verb)
    })
}

/// Granted to every authenticated user by Kubernetes' default `system:basic-user`
/// ClusterRole; `sparktest-k8s check` uses it, the Role need not grant it.
const GRANTED_BY_DEFAULT: &[(&str, &str, &str)] =
    &[("authorization.k8s.io", "selfsubjectaccessreviews", "create")];

/// Verbs of the documented Role the code does not call yet, with the endpoint that
/// will: the test fails once it is called, so the entry must go then. (Empty since
/// `POST /api/test-runs` creates jobs.)
const NOT_CALLED_YET: &[(&str, &str, &str)] = &[];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_apiserver_call_is_allowed_by_the_role_and_every_verb_is_used() {
    let (pki, api) = apiserver().await;
    let mock = &api.mock;
    let json = |fixture: &str| {
        ResponseTemplate::new(200).set_body_raw(recorded(fixture).body, "application/json")
    };
    Mock::given(path("/version"))
        .respond_with(json("01_version"))
        .mount(mock)
        .await;
    // Jobs: list (health, watch), watch, get, delete.
    Mock::given(path("/apis/batch/v1/namespaces/default/jobs"))
        .and(query_param("watch", "true"))
        // Answered after a moment: the pod watcher (its own task) opens its watch before
        // the job completes and the watch endpoint ends both.
        .respond_with(
            json("56_watch_jobs_from_rv_create_complete_delete_admin")
                .set_delay(Duration::from_millis(500)),
        )
        .with_priority(1)
        .mount(mock)
        .await;
    // The watch's list holds a running Job (the recorded list's shape, with 11 as its
    // item), so the watch goes on to watch it.
    let mut running_list: serde_json::Value =
        serde_json::from_slice(&recorded("15_job_list").body).unwrap();
    running_list["items"] = serde_json::json!([serde_json::from_slice::<serde_json::Value>(
        &recorded("11_job_get_running").body
    )
    .unwrap()]);
    running_list["metadata"]["resourceVersion"] = "380".into();
    Mock::given(path("/apis/batch/v1/namespaces/default/jobs"))
        .and(query_param("fieldSelector", "metadata.name=test-job-123"))
        .respond_with(ResponseTemplate::new(200).set_body_json(running_list))
        .mount(mock)
        .await;
    Mock::given(path("/apis/batch/v1/namespaces/default/jobs"))
        .respond_with(json("68_job_list_final"))
        .with_priority(10)
        .mount(mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/apis/batch/v1/namespaces/default/jobs/test-job-123"))
        .respond_with(json("09_job_get_completed"))
        .mount(mock)
        .await;
    Mock::given(method("GET"))
        .and(path(
            "/apis/batch/v1/namespaces/default/jobs/test-job-delete-me",
        ))
        .respond_with(json("57_job_create_201"))
        .mount(mock)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(json("61_job_delete_background"))
        .mount(mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/apis/batch/v1/namespaces/default/jobs"))
        .respond_with(replay("57_job_create_201"))
        .mount(mock)
        .await;
    // Pods: list, watch, get, log.
    Mock::given(path("/api/v1/namespaces/default/pods"))
        .and(query_param("watch", "true"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(1)
        .mount(mock)
        .await;
    Mock::given(path("/api/v1/namespaces/default/pods"))
        .respond_with(json("19_pods_list_job_completed"))
        .mount(mock)
        .await;
    Mock::given(path("/api/v1/namespaces/default/pods/test-job-123-h6gvc"))
        .respond_with(json("25_pod_get_completed"))
        .mount(mock)
        .await;
    Mock::given(path(
        "/api/v1/namespaces/default/pods/test-job-123-h6gvc/log",
    ))
    .respond_with(
        ResponseTemplate::new(200)
            .set_body_raw(recorded("28_log_completed_timestamps").body, "text/plain"),
    )
    .mount(mock)
    .await;
    Mock::given(path("/api/v1/namespaces/default/events"))
        .respond_with(json("70_events_job_completed_admin"))
        .mount(mock)
        .await;
    Mock::given(path(
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
    ))
    .respond_with(ResponseTemplate::new(201).set_body_raw(
        recorded("98_ssar_get_jobs_default_allowed").body,
        "application/json",
    ))
    .mount(mock)
    .await;

    let state = state_for(&pki, &api);
    let routes = sparktest_k8s::api::routes(state.clone());
    for (m, target) in [
        ("GET", "/api/k8s/health"),
        ("GET", "/api/k8s/jobs/test-job-123/status"),
        ("GET", "/api/k8s/jobs/test-job-123/logs"),
        (
            "GET",
            "/api/k8s/jobs/test-job-123/logs?pod=test-job-123-h6gvc",
        ),
        ("GET", "/api/k8s/jobs/test-job-123/events"),
        ("DELETE", "/api/k8s/jobs/test-job-delete-me"),
        ("GET", "/api/k8s/jobs"),
        ("POST", "/api/test-runs"),
    ] {
        let response = warp::test::request()
            .method(m)
            .path(target)
            .json(&serde_json::json!({"image": "busybox:1.36", "commands": ["true"]}))
            .reply(&routes)
            .await;
        assert!(
            response.status().is_success(),
            "{m} {target}: {} {:?}",
            response.status(),
            response.body()
        );
    }
    // The live endpoints, read to their end.
    for target in [
        "/api/k8s/jobs/test-job-123/logs/stream",
        "/api/k8s/jobs/test-job-123/watch",
    ] {
        let response = tokio::time::timeout(
            Duration::from_secs(20),
            warp::test::request().path(target).reply(&routes),
        )
        .await
        .expect("the stream ends once the job is complete");
        assert!(response.status().is_success(), "{target}");
        assert!(
            String::from_utf8_lossy(response.body()).contains("event:status"),
            "{target}"
        );
    }
    // And `sparktest-k8s check`'s review.
    let permission = sparktest_k8s::check::REQUIRED[0];
    sparktest_k8s::check::is_allowed(state.client().unwrap(), "default", &permission)
        .await
        .unwrap();

    let rules = role_rules();
    let mut used: BTreeSet<Attributes> = BTreeSet::new();
    for request in mock.received_requests().await.unwrap() {
        let Some(attrs) = attributes(
            request.method.as_str(),
            request.url.path(),
            request.url.query(),
        ) else {
            continue;
        };
        let by_default = GRANTED_BY_DEFAULT.iter().any(|(g, r, v)| {
            (*g, r.to_string(), v.to_string())
                == (attrs.0.as_str(), attrs.1.clone(), attrs.2.clone())
        });
        assert!(
            by_default || allowed(&rules, &attrs),
            "{} {} needs {attrs:?}, which deploy/rbac.yaml does not grant",
            request.method,
            request.url
        );
        used.insert(attrs);
    }
    for rule in &rules {
        for group in &rule.api_groups {
            for resource in &rule.resources {
                for verb in &rule.verbs {
                    let attrs = (group.clone(), resource.clone(), verb.clone());
                    let pending = NOT_CALLED_YET
                        .iter()
                        .any(|(g, r, v)| g == group && r == resource && v == verb);
                    if pending {
                        assert!(
                            !used.contains(&attrs),
                            "{attrs:?} is called now: remove it from NOT_CALLED_YET"
                        );
                    } else {
                        assert!(
                            used.contains(&attrs),
                            "deploy/rbac.yaml grants {attrs:?}, which no request uses"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn attributes_follow_the_apiservers_request_info() {
    let a = |m, p, q| attributes(m, p, q).map(|(g, r, v)| format!("{g}|{r}|{v}"));
    assert_eq!(
        a("GET", "/apis/batch/v1/namespaces/ns/jobs", None).unwrap(),
        "batch|jobs|list"
    );
    assert_eq!(
        a(
            "GET",
            "/apis/batch/v1/namespaces/ns/jobs",
            Some("watch=true&resourceVersion=1")
        )
        .unwrap(),
        "batch|jobs|watch"
    );
    assert_eq!(
        a(
            "GET",
            "/api/v1/namespaces/ns/pods/p/log",
            Some("follow=true")
        )
        .unwrap(),
        "|pods/log|get"
    );
    assert_eq!(
        a("DELETE", "/apis/batch/v1/namespaces/ns/jobs/j", None).unwrap(),
        "batch|jobs|delete"
    );
    assert_eq!(
        a(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            None
        )
        .unwrap(),
        "authorization.k8s.io|selfsubjectaccessreviews|create"
    );
    assert_eq!(a("GET", "/version", None), None);
}

// --- deploy/components/testruns: the TestRun controller's RBAC ----------------------

/// A rule of the component: like [`Rule`], and possibly limited to named objects.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NamedRule {
    api_groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
    #[serde(default)]
    resource_names: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct PatchOp {
    op: String,
    path: String,
    value: NamedRule,
}

#[derive(Debug, Deserialize)]
struct NamedRole {
    kind: String,
    #[serde(default)]
    rules: Vec<NamedRule>,
}

/// The component's rules: those its JSON patch adds to the base Role (in every served
/// namespace), and those of its leader-election Role (the home namespace).
fn component_rules() -> (Vec<NamedRule>, Vec<NamedRule>) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/components/testruns");
    let patch: Vec<PatchOp> =
        serde_saphyr::from_str(&std::fs::read_to_string(format!("{dir}/role-patch.yaml")).unwrap())
            .unwrap();
    assert!(
        patch.iter().all(|p| p.op == "add" && p.path == "/rules/-"),
        "role-patch.yaml only adds rules: {patch:?}"
    );
    let objects: Vec<NamedRole> = serde_saphyr::from_str_multiple(
        &std::fs::read_to_string(format!("{dir}/leader-election.yaml")).unwrap(),
    )
    .unwrap();
    let mut roles: Vec<NamedRole> = objects.into_iter().filter(|o| o.kind == "Role").collect();
    assert_eq!(roles.len(), 1, "one Role in leader-election.yaml");
    (
        patch.into_iter().map(|p| p.value).collect(),
        roles.remove(0).rules,
    )
}

fn allows_named(
    rule: &NamedRule,
    (group, resource, verb): &Attributes,
    name: Option<&str>,
) -> bool {
    rule.api_groups.iter().any(|g| g == group)
        && rule.resources.iter().any(|r| r == resource)
        && rule.verbs.iter().any(|v| v == verb)
        && (rule.resource_names.is_empty()
            || name.is_some_and(|n| rule.resource_names.iter().any(|r| r == n)))
}

/// The TestRun controller as the service runs it (`testruns::spawn_elected`: leader
/// election, then the controller), driven through every path it has (the Lease
/// created, renewed and released; TestRuns listed, watched, read again after a 409;
/// the status written; Jobs listed, watched, read, created), against the recording
/// fake apiserver: every call is allowed by deploy/rbac.yaml with the component's
/// rules, and every verb the component grants is used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_testrun_controller_is_allowed_every_call_and_uses_every_verb_of_its_component() {
    use fake_kube::{FakeKube, TESTRUNS, conflict};
    let kube = FakeKube::start().await;
    kube.create_testrun(
        "rbac",
        serde_json::json!({"image": "busybox:1.36", "commands": ["true"]}),
    );
    kube.fail_next("PUT", &format!("{TESTRUNS}/rbac/status"), conflict("rbac"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = sparktest_k8s::testruns::spawn_elected(
        common::plain_http_client(&kube.url(), Duration::from_secs(5)),
        vec!["default".parse().unwrap()],
        std::sync::Arc::new(sparktest_k8s::state::RunConfig::default()),
        sparktest_k8s::lease::LeaseConfig {
            namespace: "default".parse().unwrap(),
            name: sparktest_k8s::testruns::LEASE_NAME.into(),
            identity: "rbac-test".into(),
            lease_duration: Duration::from_secs(3),
            renew_deadline: Duration::from_secs(2),
            retry_period: Duration::from_millis(200),
        },
        sparktest_k8s::testruns::ControllerOptions::default(),
        async move {
            let _ = stopped.await;
        },
    );
    let pending = kube
        .wait_for(Duration::from_secs(15), |k| {
            k.get(TESTRUNS, "rbac")
                .is_some_and(|r| r["status"]["phase"] == "Pending")
        })
        .await;
    assert!(
        pending,
        "the TestRun was reconciled: {:?}",
        kube.get(TESTRUNS, "rbac")
    );
    // Held long enough to be renewed, then released on stop.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .unwrap()
        .unwrap();

    let base = role_rules();
    let (patched, leader) = component_rules();
    let mut used: Vec<(Attributes, Option<String>)> = Vec::new();
    for request in kube.requests() {
        let query = (!request.query.is_empty()).then_some(request.query.as_str());
        let attrs = attributes(&request.method, &request.path, query).unwrap_or_else(|| {
            panic!(
                "{} {}: not a resource request",
                request.method, request.path
            )
        });
        let name = {
            let parts: Vec<&str> = request.path.split('/').collect();
            parts
                .iter()
                .position(|p| *p == "namespaces")
                .and_then(|i| parts.get(i + 3))
                .map(|n| n.to_string())
        };
        assert!(
            allowed(&base, &attrs)
                || patched
                    .iter()
                    .chain(&leader)
                    .any(|r| allows_named(r, &attrs, name.as_deref())),
            "{} {}?{} needs {attrs:?} (name {name:?}), which neither deploy/rbac.yaml nor deploy/components/testruns grants",
            request.method,
            request.path,
            request.query
        );
        used.push((attrs, name));
    }
    for rule in patched.iter().chain(&leader) {
        for group in &rule.api_groups {
            for resource in &rule.resources {
                for verb in &rule.verbs {
                    let attrs = (group.clone(), resource.clone(), verb.clone());
                    assert!(
                        used.iter().any(|(a, name)| *a == attrs
                            && (rule.resource_names.is_empty()
                                || name
                                    .as_ref()
                                    .is_some_and(|n| rule.resource_names.contains(n)))),
                        "deploy/components/testruns grants {attrs:?} (names {:?}), which no request uses",
                        rule.resource_names
                    );
                }
            }
        }
    }
    // The controller's Job calls are the base Role's: the component adds none for Jobs.
    for verb in ["create", "get", "list", "watch"] {
        let attrs = ("batch".to_string(), "jobs".to_string(), verb.to_string());
        assert!(
            used.iter().any(|(a, _)| *a == attrs),
            "the controller uses {verb} jobs"
        );
        assert!(allowed(&base, &attrs));
    }
}

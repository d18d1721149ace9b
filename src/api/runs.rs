//! Starting and listing test runs: `POST /api/test-runs` (a Job from a template or an
//! image and commands), `GET /api/k8s/templates`, and `GET /api/k8s/jobs` (SparkTest's
//! jobs with their status, page by page).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use warp::reply::Response;
use warp::{Filter, Reply as _};

use super::error::{ApiError, reply};
use super::with_state;
use crate::jobs::status::{self, StatusView};
use crate::names::{DefinitionId, DisplayName, RunId};
use crate::runs::{self, RunIdentity, RunSpec};
use crate::state::AppState;
use crate::time::now_rfc3339;

/// The largest `POST /api/test-runs` body: env values are the only long fields.
pub const MAX_RUN_BODY: u64 = 256 * 1024;

/// `POST /api/test-runs`
pub fn create_route(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "test-runs")
        .and(warp::post())
        .and(namespace_query())
        .and(bounded_body(MAX_RUN_BODY))
        .and(with_state(state))
        .then(|ns: NamespaceQuery, body: Bytes, state| async move {
            reply(create(ns.namespace, body, state).await)
        })
}

/// `GET /api/k8s/templates`
pub fn templates_route(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "k8s" / "templates")
        .and(warp::get())
        .and(with_state(state))
        .map(|state: AppState| {
            let templates: Vec<serde_json::Value> = state
                .policy()
                .runs
                .templates
                .iter()
                .map(|(name, t)| {
                    let mut v = serde_json::to_value(t).unwrap_or_default();
                    v["name"] = name.as_str().into();
                    v
                })
                .collect();
            warp::reply::json(&serde_json::json!({
                "templates": templates,
                "timestamp": now_rfc3339(),
            }))
            .into_response()
        })
}

/// `GET /api/k8s/jobs`
pub fn list_route(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "k8s" / "jobs")
        .and(warp::get())
        .and(warp::query::<ListQuery>())
        .and(with_state(state))
        .then(|q, state| async move { reply(list(q, state).await) })
}

/// The request body, read up to `max` bytes whether or not it came with a
/// `Content-Length` (a chunked body is fine); beyond `max`, 413 and the rest is not read.
fn bounded_body(max: u64) -> impl Filter<Extract = (Bytes,), Error = warp::Rejection> + Clone {
    warp::body::stream().and_then(move |stream| read_bounded(stream, max))
}

async fn read_bounded<S, B>(stream: S, max: u64) -> Result<Bytes, warp::Rejection>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: warp::Buf,
{
    use futures_util::TryStreamExt as _;
    let invalid = |message: String| warp::reject::custom(super::error::InvalidInput(message));
    let mut stream = std::pin::pin!(stream);
    let mut body = bytes::BytesMut::new();
    while let Some(mut chunk) = stream
        .try_next()
        .await
        .map_err(|e| invalid(format!("cannot read the body: {e}")))?
    {
        if (body.len() + chunk.remaining()) as u64 > max {
            return Err(warp::reject::custom(super::error::BodyTooLarge(max)));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let n = part.len();
            body.extend_from_slice(part);
            chunk.advance(n);
        }
    }
    Ok(body.freeze())
}

/// The query of the endpoints whose only parameter is `?namespace=`: anything else
/// (a misspelt `namepsace`) is refused rather than silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceQuery {
    pub namespace: Option<String>,
    /// Checked by caller authentication (`api::auth`), not here.
    #[serde(default, rename = "access_token")]
    pub _access_token: Option<serde::de::IgnoredAny>,
}

/// The `namespace` query parameter (checked by [`AppState::scope`] in the handler).
pub fn namespace_query() -> impl Filter<Extract = (NamespaceQuery,), Error = warp::Rejection> + Clone
{
    warp::query::<NamespaceQuery>()
}

/// The body of `POST /api/test-runs`: these fields, and those of a [`RunSpec`].
/// `name` and `test_definition_id` are what SparkTest's frontend sends with every run.
#[derive(Debug, Deserialize)]
struct RunTarget {
    run_id: Option<String>,
    template: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    test_definition_id: Option<String>,
}

/// The fields of [`RunTarget`], taken out of the body before the rest is read as a
/// [`RunSpec`].
const TARGET_FIELDS: [&str; 5] = [
    "run_id",
    "template",
    "namespace",
    "name",
    "test_definition_id",
];

#[derive(Serialize)]
struct Created {
    run_id: String,
    job_name: String,
    namespace: String,
    status: status::Phase,
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_definition_id: Option<String>,
    timestamp: String,
}

async fn create(
    query_namespace: Option<String>,
    body: Bytes,
    state: AppState,
) -> Result<Response, ApiError> {
    // A namespace in the query is checked before the body is even parsed.
    if let Some(q) = &query_namespace {
        state.scope(Some(q))?;
    }
    // The run's own fields are taken out; the rest must be a RunSpec (unknown fields
    // are refused by name).
    let mut fields: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Validation(format!("the body is not a JSON object: {e}")))?;
    let target_fields: serde_json::Map<_, _> = TARGET_FIELDS
        .into_iter()
        .filter_map(|k| fields.remove_entry(k))
        .collect();
    if let Some((name, _)) = target_fields
        .iter()
        .find(|(_, v)| !v.is_string() && !v.is_null())
    {
        return Err(ApiError::InvalidFields {
            message: format!("{name}: must be a string"),
            fields: vec![name.clone()],
        });
    }
    let target: RunTarget = serde_json::from_value(serde_json::Value::Object(target_fields))
        .map_err(|e| ApiError::Validation(format!("invalid run: {e}")))?;
    // Field by field first, so that a value of the wrong type is named.
    for (name, value) in &fields {
        if name == "description" {
            return Err(ApiError::InvalidFields {
                message: "description: only templates have one".into(),
                fields: vec![name.clone()],
            });
        }
        let one = serde_json::Map::from_iter([(name.clone(), value.clone())]);
        if let Err(e) = serde_json::from_value::<RunSpec>(serde_json::Value::Object(one)) {
            let name: String = name.chars().take(64).collect();
            return Err(ApiError::InvalidFields {
                message: format!("{name}: {e}"),
                fields: vec![name],
            });
        }
    }
    let spec: RunSpec = serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| ApiError::Validation(format!("invalid run: {e}")))?;

    let requested = match (query_namespace, target.namespace) {
        (Some(q), Some(b)) if q != b => {
            return Err(ApiError::Validation(format!(
                "namespace '{b}' in the body differs from ?namespace={q}"
            )));
        }
        (q, b) => q.or(b),
    };
    let ns = state.scope(requested.as_deref())?;
    let run_id: RunId = match &target.run_id {
        Some(id) => id.parse()?,
        None => runs::new_run_id(),
    };
    let name: Option<DisplayName> = parse_field("name", target.name.as_deref())?;
    let test_definition_id: Option<DefinitionId> =
        parse_field("test_definition_id", target.test_definition_id.as_deref())?;
    let config = &state.policy().runs;
    let spec = match &target.template {
        Some(name) => {
            let template = config.templates.get(name).ok_or_else(|| {
                let known: Vec<&str> = config.templates.iter().map(|(n, _)| n.as_str()).collect();
                ApiError::InvalidFields {
                    message: format!(
                        "template: no template named '{}' (known: {})",
                        name.chars().take(64).collect::<String>(),
                        if known.is_empty() {
                            "none; see TEMPLATES_FILE".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                    fields: vec!["template".into()],
                }
            })?;
            spec.over(template, &config.defaults)
        }
        None => (spec, config.defaults.clone()),
    };
    let (spec, defaults) = spec;
    let resolved = spec.resolve(&defaults)?;
    let client = state.client()?;
    let job_name = run_id.job_name();
    let run = RunIdentity {
        run_id,
        template: target.template,
        name,
        test_definition_id,
    };
    let body = runs::job_body(&run, &ns, &resolved);
    runs::create_job(client, &ns, &run.run_id, &body).await?;
    let RunIdentity {
        run_id,
        template,
        name,
        test_definition_id,
    } = run;
    crate::metrics::metrics().job_created();
    tracing::info!(run_id = %run_id, job = %job_name, namespace = %ns, template = template.as_deref().unwrap_or("-"), "test run created");
    let created = Created {
        run_id: run_id.to_string(),
        job_name: job_name.to_string(),
        namespace: ns.to_string(),
        status: status::Phase::Pending,
        template,
        name: name.map(|n| n.as_str().to_string()),
        test_definition_id: test_definition_id.map(|id| id.as_str().to_string()),
        timestamp: now_rfc3339(),
    };
    Ok(
        warp::reply::with_status(warp::reply::json(&created), warp::http::StatusCode::CREATED)
            .into_response(),
    )
}

/// An optional body field parsed as `T`; a 400 naming the field when it does not parse.
fn parse_field<T>(field: &str, value: Option<&str>) -> Result<Option<T>, ApiError>
where
    T: std::str::FromStr<Err = crate::names::InvalidName>,
{
    value
        .map(str::parse)
        .transpose()
        .map_err(|e: crate::names::InvalidName| ApiError::InvalidFields {
            message: format!("{field}: {}", e.rule),
            fields: vec![field.to_string()],
        })
}

/// The query of `GET /api/k8s/jobs`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub namespace: Option<String>,
    /// Jobs per page (1 to [`MAX_PAGE`], default [`DEFAULT_PAGE`]).
    pub limit: Option<u32>,
    /// The `continue` token of the previous page, passed to the apiserver as is.
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
    /// Also the archived runs whose Jobs Kubernetes no longer has (on the last page).
    #[serde(default)]
    pub include_archived: bool,
    /// Checked by caller authentication (`api::auth`), not here.
    #[serde(default, rename = "access_token")]
    pub _access_token: Option<serde::de::IgnoredAny>,
}

pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 500;
/// Apiserver continue tokens are base64 of a small JSON object.
const MAX_CONTINUE: usize = 4096;

#[derive(Serialize)]
struct Page {
    namespace: String,
    jobs: Vec<serde_json::Value>,
    /// Pass as `?continue=` for the next page; absent on the last page.
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    continue_token: Option<String>,
    timestamp: String,
}

#[derive(Serialize)]
struct ListedJob {
    #[serde(flatten)]
    view: StatusView,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<String>,
    /// SparkTest's display name of the run, when it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_definition_id: Option<String>,
    created_at: Option<String>,
    source: super::jobs::Source,
}

/// SparkTest's fields of a run, from its Job's (or its archived record's) labels and
/// annotations.
struct Identity {
    run_id: Option<String>,
    template: Option<String>,
    name: Option<String>,
    test_definition_id: Option<String>,
}

impl Identity {
    fn of(
        job_name: &str,
        labels: &std::collections::BTreeMap<String, String>,
        annotations: &std::collections::BTreeMap<String, String>,
    ) -> Self {
        Self {
            // SparkTest's older jobs have no run-id label, only the name.
            run_id: labels.get(runs::RUN_ID_LABEL).cloned().or_else(|| {
                let id = job_name.strip_prefix("test-run-")?;
                id.parse::<RunId>().ok().map(|id| id.to_string())
            }),
            template: labels.get(runs::TEMPLATE_LABEL).cloned(),
            name: annotations.get(runs::NAME_ANNOTATION).cloned(),
            test_definition_id: labels.get(runs::DEFINITION_LABEL).cloned(),
        }
    }
}

/// A row of an archived run: its archived status with SparkTest's fields.
fn archived_row(record: &crate::archive::record::RunRecord) -> serde_json::Value {
    let identity = Identity::of(&record.job_name, &record.labels, &record.annotations);
    let mut row = record.status.clone();
    if let Some(map) = row.as_object_mut() {
        map.remove("timeline");
        for (key, value) in [
            ("run_id", identity.run_id),
            ("template", identity.template),
            ("name", identity.name),
            ("test_definition_id", identity.test_definition_id),
        ] {
            if let Some(value) = value {
                map.insert(key.into(), value.into());
            }
        }
        map.insert("created_at".into(), record.created_at.clone().into());
        map.insert("source".into(), "archive".into());
    }
    row
}

async fn list(q: ListQuery, state: AppState) -> Result<Response, ApiError> {
    let ns = state.scope(q.namespace.as_deref())?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::Validation(format!(
            "limit must be 1 to {MAX_PAGE}"
        )));
    }
    let continue_token = q.continue_token.filter(|t| !t.is_empty());
    if let Some(token) = &continue_token
        && (token.len() > MAX_CONTINUE || token.chars().any(char::is_control))
    {
        return Err(ApiError::Validation(
            "continue must be the token of the previous page".into(),
        ));
    }
    let client = state.client()?;
    let page = crate::jobs::list_managed(client, &ns, limit, continue_token).await?;
    let states = crate::jobs::job_states(client, state.caches(&ns), &ns, &page.items).await?;
    let mut jobs: Vec<serde_json::Value> = page
        .items
        .iter()
        .zip(states)
        .map(|(job, job_state)| {
            let identity = Identity::of(
                &job.metadata.name,
                &job.metadata.labels,
                &job.metadata.annotations,
            );
            let row = ListedJob {
                view: StatusView::new(job, job_state),
                run_id: identity.run_id,
                template: identity.template,
                name: identity.name,
                test_definition_id: identity.test_definition_id,
                created_at: job.metadata.creation_timestamp.clone(),
                source: super::jobs::Source::Cluster,
            };
            serde_json::to_value(row).unwrap_or_default()
        })
        .collect();
    let last_page = page
        .metadata
        .continue_token
        .as_ref()
        .is_none_or(|t| t.is_empty());
    if q.include_archived
        && last_page
        && let Some(archive) = state.archive()
    {
        // Archived runs whose Jobs are gone: the job cache says so when it is in sync,
        // else the archive's last sweep of the namespace.
        let listed: std::collections::HashSet<&str> = page
            .items
            .iter()
            .map(|j| j.metadata.name.as_str())
            .collect();
        let cache = state.caches(&ns).map(|c| &c.jobs).filter(|c| c.is_synced());
        for record in archive.runs_of(&ns).await {
            let name = record.job_name.as_str();
            let in_cluster = listed.contains(name)
                || match cache {
                    Some(cache) => cache.get(name).is_some(),
                    None => archive.swept_has(&ns, name).unwrap_or(false),
                };
            if !in_cluster {
                jobs.push(archived_row(&record));
            }
        }
    }
    Ok(warp::reply::json(&Page {
        namespace: ns.to_string(),
        jobs,
        continue_token: page.metadata.continue_token.filter(|t| !t.is_empty()),
        timestamp: now_rfc3339(),
    })
    .into_response())
}

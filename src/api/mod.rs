//! The warp filter tree: one filter per endpoint, each doc comment naming its route;
//! handlers are plain async functions; one `recover` turns rejections into JSON.

pub mod auth;
pub mod error;
pub mod health;
pub mod jobs;
pub mod json;
pub mod metrics;
pub mod probes;
pub mod runs;
pub mod stream;

use std::convert::Infallible;

use warp::Filter;

use crate::state::AppState;

/// Requests whose path and query are longer than this are refused (414) before any
/// routing: no route needs more than a few hundred bytes.
pub const MAX_URL_BYTES: usize = 12 * 1024;

/// One endpoint: its filter, and the route templates it serves (the values of the
/// `route` label of its metrics, [`crate::metrics::ROUTES`]).
pub struct Endpoint {
    pub templates: &'static [&'static str],
    pub filter: warp::filters::BoxedFilter<(warp::reply::Response,)>,
}

fn endpoint<F>(templates: &'static [&'static str], route: F) -> Endpoint
where
    F: Filter<Extract = (warp::reply::Response,), Error = warp::Rejection>
        + Clone
        + Send
        + Sync
        + 'static,
{
    Endpoint {
        templates,
        filter: boxed(route),
    }
}

/// The endpoints open to everyone: the kubelet's probes, health and metrics.
pub fn open_endpoints(state: &AppState) -> Vec<Endpoint> {
    vec![
        endpoint(&["/livez"], probes::livez()),
        endpoint(&["/readyz"], probes::readyz(state.clone())),
        endpoint(&["/api/k8s/health"], health::route(state.clone())),
        endpoint(&["/metrics"], metrics::route()),
    ]
}

/// The endpoints behind caller authentication.
pub fn protected_endpoints(state: &AppState) -> Vec<Endpoint> {
    vec![
        endpoint(
            &[
                "/api/k8s/jobs/{job_name}/status",
                "/api/k8s/status/{job_name}",
            ],
            jobs::status_route(state.clone()),
        ),
        endpoint(
            &["/api/k8s/jobs/{job_name}/logs", "/api/k8s/logs/{job_name}"],
            jobs::logs_route(state.clone()),
        ),
        endpoint(
            &["/api/test-runs/{run_id}/logs"],
            jobs::test_run_logs_route(state.clone()),
        ),
        endpoint(
            &["/api/k8s/jobs/{job_name}"],
            jobs::delete_route(state.clone()),
        ),
        endpoint(
            &["/api/k8s/jobs/{job_name}/logs/stream"],
            stream::job_log_stream_route(state.clone()),
        ),
        endpoint(
            &["/api/test-runs/{run_id}/logs/stream"],
            stream::test_run_log_stream_route(state.clone()),
        ),
        endpoint(
            &["/api/k8s/jobs/{job_name}/watch"],
            stream::watch_route(state.clone()),
        ),
        endpoint(
            &["/api/k8s/jobs/{job_name}/events"],
            stream::events_route(state.clone()),
        ),
        endpoint(&["/api/test-runs"], runs::create_route(state.clone())),
        endpoint(&["/api/k8s/jobs"], runs::list_route(state.clone())),
        endpoint(
            &["/api/k8s/templates"],
            runs::templates_route(state.clone()),
        ),
    ]
}

/// Tries each endpoint's filter in turn: one small boxed type per step, however many
/// endpoints there are.
fn any_of(endpoints: Vec<Endpoint>) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    endpoints
        .into_iter()
        .map(|e| e.filter)
        .reduce(|tried, next| tried.or(next).unify().boxed())
        .expect("at least one endpoint")
}

/// The whole API: probes, health and metrics stay open; everything else passes caller
/// authentication first.
pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (impl warp::Reply,), Error = Infallible> + Clone {
    let open = any_of(open_endpoints(&state));
    let protected = any_of(protected_endpoints(&state));
    let protected = auth::authorized(state.policy().api_tokens.clone()).and(protected);
    let cors = cors(&state.policy().cors_origins);
    // Errors are turned into replies inside CORS, so that a browser on an allowed
    // origin can read them too (a 401 the page cannot read is a network error to
    // fetch); then CORS's own refusals are turned into replies.
    url_limit()
        .and(open.or(protected).unify())
        .map(warp::Reply::into_response)
        .recover(error::recover)
        .unify()
        .with(cors)
        .map(warp::Reply::into_response)
        .recover(error::recover)
        .unify()
        .with(warp::log::custom(|info| {
            // The path only: a query may carry an access token.
            tracing::debug!(method = %info.method(), path = info.path(), status = info.status().as_u16(), elapsed = ?info.elapsed(), "request");
            crate::metrics::metrics().http_request(info.method(), info.path(), info.status(), info.elapsed());
        }))
}

/// One endpoint's filter behind a box: the route tree is then a chain of small types
/// instead of one type nested fifteen deep, whose instantiation alone took rustc 35 s
/// of a release build.
fn boxed<F>(route: F) -> warp::filters::BoxedFilter<(warp::reply::Response,)>
where
    F: Filter<Extract = (warp::reply::Response,), Error = warp::Rejection>
        + Clone
        + Send
        + Sync
        + 'static,
{
    route.boxed()
}

/// Refuses over-long URLs before routing.
fn url_limit() -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::path::full()
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and_then(|path: warp::path::FullPath, query: String| async move {
            if path.as_str().len() + query.len() > MAX_URL_BYTES {
                Err(warp::reject::custom(error::UriTooLong))
            } else {
                Ok(())
            }
        })
        .untuple_one()
}

/// CORS for the configured origins only; with none configured, browsers on other
/// origins are refused by their same-origin policy.
fn cors(origins: &[String]) -> warp::filters::cors::Cors {
    warp::cors()
        .allow_origins(origins.iter().map(String::as_str))
        .allow_methods(["GET", "POST", "DELETE", "OPTIONS"])
        .allow_headers(["authorization", "content-type", "last-event-id"])
        .max_age(600)
        .build()
}

/// Hands the shared state to a handler.
pub fn with_state(
    state: AppState,
) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{OTHER, ROUTES, route};

    /// A path of `template` with a valid name or id in place of each parameter.
    fn sample(template: &str) -> String {
        template
            .replace("{job_name}", "test-job-123")
            .replace("{run_id}", "550e8400-e29b-41d4-a716-446655440000")
    }

    #[test]
    fn every_endpoint_has_its_route_label_and_every_label_an_endpoint() {
        let state = AppState::new(
            crate::state::Connection {
                client: Err("no cluster in this test".into()),
                source: None,
            },
            "default".parse().unwrap(),
            crate::state::LogLimits {
                max_lines: 10,
                max_bytes: 1024,
            },
        );
        let mut templates: Vec<&str> = open_endpoints(&state)
            .into_iter()
            .chain(protected_endpoints(&state))
            .flat_map(|e| e.templates.iter().copied())
            .collect();
        for template in &templates {
            assert_eq!(route(&sample(template)), *template, "{template}");
        }
        templates.push(OTHER);
        templates.sort_unstable();
        let mut labels = ROUTES.to_vec();
        labels.sort_unstable();
        assert_eq!(
            templates, labels,
            "metrics::ROUTES lists exactly the endpoints"
        );
    }
}

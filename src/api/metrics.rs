//! `GET /metrics`: the process's metrics for Prometheus, in the OpenMetrics text
//! format. Open like the probes: it carries no secret and no job name, and a scraper
//! should not need a token that can also delete jobs.

use warp::Filter;
use warp::http::header::CONTENT_TYPE;
use warp::reply::Response;

use crate::metrics::{self, metrics};

/// `GET /metrics`
pub fn route() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("metrics").and(warp::get()).map(|| {
        let mut response = Response::new(metrics().encode().into());
        response.headers_mut().insert(
            CONTENT_TYPE,
            warp::http::HeaderValue::from_static(metrics::CONTENT_TYPE),
        );
        response
    })
}

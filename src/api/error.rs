//! The one mapping from errors to HTTP answers: every error body is
//! `{"error_type", "message", "timestamp"}` (plus `details` where useful), and every
//! rejection of the filter tree becomes such a body too.

use std::convert::Infallible;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use crate::jobs::JobError;
use crate::jobs::logs::LogsError;
use crate::kube::KubeError;
use crate::names::InvalidName;

/// The documented error kinds, plus `ValidationError` for bad input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorType {
    KubernetesError,
    AuthenticationError,
    NotFoundError,
    NetworkError,
    ValidationError,
}

/// An error a handler answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: bad input (a name, id or query parameter); nothing was sent to the apiserver.
    #[error("{0}")]
    Validation(String),
    /// 400 naming the fields at fault: a run's own checks, or the apiserver's 422
    /// causes for the Job it became.
    #[error("{message}")]
    InvalidFields {
        message: String,
        fields: Vec<String>,
    },
    /// 409: the run id is taken (the apiserver answered AlreadyExists).
    #[error("{0}")]
    Conflict(String),
    /// 404: the job (or route) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// On a live stream (never an HTTP answer): this client fell behind a shared stream
    /// by this many events and is disconnected.
    #[error(
        "this client fell behind the live stream by {0} events and is disconnected; reconnect with Last-Event-ID to resume"
    )]
    StreamBehind(u64),
    /// 503: the configured maximum of concurrent live streams is reached.
    #[error("too many live streams are open ({0}); try again later")]
    TooManyStreams(usize),
    /// 401: the caller presented no valid API token.
    #[error("a valid bearer token is required (Authorization: Bearer <token>)")]
    Unauthenticated,
    /// 403: the job is not one SparkTest manages, and deleting others is not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 414: the URL is longer than any route needs.
    #[error("the URL is longer than {} bytes", super::MAX_URL_BYTES)]
    UriTooLong,
    /// 413: the request body is larger than the endpoint takes (the limit in bytes).
    #[error("the body is larger than {0} bytes")]
    PayloadTooLarge(u64),
    /// 405: the route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The log archive's store failed: 503 while it is unreachable, 502 when it refuses.
    #[error("the log archive: {0}")]
    Archive(#[from] crate::archive::StoreError),
    /// Whatever the Kubernetes client reported; its status is decided in `status()`.
    #[error(transparent)]
    Kube(#[from] KubeError),
}

impl From<crate::runs::InvalidRun> for ApiError {
    fn from(e: crate::runs::InvalidRun) -> Self {
        Self::InvalidFields {
            message: e.to_string(),
            fields: vec![e.field],
        }
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            JobError::Unmanaged { .. } => ApiError::Forbidden(e.to_string()),
            JobError::Kube(k) => ApiError::Kube(k),
        }
    }
}

impl From<LogsError> for ApiError {
    fn from(e: LogsError) -> Self {
        match e {
            LogsError::Job(j) => j.into(),
            LogsError::NoSuchPod { .. } => ApiError::NotFound(e.to_string()),
            LogsError::NoSuchContainer { .. } => ApiError::Validation(e.to_string()),
        }
    }
}

impl From<crate::runs::CreateError> for ApiError {
    fn from(e: crate::runs::CreateError) -> Self {
        use crate::runs::CreateError;
        match e {
            CreateError::AlreadyExists { .. } => Self::Conflict(e.to_string()),
            CreateError::Refused { ref fields, .. } => Self::InvalidFields {
                fields: fields.clone(),
                message: e.to_string(),
            },
            CreateError::Kube(k) => Self::Kube(k),
        }
    }
}

impl From<crate::jobs::ListError> for ApiError {
    fn from(e: crate::jobs::ListError) -> Self {
        use crate::jobs::ListError;
        match e {
            ListError::ContinueExpired(_) | ListError::ContinueInvalid(_) => {
                Self::Validation(e.to_string())
            }
            ListError::Kube(k) => Self::Kube(k),
        }
    }
}

impl From<crate::archive::read::ReadError> for ApiError {
    fn from(e: crate::archive::read::ReadError) -> Self {
        match e {
            crate::archive::read::ReadError::Logs(e) => e.into(),
            crate::archive::read::ReadError::Store(e) => e.into(),
        }
    }
}

impl From<InvalidName> for ApiError {
    fn from(e: InvalidName) -> Self {
        Self::Validation(e.to_string())
    }
}

impl From<crate::state::ScopeError> for ApiError {
    fn from(e: crate::state::ScopeError) -> Self {
        use crate::state::ScopeError;
        match e {
            ScopeError::Invalid(e) => e.into(),
            ScopeError::NotServed { .. } => Self::Forbidden(e.to_string()),
        }
    }
}

/// The body of every error answer (and of `error` events on live streams).
#[derive(Serialize)]
pub struct ErrorBody<'a> {
    error_type: ErrorType,
    message: &'a str,
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<serde_json::Value>,
}

impl ApiError {
    /// The HTTP status and error kind of this error.
    ///
    /// - bad input 400; not found 404;
    /// - cluster not configured or unreachable 503; apiserver timeout 504;
    /// - apiserver 401/403 502 `AuthenticationError`; apiserver 5xx and other answers 502;
    /// - apiserver 429 (after the client's retries) 503.
    pub fn status(&self) -> (StatusCode, ErrorType) {
        use ErrorType::*;
        match self {
            Self::Validation(_) | Self::InvalidFields { .. } => {
                (StatusCode::BAD_REQUEST, ValidationError)
            }
            Self::Conflict(_) => (StatusCode::CONFLICT, KubernetesError),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, NotFoundError),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, ValidationError),
            Self::TooManyStreams(_) => (StatusCode::SERVICE_UNAVAILABLE, KubernetesError),
            Self::StreamBehind(_) => (StatusCode::SERVICE_UNAVAILABLE, NetworkError),
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, AuthenticationError),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, AuthenticationError),
            Self::UriTooLong => (StatusCode::URI_TOO_LONG, ValidationError),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, ValidationError),
            Self::Archive(crate::archive::StoreError::Unavailable(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, NetworkError)
            }
            Self::Archive(crate::archive::StoreError::Refused(_)) => {
                (StatusCode::BAD_GATEWAY, KubernetesError)
            }
            Self::Kube(e) => match e {
                KubeError::NotConfigured(_) | KubeError::TlsConfig(_) => {
                    (StatusCode::SERVICE_UNAVAILABLE, KubernetesError)
                }
                KubeError::Connect { .. } | KubeError::Tls { .. } => {
                    (StatusCode::SERVICE_UNAVAILABLE, NetworkError)
                }
                KubeError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, NetworkError),
                KubeError::Credentials(_) => (StatusCode::BAD_GATEWAY, AuthenticationError),
                KubeError::Decode(_) => (StatusCode::BAD_GATEWAY, KubernetesError),
                KubeError::Api { code, .. } => match code {
                    401 | 403 => (StatusCode::BAD_GATEWAY, AuthenticationError),
                    404 => (StatusCode::NOT_FOUND, NotFoundError),
                    409 => (StatusCode::CONFLICT, KubernetesError),
                    429 => (StatusCode::SERVICE_UNAVAILABLE, KubernetesError),
                    _ => (StatusCode::BAD_GATEWAY, KubernetesError),
                },
            },
        }
    }

    /// The message shown to callers: actionable, never a secret.
    pub fn message(&self) -> String {
        match self {
            Self::Kube(KubeError::Api { code: 401, .. }) => {
                "the apiserver rejected the service's credentials (401 Unauthorized): the token \
                 or certificate is invalid or expired"
                    .to_string()
            }
            Self::Kube(KubeError::Api { code: 403, status }) => format!(
                "the service account lacks a permission (403 Forbidden): {}. Grant it in the \
                 Role (see deploy/)",
                status.message.as_deref().unwrap_or("no message")
            ),
            Self::Kube(KubeError::Api { code: 429, .. }) => {
                "the apiserver is throttling requests (429 Too Many Requests); try again later"
                    .to_string()
            }
            other => other.to_string(),
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            Self::InvalidFields { fields, .. } => Some(serde_json::json!({ "fields": fields })),
            Self::Kube(KubeError::Api { code, status }) => Some(serde_json::json!({
                "apiserver_code": code,
                "apiserver_reason": status.reason,
            })),
            _ => None,
        }
    }
}

impl ApiError {
    /// The JSON body of this error.
    pub fn body(&self) -> serde_json::Value {
        let (_, error_type) = self.status();
        let message = self.message();
        serde_json::to_value(ErrorBody {
            error_type,
            message: &message,
            timestamp: crate::time::now_rfc3339(),
            details: self.details(),
        })
        .unwrap_or_default()
    }
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        let (status, _) = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, %status, "request failed");
        } else {
            tracing::debug!(error = %self, %status, "request rejected");
        }
        warp::reply::with_status(warp::reply::json(&self.body()), status).into_response()
    }
}

/// The request's URL is longer than [`super::MAX_URL_BYTES`].
#[derive(Debug)]
pub struct UriTooLong;

impl warp::reject::Reject for UriTooLong {}

/// A request body over the endpoint's limit (in bytes): answered 413.
#[derive(Debug)]
pub struct BodyTooLarge(pub u64);

impl warp::reject::Reject for BodyTooLarge {}

/// A path parameter or query that did not parse: raised by the filters, answered 400.
#[derive(Debug)]
pub struct InvalidInput(pub String);

impl warp::reject::Reject for InvalidInput {}

/// Turns every rejection of the filter tree into the JSON error body.
pub async fn recover(rejection: warp::Rejection) -> Result<Response, Infallible> {
    if rejection.find::<super::auth::Unauthorized>().is_some() {
        let mut response = ApiError::Unauthenticated.into_response();
        response.headers_mut().insert(
            warp::http::header::WWW_AUTHENTICATE,
            warp::http::HeaderValue::from_static("Bearer realm=\"sparktest-k8s\""),
        );
        return Ok(response);
    }
    let error = if rejection.find::<UriTooLong>().is_some() {
        ApiError::UriTooLong
    } else if let Some(BodyTooLarge(limit)) = rejection.find() {
        ApiError::PayloadTooLarge(*limit)
    } else if let Some(InvalidInput(message)) = rejection.find() {
        ApiError::Validation(message.clone())
    } else if rejection.is_not_found() {
        ApiError::NotFound("no such route".to_string())
    } else if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        ApiError::Validation(format!("invalid query: {e}"))
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::MethodNotAllowed
    } else if let Some(e) = rejection.find::<warp::filters::body::BodyDeserializeError>() {
        ApiError::Validation(e.to_string())
    } else {
        ApiError::Validation(format!("{rejection:?}"))
    };
    Ok(error.into_response())
}

/// Turns a handler's result into a response: application errors are replies.
pub fn reply<T: Reply>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(reply) => reply.into_response(),
        Err(error) => error.into_response(),
    }
}

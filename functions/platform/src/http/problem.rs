//! RFC 9457 problem details: every error answer of the API.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::app::error::AppError;
use crate::domain::invalid::FieldIssue;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For invalid input: each failing field and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldIssue>,
    /// Extension members (e.g. `dependents` on a refused uninstall).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: Map<String, Value>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".to_string(),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            extra: Map::new(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(&self)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = self.extra.get("retry_after").and_then(|v| v.as_u64()) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<AppError> for Problem {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Invalid(invalid) => Problem {
                errors: invalid.0,
                ..Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "the request has invalid fields")
            },
            AppError::BadRequest(invalid) => {
                Problem { detail: invalid.to_string(), errors: invalid.0, ..Problem::new(StatusCode::BAD_REQUEST, "") }
            }
            AppError::NotFound(detail) => Problem::new(StatusCode::NOT_FOUND, detail),
            AppError::Conflict { detail, extra } => Problem { extra, ..Problem::new(StatusCode::CONFLICT, detail) },
            AppError::PreconditionFailed(detail) => Problem::new(StatusCode::PRECONDITION_FAILED, detail),
            AppError::Unauthorized(detail) => Problem::new(StatusCode::UNAUTHORIZED, detail),
            AppError::Forbidden(detail) => Problem::new(StatusCode::FORBIDDEN, detail),
            AppError::Unavailable(detail) => Problem::new(StatusCode::SERVICE_UNAVAILABLE, detail),
            AppError::Internal(detail) => Problem::new(StatusCode::INTERNAL_SERVER_ERROR, detail),
            AppError::TooManyRequests { retry_after } => {
                let mut problem = Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("too many attempts; retry in {retry_after} seconds"),
                );
                problem.extra.insert("retry_after".to_string(), retry_after.into());
                problem
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}

/// The answer for a path no router knows.
pub async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "no such resource")
}

/// The answer for a known path with a method it does not have.
pub async fn method_not_allowed() -> Problem {
    Problem::new(StatusCode::METHOD_NOT_ALLOWED, "this resource does not support that method")
}

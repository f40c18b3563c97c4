//! The errors of the use cases; the HTTP layer turns each into a problem+json answer.

use serde_json::{Map, Value};

use crate::domain::invalid::Invalid;
use crate::ports::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Well-formed input that breaks a rule (422), naming each field.
    #[error("{0}")]
    Invalid(Invalid),
    /// Input that cannot be read at all: malformed JSON, bad query parameters (400).
    #[error("{0}")]
    BadRequest(Invalid),
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (409); `extra` adds problem members.
    #[error("{detail}")]
    Conflict { detail: String, extra: Map<String, Value> },
    /// `If-Match` named another version than the current one (412).
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
    /// A defect on our side, already logged with its cause (500).
    #[error("{0}")]
    Internal(String),
    /// Too many attempts; try again after `retry_after` seconds (429).
    #[error("too many attempts; retry in {retry_after} seconds")]
    TooManyRequests { retry_after: u64 },
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Conflict { detail: detail.into(), extra: Map::new() }
    }

    pub fn conflict_with(detail: impl Into<String>, key: &str, value: Value) -> Self {
        let mut extra = Map::new();
        extra.insert(key.to_string(), value);
        Self::Conflict { detail: detail.into(), extra }
    }
}

impl From<Invalid> for AppError {
    fn from(e: Invalid) -> Self {
        Self::Invalid(e)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ConditionFailed { .. } | StoreError::Conflict => {
                Self::conflict("the resource was changed concurrently; read it again and retry")
            }
            StoreError::Invalid(detail) | StoreError::Unavailable(detail) => {
                tracing::error!(error = %detail, "store failure");
                Self::Unavailable("the store is unavailable; retry later".to_string())
            }
        }
    }
}

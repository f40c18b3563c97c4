//! Request extractors that answer bad input with problem+json naming the field.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::app::error::AppError;
use crate::app::page::PageRequest;
use crate::domain::config::{is_if_match_syntax, parse_if_match, IfMatch};
use crate::domain::invalid::Invalid;

/// A JSON body. Syntax errors are 400; a field of the wrong type, missing or unknown is
/// 422 naming that field.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
        if !is_json {
            return Err(AppError::BadRequest(Invalid::one("content-type", "must be application/json")));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| AppError::BadRequest(Invalid::one("body", e.body_text())))?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses JSON, naming the failing field. Documents nested deeper than the store keeps
/// are refused (422) before they are read.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    use crate::domain::limits::{json_depth, MAX_DOCUMENT_DEPTH};
    if json_depth(bytes) > MAX_DOCUMENT_DEPTH {
        return Err(AppError::Invalid(Invalid::one(
            "body",
            format!("nests deeper than {MAX_DOCUMENT_DEPTH} levels of objects and arrays"),
        )));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let field = field_of(&path, &message);
        let message = message.split(" at line ").next().unwrap_or(&message).to_string();
        let message = if message.starts_with("missing field") { "is required".to_string() } else { message };
        match inner.classify() {
            serde_json::error::Category::Data => AppError::Invalid(Invalid::one(field, message)),
            _ => AppError::BadRequest(Invalid::one("body", format!("is not valid JSON: {message}"))),
        }
    })
}

/// serde reports a missing field at its parent; name the field itself.
fn field_of(path: &str, message: &str) -> String {
    let parent = if path == "." { "" } else { path };
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        return if parent.is_empty() { name.to_string() } else { format!("{parent}.{name}") };
    }
    if parent.is_empty() {
        "body".to_string()
    } else {
        parent.to_string()
    }
}

/// The query string as name -> value.
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|q| Params(q.0))
            .map_err(|e| AppError::BadRequest(Invalid::one("query", e.body_text())))
    }
}

impl Params {
    pub fn page(&self) -> Result<PageRequest, AppError> {
        PageRequest::parse(self.0.get("limit").map(String::as_str), self.0.get("cursor").map(String::as_str))
            .map_err(AppError::BadRequest)
    }

    /// A boolean flag: absent is false; anything but true/false is a 400 naming it.
    pub fn flag(&self, name: &str) -> Result<bool, AppError> {
        match self.0.get(name).map(String::as_str) {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") | Some("") => Ok(true),
            Some(_) => Err(AppError::BadRequest(Invalid::one(name, "must be true or false"))),
        }
    }
}

/// The `If-Match` header, if sent. A malformed value is a 400; a well-formed one that
/// names no version is a 412, never a match.
pub struct IfMatchHeader(pub Option<IfMatch>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatchHeader {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.headers.get(header::IF_MATCH) {
            None => Ok(Self(None)),
            Some(raw) => {
                let raw = raw.to_str().ok().filter(|raw| is_if_match_syntax(raw)).ok_or_else(|| {
                    AppError::BadRequest(Invalid::one("If-Match", "must be * or an entity tag such as \"3\""))
                })?;
                parse_if_match(raw).map(|m| Self(Some(m))).ok_or_else(|| {
                    AppError::PreconditionFailed("If-Match names no version of this resource".to_string())
                })
            }
        }
    }
}

impl IfMatchHeader {
    /// The pinned item version, for resources whose `ETag` is their item version.
    pub fn version(&self) -> Option<u64> {
        match self.0 {
            Some(IfMatch::Version(v)) => Some(v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn field(body: &str) -> (String, bool) {
        match parse_json::<Outer>(body.as_bytes()).unwrap_err() {
            AppError::Invalid(i) => (i.0[0].field.clone(), true),
            AppError::BadRequest(i) => (i.0[0].field.clone(), false),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        assert_eq!(field(r#"{"inner": {"count": 1}}"#), ("name".to_string(), true));
        assert_eq!(field(r#"{"name": "a", "inner": {"count": "x"}}"#), ("inner.count".to_string(), true));
        assert_eq!(field(r#"{"name": "a", "inner": {"count": 1, "extra": 1}}"#), ("inner.extra".to_string(), true));
        assert_eq!(field(r#"{"name": "a", "#), ("body".to_string(), false));
    }
}

//! `/api/v1/settings/feature-flags`: flags of a tenant or of the platform (`?scope=platform`),
//! their evaluation for the caller, and the OpenFeature Remote Evaluation Protocol
//! (`/ofrep/v1/...`), so OpenFeature SDKs with an OFREP provider work unchanged.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::caller::{need, Authorized};
use super::extract::{parse_json, IfMatchHeader, JsonBody, Params};
use super::problem::Problem;
use super::scope::Scope;
use super::{etag_header, AppState, RouteTable};
use crate::app::configs::Expect;
use crate::app::error::{AppError, AppResult};
use crate::app::flags::{flag_key, Evaluation, Flag, FLAG_CACHE_TTL};
use crate::app::page::Listed;
use crate::app::principal::{Principal, Subject};
use crate::domain::access::Permission;
use crate::domain::config::{ConfigVersion, Owner};
use crate::domain::flags::{Context, FlagDefinition};
use crate::domain::ids::FlagKey;
use crate::domain::invalid::Invalid;

pub fn routes<R: RouteTable>() -> R {
    R::empty()
        .with(routes!(list_flags, create_flag))
        .with(routes!(evaluate_for_caller))
        .with(routes!(get_flag, put_flag, delete_flag))
        .with(routes!(list_flag_versions))
        .with(routes!(ofrep_evaluate_flag))
        .with(routes!(ofrep_evaluate_flags))
        .with(routes!(ofrep_configuration))
}

/// Keys that name other resources under `/api/v1/settings/feature-flags/`.
const RESERVED: [&str; 1] = ["evaluate"];

/// Whose flags: the caller's tenant, or (`scope=platform`) the platform's; platform flags
/// are written by the platform administrator.
fn owner_of<'a>(principal: &'a Principal, params: &Params, writing: bool) -> AppResult<Owner<'a>> {
    Scope::of(principal, params)?.owner(principal, writing, "flags")
}

/// What a tenant may see of a platform flag: its own per-tenant override, never the
/// other tenants' (which would say which tenants exist).
fn seen_by(principal: &Principal, mut flag: Flag) -> Flag {
    if flag.scope == "platform" && !principal.can(Permission::PlatformOperate) {
        let own = principal.tenant.as_ref().map(|t| t.to_string());
        flag.definition.tenants.retain(|tenant, _| Some(tenant) == own.as_ref());
    }
    flag
}

fn key_in_path(raw: &str) -> AppResult<FlagKey> {
    FlagKey::parse(raw).map_err(|_| AppError::NotFound(format!("feature flag '{raw}' does not exist")))
}

fn view(flag: Flag) -> impl IntoResponse {
    (etag_header(flag.version), Json(flag))
}

/// The flag definition of a body, every fault named (unknown fields too).
fn definition_of(body: Map<String, Value>) -> AppResult<FlagDefinition> {
    if let Some(unknown) = body.keys().find(|k| !crate::domain::flags::FIELDS.contains(&k.as_str())) {
        return Err(AppError::Invalid(Invalid::one(unknown.clone(), "is not a field of a flag")));
    }
    parse_json(&serde_json::to_vec(&Value::Object(body)).expect("JSON re-encodes"))
}

/// `POST` body: `key` and the definition's fields.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewFlag {
    /// 1 to 128 characters: letters, digits, '-', '_' or '.', starting with a letter or digit.
    pub key: String,
    #[serde(flatten)]
    pub definition: FlagDefinition,
}

/// Flags of one scope, by key (tenants may read the platform's flags with `scope=platform`).
#[utoipa::path(get, path = "/api/v1/settings/feature-flags", tag = "feature-flags", security(("bearer" = [])),
    params(("scope" = inline(Option<Scope>), Query, description = "tenant (default) or platform"), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<Flag>), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_flags(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigRead>,
    params: Params,
) -> AppResult<Json<Listed<Flag>>> {
    let owner = owner_of(&auth.principal, &params, false)?;
    let listed = state.services.flags().list(owner, &params.page()?).await?;
    let items = listed.items.into_iter().map(|f| seen_by(&auth.principal, f)).collect();
    Ok(Json(Listed { items, next_cursor: listed.next_cursor }))
}

/// Create a flag (409 when the key exists). Boolean flags serve `on`/`off`; variant
/// flags their named JSON values. See the definition's fields for targets, rollouts,
/// the kill switch (`enabled: false`) and platform flags' per-tenant overrides.
#[utoipa::path(post, path = "/api/v1/settings/feature-flags", tag = "feature-flags", security(("bearer" = [])), request_body = NewFlag,
    params(("scope" = inline(Option<Scope>), Query, description = "tenant (default) or platform")),
    responses((status = 201, body = Flag, headers(("ETag" = String))), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_flag(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigWrite>,
    params: Params,
    JsonBody(mut body): JsonBody<Map<String, Value>>,
) -> AppResult<impl IntoResponse> {
    let owner = owner_of(&auth.principal, &params, true)?;
    let key = match body.remove("key") {
        Some(Value::String(raw)) if RESERVED.contains(&raw.as_str()) => {
            return Err(AppError::Invalid(Invalid::one("key", format!("'{raw}' is reserved"))))
        }
        Some(Value::String(raw)) => FlagKey::parse(&raw).map_err(|e| Invalid::one("key", e.0[0].message.clone()))?,
        Some(_) => return Err(AppError::Invalid(Invalid::one("key", "must be a string"))),
        None => return Err(AppError::Invalid(Invalid::one("key", "is required"))),
    };
    let definition = definition_of(body)?;
    let flag = state.services.flags().put(&auth.actor(), owner, &key, definition, None, Expect::Absent).await?;
    Ok((StatusCode::CREATED, view(flag)))
}

/// A flag's definition.
#[utoipa::path(get, path = "/api/v1/settings/feature-flags/{flag_key}", tag = "feature-flags", security(("bearer" = [])),
    params(("flag_key" = String, Path), ("scope" = inline(Option<Scope>), Query)),
    responses((status = 200, body = Flag, headers(("ETag" = String))), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_flag(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigRead>,
    Path(key): Path<String>,
    params: Params,
) -> AppResult<impl IntoResponse> {
    let owner = owner_of(&auth.principal, &params, false)?;
    Ok(view(seen_by(&auth.principal, state.services.flags().get(owner, &key_in_path(&key)?).await?)))
}

/// Replace a flag's definition (created when absent); `If-Match` makes it conditional.
#[utoipa::path(put, path = "/api/v1/settings/feature-flags/{flag_key}", tag = "feature-flags", security(("bearer" = [])),
    request_body = FlagDefinition,
    params(("flag_key" = String, Path), ("scope" = inline(Option<Scope>), Query), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Flag, headers(("ETag" = String))), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn put_flag(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigWrite>,
    Path(key): Path<String>,
    params: Params,
    if_match: IfMatchHeader,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> AppResult<impl IntoResponse> {
    let owner = owner_of(&auth.principal, &params, true)?;
    let definition = definition_of(body)?;
    if RESERVED.contains(&key.as_str()) {
        return Err(AppError::Invalid(Invalid::one("flag_key", format!("'{key}' is reserved"))));
    }
    let key = flag_key(&key)?;
    Ok(view(state.services.flags().put(&auth.actor(), owner, &key, definition, if_match.0, Expect::Any).await?))
}

/// Delete a flag: evaluation no longer sees it (a tenant's override falls back to the platform flag).
#[utoipa::path(delete, path = "/api/v1/settings/feature-flags/{flag_key}", tag = "feature-flags", security(("bearer" = [])),
    params(("flag_key" = String, Path), ("scope" = inline(Option<Scope>), Query), ("If-Match" = Option<String>, Header)),
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 412, body = Problem)))]
async fn delete_flag(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigWrite>,
    Path(key): Path<String>,
    params: Params,
    if_match: IfMatchHeader,
) -> AppResult<StatusCode> {
    let owner = owner_of(&auth.principal, &params, true)?;
    state.services.flags().delete(&auth.actor(), owner, &key_in_path(&key)?, if_match.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A flag's versions, newest first (a platform flag's: the platform administrator's only).
#[utoipa::path(get, path = "/api/v1/settings/feature-flags/{flag_key}/versions", tag = "feature-flags", security(("bearer" = [])),
    params(("flag_key" = String, Path), ("scope" = inline(Option<Scope>), Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<ConfigVersion>), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_flag_versions(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigRead>,
    Path(key): Path<String>,
    params: Params,
) -> AppResult<Json<Listed<ConfigVersion>>> {
    // Versions hold whole definitions (every tenant's override): not for tenants.
    let owner = owner_of(&auth.principal, &params, true)?;
    Ok(Json(state.services.flags().versions(owner, &key_in_path(&key)?, &params.page()?).await?))
}

/// The caller as an evaluation context: user id, e-mail, roles and teams.
async fn caller_context(state: &AppState, principal: &Principal) -> AppResult<Context> {
    let tenant = principal.tenant()?;
    let user_id = principal.user_id().map(str::to_string);
    let email = match &principal.subject {
        Subject::User { email, .. } => Some(email.clone()),
        _ => None,
    };
    let teams = match &user_id {
        Some(user) => state.services.flags().teams_of(tenant, user).await?,
        None => Vec::new(),
    };
    Ok(Context {
        targeting_key: user_id,
        tenant: Some(tenant.to_string()),
        email,
        roles: principal.roles.clone(),
        teams,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Evaluations {
    pub items: Vec<Evaluation>,
}

/// Every flag the caller's tenant has (its own and the platform's), evaluated for the
/// caller, with value, variant and reason. Answers may be up to 5 seconds old.
#[utoipa::path(get, path = "/api/v1/settings/feature-flags/evaluate", tag = "feature-flags", security(("bearer" = [])),
    responses((status = 200, body = Evaluations), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn evaluate_for_caller(
    State(state): State<AppState>,
    auth: Authorized<need::SignedIn>,
) -> AppResult<Json<Evaluations>> {
    let context = caller_context(&state, &auth.principal).await?;
    Ok(Json(Evaluations { items: state.services.flags().evaluate_all(auth.tenant()?, &context).await? }))
}

/// An OFREP error body (`{"key"?, "errorCode", "errorDetails"}`), which is also a
/// problem+json document (its extension members), as every error answer of the API is.
fn ofrep_error(status: StatusCode, key: Option<&str>, code: &str, details: String) -> Response {
    let mut body = json!({"type": "about:blank", "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(), "detail": details, "errorCode": code, "errorDetails": details});
    if let Some(key) = key {
        body["key"] = json!(key);
    }
    let problem = HeaderValue::from_static("application/problem+json");
    (status, [(header::CONTENT_TYPE, problem)], body.to_string()).into_response()
}

/// The OFREP request's context: an object (or absent); `targetingKey` a string.
fn ofrep_context(bytes: &[u8], caller: Context) -> Result<Context, (&'static str, String)> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(caller);
    }
    let body: Value =
        serde_json::from_slice(bytes).map_err(|e| ("PARSE_ERROR", format!("the body is not JSON: {e}")))?;
    let context = match body.get("context") {
        None | Some(Value::Null) => return Ok(caller),
        Some(Value::Object(c)) => c,
        Some(_) => return Err(("INVALID_CONTEXT", "context must be an object".to_string())),
    };
    let text = |name: &str| -> Result<Option<String>, (&'static str, String)> {
        match context.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(("INVALID_CONTEXT", format!("context.{name} must be a string"))),
        }
    };
    let list = |one: &str, many: &str| -> Result<Vec<String>, (&'static str, String)> {
        let mut out: Vec<String> = text(one)?.into_iter().collect();
        match context.get(many) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        _ => return Err(("INVALID_CONTEXT", format!("context.{many} must be a list of strings"))),
                    }
                }
            }
            Some(_) => return Err(("INVALID_CONTEXT", format!("context.{many} must be a list of strings"))),
        }
        Ok(out)
    };
    match text("targetingKey")? {
        // A context naming someone describes that someone (a server SDK evaluating for its users).
        Some(who) => Ok(Context {
            targeting_key: Some(who),
            tenant: caller.tenant,
            email: text("email")?,
            roles: list("role", "roles")?,
            teams: list("team", "teams")?,
        }),
        None => Ok(caller),
    }
}

fn ofrep_success(e: Evaluation) -> Value {
    json!({"key": e.key, "value": e.value, "variant": e.variant, "reason": e.reason,
           "metadata": {"scope": e.scope, "version": e.version}})
}

/// OFREP single flag evaluation: `{"key", "value", "variant", "reason", "metadata"}`, 404
/// `FLAG_NOT_FOUND`, 400 `PARSE_ERROR`/`INVALID_CONTEXT`. Without a `targetingKey`, the
/// context is the caller.
#[utoipa::path(post, path = "/ofrep/v1/evaluate/flags/{key}", tag = "feature-flags", security(("bearer" = [])),
    params(("key" = String, Path)), request_body(content = Object, description = "{\"context\": {\"targetingKey\": \"user-1\", ...}}"),
    responses((status = 200, body = Object, description = "OFREP evaluation success"),
              (status = 400, body = Object, description = "OFREP evaluation failure"),
              (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Object, description = "OFREP flag not found")))]
async fn ofrep_evaluate_flag(
    State(state): State<AppState>,
    auth: Authorized<need::SignedIn>,
    Path(key): Path<String>,
    body: Bytes,
) -> AppResult<Response> {
    let caller = caller_context(&state, &auth.principal).await?;
    let context = match ofrep_context(&body, caller) {
        Ok(c) => c,
        Err((code, details)) => return Ok(ofrep_error(StatusCode::BAD_REQUEST, Some(&key), code, details)),
    };
    match state.services.flags().evaluate(auth.tenant()?, &key, &context).await? {
        Some(e) => {
            let mut answer = ofrep_success(e);
            answer["cacheable"] = json!(true);
            Ok(Json(answer).into_response())
        }
        None => Ok(ofrep_error(StatusCode::NOT_FOUND, Some(&key), "FLAG_NOT_FOUND", format!("no flag '{key}'"))),
    }
}

/// OFREP bulk evaluation: every flag for the context, with an `ETag`; `If-None-Match`
/// with the same tag answers 304.
#[utoipa::path(post, path = "/ofrep/v1/evaluate/flags", tag = "feature-flags", security(("bearer" = [])),
    params(("If-None-Match" = Option<String>, Header)),
    request_body(content = Object, description = "{\"context\": {\"targetingKey\": \"user-1\", ...}}"),
    responses((status = 200, body = Object, description = "{\"flags\": [...]}", headers(("ETag" = String))),
              (status = 304, description = "Not modified"),
              (status = 400, body = Object, description = "OFREP bulk evaluation failure"),
              (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn ofrep_evaluate_flags(
    State(state): State<AppState>,
    auth: Authorized<need::SignedIn>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let caller = caller_context(&state, &auth.principal).await?;
    let context = match ofrep_context(&body, caller) {
        Ok(c) => c,
        Err((code, details)) => return Ok(ofrep_error(StatusCode::BAD_REQUEST, None, code, details)),
    };
    let flags: Vec<Value> =
        state.services.flags().evaluate_all(auth.tenant()?, &context).await?.into_iter().map(ofrep_success).collect();
    let answer = json!({"flags": flags});
    let digest = crate::app::credentials::sha256_hex(&answer.to_string());
    let etag = format!("\"{}\"", &digest[..32]);
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().trim_start_matches("W/") == etag || t.trim() == "*"));
    let tag = HeaderValue::from_str(&etag).expect("a hex ETag is a valid header");
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    Ok(([(header::ETAG, tag)], Json(answer)).into_response())
}

/// OFREP provider configuration: polling and caching hints for OpenFeature providers.
#[utoipa::path(get, path = "/ofrep/v1/configuration", tag = "feature-flags", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = Problem)))]
async fn ofrep_configuration(_auth: Authorized<need::SignedIn>) -> Json<Value> {
    let ttl_ms = FLAG_CACHE_TTL.as_millis() as u64;
    Json(json!({
        "name": "business-platform",
        "capabilities": {
            "cacheInvalidation": {"polling": {"enabled": true, "minPollingIntervalMs": ttl_ms}},
            "flagEvaluation": {"supportedTypes": ["boolean", "string", "int", "float", "object"]},
            "caching": {"enabled": true, "ttl": ttl_ms}
        }
    }))
}

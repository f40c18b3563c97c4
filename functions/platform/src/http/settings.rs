//! `/api/v1/settings`: tenant settings and platform-wide settings (`?scope=platform`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;

use super::caller::{need, Authorized};
use super::extract::{IfMatchHeader, JsonBody, Params};
use super::problem::Problem;
use super::scope::Scope;
use super::{etag_header, AppState, RouteTable};
use crate::app::error::{AppError, AppResult};
use crate::app::page::Listed;
use crate::app::principal::Principal;
use crate::app::settings::{setting_key, NewSetting, Setting, SettingUpdate};
use crate::domain::access::Permission;
use crate::domain::config::{ConfigVersion, Owner};
use crate::domain::ids::ConfigKey;

pub fn routes<R: RouteTable>() -> R {
    R::empty()
        .with(routes!(list_settings, create_setting))
        .with(routes!(get_setting, put_setting, delete_setting))
        .with(routes!(list_setting_versions))
        .with(routes!(rollback_setting))
}

/// The owner a request reaches: a tenant's own settings, or (platform administrator
/// only) the platform's.
fn owner_of<'a>(principal: &'a Principal, params: &Params) -> AppResult<Owner<'a>> {
    Scope::of(principal, params)?.owner(principal, true, "settings")
}

fn key_in_path(raw: &str) -> AppResult<ConfigKey> {
    setting_key(raw).map_err(|_| AppError::NotFound(format!("setting '{raw}' does not exist")))
}

fn view(setting: Setting) -> impl IntoResponse {
    (etag_header(setting.version), Json(setting))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingRollback {
    /// The earlier version whose value (and description and schema) becomes current.
    pub version: u64,
}

/// Settings of one scope, by key. Filter by `category`. Tenants listing `scope=platform`
/// see the public platform settings.
#[utoipa::path(get, path = "/api/v1/settings", tag = "settings", security(("bearer" = [])),
    params(("category" = Option<String>, Query), ("scope" = inline(Option<Scope>), Query, description = "tenant (default) or platform"),
           ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<Setting>), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_settings(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigRead>,
    params: Params,
) -> AppResult<Json<Listed<Setting>>> {
    let page = params.page()?;
    let category = params.0.get("category").map(String::as_str).filter(|c| !c.is_empty());
    let settings = &state.services.settings();
    let listed = match Scope::of(&auth.principal, &params)? {
        Scope::Tenant => settings.list(Owner::Tenant(auth.tenant()?), category, false, &page).await?,
        Scope::Platform => {
            let public_only = !auth.principal.can(Permission::PlatformOperate);
            settings.list(Owner::Platform, category, public_only, &page).await?
        }
    };
    Ok(Json(listed))
}

/// Create a setting (409 when the key exists). `scope=platform`: a platform setting
/// (platform administrator), which tenants read as their default when `public`.
#[utoipa::path(post, path = "/api/v1/settings", tag = "settings", security(("bearer" = [])), request_body = NewSetting,
    params(("scope" = inline(Option<Scope>), Query, description = "tenant (default) or platform")),
    responses((status = 201, body = Setting, headers(("ETag" = String))), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_setting(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigWrite>,
    params: Params,
    JsonBody(input): JsonBody<NewSetting>,
) -> AppResult<impl IntoResponse> {
    let owner = owner_of(&auth.principal, &params)?;
    let setting = state.services.settings().create(&auth.actor(), owner, input).await?;
    Ok((StatusCode::CREATED, view(setting)))
}

/// A setting. Without `scope`, a tenant reads its own setting or else the platform's
/// public default; `scope` in the answer says which one answered.
#[utoipa::path(get, path = "/api/v1/settings/{key}", tag = "settings", security(("bearer" = [])),
    params(("key" = String, Path), ("scope" = inline(Option<Scope>), Query, description = "tenant or platform; absent: the effective value")),
    responses((status = 200, body = Setting, headers(("ETag" = String))), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_setting(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigRead>,
    Path(key): Path<String>,
    params: Params,
) -> AppResult<impl IntoResponse> {
    let key = key_in_path(&key)?;
    let settings = &state.services.settings();
    let explicit = Scope::named(&params)?.is_some();
    let setting = match Scope::of(&auth.principal, &params)? {
        Scope::Tenant if explicit => settings.get_in(Owner::Tenant(auth.tenant()?), &key, false).await?,
        Scope::Tenant => settings.effective(Owner::Tenant(auth.tenant()?), &key).await?,
        Scope::Platform => {
            settings.get_in(Owner::Platform, &key, !auth.principal.can(Permission::PlatformOperate)).await?
        }
    };
    Ok(view(setting))
}

/// Set a setting's value (a new version; created when absent). Metadata fields given
/// replace the current ones. `If-Match` makes it conditional (412 on mismatch).
#[utoipa::path(put, path = "/api/v1/settings/{key}", tag = "settings", security(("bearer" = [])), request_body = SettingUpdate,
    params(("key" = String, Path), ("scope" = inline(Option<Scope>), Query), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Setting, headers(("ETag" = String))), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn put_setting(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigWrite>,
    Path(key): Path<String>,
    params: Params,
    if_match: IfMatchHeader,
    JsonBody(input): JsonBody<SettingUpdate>,
) -> AppResult<impl IntoResponse> {
    let key = setting_key(&key)?;
    let owner = owner_of(&auth.principal, &params)?;
    Ok(view(state.services.settings().update(&auth.actor(), owner, &key, input, if_match.0).await?))
}

/// Delete a setting. Its versions stay readable; writing the key again continues them.
#[utoipa::path(delete, path = "/api/v1/settings/{key}", tag = "settings", security(("bearer" = [])),
    params(("key" = String, Path), ("scope" = inline(Option<Scope>), Query), ("If-Match" = Option<String>, Header)),
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 412, body = Problem)))]
async fn delete_setting(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigWrite>,
    Path(key): Path<String>,
    params: Params,
    if_match: IfMatchHeader,
) -> AppResult<StatusCode> {
    let key = key_in_path(&key)?;
    let owner = owner_of(&auth.principal, &params)?;
    state.services.settings().delete(&auth.actor(), owner, &key, if_match.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A setting's versions, newest first (a deletion is a version too).
#[utoipa::path(get, path = "/api/v1/settings/{key}/versions", tag = "settings", security(("bearer" = [])),
    params(("key" = String, Path), ("scope" = inline(Option<Scope>), Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<ConfigVersion>), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_setting_versions(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigRead>,
    Path(key): Path<String>,
    params: Params,
) -> AppResult<Json<Listed<ConfigVersion>>> {
    let key = key_in_path(&key)?;
    let owner = owner_of(&auth.principal, &params)?;
    Ok(Json(state.services.settings().versions(owner, &key, &params.page()?).await?))
}

/// Roll a setting back to an earlier version; the rollback is itself a new version.
#[utoipa::path(post, path = "/api/v1/settings/{key}/rollback", tag = "settings", security(("bearer" = [])), request_body = SettingRollback,
    params(("key" = String, Path), ("scope" = inline(Option<Scope>), Query), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Setting, headers(("ETag" = String))), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
              (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn rollback_setting(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigWrite>,
    Path(key): Path<String>,
    params: Params,
    if_match: IfMatchHeader,
    JsonBody(body): JsonBody<SettingRollback>,
) -> AppResult<impl IntoResponse> {
    let key = key_in_path(&key)?;
    let owner = owner_of(&auth.principal, &params)?;
    Ok(view(state.services.settings().rollback(&auth.actor(), owner, &key, body.version, if_match.0).await?))
}

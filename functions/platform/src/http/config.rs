//! Versioned configuration: tenant settings (`/api/v1/config/tenants/{tenant_id}/configs/{config_key}`)
//! and the caller's installed systems (`/api/v1/systems/{system_id}/config`).

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::caller::{need, Authorized};
use super::catalog::system_in_path;
use super::extract::{IfMatchHeader, JsonBody, Params};
use super::problem::Problem;
use super::{etag_header, AppState, RouteTable};
use crate::app::error::{AppError, AppResult};
use crate::app::page::Listed;
use crate::domain::config::{ConfigScope, ConfigVersion};
use crate::domain::ids::{ConfigKey, TenantId};

pub fn routes<R: RouteTable>() -> R {
    R::empty()
        .with(routes!(get_tenant_config, put_tenant_config))
        .with(routes!(list_tenant_config_versions))
        .with(routes!(get_tenant_config_version))
        .with(routes!(rollback_tenant_config))
        .with(routes!(get_system_config, put_system_config))
        .with(routes!(list_system_config_versions))
        .with(routes!(get_system_config_version))
        .with(routes!(rollback_system_config))
}

/// A tenant configuration document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantConfig {
    #[schema(value_type = String)]
    pub tenant_id: TenantId,
    #[schema(value_type = String)]
    pub config_key: ConfigKey,
    #[serde(flatten)]
    pub current: ConfigVersion,
}

/// An installed system's configuration (the document is `configuration`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SystemConfig {
    #[schema(value_type = String)]
    pub tenant_id: TenantId,
    pub system_id: String,
    pub version: u64,
    #[schema(value_type = Object)]
    pub configuration: Value,
    pub cause: crate::domain::config::ConfigCause,
    pub updated_at: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutTenantConfig {
    /// Any JSON document.
    #[schema(value_type = Value)]
    pub value: Value,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSystemConfig {
    /// The whole configuration, valid against the installed version's JSON Schema.
    #[schema(value_type = Object)]
    pub configuration: Value,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The earlier version whose value becomes the new current version.
    pub version: u64,
}

fn key_in_path(raw: &str) -> AppResult<ConfigScope> {
    ConfigKey::parse(raw)
        .map(ConfigScope::Tenant)
        .map_err(|_| AppError::NotFound(format!("configuration '{raw}' does not exist")))
}

fn version_in_path(raw: &str) -> AppResult<u64> {
    raw.parse().map_err(|_| AppError::NotFound(format!("no configuration version '{raw}'")))
}

fn tenant_view(tenant: &TenantId, scope: &ConfigScope, current: ConfigVersion) -> impl IntoResponse {
    let ConfigScope::Tenant(key) = scope else { unreachable!("tenant configuration scopes only") };
    let etag = etag_header(current.version);
    (etag, Json(TenantConfig { tenant_id: tenant.clone(), config_key: key.clone(), current }))
}

fn system_view(tenant: &TenantId, scope: &ConfigScope, current: ConfigVersion) -> impl IntoResponse {
    let ConfigScope::System(system) = scope else { unreachable!("system configuration scopes only") };
    let etag = etag_header(current.version);
    (
        etag,
        Json(SystemConfig {
            tenant_id: tenant.clone(),
            system_id: system.to_string(),
            version: current.version,
            configuration: current.value,
            cause: current.cause,
            updated_at: current.updated_at,
        }),
    )
}

/// Get a tenant configuration (current version).
#[utoipa::path(get, path = "/api/v1/config/tenants/{tenant_id}/configs/{config_key}", tag = "configuration",
    params(("tenant_id" = String, Path), ("config_key" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = TenantConfig, headers(("ETag" = String))), (status = 404, body = Problem)))]
async fn get_tenant_config(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigRead>,
    Path((_tenant_id, key)): Path<(String, String)>,
) -> AppResult<impl IntoResponse> {
    let tenant = auth.tenant()?;
    let scope = key_in_path(&key)?;
    let current = state.services.configs().get(tenant, &scope).await?;
    Ok(tenant_view(tenant, &scope, current))
}

/// Set a tenant configuration: a new version. `If-Match` makes it conditional (412 on mismatch).
#[utoipa::path(put, path = "/api/v1/config/tenants/{tenant_id}/configs/{config_key}", tag = "configuration", request_body = PutTenantConfig,
    params(("tenant_id" = String, Path), ("config_key" = String, Path), ("If-Match" = Option<String>, Header)),
    security(("bearer" = [])),
    responses((status = 200, body = TenantConfig), (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn put_tenant_config(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigWrite>,
    Path((_tenant_id, key)): Path<(String, String)>,
    if_match: IfMatchHeader,
    JsonBody(body): JsonBody<PutTenantConfig>,
) -> AppResult<impl IntoResponse> {
    let tenant = auth.tenant()?;
    let scope = ConfigKey::parse(&key).map(ConfigScope::Tenant)?;
    let current = state.services.configs().put(&auth.actor(), tenant, &scope, body.value, if_match.0).await?;
    Ok(tenant_view(tenant, &scope, current))
}

/// List a tenant configuration's versions, newest first.
#[utoipa::path(get, path = "/api/v1/config/tenants/{tenant_id}/configs/{config_key}/versions", tag = "configuration",
    params(("tenant_id" = String, Path), ("config_key" = String, Path), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    security(("bearer" = [])),
    responses((status = 200, body = Listed<ConfigVersion>), (status = 404, body = Problem)))]
async fn list_tenant_config_versions(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigRead>,
    Path((_tenant_id, key)): Path<(String, String)>,
    params: Params,
) -> AppResult<Json<Listed<ConfigVersion>>> {
    let tenant = auth.tenant()?;
    Ok(Json(state.services.configs().list_versions(tenant, &key_in_path(&key)?, &params.page()?).await?))
}

/// Get one version of a tenant configuration.
#[utoipa::path(get, path = "/api/v1/config/tenants/{tenant_id}/configs/{config_key}/versions/{version}", tag = "configuration",
    params(("tenant_id" = String, Path), ("config_key" = String, Path), ("version" = u64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ConfigVersion), (status = 404, body = Problem)))]
async fn get_tenant_config_version(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigRead>,
    Path((_tenant_id, key, version)): Path<(String, String, String)>,
) -> AppResult<Json<ConfigVersion>> {
    let tenant = auth.tenant()?;
    Ok(Json(state.services.configs().get_version(tenant, &key_in_path(&key)?, version_in_path(&version)?).await?))
}

/// Roll back to an earlier version; the rollback is itself a new version.
#[utoipa::path(post, path = "/api/v1/config/tenants/{tenant_id}/configs/{config_key}/rollback", tag = "configuration", request_body = Rollback,
    params(("tenant_id" = String, Path), ("config_key" = String, Path), ("If-Match" = Option<String>, Header)),
    security(("bearer" = [])),
    responses((status = 200, body = TenantConfig), (status = 404, body = Problem), (status = 412, body = Problem)))]
async fn rollback_tenant_config(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigWrite>,
    Path((_tenant_id, key)): Path<(String, String)>,
    if_match: IfMatchHeader,
    JsonBody(body): JsonBody<Rollback>,
) -> AppResult<impl IntoResponse> {
    let tenant = auth.tenant()?;
    let scope = key_in_path(&key)?;
    let current = state.services.configs().rollback(&auth.actor(), tenant, &scope, body.version, if_match.0).await?;
    Ok(tenant_view(tenant, &scope, current))
}

/// Get the caller's configuration of an installed system.
#[utoipa::path(get, path = "/api/v1/systems/{system_id}/config", tag = "configuration",
    params(("system_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = SystemConfig, headers(("ETag" = String))), (status = 404, body = Problem)))]
async fn get_system_config(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigRead>,
    Path(system_id): Path<String>,
) -> AppResult<impl IntoResponse> {
    let tenant = auth.tenant()?;
    let scope = ConfigScope::System(system_in_path(&system_id)?);
    let current = state.services.configs().get(tenant, &scope).await?;
    Ok(system_view(tenant, &scope, current))
}

/// Replace the configuration of an installed system; validated against its JSON Schema.
#[utoipa::path(put, path = "/api/v1/systems/{system_id}/config", tag = "configuration", request_body = PutSystemConfig,
    params(("system_id" = String, Path), ("If-Match" = Option<String>, Header)),
    security(("bearer" = [])),
    responses((status = 200, body = SystemConfig), (status = 404, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn put_system_config(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigWrite>,
    Path(system_id): Path<String>,
    if_match: IfMatchHeader,
    JsonBody(body): JsonBody<PutSystemConfig>,
) -> AppResult<impl IntoResponse> {
    let tenant = auth.tenant()?;
    let scope = ConfigScope::System(system_in_path(&system_id)?);
    let current = state.services.configs().put(&auth.actor(), tenant, &scope, body.configuration, if_match.0).await?;
    Ok(system_view(tenant, &scope, current))
}

/// List an installed system's configuration versions, newest first.
#[utoipa::path(get, path = "/api/v1/systems/{system_id}/config/versions", tag = "configuration",
    params(("system_id" = String, Path), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    security(("bearer" = [])),
    responses((status = 200, body = Listed<ConfigVersion>), (status = 404, body = Problem)))]
async fn list_system_config_versions(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigRead>,
    Path(system_id): Path<String>,
    params: Params,
) -> AppResult<Json<Listed<ConfigVersion>>> {
    let tenant = auth.tenant()?;
    let scope = ConfigScope::System(system_in_path(&system_id)?);
    Ok(Json(state.services.configs().list_versions(tenant, &scope, &params.page()?).await?))
}

/// Get one version of an installed system's configuration.
#[utoipa::path(get, path = "/api/v1/systems/{system_id}/config/versions/{version}", tag = "configuration",
    params(("system_id" = String, Path), ("version" = u64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ConfigVersion), (status = 404, body = Problem)))]
async fn get_system_config_version(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigRead>,
    Path((system_id, version)): Path<(String, String)>,
) -> AppResult<Json<ConfigVersion>> {
    let tenant = auth.tenant()?;
    let scope = ConfigScope::System(system_in_path(&system_id)?);
    Ok(Json(state.services.configs().get_version(tenant, &scope, version_in_path(&version)?).await?))
}

/// Roll an installed system's configuration back to an earlier version (checked against
/// the installed version's schema); the rollback is itself a new version.
#[utoipa::path(post, path = "/api/v1/systems/{system_id}/config/rollback", tag = "configuration", request_body = Rollback,
    params(("system_id" = String, Path), ("If-Match" = Option<String>, Header)),
    security(("bearer" = [])),
    responses((status = 200, body = SystemConfig), (status = 404, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn rollback_system_config(
    State(state): State<AppState>,
    auth: Authorized<need::ConfigWrite>,
    Path(system_id): Path<String>,
    if_match: IfMatchHeader,
    JsonBody(body): JsonBody<Rollback>,
) -> AppResult<impl IntoResponse> {
    let tenant = auth.tenant()?;
    let scope = ConfigScope::System(system_in_path(&system_id)?);
    let current = state.services.configs().rollback(&auth.actor(), tenant, &scope, body.version, if_match.0).await?;
    Ok(system_view(tenant, &scope, current))
}

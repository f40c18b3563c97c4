//! A tenant's installed systems: `/api/v1/tenants/{tenant_id}/systems`.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;

use super::caller::{need, Authorized};
use super::catalog::system_in_path;
use super::extract::{IfMatchHeader, JsonBody, Params};
use super::problem::Problem;
use super::{etag_header, AppState, RouteTable};
use crate::app::error::AppResult;
use crate::app::installs::{InstallOutcome, UninstallOutcome};
use crate::app::page::Listed;
use crate::domain::ids::SystemId;
use crate::domain::install::{HistoryEntry, Install};

pub fn routes<R: RouteTable>() -> R {
    R::empty()
        .with(routes!(list_installed, install))
        .with(routes!(get_installed, change_version, uninstall))
        .with(routes!(history))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallRequest {
    #[schema(value_type = String, example = "sales")]
    pub system_id: SystemId,
    /// An exact version (`1.0.0`) or a range (`^1.0`); the highest match is installed.
    #[schema(example = "^1.0")]
    pub version: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeVersionRequest {
    /// The version to move to: higher upgrades, lower rolls back.
    #[schema(example = "1.1.0")]
    pub version: String,
}

/// List the tenant's installed systems.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/systems", tag = "tenant-systems",
    params(("tenant_id" = String, Path), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    security(("bearer" = [])),
    responses((status = 200, body = Listed<Install>), (status = 403, body = Problem)))]
async fn list_installed(
    State(state): State<AppState>,
    auth: Authorized<need::SystemsRead>,
    params: Params,
) -> AppResult<Json<Listed<Install>>> {
    let tenant = auth.tenant()?;
    Ok(Json(state.services.installs().list(tenant, &params.page()?).await?))
}

/// Install a system and, in the same atomic operation, its missing dependencies.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/systems", tag = "tenant-systems", request_body = InstallRequest,
    params(("tenant_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 201, body = InstallOutcome), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn install(
    State(state): State<AppState>,
    auth: Authorized<need::SystemsManage>,
    JsonBody(request): JsonBody<InstallRequest>,
) -> AppResult<impl IntoResponse> {
    let tenant = auth.tenant()?;
    let outcome = state
        .services
        .installs()
        .install(&auth.actor(), tenant, &request.system_id, request.version.as_deref())
        .await?;
    let location = format!("/api/v1/tenants/{tenant}/systems/{}", request.system_id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(outcome)))
}

/// Get one installed system.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/systems/{system_id}", tag = "tenant-systems",
    params(("tenant_id" = String, Path), ("system_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Install, headers(("ETag" = String))), (status = 404, body = Problem)))]
async fn get_installed(
    State(state): State<AppState>,
    auth: Authorized<need::SystemsRead>,
    Path((_tenant_id, system_id)): Path<(String, String)>,
) -> AppResult<impl IntoResponse> {
    let tenant = auth.tenant()?;
    let (install, version) = state.services.installs().get(tenant, &system_in_path(&system_id)?).await?;
    Ok((etag_header(version), Json(install)))
}

/// Upgrade or roll back an installed system, migrating its configuration.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant_id}/systems/{system_id}", tag = "tenant-systems", request_body = ChangeVersionRequest,
    params(("tenant_id" = String, Path), ("system_id" = String, Path), ("If-Match" = Option<String>, Header)),
    security(("bearer" = [])),
    responses((status = 200, body = Install), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn change_version(
    State(state): State<AppState>,
    auth: Authorized<need::SystemsManage>,
    Path((_tenant_id, system_id)): Path<(String, String)>,
    if_match: IfMatchHeader,
    JsonBody(request): JsonBody<ChangeVersionRequest>,
) -> AppResult<impl IntoResponse> {
    let tenant = auth.tenant()?;
    let system = system_in_path(&system_id)?;
    let (install, version) = state
        .services
        .installs()
        .change_version(&auth.actor(), tenant, &system, &request.version, if_match.version())
        .await?;
    Ok((etag_header(version), Json(install)))
}

/// Uninstall a system and delete its records; `?cascade=true` also removes the installed
/// systems that depend on it. Records of systems that stay and refer to the deleted ones
/// follow their relations' delete rules (restrict: 409 naming them, nothing changed;
/// cascade; set null). 202 with `complete: false` when time ran out: ask again.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}/systems/{system_id}", tag = "tenant-systems",
    params(("tenant_id" = String, Path), ("system_id" = String, Path), ("cascade" = Option<bool>, Query)),
    security(("bearer" = [])),
    responses((status = 200, body = UninstallOutcome), (status = 202, body = UninstallOutcome), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn uninstall(
    State(state): State<AppState>,
    auth: Authorized<need::SystemsManage>,
    Path((_tenant_id, system_id)): Path<(String, String)>,
    params: Params,
) -> AppResult<impl IntoResponse> {
    let tenant = auth.tenant()?;
    let cascade = params.flag("cascade")?;
    let outcome =
        state.services.installs().uninstall(&auth.actor(), tenant, &system_in_path(&system_id)?, cascade).await?;
    let status = if outcome.complete { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok((status, Json(outcome)))
}

/// Every install, upgrade, rollback and uninstall of a system, oldest first, with outcome.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/systems/{system_id}/history", tag = "tenant-systems",
    params(("tenant_id" = String, Path), ("system_id" = String, Path), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    security(("bearer" = [])),
    responses((status = 200, body = Listed<HistoryEntry>), (status = 404, body = Problem)))]
async fn history(
    State(state): State<AppState>,
    auth: Authorized<need::SystemsRead>,
    Path((_tenant_id, system_id)): Path<(String, String)>,
    params: Params,
) -> AppResult<Json<Listed<HistoryEntry>>> {
    let tenant = auth.tenant()?;
    Ok(Json(state.services.installs().history(tenant, &system_in_path(&system_id)?, &params.page()?).await?))
}

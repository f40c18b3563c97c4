//! The catalog: `/api/v1/systems`, and the operator's seeding of the built-in catalog
//! (`/api/v1/operations/catalog/seed`). Every read needs a credential with `systems.read`
//! (every tenant role has it, and so has the platform administrator); writes are the
//! platform administrator's.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;

use super::caller::{need, Authorized};
use super::extract::{IfMatchHeader, JsonBody, Params};
use super::problem::Problem;
use super::{etag_header, AppState, RouteTable};
use crate::app::error::{AppError, AppResult};
use crate::app::page::Listed;
use crate::domain::catalog::{NewSystem, NewVersion, System, SystemUpdate, SystemVersion};
use crate::domain::ids::SystemId;

pub fn routes<R: RouteTable>() -> R {
    R::empty()
        .with(routes!(list_systems, create_system))
        .with(routes!(get_system, update_system))
        .with(routes!(list_versions, publish_version))
        .with(routes!(get_version))
        .with(routes!(seed_catalog))
}

/// A system id from the path; one that cannot exist is simply not found.
pub(crate) fn system_in_path(raw: &str) -> AppResult<SystemId> {
    SystemId::parse(raw).map_err(|_| AppError::NotFound(format!("system '{raw}' is not in the catalog")))
}

/// List the systems of the catalog.
#[utoipa::path(get, path = "/api/v1/systems", tag = "catalog",
    security(("bearer" = [])),
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<System>), (status = 400, body = Problem)))]
async fn list_systems(
    State(state): State<AppState>,
    _auth: Authorized<need::SystemsRead>,
    params: Params,
) -> AppResult<Json<Listed<System>>> {
    Ok(Json(state.services.catalog().list_systems(&params.page()?).await?))
}

/// Add a system to the catalog (platform administrator).
#[utoipa::path(post, path = "/api/v1/systems", tag = "catalog", request_body = NewSystem,
    security(("bearer" = [])),
    responses((status = 201, body = System), (status = 401, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_system(
    State(state): State<AppState>,
    admin: Authorized<need::CatalogManage>,
    JsonBody(new): JsonBody<NewSystem>,
) -> AppResult<impl IntoResponse> {
    let system = state.services.catalog().create_system(&admin.actor(), new).await?;
    let location = format!("/api/v1/systems/{}", system.system_id);
    Ok((StatusCode::CREATED, etag_header(1), [(header::LOCATION, location)], Json(system)))
}

/// Get a system.
#[utoipa::path(get, path = "/api/v1/systems/{system_id}", tag = "catalog",
    security(("bearer" = [])),
    params(("system_id" = String, Path)),
    responses((status = 200, body = System, headers(("ETag" = String))), (status = 404, body = Problem)))]
async fn get_system(
    State(state): State<AppState>,
    _auth: Authorized<need::SystemsRead>,
    Path(system_id): Path<String>,
) -> AppResult<impl IntoResponse> {
    let (system, version) = state.services.catalog().get_system(&system_in_path(&system_id)?).await?;
    Ok((etag_header(version), Json(system)))
}

/// Update a system's details (platform administrator); `If-Match` guards against lost updates.
#[utoipa::path(put, path = "/api/v1/systems/{system_id}", tag = "catalog", request_body = SystemUpdate,
    params(("system_id" = String, Path), ("If-Match" = Option<String>, Header)),
    security(("bearer" = [])),
    responses((status = 200, body = System), (status = 404, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn update_system(
    State(state): State<AppState>,
    admin: Authorized<need::CatalogManage>,
    Path(system_id): Path<String>,
    if_match: IfMatchHeader,
    JsonBody(update): JsonBody<SystemUpdate>,
) -> AppResult<impl IntoResponse> {
    let (system, version) = state
        .services
        .catalog()
        .update_system(&admin.actor(), &system_in_path(&system_id)?, update, if_match.version())
        .await?;
    Ok((etag_header(version), Json(system)))
}

/// List a system's published versions, newest first.
#[utoipa::path(get, path = "/api/v1/systems/{system_id}/versions", tag = "catalog",
    security(("bearer" = [])),
    params(("system_id" = String, Path), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<SystemVersion>), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_versions(
    State(state): State<AppState>,
    _auth: Authorized<need::SystemsRead>,
    Path(system_id): Path<String>,
    params: Params,
) -> AppResult<Json<Listed<SystemVersion>>> {
    Ok(Json(state.services.catalog().list_versions(&system_in_path(&system_id)?, &params.page()?).await?))
}

/// Publish a new immutable version (platform administrator).
#[utoipa::path(post, path = "/api/v1/systems/{system_id}/versions", tag = "catalog", request_body = NewVersion,
    params(("system_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 201, body = SystemVersion), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn publish_version(
    State(state): State<AppState>,
    admin: Authorized<need::CatalogManage>,
    Path(system_id): Path<String>,
    JsonBody(new): JsonBody<NewVersion>,
) -> AppResult<impl IntoResponse> {
    let published = state.services.catalog().publish_version(&admin.actor(), &system_in_path(&system_id)?, new).await?;
    let location = format!("/api/v1/systems/{}/versions/{}", published.system_id, published.version);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(published)))
}

/// Get one published version with its manifest.
#[utoipa::path(get, path = "/api/v1/systems/{system_id}/versions/{version}", tag = "catalog",
    security(("bearer" = [])),
    params(("system_id" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = SystemVersion), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_version(
    State(state): State<AppState>,
    _auth: Authorized<need::SystemsRead>,
    Path((system_id, version)): Path<(String, String)>,
) -> AppResult<Json<SystemVersion>> {
    let id = system_in_path(&system_id)?;
    let version = semver::Version::parse(&version)
        .map_err(|_| AppError::NotFound(format!("system '{id}' has no version {version}")))?;
    Ok(Json(state.services.catalog().get_version(&id, &version).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Seeded {
    /// The built-in systems and versions the catalog lacked are published.
    seeded: bool,
}

/// Publish the built-in catalog (CRM, Sales, Marketing, Support) where it is missing
/// (idempotent). A deployment does it once through its custom resource; no function
/// does it at start. Served by the catalog's function (it publishes versions as the
/// catalog does), under the operator's paths.
#[utoipa::path(post, path = "/api/v1/operations/catalog/seed", tag = "operations", security(("bearer" = [])),
    responses((status = 200, body = Seeded), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn seed_catalog(
    State(state): State<AppState>,
    _operator: Authorized<need::PlatformOperate>,
) -> AppResult<Json<Seeded>> {
    crate::app::seed::ensure_builtin_catalog(state.services.store.as_ref(), state.services.catalog()).await?;
    Ok(Json(Seeded { seeded: true }))
}

//! `/api/v1/systems/{system_id}/records/{entity}`: the data of the tenant's installed systems.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{Map, Value};

use super::caller::{need, Authorized};
use super::catalog::system_in_path;
use super::extract::{IfMatchHeader, JsonBody, Params};
use super::problem::Problem;
use super::{etag_header, AppState, RouteTable};
use crate::app::error::AppResult;
use crate::app::page::Listed;
use crate::app::records::RecordKey;
use crate::domain::records::Record;

pub fn routes<R: RouteTable>() -> R {
    R::empty().with(routes!(list_records, create_record)).with(routes!(get_record, patch_record, delete_record))
}

/// List an entity's records; any other query parameter filters by field equality.
#[utoipa::path(get, path = "/api/v1/systems/{system_id}/records/{entity}", tag = "records", security(("bearer" = [])),
    params(("system_id" = String, Path), ("entity" = String, Path), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<Record>), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn list_records(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsRead>,
    Path((system_id, entity)): Path<(String, String)>,
    params: Params,
) -> AppResult<Json<Listed<Record>>> {
    let filters: Vec<(String, String)> = params
        .0
        .iter()
        .filter(|(k, _)| k.as_str() != "limit" && k.as_str() != "cursor")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let listed = state
        .services
        .records()
        .list(auth.tenant()?, &system_in_path(&system_id)?, &entity, &filters, &params.page()?)
        .await?;
    Ok(Json(listed))
}

/// Create a record, validated against the entity's JSON Schema; relations must point at existing records.
#[utoipa::path(post, path = "/api/v1/systems/{system_id}/records/{entity}", tag = "records", security(("bearer" = [])),
    params(("system_id" = String, Path), ("entity" = String, Path)), request_body = Object,
    responses((status = 201, body = Record), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn create_record(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    Path((system_id, entity)): Path<(String, String)>,
    JsonBody(data): JsonBody<Map<String, Value>>,
) -> AppResult<impl IntoResponse> {
    let system = system_in_path(&system_id)?;
    let record = state.services.records().create(&auth.actor(), auth.tenant()?, &system, &entity, data).await?;
    let location = format!("/api/v1/systems/{system}/records/{entity}/{}", record.record_id);
    Ok((StatusCode::CREATED, etag_header(1), [(header::LOCATION, location)], Json(record)))
}

/// Get a record.
#[utoipa::path(get, path = "/api/v1/systems/{system_id}/records/{entity}/{record_id}", tag = "records", security(("bearer" = [])),
    params(("system_id" = String, Path), ("entity" = String, Path), ("record_id" = String, Path)),
    responses((status = 200, body = Record, headers(("ETag" = String))), (status = 404, body = Problem)))]
async fn get_record(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsRead>,
    Path((system_id, entity, record_id)): Path<(String, String, String)>,
) -> AppResult<impl IntoResponse> {
    let (record, version) =
        state.services.records().get(auth.tenant()?, &system_in_path(&system_id)?, &entity, &record_id).await?;
    Ok((etag_header(version), Json(record)))
}

/// Change a record with a JSON merge patch (RFC 7386); `If-Match` makes it conditional.
#[utoipa::path(patch, path = "/api/v1/systems/{system_id}/records/{entity}/{record_id}", tag = "records", security(("bearer" = [])),
    params(("system_id" = String, Path), ("entity" = String, Path), ("record_id" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body = Object,
    responses((status = 200, body = Record), (status = 404, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn patch_record(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    Path((system_id, entity, record_id)): Path<(String, String, String)>,
    if_match: IfMatchHeader,
    JsonBody(patch): JsonBody<Map<String, Value>>,
) -> AppResult<impl IntoResponse> {
    let system = system_in_path(&system_id)?;
    let (record, version) = state
        .services
        .records()
        .patch(
            &auth.actor(),
            auth.tenant()?,
            RecordKey { system: &system, entity: &entity, id: &record_id },
            patch,
            if_match.version(),
        )
        .await?;
    Ok((etag_header(version), Json(record)))
}

/// Delete a record.
#[utoipa::path(delete, path = "/api/v1/systems/{system_id}/records/{entity}/{record_id}", tag = "records", security(("bearer" = [])),
    params(("system_id" = String, Path), ("entity" = String, Path), ("record_id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn delete_record(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    Path((system_id, entity, record_id)): Path<(String, String, String)>,
) -> AppResult<StatusCode> {
    state
        .services
        .records()
        .delete(&auth.actor(), auth.tenant()?, &system_in_path(&system_id)?, &entity, &record_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

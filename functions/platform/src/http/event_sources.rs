//! `/api/v1/automation/sources`: a tenant's native AWS event sources (register, list,
//! remove); `/api/v1/operations/...`: the events dropped for belonging to no tenant, and
//! an HTTP way in for native events (an EventBridge API destination, or the local server).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use serde_json::Value;

use super::caller::{need, Authorized};
use super::extract::JsonBody;
use super::problem::Problem;
use super::{AppState, RouteTable};
use crate::app::error::{AppError, AppResult};
use crate::app::event_sources::{EventSource, EventSourceInput, NativeEvent, RegisteredSource, Unmapped};
use crate::app::page::Listed;
use crate::domain::invalid::Invalid;

pub fn routes<R: RouteTable>() -> R {
    R::empty()
        .with(routes!(list_sources, register_source))
        .with(routes!(remove_source))
        .with(routes!(list_unmapped))
        .with(routes!(ingest_native_event))
}

/// The tenant's registered AWS event sources.
#[utoipa::path(get, path = "/api/v1/automation/sources", tag = "automation", security(("bearer" = [])),
    responses((status = 200, body = Listed<EventSource>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_sources(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationRead>,
) -> AppResult<Json<Listed<EventSource>>> {
    Ok(Json(state.services.event_sources().list(auth.tenant()?).await?))
}

/// Register an AWS event source (account, source, detail-type, optional pre-filter
/// pattern). Until the account answers the challenge (shown only here) it stays `pending`.
#[utoipa::path(post, path = "/api/v1/automation/sources", tag = "automation", security(("bearer" = [])),
    request_body = EventSourceInput,
    responses((status = 201, body = RegisteredSource), (status = 422, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn register_source(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationManage>,
    JsonBody(input): JsonBody<EventSourceInput>,
) -> AppResult<impl IntoResponse> {
    let registered = state.services.event_sources().register(&auth.actor(), auth.tenant()?, input).await?;
    Ok((StatusCode::CREATED, Json(registered)))
}

/// Remove an event source (its rules stop receiving its events).
#[utoipa::path(delete, path = "/api/v1/automation/sources/{source_id}", tag = "automation", security(("bearer" = [])),
    params(("source_id" = String, Path)), responses((status = 204), (status = 404, body = Problem)))]
async fn remove_source(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationManage>,
    Path(source_id): Path<String>,
) -> AppResult<StatusCode> {
    state.services.event_sources().remove(&auth.actor(), auth.tenant()?, &source_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Native events dropped because their account is no tenant's (or their source was not
/// registered), by account.
#[utoipa::path(get, path = "/api/v1/operations/unmapped-events", tag = "operations", security(("bearer" = [])),
    responses((status = 200, body = Vec<Unmapped>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_unmapped(
    State(state): State<AppState>,
    _operator: Authorized<need::PlatformOperate>,
) -> AppResult<Json<Vec<Unmapped>>> {
    Ok(Json(state.services.event_sources().unmapped().await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Ingested {
    /// Runs the event started.
    runs: usize,
}

/// Take one native EventBridge event (as EventBridge delivers it: `id`, `source`,
/// `detail-type`, `account`, `detail`, ...) the way the bus would: it runs the rules of
/// the tenant its account and source belong to, proves an account, or is dropped and counted.
#[utoipa::path(post, path = "/api/v1/operations/aws-events", tag = "operations", security(("bearer" = [])),
    request_body = Object,
    responses((status = 202, body = Ingested), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn ingest_native_event(
    State(state): State<AppState>,
    _operator: Authorized<need::PlatformOperate>,
    JsonBody(event): JsonBody<Value>,
) -> AppResult<impl IntoResponse> {
    let native: NativeEvent = serde_json::from_value(event)
        .map_err(|e| AppError::BadRequest(Invalid::one("body", format!("not an EventBridge event: {e}"))))?;
    let runs = crate::app::event_sources::evaluate_native(&state.services, &native).await?;
    Ok((StatusCode::ACCEPTED, Json(Ingested { runs })))
}

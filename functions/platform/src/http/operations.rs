//! `/api/v1/operations`: what the platform operator (platform administrator token) runs:
//! dead letters of every stage (list, replay, discard), the sweep of run deadlines, and
//! the tenants' automation rate limits.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;

use super::caller::{need, Authorized};
use super::extract::{JsonBody, Params};
use super::problem::Problem;
use super::{AppState, RouteTable};
use crate::app::dead_letters::{DeadLetter, DeadLetterFilter};
use crate::app::error::{AppError, AppResult};
use crate::app::page::Listed;
use crate::app::rate_limits::{LimitsView, TenantLimits};
use crate::domain::ids::TenantId;

pub fn routes<R: RouteTable>() -> R {
    R::empty()
        .with(routes!(list_dead_letters))
        .with(routes!(discard_dead_letter))
        .with(routes!(replay_dead_letter))
        .with(routes!(sweep_runs))
        .with(routes!(get_tenant_limits, set_tenant_limits, reset_tenant_limits))
}

fn tenant_of(raw: &str) -> AppResult<TenantId> {
    TenantId::parse(raw).map_err(|e| AppError::NotFound(format!("tenant '{raw}' does not exist ({e})")))
}

/// A tenant's automation rate limits (events that start runs, actions executed), and
/// whether they are the tenant's own or the defaults.
#[utoipa::path(get, path = "/api/v1/operations/tenants/{tenant}/limits", tag = "operations", security(("bearer" = [])),
    params(("tenant" = String, Path)), responses((status = 200, body = LimitsView), (status = 404, body = Problem)))]
async fn get_tenant_limits(
    State(state): State<AppState>,
    _operator: Authorized<need::PlatformOperate>,
    Path(tenant): Path<String>,
) -> AppResult<Json<LimitsView>> {
    Ok(Json(state.services.limiter().view(&tenant_of(&tenant)?).await?))
}

/// Set a tenant's automation rate limits (token buckets: `per_second` sustained, `burst`
/// at most at once). Work over a limit is delayed, never dropped.
#[utoipa::path(put, path = "/api/v1/operations/tenants/{tenant}/limits", tag = "operations", security(("bearer" = [])),
    params(("tenant" = String, Path)), request_body = TenantLimits,
    responses((status = 200, body = LimitsView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn set_tenant_limits(
    State(state): State<AppState>,
    operator: Authorized<need::PlatformOperate>,
    Path(tenant): Path<String>,
    JsonBody(limits): JsonBody<TenantLimits>,
) -> AppResult<Json<LimitsView>> {
    Ok(Json(state.services.limiter().set(&operator.actor(), &tenant_of(&tenant)?, Some(limits)).await?))
}

/// Put a tenant back on the default limits.
#[utoipa::path(delete, path = "/api/v1/operations/tenants/{tenant}/limits", tag = "operations", security(("bearer" = [])),
    params(("tenant" = String, Path)), responses((status = 200, body = LimitsView), (status = 404, body = Problem)))]
async fn reset_tenant_limits(
    State(state): State<AppState>,
    operator: Authorized<need::PlatformOperate>,
    Path(tenant): Path<String>,
) -> AppResult<Json<LimitsView>> {
    Ok(Json(state.services.limiter().set(&operator.actor(), &tenant_of(&tenant)?, None).await?))
}

/// Dead letters of every stage, oldest first (filters `tenant_id`, `source`).
#[utoipa::path(get, path = "/api/v1/operations/dead-letters", tag = "operations", security(("bearer" = [])),
    params(("tenant_id" = Option<String>, Query), ("source" = Option<String>, Query),
           ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<DeadLetter>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_dead_letters(
    State(state): State<AppState>,
    _operator: Authorized<need::PlatformOperate>,
    params: Params,
) -> AppResult<Json<Listed<DeadLetter>>> {
    let filter =
        DeadLetterFilter { tenant_id: params.0.get("tenant_id").cloned(), source: params.0.get("source").cloned() };
    Ok(Json(state.services.dead_letters().list(&filter, &params.page()?).await?))
}

/// Send a dead letter back into the stage it left (an action's run is reopened).
#[utoipa::path(post, path = "/api/v1/operations/dead-letters/{dead_letter_id}/replay", tag = "operations",
    security(("bearer" = [])), params(("dead_letter_id" = String, Path)),
    responses((status = 202, body = DeadLetter), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn replay_dead_letter(
    State(state): State<AppState>,
    operator: Authorized<need::PlatformOperate>,
    Path(dead_letter_id): Path<String>,
) -> AppResult<impl IntoResponse> {
    let letter = state.services.dead_letters().replay(&operator.actor(), &dead_letter_id).await?;
    Ok((StatusCode::ACCEPTED, Json(letter)))
}

/// Forget a dead letter without replaying it.
#[utoipa::path(delete, path = "/api/v1/operations/dead-letters/{dead_letter_id}", tag = "operations",
    security(("bearer" = [])), params(("dead_letter_id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn discard_dead_letter(
    State(state): State<AppState>,
    operator: Authorized<need::PlatformOperate>,
    Path(dead_letter_id): Path<String>,
) -> AppResult<StatusCode> {
    state.services.dead_letters().discard(&operator.actor(), &dead_letter_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
struct Swept {
    /// Runs whose unfinished actions were marked `dead`.
    runs: usize,
}

/// Mark the unfinished actions of runs past their deadline `dead` now (it also runs on
/// its own: every minute locally, every 5 minutes on AWS).
#[utoipa::path(post, path = "/api/v1/operations/sweep", tag = "operations", security(("bearer" = [])),
    responses((status = 200, body = Swept), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn sweep_runs(
    State(state): State<AppState>,
    _operator: Authorized<need::PlatformOperate>,
) -> AppResult<Json<Swept>> {
    let runs = state.services.runs().sweep(crate::domain::time::unix_now()).await?;
    Ok(Json(Swept { runs }))
}

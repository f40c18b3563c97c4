//! `/api/v1/operations`: what the platform operator (platform administrator token) runs:
//! dead letters of every stage (list, replay, discard) and the sweep of run deadlines.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::caller::{need, Authorized};
use super::extract::Params;
use super::problem::Problem;
use super::{ApiRouter, AppState};
use crate::app::dead_letters::{DeadLetter, DeadLetterFilter};
use crate::app::error::AppResult;
use crate::app::page::Listed;

pub fn routes() -> ApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list_dead_letters))
        .routes(routes!(discard_dead_letter))
        .routes(routes!(replay_dead_letter))
        .routes(routes!(sweep_runs))
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
    Ok(Json(state.services.dead_letters.list(&filter, &params.page()?).await?))
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
    let letter = state.services.dead_letters.replay(&operator.actor(), &dead_letter_id).await?;
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
    state.services.dead_letters.discard(&operator.actor(), &dead_letter_id).await?;
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
    let runs = state.services.runs.sweep(crate::domain::time::unix_now()).await?;
    Ok(Json(Swept { runs }))
}

//! `/api/v1/tenants/{tenant_id}`: offboarding (platform administrator).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::caller::{need, Authorized};
use super::problem::Problem;
use super::{ApiRouter, AppState};
use crate::app::error::{AppError, AppResult};
use crate::app::offboarding::{offboard, Offboarding, TIME_BUDGET};
use crate::domain::ids::TenantId;

pub fn routes() -> ApiRouter {
    OpenApiRouter::new().routes(routes!(offboard_tenant))
}

/// Delete a tenant and everything it owns (platform administrator). Works in resumable,
/// idempotent chunks: `complete: false` (202) means time ran out; call again to continue.
/// A platform audit entry records it.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}", tag = "auth", security(("bearer" = [])),
    params(("tenant_id" = String, Path)),
    responses((status = 200, body = Offboarding), (status = 202, body = Offboarding), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn offboard_tenant(
    State(state): State<AppState>,
    auth: Authorized<need::PlatformOperate>,
    Path(tenant_id): Path<String>,
) -> AppResult<(StatusCode, Json<Offboarding>)> {
    let tenant =
        TenantId::parse(&tenant_id).map_err(|_| AppError::NotFound(format!("tenant '{tenant_id}' does not exist")))?;
    let done = offboard(&state.services, &auth.actor(), &tenant, TIME_BUDGET).await?;
    let status = if done.complete { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok((status, Json(done)))
}

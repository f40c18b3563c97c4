//! `/api/v1/tenants/{tenant_id}`: offboarding (platform administrator) and the owner's
//! export of everything the tenant owns.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::caller::{need, Authorized};
use super::problem::Problem;
use super::{AppState, RouteTable};
use crate::app::error::{AppError, AppResult};
use crate::app::exports::{self, ExportJob, ExportStatus};
use crate::app::offboarding::{offboard, Offboarding, TIME_BUDGET};
use crate::domain::ids::TenantId;

pub fn routes<R: RouteTable>() -> R {
    R::empty().with(routes!(offboard_tenant)).with(routes!(export_tenant)).with(routes!(get_export))
}

fn owner_only(principal: &crate::app::principal::Principal) -> AppResult<()> {
    if principal.is_owner() {
        Ok(())
    } else {
        Err(AppError::Forbidden("exports are the tenant owner's".to_string()))
    }
}

/// An export job, with a download link (valid 15 minutes) once complete.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ExportView {
    #[serde(flatten)]
    pub job: ExportJob,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download: Option<String>,
}

/// Export everything the tenant owns (owner): an asynchronous job writing one zip archive,
/// one JSON Lines file per kind (records per entity, users, rules, runs, settings, tools,
/// the audit trail...), secrets left out. Poll its status; it links the archive when done.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/export", tag = "auth", security(("bearer" = [])),
    params(("tenant_id" = String, Path)),
    responses((status = 202, body = ExportView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem)))]
async fn export_tenant(
    State(state): State<AppState>,
    auth: Authorized<need::SignedIn>,
    Path(_tenant_id): Path<String>,
) -> AppResult<(StatusCode, Json<ExportView>)> {
    owner_only(&auth.principal)?;
    let tenant = auth.tenant()?;
    let services = &state.services;
    let job = exports::request(services.store.as_ref(), services.timers().as_ref(), &auth.actor(), tenant).await?;
    Ok((StatusCode::ACCEPTED, Json(ExportView { job, download: None })))
}

/// An export's status (owner), with the archive's download link when complete.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/exports/{export_id}", tag = "auth", security(("bearer" = [])),
    params(("tenant_id" = String, Path), ("export_id" = String, Path)),
    responses((status = 200, body = ExportView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 503, body = Problem)))]
async fn get_export(
    State(state): State<AppState>,
    auth: Authorized<need::SignedIn>,
    Path((_tenant_id, export_id)): Path<(String, String)>,
) -> AppResult<Json<ExportView>> {
    owner_only(&auth.principal)?;
    let (job, _) = exports::get(state.services.store.as_ref(), auth.tenant()?, &export_id).await?;
    let download = match (job.status, &state.services.blobs()) {
        (ExportStatus::Complete, Some(blobs)) => Some(
            blobs
                .download(&job.file_key, "export.zip", super::attachments::URL_TTL)
                .await
                .map_err(|e| AppError::Unavailable(e.to_string()))?,
        ),
        _ => None,
    };
    Ok(Json(ExportView { job, download }))
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

//! `/api/v1/settings/audit-logs`: the tenant's audit trail, read-only; and
//! `/api/v1/platform/audit-logs`: the platform's (platform administrator).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;

use super::caller::{need, Authorized};
use super::extract::Params;
use super::problem::Problem;
use super::{AppState, RouteTable};
use crate::app::audit::{to_csv, to_json_lines, AuditEntry, AuditFilter};
use crate::app::error::{AppError, AppResult};
use crate::app::page::Listed;
use crate::domain::invalid::Invalid;

pub fn routes<R: RouteTable>() -> R {
    R::empty().with(routes!(list)).with(routes!(export)).with(routes!(list_platform))
}

fn filter(params: &Params) -> AuditFilter {
    let get = |name: &str| params.0.get(name).filter(|v| !v.is_empty()).cloned();
    AuditFilter {
        action: get("action"),
        actor: get("actor"),
        target: get("target"),
        since: get("since"),
        until: get("until"),
    }
}

/// The audit trail, newest first. Filters: `action` (exact, or a prefix ending in `*`),
/// `actor`, `target`, `since`, `until` (RFC 3339).
#[utoipa::path(get, path = "/api/v1/settings/audit-logs", tag = "audit", security(("bearer" = [])),
    params(("action" = Option<String>, Query), ("actor" = Option<String>, Query), ("target" = Option<String>, Query),
           ("since" = Option<String>, Query), ("until" = Option<String>, Query),
           ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<AuditEntry>), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    auth: Authorized<need::AuditRead>,
    params: Params,
) -> AppResult<Json<Listed<AuditEntry>>> {
    Ok(Json(state.services.audit().list(auth.tenant()?, &filter(&params), &params.page()?).await?))
}

/// The audit trail's export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
enum ExportFormat {
    Jsonl,
    Csv,
}

/// Every matching entry, oldest first, as JSON Lines (`format=jsonl`, default) or CSV (`format=csv`).
#[utoipa::path(get, path = "/api/v1/settings/audit-logs/export", tag = "audit", security(("bearer" = [])),
    params(("format" = inline(Option<ExportFormat>), Query), ("action" = Option<String>, Query), ("actor" = Option<String>, Query),
           ("target" = Option<String>, Query), ("since" = Option<String>, Query), ("until" = Option<String>, Query)),
    responses((status = 200, content((String = "application/x-ndjson"), (String = "text/csv"))), (status = 400, body = Problem)))]
async fn export(
    State(state): State<AppState>,
    auth: Authorized<need::AuditRead>,
    params: Params,
) -> AppResult<impl IntoResponse> {
    let format = match params.0.get("format").map(String::as_str) {
        None | Some("jsonl" | "ndjson") => ExportFormat::Jsonl,
        Some("csv") => ExportFormat::Csv,
        Some(_) => return Err(AppError::BadRequest(Invalid::one("format", "must be jsonl or csv"))),
    };
    let entries = state.services.audit().export(auth.tenant()?, &filter(&params)).await?;
    let (content_type, name, body) = match format {
        ExportFormat::Jsonl => ("application/x-ndjson", "audit-log.jsonl", to_json_lines(&entries)),
        ExportFormat::Csv => ("text/csv; charset=utf-8", "audit-log.csv", to_csv(&entries)),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    ))
}

/// The platform's audit trail (catalog administration, tenant onboarding and offboarding,
/// platform settings and flags), newest first; the same filters as the tenant trail.
#[utoipa::path(get, path = "/api/v1/platform/audit-logs", tag = "audit", security(("bearer" = [])),
    params(("action" = Option<String>, Query), ("actor" = Option<String>, Query), ("target" = Option<String>, Query),
           ("since" = Option<String>, Query), ("until" = Option<String>, Query),
           ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<AuditEntry>), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_platform(
    State(state): State<AppState>,
    _auth: Authorized<need::PlatformOperate>,
    params: Params,
) -> AppResult<Json<Listed<AuditEntry>>> {
    Ok(Json(state.services.audit().list_platform(&filter(&params), &params.page()?).await?))
}

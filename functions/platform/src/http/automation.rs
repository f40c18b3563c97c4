//! `/api/v1/automation`: triggers, rules, tests, executions, events; and what
//! actions produce: `/api/v1/notifications`, `/api/v1/tools/tasks`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;

use super::caller::{need, Authorized};
use super::extract::{JsonBody, Params};
use super::problem::Problem;
use super::{AppState, RouteTable};
use crate::app::automation::{IncomingEvent, RuleFilter, RuleTest, SampleEvent, TaskFilter, TaskInput, TriggerInfo};
use crate::app::engine::{Execution, Notification, Task};
use crate::app::error::{AppError, AppResult};
use crate::app::page::Listed;
use crate::app::signing_keys::NewSigningKey;
use crate::domain::events::BusinessEvent;
use crate::domain::invalid::Invalid;
use crate::domain::rules::{Rule, RuleInput};

pub fn routes<R: RouteTable>() -> R {
    R::empty()
        .with(routes!(list_triggers))
        .with(routes!(list_rules, create_rule))
        .with(routes!(get_rule, update_rule, delete_rule))
        .with(routes!(toggle_rule))
        .with(routes!(list_rule_versions))
        .with(routes!(get_rule_version))
        .with(routes!(rollback_rule))
        .with(routes!(test_rule))
        .with(routes!(rule_executions))
        .with(routes!(list_executions))
        .with(routes!(get_execution))
        .with(routes!(retry_execution))
        .with(routes!(publish_event))
        .with(routes!(list_notifications))
        .with(routes!(list_tasks, create_task))
        .with(routes!(get_task, update_task, delete_task))
        .with(routes!(rotate_signing_key))
}

/// Executions as readers see them: the rule snapshot without secrets.
fn redacted(execution: Execution) -> Execution {
    Execution { rule: execution.rule.redacted(), ..execution }
}

fn redacted_list(listed: Listed<Execution>) -> Listed<Execution> {
    Listed { items: listed.items.into_iter().map(redacted).collect(), next_cursor: listed.next_cursor }
}

fn flag(params: &Params, name: &str) -> AppResult<Option<bool>> {
    match params.0.get(name).map(String::as_str) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(AppError::BadRequest(Invalid::one(name, "must be true or false"))),
    }
}

/// Triggers of the tenant's installed systems, with the data fields they carry.
#[utoipa::path(get, path = "/api/v1/automation/triggers", tag = "automation", security(("bearer" = [])),
    params(("module_type" = Option<String>, Query)),
    responses((status = 200, body = Vec<TriggerInfo>)))]
async fn list_triggers(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationRead>,
    params: Params,
) -> AppResult<Json<Vec<TriggerInfo>>> {
    Ok(Json(
        state.services.automation().triggers(auth.tenant()?, params.0.get("module_type").map(String::as_str)).await?,
    ))
}

/// List rules (filters `module_type`, `trigger_id`, `is_active`).
#[utoipa::path(get, path = "/api/v1/automation/rules", tag = "automation", security(("bearer" = [])),
    params(("module_type" = Option<String>, Query), ("trigger_id" = Option<String>, Query), ("is_active" = Option<bool>, Query),
           ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<Rule>)))]
async fn list_rules(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationRead>,
    params: Params,
) -> AppResult<Json<Listed<Rule>>> {
    let filter = RuleFilter {
        module_type: params.0.get("module_type").cloned(),
        trigger_id: params.0.get("trigger_id").cloned(),
        is_active: flag(&params, "is_active")?,
    };
    let listed = state.services.automation().list_rules(auth.tenant()?, &filter, &params.page()?).await?;
    Ok(Json(Listed { items: listed.items.into_iter().map(Rule::redacted).collect(), next_cursor: listed.next_cursor }))
}

/// Create a rule.
#[utoipa::path(post, path = "/api/v1/automation/rules", tag = "automation", security(("bearer" = [])), request_body = RuleInput,
    responses((status = 201, body = Rule), (status = 422, body = Problem)))]
async fn create_rule(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationManage>,
    JsonBody(input): JsonBody<RuleInput>,
) -> AppResult<impl IntoResponse> {
    let rule = state.services.automation().create_rule(&auth.actor(), auth.tenant()?, input).await?;
    Ok((StatusCode::CREATED, Json(rule.redacted())))
}

/// Get a rule.
#[utoipa::path(get, path = "/api/v1/automation/rules/{rule_id}", tag = "automation", security(("bearer" = [])),
    params(("rule_id" = String, Path)), responses((status = 200, body = Rule), (status = 404, body = Problem)))]
async fn get_rule(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationRead>,
    Path(rule_id): Path<String>,
) -> AppResult<Json<Rule>> {
    Ok(Json(state.services.automation().get_rule(auth.tenant()?, &rule_id).await?.redacted()))
}

/// Replace a rule.
#[utoipa::path(put, path = "/api/v1/automation/rules/{rule_id}", tag = "automation", security(("bearer" = [])), request_body = RuleInput,
    params(("rule_id" = String, Path)), responses((status = 200, body = Rule), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_rule(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationManage>,
    Path(rule_id): Path<String>,
    JsonBody(input): JsonBody<RuleInput>,
) -> AppResult<Json<Rule>> {
    Ok(Json(state.services.automation().update_rule(&auth.actor(), auth.tenant()?, &rule_id, input).await?.redacted()))
}

/// Delete a rule.
#[utoipa::path(delete, path = "/api/v1/automation/rules/{rule_id}", tag = "automation", security(("bearer" = [])),
    params(("rule_id" = String, Path)), responses((status = 204), (status = 404, body = Problem)))]
async fn delete_rule(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationManage>,
    Path(rule_id): Path<String>,
) -> AppResult<StatusCode> {
    state.services.automation().delete_rule(&auth.actor(), auth.tenant()?, &rule_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enable or disable a rule: `?is_active=true|false`.
#[utoipa::path(put, path = "/api/v1/automation/rules/{rule_id}/toggle", tag = "automation", security(("bearer" = [])),
    params(("rule_id" = String, Path), ("is_active" = bool, Query)), responses((status = 200, body = Rule), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn toggle_rule(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationManage>,
    Path(rule_id): Path<String>,
    params: Params,
) -> AppResult<Json<Rule>> {
    let active = flag(&params, "is_active")?
        .ok_or_else(|| AppError::BadRequest(Invalid::one("is_active", "is required: true or false")))?;
    Ok(Json(state.services.automation().toggle_rule(&auth.actor(), auth.tenant()?, &rule_id, active).await?.redacted()))
}

/// A rule's immutable versions, newest first.
#[utoipa::path(get, path = "/api/v1/automation/rules/{rule_id}/versions", tag = "automation", security(("bearer" = [])),
    params(("rule_id" = String, Path), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<Rule>), (status = 404, body = Problem)))]
async fn list_rule_versions(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationRead>,
    Path(rule_id): Path<String>,
    params: Params,
) -> AppResult<Json<Listed<Rule>>> {
    let listed = state.services.automation().rule_versions(auth.tenant()?, &rule_id, &params.page()?).await?;
    Ok(Json(Listed { items: listed.items.into_iter().map(Rule::redacted).collect(), next_cursor: listed.next_cursor }))
}

/// One version of a rule.
#[utoipa::path(get, path = "/api/v1/automation/rules/{rule_id}/versions/{version}", tag = "automation", security(("bearer" = [])),
    params(("rule_id" = String, Path), ("version" = u64, Path)), responses((status = 200, body = Rule), (status = 404, body = Problem)))]
async fn get_rule_version(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationRead>,
    Path((rule_id, version)): Path<(String, String)>,
) -> AppResult<Json<Rule>> {
    // A version that is no number names no version: 404 (problem+json), never axum's text answer.
    let version: u64 =
        version.parse().map_err(|_| AppError::NotFound(format!("rule '{rule_id}' has no version '{version}'")))?;
    Ok(Json(state.services.automation().rule_version(auth.tenant()?, &rule_id, version).await?.redacted()))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RollbackTo {
    /// The version whose name, conditions, actions and state come back, as a new version.
    version: u64,
}

/// Make an earlier version current again, as a new version.
#[utoipa::path(post, path = "/api/v1/automation/rules/{rule_id}/rollback", tag = "automation", security(("bearer" = [])),
    request_body = RollbackTo, params(("rule_id" = String, Path)),
    responses((status = 200, body = Rule), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn rollback_rule(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationManage>,
    Path(rule_id): Path<String>,
    JsonBody(to): JsonBody<RollbackTo>,
) -> AppResult<Json<Rule>> {
    let rule = state.services.automation().rollback_rule(&auth.actor(), auth.tenant()?, &rule_id, to.version).await?;
    Ok(Json(rule.redacted()))
}

/// Try a rule on a sample event without side effects.
#[utoipa::path(post, path = "/api/v1/automation/rules/{rule_id}/test", tag = "automation", security(("bearer" = [])), request_body = SampleEvent,
    params(("rule_id" = String, Path)), responses((status = 200, body = RuleTest), (status = 404, body = Problem)))]
async fn test_rule(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationRead>,
    Path(rule_id): Path<String>,
    JsonBody(sample): JsonBody<SampleEvent>,
) -> AppResult<Json<RuleTest>> {
    Ok(Json(state.services.automation().test_rule(auth.tenant()?, &rule_id, sample).await?))
}

/// The `?status=` filter of run lists.
fn status_filter(params: &Params) -> AppResult<Option<crate::domain::run_status::RunStatus>> {
    params
        .0
        .get("status")
        .map(|text| {
            crate::domain::run_status::RunStatus::parse(text).ok_or_else(|| {
                AppError::BadRequest(Invalid::one("status", "must be one of pending, succeeded, failed, stopped"))
            })
        })
        .transpose()
}

/// A rule's runs, newest first.
#[utoipa::path(get, path = "/api/v1/automation/rules/{rule_id}/executions", tag = "automation", security(("bearer" = [])),
    params(("rule_id" = String, Path), ("status" = Option<String>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<Execution>), (status = 404, body = Problem)))]
async fn rule_executions(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationRead>,
    Path(rule_id): Path<String>,
    params: Params,
) -> AppResult<Json<Listed<Execution>>> {
    let tenant = auth.tenant()?;
    state.services.automation().get_rule(tenant, &rule_id).await?;
    let status = status_filter(&params)?;
    Ok(Json(redacted_list(
        state.services.automation().executions(tenant, Some(&rule_id), status, &params.page()?).await?,
    )))
}

/// Every run, newest first (`status`: pending, succeeded, failed, stopped).
#[utoipa::path(get, path = "/api/v1/automation/executions", tag = "automation", security(("bearer" = [])),
    params(("status" = Option<String>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<Execution>)))]
async fn list_executions(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationRead>,
    params: Params,
) -> AppResult<Json<Listed<Execution>>> {
    let status = status_filter(&params)?;
    Ok(Json(redacted_list(
        state.services.automation().executions(auth.tenant()?, None, status, &params.page()?).await?,
    )))
}

/// One run: the event, which conditions held, each action's outcome and attempts.
#[utoipa::path(get, path = "/api/v1/automation/executions/{execution_id}", tag = "automation", security(("bearer" = [])),
    params(("execution_id" = String, Path)), responses((status = 200, body = Execution), (status = 404, body = Problem)))]
async fn get_execution(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationRead>,
    Path(execution_id): Path<String>,
) -> AppResult<Json<Execution>> {
    Ok(Json(redacted(state.services.automation().execution(auth.tenant()?, &execution_id).await?.0)))
}

/// Replay the failed actions of a run.
#[utoipa::path(post, path = "/api/v1/automation/executions/{execution_id}/retry", tag = "automation", security(("bearer" = [])),
    params(("execution_id" = String, Path)), responses((status = 202, body = Execution), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn retry_execution(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationManage>,
    Path(execution_id): Path<String>,
) -> AppResult<impl IntoResponse> {
    let execution = state.services.automation().retry(&auth.actor(), auth.tenant()?, &execution_id).await?;
    Ok((StatusCode::ACCEPTED, Json(redacted(execution))))
}

/// Publish an event from outside; it takes the same path as events derived from records.
#[utoipa::path(post, path = "/api/v1/automation/events", tag = "automation", security(("bearer" = [])), request_body = IncomingEvent,
    responses((status = 202, body = BusinessEvent), (status = 422, body = Problem)))]
async fn publish_event(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationManage>,
    JsonBody(event): JsonBody<IncomingEvent>,
) -> AppResult<impl IntoResponse> {
    let event = state.services.automation().publish(auth.tenant()?, event).await?;
    Ok((StatusCode::ACCEPTED, Json(event)))
}

/// Replace the tenant's webhook signing key. The new key is in this answer only; webhooks
/// without their own `secret` are signed with it from now on.
#[utoipa::path(post, path = "/api/v1/automation/signing-key", tag = "automation", security(("bearer" = [])),
    responses((status = 201, body = NewSigningKey), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn rotate_signing_key(
    State(state): State<AppState>,
    auth: Authorized<need::AutomationManage>,
) -> AppResult<(StatusCode, Json<NewSigningKey>)> {
    Ok((StatusCode::CREATED, Json(state.services.signing_keys().rotate(&auth.actor(), auth.tenant()?).await?)))
}

/// Notifications sent by automations, newest first.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "automation", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<Notification>)))]
async fn list_notifications(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsRead>,
    params: Params,
) -> AppResult<Json<Listed<Notification>>> {
    Ok(Json(state.services.automation().notifications(auth.tenant()?, &params.page()?).await?))
}

/// Tasks (a tool of the system service), created by people or by automations, newest
/// first. Filters: `status`, `assignee`, `overdue=true`, and the tools' shared filters.
#[utoipa::path(get, path = "/api/v1/tools/tasks", tag = "tools", security(("bearer" = [])),
    params(("status" = Option<String>, Query), ("assignee" = Option<String>, Query), ("overdue" = Option<bool>, Query),
           ("system_id" = Option<String>, Query), ("entity" = Option<String>, Query), ("record_id" = Option<String>, Query),
           ("owner" = Option<String>, Query), ("since" = Option<String>, Query), ("until" = Option<String>, Query),
           ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<Task>), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_tasks(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsRead>,
    params: Params,
) -> AppResult<Json<Listed<Task>>> {
    let status: Option<crate::domain::tools::TaskStatus> = match params.0.get("status").filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(serde_json::from_value(serde_json::Value::String(raw.clone())).map_err(|_| {
            AppError::BadRequest(Invalid::one("status", "must be one of todo, in_progress, done, cancelled"))
        })?),
    };
    let tools = super::tools::tool_filter(&params);
    tools.check().map_err(AppError::BadRequest)?;
    let filter = TaskFilter {
        status,
        assignee: params.0.get("assignee").filter(|a| !a.is_empty()).cloned(),
        overdue: params.flag("overdue")?,
        tools,
    };
    Ok(Json(state.services.automation().tasks(auth.tenant()?, &filter, &params.page()?).await?))
}

/// Create a task (a `task_created` event of the `tools` module; `task_overdue` fires at
/// its due date unless it is done or cancelled by then).
#[utoipa::path(post, path = "/api/v1/tools/tasks", tag = "tools", security(("bearer" = [])), request_body = TaskInput,
    responses((status = 201, body = Task), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_task(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    JsonBody(input): JsonBody<TaskInput>,
) -> AppResult<impl IntoResponse> {
    let creator = auth.principal.user_id();
    let task = state.services.automation().create_task(&auth.actor(), creator, auth.tenant()?, input).await?;
    Ok((StatusCode::CREATED, Json(task)))
}

/// A task.
#[utoipa::path(get, path = "/api/v1/tools/tasks/{task_id}", tag = "tools", security(("bearer" = [])),
    params(("task_id" = String, Path)),
    responses((status = 200, body = Task), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_task(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsRead>,
    Path(task_id): Path<String>,
) -> AppResult<Json<Task>> {
    Ok(Json(state.services.automation().task(auth.tenant()?, &task_id).await?.0))
}

/// Change a task; the status follows the workflow (todo, in_progress, done, cancelled;
/// closed tasks reopen to todo).
#[utoipa::path(put, path = "/api/v1/tools/tasks/{task_id}", tag = "tools", security(("bearer" = [])), request_body = TaskInput,
    params(("task_id" = String, Path)),
    responses((status = 200, body = Task), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_task(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    Path(task_id): Path<String>,
    JsonBody(input): JsonBody<TaskInput>,
) -> AppResult<Json<Task>> {
    Ok(Json(state.services.automation().update_task(&auth.actor(), auth.tenant()?, &task_id, input).await?))
}

/// Delete a task.
#[utoipa::path(delete, path = "/api/v1/tools/tasks/{task_id}", tag = "tools", security(("bearer" = [])),
    params(("task_id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn delete_task(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    Path(task_id): Path<String>,
) -> AppResult<StatusCode> {
    state.services.automation().delete_task(&auth.actor(), auth.tenant()?, &task_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

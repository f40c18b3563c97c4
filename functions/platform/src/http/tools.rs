//! The tools: `/api/v1/tools/notes`, `/api/v1/tools/calls`, `/api/v1/tools/reviews`
//! (tasks are in `automation.rs`). Every list takes `system_id`/`entity`/`record_id`
//! (the subject), `owner`, `since`/`until` (creation time) and paginates.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::caller::{need, Authorized};
use super::extract::{JsonBody, Params};
use super::problem::Problem;
use super::{AppState, RouteTable};
use crate::app::error::{AppError, AppResult};
use crate::app::page::Listed;
use crate::app::principal::Principal;
use crate::app::tools::{new_common, ToolFilter};
use crate::domain::access::Permission;
use crate::domain::invalid::{FieldIssue, Invalid};
use crate::domain::tools::{
    check_text, is_e164, is_rfc3339, Call, CallDirection, CallOutcome, Note, Review, ReviewStatus, Subject, Visibility,
    MAX_NOTE_BODY, MAX_TEXT_CHARS, MAX_TITLE_CHARS,
};

pub fn notes_routes<R: RouteTable>() -> R {
    R::empty().with(routes!(list_notes, create_note)).with(routes!(get_note, update_note, delete_note))
}

pub fn calls_routes<R: RouteTable>() -> R {
    R::empty().with(routes!(list_calls, create_call)).with(routes!(get_call, update_call, delete_call))
}

pub fn reviews_routes<R: RouteTable>() -> R {
    R::empty().with(routes!(list_reviews, create_review)).with(routes!(review_summary)).with(routes!(
        get_review,
        update_review,
        delete_review
    ))
}

/// The shared list filters of a query string.
pub fn tool_filter(params: &Params) -> ToolFilter {
    let get = |name: &str| params.0.get(name).filter(|v| !v.is_empty()).cloned();
    ToolFilter {
        system_id: get("system_id"),
        entity: get("entity"),
        record_id: get("record_id"),
        owner: get("owner"),
        since: get("since"),
        until: get("until"),
    }
}

/// The user behind the caller: tools belong to users (the platform administrator has none).
fn user_of(principal: &Principal) -> AppResult<&str> {
    principal.user_id().ok_or_else(|| AppError::Forbidden("tools are used by the tenant's users".to_string()))
}

fn invalid(issues: Vec<FieldIssue>) -> AppResult<()> {
    if issues.is_empty() {
        Ok(())
    } else {
        Err(Invalid(issues).into())
    }
}

fn one_of<T: for<'de> Deserialize<'de>>(params: &Params, name: &str, what: &str) -> AppResult<Option<T>> {
    match params.0.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(raw) => serde_json::from_value(serde_json::Value::String(raw.clone()))
            .map(Some)
            .map_err(|_| AppError::BadRequest(Invalid::one(name, format!("must be one of {what}")))),
    }
}

// ---------------------------------------------------------------------------------- notes

/// A note as written; on change, the fields given replace the current ones.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    pub title: Option<String>,
    /// Markdown, at most 64 KiB.
    pub body: Option<String>,
    pub pinned: Option<bool>,
    /// `private` (default), `team` (with `team_id`) or `tenant`.
    pub visibility: Option<Visibility>,
    pub team_id: Option<String>,
    pub subject: Option<Subject>,
}

fn check_note(note: &Note) -> Vec<FieldIssue> {
    let mut issues = Vec::new();
    check_text("title", Some(&note.title), true, MAX_TITLE_CHARS, &mut issues);
    if note.body.len() > MAX_NOTE_BODY {
        issues.push(FieldIssue::new("body", format!("must be at most {MAX_NOTE_BODY} bytes")));
    }
    match (note.visibility, &note.team_id) {
        (Visibility::Team, None) => issues.push(FieldIssue::new("team_id", "is required for team visibility")),
        (Visibility::Private | Visibility::Tenant, Some(_)) => {
            issues.push(FieldIssue::new("team_id", "goes with team visibility only"))
        }
        _ => {}
    }
    issues
}

fn apply_note(note: &mut Note, input: NoteInput) {
    if let Some(v) = input.title {
        note.title = v;
    }
    if let Some(v) = input.body {
        note.body = v;
    }
    if let Some(v) = input.pinned {
        note.pinned = v;
    }
    if let Some(v) = input.visibility {
        note.visibility = v;
        if v != Visibility::Team {
            note.team_id = None;
        }
    }
    if input.team_id.is_some() {
        note.team_id = input.team_id;
    }
    if input.subject.is_some() {
        note.common.subject = input.subject;
    }
}

/// Whether the caller may see the note: its owner, its team's members, or everyone.
fn may_read(note: &Note, user: &str, teams: &[String]) -> bool {
    note.common.owner.as_deref() == Some(user)
        || note.visibility == Visibility::Tenant
        || (note.visibility == Visibility::Team && note.team_id.as_ref().is_some_and(|t| teams.contains(t)))
}

async fn readable_note(state: &AppState, principal: &Principal, id: &str) -> AppResult<(Note, u64)> {
    let tenant = principal.tenant()?;
    let user = user_of(principal)?;
    let (note, version) = state.services.tools().get::<Note>(tenant, id).await?;
    let teams = state.services.teams().teams_of(tenant, user).await?;
    if !may_read(&note, user, &teams) {
        // Refused alike whether or not it exists.
        return Err(AppError::NotFound(format!("note '{id}' does not exist")));
    }
    Ok((note, version))
}

async fn own_note(state: &AppState, principal: &Principal, id: &str) -> AppResult<(Note, u64)> {
    let (note, version) = readable_note(state, principal, id).await?;
    if note.common.owner.as_deref() != Some(user_of(principal)?) {
        return Err(AppError::Forbidden("only a note's owner changes or deletes it".to_string()));
    }
    Ok((note, version))
}

/// Notes the caller may read, newest first. Also `pinned=true`.
#[utoipa::path(get, path = "/api/v1/tools/notes", tag = "tools", security(("bearer" = [])),
    params(("pinned" = Option<bool>, Query), ("system_id" = Option<String>, Query), ("entity" = Option<String>, Query),
           ("record_id" = Option<String>, Query), ("owner" = Option<String>, Query), ("since" = Option<String>, Query),
           ("until" = Option<String>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<Note>), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_notes(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsRead>,
    params: Params,
) -> AppResult<Json<Listed<Note>>> {
    let tenant = auth.tenant()?;
    let user = user_of(&auth.principal)?;
    let teams = state.services.teams().teams_of(tenant, user).await?;
    let pinned = params.0.contains_key("pinned").then(|| params.flag("pinned")).transpose()?;
    let filter = tool_filter(&params);
    let listed = state
        .services
        .tools()
        .list::<Note>(tenant, &filter, &params.page()?, |n| {
            may_read(n, user, &teams) && pinned.is_none_or(|p| n.pinned == p)
        })
        .await?;
    Ok(Json(listed))
}

/// Write a note (a `note_created` event of the `tools` module).
#[utoipa::path(post, path = "/api/v1/tools/notes", tag = "tools", security(("bearer" = [])), request_body = NoteInput,
    responses((status = 201, body = Note), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_note(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    JsonBody(input): JsonBody<NoteInput>,
) -> AppResult<impl IntoResponse> {
    let tenant = auth.tenant()?;
    let user = user_of(&auth.principal)?;
    let mut note = Note {
        common: new_common(Some(user), None),
        title: String::new(),
        body: String::new(),
        pinned: false,
        visibility: Visibility::Private,
        team_id: None,
    };
    apply_note(&mut note, input);
    invalid(check_note(&note))?;
    check_team(&state, tenant, note.team_id.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(state.services.tools().create(&auth.actor(), tenant, note).await?)))
}

async fn check_team(state: &AppState, tenant: &crate::domain::ids::TenantId, team: Option<&str>) -> AppResult<()> {
    let Some(team) = team else { return Ok(()) };
    match state.services.teams().get(tenant, team).await {
        Ok(_) => Ok(()),
        Err(AppError::NotFound(_)) => {
            Err(Invalid::one("team_id", format!("'{team}' is not a team of this tenant")).into())
        }
        Err(e) => Err(e),
    }
}

/// A note (404 for notes the caller may not read).
#[utoipa::path(get, path = "/api/v1/tools/notes/{note_id}", tag = "tools", security(("bearer" = [])),
    params(("note_id" = String, Path)),
    responses((status = 200, body = Note), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_note(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsRead>,
    Path(id): Path<String>,
) -> AppResult<Json<Note>> {
    Ok(Json(readable_note(&state, &auth.principal, &id).await?.0))
}

/// Change a note (its owner only); the fields given replace the current ones.
#[utoipa::path(put, path = "/api/v1/tools/notes/{note_id}", tag = "tools", security(("bearer" = [])), request_body = NoteInput,
    params(("note_id" = String, Path)),
    responses((status = 200, body = Note), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_note(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<NoteInput>,
) -> AppResult<Json<Note>> {
    let tenant = auth.tenant()?;
    let (before, version) = own_note(&state, &auth.principal, &id).await?;
    let mut after = before.clone();
    apply_note(&mut after, input);
    invalid(check_note(&after))?;
    check_team(&state, tenant, after.team_id.as_deref()).await?;
    Ok(Json(state.services.tools().replace(&auth.actor(), tenant, &before, version, after).await?))
}

/// Delete a note (its owner only).
#[utoipa::path(delete, path = "/api/v1/tools/notes/{note_id}", tag = "tools", security(("bearer" = [])),
    params(("note_id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_note(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let (before, version) = own_note(&state, &auth.principal, &id).await?;
    state.services.tools().delete(&auth.actor(), auth.tenant()?, &before, version).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------- calls

/// A call as logged; on change, the fields given replace the current ones.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallInput {
    pub direction: Option<CallDirection>,
    /// E.164, e.g. `+358401234567`.
    pub phone_number: Option<String>,
    /// RFC 3339; default now.
    pub started_at: Option<String>,
    pub duration_seconds: Option<u32>,
    pub outcome: Option<CallOutcome>,
    pub summary: Option<String>,
    pub subject: Option<Subject>,
}

/// Longest call logged: a day.
const MAX_CALL_SECONDS: u32 = 86_400;

fn check_call(call: &Call) -> Vec<FieldIssue> {
    let mut issues = Vec::new();
    if !is_e164(&call.phone_number) {
        issues
            .push(FieldIssue::new("phone_number", "must be an E.164 number: + and 2 to 15 digits, e.g. +358401234567"));
    }
    if !is_rfc3339(&call.started_at) {
        issues.push(FieldIssue::new("started_at", "must be an RFC 3339 time"));
    }
    if call.duration_seconds > MAX_CALL_SECONDS {
        issues.push(FieldIssue::new("duration_seconds", format!("must be at most {MAX_CALL_SECONDS}")));
    }
    check_text("summary", Some(&call.summary), false, MAX_TEXT_CHARS, &mut issues);
    issues
}

fn apply_call(call: &mut Call, input: CallInput) {
    if let Some(v) = input.direction {
        call.direction = v;
    }
    if let Some(v) = input.phone_number {
        call.phone_number = v;
    }
    if let Some(v) = input.started_at {
        call.started_at = v;
    }
    if let Some(v) = input.duration_seconds {
        call.duration_seconds = v;
    }
    if let Some(v) = input.outcome {
        call.outcome = v;
    }
    if let Some(v) = input.summary {
        call.summary = v;
    }
    if input.subject.is_some() {
        call.common.subject = input.subject;
    }
}

/// Call logs, newest first. Also `direction`, `outcome`.
#[utoipa::path(get, path = "/api/v1/tools/calls", tag = "tools", security(("bearer" = [])),
    params(("direction" = Option<String>, Query), ("outcome" = Option<String>, Query), ("system_id" = Option<String>, Query),
           ("entity" = Option<String>, Query), ("record_id" = Option<String>, Query), ("owner" = Option<String>, Query),
           ("since" = Option<String>, Query), ("until" = Option<String>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<Call>), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_calls(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsRead>,
    params: Params,
) -> AppResult<Json<Listed<Call>>> {
    let direction: Option<CallDirection> = one_of(&params, "direction", "inbound, outbound")?;
    let outcome: Option<CallOutcome> = one_of(&params, "outcome", "answered, no_answer, busy, voicemail, failed")?;
    let filter = tool_filter(&params);
    let listed = state
        .services
        .tools()
        .list::<Call>(auth.tenant()?, &filter, &params.page()?, |c| {
            direction.is_none_or(|d| c.direction == d) && outcome.is_none_or(|o| c.outcome == o)
        })
        .await?;
    Ok(Json(listed))
}

/// Log a call (a `call_logged` event of the `tools` module). `direction`, `phone_number`
/// and `outcome` are required.
#[utoipa::path(post, path = "/api/v1/tools/calls", tag = "tools", security(("bearer" = [])), request_body = CallInput,
    responses((status = 201, body = Call), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_call(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    JsonBody(input): JsonBody<CallInput>,
) -> AppResult<impl IntoResponse> {
    let tenant = auth.tenant()?;
    let user = user_of(&auth.principal)?;
    let mut issues = Vec::new();
    for (field, missing) in [
        ("direction", input.direction.is_none()),
        ("phone_number", input.phone_number.is_none()),
        ("outcome", input.outcome.is_none()),
    ] {
        if missing {
            issues.push(FieldIssue::new(field, "is required"));
        }
    }
    invalid(issues)?;
    let common = new_common(Some(user), None);
    let mut call = Call {
        started_at: common.created_at.clone(),
        common,
        direction: CallDirection::Inbound,
        phone_number: String::new(),
        duration_seconds: 0,
        outcome: CallOutcome::Answered,
        summary: String::new(),
    };
    apply_call(&mut call, input);
    invalid(check_call(&call))?;
    Ok((StatusCode::CREATED, Json(state.services.tools().create(&auth.actor(), tenant, call).await?)))
}

/// A call log.
#[utoipa::path(get, path = "/api/v1/tools/calls/{call_id}", tag = "tools", security(("bearer" = [])),
    params(("call_id" = String, Path)),
    responses((status = 200, body = Call), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_call(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsRead>,
    Path(id): Path<String>,
) -> AppResult<Json<Call>> {
    Ok(Json(state.services.tools().get::<Call>(auth.tenant()?, &id).await?.0))
}

/// Change a call log; the fields given replace the current ones.
#[utoipa::path(put, path = "/api/v1/tools/calls/{call_id}", tag = "tools", security(("bearer" = [])), request_body = CallInput,
    params(("call_id" = String, Path)),
    responses((status = 200, body = Call), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_call(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<CallInput>,
) -> AppResult<Json<Call>> {
    let tenant = auth.tenant()?;
    let (before, version) = state.services.tools().get::<Call>(tenant, &id).await?;
    let mut after = before.clone();
    apply_call(&mut after, input);
    invalid(check_call(&after))?;
    Ok(Json(state.services.tools().replace(&auth.actor(), tenant, &before, version, after).await?))
}

/// Delete a call log.
#[utoipa::path(delete, path = "/api/v1/tools/calls/{call_id}", tag = "tools", security(("bearer" = [])),
    params(("call_id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_call(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let tenant = auth.tenant()?;
    let (before, version) = state.services.tools().get::<Call>(tenant, &id).await?;
    state.services.tools().delete(&auth.actor(), tenant, &before, version).await?;
    Ok(StatusCode::NO_CONTENT)
}

// -------------------------------------------------------------------------------- reviews

/// A review as written. `status` (moderation) is changed by moderators: callers holding
/// `reviews.moderate` (owners and admins).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewInput {
    /// 1 to 5.
    pub rating: Option<u8>,
    pub title: Option<String>,
    pub body: Option<String>,
    pub subject: Option<Subject>,
    /// `pending`, `published` or `rejected` (moderators only).
    pub status: Option<ReviewStatus>,
}

fn check_review(review: &Review) -> Vec<FieldIssue> {
    let mut issues = Vec::new();
    if !(1..=5).contains(&review.rating) {
        issues.push(FieldIssue::new("rating", "must be 1 to 5"));
    }
    check_text("title", Some(&review.title), false, MAX_TITLE_CHARS, &mut issues);
    check_text("body", Some(&review.body), false, MAX_TEXT_CHARS, &mut issues);
    issues
}

fn moderates(principal: &Principal) -> bool {
    principal.can(Permission::ReviewsModerate)
}

/// Published reviews are everyone's to read; others only their author's and moderators'.
fn may_see(review: &Review, principal: &Principal) -> bool {
    review.status == ReviewStatus::Published
        || moderates(principal)
        || principal.user_id() == Some(review.author.as_str())
}

/// Reviews, newest first. Also `status`, `rating`.
#[utoipa::path(get, path = "/api/v1/tools/reviews", tag = "tools", security(("bearer" = [])),
    params(("status" = Option<String>, Query), ("rating" = Option<u8>, Query), ("system_id" = Option<String>, Query),
           ("entity" = Option<String>, Query), ("record_id" = Option<String>, Query), ("owner" = Option<String>, Query),
           ("since" = Option<String>, Query), ("until" = Option<String>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<Review>), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_reviews(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsRead>,
    params: Params,
) -> AppResult<Json<Listed<Review>>> {
    let status: Option<ReviewStatus> = one_of(&params, "status", "pending, published, rejected")?;
    let rating = match params.0.get("rating").filter(|r| !r.is_empty()) {
        None => None,
        Some(raw) => Some(
            raw.parse::<u8>()
                .ok()
                .filter(|r| (1..=5).contains(r))
                .ok_or_else(|| AppError::BadRequest(Invalid::one("rating", "must be 1 to 5")))?,
        ),
    };
    let filter = tool_filter(&params);
    let principal = &auth.principal;
    let listed = state
        .services
        .tools()
        .list::<Review>(auth.tenant()?, &filter, &params.page()?, |r| {
            may_see(r, principal) && status.is_none_or(|s| r.status == s) && rating.is_none_or(|n| r.rating == n)
        })
        .await?;
    Ok(Json(listed))
}

/// Write a review (status `pending` until a moderator publishes it; a `review_created`
/// event of the `tools` module).
#[utoipa::path(post, path = "/api/v1/tools/reviews", tag = "tools", security(("bearer" = [])), request_body = ReviewInput,
    responses((status = 201, body = Review), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_review(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    JsonBody(input): JsonBody<ReviewInput>,
) -> AppResult<impl IntoResponse> {
    let tenant = auth.tenant()?;
    let user = user_of(&auth.principal)?;
    if input.rating.is_none() {
        return Err(Invalid::one("rating", "is required").into());
    }
    if input.status.is_some_and(|s| s != ReviewStatus::Pending) && !moderates(&auth.principal) {
        return Err(AppError::Forbidden("only moderators (reviews.moderate) set a review's status".to_string()));
    }
    let review = Review {
        common: new_common(Some(user), input.subject),
        rating: input.rating.unwrap_or_default(),
        title: input.title.unwrap_or_default(),
        body: input.body.unwrap_or_default(),
        author: user.to_string(),
        status: input.status.unwrap_or_default(),
    };
    invalid(check_review(&review))?;
    Ok((StatusCode::CREATED, Json(state.services.tools().create(&auth.actor(), tenant, review).await?)))
}

/// Count, average and distribution of a subject's published reviews.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewSummary {
    pub count: usize,
    /// `null` when there are none.
    pub average: Option<f64>,
    /// Rating ("1" to "5") -> how many.
    pub distribution: BTreeMap<String, usize>,
}

/// Most reviews one summary reads.
const MAX_SUMMARIZED: usize = 100_000;

/// The summary of the published reviews of a subject (`system_id`, `entity`, `record_id`).
#[utoipa::path(get, path = "/api/v1/tools/reviews/summary", tag = "tools", security(("bearer" = [])),
    params(("system_id" = String, Query), ("entity" = String, Query), ("record_id" = String, Query)),
    responses((status = 200, body = ReviewSummary), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn review_summary(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsRead>,
    params: Params,
) -> AppResult<Json<ReviewSummary>> {
    let filter = tool_filter(&params);
    let mut issues = Vec::new();
    for (name, value) in
        [("system_id", &filter.system_id), ("entity", &filter.entity), ("record_id", &filter.record_id)]
    {
        if value.is_none() {
            issues.push(FieldIssue::new(name, "is required: the subject to summarize"));
        }
    }
    if !issues.is_empty() {
        return Err(AppError::BadRequest(Invalid(issues)));
    }
    let reviews = state
        .services
        .tools()
        .all::<Review>(auth.tenant()?, MAX_SUMMARIZED, |r| {
            r.status == ReviewStatus::Published && filter.matches(&r.common)
        })
        .await?;
    let mut distribution: BTreeMap<String, usize> = (1..=5).map(|n| (n.to_string(), 0)).collect();
    for r in &reviews {
        *distribution.entry(r.rating.to_string()).or_default() += 1;
    }
    let total: u64 = reviews.iter().map(|r| u64::from(r.rating)).sum();
    let average = (!reviews.is_empty()).then(|| (total as f64 / reviews.len() as f64 * 100.0).round() / 100.0);
    Ok(Json(ReviewSummary { count: reviews.len(), average, distribution }))
}

/// A review.
#[utoipa::path(get, path = "/api/v1/tools/reviews/{review_id}", tag = "tools", security(("bearer" = [])),
    params(("review_id" = String, Path)),
    responses((status = 200, body = Review), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_review(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsRead>,
    Path(id): Path<String>,
) -> AppResult<Json<Review>> {
    let (review, _) = state.services.tools().get::<Review>(auth.tenant()?, &id).await?;
    if !may_see(&review, &auth.principal) {
        return Err(AppError::NotFound(format!("review '{id}' does not exist")));
    }
    Ok(Json(review))
}

/// Change a review: its author changes the content (back to `pending`), moderators the status.
#[utoipa::path(put, path = "/api/v1/tools/reviews/{review_id}", tag = "tools", security(("bearer" = [])), request_body = ReviewInput,
    params(("review_id" = String, Path)),
    responses((status = 200, body = Review), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_review(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ReviewInput>,
) -> AppResult<Json<Review>> {
    let tenant = auth.tenant()?;
    let (before, version) = state.services.tools().get::<Review>(tenant, &id).await?;
    if !may_see(&before, &auth.principal) {
        return Err(AppError::NotFound(format!("review '{id}' does not exist")));
    }
    let author = auth.principal.user_id() == Some(before.author.as_str());
    let content = input.rating.is_some() || input.title.is_some() || input.body.is_some() || input.subject.is_some();
    if content && !author {
        return Err(AppError::Forbidden("only a review's author changes what it says".to_string()));
    }
    if input.status.is_some() && !moderates(&auth.principal) {
        return Err(AppError::Forbidden("only moderators (reviews.moderate) set a review's status".to_string()));
    }
    let mut after = before.clone();
    if let Some(v) = input.rating {
        after.rating = v;
    }
    if let Some(v) = input.title {
        after.title = v;
    }
    if let Some(v) = input.body {
        after.body = v;
    }
    if input.subject.is_some() {
        after.common.subject = input.subject;
    }
    if content {
        after.status = ReviewStatus::Pending;
    }
    if let Some(v) = input.status {
        after.status = v;
    }
    invalid(check_review(&after))?;
    Ok(Json(state.services.tools().replace(&auth.actor(), tenant, &before, version, after).await?))
}

/// Delete a review (its author or a moderator).
#[utoipa::path(delete, path = "/api/v1/tools/reviews/{review_id}", tag = "tools", security(("bearer" = [])),
    params(("review_id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_review(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let tenant = auth.tenant()?;
    let (before, version) = state.services.tools().get::<Review>(tenant, &id).await?;
    if !may_see(&before, &auth.principal) {
        return Err(AppError::NotFound(format!("review '{id}' does not exist")));
    }
    if !(moderates(&auth.principal) || auth.principal.user_id() == Some(before.author.as_str())) {
        return Err(AppError::Forbidden("only a review's author or a moderator deletes it".to_string()));
    }
    state.services.tools().delete(&auth.actor(), tenant, &before, version).await?;
    Ok(StatusCode::NO_CONTENT)
}

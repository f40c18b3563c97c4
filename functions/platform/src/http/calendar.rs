//! `/api/v1/tools/events`: calendar events, their occurrences in a range (recurrences
//! expanded) and iCalendar export.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use jiff::Timestamp;
use serde::Deserialize;

use super::caller::{need, Authorized};
use super::extract::{JsonBody, Params};
use super::problem::Problem;
use super::tools::tool_filter;
use super::{AppState, RouteTable};
use crate::app::error::{AppError, AppResult};
use crate::app::page::Listed;
use crate::app::tools::new_common;
use crate::domain::calendar::{
    normalize_time, to_ics, Attendee, CalendarEvent, Occurrence, MAX_OCCURRENCES, MAX_RANGE_DAYS,
};
use crate::domain::ids::TenantId;
use crate::domain::invalid::{FieldIssue, Invalid};
use crate::domain::tools::Subject;

pub fn routes<R: RouteTable>() -> R {
    R::empty().with(routes!(list_events, create_event)).with(routes!(export_events)).with(routes!(
        get_event,
        update_event,
        delete_event
    ))
}

/// Most events one export or range query reads.
const MAX_EVENTS: usize = 10_000;

/// A calendar event as written; on change, the fields given replace the current ones
/// (`recurrence: ""` removes the recurrence).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    pub title: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub all_day: Option<bool>,
    /// A local time in `time_zone` (`2026-03-02T09:00:00`), an RFC 3339 time, or a date when all-day.
    pub start: Option<String>,
    pub end: Option<String>,
    /// IANA, default `UTC`.
    pub time_zone: Option<String>,
    pub attendees: Option<Vec<Attendee>>,
    /// An RFC 5545 RRULE value, e.g. `FREQ=WEEKLY;BYDAY=MO;COUNT=10`.
    pub recurrence: Option<String>,
    pub subject: Option<Subject>,
}

/// Applies the input; times are normalized into the event's zone (422 naming the field).
fn apply(event: &mut CalendarEvent, input: EventInput) -> AppResult<()> {
    if let Some(v) = input.title {
        event.title = v;
    }
    if let Some(v) = input.description {
        event.description = v;
    }
    if let Some(v) = input.location {
        event.location = v;
    }
    if let Some(v) = input.all_day {
        event.all_day = v;
    }
    if let Some(v) = input.time_zone {
        event.time_zone = v;
    }
    if let Some(v) = input.attendees {
        event.attendees = v;
    }
    if let Some(v) = input.recurrence {
        event.recurrence = (!v.trim().is_empty()).then_some(v);
    }
    if input.subject.is_some() {
        event.common.subject = input.subject;
    }
    let Some(tz) = event.zone() else {
        return Err(Invalid::one("time_zone", "must be an IANA time zone, e.g. Europe/Helsinki").into());
    };
    let mut issues = Vec::new();
    for (field, given, slot) in [("start", input.start, &mut event.start), ("end", input.end, &mut event.end)] {
        if let Some(raw) = given {
            match normalize_time(&raw, event.all_day, &tz) {
                Some(normal) => *slot = normal,
                None if event.all_day => {
                    issues.push(FieldIssue::new(field, "must be a date (YYYY-MM-DD) for an all-day event"))
                }
                None => issues
                    .push(FieldIssue::new(field, "must be a local time (2026-03-02T09:00:00) or an RFC 3339 time")),
            }
        }
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(Invalid(issues).into())
    }
}

/// Every fault of the event, its attendees' users and records included.
async fn check(state: &AppState, tenant: &TenantId, event: &CalendarEvent) -> AppResult<()> {
    let issues = event.check();
    if !issues.is_empty() {
        return Err(Invalid(issues).into());
    }
    let tools = &state.services.tools();
    tools.check_subject(tenant, event.common.subject.as_ref()).await?;
    for (i, a) in event.attendees.iter().enumerate() {
        if let Some(user) = &a.user_id {
            tools.check_user(tenant, user, &format!("attendees[{i}].user_id")).await?;
        }
        if let Some(record) = &a.record {
            tools.check_subject(tenant, Some(record)).await.map_err(|_| {
                AppError::from(Invalid::one(format!("attendees[{i}].record"), "is no record of this tenant"))
            })?;
        }
    }
    Ok(())
}

/// A range bound: an RFC 3339 time or a date (its midnight, UTC).
fn bound(params: &Params, name: &str) -> AppResult<Option<Timestamp>> {
    let Some(raw) = params.0.get(name).filter(|v| !v.is_empty()) else { return Ok(None) };
    if let Ok(ts) = raw.parse::<Timestamp>() {
        return Ok(Some(ts));
    }
    raw.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| Some(z.timestamp()))
        .ok_or_else(|| AppError::BadRequest(Invalid::one(name, "must be an RFC 3339 time or a date (YYYY-MM-DD)")))
}

/// Calendar events, newest first; with `from` and `to` (at most 366 days apart), the
/// occurrences in that range instead, recurrences expanded, in time order.
#[utoipa::path(get, path = "/api/v1/tools/events", tag = "tools", security(("bearer" = [])),
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("system_id" = Option<String>, Query),
           ("entity" = Option<String>, Query), ("record_id" = Option<String>, Query), ("owner" = Option<String>, Query),
           ("since" = Option<String>, Query), ("until" = Option<String>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<Occurrence>, description = "Events (without a range) or occurrences (with from and to)"),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_events(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsRead>,
    params: Params,
) -> AppResult<axum::response::Response> {
    let tenant = auth.tenant()?;
    let filter = tool_filter(&params);
    let (from, to) = (bound(&params, "from")?, bound(&params, "to")?);
    let (from, to) = match (from, to) {
        (None, None) => {
            let listed =
                state.services.tools().list::<CalendarEvent>(tenant, &filter, &params.page()?, |_| true).await?;
            return Ok(Json(listed).into_response());
        }
        (Some(f), Some(t)) => (f, t),
        _ => return Err(AppError::BadRequest(Invalid::one("to", "from and to go together"))),
    };
    if to <= from || (to.as_second() - from.as_second()) > MAX_RANGE_DAYS * 86_400 {
        return Err(AppError::BadRequest(Invalid::one(
            "to",
            format!("must be after from, at most {MAX_RANGE_DAYS} days"),
        )));
    }
    filter.check().map_err(AppError::BadRequest)?;
    let events = state.services.tools().all::<CalendarEvent>(tenant, MAX_EVENTS, |e| filter.matches(&e.common)).await?;
    let mut found: Vec<(Timestamp, Occurrence)> = Vec::new();
    for event in events {
        for (start, end) in event.occurrences(from, to, MAX_OCCURRENCES) {
            found.push((
                start.timestamp(),
                Occurrence {
                    occurrence_start: start.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
                    occurrence_end: end.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
                    event: event.clone(),
                },
            ));
        }
        if found.len() > usize::from(MAX_OCCURRENCES) {
            return Err(Invalid::one(
                "to",
                format!("the range holds more than {MAX_OCCURRENCES} occurrences; narrow it"),
            )
            .into());
        }
    }
    found.sort_by_key(|(at, _)| *at);
    let items: Vec<Occurrence> = found.into_iter().map(|(_, o)| o).collect();
    Ok(Json(Listed { items, next_cursor: None }).into_response())
}

/// Schedule an event.
#[utoipa::path(post, path = "/api/v1/tools/events", tag = "tools", security(("bearer" = [])), request_body = EventInput,
    responses((status = 201, body = CalendarEvent), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_event(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    JsonBody(input): JsonBody<EventInput>,
) -> AppResult<impl IntoResponse> {
    let tenant = auth.tenant()?;
    let mut issues = Vec::new();
    for (field, missing) in
        [("title", input.title.is_none()), ("start", input.start.is_none()), ("end", input.end.is_none())]
    {
        if missing {
            issues.push(FieldIssue::new(field, "is required"));
        }
    }
    if !issues.is_empty() {
        return Err(Invalid(issues).into());
    }
    let mut event = CalendarEvent {
        common: new_common(auth.principal.user_id(), None),
        title: String::new(),
        description: String::new(),
        location: String::new(),
        all_day: false,
        start: String::new(),
        end: String::new(),
        time_zone: "UTC".to_string(),
        attendees: Vec::new(),
        recurrence: None,
    };
    apply(&mut event, input)?;
    check(&state, tenant, &event).await?;
    Ok((StatusCode::CREATED, Json(state.services.tools().create(&auth.actor(), tenant, event).await?)))
}

/// The calendar's export formats (declares the parameter; there is only one).
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
enum CalendarFormat {
    Ics,
}

/// Every event as an iCalendar (RFC 5545) file calendar apps import (`format=ics`).
#[utoipa::path(get, path = "/api/v1/tools/events/export", tag = "tools", security(("bearer" = [])),
    params(("format" = inline(Option<CalendarFormat>), Query, description = "ics (the default and only format)")),
    responses((status = 200, content_type = "text/calendar", body = String), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn export_events(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsRead>,
    params: Params,
) -> AppResult<impl IntoResponse> {
    if params.0.get("format").is_some_and(|f| f != "ics") {
        return Err(AppError::BadRequest(Invalid::one("format", "must be ics")));
    }
    let tenant = auth.tenant()?;
    let filter = tool_filter(&params);
    filter.check().map_err(AppError::BadRequest)?;
    let events = state.services.tools().all::<CalendarEvent>(tenant, MAX_EVENTS, |e| filter.matches(&e.common)).await?;
    let mut mails = std::collections::HashMap::new();
    let mut users: Vec<String> = Vec::new();
    for event in &events {
        for attendee in &event.attendees {
            if let Some(user) = &attendee.user_id {
                users.push(user.clone());
            }
        }
    }
    users.sort();
    users.dedup();
    for user in users {
        let found = state.services.users().get(tenant, &user).await.ok().map(|u| u.user.email);
        mails.insert(user, found);
    }
    let ics = to_ics(&events, &format!("{tenant}.business-platform"), |user| mails.get(user).cloned().flatten());
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"calendar.ics\""),
        ],
        ics,
    ))
}

/// A calendar event.
#[utoipa::path(get, path = "/api/v1/tools/events/{event_id}", tag = "tools", security(("bearer" = [])),
    params(("event_id" = String, Path)),
    responses((status = 200, body = CalendarEvent), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_event(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsRead>,
    Path(id): Path<String>,
) -> AppResult<Json<CalendarEvent>> {
    Ok(Json(state.services.tools().get::<CalendarEvent>(auth.tenant()?, &id).await?.0))
}

/// Change an event; the fields given replace the current ones.
#[utoipa::path(put, path = "/api/v1/tools/events/{event_id}", tag = "tools", security(("bearer" = [])), request_body = EventInput,
    params(("event_id" = String, Path)),
    responses((status = 200, body = CalendarEvent), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_event(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<EventInput>,
) -> AppResult<Json<CalendarEvent>> {
    let tenant = auth.tenant()?;
    let (before, version) = state.services.tools().get::<CalendarEvent>(tenant, &id).await?;
    let mut after = before.clone();
    apply(&mut after, input)?;
    check(&state, tenant, &after).await?;
    Ok(Json(state.services.tools().replace(&auth.actor(), tenant, &before, version, after).await?))
}

/// Delete an event.
#[utoipa::path(delete, path = "/api/v1/tools/events/{event_id}", tag = "tools", security(("bearer" = [])),
    params(("event_id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_event(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let tenant = auth.tenant()?;
    let (before, version) = state.services.tools().get::<CalendarEvent>(tenant, &id).await?;
    state.services.tools().delete(&auth.actor(), tenant, &before, version).await?;
    Ok(StatusCode::NO_CONTENT)
}

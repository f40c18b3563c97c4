//! The tools of the system service: notes, call logs, reviews (and tasks, see
//! `app::engine::Task`). Each item may link to a subject (a record of an installed
//! system); each is an automation source of the `tools` module.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::events::{derived_id, BusinessEvent, Causation};
use super::ids::SystemId;
use super::invalid::FieldIssue;

/// The automation module the tools' events come from.
pub const TOOLS_MODULE: &str = "tools";
/// Largest note body, in bytes of Markdown.
pub const MAX_NOTE_BODY: usize = 64 * 1024;
pub const MAX_TITLE_CHARS: usize = 300;
pub const MAX_TEXT_CHARS: usize = 10_000;

/// The record an item is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    #[schema(value_type = String)]
    pub system_id: SystemId,
    pub entity: String,
    pub record_id: String,
}

/// What every tool item has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Common {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    /// The user who made it (`None` when an automation did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Set when an automation made it: how deep in a chain of automations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub causation: Option<Causation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Only its owner.
    #[default]
    Private,
    /// Its owner and the members of its `team_id`.
    Team,
    /// Everyone in the tenant who may read tools.
    Tenant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Note {
    #[serde(flatten)]
    pub common: Common,
    pub title: String,
    /// Markdown, at most 64 KiB.
    pub body: String,
    pub pinned: bool,
    pub visibility: Visibility,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallDirection {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    Answered,
    NoAnswer,
    Busy,
    Voicemail,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Call {
    #[serde(flatten)]
    pub common: Common,
    pub direction: CallDirection,
    /// E.164: `+` and 2 to 15 digits, e.g. `+358401234567`.
    pub phone_number: String,
    /// RFC 3339.
    pub started_at: String,
    pub duration_seconds: u32,
    pub outcome: CallOutcome,
    pub summary: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    #[default]
    Pending,
    Published,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Review {
    #[serde(flatten)]
    pub common: Common,
    /// 1 to 5.
    pub rating: u8,
    pub title: String,
    pub body: String,
    /// The user who wrote it.
    pub author: String,
    pub status: ReviewStatus,
}

/// Largest attachment, in bytes.
pub const MAX_ATTACHMENT_BYTES: u64 = 25 * 1024 * 1024;
/// The content types attachments may have.
pub const ATTACHMENT_TYPES: [&str; 14] = [
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "text/plain",
    "text/csv",
    "text/markdown",
    "application/json",
    "application/zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentStatus {
    /// Waiting for its upload (and its check).
    Pending,
    /// Uploaded and checked: downloadable.
    Available,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attachment {
    #[serde(flatten)]
    pub common: Common,
    pub filename: String,
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    pub status: AttachmentStatus,
    /// Where the file is kept.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    #[schema(read_only)]
    pub file_key: String,
}

/// Faults of an attachment's name, type and size.
pub fn check_attachment(filename: &str, content_type: &str, size: u64) -> Vec<FieldIssue> {
    let mut issues = Vec::new();
    if filename.trim().is_empty()
        || filename.chars().count() > 255
        || filename.chars().any(|c| c.is_control() || c == '/' || c == '\\')
    {
        issues.push(FieldIssue::new("filename", "must be 1 to 255 characters, without slashes or control characters"));
    }
    if !ATTACHMENT_TYPES.contains(&content_type) {
        issues.push(FieldIssue::new("content_type", format!("must be one of {}", ATTACHMENT_TYPES.join(", "))));
    }
    if size == 0 || size > MAX_ATTACHMENT_BYTES {
        issues.push(FieldIssue::new("size", format!("must be 1 to {MAX_ATTACHMENT_BYTES} bytes")));
    }
    issues
}

/// A task's place in its workflow: todo -> in_progress -> done, or cancelled; done and
/// cancelled tasks may be reopened (back to todo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// (`open` is read as `todo`: the earlier name.)
    #[default]
    #[serde(alias = "open")]
    Todo,
    InProgress,
    Done,
    Cancelled,
}

impl TaskStatus {
    /// Whether the workflow allows going from `self` to `next`.
    pub fn may_become(self, next: TaskStatus) -> bool {
        use TaskStatus::*;
        self == next
            || matches!(
                (self, next),
                (Todo, InProgress | Done | Cancelled)
                    | (InProgress, Todo | Done | Cancelled)
                    | (Done | Cancelled, Todo)
            )
    }

    /// Done or cancelled: no longer due.
    pub fn is_closed(self) -> bool {
        matches!(self, TaskStatus::Done | TaskStatus::Cancelled)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskPriority {
    Low,
    #[default]
    Normal,
    High,
    Urgent,
}

impl TaskPriority {
    /// A rendered template's priority; anything else is `normal`.
    pub fn from_text(text: &str) -> TaskPriority {
        serde_json::from_value(Value::String(text.trim().to_ascii_lowercase())).unwrap_or_default()
    }
}

/// A due date: an RFC 3339 time, or a date (`YYYY-MM-DD`, due at its end in UTC). As
/// epoch seconds.
pub fn due_epoch(raw: &str) -> Option<i64> {
    if let Ok(at) = raw.parse::<jiff::Timestamp>() {
        return Some(at.as_second());
    }
    let date: jiff::civil::Date = raw.parse().ok()?;
    let end = date.at(23, 59, 59, 0).to_zoned(jiff::tz::TimeZone::UTC).ok()?;
    Some(end.timestamp().as_second())
}

/// Whether `number` is an E.164 telephone number.
pub fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else { return false };
    (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

/// Checks a required or optional text field's length.
pub fn check_text(field: &str, value: Option<&str>, required: bool, max: usize, issues: &mut Vec<FieldIssue>) {
    match value {
        None if required => issues.push(FieldIssue::new(field, "is required")),
        Some(v) if required && v.trim().is_empty() => issues.push(FieldIssue::new(field, "must not be empty")),
        Some(v) if v.chars().count() > max => {
            issues.push(FieldIssue::new(field, format!("must be at most {max} characters")))
        }
        _ => {}
    }
}

/// Whether `raw` is an RFC 3339 time.
pub fn is_rfc3339(raw: &str) -> bool {
    raw.parse::<jiff::Timestamp>().is_ok()
}

/// One trigger of the `tools` module.
pub struct ToolTrigger {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    /// The item kind whose changes fire it.
    pub kind: &'static str,
    pub fields: &'static [&'static str],
}

const COMMON_FIELDS: [&str; 6] = ["id", "subject", "owner", "created_at", "updated_at", "causation"];
const NOTE_FIELDS: &[&str] = &["title", "body", "pinned", "visibility", "team_id"];
const CALL_FIELDS: &[&str] = &["direction", "phone_number", "started_at", "duration_seconds", "outcome", "summary"];
const REVIEW_FIELDS: &[&str] = &["rating", "title", "body", "author", "status"];
pub const TASK_FIELDS: &[&str] = &[
    "task_id",
    "title",
    "description",
    "due_date",
    "assignee",
    "status",
    "priority",
    "rule_id",
    "subject",
    "created_by",
    "created_at",
    "updated_at",
];

/// Every trigger of the `tools` module.
pub const TOOL_TRIGGERS: [ToolTrigger; 6] = [
    ToolTrigger {
        id: "task_created",
        name: "Task created",
        description: "A task was created (by a person or an automation)",
        kind: "task",
        fields: TASK_FIELDS,
    },
    ToolTrigger {
        id: "task_completed",
        name: "Task completed",
        description: "A task's status became done",
        kind: "task",
        fields: TASK_FIELDS,
    },
    ToolTrigger {
        id: "task_overdue",
        name: "Task overdue",
        description: "A task's due date passed before it was done or cancelled",
        kind: "task",
        fields: TASK_FIELDS,
    },
    ToolTrigger {
        id: "call_logged",
        name: "Call logged",
        description: "A call was logged",
        kind: "call",
        fields: CALL_FIELDS,
    },
    ToolTrigger {
        id: "review_created",
        name: "Review created",
        description: "A review was written (with its rating)",
        kind: "review",
        fields: REVIEW_FIELDS,
    },
    ToolTrigger {
        id: "note_created",
        name: "Note created",
        description: "A note was written",
        kind: "note",
        fields: NOTE_FIELDS,
    },
];

/// The fields an event of a tools trigger carries.
pub fn trigger_fields(trigger: &ToolTrigger) -> Vec<String> {
    let common: &[&str] = if trigger.kind == "task" { &[] } else { &COMMON_FIELDS };
    common.iter().chain(trigger.fields.iter()).map(|f| f.to_string()).collect()
}

pub fn tool_trigger(id: &str) -> Option<&'static ToolTrigger> {
    TOOL_TRIGGERS.iter().find(|t| t.id == id)
}

/// The business events of one change of a tool item (`kind` as in its store key).
pub fn tool_events(
    tenant: &str,
    kind: &str,
    change_id: &str,
    old: Option<&Value>,
    new: Option<&Value>,
) -> Vec<BusinessEvent> {
    let Some(Value::Object(data)) = new else { return Vec::new() };
    let mut fired: Vec<(&str, Map<String, Value>)> = Vec::new();
    match (kind, old) {
        ("task", None) => fired.push(("task_created", Map::new())),
        ("task", Some(before)) => {
            let was = before.get("status").cloned().unwrap_or(Value::Null);
            let now = data.get("status").cloned().unwrap_or(Value::Null);
            if now == "done" && was != "done" {
                let mut changes = Map::new();
                changes.insert("status".to_string(), serde_json::json!({"old": was, "new": now}));
                fired.push(("task_completed", changes));
            }
        }
        ("call", None) => fired.push(("call_logged", Map::new())),
        ("review", None) => fired.push(("review_created", Map::new())),
        ("note", None) => fired.push(("note_created", Map::new())),
        _ => {}
    }
    let causation: Causation =
        data.get("causation").and_then(|c| serde_json::from_value(c.clone()).ok()).unwrap_or_default();
    let occurred_at = data.get("updated_at").and_then(Value::as_str).unwrap_or_default().to_string();
    fired
        .into_iter()
        .map(|(trigger, changes)| BusinessEvent {
            event_id: derived_id(&[tenant, change_id, trigger]),
            tenant_id: tenant.to_string(),
            module_type: TOOLS_MODULE.to_string(),
            trigger_id: trigger.to_string(),
            occurred_at: occurred_at.clone(),
            data: data.clone(),
            changes,
            causation: causation.clone(),
            native: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_task_workflow_allows_its_steps_only() {
        use TaskStatus::*;
        assert!(Todo.may_become(InProgress) && InProgress.may_become(Done) && Done.may_become(Todo));
        assert!(!Done.may_become(InProgress) && !Cancelled.may_become(Done));
        assert_eq!(serde_json::from_value::<TaskStatus>(json!("open")).unwrap(), Todo);
    }

    #[test]
    fn due_dates_are_times_or_whole_days() {
        assert_eq!(due_epoch("2026-01-01T00:00:00Z"), Some(1_767_225_600));
        assert_eq!(due_epoch("2026-01-01"), Some(1_767_225_600 + 86_399));
        assert_eq!(due_epoch("soon"), None);
    }

    #[test]
    fn e164_numbers_are_a_plus_and_up_to_15_digits() {
        for ok in ["+358401234567", "+12025550123", "+44"] {
            assert!(is_e164(ok), "{ok}");
        }
        for bad in ["358401234567", "+0123", "+1 202 555", "+1234567890123456", "+", "+1-202"] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn creating_items_fires_their_trigger_once_per_change() {
        let note = json!({"id": "n1", "title": "x", "updated_at": "2026-01-01T00:00:00Z"});
        let events = tool_events("acme", "note", "n1:1", None, Some(&note));
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].module_type.as_str(), events[0].trigger_id.as_str()), ("tools", "note_created"));
        assert_eq!(events[0].event_id, tool_events("acme", "note", "n1:1", None, Some(&note))[0].event_id);
        assert!(tool_events("acme", "note", "n1:2", Some(&note), Some(&note)).is_empty(), "edits fire nothing");
    }

    #[test]
    fn a_task_completes_when_its_status_becomes_done() {
        let open = json!({"task_id": "t", "status": "todo", "updated_at": "2026-01-01T00:00:00Z"});
        let done = json!({"task_id": "t", "status": "done", "updated_at": "2026-01-02T00:00:00Z"});
        let events = tool_events("acme", "task", "t:2", Some(&open), Some(&done));
        assert_eq!(events[0].trigger_id, "task_completed");
        assert_eq!(events[0].changes["status"], json!({"old": "todo", "new": "done"}));
        assert!(tool_events("acme", "task", "t:3", Some(&done), Some(&done)).is_empty());
    }
}

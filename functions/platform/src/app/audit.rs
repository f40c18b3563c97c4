//! The audit trail: one append-only entry per change, written in the same transaction as
//! the change itself, so a change is never without its entry (nor an entry without it).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{AppError, AppResult};
use super::page::{scan_filtered, Listed, PageRequest};
use crate::domain::ids::TenantId;
use crate::domain::invalid::Invalid;
use crate::domain::limits::{truncated, MAX_KEPT_VALUE_BYTES};
use crate::domain::time::now_rfc3339;
use crate::ports::store::{Condition, Item, Query, Store, Write};

/// Who is acting, as the audit trail records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `user:<id>`, `api_key:<id>`, `platform_admin` or `anonymous`.
    pub id: String,
    pub email: Option<String>,
    /// The platform's id of the request (never chosen by the client).
    pub request_id: String,
    /// The `X-Request-Id` the client sent, if any: kept apart, as the client's word.
    pub client_request_id: Option<String>,
}

impl Actor {
    pub fn system(request_id: &str) -> Self {
        Self { id: "system".to_string(), email: None, request_id: request_id.to_string(), client_request_id: None }
    }

    /// Someone not signed in, known by what they claim (e.g. `email:<address>`).
    pub fn anonymous(id: String, email: Option<String>, request: &RequestIds) -> Self {
        Self { id, email, request_id: request.platform.clone(), client_request_id: request.client.clone() }
    }

    pub fn with_client_request_id(mut self, client: Option<String>) -> Self {
        self.client_request_id = client;
        self
    }
}

/// A request's ids: the platform's own, and the one the client sent (if any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestIds {
    pub platform: String,
    pub client: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub audit_id: String,
    /// Absent for platform-level changes (the catalog).
    pub tenant_id: Option<String>,
    pub actor: String,
    pub actor_email: Option<String>,
    /// What happened, e.g. `config.write`, `system.install`, `auth.login`.
    pub action: String,
    /// What it happened to, e.g. `config:branding`, `system:crm`, `user:01H...`.
    pub target: String,
    /// `succeeded`, or `failed` for refused attempts worth recording (bad sign-ins).
    pub outcome: String,
    /// The platform's id of the request that made the change.
    pub request_id: String,
    /// The `X-Request-Id` the client sent, as the client's word (not the platform's id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
    pub at: String,
    #[schema(value_type = Option<Value>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Value>)]
    pub after: Option<Value>,
}

pub fn audit_pk(tenant: Option<&TenantId>) -> String {
    match tenant {
        Some(t) => format!("TENANT#{t}#AUDIT"),
        None => "PLATFORM#AUDIT".to_string(),
    }
}

/// What one change says about itself.
pub struct Change<'a> {
    pub action: &'a str,
    pub target: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl<'a> Change<'a> {
    pub fn new(action: &'a str, target: impl Into<String>) -> Self {
        Self { action, target: target.into(), before: None, after: None }
    }

    pub fn before(mut self, value: impl Serialize) -> Self {
        self.before = serde_json::to_value(value).ok();
        self
    }

    pub fn after(mut self, value: impl Serialize) -> Self {
        self.after = serde_json::to_value(value).ok();
        self
    }
}

/// The write that appends the entry for `change`; add it to the change's transaction.
pub fn record(actor: &Actor, tenant: Option<&TenantId>, change: Change<'_>) -> Write {
    record_outcome(actor, tenant, change, "succeeded")
}

pub fn record_outcome(actor: &Actor, tenant: Option<&TenantId>, change: Change<'_>, outcome: &str) -> Write {
    let entry = AuditEntry {
        audit_id: ulid::Ulid::generate().to_string(),
        tenant_id: tenant.map(|t| t.to_string()),
        actor: actor.id.clone(),
        actor_email: actor.email.clone(),
        action: change.action.to_string(),
        target: change.target,
        outcome: outcome.to_string(),
        request_id: actor.request_id.clone(),
        client_request_id: actor.client_request_id.clone(),
        at: now_rfc3339(),
        before: change.before.map(|v| truncated(v, MAX_KEPT_VALUE_BYTES)),
        after: change.after.map(|v| truncated(v, MAX_KEPT_VALUE_BYTES)),
    };
    Write::Put {
        item: Item::new(
            audit_pk(tenant),
            entry.audit_id.clone(),
            1,
            serde_json::to_value(&entry).expect("entries serialize"),
        ),
        condition: Condition::Absent,
    }
}

/// Which entries to list or export; every field is optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exact action, or a prefix ending in `*` (`config.*`).
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    /// RFC 3339 bounds, inclusive.
    pub since: Option<String>,
    pub until: Option<String>,
}

impl AuditFilter {
    pub fn check(&self) -> Result<(), Invalid> {
        for (field, value) in [("since", &self.since), ("until", &self.until)] {
            if let Some(v) = value {
                time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| Invalid::one(field, "must be an RFC 3339 time, e.g. 2026-01-31T00:00:00Z"))?;
            }
        }
        Ok(())
    }

    fn matches(&self, e: &AuditEntry) -> bool {
        let action_ok = match self.action.as_deref() {
            None => true,
            Some(a) if a.ends_with('*') => e.action.starts_with(a.trim_end_matches('*')),
            Some(a) => e.action == a,
        };
        action_ok
            && self.actor.as_ref().is_none_or(|a| &e.actor == a)
            && self.target.as_ref().is_none_or(|t| &e.target == t)
            && self.since.as_ref().is_none_or(|s| e.at.as_str() >= s.as_str())
            && self.until.as_ref().is_none_or(|u| e.at.as_str() <= u.as_str())
    }
}

#[derive(Clone)]
pub struct AuditService {
    store: Arc<dyn Store>,
}

/// Most entries one export returns.
pub const MAX_EXPORT: usize = 100_000;

impl AuditService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Newest first, filtered; the cursor resumes where the previous page stopped looking.
    pub async fn list(
        &self,
        tenant: &TenantId,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> AppResult<Listed<AuditEntry>> {
        self.list_in(Some(tenant), filter, page).await
    }

    /// The platform's own trail: catalog administration, tenants, platform settings.
    pub async fn list_platform(&self, filter: &AuditFilter, page: &PageRequest) -> AppResult<Listed<AuditEntry>> {
        self.list_in(None, filter, page).await
    }

    async fn list_in(
        &self,
        tenant: Option<&TenantId>,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> AppResult<Listed<AuditEntry>> {
        filter.check().map_err(AppError::BadRequest)?;
        let pk = audit_pk(tenant);
        let query = Query { descending: true, ..Query::new(&pk, "") };
        scan_filtered(self.store.as_ref(), query, page, |item| Ok(Some(decode(item)?).filter(|e| filter.matches(e))))
            .await
    }

    /// Every matching entry, oldest first (bounded by [`MAX_EXPORT`]).
    pub async fn export(&self, tenant: &TenantId, filter: &AuditFilter) -> AppResult<Vec<AuditEntry>> {
        filter.check().map_err(AppError::BadRequest)?;
        let pk = audit_pk(Some(tenant));
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let found = self.store.query(Query { limit: 500, after: after.as_deref(), ..Query::new(&pk, "") }).await?;
            for item in found.items {
                let entry = decode(item)?;
                if filter.matches(&entry) {
                    out.push(entry);
                }
            }
            match found.next {
                Some(next) if out.len() < MAX_EXPORT => after = Some(next),
                _ => return Ok(out),
            }
        }
    }
}

fn decode(item: Item) -> AppResult<AuditEntry> {
    super::stored::decode(item)
}

/// CSV with one row per entry; `before`/`after` as JSON text.
pub fn to_csv(entries: &[AuditEntry]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record([
            "audit_id",
            "at",
            "tenant_id",
            "actor",
            "actor_email",
            "action",
            "target",
            "outcome",
            "request_id",
            "client_request_id",
            "before",
            "after",
        ])
        .expect("writing to memory");
    for e in entries {
        let json = |v: &Option<Value>| v.as_ref().map(Value::to_string).unwrap_or_default();
        let cells = [
            e.audit_id.clone(),
            e.at.clone(),
            e.tenant_id.clone().unwrap_or_default(),
            e.actor.clone(),
            e.actor_email.clone().unwrap_or_default(),
            e.action.clone(),
            e.target.clone(),
            e.outcome.clone(),
            e.request_id.clone(),
            e.client_request_id.clone().unwrap_or_default(),
            json(&e.before),
            json(&e.after),
        ];
        writer.write_record(cells.iter().map(|c| spreadsheet_safe(c).into_owned())).expect("writing to memory");
    }
    String::from_utf8(writer.into_inner().expect("flushing to memory")).expect("CSV of UTF-8 fields is UTF-8")
}

/// A cell that a spreadsheet will show as text, never run as a formula (OWASP CSV
/// injection): a cell starting with `=`, `+`, `-`, `@`, tab or carriage return gets a
/// leading `'`. The CSV writer then quotes it as needed.
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => std::borrow::Cow::Owned(format!("'{cell}")),
        _ => std::borrow::Cow::Borrowed(cell),
    }
}

/// JSON Lines: one entry per line.
pub fn to_json_lines(entries: &[AuditEntry]) -> String {
    entries.iter().map(|e| serde_json::to_string(e).expect("entries serialize") + "\n").collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_large_values_as_a_marker() {
        let big = serde_json::json!({"notes": "x".repeat(MAX_KEPT_VALUE_BYTES)});
        let small = serde_json::json!({"notes": "short"});
        let write = record(&Actor::system("r"), None, Change::new("x.update", "x:1").before(&big).after(&small));
        let Write::Put { item, .. } = write else { panic!("an entry is a put") };
        assert_eq!(item.data["before"]["truncated"], true);
        assert_eq!(item.data["after"], small);
        assert!(crate::domain::limits::json_bytes(&item.data) < 2 * MAX_KEPT_VALUE_BYTES);
    }

    fn entry(actor_email: &str, client_request_id: &str) -> AuditEntry {
        AuditEntry {
            audit_id: "01".into(),
            tenant_id: Some("acme".into()),
            actor: "email:x".into(),
            actor_email: Some(actor_email.into()),
            action: "auth.login".into(),
            target: "email:x".into(),
            outcome: "failed".into(),
            request_id: "platform-id".into(),
            client_request_id: Some(client_request_id.into()),
            at: "2026-01-01T00:00:00Z".into(),
            before: None,
            after: None,
        }
    }

    #[test]
    fn csv_cells_that_a_spreadsheet_would_run_are_escaped() {
        for planted in ["=HYPERLINK(\"http://evil\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            let csv = to_csv(&[entry(planted, planted)]);
            let mut reader = csv::Reader::from_reader(csv.as_bytes());
            let row = reader.records().next().unwrap().unwrap();
            assert_eq!(&row[4], format!("'{planted}"), "actor_email");
            assert_eq!(&row[9], format!("'{planted}"), "client_request_id");
        }
    }

    #[test]
    fn ordinary_cells_are_left_alone() {
        assert_eq!(spreadsheet_safe("ann@example.com"), "ann@example.com");
        assert_eq!(spreadsheet_safe(""), "");
    }
}

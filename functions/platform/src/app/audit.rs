//! The audit trail: one append-only entry per change, written in the same transaction as
//! the change itself, so a change is never without its entry (nor an entry without it).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{AppError, AppResult};
use super::page::{scan_filtered, Listed, PageRequest};
use crate::domain::ids::TenantId;
use crate::domain::invalid::Invalid;
use crate::domain::time::now_rfc3339;
use crate::ports::store::{Condition, Item, Query, Store, Write};

/// Who is acting, as the audit trail records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `user:<id>`, `api_key:<id>`, `platform_admin` or `anonymous`.
    pub id: String,
    pub email: Option<String>,
    pub request_id: String,
}

impl Actor {
    pub fn system(request_id: &str) -> Self {
        Self { id: "system".to_string(), email: None, request_id: request_id.to_string() }
    }
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
    pub request_id: String,
    pub at: String,
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

fn audit_pk(tenant: Option<&TenantId>) -> String {
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
        at: now_rfc3339(),
        before: change.before,
        after: change.after,
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
        filter.check().map_err(AppError::BadRequest)?;
        let pk = audit_pk(Some(tenant));
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
    serde_json::from_value(item.data).map_err(|_| AppError::Unavailable("stored data is unreadable".to_string()))
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
            "before",
            "after",
        ])
        .expect("writing to memory");
    for e in entries {
        let json = |v: &Option<Value>| v.as_ref().map(Value::to_string).unwrap_or_default();
        writer
            .write_record([
                e.audit_id.as_str(),
                &e.at,
                e.tenant_id.as_deref().unwrap_or(""),
                &e.actor,
                e.actor_email.as_deref().unwrap_or(""),
                &e.action,
                &e.target,
                &e.outcome,
                &e.request_id,
                &json(&e.before),
                &json(&e.after),
            ])
            .expect("writing to memory");
    }
    String::from_utf8(writer.into_inner().expect("flushing to memory")).expect("CSV of UTF-8 fields is UTF-8")
}

/// JSON Lines: one entry per line.
pub fn to_json_lines(entries: &[AuditEntry]) -> String {
    entries.iter().map(|e| serde_json::to_string(e).expect("entries serialize") + "\n").collect()
}

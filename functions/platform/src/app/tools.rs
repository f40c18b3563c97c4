//! Tool items (notes, call logs, reviews): one store shape and one set of use cases for
//! every kind. Each kind says what it is ([`ToolBody`]); this module writes it with its
//! audit entry in one transaction, checks its subject, and lists with the shared filters
//! (subject, owner, creation time) plus the kind's own.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::audit::{self, Actor, Change};
use super::error::{AppError, AppResult};
use super::keys;
use super::page::{scan_filtered, Listed, PageRequest};
use super::stored::decode;
use crate::domain::ids::TenantId;
use crate::domain::invalid::Invalid;
use crate::domain::tools::{is_rfc3339, Common, Subject};
use crate::ports::store::{Condition, Query, Store, Write};

/// A kind of tool item.
pub trait ToolBody: Serialize + DeserializeOwned + Clone + Send + Sync {
    /// `note`, `call`, `review`: in store keys, audit actions and events.
    const KIND: &'static str;
    fn common(&self) -> &Common;
    fn common_mut(&mut self) -> &mut Common;
}

impl ToolBody for crate::domain::tools::Note {
    const KIND: &'static str = "note";
    fn common(&self) -> &Common {
        &self.common
    }
    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
}

impl ToolBody for crate::domain::tools::Call {
    const KIND: &'static str = "call";
    fn common(&self) -> &Common {
        &self.common
    }
    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
}

impl ToolBody for crate::domain::tools::Review {
    const KIND: &'static str = "review";
    fn common(&self) -> &Common {
        &self.common
    }
    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
}

impl ToolBody for crate::domain::calendar::CalendarEvent {
    const KIND: &'static str = "event";
    fn common(&self) -> &Common {
        &self.common
    }
    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
}

impl ToolBody for crate::domain::tools::Attachment {
    const KIND: &'static str = "attachment";
    fn common(&self) -> &Common {
        &self.common
    }
    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
}

/// The filters every tool list takes.
#[derive(Debug, Clone, Default)]
pub struct ToolFilter {
    pub system_id: Option<String>,
    pub entity: Option<String>,
    pub record_id: Option<String>,
    pub owner: Option<String>,
    /// RFC 3339 bounds on `created_at`, inclusive.
    pub since: Option<String>,
    pub until: Option<String>,
}

impl ToolFilter {
    pub fn check(&self) -> Result<(), Invalid> {
        for (field, value) in [("since", &self.since), ("until", &self.until)] {
            if value.as_deref().is_some_and(|v| !is_rfc3339(v)) {
                return Err(Invalid::one(field, "must be an RFC 3339 time, e.g. 2026-01-31T00:00:00Z"));
            }
        }
        Ok(())
    }

    pub fn matches(&self, common: &Common) -> bool {
        let subject = common.subject.as_ref();
        let about = |want: &Option<String>, got: Option<&str>| want.as_deref().is_none_or(|w| got == Some(w));
        about(&self.system_id, subject.map(|s| s.system_id.as_str()))
            && about(&self.entity, subject.map(|s| s.entity.as_str()))
            && about(&self.record_id, subject.map(|s| s.record_id.as_str()))
            && about(&self.owner, common.owner.as_deref())
            && self.since.as_deref().is_none_or(|s| common.created_at.as_str() >= s)
            && self.until.as_deref().is_none_or(|u| common.created_at.as_str() <= u)
    }
}

#[derive(Clone)]
pub struct ToolService {
    store: Arc<dyn Store>,
}

fn not_found(kind: &str, id: &str) -> AppError {
    AppError::NotFound(format!("{kind} '{id}' does not exist"))
}

impl ToolService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// A subject must be a record of this tenant (422 naming `subject`).
    pub async fn check_subject(&self, tenant: &TenantId, subject: Option<&Subject>) -> AppResult<()> {
        let Some(s) = subject else { return Ok(()) };
        let sk = keys::record_sk(&s.system_id, &s.entity, &s.record_id);
        if self.store.get(&keys::tenant_pk(tenant), &sk).await?.is_none() {
            return Err(Invalid::one(
                "subject",
                format!("no record '{}' of {}/{} in this tenant", s.record_id, s.system_id, s.entity),
            )
            .into());
        }
        Ok(())
    }

    /// A user of this tenant (422 naming `field` otherwise).
    pub async fn check_user(&self, tenant: &TenantId, user_id: &str, field: &str) -> AppResult<()> {
        match self.store.get(&keys::tenant_pk(tenant), &keys::user_sk(user_id)).await? {
            Some(_) => Ok(()),
            None => Err(Invalid::one(field, format!("'{user_id}' is not a user of this tenant")).into()),
        }
    }

    /// Stores a new item and its audit entry.
    pub async fn create<T: ToolBody>(&self, actor: &Actor, tenant: &TenantId, item: T) -> AppResult<T> {
        self.check_subject(tenant, item.common().subject.as_ref()).await?;
        let id = item.common().id.clone();
        let action = format!("{}.create", T::KIND);
        let writes = vec![
            Write::create(keys::tenant_pk(tenant), keys::tool_sk(T::KIND, &id), &item),
            audit::record(actor, Some(tenant), Change::new(&action, format!("{}:{id}", T::KIND)).after(&item)),
        ];
        self.store.transact(writes).await?;
        Ok(item)
    }

    /// The item and its version.
    pub async fn get<T: ToolBody>(&self, tenant: &TenantId, id: &str) -> AppResult<(T, u64)> {
        let item = self
            .store
            .get(&keys::tenant_pk(tenant), &keys::tool_sk(T::KIND, id))
            .await?
            .ok_or_else(|| not_found(T::KIND, id))?;
        let version = item.version;
        Ok((decode(item)?, version))
    }

    /// Newest first, filtered; `keep` adds the kind's own filters (and visibility).
    pub async fn list<T: ToolBody>(
        &self,
        tenant: &TenantId,
        filter: &ToolFilter,
        page: &PageRequest,
        keep: impl Fn(&T) -> bool,
    ) -> AppResult<Listed<T>> {
        filter.check().map_err(AppError::BadRequest)?;
        let pk = keys::tenant_pk(tenant);
        let prefix = keys::tool_prefix(T::KIND);
        let query = Query { descending: true, ..Query::new(&pk, &prefix) };
        scan_filtered(self.store.as_ref(), query, page, |item| {
            let value: T = decode(item)?;
            Ok((filter.matches(value.common()) && keep(&value)).then_some(value))
        })
        .await
    }

    /// Every item of the kind that `keep` accepts, up to `max` (for summaries).
    pub async fn all<T: ToolBody>(
        &self,
        tenant: &TenantId,
        max: usize,
        keep: impl Fn(&T) -> bool,
    ) -> AppResult<Vec<T>> {
        let pk = keys::tenant_pk(tenant);
        let prefix = keys::tool_prefix(T::KIND);
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let found =
                self.store.query(Query { limit: 500, after: after.as_deref(), ..Query::new(&pk, &prefix) }).await?;
            for item in found.items {
                let value: T = decode(item)?;
                if keep(&value) {
                    out.push(value);
                }
            }
            match found.next {
                Some(next) if out.len() < max => after = Some(next),
                _ => return Ok(out),
            }
        }
    }

    /// Replaces the item read at `version` (409 if it changed since) and audits the change.
    pub async fn replace<T: ToolBody>(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        before: &T,
        version: u64,
        mut after: T,
    ) -> AppResult<T> {
        self.check_subject(tenant, after.common().subject.as_ref()).await?;
        after.common_mut().updated_at = crate::domain::time::now_rfc3339();
        let id = before.common().id.clone();
        let action = format!("{}.update", T::KIND);
        let writes = vec![
            Write::replace(keys::tenant_pk(tenant), keys::tool_sk(T::KIND, &id), version, &after),
            audit::record(
                actor,
                Some(tenant),
                Change::new(&action, format!("{}:{id}", T::KIND)).before(before).after(&after),
            ),
        ];
        self.store.transact(writes).await.map_err(|e| match e {
            crate::ports::store::StoreError::ConditionFailed { .. } => {
                AppError::conflict(format!("{} '{id}' was changed concurrently; read it again", T::KIND))
            }
            other => other.into(),
        })?;
        Ok(after)
    }

    pub async fn delete<T: ToolBody>(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        before: &T,
        version: u64,
    ) -> AppResult<()> {
        let id = before.common().id.clone();
        let action = format!("{}.delete", T::KIND);
        let writes = vec![
            Write::Delete {
                pk: keys::tenant_pk(tenant),
                sk: keys::tool_sk(T::KIND, &id),
                condition: Condition::Version(version),
            },
            audit::record(actor, Some(tenant), Change::new(&action, format!("{}:{id}", T::KIND)).before(before)),
        ];
        self.store.transact(writes).await.map_err(|e| match e {
            crate::ports::store::StoreError::ConditionFailed { .. } => {
                AppError::conflict(format!("{} '{id}' was changed concurrently; read it again", T::KIND))
            }
            other => other.into(),
        })?;
        Ok(())
    }
}

/// A new item's common part: a fresh id, the caller as owner, now.
pub fn new_common(owner: Option<&str>, subject: Option<Subject>) -> Common {
    let now = crate::domain::time::now_rfc3339();
    Common {
        id: ulid::Ulid::generate().to_string().to_lowercase(),
        subject,
        owner: owner.map(str::to_string),
        created_at: now.clone(),
        updated_at: now,
        causation: None,
    }
}

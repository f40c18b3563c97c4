//! Records of the tenant's installed systems, validated against the entity's JSON Schema
//! in the installed version's manifest. Every write goes through the store, whose change
//! feed turns it into business events.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::audit::{self, Actor, Change};
use super::error::{AppError, AppResult};
use super::keys;
use super::manifests::Manifests;
use super::page::{get_typed, scan_filtered, Listed, PageRequest};
use super::stored::decode_at;
use crate::domain::events::Causation;
use crate::domain::ids::{SystemId, TenantId};
use crate::domain::invalid::{FieldIssue, Invalid};
use crate::domain::manifest::{EntityDef, Manifest, Schema};
use crate::domain::records::{merge_patch, relations_of, OnDelete, Record, Relation};
use crate::domain::time::now_rfc3339;
use crate::ports::store::{Condition, Item, Query, Store, StoreError, Write};

mod purge;
pub use purge::Purge;

/// Which record: its system, entity and id.
#[derive(Debug, Clone, Copy)]
pub struct RecordKey<'a> {
    pub system: &'a SystemId,
    pub entity: &'a str,
    pub id: &'a str,
}

#[derive(Clone)]
pub struct RecordService {
    store: Arc<dyn Store>,
    manifests: Manifests,
}

impl RecordService {
    pub fn new(store: Arc<dyn Store>, manifests: Manifests) -> Self {
        Self { store, manifests }
    }

    /// The manifest of the installed version of `system` (404 when not installed).
    pub async fn installed_manifest(&self, tenant: &TenantId, system: &SystemId) -> AppResult<Arc<Manifest>> {
        self.manifests
            .installed(tenant, system)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("system '{system}' is not installed")))
    }

    /// The entity's definition in the installed version (404 for an unknown entity).
    pub async fn entity(&self, tenant: &TenantId, system: &SystemId, entity: &str) -> AppResult<EntityDef> {
        let manifest = self.installed_manifest(tenant, system).await?;
        manifest
            .entities
            .get(entity)
            .cloned()
            .ok_or_else(|| AppError::NotFound(format!("system '{system}' has no entity '{entity}'")))
    }

    async fn load(&self, tenant: &TenantId, system: &SystemId, entity: &str, id: &str) -> AppResult<(Record, u64)> {
        get_typed(self.store.as_ref(), &keys::tenant_pk(tenant), &keys::record_sk(system, entity, id), || {
            AppError::NotFound(format!("{system}/{entity} record '{id}' does not exist"))
        })
        .await
    }

    pub async fn get(&self, tenant: &TenantId, system: &SystemId, entity: &str, id: &str) -> AppResult<(Record, u64)> {
        self.entity(tenant, system, entity).await?;
        self.load(tenant, system, entity, id).await
    }

    /// Schema and relations: every referenced record must exist in this tenant.
    async fn check(&self, tenant: &TenantId, def: &EntityDef, data: &Map<String, Value>) -> AppResult<()> {
        crate::domain::limits::check_size("data", data, crate::domain::limits::MAX_RECORD_BYTES)?;
        Schema::compile(&def.schema, "schema")?.check(&Value::Object(data.clone()))?;
        let mut issues = Vec::new();
        for crate::domain::records::Relation { field, system, entity, .. } in relations_of(&def.schema) {
            let Some(target) = data.get(&field).and_then(Value::as_str) else { continue };
            let Ok(system_id) = SystemId::parse(&system) else { continue };
            let exists = self
                .store
                .get(&keys::tenant_pk(tenant), &keys::record_sk(&system_id, &entity, target))
                .await?
                .is_some();
            if !exists {
                issues.push(FieldIssue::new(
                    format!("/{field}"),
                    format!("no {system}/{entity} record '{target}' exists"),
                ));
            }
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(Invalid(issues).into())
        }
    }

    pub async fn create(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        system: &SystemId,
        entity: &str,
        data: Map<String, Value>,
    ) -> AppResult<Record> {
        let def = self.entity(tenant, system, entity).await?;
        self.check(tenant, &def, &data).await?;
        let now = now_rfc3339();
        let record = Record {
            record_id: ulid::Ulid::generate().to_string(),
            system_id: system.to_string(),
            entity: entity.to_string(),
            data,
            created_at: now.clone(),
            updated_at: now,
            causation: None,
        };
        let target = format!("record:{system}/{entity}/{}", record.record_id);
        let writes = vec![
            Write::Put {
                item: Item::new(
                    keys::tenant_pk(tenant),
                    keys::record_sk(system, entity, &record.record_id),
                    1,
                    to_value(&record),
                ),
                condition: Condition::Absent,
            },
            audit::record(actor, Some(tenant), Change::new("record.create", target).after(&record.data)),
        ];
        self.store.transact(writes).await?;
        Ok(record)
    }

    /// The writes of a merge patch (validated), for callers that add their own writes.
    pub async fn patch_writes(
        &self,
        tenant: &TenantId,
        RecordKey { system, entity, id }: RecordKey<'_>,
        patch: &Map<String, Value>,
        causation: Option<Causation>,
        expected: Option<u64>,
    ) -> AppResult<(Record, Record, u64, Write)> {
        let def = self.entity(tenant, system, entity).await?;
        let (before, version) = self.load(tenant, system, entity, id).await?;
        if expected.is_some_and(|e| e != version) {
            return Err(AppError::PreconditionFailed(format!("record '{id}' is at version {version}")));
        }
        let mut after = before.clone();
        merge_patch(&mut after.data, patch);
        self.check(tenant, &def, &after.data).await?;
        after.updated_at = now_rfc3339();
        after.causation = causation;
        let write = Write::Put {
            item: Item::new(
                keys::tenant_pk(tenant),
                keys::record_sk(system, entity, id),
                version + 1,
                to_value(&after),
            ),
            condition: Condition::Version(version),
        };
        Ok((before, after, version + 1, write))
    }

    pub async fn patch(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        key: RecordKey<'_>,
        patch: Map<String, Value>,
        expected: Option<u64>,
    ) -> AppResult<(Record, u64)> {
        let RecordKey { system, entity, id } = key;
        let (before, after, version, write) = self.patch_writes(tenant, key, &patch, None, expected).await?;
        let target = format!("record:{system}/{entity}/{id}");
        let writes = vec![
            write,
            audit::record(
                actor,
                Some(tenant),
                Change::new("record.update", target).before(&before.data).after(&after.data),
            ),
        ];
        match self.store.transact(writes).await {
            Ok(()) => Ok((after, version)),
            Err(StoreError::ConditionFailed { .. }) => {
                Err(AppError::PreconditionFailed(format!("record '{id}' was changed concurrently")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Records of an entity, oldest first; `filters` are field = value (text) equalities.
    pub async fn list(
        &self,
        tenant: &TenantId,
        system: &SystemId,
        entity: &str,
        filters: &[(String, String)],
        page: &PageRequest,
    ) -> AppResult<Listed<Record>> {
        let def = self.entity(tenant, system, entity).await?;
        let known: Vec<String> = def
            .schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let unknown: Vec<FieldIssue> = filters
            .iter()
            .filter(|(f, _)| !known.contains(f))
            .map(|(f, _)| FieldIssue::new(f.clone(), format!("'{f}' is not a field of {entity}")))
            .collect();
        if !unknown.is_empty() {
            return Err(AppError::BadRequest(Invalid(unknown)));
        }
        let pk = keys::tenant_pk(tenant);
        let prefix = keys::records_prefix(system, entity);
        let matches = |r: &Record| {
            filters.iter().all(|(field, wanted)| match r.data.get(field) {
                Some(Value::String(s)) => s == wanted,
                Some(other) => &other.to_string() == wanted,
                None => false,
            })
        };
        let query = Query::new(&pk, &prefix);
        scan_filtered(self.store.as_ref(), query, page, |item| {
            let record: Record = decode_at(&item.pk, &item.sk, item.data)?;
            Ok(Some(record).filter(|r| matches(r)))
        })
        .await
    }
}

fn to_value(record: &Record) -> Value {
    serde_json::to_value(record).expect("records serialize")
}

/// How deep a chain of cascading deletes may go.
const MAX_CASCADE_DEPTH: usize = 8;
/// Writes per transaction when a delete changes many records (each change and its audit entry).
const CHUNK: usize = 45;

/// A record that refers to one being deleted, and what its relation says to do.
#[derive(Debug, Clone)]
struct Referrer {
    system: SystemId,
    entity: String,
    record: Record,
    version: u64,
    field: String,
    on_delete: OnDelete,
}

/// 409: records held by `restrict` relations, up to 20 of them named in `referrers`.
fn refused_by(restricted: &[&Referrer], what: &str) -> AppError {
    let names: Vec<Value> = restricted
        .iter()
        .take(20)
        .map(|r| serde_json::json!({"system_id": r.system, "entity": r.entity, "record_id": r.record.record_id, "field": r.field}))
        .collect();
    AppError::conflict_with(
        format!("{} record(s) {what}; delete or change them first", restricted.len()),
        "referrers",
        Value::Array(names),
    )
}

/// A write that lost a race with another: 409, retry.
fn concurrent(e: StoreError) -> AppError {
    match e {
        StoreError::ConditionFailed { .. } | StoreError::Conflict => {
            AppError::conflict("a record it touches was changed concurrently; retry".to_string())
        }
        other => other.into(),
    }
}

/// Everything one delete does: records to delete (the target last), fields to empty, tool
/// items to unlink.
#[derive(Default)]
struct DeletePlan {
    deletes: Vec<(SystemId, String, Record, u64)>,
    set_null: Vec<Referrer>,
}

impl RecordService {
    /// The records of the tenant's installed systems whose relations refer to the record.
    async fn referrers(
        &self,
        tenant: &TenantId,
        system: &SystemId,
        entity: &str,
        id: &str,
    ) -> AppResult<Vec<Referrer>> {
        let wanted = |r: &Relation| r.system == system.as_str() && r.entity == entity;
        self.referrers_by(tenant, |_| false, wanted, |value| value == id).await
    }

    /// The records of the tenant's installed systems (but those `skip` names) whose field
    /// of a relation `wanted` keeps holds a value `points` accepts: one query per entity
    /// that has such a relation.
    async fn referrers_by(
        &self,
        tenant: &TenantId,
        skip: impl Fn(&SystemId) -> bool,
        wanted: impl Fn(&Relation) -> bool,
        points: impl Fn(&str) -> bool,
    ) -> AppResult<Vec<Referrer>> {
        let pk = keys::tenant_pk(tenant);
        let mut found = Vec::new();
        for item in self.store.query_all(&pk, keys::INSTALL_PREFIX).await? {
            let (install, digest) = Manifests::decode(item)?;
            if skip(&install.system_id) {
                continue;
            }
            let manifest = self.manifests.manifest(&install, digest.as_deref()).await?;
            for (name, def) in &manifest.entities {
                let relations: Vec<Relation> = relations_of(&def.schema).into_iter().filter(|r| wanted(r)).collect();
                if relations.is_empty() {
                    continue;
                }
                for candidate in self.store.query_all(&pk, &keys::records_prefix(&install.system_id, name)).await? {
                    let version = candidate.version;
                    let record: Record = decode_at(&candidate.pk, &candidate.sk, candidate.data)?;
                    for relation in &relations {
                        if record.data.get(&relation.field).and_then(Value::as_str).is_some_and(&points) {
                            found.push(Referrer {
                                system: install.system_id.clone(),
                                entity: name.to_string(),
                                record: record.clone(),
                                version,
                                field: relation.field.clone(),
                                on_delete: relation.on_delete,
                            });
                        }
                    }
                }
            }
        }
        Ok(found)
    }

    /// Follows cascades from the target; refuses (409, naming them) when any record that
    /// stays refers to one that goes with a `restrict` relation.
    async fn plan_delete(&self, tenant: &TenantId, key: RecordKey<'_>) -> AppResult<DeletePlan> {
        let (record, version) = self.get(tenant, key.system, key.entity, key.id).await?;
        let mut plan = DeletePlan::default();
        let mut queue = vec![(key.system.clone(), key.entity.to_string(), record, version, 0usize)];
        let mut restricted = Vec::new();
        let mut seen = std::collections::HashSet::new();
        while let Some((system, entity, record, version, depth)) = queue.pop() {
            if !seen.insert((system.to_string(), entity.clone(), record.record_id.clone())) {
                continue;
            }
            if depth > MAX_CASCADE_DEPTH {
                return Err(AppError::conflict(format!(
                    "deleting it would cascade more than {MAX_CASCADE_DEPTH} levels deep"
                )));
            }
            for referrer in self.referrers(tenant, &system, &entity, &record.record_id).await? {
                match referrer.on_delete {
                    OnDelete::Restrict => restricted.push(referrer),
                    OnDelete::SetNull => plan.set_null.push(referrer),
                    OnDelete::Cascade => queue.push((
                        referrer.system.clone(),
                        referrer.entity.clone(),
                        referrer.record.clone(),
                        referrer.version,
                        depth + 1,
                    )),
                }
            }
            plan.deletes.push((system, entity, record, version));
        }
        let going: std::collections::HashSet<(String, String, String)> =
            plan.deletes.iter().map(|(s, e, r, _)| (s.to_string(), e.clone(), r.record_id.clone())).collect();
        let is_going =
            |r: &Referrer| going.contains(&(r.system.to_string(), r.entity.clone(), r.record.record_id.clone()));
        restricted.retain(|r| !is_going(r));
        if !restricted.is_empty() {
            let restricted: Vec<&Referrer> = restricted.iter().collect();
            return Err(refused_by(&restricted, "refer to it"));
        }
        plan.set_null.retain(|r| !is_going(r));
        // The target was pushed first: delete it last, so an interrupted delete resumes.
        plan.deletes.rotate_left(1);
        Ok(plan)
    }

    /// Deletes a record and applies its referrers' delete rules: restrict (409 naming
    /// them), cascade, set null; tool items linked to a deleted record are unlinked.
    /// Beyond one transaction the changes go in chunks, the target last: a delete that is
    /// interrupted resumes when it is asked again.
    pub async fn delete(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        system: &SystemId,
        entity: &str,
        id: &str,
    ) -> AppResult<()> {
        let plan = self.plan_delete(tenant, RecordKey { system, entity, id }).await?;
        let pk = keys::tenant_pk(tenant);
        self.null_fields(actor, tenant, &plan.set_null).await?;
        let gone: Vec<(SystemId, String, String)> =
            plan.deletes.iter().map(|(s, e, r, _)| (s.clone(), e.clone(), r.record_id.clone())).collect();
        self.unlink_tools(actor, tenant, &gone).await?;
        let mut writes = Vec::new();
        for (system, entity, record, version) in &plan.deletes {
            writes.push(Write::Delete {
                pk: pk.clone(),
                sk: keys::record_sk(system, entity, &record.record_id),
                condition: Condition::Version(*version),
            });
            let target = format!("record:{system}/{entity}/{}", record.record_id);
            writes.push(audit::record(actor, Some(tenant), Change::new("record.delete", target).before(&record.data)));
            if writes.len() >= CHUNK * 2 {
                self.store.transact(std::mem::take(&mut writes)).await.map_err(concurrent)?;
            }
        }
        if !writes.is_empty() {
            self.store.transact(writes).await.map_err(concurrent)?;
        }
        Ok(())
    }

    /// Empties the referring fields of `set_null` relations, in chunks, each audited.
    async fn null_fields(&self, actor: &Actor, tenant: &TenantId, referrers: &[Referrer]) -> AppResult<()> {
        let pk = keys::tenant_pk(tenant);
        for chunk in referrers.chunks(CHUNK) {
            let mut writes = Vec::new();
            for r in chunk {
                let mut after = r.record.clone();
                after.data.remove(&r.field);
                after.updated_at = now_rfc3339();
                let target = format!("record:{}/{}/{}", r.system, r.entity, r.record.record_id);
                writes.push(Write::Put {
                    item: Item::new(
                        pk.clone(),
                        keys::record_sk(&r.system, &r.entity, &r.record.record_id),
                        r.version + 1,
                        to_value(&after),
                    ),
                    condition: Condition::Version(r.version),
                });
                writes.push(audit::record(
                    actor,
                    Some(tenant),
                    Change::new("record.update", target).before(&r.record.data).after(&after.data),
                ));
            }
            self.store.transact(writes).await.map_err(concurrent)?;
        }
        Ok(())
    }

    /// Tool items (notes, calls, reviews, events, tasks) about a deleted record lose their subject.
    async fn unlink_tools(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        gone: &[(SystemId, String, String)],
    ) -> AppResult<()> {
        self.unlink_tools_where(actor, tenant, |system, entity, record| {
            gone.iter().any(|(s, e, r)| s.as_str() == system && e == entity && r == record)
        })
        .await
    }

    /// Tool items whose subject (system, entity, record id) `gone` accepts lose it.
    async fn unlink_tools_where(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        gone: impl Fn(&str, &str, &str) -> bool,
    ) -> AppResult<()> {
        let pk = keys::tenant_pk(tenant);
        let mut linked = Vec::new();
        for prefix in ["TOOL#", keys::TASK_PREFIX] {
            for item in self.store.query_all(&pk, prefix).await? {
                let Some(subject) = item.data.get("subject") else { continue };
                let part = |name: &str| subject[name].as_str().unwrap_or_default();
                if gone(part("system_id"), part("entity"), part("record_id")) {
                    linked.push(item);
                }
            }
        }
        for chunk in linked.chunks(CHUNK) {
            let mut writes = Vec::new();
            for item in chunk {
                let mut data = item.data.clone();
                if let Some(map) = data.as_object_mut() {
                    map.remove("subject");
                }
                writes.push(Write::Put {
                    item: Item::new(pk.clone(), item.sk.clone(), item.version + 1, data),
                    condition: Condition::Version(item.version),
                });
                writes.push(audit::record(actor, Some(tenant), Change::new("tool.unlink", item.sk.to_lowercase())));
            }
            self.store.transact(writes).await.map_err(|e| match e {
                StoreError::ConditionFailed { .. } | StoreError::Conflict => {
                    AppError::conflict("a linked item was changed concurrently; retry".to_string())
                }
                other => other.into(),
            })?;
        }
        Ok(())
    }
}

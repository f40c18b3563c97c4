//! Records of the tenant's installed systems, validated against the entity's JSON Schema
//! in the installed version's manifest. Every write goes through the store, whose change
//! feed turns it into business events.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::audit::{self, Actor, Change};
use super::catalog::CatalogService;
use super::error::{AppError, AppResult};
use super::keys;
use super::page::{get_typed, scan_filtered, Listed, PageRequest};
use super::stored::decode_at;
use crate::domain::catalog::SystemVersion;
use crate::domain::events::Causation;
use crate::domain::ids::{SystemId, TenantId};
use crate::domain::install::Install;
use crate::domain::invalid::{FieldIssue, Invalid};
use crate::domain::manifest::{EntityDef, Schema};
use crate::domain::records::{merge_patch, relations, Record};
use crate::domain::time::now_rfc3339;
use crate::ports::store::{Condition, Item, Query, Store, StoreError, Write};

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
    catalog: CatalogService,
}

impl RecordService {
    pub fn new(store: Arc<dyn Store>, catalog: CatalogService) -> Self {
        Self { store, catalog }
    }

    /// The installed version of `system` (404 when not installed).
    pub async fn installed_version(&self, tenant: &TenantId, system: &SystemId) -> AppResult<SystemVersion> {
        let item = self
            .store
            .get(&keys::tenant_pk(tenant), &keys::install_sk(system))
            .await?
            .ok_or_else(|| AppError::NotFound(format!("system '{system}' is not installed")))?;
        let install: Install = decode_at(&item.pk, &item.sk, item.data)?;
        self.catalog.get_version(system, &install.version).await
    }

    /// The entity's definition in the installed version (404 for an unknown entity).
    pub async fn entity(&self, tenant: &TenantId, system: &SystemId, entity: &str) -> AppResult<EntityDef> {
        let version = self.installed_version(tenant, system).await?;
        version
            .manifest
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
        for (field, system, entity) in relations(&def.schema) {
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

    pub async fn delete(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        system: &SystemId,
        entity: &str,
        id: &str,
    ) -> AppResult<()> {
        let (record, version) = self.get(tenant, system, entity, id).await?;
        let target = format!("record:{system}/{entity}/{id}");
        let writes = vec![
            Write::Delete {
                pk: keys::tenant_pk(tenant),
                sk: keys::record_sk(system, entity, id),
                condition: Condition::Version(version),
            },
            audit::record(actor, Some(tenant), Change::new("record.delete", target).before(&record.data)),
        ];
        self.store.transact(writes).await?;
        Ok(())
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

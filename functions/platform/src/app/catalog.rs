//! The global catalog: systems and their published, immutable versions.

use std::collections::BTreeMap;
use std::sync::Arc;

use semver::Version;
use serde_json::{json, Value};

use super::audit::{self, Actor, Change};
use super::error::{AppError, AppResult};
use super::keys;
use super::page::{get_typed, page_of, Listed, PageRequest};
use crate::domain::catalog::{NewSystem, NewVersion, System, SystemStatus, SystemUpdate, SystemVersion};
use crate::domain::ids::SystemId;
use crate::domain::install::CatalogView;
use crate::domain::time::now_rfc3339;
use crate::ports::store::{Condition, Item, Store, StoreError, Write};

#[derive(Clone)]
pub struct CatalogService {
    store: Arc<dyn Store>,
}

use super::stored::{committed, decode, optimistic};

fn encode<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("domain types always serialize")
}

impl CatalogService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    pub async fn list_systems(&self, page: &PageRequest) -> AppResult<Listed<System>> {
        page_of(self.store.as_ref(), keys::CATALOG_PK, keys::SYSTEM_PREFIX, page, false).await
    }

    /// The system and the store version of its item (for `ETag`).
    pub async fn get_system(&self, system: &SystemId) -> AppResult<(System, u64)> {
        get_typed(self.store.as_ref(), keys::CATALOG_PK, &keys::system_sk(system), || {
            AppError::NotFound(format!("system '{system}' is not in the catalog"))
        })
        .await
    }

    pub async fn create_system(&self, actor: &Actor, new: NewSystem) -> AppResult<System> {
        new.check()?;
        let now = now_rfc3339();
        let system = System {
            system_id: new.system_id,
            name: new.name,
            description: new.description,
            kind: new.kind,
            status: new.status.unwrap_or(SystemStatus::Active),
            metadata: new.metadata.unwrap_or_else(|| json!({})),
            latest_version: None,
            created_at: now.clone(),
            updated_at: now,
        };
        let item = Item::new(keys::CATALOG_PK, keys::system_sk(&system.system_id), 1, encode(&system));
        let change = Change::new("catalog.system.create", format!("system:{}", system.system_id)).after(&system);
        let writes = vec![Write::Put { item, condition: Condition::Absent }, audit::record(actor, None, change)];
        match self.store.transact(writes).await {
            Err(StoreError::ConditionFailed { .. }) => Err(AppError::conflict_with(
                format!("system '{}' already exists", system.system_id),
                "system_id",
                json!(system.system_id),
            )),
            other => other.map(|_| system).map_err(AppError::from),
        }
    }

    /// Updates the given fields. `expected` is the item version from `If-Match`, if any.
    pub async fn update_system(
        &self,
        actor: &Actor,
        id: &SystemId,
        update: SystemUpdate,
        expected: Option<u64>,
    ) -> AppResult<(System, u64)> {
        update.check()?;
        let (mut system, version) = self.get_system(id).await?;
        if expected.is_some_and(|e| e != version) {
            return Err(AppError::PreconditionFailed(format!("system '{id}' is at version {version}")));
        }
        let before = system.clone();
        update.apply(&mut system, &now_rfc3339());
        let item = Item::new(keys::CATALOG_PK, keys::system_sk(id), version + 1, encode(&system));
        let change = Change::new("catalog.system.update", format!("system:{id}")).before(&before).after(&system);
        let writes =
            vec![Write::Put { item, condition: Condition::Version(version) }, audit::record(actor, None, change)];
        match self.store.transact(writes).await {
            Err(StoreError::ConditionFailed { .. }) if expected.is_some() => {
                Err(AppError::PreconditionFailed(format!("system '{id}' was changed concurrently")))
            }
            other => other.map(|_| (system, version + 1)).map_err(AppError::from),
        }
    }

    pub async fn list_versions(&self, id: &SystemId, page: &PageRequest) -> AppResult<Listed<SystemVersion>> {
        self.get_system(id).await?;
        let pk = keys::versions_pk(id);
        page_of(self.store.as_ref(), &pk, keys::VERSION_PREFIX, page, true).await
    }

    pub async fn get_version(&self, id: &SystemId, version: &Version) -> AppResult<SystemVersion> {
        let item = self
            .store
            .get(&keys::versions_pk(id), &keys::version_sk(version))
            .await?
            .ok_or_else(|| AppError::NotFound(format!("system '{id}' has no version {version}")))?;
        decode(item)
    }

    async fn all_versions(&self, id: &SystemId) -> AppResult<Vec<SystemVersion>> {
        let items = self.store.query_all(&keys::versions_pk(id), keys::VERSION_PREFIX).await?;
        items.into_iter().map(decode).collect()
    }

    async fn all_systems(&self) -> AppResult<Vec<System>> {
        let items = self.store.query_all(keys::CATALOG_PK, keys::SYSTEM_PREFIX).await?;
        items.into_iter().map(decode).collect()
    }

    /// Publishes an immutable version and moves the system's `latest_version` when it is higher.
    pub async fn publish_version(&self, actor: &Actor, id: &SystemId, new: NewVersion) -> AppResult<SystemVersion> {
        let known: Vec<SystemId> = self.all_systems().await?.into_iter().map(|s| s.system_id).collect();
        optimistic("the system changed concurrently; retry", || async {
            let (mut system, item_version) = self.get_system(id).await?;
            let earlier: Vec<Version> = self.all_versions(id).await?.into_iter().map(|v| v.version).collect();
            if earlier.contains(&new.version) {
                return Err(version_exists(id, &new.version));
            }
            new.check(id, &earlier, &known)?;
            let published = SystemVersion {
                system_id: id.clone(),
                version: new.version.clone(),
                release_notes: new.release_notes.clone(),
                schema_version: new.schema_version,
                dependencies: new.dependencies.clone(),
                manifest: new.manifest.clone(),
                created_at: now_rfc3339(),
            };
            let latest = system.latest_version.as_deref().and_then(|v| Version::parse(v).ok());
            if latest.is_none_or(|l| published.version > l) {
                system.latest_version = Some(published.version.to_string());
            }
            system.updated_at = published.created_at.clone();
            let writes = vec![
                Write::Put {
                    item: Item::new(keys::versions_pk(id), keys::version_sk(&published.version), 1, encode(&published)),
                    condition: Condition::Absent,
                },
                Write::Put {
                    item: Item::new(keys::CATALOG_PK, keys::system_sk(id), item_version + 1, encode(&system)),
                    condition: Condition::Version(item_version),
                },
                audit::record(
                    actor,
                    None,
                    Change::new("catalog.version.publish", format!("system:{id}@{}", published.version)).after(
                        json!({"version": published.version.to_string(), "dependencies": &published.dependencies}),
                    ),
                ),
            ];
            match self.store.transact(writes).await {
                Err(StoreError::ConditionFailed { index: 0 }) => Err(version_exists(id, &new.version)),
                other => Ok(committed(other)?.map(|()| published)),
            }
        })
        .await
    }

    /// Every system with all of its versions, for dependency resolution.
    pub async fn view(&self) -> AppResult<CatalogView> {
        let mut versions = BTreeMap::new();
        for system in self.all_systems().await? {
            let list = self.all_versions(&system.system_id).await?;
            versions.insert(system.system_id, list);
        }
        Ok(CatalogView::new(versions))
    }
}

fn version_exists(id: &SystemId, version: &Version) -> AppError {
    AppError::conflict_with(
        format!("system '{id}' already has version {version}"),
        "version",
        json!(version.to_string()),
    )
}

//! Versioned configuration: tenant settings and installed systems' configurations.
//!
//! A document has a head item (the current version) and one immutable item per version,
//! written together in one transaction, conditional on the head's version. Concurrent
//! writers therefore never overwrite each other: one wins, the other retries or gets 412.

use std::sync::Arc;

use serde_json::Value;

use super::audit::{self, Actor, Change};
use super::catalog::CatalogService;
use super::error::{AppError, AppResult};
use super::keys;
use super::page::{page_of, Listed, PageRequest};
use super::stored::{committed, decode_at, optimistic};
use crate::domain::config::{ConfigCause, ConfigScope, ConfigVersion, IfMatch};
use crate::domain::ids::TenantId;
use crate::domain::install::Install;
use crate::domain::manifest::Schema;
use crate::domain::time::now_rfc3339;
use crate::ports::store::{Condition, Item, Store, StoreError, Write};

/// Largest configuration document accepted, in bytes of JSON.
pub const MAX_CONFIG_BYTES: usize = 256 * 1024;

#[derive(Clone)]
pub struct ConfigService {
    store: Arc<dyn Store>,
    catalog: CatalogService,
}

fn decode(item: Item) -> AppResult<ConfigVersion> {
    super::stored::decode(item)
}

/// The writes that make `value` the next version after `head` (`None`: the first).
pub fn next_version_writes(
    tenant: &TenantId,
    scope: &ConfigScope,
    head: Option<&ConfigVersion>,
    value: Value,
    cause: ConfigCause,
) -> (ConfigVersion, Vec<Write>) {
    let next = ConfigVersion { version: head.map_or(1, |h| h.version + 1), value, cause, updated_at: now_rfc3339() };
    let pk = keys::tenant_pk(tenant);
    let data = serde_json::to_value(&next).expect("configuration versions serialize");
    let writes = vec![
        Write::Put {
            item: Item::new(pk.clone(), keys::config_head_sk(scope), next.version, data.clone()),
            condition: head.map_or(Condition::Absent, |h| Condition::Version(h.version)),
        },
        Write::Put {
            item: Item::new(pk, keys::config_version_sk(scope, next.version), 1, data),
            condition: Condition::Absent,
        },
    ];
    (next, writes)
}

impl ConfigService {
    pub fn new(store: Arc<dyn Store>, catalog: CatalogService) -> Self {
        Self { store, catalog }
    }

    /// The current version, or `None` when the document was never written.
    pub async fn head(&self, tenant: &TenantId, scope: &ConfigScope) -> AppResult<Option<ConfigVersion>> {
        let item = self.store.get(&keys::tenant_pk(tenant), &keys::config_head_sk(scope)).await?;
        item.map(decode).transpose()
    }

    pub async fn get(&self, tenant: &TenantId, scope: &ConfigScope) -> AppResult<ConfigVersion> {
        if let ConfigScope::System(_) = scope {
            self.installed(tenant, scope).await?;
        }
        self.head(tenant, scope).await?.ok_or_else(|| not_found(scope))
    }

    pub async fn put(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        scope: &ConfigScope,
        value: Value,
        if_match: Option<IfMatch>,
    ) -> AppResult<ConfigVersion> {
        crate::domain::limits::check_size("value", &value, MAX_CONFIG_BYTES)?;
        self.write(actor, tenant, scope, if_match, |_| Ok((value.clone(), ConfigCause::Write))).await
    }

    /// Makes a copy of an earlier version the new current version.
    pub async fn rollback(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        scope: &ConfigScope,
        to: u64,
        if_match: Option<IfMatch>,
    ) -> AppResult<ConfigVersion> {
        let target = self.get_version(tenant, scope, to).await?;
        self.write(actor, tenant, scope, if_match, |_| {
            Ok((target.value.clone(), ConfigCause::Rollback { to_version: to }))
        })
        .await
    }

    pub async fn list_versions(
        &self,
        tenant: &TenantId,
        scope: &ConfigScope,
        page: &PageRequest,
    ) -> AppResult<Listed<ConfigVersion>> {
        if self.head(tenant, scope).await?.is_none() {
            return Err(not_found(scope));
        }
        let pk = keys::tenant_pk(tenant);
        let prefix = keys::config_versions_prefix(scope);
        page_of(self.store.as_ref(), &pk, &prefix, page, true).await
    }

    pub async fn get_version(&self, tenant: &TenantId, scope: &ConfigScope, version: u64) -> AppResult<ConfigVersion> {
        let item = self.store.get(&keys::tenant_pk(tenant), &keys::config_version_sk(scope, version)).await?;
        item.map(decode)
            .transpose()?
            .ok_or_else(|| AppError::NotFound(format!("{} has no version {version}", describe(scope))))
    }

    /// The installed system a system configuration belongs to (404 when not installed).
    async fn installed(&self, tenant: &TenantId, scope: &ConfigScope) -> AppResult<Option<(Install, u64)>> {
        let ConfigScope::System(system) = scope else { return Ok(None) };
        let item = self
            .store
            .get(&keys::tenant_pk(tenant), &keys::install_sk(system))
            .await?
            .ok_or_else(|| AppError::NotFound(format!("system '{system}' is not installed")))?;
        let version = item.version;
        let install: Install = decode_at(&item.pk, &item.sk, item.data)?;
        Ok(Some((install, version)))
    }

    /// Reads the head, computes the next value, checks it and writes it; retries when a
    /// concurrent writer got there first and the caller did not pin a version.
    async fn write(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        scope: &ConfigScope,
        if_match: Option<IfMatch>,
        next: impl Fn(Option<&ConfigVersion>) -> AppResult<(Value, ConfigCause)>,
    ) -> AppResult<ConfigVersion> {
        let busy = format!("{} is being changed by many writers; retry", describe(scope));
        optimistic(&busy, || async {
            let installed = self.installed(tenant, scope).await?;
            let head = self.head(tenant, scope).await?;
            match (if_match, &head) {
                (Some(IfMatch::Version(v)), Some(h)) if v != h.version => {
                    return Err(AppError::PreconditionFailed(format!(
                        "{} is at version {}",
                        describe(scope),
                        h.version
                    )))
                }
                (Some(_), None) => {
                    return Err(AppError::PreconditionFailed(format!("{} does not exist yet", describe(scope))))
                }
                _ => {}
            }
            let (value, cause) = next(head.as_ref())?;
            let mut extra = Vec::new();
            if let Some((install, item_version)) = &installed {
                let version = self.catalog.get_version(&install.system_id, &install.version).await?;
                Schema::compile(&version.manifest.config_schema, "config_schema")?
                    .check(&value)
                    .map_err(|e| e.under("configuration"))?;
                // The installed version must not change under us: its schema is what we checked.
                extra.push(Write::Check {
                    pk: keys::tenant_pk(tenant),
                    sk: keys::install_sk(&install.system_id),
                    condition: Condition::Version(*item_version),
                });
            }
            let before = head.as_ref().map(|h| h.value.clone());
            let (written, mut writes) = next_version_writes(tenant, scope, head.as_ref(), value, cause);
            writes.extend(extra);
            let action =
                if matches!(written.cause, ConfigCause::Rollback { .. }) { "config.rollback" } else { "config.write" };
            let change = Change {
                action,
                target: format!("config:{}", scope.key()),
                before,
                after: Some(written.value.clone()),
            };
            writes.push(audit::record(actor, Some(tenant), change));
            match self.store.transact(writes).await {
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) if if_match.is_some() => {
                    Err(AppError::PreconditionFailed(format!("{} was changed concurrently", describe(scope))))
                }
                other => Ok(committed(other)?.map(|()| written)),
            }
        })
        .await
    }
}

fn describe(scope: &ConfigScope) -> String {
    match scope {
        ConfigScope::Tenant(key) => format!("configuration '{key}'"),
        ConfigScope::System(system) => format!("the configuration of system '{system}'"),
    }
}

fn not_found(scope: &ConfigScope) -> AppError {
    AppError::NotFound(format!("{} does not exist", describe(scope)))
}

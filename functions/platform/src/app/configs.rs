//! Versioned configuration: tenant settings and installed systems' configurations.
//!
//! A document has a head item (the current version) and one immutable item per version,
//! written together in one transaction, conditional on the head's version. Concurrent
//! writers therefore never overwrite each other: one wins, the other retries or gets 412.

use std::sync::Arc;

use serde_json::Value;

use super::audit::{self, Actor, Change};
use super::error::{AppError, AppResult};
use super::keys;
use super::manifests::Manifests;
use super::page::{page_of, scan_filtered, Listed, PageRequest};
use super::stored::{committed, optimistic};
use crate::domain::config::{ConfigCause, ConfigScope, ConfigVersion, IfMatch, Owner, SettingMeta};
use crate::domain::ids::TenantId;
use crate::domain::install::Install;
use crate::domain::manifest::{Manifest, Schema};
use crate::domain::time::now_rfc3339;
use crate::ports::store::{Condition, Item, Store, StoreError, Write};

/// Largest configuration document accepted, in bytes of JSON.
pub const MAX_CONFIG_BYTES: usize = 256 * 1024;

#[derive(Clone)]
pub struct ConfigService {
    store: Arc<dyn Store>,
    manifests: Manifests,
}

fn decode(item: Item) -> AppResult<ConfigVersion> {
    super::stored::decode(item)
}

/// What the next version of a document holds.
#[derive(Debug, Clone)]
pub struct Draft {
    pub value: Value,
    pub cause: ConfigCause,
    pub setting: Option<SettingMeta>,
    pub deleted: bool,
}

/// What a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Create or replace.
    Any,
    /// Create only: an existing document is a 409.
    Absent,
    /// Change only: a missing (or deleted) document is a 404.
    Present,
}

/// The writes that make `value` the next version after `head` (`None`: the first); a
/// setting's description and schema carry over from `head`.
pub fn next_version_writes<'a>(
    owner: impl Into<Owner<'a>>,
    scope: &ConfigScope,
    head: Option<&ConfigVersion>,
    value: Value,
    cause: ConfigCause,
) -> (ConfigVersion, Vec<Write>) {
    let setting = head.and_then(|h| h.setting.clone());
    version_writes(owner.into(), scope, head, Draft { value, cause, setting, deleted: false })
}

/// The writes that make `draft` the next version after `head`.
pub fn version_writes(
    owner: Owner<'_>,
    scope: &ConfigScope,
    head: Option<&ConfigVersion>,
    draft: Draft,
) -> (ConfigVersion, Vec<Write>) {
    let next = ConfigVersion {
        version: head.map_or(1, |h| h.version + 1),
        value: draft.value,
        cause: draft.cause,
        updated_at: now_rfc3339(),
        setting: draft.setting,
        deleted: draft.deleted,
    };
    let pk = keys::owner_pk(owner);
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
    pub fn new(store: Arc<dyn Store>, manifests: Manifests) -> Self {
        Self { store, manifests }
    }

    /// The head item, deleted or not; `None` when the document was never written.
    pub async fn head<'a>(&self, owner: impl Into<Owner<'a>>, scope: &ConfigScope) -> AppResult<Option<ConfigVersion>> {
        let item = self.store.get(&keys::owner_pk(owner.into()), &keys::config_head_sk(scope)).await?;
        item.map(decode).transpose()
    }

    /// The current version, unless the document is absent or deleted.
    pub async fn current<'a>(
        &self,
        owner: impl Into<Owner<'a>>,
        scope: &ConfigScope,
    ) -> AppResult<Option<ConfigVersion>> {
        Ok(self.head(owner, scope).await?.filter(|h| !h.deleted))
    }

    pub async fn get<'a>(&self, owner: impl Into<Owner<'a>>, scope: &ConfigScope) -> AppResult<ConfigVersion> {
        let owner = owner.into();
        if let (ConfigScope::System(_), Some(tenant)) = (scope, owner.tenant()) {
            self.install_item(tenant, scope).await?;
        }
        self.current(owner, scope).await?.ok_or_else(|| not_found(scope))
    }

    /// Writes the next value of a document; a setting's schema (if any) checks it.
    pub async fn put<'a>(
        &self,
        actor: &Actor,
        owner: impl Into<Owner<'a>>,
        scope: &ConfigScope,
        value: Value,
        if_match: Option<IfMatch>,
    ) -> AppResult<ConfigVersion> {
        crate::domain::limits::check_size("value", &value, MAX_CONFIG_BYTES)?;
        self.write(actor, owner.into(), scope, if_match, Expect::Any, |head| {
            Ok(Draft {
                value: value.clone(),
                cause: ConfigCause::Write,
                setting: head.and_then(|h| h.setting.clone()),
                deleted: false,
            })
        })
        .await
    }

    /// Writes a value and, when given, new setting metadata (else the current one stays).
    pub async fn put_doc(
        &self,
        actor: &Actor,
        owner: Owner<'_>,
        scope: &ConfigScope,
        (value, setting): (Value, Option<SettingMeta>),
        if_match: Option<IfMatch>,
        expect: Expect,
    ) -> AppResult<ConfigVersion> {
        crate::domain::limits::check_size("value", &value, MAX_CONFIG_BYTES)?;
        if let Some(schema) = setting.as_ref().and_then(|m| m.schema.as_ref()) {
            Schema::compile(schema, "schema")?;
        }
        self.write(actor, owner, scope, if_match, expect, |head| {
            Ok(Draft {
                value: value.clone(),
                cause: ConfigCause::Write,
                setting: setting.clone().or_else(|| head.and_then(|h| h.setting.clone())),
                deleted: false,
            })
        })
        .await
    }

    /// Deletes a document: a last version marks it deleted; its history stays readable.
    pub async fn delete(
        &self,
        actor: &Actor,
        owner: Owner<'_>,
        scope: &ConfigScope,
        if_match: Option<IfMatch>,
    ) -> AppResult<ConfigVersion> {
        self.write(actor, owner, scope, if_match, Expect::Present, |head| {
            Ok(Draft {
                value: Value::Null,
                cause: ConfigCause::Delete,
                setting: head.and_then(|h| h.setting.clone()),
                deleted: true,
            })
        })
        .await
    }

    /// Makes a copy of an earlier version (its value, and a setting's description and
    /// schema) the new current version.
    pub async fn rollback<'a>(
        &self,
        actor: &Actor,
        owner: impl Into<Owner<'a>>,
        scope: &ConfigScope,
        to: u64,
        if_match: Option<IfMatch>,
    ) -> AppResult<ConfigVersion> {
        let owner = owner.into();
        let target = self.get_version(owner, scope, to).await?;
        if target.deleted {
            return Err(AppError::conflict(format!("version {to} of {} is a deletion", describe(scope))));
        }
        self.write(actor, owner, scope, if_match, Expect::Any, |_| {
            Ok(Draft {
                value: target.value.clone(),
                cause: ConfigCause::Rollback { to_version: to },
                setting: target.setting.clone(),
                deleted: false,
            })
        })
        .await
    }

    pub async fn list_versions<'a>(
        &self,
        owner: impl Into<Owner<'a>>,
        scope: &ConfigScope,
        page: &PageRequest,
    ) -> AppResult<Listed<ConfigVersion>> {
        let owner = owner.into();
        if self.head(owner, scope).await?.is_none() {
            return Err(not_found(scope));
        }
        let pk = keys::owner_pk(owner);
        let prefix = keys::config_versions_prefix(scope);
        page_of(self.store.as_ref(), &pk, &prefix, page, true).await
    }

    pub async fn get_version<'a>(
        &self,
        owner: impl Into<Owner<'a>>,
        scope: &ConfigScope,
        version: u64,
    ) -> AppResult<ConfigVersion> {
        let item = self.store.get(&keys::owner_pk(owner.into()), &keys::config_version_sk(scope, version)).await?;
        item.map(decode)
            .transpose()?
            .ok_or_else(|| AppError::NotFound(format!("{} has no version {version}", describe(scope))))
    }

    /// The current (not deleted) documents of one kind, by key, that `keep` accepts.
    pub async fn list_current(
        &self,
        owner: Owner<'_>,
        kind_prefix: &str,
        page: &PageRequest,
        keep: impl Fn(&ConfigVersion) -> bool,
    ) -> AppResult<Listed<(String, ConfigVersion)>> {
        let pk = keys::owner_pk(owner);
        let prefix = keys::config_heads_prefix(kind_prefix);
        let query = crate::ports::store::Query::new(&pk, &prefix);
        scan_filtered(self.store.as_ref(), query, page, |item| {
            let key = item.sk.strip_prefix(&prefix).unwrap_or_default().to_string();
            let doc: ConfigVersion = decode(item)?;
            Ok((!doc.deleted && keep(&doc)).then_some((key, doc)))
        })
        .await
    }

    /// The install of the system a system configuration belongs to (404 when not installed).
    async fn install_item(&self, tenant: &TenantId, scope: &ConfigScope) -> AppResult<Option<Item>> {
        let ConfigScope::System(system) = scope else { return Ok(None) };
        let item = self
            .store
            .get(&keys::tenant_pk(tenant), &keys::install_sk(system))
            .await?
            .ok_or_else(|| AppError::NotFound(format!("system '{system}' is not installed")))?;
        Ok(Some(item))
    }

    /// [`ConfigService::install_item`] with its item version and its version's manifest.
    async fn installed(
        &self,
        tenant: &TenantId,
        scope: &ConfigScope,
    ) -> AppResult<Option<(Install, u64, Arc<Manifest>)>> {
        let Some(item) = self.install_item(tenant, scope).await? else { return Ok(None) };
        let version = item.version;
        let (install, manifest) = self.manifests.of_install(item).await?;
        Ok(Some((install, version, manifest)))
    }

    /// Reads the head, computes the next value, checks it and writes it; retries when a
    /// concurrent writer got there first and the caller did not pin a version.
    async fn write(
        &self,
        actor: &Actor,
        owner: Owner<'_>,
        scope: &ConfigScope,
        if_match: Option<IfMatch>,
        expect: Expect,
        next: impl Fn(Option<&ConfigVersion>) -> AppResult<Draft>,
    ) -> AppResult<ConfigVersion> {
        let busy = format!("{} is being changed by many writers; retry", describe(scope));
        optimistic(&busy, || async {
            let installed = match owner.tenant() {
                Some(tenant) => self.installed(tenant, scope).await?,
                None => None,
            };
            let head = self.head(owner, scope).await?;
            let live = head.as_ref().filter(|h| !h.deleted);
            match (expect, live) {
                (Expect::Absent, Some(_)) => {
                    return Err(AppError::conflict(format!("{} already exists", describe(scope))))
                }
                (Expect::Present, None) => return Err(not_found(scope)),
                _ => {}
            }
            match (if_match, live) {
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
            let draft = next(live)?;
            let mut extra = Vec::new();
            if let Some((install, item_version, manifest)) = &installed {
                Schema::compile(&manifest.config_schema, "config_schema")?
                    .check(&draft.value)
                    .map_err(|e| e.under("configuration"))?;
                // The installed version must not change under us: its schema is what we checked.
                extra.push(Write::Check {
                    pk: keys::owner_pk(owner),
                    sk: keys::install_sk(&install.system_id),
                    condition: Condition::Version(*item_version),
                });
            }
            if let (false, Some(schema)) = (draft.deleted, draft.setting.as_ref().and_then(|m| m.schema.as_ref())) {
                Schema::compile(schema, "schema")?.check(&draft.value).map_err(|e| e.under("value"))?;
            }
            let before = live.map(|h| h.value.clone());
            let (written, mut writes) = version_writes(owner, scope, head.as_ref(), draft);
            writes.extend(extra);
            let change = Change {
                action: audit_action(scope, &written),
                target: format!("config:{}", scope.key()),
                before,
                after: (!written.deleted).then(|| written.value.clone()),
            };
            writes.push(audit::record(actor, owner.tenant(), change));
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

/// `config.write`, `config.rollback`, `config.delete`; `flag.*` for flags.
fn audit_action(scope: &ConfigScope, written: &ConfigVersion) -> &'static str {
    let flag = matches!(scope, ConfigScope::Flag(_));
    match (&written.cause, flag) {
        (ConfigCause::Rollback { .. }, false) => "config.rollback",
        (ConfigCause::Delete, false) => "config.delete",
        (_, false) => "config.write",
        (ConfigCause::Rollback { .. }, true) => "flag.rollback",
        (ConfigCause::Delete, true) => "flag.delete",
        (_, true) => "flag.write",
    }
}

fn describe(scope: &ConfigScope) -> String {
    match scope {
        ConfigScope::Tenant(key) => format!("configuration '{key}'"),
        ConfigScope::System(system) => format!("the configuration of system '{system}'"),
        ConfigScope::Flag(flag) => format!("feature flag '{flag}'"),
    }
}

fn not_found(scope: &ConfigScope) -> AppError {
    AppError::NotFound(format!("{} does not exist", describe(scope)))
}

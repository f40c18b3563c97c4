//! Installing, changing and removing a tenant's systems. Every operation is one store
//! transaction: the installs, their configurations and their history land together or
//! not at all.

use std::sync::Arc;

use semver::VersionReq;
use serde::Serialize;
use serde_json::{json, Value};

use super::audit::{self, Actor, Change};
use super::catalog::CatalogService;
use super::configs::{next_version_writes, ConfigService};
use super::error::{AppError, AppResult};
use super::keys;
use super::page::{get_typed, page_of, Listed, PageRequest};
use crate::domain::catalog::{parse_version_request, SystemVersion};
use crate::domain::config::{ConfigCause, ConfigScope};
use crate::domain::ids::{SystemId, TenantId};
use crate::domain::install::{
    CatalogView, HistoryAction, HistoryEntry, Install, InstallStatus, Installed, Outcome, PlanError,
};
use crate::domain::invalid::Invalid;
use crate::domain::manifest::{Manifest, Schema};
use crate::domain::time::now_rfc3339;
use crate::ports::store::{Condition, Item, Store, StoreError, Write};

#[derive(Clone)]
pub struct InstallService {
    store: Arc<dyn Store>,
    catalog: CatalogService,
    configs: ConfigService,
    records: super::records::RecordService,
}

/// The answer to an install: everything it installed, dependencies first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InstallOutcome {
    pub installed: Vec<Install>,
}

/// The answer to an uninstall: everything it removed (or is removing), dependents first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UninstallOutcome {
    #[schema(value_type = Vec<String>)]
    pub uninstalled: Vec<SystemId>,
    /// Records of these systems this call deleted.
    pub deleted_records: usize,
    /// Done; when false (time ran out) the systems stay installed, partly emptied, until
    /// the uninstall is asked again.
    pub complete: bool,
}

/// The longest one uninstall call spends deleting records before answering.
pub const UNINSTALL_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

use super::stored::decode;

fn names(systems: &[SystemId]) -> Value {
    json!(systems.iter().map(SystemId::as_str).collect::<Vec<_>>())
}

/// Turns a planning failure into the answer a caller can act on.
fn plan_error(e: PlanError, target: &SystemId) -> AppError {
    let detail = e.to_string();
    match e {
        PlanError::UnknownSystem(s) if &s == target => {
            AppError::Invalid(Invalid::one("system_id", format!("'{s}' is not a system of the catalog")))
        }
        PlanError::NoMatchingVersion { system, .. } if &system == target => {
            AppError::Invalid(Invalid::one("version", detail))
        }
        PlanError::NotInstalled(s) => AppError::NotFound(format!("system '{s}' is not installed")),
        PlanError::HasDependents(dependents) => AppError::conflict_with(
            format!("{detail}; uninstall them first or pass ?cascade=true"),
            "dependents",
            names(&dependents),
        ),
        PlanError::BreaksDependents { ref dependents, .. } => {
            let list: Vec<SystemId> = dependents.iter().map(|(s, _)| s.clone()).collect();
            AppError::conflict_with(detail, "dependents", names(&list))
        }
        _ => AppError::conflict(detail),
    }
}

impl InstallService {
    pub fn new(
        store: Arc<dyn Store>,
        catalog: CatalogService,
        configs: ConfigService,
        records: super::records::RecordService,
    ) -> Self {
        Self { store, catalog, configs, records }
    }

    pub async fn list(&self, tenant: &TenantId, page: &PageRequest) -> AppResult<Listed<Install>> {
        let pk = keys::tenant_pk(tenant);
        page_of(self.store.as_ref(), &pk, keys::INSTALL_PREFIX, page, false).await
    }

    pub async fn get(&self, tenant: &TenantId, system: &SystemId) -> AppResult<(Install, u64)> {
        get_typed(self.store.as_ref(), &keys::tenant_pk(tenant), &keys::install_sk(system), || {
            AppError::NotFound(format!("system '{system}' is not installed"))
        })
        .await
    }

    async fn installed(&self, tenant: &TenantId) -> AppResult<Vec<(Install, u64)>> {
        let items = self.store.query_all(&keys::tenant_pk(tenant), keys::INSTALL_PREFIX).await?;
        items
            .into_iter()
            .map(|item| {
                let v = item.version;
                decode(item).map(|i| (i, v))
            })
            .collect()
    }

    fn installed_map(installs: &[(Install, u64)]) -> Installed {
        installs.iter().map(|(i, _)| (i.system_id.clone(), i.version.clone())).collect()
    }

    pub async fn history(
        &self,
        tenant: &TenantId,
        system: &SystemId,
        page: &PageRequest,
    ) -> AppResult<Listed<HistoryEntry>> {
        self.catalog.get_system(system).await?;
        let pk = keys::tenant_pk(tenant);
        let prefix = keys::history_prefix(system);
        page_of(self.store.as_ref(), &pk, &prefix, page, false).await
    }

    fn history_item(tenant: &TenantId, entry: &HistoryEntry) -> Item {
        Item::new(
            keys::tenant_pk(tenant),
            keys::history_sk(&entry.system_id, &entry.entry_id),
            1,
            serde_json::to_value(entry).expect("history entries serialize"),
        )
    }

    fn history_write(tenant: &TenantId, entry: &HistoryEntry) -> Write {
        Write::Put { item: Self::history_item(tenant, entry), condition: Condition::Absent }
    }

    fn entry(
        system: &SystemId,
        action: HistoryAction,
        from: Option<String>,
        to: Option<String>,
        outcome: Outcome,
        detail: Option<String>,
    ) -> HistoryEntry {
        HistoryEntry {
            entry_id: ulid::Ulid::generate().to_string(),
            system_id: system.clone(),
            action,
            from_version: from,
            to_version: to,
            outcome,
            detail,
            at: now_rfc3339(),
        }
    }

    /// Records an attempt that was refused, then returns the refusal.
    async fn refused(&self, tenant: &TenantId, entry: HistoryEntry, error: AppError) -> AppError {
        if let Err(e) = self.store.put(Self::history_item(tenant, &entry), Condition::Absent).await {
            tracing::warn!(error = %e, "could not record a refused operation in the history");
        }
        error
    }

    /// Installs `system` (at the highest version matching `version`, default any) and
    /// every missing dependency, with their default configurations, atomically.
    pub async fn install(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        system: &SystemId,
        version: Option<&str>,
    ) -> AppResult<InstallOutcome> {
        let requirement = match version {
            Some(raw) => parse_version_request(raw, "version")?,
            None => VersionReq::STAR,
        };
        let view = self.catalog.view().await?;
        let installs = self.installed(tenant).await?;
        let installed = Self::installed_map(&installs);
        let plan = match view.plan_install(&installed, system, &requirement) {
            Ok(plan) => plan,
            Err(PlanError::AlreadyInstalled(s)) => {
                return Err(AppError::conflict_with(
                    format!("system '{s}' is already installed"),
                    "system_id",
                    json!(s),
                ))
            }
            Err(e) => {
                let about_the_request = matches!(&e, PlanError::UnknownSystem(s) | PlanError::NoMatchingVersion { system: s, .. } if s == system);
                if about_the_request {
                    return Err(plan_error(e, system));
                }
                let entry = Self::entry(
                    system,
                    HistoryAction::Install,
                    None,
                    version.map(str::to_string),
                    Outcome::Failed,
                    Some(e.to_string()),
                );
                return Err(self.refused(tenant, entry, plan_error(e, system)).await);
            }
        };
        let now = now_rfc3339();
        let mut writes = Vec::new();
        let mut done = Vec::new();
        for chosen in &plan {
            let install = Install {
                tenant_id: tenant.clone(),
                system_id: chosen.system_id.clone(),
                version: chosen.version.clone(),
                status: InstallStatus::Active,
                installed_as_dependency_of: (&chosen.system_id != system).then(|| system.clone()),
                installed_at: now.clone(),
                updated_at: now.clone(),
            };
            writes.push(Write::Put {
                item: install_item(tenant, &install, 1, &chosen.manifest),
                condition: Condition::Absent,
            });
            let scope = ConfigScope::System(chosen.system_id.clone());
            let head = self.configs.head(tenant, &scope).await?;
            let cause = ConfigCause::Install { system_version: chosen.version.to_string() };
            let (_, config_writes) =
                next_version_writes(tenant, &scope, head.as_ref(), chosen.manifest.default_config.clone(), cause);
            writes.extend(config_writes);
            let detail =
                install.installed_as_dependency_of.as_ref().map(|of| format!("installed as a dependency of {of}"));
            let entry = Self::entry(
                &chosen.system_id,
                HistoryAction::Install,
                None,
                Some(chosen.version.to_string()),
                Outcome::Succeeded,
                detail,
            );
            writes.push(Self::history_write(tenant, &entry));
            done.push(install);
        }
        writes.push(audit::record(
            actor,
            Some(tenant),
            Change::new("system.install", format!("system:{system}")).after(&done),
        ));
        // Evaluators recompile: the installed manifests decide their triggers' fields.
        writes.push(super::rules_generation::bump(self.store.as_ref(), tenant).await?);
        match self.store.transact(writes).await {
            Ok(()) => Ok(InstallOutcome { installed: done }),
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
                Err(AppError::conflict("the tenant's systems changed concurrently; read them again and retry"))
            }
            Err(e) => {
                let entry = Self::entry(
                    system,
                    HistoryAction::Install,
                    None,
                    version.map(str::to_string),
                    Outcome::Failed,
                    Some("the store failed".into()),
                );
                Err(self.refused(tenant, entry, e.into()).await)
            }
        }
    }

    /// Moves an installed system to another version (upgrade or rollback), migrating
    /// its configuration; installed dependents must accept the new version.
    pub async fn change_version(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        system: &SystemId,
        version: &str,
        expected: Option<u64>,
    ) -> AppResult<(Install, u64)> {
        let requirement = parse_version_request(version, "version")?;
        let view = self.catalog.view().await?;
        let installs = self.installed(tenant).await?;
        let (current, item_version) = installs
            .iter()
            .find(|(i, _)| &i.system_id == system)
            .cloned()
            .ok_or_else(|| AppError::NotFound(format!("system '{system}' is not installed")))?;
        if expected.is_some_and(|e| e != item_version) {
            return Err(AppError::PreconditionFailed(format!(
                "the install of '{system}' is at version {item_version}"
            )));
        }
        let target = view.best(system, &requirement).map_err(|e| plan_error(e, system))?.clone();
        if target.version == current.version {
            return Ok((current, item_version));
        }
        let action = if target.version > current.version { HistoryAction::Upgrade } else { HistoryAction::Rollback };
        let attempt = |outcome, detail| {
            Self::entry(
                system,
                action,
                Some(current.version.to_string()),
                Some(target.version.to_string()),
                outcome,
                detail,
            )
        };
        if let Err(e) = view.check_change(&Self::installed_map(&installs), system, &target) {
            let entry = attempt(Outcome::Failed, Some(e.to_string()));
            return Err(self.refused(tenant, entry, plan_error(e, system)).await);
        }
        let scope = ConfigScope::System(system.clone());
        let head = self.configs.head(tenant, &scope).await?;
        let migrated = match self.migrate(&view, &current, &target, head.as_ref().map(|h| &h.value)) {
            Ok(value) => value,
            Err(e) => {
                let entry = attempt(Outcome::Failed, Some(e.to_string()));
                return Err(self.refused(tenant, entry, e).await);
            }
        };
        let now = now_rfc3339();
        let changed = Install {
            version: target.version.clone(),
            status: InstallStatus::Active,
            updated_at: now,
            ..current.clone()
        };
        let cause = ConfigCause::Migration {
            from_version: current.version.to_string(),
            to_version: target.version.to_string(),
        };
        let (_, mut writes) = next_version_writes(tenant, &scope, head.as_ref(), migrated, cause);
        writes.push(Write::Put {
            item: install_item(tenant, &changed, item_version + 1, &target.manifest),
            condition: Condition::Version(item_version),
        });
        writes.push(Self::history_write(tenant, &attempt(Outcome::Succeeded, None)));
        let action = if action == HistoryAction::Upgrade { "system.upgrade" } else { "system.rollback" };
        writes.push(audit::record(
            actor,
            Some(tenant),
            Change::new(action, format!("system:{system}")).before(&current).after(&changed),
        ));
        // Evaluators recompile: the installed manifests decide their triggers' fields.
        writes.push(super::rules_generation::bump(self.store.as_ref(), tenant).await?);
        let generation_index = writes.len() - 1;
        match self.store.transact(writes).await {
            Ok(()) => Ok((changed, item_version + 1)),
            Err(StoreError::ConditionFailed { index }) if index == generation_index => {
                Err(AppError::conflict("the tenant's rules or systems changed concurrently; retry"))
            }
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) if expected.is_some() => {
                Err(AppError::PreconditionFailed(format!("the install of '{system}' was changed concurrently")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The tenant's configuration carried from `current` to `target` and checked against
    /// the target's schema.
    fn migrate(
        &self,
        view: &CatalogView,
        current: &Install,
        target: &SystemVersion,
        config: Option<&Value>,
    ) -> AppResult<Value> {
        let mut value = config.cloned().unwrap_or_else(|| target.manifest.default_config.clone());
        for op in view.migration_ops(&current.system_id, &current.version, &target.version) {
            op.apply(&mut value)?;
        }
        let schema = Schema::compile(&target.manifest.config_schema, "config_schema")?;
        schema.check(&value).map_err(|e| {
            let errors: Vec<Value> =
                e.0.iter()
                    .map(|i| json!({"field": format!("configuration{}", i.field), "message": i.message}))
                    .collect();
            AppError::conflict_with(
                format!(
                    "the tenant's configuration would not be valid under {} {}; change it first",
                    target.system_id, target.version
                ),
                "errors",
                Value::Array(errors),
            )
        })?;
        Ok(value)
    }

    /// Removes `system`; with `cascade`, installed dependents go first.
    pub async fn uninstall(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        system: &SystemId,
        cascade: bool,
    ) -> AppResult<UninstallOutcome> {
        let view = self.catalog.view().await?;
        let installs = self.installed(tenant).await?;
        let order = match view.plan_uninstall(&Self::installed_map(&installs), system, cascade) {
            Ok(order) => order,
            Err(e @ PlanError::NotInstalled(_)) => return Err(plan_error(e, system)),
            Err(e) => {
                let current = installs.iter().find(|(i, _)| &i.system_id == system).map(|(i, _)| i.version.to_string());
                let entry =
                    Self::entry(system, HistoryAction::Uninstall, current, None, Outcome::Failed, Some(e.to_string()));
                return Err(self.refused(tenant, entry, plan_error(e, system)).await);
            }
        };
        let purge = match self.records.purge_systems(actor, tenant, &order, UNINSTALL_BUDGET).await {
            Ok(purge) => purge,
            Err(e @ AppError::Conflict { .. }) => {
                let current = installs.iter().find(|(i, _)| &i.system_id == system).map(|(i, _)| i.version.to_string());
                let entry =
                    Self::entry(system, HistoryAction::Uninstall, current, None, Outcome::Failed, Some(e.to_string()));
                return Err(self.refused(tenant, entry, e).await);
            }
            Err(e) => return Err(e),
        };
        if !purge.complete {
            return Ok(UninstallOutcome {
                uninstalled: order,
                deleted_records: purge.deleted_records,
                complete: false,
            });
        }
        let mut writes = Vec::new();
        for removed in &order {
            let (install, item_version) =
                installs.iter().find(|(i, _)| &i.system_id == removed).expect("planned from the installed set");
            writes.push(Write::Delete {
                pk: keys::tenant_pk(tenant),
                sk: keys::install_sk(removed),
                condition: Condition::Version(*item_version),
            });
            let detail = (removed != system).then(|| format!("removed with {system} (cascade)"));
            let entry = Self::entry(
                removed,
                HistoryAction::Uninstall,
                Some(install.version.to_string()),
                None,
                Outcome::Succeeded,
                detail,
            );
            writes.push(Self::history_write(tenant, &entry));
        }
        let removed: Vec<&Install> =
            order.iter().filter_map(|s| installs.iter().find(|(i, _)| &i.system_id == s).map(|(i, _)| i)).collect();
        writes.push(audit::record(
            actor,
            Some(tenant),
            Change::new("system.uninstall", format!("system:{system}")).before(&removed),
        ));
        // Evaluators recompile: the installed manifests decide their triggers' fields.
        writes.push(super::rules_generation::bump(self.store.as_ref(), tenant).await?);
        self.store.transact(writes).await?;
        Ok(UninstallOutcome { uninstalled: order, deleted_records: purge.deleted_records, complete: true })
    }
}

/// The stored install: the install and the digest of the manifest it was made from, with
/// which the engine can take a built-in manifest from the binary instead of reading it
/// ([`crate::app::manifests::Manifests`]).
fn install_item(tenant: &TenantId, install: &Install, version: u64, manifest: &Manifest) -> Item {
    let mut data = serde_json::to_value(install).expect("installs serialize");
    data[MANIFEST_DIGEST] = json!(manifest.digest());
    Item::new(keys::tenant_pk(tenant), keys::install_sk(&install.system_id), version, data)
}

/// The install item's attribute naming its manifest's digest (not part of the API's install).
pub const MANIFEST_DIGEST: &str = "manifest_digest";

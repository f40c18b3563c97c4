//! Feature flags of a tenant and of the platform: stored as versioned documents (the
//! configuration model: versions, `ETag`/`If-Match`, rollback), evaluated per caller.
//!
//! A tenant's flag of the same key overrides the platform's, except that a disabled
//! platform flag (the kill switch) wins everywhere. Evaluation reads one snapshot per
//! tenant (platform flags, tenant flags, team membership) that each process keeps for at
//! most [`FLAG_CACHE_TTL`]; writes through this process drop it at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::audit::Actor;
use super::configs::{ConfigService, Expect};
use super::error::{AppError, AppResult};
use super::page::{Listed, PageRequest};
use crate::domain::config::{ConfigCause, ConfigScope, ConfigVersion, IfMatch, Owner};
use crate::domain::flags::{Context, FlagDefinition, Reason};
use crate::domain::ids::{FlagKey, TenantId};
use crate::ports::store::Store;

/// How long a process may answer evaluations from its snapshot of a tenant's flags.
pub const FLAG_CACHE_TTL: Duration = Duration::from_secs(5);
/// Most flags of one owner that evaluation considers.
pub const MAX_FLAGS: usize = 1000;

/// A flag as API answers show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Flag {
    pub key: String,
    /// `tenant` or `platform`.
    pub scope: &'static str,
    pub version: u64,
    pub cause: ConfigCause,
    pub updated_at: String,
    #[serde(flatten)]
    pub definition: FlagDefinition,
}

/// One flag's answer for one caller.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Evaluation {
    pub key: String,
    #[schema(value_type = Value)]
    pub value: Value,
    pub variant: String,
    pub reason: Reason,
    /// Whose definition answered: `tenant` or `platform`.
    pub scope: &'static str,
    /// The version of that definition.
    pub version: u64,
}

/// A tenant's flags as evaluation sees them.
#[derive(Debug, Default)]
struct Snapshot {
    /// key -> (definition, scope, version), the tenant's override already applied.
    flags: BTreeMap<String, (FlagDefinition, &'static str, u64)>,
    /// user id -> team ids.
    teams: HashMap<String, Vec<String>>,
}

type Cache = Arc<Mutex<HashMap<TenantId, (Instant, Arc<Snapshot>)>>>;

#[derive(Clone)]
pub struct FlagService {
    store: Arc<dyn Store>,
    configs: ConfigService,
    cache: Cache,
}

fn flag_of(key: String, owner: Owner<'_>, doc: ConfigVersion) -> AppResult<Flag> {
    let definition = serde_json::from_value(doc.value)
        .map_err(|e| AppError::Internal(format!("stored flag '{key}' does not decode: {e}")))?;
    Ok(Flag {
        key,
        scope: owner.scope_name(),
        version: doc.version,
        cause: doc.cause,
        updated_at: doc.updated_at,
        definition,
    })
}

/// Parses a flag key; the field is `flag_key`.
pub fn flag_key(raw: &str) -> AppResult<FlagKey> {
    Ok(FlagKey::parse(raw)?)
}

impl FlagService {
    pub fn new(store: Arc<dyn Store>, configs: ConfigService) -> Self {
        Self { store, configs, cache: Cache::default() }
    }

    fn forget(&self, owner: Owner<'_>) {
        let mut cache = self.cache.lock().expect("flag cache lock");
        match owner {
            Owner::Tenant(t) => {
                cache.remove(t);
            }
            Owner::Platform => cache.clear(),
        }
    }

    pub async fn put(
        &self,
        actor: &Actor,
        owner: Owner<'_>,
        key: &FlagKey,
        definition: FlagDefinition,
        if_match: Option<IfMatch>,
        expect: Expect,
    ) -> AppResult<Flag> {
        let definition = definition.normalized(owner == Owner::Platform)?;
        let value = serde_json::to_value(&definition).expect("flags serialize");
        let scope = ConfigScope::Flag(key.clone());
        let doc = self.configs.put_doc(actor, owner, &scope, (value, None), if_match, expect).await?;
        self.forget(owner);
        flag_of(key.to_string(), owner, doc)
    }

    pub async fn get(&self, owner: Owner<'_>, key: &FlagKey) -> AppResult<Flag> {
        let doc = self.configs.get(owner, &ConfigScope::Flag(key.clone())).await?;
        flag_of(key.to_string(), owner, doc)
    }

    pub async fn list(&self, owner: Owner<'_>, page: &PageRequest) -> AppResult<Listed<Flag>> {
        let listed = self.configs.list_current(owner, "f:", page, |_| true).await?;
        let items =
            listed.items.into_iter().map(|(key, doc)| flag_of(key, owner, doc)).collect::<AppResult<Vec<_>>>()?;
        Ok(Listed { items, next_cursor: listed.next_cursor })
    }

    pub async fn delete(
        &self,
        actor: &Actor,
        owner: Owner<'_>,
        key: &FlagKey,
        if_match: Option<IfMatch>,
    ) -> AppResult<()> {
        self.configs.delete(actor, owner, &ConfigScope::Flag(key.clone()), if_match).await?;
        self.forget(owner);
        Ok(())
    }

    pub async fn versions(
        &self,
        owner: Owner<'_>,
        key: &FlagKey,
        page: &PageRequest,
    ) -> AppResult<Listed<ConfigVersion>> {
        self.configs.list_versions(owner, &ConfigScope::Flag(key.clone()), page).await
    }

    /// Every current flag of an owner, up to [`MAX_FLAGS`].
    async fn all(&self, owner: Owner<'_>) -> AppResult<Vec<(String, FlagDefinition, u64)>> {
        let mut out = Vec::new();
        let mut page = PageRequest::first(crate::app::page::MAX_LIMIT);
        loop {
            let listed = self.configs.list_current(owner, "f:", &page, |_| true).await?;
            for (key, doc) in listed.items {
                match serde_json::from_value::<FlagDefinition>(doc.value) {
                    Ok(def) => out.push((key, def, doc.version)),
                    Err(e) => tracing::error!(flag = key, error = %e, "a stored flag does not decode; it is skipped"),
                }
            }
            match listed.next_cursor {
                Some(cursor) if out.len() < MAX_FLAGS => page = PageRequest::parse(None, Some(&cursor))?,
                _ => return Ok(out),
            }
        }
    }

    async fn snapshot(&self, tenant: &TenantId) -> AppResult<Arc<Snapshot>> {
        if let Some((at, snap)) = self.cache.lock().expect("flag cache lock").get(tenant) {
            if at.elapsed() < FLAG_CACHE_TTL {
                return Ok(snap.clone());
            }
        }
        let (platform, own, teams) = tokio::try_join!(
            self.all(Owner::Platform),
            self.all(Owner::Tenant(tenant)),
            super::teams::teams_by_user(self.store.as_ref(), tenant)
        )?;
        let mut flags = BTreeMap::new();
        for (key, def, version) in platform {
            flags.insert(key, (def, "platform", version));
        }
        for (key, def, version) in own {
            // A disabled platform flag is a kill switch no tenant can override.
            let killed = flags.get(&key).is_some_and(|(d, _, _): &(FlagDefinition, _, _)| !d.enabled);
            if !killed {
                flags.insert(key, (def, "tenant", version));
            }
        }
        let snap = Arc::new(Snapshot { flags, teams });
        self.cache.lock().expect("flag cache lock").insert(tenant.clone(), (Instant::now(), snap.clone()));
        Ok(snap)
    }

    /// The caller's team ids, from the snapshot.
    pub async fn teams_of(&self, tenant: &TenantId, user_id: &str) -> AppResult<Vec<String>> {
        Ok(self.snapshot(tenant).await?.teams.get(user_id).cloned().unwrap_or_default())
    }

    /// Every flag the tenant sees, evaluated for `context`.
    pub async fn evaluate_all(&self, tenant: &TenantId, context: &Context) -> AppResult<Vec<Evaluation>> {
        let snap = self.snapshot(tenant).await?;
        Ok(snap
            .flags
            .iter()
            .map(|(key, (def, scope, version))| evaluation(key, def, scope, *version, context))
            .collect())
    }

    /// One flag for `context`; `None` when the tenant has no such flag.
    pub async fn evaluate(&self, tenant: &TenantId, key: &str, context: &Context) -> AppResult<Option<Evaluation>> {
        let snap = self.snapshot(tenant).await?;
        Ok(snap.flags.get(key).map(|(def, scope, version)| evaluation(key, def, scope, *version, context)))
    }

    /// Whether a boolean flag is on for automation running in the tenant (the rollout
    /// buckets by the tenant id); a missing or non-boolean flag is off.
    pub async fn enabled_for_tenant(&self, tenant: &TenantId, key: &str) -> AppResult<bool> {
        let context =
            Context { targeting_key: Some(tenant.to_string()), tenant: Some(tenant.to_string()), ..Context::default() };
        Ok(self.evaluate(tenant, key, &context).await?.is_some_and(|e| e.value == Value::Bool(true)))
    }
}

fn evaluation(key: &str, def: &FlagDefinition, scope: &'static str, version: u64, context: &Context) -> Evaluation {
    let r = def.evaluate(key, context);
    Evaluation { key: key.to_string(), value: r.value, variant: r.variant, reason: r.reason, scope, version }
}

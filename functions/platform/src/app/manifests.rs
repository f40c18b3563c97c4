//! The manifest of a tenant's installed system version: what records, configurations,
//! triggers and rules are checked against. A built-in version's manifest comes from the
//! binary when the install recorded the same digest (no catalog read); any other is read
//! from the catalog once per version and process (versions are immutable).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::catalog::CatalogService;
use super::error::AppResult;
use super::keys;
use super::stored::decode_at;
use crate::domain::ids::{SystemId, TenantId};
use crate::domain::install::Install;
use crate::domain::manifest::Manifest;
use crate::ports::store::{Item, Store};

/// (system, version) -> the manifest read from the catalog.
type VersionCache = Arc<Mutex<HashMap<(String, String), Arc<Manifest>>>>;

/// The installed version's manifest of a tenant's system: a built-in one from the binary
/// when the install recorded its digest, any other read from the catalog once per version.
#[derive(Clone)]
pub struct Manifests {
    store: Arc<dyn Store>,
    catalog: CatalogService,
    cache: VersionCache,
}

impl Manifests {
    pub fn new(store: Arc<dyn Store>, catalog: CatalogService) -> Self {
        Self { store, catalog, cache: Arc::default() }
    }

    pub async fn installed(&self, tenant: &TenantId, system: &SystemId) -> AppResult<Option<Arc<Manifest>>> {
        let Some(item) = self.store.get(&keys::tenant_pk(tenant), &keys::install_sk(system)).await? else {
            return Ok(None);
        };
        Ok(Some(self.of_install(item).await?.1))
    }

    /// A stored install and its version's manifest.
    pub async fn of_install(&self, item: Item) -> AppResult<(Install, Arc<Manifest>)> {
        let (install, digest) = Self::decode(item)?;
        let manifest = self.manifest(&install, digest.as_deref()).await?;
        Ok((install, manifest))
    }

    /// A stored install and the manifest digest it recorded (none before digests were).
    pub fn decode(mut item: Item) -> AppResult<(Install, Option<String>)> {
        let digest = match item.data.get_mut(crate::app::installs::MANIFEST_DIGEST).map(Value::take) {
            Some(Value::String(digest)) => Some(digest),
            _ => None,
        };
        Ok((decode_at(&item.pk, &item.sk, item.data)?, digest))
    }

    /// The manifest of `install`'s version, which recorded `digest`.
    pub async fn manifest(&self, install: &Install, digest: Option<&str>) -> AppResult<Arc<Manifest>> {
        // Installs made before digests were recorded, or of a manifest other than the
        // binary's under a built-in id and version, read the catalog.
        if let Some(builtin) = crate::app::seed::builtin_manifest(&install.system_id, &install.version) {
            if digest == Some(builtin.digest.as_str()) {
                return Ok(builtin.manifest.clone());
            }
        }
        let key = (install.system_id.to_string(), install.version.to_string());
        let cached = self.cache.lock().expect("lock").get(&key).cloned();
        if let Some(found) = cached {
            return Ok(found);
        }
        let read = Arc::new(self.catalog.get_version(&install.system_id, &install.version).await?.manifest);
        self.cache.lock().expect("lock").insert(key, read.clone());
        Ok(read)
    }
}

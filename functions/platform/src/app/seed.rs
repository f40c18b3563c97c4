//! The built-in catalog (CRM, Sales, Marketing, Support), published at first start.
//!
//! Seeding goes through the same use cases as catalog administration, is idempotent,
//! and costs one read once done: a marker item names the revision of the seed files.

use std::sync::{Arc, OnceLock};

use semver::Version;
use serde::Deserialize;

use super::audit::Actor;
use super::catalog::CatalogService;
use super::error::{AppError, AppResult};
use super::keys;
use crate::domain::catalog::{NewSystem, NewVersion};
use crate::domain::ids::SystemId;
use crate::domain::manifest::Manifest;
use crate::ports::store::{Condition, Item, Store};

/// The seed files by system id, dependencies before dependents.
const BUILTIN: [(&str, &str); 4] = [
    ("crm", include_str!("../../catalog/crm.json")),
    ("sales", include_str!("../../catalog/sales.json")),
    ("marketing", include_str!("../../catalog/marketing.json")),
    ("support", include_str!("../../catalog/support.json")),
];

#[derive(Deserialize)]
struct SeedFile {
    system: NewSystem,
    versions: Vec<NewVersion>,
}

/// A fingerprint of the seed files (FNV-1a), so that changed files are seeded again.
fn revision() -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in BUILTIN.iter().flat_map(|(_, f)| f.bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// A built-in version's manifest as this binary carries it, with its digest.
pub struct BuiltinManifest {
    pub digest: String,
    pub manifest: Arc<Manifest>,
}

/// The manifest of built-in `system` at `version`, parsed from the binary's seed file on
/// first use (one file, not the whole catalog). Versions are immutable, but a catalog may
/// hold another manifest under a built-in id and version (published before the seed ran):
/// callers compare the digest with the one the install recorded.
pub fn builtin_manifest(system: &SystemId, version: &Version) -> Option<&'static BuiltinManifest> {
    static PARSED: [OnceLock<Vec<(Version, BuiltinManifest)>>; 4] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let index = BUILTIN.iter().position(|(id, _)| *id == system.as_str())?;
    let versions = PARSED[index].get_or_init(|| {
        let file: SeedFile = serde_json::from_str(BUILTIN[index].1).expect("the built-in catalog files are valid");
        file.versions
            .into_iter()
            .map(|v| (v.version, BuiltinManifest { digest: v.manifest.digest(), manifest: Arc::new(v.manifest) }))
            .collect()
    });
    versions.iter().find(|(v, _)| v == version).map(|(_, m)| m)
}

/// Publishes every built-in system and version that the catalog does not have yet.
pub async fn ensure_builtin_catalog(store: &dyn Store, catalog: &CatalogService) -> AppResult<()> {
    let marker = keys::seed_marker_sk(&revision());
    if store.get(keys::CATALOG_PK, &marker).await?.is_some() {
        return Ok(());
    }
    let actor = Actor::system("seed");
    for (_, raw) in BUILTIN {
        let file: SeedFile = serde_json::from_str(raw).expect("the built-in catalog files are valid");
        let id = file.system.system_id.clone();
        match catalog.create_system(&actor, file.system).await {
            Ok(_) | Err(AppError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
        for version in file.versions {
            match catalog.publish_version(&actor, &id, version).await {
                Ok(_) | Err(AppError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    let done =
        Item::new(keys::CATALOG_PK, marker, 1, serde_json::json!({"seeded_at": crate::domain::time::now_rfc3339()}));
    match store.put(done, Condition::None).await {
        Ok(()) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_files_parse_and_their_manifests_are_coherent() {
        for (id, raw) in BUILTIN {
            let file: SeedFile = serde_json::from_str(raw).unwrap();
            assert_eq!(file.system.system_id.as_str(), id, "a seed file is named by its system");
            assert!(!file.versions.is_empty());
            for version in &file.versions {
                version
                    .manifest
                    .check()
                    .unwrap_or_else(|e| panic!("{} {}: {e}", file.system.system_id, version.version));
            }
        }
    }
}

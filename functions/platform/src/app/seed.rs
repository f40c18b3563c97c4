//! The built-in catalog (CRM, Sales, Marketing, Support), published at first start.
//!
//! Seeding goes through the same use cases as catalog administration, is idempotent,
//! and costs one read once done: a marker item names the revision of the seed files.

use serde::Deserialize;

use super::audit::Actor;
use super::catalog::CatalogService;
use super::error::{AppError, AppResult};
use super::keys;
use crate::domain::catalog::{NewSystem, NewVersion};
use crate::ports::store::{Condition, Item, Store};

/// The seed files, dependencies before dependents.
const BUILTIN: [&str; 4] = [
    include_str!("../../catalog/crm.json"),
    include_str!("../../catalog/sales.json"),
    include_str!("../../catalog/marketing.json"),
    include_str!("../../catalog/support.json"),
];

#[derive(Deserialize)]
struct SeedFile {
    system: NewSystem,
    versions: Vec<NewVersion>,
}

/// A fingerprint of the seed files (FNV-1a), so that changed files are seeded again.
fn revision() -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in BUILTIN.iter().flat_map(|f| f.bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Publishes every built-in system and version that the catalog does not have yet.
pub async fn ensure_builtin_catalog(store: &dyn Store, catalog: &CatalogService) -> AppResult<()> {
    let marker = keys::seed_marker_sk(&revision());
    if store.get(keys::CATALOG_PK, &marker).await?.is_some() {
        return Ok(());
    }
    let actor = Actor::system("seed");
    for raw in BUILTIN {
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
        for raw in BUILTIN {
            let file: SeedFile = serde_json::from_str(raw).unwrap();
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

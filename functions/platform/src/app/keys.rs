//! Every store key of the product, in one place. Tenant items always start their
//! partition key with `TENANT#<tenant_id>`; the catalog is global.

use semver::Version;

use crate::domain::catalog::version_sort_key;
use crate::domain::config::ConfigScope;
use crate::domain::ids::{SystemId, TenantId};

pub const CATALOG_PK: &str = "CATALOG";
pub const SYSTEM_PREFIX: &str = "SYSTEM#";
pub const VERSION_PREFIX: &str = "VERSION#";
pub const INSTALL_PREFIX: &str = "INSTALL#";

pub fn system_sk(system: &SystemId) -> String {
    format!("{SYSTEM_PREFIX}{system}")
}

pub fn seed_marker_sk(revision: &str) -> String {
    format!("SEED#{revision}")
}

pub fn versions_pk(system: &SystemId) -> String {
    format!("CATALOG#{system}")
}

pub fn version_sk(version: &Version) -> String {
    format!("{VERSION_PREFIX}{}", version_sort_key(version))
}

pub fn tenant_pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}")
}

pub fn install_sk(system: &SystemId) -> String {
    format!("{INSTALL_PREFIX}{system}")
}

pub fn history_prefix(system: &SystemId) -> String {
    format!("HISTORY#{system}#")
}

pub fn history_sk(system: &SystemId, entry_id: &str) -> String {
    format!("{}{entry_id}", history_prefix(system))
}

pub fn config_head_sk(scope: &ConfigScope) -> String {
    format!("CONFIG#{}", scope.key())
}

pub fn config_versions_prefix(scope: &ConfigScope) -> String {
    format!("CONFIGV#{}#", scope.key())
}

pub fn config_version_sk(scope: &ConfigScope, version: u64) -> String {
    format!("{}{version:020}", config_versions_prefix(scope))
}

//! Permissions and roles: what a caller may do.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Every permission of the product. Each endpoint declares the one it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Permission {
    /// Read the catalog.
    #[serde(rename = "systems.read")]
    SystemsRead,
    /// Install, upgrade, roll back and uninstall systems.
    #[serde(rename = "systems.manage")]
    SystemsManage,
    #[serde(rename = "config.read")]
    ConfigRead,
    #[serde(rename = "config.write")]
    ConfigWrite,
    /// See users, roles, permissions and teams.
    #[serde(rename = "users.read")]
    UsersRead,
    /// Create, change and remove users and their roles.
    #[serde(rename = "users.manage")]
    UsersManage,
    #[serde(rename = "roles.manage")]
    RolesManage,
    #[serde(rename = "teams.manage")]
    TeamsManage,
    /// Create and revoke one's own API keys.
    #[serde(rename = "api_keys.manage")]
    ApiKeysManage,
    #[serde(rename = "audit.read")]
    AuditRead,
    /// Read management-system records, notifications and tasks.
    #[serde(rename = "records.read")]
    RecordsRead,
    /// Create, change and delete records and tasks.
    #[serde(rename = "records.write")]
    RecordsWrite,
    /// See automation rules, triggers and executions.
    #[serde(rename = "automation.read")]
    AutomationRead,
    /// Create and change rules, publish events, retry executions.
    #[serde(rename = "automation.manage")]
    AutomationManage,
    /// Publish or reject reviews.
    #[serde(rename = "reviews.moderate")]
    ReviewsModerate,
    /// Catalog administration: only the platform administrator holds it.
    #[serde(rename = "catalog.manage")]
    CatalogManage,
    /// Platform operations (dead letters, tenant limits): only the platform administrator holds it.
    #[serde(rename = "platform.operate")]
    PlatformOperate,
}

impl Permission {
    /// Every permission a tenant role may hold (catalog administration is not one).
    pub const TENANT: [Permission; 15] = [
        Permission::SystemsRead,
        Permission::SystemsManage,
        Permission::ConfigRead,
        Permission::ConfigWrite,
        Permission::UsersRead,
        Permission::UsersManage,
        Permission::RolesManage,
        Permission::TeamsManage,
        Permission::ApiKeysManage,
        Permission::AuditRead,
        Permission::RecordsRead,
        Permission::RecordsWrite,
        Permission::AutomationRead,
        Permission::AutomationManage,
        Permission::ReviewsModerate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Permission::SystemsRead => "systems.read",
            Permission::SystemsManage => "systems.manage",
            Permission::ConfigRead => "config.read",
            Permission::ConfigWrite => "config.write",
            Permission::UsersRead => "users.read",
            Permission::UsersManage => "users.manage",
            Permission::RolesManage => "roles.manage",
            Permission::TeamsManage => "teams.manage",
            Permission::ApiKeysManage => "api_keys.manage",
            Permission::AuditRead => "audit.read",
            Permission::RecordsRead => "records.read",
            Permission::RecordsWrite => "records.write",
            Permission::AutomationRead => "automation.read",
            Permission::AutomationManage => "automation.manage",
            Permission::ReviewsModerate => "reviews.moderate",
            Permission::CatalogManage => "catalog.manage",
            Permission::PlatformOperate => "platform.operate",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Permission::SystemsRead => "Read the catalog and the tenant's installed systems",
            Permission::SystemsManage => "Install, upgrade, roll back and uninstall systems",
            Permission::ConfigRead => "Read configuration",
            Permission::ConfigWrite => "Change configuration",
            Permission::UsersRead => "See users, roles, permissions and teams",
            Permission::UsersManage => "Create, change and remove users",
            Permission::RolesManage => "Create custom roles",
            Permission::TeamsManage => "Create teams and manage their members",
            Permission::ApiKeysManage => "Create and revoke one's own API keys",
            Permission::AuditRead => "Read and export the audit trail",
            Permission::RecordsRead => "Read records, notifications and tasks",
            Permission::RecordsWrite => "Create, change and delete records and tasks",
            Permission::AutomationRead => "See automation rules, triggers and executions",
            Permission::AutomationManage => "Manage automation rules, publish events, retry executions",
            Permission::ReviewsModerate => "Publish or reject reviews",
            Permission::CatalogManage => "Administer the global catalog (platform administrator)",
            Permission::PlatformOperate => "Operate the platform: dead letters, tenant limits (platform administrator)",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub type Permissions = BTreeSet<Permission>;

/// The built-in roles of every tenant.
pub const BUILTIN_ROLES: [&str; 4] = ["owner", "admin", "member", "viewer"];

/// The permissions of a built-in role, or `None` for a custom role name.
pub fn builtin_role(name: &str) -> Option<Permissions> {
    use Permission::*;
    let list: &[Permission] = match name {
        "owner" | "admin" => &Permission::TENANT,
        "member" => {
            &[SystemsRead, ConfigRead, ConfigWrite, UsersRead, ApiKeysManage, RecordsRead, RecordsWrite, AutomationRead]
        }
        "viewer" => &[SystemsRead, ConfigRead, UsersRead, RecordsRead, AutomationRead],
        _ => return None,
    };
    Some(list.iter().copied().collect())
}

/// What a caller holding `holder` would hand out beyond their own permissions by granting
/// `granted` (a role to a user, permissions to a role, scopes to a key). Nobody may grant
/// a permission they do not hold (Keycloak's and Auth0's rule): non-empty means refused.
pub fn beyond(holder: &Permissions, granted: &Permissions) -> Vec<Permission> {
    granted.difference(holder).copied().collect()
}

pub const OWNER_ROLE: &str = "owner";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granting_is_bounded_by_what_one_holds() {
        let member = builtin_role("member").unwrap();
        let admin = builtin_role("admin").unwrap();
        assert!(beyond(&admin, &member).is_empty());
        let missing = beyond(&member, &admin);
        assert!(missing.contains(&Permission::UsersManage) && missing.contains(&Permission::RolesManage));
    }

    #[test]
    fn viewers_read_but_do_not_change() {
        let viewer = builtin_role("viewer").unwrap();
        assert!(viewer.contains(&Permission::ConfigRead));
        assert!(!viewer.contains(&Permission::ConfigWrite));
        assert!(!viewer.contains(&Permission::UsersManage));
    }

    #[test]
    fn only_admins_manage_users_and_nobody_in_a_tenant_manages_the_catalog() {
        for role in BUILTIN_ROLES {
            let perms = builtin_role(role).unwrap();
            assert_eq!(perms.contains(&Permission::UsersManage), role == "owner" || role == "admin", "{role}");
            assert!(!perms.contains(&Permission::CatalogManage));
        }
    }

    #[test]
    fn permission_names_match_their_serde_names() {
        for p in Permission::TENANT.iter().chain([Permission::CatalogManage].iter()) {
            assert_eq!(serde_json::to_value(p).unwrap(), p.name());
        }
    }
}

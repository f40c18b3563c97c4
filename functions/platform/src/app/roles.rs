//! Roles: the built-in ones and a tenant's custom roles, and the one rule on granting
//! them: nobody grants what they do not hold, and only owners grant `owner`.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::accounts::permissions_of;
use super::audit::{self, Actor, Change};
use super::error::{AppError, AppResult};
use super::keys;
use super::principal::Principal;
use super::stored::{committed, decode_at, optimistic};
use crate::domain::access::{beyond, builtin_role, Permission, Permissions, BUILTIN_ROLES, OWNER_ROLE};
use crate::domain::identity::{check_role_name, Role};
use crate::domain::ids::TenantId;
use crate::domain::invalid::{FieldIssue, Invalid};
use crate::ports::store::{Store, StoreError, Write};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleUpdate {
    pub description: Option<String>,
    pub permissions: Option<Vec<Permission>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PermissionInfo {
    pub name: Permission,
    pub description: String,
}

/// Refuses (403) handing out `granted` unless the caller holds every one of them.
pub fn check_within(principal: &Principal, granted: &Permissions, what: &str) -> AppResult<()> {
    let missing = beyond(&principal.permissions, granted);
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|p| p.name()).collect();
    Err(AppError::Forbidden(format!("{what} would grant permissions you do not hold: {}", names.join(", "))))
}

/// Checks that `principal` may give someone exactly `roles`: each role exists (422 naming
/// it), `owner` only from an owner, and no permission beyond the caller's own (403).
pub async fn check_grant(
    store: &dyn Store,
    principal: &Principal,
    tenant: &TenantId,
    roles: &[String],
) -> AppResult<()> {
    let mut issues = Vec::new();
    for (i, role) in roles.iter().enumerate() {
        let exists =
            builtin_role(role).is_some() || store.get(&keys::tenant_pk(tenant), &keys::role_sk(role)).await?.is_some();
        if !exists {
            issues.push(FieldIssue::new(format!("roles[{i}]"), format!("'{role}' is not a role of this tenant")));
        }
    }
    if !issues.is_empty() {
        return Err(Invalid(issues).into());
    }
    if roles.iter().any(|r| r == OWNER_ROLE) && !principal.is_owner() {
        return Err(AppError::Forbidden("only an owner can grant the owner role".to_string()));
    }
    check_within(principal, &permissions_of(store, tenant, roles).await?, "these roles")
}

fn check_permissions(issues: &mut Vec<FieldIssue>, permissions: &[Permission]) {
    if permissions.is_empty() {
        issues.push(FieldIssue::new("permissions", "must name at least one permission"));
    }
    for (i, p) in permissions.iter().enumerate() {
        if !Permission::TENANT.contains(p) {
            issues
                .push(FieldIssue::new(format!("permissions[{i}]"), format!("'{p}' cannot be granted inside a tenant")));
        }
    }
}

fn role_not_found(name: &str) -> AppError {
    AppError::NotFound(format!("role '{name}' does not exist"))
}

#[derive(Clone)]
pub struct RoleService {
    store: Arc<dyn Store>,
}

impl RoleService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    pub async fn list(&self, tenant: &TenantId) -> AppResult<Vec<Role>> {
        let mut roles: Vec<Role> = BUILTIN_ROLES
            .iter()
            .map(|name| Role {
                name: name.to_string(),
                description: format!("Built-in {name} role"),
                permissions: builtin_role(name).expect("built-in").into_iter().collect(),
                builtin: true,
            })
            .collect();
        for item in self.store.query_all(&keys::tenant_pk(tenant), keys::ROLE_PREFIX).await? {
            roles.push(decode_at(&item.pk, &item.sk, item.data)?);
        }
        Ok(roles)
    }

    pub async fn create(&self, principal: &Principal, actor: &Actor, new: NewRole) -> AppResult<Role> {
        let tenant = principal.tenant()?;
        let mut issues = Vec::new();
        if let Err(e) = check_role_name(&new.name, "name") {
            issues.extend(e.0);
        }
        check_permissions(&mut issues, &new.permissions);
        if !issues.is_empty() {
            return Err(Invalid(issues).into());
        }
        if builtin_role(&new.name).is_some() {
            return Err(AppError::conflict_with(format!("'{}' is a built-in role", new.name), "name", json!(new.name)));
        }
        let permissions: BTreeSet<Permission> = new.permissions.into_iter().collect();
        check_within(principal, &permissions, "this role")?;
        let role = Role {
            name: new.name,
            description: new.description,
            permissions: permissions.into_iter().collect(),
            builtin: false,
        };
        let writes = vec![
            Write::create(keys::tenant_pk(tenant), keys::role_sk(&role.name), &role),
            audit::record(actor, Some(tenant), Change::new("role.create", format!("role:{}", role.name)).after(&role)),
        ];
        match self.store.transact(writes).await {
            Ok(()) => Ok(role),
            Err(StoreError::ConditionFailed { .. }) => {
                Err(AppError::conflict_with(format!("role '{}' already exists", role.name), "name", json!(role.name)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Changes a custom role; the caller must hold every permission it ends up with. Users
    /// holding the role get the new permissions on their next request (within the
    /// revocation bound).
    pub async fn update(
        &self,
        principal: &Principal,
        actor: &Actor,
        name: &str,
        update: RoleUpdate,
    ) -> AppResult<Role> {
        let tenant = principal.tenant()?;
        if builtin_role(name).is_some() {
            return Err(AppError::conflict(format!("'{name}' is a built-in role and cannot change")));
        }
        let mut issues = Vec::new();
        if let Some(permissions) = &update.permissions {
            check_permissions(&mut issues, permissions);
        }
        if !issues.is_empty() {
            return Err(Invalid(issues).into());
        }
        let pk = keys::tenant_pk(tenant);
        let sk = keys::role_sk(name);
        optimistic("the role is changing concurrently; retry", || async {
            let item = self.store.get(&pk, &sk).await?.ok_or_else(|| role_not_found(name))?;
            let version = item.version;
            let before: Role = decode_at(&item.pk, &item.sk, item.data)?;
            let held: Permissions = before.permissions.iter().copied().collect();
            check_within(principal, &held, "changing this role")?;
            let mut role = before.clone();
            if let Some(permissions) = &update.permissions {
                let permissions: BTreeSet<Permission> = permissions.iter().copied().collect();
                check_within(principal, &permissions, "this role")?;
                role.permissions = permissions.into_iter().collect();
            }
            if let Some(description) = &update.description {
                role.description = description.clone();
            }
            let change = Change::new("role.update", format!("role:{name}")).before(&before).after(&role);
            let writes = vec![
                Write::replace(pk.clone(), sk.clone(), version, &role),
                audit::record(actor, Some(tenant), change),
            ];
            Ok(committed(self.store.transact(writes).await)?.map(|()| role))
        })
        .await
    }

    pub fn permissions() -> Vec<PermissionInfo> {
        Permission::TENANT
            .iter()
            .map(|p| PermissionInfo { name: *p, description: p.description().to_string() })
            .collect()
    }
}

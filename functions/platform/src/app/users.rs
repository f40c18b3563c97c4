//! Users, roles, permissions, teams and API keys of a tenant.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit::{self, Actor, Change};
use super::auth::AuthService;
use super::credentials::{hash_password, random_secret, sha256_hex};
use super::error::{AppError, AppResult};
use super::keys;
use super::page::{page_of, Listed, PageRequest};
use super::principal::{Authenticator, Principal, Subject, API_KEY_PREFIX};
use crate::domain::access::{builtin_role, Permission, Permissions, BUILTIN_ROLES};
use crate::domain::identity::{
    check_name, check_password, check_role_name, parse_email, ApiKey, Role, Team, User, UserStatus,
};
use crate::domain::ids::TenantId;
use crate::domain::invalid::{FieldIssue, Invalid};
use crate::domain::time::now_rfc3339;
use crate::ports::store::{Condition, Item, Store, StoreError, Write};

fn unavailable<T>(_: T) -> AppError {
    AppError::Unavailable("stored data is unreadable".to_string())
}

/// A user with the versions of its items and its password hash (never sent out).
#[derive(Clone)]
pub struct UserRecord {
    pub user: User,
    pub user_version: u64,
    pub password_hash: String,
    pub credential_version: u64,
}

impl UserRecord {
    pub fn new(user: User, password_hash: String) -> Self {
        Self { user, user_version: 0, password_hash, credential_version: 0 }
    }

    pub async fn load(store: &dyn Store, tenant: &TenantId, user_id: &str) -> AppResult<Option<UserRecord>> {
        let pk = keys::tenant_pk(tenant);
        let Some(user) = store.get(&pk, &keys::user_sk(user_id)).await? else { return Ok(None) };
        let credential = store.get(&pk, &keys::credential_sk(user_id)).await?;
        Ok(Some(UserRecord {
            user_version: user.version,
            user: serde_json::from_value(user.data).map_err(unavailable)?,
            password_hash: credential.as_ref().and_then(|c| c.data["hash"].as_str()).unwrap_or_default().to_string(),
            credential_version: credential.map_or(0, |c| c.version),
        }))
    }

    /// The user, its credential and its email's uniqueness claim.
    pub fn create_writes(&self, tenant: &TenantId) -> Vec<Write> {
        let pk = keys::tenant_pk(tenant);
        vec![
            Write::create(pk.clone(), keys::user_sk(&self.user.user_id), &self.user),
            Write::Put {
                item: Item::new(
                    pk.clone(),
                    keys::credential_sk(&self.user.user_id),
                    1,
                    json!({"hash": self.password_hash}),
                ),
                condition: Condition::Absent,
            },
            Write::Put {
                item: Item::new(pk, keys::user_email_sk(&self.user.email), 1, json!({"user_id": self.user.user_id})),
                condition: Condition::Absent,
            },
        ]
    }

    pub fn put_user(&self, tenant: &TenantId, user: &User) -> Write {
        Write::replace(keys::tenant_pk(tenant), keys::user_sk(&user.user_id), self.user_version, &user)
    }

    pub fn put_credential(&self, tenant: &TenantId, hash: String) -> Write {
        Write::Put {
            item: Item::new(
                keys::tenant_pk(tenant),
                keys::credential_sk(&self.user.user_id),
                self.credential_version + 1,
                json!({"hash": hash}),
            ),
            condition: Condition::Version(self.credential_version),
        }
    }
}

/// The permissions that a set of roles grants (built-in or the tenant's custom roles).
pub async fn permissions_of(store: &dyn Store, tenant: &TenantId, roles: &[String]) -> AppResult<Permissions> {
    let mut all = Permissions::new();
    for role in roles {
        match builtin_role(role) {
            Some(perms) => all.extend(perms),
            None => {
                if let Some(item) = store.get(&keys::tenant_pk(tenant), &keys::role_sk(role)).await? {
                    let custom: Role = serde_json::from_value(item.data).map_err(unavailable)?;
                    all.extend(custom.permissions);
                }
            }
        }
    }
    Ok(all)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub full_name: String,
    /// Defaults to `["member"]`.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    pub username: Option<String>,
    pub full_name: Option<String>,
    pub roles: Option<Vec<String>>,
    pub status: Option<UserStatus>,
}

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
pub struct NewTeam {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: String,
    /// A subset of the creator's permissions; defaults to all of them.
    #[serde(default)]
    pub scopes: Option<Vec<Permission>>,
    /// RFC 3339; the key stops working then.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// A new API key: the secret is shown here once and never again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub secret: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PermissionInfo {
    pub name: Permission,
    pub description: String,
}

#[derive(Clone)]
pub struct UserService {
    store: Arc<dyn Store>,
    auth: AuthService,
    authn: Authenticator,
}

fn tenant_pk(tenant: &TenantId) -> String {
    keys::tenant_pk(tenant)
}

fn user_not_found(user_id: &str) -> AppError {
    AppError::NotFound(format!("user '{user_id}' does not exist"))
}

impl UserService {
    pub fn new(store: Arc<dyn Store>, auth: AuthService, authn: Authenticator) -> Self {
        Self { store, auth, authn }
    }

    pub async fn list(&self, tenant: &TenantId, page: &PageRequest) -> AppResult<Listed<User>> {
        let pk = tenant_pk(tenant);
        page_of(self.store.as_ref(), &pk, keys::USER_PREFIX, page, false).await
    }

    pub async fn get(&self, tenant: &TenantId, user_id: &str) -> AppResult<UserRecord> {
        UserRecord::load(self.store.as_ref(), tenant, user_id).await?.ok_or_else(|| user_not_found(user_id))
    }

    async fn all_users(&self, tenant: &TenantId) -> AppResult<Vec<(User, u64)>> {
        let items = self.store.query_all(&tenant_pk(tenant), keys::USER_PREFIX).await?;
        items.into_iter().map(|i| Ok((serde_json::from_value(i.data).map_err(unavailable)?, i.version))).collect()
    }

    /// When a change takes an owner away, the remaining owners must stay as they are until
    /// it commits: two owners demoting each other at once cannot leave the tenant without one.
    fn owners_unchanged(tenant: &TenantId, others: &[(User, u64)]) -> Vec<Write> {
        others
            .iter()
            .filter(|(u, _)| Self::is_owner(u))
            .map(|(u, version)| Write::Check {
                pk: tenant_pk(tenant),
                sk: keys::user_sk(&u.user_id),
                condition: Condition::Version(*version),
            })
            .collect()
    }

    /// Roles must exist; only an owner may grant `owner`.
    async fn check_roles(&self, principal: &Principal, tenant: &TenantId, roles: &[String]) -> AppResult<()> {
        let mut issues = Vec::new();
        for (i, role) in roles.iter().enumerate() {
            let exists = builtin_role(role).is_some()
                || self.store.get(&tenant_pk(tenant), &keys::role_sk(role)).await?.is_some();
            if !exists {
                issues.push(FieldIssue::new(format!("roles[{i}]"), format!("'{role}' is not a role of this tenant")));
            }
        }
        if !issues.is_empty() {
            return Err(Invalid(issues).into());
        }
        if roles.iter().any(|r| r == "owner") && !principal.roles.iter().any(|r| r == "owner") {
            return Err(AppError::Forbidden("only an owner can grant the owner role".to_string()));
        }
        Ok(())
    }

    pub async fn create(&self, principal: &Principal, actor: &Actor, new: NewUser) -> AppResult<User> {
        let tenant = principal.tenant()?;
        let mut issues = Vec::new();
        let email = parse_email(&new.email, "email").map_err(|e| issues.extend(e.0)).ok();
        if let Some(email) = &email {
            if let Err(e) = check_password(&new.password, email, "password") {
                issues.extend(e.0);
            }
        }
        if let Some(username) = &new.username {
            check_name(&mut issues, "username", username, 100);
        }
        let Some(email) = email.filter(|_| issues.is_empty()) else { return Err(Invalid(issues).into()) };
        let roles = new.roles.unwrap_or_else(|| vec!["member".to_string()]);
        self.check_roles(principal, tenant, &roles).await?;
        let now = now_rfc3339();
        let user = User {
            user_id: ulid::Ulid::generate().to_string(),
            tenant_id: tenant.clone(),
            username: new.username.unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_string()),
            email: email.clone(),
            full_name: new.full_name,
            roles,
            status: UserStatus::Active,
            email_verified: false,
            created_at: now.clone(),
            updated_at: now,
            last_login_at: None,
        };
        let mut writes = UserRecord::new(user.clone(), hash_password(&new.password)).create_writes(tenant);
        writes.push(audit::record(
            actor,
            Some(tenant),
            Change::new("user.create", format!("user:{}", user.user_id)).after(&user),
        ));
        match self.store.transact(writes).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) => {
                return Err(AppError::conflict_with("a user with this email already exists", "email", json!(email)))
            }
            Err(e) => return Err(e.into()),
        }
        self.auth.request_email_verification(tenant, &user).await?;
        Ok(user)
    }

    fn is_owner(user: &User) -> bool {
        user.status == UserStatus::Active && user.roles.iter().any(|r| r == "owner")
    }

    pub async fn update(
        &self,
        principal: &Principal,
        actor: &Actor,
        user_id: &str,
        update: UserUpdate,
        expected: Option<u64>,
    ) -> AppResult<(User, u64)> {
        let tenant = principal.tenant()?;
        let record = self.get(tenant, user_id).await?;
        if expected.is_some_and(|e| e != record.user_version) {
            return Err(AppError::PreconditionFailed(format!(
                "user '{user_id}' is at version {}",
                record.user_version
            )));
        }
        let mut issues = Vec::new();
        if let Some(v) = &update.username {
            check_name(&mut issues, "username", v, 100);
        }
        if !issues.is_empty() {
            return Err(Invalid(issues).into());
        }
        let before = record.user.clone();
        let target_is_owner = before.roles.iter().any(|r| r == "owner");
        let caller_is_owner = principal.roles.iter().any(|r| r == "owner");
        if target_is_owner && !caller_is_owner && update.status.is_some_and(|s| s != before.status) {
            return Err(AppError::Forbidden("only an owner can disable or enable an owner".to_string()));
        }
        let mut user = record.user.clone();
        if let Some(roles) = update.roles {
            self.check_roles(principal, tenant, &roles).await?;
            let was_owner = user.roles.iter().any(|r| r == "owner");
            if was_owner && !roles.iter().any(|r| r == "owner") && !principal.roles.iter().any(|r| r == "owner") {
                return Err(AppError::Forbidden("only an owner can take the owner role away".to_string()));
            }
            user.roles = roles;
        }
        if let Some(v) = update.username {
            user.username = v;
        }
        if let Some(v) = update.full_name {
            user.full_name = v;
        }
        if let Some(v) = update.status {
            user.status = v;
        }
        let mut others = self.all_users(tenant).await?;
        others.retain(|(u, _)| u.user_id != user.user_id);
        let loses_an_owner = Self::is_owner(&before) && !Self::is_owner(&user);
        if loses_an_owner && !others.iter().any(|(u, _)| Self::is_owner(u)) {
            return Err(AppError::conflict("the tenant must keep at least one active owner"));
        }
        user.updated_at = now_rfc3339();
        let mut writes = vec![record.put_user(tenant, &user)];
        if loses_an_owner {
            writes.extend(Self::owners_unchanged(tenant, &others));
        }
        if user.status == UserStatus::Disabled || user.roles != before.roles {
            self.auth.revoke_all_sessions(tenant, user_id, "account changed by an administrator").await?;
            self.authn.forget_user_keys(user_id);
        }
        writes.push(audit::record(
            actor,
            Some(tenant),
            Change::new("user.update", format!("user:{user_id}")).before(&before).after(&user),
        ));
        self.store.transact(writes).await?;
        Ok((user, record.user_version + 1))
    }

    pub async fn delete(&self, principal: &Principal, actor: &Actor, user_id: &str) -> AppResult<()> {
        let tenant = principal.tenant()?;
        let record = self.get(tenant, user_id).await?;
        if principal.user_id() == Some(user_id) {
            return Err(AppError::conflict("you cannot delete your own account"));
        }
        if record.user.roles.iter().any(|r| r == "owner") && !principal.roles.iter().any(|r| r == "owner") {
            return Err(AppError::Forbidden("only an owner can delete an owner".to_string()));
        }
        let mut others = self.all_users(tenant).await?;
        others.retain(|(u, _)| u.user_id != user_id);
        let loses_an_owner = Self::is_owner(&record.user);
        if loses_an_owner && !others.iter().any(|(u, _)| Self::is_owner(u)) {
            return Err(AppError::conflict("the tenant must keep at least one active owner"));
        }
        let pk = tenant_pk(tenant);
        let mut writes = vec![
            Write::Delete {
                pk: pk.clone(),
                sk: keys::user_sk(user_id),
                condition: Condition::Version(record.user_version),
            },
            Write::Delete { pk: pk.clone(), sk: keys::credential_sk(user_id), condition: Condition::None },
            Write::Delete { pk: pk.clone(), sk: keys::user_email_sk(&record.user.email), condition: Condition::None },
        ];
        if loses_an_owner {
            writes.extend(Self::owners_unchanged(tenant, &others));
        }
        self.auth.revoke_all_sessions(tenant, user_id, "account deleted").await?;
        for item in self.store.query_all(&pk, keys::API_KEY_PREFIX).await? {
            if item.data["user_id"] == user_id && item.data["revoked_at"].is_null() {
                let mut data = item.data.clone();
                data["revoked_at"] = json!(now_rfc3339());
                self.authn.forget_key(data["key_id"].as_str().unwrap_or_default());
                writes.push(Write::Put {
                    item: Item::new(item.pk, item.sk, item.version + 1, data),
                    condition: Condition::Version(item.version),
                });
            }
        }
        for item in self.store.query_all(&pk, keys::TEAM_PREFIX).await? {
            let Ok(mut team) = serde_json::from_value::<Team>(item.data.clone()) else { continue };
            if team.members.iter().any(|m| m == user_id) {
                team.members.retain(|m| m != user_id);
                writes.push(Write::replace(item.pk, item.sk, item.version, &team));
            }
        }
        writes.push(audit::record(
            actor,
            Some(tenant),
            Change::new("user.delete", format!("user:{user_id}")).before(&record.user),
        ));
        self.store.transact(writes).await?;
        Ok(())
    }

    pub async fn roles(&self, tenant: &TenantId) -> AppResult<Vec<Role>> {
        let mut roles: Vec<Role> = BUILTIN_ROLES
            .iter()
            .map(|name| Role {
                name: name.to_string(),
                description: format!("Built-in {name} role"),
                permissions: builtin_role(name).expect("built-in").into_iter().collect(),
                builtin: true,
            })
            .collect();
        for item in self.store.query_all(&tenant_pk(tenant), keys::ROLE_PREFIX).await? {
            roles.push(serde_json::from_value(item.data).map_err(unavailable)?);
        }
        Ok(roles)
    }

    pub async fn create_role(&self, principal: &Principal, actor: &Actor, new: NewRole) -> AppResult<Role> {
        let tenant = principal.tenant()?;
        let mut issues = Vec::new();
        if let Err(e) = check_role_name(&new.name, "name") {
            issues.extend(e.0);
        }
        if new.permissions.is_empty() {
            issues.push(FieldIssue::new("permissions", "must name at least one permission"));
        }
        for (i, p) in new.permissions.iter().enumerate() {
            if !Permission::TENANT.contains(p) {
                issues.push(FieldIssue::new(
                    format!("permissions[{i}]"),
                    format!("'{p}' cannot be granted inside a tenant"),
                ));
            }
        }
        if !issues.is_empty() {
            return Err(Invalid(issues).into());
        }
        if builtin_role(&new.name).is_some() {
            return Err(AppError::conflict_with(format!("'{}' is a built-in role", new.name), "name", json!(new.name)));
        }
        let permissions: BTreeSet<Permission> = new.permissions.into_iter().collect();
        let role = Role {
            name: new.name,
            description: new.description,
            permissions: permissions.into_iter().collect(),
            builtin: false,
        };
        let writes = vec![
            Write::create(tenant_pk(tenant), keys::role_sk(&role.name), &role),
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

    pub fn permissions() -> Vec<PermissionInfo> {
        Permission::TENANT
            .iter()
            .map(|p| PermissionInfo { name: *p, description: p.description().to_string() })
            .collect()
    }

    pub async fn teams(&self, tenant: &TenantId, page: &PageRequest) -> AppResult<Listed<Team>> {
        let pk = tenant_pk(tenant);
        page_of(self.store.as_ref(), &pk, keys::TEAM_PREFIX, page, false).await
    }

    async fn team(&self, tenant: &TenantId, team_id: &str) -> AppResult<(Team, u64)> {
        let item = self
            .store
            .get(&tenant_pk(tenant), &keys::team_sk(team_id))
            .await?
            .ok_or_else(|| AppError::NotFound(format!("team '{team_id}' does not exist")))?;
        let version = item.version;
        Ok((serde_json::from_value(item.data).map_err(unavailable)?, version))
    }

    pub async fn get_team(&self, tenant: &TenantId, team_id: &str) -> AppResult<Team> {
        Ok(self.team(tenant, team_id).await?.0)
    }

    async fn check_members(&self, tenant: &TenantId, members: &[String], field: &str) -> AppResult<()> {
        let mut issues = Vec::new();
        for (i, member) in members.iter().enumerate() {
            if self.store.get(&tenant_pk(tenant), &keys::user_sk(member)).await?.is_none() {
                issues
                    .push(FieldIssue::new(format!("{field}[{i}]"), format!("'{member}' is not a user of this tenant")));
            }
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(Invalid(issues).into())
        }
    }

    pub async fn create_team(&self, principal: &Principal, actor: &Actor, new: NewTeam) -> AppResult<Team> {
        let tenant = principal.tenant()?;
        let mut issues = Vec::new();
        check_name(&mut issues, "name", &new.name, 100);
        if !issues.is_empty() {
            return Err(Invalid(issues).into());
        }
        self.check_members(tenant, &new.members, "members").await?;
        let now = now_rfc3339();
        let mut members = new.members;
        members.sort();
        members.dedup();
        let team = Team {
            team_id: ulid::Ulid::generate().to_string(),
            name: new.name,
            description: new.description,
            members,
            created_at: now.clone(),
            updated_at: now,
        };
        let writes = vec![
            Write::create(tenant_pk(tenant), keys::team_sk(&team.team_id), &team),
            audit::record(
                actor,
                Some(tenant),
                Change::new("team.create", format!("team:{}", team.team_id)).after(&team),
            ),
        ];
        self.store.transact(writes).await?;
        Ok(team)
    }

    /// Adds (`add`) or removes a member, atomically with its audit entry.
    pub async fn change_member(
        &self,
        principal: &Principal,
        actor: &Actor,
        team_id: &str,
        user_id: &str,
        add: bool,
    ) -> AppResult<Team> {
        let tenant = principal.tenant()?;
        if add {
            self.check_members(tenant, &[user_id.to_string()], "user_id")
                .await
                .map_err(|_| AppError::Invalid(Invalid::one("user_id", "is not a user of this tenant")))?;
        }
        for _attempt in 0..5 {
            let (mut team, version) = self.team(tenant, team_id).await?;
            let before = team.clone();
            let present = team.members.iter().any(|m| m == user_id);
            match (add, present) {
                (true, true) => return Ok(team),
                (false, false) => {
                    return Err(AppError::NotFound(format!("user '{user_id}' is not a member of team '{team_id}'")))
                }
                (true, false) => team.members.push(user_id.to_string()),
                (false, true) => team.members.retain(|m| m != user_id),
            }
            team.members.sort();
            team.updated_at = now_rfc3339();
            let action = if add { "team.member.add" } else { "team.member.remove" };
            let writes = vec![
                Write::replace(tenant_pk(tenant), keys::team_sk(team_id), version, &team),
                audit::record(
                    actor,
                    Some(tenant),
                    Change::new(action, format!("team:{team_id}")).before(&before).after(&team),
                ),
            ];
            match self.store.transact(writes).await {
                Ok(()) => return Ok(team),
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::conflict("the team is changing concurrently; retry"))
    }

    pub async fn api_keys(&self, principal: &Principal) -> AppResult<Vec<ApiKey>> {
        let tenant = principal.tenant()?;
        let user_id = principal.user_id().unwrap_or_default();
        let items = self.store.query_all(&tenant_pk(tenant), keys::API_KEY_PREFIX).await?;
        Ok(items
            .into_iter()
            .filter_map(|i| serde_json::from_value::<ApiKey>(i.data).ok())
            .filter(|k| k.user_id == user_id)
            .collect())
    }

    pub async fn create_api_key(
        &self,
        principal: &Principal,
        actor: &Actor,
        new: NewApiKey,
    ) -> AppResult<CreatedApiKey> {
        let tenant = principal.tenant()?;
        let Subject::User { user_id, .. } = &principal.subject else {
            return Err(AppError::Forbidden("API keys are created by signed-in users".to_string()));
        };
        let mut issues = Vec::new();
        check_name(&mut issues, "name", &new.name, 100);
        let scopes: BTreeSet<Permission> = match new.scopes {
            Some(scopes) => {
                for (i, scope) in scopes.iter().enumerate() {
                    if !principal.can(*scope) {
                        issues.push(FieldIssue::new(
                            format!("scopes[{i}]"),
                            format!("'{scope}' is not one of your permissions"),
                        ));
                    }
                }
                scopes.into_iter().collect()
            }
            None => principal.permissions.clone(),
        };
        let mut expires_at = None;
        if let Some(expiry) = &new.expires_at {
            match time::OffsetDateTime::parse(expiry, &time::format_description::well_known::Rfc3339) {
                Ok(at) if at > time::OffsetDateTime::now_utc() => {
                    // Kept in UTC so that it compares with now as text.
                    let utc = at.to_offset(time::UtcOffset::UTC);
                    expires_at = utc.format(&time::format_description::well_known::Rfc3339).ok();
                }
                Ok(_) => issues.push(FieldIssue::new("expires_at", "must be in the future")),
                Err(_) => issues.push(FieldIssue::new("expires_at", "must be an RFC 3339 time")),
            }
        }
        if !issues.is_empty() {
            return Err(Invalid(issues).into());
        }
        let key_id = ulid::Ulid::generate().to_string();
        let secret = format!("{API_KEY_PREFIX}.{tenant}.{key_id}.{}", random_secret());
        let key = ApiKey {
            key_id: key_id.clone(),
            name: new.name,
            prefix: secret.chars().take(API_KEY_PREFIX.len() + tenant.as_str().len() + 10).collect(),
            user_id: user_id.clone(),
            scopes: scopes.into_iter().collect(),
            created_at: now_rfc3339(),
            expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        let mut data = serde_json::to_value(&key).expect("serializes");
        data["hash"] = json!(sha256_hex(&secret));
        let writes = vec![
            Write::Put {
                item: Item::new(tenant_pk(tenant), keys::api_key_sk(&key_id), 1, data),
                condition: Condition::Absent,
            },
            audit::record(actor, Some(tenant), Change::new("api_key.create", format!("api_key:{key_id}")).after(&key)),
        ];
        self.store.transact(writes).await?;
        Ok(CreatedApiKey { key, secret })
    }

    /// Revokes one of the caller's keys (any key for a user administrator).
    pub async fn revoke_api_key(&self, principal: &Principal, actor: &Actor, key_id: &str) -> AppResult<()> {
        let tenant = principal.tenant()?;
        let not_found = || AppError::NotFound(format!("API key '{key_id}' does not exist"));
        let item = self.store.get(&tenant_pk(tenant), &keys::api_key_sk(key_id)).await?.ok_or_else(not_found)?;
        let mine = item.data["user_id"].as_str() == principal.user_id();
        if !mine && !principal.can(Permission::UsersManage) {
            return Err(not_found());
        }
        if item.data["revoked_at"].is_null() {
            let mut data = item.data.clone();
            data["revoked_at"] = json!(now_rfc3339());
            let writes = vec![
                Write::Put {
                    item: Item::new(item.pk, item.sk, item.version + 1, data),
                    condition: Condition::Version(item.version),
                },
                audit::record(actor, Some(tenant), Change::new("api_key.revoke", format!("api_key:{key_id}"))),
            ];
            self.store.transact(writes).await?;
        }
        self.authn.forget_key(key_id);
        Ok(())
    }
}

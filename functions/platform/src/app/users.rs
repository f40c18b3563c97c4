//! The users of a tenant: creating, changing and removing them, under the granting rules
//! of [`roles`](super::roles) and the owner rules (a tenant always keeps an active owner;
//! only owners act on owners; nobody changes their own roles).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::accounts::{is_owner, permissions_of, UserRecord};
use super::api_keys::revoke_write;
use super::audit::{self, Actor, Change};
use super::credentials::hash_password;
use super::error::{AppError, AppResult};
use super::keys;
use super::page::{page_of, Listed, PageRequest};
use super::principal::{Authenticator, Principal};
use super::recovery::RecoveryService;
use super::roles::{check_grant, check_within};
use super::stored::{committed, decode_at, optimistic, Step};
use crate::domain::access::OWNER_ROLE;
use crate::domain::identity::{check_name, check_password, parse_email, Team, User, UserStatus};
use crate::domain::ids::TenantId;
use crate::domain::invalid::Invalid;
use crate::domain::time::now_rfc3339;
use crate::ports::store::{Condition, Store, StoreError, Write, MAX_TRANSACTION_WRITES};

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

/// Writes per cleanup transaction when removing a user (below DynamoDB's 100).
const CLEANUP_CHUNK: usize = 50;

#[derive(Clone)]
pub struct UserService {
    store: Arc<dyn Store>,
    authn: Authenticator,
    recovery: RecoveryService,
}

fn user_not_found(user_id: &str) -> AppError {
    AppError::NotFound(format!("user '{user_id}' does not exist"))
}

impl UserService {
    pub fn new(store: Arc<dyn Store>, authn: Authenticator, recovery: RecoveryService) -> Self {
        Self { store, authn, recovery }
    }

    pub async fn list(&self, tenant: &TenantId, page: &PageRequest) -> AppResult<Listed<User>> {
        page_of(self.store.as_ref(), &keys::tenant_pk(tenant), keys::USER_PREFIX, page, false).await
    }

    pub async fn get(&self, tenant: &TenantId, user_id: &str) -> AppResult<UserRecord> {
        UserRecord::load(self.store.as_ref(), tenant, user_id).await?.ok_or_else(|| user_not_found(user_id))
    }

    async fn all_users(&self, tenant: &TenantId) -> AppResult<Vec<(User, u64)>> {
        let items = self.store.query_all(&keys::tenant_pk(tenant), keys::USER_PREFIX).await?;
        items.into_iter().map(|i| Ok((decode_at(&i.pk, &i.sk, i.data)?, i.version))).collect()
    }

    /// When a change takes an owner away, the remaining owners must stay as they are until
    /// it commits: two owners demoting each other at once cannot leave the tenant without one.
    async fn keep_an_owner(&self, tenant: &TenantId, user_id: &str) -> AppResult<Vec<Write>> {
        let mut others = self.all_users(tenant).await?;
        others.retain(|(u, _)| u.user_id != user_id && is_owner(u));
        if others.is_empty() {
            return Err(AppError::conflict("the tenant must keep at least one active owner"));
        }
        Ok(others
            .iter()
            .map(|(u, version)| Write::Check {
                pk: keys::tenant_pk(tenant),
                sk: keys::user_sk(&u.user_id),
                condition: Condition::Version(*version),
            })
            .collect())
    }

    /// Nobody manages a user who holds permissions they do not hold themselves, and only
    /// owners manage owners.
    async fn check_manageable(&self, principal: &Principal, tenant: &TenantId, target: &User) -> AppResult<()> {
        if target.roles.iter().any(|r| r == OWNER_ROLE) && !principal.is_owner() {
            return Err(AppError::Forbidden("only an owner can change or remove an owner".to_string()));
        }
        let held = permissions_of(self.store.as_ref(), tenant, &target.roles).await?;
        check_within(principal, &held, "managing this user").map_err(|_| {
            AppError::Forbidden("this user holds permissions you do not hold; you cannot manage them".to_string())
        })
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
        check_grant(self.store.as_ref(), principal, tenant, &roles).await?;
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
        let mut writes = UserRecord::new(user.clone(), hash_password(&new.password).await).create_writes(tenant);
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
        self.recovery.request_email_verification(tenant, &user).await?;
        Ok(user)
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
        let myself = principal.user_id() == Some(user_id);
        let roles_change = update.roles.as_ref().is_some_and(|r| *r != before.roles);
        let status_change = update.status.is_some_and(|s| s != before.status);
        if myself && roles_change {
            return Err(AppError::Forbidden("you cannot change your own roles".to_string()));
        }
        if myself && status_change {
            return Err(AppError::Forbidden("you cannot disable or enable your own account".to_string()));
        }
        if !myself {
            self.check_manageable(principal, tenant, &before).await?;
        }
        let mut user = record.user.clone();
        if let Some(roles) = update.roles.filter(|_| roles_change) {
            check_grant(self.store.as_ref(), principal, tenant, &roles).await?;
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
        user.updated_at = now_rfc3339();
        let mut access = record.access.clone();
        if user.status == UserStatus::Disabled && before.status != UserStatus::Disabled {
            access.end_everything();
        }
        let mut writes = vec![record.put(tenant, &user, &access)];
        if is_owner(&before) && !is_owner(&user) {
            writes.extend(self.keep_an_owner(tenant, user_id).await?);
        }
        writes.push(audit::record(
            actor,
            Some(tenant),
            Change::new("user.update", format!("user:{user_id}")).before(&before).after(&user),
        ));
        self.store.transact(writes).await?;
        self.authn.forget_user(tenant, user_id);
        Ok((user, record.user_version + 1))
    }

    /// Removes a user: their keys are revoked and their team memberships removed in
    /// chunks first (any number of them, and safe to repeat after a failure), then the
    /// account itself goes in one transaction with its audit entry.
    pub async fn delete(&self, principal: &Principal, actor: &Actor, user_id: &str) -> AppResult<()> {
        let tenant = principal.tenant()?;
        let record = self.get(tenant, user_id).await?;
        if principal.user_id() == Some(user_id) {
            return Err(AppError::conflict("you cannot delete your own account"));
        }
        self.check_manageable(principal, tenant, &record.user).await?;
        if is_owner(&record.user) {
            self.keep_an_owner(tenant, user_id).await?;
        }
        self.revoke_keys_of(tenant, user_id).await?;
        self.leave_teams(tenant, user_id).await?;
        let pk = keys::tenant_pk(tenant);
        let mut writes = vec![
            Write::Delete {
                pk: pk.clone(),
                sk: keys::user_sk(user_id),
                condition: Condition::Version(record.user_version),
            },
            Write::Delete { pk: pk.clone(), sk: keys::credential_sk(user_id), condition: Condition::None },
            Write::Delete { pk: pk.clone(), sk: keys::user_email_sk(&record.user.email), condition: Condition::None },
        ];
        if is_owner(&record.user) {
            writes.extend(self.keep_an_owner(tenant, user_id).await?);
        }
        writes.push(audit::record(
            actor,
            Some(tenant),
            Change::new("user.delete", format!("user:{user_id}")).before(&record.user),
        ));
        if writes.len() > MAX_TRANSACTION_WRITES {
            return Err(AppError::conflict("too many owners changing at once; retry"));
        }
        self.store.transact(writes).await?;
        self.authn.forget_user(tenant, user_id);
        Ok(())
    }

    /// Revokes every live key of the user, a chunk per transaction, until none is left.
    async fn revoke_keys_of(&self, tenant: &TenantId, user_id: &str) -> AppResult<()> {
        let pk = keys::tenant_pk(tenant);
        optimistic("the user's keys are changing concurrently; retry", || async {
            let items = self.store.query_all(&pk, keys::API_KEY_PREFIX).await?;
            let mine: Vec<_> = items.iter().filter(|i| i.data["user_id"] == user_id).collect();
            for item in &mine {
                self.authn.forget_key(tenant, item.data["key_id"].as_str().unwrap_or_default());
            }
            let writes: Vec<Write> = mine.into_iter().filter_map(revoke_write).collect();
            for chunk in writes.chunks(CLEANUP_CHUNK) {
                if let Step::Retry = committed(self.store.transact(chunk.to_vec()).await)? {
                    return Ok(Step::Retry);
                }
            }
            Ok(Step::Done(()))
        })
        .await
    }

    /// Takes the user out of every team, a chunk per transaction.
    async fn leave_teams(&self, tenant: &TenantId, user_id: &str) -> AppResult<()> {
        let pk = keys::tenant_pk(tenant);
        optimistic("the user's teams are changing concurrently; retry", || async {
            let mut writes = Vec::new();
            for item in self.store.query_all(&pk, keys::TEAM_PREFIX).await? {
                let version = item.version;
                let (ipk, isk) = (item.pk.clone(), item.sk.clone());
                let mut team: Team = decode_at(&item.pk, &item.sk, item.data)?;
                if team.members.iter().any(|m| m == user_id) {
                    team.members.retain(|m| m != user_id);
                    team.updated_at = now_rfc3339();
                    writes.push(Write::replace(ipk, isk, version, &team));
                }
            }
            for chunk in writes.chunks(CLEANUP_CHUNK) {
                if let Step::Retry = committed(self.store.transact(chunk.to_vec()).await)? {
                    return Ok(Step::Retry);
                }
            }
            Ok(Step::Done(()))
        })
        .await
    }
}

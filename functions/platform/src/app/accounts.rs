//! User accounts as stored: the user, its password credential, its email claim, and the
//! access state that decides whether its tokens still work; and what a set of roles permits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error::AppResult;
use super::keys;
use super::stored::decode_at;
use crate::domain::access::{builtin_role, Permissions, OWNER_ROLE};
use crate::domain::identity::{Role, User, UserStatus};
use crate::domain::ids::TenantId;
use crate::domain::time::unix_now;
use crate::ports::store::{Condition, Item, Store, Write};

/// What decides whether a user's tokens still work. It lives in the user item, so one
/// (cached) read per request answers it along with the user's current roles and status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessState {
    /// Bumped when every token of the user must stop working at once (password change or
    /// reset, disabling, "sign out everywhere"): tokens and sessions carry the generation
    /// they were issued in, so no per-session race can leave one alive.
    #[serde(default)]
    pub generation: u64,
    /// Sessions revoked one at a time (sign-out, session revoke, refresh-token reuse) ->
    /// when their last access token expires anyway (epoch seconds); pruned after that.
    #[serde(default)]
    pub revoked_sessions: BTreeMap<String, u64>,
}

impl AccessState {
    /// Ends every token and session of the user.
    pub fn end_everything(&mut self) {
        self.generation += 1;
        self.revoked_sessions.clear();
    }

    /// Ends one session's access tokens; `until` is when they would have expired anyway.
    pub fn end_session(&mut self, session_id: &str, until: u64) {
        let now = unix_now();
        self.revoked_sessions.retain(|_, expiry| *expiry > now);
        self.revoked_sessions.insert(session_id.to_string(), until);
    }

    pub fn session_ended(&self, session_id: &str) -> bool {
        self.revoked_sessions.contains_key(session_id)
    }
}

/// The user item's body: the user as the API shows it, plus its access state (read back
/// by [`StoredUser::split`]).
#[derive(Serialize)]
struct StoredUser {
    #[serde(flatten)]
    user: User,
    #[serde(default)]
    access: AccessState,
}

impl StoredUser {
    /// The user and its access state from a stored body, decoded apart: `#[serde(flatten)]`
    /// buffers the whole body before decoding the user, which perf showed on every
    /// authenticated request.
    fn split(pk: &str, sk: &str, mut data: Value) -> AppResult<(User, AccessState)> {
        let access = match data.as_object_mut().and_then(|body| body.remove("access")) {
            Some(access) => decode_at(pk, sk, access)?,
            None => AccessState::default(),
        };
        Ok((decode_at(pk, sk, data)?, access))
    }
}

/// A user with the versions of its items and its password hash (never sent out).
#[derive(Clone)]
pub struct UserRecord {
    pub user: User,
    pub access: AccessState,
    pub user_version: u64,
    pub password_hash: String,
    pub credential_version: u64,
}

impl UserRecord {
    pub fn new(user: User, password_hash: String) -> Self {
        Self { user, access: AccessState::default(), user_version: 0, password_hash, credential_version: 0 }
    }

    /// The user item alone (no credential): what authenticating a request needs.
    pub async fn load_user(
        store: &dyn Store,
        tenant: &TenantId,
        user_id: &str,
    ) -> AppResult<Option<(User, AccessState, u64)>> {
        let Some(item) = store.get(&keys::tenant_pk(tenant), &keys::user_sk(user_id)).await? else { return Ok(None) };
        let (user, access) = StoredUser::split(&item.pk, &item.sk, item.data)?;
        Ok(Some((user, access, item.version)))
    }

    pub async fn load(store: &dyn Store, tenant: &TenantId, user_id: &str) -> AppResult<Option<UserRecord>> {
        let Some((user, access, user_version)) = Self::load_user(store, tenant, user_id).await? else {
            return Ok(None);
        };
        let credential = store.get(&keys::tenant_pk(tenant), &keys::credential_sk(user_id)).await?;
        Ok(Some(UserRecord {
            user,
            access,
            user_version,
            password_hash: credential.as_ref().and_then(|c| c.data["hash"].as_str()).unwrap_or_default().to_string(),
            credential_version: credential.map_or(0, |c| c.version),
        }))
    }

    /// The account of an email address, if any.
    pub async fn by_email(store: &dyn Store, tenant: &TenantId, email: &str) -> AppResult<Option<UserRecord>> {
        let pk = keys::tenant_pk(tenant);
        let Some(pointer) = store.get(&pk, &keys::user_email_sk(email)).await? else { return Ok(None) };
        let user_id = pointer.data["user_id"].as_str().unwrap_or_default().to_string();
        Self::load(store, tenant, &user_id).await
    }

    pub fn is_active(&self) -> bool {
        self.user.status == UserStatus::Active
    }

    /// The user, its credential and its email's uniqueness claim.
    pub fn create_writes(&self, tenant: &TenantId) -> Vec<Write> {
        let pk = keys::tenant_pk(tenant);
        let stored = StoredUser { user: self.user.clone(), access: self.access.clone() };
        vec![
            Write::create(pk.clone(), keys::user_sk(&self.user.user_id), &stored),
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

    /// Replaces the user item (conditional on the version read) with `user` and `access`.
    pub fn put(&self, tenant: &TenantId, user: &User, access: &AccessState) -> Write {
        let stored = StoredUser { user: user.clone(), access: access.clone() };
        Write::replace(keys::tenant_pk(tenant), keys::user_sk(&user.user_id), self.user_version, &stored)
    }

    /// Replaces the user item, keeping its access state.
    pub fn put_user(&self, tenant: &TenantId, user: &User) -> Write {
        self.put(tenant, user, &self.access)
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

pub fn is_owner(user: &User) -> bool {
    user.status == UserStatus::Active && user.roles.iter().any(|r| r == OWNER_ROLE)
}

/// The permissions that a set of roles grants (built-in or the tenant's custom roles).
pub async fn permissions_of(store: &dyn Store, tenant: &TenantId, roles: &[String]) -> AppResult<Permissions> {
    let mut all = Permissions::new();
    for role in roles {
        match builtin_role(role) {
            Some(perms) => all.extend(perms),
            None => {
                if let Some(item) = store.get(&keys::tenant_pk(tenant), &keys::role_sk(role)).await? {
                    let custom: Role = decode_at(&item.pk, &item.sk, item.data)?;
                    all.extend(custom.permissions);
                }
            }
        }
    }
    Ok(all)
}

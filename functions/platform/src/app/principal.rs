//! The verified caller, and how a bearer credential becomes one. Access tokens are
//! verified locally (no store read); API keys are looked up by id and checked by hash,
//! with a short in-memory cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::audit::Actor;
use super::credentials::{same_digest, sha256_hex, unix_now, TokenSigner};
use super::error::{AppError, AppResult};
use super::keys;
use crate::domain::access::{Permission, Permissions};
use crate::domain::identity::ApiKey;
use crate::domain::ids::TenantId;
use crate::domain::time::now_rfc3339;
use crate::ports::store::{Condition, Item, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    User { user_id: String, email: String, username: String, session_id: String },
    ApiKey { key_id: String, user_id: String },
    PlatformAdmin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `None` only for the platform administrator.
    pub tenant: Option<TenantId>,
    pub subject: Subject,
    pub roles: Vec<String>,
    pub permissions: Permissions,
}

impl Principal {
    pub fn platform_admin() -> Self {
        let mut permissions: Permissions = Permission::TENANT.into_iter().collect();
        permissions.insert(Permission::CatalogManage);
        Self { tenant: None, subject: Subject::PlatformAdmin, roles: Vec::new(), permissions }
    }

    pub fn can(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    /// The tenant acted on; the platform administrator has none.
    pub fn tenant(&self) -> AppResult<&TenantId> {
        self.tenant.as_ref().ok_or_else(|| {
            AppError::Forbidden("the platform administrator acts on the catalog and tenants, not inside one".into())
        })
    }

    /// The user behind the credential (the key's creator for an API key).
    pub fn user_id(&self) -> Option<&str> {
        match &self.subject {
            Subject::User { user_id, .. } | Subject::ApiKey { user_id, .. } => Some(user_id),
            Subject::PlatformAdmin => None,
        }
    }

    pub fn actor(&self, request_id: &str) -> Actor {
        let (id, email) = match &self.subject {
            Subject::User { user_id, email, .. } => (format!("user:{user_id}"), Some(email.clone())),
            Subject::ApiKey { key_id, .. } => (format!("api_key:{key_id}"), None),
            Subject::PlatformAdmin => ("platform_admin".to_string(), None),
        };
        Actor { id, email, request_id: request_id.to_string() }
    }
}

/// Prefix of every API key; the rest is `<tenant>.<key_id>.<secret>`.
pub const API_KEY_PREFIX: &str = "bpk";
const KEY_CACHE_TTL: Duration = Duration::from_secs(60);

/// Turns bearer credentials into principals.
#[derive(Clone)]
pub struct Authenticator {
    store: Arc<dyn Store>,
    signer: TokenSigner,
    platform_admin_token: Option<String>,
    /// Sessions revoked by this process, until their access tokens expire.
    revoked_sessions: Arc<Mutex<HashMap<String, u64>>>,
    /// Verified API keys by digest: the principal, when it was checked, and its expiry.
    keys: Arc<Mutex<HashMap<String, CachedKey>>>,
}

#[derive(Clone)]
struct CachedKey {
    principal: Principal,
    checked: Instant,
    expires_at: Option<String>,
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>, signer: TokenSigner, platform_admin_token: Option<String>) -> Self {
        Self {
            store,
            signer,
            platform_admin_token: platform_admin_token.filter(|t| !t.is_empty()),
            revoked_sessions: Arc::default(),
            keys: Arc::default(),
        }
    }

    pub fn signer(&self) -> &TokenSigner {
        &self.signer
    }

    /// Access tokens of this session stop working here at once (and everywhere within
    /// their short lifetime, since refreshing is refused).
    pub fn forget_session(&self, session_id: &str) {
        let until = unix_now() + self.signer.access_ttl_seconds + 60;
        let mut revoked = self.revoked_sessions.lock().expect("lock");
        let now = unix_now();
        revoked.retain(|_, expiry| *expiry > now);
        revoked.insert(session_id.to_string(), until);
    }

    /// Drops cached API keys so a revocation takes effect at once in this process.
    pub fn forget_key(&self, key_id: &str) {
        self.keys
            .lock()
            .expect("lock")
            .retain(|_, c| !matches!(&c.principal.subject, Subject::ApiKey { key_id: k, .. } if k == key_id));
    }

    /// Drops every cached API key of a user (their status or roles changed).
    pub fn forget_user_keys(&self, user_id: &str) {
        self.keys
            .lock()
            .expect("lock")
            .retain(|_, c| !matches!(&c.principal.subject, Subject::ApiKey { user_id: u, .. } if u == user_id));
    }

    /// `None`: the credential is not valid (the caller gets a generic 401).
    pub async fn authenticate(&self, bearer: &str) -> AppResult<Option<Principal>> {
        if let Some(expected) = &self.platform_admin_token {
            if same_digest(&sha256_hex(bearer), &sha256_hex(expected)) {
                return Ok(Some(Principal::platform_admin()));
            }
        }
        if bearer.starts_with(&format!("{API_KEY_PREFIX}.")) {
            return self.api_key(bearer).await;
        }
        let Some(claims) = self.signer.verify(bearer) else { return Ok(None) };
        if self.revoked_sessions.lock().expect("lock").contains_key(&claims.sid) {
            return Ok(None);
        }
        let Ok(tenant) = TenantId::parse(&claims.tenant_id) else { return Ok(None) };
        Ok(Some(Principal {
            tenant: Some(tenant),
            subject: Subject::User {
                user_id: claims.sub,
                email: claims.email,
                username: claims.username,
                session_id: claims.sid,
            },
            roles: claims.roles,
            permissions: claims.perms.into_iter().collect(),
        }))
    }

    async fn api_key(&self, presented: &str) -> AppResult<Option<Principal>> {
        let digest = sha256_hex(presented);
        if let Some(cached) = self.keys.lock().expect("lock").get(&digest) {
            let expired = cached.expires_at.as_deref().is_some_and(|e| e <= now_rfc3339().as_str());
            if cached.checked.elapsed() < KEY_CACHE_TTL && !expired {
                return Ok(Some(cached.principal.clone()));
            }
        }
        let mut parts = presented.splitn(4, '.');
        let (Some(_), Some(tenant), Some(key_id), Some(_secret)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        let Ok(tenant) = TenantId::parse(tenant) else { return Ok(None) };
        let Some(item) = self.store.get(&keys::tenant_pk(&tenant), &keys::api_key_sk(key_id)).await? else {
            return Ok(None);
        };
        let version = item.version;
        let Some(hash) = item.data.get("hash").and_then(|h| h.as_str()).map(str::to_string) else { return Ok(None) };
        let Ok(mut key) = serde_json::from_value::<ApiKey>(item.data.clone()) else { return Ok(None) };
        let expired = key.expires_at.as_deref().is_some_and(|e| e <= now_rfc3339().as_str());
        if !same_digest(&hash, &digest) || key.revoked_at.is_some() || expired {
            return Ok(None);
        }
        // The key acts for its creator as they are now: not at all once disabled, and never
        // beyond their current roles.
        let Some(user_item) = self.store.get(&keys::tenant_pk(&tenant), &keys::user_sk(&key.user_id)).await? else {
            return Ok(None);
        };
        let Ok(user) = serde_json::from_value::<crate::domain::identity::User>(user_item.data) else { return Ok(None) };
        if user.status != crate::domain::identity::UserStatus::Active {
            return Ok(None);
        }
        let allowed = super::users::permissions_of(self.store.as_ref(), &tenant, &user.roles).await?;
        key.scopes.retain(|scope| allowed.contains(scope));
        // Record use (at most once per cache period per process).
        let mut stored: ApiKey = serde_json::from_value(item.data.clone()).unwrap_or_else(|_| key.clone());
        stored.last_used_at = Some(now_rfc3339());
        let mut data = serde_json::to_value(&stored).expect("keys serialize");
        data["hash"] = serde_json::Value::String(hash);
        let touched = Item::new(keys::tenant_pk(&tenant), keys::api_key_sk(key_id), version + 1, data);
        if let Err(e) = self.store.put(touched, Condition::Version(version)).await {
            tracing::debug!(error = %e, "could not record API key use");
        }
        let principal = Principal {
            tenant: Some(tenant),
            subject: Subject::ApiKey { key_id: key.key_id, user_id: key.user_id },
            roles: Vec::new(),
            permissions: key.scopes.into_iter().collect(),
        };
        let cached = CachedKey { principal: principal.clone(), checked: Instant::now(), expires_at: key.expires_at };
        self.keys.lock().expect("lock").insert(digest, cached);
        Ok(Some(principal))
    }
}

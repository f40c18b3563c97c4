//! The verified caller, and how a bearer credential becomes one.
//!
//! Access tokens are verified by signature and expiry, then checked against the user's
//! current state: the token's generation and session must still be valid, the user active,
//! and the permissions are those of the user's roles *now*, not the ones in the token. API
//! keys are looked up by id and checked by hash. Both checks read through one per-process
//! cache that holds an answer at most [`REVOCATION_BOUND`]: a sign-out, password change,
//! demotion, disabling or key revocation made by any process takes effect everywhere
//! within that bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::accounts::{permissions_of, AccessState, UserRecord};
use super::audit::Actor;
use super::credentials::{same_digest, sha256, sha256_hex, AccessClaims, TokenSigner};
use super::error::{AppError, AppResult};
use super::keys;
use super::stored::decode_at;
use crate::domain::access::{Permission, Permissions, OWNER_ROLE};
use crate::domain::identity::{ApiKey, UserStatus};
use crate::domain::ids::TenantId;
use crate::domain::time::{now_rfc3339, unix_now};
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
    /// The current roles of the user behind the credential (the key's creator for a key).
    pub roles: Vec<String>,
    pub permissions: Permissions,
}

impl Principal {
    pub fn platform_admin() -> Self {
        let mut permissions: Permissions = Permission::TENANT.into_iter().collect();
        permissions.insert(Permission::CatalogManage);
        permissions.insert(Permission::PlatformOperate);
        Self { tenant: None, subject: Subject::PlatformAdmin, roles: Vec::new(), permissions }
    }

    pub fn can(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    pub fn is_owner(&self) -> bool {
        self.roles.iter().any(|r| r == OWNER_ROLE)
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
        Actor { id, email, request_id: request_id.to_string(), client_request_id: None }
    }
}

/// Prefix of every API key; the rest is `<tenant>.<key_id>.<secret>`.
pub const API_KEY_PREFIX: &str = "bpk";
/// How long a process may act on what it last read of a user or key: the upper bound on
/// how late a revocation made elsewhere takes effect here.
pub const REVOCATION_BOUND: Duration = Duration::from_secs(5);
/// Entries beyond which the caches drop what has gone stale.
const CACHE_LIMIT: usize = 10_000;

/// A user as authentication needs them, read at most [`REVOCATION_BOUND`] ago.
#[derive(Clone)]
struct Account {
    email: String,
    username: String,
    status: UserStatus,
    roles: Vec<String>,
    permissions: Permissions,
    access: AccessState,
}

/// A stored API key as authentication needs it.
#[derive(Clone)]
struct Key {
    key: ApiKey,
    hash: String,
    version: u64,
    data: serde_json::Value,
}

/// When an answer was read (as an instant and in epoch seconds), and the answer.
type Cached<V> = (Instant, u64, Option<V>);

/// A small time-bounded cache; `None` answers (no such user or key) are cached too.
struct Fresh<V> {
    entries: Mutex<HashMap<String, Cached<V>, foldhash::fast::RandomState>>,
}

impl<V: Clone> Fresh<V> {
    fn new() -> Self {
        Self { entries: Mutex::new(HashMap::default()) }
    }

    /// What was read less than [`REVOCATION_BOUND`] ago, and after epoch second `after`
    /// (a credential issued later than the read must not be judged by it).
    fn get(&self, key: &str, after: u64) -> Option<Option<V>> {
        let entries = self.entries.lock().expect("lock");
        entries
            .get(key)
            .filter(|(at, read_at, _)| at.elapsed() < REVOCATION_BOUND && *read_at > after)
            .map(|(_, _, v)| v.clone())
    }

    fn put(&self, key: String, value: Option<V>) {
        let mut entries = self.entries.lock().expect("lock");
        if entries.len() >= CACHE_LIMIT {
            entries.retain(|_, (at, _, _)| at.elapsed() < REVOCATION_BOUND);
        }
        entries.insert(key, (Instant::now(), unix_now(), value));
    }

    fn forget(&self, key: &str) {
        self.entries.lock().expect("lock").remove(key);
    }
}

/// Turns bearer credentials into principals.
#[derive(Clone)]
pub struct Authenticator {
    store: Arc<dyn Store>,
    /// `None` in processes that take no user tokens (health, automation stages).
    signer: Option<TokenSigner>,
    /// The digest of the platform administrator token (compared digest to digest, so the
    /// comparison takes the same time whatever matches; computed once, not per request).
    platform_admin_digest: Option<[u8; 32]>,
    accounts: Arc<Fresh<Account>>,
    keys: Arc<Fresh<Key>>,
    verified: Arc<Verified>,
}

/// Access tokens whose signature this process has checked, by their exact text, with
/// their claims: a token is verified once per process, not on every request (the
/// signature check and two JSON decodes were a sixth of an authenticated request's CPU
/// on the local server, measured with perf). Expiry is still checked at every use;
/// revocation is the account's check, which follows.
struct Verified {
    tokens: Mutex<HashMap<String, AccessClaims, foldhash::fast::RandomState>>,
}

impl Verified {
    /// The claims of a token verified before, while it has not expired.
    fn known(&self, token: &str) -> Option<AccessClaims> {
        let tokens = self.tokens.lock().expect("lock");
        tokens.get(token).filter(|known| TokenSigner::unexpired(known, unix_now())).cloned()
    }

    /// The claims of a token not verified before: its signature and expiry are checked.
    fn verify(&self, signer: &TokenSigner, token: &str) -> Option<AccessClaims> {
        let now = unix_now();
        let claims = signer.verify(token)?;
        let mut tokens = self.tokens.lock().expect("lock");
        if tokens.len() >= CACHE_LIMIT {
            tokens.retain(|_, claims| TokenSigner::unexpired(claims, now));
            if tokens.len() >= CACHE_LIMIT {
                tokens.clear();
            }
        }
        tokens.insert(token.to_string(), claims.clone());
        Some(claims)
    }
}

fn account_key(tenant: &TenantId, user_id: &str) -> String {
    format!("{tenant}/{user_id}")
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>, signer: Option<TokenSigner>, platform_admin_token: Option<String>) -> Self {
        Self {
            store,
            signer,
            platform_admin_digest: platform_admin_token.filter(|t| !t.is_empty()).map(|t| sha256(&t)),
            accounts: Arc::new(Fresh::new()),
            keys: Arc::new(Fresh::new()),
            verified: Arc::new(Verified { tokens: Mutex::new(HashMap::default()) }),
        }
    }

    /// The access-token signer; processes without one cannot issue tokens.
    pub fn signer(&self) -> AppResult<&TokenSigner> {
        self.signer.as_ref().ok_or_else(|| AppError::Internal("this function does not issue tokens".to_string()))
    }

    /// Drops what this process knows of a user, so a change made here applies here at once
    /// (other processes catch up within [`REVOCATION_BOUND`]).
    pub fn forget_user(&self, tenant: &TenantId, user_id: &str) {
        self.accounts.forget(&account_key(tenant, user_id));
    }

    /// Drops a cached API key, so its revocation applies here at once.
    pub fn forget_key(&self, tenant: &TenantId, key_id: &str) {
        self.keys.forget(&account_key(tenant, key_id));
    }

    /// `None`: the credential is not valid (the caller gets a generic 401).
    pub async fn authenticate(&self, bearer: &str) -> AppResult<Option<Principal>> {
        // An access token this process verified before is not the administrator's (the
        // digest comparison is skipped; nothing about that token is learnt from it).
        let known = self.signer.as_ref().and_then(|_| self.verified.known(bearer));
        let claims = match known {
            Some(claims) => claims,
            None => {
                if let Some(expected) = &self.platform_admin_digest {
                    use subtle::ConstantTimeEq;
                    if bool::from(sha256(bearer).ct_eq(expected)) {
                        return Ok(Some(Principal::platform_admin()));
                    }
                }
                if bearer.strip_prefix(API_KEY_PREFIX).is_some_and(|rest| rest.starts_with('.')) {
                    return self.api_key(bearer).await;
                }
                let Some(claims) = self.signer.as_ref().and_then(|s| self.verified.verify(s, bearer)) else {
                    return Ok(None);
                };
                claims
            }
        };
        let Ok(tenant) = TenantId::parse(&claims.tenant_id) else { return Ok(None) };
        let Some(account) = self.account(&tenant, &claims.sub, claims.iat).await? else { return Ok(None) };
        let valid = account.status == UserStatus::Active
            && account.access.generation == claims.gen
            && !account.access.session_ended(&claims.sid);
        if !valid {
            return Ok(None);
        }
        Ok(Some(Principal {
            tenant: Some(tenant),
            subject: Subject::User {
                user_id: claims.sub,
                email: account.email,
                username: account.username,
                session_id: claims.sid,
            },
            roles: account.roles,
            permissions: account.permissions,
        }))
    }

    /// The user as they are now (read at most [`REVOCATION_BOUND`] ago, and after `after`).
    async fn account(&self, tenant: &TenantId, user_id: &str, after: u64) -> AppResult<Option<Account>> {
        let cache_key = account_key(tenant, user_id);
        if let Some(known) = self.accounts.get(&cache_key, after) {
            return Ok(known);
        }
        let account = match UserRecord::load_user(self.store.as_ref(), tenant, user_id).await? {
            None => None,
            Some((user, access, _)) => {
                let permissions = permissions_of(self.store.as_ref(), tenant, &user.roles).await?;
                Some(Account {
                    email: user.email,
                    username: user.username,
                    status: user.status,
                    roles: user.roles,
                    permissions,
                    access,
                })
            }
        };
        self.accounts.put(cache_key, account.clone());
        Ok(account)
    }

    async fn key(&self, tenant: &TenantId, key_id: &str) -> AppResult<Option<Key>> {
        let cache_key = account_key(tenant, key_id);
        if let Some(known) = self.keys.get(&cache_key, 0) {
            return Ok(known);
        }
        let key = match self.store.get(&keys::tenant_pk(tenant), &keys::api_key_sk(key_id)).await? {
            None => None,
            Some(item) => {
                let hash = item.data["hash"].as_str().unwrap_or_default().to_string();
                let key: ApiKey = decode_at(&item.pk, &item.sk, item.data.clone())?;
                let mut found = Key { key, hash, version: item.version, data: item.data };
                self.record_use(tenant, &mut found).await;
                Some(found)
            }
        };
        self.keys.put(cache_key, key.clone());
        Ok(key)
    }

    /// Records when a key was last used (at most once per cache period per process).
    async fn record_use(&self, tenant: &TenantId, found: &mut Key) {
        if found.key.revoked_at.is_some() {
            return;
        }
        let mut data = found.data.clone();
        data["last_used_at"] = serde_json::Value::String(now_rfc3339());
        let touched =
            Item::new(keys::tenant_pk(tenant), keys::api_key_sk(&found.key.key_id), found.version + 1, data.clone());
        match self.store.put(touched, Condition::Version(found.version)).await {
            Ok(()) => {
                found.version += 1;
                found.data = data;
            }
            Err(e) => tracing::debug!(error = %e, "could not record API key use"),
        }
    }

    async fn api_key(&self, presented: &str) -> AppResult<Option<Principal>> {
        let mut parts = presented.splitn(4, '.');
        let (Some(_), Some(tenant), Some(key_id), Some(_secret)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        let Ok(tenant) = TenantId::parse(tenant) else { return Ok(None) };
        let Some(Key { key, hash, .. }) = self.key(&tenant, key_id).await? else { return Ok(None) };
        let expired = key.expires_at.as_deref().is_some_and(|e| e <= now_rfc3339().as_str());
        if !same_digest(&hash, &sha256_hex(presented)) || key.revoked_at.is_some() || expired {
            return Ok(None);
        }
        // The key acts for its creator as they are now: not at all once disabled, and
        // never beyond their current roles.
        let Some(account) = self.account(&tenant, &key.user_id, 0).await? else { return Ok(None) };
        if account.status != UserStatus::Active {
            return Ok(None);
        }
        let permissions = key.scopes.iter().copied().filter(|scope| account.permissions.contains(scope)).collect();
        Ok(Some(Principal {
            tenant: Some(tenant),
            subject: Subject::ApiKey { key_id: key.key_id, user_id: key.user_id },
            roles: account.roles,
            permissions,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> AccessClaims {
        AccessClaims {
            sub: "u1".into(),
            email: "a@example.com".into(),
            username: "a".into(),
            tenant_id: "acme".into(),
            exp,
            iat: unix_now() - 10,
            jti: "j".into(),
            roles: vec![],
            perms: vec![],
            sid: "s".into(),
            gen: 0,
        }
    }

    fn verified() -> Verified {
        Verified { tokens: Mutex::new(HashMap::default()) }
    }

    #[test]
    fn a_token_is_verified_once_and_its_claims_kept() {
        let signer = TokenSigner::new("a signing key of enough length 0123456789");
        let token = signer.sign(&claims(unix_now() + 60));
        let cache = verified();
        assert!(cache.known(&token).is_none(), "not known before its first check");
        assert_eq!(cache.verify(&signer, &token).map(|c| c.sub), Some("u1".to_string()));
        assert_eq!(cache.tokens.lock().unwrap().len(), 1, "kept after its first check");
        assert_eq!(cache.known(&token).map(|c| c.sub), Some("u1".to_string()), "taken again from what was kept");
    }

    #[test]
    fn a_kept_token_is_refused_once_it_expires() {
        let signer = TokenSigner::new("a signing key of enough length 0123456789");
        let token = signer.sign(&claims(unix_now() + 60));
        let cache = verified();
        assert!(cache.verify(&signer, &token).is_some());
        // The same token text, as kept, now past its expiry and the leeway.
        cache.tokens.lock().unwrap().get_mut(&token).unwrap().exp = unix_now() - 60;
        assert!(cache.known(&token).is_none());
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused_and_not_kept() {
        let signer = TokenSigner::new("a signing key of enough length 0123456789");
        let forged = TokenSigner::new("another key of enough length 0123456789ab").sign(&claims(unix_now() + 60));
        let cache = verified();
        assert!(cache.verify(&signer, &forged).is_none());
        assert!(cache.tokens.lock().unwrap().is_empty());
        assert!(cache.known(&forged).is_none());
    }
}

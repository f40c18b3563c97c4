//! Sign-in and sessions (OWASP session management): opening a session, rotating refresh
//! tokens with reuse detection, signing out one session, changing one's password, and
//! listing what still works.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::accounts::{permissions_of, UserRecord};
use super::audit::{self, Actor, Change, RequestIds};
use super::credentials::{
    hash_password, random_secret, same_digest, sha256_hex, verify_against_nothing, verify_password, AccessClaims,
};
use super::error::{AppError, AppResult};
use super::keys;
use super::principal::{Authenticator, Principal, Subject};
use super::stored::{committed, decode_at, optimistic, Step};
use super::throttle::{address_key, SignInThrottle};
use crate::domain::access::Permission;
use crate::domain::identity::{check_password, parse_email, Session, User};
use crate::domain::ids::TenantId;
use crate::domain::invalid::{FieldIssue, Invalid};
use crate::domain::time::{now_rfc3339, rfc3339_at, unix_now};
use crate::ports::store::{Item, Store, StoreError, Write};

/// A refresh token unused for this long stops working (sliding lifetime).
pub const SESSION_IDLE_SECONDS: u64 = 14 * 24 * 3600;
/// A session ends this long after sign-in, however often it is refreshed (absolute lifetime).
pub const SESSION_ABSOLUTE_SECONDS: u64 = 30 * 24 * 3600;
/// Failed sign-ins stay in the audit trail this long (they are written by anyone).
pub const FAILED_SIGN_IN_RETENTION: u64 = 90 * 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

fn bad_credentials() -> AppError {
    AppError::Unauthorized("invalid email or password".to_string())
}

fn invalid_refresh() -> AppError {
    AppError::Unauthorized("the refresh token is not valid".to_string())
}

/// Who is signing in, as far as the request tells.
pub struct SignIn<'a> {
    pub tenant: &'a TenantId,
    pub email: &'a str,
    pub password: &'a str,
    pub user_agent: Option<String>,
    pub address: Option<IpAddr>,
    pub request: &'a RequestIds,
}

#[derive(Clone)]
pub struct SessionService {
    store: Arc<dyn Store>,
    authn: Authenticator,
    throttle: SignInThrottle,
}

impl SessionService {
    pub fn new(store: Arc<dyn Store>, authn: Authenticator) -> Self {
        let throttle = SignInThrottle::new(store.clone());
        Self { store, authn, throttle }
    }

    /// Signs in. Every failure is the same 401; attempts are counted before the password is
    /// checked, per account and per address, and past a few each waits a growing delay (429).
    pub async fn login(&self, sign_in: SignIn<'_>) -> AppResult<TokenPair> {
        let tenant = sign_in.tenant;
        let email = parse_email(sign_in.email, "email")?;
        let pk = keys::tenant_pk(tenant);
        // An unknown tenant is answered like a wrong password, and writes nothing.
        if self.store.get(&pk, keys::TENANT_PROFILE_SK).await?.is_none() {
            verify_against_nothing(sign_in.password).await;
            return Err(bad_credentials());
        }
        let admitted = self.throttle.admit(tenant, &email, &address_key(sign_in.address)).await?;
        let record = UserRecord::by_email(self.store.as_ref(), tenant, &email).await?;
        let verified = match &record {
            Some(r) => verify_password(sign_in.password, &r.password_hash).await && r.is_active(),
            None => {
                verify_against_nothing(sign_in.password).await;
                false
            }
        };
        let actor = Actor::anonymous(format!("email:{email}"), Some(email.clone()), sign_in.request);
        let Some(record) = record.filter(|_| verified) else {
            let failed = audit::record_outcome(
                &actor,
                Some(tenant),
                Change::new("auth.login", format!("email:{email}")),
                "failed",
            )
            .expiring(unix_now() + FAILED_SIGN_IN_RETENTION);
            if let Err(e) = self.store.transact(vec![failed]).await {
                tracing::warn!(error = %e, "could not record a failed sign-in");
            }
            return Err(bad_credentials());
        };
        let mut writes = vec![SignInThrottle::clear_account(tenant, &email)];
        let mut user = record.user.clone();
        user.last_login_at = Some(now_rfc3339());
        writes.push(record.put_user(tenant, &user));
        let (pair, session) = self.open_session(tenant, &record, sign_in.user_agent).await?;
        writes.push(session);
        let actor = Actor { id: format!("user:{}", user.user_id), ..actor };
        writes.push(audit::record(&actor, Some(tenant), Change::new("auth.login", format!("user:{}", user.user_id))));
        self.store.transact(writes).await.map_err(|e| match e {
            StoreError::ConditionFailed { .. } | StoreError::Conflict => {
                AppError::conflict("concurrent sign-in; retry")
            }
            other => other.into(),
        })?;
        self.throttle.succeeded(tenant, admitted).await;
        Ok(pair)
    }

    /// A new session of the account, in its current token generation: its tokens and the
    /// write that stores it.
    pub async fn open_session(
        &self,
        tenant: &TenantId,
        record: &UserRecord,
        user_agent: Option<String>,
    ) -> AppResult<(TokenPair, Write)> {
        let session_id = ulid::Ulid::generate().to_string();
        let secret = random_secret();
        let now = unix_now();
        let absolute = now + SESSION_ABSOLUTE_SECONDS;
        let session = Session {
            session_id: session_id.clone(),
            user_id: record.user.user_id.clone(),
            created_at: now_rfc3339(),
            last_used_at: now_rfc3339(),
            expires_at: rfc3339_at(now + SESSION_IDLE_SECONDS),
            absolute_expires_at: rfc3339_at(absolute),
            generation: record.access.generation,
            revoked_at: None,
            revoked_reason: None,
            user_agent: user_agent.map(|ua| ua.chars().take(200).collect()),
            refresh_hash: sha256_hex(&secret),
            used_hashes: Vec::new(),
        };
        let pair = self.tokens(tenant, &record.user, record.access.generation, &session_id, &secret).await?;
        let write =
            Write::create(keys::tenant_pk(tenant), keys::session_sk(&record.user.user_id, &session_id), &session)
                .expiring(absolute);
        Ok((pair, write))
    }

    async fn tokens(
        &self,
        tenant: &TenantId,
        user: &User,
        generation: u64,
        session_id: &str,
        secret: &str,
    ) -> AppResult<TokenPair> {
        let permissions = permissions_of(self.store.as_ref(), tenant, &user.roles).await?;
        let signer = self.authn.signer()?;
        let now = unix_now();
        let claims = AccessClaims {
            sub: user.user_id.clone(),
            email: user.email.clone(),
            username: user.username.clone(),
            tenant_id: tenant.to_string(),
            exp: now + signer.access_ttl_seconds,
            iat: now,
            jti: ulid::Ulid::generate().to_string(),
            roles: user.roles.clone(),
            perms: permissions.into_iter().collect(),
            sid: session_id.to_string(),
            gen: generation,
        };
        Ok(TokenPair {
            access_token: signer.sign(&claims),
            refresh_token: format!("rt.{tenant}.{}.{session_id}.{secret}", user.user_id),
            token_type: "bearer".to_string(),
            expires_in: signer.access_ttl_seconds,
        })
    }

    /// Rotates the refresh token. Presenting one that was already rotated away means it
    /// leaked: the whole session is revoked.
    pub async fn refresh(&self, refresh_token: &str, request: &RequestIds) -> AppResult<TokenPair> {
        let parts: Vec<&str> = refresh_token.split('.').collect();
        let ["rt", tenant, user_id, session_id, secret] = parts.as_slice() else { return Err(invalid_refresh()) };
        let tenant = TenantId::parse(tenant).map_err(|_| invalid_refresh())?;
        let pk = keys::tenant_pk(&tenant);
        let sk = keys::session_sk(user_id, session_id);
        let item = self.store.get(&pk, &sk).await?.ok_or_else(invalid_refresh)?;
        let version = item.version;
        let mut session: Session = decode_at(&item.pk, &item.sk, item.data)?;
        let presented = sha256_hex(secret);
        let actor = Actor::anonymous(format!("user:{user_id}"), None, request);
        let now = now_rfc3339();
        let expired = session.expires_at.as_str() <= now.as_str()
            || (!session.absolute_expires_at.is_empty() && session.absolute_expires_at.as_str() <= now.as_str());
        if session.revoked_at.is_some() || expired {
            return Err(invalid_refresh());
        }
        if !same_digest(&presented, &session.refresh_hash) {
            if session.used_hashes.iter().any(|used| same_digest(used, &presented)) {
                self.end_session(&tenant, user_id, session_id, "refresh token reuse", &actor).await?;
            }
            return Err(invalid_refresh());
        }
        let record = UserRecord::load(self.store.as_ref(), &tenant, user_id).await?.ok_or_else(invalid_refresh)?;
        let current = record.is_active()
            && session.generation == record.access.generation
            && !record.access.session_ended(session_id);
        if !current {
            return Err(invalid_refresh());
        }
        let secret = random_secret();
        session.used_hashes.push(std::mem::replace(&mut session.refresh_hash, sha256_hex(&secret)));
        let keep_from = session.used_hashes.len().saturating_sub(50);
        session.used_hashes.drain(..keep_from);
        session.last_used_at = now;
        session.expires_at = rfc3339_at(unix_now() + SESSION_IDLE_SECONDS);
        let pair = self.tokens(&tenant, &record.user, record.access.generation, session_id, &secret).await?;
        let mut put = Item::new(pk, sk, version + 1, serde_json::to_value(&session).expect("serializes"));
        put.ttl = item.ttl;
        match self.store.put(put, crate::ports::store::Condition::Version(version)).await {
            Ok(()) => Ok(pair),
            // Another refresh with the same token won the race: this one is a reuse.
            Err(StoreError::ConditionFailed { .. }) => {
                self.end_session(&tenant, user_id, session_id, "refresh token reuse", &actor).await?;
                Err(invalid_refresh())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Revokes a session of the caller (their current one when `session_id` is `None`).
    pub async fn revoke_session(
        &self,
        principal: &Principal,
        session_id: Option<&str>,
        request: &RequestIds,
    ) -> AppResult<()> {
        let tenant = principal.tenant()?;
        let Subject::User { user_id, session_id: current, .. } = &principal.subject else {
            return Err(AppError::Forbidden("sessions belong to signed-in users".to_string()));
        };
        let session_id = session_id.unwrap_or(current);
        if self.store.get(&keys::tenant_pk(tenant), &keys::session_sk(user_id, session_id)).await?.is_none() {
            return Err(AppError::NotFound("no such session".to_string()));
        }
        let actor = principal.actor(&request.platform).with_client_request_id(request.client.clone());
        self.end_session(tenant, user_id, session_id, "revoked by the user", &actor).await
    }

    /// Ends one session: its access tokens stop working (the user's access state names it)
    /// and its refresh token too, in one transaction with the audit entry. A concurrent
    /// change makes it read again and retry, so a revocation is never lost.
    async fn end_session(
        &self,
        tenant: &TenantId,
        user_id: &str,
        session_id: &str,
        reason: &str,
        actor: &Actor,
    ) -> AppResult<()> {
        let pk = keys::tenant_pk(tenant);
        let sk = keys::session_sk(user_id, session_id);
        let until = unix_now() + self.authn.signer()?.access_ttl_seconds + 60;
        optimistic("the session is changing concurrently; retry", || async {
            let mut writes = Vec::new();
            if let Some(record) = UserRecord::load(self.store.as_ref(), tenant, user_id).await? {
                let mut access = record.access.clone();
                access.end_session(session_id, until);
                writes.push(record.put(tenant, &record.user, &access));
            }
            if let Some(item) = self.store.get(&pk, &sk).await? {
                let version = item.version;
                let ttl = item.ttl;
                let mut session: Session = decode_at(&item.pk, &item.sk, item.data)?;
                if session.revoked_at.is_none() {
                    session.revoked_at = Some(now_rfc3339());
                    session.revoked_reason = Some(reason.to_string());
                    let mut write = Write::replace(pk.clone(), sk.clone(), version, &session);
                    if let Some(ttl) = ttl {
                        write = write.expiring(ttl);
                    }
                    writes.push(write);
                }
            }
            if writes.is_empty() {
                return Ok(Step::Done(()));
            }
            let change =
                Change::new("auth.session.revoke", format!("session:{session_id}")).after(json!({"reason": reason}));
            writes.push(audit::record(actor, Some(tenant), change));
            committed(self.store.transact(writes).await)
        })
        .await?;
        self.authn.forget_user(tenant, user_id);
        Ok(())
    }

    /// The caller's sessions that still work, newest first.
    pub async fn sessions(&self, principal: &Principal) -> AppResult<Vec<Session>> {
        let tenant = principal.tenant()?;
        let Some(user_id) = principal.user_id() else { return Ok(Vec::new()) };
        let Some((_, access, _)) = UserRecord::load_user(self.store.as_ref(), tenant, user_id).await? else {
            return Ok(Vec::new());
        };
        let items = self.store.query_all(&keys::tenant_pk(tenant), &keys::sessions_prefix(user_id)).await?;
        let now = now_rfc3339();
        let mut sessions = Vec::new();
        for item in items {
            let s: Session = decode_at(&item.pk, &item.sk, item.data)?;
            let live = s.revoked_at.is_none()
                && s.expires_at > now
                && (s.absolute_expires_at.is_empty() || s.absolute_expires_at > now)
                && s.generation == access.generation
                && !access.session_ended(&s.session_id);
            if live {
                sessions.push(Session { refresh_hash: String::new(), used_hashes: Vec::new(), ..s });
            }
        }
        sessions.reverse();
        Ok(sessions)
    }

    /// Changes the caller's password: every token and session of theirs ends, and a new
    /// session is opened for the caller.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current_password: &str,
        new_password: &str,
        user_agent: Option<String>,
        request: &RequestIds,
    ) -> AppResult<TokenPair> {
        let tenant = principal.tenant()?;
        let Subject::User { user_id, .. } = &principal.subject else {
            return Err(AppError::Forbidden("passwords belong to signed-in users".to_string()));
        };
        let record = UserRecord::load(self.store.as_ref(), tenant, user_id)
            .await?
            .ok_or_else(|| AppError::Unauthorized("the account no longer exists".to_string()))?;
        let admitted = self.throttle.admit(tenant, &record.user.email, &format!("user:{user_id}")).await?;
        if !verify_password(current_password, &record.password_hash).await {
            return Err(AppError::Invalid(Invalid::one("current_password", "is not your current password")));
        }
        check_password(new_password, &record.user.email, "new_password")?;
        let mut access = record.access.clone();
        access.end_everything();
        let renewed = UserRecord { access: access.clone(), ..record.clone() };
        let (pair, session) = self.open_session(tenant, &renewed, user_agent).await?;
        let actor = principal.actor(&request.platform).with_client_request_id(request.client.clone());
        let writes = vec![
            record.put(tenant, &record.user, &access),
            record.put_credential(tenant, hash_password(new_password).await),
            session,
            SignInThrottle::clear_account(tenant, &record.user.email),
            audit::record(&actor, Some(tenant), Change::new("auth.password.change", format!("user:{user_id}"))),
        ];
        self.store.transact(writes).await?;
        self.throttle.succeeded(tenant, admitted).await;
        self.authn.forget_user(tenant, user_id);
        Ok(pair)
    }

    pub async fn me(&self, principal: &Principal) -> AppResult<(User, Vec<Permission>)> {
        let tenant = principal.tenant()?;
        let user_id = principal.user_id().ok_or_else(|| AppError::NotFound("no user".to_string()))?;
        let (user, _, _) = UserRecord::load_user(self.store.as_ref(), tenant, user_id)
            .await?
            .ok_or_else(|| AppError::Unauthorized("the account no longer exists".to_string()))?;
        Ok((user, principal.permissions.iter().copied().collect()))
    }
}

/// Field issues for a login body (email/password presence).
pub fn check_login_fields(email: &str, password: &str) -> Result<(), Invalid> {
    let mut issues = Vec::new();
    if email.trim().is_empty() {
        issues.push(FieldIssue::new("email", "is required"));
    }
    if password.is_empty() {
        issues.push(FieldIssue::new("password", "is required"));
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(Invalid(issues))
    }
}

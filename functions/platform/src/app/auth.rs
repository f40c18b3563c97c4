//! Tenant onboarding, sign-in, sessions with rotating refresh tokens, password reset and
//! email verification (OWASP authentication, session management and forgot-password
//! cheat sheets).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit::{self, Actor, Change};
use super::configs::next_version_writes;
use super::credentials::{
    hash_password, random_secret, same_digest, sha256_hex, unix_now, verify_against_nothing, verify_password,
    AccessClaims,
};
use super::error::{AppError, AppResult};
use super::keys;
use super::principal::{Authenticator, Principal, Subject};
use super::users::{permissions_of, UserRecord};
use crate::domain::access::Permission;
use crate::domain::config::{ConfigCause, ConfigScope};
use crate::domain::identity::{check_password, parse_email, Session, User, UserStatus};
use crate::domain::ids::{ConfigKey, TenantId};
use crate::domain::invalid::{FieldIssue, Invalid};
use crate::domain::time::now_rfc3339;
use crate::ports::mail::{Mail, Mailer};
use crate::ports::store::{Condition, Item, Store, StoreError, Write};

/// Refresh tokens (and so sessions) last 30 days without use of a newer one.
const SESSION_SECONDS: u64 = 30 * 24 * 3600;
/// Failures before an account (by email) is locked, and the first lock's length.
const FREE_FAILURES: u32 = 5;
const FIRST_LOCK_SECONDS: u64 = 30;
const MAX_LOCK_SECONDS: u64 = 3600;
/// One-time tokens expire after 30 minutes (reset) or 24 hours (verification).
const RESET_SECONDS: u64 = 30 * 60;
const VERIFY_SECONDS: u64 = 24 * 3600;
/// The tenant settings document created at onboarding.
pub const DEFAULT_SETTINGS_KEY: &str = "general";

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantProfile {
    #[schema(value_type = String)]
    pub tenant_id: TenantId,
    pub name: String,
    pub owner_user_id: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InitializeTenant {
    #[schema(value_type = String, example = "acme")]
    pub tenant_id: TenantId,
    pub name: String,
    pub admin_email: String,
    pub admin_password: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantInitialized {
    pub tenant: TenantProfile,
    pub owner: User,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantStatus {
    pub tenant_id: String,
    pub exists: bool,
    /// Profile, owner and default settings are all present.
    pub complete: bool,
    #[schema(value_type = Object)]
    pub checks: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LoginThrottle {
    failures: u32,
    locked_until: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OneTimeToken {
    user_id: String,
    expires_at: u64,
}

#[derive(Clone)]
pub struct AuthService {
    store: Arc<dyn Store>,
    authn: Authenticator,
    mailer: Arc<dyn Mailer>,
}

fn unavailable<T>(_: T) -> AppError {
    AppError::Unavailable("stored data is unreadable".to_string())
}

fn bad_credentials() -> AppError {
    AppError::Unauthorized("invalid email or password".to_string())
}

/// How long the account stays locked after `failures` consecutive failures.
pub fn lock_seconds(failures: u32) -> u64 {
    if failures < FREE_FAILURES {
        return 0;
    }
    let doublings = (failures - FREE_FAILURES).min(16);
    (FIRST_LOCK_SECONDS << doublings).min(MAX_LOCK_SECONDS)
}

impl AuthService {
    pub fn new(store: Arc<dyn Store>, authn: Authenticator, mailer: Arc<dyn Mailer>) -> Self {
        Self { store, authn, mailer }
    }

    /// Creates the tenant, its owner and its default settings in one transaction.
    pub async fn initialize_tenant(&self, actor: &Actor, request: InitializeTenant) -> AppResult<TenantInitialized> {
        let mut issues = Vec::new();
        crate::domain::identity::check_name(&mut issues, "name", &request.name, 200);
        let email = parse_email(&request.admin_email, "admin_email").map_err(|e| issues.extend(e.0)).ok();
        if let Some(email) = &email {
            if let Err(e) = check_password(&request.admin_password, email, "admin_password") {
                issues.extend(e.0);
            }
        }
        let email = match email {
            Some(email) if issues.is_empty() => email,
            _ => return Err(Invalid(issues).into()),
        };
        let tenant = request.tenant_id;
        let now = now_rfc3339();
        let owner = User {
            user_id: ulid::Ulid::generate().to_string(),
            tenant_id: tenant.clone(),
            username: email.split('@').next().unwrap_or_default().to_string(),
            email: email.clone(),
            full_name: String::new(),
            roles: vec!["owner".to_string()],
            status: UserStatus::Active,
            email_verified: false,
            created_at: now.clone(),
            updated_at: now.clone(),
            last_login_at: None,
        };
        let profile = TenantProfile {
            tenant_id: tenant.clone(),
            name: request.name,
            owner_user_id: owner.user_id.clone(),
            created_at: now,
        };
        let pk = keys::tenant_pk(&tenant);
        let mut writes = vec![Write::create(pk.clone(), keys::TENANT_PROFILE_SK, &profile)];
        writes.extend(UserRecord::new(owner.clone(), hash_password(&request.admin_password)).create_writes(&tenant));
        let settings = ConfigScope::Tenant(ConfigKey::parse(DEFAULT_SETTINGS_KEY).expect("a valid key"));
        let defaults = json!({"timezone": "UTC", "locale": "en-US", "date_format": "YYYY-MM-DD", "currency": "USD"});
        let (_, config_writes) = next_version_writes(&tenant, &settings, None, defaults, ConfigCause::Write);
        writes.extend(config_writes);
        writes.push(audit::record(
            actor,
            Some(&tenant),
            Change::new("tenant.initialize", format!("tenant:{tenant}")).after(&profile),
        ));
        match self.store.transact(writes).await {
            Ok(()) => Ok(TenantInitialized { tenant: profile, owner }),
            Err(StoreError::ConditionFailed { .. }) => {
                Err(AppError::conflict_with(format!("tenant '{tenant}' already exists"), "tenant_id", json!(tenant)))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn verify_tenant(&self, tenant: &TenantId) -> AppResult<TenantStatus> {
        let pk = keys::tenant_pk(tenant);
        let profile = self.store.get(&pk, keys::TENANT_PROFILE_SK).await?;
        let owner = match &profile {
            Some(item) => {
                let owner_id = item.data["owner_user_id"].as_str().unwrap_or_default().to_string();
                self.store.get(&pk, &keys::user_sk(&owner_id)).await?.is_some()
            }
            None => false,
        };
        let settings = ConfigScope::Tenant(ConfigKey::parse(DEFAULT_SETTINGS_KEY).expect("a valid key"));
        let settings = self.store.get(&pk, &keys::config_head_sk(&settings)).await?.is_some();
        let exists = profile.is_some();
        Ok(TenantStatus {
            tenant_id: tenant.to_string(),
            exists,
            complete: exists && owner && settings,
            checks: json!({"profile": exists, "owner": owner, "default_settings": settings}),
        })
    }

    async fn user_by_email(&self, tenant: &TenantId, email: &str) -> AppResult<Option<UserRecord>> {
        let pk = keys::tenant_pk(tenant);
        let Some(pointer) = self.store.get(&pk, &keys::user_email_sk(email)).await? else { return Ok(None) };
        let user_id = pointer.data["user_id"].as_str().unwrap_or_default().to_string();
        UserRecord::load(self.store.as_ref(), tenant, &user_id).await
    }

    /// Signs in; every failure is the same 401, and repeated failures for an email lock
    /// it (429) with growing delays, whether or not the account exists.
    pub async fn login(
        &self,
        tenant: &TenantId,
        email: &str,
        password: &str,
        user_agent: Option<String>,
        request_id: &str,
    ) -> AppResult<TokenPair> {
        let email = parse_email(email, "email")?;
        let pk = keys::tenant_pk(tenant);
        let throttle_sk = keys::login_throttle_sk(&email);
        let throttle_item = self.store.get(&pk, &throttle_sk).await?;
        let throttle_version = throttle_item.as_ref().map(|i| i.version);
        let throttle: LoginThrottle =
            throttle_item.map(|i| serde_json::from_value(i.data).unwrap_or_default()).unwrap_or_default();
        let now = unix_now();
        if throttle.locked_until > now {
            return Err(AppError::TooManyRequests { retry_after: throttle.locked_until - now });
        }
        let record = self.user_by_email(tenant, &email).await?;
        let verified = match &record {
            Some(r) => verify_password(password, &r.password_hash) && r.user.status == UserStatus::Active,
            None => {
                verify_against_nothing(password);
                false
            }
        };
        let actor =
            Actor { id: format!("email:{email}"), email: Some(email.clone()), request_id: request_id.to_string() };
        let Some(record) = record.filter(|_| verified) else {
            self.count_failure(tenant, &throttle_sk, throttle_version, throttle, &actor, &email).await;
            return Err(bad_credentials());
        };
        let mut writes = Vec::new();
        if let Some(version) = throttle_version {
            writes.push(Write::Delete { pk: pk.clone(), sk: throttle_sk, condition: Condition::Version(version) });
        }
        let mut user = record.user.clone();
        user.last_login_at = Some(now_rfc3339());
        writes.push(record.put_user(tenant, &user));
        let (pair, session_writes) = self.open_session(tenant, &user, user_agent).await?;
        writes.extend(session_writes);
        let actor = Actor { id: format!("user:{}", user.user_id), ..actor };
        writes.push(audit::record(&actor, Some(tenant), Change::new("auth.login", format!("user:{}", user.user_id))));
        self.store.transact(writes).await.map_err(|e| match e {
            StoreError::ConditionFailed { .. } | StoreError::Conflict => {
                AppError::conflict("concurrent sign-in; retry")
            }
            other => other.into(),
        })?;
        Ok(pair)
    }

    /// Counts a failed sign-in for an email; concurrent failures are each counted (the
    /// increment is retried on a conflicting write), so guessing in parallel gains nothing.
    async fn count_failure(
        &self,
        tenant: &TenantId,
        throttle_sk: &str,
        mut version: Option<u64>,
        mut throttle: LoginThrottle,
        actor: &Actor,
        email: &str,
    ) {
        let pk = keys::tenant_pk(tenant);
        for _attempt in 0..10 {
            let now = unix_now();
            let failures = throttle.failures + 1;
            let locked_until = if lock_seconds(failures) > 0 { now + lock_seconds(failures) } else { 0 };
            let next = LoginThrottle { failures, locked_until: locked_until.max(throttle.locked_until) };
            let condition = version.map_or(Condition::Absent, Condition::Version);
            let writes = vec![
                Write::Put {
                    item: Item::new(
                        pk.clone(),
                        throttle_sk,
                        version.unwrap_or(0) + 1,
                        serde_json::to_value(&next).expect("serializes"),
                    ),
                    condition,
                },
                audit::record_outcome(
                    actor,
                    Some(tenant),
                    Change::new("auth.login", format!("email:{email}")),
                    "failed",
                ),
            ];
            match self.store.transact(writes).await {
                Ok(()) => return,
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
                    match self.store.get(&pk, throttle_sk).await {
                        Ok(item) => {
                            version = item.as_ref().map(|i| i.version);
                            throttle = item.and_then(|i| serde_json::from_value(i.data).ok()).unwrap_or_default();
                        }
                        Err(e) => return tracing::warn!(error = %e, "could not record a failed sign-in"),
                    }
                }
                Err(e) => return tracing::warn!(error = %e, "could not record a failed sign-in"),
            }
        }
    }

    async fn open_session(
        &self,
        tenant: &TenantId,
        user: &User,
        user_agent: Option<String>,
    ) -> AppResult<(TokenPair, Vec<Write>)> {
        let session_id = ulid::Ulid::generate().to_string();
        let secret = random_secret();
        let now = now_rfc3339();
        let session = Session {
            session_id: session_id.clone(),
            user_id: user.user_id.clone(),
            created_at: now.clone(),
            last_used_at: now,
            expires_at: rfc3339_in(SESSION_SECONDS),
            revoked_at: None,
            revoked_reason: None,
            user_agent: user_agent.map(|ua| ua.chars().take(200).collect()),
            refresh_hash: sha256_hex(&secret),
            used_hashes: Vec::new(),
        };
        let pair = self.tokens(tenant, user, &session_id, &secret).await?;
        let write = Write::Put {
            item: Item::new(
                keys::tenant_pk(tenant),
                keys::session_sk(&user.user_id, &session_id),
                1,
                serde_json::to_value(&session).expect("serializes"),
            ),
            condition: Condition::Absent,
        };
        Ok((pair, vec![write]))
    }

    async fn tokens(&self, tenant: &TenantId, user: &User, session_id: &str, secret: &str) -> AppResult<TokenPair> {
        let permissions = permissions_of(self.store.as_ref(), tenant, &user.roles).await?;
        let signer = self.authn.signer();
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
    pub async fn refresh(&self, refresh_token: &str, request_id: &str) -> AppResult<TokenPair> {
        let invalid = || AppError::Unauthorized("the refresh token is not valid".to_string());
        let parts: Vec<&str> = refresh_token.split('.').collect();
        let [_, tenant, user_id, session_id, secret] = parts.as_slice() else { return Err(invalid()) };
        if !refresh_token.starts_with("rt.") {
            return Err(invalid());
        }
        let tenant = TenantId::parse(tenant).map_err(|_| invalid())?;
        let pk = keys::tenant_pk(&tenant);
        let sk = keys::session_sk(user_id, session_id);
        let item = self.store.get(&pk, &sk).await?.ok_or_else(invalid)?;
        let version = item.version;
        let mut session: Session = serde_json::from_value(item.data).map_err(unavailable)?;
        let presented = sha256_hex(secret);
        let actor = Actor { id: format!("user:{user_id}"), email: None, request_id: request_id.to_string() };
        if session.revoked_at.is_some() || session.expires_at.as_str() <= now_rfc3339().as_str() {
            return Err(invalid());
        }
        if !same_digest(&presented, &session.refresh_hash) {
            if session.used_hashes.iter().any(|used| same_digest(used, &presented)) {
                self.revoke_session_item(&tenant, user_id, session_id, "refresh token reuse", &actor).await?;
            }
            return Err(invalid());
        }
        let record = UserRecord::load(self.store.as_ref(), &tenant, user_id).await?.ok_or_else(invalid)?;
        if record.user.status != UserStatus::Active {
            return Err(invalid());
        }
        let secret = random_secret();
        session.used_hashes.push(std::mem::replace(&mut session.refresh_hash, sha256_hex(&secret)));
        let keep_from = session.used_hashes.len().saturating_sub(50);
        session.used_hashes.drain(..keep_from);
        session.last_used_at = now_rfc3339();
        session.expires_at = rfc3339_in(SESSION_SECONDS);
        let pair = self.tokens(&tenant, &record.user, session_id, &secret).await?;
        let put = Item::new(pk, sk, version + 1, serde_json::to_value(&session).expect("serializes"));
        match self.store.put(put, Condition::Version(version)).await {
            Ok(()) => Ok(pair),
            // Another refresh with the same token won the race: this one is a reuse.
            Err(StoreError::ConditionFailed { .. }) => {
                self.revoke_session_item(&tenant, user_id, session_id, "refresh token reuse", &actor).await?;
                Err(invalid())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Revokes a session of the caller (their current one when `session_id` is `None`).
    pub async fn revoke_session(
        &self,
        principal: &Principal,
        session_id: Option<&str>,
        request_id: &str,
    ) -> AppResult<()> {
        let tenant = principal.tenant()?;
        let Subject::User { user_id, session_id: current, .. } = &principal.subject else {
            return Err(AppError::Forbidden("sessions belong to signed-in users".to_string()));
        };
        let session_id = session_id.unwrap_or(current);
        if self.store.get(&keys::tenant_pk(tenant), &keys::session_sk(user_id, session_id)).await?.is_none() {
            return Err(AppError::NotFound("no such session".to_string()));
        }
        self.revoke_session_item(tenant, user_id, session_id, "revoked by the user", &principal.actor(request_id)).await
    }

    /// Marks a session revoked (with its audit entry), retrying when a concurrent
    /// refresh changed it meanwhile, so a revocation is never lost to a race.
    async fn revoke_session_item(
        &self,
        tenant: &TenantId,
        user_id: &str,
        session_id: &str,
        reason: &str,
        actor: &Actor,
    ) -> AppResult<()> {
        let pk = keys::tenant_pk(tenant);
        let sk = keys::session_sk(user_id, session_id);
        self.authn.forget_session(session_id);
        for _attempt in 0..10 {
            let Some(item) = self.store.get(&pk, &sk).await? else { return Ok(()) };
            let mut session: Session = serde_json::from_value(item.data).map_err(unavailable)?;
            if session.revoked_at.is_some() {
                return Ok(());
            }
            session.revoked_at = Some(now_rfc3339());
            session.revoked_reason = Some(reason.to_string());
            let change =
                Change::new("auth.session.revoke", format!("session:{session_id}")).after(json!({"reason": reason}));
            let writes = vec![
                Write::replace(pk.clone(), sk.clone(), item.version, &session),
                audit::record(actor, Some(tenant), change),
            ];
            match self.store.transact(writes).await {
                Ok(()) => return Ok(()),
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::conflict("the session is changing concurrently; retry"))
    }

    /// The caller's sessions that still work, newest first.
    pub async fn sessions(&self, principal: &Principal) -> AppResult<Vec<Session>> {
        let tenant = principal.tenant()?;
        let Some(user_id) = principal.user_id() else { return Ok(Vec::new()) };
        let items = self.store.query_all(&keys::tenant_pk(tenant), &keys::sessions_prefix(user_id)).await?;
        let now = now_rfc3339();
        let mut sessions: Vec<Session> = items
            .into_iter()
            .filter_map(|i| serde_json::from_value::<Session>(i.data).ok())
            .filter(|s| s.revoked_at.is_none() && s.expires_at > now)
            .map(|s| Session { refresh_hash: String::new(), used_hashes: Vec::new(), ..s })
            .collect();
        sessions.reverse();
        Ok(sessions)
    }

    /// Revokes every live session of a user (after a password reset, or when disabling
    /// them), in transactions of at most 50, however many sessions they opened.
    pub async fn revoke_all_sessions(&self, tenant: &TenantId, user_id: &str, reason: &str) -> AppResult<()> {
        let items = self.store.query_all(&keys::tenant_pk(tenant), &keys::sessions_prefix(user_id)).await?;
        let now = now_rfc3339();
        let mut writes = Vec::new();
        for item in items {
            let Ok(mut session) = serde_json::from_value::<Session>(item.data.clone()) else { continue };
            if session.revoked_at.is_some() || session.expires_at <= now {
                continue;
            }
            self.authn.forget_session(&session.session_id);
            session.revoked_at = Some(now.clone());
            session.revoked_reason = Some(reason.to_string());
            writes.push(Write::replace(item.pk, item.sk, item.version, &session));
        }
        for chunk in writes.chunks(50) {
            match self.store.transact(chunk.to_vec()).await {
                // A session refreshed meanwhile: revoke what is left on the next call; the
                // access token still dies here, and the caller's change goes on.
                Ok(()) | Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn issue_one_time_token(
        &self,
        tenant: &TenantId,
        purpose: &str,
        user_id: &str,
        seconds: u64,
    ) -> AppResult<String> {
        let secret = random_secret();
        let token = OneTimeToken { user_id: user_id.to_string(), expires_at: unix_now() + seconds };
        let item = Item::new(
            keys::tenant_pk(tenant),
            keys::one_time_token_sk(purpose, &sha256_hex(&secret)),
            1,
            serde_json::to_value(&token).expect("serializes"),
        );
        self.store.put(item, Condition::Absent).await?;
        Ok(format!("{purpose}.{tenant}.{secret}"))
    }

    /// Consumes a single-use token: deleting it is conditional, so it works once.
    async fn redeem_one_time_token(&self, presented: &str, purpose: &str) -> AppResult<(TenantId, String, Vec<Write>)> {
        let invalid = || AppError::Invalid(Invalid::one("token", "is not valid or has expired"));
        let parts: Vec<&str> = presented.split('.').collect();
        let [p, tenant, secret] = parts.as_slice() else { return Err(invalid()) };
        if *p != purpose {
            return Err(invalid());
        }
        let tenant = TenantId::parse(tenant).map_err(|_| invalid())?;
        let pk = keys::tenant_pk(&tenant);
        let sk = keys::one_time_token_sk(purpose, &sha256_hex(secret));
        let item = self.store.get(&pk, &sk).await?.ok_or_else(invalid)?;
        let token: OneTimeToken = serde_json::from_value(item.data.clone()).map_err(unavailable)?;
        let consume = Write::Delete { pk, sk, condition: Condition::Version(item.version) };
        if token.expires_at <= unix_now() {
            let _ = self.store.transact(vec![consume]).await;
            return Err(invalid());
        }
        Ok((tenant, token.user_id, vec![consume]))
    }

    /// Always the same answer; a message goes out only when the account exists.
    pub async fn request_password_reset(&self, tenant: &TenantId, email: &str) -> AppResult<()> {
        let Ok(email) = parse_email(email, "email") else { return Ok(()) };
        let Some(record) = self.user_by_email(tenant, &email).await? else { return Ok(()) };
        if record.user.status != UserStatus::Active {
            return Ok(());
        }
        let token = self.issue_one_time_token(tenant, "prt", &record.user.user_id, RESET_SECONDS).await?;
        self.send(Mail {
            to: email,
            subject: "Reset your password".to_string(),
            text: format!("Use this code to choose a new password within 30 minutes:\n\n{token}\n\nIf you did not ask for it, ignore this message."),
        })
        .await;
        Ok(())
    }

    /// Sets a new password with a reset token, and signs the user out everywhere.
    pub async fn confirm_password_reset(&self, token: &str, new_password: &str, request_id: &str) -> AppResult<()> {
        let (tenant, user_id, mut writes) = self.redeem_one_time_token(token, "prt").await?;
        let record = UserRecord::load(self.store.as_ref(), &tenant, &user_id)
            .await?
            .ok_or_else(|| AppError::Invalid(Invalid::one("token", "is not valid or has expired")))?;
        check_password(new_password, &record.user.email, "new_password")?;
        writes.push(record.put_credential(&tenant, hash_password(new_password)));
        self.revoke_all_sessions(&tenant, &user_id, "password reset").await?;
        let actor = Actor {
            id: format!("user:{user_id}"),
            email: Some(record.user.email.clone()),
            request_id: request_id.to_string(),
        };
        writes.push(audit::record(
            &actor,
            Some(&tenant),
            Change::new("auth.password.reset", format!("user:{user_id}")),
        ));
        self.store.transact(writes).await.map_err(|e| match e {
            StoreError::ConditionFailed { .. } => {
                AppError::Invalid(Invalid::one("token", "is not valid or has expired"))
            }
            other => other.into(),
        })
    }

    pub async fn request_email_verification(&self, tenant: &TenantId, user: &User) -> AppResult<()> {
        if user.email_verified {
            return Ok(());
        }
        let token = self.issue_one_time_token(tenant, "evt", &user.user_id, VERIFY_SECONDS).await?;
        self.send(Mail {
            to: user.email.clone(),
            subject: "Verify your email address".to_string(),
            text: format!("Use this code within 24 hours to verify your email address:\n\n{token}"),
        })
        .await;
        Ok(())
    }

    pub async fn confirm_email(&self, token: &str, request_id: &str) -> AppResult<()> {
        let (tenant, user_id, mut writes) = self.redeem_one_time_token(token, "evt").await?;
        let record = UserRecord::load(self.store.as_ref(), &tenant, &user_id)
            .await?
            .ok_or_else(|| AppError::Invalid(Invalid::one("token", "is not valid or has expired")))?;
        let mut user = record.user.clone();
        user.email_verified = true;
        user.updated_at = now_rfc3339();
        writes.push(record.put_user(&tenant, &user));
        let actor = Actor {
            id: format!("user:{user_id}"),
            email: Some(user.email.clone()),
            request_id: request_id.to_string(),
        };
        writes.push(audit::record(&actor, Some(&tenant), Change::new("auth.email.verify", format!("user:{user_id}"))));
        self.store.transact(writes).await.map_err(|e| match e {
            StoreError::ConditionFailed { .. } => {
                AppError::Invalid(Invalid::one("token", "is not valid or has expired"))
            }
            other => other.into(),
        })
    }

    async fn send(&self, mail: Mail) {
        // Never log the message: it carries a secret.
        if let Err(e) = self.mailer.send(&mail).await {
            tracing::error!(error = %e, "mail delivery failed");
        }
    }

    pub async fn me(&self, principal: &Principal) -> AppResult<(User, Vec<Permission>)> {
        let tenant = principal.tenant()?;
        let user_id = principal.user_id().ok_or_else(|| AppError::NotFound("no user".to_string()))?;
        let record = UserRecord::load(self.store.as_ref(), tenant, user_id)
            .await?
            .ok_or_else(|| AppError::Unauthorized("the account no longer exists".to_string()))?;
        Ok((record.user, principal.permissions.iter().copied().collect()))
    }
}

/// An RFC 3339 time `seconds` from now.
fn rfc3339_in(seconds: u64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds as i64);
    at.replace_nanosecond(0).unwrap_or(at).format(&time::format_description::well_known::Rfc3339).expect("formats")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_grow_after_the_free_failures_and_are_capped() {
        assert_eq!(lock_seconds(4), 0);
        assert_eq!(lock_seconds(5), 30);
        assert_eq!(lock_seconds(6), 60);
        assert_eq!(lock_seconds(7), 120);
        assert_eq!(lock_seconds(40), MAX_LOCK_SECONDS);
    }
}

//! Account recovery (OWASP forgot-password cheat sheet): single-use, expiring reset and
//! email-verification tokens, kept at rest only as digests; a reset ends every session.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::accounts::UserRecord;
use super::audit::{self, Actor, Change, RequestIds};
use super::credentials::{hash_password, random_secret, sha256_hex};
use super::error::{AppError, AppResult};
use super::keys;
use super::principal::Authenticator;
use super::stored::{committed, decode_at, optimistic};
use super::throttle::SignInThrottle;
use crate::domain::identity::{check_password, parse_email, User};
use crate::domain::ids::TenantId;
use crate::domain::invalid::Invalid;
use crate::domain::time::{now_rfc3339, unix_now};
use crate::ports::mail::{Mail, Mailer};
use crate::ports::store::{Condition, Item, Store, Write};

/// One-time tokens expire after 30 minutes (reset) or 24 hours (verification).
pub const RESET_SECONDS: u64 = 30 * 60;
pub const VERIFY_SECONDS: u64 = 24 * 3600;
/// Reset messages an account gets per quiet quarter-hour (more requests are answered alike
/// but send nothing).
pub const RESETS_PER_WINDOW: u32 = 3;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OneTimeToken {
    user_id: String,
    expires_at: u64,
}

fn invalid_token() -> AppError {
    AppError::Invalid(Invalid::one("token", "is not valid or has expired"))
}

#[derive(Clone)]
pub struct RecoveryService {
    store: Arc<dyn Store>,
    authn: Authenticator,
    mailer: Arc<dyn Mailer>,
    throttle: SignInThrottle,
}

impl RecoveryService {
    pub fn new(store: Arc<dyn Store>, authn: Authenticator, mailer: Arc<dyn Mailer>) -> Self {
        let throttle = SignInThrottle::new(store.clone());
        Self { store, authn, mailer, throttle }
    }

    async fn issue(&self, tenant: &TenantId, purpose: &str, user_id: &str, seconds: u64) -> AppResult<String> {
        let secret = random_secret();
        let token = OneTimeToken { user_id: user_id.to_string(), expires_at: unix_now() + seconds };
        let item = Item::new(
            keys::tenant_pk(tenant),
            keys::one_time_token_sk(purpose, &sha256_hex(&secret)),
            1,
            serde_json::to_value(&token).expect("serializes"),
        )
        .expiring(token.expires_at);
        self.store.put(item, Condition::Absent).await?;
        Ok(format!("{purpose}.{tenant}.{secret}"))
    }

    /// Reads a single-use token: the returned write consumes it (conditionally, so it works once).
    async fn redeem(&self, presented: &str, purpose: &str) -> AppResult<(TenantId, String, Write)> {
        let parts: Vec<&str> = presented.split('.').collect();
        let [p, tenant, secret] = parts.as_slice() else { return Err(invalid_token()) };
        if *p != purpose {
            return Err(invalid_token());
        }
        let tenant = TenantId::parse(tenant).map_err(|_| invalid_token())?;
        let pk = keys::tenant_pk(&tenant);
        let sk = keys::one_time_token_sk(purpose, &sha256_hex(secret));
        let item = self.store.get(&pk, &sk).await?.ok_or_else(invalid_token)?;
        let version = item.version;
        let token: OneTimeToken = decode_at(&item.pk, &item.sk, item.data)?;
        if token.expires_at <= unix_now() {
            return Err(invalid_token());
        }
        Ok((tenant, token.user_id, Write::Delete { pk, sk, condition: Condition::Version(version) }))
    }

    /// Always the same answer; a message goes out only when the account exists, is active
    /// and has not asked too often.
    pub async fn request_password_reset(&self, tenant: &TenantId, email: &str) -> AppResult<()> {
        let Ok(email) = parse_email(email, "email") else { return Ok(()) };
        let Some(record) = UserRecord::by_email(self.store.as_ref(), tenant, &email).await? else { return Ok(()) };
        if !record.is_active() {
            return Ok(());
        }
        let sk = keys::reset_requests_sk(&record.user.user_id);
        if !self.throttle.within(tenant, &sk, RESETS_PER_WINDOW).await? {
            return Ok(());
        }
        let token = self.issue(tenant, "prt", &record.user.user_id, RESET_SECONDS).await?;
        self.send(Mail {
            to: email,
            subject: "Reset your password".to_string(),
            text: format!("Use this code to choose a new password within 30 minutes:\n\n{token}\n\nIf you did not ask for it, ignore this message."),
        })
        .await;
        Ok(())
    }

    /// Sets a new password with a reset token. In the same transaction every token and
    /// session of the user ends (a new token generation) and sign-in delays are cleared.
    pub async fn confirm_password_reset(&self, token: &str, new_password: &str, request: &RequestIds) -> AppResult<()> {
        let (tenant, user_id, _) = self.redeem(token, "prt").await?;
        let record = UserRecord::load(self.store.as_ref(), &tenant, &user_id).await?.ok_or_else(invalid_token)?;
        check_password(new_password, &record.user.email, "new_password")?;
        let hash = hash_password(new_password).await;
        optimistic("the account is changing concurrently; retry", || async {
            let (_, _, consume) = self.redeem(token, "prt").await?;
            let record = UserRecord::load(self.store.as_ref(), &tenant, &user_id).await?.ok_or_else(invalid_token)?;
            let mut access = record.access.clone();
            access.end_everything();
            let actor = Actor::anonymous(format!("user:{user_id}"), Some(record.user.email.clone()), request);
            let writes = vec![
                consume,
                record.put(&tenant, &record.user, &access),
                record.put_credential(&tenant, hash.clone()),
                SignInThrottle::clear_account(&tenant, &record.user.email),
                audit::record(&actor, Some(&tenant), Change::new("auth.password.reset", format!("user:{user_id}"))),
            ];
            committed(self.store.transact(writes).await)
        })
        .await?;
        self.authn.forget_user(&tenant, &user_id);
        Ok(())
    }

    pub async fn request_email_verification(&self, tenant: &TenantId, user: &User) -> AppResult<()> {
        if user.email_verified {
            return Ok(());
        }
        let token = self.issue(tenant, "evt", &user.user_id, VERIFY_SECONDS).await?;
        self.send(Mail {
            to: user.email.clone(),
            subject: "Verify your email address".to_string(),
            text: format!("Use this code within 24 hours to verify your email address:\n\n{token}"),
        })
        .await;
        Ok(())
    }

    pub async fn confirm_email(&self, token: &str, request: &RequestIds) -> AppResult<()> {
        optimistic("the account is changing concurrently; retry", || async {
            let (tenant, user_id, consume) = self.redeem(token, "evt").await?;
            let record = UserRecord::load(self.store.as_ref(), &tenant, &user_id).await?.ok_or_else(invalid_token)?;
            let mut user = record.user.clone();
            user.email_verified = true;
            user.updated_at = now_rfc3339();
            let actor = Actor::anonymous(format!("user:{user_id}"), Some(user.email.clone()), request);
            let writes = vec![
                consume,
                record.put_user(&tenant, &user),
                audit::record(&actor, Some(&tenant), Change::new("auth.email.verify", format!("user:{user_id}"))),
            ];
            committed(self.store.transact(writes).await)
        })
        .await
    }

    async fn send(&self, mail: Mail) {
        // Never log the message: it carries a secret.
        if let Err(e) = self.mailer.send(&mail).await {
            tracing::error!(error = %e, "mail delivery failed");
        }
    }
}

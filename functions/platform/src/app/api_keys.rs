//! API keys: created by a signed-in user, shown once, kept as a digest, scoped within the
//! creator's permissions, and acting for the creator as they are at each request.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit::{self, Actor, Change};
use super::credentials::{random_secret, sha256_hex};
use super::error::{AppError, AppResult};
use super::keys;
use super::principal::{Authenticator, Principal, Subject, API_KEY_PREFIX};
use super::roles::check_within;
use super::stored::decode_at;
use crate::domain::access::{Permission, Permissions};
use crate::domain::identity::{check_name, ApiKey};
use crate::domain::invalid::{FieldIssue, Invalid};
use crate::domain::time::now_rfc3339;
use crate::ports::store::{Condition, Item, Store, Write};

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

/// The write that revokes a stored key (from its item), if it is not revoked yet.
pub fn revoke_write(item: &Item) -> Option<Write> {
    if !item.data["revoked_at"].is_null() {
        return None;
    }
    let mut data = item.data.clone();
    data["revoked_at"] = json!(now_rfc3339());
    Some(Write::Put {
        item: Item::new(item.pk.clone(), item.sk.clone(), item.version + 1, data),
        condition: Condition::Version(item.version),
    })
}

#[derive(Clone)]
pub struct ApiKeyService {
    store: Arc<dyn Store>,
    authn: Authenticator,
}

impl ApiKeyService {
    pub fn new(store: Arc<dyn Store>, authn: Authenticator) -> Self {
        Self { store, authn }
    }

    /// The caller's own keys.
    pub async fn list(&self, principal: &Principal) -> AppResult<Vec<ApiKey>> {
        let tenant = principal.tenant()?;
        let user_id = principal.user_id().unwrap_or_default();
        let mut mine = Vec::new();
        for item in self.store.query_all(&keys::tenant_pk(tenant), keys::API_KEY_PREFIX).await? {
            let key: ApiKey = decode_at(&item.pk, &item.sk, item.data)?;
            if key.user_id == user_id {
                mine.push(key);
            }
        }
        Ok(mine)
    }

    pub async fn create(&self, principal: &Principal, actor: &Actor, new: NewApiKey) -> AppResult<CreatedApiKey> {
        let tenant = principal.tenant()?;
        let Subject::User { user_id, .. } = &principal.subject else {
            return Err(AppError::Forbidden("API keys are created by signed-in users".to_string()));
        };
        let mut issues = Vec::new();
        check_name(&mut issues, "name", &new.name, 100);
        let scopes: Permissions = match new.scopes {
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
        check_within(principal, &scopes, "this key")?;
        let key_id = ulid::Ulid::generate().to_string();
        let secret = format!("{API_KEY_PREFIX}.{tenant}.{key_id}.{}", random_secret());
        let key = ApiKey {
            key_id: key_id.clone(),
            name: new.name,
            prefix: secret.chars().take(API_KEY_PREFIX.len() + tenant.as_str().len() + 10).collect(),
            user_id: user_id.clone(),
            scopes: scopes.into_iter().collect::<BTreeSet<_>>().into_iter().collect(),
            created_at: now_rfc3339(),
            expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        let mut data = serde_json::to_value(&key).expect("serializes");
        data["hash"] = json!(sha256_hex(&secret));
        let writes = vec![
            Write::Put {
                item: Item::new(keys::tenant_pk(tenant), keys::api_key_sk(&key_id), 1, data),
                condition: Condition::Absent,
            },
            audit::record(actor, Some(tenant), Change::new("api_key.create", format!("api_key:{key_id}")).after(&key)),
        ];
        self.store.transact(writes).await?;
        Ok(CreatedApiKey { key, secret })
    }

    /// Revokes one of the caller's keys (any key for a user administrator).
    pub async fn revoke(&self, principal: &Principal, actor: &Actor, key_id: &str) -> AppResult<()> {
        let tenant = principal.tenant()?;
        let not_found = || AppError::NotFound(format!("API key '{key_id}' does not exist"));
        let item = self.store.get(&keys::tenant_pk(tenant), &keys::api_key_sk(key_id)).await?.ok_or_else(not_found)?;
        let mine = item.data["user_id"].as_str() == principal.user_id();
        if !mine && !principal.can(Permission::UsersManage) {
            return Err(not_found());
        }
        if let Some(revoke) = revoke_write(&item) {
            let change = Change::new("api_key.revoke", format!("api_key:{key_id}"));
            self.store.transact(vec![revoke, audit::record(actor, Some(tenant), change)]).await?;
        }
        self.authn.forget_key(tenant, key_id);
        Ok(())
    }
}

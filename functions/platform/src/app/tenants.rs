//! Tenant onboarding: a tenant, its owner and its default settings, created together.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::accounts::UserRecord;
use super::audit::{self, Actor, Change};
use super::configs::next_version_writes;
use super::credentials::hash_password;
use super::error::{AppError, AppResult};
use super::keys;
use super::signing_keys::{fresh_key_write, NewSigningKey};
use crate::domain::access::OWNER_ROLE;
use crate::domain::config::{ConfigCause, ConfigScope};
use crate::domain::identity::{check_password, parse_email, User, UserStatus};
use crate::domain::ids::{ConfigKey, TenantId};
use crate::domain::invalid::Invalid;
use crate::domain::time::now_rfc3339;
use crate::ports::store::{Store, StoreError, Write};

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
    /// The tenant's webhook signing key, shown here once (rotate it to see a new one).
    pub webhook_signing_key: NewSigningKey,
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

#[derive(Clone)]
pub struct TenantService {
    store: Arc<dyn Store>,
}

impl TenantService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
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
            roles: vec![OWNER_ROLE.to_string()],
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
        writes.extend(
            UserRecord::new(owner.clone(), hash_password(&request.admin_password).await).create_writes(&tenant),
        );
        let settings = ConfigScope::Tenant(ConfigKey::parse(DEFAULT_SETTINGS_KEY).expect("a valid key"));
        let defaults = json!({"timezone": "UTC", "locale": "en-US", "date_format": "YYYY-MM-DD", "currency": "USD"});
        let (_, config_writes) = next_version_writes(&tenant, &settings, None, defaults, ConfigCause::Write);
        writes.extend(config_writes);
        let (signing_key, key_write) = fresh_key_write(&tenant);
        writes.push(key_write);
        writes.push(audit::record(
            actor,
            Some(&tenant),
            Change::new("tenant.initialize", format!("tenant:{tenant}")).after(&profile),
        ));
        match self.store.transact(writes).await {
            Ok(()) => Ok(TenantInitialized { tenant: profile, owner, webhook_signing_key: signing_key }),
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
}

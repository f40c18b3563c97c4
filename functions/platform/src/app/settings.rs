//! Settings: described, optionally schema-checked configuration keys of a tenant or of the
//! platform. They are the same versioned documents as `/api/v1/config/tenants/...` keys
//! (one storage and versioning model, see [`ConfigService`]); this module adds what makes
//! a key a setting (category, description, schema, public) and the two scopes: a tenant's
//! own setting answers first, then the platform's public default of the same key.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::audit::Actor;
use super::configs::{ConfigService, Expect};
use super::error::{AppError, AppResult};
use super::page::{Listed, PageRequest};
use crate::domain::config::{ConfigCause, ConfigScope, ConfigVersion, IfMatch, Owner, SettingMeta};
use crate::domain::ids::ConfigKey;
use crate::domain::invalid::{FieldIssue, Invalid};

/// Keys that name other resources under `/api/v1/settings/`.
pub const RESERVED_KEYS: [&str; 3] = ["feature-flags", "audit-logs", "versions"];
pub const MAX_CATEGORY_CHARS: usize = 64;
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// A setting as API answers show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Setting {
    pub key: String,
    #[schema(value_type = Value)]
    pub value: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Value>)]
    pub schema: Option<Value>,
    pub public: bool,
    /// Which scope answered: `tenant` (the tenant's own) or `platform` (the default).
    pub scope: &'static str,
    pub version: u64,
    pub cause: ConfigCause,
    pub updated_at: String,
}

impl Setting {
    pub fn of(key: String, owner: Owner<'_>, doc: ConfigVersion) -> Self {
        let meta = doc.setting.unwrap_or_default();
        Setting {
            key,
            value: doc.value,
            category: meta.category,
            description: meta.description,
            schema: meta.schema,
            public: meta.public,
            scope: owner.scope_name(),
            version: doc.version,
            cause: doc.cause,
            updated_at: doc.updated_at,
        }
    }
}

/// `POST /api/v1/settings`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSetting {
    /// 1 to 128 characters: letters, digits, '-', '_', '.' or ':', starting with a letter or digit.
    pub key: String,
    /// Any JSON value.
    #[schema(value_type = Value)]
    pub value: Value,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// A JSON Schema (draft 2020-12) that every value must satisfy.
    #[serde(default)]
    #[schema(value_type = Option<Value>)]
    pub schema: Option<Value>,
    /// Platform settings only: whether tenants may read it as their default.
    #[serde(default)]
    pub public: Option<bool>,
}

/// `PUT /api/v1/settings/{key}`: a new value; any metadata field given replaces the current one.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingUpdate {
    #[schema(value_type = Value)]
    pub value: Value,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Value>)]
    pub schema: Option<Value>,
    #[serde(default)]
    pub public: Option<bool>,
}

#[derive(Clone)]
pub struct SettingsService {
    configs: ConfigService,
}

/// Parses a setting key (the field is `key`); reserved words are refused.
pub fn setting_key(raw: &str) -> Result<ConfigKey, Invalid> {
    if RESERVED_KEYS.contains(&raw) {
        return Err(Invalid::one("key", format!("'{raw}' is reserved")));
    }
    ConfigKey::parse(raw).map_err(|e| Invalid::one("key", e.0[0].message.clone()))
}

fn check_meta(owner: Owner<'_>, meta: &SettingMeta) -> Result<(), Invalid> {
    let mut issues = Vec::new();
    if meta.category.as_ref().is_some_and(|c| c.trim().is_empty() || c.chars().count() > MAX_CATEGORY_CHARS) {
        issues.push(FieldIssue::new("category", format!("must be 1 to {MAX_CATEGORY_CHARS} characters")));
    }
    if meta.description.as_ref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS) {
        issues.push(FieldIssue::new("description", format!("must be at most {MAX_DESCRIPTION_CHARS} characters")));
    }
    if meta.public && owner != Owner::Platform {
        issues.push(FieldIssue::new("public", "only platform settings can be public"));
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(Invalid(issues))
    }
}

impl SettingsService {
    pub fn new(configs: ConfigService) -> Self {
        Self { configs }
    }

    pub async fn create(&self, actor: &Actor, owner: Owner<'_>, input: NewSetting) -> AppResult<Setting> {
        let key = setting_key(&input.key)?;
        let meta = SettingMeta {
            category: input.category,
            description: input.description,
            schema: input.schema,
            public: input.public.unwrap_or(false),
        };
        check_meta(owner, &meta)?;
        let scope = ConfigScope::Tenant(key.clone());
        let doc = self.configs.put_doc(actor, owner, &scope, (input.value, Some(meta)), None, Expect::Absent).await?;
        Ok(Setting::of(key.to_string(), owner, doc))
    }

    pub async fn update(
        &self,
        actor: &Actor,
        owner: Owner<'_>,
        key: &ConfigKey,
        input: SettingUpdate,
        if_match: Option<IfMatch>,
    ) -> AppResult<Setting> {
        let scope = ConfigScope::Tenant(key.clone());
        let mut meta = self.configs.current(owner, &scope).await?.and_then(|d| d.setting).unwrap_or_default();
        if input.category.is_some() {
            meta.category = input.category;
        }
        if input.description.is_some() {
            meta.description = input.description;
        }
        if input.schema.is_some() {
            meta.schema = input.schema;
        }
        if let Some(public) = input.public {
            meta.public = public;
        }
        check_meta(owner, &meta)?;
        let doc = self.configs.put_doc(actor, owner, &scope, (input.value, Some(meta)), if_match, Expect::Any).await?;
        Ok(Setting::of(key.to_string(), owner, doc))
    }

    /// The setting in exactly one scope. Tenants see a platform setting only when public.
    pub async fn get_in(&self, owner: Owner<'_>, key: &ConfigKey, public_only: bool) -> AppResult<Setting> {
        let scope = ConfigScope::Tenant(key.clone());
        self.configs
            .current(owner, &scope)
            .await?
            .filter(|d| !public_only || d.setting.as_ref().is_some_and(|m| m.public))
            .map(|doc| Setting::of(key.to_string(), owner, doc))
            .ok_or_else(|| not_found(key))
    }

    /// What a tenant reads: its own setting, else the platform's public default.
    pub async fn effective(&self, tenant: Owner<'_>, key: &ConfigKey) -> AppResult<Setting> {
        match self.get_in(tenant, key, false).await {
            Err(AppError::NotFound(_)) => self.get_in(Owner::Platform, key, true).await,
            other => other,
        }
    }

    pub async fn list(
        &self,
        owner: Owner<'_>,
        category: Option<&str>,
        public_only: bool,
        page: &PageRequest,
    ) -> AppResult<Listed<Setting>> {
        let listed = self
            .configs
            .list_current(owner, "t:", page, |doc| {
                let meta = doc.setting.as_ref();
                (!public_only || meta.is_some_and(|m| m.public))
                    && category.is_none_or(|c| meta.and_then(|m| m.category.as_deref()) == Some(c))
            })
            .await?;
        Ok(Listed {
            items: listed.items.into_iter().map(|(key, doc)| Setting::of(key, owner, doc)).collect(),
            next_cursor: listed.next_cursor,
        })
    }

    pub async fn delete(
        &self,
        actor: &Actor,
        owner: Owner<'_>,
        key: &ConfigKey,
        if_match: Option<IfMatch>,
    ) -> AppResult<()> {
        self.configs.delete(actor, owner, &ConfigScope::Tenant(key.clone()), if_match).await.map(|_| ())
    }

    pub async fn versions(
        &self,
        owner: Owner<'_>,
        key: &ConfigKey,
        page: &PageRequest,
    ) -> AppResult<Listed<ConfigVersion>> {
        self.configs.list_versions(owner, &ConfigScope::Tenant(key.clone()), page).await
    }

    pub async fn rollback(
        &self,
        actor: &Actor,
        owner: Owner<'_>,
        key: &ConfigKey,
        to: u64,
        if_match: Option<IfMatch>,
    ) -> AppResult<Setting> {
        let doc = self.configs.rollback(actor, owner, &ConfigScope::Tenant(key.clone()), to, if_match).await?;
        Ok(Setting::of(key.to_string(), owner, doc))
    }
}

fn not_found(key: &ConfigKey) -> AppError {
    AppError::NotFound(format!("setting '{key}' does not exist"))
}

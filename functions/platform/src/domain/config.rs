//! Versioned configuration documents: every change is a new immutable version.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ids::{ConfigKey, FlagKey, SystemId, TenantId};

/// Whose documents: one tenant's, or the platform's (defaults set by the platform
/// administrator, which tenants may read where marked public).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    Tenant(&'a TenantId),
    Platform,
}

impl<'a> Owner<'a> {
    pub fn tenant(self) -> Option<&'a TenantId> {
        match self {
            Owner::Tenant(t) => Some(t),
            Owner::Platform => None,
        }
    }

    /// `tenant` or `platform`, as API answers name the scope.
    pub fn scope_name(self) -> &'static str {
        match self {
            Owner::Tenant(_) => "tenant",
            Owner::Platform => "platform",
        }
    }
}

impl<'a> From<&'a TenantId> for Owner<'a> {
    fn from(tenant: &'a TenantId) -> Self {
        Owner::Tenant(tenant)
    }
}

/// Which versioned document of an owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigScope {
    /// A setting (a free-form configuration key): `/api/v1/settings/{key}`, also reachable
    /// as `/api/v1/config/tenants/{tenant_id}/configs/{config_key}`.
    Tenant(ConfigKey),
    /// An installed system's configuration, checked against its JSON Schema.
    System(SystemId),
    /// A feature flag's definition.
    Flag(FlagKey),
}

impl ConfigScope {
    /// A stable name used in store keys: `t:<key>`, `s:<system>` or `f:<flag>`.
    pub fn key(&self) -> String {
        match self {
            ConfigScope::Tenant(k) => format!("t:{k}"),
            ConfigScope::System(s) => format!("s:{s}"),
            ConfigScope::Flag(f) => format!("f:{f}"),
        }
    }

    /// The store-key prefix shared by every document of this scope's kind.
    pub fn kind_prefix(&self) -> &'static str {
        match self {
            ConfigScope::Tenant(_) => "t:",
            ConfigScope::System(_) => "s:",
            ConfigScope::Flag(_) => "f:",
        }
    }
}

/// What makes a configuration key a described setting: shown by `/api/v1/settings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SettingMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A JSON Schema (draft 2020-12) every value written must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Value>)]
    pub schema: Option<Value>,
    /// Platform settings only: tenants may read it (and it is their default).
    #[serde(default)]
    pub public: bool,
}

/// Why a version exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConfigCause {
    /// A caller wrote it.
    Write,
    /// A caller rolled back to an earlier version; its value is copied.
    Rollback { to_version: u64 },
    /// Installing the system wrote its default configuration.
    Install { system_version: String },
    /// Changing the installed system's version migrated the configuration.
    Migration { from_version: String, to_version: String },
    /// A caller deleted the document; its history stays, and writing it again continues it.
    Delete,
}

/// One immutable version of a configuration document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConfigVersion {
    /// 1 for the first write, then +1 for every change.
    pub version: u64,
    #[schema(value_type = Value)]
    pub value: Value,
    pub cause: ConfigCause,
    pub updated_at: String,
    /// The setting's description, category and schema, when it has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setting: Option<SettingMeta>,
    /// A deletion's marker: the document reads as absent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

/// The `ETag` of a configuration version: a strong validator.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// Parses an `If-Match` value into the version it names; `*` matches any existing version.
pub fn parse_if_match(raw: &str) -> Option<IfMatch> {
    let raw = raw.trim();
    if raw == "*" {
        return Some(IfMatch::Any);
    }
    let inner = raw.strip_prefix("W/").unwrap_or(raw).trim_matches('"');
    inner.parse().ok().map(IfMatch::Version)
}

/// Whether an `If-Match` value is well formed (RFC 9110 section 13.1.1): `*` or a
/// comma-separated list of entity tags, each `"..."` or `W/"..."`. A well-formed value
/// that names no version is a failed precondition; anything else is a bad request.
pub fn is_if_match_syntax(raw: &str) -> bool {
    let raw = raw.trim();
    raw == "*"
        || raw.split(',').all(|tag| {
            let tag = tag.trim();
            let opaque = tag.strip_prefix("W/").unwrap_or(tag);
            opaque.len() >= 2
                && opaque.starts_with('"')
                && opaque.ends_with('"')
                && !opaque[1..opaque.len() - 1].contains('"')
                && opaque.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80 || b == b'"')
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMatch {
    Any,
    Version(u64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_round_trip_through_if_match() {
        assert_eq!(parse_if_match(&etag(7)), Some(IfMatch::Version(7)));
        assert_eq!(parse_if_match("W/\"3\""), Some(IfMatch::Version(3)));
        assert_eq!(parse_if_match("*"), Some(IfMatch::Any));
        assert_eq!(parse_if_match("\"abc\""), None);
    }

    #[test]
    fn if_match_syntax_is_entity_tags_or_a_star() {
        for good in ["*", "\"3\"", "W/\"3\"", "\"abc\"", "\"1\", W/\"2\"", " \"\" "] {
            assert!(is_if_match_syntax(good), "{good}");
        }
        for bad in ["", " ", "3", "\"3", "W/3", "\"a\"b\"", "*, \"1\"", "\"1\",", "\"a b\""] {
            assert!(!is_if_match_syntax(bad), "{bad}");
        }
    }

    #[test]
    fn scopes_have_distinct_keys() {
        let t = ConfigScope::Tenant(ConfigKey::parse("crm").unwrap());
        let s = ConfigScope::System(SystemId::parse("crm").unwrap());
        assert_ne!(t.key(), s.key());
    }
}

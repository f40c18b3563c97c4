//! Versioned configuration documents: every change is a new immutable version.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ids::{ConfigKey, SystemId};

/// Which configuration document of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigScope {
    /// A free-form tenant setting: `/api/v1/config/tenants/{tenant_id}/configs/{config_key}`.
    Tenant(ConfigKey),
    /// An installed system's configuration, checked against its JSON Schema.
    System(SystemId),
}

impl ConfigScope {
    /// A stable name used in store keys: `t:<key>` or `s:<system>`.
    pub fn key(&self) -> String {
        match self {
            ConfigScope::Tenant(k) => format!("t:{k}"),
            ConfigScope::System(s) => format!("s:{s}"),
        }
    }
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
}

/// One immutable version of a configuration document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConfigVersion {
    /// 1 for the first write, then +1 for every change.
    pub version: u64,
    #[schema(value_type = Object)]
    pub value: Value,
    pub cause: ConfigCause,
    pub updated_at: String,
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
    fn scopes_have_distinct_keys() {
        let t = ConfigScope::Tenant(ConfigKey::parse("crm").unwrap());
        let s = ConfigScope::System(SystemId::parse("crm").unwrap());
        assert_ne!(t.key(), s.key());
    }
}

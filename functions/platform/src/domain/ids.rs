//! Identifiers that parse rather than validate: holding one proves it is well formed.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::invalid::Invalid;

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal, $allowed:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Accepts 1..=max characters of the allowed set, starting with a letter or digit.
            pub fn parse(raw: &str) -> Result<Self, Invalid> {
                let allowed: fn(char) -> bool = $allowed;
                let first_ok = raw.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
                if raw.is_empty() || raw.len() > $max || !first_ok || !raw.chars().all(allowed) {
                    return Err(Invalid::one(
                        $field,
                        format!(concat!("must be 1 to {} characters: ", $what, ", starting with a letter or digit"), $max),
                    ));
                }
                Ok(Self(raw.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(|e| serde::de::Error::custom(&e.0[0].message))
            }
        }
    };
}

identifier!(
    /// A tenant: the unit of isolation. Part of the partition key of every tenant item.
    TenantId, "tenant_id", 64,
    |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
    "letters, digits, '-' or '_'"
);

identifier!(
    /// A catalog system such as `crm` or `sales`.
    SystemId, "system_id", 50,
    |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_',
    "lower-case letters, digits, '-' or '_'"
);

identifier!(
    /// The key of a tenant configuration document, e.g. `branding` or `mail.smtp`.
    ConfigKey, "config_key", 128,
    |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'),
    "letters, digits, '-', '_', '.' or ':'"
);

identifier!(
    /// A feature flag, e.g. `new-checkout` or `billing.v2`.
    FlagKey, "flag_key", 128,
    |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'),
    "letters, digits, '-', '_' or '.'"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_parse() {
        assert_eq!(TenantId::parse("acme-01").unwrap().as_str(), "acme-01");
        for bad in ["", "-acme", "ac me", "acme#1", &"a".repeat(65)] {
            let err = TenantId::parse(bad).unwrap_err();
            assert_eq!(err.0[0].field, "tenant_id", "{bad:?}");
        }
    }

    #[test]
    fn system_ids_are_lower_case() {
        assert!(SystemId::parse("crm").is_ok());
        assert!(SystemId::parse("CRM").is_err());
        assert!(SystemId::parse("crm#x").is_err());
    }

    #[test]
    fn config_keys_allow_dots_but_not_separators() {
        assert!(ConfigKey::parse("mail.smtp").is_ok());
        assert!(ConfigKey::parse("a/b").is_err());
        assert!(ConfigKey::parse("a#b").is_err());
    }

    #[test]
    fn ids_deserialize_through_parse() {
        let ok: SystemId = serde_json::from_str("\"sales\"").unwrap();
        assert_eq!(ok.as_str(), "sales");
        assert!(serde_json::from_str::<SystemId>("\"Sales!\"").is_err());
    }
}

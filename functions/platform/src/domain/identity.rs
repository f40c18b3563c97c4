//! Users, teams, sessions, API keys and one-time tokens, and the rules on their input.

use serde::{Deserialize, Serialize};

use super::access::Permission;
use super::ids::TenantId;
use super::invalid::{FieldIssue, Invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub user_id: String,
    #[schema(value_type = String)]
    pub tenant_id: TenantId,
    pub email: String,
    pub username: String,
    pub full_name: String,
    pub roles: Vec<String>,
    pub status: UserStatus,
    pub email_verified: bool,
    pub created_at: String,
    pub updated_at: String,
    pub last_login_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Role {
    pub name: String,
    pub description: String,
    pub permissions: Vec<Permission>,
    pub builtin: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Team {
    pub team_id: String,
    pub name: String,
    pub description: String,
    pub members: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Session {
    pub session_id: String,
    pub user_id: String,
    pub created_at: String,
    pub last_used_at: String,
    /// When the refresh token stops working unless used before (RFC 3339, sliding).
    pub expires_at: String,
    /// When the session ends however often it is refreshed (RFC 3339, absolute).
    #[serde(default)]
    pub absolute_expires_at: String,
    /// The user's token generation the session was opened in; a newer one ends it.
    #[serde(default)]
    #[schema(ignore)]
    pub generation: u64,
    pub revoked_at: Option<String>,
    pub revoked_reason: Option<String>,
    pub user_agent: Option<String>,
    /// SHA-256 of the current refresh secret.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    #[schema(ignore)]
    pub refresh_hash: String,
    /// SHA-256 of refresh secrets already rotated away; presenting one revokes the session.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    #[schema(ignore)]
    pub used_hashes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub key_id: String,
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub user_id: String,
    pub scopes: Vec<Permission>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// Normalises an email address; `field` names the input in errors.
pub fn parse_email(raw: &str, field: &str) -> Result<String, Invalid> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c == '#');
    if valid {
        Ok(email)
    } else {
        Err(Invalid::one(field, "is not an email address"))
    }
}

/// OWASP: at least 12 characters (no composition rules), at most 128, not the email.
pub fn check_password(password: &str, email: &str, field: &str) -> Result<(), Invalid> {
    let length = password.chars().count();
    let message = if length < 12 {
        "must be at least 12 characters"
    } else if length > 128 {
        "must be at most 128 characters"
    } else if password.eq_ignore_ascii_case(email) {
        "must not be the email address"
    } else {
        return Ok(());
    };
    Err(Invalid::one(field, message))
}

pub fn check_name(issues: &mut Vec<FieldIssue>, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() {
        issues.push(FieldIssue::new(field, "must not be empty"));
    } else if value.chars().count() > max {
        issues.push(FieldIssue::new(field, format!("must be at most {max} characters")));
    }
}

/// Role names: lower-case letters, digits, '-' and '_'.
pub fn check_role_name(name: &str, field: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name.len() <= 50
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Invalid::one(field, "must be 1 to 50 lower-case letters, digits, '-' or '_'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(parse_email(" Ann@Example.COM ", "email").unwrap(), "ann@example.com");
        for bad in ["ann", "@example.com", "ann@example", "ann@.com", "a nn@example.com"] {
            assert!(parse_email(bad, "email").is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_follow_owasp_length_rules() {
        assert!(check_password("short", "a@b.co", "password").is_err());
        assert!(check_password(&"x".repeat(129), "a@b.co", "password").is_err());
        assert!(check_password("correct horse battery", "a@b.co", "password").is_ok());
        assert!(check_password("someone@example.com", "someone@example.com", "password").is_err());
    }
}

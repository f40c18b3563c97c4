//! The global catalog: systems and their published versions.

use std::collections::BTreeMap;

use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ids::SystemId;
use super::invalid::{FieldIssue, Invalid};
use super::manifest::Manifest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SystemStatus {
    Active,
    Deprecated,
    Retired,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct System {
    #[schema(value_type = String, example = "crm")]
    pub system_id: SystemId,
    pub name: String,
    pub description: String,
    /// The kind of system: `crm`, `sales`, `marketing`, `support`, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub status: SystemStatus,
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// The highest published version, if any.
    pub latest_version: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /api/v1/systems`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSystem {
    #[schema(value_type = String, example = "helpdesk")]
    pub system_id: SystemId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub status: Option<SystemStatus>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Option<Value>,
}

/// `PUT /api/v1/systems/{system_id}`: the fields given are replaced.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub status: Option<SystemStatus>,
    #[schema(value_type = Object)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SystemVersion {
    #[schema(value_type = String)]
    pub system_id: SystemId,
    #[schema(value_type = String, example = "1.1.0")]
    pub version: Version,
    pub release_notes: String,
    pub schema_version: u32,
    /// System id -> semver range, e.g. `{"crm": "^1.0"}`.
    #[schema(value_type = Object)]
    pub dependencies: BTreeMap<SystemId, VersionReq>,
    pub manifest: Manifest,
    pub created_at: String,
}

/// `POST /api/v1/systems/{system_id}/versions`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVersion {
    #[schema(value_type = String, example = "1.2.0")]
    pub version: Version,
    #[serde(default)]
    pub release_notes: String,
    pub schema_version: u32,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub dependencies: BTreeMap<SystemId, VersionReq>,
    pub manifest: Manifest,
}

fn check_text(issues: &mut Vec<FieldIssue>, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() {
        issues.push(FieldIssue::new(field, "must not be empty"));
    } else if value.chars().count() > max {
        issues.push(FieldIssue::new(field, format!("must be at most {max} characters")));
    }
}

fn check_metadata(issues: &mut Vec<FieldIssue>, metadata: Option<&Value>) {
    if metadata.is_some_and(|m| !m.is_object()) {
        issues.push(FieldIssue::new("metadata", "must be an object"));
    }
}

fn result(issues: Vec<FieldIssue>) -> Result<(), Invalid> {
    if issues.is_empty() {
        Ok(())
    } else {
        Err(Invalid(issues))
    }
}

impl NewSystem {
    pub fn check(&self) -> Result<(), Invalid> {
        let mut issues = Vec::new();
        check_text(&mut issues, "name", &self.name, 100);
        check_text(&mut issues, "type", &self.kind, 50);
        check_metadata(&mut issues, self.metadata.as_ref());
        result(issues)
    }
}

impl SystemUpdate {
    pub fn check(&self) -> Result<(), Invalid> {
        let mut issues = Vec::new();
        if let Some(name) = &self.name {
            check_text(&mut issues, "name", name, 100);
        }
        if let Some(kind) = &self.kind {
            check_text(&mut issues, "type", kind, 50);
        }
        check_metadata(&mut issues, self.metadata.as_ref());
        result(issues)
    }

    pub fn apply(self, system: &mut System, now: &str) {
        if let Some(v) = self.name {
            system.name = v;
        }
        if let Some(v) = self.description {
            system.description = v;
        }
        if let Some(v) = self.kind {
            system.kind = v;
        }
        if let Some(v) = self.status {
            system.status = v;
        }
        if let Some(v) = self.metadata {
            system.metadata = v;
        }
        system.updated_at = now.to_string();
    }
}

impl NewVersion {
    /// Checks the version against the system it extends: `earlier` are the versions
    /// already published, `known` the systems of the catalog.
    pub fn check(&self, system: &SystemId, earlier: &[Version], known: &[SystemId]) -> Result<(), Invalid> {
        let mut issues = Vec::new();
        if let Err(e) = self.manifest.check() {
            issues.extend(e.0);
        }
        for dep in self.dependencies.keys() {
            if dep == system {
                issues.push(FieldIssue::new(format!("dependencies.{dep}"), "a system cannot depend on itself"));
            } else if !known.contains(dep) {
                issues.push(FieldIssue::new(format!("dependencies.{dep}"), "is not a system of the catalog"));
            }
        }
        for (i, migration) in self.manifest.migrations.iter().enumerate() {
            if migration.from >= self.version || !earlier.contains(&migration.from) {
                issues.push(FieldIssue::new(
                    format!("manifest.migrations[{i}].from"),
                    format!("{} is not an earlier published version", migration.from),
                ));
            }
        }
        result(issues)
    }
}

/// Parses what a caller asks for: an exact version (`1.0.0` means exactly that) or a
/// range (`^1.0`, `>=1.1, <2`). `field` names the input in errors.
pub fn parse_version_request(raw: &str, field: &str) -> Result<VersionReq, Invalid> {
    if let Ok(exact) = Version::parse(raw.trim()) {
        return Ok(VersionReq {
            comparators: vec![semver::Comparator {
                op: semver::Op::Exact,
                major: exact.major,
                minor: Some(exact.minor),
                patch: Some(exact.patch),
                pre: exact.pre,
            }],
        });
    }
    VersionReq::parse(raw).map_err(|e| Invalid::one(field, format!("is not a semver version or range: {e}")))
}

/// A string that sorts like the version it encodes (for store sort keys).
pub fn version_sort_key(v: &Version) -> String {
    // '~' sorts after '-', so a release comes after its pre-releases.
    let pre = if v.pre.is_empty() { "~".to_string() } else { format!("-{}", v.pre) };
    format!("{:010}.{:010}.{:010}{pre}", v.major, v.minor, v.patch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_versions_mean_exactly_that() {
        let req = parse_version_request("1.0.0", "version").unwrap();
        assert!(req.matches(&Version::parse("1.0.0").unwrap()));
        assert!(!req.matches(&Version::parse("1.1.0").unwrap()));
        let range = parse_version_request("^1.0", "version").unwrap();
        assert!(range.matches(&Version::parse("1.4.2").unwrap()));
        assert_eq!(parse_version_request("banana", "version").unwrap_err().0[0].field, "version");
    }

    #[test]
    fn sort_keys_follow_semver_order() {
        let mut versions: Vec<Version> =
            ["1.10.0", "1.2.0", "1.2.0-beta.1", "2.0.0", "0.9.9"].iter().map(|v| Version::parse(v).unwrap()).collect();
        let mut by_key = versions.clone();
        by_key.sort_by_key(version_sort_key);
        versions.sort();
        assert_eq!(by_key, versions);
    }
}

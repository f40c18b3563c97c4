//! Feature flags: definitions and their evaluation for one caller.
//!
//! A flag serves one of its variants. In order: a disabled flag (the kill switch) serves
//! its `off_variant` (reason `DISABLED`); a platform flag's per-tenant override; the first
//! target that names the caller (user id, role, team or e-mail domain; `TARGETING_MATCH`);
//! a rollout, which buckets the caller by a hash of the flag key and the targeting key
//! (`SPLIT`; stable across processes and releases: SHA-256, never a seeded hasher);
//! else the `default_variant` (`STATIC` when the flag has no rules, `DEFAULT` otherwise).
//! Reasons are OpenFeature's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::invalid::{FieldIssue, Invalid};

/// Most variants, targets and list entries a flag may have.
pub const MAX_VARIANTS: usize = 50;
pub const MAX_TARGETS: usize = 100;
pub const MAX_TARGET_VALUES: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    /// Serves `true` (variant `on`) or `false` (variant `off`).
    #[default]
    Boolean,
    /// Serves the JSON value of one of its named variants.
    Variant,
}

/// Who a target names; any one matching entry is a match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The variant served to whoever this target names.
    pub variant: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Team ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    /// E-mail domains, e.g. `example.com` (compared without case).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub email_domains: Vec<String>,
}

/// One variant's share of a weighted rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Weight {
    pub variant: String,
    pub weight: u32,
}

/// A sticky rollout: either `percentage` of callers get `variant` (default `on`) and the
/// rest the `off_variant`, or the callers are split over `weights`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// 0 to 100, at most two decimals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<Weight>,
}

/// A flag as written (`POST`/`PUT /api/v1/settings/feature-flags...`). Unknown fields
/// are refused where a body is read ([`FIELDS`]); not here, so that the answers that
/// carry a definition beside other fields describe themselves truly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlagDefinition {
    #[serde(default)]
    pub kind: FlagKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `false` is the kill switch: everyone gets the `off_variant`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Variant name -> value. Boolean flags have exactly `on: true` and `off: false`
    /// (filled in when omitted).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variants: BTreeMap<String, Value>,
    /// Served when the flag is disabled (boolean default `off`).
    #[serde(default)]
    pub off_variant: String,
    /// Served when no target or rollout decides (boolean default `on`).
    #[serde(default)]
    pub default_variant: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// Platform flags only: tenant id -> the variant that tenant gets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tenants: BTreeMap<String, String>,
}

/// The fields a written definition may have.
pub const FIELDS: [&str; 9] =
    ["kind", "description", "enabled", "variants", "off_variant", "default_variant", "targets", "rollout", "tenants"];

fn yes() -> bool {
    true
}

/// Who is asking: the evaluation context.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    /// What rollouts bucket by: the user id (OpenFeature's `targetingKey`).
    pub targeting_key: Option<String>,
    pub tenant: Option<String>,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub teams: Vec<String>,
}

/// OpenFeature resolution reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    Static,
    Default,
    TargetingMatch,
    Split,
    Disabled,
}

/// What a flag serves one caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub value: Value,
    pub variant: String,
    pub reason: Reason,
}

impl FlagDefinition {
    /// Fills a boolean flag's fixed variants and defaults, then checks the whole flag;
    /// every fault names its field.
    pub fn normalized(mut self, platform: bool) -> Result<Self, Invalid> {
        let mut issues = Vec::new();
        if self.kind == FlagKind::Boolean {
            let fixed =
                BTreeMap::from([("off".to_string(), Value::Bool(false)), ("on".to_string(), Value::Bool(true))]);
            if !self.variants.is_empty() && self.variants != fixed {
                issues.push(FieldIssue::new("variants", "a boolean flag's variants are on: true and off: false"));
            }
            self.variants = fixed;
            if self.off_variant.is_empty() {
                self.off_variant = "off".to_string();
            }
            if self.default_variant.is_empty() {
                self.default_variant = "on".to_string();
            }
        } else if self.variants.is_empty() {
            // Nothing else can be checked against no variants.
            return Err(Invalid::one("variants", "a variant flag needs at least one variant"));
        }
        if self.variants.len() > MAX_VARIANTS {
            issues.push(FieldIssue::new("variants", format!("at most {MAX_VARIANTS} variants")));
        }
        if self.description.as_ref().is_some_and(|d| d.chars().count() > 1000) {
            issues.push(FieldIssue::new("description", "must be at most 1000 characters"));
        }
        let known = |name: &str| self.variants.contains_key(name);
        for (field, name) in [("off_variant", &self.off_variant), ("default_variant", &self.default_variant)] {
            if name.is_empty() {
                issues.push(FieldIssue::new(field, "is required"));
            } else if !known(name) {
                issues.push(FieldIssue::new(field, format!("'{name}' is not one of the flag's variants")));
            }
        }
        if self.targets.len() > MAX_TARGETS {
            issues.push(FieldIssue::new("targets", format!("at most {MAX_TARGETS} targets")));
        }
        for (i, target) in self.targets.iter().enumerate() {
            if !known(&target.variant) {
                issues.push(FieldIssue::new(format!("targets[{i}].variant"), "is not one of the flag's variants"));
            }
            let lists = [&target.user_ids, &target.roles, &target.teams, &target.email_domains];
            if lists.iter().all(|l| l.is_empty()) {
                issues.push(FieldIssue::new(
                    format!("targets[{i}]"),
                    "names no one: give user_ids, roles, teams or email_domains",
                ));
            }
            if lists.iter().map(|l| l.len()).sum::<usize>() > MAX_TARGET_VALUES {
                issues.push(FieldIssue::new(format!("targets[{i}]"), format!("at most {MAX_TARGET_VALUES} entries")));
            }
        }
        if let Some(rollout) = &self.rollout {
            match (rollout.percentage, rollout.weights.is_empty()) {
                (Some(_), false) => {
                    issues.push(FieldIssue::new("rollout", "give either percentage or weights, not both"))
                }
                (None, true) => issues.push(FieldIssue::new("rollout", "give percentage or weights")),
                (Some(p), true) => {
                    if !(0.0..=100.0).contains(&p) || (p * 100.0).fract() != 0.0 {
                        issues
                            .push(FieldIssue::new("rollout.percentage", "must be 0 to 100 with at most two decimals"));
                    }
                    let variant = rollout.variant.as_deref().unwrap_or("on");
                    if !known(variant) {
                        issues.push(FieldIssue::new(
                            "rollout.variant",
                            format!("'{variant}' is not one of the flag's variants"),
                        ));
                    }
                }
                (None, false) => {
                    if rollout.variant.is_some() {
                        issues.push(FieldIssue::new("rollout.variant", "goes with percentage, not weights"));
                    }
                    for (i, w) in rollout.weights.iter().enumerate() {
                        if !known(&w.variant) {
                            issues.push(FieldIssue::new(
                                format!("rollout.weights[{i}].variant"),
                                "is not one of the flag's variants",
                            ));
                        }
                    }
                    if rollout.weights.iter().map(|w| u64::from(w.weight)).sum::<u64>() == 0 {
                        issues.push(FieldIssue::new("rollout.weights", "must add up to more than 0"));
                    }
                }
            }
        }
        if !platform && !self.tenants.is_empty() {
            issues.push(FieldIssue::new("tenants", "only platform flags have per-tenant overrides"));
        }
        for (tenant, variant) in &self.tenants {
            if !known(variant) {
                issues.push(FieldIssue::new(format!("tenants.{tenant}"), "is not one of the flag's variants"));
            }
        }
        if issues.is_empty() {
            Ok(self)
        } else {
            Err(Invalid(issues))
        }
    }

    fn serve(&self, variant: &str, reason: Reason) -> Resolution {
        Resolution {
            value: self.variants.get(variant).cloned().unwrap_or(Value::Null),
            variant: variant.to_string(),
            reason,
        }
    }

    /// What this flag serves `context`.
    pub fn evaluate(&self, key: &str, context: &Context) -> Resolution {
        if !self.enabled {
            return self.serve(&self.off_variant, Reason::Disabled);
        }
        if let Some(variant) = context.tenant.as_ref().and_then(|t| self.tenants.get(t)) {
            return self.serve(variant, Reason::TargetingMatch);
        }
        let domain = context.email.as_deref().and_then(|e| e.rsplit_once('@')).map(|(_, d)| d.to_ascii_lowercase());
        for target in &self.targets {
            let named = context.targeting_key.as_ref().is_some_and(|u| target.user_ids.contains(u))
                || context.roles.iter().any(|r| target.roles.contains(r))
                || context.teams.iter().any(|t| target.teams.contains(t))
                || domain.as_ref().is_some_and(|d| target.email_domains.iter().any(|x| x.eq_ignore_ascii_case(d)));
            if named {
                return self.serve(&target.variant, Reason::TargetingMatch);
            }
        }
        if let (Some(rollout), Some(who)) = (&self.rollout, &context.targeting_key) {
            let point = bucket(key, who);
            if let Some(p) = rollout.percentage {
                // Basis points: 25.5 % is buckets 0..2550 of 10 000.
                let variant = if (point % 10_000) < (p * 100.0).round() as u64 {
                    rollout.variant.as_deref().unwrap_or("on")
                } else {
                    &self.off_variant
                };
                return self.serve(variant, Reason::Split);
            }
            let total: u64 = rollout.weights.iter().map(|w| u64::from(w.weight)).sum();
            if total > 0 {
                let mut at = point % total;
                for w in &rollout.weights {
                    if at < u64::from(w.weight) {
                        return self.serve(&w.variant, Reason::Split);
                    }
                    at -= u64::from(w.weight);
                }
            }
        }
        let dynamic = !self.targets.is_empty() || self.rollout.is_some() || !self.tenants.is_empty();
        self.serve(&self.default_variant, if dynamic { Reason::Default } else { Reason::Static })
    }
}

/// Where a caller falls for a flag: the first 8 bytes of SHA-256(`flag/targeting key`).
pub fn bucket(flag: &str, targeting_key: &str) -> u64 {
    let digest = Sha256::digest(format!("{flag}/{targeting_key}").as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flag(def: Value) -> FlagDefinition {
        serde_json::from_value::<FlagDefinition>(def).unwrap().normalized(false).unwrap()
    }

    fn user(id: &str) -> Context {
        Context { targeting_key: Some(id.to_string()), ..Context::default() }
    }

    #[test]
    fn a_plain_boolean_flag_is_on_and_static() {
        let r = flag(json!({})).evaluate("f", &user("u1"));
        assert_eq!((r.value, r.variant.as_str(), r.reason), (json!(true), "on", Reason::Static));
    }

    #[test]
    fn the_kill_switch_serves_the_off_variant() {
        let r = flag(json!({"enabled": false, "targets": [{"variant": "on", "user_ids": ["u1"]}]}))
            .evaluate("f", &user("u1"));
        assert_eq!((r.value, r.reason), (json!(false), Reason::Disabled));
    }

    #[test]
    fn targets_match_by_user_role_team_and_email_domain() {
        let f = flag(json!({"default_variant": "off", "targets": [
            {"variant": "on", "user_ids": ["u1"]}, {"variant": "on", "roles": ["admin"]},
            {"variant": "on", "teams": ["t1"]}, {"variant": "on", "email_domains": ["Example.com"]}]}));
        let by_role = Context { roles: vec!["admin".into()], ..user("u2") };
        let by_team = Context { teams: vec!["t1".into()], ..user("u3") };
        let by_mail = Context { email: Some("a@example.COM".into()), ..user("u4") };
        for ctx in [user("u1"), by_role, by_team, by_mail] {
            assert_eq!(f.evaluate("f", &ctx).reason, Reason::TargetingMatch, "{ctx:?}");
        }
        let r = f.evaluate("f", &user("u9"));
        assert_eq!((r.value, r.reason), (json!(false), Reason::Default));
    }

    #[test]
    fn percentage_rollouts_are_sticky_and_close_to_their_share() {
        let f = flag(json!({"rollout": {"percentage": 25}}));
        let on =
            (0..10_000).filter(|i| f.evaluate("checkout", &user(&format!("user-{i}"))).value == json!(true)).count();
        assert!((2_300..2_700).contains(&on), "{on} of 10000");
        let again = f.evaluate("checkout", &user("user-42"));
        assert_eq!(again, f.evaluate("checkout", &user("user-42")));
        assert_eq!(again.reason, Reason::Split);
        // A wider rollout keeps everyone who had it.
        let wider = flag(json!({"rollout": {"percentage": 50}}));
        for i in 0..1000 {
            let u = user(&format!("user-{i}"));
            if f.evaluate("checkout", &u).value == json!(true) {
                assert_eq!(wider.evaluate("checkout", &u).value, json!(true));
            }
        }
    }

    #[test]
    fn buckets_are_fixed_across_releases() {
        // The first 8 bytes of SHA-256("checkout/user-42"), computed outside Rust: pinned so
        // that any change of hash (which would move users between variants) is caught.
        assert_eq!(bucket("checkout", "user-42"), 2_481_179_049_833_436_018);
    }

    #[test]
    fn weighted_variants_split_by_weight() {
        let f = flag(json!({"kind": "variant", "variants": {"a": "A", "b": "B"}, "off_variant": "a",
            "default_variant": "a", "rollout": {"weights": [{"variant": "a", "weight": 1}, {"variant": "b", "weight": 3}]}}));
        let b = (0..4000).filter(|i| f.evaluate("v", &user(&format!("u{i}"))).variant == "b").count();
        assert!((2_800..3_200).contains(&b), "{b} of 4000");
    }

    #[test]
    fn platform_flags_override_per_tenant() {
        let f: FlagDefinition =
            serde_json::from_value(json!({"default_variant": "off", "tenants": {"acme": "on"}})).unwrap();
        let f = f.normalized(true).unwrap();
        let ctx = Context { tenant: Some("acme".into()), ..user("u1") };
        assert_eq!(f.evaluate("f", &ctx).value, json!(true));
        assert_eq!(f.evaluate("f", &user("u1")).value, json!(false));
    }

    #[test]
    fn bad_definitions_name_their_fields() {
        let bad: FlagDefinition = serde_json::from_value(json!({"kind": "variant", "variants": {"a": 1},
            "off_variant": "a", "default_variant": "zz", "targets": [{"variant": "a"}],
            "rollout": {"percentage": 101}, "tenants": {"x": "a"}}))
        .unwrap();
        let fields: Vec<String> = bad.normalized(false).unwrap_err().0.into_iter().map(|i| i.field).collect();
        for f in ["default_variant", "targets[0]", "rollout.percentage", "rollout.variant", "tenants"] {
            assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
        }
    }
}

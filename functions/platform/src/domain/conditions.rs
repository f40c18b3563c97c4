//! Rule conditions: what a rule's author writes (`ConditionInput`, the API's
//! `{"type", "field", "value"}`), checked once against the trigger into a typed
//! [`Condition`] (same JSON), which the matcher compiles.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

use super::invalid::{FieldIssue, Invalid};
use super::pattern;

/// A condition as written: checked into a [`Condition`] by [`ConditionInput::check`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionInput {
    /// One of [`CONDITION_TYPES`].
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Value>)]
    pub value: Option<Value>,
}

/// A checked condition. Serialized as it was written (`{"type", "field", "value"}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Condition {
    /// The data's `value` (or `field`) is at least `value`.
    ValueThreshold {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
        #[schema(value_type = f64)]
        value: Number,
    },
    Equals {
        field: String,
        #[schema(value_type = Value)]
        value: Value,
    },
    /// Holds when the field is missing too.
    NotEquals {
        field: String,
        #[schema(value_type = Value)]
        value: Value,
    },
    GreaterThan {
        field: String,
        #[schema(value_type = f64)]
        value: Number,
    },
    GreaterOrEqual {
        field: String,
        #[schema(value_type = f64)]
        value: Number,
    },
    LessThan {
        field: String,
        #[schema(value_type = f64)]
        value: Number,
    },
    LessOrEqual {
        field: String,
        #[schema(value_type = f64)]
        value: Number,
    },
    /// A string field contains the text, or a list field holds the value.
    Contains {
        field: String,
        #[schema(value_type = Value)]
        value: Value,
    },
    In {
        field: String,
        #[schema(value_type = Vec<Object>)]
        value: Vec<Value>,
    },
    Exists {
        field: String,
        #[serde(default = "yes")]
        value: bool,
    },
    /// The record change changed the field.
    Changed {
        field: String,
    },
    /// The record change set the field to the value.
    ChangedTo {
        field: String,
        #[schema(value_type = Value)]
        value: Value,
    },
    Prefix {
        field: String,
        value: String,
    },
    Suffix {
        field: String,
        value: String,
    },
    EqualsIgnoreCase {
        field: String,
        value: String,
    },
    Wildcard {
        field: String,
        value: String,
    },
    /// EventBridge `anything-but` (a value, a list, or `{"prefix" | "suffix" |
    /// "equals-ignore-case" | "wildcard": ...}`).
    AnythingBut {
        field: String,
        #[schema(value_type = Value)]
        value: Value,
    },
    /// EventBridge `numeric`: `[">", 0, "<=", 5]`.
    Numeric {
        field: String,
        #[schema(value_type = Vec<Object>)]
        value: Vec<Value>,
    },
    /// A whole EventBridge event pattern, over the data's fields or over the envelope
    /// (`source`, `detail-type`, `time`, `detail`...).
    Pattern {
        #[schema(value_type = Value)]
        value: Value,
    },
    /// The tenant's boolean feature flag `value` is on (evaluated for the tenant).
    FeatureEnabled {
        #[schema(value_type = String)]
        value: super::ids::FlagKey,
    },
    /// At least one of the conditions holds.
    AnyOf {
        #[schema(no_recursion)]
        value: Vec<Condition>,
    },
}

fn yes() -> bool {
    true
}

/// Condition types: the seed's threshold, field comparisons, and EventBridge operators.
pub const CONDITION_TYPES: [&str; 21] = [
    "value_threshold",
    "equals",
    "not_equals",
    "greater_than",
    "greater_or_equal",
    "less_than",
    "less_or_equal",
    "contains",
    "in",
    "exists",
    "changed",
    "changed_to",
    "prefix",
    "suffix",
    "equals_ignore_case",
    "anything_but",
    "numeric",
    "pattern",
    "any_of",
    "wildcard",
    "feature_enabled",
];

/// The envelope fields a pattern may address besides the data (`detail`).
pub const ENVELOPE_FIELDS: [&str; 8] =
    ["version", "id", "source", "detail-type", "account", "time", "region", "resources"];

/// What a trigger carries, for checking conditions against it.
#[derive(Debug, Clone, Default)]
pub struct TriggerFields {
    /// Every field an event of the trigger may carry.
    pub fields: BTreeSet<String>,
    /// The fields a change can be detected on (the entity's properties).
    pub changeable: BTreeSet<String>,
    /// Events of another AWS service: their fields are not known beforehand, so any is allowed.
    pub open: bool,
}

/// Whether a pattern addresses the envelope (it names `detail`, or only envelope fields
/// the trigger's data does not also carry) rather than the data's fields.
pub fn addresses_envelope(pattern: &Value, data_fields: &BTreeSet<String>) -> bool {
    let Some(object) = pattern.as_object() else { return false };
    if object.contains_key("detail") {
        return true;
    }
    let keys: Vec<&String> = object.keys().filter(|k| *k != "$or").collect();
    !keys.is_empty() && keys.iter().all(|k| ENVELOPE_FIELDS.contains(&k.as_str()) && !data_fields.contains(*k))
}

impl Condition {
    /// Its `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::ValueThreshold { .. } => "value_threshold",
            Condition::Equals { .. } => "equals",
            Condition::NotEquals { .. } => "not_equals",
            Condition::GreaterThan { .. } => "greater_than",
            Condition::GreaterOrEqual { .. } => "greater_or_equal",
            Condition::LessThan { .. } => "less_than",
            Condition::LessOrEqual { .. } => "less_or_equal",
            Condition::Contains { .. } => "contains",
            Condition::In { .. } => "in",
            Condition::Exists { .. } => "exists",
            Condition::Changed { .. } => "changed",
            Condition::ChangedTo { .. } => "changed_to",
            Condition::Prefix { .. } => "prefix",
            Condition::Suffix { .. } => "suffix",
            Condition::EqualsIgnoreCase { .. } => "equals_ignore_case",
            Condition::Wildcard { .. } => "wildcard",
            Condition::AnythingBut { .. } => "anything_but",
            Condition::Numeric { .. } => "numeric",
            Condition::Pattern { .. } => "pattern",
            Condition::AnyOf { .. } => "any_of",
            Condition::FeatureEnabled { .. } => "feature_enabled",
        }
    }

    /// The data field it tests, if it names one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Condition::ValueThreshold { field, .. } => field.as_deref(),
            Condition::Equals { field, .. }
            | Condition::NotEquals { field, .. }
            | Condition::GreaterThan { field, .. }
            | Condition::GreaterOrEqual { field, .. }
            | Condition::LessThan { field, .. }
            | Condition::LessOrEqual { field, .. }
            | Condition::Contains { field, .. }
            | Condition::In { field, .. }
            | Condition::Exists { field, .. }
            | Condition::Changed { field }
            | Condition::ChangedTo { field, .. }
            | Condition::Prefix { field, .. }
            | Condition::Suffix { field, .. }
            | Condition::EqualsIgnoreCase { field, .. }
            | Condition::Wildcard { field, .. }
            | Condition::AnythingBut { field, .. }
            | Condition::Numeric { field, .. } => Some(field),
            Condition::Pattern { .. } | Condition::AnyOf { .. } | Condition::FeatureEnabled { .. } => None,
        }
    }
}

/// The value as a one-field EventBridge matcher list, for the operators the pattern
/// parser checks (so a condition and a pattern are refused alike).
fn as_pattern_leaf(kind: &str, value: &Value) -> (Value, &'static str) {
    let operator = match kind {
        "prefix" => "prefix",
        "suffix" => "suffix",
        "equals_ignore_case" => "equals-ignore-case",
        "wildcard" => "wildcard",
        "anything_but" => "anything-but",
        _ => "numeric",
    };
    (serde_json::json!({ "f": [{ operator: value }] }), operator)
}

fn scalar(value: &Value) -> bool {
    !(value.is_array() || value.is_object())
}

impl ConditionInput {
    /// Checks it against the trigger; every fault is named under `at`.
    pub fn check(&self, trigger: &TriggerFields, at: &str) -> Result<Condition, Vec<FieldIssue>> {
        let mut issues = Vec::new();
        let kind = self.kind.as_str();
        if !CONDITION_TYPES.contains(&kind) {
            return Err(vec![FieldIssue::new(
                format!("{at}.type"),
                format!("'{kind}' is not a condition type; use one of {}", CONDITION_TYPES.join(", ")),
            )]);
        }
        let needs_field = !matches!(kind, "value_threshold" | "pattern" | "any_of" | "feature_enabled");
        let takes_field = !matches!(kind, "pattern" | "any_of" | "feature_enabled");
        let field = match (&self.field, needs_field) {
            (None, true) => {
                issues.push(FieldIssue::new(format!("{at}.field"), "is required"));
                String::new()
            }
            (Some(field), _) if !takes_field => {
                issues.push(FieldIssue::new(format!("{at}.field"), format!("a {kind} condition takes no field")));
                field.clone()
            }
            (Some(field), _) => {
                let known =
                    if matches!(kind, "changed" | "changed_to") { &trigger.changeable } else { &trigger.fields };
                if !trigger.open && !known.contains(field) {
                    issues
                        .push(FieldIssue::new(format!("{at}.field"), format!("the trigger does not carry '{field}'")));
                }
                field.clone()
            }
            (None, false) => {
                if kind == "value_threshold" && !trigger.open && !trigger.fields.contains("value") {
                    issues
                        .push(FieldIssue::new(format!("{at}.field"), "the trigger carries no 'value'; name the field"));
                }
                String::new()
            }
        };
        let value_at = format!("{at}.value");
        let needs_value = !matches!(kind, "exists" | "changed");
        let value = match (&self.value, needs_value) {
            (None, true) => {
                issues.push(FieldIssue::new(&value_at, "is required"));
                return Err(issues);
            }
            (Some(_), false) if kind == "changed" => {
                issues.push(FieldIssue::new(&value_at, "a changed condition takes no value"));
                return Err(issues);
            }
            (value, _) => value.clone().unwrap_or(Value::Bool(true)),
        };
        let bad = |message: &str| FieldIssue::new(&value_at, message);
        let number = |issues: &mut Vec<FieldIssue>| match &value {
            Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => n.clone(),
            _ => {
                issues.push(bad("must be a number"));
                Number::from(0)
            }
        };
        let text = |issues: &mut Vec<FieldIssue>| match &value {
            Value::String(s) => s.clone(),
            _ => {
                issues.push(bad("must be a string"));
                String::new()
            }
        };
        let condition = match kind {
            "value_threshold" => Condition::ValueThreshold { field: self.field.clone(), value: number(&mut issues) },
            "greater_than" => Condition::GreaterThan { field, value: number(&mut issues) },
            "greater_or_equal" => Condition::GreaterOrEqual { field, value: number(&mut issues) },
            "less_than" => Condition::LessThan { field, value: number(&mut issues) },
            "less_or_equal" => Condition::LessOrEqual { field, value: number(&mut issues) },
            "equals" | "not_equals" | "changed_to" | "contains" => {
                if !scalar(&value) {
                    issues.push(bad("must be a string, a number, true, false or null"));
                }
                match kind {
                    "equals" => Condition::Equals { field, value },
                    "not_equals" => Condition::NotEquals { field, value },
                    "changed_to" => Condition::ChangedTo { field, value },
                    _ => Condition::Contains { field, value },
                }
            }
            "in" => match &value {
                Value::Array(list) if !list.is_empty() && list.iter().all(scalar) => {
                    Condition::In { field, value: list.clone() }
                }
                _ => {
                    issues.push(bad("must be a non-empty list of strings, numbers, true, false or null"));
                    Condition::In { field, value: Vec::new() }
                }
            },
            "exists" => match value {
                Value::Bool(b) => Condition::Exists { field, value: b },
                _ => {
                    issues.push(bad("must be true or false"));
                    Condition::Exists { field, value: true }
                }
            },
            "changed" => Condition::Changed { field },
            "prefix" | "suffix" | "equals_ignore_case" | "wildcard" | "anything_but" | "numeric" => {
                if matches!(kind, "prefix" | "suffix" | "equals_ignore_case" | "wildcard") {
                    text(&mut issues);
                }
                if issues.is_empty() {
                    // The same checks as the operator inside a pattern, named under `value`.
                    let (leaf, operator) = as_pattern_leaf(kind, &value);
                    if let Err(Invalid(found)) = pattern::parse(&leaf, "") {
                        let prefix = format!("f[0].{operator}");
                        for issue in found {
                            let rest = issue.field.strip_prefix(&prefix).unwrap_or_default();
                            issues.push(FieldIssue::new(format!("{value_at}{rest}"), issue.message));
                        }
                    }
                }
                match kind {
                    "prefix" => Condition::Prefix { field, value: value.as_str().unwrap_or_default().to_string() },
                    "suffix" => Condition::Suffix { field, value: value.as_str().unwrap_or_default().to_string() },
                    "equals_ignore_case" => {
                        Condition::EqualsIgnoreCase { field, value: value.as_str().unwrap_or_default().to_string() }
                    }
                    "wildcard" => Condition::Wildcard { field, value: value.as_str().unwrap_or_default().to_string() },
                    "anything_but" => Condition::AnythingBut { field, value },
                    _ => Condition::Numeric { field, value: value.as_array().cloned().unwrap_or_default() },
                }
            }
            "feature_enabled" => match value.as_str().map(super::ids::FlagKey::parse) {
                Some(Ok(key)) => Condition::FeatureEnabled { value: key },
                _ => {
                    issues.push(bad("must be a feature flag key"));
                    return Err(issues);
                }
            },
            "pattern" => {
                match pattern::parse(&value, &value_at) {
                    Err(Invalid(found)) => issues.extend(found),
                    Ok(_) => check_pattern_fields(&value, trigger, &value_at, &mut issues),
                }
                Condition::Pattern { value }
            }
            _ => match &value {
                Value::Array(list) if !list.is_empty() => {
                    let mut inner = Vec::new();
                    for (i, item) in list.iter().enumerate() {
                        let item_at = format!("{value_at}[{i}]");
                        match serde_json::from_value::<ConditionInput>(item.clone()) {
                            Ok(input) => match input.check(trigger, &item_at) {
                                Ok(condition) => inner.push(condition),
                                Err(found) => issues.extend(found),
                            },
                            Err(e) => issues.push(FieldIssue::new(item_at, format!("is not a condition: {e}"))),
                        }
                    }
                    Condition::AnyOf { value: inner }
                }
                _ => {
                    issues.push(bad("must be a non-empty list of conditions"));
                    Condition::AnyOf { value: Vec::new() }
                }
            },
        };
        if issues.is_empty() {
            Ok(condition)
        } else {
            Err(issues)
        }
    }
}

/// The fields a pattern names must be ones the trigger carries (at the top level of the
/// data, or under `detail`); envelope fields are the envelope's.
fn check_pattern_fields(pattern: &Value, trigger: &TriggerFields, at: &str, issues: &mut Vec<FieldIssue>) {
    let envelope = addresses_envelope(pattern, &trigger.fields);
    let check_data = |object: &serde_json::Map<String, Value>, at: &str, issues: &mut Vec<FieldIssue>| {
        for key in object.keys() {
            if key == "$or" {
                continue;
            }
            if !trigger.open && !trigger.fields.contains(key) {
                issues.push(FieldIssue::new(format!("{at}.{key}"), format!("the trigger does not carry '{key}'")));
            }
        }
    };
    let Some(object) = pattern.as_object() else { return };
    let alternatives = |o: &serde_json::Map<String, Value>| -> Vec<serde_json::Map<String, Value>> {
        o.get("$or")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_object().cloned()).collect())
            .unwrap_or_default()
    };
    if envelope {
        for key in object.keys() {
            if key != "$or" && key != "detail" && !ENVELOPE_FIELDS.contains(&key.as_str()) {
                issues.push(FieldIssue::new(
                    format!("{at}.{key}"),
                    format!("'{key}' is not an envelope field; the data's fields go under detail"),
                ));
            }
        }
        if let Some(detail) = object.get("detail").and_then(Value::as_object) {
            check_data(detail, &format!("{at}.detail"), issues);
        }
    } else {
        check_data(object, at, issues);
        for (i, alternative) in alternatives(object).iter().enumerate() {
            check_data(alternative, &format!("{at}.$or[{i}]"), issues);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trigger() -> TriggerFields {
        TriggerFields {
            fields: ["opportunity_name", "value", "stage", "owner", "source"].iter().map(|s| s.to_string()).collect(),
            changeable: ["value", "stage", "owner"].iter().map(|s| s.to_string()).collect(),
            open: false,
        }
    }

    fn check(v: Value) -> Result<Condition, Vec<String>> {
        let input: ConditionInput = serde_json::from_value(v).unwrap();
        input.check(&trigger(), "c").map_err(|issues| issues.into_iter().map(|i| i.field).collect())
    }

    #[test]
    fn checked_conditions_serialize_as_written() {
        for written in [
            json!({"type": "value_threshold", "value": 10000}),
            json!({"type": "equals", "field": "stage", "value": "won"}),
            json!({"type": "exists", "field": "owner", "value": false}),
            json!({"type": "changed", "field": "stage"}),
            json!({"type": "numeric", "field": "value", "value": [">", 0, "<=", 5]}),
            json!({"type": "any_of", "value": [{"type": "prefix", "field": "stage", "value": "clo"}]}),
            json!({"type": "pattern", "value": {"stage": [{"anything-but": "lost"}]}}),
        ] {
            let condition = check(written.clone()).unwrap();
            assert_eq!(serde_json::to_value(&condition).unwrap(), written);
            let back: Condition = serde_json::from_value(written.clone()).unwrap();
            assert_eq!(back, condition, "{written}");
        }
    }

    #[test]
    fn operators_are_checked_as_in_patterns() {
        assert_eq!(check(json!({"type": "wildcard", "field": "stage", "value": "a**b"})).unwrap_err(), ["c.value"]);
        assert_eq!(
            check(json!({"type": "numeric", "field": "value", "value": [">", "x"]})).unwrap_err(),
            ["c.value[1]"]
        );
        assert_eq!(check(json!({"type": "anything_but", "field": "stage", "value": []})).unwrap_err(), ["c.value"]);
        assert_eq!(
            check(json!({"type": "anything_but", "field": "stage", "value": {"prefx": "a"}})).unwrap_err(),
            ["c.value.prefx"]
        );
        assert_eq!(check(json!({"type": "exists", "field": "stage", "value": "yes"})).unwrap_err(), ["c.value"]);
        assert_eq!(check(json!({"type": "in", "field": "stage", "value": []})).unwrap_err(), ["c.value"]);
        assert_eq!(check(json!({"type": "equals", "field": "stage", "value": [1]})).unwrap_err(), ["c.value"]);
        assert_eq!(
            check(json!({"type": "pattern", "value": {"stage": [{"prefx": "a"}]}})).unwrap_err(),
            ["c.value.stage[0].prefx"]
        );
        assert_eq!(check(json!({"type": "pattern", "value": {"shoe": ["a"]}})).unwrap_err(), ["c.value.shoe"]);
        assert_eq!(
            check(json!({"type": "pattern", "field": "stage", "value": {"stage": ["a"]}})).unwrap_err(),
            ["c.field"]
        );
    }

    #[test]
    fn patterns_address_the_envelope_or_the_data() {
        let fields = trigger().fields;
        assert!(addresses_envelope(&json!({"detail": {"stage": ["won"]}}), &fields));
        assert!(addresses_envelope(&json!({"detail-type": ["deal_closed_won"]}), &fields));
        assert!(!addresses_envelope(&json!({"source": ["web"]}), &fields), "the trigger carries 'source'");
        assert!(!addresses_envelope(&json!({"stage": ["won"]}), &fields));
        assert!(check(
            json!({"type": "pattern", "value": {"source": ["platform.sales"], "detail": {"stage": ["won"]}}})
        )
        .is_ok());
        assert_eq!(
            check(json!({"type": "pattern", "value": {"detail": {"shoe": ["a"]}}})).unwrap_err(),
            ["c.value.detail.shoe"]
        );
    }
}

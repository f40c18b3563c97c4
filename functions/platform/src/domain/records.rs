//! Management-system records: one entity instance of an installed system.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::events::Causation;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Record {
    pub record_id: String,
    pub system_id: String,
    pub entity: String,
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
    /// Set when an automation action made the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation: Option<Causation>,
}

/// What deleting a referenced record does to the records that refer to it
/// (`"x-on-delete"` beside `"x-ref"`; the default is `restrict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDelete {
    /// The delete is refused (409) while any record refers to it.
    #[default]
    Restrict,
    /// The referring records are deleted too (with their own relations' rules).
    Cascade,
    /// The referring field is removed from the referring records.
    SetNull,
}

/// One relation of an entity (`"x-ref": "crm/contacts"` on a property): its field, the
/// entity it refers to, and the delete rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub field: String,
    pub system: String,
    pub entity: String,
    pub on_delete: OnDelete,
}

/// The relations of an entity schema with their delete rules. An `x-on-delete` that is
/// not a rule reads as `restrict` (manifests are checked when published).
pub fn relations_of(schema: &Value) -> Vec<Relation> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return Vec::new() };
    properties
        .iter()
        .filter_map(|(name, property)| {
            let target = property.get("x-ref")?.as_str()?;
            let (system, entity) = target.split_once('/')?;
            let on_delete =
                property.get("x-on-delete").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
            Some(Relation { field: name.clone(), system: system.to_string(), entity: entity.to_string(), on_delete })
        })
        .collect()
}

/// Faults of an entity schema's delete rules: unknown rules, and `set_null` on a field
/// the schema requires.
pub fn check_delete_rules(schema: &Value, at: &str) -> Vec<super::invalid::FieldIssue> {
    let mut issues = Vec::new();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return issues };
    for (name, property) in properties {
        let Some(rule) = property.get("x-on-delete") else { continue };
        match serde_json::from_value::<OnDelete>(rule.clone()) {
            Err(_) => issues.push(super::invalid::FieldIssue::new(
                format!("{at}.properties.{name}.x-on-delete"),
                "must be restrict, cascade or set_null",
            )),
            Ok(OnDelete::SetNull) if required.contains(&name.as_str()) => issues.push(super::invalid::FieldIssue::new(
                format!("{at}.properties.{name}.x-on-delete"),
                "set_null cannot empty a required field",
            )),
            Ok(_) => {}
        }
        if property.get("x-ref").is_none() {
            issues.push(super::invalid::FieldIssue::new(
                format!("{at}.properties.{name}.x-on-delete"),
                "goes with x-ref",
            ));
        }
    }
    issues
}

/// RFC 7386 JSON merge patch: `null` removes a field.
pub fn merge_patch(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(inner) => {
                let slot = target.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                merge_patch(slot.as_object_mut().expect("an object"), inner);
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn relations_come_from_x_ref() {
        let schema = json!({"properties": {"contact_id": {"type": "string", "x-ref": "crm/contacts"}, "name": {"type": "string"}}});
        let found: Vec<(String, String, String)> =
            relations_of(&schema).into_iter().map(|r| (r.field, r.system, r.entity)).collect();
        assert_eq!(found, vec![("contact_id".to_string(), "crm".to_string(), "contacts".to_string())]);
    }

    #[test]
    fn delete_rules_default_to_restrict() {
        let schema = json!({"properties": {
            "a": {"type": "string", "x-ref": "crm/contacts"},
            "b": {"type": "string", "x-ref": "crm/contacts", "x-on-delete": "cascade"},
            "c": {"type": "string", "x-ref": "crm/leads", "x-on-delete": "set_null"}}});
        let rules: Vec<(String, OnDelete)> =
            relations_of(&schema).into_iter().map(|r| (r.field, r.on_delete)).collect();
        assert_eq!(
            rules,
            [("a".into(), OnDelete::Restrict), ("b".into(), OnDelete::Cascade), ("c".into(), OnDelete::SetNull)]
        );
    }

    #[test]
    fn delete_rules_are_checked() {
        let schema = json!({"required": ["a"], "properties": {
            "a": {"type": "string", "x-ref": "crm/contacts", "x-on-delete": "set_null"},
            "b": {"type": "string", "x-ref": "crm/contacts", "x-on-delete": "explode"},
            "c": {"type": "string", "x-on-delete": "cascade"}}});
        let fields: Vec<String> = check_delete_rules(&schema, "s").into_iter().map(|i| i.field).collect();
        assert_eq!(fields, ["s.properties.a.x-on-delete", "s.properties.b.x-on-delete", "s.properties.c.x-on-delete"]);
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = json!({"a": 1, "b": {"c": 2, "d": 3}}).as_object().unwrap().clone();
        merge_patch(&mut doc, json!({"a": null, "b": {"c": 9}, "e": [1]}).as_object().unwrap());
        assert_eq!(Value::Object(doc), json!({"b": {"c": 9, "d": 3}, "e": [1]}));
    }
}

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

/// A relation declared in an entity schema: property -> (system, entity), from
/// `"x-ref": "crm/contacts"`.
pub fn relations(schema: &Value) -> Vec<(String, String, String)> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return Vec::new() };
    properties
        .iter()
        .filter_map(|(name, property)| {
            let target = property.get("x-ref")?.as_str()?;
            let (system, entity) = target.split_once('/')?;
            Some((name.clone(), system.to_string(), entity.to_string()))
        })
        .collect()
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
        assert_eq!(relations(&schema), vec![("contact_id".to_string(), "crm".to_string(), "contacts".to_string())]);
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = json!({"a": 1, "b": {"c": 2, "d": 3}}).as_object().unwrap().clone();
        merge_patch(&mut doc, json!({"a": null, "b": {"c": 9}, "e": [1]}).as_object().unwrap());
        assert_eq!(Value::Object(doc), json!({"b": {"c": 9, "d": 3}, "e": [1]}));
    }
}

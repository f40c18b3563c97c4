//! Business events and the one pure function that derives them from a record's old and
//! new image.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::manifest::TriggerDef;

/// Which change of a record fires a trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "on", rename_all = "snake_case", deny_unknown_fields)]
pub enum TriggerWhen {
    Created,
    Updated,
    Deleted,
    /// `field` changed (to `to`, when given).
    Changed {
        field: String,
        #[serde(default)]
        #[schema(value_type = Option<Value>)]
        to: Option<Value>,
    },
    /// `field` reached the tenant's `setting` (from the system configuration, else
    /// `default`): on creation at or above it, or on an update crossing it.
    Threshold {
        field: String,
        setting: String,
        default: f64,
    },
    /// `field` moved up the `order` (e.g. priority normal -> high).
    Raised {
        field: String,
        order: Vec<String>,
    },
}

/// Why an event happened: events caused by automation actions carry a growing depth.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Causation {
    /// 0 for a change made by a person or an outside system.
    pub depth: u32,
    /// The action that caused it, if any.
    #[serde(default)]
    pub action_id: Option<String>,
}

/// The envelope on the bus (EventBridge `detail`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BusinessEvent {
    pub event_id: String,
    pub tenant_id: String,
    /// The system that emits it (`sales`); EventBridge `source` is `platform.<module_type>`.
    pub module_type: String,
    /// EventBridge `detail-type`.
    pub trigger_id: String,
    pub occurred_at: String,
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    /// Field -> `{"old": .., "new": ..}` for the fields a record change touched.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub changes: Map<String, Value>,
    #[serde(default)]
    pub causation: Causation,
    /// For an event another AWS service (or account) put on the bus: its envelope as it
    /// came, which patterns match on (`source`, `detail-type`, `account`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<NativeEnvelope>,
}

/// The envelope of a native EventBridge event (its `detail` is the event's data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NativeEnvelope {
    pub source: String,
    pub detail_type: String,
    pub account: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub resources: Value,
}

/// One change of one record, as the change feed reports it.
#[derive(Debug, Clone)]
pub struct RecordChange<'a> {
    pub tenant_id: &'a str,
    pub system_id: &'a str,
    pub entity: &'a str,
    pub record_id: &'a str,
    /// Identifies this change exactly (record id and item version): events derived from
    /// the same change get the same ids, so a change delivered twice is deduplicated.
    pub change_id: &'a str,
    pub old: Option<&'a Map<String, Value>>,
    pub new: Option<&'a Map<String, Value>>,
    pub causation: Causation,
    pub occurred_at: &'a str,
}

/// `opportunities` -> `opportunity`, `contacts` -> `contact`.
pub fn singular(entity: &str) -> String {
    if let Some(stem) = entity.strip_suffix("ies") {
        format!("{stem}y")
    } else {
        entity.strip_suffix('s').unwrap_or(entity).to_string()
    }
}

fn number(value: Option<&Value>) -> Option<f64> {
    value.and_then(Value::as_f64)
}

/// A deterministic id from its parts (SHA-256, 32 hex characters).
pub fn derived_id(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0x1f]);
    }
    super::hex::lower(&hasher.finalize()[..16])
}

/// The events a record change fires, given the entity's triggers and the tenant's
/// configuration of the system (for thresholds).
pub fn derive_events(change: &RecordChange<'_>, triggers: &[TriggerDef], settings: &Value) -> Vec<BusinessEvent> {
    let empty = Map::new();
    let old = change.old;
    let new = change.new;
    let current = new.or(old).unwrap_or(&empty);
    let mut changes = Map::new();
    if let (Some(o), Some(n)) = (old, new) {
        let keys: std::collections::BTreeSet<&String> = o.keys().chain(n.keys()).collect();
        for key in keys {
            if o.get(key) != n.get(key) {
                let pair = serde_json::json!({"old": o.get(key).cloned().unwrap_or(Value::Null), "new": n.get(key).cloned().unwrap_or(Value::Null)});
                changes.insert(key.clone(), pair);
            }
        }
    }
    let fires = |when: &TriggerWhen| -> bool {
        match when {
            TriggerWhen::Created => old.is_none() && new.is_some(),
            TriggerWhen::Updated => old.is_some() && new.is_some() && !changes.is_empty(),
            TriggerWhen::Deleted => old.is_some() && new.is_none(),
            TriggerWhen::Changed { field, to } => {
                changes.contains_key(field) && to.as_ref().is_none_or(|to| new.and_then(|n| n.get(field)) == Some(to))
            }
            TriggerWhen::Threshold { field, setting, default } => {
                let threshold = number(settings.get(setting)).unwrap_or(*default);
                let now = number(new.and_then(|n| n.get(field)));
                let before = number(old.and_then(|o| o.get(field)));
                now.is_some_and(|v| v >= threshold) && before.is_none_or(|b| b < threshold)
            }
            TriggerWhen::Raised { field, order } => {
                let rank = |m: Option<&Map<String, Value>>| {
                    m.and_then(|m| m.get(field)).and_then(Value::as_str).and_then(|v| order.iter().position(|o| o == v))
                };
                matches!((rank(old), rank(new)), (Some(a), Some(b)) if b > a)
            }
        }
    };
    let one = singular(change.entity);
    triggers
        .iter()
        .filter(|t| t.entity.as_deref() == Some(change.entity))
        .filter(|t| t.when.as_ref().is_some_and(fires))
        .map(|trigger| {
            let mut data = current.clone();
            data.insert(format!("{one}_id"), Value::String(change.record_id.to_string()));
            if let Some(name) = current.get("name") {
                data.insert(format!("{one}_name"), name.clone());
            }
            for (field, pair) in &changes {
                data.insert(format!("old_{field}"), pair["old"].clone());
                data.insert(format!("new_{field}"), pair["new"].clone());
            }
            BusinessEvent {
                event_id: derived_id(&[change.tenant_id, change.change_id, &trigger.id]),
                tenant_id: change.tenant_id.to_string(),
                module_type: change.system_id.to_string(),
                trigger_id: trigger.id.clone(),
                occurred_at: change.occurred_at.to_string(),
                data,
                changes: changes.clone(),
                causation: change.causation.clone(),
                native: None,
            }
        })
        .collect()
}

/// The fields a trigger's events carry: its declared data, the entity's properties, the
/// record id and name, and old/new values of each property.
pub fn trigger_fields(
    manifest: &super::manifest::Manifest,
    trigger: &super::manifest::TriggerDef,
) -> super::conditions::TriggerFields {
    let mut fields: std::collections::BTreeSet<String> = trigger.data.iter().cloned().collect();
    let mut changeable = std::collections::BTreeSet::new();
    if let Some(entity) = &trigger.entity {
        let one = singular(entity);
        fields.insert(format!("{one}_id"));
        fields.insert(format!("{one}_name"));
        if let Some(props) =
            manifest.entities.get(entity).and_then(|e| e.schema.get("properties")).and_then(Value::as_object)
        {
            for name in props.keys() {
                fields.insert(name.clone());
                fields.insert(format!("old_{name}"));
                fields.insert(format!("new_{name}"));
                changeable.insert(name.clone());
            }
        }
    }
    super::conditions::TriggerFields { fields, changeable, open: false }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn triggers() -> Vec<TriggerDef> {
        serde_json::from_value(json!([
            {"id": "opportunity_created", "entity": "opportunities", "when": {"on": "created"}},
            {"id": "opportunity_stage_changed", "entity": "opportunities", "when": {"on": "changed", "field": "stage"}},
            {"id": "deal_closed_won", "entity": "opportunities", "when": {"on": "changed", "field": "stage", "to": "closed_won"}},
            {"id": "high_value_opportunity", "entity": "opportunities", "when": {"on": "threshold", "field": "value", "setting": "high_value_threshold", "default": 10000}},
            {"id": "ticket_priority_escalated", "entity": "tickets", "when": {"on": "raised", "field": "priority", "order": ["low", "normal", "high"]}},
            {"id": "external_only", "entity": "opportunities"}
        ]))
        .unwrap()
    }

    fn change<'a>(
        entity: &'a str,
        old: Option<&'a Map<String, Value>>,
        new: Option<&'a Map<String, Value>>,
    ) -> RecordChange<'a> {
        RecordChange {
            tenant_id: "acme",
            system_id: "sales",
            entity,
            record_id: "r1",
            change_id: "r1:1",
            old,
            new,
            causation: Causation::default(),
            occurred_at: "2026-01-01T00:00:00Z",
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn ids(events: &[BusinessEvent]) -> Vec<&str> {
        events.iter().map(|e| e.trigger_id.as_str()).collect()
    }

    #[test]
    fn creating_a_big_opportunity_fires_created_and_high_value_with_the_seed_data() {
        let new = obj(json!({"name": "Big deal", "value": 20000, "stage": "prospecting"}));
        let events = derive_events(&change("opportunities", None, Some(&new)), &triggers(), &json!({}));
        assert_eq!(ids(&events), ["opportunity_created", "high_value_opportunity"]);
        let high = &events[1];
        assert_eq!(high.data["opportunity_id"], "r1");
        assert_eq!(high.data["opportunity_name"], "Big deal");
        assert_eq!(high.data["value"], 20000);
        assert_eq!(high.module_type, "sales");
    }

    #[test]
    fn the_threshold_comes_from_the_tenant_settings_and_fires_once_when_crossed() {
        let new = obj(json!({"value": 600}));
        let settings = json!({"high_value_threshold": 500});
        assert_eq!(
            ids(&derive_events(&change("opportunities", None, Some(&new)), &triggers(), &settings)),
            ["opportunity_created", "high_value_opportunity"]
        );
        let old = obj(json!({"value": 700}));
        let newer = obj(json!({"value": 800}));
        assert!(
            derive_events(&change("opportunities", Some(&old), Some(&newer)), &triggers(), &settings).is_empty(),
            "already above"
        );
    }

    #[test]
    fn stage_changes_carry_old_and_new() {
        let old = obj(json!({"name": "D", "stage": "proposal", "value": 5}));
        let new = obj(json!({"name": "D", "stage": "closed_won", "value": 5}));
        let events = derive_events(&change("opportunities", Some(&old), Some(&new)), &triggers(), &json!({}));
        assert_eq!(ids(&events), ["opportunity_stage_changed", "deal_closed_won"]);
        assert_eq!(
            (events[0].data["old_stage"].as_str(), events[0].data["new_stage"].as_str()),
            (Some("proposal"), Some("closed_won"))
        );
        assert_eq!(events[0].changes["stage"], json!({"old": "proposal", "new": "closed_won"}));
    }

    #[test]
    fn escalation_follows_the_order_and_ids_are_deterministic() {
        let old = obj(json!({"priority": "normal"}));
        let up = obj(json!({"priority": "high"}));
        let down = obj(json!({"priority": "low"}));
        let a = derive_events(&change("tickets", Some(&old), Some(&up)), &triggers(), &json!({}));
        assert_eq!(ids(&a), ["ticket_priority_escalated"]);
        assert!(derive_events(&change("tickets", Some(&old), Some(&down)), &triggers(), &json!({})).is_empty());
        let b = derive_events(&change("tickets", Some(&old), Some(&up)), &triggers(), &json!({}));
        assert_eq!(a[0].event_id, b[0].event_id);
        assert_eq!(a[0].data["ticket_id"], "r1");
    }

    #[test]
    fn singular_names() {
        assert_eq!(singular("opportunities"), "opportunity");
        assert_eq!(singular("contacts"), "contact");
        assert_eq!(singular("staff"), "staff");
    }
}

//! What a system version declares: its entities, triggers, configuration schema and
//! defaults, and how to migrate a tenant's configuration from earlier versions.

use std::collections::BTreeMap;

use jsonschema::error::ValidationErrorKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::invalid::{FieldIssue, Invalid};
use super::migration::MigrationOp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Entity name -> definition; each record of the entity is validated by its schema.
    #[serde(default)]
    pub entities: BTreeMap<String, EntityDef>,
    /// The business events this system emits.
    #[serde(default)]
    pub triggers: Vec<TriggerDef>,
    /// JSON Schema (draft 2020-12) of the system's per-tenant configuration.
    #[serde(default = "any_object_schema")]
    #[schema(value_type = Object)]
    pub config_schema: Value,
    /// The configuration written when a tenant installs this version.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub default_config: Value,
    /// How a configuration of an earlier version becomes one of this version.
    #[serde(default)]
    pub migrations: Vec<Migration>,
}

impl Manifest {
    /// SHA-256 (hex) of the manifest's JSON (objects in key order): names one manifest's
    /// content, whichever store or file it was read from.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        super::hex::lower(&Sha256::digest(serde_json::to_vec(self).expect("manifests serialize")))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityDef {
    #[serde(default)]
    pub description: String,
    /// JSON Schema (draft 2020-12) of one record.
    #[schema(value_type = Object)]
    pub schema: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerDef {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The entity whose changes fire this trigger.
    #[serde(default)]
    pub entity: Option<String>,
    /// The fields every event of this trigger carries.
    #[serde(default)]
    pub data: Vec<String>,
    /// Which change of the entity's records fires it; absent for triggers fired only
    /// by events from outside.
    #[serde(default)]
    pub when: Option<crate::domain::events::TriggerWhen>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Migration {
    /// The earlier version this migration starts from.
    #[schema(value_type = String, example = "1.0.0")]
    pub from: semver::Version,
    pub ops: Vec<MigrationOp>,
}

fn any_object_schema() -> Value {
    serde_json::json!({"type": "object"})
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// A compiled JSON Schema that reports every failure with the JSON Pointer of the field.
pub struct Schema(jsonschema::Validator);

impl Schema {
    /// Compiles `schema`; a malformed schema is reported against `field`.
    pub fn compile(schema: &Value, field: &str) -> Result<Self, Invalid> {
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(schema)
            .map(Self)
            .map_err(|e| Invalid::one(field, format!("is not a valid JSON Schema: {e}")))
    }

    /// Checks `doc`; each issue names the failing field as a JSON Pointer (`/a/b`).
    pub fn check(&self, doc: &Value) -> Result<(), Invalid> {
        let issues: Vec<FieldIssue> = self
            .0
            .iter_errors(doc)
            .map(|e| {
                let at = e.instance_path().as_str().to_string();
                match e.kind() {
                    ValidationErrorKind::Required { property } => {
                        let name = property.as_str().map(str::to_string).unwrap_or_else(|| property.to_string());
                        FieldIssue::new(format!("{at}/{name}"), "is required")
                    }
                    ValidationErrorKind::AdditionalProperties { unexpected } => {
                        FieldIssue::new(format!("{at}/{}", unexpected.join(",")), "is not an allowed property")
                    }
                    _ => FieldIssue::new(if at.is_empty() { "/".to_string() } else { at }, e.to_string()),
                }
            })
            .collect();
        if issues.is_empty() {
            Ok(())
        } else {
            Err(Invalid(issues))
        }
    }
}

impl Manifest {
    /// Checks that the manifest is coherent: schemas compile, defaults fit the schema,
    /// triggers name declared entities. Fields are reported under `manifest.`.
    pub fn check(&self) -> Result<(), Invalid> {
        let mut issues = Vec::new();
        match Schema::compile(&self.config_schema, "manifest.config_schema") {
            Ok(schema) => {
                if let Err(e) = schema.check(&self.default_config) {
                    issues.extend(e.under("manifest.default_config").0);
                }
            }
            Err(e) => issues.extend(e.0),
        }
        for (name, entity) in &self.entities {
            if let Err(e) = Schema::compile(&entity.schema, &format!("manifest.entities.{name}.schema")) {
                issues.extend(e.0);
            }
            issues.extend(super::records::check_delete_rules(
                &entity.schema,
                &format!("manifest.entities.{name}.schema"),
            ));
        }
        for (i, trigger) in self.triggers.iter().enumerate() {
            if trigger.id.is_empty() {
                issues.push(FieldIssue::new(format!("manifest.triggers[{i}].id"), "must not be empty"));
            }
            if let Some(entity) = &trigger.entity {
                if !self.entities.contains_key(entity) {
                    issues.push(FieldIssue::new(
                        format!("manifest.triggers[{i}].entity"),
                        format!("names the undeclared entity '{entity}'"),
                    ));
                }
            }
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(Invalid(issues))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_names_missing_and_wrong_fields() {
        let schema = Schema::compile(
            &json!({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"object","properties":{"c":{"type":"string"}}}},"required":["a"],"additionalProperties":false}),
            "s",
        )
        .unwrap();
        let err = schema.check(&json!({"b":{"c":1},"z":true})).unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|i| i.field.as_str()).collect();
        assert!(fields.contains(&"/a"), "{fields:?}");
        assert!(fields.contains(&"/b/c"), "{fields:?}");
        assert!(fields.contains(&"/z"), "{fields:?}");
        assert!(schema.check(&json!({"a":1})).is_ok());
    }

    #[test]
    fn malformed_schema_is_reported_against_its_field() {
        let err = Schema::compile(&json!({"type": 12}), "manifest.config_schema").err().unwrap();
        assert_eq!(err.0[0].field, "manifest.config_schema");
    }

    #[test]
    fn manifest_check_finds_bad_defaults_and_unknown_entities() {
        let manifest: Manifest = serde_json::from_value(json!({
            "entities": {"contacts": {"schema": {"type": "object"}}},
            "triggers": [{"id": "lead_created", "entity": "leads"}],
            "config_schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
            "default_config": {"n": "x"}
        }))
        .unwrap();
        let err = manifest.check().unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, vec!["manifest.default_config/n", "manifest.triggers[0].entity"]);
    }
}

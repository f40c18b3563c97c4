//! Configuration migrations between system versions: a few JSON Pointer operations that
//! can be applied forwards (upgrade) and backwards (downgrade).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::invalid::Invalid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum MigrationOp {
    /// Moves the value at `from` to `to` (nothing happens when `from` is absent).
    Rename { from: String, to: String },
    /// Sets `path` to `value` when it is absent.
    Add {
        path: String,
        #[schema(value_type = Value)]
        value: Value,
    },
    /// Removes `path` when present.
    Remove { path: String },
}

impl MigrationOp {
    pub fn apply(&self, doc: &mut Value) -> Result<(), Invalid> {
        match self {
            MigrationOp::Rename { from, to } => {
                if let Some(value) = take(doc, from)? {
                    set(doc, to, value)?;
                }
            }
            MigrationOp::Add { path, value } => {
                if doc.pointer(path).is_none() {
                    set(doc, path, value.clone())?;
                }
            }
            MigrationOp::Remove { path } => {
                take(doc, path)?;
            }
        }
        Ok(())
    }

    /// The operation that undoes this one. Undoing a removal restores the value the
    /// earlier version ships by default (`earlier_default`), when it has one.
    pub fn inverse(&self, earlier_default: &Value) -> Option<MigrationOp> {
        match self {
            MigrationOp::Rename { from, to } => Some(MigrationOp::Rename { from: to.clone(), to: from.clone() }),
            MigrationOp::Add { path, .. } => Some(MigrationOp::Remove { path: path.clone() }),
            MigrationOp::Remove { path } => {
                earlier_default.pointer(path).map(|value| MigrationOp::Add { path: path.clone(), value: value.clone() })
            }
        }
    }
}

fn split(path: &str) -> Result<(&str, String), Invalid> {
    if !path.starts_with('/') || path.len() < 2 {
        return Err(Invalid::one("migration.path", format!("'{path}' is not a JSON Pointer to a field")));
    }
    let cut = path.rfind('/').unwrap_or(0);
    let last = path[cut + 1..].replace("~1", "/").replace("~0", "~");
    Ok((&path[..cut], last))
}

fn take(doc: &mut Value, path: &str) -> Result<Option<Value>, Invalid> {
    let (parent, key) = split(path)?;
    Ok(doc.pointer_mut(parent).and_then(Value::as_object_mut).and_then(|o| o.remove(&key)))
}

fn set(doc: &mut Value, path: &str, value: Value) -> Result<(), Invalid> {
    let (parent, key) = split(path)?;
    let mut at = doc;
    for segment in parent.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        let obj = at
            .as_object_mut()
            .ok_or_else(|| Invalid::one("migration.path", format!("'{path}' crosses a value that is not an object")))?;
        at = obj.entry(segment).or_insert_with(|| Value::Object(Default::default()));
    }
    at.as_object_mut()
        .ok_or_else(|| Invalid::one("migration.path", format!("'{path}' crosses a value that is not an object")))?
        .insert(key, value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops() -> Vec<MigrationOp> {
        serde_json::from_value(json!([
            {"op": "rename", "from": "/features/email_integration", "to": "/features/email_sync"},
            {"op": "add", "path": "/features/duplicate_detection", "value": true},
            {"op": "remove", "path": "/ui/legacy"}
        ]))
        .unwrap()
    }

    #[test]
    fn forward_then_backward_round_trips() {
        let original = json!({"features": {"email_integration": false}, "ui": {"legacy": 1}});
        let mut doc = original.clone();
        for op in ops() {
            op.apply(&mut doc).unwrap();
        }
        assert_eq!(doc, json!({"features": {"email_sync": false, "duplicate_detection": true}, "ui": {}}));
        let earlier_default = json!({"ui": {"legacy": 1}});
        for op in ops().iter().rev() {
            op.inverse(&earlier_default).unwrap().apply(&mut doc).unwrap();
        }
        assert_eq!(doc, original);
    }

    #[test]
    fn add_keeps_an_existing_value_and_creates_parents() {
        let mut doc = json!({"a": {"b": 2}});
        MigrationOp::Add { path: "/a/b".into(), value: json!(9) }.apply(&mut doc).unwrap();
        MigrationOp::Add { path: "/x/y".into(), value: json!(1) }.apply(&mut doc).unwrap();
        assert_eq!(doc, json!({"a": {"b": 2}, "x": {"y": 1}}));
    }

    #[test]
    fn bad_pointer_is_invalid() {
        assert!(MigrationOp::Remove { path: "nope".into() }.apply(&mut json!({})).is_err());
        let mut doc = json!({"a": 1});
        assert!(MigrationOp::Add { path: "/a/b".into(), value: json!(1) }.apply(&mut doc).is_err());
    }
}

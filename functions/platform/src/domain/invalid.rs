//! Field-level validation failures, shared by every parser in the domain.

use serde::Serialize;

/// One thing wrong with one field of the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldIssue {
    /// Where the fault is: a field name, a dotted path or a JSON Pointer.
    pub field: String,
    pub message: String,
}

impl FieldIssue {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Input that cannot be accepted; carries every issue found, not only the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input: {}", .0.iter().map(|i| format!("{}: {}", i.field, i.message)).collect::<Vec<_>>().join("; "))]
pub struct Invalid(pub Vec<FieldIssue>);

impl Invalid {
    pub fn one(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldIssue::new(field, message)])
    }

    /// Prefixes every field with `parent.` (or leaves it when the parent is empty).
    pub fn under(self, parent: &str) -> Self {
        if parent.is_empty() {
            return self;
        }
        Self(self.0.into_iter().map(|i| FieldIssue::new(join_field(parent, &i.field), i.message)).collect())
    }
}

fn join_field(parent: &str, child: &str) -> String {
    if child.is_empty() {
        parent.to_string()
    } else if child.starts_with('/') {
        format!("{parent}{child}")
    } else {
        format!("{parent}.{child}")
    }
}

//! Rule actions: what a rule's author writes (`ActionInput`, the API's
//! `{"type", "parameters"}`), checked once into a typed [`Action`] (same JSON).
//! String parameters may hold `{{field}}` placeholders, filled from the event's data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::invalid::FieldIssue;
use super::timing::Delay;
use super::webhook::{check_target, mask_parameters, WebhookPolicy};

/// An action as written: checked into an [`Action`] by [`ActionInput::check`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionInput {
    /// One of [`ACTION_TYPES`].
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: Map<String, Value>,
    /// Wait before acting: an ISO 8601 duration (`"PT2H"`) or `{"until": "<date field>", "offset": "-P3D"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Value>)]
    pub delay: Option<Value>,
    /// When a delayed action's time comes, re-check the rule's conditions against the
    /// record as it is then, and skip the action if they no longer hold (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recheck: Option<bool>,
}

/// A rule's action with when it runs. Serialized as written:
/// `{"type", "parameters", "delay"?, "recheck"?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleAction {
    #[serde(flatten)]
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Delay>,
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub recheck: bool,
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

impl RuleAction {
    /// An action that runs at once.
    pub fn now(action: Action) -> Self {
        Self { action, delay: None, recheck: true }
    }

    /// As readers see it (secrets masked).
    pub fn redacted(&self) -> Self {
        Self { action: self.action.redacted(), ..self.clone() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendNotification {
    pub recipient: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStatus {
    /// The record to change (usually `{{<entity>_id}}`).
    pub entity_id: String,
    #[schema(value_type = Value)]
    pub new_status: Value,
    /// `system/entity`; the trigger's entity when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// The field to set; `status` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// `http(s)`; placeholders only in the path and query.
    pub url: String,
    /// The body to POST (placeholders filled); the whole event when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Value>)]
    pub body: Option<Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The key that signs the body; the tenant's key when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A checked action. Serialized as it was written (`{"type", "parameters"}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", content = "parameters", rename_all = "snake_case")]
pub enum Action {
    SendNotification(SendNotification),
    UpdateStatus(UpdateStatus),
    CreateTask(CreateTask),
    Webhook(Webhook),
}

/// Action types with their required parameters.
pub const ACTION_TYPES: [(&str, &[&str]); 4] = [
    ("send_notification", &["recipient", "message"]),
    ("update_status", &["entity_id", "new_status"]),
    ("create_task", &["title"]),
    ("webhook", &["url"]),
];

impl Action {
    /// Its `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::SendNotification(_) => "send_notification",
            Action::UpdateStatus(_) => "update_status",
            Action::CreateTask(_) => "create_task",
            Action::Webhook(_) => "webhook",
        }
    }

    /// Its parameters as written.
    pub fn parameters(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut whole)) => match whole.remove("parameters") {
                Some(Value::Object(parameters)) => parameters,
                _ => Map::new(),
            },
            _ => Map::new(),
        }
    }

    /// As readers see it: secrets masked by [`mask_parameters`] (the one function every
    /// output path uses).
    pub fn redacted(&self) -> Action {
        let Action::Webhook(_) = self else { return self.clone() };
        let masked = serde_json::json!({"type": self.kind(), "parameters": mask_parameters(&self.parameters())});
        serde_json::from_value(masked).unwrap_or_else(|_| self.clone())
    }
}

impl ActionInput {
    /// Checks it; every fault is named under `at` (`actions[0].parameters.url`).
    pub fn check(
        &self,
        webhooks: &WebhookPolicy,
        fields: &std::collections::BTreeSet<String>,
        at: &str,
    ) -> Result<RuleAction, Vec<FieldIssue>> {
        let delay = match &self.delay {
            None => None,
            Some(written) => Some(
                Delay::parse(written, fields)
                    .map_err(|message| vec![FieldIssue::new(format!("{at}.delay"), message)])?,
            ),
        };
        let action = self.check_action(webhooks, at)?;
        Ok(RuleAction { action, delay, recheck: self.recheck.unwrap_or(true) })
    }

    fn check_action(&self, webhooks: &WebhookPolicy, at: &str) -> Result<Action, Vec<FieldIssue>> {
        let Some((_, required)) = ACTION_TYPES.iter().find(|(kind, _)| *kind == self.kind) else {
            return Err(vec![FieldIssue::new(
                format!("{at}.type"),
                format!(
                    "'{}' is not an action type; use one of {}",
                    self.kind,
                    ACTION_TYPES.map(|(k, _)| k).join(", ")
                ),
            )]);
        };
        let mut issues: Vec<FieldIssue> = required
            .iter()
            .filter(|name| !self.parameters.get(**name).is_some_and(|v| !v.is_null() && v.as_str() != Some("")))
            .map(|name| FieldIssue::new(format!("{at}.parameters.{name}"), "is required"))
            .collect();
        if self.kind == "webhook" {
            for (field, message) in check_target(&self.parameters, webhooks) {
                issues.push(FieldIssue::new(format!("{at}.parameters.{field}"), message));
            }
        }
        if !issues.is_empty() {
            return Err(issues);
        }
        let parameters = Value::Object(self.parameters.clone());
        let typed = match self.kind.as_str() {
            "send_notification" => typed(parameters, at).map(Action::SendNotification),
            "update_status" => typed(parameters, at).map(Action::UpdateStatus),
            "create_task" => typed(parameters, at).map(Action::CreateTask),
            _ => typed(parameters, at).map(Action::Webhook),
        };
        typed.map_err(|issue| vec![issue])
    }
}

/// Parameters as their type; a fault names the parameter (`a.parameters.priority`).
fn typed<T: serde::de::DeserializeOwned>(parameters: Value, at: &str) -> Result<T, FieldIssue> {
    serde_path_to_error::deserialize(parameters).map_err(|e| {
        let path = e.path().to_string();
        let field =
            if path == "." || path.is_empty() { format!("{at}.parameters") } else { format!("{at}.parameters.{path}") };
        FieldIssue::new(field, e.into_inner().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value) -> Result<Action, Vec<String>> {
        let input: ActionInput = serde_json::from_value(v).unwrap();
        input
            .check(&WebhookPolicy::default(), &Default::default(), "a")
            .map(|checked| checked.action)
            .map_err(|issues| issues.into_iter().map(|i| i.field).collect())
    }

    #[test]
    fn checked_actions_serialize_as_written() {
        for written in [
            json!({"type": "send_notification", "parameters": {"recipient": "m@example.com", "message": "Hi {{name}}"}}),
            json!({"type": "create_task", "parameters": {"title": "Call", "priority": "high"}}),
            json!({"type": "update_status", "parameters": {"entity_id": "{{opportunity_id}}", "new_status": "won"}}),
            json!({"type": "webhook", "parameters": {"url": "https://hooks.example.com/x", "headers": {"x-a": "1"}}}),
        ] {
            let action = check(written.clone()).unwrap();
            assert_eq!(serde_json::to_value(&action).unwrap(), written);
        }
    }

    #[test]
    fn delays_are_kept_as_written_and_checked() {
        let written = json!({"type": "create_task", "parameters": {"title": "Call"}, "delay": {"until": "close", "offset": "-P3D"}, "recheck": false});
        let input: ActionInput = serde_json::from_value(written.clone()).unwrap();
        let fields = ["close".to_string()].into_iter().collect();
        let checked = input.check(&WebhookPolicy::default(), &fields, "a").unwrap();
        assert!(!checked.recheck && checked.delay.is_some());
        assert_eq!(serde_json::to_value(&checked).unwrap(), written);
        let back: RuleAction = serde_json::from_value(written).unwrap();
        assert_eq!(back, checked);
        let bad: ActionInput =
            serde_json::from_value(json!({"type": "create_task", "parameters": {"title": "x"}, "delay": "2h"}))
                .unwrap();
        let issues = bad.check(&WebhookPolicy::default(), &fields, "a").unwrap_err();
        assert_eq!(issues[0].field, "a.delay");
    }

    #[test]
    fn faults_are_named() {
        assert_eq!(check(json!({"type": "send_fax", "parameters": {}})).unwrap_err(), ["a.type"]);
        assert_eq!(
            check(json!({"type": "send_notification", "parameters": {"recipient": "x"}})).unwrap_err(),
            ["a.parameters.message"]
        );
        assert_eq!(
            check(json!({"type": "create_task", "parameters": {"title": "x", "colour": "red"}})).unwrap_err(),
            ["a.parameters.colour"],
            "unknown parameters are refused, by name"
        );
        assert_eq!(
            check(json!({"type": "create_task", "parameters": {"title": "x", "priority": 3}})).unwrap_err(),
            ["a.parameters.priority"]
        );
        assert_eq!(
            check(json!({"type": "webhook", "parameters": {"url": "http://169.254.169.254/"}})).unwrap_err(),
            ["a.parameters.url"]
        );
    }

    #[test]
    fn webhook_secrets_are_masked_for_readers() {
        let action: Action = serde_json::from_value(json!({"type": "webhook", "parameters": {"url": "https://u:p@hooks.example.com/x?token=t", "secret": "s3cret", "headers": {"authorization": "Bearer x"}}})).unwrap();
        let shown = serde_json::to_value(action.redacted()).unwrap();
        let text = shown.to_string();
        assert!(!text.contains("s3cret") && !text.contains("Bearer x") && !text.contains("token=t"), "{text}");
    }
}

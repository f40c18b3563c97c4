//! Automation rules: a trigger, conditions that must all hold, and actions.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use super::actions::{Action, ActionInput, RuleAction, ACTION_TYPES};
pub use super::conditions::{Condition, ConditionInput, TriggerFields};
use super::invalid::{FieldIssue, Invalid};
use super::timing::Recurrence;
use super::webhook::WebhookPolicy;

/// The body of `POST /api/v1/automation/rules` and `PUT /api/v1/automation/rules/{id}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub module_type: String,
    pub trigger_id: String,
    #[serde(default)]
    pub conditions: Vec<ConditionInput>,
    pub actions: Vec<ActionInput>,
    #[serde(default)]
    pub is_active: Option<bool>,
    /// For the `schedule` module's `scheduled` trigger: when the rule fires, as EventBridge
    /// Scheduler writes it (`rate(1 day)`, `cron(0 9 ? * MON-FRI *)`, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

/// The module of time-based rules, and its one trigger.
pub const SCHEDULE_MODULE: &str = "schedule";
pub const SCHEDULED_TRIGGER: &str = "scheduled";
/// The fields a scheduled rule's events carry.
pub const SCHEDULED_FIELDS: [&str; 2] = ["scheduled_time", "rule_id"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rule {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub description: Option<String>,
    pub module_type: String,
    pub trigger_id: String,
    pub conditions: Vec<Condition>,
    pub actions: Vec<RuleAction>,
    pub is_active: bool,
    pub created_at: String,
    pub updated_at: String,
    /// Every change makes a new immutable version (1, 2, ...); runs record the one they ran.
    #[serde(default = "first_version")]
    pub version: u64,
    /// When a scheduled rule fires (`schedule` module only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Recurrence>,
}

fn first_version() -> u64 {
    1
}

/// A rule's conditions and actions, checked and typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub conditions: Vec<Condition>,
    pub actions: Vec<RuleAction>,
    pub schedule: Option<Recurrence>,
}

/// Checks a rule against its trigger, answering its typed conditions and actions;
/// every fault is named (`conditions[0].field`, `actions[1].parameters.url`, ...).
pub fn check_rule(input: &RuleInput, trigger: &TriggerFields, webhooks: &WebhookPolicy) -> Result<Checked, Invalid> {
    super::limits::check_size("conditions", &input.conditions, super::limits::MAX_RULE_BYTES / 2)?;
    super::limits::check_size("actions", &input.actions, super::limits::MAX_RULE_BYTES / 2)?;
    let mut issues = Vec::new();
    if input.name.trim().is_empty() || input.name.chars().count() > 200 {
        issues.push(FieldIssue::new("name", "must be 1 to 200 characters"));
    }
    if input.actions.is_empty() {
        issues.push(FieldIssue::new("actions", "must hold at least one action"));
    }
    let mut conditions = Vec::new();
    for (i, c) in input.conditions.iter().enumerate() {
        match c.check(trigger, &format!("conditions[{i}]")) {
            Ok(condition) => conditions.push(condition),
            Err(found) => issues.extend(found),
        }
    }
    let mut actions = Vec::new();
    for (i, action) in input.actions.iter().enumerate() {
        match action.check(webhooks, &trigger.fields, &format!("actions[{i}]")) {
            Ok(action) => actions.push(action),
            Err(found) => issues.extend(found),
        }
    }
    let scheduled = input.module_type == SCHEDULE_MODULE;
    let schedule = match (&input.schedule, scheduled) {
        (Some(written), true) => match Recurrence::try_from(written.clone()) {
            Ok(recurrence) => Some(recurrence),
            Err(message) => {
                issues.push(FieldIssue::new("schedule", message));
                None
            }
        },
        (None, true) => {
            issues.push(FieldIssue::new("schedule", "is required for scheduled rules: rate(...) or cron(...)"));
            None
        }
        (Some(_), false) => {
            issues.push(FieldIssue::new("schedule", "only rules of the schedule module have a schedule"));
            None
        }
        (None, false) => None,
    };
    if issues.is_empty() {
        Ok(Checked { conditions, actions, schedule })
    } else {
        Err(Invalid(issues))
    }
}

impl Rule {
    /// The rule as readers see it: secrets masked by [`mask_parameters`].
    pub fn redacted(mut self) -> Rule {
        self.actions = self.actions.iter().map(RuleAction::redacted).collect();
        self
    }
}

/// Fills `{{field}}` placeholders from the event data (missing fields become empty).
pub fn render(template: &str, data: &Map<String, Value>) -> String {
    render_with(template, data, str::to_string)
}

/// [`render`], passing each filled-in value through `encode` (e.g. percent-encoding).
pub fn render_with(template: &str, data: &Map<String, Value>, encode: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                match data.get(name) {
                    Some(Value::String(s)) => out.push_str(&encode(s)),
                    Some(Value::Null) | None => {}
                    Some(other) => out.push_str(&encode(&other.to_string())),
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Renders every string inside a JSON value (for webhook bodies and task fields).
pub fn render_value(value: &Value, data: &Map<String, Value>) -> Value {
    match value {
        Value::String(s) => Value::String(render(s, data)),
        Value::Array(items) => Value::Array(items.iter().map(|v| render_value(v, data)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), render_value(v, data))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trigger() -> TriggerFields {
        TriggerFields {
            fields: ["opportunity_id", "opportunity_name", "value", "stage", "owner"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            changeable: ["value", "stage", "owner"].iter().map(|s| s.to_string()).collect(),
            open: false,
        }
    }

    fn input(rule: Value) -> RuleInput {
        serde_json::from_value(rule).unwrap()
    }

    #[test]
    fn the_seed_example_is_valid() {
        let rule = input(json!({
            "name": "High Value Deal Alert", "description": "Notify sales manager about deals over $10,000",
            "module_type": "sales", "trigger_id": "high_value_opportunity",
            "conditions": [{"type": "value_threshold", "value": 10000}],
            "actions": [{"type": "send_notification", "parameters": {"recipient": "sales-manager@example.com", "message": "New high-value opportunity: {{opportunity_name}} - ${{value}}"}}]
        }));
        check_rule(&rule, &trigger(), &WebhookPolicy::default()).unwrap();
    }

    #[test]
    fn every_fault_is_named() {
        let rule = input(json!({
            "name": "x", "module_type": "sales", "trigger_id": "t",
            "conditions": [
                {"type": "teleport", "value": 1},
                {"type": "equals", "field": "shoe_size", "value": 1},
                {"type": "greater_than", "field": "value", "value": "big"},
                {"type": "equals", "field": "stage"},
                {"type": "any_of", "value": [{"type": "equals", "field": "nope", "value": 1}]}
            ],
            "actions": [{"type": "launch_rocket"}, {"type": "send_notification", "parameters": {"recipient": "a@b.co"}}, {"type": "webhook", "parameters": {"url": "ftp://x"}}]
        }));
        let fields: Vec<String> = check_rule(&rule, &trigger(), &WebhookPolicy::default())
            .unwrap_err()
            .0
            .into_iter()
            .map(|i| i.field)
            .collect();
        assert_eq!(
            fields,
            [
                "conditions[0].type",
                "conditions[1].field",
                "conditions[2].value",
                "conditions[3].value",
                "conditions[4].value[0].field",
                "actions[0].type",
                "actions[1].parameters.message",
                "actions[2].parameters.url"
            ]
        );
    }

    #[test]
    fn templates_fill_placeholders_from_event_data() {
        let data = json!({"opportunity_name": "Big deal", "value": 20000}).as_object().unwrap().clone();
        assert_eq!(
            render("New high-value opportunity: {{opportunity_name}} - ${{value}}", &data),
            "New high-value opportunity: Big deal - $20000"
        );
        assert_eq!(render("{{missing}}!{{ value }} {{open", &data), "!20000 {{open");
    }
}

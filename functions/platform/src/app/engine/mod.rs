//! The automation stages: the publisher turns store changes into business events, the
//! evaluator matches events to the tenant's rules and queues one message per action, the
//! executor performs each action exactly once.

//!
//! `publisher.rs`, `evaluator.rs` and `executor.rs` hold one stage each; this module the
//! run records they share.

mod delays;
mod evaluator;
mod executor;
mod publisher;

pub use delays::cancel_record_waits;
pub use evaluator::{execution_id, Evaluator};
pub use executor::{ActionFailed, Executor};
pub use publisher::Publisher;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::AppError;
use super::keys;
use super::manifests::Manifests;
use crate::domain::events::BusinessEvent;
use crate::domain::ids::TenantId;
use crate::domain::matcher::CompiledRules;
use crate::domain::rules::Rule;
pub use crate::domain::run_status::{ActionStatus, RunStatus};
use crate::domain::time::now_rfc3339;
use crate::ports::queue::{ActionMessage, DeliveryError};
use crate::ports::store::Write;

/// Events caused by actions deeper than this stop the chain.
pub const MAX_CAUSATION_DEPTH: u32 = 5;
/// Attempts before an action is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 5;
/// How long a delivery's claim on a webhook call holds off other deliveries (longer than
/// the call's timeout).
const WEBHOOK_CLAIM_SECONDS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConditionResult {
    #[serde(rename = "type")]
    pub kind: String,
    pub field: Option<String>,
    pub held: bool,
}

impl ConditionResult {
    pub fn of(condition: &crate::domain::rules::Condition, held: bool) -> Self {
        Self { kind: condition.kind().to_string(), field: condition.field().map(str::to_string), held }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActionOutcome {
    pub index: usize,
    #[serde(rename = "type")]
    pub kind: String,
    pub action_id: String,
    pub status: ActionStatus,
    pub attempts: u32,
    pub error: Option<String>,
    #[schema(value_type = Option<Value>)]
    pub result: Option<Value>,
    /// When a waiting action is due (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<String>,
    /// When a delivery claimed it (webhooks): another delivery waits until the claim is stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<u64>,
}

/// One run of one rule for one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Execution {
    pub execution_id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub event: BusinessEvent,
    pub conditions: Vec<ConditionResult>,
    pub status: RunStatus,
    pub reason: Option<String>,
    pub actions: Vec<ActionOutcome>,
    /// `system/entity` of the trigger (the default target of `update_status`).
    pub entity: Option<String>,
    /// The rule as it was when it ran (to replay actions).
    pub rule: Rule,
    /// The version of the rule that ran.
    #[serde(default)]
    pub rule_version: u64,
    pub created_at: String,
    pub updated_at: String,
    /// When its unfinished actions are given up (epoch seconds), see `app::runs`; none
    /// once every action finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<u64>,
}

impl Execution {
    pub fn summarize(&mut self) {
        self.status = RunStatus::of(self.actions.iter().map(|a| a.status));
        self.updated_at = now_rfc3339();
    }

    pub fn messages(&self, only: impl Fn(&ActionOutcome) -> bool) -> Vec<ActionMessage> {
        self.actions
            .iter()
            .filter(|a| only(a))
            .filter_map(|outcome| {
                Some(ActionMessage {
                    action_id: outcome.action_id.clone(),
                    execution_id: self.execution_id.clone(),
                    tenant_id: self.event.tenant_id.clone(),
                    rule_id: self.rule_id.clone(),
                    action_index: outcome.index,
                    action: self.rule.actions.get(outcome.index)?.action.clone(),
                    event: self.event.clone(),
                    entity: self.entity.clone(),
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    pub notification_id: String,
    pub recipient: String,
    pub message: String,
    pub rule_id: String,
    pub execution_id: String,
    pub event_id: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Task {
    pub task_id: String,
    pub title: String,
    pub description: String,
    /// An RFC 3339 time or a date (`YYYY-MM-DD`).
    pub due_date: Option<String>,
    /// A user of the tenant.
    pub assignee: Option<String>,
    pub status: crate::domain::tools::TaskStatus,
    pub priority: crate::domain::tools::TaskPriority,
    /// The rule that created it, if any.
    pub rule_id: Option<String>,
    /// The record it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<crate::domain::tools::Subject>,
    /// The user who made it (`None` when an automation did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Set when an automation made it: how deep in a chain of automations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub causation: Option<crate::domain::events::Causation>,
    pub created_at: String,
    pub updated_at: String,
}

fn delivery(e: DeliveryError) -> AppError {
    AppError::Unavailable(format!("delivery failed: {e}"))
}

/// (system, version) -> the published version.
/// (tenant, module, trigger) -> (rules generation, when they were read, the trigger's
/// compiled rules).
type RulesCache = Arc<Mutex<HashMap<(String, String, String), (u64, std::time::Instant, Arc<TriggerRules>)>>>;

/// How long compiled rules are trusted on their generation alone. The marker and the rules
/// come from one Query, which DynamoDB does not isolate from a transaction: a read racing a
/// rule change could pair the new marker with an old rule. Reading the rules again at this
/// age bounds how long such a read can last.
pub const RULES_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// A trigger's active rules, compiled, with what the installed manifest says of its events.
pub struct TriggerRules {
    pub rules: CompiledRules,
    /// The entity its events are about (`system/entity`), when the manifest names one.
    pub entity: Option<String>,
}

impl std::ops::Deref for TriggerRules {
    type Target = CompiledRules;

    fn deref(&self) -> &CompiledRules {
        &self.rules
    }
}

/// Runs (with the claims their webhook calls hold) are kept this long after their last change.
pub const RUN_RETENTION_SECONDS: u64 = 90 * 24 * 3600;

/// When a run written now expires.
pub fn run_expiry() -> u64 {
    crate::domain::time::unix_now() + RUN_RETENTION_SECONDS
}

/// The write that replaces a run at `version`, renewing its retention.
pub fn execution_write(tenant: &TenantId, execution: &Execution, version: u64) -> Write {
    Write::replace(keys::tenant_pk(tenant), keys::execution_sk(&execution.execution_id), version, &execution)
        .expiring(run_expiry())
}

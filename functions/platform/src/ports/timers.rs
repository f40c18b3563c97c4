//! Timers: something the automation must do later (a delayed action's time, a scheduled
//! rule's next firing). EventBridge Scheduler one-time schedules on AWS, durable items in
//! the embedded store locally. A fired timer reaches the evaluator, which is idempotent:
//! a timer that fires twice, or after it was cancelled, changes nothing.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::queue::DeliveryError;

/// What a timer does when it fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "timer", rename_all = "snake_case")]
pub enum Timer {
    /// A waiting action of a run is due.
    Action { tenant_id: String, execution_id: String, action_index: usize },
    /// A scheduled rule's version fires at `at` (and sets its next timer). A timer of an
    /// earlier version, or of a rule since deactivated or deleted, does nothing.
    Schedule { tenant_id: String, rule_id: String, version: u64, at: i64 },
    /// A task is due at `due`: unless it is closed or its due date moved, it is overdue.
    TaskDue { tenant_id: String, task_id: String, due: i64 },
    /// A tenant export to run (set to fire at once).
    Export { tenant_id: String, export_id: String },
}

impl Timer {
    /// Its name: the same timer always has the same name, so setting it again replaces it
    /// (at most 64 characters of `[0-9a-zA-Z-_.]`, as Scheduler's names).
    pub fn name(&self) -> String {
        let parts: Vec<String> = match self {
            Timer::Action { tenant_id, execution_id, action_index } => {
                vec!["action".into(), tenant_id.clone(), execution_id.clone(), action_index.to_string()]
            }
            Timer::Schedule { tenant_id, rule_id, version, at } => {
                vec!["schedule".into(), tenant_id.clone(), rule_id.clone(), version.to_string(), at.to_string()]
            }
            Timer::TaskDue { tenant_id, task_id, due } => {
                vec!["taskdue".into(), tenant_id.clone(), task_id.clone(), due.to_string()]
            }
            Timer::Export { tenant_id, export_id } => vec!["export".into(), tenant_id.clone(), export_id.clone()],
        };
        let kind = &parts[0];
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        format!("{kind}-{}", crate::domain::events::derived_id(&refs))
    }

    pub fn tenant_id(&self) -> &str {
        match self {
            Timer::Action { tenant_id, .. }
            | Timer::Schedule { tenant_id, .. }
            | Timer::TaskDue { tenant_id, .. }
            | Timer::Export { tenant_id, .. } => tenant_id,
        }
    }
}

/// The EventBridge `source` and `detail-type` of a fired timer on the platform bus.
pub const TIMER_SOURCE: &str = "platform.timers";
pub const TIMER_DETAIL_TYPE: &str = "Timer Fired";

#[async_trait]
pub trait Timers: Send + Sync {
    /// Fires `timer` at `at` (epoch seconds; at once when past), replacing a timer of the same name.
    async fn set(&self, at: i64, timer: &Timer) -> Result<(), DeliveryError>;
    /// Forgets the timer of that name (nothing when there is none).
    async fn cancel(&self, name: &str) -> Result<(), DeliveryError>;
}

//! The action queue (SQS in AWS, a durable queue in the store locally) and the event
//! bus (EventBridge in AWS, in-process locally).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::events::BusinessEvent;
use crate::domain::rules::Action;

/// One action to execute: one per (event, rule, action index), with a deterministic id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionMessage {
    pub action_id: String,
    pub execution_id: String,
    pub tenant_id: String,
    pub rule_id: String,
    pub action_index: usize,
    pub action: Action,
    pub event: BusinessEvent,
    /// `system/entity` of the trigger, the default target of `update_status`.
    pub entity: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DeliveryError(pub String);

/// The longest delay a message can be queued with (SQS's limit).
pub const MAX_DELAY: std::time::Duration = std::time::Duration::from_secs(900);

#[async_trait]
pub trait ActionQueue: Send + Sync {
    /// Queues the messages, each visible after `delay` (at most [`MAX_DELAY`]).
    async fn enqueue_after(
        &self,
        messages: Vec<ActionMessage>,
        delay: std::time::Duration,
    ) -> Result<(), DeliveryError>;

    /// Queues the messages, visible at once.
    async fn enqueue(&self, messages: Vec<ActionMessage>) -> Result<(), DeliveryError> {
        self.enqueue_after(messages, std::time::Duration::ZERO).await
    }
}

#[async_trait]
pub trait EventBus: Send + Sync {
    async fn publish(&self, events: Vec<BusinessEvent>) -> Result<(), DeliveryError>;
}

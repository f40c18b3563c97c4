//! The local event bus: events go straight to the rule evaluator in this process. The
//! publisher only advances past a change once this returns, so nothing is lost.

use async_trait::async_trait;

use crate::app::engine::Evaluator;
use crate::domain::events::BusinessEvent;
use crate::ports::queue::{DeliveryError, EventBus};

#[derive(Clone)]
pub struct InProcessBus {
    evaluator: Evaluator,
}

impl InProcessBus {
    pub fn new(evaluator: Evaluator) -> Self {
        Self { evaluator }
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, events: Vec<BusinessEvent>) -> Result<(), DeliveryError> {
        for event in &events {
            self.evaluator.evaluate(event).await.map_err(|e| DeliveryError(e.to_string()))?;
        }
        Ok(())
    }
}

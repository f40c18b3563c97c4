//! The local event bus: events go straight to the rule evaluator in this process. The
//! publisher only advances past a change once this returns, so nothing is lost.
//!
//! The bus exists before the evaluator it feeds (the evaluator is one of the services
//! built over the bus's wiring), so it is attached once the services exist.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;

use crate::app::engine::Evaluator;
use crate::domain::events::BusinessEvent;
use crate::ports::queue::{DeliveryError, EventBus};

#[derive(Clone, Default)]
pub struct InProcessBus {
    evaluator: Arc<OnceLock<Evaluator>>,
}

impl InProcessBus {
    /// A bus that refuses events until [`InProcessBus::attach`] gives it its evaluator.
    pub fn unattached() -> Self {
        Self::default()
    }

    /// Hands every later event to `evaluator` (the first evaluator attached stays).
    pub fn attach(&self, evaluator: Evaluator) {
        let _ = self.evaluator.set(evaluator);
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, events: Vec<BusinessEvent>) -> Result<(), DeliveryError> {
        let evaluator = self
            .evaluator
            .get()
            .ok_or_else(|| DeliveryError("the local bus has no evaluator attached yet".to_string()))?;
        for event in &events {
            evaluator.evaluate(event).await.map_err(|e| DeliveryError(e.to_string()))?;
        }
        Ok(())
    }
}

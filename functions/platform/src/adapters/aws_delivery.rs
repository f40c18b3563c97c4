//! EventBridge (the event bus) and SQS (the action queue).

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use crate::domain::events::BusinessEvent;
use crate::domain::limits::{batches, MAX_BATCH_ENTRIES, MAX_PUT_EVENTS_BYTES, MAX_SQS_BATCH_BYTES};
use crate::ports::queue::{ActionMessage, ActionQueue, DeliveryError, EventBus};

fn failure(e: impl std::error::Error) -> DeliveryError {
    DeliveryError(format!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)))
}

/// Business events on a custom bus: `source` = `platform.<module>`, `detail-type` = trigger.
#[derive(Clone)]
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgeBus {
    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        Self { client, bus_name: bus_name.into() }
    }
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn publish(&self, events: Vec<BusinessEvent>) -> Result<(), DeliveryError> {
        let entries: Vec<PutEventsRequestEntry> = events
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus_name)
                    .source(format!("platform.{}", e.module_type))
                    .detail_type(&e.trigger_id)
                    .detail(serde_json::to_string(e).expect("serializes"))
                    .build()
            })
            .collect();
        // EventBridge's size of an entry: source, detail-type and detail (no time or resources set).
        let sizes: Vec<usize> = entries
            .iter()
            .map(|e| {
                e.source().map_or(0, str::len) + e.detail_type().map_or(0, str::len) + e.detail().map_or(0, str::len)
            })
            .collect();
        for range in batches(&sizes, MAX_BATCH_ENTRIES, MAX_PUT_EVENTS_BYTES) {
            let entries = entries[range].to_vec();
            let out = self.client.put_events().set_entries(Some(entries)).send().await.map_err(failure)?;
            if out.failed_entry_count() > 0 {
                return Err(DeliveryError(format!("{} events were not accepted", out.failed_entry_count())));
            }
        }
        Ok(())
    }
}

/// Action messages on a standard SQS queue (its redrive policy sends them to a DLQ), each
/// in its tenant's message group so that the queue serves tenants fairly.
#[derive(Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }
}

#[async_trait]
impl ActionQueue for SqsQueue {
    async fn enqueue_after(
        &self,
        messages: Vec<ActionMessage>,
        delay: std::time::Duration,
    ) -> Result<(), DeliveryError> {
        // Whole seconds, rounded up, within SQS's 15 minutes.
        let delay_seconds = delay.min(crate::ports::queue::MAX_DELAY).as_millis().div_ceil(1000) as i32;
        let bodies: Vec<String> = messages.iter().map(|m| serde_json::to_string(m).expect("serializes")).collect();
        let sizes: Vec<usize> = bodies.iter().map(String::len).collect();
        for range in batches(&sizes, MAX_BATCH_ENTRIES, MAX_SQS_BATCH_BYTES) {
            let entries = range
                .clone()
                .map(|i| {
                    // The tenant as message group: SQS fair queues keep one tenant's backlog
                    // from delaying the others' messages.
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(&bodies[i])
                        .message_group_id(&messages[i].tenant_id)
                        .set_delay_seconds((delay_seconds > 0).then_some(delay_seconds))
                        .build()
                        .map_err(|e| DeliveryError(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(failure)?;
            if !out.failed().is_empty() {
                return Err(DeliveryError(format!("{} messages were not accepted", out.failed().len())));
            }
        }
        Ok(())
    }
}

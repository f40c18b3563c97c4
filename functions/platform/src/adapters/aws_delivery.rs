//! EventBridge (the event bus) and SQS (the action queue).

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sqs::types::{
    MessageSystemAttributeNameForSends, MessageSystemAttributeValue, SendMessageBatchRequestEntry,
};

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
        let trace = crate::telemetry::trace_header();
        let entries: Vec<PutEventsRequestEntry> =
            events.iter().map(|e| bus_entry(&self.bus_name, e, trace.as_deref())).collect();
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

/// One event on the bus, with the X-Ray trace it was published in (EventBridge passes it
/// on to the evaluator's invocation).
fn bus_entry(bus: &str, event: &BusinessEvent, trace: Option<&str>) -> PutEventsRequestEntry {
    PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(format!("platform.{}", event.module_type))
        .detail_type(&event.trigger_id)
        .detail(serde_json::to_string(event).expect("serializes"))
        .set_trace_header(trace.map(str::to_string))
        .build()
}

/// One message of a batch: the tenant as message group (SQS fair queues keep one
/// tenant's backlog from delaying the others'), and the X-Ray trace it was sent in as
/// `AWSTraceHeader` (the trace continues in the executor).
fn batch_entry(
    i: usize,
    body: &str,
    tenant: &str,
    delay_seconds: i32,
    trace: Option<&str>,
) -> Result<SendMessageBatchRequestEntry, DeliveryError> {
    let trace = trace
        .map(|header| {
            MessageSystemAttributeValue::builder().data_type("String").string_value(header).build().map(|value| {
                std::collections::HashMap::from([(MessageSystemAttributeNameForSends::AwsTraceHeader, value)])
            })
        })
        .transpose()
        .map_err(|e| DeliveryError(e.to_string()))?;
    SendMessageBatchRequestEntry::builder()
        .id(i.to_string())
        .message_body(body)
        .message_group_id(tenant)
        .set_delay_seconds((delay_seconds > 0).then_some(delay_seconds))
        .set_message_system_attributes(trace)
        .build()
        .map_err(|e| DeliveryError(e.to_string()))
}

/// Action messages on a standard SQS queue (its redrive policy sends them to a DLQ), each
/// in its tenant's message group so that the queue serves tenants fairly.
#[derive(Clone)]
pub struct SqsQueue {
    client: super::lazily::Lazily<aws_sdk_sqs::Client>,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: impl Into<super::lazily::Lazily<aws_sdk_sqs::Client>>, queue_url: impl Into<String>) -> Self {
        Self { client: client.into(), queue_url: queue_url.into() }
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
        let trace = crate::telemetry::trace_header();
        let sizes: Vec<usize> = bodies.iter().map(String::len).collect();
        for range in batches(&sizes, MAX_BATCH_ENTRIES, MAX_SQS_BATCH_BYTES) {
            let entries = range
                .clone()
                .map(|i| batch_entry(i, &bodies[i], &messages[i].tenant_id, delay_seconds, trace.as_deref()))
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .get()
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

#[cfg(test)]
mod tests {
    use super::*;

    // moto keeps MessageSystemAttributes of SendMessage but not of SendMessageBatch, so
    // the entry itself is checked here.
    #[test]
    fn queued_messages_carry_the_trace_they_were_sent_in() {
        let trace = "Root=1-6921356c-3f1a6d2b7c4e5f60718293a4;Parent=53995c3f42cd8ad8;Sampled=1";
        let entry = batch_entry(0, "{}", "acme", 0, Some(trace)).unwrap();
        let carried = entry.message_system_attributes().unwrap()[&MessageSystemAttributeNameForSends::AwsTraceHeader]
            .string_value();
        assert_eq!(carried, Some(trace));
        assert_eq!(entry.message_group_id(), Some("acme"));
        let untraced = batch_entry(1, "{}", "acme", 3, None).unwrap();
        assert!(untraced.message_system_attributes().is_none());
        assert_eq!(untraced.delay_seconds(), Some(3));
    }

    #[test]
    fn published_events_carry_the_trace_they_were_published_in() {
        let trace = "Root=1-6921356c-3f1a6d2b7c4e5f60718293a4;Parent=53995c3f42cd8ad8;Sampled=1";
        let event: BusinessEvent = serde_json::from_value(serde_json::json!({
            "event_id": "e1", "tenant_id": "acme", "module_type": "sales", "trigger_id": "deal_won",
            "occurred_at": "2026-11-22T00:00:00.000Z", "data": {}, "changes": {}, "causation": {"depth": 0, "action_id": null}
        }))
        .unwrap();
        let entry = bus_entry("platform-events", &event, Some(trace));
        assert_eq!(entry.trace_header(), Some(trace));
        assert_eq!((entry.source(), entry.detail_type()), (Some("platform.sales"), Some("deal_won")));
        assert_eq!(bus_entry("platform-events", &event, None).trace_header(), None);
    }
}

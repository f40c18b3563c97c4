//! The automation stages as Lambda handlers: DynamoDB stream -> publisher, EventBridge
//! -> evaluator, SQS -> executor (with partial batch failures).

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde::Deserialize;
use serde_json::Value;

use crate::app::Services;
use crate::domain::events::BusinessEvent;
use crate::ports::feed::StoreChange;
use crate::ports::queue::ActionMessage;
use crate::ports::store::Item;

/// An item image as DynamoDB Streams delivers it.
#[derive(Deserialize)]
struct StreamImage {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    data: Value,
}

fn image(item: serde_dynamo::Item) -> Result<Option<Item>, String> {
    if item.is_empty() {
        return Ok(None);
    }
    let image: StreamImage = serde_dynamo::from_item(item).map_err(|e| format!("unreadable stream image: {e}"))?;
    Ok(Some(Item::new(image.pk, image.sk, image.version, image.data)))
}

/// DynamoDB stream batch -> business events on the bus. An error makes Lambda retry the
/// batch (the stream is the outbox: nothing is lost; event ids are deterministic).
pub async fn publish_stream(services: &Services, event: StreamEvent) -> Result<usize, String> {
    let mut changes = Vec::with_capacity(event.records.len());
    for (seq, record) in event.records.into_iter().enumerate() {
        let change = record.change;
        changes.push(StoreChange { seq: seq as u64, old: image(change.old_image)?, new: image(change.new_image)? });
    }
    services.engine.publisher.publish(&changes).await.map_err(|e| e.to_string())
}

/// One EventBridge event (`detail` is the envelope) -> matching rules -> action queue.
pub async fn evaluate_bus_event(services: &Services, event: CloudWatchEvent<BusinessEvent>) -> Result<usize, String> {
    let detail = event.detail.ok_or("the EventBridge event has no detail")?;
    let ids = services.engine.evaluator.evaluate(&detail).await.map_err(|e| e.to_string())?;
    Ok(ids.len())
}

/// An SQS batch of action messages; the ones that failed are reported for redelivery
/// (and after the queue's maximum receives, its dead-letter queue).
pub async fn execute_queue_batch(services: &Services, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let outcome = match record.body.as_deref().map(serde_json::from_str::<ActionMessage>) {
            Some(Ok(message)) => services.engine.executor.execute(&message).await.map_err(|e| e.0),
            Some(Err(e)) => Err(format!("not an action message: {e}")),
            None => Err("empty message".to_string()),
        };
        if let Err(error) = outcome {
            tracing::warn!(message_id = %id, error = %error, "action failed; SQS will redeliver it");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

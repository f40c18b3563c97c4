//! Reads back a batch of DynamoDB stream records that Lambda gave up on. The stream's
//! on-failure destination receives only where the batch was (shard and sequence
//! numbers); the records themselves are still in the stream (24 hours), so they are read
//! here and kept as dead letters that can be replayed.

use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use serde::Deserialize;

use crate::ports::feed::StoreChange;
use crate::ports::store::Item;

/// `DDBStreamBatchInfo` of a stream's on-failure record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamBatch {
    pub stream_arn: String,
    pub shard_id: String,
    pub start_sequence_number: String,
    pub end_sequence_number: String,
}

/// An on-failure record of a DynamoDB stream event source.
#[derive(Debug, Clone, Deserialize)]
pub struct StreamFailure {
    #[serde(rename = "DDBStreamBatchInfo")]
    pub batch: StreamBatch,
}

/// Sequence numbers are decimal strings of varying length: compare them as numbers.
fn sequence_after(a: &str, b: &str) -> bool {
    (a.len(), a) > (b.len(), b)
}

/// Most `GetRecords` pages read for one batch.
const MAX_PAGES: usize = 50;

/// An item image as DynamoDB Streams carries it.
#[derive(Deserialize)]
struct Image {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    data: serde_json::Value,
}

/// A stream record's image as a store item (`None` for an empty image). The one decoder
/// of stream images: the publisher's Lambda event and the batches read back here.
pub fn image(item: serde_dynamo::Item) -> Result<Option<Item>, String> {
    if item.is_empty() {
        return Ok(None);
    }
    let image: Image = serde_dynamo::from_item(item).map_err(|e| format!("unreadable stream image: {e}"))?;
    Ok(Some(Item::new(image.pk, image.sk, image.version, image.data)))
}

type StreamItem = std::collections::HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>;

fn item(image_of: Option<&StreamItem>) -> Result<Option<Item>, String> {
    image_of.map_or(Ok(None), |i| image(serde_dynamo::Item::from(i.clone())))
}

#[derive(Clone)]
pub struct StreamBatches {
    client: aws_sdk_dynamodbstreams::Client,
}

impl StreamBatches {
    pub fn new(client: aws_sdk_dynamodbstreams::Client) -> Self {
        Self { client }
    }

    /// The changes of the batch, in stream order.
    pub async fn changes(&self, batch: &StreamBatch) -> Result<Vec<StoreChange>, String> {
        let iterator = self
            .client
            .get_shard_iterator()
            .stream_arn(&batch.stream_arn)
            .shard_id(&batch.shard_id)
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .sequence_number(&batch.start_sequence_number)
            .send()
            .await
            .map_err(|e| {
                format!("the stream batch cannot be read: {}", aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e))
            })?;
        let mut next = iterator.shard_iterator;
        let mut changes = Vec::new();
        for _ in 0..MAX_PAGES {
            let Some(at) = next.take() else { break };
            let page = self.client.get_records().shard_iterator(at).send().await.map_err(|e| {
                format!("the stream batch cannot be read: {}", aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e))
            })?;
            let records = page.records.unwrap_or_default();
            for record in &records {
                let Some(change) = record.dynamodb() else { continue };
                let sequence = change.sequence_number().unwrap_or_default();
                if sequence_after(sequence, &batch.end_sequence_number) {
                    return Ok(changes);
                }
                changes.push(StoreChange {
                    seq: changes.len() as u64,
                    old: item(change.old_image.as_ref())?,
                    new: item(change.new_image.as_ref())?,
                });
            }
            if records.is_empty() {
                break; // caught up with the shard
            }
            next = page.next_shard_iterator;
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert!(sequence_after("1000", "999"));
        assert!(!sequence_after("999", "1000"));
        assert!(!sequence_after("1000", "1000"));
    }

    #[test]
    fn failure_records_are_read() {
        let body = r#"{"requestContext": {"condition": "RetryAttemptsExhausted"}, "version": "1.0",
            "DDBStreamBatchInfo": {"shardId": "shardId-1", "startSequenceNumber": "100", "endSequenceNumber": "120",
            "batchSize": 2, "streamArn": "arn:aws:dynamodb:us-east-1:1:table/t/stream/x"}}"#;
        let failure: StreamFailure = serde_json::from_str(body).unwrap();
        assert_eq!(failure.batch.shard_id, "shardId-1");
        assert_eq!(failure.batch.end_sequence_number, "120");
    }
}

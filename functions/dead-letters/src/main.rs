//! Lambda function: what the automation stages gave up on. Messages of the action
//! queue's DLQ, the evaluator's DLQ and the stream's on-failure queue become dead letters
//! the operator lists and replays (`/api/v1/operations/dead-letters`); the scheduled
//! event marks the unfinished actions of runs past their deadline as dead.

use aws_lambda_events::event::sqs::SqsEvent;
use platform::adapters::stream_batches::StreamBatches;
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let aws = platform::runtime::lambda_sdk_config()?;
    let streams = StreamBatches::new(aws_sdk_dynamodbstreams::Client::new(&aws));
    platform::runtime::run_stage(move |services, event: Value, _budget| {
        let streams = streams.clone();
        async move {
            if event.get("Records").is_some() {
                let batch: SqsEvent = serde_json::from_value(event).map_err(|e| format!("not an SQS batch: {e}"))?;
                let response = platform::stages::keep_dead_letters(&services, &streams, batch).await;
                return serde_json::to_value(response).map_err(|e| e.to_string());
            }
            // The schedule's event: sweep the run deadlines.
            let runs = services.runs().sweep(platform::domain::time::unix_now()).await.map_err(|e| e.to_string())?;
            Ok(serde_json::json!({"swept_runs": runs}))
        }
    })
    .await
}

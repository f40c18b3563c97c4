//! Lambda function: DynamoDB stream of the table -> business events on EventBridge.

use aws_lambda_events::event::dynamodb::Event;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    platform::runtime::run_stage(|services, event: Event, _budget| async move {
        platform::stages::publish_stream(&services, event).await
    })
    .await
}

//! Lambda function: EventBridge business events -> the tenant's matching rules -> SQS action
//! queue; fired timers (`platform.timers`) -> their delayed actions and schedules.

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    platform::runtime::run_stage(|services, event: CloudWatchEvent<serde_json::Value>, _budget| async move {
        platform::stages::evaluate_bus_event(&services, event).await
    })
    .await
}

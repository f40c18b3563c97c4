//! Lambda function: EventBridge business events -> the tenant's matching rules -> SQS action queue.

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use platform::domain::events::BusinessEvent;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    platform::runtime::run_stage(|services, event: CloudWatchEvent<BusinessEvent>, _budget| async move {
        platform::stages::evaluate_bus_event(&services, event).await
    })
    .await
}

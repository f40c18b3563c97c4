//! Lambda function: SQS action messages -> exactly-once effects, partial batch failures.

use aws_lambda_events::event::sqs::SqsEvent;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    platform::runtime::run_stage(|services, event: SqsEvent, budget| async move {
        Ok::<_, String>(platform::stages::execute_queue_batch(&services, event, budget).await)
    })
    .await
}

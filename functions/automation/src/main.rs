//! Lambda function: `/api/v1/automation` (triggers, rules, executions, events),
//! `/api/v1/notifications` and `/api/v1/tools/tasks`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    platform::runtime::run_lambda(platform::http::automation::routes(), platform::runtime::Seed::No).await
}

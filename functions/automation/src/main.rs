//! Lambda function: `/api/v1/automation` (triggers, rules, executions, events),
//! `/api/v1/notifications`, `/api/v1/tools/tasks` and the operator's
//! `/api/v1/operations` (dead letters, run deadlines).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    platform::runtime::run_lambda(platform::http::automation_function_routes()).await
}

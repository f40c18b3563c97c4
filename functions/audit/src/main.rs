//! Lambda function: `/api/v1/settings/audit-logs` (read and export the audit trail).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    platform::runtime::run_lambda(platform::http::audit::routes()).await
}

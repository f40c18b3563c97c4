//! Lambda function: `/api/v1/tools/calls` (call logs).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    platform::runtime::run_lambda(platform::http::tools::calls_routes()).await
}

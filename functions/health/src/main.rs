//! Lambda function: health and readiness probes.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    platform::runtime::run_lambda(platform::http::health::routes()).await
}

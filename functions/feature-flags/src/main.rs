//! Lambda function: `/api/v1/settings/feature-flags` and OFREP `/ofrep/v1/...` (flags and their evaluation).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    platform::runtime::run_lambda(platform::http::flags::routes()).await
}

//! Lambda function: `/api/v1/settings` (tenant and platform settings, versioned).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    platform::runtime::run_lambda(platform::http::settings::routes()).await
}

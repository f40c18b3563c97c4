//! Lambda function: `/api/v1/tenants/{tenant_id}` (offboarding).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    platform::runtime::run_lambda(platform::http::tenants::routes()).await
}

//! Lambda function: the `tenant-systems` resource behind API Gateway, on DynamoDB.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    platform::runtime::run_lambda(platform::http::tenant_systems::routes()).await
}

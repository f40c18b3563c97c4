//! Lambda function: the `catalog` resource behind API Gateway, on DynamoDB.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    platform::runtime::run_lambda(platform::http::catalog::routes()).await
}

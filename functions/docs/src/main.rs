//! Lambda function: the OpenAPI document and Swagger UI (no other function builds them).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    platform::runtime::run_lambda(platform::http::docs::routes()).await
}

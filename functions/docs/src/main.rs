//! Lambda function: the OpenAPI document and Swagger UI (no other function builds them).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    platform::runtime::run_lambda(platform::http::docs::routes()).await
}

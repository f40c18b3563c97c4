//! Lambda function: health checks, the OpenAPI document and Swagger UI.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes = platform::http::health::routes().merge(platform::http::docs::routes());
    platform::runtime::run_lambda(routes, platform::runtime::Seed::No).await
}

//! Lambda function: `/api/v1/tools/reviews` (reviews, moderation and summaries).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    platform::runtime::run_lambda(platform::http::tools::reviews_routes()).await
}

//! Lambda function: `/api/v1/tools/notes` (notes with visibility).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    platform::runtime::run_lambda(platform::http::tools::notes_routes()).await
}

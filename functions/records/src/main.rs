//! Lambda function: `/api/v1/systems/{system_id}/records/{entity}` (the installed systems' data).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    platform::runtime::run_lambda(platform::http::records::routes()).await
}

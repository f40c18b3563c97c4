//! Lambda function: `/api/v1/users` (users, roles, permissions, teams, API keys).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    platform::runtime::run_lambda(platform::http::users::routes()).await
}

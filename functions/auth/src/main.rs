//! Lambda function: `/api/v1/auth` (onboarding, sign-in, tokens, sessions, password reset).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    platform::runtime::run_lambda(platform::http::auth::routes()).await
}

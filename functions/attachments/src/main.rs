//! Lambda function: `/api/v1/tools/attachments` (files linked to records, presigned S3 URLs).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    platform::runtime::run_lambda(platform::http::attachments::routes()).await
}

//! Lambda function: `/api/v1/tools/events` (calendar events, occurrences, iCalendar export).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    platform::runtime::run_lambda(platform::http::calendar::routes()).await
}

//! Lambda function: a CloudFormation custom resource that publishes the built-in catalog
//! when the stack is created or updated, so no API function touches the store at init.

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    platform::runtime::run_stage(|services, request: CloudFormationCustomResourceRequest, _budget| async move {
        platform::stages::seed_catalog_resource(&services, request).await
    })
    .await
}

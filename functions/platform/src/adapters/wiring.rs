//! Where a process's ports beyond the store come from: given up front (the local server,
//! and tests that point AWS adapters at their own resources), or AWS clients built from a
//! Lambda function's environment on first use.

use std::sync::Arc;

use crate::ports::blobs::Blobs;
use crate::ports::mail::Mailer;
use crate::ports::queue::{ActionQueue, EventBus};
use crate::ports::timers::Timers;
use crate::ports::Outside;

/// Ports built by the caller.
#[derive(Clone)]
pub struct Given {
    pub mailer: Arc<dyn Mailer>,
    pub queue: Arc<dyn ActionQueue>,
    pub bus: Arc<dyn EventBus>,
    pub timers: Arc<dyn Timers>,
    pub blobs: Option<Arc<dyn Blobs>>,
}

/// The AWS resources a Lambda function is given in its environment: SES sender
/// `MAIL_FROM`, SQS queue `ACTION_QUEUE_URL`, EventBridge bus `EVENT_BUS_NAME`, timers as
/// EventBridge Scheduler schedules in `SCHEDULE_GROUP` that put on `EVENT_BUS_ARN` as
/// `SCHEDULER_ROLE_ARN`, files in S3 bucket `FILES_BUCKET`.
#[derive(Debug, Clone)]
pub struct AwsResources {
    pub mail_from: String,
    pub queue_url: String,
    pub bus_name: String,
    pub schedules: crate::adapters::scheduler::SchedulerTarget,
    pub files_bucket: Option<String>,
    /// Path-style S3 addresses, for a local endpoint (`AWS_ENDPOINT_URL`).
    pub path_style: bool,
}

impl AwsResources {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            mail_from: var("MAIL_FROM").unwrap_or_else(|| "no-reply@example.com".to_string()),
            queue_url: var("ACTION_QUEUE_URL").unwrap_or_default(),
            bus_name: var("EVENT_BUS_NAME").unwrap_or_else(|| "default".to_string()),
            schedules: crate::adapters::scheduler::SchedulerTarget {
                group: var("SCHEDULE_GROUP").unwrap_or_else(|| "default".to_string()),
                bus_arn: var("EVENT_BUS_ARN").unwrap_or_default(),
                role_arn: var("SCHEDULER_ROLE_ARN").unwrap_or_default(),
            },
            files_bucket: var("FILES_BUCKET"),
            path_style: var("AWS_ENDPOINT_URL").is_some(),
        }
    }
}

/// A Lambda function's AWS configuration and resources.
pub struct Aws {
    pub sdk: aws_types::SdkConfig,
    pub resources: AwsResources,
}

pub enum Wiring {
    Given(Given),
    /// Each client is made when its port is first asked for.
    Aws(Box<Aws>),
}

impl Outside for Wiring {
    fn mailer(&self) -> Arc<dyn Mailer> {
        match self {
            Wiring::Given(given) => given.mailer.clone(),
            Wiring::Aws(aws) => Arc::new(crate::adapters::ses::SesMailer::new(
                aws_sdk_sesv2::Client::new(&aws.sdk),
                aws.resources.mail_from.clone(),
            )),
        }
    }

    fn queue(&self) -> Arc<dyn ActionQueue> {
        match self {
            Wiring::Given(given) => given.queue.clone(),
            Wiring::Aws(aws) => {
                let sdk = aws.sdk.clone();
                Arc::new(crate::adapters::aws_delivery::SqsQueue::new(
                    crate::adapters::lazily::Lazily::new(move || aws_sdk_sqs::Client::new(&sdk)),
                    aws.resources.queue_url.clone(),
                ))
            }
        }
    }

    fn bus(&self) -> Arc<dyn EventBus> {
        match self {
            Wiring::Given(given) => given.bus.clone(),
            Wiring::Aws(aws) => Arc::new(crate::adapters::aws_delivery::EventBridgeBus::new(
                aws_sdk_eventbridge::Client::new(&aws.sdk),
                aws.resources.bus_name.clone(),
            )),
        }
    }

    fn timers(&self) -> Arc<dyn Timers> {
        match self {
            Wiring::Given(given) => given.timers.clone(),
            Wiring::Aws(aws) => {
                let sdk = aws.sdk.clone();
                Arc::new(crate::adapters::scheduler::SchedulerTimers::new(
                    crate::adapters::lazily::Lazily::new(move || aws_sdk_scheduler::Client::new(&sdk)),
                    aws.resources.schedules.clone(),
                ))
            }
        }
    }

    fn blobs(&self) -> Option<Arc<dyn Blobs>> {
        match self {
            Wiring::Given(given) => given.blobs.clone(),
            Wiring::Aws(aws) => aws.resources.files_bucket.clone().map(|bucket| {
                let config =
                    aws_sdk_s3::config::Builder::from(&aws.sdk).force_path_style(aws.resources.path_style).build();
                Arc::new(crate::adapters::s3::S3Blobs::new(aws_sdk_s3::Client::from_conf(config), bucket))
                    as Arc<dyn Blobs>
            }),
        }
    }
}

//! Implementations of the ports: DynamoDB, SES, EventBridge and SQS for AWS; an embedded
//! store, a mail folder, an in-process bus and a durable store-backed queue locally.

pub mod aws_delivery;
pub mod dynamo;
pub mod embedded;
pub mod lazily;
pub mod local_bus;
pub mod local_files;
pub mod local_queue;
pub mod local_timers;
pub mod mail_dir;
pub mod private_files;
pub mod recent_items;
pub mod s3;
pub mod scheduler;
pub mod sdk_http;
pub mod secrets;
pub mod ses;
pub mod stream_batches;
pub mod wiring;

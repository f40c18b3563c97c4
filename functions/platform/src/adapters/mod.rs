//! Implementations of the ports: DynamoDB and SES for AWS; an embedded store and a mail
//! folder for the local server.

pub mod dynamo;
pub mod embedded;
pub mod mail_dir;
pub mod ses;

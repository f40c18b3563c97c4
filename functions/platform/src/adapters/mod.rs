//! Implementations of the ports: DynamoDB for AWS, an embedded store for the local server.

pub mod dynamo;
pub mod embedded;

//! Files: attachments and export archives. S3 with presigned URLs on AWS; owner-only files
//! under `DATA_DIR` locally, uploaded and downloaded through the local server.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("file storage failed: {0}")]
    Failed(String),
}

/// Where and how a client uploads: send `method` to `url` with exactly `headers`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Upload {
    pub url: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub expires_at: String,
}

/// What is stored at a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub size: u64,
    pub content_type: Option<String>,
}

#[async_trait]
pub trait Blobs: Send + Sync {
    /// A URL that accepts exactly `size` bytes of `content_type` at `key` for `ttl` seconds.
    async fn upload(&self, key: &str, content_type: &str, size: u64, ttl: u64) -> Result<Upload, BlobError>;
    /// A URL that serves `key` as the attachment `filename` for `ttl` seconds.
    async fn download(&self, key: &str, filename: &str, ttl: u64) -> Result<String, BlobError>;
    async fn head(&self, key: &str) -> Result<Option<BlobInfo>, BlobError>;
    /// The upload at `key` is checked and kept (no longer an orphan to expire).
    async fn keep(&self, key: &str) -> Result<(), BlobError>;
    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), BlobError>;
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
}

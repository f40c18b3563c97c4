//! Files in S3: presigned PUT (the size, content type and `state=pending` tag are signed,
//! so S3 refuses anything else) and GET URLs; kept uploads are re-tagged
//! `state=complete`, so the bucket's lifecycle rule expires only orphans.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{Tag, Tagging};

use crate::ports::blobs::{BlobError, BlobInfo, Blobs, Upload};

/// The tag an upload carries until it is checked and kept.
pub const PENDING_TAG: &str = "state=pending";

pub struct S3Blobs {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Blobs {
    pub fn new(client: aws_sdk_s3::Client, bucket: String) -> Self {
        Self { client, bucket }
    }
}

fn failed(e: impl std::fmt::Display) -> BlobError {
    BlobError::Failed(e.to_string())
}

fn presigning(ttl: u64) -> Result<PresigningConfig, BlobError> {
    PresigningConfig::expires_in(Duration::from_secs(ttl)).map_err(failed)
}

fn expires_at(ttl: u64) -> String {
    crate::domain::timing::rfc3339_of(crate::domain::time::unix_now() as i64 + ttl as i64)
}

#[async_trait]
impl Blobs for S3Blobs {
    async fn upload(&self, key: &str, content_type: &str, size: u64, ttl: u64) -> Result<Upload, BlobError> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(size as i64)
            .tagging(PENDING_TAG)
            .presigned(presigning(ttl)?)
            .await
            .map_err(failed)?;
        let headers: BTreeMap<String, String> =
            request.headers().map(|(name, value)| (name.to_ascii_lowercase(), value.to_string())).collect();
        Ok(Upload { url: request.uri().to_string(), method: "PUT".to_string(), headers, expires_at: expires_at(ttl) })
    }

    async fn download(&self, key: &str, filename: &str, ttl: u64) -> Result<String, BlobError> {
        let safe: String = filename.chars().filter(|c| !c.is_control() && *c != '"' && *c != '\\').collect();
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(format!("attachment; filename=\"{safe}\""))
            .presigned(presigning(ttl)?)
            .await
            .map_err(failed)?;
        Ok(request.uri().to_string())
    }

    async fn head(&self, key: &str) -> Result<Option<BlobInfo>, BlobError> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(found) => Ok(Some(BlobInfo {
                size: found.content_length().unwrap_or_default().max(0) as u64,
                content_type: found.content_type().map(str::to_string),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(failed(aws_sdk_s3::error::DisplayErrorContext(e))),
        }
    }

    async fn keep(&self, key: &str) -> Result<(), BlobError> {
        let tag = Tag::builder().key("state").value("complete").build().map_err(failed)?;
        let tagging = Tagging::builder().tag_set(tag).build().map_err(failed)?;
        self.client
            .put_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| failed(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(bytes.into())
            .send()
            .await
            .map_err(|e| failed(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| failed(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}

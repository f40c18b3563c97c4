//! Files on the local machine, under `DATA_DIR/files` (owner-only), uploaded and downloaded
//! through the local server's `/api/v1/files/{key}` with the caller's bearer credential.
//! An upload's expected size and content type wait beside it (`.expect`), as S3's signed
//! headers do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::ports::blobs::{BlobError, BlobInfo, Blobs, Upload};

pub struct LocalFiles {
    root: PathBuf,
}

/// The local server's path for a file key.
pub const FILES_ROUTE: &str = "/api/v1/files/";

impl LocalFiles {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The file of a key; keys are the platform's own (`<tenant>/<kind>/<id>`), never a path
    /// that leaves the root.
    pub fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        let clean = key.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        });
        if !clean {
            return Err(BlobError::Failed(format!("'{key}' is not a file key")));
        }
        Ok(self.root.join(key))
    }

    fn expect_path(path: &Path) -> PathBuf {
        path.with_extension("expect")
    }

    /// What an upload at `key` must be: (size, content type).
    pub fn expected(&self, key: &str) -> Result<Option<(u64, String)>, BlobError> {
        let path = Self::expect_path(&self.path(key)?);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let v: serde_json::Value =
                    serde_json::from_slice(&bytes).map_err(|e| BlobError::Failed(e.to_string()))?;
                Ok(Some((v["size"].as_u64().unwrap_or(0), v["content_type"].as_str().unwrap_or_default().to_string())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlobError::Failed(e.to_string())),
        }
    }

    /// Reads a stored file and its content type.
    pub fn read(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, BlobError> {
        let path = self.path(key)?;
        match std::fs::read(&path) {
            Ok(bytes) => {
                let kind = std::fs::read_to_string(path.with_extension("type"))
                    .unwrap_or_else(|_| "application/octet-stream".into());
                Ok(Some((bytes, kind)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlobError::Failed(e.to_string())),
        }
    }

    fn write(&self, key: &str, content_type: &str, bytes: &[u8]) -> Result<(), BlobError> {
        let path = self.path(key)?;
        let io = |e: std::io::Error| BlobError::Failed(e.to_string());
        if let Some(parent) = path.parent() {
            super::private_files::create_private_dir(parent).map_err(io)?;
        }
        super::private_files::write_private(&path, bytes).map_err(io)?;
        super::private_files::write_private(&path.with_extension("type"), content_type.as_bytes()).map_err(io)
    }
}

#[async_trait]
impl Blobs for LocalFiles {
    async fn upload(&self, key: &str, content_type: &str, size: u64, ttl: u64) -> Result<Upload, BlobError> {
        let path = self.path(key)?;
        let io = |e: std::io::Error| BlobError::Failed(e.to_string());
        if let Some(parent) = path.parent() {
            super::private_files::create_private_dir(parent).map_err(io)?;
        }
        let expect = serde_json::json!({"size": size, "content_type": content_type}).to_string();
        super::private_files::write_private(&Self::expect_path(&path), expect.as_bytes()).map_err(io)?;
        let headers = BTreeMap::from([
            ("content-type".to_string(), content_type.to_string()),
            ("content-length".to_string(), size.to_string()),
        ]);
        let expires_at = crate::domain::timing::rfc3339_of(crate::domain::time::unix_now() as i64 + ttl as i64);
        Ok(Upload { url: format!("{FILES_ROUTE}{key}"), method: "PUT".to_string(), headers, expires_at })
    }

    async fn download(&self, key: &str, _filename: &str, _ttl: u64) -> Result<String, BlobError> {
        self.path(key)?;
        Ok(format!("{FILES_ROUTE}{key}"))
    }

    async fn head(&self, key: &str) -> Result<Option<BlobInfo>, BlobError> {
        Ok(self.read(key)?.map(|(bytes, kind)| BlobInfo { size: bytes.len() as u64, content_type: Some(kind) }))
    }

    async fn keep(&self, key: &str) -> Result<(), BlobError> {
        let _ = std::fs::remove_file(Self::expect_path(&self.path(key)?));
        Ok(())
    }

    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        self.write(key, content_type, &bytes)
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path(key)?;
        for p in [path.clone(), path.with_extension("type"), Self::expect_path(&path)] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(BlobError::Failed(e.to_string())),
            }
        }
        Ok(())
    }
}

/// Writes an upload after checking it against what was expected.
pub fn accept_upload(files: &LocalFiles, key: &str, content_type: &str, bytes: &[u8]) -> Result<bool, BlobError> {
    let Some((size, kind)) = files.expected(key)? else { return Ok(false) };
    if size != bytes.len() as u64 || kind != content_type {
        return Ok(false);
    }
    files.write(key, content_type, bytes)?;
    Ok(true)
}

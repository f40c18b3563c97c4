//! The local mailer: each message is a JSON file in a folder (`DATA_DIR/mail`), written
//! atomically (temp file + rename), for a person or a test to read.

use std::path::PathBuf;

use async_trait::async_trait;

use crate::ports::mail::{Mail, MailError, Mailer};

#[derive(Debug, Clone)]
pub struct DirectoryMailer {
    dir: PathBuf,
}

impl DirectoryMailer {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

#[async_trait]
impl Mailer for DirectoryMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let err = |e: std::io::Error| MailError(e.to_string());
        tokio::fs::create_dir_all(&self.dir).await.map_err(err)?;
        let name = ulid::Ulid::generate().to_string();
        let temp = self.dir.join(format!(".{name}.tmp"));
        let body = serde_json::to_vec_pretty(mail).map_err(|e| MailError(e.to_string()))?;
        tokio::fs::write(&temp, body).await.map_err(err)?;
        tokio::fs::rename(&temp, self.dir.join(format!("{name}.json"))).await.map_err(err)
    }
}

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
        let dir = self.dir.clone();
        let body = serde_json::to_vec_pretty(mail).map_err(|e| MailError(e.to_string()))?;
        // Messages carry reset and verification tokens: only the owner may read them.
        tokio::task::spawn_blocking(move || {
            crate::adapters::private_files::create_private_dir(&dir)?;
            let name = ulid::Ulid::generate().to_string();
            let temp = dir.join(format!(".{name}.tmp"));
            crate::adapters::private_files::write_private(&temp, &body)?;
            std::fs::rename(&temp, dir.join(format!("{name}.json")))
        })
        .await
        .map_err(|e| MailError(e.to_string()))?
        .map_err(err)
    }
}

//! Tenant export (data portability): an asynchronous job that writes one zip archive of
//! everything the tenant owns, one JSON Lines file per kind, secrets left out, and a
//! download link when it is done. The job is a timer that fires at once (the evaluator
//! runs it), so it works alike on AWS (EventBridge Scheduler) and locally.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::audit::{self, Actor, Change};
use super::error::{AppError, AppResult};
use super::keys;
use super::stored::decode;
use crate::domain::ids::TenantId;
use crate::ports::blobs::Blobs;
use crate::ports::store::{Condition, Item, Store, Write};
use crate::ports::timers::{Timer, Timers};

pub const EXPORT_PREFIX: &str = "EXPORT#";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    Pending,
    Complete,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportJob {
    pub export_id: String,
    pub status: ExportStatus,
    pub requested_by: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// Lines per file of the archive (`records.sales.opportunities.jsonl` -> n).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schema(read_only)]
    pub file_key: String,
}

/// Items that hold credentials or machinery, never exported.
const NEVER: [&str; 12] = [
    "CRED#",
    "SESSION#",
    "OTT#",
    "RESETREQ#",
    "LOGIN#",
    "LOGINADDR#",
    "WEBHOOKKEY",
    "BUCKET#",
    "EXPORT#",
    "WAIT#",
    "RULESGEN",
    "LIMITS",
];
/// Fields that hold secrets wherever they appear.
const SECRET_FIELDS: [&str; 7] = ["secret", "password", "password_hash", "hash", "key_hash", "token", "signing_key"];

fn scrub(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !SECRET_FIELDS.contains(&k.as_str()));
            map.values_mut().for_each(scrub);
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}

/// The archive file an item goes to, by its kind.
fn file_of(sk: &str) -> String {
    let mut parts = sk.split('#');
    let head = parts.next().unwrap_or("other").to_ascii_lowercase();
    match head.as_str() {
        "rec" => format!("records.{}.{}.jsonl", parts.next().unwrap_or(""), parts.next().unwrap_or("")),
        "tool" => format!("{}s.jsonl", parts.next().unwrap_or("tool")),
        "config" | "configv" => format!("{head}.jsonl"),
        other => format!("{other}.jsonl"),
    }
}

fn job_sk(id: &str) -> String {
    format!("{EXPORT_PREFIX}{id}")
}

/// Starts an export; the job runs as soon as its timer fires.
pub async fn request(store: &dyn Store, timers: &dyn Timers, actor: &Actor, tenant: &TenantId) -> AppResult<ExportJob> {
    let id = ulid::Ulid::generate().to_string().to_lowercase();
    let job = ExportJob {
        export_id: id.clone(),
        status: ExportStatus::Pending,
        requested_by: actor.id.clone(),
        created_at: crate::domain::time::now_rfc3339(),
        completed_at: None,
        files: BTreeMap::new(),
        size: None,
        error: None,
        file_key: format!("{tenant}/exports/{id}"),
    };
    store
        .transact(vec![
            Write::create(keys::tenant_pk(tenant), job_sk(&id), &job),
            audit::record(actor, Some(tenant), Change::new("tenant.export", format!("export:{id}"))),
        ])
        .await?;
    let timer = Timer::Export { tenant_id: tenant.to_string(), export_id: id };
    timers
        .set(crate::domain::time::unix_now() as i64, &timer)
        .await
        .map_err(|e| AppError::Unavailable(format!("the export could not be started: {e}")))?;
    Ok(job)
}

pub async fn get(store: &dyn Store, tenant: &TenantId, id: &str) -> AppResult<(ExportJob, u64)> {
    let item = store
        .get(&keys::tenant_pk(tenant), &job_sk(id))
        .await?
        .ok_or_else(|| AppError::NotFound(format!("export '{id}' does not exist")))?;
    let version = item.version;
    Ok((decode(item)?, version))
}

/// Runs a pending export: reads the tenant's items and audit trail, writes the archive,
/// records the outcome. Idempotent: a finished job is left as it is.
pub async fn run(store: &dyn Store, blobs: Option<&Arc<dyn Blobs>>, tenant: &TenantId, id: &str) -> AppResult<()> {
    let Ok((mut job, version)) = get(store, tenant, id).await else { return Ok(()) };
    if job.status != ExportStatus::Pending {
        return Ok(());
    }
    let outcome = match blobs {
        None => Err("no file storage is configured".to_string()),
        Some(blobs) => {
            archive(store, tenant).await.map_err(|e| e.to_string()).map(|(bytes, files)| (bytes, files, blobs))
        }
    };
    let outcome = match outcome {
        Ok((bytes, files, blobs)) => {
            let size = bytes.len() as u64;
            match blobs.put(&job.file_key, "application/zip", bytes).await {
                Ok(()) => Ok((files, size)),
                Err(e) => Err(e.to_string()),
            }
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok((files, size)) => {
            job.status = ExportStatus::Complete;
            job.files = files;
            job.size = Some(size);
        }
        Err(e) => {
            tracing::error!(tenant = %tenant, export = id, error = %e, "an export failed");
            job.status = ExportStatus::Failed;
            job.error = Some(e);
        }
    }
    job.completed_at = Some(crate::domain::time::now_rfc3339());
    let item =
        Item::new(keys::tenant_pk(tenant), job_sk(id), version + 1, serde_json::to_value(&job).expect("serializes"));
    store.put(item, Condition::Version(version)).await?;
    Ok(())
}

async fn archive(store: &dyn Store, tenant: &TenantId) -> AppResult<(Vec<u8>, BTreeMap<String, usize>)> {
    let mut by_file: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut add = |file: String, mut value: Value| {
        scrub(&mut value);
        let lines = by_file.entry(file.clone()).or_default();
        lines.extend(value.to_string().as_bytes());
        lines.push(b'\n');
        *counts.entry(file).or_default() += 1;
    };
    for item in store.query_all(&keys::tenant_pk(tenant), "").await? {
        if NEVER.iter().any(|p| item.sk.starts_with(p)) {
            continue;
        }
        add(file_of(&item.sk), item.data);
    }
    for item in store.query_all(&audit::audit_pk(Some(tenant)), "").await? {
        add("audit.jsonl".to_string(), item.data);
    }
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let broken = |e: &dyn std::fmt::Display| AppError::Internal(format!("the archive could not be written: {e}"));
    for (file, bytes) in &by_file {
        zip.start_file(file.as_str(), options).map_err(|e| broken(&e))?;
        zip.write_all(bytes).map_err(|e| broken(&e))?;
    }
    let bytes = zip.finish().map_err(|e| broken(&e))?.into_inner();
    Ok((bytes, counts))
}

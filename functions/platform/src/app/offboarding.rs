//! Offboarding: deleting everything a tenant owns, in resumable, idempotent chunks.
//!
//! A call deletes until its time budget is spent and says whether it finished; calling
//! again continues where it stopped (what is gone stays gone). The tenant's event sources
//! (and their account claims), its dead letters, its files (attachments, exports), every item of its partition (users,
//! records, rules, runs, settings, tools...) and its audit trail go; rules stop because
//! they are gone (timers that fire later find nothing). The platform's audit trail keeps
//! one entry for the offboarding.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::audit::{self, Actor, Change};
use super::dead_letters::DeadLetterFilter;
use super::error::{AppError, AppResult};
use super::keys;
use super::page::PageRequest;
use super::Services;
use crate::domain::ids::TenantId;
use crate::ports::store::{Condition, Query, Write};

/// How long one call deletes before it answers (and is called again).
pub const TIME_BUDGET: Duration = Duration::from_secs(20);
/// Keys deleted per transaction.
const CHUNK: usize = 100;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Offboarding {
    pub tenant_id: String,
    /// Items deleted by this call.
    pub deleted_items: usize,
    /// `false`: time ran out; call again to continue.
    pub complete: bool,
}

/// Deletes the tenant's data for at most `budget`. 404 for a tenant that has nothing.
pub async fn offboard<O: crate::ports::Outside>(
    services: &Services<O>,
    actor: &Actor,
    tenant: &TenantId,
    budget: Duration,
) -> AppResult<Offboarding> {
    let started = Instant::now();
    let store = services.store.as_ref();
    let pk = keys::tenant_pk(tenant);
    let audit_pk = audit::audit_pk(Some(tenant));
    let has_items = !store.query(Query { limit: 1, ..Query::new(&pk, "") }).await?.items.is_empty()
        || !store.query(Query { limit: 1, ..Query::new(&audit_pk, "") }).await?.items.is_empty();
    if !has_items {
        return Err(AppError::NotFound(format!("tenant '{tenant}' does not exist")));
    }
    let mut deleted = 0;
    for source in services.event_sources().list(tenant).await?.items {
        services.event_sources().remove(actor, tenant, &source.source_id).await?;
        deleted += 1;
    }
    let filter = DeadLetterFilter { tenant_id: Some(tenant.to_string()), source: None };
    loop {
        let letters = services.dead_letters().list(&filter, &PageRequest::first(100)).await?;
        if letters.items.is_empty() {
            break;
        }
        for letter in letters.items {
            services.dead_letters().discard(actor, &letter.dead_letter_id).await?;
            deleted += 1;
        }
    }
    // Files by what the store says the tenant has (no listing of the bucket).
    if let Some(blobs) = &services.blobs() {
        let mut kept = store.query_all(&pk, &keys::tool_prefix("attachment")).await?;
        kept.extend(store.query_all(&pk, super::exports::EXPORT_PREFIX).await?);
        for item in kept {
            if let Some(key) = item.data.get("file_key").and_then(|k| k.as_str()) {
                blobs.delete(key).await.map_err(|e| AppError::Unavailable(e.to_string()))?;
                deleted += 1;
            }
        }
    }
    for partition in [&pk, &audit_pk] {
        loop {
            if started.elapsed() > budget {
                return Ok(Offboarding { tenant_id: tenant.to_string(), deleted_items: deleted, complete: false });
            }
            let page = store.query(Query { limit: CHUNK, ..Query::new(partition, "") }).await?;
            if page.items.is_empty() {
                break;
            }
            let writes: Vec<Write> = page
                .items
                .iter()
                .map(|item| Write::Delete { pk: item.pk.clone(), sk: item.sk.clone(), condition: Condition::None })
                .collect();
            deleted += writes.len();
            store.transact(writes).await?;
        }
    }
    let entry = audit::record(
        actor,
        None,
        Change::new("tenant.offboard", format!("tenant:{tenant}")).after(serde_json::json!({"deleted_items": deleted})),
    );
    store.transact(vec![entry]).await?;
    Ok(Offboarding { tenant_id: tenant.to_string(), deleted_items: deleted, complete: true })
}

//! What uninstalling systems does to records: theirs are deleted, and the records of the
//! systems that stay follow the delete rules of their relations to them (restrict refuses
//! the uninstall before anything changes, cascade deletes, set null empties the field);
//! tool items about the deleted records are unlinked.
//!
//! Resumable: the systems stay installed until their records are gone, so an uninstall
//! that runs out of time (or is interrupted) continues when it is asked again.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::{concurrent, refused_by, RecordService, Referrer, CHUNK};
use crate::app::audit::Actor;
use crate::app::error::{AppError, AppResult};
use crate::app::keys;
use crate::domain::ids::{SystemId, TenantId};
use crate::domain::records::{OnDelete, Relation};
use crate::ports::store::{Condition, Write};

/// How far a purge got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purge {
    /// Records of the removed systems deleted by this call.
    pub deleted_records: usize,
    /// All of them are gone (else: ask again).
    pub complete: bool,
}

impl RecordService {
    /// The records of systems that stay (installed, not in `removed`) whose relations
    /// point into the removed systems.
    async fn referrers_into(&self, tenant: &TenantId, removed: &[SystemId]) -> AppResult<Vec<Referrer>> {
        let into_removed = |r: &Relation| removed.iter().any(|s| s.as_str() == r.system);
        self.referrers_by(tenant, |system| removed.contains(system), into_removed, |_| true).await
    }

    /// Deletes the records of `removed` (systems being uninstalled, still installed)
    /// for at most `budget`, after applying the delete rules of the relations that other
    /// systems' records have to them. 409 naming the referrers when a `restrict`
    /// relation refers to them, before anything changes.
    pub async fn purge_systems(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        removed: &[SystemId],
        budget: Duration,
    ) -> AppResult<Purge> {
        let started = Instant::now();
        let referrers = self.referrers_into(tenant, removed).await?;
        let restricted: Vec<&Referrer> = referrers.iter().filter(|r| r.on_delete == OnDelete::Restrict).collect();
        if !restricted.is_empty() {
            return Err(refused_by(&restricted, "of systems that stay refer to records it would delete"));
        }
        let set_null: Vec<Referrer> = referrers.iter().filter(|r| r.on_delete == OnDelete::SetNull).cloned().collect();
        self.null_fields(actor, tenant, &set_null).await?;
        let mut cascaded = HashSet::new();
        for r in referrers.iter().filter(|r| r.on_delete == OnDelete::Cascade) {
            if cascaded.insert((r.system.clone(), r.entity.clone(), r.record.record_id.clone())) {
                match self.delete(actor, tenant, &r.system, &r.entity, &r.record.record_id).await {
                    Ok(()) | Err(AppError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.unlink_tools_where(actor, tenant, |system, _, _| removed.iter().any(|s| s.as_str() == system)).await?;

        let pk = keys::tenant_pk(tenant);
        let mut deleted = 0;
        for system in removed {
            let items = self.store.query_all(&pk, &format!("REC#{system}#")).await?;
            for chunk in items.chunks(CHUNK) {
                if started.elapsed() > budget {
                    return Ok(Purge { deleted_records: deleted, complete: false });
                }
                let writes = chunk
                    .iter()
                    .map(|item| Write::Delete {
                        pk: pk.clone(),
                        sk: item.sk.clone(),
                        condition: Condition::Version(item.version),
                    })
                    .collect();
                self.store.transact(writes).await.map_err(concurrent)?;
                deleted += chunk.len();
            }
        }
        Ok(Purge { deleted_records: deleted, complete: true })
    }
}

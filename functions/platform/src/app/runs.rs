//! Run deadlines: a run never stays unfinished without a live message behind it.
//!
//! Every run with actions to do gets a deadline ([`RUN_DEADLINE_SECONDS`] after it was
//! queued, renewed when it is retried or replayed) and a marker item under one of
//! [`keys::SWEEP_SHARDS`] partitions, sorted by deadline. The sweeper (every minute on
//! the local server, on a schedule in the `dead-letters` function on AWS) reads the
//! markers that came due: an action still `pending`, `running` or `failed` in a run past
//! its deadline lost its message (a crash, a DLQ, a purge) and is marked `dead` with the
//! reason, so the run shows as failed and can be retried.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::engine::{execution_write, ActionStatus, Execution};
use super::error::{AppError, AppResult};
use super::keys;
use super::stored::{committed, decode_at, optimistic, Step};
use crate::domain::ids::TenantId;
use crate::domain::time::unix_now;
use crate::ports::queue::ActionMessage;
use crate::ports::store::{Condition, Item, Query, Store, Write};

/// How long a run's actions have to finish, from when they were queued: more than every
/// delivery the queue makes (5 receives of a 6 minute visibility timeout on AWS) and
/// the rate limiter's delays.
pub const RUN_DEADLINE_SECONDS: u64 = 3600;
/// Due markers one sweep looks at, at most (each costs a read and a write).
pub const SWEEP_BATCH: usize = 2000;
/// Due markers taken from one shard per round of a sweep.
const SWEEP_ROUND: usize = 25;

/// Gives `execution` a deadline from now and returns the writes of its marker: the new
/// one, and the removal of the marker of the deadline it replaces (if any).
pub fn with_deadline(tenant: &TenantId, execution: &mut Execution, now: u64) -> Vec<Write> {
    let deadline = now + RUN_DEADLINE_SECONDS;
    let replaced = execution.deadline.replace(deadline).filter(|old| *old != deadline);
    let item = Item::new(
        keys::sweep_pk(&execution.execution_id),
        keys::sweep_sk(deadline, tenant, &execution.execution_id),
        1,
        serde_json::Value::Null,
    )
    // Kept a while past the deadline, in case no sweep comes by.
    .expiring(deadline + 7 * 24 * 3600);
    let mut writes = vec![Write::Put { item, condition: Condition::None }];
    writes.extend(replaced.map(|old| marker_delete(tenant, &execution.execution_id, old)));
    writes
}

/// The writes of a run given a new deadline from now: the record (with its deadline) and
/// its markers, in that order of computation, so the record carries the new deadline.
pub fn renewed_run_writes(tenant: &TenantId, run: &mut Execution, version: u64, now: u64) -> Vec<Write> {
    let markers = with_deadline(tenant, run, now);
    let mut writes = vec![execution_write(tenant, run, version)];
    writes.extend(markers);
    writes
}

/// The removal of a run's marker for `deadline`.
fn marker_delete(tenant: &TenantId, execution_id: &str, deadline: u64) -> Write {
    Write::Delete {
        pk: keys::sweep_pk(execution_id),
        sk: keys::sweep_sk(deadline, tenant, execution_id),
        condition: Condition::None,
    }
}

/// The writes of a run's record after a change: the record and, once none of its actions
/// is left to finish, the removal of its deadline marker (and the deadline), in the same
/// transaction. The sweep then only ever reads the markers of runs that are stuck.
pub fn run_writes(tenant: &TenantId, run: &mut Execution, version: u64) -> Vec<Write> {
    let finished = !run.actions.iter().any(|a| a.status.unfinished());
    let marker = run.deadline.filter(|_| finished).map(|deadline| {
        run.deadline = None;
        marker_delete(tenant, &run.execution_id, deadline)
    });
    let mut writes = vec![execution_write(tenant, run, version)];
    writes.extend(marker);
    writes
}

#[derive(Clone)]
pub struct Runs {
    store: Arc<dyn Store>,
}

impl Runs {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    async fn load(&self, tenant: &TenantId, id: &str) -> AppResult<Option<(Execution, u64)>> {
        let Some(item) = self.store.get(&keys::tenant_pk(tenant), &keys::execution_sk(id)).await? else {
            return Ok(None);
        };
        Ok(Some((decode_at(&item.pk, &item.sk, item.data)?, item.version)))
    }

    /// Marks the message's action `dead` with `reason` (unless it is already done).
    pub async fn give_up(&self, message: &ActionMessage, reason: &str) -> AppResult<()> {
        let Ok(tenant) = TenantId::parse(&message.tenant_id) else { return Ok(()) };
        optimistic("the run is changing concurrently", || async {
            let Some((mut run, version)) = self.load(&tenant, &message.execution_id).await? else {
                return Ok(Step::Done(()));
            };
            let Some(slot) = run.actions.get_mut(message.action_index) else { return Ok(Step::Done(())) };
            if !slot.status.unfinished() {
                return Ok(Step::Done(()));
            }
            slot.status = ActionStatus::Dead;
            slot.error =
                Some(crate::domain::limits::clipped(reason.to_string(), crate::domain::limits::MAX_ERROR_CHARS));
            run.summarize();
            committed(self.store.transact(run_writes(&tenant, &mut run, version)).await)
        })
        .await
    }

    /// Sets the message's action back to `pending` (attempts from zero) with a new
    /// deadline, before it is queued again. A run that is gone (expired) is a 409.
    pub async fn reopen(&self, message: &ActionMessage) -> AppResult<()> {
        let tenant = TenantId::parse(&message.tenant_id).map_err(|e| AppError::Internal(e.to_string()))?;
        optimistic("the run is changing concurrently", || async {
            let Some((mut run, version)) = self.load(&tenant, &message.execution_id).await? else {
                return Err(AppError::conflict(format!(
                    "run {} no longer exists; the action cannot be replayed",
                    message.execution_id
                )));
            };
            let Some(slot) = run.actions.get_mut(message.action_index) else { return Ok(Step::Done(())) };
            if slot.status == ActionStatus::Succeeded {
                return Ok(Step::Done(()));
            }
            slot.status = ActionStatus::Pending;
            slot.attempts = 0;
            slot.error = None;
            run.summarize();
            committed(self.store.transact(renewed_run_writes(&tenant, &mut run, version, unix_now())).await)
        })
        .await
    }

    /// Marks the unfinished actions of runs past their deadline at `now` as `dead`;
    /// returns how many runs it changed. Looks at no more than [`SWEEP_BATCH`] due markers,
    /// so one sweep ends well within its function's time; the next sweep goes on.
    pub async fn sweep(&self, now: u64) -> AppResult<usize> {
        self.sweep_at_most(now, SWEEP_BATCH).await
    }

    /// [`Runs::sweep`] over at most `budget` due markers, taken from the shards in rounds
    /// of a few each, so a backlog in one shard cannot starve the others. The shards of a
    /// round are swept at once: a sweep takes a few rounds of store calls, not one call
    /// after another per shard (16 queries in a row were ~75 ms on an empty table).
    pub async fn sweep_at_most(&self, now: u64, budget: usize) -> AppResult<usize> {
        let left = AtomicUsize::new(budget);
        let mut changed = 0;
        // (shard, continue after this sort key) of the shards that may still hold due markers.
        let mut open: Vec<(u32, Option<String>)> = (0..keys::SWEEP_SHARDS).map(|s| (s, None)).collect();
        while !open.is_empty() && left.load(Ordering::Relaxed) > 0 {
            let rounds = open.into_iter().map(|(shard, after)| self.sweep_round(shard, after, now, &left));
            let mut still = Vec::new();
            for round in futures_util::future::join_all(rounds).await {
                let (round_changed, next) = round?;
                changed += round_changed;
                still.extend(next);
            }
            open = still;
        }
        Ok(changed)
    }

    /// One round over one shard: its next due markers expired, each taken from the
    /// sweep's budget `left`; returns how many runs changed and where the shard goes on,
    /// if it may still hold due markers.
    async fn sweep_round(
        &self,
        shard: u32,
        after: Option<String>,
        now: u64,
        left: &AtomicUsize,
    ) -> AppResult<(usize, Option<(u32, Option<String>)>)> {
        let limit = left.load(Ordering::Relaxed).min(SWEEP_ROUND);
        if limit == 0 {
            return Ok((0, None));
        }
        let pk = keys::sweep_shard_pk(shard);
        let page = self.store.query(Query { limit, after: after.as_deref(), ..Query::new(&pk, "") }).await?;
        let mut changed = 0;
        for marker in &page.items {
            let Some((deadline, tenant, execution_id)) = keys::parse_sweep_sk(&marker.sk) else { continue };
            if deadline > now {
                return Ok((changed, None));
            }
            if left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_err() {
                return Ok((changed, None));
            }
            if self.expire(tenant, execution_id, deadline, now, marker).await? {
                changed += 1;
            }
        }
        Ok((changed, page.next.map(|next| (shard, Some(next)))))
    }

    /// One due marker: marks the run's unfinished actions dead if its deadline passed,
    /// and removes the marker in the same transaction.
    async fn expire(&self, tenant: &str, id: &str, deadline: u64, now: u64, marker: &Item) -> AppResult<bool> {
        let remove = Write::Delete { pk: marker.pk.clone(), sk: marker.sk.clone(), condition: Condition::None };
        let Ok(tenant) = TenantId::parse(tenant) else {
            self.store.transact(vec![remove]).await?;
            return Ok(false);
        };
        optimistic("the run is changing concurrently", || async {
            let run = self.load(&tenant, id).await?;
            // Gone, finished, or given a later deadline (retried): the marker is stale.
            let Some((mut run, version)) = run.filter(|(run, _)| {
                run.deadline.is_some_and(|d| d <= now) && run.actions.iter().any(|a| a.status.unfinished())
            }) else {
                return committed(self.store.transact(vec![remove.clone()]).await).map(|s| s.map(|()| false));
            };
            for slot in run.actions.iter_mut().filter(|a| a.status.unfinished()) {
                slot.status = ActionStatus::Dead;
                slot.error = Some(format!(
                    "no delivery finished it before the run's deadline ({deadline}, epoch seconds): its message was \
                     lost or given up; retry the run to run it again"
                ));
            }
            run.summarize();
            // Nothing is left to finish: no deadline, and no marker (the one swept, and the
            // current one if the swept marker was an older deadline's).
            let current = run.deadline.take().filter(|d| *d != deadline);
            let mut writes = vec![execution_write(&tenant, &run, version), remove.clone()];
            writes.extend(current.map(|d| marker_delete(&tenant, id, d)));
            committed(self.store.transact(writes).await).map(|s| s.map(|()| true))
        })
        .await
    }
}

//! Delayed actions: a run's action that waits (`status: waiting`, `due_at`) has a timer
//! and, when the event came from a record, a `WAIT#` item under that record so deleting
//! the record cancels it. When its timer fires the evaluator re-checks it (the record
//! still exists; the rule's conditions still hold on the record as it is now; a delay
//! until a date field follows the field if it moved) and queues it, or marks it
//! `skipped` / `cancelled`. Every step is conditional on the run's version, so a timer
//! that fires twice queues the action once, and the executor performs it once.

use serde_json::{json, Map, Value};

use crate::app::error::AppResult;
use crate::app::keys;
use crate::app::stored::{decode_at, optimistic, Step};
use crate::domain::events::singular;
use crate::domain::ids::{SystemId, TenantId};
use crate::domain::records::Record;
use crate::domain::timing::{epoch_of, rfc3339_of};
use crate::ports::store::{Condition, Store, StoreError, Write};
use crate::ports::timers::Timer;

use super::*;

/// The record an event is about: (system, entity, record id), from the trigger's
/// `system/entity` and the event's `<entity>_id`.
pub(super) fn record_of(entity: Option<&str>, event: &BusinessEvent) -> Option<(String, String, String)> {
    let (system, entity) = entity?.split_once('/')?;
    let id = event.data.get(&format!("{}_id", singular(entity)))?.as_str()?;
    Some((system.to_string(), entity.to_string(), id.to_string()))
}

/// The `WAIT#` items of a run's waiting actions.
pub(super) fn wait_writes(
    tenant: &TenantId,
    execution: &Execution,
    record: Option<&(String, String, String)>,
) -> Vec<Write> {
    let Some((system, entity, id)) = record else { return Vec::new() };
    execution
        .actions
        .iter()
        .filter(|a| a.status == ActionStatus::Waiting)
        .map(|a| {
            let sk = keys::wait_sk(system, entity, id, &execution.execution_id, a.index);
            Write::Put {
                item: crate::ports::store::Item::new(
                    keys::tenant_pk(tenant),
                    sk,
                    1,
                    json!({"execution_id": execution.execution_id, "action_index": a.index}),
                )
                .expiring(run_expiry()),
                condition: Condition::None,
            }
        })
        .collect()
}

/// The timers of a run's waiting actions: (when, timer).
pub(super) fn timers_of(execution: &Execution) -> Vec<(i64, Timer)> {
    execution
        .actions
        .iter()
        .filter(|a| a.status == ActionStatus::Waiting)
        .filter_map(|a| {
            let at = epoch_of(a.due_at.as_deref()?)?;
            Some((at, action_timer(execution, a.index)))
        })
        .collect()
}

fn action_timer(execution: &Execution, index: usize) -> Timer {
    Timer::Action {
        tenant_id: execution.event.tenant_id.clone(),
        execution_id: execution.execution_id.clone(),
        action_index: index,
    }
}

fn wait_delete(tenant: &TenantId, execution: &Execution, index: usize) -> Option<Write> {
    let (system, entity, id) = record_of(execution.entity.as_deref(), &execution.event)?;
    Some(Write::Delete {
        pk: keys::tenant_pk(tenant),
        sk: keys::wait_sk(&system, &entity, &id, &execution.execution_id, index),
        condition: Condition::None,
    })
}

/// Cancels the waiting actions of a deleted record (their timers then find nothing to do).
pub async fn cancel_record_waits(
    store: &dyn Store,
    tenant: &TenantId,
    system: &str,
    entity: &str,
    record_id: &str,
) -> AppResult<usize> {
    let pk = keys::tenant_pk(tenant);
    let waits = store.query_all(&pk, &keys::record_waits_prefix(system, entity, record_id)).await?;
    for wait in &waits {
        let (Some(execution_id), Some(index)) =
            (wait.data["execution_id"].as_str(), wait.data["action_index"].as_u64().map(|i| i as usize))
        else {
            continue;
        };
        optimistic("the run is changing concurrently", || async {
            let Some(item) = store.get(&pk, &keys::execution_sk(execution_id)).await? else {
                return Ok(Step::Done(()));
            };
            let version = item.version;
            let mut execution: Execution = decode_at(&item.pk, &item.sk, item.data)?;
            let mut writes = vec![Write::Delete { pk: pk.clone(), sk: wait.sk.clone(), condition: Condition::None }];
            if let Some(slot) = execution.actions.get_mut(index).filter(|s| s.status == ActionStatus::Waiting) {
                slot.status = ActionStatus::Cancelled;
                slot.error = Some("its record was deleted while it waited".to_string());
                execution.summarize();
                writes.splice(0..0, crate::app::runs::run_writes(tenant, &mut execution, version));
            }
            match store.transact(writes).await {
                Ok(()) => Ok(Step::Done(())),
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Ok(Step::Retry),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
    }
    Ok(waits.len())
}

/// What a due action comes to when its timer fires.
enum Verdict {
    Run(Map<String, Value>),
    Later(i64),
    Skip(String),
    Cancel,
}

impl Evaluator {
    /// Handles a fired timer. Idempotent; `Err` to be fired again later. `blobs` is where
    /// export archives go (given by the caller, so that a function evaluating events but
    /// firing no timers links no file storage).
    pub async fn fire(&self, timer: &Timer, blobs: Option<&Arc<dyn crate::ports::blobs::Blobs>>) -> AppResult<()> {
        match timer {
            Timer::Action { tenant_id, execution_id, action_index } => {
                let Ok(tenant) = TenantId::parse(tenant_id) else { return Ok(()) };
                self.fire_action(&tenant, execution_id, *action_index).await
            }
            Timer::Schedule { tenant_id, rule_id, version, at } => {
                let Ok(tenant) = TenantId::parse(tenant_id) else { return Ok(()) };
                self.fire_schedule(&tenant, rule_id, *version, *at).await
            }
            Timer::TaskDue { tenant_id, task_id, due } => {
                let Ok(tenant) = TenantId::parse(tenant_id) else { return Ok(()) };
                self.fire_task_due(&tenant, task_id, *due).await
            }
            Timer::Export { tenant_id, export_id } => {
                let Ok(tenant) = TenantId::parse(tenant_id) else { return Ok(()) };
                crate::app::exports::run(self.store.as_ref(), blobs, &tenant, export_id).await
            }
        }
    }

    /// A task's due time came: a `task_overdue` event of the `tools` module, unless the
    /// task is gone, closed, or due at another time now (its own timer took over).
    async fn fire_task_due(&self, tenant: &TenantId, task_id: &str, due: i64) -> AppResult<()> {
        let Some(item) = self.store.get(&keys::tenant_pk(tenant), &keys::task_sk(task_id)).await? else {
            return Ok(());
        };
        let data = match item.data {
            Value::Object(map) => map,
            _ => return Ok(()),
        };
        let task: crate::app::engine::Task = decode_at(&item.pk, &item.sk, Value::Object(data.clone()))?;
        let still_due = task.due_date.as_deref().and_then(crate::domain::tools::due_epoch) == Some(due);
        if task.status.is_closed() || !still_due {
            return Ok(());
        }
        let event = BusinessEvent {
            event_id: crate::domain::events::derived_id(&[tenant.as_str(), task_id, "task_overdue", &due.to_string()]),
            tenant_id: tenant.to_string(),
            module_type: crate::domain::tools::TOOLS_MODULE.to_string(),
            trigger_id: "task_overdue".to_string(),
            occurred_at: rfc3339_of(due),
            data,
            changes: Map::new(),
            causation: task.causation.unwrap_or_default(),
            native: None,
        };
        self.evaluate(&event).await.map(|_| ())
    }

    async fn fire_action(&self, tenant: &TenantId, execution_id: &str, index: usize) -> AppResult<()> {
        let pk = keys::tenant_pk(tenant);
        let queued = optimistic("the run is changing concurrently", || async {
            let Some(item) = self.store.get(&pk, &keys::execution_sk(execution_id)).await? else {
                return Ok(Step::Done(None));
            };
            let version = item.version;
            let mut execution: Execution = decode_at(&item.pk, &item.sk, item.data)?;
            let Some(slot) = execution.actions.get(index) else { return Ok(Step::Done(None)) };
            match slot.status {
                ActionStatus::Waiting => {}
                // Queued before, and perhaps lost with a crash: queue again (the executor is idempotent).
                ActionStatus::Pending => return Ok(Step::Done(execution.messages(|a| a.index == index).pop())),
                _ => return Ok(Step::Done(None)),
            }
            let verdict = self.verdict(tenant, &execution, index).await?;
            let slot = &mut execution.actions[index];
            let mut writes = Vec::new();
            let mut data = None;
            let mut later = None;
            match verdict {
                Verdict::Run(current) => {
                    slot.status = ActionStatus::Pending;
                    data = Some(current);
                }
                Verdict::Later(at) => {
                    slot.due_at = Some(rfc3339_of(at));
                    later = Some(at);
                }
                Verdict::Skip(why) => {
                    slot.status = ActionStatus::Skipped;
                    slot.error = Some(why);
                }
                Verdict::Cancel => {
                    slot.status = ActionStatus::Cancelled;
                    slot.error = Some("its record was deleted while it waited".to_string());
                }
            }
            execution.summarize();
            if data.is_some() {
                writes.extend(crate::app::runs::with_deadline(tenant, &mut execution, crate::domain::time::unix_now()));
            }
            if later.is_none() {
                writes.extend(wait_delete(tenant, &execution, index));
            }
            writes.splice(0..0, crate::app::runs::run_writes(tenant, &mut execution, version));
            match self.store.transact(writes).await {
                Ok(()) => {}
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => return Ok(Step::Retry),
                Err(e) => return Err(e.into()),
            }
            if let Some(at) = later {
                self.timers.set(at, &action_timer(&execution, index)).await.map_err(delivery)?;
                return Ok(Step::Done(None));
            }
            // Skipped or cancelled: nothing to queue.
            let Some(current) = data else { return Ok(Step::Done(None)) };
            let message = execution.messages(|a| a.index == index).pop().map(|mut m| {
                if execution.rule.actions[index].recheck {
                    m.event.data = current;
                }
                m
            });
            Ok(Step::Done(message))
        })
        .await?;
        if let Some(message) = queued {
            self.queue.enqueue(vec![message]).await.map_err(delivery)?;
        }
        Ok(())
    }

    /// Whether a due action runs: its record still exists and, when asked, the rule's
    /// conditions hold on the record as it is now.
    async fn verdict(&self, tenant: &TenantId, execution: &Execution, index: usize) -> AppResult<Verdict> {
        let step = &execution.rule.actions[index];
        // A timer that fires early (clock skew, a stale copy) waits again.
        let due = execution.actions[index].due_at.as_deref().and_then(epoch_of);
        if let Some(at) = due.filter(|at| *at > crate::domain::time::unix_now() as i64) {
            return Ok(Verdict::Later(at));
        }
        let mut data = execution.event.data.clone();
        if let Some((system, entity, id)) = record_of(execution.entity.as_deref(), &execution.event) {
            let Ok(system_id) = SystemId::parse(&system) else { return Ok(Verdict::Cancel) };
            let Some(item) =
                self.store.get(&keys::tenant_pk(tenant), &keys::record_sk(&system_id, &entity, &id)).await?
            else {
                return Ok(Verdict::Cancel);
            };
            if !step.recheck {
                return Ok(Verdict::Run(data));
            }
            let record: Record = decode_at(&item.pk, &item.sk, item.data)?;
            let one = singular(&entity);
            for (field, value) in record.data {
                data.insert(field, value);
            }
            data.insert(format!("{one}_id"), Value::String(id));
            if let Some(name) = data.get("name").cloned() {
                data.insert(format!("{one}_name"), name);
            }
        }
        if !step.recheck {
            return Ok(Verdict::Run(data));
        }
        if let Some(delay @ crate::domain::timing::Delay::Until { .. }) = &step.delay {
            match delay.due(0, &data) {
                Err(why) => return Ok(Verdict::Skip(why)),
                Ok(at) if at > crate::domain::time::unix_now() as i64 + 1 => return Ok(Verdict::Later(at)),
                Ok(_) => {}
            }
        }
        let fields = match SystemId::parse(&execution.rule.module_type) {
            Ok(system) => self
                .manifests
                .installed(tenant, &system)
                .await?
                .and_then(|v| {
                    let trigger = v.triggers.iter().find(|t| t.id == execution.rule.trigger_id)?;
                    Some(crate::domain::events::trigger_fields(&v, trigger).fields)
                })
                .unwrap_or_default(),
            Err(_) => Default::default(),
        };
        let now = BusinessEvent { data: data.clone(), ..execution.event.clone() };
        let held = crate::domain::matcher::evaluate(&execution.rule, &fields, &now);
        if held.iter().all(|h| *h) {
            Ok(Verdict::Run(data))
        } else {
            Ok(Verdict::Skip("the rule's conditions no longer held when its delay ended".to_string()))
        }
    }

    /// Runs a scheduled rule for its firing at `at` (once: the event id is derived from
    /// it), then sets its next timer. Missed firings (the local server was down) are not
    /// made up: the next one is the first after now.
    async fn fire_schedule(&self, tenant: &TenantId, rule_id: &str, version: u64, at: i64) -> AppResult<()> {
        let Some(item) = self.store.get(&keys::tenant_pk(tenant), &keys::rule_sk(rule_id)).await? else {
            return Ok(());
        };
        let rule: crate::domain::rules::Rule = decode_at(&item.pk, &item.sk, item.data)?;
        let Some(schedule) = rule.schedule.as_ref().filter(|_| rule.is_active && rule.version == version) else {
            return Ok(()); // deactivated, deleted or changed since: its own timer took over
        };
        let scheduled_time = rfc3339_of(at);
        let mut data = Map::new();
        data.insert("scheduled_time".into(), Value::String(scheduled_time.clone()));
        data.insert("rule_id".into(), Value::String(rule_id.to_string()));
        let event = BusinessEvent {
            event_id: crate::domain::events::derived_id(&[
                tenant.as_str(),
                rule_id,
                &version.to_string(),
                &at.to_string(),
            ]),
            tenant_id: tenant.to_string(),
            module_type: crate::domain::rules::SCHEDULE_MODULE.to_string(),
            trigger_id: crate::domain::rules::SCHEDULED_TRIGGER.to_string(),
            occurred_at: scheduled_time,
            data,
            changes: Map::new(),
            causation: Default::default(),
            native: None,
        };
        self.evaluate(&event).await?;
        let now = crate::domain::time::unix_now() as i64;
        if let Some(next) = schedule.next_after(at.max(now), at) {
            let timer =
                Timer::Schedule { tenant_id: tenant.to_string(), rule_id: rule_id.to_string(), version, at: next };
            self.timers.set(next, &timer).await.map_err(delivery)?;
        }
        Ok(())
    }
}

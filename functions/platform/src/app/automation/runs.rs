//! Runs: list, get, retry; events from outside.

use serde_json::{json, Map};

use crate::app::audit::{Actor, Change};
use crate::app::engine::{ActionStatus, Execution, RunStatus};
use crate::app::error::{AppError, AppResult};
use crate::app::keys;
use crate::app::page::{get_typed, scan_filtered, Listed, PageRequest};
use crate::app::stored::decode_at;
use crate::domain::events::{BusinessEvent, Causation};
use crate::domain::ids::TenantId;
use crate::domain::invalid::{FieldIssue, Invalid};
use crate::domain::time::now_rfc3339;
use crate::ports::store::Query;

use super::*;

impl AutomationService {
    pub async fn execution(&self, tenant: &TenantId, id: &str) -> AppResult<(Execution, u64)> {
        get_typed(self.store.as_ref(), &keys::tenant_pk(tenant), &keys::execution_sk(id), || {
            AppError::NotFound(format!("execution '{id}' does not exist"))
        })
        .await
    }

    /// Newest first, optionally one rule's and/or one status.
    pub async fn executions(
        &self,
        tenant: &TenantId,
        rule_id: Option<&str>,
        status: Option<RunStatus>,
        page: &PageRequest,
    ) -> AppResult<Listed<Execution>> {
        let pk = keys::tenant_pk(tenant);
        let query = Query { descending: true, ..Query::new(&pk, keys::EXECUTION_PREFIX) };
        scan_filtered(self.store.as_ref(), query, page, |item| {
            let execution: Execution = decode_at(&item.pk, &item.sk, item.data)?;
            let wanted = rule_id.is_none_or(|r| execution.rule_id == r) && status.is_none_or(|s| execution.status == s);
            Ok(Some(execution).filter(|_| wanted))
        })
        .await
    }

    /// Replays the failed (or dead) actions of an execution.
    pub async fn retry(&self, actor: &Actor, tenant: &TenantId, id: &str) -> AppResult<Execution> {
        let (mut execution, version) = self.execution(tenant, id).await?;
        let retried: Vec<usize> = execution.actions.iter().filter(|a| a.status.retryable()).map(|a| a.index).collect();
        if retried.is_empty() {
            return Err(AppError::conflict_with(
                "nothing to retry: no action of this execution failed",
                "status",
                json!(execution.status),
            ));
        }
        for index in &retried {
            let slot = &mut execution.actions[*index];
            slot.status = ActionStatus::Pending;
            slot.attempts = 0;
        }
        execution.status = RunStatus::Pending;
        execution.updated_at = now_rfc3339();
        let now = crate::domain::time::unix_now();
        let mut writes = crate::app::runs::renewed_run_writes(tenant, &mut execution, version, now);
        writes.push(crate::app::audit::record(
            actor,
            Some(tenant),
            Change::new("automation.execution.retry", format!("execution:{id}")).after(json!({"actions": retried})),
        ));
        self.store.transact(writes).await?;
        let messages = execution.messages(|a| retried.contains(&a.index));
        self.queue.enqueue(messages).await.map_err(|e| AppError::Unavailable(e.to_string()))?;
        Ok(execution)
    }

    /// An event from outside enters the same path as derived ones.
    pub async fn publish(&self, tenant: &TenantId, incoming: IncomingEvent) -> AppResult<BusinessEvent> {
        crate::domain::limits::check_size("data", &incoming.data, crate::domain::limits::MAX_EVENT_DATA_BYTES)?;
        let trigger = self.trigger(tenant, &incoming.module_type, &incoming.trigger_id).await?;
        let unknown: Vec<FieldIssue> = incoming
            .data
            .keys()
            .filter(|k| !trigger.fields.contains(*k))
            .map(|k| FieldIssue::new(format!("data.{k}"), format!("the trigger does not carry '{k}'")))
            .collect();
        if !unknown.is_empty() {
            return Err(Invalid(unknown).into());
        }
        let event = BusinessEvent {
            event_id: incoming.event_id.unwrap_or_else(|| ulid::Ulid::generate().to_string().to_lowercase()),
            tenant_id: tenant.to_string(),
            module_type: incoming.module_type,
            trigger_id: incoming.trigger_id,
            occurred_at: incoming.occurred_at.unwrap_or_else(now_rfc3339),
            data: incoming.data,
            changes: Map::new(),
            causation: Causation::default(),
            native: None,
        };
        self.bus.publish(vec![event.clone()]).await.map_err(|e| AppError::Unavailable(e.to_string()))?;
        Ok(event)
    }
}

//! What actions produce: notifications; and tasks, made by actions or by hand.

use crate::app::audit::{Actor, Change};
use crate::app::engine::{Notification, Task};
use crate::app::error::{AppError, AppResult};
use crate::app::keys;
use crate::app::page::{page_of, Listed, PageRequest};
use crate::app::stored::decode_at;
use crate::domain::ids::TenantId;
use crate::domain::invalid::{FieldIssue, Invalid};
use crate::domain::time::now_rfc3339;
use crate::ports::store::Write;

use super::*;

impl AutomationService {
    pub async fn notifications(&self, tenant: &TenantId, page: &PageRequest) -> AppResult<Listed<Notification>> {
        let pk = keys::tenant_pk(tenant);
        page_of(self.store.as_ref(), &pk, keys::NOTIFICATION_PREFIX, page, true).await
    }

    pub async fn tasks(&self, tenant: &TenantId, page: &PageRequest) -> AppResult<Listed<Task>> {
        let pk = keys::tenant_pk(tenant);
        page_of(self.store.as_ref(), &pk, keys::TASK_PREFIX, page, false).await
    }

    fn check_task(input: &TaskInput, creating: bool) -> Result<(), Invalid> {
        let mut issues = Vec::new();
        match &input.title {
            Some(t) if t.trim().is_empty() || t.chars().count() > 300 => {
                issues.push(FieldIssue::new("title", "must be 1 to 300 characters"))
            }
            None if creating => issues.push(FieldIssue::new("title", "is required")),
            _ => {}
        }
        if input.status.as_deref().is_some_and(|s| !TASK_STATUSES.contains(&s)) {
            issues.push(FieldIssue::new("status", format!("must be one of {}", TASK_STATUSES.join(", "))));
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(Invalid(issues))
        }
    }

    pub async fn create_task(&self, actor: &Actor, tenant: &TenantId, input: TaskInput) -> AppResult<Task> {
        Self::check_task(&input, true)?;
        let now = now_rfc3339();
        let task = Task {
            task_id: ulid::Ulid::generate().to_string().to_lowercase(),
            title: input.title.unwrap_or_default(),
            description: input.description.unwrap_or_default(),
            due_date: input.due_date,
            assignee: input.assignee,
            status: input.status.unwrap_or_else(|| "open".to_string()),
            priority: input.priority.unwrap_or_else(|| "normal".to_string()),
            rule_id: None,
            created_at: now.clone(),
            updated_at: now,
        };
        let writes = vec![
            Write::create(keys::tenant_pk(tenant), keys::task_sk(&task.task_id), &task),
            crate::app::audit::record(
                actor,
                Some(tenant),
                Change::new("task.create", format!("task:{}", task.task_id)).after(&task),
            ),
        ];
        self.store.transact(writes).await?;
        Ok(task)
    }

    pub async fn update_task(&self, actor: &Actor, tenant: &TenantId, id: &str, input: TaskInput) -> AppResult<Task> {
        Self::check_task(&input, false)?;
        let item = self
            .store
            .get(&keys::tenant_pk(tenant), &keys::task_sk(id))
            .await?
            .ok_or_else(|| AppError::NotFound(format!("task '{id}' does not exist")))?;
        let version = item.version;
        let before: Task = decode_at(&item.pk, &item.sk, item.data)?;
        let mut task = before.clone();
        if let Some(v) = input.title {
            task.title = v;
        }
        if let Some(v) = input.description {
            task.description = v;
        }
        if input.due_date.is_some() {
            task.due_date = input.due_date;
        }
        if input.assignee.is_some() {
            task.assignee = input.assignee;
        }
        if let Some(v) = input.status {
            task.status = v;
        }
        if let Some(v) = input.priority {
            task.priority = v;
        }
        task.updated_at = now_rfc3339();
        let writes = vec![
            Write::replace(keys::tenant_pk(tenant), keys::task_sk(id), version, &task),
            crate::app::audit::record(
                actor,
                Some(tenant),
                Change::new("task.update", format!("task:{id}")).before(&before).after(&task),
            ),
        ];
        self.store.transact(writes).await?;
        Ok(task)
    }
}

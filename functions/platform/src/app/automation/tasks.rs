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
use crate::domain::tools::{check_text, due_epoch, TaskStatus, MAX_TEXT_CHARS, MAX_TITLE_CHARS};
use crate::ports::store::Write;
use crate::ports::timers::Timer;

use super::*;

impl AutomationService {
    pub async fn notifications(&self, tenant: &TenantId, page: &PageRequest) -> AppResult<Listed<Notification>> {
        let pk = keys::tenant_pk(tenant);
        page_of(self.store.as_ref(), &pk, keys::NOTIFICATION_PREFIX, page, true).await
    }

    /// Tasks, newest first, filtered by status, assignee, overdue, subject and creator.
    pub async fn tasks(&self, tenant: &TenantId, filter: &TaskFilter, page: &PageRequest) -> AppResult<Listed<Task>> {
        let pk = keys::tenant_pk(tenant);
        let now = crate::domain::time::unix_now() as i64;
        let query =
            crate::ports::store::Query { descending: true, ..crate::ports::store::Query::new(&pk, keys::TASK_PREFIX) };
        crate::app::page::scan_filtered(self.store.as_ref(), query, page, |item| {
            let task: Task = crate::app::stored::decode(item)?;
            Ok(filter.matches(&task, now).then_some(task))
        })
        .await
    }

    fn check_task(task: &Task) -> Result<(), Invalid> {
        let mut issues = Vec::new();
        check_text("title", Some(&task.title), true, MAX_TITLE_CHARS, &mut issues);
        check_text("description", Some(&task.description), false, MAX_TEXT_CHARS, &mut issues);
        if task.due_date.as_deref().is_some_and(|d| due_epoch(d).is_none()) {
            issues.push(FieldIssue::new("due_date", "must be an RFC 3339 time or a date (YYYY-MM-DD)"));
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(Invalid(issues))
        }
    }

    /// The assignee and the subject must be the tenant's.
    async fn check_links(&self, tenant: &TenantId, task: &Task) -> AppResult<()> {
        let tools = crate::app::tools::ToolService::new(self.store.clone());
        if let Some(assignee) = &task.assignee {
            tools.check_user(tenant, assignee, "assignee").await?;
        }
        tools.check_subject(tenant, task.subject.as_ref()).await
    }

    /// Sets the timer that fires `task_overdue` at the task's due time (while it is open).
    async fn arm_due(&self, tenant: &TenantId, task: &Task) -> AppResult<()> {
        let Some(due) = task.due_date.as_deref().and_then(due_epoch) else { return Ok(()) };
        if task.status.is_closed() {
            return Ok(());
        }
        let timer = Timer::TaskDue { tenant_id: tenant.to_string(), task_id: task.task_id.clone(), due };
        self.timers.set(due, &timer).await.map_err(|e| AppError::Unavailable(format!("delivery failed: {e}")))
    }

    pub async fn create_task(
        &self,
        actor: &Actor,
        creator: Option<&str>,
        tenant: &TenantId,
        input: TaskInput,
    ) -> AppResult<Task> {
        let now = now_rfc3339();
        let task = Task {
            task_id: ulid::Ulid::generate().to_string().to_lowercase(),
            title: input.title.unwrap_or_default(),
            description: input.description.unwrap_or_default(),
            due_date: input.due_date,
            assignee: input.assignee,
            status: input.status.unwrap_or_default(),
            priority: input.priority.unwrap_or_default(),
            rule_id: None,
            subject: input.subject,
            created_by: creator.map(str::to_string),
            causation: None,
            created_at: now.clone(),
            updated_at: now,
        };
        Self::check_task(&task)?;
        self.check_links(tenant, &task).await?;
        let writes = vec![
            Write::create(keys::tenant_pk(tenant), keys::task_sk(&task.task_id), &task),
            crate::app::audit::record(
                actor,
                Some(tenant),
                Change::new("task.create", format!("task:{}", task.task_id)).after(&task),
            ),
        ];
        self.store.transact(writes).await?;
        self.arm_due(tenant, &task).await?;
        Ok(task)
    }

    pub async fn task(&self, tenant: &TenantId, id: &str) -> AppResult<(Task, u64)> {
        let item = self
            .store
            .get(&keys::tenant_pk(tenant), &keys::task_sk(id))
            .await?
            .ok_or_else(|| AppError::NotFound(format!("task '{id}' does not exist")))?;
        let version = item.version;
        Ok((decode_at(&item.pk, &item.sk, item.data)?, version))
    }

    pub async fn update_task(&self, actor: &Actor, tenant: &TenantId, id: &str, input: TaskInput) -> AppResult<Task> {
        let (before, version) = self.task(tenant, id).await?;
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
        if let Some(next) = input.status {
            if !task.status.may_become(next) {
                return Err(Invalid::one(
                    "status",
                    format!("a {:?} task cannot become {:?}; reopen it (todo) first", task.status, next).to_lowercase(),
                )
                .into());
            }
            task.status = next;
        }
        if let Some(v) = input.priority {
            task.priority = v;
        }
        if input.subject.is_some() {
            task.subject = input.subject;
        }
        Self::check_task(&task)?;
        self.check_links(tenant, &task).await?;
        task.updated_at = now_rfc3339();
        let writes = vec![
            Write::replace(keys::tenant_pk(tenant), keys::task_sk(id), version, &task),
            crate::app::audit::record(
                actor,
                Some(tenant),
                Change::new("task.update", format!("task:{id}")).before(&before).after(&task),
            ),
        ];
        self.store.transact(writes).await.map_err(|e| match e {
            crate::ports::store::StoreError::ConditionFailed { .. } => {
                AppError::conflict(format!("task '{id}' was changed concurrently; read it again"))
            }
            other => other.into(),
        })?;
        if task.due_date != before.due_date || task.status != before.status {
            self.arm_due(tenant, &task).await?;
        }
        Ok(task)
    }

    pub async fn delete_task(&self, actor: &Actor, tenant: &TenantId, id: &str) -> AppResult<()> {
        let (before, version) = self.task(tenant, id).await?;
        let writes = vec![
            Write::Delete {
                pk: keys::tenant_pk(tenant),
                sk: keys::task_sk(id),
                condition: crate::ports::store::Condition::Version(version),
            },
            crate::app::audit::record(
                actor,
                Some(tenant),
                Change::new("task.delete", format!("task:{id}")).before(&before),
            ),
        ];
        self.store.transact(writes).await?;
        Ok(())
    }
}

/// Filters of `GET /api/v1/tools/tasks`.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub assignee: Option<String>,
    /// Due before now and neither done nor cancelled.
    pub overdue: bool,
    pub tools: crate::app::tools::ToolFilter,
}

impl TaskFilter {
    fn matches(&self, task: &Task, now: i64) -> bool {
        let common = crate::domain::tools::Common {
            id: task.task_id.clone(),
            subject: task.subject.clone(),
            owner: task.created_by.clone(),
            created_at: task.created_at.clone(),
            updated_at: task.updated_at.clone(),
            causation: None,
        };
        self.status.is_none_or(|s| task.status == s)
            && self.assignee.as_ref().is_none_or(|a| task.assignee.as_ref() == Some(a))
            && (!self.overdue
                || (!task.status.is_closed() && task.due_date.as_deref().and_then(due_epoch).is_some_and(|d| d < now)))
            && self.tools.matches(&common)
    }
}

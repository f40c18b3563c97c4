//! The automation API: triggers, rules, rule tests, executions and retries,
//! events from outside, and what actions produce (notifications, tasks).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::audit::{self, Actor, Change};
use super::catalog::CatalogService;
use super::engine::{Execution, Manifests, Notification, Task};
use super::error::{AppError, AppResult};
use super::keys;
use super::page::{get_typed, page_of, scan_filtered, Listed, PageRequest};
use super::stored::decode_at;
use crate::domain::events::trigger_fields;
use crate::domain::events::{BusinessEvent, Causation};
use crate::domain::ids::{SystemId, TenantId};
use crate::domain::invalid::{FieldIssue, Invalid};
use crate::domain::matcher::evaluate;
use crate::domain::rules::{check_rule, render_value, Checked, Rule, RuleInput, TriggerFields};
use crate::domain::time::now_rfc3339;
use crate::domain::webhook::{mask_parameters, WebhookPolicy};
use crate::ports::queue::{ActionQueue, EventBus};
use crate::ports::store::{Condition, Item, Query, Store, StoreError, Write};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TriggerInfo {
    pub module_type: String,
    pub trigger_id: String,
    pub name: String,
    pub description: String,
    pub entity: Option<String>,
    /// The fields every event of this trigger carries.
    pub data: Vec<String>,
    /// Every field conditions may test (the entity's fields included).
    pub fields: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleEvent {
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub changes: Map<String, Value>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleTest {
    pub matched: bool,
    pub conditions: Vec<super::engine::ConditionResult>,
    /// What each action would do, rendered from the sample (nothing is done).
    #[schema(value_type = Vec<Object>)]
    pub actions: Vec<Value>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncomingEvent {
    pub module_type: String,
    pub trigger_id: String,
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    /// Defaults to a new id; resending the same id is deduplicated.
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub occurred_at: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    pub title: Option<String>,
    pub description: Option<String>,
    pub due_date: Option<String>,
    pub assignee: Option<String>,
    pub status: Option<String>,
    pub priority: Option<String>,
}

/// Filters of `GET /api/v1/automation/rules`.
#[derive(Debug, Default)]
pub struct RuleFilter {
    pub module_type: Option<String>,
    pub trigger_id: Option<String>,
    pub is_active: Option<bool>,
}

#[derive(Clone)]
pub struct AutomationService {
    store: Arc<dyn Store>,
    catalog: CatalogService,
    manifests: Manifests,
    queue: Arc<dyn ActionQueue>,
    bus: Arc<dyn EventBus>,
    webhooks: WebhookPolicy,
}

const TASK_STATUSES: [&str; 4] = ["open", "in_progress", "done", "cancelled"];

impl AutomationService {
    pub fn new(
        store: Arc<dyn Store>,
        catalog: CatalogService,
        manifests: Manifests,
        queue: Arc<dyn ActionQueue>,
        bus: Arc<dyn EventBus>,
        webhooks: WebhookPolicy,
    ) -> Self {
        Self { store, catalog, manifests, queue, bus, webhooks }
    }

    /// Triggers of the tenant's installed systems (optionally one module).
    pub async fn triggers(&self, tenant: &TenantId, module: Option<&str>) -> AppResult<Vec<TriggerInfo>> {
        let mut out = Vec::new();
        for item in self.store.query_all(&keys::tenant_pk(tenant), keys::INSTALL_PREFIX).await? {
            let Some(system) = item.data["system_id"].as_str().and_then(|s| SystemId::parse(s).ok()) else { continue };
            if module.is_some_and(|m| m != system.as_str()) {
                continue;
            }
            let Some(version) = self.manifests.installed(tenant, &system).await? else { continue };
            for trigger in &version.manifest.triggers {
                let fields = trigger_fields(&version.manifest, trigger);
                out.push(TriggerInfo {
                    module_type: system.to_string(),
                    trigger_id: trigger.id.clone(),
                    name: trigger.name.clone(),
                    description: trigger.description.clone(),
                    entity: trigger.entity.clone(),
                    data: trigger.data.clone(),
                    fields: fields.fields.into_iter().collect(),
                });
            }
        }
        Ok(out)
    }

    async fn trigger(&self, tenant: &TenantId, module: &str, trigger: &str) -> AppResult<TriggerFields> {
        let system =
            SystemId::parse(module).map_err(|_| Invalid::one("module_type", format!("'{module}' is not a system")))?;
        if self.catalog.get_system(&system).await.is_err() {
            return Err(Invalid::one("module_type", format!("'{module}' is not a system of the catalog")).into());
        }
        let version = self.manifests.installed(tenant, &system).await?.ok_or_else(|| {
            Invalid::one("module_type", format!("system '{module}' is not installed for this tenant"))
        })?;
        let def = version
            .manifest
            .triggers
            .iter()
            .find(|t| t.id == trigger)
            .ok_or_else(|| Invalid::one("trigger_id", format!("'{module}' has no trigger '{trigger}'")))?;
        Ok(trigger_fields(&version.manifest, def))
    }

    /// The rule's conditions, checked against its trigger.
    async fn checked(&self, tenant: &TenantId, input: &RuleInput) -> AppResult<Checked> {
        let trigger = self.trigger(tenant, &input.module_type, &input.trigger_id).await?;
        Ok(check_rule(input, &trigger, &self.webhooks)?)
    }

    async fn rule(&self, tenant: &TenantId, id: &str) -> AppResult<(Rule, u64)> {
        get_typed(self.store.as_ref(), &keys::tenant_pk(tenant), &keys::rule_sk(id), || {
            AppError::NotFound(format!("rule '{id}' does not exist"))
        })
        .await
    }

    pub async fn get_rule(&self, tenant: &TenantId, id: &str) -> AppResult<Rule> {
        Ok(self.rule(tenant, id).await?.0)
    }

    /// The write that keeps `rule` as its version, immutable.
    fn snapshot(tenant: &TenantId, rule: &Rule) -> Write {
        Write::create(keys::tenant_pk(tenant), keys::rule_version_sk(&rule.id, rule.version), rule)
    }

    /// Writes a rule change with the generation bump evaluators watch, and its audit entry.
    async fn write_rule(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        mut writes: Vec<Write>,
        change: Change<'_>,
    ) -> AppResult<()> {
        let pk = keys::tenant_pk(tenant);
        let generation = self.store.get(&pk, keys::RULES_GENERATION_SK).await?.map(|i| i.version);
        writes.push(Write::Put {
            item: Item::new(pk, keys::RULES_GENERATION_SK, generation.unwrap_or(0) + 1, json!({})),
            condition: generation.map_or(Condition::Absent, Condition::Version),
        });
        writes.push(audit::record(actor, Some(tenant), change));
        self.store.transact(writes).await.map_err(|e| match e {
            StoreError::ConditionFailed { .. } | StoreError::Conflict => {
                AppError::conflict("rules changed concurrently; retry")
            }
            other => other.into(),
        })
    }

    pub async fn create_rule(&self, actor: &Actor, tenant: &TenantId, input: RuleInput) -> AppResult<Rule> {
        let Checked { conditions, actions } = self.checked(tenant, &input).await?;
        let now = now_rfc3339();
        let rule = Rule {
            id: ulid::Ulid::generate().to_string().to_lowercase(),
            tenant_id: tenant.to_string(),
            name: input.name,
            description: input.description,
            module_type: input.module_type,
            trigger_id: input.trigger_id,
            conditions,
            actions,
            is_active: input.is_active.unwrap_or(true),
            created_at: now.clone(),
            updated_at: now,
            version: 1,
        };
        let put = Write::create(keys::tenant_pk(tenant), keys::rule_sk(&rule.id), &rule);
        self.write_rule(
            actor,
            tenant,
            vec![put, Self::snapshot(tenant, &rule)],
            Change::new("automation.rule.create", format!("rule:{}", rule.id)).after(rule.clone().redacted()),
        )
        .await?;
        Ok(rule)
    }

    pub async fn update_rule(&self, actor: &Actor, tenant: &TenantId, id: &str, input: RuleInput) -> AppResult<Rule> {
        let (before, version) = self.rule(tenant, id).await?;
        let Checked { conditions, actions } = self.checked(tenant, &input).await?;
        let rule = Rule {
            name: input.name,
            description: input.description,
            module_type: input.module_type,
            trigger_id: input.trigger_id,
            conditions,
            actions,
            is_active: input.is_active.unwrap_or(before.is_active),
            updated_at: now_rfc3339(),
            version: before.version + 1,
            ..before.clone()
        };
        let put = Write::replace(keys::tenant_pk(tenant), keys::rule_sk(id), version, &rule);
        self.write_rule(
            actor,
            tenant,
            vec![put, Self::snapshot(tenant, &rule)],
            Change::new("automation.rule.update", format!("rule:{id}"))
                .before(before.clone().redacted())
                .after(rule.clone().redacted()),
        )
        .await?;
        Ok(rule)
    }

    pub async fn toggle_rule(&self, actor: &Actor, tenant: &TenantId, id: &str, active: bool) -> AppResult<Rule> {
        let (before, version) = self.rule(tenant, id).await?;
        let rule = Rule { is_active: active, updated_at: now_rfc3339(), version: before.version + 1, ..before.clone() };
        let put = Write::replace(keys::tenant_pk(tenant), keys::rule_sk(id), version, &rule);
        let change = Change::new("automation.rule.toggle", format!("rule:{id}"))
            .before(json!({"is_active": before.is_active}))
            .after(json!({"is_active": active}));
        self.write_rule(actor, tenant, vec![put, Self::snapshot(tenant, &rule)], change).await?;
        Ok(rule)
    }

    /// A rule's versions, newest first.
    pub async fn rule_versions(&self, tenant: &TenantId, id: &str, page: &PageRequest) -> AppResult<Listed<Rule>> {
        self.rule(tenant, id).await?;
        let pk = keys::tenant_pk(tenant);
        let prefix = keys::rule_versions_prefix(id);
        let query = Query { descending: true, ..Query::new(&pk, &prefix) };
        scan_filtered(self.store.as_ref(), query, page, |item| {
            Ok(Some(decode_at::<Rule>(&item.pk, &item.sk, item.data)?))
        })
        .await
    }

    pub async fn rule_version(&self, tenant: &TenantId, id: &str, version: u64) -> AppResult<Rule> {
        self.rule(tenant, id).await?;
        get_typed(self.store.as_ref(), &keys::tenant_pk(tenant), &keys::rule_version_sk(id, version), || {
            AppError::NotFound(format!("rule '{id}' has no version {version}"))
        })
        .await
        .map(|(rule, _)| rule)
    }

    /// A new version with an earlier version's name, conditions, actions and state,
    /// checked against the trigger as it is now.
    pub async fn rollback_rule(&self, actor: &Actor, tenant: &TenantId, id: &str, to: u64) -> AppResult<Rule> {
        let (current, version) = self.rule(tenant, id).await?;
        let earlier = self.rule_version(tenant, id, to).await?;
        let written = json!({"name": earlier.name, "description": earlier.description, "module_type": earlier.module_type,
            "trigger_id": earlier.trigger_id, "conditions": earlier.conditions, "actions": earlier.actions,
            "is_active": earlier.is_active});
        let input: RuleInput = serde_json::from_value(written).map_err(|e| AppError::Internal(e.to_string()))?;
        let Checked { conditions, actions } = self.checked(tenant, &input).await?;
        let rule = Rule {
            name: earlier.name.clone(),
            description: earlier.description.clone(),
            conditions,
            actions,
            is_active: earlier.is_active,
            updated_at: now_rfc3339(),
            version: current.version + 1,
            ..current.clone()
        };
        let put = Write::replace(keys::tenant_pk(tenant), keys::rule_sk(id), version, &rule);
        let change = Change::new("automation.rule.rollback", format!("rule:{id}"))
            .before(json!({"version": current.version}))
            .after(json!({"version": rule.version, "from_version": to}));
        self.write_rule(actor, tenant, vec![put, Self::snapshot(tenant, &rule)], change).await?;
        Ok(rule)
    }

    pub async fn delete_rule(&self, actor: &Actor, tenant: &TenantId, id: &str) -> AppResult<()> {
        let (before, version) = self.rule(tenant, id).await?;
        let delete = Write::Delete {
            pk: keys::tenant_pk(tenant),
            sk: keys::rule_sk(id),
            condition: Condition::Version(version),
        };
        self.write_rule(
            actor,
            tenant,
            vec![delete],
            Change::new("automation.rule.delete", format!("rule:{id}")).before(before.clone().redacted()),
        )
        .await
    }

    pub async fn list_rules(
        &self,
        tenant: &TenantId,
        filter: &RuleFilter,
        page: &PageRequest,
    ) -> AppResult<Listed<Rule>> {
        let items = self.store.query_all(&keys::tenant_pk(tenant), keys::RULE_PREFIX).await?;
        let mut rules: Vec<(String, Rule)> = items
            .into_iter()
            .filter_map(|i| serde_json::from_value::<Rule>(i.data).ok().map(|r| (i.sk, r)))
            .filter(|(_, r)| filter.module_type.as_ref().is_none_or(|m| &r.module_type == m))
            .filter(|(_, r)| filter.trigger_id.as_ref().is_none_or(|t| &r.trigger_id == t))
            .filter(|(_, r)| filter.is_active.is_none_or(|a| r.is_active == a))
            .collect();
        if let Some(after) = &page.after {
            rules.retain(|(sk, _)| sk.as_str() > after.as_str());
        }
        let more = rules.len() > page.limit;
        rules.truncate(page.limit);
        let next = if more { rules.last().map(|(sk, _)| sk.clone()) } else { None };
        Listed::from_page(
            crate::ports::store::Page {
                items: rules
                    .into_iter()
                    .map(|(sk, r)| Item::new("", sk, 0, serde_json::to_value(r).expect("serializes")))
                    .collect(),
                next,
            },
            |i| decode_at(&i.pk, &i.sk, i.data),
        )
    }

    /// Evaluates a rule against a sample without side effects.
    pub async fn test_rule(&self, tenant: &TenantId, id: &str, sample: SampleEvent) -> AppResult<RuleTest> {
        let rule = self.get_rule(tenant, id).await?;
        let event = BusinessEvent {
            event_id: "test".to_string(),
            tenant_id: tenant.to_string(),
            module_type: rule.module_type.clone(),
            trigger_id: rule.trigger_id.clone(),
            occurred_at: now_rfc3339(),
            data: sample.data,
            changes: sample.changes,
            causation: Causation::default(),
        };
        let fields = self.trigger(tenant, &rule.module_type, &rule.trigger_id).await?.fields;
        let held = evaluate(&rule, &fields, &event);
        let matched = held.iter().all(|h| *h);
        let conditions =
            rule.conditions.iter().zip(&held).map(|(c, h)| super::engine::ConditionResult::of(c, *h)).collect();
        let actions = rule
            .actions
            .iter()
            .map(|a| {
                let would = match render_value(&Value::Object(a.parameters()), &event.data) {
                    Value::Object(rendered) if matched => Value::Object(mask_parameters(&rendered)),
                    _ => Value::Null,
                };
                json!({"type": a.kind(), "would": would})
            })
            .collect();
        Ok(RuleTest { matched, conditions, actions })
    }

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
        status: Option<&str>,
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
        let retried: Vec<usize> =
            execution.actions.iter().filter(|a| a.status == "failed" || a.status == "dead").map(|a| a.index).collect();
        if retried.is_empty() {
            return Err(AppError::conflict_with(
                "nothing to retry: no action of this execution failed",
                "status",
                json!(execution.status),
            ));
        }
        for index in &retried {
            let slot = &mut execution.actions[*index];
            slot.status = "pending".to_string();
            slot.attempts = 0;
        }
        execution.status = "pending".to_string();
        execution.updated_at = now_rfc3339();
        let marker = super::runs::with_deadline(tenant, &mut execution, crate::domain::time::unix_now());
        let writes = vec![
            super::engine::execution_write(tenant, &execution, version),
            marker,
            audit::record(
                actor,
                Some(tenant),
                Change::new("automation.execution.retry", format!("execution:{id}")).after(json!({"actions": retried})),
            ),
        ];
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
        };
        self.bus.publish(vec![event.clone()]).await.map_err(|e| AppError::Unavailable(e.to_string()))?;
        Ok(event)
    }

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
            audit::record(
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
            audit::record(
                actor,
                Some(tenant),
                Change::new("task.update", format!("task:{id}")).before(&before).after(&task),
            ),
        ];
        self.store.transact(writes).await?;
        Ok(task)
    }
}

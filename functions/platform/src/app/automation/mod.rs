//! The automation API: triggers, rules, rule tests, executions and retries,
//! events from outside, and what actions produce (notifications, tasks).
//!
//! This module holds the service and what its parts share; `rules.rs` (rules, their
//! versions and dry runs), `runs.rs` (runs, retries, events from outside) and `tasks.rs`
//! (notifications and tasks) each add one part of its methods.

mod rules;
mod runs;
mod tasks;
pub use tasks::TaskFilter;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::audit::{self, Actor, Change};
use super::catalog::CatalogService;
use super::error::{AppError, AppResult};
use super::keys;
use super::manifests::Manifests;
use super::page::get_typed;
use crate::domain::events::trigger_fields;
use crate::domain::ids::{SystemId, TenantId};
use crate::domain::invalid::Invalid;
use crate::domain::rules::{
    check_rule, Checked, Rule, RuleInput, TriggerFields, SCHEDULED_FIELDS, SCHEDULED_TRIGGER, SCHEDULE_MODULE,
};
use crate::domain::webhook::WebhookPolicy;
use crate::ports::queue::{ActionQueue, EventBus};
use crate::ports::store::{Store, StoreError, Write};

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
    /// An RFC 3339 time or a date (`YYYY-MM-DD`).
    pub due_date: Option<String>,
    /// A user of the tenant.
    pub assignee: Option<String>,
    /// `todo`, `in_progress`, `done`, `cancelled` (along the workflow).
    pub status: Option<crate::domain::tools::TaskStatus>,
    /// `low`, `normal`, `high`, `urgent`.
    pub priority: Option<crate::domain::tools::TaskPriority>,
    pub subject: Option<crate::domain::tools::Subject>,
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
    timers: Arc<dyn crate::ports::timers::Timers>,
    sources: crate::app::event_sources::EventSourceService,
    webhooks: WebhookPolicy,
}

/// Where the automation service sends work: the action queue, the event bus, the timers.
pub struct Outlets {
    pub queue: Arc<dyn ActionQueue>,
    pub bus: Arc<dyn EventBus>,
    pub timers: Arc<dyn crate::ports::timers::Timers>,
}

impl AutomationService {
    pub fn new(
        store: Arc<dyn Store>,
        catalog: CatalogService,
        manifests: Manifests,
        outlets: Outlets,
        sources: crate::app::event_sources::EventSourceService,
        webhooks: WebhookPolicy,
    ) -> Self {
        let Outlets { queue, bus, timers } = outlets;
        Self { store, catalog, manifests, queue, bus, timers, sources, webhooks }
    }

    /// Sets the first timer of an active scheduled rule's version (before the rule is
    /// written: should the write fail, the timer finds another version and does nothing).
    async fn arm(&self, rule: &Rule) -> AppResult<()> {
        let Some(schedule) = rule.schedule.as_ref().filter(|_| rule.is_active) else { return Ok(()) };
        let now = crate::domain::time::unix_now() as i64;
        let Some(at) = schedule.next_after(now, now) else { return Ok(()) };
        let timer = crate::ports::timers::Timer::Schedule {
            tenant_id: rule.tenant_id.clone(),
            rule_id: rule.id.clone(),
            version: rule.version,
            at,
        };
        self.timers.set(at, &timer).await.map_err(|e| AppError::Unavailable(format!("the rule's schedule: {e}")))
    }

    /// Triggers of the tenant's installed systems (optionally one module).
    pub async fn triggers(&self, tenant: &TenantId, module: Option<&str>) -> AppResult<Vec<TriggerInfo>> {
        let mut out = Vec::new();
        if module.is_none_or(|m| m == SCHEDULE_MODULE) {
            out.push(TriggerInfo {
                module_type: SCHEDULE_MODULE.to_string(),
                trigger_id: SCHEDULED_TRIGGER.to_string(),
                name: "On a schedule".to_string(),
                description: "Fires at the times of the rule's `schedule` (rate(...) or cron(...), UTC)".to_string(),
                entity: None,
                data: SCHEDULED_FIELDS.map(str::to_string).to_vec(),
                fields: SCHEDULED_FIELDS.map(str::to_string).to_vec(),
            });
        }
        if module.is_none_or(|m| m == crate::domain::tools::TOOLS_MODULE) {
            for trigger in &crate::domain::tools::TOOL_TRIGGERS {
                let fields = crate::domain::tools::trigger_fields(trigger);
                out.push(TriggerInfo {
                    module_type: crate::domain::tools::TOOLS_MODULE.to_string(),
                    trigger_id: trigger.id.to_string(),
                    name: trigger.name.to_string(),
                    description: trigger.description.to_string(),
                    entity: None,
                    data: fields.clone(),
                    fields,
                });
            }
        }
        if module.is_none_or(|m| m == crate::app::event_sources::AWS_MODULE) {
            for source in self.sources.list(tenant).await?.items {
                out.push(TriggerInfo {
                    module_type: crate::app::event_sources::AWS_MODULE.to_string(),
                    trigger_id: source.trigger_id.clone(),
                    name: format!("{} {} from {}", source.source, source.detail_type, source.account),
                    description: format!(
                        "Native events of a registered source ({:?}); patterns match the event as it comes",
                        source.status
                    ),
                    entity: None,
                    data: Vec::new(),
                    fields: Vec::new(),
                });
            }
        }
        for item in self.store.query_all(&keys::tenant_pk(tenant), keys::INSTALL_PREFIX).await? {
            let Some(system) = item.data["system_id"].as_str().and_then(|s| SystemId::parse(s).ok()) else { continue };
            if module.is_some_and(|m| m != system.as_str()) {
                continue;
            }
            let Some(version) = self.manifests.installed(tenant, &system).await? else { continue };
            for trigger in &version.triggers {
                let fields = trigger_fields(&version, trigger);
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
        if module == crate::app::event_sources::AWS_MODULE {
            let registered = self.sources.list(tenant).await?.items.iter().any(|s| s.trigger_id == trigger);
            if !registered {
                return Err(Invalid::one(
                    "trigger_id",
                    format!(
                        "'{trigger}' is no registered event source of this tenant (POST /api/v1/automation/sources)"
                    ),
                )
                .into());
            }
            return Ok(TriggerFields { fields: Default::default(), changeable: Default::default(), open: true });
        }
        if module == crate::domain::tools::TOOLS_MODULE {
            let def = crate::domain::tools::tool_trigger(trigger)
                .ok_or_else(|| Invalid::one("trigger_id", format!("'{module}' has no trigger '{trigger}'")))?;
            let fields: std::collections::BTreeSet<String> =
                crate::domain::tools::trigger_fields(def).into_iter().collect();
            return Ok(TriggerFields { changeable: fields.clone(), fields, open: false });
        }
        if module == SCHEDULE_MODULE {
            if trigger != SCHEDULED_TRIGGER {
                return Err(Invalid::one(
                    "trigger_id",
                    format!("'{module}' has only the trigger '{SCHEDULED_TRIGGER}'"),
                )
                .into());
            }
            let fields = SCHEDULED_FIELDS.map(str::to_string).into_iter().collect();
            return Ok(TriggerFields { fields, changeable: Default::default(), open: false });
        }
        let system =
            SystemId::parse(module).map_err(|_| Invalid::one("module_type", format!("'{module}' is not a system")))?;
        if self.catalog.get_system(&system).await.is_err() {
            return Err(Invalid::one("module_type", format!("'{module}' is not a system of the catalog")).into());
        }
        let version = self.manifests.installed(tenant, &system).await?.ok_or_else(|| {
            Invalid::one("module_type", format!("system '{module}' is not installed for this tenant"))
        })?;
        let def = version
            .triggers
            .iter()
            .find(|t| t.id == trigger)
            .ok_or_else(|| Invalid::one("trigger_id", format!("'{module}' has no trigger '{trigger}'")))?;
        Ok(trigger_fields(&version, def))
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
        writes.push(crate::app::rules_generation::bump(self.store.as_ref(), tenant).await?);
        writes.push(audit::record(actor, Some(tenant), change));
        self.store.transact(writes).await.map_err(|e| match e {
            StoreError::ConditionFailed { .. } | StoreError::Conflict => {
                AppError::conflict("rules changed concurrently; retry")
            }
            other => other.into(),
        })
    }
}

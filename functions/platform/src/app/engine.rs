//! The automation stages: the publisher turns store changes into business events, the
//! evaluator matches events to the tenant's rules and queues one message per action, the
//! executor performs each action exactly once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::catalog::CatalogService;
use super::error::{AppError, AppResult};
use super::keys;
use super::records::{RecordKey, RecordService};
use super::stored::{decode_at, optimistic_or, Step};
use crate::domain::actions::Webhook;
use crate::domain::catalog::SystemVersion;
use crate::domain::config::ConfigVersion;
use crate::domain::events::{derive_events, derived_id, BusinessEvent, Causation, RecordChange};
use crate::domain::ids::{SystemId, TenantId};
use crate::domain::install::Install;
use crate::domain::limits::{clipped, MAX_ERROR_CHARS};
use crate::domain::matcher::CompiledRules;
use crate::domain::records::Record;
use crate::domain::rules::{render, render_value, Action, Rule};
use crate::domain::time::now_rfc3339;
use crate::domain::webhook::{WebhookPolicy, WebhookUrl, FORBIDDEN_HEADERS};
use crate::ports::feed::StoreChange;
use crate::ports::queue::{ActionMessage, ActionQueue, DeliveryError, EventBus};
use crate::ports::store::{Condition, Item, Store, StoreError, Write};

/// Events caused by actions deeper than this stop the chain.
pub const MAX_CAUSATION_DEPTH: u32 = 5;
/// Attempts before an action is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 5;
/// How long a delivery's claim on a webhook call holds off other deliveries (longer than
/// the call's timeout).
const WEBHOOK_CLAIM_SECONDS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConditionResult {
    #[serde(rename = "type")]
    pub kind: String,
    pub field: Option<String>,
    pub held: bool,
}

impl ConditionResult {
    pub fn of(condition: &crate::domain::rules::Condition, held: bool) -> Self {
        Self { kind: condition.kind().to_string(), field: condition.field().map(str::to_string), held }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActionOutcome {
    pub index: usize,
    #[serde(rename = "type")]
    pub kind: String,
    pub action_id: String,
    /// `pending`, `running`, `succeeded`, `failed` (will retry) or `dead` (gave up).
    pub status: String,
    pub attempts: u32,
    pub error: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// When a delivery claimed it (webhooks): another delivery waits until the claim is stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<u64>,
}

/// One run of one rule for one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Execution {
    pub execution_id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub event: BusinessEvent,
    pub conditions: Vec<ConditionResult>,
    /// `pending`, `succeeded`, `failed` or `stopped` (not run, see `reason`).
    pub status: String,
    pub reason: Option<String>,
    pub actions: Vec<ActionOutcome>,
    /// `system/entity` of the trigger (the default target of `update_status`).
    pub entity: Option<String>,
    /// The rule as it was when it ran (to replay actions).
    pub rule: Rule,
    /// The version of the rule that ran.
    #[serde(default)]
    pub rule_version: u64,
    pub created_at: String,
    pub updated_at: String,
    /// When its unfinished actions are given up (epoch seconds), see `app::runs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<u64>,
}

impl Execution {
    pub fn summarize(&mut self) {
        self.status = if self.actions.iter().all(|a| a.status == "succeeded") {
            "succeeded"
        } else if self.actions.iter().any(|a| a.status == "failed" || a.status == "dead") {
            "failed"
        } else {
            "pending"
        }
        .to_string();
        self.updated_at = now_rfc3339();
    }

    pub fn messages(&self, only: impl Fn(&ActionOutcome) -> bool) -> Vec<ActionMessage> {
        self.actions
            .iter()
            .filter(|a| only(a))
            .filter_map(|outcome| {
                Some(ActionMessage {
                    action_id: outcome.action_id.clone(),
                    execution_id: self.execution_id.clone(),
                    tenant_id: self.event.tenant_id.clone(),
                    rule_id: self.rule_id.clone(),
                    action_index: outcome.index,
                    action: self.rule.actions.get(outcome.index)?.clone(),
                    event: self.event.clone(),
                    entity: self.entity.clone(),
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    pub notification_id: String,
    pub recipient: String,
    pub message: String,
    pub rule_id: String,
    pub execution_id: String,
    pub event_id: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Task {
    pub task_id: String,
    pub title: String,
    pub description: String,
    pub due_date: Option<String>,
    pub assignee: Option<String>,
    /// `open`, `in_progress`, `done`.
    pub status: String,
    pub priority: String,
    /// The rule that created it, if any.
    pub rule_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

fn delivery(e: DeliveryError) -> AppError {
    AppError::Unavailable(format!("delivery failed: {e}"))
}

/// (system, version) -> the published version.
type VersionCache = Arc<Mutex<HashMap<(String, String), Arc<SystemVersion>>>>;
/// (tenant, module, trigger) -> (rules generation, compiled rules).
type RulesCache = Arc<Mutex<HashMap<(String, String, String), (u64, Arc<CompiledRules>)>>>;

/// The installed version's manifest of a tenant's system, cached per version.
#[derive(Clone)]
pub struct Manifests {
    store: Arc<dyn Store>,
    catalog: CatalogService,
    cache: VersionCache,
}

impl Manifests {
    pub fn new(store: Arc<dyn Store>, catalog: CatalogService) -> Self {
        Self { store, catalog, cache: Arc::default() }
    }

    pub async fn installed(&self, tenant: &TenantId, system: &SystemId) -> AppResult<Option<Arc<SystemVersion>>> {
        let Some(item) = self.store.get(&keys::tenant_pk(tenant), &keys::install_sk(system)).await? else {
            return Ok(None);
        };
        let install: Install = decode_at(&item.pk, &item.sk, item.data)?;
        let key = (system.to_string(), install.version.to_string());
        if let Some(found) = self.cache.lock().expect("lock").get(&key) {
            return Ok(Some(found.clone()));
        }
        let version = Arc::new(self.catalog.get_version(system, &install.version).await?);
        self.cache.lock().expect("lock").insert(key, version.clone());
        Ok(Some(version))
    }
}

/// Change feed -> business events -> bus.
#[derive(Clone)]
pub struct Publisher {
    store: Arc<dyn Store>,
    manifests: Manifests,
    bus: Arc<dyn EventBus>,
}

impl Publisher {
    pub fn new(store: Arc<dyn Store>, manifests: Manifests, bus: Arc<dyn EventBus>) -> Self {
        Self { store, manifests, bus }
    }

    /// The business events of one store change (none for anything but a record).
    pub async fn events_of(&self, change: &StoreChange) -> AppResult<Vec<BusinessEvent>> {
        let Some(item) = change.new.as_ref().or(change.old.as_ref()) else { return Ok(Vec::new()) };
        let (Some(tenant), Some((system, entity, record_id))) =
            (keys::parse_tenant_pk(&item.pk), keys::parse_record_sk(&item.sk))
        else {
            return Ok(Vec::new());
        };
        let (Ok(tenant), Ok(system)) = (TenantId::parse(tenant), SystemId::parse(system)) else {
            return Ok(Vec::new());
        };
        let Some(version) = self.manifests.installed(&tenant, &system).await? else { return Ok(Vec::new()) };
        let record = |i: &Option<Item>| i.as_ref().and_then(|i| serde_json::from_value::<Record>(i.data.clone()).ok());
        let (old, new) = (record(&change.old), record(&change.new));
        let settings = self
            .store
            .get(
                &keys::tenant_pk(&tenant),
                &keys::config_head_sk(&crate::domain::config::ConfigScope::System(system.clone())),
            )
            .await?
            .and_then(|i| serde_json::from_value::<ConfigVersion>(i.data).ok())
            .map(|c| c.value)
            .unwrap_or(Value::Null);
        let item_version =
            change.new.as_ref().map_or_else(|| change.old.as_ref().map_or(0, |o| o.version + 1), |n| n.version);
        let change_id = format!("{record_id}:{item_version}");
        let causation = new.as_ref().and_then(|r| r.causation.clone()).unwrap_or_default();
        let occurred_at = new.as_ref().map_or_else(now_rfc3339, |r| r.updated_at.clone());
        let derived = derive_events(
            &RecordChange {
                tenant_id: tenant.as_str(),
                system_id: system.as_str(),
                entity,
                record_id,
                change_id: &change_id,
                old: old.as_ref().map(|r| &r.data),
                new: new.as_ref().map(|r| &r.data),
                causation,
                occurred_at: &occurred_at,
            },
            &version.manifest.triggers,
            &settings,
        );
        Ok(derived)
    }

    /// Publishes the events of a batch of changes; fails (to be retried) if the bus does.
    pub async fn publish(&self, changes: &[StoreChange]) -> AppResult<usize> {
        let mut events = Vec::new();
        for change in changes {
            events.extend(self.events_of(change).await?);
        }
        let count = events.len();
        if !events.is_empty() {
            self.bus.publish(events).await.map_err(delivery)?;
        }
        Ok(count)
    }
}

/// Events -> matching rules -> execution records + action messages.
#[derive(Clone)]
pub struct Evaluator {
    store: Arc<dyn Store>,
    manifests: Manifests,
    queue: Arc<dyn ActionQueue>,
    limiter: super::rate_limits::RateLimiter,
    cache: RulesCache,
}

/// Execution ids sort by time and are the same for the same (event, rule).
pub fn execution_id(event: &BusinessEvent, rule_id: &str) -> String {
    let stamp: String = event.occurred_at.chars().filter(|c| c.is_ascii_digit()).collect();
    format!("{stamp}-{}", derived_id(&[&event.event_id, rule_id]))
}

impl Evaluator {
    pub fn new(
        store: Arc<dyn Store>,
        manifests: Manifests,
        queue: Arc<dyn ActionQueue>,
        limiter: super::rate_limits::RateLimiter,
    ) -> Self {
        Self { store, manifests, queue, limiter, cache: Arc::default() }
    }

    async fn generation(&self, tenant: &TenantId) -> AppResult<u64> {
        Ok(self.store.get(&keys::tenant_pk(tenant), keys::RULES_GENERATION_SK).await?.map_or(0, |i| i.version))
    }

    /// The tenant's active rules for a trigger, compiled once per rules generation.
    pub async fn rules_for(&self, tenant: &TenantId, module: &str, trigger: &str) -> AppResult<Arc<CompiledRules>> {
        let generation = self.generation(tenant).await?;
        let key = (tenant.to_string(), module.to_string(), trigger.to_string());
        if let Some((cached_gen, compiled)) = self.cache.lock().expect("lock").get(&key) {
            if *cached_gen == generation {
                return Ok(compiled.clone());
            }
        }
        let items = self.store.query_all(&keys::tenant_pk(tenant), keys::RULE_PREFIX).await?;
        let rules: Vec<Rule> = items
            .into_iter()
            .filter_map(|i| serde_json::from_value::<Rule>(i.data).ok())
            .filter(|r| r.is_active && r.module_type == module && r.trigger_id == trigger)
            .collect();
        // Which top-level pattern fields are the data's (rather than the envelope's).
        let fields = match SystemId::parse(module) {
            Ok(system) if !rules.is_empty() => self.manifests.installed(tenant, &system).await?.and_then(|v| {
                v.manifest
                    .triggers
                    .iter()
                    .find(|t| t.id == trigger)
                    .map(|t| crate::domain::events::trigger_fields(&v.manifest, t).fields)
            }),
            _ => None,
        };
        let compiled = Arc::new(CompiledRules::new(rules, &fields.unwrap_or_default(), module));
        self.cache.lock().expect("lock").insert(key, (generation, compiled.clone()));
        Ok(compiled)
    }

    /// Matches one event and queues its actions. Idempotent: the same event yields the
    /// same execution ids and action ids.
    pub async fn evaluate(&self, event: &BusinessEvent) -> AppResult<Vec<String>> {
        let Ok(tenant) = TenantId::parse(&event.tenant_id) else { return Ok(Vec::new()) };
        let compiled = self.rules_for(&tenant, &event.module_type, &event.trigger_id).await?;
        if compiled.is_empty() {
            return Ok(Vec::new());
        }
        let entity = match SystemId::parse(&event.module_type) {
            Ok(system) => self.manifests.installed(&tenant, &system).await?.and_then(|v| {
                v.manifest
                    .triggers
                    .iter()
                    .find(|t| t.id == event.trigger_id)
                    .and_then(|t| t.entity.clone())
                    .map(|e| format!("{system}/{e}"))
            }),
            Err(_) => None,
        };
        let too_deep = event.causation.depth > MAX_CAUSATION_DEPTH;
        let now = now_rfc3339();
        let mut messages = Vec::new();
        let mut ids = Vec::new();
        for rule in compiled.matching(event) {
            let execution_id = execution_id(event, &rule.id);
            let actions = rule
                .actions
                .iter()
                .enumerate()
                .map(|(index, action)| ActionOutcome {
                    index,
                    kind: action.kind().to_string(),
                    action_id: derived_id(&[&event.event_id, &rule.id, &index.to_string()]),
                    status: if too_deep { "skipped".to_string() } else { "pending".to_string() },
                    attempts: 0,
                    error: None,
                    result: None,
                    claimed_at: None,
                })
                .collect();
            let mut execution = Execution {
                execution_id: execution_id.clone(),
                rule_id: rule.id.clone(),
                rule_name: rule.name.clone(),
                event: event.clone(),
                // A rule matches when every one of its conditions held.
                conditions: rule.conditions.iter().map(|c| ConditionResult::of(c, true)).collect(),
                status: if too_deep { "stopped".to_string() } else { "pending".to_string() },
                reason: too_deep.then(|| {
                    format!("causation depth {} exceeds the limit of {MAX_CAUSATION_DEPTH}: the chain of automations stops here", event.causation.depth)
                }),
                actions,
                entity: entity.clone(),
                rule: rule.clone(),
                rule_version: rule.version,
                created_at: now.clone(),
                updated_at: now.clone(),
                deadline: None,
            };
            let marker = (!too_deep)
                .then(|| super::runs::with_deadline(&tenant, &mut execution, crate::domain::time::unix_now()));
            let item = Item::new(
                keys::tenant_pk(&tenant),
                keys::execution_sk(&execution_id),
                1,
                serde_json::to_value(&execution).expect("serializes"),
            )
            .expiring(run_expiry());
            let writes: Vec<Write> =
                std::iter::once(Write::Put { item, condition: Condition::Absent }).chain(marker).collect();
            match self.store.transact(writes).await {
                Ok(()) => {}
                // Already recorded by an earlier delivery of this event: its messages are re-sent below (idempotent).
                Err(StoreError::ConditionFailed { index: 0 }) => {}
                Err(e) => return Err(e.into()),
            }
            if !too_deep {
                messages.extend(execution.messages(|_| true));
            }
            ids.push(execution_id);
        }
        if !messages.is_empty() {
            // Over the tenant's event rate, the runs' actions wait their turn in the queue.
            let wait = self.limiter.take(&tenant, super::rate_limits::Flow::Events).await?.unwrap_or_default();
            if !wait.is_zero() {
                tracing::info!(tenant = %tenant, wait_ms = wait.as_millis() as u64, "event rate exceeded; its actions are delayed");
            }
            self.queue.enqueue_after(messages, wait).await.map_err(delivery)?;
        }
        Ok(ids)
    }
}

/// Runs (with the claims their webhook calls hold) are kept this long after their last change.
pub const RUN_RETENTION_SECONDS: u64 = 90 * 24 * 3600;

/// When a run written now expires.
pub fn run_expiry() -> u64 {
    crate::domain::time::unix_now() + RUN_RETENTION_SECONDS
}

/// The write that replaces a run at `version`, renewing its retention.
pub fn execution_write(tenant: &TenantId, execution: &Execution, version: u64) -> Write {
    Write::replace(keys::tenant_pk(tenant), keys::execution_sk(&execution.execution_id), version, &execution)
        .expiring(run_expiry())
}

/// What went wrong with an action; the queue retries it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ActionFailed(pub String);

/// Performs actions exactly once: the effect and the action's outcome are written in one
/// conditional transaction on the execution, so a duplicate delivery finds it done.
#[derive(Clone)]
pub struct Executor {
    store: Arc<dyn Store>,
    records: RecordService,
    http: reqwest::Client,
    webhook_secret: Option<String>,
    webhooks: WebhookPolicy,
}

/// Resolves webhook hosts and refuses, before any connection, a name with an address the
/// policy forbids. The client connects only to the addresses returned here, so there is
/// no window between the check and the connection (DNS rebinding).
struct CheckedResolver(WebhookPolicy);

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addresses: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some((ip, why)) = addresses.iter().find_map(|a| policy.refuses(a.ip()).map(|why| (a.ip(), why))) {
                return Err(format!("{host} resolves to {ip}, {why}: webhooks may not reach it").into());
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// An error with its causes, for a run's record (reqwest keeps the reason in the chain).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Executor {
    pub fn new(
        store: Arc<dyn Store>,
        records: RecordService,
        webhook_secret: Option<String>,
        webhooks: WebhookPolicy,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            // A redirect would take the signed request somewhere the rule did not name.
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(CheckedResolver(webhooks.clone())))
            .build()
            .expect("an HTTP client");
        Self { store, records, http, webhook_secret: webhook_secret.filter(|s| !s.is_empty()), webhooks }
    }

    async fn execution(&self, tenant: &TenantId, id: &str) -> AppResult<Option<(Execution, u64)>> {
        let Some(item) = self.store.get(&keys::tenant_pk(tenant), &keys::execution_sk(id)).await? else {
            return Ok(None);
        };
        let version = item.version;
        Ok(Some((decode_at(&item.pk, &item.sk, item.data)?, version)))
    }

    fn execution_write(tenant: &TenantId, execution: &Execution, version: u64) -> Write {
        execution_write(tenant, execution, version)
    }

    /// Executes one message. `Ok` when done (now or before); `Err` to retry later.
    pub async fn execute(&self, message: &ActionMessage) -> Result<(), ActionFailed> {
        let fail = |e: AppError| ActionFailed(e.to_string());
        let tenant = TenantId::parse(&message.tenant_id).map_err(|e| ActionFailed(e.to_string()))?;
        let busy = || ActionFailed("the execution is changing concurrently".to_string());
        optimistic_or(busy, || async {
            let Some((mut execution, version)) = self.execution(&tenant, &message.execution_id).await.map_err(fail)?
            else {
                return Err(ActionFailed(format!("execution {} is not recorded yet", message.execution_id)));
            };
            let Some(outcome) = execution.actions.get(message.action_index).cloned() else { return Ok(Step::Done(())) };
            if matches!(outcome.status.as_str(), "succeeded" | "dead" | "skipped") {
                return Ok(Step::Done(())); // Done before: a duplicate delivery.
            }
            let now = crate::app::credentials::unix_now();
            if outcome.status == "running" && outcome.claimed_at.is_some_and(|at| now < at + WEBHOOK_CLAIM_SECONDS) {
                return Err(ActionFailed("another delivery is calling this webhook".to_string()));
            }
            let attempts = outcome.attempts + 1;
            let result = if let Action::Webhook(hook) = &message.action {
                // An outside effect cannot share our transaction: claim, call, record.
                execution.actions[message.action_index].status = "running".to_string();
                execution.actions[message.action_index].attempts = attempts;
                execution.actions[message.action_index].claimed_at = Some(now);
                match self.store.transact(vec![Self::execution_write(&tenant, &execution, version)]).await {
                    Ok(()) => {}
                    Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => return Ok(Step::Retry),
                    Err(e) => return Err(fail(e.into())),
                }
                let called = self.webhook(message, hook).await;
                return self.record(&tenant, message, attempts, called.map(|r| (r, Vec::new()))).await.map(Step::Done);
            } else {
                self.effect(&tenant, message).await
            };
            execution.actions[message.action_index].attempts = attempts;
            match result {
                Ok((value, writes)) => {
                    execution.actions[message.action_index].status = "succeeded".to_string();
                    execution.actions[message.action_index].error = None;
                    execution.actions[message.action_index].result = Some(value);
                    execution.summarize();
                    let mut all = vec![Self::execution_write(&tenant, &execution, version)];
                    all.extend(writes);
                    match self.store.transact(all).await {
                        Ok(()) => Ok(Step::Done(())),
                        Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Ok(Step::Retry),
                        Err(e) => Err(fail(e.into())),
                    }
                }
                Err(e) => self.record(&tenant, message, attempts, Err(e)).await.map(Step::Done),
            }
        })
        .await
    }

    /// Records an outcome (for webhooks, and failures); dead after [`MAX_ATTEMPTS`].
    async fn record(
        &self,
        tenant: &TenantId,
        message: &ActionMessage,
        attempts: u32,
        result: Result<(Value, Vec<Write>), ActionFailed>,
    ) -> Result<(), ActionFailed> {
        let fail = |e: AppError| ActionFailed(e.to_string());
        let busy = || ActionFailed("the execution is changing concurrently".to_string());
        optimistic_or(busy, || async {
            let Some((mut execution, version)) = self.execution(tenant, &message.execution_id).await.map_err(fail)?
            else {
                return Ok(Step::Done(()));
            };
            let slot = &mut execution.actions[message.action_index];
            slot.attempts = slot.attempts.max(attempts);
            let error = match &result {
                Ok((value, _)) => {
                    slot.status = "succeeded".to_string();
                    slot.error = None;
                    slot.result = Some(value.clone());
                    None
                }
                Err(e) => {
                    slot.status = if slot.attempts >= MAX_ATTEMPTS { "dead" } else { "failed" }.to_string();
                    slot.error = Some(clipped(e.0.clone(), MAX_ERROR_CHARS));
                    Some(e.0.clone())
                }
            };
            execution.summarize();
            match self.store.transact(vec![Self::execution_write(tenant, &execution, version)]).await {
                Ok(()) => match error {
                    Some(e) => Err(ActionFailed(e)),
                    None => Ok(Step::Done(())),
                },
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Ok(Step::Retry),
                Err(e) => Err(fail(e.into())),
            }
        })
        .await
    }

    /// The store writes of an action, and what it produced.
    async fn effect(&self, tenant: &TenantId, message: &ActionMessage) -> Result<(Value, Vec<Write>), ActionFailed> {
        let data = &message.event.data;
        let fill = |template: &str| render(template, data);
        let fill_some = |template: &Option<String>| template.as_deref().map(fill).filter(|s| !s.is_empty());
        let now = now_rfc3339();
        match &message.action {
            Action::SendNotification(notify) => {
                let notification = Notification {
                    notification_id: message.action_id.clone(),
                    recipient: fill(&notify.recipient),
                    message: fill(&notify.message),
                    rule_id: message.rule_id.clone(),
                    execution_id: message.execution_id.clone(),
                    event_id: message.event.event_id.clone(),
                    created_at: now.clone(),
                };
                let item = Item::new(
                    keys::tenant_pk(tenant),
                    keys::notification_sk(&now, &message.action_id),
                    1,
                    serde_json::to_value(&notification).expect("serializes"),
                );
                Ok((
                    json!({"notification_id": notification.notification_id}),
                    vec![Write::Put { item, condition: Condition::Absent }],
                ))
            }
            Action::CreateTask(new) => {
                let task = Task {
                    task_id: message.action_id.clone(),
                    title: fill(&new.title),
                    description: fill_some(&new.description).unwrap_or_default(),
                    due_date: fill_some(&new.due_date),
                    assignee: fill_some(&new.assignee),
                    status: "open".to_string(),
                    priority: fill_some(&new.priority).unwrap_or_else(|| "normal".to_string()),
                    rule_id: Some(message.rule_id.clone()),
                    created_at: now.clone(),
                    updated_at: now,
                };
                let item = Item::new(
                    keys::tenant_pk(tenant),
                    keys::task_sk(&task.task_id),
                    1,
                    serde_json::to_value(&task).expect("serializes"),
                );
                Ok((json!({"task_id": task.task_id}), vec![Write::Put { item, condition: Condition::Absent }]))
            }
            Action::UpdateStatus(update) => {
                let target = fill_some(&update.entity)
                    .or_else(|| message.entity.clone())
                    .ok_or_else(|| ActionFailed("no entity to update: set parameters.entity (system/entity)".into()))?;
                let (system, entity) =
                    target.split_once('/').ok_or_else(|| ActionFailed(format!("'{target}' is not system/entity")))?;
                let system = SystemId::parse(system).map_err(|e| ActionFailed(e.to_string()))?;
                let id = fill(&update.entity_id);
                let field = fill_some(&update.field).unwrap_or_else(|| "status".to_string());
                let mut patch = Map::new();
                patch.insert(field.clone(), render_value(&update.new_status, data));
                let causation =
                    Causation { depth: message.event.causation.depth + 1, action_id: Some(message.action_id.clone()) };
                let (_, after, _, write) = self
                    .records
                    .patch_writes(tenant, RecordKey { system: &system, entity, id: &id }, &patch, Some(causation), None)
                    .await
                    .map_err(|e| ActionFailed(e.to_string()))?;
                Ok((json!({"record_id": id, "field": field, "value": after.data.get(&field)}), vec![write]))
            }
            Action::Webhook(_) => Err(ActionFailed("a webhook is an outside effect, not a store write".into())),
        }
    }

    /// POSTs the rendered body, signed with HMAC-SHA256; 2xx is success.
    async fn webhook(&self, message: &ActionMessage, hook: &Webhook) -> Result<Value, ActionFailed> {
        use hmac::{KeyInit, Mac};
        let data = &message.event.data;
        let target = WebhookUrl::parse(&hook.url).map_err(|e| ActionFailed(format!("the webhook url {e}")))?;
        if let Some(why) = self.webhooks.refuses_url(&target) {
            return Err(ActionFailed(format!("the webhook url {why}")));
        }
        let url = target.render(data);
        let body = match &hook.body {
            Some(template) => render_value(template, data),
            None => serde_json::to_value(&message.event).expect("serializes"),
        };
        let bytes = serde_json::to_vec(&body).expect("serializes");
        let tenant = TenantId::parse(&message.tenant_id).map_err(|e| ActionFailed(e.to_string()))?;
        let own = hook.secret.clone().filter(|s| !s.is_empty());
        let secret = match own {
            Some(secret) => secret,
            None => super::signing_keys::tenant_key(self.store.as_ref(), &tenant)
                .await
                .map_err(|e| ActionFailed(e.to_string()))?
                .or_else(|| self.webhook_secret.clone())
                .ok_or_else(|| {
                    ActionFailed(
                        "no key to sign the webhook with: set the rule's secret or rotate the tenant's key".to_string(),
                    )
                })?,
        };
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
        mac.update(&bytes);
        let signature: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        let mut request = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header("x-signature-256", format!("sha256={signature}"))
            .header("x-idempotency-key", &message.action_id)
            .header("x-event-id", &message.event.event_id);
        for (name, value) in &hook.headers {
            if FORBIDDEN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                continue; // refused when the rule was written; never sent
            }
            request = request.header(name.as_str(), render(value, data));
        }
        // The URL may carry secrets: errors are recorded without it.
        let response = request
            .body(bytes)
            .send()
            .await
            .map_err(|e| ActionFailed(format!("webhook call failed: {}", with_causes(&e.without_url()))))?;
        let status = response.status();
        // The answer's body is never read: nothing of it is kept, and a large one costs nothing.
        drop(response);
        if status.is_success() {
            Ok(json!({"status": status.as_u16()}))
        } else if status.is_redirection() {
            Err(ActionFailed(format!("webhook answered {status}; redirects are not followed")))
        } else {
            Err(ActionFailed(format!("webhook answered {status}")))
        }
    }
}

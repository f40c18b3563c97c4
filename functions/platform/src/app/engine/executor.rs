//! The executor: action messages -> effects, exactly once.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::app::error::{AppError, AppResult};
use crate::app::keys;
use crate::app::records::{RecordKey, RecordService};
use crate::app::stored::{decode, optimistic_or, FirstRead, Step};
use crate::domain::actions::Webhook;
use crate::domain::events::Causation;
use crate::domain::ids::{SystemId, TenantId};
use crate::domain::limits::{clipped, MAX_ERROR_CHARS};
use crate::domain::rules::{render, render_value, Action};
use crate::domain::time::now_rfc3339;
use crate::domain::webhook::{WebhookPolicy, WebhookUrl, FORBIDDEN_HEADERS};
use crate::ports::queue::ActionMessage;
use crate::ports::store::{Condition, Item, Store, StoreError, Write};
use crate::ports::timers::{Timer, Timers};

use super::*;

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
    /// The webhook client, built on the first webhook (its TLS set-up is not free).
    http: Arc<std::sync::OnceLock<reqwest::Client>>,
    webhook_secret: Option<String>,
    webhooks: WebhookPolicy,
    /// For the due-time timers of the tasks actions create.
    timers: Arc<dyn Timers>,
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

/// Whether a run as read has the action at `index` still to run ([`ActionStatus::unfinished`]:
/// not settled, not waiting for its timer). A failed read or a run not recorded yet has
/// nothing to run now.
fn has_work(run: &AppResult<Option<(Execution, u64)>>, index: usize) -> bool {
    let Ok(Some((execution, _))) = run else { return false };
    execution.actions.get(index).is_some_and(|a| a.status.unfinished())
}

impl Executor {
    pub fn new(
        store: Arc<dyn Store>,
        records: RecordService,
        webhook_secret: Option<String>,
        webhooks: WebhookPolicy,
        timers: Arc<dyn Timers>,
    ) -> Self {
        Self {
            store,
            records,
            http: Default::default(),
            webhook_secret: webhook_secret.filter(|s| !s.is_empty()),
            webhooks,
            timers,
        }
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                // A redirect would take the signed request somewhere the rule did not name.
                .redirect(reqwest::redirect::Policy::none())
                .dns_resolver(Arc::new(CheckedResolver(self.webhooks.clone())))
                .build()
                .expect("an HTTP client")
        })
    }

    async fn execution(&self, tenant: &TenantId, id: &str) -> AppResult<Option<(Execution, u64)>> {
        Self::decoded(self.store.get(&keys::tenant_pk(tenant), &keys::execution_sk(id)).await?)
    }

    /// A run as read, and its version.
    fn decoded(item: Option<Item>) -> AppResult<Option<(Execution, u64)>> {
        let Some(item) = item else { return Ok(None) };
        let version = item.version;
        Ok(Some((decode(item)?, version)))
    }

    fn execution_write(tenant: &TenantId, execution: &Execution, version: u64) -> Write {
        execution_write(tenant, execution, version)
    }

    /// Takes a token of the tenant's action rate and executes the message, reading its run
    /// with the limits and the bucket (one batch read: one store round trip, not three).
    /// A delivery with nothing to do (its run not recorded yet, its action done before or
    /// waiting for its timer) spends no token, so duplicates do not slow the tenant's real
    /// work. `Ok(Some(wait))`: over the rate, nothing done; the message goes back to the
    /// queue for `wait`.
    pub async fn execute_metered(
        &self,
        limiter: &crate::app::rate_limits::RateLimiter,
        message: &ActionMessage,
    ) -> Result<Option<std::time::Duration>, ActionFailed> {
        let tenant = TenantId::parse(&message.tenant_id).map_err(|e| ActionFailed(e.to_string()))?;
        let (pk, sk) = (keys::tenant_pk(&tenant), keys::execution_sk(&message.execution_id));
        let (draw, also) = limiter.draw_with(&tenant, crate::app::rate_limits::Flow::Actions, &[(&pk, &sk)]).await;
        let run = also.map_err(AppError::from).and_then(|mut found| Self::decoded(found.pop().flatten()));
        if has_work(&run, message.action_index) {
            if let Some(wait) = draw.take().await.map_err(|e| ActionFailed(e.to_string()))? {
                return Ok(Some(wait));
            }
        }
        self.execute_from(message, Some(run)).await.map(|()| None)
    }

    /// Executes one message. `Ok` when done (now or before); `Err` to retry later.
    pub async fn execute(&self, message: &ActionMessage) -> Result<(), ActionFailed> {
        self.execute_from(message, None).await
    }

    /// [`Executor::execute`], its first attempt on the run as `read` found it (if given).
    async fn execute_from(
        &self,
        message: &ActionMessage,
        read: Option<AppResult<Option<(Execution, u64)>>>,
    ) -> Result<(), ActionFailed> {
        let fail = |e: AppError| ActionFailed(e.to_string());
        let tenant = TenantId::parse(&message.tenant_id).map_err(|e| ActionFailed(e.to_string()))?;
        let busy = || ActionFailed("the execution is changing concurrently".to_string());
        let read = FirstRead::new(read);
        optimistic_or(busy, || async {
            let run = read.or_read(|| self.execution(&tenant, &message.execution_id)).await;
            let Some((mut execution, version)) = run.map_err(fail)? else {
                return Err(ActionFailed(format!("execution {} is not recorded yet", message.execution_id)));
            };
            let Some(outcome) = execution.actions.get(message.action_index).cloned() else { return Ok(Step::Done(())) };
            if outcome.status.settled() {
                return Ok(Step::Done(())); // Done before: a duplicate delivery.
            }
            if outcome.status == ActionStatus::Waiting {
                return Ok(Step::Done(())); // Its timer queues it when it is due.
            }
            let now = crate::app::credentials::unix_now();
            if outcome.status == ActionStatus::Running
                && outcome.claimed_at.is_some_and(|at| now < at + WEBHOOK_CLAIM_SECONDS)
            {
                return Err(ActionFailed("another delivery is calling this webhook".to_string()));
            }
            let attempts = outcome.attempts + 1;
            let result = if let Action::Webhook(hook) = &message.action {
                // An outside effect cannot share our transaction: claim, call, record.
                execution.actions[message.action_index].status = ActionStatus::Running;
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
                    execution.actions[message.action_index].status = ActionStatus::Succeeded;
                    execution.actions[message.action_index].error = None;
                    execution.actions[message.action_index].result = Some(value);
                    execution.summarize();
                    let mut all = crate::app::runs::run_writes(&tenant, &mut execution, version);
                    all.extend(writes);
                    match self.store.transact(all).await {
                        Ok(()) => {
                            crate::telemetry::action(message.action.kind(), "succeeded");
                            Ok(Step::Done(()))
                        }
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
                    slot.status = ActionStatus::Succeeded;
                    slot.error = None;
                    slot.result = Some(value.clone());
                    None
                }
                Err(e) => {
                    slot.status = if slot.attempts >= MAX_ATTEMPTS { ActionStatus::Dead } else { ActionStatus::Failed };
                    slot.error = Some(clipped(e.0.clone(), MAX_ERROR_CHARS));
                    Some(e.0.clone())
                }
            };
            let outcome = execution.actions[message.action_index].status;
            execution.summarize();
            match self.store.transact(crate::app::runs::run_writes(tenant, &mut execution, version)).await {
                Ok(()) => {
                    let outcome = serde_json::to_value(outcome).ok();
                    crate::telemetry::action(
                        message.action.kind(),
                        outcome.as_ref().and_then(|v| v.as_str()).unwrap_or("?"),
                    );
                    match error {
                        Some(e) => Err(ActionFailed(e)),
                        None => Ok(Step::Done(())),
                    }
                }
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
                    status: crate::domain::tools::TaskStatus::Todo,
                    priority: fill_some(&new.priority)
                        .map(|p| crate::domain::tools::TaskPriority::from_text(&p))
                        .unwrap_or_default(),
                    rule_id: Some(message.rule_id.clone()),
                    subject: None,
                    created_by: None,
                    causation: Some(Causation {
                        depth: message.event.causation.depth + 1,
                        action_id: Some(message.action_id.clone()),
                    }),
                    created_at: now.clone(),
                    updated_at: now,
                };
                // Armed before the task is written (the same name when retried): a timer
                // for a task that never came to be finds nothing and does nothing.
                if let Some(due) = task.due_date.as_deref().and_then(crate::domain::tools::due_epoch) {
                    let timer = Timer::TaskDue { tenant_id: tenant.to_string(), task_id: task.task_id.clone(), due };
                    self.timers.set(due, &timer).await.map_err(|e| ActionFailed(format!("the due timer: {e}")))?;
                }
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
            None => crate::app::signing_keys::tenant_key(self.store.as_ref(), &tenant)
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
        let signature = crate::domain::hex::lower(&mac.finalize().into_bytes());
        let mut request = self
            .http()
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

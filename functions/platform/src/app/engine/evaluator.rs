//! The evaluator: events -> the tenant's matching rules -> run records and action messages.

use std::sync::Arc;

use crate::app::error::AppResult;
use crate::app::keys;
use crate::domain::events::{derived_id, BusinessEvent};
use crate::domain::ids::{SystemId, TenantId};
use crate::domain::matcher::CompiledRules;
use crate::domain::rules::Rule;
use crate::domain::time::now_rfc3339;
use crate::ports::queue::ActionQueue;
use crate::ports::store::{Condition, Item, Query, Store, StoreError, Write};

use super::*;

/// Events -> matching rules -> execution records + action messages.
#[derive(Clone)]
pub struct Evaluator {
    pub(super) store: Arc<dyn Store>,
    pub(super) manifests: Manifests,
    pub(super) queue: Arc<dyn ActionQueue>,
    pub(super) timers: Arc<dyn crate::ports::timers::Timers>,
    limiter: crate::app::rate_limits::RateLimiter,
    cache: RulesCache,
    rules_max_age: std::time::Duration,
    flags: crate::app::flags::FlagService,
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
        timers: Arc<dyn crate::ports::timers::Timers>,
        limiter: crate::app::rate_limits::RateLimiter,
        flags: crate::app::flags::FlagService,
    ) -> Self {
        Self { store, manifests, queue, timers, limiter, cache: Arc::default(), rules_max_age: RULES_MAX_AGE, flags }
    }

    /// The same evaluator (sharing its cache), trusting compiled rules for `age` at most.
    pub fn with_rules_max_age(mut self, age: std::time::Duration) -> Self {
        self.rules_max_age = age;
        self
    }

    /// The tenant's generation marker and rules in one read: descending from just above
    /// the marker, the marker (`RULESGEN`) comes first, then the rules (`RULE#...`); the
    /// rule versions (`RULEVER#...`) sort above the marker and are not read. The marker is
    /// read first, so a change landing during the read tags newer rules with an older
    /// generation (recompiled at the next event) rather than the other way round. (A Query
    /// is not isolated from a transaction, so this is the order of the reads, not a
    /// guarantee of one snapshot: [`RULES_MAX_AGE`] bounds how long a torn read is kept.)
    async fn generation_and_rules(&self, tenant: &TenantId) -> AppResult<(u64, Vec<Item>)> {
        let pk = keys::tenant_pk(tenant);
        let above_marker = format!("{}\u{0}", keys::RULES_GENERATION_SK);
        let items = self
            .store
            .query_all_from(Query {
                pk: &pk,
                sk_prefix: keys::RULES_PREFIX,
                limit: 500,
                after: Some(&above_marker),
                descending: true,
            })
            .await?;
        let mut generation = 0;
        let mut rules = Vec::with_capacity(items.len());
        for item in items {
            if item.sk == keys::RULES_GENERATION_SK {
                generation = item.version;
            } else if item.sk.starts_with(keys::RULE_PREFIX) {
                rules.push(item);
            }
        }
        Ok((generation, rules))
    }

    /// The tenant's active rules for a trigger, compiled once per rules generation (which
    /// moves with every rule change and every install change) and read again at
    /// [`RULES_MAX_AGE`]: an event reads the
    /// generation marker and finds its compiled rules cached, or (first event, or a change)
    /// reads the marker and the rules together, then the system's install if there are
    /// rules.
    pub async fn rules_for(&self, tenant: &TenantId, module: &str, trigger: &str) -> AppResult<Arc<TriggerRules>> {
        let key = (tenant.to_string(), module.to_string(), trigger.to_string());
        let cached = self.cache.lock().expect("lock").get(&key).cloned();
        if let Some((cached_gen, read_at, compiled)) = cached {
            if read_at.elapsed() < self.rules_max_age
                && crate::app::rules_generation::current(self.store.as_ref(), tenant).await? == cached_gen
            {
                return Ok(compiled);
            }
        }
        let read_at = std::time::Instant::now();
        let (generation, items) = self.generation_and_rules(tenant).await?;
        let rules: Vec<Rule> = items
            .into_iter()
            .filter_map(|i| serde_json::from_value::<Rule>(i.data).ok())
            .filter(|r| r.is_active && r.module_type == module && r.trigger_id == trigger)
            .collect();
        // The install only when there are rules to compile: most triggers have none, and
        // reading it alongside the rules would spend a read on each of their cache misses.
        let system = SystemId::parse(module).ok();
        let installed = match &system {
            Some(system) if !rules.is_empty() => self.manifests.installed(tenant, system).await?,
            _ => None,
        };
        let declared = installed.as_ref().and_then(|v| v.triggers.iter().find(|t| t.id == trigger).map(|t| (v, t)));
        // Which top-level pattern fields are the data's (rather than the envelope's).
        let fields = declared.map(|(v, t)| crate::domain::events::trigger_fields(v, t).fields);
        let entity = declared.and_then(|(_, t)| Some(format!("{}/{}", system.as_ref()?, t.entity.as_ref()?)));
        let compiled =
            Arc::new(TriggerRules { rules: CompiledRules::new(rules, &fields.unwrap_or_default(), module), entity });
        self.cache.lock().expect("lock").insert(key, (generation, read_at, compiled.clone()));
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
        let entity = compiled.entity.clone();
        let too_deep = event.causation.depth > MAX_CAUSATION_DEPTH;
        let now = now_rfc3339();
        let now_epoch = crate::domain::time::unix_now() as i64;
        let occurred = crate::domain::timing::epoch_of(&event.occurred_at).unwrap_or(now_epoch);
        let record = delays::record_of(entity.as_deref(), event);
        let mut planned = Vec::new();
        // A scheduled rule's firing is that rule's alone.
        let only = (event.module_type == crate::domain::rules::SCHEDULE_MODULE)
            .then(|| event.data.get("rule_id").and_then(|v| v.as_str()).unwrap_or_default());
        let mut flags_on = std::collections::BTreeSet::new();
        for flag in compiled.flags() {
            if self.flags.enabled_for_tenant(&tenant, flag).await? {
                flags_on.insert(flag.clone());
            }
        }
        for rule in compiled.matching_with(event, &flags_on).into_iter().filter(|r| only.is_none_or(|id| r.id == id)) {
            let execution_id = execution_id(event, &rule.id);
            let actions = rule
                .actions
                .iter()
                .enumerate()
                .map(|(index, action)| {
                    // A delayed action waits for its time (or is skipped when it has none).
                    let due = action.delay.as_ref().map(|d| d.due(occurred, &event.data));
                    let (status, due_at, error) = match due {
                        _ if too_deep => (ActionStatus::Skipped, None, None),
                        Some(Err(why)) => (ActionStatus::Skipped, None, Some(why)),
                        Some(Ok(at)) if at > now_epoch => {
                            (ActionStatus::Waiting, Some(crate::domain::timing::rfc3339_of(at)), None)
                        }
                        _ => (ActionStatus::Pending, None, None),
                    };
                    ActionOutcome {
                        index,
                        kind: action.action.kind().to_string(),
                        action_id: derived_id(&[&event.event_id, &rule.id, &index.to_string()]),
                        status,
                        attempts: 0,
                        error,
                        result: None,
                        due_at,
                        claimed_at: None,
                    }
                })
                .collect();
            let mut execution = Execution {
                execution_id: execution_id.clone(),
                rule_id: rule.id.clone(),
                rule_name: rule.name.clone(),
                event: event.clone(),
                // A rule matches when every one of its conditions held.
                conditions: rule.conditions.iter().map(|c| ConditionResult::of(c, true)).collect(),
                status: if too_deep { RunStatus::Stopped } else { RunStatus::Pending },
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
            if !too_deep {
                execution.summarize();
            }
            let runs_now = execution.actions.iter().any(|a| a.status == ActionStatus::Pending);
            let marker = (!too_deep && runs_now)
                .then(|| crate::app::runs::with_deadline(&tenant, &mut execution, crate::domain::time::unix_now()));
            let waits = delays::wait_writes(&tenant, &execution, record.as_ref());
            let item = Item::new(
                keys::tenant_pk(&tenant),
                keys::execution_sk(&execution_id),
                1,
                serde_json::to_value(&execution).expect("serializes"),
            )
            .expiring(run_expiry());
            let writes: Vec<Write> = std::iter::once(Write::Put { item, condition: Condition::Absent })
                .chain(marker.into_iter().flatten())
                .chain(waits)
                .collect();
            planned.push((execution, writes));
        }
        // Over the tenant's event rate, the runs' actions wait their turn in the queue. The
        // token is taken while the runs are written (a round trip fewer): when the event turns
        // out to be a duplicate whose actions are done, the token was spent on nothing.
        let runs_now =
            !too_deep && planned.iter().any(|(e, _)| e.actions.iter().any(|a| a.status == ActionStatus::Pending));
        let record_all = async {
            let mut recorded = Vec::with_capacity(planned.len());
            for (execution, writes) in planned {
                recorded.push(self.record(&tenant, execution, writes).await?);
            }
            Ok::<_, crate::app::error::AppError>(recorded)
        };
        let token = async {
            match runs_now {
                true => self.limiter.take(&tenant, crate::app::rate_limits::Flow::Events).await,
                false => Ok(None),
            }
        };
        let (recorded, token) = tokio::join!(record_all, token);
        let mut messages = Vec::new();
        let mut timers = Vec::new();
        let mut ids = Vec::new();
        for execution in recorded? {
            if !too_deep {
                messages.extend(execution.messages(|a| a.status == ActionStatus::Pending));
                timers.extend(delays::timers_of(&execution));
            }
            ids.push(execution.execution_id);
        }
        let wait = token?.unwrap_or_default();
        for (at, timer) in timers {
            self.timers.set(at, &timer).await.map_err(delivery)?;
        }
        crate::telemetry::evaluated(&event.module_type, ids.len());
        if !messages.is_empty() {
            if !wait.is_zero() {
                tracing::info!(tenant = %tenant, wait_ms = wait.as_millis() as u64, "event rate exceeded; its actions are delayed");
            }
            self.queue.enqueue_after(messages, wait).await.map_err(delivery)?;
        }
        Ok(ids)
    }

    /// Writes a new run; when an earlier delivery of the event recorded it already, the run
    /// as recorded then (its messages and timers are sent again from it: idempotent).
    async fn record(&self, tenant: &TenantId, execution: Execution, writes: Vec<Write>) -> AppResult<Execution> {
        match self.store.transact(writes).await {
            Ok(()) => Ok(execution),
            Err(StoreError::ConditionFailed { index: 0 }) => {
                let (pk, sk) = (keys::tenant_pk(tenant), keys::execution_sk(&execution.execution_id));
                match self.store.get(&pk, &sk).await? {
                    Some(item) => Ok(crate::app::stored::decode_at(&item.pk, &item.sk, item.data)?),
                    None => Ok(execution),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

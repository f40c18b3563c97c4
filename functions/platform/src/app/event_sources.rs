//! Events from other AWS services (and a tenant's own AWS accounts), natively: a tenant
//! registers a source (its account, the `source` and `detail-type` it wants, optionally a
//! pattern that pre-filters), proves it owns the account by putting a challenge event on
//! the platform bus from it, and from then on native events of that account and source
//! run the tenant's rules of the `aws` module (trigger `<source>:<detail-type>`), matched
//! on the event as it came. An account belongs to one tenant only. Events of accounts
//! that belong to no tenant, or of sources nobody registered, are dropped and counted.
//!
//! Keys: the tenant's registrations `EVSOURCE#<id>` in its partition; the challenge by
//! the digest of its token (`AWSCHALLENGE`); the account's owner (`AWSACCOUNT#<account>`,
//! `OWNER`); dropped events by account (`AWSUNMAPPED`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::audit::{self, Actor, Change};
use super::credentials::{random_secret, sha256_hex};
use super::error::{AppError, AppResult};
use super::keys;
use super::page::{get_typed, Listed};
use super::stored::{decode_at, optimistic, Step};
use crate::domain::events::{derived_id, BusinessEvent, NativeEnvelope};
use crate::domain::ids::TenantId;
use crate::domain::invalid::{FieldIssue, Invalid};
use crate::domain::time::{now_rfc3339, unix_now};
use crate::ports::store::{Condition, Item, Store, StoreError, Write};

/// The module of native events' rules.
pub const AWS_MODULE: &str = "aws";
/// The `detail-type` of the event that proves an account.
pub const CHALLENGE_DETAIL_TYPE: &str = "Platform Account Verification";
/// How long a challenge may be answered.
const CHALLENGE_SECONDS: u64 = 7 * 24 * 3600;

const CHALLENGE_PK: &str = "AWSCHALLENGE";
const UNMAPPED_PK: &str = "AWSUNMAPPED";
const SOURCE_PREFIX: &str = "EVSOURCE#";

fn owner_pk(account: &str) -> String {
    format!("AWSACCOUNT#{account}")
}

/// Whether the account is proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    /// Waiting for the challenge event from the account.
    Pending,
    /// The account is the tenant's: its events run the tenant's rules.
    Verified,
}

/// What a tenant writes to register a source.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventSourceInput {
    /// The AWS account the events come from (12 digits).
    pub account: String,
    /// EventBridge `source`, e.g. `aws.s3`.
    pub source: String,
    /// EventBridge `detail-type`, e.g. `Object Created`.
    pub detail_type: String,
    /// An EventBridge pattern the native event must match (e.g. one bucket).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub pattern: Option<Value>,
}

/// A registered source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventSource {
    pub source_id: String,
    pub account: String,
    pub source: String,
    pub detail_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub pattern: Option<Value>,
    pub status: SourceStatus,
    /// The trigger of the `aws` module its events fire.
    pub trigger_id: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<String>,
}

/// A new registration, with the challenge shown only now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RegisteredSource {
    #[serde(flatten)]
    pub source: EventSource,
    /// Put this entry on the platform bus from the account (e.g. `aws events put-events
    /// --entries file://challenge.json`) to prove it is yours.
    #[schema(value_type = Value)]
    pub challenge: Value,
}

/// Events dropped because their account belongs to no tenant (or their source to no registration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Unmapped {
    pub account: String,
    pub count: u64,
    pub last_source: String,
    pub last_detail_type: String,
    pub last_seen: String,
}

/// Routes a bus event that is not the platform's own to its tenant and evaluates it (or
/// proves an account, or drops it). Answers the runs started.
pub async fn evaluate_native<O: crate::ports::Outside>(
    services: &super::Services<O>,
    event: &NativeEvent,
) -> AppResult<usize> {
    match services.event_sources().route(event).await? {
        Routed::Event(business) => Ok(services.evaluator().evaluate(&business).await?.len()),
        Routed::Challenge | Routed::Dropped => Ok(0),
    }
}

/// The trigger id of a source's events.
pub fn trigger_id(source: &str, detail_type: &str) -> String {
    format!("{source}:{detail_type}")
}

/// A native EventBridge event, as the bus delivers it.
#[derive(Debug, Clone, Deserialize)]
pub struct NativeEvent {
    pub id: String,
    pub source: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub time: String,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub detail: Value,
}

impl NativeEvent {
    /// The event as patterns see it: EventBridge's JSON.
    fn as_json(&self) -> Value {
        json!({"version": "0", "id": self.id, "source": self.source, "detail-type": self.detail_type,
            "account": self.account, "region": self.region, "time": self.time, "resources": self.resources,
            "detail": self.detail})
    }
}

/// What became of a native event.
#[derive(Debug, Clone, PartialEq)]
pub enum Routed {
    /// The tenant's business event, to evaluate.
    Event(Box<BusinessEvent>),
    /// A challenge that proved (or failed to prove) an account.
    Challenge,
    /// Dropped and counted: the account is no tenant's, or the source is not registered.
    Dropped,
}

#[derive(Clone)]
pub struct EventSourceService {
    store: Arc<dyn Store>,
}

fn check(input: &EventSourceInput) -> Result<(), Invalid> {
    let mut issues = Vec::new();
    if input.account.len() != 12 || !input.account.bytes().all(|b| b.is_ascii_digit()) {
        issues.push(FieldIssue::new("account", "must be an AWS account id (12 digits)"));
    }
    let printable = |s: &str| !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control);
    if !printable(&input.source) || input.source.starts_with("platform.") {
        issues.push(FieldIssue::new("source", "must be an EventBridge source (1-256 characters, not platform.*)"));
    }
    if !printable(&input.detail_type) || input.detail_type == CHALLENGE_DETAIL_TYPE {
        issues.push(FieldIssue::new("detail_type", "must be an EventBridge detail-type (1-256 characters)"));
    }
    if let Some(pattern) = &input.pattern {
        if let Err(found) = crate::domain::pattern::parse(pattern, "pattern") {
            issues.extend(found.0);
        }
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(Invalid(issues))
    }
}

impl EventSourceService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    pub async fn register(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        input: EventSourceInput,
    ) -> AppResult<RegisteredSource> {
        check(&input)?;
        let id = ulid::Ulid::generate().to_string().to_lowercase();
        let owner = self.owner(&input.account).await?;
        if owner.as_ref().is_some_and(|o| o != tenant.as_str()) {
            // Said without naming the other tenant.
            return Err(Invalid::one("account", "this account belongs to another tenant").into());
        }
        let status = if owner.is_some() { SourceStatus::Verified } else { SourceStatus::Pending };
        let now = now_rfc3339();
        let source = EventSource {
            source_id: id.clone(),
            account: input.account.clone(),
            trigger_id: trigger_id(&input.source, &input.detail_type),
            source: input.source,
            detail_type: input.detail_type,
            pattern: input.pattern,
            status,
            created_at: now.clone(),
            verified_at: (status == SourceStatus::Verified).then_some(now),
        };
        let token = random_secret();
        let challenge = Item::new(
            CHALLENGE_PK,
            sha256_hex(&token),
            1,
            json!({"tenant_id": tenant, "account": source.account, "source_id": id}),
        )
        .expiring(unix_now() + CHALLENGE_SECONDS);
        let mut writes = vec![Write::create(keys::tenant_pk(tenant), format!("{SOURCE_PREFIX}{id}"), &source)];
        if status == SourceStatus::Pending {
            writes.push(Write::Put { item: challenge, condition: Condition::Absent });
        }
        writes.push(audit::record(
            actor,
            Some(tenant),
            Change::new("automation.source.register", format!("event-source:{id}")).after(json!(source)),
        ));
        self.store.transact(writes).await?;
        let challenge = json!({"Source": "account.verification", "DetailType": CHALLENGE_DETAIL_TYPE,
            "Detail": json!({"challenge": token}).to_string(), "EventBusName": "<the platform bus ARN>"});
        Ok(RegisteredSource {
            source,
            challenge: if status == SourceStatus::Pending { challenge } else { Value::Null },
        })
    }

    pub async fn list(&self, tenant: &TenantId) -> AppResult<Listed<EventSource>> {
        let items = self.store.query_all(&keys::tenant_pk(tenant), SOURCE_PREFIX).await?;
        let items = items.into_iter().map(|i| decode_at(&i.pk, &i.sk, i.data)).collect::<AppResult<Vec<_>>>()?;
        Ok(Listed { items, next_cursor: None })
    }

    pub async fn remove(&self, actor: &Actor, tenant: &TenantId, id: &str) -> AppResult<()> {
        let sk = format!("{SOURCE_PREFIX}{id}");
        let (source, version): (EventSource, u64) =
            get_typed(self.store.as_ref(), &keys::tenant_pk(tenant), &sk, || {
                AppError::NotFound(format!("event source '{id}' does not exist"))
            })
            .await?;
        let writes = vec![
            Write::Delete { pk: keys::tenant_pk(tenant), sk, condition: Condition::Version(version) },
            audit::record(
                actor,
                Some(tenant),
                Change::new("automation.source.remove", format!("event-source:{id}")).before(json!(source)),
            ),
        ];
        self.store.transact(writes).await?;
        Ok(())
    }

    async fn owner(&self, account: &str) -> AppResult<Option<String>> {
        let item = self.store.get(&owner_pk(account), "OWNER").await?;
        Ok(item.and_then(|i| i.data["tenant_id"].as_str().map(str::to_string)))
    }

    /// The dropped events by account, most recent first.
    pub async fn unmapped(&self) -> AppResult<Vec<Unmapped>> {
        let items = self.store.query_all(UNMAPPED_PK, "").await?;
        let mut all: Vec<Unmapped> =
            items.into_iter().map(|i| decode_at(&i.pk, &i.sk, i.data)).collect::<AppResult<Vec<_>>>()?;
        all.sort_by(|a, b| b.last_seen.cmp(&a.last_seen));
        Ok(all)
    }

    /// Maps a native event to its tenant's business event, or proves an account, or drops
    /// (and counts) it.
    pub async fn route(&self, event: &NativeEvent) -> AppResult<Routed> {
        if event.detail_type == CHALLENGE_DETAIL_TYPE {
            self.answer(event).await?;
            return Ok(Routed::Challenge);
        }
        let Some(owner) = self.owner(&event.account).await? else {
            self.count_dropped(event).await?;
            return Ok(Routed::Dropped);
        };
        let tenant = TenantId::parse(&owner).map_err(|e| AppError::Internal(e.to_string()))?;
        let sources = self.list(&tenant).await?.items;
        let whole = event.as_json();
        let registered = sources.iter().find(|s| {
            s.status == SourceStatus::Verified
                && s.account == event.account
                && s.source == event.source
                && s.detail_type == event.detail_type
                && s.pattern.as_ref().is_none_or(|p| {
                    crate::domain::pattern::parse(p, "pattern")
                        .is_ok_and(|p| p.matches(crate::domain::pattern::At::Json(&whole)))
                })
        });
        let Some(registered) = registered else {
            self.count_dropped(event).await?;
            return Ok(Routed::Dropped);
        };
        let data = match &event.detail {
            Value::Object(map) => map.clone(),
            other => Map::from_iter([("detail".to_string(), other.clone())]),
        };
        Ok(Routed::Event(Box::new(BusinessEvent {
            event_id: derived_id(&[&event.account, &event.id]),
            tenant_id: tenant.to_string(),
            module_type: AWS_MODULE.to_string(),
            trigger_id: registered.trigger_id.clone(),
            occurred_at: if event.time.is_empty() { now_rfc3339() } else { event.time.clone() },
            data,
            changes: Map::new(),
            causation: Default::default(),
            native: Some(NativeEnvelope {
                source: event.source.clone(),
                detail_type: event.detail_type.clone(),
                account: event.account.clone(),
                region: event.region.clone(),
                resources: json!(event.resources),
            }),
        })))
    }

    /// A challenge event: the account (as EventBridge stamped it, which the sender cannot
    /// choose) becomes the tenant's if it is no other tenant's.
    async fn answer(&self, event: &NativeEvent) -> AppResult<()> {
        let Some(token) = event.detail.get("challenge").and_then(Value::as_str) else { return Ok(()) };
        let Some(challenge) = self.store.get(CHALLENGE_PK, &sha256_hex(token)).await? else {
            tracing::warn!(account = %event.account, "a challenge nobody issued (or expired)");
            return Ok(());
        };
        let (Some(tenant), Some(account), Some(source_id)) = (
            challenge.data["tenant_id"].as_str().and_then(|t| TenantId::parse(t).ok()),
            challenge.data["account"].as_str(),
            challenge.data["source_id"].as_str(),
        ) else {
            return Ok(());
        };
        if account != event.account {
            tracing::warn!(claimed = %account, from = %event.account, "a challenge answered from another account");
            return Ok(());
        }
        let pk = keys::tenant_pk(&tenant);
        let sk = format!("{SOURCE_PREFIX}{source_id}");
        let Some(item) = self.store.get(&pk, &sk).await? else { return Ok(()) };
        let version = item.version;
        let mut source: EventSource = decode_at(&item.pk, &item.sk, item.data)?;
        source.status = SourceStatus::Verified;
        source.verified_at = Some(now_rfc3339());
        let owner = self.owner(account).await?;
        if owner.as_deref().is_some_and(|o| o != tenant.as_str()) {
            tracing::warn!(account = %account, "a challenge for an account another tenant owns");
            return Ok(());
        }
        let mut writes = vec![
            Write::replace(pk, sk, version, &source),
            Write::Delete { pk: CHALLENGE_PK.into(), sk: sha256_hex(token), condition: Condition::None },
            audit::record(
                &Actor::system("event-sources"),
                Some(&tenant),
                Change::new("automation.source.verify", format!("event-source:{source_id}"))
                    .after(json!({"account": account})),
            ),
        ];
        if owner.is_none() {
            let claim = Item::new(owner_pk(account), "OWNER", 1, json!({"tenant_id": tenant, "since": now_rfc3339()}));
            writes.push(Write::Put { item: claim, condition: Condition::Absent });
        }
        match self.store.transact(writes).await {
            // Someone else's claim won the race, or this was already done: nothing changes.
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn count_dropped(&self, event: &NativeEvent) -> AppResult<()> {
        tracing::warn!(account = %event.account, source = %event.source, detail_type = %event.detail_type,
            "a native event of no tenant's registered source is dropped");
        let account = if event.account.is_empty() { "unknown".to_string() } else { event.account.clone() };
        optimistic("the dropped-events counter is busy", || async {
            let current = self.store.get(UNMAPPED_PK, &account).await?;
            let count = current.as_ref().and_then(|i| i.data["count"].as_u64()).unwrap_or(0) + 1;
            let entry = Unmapped {
                account: account.clone(),
                count,
                last_source: event.source.clone(),
                last_detail_type: event.detail_type.clone(),
                last_seen: now_rfc3339(),
            };
            let write = match &current {
                Some(item) => Write::replace(UNMAPPED_PK, account.clone(), item.version, &entry),
                None => Write::create(UNMAPPED_PK, account.clone(), &entry),
            };
            match self.store.transact(vec![write]).await {
                Ok(()) => Ok(Step::Done(())),
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Ok(Step::Retry),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }
}

//! Dead letters: what a stage gave up on, kept with the reason in one place, whichever
//! stage or queue it came from (the local queue and feed; on AWS the action queue's DLQ,
//! the evaluator's DLQ and the stream's on-failure queue, read by the `dead-letters`
//! function). The platform operator lists them, replays them into the stage they left,
//! or discards them; a dead-lettered action also shows as `dead` in its run, where the
//! tenant sees it and may retry it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::audit::{self, Actor, Change};
use super::engine::Publisher;
use super::error::{AppError, AppResult};
use super::keys;
use super::page::{scan_filtered, Listed, PageRequest};
use super::runs::Runs;
use super::stored::decode_at;
use crate::domain::events::BusinessEvent;
use crate::domain::time::now_rfc3339;
use crate::ports::feed::StoreChange;
use crate::ports::queue::{ActionMessage, ActionQueue, EventBus};
use crate::ports::store::{Condition, Item, Query, Store, Write};

/// How long dead letters are kept (as long as an SQS dead-letter queue keeps messages).
pub const DEAD_LETTER_RETENTION_SECONDS: u64 = 14 * 24 * 3600;

/// A stored item as a change carried it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ItemImage {
    pub pk: String,
    pub sk: String,
    pub version: u64,
    #[schema(value_type = Value)]
    pub data: Value,
}

impl ItemImage {
    fn of(item: &Item) -> Self {
        Self { pk: item.pk.clone(), sk: item.sk.clone(), version: item.version, data: item.data.clone() }
    }

    fn item(&self) -> Item {
        Item::new(self.pk.clone(), self.sk.clone(), self.version, self.data.clone())
    }
}

/// What was given up on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum Parked {
    /// An action message that used up its deliveries: replay queues it again.
    #[schema(value_type = Object)]
    Action(Box<ActionMessage>),
    /// A business event the evaluator could not take: replay publishes it again.
    Event(BusinessEvent),
    /// A store change whose events could not be published: replay publishes them.
    Change { old: Option<ItemImage>, new: Option<ItemImage> },
    /// A message nobody could read, as it came (kept for inspection; not replayable).
    #[schema(value_type = Value)]
    Unreadable(Value),
}

impl Parked {
    pub fn change(change: &StoreChange) -> Self {
        Parked::Change { old: change.old.as_ref().map(ItemImage::of), new: change.new.as_ref().map(ItemImage::of) }
    }

    fn tenant(&self) -> Option<String> {
        match self {
            Parked::Action(m) => Some(m.tenant_id.clone()),
            Parked::Event(e) => Some(e.tenant_id.clone()),
            Parked::Change { old, new } => {
                new.as_ref().or(old.as_ref()).and_then(|i| keys::parse_tenant_pk(&i.pk)).map(str::to_string)
            }
            Parked::Unreadable(_) => None,
        }
    }
}

/// One dead letter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub dead_letter_id: String,
    /// The tenant it belongs to, when it can be told.
    pub tenant_id: Option<String>,
    /// Where it was given up: `action_queue`, `event_bus`, `change_feed`, ...
    pub source: String,
    /// Why it was given up (the last error).
    pub reason: String,
    pub parked_at: String,
    #[serde(flatten)]
    pub parked: Parked,
}

impl DeadLetter {
    pub fn new(source: &str, reason: &str, parked: Parked) -> Self {
        Self {
            dead_letter_id: ulid::Ulid::generate().to_string(),
            tenant_id: parked.tenant(),
            source: source.to_string(),
            reason: crate::domain::limits::clipped(reason.to_string(), crate::domain::limits::MAX_ERROR_CHARS),
            parked_at: now_rfc3339(),
            parked,
        }
    }

    /// The write that keeps it (for callers that move it out of a queue in the same transaction).
    /// As the operator sees it: an action's secrets masked.
    pub fn redacted(mut self) -> Self {
        if let Parked::Action(message) = &mut self.parked {
            message.action = message.action.redacted();
        }
        self
    }

    pub fn write(&self) -> Write {
        Write::create(keys::DEAD_LETTER_PK, &self.dead_letter_id, self)
            .expiring(crate::domain::time::unix_now() + DEAD_LETTER_RETENTION_SECONDS)
    }
}

/// Filters of the operator's list.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    pub tenant_id: Option<String>,
    pub source: Option<String>,
}

#[derive(Clone)]
pub struct DeadLetterService {
    store: Arc<dyn Store>,
    queue: Arc<dyn ActionQueue>,
    bus: Arc<dyn EventBus>,
    publisher: Publisher,
    runs: Runs,
}

impl DeadLetterService {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn ActionQueue>,
        bus: Arc<dyn EventBus>,
        publisher: Publisher,
        runs: Runs,
    ) -> Self {
        Self { store, queue, bus, publisher, runs }
    }

    /// Keeps a dead letter; an action's run records it as `dead` with the reason.
    pub async fn park(&self, letter: DeadLetter) -> AppResult<()> {
        tracing::error!(source = %letter.source, reason = %letter.reason, id = %letter.dead_letter_id, "dead letter parked");
        if let Parked::Action(message) = &letter.parked {
            self.runs.give_up(message, &letter.reason).await?;
        }
        self.store.transact(vec![letter.write()]).await?;
        Ok(())
    }

    /// Oldest first.
    pub async fn list(&self, filter: &DeadLetterFilter, page: &PageRequest) -> AppResult<Listed<DeadLetter>> {
        scan_filtered(self.store.as_ref(), Query::new(keys::DEAD_LETTER_PK, ""), page, |item| {
            let letter: DeadLetter = decode_at(&item.pk, &item.sk, item.data)?;
            let wanted = filter.tenant_id.as_ref().is_none_or(|t| letter.tenant_id.as_ref() == Some(t))
                && filter.source.as_ref().is_none_or(|s| &letter.source == s);
            Ok(Some(letter.redacted()).filter(|_| wanted))
        })
        .await
    }

    async fn get(&self, id: &str) -> AppResult<(DeadLetter, u64)> {
        let missing = || AppError::NotFound(format!("dead letter '{id}' does not exist"));
        let item = self.store.get(keys::DEAD_LETTER_PK, id).await?.ok_or_else(missing)?;
        Ok((decode_at(&item.pk, &item.sk, item.data)?, item.version))
    }

    /// Sends it back into the stage it left, then forgets it. An action's run is set
    /// back to `pending` for it.
    pub async fn replay(&self, actor: &Actor, id: &str) -> AppResult<DeadLetter> {
        let (letter, version) = self.get(id).await?;
        match &letter.parked {
            Parked::Action(message) => {
                self.runs.reopen(message).await?;
                self.queue
                    .enqueue(vec![(**message).clone()])
                    .await
                    .map_err(|e| AppError::Unavailable(e.to_string()))?;
            }
            Parked::Event(event) => {
                self.bus.publish(vec![event.clone()]).await.map_err(|e| AppError::Unavailable(e.to_string()))?;
            }
            Parked::Change { old, new } => {
                let change = StoreChange {
                    seq: 0,
                    old: old.as_ref().map(ItemImage::item),
                    new: new.as_ref().map(ItemImage::item),
                };
                self.publisher.publish(std::slice::from_ref(&change)).await?;
            }
            Parked::Unreadable(_) => {
                return Err(AppError::conflict_with(
                    "an unreadable message cannot be replayed; inspect it and discard it",
                    "kind",
                    json!("unreadable"),
                ))
            }
        }
        self.forget(actor, &letter, version, "operations.dead_letter.replay").await?;
        Ok(letter.redacted())
    }

    /// Forgets it without replaying.
    pub async fn discard(&self, actor: &Actor, id: &str) -> AppResult<()> {
        let (letter, version) = self.get(id).await?;
        self.forget(actor, &letter, version, "operations.dead_letter.discard").await
    }

    async fn forget(&self, actor: &Actor, letter: &DeadLetter, version: u64, action: &str) -> AppResult<()> {
        let target = format!("dead_letter:{}", letter.dead_letter_id);
        let summary = json!({"source": letter.source, "tenant_id": letter.tenant_id, "reason": letter.reason});
        self.store
            .transact(vec![
                Write::Delete {
                    pk: keys::DEAD_LETTER_PK.to_string(),
                    sk: letter.dead_letter_id.clone(),
                    condition: Condition::Version(version),
                },
                audit::record(actor, None, Change::new(action, target).before(summary)),
            ])
            .await?;
        Ok(())
    }
}

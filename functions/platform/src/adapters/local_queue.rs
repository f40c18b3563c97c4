//! The local action queue: durable messages in the store (so they survive a restart),
//! ordered by when they become visible, leased while worked on, retried with backoff
//! and dead-lettered after too many attempts. Same semantics as SQS with a redrive policy.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::app::dead_letters::{DeadLetter, Parked};
use crate::app::keys;
use crate::ports::queue::{ActionMessage, ActionQueue, DeliveryError};
use crate::ports::store::{Condition, Item, Query, Store, StoreError, Write};

/// The dead letters' `source` for what this queue gives up.
const SOURCE: &str = "action_queue";

/// The most messages [`StoreQueue::backlog`] counts.
pub const BACKLOG_COUNT_LIMIT: usize = 1_000;

/// How long a received message stays invisible to other workers.
const LEASE_MS: u64 = 30_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Envelope {
    message: ActionMessage,
    /// Deliveries so far.
    receives: u32,
    last_error: Option<String>,
}

/// A received message: ack it when done, nack it to retry.
#[derive(Debug, Clone)]
pub struct Leased {
    pub message: ActionMessage,
    pub receives: u32,
    item: Item,
}

#[derive(Clone)]
pub struct StoreQueue {
    store: Arc<dyn Store>,
    max_receives: u32,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn sk(visible_at_ms: u64, action_id: &str) -> String {
    format!("{visible_at_ms:015}#{action_id}")
}

fn err(e: StoreError) -> DeliveryError {
    DeliveryError(e.to_string())
}

impl StoreQueue {
    pub fn new(store: Arc<dyn Store>, max_receives: u32) -> Self {
        Self { store, max_receives }
    }

    /// Up to `max` visible messages, each leased for [`LEASE_MS`].
    pub async fn receive(&self, max: usize) -> Result<Vec<Leased>, DeliveryError> {
        let now = now_ms();
        let page = self.store.query(Query { limit: max, ..Query::new(keys::QUEUE_PK, "") }).await.map_err(err)?;
        let mut leased = Vec::new();
        for item in page.items {
            let visible_at: u64 = item.sk.split('#').next().and_then(|t| t.parse().ok()).unwrap_or(0);
            if visible_at > now {
                break;
            }
            let mut envelope = match serde_json::from_value::<Envelope>(item.data.clone()) {
                Ok(envelope) => envelope,
                Err(e) => {
                    // A message nobody can read would block the head of the queue forever.
                    self.set_aside(&item, &format!("not an action message: {e}")).await?;
                    continue;
                }
            };
            envelope.receives += 1;
            let moved = Item::new(
                keys::QUEUE_PK,
                sk(now + LEASE_MS, &envelope.message.action_id),
                1,
                serde_json::to_value(&envelope).expect("serializes"),
            );
            let writes = vec![
                Write::Delete { pk: item.pk.clone(), sk: item.sk.clone(), condition: Condition::Version(item.version) },
                Write::Put { item: moved.clone(), condition: Condition::None },
            ];
            match self.store.transact(writes).await {
                Ok(()) => leased.push(Leased { message: envelope.message, receives: envelope.receives, item: moved }),
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => continue, // another worker took it
                Err(e) => return Err(err(e)),
            }
        }
        Ok(leased)
    }

    /// The backlog: messages queued (counted up to [`BACKLOG_COUNT_LIMIT`]) and how long
    /// the oldest visible one has waited since it became visible, in seconds.
    pub async fn backlog(&self) -> Result<(usize, f64), DeliveryError> {
        let now = now_ms();
        let page = self
            .store
            .query(Query { limit: BACKLOG_COUNT_LIMIT, ..Query::new(keys::QUEUE_PK, "") })
            .await
            .map_err(err)?;
        let oldest = page.items.first().and_then(|item| item.sk.split('#').next()?.parse::<u64>().ok());
        let age = oldest.filter(|at| *at <= now).map_or(0.0, |at| (now - at) as f64 / 1000.0);
        Ok((page.items.len(), age))
    }

    /// Moves an unreadable message to the dead letters, with the reason, as it was.
    async fn set_aside(&self, item: &Item, reason: &str) -> Result<(), DeliveryError> {
        tracing::error!(sk = %item.sk, reason, "a queued message is set aside");
        let letter = DeadLetter::new(SOURCE, reason, Parked::Unreadable(item.data.clone()));
        let writes = vec![
            Write::Delete { pk: item.pk.clone(), sk: item.sk.clone(), condition: Condition::Version(item.version) },
            letter.write(),
        ];
        match self.store.transact(writes).await {
            Ok(()) | Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    pub async fn ack(&self, leased: &Leased) -> Result<(), DeliveryError> {
        let delete =
            Write::Delete { pk: leased.item.pk.clone(), sk: leased.item.sk.clone(), condition: Condition::None };
        self.store.transact(vec![delete]).await.map_err(err)
    }

    /// Makes it visible again after an exponential backoff, or, after its last receive,
    /// moves it to the dead letters: then it answers `true` (the caller marks its run).
    pub async fn nack(&self, leased: &Leased, error: &str) -> Result<bool, DeliveryError> {
        let dead = leased.receives >= self.max_receives;
        let target = if dead {
            let reason = format!("gave up after {} receives: {error}", leased.receives);
            DeadLetter::new(SOURCE, &reason, Parked::Action(Box::new(leased.message.clone()))).write()
        } else {
            let envelope = Envelope {
                message: leased.message.clone(),
                receives: leased.receives,
                last_error: Some(error.to_string()),
            };
            let backoff = 200u64 << leased.receives.min(10);
            let item = Item::new(
                keys::QUEUE_PK,
                sk(now_ms() + backoff, &leased.message.action_id),
                1,
                serde_json::to_value(&envelope).expect("serializes"),
            );
            Write::Put { item, condition: Condition::None }
        };
        let writes = vec![
            Write::Delete { pk: leased.item.pk.clone(), sk: leased.item.sk.clone(), condition: Condition::None },
            target,
        ];
        self.store.transact(writes).await.map_err(err)?;
        Ok(dead)
    }

    /// Puts it back, visible after `delay`, without counting the receive (for work that
    /// was not tried: the rate limiter said wait).
    pub async fn defer(&self, leased: &Leased, delay: std::time::Duration) -> Result<(), DeliveryError> {
        let envelope =
            Envelope { message: leased.message.clone(), receives: leased.receives.saturating_sub(1), last_error: None };
        let item = Item::new(
            keys::QUEUE_PK,
            sk(now_ms() + delay.as_millis() as u64, &leased.message.action_id),
            1,
            serde_json::to_value(&envelope).expect("serializes"),
        );
        let writes = vec![
            Write::Delete { pk: leased.item.pk.clone(), sk: leased.item.sk.clone(), condition: Condition::None },
            Write::Put { item, condition: Condition::None },
        ];
        self.store.transact(writes).await.map_err(err)
    }

    /// Action messages given up on, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<ActionMessage>, DeliveryError> {
        let items = self.store.query_all(keys::DEAD_LETTER_PK, "").await.map_err(err)?;
        Ok(items
            .into_iter()
            .filter_map(|i| serde_json::from_value::<DeadLetter>(i.data).ok())
            .filter_map(|letter| match letter.parked {
                Parked::Action(message) => Some(*message),
                _ => None,
            })
            .collect())
    }
}

#[async_trait]
impl ActionQueue for StoreQueue {
    async fn enqueue_after(
        &self,
        messages: Vec<ActionMessage>,
        delay: std::time::Duration,
    ) -> Result<(), DeliveryError> {
        let now = now_ms() + delay.min(crate::ports::queue::MAX_DELAY).as_millis() as u64;
        for chunk in messages.chunks(25) {
            let writes = chunk
                .iter()
                .map(|message| {
                    let envelope = Envelope { message: message.clone(), receives: 0, last_error: None };
                    Write::Put {
                        item: Item::new(
                            keys::QUEUE_PK,
                            sk(now, &message.action_id),
                            1,
                            serde_json::to_value(&envelope).expect("serializes"),
                        ),
                        condition: Condition::None,
                    }
                })
                .collect();
            self.store.transact(writes).await.map_err(err)?;
        }
        Ok(())
    }
}

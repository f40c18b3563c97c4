//! Timers in the embedded store: one item per timer in `LOCAL#TIMERS`, sorted by when it
//! fires, and its name in `LOCAL#TIMERNAMES` so setting it again replaces it. Written in
//! transactions, so they survive a crash; the local pipeline fires the due ones.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use crate::app::keys;
use crate::ports::queue::DeliveryError;
use crate::ports::store::{Condition, Item, Query, Store, StoreError, Write};
use crate::ports::timers::{Timer, Timers};

#[derive(Clone)]
pub struct StoreTimers {
    store: Arc<dyn Store>,
}

fn failure(e: StoreError) -> DeliveryError {
    DeliveryError(e.to_string())
}

impl StoreTimers {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// The timers due at `now`, oldest first, with their sort keys (to [`StoreTimers::done`] them).
    pub async fn due(&self, now: i64, limit: usize) -> Result<Vec<(String, Timer)>, DeliveryError> {
        let page = self.store.query(Query { limit, ..Query::new(keys::TIMERS_PK, "") }).await.map_err(failure)?;
        let cutoff = keys::timer_sk(now, "~");
        Ok(page
            .items
            .into_iter()
            .take_while(|i| i.sk <= cutoff)
            .filter_map(|i| {
                let timer = serde_json::from_value(i.data).ok();
                if timer.is_none() {
                    tracing::error!(sk = %i.sk, "an unreadable local timer is skipped");
                }
                Some((i.sk, timer?))
            })
            .collect())
    }

    /// Forgets a fired timer, unless it was set again meanwhile.
    pub async fn done(&self, sk: &str, timer: &Timer) -> Result<(), DeliveryError> {
        let name = timer.name();
        let Some(named) = self.store.get(keys::TIMER_NAMES_PK, &name).await.map_err(failure)? else {
            return self.remove(sk).await;
        };
        if named.data["sk"].as_str() != Some(sk) {
            return self.remove(sk).await;
        }
        let writes = vec![
            Write::Delete { pk: keys::TIMERS_PK.into(), sk: sk.into(), condition: Condition::None },
            Write::Delete { pk: keys::TIMER_NAMES_PK.into(), sk: name, condition: Condition::Version(named.version) },
        ];
        match self.store.transact(writes).await {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(failure(e)),
        }
    }

    async fn remove(&self, sk: &str) -> Result<(), DeliveryError> {
        let delete = Write::Delete { pk: keys::TIMERS_PK.into(), sk: sk.into(), condition: Condition::None };
        self.store.transact(vec![delete]).await.map_err(failure)
    }
}

#[async_trait]
impl Timers for StoreTimers {
    async fn set(&self, at: i64, timer: &Timer) -> Result<(), DeliveryError> {
        let name = timer.name();
        let sk = keys::timer_sk(at, &name);
        crate::app::stored::optimistic_or(
            || DeliveryError("the timer is changing concurrently".into()),
            || async {
                let named = self.store.get(keys::TIMER_NAMES_PK, &name).await.map_err(failure)?;
                let mut writes = Vec::new();
                if let Some(old) = named.as_ref().and_then(|n| n.data["sk"].as_str()).filter(|old| *old != sk) {
                    writes.push(Write::Delete {
                        pk: keys::TIMERS_PK.into(),
                        sk: old.into(),
                        condition: Condition::None,
                    });
                }
                let version = named.as_ref().map_or(0, |n| n.version);
                writes.push(Write::Put {
                    item: Item::new(keys::TIMER_NAMES_PK, name.clone(), version + 1, json!({"sk": sk})),
                    condition: named.map_or(Condition::Absent, |n| Condition::Version(n.version)),
                });
                writes.push(Write::Put {
                    item: Item::new(keys::TIMERS_PK, sk.clone(), 1, serde_json::to_value(timer).expect("serializes")),
                    condition: Condition::None,
                });
                match self.store.transact(writes).await {
                    Ok(()) => Ok(crate::app::stored::Step::Done(())),
                    Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
                        Ok(crate::app::stored::Step::Retry)
                    }
                    Err(e) => Err(failure(e)),
                }
            },
        )
        .await
    }

    async fn cancel(&self, name: &str) -> Result<(), DeliveryError> {
        let Some(named) = self.store.get(keys::TIMER_NAMES_PK, name).await.map_err(failure)? else { return Ok(()) };
        let mut writes = vec![Write::Delete {
            pk: keys::TIMER_NAMES_PK.into(),
            sk: name.into(),
            condition: Condition::Version(named.version),
        }];
        if let Some(sk) = named.data["sk"].as_str() {
            writes.push(Write::Delete { pk: keys::TIMERS_PK.into(), sk: sk.into(), condition: Condition::None });
        }
        match self.store.transact(writes).await {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(failure(e)),
        }
    }
}

//! The store port: single-table primitives shared by DynamoDB and the embedded store.
//!
//! Items live under a partition key (`pk`) and a sort key (`sk`). Every tenant item has
//! the tenant in its partition key. Each item carries a `version` for optimistic
//! concurrency and a JSON `data` body.

use async_trait::async_trait;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    /// Incremented by the application on every change; used by [`Condition::Version`].
    pub version: u64,
    pub data: Value,
    /// When the item stops existing (epoch seconds, DynamoDB's `ttl` attribute). Both
    /// stores treat an item past it as absent at once, and delete it later.
    pub ttl: Option<u64>,
}

impl Item {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>, version: u64, data: Value) -> Self {
        Self { pk: pk.into(), sk: sk.into(), version, data, ttl: None }
    }

    /// The same item, expiring at `ttl` (epoch seconds).
    pub fn expiring(mut self, ttl: u64) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Whether the item still exists at `now` (epoch seconds).
    pub fn is_live(&self, now: u64) -> bool {
        self.ttl.is_none_or(|ttl| ttl > now)
    }
}

/// What must hold about the current item for a write to happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Write whatever is there.
    None,
    /// No item exists under the key.
    Absent,
    /// An item exists under the key.
    Exists,
    /// An item exists under the key with exactly this version.
    Version(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Put {
        item: Item,
        condition: Condition,
    },
    Delete {
        pk: String,
        sk: String,
        condition: Condition,
    },
    /// Writes nothing; fails the transaction when the condition does not hold.
    Check {
        pk: String,
        sk: String,
        condition: Condition,
    },
}

impl Write {
    /// The key written (or checked).
    pub fn key(&self) -> (&str, &str) {
        match self {
            Write::Put { item, .. } => (&item.pk, &item.sk),
            Write::Delete { pk, sk, .. } | Write::Check { pk, sk, .. } => (pk, sk),
        }
    }

    /// What must hold about the current item for the write to happen.
    pub fn condition(&self) -> Condition {
        match self {
            Write::Put { condition, .. } | Write::Delete { condition, .. } | Write::Check { condition, .. } => {
                *condition
            }
        }
    }

    /// Puts `value` (as JSON) at a key that must be free, as version 1.
    pub fn create(pk: impl Into<String>, sk: impl Into<String>, value: &impl serde::Serialize) -> Write {
        let data = serde_json::to_value(value).expect("domain values serialize");
        Write::Put { item: Item::new(pk, sk, 1, data), condition: Condition::Absent }
    }

    /// Replaces the item that is at `version` with `value` (as JSON), as `version + 1`.
    pub fn replace(pk: impl Into<String>, sk: impl Into<String>, version: u64, value: &impl serde::Serialize) -> Write {
        let data = serde_json::to_value(value).expect("domain values serialize");
        Write::Put { item: Item::new(pk, sk, version + 1, data), condition: Condition::Version(version) }
    }

    /// The same write, its item expiring at `ttl` (epoch seconds); no effect on deletes and checks.
    pub fn expiring(self, ttl: u64) -> Write {
        match self {
            Write::Put { item, condition } => Write::Put { item: item.expiring(ttl), condition },
            other => other,
        }
    }
}

/// One page of a query, in sort-key order.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    /// The sort key to continue after, present only when more items follow.
    pub next: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query<'a> {
    pub pk: &'a str,
    pub sk_prefix: &'a str,
    pub limit: usize,
    /// Continue strictly after this sort key (strictly before it when descending).
    pub after: Option<&'a str>,
    pub descending: bool,
}

impl<'a> Query<'a> {
    pub fn new(pk: &'a str, sk_prefix: &'a str) -> Self {
        Self { pk, sk_prefix, limit: 100, after: None, descending: false }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A condition did not hold; nothing was written. `index` is the failing write.
    #[error("condition failed on write {index}")]
    ConditionFailed { index: usize },
    /// A concurrent transaction touched the same items; retrying may succeed.
    #[error("conflicting concurrent transaction")]
    Conflict,
    #[error("invalid request to the store: {0}")]
    Invalid(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// Most items a transaction may write (DynamoDB's limit).
pub const MAX_TRANSACTION_WRITES: usize = 100;

/// What every store accepts as one transaction, as DynamoDB does: 1 to
/// [`MAX_TRANSACTION_WRITES`] writes, each to a different item.
pub fn check_transaction(writes: &[Write]) -> Result<(), StoreError> {
    if writes.is_empty() || writes.len() > MAX_TRANSACTION_WRITES {
        return Err(StoreError::Invalid(format!("a transaction holds 1 to {MAX_TRANSACTION_WRITES} writes")));
    }
    let mut keys: Vec<(&str, &str)> = writes.iter().map(Write::key).collect();
    keys.sort_unstable();
    match keys.windows(2).find(|pair| pair[0] == pair[1]) {
        Some(pair) => Err(StoreError::Invalid(format!(
            "a transaction writes each item at most once: ({}, {}) is written twice",
            pair[0].0, pair[0].1
        ))),
        None => Ok(()),
    }
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError>;

    /// Several items, strongly consistent like [`Store::get`], answered in the order of
    /// `keys` (a key asked twice is answered twice). A store with a batch read makes it one
    /// round trip (DynamoDB: BatchGetItem): one request, and at a cold start one connection,
    /// where concurrent gets open one each.
    async fn get_many(&self, keys: &[(&str, &str)]) -> Result<Vec<Option<Item>>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for (pk, sk) in keys {
            found.push(self.get(pk, sk).await?);
        }
        Ok(found)
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError>;

    /// Items of one partition whose sort key starts with the prefix, in order.
    async fn query(&self, query: Query<'_>) -> Result<Page, StoreError>;

    /// All writes happen, or none do.
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError>;

    /// Cheap check that the store answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Every item of a partition under the prefix, following pages.
    async fn query_all(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.query_all_from(Query { limit: 500, ..Query::new(pk, sk_prefix) }).await
    }

    /// Every item a query reaches from its start (`after`) in its direction, following
    /// pages of `query.limit` items.
    async fn query_all_from(&self, query: Query<'_>) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut after: Option<String> = query.after.map(str::to_string);
        loop {
            let page = self.query(Query { after: after.as_deref(), ..query }).await?;
            items.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(items),
            }
        }
    }
}

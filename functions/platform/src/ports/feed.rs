//! The change feed: every write of the store, in commit order, with the item's old and
//! new image. DynamoDB Streams in AWS; the embedded store's own feed locally. It is the
//! outbox of the automation engine: a record write and its event cannot diverge.

use async_trait::async_trait;

use super::store::{Item, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct StoreChange {
    /// Position in the feed, increasing.
    pub seq: u64,
    pub old: Option<Item>,
    pub new: Option<Item>,
}

#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// Changes after position `after`, oldest first.
    async fn read(&self, after: u64, limit: usize) -> Result<Vec<StoreChange>, StoreError>;

    /// The position the consumer has processed up to (0 at first).
    async fn checkpoint(&self) -> Result<u64, StoreError>;

    /// Records that everything up to and including `upto` is processed and drops it.
    /// Kept beside the feed, not in the items, so committing adds no change of its own.
    async fn commit(&self, upto: u64) -> Result<(), StoreError>;
}

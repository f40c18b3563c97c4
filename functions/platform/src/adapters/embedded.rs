//! The embedded store: a single file managed by `redb`, an ACID, copy-on-write,
//! checksummed B-tree store. A commit returns only after it is on disk
//! (`Durability::Immediate`), so an acknowledged write survives SIGKILL or power loss.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::recent_items::RecentItems;
use crate::domain::time::unix_now;
use crate::ports::feed::{ChangeFeed, StoreChange};
use crate::ports::store::{Condition, Item, Page, Query, Store, StoreError, Write};

/// (partition key, sort key) -> JSON of [`Stored`].
const ITEMS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("items");
/// Sequence -> JSON of [`FeedEntry`]: the change feed, written in the same transaction.
const FEED: TableDefinition<u64, &[u8]> = TableDefinition::new("feed");
/// The feed consumer's checkpoint (and so the lowest sequence a new entry may take).
const FEED_META: TableDefinition<&str, u64> = TableDefinition::new("feed_meta");
const CHECKPOINT: &str = "checkpoint";
/// (expiry, partition key, sort key) -> (): what [`EmbeddedStore::purge_expired`] deletes.
const EXPIRY: TableDefinition<(u64, &str, &str), ()> = TableDefinition::new("expiry");

#[derive(Serialize, Deserialize)]
struct FeedEntry {
    old: Option<StoredItem>,
    new: Option<StoredItem>,
}

#[derive(Serialize, Deserialize)]
struct StoredItem {
    pk: String,
    sk: String,
    version: u64,
    data: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<u64>,
}

impl From<Item> for StoredItem {
    fn from(i: Item) -> Self {
        Self { pk: i.pk, sk: i.sk, version: i.version, data: i.data, ttl: i.ttl }
    }
}

impl From<StoredItem> for Item {
    fn from(i: StoredItem) -> Self {
        Item { pk: i.pk, sk: i.sk, version: i.version, data: i.data, ttl: i.ttl }
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    version: u64,
    data: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<u64>,
}

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    /// Counts commits of writes, so that the local pipeline wakes on each one instead of polling.
    commits: Arc<tokio::sync::watch::Sender<u64>>,
    /// Items as last read, dropped by every write that touches them.
    recent: Arc<RecentItems>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl EmbeddedStore {
    /// Opens the store file, creating it (and its folder) when missing.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(unavailable)?;
        }
        let db = Database::create(path).map_err(unavailable)?;
        let txn = db.begin_write().map_err(unavailable)?;
        txn.open_table(ITEMS).map_err(unavailable)?;
        txn.open_table(FEED).map_err(unavailable)?;
        txn.open_table(FEED_META).map_err(unavailable)?;
        txn.open_table(EXPIRY).map_err(unavailable)?;
        txn.commit().map_err(unavailable)?;
        restrict_to_owner(path).map_err(unavailable)?;
        Ok(Self {
            db: Arc::new(db),
            commits: Arc::new(tokio::sync::watch::Sender::new(0)),
            recent: Arc::new(RecentItems::default()),
        })
    }

    /// Reads run where they are called: a redb read transaction is a few microseconds from
    /// its page cache, much less than handing the work to the blocking pool and back
    /// (measured: the hop's thread wake-ups were the local server's largest cost per
    /// authenticated GET). Writes, which sync to disk, go to the blocking pool.
    fn read<T>(&self, work: impl FnOnce(&Database) -> Result<T, StoreError>) -> Result<T, StoreError> {
        work(&self.db)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || work(&db)).await.map_err(unavailable)?
    }
}

/// Only the owner may read or write the store file (it holds password hashes and tokens).
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    super::private_files::restrict_file(path)
}

fn decode(pk: &str, sk: &str, bytes: &[u8]) -> Result<Item, StoreError> {
    let stored: Stored = serde_json::from_slice(bytes).map_err(unavailable)?;
    Ok(Item { pk: pk.to_string(), sk: sk.to_string(), version: stored.version, data: stored.data, ttl: stored.ttl })
}

/// The item, unless it has expired (an expired item is absent, as if already deleted).
fn decode_live(pk: &str, sk: &str, bytes: &[u8], now: u64) -> Result<Option<Item>, StoreError> {
    let item = decode(pk, sk, bytes)?;
    Ok(item.is_live(now).then_some(item))
}

fn encode(item: &Item) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&Stored { version: item.version, data: item.data.clone(), ttl: item.ttl }).map_err(unavailable)
}

fn holds(condition: Condition, current: Option<u64>) -> bool {
    match condition {
        Condition::None => true,
        Condition::Absent => current.is_none(),
        Condition::Exists => current.is_some(),
        Condition::Version(v) => current == Some(v),
    }
}

/// The stored item, expired or not.
fn current(
    table: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    pk: &str,
    sk: &str,
) -> Result<Option<Item>, StoreError> {
    match table.get((pk, sk)).map_err(unavailable)? {
        Some(guard) => Ok(Some(decode(pk, sk, guard.value())?)),
        None => Ok(None),
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let now = unix_now();
        if let Some(known) = self.recent.get(pk, sk) {
            return Ok(known.is_live(now).then(|| Item::clone(&known)));
        }
        // Noted before the read transaction opens (see `RecentItems`).
        let generation = self.recent.generation();
        let found = self.read(|db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(ITEMS).map_err(unavailable)?;
            let found = table.get((pk, sk)).map_err(unavailable)?;
            Ok(found.map(|guard| decode_live(pk, sk, guard.value(), now)).transpose()?.flatten())
        })?;
        if let Some(item) = &found {
            self.recent.keep(generation, item.clone());
        }
        Ok(found)
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.transact(vec![Write::Put { item, condition }]).await
    }

    async fn query(&self, query: Query<'_>) -> Result<Page, StoreError> {
        let pk = query.pk.to_string();
        let prefix = query.sk_prefix.to_string();
        let after = query.after.map(str::to_string);
        let (limit, descending) = (query.limit.max(1), query.descending);
        let now = unix_now();
        self.read(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(ITEMS).map_err(unavailable)?;
            let end = format!("{prefix}\u{10FFFF}");
            let lower = match (&after, descending) {
                (Some(a), false) => Bound::Excluded((pk.as_str(), a.as_str())),
                _ => Bound::Included((pk.as_str(), prefix.as_str())),
            };
            let upper = match (&after, descending) {
                (Some(a), true) => Bound::Excluded((pk.as_str(), a.as_str())),
                _ => Bound::Included((pk.as_str(), end.as_str())),
            };
            let range = table.range::<(&str, &str)>((lower, upper)).map_err(unavailable)?;
            let mut items = Vec::new();
            let mut more = false;
            let mut take = |entry: Result<
                (redb::AccessGuard<'_, (&str, &str)>, redb::AccessGuard<'_, &[u8]>),
                redb::StorageError,
            >|
             -> Result<bool, StoreError> {
                let (key, value) = entry.map_err(unavailable)?;
                let (kpk, ksk) = key.value();
                if kpk != pk || !ksk.starts_with(prefix.as_str()) {
                    return Ok(true);
                }
                let Some(item) = decode_live(kpk, ksk, value.value(), now)? else { return Ok(true) };
                if items.len() == limit {
                    more = true;
                    return Ok(false);
                }
                items.push(item);
                Ok(true)
            };
            if descending {
                for entry in range.rev() {
                    if !take(entry)? {
                        break;
                    }
                }
            } else {
                for entry in range {
                    if !take(entry)? {
                        break;
                    }
                }
            }
            let next = if more { items.last().map(|i: &Item| i.sk.clone()) } else { None };
            Ok(Page { items, next })
        })
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        crate::ports::store::check_transaction(&writes)?;
        let now = unix_now();
        let recent = self.recent.clone();
        self.blocking(move |db| {
            let outcome = apply(db, &writes, now);
            // Ended, committed or not: in the blocking task, so it runs even if the caller
            // stopped waiting.
            recent.written(writes.iter().map(Write::key));
            outcome
        })
        .await?;
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.ping_tables().await
    }
}

/// One transaction of writes: every condition holds and all are written, with their
/// change-feed entries, or nothing is.
fn apply(db: &Database, writes: &[Write], now: u64) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(unavailable)?;
    {
        let mut table = txn.open_table(ITEMS).map_err(unavailable)?;
        let mut expiry = txn.open_table(EXPIRY).map_err(unavailable)?;
        let mut feed = txn.open_table(FEED).map_err(unavailable)?;
        let meta = txn.open_table(FEED_META).map_err(unavailable)?;
        let consumed = meta.get(CHECKPOINT).map_err(unavailable)?.map_or(0, |v| v.value());
        let mut seq = feed.last().map_err(unavailable)?.map_or(0, |(k, _)| k.value()).max(consumed);
        for (index, write) in writes.iter().enumerate() {
            let (pk, sk) = write.key();
            let stored = current(&table, pk, sk)?;
            let old = stored.clone().filter(|i| i.is_live(now));
            if !holds(write.condition(), old.as_ref().map(|i| i.version)) {
                // Dropping the transaction without commit aborts it: nothing is written.
                return Err(StoreError::ConditionFailed { index });
            }
            let new = match write {
                Write::Put { item, .. } => {
                    table.insert((pk, sk), encode(item)?.as_slice()).map_err(unavailable)?;
                    Some(item.clone())
                }
                Write::Delete { .. } => {
                    table.remove((pk, sk)).map_err(unavailable)?;
                    None
                }
                Write::Check { .. } => continue,
            };
            if let Some(ttl) = stored.as_ref().and_then(|i| i.ttl) {
                expiry.remove((ttl, pk, sk)).map_err(unavailable)?;
            }
            if let Some(ttl) = new.as_ref().and_then(|i| i.ttl) {
                expiry.insert((ttl, pk, sk), ()).map_err(unavailable)?;
            }
            if old.is_some() || new.is_some() {
                seq += 1;
                let entry = FeedEntry { old: old.map(Into::into), new: new.map(Into::into) };
                let bytes = serde_json::to_vec(&entry).map_err(unavailable)?;
                feed.insert(seq, bytes.as_slice()).map_err(unavailable)?;
            }
        }
    }
    txn.commit().map_err(unavailable)
}

#[async_trait]
impl ChangeFeed for EmbeddedStore {
    async fn read(&self, after: u64, limit: usize) -> Result<Vec<StoreChange>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let feed = txn.open_table(FEED).map_err(unavailable)?;
            let mut out = Vec::new();
            for entry in feed.range((Bound::Excluded(after), Bound::Unbounded)).map_err(unavailable)?.take(limit) {
                let (seq, bytes) = entry.map_err(unavailable)?;
                let entry: FeedEntry = serde_json::from_slice(bytes.value()).map_err(unavailable)?;
                out.push(StoreChange {
                    seq: seq.value(),
                    old: entry.old.map(Into::into),
                    new: entry.new.map(Into::into),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn checkpoint(&self) -> Result<u64, StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let meta = txn.open_table(FEED_META).map_err(unavailable)?;
            Ok(meta.get(CHECKPOINT).map_err(unavailable)?.map_or(0, |v| v.value()))
        })
        .await
    }

    async fn commit(&self, upto: u64) -> Result<(), StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            {
                let mut meta = txn.open_table(FEED_META).map_err(unavailable)?;
                let current = meta.get(CHECKPOINT).map_err(unavailable)?.map_or(0, |v| v.value());
                meta.insert(CHECKPOINT, upto.max(current)).map_err(unavailable)?;
                let mut feed = txn.open_table(FEED).map_err(unavailable)?;
                feed.retain_in(..=upto, |_, _| false).map_err(unavailable)?;
            }
            txn.commit().map_err(unavailable)
        })
        .await
    }
}

impl EmbeddedStore {
    /// Changes whenever a transaction commits: what the local pipeline waits on.
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// Deletes up to `limit` items whose `ttl` is at or before `now`, as DynamoDB's TTL
    /// does in the background (expired items already read as absent). Returns how many.
    pub async fn purge_expired(&self, now: u64, limit: usize) -> Result<usize, StoreError> {
        let recent = self.recent.clone();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            let purged = {
                let mut table = txn.open_table(ITEMS).map_err(unavailable)?;
                let mut expiry = txn.open_table(EXPIRY).map_err(unavailable)?;
                let mut due = Vec::new();
                for entry in expiry.range(..=(now, "\u{10FFFF}", "\u{10FFFF}")).map_err(unavailable)?.take(limit) {
                    let (key, _) = entry.map_err(unavailable)?;
                    let (ttl, pk, sk) = key.value();
                    due.push((ttl, pk.to_string(), sk.to_string()));
                }
                for (ttl, pk, sk) in &due {
                    expiry.remove((*ttl, pk.as_str(), sk.as_str())).map_err(unavailable)?;
                    let still_due = current(&table, pk, sk)?.is_some_and(|i| i.ttl == Some(*ttl));
                    if still_due {
                        table.remove((pk.as_str(), sk.as_str())).map_err(unavailable)?;
                    }
                }
                due
            };
            let outcome = txn.commit().map_err(unavailable);
            recent.written(purged.iter().map(|(_, pk, sk)| (pk.as_str(), sk.as_str())));
            outcome.map(|()| purged.len())
        })
        .await
    }

    async fn ping_tables(&self) -> Result<(), StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(unavailable)?;
            txn.open_table(ITEMS).map_err(unavailable)?;
            Ok(())
        })
        .await
    }
}

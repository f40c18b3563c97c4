//! The embedded store's recently read items, decoded: a `get` that finds its item here
//! skips the read transaction and the JSON decode (together a fifth of an authenticated
//! GET's CPU on the local server, measured with perf).
//!
//! Coherent because the embedded store is the only writer of its file (redb locks it to
//! one process) and every write transaction ends with [`RecentItems::written`]:
//! - a writer, after its transaction ends (committed or not), drops the keys it wrote
//!   and bumps the generation, under the one lock;
//! - a reader notes the generation *before* it opens its read transaction and keeps what
//!   it read only if no write ended since ([`RecentItems::keep`]), under that lock.
//!
//! So a value read before a commit is either refused (the commit ended first) or dropped
//! by that commit's invalidation (it ends after); a value read after a commit is current.
//! Expiry is checked on every hit, as on every read. Bounded: when full, the map is
//! emptied (refilled by the next reads).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::ports::store::Item;

/// Items beyond which the map is emptied.
const CAPACITY: usize = 4096;

type Map<V> = HashMap<String, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct Inner {
    generation: u64,
    len: usize,
    /// Partition key -> sort key -> item (looked up by `&str` without building a key).
    items: Map<Map<Arc<Item>>>,
}

#[derive(Default)]
pub struct RecentItems {
    inner: Mutex<Inner>,
}

impl RecentItems {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map holds no invariant a panicking holder could break halfway.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The item as last read, if it is here.
    pub fn get(&self, pk: &str, sk: &str) -> Option<Arc<Item>> {
        self.lock().items.get(pk)?.get(sk).cloned()
    }

    /// The generation a reader notes before it opens its read transaction.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Keeps an item read in a transaction opened after `generation` was noted, unless a
    /// write transaction ended since.
    pub fn keep(&self, generation: u64, item: Item) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.len >= CAPACITY {
            inner.items.clear();
            inner.len = 0;
        }
        let by_sk = inner.items.entry(item.pk.clone()).or_default();
        if by_sk.insert(item.sk.clone(), Arc::new(item)).is_none() {
            inner.len += 1;
        }
    }

    /// A write transaction touching these keys ended (committed or not).
    pub fn written<'a>(&self, keys: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut inner = self.lock();
        inner.generation = inner.generation.wrapping_add(1);
        for (pk, sk) in keys {
            let Some(by_sk) = inner.items.get_mut(pk) else { continue };
            let removed = by_sk.remove(sk).is_some();
            if by_sk.is_empty() {
                inner.items.remove(pk);
            }
            if removed {
                inner.len -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(sk: &str, version: u64) -> Item {
        Item::new("P", sk, version, json!({"n": version}))
    }

    #[test]
    fn a_read_kept_before_any_write_is_found() {
        let recent = RecentItems::default();
        let generation = recent.generation();
        recent.keep(generation, item("A", 1));
        assert_eq!(recent.get("P", "A").map(|i| i.version), Some(1));
        assert!(recent.get("P", "B").is_none());
    }

    #[test]
    fn a_read_that_a_write_overtook_is_not_kept() {
        let recent = RecentItems::default();
        let generation = recent.generation();
        recent.written([("P", "A")]);
        recent.keep(generation, item("A", 1));
        assert!(recent.get("P", "A").is_none());
    }

    #[test]
    fn a_write_drops_the_keys_it_touched_only() {
        let recent = RecentItems::default();
        let generation = recent.generation();
        recent.keep(generation, item("A", 1));
        recent.keep(generation, item("B", 1));
        recent.written([("P", "A")]);
        assert!(recent.get("P", "A").is_none());
        assert_eq!(recent.get("P", "B").map(|i| i.version), Some(1));
    }

    #[test]
    fn a_full_map_is_emptied_then_refilled() {
        let recent = RecentItems::default();
        let generation = recent.generation();
        for n in 0..CAPACITY {
            recent.keep(generation, item(&n.to_string(), 1));
        }
        recent.keep(generation, item("last", 1));
        assert!(recent.get("P", "0").is_none());
        assert!(recent.get("P", "last").is_some());
        assert_eq!(recent.lock().len, 1);
    }
}

//! One store conformance suite, run against the embedded store and against DynamoDB
//! served by a real moto server.

use std::sync::Arc;

use blackbox::Moto;
use platform::adapters::embedded::EmbeddedStore;
use platform::ports::store::{Condition, Item, Query, Store, StoreError, Write};
use serde_json::json;

fn item(pk: &str, sk: &str, version: u64) -> Item {
    Item::new(pk, sk, version, json!({"sk": sk, "n": version}))
}

async fn round_trips_json(store: &dyn Store) {
    let data = json!({
        "text": "héllo ✓", "empty": "", "int": 42, "negative": -7, "float": 2.5, "big": 12345678901234_i64,
        "yes": true, "none": null, "list": [1, "two", {"three": 3}], "nested": {"deep": {"deeper": []}}, "obj": {}
    });
    store.put(Item::new("P#json", "A", 3, data.clone()), Condition::None).await.unwrap();
    let got = store.get("P#json", "A").await.unwrap().expect("stored item");
    assert_eq!(got, Item::new("P#json", "A", 3, data));
    assert_eq!(store.get("P#json", "missing").await.unwrap(), None);
}

async fn conditions_guard_puts(store: &dyn Store) {
    store.put(item("P#cond", "A", 1), Condition::Absent).await.unwrap();
    assert_eq!(
        store.put(item("P#cond", "A", 1), Condition::Absent).await,
        Err(StoreError::ConditionFailed { index: 0 })
    );
    assert_eq!(
        store.put(item("P#cond", "A", 3), Condition::Version(2)).await,
        Err(StoreError::ConditionFailed { index: 0 })
    );
    store.put(item("P#cond", "A", 2), Condition::Version(1)).await.unwrap();
    assert_eq!(store.get("P#cond", "A").await.unwrap().unwrap().version, 2);
    assert_eq!(
        store.put(item("P#cond", "B", 1), Condition::Exists).await,
        Err(StoreError::ConditionFailed { index: 0 })
    );
    assert_eq!(
        store.put(item("P#cond", "B", 1), Condition::Version(1)).await,
        Err(StoreError::ConditionFailed { index: 0 })
    );
    store.put(item("P#cond", "A", 5), Condition::Exists).await.unwrap();
}

async fn queries_page_by_prefix(store: &dyn Store) {
    for i in 0..7 {
        store.put(item("P#q", &format!("ITEM#{i:02}"), 1), Condition::None).await.unwrap();
    }
    store.put(item("P#q", "ITEMS", 1), Condition::None).await.unwrap();
    store.put(item("P#q", "OTHER#1", 1), Condition::None).await.unwrap();
    store.put(item("P#q2", "ITEM#00", 1), Condition::None).await.unwrap();

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page =
            store.query(Query { limit: 3, after: after.as_deref(), ..Query::new("P#q", "ITEM#") }).await.unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|i| i.sk.clone()));
        assert!(page.items.len() <= 3);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).map(|i| format!("ITEM#{i:02}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(pages, 3);

    // An exact multiple of the page size ends without a dangling empty page.
    let first = store.query(Query { limit: 4, ..Query::new("P#q", "ITEM#0") }).await.unwrap();
    assert_eq!(first.items.len(), 4);
    let second =
        store.query(Query { limit: 4, after: first.next.as_deref(), ..Query::new("P#q", "ITEM#0") }).await.unwrap();
    assert_eq!(second.items.len(), 3);
    assert_eq!(second.next, None);

    let down = store.query(Query { limit: 5, descending: true, ..Query::new("P#q", "ITEM#") }).await.unwrap();
    let sks: Vec<&str> = down.items.iter().map(|i| i.sk.as_str()).collect();
    assert_eq!(sks, ["ITEM#06", "ITEM#05", "ITEM#04", "ITEM#03", "ITEM#02"]);
    let rest = store
        .query(Query { limit: 5, descending: true, after: down.next.as_deref(), ..Query::new("P#q", "ITEM#") })
        .await
        .unwrap();
    let sks: Vec<&str> = rest.items.iter().map(|i| i.sk.as_str()).collect();
    assert_eq!(sks, ["ITEM#01", "ITEM#00"]);
    assert_eq!(rest.next, None);

    let everything = store.query_all("P#q", "").await.unwrap();
    assert_eq!(everything.len(), 9, "the whole partition, and only it");
    assert!(store.query(Query::new("P#none", "ITEM#")).await.unwrap().items.is_empty());
}

async fn transactions_are_all_or_nothing(store: &dyn Store) {
    store.put(item("P#tx", "KEEP", 1), Condition::None).await.unwrap();
    let failing = vec![
        Write::Put { item: item("P#tx", "NEW1", 1), condition: Condition::Absent },
        Write::Delete { pk: "P#tx".into(), sk: "KEEP".into(), condition: Condition::Version(1) },
        Write::Put { item: item("P#tx", "KEEP2", 1), condition: Condition::Exists },
    ];
    assert_eq!(store.transact(failing).await, Err(StoreError::ConditionFailed { index: 2 }));
    assert_eq!(store.get("P#tx", "NEW1").await.unwrap(), None, "nothing of a failed transaction is written");
    assert!(store.get("P#tx", "KEEP").await.unwrap().is_some());

    let check_fails = vec![
        Write::Put { item: item("P#tx", "NEW1", 1), condition: Condition::Absent },
        Write::Check { pk: "P#tx".into(), sk: "KEEP".into(), condition: Condition::Version(9) },
    ];
    assert_eq!(store.transact(check_fails).await, Err(StoreError::ConditionFailed { index: 1 }));
    assert_eq!(store.get("P#tx", "NEW1").await.unwrap(), None);

    let succeeding = vec![
        Write::Put { item: item("P#tx", "NEW1", 1), condition: Condition::Absent },
        Write::Check { pk: "P#tx".into(), sk: "KEEP".into(), condition: Condition::Version(1) },
        Write::Put { item: item("P#tx", "NEW2", 1), condition: Condition::None },
    ];
    store.transact(succeeding).await.unwrap();
    store
        .transact(vec![Write::Delete { pk: "P#tx".into(), sk: "KEEP".into(), condition: Condition::Version(1) }])
        .await
        .unwrap();
    let left: Vec<String> = store.query_all("P#tx", "").await.unwrap().into_iter().map(|i| i.sk).collect();
    assert_eq!(left, ["NEW1", "NEW2"]);

    let too_many: Vec<Write> =
        (0..101).map(|i| Write::Put { item: item("P#tx", &format!("M{i}"), 1), condition: Condition::None }).collect();
    assert!(matches!(store.transact(too_many).await, Err(StoreError::Invalid(_))));
    assert!(matches!(store.transact(Vec::new()).await, Err(StoreError::Invalid(_))));
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// An item past its `ttl` is absent to every read and condition, as if already deleted
/// (DynamoDB deletes expired items only eventually); a live one keeps its `ttl`.
async fn expired_items_are_absent(store: &dyn Store) {
    let live = item("P#ttl", "live", 1).expiring(now() + 3600);
    store.put(live.clone(), Condition::Absent).await.unwrap();
    assert_eq!(store.get("P#ttl", "live").await.unwrap(), Some(live));
    store.put(item("P#ttl", "gone", 1).expiring(now() - 1), Condition::Absent).await.unwrap();
    assert_eq!(store.get("P#ttl", "gone").await.unwrap(), None);
    let page = store.query(Query::new("P#ttl", "")).await.unwrap();
    assert_eq!(page.items.iter().map(|i| i.sk.as_str()).collect::<Vec<_>>(), ["live"]);
    assert_eq!(
        store.put(item("P#ttl", "gone", 2), Condition::Version(1)).await,
        Err(StoreError::ConditionFailed { index: 0 }),
        "an expired item has no version to match"
    );
    store.put(item("P#ttl", "gone", 1), Condition::Absent).await.expect("an expired key is free again");
    assert_eq!(store.get("P#ttl", "gone").await.unwrap().unwrap().ttl, None);
}

/// A batch read answers every key in the order asked: a missing or expired item as
/// absent, a key asked twice twice, and more keys than one DynamoDB batch takes (100).
async fn batch_reads_answer_every_key_in_order(store: &dyn Store) {
    let sks: Vec<String> = (0..130).map(|i| format!("k{i:03}")).collect();
    for sk in &sks {
        store.put(item("P#batch", sk, 1), Condition::Absent).await.unwrap();
    }
    store.put(item("P#batch", "gone", 1).expiring(now() - 1), Condition::Absent).await.unwrap();
    let mut keys: Vec<(&str, &str)> = vec![("P#batch", "k007"), ("P#batch", "missing"), ("P#batch", "gone")];
    keys.push(("P#batch", "k007"));
    keys.push(("P#other", "k007"));
    keys.extend(sks.iter().rev().map(|sk| ("P#batch", sk.as_str())));
    let found = store.get_many(&keys).await.unwrap();
    assert_eq!(found.len(), keys.len(), "one answer per key asked");
    let answered: Vec<Option<&str>> = found.iter().map(|i| i.as_ref().map(|i| i.sk.as_str())).collect();
    assert_eq!(&answered[..5], [Some("k007"), None, None, Some("k007"), None]);
    let expected: Vec<Option<&str>> = sks.iter().rev().map(|sk| Some(sk.as_str())).collect();
    assert_eq!(&answered[5..], &expected[..], "in the order asked");
    assert_eq!(found[0], Some(item("P#batch", "k007", 1)), "whole items");
    assert_eq!(store.get_many(&[]).await.unwrap(), Vec::<Option<Item>>::new());
    assert_eq!(store.get_many(&[("P#batch", "k001")]).await.unwrap(), [Some(item("P#batch", "k001", 1))]);
}

#[tokio::test]
async fn batch_reads_answer_every_key_in_order_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    batch_reads_answer_every_key_in_order(&EmbeddedStore::open(&dir.path().join("store.redb")).unwrap()).await;
}

#[tokio::test]
async fn batch_reads_answer_every_key_in_order_on_moto() {
    let moto = Moto::start();
    batch_reads_answer_every_key_in_order(moto.new_table("batch").await.as_ref()).await;
}

/// A read never answers what a later write replaced or removed (the embedded store keeps
/// recently read items in memory; every write must drop them).
async fn reads_follow_writes(store: &dyn Store) {
    store.put(item("P#rw", "A", 1), Condition::Absent).await.unwrap();
    assert_eq!(store.get("P#rw", "A").await.unwrap().unwrap().version, 1);
    store.put(item("P#rw", "A", 2), Condition::Version(1)).await.unwrap();
    assert_eq!(store.get("P#rw", "A").await.unwrap().unwrap().version, 2, "after a put");
    store
        .transact(vec![
            Write::Put { item: item("P#rw", "A", 3), condition: Condition::Version(2) },
            Write::Put { item: item("P#rw", "B", 1), condition: Condition::Absent },
        ])
        .await
        .unwrap();
    assert_eq!(store.get("P#rw", "A").await.unwrap().unwrap().version, 3, "after a transaction");
    let refused = store
        .transact(vec![
            Write::Put { item: item("P#rw", "A", 4), condition: Condition::Version(3) },
            Write::Put { item: item("P#rw", "B", 2), condition: Condition::Version(9) },
        ])
        .await;
    assert_eq!(refused, Err(StoreError::ConditionFailed { index: 1 }));
    assert_eq!(store.get("P#rw", "A").await.unwrap().unwrap().version, 3, "a refused transaction changes nothing");
    store
        .transact(vec![Write::Delete { pk: "P#rw".into(), sk: "A".into(), condition: Condition::Exists }])
        .await
        .unwrap();
    assert_eq!(store.get("P#rw", "A").await.unwrap(), None, "after a delete");
    let ttl = now() + 2;
    store.put(item("P#rw", "C", 1).expiring(ttl), Condition::Absent).await.unwrap();
    assert!(store.get("P#rw", "C").await.unwrap().is_some());
    while now() < ttl {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(store.get("P#rw", "C").await.unwrap(), None, "an item read before it expired is absent after");
}

async fn suite(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    reads_follow_writes(store.as_ref()).await;
    round_trips_json(store.as_ref()).await;
    conditions_guard_puts(store.as_ref()).await;
    queries_page_by_prefix(store.as_ref()).await;
    transactions_are_all_or_nothing(store.as_ref()).await;
    expired_items_are_absent(store.as_ref()).await;
}

#[tokio::test]
async fn embedded_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    suite(Arc::new(store)).await;
}

/// The embedded store deletes expired items in the background, as DynamoDB's TTL does.
#[tokio::test]
async fn embedded_store_purges_expired_items() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    store.put(item("P#p", "old", 1).expiring(now() - 10), Condition::Absent).await.unwrap();
    store.put(item("P#p", "new", 1).expiring(now() + 3600), Condition::Absent).await.unwrap();
    store.put(item("P#p", "kept", 1), Condition::Absent).await.unwrap();
    store.put(item("P#p", "renewed", 1).expiring(now() - 5), Condition::Absent).await.unwrap();
    store.put(item("P#p", "renewed", 1).expiring(now() + 3600), Condition::Absent).await.unwrap();
    assert_eq!(store.purge_expired(now(), 100).await.unwrap(), 1, "only the expired one");
    assert_eq!(store.purge_expired(now(), 100).await.unwrap(), 0, "and only once");
    assert_eq!(store.purge_expired(now() + 7200, 100).await.unwrap(), 2, "the others when their time comes");
    assert_eq!(store.get("P#p", "kept").await.unwrap().unwrap().version, 1, "items without ttl stay");
}

#[tokio::test]
async fn embedded_store_keeps_data_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let store = EmbeddedStore::open(&path).unwrap();
        store.put(item("P#r", "A", 1), Condition::Absent).await.unwrap();
    }
    let reopened = EmbeddedStore::open(&path).unwrap();
    assert_eq!(reopened.get("P#r", "A").await.unwrap().unwrap().version, 1);
}

/// Readers racing a writer never see a value go back, and all see the last write once it
/// is acknowledged (the embedded store's in-memory copies of read items stay coherent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_reads_stay_current_while_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("store.redb")).unwrap());
    store.put(item("P#race", "A", 1), Condition::Absent).await.unwrap();
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (store, writing) = (store.clone(), writing.clone());
            tokio::spawn(async move {
                let mut seen = 0;
                let mut reads = 0;
                while writing.load(std::sync::atomic::Ordering::SeqCst) {
                    let version = store.get("P#race", "A").await.unwrap().unwrap().version;
                    assert!(version >= seen, "read {version} after {seen}");
                    seen = version;
                    reads += 1;
                    tokio::task::yield_now().await;
                }
                reads
            })
        })
        .collect();
    const LAST: u64 = 60;
    for version in 2..=LAST {
        store.put(item("P#race", "A", version), Condition::Version(version - 1)).await.unwrap();
        assert_eq!(store.get("P#race", "A").await.unwrap().unwrap().version, version, "the writer reads its write");
    }
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    for reader in readers {
        assert!(reader.await.unwrap() > 0, "each reader read");
    }
    assert_eq!(store.get("P#race", "A").await.unwrap().unwrap().version, LAST);
}

#[tokio::test]
async fn dynamodb_store_conforms_on_moto() {
    let moto = Moto::start();
    let store = moto.new_table("conformance").await;
    suite(store).await;
}

#[tokio::test]
async fn ses_mailer_sends_from_a_verified_sender_on_moto() {
    use platform::adapters::ses::SesMailer;
    use platform::ports::mail::{Mail, Mailer};
    let moto = Moto::start();
    let client = moto.sesv2_client();
    let mail = Mail { to: "someone@example.com".into(), subject: "Hello".into(), text: "Body".into() };
    let unverified = SesMailer::new(client.clone(), "sender@example.com");
    assert!(unverified.send(&mail).await.is_err(), "SES refuses an unverified sender");
    client.create_email_identity().email_identity("sender@example.com").send().await.unwrap();
    SesMailer::new(client, "sender@example.com").send(&mail).await.unwrap();
}

//! The engine's guarantees, stage by stage, on the embedded store and on DynamoDB (moto):
//! duplicate and concurrent deliveries, a publisher or executor that crashes after
//! acting, and retries ending in the dead-letter queue.

use std::sync::Arc;

use blackbox::Moto;
use platform::adapters::embedded::EmbeddedStore;
use platform::adapters::mail_dir::DirectoryMailer;
use platform::app::audit::Actor;
use platform::app::page::PageRequest;
use platform::app::tenants::InitializeTenant;
use platform::app::{keys, Secrets};
use platform::domain::ids::{SystemId, TenantId};
use platform::domain::rules::RuleInput;
use platform::domain::run_status::{ActionStatus, RunStatus};
use platform::ports::feed::StoreChange;
use platform::ports::store::Store;
use platform::ports::timers::Timer;
use platform::runtime::{local_queue, state, Delivery, Seed};
use platform::Services;
use serde_json::json;

fn secrets() -> Secrets {
    Secrets {
        platform_admin_token: None,
        jwt_secret: Some("engine-test-signing-key-0123456789abcdef".into()),
        webhook_secret: None,
        webhook_policy: Default::default(),
    }
}

async fn services_with(store: Arc<dyn Store>, mail: &std::path::Path, secrets: Secrets) -> Arc<Services> {
    state(store, Arc::new(DirectoryMailer::new(mail)), secrets, Delivery::Local, Seed::Yes, None)
        .await
        .unwrap()
        .services
}

async fn services(store: Arc<dyn Store>, mail: &std::path::Path) -> Arc<Services> {
    services_with(store, mail, secrets()).await
}

/// A scenario's two tests, `<scenario>::on_the_embedded_store` and
/// `<scenario>::on_dynamodb` (moto, in a table of the given name).
macro_rules! on_both_stores {
    ($scenario:ident, $table:literal) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_the_embedded_store() {
                let (_dir, store) = super::embedded_store();
                super::$scenario(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_dynamodb() {
                let moto = super::Moto::start();
                super::$scenario(moto.new_table($table).await).await;
            }
        }
    };
}

/// An embedded store in a fresh folder (kept alive by the returned guard).
fn embedded_store() -> (tempfile::TempDir, Arc<EmbeddedStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
    (dir, store)
}

/// A tenant whose high-value rule sends one notification.
async fn notifying_tenant(s: &Services, tenant: &str) -> TenantId {
    let notify =
        json!([{"type": "send_notification", "parameters": {"recipient": "m@example.com", "message": tenant}}]);
    tenant_with_rule(s, tenant, notify).await
}

/// The local pipeline over an embedded store and its services.
fn pipeline(embedded: &Arc<EmbeddedStore>, s: &Services) -> platform::pipeline::LocalPipeline {
    let store: Arc<dyn Store> = embedded.clone();
    platform::pipeline::LocalPipeline {
        store: store.clone(),
        feed: embedded.clone(),
        publisher: s.publisher().clone(),
        queue: local_queue(store),
        executor: s.executor().clone(),
        commits: embedded.commits(),
        failures: Default::default(),
        runs: s.runs().clone(),
        limiter: s.limiter().clone(),
        timers: platform::adapters::local_timers::StoreTimers::new(embedded.clone()),
        evaluator: s.evaluator().clone(),
        blobs: s.blobs().cloned(),
    }
}

async fn tenant_with_rule(s: &Services, tenant: &str, actions: serde_json::Value) -> TenantId {
    let actor = Actor::system("test");
    let tenant_id = TenantId::parse(tenant).unwrap();
    let init: InitializeTenant = serde_json::from_value(json!({"tenant_id": tenant, "name": tenant, "admin_email": format!("o@{tenant}.example.com"), "admin_password": "owner password 1234"})).unwrap();
    s.tenants().initialize_tenant(&actor, init).await.unwrap();
    s.installs().install(&actor, &tenant_id, &SystemId::parse("sales").unwrap(), None).await.unwrap();
    let rule: RuleInput = serde_json::from_value(json!({
        "name": "High Value Deal Alert", "module_type": "sales", "trigger_id": "high_value_opportunity",
        "conditions": [{"type": "value_threshold", "value": 10000}], "actions": actions
    }))
    .unwrap();
    s.automation().create_rule(&actor, &tenant_id, rule).await.unwrap();
    tenant_id
}

/// The change the stream (or the embedded feed) reports for a newly created record.
async fn creation(s: &Services, tenant: &TenantId, value: u64) -> StoreChange {
    let sales = SystemId::parse("sales").unwrap();
    let record = s
        .records()
        .create(
            &Actor::system("test"),
            tenant,
            &sales,
            "opportunities",
            json!({"name": "Deal", "value": value, "stage": "prospecting"}).as_object().unwrap().clone(),
        )
        .await
        .unwrap();
    let item = s
        .store
        .get(&keys::tenant_pk(tenant), &keys::record_sk(&sales, "opportunities", &record.record_id))
        .await
        .unwrap()
        .unwrap();
    StoreChange { seq: 1, old: None, new: Some(item) }
}

/// `concurrent`: deliver each message twice at the same time. Only on stores that
/// serialise conditional writes (the embedded store, DynamoDB itself); moto's race
/// between its request threads, so on moto the duplicates come one after another.
async fn guarantees(store: Arc<dyn Store>, concurrent: bool) {
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let notify = json!([{"type": "send_notification", "parameters": {"recipient": "m@example.com", "message": "{{opportunity_name}} - ${{value}}"}}, {"type": "create_task", "parameters": {"title": "Call about {{opportunity_name}}"}}]);
    let tenant = tenant_with_rule(&s, "engine", notify).await;
    let queue = local_queue(store.clone());
    let change = creation(&s, &tenant, 20000).await;

    // The publisher crashes after publishing and before moving its cursor: the change
    // is published again. Same event ids, same execution, same action ids.
    assert_eq!(
        s.publisher().publish(std::slice::from_ref(&change)).await.unwrap(),
        2,
        "opportunity_created + high_value_opportunity"
    );
    assert_eq!(s.publisher().publish(std::slice::from_ref(&change)).await.unwrap(), 2);
    let leased = queue.receive(20).await.unwrap();
    assert_eq!(leased.len(), 4, "at-least-once: the re-published change queued both actions again");

    // Every message delivered twice, and concurrently: each effect happens once.
    for message in &leased {
        if concurrent {
            let (a, b) = tokio::join!(s.executor().execute(&message.message), s.executor().execute(&message.message));
            a.unwrap();
            b.unwrap();
        } else {
            s.executor().execute(&message.message).await.unwrap();
            s.executor().execute(&message.message).await.unwrap();
        }
        // The executor "crashes" after acting (no ack): the redelivery finds it done.
        s.executor().execute(&message.message).await.unwrap();
    }
    let page = PageRequest::first(50);
    let notifications = s.automation().notifications(&tenant, &page).await.unwrap();
    assert_eq!(notifications.items.len(), 1, "notified exactly once");
    assert_eq!(notifications.items[0].message, "Deal - $20000");
    assert_eq!(s.automation().tasks(&tenant, &Default::default(), &page).await.unwrap().items.len(), 1, "one task");
    let runs = s.automation().executions(&tenant, None, None, &page).await.unwrap();
    assert_eq!(runs.items.len(), 1);
    assert_eq!(runs.items[0].status, RunStatus::Succeeded);
    assert!(runs.items[0].actions.iter().all(|a| a.attempts == 1), "{:?}", runs.items[0].actions);

    // A failing action is retried with backoff and ends in the dead-letter queue.
    let broken = json!([{"type": "update_status", "parameters": {"entity_id": "no-such-record", "new_status": "closed_won", "field": "stage"}}]);
    let other = tenant_with_rule(&s, "engine-dlq", broken).await;
    let change = creation(&s, &other, 50000).await;
    s.publisher().publish(&[change]).await.unwrap();
    let mut deliveries = 0;
    loop {
        let leased = queue.receive(10).await.unwrap();
        if leased.is_empty() {
            if queue.dead_letters().await.unwrap().is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
            break;
        }
        for message in leased {
            deliveries += 1;
            let failed = s.executor().execute(&message.message).await.unwrap_err();
            queue.nack(&message, &failed.0).await.unwrap();
        }
    }
    assert_eq!(deliveries, platform::app::engine::MAX_ATTEMPTS, "retried up to the limit");
    assert_eq!(queue.dead_letters().await.unwrap().len(), 1);
    let runs = s.automation().executions(&other, None, Some(RunStatus::Failed), &page).await.unwrap();
    assert_eq!(runs.items[0].actions[0].status, ActionStatus::Dead);
    assert!(runs.items[0].actions[0].error.as_deref().unwrap().contains("does not exist"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantees_hold_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    guarantees(Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap()), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantees_hold_on_dynamodb() {
    let moto = Moto::start();
    guarantees(moto.new_table("engine").await, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_pipeline_settles_once_the_feed_is_consumed() {
    let (dir, embedded) = embedded_store();
    let s = services(embedded.clone(), dir.path()).await;
    let pipeline = pipeline(&embedded, &s);
    let mut consumed = 0;
    loop {
        let n = pipeline.publish_once().await.unwrap();
        if n == 0 {
            break;
        }
        consumed += n;
    }
    assert!(consumed > 0, "seeding the catalog wrote changes");
    assert_eq!(pipeline.publish_once().await.unwrap(), 0, "committing the checkpoint adds no change of its own");
    use platform::ports::feed::ChangeFeed;
    assert!(embedded.read(0, 10).await.unwrap().is_empty(), "consumed changes are dropped");
}

/// An SQS batch as Lambda hands it over, from messages on the local queue.
async fn batch_of(queue: &platform::adapters::local_queue::StoreQueue) -> aws_lambda_events::event::sqs::SqsEvent {
    let leased = queue.receive(20).await.unwrap();
    let records: Vec<_> = leased
        .iter()
        .map(|m| json!({"messageId": m.message.action_id, "body": serde_json::to_string(&m.message).unwrap()}))
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

/// A receiver whose `/slow` holds every call until released (or 8 s pass).
async fn slow_receiver() -> (String, Arc<std::sync::atomic::AtomicBool>, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let released = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let (r, c) = (released.clone(), calls.clone());
    let app = axum::Router::new().route(
        "/slow",
        axum::routing::post(move || {
            let (r, c) = (r.clone(), c.clone());
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
                while !r.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    (blackbox::serve_in_process(app).await, released, calls)
}

/// One tenant's slow webhooks do not hold up another tenant's actions in the same batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_tenant_does_not_hold_up_the_others() {
    let (_dir, embedded) = embedded_store();
    let store: Arc<dyn Store> = embedded;
    let mail = tempfile::tempdir().unwrap();
    let secrets = Secrets {
        webhook_secret: Some("platform-webhook-key".into()),
        webhook_policy: platform::domain::webhook::WebhookPolicy { allow_private: true, ..Default::default() },
        ..secrets()
    };
    let s = services_with(store.clone(), mail.path(), secrets).await;
    let (base, released, calls) = slow_receiver().await;
    let hook = json!({"type": "webhook", "parameters": {"url": format!("{base}/slow"), "secret": "k"}});
    let slow = tenant_with_rule(&s, "slow", json!([hook, hook, hook])).await;
    let quick = notifying_tenant(&s, "quick").await;
    let queue = local_queue(store.clone());
    let slow_change = creation(&s, &slow, 20000).await;
    s.publisher().publish(&[slow_change]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let quick_change = creation(&s, &quick, 20000).await;
    s.publisher().publish(&[quick_change]).await.unwrap();
    let batch = batch_of(&queue).await;
    assert_eq!(batch.records.len(), 4, "three slow webhooks first, then the quick notification");

    let worker = {
        let s = s.clone();
        tokio::spawn(async move { platform::stages::execute_queue_batch(&s, batch, Default::default()).await })
    };
    let page = PageRequest::first(10);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while s.automation().notifications(&quick, &page).await.unwrap().items.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the quick tenant waited behind the slow one");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        calls.load(std::sync::atomic::Ordering::SeqCst) <= platform::stages::PER_TENANT_CONCURRENCY,
        "the slow tenant holds at most its share of slots"
    );
    assert!(!released.load(std::sync::atomic::Ordering::SeqCst), "the notification came while the webhooks hung");
    released.store(true, std::sync::atomic::Ordering::SeqCst);
    let response = worker.await.unwrap();
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures.len());
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
}

/// An action that would outlive the invocation is not started; it goes back to the
/// queue with no attempt counted against its run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_action_starts_past_the_time_budget() {
    let (dir, embedded) = embedded_store();
    let store: Arc<dyn Store> = embedded;
    let s = services(store.clone(), dir.path()).await;
    let tenant = notifying_tenant(&s, "late").await;
    let change = creation(&s, &tenant, 20000).await;
    s.publisher().publish(&[change]).await.unwrap();
    let batch = batch_of(&local_queue(store.clone())).await;
    assert_eq!(batch.records.len(), 1);
    let almost_over =
        platform::stages::Budget { deadline: Some(std::time::SystemTime::now() + std::time::Duration::from_secs(1)) };
    let response = platform::stages::execute_queue_batch(&s, batch, almost_over).await;
    assert_eq!(response.batch_item_failures.len(), 1, "returned for redelivery");
    let page = PageRequest::first(10);
    assert!(s.automation().notifications(&tenant, &page).await.unwrap().items.is_empty(), "not started");
    let runs = s.automation().executions(&tenant, None, None, &page).await.unwrap();
    assert_eq!(runs.items[0].actions[0].attempts, 0, "no attempt counted");
}

/// Messages nobody can read are moved aside with the reason; the queue goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_messages_do_not_stall_the_local_queue() {
    use platform::ports::store::{Condition, Item};
    let (dir, embedded) = embedded_store();
    let store: Arc<dyn Store> = embedded;
    let s = services(store.clone(), dir.path()).await;
    let tenant = notifying_tenant(&s, "poison").await;
    for i in 0..12 {
        let garbage = Item::new(keys::QUEUE_PK, format!("{:015}#garbage-{i:02}", 1), 1, json!({"not": "a message"}));
        store.put(garbage, Condition::None).await.unwrap();
    }
    let change = creation(&s, &tenant, 20000).await;
    s.publisher().publish(&[change]).await.unwrap();
    let queue = local_queue(store.clone());
    let mut received = Vec::new();
    for _ in 0..5 {
        received.extend(queue.receive(10).await.unwrap());
        if !received.is_empty() {
            break;
        }
    }
    assert_eq!(received.len(), 1, "the real message comes through past twelve unreadable ones");
    let aside = store.query_all(keys::DEAD_LETTER_PK, "").await.unwrap();
    assert_eq!(aside.len(), 12);
    assert!(aside[0].data["reason"].as_str().unwrap().contains("not an action message"));
    assert_eq!(aside[0].data["kind"], "unreadable");
    assert_eq!(aside[0].data["payload"], json!({"not": "a message"}), "kept as it was, for the operator");
}

/// A change whose publishing keeps failing (here: its tenant's install is unreadable) is set aside
/// with its reason after a few tries; the feed goes on with the other changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_change_does_not_stall_the_feed() {
    use platform::pipeline::MAX_PUBLISH_TRIES;
    use platform::ports::store::{Condition, Item};
    let (dir, embedded) = embedded_store();
    let store: Arc<dyn Store> = embedded.clone();
    let s = services(store.clone(), dir.path()).await;
    let pipeline = pipeline(&embedded, &s);
    while pipeline.publish_once().await.unwrap() > 0 {}
    let broken = notifying_tenant(&s, "broken").await;
    let healthy = notifying_tenant(&s, "healthy").await;
    while pipeline.publish_once().await.unwrap() > 0 {}
    creation(&s, &broken, 20000).await;
    creation(&s, &healthy, 20000).await;
    // The broken tenant's install record becomes unreadable before its change is published.
    let sales = SystemId::parse("sales").unwrap();
    let install = store.get(&keys::tenant_pk(&broken), &keys::install_sk(&sales)).await.unwrap().unwrap();
    let garbage = Item::new(keys::tenant_pk(&broken), keys::install_sk(&sales), 99, json!({"not": "an install"}));
    store.put(garbage, Condition::None).await.unwrap();
    let mut failures = 0;
    loop {
        match pipeline.publish_once().await {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => failures += 1,
        }
        assert!(failures <= MAX_PUBLISH_TRIES, "the feed is stalled");
    }
    assert_eq!(failures, MAX_PUBLISH_TRIES - 1, "tried, then set aside");
    let aside = s.dead_letters().list(&Default::default(), &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(aside[0].source, "change_feed");
    assert_eq!(aside[0].tenant_id.as_deref(), Some("broken"));
    assert!(!aside[0].reason.is_empty(), "the reason is kept");
    let platform::app::dead_letters::Parked::Change { new: Some(kept), .. } = &aside[0].parked else {
        panic!("the change is kept: {:?}", aside[0].parked)
    };
    assert!(kept.sk.starts_with("REC#"));
    let queue = local_queue(store.clone());
    let queued = queue.receive(10).await.unwrap();
    assert!(
        queued.iter().any(|m| m.message.tenant_id == healthy.to_string()),
        "the healthy tenant's action was queued"
    );
    // The operator repairs the cause and replays the change: its action is queued.
    store.put(install, Condition::None).await.unwrap();
    s.dead_letters().replay(&Actor::system("operator"), &aside[0].dead_letter_id).await.unwrap();
    let runs = s.automation().executions(&broken, None, None, &PageRequest::first(10)).await.unwrap();
    assert_eq!(runs.items.len(), 1, "the replayed change ran the broken tenant's rule");
    assert!(s.dead_letters().list(&Default::default(), &PageRequest::first(10)).await.unwrap().items.is_empty());
}

/// A run whose message is lost (never executed) is marked failed at its deadline, with
/// the reason, and can be retried; the sweep leaves runs within their deadline alone.
async fn runs_past_their_deadline_are_given_up(store: Arc<dyn Store>) {
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let tenant = notifying_tenant(&s, "deadline").await;
    let change = creation(&s, &tenant, 20000).await;
    s.publisher().publish(&[change]).await.unwrap();
    let page = PageRequest::first(10);
    let runs = s.automation().executions(&tenant, None, None, &page).await.unwrap().items;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Pending);
    let deadline = runs[0].deadline.expect("a run with actions to do has a deadline");
    let now = platform::domain::time::unix_now();
    assert_eq!(s.runs().sweep(now).await.unwrap(), 0, "within its deadline");
    // The message is lost (as if the queue were purged); time passes its deadline.
    assert_eq!(s.runs().sweep(deadline + 1).await.unwrap(), 1);
    let run = s.automation().execution(&tenant, &runs[0].execution_id).await.unwrap().0;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.actions[0].status, ActionStatus::Dead);
    assert!(run.actions[0].error.as_deref().unwrap().contains("deadline"), "{:?}", run.actions[0].error);
    assert_eq!(run.deadline, None, "nothing is left to finish: no deadline");
    assert_eq!(s.runs().sweep(deadline + 1).await.unwrap(), 0, "its marker is gone");
    let retried = s.automation().retry(&Actor::system("test"), &tenant, &run.execution_id).await.unwrap();
    assert_eq!(retried.status, RunStatus::Pending);
    let renewed = retried.deadline.unwrap();
    assert!(renewed >= platform::domain::time::unix_now() + 3000, "a retry gets a new deadline");
    assert_eq!(s.runs().sweep(renewed - 1).await.unwrap(), 0, "the retried run is within its new deadline");
    assert_eq!(s.runs().sweep(renewed + 1).await.unwrap(), 1, "and is given up past it");
}

on_both_stores!(runs_past_their_deadline_are_given_up, "deadline");

/// An action the queue gives up on becomes a dead letter and shows as dead in its run;
/// replayed by the operator, it runs.
async fn dead_actions_are_replayed(store: Arc<dyn Store>) {
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let tenant = notifying_tenant(&s, "replay").await;
    let change = creation(&s, &tenant, 20000).await;
    s.publisher().publish(&[change]).await.unwrap();
    let queue = local_queue(store.clone());
    let mut leased = Vec::new();
    for _ in 0..10 {
        leased = queue.receive(10).await.unwrap();
        if !leased.is_empty() {
            break;
        }
    }
    assert_eq!(leased.len(), 1);
    let message = leased[0].message.clone();
    let letter = platform::app::dead_letters::DeadLetter::new(
        "action_queue",
        "the action queue gave up on it",
        platform::app::dead_letters::Parked::Action(Box::new(message.clone())),
    );
    queue.ack(&leased[0]).await.unwrap();
    s.dead_letters().park(letter).await.unwrap();
    let page = PageRequest::first(10);
    let run = s.automation().execution(&tenant, &message.execution_id).await.unwrap().0;
    assert_eq!((run.status, run.actions[0].status), (RunStatus::Failed, ActionStatus::Dead));
    assert_eq!(run.actions[0].error.as_deref(), Some("the action queue gave up on it"));
    let letters = s.dead_letters().list(&Default::default(), &page).await.unwrap().items;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].tenant_id.as_deref(), Some("replay"));
    s.dead_letters().replay(&Actor::system("operator"), &letters[0].dead_letter_id).await.unwrap();
    let reopened = s.automation().execution(&tenant, &message.execution_id).await.unwrap().0;
    assert_eq!(reopened.actions[0].status, ActionStatus::Pending);
    let mut delivered = Vec::new();
    for _ in 0..10 {
        delivered = queue.receive(10).await.unwrap();
        if !delivered.is_empty() {
            break;
        }
    }
    assert_eq!(delivered.len(), 1, "the replay queued the action again");
    s.executor().execute(&delivered[0].message).await.unwrap();
    let done = s.automation().execution(&tenant, &message.execution_id).await.unwrap().0;
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(s.automation().notifications(&tenant, &page).await.unwrap().items.len(), 1);
    assert!(s.dead_letters().list(&Default::default(), &page).await.unwrap().items.is_empty(), "replayed letters go");
}

on_both_stores!(dead_actions_are_replayed, "replay");

/// Over the tenant's action rate, the executor stage puts the action back in the queue
/// with a delay, without an attempt or a failure counted; the rest of the batch runs.
async fn actions_over_the_rate_wait_in_the_queue(store: Arc<dyn Store>) {
    use platform::app::rate_limits::TenantLimits;
    use platform::domain::rate::Rate;
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let both = json!([{"type": "send_notification", "parameters": {"recipient": "m@example.com", "message": "x"}},
                      {"type": "create_task", "parameters": {"title": "Call"}}]);
    let tenant = tenant_with_rule(&s, "rated", both).await;
    let slow =
        TenantLimits { events: Rate { per_second: 100.0, burst: 100 }, actions: Rate { per_second: 0.01, burst: 1 } };
    let view = s.limiter().set(&Actor::system("operator"), &tenant, Some(slow)).await.unwrap();
    assert_eq!(view.source, "tenant");
    let change = creation(&s, &tenant, 20000).await;
    s.publisher().publish(&[change]).await.unwrap();
    let queue = local_queue(store.clone());
    let mut leased = Vec::new();
    for _ in 0..10 {
        leased.extend(queue.receive(10).await.unwrap());
        if leased.len() == 2 {
            break;
        }
    }
    assert_eq!(leased.len(), 2, "one message per action");
    let records: Vec<serde_json::Value> = leased
        .iter()
        .enumerate()
        .map(|(i, l)| json!({"messageId": format!("m-{i}"), "body": serde_json::to_string(&l.message).unwrap()}))
        .collect();
    for l in &leased {
        queue.ack(l).await.unwrap();
    }
    let batch: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(json!({"Records": records})).unwrap();
    let response = platform::stages::execute_queue_batch(&s, batch, Default::default()).await;
    assert!(response.batch_item_failures.is_empty(), "a delayed action is not a failure");
    let run = s.automation().executions(&tenant, None, None, &PageRequest::first(10)).await.unwrap().items.remove(0);
    let done: Vec<ActionStatus> = run.actions.iter().map(|a| a.status).collect();
    assert_eq!(
        done.iter().filter(|s| **s == ActionStatus::Succeeded).count(),
        1,
        "the burst let one through: {done:?}"
    );
    let waiting = run.actions.iter().find(|a| a.status == ActionStatus::Pending).expect("the other waits");
    assert_eq!(waiting.attempts, 0, "no attempt counted");
    assert!(queue.receive(10).await.unwrap().is_empty(), "queued again, not yet visible");
    let later = store.query_all(keys::QUEUE_PK, "").await.unwrap();
    assert_eq!(later.len(), 1, "the waiting action is in the queue");
}

on_both_stores!(actions_over_the_rate_wait_in_the_queue, "rated");

/// Over the tenant's event rate, the runs are recorded at once and their actions queued
/// with a delay (not dropped, not failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_over_the_rate_queue_their_actions_with_a_delay() {
    use platform::app::rate_limits::TenantLimits;
    use platform::domain::rate::Rate;
    let (dir, embedded) = embedded_store();
    let store: Arc<dyn Store> = embedded;
    let s = services(store.clone(), dir.path()).await;
    let tenant = notifying_tenant(&s, "eventrate").await;
    let slow =
        TenantLimits { events: Rate { per_second: 0.01, burst: 1 }, actions: Rate { per_second: 100.0, burst: 100 } };
    s.limiter().set(&Actor::system("operator"), &tenant, Some(slow)).await.unwrap();
    for _ in 0..2 {
        let change = creation(&s, &tenant, 20000).await;
        s.publisher().publish(&[change]).await.unwrap();
    }
    let runs = s.automation().executions(&tenant, None, None, &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(runs.len(), 2, "both runs are recorded");
    let queue = local_queue(store.clone());
    let mut visible = Vec::new();
    for _ in 0..5 {
        visible.extend(queue.receive(10).await.unwrap());
    }
    assert_eq!(visible.len(), 1, "the first event's action goes now");
    assert_eq!(store.query_all(keys::QUEUE_PK, "").await.unwrap().len(), 2, "the second waits in the queue");
}

/// A tenant whose high-value rule notifies after a 2 second delay.
async fn delayed_tenant(s: &Services, tenant: &str) -> TenantId {
    let delayed = json!([{"type": "send_notification", "parameters": {"recipient": "m@example.com", "message": "{{opportunity_name}} {{value}}"}, "delay": "PT2S"}]);
    tenant_with_rule(s, tenant, delayed).await
}

/// The tenant's only run.
async fn only_run(s: &Services, tenant: &TenantId) -> platform::app::engine::Execution {
    let mut runs = s.automation().executions(tenant, None, None, &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(runs.len(), 1, "one run");
    runs.remove(0)
}

fn action_timer(run: &platform::app::engine::Execution) -> Timer {
    Timer::Action { tenant_id: run.event.tenant_id.clone(), execution_id: run.execution_id.clone(), action_index: 0 }
}

#[tokio::test]
async fn delayed_actions_wait_for_their_time_and_run_once() {
    let (_dir, store) = embedded_store();
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let queue = local_queue(store.clone());
    let tenant = delayed_tenant(&s, "waits").await;
    s.publisher().publish(&[creation(&s, &tenant, 20000).await]).await.unwrap();
    let run = only_run(&s, &tenant).await;
    assert_eq!(run.actions[0].status, ActionStatus::Waiting);
    assert_eq!(run.status, RunStatus::Pending);
    assert!(run.actions[0].due_at.is_some(), "{:?}", run.actions[0]);
    assert!(queue.receive(10).await.unwrap().is_empty(), "nothing is queued before its time");
    assert_eq!(store.query_all(keys::TIMERS_PK, "").await.unwrap().len(), 1, "a durable timer is set");

    s.evaluator().fire(&action_timer(&run), s.blobs()).await.unwrap();
    assert_eq!(only_run(&s, &tenant).await.actions[0].status, ActionStatus::Waiting, "a timer firing early waits");
    assert!(queue.receive(10).await.unwrap().is_empty());

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    // The timer fires twice (a retry, a duplicate): the action is performed once.
    s.evaluator().fire(&action_timer(&run), s.blobs()).await.unwrap();
    s.evaluator().fire(&action_timer(&run), s.blobs()).await.unwrap();
    for leased in queue.receive(10).await.unwrap() {
        s.executor().execute(&leased.message).await.unwrap();
        queue.ack(&leased).await.unwrap();
    }
    let done = only_run(&s, &tenant).await;
    assert_eq!((done.status, done.actions[0].status), (RunStatus::Succeeded, ActionStatus::Succeeded));
    let notes = s.automation().notifications(&tenant, &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(notes.len(), 1, "notified exactly once");
    assert_eq!(notes[0].message, "Deal 20000");
}

#[tokio::test]
async fn delayed_actions_are_cancelled_when_their_record_is_deleted() {
    let (_dir, store) = embedded_store();
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let tenant = delayed_tenant(&s, "cancels").await;
    let created = creation(&s, &tenant, 20000).await;
    s.publisher().publish(std::slice::from_ref(&created)).await.unwrap();
    let run = only_run(&s, &tenant).await;
    assert_eq!(run.actions[0].status, ActionStatus::Waiting);
    let item = created.new.clone().unwrap();
    let (_, _, id) = keys::parse_record_sk(&item.sk).unwrap();
    s.records()
        .delete(&Actor::system("test"), &tenant, &SystemId::parse("sales").unwrap(), "opportunities", id)
        .await
        .unwrap();
    s.publisher().publish(&[StoreChange { seq: 2, old: Some(item), new: None }]).await.unwrap();
    let cancelled = only_run(&s, &tenant).await;
    assert_eq!(cancelled.actions[0].status, ActionStatus::Cancelled, "cancelled as soon as the record is deleted");
    assert_eq!(cancelled.status, RunStatus::Succeeded, "nothing is left to do");

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    s.evaluator().fire(&action_timer(&run), s.blobs()).await.unwrap();
    assert!(local_queue(store.clone()).receive(10).await.unwrap().is_empty(), "the timer finds nothing to do");
    assert_eq!(only_run(&s, &tenant).await.actions[0].status, ActionStatus::Cancelled);
    assert!(s.automation().notifications(&tenant, &PageRequest::first(10)).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn delayed_actions_are_skipped_when_their_conditions_no_longer_hold() {
    let (_dir, store) = embedded_store();
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let tenant = delayed_tenant(&s, "rechecks").await;
    let created = creation(&s, &tenant, 20000).await;
    s.publisher().publish(std::slice::from_ref(&created)).await.unwrap();
    let run = only_run(&s, &tenant).await;
    let (_, _, id) = keys::parse_record_sk(&created.new.as_ref().unwrap().sk).unwrap();
    let sales = SystemId::parse("sales").unwrap();
    let key = platform::app::records::RecordKey { system: &sales, entity: "opportunities", id };
    let patch = json!({"value": 500}).as_object().unwrap().clone();
    s.records().patch(&Actor::system("test"), &tenant, key, patch, None).await.unwrap();

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    s.evaluator().fire(&action_timer(&run), s.blobs()).await.unwrap();
    let skipped = only_run(&s, &tenant).await;
    assert_eq!(skipped.actions[0].status, ActionStatus::Skipped, "value 500 is below the rule's 10000 now");
    assert!(
        skipped.actions[0].error.as_deref().is_some_and(|e| e.contains("no longer held")),
        "{:?}",
        skipped.actions[0]
    );
    assert!(local_queue(store.clone()).receive(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn scheduled_rules_fire_once_per_firing_and_chain_their_next_timer() {
    let (_dir, store) = embedded_store();
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let actor = Actor::system("test");
    let tenant = TenantId::parse("clockwork").unwrap();
    let init: InitializeTenant = serde_json::from_value(json!({"tenant_id": "clockwork", "name": "Clockwork", "admin_email": "o@clockwork.example.com", "admin_password": "owner password 1234"})).unwrap();
    s.tenants().initialize_tenant(&actor, init).await.unwrap();
    let rule: RuleInput = serde_json::from_value(json!({"name": "Hourly", "module_type": "schedule", "trigger_id": "scheduled",
        "schedule": "rate(1 hour)", "actions": [{"type": "create_task", "parameters": {"title": "At {{scheduled_time}}"}}]})).unwrap();
    let rule = s.automation().create_rule(&actor, &tenant, rule).await.unwrap();
    let timers = |store: Arc<EmbeddedStore>| async move {
        let items = store.query_all(keys::TIMERS_PK, "").await.unwrap();
        items.into_iter().map(|i| serde_json::from_value::<Timer>(i.data).unwrap()).collect::<Vec<_>>()
    };
    let armed = timers(store.clone()).await;
    assert_eq!(armed.len(), 1, "the rule's first firing is a durable timer");
    let Timer::Schedule { at, version, .. } = armed[0].clone() else { panic!("{armed:?}") };
    assert_eq!(version, 1);

    s.evaluator().fire(&armed[0], s.blobs()).await.unwrap();
    s.evaluator().fire(&armed[0], s.blobs()).await.unwrap();
    let runs = s.automation().executions(&tenant, None, None, &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(runs.len(), 1, "a firing delivered twice runs once");
    assert_eq!(runs[0].rule_id, rule.id);
    assert_eq!(runs[0].event.data["scheduled_time"], platform::domain::timing::rfc3339_of(at));
    let next: Vec<i64> = timers(store.clone())
        .await
        .iter()
        .filter_map(|t| match t {
            Timer::Schedule { at, .. } => Some(*at),
            _ => None,
        })
        .collect();
    assert!(next.contains(&(at + 3600)), "the next firing is set: {next:?}");

    // A changed rule arms its own timer; the old version's timers do nothing.
    s.automation().toggle_rule(&actor, &tenant, &rule.id, false).await.unwrap();
    let later = Timer::Schedule { tenant_id: "clockwork".into(), rule_id: rule.id.clone(), version: 1, at: at + 3600 };
    s.evaluator().fire(&later, s.blobs()).await.unwrap();
    assert_eq!(s.automation().executions(&tenant, None, None, &PageRequest::first(10)).await.unwrap().items.len(), 1);
}

#[tokio::test]
async fn a_bounded_sweep_reaches_every_shard_despite_a_backlog_in_one() {
    let (_dir, store) = embedded_store();
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let tenant = TenantId::parse("sweepy").unwrap();
    // 60 due markers in one shard (of runs that no longer exist) and one in another.
    let marker = |id: &str| {
        platform::ports::store::Item::new(keys::sweep_pk(id), keys::sweep_sk(100, &tenant, id), 1, json!({}))
    };
    let crowded = keys::sweep_pk("run-0");
    let mut backlog = 0;
    let mut i = 0;
    while backlog < 60 {
        let id = format!("run-{i}");
        i += 1;
        if keys::sweep_pk(&id) == crowded {
            store.put(marker(&id), platform::ports::store::Condition::Absent).await.unwrap();
            backlog += 1;
        }
    }
    let lonely = (0..).map(|n| format!("other-{n}")).find(|id| keys::sweep_pk(id) != crowded).unwrap();
    store.put(marker(&lonely), platform::ports::store::Condition::Absent).await.unwrap();

    s.runs().sweep_at_most(200, 30).await.unwrap();
    assert!(
        store.query_all(&keys::sweep_pk(&lonely), "").await.unwrap().is_empty(),
        "the other shard's due marker was reached within the budget"
    );
    let left = store.query_all(&crowded, "").await.unwrap().len();
    assert!((30..60).contains(&left), "the backlog is worked off in bounded steps: {left} left");
    s.runs().sweep_at_most(200, 100).await.unwrap();
    assert!(store.query_all(&crowded, "").await.unwrap().is_empty(), "the next sweeps go on");
}

#[tokio::test]
async fn a_delayed_action_without_recheck_runs_even_if_its_conditions_no_longer_hold() {
    let (_dir, store) = embedded_store();
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let blind = json!([{"type": "send_notification", "parameters": {"recipient": "m@example.com", "message": "{{value}}"}, "delay": "PT2S", "recheck": false}]);
    let tenant = tenant_with_rule(&s, "no-recheck", blind).await;
    let created = creation(&s, &tenant, 20000).await;
    s.publisher().publish(std::slice::from_ref(&created)).await.unwrap();
    let run = only_run(&s, &tenant).await;
    let (_, _, id) = keys::parse_record_sk(&created.new.as_ref().unwrap().sk).unwrap();
    let sales = SystemId::parse("sales").unwrap();
    let key = platform::app::records::RecordKey { system: &sales, entity: "opportunities", id };
    s.records()
        .patch(&Actor::system("test"), &tenant, key, json!({"value": 500}).as_object().unwrap().clone(), None)
        .await
        .unwrap();

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    s.evaluator().fire(&action_timer(&run), s.blobs()).await.unwrap();
    let queue = local_queue(store.clone());
    let leased = queue.receive(10).await.unwrap();
    assert_eq!(leased.len(), 1, "queued although value 500 no longer meets the rule");
    s.executor().execute(&leased[0].message).await.unwrap();
    let notes = s.automation().notifications(&tenant, &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(notes[0].message, "20000", "with the event's data as it was");
}

#[tokio::test]
async fn a_delay_until_a_date_field_follows_the_field_when_it_moves() {
    let (_dir, store) = embedded_store();
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    // The close date is a date (midnight UTC) 3 days on; the offset makes the action due in 2 s.
    let now = platform::domain::time::unix_now() as i64;
    let day = |days: i64| platform::domain::timing::rfc3339_of(now + days * 86_400)[..10].to_string();
    let soon = day(3);
    let before = platform::domain::timing::epoch_of(&soon).unwrap() - (now + 2);
    let until = json!([{"type": "create_task", "parameters": {"title": "Close soon"}, "delay": {"until": "expected_close_date", "offset": format!("-PT{before}S")}}]);
    let tenant = tenant_with_rule(&s, "follows", until).await;
    let sales = SystemId::parse("sales").unwrap();
    let record = s
        .records()
        .create(
            &Actor::system("test"),
            &tenant,
            &sales,
            "opportunities",
            json!({"name": "Dated", "value": 20000, "stage": "prospecting", "expected_close_date": soon})
                .as_object()
                .unwrap()
                .clone(),
        )
        .await
        .unwrap();
    let item = s
        .store
        .get(&keys::tenant_pk(&tenant), &keys::record_sk(&sales, "opportunities", &record.record_id))
        .await
        .unwrap()
        .unwrap();
    s.publisher().publish(&[StoreChange { seq: 1, old: None, new: Some(item) }]).await.unwrap();
    let run = only_run(&s, &tenant).await;
    assert_eq!(run.actions[0].status, ActionStatus::Waiting);

    // The close date moves a month later before the action is due.
    let later = day(33);
    let key = platform::app::records::RecordKey { system: &sales, entity: "opportunities", id: &record.record_id };
    s.records()
        .patch(
            &Actor::system("test"),
            &tenant,
            key,
            json!({"expected_close_date": later}).as_object().unwrap().clone(),
            None,
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    s.evaluator().fire(&action_timer(&run), s.blobs()).await.unwrap();
    let moved = only_run(&s, &tenant).await;
    assert_eq!(moved.actions[0].status, ActionStatus::Waiting, "still waiting, for the new date");
    let due = platform::domain::timing::epoch_of(moved.actions[0].due_at.as_deref().unwrap()).unwrap();
    assert_eq!(due, platform::domain::timing::epoch_of(&later).unwrap() - before);
    assert!(local_queue(store.clone()).receive(10).await.unwrap().is_empty(), "nothing queued at the old date");
}

/// A store that writes down every call it passes on: (operation, sort key or prefix; a
/// batch read one entry per key), the sort keys each query returned, and the keys of each
/// batch read. With a meeting, the first reads of its two kinds
/// of item wait for each other: they pass only if they are made at the same time.
struct Counted {
    inner: Arc<dyn Store>,
    calls: std::sync::Mutex<Vec<(&'static str, String)>>,
    returned: std::sync::Mutex<Vec<String>>,
    batches: std::sync::Mutex<Vec<Vec<String>>>,
    meeting: Option<Meeting>,
}

struct Meeting {
    kinds: [&'static str; 2],
    barrier: tokio::sync::Barrier,
    arrived: std::sync::atomic::AtomicUsize,
}

impl Counted {
    fn over(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            calls: Default::default(),
            returned: Default::default(),
            batches: Default::default(),
            meeting: None,
        })
    }

    fn meeting(inner: Arc<dyn Store>, kinds: [&'static str; 2]) -> Arc<Self> {
        let meeting = Meeting { kinds, barrier: tokio::sync::Barrier::new(2), arrived: Default::default() };
        Arc::new(Self {
            inner,
            calls: Default::default(),
            returned: Default::default(),
            batches: Default::default(),
            meeting: Some(meeting),
        })
    }

    /// A call on an item of one of the meeting's kinds waits there for the other kind's
    /// (the first two such calls): both must be under way at once.
    async fn arrive(&self, sk: &str) {
        if let Some(meeting) = &self.meeting {
            if meeting.kinds.iter().any(|k| sk.starts_with(k))
                && meeting.arrived.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < meeting.kinds.len()
            {
                meeting.barrier.wait().await;
            }
        }
    }

    fn note(&self, op: &'static str, key: &str) {
        self.calls.lock().unwrap().push((op, key.to_string()));
    }

    /// The calls since the last take, of the sort keys `about` picks.
    fn take(&self, about: impl Fn(&str) -> bool) -> Vec<(&'static str, String)> {
        self.returned.lock().unwrap().clear();
        std::mem::take(&mut *self.calls.lock().unwrap()).into_iter().filter(|(_, key)| about(key)).collect()
    }
}

#[async_trait::async_trait]
impl Store for Counted {
    async fn get(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<platform::ports::store::Item>, platform::ports::store::StoreError> {
        self.note("GetItem", sk);
        self.arrive(sk).await;
        self.inner.get(pk, sk).await
    }

    async fn get_many(
        &self,
        keys: &[(&str, &str)],
    ) -> Result<Vec<Option<platform::ports::store::Item>>, platform::ports::store::StoreError> {
        for (_, sk) in keys {
            self.note("BatchGetItem", sk);
        }
        self.batches.lock().unwrap().push(keys.iter().map(|(_, sk)| sk.to_string()).collect());
        if let Some((_, sk)) = keys.first() {
            self.arrive(sk).await;
        }
        self.inner.get_many(keys).await
    }

    async fn put(
        &self,
        item: platform::ports::store::Item,
        condition: platform::ports::store::Condition,
    ) -> Result<(), platform::ports::store::StoreError> {
        self.note("PutItem", &item.sk);
        self.inner.put(item, condition).await
    }

    async fn query(
        &self,
        query: platform::ports::store::Query<'_>,
    ) -> Result<platform::ports::store::Page, platform::ports::store::StoreError> {
        self.note("Query", query.sk_prefix);
        let page = self.inner.query(query).await?;
        self.returned.lock().unwrap().extend(page.items.iter().map(|i| i.sk.clone()));
        Ok(page)
    }

    async fn transact(
        &self,
        writes: Vec<platform::ports::store::Write>,
    ) -> Result<(), platform::ports::store::StoreError> {
        for write in &writes {
            self.note("TransactWriteItems", write.key().1);
        }
        if let Some(first) = writes.first() {
            self.arrive(first.key().1).await;
        }
        self.inner.transact(writes).await
    }

    async fn ping(&self) -> Result<(), platform::ports::store::StoreError> {
        self.inner.ping().await
    }
}

fn about_rules(sk: &str) -> bool {
    sk.starts_with("RULE")
}

/// An evaluator with nothing cached reads the rules and their generation marker in one
/// query (not the rules' version history); with its cache filled, only the marker; after
/// a rule change, the marker and then the rules again.
async fn rules_are_read_once_per_generation(store: Arc<dyn Store>) {
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let tenant = notifying_tenant(&s, "cachedrules").await;
    let filter = Default::default();
    let rule = s.automation().list_rules(&tenant, &filter, &PageRequest::first(10)).await.unwrap().items.remove(0);
    let renamed: RuleInput = serde_json::from_value(json!({
        "name": "High Value Deal Alert (renamed)", "module_type": "sales", "trigger_id": "high_value_opportunity",
        "conditions": [{"type": "value_threshold", "value": 10000}],
        "actions": [{"type": "send_notification", "parameters": {"recipient": "m@example.com", "message": "renamed"}}]
    }))
    .unwrap();
    s.automation().update_rule(&Actor::system("test"), &tenant, &rule.id, renamed).await.unwrap();
    let counted = Counted::over(store.clone());
    let fresh = services(counted.clone(), mail.path()).await;
    counted.take(about_rules);
    let (sales, trigger) = ("sales", "high_value_opportunity");

    let cold = fresh.evaluator().rules_for(&tenant, sales, trigger).await.unwrap();
    assert_eq!(cold.len(), 1);
    let returned = counted.returned.lock().unwrap().clone();
    assert_eq!(counted.take(about_rules), vec![("Query", "RULE".to_string())], "one query, no marker read");
    assert!(returned.iter().any(|sk| sk == keys::RULES_GENERATION_SK), "the marker came with the rules: {returned:?}");
    assert!(!returned.iter().any(|sk| sk.starts_with("RULEVER#")), "no rule versions read: {returned:?}");

    let warm = fresh.evaluator().rules_for(&tenant, sales, trigger).await.unwrap();
    assert_eq!(warm.len(), 1);
    assert_eq!(counted.take(about_rules), vec![("GetItem", keys::RULES_GENERATION_SK.to_string())]);

    let notify =
        json!([{"type": "send_notification", "parameters": {"recipient": "n@example.com", "message": "second"}}]);
    let second: RuleInput = serde_json::from_value(json!({
        "name": "Second alert", "module_type": sales, "trigger_id": trigger,
        "conditions": [{"type": "value_threshold", "value": 10}], "actions": notify
    }))
    .unwrap();
    s.automation().create_rule(&Actor::system("test"), &tenant, second).await.unwrap();
    let changed = fresh.evaluator().rules_for(&tenant, sales, trigger).await.unwrap();
    assert_eq!(changed.len(), 2, "the new rule is seen at once");
    assert_eq!(
        counted.take(about_rules),
        vec![("GetItem", keys::RULES_GENERATION_SK.to_string()), ("Query", "RULE".to_string())]
    );
}

on_both_stores!(rules_are_read_once_per_generation, "rulecache");

/// A high-value opportunity event of the sales trigger the sample rules watch.
fn high_value_event(tenant: &TenantId, event_id: &str) -> platform::domain::events::BusinessEvent {
    serde_json::from_value(json!({
        "event_id": event_id, "tenant_id": tenant.to_string(), "module_type": "sales",
        "trigger_id": "high_value_opportunity", "occurred_at": "2026-11-22T00:00:00.000Z",
        "data": {"opportunity_id": "01JSAMPLEOPPORTUNITY0000001", "opportunity_name": "Deal", "value": 20000},
        "changes": {}, "causation": {"depth": 0, "action_id": null}
    }))
    .unwrap()
}

/// The evaluator reads a trigger's install with its rules, once per rules generation: the
/// entity and fields the manifest gives are kept with the compiled rules, not read again
/// for each matched event.
async fn the_install_is_read_once_per_rules_generation(store: Arc<dyn Store>) {
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let tenant = notifying_tenant(&s, "installread").await;
    let counted = Counted::over(store.clone());
    let fresh = services(counted.clone(), mail.path()).await;
    counted.take(|_| false);
    let about_install = |sk: &str| sk.starts_with(keys::INSTALL_PREFIX);

    let first = fresh.evaluator().evaluate(&high_value_event(&tenant, "firstevent")).await.unwrap();
    assert_eq!(first.len(), 1, "the rule matched");
    assert_eq!(counted.take(about_install), vec![("GetItem", keys::install_sk(&SystemId::parse("sales").unwrap()))]);
    let second = fresh.evaluator().evaluate(&high_value_event(&tenant, "secondevent")).await.unwrap();
    assert_eq!(second.len(), 1, "the rule matched again");
    assert_eq!(counted.take(about_install), vec![], "the install is not read again");
    let item = store.get(&keys::tenant_pk(&tenant), &keys::execution_sk(&second[0])).await.unwrap().unwrap();
    assert_eq!(item.data["entity"], json!("sales/opportunities"), "the cached entity is the run's");
}

on_both_stores!(the_install_is_read_once_per_rules_generation, "installread");

/// Compiled rules are trusted on their generation for a bounded time only: a rule changed
/// without the marker moving (what a read racing a change can pair up, since a Query is
/// not isolated from a transaction) is cached until then, and read again after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_read_again_at_their_max_age() {
    use platform::ports::store::{Condition, Item};
    let (dir, embedded) = embedded_store();
    let store: Arc<dyn Store> = embedded;
    let s = services(store.clone(), dir.path()).await;
    let tenant = notifying_tenant(&s, "maxage").await;
    let (sales, trigger) = ("sales", "high_value_opportunity");
    let evaluator = s.evaluator().clone();
    assert_eq!(evaluator.rules_for(&tenant, sales, trigger).await.unwrap().len(), 1, "the rule, compiled");
    let rule = s.automation().list_rules(&tenant, &Default::default(), &PageRequest::first(10)).await.unwrap().items;
    let pk = keys::tenant_pk(&tenant);
    let stored = store.get(&pk, &keys::rule_sk(&rule[0].id)).await.unwrap().expect("the rule's item");
    let mut data = stored.data.clone();
    data["is_active"] = json!(false);
    let torn = Item::new(pk.clone(), stored.sk.clone(), stored.version + 1, data);
    store.put(torn, Condition::Version(stored.version)).await.unwrap();

    let trusted = evaluator.rules_for(&tenant, sales, trigger).await.unwrap();
    assert_eq!(trusted.len(), 1, "within its max age, the generation alone is trusted");
    let aged = evaluator.clone().with_rules_max_age(std::time::Duration::ZERO);
    assert_eq!(aged.rules_for(&tenant, sales, trigger).await.unwrap().len(), 0, "read again once aged");
}

/// Installing, upgrading and removing a system move the rules generation, so an
/// evaluator's cached rules (compiled with the installed manifests) are compiled again.
async fn an_install_change_moves_the_rules_generation(store: Arc<dyn Store>) {
    use platform::app::rules_generation::current;
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let tenant = notifying_tenant(&s, "generations").await;
    let actor = Actor::system("test");
    let support = SystemId::parse("support").unwrap();
    let before = current(store.as_ref(), &tenant).await.unwrap();
    s.installs().install(&actor, &tenant, &support, None).await.unwrap();
    let installed = current(store.as_ref(), &tenant).await.unwrap();
    assert_eq!(installed, before + 1, "an install moves it");
    s.installs().uninstall(&actor, &tenant, &support, false).await.unwrap();
    assert_eq!(current(store.as_ref(), &tenant).await.unwrap(), installed + 1, "an uninstall moves it");
    // crm came with support (its dependency, at 1.1.0) and stayed.
    let crm = SystemId::parse("crm").unwrap();
    let before_rollback = current(store.as_ref(), &tenant).await.unwrap();
    s.installs().change_version(&actor, &tenant, &crm, "1.0.0", None).await.unwrap();
    let rolled_back = current(store.as_ref(), &tenant).await.unwrap();
    assert_eq!(rolled_back, before_rollback + 1, "a version change moves it");
}

on_both_stores!(an_install_change_moves_the_rules_generation, "generations");

/// An event's rate token is taken while its run is written, not after: the run's
/// transaction and the token's bucket read must meet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_takes_its_token_while_its_run_is_written() {
    let (dir, embedded) = embedded_store();
    let store: Arc<dyn Store> = embedded;
    let s = services(store.clone(), dir.path()).await;
    let tenant = notifying_tenant(&s, "tokenmeeting").await;
    let meeting = Counted::meeting(store.clone(), ["EXEC#", "BUCKET#events"]);
    let metered = services(meeting, dir.path()).await;
    let event = high_value_event(&tenant, "meetingevent");
    let evaluated = tokio::time::timeout(std::time::Duration::from_secs(10), metered.evaluator().evaluate(&event))
        .await
        .expect("the run's write and the token's read met: neither waited for the other to finish");
    assert_eq!(evaluated.unwrap().len(), 1, "the rule matched");
    assert_eq!(only_run(&s, &tenant).await.actions.len(), 1);
}

/// Taking a token reads the tenant's limits and its bucket (one batch read) and writes the
/// bucket back with one conditional put, not a transaction (which costs twice the write
/// units).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_costs_one_batch_read_and_one_conditional_put() {
    use platform::app::rate_limits::Flow;
    let moto = Moto::start();
    let store: Arc<dyn Store> = moto.new_table("tokens").await;
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let tenant = notifying_tenant(&s, "tokens").await;
    let counted = Counted::over(store.clone());
    let fresh = services(counted.clone(), mail.path()).await;
    counted.take(|_| true);
    assert_eq!(fresh.limiter().take(&tenant, Flow::Actions).await.unwrap(), None, "the bucket starts full");
    let mut calls = counted.take(|_| true);
    calls.sort();
    let bucket = keys::bucket_sk("actions");
    assert_eq!(
        calls,
        vec![
            ("BatchGetItem", bucket.clone()),
            ("BatchGetItem", keys::LIMITS_SK.to_string()),
            ("PutItem", bucket.clone())
        ]
    );
    assert_eq!(counted.batches.lock().unwrap().len(), 1, "one round trip for both");
    assert_eq!(fresh.limiter().take(&tenant, Flow::Actions).await.unwrap(), None, "the second token of the burst");
    let mut calls = counted.take(|_| true);
    calls.sort();
    assert_eq!(calls, vec![("BatchGetItem", bucket.clone()), ("PutItem", bucket)], "the limits are cached");
}

/// A run whose actions all finished takes its deadline marker away in its last write: the
/// sweep never reads the runs that finished, only the stuck ones.
async fn a_finished_run_leaves_no_deadline_marker(store: Arc<dyn Store>) {
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let tenant = notifying_tenant(&s, "finishing").await;
    let change = creation(&s, &tenant, 20000).await;
    s.publisher().publish(&[change]).await.unwrap();
    let queued = only_run(&s, &tenant).await;
    let deadline = queued.deadline.expect("a run with actions to do has a deadline");
    let (pk, sk) = (keys::sweep_pk(&queued.execution_id), keys::sweep_sk(deadline, &tenant, &queued.execution_id));
    assert!(store.get(&pk, &sk).await.unwrap().is_some(), "the marker is there while the action waits");
    let batch = batch_of(&local_queue(store.clone())).await;
    assert_eq!(batch.records.len(), 1, "the action's message");
    let response = platform::stages::execute_queue_batch(&s, batch, Default::default()).await;
    assert!(response.batch_item_failures.is_empty());
    let done = only_run(&s, &tenant).await;
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.deadline, None, "a finished run has no deadline");
    assert_eq!(store.get(&pk, &sk).await.unwrap(), None, "and no marker");
    assert_eq!(s.runs().sweep(deadline + 1).await.unwrap(), 0, "the sweep finds nothing to do");
}

on_both_stores!(a_finished_run_leaves_no_deadline_marker, "finishing");

/// The executor reads an action's run, the tenant's limits and its action bucket in one
/// batch read: one store round trip (and at a cold start one connection), not three.
async fn an_action_reads_its_run_limits_and_bucket_in_one_batch(store: Arc<dyn Store>) {
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let tenant = notifying_tenant(&s, "batchread").await;
    s.publisher().publish(&[creation(&s, &tenant, 20000).await]).await.unwrap();
    let counted = Counted::over(store.clone());
    let metered = services(counted.clone(), mail.path()).await;
    let batch = batch_of(&local_queue(store.clone())).await;
    assert_eq!(batch.records.len(), 1, "the action's message");
    let execution = only_run(&s, &tenant).await.execution_id;
    counted.take(|_| true);
    counted.batches.lock().unwrap().clear();
    let response = platform::stages::execute_queue_batch(&metered, batch, Default::default()).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(only_run(&s, &tenant).await.status, RunStatus::Succeeded);
    let first = counted.batches.lock().unwrap().first().cloned().expect("a batch read");
    let mut first_sorted = first.clone();
    first_sorted.sort();
    let mut expected = vec![keys::bucket_sk("actions"), keys::LIMITS_SK.to_string(), keys::execution_sk(&execution)];
    expected.sort();
    assert_eq!(first_sorted, expected, "the run, the limits and the bucket in one batch");
    let single: Vec<_> =
        counted.take(|k| first.iter().any(|f| f == k)).into_iter().filter(|(op, _)| *op == "GetItem").collect();
    assert_eq!(single, vec![], "none of them read on its own");
}

on_both_stores!(an_action_reads_its_run_limits_and_bucket_in_one_batch, "batchread");

/// An install records the digest of its manifest; a built-in system's manifest then comes
/// from the binary, with no catalog read, and equals the catalog's. An install of another
/// manifest under the built-in id and version, or without the digest (made by an older
/// release), reads the catalog.
async fn a_builtin_manifest_comes_from_the_binary(store: Arc<dyn Store>) {
    use platform::ports::store::Condition;
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let tenant = notifying_tenant(&s, "builtins").await;
    let sales = SystemId::parse("sales").unwrap();
    let (install, _) = s.installs().get(&tenant, &sales).await.unwrap();
    let in_catalog = s.catalog().get_version(&sales, &install.version).await.unwrap().manifest;
    let (install_sk, version_sk) = (keys::install_sk(&sales), keys::version_sk(&install.version));

    let counted = Counted::over(store.clone());
    let fresh = services(counted.clone(), mail.path()).await;
    counted.take(|_| true);
    let manifest = fresh.manifests().installed(&tenant, &sales).await.unwrap().expect("sales is installed");
    assert_eq!(*manifest, in_catalog, "the binary's manifest is the catalog's");
    assert_eq!(counted.take(|_| true), vec![("GetItem", install_sk.clone())], "the install alone is read");

    let install_pk = keys::tenant_pk(&tenant);
    let mut item = store.get(&install_pk, &install_sk).await.unwrap().expect("the install");
    let digest = item.data[platform::app::installs::MANIFEST_DIGEST].clone();
    assert_eq!(digest, json!(in_catalog.digest()), "the install recorded its manifest's digest");
    for (stored_digest, case) in [(Some(json!("0".repeat(64))), "another manifest"), (None, "no digest")] {
        match &stored_digest {
            Some(other) => item.data[platform::app::installs::MANIFEST_DIGEST] = other.clone(),
            None => {
                item.data.as_object_mut().unwrap().remove(platform::app::installs::MANIFEST_DIGEST);
            }
        }
        store.put(item.clone(), Condition::None).await.unwrap();
        let other = services(counted.clone(), mail.path()).await;
        counted.take(|_| true);
        let manifest = other.manifests().installed(&tenant, &sales).await.unwrap().expect("sales is installed");
        assert_eq!(*manifest, in_catalog, "{case}");
        assert_eq!(
            counted.take(|_| true),
            vec![("GetItem", install_sk.clone()), ("GetItem", version_sk.clone())],
            "{case}: the catalog version is read"
        );
    }
}

on_both_stores!(a_builtin_manifest_comes_from_the_binary, "builtins");

/// A system configuration is checked against the installed manifest's schema: for a
/// built-in system, from the binary (the install and the head are read, no version).
async fn a_configuration_write_reads_no_builtin_version(store: Arc<dyn Store>) {
    use platform::domain::config::ConfigScope;
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let tenant = notifying_tenant(&s, "builtinconfig").await;
    let scope = ConfigScope::System(SystemId::parse("sales").unwrap());
    let current = s.configs().current(&tenant, &scope).await.unwrap().expect("the install wrote the default");
    let counted = Counted::over(store.clone());
    let fresh = services(counted.clone(), mail.path()).await;
    counted.take(|_| true);
    let written =
        fresh.configs().put(&Actor::system("test"), &tenant, &scope, current.value.clone(), None).await.unwrap();
    assert_eq!(written.value, current.value);
    let reads: Vec<_> =
        counted.take(|_| true).into_iter().filter(|(op, _)| *op == "GetItem").map(|(_, sk)| sk).collect();
    assert!(reads.contains(&keys::install_sk(&SystemId::parse("sales").unwrap())), "the install is read: {reads:?}");
    assert!(!reads.iter().any(|sk| sk.starts_with("VERSION#")), "no catalog version is read: {reads:?}");
}

on_both_stores!(a_configuration_write_reads_no_builtin_version, "builtinconfig");

/// A record call checks against the installed manifest: for a built-in system, from the
/// binary (the install is read, no catalog version).
async fn a_record_call_reads_no_builtin_version(store: Arc<dyn Store>) {
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let tenant = notifying_tenant(&s, "builtinrecords").await;
    let sales = SystemId::parse("sales").unwrap();
    let counted = Counted::over(store.clone());
    let fresh = services(counted.clone(), mail.path()).await;
    counted.take(|_| true);
    let entity = fresh.records().entity(&tenant, &sales, "opportunities").await.unwrap();
    assert!(entity.schema.is_object(), "the entity's schema");
    assert_eq!(counted.take(|_| true), vec![("GetItem", keys::install_sk(&sales))], "the install alone is read");
}

on_both_stores!(a_record_call_reads_no_builtin_version, "builtinrecords");

/// A delivery with nothing to do spends no token of the tenant's action rate: neither a
/// duplicate of an action done before nor a message whose run is not recorded (yet).
async fn deliveries_with_nothing_to_do_take_no_token(store: Arc<dyn Store>) {
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let tenant = notifying_tenant(&s, "idletokens").await;
    s.publisher().publish(&[creation(&s, &tenant, 20000).await]).await.unwrap();
    let batch = batch_of(&local_queue(store.clone())).await;
    assert_eq!(batch.records.len(), 1, "the action's message");
    let done = platform::stages::execute_queue_batch(&s, batch.clone(), Default::default()).await;
    assert!(done.batch_item_failures.is_empty(), "the first delivery runs the action");
    assert_eq!(only_run(&s, &tenant).await.status, RunStatus::Succeeded);
    let counted = Counted::over(store.clone());
    let metered = services(counted.clone(), mail.path()).await;
    let bucket = keys::bucket_sk("actions");
    let writes_to_bucket =
        |calls: Vec<(&'static str, String)>| calls.into_iter().filter(|(op, _)| !op.ends_with("GetItem")).count();
    counted.take(|_| true);

    let duplicate = platform::stages::execute_queue_batch(&metered, batch.clone(), Default::default()).await;
    assert!(duplicate.batch_item_failures.is_empty(), "a duplicate of a done action is done");
    assert_eq!(writes_to_bucket(counted.take(|k| k == bucket)), 0, "the duplicate took no token");

    let mut unknown = batch;
    let mut message: serde_json::Value = serde_json::from_str(unknown.records[0].body.as_deref().unwrap()).unwrap();
    message["execution_id"] = json!("01J00000000000000000000000");
    unknown.records[0].body = Some(message.to_string());
    let early = platform::stages::execute_queue_batch(&metered, unknown, Default::default()).await;
    assert_eq!(early.batch_item_failures.len(), 1, "a message ahead of its run is delivered again later");
    assert_eq!(writes_to_bucket(counted.take(|k| k == bucket)), 0, "and took no token");
}

on_both_stores!(deliveries_with_nothing_to_do_take_no_token, "idletokens");

/// A queued action naming no valid tenant fails like any action (retried, then given
/// up); it does not stop the local queue's tick, and the other actions run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_for_no_valid_tenant_does_not_stop_the_local_queue() {
    use platform::ports::queue::{ActionMessage, ActionQueue};
    let (dir, embedded) = embedded_store();
    let store: Arc<dyn Store> = embedded.clone();
    let s = services(store.clone(), dir.path()).await;
    let tenant = notifying_tenant(&s, "welltenanted").await;
    s.publisher().publish(&[creation(&s, &tenant, 20000).await]).await.unwrap();
    let queued = store.query_all(keys::QUEUE_PK, "").await.unwrap();
    assert_eq!(queued.len(), 1, "the real action's message");
    let mut stray: ActionMessage = serde_json::from_value(queued[0].data["message"].clone()).unwrap();
    stray.tenant_id = "No Such Tenant!".into();
    stray.action_id = "stray-action".into();
    local_queue(store.clone()).enqueue_after(vec![stray], std::time::Duration::ZERO).await.unwrap();
    let pipeline = pipeline(&embedded, &s);
    for _ in 0..3 {
        pipeline.work_once().await.expect("the tick goes on past the stray message");
    }
    assert_eq!(only_run(&s, &tenant).await.status, RunStatus::Succeeded, "the real action ran");
}

/// The markers of a run in its sweep partition.
async fn markers_of(store: &dyn Store, run: &platform::app::engine::Execution) -> Vec<String> {
    let items = store.query_all(&keys::sweep_pk(&run.execution_id), "").await.unwrap();
    items.into_iter().map(|i| i.sk).filter(|sk| sk.ends_with(&run.execution_id)).collect()
}

/// A run given a new deadline (an action reopened for a replay) keeps one marker, the new
/// deadline's: the old one goes in the same transaction.
async fn a_renewed_deadline_replaces_its_marker(store: Arc<dyn Store>) {
    let mail = tempfile::tempdir().unwrap();
    let s = services(store.clone(), mail.path()).await;
    let tenant = notifying_tenant(&s, "renewed").await;
    s.publisher().publish(&[creation(&s, &tenant, 20000).await]).await.unwrap();
    let queued = only_run(&s, &tenant).await;
    let first = queued.deadline.expect("a deadline");
    assert_eq!(markers_of(store.as_ref(), &queued).await.len(), 1);
    let message = local_queue(store.clone()).receive(10).await.unwrap().remove(0).message;
    // Deadlines are whole seconds: the next one must fall in a later second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    s.runs().reopen(&message).await.unwrap();
    let reopened = only_run(&s, &tenant).await;
    let renewed = reopened.deadline.expect("a new deadline");
    assert!(renewed > first, "a later deadline");
    let markers = markers_of(store.as_ref(), &reopened).await;
    assert_eq!(markers, vec![keys::sweep_sk(renewed, &tenant, &reopened.execution_id)], "only the new marker");
}

on_both_stores!(a_renewed_deadline_replaces_its_marker, "renewed");

/// Both stores refuse, as DynamoDB does, a transaction that writes one item twice, and
/// write nothing of it.
async fn a_transaction_writing_one_item_twice_is_refused(store: Arc<dyn Store>) {
    use platform::ports::store::{Condition, Item, StoreError, Write};
    let put = |sk: &str| Write::Put { item: Item::new("TWICE", sk, 1, json!({})), condition: Condition::None };
    let delete = Write::Delete { pk: "TWICE".into(), sk: "a".into(), condition: Condition::None };
    let refused = store.transact(vec![put("a"), put("b"), delete]).await;
    assert!(matches!(refused, Err(StoreError::Invalid(ref why)) if why.contains("(TWICE, a)")), "{refused:?}");
    assert!(store.query_all("TWICE", "").await.unwrap().is_empty(), "nothing written");
    store.transact(vec![put("a"), put("b")]).await.expect("distinct items are one transaction");
}

on_both_stores!(a_transaction_writing_one_item_twice_is_refused, "twice");

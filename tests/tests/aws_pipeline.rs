//! The whole automation path on the AWS code path, against moto: DynamoDB stream records
//! -> event publisher -> EventBridge bus rule routed to SQS -> rule evaluator -> SQS action
//! queue -> action executor -> the notification in DynamoDB.

use std::sync::Arc;

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use blackbox::{drain, Moto};
use platform::adapters::aws_delivery::{EventBridgeBus, SqsQueue};
use platform::adapters::mail_dir::DirectoryMailer;
use platform::app::audit::Actor;
use platform::app::page::PageRequest;
use platform::app::tenants::InitializeTenant;
use platform::app::{keys, Secrets};
use platform::domain::ids::{SystemId, TenantId};
use platform::domain::rules::RuleInput;
use platform::ports::store::Store;
use platform::runtime::{state, Delivery, Seed};
use platform::stages;
use serde_json::{json, Value};

/// A DynamoDB stream record of a new item, as Lambda receives it.
fn stream_event(new_image: Value) -> StreamEvent {
    let image: serde_dynamo::Item = serde_dynamo::to_item(new_image).unwrap();
    serde_json::from_value(json!({"Records": [{
        "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "dynamodb": {"Keys": {}, "NewImage": image, "SequenceNumber": "100", "SizeBytes": 100, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    }]}))
    .unwrap()
}

/// The AWS code path on moto: services over DynamoDB, EventBridge and SQS; tenant `acme`
/// with sales installed, a high-value rule and one high-value opportunity.
struct OnMoto {
    services: Arc<platform::Services>,
    store: Arc<platform::adapters::dynamo::DynamoStore>,
    tap: String,
    actions: String,
    tenant: TenantId,
    sales: SystemId,
    record: platform::domain::records::Record,
    _mail: tempfile::TempDir,
}

async fn on_moto(moto: &Moto, table: &str) -> OnMoto {
    let store = moto.new_table(table).await;
    let (tap, actions) = moto.bus_and_queues("platform-events").await;
    let delivery = Delivery::Aws {
        queue: Arc::new(SqsQueue::new(moto.sqs_client(), actions.clone())),
        bus: Arc::new(EventBridgeBus::new(moto.eventbridge_client(), "platform-events")),
        timers: moto.timers(&format!("{table}-timers"), "platform-events").await,
    };
    let mail = tempfile::tempdir().unwrap();
    let secrets = Secrets {
        platform_admin_token: None,
        jwt_secret: Some("pipeline-test-signing-key-0123456789abcd".into()),
        webhook_secret: None,
        webhook_policy: Default::default(),
    };
    let s = state(store.clone(), Arc::new(DirectoryMailer::new(mail.path())), secrets, delivery, Seed::Yes, None)
        .await
        .unwrap()
        .services;
    let actor = Actor::system("test");
    let tenant = TenantId::parse("acme").unwrap();
    let init: InitializeTenant = serde_json::from_value(json!({"tenant_id": "acme", "name": "Acme", "admin_email": "o@acme.example.com", "admin_password": "owner password 1234"})).unwrap();
    s.tenants().initialize_tenant(&actor, init).await.unwrap();
    let sales = SystemId::parse("sales").unwrap();
    s.installs().install(&actor, &tenant, &sales, None).await.unwrap();
    let rule: RuleInput = serde_json::from_value(json!({
        "name": "High Value Deal Alert", "module_type": "sales", "trigger_id": "high_value_opportunity",
        "conditions": [{"type": "value_threshold", "value": 10000}],
        "actions": [{"type": "send_notification", "parameters": {"recipient": "sales-manager@example.com", "message": "New high-value opportunity: {{opportunity_name}} - ${{value}}"}}]
    }))
    .unwrap();
    s.automation().create_rule(&actor, &tenant, rule).await.unwrap();
    let record = s
        .records()
        .create(
            &actor,
            &tenant,
            &sales,
            "opportunities",
            json!({"name": "Stream deal", "value": 20000, "stage": "prospecting"}).as_object().unwrap().clone(),
        )
        .await
        .unwrap();
    OnMoto { services: s, store, tap, actions, tenant, sales, record, _mail: mail }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_to_notification_through_eventbridge_and_sqs_on_moto() {
    let moto = Moto::start();
    let aws = on_moto(&moto, "pipeline").await;
    let (s, store, tap, actions) = (aws.services, aws.store, aws.tap, aws.actions);
    let (tenant, sales) = (aws.tenant, aws.sales);
    let record = aws.record;

    // 1. The stream record of the write -> publisher -> EventBridge.
    let item = store
        .get(&keys::tenant_pk(&tenant), &keys::record_sk(&sales, "opportunities", &record.record_id))
        .await
        .unwrap()
        .unwrap();
    let event = stream_event(json!({"PK": item.pk, "SK": item.sk, "version": item.version, "data": item.data}));
    assert_eq!(stages::publish_stream(&s, event).await.unwrap(), 2);

    // 2. The bus rule routed both events to its SQS target; the evaluator takes each.
    let sqs = moto.sqs_client();
    let routed = drain(&sqs, &tap).await;
    assert_eq!(routed.len(), 2, "both business events crossed EventBridge");
    let mut runs = 0;
    for message in &routed {
        let event: CloudWatchEvent<serde_json::Value> = serde_json::from_str(message.body().unwrap()).unwrap();
        assert!(event.source.as_deref().unwrap().starts_with("platform.sales"));
        runs += stages::evaluate_bus_event(&s, event).await.unwrap();
    }
    assert_eq!(runs, 1, "one rule matched one event");

    // 3. The action queue -> executor; a redelivered batch changes nothing. Each message
    // is in its tenant's message group (SQS fair queues).
    let peek = sqs
        .receive_message()
        .queue_url(&actions)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
        .visibility_timeout(0)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let group = peek
        .messages()
        .first()
        .and_then(|m| m.attributes())
        .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId).cloned());
    assert_eq!(group.as_deref(), Some("acme"), "the tenant is the message group");
    let queued = drain(&sqs, &actions).await;
    assert_eq!(queued.len(), 1);
    let batch: SqsEvent = serde_json::from_value(json!({"Records": queued.iter().map(|m| json!({"messageId": m.message_id(), "body": m.body()})).collect::<Vec<_>>()})).unwrap();
    assert!(stages::execute_queue_batch(&s, batch.clone(), Default::default()).await.batch_item_failures.is_empty());
    assert!(stages::execute_queue_batch(&s, batch, Default::default()).await.batch_item_failures.is_empty());
    let notifications = s.automation().notifications(&tenant, &PageRequest::first(10)).await.unwrap();
    assert_eq!(notifications.items.len(), 1);
    assert_eq!(notifications.items[0].message, "New high-value opportunity: Stream deal - $20000");

    // A message that cannot be executed is reported back for redelivery (then the DLQ).
    let bad: SqsEvent =
        serde_json::from_value(json!({"Records": [{"messageId": "m-1", "body": "{\"not\": \"an action\"}"}]})).unwrap();
    let response = stages::execute_queue_batch(&s, bad, Default::default()).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(response.batch_item_failures[0].item_identifier, "m-1");
}

/// Malformed input to each stage is an error naming the problem (Lambda retries it, then
/// its failure destination keeps it), never a panic or a silent success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stage_refuses_malformed_payloads() {
    let moto = Moto::start();
    let store = moto.new_table("malformed").await;
    let (_tap, actions) = moto.bus_and_queues("malformed-events").await;
    let delivery = Delivery::Aws {
        queue: Arc::new(SqsQueue::new(moto.sqs_client(), actions)),
        bus: Arc::new(EventBridgeBus::new(moto.eventbridge_client(), "malformed-events")),
        timers: moto.timers("malformed-timers", "malformed-events").await,
    };
    let mail = tempfile::tempdir().unwrap();
    let secrets = Secrets {
        platform_admin_token: None,
        jwt_secret: None,
        webhook_secret: None,
        webhook_policy: Default::default(),
    };
    let s = state(store, Arc::new(DirectoryMailer::new(mail.path())), secrets, delivery, Seed::No, None)
        .await
        .unwrap()
        .services;

    let stream: StreamEvent = serde_json::from_value(json!({"Records": [{
        "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "dynamodb": {"Keys": {}, "NewImage": {"SK": {"S": "REC#sales#opportunities#x"}}, "SequenceNumber": "1", "SizeBytes": 1, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    }]}))
    .unwrap();
    let error = stages::publish_stream(&s, stream).await.unwrap_err();
    assert!(error.contains("unreadable stream image"), "{error}");

    let no_detail: CloudWatchEvent<serde_json::Value> =
        serde_json::from_value(json!({"source": "platform.sales", "detail-type": "x", "time": "2026-01-01T00:00:00Z", "resources": [], "id": "1", "account": "123456789012", "region": "us-east-1", "version": "0"}))
            .unwrap();
    let error = stages::evaluate_bus_event(&s, no_detail).await.unwrap_err();
    assert!(error.contains("no detail"), "{error}");

    let batch: SqsEvent = serde_json::from_value(json!({"Records": [
        {"messageId": "not-json", "body": "{{{"},
        {"messageId": "empty"},
        {"messageId": "wrong-shape", "body": "{\"action_id\": 1}"}
    ]}))
    .unwrap();
    let response = stages::execute_queue_batch(&s, batch, Default::default()).await;
    let mut failed: Vec<String> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
    failed.sort();
    assert_eq!(failed, ["empty", "not-json", "wrong-shape"], "each malformed message is reported, none is lost");
}

/// An SQS batch of the given bodies, as Lambda hands it over.
fn sqs_batch(bodies: &[String]) -> SqsEvent {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| json!({"messageId": format!("m-{i}"), "body": body, "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:failures"}))
        .collect();
    serde_json::from_value(json!({"Records": records})).unwrap()
}

/// What the three failure queues receive (the action DLQ's message, EventBridge's DLQ
/// copy of an event, the stream's on-failure record) becomes dead letters: the action's
/// run shows it dead, the stream batch is read back from the stream, and each can be
/// replayed into its stage; an unreadable message is kept but not replayable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_queues_become_replayable_dead_letters_on_moto() {
    use platform::app::dead_letters::Parked;
    let moto = Moto::start();
    let aws = on_moto(&moto, "failures").await;
    let s = &aws.services;
    let sqs = moto.sqs_client();
    let streams = platform::adapters::stream_batches::StreamBatches::new(moto.streams_client());

    // The stream batch of everything written so far (the record's INSERT among it).
    let table = moto.dynamodb_client().describe_table().table_name("failures").send().await.unwrap();
    let stream_arn = table.table.unwrap().latest_stream_arn.unwrap();
    let described = moto.streams_client().describe_stream().stream_arn(&stream_arn).send().await.unwrap();
    let shard = described.stream_description.unwrap().shards.unwrap().remove(0);
    let range = shard.sequence_number_range.unwrap();
    let iterator = moto
        .streams_client()
        .get_shard_iterator()
        .stream_arn(&stream_arn)
        .shard_id(shard.shard_id.clone().unwrap())
        .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap();
    let all =
        moto.streams_client().get_records().shard_iterator(iterator.shard_iterator.unwrap()).send().await.unwrap();
    let records = all.records.unwrap();
    let insert = records
        .iter()
        .find(|r| {
            r.dynamodb()
                .and_then(|d| d.keys())
                .and_then(|k| k.get("SK"))
                .and_then(|v| v.as_s().ok())
                .is_some_and(|sk| sk.contains(&aws.record.record_id))
        })
        .expect("the record's INSERT is in the stream");
    let sequence = insert.dynamodb().unwrap().sequence_number().unwrap().to_string();
    assert!(range.starting_sequence_number.is_some());
    let failure = json!({"requestContext": {"condition": "RetryAttemptsExhausted"}, "version": "1.0",
        "DDBStreamBatchInfo": {"shardId": shard.shard_id.unwrap(), "startSequenceNumber": sequence, "endSequenceNumber": sequence,
        "batchSize": 1, "streamArn": stream_arn}});

    // An action message that used up its receives.
    stages::publish_stream(&aws.services, stream_event_of(&aws).await).await.unwrap();
    for message in drain(&sqs, &aws.tap).await {
        let event: CloudWatchEvent<serde_json::Value> = serde_json::from_str(message.body().unwrap()).unwrap();
        stages::evaluate_bus_event(s, event).await.unwrap();
    }
    let queued = drain(&sqs, &aws.actions).await;
    assert_eq!(queued.len(), 1);
    let action = queued[0].body().unwrap().to_string();

    // EventBridge's copy of an event it could not deliver.
    let event = json!({"version": "0", "id": "e-1", "detail-type": "opportunity_created", "source": "platform.sales",
        "account": "123456789012", "time": "2026-11-22T00:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"event_id": "ev-dlq", "tenant_id": "acme", "module_type": "sales", "trigger_id": "high_value_opportunity",
                   "occurred_at": "2026-11-22T00:00:00Z", "data": {"opportunity_name": "From the DLQ", "value": 50000}}});
    let bodies = [action, failure.to_string(), event.to_string(), "not json at all".to_string()];
    let response = stages::keep_dead_letters(s, &streams, sqs_batch(&bodies)).await;
    assert!(response.batch_item_failures.is_empty(), "every message was kept");

    let page = PageRequest::first(50);
    let letters = s.dead_letters().list(&Default::default(), &page).await.unwrap().items;
    let of = |source: &str| letters.iter().filter(|l| l.source == source).cloned().collect::<Vec<_>>();
    assert_eq!(of("action_queue").len(), 1);
    assert_eq!(of("event_bus").len(), 1);
    assert_eq!(of("failures").len(), 1, "the unreadable one, named by its queue");
    let changes = of("change_feed");
    assert_eq!(changes.len(), 1, "the stream batch was read back: {changes:?}");
    let Parked::Change { new: Some(image), .. } = &changes[0].parked else { panic!("{:?}", changes[0].parked) };
    assert!(image.sk.contains(&aws.record.record_id));

    // The dead action shows in its run.
    let runs = s.automation().executions(&aws.tenant, None, None, &page).await.unwrap().items;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].actions[0].status, platform::domain::run_status::ActionStatus::Dead);

    // Replays: the action goes back to the queue, the event and the change to the bus.
    let operator = Actor::system("operator");
    s.dead_letters().replay(&operator, &of("action_queue")[0].dead_letter_id).await.unwrap();
    assert_eq!(drain(&sqs, &aws.actions).await.len(), 1, "the action is queued again");
    s.dead_letters().replay(&operator, &of("event_bus")[0].dead_letter_id).await.unwrap();
    s.dead_letters().replay(&operator, &changes[0].dead_letter_id).await.unwrap();
    let republished = drain(&sqs, &aws.tap).await;
    assert_eq!(republished.len(), 3, "the event, and the change's two events, crossed the bus again");
    let unreadable = s.dead_letters().replay(&operator, &of("failures")[0].dead_letter_id).await;
    assert!(matches!(unreadable, Err(platform::app::error::AppError::Conflict { .. })), "{unreadable:?}");
    let left = s.dead_letters().list(&Default::default(), &page).await.unwrap().items;
    assert_eq!(left.len(), 1, "replayed letters are gone; the unreadable one stays");
}

/// The stream record of the fixture's opportunity, as Lambda would deliver it.
async fn stream_event_of(aws: &OnMoto) -> StreamEvent {
    let item = aws
        .store
        .get(&keys::tenant_pk(&aws.tenant), &keys::record_sk(&aws.sales, "opportunities", &aws.record.record_id))
        .await
        .unwrap()
        .unwrap();
    stream_event(json!({"PK": item.pk, "SK": item.sk, "version": item.version, "data": item.data}))
}

/// A delayed action becomes a one-time EventBridge Scheduler schedule aimed at the bus;
/// its firing (the event Scheduler puts) reaches the evaluator, which queues the action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_actions_are_scheduler_schedules_on_moto() {
    let moto = Moto::start();
    let table = "delays";
    let aws = on_moto(&moto, table).await;
    let (s, store, tap, actions) = (aws.services, aws.store, aws.tap, aws.actions);
    let (tenant, sales, record) = (aws.tenant, aws.sales, aws.record);
    let rule: RuleInput = serde_json::from_value(json!({
        "name": "Follow up later", "module_type": "sales", "trigger_id": "opportunity_created",
        "actions": [{"type": "create_task", "parameters": {"title": "Follow up {{opportunity_name}}"}, "delay": "PT2S"}]
    }))
    .unwrap();
    s.automation().create_rule(&Actor::system("test"), &tenant, rule).await.unwrap();
    let item = store
        .get(&keys::tenant_pk(&tenant), &keys::record_sk(&sales, "opportunities", &record.record_id))
        .await
        .unwrap()
        .unwrap();
    let event = stream_event(json!({"PK": item.pk, "SK": item.sk, "version": item.version, "data": item.data}));
    stages::publish_stream(&s, event).await.unwrap();
    let sqs = moto.sqs_client();
    for message in drain(&sqs, &tap).await {
        stages::evaluate_bus_event(&s, serde_json::from_str(message.body().unwrap()).unwrap()).await.unwrap();
    }
    assert_eq!(drain(&sqs, &actions).await.len(), 1, "only the immediate rule's action is queued");

    // The schedule: one-time, in the platform's group, putting the timer on the bus through the role.
    let scheduler = moto.scheduler_client();
    let group = format!("{table}-timers");
    let listed = scheduler.list_schedules().group_name(&group).send().await.unwrap();
    assert_eq!(listed.schedules().len(), 1, "one schedule for the waiting action");
    let name = listed.schedules()[0].name().unwrap().to_string();
    let schedule = scheduler.get_schedule().name(&name).group_name(&group).send().await.unwrap();
    assert!(schedule.schedule_expression().unwrap().starts_with("at(20"), "{:?}", schedule.schedule_expression());
    assert_eq!(schedule.action_after_completion(), Some(&aws_sdk_scheduler::types::ActionAfterCompletion::Delete));
    let target = schedule.target().unwrap();
    assert_eq!(target.arn(), "arn:aws:events:us-east-1:123456789012:event-bus/platform-events");
    assert_eq!(target.role_arn(), "arn:aws:iam::123456789012:role/platform-scheduler");
    let parameters = target.event_bridge_parameters().unwrap();
    assert_eq!((parameters.source(), parameters.detail_type()), ("platform.timers", "Timer Fired"));
    let input: Value = serde_json::from_str(target.input().unwrap()).unwrap();
    assert_eq!(input["timer"], "action");

    // Scheduler fires when it is due: the event crosses the bus to the evaluator.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let fired = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name("platform-events")
        .source(parameters.source())
        .detail_type(parameters.detail_type())
        .detail(target.input().unwrap())
        .build();
    moto.eventbridge_client().put_events().entries(fired).send().await.unwrap();
    let routed = drain(&sqs, &tap).await;
    assert_eq!(routed.len(), 1, "the fired timer crossed EventBridge");
    for message in &routed {
        stages::evaluate_bus_event(&s, serde_json::from_str(message.body().unwrap()).unwrap()).await.unwrap();
        // Scheduler retries: a second delivery queues nothing new that would act twice.
        stages::evaluate_bus_event(&s, serde_json::from_str(message.body().unwrap()).unwrap()).await.unwrap();
    }
    let queued = drain(&sqs, &actions).await;
    assert!(!queued.is_empty(), "the delayed action is queued when its timer fires");
    let batch: SqsEvent = serde_json::from_value(json!({"Records": queued.iter().map(|m| json!({"messageId": m.message_id(), "body": m.body()})).collect::<Vec<_>>()})).unwrap();
    assert!(stages::execute_queue_batch(&s, batch, Default::default()).await.batch_item_failures.is_empty());
    let tasks = s.automation().tasks(&tenant, &Default::default(), &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(tasks.len(), 1, "performed once");
    assert_eq!(tasks[0].title, "Follow up Stream deal");
}

/// An EventBridge client acting as another AWS account (moto: a role assumed there).
async fn eventbridge_in_account(moto: &Moto, account: &str) -> aws_sdk_eventbridge::Client {
    let assumed = aws_sdk_sts::Client::new(&moto.sdk())
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/forwarder"))
        .role_session_name("forwarder-session")
        .send()
        .await
        .unwrap();
    let c = assumed.credentials().unwrap();
    let credentials = aws_sdk_eventbridge::config::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        None,
        "assumed",
    );
    aws_sdk_eventbridge::Client::new(&moto.sdk_as(credentials))
}

/// The tenant's side of the set-up: a rule on its account's default bus forwarding its
/// S3 events and the challenge to the platform bus (`infra/tenant-forwarder.yaml`).
async fn forward_to_platform(events: &aws_sdk_eventbridge::Client, account: &str) {
    events
        .put_rule()
        .name("to-platform")
        .event_pattern(r#"{"source": ["aws.s3", "account.verification"]}"#)
        .send()
        .await
        .unwrap();
    let platform_bus = "arn:aws:events:us-east-1:123456789012:event-bus/platform-events";
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("platform")
        .arn(platform_bus)
        .role_arn(format!("arn:aws:iam::{account}:role/forwarder"))
        .build()
        .unwrap();
    events.put_targets().rule("to-platform").targets(target).send().await.unwrap();
}

fn entry(source: &str, detail_type: &str, detail: Value) -> aws_sdk_eventbridge::types::PutEventsRequestEntry {
    aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source(source)
        .detail_type(detail_type)
        .detail(detail.to_string())
        .resources("arn:aws:s3:::invoices")
        .build()
}

/// What crossed the platform bus to the evaluator. moto does not stamp `account` on
/// events forwarded from another account; EventBridge always does (the sender cannot
/// choose it), so the test stamps it as EventBridge would.
async fn routed_from(moto: &Moto, tap: &str, account: &str) -> Vec<CloudWatchEvent<Value>> {
    drain(&moto.sqs_client(), tap)
        .await
        .iter()
        .map(|m| {
            let mut event: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            event.as_object_mut().unwrap().entry("account").or_insert(json!(account));
            serde_json::from_value(event).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_s3_events_from_a_proven_account_run_the_tenants_rules_on_moto() {
    let moto = Moto::start();
    let aws = on_moto(&moto, "native").await;
    let (s, tap, actions, tenant) = (aws.services, aws.tap, aws.actions, aws.tenant);
    let actor = Actor::system("test");
    let account = "111122223333";
    let input: platform::app::event_sources::EventSourceInput =
        serde_json::from_value(json!({"account": account, "source": "aws.s3", "detail_type": "Object Created"}))
            .unwrap();
    let registered = s.event_sources().register(&actor, &tenant, input).await.unwrap();
    let token: Value = serde_json::from_str(registered.challenge["Detail"].as_str().unwrap()).unwrap();
    let rule: RuleInput = serde_json::from_value(
        json!({"name": "New invoice", "module_type": "aws", "trigger_id": "aws.s3:Object Created",
        "conditions": [{"type": "pattern", "value": {"detail": {"bucket": {"name": ["invoices"]}}}}],
        "actions": [{"type": "create_task", "parameters": {"title": "File the invoice"}}]}),
    )
    .unwrap();
    s.automation().create_rule(&actor, &tenant, rule).await.unwrap();

    // The platform bus routes native events to the evaluator (as the template's NativeEvents rule).
    let tap_arn = moto.queue_arn(&tap).await;
    let platform = moto.eventbridge_client();
    platform
        .put_rule()
        .name("native-to-evaluator")
        .event_bus_name("platform-events")
        .event_pattern(
            r#"{"source": [{"anything-but": {"prefix": "platform."}}], "detail": {"tenant_id": [{"exists": false}]}}"#,
        )
        .send()
        .await
        .unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder().id("evaluator").arn(tap_arn).build().unwrap();
    platform
        .put_targets()
        .rule("native-to-evaluator")
        .event_bus_name("platform-events")
        .targets(target)
        .send()
        .await
        .unwrap();

    // The tenant's account forwards its default bus to the platform bus, and proves itself.
    let theirs = eventbridge_in_account(&moto, account).await;
    forward_to_platform(&theirs, account).await;
    let proof = entry("account.verification", "Platform Account Verification", token);
    theirs.put_events().entries(proof).send().await.unwrap();
    let s3 = entry("aws.s3", "Object Created", json!({"bucket": {"name": "invoices"}, "object": {"key": "a.pdf"}}));
    theirs.put_events().entries(s3.clone()).send().await.unwrap();
    let routed = routed_from(&moto, &tap, account).await;
    assert_eq!(routed.len(), 2, "both crossed from the tenant's account to the platform bus");
    let mut runs = 0;
    for event in routed {
        runs += stages::evaluate_bus_event(&s, event).await.unwrap();
    }
    assert_eq!(runs, 1, "once proven, the account's S3 event ran the tenant's rule");
    assert_eq!(
        s.event_sources().list(&tenant).await.unwrap().items[0].status,
        platform::app::event_sources::SourceStatus::Verified
    );
    let queued = drain(&moto.sqs_client(), &actions).await;
    let batch: SqsEvent = serde_json::from_value(json!({"Records": queued.iter().map(|m| json!({"messageId": m.message_id(), "body": m.body()})).collect::<Vec<_>>()})).unwrap();
    assert!(stages::execute_queue_batch(&s, batch, Default::default()).await.batch_item_failures.is_empty());
    let tasks = s.automation().tasks(&tenant, &Default::default(), &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(tasks.iter().filter(|t| t.title == "File the invoice").count(), 1);

    // Another account's events are no tenant's: dropped and counted, never evaluated.
    let stranger = "444455556666";
    let strangers = eventbridge_in_account(&moto, stranger).await;
    forward_to_platform(&strangers, stranger).await;
    strangers.put_events().entries(s3).send().await.unwrap();
    let routed = routed_from(&moto, &tap, stranger).await;
    assert_eq!(routed.len(), 1);
    for event in routed {
        assert_eq!(stages::evaluate_bus_event(&s, event).await.unwrap(), 0);
    }
    let unmapped = s.event_sources().unmapped().await.unwrap();
    assert_eq!(unmapped.iter().find(|u| u.account == stranger).map(|u| u.count), Some(1));
    assert!(drain(&moto.sqs_client(), &actions).await.is_empty(), "nothing queued for the stranger's event");
}

/// The owner's export on the AWS path: the job's timer is an EventBridge Scheduler
/// schedule (moto); delivered as Scheduler delivers it (its input as a `platform.timers`
/// event to the evaluator stage), the evaluator writes the archive to S3 (moto), and the
/// job says where to download it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_runs_from_its_schedule_into_s3() {
    let moto = Moto::start();
    let store = moto.new_table("exports").await;
    let (_tap, actions) = moto.bus_and_queues("export-events").await;
    let delivery = Delivery::Aws {
        queue: Arc::new(SqsQueue::new(moto.sqs_client(), actions)),
        bus: Arc::new(EventBridgeBus::new(moto.eventbridge_client(), "export-events")),
        timers: moto.timers("export-timers", "export-events").await,
    };
    let files: Arc<dyn platform::ports::blobs::Blobs> = moto.files("exports-bucket").await;
    let mail = tempfile::tempdir().unwrap();
    let secrets = Secrets {
        platform_admin_token: None,
        jwt_secret: Some("pipeline-test-signing-key-0123456789abcd".into()),
        webhook_secret: None,
        webhook_policy: Default::default(),
    };
    let s =
        state(store.clone(), Arc::new(DirectoryMailer::new(mail.path())), secrets, delivery, Seed::Yes, Some(files))
            .await
            .unwrap()
            .services;
    let actor = Actor::system("test");
    let tenant = TenantId::parse("acme").unwrap();
    let init: InitializeTenant = serde_json::from_value(json!({"tenant_id": "acme", "name": "Acme", "admin_email": "o@acme.example.com", "admin_password": "owner password 1234"})).unwrap();
    s.tenants().initialize_tenant(&actor, init).await.unwrap();
    let sales = SystemId::parse("sales").unwrap();
    s.installs().install(&actor, &tenant, &sales, None).await.unwrap();
    let deal = json!({"name": "Exported deal", "value": 7, "stage": "proposal"});
    s.records().create(&actor, &tenant, &sales, "opportunities", deal.as_object().unwrap().clone()).await.unwrap();

    let job = platform::app::exports::request(s.store.as_ref(), s.timers().as_ref(), &actor, &tenant).await.unwrap();
    let scheduler = moto.scheduler_client();
    let listed = scheduler.list_schedules().group_name("export-timers").send().await.unwrap();
    assert_eq!(listed.schedules().len(), 1, "the export's timer is a schedule");
    let name = listed.schedules()[0].name().unwrap();
    let schedule = scheduler.get_schedule().group_name("export-timers").name(name).send().await.unwrap();
    let target = schedule.target().unwrap();
    assert_eq!(target.event_bridge_parameters().unwrap().source(), "platform.timers");
    let fired: CloudWatchEvent<Value> = serde_json::from_value(json!({
        "version": "0", "id": "e-1", "detail-type": "Timer Fired", "source": "platform.timers",
        "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [],
        "detail": serde_json::from_str::<Value>(target.input().unwrap()).unwrap()
    }))
    .unwrap();
    assert_eq!(stages::evaluate_bus_event(&s, fired).await.unwrap(), 1);

    let (done, _) = platform::app::exports::get(s.store.as_ref(), &tenant, &job.export_id).await.unwrap();
    let view = serde_json::to_value(&done).unwrap();
    assert_eq!(view["status"], "complete", "{view}");
    assert_eq!(view["files"]["records.sales.opportunities.jsonl"], 1, "{view}");
    let object = moto.s3_client().get_object().bucket("exports-bucket").key(&done.file_key).send().await.unwrap();
    let bytes = object.body.collect().await.unwrap().into_bytes();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a zip archive in S3");
    let mut deals = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("records.sales.opportunities.jsonl").unwrap(), &mut deals)
        .unwrap();
    assert!(deals.contains("Exported deal"), "{deals}");
}

/// An uninstall that runs out of time deletes what it could and says so; the system stays
/// installed (so asking again resumes) until its records are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uninstall_out_of_time_resumes_on_dynamodb() {
    let moto = Moto::start();
    let s = on_moto(&moto, "purges").await;
    let actor = Actor::system("test");
    let removed = [s.sales.clone()];
    let none_yet =
        s.services.records().purge_systems(&actor, &s.tenant, &removed, std::time::Duration::ZERO).await.unwrap();
    assert_eq!((none_yet.deleted_records, none_yet.complete), (0, false));
    assert!(s.services.records().installed_manifest(&s.tenant, &s.sales).await.is_ok(), "still installed");
    let done = s.services.installs().uninstall(&actor, &s.tenant, &s.sales, false).await.unwrap();
    assert_eq!((done.deleted_records, done.complete), (1, true), "the opportunity went");
    let record =
        s.store.get(&keys::tenant_pk(&s.tenant), &format!("REC#sales#opportunities#{}", s.record.record_id)).await;
    assert!(record.unwrap().is_none());
}

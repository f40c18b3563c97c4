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
use platform::domain::events::BusinessEvent;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_to_notification_through_eventbridge_and_sqs_on_moto() {
    let moto = Moto::start();
    let store = moto.new_table("pipeline").await;
    let (tap, actions) = moto.bus_and_queues("platform-events").await;
    let delivery = Delivery::Aws {
        queue: Arc::new(SqsQueue::new(moto.sqs_client(), actions.clone())),
        bus: Arc::new(EventBridgeBus::new(moto.eventbridge_client(), "platform-events")),
    };
    let mail = tempfile::tempdir().unwrap();
    let secrets = Secrets {
        platform_admin_token: None,
        jwt_secret: Some("pipeline-test-signing-key-0123456789abcd".into()),
        webhook_secret: None,
        webhook_policy: Default::default(),
    };
    let s = state(store.clone(), Arc::new(DirectoryMailer::new(mail.path())), secrets, delivery, Seed::Yes)
        .await
        .unwrap()
        .services;

    let actor = Actor::system("test");
    let tenant = TenantId::parse("acme").unwrap();
    let init: InitializeTenant = serde_json::from_value(json!({"tenant_id": "acme", "name": "Acme", "admin_email": "o@acme.example.com", "admin_password": "owner password 1234"})).unwrap();
    s.tenants.initialize_tenant(&actor, init).await.unwrap();
    let sales = SystemId::parse("sales").unwrap();
    s.installs.install(&actor, &tenant, &sales, None).await.unwrap();
    let rule: RuleInput = serde_json::from_value(json!({
        "name": "High Value Deal Alert", "module_type": "sales", "trigger_id": "high_value_opportunity",
        "conditions": [{"type": "value_threshold", "value": 10000}],
        "actions": [{"type": "send_notification", "parameters": {"recipient": "sales-manager@example.com", "message": "New high-value opportunity: {{opportunity_name}} - ${{value}}"}}]
    }))
    .unwrap();
    s.automation.create_rule(&actor, &tenant, rule).await.unwrap();
    let record = s
        .records
        .create(
            &actor,
            &tenant,
            &sales,
            "opportunities",
            json!({"name": "Stream deal", "value": 20000, "stage": "prospecting"}).as_object().unwrap().clone(),
        )
        .await
        .unwrap();

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
        let event: CloudWatchEvent<BusinessEvent> = serde_json::from_str(message.body().unwrap()).unwrap();
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
    let notifications = s.automation.notifications(&tenant, &PageRequest::first(10)).await.unwrap();
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
    };
    let mail = tempfile::tempdir().unwrap();
    let secrets = Secrets {
        platform_admin_token: None,
        jwt_secret: None,
        webhook_secret: None,
        webhook_policy: Default::default(),
    };
    let s =
        state(store, Arc::new(DirectoryMailer::new(mail.path())), secrets, delivery, Seed::No).await.unwrap().services;

    let stream: StreamEvent = serde_json::from_value(json!({"Records": [{
        "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "dynamodb": {"Keys": {}, "NewImage": {"SK": {"S": "REC#sales#opportunities#x"}}, "SequenceNumber": "1", "SizeBytes": 1, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    }]}))
    .unwrap();
    let error = stages::publish_stream(&s, stream).await.unwrap_err();
    assert!(error.contains("unreadable stream image"), "{error}");

    let no_detail: CloudWatchEvent<BusinessEvent> =
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

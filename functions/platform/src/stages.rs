//! The automation stages as Lambda handlers: DynamoDB stream -> publisher, EventBridge
//! -> evaluator, SQS -> executor (with partial batch failures).

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::Value;

use crate::adapters::stream_batches::image;
use crate::app::dead_letters::{DeadLetter, Parked};
use crate::domain::events::BusinessEvent;
use crate::ports::feed::StoreChange;
use crate::ports::queue::ActionMessage;
use crate::Services;

/// DynamoDB stream batch -> business events on the bus. An error makes Lambda retry the
/// batch (the stream is the outbox: nothing is lost; event ids are deterministic).
pub async fn publish_stream(services: &Services, event: StreamEvent) -> Result<usize, String> {
    let mut changes = Vec::with_capacity(event.records.len());
    for (seq, record) in event.records.into_iter().enumerate() {
        let change = record.change;
        changes.push(StoreChange { seq: seq as u64, old: image(change.old_image)?, new: image(change.new_image)? });
    }
    services.publisher().publish(&changes).await.map_err(|e| e.to_string())
}

/// The platform's own AWS account (`PLATFORM_ACCOUNT`): only events from it may speak
/// for a tenant (the platform's business events, timers, enveloped events from outside);
/// everything another account puts on the bus is a native event of that account.
fn own_account() -> Option<&'static str> {
    static OWN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    OWN.get_or_init(|| std::env::var("PLATFORM_ACCOUNT").ok().filter(|a| !a.is_empty())).as_deref()
}

/// One EventBridge event -> the evaluator: a business event (`detail` is the envelope)
/// -> matching rules -> action queue; a fired timer (`platform.timers`) -> its action or
/// schedule; a native event of another service or account -> its tenant's `aws` rules.
pub async fn evaluate_bus_event(services: &Services, event: CloudWatchEvent<Value>) -> Result<usize, String> {
    let from_elsewhere = match (own_account(), event.account_id.as_deref()) {
        (Some(own), Some(account)) => own != account,
        _ => false,
    };
    let enveloped = event.detail.as_ref().is_some_and(|d| {
        ["tenant_id", "module_type", "trigger_id"].iter().all(|k| d.get(k).is_some_and(Value::is_string))
    });
    let platform = event.source.as_deref().is_some_and(|s| s.starts_with("platform."));
    if from_elsewhere || (!enveloped && !platform) {
        let native: crate::app::event_sources::NativeEvent =
            serde_json::from_value(serde_json::to_value(&event).map_err(|e| e.to_string())?)
                .map_err(|e| format!("an EventBridge event of no known shape: {e}"))?;
        return crate::app::event_sources::evaluate_native(services, &native).await.map_err(|e| e.to_string());
    }
    let detail = event.detail.ok_or("the EventBridge event has no detail")?;
    if event.source.as_deref() == Some(crate::ports::timers::TIMER_SOURCE) {
        let timer: crate::ports::timers::Timer =
            serde_json::from_value(detail).map_err(|e| format!("a fired timer of no known shape: {e}"))?;
        services.evaluator().fire(&timer, services.blobs()).await.map_err(|e| e.to_string())?;
        return Ok(1);
    }
    let detail: BusinessEvent =
        serde_json::from_value(detail).map_err(|e| format!("a business event of no known shape: {e}"))?;
    let ids = services.evaluator().evaluate(&detail).await.map_err(|e| e.to_string())?;
    Ok(ids.len())
}

/// How long an action may take at most (a webhook's timeout, plus writing its outcome):
/// an action is started only while the invocation has at least this long left.
pub const ACTION_BUDGET: std::time::Duration = std::time::Duration::from_secs(12);
/// Actions of one tenant running at once in a batch: a tenant's slow webhooks cannot take
/// every slot, and other tenants' actions go on meanwhile.
pub const PER_TENANT_CONCURRENCY: usize = 2;

/// The time an invocation has (Lambda's deadline), or none.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget {
    pub deadline: Option<std::time::SystemTime>,
}

impl Budget {
    /// From Lambda's context deadline (epoch milliseconds).
    pub fn from_epoch_ms(deadline_ms: u64) -> Budget {
        Budget { deadline: Some(std::time::UNIX_EPOCH + std::time::Duration::from_millis(deadline_ms)) }
    }

    /// Whether `needed` still fits before the deadline.
    pub fn allows(&self, needed: std::time::Duration) -> bool {
        self.deadline.is_none_or(|d| d.duration_since(std::time::SystemTime::now()).is_ok_and(|left| left >= needed))
    }
}

/// An SQS batch of action messages, run concurrently (at most
/// [`PER_TENANT_CONCURRENCY`] per tenant; the actions of one run one after another). The ones that failed are reported for
/// redelivery (and after the queue's maximum receives, its dead-letter queue). An action
/// that would not finish before the invocation's deadline is not started: it is reported
/// for redelivery without an attempt counted against its run.
pub async fn execute_queue_batch(
    services: &std::sync::Arc<Services>,
    event: SqsEvent,
    budget: Budget,
) -> SqsBatchResponse {
    use std::collections::HashMap;
    use std::sync::Arc;
    let mut tenants: HashMap<String, Arc<tokio::sync::Semaphore>> = HashMap::new();
    let mut runs: HashMap<String, Arc<tokio::sync::Mutex<()>>> = HashMap::new();
    let mut running = tokio::task::JoinSet::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let parsed = match record.body.as_deref().map(serde_json::from_str::<ActionMessage>) {
            Some(Ok(message)) => Ok(message),
            Some(Err(e)) => Err(format!("not an action message: {e}")),
            None => Err("empty message".to_string()),
        };
        let slots = parsed.as_ref().ok().map(|m| {
            tenants
                .entry(m.tenant_id.clone())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(PER_TENANT_CONCURRENCY)))
                .clone()
        });
        // Actions of one run share its record: they go one after another, not racing for it.
        let run = parsed.as_ref().ok().map(|m| runs.entry(m.execution_id.clone()).or_default().clone());
        let services = services.clone();
        // The X-Ray trace the message was sent in: every log line of its action carries it.
        let trace = record.attributes.get("AWSTraceHeader").cloned().unwrap_or_default();
        let span = tracing::info_span!("action", message_id = %id, trace = %trace);
        running.spawn(tracing::Instrument::instrument(
            async move {
                let outcome = async {
                    let message = parsed?;
                    let _run = match &run {
                        Some(run) => Some(run.lock().await),
                        None => None,
                    };
                    let _slot = match &slots {
                        Some(slots) => Some(slots.acquire().await.map_err(|e| e.to_string())?),
                        None => None,
                    };
                    if !budget.allows(ACTION_BUDGET) {
                        return Err(format!(
                            "not started: less than {}s of the invocation left",
                            ACTION_BUDGET.as_secs()
                        ));
                    }
                    match services.executor().execute_metered(services.limiter(), &message).await.map_err(|e| e.0)? {
                        // Over the tenant's action rate: queued again with a delay (no receive
                        // counted against it); this delivery is done.
                        Some(wait) => services.queue().enqueue_after(vec![message], wait).await.map_err(|e| e.0),
                        None => Ok(()),
                    }
                }
                .await;
                match &outcome {
                    Ok(()) => tracing::info!(message_id = %id, trace = %trace, "action done"),
                    Err(error) => {
                        tracing::warn!(message_id = %id, trace = %trace, error = %error, "action not done; SQS will redeliver it")
                    }
                }
                (id, outcome)
            },
            span,
        ));
    }
    let mut response = SqsBatchResponse::default();
    while let Some(done) = running.join_next().await {
        let (id, outcome) = done.unwrap_or_else(|e| {
            tracing::error!(error = %e, "an action panicked");
            (String::new(), Err(format!("the action panicked: {e}")))
        });
        if outcome.is_err() {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// Where each failure queue's messages came from, by queue (the last part of its ARN).
fn queue_name(arn: Option<&str>) -> String {
    arn.and_then(|a| a.rsplit(':').next()).unwrap_or("unknown").to_string()
}

/// What one message of a failure queue holds, as dead letters.
async fn letters_of(
    streams: &crate::adapters::stream_batches::StreamBatches,
    record: &aws_lambda_events::event::sqs::SqsMessage,
) -> Vec<DeadLetter> {
    let body = record.body.as_deref().unwrap_or_default();
    if let Ok(message) = serde_json::from_str::<ActionMessage>(body) {
        let reason = "the action queue gave up on it after its last receive (its redrive policy)";
        return vec![DeadLetter::new("action_queue", reason, Parked::Action(Box::new(message)))];
    }
    if let Ok(failure) = serde_json::from_str::<crate::adapters::stream_batches::StreamFailure>(body) {
        return match streams.changes(&failure.batch).await {
            Ok(changes) => changes
                .iter()
                .map(|change| {
                    DeadLetter::new(
                        "change_feed",
                        "publishing its events failed until Lambda stopped retrying the stream batch",
                        Parked::change(change),
                    )
                })
                .collect(),
            Err(e) => vec![DeadLetter::new("change_feed", &e, Parked::Unreadable(json_or_text(body)))],
        };
    }
    if let Ok(event) = serde_json::from_str::<CloudWatchEvent<BusinessEvent>>(body) {
        if let Some(detail) = event.detail {
            let attribute = |name: &str| {
                record.message_attributes.get(name).and_then(|a| a.string_value.clone()).unwrap_or_default()
            };
            let reason = format!(
                "EventBridge could not deliver it to the evaluator: {} {}",
                attribute("ERROR_CODE"),
                attribute("ERROR_MESSAGE")
            );
            return vec![DeadLetter::new("event_bus", reason.trim(), Parked::Event(detail))];
        }
    }
    let source = queue_name(record.event_source_arn.as_deref());
    vec![DeadLetter::new(&source, "a message of no known shape", Parked::Unreadable(json_or_text(body)))]
}

fn json_or_text(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()))
}

/// The failure queues' messages (action DLQ, evaluator DLQ, stream on-failure queue) ->
/// dead letters the operator can list and replay. A message whose letters cannot be
/// kept is reported for redelivery.
pub async fn keep_dead_letters(
    services: &Services,
    streams: &crate::adapters::stream_batches::StreamBatches,
    event: SqsEvent,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in &event.records {
        let mut kept = true;
        for letter in letters_of(streams, record).await {
            if let Err(e) = services.dead_letters().park(letter).await {
                tracing::error!(error = %e, "a dead letter could not be kept; the message will come again");
                kept = false;
                break;
            }
        }
        if !kept {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// The CloudFormation custom resource that seeds the built-in catalog: on Create and
/// Update it publishes what the catalog lacks (idempotent), on Delete it keeps the
/// catalog (tenants' installs refer to it). The outcome goes to CloudFormation's
/// presigned `ResponseURL` and is also the invocation's answer.
pub async fn seed_catalog_resource(
    services: &Services,
    request: aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest,
) -> Result<Value, String> {
    use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest as Request;
    let (url, stack, request_id, logical, seed) = match &request {
        Request::Create(r) => (&r.response_url, &r.stack_id, &r.request_id, &r.logical_resource_id, true),
        Request::Update(r) => (&r.response_url, &r.stack_id, &r.request_id, &r.logical_resource_id, true),
        Request::Delete(r) => (&r.response_url, &r.stack_id, &r.request_id, &r.logical_resource_id, false),
        _ => return Err("an unknown CloudFormation request type".to_string()),
    };
    let outcome = if seed {
        crate::app::seed::ensure_builtin_catalog(services.store.as_ref(), services.catalog())
            .await
            .map_err(|e| e.to_string())
    } else {
        Ok(())
    };
    let response = serde_json::json!({
        "Status": if outcome.is_ok() { "SUCCESS" } else { "FAILED" },
        "Reason": outcome.as_ref().err().cloned().unwrap_or_else(|| "the built-in catalog is published".to_string()),
        "PhysicalResourceId": "builtin-catalog",
        "StackId": stack,
        "RequestId": request_id,
        "LogicalResourceId": logical,
        "Data": {},
    });
    // CloudFormation's presigned URL is signed for no content type.
    let sent = reqwest::Client::new()
        .put(url)
        .header("content-type", "")
        .body(response.to_string())
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| format!("answering CloudFormation failed: {e}"))?;
    if !sent.status().is_success() {
        return Err(format!("CloudFormation's response URL answered {}", sent.status()));
    }
    Ok(response)
}

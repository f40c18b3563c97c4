//! The DynamoDB store: one table, `PK`/`SK` string keys, a numeric `version` and the
//! item body as a native DynamoDB map in `data` (so stream images are readable).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ScalarAttributeType, StreamSpecification,
    StreamViewType, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;

use crate::domain::time::unix_now;
use crate::ports::store::{Condition, Item, Page, Query, Store, StoreError, Write};

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

type Attrs = HashMap<String, AttributeValue>;

/// A condition as DynamoDB expression parts.
struct Expr {
    text: String,
    names: Option<HashMap<String, String>>,
    values: Option<Attrs>,
}

/// A condition as DynamoDB expression parts. An item past its `ttl` counts as absent
/// (DynamoDB deletes expired items only eventually), as in the embedded store.
fn expression(condition: Condition, now: u64) -> Option<Expr> {
    let ttl_names = || HashMap::from([("#ttl".to_string(), "ttl".to_string())]);
    let now_value = || (":now".to_string(), AttributeValue::N(now.to_string()));
    match condition {
        Condition::None => None,
        Condition::Absent => Some(Expr {
            text: "attribute_not_exists(PK) OR #ttl <= :now".to_string(),
            names: Some(ttl_names()),
            values: Some(HashMap::from([now_value()])),
        }),
        Condition::Exists => Some(Expr {
            text: "attribute_exists(PK) AND (attribute_not_exists(#ttl) OR #ttl > :now)".to_string(),
            names: Some(ttl_names()),
            values: Some(HashMap::from([now_value()])),
        }),
        Condition::Version(v) => {
            let mut names = ttl_names();
            names.insert("#version".to_string(), "version".to_string());
            Some(Expr {
                text: "#version = :version AND (attribute_not_exists(#ttl) OR #ttl > :now)".to_string(),
                names: Some(names),
                values: Some(HashMap::from([(":version".to_string(), AttributeValue::N(v.to_string())), now_value()])),
            })
        }
    }
}

/// Most keys one BatchGetItem request takes (DynamoDB's limit).
const MAX_BATCH_GET: usize = 100;
/// Batch reads of one chunk before its unprocessed keys are an error (backing off 50, 100,
/// 200, 400 ms between them).
const BATCH_GET_ATTEMPTS: u32 = 5;

fn key(pk: &str, sk: &str) -> Attrs {
    HashMap::from([
        ("PK".to_string(), AttributeValue::S(pk.to_string())),
        ("SK".to_string(), AttributeValue::S(sk.to_string())),
    ])
}

fn to_attrs(item: &Item) -> Result<Attrs, StoreError> {
    let mut attrs = key(&item.pk, &item.sk);
    attrs.insert("version".to_string(), AttributeValue::N(item.version.to_string()));
    let data: AttributeValue =
        serde_dynamo::to_attribute_value(&item.data).map_err(|e| StoreError::Invalid(e.to_string()))?;
    attrs.insert("data".to_string(), data);
    if let Some(ttl) = item.ttl {
        attrs.insert("ttl".to_string(), AttributeValue::N(ttl.to_string()));
    }
    Ok(attrs)
}

fn from_attrs(mut attrs: Attrs) -> Result<Item, StoreError> {
    let text = |attrs: &mut Attrs, name: &str| match attrs.remove(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        Some(AttributeValue::N(n)) => Ok(n),
        _ => Err(StoreError::Unavailable(format!("item without a '{name}' attribute"))),
    };
    let pk = text(&mut attrs, "PK")?;
    let sk = text(&mut attrs, "SK")?;
    let version = text(&mut attrs, "version")?.parse().map_err(|_| StoreError::Unavailable("bad version".into()))?;
    let data = match attrs.remove("data") {
        Some(av) => serde_dynamo::from_attribute_value(av).map_err(|e| StoreError::Unavailable(e.to_string()))?,
        None => serde_json::Value::Null,
    };
    let ttl = match attrs.remove("ttl") {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    };
    Ok(Item { pk, sk, version, data, ttl })
}

fn sdk_error<E: std::error::Error + 'static, R: std::fmt::Debug>(e: SdkError<E, R>) -> StoreError {
    let detail = match &e {
        SdkError::ServiceError(service) => service.err().to_string(),
        other => format!("{other}"),
    };
    StoreError::Unavailable(detail)
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Creates the table as the SAM template declares it (for local endpoints and tests).
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("name and type are set")
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder().attribute_name(name).key_type(kind).build().expect("name and type are set")
        };
        let gsi = GlobalSecondaryIndex::builder()
            .index_name("GSI1")
            .key_schema(key("GSI1PK", KeyType::Hash))
            .key_schema(key("GSI1SK", KeyType::Range))
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("PK"))
            .attribute_definitions(attr("SK"))
            .attribute_definitions(attr("GSI1PK"))
            .attribute_definitions(attr("GSI1SK"))
            .key_schema(key("PK", KeyType::Hash))
            .key_schema(key("SK", KeyType::Range))
            .global_secondary_indexes(gsi)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .map_err(|e| StoreError::Invalid(e.to_string()))?,
            )
            .send()
            .await
            .map_err(sdk_error)?;
        let ttl = aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
            .attribute_name("ttl")
            .enabled(true)
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    fn transact_item(&self, write: Write) -> Result<TransactWriteItem, StoreError> {
        let invalid = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Invalid(e.to_string());
        Ok(match write {
            Write::Put { item, condition } => {
                let expr = expression(condition, unix_now());
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(to_attrs(&item)?))
                    .set_condition_expression(expr.as_ref().map(|e| e.text.clone()))
                    .set_expression_attribute_names(expr.as_ref().and_then(|e| e.names.clone()))
                    .set_expression_attribute_values(expr.and_then(|e| e.values))
                    .build()
                    .map_err(invalid)?;
                TransactWriteItem::builder().put(put).build()
            }
            Write::Delete { pk, sk, condition } => {
                let expr = expression(condition, unix_now());
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(&pk, &sk)))
                    .set_condition_expression(expr.as_ref().map(|e| e.text.clone()))
                    .set_expression_attribute_names(expr.as_ref().and_then(|e| e.names.clone()))
                    .set_expression_attribute_values(expr.and_then(|e| e.values))
                    .build()
                    .map_err(invalid)?;
                TransactWriteItem::builder().delete(delete).build()
            }
            Write::Check { pk, sk, condition } => {
                let expr = expression(condition, unix_now())
                    .ok_or_else(|| StoreError::Invalid("a check needs a condition".to_string()))?;
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(&pk, &sk)))
                    .condition_expression(expr.text)
                    .set_expression_attribute_names(expr.names)
                    .set_expression_attribute_values(expr.values)
                    .build()
                    .map_err(invalid)?;
                TransactWriteItem::builder().condition_check(check).build()
            }
        })
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        let now = unix_now();
        Ok(out.item.map(from_attrs).transpose()?.filter(|item| item.is_live(now)))
    }

    async fn get_many(&self, keys: &[(&str, &str)]) -> Result<Vec<Option<Item>>, StoreError> {
        if let [(pk, sk)] = keys {
            return Ok(vec![self.get(pk, sk).await?]);
        }
        // BatchGetItem takes each key once, at most 100 a request, answers in no order, and
        // may leave keys unprocessed (over the table's throughput): those are asked again.
        let mut distinct = keys.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let mut found = HashMap::with_capacity(distinct.len());
        for chunk in distinct.chunks(MAX_BATCH_GET) {
            let mut pending: Vec<Attrs> = chunk.iter().map(|(pk, sk)| key(pk, sk)).collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt > 0 {
                    if attempt == BATCH_GET_ATTEMPTS {
                        return Err(StoreError::Unavailable(format!(
                            "{} keys still unprocessed after {attempt} batch reads",
                            pending.len()
                        )));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(25 << attempt)).await;
                }
                attempt += 1;
                let asked = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
                let out =
                    self.client.batch_get_item().request_items(&self.table, asked).send().await.map_err(sdk_error)?;
                for attrs in out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default() {
                    let item = from_attrs(attrs)?;
                    found.insert((item.pk.clone(), item.sk.clone()), item);
                }
                pending =
                    out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
            }
        }
        let now = unix_now();
        Ok(keys
            .iter()
            .map(|(pk, sk)| found.get(&(pk.to_string(), sk.to_string())).filter(|i| i.is_live(now)).cloned())
            .collect())
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        let expr = expression(condition, unix_now());
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_attrs(&item)?))
            .set_condition_expression(expr.as_ref().map(|e| e.text.clone()))
            .set_expression_attribute_names(expr.as_ref().and_then(|e| e.names.clone()))
            .set_expression_attribute_values(expr.and_then(|e| e.values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                Err(StoreError::ConditionFailed { index: 0 })
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn query(&self, query: Query<'_>) -> Result<Page, StoreError> {
        let limit = query.limit.max(1);
        let mut values = HashMap::from([(":pk".to_string(), AttributeValue::S(query.pk.to_string()))]);
        let condition = if query.sk_prefix.is_empty() {
            "PK = :pk"
        } else {
            values.insert(":prefix".to_string(), AttributeValue::S(query.sk_prefix.to_string()));
            "PK = :pk AND begins_with(SK, :prefix)"
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .set_exclusive_start_key(query.after.map(|after| key(query.pk, after)))
            .scan_index_forward(!query.descending)
            .consistent_read(true)
            // One more than asked tells whether another page follows.
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(sdk_error)?;
        let now = unix_now();
        let mut items = out.items.unwrap_or_default().into_iter().map(from_attrs).collect::<Result<Vec<_>, _>>()?;
        // Expired items still in the table until DynamoDB deletes them are absent.
        items.retain(|item| item.is_live(now));
        let more = items.len() > limit || out.last_evaluated_key.is_some();
        items.truncate(limit);
        let next = if more { items.last().map(|i| i.sk.clone()) } else { None };
        Ok(Page { items, next })
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        crate::ports::store::check_transaction(&writes)?;
        let items = writes.into_iter().map(|w| self.transact_item(w)).collect::<Result<Vec<_>, _>>()?;
        let result = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        let Err(e) = result else { return Ok(()) };
        if let Some(service) = e.as_service_error() {
            if let aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                cancelled,
            ) = service
            {
                let reasons = cancelled.cancellation_reasons();
                let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
                if let Some(index) = (0..reasons.len()).find(|&i| code(i) == "ConditionalCheckFailed") {
                    return Err(StoreError::ConditionFailed { index });
                }
                if (0..reasons.len()).any(|i| code(i) == "TransactionConflict") {
                    return Err(StoreError::Conflict);
                }
                let codes: Vec<&str> = (0..reasons.len()).map(code).filter(|c| *c != "None").collect();
                return Err(StoreError::Unavailable(format!("transaction cancelled: {}", codes.join(", "))));
            }
            if service.is_transaction_in_progress_exception() {
                return Err(StoreError::Conflict);
            }
        }
        Err(sdk_error(e))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // A read of a key that never exists: proves reachability and permission (GetItem only).
        self.get("HEALTH", "PING").await.map(|_| ())
    }
}

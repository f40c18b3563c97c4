//! Each Lambda function's scenarios, run with credentials that hold exactly that
//! function's policy from `infra/template.yaml`, on moto with IAM enforcement on.
//!
//! moto checks the action of every call it receives (and the resource for SQS), but it
//! authorises a DynamoDB transaction as `dynamodb:TransactWriteItems`, where AWS checks
//! each item's own action (`PutItem`, `DeleteItem`, `ConditionCheckItem`). So each
//! function's store is also wrapped in a checker that applies AWS's rule to every
//! transaction item against the template's statements. A missing action fails the
//! scenario that needs it (and is named in the output); actions a policy grants that no
//! scenario used are reported at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use blackbox::{drain, identity, scenarios, serve_in_process, trust, trust::MOTO_THROTTLE_SLACK, Api, Ctx, Moto};
use platform::adapters::aws_delivery::{EventBridgeBus, SqsQueue};
use platform::adapters::dynamo::DynamoStore;
use platform::adapters::mail_dir::DirectoryMailer;
use platform::adapters::scheduler::{SchedulerTarget, SchedulerTimers};
use platform::adapters::ses::SesMailer;
use platform::app::{keys, Secrets};
use platform::domain::events::BusinessEvent;
use platform::domain::ids::TenantId;
use platform::http::{self, ApiRouter};
use platform::ports::mail::{Mail, MailError, Mailer};
use platform::ports::queue::{ActionMessage, ActionQueue, DeliveryError, EventBus};
use platform::ports::store::{Condition, Item, Page, Query, Store, StoreError, Write};
use platform::ports::timers::{Timer, Timers};
use platform::runtime::{state, Delivery, Seed};
use platform::stages;
use platform::Services;
use serde_json::{json, Value};
use serde_yaml_ng::Value as Yaml;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const TABLE: &str = "iam-table";
const BUS: &str = "iam-events";
const TIMER_GROUP: &str = "iam-timers";
const FILES_BUCKET: &str = "iam-files";
const MAIL_FROM: &str = "no-reply@example.com";
const ADMIN_TOKEN: &str = "iam-admin-token-0123456789abcdef0123";
const JWT_SECRET: &str = "iam-signing-key-0123456789abcdef0123";

/// What the template's references resolve to in this test's account.
struct Names {
    queue_arns: BTreeMap<&'static str, String>,
    secret_arns: BTreeMap<&'static str, String>,
}

impl Names {
    fn table_arn(&self) -> String {
        format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}")
    }

    /// `!GetAtt X.Y`, `!Ref X` and `!Sub "...${X.Y}...${AWS::...}"`, as CloudFormation would.
    fn resolve(&self, value: &Yaml) -> String {
        let Yaml::Tagged(tagged) = value else { return value.as_str().expect("a plain resource").to_string() };
        let text = match &tagged.value {
            Yaml::String(s) => s.clone(),
            Yaml::Sequence(parts) => parts.iter().map(|p| p.as_str().unwrap_or_default()).collect::<Vec<_>>().join("."),
            other => panic!("unexpected {other:?}"),
        };
        match tagged.tag.to_string().as_str() {
            "!GetAtt" => self.attribute(&text),
            "!Ref" => self.secret_arns.get(text.as_str()).cloned().unwrap_or_else(|| panic!("!Ref {text}")),
            "!Sub" => {
                let mut out = String::new();
                let mut rest = text.as_str();
                while let Some(start) = rest.find("${") {
                    out.push_str(&rest[..start]);
                    let end = rest[start..].find('}').expect("closing brace") + start;
                    out.push_str(&self.attribute(&rest[start + 2..end]));
                    rest = &rest[end + 1..];
                }
                out + rest
            }
            tag => panic!("unexpected tag {tag}"),
        }
    }

    fn attribute(&self, name: &str) -> String {
        match name {
            "AWS::Partition" => "aws".to_string(),
            "AWS::Region" => REGION.to_string(),
            "AWS::AccountId" => ACCOUNT.to_string(),
            "Table.Arn" => self.table_arn(),
            "Table.StreamArn" => format!("{}/stream/latest", self.table_arn()),
            "EventBus.Arn" => format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{BUS}"),
            "TimerGroup" => TIMER_GROUP.to_string(),
            "SchedulerRole.Arn" => format!("arn:aws:iam::{ACCOUNT}:role/iam-scheduler"),
            "FilesBucket.Arn" => format!("arn:aws:s3:::{FILES_BUCKET}"),
            other => {
                let resource = other.trim_end_matches(".Arn");
                self.queue_arns.get(resource).cloned().unwrap_or_else(|| panic!("no value for {other}"))
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Statement {
    actions: Vec<String>,
    resources: Vec<String>,
}

impl Statement {
    fn allows(&self, action: &str, resource: &str) -> bool {
        let matches = |pattern: &str, text: &str| match pattern.strip_suffix('*') {
            Some(prefix) => text.starts_with(prefix),
            None => pattern == text,
        };
        self.actions.iter().any(|a| a == action) && self.resources.iter().any(|r| matches(r, resource))
    }
}

/// The statements of a function's inline policies in the template.
fn policy_of(template: &Yaml, function: &str, names: &Names) -> Vec<Statement> {
    let policies = &template["Resources"][function]["Properties"]["Policies"];
    let mut statements = Vec::new();
    // No `Policies` at all: the function may call nothing.
    let none = Vec::new();
    for policy in policies.as_sequence().unwrap_or(&none) {
        for statement in policy["Statement"].as_sequence().expect("statements") {
            assert_eq!(statement["Effect"].as_str(), Some("Allow"));
            let actions = statement["Action"].as_sequence().unwrap().iter().map(|a| a.as_str().unwrap().to_string());
            let resources = statement["Resource"].as_sequence().unwrap().iter().map(|r| names.resolve(r));
            statements.push(Statement { actions: actions.collect(), resources: resources.collect() });
        }
    }
    statements
}

/// The same statements as moto can enforce them: it cannot match resources for most
/// services (nor for batch SQS calls), so they are checked here instead; it
/// authorises transactions as `dynamodb:TransactWriteItems` (checked item by item by
/// [`Checked`] instead); and it asks for `sqs:SendMessageBatch` where AWS's
/// `sqs:SendMessage` covers the batch call too.
fn moto_policy(statements: &[Statement]) -> String {
    let moto_statements: Vec<Value> = statements
        .iter()
        .map(|s| {
            let mut actions = s.actions.clone();
            if actions.iter().any(|a| {
                ["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"].contains(&a.as_str())
            }) {
                actions.push("dynamodb:TransactWriteItems".to_string());
            }
            if actions.iter().any(|a| a == "sqs:SendMessage") {
                actions.push("sqs:SendMessageBatch".to_string());
            }
            json!({"Effect": "Allow", "Action": actions, "Resource": ["*"]})
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": moto_statements}).to_string()
}

/// What one function did, by IAM action, and what it was refused.
#[derive(Default)]
struct Usage {
    used: BTreeSet<String>,
    refused: BTreeSet<String>,
}

type Ledger = Arc<Mutex<BTreeMap<String, Usage>>>;

/// A function's store, checked as AWS checks each call and transaction item.
struct Checked {
    function: String,
    inner: Arc<dyn Store>,
    statements: Vec<Statement>,
    table_arn: String,
    ledger: Ledger,
}

impl Checked {
    fn check(&self, actions: &[&str]) -> Result<(), StoreError> {
        let mut ledger = self.ledger.lock().unwrap();
        let usage = ledger.entry(self.function.clone()).or_default();
        for action in actions {
            let action = format!("dynamodb:{action}");
            if !self.statements.iter().any(|s| s.allows(&action, &self.table_arn)) {
                eprintln!("IAM: {} is not allowed {action} on {}", self.function, self.table_arn);
                usage.refused.insert(action.clone());
                return Err(StoreError::Unavailable(format!("AccessDenied: {action}")));
            }
            usage.used.insert(action);
        }
        Ok(())
    }
}

#[async_trait]
impl Store for Checked {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.check(&["GetItem"])?;
        self.inner.get(pk, sk).await
    }

    async fn get_many(&self, keys: &[(&str, &str)]) -> Result<Vec<Option<Item>>, StoreError> {
        self.check(&["BatchGetItem"])?;
        self.inner.get_many(keys).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.check(&["PutItem"])?;
        self.inner.put(item, condition).await
    }

    async fn query(&self, query: Query<'_>) -> Result<Page, StoreError> {
        self.check(&["Query"])?;
        self.inner.query(query).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let actions: Vec<&str> = writes
            .iter()
            .map(|w| match w {
                Write::Put { .. } => "PutItem",
                Write::Delete { .. } => "DeleteItem",
                Write::Check { .. } => "ConditionCheckItem",
            })
            .collect();
        self.check(&actions)?;
        self.inner.transact(writes).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.check(&["GetItem"])?;
        self.inner.ping().await
    }
}

/// Records a non-DynamoDB action as used once the call it guards succeeded.
fn note(ledger: &Ledger, function: &str, action: &str) {
    ledger.lock().unwrap().entry(function.to_string()).or_default().used.insert(action.to_string());
}

/// Checks `action` on `resource` against a function's statements (the resource part moto
/// cannot check), recording a refusal.
fn allowed(
    ledger: &Ledger,
    function: &str,
    statements: &[Statement],
    action: &str,
    resource: &str,
) -> Result<(), DeliveryError> {
    if statements.iter().any(|s| s.allows(action, resource)) {
        return Ok(());
    }
    eprintln!("IAM: {function} is not allowed {action} on {resource}");
    ledger.lock().unwrap().entry(function.to_string()).or_default().refused.insert(format!("{action} on {resource}"));
    Err(DeliveryError(format!("AccessDenied: {action}")))
}

struct NotedBus {
    inner: Arc<dyn EventBus>,
    ledger: Ledger,
    function: String,
    statements: Vec<Statement>,
    arn: String,
}

#[async_trait]
impl EventBus for NotedBus {
    async fn publish(&self, events: Vec<BusinessEvent>) -> Result<(), DeliveryError> {
        allowed(&self.ledger, &self.function, &self.statements, "events:PutEvents", &self.arn)?;
        self.inner.publish(events).await?;
        note(&self.ledger, &self.function, "events:PutEvents");
        Ok(())
    }
}

/// Timers through Scheduler with the function's credentials; the call's resource (the
/// schedule in its group) and the role it hands over (`iam:PassRole`) are checked here.
struct NotedTimers {
    inner: Arc<dyn Timers>,
    ledger: Ledger,
    function: String,
    statements: Vec<Statement>,
}

impl NotedTimers {
    fn check(&self, action: &str, name: &str) -> Result<(), DeliveryError> {
        let schedule = format!("arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{TIMER_GROUP}/{name}");
        allowed(&self.ledger, &self.function, &self.statements, action, &schedule)?;
        if action != "scheduler:DeleteSchedule" {
            let role = format!("arn:aws:iam::{ACCOUNT}:role/iam-scheduler");
            allowed(&self.ledger, &self.function, &self.statements, "iam:PassRole", &role)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Timers for NotedTimers {
    async fn set(&self, at: i64, timer: &Timer) -> Result<(), DeliveryError> {
        self.check("scheduler:CreateSchedule", &timer.name())?;
        self.check("scheduler:UpdateSchedule", &timer.name())?;
        self.inner.set(at, timer).await?;
        note(&self.ledger, &self.function, "scheduler:CreateSchedule");
        Ok(())
    }

    async fn cancel(&self, name: &str) -> Result<(), DeliveryError> {
        self.check("scheduler:DeleteSchedule", name)?;
        self.inner.cancel(name).await?;
        note(&self.ledger, &self.function, "scheduler:DeleteSchedule");
        Ok(())
    }
}

struct NotedQueue {
    inner: Arc<dyn ActionQueue>,
    ledger: Ledger,
    function: String,
    statements: Vec<Statement>,
    arn: String,
}

#[async_trait]
impl ActionQueue for NotedQueue {
    async fn enqueue_after(
        &self,
        messages: Vec<ActionMessage>,
        delay: std::time::Duration,
    ) -> Result<(), DeliveryError> {
        allowed(&self.ledger, &self.function, &self.statements, "sqs:SendMessage", &self.arn)?;
        self.inner.enqueue_after(messages, delay).await?;
        note(&self.ledger, &self.function, "sqs:SendMessage");
        Ok(())
    }
}

/// Sends through SES with the function's credentials (so IAM is checked), and keeps a
/// copy in the folder the scenarios read.
struct TeeMailer(SesMailer, DirectoryMailer, Ledger, String);

#[async_trait]
impl Mailer for TeeMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        self.0.send(mail).await?;
        note(&self.2, &self.3, "ses:SendEmail");
        self.1.send(mail).await
    }
}

/// An IAM user holding the function's moto policy; returns its access key pair.
async fn user_for(iam: &aws_sdk_iam::Client, function: &str, statements: &[Statement]) -> (String, String) {
    iam.create_user().user_name(function).send().await.unwrap();
    // A function with no policy in the template gets none: every AWS call it made would be refused.
    if !statements.is_empty() {
        iam.put_user_policy()
            .user_name(function)
            .policy_name("template")
            .policy_document(moto_policy(statements))
            .send()
            .await
            .unwrap();
    }
    let key = iam.create_access_key().user_name(function).send().await.unwrap().access_key.unwrap();
    (key.access_key_id, key.secret_access_key)
}

fn sdk_config(endpoint: &str, (id, secret): &(String, String)) -> aws_types::SdkConfig {
    let credentials = aws_sdk_dynamodb::config::Credentials::new(id, secret, None, None, "iam-test");
    platform::runtime::sdk_config(REGION, credentials, Some(endpoint.to_string()))
}

/// One function as it runs on AWS: its own credentials for every client, its secrets read
/// from Secrets Manager with them, its store checked item by item.
struct Function {
    name: &'static str,
    logical_id: &'static str,
    statements: Vec<Statement>,
    config: aws_types::SdkConfig,
}

impl Function {
    /// Reads the secrets the template gives this function (its `<secret>_ARN` variables).
    async fn secrets(&self, template: &Yaml, names: &Names, ledger: &Ledger) -> Secrets {
        let client = aws_sdk_secretsmanager::Client::new(&self.config);
        let variables = &template["Resources"][self.logical_id]["Properties"]["Environment"]["Variables"];
        let mut found = BTreeMap::new();
        if let Some(variables) = variables.as_mapping() {
            for (name, value) in variables {
                let name = name.as_str().unwrap();
                let Some(secret) = name.strip_suffix("_ARN").filter(|s| platform::runtime::SECRET_NAMES.contains(s))
                else {
                    continue;
                };
                let arn = names.resolve(value);
                let read = client.get_secret_value().secret_id(&arn).send().await;
                let value =
                    read.unwrap_or_else(|e| panic!("{} cannot read {secret}: {e:?}", self.name)).secret_string.unwrap();
                found.insert(secret.to_string(), value);
                note(ledger, self.name, "secretsmanager:GetSecretValue");
            }
        }
        Secrets {
            platform_admin_token: found.remove("PLATFORM_ADMIN_TOKEN"),
            jwt_secret: found.remove("JWT_SECRET"),
            webhook_secret: found.remove("WEBHOOK_SIGNING_SECRET"),
            webhook_policy: Default::default(),
        }
    }

    async fn services(
        &self,
        template: &Yaml,
        names: &Names,
        ledger: &Ledger,
        mail: &std::path::Path,
        seed: Seed,
        actions_url: &str,
    ) -> Arc<Services> {
        let secrets = self.secrets(template, names, ledger).await;
        let store = Arc::new(Checked {
            function: self.name.to_string(),
            inner: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&self.config), TABLE)),
            statements: self.statements.clone(),
            table_arn: names.table_arn(),
            ledger: ledger.clone(),
        });
        let mailer = Arc::new(TeeMailer(
            SesMailer::new(aws_sdk_sesv2::Client::new(&self.config), MAIL_FROM),
            DirectoryMailer::new(mail),
            ledger.clone(),
            self.name.to_string(),
        ));
        let delivery = Delivery::Aws {
            queue: Arc::new(NotedQueue {
                inner: Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&self.config), actions_url.to_string())),
                ledger: ledger.clone(),
                function: self.name.to_string(),
                statements: self.statements.clone(),
                arn: names.attribute("ActionQueue.Arn"),
            }),
            bus: Arc::new(NotedBus {
                inner: Arc::new(EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&self.config), BUS)),
                ledger: ledger.clone(),
                function: self.name.to_string(),
                statements: self.statements.clone(),
                arn: names.attribute("EventBus.Arn"),
            }),
            timers: Arc::new(NotedTimers {
                inner: Arc::new(SchedulerTimers::new(
                    aws_sdk_scheduler::Client::new(&self.config),
                    SchedulerTarget {
                        group: TIMER_GROUP.to_string(),
                        bus_arn: names.attribute("EventBus.Arn"),
                        role_arn: names.attribute("SchedulerRole.Arn"),
                    },
                )),
                ledger: ledger.clone(),
                function: self.name.to_string(),
                statements: self.statements.clone(),
            }),
        };
        // Functions that keep files get S3 on their own credentials.
        let keeps_files = template["Resources"][self.logical_id]["Properties"]["Environment"]["Variables"]
            .get("FILES_BUCKET")
            .is_some();
        let blobs = keeps_files.then(|| {
            let client = aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&self.config).force_path_style(true).build(),
            );
            Arc::new(platform::adapters::s3::S3Blobs::new(client, FILES_BUCKET.to_string()))
                as Arc<dyn platform::ports::blobs::Blobs>
        });
        state(store, mailer, secrets, delivery, seed, blobs)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", self.name))
            .services
    }
}

/// Every function of the template, with its routes (none for automation stages) and
/// whether it seeds the catalog (only the deployment's seeder does, first).
/// (binary, template resource, routes, seeding) of one function.
type FunctionSpec = (&'static str, &'static str, Option<fn() -> ApiRouter>, Seed);

fn functions() -> Vec<FunctionSpec> {
    vec![
        ("catalog-seeder", "CatalogSeederFunction", None, Seed::Yes),
        ("catalog", "CatalogFunction", Some(http::catalog::routes as fn() -> ApiRouter), Seed::No),
        ("tenant-systems", "TenantSystemsFunction", Some(http::tenant_systems::routes), Seed::No),
        ("config", "ConfigFunction", Some(http::config::routes), Seed::No),
        ("auth", "AuthFunction", Some(http::auth::routes), Seed::No),
        ("users", "UsersFunction", Some(http::users::routes), Seed::No),
        ("audit", "AuditFunction", Some(http::audit::routes), Seed::No),
        ("records", "RecordsFunction", Some(http::records::routes), Seed::No),
        ("automation", "AutomationFunction", Some(http::automation_function_routes), Seed::No),
        ("health", "HealthFunction", Some(http::health::routes), Seed::No),
        // No policy at all: it serves the OpenAPI document and makes no AWS call.
        ("docs", "DocsFunction", Some(http::docs::routes), Seed::No),
        ("settings", "SettingsFunction", Some(http::settings::routes), Seed::No),
        ("feature-flags", "FeatureFlagsFunction", Some(http::flags::routes), Seed::No),
        ("notes", "NotesFunction", Some(http::tools::notes_routes), Seed::No),
        ("calls", "CallsFunction", Some(http::tools::calls_routes), Seed::No),
        ("reviews", "ReviewsFunction", Some(http::tools::reviews_routes), Seed::No),
        ("calendar-events", "CalendarEventsFunction", Some(http::calendar::routes), Seed::No),
        ("tenants", "TenantsFunction", Some(http::tenants::routes), Seed::No),
        ("attachments", "AttachmentsFunction", Some(http::attachments::routes), Seed::No),
        ("event-publisher", "EventPublisherFunction", None, Seed::No),
        ("rule-evaluator", "RuleEvaluatorFunction", None, Seed::No),
        ("action-executor", "ActionExecutorFunction", None, Seed::No),
        ("dead-letters", "DeadLettersFunction", None, Seed::No),
    ]
}

/// Every operation of a function's router is a route of that function in the template
/// (API Gateway would answer 404 for any it lacks), and the template routes nothing more.
#[test]
fn every_function_routes_exactly_its_operations_in_the_template() {
    let template: Yaml = serde_yaml_ng::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml")).unwrap(),
    )
    .unwrap();
    for (name, logical_id, routes, _) in functions() {
        let Some(routes) = routes else { continue };
        let spec = routes().into_openapi();
        let mut ours = std::collections::BTreeSet::new();
        for (path, item) in &spec.paths.paths {
            let item = serde_json::to_value(item).unwrap();
            for method in ["get", "put", "post", "delete", "patch"] {
                if item.get(method).is_some() {
                    ours.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        if ours.is_empty() {
            continue; // the docs function serves its pages outside the OpenAPI document
        }
        let events =
            template["Resources"][logical_id]["Properties"]["Events"].as_mapping().cloned().unwrap_or_default();
        let theirs: std::collections::BTreeSet<(String, String)> = events
            .values()
            .filter(|e| e["Type"].as_str() == Some("HttpApi"))
            .map(|e| {
                let p = &e["Properties"];
                (p["Method"].as_str().unwrap().to_uppercase(), p["Path"].as_str().unwrap().to_string())
            })
            .collect();
        assert_eq!(ours, theirs, "{name} ({logical_id}): router vs template routes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_works_with_exactly_its_template_policy() {
    let template: Yaml = serde_yaml_ng::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml")).unwrap(),
    )
    .unwrap();
    let moto = Moto::start();

    // Deployment, before IAM is enforced: table, bus, queues, sender identity, secrets, users.
    moto.new_table(TABLE).await;
    let (tap, actions) = moto.bus_and_queues(BUS).await;
    moto.scheduler_client().create_schedule_group().name(TIMER_GROUP).send().await.unwrap();
    moto.s3_client().create_bucket().bucket(FILES_BUCKET).send().await.unwrap();
    let sqs = moto.sqs_client();
    let arn_of = async |url: &str| {
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap();
        attrs.attributes.unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone()
    };
    let stream_failures = sqs.create_queue().queue_name("iam-stream-failures").send().await.unwrap().queue_url.unwrap();
    let queue_arns = BTreeMap::from([
        ("ActionQueue", arn_of(&actions).await),
        ("StreamFailureQueue", arn_of(&stream_failures).await),
        ("EvaluatorDeadLetterQueue", arn_of(&tap).await),
    ]);
    moto.sesv2_client().create_email_identity().email_identity(MAIL_FROM).send().await.unwrap();
    let sm = aws_sdk_secretsmanager::Client::new(&sdk_config(&moto.endpoint, &("test".into(), "test".into())));
    let mut secret_arns = BTreeMap::new();
    for (logical, value) in [
        ("JwtSecretValue", JWT_SECRET),
        ("PlatformAdminTokenSecret", ADMIN_TOKEN),
        ("WebhookSigningSecretValue", "iam-webhook-key-0123456789abcdef"),
    ] {
        let created = sm.create_secret().name(logical).secret_string(value).send().await.unwrap();
        secret_arns.insert(logical, created.arn.unwrap());
    }
    let names = Names { queue_arns, secret_arns };
    let iam = aws_sdk_iam::Client::new(&sdk_config(&moto.endpoint, &("test".into(), "test".into())));
    let mut deployed = Vec::new();
    for (name, logical_id, routes, seed) in functions() {
        let statements = policy_of(&template, logical_id, &names);
        let keys = user_for(&iam, name, &statements).await;
        deployed.push((
            Function { name, logical_id, statements, config: sdk_config(&moto.endpoint, &keys) },
            routes,
            seed,
        ));
    }
    let reader_policy = vec![Statement {
        actions: vec!["sqs:ReceiveMessage".into(), "sqs:DeleteMessage".into(), "dynamodb:GetItem".into()],
        resources: vec!["*".into()],
    }];
    let reader = sdk_config(&moto.endpoint, &user_for(&iam, "test-reader", &reader_policy).await);
    let enforce =
        reqwest::Client::new().post(format!("{}/moto-api/reset-auth", moto.endpoint)).body("0").send().await.unwrap();
    assert!(enforce.status().is_success(), "moto enforces IAM from here on");
    let denied = moto
        .dynamodb_client()
        .get_item()
        .table_name(TABLE)
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S("x".into()))
        .key("SK", aws_sdk_dynamodb::types::AttributeValue::S("x".into()))
        .send()
        .await;
    assert!(denied.is_err(), "credentials outside IAM are refused now");

    // Each function on its own credentials; the API functions behind one router, as API Gateway.
    let ledger: Ledger = Arc::default();
    let mail = tempfile::tempdir().unwrap();
    let mut parts = Vec::new();
    let mut stages = BTreeMap::new();
    for (function, routes, seed) in &deployed {
        let services = function.services(&template, &names, &ledger, mail.path(), *seed, &actions).await;
        match routes {
            Some(routes) => parts.push((routes(), http::AppState { services })),
            None => {
                stages.insert(function.name, services);
            }
        }
    }
    let base = serve_in_process(http::finish_each(parts)).await;
    let ctx = Ctx { api: Api::new(&base), admin_token: ADMIN_TOKEN.to_string(), mail_dir: mail.path().to_path_buf() };

    scenarios::platform(&ctx).await;
    scenarios::catalog_reads(&ctx).await;
    scenarios::catalog_admin(&ctx, "iam").await;
    scenarios::installs(&ctx, "iam-installs").await;
    scenarios::upgrades(&ctx, "iam-upgrades", "iam").await;
    scenarios::configuration(&ctx, "iam-config").await;
    identity::sessions(&ctx, "iam-sessions").await;
    identity::lockout(&ctx, "iam-lockout").await;
    identity::password_reset(&ctx, "iam-reset").await;
    identity::access_control(&ctx, "iam-rbac").await;
    identity::api_keys(&ctx, "iam-keys").await;
    identity::audit_trail(&ctx, "iam-audit").await;
    trust::escalation(&ctx, "iam-escalation").await;
    trust::revocation(&ctx, &ctx, "iam-revocation").await;
    trust::throttling(&ctx, "iam-throttling", MOTO_THROTTLE_SLACK).await;
    blackbox::system::settings(&ctx, "iam-settings").await;
    blackbox::system::feature_flags(&ctx, "iam-flags").await;
    blackbox::system::tools(&ctx, "iam-tools").await;
    blackbox::system::calendar(&ctx, "iam-calendar").await;
    blackbox::system::relations(&ctx, "iam-relations").await;
    blackbox::system::uninstall_relations(&ctx, "iam-uninstalls").await;
    // Attachments: moto cannot serve a presigned URL while it enforces IAM (it answers
    // 500), so the upload is put with the attachments function's own credentials, as the
    // URL it signed would; everything else goes through the API.
    let files = ctx.new_tenant("iam-files").await;
    let created = files
        .post("/api/v1/tools/attachments", json!({"filename": "a.txt", "content_type": "text/plain", "size": 2}))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let key = created.body["attachment"]["file_key"].as_str().unwrap().to_string();
    let signer = &deployed.iter().find(|(f, _, _)| f.name == "attachments").unwrap().0;
    let s3 =
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&signer.config).force_path_style(true).build());
    s3.put_object()
        .bucket(FILES_BUCKET)
        .key(&key)
        .content_type("text/plain")
        .tagging(platform::adapters::s3::PENDING_TAG)
        .body(b"hi".to_vec().into())
        .send()
        .await
        .expect("the attachments function may put its uploads");
    let path = format!("/api/v1/tools/attachments/{}", created.body["attachment"]["id"].as_str().unwrap());
    let done = files.post(&format!("{path}/complete"), json!({})).await;
    assert_eq!((done.status, done.body["status"].as_str()), (200, Some("available")), "{}", done.body);
    assert_eq!(files.delete(&path).await.status, 204);
    blackbox::system::offboarding(&ctx, "iam-leaving", "iam-staying", false).await;
    // Events of other AWS services, posted to the automation function, evaluate rules
    // and take the tenant's event token there.
    blackbox::automation::native_aws_sources(&ctx, "iam-native", "iam-native-other").await;
    let native_actions = drain(&aws_sdk_sqs::Client::new(&reader), &actions).await;
    assert_eq!(
        native_actions.len(),
        2,
        "the native events' rule queued its actions, with the automation function's policy"
    );
    // A scheduled rule arms its first timer from the automation function.
    let scheduler = ctx.new_tenant("iam-schedules").await;
    let scheduled = scheduler
        .post(
            "/api/v1/automation/rules",
            json!({"name": "Nightly", "module_type": "schedule", "trigger_id": "scheduled", "schedule": "rate(1 day)",
                   "actions": [{"type": "create_task", "parameters": {"title": "Review the day"}}]}),
        )
        .await;
    assert_eq!(scheduled.status, 201, "{}", scheduled.body);

    // Records, rules and the automation stages, each stage on its own credentials.
    let owner = ctx.new_tenant("iam-auto").await;
    assert_eq!(owner.post("/api/v1/tenants/iam-auto/systems", json!({"system_id": "sales"})).await.status, 201);
    let rule = owner.post("/api/v1/automation/rules", json!({
        "name": "High Value Deal Alert", "module_type": "sales", "trigger_id": "high_value_opportunity",
        "conditions": [{"type": "value_threshold", "value": 10000}],
        "actions": [{"type": "send_notification", "parameters": {"recipient": "m@example.com", "message": "{{opportunity_name}}"}},
                    {"type": "create_task", "parameters": {"title": "Call {{opportunity_name}}", "due_date": "2030-01-01"}},
                    {"type": "create_task", "parameters": {"title": "Check on {{opportunity_name}}"}, "delay": "P1D"}]
    })).await;
    assert_eq!(rule.status, 201, "{}", rule.body);
    let record = owner
        .post(
            "/api/v1/systems/sales/records/opportunities",
            json!({"name": "IAM deal", "value": 20000, "stage": "prospecting"}),
        )
        .await;
    assert_eq!(record.status, 201, "{}", record.body);
    let published = owner
        .post(
            "/api/v1/automation/events",
            json!({"module_type": "sales", "trigger_id": "opportunity_created", "data": {"name": "x"}}),
        )
        .await;
    assert!(published.status < 300, "publishing an event: {}", published.body);

    // The stream record of the write -> publisher -> bus -> evaluator -> queue -> executor.
    let tenant = TenantId::parse("iam-auto").unwrap();
    let record_id = record.body["record_id"].as_str().unwrap();
    let raw = DynamoStore::new(aws_sdk_dynamodb::Client::new(&reader), TABLE);
    let item =
        raw.get(&keys::tenant_pk(&tenant), &format!("REC#sales#opportunities#{record_id}")).await.unwrap().unwrap();
    let image: serde_dynamo::Item =
        serde_dynamo::to_item(json!({"PK": item.pk, "SK": item.sk, "version": item.version, "data": item.data}))
            .unwrap();
    let stream: StreamEvent = serde_json::from_value(json!({"Records": [{
        "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": REGION,
        "dynamodb": {"Keys": {}, "NewImage": image, "SequenceNumber": "100", "SizeBytes": 100, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    }]})).unwrap();
    assert!(stages::publish_stream(&stages["event-publisher"], stream).await.unwrap() >= 1);
    // The tap stands for EventBridge invoking the evaluator; the test reads it (and the
    // action queue, standing for Lambda's SQS trigger) with its own reader credentials.
    let tap_reader = aws_sdk_sqs::Client::new(&reader);
    let routed = drain(&tap_reader, &tap).await;
    assert!(!routed.is_empty(), "events crossed the bus");
    let mut runs = 0;
    for message in &routed {
        let event: CloudWatchEvent<serde_json::Value> = serde_json::from_str(message.body().unwrap()).unwrap();
        runs += stages::evaluate_bus_event(&stages["rule-evaluator"], event).await.unwrap();
    }
    assert!(runs >= 1, "the rule matched");
    let queued = drain(&tap_reader, &actions).await;
    assert_eq!(queued.len(), 2, "one message per action that does not wait");
    // (moto cannot verify signatures of Scheduler's GET calls under IAM: the ledger says what was done.)
    let scheduled =
        ledger.lock().unwrap().get("rule-evaluator").is_some_and(|u| u.used.contains("scheduler:CreateSchedule"));
    assert!(scheduled, "the evaluator scheduled the delayed action with its own policy");
    let batch: SqsEvent = serde_json::from_value(json!({"Records": queued.iter().map(|m| json!({"messageId": m.message_id(), "body": m.body()})).collect::<Vec<_>>()})).unwrap();
    let response = stages::execute_queue_batch(&stages["action-executor"], batch, Default::default()).await;
    assert!(response.batch_item_failures.is_empty(), "the executor did both actions with its own policy");
    let armed =
        ledger.lock().unwrap().get("action-executor").is_some_and(|u| u.used.contains("scheduler:CreateSchedule"));
    assert!(armed, "the executor armed the created task's due timer with its own policy");
    let notifications = owner.get("/api/v1/notifications").await;
    assert_eq!(notifications.body["items"].as_array().unwrap().len(), 1, "{}", notifications.body);
    let tasks = owner.get("/api/v1/tools/tasks").await;
    assert_eq!(tasks.body["items"].as_array().unwrap().len(), 1, "{}", tasks.body);

    // The owner's export: the tenants function schedules it, the evaluator (fired as
    // Scheduler fires it) writes the archive to S3, each on its own policy.
    let export = owner.post("/api/v1/tenants/iam-auto/export", json!({})).await;
    assert_eq!(export.status, 202, "{}", export.body);
    let export_id = export.body["export_id"].as_str().unwrap().to_string();
    let fired: CloudWatchEvent<serde_json::Value> = serde_json::from_value(json!({
        "version": "0", "id": "e-1", "detail-type": "Timer Fired", "source": "platform.timers",
        "time": "2026-01-01T00:00:00Z", "region": REGION, "resources": [],
        "detail": {"timer": "export", "tenant_id": "iam-auto", "export_id": export_id}
    }))
    .unwrap();
    assert_eq!(stages::evaluate_bus_event(&stages["rule-evaluator"], fired).await.unwrap(), 1);
    let status = owner.get(&format!("/api/v1/tenants/iam-auto/exports/{export_id}")).await;
    assert_eq!(status.body["status"], "complete", "{}", status.body);

    // The failure queues -> dead letters (the action's message, the stream's on-failure
    // record read back from the stream) -> the operator lists and replays them; the sweep.
    let keeper = &stages["dead-letters"];
    let keeper_config = &deployed.iter().find(|(f, _, _)| f.name == "dead-letters").unwrap().0.config;
    let streams =
        platform::adapters::stream_batches::StreamBatches::new(aws_sdk_dynamodbstreams::Client::new(keeper_config));
    let stream_arn = aws_sdk_dynamodb::Client::new(&reader)
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .map(|t| t.table.and_then(|t| t.latest_stream_arn))
        .ok()
        .flatten();
    let mut bodies = vec![queued[0].body().unwrap().to_string()];
    if let Some(stream_arn) = stream_arn {
        let shards =
            aws_sdk_dynamodbstreams::Client::new(&reader).describe_stream().stream_arn(&stream_arn).send().await;
        if let Some(shard) =
            shards.ok().and_then(|d| d.stream_description).and_then(|d| d.shards).and_then(|mut s| s.pop())
        {
            let range = shard.sequence_number_range.unwrap();
            let start = range.starting_sequence_number.unwrap();
            bodies.push(
                json!({"DDBStreamBatchInfo": {"shardId": shard.shard_id.unwrap(), "startSequenceNumber": start,
                "endSequenceNumber": start, "batchSize": 1, "streamArn": stream_arn}})
                .to_string(),
            );
        }
    }
    let failures: SqsEvent = serde_json::from_value(json!({"Records": bodies.iter().enumerate().map(|(i, b)| json!({"messageId": format!("f-{i}"), "body": b})).collect::<Vec<_>>()})).unwrap();
    let kept = stages::keep_dead_letters(keeper, &streams, failures).await;
    assert!(kept.batch_item_failures.is_empty(), "the dead-letters function kept every message with its own policy");
    let letters = ctx.admin().get("/api/v1/operations/dead-letters?source=action_queue").await;
    assert_eq!(letters.status, 200, "{}", letters.body);
    let letter_id = letters.body["items"][0]["dead_letter_id"].as_str().unwrap().to_string();
    let replayed = ctx.admin().post(&format!("/api/v1/operations/dead-letters/{letter_id}/replay"), json!({})).await;
    assert_eq!(replayed.status, 202, "{}", replayed.body);
    assert!(
        keeper.runs().sweep(platform::domain::time::unix_now() + 7200).await.is_ok(),
        "the sweep runs with its policy"
    );

    // The verdict: nothing refused; what each policy grants and nobody used, reported.
    // Stream reading and the stream's failure queue are used by the event source mapping
    // on AWS, not by the function's code.
    let by_the_trigger =
        ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"];
    let ledger = ledger.lock().unwrap();
    let mut refused = Vec::new();
    for (function, _, _) in &deployed {
        let usage = ledger.get(function.name);
        let used = usage.map(|u| u.used.clone()).unwrap_or_default();
        if let Some(u) = usage {
            refused.extend(u.refused.iter().map(|a| format!("{} needs {a}", function.name)));
        }
        let granted: BTreeSet<String> = function.statements.iter().flat_map(|s| s.actions.iter().cloned()).collect();
        let unused: Vec<&String> =
            granted.iter().filter(|a| !used.contains(*a) && !by_the_trigger.contains(&a.as_str())).collect();
        if !unused.is_empty() {
            eprintln!("IAM report: {} is granted {unused:?} but no scenario used it", function.name);
        }
    }
    assert!(refused.is_empty(), "actions missing from the template: {refused:?}");
}

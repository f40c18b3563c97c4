//! Process wiring: read the environment once, build the adapters, run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rand::Rng;

use crate::adapters::aws_delivery::{EventBridgeBus, SqsQueue};
use crate::adapters::dynamo::DynamoStore;
use crate::adapters::embedded::EmbeddedStore;
use crate::adapters::local_bus::InProcessBus;
use crate::adapters::local_queue::StoreQueue;
use crate::adapters::mail_dir::DirectoryMailer;
use crate::adapters::ses::SesMailer;
use crate::app::engine::MAX_ATTEMPTS;
use crate::app::seed::ensure_builtin_catalog;
use crate::app::{Secrets, Services};
use crate::http::{self, ApiRouter, AppState};
use crate::pipeline::LocalPipeline;
use crate::ports::mail::Mailer;
use crate::ports::queue::{ActionQueue, EventBus};
use crate::ports::store::Store;

/// Logs through `tracing`: JSON in Lambda (CloudWatch), compact text locally.
/// The level comes from `RUST_LOG` (default `info`).
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if json { builder.json().without_time().try_init() } else { builder.compact().try_init() };
}

/// Whether a process publishes the built-in catalog when it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seed {
    Yes,
    No,
}

/// Where automation events and actions go.
pub enum Delivery {
    /// In this process: an in-process bus and a durable queue in the store.
    Local,
    /// EventBridge and SQS.
    Aws { queue: Arc<dyn ActionQueue>, bus: Arc<dyn EventBus> },
}

/// The local durable action queue over a store.
pub fn local_queue(store: Arc<dyn Store>) -> StoreQueue {
    StoreQueue::new(store, MAX_ATTEMPTS)
}

/// Builds the state over any store and mailer, seeding the catalog when asked.
pub async fn state(
    store: Arc<dyn Store>,
    mailer: Arc<dyn Mailer>,
    secrets: Secrets,
    delivery: Delivery,
    seed: Seed,
) -> anyhow::Result<AppState> {
    let services = match delivery {
        Delivery::Local => {
            let queue = Arc::new(local_queue(store.clone()));
            Services::new(store, mailer, secrets, queue, |evaluator| Arc::new(InProcessBus::new(evaluator.clone())))
        }
        Delivery::Aws { queue, bus } => Services::new(store, mailer, secrets, queue, |_| bus),
    };
    if seed == Seed::Yes {
        ensure_builtin_catalog(services.store.as_ref(), &services.catalog)
            .await
            .map_err(|e| anyhow::anyhow!("seeding the built-in catalog failed: {e}"))?;
    }
    Ok(AppState { services })
}

fn webhook_secret_from_env() -> Option<String> {
    std::env::var("WEBHOOK_SIGNING_SECRET").ok().filter(|t| !t.is_empty())
}

/// EventBridge bus `EVENT_BUS_NAME` and SQS queue `ACTION_QUEUE_URL`.
pub fn aws_delivery(aws: &aws_config::SdkConfig) -> Delivery {
    let bus_name = std::env::var("EVENT_BUS_NAME").unwrap_or_else(|_| "default".to_string());
    let queue_url = std::env::var("ACTION_QUEUE_URL").unwrap_or_default();
    Delivery::Aws {
        queue: Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(aws), queue_url)),
        bus: Arc::new(EventBridgeBus::new(aws_sdk_eventbridge::Client::new(aws), bus_name)),
    }
}

fn admin_token_from_env() -> Option<String> {
    std::env::var("PLATFORM_ADMIN_TOKEN").ok().filter(|t| !t.is_empty())
}

/// Runs one resource's routes as a Lambda function behind API Gateway, on DynamoDB
/// (`TABLE_NAME`) and SES (`MAIL_FROM`); the AWS SDK reads region, credentials and
/// `AWS_ENDPOINT_URL`. `JWT_SECRET` signs access tokens.
pub async fn run_lambda(routes: ApiRouter, seed: Seed) -> Result<(), lambda_http::Error> {
    init_tracing(true);
    let state = lambda_services(seed).await?;
    lambda_http::run(http::finish(routes, state)).await
}

/// The services of a Lambda function, on DynamoDB, SES, EventBridge and SQS.
async fn lambda_services(seed: Seed) -> Result<AppState, lambda_http::Error> {
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    let jwt_secret =
        std::env::var("JWT_SECRET").ok().filter(|s| s.len() >= 32).ok_or("JWT_SECRET must be set (32+ characters)")?;
    let from = std::env::var("MAIL_FROM").unwrap_or_else(|_| "no-reply@example.com".to_string());
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table));
    let mailer = Arc::new(SesMailer::new(aws_sdk_sesv2::Client::new(&aws), from));
    let secrets =
        Secrets { platform_admin_token: admin_token_from_env(), jwt_secret, webhook_secret: webhook_secret_from_env() };
    let delivery = aws_delivery(&aws);
    Ok(state(store, mailer, secrets, delivery, seed).await.map_err(|e| e.to_string())?)
}

/// Runs an automation stage as a Lambda function (stream, EventBridge or SQS events).
pub async fn run_stage<E, R, F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    E: serde::de::DeserializeOwned + Send + 'static,
    R: serde::Serialize + Send + 'static,
    F: Fn(Services, E) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<R, String>> + Send,
{
    init_tracing(true);
    let services = lambda_services(Seed::No).await.map_err(|e| e.to_string())?.services;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<E>| {
        let services = services.clone();
        let handler = handler.clone();
        async move { handler(services, event.payload).await.map_err(lambda_runtime::Error::from) }
    }))
    .await
}

/// Settings of the local server, from the environment with working defaults.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// `HOST` (default `127.0.0.1`) and `PORT` (default `3000`).
    pub addr: SocketAddr,
    /// `DATA_DIR` (default `./.data`): where the embedded store keeps its file.
    pub data_dir: PathBuf,
    /// `PLATFORM_ADMIN_TOKEN` (generated when unset).
    pub platform_admin_token: String,
    /// True when the admin token was generated because `PLATFORM_ADMIN_TOKEN` is unset.
    pub generated_admin_token: bool,
    /// `JWT_SECRET`; when unset, one is generated once and kept in `DATA_DIR/jwt-secret`.
    pub jwt_secret: Option<String>,
}

impl LocalSettings {
    pub fn from_env() -> anyhow::Result<Self> {
        let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_string());
        let port: u16 = std::env::var("PORT")
            .ok()
            .map(|p| p.parse())
            .transpose()
            .map_err(|_| anyhow::anyhow!("PORT must be a port number"))?
            .unwrap_or(3000);
        let addr = format!("{host}:{port}").parse().map_err(|_| anyhow::anyhow!("HOST must be an IP address"))?;
        let data_dir = std::env::var("DATA_DIR").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from(".data"));
        let (token, generated) = match admin_token_from_env() {
            Some(token) => (token, false),
            None => (generate_token(), true),
        };
        let jwt_secret = std::env::var("JWT_SECRET").ok().filter(|s| !s.is_empty());
        Ok(Self { addr, data_dir, platform_admin_token: token, generated_admin_token: generated, jwt_secret })
    }
}

fn generate_token() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs the whole product on one machine: every router in one app, on the embedded store.
pub async fn serve_local(settings: LocalSettings) -> anyhow::Result<()> {
    init_tracing(false);
    let embedded = Arc::new(EmbeddedStore::open(&settings.data_dir.join("platform.redb"))?);
    let store: Arc<dyn Store> = embedded.clone();
    let mailer = Arc::new(DirectoryMailer::new(settings.data_dir.join("mail")));
    if settings.generated_admin_token {
        // Printed once so the operator can administer the platform; set PLATFORM_ADMIN_TOKEN to choose it.
        println!("PLATFORM_ADMIN_TOKEN={}", settings.platform_admin_token);
    }
    let jwt_secret = match settings.jwt_secret.clone() {
        Some(secret) => secret,
        None => kept_secret(&settings.data_dir.join("jwt-secret"))?,
    };
    let secrets = Secrets {
        platform_admin_token: Some(settings.platform_admin_token.clone()),
        jwt_secret,
        webhook_secret: webhook_secret_from_env(),
    };
    let state = state(store.clone(), mailer, secrets, Delivery::Local, Seed::Yes).await?;
    let engine = state.services.engine.clone();
    LocalPipeline {
        store: store.clone(),
        feed: embedded,
        publisher: engine.publisher,
        queue: local_queue(store),
        executor: engine.executor,
    }
    .spawn();
    let listener = tokio::net::TcpListener::bind(settings.addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    tracing::info!(data_dir = %settings.data_dir.display(), "local server ready");
    axum::serve(listener, http::app(state)).with_graceful_shutdown(shutdown()).await?;
    Ok(())
}

/// A secret generated on first use and kept in a file only the owner can read, so
/// sessions survive restarts.
fn kept_secret(path: &std::path::Path) -> anyhow::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        if existing.trim().len() >= 32 {
            return Ok(existing.trim().to_string());
        }
    }
    let secret = generate_token() + &generate_token();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, secret.as_bytes())?;
    Ok(secret)
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

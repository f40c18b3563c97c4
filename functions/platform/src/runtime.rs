//! Process wiring: read the environment once, build the adapters, run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rand::Rng;

use crate::adapters::dynamo::DynamoStore;
use crate::adapters::embedded::EmbeddedStore;
use crate::adapters::local_bus::InProcessBus;
use crate::adapters::local_queue::StoreQueue;
use crate::adapters::mail_dir::DirectoryMailer;
use crate::adapters::wiring::{Aws, AwsResources, Given, Wiring};
use crate::app::engine::MAX_ATTEMPTS;
use crate::app::seed::ensure_builtin_catalog;
use crate::app::Secrets;
use crate::http::{self, AppState, BareRouter};
use crate::pipeline::LocalPipeline;
use crate::ports::mail::Mailer;
use crate::ports::queue::{ActionQueue, EventBus};
use crate::ports::store::Store;
use crate::ports::timers::Timers;
use crate::Services;

/// Logs through `tracing`: JSON in Lambda (CloudWatch), compact text locally.
/// The levels come from `RUST_LOG` (default `info`).
pub fn init_tracing(json: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // `RUST_LOG` as levels by target (`warn`, `platform=debug,info`): the filter without
    // regular expressions (EnvFilter's field matching would link the regex engine into
    // every function).
    let filter: tracing_subscriber::filter::Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO));
    let fmt = tracing_subscriber::fmt::layer().with_target(false);
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry.with(fmt.json().without_time()).try_init()
    } else {
        registry.with(fmt.compact()).try_init()
    };
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
    Aws { queue: Arc<dyn ActionQueue>, bus: Arc<dyn EventBus>, timers: Arc<dyn Timers> },
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
    blobs: Option<Arc<dyn crate::ports::blobs::Blobs>>,
) -> anyhow::Result<AppState> {
    let mut local_bus = None;
    let given = match delivery {
        Delivery::Local => {
            let bus = InProcessBus::unattached();
            local_bus = Some(bus.clone());
            let timers = crate::adapters::local_timers::StoreTimers::new(store.clone());
            Given {
                mailer,
                queue: Arc::new(local_queue(store.clone())),
                bus: Arc::new(bus),
                timers: Arc::new(timers),
                blobs,
            }
        }
        Delivery::Aws { queue, bus, timers } => Given { mailer, queue, bus, timers, blobs },
    };
    let services = Services::new(store, secrets, Wiring::Given(given));
    if let Some(bus) = local_bus {
        bus.attach(services.evaluator().clone());
    }
    if seed == Seed::Yes {
        ensure_builtin_catalog(services.store.as_ref(), services.catalog())
            .await
            .map_err(|e| anyhow::anyhow!("seeding the built-in catalog failed: {e}"))?;
    }
    Ok(AppState { services: Arc::new(services) })
}

fn webhook_secret_from_env() -> Option<String> {
    std::env::var("WEBHOOK_SIGNING_SECRET").ok().filter(|t| !t.is_empty())
}

/// `WEBHOOK_ALLOW_PRIVATE_TARGETS=true` lets webhooks reach private addresses (off by
/// default); `PLATFORM_API_HOSTS` (comma-separated `host` or `host:port`) names the
/// platform's own API, which webhooks may never call. `extra` adds hosts known at run time.
fn webhook_policy_from_env(extra: &[String]) -> crate::domain::webhook::WebhookPolicy {
    let allow_private = std::env::var("WEBHOOK_ALLOW_PRIVATE_TARGETS").is_ok_and(|v| v == "true" || v == "1");
    let listed = std::env::var("PLATFORM_API_HOSTS").unwrap_or_default();
    let own_hosts: Vec<String> = listed
        .split(',')
        .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .chain(extra.iter().cloned())
        .collect();
    crate::domain::webhook::WebhookPolicy { allow_private, own_hosts: own_hosts.into() }
}

/// Shortest secret (admin token, token-signing key) a process accepts.
pub const MIN_SECRET_CHARS: usize = 32;

fn admin_token_from_env() -> Option<String> {
    std::env::var("PLATFORM_ADMIN_TOKEN").ok().filter(|t| !t.is_empty())
}

/// Runs one resource's routes as a Lambda function behind API Gateway, on DynamoDB
/// (`TABLE_NAME`) and SES (`MAIL_FROM`); the AWS SDK reads region, credentials and
/// `AWS_ENDPOINT_URL`. `JWT_SECRET` signs access tokens.
pub async fn run_lambda(routes: BareRouter) -> Result<(), lambda_http::Error> {
    init_tracing(true);
    let state = AppState { services: Arc::new(lambda_services().await?) };
    lambda_runtime::Runtime::new(lambda_http::Adapter::from(http::finish(routes, state)))
        .layer(lambda_runtime::layers::TracingLayer::new())
        .layer(crate::telemetry::emf_layer())
        .run()
        .await
}

/// The secrets a Lambda function may be given (each as `<NAME>_ARN` or `<NAME>`).
pub const SECRET_NAMES: [&str; 3] = ["JWT_SECRET", "PLATFORM_ADMIN_TOKEN", "WEBHOOK_SIGNING_SECRET"];

/// Reads the function's secrets (only those it was given), all at once.
async fn lambda_secrets(aws: &aws_types::SdkConfig) -> Result<Secrets, String> {
    // A Secrets Manager client only when a secret is there (not with plain variables).
    let client = crate::adapters::secrets::any_managed(&SECRET_NAMES).then(|| aws_sdk_secretsmanager::Client::new(aws));
    let [jwt, admin, webhook] = SECRET_NAMES;
    let (jwt_secret, platform_admin_token, webhook_secret) = tokio::try_join!(
        crate::adapters::secrets::read(client.as_ref(), jwt),
        crate::adapters::secrets::read(client.as_ref(), admin),
        crate::adapters::secrets::read(client.as_ref(), webhook),
    )?;
    for (name, value) in [(jwt, &jwt_secret), (admin, &platform_admin_token)] {
        if value.as_ref().is_some_and(|v| v.chars().count() < MIN_SECRET_CHARS) {
            return Err(format!("{name} must be at least {MIN_SECRET_CHARS} characters"));
        }
    }
    Ok(Secrets { platform_admin_token, jwt_secret, webhook_secret, webhook_policy: webhook_policy_from_env(&[]) })
}

/// The SDK's standard retries, keeping connections after a transient answer, as the SDK's
/// newer retry specification does: its default poisons the connection a 5xx came on,
/// which the platform's HTTP client can only honour by replacing its whole pool (new
/// connections and TLS handshakes in the middle of a burst of errors). reqwest drops a
/// broken connection from its pool by itself.
pub fn aws_retry_config() -> aws_smithy_types::retry::RetryConfig {
    use aws_smithy_types::retry::{ReconnectMode, RetryConfig};
    RetryConfig::standard().with_reconnect_mode(ReconnectMode::ReuseAllConnections)
}

/// The one HTTP client every AWS SDK client uses (see [`SdkHttpClient`]).
pub fn aws_http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    static CLIENT: std::sync::OnceLock<aws_sdk_dynamodb::config::SharedHttpClient> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            aws_sdk_dynamodb::config::SharedHttpClient::new(crate::adapters::sdk_http::SdkHttpClient::default())
        })
        .clone()
}

/// The AWS SDK configuration of a Lambda function, read from the environment Lambda
/// gives it (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`; `AWS_ENDPOINT_URL` for a local endpoint such as moto), without
/// the SDK's generic provider chain (profile files, IMDS, SSO...), which costs about 5 ms
/// of every cold start and four more SDK crates in every binary.
pub fn lambda_sdk_config() -> Result<aws_types::SdkConfig, String> {
    static CONFIG: std::sync::OnceLock<Result<aws_types::SdkConfig, String>> = std::sync::OnceLock::new();
    CONFIG.get_or_init(sdk_config_from_env).clone()
}

fn sdk_config_from_env() -> Result<aws_types::SdkConfig, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).ok_or("AWS_REGION is not set")?;
    let key = var("AWS_ACCESS_KEY_ID").ok_or("AWS_ACCESS_KEY_ID is not set")?;
    let secret = var("AWS_SECRET_ACCESS_KEY").ok_or("AWS_SECRET_ACCESS_KEY is not set")?;
    let credentials = aws_credential_types::Credentials::new(key, secret, var("AWS_SESSION_TOKEN"), None, "lambda");
    Ok(sdk_config(region, credentials, var("AWS_ENDPOINT_URL")))
}

/// The one SDK configuration every AWS client is made from: the platform's HTTP client
/// and retries, a region, fixed credentials and, for a local endpoint (moto), its URL.
pub fn sdk_config(
    region: impl Into<String>,
    credentials: aws_credential_types::Credentials,
    endpoint: Option<String>,
) -> aws_types::SdkConfig {
    let mut config = aws_types::SdkConfig::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_types::region::Region::new(region.into()))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(credentials))
        .http_client(aws_http_client())
        .retry_config(aws_retry_config());
    config.set_endpoint_url(endpoint);
    config.build()
}

/// The services of a Lambda function: DynamoDB (`TABLE_NAME`) at once, every other AWS
/// client when a request first needs it.
async fn lambda_services() -> Result<Services, String> {
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    let aws = lambda_sdk_config()?;
    let secrets = lambda_secrets(&aws).await?;
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table));
    Ok(Services::new(store, secrets, Wiring::Aws(Box::new(Aws { sdk: aws, resources: AwsResources::from_env() }))))
}

/// Runs an automation stage as a Lambda function (stream, EventBridge or SQS events); the
/// handler gets the invocation's time budget.
pub async fn run_stage<E, R, F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    E: serde::de::DeserializeOwned + Send + 'static,
    R: serde::Serialize + Send + 'static,
    F: Fn(Arc<Services>, E, crate::stages::Budget) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<R, String>> + Send,
{
    init_tracing(true);
    let services = Arc::new(lambda_services().await?);
    let handler = lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<E>| {
        let services = services.clone();
        let handler = handler.clone();
        let budget = crate::stages::Budget::from_epoch_ms(event.context.deadline);
        async move { handler(services, event.payload, budget).await.map_err(lambda_runtime::Error::from) }
    });
    lambda_runtime::Runtime::new(handler)
        .layer(lambda_runtime::layers::TracingLayer::new())
        .layer(crate::telemetry::emf_layer())
        .run()
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
        for (name, value) in [("PLATFORM_ADMIN_TOKEN", Some(&token)), ("JWT_SECRET", jwt_secret.as_ref())] {
            if value.is_some_and(|v| v.chars().count() < MIN_SECRET_CHARS) {
                anyhow::bail!("{name} must be at least {MIN_SECRET_CHARS} characters (a short one can be guessed)");
            }
        }
        Ok(Self { addr, data_dir, platform_admin_token: token, generated_admin_token: generated, jwt_secret })
    }
}

fn generate_token() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    crate::domain::hex::lower(&bytes)
}

/// How often the local server deletes expired items, and how many at a time.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
const PURGE_BATCH: usize = 1_000;

/// Runs the whole product on one machine: every router in one app, on the embedded store.
pub async fn serve_local(settings: LocalSettings) -> anyhow::Result<()> {
    init_tracing(false);
    crate::adapters::private_files::create_private_dir(&settings.data_dir)?;
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
    // Bound first: webhooks may not call this server, by any of its names.
    let listener = tokio::net::TcpListener::bind(settings.addr).await?;
    let port = listener.local_addr()?.port();
    let own: Vec<String> =
        [settings.addr.ip().to_string(), "127.0.0.1".into(), "localhost".into(), "[::1]".into(), "0.0.0.0".into()]
            .iter()
            .map(|host| {
                if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                }
            })
            .collect();
    let secrets = Secrets {
        platform_admin_token: Some(settings.platform_admin_token.clone()),
        jwt_secret: Some(jwt_secret),
        webhook_secret: webhook_secret_from_env(),
        webhook_policy: webhook_policy_from_env(&own),
    };
    let purger = embedded.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(PURGE_EVERY).await;
            if let Err(e) = purger.purge_expired(crate::domain::time::unix_now(), PURGE_BATCH).await {
                tracing::warn!(error = %e, "purging expired items failed");
            }
        }
    });
    let files = Arc::new(crate::adapters::local_files::LocalFiles::new(settings.data_dir.join("files")));
    let state = state(store.clone(), mailer, secrets, Delivery::Local, Seed::Yes, Some(files.clone())).await?;
    let services = &state.services;
    LocalPipeline {
        store: store.clone(),
        commits: embedded.commits(),
        failures: Default::default(),
        feed: embedded,
        publisher: services.publisher().clone(),
        queue: local_queue(store.clone()),
        executor: services.executor().clone(),
        runs: services.runs().clone(),
        limiter: services.limiter().clone(),
        timers: crate::adapters::local_timers::StoreTimers::new(store.clone()),
        evaluator: services.evaluator().clone(),
        blobs: services.blobs().cloned(),
    }
    .spawn();
    println!("listening on http://{}", listener.local_addr()?);
    tracing::info!(data_dir = %settings.data_dir.display(), "local server ready");
    // Prometheus text of the product's metrics (no tenant data in any label).
    let metrics = crate::telemetry::prometheus();
    let app = http::app_with(state, http::attachments::local_file_routes(files))
        .route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move { ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics.render()) }
            }),
        )
        .into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown()).await?;
    Ok(())
}

/// A secret generated on first use and kept in a file only the owner can read, so
/// sessions survive restarts.
fn kept_secret(path: &std::path::Path) -> anyhow::Result<String> {
    use crate::adapters::private_files;
    if let Ok(existing) = std::fs::read_to_string(path) {
        if existing.trim().len() >= MIN_SECRET_CHARS {
            private_files::restrict_file(path)?;
            return Ok(existing.trim().to_string());
        }
    }
    let secret = generate_token() + &generate_token();
    if let Some(dir) = path.parent() {
        private_files::create_private_dir(dir)?;
    }
    private_files::write_private(path, secret.as_bytes())?;
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

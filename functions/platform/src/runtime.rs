//! Process wiring: read the environment once, build the adapters, run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rand::Rng;

use crate::adapters::dynamo::DynamoStore;
use crate::adapters::embedded::EmbeddedStore;
use crate::app::seed::ensure_builtin_catalog;
use crate::app::Services;
use crate::http::{self, ApiRouter, AppState, AuthConfig};
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

/// Builds the state over any store, seeding the catalog when asked.
pub async fn state(store: Arc<dyn Store>, auth: AuthConfig, seed: Seed) -> anyhow::Result<AppState> {
    let services = Services::new(store);
    if seed == Seed::Yes {
        ensure_builtin_catalog(services.store.as_ref(), &services.catalog)
            .await
            .map_err(|e| anyhow::anyhow!("seeding the built-in catalog failed: {e}"))?;
    }
    Ok(AppState { services, auth: Arc::new(auth) })
}

fn admin_token_from_env() -> Option<String> {
    std::env::var("PLATFORM_ADMIN_TOKEN").ok().filter(|t| !t.is_empty())
}

/// Runs one resource's routes as a Lambda function behind API Gateway, on DynamoDB
/// (`TABLE_NAME`; the AWS SDK reads region, credentials and `AWS_ENDPOINT_URL`).
pub async fn run_lambda(routes: ApiRouter, seed: Seed) -> Result<(), lambda_http::Error> {
    init_tracing(true);
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    let store = Arc::new(DynamoStore::from_env(table).await);
    let auth = AuthConfig { platform_admin_token: admin_token_from_env() };
    let state = state(store, auth, seed).await.map_err(|e| e.to_string())?;
    lambda_http::run(http::finish(routes, state)).await
}

/// Settings of the local server, from the environment with working defaults.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// `HOST` (default `127.0.0.1`) and `PORT` (default `3000`).
    pub addr: SocketAddr,
    /// `DATA_DIR` (default `./.data`): where the embedded store keeps its file.
    pub data_dir: PathBuf,
    pub auth: AuthConfig,
    /// True when the admin token was generated because `PLATFORM_ADMIN_TOKEN` is unset.
    pub generated_admin_token: bool,
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
        Ok(Self {
            addr,
            data_dir,
            auth: AuthConfig { platform_admin_token: Some(token) },
            generated_admin_token: generated,
        })
    }
}

fn generate_token() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs the whole product on one machine: every router in one app, on the embedded store.
pub async fn serve_local(settings: LocalSettings) -> anyhow::Result<()> {
    init_tracing(false);
    let store = Arc::new(EmbeddedStore::open(&settings.data_dir.join("platform.redb"))?);
    let auth = settings.auth.clone();
    if settings.generated_admin_token {
        // Printed once so the operator can administer the catalog; set PLATFORM_ADMIN_TOKEN to choose it.
        println!("PLATFORM_ADMIN_TOKEN={}", auth.platform_admin_token.as_deref().unwrap_or_default());
    }
    let state = state(store, auth, Seed::Yes).await?;
    let listener = tokio::net::TcpListener::bind(settings.addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    tracing::info!(data_dir = %settings.data_dir.display(), "local server ready");
    axum::serve(listener, http::app(state)).with_graceful_shutdown(shutdown()).await?;
    Ok(())
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

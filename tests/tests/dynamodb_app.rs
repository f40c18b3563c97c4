//! The same HTTP scenarios as the local server, with the app on DynamoDB (moto): the
//! transactions, conditions and pagination of every use case on the AWS code path.

use std::sync::Arc;

use blackbox::{identity, scenarios, serve_in_process, Api, Ctx, Moto};
use platform::adapters::mail_dir::DirectoryMailer;
use platform::app::Secrets;
use platform::http;
use platform::runtime::{state, Delivery, Seed};

async fn ctx(moto: &Moto, table: &str, mail: &std::path::Path) -> Ctx {
    let store = moto.new_table(table).await;
    let token = "dynamo-admin-token-0123456789abcdef";
    let secrets = Secrets {
        platform_admin_token: Some(token.to_string()),
        jwt_secret: Some("a-test-signing-key-of-at-least-32-bytes".to_string()),
        webhook_secret: None,
    };
    let app_state =
        state(store, Arc::new(DirectoryMailer::new(mail)), secrets, Delivery::Local, Seed::Yes).await.unwrap();
    let base = serve_in_process(http::app(app_state)).await;
    Ctx { api: Api::new(&base), admin_token: token.to_string(), mail_dir: mail.to_path_buf() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_passes_on_dynamodb() {
    let moto = Moto::start();
    let mail = tempfile::tempdir().unwrap();
    let ctx = ctx(&moto, "platform", mail.path()).await;
    scenarios::platform(&ctx).await;
    scenarios::catalog_reads(&ctx).await;
    scenarios::catalog_admin(&ctx, "dynamo").await;
    scenarios::installs(&ctx, "tenant-installs").await;
    scenarios::upgrades(&ctx, "tenant-upgrades", "dynamo").await;
    scenarios::configuration(&ctx, "tenant-config").await;
    scenarios::concurrent_writers(&ctx, "tenant-concurrency").await;
    scenarios::isolation(&ctx, "tenant-a", "tenant-b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_scenarios_pass_on_dynamodb() {
    let moto = Moto::start();
    let mail = tempfile::tempdir().unwrap();
    let ctx = ctx(&moto, "identity", mail.path()).await;
    identity::sessions(&ctx, "id-sessions").await;
    identity::lockout(&ctx, "id-lockout").await;
    identity::password_reset(&ctx, "id-reset").await;
    identity::access_control(&ctx, "id-rbac").await;
    identity::api_keys(&ctx, "id-keys").await;
    identity::audit_trail(&ctx, "id-audit").await;
    identity::cross_tenant_sweep(&ctx, "sweep-a", "sweep-b").await;
}

//! The same HTTP scenarios as the local server, with the app on DynamoDB (moto): the
//! transactions, conditions and pagination of every use case on the AWS code path.

use std::sync::Arc;

use serde_json::json;

use blackbox::{
    automation, identity, scenarios, serve_in_process, system, trust, trust::MOTO_THROTTLE_SLACK, Api, Ctx, Moto,
};
use platform::adapters::dynamo::DynamoStore;
use platform::adapters::mail_dir::DirectoryMailer;
use platform::app::{keys, Secrets};
use platform::domain::ids::TenantId;
use platform::http;
use platform::ports::store::{Condition, Item, Store};
use platform::runtime::{state, Delivery, Seed};

async fn ctx(moto: &Moto, table: &str, mail: &std::path::Path) -> Ctx {
    app_over(moto.new_table(table).await, mail).await
}

/// The app over DynamoDB with its files in S3 (moto).
async fn ctx_with_files(moto: &Moto, table: &str, mail: &std::path::Path) -> Ctx {
    let files: Arc<dyn platform::ports::blobs::Blobs> = moto.files(table).await;
    app_with(moto.new_table(table).await, mail, Some(files)).await
}

/// Another app (another "function instance", with its own caches) over the same table.
async fn app_over(store: Arc<DynamoStore>, mail: &std::path::Path) -> Ctx {
    app_with(store, mail, None).await
}

async fn app_with(
    store: Arc<DynamoStore>,
    mail: &std::path::Path,
    files: Option<Arc<dyn platform::ports::blobs::Blobs>>,
) -> Ctx {
    let token = "dynamo-admin-token-0123456789abcdef";
    let secrets = Secrets {
        platform_admin_token: Some(token.to_string()),
        jwt_secret: Some("a-test-signing-key-of-at-least-32-bytes".to_string()),
        webhook_secret: None,
        webhook_policy: Default::default(),
    };
    let app_state =
        state(store, Arc::new(DirectoryMailer::new(mail)), secrets, Delivery::Local, Seed::Yes, files).await.unwrap();
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
async fn rule_patterns_match_and_are_checked_on_dynamodb() {
    let moto = Moto::start();
    let mail = tempfile::tempdir().unwrap();
    let ctx = ctx(&moto, "platform", mail.path()).await;
    automation::eventbridge_patterns(&ctx, "dynamo-patterns").await;
    automation::rule_versions(&ctx, "dynamo-versions", false).await;
    automation::scheduled_rules(&ctx, "dynamo-schedules").await;
    automation::native_aws_sources(&ctx, "dynamo-native", "dynamo-native-other").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_pass_on_dynamodb() {
    let moto = Moto::start();
    let mail = tempfile::tempdir().unwrap();
    system::settings(&ctx(&moto, "settings", mail.path()).await, "settings").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feature_flags_pass_on_dynamodb() {
    let moto = Moto::start();
    let mail = tempfile::tempdir().unwrap();
    system::feature_flags(&ctx(&moto, "flags", mail.path()).await, "flags").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_pass_on_dynamodb() {
    let moto = Moto::start();
    let mail = tempfile::tempdir().unwrap();
    system::tools(&ctx(&moto, "tools", mail.path()).await, "tools").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calendar_events_pass_on_dynamodb() {
    let moto = Moto::start();
    let mail = tempfile::tempdir().unwrap();
    system::calendar(&ctx(&moto, "calendar", mail.path()).await, "calendar").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relations_stay_whole_on_dynamodb() {
    let moto = Moto::start();
    let mail = tempfile::tempdir().unwrap();
    system::relations(&ctx(&moto, "relations", mail.path()).await, "relations").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstalling_applies_relations_on_dynamodb() {
    let moto = Moto::start();
    let mail = tempfile::tempdir().unwrap();
    system::uninstall_relations(&ctx(&moto, "uninstalls", mail.path()).await, "uninstalls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offboarding_deletes_a_tenant_on_dynamodb() {
    let moto = Moto::start();
    let mail = tempfile::tempdir().unwrap();
    system::offboarding(&ctx_with_files(&moto, "offboarding", mail.path()).await, "leaving", "staying", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_pass_on_dynamodb_and_s3() {
    let moto = Moto::start();
    let mail = tempfile::tempdir().unwrap();
    system::attachments(&ctx_with_files(&moto, "files", mail.path()).await, "files", "files-other").await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_scenarios_pass_on_dynamodb() {
    let moto = Moto::start();
    let mail = tempfile::tempdir().unwrap();
    let store = moto.new_table("trust").await;
    let ctx = app_over(store.clone(), mail.path()).await;
    let elsewhere = app_over(store, mail.path()).await;
    trust::catalog_needs_credentials(&ctx).await;
    trust::escalation(&ctx, "trust-escalation").await;
    trust::revocation(&ctx, &elsewhere, "trust-revocation").await;
    trust::reset_beats_concurrent_refreshes(&ctx, "trust-reset-race").await;
    trust::throttling(&ctx, "trust-throttling", MOTO_THROTTLE_SLACK).await;
    trust::csv_injection(&ctx, "trust-csv").await;
    trust::delete_user_with_many_keys_and_teams(&ctx, "trust-delete").await;
    trust::over_deep_documents_are_refused(&ctx, "trust-deep").await;
    trust::oversize_documents_are_refused(&ctx, "trust-big").await;
}

/// Every item that has a lifetime carries DynamoDB's `ttl` attribute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_items_carry_their_ttl_on_dynamodb() {
    let moto = Moto::start();
    let mail = tempfile::tempdir().unwrap();
    let ctx = ctx(&moto, "ttl", mail.path()).await;
    let tenant = "ttl-tenant";
    ctx.new_tenant(tenant).await;
    let anonymous = ctx.api.anonymous();
    let wrong = json!({"tenant_id": tenant, "email": Ctx::owner_email(tenant), "password": "wrong password 123"});
    assert_eq!(anonymous.post("/api/v1/auth/login", wrong).await.status, 401);
    let reset = json!({"tenant_id": tenant, "email": Ctx::owner_email(tenant)});
    assert_eq!(anonymous.post("/api/v1/auth/password-reset", reset).await.status, 202);
    let items = moto
        .dynamodb_client()
        .query()
        .table_name("ttl")
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("TENANT#{tenant}")))
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut seen = Vec::new();
    for item in &items {
        let sk = item["SK"].as_s().unwrap();
        let kind = sk.split('#').next().unwrap();
        if ["SESSION", "OTT", "LOGIN", "LOGINADDR", "RESETREQ"].contains(&kind) {
            let ttl: u64 =
                item.get("ttl").unwrap_or_else(|| panic!("{sk} has no ttl")).as_n().unwrap().parse().unwrap();
            assert!(ttl > now, "{sk} expires in the future");
            seen.push(kind.to_string());
        }
    }
    for kind in ["SESSION", "OTT", "LOGIN", "LOGINADDR", "RESETREQ"] {
        assert!(seen.iter().any(|k| k == kind), "a {kind} item was written: {seen:?}");
    }
    let audit = moto
        .dynamodb_client()
        .query()
        .table_name("ttl")
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("TENANT#{tenant}#AUDIT")),
        )
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    let failed: Vec<_> =
        audit.iter().filter(|i| i["data"].as_m().unwrap()["outcome"].as_s().unwrap() == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].contains_key("ttl"), "failed sign-ins, written by anyone, expire");
}

/// Sign-in attempts for a tenant that does not exist write nothing at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tenants_get_no_items_on_dynamodb() {
    let moto = Moto::start();
    let mail = tempfile::tempdir().unwrap();
    let store = moto.new_table("ghosts").await;
    let ctx = app_over(store.clone(), mail.path()).await;
    for i in 0..5 {
        let body =
            json!({"tenant_id": format!("ghost-{i}"), "email": "a@b.example.com", "password": "wrong password 123"});
        assert_eq!(ctx.api.anonymous().post("/api/v1/auth/login", body).await.status, 401);
        let reset = json!({"tenant_id": format!("ghost-{i}"), "email": "a@b.example.com"});
        assert_eq!(ctx.api.anonymous().post("/api/v1/auth/password-reset", reset).await.status, 202);
    }
    let scanned = moto.dynamodb_client().scan().table_name("ghosts").send().await.unwrap().items.unwrap();
    let ghosts: Vec<_> = scanned.iter().filter(|i| i["PK"].as_s().unwrap().contains("ghost")).collect();
    assert!(ghosts.is_empty(), "{ghosts:?}");
}

/// Stored data that does not decode is a 500 naming nothing secret, not a 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_data_is_a_500_on_dynamodb() {
    let moto = Moto::start();
    let mail = tempfile::tempdir().unwrap();
    let store = moto.new_table("broken").await;
    let ctx = app_over(store.clone(), mail.path()).await;
    let owner = ctx.new_tenant("broken").await;
    let tenant = TenantId::parse("broken").unwrap();
    let garbage = Item::new(keys::tenant_pk(&tenant), keys::user_sk("01BROKEN"), 1, json!({"not": "a user"}));
    store.put(garbage, Condition::Absent).await.unwrap();
    let answer = owner.get("/api/v1/users/01BROKEN").await;
    assert_eq!(answer.status, 500, "{}", answer.body);
    assert_eq!(owner.get("/api/v1/users").await.status, 500);
}

/// A session ends at its absolute lifetime, however recently it was refreshed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_at_their_absolute_lifetime_on_dynamodb() {
    let moto = Moto::start();
    let mail = tempfile::tempdir().unwrap();
    let store = moto.new_table("absolute").await;
    let ctx = app_over(store.clone(), mail.path()).await;
    ctx.new_tenant("absolute").await;
    let anonymous = ctx.api.anonymous();
    let login =
        json!({"tenant_id": "absolute", "email": Ctx::owner_email("absolute"), "password": blackbox::OWNER_PASSWORD});
    let tokens = anonymous.post("/api/v1/auth/login", login).await;
    let refresh = tokens.body["refresh_token"].as_str().unwrap().to_string();
    let rotated = anonymous.post("/api/v1/auth/refresh", json!({"refresh_token": refresh})).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let refresh = rotated.body["refresh_token"].as_str().unwrap().to_string();
    let parts: Vec<&str> = refresh.split('.').collect();
    let (user_id, session_id) = (parts[2], parts[3]);
    let tenant = TenantId::parse("absolute").unwrap();
    let mut session =
        store.get(&keys::tenant_pk(&tenant), &keys::session_sk(user_id, session_id)).await.unwrap().unwrap();
    let version = session.version;
    session.data["absolute_expires_at"] = json!("2001-01-01T00:00:00Z");
    session.version += 1;
    store.put(session, Condition::Version(version)).await.unwrap();
    let late = anonymous.post("/api/v1/auth/refresh", json!({"refresh_token": refresh})).await;
    assert_eq!(late.status, 401, "past its absolute lifetime the session is over: {}", late.body);
}

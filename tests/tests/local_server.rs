//! Black-box: the local server binary over HTTP, on its embedded store.

use blackbox::{identity, scenarios, Api, Ctx, LocalServer};

fn ctx(server: &LocalServer) -> Ctx {
    Ctx { api: Api::new(&server.base), admin_token: server.admin_token.clone(), mail_dir: server.data_dir.join("mail") }
}

#[tokio::test]
async fn every_scenario_passes_on_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    let ctx = ctx(&server);
    scenarios::platform(&ctx).await;
    scenarios::catalog_reads(&ctx).await;
    scenarios::catalog_admin(&ctx, "local").await;
    scenarios::installs(&ctx, "tenant-installs").await;
    scenarios::upgrades(&ctx, "tenant-upgrades", "local").await;
    scenarios::configuration(&ctx, "tenant-config").await;
    scenarios::concurrent_writers(&ctx, "tenant-concurrency").await;
    scenarios::isolation(&ctx, "tenant-a", "tenant-b").await;
}

#[tokio::test]
async fn identity_scenarios_pass_on_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    let ctx = ctx(&server);
    identity::sessions(&ctx, "id-sessions").await;
    identity::lockout(&ctx, "id-lockout").await;
    identity::password_reset(&ctx, "id-reset").await;
    identity::access_control(&ctx, "id-rbac").await;
    identity::api_keys(&ctx, "id-keys").await;
    identity::audit_trail(&ctx, "id-audit").await;
    identity::cross_tenant_sweep(&ctx, "sweep-a", "sweep-b").await;
}

#[tokio::test]
async fn data_and_sessions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = LocalServer::start(dir.path());
    let api = ctx(&server).new_tenant("acme").await;
    assert_eq!(api.post("/api/v1/tenants/acme/systems", serde_json::json!({"system_id": "crm"})).await.status, 201);
    server.kill();

    let server = LocalServer::start(dir.path());
    let api = Api { base: server.base.clone(), ..api };
    let listed = api.get("/api/v1/tenants/acme/systems").await;
    assert_eq!(listed.status, 200, "the access token still verifies: the signing key is kept");
    assert_eq!(listed.body["items"][0]["system_id"], "crm");
    assert_eq!(
        api.get("/api/v1/systems?limit=200").await.body["items"].as_array().unwrap().len(),
        4,
        "seeding is idempotent"
    );
}

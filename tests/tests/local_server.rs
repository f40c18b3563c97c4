//! Black-box: the local server binary over HTTP, on its embedded store.

use blackbox::{scenarios, Api, LocalServer};

#[tokio::test]
async fn every_scenario_passes_on_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    let api = Api::new(&server.base);
    scenarios::platform(&api).await;
    scenarios::catalog_reads(&api).await;
    scenarios::catalog_admin(&api, &server.admin_token, "local").await;
    scenarios::installs(&api, "tenant-installs").await;
    scenarios::upgrades(&api, &server.admin_token, "tenant-upgrades", "local").await;
    scenarios::configuration(&api, "tenant-config").await;
    scenarios::concurrent_writers(&api, "tenant-concurrency").await;
    scenarios::isolation(&api, "tenant-a", "tenant-b").await;
}

#[tokio::test]
async fn data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = LocalServer::start(dir.path());
    let api = Api::new(&server.base).tenant("acme");
    assert_eq!(api.post("/api/v1/tenants/acme/systems", serde_json::json!({"system_id": "crm"})).await.status, 201);
    server.kill();

    let server = LocalServer::start(dir.path());
    let api = Api::new(&server.base).tenant("acme");
    let listed = api.get("/api/v1/tenants/acme/systems").await;
    assert_eq!(listed.body["items"][0]["system_id"], "crm");
    assert_eq!(
        api.get("/api/v1/systems?limit=200").await.body["items"].as_array().unwrap().len(),
        4,
        "seeding is idempotent"
    );
}

//! Black-box: the local server binary over HTTP, on its embedded store.

use blackbox::{binary, identity, scenarios, system, trust, Api, Ctx, LocalServer};

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
async fn settings_pass_on_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    system::settings(&ctx(&server), "settings").await;
}

#[tokio::test]
async fn feature_flags_pass_on_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    system::feature_flags(&ctx(&server), "flags").await;
}

#[tokio::test]
async fn flag_gated_rules_pass_on_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    system::flag_gated_rules(&ctx(&server), "gated").await;
}

#[tokio::test]
async fn tools_pass_on_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    system::tools(&ctx(&server), "tools").await;
}

#[tokio::test]
async fn tool_triggers_run_rules_on_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    system::tool_triggers(&ctx(&server), "tool-triggers").await;
}

#[tokio::test]
async fn calendar_events_pass_on_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    system::calendar(&ctx(&server), "calendar").await;
}

#[tokio::test]
async fn relations_stay_whole_on_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    system::relations(&ctx(&server), "relations").await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_product() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    system::openapi_document(&ctx(&server)).await;
}

#[tokio::test]
async fn automation_created_tasks_fall_due_on_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    system::automation_tasks_fall_due(&ctx(&server), "due").await;
}

#[tokio::test]
async fn uninstalling_applies_relations_on_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    system::uninstall_relations(&ctx(&server), "uninstalls").await;
}

#[tokio::test]
async fn every_openapi_reference_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    system::openapi_references_resolve(&ctx(&server)).await;
}

#[tokio::test]
async fn malformed_if_match_is_a_bad_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    system::if_match_syntax(&ctx(&server), "preconditions").await;
}

#[tokio::test]
async fn offboarding_deletes_a_tenant_on_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    system::offboarding(&ctx(&server), "leaving", "staying", true).await;
}

#[tokio::test]
async fn attachments_pass_on_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    system::attachments(&ctx(&server), "files", "files-other").await;
}

#[tokio::test]
async fn the_owner_exports_the_tenant_on_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    system::export(&ctx(&server), "exporting").await;
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

#[tokio::test]
async fn trust_scenarios_pass_on_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    let ctx = ctx(&server);
    trust::catalog_needs_credentials(&ctx).await;
    trust::escalation(&ctx, "trust-escalation").await;
    trust::revocation(&ctx, &ctx, "trust-revocation").await;
    trust::reset_beats_concurrent_refreshes(&ctx, "trust-reset-race").await;
    trust::throttling(&ctx, "trust-throttling", 5).await;
    trust::csv_injection(&ctx, "trust-csv").await;
    trust::delete_user_with_many_keys_and_teams(&ctx, "trust-delete").await;
    trust::over_deep_documents_are_refused(&ctx, "trust-deep").await;
    trust::oversize_documents_are_refused(&ctx, "trust-big").await;
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn local_files_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = data.join("jwt-secret");
    std::fs::write(&secret, "an-existing-signing-key-0123456789abcdef").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = LocalServer::start(&data);
    let ctx = ctx(&server);
    ctx.new_tenant("files").await;
    let anonymous = ctx.api.anonymous();
    let asked = anonymous
        .post(
            "/api/v1/auth/password-reset",
            serde_json::json!({"tenant_id": "files", "email": Ctx::owner_email("files")}),
        )
        .await;
    assert_eq!(asked.status, 202);
    assert_eq!(mode(&data), 0o700, "DATA_DIR");
    assert_eq!(mode(&data.join("platform.redb")), 0o600, "the store file");
    assert_eq!(mode(&secret), 0o600, "an existing secret file is tightened");
    let mail = data.join("mail");
    assert_eq!(mode(&mail), 0o700, "the mail folder");
    let files: Vec<_> = std::fs::read_dir(&mail).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(!files.is_empty());
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[test]
fn short_secrets_are_refused_locally() {
    for (name, value) in [("PLATFORM_ADMIN_TOKEN", "short-admin-token"), ("JWT_SECRET", "short-signing-key")] {
        let dir = tempfile::tempdir().unwrap();
        let mut command = std::process::Command::new(binary("local-server"));
        command
            .env("PORT", blackbox::free_port().to_string())
            .env("DATA_DIR", dir.path())
            .env("PLATFORM_ADMIN_TOKEN", "a-long-enough-admin-token-0123456789abcdef")
            .env(name, value);
        let out = command.output().expect("run local-server");
        assert!(!out.status.success(), "{name} of {} characters is refused", value.len());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(name) && stderr.contains("32"), "the error names the variable: {stderr}");
    }
}

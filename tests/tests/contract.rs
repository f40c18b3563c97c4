//! The OpenAPI document is true to the server. schemathesis (installed by the test
//! command) reads `/openapi.json` from the local server and sends what it generates from
//! it: the document's examples, boundary cases, random fuzzing and stateful sequences
//! that follow the links between operations. Every answer must have a status, content
//! type, headers and body the document declares for that operation, and none may be a
//! 5xx. Bounded by examples per operation and a time budget; a fixed seed (override with
//! `CONTRACT_SEED`) keeps a failure reproducible.

use std::process::Command;

use blackbox::{Api, Ctx, LocalServer};

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contract/schemathesis.toml");

/// Runs schemathesis over the server's document with `token` and extra arguments;
/// `tenant` fills every `{tenant_id}` path parameter.
fn schemathesis(server: &LocalServer, token: &str, tenant: &str, seconds: u32, extra: &[&str]) {
    let seed = std::env::var("CONTRACT_SEED").unwrap_or_else(|_| "20261123".to_string());
    // Its cache (examples found earlier, replayed first) stays out of the repository: each
    // run starts from the seed alone.
    let scratch = tempfile::tempdir().unwrap();
    let output = Command::new("python3")
        .current_dir(scratch.path())
        .args(["-m", "schemathesis.cli", "--no-color", "--config-file", CONFIG, "run"])
        .arg(format!("{}/openapi.json", server.base))
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--seed", &seed, "--max-time", &seconds.to_string()])
        .args(extra)
        .env("CONTRACT_TENANT", tenant)
        .output()
        .expect("schemathesis is installed: python3 -m pip install schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout.find("SUMMARY").map_or("", |at| &stdout[at..]);
    println!("{summary}");
    assert!(
        output.status.success(),
        "schemathesis found failures (seed {seed}):\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!summary.contains('❌'), "no phase failed:\n{summary}");
    for phase in ["Coverage", "Fuzzing", "Stateful"] {
        assert!(summary.contains(&format!("✅ {phase}")), "the {phase} phase ran and passed:\n{summary}");
    }
}

/// A tenant's owner with every system-level permission, over every operation; the two
/// that end the caller's own session (logout, session revocation) go last, on a session
/// of their own.
#[tokio::test]
async fn every_tenant_operation_answers_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    let ctx =
        Ctx { api: Api::new(&server.base), admin_token: server.admin_token.clone(), mail_dir: dir.path().join("mail") };
    let owner = ctx.new_tenant("contract").await;
    let installed = owner.post("/api/v1/tenants/contract/systems", serde_json::json!({"system_id": "crm"})).await;
    assert_eq!(installed.status, 201, "{}", installed.body);
    let token = owner.token.clone().expect("a signed-in owner");
    // Signed in before the fuzzing (which trips the sign-in rate limit).
    let session = ctx.sign_in("contract", &Ctx::owner_email("contract"), blackbox::OWNER_PASSWORD).await;
    let second = session.token.clone().expect("a second session");
    schemathesis(
        &server,
        &token,
        "contract",
        120,
        &["-H", "x-tenant-id: contract", "--exclude-path-regex", "^/api/v1/auth/(logout|sessions)"],
    );
    // Last, the two that end the caller's own session, on a session of their own.
    schemathesis(
        &server,
        &second,
        "contract",
        20,
        &["-H", "x-tenant-id: contract", "--include-path-regex", "^/api/v1/auth/(logout|sessions)"],
    );
}

/// The platform administrator over the catalog, operations and platform routes (tenant
/// creation and offboarding included, on a tenant made for it).
#[tokio::test]
async fn every_platform_operation_answers_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    let ctx =
        Ctx { api: Api::new(&server.base), admin_token: server.admin_token.clone(), mail_dir: dir.path().join("mail") };
    let leaving = ctx.new_tenant("leaving").await;
    assert_eq!(leaving.post("/api/v1/tools/notes", serde_json::json!({"title": "n"})).await.status, 201);
    schemathesis(
        &server,
        &server.admin_token,
        "leaving",
        60,
        &[
            "--include-path-regex",
            r"^/api/v1/(operations/|systems|platform/|tenants/\{tenant_id\}$|auth/(initialize|verify)-tenant)",
        ],
    );
}

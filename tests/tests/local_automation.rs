//! The automation engine on the local server, end to end: change feed -> publisher ->
//! evaluator -> durable queue -> executor, with a webhook receiver on loopback.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use blackbox::{automation, serve_in_process, Api, Ctx, LocalServer};
use hmac::{KeyInit, Mac};
use serde_json::json;

fn ctx(server: &LocalServer) -> Ctx {
    Ctx { api: Api::new(&server.base), admin_token: server.admin_token.clone(), mail_dir: server.data_dir.join("mail") }
}

type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A webhook receiver: `/hooks/ok` records and answers 200, `/hooks/fail` answers 500.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let ok = received.clone();
    let app = axum::Router::new()
        .route(
            "/hooks/ok",
            post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let ok = ok.clone();
                async move {
                    ok.lock().unwrap().push((headers, body.to_vec()));
                    StatusCode::OK
                }
            }),
        )
        .route("/hooks/fail", post(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/hooks/redirect", post(|| async { (StatusCode::FOUND, [("location", "/hooks/ok")]) }));
    (serve_in_process(app).await, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automation_scenarios_pass_on_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    // The receiver is on loopback: this server lets webhooks reach private addresses.
    let server = LocalServer::start_with(dir.path(), &[("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")]);
    let ctx = ctx(&server);
    let (webhooks, received) = receiver().await;
    automation::seed_example(&ctx, "auto-seed").await;
    automation::rules_api(&ctx, "auto-rules").await;
    automation::eventbridge_patterns(&ctx, "auto-patterns").await;
    automation::rule_versions(&ctx, "auto-versions", true).await;
    automation::scheduled_rules(&ctx, "auto-schedules").await;
    automation::native_aws_sources(&ctx, "auto-native", "auto-native-other").await;
    automation::records(&ctx, "auto-records").await;
    automation::actions(&ctx, "auto-actions", &webhooks).await;
    automation::isolation(&ctx, "auto-a", "auto-b").await;
    automation::webhook_redirects_are_not_followed(&ctx, "auto-redirect", &webhooks).await;
    automation::rate_limits_delay_actions(&ctx, "auto-rates").await;

    // The webhook arrived once, signed with HMAC-SHA256 of its body.
    let followed = received.lock().unwrap().iter().filter(|(h, _)| h["x-tenant"] == "Redirected").count();
    assert_eq!(followed, 0, "a redirect is never followed with the signed request");
    let calls: Vec<_> = received.lock().unwrap().iter().filter(|(h, _)| h["x-tenant"] == "Globex").cloned().collect();
    assert_eq!(calls.len(), 1, "delivered exactly once");
    let (headers, body) = &calls[0];
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"hook-secret").unwrap();
    mac.update(body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(headers["x-signature-256"], format!("sha256={expected}").as_str());
    assert_eq!(headers["x-tenant"], "Globex");
    assert!(headers.contains_key("x-idempotency-key"));
    let payload: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(payload, json!({"deal": "Globex", "value": "5000"}));

    // What happened is in the Prometheus metrics, by route and status, never by tenant.
    let metrics = reqwest::get(format!("{}/metrics", server.base)).await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = metrics.text().await.unwrap();
    for expected in [
        r#"http_requests_total{route="/api/v1/automation/rules",method="POST",status="201"}"#,
        r#"http_request_duration_seconds_bucket{route="/api/v1/automation/rules",method="POST",le="#,
        r#"automation_events_evaluated_total{module="sales"}"#,
        r#"automation_rules_matched_total{module="sales"}"#,
        r#"automation_actions_total{type="webhook",outcome="succeeded"}"#,
        r#"automation_actions_total{type="send_notification",outcome="succeeded"}"#,
        "automation_queue_depth ",
        "automation_queue_oldest_age_seconds ",
    ] {
        assert!(text.contains(expected), "{expected} in\n{text}");
    }
    assert!(!text.contains("auto-a") && !text.contains("Globex"), "no tenant or data in any label");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_opportunity_notifies_even_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = LocalServer::start(dir.path());
    let api = ctx(&server).new_tenant("crashy").await;
    api.post("/api/v1/tenants/crashy/systems", json!({"system_id": "sales"})).await;
    assert_eq!(api.post("/api/v1/automation/rules", automation::seed_rule()).await.status, 201);
    let created = api
        .post(
            "/api/v1/systems/sales/records/opportunities",
            json!({"name": "Survivor", "value": 20000, "stage": "prospecting"}),
        )
        .await;
    assert_eq!(created.status, 201);
    server.kill();

    let server = LocalServer::start(dir.path());
    let api = Api { base: server.base.clone(), ..api };
    let notifications =
        automation::eventually(&api, "/api/v1/notifications", |b| !b["items"].as_array().unwrap().is_empty()).await;
    assert_eq!(notifications["items"].as_array().unwrap().len(), 1, "exactly one notification");
    assert_eq!(notifications["items"][0]["message"], "New high-value opportunity: Survivor - $20000");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        api.get("/api/v1/notifications").await.body["items"].as_array().unwrap().len(),
        1,
        "and never a second one"
    );
}

/// A webhook without its own secret is signed with its tenant's key (shown once at
/// onboarding and at each rotation), so one tenant cannot sign for another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_with_their_tenants_key() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start_with(dir.path(), &[("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")]);
    let ctx = ctx(&server);
    let (webhooks, received) = receiver().await;
    let mut keys = Vec::new();
    for tenant in ["keys-a", "keys-b"] {
        let created = ctx
            .admin()
            .post("/api/v1/auth/initialize-tenant", json!({"tenant_id": tenant, "name": tenant, "admin_email": Ctx::owner_email(tenant), "admin_password": blackbox::OWNER_PASSWORD}))
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        let onboarding_key = created.body["webhook_signing_key"]["key"].as_str().unwrap().to_string();
        let api = ctx.sign_in(tenant, &Ctx::owner_email(tenant), blackbox::OWNER_PASSWORD).await;
        let rotated = api.post("/api/v1/automation/signing-key", json!({})).await;
        assert_eq!(rotated.status, 201, "{}", rotated.body);
        let key = rotated.body["key"].as_str().unwrap().to_string();
        assert_ne!(key, onboarding_key, "a rotation makes a new key");
        assert_eq!(key.len(), 64);
        api.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "sales"})).await;
        let rule = api
            .post("/api/v1/automation/rules", json!({"name": "signed", "module_type": "sales", "trigger_id": "opportunity_created", "actions": [{"type": "webhook", "parameters": {"url": format!("{webhooks}/hooks/ok"), "headers": {"x-tenant": tenant}}}]}))
            .await;
        assert_eq!(rule.status, 201, "{}", rule.body);
        let record = api
            .post(
                "/api/v1/systems/sales/records/opportunities",
                json!({"name": "Signed", "value": 1, "stage": "proposal"}),
            )
            .await;
        assert_eq!(record.status, 201, "{}", record.body);
        keys.push((tenant, key));
    }
    assert_ne!(keys[0].1, keys[1].1, "every tenant has its own key");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for (tenant, key) in &keys {
        let (headers, body) = loop {
            let found = received.lock().unwrap().iter().find(|(h, _)| h["x-tenant"] == *tenant).cloned();
            if let Some(found) = found {
                break found;
            }
            assert!(std::time::Instant::now() < deadline, "{tenant}'s webhook never arrived");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(&body);
        let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            headers["x-signature-256"],
            format!("sha256={expected}").as_str(),
            "{tenant}'s key signs its webhooks"
        );
    }
}

/// With the default policy, webhooks cannot reach inside the network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_cannot_reach_inside_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path());
    let ctx = ctx(&server);
    let (webhooks, received) = receiver().await;
    let port: u16 = webhooks.rsplit(':').next().unwrap().parse().unwrap();
    automation::webhook_targets_are_checked(&ctx, "ssrf", port).await;
    assert!(received.lock().unwrap().is_empty(), "nothing reached the receiver");
}

/// Even where private targets are allowed, a webhook may not call the platform's own API
/// (it would start a new chain of automations, free of the causation limit): refused
/// at rule creation by every name of the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_cannot_call_the_platforms_own_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start_with(dir.path(), &[("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")]);
    let ctx = ctx(&server);
    let api = ctx.new_tenant("own-api").await;
    assert_eq!(api.post("/api/v1/tenants/own-api/systems", json!({"system_id": "sales"})).await.status, 201);
    let port = server.base.rsplit(':').next().unwrap().to_string();
    for base in [server.base.clone(), format!("http://localhost:{port}")] {
        let rule = api
            .post("/api/v1/automation/rules", json!({"name": "loop", "module_type": "sales", "trigger_id": "opportunity_created", "actions": [{"type": "webhook", "parameters": {"url": format!("{base}/api/v1/automation/events")}}]}))
            .await;
        assert_eq!(
            (rule.status, rule.problem_fields()),
            (422, vec!["actions[0].parameters.url".to_string()]),
            "{base}: {}",
            rule.body
        );
    }
    let (webhooks, _) = receiver().await;
    let elsewhere = api
        .post("/api/v1/automation/rules", json!({"name": "receiver", "module_type": "sales", "trigger_id": "opportunity_created", "actions": [{"type": "webhook", "parameters": {"url": format!("{webhooks}/hooks/ok")}}]}))
        .await;
    assert_eq!(elsewhere.status, 201, "another port of the same host is another service: {}", elsewhere.body);
}

/// A delayed action's timer is durable: the server is killed while the action waits,
/// and after the restart it runs once, when due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_actions_survive_a_kill_and_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = LocalServer::start(dir.path());
    let api = ctx(&server).new_tenant("waiting").await;
    assert_eq!(api.post("/api/v1/tenants/waiting/systems", json!({"system_id": "sales"})).await.status, 201);
    let mut rule = automation::seed_rule();
    rule["actions"][0]["delay"] = json!("2 hours");
    let refused = api.post("/api/v1/automation/rules", rule.clone()).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.problem_fields(), ["actions[0].delay"]);
    rule["actions"][0]["delay"] = json!("PT3S");
    let created = api.post("/api/v1/automation/rules", rule).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["actions"][0]["delay"], "PT3S", "kept as written");
    let record = api
        .post(
            "/api/v1/systems/sales/records/opportunities",
            json!({"name": "Patient", "value": 20000, "stage": "prospecting"}),
        )
        .await;
    assert_eq!(record.status, 201);
    let runs = automation::eventually(&api, "/api/v1/automation/executions", |b| {
        b["items"][0]["actions"][0]["status"] == "waiting"
    })
    .await;
    assert!(runs["items"][0]["actions"][0]["due_at"].is_string(), "{runs}");
    assert!(api.get("/api/v1/notifications").await.body["items"].as_array().unwrap().is_empty(), "not before its time");
    server.kill();

    let server = LocalServer::start(dir.path());
    let api = Api { base: server.base.clone(), ..api };
    let notifications =
        automation::eventually(&api, "/api/v1/notifications", |b| !b["items"].as_array().unwrap().is_empty()).await;
    assert_eq!(notifications["items"][0]["message"], "New high-value opportunity: Patient - $20000");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(api.get("/api/v1/notifications").await.body["items"].as_array().unwrap().len(), 1, "exactly once");
    let run = &api.get("/api/v1/automation/executions").await.body["items"][0];
    assert_eq!((run["status"].as_str(), run["actions"][0]["status"].as_str()), (Some("succeeded"), Some("succeeded")));
}

//! Automation scenarios on a running local server: the high-value deal alert end to end,
//! validation, tests of rules, actions, loop protection, retries and isolation.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{Api, Ctx};

/// The original API's "High Value Deal Alert" example request, exactly as documented.
pub fn seed_rule() -> Value {
    json!({
      "name": "High Value Deal Alert",
      "description": "Notify sales manager about deals over $10,000",
      "module_type": "sales",
      "trigger_id": "high_value_opportunity",
      "conditions": [{"type": "value_threshold", "value": 10000}],
      "actions": [{"type": "send_notification", "parameters": {"recipient": "sales-manager@example.com", "message": "New high-value opportunity: {{opportunity_name}} - ${{value}}"}}]
    })
}

/// Polls `path` until `done` holds for its answer (at most 10 s).
pub async fn eventually(api: &Api, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = api.get(path).await;
        if done(&answer.body) {
            return answer.body;
        }
        assert!(Instant::now() < deadline, "{path} never reached the expected state: {}", answer.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn items(body: &Value) -> &Vec<Value> {
    body["items"].as_array().expect("a list")
}

/// Waits until the pipeline has nothing left to do (no pending executions).
async fn settle(api: &Api) {
    eventually(api, "/api/v1/automation/executions?status=pending&limit=200", |b| items(b).is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    eventually(api, "/api/v1/automation/executions?status=pending&limit=200", |b| items(b).is_empty()).await;
}

/// The seed example: rule, opportunity worth 20000, the notification.
pub async fn seed_example(ctx: &Ctx, tenant: &str) {
    let api = ctx.new_tenant(tenant).await;
    assert_eq!(api.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "sales"})).await.status, 201);
    let created = api.post("/api/v1/automation/rules", seed_rule()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    for field in [
        "id",
        "name",
        "tenant_id",
        "description",
        "module_type",
        "trigger_id",
        "conditions",
        "actions",
        "is_active",
        "created_at",
        "updated_at",
    ] {
        assert!(created.body.get(field).is_some(), "the seed's answer has {field}");
    }
    assert_eq!(created.body["tenant_id"], tenant);
    assert_eq!(created.body["is_active"], true);
    assert_eq!(created.body["conditions"], seed_rule()["conditions"]);
    let rule_id = created.body["id"].as_str().unwrap().to_string();

    let opportunity = api
        .post(
            "/api/v1/systems/sales/records/opportunities",
            json!({"name": "Acme expansion", "value": 20000, "stage": "prospecting"}),
        )
        .await;
    assert_eq!(opportunity.status, 201, "{}", opportunity.body);
    let notifications = eventually(&api, "/api/v1/notifications", |b| !items(b).is_empty()).await;
    let notification = &items(&notifications)[0];
    assert_eq!(notification["message"], "New high-value opportunity: Acme expansion - $20000");
    assert_eq!(notification["recipient"], "sales-manager@example.com");

    let runs = eventually(&api, &format!("/api/v1/automation/rules/{rule_id}/executions"), |b| {
        items(b).first().is_some_and(|e| e["status"] == "succeeded")
    })
    .await;
    let run = &items(&runs)[0];
    assert_eq!(run["conditions"], json!([{"type": "value_threshold", "field": null, "held": true}]));
    assert_eq!(run["actions"][0]["status"], "succeeded");
    assert_eq!(run["actions"][0]["attempts"], 1);
    assert_eq!(run["event"]["data"]["opportunity_id"], opportunity.body["record_id"]);

    // A small deal fires no high-value event; a disabled rule does not run.
    api.post(
        "/api/v1/systems/sales/records/opportunities",
        json!({"name": "Small", "value": 50, "stage": "prospecting"}),
    )
    .await;
    let off = api.put(&format!("/api/v1/automation/rules/{rule_id}/toggle?is_active=false"), json!({})).await;
    assert_eq!((off.status, off.body["is_active"].as_bool()), (200, Some(false)));
    api.post(
        "/api/v1/systems/sales/records/opportunities",
        json!({"name": "Big but off", "value": 90000, "stage": "prospecting"}),
    )
    .await;
    settle(&api).await;
    assert_eq!(items(&api.get("/api/v1/notifications").await.body).len(), 1);
    let listed = api.get("/api/v1/automation/rules?module_type=sales&is_active=false").await;
    assert_eq!(items(&listed.body).len(), 1);
    assert!(items(&api.get("/api/v1/automation/rules?is_active=true").await.body).is_empty());
    assert_eq!(
        api.put(&format!("/api/v1/automation/rules/{rule_id}/toggle?is_active=maybe"), json!({}))
            .await
            .problem_fields(),
        ["is_active"]
    );
}

/// Rules are validated field by field; triggers are listed with their data.
pub async fn rules_api(ctx: &Ctx, tenant: &str) {
    let api = ctx.new_tenant(tenant).await;
    api.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "sales"})).await;
    let triggers = api.get("/api/v1/automation/triggers?module_type=sales").await;
    let ids: Vec<&str> = triggers.body.as_array().unwrap().iter().map(|t| t["trigger_id"].as_str().unwrap()).collect();
    for id in [
        "opportunity_created",
        "opportunity_stage_changed",
        "deal_closed_won",
        "deal_closed_lost",
        "high_value_opportunity",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    let high = triggers.body.as_array().unwrap().iter().find(|t| t["trigger_id"] == "high_value_opportunity").unwrap();
    for field in ["opportunity_id", "opportunity_name", "value"] {
        assert!(high["data"].as_array().unwrap().contains(&json!(field)), "{field}");
    }
    let all = api.get("/api/v1/automation/triggers").await;
    assert!(all.body.as_array().unwrap().iter().any(|t| t["trigger_id"] == "contact_created"), "crm came with sales");

    let with = |patch: Value| {
        let mut rule = seed_rule();
        for (k, v) in patch.as_object().unwrap() {
            rule[k] = v.clone();
        }
        rule
    };
    let cases = [
        (json!({"module_type": "payroll"}), "module_type"),
        (json!({"module_type": "support"}), "module_type"),
        (json!({"trigger_id": "moon_landing"}), "trigger_id"),
        (json!({"conditions": [{"type": "astrology", "value": 1}]}), "conditions[0].type"),
        (json!({"conditions": [{"type": "equals", "field": "shoe_size", "value": 1}]}), "conditions[0].field"),
        (json!({"actions": [{"type": "send_fax", "parameters": {}}]}), "actions[0].type"),
        (
            json!({"actions": [{"type": "send_notification", "parameters": {"recipient": "x@y.co"}}]}),
            "actions[0].parameters.message",
        ),
        (json!({"actions": []}), "actions"),
    ];
    for (patch, field) in cases {
        let refused = api.post("/api/v1/automation/rules", with(patch.clone())).await;
        assert_eq!((refused.status, refused.problem_fields()), (422, vec![field.to_string()]), "{patch}");
    }

    let created = api.post("/api/v1/automation/rules", with(json!({"conditions": [
        {"type": "value_threshold", "value": 10000},
        {"type": "pattern", "value": {"stage": [{"anything-but": ["closed_lost"]}], "$or": [{"owner": [{"prefix": "ann"}]}, {"value": [{"numeric": [">=", 50000]}]}]}}
    ]}))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let tried = api
        .post(
            &format!("/api/v1/automation/rules/{id}/test"),
            json!({"data": {"opportunity_name": "Deal", "value": 20000, "stage": "proposal", "owner": "anna"}}),
        )
        .await;
    assert_eq!(tried.body["matched"], true, "{}", tried.body);
    assert_eq!(tried.body["actions"][0]["would"]["message"], "New high-value opportunity: Deal - $20000");
    let missed = api
        .post(
            &format!("/api/v1/automation/rules/{id}/test"),
            json!({"data": {"value": 20000, "stage": "proposal", "owner": "bob"}}),
        )
        .await;
    assert_eq!(missed.body["matched"], false);
    assert_eq!(missed.body["conditions"][1]["held"], false);
    assert!(missed.body["actions"][0]["would"].is_null());
    assert!(items(&api.get("/api/v1/notifications").await.body).is_empty(), "a test has no side effects");

    let replaced = api.put(&format!("/api/v1/automation/rules/{id}"), with(json!({"name": "Renamed"}))).await;
    assert_eq!((replaced.status, replaced.body["name"].as_str()), (200, Some("Renamed")));
    assert_eq!(api.get(&format!("/api/v1/automation/rules/{id}")).await.body["name"], "Renamed");
    assert_eq!(api.delete(&format!("/api/v1/automation/rules/{id}")).await.status, 204);
    assert_eq!(api.get(&format!("/api/v1/automation/rules/{id}")).await.status, 404);

    let unknown_field = api
        .post(
            "/api/v1/automation/events",
            json!({"module_type": "sales", "trigger_id": "deal_closed_won", "data": {"horse": 1}}),
        )
        .await;
    assert_eq!(unknown_field.problem_fields(), ["data.horse"]);
}

/// Actions: tasks, status updates (which fire further events), webhooks signed with
/// HMAC, failures retried and replayed; loop protection; events from outside.
pub async fn actions(ctx: &Ctx, tenant: &str, webhook_base: &str) {
    let api = ctx.new_tenant(tenant).await;
    api.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "sales"})).await;
    let rule = |name: &str, trigger: &str, conditions: Value, actions: Value| json!({"name": name, "module_type": if trigger.starts_with("contact") { "crm" } else { "sales" }, "trigger_id": trigger, "conditions": conditions, "actions": actions});
    let won = api.post("/api/v1/automation/rules", rule("Won: follow up", "deal_closed_won", json!([]), json!([
        {"type": "create_task", "parameters": {"title": "Kick-off for {{opportunity_name}}", "description": "Worth {{value}}", "due_date": "2026-12-01", "assignee": "{{owner}}"}},
        {"type": "webhook", "parameters": {"url": format!("{webhook_base}/hooks/ok"), "secret": "hook-secret", "headers": {"x-tenant": "{{opportunity_name}}"}, "body": {"deal": "{{opportunity_name}}", "value": "{{value}}"}}}
    ]))).await;
    assert_eq!(won.status, 201, "{}", won.body);
    assert_eq!(won.body["actions"][1]["parameters"]["secret"], "********", "secrets are never read back");
    assert_eq!(won.body["actions"][1]["parameters"]["headers"]["x-tenant"], "********");
    let opportunity = api
        .post(
            "/api/v1/systems/sales/records/opportunities",
            json!({"name": "Globex", "value": 5000, "stage": "negotiation", "owner": "ann"}),
        )
        .await;
    let id = opportunity.body["record_id"].as_str().unwrap().to_string();
    let patched = api
        .send(
            "PATCH",
            &format!("/api/v1/systems/sales/records/opportunities/{id}"),
            Some(json!({"stage": "closed_won"})),
            &[],
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let tasks = eventually(&api, "/api/v1/tools/tasks", |b| !items(b).is_empty()).await;
    let task = &items(&tasks)[0];
    assert_eq!(
        (task["title"].as_str(), task["assignee"].as_str(), task["status"].as_str()),
        (Some("Kick-off for Globex"), Some("ann"), Some("todo"))
    );
    let runs =
        eventually(&api, &format!("/api/v1/automation/rules/{}/executions", won.body["id"].as_str().unwrap()), |b| {
            items(b).first().is_some_and(|e| e["status"] == "succeeded")
        })
        .await;
    assert_eq!(items(&runs)[0]["actions"][1]["result"]["status"], 200);
    assert_eq!(
        items(&runs)[0]["rule"]["actions"][1]["parameters"]["secret"],
        "********",
        "runs do not leak secrets either"
    );

    // A failing webhook is retried with backoff, recorded as failed, and can be replayed.
    let failing = api
        .post(
            "/api/v1/automation/rules",
            rule(
                "Lost: tell the CRM",
                "deal_closed_lost",
                json!([]),
                json!([
                    {"type": "webhook", "parameters": {"url": format!("{webhook_base}/hooks/fail"), "secret": "hook-secret"}}
                ]),
            ),
        )
        .await;
    let lost = api
        .post(
            "/api/v1/systems/sales/records/opportunities",
            json!({"name": "Initech", "value": 100, "stage": "proposal"}),
        )
        .await;
    api.send(
        "PATCH",
        &format!("/api/v1/systems/sales/records/opportunities/{}", lost.body["record_id"].as_str().unwrap()),
        Some(json!({"stage": "closed_lost", "reason": "price"})),
        &[],
    )
    .await;
    let failed_path = format!("/api/v1/automation/rules/{}/executions", failing.body["id"].as_str().unwrap());
    let failed = eventually(&api, &failed_path, |b| {
        items(b).first().is_some_and(|e| e["actions"][0]["attempts"].as_u64() >= Some(2))
    })
    .await;
    let execution = &items(&failed)[0];
    assert_eq!(execution["status"], "failed");
    assert!(execution["actions"][0]["error"].as_str().unwrap().contains("500"), "{execution}");
    let listed_failed = api.get("/api/v1/automation/executions?status=failed").await;
    assert!(items(&listed_failed.body).iter().any(|e| e["execution_id"] == execution["execution_id"]));
    let execution_id = execution["execution_id"].as_str().unwrap();
    let replay = api.post(&format!("/api/v1/automation/executions/{execution_id}/retry"), json!({})).await;
    assert_eq!(replay.status, 202, "{}", replay.body);
    assert_eq!(api.post("/api/v1/automation/executions/nope/retry", json!({})).await.status, 404);
    let again = eventually(&api, &format!("/api/v1/automation/executions/{execution_id}"), |b| {
        b["actions"][0]["attempts"].as_u64() >= Some(1) && b["status"] == "failed"
    })
    .await;
    assert_eq!(again["status"], "failed");

    // update_status changes the record, which fires further events; a ping-pong of two
    // rules stops at the causation depth limit and the run says why.
    for (from, to) in [("active", "inactive"), ("inactive", "active")] {
        let created = api
            .post(
                "/api/v1/automation/rules",
                rule(
                    &format!("{from} -> {to}"),
                    "contact_status_changed",
                    json!([{"type": "changed_to", "field": "status", "value": from}]),
                    json!([
                        {"type": "update_status", "parameters": {"entity_id": "{{contact_id}}", "new_status": to}}
                    ]),
                ),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
    }
    let contact = api
        .post(
            "/api/v1/systems/crm/records/contacts",
            json!({"first_name": "Ann", "last_name": "Lee", "email": "ann@example.com", "status": "new"}),
        )
        .await;
    assert_eq!(contact.status, 201, "{}", contact.body);
    let contact_id = contact.body["record_id"].as_str().unwrap();
    api.send(
        "PATCH",
        &format!("/api/v1/systems/crm/records/contacts/{contact_id}"),
        Some(json!({"status": "active"})),
        &[],
    )
    .await;
    let stopped = eventually(&api, "/api/v1/automation/executions?status=stopped", |b| !items(b).is_empty()).await;
    let stop = &items(&stopped)[0];
    assert!(stop["reason"].as_str().unwrap().contains("causation depth"), "{stop}");
    assert_eq!(stop["event"]["causation"]["depth"], 6);
    settle(&api).await;
    let version_after = api.get(&format!("/api/v1/systems/crm/records/contacts/{contact_id}")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        api.get(&format!("/api/v1/systems/crm/records/contacts/{contact_id}")).await.header("etag"),
        version_after.header("etag"),
        "the chain stopped"
    );

    // Events from outside take the same path.
    let outside = api.post("/api/v1/automation/rules", rule("Outside", "deal_closed_won", json!([{"type": "equals", "field": "opportunity_name", "value": "From ERP"}]), json!([
        {"type": "send_notification", "parameters": {"recipient": "erp@example.com", "message": "ERP says {{opportunity_name}} won {{value}}"}}
    ]))).await;
    assert_eq!(outside.status, 201);
    let published = api.post("/api/v1/automation/events", json!({"module_type": "sales", "trigger_id": "deal_closed_won", "data": {"opportunity_id": "x1", "opportunity_name": "From ERP", "value": 7}})).await;
    assert_eq!(published.status, 202, "{}", published.body);
    let notes =
        eventually(&api, "/api/v1/notifications", |b| items(b).iter().any(|n| n["recipient"] == "erp@example.com"))
            .await;
    assert!(items(&notes).iter().any(|n| n["message"] == "ERP says From ERP won 7"));
}

/// An event of one tenant only ever matches that tenant's rules.
pub async fn isolation(ctx: &Ctx, tenant_a: &str, tenant_b: &str) {
    let a = ctx.new_tenant(tenant_a).await;
    let b = ctx.new_tenant(tenant_b).await;
    for api in [&a, &b] {
        let tenant = api.tenant.clone().unwrap();
        api.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "sales"})).await;
        assert_eq!(api.post("/api/v1/automation/rules", seed_rule()).await.status, 201);
    }
    a.post(
        "/api/v1/systems/sales/records/opportunities",
        json!({"name": "A only", "value": 99999, "stage": "prospecting"}),
    )
    .await;
    eventually(&a, "/api/v1/notifications", |body| items(body).len() == 1).await;
    settle(&b).await;
    assert!(items(&b.get("/api/v1/notifications").await.body).is_empty(), "B's rules never see A's events");
    assert!(items(&b.get("/api/v1/automation/executions").await.body).is_empty());
    let a_rules = a.get("/api/v1/automation/rules").await;
    let a_rule = items(&a_rules.body)[0]["id"].as_str().unwrap().to_string();
    assert_eq!(b.get(&format!("/api/v1/automation/rules/{a_rule}")).await.status, 404);
    assert_eq!(
        b.put(&format!("/api/v1/automation/rules/{a_rule}/toggle?is_active=false"), json!({})).await.status,
        404
    );
    let records = a.get("/api/v1/systems/sales/records/opportunities").await;
    let record = items(&records.body)[0]["record_id"].as_str().unwrap().to_string();
    assert_eq!(b.get(&format!("/api/v1/systems/sales/records/opportunities/{record}")).await.status, 404);
}

/// Records: validation naming fields, relations within the tenant, filters, 404s.
pub async fn records(ctx: &Ctx, tenant: &str) {
    let api = ctx.new_tenant(tenant).await;
    assert_eq!(api.get("/api/v1/systems/sales/records/opportunities").await.status, 404, "not installed");
    api.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "sales"})).await;
    assert_eq!(api.get("/api/v1/systems/sales/records/unicorns").await.status, 404);
    let bad = api
        .post("/api/v1/systems/sales/records/opportunities", json!({"name": "x", "value": -5, "stage": "dreaming"}))
        .await;
    assert_eq!(bad.status, 422);
    let mut fields = bad.problem_fields();
    fields.sort();
    assert_eq!(fields, ["/stage", "/value"]);
    let dangling = api
        .post(
            "/api/v1/systems/sales/records/opportunities",
            json!({"name": "x", "value": 5, "stage": "proposal", "contact_id": "nope"}),
        )
        .await;
    assert_eq!((dangling.status, dangling.problem_fields()), (422, vec!["/contact_id".to_string()]));
    let contact = api
        .post(
            "/api/v1/systems/crm/records/contacts",
            json!({"first_name": "Bo", "last_name": "Li", "email": "bo@example.com"}),
        )
        .await;
    assert_eq!(contact.status, 201, "{}", contact.body);
    let contact_id = contact.body["record_id"].as_str().unwrap();
    let linked = api
        .post(
            "/api/v1/systems/sales/records/opportunities",
            json!({"name": "Linked", "value": 5, "stage": "proposal", "contact_id": contact_id}),
        )
        .await;
    assert_eq!(linked.status, 201, "{}", linked.body);
    api.post(
        "/api/v1/systems/sales/records/opportunities",
        json!({"name": "Other", "value": 7, "stage": "qualification"}),
    )
    .await;
    let filtered = api.get("/api/v1/systems/sales/records/opportunities?stage=proposal").await;
    assert_eq!(items(&filtered.body).len(), 1);
    assert_eq!(api.get("/api/v1/systems/sales/records/opportunities?colour=red").await.problem_fields(), ["colour"]);
    let page = api.get("/api/v1/systems/sales/records/opportunities?limit=1").await;
    assert!(page.body["next_cursor"].is_string());
    let id = linked.body["record_id"].as_str().unwrap();
    let path = format!("/api/v1/systems/sales/records/opportunities/{id}");
    let got = api.get(&path).await;
    let stale = api.send("PATCH", &path, Some(json!({"value": 9})), &[("if-match", "\"99\"")]).await;
    assert_eq!(stale.status, 412);
    let ok = api
        .send(
            "PATCH",
            &path,
            Some(json!({"value": 9, "contact_id": null})),
            &[("if-match", got.header("etag").unwrap())],
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body["data"].get("contact_id").is_none(), "merge patch null removes");
    assert_eq!(api.send("PATCH", &path, Some(json!({"value": "lots"})), &[]).await.problem_fields(), ["/value"]);
    assert_eq!(api.delete(&path).await.status, 204);
    assert_eq!(api.get(&path).await.status, 404);
}

/// Webhooks cannot be aimed inside the platform's network (server-side request forgery),
/// on a server with the default policy: literal addresses and host templates are refused
/// when the rule is written, a name that resolves inside fails the run with the reason,
/// and nothing reaches the receiver. Secrets never show in a dry run.
pub async fn webhook_targets_are_checked(ctx: &Ctx, tenant: &str, receiver_port: u16) {
    let api = ctx.new_tenant(tenant).await;
    api.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "sales"})).await;
    let rule = |name: &str, parameters: Value| json!({"name": name, "module_type": "sales", "trigger_id": "opportunity_created", "actions": [{"type": "webhook", "parameters": parameters}]});
    for (url, why) in [
        ("http://169.254.169.254/latest/meta-data/iam", "instance metadata"),
        ("http://127.0.0.1:9/x", "loopback"),
        ("http://[::ffff:127.0.0.1]/x", "IPv4-mapped loopback"),
        ("http://10.0.0.5/x", "private"),
        ("http://100.64.1.1/x", "carrier-grade NAT"),
        ("http://[fd00::1]/x", "unique-local"),
        ("https://{{host}}/x", "host from data"),
        ("https://example.com:{{port}}/x", "port from data"),
        ("https://user:pass@example.com/x", "credentials in the URL"),
        ("file:///etc/passwd", "not http"),
    ] {
        let refused = api.post("/api/v1/automation/rules", rule("bad", json!({"url": url, "secret": "s"}))).await;
        assert_eq!(refused.status, 422, "{why}: {}", refused.body);
        assert_eq!(refused.problem_fields(), ["actions[0].parameters.url"], "{why}");
    }
    for header in ["Host", "Transfer-Encoding", "Connection", "X-Signature-256"] {
        let refused = api
            .post(
                "/api/v1/automation/rules",
                rule("bad", json!({"url": "https://example.com/x", "headers": {header: "x"}})),
            )
            .await;
        assert_eq!(refused.status, 422, "{header}: {}", refused.body);
        assert_eq!(refused.problem_fields(), [format!("actions[0].parameters.headers.{header}")]);
    }

    // A name that resolves inside: accepted as written, refused when called.
    let inside = api
        .post(
            "/api/v1/automation/rules",
            rule("inside", json!({"url": format!("http://localhost:{receiver_port}/hooks/ok/{{{{opportunity_name}}}}"), "secret": "s"})),
        )
        .await;
    assert_eq!(inside.status, 201, "{}", inside.body);
    let created = api
        .post("/api/v1/systems/sales/records/opportunities", json!({"name": "Probe", "value": 1, "stage": "proposal"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let path = format!("/api/v1/automation/rules/{}/executions", inside.body["id"].as_str().unwrap());
    let runs =
        eventually(&api, &path, |b| items(b).first().is_some_and(|e| e["actions"][0]["error"].is_string())).await;
    let error = items(&runs)[0]["actions"][0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("resolves to") && error.contains("may not reach"), "{error}");

    // The dry run shows what would be sent, secrets masked.
    let secretive = api
        .post(
            "/api/v1/automation/rules",
            rule("secretive", json!({"url": "https://hooks.example.com/x?token=T0P-SECRET&stage={{stage}}", "secret": "S3CRET-KEY", "headers": {"Authorization": "Bearer H3ADER-SECRET"}})),
        )
        .await;
    assert_eq!(secretive.status, 201, "{}", secretive.body);
    let tried = api
        .post(
            &format!("/api/v1/automation/rules/{}/test", secretive.body["id"].as_str().unwrap()),
            json!({"data": {"stage": "won", "opportunity_name": "x"}}),
        )
        .await;
    assert_eq!(tried.status, 200, "{}", tried.body);
    let shown = tried.body.to_string();
    for secret in ["T0P-SECRET", "S3CRET-KEY", "H3ADER-SECRET"] {
        assert!(!shown.contains(secret), "the dry run shows {secret}: {shown}");
    }
    assert!(shown.contains("stage=won"), "{shown}");
    let read = api.get(&format!("/api/v1/automation/rules/{}", secretive.body["id"].as_str().unwrap())).await;
    assert!(!read.body.to_string().contains("T0P-SECRET"), "{}", read.body);
}

/// A webhook answered with a redirect fails; the redirect target never gets the signed
/// request (on a server that allows private targets, for the local receiver).
pub async fn webhook_redirects_are_not_followed(ctx: &Ctx, tenant: &str, webhook_base: &str) {
    let api = ctx.new_tenant(tenant).await;
    api.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "sales"})).await;
    let redirecting = api
        .post(
            "/api/v1/automation/rules",
            json!({"name": "redirected", "module_type": "sales", "trigger_id": "opportunity_created", "actions": [{"type": "webhook", "parameters": {"url": format!("{webhook_base}/hooks/redirect"), "secret": "s", "headers": {"x-tenant": "Redirected"}}}]}),
        )
        .await;
    assert_eq!(redirecting.status, 201, "{}", redirecting.body);
    api.post("/api/v1/systems/sales/records/opportunities", json!({"name": "Hop", "value": 1, "stage": "proposal"}))
        .await;
    let path = format!("/api/v1/automation/rules/{}/executions", redirecting.body["id"].as_str().unwrap());
    let runs =
        eventually(&api, &path, |b| items(b).first().is_some_and(|e| e["actions"][0]["error"].is_string())).await;
    let error = items(&runs)[0]["actions"][0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("redirects are not followed"), "{error}");
}

/// The operator sets a tenant's action rate; actions over it are delayed, never dropped:
/// at most the burst plus the rate go through in the first second, and all arrive.
pub async fn rate_limits_delay_actions(ctx: &Ctx, tenant: &str) {
    let api = ctx.new_tenant(tenant).await;
    assert_eq!(api.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "sales"})).await.status, 201);
    let path = format!("/api/v1/operations/tenants/{tenant}/limits");
    let default = ctx.admin().get(&path).await;
    assert_eq!((default.status, default.body["source"].as_str()), (200, Some("default")), "{}", default.body);
    assert_eq!(api.get(&path).await.status, 403, "tenants do not set their own limits");
    let bad = ctx
        .admin()
        .put(&path, json!({"events": {"per_second": 10, "burst": 10}, "actions": {"per_second": 0, "burst": 1}}))
        .await;
    assert_eq!((bad.status, bad.problem_fields()), (422, vec!["actions.per_second".to_string()]), "{}", bad.body);
    assert_eq!(ctx.admin().get("/api/v1/operations/tenants/no-such-tenant/limits").await.status, 404);
    let set = ctx
        .admin()
        .put(&path, json!({"events": {"per_second": 100, "burst": 100}, "actions": {"per_second": 1, "burst": 1}}))
        .await;
    assert_eq!((set.status, set.body["source"].as_str()), (200, Some("tenant")), "{}", set.body);
    let rule = api.post("/api/v1/automation/rules", json!({"name": "each", "module_type": "sales", "trigger_id": "opportunity_created",
        "actions": [{"type": "send_notification", "parameters": {"recipient": "r@example.com", "message": "{{name}}"}}]})).await;
    assert_eq!(rule.status, 201, "{}", rule.body);
    for i in 0..4 {
        let record = api
            .post(
                "/api/v1/systems/sales/records/opportunities",
                json!({"name": format!("Deal {i}"), "value": 1, "stage": "proposal"}),
            )
            .await;
        assert_eq!(record.status, 201, "{}", record.body);
    }
    let first = eventually(&api, "/api/v1/notifications", |b| !items(b).is_empty()).await;
    let started = Instant::now();
    assert!(items(&first).len() <= 2, "burst 1 plus at most one more: {first}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let early = api.get("/api/v1/notifications").await;
    let bound = 1 + 1 + started.elapsed().as_secs() as usize;
    assert!(items(&early.body).len() <= bound, "at most {bound} by now: {}", early.body);
    let all = eventually(&api, "/api/v1/notifications", |b| items(b).len() == 4).await;
    assert_eq!(items(&all).len(), 4, "every action ran in the end");
    assert_eq!(ctx.admin().delete(&path).await.body["source"], "default", "back to the defaults");
}

/// EventBridge semantics and validation over HTTP: patterns with each category of
/// operator are tried on sample events (`.../test`), and invalid ones are refused with a
/// 422 naming the JSON path of the operator.
pub async fn eventbridge_patterns(ctx: &Ctx, tenant: &str) {
    let api = ctx.new_tenant(tenant).await;
    assert_eq!(api.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "sales"})).await.status, 201);
    let rule = |pattern: Value| {
        json!({"name": "pattern", "module_type": "sales", "trigger_id": "opportunity_created",
               "conditions": [{"type": "pattern", "value": pattern}],
               "actions": [{"type": "send_notification", "parameters": {"recipient": "r@example.com", "message": "x"}}]})
    };
    let cases = [
        (json!({"stage": {"code": ["x"]}}), json!({"stage": [{"code": "y"}, {"code": "x"}]}), true),
        (json!({"stage": {"code": ["x"], "kind": ["k"]}}), json!({"stage": [{"code": "x"}, {"kind": "k"}]}), false),
        (json!({"stage": {"code": [{"exists": false}]}}), json!({"value": 1}), true),
        (
            json!({"owner": [{"suffix": {"equals-ignore-case": "@EXAMPLE.COM"}}]}),
            json!({"owner": "ann@example.com"}),
            true,
        ),
        (json!({"owner": [{"anything-but": {"equals-ignore-case": ["ANN", "BOB"]}}]}), json!({"owner": "ann"}), false),
        (json!({"owner": [{"anything-but": {"wildcard": "*@example.com"}}]}), json!({"owner": "x@other.org"}), true),
        (json!({"owner": [{"equals-ignore-case": "ⱥnn"}]}), json!({"owner": "Ⱥnn"}), true),
        (json!({"owner": [{"cidr": "10.0.0.0/24"}]}), json!({"owner": "10.0.0.7"}), true),
        (json!({"owner": [{"cidr": "2001:db8::/32"}]}), json!({"owner": "2001:db8::1"}), true),
        (json!({"value": [300]}), json!({"value": 3e2}), true),
        (json!({"value": [{"numeric": ["=", 3]}]}), json!({"value": 3.0}), true),
        (json!({"value": [{"anything-but": [3]}]}), json!({"value": 3.0}), false),
        (json!({"owner": [null]}), json!({"owner": null}), true),
        (json!({"owner": [""]}), json!({"owner": null}), false),
        (
            json!({"source": ["platform.sales"], "detail-type": ["opportunity_created"], "detail": {"value": [{"numeric": [">", 1]}]}}),
            json!({"value": 2}),
            true,
        ),
        (json!({"source": [{"prefix": "aws."}]}), json!({"value": 2}), false),
    ];
    for (pattern, data, expected) in cases {
        let created = api.post("/api/v1/automation/rules", rule(pattern.clone())).await;
        assert_eq!(created.status, 201, "{pattern}: {}", created.body);
        let id = created.body["id"].as_str().unwrap().to_string();
        let tried = api.post(&format!("/api/v1/automation/rules/{id}/test"), json!({"data": data})).await;
        assert_eq!(tried.status, 200, "{}", tried.body);
        assert_eq!(tried.body["matched"], expected, "{pattern} on {data}");
        assert_eq!(api.delete(&format!("/api/v1/automation/rules/{id}")).await.status, 204);
    }
    let refused = [
        (json!({"stage": [{"prefx": "clo"}]}), "conditions[0].value.stage[0].prefx"),
        (json!({"owner": [{"cidr": "not-an-address"}]}), "conditions[0].value.owner[0].cidr"),
        (json!({"owner": [{"wildcard": "a**b"}]}), "conditions[0].value.owner[0].wildcard"),
        (json!({"value": [{"numeric": [">", "ten"]}]}), "conditions[0].value.value[0].numeric[1]"),
        (json!({"owner": [{"anything-but": []}]}), "conditions[0].value.owner[0].anything-but"),
        (json!({"owner": []}), "conditions[0].value.owner"),
        (json!({"owner": [{"exists": "yes"}]}), "conditions[0].value.owner[0].exists"),
        (json!({"owner": "ann"}), "conditions[0].value.owner"),
        (json!({"shoe_size": [42]}), "conditions[0].value.shoe_size"),
    ];
    for (pattern, path) in refused {
        let answer = api.post("/api/v1/automation/rules", rule(pattern.clone())).await;
        assert_eq!(
            (answer.status, answer.problem_fields()),
            (422, vec![path.to_string()]),
            "{pattern}: {}",
            answer.body
        );
    }
    let condition = json!({"name": "c", "module_type": "sales", "trigger_id": "opportunity_created",
        "conditions": [{"type": "numeric", "field": "value", "value": [">", 5, "<", 1]}],
        "actions": [{"type": "send_notification", "parameters": {"recipient": "r@example.com", "message": "x"}}]});
    let answer = api.post("/api/v1/automation/rules", condition).await;
    assert_eq!(
        (answer.status, answer.problem_fields()),
        (422, vec!["conditions[0].value".to_string()]),
        "{}",
        answer.body
    );
    assert!(items(&api.get("/api/v1/automation/rules").await.body).is_empty(), "nothing refused was stored");
}

/// Every change of a rule makes an immutable version; runs record the version they ran;
/// a rollback brings an earlier version back as a new one.
/// Rules of the `schedule` module fire on a schedule written as EventBridge Scheduler writes it.
pub async fn scheduled_rules(ctx: &Ctx, tenant: &str) {
    let api = ctx.new_tenant(tenant).await;
    assert_eq!(api.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "sales"})).await.status, 201);
    let triggers = api.get("/api/v1/automation/triggers").await;
    assert!(
        items_or_list(&triggers.body).iter().any(|t| t["module_type"] == "schedule" && t["trigger_id"] == "scheduled"),
        "{}",
        triggers.body
    );
    let rule = |schedule: Value| {
        let mut rule = json!({"name": "Daily digest", "module_type": "schedule", "trigger_id": "scheduled",
            "actions": [{"type": "create_task", "parameters": {"title": "Digest {{scheduled_time}}"}}]});
        if !schedule.is_null() {
            rule["schedule"] = schedule;
        }
        rule
    };
    for (body, field) in [
        (rule(Value::Null), "schedule"),
        (rule(json!("cron(0 9 * * * *)")), "schedule"),
        (rule(json!("rate(30 seconds)")), "schedule"),
        (rule(json!("every day")), "schedule"),
        (
            json!({"name": "x", "module_type": "schedule", "trigger_id": "hourly", "schedule": "rate(1 hour)", "actions": [{"type": "create_task", "parameters": {"title": "t"}}]}),
            "trigger_id",
        ),
    ] {
        let refused = api.post("/api/v1/automation/rules", body.clone()).await;
        assert_eq!(refused.status, 422, "{body}: {}", refused.body);
        assert_eq!(refused.problem_fields(), [field], "{body}");
    }
    let mut on_a_record = seed_rule();
    on_a_record["schedule"] = json!("rate(1 day)");
    let refused = api.post("/api/v1/automation/rules", on_a_record).await;
    assert_eq!((refused.status, refused.problem_fields()), (422, vec!["schedule".to_string()]), "{}", refused.body);
    let created = api.post("/api/v1/automation/rules", rule(json!("cron(0 9 ? * MON-FRI *)"))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["schedule"], "cron(0 9 ? * MON-FRI *)", "kept as written");
}

fn items_or_list(body: &Value) -> Vec<Value> {
    body.as_array().cloned().or_else(|| body["items"].as_array().cloned()).unwrap_or_default()
}

/// `runs`: whether this server runs the automation pipeline (the run records its version).
pub async fn rule_versions(ctx: &Ctx, tenant: &str, runs: bool) {
    let api = ctx.new_tenant(tenant).await;
    assert_eq!(api.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "sales"})).await.status, 201);
    let mut rule = seed_rule();
    let created = api.post("/api/v1/automation/rules", rule.clone()).await;
    assert_eq!((created.status, created.body["version"].as_u64()), (201, Some(1)), "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    rule["name"] = json!("Second");
    rule["conditions"] = json!([{"type": "value_threshold", "value": 50000}]);
    let second = api.put(&format!("/api/v1/automation/rules/{id}"), rule.clone()).await;
    assert_eq!((second.status, second.body["version"].as_u64()), (200, Some(2)), "{}", second.body);
    let third = api.put(&format!("/api/v1/automation/rules/{id}/toggle?is_active=false"), json!({})).await;
    assert_eq!(third.body["version"], 3, "{}", third.body);
    let versions = api.get(&format!("/api/v1/automation/rules/{id}/versions")).await;
    let listed: Vec<u64> = items(&versions.body).iter().map(|v| v["version"].as_u64().unwrap()).collect();
    assert_eq!(listed, [3, 2, 1], "newest first");
    let first = api.get(&format!("/api/v1/automation/rules/{id}/versions/1")).await;
    assert_eq!((first.status, first.body["name"].as_str()), (200, Some("High Value Deal Alert")), "{}", first.body);
    assert_eq!(api.get(&format!("/api/v1/automation/rules/{id}/versions/9")).await.status, 404);
    // Not a number: a problem+json 404 (the client asserts the content type), never a text 400.
    assert_eq!(api.get(&format!("/api/v1/automation/rules/{id}/versions/-1")).await.status, 404);
    let back = api.post(&format!("/api/v1/automation/rules/{id}/rollback"), json!({"version": 1})).await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!((back.body["version"].as_u64(), back.body["name"].as_str()), (Some(4), Some("High Value Deal Alert")));
    assert_eq!(back.body["is_active"], true, "version 1 was active");
    assert_eq!(back.body["conditions"][0]["value"], 10000);
    assert_eq!(api.post(&format!("/api/v1/automation/rules/{id}/rollback"), json!({"version": 42})).await.status, 404);
    let other = ctx.new_tenant(&format!("{tenant}-other")).await;
    assert_eq!(
        other.get(&format!("/api/v1/automation/rules/{id}/versions")).await.status,
        404,
        "another tenant's rule"
    );
    if !runs {
        return;
    }
    let record = api
        .post(
            "/api/v1/systems/sales/records/opportunities",
            json!({"name": "Versioned", "value": 20000, "stage": "proposal"}),
        )
        .await;
    assert_eq!(record.status, 201, "{}", record.body);
    let runs = eventually(&api, "/api/v1/automation/executions", |b| !items(b).is_empty()).await;
    assert_eq!(items(&runs)[0]["rule_version"], 4, "the run records the version it ran");
}

/// A native S3 event as EventBridge delivers it, from `account`.
pub fn s3_object_created(id: &str, account: &str, bucket: &str, key: &str) -> Value {
    json!({"version": "0", "id": id, "source": "aws.s3", "detail-type": "Object Created", "account": account,
        "time": "2026-11-22T10:00:00Z", "region": "eu-west-1", "resources": [format!("arn:aws:s3:::{bucket}")],
        "detail": {"version": "0", "bucket": {"name": bucket}, "object": {"key": key, "size": 1024}, "reason": "PutObject"}})
}

/// Events of other AWS services run a tenant's `aws` rules once the tenant proves the
/// account; an account is one tenant's; unmapped events are dropped and counted.
pub async fn native_aws_sources(ctx: &Ctx, tenant: &str, other: &str) {
    let api = ctx.new_tenant(tenant).await;
    let account = "210987654321";
    let registration = json!({"account": account, "source": "aws.s3", "detail_type": "Object Created",
        "pattern": {"detail": {"bucket": {"name": ["invoices"]}}}});
    for (bad, field) in [
        (json!({"account": "12", "source": "aws.s3", "detail_type": "Object Created"}), "account"),
        (json!({"account": account, "source": "platform.sales", "detail_type": "x"}), "source"),
        (
            json!({"account": account, "source": "aws.s3", "detail_type": "Object Created", "pattern": {"detail": {"bucket": {"name": "invoices"}}}}),
            "pattern.detail.bucket.name",
        ),
    ] {
        let refused = api.post("/api/v1/automation/sources", bad.clone()).await;
        assert_eq!(refused.status, 422, "{bad}: {}", refused.body);
        assert_eq!(refused.problem_fields(), [field], "{bad}");
    }
    let registered = api.post("/api/v1/automation/sources", registration.clone()).await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    assert_eq!(registered.body["status"], "pending");
    assert_eq!(registered.body["trigger_id"], "aws.s3:Object Created");
    let detail: Value = serde_json::from_str(registered.body["challenge"]["Detail"].as_str().unwrap()).unwrap();
    let token = detail["challenge"].as_str().unwrap().to_string();
    let triggers = api.get("/api/v1/automation/triggers?module_type=aws").await;
    assert!(triggers.body.to_string().contains("aws.s3:Object Created"), "{}", triggers.body);

    let unregistered = json!({"name": "x", "module_type": "aws", "trigger_id": "aws.ec2:State Change", "actions": [{"type": "create_task", "parameters": {"title": "t"}}]});
    let refused = api.post("/api/v1/automation/rules", unregistered).await;
    assert_eq!((refused.status, refused.problem_fields()), (422, vec!["trigger_id".to_string()]), "{}", refused.body);
    let rule = api
        .post(
            "/api/v1/automation/rules",
            json!({"name": "PDF invoices", "module_type": "aws", "trigger_id": "aws.s3:Object Created",
            "conditions": [{"type": "pattern", "value": {"source": ["aws.s3"], "account": [account], "resources": [{"prefix": "arn:aws:s3:::"}],
                "detail": {"object": {"key": [{"suffix": ".pdf"}]}}}}],
            "actions": [{"type": "create_task", "parameters": {"title": "File the invoice"}}]}),
        )
        .await;
    assert_eq!(rule.status, 201, "{}", rule.body);

    // Before the account is proven its events are nobody's: dropped and counted.
    let admin = ctx.admin();
    let ingest = |event: Value| {
        let admin = admin.clone();
        async move {
            let answer = admin.post("/api/v1/operations/aws-events", event).await;
            assert_eq!(answer.status, 202, "{}", answer.body);
            answer.body["runs"].as_u64().unwrap()
        }
    };
    assert_eq!(ingest(s3_object_created("e-0", account, "invoices", "a.pdf")).await, 0);
    let unmapped = admin.get("/api/v1/operations/unmapped-events").await;
    let counted =
        unmapped.body.as_array().unwrap().iter().find(|u| u["account"] == account).cloned().unwrap_or_default();
    assert_eq!(counted["count"], 1, "{}", unmapped.body);
    assert_eq!(api.get("/api/v1/operations/unmapped-events").await.status, 403, "operators only");

    // The challenge, put from another account, proves nothing; from the account, it does.
    let challenge = |from: &str| json!({"id": format!("c-{from}"), "source": "account.verification", "detail-type": "Platform Account Verification", "account": from, "detail": {"challenge": token}});
    ingest(challenge("999999999999")).await;
    assert_eq!(api.get("/api/v1/automation/sources").await.body["items"][0]["status"], "pending");
    ingest(challenge(account)).await;
    assert_eq!(api.get("/api/v1/automation/sources").await.body["items"][0]["status"], "verified");

    assert_eq!(ingest(s3_object_created("e-1", account, "invoices", "2026/11/a.pdf")).await, 1, "the rule ran");
    assert_eq!(
        ingest(s3_object_created("e-1", account, "invoices", "2026/11/a.pdf")).await,
        1,
        "a redelivery is the same run"
    );
    assert_eq!(ingest(s3_object_created("e-2", account, "invoices", "notes.txt")).await, 0, "the rule's pattern");
    assert_eq!(ingest(s3_object_created("e-3", account, "photos", "b.pdf")).await, 0, "the source's pre-filter");
    let runs = api.get("/api/v1/automation/executions").await;
    assert_eq!(items(&runs.body).len(), 1, "{}", runs.body);
    assert_eq!(items(&runs.body)[0]["event"]["module_type"], "aws");
    assert_eq!(items(&runs.body)[0]["event"]["data"]["object"]["key"], "2026/11/a.pdf");

    // Nobody else can claim the account, nor see the runs.
    let intruder = ctx.new_tenant(other).await;
    let claimed = intruder.post("/api/v1/automation/sources", registration).await;
    assert_eq!((claimed.status, claimed.problem_fields()), (422, vec!["account".to_string()]), "{}", claimed.body);
    assert!(items(&intruder.get("/api/v1/automation/executions").await.body).is_empty());
    assert_eq!(
        ingest(s3_object_created("e-4", "333333333333", "invoices", "c.pdf")).await,
        0,
        "an account of no tenant"
    );
}

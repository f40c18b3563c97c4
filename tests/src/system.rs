//! The system service's scenarios: settings (tenant and platform), feature flags with
//! their evaluation and OFREP, and rules gated by a flag.

use serde_json::{json, Value};

use crate::automation::eventually;
use crate::Ctx;

fn items(body: &Value) -> Vec<Value> {
    body["items"].as_array().cloned().unwrap_or_default()
}

fn keys_of(body: &Value) -> Vec<String> {
    items(body).iter().map(|i| i["key"].as_str().unwrap().to_string()).collect()
}

/// Settings: created, schema-checked, versioned, shared with the configuration API,
/// deleted and restored; platform defaults that tenants read where public.
pub async fn settings(ctx: &Ctx, tenant: &str) {
    let api = ctx.new_tenant(tenant).await;
    let admin = ctx.admin();
    let theme = json!({"key": "ui.theme", "value": {"mode": "dark"}, "category": "ui", "description": "Colours",
        "schema": {"type": "object", "properties": {"mode": {"enum": ["dark", "light"]}}, "required": ["mode"]}});
    let created = api.post("/api/v1/settings", theme.clone()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!((created.header("etag"), created.body["scope"].as_str()), (Some("\"1\""), Some("tenant")));
    assert_eq!(api.post("/api/v1/settings", theme).await.status, 409, "a key is created once");

    // One storage: the same document through the configuration API, checked by the same schema.
    let as_config = api.get(&format!("/api/v1/config/tenants/{tenant}/configs/ui.theme")).await;
    assert_eq!(as_config.body["value"], json!({"mode": "dark"}), "{}", as_config.body);
    let bad_via_config =
        api.put(&format!("/api/v1/config/tenants/{tenant}/configs/ui.theme"), json!({"value": {"mode": "neon"}})).await;
    assert_eq!((bad_via_config.status, bad_via_config.problem_fields()), (422, vec!["value/mode".to_string()]));
    let bad = api.put("/api/v1/settings/ui.theme", json!({"value": {}})).await;
    assert_eq!((bad.status, bad.problem_fields()), (422, vec!["value/mode".to_string()]));

    let second = api
        .send("PUT", "/api/v1/settings/ui.theme", Some(json!({"value": {"mode": "light"}})), &[("if-match", "\"1\"")])
        .await;
    assert_eq!((second.status, second.body["version"].as_u64()), (200, Some(2)), "{}", second.body);
    assert_eq!(second.body["description"], "Colours", "metadata carries over");
    let stale = api
        .send("PUT", "/api/v1/settings/ui.theme", Some(json!({"value": {"mode": "dark"}})), &[("if-match", "\"1\"")])
        .await;
    assert_eq!(stale.status, 412);

    assert_eq!(
        api.post("/api/v1/settings", json!({"key": "mail.sender", "value": "a@b.co", "category": "mail"})).await.status,
        201
    );
    assert_eq!(keys_of(&api.get("/api/v1/settings?category=ui").await.body), ["ui.theme"]);
    assert!(keys_of(&api.get("/api/v1/settings").await.body).contains(&"mail.sender".to_string()));
    let page = api.get("/api/v1/settings?limit=1").await;
    assert_eq!(items(&page.body).len(), 1);
    assert!(page.body["next_cursor"].is_string(), "lists paginate");

    for (body, field) in [
        (json!({"key": "bad key", "value": 1}), "key"),
        (json!({"key": "feature-flags", "value": 1}), "key"),
        (json!({"key": "x", "value": 1, "public": true}), "public"),
        (json!({"key": "y", "value": 1, "schema": {"type": "nonsense"}}), "schema"),
        (json!({"value": 1}), "key"),
    ] {
        let refused = api.post("/api/v1/settings", body.clone()).await;
        assert_eq!((refused.status, refused.problem_fields()), (422, vec![field.to_string()]), "{body}");
    }
    assert_eq!(api.get("/api/v1/settings?scope=galaxy").await.problem_fields(), ["scope"]);

    // Deleting keeps the history; writing again continues it; rollback restores.
    assert_eq!(api.delete("/api/v1/settings/ui.theme").await.status, 204);
    assert_eq!(api.get("/api/v1/settings/ui.theme").await.status, 404);
    assert_eq!(api.delete("/api/v1/settings/ui.theme").await.status, 404);
    let history = api.get("/api/v1/settings/ui.theme/versions").await;
    assert_eq!(history.body["items"][0]["cause"]["kind"], "delete", "{}", history.body);
    let again = api.put("/api/v1/settings/ui.theme", json!({"value": {"mode": "light"}})).await;
    assert_eq!((again.status, again.body["version"].as_u64()), (200, Some(4)), "{}", again.body);
    let back = api.post("/api/v1/settings/ui.theme/rollback", json!({"version": 1})).await;
    assert_eq!((back.body["value"]["mode"].as_str(), back.body["version"].as_u64()), (Some("dark"), Some(5)));

    // Platform settings: the administrator's; tenants read the public ones as defaults.
    let support = admin
        .post(
            "/api/v1/settings?scope=platform",
            json!({"key": "support.email", "value": "help@platform.example", "public": true}),
        )
        .await;
    assert_eq!((support.status, support.body["scope"].as_str()), (201, Some("platform")), "{}", support.body);
    assert_eq!(
        admin.post("/api/v1/settings?scope=platform", json!({"key": "internal.cost", "value": 3})).await.status,
        201
    );
    assert_eq!(api.post("/api/v1/settings?scope=platform", json!({"key": "z", "value": 1})).await.status, 403);
    let default = api.get("/api/v1/settings/support.email").await;
    assert_eq!((default.status, default.body["scope"].as_str()), (200, Some("platform")), "{}", default.body);
    assert_eq!(api.get("/api/v1/settings/internal.cost").await.status, 404, "private platform settings stay hidden");
    let visible = keys_of(&api.get("/api/v1/settings?scope=platform").await.body);
    assert!(
        visible.contains(&"support.email".to_string()) && !visible.contains(&"internal.cost".to_string()),
        "{visible:?}"
    );
    assert_eq!(
        api.post("/api/v1/settings", json!({"key": "support.email", "value": "us@tenant.example"})).await.status,
        201
    );
    let own = api.get("/api/v1/settings/support.email").await;
    assert_eq!((own.body["scope"].as_str(), own.body["value"].as_str()), (Some("tenant"), Some("us@tenant.example")));
    assert_eq!(api.delete("/api/v1/settings/support.email").await.status, 204);
    assert_eq!(api.get("/api/v1/settings/support.email").await.body["scope"], "platform", "the default answers again");

    // Every change is audited: the tenant's in its trail, the platform's in the platform trail.
    let trail = api.get("/api/v1/settings/audit-logs?action=config.*&limit=200").await;
    let actions: Vec<String> =
        items(&trail.body).iter().filter_map(|e| e["action"].as_str().map(str::to_string)).collect();
    assert!(
        actions.iter().any(|a| a == "config.delete") && actions.iter().any(|a| a == "config.rollback"),
        "{actions:?}"
    );
    let platform_trail = admin.get("/api/v1/platform/audit-logs?target=config:t:support.email").await;
    assert_eq!(platform_trail.status, 200, "{}", platform_trail.body);
    assert_eq!(platform_trail.body["items"][0]["action"], "config.write");
    assert_eq!(api.get("/api/v1/platform/audit-logs").await.status, 403);
}

/// Flags: definitions checked, evaluation for the caller, OFREP (single, bulk with ETag,
/// errors), sticky rollouts, the kill switch, platform flags with per-tenant overrides.
pub async fn feature_flags(ctx: &Ctx, tenant: &str) {
    let api = ctx.new_tenant(tenant).await;
    let admin = ctx.admin();
    let flags = "/api/v1/settings/feature-flags";
    let rollout = api.post(flags, json!({"key": "new-checkout", "rollout": {"percentage": 50}})).await;
    assert_eq!(rollout.status, 201, "{}", rollout.body);
    assert_eq!(rollout.body["variants"], json!({"on": true, "off": false}));
    let beta = api
        .post(
            flags,
            json!({"key": "beta", "default_variant": "off", "targets": [
            {"variant": "on", "roles": ["owner"]}, {"variant": "on", "email_domains": ["partner.example"]}]}),
        )
        .await;
    assert_eq!(beta.status, 201, "{}", beta.body);
    let colours = api
        .post(flags, json!({"key": "banner", "kind": "variant", "variants": {"red": "#f00", "blue": "#00f"},
            "off_variant": "red", "default_variant": "red", "rollout": {"weights": [{"variant": "red", "weight": 1}, {"variant": "blue", "weight": 1}]}}))
        .await;
    assert_eq!(colours.status, 201, "{}", colours.body);
    for (body, field) in [
        (json!({"key": "v", "kind": "variant", "off_variant": "a", "default_variant": "a"}), "variants"),
        (json!({"key": "t", "targets": [{"variant": "maybe", "user_ids": ["u"]}]}), "targets[0].variant"),
        (json!({"key": "p", "rollout": {"percentage": 120}}), "rollout.percentage"),
        (json!({"key": "o", "tenants": {"x": "on"}}), "tenants"),
        (json!({"key": "evaluate"}), "key"),
        (json!({"key": "u", "colour": 1}), "colour"),
    ] {
        let refused = api.post(flags, body.clone()).await;
        assert_eq!(
            (refused.status, refused.problem_fields()),
            (422, vec![field.to_string()]),
            "{body}: {}",
            refused.body
        );
    }

    let mine = api.get(&format!("{flags}/evaluate")).await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    let by_key = |body: &Value, key: &str| items(body).into_iter().find(|e| e["key"] == key).unwrap();
    let beta_for_owner = by_key(&mine.body, "beta");
    assert_eq!(
        (beta_for_owner["value"].clone(), beta_for_owner["reason"].as_str()),
        (json!(true), Some("TARGETING_MATCH"))
    );
    assert_eq!(by_key(&mine.body, "new-checkout")["reason"], "SPLIT");

    // OFREP: a context with a targeting key describes that someone.
    let single = async |key: &str, body: Value| api.post(&format!("/ofrep/v1/evaluate/flags/{key}"), body).await;
    let stranger = single("beta", json!({"context": {"targetingKey": "someone"}})).await;
    assert_eq!(
        (stranger.status, stranger.body["value"].clone(), stranger.body["reason"].as_str()),
        (200, json!(false), Some("DEFAULT")),
        "{}",
        stranger.body
    );
    let partner = single("beta", json!({"context": {"targetingKey": "p1", "email": "ann@Partner.example"}})).await;
    assert_eq!((partner.body["value"].clone(), partner.body["variant"].as_str()), (json!(true), Some("on")));
    assert_eq!(partner.body["key"], "beta");
    let missing = single("nope", json!({"context": {}})).await;
    assert_eq!(
        (missing.status, missing.body["errorCode"].as_str(), missing.body["key"].as_str()),
        (404, Some("FLAG_NOT_FOUND"), Some("nope"))
    );
    let invalid = single("beta", json!({"context": "me"})).await;
    assert_eq!((invalid.status, invalid.body["errorCode"].as_str()), (400, Some("INVALID_CONTEXT")));
    let unparsable =
        api.send("POST", "/ofrep/v1/evaluate/flags/beta", None, &[("content-type", "application/json")]).await;
    assert_eq!(unparsable.status, 200, "an empty body is the caller's context");
    assert_eq!(api.anonymous().post("/ofrep/v1/evaluate/flags/beta", json!({})).await.status, 401);

    // Sticky: the same user always gets the same answer; users spread over both.
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..40 {
        let ctx_body = json!({"context": {"targetingKey": format!("user-{i}")}});
        let first = single("new-checkout", ctx_body.clone()).await.body["value"].clone();
        assert_eq!(single("new-checkout", ctx_body).await.body["value"], first);
        seen.insert(first.to_string());
    }
    assert_eq!(seen.len(), 2, "a 50 % rollout serves both values over 40 users");

    // Bulk, with an ETag the client can poll with.
    let bulk = api.post("/ofrep/v1/evaluate/flags", json!({"context": {"targetingKey": "user-1"}})).await;
    assert_eq!(bulk.status, 200, "{}", bulk.body);
    assert_eq!(bulk.body["flags"].as_array().unwrap().len(), 3);
    let etag = bulk.header("etag").unwrap().to_string();
    let unchanged = api
        .send(
            "POST",
            "/ofrep/v1/evaluate/flags",
            Some(json!({"context": {"targetingKey": "user-1"}})),
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(unchanged.status, 304);
    assert_eq!(api.get("/ofrep/v1/configuration").await.body["capabilities"]["caching"]["ttl"], 5000);

    // The kill switch, with the write's version check.
    let killed = api
        .send(
            "PUT",
            &format!("{flags}/new-checkout"),
            Some(json!({"enabled": false, "rollout": {"percentage": 100}})),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!((killed.status, killed.body["version"].as_u64()), (200, Some(2)), "{}", killed.body);
    let off = single("new-checkout", json!({"context": {"targetingKey": "user-1"}})).await;
    assert_eq!((off.body["value"].clone(), off.body["reason"].as_str()), (json!(false), Some("DISABLED")));

    // An API key works as OpenFeature providers send it.
    let key = api.post("/api/v1/users/api-keys", json!({"name": "flags"})).await;
    assert_eq!(key.status, 201, "{}", key.body);
    let secret = key.body["secret"].as_str().unwrap().to_string();
    let by_key =
        ctx.api.send("POST", "/ofrep/v1/evaluate/flags/beta", Some(json!({})), &[("x-api-key", &secret)]).await;
    assert_eq!((by_key.status, by_key.body["value"].clone()), (200, json!(true)), "{}", by_key.body);

    // Platform flags: per-tenant overrides; a disabled platform flag beats any tenant's.
    let platform = admin
        .post(
            &format!("{flags}?scope=platform"),
            json!({"key": "platform-beta", "default_variant": "off", "tenants": {tenant: "on"}}),
        )
        .await;
    assert_eq!(platform.status, 201, "{}", platform.body);
    assert_eq!(api.post(&format!("{flags}?scope=platform"), json!({"key": "mine"})).await.status, 403);
    let pb = single("platform-beta", json!({})).await;
    assert_eq!(
        (pb.body["value"].clone(), pb.body["metadata"]["scope"].as_str()),
        (json!(true), Some("platform")),
        "{}",
        pb.body
    );
    assert_eq!(api.post(flags, json!({"key": "platform-beta", "default_variant": "off"})).await.status, 201);
    let overridden = single("platform-beta", json!({})).await;
    assert_eq!(
        (overridden.body["value"].clone(), overridden.body["metadata"]["scope"].as_str()),
        (json!(false), Some("tenant"))
    );
    let kill = admin.put(&format!("{flags}/platform-beta?scope=platform"), json!({"enabled": false})).await;
    assert_eq!(kill.status, 200, "{}", kill.body);
    let dead = single("platform-beta", json!({})).await;
    assert_eq!(
        (dead.body["reason"].as_str(), dead.body["metadata"]["scope"].as_str()),
        (Some("DISABLED"), Some("platform"))
    );

    // Versions and deletion.
    assert_eq!(items(&api.get(&format!("{flags}/new-checkout/versions")).await.body).len(), 2);
    assert_eq!(api.delete(&format!("{flags}/banner")).await.status, 204);
    assert_eq!(api.get(&format!("{flags}/banner")).await.status, 404);
    let trail = api.get("/api/v1/settings/audit-logs?action=flag.*").await;
    assert!(items(&trail.body).len() >= 5, "{}", trail.body);
}

/// A rule with a `feature_enabled` condition runs only while the flag is on.
pub async fn flag_gated_rules(ctx: &Ctx, tenant: &str) {
    let api = ctx.new_tenant(tenant).await;
    assert_eq!(api.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "sales"})).await.status, 201);
    let rule = api
        .post(
            "/api/v1/automation/rules",
            json!({"name": "Gated", "module_type": "sales", "trigger_id": "opportunity_created",
            "conditions": [{"type": "feature_enabled", "value": "auto-tasks"}],
            "actions": [{"type": "create_task", "parameters": {"title": "Follow up"}}]}),
        )
        .await;
    assert_eq!(rule.status, 201, "{}", rule.body);
    let bad = api
        .post("/api/v1/automation/rules", json!({"name": "Bad", "module_type": "sales", "trigger_id": "opportunity_created",
            "conditions": [{"type": "feature_enabled", "value": 7}], "actions": [{"type": "create_task", "parameters": {"title": "x"}}]}))
        .await;
    assert_eq!((bad.status, bad.problem_fields()), (422, vec!["conditions[0].value".to_string()]));
    let runs = format!("/api/v1/automation/rules/{}/executions", rule.body["id"].as_str().unwrap());
    let deal = json!({"name": "Deal", "value": 10, "stage": "proposal"});
    assert_eq!(api.post("/api/v1/systems/sales/records/opportunities", deal.clone()).await.status, 201);
    // A second rule without the gate shows when the first event has been evaluated.
    let probe = api
        .post(
            "/api/v1/automation/rules",
            json!({"name": "Probe", "module_type": "sales", "trigger_id": "opportunity_created",
            "actions": [{"type": "create_task", "parameters": {"title": "Probe"}}]}),
        )
        .await;
    assert_eq!(probe.status, 201);
    let probe_runs = format!("/api/v1/automation/rules/{}/executions", probe.body["id"].as_str().unwrap());
    assert_eq!(api.post("/api/v1/systems/sales/records/opportunities", deal.clone()).await.status, 201);
    eventually(&api, &probe_runs, |b| items(b).len() == 1).await;
    assert!(items(&api.get(&runs).await.body).is_empty(), "the flag does not exist: the gated rule did not run");
    assert_eq!(api.post("/api/v1/settings/feature-flags", json!({"key": "auto-tasks"})).await.status, 201);
    assert_eq!(api.post("/api/v1/systems/sales/records/opportunities", deal).await.status, 201);
    eventually(&api, &runs, |b| items(b).len() == 1).await;
}

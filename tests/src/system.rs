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
    assert_eq!(
        admin
            .put(
                &format!("{flags}/platform-beta?scope=platform"),
                json!({"default_variant": "off", "tenants": {tenant: "on", "someone-else": "off"}})
            )
            .await
            .status,
        200
    );
    let seen = api.get(&format!("{flags}/platform-beta?scope=platform")).await;
    assert_eq!(seen.body["tenants"], json!({tenant: "on"}), "other tenants' overrides stay hidden: {}", seen.body);
    assert!(!api.get(&format!("{flags}?scope=platform")).await.body.to_string().contains("someone-else"));
    assert_eq!(api.get(&format!("{flags}/platform-beta/versions?scope=platform")).await.status, 403);
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
    // A second rule without the gate shows when the event has been evaluated (made before
    // the event, so the event cannot be evaluated before it exists).
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

/// Notes, calls, reviews and tasks: validation, subjects, visibility, moderation,
/// summaries, the task workflow and its filters.
pub async fn tools(ctx: &Ctx, tenant: &str) {
    let owner = ctx.new_tenant(tenant).await;
    assert_eq!(owner.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "crm"})).await.status, 201);
    let contact = owner
        .post(
            "/api/v1/systems/crm/records/contacts",
            json!({"first_name": "Bo", "last_name": "Li", "email": "bo@example.com"}),
        )
        .await;
    assert_eq!(contact.status, 201, "{}", contact.body);
    let record_id = contact.body["record_id"].as_str().unwrap().to_string();
    let subject = json!({"system_id": "crm", "entity": "contacts", "record_id": record_id});
    let member_email = format!("mia@{tenant}.example.com");
    let member_user = owner
        .post("/api/v1/users", json!({"email": member_email, "password": "member password 123", "roles": ["member"]}))
        .await;
    assert_eq!(member_user.status, 201, "{}", member_user.body);
    let member_id = member_user.body["user_id"].as_str().unwrap().to_string();
    let member = ctx.sign_in(tenant, &member_email, "member password 123").await;

    // Notes: visibility is enforced on every read.
    let private =
        owner.post("/api/v1/tools/notes", json!({"title": "Mine", "body": "**secret**", "subject": subject})).await;
    assert_eq!(private.status, 201, "{}", private.body);
    let shared =
        owner.post("/api/v1/tools/notes", json!({"title": "All", "visibility": "tenant", "pinned": true})).await;
    assert_eq!(shared.status, 201);
    let team = owner.post("/api/v1/users/teams", json!({"name": "Sales", "members": [member_id]})).await;
    assert_eq!(team.status, 201, "{}", team.body);
    let team_note = owner
        .post("/api/v1/tools/notes", json!({"title": "Team", "visibility": "team", "team_id": team.body["team_id"]}))
        .await;
    assert_eq!(team_note.status, 201, "{}", team_note.body);
    let seen: Vec<String> = items(&member.get("/api/v1/tools/notes").await.body)
        .iter()
        .map(|n| n["title"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen, ["Team", "All"], "the member sees tenant and team notes, not private ones");
    let private_path = format!("/api/v1/tools/notes/{}", private.body["id"].as_str().unwrap());
    assert_eq!(member.get(&private_path).await.status, 404);
    assert_eq!(member.put(&private_path, json!({"title": "x"})).await.status, 404);
    let shared_path = format!("/api/v1/tools/notes/{}", shared.body["id"].as_str().unwrap());
    assert_eq!(member.put(&shared_path, json!({"title": "x"})).await.status, 403, "only the owner edits");
    assert_eq!(items(&owner.get(&format!("/api/v1/tools/notes?record_id={record_id}")).await.body).len(), 1);
    assert_eq!(items(&owner.get("/api/v1/tools/notes?pinned=true").await.body).len(), 1);
    for (body, field) in [
        (json!({"body": "no title"}), "title"),
        (json!({"title": "t", "visibility": "team"}), "team_id"),
        (json!({"title": "t", "body": "x".repeat(70_000)}), "body"),
        (json!({"title": "t", "subject": {"system_id": "crm", "entity": "contacts", "record_id": "nope"}}), "subject"),
        (json!({"title": "t", "visibility": "team", "team_id": "no-such-team"}), "team_id"),
    ] {
        let refused = owner.post("/api/v1/tools/notes", body).await;
        assert_eq!((refused.status, refused.problem_fields()), (422, vec![field.to_string()]), "{}", refused.body);
    }
    assert_eq!(owner.delete(&private_path).await.status, 204);
    assert_eq!(owner.get(&private_path).await.status, 404);

    // Calls: E.164 numbers, outcomes, filters.
    let call = owner
        .post(
            "/api/v1/tools/calls",
            json!({"direction": "outbound", "phone_number": "+358401234567", "outcome": "answered",
            "duration_seconds": 300, "summary": "Discussed renewal", "subject": subject}),
        )
        .await;
    assert_eq!(call.status, 201, "{}", call.body);
    let bad_call = owner
        .post("/api/v1/tools/calls", json!({"direction": "outbound", "phone_number": "040 123", "outcome": "answered"}))
        .await;
    assert_eq!((bad_call.status, bad_call.problem_fields()), (422, vec!["phone_number".to_string()]));
    let bad_outcome = owner
        .post(
            "/api/v1/tools/calls",
            json!({"direction": "sideways", "phone_number": "+1202555", "outcome": "answered"}),
        )
        .await;
    assert_eq!((bad_outcome.status, bad_outcome.problem_fields()), (422, vec!["direction".to_string()]));
    assert_eq!(items(&owner.get("/api/v1/tools/calls?direction=outbound").await.body).len(), 1);
    assert!(items(&owner.get("/api/v1/tools/calls?direction=inbound").await.body).is_empty());
    assert_eq!(owner.get("/api/v1/tools/calls?outcome=maybe").await.problem_fields(), ["outcome"]);
    assert_eq!(owner.get("/api/v1/tools/calls?since=yesterday").await.problem_fields(), ["since"]);

    // Reviews: pending until a moderator publishes; the summary counts published ones.
    for rating in [5, 4, 4] {
        let written =
            member.post("/api/v1/tools/reviews", json!({"rating": rating, "title": "Good", "subject": subject})).await;
        assert_eq!((written.status, written.body["status"].as_str()), (201, Some("pending")), "{}", written.body);
        let path = format!("/api/v1/tools/reviews/{}", written.body["id"].as_str().unwrap());
        assert_eq!(member.put(&path, json!({"status": "published"})).await.status, 403, "authors do not moderate");
        assert_eq!(owner.put(&path, json!({"status": "published"})).await.body["status"], "published");
    }
    let hidden = member.post("/api/v1/tools/reviews", json!({"rating": 1, "subject": subject})).await;
    assert_eq!(hidden.status, 201);
    assert_eq!(member.post("/api/v1/tools/reviews", json!({"rating": 6})).await.problem_fields(), ["rating"]);
    let summary =
        owner.get(&format!("/api/v1/tools/reviews/summary?system_id=crm&entity=contacts&record_id={record_id}")).await;
    assert_eq!(summary.status, 200, "{}", summary.body);
    assert_eq!(summary.body["count"], 3);
    assert!((summary.body["average"].as_f64().unwrap() - 4.33).abs() < 0.001, "{}", summary.body);
    assert_eq!(summary.body["distribution"], json!({"1": 0, "2": 0, "3": 0, "4": 2, "5": 1}));
    assert_eq!(owner.get("/api/v1/tools/reviews/summary").await.status, 400);

    // Tasks: priority, assignee (a user of the tenant), the workflow, filters.
    let task = owner
        .post(
            "/api/v1/tools/tasks",
            json!({"title": "Call Bo", "priority": "high", "assignee": member_id,
            "due_date": "2020-01-01", "subject": subject}),
        )
        .await;
    assert_eq!((task.status, task.body["status"].as_str()), (201, Some("todo")), "{}", task.body);
    let task_path = format!("/api/v1/tools/tasks/{}", task.body["task_id"].as_str().unwrap());
    assert_eq!(
        owner.post("/api/v1/tools/tasks", json!({"title": "x", "assignee": "ghost"})).await.problem_fields(),
        ["assignee"]
    );
    assert_eq!(
        owner.post("/api/v1/tools/tasks", json!({"title": "x", "priority": "whenever"})).await.problem_fields(),
        ["priority"]
    );
    assert_eq!(
        owner.post("/api/v1/tools/tasks", json!({"title": "x", "due_date": "soon"})).await.problem_fields(),
        ["due_date"]
    );
    assert_eq!(
        owner.post("/api/v1/tools/tasks", json!({"title": "Later", "due_date": "2999-01-01"})).await.status,
        201
    );
    let overdue = owner.get("/api/v1/tools/tasks?overdue=true").await;
    assert_eq!(items(&overdue.body).len(), 1, "{}", overdue.body);
    assert_eq!(items(&owner.get(&format!("/api/v1/tools/tasks?assignee={member_id}")).await.body).len(), 1);
    assert_eq!(owner.get("/api/v1/tools/tasks?status=open-ish").await.problem_fields(), ["status"]);
    assert_eq!(owner.put(&task_path, json!({"status": "done"})).await.body["status"], "done");
    let skipped = owner.put(&task_path, json!({"status": "in_progress"})).await;
    assert_eq!(
        (skipped.status, skipped.problem_fields()),
        (422, vec!["status".to_string()]),
        "done tasks reopen to todo first"
    );
    assert_eq!(owner.put(&task_path, json!({"status": "todo"})).await.body["status"], "todo");
    assert!(items(&owner.get("/api/v1/tools/tasks?status=done").await.body).is_empty());
    assert_eq!(owner.delete(&task_path).await.status, 204);
    assert_eq!(owner.get(&task_path).await.status, 404);

    // Every change is in the audit trail.
    let trail = owner.get("/api/v1/settings/audit-logs?limit=200").await;
    let actions: Vec<String> =
        items(&trail.body).iter().filter_map(|e| e["action"].as_str().map(str::to_string)).collect();
    for action in
        ["note.create", "note.delete", "call.create", "review.create", "review.update", "task.create", "task.delete"]
    {
        assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
    }
}

/// The tools are automation sources: their triggers are listed and run rules.
pub async fn tool_triggers(ctx: &Ctx, tenant: &str) {
    let api = ctx.new_tenant(tenant).await;
    let triggers = api.get("/api/v1/automation/triggers?module_type=tools").await;
    let ids: Vec<&str> = triggers
        .body
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["trigger_id"].as_str()).collect())
        .unwrap_or_default();
    for id in ["task_created", "task_completed", "task_overdue", "call_logged", "review_created", "note_created"] {
        assert!(ids.contains(&id), "{id} in {}", triggers.body);
    }
    let rule = |trigger: &str, conditions: Value| {
        json!({"name": format!("On {trigger}"), "module_type": "tools", "trigger_id": trigger, "conditions": conditions,
               "actions": [{"type": "send_notification", "parameters": {"recipient": "ops@example.com", "message": format!("{trigger}")}}]})
    };
    let mut paths = Vec::new();
    for (trigger, conditions) in [
        ("review_created", json!([{"type": "less_or_equal", "field": "rating", "value": 2}])),
        ("call_logged", json!([])),
        ("note_created", json!([])),
        ("task_completed", json!([])),
        ("task_overdue", json!([])),
    ] {
        let created = api.post("/api/v1/automation/rules", rule(trigger, conditions)).await;
        assert_eq!(created.status, 201, "{trigger}: {}", created.body);
        paths.push(format!("/api/v1/automation/rules/{}/executions", created.body["id"].as_str().unwrap()));
    }
    let unknown = api.post("/api/v1/automation/rules", rule("task_exploded", json!([]))).await;
    assert_eq!((unknown.status, unknown.problem_fields()), (422, vec!["trigger_id".to_string()]));
    let bad_field = api
        .post(
            "/api/v1/automation/rules",
            rule("review_created", json!([{"type": "equals", "field": "colour", "value": 1}])),
        )
        .await;
    assert_eq!(bad_field.status, 422, "conditions are checked against the trigger's fields");

    assert_eq!(api.post("/api/v1/tools/reviews", json!({"rating": 5})).await.status, 201);
    assert_eq!(api.post("/api/v1/tools/reviews", json!({"rating": 1})).await.status, 201);
    assert_eq!(
        api.post(
            "/api/v1/tools/calls",
            json!({"direction": "inbound", "phone_number": "+12025550123", "outcome": "busy"})
        )
        .await
        .status,
        201
    );
    assert_eq!(api.post("/api/v1/tools/notes", json!({"title": "n"})).await.status, 201);
    let task = api.post("/api/v1/tools/tasks", json!({"title": "t"})).await;
    assert_eq!(task.status, 201);
    let done = api
        .put(&format!("/api/v1/tools/tasks/{}", task.body["task_id"].as_str().unwrap()), json!({"status": "done"}))
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    // Due a second from now: the overdue timer fires once it passes.
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(api.post("/api/v1/tools/tasks", json!({"title": "late", "due_date": soon})).await.status, 201);
    for path in &paths {
        let runs = eventually(&api, path, |b| !items(b).is_empty()).await;
        assert_eq!(items(&runs).len(), 1, "{path}: one run (the 5-star review does not match): {runs}");
    }
}

/// A task an automation action creates with a due date falls due like one created by
/// hand: its `task_overdue` runs the rules on it.
pub async fn automation_tasks_fall_due(ctx: &Ctx, tenant: &str) {
    let api = ctx.new_tenant(tenant).await;
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let creates = api
        .post(
            "/api/v1/automation/rules",
            json!({"name": "Follow up notes", "module_type": "tools", "trigger_id": "note_created",
                   "actions": [{"type": "create_task", "parameters": {"title": "Follow up", "due_date": soon}}]}),
        )
        .await;
    assert_eq!(creates.status, 201, "{}", creates.body);
    let overdue = api
        .post(
            "/api/v1/automation/rules",
            json!({"name": "Chase", "module_type": "tools", "trigger_id": "task_overdue",
                   "actions": [{"type": "send_notification", "parameters": {"recipient": "ops@example.com", "message": "{{title}} is late"}}]}),
        )
        .await;
    assert_eq!(overdue.status, 201, "{}", overdue.body);
    assert_eq!(api.post("/api/v1/tools/notes", json!({"title": "Call back"})).await.status, 201);
    let path = format!("/api/v1/automation/rules/{}/executions", overdue.body["id"].as_str().unwrap());
    let runs = eventually(&api, &path, |b| !items(b).is_empty()).await;
    assert_eq!(items(&runs).len(), 1, "the automation's task fell due once: {runs}");
}

/// Calendar events: time zones, attendees, recurrence expanded in range queries, and an
/// iCalendar export that calendar apps import.
pub async fn calendar(ctx: &Ctx, tenant: &str) {
    let api = ctx.new_tenant(tenant).await;
    let me = api.get("/api/v1/auth/me").await.body["user_id"].as_str().unwrap().to_string();
    let standup = api
        .post(
            "/api/v1/tools/events",
            json!({"title": "Stand-up", "start": "2026-03-23T09:00:00", "end": "2026-03-23T09:15:00",
            "time_zone": "Europe/Helsinki", "recurrence": "FREQ=WEEKLY;BYDAY=MO;COUNT=4", "location": "Room 1",
            "attendees": [{"user_id": me}, {"email": "guest@example.com", "name": "Guest"}]}),
        )
        .await;
    assert_eq!(standup.status, 201, "{}", standup.body);
    let offsite = api
        .post(
            "/api/v1/tools/events",
            json!({"title": "Offsite", "all_day": true, "start": "2026-04-01", "end": "2026-04-02"}),
        )
        .await;
    assert_eq!(offsite.status, 201, "{}", offsite.body);
    let utc = api
        .post("/api/v1/tools/events", json!({"title": "Call", "start": "2026-04-07T12:00:00Z", "end": "2026-04-07T12:30:00+00:00", "time_zone": "America/New_York"}))
        .await;
    assert_eq!(utc.body["start"], "2026-04-07T08:00:00", "an RFC 3339 time is kept as the zone's local time");
    for (body, field) in [
        (json!({"title": "x", "start": "2026-01-01T10:00:00", "end": "2026-01-01T09:00:00"}), "end"),
        (
            json!({"title": "x", "start": "2026-01-01T10:00:00", "end": "2026-01-01T11:00:00", "time_zone": "Mars/Base"}),
            "time_zone",
        ),
        (
            json!({"title": "x", "start": "2026-01-01T10:00:00", "end": "2026-01-01T11:00:00", "recurrence": "FREQ=HOURLY;BYDAY=XX"}),
            "recurrence",
        ),
        (json!({"title": "x", "start": "next week", "end": "2026-01-01T11:00:00"}), "start"),
        (
            json!({"title": "x", "start": "2026-01-01T10:00:00", "end": "2026-01-01T11:00:00", "attendees": [{"user_id": "ghost"}]}),
            "attendees[0].user_id",
        ),
        (
            json!({"title": "x", "start": "2026-01-01T10:00:00", "end": "2026-01-01T11:00:00", "attendees": [{}]}),
            "attendees[0]",
        ),
        (json!({"start": "2026-01-01T10:00:00", "end": "2026-01-01T11:00:00"}), "title"),
    ] {
        let refused = api.post("/api/v1/tools/events", body.clone()).await;
        assert_eq!(
            (refused.status, refused.problem_fields()),
            (422, vec![field.to_string()]),
            "{body}: {}",
            refused.body
        );
    }

    // A range expands recurrences, in time order, each at its local time across the DST change.
    let range = api.get("/api/v1/tools/events?from=2026-03-01&to=2026-05-01").await;
    assert_eq!(range.status, 200, "{}", range.body);
    let occurrences: Vec<(String, String)> = items(&range.body)
        .iter()
        .map(|o| (o["title"].as_str().unwrap().to_string(), o["occurrence_start"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        occurrences,
        [
            ("Stand-up".to_string(), "2026-03-23T09:00:00+02:00".to_string()),
            ("Stand-up".to_string(), "2026-03-30T09:00:00+03:00".to_string()),
            ("Offsite".to_string(), "2026-04-01T00:00:00+00:00".to_string()),
            ("Stand-up".to_string(), "2026-04-06T09:00:00+03:00".to_string()),
            ("Call".to_string(), "2026-04-07T08:00:00-04:00".to_string()),
            ("Stand-up".to_string(), "2026-04-13T09:00:00+03:00".to_string()),
        ]
    );
    assert_eq!(api.get("/api/v1/tools/events?from=2026-01-01").await.status, 400);
    assert_eq!(api.get("/api/v1/tools/events?from=2026-01-01&to=2028-01-01").await.problem_fields(), ["to"]);
    assert_eq!(
        items(&api.get("/api/v1/tools/events?limit=2").await.body).len(),
        2,
        "without a range: the events, paginated"
    );

    // The export.
    let ics = api.get("/api/v1/tools/events/export?format=ics").await;
    assert_eq!(ics.status, 200);
    assert!(ics.header("content-type").unwrap().starts_with("text/calendar"));
    let text = ics.text.clone();
    assert!(text.starts_with("BEGIN:VCALENDAR\r\n") && text.ends_with("END:VCALENDAR\r\n"), "{text}");
    assert_eq!(text.matches("BEGIN:VEVENT").count(), 3);
    assert!(text.contains("DTSTART;TZID=Europe/Helsinki:20260323T090000\r\n"), "{text}");
    assert!(text.contains("RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=4\r\n"));
    assert!(text.contains("DTSTART;VALUE=DATE:20260401\r\nDTEND;VALUE=DATE:20260403\r\n"));
    assert!(text.contains("TZID:America/New_York"));
    assert!(text.contains(&format!("ATTENDEE:mailto:{}", Ctx::owner_email(tenant))), "users by their e-mail: {text}");
    assert!(text.contains("ATTENDEE;CN=\"Guest\":mailto:guest@example.com"));
    assert_eq!(api.get("/api/v1/tools/events/export?format=pdf").await.problem_fields(), ["format"]);

    // Changes and deletion.
    let path = format!("/api/v1/tools/events/{}", standup.body["id"].as_str().unwrap());
    let moved =
        api.put(&path, json!({"recurrence": "", "start": "2026-03-24T10:00:00", "end": "2026-03-24T10:30:00"})).await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert!(moved.body.get("recurrence").is_none());
    assert_eq!(items(&api.get("/api/v1/tools/events?from=2026-03-01&to=2026-05-01").await.body).len(), 3);
    assert_eq!(api.delete(&path).await.status, 204);
    assert_eq!(api.get(&path).await.status, 404);
}

/// Relations stay whole: deleting a record applies each referring relation's rule
/// (restrict: 409 naming the referrers; cascade; set null), and tool items about it
/// lose their subject.
pub async fn relations(ctx: &Ctx, tenant: &str) {
    let api = ctx.new_tenant(tenant).await;
    assert_eq!(api.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "sales"})).await.status, 201);
    let contact = api
        .post(
            "/api/v1/systems/crm/records/contacts",
            json!({"first_name": "Bo", "last_name": "Li", "email": "bo@example.com"}),
        )
        .await;
    assert_eq!(contact.status, 201, "{}", contact.body);
    let cid = contact.body["record_id"].as_str().unwrap().to_string();
    let contact_path = format!("/api/v1/systems/crm/records/contacts/{cid}");
    let deal = api
        .post(
            "/api/v1/systems/sales/records/opportunities",
            json!({"name": "Deal", "value": 5, "stage": "proposal", "contact_id": cid}),
        )
        .await;
    assert_eq!(deal.status, 201, "{}", deal.body);
    let lead = api.post("/api/v1/systems/crm/records/leads", json!({"name": "Lead", "contact_id": cid})).await;
    assert_eq!(lead.status, 201, "{}", lead.body);
    let talk = api
        .post(
            "/api/v1/systems/crm/records/interactions",
            json!({"contact_id": cid, "kind": "call", "occurred_at": "2026-01-01T10:00:00Z"}),
        )
        .await;
    assert_eq!(talk.status, 201, "{}", talk.body);
    let note = api
        .post(
            "/api/v1/tools/notes",
            json!({"title": "About Bo", "subject": {"system_id": "crm", "entity": "contacts", "record_id": cid}}),
        )
        .await;
    assert_eq!(note.status, 201, "{}", note.body);

    // restrict: the opportunity holds the contact, and the answer names it.
    let refused = api.delete(&contact_path).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.body["referrers"][0]["record_id"], deal.body["record_id"], "{}", refused.body);
    assert_eq!(refused.body["referrers"][0]["field"], "contact_id");
    assert_eq!(api.get(&contact_path).await.status, 200, "nothing was deleted");
    let lead_path = format!("/api/v1/systems/crm/records/leads/{}", lead.body["record_id"].as_str().unwrap());
    assert_eq!(api.get(&lead_path).await.body["data"]["contact_id"], cid, "nothing was changed either");

    // Without the opportunity: the lead loses its contact, the interaction goes with it.
    let deal_path = format!("/api/v1/systems/sales/records/opportunities/{}", deal.body["record_id"].as_str().unwrap());
    assert_eq!(api.delete(&deal_path).await.status, 204);
    assert_eq!(api.delete(&contact_path).await.status, 204);
    assert_eq!(api.get(&contact_path).await.status, 404);
    let kept = api.get(&lead_path).await;
    assert_eq!(kept.status, 200);
    assert!(kept.body["data"].get("contact_id").is_none(), "set null: {}", kept.body);
    let talk_path = format!("/api/v1/systems/crm/records/interactions/{}", talk.body["record_id"].as_str().unwrap());
    assert_eq!(api.get(&talk_path).await.status, 404, "cascade");
    let note_now = api.get(&format!("/api/v1/tools/notes/{}", note.body["id"].as_str().unwrap())).await;
    assert!(note_now.body.get("subject").is_none(), "tool items are unlinked: {}", note_now.body);
    let trail = api.get("/api/v1/settings/audit-logs?action=record.delete").await;
    assert_eq!(items(&trail.body).len(), 3, "the deal, the contact and the cascaded interaction: {}", trail.body);
}

/// Uninstalling deletes the systems' records; records of systems that stay follow their
/// relations' delete rules: restrict refuses (409 naming them, nothing changed), set null
/// empties the field; tool items about deleted records are unlinked.
pub async fn uninstall_relations(ctx: &Ctx, tenant: &str) {
    let admin = ctx.admin();
    let partners = format!("partners-{tenant}");
    let created = admin
        .post(
            "/api/v1/systems",
            json!({"system_id": partners, "name": "Partners", "description": "Referrals", "type": "partners"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let published = admin
        .post(
            &format!("/api/v1/systems/{partners}/versions"),
            json!({"version": "1.0.0", "release_notes": "first", "schema_version": 1, "dependencies": {},
                   "manifest": {"entities": {
                       "referrals": {"description": "who sent whom", "schema": {"type": "object", "properties": {
                           "name": {"type": "string"}, "contact_id": {"type": "string", "x-ref": "crm/contacts"}}}},
                       "visits": {"description": "who came by", "schema": {"type": "object", "properties": {
                           "name": {"type": "string"}, "contact_id": {"type": "string", "x-ref": "crm/contacts", "x-on-delete": "set_null"}}}}},
                   "triggers": [], "config_schema": {"type": "object"}, "default_config": {}, "migrations": []}}),
        )
        .await;
    assert_eq!(published.status, 201, "{}", published.body);
    let api = ctx.new_tenant(tenant).await;
    let systems = format!("/api/v1/tenants/{tenant}/systems");
    assert_eq!(api.post(&systems, json!({"system_id": "sales"})).await.status, 201);
    assert_eq!(api.post(&systems, json!({"system_id": partners})).await.status, 201);
    let contact = api
        .post(
            "/api/v1/systems/crm/records/contacts",
            json!({"first_name": "Bo", "last_name": "Li", "email": "bo@example.com"}),
        )
        .await;
    assert_eq!(contact.status, 201, "{}", contact.body);
    let cid = contact.body["record_id"].as_str().unwrap().to_string();
    let deal = api
        .post(
            "/api/v1/systems/sales/records/opportunities",
            json!({"name": "Deal", "value": 5, "stage": "proposal", "contact_id": cid}),
        )
        .await;
    assert_eq!(deal.status, 201, "{}", deal.body);
    let referral = api
        .post(&format!("/api/v1/systems/{partners}/records/referrals"), json!({"name": "R", "contact_id": cid}))
        .await;
    assert_eq!(referral.status, 201, "{}", referral.body);
    let visit =
        api.post(&format!("/api/v1/systems/{partners}/records/visits"), json!({"name": "V", "contact_id": cid})).await;
    assert_eq!(visit.status, 201, "{}", visit.body);
    let note = api
        .post(
            "/api/v1/tools/notes",
            json!({"title": "About Bo", "subject": {"system_id": "crm", "entity": "contacts", "record_id": cid}}),
        )
        .await;
    assert_eq!(note.status, 201, "{}", note.body);

    let refused = api.delete(&format!("{systems}/crm?cascade=true")).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.body["referrers"][0]["record_id"], referral.body["record_id"], "{}", refused.body);
    assert_eq!(api.get(&format!("/api/v1/systems/crm/records/contacts/{cid}")).await.status, 200, "nothing deleted");
    assert_eq!(api.get(&format!("{systems}/sales")).await.status, 200, "nothing uninstalled");

    let referral_path =
        format!("/api/v1/systems/{partners}/records/referrals/{}", referral.body["record_id"].as_str().unwrap());
    assert_eq!(api.delete(&referral_path).await.status, 204);
    let done = api.delete(&format!("{systems}/crm?cascade=true")).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["uninstalled"], json!(["sales", "crm"]), "{}", done.body);
    assert_eq!((done.body["deleted_records"].as_u64(), done.body["complete"].as_bool()), (Some(2), Some(true)));
    let visit_now = api
        .get(&format!("/api/v1/systems/{partners}/records/visits/{}", visit.body["record_id"].as_str().unwrap()))
        .await;
    assert_eq!(visit_now.status, 200, "{}", visit_now.body);
    assert!(visit_now.body["data"].get("contact_id").is_none(), "set null: {}", visit_now.body);
    let note_now = api.get(&format!("/api/v1/tools/notes/{}", note.body["id"].as_str().unwrap())).await;
    assert!(note_now.body.get("subject").is_none(), "unlinked: {}", note_now.body);
    assert_eq!(api.post(&systems, json!({"system_id": "crm"})).await.status, 201, "reinstalled");
    let contacts = api.get("/api/v1/systems/crm/records/contacts").await;
    assert!(items(&contacts.body).is_empty(), "a reinstall starts empty: {}", contacts.body);
}

/// The OpenAPI document speaks for this product: its license, contact, a description of
/// every capability, and every operation in a described group.
pub async fn openapi_document(ctx: &Ctx) {
    let spec = ctx.api.get("/openapi.json").await.body;
    assert_eq!(spec["info"]["license"]["name"], "MIT");
    assert_eq!(spec["info"]["contact"]["name"], "Business Platform team");
    assert!(!spec.to_string().contains("Kukkonen"), "no library author's metadata");
    let description = spec["info"]["description"].as_str().unwrap();
    for capability in ["catalog", "automation", "feature flags", "OpenFeature", "audit", "calendar"] {
        assert!(description.contains(capability), "{capability} in the description");
    }
    let tags: Vec<&str> = spec["tags"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(spec["tags"].as_array().unwrap().iter().all(|t| t["description"].is_string()));
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            for tag in operation["tags"].as_array().unwrap() {
                assert!(tags.contains(&tag.as_str().unwrap()), "{method} {path}: tag {tag} is described");
            }
            let responses = operation["responses"].as_object().unwrap();
            if operation["security"].as_array().is_some_and(|s| !s.is_empty()) {
                for status in ["401", "403"] {
                    assert!(responses.contains_key(status), "{method} {path} declares {status}");
                }
            }
            if operation.get("requestBody").is_some() {
                assert!(responses.contains_key("400") && responses.contains_key("422"), "{method} {path}: 400 and 422");
            }
            for (status, response) in responses {
                assert!(response["description"].is_string(), "{method} {path} {status} has a description");
                if status.starts_with('4') || status.starts_with('5') {
                    if let Some(content) = response.get("content").and_then(|c| c.as_object()) {
                        assert!(
                            content.keys().all(|k| k == "application/problem+json"),
                            "{method} {path} {status}: errors are problem+json ({:?})",
                            content.keys().collect::<Vec<_>>()
                        );
                    }
                }
            }
        }
    }
}

/// Every `$ref` in the document names a schema the document defines.
pub async fn openapi_references_resolve(ctx: &Ctx) {
    let spec = ctx.api.get("/openapi.json").await.body;
    let schemas = spec["components"]["schemas"].as_object().expect("schemas");
    let text = spec.to_string();
    let dangling: Vec<&str> = text
        .split("\"#/components/schemas/")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .filter(|name| !schemas.contains_key(*name))
        .collect();
    assert!(dangling.is_empty(), "undefined schemas: {dangling:?}");
}

/// `If-Match` must be `*` or entity tags (400 otherwise); a well-formed tag that names
/// no version is a failed precondition (412).
pub async fn if_match_syntax(ctx: &Ctx, tenant: &str) {
    let api = ctx.new_tenant(tenant).await;
    let created = api.post("/api/v1/settings", json!({"key": "theme", "value": "dark"})).await;
    assert_eq!(created.status, 201, "{}", created.body);
    for malformed in ["", "3", "\"3", "W/3"] {
        let answer = api
            .send("PUT", "/api/v1/settings/theme", Some(json!({"value": "light"})), &[("if-match", malformed)])
            .await;
        assert_eq!(answer.status, 400, "If-Match {malformed:?}: {}", answer.body);
        assert_eq!(answer.problem_fields(), vec!["If-Match".to_string()], "{}", answer.body);
    }
    let stale =
        api.send("PUT", "/api/v1/settings/theme", Some(json!({"value": "light"})), &[("if-match", "\"99\"")]).await;
    assert_eq!(stale.status, 412, "{}", stale.body);
    let current =
        api.send("PUT", "/api/v1/settings/theme", Some(json!({"value": "light"})), &[("if-match", "\"1\"")]).await;
    assert_eq!(current.status, 200, "{}", current.body);
}

/// Offboarding deletes everything the tenant owns, frees what it claimed, stops its
/// rules, and leaves one entry in the platform's audit trail.
/// `with_file`: also keep an uploaded attachment (not where uploads cannot be sent).
pub async fn offboarding(ctx: &Ctx, tenant: &str, other: &str, with_file: bool) {
    let api = ctx.new_tenant(tenant).await;
    let neighbour = ctx.new_tenant(other).await;
    let admin = ctx.admin();
    assert_eq!(api.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "sales"})).await.status, 201);
    assert_eq!(
        api.post(
            "/api/v1/systems/sales/records/opportunities",
            json!({"name": "Deal", "value": 1, "stage": "proposal"})
        )
        .await
        .status,
        201
    );
    assert_eq!(api.post("/api/v1/tools/notes", json!({"title": "n"})).await.status, 201);
    assert_eq!(api.post("/api/v1/settings", json!({"key": "k", "value": 1})).await.status, 201);
    let source = json!({"account": "222233334444", "source": "aws.s3", "detail_type": "Object Created"});
    assert_eq!(api.post("/api/v1/automation/sources", source.clone()).await.status, 201);

    let mut download = String::new();
    if with_file {
        let file = api
            .post("/api/v1/tools/attachments", json!({"filename": "a.txt", "content_type": "text/plain", "size": 2}))
            .await;
        assert_eq!(file.status, 201, "{}", file.body);
        assert!(send_upload(&api, &file.body["upload"], b"hi".to_vec()).await < 300);
        let file_path =
            format!("/api/v1/tools/attachments/{}/complete", file.body["attachment"]["id"].as_str().unwrap());
        download = api.post(&file_path, json!({})).await.body["download"].as_str().unwrap().to_string();
    }
    assert_eq!(api.delete(&format!("/api/v1/tenants/{tenant}")).await.status, 403, "only the platform administrator");
    assert_eq!(neighbour.delete(&format!("/api/v1/tenants/{tenant}")).await.status, 403);
    // One call deletes within its time budget and says whether it finished; calling again
    // goes on (on a loaded machine, with moto, one call may not be enough).
    let mut deleted = 0;
    let mut calls = 0;
    loop {
        let done = admin.delete(&format!("/api/v1/tenants/{tenant}")).await;
        if calls > 0 && done.status == 404 {
            break; // the previous call's budget ended just after its last item
        }
        assert_eq!(done.status, 200, "{}", done.body);
        deleted += done.body["deleted_items"].as_u64().unwrap();
        calls += 1;
        if done.body["complete"].as_bool() == Some(true) {
            break;
        }
        assert!(calls < 5, "the deletion goes on with each call: {}", done.body);
    }
    assert!(deleted > 10, "{deleted} items deleted");
    assert_eq!(api.get("/api/v1/auth/me").await.status, 401, "its users are gone");
    if !download.is_empty() && !download.starts_with('/') {
        assert_ne!(fetch(&api, &download).await.0, 200, "its files are gone");
    }
    let verified = admin.post("/api/v1/auth/verify-tenant", json!({"tenant_id": tenant})).await;
    assert_eq!(verified.body["exists"], false, "{}", verified.body);
    assert_eq!(admin.delete(&format!("/api/v1/tenants/{tenant}")).await.status, 404, "nothing left");
    assert_eq!(neighbour.post("/api/v1/automation/sources", source).await.status, 201);
    let trail = admin.get(&format!("/api/v1/platform/audit-logs?action=tenant.offboard&target=tenant:{tenant}")).await;
    assert_eq!(items(&trail.body).len(), 1, "{}", trail.body);
    assert_eq!(neighbour.get("/api/v1/settings").await.status, 200, "the neighbour is untouched");
}

/// Sends an upload as the platform described it: to the local server (with the caller's
/// credential) or to a presigned S3 URL (as is).
async fn send_upload(api: &crate::Api, upload: &Value, bytes: Vec<u8>) -> u16 {
    let url = upload["url"].as_str().unwrap();
    let mut request = if url.starts_with('/') {
        api.client.put(format!("{}{url}", api.base)).bearer_auth(api.token.as_deref().unwrap())
    } else {
        api.client.put(url)
    };
    for (name, value) in upload["headers"].as_object().unwrap() {
        if name != "content-length" {
            request = request.header(name.as_str(), value.as_str().unwrap());
        }
    }
    let response = request.body(bytes).send().await.unwrap();
    let status = response.status().as_u16();
    if status >= 300 {
        eprintln!("upload to {url} answered {status}: {}", response.text().await.unwrap_or_default());
    }
    status
}

/// Fetches a download URL the platform gave.
async fn fetch(api: &crate::Api, url: &str) -> (u16, Vec<u8>) {
    let request = if url.starts_with('/') {
        api.client.get(format!("{}{url}", api.base)).bearer_auth(api.token.as_deref().unwrap())
    } else {
        api.client.get(url)
    };
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.bytes().await.unwrap().to_vec())
}

/// Attachments: announced, uploaded where the platform says, checked on completion,
/// downloaded, deleted with their file.
pub async fn attachments(ctx: &Ctx, tenant: &str, other: &str) {
    let api = ctx.new_tenant(tenant).await;
    let stranger = ctx.new_tenant(other).await;
    let content = b"%PDF-1.7 quote".to_vec();
    let created = api
        .post(
            "/api/v1/tools/attachments",
            json!({"filename": "quote.pdf", "content_type": "application/pdf", "size": content.len()}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["attachment"]["status"], "pending");
    let id = created.body["attachment"]["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/tools/attachments/{id}");
    assert_eq!(api.post(&format!("{path}/complete"), json!({})).await.status, 409, "nothing uploaded yet");
    let upload = &created.body["upload"];
    assert_eq!(upload["headers"]["content-type"], "application/pdf", "{upload}");
    assert!(send_upload(&api, upload, content.clone()).await < 300);
    let done = api.post(&format!("{path}/complete"), json!({})).await;
    assert_eq!((done.status, done.body["status"].as_str()), (200, Some("available")), "{}", done.body);
    let url = done.body["download"].as_str().unwrap().to_string();
    assert_eq!(fetch(&api, &url).await, (200, content.clone()));
    assert!(api.get(&path).await.body["download"].as_str().is_some());
    if url.starts_with('/') {
        assert_eq!(fetch(&stranger, &url).await.0, 404, "another tenant's file is not there for it");
    }
    assert_eq!(stranger.get(&path).await.status, 404);
    for (body, field) in [
        (json!({"filename": "x.exe", "content_type": "application/x-msdownload", "size": 10}), "content_type"),
        (json!({"filename": "x.pdf", "content_type": "application/pdf", "size": 0}), "size"),
        (json!({"filename": "x.pdf", "content_type": "application/pdf", "size": 26 * 1024 * 1024}), "size"),
        (json!({"filename": "../x.pdf", "content_type": "application/pdf", "size": 10}), "filename"),
    ] {
        let refused = api.post("/api/v1/tools/attachments", body).await;
        assert_eq!((refused.status, refused.problem_fields()), (422, vec![field.to_string()]), "{}", refused.body);
    }
    // An upload that is not what was announced is refused, at the door or on completion.
    let short = api
        .post("/api/v1/tools/attachments", json!({"filename": "a.txt", "content_type": "text/plain", "size": 5}))
        .await;
    let short_id = short.body["attachment"]["id"].as_str().unwrap().to_string();
    let sent = send_upload(&api, &short.body["upload"], b"123456".to_vec()).await;
    let checked = api.post(&format!("/api/v1/tools/attachments/{short_id}/complete"), json!({})).await;
    assert!(sent >= 400 || checked.status == 422, "sent {sent}, completion {}: {}", checked.status, checked.body);
    assert_ne!(checked.status, 200);

    assert_eq!(api.delete(&path).await.status, 204);
    assert_eq!(api.get(&path).await.status, 404);
    assert_ne!(fetch(&api, &url).await.0, 200, "the file went with it");
}

/// The owner's export: an asynchronous job, then one zip archive with a JSON Lines file
/// per kind, without secrets.
pub async fn export(ctx: &Ctx, tenant: &str) {
    let api = ctx.new_tenant(tenant).await;
    assert_eq!(api.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "sales"})).await.status, 201);
    let deal = json!({"name": "Exported deal", "value": 7, "stage": "proposal"});
    assert_eq!(api.post("/api/v1/systems/sales/records/opportunities", deal).await.status, 201);
    assert_eq!(
        api.post("/api/v1/tools/notes", json!({"title": "Exported note", "visibility": "tenant"})).await.status,
        201
    );
    let key = api.post("/api/v1/users/api-keys", json!({"name": "k"})).await;
    let secret = key.body["secret"].as_str().unwrap().to_string();
    let member_email = format!("m@{tenant}.example.com");
    let member = owner_invites(&api, ctx, tenant, &member_email).await;
    assert_eq!(member.post(&format!("/api/v1/tenants/{tenant}/export"), json!({})).await.status, 403, "the owner's");

    let started = api.post(&format!("/api/v1/tenants/{tenant}/export"), json!({})).await;
    assert_eq!((started.status, started.body["status"].as_str()), (202, Some("pending")), "{}", started.body);
    let path = format!("/api/v1/tenants/{tenant}/exports/{}", started.body["export_id"].as_str().unwrap());
    let done = crate::automation::eventually(&api, &path, |b| b["status"] != "pending").await;
    assert_eq!(done["status"], "complete", "{done}");
    let (status, bytes) = fetch(&api, done["download"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip archive");
    let names: Vec<String> =
        (0..archive.len()).map(|i| archive.by_index(i).unwrap().name().unwrap().to_string()).collect();
    for file in ["records.sales.opportunities.jsonl", "notes.jsonl", "user.jsonl", "audit.jsonl", "apikey.jsonl"] {
        assert!(names.contains(&file.to_string()), "{file} in {names:?}");
    }
    let mut everything = String::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        std::io::Read::read_to_string(&mut file, &mut everything).unwrap();
    }
    assert!(everything.contains("Exported deal") && everything.contains("Exported note"));
    assert!(!everything.contains(&secret[secret.len() - 12..]), "no API key secret");
    assert!(!everything.contains("argon2"), "no password hash");
    assert_eq!(done["files"]["records.sales.opportunities.jsonl"], 1, "{done}");
}

async fn owner_invites(api: &crate::Api, ctx: &Ctx, tenant: &str, email: &str) -> crate::Api {
    let created = api
        .post("/api/v1/users", json!({"email": email, "password": "member password 123", "roles": ["member"]}))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    ctx.sign_in(tenant, email, "member password 123").await
}

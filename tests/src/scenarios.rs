//! The product's HTTP scenarios, run against the local server (embedded store) and
//! against the same app on DynamoDB (moto). Each scenario uses its own tenant.

use serde_json::json;

use crate::Ctx;

/// Catalog reads, pagination and the built-in systems.
pub async fn catalog_reads(ctx: &Ctx) {
    assert_eq!(ctx.api.get("/api/v1/systems").await.status, 401, "reading the catalog needs a credential");
    let api = &ctx.new_tenant("tenant-catalog-reader").await;
    let all = api.get("/api/v1/systems?limit=200").await;
    assert_eq!(all.status, 200);
    let ids: Vec<&str> =
        all.body["items"].as_array().unwrap().iter().map(|s| s["system_id"].as_str().unwrap()).collect();
    for builtin in ["crm", "sales", "marketing", "support"] {
        assert!(ids.contains(&builtin), "{builtin} ships with the catalog: {ids:?}");
    }

    let first = api.get("/api/v1/systems?limit=2").await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    let cursor = first.body["next_cursor"].as_str().expect("a second page").to_string();
    let second = api.get(&format!("/api/v1/systems?limit=2&cursor={cursor}")).await;
    assert_eq!(second.status, 200);
    assert_ne!(first.body["items"][0]["system_id"], second.body["items"][0]["system_id"]);

    let crm = api.get("/api/v1/systems/crm").await;
    assert_eq!(crm.status, 200);
    assert!(crm.header("etag").is_some());
    for field in ["system_id", "name", "description", "type", "status", "metadata", "created_at", "updated_at"] {
        assert!(crm.body.get(field).is_some(), "system has {field}");
    }

    let versions = api.get("/api/v1/systems/crm/versions").await;
    let listed: Vec<&str> =
        versions.body["items"].as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap()).collect();
    assert_eq!(listed, ["1.1.0", "1.0.0"], "newest first");
    let v = &versions.body["items"][0];
    for field in ["release_notes", "schema_version", "dependencies", "manifest"] {
        assert!(v.get(field).is_some(), "version has {field}");
    }
    assert!(v["manifest"]["entities"]["contacts"]["schema"].is_object());
    let sales = api.get("/api/v1/systems/sales/versions/1.0.0").await;
    assert_eq!(sales.body["dependencies"]["crm"], "^1.0");

    assert_eq!(api.get("/api/v1/systems/nope").await.status, 404);
    assert_eq!(api.get("/api/v1/systems/NOPE!").await.status, 404);
    assert_eq!(api.get("/api/v1/systems/crm/versions/9.9.9").await.status, 404);
    let bad = api.get("/api/v1/systems?limit=0").await;
    assert_eq!((bad.status, bad.problem_fields()), (400, vec!["limit".to_string()]));
    let bad = api.get("/api/v1/systems?cursor=***").await;
    assert_eq!((bad.status, bad.problem_fields()), (400, vec!["cursor".to_string()]));
    assert_eq!(api.get("/api/v1/nothing-here").await.status, 404);
}

fn version_body(version: &str, deps: serde_json::Value, default_mode: &str) -> serde_json::Value {
    json!({
        "version": version,
        "release_notes": format!("release {version}"),
        "schema_version": 1,
        "dependencies": deps,
        "manifest": {
            "entities": {"items": {"description": "things", "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}},
            "triggers": [{"id": "item_created", "name": "Item created", "entity": "items", "data": ["item_id", "name"]}],
            "config_schema": {"type": "object", "properties": {"mode": {"enum": ["a", "b"]}}, "required": ["mode"], "additionalProperties": false},
            "default_config": {"mode": default_mode},
            "migrations": []
        }
    })
}

/// Catalog administration: only with the platform administrator token, validated, versioned.
pub async fn catalog_admin(ctx: &Ctx, suffix: &str) {
    let api = &ctx.api;
    let admin = ctx.admin();
    let owner = ctx.new_tenant(&format!("catalog-admin-{suffix}")).await;
    let id = format!("tools-{suffix}");
    let new = json!({"system_id": id, "name": "Tools", "description": "Everyday tools", "type": "tools"});

    assert_eq!(api.post("/api/v1/systems", new.clone()).await.status, 401);
    assert_eq!(api.bearer("wrong-token").post("/api/v1/systems", new.clone()).await.status, 401);
    assert_eq!(
        owner.post("/api/v1/systems", new.clone()).await.status,
        403,
        "a tenant owner is not the platform administrator"
    );
    let created = admin.post("/api/v1/systems", new.clone()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["status"], "active");
    assert_eq!(admin.post("/api/v1/systems", new).await.status, 409);

    let invalid = admin.post("/api/v1/systems", json!({"system_id": "Bad Id", "name": "x", "type": "t"})).await;
    assert_eq!((invalid.status, invalid.problem_fields()), (422, vec!["system_id".to_string()]));
    let invalid =
        admin.post("/api/v1/systems", json!({"system_id": format!("x-{suffix}"), "name": " ", "type": "t"})).await;
    assert_eq!((invalid.status, invalid.problem_fields()), (422, vec!["name".to_string()]));
    let invalid = admin
        .post("/api/v1/systems", json!({"system_id": format!("x-{suffix}"), "name": "n", "type": "t", "colour": 1}))
        .await;
    assert_eq!((invalid.status, invalid.problem_fields()), (422, vec!["colour".to_string()]));

    let path = format!("/api/v1/systems/{id}");
    let current = admin.get(&path).await;
    let etag = current.header("etag").unwrap().to_string();
    let stale = admin.send("PUT", &path, Some(json!({"description": "x"})), &[("if-match", "\"999\"")]).await;
    assert_eq!(stale.status, 412);
    let updated = admin
        .send(
            "PUT",
            &path,
            Some(json!({"description": "Tools for every day", "status": "deprecated"})),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["description"], "Tools for every day");
    assert_ne!(updated.header("etag").unwrap(), etag);
    assert_eq!(api.put(&path, json!({"name": "x"})).await.status, 401);

    let versions = format!("{path}/versions");
    assert_eq!(api.post(&versions, version_body("1.0.0", json!({}), "a")).await.status, 401);
    let published = admin.post(&versions, version_body("1.0.0", json!({}), "a")).await;
    assert_eq!(published.status, 201, "{}", published.body);
    assert_eq!(admin.post(&versions, version_body("1.0.0", json!({}), "a")).await.status, 409);
    let bad = admin.post(&versions, version_body("1.1.0", json!({}), "zzz")).await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.problem_fields(), ["manifest.default_config/mode"]);
    let bad = admin.post(&versions, version_body("1.1.0", json!({"ghost": "^1"}), "a")).await;
    assert_eq!(bad.problem_fields(), ["dependencies.ghost"]);
    let bad = admin.post(&versions, version_body("not-semver", json!({}), "a")).await;
    assert_eq!((bad.status, bad.problem_fields()), (422, vec!["version".to_string()]));
    admin.post(&versions, version_body("1.2.0", json!({}), "b")).await;
    assert_eq!(admin.get(&path).await.body["latest_version"], "1.2.0");
}

/// Installing with dependencies, refusing duplicates, uninstalling with dependents.
pub async fn installs(ctx: &Ctx, tenant: &str) {
    let api = ctx.new_tenant(tenant).await;
    let base = format!("/api/v1/tenants/{tenant}/systems");

    let installed = api.post(&base, json!({"system_id": "sales"})).await;
    assert_eq!(installed.status, 201, "{}", installed.body);
    let names: Vec<(&str, &str)> = installed.body["installed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["system_id"].as_str().unwrap(), i["version"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("crm", "1.1.0"), ("sales", "1.0.0")], "dependencies first, highest compatible");
    assert_eq!(installed.body["installed"][0]["installed_as_dependency_of"], "sales");

    let again = api.post(&base, json!({"system_id": "sales"})).await;
    assert_eq!(again.status, 409);
    let listed = api.get(&base).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(listed.body["items"][0]["status"], "active");
    let one = api.get(&format!("{base}/sales")).await;
    assert_eq!((one.status, one.body["version"].as_str()), (200, Some("1.0.0")));

    let config = api.get("/api/v1/systems/sales/config").await;
    assert_eq!(config.status, 200, "installing writes the default configuration");
    assert_eq!(config.body["configuration"]["high_value_threshold"], 10000);

    let unknown = api.post(&base, json!({"system_id": "ghost"})).await;
    assert_eq!((unknown.status, unknown.problem_fields()), (422, vec!["system_id".to_string()]));
    let bad_version = api.post(&base, json!({"system_id": "marketing", "version": "^7"})).await;
    assert_eq!((bad_version.status, bad_version.problem_fields()), (422, vec!["version".to_string()]));
    let garbage = api.post(&base, json!({"system_id": "marketing", "version": "seven"})).await;
    assert_eq!(garbage.problem_fields(), ["version"]);
    let missing = api.post(&base, json!({})).await;
    assert_eq!((missing.status, missing.problem_fields()), (422, vec!["system_id".to_string()]));

    let refused = api.delete(&format!("{base}/crm")).await;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.body["dependents"], json!(["sales"]));
    let bad_flag = api.delete(&format!("{base}/crm?cascade=maybe")).await;
    assert_eq!((bad_flag.status, bad_flag.problem_fields()), (400, vec!["cascade".to_string()]));
    let cascaded = api.delete(&format!("{base}/crm?cascade=true")).await;
    assert_eq!(cascaded.status, 200, "{}", cascaded.body);
    assert_eq!(cascaded.body["uninstalled"], json!(["sales", "crm"]));
    assert!(api.get(&base).await.body["items"].as_array().unwrap().is_empty());
    assert_eq!(api.get("/api/v1/systems/sales/config").await.status, 404);
    assert_eq!(api.delete(&format!("{base}/crm")).await.status, 404);

    let history = api.get(&format!("{base}/crm/history")).await;
    let actions: Vec<(&str, &str)> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(actions, [("install", "succeeded"), ("uninstall", "failed"), ("uninstall", "succeeded")]);

    // Reinstalling writes the defaults again, as a new configuration version.
    api.post(&base, json!({"system_id": "crm"})).await;
    let config = api.get("/api/v1/systems/crm/config").await;
    assert_eq!(config.body["version"], 2);
}

/// Upgrades and rollbacks migrate the configuration; dependents are protected.
pub async fn upgrades(ctx: &Ctx, tenant: &str, suffix: &str) {
    let tenant_api = ctx.new_tenant(tenant).await;
    let base = format!("/api/v1/tenants/{tenant}/systems");

    let installed = tenant_api.post(&base, json!({"system_id": "crm", "version": "1.0.0"})).await;
    assert_eq!(installed.body["installed"][0]["version"], "1.0.0");
    let config = tenant_api.get("/api/v1/systems/crm/config").await;
    assert_eq!(config.body["configuration"]["features"]["email_integration"], false);

    // The tenant customises, then upgrades: the customisation is carried over.
    let mut custom = config.body["configuration"].clone();
    custom["features"]["email_integration"] = json!(true);
    let written = tenant_api.put("/api/v1/systems/crm/config", json!({"configuration": custom})).await;
    assert_eq!(written.status, 200, "{}", written.body);

    let upgraded = tenant_api.put(&format!("{base}/crm"), json!({"version": "1.1.0"})).await;
    assert_eq!((upgraded.status, upgraded.body["version"].as_str()), (200, Some("1.1.0")), "{}", upgraded.body);
    let config = tenant_api.get("/api/v1/systems/crm/config").await;
    assert_eq!(config.body["configuration"]["features"]["email_sync"], true);
    assert_eq!(config.body["configuration"]["features"]["duplicate_detection"], true);
    assert!(config.body["configuration"]["features"].get("email_integration").is_none());
    assert_eq!(config.body["cause"], json!({"kind": "migration", "from_version": "1.0.0", "to_version": "1.1.0"}));

    let rolled = tenant_api.put(&format!("{base}/crm"), json!({"version": "1.0.0"})).await;
    assert_eq!(rolled.status, 200);
    let config = tenant_api.get("/api/v1/systems/crm/config").await;
    assert_eq!(config.body["configuration"]["features"]["email_integration"], true);
    assert!(config.body["configuration"]["features"].get("duplicate_detection").is_none());

    let history = tenant_api.get(&format!("{base}/crm/history")).await;
    let actions: Vec<&str> =
        history.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["install", "upgrade", "rollback"]);
    assert_eq!(tenant_api.put(&format!("{base}/crm"), json!({"version": "9.0.0"})).await.problem_fields(), ["version"]);
    assert_eq!(tenant_api.put(&format!("{base}/marketing"), json!({"version": "1.0.0"})).await.status, 404);
    let stale = tenant_api
        .send("PUT", &format!("{base}/crm"), Some(json!({"version": "1.1.0"})), &[("if-match", "\"1\"")])
        .await;
    assert_eq!(stale.status, 412);

    // A dependent pins its dependency's major version.
    let admin = ctx.admin();
    let core = format!("core-{suffix}");
    let addon = format!("addon-{suffix}");
    for (id, kind) in [(&core, "core"), (&addon, "addon")] {
        admin.post("/api/v1/systems", json!({"system_id": id, "name": id, "type": kind})).await;
    }
    admin.post(&format!("/api/v1/systems/{core}/versions"), version_body("1.0.0", json!({}), "a")).await;
    admin.post(&format!("/api/v1/systems/{core}/versions"), version_body("2.0.0", json!({}), "a")).await;
    let published = admin
        .post(&format!("/api/v1/systems/{addon}/versions"), version_body("1.0.0", json!({core.clone(): "^1"}), "a"))
        .await;
    assert_eq!(published.status, 201, "{}", published.body);
    let installed = tenant_api.post(&base, json!({"system_id": addon})).await;
    let names: Vec<String> = installed.body["installed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("{}@{}", i["system_id"].as_str().unwrap(), i["version"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [format!("{core}@1.0.0"), format!("{addon}@1.0.0")]);
    let refused = tenant_api.put(&format!("{base}/{core}"), json!({"version": "2.0.0"})).await;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.body["dependents"], json!([addon]));
}

/// Versioned configuration with ETag / If-Match, rollback and validation.
pub async fn configuration(ctx: &Ctx, tenant: &str) {
    let api = ctx.new_tenant(tenant).await;
    let path = format!("/api/v1/config/tenants/{tenant}/configs/branding");

    assert_eq!(api.get(&path).await.status, 404);
    let defaults = api.get(&format!("/api/v1/config/tenants/{tenant}/configs/general")).await;
    assert_eq!(defaults.body["value"]["timezone"], "UTC", "onboarding writes the default settings");
    let first = api.put(&path, json!({"value": {"color": "blue"}})).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!((first.body["version"].as_u64(), first.header("etag")), (Some(1), Some("\"1\"")));
    assert_eq!(first.body["config_key"], "branding");

    let second = api.send("PUT", &path, Some(json!({"value": {"color": "green"}})), &[("if-match", "\"1\"")]).await;
    assert_eq!(second.body["version"], 2);
    let lost = api.send("PUT", &path, Some(json!({"value": {"color": "red"}})), &[("if-match", "\"1\"")]).await;
    assert_eq!(lost.status, 412, "a stale writer cannot overwrite");
    let got = api.get(&path).await;
    assert_eq!((got.body["value"]["color"].as_str(), got.header("etag")), (Some("green"), Some("\"2\"")));

    let back = api.post(&format!("{path}/rollback"), json!({"version": 1})).await;
    assert_eq!(back.status, 200);
    assert_eq!(back.body["version"], 3);
    assert_eq!(back.body["value"]["color"], "blue");
    assert_eq!(back.body["cause"], json!({"kind": "rollback", "to_version": 1}));
    assert_eq!(api.post(&format!("{path}/rollback"), json!({"version": 42})).await.status, 404);

    let versions = api.get(&format!("{path}/versions?limit=2")).await;
    let numbers: Vec<u64> =
        versions.body["items"].as_array().unwrap().iter().map(|v| v["version"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [3, 2]);
    let rest =
        api.get(&format!("{path}/versions?limit=2&cursor={}", versions.body["next_cursor"].as_str().unwrap())).await;
    assert_eq!(rest.body["items"][0]["version"], 1);
    assert_eq!(api.get(&format!("{path}/versions/2")).await.body["value"]["color"], "green");
    assert_eq!(api.get(&format!("{path}/versions/77")).await.status, 404);

    let bad_key = api.put(&format!("/api/v1/config/tenants/{tenant}/configs/bad%20key"), json!({"value": 1})).await;
    assert_eq!((bad_key.status, bad_key.problem_fields()), (422, vec!["config_key".to_string()]));
    let no_value = api.put(&path, json!({"colour": 1})).await;
    assert_eq!(no_value.status, 422);
    let not_json = api.send("PUT", &path, None, &[("content-type", "application/json")]).await;
    assert_eq!(not_json.status, 400);

    // An installed system's configuration is checked against its schema.
    assert_eq!(api.get("/api/v1/systems/support/config").await.status, 404);
    api.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "support"})).await;
    let current = api.get("/api/v1/systems/support/config").await;
    let etag = current.header("etag").unwrap().to_string();
    let mut wrong = current.body["configuration"].clone();
    wrong["auto_assign"] = json!("yes");
    let refused = api.put("/api/v1/systems/support/config", json!({"configuration": wrong})).await;
    assert_eq!(refused.status, 422);
    assert_eq!(refused.problem_fields(), ["configuration/auto_assign"]);
    let mut right = current.body["configuration"].clone();
    right["auto_assign"] = json!(!right["auto_assign"].as_bool().unwrap());
    let ok = api
        .send("PUT", "/api/v1/systems/support/config", Some(json!({"configuration": right})), &[("if-match", &etag)])
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["version"], 2);
    let versions = api.get("/api/v1/systems/support/config/versions").await;
    assert_eq!(versions.body["items"].as_array().unwrap().len(), 2);
    let back = api.post("/api/v1/systems/support/config/rollback", json!({"version": 1})).await;
    assert_eq!(back.body["configuration"], current.body["configuration"]);
    assert_eq!(api.get("/api/v1/systems/support/config/versions/1").await.status, 200);
}

/// Concurrent writers: without If-Match every write lands as its own version; with the
/// same If-Match exactly one wins.
pub async fn concurrent_writers(ctx: &Ctx, tenant: &str) {
    let api = ctx.new_tenant(tenant).await;
    let path = format!("/api/v1/config/tenants/{tenant}/configs/counter");
    let writers = (0..12).map(|i| {
        let api = api.clone();
        let path = path.clone();
        tokio::spawn(async move { api.put(&path, json!({"value": {"writer": i}})).await.status })
    });
    for writer in writers {
        assert_eq!(writer.await.unwrap(), 200);
    }
    let versions = api.get(&format!("{path}/versions?limit=100")).await;
    let mut writers: Vec<u64> =
        versions.body["items"].as_array().unwrap().iter().map(|v| v["value"]["writer"].as_u64().unwrap()).collect();
    writers.sort();
    assert_eq!(writers, (0..12).collect::<Vec<_>>(), "no update is lost");

    let racers = (0..6).map(|i| {
        let api = api.clone();
        let path = path.clone();
        tokio::spawn(async move {
            api.send("PUT", &path, Some(json!({"value": {"racer": i}})), &[("if-match", "\"12\"")]).await.status
        })
    });
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 412), "{statuses:?}");
}

/// One tenant never sees another's data, and the answer does not reveal it exists.
pub async fn isolation(ctx: &Ctx, tenant_a: &str, tenant_b: &str) {
    let api = &ctx.api;
    let a = ctx.new_tenant(tenant_a).await;
    let b = ctx.new_tenant(tenant_b).await;
    a.post(&format!("/api/v1/tenants/{tenant_a}/systems"), json!({"system_id": "marketing"})).await;
    a.put(&format!("/api/v1/config/tenants/{tenant_a}/configs/secret"), json!({"value": "a-only"})).await;

    // B naming A in the path is refused the same whether or not A has the data.
    for path in [
        format!("/api/v1/tenants/{tenant_a}/systems"),
        format!("/api/v1/tenants/{tenant_a}/systems/marketing"),
        format!("/api/v1/tenants/{tenant_a}/systems/marketing/history"),
        format!("/api/v1/config/tenants/{tenant_a}/configs/secret"),
        format!("/api/v1/config/tenants/{tenant_a}/configs/secret/versions"),
        "/api/v1/tenants/no-such-tenant/systems".to_string(),
        "/api/v1/config/tenants/no-such-tenant/configs/secret".to_string(),
    ] {
        assert_eq!(b.get(&path).await.status, 403, "{path}");
    }
    assert_eq!(b.post(&format!("/api/v1/tenants/{tenant_a}/systems"), json!({"system_id": "crm"})).await.status, 403);
    assert_eq!(b.delete(&format!("/api/v1/tenants/{tenant_a}/systems/marketing?cascade=true")).await.status, 403);
    assert_eq!(
        b.put(&format!("/api/v1/config/tenants/{tenant_a}/configs/secret"), json!({"value": "b"})).await.status,
        403
    );

    // B's own namespace does not contain A's data.
    assert_eq!(b.get(&format!("/api/v1/config/tenants/{tenant_b}/configs/secret")).await.status, 404);
    assert_eq!(b.get("/api/v1/systems/marketing/config").await.status, 404);
    assert!(b.get(&format!("/api/v1/tenants/{tenant_b}/systems")).await.body["items"].as_array().unwrap().is_empty());
    assert_eq!(a.get(&format!("/api/v1/config/tenants/{tenant_a}/configs/secret")).await.body["value"], "a-only");

    // A header naming another tenant than the credential's is refused.
    assert_eq!(b.tenant(tenant_a).get("/api/v1/systems/marketing/config").await.status, 403);
    assert_eq!(b.tenant(tenant_a).get(&format!("/api/v1/tenants/{tenant_b}/systems")).await.status, 403);

    // The bare header is no identity: without a credential everything tenant-scoped is 401.
    assert_eq!(api.tenant(tenant_a).get(&format!("/api/v1/tenants/{tenant_a}/systems")).await.status, 401);
    assert_eq!(api.tenant(tenant_a).get("/api/v1/systems/marketing/config").await.status, 401);
    let malformed = api.tenant("bad tenant!").get("/api/v1/systems/crm/config").await;
    assert_eq!((malformed.status, malformed.problem_fields()), (400, vec!["x-tenant-id".to_string()]));
}

/// Health, OpenAPI and Swagger UI.
pub async fn platform(ctx: &Ctx) {
    let api = &ctx.api;
    for path in ["/health", "/health/live", "/health/ready"] {
        let answer = api.get(path).await;
        assert_eq!((answer.status, answer.body["status"].as_str()), (200, Some("ok")), "{path}");
    }
    assert_eq!(api.get("/health/ready").await.body["checks"]["store"], "ok");
    let spec = api.get("/openapi.json").await;
    assert_eq!(spec.status, 200);
    let paths = spec.body["paths"].as_object().unwrap();
    for path in [
        "/api/v1/systems",
        "/api/v1/systems/{system_id}",
        "/api/v1/systems/{system_id}/versions",
        "/api/v1/tenants/{tenant_id}/systems",
        "/api/v1/tenants/{tenant_id}/systems/{system_id}",
        "/api/v1/tenants/{tenant_id}/systems/{system_id}/history",
        "/api/v1/config/tenants/{tenant_id}/configs/{config_key}",
        "/api/v1/systems/{system_id}/config",
        "/health/ready",
    ] {
        assert!(paths.contains_key(path), "OpenAPI describes {path}");
    }
    let docs = api.client.get(format!("{}/docs/", api.base)).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"), "Swagger UI is served");
    let script = api.client.get(format!("{}/docs/swagger-ui-bundle.js", api.base)).send().await.unwrap();
    assert_eq!(script.status(), 200, "Swagger UI assets are vendored");
}

//! Identity and access scenarios: onboarding, sign-in, sessions, OWASP rules, RBAC,
//! API keys, audit trail and a cross-tenant sweep of every endpoint.

use serde_json::{json, Value};

use crate::trust::{eventually_status, REVOCATION_WAIT};
use crate::{Api, Ctx, OWNER_PASSWORD};

fn login_body(tenant: &str, email: &str, password: &str) -> Value {
    json!({"tenant_id": tenant, "email": email, "password": password})
}

/// Onboarding, sign-in, me, refresh rotation with reuse detection, logout, sessions.
pub async fn sessions(ctx: &Ctx, tenant: &str) {
    let admin = ctx.admin();
    let anonymous = ctx.api.anonymous();
    let body = json!({"tenant_id": tenant, "name": "Sessions Ltd", "admin_email": Ctx::owner_email(tenant), "admin_password": OWNER_PASSWORD});
    assert_eq!(anonymous.post("/api/v1/auth/initialize-tenant", body.clone()).await.status, 401);
    let weak = json!({"tenant_id": tenant, "name": "x", "admin_email": "not-an-email", "admin_password": "short"});
    let refused = admin.post("/api/v1/auth/initialize-tenant", weak).await;
    assert_eq!(refused.status, 422);
    assert_eq!(refused.problem_fields(), ["admin_email"]);
    let short = json!({"tenant_id": tenant, "name": "x", "admin_email": "a@b.co", "admin_password": "short"});
    assert_eq!(admin.post("/api/v1/auth/initialize-tenant", short).await.problem_fields(), ["admin_password"]);
    let missing = admin.post("/api/v1/auth/verify-tenant", json!({"tenant_id": tenant})).await;
    assert_eq!((missing.body["exists"].as_bool(), missing.body["complete"].as_bool()), (Some(false), Some(false)));
    let created = admin.post("/api/v1/auth/initialize-tenant", body.clone()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["owner"]["roles"], json!(["owner"]));
    assert!(created.body["owner"].get("password").is_none() && !created.body.to_string().contains("argon2"));
    assert_eq!(admin.post("/api/v1/auth/initialize-tenant", body).await.status, 409);
    let verified = admin.post("/api/v1/auth/verify-tenant", json!({"tenant_id": tenant})).await;
    assert_eq!((verified.body["exists"].as_bool(), verified.body["complete"].as_bool()), (Some(true), Some(true)));

    // Bad credentials: one generic answer, whether or not the account exists.
    let wrong =
        anonymous.post("/api/v1/auth/login", login_body(tenant, &Ctx::owner_email(tenant), "wrong password 123")).await;
    let unknown =
        anonymous.post("/api/v1/auth/login", login_body(tenant, "nobody@example.com", "wrong password 123")).await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(wrong.body["detail"], unknown.body["detail"]);
    let other_tenant = anonymous
        .post("/api/v1/auth/login", login_body("no-such-tenant", &Ctx::owner_email(tenant), OWNER_PASSWORD))
        .await;
    assert_eq!(other_tenant.status, 401);

    let login = anonymous
        .tenant(tenant)
        .post(
            "/api/v1/auth/login",
            json!({"email": Ctx::owner_email(tenant).to_uppercase(), "password": OWNER_PASSWORD}),
        )
        .await;
    assert_eq!(login.status, 200, "the tenant may come from X-Tenant-ID; emails are case-insensitive: {}", login.body);
    for field in ["access_token", "refresh_token", "token_type", "expires_in"] {
        assert!(login.body.get(field).is_some(), "{field}");
    }
    assert_eq!(login.body["token_type"], "bearer");
    let access = login.body["access_token"].as_str().unwrap().to_string();
    let claims = jwt_claims(&access);
    for claim in ["sub", "email", "username", "tenant_id", "exp", "iat", "jti", "roles"] {
        assert!(claims.get(claim).is_some(), "access token carries {claim}: {claims}");
    }
    let user = ctx.api.bearer(&access);
    let me = user.get("/api/v1/auth/me").await;
    assert_eq!((me.status, me.body["email"].as_str()), (200, Some(Ctx::owner_email(tenant).as_str())));
    assert!(me.body["permissions"].as_array().unwrap().contains(&json!("users.manage")));
    assert_eq!(user.get("/api/v1/auth/test").await.body["tenant_id"], tenant);
    assert_eq!(anonymous.get("/api/v1/auth/me").await.status, 401);
    assert_eq!(anonymous.bearer("not.a.token").get("/api/v1/auth/me").await.status, 401);

    // Refresh rotates; an already-used refresh token revokes the whole session.
    let first_refresh = login.body["refresh_token"].as_str().unwrap().to_string();
    let rotated = anonymous.post("/api/v1/auth/refresh", json!({"refresh_token": first_refresh})).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let second_refresh = rotated.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(first_refresh, second_refresh);
    assert_eq!(ctx.api.bearer(rotated.body["access_token"].as_str().unwrap()).get("/api/v1/auth/me").await.status, 200);
    let reused = anonymous.post("/api/v1/auth/refresh", json!({"refresh_token": first_refresh})).await;
    assert_eq!(reused.status, 401, "reuse is refused");
    let after_reuse = anonymous.post("/api/v1/auth/refresh", json!({"refresh_token": second_refresh})).await;
    assert_eq!(after_reuse.status, 401, "reuse revoked the whole session, newest token included");
    assert_eq!(anonymous.post("/api/v1/auth/refresh", json!({"refresh_token": "rt.x.y.z.w"})).await.status, 401);

    // Sessions: list, revoke one, logout revokes the current one server-side.
    let second = ctx.sign_in(tenant, &Ctx::owner_email(tenant), OWNER_PASSWORD).await;
    let third = ctx.sign_in(tenant, &Ctx::owner_email(tenant), OWNER_PASSWORD).await;
    let listed = second.get("/api/v1/auth/sessions").await;
    let sessions = listed.body.as_array().unwrap();
    assert!(sessions.len() >= 2, "{}", listed.body);
    assert!(!listed.body.to_string().contains("hash"), "no secrets in the session list");
    let third_sid = jwt_claims(third.token.as_deref().unwrap())["sid"].as_str().unwrap().to_string();
    assert_eq!(second.delete(&format!("/api/v1/auth/sessions/{third_sid}")).await.status, 204);
    assert_eq!(third.get("/api/v1/auth/me").await.status, 401, "a revoked session's access token stops working");
    assert_eq!(second.delete("/api/v1/auth/sessions/01NOSUCHSESSION").await.status, 404);
    assert_eq!(second.post("/api/v1/auth/logout", json!({})).await.status, 204);
    assert_eq!(second.get("/api/v1/auth/me").await.status, 401, "logout: the access token stops working");
}

/// The claims part of a JWT, without verifying it.
pub fn jwt_claims(token: &str) -> Value {
    use base64_decode as decode;
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&decode(payload)).expect("JSON claims")
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = ALPHABET.iter().position(|a| *a == c).expect("base64url") as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

/// Repeated failures lock the email with growing delays, the same for unknown emails.
pub async fn lockout(ctx: &Ctx, tenant: &str) {
    ctx.new_tenant(tenant).await;
    let anonymous = ctx.api.anonymous();
    for email in [Ctx::owner_email(tenant), "ghost@example.com".to_string()] {
        for attempt in 1..=5 {
            let answer = anonymous.post("/api/v1/auth/login", login_body(tenant, &email, "wrong password 123")).await;
            assert_eq!(answer.status, 401, "{email} attempt {attempt}");
        }
        let locked = anonymous.post("/api/v1/auth/login", login_body(tenant, &email, OWNER_PASSWORD)).await;
        assert_eq!(locked.status, 429, "{email} is locked, even with the right password");
        let wait: u64 = locked.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=30).contains(&wait), "{wait}");
    }
}

/// Password reset: same answer either way, single-use expiring token, sessions end.
pub async fn password_reset(ctx: &Ctx, tenant: &str) {
    let owner = ctx.new_tenant(tenant).await;
    let anonymous = ctx.api.anonymous();
    let email = Ctx::owner_email(tenant);
    let known = anonymous.post("/api/v1/auth/password-reset", json!({"tenant_id": tenant, "email": email})).await;
    let unknown = anonymous
        .post("/api/v1/auth/password-reset", json!({"tenant_id": tenant, "email": "nobody@example.com"}))
        .await;
    assert_eq!((known.status, unknown.status), (202, 202));
    assert_eq!(known.body, unknown.body);
    assert!(ctx.mail_to("nobody@example.com").is_empty());
    let mails: Vec<Value> = ctx.mail_to(&email).into_iter().filter(|m| m["subject"] == "Reset your password").collect();
    assert_eq!(mails.len(), 1);
    let token = Ctx::token_in(&mails[0], "prt.");

    let weak =
        anonymous.post("/api/v1/auth/password-reset/confirm", json!({"token": token, "new_password": "short"})).await;
    assert_eq!((weak.status, weak.problem_fields()), (422, vec!["new_password".to_string()]));
    let new_password = "a brand new password 42";
    let done = anonymous
        .post("/api/v1/auth/password-reset/confirm", json!({"token": token, "new_password": new_password}))
        .await;
    assert_eq!(done.status, 204, "{}", done.body);
    let again = anonymous
        .post("/api/v1/auth/password-reset/confirm", json!({"token": token, "new_password": "another password 4242"}))
        .await;
    assert_eq!((again.status, again.problem_fields()), (422, vec!["token".to_string()]), "single use");
    let forged = anonymous
        .post(
            "/api/v1/auth/password-reset/confirm",
            json!({"token": format!("prt.{tenant}.deadbeef"), "new_password": new_password}),
        )
        .await;
    assert_eq!(forged.status, 422);

    assert_eq!(owner.get("/api/v1/auth/me").await.status, 401, "every session ends with a reset");
    assert_eq!(anonymous.post("/api/v1/auth/login", login_body(tenant, &email, OWNER_PASSWORD)).await.status, 401);
    assert_eq!(anonymous.post("/api/v1/auth/login", login_body(tenant, &email, new_password)).await.status, 200);
}

/// Users, roles and permissions: admins manage users, viewers read but do not change,
/// custom roles grant exactly their permissions; email verification.
pub async fn access_control(ctx: &Ctx, tenant: &str) {
    let owner = ctx.new_tenant(tenant).await;
    let create = |email: &str, roles: Value| json!({"email": email, "password": "member password 123", "full_name": email, "roles": roles});
    let viewer = owner.post("/api/v1/users", create(&format!("viewer@{tenant}.example.com"), json!(["viewer"]))).await;
    assert_eq!(viewer.status, 201, "{}", viewer.body);
    assert_eq!(viewer.body["email_verified"], false);
    let member = owner.post("/api/v1/users", create(&format!("member@{tenant}.example.com"), json!(["member"]))).await;
    let admin = owner.post("/api/v1/users", create(&format!("admin@{tenant}.example.com"), json!(["admin"]))).await;
    assert_eq!(
        owner.post("/api/v1/users", create(&format!("viewer@{tenant}.example.com"), json!(["viewer"]))).await.status,
        409
    );
    let bad = owner
        .post("/api/v1/users", json!({"email": "x@y.co", "password": "member password 123", "roles": ["wizard"]}))
        .await;
    assert_eq!((bad.status, bad.problem_fields()), (422, vec!["roles[0]".to_string()]));

    let as_viewer = ctx.sign_in(tenant, &format!("viewer@{tenant}.example.com"), "member password 123").await;
    let as_member = ctx.sign_in(tenant, &format!("member@{tenant}.example.com"), "member password 123").await;
    let as_admin = ctx.sign_in(tenant, &format!("admin@{tenant}.example.com"), "member password 123").await;
    let config = format!("/api/v1/config/tenants/{tenant}/configs/general");
    assert_eq!(as_viewer.get(&config).await.status, 200, "viewers read");
    assert_eq!(as_viewer.put(&config, json!({"value": {}})).await.status, 403, "viewers do not change");
    assert_eq!(
        as_viewer.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "crm"})).await.status,
        403
    );
    assert_eq!(as_member.put(&config, json!({"value": {"timezone": "UTC"}})).await.status, 200);
    assert_eq!(
        as_member.post("/api/v1/users", create("new@x.co", json!(["viewer"]))).await.status,
        403,
        "only admins manage users"
    );
    assert_eq!(as_member.get("/api/v1/settings/audit-logs").await.status, 403);
    let by_admin =
        as_admin.post("/api/v1/users", create(&format!("second@{tenant}.example.com"), json!(["viewer"]))).await;
    assert_eq!(by_admin.status, 201);
    let promote =
        as_admin.post("/api/v1/users", create(&format!("owner2@{tenant}.example.com"), json!(["owner"]))).await;
    assert_eq!(promote.status, 403, "only an owner grants owner");
    assert_eq!(
        as_admin.post("/api/v1/systems", json!({"system_id": "x", "name": "x", "type": "x"})).await.status,
        403,
        "catalog administration stays with the platform administrator"
    );

    // Users: list, get with ETag, update with If-Match; new roles apply to live sessions.
    let listed = owner.get("/api/v1/users").await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 5);
    let viewer_id = viewer.body["user_id"].as_str().unwrap();
    let got = owner.get(&format!("/api/v1/users/{viewer_id}")).await;
    let etag = got.header("etag").unwrap().to_string();
    assert_eq!(
        owner
            .send(
                "PUT",
                &format!("/api/v1/users/{viewer_id}"),
                Some(json!({"full_name": "V"})),
                &[("if-match", "\"99\"")]
            )
            .await
            .status,
        412
    );
    let changed = owner
        .send("PUT", &format!("/api/v1/users/{viewer_id}"), Some(json!({"roles": ["member"]})), &[("if-match", &etag)])
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let me = as_viewer.get("/api/v1/auth/me").await;
    assert_eq!(me.status, 200, "a role change keeps the session: {}", me.body);
    assert!(
        me.body["permissions"].as_array().unwrap().contains(&json!("config.write")),
        "the session acts with the new role's permissions at once: {}",
        me.body
    );
    let owner_id = jwt_claims(owner.token.as_deref().unwrap())["sub"].as_str().unwrap().to_string();
    assert_eq!(
        owner.put(&format!("/api/v1/users/{owner_id}"), json!({"roles": ["admin"]})).await.status,
        403,
        "nobody changes their own roles, owners included"
    );
    assert_eq!(owner.delete(&format!("/api/v1/users/{owner_id}")).await.status, 409);

    // Custom roles.
    let permissions = owner.get("/api/v1/users/permissions").await;
    assert!(permissions.body.as_array().unwrap().iter().any(|p| p["name"] == "config.read"));
    let role = owner.post("/api/v1/users/roles", json!({"name": "auditor", "description": "reads config and audit", "permissions": ["config.read", "audit.read"]})).await;
    assert_eq!(role.status, 201, "{}", role.body);
    assert_eq!(
        owner.post("/api/v1/users/roles", json!({"name": "auditor", "permissions": ["config.read"]})).await.status,
        409
    );
    assert_eq!(
        owner.post("/api/v1/users/roles", json!({"name": "viewer", "permissions": ["config.read"]})).await.status,
        409
    );
    let bad_role = owner.post("/api/v1/users/roles", json!({"name": "bad", "permissions": ["catalog.manage"]})).await;
    assert_eq!((bad_role.status, bad_role.problem_fields()), (422, vec!["permissions[0]".to_string()]));
    let unknown_perm = owner.post("/api/v1/users/roles", json!({"name": "bad", "permissions": ["fly"]})).await;
    assert_eq!(unknown_perm.status, 422);
    let roles = owner.get("/api/v1/users/roles").await;
    let names: Vec<&str> = roles.body.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["owner", "admin", "member", "viewer", "auditor"]);
    owner.post("/api/v1/users", create(&format!("auditor@{tenant}.example.com"), json!(["auditor"]))).await;
    let as_auditor = ctx.sign_in(tenant, &format!("auditor@{tenant}.example.com"), "member password 123").await;
    assert_eq!(as_auditor.get(&config).await.status, 200);
    assert_eq!(as_auditor.get("/api/v1/settings/audit-logs").await.status, 200);
    assert_eq!(as_auditor.put(&config, json!({"value": {}})).await.status, 403);

    // Teams.
    let member_id = member.body["user_id"].as_str().unwrap();
    let admin_id = admin.body["user_id"].as_str().unwrap();
    let team = owner.post("/api/v1/users/teams", json!({"name": "Sales", "members": [member_id]})).await;
    assert_eq!(team.status, 201, "{}", team.body);
    let team_id = team.body["team_id"].as_str().unwrap();
    let bad_member = owner.post(&format!("/api/v1/users/teams/{team_id}/members"), json!({"user_id": "nobody"})).await;
    assert_eq!((bad_member.status, bad_member.problem_fields()), (422, vec!["user_id".to_string()]));
    let added = owner.post(&format!("/api/v1/users/teams/{team_id}/members"), json!({"user_id": admin_id})).await;
    assert_eq!(added.body["members"].as_array().unwrap().len(), 2);
    assert_eq!(as_member.post("/api/v1/users/teams", json!({"name": "x"})).await.status, 403);
    let removed = owner.delete(&format!("/api/v1/users/teams/{team_id}/members/{member_id}")).await;
    assert_eq!(removed.body["members"], json!([admin_id]));
    assert_eq!(owner.get("/api/v1/users/teams").await.body["items"].as_array().unwrap().len(), 1);

    // Deleting a user ends their sessions.
    assert_eq!(owner.delete(&format!("/api/v1/users/{admin_id}")).await.status, 204);
    let ended = eventually_status(REVOCATION_WAIT, async || as_admin.get("/api/v1/auth/me").await, 401).await;
    assert_eq!(ended, 401, "everywhere, within the revocation bound");
    assert_eq!(owner.get(&format!("/api/v1/users/{admin_id}")).await.status, 404);
    assert_eq!(owner.get(&format!("/api/v1/users/teams/{team_id}")).await.body["members"], json!([]));

    // Email verification: the message was sent at creation; the token works once.
    let mails = ctx.mail_to(&format!("member@{tenant}.example.com"));
    let token = Ctx::token_in(mails.last().expect("a verification message"), "evt.");
    let anonymous = ctx.api.anonymous();
    assert_eq!(anonymous.post("/api/v1/auth/verify-email/confirm", json!({"token": token})).await.status, 204);
    assert_eq!(anonymous.post("/api/v1/auth/verify-email/confirm", json!({"token": token})).await.status, 422);
    assert_eq!(owner.get(&format!("/api/v1/users/{member_id}")).await.body["email_verified"], true);
    assert_eq!(as_member.post("/api/v1/auth/verify-email", json!({})).await.status, 202);
}

/// API keys: shown once, scoped, usable as a bearer, last use recorded, revocable.
pub async fn api_keys(ctx: &Ctx, tenant: &str) {
    let owner = ctx.new_tenant(tenant).await;
    let too_wide = owner
        .post(
            "/api/v1/users",
            json!({"email": format!("m@{tenant}.example.com"), "password": "member password 123", "roles": ["member"]}),
        )
        .await;
    assert_eq!(too_wide.status, 201);
    let member = ctx.sign_in(tenant, &format!("m@{tenant}.example.com"), "member password 123").await;
    let refused = member.post("/api/v1/users/api-keys", json!({"name": "ci", "scopes": ["users.manage"]})).await;
    assert_eq!(
        (refused.status, refused.problem_fields()),
        (422, vec!["scopes[0]".to_string()]),
        "scopes are a subset of the creator's permissions"
    );
    let past = member.post("/api/v1/users/api-keys", json!({"name": "ci", "expires_at": "2001-01-01T00:00:00Z"})).await;
    assert_eq!(past.problem_fields(), ["expires_at"]);

    let created = member.post("/api/v1/users/api-keys", json!({"name": "ci", "scopes": ["config.read"]})).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("bpk."), "a recognisable prefix");
    assert!(secret.starts_with(created.body["key"]["prefix"].as_str().unwrap()));
    let key_id = created.body["key"]["key_id"].as_str().unwrap().to_string();
    let listed = member.get("/api/v1/users/api-keys").await;
    assert!(!listed.body.to_string().contains(&secret[20..]), "the secret is shown once");
    assert!(!listed.body.to_string().contains("hash"));
    assert!(listed.body[0]["last_used_at"].is_null());

    let with_key = ctx.api.bearer(&secret);
    let config = format!("/api/v1/config/tenants/{tenant}/configs/general");
    assert_eq!(with_key.get(&config).await.status, 200, "works wherever a token does");
    assert_eq!(with_key.put(&config, json!({"value": {}})).await.status, 403, "only its scopes");
    assert_eq!(with_key.get("/api/v1/auth/test").await.body["kind"], "api_key");
    assert!(member.get("/api/v1/users/api-keys").await.body[0]["last_used_at"].is_string(), "last use is recorded");
    assert_eq!(ctx.api.bearer(&format!("{}x", &secret[..secret.len() - 1])).get(&config).await.status, 401);

    // A key with an expiry stops working then, even while cached.
    let soon = time_in(2);
    let expiring = member
        .post("/api/v1/users/api-keys", json!({"name": "short-lived", "scopes": ["config.read"], "expires_at": soon}))
        .await;
    assert_eq!(expiring.status, 201, "{}", expiring.body);
    let short = ctx.api.bearer(expiring.body["secret"].as_str().unwrap());
    assert_eq!(short.get(&config).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(short.get(&config).await.status, 401, "an expired key stops working");

    // A key acts for its creator as they are now: disabling the creator stops it.
    let second = member.post("/api/v1/users/api-keys", json!({"name": "ci-2", "scopes": ["config.read"]})).await;
    let second_key = ctx.api.bearer(second.body["secret"].as_str().unwrap());
    assert_eq!(second_key.get(&config).await.status, 200);
    let member_id = jwt_claims(member.token.as_deref().unwrap())["sub"].as_str().unwrap().to_string();
    assert_eq!(owner.put(&format!("/api/v1/users/{member_id}"), json!({"status": "disabled"})).await.status, 200);
    let stopped = eventually_status(REVOCATION_WAIT, async || second_key.get(&config).await, 401).await;
    assert_eq!(stopped, 401, "a disabled user's keys stop working (everywhere, within the revocation bound)");
    assert_eq!(owner.put(&format!("/api/v1/users/{member_id}"), json!({"status": "active"})).await.status, 200);
    let member = ctx.sign_in(tenant, &format!("m@{tenant}.example.com"), "member password 123").await;

    assert_eq!(owner.delete("/api/v1/users/api-keys/01NOSUCHKEY").await.status, 404);
    assert_eq!(member.delete(&format!("/api/v1/users/api-keys/{key_id}")).await.status, 204);
    let stopped = eventually_status(REVOCATION_WAIT, async || with_key.get(&config).await, 401).await;
    assert_eq!(stopped, 401, "revoked keys stop working (everywhere, within the revocation bound)");
}

/// Every change leaves an audit entry; entries can be filtered and exported, never changed.
pub async fn audit_trail(ctx: &Ctx, tenant: &str) {
    let owner = ctx.new_tenant(tenant).await;
    owner.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "crm"})).await;
    owner.put(&format!("/api/v1/config/tenants/{tenant}/configs/branding"), json!({"value": {"color": "red"}})).await;
    owner.put(&format!("/api/v1/config/tenants/{tenant}/configs/branding"), json!({"value": {"color": "blue"}})).await;
    owner
        .post("/api/v1/users", json!({"email": format!("u@{tenant}.example.com"), "password": "member password 123"}))
        .await;
    ctx.api
        .anonymous()
        .post("/api/v1/auth/login", login_body(tenant, &Ctx::owner_email(tenant), "wrong password 123"))
        .await;

    let all = owner.get("/api/v1/settings/audit-logs?limit=200").await;
    assert_eq!(all.status, 200);
    let actions: Vec<&str> =
        all.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for expected in ["tenant.initialize", "auth.login", "system.install", "config.write", "user.create"] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
    let newest = &all.body["items"][0];
    assert_eq!(
        (newest["action"].as_str(), newest["outcome"].as_str()),
        (Some("auth.login"), Some("failed")),
        "newest first; failed sign-ins recorded"
    );
    for field in ["audit_id", "tenant_id", "actor", "action", "target", "request_id", "at"] {
        assert!(!newest[field].is_null(), "{field}");
    }
    let writes = owner.get("/api/v1/settings/audit-logs?action=config.write").await;
    let last_write = &writes.body["items"][0];
    assert_eq!(last_write["before"], json!({"color": "red"}));
    assert_eq!(last_write["after"], json!({"color": "blue"}));
    assert!(last_write["actor"].as_str().unwrap().starts_with("user:"));
    assert_eq!(last_write["actor_email"], Ctx::owner_email(tenant));
    let prefix = owner.get("/api/v1/settings/audit-logs?action=config.*&limit=1").await;
    assert_eq!(prefix.body["items"].as_array().unwrap().len(), 1);
    assert!(prefix.body["next_cursor"].is_string());
    let page_two = owner
        .get(&format!(
            "/api/v1/settings/audit-logs?action=config.*&limit=1&cursor={}",
            prefix.body["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(page_two.body["items"][0]["after"], json!({"color": "red"}));
    assert_eq!(owner.get("/api/v1/settings/audit-logs?since=yesterday").await.problem_fields(), ["since"]);
    assert!(!all.body.to_string().contains("argon2"), "no secret in the trail");
    assert!(!all.body.to_string().contains(OWNER_PASSWORD));

    let jsonl = owner
        .client
        .get(format!("{}/api/v1/settings/audit-logs/export?format=jsonl", owner.base))
        .bearer_auth(owner.token.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(jsonl.headers()["content-type"], "application/x-ndjson");
    let text = jsonl.text().await.unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), all.body["items"].as_array().unwrap().len());
    assert_eq!(lines[0]["action"], "tenant.initialize", "oldest first");
    let csv = owner
        .client
        .get(format!("{}/api/v1/settings/audit-logs/export?format=csv&action=config.write", owner.base))
        .bearer_auth(owner.token.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with(
        "audit_id,at,tenant_id,actor,actor_email,action,target,outcome,request_id,client_request_id,before,after"
    ));
    assert_eq!(csv.lines().count(), 3, "header and two writes: {csv}");
    assert_eq!(owner.get("/api/v1/settings/audit-logs/export?format=xml").await.problem_fields(), ["format"]);

    // Append-only: no way to change or remove an entry through the API.
    let id = newest["audit_id"].as_str().unwrap();
    for method in ["PUT", "PATCH", "DELETE"] {
        let answer = owner.send(method, &format!("/api/v1/settings/audit-logs/{id}"), Some(json!({})), &[]).await;
        assert!(answer.status == 404 || answer.status == 405, "{method}: {}", answer.status);
        let answer = owner.send(method, "/api/v1/settings/audit-logs", Some(json!({})), &[]).await;
        assert_eq!(answer.status, 405, "{method}");
    }
}

/// Fills a path template with tenant A's identifiers.
fn fill(template: &str, ids: &Value) -> String {
    let mut path = template.to_string();
    for (name, value) in ids.as_object().unwrap() {
        path = path.replace(&format!("{{{name}}}"), value.as_str().unwrap());
    }
    path
}

/// Tenant B tries every endpoint of the OpenAPI document with tenant A's identifiers
/// and learns nothing: 401/403/404/405/422, never A's data.
pub async fn cross_tenant_sweep(ctx: &Ctx, tenant_a: &str, tenant_b: &str) {
    let a = ctx.new_tenant(tenant_a).await;
    let b = ctx.new_tenant(tenant_b).await;
    a.post(&format!("/api/v1/tenants/{tenant_a}/systems"), json!({"system_id": "sales"})).await;
    a.put(
        &format!("/api/v1/config/tenants/{tenant_a}/configs/secret-plan"),
        json!({"value": {"codename": "A-SECRET-VALUE"}}),
    )
    .await;
    let user = a.post("/api/v1/users", json!({"email": format!("alice@{tenant_a}.example.com"), "password": "member password 123", "full_name": "A-SECRET-NAME"})).await;
    let team = a.post("/api/v1/users/teams", json!({"name": "A-SECRET-TEAM"})).await;
    let key = a.post("/api/v1/users/api-keys", json!({"name": "A-SECRET-KEY"})).await;
    let me = a.get("/api/v1/auth/me").await;
    let rule = a.post("/api/v1/automation/rules", json!({"name": "A-SECRET-RULE", "module_type": "sales", "trigger_id": "opportunity_created", "actions": [{"type": "create_task", "parameters": {"title": "A-SECRET-TASK"}}]})).await;
    assert_eq!(rule.status, 201, "{}", rule.body);
    let task = a.post("/api/v1/tools/tasks", json!({"title": "A-SECRET-TODO"})).await;
    let record = a
        .post(
            "/api/v1/systems/sales/records/opportunities",
            json!({"name": "A-SECRET-DEAL", "value": 1, "stage": "proposal"}),
        )
        .await;
    assert_eq!(record.status, 201, "{}", record.body);
    let source = a
        .post(
            "/api/v1/automation/sources",
            json!({"account": "111111111111", "source": "A-SECRET-SOURCE", "detail_type": "Object Created"}),
        )
        .await;
    assert_eq!(source.status, 201, "{}", source.body);
    let setting = a.post("/api/v1/settings", json!({"key": "secret-setting", "value": "A-SECRET-SETTING"})).await;
    assert_eq!(setting.status, 201, "{}", setting.body);
    let flag = a
        .post(
            "/api/v1/settings/feature-flags",
            json!({"key": "a-secret-flag", "description": "A-SECRET-FLAG", "targets": [{"variant": "off", "email_domains": ["a-secret.example"]}]}),
        )
        .await;
    assert_eq!(flag.status, 201, "{}", flag.body);
    let note = a.post("/api/v1/tools/notes", json!({"title": "A-SECRET-NOTE", "visibility": "tenant"})).await;
    assert_eq!(note.status, 201, "{}", note.body);
    let call = a
        .post("/api/v1/tools/calls", json!({"direction": "inbound", "phone_number": "+12025550123", "outcome": "answered", "summary": "A-SECRET-CALL"}))
        .await;
    assert_eq!(call.status, 201, "{}", call.body);
    let review =
        a.post("/api/v1/tools/reviews", json!({"rating": 5, "title": "A-SECRET-REVIEW", "status": "published"})).await;
    assert_eq!(review.status, 201, "{}", review.body);
    let event = a
        .post(
            "/api/v1/tools/events",
            json!({"title": "A-SECRET-EVENT", "start": "2026-01-01T10:00:00", "end": "2026-01-01T11:00:00"}),
        )
        .await;
    assert_eq!(event.status, 201, "{}", event.body);
    // Where no file storage is configured the attachment cannot exist; the sweep still tries its paths.
    let attachment = a
        .post(
            "/api/v1/tools/attachments",
            json!({"filename": "A-SECRET.pdf", "content_type": "application/pdf", "size": 3}),
        )
        .await;
    let attachment_id =
        attachment.body["attachment"]["id"].as_str().unwrap_or("01aaaaaaaaaaaaaaaaaaaaaaaa").to_string();
    let sid = jwt_claims(a.token.as_deref().unwrap())["sid"].as_str().unwrap().to_string();
    let ids = json!({
        "tenant_id": tenant_a,
        "system_id": "sales",
        "config_key": "secret-plan",
        "version": "1",
        "user_id": user.body["user_id"],
        "team_id": team.body["team_id"],
        "key_id": key.body["key"]["key_id"],
        "session_id": sid,
        "rule_id": rule.body["id"],
        "task_id": task.body["task_id"],
        "entity": "opportunities",
        "record_id": record.body["record_id"],
        "execution_id": "20260101000000000-0123456789abcdef0123456789abcdef",
        "source_id": source.body["source_id"],
        "key": "secret-setting",
        "flag_key": "a-secret-flag",
        "note_id": note.body["id"],
        "call_id": call.body["id"],
        "review_id": review.body["id"],
        "event_id": event.body["id"],
        "attachment_id": attachment_id,
    });
    let spec = ctx.api.get("/openapi.json").await.body;
    let mut tried = 0;
    for (template, operations) in spec["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            let path = fill(template, &ids);
            if path.starts_with("/api/v1/systems") && !path.contains("/config") && !path.contains("/records") {
                continue; // the catalog is global
            }
            if path.starts_with("/api/v1/auth/") && !template.contains("{session_id}") {
                continue; // sign-in and token endpoints carry no tenant identifiers
            }
            let body = Some(
                json!({"system_id": "crm", "value": {"x": 1}, "configuration": {}, "version": 1, "user_id": ids["user_id"], "name": "x", "email": "x@y.co", "password": "pw pw pw pw pw"}),
            );
            let answer = b.send(&method.to_uppercase(), &path, body, &[]).await;
            tried += 1;
            let leaked = answer.body.to_string();
            assert!(
                !leaked.contains("A-SECRET") && !leaked.contains(&format!("alice@{tenant_a}")),
                "{method} {path} leaked: {leaked}"
            );
            if path.contains(&format!("/{tenant_a}/")) || path.ends_with(&format!("/{tenant_a}")) {
                assert_eq!(answer.status, 403, "{method} {path}");
            }
            if template.contains("{user_id}")
                || template.contains("{team_id}")
                || template.contains("{key_id}")
                || template.contains("{session_id}")
                || template.contains("{source_id}")
                || template.contains("{note_id}")
                || template.contains("{call_id}")
                || template.contains("{review_id}")
                || template.contains("{task_id}")
                || template.contains("{event_id}")
                || template.contains("{attachment_id}")
            {
                assert!(
                    answer.status == 404 || answer.status == 422,
                    "{method} {path}: {} {}",
                    answer.status,
                    answer.body
                );
            }
        }
    }
    assert!(tried > 30, "the sweep covers every endpoint ({tried})");
    // A's data is all still there, untouched.
    assert_eq!(a.get(&format!("/api/v1/config/tenants/{tenant_a}/configs/secret-plan")).await.body["version"], 1);
    assert_eq!(a.get("/api/v1/users/teams").await.body["items"][0]["name"], "A-SECRET-TEAM");
    assert_eq!(a.get("/api/v1/auth/me").await.body["user_id"], me.body["user_id"]);
    assert_eq!(
        a.get(&format!("/api/v1/automation/rules/{}", rule.body["id"].as_str().unwrap())).await.body["name"],
        "A-SECRET-RULE"
    );
    assert_eq!(
        a.get(&format!("/api/v1/systems/sales/records/opportunities/{}", record.body["record_id"].as_str().unwrap()))
            .await
            .status,
        200
    );
    assert_eq!(a.get("/api/v1/settings/secret-setting").await.body["value"], "A-SECRET-SETTING");
    for (kind, id) in [("notes", &ids["note_id"]), ("calls", &ids["call_id"]), ("reviews", &ids["review_id"])] {
        assert_eq!(a.get(&format!("/api/v1/tools/{kind}/{}", id.as_str().unwrap())).await.status, 200, "{kind}");
    }
    assert_eq!(a.get("/api/v1/settings/feature-flags/a-secret-flag").await.body["version"], 1);
    let _: &Api = &b;
}

/// An RFC 3339 UTC time `seconds` from now.
fn time_in(seconds: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds);
    at.format(&time::format_description::well_known::Rfc3339).unwrap()
}

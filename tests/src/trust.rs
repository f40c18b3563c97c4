//! Trust scenarios, tried as an attacker and as an operator would: privilege escalation,
//! revocation seen from another process, throttled sign-in, CSV injection, chunked user
//! removal and the catalog's authentication.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::identity::jwt_claims;
use crate::{Answer, Api, Ctx, OWNER_PASSWORD};

/// The revocation bound of the product (5 s) plus slack for a slow machine.
pub const REVOCATION_WAIT: Duration = Duration::from_secs(9);
const MEMBER_PASSWORD: &str = "member password 123";
/// How many of 30 parallel guesses may reach the password check on moto, whose
/// conditional writes are not serialised between its request threads (real DynamoDB's are).
pub const MOTO_THROTTLE_SLACK: usize = 15;

fn login_body(tenant: &str, email: &str, password: &str) -> Value {
    json!({"tenant_id": tenant, "email": email, "password": password})
}

/// Polls `probe` until it answers `status`, for at most `within`; returns the last status.
pub async fn eventually_status(within: Duration, mut probe: impl AsyncFnMut() -> Answer, status: u16) -> u16 {
    let deadline = Instant::now() + within;
    loop {
        let answer = probe().await;
        if answer.status == status || Instant::now() > deadline {
            return answer.status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn add_user(owner: &Api, tenant: &str, name: &str, roles: Value) -> String {
    let created = owner
        .post(
            "/api/v1/users",
            json!({"email": format!("{name}@{tenant}.example.com"), "password": MEMBER_PASSWORD, "roles": roles}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    created.body["user_id"].as_str().unwrap().to_string()
}

async fn sign_in_as(ctx: &Ctx, tenant: &str, name: &str) -> Api {
    ctx.sign_in(tenant, &format!("{name}@{tenant}.example.com"), MEMBER_PASSWORD).await
}

/// Nobody grants a role, or builds one, holding a permission they do not hold; only
/// owners grant `owner`; nobody changes their own roles; API key scopes stay within.
pub async fn escalation(ctx: &Ctx, tenant: &str) {
    let owner = ctx.new_tenant(tenant).await;
    let hr = owner
        .post(
            "/api/v1/users/roles",
            json!({"name": "hr", "permissions": ["users.read", "users.manage", "api_keys.manage"]}),
        )
        .await;
    assert_eq!(hr.status, 201, "{}", hr.body);
    let builder = owner
        .post("/api/v1/users/roles", json!({"name": "builder", "permissions": ["users.read", "roles.manage"]}))
        .await;
    assert_eq!(builder.status, 201, "{}", builder.body);
    let hr_id = add_user(&owner, tenant, "hr", json!(["hr"])).await;
    let member_id = add_user(&owner, tenant, "member", json!(["member"])).await;
    let admin_id = add_user(&owner, tenant, "admin", json!(["admin"])).await;
    add_user(&owner, tenant, "builder", json!(["builder"])).await;
    let as_hr = sign_in_as(ctx, tenant, "hr").await;
    let as_admin = sign_in_as(ctx, tenant, "admin").await;
    let as_builder = sign_in_as(ctx, tenant, "builder").await;

    // users.manage alone does not make an admin.
    let self_promote = as_hr.put(&format!("/api/v1/users/{hr_id}"), json!({"roles": ["admin"]})).await;
    assert_eq!(self_promote.status, 403, "nobody changes their own roles: {}", self_promote.body);
    let new_admin = as_hr
        .post(
            "/api/v1/users",
            json!({"email": format!("x@{tenant}.example.com"), "password": MEMBER_PASSWORD, "roles": ["admin"]}),
        )
        .await;
    assert_eq!(new_admin.status, 403, "granting permissions one does not hold: {}", new_admin.body);
    let promote_other = as_hr.put(&format!("/api/v1/users/{member_id}"), json!({"roles": ["admin"]})).await;
    assert_eq!(promote_other.status, 403, "{}", promote_other.body);
    let demote_admin = as_hr.put(&format!("/api/v1/users/{admin_id}"), json!({"roles": ["viewer"]})).await;
    assert_eq!(demote_admin.status, 403, "nobody manages a user holding more than they do: {}", demote_admin.body);
    let within = as_hr
        .post(
            "/api/v1/users",
            json!({"email": format!("y@{tenant}.example.com"), "password": MEMBER_PASSWORD, "roles": ["hr"]}),
        )
        .await;
    assert_eq!(within.status, 201, "granting what one holds is fine: {}", within.body);
    let viewer_by_hr = as_hr
        .post(
            "/api/v1/users",
            json!({"email": format!("z@{tenant}.example.com"), "password": MEMBER_PASSWORD, "roles": ["viewer"]}),
        )
        .await;
    assert_eq!(viewer_by_hr.status, 403, "viewer holds reads hr lacks: {}", viewer_by_hr.body);

    // Only owners grant owner; admins do not change their own roles either.
    assert_eq!(as_admin.put(&format!("/api/v1/users/{member_id}"), json!({"roles": ["owner"]})).await.status, 403);
    assert_eq!(as_admin.put(&format!("/api/v1/users/{admin_id}"), json!({"roles": ["owner"]})).await.status, 403);
    let by_owner = owner.put(&format!("/api/v1/users/{member_id}"), json!({"roles": ["admin"]})).await;
    assert_eq!(by_owner.status, 200, "{}", by_owner.body);
    let second_owner = owner.put(&format!("/api/v1/users/{member_id}"), json!({"roles": ["owner"]})).await;
    assert_eq!(second_owner.status, 200, "owners grant owner: {}", second_owner.body);
    // Taking an owner away checks the remaining owners in the same transaction.
    let demoted = owner.put(&format!("/api/v1/users/{member_id}"), json!({"roles": ["admin"]})).await;
    assert_eq!(demoted.status, 200, "an owner demotes another owner: {}", demoted.body);

    // roles.manage does not build roles beyond one's own permissions, nor change them.
    let wide = as_builder.post("/api/v1/users/roles", json!({"name": "wide", "permissions": ["users.manage"]})).await;
    assert_eq!(wide.status, 403, "{}", wide.body);
    let narrow = as_builder.post("/api/v1/users/roles", json!({"name": "narrow", "permissions": ["users.read"]})).await;
    assert_eq!(narrow.status, 201, "{}", narrow.body);
    let widen =
        as_builder.put("/api/v1/users/roles/narrow", json!({"permissions": ["users.read", "audit.read"]})).await;
    assert_eq!(widen.status, 403, "{}", widen.body);
    let hr_change = as_builder.put("/api/v1/users/roles/hr", json!({"permissions": ["users.read"]})).await;
    assert_eq!(hr_change.status, 403, "a role holding more than the caller is not theirs to change");
    assert_eq!(owner.put("/api/v1/users/roles/admin", json!({"description": "x"})).await.status, 409);
    assert_eq!(owner.put("/api/v1/users/roles/nosuch", json!({"description": "x"})).await.status, 404);

    // A role change reaches the holders' live sessions.
    let auditor = owner.put("/api/v1/users/roles/narrow", json!({"permissions": ["users.read", "audit.read"]})).await;
    assert_eq!(auditor.status, 200, "{}", auditor.body);
    let narrow_id = add_user(&owner, tenant, "narrow", json!(["narrow"])).await;
    let as_narrow = sign_in_as(ctx, tenant, "narrow").await;
    assert_eq!(as_narrow.get("/api/v1/settings/audit-logs").await.status, 200);
    owner.put("/api/v1/users/roles/narrow", json!({"permissions": ["users.read"]})).await;
    let status =
        eventually_status(REVOCATION_WAIT, async || as_narrow.get("/api/v1/settings/audit-logs").await, 403).await;
    assert_eq!(status, 403, "a permission taken from a role is gone from its holders' sessions");
    assert!(!narrow_id.is_empty());

    // An API key acts within its creator's permissions, however it was scoped.
    let key = as_hr.post("/api/v1/users/api-keys", json!({"name": "hr-key"})).await;
    assert_eq!(key.status, 201, "{}", key.body);
    let as_key = ctx.api.bearer(key.body["secret"].as_str().unwrap());
    let by_key = as_key
        .post(
            "/api/v1/users",
            json!({"email": format!("k@{tenant}.example.com"), "password": MEMBER_PASSWORD, "roles": ["admin"]}),
        )
        .await;
    assert_eq!(by_key.status, 403, "{}", by_key.body);
}

/// Every way of taking access away works in another process (`elsewhere`, serving the
/// same store) within the revocation bound: demotion, disabling, sign-out, session
/// revoke, password change, password reset, API key revocation, deletion.
pub async fn revocation(ctx: &Ctx, elsewhere: &Ctx, tenant: &str) {
    let owner = ctx.new_tenant(tenant).await;
    let there = |api: &Api| Api { base: elsewhere.api.base.clone(), ..api.clone() };
    let member_id = add_user(&owner, tenant, "member", json!(["member"])).await;
    let member_email = format!("member@{tenant}.example.com");
    let config = format!("/api/v1/config/tenants/{tenant}/configs/branding");

    // Demotion: the other process stops allowing writes.
    let member = sign_in_as(ctx, tenant, "member").await;
    assert_eq!(there(&member).put(&config, json!({"value": {"v": 1}})).await.status, 200);
    assert_eq!(owner.put(&format!("/api/v1/users/{member_id}"), json!({"roles": ["viewer"]})).await.status, 200);
    let status =
        eventually_status(REVOCATION_WAIT, async || there(&member).put(&config, json!({"value": {"v": 2}})).await, 403)
            .await;
    assert_eq!(status, 403, "a demotion applies everywhere");
    assert_eq!(owner.put(&format!("/api/v1/users/{member_id}"), json!({"roles": ["member"]})).await.status, 200);

    // Disabling.
    assert_eq!(owner.put(&format!("/api/v1/users/{member_id}"), json!({"status": "disabled"})).await.status, 200);
    let status = eventually_status(REVOCATION_WAIT, async || there(&member).get("/api/v1/auth/me").await, 401).await;
    assert_eq!(status, 401, "disabling applies everywhere");
    assert_eq!(owner.put(&format!("/api/v1/users/{member_id}"), json!({"status": "active"})).await.status, 200);
    assert_eq!(there(&member).get("/api/v1/auth/me").await.status, 401, "enabling again does not revive old tokens");

    // Sign-out.
    let member = sign_in_as(ctx, tenant, "member").await;
    assert_eq!(there(&member).get("/api/v1/auth/me").await.status, 200);
    assert_eq!(member.post("/api/v1/auth/logout", json!({})).await.status, 204);
    let status = eventually_status(REVOCATION_WAIT, async || there(&member).get("/api/v1/auth/me").await, 401).await;
    assert_eq!(status, 401, "a sign-out applies everywhere");

    // Revoking one session from another.
    let first = sign_in_as(ctx, tenant, "member").await;
    let second = sign_in_as(ctx, tenant, "member").await;
    assert_eq!(there(&first).get("/api/v1/auth/me").await.status, 200);
    let sid = jwt_claims(first.token.as_deref().unwrap())["sid"].as_str().unwrap().to_string();
    assert_eq!(second.delete(&format!("/api/v1/auth/sessions/{sid}")).await.status, 204);
    let status = eventually_status(REVOCATION_WAIT, async || there(&first).get("/api/v1/auth/me").await, 401).await;
    assert_eq!(status, 401, "a revoked session ends everywhere");
    assert_eq!(there(&second).get("/api/v1/auth/me").await.status, 200, "the other session goes on");

    // Password change: every other token ends; the answer carries a new session.
    let other_device = sign_in_as(ctx, tenant, "member").await;
    let login =
        ctx.api.anonymous().post("/api/v1/auth/login", login_body(tenant, &member_email, MEMBER_PASSWORD)).await;
    let old_refresh = login.body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(there(&other_device).get("/api/v1/auth/me").await.status, 200);
    let wrong = second
        .post(
            "/api/v1/auth/password",
            json!({"current_password": "not my password 1", "new_password": "x y z w v u t s"}),
        )
        .await;
    assert_eq!((wrong.status, wrong.problem_fields()), (422, vec!["current_password".to_string()]));
    let new_password = "a changed password 77";
    let changed = second
        .post("/api/v1/auth/password", json!({"current_password": MEMBER_PASSWORD, "new_password": new_password}))
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let status =
        eventually_status(REVOCATION_WAIT, async || there(&other_device).get("/api/v1/auth/me").await, 401).await;
    assert_eq!(status, 401, "a password change ends other sessions everywhere");
    assert_eq!(there(&second).get("/api/v1/auth/me").await.status, 401, "and the one that changed it");
    let renewed = ctx.api.bearer(changed.body["access_token"].as_str().unwrap());
    assert_eq!(there(&renewed).get("/api/v1/auth/me").await.status, 200, "the new session works");
    let refresh = ctx.api.anonymous().post("/api/v1/auth/refresh", json!({"refresh_token": old_refresh})).await;
    assert_eq!(refresh.status, 401, "old refresh tokens end too");

    // Password reset.
    let before_reset = ctx.sign_in(tenant, &member_email, new_password).await;
    assert_eq!(there(&before_reset).get("/api/v1/auth/me").await.status, 200);
    let anonymous = ctx.api.anonymous();
    anonymous.post("/api/v1/auth/password-reset", json!({"tenant_id": tenant, "email": member_email})).await;
    let mail = ctx.mail_to(&member_email).into_iter().rfind(|m| m["subject"] == "Reset your password").unwrap();
    let token = Ctx::token_in(&mail, "prt.");
    let reset = anonymous
        .post("/api/v1/auth/password-reset/confirm", json!({"token": token, "new_password": "reset password 9999"}))
        .await;
    assert_eq!(reset.status, 204, "{}", reset.body);
    let status =
        eventually_status(REVOCATION_WAIT, async || there(&before_reset).get("/api/v1/auth/me").await, 401).await;
    assert_eq!(status, 401, "a reset ends every session everywhere");

    // API keys.
    let member = ctx.sign_in(tenant, &member_email, "reset password 9999").await;
    let key = member.post("/api/v1/users/api-keys", json!({"name": "ci"})).await;
    let secret = key.body["secret"].as_str().unwrap();
    let key_id = key.body["key"]["key_id"].as_str().unwrap();
    let as_key = elsewhere.api.bearer(secret);
    assert_eq!(as_key.get("/api/v1/auth/me").await.status, 200);
    assert_eq!(member.delete(&format!("/api/v1/users/api-keys/{key_id}")).await.status, 204);
    let status = eventually_status(REVOCATION_WAIT, async || as_key.get("/api/v1/auth/me").await, 401).await;
    assert_eq!(status, 401, "a revoked key stops everywhere");

    // Deletion.
    let member = ctx.sign_in(tenant, &member_email, "reset password 9999").await;
    assert_eq!(there(&member).get("/api/v1/auth/me").await.status, 200);
    assert_eq!(owner.delete(&format!("/api/v1/users/{member_id}")).await.status, 204);
    let status = eventually_status(REVOCATION_WAIT, async || there(&member).get("/api/v1/auth/me").await, 401).await;
    assert_eq!(status, 401, "a deleted user's tokens stop everywhere");
}

/// A reset confirmed while an attacker keeps refreshing a stolen session leaves that
/// session dead: no refresh race can drop the revocation.
pub async fn reset_beats_concurrent_refreshes(ctx: &Ctx, tenant: &str) {
    ctx.new_tenant(tenant).await;
    let email = Ctx::owner_email(tenant);
    let anonymous = ctx.api.anonymous();
    let stolen = anonymous.post("/api/v1/auth/login", login_body(tenant, &email, OWNER_PASSWORD)).await;
    let mut refresh = stolen.body["refresh_token"].as_str().unwrap().to_string();
    let mut access = stolen.body["access_token"].as_str().unwrap().to_string();
    anonymous.post("/api/v1/auth/password-reset", json!({"tenant_id": tenant, "email": email})).await;
    let mail = ctx.mail_to(&email).into_iter().rfind(|m| m["subject"] == "Reset your password").unwrap();
    let token = Ctx::token_in(&mail, "prt.");
    let confirm = {
        let anonymous = anonymous.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            anonymous
                .post(
                    "/api/v1/auth/password-reset/confirm",
                    json!({"token": token, "new_password": "taken back 123456"}),
                )
                .await
                .status
        })
    };
    // The attacker rotates as fast as they can, keeping the newest tokens.
    for _ in 0..40 {
        let rotated = anonymous.post("/api/v1/auth/refresh", json!({"refresh_token": refresh})).await;
        if rotated.status != 200 {
            break;
        }
        refresh = rotated.body["refresh_token"].as_str().unwrap().to_string();
        access = rotated.body["access_token"].as_str().unwrap().to_string();
    }
    assert_eq!(confirm.await.unwrap(), 204);
    assert_eq!(anonymous.post("/api/v1/auth/refresh", json!({"refresh_token": refresh})).await.status, 401);
    let attacker = ctx.api.bearer(&access);
    let status = eventually_status(REVOCATION_WAIT, async || attacker.get("/api/v1/auth/me").await, 401).await;
    assert_eq!(status, 401, "the attacker's newest access token is dead too");
    let sessions = ctx.sign_in(tenant, &email, "taken back 123456").await.get("/api/v1/auth/sessions").await;
    assert_eq!(sessions.body.as_array().unwrap().len(), 1, "only the new sign-in is live: {}", sessions.body);
    let session = &sessions.body[0];
    assert!(session["absolute_expires_at"].as_str().unwrap() > session["expires_at"].as_str().unwrap());
}

/// Parallel guesses are counted one by one before any password is checked; the delay
/// never exceeds the cap; a reset clears it. `checked_at_most` is how many of 30
/// parallel guesses may reach the password check: the 5 free attempts on a store that
/// serialises conditional writes (the embedded store, DynamoDB); moto does not (its
/// conditional writes race between its threads), so it gets some slack there.
pub async fn throttling(ctx: &Ctx, tenant: &str, checked_at_most: usize) {
    ctx.new_tenant(tenant).await;
    let email = Ctx::owner_email(tenant);
    let anonymous = ctx.api.anonymous();
    let guesses: Vec<_> = (0..30)
        .map(|i| {
            let anonymous = anonymous.clone();
            let body = login_body(tenant, &email, &format!("guess number {i:04}"));
            tokio::spawn(async move { anonymous.post("/api/v1/auth/login", body).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for guess in guesses {
        statuses.push(guess.await.unwrap());
    }
    let evaluated = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(evaluated + refused, 30, "{statuses:?}");
    assert!(evaluated <= checked_at_most, "at most the free attempts reach the password check: {statuses:?}");

    // On a slow store the first delays may be over, or nearly: guess on until a delay
    // with a few seconds left stands.
    for _ in 0..20 {
        let guess = anonymous.post("/api/v1/auth/login", login_body(tenant, &email, "one more guess 123")).await;
        let left: u64 = guess.header("retry-after").and_then(|v| v.parse().ok()).unwrap_or(0);
        if guess.status == 429 && left >= 3 {
            break;
        }
        if guess.status == 429 {
            tokio::time::sleep(Duration::from_secs(left)).await;
        }
    }
    let locked = anonymous.post("/api/v1/auth/login", login_body(tenant, &email, OWNER_PASSWORD)).await;
    assert_eq!(locked.status, 429, "even the right password waits out the delay");
    let wait: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "the delay is short, never an hour: {wait}");

    // A reset proves the owner, and clears the delay.
    anonymous.post("/api/v1/auth/password-reset", json!({"tenant_id": tenant, "email": email})).await;
    let mail = ctx.mail_to(&email).into_iter().rfind(|m| m["subject"] == "Reset your password").unwrap();
    let token = Ctx::token_in(&mail, "prt.");
    let reset = anonymous
        .post("/api/v1/auth/password-reset/confirm", json!({"token": token, "new_password": "owner password 5678"}))
        .await;
    assert_eq!(reset.status, 204);
    let back = anonymous.post("/api/v1/auth/login", login_body(tenant, &email, "owner password 5678")).await;
    assert_eq!(back.status, 200, "a reset clears the sign-in delay: {}", back.body);

    // Reset requests beyond a few per window send nothing more (same answer).
    for _ in 0..5 {
        let asked = anonymous.post("/api/v1/auth/password-reset", json!({"tenant_id": tenant, "email": email})).await;
        assert_eq!(asked.status, 202);
    }
    let sent = ctx.mail_to(&email).into_iter().filter(|m| m["subject"] == "Reset your password").count();
    assert!(sent <= 3 + 1, "reset mail is rate-limited: {sent}");

    // Many accounts guessed from one address: the address is delayed too.
    let mut last = 0;
    for i in 0..26 {
        let body = login_body(tenant, &format!("ghost{i}@example.com"), "wrong password 123");
        last = anonymous.post("/api/v1/auth/login", body).await.status;
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429, "one address guessing many accounts is delayed");
}

/// Cells a spreadsheet would run are escaped in the CSV export; a client's request id is
/// kept apart from the platform's.
pub async fn csv_injection(ctx: &Ctx, tenant: &str) {
    let owner = ctx.new_tenant(tenant).await;
    let planted_email = "=hyperlink(1)@evil.example.com";
    let planted_id = "=cmd|' /C calc'!A0";
    let failed = ctx
        .api
        .anonymous()
        .send(
            "POST",
            "/api/v1/auth/login",
            Some(login_body(tenant, planted_email, "wrong password 123")),
            &[("x-request-id", planted_id)],
        )
        .await;
    assert_eq!(failed.status, 401);
    let platform_id = failed.header("x-request-id").unwrap().to_string();
    assert_ne!(platform_id, planted_id, "the platform answers with its own request id");
    let entries = owner.get("/api/v1/settings/audit-logs?action=auth.login").await;
    let entry = entries.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["actor_email"] == planted_email)
        .expect("the failed sign-in is recorded")
        .clone();
    assert_eq!(entry["request_id"], platform_id.as_str());
    assert_eq!(entry["client_request_id"], planted_id);
    let csv = owner
        .client
        .get(format!("{}/api/v1/settings/audit-logs/export?format=csv&action=auth.login", owner.base))
        .bearer_auth(owner.token.as_deref().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.contains(&format!("'{planted_email}")), "{csv}");
    assert!(csv.contains("'=cmd|"), "{csv}");
    for line in csv.lines() {
        for cell in line.split(',') {
            let cell = cell.trim_start_matches('"');
            assert!(
                !cell.starts_with('=') && !cell.starts_with('@') && !cell.starts_with('+'),
                "raw formula in {line}"
            );
        }
    }
}

/// A user with more keys and teams than one transaction may hold is removed, whole.
pub async fn delete_user_with_many_keys_and_teams(ctx: &Ctx, tenant: &str) {
    let owner = ctx.new_tenant(tenant).await;
    let user_id = add_user(&owner, tenant, "busy", json!(["member"])).await;
    let busy = sign_in_as(ctx, tenant, "busy").await;
    let mut secrets = Vec::new();
    for i in 0..60 {
        let key = busy.post("/api/v1/users/api-keys", json!({"name": format!("key {i}")})).await;
        assert_eq!(key.status, 201, "{}", key.body);
        secrets.push(key.body["secret"].as_str().unwrap().to_string());
    }
    for i in 0..50 {
        let team = owner.post("/api/v1/users/teams", json!({"name": format!("team {i}"), "members": [user_id]})).await;
        assert_eq!(team.status, 201, "{}", team.body);
    }
    let deleted = owner.delete(&format!("/api/v1/users/{user_id}")).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert_eq!(owner.get(&format!("/api/v1/users/{user_id}")).await.status, 404);
    for secret in [&secrets[0], &secrets[59]] {
        let status =
            eventually_status(REVOCATION_WAIT, async || ctx.api.bearer(secret).get("/api/v1/auth/me").await, 401).await;
        assert_eq!(status, 401);
    }
    let teams = owner.get("/api/v1/users/teams?limit=200").await;
    let still =
        teams.body["items"].as_array().unwrap().iter().filter(|t| t["members"].to_string().contains(&user_id)).count();
    assert_eq!(still, 0, "no team keeps the removed user");
}

/// Every catalog read needs a credential, versions included.
pub async fn catalog_needs_credentials(ctx: &Ctx) {
    let anonymous = ctx.api.anonymous();
    for path in
        ["/api/v1/systems", "/api/v1/systems/crm", "/api/v1/systems/crm/versions", "/api/v1/systems/crm/versions/1.0.0"]
    {
        assert_eq!(anonymous.get(path).await.status, 401, "{path}");
        assert_eq!(ctx.admin().get(path).await.status, 200, "{path}");
    }
}

/// A document nested deeper than the store keeps is refused with a 422, never stored
/// half or answered with a 5xx.
pub async fn over_deep_documents_are_refused(ctx: &Ctx, tenant: &str) {
    let owner = ctx.new_tenant(tenant).await;
    assert_eq!(
        owner.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "sales"})).await.status,
        201
    );
    let mut deep = json!("bottom");
    for _ in 0..40 {
        deep = json!({ "down": deep });
    }
    let refused = owner
        .post(
            "/api/v1/systems/sales/records/opportunities",
            json!({"name": "Deep", "value": 1, "stage": "proposal", "notes": deep}),
        )
        .await;
    assert_eq!((refused.status, refused.problem_fields()), (422, vec!["body".to_string()]), "{}", refused.body);
    let config = owner.put(&format!("/api/v1/config/tenants/{tenant}/configs/deep"), json!({"value": deep})).await;
    assert_eq!(config.status, 422, "{}", config.body);
    let listed = owner.get("/api/v1/systems/sales/records/opportunities").await;
    assert!(listed.body["items"].as_array().unwrap().is_empty(), "nothing was stored");
}

/// Documents larger than what the store, the bus and the queue carry are refused with a
/// 422 naming the field: a record's data, an event's data, a rule's actions.
pub async fn oversize_documents_are_refused(ctx: &Ctx, tenant: &str) {
    let owner = ctx.new_tenant(tenant).await;
    assert_eq!(
        owner.post(&format!("/api/v1/tenants/{tenant}/systems"), json!({"system_id": "sales"})).await.status,
        201
    );
    let big = "x".repeat(70 * 1024);
    let record = owner
        .post(
            "/api/v1/systems/sales/records/opportunities",
            json!({"name": "Big", "value": 1, "stage": "proposal", "notes": big}),
        )
        .await;
    assert_eq!((record.status, record.problem_fields()), (422, vec!["data".to_string()]), "{}", record.body);
    let event = owner
        .post(
            "/api/v1/automation/events",
            json!({"module_type": "sales", "trigger_id": "deal_closed_won", "data": {"opportunity_name": big}}),
        )
        .await;
    assert_eq!((event.status, event.problem_fields()), (422, vec!["data".to_string()]), "{}", event.body);
    let rule = owner
        .post(
            "/api/v1/automation/rules",
            json!({"name": "Big", "module_type": "sales", "trigger_id": "deal_closed_won", "conditions": [],
                   "actions": [{"type": "send_notification", "parameters": {"recipient": "a@example.com", "message": big}}]}),
        )
        .await;
    assert_eq!((rule.status, rule.problem_fields()), (422, vec!["actions".to_string()]), "{}", rule.body);
    let listed = owner.get("/api/v1/systems/sales/records/opportunities").await;
    assert!(listed.body["items"].as_array().unwrap().is_empty(), "nothing was stored");
}

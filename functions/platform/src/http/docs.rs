//! `GET /openapi.json` and Swagger UI at `/docs`, served from assets vendored in the
//! binary (no CDN).

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::ApiRouter;

const DESCRIPTION: &str = "A multi-tenant platform for business management systems. A catalog of installable \
systems (CRM, Sales, Marketing, Support) with versions and dependencies; per-tenant installation, versioned \
configuration and records validated by each system's manifest; an event-driven automation engine (rules with \
EventBridge patterns, delays, schedules, native AWS events); identity (users, roles, teams, API keys, sessions); \
settings and feature flags (with the OpenFeature remote evaluation protocol); the audit trail; and everyday tools \
(tasks, notes, call logs, reviews, calendar events). Every operation but health, docs and sign-in takes a bearer \
credential; the tenant comes from it. Errors are RFC 9457 problem+json naming each failing field; lists take \
`limit` and `cursor`.";

/// The operations' groups, in the order the docs show them.
const TAGS: [(&str, &str); 13] = [
    (
        "catalog",
        "The global catalog of systems and their published versions (administered by the platform administrator)",
    ),
    (
        "tenant-systems",
        "Systems installed per tenant: install with dependencies, upgrade, roll back, uninstall, history",
    ),
    ("configuration", "Versioned configuration of the tenant and of its installed systems"),
    ("records", "Records of the tenant's installed systems, validated by the manifest; relations kept whole"),
    ("automation", "Rules, triggers, runs, events from outside and event sources"),
    ("tools", "Tasks, notes, call logs, reviews and calendar events"),
    ("settings", "Tenant and platform settings: versioned, schema-checked"),
    ("feature-flags", "Feature flags, their evaluation and the OpenFeature remote evaluation protocol (OFREP)"),
    ("auth", "Tenant onboarding, sign-in, tokens, sessions, passwords"),
    ("users", "Users, roles, permissions, teams and API keys"),
    ("audit", "The tenant's and the platform's audit trails"),
    ("operations", "The platform operator's tools: dead letters, sweeps, rate limits, catalog seeding"),
    ("health", "The service, liveness and readiness"),
];

/// Adds what the routes cannot say about themselves: title, version, contact, license,
/// tags, security schemes.
pub fn describe(mut api: OpenApi) -> OpenApi {
    api.info.title = "Business management platform".to_string();
    api.info.version = env!("CARGO_PKG_VERSION").to_string();
    api.info.description = Some(DESCRIPTION.to_string());
    api.info.contact = Some(utoipa::openapi::ContactBuilder::new().name(Some("Business Platform team")).build());
    api.info.license = Some(utoipa::openapi::LicenseBuilder::new().name("MIT").identifier(Some("MIT")).build());
    api.tags = Some(
        TAGS.iter()
            .map(|(name, description)| {
                utoipa::openapi::tag::TagBuilder::new().name(*name).description(Some(*description)).build()
            })
            .collect(),
    );
    let mut api = complete_error_answers(api);
    let components = api.components.get_or_insert_with(|| ComponentsBuilder::new().build());
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An access token from /api/v1/auth/login, an API key (bpk.…), or the platform administrator token",
                ))
                .build(),
        ),
    );
    api
}

/// What every operation can answer besides what it declares: the extractors refuse
/// before the handler runs (401 without credentials, 403 without the permission, 400 for
/// an unreadable query or body, 422 for invalid fields of a body). Every error answer is
/// declared as `application/problem+json`.
fn complete_error_answers(api: OpenApi) -> OpenApi {
    let mut doc = serde_json::to_value(&api).expect("the document serializes");
    let problem = serde_json::json!({"$ref": "#/components/schemas/Problem"});
    let answer = |description: &str| serde_json::json!({"description": description, "content": {"application/problem+json": {"schema": problem}}});
    if let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            for (method, operation) in item.iter_mut() {
                if !matches!(method.as_str(), "get" | "put" | "post" | "delete" | "patch") {
                    continue;
                }
                let secured = operation.get("security").and_then(|s| s.as_array()).is_some_and(|s| !s.is_empty());
                let has_body = operation.get("requestBody").is_some();
                let has_query = operation
                    .get("parameters")
                    .and_then(|p| p.as_array())
                    .is_some_and(|p| p.iter().any(|x| x["in"] == "query" || x["in"] == "header" || x["in"] == "path"));
                let Some(responses) = operation.get_mut("responses").and_then(|r| r.as_object_mut()) else { continue };
                for (status, response) in responses.iter_mut() {
                    if !status.starts_with('4') && !status.starts_with('5') {
                        continue;
                    }
                    if let Some(content) = response.get_mut("content").and_then(|c| c.as_object_mut()) {
                        if let Some(json) = content.remove("application/json") {
                            content.insert("application/problem+json".to_string(), json);
                        }
                    }
                }
                let mut add = |status: &str, description: &str| {
                    responses.entry(status.to_string()).or_insert_with(|| answer(description));
                };
                if secured {
                    add("401", "No valid credentials");
                    add("403", "The credentials lack the permission, or name another tenant");
                }
                if has_body || has_query {
                    add("400", "The path, query, headers or body cannot be read");
                }
                if has_body {
                    add("422", "A field of the body is invalid (each is named)");
                }
            }
        }
    }
    serde_json::from_value(doc).expect("the completed document is still a document")
}

/// Swagger UI at `/docs` and the document at `/openapi.json`.
pub fn routes() -> ApiRouter {
    Router::from(SwaggerUi::new("/docs").url("/openapi.json", super::openapi())).into()
}

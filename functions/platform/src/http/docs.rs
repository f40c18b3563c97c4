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

/// Swagger UI at `/docs` and the document at `/openapi.json`.
pub fn routes() -> ApiRouter {
    Router::from(SwaggerUi::new("/docs").url("/openapi.json", super::openapi())).into()
}

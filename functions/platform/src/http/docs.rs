//! `GET /openapi.json` and Swagger UI at `/docs`, served from assets vendored in the
//! binary (no CDN).
//!
//! The document is generated from the routes' own descriptions ([`super::openapi`]) and
//! kept in the repository as `docs/openapi.json`, which is what is served: no function
//! builds the description of every route at run time, and the docs function links no
//! handler. A test fails when the kept copy differs from what the routes describe.

use axum::Router;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{Operation, Parameter, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, OpenApi, Ref, RefOr};
use utoipa_swagger_ui::SwaggerUi;

use crate::app::page::MAX_LIMIT;

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
fn complete_error_answers(mut api: OpenApi) -> OpenApi {
    for item in api.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            complete_operation(operation);
        }
    }
    api
}

fn complete_operation(operation: &mut Operation) {
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = operation.request_body.is_some();
    let has_parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    for parameter in operation.parameters.iter_mut().flatten() {
        if let RefOr::T(parameter) = parameter {
            constrain(parameter);
        }
    }
    let responses = &mut operation.responses.responses;
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        if response.description.is_empty() {
            let reason = status.parse::<u16>().ok().and_then(|s| axum::http::StatusCode::from_u16(s).ok());
            response.description = reason.and_then(|s| s.canonical_reason()).unwrap_or("Answer").to_string();
        }
        if !status.starts_with('4') && !status.starts_with('5') {
            continue;
        }
        if let Some(json) = response.content.shift_remove("application/json") {
            response.content.insert(PROBLEM_JSON.to_string(), json);
        }
    }
    let mut add = |status: &str, description: &str| {
        responses.entry(status.to_string()).or_insert_with(|| {
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
            RefOr::T(ResponseBuilder::new().description(description).content(PROBLEM_JSON, content).build())
        });
    };
    if secured {
        add("401", "No valid credentials");
        add("403", "The credentials lack the permission, or name another tenant");
    }
    if has_body || has_parameters {
        add("400", "The path, query, headers or body cannot be read");
    }
    if has_body {
        add("422", "A field of the body is invalid (each is named)");
    }
}

/// The constraints every operation's shared parameters are checked against (declared
/// once here rather than at each of their dozens of operations).
fn constrain(parameter: &mut Parameter) {
    let schema = match (parameter.name.as_str(), &parameter.parameter_in) {
        ("limit", ParameterIn::Query) => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(MAX_LIMIT as u32))
            .description(Some("Items per page (default 50)")),
        ("If-Match", ParameterIn::Header) => ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r#"^(\*|(W/)?"[^"]*")$"#))
            .description(Some("`*` or the entity tag (ETag) of the version the change is based on")),
        _ => return,
    };
    parameter.schema = Some(RefOr::T(Schema::Object(schema.build())));
}

const PROBLEM_JSON: &str = "application/problem+json";

/// Swagger UI at `/docs` and the document at `/openapi.json`.
pub fn routes<R: super::RouteTable>() -> R {
    let ui = SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::from("/openapi.json"));
    R::from_bare(Router::from(ui).route("/openapi.json", axum::routing::get(document)))
}

/// The OpenAPI document as kept in the repository (generated by the test below), compact:
/// half the bytes of the indented form, which is most of what the docs function spends
/// answering `/openapi.json` (measured with the cold-start harness).
pub const DOCUMENT: &str = include_str!("../../../../docs/openapi.json");

async fn document() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    /// Regenerate the kept copy after changing a route's description:
    /// `UPDATE_OPENAPI=1 cargo test -p platform --lib kept_openapi_document`.
    #[test]
    fn kept_openapi_document_is_what_the_routes_describe() {
        let generated = super::super::openapi().to_json().expect("the document serializes");
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
            std::fs::write(path, &generated).expect("docs/openapi.json is writable");
            return;
        }
        let first_difference = generated.bytes().zip(super::DOCUMENT.bytes()).position(|(a, b)| a != b);
        assert!(
            generated == super::DOCUMENT,
            "docs/openapi.json differs from the routes' descriptions (first at byte {:?}); regenerate it with \
             UPDATE_OPENAPI=1 cargo test -p platform --lib kept_openapi_document",
            first_difference
        );
    }
}

//! `GET /openapi.json` and Swagger UI at `/docs`, served from assets vendored in the
//! binary (no CDN).

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::ApiRouter;

/// Adds what the routes cannot say about themselves: title, version, security schemes.
pub fn describe(mut api: OpenApi) -> OpenApi {
    api.info.title = "Business management platform".to_string();
    api.info.version = env!("CARGO_PKG_VERSION").to_string();
    api.info.description = Some(
        "Catalog of installable business systems, per-tenant installs and versioned configuration. \
         Errors are RFC 9457 problem+json; lists take `limit` and `cursor`."
            .to_string(),
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

//! `GET /`, `/health`, `/health/live`, `/health/ready` and `/readiness`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use super::{AppState, RouteTable};

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    pub version: &'static str,
    /// Each dependency and its state.
    #[schema(value_type = Object)]
    pub checks: serde_json::Map<String, serde_json::Value>,
}

pub fn routes<R: RouteTable>() -> R {
    R::empty()
        .with(routes!(service))
        .with(routes!(health))
        .with(routes!(live))
        .with(routes!(ready))
        .with(routes!(readiness))
}

async fn check(state: &AppState) -> (StatusCode, Json<Health>) {
    let mut checks = serde_json::Map::new();
    let store_ok = match state.services.store.ping().await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "store is not ready");
            false
        }
    };
    checks.insert("store".to_string(), serde_json::json!(if store_ok { "ok" } else { "unavailable" }));
    let status = if store_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let health =
        Health { status: if store_ok { "ok" } else { "unavailable" }, version: env!("CARGO_PKG_VERSION"), checks };
    (status, Json(health))
}

/// Overall health, with each dependency.
#[utoipa::path(get, path = "/health", tag = "health", responses(
    (status = 200, body = Health), (status = 503, body = Health)))]
async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    check(&state).await
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, body = Health)))]
async fn live() -> Json<Health> {
    Json(Health { status: "ok", version: env!("CARGO_PKG_VERSION"), checks: Default::default() })
}

/// Readiness: the store answers.
#[utoipa::path(get, path = "/health/ready", tag = "health", responses(
    (status = 200, body = Health), (status = 503, body = Health)))]
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    check(&state).await
}

/// Readiness under the path older clients use; the same answer as `/health/ready`.
#[utoipa::path(get, path = "/readiness", tag = "health", responses(
    (status = 200, body = Health), (status = 503, body = Health)))]
async fn readiness(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    check(&state).await
}

/// What answers at the root: the service, its version and where to go next.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Service {
    pub name: &'static str,
    pub version: &'static str,
    pub description: &'static str,
    /// Relative links: `docs` (Swagger UI), `openapi`, `health`, `readiness`.
    #[schema(value_type = Object)]
    pub links: serde_json::Map<String, serde_json::Value>,
}

/// The service's name, version and links.
#[utoipa::path(get, path = "/", tag = "health", responses((status = 200, body = Service)))]
async fn service() -> Json<Service> {
    let links = [("docs", "/docs"), ("openapi", "/openapi.json"), ("health", "/health"), ("readiness", "/readiness")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    Json(Service {
        name: "business-platform",
        version: env!("CARGO_PKG_VERSION"),
        description: "Multi-tenant platform for business management systems",
        links,
    })
}

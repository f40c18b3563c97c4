//! The HTTP API: one router per resource, each usable alone (one Lambda function per
//! resource) or merged into one app (the local server).

pub mod attachments;
pub mod audit;
pub mod auth;
pub mod automation;
pub mod calendar;
pub mod caller;
pub mod catalog;
pub mod config;
pub mod docs;
pub mod event_sources;
pub mod extract;
pub mod flags;
pub mod health;
pub mod operations;
pub mod problem;
pub mod records;
pub mod scope;
pub mod settings;
pub mod tenant_systems;
pub mod tenants;
pub mod tools;
pub mod users;

use axum::http::{header, HeaderName, HeaderValue, Request};
use axum::Router;
use tower_http::request_id::PropagateRequestIdLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::Services;
pub use caller::{need, Authorized, Caller};

#[derive(Clone)]
pub struct AppState {
    /// Shared: axum clones the state for every extractor of every request, so one
    /// reference count rather than each service's.
    pub services: std::sync::Arc<Services>,
}

/// A resource's routes with their OpenAPI description.
pub type ApiRouter = OpenApiRouter<AppState>;

const REQUEST_ID: HeaderName = HeaderName::from_static(caller::REQUEST_ID_HEADER);
const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static(caller::CLIENT_REQUEST_ID_HEADER);

/// Most characters of a client's request id that are kept.
const MAX_CLIENT_REQUEST_ID: usize = 128;

/// Every request gets the platform's own id (a ULID, echoed in the answer's
/// `X-Request-Id`); an `X-Request-Id` the client sent is kept apart, trimmed to printable
/// characters, as the client's word.
async fn assign_request_id(mut req: axum::extract::Request) -> axum::extract::Request {
    let headers = req.headers_mut();
    let client = headers.remove(&REQUEST_ID).and_then(|v| {
        let text: String = v
            .to_str()
            .ok()?
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .take(MAX_CLIENT_REQUEST_ID)
            .collect();
        (!text.trim().is_empty()).then_some(text)
    });
    headers.remove(&CLIENT_REQUEST_ID);
    if let Some(value) = client.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(CLIENT_REQUEST_ID, value);
    }
    let id = HeaderValue::from_str(&ulid::Ulid::generate().to_string()).expect("a ULID is a valid header value");
    headers.insert(REQUEST_ID, id);
    req
}

/// The automation function's routes: automation, and the operator's operations on it.
pub fn automation_function_routes() -> ApiRouter {
    automation::routes().merge(operations::routes()).merge(event_sources::routes())
}

/// Every resource's routes.
pub fn all_routes() -> ApiRouter {
    catalog::routes()
        .merge(tenant_systems::routes())
        .merge(config::routes())
        .merge(settings::routes())
        .merge(flags::routes())
        .merge(tools::notes_routes())
        .merge(tools::calls_routes())
        .merge(tools::reviews_routes())
        .merge(calendar::routes())
        .merge(attachments::routes())
        .merge(tenants::routes())
        .merge(auth::routes())
        .merge(users::routes())
        .merge(audit::routes())
        .merge(records::routes())
        .merge(automation_function_routes())
        .merge(health::routes())
}

/// The OpenAPI document of the whole product.
pub fn openapi() -> utoipa::openapi::OpenApi {
    docs::describe(all_routes().into_openapi())
}

/// Turns routes into a service: state, request ids, tracing, problem+json for unknown paths.
pub fn finish(routes: ApiRouter, state: AppState) -> Router {
    let (router, _) = routes.split_for_parts();
    router
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .with_state(state)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let request_id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id, tenant = tracing::field::Empty)
        }))
        .layer(axum::middleware::map_request(assign_request_id))
        .layer(axum::middleware::from_fn(measure))
}

/// Counts every answer and its latency by route template (never the raw path: ids would
/// make the labels unbounded), method and status.
async fn measure(request: Request<axum::body::Body>, next: axum::middleware::Next) -> axum::response::Response {
    let started = std::time::Instant::now();
    let route = request.extensions().get::<axum::extract::MatchedPath>().cloned();
    let method = request.method().clone();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", |m| m.as_str());
    crate::telemetry::request(route, &method, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// Several resources' routes, each served on its own state, in one service: how API
/// Gateway spreads one API over separate functions (each with its own credentials), for
/// running the HTTP scenarios function by function.
pub fn finish_each(parts: Vec<(ApiRouter, AppState)>) -> Router {
    let mut router = Router::new();
    for (routes, state) in parts {
        let (routes, _) = routes.split_for_parts();
        router = router.merge(routes.with_state(state));
    }
    router
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(axum::middleware::map_request(assign_request_id))
}

/// The whole product in one app (the local server), with the docs.
pub fn app(state: AppState) -> Router {
    finish(all_routes().merge(docs::routes()), state)
}

/// [`app`] with routes only the local server has (its file uploads and downloads).
pub fn app_with(state: AppState, local: Router<AppState>) -> Router {
    finish(all_routes().merge(docs::routes()).merge(ApiRouter::from(local)), state)
}

pub(crate) fn etag_header(version: u64) -> [(HeaderName, HeaderValue); 1] {
    let value = HeaderValue::from_str(&crate::domain::config::etag(version)).expect("an ETag is a valid header");
    [(header::ETAG, value)]
}

//! The HTTP API: one router per resource, each usable alone (one Lambda function per
//! resource) or merged into one app (the local server).

/// One group of handlers on one path, each declared with `#[utoipa::path]`, for
/// [`RouteTable::with`]: `routes!(list, create)`. With the OpenAPI description (utoipa's
/// `routes!`) when the table is an [`ApiRouter`], and bare (path and methods only) when it
/// is a [`BareRouter`], so a Lambda function never builds, nor links, the descriptions.
macro_rules! routes {
    ($($handler:ident),+ $(,)?) => {{
        struct Group;
        impl $crate::http::Handlers for Group {
            fn documented(self, router: $crate::http::ApiRouter) -> $crate::http::ApiRouter {
                router.routes(utoipa_axum::routes!($($handler),+))
            }
            fn bare(self, router: $crate::http::BareRouter) -> $crate::http::BareRouter {
                $(
                    let router = utoipa_axum::paste! {
                        $crate::http::bare_route(
                            router,
                            &<[<__path_ $handler>] as utoipa::Path>::path(),
                            &<[<__path_ $handler>] as utoipa::Path>::methods(),
                            $handler,
                        )
                    };
                )+
                router
            }
        }
        Group
    }};
}

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
mod framing;
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

/// Routes without their OpenAPI description: what a Lambda function serves.
pub type BareRouter = Router<AppState>;

/// A group of handlers that adds itself to either kind of route table (see `routes!`).
pub trait Handlers {
    fn documented(self, router: ApiRouter) -> ApiRouter;
    fn bare(self, router: BareRouter) -> BareRouter;
}

/// Routes declared once (`routes::<R>()` in each resource's module) and built with their
/// OpenAPI description ([`ApiRouter`]: the document, the docs function) or bare
/// ([`BareRouter`]: the Lambda functions and the local server). The descriptions are
/// schema trees utoipa builds at run time: measured with the cold-start harness, building
/// them was about half of the automation function's init, and their code was in every
/// function's binary.
pub trait RouteTable: Sized {
    fn empty() -> Self;
    fn with(self, handlers: impl Handlers) -> Self;
    fn merge(self, other: Self) -> Self;
    fn from_bare(router: BareRouter) -> Self;
    fn into_bare(self) -> BareRouter;
}

impl RouteTable for ApiRouter {
    fn empty() -> Self {
        OpenApiRouter::new()
    }
    fn with(self, handlers: impl Handlers) -> Self {
        handlers.documented(self)
    }
    fn merge(self, other: Self) -> Self {
        OpenApiRouter::merge(self, other)
    }
    fn from_bare(router: BareRouter) -> Self {
        OpenApiRouter::from(router)
    }
    fn into_bare(self) -> BareRouter {
        self.split_for_parts().0
    }
}

impl RouteTable for BareRouter {
    fn empty() -> Self {
        Router::new()
    }
    fn with(self, handlers: impl Handlers) -> Self {
        handlers.bare(self)
    }
    fn merge(self, other: Self) -> Self {
        Router::merge(self, other)
    }
    fn from_bare(router: BareRouter) -> Self {
        router
    }
    fn into_bare(self) -> BareRouter {
        self
    }
}

/// One handler at the path and methods its `#[utoipa::path]` declares (axum merges the
/// methods of one path).
pub fn bare_route<H, T>(
    router: BareRouter,
    path: &str,
    methods: &[utoipa::openapi::HttpMethod],
    handler: H,
) -> BareRouter
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    use utoipa_axum::PathItemExt;
    let method_router = methods.iter().fold(axum::routing::MethodRouter::new(), |router, method| {
        router.on(method.to_method_filter(), handler.clone())
    });
    router.route(if path.is_empty() { "/" } else { path }, method_router)
}

const REQUEST_ID: HeaderName = HeaderName::from_static(caller::REQUEST_ID_HEADER);

/// The automation function's routes: automation, and the operator's operations on it.
pub fn automation_function_routes<R: RouteTable>() -> R {
    automation::routes::<R>().merge(operations::routes()).merge(event_sources::routes())
}

/// Every resource's routes.
pub fn all_routes<R: RouteTable>() -> R {
    catalog::routes::<R>()
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
    docs::describe(all_routes::<ApiRouter>().into_openapi())
}

/// Turns routes into a service: state, request ids, tracing, problem+json for unknown paths.
pub fn finish(router: BareRouter, state: AppState) -> Router {
    router
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .with_state(state)
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let request_id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id, tenant = tracing::field::Empty)
        }))
        .layer(framing::FramingLayer)
}

/// Several resources' routes, each served on its own state, in one service: how API
/// Gateway spreads one API over separate functions (each with its own credentials), for
/// running the HTTP scenarios function by function.
pub fn finish_each(parts: Vec<(impl RouteTable, AppState)>) -> Router {
    let mut router = Router::new();
    for (routes, state) in parts {
        router = router.merge(routes.into_bare().with_state(state));
    }
    router
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(framing::FramingLayer)
}

/// The whole product in one app (the local server), with the docs.
pub fn app(state: AppState) -> Router {
    finish(all_routes::<BareRouter>().merge(docs::routes::<BareRouter>()), state)
}

/// [`app`] with routes only the local server has (its file uploads and downloads).
pub fn app_with(state: AppState, local: Router<AppState>) -> Router {
    finish(all_routes::<BareRouter>().merge(docs::routes::<BareRouter>()).merge(local), state)
}

pub(crate) fn etag_header(version: u64) -> [(HeaderName, HeaderValue); 1] {
    let value = HeaderValue::from_str(&crate::domain::config::etag(version)).expect("an ETag is a valid header");
    [(header::ETAG, value)]
}

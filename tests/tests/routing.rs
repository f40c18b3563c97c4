//! The routers Lambda functions serve are built without their OpenAPI descriptions
//! (`BareRouter`); the document comes from the same declarations (`ApiRouter`). Every
//! documented operation must be routed, with its method, by the bare router.

use std::sync::Arc;

use platform::adapters::embedded::EmbeddedStore;
use platform::adapters::mail_dir::DirectoryMailer;
use platform::app::Secrets;
use platform::http::{self, ApiRouter, BareRouter};
use platform::runtime::{state, Delivery, Seed};

/// Marks answers that came from a route (not the router's fallback).
async fn mark(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert("x-routed", axum::http::HeaderValue::from_static("1"));
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed_without_the_documentation() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("platform.redb")).unwrap());
    let secrets = Secrets {
        platform_admin_token: Some("routing-admin-token-0123456789abcdef".to_string()),
        jwt_secret: Some("a-test-signing-key-of-at-least-32-bytes".to_string()),
        webhook_secret: None,
        webhook_policy: Default::default(),
    };
    let mailer = Arc::new(DirectoryMailer::new(dir.path().join("mail")));
    let app_state = state(store, mailer, secrets, Delivery::Local, Seed::No, None).await.unwrap();
    let bare = http::all_routes::<BareRouter>().route_layer(axum::middleware::from_fn(mark));
    let base = blackbox::serve_in_process(http::finish(bare, app_state)).await;

    let document = http::all_routes::<ApiRouter>().into_openapi();
    let client = reqwest::Client::new();
    let mut checked = 0;
    for (path, item) in &document.paths.paths {
        let item = serde_json::to_value(item).unwrap();
        let concrete = with_placeholders(path);
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_none() {
                continue;
            }
            let answer = client
                .request(method.to_uppercase().parse().unwrap(), format!("{base}{concrete}"))
                .send()
                .await
                .unwrap();
            assert_ne!(answer.status(), 405, "{method} {path} is not routed with its method");
            assert!(answer.headers().contains_key("x-routed"), "{method} {path} fell through to the fallback");
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} operations were documented");
}

/// `/a/{id}/b` -> `/a/x/b`.
fn with_placeholders(path: &str) -> String {
    path.split('/')
        .map(|segment| if segment.starts_with('{') && segment.ends_with('}') { "x" } else { segment })
        .collect::<Vec<_>>()
        .join("/")
}

//! What every request goes through around its route, in one tower layer: the platform's
//! request id (assigned, and echoed on the answer), the client's own id kept apart, and the
//! request metrics. One layer with one boxed future, instead of three middlewares each
//! cloning the inner service and boxing its own future (measured with perf on the local
//! server's authenticated GET).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;

use super::caller::{CLIENT_REQUEST_ID_HEADER, REQUEST_ID_HEADER};

const REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);
const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static(CLIENT_REQUEST_ID_HEADER);

/// Most characters of a client's request id that are kept.
const MAX_CLIENT_REQUEST_ID: usize = 128;

/// The layer: see the module's description.
#[derive(Clone, Copy, Default)]
pub struct FramingLayer;

impl<S> tower::Layer<S> for FramingLayer {
    type Service = Framing<S>;

    fn layer(&self, inner: S) -> Framing<S> {
        Framing { inner }
    }
}

#[derive(Clone)]
pub struct Framing<S> {
    inner: S,
}

impl<S> tower::Service<Request> for Framing<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let started = Instant::now();
        let id = assign_request_id(request.headers_mut());
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = request.method().clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            // A handler that set its own id keeps it.
            response.headers_mut().entry(REQUEST_ID).or_insert(id);
            let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
            crate::telemetry::request(route, &method, response.status().as_u16(), started.elapsed().as_secs_f64());
            Ok(response)
        })
    }
}

/// Every request gets the platform's own id (a ULID, in `X-Request-Id` for the handlers and
/// on the answer); an `X-Request-Id` the client sent is kept apart, trimmed to printable
/// characters, as the client's word (`X-Client-Request-Id`). Answers the platform's id.
fn assign_request_id(headers: &mut HeaderMap) -> HeaderValue {
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
    let mut text = [0u8; ulid::ULID_LEN];
    let id = ulid::Ulid::generate().array_to_str(&mut text);
    let id = HeaderValue::from_str(id).expect("a ULID is a valid header value");
    headers.insert(REQUEST_ID, id.clone());
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_id_is_kept_apart_and_trimmed_to_printable_characters() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("client\t-id"));
        let id = assign_request_id(&mut headers);
        assert_eq!(headers.get(&CLIENT_REQUEST_ID).unwrap(), "client-id");
        assert_eq!(headers.get(&REQUEST_ID), Some(&id));
        assert!(ulid::Ulid::from_string(id.to_str().unwrap()).is_ok(), "the platform's id is a ULID: {id:?}");
    }

    #[tokio::test]
    async fn the_answer_carries_the_platform_id_unless_the_handler_set_its_own() {
        use tower::{Layer, Service};
        let mut plain = FramingLayer.layer(tower::service_fn(|_: Request| async {
            Ok::<_, Infallible>(Response::new(axum::body::Body::empty()))
        }));
        let answer = plain.call(Request::new(axum::body::Body::empty())).await.expect("answer");
        let id = answer.headers().get(&REQUEST_ID).expect("the platform's id").to_str().expect("text");
        assert!(ulid::Ulid::from_string(id).is_ok(), "{id}");
        let mut own = FramingLayer.layer(tower::service_fn(|_: Request| async {
            let mut response = Response::new(axum::body::Body::empty());
            response.headers_mut().insert(REQUEST_ID, HeaderValue::from_static("handler-id"));
            Ok::<_, Infallible>(response)
        }));
        let answer = own.call(Request::new(axum::body::Body::empty())).await.expect("answer");
        assert_eq!(answer.headers().get(&REQUEST_ID).expect("an id"), "handler-id");
    }

    #[test]
    fn a_client_id_of_nothing_printable_is_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("   "));
        headers.insert(CLIENT_REQUEST_ID, HeaderValue::from_static("forged"));
        assign_request_id(&mut headers);
        assert!(headers.get(&CLIENT_REQUEST_ID).is_none(), "neither the blank id nor a sent X-Client-Request-Id");
    }
}

//! The HTTP client every AWS SDK client sends through: reqwest (hyper, rustls on ring),
//! the client the webhooks already use, with Mozilla's root certificates compiled in
//! (webpki-roots).
//!
//! Why not the SDK's own client (aws-smithy-http-client): it loads the system's trust
//! roots on the first AWS call (rustls-native-certs: the CA bundle, or every file of
//! `SSL_CERT_DIR`) and parses each certificate again for every connector. Measured with
//! the cold-start harness on the stages, that is 2-3 ms of the first invocation with the
//! system bundle and 7-8 ms with a certificate directory, every cold start; the compiled-in
//! roots cost nothing at run time. The published reqwest adapters for the SDK are built on
//! reqwest 0.13, whose rustls verifier loads the platform's roots again.
//!
//! What the SDK expects of its client, kept here: its connect and read timeouts (one
//! reqwest client, so one connection pool, per pair of them), no redirects followed, no
//! proxy from the environment, and errors classified so its retry strategy retries what
//! is transient (an I/O failure or a timeout) and not what is not (a failed handshake, a
//! bad request). The SDK's connection poisoning (by default it closes the connection a
//! transient error came on) is honoured a size larger: reqwest gives no handle to one
//! connection, so poisoning replaces the connector's pool, and the next requests open new
//! connections. The Lambda functions' configuration keeps connections instead
//! ([`crate::runtime::aws_retry_config`], as the SDK's newer retry specification does).
//! reqwest parses the request's URL, which drops `.` and `..` path segments: no object
//! key the platform writes has one.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::connection::{CaptureSmithyConnection, ConnectionMetadata};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

/// (connect timeout, read timeout) the SDK asked for.
type Timeouts = (Option<Duration>, Option<Duration>);

/// The SDK's HTTP client: one connector per timeout pair, built on first use.
#[derive(Debug, Default)]
pub struct SdkHttpClient {
    connectors: Mutex<Vec<(Timeouts, SharedHttpConnector)>>,
}

impl HttpClient for SdkHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        let timeouts = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, connector)) = connectors.iter().find(|(t, _)| *t == timeouts) {
            return connector.clone();
        }
        let connector = SharedHttpConnector::new(Connector::new(timeouts));
        connectors.push((timeouts, connector.clone()));
        connector
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        Some(ConnectorMetadata::new("reqwest", Some(Cow::Borrowed("0.12"))))
    }
}

/// One reqwest client (its connection pool) with the SDK's timeouts; poisoning replaces it.
#[derive(Debug, Clone)]
struct Connector {
    timeouts: Timeouts,
    pool: Arc<Mutex<Pool>>,
}

/// The current client and how many times it was replaced.
#[derive(Debug)]
struct Pool {
    generation: u64,
    client: Result<reqwest::Client, String>,
}

impl Connector {
    fn new(timeouts: Timeouts) -> Connector {
        Connector { timeouts, pool: Arc::new(Mutex::new(Pool { generation: 0, client: Self::client(timeouts) })) }
    }

    fn client((connect, read): Timeouts) -> Result<reqwest::Client, String> {
        let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy();
        if let Some(connect) = connect {
            builder = builder.connect_timeout(connect);
        }
        if let Some(read) = read {
            builder = builder.read_timeout(read);
        }
        builder.build().map_err(|e| format!("the HTTP client could not be built: {e}"))
    }

    /// Tells the SDK how to poison this request's connection: a new pool for the next
    /// requests (the old one closes its connections as its last requests finish). Only
    /// the pool the request went out on is replaced: a late poison from an older pool's
    /// request leaves a newer pool (and the connections its retries opened) alone.
    fn offer_poisoning(&self, request: &HttpRequest, generation: u64) {
        let Some(capture) = request.extension::<CaptureSmithyConnection>() else { return };
        let (pool, timeouts) = (self.pool.clone(), self.timeouts);
        capture.set_connection_retriever(move || {
            let pool = pool.clone();
            let poison = move || {
                let fresh = Connector::client(timeouts);
                let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
                if pool.generation == generation {
                    *pool = Pool { generation: generation + 1, client: fresh };
                }
            };
            Some(ConnectionMetadata::builder().proxied(false).poison_fn(poison).build())
        });
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (generation, client) = {
            let pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            (pool.generation, pool.client.clone())
        };
        self.offer_poisoning(&request, generation);
        HttpConnectorFuture::new(async move {
            let client = client.map_err(|e| ConnectorError::other(e.into(), None))?;
            let request = request.try_into_http1x().map_err(|e| ConnectorError::user(e.into()))?.map(body_of);
            let request = reqwest::Request::try_from(request).map_err(|e| ConnectorError::user(e.into()))?;
            let response = client.execute(request).await.map_err(connector_error)?;
            let response = http::Response::from(response).map(SdkBody::from_body_1_x);
            HttpResponse::try_from(response).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// The SDK's body is read through, even when its bytes are in memory: the SDK watches the
/// upload's progress by those reads (its stalled-stream protection), and takes a body
/// never read for an upload stalled once the answer takes longer than its grace period.
/// The SDK sets the length header, so the body still goes out with its length.
fn body_of(body: SdkBody) -> reqwest::Body {
    reqwest::Body::wrap(body)
}

/// What the SDK's retry strategy makes of a failed exchange: a timeout or an I/O failure
/// (refused, reset, closed early) is transient; a failed TLS handshake (an untrusted or
/// invalid certificate) or a request reqwest cannot send is not.
fn connector_error(error: reqwest::Error) -> ConnectorError {
    if error.is_timeout() {
        ConnectorError::timeout(error.into())
    } else if (error.is_connect() && tls_failure(&error)) || error.is_builder() {
        ConnectorError::other(error.into(), None)
    } else if error.is_connect() || error.is_request() || error.is_body() {
        ConnectorError::io(error.into())
    } else {
        ConnectorError::other(error.into(), None)
    }
}

/// rustls reports a failed handshake as an I/O error of kind `InvalidData` (hyper wraps it
/// in another I/O error, whose `source()` skips it: `get_ref()` reaches it).
fn tls_failure(error: &(dyn StdError + 'static)) -> bool {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = cause {
        cause = match e.downcast_ref::<std::io::Error>() {
            Some(io) if io.kind() == std::io::ErrorKind::InvalidData => return true,
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn connector(connect: Option<Duration>, read: Option<Duration>) -> Connector {
        Connector::new((connect, read))
    }

    fn post(url: &str, body: &str) -> HttpRequest {
        let request = http::Request::builder()
            .method("POST")
            .uri(url)
            .header("x-amz-target", "DynamoDB_20120810.GetItem")
            .header("content-length", body.len().to_string())
            .body(SdkBody::from(body.to_string()))
            .expect("request");
        HttpRequest::try_from(request).expect("smithy request")
    }

    /// A server that answers its connections in turn, one request each, with `answers`,
    /// and hands back the requests it read.
    async fn serving(answers: Vec<&'static str>) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("address"));
        let server = tokio::spawn(async move {
            let mut requests = Vec::new();
            for answer in answers {
                let (mut socket, _) = listener.accept().await.expect("accept");
                requests.push(read_request(&mut socket).await);
                socket.write_all(answer.as_bytes()).await.expect("write");
            }
            requests
        });
        (url, server)
    }

    /// One request, its head and the body its `content-length` announces.
    async fn read_request(socket: &mut tokio::net::TcpStream) -> String {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if seen.len() >= end + 4 + length {
                    return String::from_utf8_lossy(&seen).to_string();
                }
            }
            let n = socket.read(&mut buf).await.expect("read");
            assert!(n > 0, "the client closed before sending its request");
            seen.extend_from_slice(&buf[..n]);
        }
    }

    async fn one_answer(answer: &'static str) -> (String, impl std::future::Future<Output = String>) {
        let (url, server) = serving(vec![answer]).await;
        (url, async move { server.await.expect("server").remove(0) })
    }

    #[tokio::test]
    async fn a_request_goes_out_with_its_headers_and_body_and_the_answer_comes_back_whole() {
        let (url, server) =
            one_answer("HTTP/1.1 200 OK\r\ncontent-length: 9\r\nx-amzn-requestid: r-1\r\n\r\n{\"a\": 1}\n").await;
        let response = connector(None, None).call(post(&url, "{}")).await.expect("answer");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers().get("x-amzn-requestid"), Some("r-1"));
        let body = aws_smithy_types::byte_stream::ByteStream::new(response.into_body()).collect().await.expect("body");
        assert_eq!(body.into_bytes().as_ref(), b"{\"a\": 1}\n");
        let seen = server.await.to_ascii_lowercase();
        assert!(seen.starts_with("post / http/1.1\r\n"), "{seen}");
        assert!(seen.contains("x-amz-target: dynamodb_20120810.getitem\r\n"), "{seen}");
        assert!(seen.ends_with("\r\n\r\n{}"), "{seen}");
    }

    #[tokio::test]
    async fn a_redirect_is_handed_to_the_sdk_not_followed() {
        let (url, server) =
            one_answer("HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:9/\r\ncontent-length: 0\r\n\r\n")
                .await;
        let response = connector(None, None).call(post(&url, "{}")).await.expect("answer");
        assert_eq!(response.status().as_u16(), 307);
        server.await;
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_io_error_the_sdk_retries() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("address"));
        drop(listener);
        let error = connector(None, None).call(post(&url, "{}")).await.expect_err("refused");
        assert!(error.is_io(), "{error:?}");
    }

    #[tokio::test]
    async fn a_server_silent_past_the_read_timeout_is_a_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("address"));
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.expect("accept");
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(socket);
        });
        let error =
            connector(None, Some(Duration::from_millis(200))).call(post(&url, "{}")).await.expect_err("timed out");
        assert!(error.is_timeout(), "{error:?}");
        server.abort();
    }

    #[tokio::test]
    async fn a_failed_tls_handshake_is_not_retried_as_transient() {
        // A server that answers the TLS hello with plain text: the handshake fails.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("https://localhost:{}/", listener.local_addr().expect("address").port());
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
        });
        let error = connector(None, None).call(post(&url, "{}")).await.expect_err("no TLS");
        assert!(!error.is_io() && !error.is_timeout(), "{error:?}");
        server.await.expect("server");
    }

    /// An SDK body that counts the bytes read through it.
    struct Watched {
        inner: SdkBody,
        read: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl http_body::Body for Watched {
        type Data = <SdkBody as http_body::Body>::Data;
        type Error = <SdkBody as http_body::Body>::Error;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            let frame = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
            if let std::task::Poll::Ready(Some(Ok(data))) = &frame {
                let n = data.data_ref().map_or(0, |d| d.len());
                self.read.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
            }
            frame
        }
    }

    #[tokio::test]
    async fn an_in_memory_body_is_read_through_the_sdk_body_so_the_sdk_sees_the_upload_progress() {
        let (url, server) = one_answer("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = read.clone();
        let mut request = post(&url, "{}");
        let body = std::mem::replace(request.body_mut(), SdkBody::taken());
        *request.body_mut() =
            body.map_preserve_contents(move |inner| SdkBody::from_body_1_x(Watched { inner, read: counter.clone() }));
        assert!(request.body().bytes().is_some(), "the body keeps its bytes in memory");
        let response = connector(None, None).call(request).await.expect("answer");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(read.load(std::sync::atomic::Ordering::SeqCst), 2, "the body's 2 bytes were read through it");
        assert!(server.await.ends_with("\r\n\r\n{}"));
    }

    /// Counts the error events logged while it is the thread's subscriber.
    struct ErrorEvents(std::sync::Arc<Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ErrorEvents {
        fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            if *event.metadata().level() == tracing::Level::ERROR {
                self.0.lock().expect("lock").push(event.metadata().target().to_string());
            }
        }
    }

    /// Error events logged on this thread from now on.
    fn error_events() -> (std::sync::Arc<Mutex<Vec<String>>>, tracing::subscriber::DefaultGuard) {
        use tracing_subscriber::layer::SubscriberExt;
        let errors = std::sync::Arc::new(Mutex::new(Vec::new()));
        let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(ErrorEvents(errors.clone())));
        (errors, guard)
    }

    /// A DynamoDB GetItem through this client at `url`, with `retries`.
    async fn get_item(url: String, retries: aws_smithy_types::retry::RetryConfig) -> bool {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new("key", "secret", None, None, "test"))
            .http_client(crate::runtime::aws_http_client())
            .retry_config(retries)
            .endpoint_url(url)
            .build();
        let got = aws_sdk_dynamodb::Client::from_conf(config)
            .get_item()
            .table_name("t")
            .key("PK", aws_sdk_dynamodb::types::AttributeValue::S("a".into()))
            .send()
            .await;
        got.is_ok_and(|g| g.item.is_none())
    }

    const EMPTY_ITEM: &str =
        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";

    #[tokio::test]
    async fn a_transient_answer_is_retried_without_an_error_logged() {
        let (errors, _logs) = error_events();
        let (url, server) = serving(vec![
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            EMPTY_ITEM,
        ])
        .await;
        assert!(get_item(url, crate::runtime::aws_retry_config()).await, "the 503 was retried and the retry answered");
        assert_eq!(*errors.lock().expect("lock"), Vec::<String>::new(), "no error logged for a retried 503");
        assert_eq!(server.await.expect("server").len(), 2, "the first attempt and its retry");
    }

    /// With the SDK's default retries (connection poisoning on), the retry after a 503 goes
    /// out on a new connection, not the one the 503 came on, and no error is logged.
    #[tokio::test]
    async fn a_transient_answer_poisons_its_connection_when_the_sdk_asks() {
        let (errors, _logs) = error_events();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("address"));
        let server = tokio::spawn(async move {
            let (mut first, _) = listener.accept().await.expect("accept");
            read_request(&mut first).await;
            // Kept open: a client reusing it for the retry would wait here for ever.
            first.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n").await.expect("write");
            let (mut second, _) = listener.accept().await.expect("a second connection");
            read_request(&mut second).await;
            second.write_all(EMPTY_ITEM.as_bytes()).await.expect("write");
            first
        });
        let retries = aws_smithy_types::retry::RetryConfig::standard();
        let got = tokio::time::timeout(Duration::from_secs(10), get_item(url, retries)).await;
        assert_eq!(got, Ok(true), "the retry was answered on a new connection");
        assert_eq!(*errors.lock().expect("lock"), Vec::<String>::new(), "no error logged for a retried 503");
        server.await.expect("server");
    }

    /// The SDK's handle on a request sent now through `connector` (what its
    /// connection-poisoning interceptor keeps).
    fn sent(connector: &Connector) -> CaptureSmithyConnection {
        let capture = CaptureSmithyConnection::new();
        let mut request = post("http://127.0.0.1:9/", "{}");
        request.add_extension(capture.clone());
        let generation = connector.pool.lock().expect("lock").generation;
        connector.offer_poisoning(&request, generation);
        capture
    }

    #[test]
    fn a_late_poison_leaves_a_newer_pool_alone() {
        let connector = connector(None, None);
        let generation = || connector.pool.lock().expect("lock").generation;
        let (early, late) = (sent(&connector), sent(&connector));
        early.get().expect("connection metadata").poison();
        assert_eq!(generation(), 1, "the poisoned pool is replaced");
        late.get().expect("connection metadata").poison();
        assert_eq!(generation(), 1, "a poison from the replaced pool leaves the new one");
        sent(&connector).get().expect("connection metadata").poison();
        assert_eq!(generation(), 2, "a request on the new pool can poison it");
    }

    #[test]
    fn one_connector_serves_every_client_with_the_same_timeouts() {
        let client = SdkHttpClient::default();
        let components = aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder::for_tests()
            .build()
            .expect("components");
        let short = HttpConnectorSettings::builder().connect_timeout(Duration::from_secs(1)).build();
        let long = HttpConnectorSettings::builder().connect_timeout(Duration::from_secs(3)).build();
        client.http_connector(&short, &components);
        client.http_connector(&short, &components);
        client.http_connector(&long, &components);
        assert_eq!(client.connectors.lock().expect("lock").len(), 2);
    }
}

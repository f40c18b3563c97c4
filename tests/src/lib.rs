//! Test support: real servers on loopback (moto for DynamoDB, the local server binary),
//! free ports, and an HTTP client that speaks to them.

pub mod automation;
pub mod identity;
pub mod scenarios;
pub mod system;
pub mod trust;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::Credentials;
use platform::adapters::dynamo::DynamoStore;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind loopback").local_addr().expect("local addr").port()
}

/// Waits until something accepts TCP connections on the port.
pub fn wait_for_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A child process killed when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A moto server (`moto_server`, pip package `moto[server]`) on a free loopback port.
pub struct Moto {
    pub endpoint: String,
    _process: Guard,
}

impl Moto {
    pub fn start() -> Moto {
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server must be installed: pip install 'moto[server]'");
        let guard = Guard(child);
        assert!(wait_for_port(port, Duration::from_secs(30)), "moto_server did not start");
        Moto { endpoint: format!("http://127.0.0.1:{port}"), _process: guard }
    }

    /// The SDK configuration of moto's clients: the platform's own (its HTTP client and
    /// retries) with moto's endpoint and test credentials.
    pub fn sdk(&self) -> aws_types::SdkConfig {
        self.sdk_as(Credentials::new("test", "test", None, None, "moto"))
    }

    /// [`Moto::sdk`] with other credentials (an IAM user's, an assumed role's).
    pub fn sdk_as(&self, credentials: Credentials) -> aws_types::SdkConfig {
        platform::runtime::sdk_config("us-east-1", credentials, Some(self.endpoint.clone()))
    }

    pub fn dynamodb_client(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk())
    }

    pub fn streams_client(&self) -> aws_sdk_dynamodbstreams::Client {
        aws_sdk_dynamodbstreams::Client::new(&self.sdk())
    }

    pub fn sesv2_client(&self) -> aws_sdk_sesv2::Client {
        aws_sdk_sesv2::Client::new(&self.sdk())
    }

    pub fn sqs_client(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk())
    }

    pub fn eventbridge_client(&self) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&self.sdk())
    }

    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&self.sdk()).force_path_style(true).build())
    }

    /// A bucket on moto and the platform's file storage over it.
    pub async fn files(&self, bucket: &str) -> Arc<platform::adapters::s3::S3Blobs> {
        self.s3_client().create_bucket().bucket(bucket).send().await.expect("the bucket is created");
        Arc::new(platform::adapters::s3::S3Blobs::new(self.s3_client(), bucket.to_string()))
    }

    pub fn scheduler_client(&self) -> aws_sdk_scheduler::Client {
        aws_sdk_scheduler::Client::new(&self.sdk())
    }

    /// Timers as Scheduler schedules in a new group `group`, aimed at the bus `bus`.
    pub async fn timers(&self, group: &str, bus: &str) -> Arc<platform::adapters::scheduler::SchedulerTimers> {
        let client = self.scheduler_client();
        client.create_schedule_group().name(group).send().await.expect("a schedule group");
        let target = platform::adapters::scheduler::SchedulerTarget {
            group: group.to_string(),
            bus_arn: format!("arn:aws:events:us-east-1:123456789012:event-bus/{bus}"),
            role_arn: "arn:aws:iam::123456789012:role/platform-scheduler".to_string(),
        };
        Arc::new(platform::adapters::scheduler::SchedulerTimers::new(client, target))
    }

    pub fn secrets_client(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk())
    }

    /// Stores a secret in Secrets Manager; returns its ARN.
    pub async fn secret(&self, name: &str, value: &str) -> String {
        self.secrets_client().create_secret().name(name).secret_string(value).send().await.unwrap().arn.unwrap()
    }

    /// A custom bus whose rule routes every `platform.*` event to a new SQS queue (what the
    /// template does with the evaluator), and an action queue. Returns (bus tap url, action queue url).
    /// The ARN of the queue at `url`.
    pub async fn queue_arn(&self, url: &str) -> String {
        self.sqs_client()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone()
    }

    pub async fn bus_and_queues(&self, bus: &str) -> (String, String) {
        let sqs = self.sqs_client();
        let tap = sqs.create_queue().queue_name(format!("{bus}-tap")).send().await.unwrap().queue_url.unwrap();
        let actions = sqs.create_queue().queue_name(format!("{bus}-actions")).send().await.unwrap().queue_url.unwrap();
        let tap_arn = self.queue_arn(&tap).await;
        let events = self.eventbridge_client();
        events.create_event_bus().name(bus).send().await.unwrap();
        events
            .put_rule()
            .name("to-evaluator")
            .event_bus_name(bus)
            .event_pattern(r#"{"source": [{"prefix": "platform."}]}"#)
            .send()
            .await
            .unwrap();
        let target = aws_sdk_eventbridge::types::Target::builder().id("evaluator").arn(tap_arn).build().unwrap();
        events.put_targets().rule("to-evaluator").event_bus_name(bus).targets(target).send().await.unwrap();
        (tap, actions)
    }

    /// A new table, created as the SAM template declares it.
    pub async fn new_table(&self, name: &str) -> Arc<DynamoStore> {
        let store = DynamoStore::new(self.dynamodb_client(), name);
        store.create_table().await.expect("create table on moto");
        Arc::new(store)
    }
}

/// Every message now on a queue, as received (waits a little for the first).
pub async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let mut out = Vec::new();
    for _ in 0..20 {
        let got = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() && !out.is_empty() {
            break;
        }
        out.extend(messages);
        if out.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    out
}

/// Where cargo put this workspace's binaries (next to the test executable's `deps/`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target profile directory");
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace --bins` first", path.display());
    path
}

/// The local server binary on a free port over a data folder.
pub struct LocalServer {
    pub base: String,
    pub admin_token: String,
    pub data_dir: PathBuf,
    process: Option<Guard>,
}

impl LocalServer {
    pub fn start(data_dir: &Path) -> LocalServer {
        Self::start_with(data_dir, &[])
    }

    /// The local server with extra environment variables.
    pub fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> LocalServer {
        let port = free_port();
        let admin_token = "local-test-admin-token-0123456789abcdef".to_string();
        let child = Command::new(binary("local-server"))
            .envs(env.iter().copied())
            .env("PORT", port.to_string())
            .env("DATA_DIR", data_dir)
            .env("PLATFORM_ADMIN_TOKEN", &admin_token)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start local-server");
        let guard = Guard(child);
        assert!(wait_for_port(port, Duration::from_secs(30)), "local-server did not start");
        LocalServer {
            base: format!("http://127.0.0.1:{port}"),
            admin_token,
            data_dir: data_dir.to_path_buf(),
            process: Some(guard),
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut guard) = self.process.take() {
            guard.0.kill().expect("kill local-server");
            guard.0.wait().expect("reap local-server");
        }
    }
}

/// An axum app served in this process on a free loopback port (for running the HTTP
/// scenarios over any store, DynamoDB on moto included).
pub async fn serve_in_process(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{addr}")
}

/// A small HTTP client for the API: bearer token, tenant header, JSON in and out.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
    pub tenant: Option<String>,
    pub token: Option<String>,
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
    /// The body as text (for answers that are not JSON).
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `field`s a problem+json answer names.
    pub fn problem_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| errors.iter().filter_map(|e| e["field"].as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api { base: base.to_string(), client: reqwest::Client::new(), tenant: None, token: None }
    }

    pub fn tenant(&self, tenant: &str) -> Api {
        Api { tenant: Some(tenant.to_string()), ..self.clone() }
    }

    /// The same client with a bearer credential (access token, API key or admin token).
    pub fn bearer(&self, token: &str) -> Api {
        Api { token: Some(token.to_string()), ..self.clone() }
    }

    /// Without any credential or tenant header.
    pub fn anonymous(&self) -> Api {
        Api { token: None, tenant: None, ..self.clone() }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(tenant) = &self.tenant {
            request = request.header("x-tenant-id", tenant);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request reaches the server");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("response body");
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        if status >= 400 {
            let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
            assert_eq!(content_type, "application/problem+json", "error answers are problem+json: {body}");
            assert_eq!(body["status"], status, "problem status matches: {body}");
        }
        Answer { status, headers, body, text: String::from_utf8_lossy(&bytes).into_owned() }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> Answer {
        self.send("POST", path, Some(body), &[]).await
    }

    pub async fn put(&self, path: &str, body: serde_json::Value) -> Answer {
        self.send("PUT", path, Some(body), &[]).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send("DELETE", path, None, &[]).await
    }
}

/// What a scenario needs: the anonymous client, the platform administrator token and
/// where the server's mail lands.
#[derive(Clone)]
pub struct Ctx {
    pub api: Api,
    pub admin_token: String,
    pub mail_dir: PathBuf,
}

pub const OWNER_PASSWORD: &str = "owner password 1234";

impl Ctx {
    pub fn admin(&self) -> Api {
        self.api.bearer(&self.admin_token)
    }

    pub fn owner_email(tenant: &str) -> String {
        format!("owner@{tenant}.example.com")
    }

    /// Creates the tenant (platform administrator), signs its owner in, and returns a
    /// client carrying the owner's access token and the tenant header.
    pub async fn new_tenant(&self, tenant: &str) -> Api {
        let created = self
            .admin()
            .post(
                "/api/v1/auth/initialize-tenant",
                serde_json::json!({"tenant_id": tenant, "name": format!("{tenant} Inc."), "admin_email": Self::owner_email(tenant), "admin_password": OWNER_PASSWORD}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        self.sign_in(tenant, &Self::owner_email(tenant), OWNER_PASSWORD).await
    }

    pub async fn sign_in(&self, tenant: &str, email: &str, password: &str) -> Api {
        let login = self
            .api
            .anonymous()
            .post("/api/v1/auth/login", serde_json::json!({"tenant_id": tenant, "email": email, "password": password}))
            .await;
        assert_eq!(login.status, 200, "{}", login.body);
        self.api.bearer(login.body["access_token"].as_str().unwrap()).tenant(tenant)
    }

    /// Every message the server sent to `to`, oldest first.
    pub fn mail_to(&self, to: &str) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.mail_dir)
            .map(|dir| {
                dir.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter_map(|p| serde_json::from_slice::<serde_json::Value>(&std::fs::read(p).ok()?).ok())
            .filter(|m| m["to"] == to)
            .collect()
    }

    /// The token a message carries (the line that starts with its prefix).
    pub fn token_in(mail: &serde_json::Value, prefix: &str) -> String {
        mail["text"]
            .as_str()
            .unwrap()
            .lines()
            .find(|l| l.starts_with(prefix))
            .expect("a token in the message")
            .trim()
            .to_string()
    }
}

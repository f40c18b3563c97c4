//! Each Lambda function through `cargo lambda watch` + `cargo lambda invoke
//! --data-file events/...`, on DynamoDB served by moto.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use std::sync::{Arc, Mutex};

use blackbox::{free_port, serve_in_process, wait_for_port, Guard, Moto};
use serde_json::Value;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The sample platform administrator token that `events/auth-initialize-tenant.json` carries.
const SAMPLE_ADMIN_TOKEN: &str = "sample-platform-admin-token-0123456789";
/// The placeholder tenant events carry where an access token from `auth-login` goes.
const TOKEN_PLACEHOLDER: &str = "ACCESS_TOKEN_FROM_AUTH_LOGIN";

/// A copy of a sample event with a real access token in place of the placeholder.
fn with_token(event: &str, token: &str, dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(workspace_root().join(event)).expect("sample event");
    assert!(text.contains(TOKEN_PLACEHOLDER), "{event} carries the token placeholder");
    let path = dir.join(event.replace('/', "-"));
    std::fs::write(&path, text.replace(TOKEN_PLACEHOLDER, token)).expect("write event copy");
    path.to_string_lossy().into_owned()
}

/// A copy of a sample event with `placeholder` replaced by `value`.
fn with_value(event: &str, placeholder: &str, value: &str, dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(workspace_root().join(event)).expect("sample event");
    assert!(text.contains(placeholder), "{event} carries {placeholder}");
    let path = dir.join(event.replace('/', "-"));
    std::fs::write(&path, text.replace(placeholder, value)).expect("write event copy");
    path.to_string_lossy().into_owned()
}

/// Invokes a function with an event file; returns the API Gateway response.
fn invoke(port: u16, function: &str, event: &str) -> Value {
    let output = Command::new("cargo")
        .args([
            "lambda",
            "invoke",
            function,
            "--data-file",
            event,
            "-A",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "-o",
            "json",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo lambda is installed: pip install cargo-lambda");
    assert!(
        output.status.success(),
        "invoke {function} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the invoke answer is JSON")
}

fn body(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_answers_its_sample_event() {
    let moto = Moto::start();
    moto.new_table("platform-lambda").await;
    let (_tap, actions) = moto.bus_and_queues("platform-events").await;
    let port = free_port();
    // Secrets come from Secrets Manager, read once at init, as on AWS.
    let admin_arn = moto.secret("platform-admin-token", SAMPLE_ADMIN_TOKEN).await;
    let jwt_arn = moto.secret("jwt-secret", "lambda-test-signing-key-0123456789abcdef").await;
    let env = format!(
        "TABLE_NAME=platform-lambda,AWS_ENDPOINT_URL={},AWS_ACCESS_KEY_ID=test,AWS_SECRET_ACCESS_KEY=test,AWS_REGION=us-east-1,PLATFORM_ADMIN_TOKEN_ARN={admin_arn},JWT_SECRET_ARN={jwt_arn},MAIL_FROM=no-reply@example.com,EVENT_BUS_NAME=platform-events,ACTION_QUEUE_URL={actions},RUST_LOG=warn",
        moto.endpoint
    );
    let watch = Command::new("cargo")
        .args(["lambda", "watch", "--ignore-changes", "-A", "127.0.0.1", "-P", &port.to_string(), "--env-vars", &env])
        .current_dir(workspace_root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cargo lambda is installed: pip install cargo-lambda");
    let _watch = Guard(watch);
    assert!(wait_for_port(port, Duration::from_secs(120)), "cargo lambda watch did not start");

    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().to_path_buf();
    // CloudFormation's side of the custom resource: the presigned URL it answers to.
    let answers: Arc<Mutex<Vec<Value>>> = Arc::default();
    let kept = answers.clone();
    let cloudformation = serve_in_process(axum::Router::new().route(
        "/cfn-response",
        axum::routing::put(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                axum::http::StatusCode::OK
            }
        }),
    ))
    .await;
    let seen = answers.clone();
    let tasks = tokio::task::spawn_blocking(move || {
        // The deployment publishes the built-in catalog once (no function does it at init).
        let url = format!("{cloudformation}/cfn-response");
        let seeded =
            invoke(port, "catalog-seeder", &with_value("events/catalog-seed-create.json", "RESPONSE_URL", &url, &dir));
        assert_eq!(seeded["Status"], "SUCCESS", "{seeded}");
        let told = seen.lock().unwrap().clone();
        assert_eq!(told.len(), 1, "CloudFormation was answered once");
        assert_eq!(
            (told[0]["Status"].as_str(), told[0]["RequestId"].as_str()),
            (Some("SUCCESS"), Some("seed-request-1"))
        );

        let health = invoke(port, "health", "events/health-ready.json");
        assert_eq!(health["statusCode"], 200, "{health}");
        assert_eq!(body(&health)["checks"]["store"], "ok");

        let tenant = invoke(port, "auth", "events/auth-initialize-tenant.json");
        assert_eq!(tenant["statusCode"], 201, "{tenant}");
        assert_eq!(body(&tenant)["owner"]["roles"][0], "owner");
        let login = invoke(port, "auth", "events/auth-login.json");
        assert_eq!(login["statusCode"], 200, "{login}");
        let token = body(&login)["access_token"].as_str().unwrap().to_string();

        let catalog = invoke(port, "catalog", &with_token("events/catalog-list-systems.json", &token, &dir));
        assert_eq!(catalog["statusCode"], 200, "{catalog}");
        let ids: Vec<String> = body(&catalog)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["system_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids, ["crm", "marketing", "sales", "support"]);

        let installed = invoke(port, "tenant-systems", &with_token("events/tenant-systems-install.json", &token, &dir));
        assert_eq!(installed["statusCode"], 201, "{installed}");
        let names: Vec<String> = body(&installed)["installed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["system_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["crm", "sales"]);
        let again = invoke(port, "tenant-systems", &with_token("events/tenant-systems-install.json", &token, &dir));
        assert_eq!(again["statusCode"], 409, "{again}");

        let config = invoke(port, "config", &with_token("events/config-put.json", &token, &dir));
        assert_eq!(config["statusCode"], 200, "{config}");
        assert_eq!(body(&config)["value"]["primary_color"], "#0055ff");
        assert_eq!(body(&config)["version"], 1);

        let users = invoke(port, "users", &with_token("events/users-list.json", &token, &dir));
        assert_eq!(users["statusCode"], 200, "{users}");
        assert_eq!(body(&users)["items"][0]["email"], "owner@acme.example.com");

        let audit = invoke(port, "audit", &with_token("events/audit-list.json", &token, &dir));
        assert_eq!(audit["statusCode"], 200, "{audit}");
        let actions: Vec<String> = body(&audit)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_string())
            .collect();
        for action in ["tenant.initialize", "auth.login", "system.install", "config.write"] {
            assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
        }

        let rule = invoke(port, "automation", &with_token("events/automation-create-rule.json", &token, &dir));
        assert_eq!(rule["statusCode"], 201, "{rule}");
        let record = invoke(port, "records", &with_token("events/records-create-opportunity.json", &token, &dir));
        assert_eq!(record["statusCode"], 201, "{record}");
        assert_eq!(body(&record)["data"]["value"], 20000);

        // The automation stages: stream -> EventBridge, bus event -> SQS, SQS batch -> effects.
        let published = invoke(port, "event-publisher", "events/event-publisher-stream.json");
        assert_eq!(published, 2, "opportunity_created and high_value_opportunity went to the bus");
        let evaluated = invoke(port, "rule-evaluator", "events/rule-evaluator-event.json");
        assert_eq!(evaluated, 1, "the seed rule matched and its action was queued");
        let executed = invoke(port, "action-executor", "events/action-executor-batch.json");
        assert_eq!(
            executed["batchItemFailures"][0]["itemIdentifier"], "059f36b4-87a3-44ab-83d2-661975830a7d",
            "an action of an unknown execution is handed back for redelivery: {executed}"
        );
        // What the action DLQ holds becomes a dead letter; the schedule sweeps run deadlines.
        let kept = invoke(port, "dead-letters", "events/dead-letters-action-dlq.json");
        assert_eq!(kept["batchItemFailures"], serde_json::json!([]), "the dead letter was kept: {kept}");
        let swept = invoke(port, "dead-letters", "events/dead-letters-schedule.json");
        assert_eq!(swept["swept_runs"], 0, "{swept}");
    });
    tasks.await.unwrap();

    // What the functions wrote is in DynamoDB, under the tenant's partition.
    let client = moto.dynamodb_client();
    let item = client
        .get_item()
        .table_name("platform-lambda")
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S("TENANT#acme".into()))
        .key("SK", aws_sdk_dynamodb::types::AttributeValue::S("INSTALL#sales".into()))
        .send()
        .await
        .unwrap();
    assert!(item.item.is_some(), "the install is stored under the tenant's partition");
}

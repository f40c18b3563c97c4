//! Each Lambda function through `cargo lambda watch` + `cargo lambda invoke
//! --data-file events/...`, on DynamoDB served by moto.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use blackbox::{free_port, wait_for_port, Guard, Moto};
use serde_json::Value;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
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
    let port = free_port();
    let env = format!(
        "TABLE_NAME=platform-lambda,AWS_ENDPOINT_URL={},AWS_ACCESS_KEY_ID=test,AWS_SECRET_ACCESS_KEY=test,AWS_REGION=us-east-1,PLATFORM_ADMIN_TOKEN=lambda-admin-token-0123,RUST_LOG=warn",
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

    let tasks = tokio::task::spawn_blocking(move || {
        let health = invoke(port, "health", "events/health-ready.json");
        assert_eq!(health["statusCode"], 200, "{health}");
        assert_eq!(body(&health)["checks"]["store"], "ok");

        let catalog = invoke(port, "catalog", "events/catalog-list-systems.json");
        assert_eq!(catalog["statusCode"], 200, "{catalog}");
        let ids: Vec<String> = body(&catalog)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["system_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids, ["crm", "marketing", "sales", "support"]);

        let installed = invoke(port, "tenant-systems", "events/tenant-systems-install.json");
        assert_eq!(installed["statusCode"], 201, "{installed}");
        let names: Vec<String> = body(&installed)["installed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["system_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["crm", "sales"]);
        let again = invoke(port, "tenant-systems", "events/tenant-systems-install.json");
        assert_eq!(again["statusCode"], 409, "{again}");

        let config = invoke(port, "config", "events/config-put.json");
        assert_eq!(config["statusCode"], 200, "{config}");
        assert_eq!(body(&config)["value"]["primary_color"], "#0055ff");
        assert_eq!(body(&config)["version"], 1);
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

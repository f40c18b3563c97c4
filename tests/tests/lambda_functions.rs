//! Each Lambda function through `cargo lambda watch` + `cargo lambda invoke
//! --data-file events/...`, on DynamoDB served by moto.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use blackbox::{free_port, wait_for_port, Guard};
use serde_json::Value;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// Invokes a function with a sample event the way the README shows a newcomer:
/// `python3 scripts/invoke.py FUNCTION EVENT --port PORT` (it fills the access token and
/// answers a custom resource's response URL); returns the function's answer.
fn invoke(port: u16, function: &str, event: &str) -> Value {
    let output = Command::new("python3")
        .args(["scripts/invoke.py", function, event, "--port", &port.to_string()])
        .current_dir(workspace_root())
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "invoke {function} {event} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the invoke answer is JSON")
}

/// Kills the detached moto that `scripts/local-aws.py --detach` started.
struct Detached(u32);

impl Drop for Detached {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.to_string()).status();
    }
}

fn body(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_answers_its_sample_event() {
    // AWS on loopback as the README's "Invoke the functions locally" starts it.
    let scratch = tempfile::tempdir().unwrap();
    let env_file = scratch.path().join(".env.lambda");
    let moto_port = free_port();
    let started = Command::new("python3")
        .args(["scripts/local-aws.py", "--detach", "--port", &moto_port.to_string(), "--env-file"])
        .arg(&env_file)
        .current_dir(workspace_root())
        .output()
        .expect("python3 with moto[server] and boto3");
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    let pid: u32 = String::from_utf8_lossy(&started.stdout).trim().parse().expect("moto's pid");
    let _moto = Detached(pid);
    let port = free_port();
    // The functions' log (their stdout, as CloudWatch Logs would receive it).
    let log = scratch.path().join("functions.log");
    let watch = Command::new("cargo")
        .args(["lambda", "watch", "--ignore-changes", "-A", "127.0.0.1", "-P", &port.to_string(), "--env-file"])
        .arg(&env_file)
        .current_dir(workspace_root())
        .stdout(std::fs::File::create(&log).expect("a log file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("cargo lambda is installed: pip install cargo-lambda");
    let _watch = Guard(watch);
    assert!(wait_for_port(port, Duration::from_secs(120)), "cargo lambda watch did not start");

    let tasks = tokio::task::spawn_blocking(move || {
        // The deployment publishes the built-in catalog once (no function does it at init).
        let seeded = invoke(port, "catalog-seeder", "events/catalog-seed-create.json");
        assert_eq!(
            (seeded["Status"].as_str(), seeded["RequestId"].as_str()),
            (Some("SUCCESS"), Some("seed-request-1")),
            "CloudFormation was answered: {seeded}"
        );

        let health = invoke(port, "health", "events/health-ready.json");
        assert_eq!(health["statusCode"], 200, "{health}");
        assert_eq!(body(&health)["checks"]["store"], "ok");

        let tenant = invoke(port, "auth", "events/auth-initialize-tenant.json");
        assert_eq!(tenant["statusCode"], 201, "{tenant}");
        assert_eq!(body(&tenant)["owner"]["roles"][0], "owner");
        let login = invoke(port, "auth", "events/auth-login.json");
        assert_eq!(login["statusCode"], 200, "{login}");
        assert!(body(&login)["access_token"].is_string(), "{login}");

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

        let users = invoke(port, "users", "events/users-list.json");
        assert_eq!(users["statusCode"], 200, "{users}");
        assert_eq!(body(&users)["items"][0]["email"], "owner@acme.example.com");

        let audit = invoke(port, "audit", "events/audit-list.json");
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

        let setting = invoke(port, "settings", "events/settings-create.json");
        assert_eq!(
            (setting["statusCode"].as_u64(), body(&setting)["scope"].as_str()),
            (Some(201), Some("tenant")),
            "{setting}"
        );
        let flag = invoke(port, "feature-flags", "events/feature-flags-create.json");
        assert_eq!(flag["statusCode"], 201, "{flag}");
        let flags = invoke(port, "feature-flags", "events/feature-flags-ofrep-bulk.json");
        assert_eq!(body(&flags)["flags"][0]["key"], "new-checkout", "{flags}");
        for (function, file) in [
            ("notes", "events/notes-create.json"),
            ("calls", "events/calls-create.json"),
            ("reviews", "events/reviews-create.json"),
            ("calendar-events", "events/calendar-events-create.json"),
            ("attachments", "events/attachments-create.json"),
        ] {
            let created = invoke(port, function, file);
            assert_eq!(created["statusCode"], 201, "{function}: {created}");
        }
        let ics = invoke(port, "calendar-events", "events/calendar-events-export.json");
        assert!(ics["body"].as_str().unwrap_or_default().starts_with("BEGIN:VCALENDAR"), "{ics}");

        let rule = invoke(port, "automation", "events/automation-create-rule.json");
        assert_eq!(rule["statusCode"], 201, "{rule}");
        let record = invoke(port, "records", "events/records-create-opportunity.json");
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
    let credentials = aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "moto");
    let sdk = platform::runtime::sdk_config("us-east-1", credentials, Some(format!("http://127.0.0.1:{moto_port}")));
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let item = client
        .get_item()
        .table_name("platform-lambda")
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S("TENANT#acme".into()))
        .key("SK", aws_sdk_dynamodb::types::AttributeValue::S("INSTALL#sales".into()))
        .send()
        .await
        .unwrap();
    assert!(item.item.is_some(), "the install is stored under the tenant's partition");

    // Every invocation's metrics are in the log as CloudWatch Embedded Metric Format.
    let written = std::fs::read_to_string(&log).unwrap();
    let documents: Vec<Value> = written
        .lines()
        .filter_map(|line| line.find("{\"_aws\"").and_then(|at| serde_json::from_str(&line[at..]).ok()))
        .collect();
    let named = |metric: &'static str| {
        documents.iter().filter(move |d| {
            d["_aws"]["CloudWatchMetrics"].as_array().into_iter().flatten().any(|m| {
                m["Namespace"] == "BusinessPlatform"
                    && m["Metrics"].as_array().into_iter().flatten().any(|x| x["Name"] == metric)
            })
        })
    };
    let requests: Vec<&Value> = named("http_requests_total").collect();
    assert!(!requests.is_empty(), "request counts in EMF:\n{written}");
    let health = requests.iter().find(|d| d["function"] == "health" && d["route"] == "/health/ready");
    let health = health.unwrap_or_else(|| panic!("the health function's request by route: {requests:?}"));
    assert_eq!((health["method"].as_str(), health["status"].as_str()), (Some("GET"), Some("200")), "{health}");
    assert!(health["_aws"]["Timestamp"].is_u64() && health["RequestId"].is_string(), "{health}");
    let dimensions = &health["_aws"]["CloudWatchMetrics"][0]["Dimensions"];
    assert!(dimensions.to_string().contains("function") && dimensions.to_string().contains("route"), "{dimensions}");
    assert!(named("cold_starts_total").any(|d| d["function"] == "health"), "a cold start of each function");
    assert!(named("automation_events_evaluated_total").any(|d| d["function"] == "rule-evaluator"));
    assert!(!written.contains("\"tenant\":\"acme\""), "no tenant in any metric");
    // The executor logs each action in the X-Ray trace its message was sent in.
    let traced = written
        .lines()
        .find(|l| l.contains("action not done") && l.contains("Root=1-6921356c-3f1a6d2b7c4e5f60718293a4"));
    assert!(traced.is_some(), "the executor's log line carries the message's trace:\n{written}");
}

/// `cargo lambda build --release` (what `sam build` runs) compiles with panic=abort unless
/// the release profile names a panic strategy. The functions rely on unwinding (the Lambda
/// runtime answers a handler's panic with an error instead of losing the environment), so
/// the workspace's release profile names it.
#[test]
fn the_release_profile_names_unwinding_for_cargo_lambda() {
    let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    let release: Vec<String> = manifest
        .lines()
        .skip_while(|l| l.trim() != "[profile.release]")
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .map(|l| l.split('#').next().unwrap_or_default().replace(' ', ""))
        .collect();
    assert!(!release.is_empty(), "the workspace has a [profile.release] section");
    assert!(release.iter().any(|l| l == "panic=\"unwind\""), "no panic strategy named: {release:?}");
}

/// A Lambda process handles one invocation at a time, so each function runs tokio's
/// current-thread runtime: the multi-threaded one starts a worker per core at init and
/// hands I/O between threads on every request, which the cold-start harness measured as
/// most of a warm invocation's own time. The local server, which serves many connections,
/// keeps the multi-threaded runtime.
#[test]
fn every_lambda_function_runs_a_current_thread_runtime() {
    let functions = workspace_root().join("functions");
    let mut checked = 0;
    for entry in std::fs::read_dir(&functions).unwrap() {
        let main = entry.unwrap().path().join("src/main.rs");
        let Ok(source) = std::fs::read_to_string(&main) else { continue };
        let runtime = source.lines().find(|l| l.trim_start().starts_with("#[tokio::main"));
        if main.starts_with(functions.join("local-server")) {
            assert_eq!(runtime.map(str::trim), Some("#[tokio::main]"), "the local server is multi-threaded");
            continue;
        }
        assert_eq!(
            runtime.map(str::trim),
            Some(r#"#[tokio::main(flavor = "current_thread")]"#),
            "{} runs a current-thread runtime",
            main.display()
        );
        checked += 1;
    }
    assert!(checked >= 20, "every Lambda function's main was found ({checked})");
}

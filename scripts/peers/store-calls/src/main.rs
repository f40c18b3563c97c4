//! The floor of a function that makes store calls, for the benchmark script.
//!
//! The hello-world `lambda_runtime` function (on tokio's current-thread runtime, as the
//! platform's functions), plus: at each invocation it sends the requests recorded in the
//! JSON file `FLOOR_CALLS` (a list of `{"method", "path", "headers", "body"}`, as a stage
//! sent them to the AWS endpoint) to `AWS_ENDPOINT_URL` (plain `http://host:port`) all at
//! once, one connection each (as a fresh process's SDK client opens them), and answers with
//! their HTTP statuses when every one is answered. No SDK, no signing (the recorded headers
//! are sent as they were; moto does not verify signatures): what is left is the process,
//! the runtime and the store's own time, which is the least any function making those
//! calls can take.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Call {
    request: Vec<u8>,
}

fn calls() -> Result<(String, Vec<Call>), Error> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")?;
    let address = endpoint.trim_start_matches("http://").trim_end_matches('/').to_string();
    let recorded: Vec<Value> = serde_json::from_slice(&std::fs::read(std::env::var("FLOOR_CALLS")?)?)?;
    let mut calls = Vec::with_capacity(recorded.len());
    for call in recorded {
        let text = |k: &str| call[k].as_str().unwrap_or_default().to_string();
        let body = text("body");
        let mut head = format!("{} {} HTTP/1.1\r\nHost: {address}\r\n", text("method"), text("path"));
        for (name, value) in call["headers"].as_object().into_iter().flatten() {
            head.push_str(&format!("{name}: {}\r\n", value.as_str().unwrap_or_default()));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut request = head.into_bytes();
        request.extend_from_slice(body.as_bytes());
        calls.push(Call { request });
    }
    Ok((address, calls))
}

/// One request on its own connection; its status code. The answer is read to its
/// `Content-Length`, as an HTTP client keeping the connection does: a connection the client
/// asks to close is closed by the server some milliseconds after its answer.
async fn send(address: &str, call: &[u8]) -> Result<u16, Error> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    stream.write_all(call).await?;
    let mut answer = Vec::with_capacity(4096);
    loop {
        if stream.read_buf(&mut answer).await? == 0 {
            return Err(Error::from("the connection closed before the whole answer"));
        }
        let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = std::str::from_utf8(&answer[..end])?;
        let length = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .map(|(_, value)| value.trim().parse::<usize>())
            .transpose()?
            .ok_or_else(|| Error::from("an answer without Content-Length"))?;
        if answer.len() >= end + 4 + length {
            let status = head.get(9..12).and_then(|s| s.parse().ok());
            return status.ok_or_else(|| Error::from("no HTTP status in the answer"));
        }
    }
}

// The current-thread runtime, as the platform's functions run: one invocation at a time.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let (address, calls) = calls()?;
    let (address, calls) = (std::sync::Arc::new(address), std::sync::Arc::new(calls));
    lambda_runtime::run(service_fn(|_e: LambdaEvent<Value>| {
        let (address, calls) = (address.clone(), calls.clone());
        async move { answer(address, calls).await }
    }))
    .await
}

/// Sends every call at once; their statuses when all are answered.
async fn answer(address: std::sync::Arc<String>, calls: std::sync::Arc<Vec<Call>>) -> Result<Value, Error> {
    let mut set = tokio::task::JoinSet::new();
    for index in 0..calls.len() {
        let (address, calls) = (address.clone(), calls.clone());
        set.spawn(async move { send(&address, &calls[index].request).await });
    }
    let mut statuses = Vec::with_capacity(calls.len());
    while let Some(status) = set.join_next().await {
        statuses.push(status??);
    }
    Ok(json!({"statusCode": 200, "body": statuses}))
}

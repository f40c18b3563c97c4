//! Killing the local server with SIGKILL in the middle of writes loses no write it had
//! acknowledged.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use blackbox::{Api, Ctx, LocalServer};
use serde_json::json;

const WRITERS: usize = 4;
const KILL_AFTER_ACKS: usize = 120;
const MAX_WRITES_PER_WRITER: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_writes_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = LocalServer::start(dir.path());
    let ctx =
        Ctx { api: Api::new(&server.base), admin_token: server.admin_token.clone(), mail_dir: dir.path().join("mail") };
    let api = ctx.new_tenant("crash").await;
    let acked: Arc<Mutex<Vec<(usize, u64, usize)>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));

    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let api = api.clone();
            let acked = acked.clone();
            let count = count.clone();
            tokio::spawn(async move {
                let path = format!("/api/v1/config/tenants/crash/configs/writer-{writer}");
                for n in 0..MAX_WRITES_PER_WRITER {
                    let request = api
                        .client
                        .put(format!("{}{path}", api.base))
                        .bearer_auth(api.token.as_deref().unwrap())
                        .json(&json!({"value": {"n": n}}));
                    match request.send().await {
                        Ok(response) if response.status() == 200 => {
                            let body: serde_json::Value = response.json().await.unwrap();
                            acked.lock().unwrap().push((writer, body["version"].as_u64().unwrap(), n));
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(response) => panic!("a write was refused before the kill: {}", response.status()),
                        // The server died mid-request: this write was never acknowledged.
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();

    while count.load(Ordering::SeqCst) < KILL_AFTER_ACKS && !writers.iter().all(|w| w.is_finished()) {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.kill();
    for writer in writers {
        writer.await.unwrap();
    }

    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= KILL_AFTER_ACKS);
    let server = LocalServer::start(dir.path());
    let api = Api { base: server.base.clone(), ..api };
    for (writer, version, n) in &acked {
        let stored = api.get(&format!("/api/v1/config/tenants/crash/configs/writer-{writer}/versions/{version}")).await;
        assert_eq!(stored.status, 200, "acknowledged write {writer}/{version} is there after SIGKILL");
        assert_eq!(stored.body["value"]["n"].as_u64(), Some(*n as u64));
    }
    for writer in 0..WRITERS {
        let last = acked.iter().filter(|(w, _, _)| *w == writer).map(|(_, v, _)| *v).max().unwrap_or(0);
        let head = api.get(&format!("/api/v1/config/tenants/crash/configs/writer-{writer}")).await;
        assert!(
            head.body["version"].as_u64().unwrap_or(0) >= last,
            "the head is at least the last acknowledged version"
        );
    }
}

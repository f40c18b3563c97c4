//! The same HTTP scenarios as the local server, with the app on DynamoDB (moto): the
//! transactions, conditions and pagination of every use case on the AWS code path.

use blackbox::{scenarios, serve_in_process, Api, Moto};
use platform::http::{self, AuthConfig};
use platform::runtime::{state, Seed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_passes_on_dynamodb() {
    let moto = Moto::start();
    let store = moto.new_table("platform").await;
    let token = "dynamo-admin-token";
    let auth = AuthConfig { platform_admin_token: Some(token.to_string()) };
    let app_state = state(store, auth, Seed::Yes).await.unwrap();
    let base = serve_in_process(http::app(app_state)).await;
    let api = Api::new(&base);
    scenarios::platform(&api).await;
    scenarios::catalog_reads(&api).await;
    scenarios::catalog_admin(&api, token, "dynamo").await;
    scenarios::installs(&api, "tenant-installs").await;
    scenarios::upgrades(&api, token, "tenant-upgrades", "dynamo").await;
    scenarios::configuration(&api, "tenant-config").await;
    scenarios::concurrent_writers(&api, "tenant-concurrency").await;
    scenarios::isolation(&api, "tenant-a", "tenant-b").await;
}

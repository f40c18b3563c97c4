//! The whole product on one machine: every API on the embedded store, no cloud.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::runtime::serve_local(platform::runtime::LocalSettings::from_env()?).await
}

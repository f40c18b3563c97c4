//! The whole product on one machine: every API on the embedded store, no cloud.

/// mimalloc rather than the system allocator: measured with wrk and perf on the
/// authenticated request path (many small, short-lived allocations).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::runtime::serve_local(platform::runtime::LocalSettings::from_env()?).await
}

//! The shared library of every Lambda function and of the local server.
//!
//! Layers, inside out (see `ARCHITECTURE.md` at the repository root):
//! - [`domain`]: pure types and rules, no I/O.
//! - [`ports`]: the traits the application needs from the outside world.
//! - [`adapters`]: DynamoDB (AWS) and the embedded, crash-safe store (local).
//! - [`app`]: the use cases, written against the ports.
//! - [`http`]: one axum router per resource, problem+json errors, OpenAPI.
//! - [`runtime`]: reading the environment and wiring the pieces for a process.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod http;
pub mod pipeline;
pub mod ports;
pub mod runtime;
pub mod stages;
pub mod telemetry;

/// The services every process runs: the use cases over ports wired from the process's
/// environment (`adapters::wiring`).
pub type Services = app::Services<adapters::wiring::Wiring>;

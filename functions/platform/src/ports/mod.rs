//! The traits the application needs from the outside world.

pub mod blobs;
pub mod feed;
pub mod mail;
pub mod queue;
pub mod store;
pub mod timers;

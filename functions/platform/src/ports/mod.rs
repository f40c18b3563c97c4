//! The traits the application needs from the outside world.

pub mod mail;
pub mod store;

//! The traits the application needs from the outside world.

pub mod store;

//! Pure types and rules: no I/O, most unit tests live here.

pub mod access;
pub mod catalog;
pub mod config;
pub mod identity;
pub mod ids;
pub mod install;
pub mod invalid;
pub mod manifest;
pub mod migration;
pub mod time;

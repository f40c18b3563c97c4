//! Pure types and rules: no I/O, most unit tests live here.

pub mod access;
pub mod actions;
pub mod calendar;
pub mod catalog;
pub mod conditions;
pub mod config;
pub mod events;
pub mod flags;
pub mod hex;
pub mod identity;
pub mod ids;
pub mod install;
pub mod invalid;
pub mod limits;
pub mod manifest;
pub mod matcher;
pub mod migration;
pub mod pattern;
pub mod rate;
pub mod records;
pub mod rules;
pub mod run_status;
pub mod time;
pub mod timing;
pub mod tools;
pub mod webhook;

//! Every store key of the product, in one place. Tenant items always start their
//! partition key with `TENANT#<tenant_id>`; the catalog is global.

use semver::Version;

use crate::domain::catalog::version_sort_key;
use crate::domain::config::{ConfigScope, Owner};
use crate::domain::ids::{SystemId, TenantId};

pub const CATALOG_PK: &str = "CATALOG";
pub const SYSTEM_PREFIX: &str = "SYSTEM#";
pub const VERSION_PREFIX: &str = "VERSION#";
pub const INSTALL_PREFIX: &str = "INSTALL#";

pub fn system_sk(system: &SystemId) -> String {
    format!("{SYSTEM_PREFIX}{system}")
}

pub fn seed_marker_sk(revision: &str) -> String {
    format!("SEED#{revision}")
}

pub fn versions_pk(system: &SystemId) -> String {
    format!("CATALOG#{system}")
}

pub fn version_sk(version: &Version) -> String {
    format!("{VERSION_PREFIX}{}", version_sort_key(version))
}

pub fn tenant_pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}")
}

/// The platform's own versioned documents (platform settings and flags).
pub const PLATFORM_PK: &str = "PLATFORM";

/// The partition of an owner's versioned documents.
pub fn owner_pk(owner: Owner<'_>) -> String {
    match owner {
        Owner::Tenant(tenant) => tenant_pk(tenant),
        Owner::Platform => PLATFORM_PK.to_string(),
    }
}

pub fn install_sk(system: &SystemId) -> String {
    format!("{INSTALL_PREFIX}{system}")
}

pub fn history_prefix(system: &SystemId) -> String {
    format!("HISTORY#{system}#")
}

pub fn history_sk(system: &SystemId, entry_id: &str) -> String {
    format!("{}{entry_id}", history_prefix(system))
}

pub fn config_head_sk(scope: &ConfigScope) -> String {
    format!("CONFIG#{}", scope.key())
}

/// Every head of one kind of document (`t:`, `s:`, `f:`).
pub fn config_heads_prefix(kind_prefix: &str) -> String {
    format!("CONFIG#{kind_prefix}")
}

pub fn config_versions_prefix(scope: &ConfigScope) -> String {
    format!("CONFIGV#{}#", scope.key())
}

pub fn config_version_sk(scope: &ConfigScope, version: u64) -> String {
    format!("{}{version:020}", config_versions_prefix(scope))
}

pub const TENANT_PROFILE_SK: &str = "PROFILE";
/// The tenant's webhook signing key.
pub const WEBHOOK_KEY_SK: &str = "WEBHOOKKEY";
/// The tenant's automation rate limits, when the operator set them.
pub const LIMITS_SK: &str = "LIMITS";

/// The tenant's token bucket of one flow (`events`, `actions`).
pub fn bucket_sk(flow: &str) -> String {
    format!("BUCKET#{flow}")
}
pub const USER_PREFIX: &str = "USER#";
pub const ROLE_PREFIX: &str = "ROLE#";
pub const TEAM_PREFIX: &str = "TEAM#";
pub const API_KEY_PREFIX: &str = "APIKEY#";

pub fn user_sk(user_id: &str) -> String {
    format!("{USER_PREFIX}{user_id}")
}

pub fn credential_sk(user_id: &str) -> String {
    format!("CRED#{user_id}")
}

pub fn user_email_sk(email: &str) -> String {
    format!("USEREMAIL#{email}")
}

pub fn login_throttle_sk(email: &str) -> String {
    format!("LOGIN#{email}")
}

/// Sign-in attempts from one client address (see `throttle::address_key`).
pub fn login_address_sk(address: &str) -> String {
    format!("LOGINADDR#{address}")
}

/// Password-reset requests of one account.
pub fn reset_requests_sk(user_id: &str) -> String {
    format!("RESETREQ#{user_id}")
}

pub fn role_sk(name: &str) -> String {
    format!("{ROLE_PREFIX}{name}")
}

pub fn team_sk(team_id: &str) -> String {
    format!("{TEAM_PREFIX}{team_id}")
}

pub fn sessions_prefix(user_id: &str) -> String {
    format!("SESSION#{user_id}#")
}

pub fn session_sk(user_id: &str, session_id: &str) -> String {
    format!("{}{session_id}", sessions_prefix(user_id))
}

pub fn api_key_sk(key_id: &str) -> String {
    format!("{API_KEY_PREFIX}{key_id}")
}

/// A single-use token (password reset, email verification), by the digest of its secret.
pub fn one_time_token_sk(purpose: &str, digest: &str) -> String {
    format!("OTT#{purpose}#{digest}")
}

pub fn records_prefix(system: &SystemId, entity: &str) -> String {
    format!("REC#{system}#{entity}#")
}

pub fn record_sk(system: &SystemId, entity: &str, record_id: &str) -> String {
    format!("{}{record_id}", records_prefix(system, entity))
}

/// `REC#<system>#<entity>#<id>` back into its parts.
pub fn parse_record_sk(sk: &str) -> Option<(&str, &str, &str)> {
    let rest = sk.strip_prefix("REC#")?;
    let mut parts = rest.splitn(3, '#');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

/// `TENANT#<tenant>` back into the tenant (only for a plain tenant partition).
pub fn parse_tenant_pk(pk: &str) -> Option<&str> {
    pk.strip_prefix("TENANT#").filter(|t| !t.contains('#'))
}

pub const RULE_PREFIX: &str = "RULE#";
/// What the rules (`RULE#`), their generation marker and their versions (`RULEVER#`) share.
pub const RULES_PREFIX: &str = "RULE";
/// Bumped on every rule change, so evaluators notice and recompile.
pub const RULES_GENERATION_SK: &str = "RULESGEN";
pub const EXECUTION_PREFIX: &str = "EXEC#";
pub const NOTIFICATION_PREFIX: &str = "NOTIF#";
pub const TASK_PREFIX: &str = "TASK#";

/// A rule's immutable versions, oldest first.
pub fn rule_versions_prefix(rule_id: &str) -> String {
    format!("RULEVER#{rule_id}#")
}

pub fn rule_version_sk(rule_id: &str, version: u64) -> String {
    format!("RULEVER#{rule_id}#{version:010}")
}

pub fn rule_sk(rule_id: &str) -> String {
    format!("{RULE_PREFIX}{rule_id}")
}

pub fn execution_sk(execution_id: &str) -> String {
    format!("{EXECUTION_PREFIX}{execution_id}")
}

pub fn notification_sk(created_at: &str, id: &str) -> String {
    format!("{NOTIFICATION_PREFIX}{created_at}#{id}")
}

/// Tool items of one kind (`note`, `call`, `review`).
pub fn tool_prefix(kind: &str) -> String {
    format!("TOOL#{kind}#")
}

pub fn tool_sk(kind: &str, id: &str) -> String {
    format!("TOOL#{kind}#{id}")
}

/// `TOOL#<kind>#<id>` (or a task's `TASK#<id>`) back into (kind, id).
pub fn parse_tool_sk(sk: &str) -> Option<(&str, &str)> {
    if let Some(id) = sk.strip_prefix(TASK_PREFIX) {
        return Some(("task", id));
    }
    sk.strip_prefix("TOOL#")?.split_once('#')
}

pub fn task_sk(task_id: &str) -> String {
    format!("{TASK_PREFIX}{task_id}")
}

/// The local durable action queue.
pub const QUEUE_PK: &str = "LOCAL#QUEUE";
/// What any stage gave up on (`app::dead_letters`), by id (a ULID: oldest first).
pub const DEAD_LETTER_PK: &str = "DEADLETTER";

/// Partitions of the run deadline markers (`app::runs`): a run's marker goes to one by
/// a hash of its id, so no single partition takes every write.
pub const SWEEP_SHARDS: u32 = 16;

pub fn sweep_shard_pk(shard: u32) -> String {
    format!("SWEEP#{shard:02}")
}

/// The marker partition of a run.
pub fn sweep_pk(execution_id: &str) -> String {
    // FNV-1a: stable across processes and releases.
    let hash = execution_id.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    sweep_shard_pk(hash % SWEEP_SHARDS)
}

/// Markers sort by deadline.
pub fn sweep_sk(deadline: u64, tenant: &TenantId, execution_id: &str) -> String {
    format!("{deadline:012}#{tenant}#{execution_id}")
}

/// (deadline, tenant, execution id) of a marker's sort key.
pub fn parse_sweep_sk(sk: &str) -> Option<(u64, &str, &str)> {
    let mut parts = sk.splitn(3, '#');
    let deadline = parts.next()?.parse().ok()?;
    Some((deadline, parts.next()?, parts.next()?))
}

/// Local timers (`adapters::local_timers`), sorted by when they fire.
pub const TIMERS_PK: &str = "LOCAL#TIMERS";
/// Local timers by name, holding their sort key in `TIMERS_PK`.
pub const TIMER_NAMES_PK: &str = "LOCAL#TIMERNAMES";

pub fn timer_sk(at: i64, name: &str) -> String {
    format!("{:012}#{name}", at.max(0))
}

/// A waiting action of a record (cancelled when the record is deleted).
pub fn wait_sk(system: &str, entity: &str, record_id: &str, execution_id: &str, action_index: usize) -> String {
    format!("WAIT#{system}#{entity}#{record_id}#{execution_id}#{action_index}")
}

pub fn record_waits_prefix(system: &str, entity: &str, record_id: &str) -> String {
    format!("WAIT#{system}#{entity}#{record_id}#")
}

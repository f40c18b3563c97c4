//! A tenant's rules generation: one marker item (`RULESGEN`) whose version changes with
//! every change to what the evaluator compiles a trigger's rules from: the rules, and the
//! installed systems (whose manifests say which fields of an event are data and which
//! entity it is about). An evaluator keeps what it compiled until the marker moves.

use serde_json::json;

use super::error::AppResult;
use super::keys;
use crate::domain::ids::TenantId;
use crate::ports::store::{Condition, Item, Store, Write};

/// The tenant's current generation (0 before any change).
pub async fn current(store: &dyn Store, tenant: &TenantId) -> AppResult<u64> {
    Ok(store.get(&keys::tenant_pk(tenant), keys::RULES_GENERATION_SK).await?.map_or(0, |i| i.version))
}

/// The write that moves the generation on, for the transaction of a change. Conditional
/// on the generation read here: a concurrent change fails the transaction (a conflict to
/// retry) instead of both landing on one generation.
pub async fn bump(store: &dyn Store, tenant: &TenantId) -> AppResult<Write> {
    let pk = keys::tenant_pk(tenant);
    let generation = store.get(&pk, keys::RULES_GENERATION_SK).await?.map(|i| i.version);
    Ok(Write::Put {
        item: Item::new(pk, keys::RULES_GENERATION_SK, generation.unwrap_or(0) + 1, json!({})),
        condition: generation.map_or(Condition::Absent, Condition::Version),
    })
}

//! Each tenant's webhook signing key: generated at onboarding, rotated on request, shown
//! only when it is made. A webhook without its own `secret` is signed with its tenant's
//! key, so no tenant can produce a valid signature for another tenant's endpoint.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::audit::{self, Actor, Change};
use super::credentials::random_secret;
use super::error::AppResult;
use super::keys;
use super::stored::decode_at;
use crate::domain::ids::TenantId;
use crate::domain::time::now_rfc3339;
use crate::ports::store::{Condition, Item, Store, Write};

/// A tenant's signing key as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredKey {
    key: String,
    created_at: String,
}

/// A new signing key: shown here once, never again.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NewSigningKey {
    /// HMAC-SHA256 key (hex) that signs this tenant's webhooks without their own secret.
    pub key: String,
    pub created_at: String,
}

/// The write that gives a tenant a fresh key (replacing any), and the key.
pub fn fresh_key_write(tenant: &TenantId) -> (NewSigningKey, Write) {
    let key = NewSigningKey { key: random_secret(), created_at: now_rfc3339() };
    let stored = StoredKey { key: key.key.clone(), created_at: key.created_at.clone() };
    let item =
        Item::new(keys::tenant_pk(tenant), keys::WEBHOOK_KEY_SK, 1, serde_json::to_value(stored).expect("serializes"));
    (key, Write::Put { item, condition: Condition::None })
}

/// The tenant's current key, if it has one.
pub async fn tenant_key(store: &dyn Store, tenant: &TenantId) -> AppResult<Option<String>> {
    let Some(item) = store.get(&keys::tenant_pk(tenant), keys::WEBHOOK_KEY_SK).await? else { return Ok(None) };
    let stored: StoredKey = decode_at(&item.pk, &item.sk, item.data)?;
    Ok(Some(stored.key))
}

#[derive(Clone)]
pub struct SigningKeyService {
    store: Arc<dyn Store>,
}

impl SigningKeyService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Replaces the tenant's key; the new one is in the answer and nowhere else.
    pub async fn rotate(&self, actor: &Actor, tenant: &TenantId) -> AppResult<NewSigningKey> {
        let (key, write) = fresh_key_write(tenant);
        let change = Change::new("automation.signing_key.rotate", format!("tenant:{tenant}"));
        self.store.transact(vec![write, audit::record(actor, Some(tenant), change)]).await?;
        Ok(key)
    }
}

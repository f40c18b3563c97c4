//! The publisher: store changes -> business events -> the bus.

use std::sync::Arc;

use serde_json::Value;

use crate::app::error::AppResult;
use crate::app::keys;
use crate::domain::config::ConfigVersion;
use crate::domain::events::{derive_events, BusinessEvent, RecordChange};
use crate::domain::ids::{SystemId, TenantId};
use crate::domain::records::Record;
use crate::domain::time::now_rfc3339;
use crate::ports::feed::StoreChange;
use crate::ports::queue::EventBus;
use crate::ports::store::{Item, Store};

use super::*;

/// Change feed -> business events -> bus.
#[derive(Clone)]
pub struct Publisher {
    store: Arc<dyn Store>,
    manifests: Manifests,
    bus: Arc<dyn EventBus>,
}

impl Publisher {
    pub fn new(store: Arc<dyn Store>, manifests: Manifests, bus: Arc<dyn EventBus>) -> Self {
        Self { store, manifests, bus }
    }

    /// The business events of one store change (none for anything but a record).
    pub async fn events_of(&self, change: &StoreChange) -> AppResult<Vec<BusinessEvent>> {
        let Some(item) = change.new.as_ref().or(change.old.as_ref()) else { return Ok(Vec::new()) };
        if let (Some(tenant), Some((kind, id))) = (keys::parse_tenant_pk(&item.pk), keys::parse_tool_sk(&item.sk)) {
            let version = change.new.as_ref().map_or(0, |n| n.version);
            return Ok(crate::domain::tools::tool_events(
                tenant,
                kind,
                &format!("{kind}:{id}:{version}"),
                change.old.as_ref().map(|o| &o.data),
                change.new.as_ref().map(|n| &n.data),
            ));
        }
        let (Some(tenant), Some((system, entity, record_id))) =
            (keys::parse_tenant_pk(&item.pk), keys::parse_record_sk(&item.sk))
        else {
            return Ok(Vec::new());
        };
        let (Ok(tenant), Ok(system)) = (TenantId::parse(tenant), SystemId::parse(system)) else {
            return Ok(Vec::new());
        };
        let Some(version) = self.manifests.installed(&tenant, &system).await? else { return Ok(Vec::new()) };
        let record = |i: &Option<Item>| i.as_ref().and_then(|i| serde_json::from_value::<Record>(i.data.clone()).ok());
        let (old, new) = (record(&change.old), record(&change.new));
        let settings = self
            .store
            .get(
                &keys::tenant_pk(&tenant),
                &keys::config_head_sk(&crate::domain::config::ConfigScope::System(system.clone())),
            )
            .await?
            .and_then(|i| serde_json::from_value::<ConfigVersion>(i.data).ok())
            .map(|c| c.value)
            .unwrap_or(Value::Null);
        let item_version =
            change.new.as_ref().map_or_else(|| change.old.as_ref().map_or(0, |o| o.version + 1), |n| n.version);
        let change_id = format!("{record_id}:{item_version}");
        let causation = new.as_ref().and_then(|r| r.causation.clone()).unwrap_or_default();
        let occurred_at = new.as_ref().map_or_else(now_rfc3339, |r| r.updated_at.clone());
        let derived = derive_events(
            &RecordChange {
                tenant_id: tenant.as_str(),
                system_id: system.as_str(),
                entity,
                record_id,
                change_id: &change_id,
                old: old.as_ref().map(|r| &r.data),
                new: new.as_ref().map(|r| &r.data),
                causation,
                occurred_at: &occurred_at,
            },
            &version.triggers,
            &settings,
        );
        Ok(derived)
    }

    /// Publishes the events of a batch of changes; fails (to be retried) if the bus does.
    /// A deleted record's waiting actions are cancelled here, whether or not its system
    /// has a trigger for deletions.
    pub async fn publish(&self, changes: &[StoreChange]) -> AppResult<usize> {
        let mut events = Vec::new();
        for change in changes {
            events.extend(self.events_of(change).await?);
            if let (Some(old), None) = (&change.old, &change.new) {
                if let (Some(tenant), Some((system, entity, record_id))) = (
                    keys::parse_tenant_pk(&old.pk).and_then(|t| TenantId::parse(t).ok()),
                    keys::parse_record_sk(&old.sk),
                ) {
                    cancel_record_waits(self.store.as_ref(), &tenant, system, entity, record_id).await?;
                }
            }
        }
        let count = events.len();
        if !events.is_empty() {
            self.bus.publish(events).await.map_err(delivery)?;
        }
        Ok(count)
    }
}

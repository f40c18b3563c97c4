//! Rules: create, change, toggle, delete, list, versions and rollback, dry runs.

use serde_json::{json, Value};

use crate::app::audit::{Actor, Change};
use crate::app::error::{AppError, AppResult};
use crate::app::keys;
use crate::app::page::{get_typed, scan_filtered, Listed, PageRequest};
use crate::app::stored::decode_at;
use crate::domain::events::{BusinessEvent, Causation};
use crate::domain::ids::TenantId;
use crate::domain::matcher::evaluate;
use crate::domain::rules::{render_value, Checked, Rule, RuleInput};
use crate::domain::time::now_rfc3339;
use crate::domain::webhook::mask_parameters;
use crate::ports::store::{Condition, Item, Query, Write};

use super::*;

impl AutomationService {
    pub async fn create_rule(&self, actor: &Actor, tenant: &TenantId, input: RuleInput) -> AppResult<Rule> {
        let Checked { conditions, actions, schedule } = self.checked(tenant, &input).await?;
        let now = now_rfc3339();
        let rule = Rule {
            id: ulid::Ulid::generate().to_string().to_lowercase(),
            tenant_id: tenant.to_string(),
            name: input.name,
            description: input.description,
            module_type: input.module_type,
            trigger_id: input.trigger_id,
            conditions,
            actions,
            is_active: input.is_active.unwrap_or(true),
            created_at: now.clone(),
            updated_at: now,
            version: 1,
            schedule,
        };
        let put = Write::create(keys::tenant_pk(tenant), keys::rule_sk(&rule.id), &rule);
        self.arm(&rule).await?;
        self.write_rule(
            actor,
            tenant,
            vec![put, Self::snapshot(tenant, &rule)],
            Change::new("automation.rule.create", format!("rule:{}", rule.id)).after(rule.clone().redacted()),
        )
        .await?;
        Ok(rule)
    }

    pub async fn update_rule(&self, actor: &Actor, tenant: &TenantId, id: &str, input: RuleInput) -> AppResult<Rule> {
        let (before, version) = self.rule(tenant, id).await?;
        let Checked { conditions, actions, schedule } = self.checked(tenant, &input).await?;
        let rule = Rule {
            name: input.name,
            description: input.description,
            module_type: input.module_type,
            trigger_id: input.trigger_id,
            conditions,
            actions,
            is_active: input.is_active.unwrap_or(before.is_active),
            updated_at: now_rfc3339(),
            version: before.version + 1,
            schedule,
            ..before.clone()
        };
        let put = Write::replace(keys::tenant_pk(tenant), keys::rule_sk(id), version, &rule);
        self.arm(&rule).await?;
        self.write_rule(
            actor,
            tenant,
            vec![put, Self::snapshot(tenant, &rule)],
            Change::new("automation.rule.update", format!("rule:{id}"))
                .before(before.clone().redacted())
                .after(rule.clone().redacted()),
        )
        .await?;
        Ok(rule)
    }

    pub async fn toggle_rule(&self, actor: &Actor, tenant: &TenantId, id: &str, active: bool) -> AppResult<Rule> {
        let (before, version) = self.rule(tenant, id).await?;
        let rule = Rule { is_active: active, updated_at: now_rfc3339(), version: before.version + 1, ..before.clone() };
        let put = Write::replace(keys::tenant_pk(tenant), keys::rule_sk(id), version, &rule);
        let change = Change::new("automation.rule.toggle", format!("rule:{id}"))
            .before(json!({"is_active": before.is_active}))
            .after(json!({"is_active": active}));
        self.arm(&rule).await?;
        self.write_rule(actor, tenant, vec![put, Self::snapshot(tenant, &rule)], change).await?;
        Ok(rule)
    }

    /// A rule's versions, newest first.
    pub async fn rule_versions(&self, tenant: &TenantId, id: &str, page: &PageRequest) -> AppResult<Listed<Rule>> {
        self.rule(tenant, id).await?;
        let pk = keys::tenant_pk(tenant);
        let prefix = keys::rule_versions_prefix(id);
        let query = Query { descending: true, ..Query::new(&pk, &prefix) };
        scan_filtered(self.store.as_ref(), query, page, |item| {
            Ok(Some(decode_at::<Rule>(&item.pk, &item.sk, item.data)?))
        })
        .await
    }

    pub async fn rule_version(&self, tenant: &TenantId, id: &str, version: u64) -> AppResult<Rule> {
        self.rule(tenant, id).await?;
        get_typed(self.store.as_ref(), &keys::tenant_pk(tenant), &keys::rule_version_sk(id, version), || {
            AppError::NotFound(format!("rule '{id}' has no version {version}"))
        })
        .await
        .map(|(rule, _)| rule)
    }

    /// A new version with an earlier version's name, conditions, actions and state,
    /// checked against the trigger as it is now.
    pub async fn rollback_rule(&self, actor: &Actor, tenant: &TenantId, id: &str, to: u64) -> AppResult<Rule> {
        let (current, version) = self.rule(tenant, id).await?;
        let earlier = self.rule_version(tenant, id, to).await?;
        let written = json!({"name": earlier.name, "description": earlier.description, "module_type": earlier.module_type,
            "trigger_id": earlier.trigger_id, "conditions": earlier.conditions, "actions": earlier.actions,
            "is_active": earlier.is_active, "schedule": earlier.schedule});
        let input: RuleInput = serde_json::from_value(written).map_err(|e| AppError::Internal(e.to_string()))?;
        let Checked { conditions, actions, schedule } = self.checked(tenant, &input).await?;
        let rule = Rule {
            name: earlier.name.clone(),
            description: earlier.description.clone(),
            conditions,
            actions,
            is_active: earlier.is_active,
            updated_at: now_rfc3339(),
            version: current.version + 1,
            schedule,
            ..current.clone()
        };
        let put = Write::replace(keys::tenant_pk(tenant), keys::rule_sk(id), version, &rule);
        let change = Change::new("automation.rule.rollback", format!("rule:{id}"))
            .before(json!({"version": current.version}))
            .after(json!({"version": rule.version, "from_version": to}));
        self.arm(&rule).await?;
        self.write_rule(actor, tenant, vec![put, Self::snapshot(tenant, &rule)], change).await?;
        Ok(rule)
    }

    pub async fn delete_rule(&self, actor: &Actor, tenant: &TenantId, id: &str) -> AppResult<()> {
        let (before, version) = self.rule(tenant, id).await?;
        let delete = Write::Delete {
            pk: keys::tenant_pk(tenant),
            sk: keys::rule_sk(id),
            condition: Condition::Version(version),
        };
        self.write_rule(
            actor,
            tenant,
            vec![delete],
            Change::new("automation.rule.delete", format!("rule:{id}")).before(before.clone().redacted()),
        )
        .await
    }

    pub async fn list_rules(
        &self,
        tenant: &TenantId,
        filter: &RuleFilter,
        page: &PageRequest,
    ) -> AppResult<Listed<Rule>> {
        let items = self.store.query_all(&keys::tenant_pk(tenant), keys::RULE_PREFIX).await?;
        let mut rules: Vec<(String, Rule)> = items
            .into_iter()
            .filter_map(|i| serde_json::from_value::<Rule>(i.data).ok().map(|r| (i.sk, r)))
            .filter(|(_, r)| filter.module_type.as_ref().is_none_or(|m| &r.module_type == m))
            .filter(|(_, r)| filter.trigger_id.as_ref().is_none_or(|t| &r.trigger_id == t))
            .filter(|(_, r)| filter.is_active.is_none_or(|a| r.is_active == a))
            .collect();
        if let Some(after) = &page.after {
            rules.retain(|(sk, _)| sk.as_str() > after.as_str());
        }
        let more = rules.len() > page.limit;
        rules.truncate(page.limit);
        let next = if more { rules.last().map(|(sk, _)| sk.clone()) } else { None };
        Listed::from_page(
            crate::ports::store::Page {
                items: rules
                    .into_iter()
                    .map(|(sk, r)| Item::new("", sk, 0, serde_json::to_value(r).expect("serializes")))
                    .collect(),
                next,
            },
            |i| decode_at(&i.pk, &i.sk, i.data),
        )
    }

    /// Evaluates a rule against a sample without side effects.
    pub async fn test_rule(&self, tenant: &TenantId, id: &str, sample: SampleEvent) -> AppResult<RuleTest> {
        let rule = self.get_rule(tenant, id).await?;
        let event = BusinessEvent {
            event_id: "test".to_string(),
            tenant_id: tenant.to_string(),
            module_type: rule.module_type.clone(),
            trigger_id: rule.trigger_id.clone(),
            occurred_at: now_rfc3339(),
            data: sample.data,
            changes: sample.changes,
            causation: Causation::default(),
            native: None,
        };
        let fields = self.trigger(tenant, &rule.module_type, &rule.trigger_id).await?.fields;
        let held = evaluate(&rule, &fields, &event);
        let matched = held.iter().all(|h| *h);
        let conditions =
            rule.conditions.iter().zip(&held).map(|(c, h)| crate::app::engine::ConditionResult::of(c, *h)).collect();
        let actions = rule
            .actions
            .iter()
            .map(|a| {
                let would = match render_value(&Value::Object(a.action.parameters()), &event.data) {
                    Value::Object(rendered) if matched => Value::Object(mask_parameters(&rendered)),
                    _ => Value::Null,
                };
                json!({"type": a.action.kind(), "would": would})
            })
            .collect();
        Ok(RuleTest { matched, conditions, actions })
    }
}

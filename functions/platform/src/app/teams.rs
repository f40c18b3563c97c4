//! Teams of a tenant and their members.

use std::sync::Arc;

use serde::Deserialize;

use super::audit::{self, Actor, Change};
use super::error::{AppError, AppResult};
use super::keys;
use super::page::{get_typed, page_of, Listed, PageRequest};
use super::principal::Principal;
use super::stored::{committed, optimistic, Step};
use crate::domain::identity::{check_name, Team};
use crate::domain::ids::TenantId;
use crate::domain::invalid::{FieldIssue, Invalid};
use crate::domain::time::now_rfc3339;
use crate::ports::store::{Store, Write};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Clone)]
pub struct TeamService {
    store: Arc<dyn Store>,
}

impl TeamService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    pub async fn list(&self, tenant: &TenantId, page: &PageRequest) -> AppResult<Listed<Team>> {
        page_of(self.store.as_ref(), &keys::tenant_pk(tenant), keys::TEAM_PREFIX, page, false).await
    }

    async fn team(&self, tenant: &TenantId, team_id: &str) -> AppResult<(Team, u64)> {
        get_typed(self.store.as_ref(), &keys::tenant_pk(tenant), &keys::team_sk(team_id), || {
            AppError::NotFound(format!("team '{team_id}' does not exist"))
        })
        .await
    }

    /// The teams `user_id` is a member of.
    pub async fn teams_of(&self, tenant: &TenantId, user_id: &str) -> AppResult<Vec<String>> {
        Ok(teams_by_user(self.store.as_ref(), tenant).await?.remove(user_id).unwrap_or_default())
    }

    pub async fn get(&self, tenant: &TenantId, team_id: &str) -> AppResult<Team> {
        Ok(self.team(tenant, team_id).await?.0)
    }

    async fn check_members(&self, tenant: &TenantId, members: &[String], field: &str) -> AppResult<()> {
        let mut issues = Vec::new();
        for (i, member) in members.iter().enumerate() {
            if self.store.get(&keys::tenant_pk(tenant), &keys::user_sk(member)).await?.is_none() {
                issues
                    .push(FieldIssue::new(format!("{field}[{i}]"), format!("'{member}' is not a user of this tenant")));
            }
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(Invalid(issues).into())
        }
    }

    pub async fn create(&self, principal: &Principal, actor: &Actor, new: NewTeam) -> AppResult<Team> {
        let tenant = principal.tenant()?;
        let mut issues = Vec::new();
        check_name(&mut issues, "name", &new.name, 100);
        if !issues.is_empty() {
            return Err(Invalid(issues).into());
        }
        self.check_members(tenant, &new.members, "members").await?;
        let now = now_rfc3339();
        let mut members = new.members;
        members.sort();
        members.dedup();
        let team = Team {
            team_id: ulid::Ulid::generate().to_string(),
            name: new.name,
            description: new.description,
            members,
            created_at: now.clone(),
            updated_at: now,
        };
        let writes = vec![
            Write::create(keys::tenant_pk(tenant), keys::team_sk(&team.team_id), &team),
            audit::record(
                actor,
                Some(tenant),
                Change::new("team.create", format!("team:{}", team.team_id)).after(&team),
            ),
        ];
        self.store.transact(writes).await?;
        Ok(team)
    }

    /// Adds (`add`) or removes a member, atomically with its audit entry.
    pub async fn change_member(
        &self,
        principal: &Principal,
        actor: &Actor,
        team_id: &str,
        user_id: &str,
        add: bool,
    ) -> AppResult<Team> {
        let tenant = principal.tenant()?;
        if add {
            self.check_members(tenant, &[user_id.to_string()], "user_id")
                .await
                .map_err(|_| AppError::Invalid(Invalid::one("user_id", "is not a user of this tenant")))?;
        }
        optimistic("the team is changing concurrently; retry", || async {
            let (mut team, version) = self.team(tenant, team_id).await?;
            let before = team.clone();
            let present = team.members.iter().any(|m| m == user_id);
            match (add, present) {
                (true, true) => return Ok(Step::Done(team)),
                (false, false) => {
                    return Err(AppError::NotFound(format!("user '{user_id}' is not a member of team '{team_id}'")))
                }
                (true, false) => team.members.push(user_id.to_string()),
                (false, true) => team.members.retain(|m| m != user_id),
            }
            team.members.sort();
            team.updated_at = now_rfc3339();
            let action = if add { "team.member.add" } else { "team.member.remove" };
            let writes = vec![
                Write::replace(keys::tenant_pk(tenant), keys::team_sk(team_id), version, &team),
                audit::record(
                    actor,
                    Some(tenant),
                    Change::new(action, format!("team:{team_id}")).before(&before).after(&team),
                ),
            ];
            Ok(committed(self.store.transact(writes).await)?.map(|()| team))
        })
        .await
    }
}

/// Every member of the tenant's teams -> the team ids they are in.
pub async fn teams_by_user(
    store: &dyn Store,
    tenant: &TenantId,
) -> AppResult<std::collections::HashMap<String, Vec<String>>> {
    let pk = keys::tenant_pk(tenant);
    let mut by_user: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let found = store
            .query(crate::ports::store::Query {
                limit: 200,
                after: after.as_deref(),
                ..crate::ports::store::Query::new(&pk, keys::TEAM_PREFIX)
            })
            .await?;
        for item in found.items {
            let team: Team = crate::app::stored::decode(item)?;
            for member in team.members {
                by_user.entry(member).or_default().push(team.team_id.clone());
            }
        }
        match found.next {
            Some(next) => after = Some(next),
            None => return Ok(by_user),
        }
    }
}

//! `?scope=tenant|platform`: whose settings or flags a request names.

use serde::Deserialize;

use super::extract::Params;
use crate::app::error::{AppError, AppResult};
use crate::app::principal::Principal;
use crate::domain::access::Permission;
use crate::domain::config::Owner;
use crate::domain::invalid::Invalid;

/// The scope of a setting or flag: the caller's tenant, or the whole platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Tenant,
    Platform,
}

impl Scope {
    /// The scope the query names, if it names one (an empty value names none).
    pub fn named(params: &Params) -> AppResult<Option<Scope>> {
        match params.0.get("scope").map(String::as_str) {
            None | Some("") => Ok(None),
            Some("tenant") => Ok(Some(Scope::Tenant)),
            Some("platform") => Ok(Some(Scope::Platform)),
            Some(_) => Err(AppError::BadRequest(Invalid::one("scope", "must be tenant or platform"))),
        }
    }

    /// The scope the query names, else the caller's own: the platform administrator, who
    /// has no tenant, is in the platform scope.
    pub fn of(principal: &Principal, params: &Params) -> AppResult<Scope> {
        Ok(Self::named(params)?.unwrap_or(if principal.tenant.is_none() { Scope::Platform } else { Scope::Tenant }))
    }

    /// Whose items the request reaches: the caller's tenant, or the platform's, which
    /// only the platform administrator may reach when `administered` (writes, versions).
    pub fn owner<'a>(self, principal: &'a Principal, administered: bool, what: &str) -> AppResult<Owner<'a>> {
        match self {
            Scope::Tenant => Ok(Owner::Tenant(principal.tenant()?)),
            Scope::Platform if !administered || principal.can(Permission::PlatformOperate) => Ok(Owner::Platform),
            Scope::Platform => {
                Err(AppError::Forbidden(format!("platform {what} are changed by the platform administrator")))
            }
        }
    }
}

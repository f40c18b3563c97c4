//! Who is calling, for which tenant: the one place that decides it.
//!
//! Today the tenant comes from the `X-Tenant-ID` header and catalog administration from
//! the platform administrator bearer token; the identity work replaces the header with
//! verified tokens here, without touching any handler.

use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::header;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use super::AppState;
use crate::app::error::AppError;
use crate::domain::ids::TenantId;
use crate::domain::invalid::Invalid;

pub const TENANT_HEADER: &str = "x-tenant-id";

/// Secrets that establish identity. Never logged.
#[derive(Clone, Default)]
pub struct AuthConfig {
    pub platform_admin_token: Option<String>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("platform_admin_token", &self.platform_admin_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct Caller {
    tenant: Option<TenantId>,
    platform_admin: bool,
}

impl Caller {
    /// The caller's tenant; 401 when the request names none.
    pub fn tenant(&self) -> Result<&TenantId, AppError> {
        self.tenant.as_ref().ok_or_else(|| AppError::Unauthorized(format!("the {TENANT_HEADER} header is required")))
    }

    /// The caller's tenant, which a path `{tenant_id}` must name. Another tenant is
    /// refused whether or not it exists, so the answer reveals nothing about it.
    pub fn tenant_in_path(&self, path_tenant: &str) -> Result<&TenantId, AppError> {
        let tenant = self.tenant()?;
        if tenant.as_str() != path_tenant {
            return Err(AppError::Forbidden("the path names another tenant than the caller's".to_string()));
        }
        Ok(tenant)
    }

    /// Catalog administration: only the platform administrator.
    pub fn require_platform_admin(&self) -> Result<(), AppError> {
        if self.platform_admin {
            Ok(())
        } else {
            Err(AppError::Unauthorized("catalog administration needs the platform administrator token".to_string()))
        }
    }
}

fn is_admin(auth: &AuthConfig, parts: &Parts) -> bool {
    let Some(expected) = auth.platform_admin_token.as_deref().filter(|t| !t.is_empty()) else { return false };
    let presented = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(expected.as_bytes())))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let tenant = match parts.headers.get(TENANT_HEADER) {
            None => None,
            Some(raw) => {
                let raw = raw.to_str().map_err(|_| AppError::BadRequest(Invalid::one(TENANT_HEADER, "is not text")))?;
                Some(
                    TenantId::parse(raw)
                        .map_err(|e| AppError::BadRequest(Invalid::one(TENANT_HEADER, e.0[0].message.clone())))?,
                )
            }
        };
        let auth: &Arc<AuthConfig> = &state.auth;
        Ok(Caller { tenant, platform_admin: is_admin(auth, parts) })
    }
}

/// The platform administrator, or a 401 before anything else of the request is read.
pub struct PlatformAdmin;

impl FromRequestParts<AppState> for PlatformAdmin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Caller::from_request_parts(parts, state).await?.require_platform_admin()?;
        Ok(PlatformAdmin)
    }
}

/// The caller's tenant, checked before the body is read (401 without one).
pub struct CallerTenant(pub TenantId);

impl FromRequestParts<AppState> for CallerTenant {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(CallerTenant(Caller::from_request_parts(parts, state).await?.tenant()?.clone()))
    }
}

/// The caller's tenant, which the path's `{tenant_id}` must name (403 otherwise).
pub struct PathTenant(pub TenantId);

impl FromRequestParts<AppState> for PathTenant {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::NotFound("no such resource".to_string()))?;
        let in_path = params
            .iter()
            .find(|(name, _)| *name == "tenant_id")
            .map(|(_, value)| value.to_string())
            .ok_or_else(|| AppError::NotFound("no such resource".to_string()))?;
        Ok(PathTenant(caller.tenant_in_path(&in_path)?.clone()))
    }
}

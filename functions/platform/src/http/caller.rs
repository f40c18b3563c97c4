//! Who is calling, for which tenant, with which permissions: the one place that decides.
//!
//! A bearer credential (access token, API key or the platform administrator token) is
//! verified by the [`Authenticator`](crate::app::principal::Authenticator). The tenant
//! comes from it, never from the body; an `X-Tenant-ID` header or a path `{tenant_id}`
//! naming another tenant is refused.

use std::marker::PhantomData;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::header;
use axum::http::request::Parts;

use super::AppState;
use crate::app::audit::{Actor, RequestIds};
use crate::app::error::{AppError, AppResult};
use crate::app::principal::Principal;
use crate::domain::access::Permission;
use crate::domain::ids::TenantId;
use crate::domain::invalid::Invalid;

pub const TENANT_HEADER: &str = "x-tenant-id";
/// Set by the platform on every request (see `http::assign_request_id`); the client's own
/// value, if it sent one, moves to [`CLIENT_REQUEST_ID_HEADER`].
pub const REQUEST_ID_HEADER: &str = "x-request-id";
pub const CLIENT_REQUEST_ID_HEADER: &str = "x-client-request-id";

/// The request as far as identity goes; credentials are already verified.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Option<Principal>,
    /// The `X-Tenant-ID` header, when sent (for sign-in and password reset).
    pub header_tenant: Option<TenantId>,
    pub request: RequestIds,
    pub user_agent: Option<String>,
    /// The client's network address: API Gateway's source IP on Lambda, the TCP peer locally.
    pub address: Option<std::net::IpAddr>,
}

/// The platform's and the client's request ids of a request.
pub fn request_ids(parts: &Parts) -> RequestIds {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    RequestIds {
        platform: header(REQUEST_ID_HEADER).unwrap_or_else(|| "-".to_string()),
        client: header(CLIENT_REQUEST_ID_HEADER),
    }
}

/// Where the request came from; never from a header a client could set.
fn client_address(parts: &Parts) -> Option<std::net::IpAddr> {
    use lambda_http::request::RequestContext;
    if let Some(RequestContext::ApiGatewayV2(context)) = parts.extensions.get::<RequestContext>() {
        return context.http.source_ip.as_deref().and_then(|ip| ip.parse().ok());
    }
    parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip())
}

/// The bearer credential: `Authorization: Bearer ...`, or an `X-API-Key` header (how
/// OpenFeature's OFREP providers send an API key).
fn bearer(parts: &Parts) -> Option<&str> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return parts.headers.get("x-api-key")?.to_str().ok().map(str::trim).filter(|k| !k.is_empty());
    };
    // UTF-8 rather than `to_str`'s visible-ASCII check, which goes byte by byte over a
    // ~700-byte token on every request; a token with other characters fails verification.
    let value = std::str::from_utf8(value.as_bytes()).ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header_tenant = match parts.headers.get(TENANT_HEADER) {
            None => None,
            Some(raw) => {
                let raw = raw.to_str().map_err(|_| AppError::BadRequest(Invalid::one(TENANT_HEADER, "is not text")))?;
                Some(
                    TenantId::parse(raw)
                        .map_err(|e| AppError::BadRequest(Invalid::one(TENANT_HEADER, e.0[0].message.clone())))?,
                )
            }
        };
        let principal =
            match bearer(parts) {
                None => None,
                Some(token) => Some(state.services.authn().authenticate(token).await?.ok_or_else(|| {
                    AppError::Unauthorized("the credentials are not valid or have expired".to_string())
                })?),
            };
        if let (Some(Principal { tenant: Some(own), .. }), Some(named)) = (&principal, &header_tenant) {
            if own != named {
                return Err(AppError::Forbidden(format!(
                    "the {TENANT_HEADER} header names another tenant than the caller's"
                )));
            }
        }
        let user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string);
        Ok(Caller { principal, header_tenant, request: request_ids(parts), user_agent, address: client_address(parts) })
    }
}

/// What an endpoint needs: a permission, or just a signed-in caller.
pub trait Requirement {
    const PERMISSION: Option<Permission>;
}

/// The requirement markers, one per permission.
pub mod need {
    use super::Requirement;
    use crate::domain::access::Permission;

    macro_rules! markers {
        ($($name:ident => $perm:expr),* $(,)?) => {$(
            pub struct $name;
            impl Requirement for $name {
                const PERMISSION: Option<Permission> = $perm;
            }
        )*};
    }

    markers! {
        SignedIn => None,
        SystemsRead => Some(Permission::SystemsRead),
        SystemsManage => Some(Permission::SystemsManage),
        ConfigRead => Some(Permission::ConfigRead),
        ConfigWrite => Some(Permission::ConfigWrite),
        UsersRead => Some(Permission::UsersRead),
        UsersManage => Some(Permission::UsersManage),
        RolesManage => Some(Permission::RolesManage),
        TeamsManage => Some(Permission::TeamsManage),
        ApiKeysManage => Some(Permission::ApiKeysManage),
        AuditRead => Some(Permission::AuditRead),
        RecordsRead => Some(Permission::RecordsRead),
        RecordsWrite => Some(Permission::RecordsWrite),
        AutomationRead => Some(Permission::AutomationRead),
        AutomationManage => Some(Permission::AutomationManage),
        CatalogManage => Some(Permission::CatalogManage),
        PlatformOperate => Some(Permission::PlatformOperate),
    }
}

/// A verified caller holding the permission `R` names; a path `{tenant_id}` must be theirs.
/// Rejects (401, then 403) before anything else of the request is read.
pub struct Authorized<R> {
    pub principal: Principal,
    pub request: RequestIds,
    _requirement: PhantomData<R>,
}

impl<R> Authorized<R> {
    pub fn tenant(&self) -> AppResult<&TenantId> {
        self.principal.tenant()
    }

    pub fn actor(&self) -> Actor {
        self.principal.actor(&self.request.platform).with_client_request_id(self.request.client.clone())
    }
}

impl<R: Requirement + Send + Sync> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let principal = caller
            .principal
            .ok_or_else(|| AppError::Unauthorized("sign in: this endpoint needs a bearer token".to_string()))?;
        if let Some(permission) = R::PERMISSION {
            if !principal.can(permission) {
                return Err(AppError::Forbidden(format!("this needs the '{permission}' permission")));
            }
        }
        let params = RawPathParams::from_request_parts(parts, state).await.ok();
        let in_path =
            params.as_ref().and_then(|p| p.iter().find(|(name, _)| *name == "tenant_id").map(|(_, v)| v.to_string()));
        // The platform administrator names tenants in paths (offboarding); everyone else
        // only their own.
        let administrator = principal.subject == crate::app::principal::Subject::PlatformAdmin;
        if let Some(in_path) = in_path.filter(|_| !administrator) {
            // Refused alike whether or not that tenant exists: the answer reveals nothing.
            if principal.tenant.as_ref().map(TenantId::as_str) != Some(in_path.as_str()) {
                return Err(AppError::Forbidden("the path names another tenant than the caller's".to_string()));
            }
        }
        if let Some(tenant) = &principal.tenant {
            tracing::Span::current().record("tenant", tenant.as_str());
        }
        Ok(Authorized { principal, request: caller.request, _requirement: PhantomData })
    }
}

#[cfg(test)]
mod tests {
    use super::bearer;

    fn parts(headers: &[(&str, &[u8])]) -> axum::http::request::Parts {
        let mut request = axum::http::Request::builder();
        for (name, value) in headers {
            request = request.header(*name, axum::http::HeaderValue::from_bytes(value).unwrap());
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_bearer_credential_is_read_from_authorization_or_x_api_key() {
        assert_eq!(bearer(&parts(&[("authorization", b"Bearer abc.def")])), Some("abc.def"));
        assert_eq!(bearer(&parts(&[("authorization", b"bearer  abc ")])), Some("abc"), "any case, trimmed");
        assert_eq!(bearer(&parts(&[("authorization", b"Basic dXNlcg==")])), None, "another scheme");
        assert_eq!(bearer(&parts(&[("x-api-key", b" bp_key ")])), Some("bp_key"));
        assert_eq!(bearer(&parts(&[])), None);
    }

    #[test]
    fn a_bearer_that_is_not_utf8_is_no_credential() {
        assert_eq!(bearer(&parts(&[("authorization", b"Bearer \xff\xfe")])), None);
        // Other UTF-8 is passed on, to fail verification like any wrong token.
        assert_eq!(bearer(&parts(&[("authorization", "Bearer t\u{f6}ken".as_bytes())])), Some("t\u{f6}ken"));
    }
}

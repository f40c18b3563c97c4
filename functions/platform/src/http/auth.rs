//! `/api/v1/auth`: tenant onboarding, sign-in, tokens, sessions, password reset and
//! email verification.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::caller::{need, Authorized, Caller};
use super::extract::JsonBody;
use super::problem::Problem;
use super::{AppState, RouteTable};
use crate::app::error::{AppError, AppResult};
use crate::app::principal::Subject;
use crate::app::sessions::{check_login_fields, SignIn, TokenPair};
use crate::app::tenants::{InitializeTenant, TenantInitialized, TenantStatus};
use crate::domain::access::Permission;
use crate::domain::identity::{Session, User};
use crate::domain::ids::TenantId;
use crate::domain::invalid::Invalid;

pub fn routes<R: RouteTable>() -> R {
    R::empty()
        .with(routes!(initialize_tenant))
        .with(routes!(verify_tenant))
        .with(routes!(login))
        .with(routes!(refresh))
        .with(routes!(logout))
        .with(routes!(me))
        .with(routes!(test))
        .with(routes!(sessions))
        .with(routes!(revoke_session))
        .with(routes!(change_password))
        .with(routes!(request_password_reset))
        .with(routes!(confirm_password_reset))
        .with(routes!(request_email_verification))
        .with(routes!(confirm_email))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyTenant {
    #[schema(value_type = String)]
    pub tenant_id: TenantId,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// Or the `X-Tenant-ID` header.
    #[schema(value_type = Option<String>)]
    pub tenant_id: Option<TenantId>,
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Refresh {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// Or the `X-Tenant-ID` header.
    #[schema(value_type = Option<String>)]
    pub tenant_id: Option<TenantId>,
    pub email: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    pub token: String,
    pub new_password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenOnly {
    pub token: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    #[serde(flatten)]
    pub user: User,
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub status: &'static str,
}

fn tenant_of(body: Option<TenantId>, caller: &Caller) -> AppResult<TenantId> {
    body.or_else(|| caller.header_tenant.clone())
        .ok_or_else(|| AppError::Invalid(Invalid::one("tenant_id", "is required (or send the X-Tenant-ID header)")))
}

/// Create a tenant with its owner and default settings (platform administrator).
#[utoipa::path(post, path = "/api/v1/auth/initialize-tenant", tag = "auth", request_body = InitializeTenant,
    security(("bearer" = [])),
    responses((status = 201, body = TenantInitialized), (status = 401, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn initialize_tenant(
    State(state): State<AppState>,
    admin: Authorized<need::CatalogManage>,
    JsonBody(request): JsonBody<InitializeTenant>,
) -> AppResult<impl IntoResponse> {
    let done = state.services.tenants().initialize_tenant(&admin.actor(), request).await?;
    Ok((StatusCode::CREATED, Json(done)))
}

/// Whether a tenant exists and is complete (platform administrator).
#[utoipa::path(post, path = "/api/v1/auth/verify-tenant", tag = "auth", request_body = VerifyTenant,
    security(("bearer" = [])),
    responses((status = 200, body = TenantStatus), (status = 401, body = Problem)))]
async fn verify_tenant(
    State(state): State<AppState>,
    _admin: Authorized<need::CatalogManage>,
    JsonBody(request): JsonBody<VerifyTenant>,
) -> AppResult<Json<TenantStatus>> {
    Ok(Json(state.services.tenants().verify_tenant(&request.tenant_id).await?))
}

/// Sign in. Every failure is the same 401; repeated failures lock the email with growing delays (429).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = Login,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem), (status = 429, body = Problem)))]
async fn login(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<Login>,
) -> AppResult<Json<TokenPair>> {
    check_login_fields(&request.email, &request.password)?;
    let tenant = tenant_of(request.tenant_id, &caller)?;
    let sign_in = SignIn {
        tenant: &tenant,
        email: &request.email,
        password: &request.password,
        user_agent: caller.user_agent.clone(),
        address: caller.address,
        request: &caller.request,
    };
    let pair = state.services.sessions().login(sign_in).await?;
    Ok(Json(pair))
}

/// Exchange a refresh token for new tokens; the old refresh token stops working, and
/// presenting it again revokes the session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = Refresh,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem)))]
async fn refresh(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<Refresh>,
) -> AppResult<Json<TokenPair>> {
    Ok(Json(state.services.sessions().refresh(&request.refresh_token, &caller.request).await?))
}

/// Sign out: the session is revoked server-side and its tokens stop working.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem)))]
async fn logout(State(state): State<AppState>, auth: Authorized<need::SignedIn>) -> AppResult<StatusCode> {
    state.services.sessions().revoke_session(&auth.principal, None, &auth.request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user, with their permissions.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = Problem)))]
async fn me(State(state): State<AppState>, auth: Authorized<need::SignedIn>) -> AppResult<Json<Me>> {
    let (user, permissions) = state.services.sessions().me(&auth.principal).await?;
    Ok(Json(Me { user, permissions }))
}

/// Checks a credential: who it is and for which tenant.
#[utoipa::path(get, path = "/api/v1/auth/test", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = Problem)))]
async fn test(auth: Authorized<need::SignedIn>) -> Json<serde_json::Value> {
    let kind = match &auth.principal.subject {
        Subject::User { .. } => "user",
        Subject::ApiKey { .. } => "api_key",
        Subject::PlatformAdmin => "platform_admin",
    };
    Json(serde_json::json!({
        "authenticated": true,
        "kind": kind,
        "user_id": auth.principal.user_id(),
        "tenant_id": auth.principal.tenant.as_ref().map(TenantId::as_str),
    }))
}

/// The caller's active sessions, newest first.
#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Vec<Session>), (status = 401, body = Problem)))]
async fn sessions(State(state): State<AppState>, auth: Authorized<need::SignedIn>) -> AppResult<Json<Vec<Session>>> {
    Ok(Json(state.services.sessions().sessions(&auth.principal).await?))
}

/// Revoke one of the caller's sessions.
#[utoipa::path(delete, path = "/api/v1/auth/sessions/{session_id}", tag = "auth", security(("bearer" = [])),
    params(("session_id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn revoke_session(
    State(state): State<AppState>,
    auth: Authorized<need::SignedIn>,
    Path(session_id): Path<String>,
) -> AppResult<StatusCode> {
    state.services.sessions().revoke_session(&auth.principal, Some(&session_id), &auth.request).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Change the caller's password. Every token and session of theirs ends at once; the
/// answer carries the tokens of a new session.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", security(("bearer" = [])), request_body = PasswordChange,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn change_password(
    State(state): State<AppState>,
    auth: Authorized<need::SignedIn>,
    caller: Caller,
    JsonBody(request): JsonBody<PasswordChange>,
) -> AppResult<Json<TokenPair>> {
    let pair = state
        .services
        .sessions()
        .change_password(
            &auth.principal,
            &request.current_password,
            &request.new_password,
            caller.user_agent,
            &auth.request,
        )
        .await?;
    Ok(Json(pair))
}

/// Ask for a password reset; the answer is the same whether or not the account exists.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", request_body = ResetRequest,
    responses((status = 202, body = Accepted)))]
async fn request_password_reset(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<ResetRequest>,
) -> AppResult<impl IntoResponse> {
    let tenant = tenant_of(request.tenant_id, &caller)?;
    state.services.recovery().request_password_reset(&tenant, &request.email).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { status: "if the account exists, a message is on its way" })))
}

/// Choose a new password with a reset token (single use); every session is signed out.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "auth", request_body = ResetConfirm,
    responses((status = 204), (status = 422, body = Problem)))]
async fn confirm_password_reset(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<ResetConfirm>,
) -> AppResult<StatusCode> {
    state.services.recovery().confirm_password_reset(&request.token, &request.new_password, &caller.request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send the signed-in user a verification message.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", security(("bearer" = [])),
    responses((status = 202, body = Accepted), (status = 401, body = Problem)))]
async fn request_email_verification(
    State(state): State<AppState>,
    auth: Authorized<need::SignedIn>,
) -> AppResult<impl IntoResponse> {
    let (user, _) = state.services.sessions().me(&auth.principal).await?;
    state.services.recovery().request_email_verification(auth.tenant()?, &user).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { status: "a verification message is on its way" })))
}

/// Confirm an email address with the token from the message (single use).
#[utoipa::path(post, path = "/api/v1/auth/verify-email/confirm", tag = "auth", request_body = TokenOnly,
    responses((status = 204), (status = 422, body = Problem)))]
async fn confirm_email(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<TokenOnly>,
) -> AppResult<StatusCode> {
    state.services.recovery().confirm_email(&request.token, &caller.request).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! `/api/v1/users`: users, roles, permissions, teams and API keys (the original API's paths).

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;

use super::caller::{need, Authorized};
use super::extract::{IfMatchHeader, JsonBody, Params};
use super::problem::Problem;
use super::{etag_header, AppState, RouteTable};
use crate::app::api_keys::{CreatedApiKey, NewApiKey};
use crate::app::error::AppResult;
use crate::app::page::Listed;
use crate::app::roles::{NewRole, PermissionInfo, RoleService, RoleUpdate};
use crate::app::teams::NewTeam;
use crate::app::users::{NewUser, UserUpdate};
use crate::domain::identity::{ApiKey, Role, Team, User};

pub fn routes<R: RouteTable>() -> R {
    R::empty()
        .with(routes!(list_users, create_user))
        .with(routes!(get_user, update_user, delete_user))
        .with(routes!(list_roles, create_role))
        .with(routes!(update_role))
        .with(routes!(list_permissions))
        .with(routes!(list_teams, create_team))
        .with(routes!(get_team))
        .with(routes!(add_member))
        .with(routes!(remove_member))
        .with(routes!(list_api_keys, create_api_key))
        .with(routes!(revoke_api_key))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    pub user_id: String,
}

/// List the tenant's users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<User>), (status = 403, body = Problem)))]
async fn list_users(
    State(state): State<AppState>,
    auth: Authorized<need::UsersRead>,
    params: Params,
) -> AppResult<Json<Listed<User>>> {
    Ok(Json(state.services.users().list(auth.tenant()?, &params.page()?).await?))
}

/// Create a user (a verification message is sent to them).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = [])), request_body = NewUser,
    responses((status = 201, body = User), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_user(
    State(state): State<AppState>,
    auth: Authorized<need::UsersManage>,
    JsonBody(new): JsonBody<NewUser>,
) -> AppResult<impl IntoResponse> {
    let user = state.services.users().create(&auth.principal, &auth.actor(), new).await?;
    let location = format!("/api/v1/users/{}", user.user_id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(user)))
}

/// Get a user.
#[utoipa::path(get, path = "/api/v1/users/{user_id}", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, body = User, headers(("ETag" = String))), (status = 404, body = Problem)))]
async fn get_user(
    State(state): State<AppState>,
    auth: Authorized<need::UsersRead>,
    Path(user_id): Path<String>,
) -> AppResult<impl IntoResponse> {
    let record = state.services.users().get(auth.tenant()?, &user_id).await?;
    Ok((etag_header(record.user_version), Json(record.user)))
}

/// Change a user's name, roles or status (disabling or changing roles signs them out).
#[utoipa::path(put, path = "/api/v1/users/{user_id}", tag = "users", security(("bearer" = [])), request_body = UserUpdate,
    params(("user_id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = User), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem)))]
async fn update_user(
    State(state): State<AppState>,
    auth: Authorized<need::UsersManage>,
    Path(user_id): Path<String>,
    if_match: IfMatchHeader,
    JsonBody(update): JsonBody<UserUpdate>,
) -> AppResult<impl IntoResponse> {
    let (user, version) =
        state.services.users().update(&auth.principal, &auth.actor(), &user_id, update, if_match.version()).await?;
    Ok((etag_header(version), Json(user)))
}

/// Delete a user: their sessions and API keys stop working.
#[utoipa::path(delete, path = "/api/v1/users/{user_id}", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_user(
    State(state): State<AppState>,
    auth: Authorized<need::UsersManage>,
    Path(user_id): Path<String>,
) -> AppResult<StatusCode> {
    state.services.users().delete(&auth.principal, &auth.actor(), &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Built-in and custom roles with their permissions.
#[utoipa::path(get, path = "/api/v1/users/roles", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Vec<Role>)))]
async fn list_roles(State(state): State<AppState>, auth: Authorized<need::UsersRead>) -> AppResult<Json<Vec<Role>>> {
    Ok(Json(state.services.roles().list(auth.tenant()?).await?))
}

/// Create a custom role from permissions.
#[utoipa::path(post, path = "/api/v1/users/roles", tag = "users", security(("bearer" = [])), request_body = NewRole,
    responses((status = 201, body = Role), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_role(
    State(state): State<AppState>,
    auth: Authorized<need::RolesManage>,
    JsonBody(new): JsonBody<NewRole>,
) -> AppResult<impl IntoResponse> {
    let role = state.services.roles().create(&auth.principal, &auth.actor(), new).await?;
    Ok((StatusCode::CREATED, Json(role)))
}

/// Change a custom role's description or permissions; you must hold every permission
/// it has and gets.
#[utoipa::path(put, path = "/api/v1/users/roles/{name}", tag = "users", security(("bearer" = [])), request_body = RoleUpdate,
    params(("name" = String, Path)),
    responses((status = 200, body = Role), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_role(
    State(state): State<AppState>,
    auth: Authorized<need::RolesManage>,
    Path(name): Path<String>,
    JsonBody(update): JsonBody<RoleUpdate>,
) -> AppResult<Json<Role>> {
    Ok(Json(state.services.roles().update(&auth.principal, &auth.actor(), &name, update).await?))
}

/// Every permission a role can hold.
#[utoipa::path(get, path = "/api/v1/users/permissions", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Vec<PermissionInfo>)))]
async fn list_permissions(_auth: Authorized<need::UsersRead>) -> Json<Vec<PermissionInfo>> {
    Json(RoleService::permissions())
}

/// List teams.
#[utoipa::path(get, path = "/api/v1/users/teams", tag = "users", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<Team>)))]
async fn list_teams(
    State(state): State<AppState>,
    auth: Authorized<need::UsersRead>,
    params: Params,
) -> AppResult<Json<Listed<Team>>> {
    Ok(Json(state.services.teams().list(auth.tenant()?, &params.page()?).await?))
}

/// Create a team, optionally with members.
#[utoipa::path(post, path = "/api/v1/users/teams", tag = "users", security(("bearer" = [])), request_body = NewTeam,
    responses((status = 201, body = Team), (status = 422, body = Problem)))]
async fn create_team(
    State(state): State<AppState>,
    auth: Authorized<need::TeamsManage>,
    JsonBody(new): JsonBody<NewTeam>,
) -> AppResult<impl IntoResponse> {
    let team = state.services.teams().create(&auth.principal, &auth.actor(), new).await?;
    Ok((StatusCode::CREATED, Json(team)))
}

/// Get a team with its members.
#[utoipa::path(get, path = "/api/v1/users/teams/{team_id}", tag = "users", security(("bearer" = [])),
    params(("team_id" = String, Path)),
    responses((status = 200, body = Team), (status = 404, body = Problem)))]
async fn get_team(
    State(state): State<AppState>,
    auth: Authorized<need::UsersRead>,
    Path(team_id): Path<String>,
) -> AppResult<Json<Team>> {
    Ok(Json(state.services.teams().get(auth.tenant()?, &team_id).await?))
}

/// Add a member to a team.
#[utoipa::path(post, path = "/api/v1/users/teams/{team_id}/members", tag = "users", security(("bearer" = [])), request_body = NewMember,
    params(("team_id" = String, Path)),
    responses((status = 200, body = Team), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn add_member(
    State(state): State<AppState>,
    auth: Authorized<need::TeamsManage>,
    Path(team_id): Path<String>,
    JsonBody(member): JsonBody<NewMember>,
) -> AppResult<Json<Team>> {
    Ok(Json(
        state.services.teams().change_member(&auth.principal, &auth.actor(), &team_id, &member.user_id, true).await?,
    ))
}

/// Remove a member from a team.
#[utoipa::path(delete, path = "/api/v1/users/teams/{team_id}/members/{user_id}", tag = "users", security(("bearer" = [])),
    params(("team_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = Team), (status = 404, body = Problem)))]
async fn remove_member(
    State(state): State<AppState>,
    auth: Authorized<need::TeamsManage>,
    Path((team_id, user_id)): Path<(String, String)>,
) -> AppResult<Json<Team>> {
    Ok(Json(state.services.teams().change_member(&auth.principal, &auth.actor(), &team_id, &user_id, false).await?))
}

/// The caller's API keys (never their secrets).
#[utoipa::path(get, path = "/api/v1/users/api-keys", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Vec<ApiKey>)))]
async fn list_api_keys(
    State(state): State<AppState>,
    auth: Authorized<need::ApiKeysManage>,
) -> AppResult<Json<Vec<ApiKey>>> {
    Ok(Json(state.services.api_keys().list(&auth.principal).await?))
}

/// Create an API key; its secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/users/api-keys", tag = "users", security(("bearer" = [])), request_body = NewApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 422, body = Problem)))]
async fn create_api_key(
    State(state): State<AppState>,
    auth: Authorized<need::ApiKeysManage>,
    JsonBody(new): JsonBody<NewApiKey>,
) -> AppResult<impl IntoResponse> {
    let created = state.services.api_keys().create(&auth.principal, &auth.actor(), new).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revoke an API key.
#[utoipa::path(delete, path = "/api/v1/users/api-keys/{key_id}", tag = "users", security(("bearer" = [])),
    params(("key_id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn revoke_api_key(
    State(state): State<AppState>,
    auth: Authorized<need::ApiKeysManage>,
    Path(key_id): Path<String>,
) -> AppResult<StatusCode> {
    state.services.api_keys().revoke(&auth.principal, &auth.actor(), &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

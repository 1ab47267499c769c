//! `/api/v1/workspaces`, `/users`, `/tokens` and `/audit`: who may call, and what they did.
//! Passwords and tokens are write-only, except a new token's text, shown once.

use super::PageParams;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, Query};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use wharf_service::{
    AuditView, NewTokenView, Page, PageRequest, TokenView, UserView, WorkspaceView,
};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceBody {
    pub name: String,
}

#[utoipa::path(get, path = "/workspaces", tag = "access", params(PageParams),
    responses((status = 200, description = "The token's workspace", body = Page<WorkspaceView>)))]
pub async fn list_workspaces(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<WorkspaceView>>> {
    let all = state.service.workspaces(&caller).await?;
    Ok(Json(PageRequest::from(page).of(all, |w| &w.name)?))
}

#[utoipa::path(post, path = "/workspaces", tag = "access", request_body = WorkspaceBody,
    responses((status = 201, description = "Created (admins)", body = WorkspaceView)))]
pub async fn add_workspace(
    State(state): State<AppState>,
    Auth(caller): Auth,
    JsonBody(body): JsonBody<WorkspaceBody>,
) -> ApiResult<(StatusCode, Json<WorkspaceView>)> {
    let view = state.service.create_workspace(&caller, &body.name).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// A user to add to the token's workspace.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    pub email: String,
    /// `admin`, `editor` or `viewer`.
    pub role: String,
    /// At least 12 characters; write-only (kept as an argon2id hash). A user who is already in
    /// another workspace gives their current password.
    pub password: String,
}

#[utoipa::path(get, path = "/users", tag = "access", params(PageParams),
    responses((status = 200, description = "A page of the workspace's users, by email (admins)", body = Page<UserView>)))]
pub async fn list_users(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<UserView>>> {
    let all = state.service.users(&caller).await?;
    Ok(Json(PageRequest::from(page).of(all, |u| &u.email)?))
}

#[utoipa::path(post, path = "/users", tag = "access", request_body = UserBody,
    responses((status = 201, description = "Added (admins)", body = UserView)))]
pub async fn add_user(
    State(state): State<AppState>,
    Auth(caller): Auth,
    JsonBody(body): JsonBody<UserBody>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let view = state
        .service
        .add_user(&caller, &body.email, &body.role, &body.password)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/users/{email}", tag = "access",
    params(("email" = String, Path, description = "The user's email", example = "ada@example.com")),
    responses((status = 200, description = "The user (admins)", body = UserView)))]
pub async fn show_user(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(email): Path<String>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(state.service.user(&caller, &email).await?))
}

#[utoipa::path(delete, path = "/users/{email}", tag = "access",
    params(("email" = String, Path, description = "The user's email", example = "ada@example.com")),
    responses((status = 204, description = "Removed from the workspace (admins)")))]
pub async fn remove_user(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(email): Path<String>,
) -> ApiResult<StatusCode> {
    state.service.remove_user(&caller, &email).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A token to create in the calling token's workspace.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    pub name: String,
    /// `admin`, `editor` or `viewer`.
    pub role: String,
    /// `90d`, `12h`, `30m`; default: it never expires.
    #[serde(default)]
    pub expires_in: Option<String>,
}

#[utoipa::path(get, path = "/tokens", tag = "access", params(PageParams),
    responses((status = 200, description = "A page of the workspace's tokens, by name, never their text (admins)", body = Page<TokenView>)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<TokenView>>> {
    let all = state.service.tokens(&caller).await?;
    Ok(Json(PageRequest::from(page).of(all, |t| &t.name)?))
}

#[utoipa::path(post, path = "/tokens", tag = "access", request_body = TokenBody,
    responses((status = 201, description = "Created; the only response that shows its text (admins)", body = NewTokenView)))]
pub async fn add_token(
    State(state): State<AppState>,
    Auth(caller): Auth,
    JsonBody(body): JsonBody<TokenBody>,
) -> ApiResult<(StatusCode, Json<NewTokenView>)> {
    let view = state
        .service
        .create_token(&caller, &body.name, &body.role, body.expires_in.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(delete, path = "/tokens/{name}", tag = "access",
    params(("name" = String, Path, description = "The token's name", example = "ci")),
    responses((status = 200, description = "Revoked: it stops working at once (admins)", body = TokenView)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<TokenView>> {
    Ok(Json(state.service.revoke_token(&caller, &name).await?))
}

#[utoipa::path(get, path = "/audit", tag = "access", params(PageParams),
    responses((status = 200, description = "The workspace's audit log, newest first (admins)", body = Page<AuditView>)))]
pub async fn audit(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<AuditView>>> {
    Ok(Json(
        state
            .service
            .audit_page(&caller, &PageRequest::from(page))
            .await?,
    ))
}

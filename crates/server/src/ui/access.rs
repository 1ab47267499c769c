//! The workspace's administration pages: API tokens (a new token is shown once), users (admins
//! only) and the audit log. The role rules are the service's: a page a role may not see answers
//! with the service's refusal.

use super::form::{FormState, is_form_error};
use super::session::{Page, SignedForm};
use super::{confirm, error_page, page, render, segment};
use crate::AppState;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use minijinja::context;
use serde::Deserialize;
use wharf_service::PageRequest;

/// Audit entries per page.
const AUDIT_PAGE: u32 = 100;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(tokens).post(create_token))
        .route("/tokens/{name}/revoke", get(confirm_revoke).post(revoke))
        .route("/users", get(users).post(add_user))
        .route(
            "/users/{email}/remove",
            get(confirm_remove).post(remove_user),
        )
        .route("/audit", get(audit))
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "revoked" => "Token revoked: it stops working at once.",
        "added" => "User added. They sign in with their email and the password you gave.",
        "removed" => "User removed from this workspace, and signed out of it.",
        _ => return None,
    })
}

async fn tokens_page(
    state: &AppState,
    page_: Page,
    status: StatusCode,
    form: FormState,
    created: Option<wharf_service::NewTokenView>,
    done: Option<&str>,
) -> Response {
    match state.service.tokens(page_.caller()).await {
        Ok(tokens) => render(
            status,
            "access/tokens.html",
            context! { chrome => page_.chrome, nav => "tokens", tokens, form, created, notice => notice(done) },
        ),
        Err(e) => error_page(e),
    }
}

/// `GET /tokens`.
async fn tokens(State(state): State<AppState>, Query(done): Query<Done>, page_: Page) -> Response {
    let form = FormState::with(&[("role", "viewer"), ("expires_in", "90d")]);
    tokens_page(
        &state,
        page_,
        StatusCode::OK,
        form,
        None,
        done.done.as_deref(),
    )
    .await
}

/// `POST /tokens`: the new token, shown on this answer only.
async fn create_token(State(state): State<AppState>, form: SignedForm) -> Response {
    let SignedForm {
        page: page_,
        fields,
    } = form;
    let created = state
        .service
        .create_token(
            page_.caller(),
            fields.text("name").trim(),
            fields.text("role"),
            fields.opt("expires_in").as_deref(),
        )
        .await;
    match created {
        Ok(token) => {
            let form = FormState::with(&[("role", "viewer"), ("expires_in", "90d")]);
            tokens_page(&state, page_, StatusCode::OK, form, Some(token), None).await
        }
        Err(e) if is_form_error(&e) => {
            let form = FormState::failed(&fields, &["name", "role", "expires_in"], &e);
            tokens_page(
                &state,
                page_,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                None,
                None,
            )
            .await
        }
        Err(e) => error_page(e),
    }
}

async fn confirm_revoke(Path(name): Path<String>, page_: Page) -> Response {
    let path = format!("/tokens/{}/revoke", segment(&name));
    confirm(
        page_,
        "tokens",
        format!("Revoke the token {name}?"),
        vec!["Scripts and tools that use it get 401 from then on. A revoked token cannot be restored: create a new one.".into()],
        path,
        "Revoke token",
        "/tokens".into(),
    )
}

async fn revoke(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SignedForm,
) -> Response {
    match state.service.revoke_token(form.page.caller(), &name).await {
        Ok(_) => Redirect::to("/tokens?done=revoked").into_response(),
        Err(e) => error_page(e),
    }
}

async fn users_page(
    state: &AppState,
    page_: Page,
    status: StatusCode,
    form: FormState,
    done: Option<&str>,
) -> Response {
    match state.service.users(page_.caller()).await {
        Ok(users) => render(
            status,
            "access/users.html",
            context! { chrome => page_.chrome, nav => "users", users, form, notice => notice(done) },
        ),
        Err(e) => error_page(e),
    }
}

/// `GET /users` (admins).
async fn users(State(state): State<AppState>, Query(done): Query<Done>, page_: Page) -> Response {
    let form = FormState::with(&[("role", "editor")]);
    users_page(&state, page_, StatusCode::OK, form, done.done.as_deref()).await
}

/// `POST /users`.
async fn add_user(State(state): State<AppState>, form: SignedForm) -> Response {
    let SignedForm {
        page: page_,
        fields,
    } = form;
    match state
        .service
        .add_user(
            page_.caller(),
            fields.text("email").trim(),
            fields.text("role"),
            fields.text("password"),
        )
        .await
    {
        Ok(_) => Redirect::to("/users?done=added").into_response(),
        Err(e) if is_form_error(&e) => {
            let form = FormState::failed(&fields, &["email", "role"], &e);
            users_page(&state, page_, StatusCode::UNPROCESSABLE_ENTITY, form, None).await
        }
        Err(e) => error_page(e),
    }
}

async fn confirm_remove(
    State(state): State<AppState>,
    Path(email): Path<String>,
    page_: Page,
) -> Response {
    if let Err(e) = state.service.user(page_.caller(), &email).await {
        return error_page(e);
    }
    confirm(
        page_,
        "users",
        format!("Remove {email} from this workspace?"),
        vec!["They are signed out of this workspace at once. What they made stays; the audit log keeps their name.".into()],
        format!("/users/{}/remove", segment(&email)),
        "Remove user",
        "/users".into(),
    )
}

async fn remove_user(
    State(state): State<AppState>,
    Path(email): Path<String>,
    form: SignedForm,
) -> Response {
    match state.service.remove_user(form.page.caller(), &email).await {
        Ok(()) => Redirect::to("/users?done=removed").into_response(),
        Err(e) => error_page(e),
    }
}

#[derive(Deserialize)]
struct AuditQuery {
    after: Option<String>,
}

/// `GET /audit` (admins): who changed what, newest first.
async fn audit(
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
    page_: Page,
) -> Response {
    let request = PageRequest {
        cursor: q.after,
        limit: Some(AUDIT_PAGE),
    };
    match state.service.audit_page(page_.caller(), &request).await {
        Ok(entries) => page(
            "access/audit.html",
            context! { chrome => page_.chrome, nav => "audit", entries => entries.items, next => entries.next_cursor },
        ),
        Err(e) => error_page(e),
    }
}

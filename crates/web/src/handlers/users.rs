//! Tenant administration of users.

use crate::forms::Form;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use daicho_domain::{ManageUsers, Tenant, User, UserId, UserStatus};

use crate::ctx::Ctx;
use crate::error::{AppError, AppResult};
use crate::forms::{ConfirmForm, DoneQuery, UserForm};
use crate::handlers::ops;
use crate::middleware::redirect_see_other;
use crate::session::Auth;
use crate::state::AppState;
use crate::views::{Errors, Page, fmt_time, render, render_status, role_key, status_of};

pub struct UserRow {
    pub id: String,
    pub login_id: String,
    pub display_name: String,
    pub email: String,
    pub role_key: &'static str,
    pub status_key: &'static str,
    pub status_class: &'static str,
    pub must_change: bool,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    p: Page,
    users: Vec<UserRow>,
    count: usize,
}

fn user_id(raw: &str) -> AppResult<UserId> {
    raw.parse().map_err(|_| AppError::NotFound)
}

pub async fn list_users(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Query(q): Query<DoneQuery>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    let users = state.store.list_users(&scope).await?;
    let rows: Vec<UserRow> = users
        .iter()
        .map(|u| {
            let (status_key, status_class) = status_of(u, ctx.now);
            UserRow {
                id: u.id.to_string(),
                login_id: u.login_id.as_str().to_owned(),
                display_name: u.display_name.as_str().to_owned(),
                email: u.email.as_str().to_owned(),
                role_key: role_key(u.role),
                status_key,
                status_class,
                must_change: u.must_change_password,
            }
        })
        .collect();
    let page = UsersPage {
        p: Page::for_user(&auth, "users.title", "users", &ctx.request_id).with_flash(&ctx, q.done.as_deref()),
        count: rows.len(),
        users: rows,
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "admin/user_form.html")]
struct UserFormPage {
    p: Page,
    heading: &'static str,
    action: String,
    creating: bool,
    errors: Errors,
    login_id: String,
    display_name: String,
    email: String,
    role: String,
    language: String,
}

pub async fn new_user_form(State(state): State<AppState>, ctx: Ctx, auth: Auth) -> AppResult<Response> {
    let _scope = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    let page = UserFormPage {
        p: Page::for_user(&auth, "users.new_title", "users", &ctx.request_id),
        heading: "users.new_title",
        action: "/admin/users".into(),
        creating: true,
        errors: Errors::default(),
        login_id: String::new(),
        display_name: String::new(),
        email: String::new(),
        role: "member".into(),
        language: "auto".into(),
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "admin/one_time.html")]
struct OneTimePage {
    p: Page,
    heading: &'static str,
    id: String,
    tenant_code: String,
    login_id: String,
    password: String,
}

fn one_time(auth: &Auth, ctx: &Ctx, heading: &'static str, tenant: &Tenant, user: &User, password: String) -> Response {
    render(&OneTimePage {
        p: Page::for_user(auth, heading, "users", &ctx.request_id),
        heading,
        id: user.id.to_string(),
        tenant_code: tenant.code.as_str().to_owned(),
        login_id: user.login_id.as_str().to_owned(),
        password,
    })
}

pub async fn create_user(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Form(f): Form<UserForm>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    match ops::create_user(&state, &ctx, &auth, &scope, &f.login_id, &f.display_name, &f.email, &f.role, &f.language)
        .await
    {
        Ok((user, otp)) => Ok(one_time(&auth, &ctx, "otp.created_title", &auth.tenant, &user, otp)),
        Err(AppError::Invalid(errs) | AppError::Conflict(errs)) => {
            let page = UserFormPage {
                p: Page::for_user(&auth, "users.new_title", "users", &ctx.request_id),
                heading: "users.new_title",
                action: "/admin/users".into(),
                creating: true,
                errors: Errors(errs),
                login_id: f.login_id,
                display_name: f.display_name,
                email: f.email,
                role: f.role,
                language: f.language,
            };
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "admin/user_detail.html")]
struct UserDetailPage {
    p: Page,
    id: String,
    login_id: String,
    display_name: String,
    email: String,
    role_key: &'static str,
    status_key: &'static str,
    status_class: &'static str,
    language_key: &'static str,
    failed_logins: u32,
    password_changed_at: String,
    created_at: String,
    locked: bool,
    active: bool,
    is_self: bool,
}

pub async fn show_user(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    let u = state.store.get_user(&scope, user_id(&id)?).await?;
    let (status_key, status_class) = status_of(&u, ctx.now);
    let page = UserDetailPage {
        p: Page::for_user(&auth, "users.details", "users", &ctx.request_id).with_flash(&ctx, q.done.as_deref()),
        id: u.id.to_string(),
        login_id: u.login_id.as_str().to_owned(),
        display_name: u.display_name.as_str().to_owned(),
        email: u.email.as_str().to_owned(),
        role_key: role_key(u.role),
        status_key,
        status_class,
        language_key: match u.language {
            daicho_domain::LanguagePref::Auto => "lang.auto",
            daicho_domain::LanguagePref::En => "lang.en",
            daicho_domain::LanguagePref::Ja => "lang.ja",
        },
        failed_logins: u.failed_logins,
        password_changed_at: fmt_time(u.password_changed_at, auth.tenant.policy.utc_offset_minutes),
        created_at: fmt_time(u.created_at, auth.tenant.policy.utc_offset_minutes),
        locked: u.is_locked(ctx.now),
        active: u.status == UserStatus::Active,
        is_self: u.id == auth.user.id,
    };
    Ok(render(&page))
}

pub async fn edit_user_form(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    let u = state.store.get_user(&scope, user_id(&id)?).await?;
    let page = UserFormPage {
        p: Page::for_user(&auth, "users.edit_title", "users", &ctx.request_id),
        heading: "users.edit_title",
        action: format!("/admin/users/{}/edit", u.id),
        creating: false,
        errors: Errors::default(),
        login_id: u.login_id.as_str().to_owned(),
        display_name: u.display_name.as_str().to_owned(),
        email: u.email.as_str().to_owned(),
        role: u.role.as_str().to_owned(),
        language: u.language.as_str().to_owned(),
    };
    Ok(render(&page))
}

pub async fn update_user(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(id): Path<String>,
    Form(f): Form<UserForm>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    let id = user_id(&id)?;
    match ops::update_user(&state, &ctx, &auth, &scope, id, &f.display_name, &f.email, &f.role, &f.language).await {
        Ok(u) => Ok(redirect_see_other(&format!("/admin/users/{}?done=user_saved", u.id))),
        Err(AppError::Invalid(errs) | AppError::Conflict(errs)) => {
            let page = UserFormPage {
                p: Page::for_user(&auth, "users.edit_title", "users", &ctx.request_id),
                heading: "users.edit_title",
                action: format!("/admin/users/{id}/edit"),
                creating: false,
                errors: Errors(errs),
                login_id: String::new(),
                display_name: f.display_name,
                email: f.email,
                role: f.role,
                language: f.language,
            };
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e),
    }
}

pub async fn disable_user(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    let id = user_id(&id)?;
    ops::set_status(&state, &ctx, &auth, &scope, id, UserStatus::Disabled).await?;
    Ok(redirect_see_other(&format!("/admin/users/{id}?done=user_disabled")))
}

pub async fn enable_user(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    let id = user_id(&id)?;
    ops::set_status(&state, &ctx, &auth, &scope, id, UserStatus::Active).await?;
    Ok(redirect_see_other(&format!("/admin/users/{id}?done=user_enabled")))
}

pub async fn unlock_user(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    let id = user_id(&id)?;
    ops::unlock_user(&state, &ctx, &auth, &scope, id).await?;
    Ok(redirect_see_other(&format!("/admin/users/{id}?done=user_unlocked")))
}

pub async fn reset_password(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    let (user, otp) = ops::reset_password(&state, &ctx, &auth, &scope, user_id(&id)?).await?;
    Ok(one_time(&auth, &ctx, "otp.reset_title", &auth.tenant, &user, otp))
}

#[derive(Template)]
#[template(path = "admin/user_delete.html")]
struct DeletePage {
    p: Page,
    id: String,
    login_id: String,
    display_name: String,
    missing_confirm: bool,
}

pub async fn delete_user_form(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    let u = state.store.get_user(&scope, user_id(&id)?).await?;
    Ok(render(&DeletePage {
        p: Page::for_user(&auth, "users.delete_title", "users", &ctx.request_id),
        id: u.id.to_string(),
        login_id: u.login_id.as_str().to_owned(),
        display_name: u.display_name.as_str().to_owned(),
        missing_confirm: false,
    }))
}

pub async fn delete_user(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(id): Path<String>,
    Form(f): Form<ConfirmForm>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    let id = user_id(&id)?;
    if f.confirm != "yes" {
        let u = state.store.get_user(&scope, id).await?;
        return Ok(render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &DeletePage {
                p: Page::for_user(&auth, "users.delete_title", "users", &ctx.request_id),
                id: u.id.to_string(),
                login_id: u.login_id.as_str().to_owned(),
                display_name: u.display_name.as_str().to_owned(),
                missing_confirm: true,
            },
        ));
    }
    ops::delete_user(&state, &ctx, &auth, &scope, id).await?;
    Ok(redirect_see_other("/admin/users?done=user_deleted"))
}

//! The start page after sign-in.

use askama::Template;
use axum::extract::Query;
use axum::response::Response;
use daicho_domain::{OwnAccount, Role};

use crate::ctx::Ctx;
use crate::error::AppResult;
use crate::forms::DoneQuery;
use crate::session::Auth;
use crate::state::AppState;
use crate::views::{Page, fmt_time, render, role_key};

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    p: Page,
    welcome: String,
    tenant_name: String,
    tenant_code: String,
    login_id: String,
    role_key: &'static str,
    signed_in_at: String,
    is_admin: bool,
}

pub async fn home(
    axum::extract::State(state): axum::extract::State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Query(q): Query<DoneQuery>,
) -> AppResult<Response> {
    let _scope = auth.authorize::<OwnAccount>(&state, &ctx).await?;
    let page = HomePage {
        p: Page::for_user(&auth, "nav.home", "home", &ctx.request_id).with_flash(&ctx, q.done.as_deref()),
        welcome: crate::i18n::t(auth.lang, "home.welcome").replace("{name}", auth.user.display_name.as_str()),
        tenant_name: auth.tenant.name.as_str().to_owned(),
        tenant_code: auth.tenant.code.as_str().to_owned(),
        login_id: auth.user.login_id.as_str().to_owned(),
        role_key: role_key(auth.user.role),
        signed_in_at: fmt_time(auth.session.created_at, auth.tenant.policy.utc_offset_minutes),
        is_admin: auth.user.role == Role::TenantAdmin,
    };
    Ok(render(&page))
}

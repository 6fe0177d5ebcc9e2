//! Sign-in and sign-out pages.

use crate::forms::Form;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ctx::Ctx;
use crate::error::AppResult;
use crate::forms::{LoginForm, LoginQuery};
use crate::handlers::ops::{self, LoginOutcome};
use crate::i18n;
use crate::middleware::{redirect_see_other, safe_next};
use crate::session::{AuthAny, Authenticated, clear_session_cookie, session_cookie};
use crate::state::AppState;
use crate::views::{Page, render, render_status};

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage {
    p: Page,
    notice: Option<&'static str>,
    error: Option<&'static str>,
    tenant: String,
    login_id: String,
    next: String,
}

pub async fn login_page(
    ctx: Ctx,
    auth: Option<axum::Extension<Authenticated>>,
    Query(q): Query<LoginQuery>,
) -> Response {
    if auth.is_some() {
        return redirect_see_other("/");
    }
    let page = LoginPage {
        p: Page::anonymous(ctx.browser_lang, "login.title", &ctx.request_id),
        notice: q.reason.as_deref().and_then(i18n::login_reason_key),
        error: None,
        tenant: String::new(),
        login_id: String::new(),
        next: q.next.as_deref().and_then(safe_next).unwrap_or("").to_owned(),
    };
    render(&page)
}

pub async fn login_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    existing: Option<axum::Extension<Authenticated>>,
    Form(f): Form<LoginForm>,
) -> AppResult<Response> {
    let outcome = ops::login(&state, &ctx, &f.tenant, &f.login_id, &f.password).await?;
    // Signing in again from a browser that holds a session ends the old one, so that no session
    // outlives a change of identity (session fixation, ASVS 3.2.1). A failed attempt leaves it.
    if let (LoginOutcome::Success { .. }, Some(axum::Extension(a))) = (&outcome, existing) {
        ops::end_replaced_session(&state, &ctx, &a).await?;
    }
    match outcome {
        LoginOutcome::Success { token } => {
            let to =
                crate::middleware::next_target(&f.next).filter(|n| n != "/login").unwrap_or_else(|| "/".to_owned());
            let mut res = redirect_see_other(&to);
            if let Ok(v) = HeaderValue::from_str(&session_cookie(&token)) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            Ok(res)
        }
        LoginOutcome::Failed | LoginOutcome::Throttled => {
            let (status, error) = if matches!(outcome, LoginOutcome::Throttled) {
                (StatusCode::TOO_MANY_REQUESTS, "login.throttled")
            } else {
                (StatusCode::UNAUTHORIZED, "login.failed")
            };
            let page = LoginPage {
                p: Page::anonymous(ctx.browser_lang, "login.title", &ctx.request_id),
                notice: None,
                error: Some(error),
                tenant: f.tenant.chars().take(32).collect(),
                login_id: f.login_id.chars().take(64).collect(),
                next: safe_next(&f.next).unwrap_or("").to_owned(),
            };
            Ok(render_status(status, &page))
        }
    }
}

pub async fn logout(State(state): State<AppState>, ctx: Ctx, AuthAny(auth): AuthAny) -> AppResult<Response> {
    ops::logout(&state, &ctx, &auth).await?;
    let mut res = redirect_see_other("/login?reason=logged_out");
    if let Ok(v) = HeaderValue::from_str(&clear_session_cookie()) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res.into_response())
}

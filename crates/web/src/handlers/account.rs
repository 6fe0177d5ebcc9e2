//! One's own account: profile, language, password and sessions.

use crate::forms::Form;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use daicho_domain::{AuditAction, LanguagePref, Outcome, OwnAccount, SessionId};

use crate::ctx::{Ctx, EventExt};
use crate::error::{AppError, AppResult};
use crate::forms::{DoneQuery, LanguageForm, PasswordForm};
use crate::handlers::ops;
use crate::i18n;
use crate::middleware::redirect_see_other;
use crate::session::{Auth, AuthAny};
use crate::state::AppState;
use crate::views::{Errors, Page, fmt_time, render, render_status, role_key};

pub struct SessionRow {
    pub id: String,
    pub started: String,
    pub last_seen: String,
    pub ip: String,
    pub browser: String,
    /// The whole User-Agent header, shown on hover.
    pub agent: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "account/account.html")]
struct AccountPage {
    p: Page,
    display_name: String,
    login_id: String,
    email: String,
    role_key: &'static str,
    password_changed_at: String,
    language: &'static str,
    languages: Vec<(&'static str, &'static str)>,
    sessions: Vec<SessionRow>,
}

pub async fn account_page(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Query(q): Query<DoneQuery>,
) -> AppResult<Response> {
    let scope = auth.authorize::<OwnAccount>(&state, &ctx).await?;
    let sessions = state.store.list_own_sessions(&scope).await?;
    let page = AccountPage {
        p: Page::for_user(&auth, "account.title", "account", &ctx.request_id).with_flash(&ctx, q.done.as_deref()),
        display_name: auth.user.display_name.as_str().to_owned(),
        login_id: auth.user.login_id.as_str().to_owned(),
        email: auth.user.email.as_str().to_owned(),
        role_key: role_key(auth.user.role),
        password_changed_at: fmt_time(auth.user.password_changed_at, auth.tenant.policy.utc_offset_minutes),
        language: auth.user.language.as_str(),
        languages: vec![("auto", "lang.auto"), ("ja", "lang.ja"), ("en", "lang.en")],
        sessions: sessions
            .into_iter()
            .map(|s| SessionRow {
                current: s.id == auth.session.id,
                id: s.id.to_string(),
                started: fmt_time(s.created_at, auth.tenant.policy.utc_offset_minutes),
                last_seen: fmt_time(s.last_seen_at, auth.tenant.policy.utc_offset_minutes),
                ip: s.ip,
                browser: crate::views::browser_name(&s.user_agent),
                agent: s.user_agent,
            })
            .collect(),
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "account/password.html")]
struct PasswordPage {
    p: Page,
    forced: bool,
    errors: Errors,
    min_length: u32,
    hint: String,
}

fn password_page(auth: &Auth, ctx: &Ctx, errors: Errors) -> PasswordPage {
    let policy = &auth.tenant.policy;
    PasswordPage {
        p: Page::for_user(auth, "password.title", "account", &ctx.request_id),
        forced: auth.must_change_password(),
        errors,
        min_length: policy.password_min_length,
        hint: i18n::t(auth.lang, "password.hint")
            .replace("{min}", &policy.password_min_length.to_string())
            .replace("{history}", &policy.password_history.to_string()),
    }
}

pub async fn password_form(State(state): State<AppState>, ctx: Ctx, AuthAny(auth): AuthAny) -> AppResult<Response> {
    let _scope = auth.authorize::<OwnAccount>(&state, &ctx).await?;
    Ok(render(&password_page(&auth, &ctx, Errors::default())))
}

pub async fn change_password(
    State(state): State<AppState>,
    ctx: Ctx,
    AuthAny(auth): AuthAny,
    Form(f): Form<PasswordForm>,
) -> AppResult<Response> {
    let scope = auth.authorize::<OwnAccount>(&state, &ctx).await?;
    match ops::change_password(
        &state,
        &ctx,
        &auth,
        &scope,
        &f.current_password,
        &f.new_password,
        Some(&f.confirm_password),
    )
    .await
    {
        Ok(()) => Ok(redirect_see_other("/account?done=password_changed")),
        Err(AppError::Invalid(errs)) => {
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &password_page(&auth, &ctx, Errors(errs))))
        }
        Err(e) => Err(e),
    }
}

pub async fn set_language(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Form(f): Form<LanguageForm>,
) -> AppResult<Response> {
    let scope = auth.authorize::<OwnAccount>(&state, &ctx).await?;
    let lang = LanguagePref::parse(&f.language)
        .map_err(|c| AppError::Invalid(daicho_domain::FieldErrors::single("language", c)))?;
    let ev = ctx.event_by(&auth.principal, AuditAction::LanguageChange, Outcome::Success).details(format!(
        "{} -> {}",
        auth.user.language.as_str(),
        lang.as_str()
    ));
    state.store.set_language(&scope, lang, ev).await?;
    Ok(redirect_see_other("/account?done=language_saved"))
}

pub async fn revoke_session(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let scope = auth.authorize::<OwnAccount>(&state, &ctx).await?;
    let r = match id.parse::<SessionId>() {
        Ok(sid) => {
            let ev = ctx
                .event_by(&auth.principal, AuditAction::SessionRevoked, Outcome::Success)
                .target(format!("session:{sid}"));
            state.store.revoke_own_session(&scope, sid, ev).await
        }
        Err(_) => Err(daicho_store::StoreError::NotFound),
    };
    // Another user's session (or none) is the same 404, recorded as a refusal.
    if let Err(daicho_store::StoreError::NotFound) = r {
        let shown = crate::ctx::shown_id(&id);
        auth.record_refusal(&state, &ctx, format!("end of session:{shown}: not one of the user's sessions")).await?;
    }
    r?;
    Ok(redirect_see_other("/account?done=session_ended"))
}

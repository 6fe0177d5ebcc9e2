//! Personal API tokens: a user creates tokens for scripts and integrations, read-only or
//! read-write, with an expiry of 1 to 365 days; the value is shown once and stored only as its
//! SHA-256; the user revokes them here. A token acts as its user with the same rights
//! (`crate::session::token_request`), and the operation history names the token. Managing
//! tokens needs a signed-in session: a token cannot make or revoke tokens.

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use daicho_authn::Token;
use daicho_domain::table::Name;
use daicho_domain::{AuditAction, FieldErrors, Outcome, OwnAccount, TokenId};
use daicho_store::{ApiToken, NewApiToken};
use serde::Deserialize;
use serde_json::{Value, json};
use time::Duration;

use crate::ctx::{Ctx, EventExt};
use crate::error::{AppError, AppResult};
use crate::forms::DoneQuery;
use crate::handlers::api::ApiBody;
use crate::middleware::redirect_see_other;
use crate::session::{API_TOKEN_PREFIX, Auth};
use crate::state::AppState;
use crate::views::{Errors, Page, fmt_time, render, render_status};

pub const MAX_DAYS: i64 = 365;

/// Creates a token; returns it with its plain value (shown once).
async fn create(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    name: &str,
    read_only: bool,
    days: &str,
) -> AppResult<(ApiToken, String)> {
    let scope = auth.authorize::<OwnAccount>(state, ctx).await?;
    let mut errs = FieldErrors::new();
    let name = Name::parse(name).map_err(|c| errs.push("name", c)).ok();
    let days = match days.trim().parse::<i64>() {
        Ok(d) if (1..=MAX_DAYS).contains(&d) => Some(d),
        _ => {
            errs.push("expires_in_days", "out_of_range");
            None
        }
    };
    let (Some(name), Some(days)) = (name, days) else { return Err(AppError::Invalid(errs)) };
    let secret = Token::generate();
    let plain = format!("{API_TOKEN_PREFIX}{}", secret.plain);
    let id = TokenId::new_random();
    let new = NewApiToken {
        id,
        name: name.as_str().to_owned(),
        token_hash: daicho_authn::hash_token(&plain),
        read_only,
        at: ctx.now,
        expires_at: ctx.now + Duration::days(days),
    };
    let ev = ctx
        .event_by(&auth.principal, AuditAction::TokenCreate, Outcome::Success)
        .target(format!("token:{id}"))
        .details(format!(
            "name={}; scope={}; expires in {days} days",
            name.as_str(),
            if read_only { "read" } else { "read-write" }
        ));
    let t = state.store.create_token(&scope, new, ev).await?;
    Ok((t, plain))
}

async fn revoke(state: &AppState, ctx: &Ctx, auth: &Auth, raw: &str) -> AppResult<()> {
    let scope = auth.authorize::<OwnAccount>(state, ctx).await?;
    let r = match raw.parse::<TokenId>() {
        Ok(id) => {
            let ev =
                ctx.event_by(&auth.principal, AuditAction::TokenRevoke, Outcome::Success).target(format!("token:{id}"));
            state.store.revoke_own_token(&scope, id, ctx.now, ev).await
        }
        Err(_) => Err(daicho_store::StoreError::NotFound),
    };
    // Another user's token (or none) is the same 404, recorded as a refusal; one's own token
    // revoked already (the form sent twice, two tabs) is no probe, and not recorded.
    let own = |id: &TokenId, tokens: &[daicho_store::ApiToken]| tokens.iter().any(|t| t.id == *id);
    if let Err(daicho_store::StoreError::NotFound) = r
        && !match raw.parse::<TokenId>() {
            Ok(id) => own(&id, &state.store.list_own_tokens(&scope).await?),
            Err(_) => false,
        }
    {
        let shown = crate::ctx::shown_id(raw);
        auth.record_refusal(state, ctx, format!("revoke of token:{shown}: no token of the user's in use by that id"))
            .await?;
    }
    Ok(r?)
}

fn token_json(t: &ApiToken, now: time::OffsetDateTime) -> Value {
    let fmt = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).ok();
    json!({
        "id": t.id, "name": t.name, "scope": if t.read_only { "read" } else { "read_write" },
        "created_at": fmt(t.created_at), "expires_at": fmt(t.expires_at),
        "last_used_at": t.last_used_at.and_then(fmt), "revoked_at": t.revoked_at.and_then(fmt),
        "active": t.revoked_at.is_none() && now < t.expires_at,
    })
}

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub scope_key: &'static str,
    pub created_at: String,
    pub expires_at: String,
    pub last_used_at: String,
    pub state_key: &'static str,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "account/tokens.html")]
struct TokensPage {
    p: Page,
    tokens: Vec<TokenRow>,
    errors: Errors,
    name: String,
    days: String,
    read_only: bool,
    created: Option<(String, String)>,
    max_days: i64,
}

#[derive(Debug, Default, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub expires_in_days: String,
    #[serde(default)]
    pub scope: String,
}

async fn tokens_page(state: &AppState, ctx: &Ctx, auth: &Auth, errors: Errors, f: &TokenForm) -> AppResult<TokensPage> {
    let scope = auth.authorize::<OwnAccount>(state, ctx).await?;
    let tokens = state.store.list_own_tokens(&scope).await?;
    Ok(TokensPage {
        p: Page::for_user(auth, "tokens.title", "account", &ctx.request_id),
        tokens: tokens
            .iter()
            .map(|t| {
                let (state_key, active) = if t.revoked_at.is_some() {
                    ("tokens.revoked", false)
                } else if ctx.now >= t.expires_at {
                    ("tokens.expired", false)
                } else {
                    ("tokens.active", true)
                };
                TokenRow {
                    id: t.id.to_string(),
                    name: t.name.clone(),
                    scope_key: if t.read_only { "tokens.read" } else { "tokens.read_write" },
                    created_at: fmt_time(t.created_at, auth.tenant.policy.utc_offset_minutes),
                    expires_at: fmt_time(t.expires_at, auth.tenant.policy.utc_offset_minutes),
                    last_used_at: t
                        .last_used_at
                        .map(|at| fmt_time(at, auth.tenant.policy.utc_offset_minutes))
                        .unwrap_or_default(),
                    state_key,
                    active,
                }
            })
            .collect(),
        errors,
        name: f.name.clone(),
        days: if f.expires_in_days.is_empty() { "90".into() } else { f.expires_in_days.clone() },
        read_only: f.scope != "read_write",
        created: None,
        max_days: MAX_DAYS,
    })
}

pub async fn page(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Query(q): Query<DoneQuery>,
) -> AppResult<Response> {
    let mut p = tokens_page(&state, &ctx, &auth, Errors::default(), &TokenForm::default()).await?;
    p.p = p.p.with_flash(&ctx, q.done.as_deref());
    Ok(render(&p))
}

pub async fn create_page(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    crate::forms::Form(f): crate::forms::Form<TokenForm>,
) -> AppResult<Response> {
    match create(&state, &ctx, &auth, &f.name, f.scope != "read_write", &f.expires_in_days).await {
        Ok((t, plain)) => {
            let mut p = tokens_page(&state, &ctx, &auth, Errors::default(), &TokenForm::default()).await?;
            p.created = Some((t.name, plain));
            Ok(render(&p))
        }
        Err(AppError::Invalid(e) | AppError::Conflict(e)) => {
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &tokens_page(&state, &ctx, &auth, Errors(e), &f).await?))
        }
        Err(e) => Err(e),
    }
}

pub async fn revoke_page(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(id): Path<String>,
    crate::forms::Form(f): crate::forms::Form<RevokeForm>,
) -> AppResult<Response> {
    // A revoked token cannot be brought back: the page asks for a tick first, as deleting does.
    if f.confirm != "yes" {
        // Not one of the user's own tokens: 404, as when confirmed.
        let scope = auth.authorize::<OwnAccount>(&state, &ctx).await?;
        let own = state.store.list_own_tokens(&scope).await?;
        if !own.iter().any(|t| t.id.to_string() == id) {
            // (Recorded, as when confirmed: a guessed id is a probe either way.)
            let shown = crate::ctx::shown_id(&id);
            auth.record_refusal(&state, &ctx, format!("revoke of token:{shown}: no token of the user's by that id"))
                .await?;
            return Err(AppError::NotFound);
        }
        let errors = Errors(FieldErrors::single("confirm", "confirm_required"));
        let page = tokens_page(&state, &ctx, &auth, errors, &TokenForm::default()).await?;
        return Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    revoke(&state, &ctx, &auth, &id).await?;
    Ok(redirect_see_other("/account/tokens?done=token_revoked"))
}

#[derive(Debug, Default, Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    pub confirm: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    pub name: String,
    /// Deny by default: a token that does not ask for writing only reads.
    #[serde(default = "read_only_unless_asked")]
    pub read_only: bool,
    pub expires_in_days: i64,
}

fn read_only_unless_asked() -> bool {
    true
}

pub async fn api_list(State(state): State<AppState>, ctx: Ctx, auth: Auth) -> AppResult<Json<Value>> {
    let scope = auth.authorize::<OwnAccount>(&state, &ctx).await?;
    let tokens = state.store.list_own_tokens(&scope).await?;
    Ok(Json(json!({"tokens": tokens.iter().map(|t| token_json(t, ctx.now)).collect::<Vec<_>>()})))
}

pub async fn api_create(State(state): State<AppState>, ctx: Ctx, auth: Auth, body: ApiBody) -> AppResult<Response> {
    let _scope = auth.authorize::<OwnAccount>(&state, &ctx).await?;
    let b: TokenBody = body.parse()?;
    let (t, plain) = create(&state, &ctx, &auth, &b.name, b.read_only, &b.expires_in_days.to_string()).await?;
    Ok((StatusCode::CREATED, Json(json!({"token": token_json(&t, ctx.now), "secret": plain}))).into_response())
}

pub async fn api_revoke(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    revoke(&state, &ctx, &auth, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

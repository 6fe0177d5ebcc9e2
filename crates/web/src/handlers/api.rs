//! The JSON API under /api/v1: the same operations as the pages, through the same functions in
//! [`super::ops`], with the same permission checks and audit events. Authentication is the
//! session cookie (obtained from `POST /api/v1/session`); state-changing calls carry the
//! session's CSRF token in `X-CSRF-Token`.

use axum::Json;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use daicho_domain::{AuditEvent, ManageUsers, OwnAccount, ReadAudit, User, UserId, UserStatus};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::error::{AppError, AppResult};
use crate::forms::{ApiLogin, ApiNewUser, ApiPasswordChange, ApiUserUpdate, AuditQuery};
use crate::handlers::ops::{self, LoginOutcome};
use crate::session::{Auth, AuthAny, clear_session_cookie, session_cookie};
use crate::state::AppState;

/// A JSON request body, read (within the body limit) but not yet parsed: handlers obtain their
/// capability first and parse after, so that a refused request is refused whatever its body.
pub struct ApiBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/json"));
        if !is_json {
            return Err(AppError::BadJson("expected Content-Type: application/json".into()));
        }
        match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => Ok(ApiBody(b)),
            Err(_) => Err(AppError::PayloadTooLarge),
        }
    }
}

impl ApiBody {
    /// Parses the body; a parse failure is a 400 that says what is wrong.
    pub fn parse<T: DeserializeOwned>(&self) -> AppResult<T> {
        serde_json::from_slice(&self.0).map_err(|e| AppError::BadJson(json_problem(&e.to_string())))
    }
}

/// A JSON object of values in which each key comes once: serde_json would keep the last of a
/// key given twice (`{"金額": 1, "金額": 900}`), so a body that says two things is refused
/// (400) rather than read as one of them.
pub(crate) fn keys_once<'de, D>(d: D) -> Result<serde_json::Map<String, Value>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Once;
    impl<'de> serde::de::Visitor<'de> for Once {
        type Value = serde_json::Map<String, Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object of values")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = serde_json::Map::new();
            while let Some((k, v)) = m.next_entry::<String, Value>()? {
                if out.contains_key(&k) {
                    let shown: String = k.chars().take(100).collect();
                    return Err(serde::de::Error::custom(format!("the key \"{shown}\" is given twice")));
                }
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Once)
}

/// serde's message about a body, without the server's own type names ("expected struct
/// RecordBody" becomes "expected a JSON object"), at most 300 characters.
fn json_problem(msg: &str) -> String {
    let mut out = String::new();
    let mut rest = msg;
    while let Some(at) = rest.find("struct ") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "struct ".len()..];
        let name_end = after.find(|c: char| !c.is_ascii_alphanumeric() && c != '_').unwrap_or(after.len());
        out.push_str("a JSON object");
        rest = &after[name_end..];
    }
    out.push_str(rest);
    out.chars().take(300).collect()
}

pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "login_id": u.login_id.as_str(),
        "display_name": u.display_name.as_str(),
        "email": u.email.as_str(),
        "role": u.role.as_str(),
        "status": u.status.as_str(),
        "language": u.language.as_str(),
        "must_change_password": u.must_change_password,
        "locked_until": u.locked_until.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
        "failed_logins": u.failed_logins,
        "created_at": u.created_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "updated_at": u.updated_at.format(&time::format_description::well_known::Rfc3339).ok(),
    })
}

fn event_json(e: &AuditEvent) -> Value {
    serde_json::to_value(e).unwrap_or(Value::Null)
}

fn user_id(raw: &str) -> AppResult<UserId> {
    raw.parse().map_err(|_| AppError::NotFound)
}

pub async fn create_session(
    State(state): State<AppState>,
    ctx: Ctx,
    existing: Option<axum::Extension<crate::session::Authenticated>>,
    body: ApiBody,
) -> AppResult<Response> {
    let b: ApiLogin = body.parse()?;
    match ops::login(&state, &ctx, &b.tenant, &b.login_id, &b.password).await? {
        LoginOutcome::Success { token } => {
            if let Some(axum::Extension(old)) = existing {
                ops::end_replaced_session(&state, &ctx, &old).await?;
            }
            let mut res = (StatusCode::CREATED, Json(json!({"status": "signed_in"}))).into_response();
            if let Ok(v) = HeaderValue::from_str(&session_cookie(&token)) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            Ok(res)
        }
        LoginOutcome::Failed => Err(AppError::Unauthenticated { reason: None }),
        LoginOutcome::Throttled => Err(AppError::TooManyRequests),
    }
}

pub async fn delete_session(State(state): State<AppState>, ctx: Ctx, AuthAny(auth): AuthAny) -> AppResult<Response> {
    ops::logout(&state, &ctx, &auth).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&clear_session_cookie()) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

pub async fn me(State(state): State<AppState>, ctx: Ctx, AuthAny(auth): AuthAny) -> AppResult<Json<Value>> {
    let scope = auth.authorize::<OwnAccount>(&state, &ctx).await?;
    let user = state.store.own_user(&scope).await?;
    Ok(Json(json!({
        "user": user_json(&user),
        "tenant": {"code": auth.tenant.code.as_str(), "name": auth.tenant.name.as_str()},
        "session": {"id": auth.session.id, "created_at": auth.session.created_at.format(&time::format_description::well_known::Rfc3339).ok()},
        "csrf_token": auth.csrf(),
        "password_change_required": auth.must_change_password(),
    })))
}

pub async fn change_password(
    State(state): State<AppState>,
    ctx: Ctx,
    AuthAny(auth): AuthAny,
    body: ApiBody,
) -> AppResult<StatusCode> {
    let scope = auth.authorize::<OwnAccount>(&state, &ctx).await?;
    let b: ApiPasswordChange = body.parse()?;
    ops::change_password(&state, &ctx, &auth, &scope, &b.current_password, &b.new_password, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_users(State(state): State<AppState>, ctx: Ctx, auth: Auth) -> AppResult<Json<Value>> {
    let scope = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    let users = state.store.list_users(&scope).await?;
    Ok(Json(json!({"users": users.iter().map(user_json).collect::<Vec<_>>()})))
}

pub async fn create_user(State(state): State<AppState>, ctx: Ctx, auth: Auth, body: ApiBody) -> AppResult<Response> {
    let scope = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    let b: ApiNewUser = body.parse()?;
    let (user, otp) =
        ops::create_user(&state, &ctx, &auth, &scope, &b.login_id, &b.display_name, &b.email, &b.role, &b.language)
            .await?;
    Ok((StatusCode::CREATED, Json(json!({"user": user_json(&user), "one_time_password": otp}))).into_response())
}

pub async fn get_user(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let scope = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    let u = state.store.get_user(&scope, user_id(&id)?).await?;
    Ok(Json(json!({"user": user_json(&u)})))
}

pub async fn update_user(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(id): Path<String>,
    body: ApiBody,
) -> AppResult<Json<Value>> {
    let scope = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    let b: ApiUserUpdate = body.parse()?;
    let id = user_id(&id)?;
    let old = state.store.get_user(&scope, id).await?;
    let u = ops::update_user(
        &state,
        &ctx,
        &auth,
        &scope,
        id,
        b.display_name.as_deref().unwrap_or(old.display_name.as_str()),
        b.email.as_deref().unwrap_or(old.email.as_str()),
        b.role.as_deref().unwrap_or(old.role.as_str()),
        b.language.as_deref().unwrap_or(old.language.as_str()),
    )
    .await?;
    Ok(Json(json!({"user": user_json(&u)})))
}

pub async fn disable_user(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let scope = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    ops::set_status(&state, &ctx, &auth, &scope, user_id(&id)?, UserStatus::Disabled).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn enable_user(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let scope = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    ops::set_status(&state, &ctx, &auth, &scope, user_id(&id)?, UserStatus::Active).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_audit(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Query(q): Query<AuditQuery>,
) -> AppResult<Json<Value>> {
    let scope = auth.authorize::<ReadAudit>(&state, &ctx).await?;
    let filter = ops::audit_filter(&q, 0).map_err(AppError::Invalid)?;
    let limit = ops::audit_limit(&q).map_err(AppError::Invalid)?;
    let events = ops::search_audit(&state, &scope, &filter, limit).await?;
    let next_before = (events.len() == limit as usize).then(|| events.last().map(|e| e.seq)).flatten();
    Ok(Json(json!({"events": events.iter().map(event_json).collect::<Vec<_>>(), "next_before": next_before})))
}

pub async fn openapi() -> Response {
    let mut r = include_str!("../../openapi.json").into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_json_problem_names_no_server_type() {
        assert_eq!(
            super::json_problem("invalid type: null, expected struct RecordBody at line 1 column 4"),
            "invalid type: null, expected a JSON object at line 1 column 4"
        );
        assert_eq!(super::json_problem("missing field `name`"), "missing field `name`");
    }
}

//! Server-side sessions (ASVS V3). The cookie holds a random 256-bit token; the database holds
//! only its SHA-256. On every request this layer loads the session, ends it when the user is no
//! longer active or its idle or absolute limit has passed (both from the tenant's policy, both
//! measured by the injected clock), and checks the per-session CSRF token on every
//! state-changing request. Handlers then take [`Auth`] (or [`AuthAny`] where a pending password
//! change must not block them) and ask it for a capability.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use daicho_authn::{constant_time_eq, hash_token};
use daicho_domain::policy::PasswordAge;
use daicho_domain::{AuditAction, Lang, LoginFlow, Outcome, Permission, Principal, Scope, Tenant, User, UserStatus};
use daicho_store::{Session, SessionContext};
use time::{Duration, OffsetDateTime};

use crate::ctx::{Ctx, EventExt, ctx_from_parts};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// `__Host-` binds the cookie to this origin: Secure, Path=/ and no Domain are enforced by the
/// browser (RFC 6265bis 4.1.3.2).
pub const SESSION_COOKIE: &str = "__Host-daicho_session";

/// Sessions are touched at most this often, to spare the database a write per request.
const TOUCH_EVERY: Duration = Duration::seconds(10);

pub fn session_cookie(token: &str) -> String {
    format!("{SESSION_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Lax")
}

pub fn clear_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// The session token from the Cookie header, if it has the shape of one of ours.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(header::COOKIE) {
        let Ok(s) = value.to_str() else { continue };
        for pair in s.split(';') {
            if let Some((name, v)) = pair.trim().split_once('=') {
                let v = v.trim();
                if name.trim() == SESSION_COOKIE
                    && v.len() == 43
                    && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Some(v.to_owned());
                }
            }
        }
    }
    None
}

/// A request with a live session, placed in the request extensions by [`session_layer`].
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub ctx: SessionContext,
    pub principal: Principal,
    pub credential: Credential,
}

/// What a request was signed in with (its hash), kept so that a response that runs on after
/// its handler returned (an export) can ask again whether it still stands.
#[derive(Debug, Clone)]
pub enum Credential {
    Session(String),
    Token(String),
}

/// Why a session presented with this request has just been ended.
#[derive(Debug, Clone, Copy)]
pub struct SessionEnded(pub &'static str);

fn is_unsafe(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Routes that start a session and so cannot carry a session's CSRF token (their POST only:
/// ending a session with DELETE needs the token); the Origin check still applies to them.
fn csrf_exempt(method: &Method, path: &str) -> bool {
    *method == Method::POST && (path == "/login" || path == "/api/v1/session")
}

/// The token of an `Authorization: Bearer dct_…` header, if it has the shape of one of ours.
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    let token = token.trim();
    let body = token.strip_prefix(API_TOKEN_PREFIX)?;
    (scheme.eq_ignore_ascii_case("bearer")
        && body.len() == 43
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| token.to_owned())
}

/// Personal API tokens start with this, so that a leaked one is recognisable (secret scanners).
pub const API_TOKEN_PREFIX: &str = "dct_";

/// Which token a request was made with, for the operation history.
#[derive(Debug, Clone)]
pub struct ViaToken {
    pub id: daicho_domain::TokenId,
    pub name: String,
}

/// API routes a token may not use: signing in and out, and changing the account's password or
/// tokens, which need the person at a browser.
fn token_may_not_use(path: &str) -> bool {
    path == "/api/v1/session" || path.starts_with("/api/v1/me/")
}

/// API routes a token may read but not change: users (who may sign in, with which role and
/// password) and groups (who may do what). A leaked administrator's token must not be able to
/// make itself an account, or widen anyone's rights; that needs an administrator signed in.
fn token_may_not_change(path: &str) -> bool {
    ["/api/v1/users", "/api/v1/groups"].iter().any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

/// A request made with a personal API token: it authenticates the JSON API only, acts as its
/// user (same rights, same tenant checks, IP allowlist included) and, for read-only tokens,
/// only reads. No CSRF token is needed: a bearer header is never sent by a browser on its own.
async fn token_request(state: AppState, mut parts: Parts, body: Body, token: String, next: Next) -> Response {
    let ctx = ctx_from_parts(&parts, &state);
    let path = parts.uri.path().to_owned();
    if !path.starts_with("/api/") {
        return AppError::Unauthenticated { reason: None }.into_response();
    }
    let flow = LoginFlow::new();
    let hash = hash_token(&token);
    let tc = match state.store.token_by_hash(&flow, &hash).await {
        Err(e) => return AppError::from(e).into_response(),
        Ok(None) => return AppError::Unauthenticated { reason: None }.into_response(),
        Ok(Some(tc)) => tc,
    };
    let principal = Principal {
        tenant_id: tc.tenant.id,
        user_id: tc.user.id,
        login_id: tc.user.login_id.clone(),
        role: tc.user.role,
        session_id: daicho_domain::SessionId::from_uuid(tc.token.id.as_uuid()),
    };
    let via = ViaToken { id: tc.token.id, name: tc.token.name.clone() };
    parts.extensions.insert(via.clone());
    let ctx = Ctx { user_agent: crate::ctx::token_agent(&via, &ctx.user_agent), ..ctx };
    let refusal = if tc.token.revoked_at.is_some() {
        Some("revoked")
    } else if ctx.now >= tc.token.expires_at {
        Some("expired")
    } else if tc.user.status != UserStatus::Active {
        Some("user disabled")
    } else if tc.token.created_at < tc.user.password_changed_at {
        // A token made before the password last changed (by its user, or reset by an
        // administrator) may be one made by whoever knew the old password.
        Some("password changed since the token was made")
    } else if !client_ip_allowed(&parts, &tc.tenant.policy) {
        Some("client IP not on the tenant's allowlist")
    } else if token_may_not_use(&path) {
        Some("route needs a signed-in session")
    } else if token_may_not_change(&path) && is_unsafe(&parts.method) {
        Some("route changes users or rights")
    } else if tc.token.read_only && is_unsafe(&parts.method) {
        Some("read-only token")
    } else {
        None
    };
    if let Some(why) = refusal {
        let ev = ctx
            .event_by(&principal, AuditAction::TokenRefused, Outcome::Denied)
            .target(format!("token:{} {path}", tc.token.id))
            .details(why);
        if let Err(e) = state.store.append_audit(ev).await {
            return AppError::from(e).into_response();
        }
        return match why {
            "route needs a signed-in session" | "route changes users or rights" | "read-only token" => {
                AppError::Forbidden
            }
            "client IP not on the tenant's allowlist" => AppError::IpNotAllowed,
            _ => AppError::Unauthenticated { reason: None },
        }
        .into_response();
    }
    // Like sessions, a token's last use is written at most every TOUCH_EVERY (not a write per
    // request).
    let stale = tc.token.last_used_at.is_none_or(|t| ctx.now - t >= TOUCH_EVERY);
    if stale && let Err(e) = state.store.touch_token(&flow, tc.token.id, ctx.now).await {
        return AppError::from(e).into_response();
    }
    let session = Session {
        id: principal.session_id,
        tenant_id: tc.tenant.id,
        user_id: tc.user.id,
        created_at: tc.token.created_at,
        last_seen_at: ctx.now,
        csrf_token: String::new(),
        ip: ctx.ip.clone(),
        user_agent: ctx.user_agent.clone(),
    };
    let sc = SessionContext { session, user: tc.user, tenant: tc.tenant, design_version: tc.design_version };
    parts.extensions.insert(Authenticated { ctx: sc, principal, credential: Credential::Token(hash) });
    let permit = match upload_permit(&state, &parts).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    bounded(permit, next.run(Request::from_parts(parts, body))).await
}

/// How long one upload to an import route may take, body and import together, once it holds an
/// upload permit: a client that sends its body slowly gives its permit back after this (408).
const UPLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// For an upload (a state-changing request) to an import route, whose body may be 64 MiB: one of
/// the node's `IMPORT_UPLOADS` permits, waited for before the body is read. Only a signed-in
/// user's request asks for one (an anonymous one is refused without reading its body), so no
/// anonymous client can hold the permits.
async fn upload_permit(state: &AppState, parts: &Parts) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, Response> {
    let upload =
        is_unsafe(&parts.method) && state.settings.body_limit_for(parts.uri.path()) > state.settings.max_body_bytes;
    if !upload {
        return Ok(None);
    }
    match state.upload_permits.clone().acquire_owned().await {
        Ok(p) => Ok(Some(p)),
        Err(_) => Err(AppError::Unavailable("upload permits closed".into()).into_response()),
    }
}

/// Runs the rest of a request that holds an upload permit within UPLOAD_TIMEOUT (408 after it,
/// the permit then given back); any other request as it is.
async fn bounded(
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    rest: impl std::future::Future<Output = Response>,
) -> Response {
    let Some(permit) = permit else { return rest.await };
    let answer = tokio::time::timeout(UPLOAD_TIMEOUT, rest).await;
    drop(permit);
    answer.unwrap_or_else(|_| axum::http::StatusCode::REQUEST_TIMEOUT.into_response())
}

pub async fn session_layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    if let Some(token) = bearer_token(&parts.headers) {
        // A token request ignores cookies: it is authenticated by the token alone.
        return token_request(state, parts, body, token, next).await;
    }
    let ctx = ctx_from_parts(&parts, &state);
    let mut csrf_expected: Option<String> = None;

    if let Some(token) = session_token(&parts.headers) {
        let flow = LoginFlow::new();
        let hash = hash_token(&token);
        match state.store.session_by_token_hash(&flow, &hash).await {
            Err(e) => return AppError::from(e).into_response(),
            Ok(None) => {}
            Ok(Some(sc)) => {
                let policy = &sc.tenant.policy;
                let ended = if sc.user.status != UserStatus::Active {
                    Some(("disabled", AuditAction::SessionRevoked))
                } else if ctx.now - sc.session.created_at >= policy.absolute_timeout() {
                    Some(("absolute", AuditAction::SessionAbsoluteTimeout))
                } else if ctx.now - sc.session.last_seen_at >= policy.idle_timeout() {
                    Some(("idle", AuditAction::SessionIdleTimeout))
                } else {
                    None
                };
                let principal = Principal {
                    tenant_id: sc.tenant.id,
                    user_id: sc.user.id,
                    login_id: sc.user.login_id.clone(),
                    role: sc.user.role,
                    session_id: sc.session.id,
                };
                if let Some((reason, action)) = ended {
                    let ev =
                        ctx.event_by(&principal, action, Outcome::Success).target(format!("session:{}", sc.session.id));
                    if let Err(e) = state.store.end_session(&flow, sc.session.id, ev).await {
                        return AppError::from(e).into_response();
                    }
                    parts.extensions.insert(SessionEnded(reason));
                } else if !client_ip_allowed(&parts, policy) {
                    // Network access control on every request, not only at sign-in: a session
                    // carried to another network is refused there (and works again back home).
                    let ev = ctx
                        .event_by(&principal, AuditAction::PermissionDenied, Outcome::Denied)
                        .target(ctx.path.clone())
                        .details("client IP not on the tenant's allowlist");
                    if let Err(e) = state.store.append_audit(ev).await {
                        return AppError::from(e).into_response();
                    }
                    return AppError::IpNotAllowed.into_response();
                } else {
                    if ctx.now - sc.session.last_seen_at >= TOUCH_EVERY
                        && let Err(e) = state.store.touch_session(&flow, sc.session.id, ctx.now).await
                    {
                        return AppError::from(e).into_response();
                    }
                    csrf_expected = Some(sc.session.csrf_token.clone());
                    parts.extensions.insert(Authenticated {
                        ctx: sc,
                        principal,
                        credential: Credential::Session(hash),
                    });
                }
            }
        }
    }

    let permit = if parts.extensions.get::<Authenticated>().is_some() {
        match upload_permit(&state, &parts).await {
            Ok(p) => p,
            Err(r) => return r,
        }
    } else {
        None
    };
    bounded(permit, csrf_then_run(state, ctx, parts, body, csrf_expected, next)).await
}

/// The rest of `session_layer` for a request whose session (if any) is known.
async fn csrf_then_run(
    state: AppState,
    ctx: Ctx,
    parts: Parts,
    mut body: Body,
    csrf_expected: Option<String>,
    next: Next,
) -> Response {
    // CSRF layer 2 (ASVS 4.2.2): a state-changing request made with a session must carry that
    // session's token, in the X-CSRF-Token header (API) or the `csrf` form field (pages).
    if let Some(expected) = csrf_expected
        && is_unsafe(&parts.method)
        && !csrf_exempt(&parts.method, parts.uri.path())
    {
        let presented = match parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()) {
            Some(h) => Some(h.to_owned()),
            None if is_form(&parts.headers) => {
                let bytes = match axum::body::to_bytes(body, state.settings.body_limit_for(parts.uri.path())).await {
                    Ok(b) => b,
                    Err(_) => return AppError::PayloadTooLarge.into_response(),
                };
                let token = form_urlencoded::parse(&bytes).find(|(k, _)| k == "csrf").map(|(_, v)| v.into_owned());
                body = Body::from(bytes);
                token
            }
            None if is_multipart(&parts.headers) => {
                // File uploads: the token is a form field like any other; read the body (within
                // the limit), find the field, and hand the same bytes on.
                let bytes = match axum::body::to_bytes(body, state.settings.body_limit_for(parts.uri.path())).await {
                    Ok(b) => b,
                    Err(_) => return AppError::PayloadTooLarge.into_response(),
                };
                let probe = Request::from_parts(parts.clone_without_extensions(), Body::from(bytes.clone()));
                let token = multipart_field(probe, "csrf").await;
                body = Body::from(bytes);
                token
            }
            None => None,
        };
        if !presented.is_some_and(|p| constant_time_eq(&p, &expected)) {
            if let Some(a) = parts.extensions.get::<Authenticated>() {
                let ev = ctx
                    .event_by(&a.principal, AuditAction::PermissionDenied, Outcome::Denied)
                    .target(ctx.path.clone())
                    .details("csrf token missing or wrong");
                let _ = state.store.append_audit(ev).await;
            }
            return AppError::Csrf.into_response();
        }
    }
    next.run(Request::from_parts(parts, body)).await
}

fn client_ip_allowed(parts: &Parts, policy: &daicho_domain::SecurityPolicy) -> bool {
    match parts.extensions.get::<crate::ctx::ClientIp>() {
        Some(ip) => policy.allows_ip(ip.0),
        None => policy.ip_allowlist.is_empty(),
    }
}

fn is_multipart(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// The text of the first multipart field named `name`, if the body parses that far.
async fn multipart_field(req: Request, name: &str) -> Option<String> {
    use axum::extract::FromRequest;
    let mut mp = axum::extract::Multipart::from_request(req, &()).await.ok()?;
    while let Ok(Some(field)) = mp.next_field().await {
        if field.name() == Some(name) {
            return field.text().await.ok();
        }
    }
    None
}

trait CloneParts {
    fn clone_without_extensions(&self) -> Parts;
}

impl CloneParts for Parts {
    /// A copy of method, URI, version and headers (enough to parse a body again).
    fn clone_without_extensions(&self) -> Parts {
        let mut b =
            axum::http::Request::builder().method(self.method.clone()).uri(self.uri.clone()).version(self.version);
        if let Some(h) = b.headers_mut() {
            *h = self.headers.clone();
        }
        b.body(()).map(|r| r.into_parts().0).unwrap_or_else(|_| axum::http::Request::new(()).into_parts().0)
    }
}

pub(crate) fn is_form(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
}

/// The signed-in user. Refuses with "password change required" while the password must be
/// changed (first login, reset, expiry).
#[derive(Debug, Clone)]
pub struct Auth {
    pub principal: Principal,
    pub user: User,
    pub tenant: Tenant,
    pub session: Session,
    pub lang: Lang,
    pub password_age: PasswordAge,
    /// The tenant's design version, read with the session.
    pub design_version: i64,
    pub credential: Credential,
}

impl Auth {
    /// The handler's first statement: obtain a capability from the permission engine, or
    /// refuse (and record the refusal).
    pub async fn authorize<P: Permission>(&self, state: &AppState, ctx: &Ctx) -> AppResult<Scope<P>> {
        match self.principal.authorize::<P>() {
            Ok(scope) => Ok(scope),
            Err(_) => {
                let ev = ctx
                    .event_by(&self.principal, AuditAction::PermissionDenied, Outcome::Denied)
                    .target(ctx.path.clone())
                    .details(ctx.refusal(format!("needs {}", P::NAME)));
                state.store.append_audit(ev).await?;
                Err(AppError::Forbidden)
            }
        }
    }

    pub fn csrf(&self) -> &str {
        &self.session.csrf_token
    }

    pub fn must_change_password(&self) -> bool {
        self.user.must_change_password || self.password_age == PasswordAge::Expired
    }

    /// For a response that runs on after its handler returned (an export): at most once every
    /// `every` since `*checked` (on the injected clock), whether its session or token has
    /// ended, and why (`ended_since`); a store error counts as ended (the export stops rather
    /// than run on unchecked).
    pub async fn still_signed_in(
        &self,
        state: &AppState,
        now: OffsetDateTime,
        checked: &mut OffsetDateTime,
        every: Duration,
        watch: Option<&daicho_domain::access::TableAccess>,
    ) -> Option<&'static str> {
        if now - *checked < every {
            return None;
        }
        *checked = now;
        match self.ended_since(state, now, watch).await {
            Ok(why) => why,
            Err(e) => {
                tracing::error!(error = %e, "could not check an export's session");
                Some("its session could not be checked")
            }
        }
    }

    /// Why the session or token this request was made with no longer stands at `now`, if it
    /// does not: ended (signed out, or by an administrator), timed out, revoked, expired, or its
    /// user disabled or their password changed. A response that runs on after its handler
    /// returned (an export) asks this as it goes, so that disabling a leaver or revoking a
    /// token also stops a download under way. (Idleness is not asked: the download is use.)
    /// With `watch` (the user's access to the table read as the request began), a change of
    /// the user's grants on that table (removed from a group, a right or a field rule changed)
    /// ends it too: the download goes on only under the rights it began with.
    pub async fn ended_since(
        &self,
        state: &AppState,
        now: OffsetDateTime,
        watch: Option<&daicho_domain::access::TableAccess>,
    ) -> daicho_store::StoreResult<Option<&'static str>> {
        let flow = LoginFlow::new();
        let (why, version) = match &self.credential {
            Credential::Session(hash) => match state.store.session_by_token_hash(&flow, hash).await? {
                None => (Some("session ended"), None),
                Some(sc) if sc.user.status != UserStatus::Active => (Some("user disabled"), None),
                Some(sc) if now - sc.session.created_at >= sc.tenant.policy.absolute_timeout() => {
                    (Some("session timed out"), None)
                }
                Some(sc) => (None, Some(sc.design_version)),
            },
            Credential::Token(hash) => match state.store.token_by_hash(&flow, hash).await? {
                None => (Some("token deleted"), None),
                Some(tc) if tc.token.revoked_at.is_some() => (Some("token revoked"), None),
                Some(tc) if now >= tc.token.expires_at => (Some("token expired"), None),
                Some(tc) if tc.user.status != UserStatus::Active => (Some("user disabled"), None),
                Some(tc) if tc.token.created_at < tc.user.password_changed_at => (Some("password changed"), None),
                Some(tc) => (None, Some(tc.design_version)),
            },
        };
        // (The tenant's design version moves with every change of groups, members and grants:
        // only then are the grants read again.)
        // (An administrator's rights come from the role, not from groups: a change of role ends
        // the session or token, asked above.)
        if let (None, Some(version), Some(was)) = (why, version, watch)
            && version != self.design_version
            && !was.admin
        {
            let Ok(uses) = self.principal.authorize::<daicho_domain::UseTables>() else {
                return Ok(Some("rights changed"));
            };
            let now = self.principal.table_access(was.table, state.store.my_grants(&uses).await?);
            // (Compared in one order: the store gives a user's grants in none in particular.)
            let sorted = |a: &daicho_domain::access::TableAccess| {
                let mut g = a.grants.clone();
                g.sort_by_key(|g| g.group.to_string());
                g
            };
            if sorted(&now) != sorted(was) {
                return Ok(Some("rights changed"));
            }
        }
        Ok(why)
    }
}

/// The signed-in user, even while a password change is pending (password page, logout, who am I).
#[derive(Debug, Clone)]
pub struct AuthAny(pub Auth);

impl FromRequestParts<AppState> for AuthAny {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(a) = parts.extensions.get::<Authenticated>() else {
            let reason = parts.extensions.get::<SessionEnded>().map(|e| e.0);
            return Err(AppError::Unauthenticated { reason });
        };
        let sc = &a.ctx;
        let accept = parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
        let now = state.clock.now();
        Ok(AuthAny(Auth {
            principal: a.principal.clone(),
            user: sc.user.clone(),
            tenant: sc.tenant.clone(),
            session: sc.session.clone(),
            lang: sc.user.language.resolve(accept),
            password_age: sc.tenant.policy.password_age(sc.user.password_changed_at, now),
            design_version: sc.design_version,
            credential: a.credential.clone(),
        }))
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let AuthAny(auth) = AuthAny::from_request_parts(parts, state).await?;
        if auth.must_change_password() {
            return Err(AppError::PasswordChangeRequired);
        }
        Ok(auth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// An upload that does not end within UPLOAD_TIMEOUT is answered 408 and gives its permit
    /// back; one that ends keeps its answer; a request without a permit is not bounded.
    #[tokio::test(start_paused = true)]
    async fn a_slow_upload_gives_its_permit_back_after_the_timeout() {
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        let permit = permits.clone().acquire_owned().await.expect("a permit");
        assert_eq!(permits.available_permits(), 0);
        let r = bounded(Some(permit), std::future::pending::<Response>()).await;
        assert_eq!(r.status(), axum::http::StatusCode::REQUEST_TIMEOUT);
        assert_eq!(permits.available_permits(), 1, "given back");
        let permit = permits.clone().acquire_owned().await.expect("a permit");
        let quick = async { axum::http::StatusCode::OK.into_response() };
        assert_eq!(bounded(Some(permit), quick).await.status(), axum::http::StatusCode::OK);
        let slow = async {
            tokio::time::sleep(UPLOAD_TIMEOUT * 2).await;
            axum::http::StatusCode::OK.into_response()
        };
        assert_eq!(bounded(None, slow).await.status(), axum::http::StatusCode::OK, "no permit, no bound");
    }

    #[test]
    fn only_well_formed_session_cookies_are_read() {
        let good = "A".repeat(43);
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(&format!("x=1; {SESSION_COOKIE}={good}")).unwrap());
        assert_eq!(session_token(&h), Some(good));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("__Host-daicho_session=' OR 1=1 --"));
        assert_eq!(session_token(&h), None);
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("daicho_session=AAAA"));
        assert_eq!(session_token(&h), None);
    }

    #[test]
    fn the_cookie_is_host_prefixed_secure_and_http_only() {
        let c = session_cookie("t");
        assert!(c.starts_with("__Host-"));
        for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
            assert!(c.contains(attr), "{attr}");
        }
        assert!(!c.contains("Domain"));
    }
}

//! Operations shared by pages and the JSON API. Each takes the capability it needs, validates
//! its input into domain values, calls the store with the audit event that records it, and
//! returns a domain result; presenting it is the caller's business.

use daicho_authn::{Token, generate_one_time_password};
use daicho_domain::user::UserProfile;
use daicho_domain::{
    AuditAction, AuditFilter, FieldErrors, LoginFlow, LoginId, ManagePolicy, ManageUsers, NewAuditEvent, Outcome,
    OwnAccount, ReadAudit, Scope, SecurityPolicy, SessionId, TenantCode, User, UserId, UserStatus,
};
use daicho_store::{LoginFailure, NewSession, NewUser};
use time::{Date, Duration, Time};

use crate::ctx::{Ctx, EventExt};
use crate::error::{AppError, AppResult};
use crate::session::Auth;
use crate::state::AppState;

pub enum LoginOutcome {
    /// The plain session token for the cookie.
    Success {
        token: String,
    },
    /// Wrong tenant, login ID or password, disabled or locked: one answer for all (ASVS 2.2.x).
    Failed,
    Throttled,
}

fn failure_event(ctx: &Ctx, tried: &str, tenant: Option<daicho_domain::TenantId>, why: &str) -> NewAuditEvent {
    let mut e = ctx.event(AuditAction::LoginFailure, Outcome::Failure).details(why.to_owned());
    // A well-formed login ID as the history's search compares it (login IDs are
    // case-insensitive: "Taro " is found by "taro"); anything else exactly as it was sent.
    let tried = LoginId::parse(tried).map(|l| l.as_str().to_owned()).unwrap_or_else(|_| tried.to_owned());
    e.actor_login = tried.chars().take(128).collect();
    e.tenant_id = tenant;
    e
}

/// Checks a sign-in. Every path verifies one argon2 hash, so an unknown tenant or user costs
/// the same time as a wrong password.
pub async fn login(
    state: &AppState,
    ctx: &Ctx,
    tenant: &str,
    login_id: &str,
    password: &str,
) -> AppResult<LoginOutcome> {
    let flow = LoginFlow::new();
    let store = &state.store;
    let window = Duration::minutes(i64::from(state.settings.login_ip_window_minutes));
    let recent = store.login_failures_from_ip(&flow, &ctx.ip, ctx.now - window).await?;
    if recent >= u64::from(state.settings.login_ip_max_failures) {
        let mut e =
            ctx.event(AuditAction::LoginThrottled, Outcome::Denied).details(format!("{recent} failures from this IP"));
        e.actor_login = login_id.chars().take(128).collect();
        store.append_audit(e).await?;
        return Ok(LoginOutcome::Throttled);
    }
    let Ok(code) = TenantCode::parse(tenant) else {
        state.verify_dummy_password(password).await?;
        store.append_audit(failure_event(ctx, login_id, None, "malformed tenant code")).await?;
        return Ok(LoginOutcome::Failed);
    };
    let Some(t) = store.tenant_by_code(&flow, &code).await? else {
        state.verify_dummy_password(password).await?;
        let why = format!("unknown tenant {}", code.as_str());
        store.append_audit(failure_event(ctx, login_id, None, &why)).await?;
        return Ok(LoginOutcome::Failed);
    };
    // Network access control (tenant policy). The dummy verification keeps the timing of a
    // refusal equal to that of a wrong password.
    if !ctx.ip.parse::<std::net::IpAddr>().is_ok_and(|ip| t.policy.allows_ip(ip)) {
        state.verify_dummy_password(password).await?;
        store.append_audit(failure_event(ctx, login_id, Some(t.id), "client IP not on the tenant's allowlist")).await?;
        return Ok(LoginOutcome::Failed);
    }
    // From here on the attempt belongs to the tenant's history, even with a malformed login ID.
    let Ok(login) = LoginId::parse(login_id) else {
        state.verify_dummy_password(password).await?;
        store.append_audit(failure_event(ctx, login_id, Some(t.id), "malformed login ID")).await?;
        return Ok(LoginOutcome::Failed);
    };
    let Some(cred) = store.credential(&flow, t.id, &login).await? else {
        state.verify_dummy_password(password).await?;
        store.append_audit(failure_event(ctx, login.as_str(), Some(t.id), "unknown login ID")).await?;
        return Ok(LoginOutcome::Failed);
    };
    let ok = state.verify_password(&cred.password_hash, password).await?;
    let user = &cred.user;
    let fail = |why: &str| {
        let mut e = failure_event(ctx, login.as_str(), Some(t.id), why);
        e.actor_id = Some(user.id);
        e
    };
    if user.is_locked(ctx.now) {
        store.append_audit(fail("account locked")).await?;
        return Ok(LoginOutcome::Failed);
    }
    if user.status != UserStatus::Active {
        store.append_audit(fail("account disabled")).await?;
        return Ok(LoginOutcome::Failed);
    }
    if !ok {
        let policy = &t.policy;
        let lock_until = ctx.now + policy.lockout_duration();
        let mut lockout =
            ctx.event(AuditAction::LoginLockout, Outcome::Failure).target(format!("user:{}", user.id)).details(
                format!("locked for {} minutes after {} failures", policy.lockout_minutes, policy.lockout_threshold),
            );
        lockout.tenant_id = Some(t.id);
        lockout.actor_id = Some(user.id);
        lockout.actor_login = login.as_str().to_owned();
        store
            .record_login_failure(
                &flow,
                LoginFailure {
                    tenant_id: t.id,
                    user_id: user.id,
                    threshold: policy.lockout_threshold,
                    lock_until,
                    failure_event: fail("wrong password"),
                    lockout_event: lockout,
                },
            )
            .await?;
        return Ok(LoginOutcome::Failed);
    }
    let token = Token::generate();
    let csrf = Token::generate().plain;
    let session_id = SessionId::new_random();
    let mut ev = ctx.event(AuditAction::LoginSuccess, Outcome::Success).target(format!("session:{session_id}"));
    ev.tenant_id = Some(t.id);
    ev.actor_id = Some(user.id);
    ev.actor_login = login.as_str().to_owned();
    let started = store
        .start_session(
            &flow,
            NewSession {
                id: session_id,
                token_hash: token.hash,
                tenant_id: t.id,
                user_id: user.id,
                at: ctx.now,
                csrf_token: csrf,
                ip: ctx.ip.clone(),
                user_agent: ctx.user_agent.clone(),
                verified_hash: cred.password_hash.clone(),
            },
            ev,
        )
        .await?;
    if !started {
        // The password was changed or reset, or the user disabled or deleted, while it was
        // being verified: the password verified may no longer be theirs.
        store.append_audit(fail("account changed during sign-in")).await?;
        return Ok(LoginOutcome::Failed);
    }
    Ok(LoginOutcome::Success { token: token.plain })
}

/// Ends the session a browser held when it signs in again, so that no session outlives a
/// change of identity (session fixation, ASVS 3.2.1).
pub async fn end_replaced_session(state: &AppState, ctx: &Ctx, old: &crate::session::Authenticated) -> AppResult<()> {
    let ev = ctx
        .event_by(&old.principal, AuditAction::Logout, Outcome::Success)
        .target(format!("session:{}", old.ctx.session.id))
        .details("replaced by a new sign-in");
    state.store.end_session(&LoginFlow::new(), old.ctx.session.id, ev).await?;
    Ok(())
}

pub async fn logout(state: &AppState, ctx: &Ctx, auth: &Auth) -> AppResult<()> {
    let ev = ctx
        .event_by(&auth.principal, AuditAction::Logout, Outcome::Success)
        .target(format!("session:{}", auth.session.id));
    state.store.end_session(&LoginFlow::new(), auth.session.id, ev).await?;
    Ok(())
}

/// Self-service password change: the current password is required, the new one must satisfy
/// the tenant's policy, and every other session of the user ends (ASVS 2.1.5, 3.3.3).
pub async fn change_password(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    scope: &Scope<OwnAccount>,
    current: &str,
    new: &str,
    confirm: Option<&str>,
) -> AppResult<()> {
    let policy = &auth.tenant.policy;
    let hashes = state.store.password_hashes(scope, policy.password_history).await?;
    let current_ok = match hashes.first() {
        Some(h) => state.verify_password(h, current).await?,
        None => false,
    };
    if !current_ok {
        let ev = ctx
            .event_by(&auth.principal, AuditAction::PasswordChangeFailure, Outcome::Failure)
            .details("current password wrong");
        state.store.append_audit(ev).await?;
        return Err(AppError::Invalid(FieldErrors::single("current_password", "wrong_password")));
    }
    if confirm.is_some_and(|c| c != new) {
        return Err(AppError::Invalid(FieldErrors::single("confirm_password", "mismatch")));
    }
    // "The last N passwords" include the current one, which is never allowed again at once.
    let take = (policy.password_history as usize).max(1);
    let previous: Vec<String> = hashes.into_iter().take(take).collect();
    state.check_new_password(policy, &auth.user.login_id, new, previous).await?.map_err(AppError::Invalid)?;
    let hash = state.hash_password(new).await?;
    let ev = ctx
        .event_by(&auth.principal, AuditAction::PasswordChange, Outcome::Success)
        .target(format!("user:{}", auth.user.id));
    state.store.change_password(scope, hash, policy.password_history, ctx.now, ev).await?;
    Ok(())
}

fn profile(display_name: &str, email: &str, role: &str, language: &str) -> AppResult<UserProfile> {
    UserProfile::parse(display_name, email, role, language).map_err(AppError::Invalid)
}

/// Creates a user with a one-time password; returns the user and that password.
pub async fn create_user(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    scope: &Scope<ManageUsers>,
    login_id: &str,
    display_name: &str,
    email: &str,
    role: &str,
    language: &str,
) -> AppResult<(User, String)> {
    let mut errs = FieldErrors::new();
    let login = LoginId::parse(login_id).map_err(|c| errs.push("login_id", c)).ok();
    let prof = UserProfile::parse(display_name, email, role, language).map_err(|e| errs.0.extend(e.0)).ok();
    let (Some(login), Some(prof)) = (login, prof) else {
        return Err(AppError::Invalid(errs));
    };
    let otp = generate_one_time_password();
    let hash = state.hash_password(&otp).await?;
    let id = UserId::new_random();
    let ev = ctx
        .event_by(&auth.principal, AuditAction::UserCreate, Outcome::Success)
        .target(format!("user:{id} {}", login.as_str()))
        .details(format!("role={}", prof.role.as_str()));
    let user = state
        .store
        .create_user(
            scope,
            NewUser {
                id,
                login_id: login,
                profile: prof,
                password_hash: hash,
                must_change_password: true,
                at: ctx.now,
            },
            ev,
        )
        .await?;
    Ok((user, otp))
}

fn describe_changes(old: &User, new: &UserProfile) -> String {
    let mut parts = Vec::new();
    if old.display_name != new.display_name {
        parts.push(format!("display_name: {} -> {}", old.display_name.as_str(), new.display_name.as_str()));
    }
    if old.email != new.email {
        parts.push(format!("email: {} -> {}", old.email.as_str(), new.email.as_str()));
    }
    if old.role != new.role {
        parts.push(format!("role: {} -> {}", old.role.as_str(), new.role.as_str()));
    }
    if old.language != new.language {
        parts.push(format!("language: {} -> {}", old.language.as_str(), new.language.as_str()));
    }
    parts.join("; ")
}

/// Refuses operations that would let an admin lock themselves out (logic-flaw guard).
fn not_self(auth: &Auth, id: UserId) -> AppResult<()> {
    if auth.user.id == id { Err(AppError::Invalid(FieldErrors::single("user", "cannot_change_self"))) } else { Ok(()) }
}

#[allow(clippy::too_many_arguments)]
pub async fn update_user(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    scope: &Scope<ManageUsers>,
    id: UserId,
    display_name: &str,
    email: &str,
    role: &str,
    language: &str,
) -> AppResult<User> {
    let old = state.store.get_user(scope, id).await?;
    let prof = profile(display_name, email, role, language)?;
    if auth.user.id == id && prof.role != old.role {
        return Err(AppError::Invalid(FieldErrors::single("role", "cannot_change_self")));
    }
    let ev = ctx
        .event_by(&auth.principal, AuditAction::UserUpdate, Outcome::Success)
        .target(format!("user:{id} {}", old.login_id.as_str()))
        .details(describe_changes(&old, &prof));
    Ok(state.store.update_user(scope, id, prof, ctx.now, ev).await?)
}

pub async fn set_status(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    scope: &Scope<ManageUsers>,
    id: UserId,
    status: UserStatus,
) -> AppResult<()> {
    not_self(auth, id)?;
    let user = state.store.get_user(scope, id).await?;
    let action = if status == UserStatus::Disabled { AuditAction::UserDisable } else { AuditAction::UserEnable };
    let ev =
        ctx.event_by(&auth.principal, action, Outcome::Success).target(format!("user:{id} {}", user.login_id.as_str()));
    Ok(state.store.set_user_status(scope, id, status, ctx.now, ev).await?)
}

pub async fn delete_user(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    scope: &Scope<ManageUsers>,
    id: UserId,
) -> AppResult<()> {
    not_self(auth, id)?;
    let user = state.store.get_user(scope, id).await?;
    let ev = ctx
        .event_by(&auth.principal, AuditAction::UserDelete, Outcome::Success)
        .target(format!("user:{id} {}", user.login_id.as_str()))
        .details(format!("display_name={}; email={}", user.display_name.as_str(), user.email.as_str()));
    Ok(state.store.delete_user(scope, id, ev).await?)
}

/// Sets a one-time password that must be changed at the next sign-in.
pub async fn reset_password(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    scope: &Scope<ManageUsers>,
    id: UserId,
) -> AppResult<(User, String)> {
    not_self(auth, id)?;
    let user = state.store.get_user(scope, id).await?;
    let otp = generate_one_time_password();
    let hash = state.hash_password(&otp).await?;
    let ev = ctx
        .event_by(&auth.principal, AuditAction::PasswordReset, Outcome::Success)
        .target(format!("user:{id} {}", user.login_id.as_str()));
    state.store.reset_password(scope, id, hash, ctx.now, ev).await?;
    Ok((user, otp))
}

pub async fn unlock_user(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    scope: &Scope<ManageUsers>,
    id: UserId,
) -> AppResult<()> {
    let user = state.store.get_user(scope, id).await?;
    let ev = ctx
        .event_by(&auth.principal, AuditAction::UserUnlock, Outcome::Success)
        .target(format!("user:{id} {}", user.login_id.as_str()));
    Ok(state.store.unlock_user(scope, id, ev).await?)
}

pub async fn update_policy(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    scope: &Scope<ManagePolicy>,
    policy: SecurityPolicy,
) -> AppResult<()> {
    policy.validate().map_err(AppError::Invalid)?;
    // An administrator cannot save an allowlist that shuts out their own network.
    if !ctx.ip.parse::<std::net::IpAddr>().is_ok_and(|ip| policy.allows_ip(ip)) {
        return Err(AppError::Invalid(FieldErrors::single("ip_allowlist", "would_lock_out")));
    }
    let old = serde_json::to_value(&auth.tenant.policy).unwrap_or_default();
    let new = serde_json::to_value(&policy).unwrap_or_default();
    let mut changes = Vec::new();
    if let (Some(o), Some(n)) = (old.as_object(), new.as_object()) {
        for (k, v) in n {
            if o.get(k) != Some(v) {
                changes.push(format!("{k}: {} -> {v}", o.get(k).cloned().unwrap_or_default()));
            }
        }
    }
    let ev = ctx
        .event_by(&auth.principal, AuditAction::PolicyChange, Outcome::Success)
        .target(format!("tenant:{}", auth.tenant.code))
        .details(changes.join("; "));
    Ok(state.store.update_policy(scope, policy, ev).await?)
}

/// Parses the audit search criteria; a bad value is a field error. Dates are whole days at
/// `offset_minutes` from UTC (the tenant's, on pages; UTC in the API).
pub fn audit_filter(q: &crate::forms::AuditQuery, offset_minutes: i32) -> Result<AuditFilter, FieldErrors> {
    let offset = crate::views::utc_offset(offset_minutes);
    let start_of = |d: Date| time::PrimitiveDateTime::new(d, Time::MIDNIGHT).assume_offset(offset);
    let mut e = FieldErrors::new();
    let nonempty = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let mut f = AuditFilter { login: nonempty(&q.login).map(|s| s.to_lowercase()), ..Default::default() };
    if f.login.as_deref().is_some_and(|l| l.chars().any(char::is_control)) {
        e.push("login", "control_chars");
    }
    if let Some(a) = nonempty(&q.action) {
        match AuditAction::parse(&a) {
            Some(a) => f.action = Some(a),
            None => e.push("action", "choice"),
        }
    }
    if let Some(o) = nonempty(&q.outcome) {
        match Outcome::parse(&o) {
            Some(o) => f.outcome = Some(o),
            None => e.push("outcome", "choice"),
        }
    }
    if let Some(ip) = nonempty(&q.ip) {
        match ip.parse::<std::net::IpAddr>() {
            Ok(ip) => f.ip = Some(ip.to_string()),
            Err(_) => e.push("ip", "bad_ip"),
        }
    }
    let date = |s: &str| Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok();
    if let Some(d) = nonempty(&q.from) {
        match date(&d) {
            Some(d) => f.from = Some(start_of(d)),
            None => e.push("from", "bad_date"),
        }
    }
    if let Some(d) = nonempty(&q.to) {
        // "to" is inclusive of the whole day.
        match date(&d).and_then(|d| d.next_day()) {
            Some(d) => f.until = Some(start_of(d)),
            None => e.push("to", "bad_date"),
        }
    }
    if let Some(b) = nonempty(&q.before) {
        match b.parse::<i64>() {
            Ok(b) if b > 0 => f.before_seq = Some(b),
            _ => e.push("before", "not_a_number"),
        }
    }
    if e.is_empty() { Ok(f) } else { Err(e) }
}

pub fn audit_limit(q: &crate::forms::AuditQuery) -> Result<u32, FieldErrors> {
    match q.limit.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(50),
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=500).contains(&n) => Ok(n),
            _ => Err(FieldErrors::single("limit", "out_of_range")),
        },
    }
}

pub async fn search_audit(
    state: &AppState,
    scope: &Scope<ReadAudit>,
    filter: &AuditFilter,
    limit: u32,
) -> AppResult<Vec<daicho_domain::AuditEvent>> {
    Ok(state.store.search_audit(scope, filter, limit).await?)
}

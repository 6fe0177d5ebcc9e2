//! Row to domain mapping. A stored value that no longer parses is reported as an internal error
//! (it means the database was changed outside Daicho), never silently replaced.

use std::str::FromStr;

use daicho_domain::{
    AuditEvent, DisplayName, Email, LanguagePref, LoginId, Role, SecurityPolicy, SessionId, Tenant, TenantCode,
    TenantId, TenantName, User, UserId, UserStatus,
};
use daicho_store::{Session, StoreError, StoreResult};
use sqlx::Row;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

fn bad(what: &str) -> StoreError {
    StoreError::Internal(format!("stored value does not parse: {what}"))
}

fn get<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
    r: &'r PgRow,
    col: &str,
) -> StoreResult<T> {
    r.try_get(col).map_err(|e| StoreError::Internal(format!("column {col}: {e}")))
}

pub(crate) fn time_ms(v: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1_000_000).map_err(|_| bad("time"))
}

fn id<T: FromStr>(r: &PgRow, col: &str) -> StoreResult<T> {
    let s: String = get(r, col)?;
    T::from_str(&s).map_err(|_| bad(col))
}

fn opt_id<T: FromStr>(r: &PgRow, col: &str) -> StoreResult<Option<T>> {
    let s: Option<String> = get(r, col)?;
    s.map(|s| T::from_str(&s).map_err(|_| bad(col))).transpose()
}

pub(crate) fn user_from_row(r: &PgRow) -> StoreResult<User> {
    let locked: Option<i64> = get(r, "locked_until")?;
    let failed: i64 = get(r, "failed_logins")?;
    Ok(User {
        id: id::<UserId>(r, "id")?,
        tenant_id: id::<TenantId>(r, "tenant_id")?,
        login_id: LoginId::parse(&get::<String>(r, "login_id")?).map_err(|_| bad("login_id"))?,
        display_name: DisplayName::parse(&get::<String>(r, "display_name")?).map_err(|_| bad("display_name"))?,
        email: Email::parse(&get::<String>(r, "email")?).map_err(|_| bad("email"))?,
        role: Role::parse(&get::<String>(r, "role")?).map_err(|_| bad("role"))?,
        status: UserStatus::parse(&get::<String>(r, "status")?).map_err(|_| bad("status"))?,
        language: LanguagePref::parse(&get::<String>(r, "language")?).map_err(|_| bad("language"))?,
        must_change_password: get::<bool>(r, "must_change_password")?,
        password_changed_at: time_ms(get(r, "password_changed_at")?)?,
        failed_logins: u32::try_from(failed).unwrap_or(u32::MAX),
        locked_until: locked.map(time_ms).transpose()?,
        created_at: time_ms(get(r, "created_at")?)?,
        updated_at: time_ms(get(r, "updated_at")?)?,
    })
}

fn tenant_with(r: &PgRow, p: &str) -> StoreResult<Tenant> {
    let col = |c: &str| format!("{p}{c}");
    let policy: String = get(r, &col("policy"))?;
    Ok(Tenant {
        id: id::<TenantId>(r, &col("id"))?,
        code: TenantCode::parse(&get::<String>(r, &col("code"))?).map_err(|_| bad("code"))?,
        name: TenantName::parse(&get::<String>(r, &col("name"))?).map_err(|_| bad("name"))?,
        policy: serde_json::from_str::<SecurityPolicy>(&policy).map_err(|_| bad("policy"))?,
        created_at: time_ms(get(r, &col("created_at"))?)?,
    })
}

pub(crate) fn tenant_from_row(r: &PgRow) -> StoreResult<Tenant> {
    tenant_with(r, "")
}

pub(crate) fn tenant_from_prefixed(r: &PgRow) -> StoreResult<Tenant> {
    tenant_with(r, "t_")
}

pub(crate) fn session_from_row(r: &PgRow, p: &str) -> StoreResult<Session> {
    let col = |c: &str| format!("{p}{c}");
    Ok(Session {
        id: id::<SessionId>(r, &col("id"))?,
        tenant_id: id::<TenantId>(r, &col("tenant_id"))?,
        user_id: id::<UserId>(r, &col("user_id"))?,
        created_at: time_ms(get(r, &col("created_at"))?)?,
        last_seen_at: time_ms(get(r, &col("last_seen_at"))?)?,
        csrf_token: get(r, &col("csrf_token"))?,
        ip: get(r, &col("ip"))?,
        user_agent: get(r, &col("user_agent"))?,
    })
}

pub(crate) fn audit_from_row(r: &PgRow) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        seq: get(r, "seq")?,
        at: time_ms(get(r, "at")?)?,
        tenant_id: opt_id(r, "tenant_id")?,
        actor_id: opt_id(r, "actor_id")?,
        actor_login: get(r, "actor_login")?,
        ip: get(r, "ip")?,
        user_agent: get(r, "user_agent")?,
        action: get(r, "action")?,
        target: get(r, "target")?,
        outcome: get(r, "outcome")?,
        details: get(r, "details")?,
        prev_hash: get(r, "prev_hash")?,
        hash: get(r, "hash")?,
    })
}

//! The operator's operations, run from the command line on the server itself. They hold the
//! [`OperatorScope`], which no HTTP route can obtain, and every one is recorded in the
//! operation history (the tenant's chain, or the operator chain for cross-tenant events).

use daicho_authn::{PasswordHasher, generate_one_time_password};
use daicho_domain::user::UserProfile;
use daicho_domain::{
    AuditAction, LoginFlow, LoginId, NewAuditEvent, OperatorScope, Outcome, SecurityPolicy, Tenant, TenantCode,
    TenantId, TenantName, User, UserId,
};
use daicho_store::{NewTenant, NewUser, Store};
use time::OffsetDateTime;

fn operator_event(
    at: OffsetDateTime,
    tenant: Option<TenantId>,
    action: AuditAction,
    target: String,
    details: String,
) -> NewAuditEvent {
    NewAuditEvent {
        at,
        tenant_id: tenant,
        actor_id: None,
        actor_login: "operator".into(),
        ip: "local".into(),
        user_agent: "daicho-cli".into(),
        action,
        target,
        outcome: Outcome::Success,
        details,
    }
}

pub struct AdminSpec<'a> {
    pub login_id: &'a str,
    pub display_name: &'a str,
    pub email: &'a str,
}

fn bad(field: &str, code: &str) -> anyhow::Error {
    anyhow::anyhow!("{field}: {code}")
}

/// Creates a tenant and its first administrator with a one-time password, which is returned
/// (to be printed once) and must be changed at first sign-in.
pub async fn create_tenant(
    store: &dyn Store,
    hasher: &PasswordHasher,
    now: OffsetDateTime,
    code: &str,
    name: &str,
    admin: AdminSpec<'_>,
) -> anyhow::Result<(Tenant, User, String)> {
    let code = TenantCode::parse(code).map_err(|c| bad("tenant code", c))?;
    let name = TenantName::parse(name).map_err(|c| bad("tenant name", c))?;
    let login = LoginId::parse(admin.login_id).map_err(|c| bad("admin login ID", c))?;
    let profile = UserProfile::parse(admin.display_name, admin.email, "tenant_admin", "auto")
        .map_err(|e| anyhow::anyhow!("admin: {:?}", e.0))?;
    let otp = generate_one_time_password();
    let hash = hasher.hash(&otp).map_err(|e| anyhow::anyhow!("{e}"))?;
    let tenant_id = TenantId::new_random();
    let user_id = UserId::new_random();
    let events = vec![
        operator_event(
            now,
            Some(tenant_id),
            AuditAction::TenantCreate,
            format!("tenant:{}", code.as_str()),
            format!("name={}", name.as_str()),
        ),
        operator_event(
            now,
            Some(tenant_id),
            AuditAction::UserCreate,
            format!("user:{user_id} {}", login.as_str()),
            "role=tenant_admin".into(),
        ),
    ];
    let (tenant, user) = store
        .create_tenant(
            &OperatorScope::local(),
            NewTenant { id: tenant_id, code, name, policy: SecurityPolicy::default(), at: now },
            NewUser { id: user_id, login_id: login, profile, password_hash: hash, must_change_password: true, at: now },
            events,
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot create tenant: {e:?}"))?;
    Ok((tenant, user, otp))
}

pub async fn find_tenant(store: &dyn Store, code: &str) -> anyhow::Result<Tenant> {
    let code = TenantCode::parse(code).map_err(|c| bad("tenant code", c))?;
    store
        .tenant_by_code(&LoginFlow::new(), &code)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .ok_or_else(|| anyhow::anyhow!("no tenant with code {}", code.as_str()))
}

/// Adds a user to a tenant with a one-time password.
#[allow(clippy::too_many_arguments)]
pub async fn create_user(
    store: &dyn Store,
    hasher: &PasswordHasher,
    now: OffsetDateTime,
    tenant_code: &str,
    login_id: &str,
    display_name: &str,
    email: &str,
    role: &str,
) -> anyhow::Result<(User, String)> {
    let tenant = find_tenant(store, tenant_code).await?;
    let login = LoginId::parse(login_id).map_err(|c| bad("login ID", c))?;
    let profile = UserProfile::parse(display_name, email, role, "auto").map_err(|e| anyhow::anyhow!("{:?}", e.0))?;
    let otp = generate_one_time_password();
    let hash = hasher.hash(&otp).map_err(|e| anyhow::anyhow!("{e}"))?;
    let id = UserId::new_random();
    let ev = operator_event(
        now,
        Some(tenant.id),
        AuditAction::UserCreate,
        format!("user:{id} {}", login.as_str()),
        format!("role={}", profile.role.as_str()),
    );
    let user = store
        .operator_create_user(
            &OperatorScope::local(),
            tenant.id,
            NewUser { id, login_id: login, profile, password_hash: hash, must_change_password: true, at: now },
            ev,
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot create user: {e:?}"))?;
    Ok((user, otp))
}

/// Sets a new one-time password for a user (forgotten admin password, demo accounts).
pub async fn reset_password(
    store: &dyn Store,
    hasher: &PasswordHasher,
    now: OffsetDateTime,
    tenant_code: &str,
    login_id: &str,
    must_change: bool,
) -> anyhow::Result<String> {
    let tenant = find_tenant(store, tenant_code).await?;
    let login = LoginId::parse(login_id).map_err(|c| bad("login ID", c))?;
    let cred = store
        .credential(&LoginFlow::new(), tenant.id, &login)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .ok_or_else(|| anyhow::anyhow!("no user {} in tenant {}", login.as_str(), tenant.code.as_str()))?;
    let otp = generate_one_time_password();
    let hash = hasher.hash(&otp).map_err(|e| anyhow::anyhow!("{e}"))?;
    let ev = operator_event(
        now,
        Some(tenant.id),
        AuditAction::PasswordReset,
        format!("user:{} {}", cred.user.id, login.as_str()),
        String::new(),
    );
    store
        .operator_set_password(&OperatorScope::local(), tenant.id, cred.user.id, hash, must_change, now, ev)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(otp)
}

pub struct DemoCredentials {
    pub tenant: String,
    pub admin_login: String,
    pub admin_password: String,
    pub member_login: String,
    pub member_password: String,
}

/// Creates the demo tenant (once) and gives its two accounts fresh passwords on every start,
/// so the printed credentials always work. Demo accounts need no password change at sign-in.
pub async fn seed_demo(
    store: &dyn Store,
    hasher: &PasswordHasher,
    now: OffsetDateTime,
) -> anyhow::Result<DemoCredentials> {
    if find_tenant(store, "demo").await.is_err() {
        create_tenant(
            store,
            hasher,
            now,
            "demo",
            "Demo 株式会社",
            AdminSpec { login_id: "admin", display_name: "管理 太郎 (Demo admin)", email: "admin@demo.example" },
        )
        .await?;
        create_user(store, hasher, now, "demo", "staff", "現場 花子 (Demo staff)", "staff@demo.example", "member")
            .await?;
    }
    let admin_password = reset_password(store, hasher, now, "demo", "admin", false).await?;
    let member_password = reset_password(store, hasher, now, "demo", "staff", false).await?;
    Ok(DemoCredentials {
        tenant: "demo".into(),
        admin_login: "admin".into(),
        admin_password,
        member_login: "staff".into(),
        member_password,
    })
}

/// Checks every hash chain; returns a line per chain and whether all are intact.
pub async fn verify_audit(store: &dyn Store) -> anyhow::Result<(Vec<String>, bool)> {
    let reports = store.verify_all_audit_chains(&OperatorScope::local()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut all_ok = true;
    let lines = reports
        .into_iter()
        .map(|(t, r)| {
            let who = t.map(|t| format!("tenant {t}")).unwrap_or_else(|| "operator".into());
            all_ok &= r.intact();
            match r.first_broken_seq {
                None => format!("{who}: intact ({} events)", r.events_checked),
                Some(s) => format!("{who}: BROKEN at event {s} ({} events checked)", r.events_checked),
            }
        })
        .collect();
    Ok((lines, all_ok))
}

/// What `migrate-store` copied and checked.
#[derive(Debug)]
pub struct MigrationReport {
    pub counts: Vec<(&'static str, i64, i64)>,
    pub chains: Vec<String>,
    pub ok: bool,
}

/// Copies everything from `source` into the empty `target`, then verifies: every table has the
/// same number of rows, and every audit chain verifies on the target with as many events as on
/// the source. Stop the nodes before running it: writes during the copy would be missed.
pub async fn migrate_store(source: &dyn Store, target: &dyn Store) -> anyhow::Result<MigrationReport> {
    let op = OperatorScope::local();
    let err = |e: daicho_store::StoreError| anyhow::anyhow!("{e:?}");
    let before = source.table_counts(&op).await.map_err(err)?;
    if before.iter().any(|(t, n)| *t == "user_tables" && *n > 0) {
        anyhow::bail!("the source holds user tables, which migrate-store cannot copy yet; nothing was copied");
    }
    let base = source.export_base(&op).await.map_err(err)?;
    target.import_base(&op, base).await.map_err(|e| match e {
        daicho_store::StoreError::Conflict(_) => anyhow::anyhow!("the target store is not empty"),
        other => anyhow::anyhow!("{other:?}"),
    })?;
    let mut after = 0;
    loop {
        let batch = source.export_audit(&op, after, 1000).await.map_err(err)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        target.import_audit(&op, batch).await.map_err(err)?;
    }
    let (src, dst) = (source.table_counts(&op).await.map_err(err)?, target.table_counts(&op).await.map_err(err)?);
    let counts: Vec<(&'static str, i64, i64)> =
        src.iter().zip(dst.iter()).map(|((t, a), (_, b))| (*t, *a, *b)).collect();
    let mut ok = counts.iter().all(|(_, a, b)| a == b);
    let src_chains = source.verify_all_audit_chains(&op).await.map_err(err)?;
    let dst_chains = target.verify_all_audit_chains(&op).await.map_err(err)?;
    let mut chains = Vec::new();
    for (tenant, s) in &src_chains {
        let who = tenant.map(|t| format!("tenant {t}")).unwrap_or_else(|| "operator".into());
        match dst_chains.iter().find(|(t, _)| t == tenant) {
            Some((_, d)) if d.intact() && d.events_checked == s.events_checked => {
                chains.push(format!("{who}: {} events, chain intact", d.events_checked));
            }
            Some((_, d)) => {
                ok = false;
                chains.push(format!(
                    "{who}: MISMATCH ({} events on the source, {} on the target, broken at {:?})",
                    s.events_checked, d.events_checked, d.first_broken_seq
                ));
            }
            None => {
                ok = false;
                chains.push(format!("{who}: MISSING on the target"));
            }
        }
    }
    Ok(MigrationReport { counts, chains, ok })
}

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
    /// The support group's member (a demo made before it had one has none).
    pub support: Option<(String, String)>,
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
        create_user(
            store,
            hasher,
            now,
            "demo",
            "support",
            "窓口 次郎 (Demo support)",
            "support@demo.example",
            "member",
        )
        .await?;
    }
    seed_demo_tables(store, now).await?;
    let admin_password = reset_password(store, hasher, now, "demo", "admin", false).await?;
    let member_password = reset_password(store, hasher, now, "demo", "staff", false).await?;
    let support =
        reset_password(store, hasher, now, "demo", "support", false).await.ok().map(|p| ("support".to_owned(), p));
    Ok(DemoCredentials {
        tenant: "demo".into(),
        admin_login: "admin".into(),
        admin_password,
        member_login: "staff".into(),
        member_password,
        support,
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
    /// Per table (system tables by name, user tables as `records <table id>`): rows on the
    /// source and on the target.
    pub counts: Vec<(String, i64, i64)>,
    pub chains: Vec<String>,
    pub ok: bool,
}

/// Records and history entries copied per transaction (and read back per statement). 1,000
/// made a million records 1,000 commits, each adding segments for the keyword index to merge:
/// 300,000 records copied in 36 s into SQLite; with 10,000, 22.6 s. A batch of records is held
/// twice in memory (written and read back), a few megabytes.
const COPY_BATCH: u32 = 10_000;

/// Copies everything from `source` into the empty `target`: tenants, users, sessions, jobs, the
/// catalogue of user tables with their SQL tables, indexes and keyword indexes, every record
/// (ids, versions and authors kept), record history, groups, grants, API tokens and the
/// operation history. Then verifies: every table has the same number of rows, every record
/// reads back from the target exactly as from the source, and every audit chain verifies on the
/// target with as many events as on the source. Stop the nodes before running it: writes during
/// the copy would be missed.
pub async fn migrate_store(source: &dyn Store, target: &dyn Store) -> anyhow::Result<MigrationReport> {
    let op = OperatorScope::local();
    let err = |e: daicho_store::StoreError| anyhow::anyhow!("{e:?}");
    let not_empty = |e: daicho_store::StoreError| match e {
        daicho_store::StoreError::Conflict(_) => anyhow::anyhow!("the target store is not empty"),
        other => anyhow::anyhow!("{other:?}"),
    };
    let base = source.export_base(&op).await.map_err(err)?;
    target.import_base(&op, base).await.map_err(not_empty)?;
    let catalogue = source.export_catalogue(&op).await.map_err(err)?;
    let tables: Vec<(TenantId, daicho_domain::TableId)> = catalogue
        .tables
        .iter()
        .map(|t| match (t.tenant_id.parse(), t.id.parse()) {
            (Ok(tenant), Ok(table)) => Ok((tenant, table)),
            _ => Err(anyhow::anyhow!("the source catalogue holds a bad table id: {}", t.id)),
        })
        .collect::<anyhow::Result<_>>()?;
    target.import_catalogue(&op, catalogue).await.map_err(not_empty)?;
    let mut mismatched = Vec::new();
    for (tenant, table) in tables {
        let mut after = 0;
        loop {
            let batch = source.export_table_records(&op, tenant, table, after, COPY_BATCH).await.map_err(err)?;
            let Some(last) = batch.last() else { break };
            let last = last.id;
            target.import_table_records(&op, tenant, table, batch.clone()).await.map_err(err)?;
            // Read back what was written: the copy is checked value by value, not only counted.
            let back = target.export_table_records(&op, tenant, table, after, COPY_BATCH).await.map_err(err)?;
            if back != batch {
                mismatched.push(table);
            }
            after = last;
        }
    }
    let mut after = 0;
    loop {
        let batch = source.export_record_history(&op, after, COPY_BATCH).await.map_err(err)?;
        let Some(last) = batch.last() else { break };
        after = last.id;
        target.import_record_history(&op, batch).await.map_err(err)?;
    }
    let mut after = 0;
    loop {
        let batch = source.export_audit(&op, after, 1000).await.map_err(err)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        target.import_audit(&op, batch).await.map_err(err)?;
    }
    let (src, dst) = (source.table_counts(&op).await.map_err(err)?, target.table_counts(&op).await.map_err(err)?);
    let mut counts: Vec<(String, i64, i64)> =
        src.iter().zip(dst.iter()).map(|((t, a), (_, b))| ((*t).to_owned(), *a, *b)).collect();
    let dst_records = target.record_counts(&op).await.map_err(err)?;
    for (table, n) in source.record_counts(&op).await.map_err(err)? {
        let m = dst_records.iter().find(|(t, _)| *t == table).map(|(_, m)| *m).unwrap_or(-1);
        counts.push((format!("records {table}"), n, m));
    }
    let mut ok = counts.iter().all(|(_, a, b)| a == b) && mismatched.is_empty();
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
    for table in mismatched {
        chains.push(format!("records {table}: values read back from the target DIFFER from the source"));
    }
    Ok(MigrationReport { counts, chains, ok })
}

/// Fills the demo tenant with a small business, once: customers, products, orders and
/// inquiries, a few thousand records of Japanese and English text, made deterministically.
pub async fn seed_demo_tables(store: &dyn Store, now: OffsetDateTime) -> anyhow::Result<usize> {
    use daicho_domain::table::{Cell, FieldDef, FieldKind, FieldRules, Name};
    use daicho_domain::{FieldId, TableId};

    let tenant = find_tenant(store, "demo").await?;
    let cred = store
        .credential(&LoginFlow::new(), tenant.id, &LoginId::parse("admin").map_err(|c| anyhow::anyhow!(c))?)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .ok_or_else(|| anyhow::anyhow!("the demo admin is missing"))?;
    let principal = daicho_domain::Principal {
        tenant_id: tenant.id,
        user_id: cred.user.id,
        login_id: cred.user.login_id.clone(),
        role: cred.user.role,
        session_id: daicho_domain::SessionId::new_random(),
    };
    let design = principal.authorize::<daicho_domain::ManageDesign>().map_err(|e| anyhow::anyhow!("{e}"))?;
    let uses = principal.authorize::<daicho_domain::UseTables>().map_err(|e| anyhow::anyhow!("{e}"))?;
    // The demo administrator holds every table right (administrators do); the engine says so.
    let table_scope = |t: TableId| principal.table_access(t, Vec::new());
    if !store.list_tables(&uses).await.map_err(|e| anyhow::anyhow!("{e}"))?.is_empty() {
        return Ok(0);
    }
    let event = |action: AuditAction, target: String| NewAuditEvent {
        at: now,
        tenant_id: Some(tenant.id),
        actor_id: Some(principal.user_id),
        actor_login: "admin".into(),
        ip: "local".into(),
        user_agent: "daicho demo".into(),
        action,
        target,
        outcome: Outcome::Success,
        details: "demo data".into(),
    };
    let name = |s: &str| Name::parse(s).map_err(|c| anyhow::anyhow!(c));
    let rules = |required: bool, unique: bool| FieldRules { required, unique, ..Default::default() };
    let choice = |c: &[&str]| FieldKind::Choice { choices: c.iter().map(|s| s.to_string()).collect() };
    type FieldSpec = (&'static str, FieldKind, FieldRules);
    let specs: Vec<(&str, &str, Vec<FieldSpec>)> = vec![
        (
            "顧客 Customers",
            "取引先の会社 / client companies",
            vec![
                ("会社名 Company", FieldKind::Text, rules(true, true)),
                ("業種 Industry", choice(&["製造", "小売", "IT", "物流", "建設"]), rules(false, false)),
                ("従業員数 Staff", FieldKind::Integer, rules(false, false)),
                ("メール E-mail", FieldKind::Email, rules(false, false)),
                ("契約日 Since", FieldKind::Date, rules(false, false)),
                ("有効 Active", FieldKind::Checkbox, rules(false, false)),
            ],
        ),
        (
            "製品 Products",
            "販売する製品 / what we sell",
            vec![
                ("品番 SKU", FieldKind::Text, rules(true, true)),
                ("品名 Name", FieldKind::Text, rules(true, false)),
                ("単価 Price", FieldKind::Decimal { scale: 0 }, rules(true, false)),
            ],
        ),
        (
            "受注 Orders",
            "顧客からの注文 / orders from customers",
            vec![
                ("受注番号 Order no.", FieldKind::Text, rules(true, true)),
                (
                    "顧客 Customer",
                    FieldKind::Link { table: TableId::new_random(), show: FieldId::new_random() },
                    rules(true, false),
                ),
                (
                    "製品 Product",
                    FieldKind::Link { table: TableId::new_random(), show: FieldId::new_random() },
                    rules(true, false),
                ),
                ("数量 Quantity", FieldKind::Integer, rules(true, false)),
                ("受注日 Ordered", FieldKind::Date, rules(true, false)),
                ("状態 Status", choice(&["受付", "出荷済", "請求済", "完了"]), rules(true, false)),
            ],
        ),
        (
            "問い合わせ Inquiries",
            "お客様からの問い合わせ / customer inquiries",
            vec![
                ("件名 Subject", FieldKind::Text, rules(true, false)),
                ("顧客 Customer", FieldKind::Text, rules(false, false)),
                ("内容 Details", FieldKind::Multiline, rules(false, false)),
                ("状態 Status", choice(&["未対応", "対応中", "完了"]), rules(true, false)),
                ("受付番号 No.", FieldKind::AutoNumber { prefix: "Q-".into(), digits: 5 }, rules(false, false)),
                (
                    "タグ Tags",
                    FieldKind::MultiChoice {
                        choices: ["至急", "見積", "クレーム", "Web"].iter().map(|s| s.to_string()).collect(),
                    },
                    rules(false, false),
                ),
            ],
        ),
    ];
    let mut tables = Vec::new();
    for (tname, desc, fields) in specs {
        let id = TableId::new_random();
        let mut t = store
            .create_table(
                &design,
                id,
                name(tname)?,
                desc.into(),
                now,
                event(AuditAction::TableCreate, format!("table:{id}")),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let design_t = principal
            .authorize_table::<daicho_domain::access::Design>(&table_scope(id))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for (fname, kind, r) in fields {
            // Orders link to their customer (showing its company name) and to their product
            // (showing its SKU).
            let target = if fname.starts_with("製品") { tables.get(1) } else { tables.first() };
            let kind = match (&kind, target) {
                (FieldKind::Link { .. }, Some(linked)) => {
                    let c: &daicho_domain::table::TableDef = linked;
                    FieldKind::Link { table: c.id, show: c.fields[0].id }
                }
                _ => kind,
            };
            let f = FieldDef { id: FieldId::new_random(), name: name(fname)?, kind, rules: r, position: 0 };
            let target = format!("table:{id} field:{}", f.id);
            t = store
                .add_field(&design_t, id, f, event(AuditAction::FieldCreate, target))
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        }
        tables.push(t);
    }
    let places = ["東京", "大阪", "名古屋", "札幌", "福岡", "仙台", "広島", "京都", "神戸", "横浜"];
    let kinds = ["システム", "精機", "物流", "商事", "製作所", "ソフト", "建設", "電機"];
    let forms = ["株式会社", "有限会社", "合同会社"];
    let industries = ["製造", "小売", "IT", "物流", "建設"];
    let text = |s: String| Cell::Text(s);
    let date = |days: i64| {
        let d = now.date() - time::Duration::days(days);
        Cell::Text(d.to_string())
    };
    let mut customers = Vec::new();
    let mut rows: Vec<Vec<Vec<(FieldId, Cell)>>> = vec![Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    let ids = |t: &daicho_domain::table::TableDef| t.fields.iter().map(|f| f.id).collect::<Vec<_>>();
    let (c, p, o, q) = (ids(&tables[0]), ids(&tables[1]), ids(&tables[2]), ids(&tables[3]));
    for i in 0..400usize {
        let company = if i % 5 == 4 {
            format!(
                "{} {} Co., Ltd. {i}",
                ["Pacific", "Sakura", "Northern", "Blue River"][i % 4],
                ["Trading", "Systems", "Logistics"][i % 3]
            )
        } else {
            format!("{}{}{} {i}", forms[i % 3], places[i % 10], kinds[i % 8])
        };
        customers.push(company.clone());
        rows[0].push(vec![
            (c[0], text(company)),
            (c[1], text(industries[i % 5].into())),
            (c[2], Cell::Int(((i * 37) % 900 + 5) as i64)),
            (c[3], text(format!("info{i}@example.jp"))),
            (c[4], date((i * 3) as i64)),
            (c[5], Cell::Bool(i % 7 != 0)),
        ]);
    }
    for i in 0..60usize {
        rows[1].push(vec![
            (p[0], text(format!("P-{:04}", i + 1))),
            (
                p[1],
                text(format!(
                    "{} {}",
                    ["ボルト", "ナット", "センサー", "モーター", "ケーブル", "Bracket"][i % 6],
                    i + 1
                )),
            ),
            (p[2], Cell::Int(((i * 113) % 9000 + 100) as i64)),
        ]);
    }
    for i in 0..1800usize {
        rows[2].push(vec![
            (o[0], text(format!("SO-{:06}", i + 1))),
            // customers were imported first into a fresh table, so their ids are 1..=400
            (o[1], Cell::Int(((i * 7) % customers.len() + 1) as i64)),
            // (products too were imported into a fresh table: ids 1..=60)
            (o[2], Cell::Int(((i * 11) % 60 + 1) as i64)),
            (o[3], Cell::Int(((i * 13) % 50 + 1) as i64)),
            (o[4], date((i % 365) as i64)),
            (o[5], text(["受付", "出荷済", "請求済", "完了"][i % 4].into())),
        ]);
    }
    for i in 0..300usize {
        rows[3].push(vec![
            (
                q[0],
                text(format!(
                    "{} ({i})",
                    ["納期の確認", "見積もり依頼", "請求書の再発行", "Product question", "返品について"][i % 5]
                )),
            ),
            (q[1], text(customers[(i * 3) % customers.len()].clone())),
            (q[2], text("お世話になっております。\n詳細はお電話でご相談させてください。\nThank you.".into())),
            (q[3], text(["未対応", "対応中", "完了"][i % 3].into())),
            // q[4] is the auto-number, given by the database.
            (
                q[5],
                if i % 5 == 4 {
                    Cell::Null
                } else {
                    text(["至急", "見積\nWeb", "クレーム", "至急\nWeb"][i % 4].into())
                },
            ),
        ]);
    }
    let mut total = 0;
    for (t, r) in tables.iter().zip(rows) {
        total += r.len();
        // The design as it stands now (the tables made after this one moved the version).
        let t = &store.table(&uses, t.id).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let ev = event(AuditAction::RecordImport, format!("table:{}", t.id));
        let import = principal
            .authorize_table::<daicho_domain::access::Import>(&table_scope(t.id))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        daicho_store::import_all(store, &import, t, r, now, ev).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    seed_demo_groups(store, &principal, &tables, now).await?;
    Ok(total)
}

/// Two groups with different rights: Sales (the demo staff user) works with customers and
/// orders and sees prices it cannot change; Support handles inquiries and does not see the
/// customers' staff numbers.
async fn seed_demo_groups(
    store: &dyn Store,
    admin: &daicho_domain::Principal,
    tables: &[daicho_domain::table::TableDef],
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    use daicho_domain::access::{FieldAccess, Rights, RowRule, TableGrant, TableRight::*};
    use daicho_domain::table::Name;
    let err = |e: daicho_store::StoreError| anyhow::anyhow!("{e:?}");
    let scope = admin.authorize::<daicho_domain::ManageGroups>().map_err(|e| anyhow::anyhow!("{e}"))?;
    // Each group's member: the staff account in sales, the support account in support.
    let member = |login: &'static str| async move {
        let id = LoginId::parse(login).map_err(|c| anyhow::anyhow!(c))?;
        Ok::<_, anyhow::Error>(
            store.credential(&LoginFlow::new(), admin.tenant_id, &id).await.map_err(err)?.map(|c| c.user.id),
        )
    };
    let event = |action: AuditAction, target: String, details: String| NewAuditEvent {
        at: now,
        tenant_id: Some(admin.tenant_id),
        actor_id: Some(admin.user_id),
        actor_login: admin.login_id.as_str().to_owned(),
        ip: "local".into(),
        user_agent: "daicho demo".into(),
        action,
        target,
        outcome: Outcome::Success,
        details,
    };
    let field =
        |t: usize, prefix: &str| tables[t].fields.iter().find(|f| f.name.as_str().starts_with(prefix)).map(|f| f.id);
    type Spec = (usize, Rights, RowRule, Vec<(Option<daicho_domain::FieldId>, FieldAccess)>);
    let groups: Vec<(&str, &str, &'static str, Vec<Spec>)> = vec![
        (
            "営業 Sales",
            "顧客と受注を担当 / customers and orders",
            "staff",
            vec![
                (0, Rights::of([View, Create, Edit, Export]), RowRule::All, vec![]),
                (1, Rights::of([View, Edit]), RowRule::All, vec![(field(1, "単価"), FieldAccess::ReadOnly)]),
                (2, Rights::of([View, Create, Edit, Export, Import]), RowRule::All, vec![]),
                (3, Rights::of([View]), RowRule::All, vec![]),
            ],
        ),
        (
            "サポート Support",
            "問い合わせ対応 / customer inquiries",
            "support",
            vec![
                (0, Rights::of([View]), RowRule::All, vec![(field(0, "従業員数"), FieldAccess::Hidden)]),
                (3, Rights::of([View, Create, Edit, Delete]), RowRule::CreatedByMe, vec![]),
            ],
        ),
    ];
    for (name, desc, login, grants) in groups {
        let id = daicho_domain::GroupId::new_random();
        let n = Name::parse(name).map_err(|c| anyhow::anyhow!(c))?;
        let ev = event(AuditAction::GroupCreate, format!("group:{id}"), format!("name={name}"));
        store.create_group(&scope, id, n, desc.into(), now, ev).await.map_err(err)?;
        if let Some(u) = member(login).await? {
            let ev = event(AuditAction::GroupMembers, format!("group:{id}"), format!("members={login}"));
            store.set_group_members(&scope, id, vec![u], None, ev).await.map_err(err)?;
        }
        for (t, rights, rows, fields) in grants {
            let fields = fields.into_iter().filter_map(|(f, a)| f.map(|f| (f, a))).collect();
            let grant = TableGrant { group: id, table: tables[t].id, rights, rows, fields };
            let ev = event(AuditAction::GroupGrant, format!("group:{id} table:{}", tables[t].id), "demo".into());
            store.set_table_grant(&scope, grant, ev).await.map_err(err)?;
        }
    }
    Ok(())
}

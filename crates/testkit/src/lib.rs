//! TestApp: the real Daicho server on random loopback ports, over HTTPS with its generated
//! certificate, on a fresh data directory, with a manual clock the test moves. Personas are
//! signed-in HTTP clients.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use daicho::config::Config;
use daicho::{Running, operator};
use daicho_authn::PasswordHasher;
use daicho_domain::{Clock, ManualClock};
use reqwest::{Certificate, Client, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

pub use reqwest;

/// When every test's clock starts.
pub const T0: OffsetDateTime = datetime!(2026-04-01 09:00 UTC);

pub struct TestApp {
    pub base: String,
    pub http_base: String,
    pub clock: ManualClock,
    pub running: Running,
    pub config: Config,
    pub cert_pem: Vec<u8>,
    pub hasher: std::sync::Arc<PasswordHasher>,
    _dir: tempfile::TempDir,
}

/// A signed-in (or anonymous) client of one tenant.
pub struct Persona {
    pub client: Client,
    pub csrf: String,
    pub tenant: String,
    pub login: String,
    pub password: String,
    pub base: String,
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        daicho::install_crypto_provider();
        // Server logs (with request ids) appear in a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_ansi(false)
            .with_env_filter("warn,daicho=info")
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
        if let Some(url) = postgres_admin_url() {
            config.database.url = Some(fresh_postgres_database(&url).await);
        }
        config.server.https_addr = "127.0.0.1:0".parse().unwrap();
        config.server.http_addr = "127.0.0.1:0".parse().unwrap();
        config.database.max_connections = 4;
        // Tests run scheduled jobs themselves (`running.jobs.tick()`) on the manual clock.
        config.jobs.enabled = false;
        adjust(&mut config);
        let clock = ManualClock::new(T0);
        let running = daicho::start(&config, Arc::new(clock.clone())).await.unwrap();
        let cert_pem = std::fs::read(dir.path().join("tls/cert.pem")).unwrap();
        let base = format!("https://127.0.0.1:{}", running.https.addr.port());
        let http_base =
            running.http.as_ref().map(|h| format!("http://127.0.0.1:{}", h.addr.port())).unwrap_or_default();
        let hasher = running.state.hasher.clone();
        Self { base, http_base, clock, running, config, cert_pem, hasher, _dir: dir }
    }

    pub fn store(&self) -> &dyn daicho_store::Store {
        self.running.store.get()
    }

    pub fn backend(&self) -> &'static str {
        self.running.store.backend()
    }

    /// Runs raw SQL as an attacker with database access would, choosing the statement for the
    /// backend in use. Returns the rows affected, or the database's refusal.
    pub async fn raw_sql(&self, sqlite: &'static str, postgres: &'static str) -> Result<u64, String> {
        match &self.running.store {
            daicho::StoreHandle::Sqlite(s) => sqlx::query(sqlite)
                .execute(s.pool_for_tests())
                .await
                .map(|r| r.rows_affected())
                .map_err(|e| e.to_string()),
            daicho::StoreHandle::Postgres(s) => sqlx::query(postgres)
                .execute(s.pool_for_tests())
                .await
                .map(|r| r.rows_affected())
                .map_err(|e| e.to_string()),
        }
    }

    pub async fn raw_i64(&self, sql: &'static str) -> i64 {
        match &self.running.store {
            daicho::StoreHandle::Sqlite(s) => sqlx::query_scalar(sql).fetch_one(s.pool_for_tests()).await.unwrap(),
            daicho::StoreHandle::Postgres(s) => sqlx::query_scalar(sql).fetch_one(s.pool_for_tests()).await.unwrap(),
        }
    }

    /// On SQLite, the page cache size (`PRAGMA cache_size`) of every connection the pool may
    /// hold, all held at once; `None` on PostgreSQL.
    pub async fn sqlite_cache_sizes(&self) -> Option<Vec<i64>> {
        let daicho::StoreHandle::Sqlite(s) = &self.running.store else { return None };
        let pool = s.pool_for_tests();
        let mut held = Vec::new();
        for _ in 0..pool.options().get_max_connections() {
            held.push(pool.acquire().await.unwrap());
        }
        let mut sizes = Vec::new();
        for c in &mut held {
            sizes.push(sqlx::query_scalar("PRAGMA cache_size").fetch_one(&mut **c).await.unwrap());
        }
        Some(sizes)
    }

    /// On PostgreSQL, how many INSERT statements into user tables are kept prepared on the
    /// connections the pool may hold, all held at once; `None` on SQLite.
    pub async fn postgres_prepared_inserts(&self) -> Option<i64> {
        let daicho::StoreHandle::Postgres(s) = &self.running.store else { return None };
        let pool = s.pool_for_tests();
        let mut held = Vec::new();
        for _ in 0..pool.options().get_max_connections() {
            held.push(pool.acquire().await.unwrap());
        }
        let mut n = 0i64;
        for c in &mut held {
            let sql = "SELECT COUNT(*) FROM pg_prepared_statements WHERE statement LIKE 'INSERT INTO t\\_%'";
            n += sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut **c).await.unwrap();
        }
        Some(n)
    }

    /// How many connections the store keeps warm for the next read.
    pub fn warm_connections(&self) -> usize {
        match &self.running.store {
            daicho::StoreHandle::Sqlite(s) => s.warm_connections_for_tests(),
            daicho::StoreHandle::Postgres(s) => s.warm_connections_for_tests(),
        }
    }

    /// The administrator `login` of tenant `code` as the permission engine knows them (in a
    /// session of their own), for a test that calls a store method with their capability.
    pub async fn admin_principal(&self, code: &str, login: &str) -> daicho_domain::Principal {
        use daicho_domain::{LoginFlow, LoginId, Principal, Role, SessionId, TenantCode};
        let flow = LoginFlow::new();
        let tenant = self.store().tenant_by_code(&flow, &TenantCode::parse(code).unwrap()).await.unwrap().unwrap();
        let login_id = LoginId::parse(login).unwrap();
        let user = self.store().credential(&flow, tenant.id, &login_id).await.unwrap().unwrap().user;
        assert_eq!(user.role, Role::TenantAdmin, "an administrator's capabilities need no grants");
        Principal {
            tenant_id: tenant.id,
            user_id: user.id,
            login_id,
            role: user.role,
            session_id: SessionId::new_random(),
        }
    }

    /// What the administrator `login` of tenant `code` may view of table `table_id` (all of it),
    /// with the table's design, straight from the store: for a test that drives a store method
    /// step by step where no route can (an export's pages, one at a time).
    pub async fn admin_view(
        &self,
        code: &str,
        login: &str,
        table_id: &str,
    ) -> (daicho_domain::TableScope<daicho_domain::access::View>, daicho_domain::table::TableDef) {
        use daicho_domain::UseTables;
        let p = self.admin_principal(code, login).await;
        let table = table_id.parse().unwrap();
        let def = self.store().table(&p.authorize::<UseTables>().unwrap(), table).await.unwrap();
        (p.authorize_table(&p.table_access(table, Vec::new())).unwrap(), def)
    }

    /// How many of the node's import-upload places are free (`IMPORT_UPLOADS` when none is taken).
    pub fn free_upload_places(&self) -> usize {
        self.running.state.upload_permits.available_permits()
    }

    /// The tenant design version at which this server holds the grants of user `user_id` (as
    /// the API writes it), if it holds them.
    pub fn cached_grants_version(&self, user_id: &str) -> Option<i64> {
        self.running.state.designs.grants_version(user_id.parse().ok()?)
    }

    /// On PostgreSQL, the planner's estimate of the rows of user table `table_id`
    /// (`pg_class.reltuples`; -1 before it was first analysed); `None` on SQLite.
    pub async fn postgres_row_estimate(&self, table_id: &str) -> Option<i64> {
        let daicho::StoreHandle::Postgres(s) = &self.running.store else { return None };
        let rel = format!("t_{}", table_id.replace('-', ""));
        let rows: f32 = sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE relname = $1")
            .bind(rel)
            .fetch_one(s.pool_for_tests())
            .await
            .unwrap();
        Some(rows as i64)
    }

    /// Begins a change of design of user table `table_id` as a change of type would make it
    /// (SQLite: the write lock; PostgreSQL: the table's SHARE ROW EXCLUSIVE lock) and, inside
    /// it, uncommitted, turns every single-line text field multi-line and every multi-line one
    /// single-line (both keep text, so the stored values stay valid): writes of records wait for it, and requests meanwhile still
    /// read the old design. `commit` ends it.
    pub async fn hold_design_change(&self, table_id: &str) -> HeldChange {
        let bump = "UPDATE user_fields SET kind = CASE kind WHEN '{\"type\":\"text\"}' \
                    THEN '{\"type\":\"multiline\"}' ELSE '{\"type\":\"text\"}' END \
                    WHERE table_id = {p} AND kind IN ('{\"type\":\"text\"}', '{\"type\":\"multiline\"}')";
        match &self.running.store {
            daicho::StoreHandle::Sqlite(s) => {
                let mut tx = s.pool_for_tests().begin_with("BEGIN IMMEDIATE").await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(bump.replace("{p}", "?")))
                    .bind(table_id)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                HeldChange::Sqlite(tx)
            }
            daicho::StoreHandle::Postgres(s) => {
                let mut tx = s.pool_for_tests().begin().await.unwrap();
                let lock = format!("LOCK TABLE t_{} IN SHARE ROW EXCLUSIVE MODE", table_id.replace('-', ""));
                sqlx::query(sqlx::AssertSqlSafe(lock)).execute(&mut *tx).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(bump.replace("{p}", "$1")))
                    .bind(table_id)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                HeldChange::Postgres(tx)
            }
        }
    }

    /// Waits (10 s at most) until `n` writers wait behind a change held by
    /// [`TestApp::hold_design_change`] or [`TestApp::hold_record_change`]: on SQLite, for the
    /// database's write lock (an import for its turn too); on PostgreSQL, backends of this
    /// test's database waiting for a lock (a table's or a row's). So a test commits the held
    /// change only once the requests have read what they read before they write, without a
    /// sleep.
    pub async fn wait_for_waiting_writers(&self, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let waiting = match &self.running.store {
                daicho::StoreHandle::Sqlite(s) => s.writers_waiting_for_tests(),
                daicho::StoreHandle::Postgres(s) => {
                    let count: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM pg_stat_activity \
                         WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    )
                    .fetch_one(s.pool_for_tests())
                    .await
                    .unwrap();
                    usize::try_from(count).unwrap_or(0)
                }
            };
            if waiting >= n {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{waiting} writers waiting, not {n}");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Runs `statements` (test SQL, for the backend in use) in a transaction held open until
    /// committed, as a design change of another node would be: on SQLite with the write lock
    /// (`BEGIN IMMEDIATE`); on PostgreSQL a change of the catalogue locks the tenant's row
    /// through its trigger, as every design change does.
    pub async fn hold_sql(&self, statements: &[String]) -> HeldChange {
        match &self.running.store {
            daicho::StoreHandle::Sqlite(s) => {
                let mut tx = s.pool_for_tests().begin_with("BEGIN IMMEDIATE").await.unwrap();
                for sql in statements {
                    sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(&mut *tx).await.unwrap();
                }
                HeldChange::Sqlite(tx)
            }
            daicho::StoreHandle::Postgres(s) => {
                let mut tx = s.pool_for_tests().begin().await.unwrap();
                for sql in statements {
                    sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(&mut *tx).await.unwrap();
                }
                HeldChange::Postgres(tx)
            }
        }
    }

    /// Another writer's change of record `id` (text field `field_id` set to `text`, version
    /// bumped), its transaction held open until committed: on PostgreSQL the row stays locked,
    /// on SQLite the database's write lock is held (`BEGIN IMMEDIATE`).
    pub async fn hold_record_change(&self, table_id: &str, field_id: &str, id: i64, text: &str) -> HeldChange {
        let sql = format!(
            "UPDATE t_{} SET f_{} = {{p1}}, version = version + 1 WHERE id = {{p2}}",
            table_id.replace('-', ""),
            field_id.replace('-', "")
        );
        match &self.running.store {
            daicho::StoreHandle::Sqlite(s) => {
                let mut tx = s.pool_for_tests().begin_with("BEGIN IMMEDIATE").await.unwrap();
                let sql = sql.replace("{p1}", "?").replace("{p2}", "?");
                let n = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(text).bind(id).execute(&mut *tx).await.unwrap();
                assert_eq!(n.rows_affected(), 1);
                HeldChange::Sqlite(tx)
            }
            daicho::StoreHandle::Postgres(s) => {
                let mut tx = s.pool_for_tests().begin().await.unwrap();
                let sql = sql.replace("{p1}", "$1").replace("{p2}", "$2");
                let n = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(text).bind(id).execute(&mut *tx).await.unwrap();
                assert_eq!(n.rows_affected(), 1);
                HeldChange::Postgres(tx)
            }
        }
    }

    /// On SQLite, the settings stored in the keyword index's config table of user table
    /// `table_id` (FTS5's `automerge`, `hashsize`, …), by name; `None` on PostgreSQL.
    pub async fn sqlite_fts_config(&self, table_id: &str) -> Option<Vec<(String, i64)>> {
        let daicho::StoreHandle::Sqlite(s) = &self.running.store else { return None };
        let sql =
            format!("SELECT k, v FROM t_{}_fts_config WHERE k <> 'version' ORDER BY k", table_id.replace('-', ""));
        Some(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(s.pool_for_tests()).await.unwrap())
    }

    /// Makes data as an older version left it: runs `sql` (one statement, no parameters, the
    /// same text for both stores), then the store's upgrade of existing user tables again
    /// (SQLite's start-up step; PostgreSQL's migrations 15 and 16, run again by hand).
    pub async fn upgrade_after(&self, sql: &str) {
        match &self.running.store {
            daicho::StoreHandle::Sqlite(s) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(s.pool_for_tests()).await.unwrap();
                s.migrate().await.unwrap();
            }
            daicho::StoreHandle::Postgres(s) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(s.pool_for_tests()).await.unwrap();
                let upgrade = include_str!("../../store-postgres/migrations/0015_checkbox_multi_choice.sql");
                sqlx::raw_sql(upgrade).execute(s.pool_for_tests()).await.unwrap();
                let upgrade = include_str!("../../store-postgres/migrations/0016_system_column_indexes.sql");
                sqlx::raw_sql(upgrade).execute(s.pool_for_tests()).await.unwrap();
            }
        }
    }

    /// The names of the indexes of user table `table_id`'s SQL table, sorted.
    pub async fn user_table_indexes(&self, table_id: &str) -> Vec<String> {
        let t = format!("t_{}", table_id.replace('-', ""));
        let mut names: Vec<String> = match &self.running.store {
            daicho::StoreHandle::Sqlite(s) => sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
            )
            .bind(t)
            .fetch_all(s.pool_for_tests())
            .await
            .unwrap(),
            daicho::StoreHandle::Postgres(s) => sqlx::query_scalar(
                "SELECT indexname::text FROM pg_indexes WHERE tablename = $1 AND indexname NOT LIKE '%_pkey'",
            )
            .bind(t)
            .fetch_all(s.pool_for_tests())
            .await
            .unwrap(),
        };
        names.sort();
        names
    }

    /// On PostgreSQL, runs `sql` (several statements allowed, no parameters) on the store's
    /// database, for tests of migrations; `None` on SQLite.
    pub async fn postgres_execute(&self, sql: &str) -> Option<()> {
        let daicho::StoreHandle::Postgres(s) = &self.running.store else { return None };
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(s.pool_for_tests()).await.unwrap();
        Some(())
    }

    /// On PostgreSQL, the keyword text of every record of user table `table_id`, by id.
    pub async fn postgres_search_text(&self, table_id: &str) -> Option<Vec<String>> {
        let daicho::StoreHandle::Postgres(s) = &self.running.store else { return None };
        let sql = format!("SELECT search_text FROM t_{} ORDER BY id", table_id.replace('-', ""));
        Some(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(s.pool_for_tests()).await.unwrap())
    }

    /// A client that trusts only this server's certificate, keeps cookies, and does not follow
    /// redirects (tests assert them).
    pub fn client(&self) -> Client {
        Client::builder()
            .tls_certs_only([Certificate::from_pem(&self.cert_pem).unwrap()])
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates a tenant with an admin whose password is known and need not be changed.
    pub async fn tenant(&self, code: &str) -> (String, String) {
        let spec = operator::AdminSpec { login_id: "admin", display_name: "Admin", email: "admin@example.jp" };
        operator::create_tenant(self.store(), &self.hasher, self.clock.now(), code, &format!("{code} Inc."), spec)
            .await
            .unwrap();
        let pw =
            operator::reset_password(self.store(), &self.hasher, self.clock.now(), code, "admin", false).await.unwrap();
        ("admin".into(), pw)
    }

    /// Adds a member (or admin) with a known password that need not be changed.
    pub async fn user(&self, tenant: &str, login: &str, role: &str) -> String {
        operator::create_user(
            self.store(),
            &self.hasher,
            self.clock.now(),
            tenant,
            login,
            login,
            &format!("{login}@example.jp"),
            role,
        )
        .await
        .unwrap();
        operator::reset_password(self.store(), &self.hasher, self.clock.now(), tenant, login, false).await.unwrap()
    }

    /// Signs in through the JSON API and reads the CSRF token.
    pub async fn login(&self, tenant: &str, login: &str, password: &str) -> Persona {
        let client = self.client();
        let r = client
            .post(self.url("/api/v1/session"))
            .json(&json!({"tenant": tenant, "login_id": login, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "login of {login}@{tenant} failed: {}", r.text().await.unwrap());
        let me: Value = client.get(self.url("/api/v1/me")).send().await.unwrap().json().await.unwrap();
        Persona {
            client,
            csrf: me["csrf_token"].as_str().unwrap().to_owned(),
            tenant: tenant.into(),
            login: login.into(),
            password: password.into(),
            base: self.base.clone(),
        }
    }

    pub fn anonymous(&self) -> Persona {
        Persona {
            client: self.client(),
            csrf: String::new(),
            tenant: String::new(),
            login: String::new(),
            password: String::new(),
            base: self.base.clone(),
        }
    }

    /// The standard cast: tenant A with an admin and a member, tenant B with an admin.
    pub async fn cast(&self) -> Cast {
        let (_, a_pw) = self.tenant("acme").await;
        let m_pw = self.user("acme", "member1", "member").await;
        let (_, b_pw) = self.tenant("other").await;
        Cast {
            admin: self.login("acme", "admin", &a_pw).await,
            member: self.login("acme", "member1", &m_pw).await,
            other_admin: self.login("other", "admin", &b_pw).await,
        }
    }
}

pub struct Cast {
    pub admin: Persona,
    pub member: Persona,
    pub other_admin: Persona,
}

impl Persona {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }
    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let r = self.get(path).await;
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }
    /// A form post carrying this session's CSRF token.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut f: Vec<(&str, &str)> = fields.to_vec();
        f.push(("csrf", &self.csrf));
        self.client.post(self.url(path)).form(&f).send().await.unwrap()
    }
    /// A JSON request carrying this session's CSRF token.
    pub async fn send_json(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .client
            .request(method, self.url(path))
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }
    pub async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send_json(reqwest::Method::POST, path, body).await
    }
}

/// The PostgreSQL server the suite runs against, when `DAICHO_TEST_POSTGRES_URL` names one
/// (scripts/test starts a throwaway cluster and sets it); otherwise the suite uses SQLite.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("DAICHO_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty())
}

/// Creates an empty database for one test and returns its URL.
pub async fn fresh_postgres_database(admin_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("daicho_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url).await.expect("cannot reach the test PostgreSQL server");
    // The name is generated here from hex digits: no user input reaches this statement.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
    let _ = conn.close().await;
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let (server, _) = base.rsplit_once('/').unwrap();
    format!("{server}/{name}{query}")
}

/// A change of design held open by [`TestApp::hold_design_change`].
pub enum HeldChange {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl HeldChange {
    pub async fn commit(self) {
        match self {
            HeldChange::Sqlite(tx) => tx.commit().await.unwrap(),
            HeldChange::Postgres(tx) => tx.commit().await.unwrap(),
        }
    }
}

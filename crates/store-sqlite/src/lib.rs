//! The embedded store: one SQLite file in WAL mode with foreign keys and a busy timeout. All of
//! Daicho's SQL for SQLite lives in this crate; statements are `&'static str` (sqlx 0.9 refuses
//! anything else without an explicit assertion) and every value is a bind parameter.
//! Write transactions start with BEGIN IMMEDIATE so that concurrent writers queue on the busy
//! timeout instead of failing on a lock upgrade.

mod checkpoint;
mod rows;

pub use checkpoint::Checkpoint;

use std::borrow::Cow;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_stream::StreamExt as _;

use async_trait::async_trait;
use daicho_domain::access::{Create, Delete, Design, Edit, Group, Import, Right, TableGrant, View};
use daicho_domain::audit::{ChainReport, ChainVerifier, GENESIS_HASH, chain_hash, unix_ms};
use daicho_domain::table::{Cell, FieldDef, FilterOp, Name, RecordQuery, Storage, TableDef, search_text};
use daicho_domain::user::UserProfile;
use daicho_domain::view::SavedView;
use daicho_domain::{
    AuditEvent, AuditFilter, FieldErrors, FieldId, GroupId, LanguagePref, LoginFlow, LoginId, ManageDesign,
    ManageGroups, ManagePolicy, ManageUsers, NewAuditEvent, OperatorScope, OwnAccount, ReadAudit, Scope,
    SecurityPolicy, SessionId, SystemScope, TableId, TableScope, Tenant, TenantCode, TenantId, TokenId, UseTables,
    User, UserId, UserStatus, ViewId,
};
use daicho_store::guard::{self, RowCond};
use daicho_store::warm::{Lease, Warm};
use daicho_store::{
    ApiToken, BaseDump, CatalogueDump, Credential, GrantChange, ImportPart, ImportParts, ImportWrite, JobRow,
    LoginFailure, NewApiToken, NewSession, NewTenant, NewUser, PasswordHistoryRow, PoolSettings, Record, RecordEvent,
    RecordHistory, RecordHistoryRow, RetypeReport, Session, SessionContext, SessionRow, Store, StoreError, StoreResult,
    TABLES, TenantRow, TokenContext, TrashItem, UserRow,
};
use daicho_store::{ListPart, copy, ut};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{
    AssertSqlSafe, ConnectOptions, Connection, QueryBuilder, Row, SqlSafeStr, Sqlite, SqliteConnection, SqlitePool,
    Transaction,
};
use time::OffsetDateTime;

use crate::checkpoint::Checkpointer;
use crate::rows::{Cols, audit_from_row, session_from_row, tenant_from_row, user_from_row};

fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            Cow::Borrowed("foundation"),
            MigrationType::Simple,
            include_str!("../migrations/0001_foundation.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            Cow::Borrowed("jobs"),
            MigrationType::Simple,
            include_str!("../migrations/0002_jobs.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            Cow::Borrowed("user tables"),
            MigrationType::Simple,
            include_str!("../migrations/0003_user_tables.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            4,
            Cow::Borrowed("groups"),
            MigrationType::Simple,
            include_str!("../migrations/0004_groups.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            5,
            Cow::Borrowed("api tokens"),
            MigrationType::Simple,
            include_str!("../migrations/0005_api_tokens.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            6,
            Cow::Borrowed("record history"),
            MigrationType::Simple,
            include_str!("../migrations/0006_record_history.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            7,
            Cow::Borrowed("saved views"),
            MigrationType::Simple,
            include_str!("../migrations/0007_saved_views.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            8,
            Cow::Borrowed("trash"),
            MigrationType::Simple,
            include_str!("../migrations/0008_trash.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            9,
            Cow::Borrowed("design version"),
            MigrationType::Simple,
            include_str!("../migrations/0009_design_version.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            10,
            Cow::Borrowed("access version"),
            MigrationType::Simple,
            include_str!("../migrations/0010_access_version.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            11,
            Cow::Borrowed("staged imports"),
            MigrationType::Simple,
            include_str!("../migrations/0011_staged_imports.sql").into_sql_str(),
            false,
        ),
    ])
}

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Recent "walk the sort index?" decisions (see `list_records`), so that a list asked for
    /// again within `PLAN_MEMO_FOR` does not count again. Only the query's plan depends on
    /// it, never its result: a stale entry can cost time, not correctness.
    plans: Arc<Mutex<HashMap<String, (Instant, bool)>>>,
    /// How the pool's connections are opened; an import opens one of its own (see
    /// `import_records`).
    options: SqliteConnectOptions,
    /// One import writes at a time on a node (SQLite has one writer): the next waits here, not
    /// on the database's lock with its timeout, and at most one import's page cache is held.
    import_turn: Arc<tokio::sync::Semaphore>,
    /// Connections kept warm between read statements (see `daicho_store::warm`).
    warm: Arc<Warm<PoolConnection<Sqlite>>>,
    /// The task that checkpoints the WAL off the request path (see `checkpoint`); it stops
    /// when the last clone of the store is dropped.
    checkpointer: Arc<Checkpointer>,
    /// Writers waiting for the database's write lock now (`write_tx`), for tests that make
    /// a request wait behind a transaction they hold.
    writers_waiting: Arc<std::sync::atomic::AtomicUsize>,
}

/// Counts one writer waiting while it lives (also when its wait is abandoned).
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a std::sync::atomic::AtomicUsize) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// How long a plan decision is reused; and how many are kept (the memo starts again when full).
const PLAN_MEMO_FOR: Duration = Duration::from_secs(30);
const PLAN_MEMO_MAX: usize = 512;

fn internal(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::RowNotFound => StoreError::NotFound,
        other => {
            if let Some(db) = other.as_database_error() {
                if db.is_unique_violation() {
                    let msg = db.message();
                    let field = if msg.contains("tenants.code") {
                        "code"
                    } else if msg.contains("users.login_id") || msg.contains("users.tenant_id") {
                        "login_id"
                    } else {
                        "id"
                    };
                    return StoreError::Conflict(FieldErrors::single(field, "taken"));
                }
                // SQLITE_BUSY after the busy timeout: the database is overloaded, not broken.
                if db.code().as_deref() == Some("5") {
                    return StoreError::Unavailable(db.message().to_owned());
                }
            }
            StoreError::Internal(other.to_string())
        }
    }
}

pub(crate) fn ms(t: OffsetDateTime) -> i64 {
    unix_ms(t)
}

fn chain_of(tenant: Option<TenantId>) -> String {
    tenant.map(|t| t.to_string()).unwrap_or_default()
}

impl SqliteStore {
    /// Deletes records in one transaction, all or none (see `Store::delete_records`); with
    /// `expected`, the one record must still be at that version (`Store::delete_record`).
    async fn delete_in(
        &self,
        scope: &TableScope<Delete>,
        table: &TableDef,
        ids: &[i64],
        expected: Option<i64>,
        since: Option<i64>,
        event: Option<NewAuditEvent>,
        each: Option<&RecordEvent<'_>>,
    ) -> StoreResult<u64> {
        guard::check_table(scope, table)?;
        let mut tx = self.write_tx().await?;
        // (A table trashed or redesigned since the request read it is refused, as for edits.)
        check_design(&mut tx, table).await?;
        // The records' events are recorded after every record is locked and deleted, as every
        // write does (rows first, the tenant's chain of events last: one lock order).
        let mut events = Vec::new();
        for &id in ids {
            let old = Self::check_covered(&mut tx, scope, table, id).await?;
            events.extend(guard::deleting(&old, expected, since, each)?);
            sqlx::query("DELETE FROM record_history WHERE table_id = ? AND record_id = ?")
                .bind(table.id.to_string())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
            let sql = format!("DELETE FROM {} WHERE id = {}", ut::table_ident(table.id), ph(1));
            let n = sqlx::query(AssertSqlSafe(sql)).bind(id).execute(&mut *tx).await.map_err(internal)?.rows_affected();
            Self::check_affected(n)?;
            let fts = format!("DELETE FROM {}_fts WHERE rowid = ?1", ut::table_ident(table.id));
            sqlx::query(AssertSqlSafe(fts)).bind(id).execute(&mut *tx).await.map_err(internal)?;
        }
        for ev in events {
            Self::append_in(&mut tx, ev).await?;
        }
        if let Some(event) = event {
            Self::append_in(&mut tx, event).await?;
        }
        tx.commit().await.map_err(internal)?;
        Ok(ids.len() as u64)
    }

    /// Opens (creating if missing) the database file and applies pending migrations.
    pub async fn open(url: &str, settings: PoolSettings) -> StoreResult<Self> {
        let recheck = settings.recheck_idle_after;
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("bad database url: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("wal_autocheckpoint", checkpoint::SAFETY_PAGES.to_string())
            .pragma("journal_size_limit", checkpoint::JOURNAL_LIMIT.to_string());
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= recheck {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .acquire_timeout(Duration::from_secs(15))
            .connect_with(opts.clone())
            .await
            .map_err(internal)?;
        let store = Self {
            pool: pool.clone(),
            plans: Arc::default(),
            options: opts.clone(),
            import_turn: Arc::new(tokio::sync::Semaphore::new(1)),
            warm: Arc::new(Warm::new(settings.max_connections.max(1), recheck)),
            checkpointer: Arc::new(Checkpointer::start(pool)),
            writers_waiting: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        migrator().run(&self.pool).await.map_err(|e| StoreError::Internal(format!("migration failed: {e}")))?;
        self.untick_empty_checkboxes().await?;
        self.index_system_columns().await
    }

    /// Tables made before their system columns were indexed get those indexes (see
    /// `ut::system_indexes`). SQLite's migrations cannot name tables from the catalogue, so
    /// this runs at every start: once the indexes exist, each statement does nothing. (The
    /// first start after the upgrade builds them: about a second for each index on a million
    /// records.)
    async fn index_system_columns(&self) -> StoreResult<()> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM user_tables").fetch_all(&self.pool).await.map_err(internal)?;
        if ids.is_empty() {
            return Ok(());
        }
        let mut wanted = Vec::new();
        for id in ids {
            let id: TableId = id.parse().map_err(|_| StoreError::Internal("bad catalogue id".into()))?;
            let last = ut::INDEXED_SYSTEM_COLUMNS[ut::INDEXED_SYSTEM_COLUMNS.len() - 1];
            let present: i64 =
                sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?")
                    .bind(ut::system_index_ident(id, last))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(internal)?;
            if present == 0 {
                wanted.push(id);
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for id in wanted {
            let exists: i64 =
                sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?")
                    .bind(ut::table_ident(id))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(internal)?;
            if exists == 0 {
                continue;
            }
            tracing::info!(table = %id, "indexing the table's system columns (once, after an upgrade)");
            for ddl in ut::system_indexes(id) {
                sqlx::query(AssertSqlSafe(ddl)).execute(&mut *tx).await.map_err(internal)?;
            }
        }
        tx.commit().await.map_err(internal)
    }

    /// A checkbox is never empty: records made before the field was added to their table (or,
    /// before that rule, by someone who could not set it) read as unticked. SQLite cannot
    /// change a column's default, and its migrations cannot name columns from the catalogue,
    /// so this runs at every start; each statement finds nothing through the field's index once
    /// done.
    async fn untick_empty_checkboxes(&self) -> StoreResult<()> {
        let rows = sqlx::query(
            "SELECT f.id AS field_id, f.table_id AS table_id FROM user_fields f \
             WHERE json_extract(f.kind, '$.type') = 'checkbox'",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for r in &rows {
            let bad = |_| StoreError::Internal("bad catalogue id".into());
            let field: FieldId = r.try_get::<String, _>("field_id").map_err(internal)?.parse().map_err(bad)?;
            let table: TableId = r.try_get::<String, _>("table_id").map_err(internal)?.parse().map_err(bad)?;
            let (t, c) = (ut::table_ident(table), ut::field_ident(field));
            sqlx::query(AssertSqlSafe(format!("UPDATE {t} SET {c} = 0 WHERE {c} IS NULL")))
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
        }
        tx.commit().await.map_err(internal)
    }

    /// Writes a consistent copy of the whole database to `path` (SQLite's VACUUM INTO: a
    /// transactionally consistent snapshot, taken while the service keeps running).
    pub async fn backup_into(&self, path: &str) -> StoreResult<()> {
        sqlx::query("VACUUM INTO ?").bind(path).execute(&self.pool).await.map_err(internal)?;
        Ok(())
    }

    /// The pool, for tests that play the attacker with direct database access. The warm
    /// connections go back to it first, so that a test may hold every connection.
    pub fn pool_for_tests(&self) -> &SqlitePool {
        self.warm.release();
        &self.pool
    }

    /// Runs one checkpoint now, as the store's checkpoint task does every second (for tests).
    pub async fn checkpoint_for_tests(&self) -> StoreResult<Checkpoint> {
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        checkpoint::run(&mut conn).await.map_err(internal)
    }

    /// How many of the checkpoint task's passes left the WAL fully copied (for tests).
    pub fn checkpoint_passes_for_tests(&self) -> u64 {
        self.checkpointer.passes()
    }

    /// How many writers wait for the database's write lock now (for tests).
    pub fn writers_waiting_for_tests(&self) -> usize {
        self.writers_waiting.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many connections are kept warm now (for tests).
    pub fn warm_connections_for_tests(&self) -> usize {
        self.warm.len()
    }

    /// A connection for one read statement: a warm one if there is one, else from the pool.
    async fn reader(&self) -> StoreResult<Lease<'_, PoolConnection<Sqlite>>> {
        self.warm.lease_or(async { self.pool.acquire().await.map_err(internal) }).await
    }

    /// One scoped write that must touch a row (else NotFound, as for another tenant's id),
    /// recorded by `event` in the same transaction.
    /// One catalogue change of a table's design with its event, in one transaction; NotFound
    /// when nothing matched, Conflict when a name is taken; returns the design after it.
    async fn write_design(
        &self,
        q: PlainQ<'_>,
        scope: &TableScope<Design>,
        event: NewAuditEvent,
    ) -> StoreResult<TableDef> {
        let mut tx = self.write_tx().await?;
        let n = q.execute(&mut *tx).await.map_err(catalogue_error)?.rows_affected();
        Self::check_affected(n)?;
        Self::append_in(&mut tx, event).await?;
        let def = load_def(&mut tx, scope.tenant_id(), scope.table(), false).await?;
        tx.commit().await.map_err(internal)?;
        Ok(def)
    }

    async fn write_one(&self, q: PlainQ<'_>, event: NewAuditEvent) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let n = q.execute(&mut *tx).await.map_err(internal)?.rows_affected();
        Self::check_affected(n)?;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)
    }

    /// Inside a write: the record must exist (NotFound) and the scope must cover it (Forbidden).
    async fn check_covered<R: Right>(
        tx: &mut Transaction<'_, Sqlite>,
        scope: &TableScope<R>,
        table: &TableDef,
        id: i64,
    ) -> StoreResult<Record> {
        let sql = format!("SELECT {} FROM {} WHERE id = {}", record_columns(table), ut::table_ident(table.id), ph(1));
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(internal)?
            .ok_or(StoreError::NotFound)?;
        let r = record_from_row(&row, table)?;
        if guard::covers(scope, &r) { Ok(r) } else { Err(StoreError::Forbidden) }
    }

    /// Overwrites the given cells of a record the scope covers (no version check: imports and
    /// bulk edits are deliberate; a bulk edit's `since`, see `guard::check_unchanged_for_bulk`),
    /// with its search text and history, inside the caller's transaction.
    #[allow(clippy::too_many_arguments)]
    async fn overwrite_in<R: Right>(
        tx: &mut Transaction<'_, Sqlite>,
        scope: &TableScope<R>,
        table: &TableDef,
        id: i64,
        cells: &[(FieldId, Cell)],
        at: OffsetDateTime,
        who: &str,
        event: &NewAuditEvent,
        since: Option<i64>,
    ) -> StoreResult<bool> {
        let old = Self::check_covered(tx, scope, table, id).await?;
        guard::check_unchanged_for_bulk(&old, since)?;
        let cells = &guard::changed_cells(&old, cells)[..];
        if cells.is_empty() {
            return Ok(false);
        }
        guard::check_writes_on(scope, &old, cells)?;
        let mut sets = vec![format!("version = version + 1, updated_at = {}, updated_by = {}", ph(1), ph(2))];
        for (i, (f, _)) in cells.iter().enumerate() {
            sets.push(format!("{} = {}", ut::field_ident(*f), ph(i + 3)));
        }
        let sql =
            format!("UPDATE {} SET {} WHERE id = {}", ut::table_ident(table.id), sets.join(", "), ph(cells.len() + 3));
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(ms(at)).bind(who);
        for (f, c) in cells {
            q = bind_cell_q(q, c, storage_of(table, *f));
        }
        let n = q.bind(id).execute(&mut **tx).await.map_err(|e| record_error(e, table))?.rows_affected();
        Self::check_affected(n)?;
        let now = read_record_tx(tx, table, id).await?;
        Self::history_in(tx, table, &old, &now, event).await?;
        let sql = format!("UPDATE {}_fts SET body = ?1 WHERE rowid = ?2", ut::table_ident(table.id));
        sqlx::query(AssertSqlSafe(sql))
            .bind(search_text(table, &now.cells))
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(internal)?;
        Ok(true)
    }

    /// Records a change to a record (when anything changed) inside the caller's transaction.
    async fn history_in(
        tx: &mut Transaction<'_, Sqlite>,
        table: &TableDef,
        old: &Record,
        now: &Record,
        event: &NewAuditEvent,
    ) -> StoreResult<()> {
        let changes = guard::changes(old, now);
        if changes.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO record_history (table_id, record_id, version, at, actor_id, actor_login, changes) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(table.id.to_string())
        .bind(now.id)
        .bind(now.version)
        .bind(ms(event.at))
        .bind(event.actor_id.map(|a| a.to_string()))
        .bind(&event.actor_login)
        .bind(guard::changes_json(&changes))
        .execute(&mut **tx)
        .await
        .map_err(internal)?;
        Ok(())
    }

    async fn grants_for(&self, tenant: TenantId, user: UserId) -> StoreResult<Vec<TableGrant>> {
        let mut r = self.reader().await?;
        let rows = sqlx::query(
            "SELECT g.group_id, g.table_id, g.rights, g.rows, g.fields FROM table_grants g \
             JOIN group_members m ON m.group_id = g.group_id JOIN user_groups ug ON ug.id = g.group_id \
             WHERE m.user_id = ? AND ug.tenant_id = ?",
        )
        .bind(user.to_string())
        .bind(tenant.to_string())
        .fetch_all(&mut **r)
        .await
        .map_err(internal)?;
        r.done();
        rows.iter().map(crate::rows::grant_from_row).collect()
    }

    /// The group must belong to the scope's tenant.
    async fn check_group(tx: &mut Transaction<'_, Sqlite>, tenant: TenantId, id: GroupId) -> StoreResult<()> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM user_groups WHERE id = ? AND tenant_id = ?")
            .bind(id.to_string())
            .bind(tenant.to_string())
            .fetch_one(&mut **tx)
            .await
            .map_err(internal)?;
        Self::check_affected(n as u64)
    }

    async fn write_tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        let _waiting = Waiting::new(&self.writers_waiting);
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(internal)
    }

    async fn append_in(tx: &mut Transaction<'_, Sqlite>, ev: NewAuditEvent) -> StoreResult<()> {
        let ev = ev.bounded();
        let chain = chain_of(ev.tenant_id);
        let prev: Option<String> =
            sqlx::query_scalar("SELECT hash FROM audit_events WHERE chain = ? ORDER BY seq DESC LIMIT 1")
                .bind(&chain)
                .fetch_optional(&mut **tx)
                .await
                .map_err(internal)?;
        let prev = prev.unwrap_or_else(|| GENESIS_HASH.to_owned());
        let at = ms(ev.at);
        let hash = chain_hash(
            &prev,
            at,
            ev.tenant_id,
            ev.actor_id,
            &ev.actor_login,
            &ev.ip,
            &ev.user_agent,
            ev.action.as_str(),
            &ev.target,
            ev.outcome.as_str(),
            &ev.details,
        );
        sqlx::query(
            "INSERT INTO audit_events (chain, at, tenant_id, actor_id, actor_login, ip, user_agent, action, target, \
             outcome, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&chain)
        .bind(at)
        .bind(ev.tenant_id.map(|t| t.to_string()))
        .bind(ev.actor_id.map(|a| a.to_string()))
        .bind(&ev.actor_login)
        .bind(&ev.ip)
        .bind(&ev.user_agent)
        .bind(ev.action.as_str())
        .bind(&ev.target)
        .bind(ev.outcome.as_str())
        .bind(&ev.details)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut **tx)
        .await
        .map_err(internal)?;
        Ok(())
    }

    async fn insert_user(tx: &mut Transaction<'_, Sqlite>, tenant: TenantId, u: &NewUser) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (id, tenant_id, login_id, display_name, email, role, status, language, password_hash, \
             must_change_password, password_changed_at, failed_logins, locked_until, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, 0, NULL, ?, ?)",
        )
        .bind(u.id.to_string())
        .bind(tenant.to_string())
        .bind(u.login_id.as_str())
        .bind(u.profile.display_name.as_str())
        .bind(u.profile.email.as_str())
        .bind(u.profile.role.as_str())
        .bind(u.profile.language.as_str())
        .bind(&u.password_hash)
        .bind(u.must_change_password)
        .bind(ms(u.at))
        .bind(ms(u.at))
        .bind(ms(u.at))
        .execute(&mut **tx)
        .await
        .map_err(internal)?;
        Ok(())
    }

    async fn user_in(&self, tenant: TenantId, id: UserId) -> StoreResult<User> {
        let sql = const_format_user_by_id();
        let row = sqlx::query(sql)
            .bind(id.to_string())
            .bind(tenant.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?
            .ok_or(StoreError::NotFound)?;
        user_from_row(&row)
    }

    /// Ends the user's sessions and revokes their API tokens (disabled, role changed, password
    /// reset): enabling the user again later brings none of them back.
    async fn end_user_sessions(
        tx: &mut Transaction<'_, Sqlite>,
        tenant: TenantId,
        id: UserId,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE user_id = ? AND tenant_id = ?")
            .bind(id.to_string())
            .bind(tenant.to_string())
            .execute(&mut **tx)
            .await
            .map_err(internal)?;
        Self::revoke_tokens_in(tx, &tenant.to_string(), &id.to_string(), at).await
    }

    /// Revokes every API token of a user still in use, at `at`, inside the caller's transaction.
    async fn revoke_tokens_in(
        tx: &mut Transaction<'_, Sqlite>,
        tenant: &str,
        user: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND tenant_id = ? AND revoked_at IS NULL")
            .bind(ms(at))
            .bind(user)
            .bind(tenant)
            .execute(&mut **tx)
            .await
            .map_err(internal)?;
        Ok(())
    }

    /// Fails with NotFound unless the user exists in the scope's tenant; used before changes so
    /// that another tenant's user id behaves exactly like an unknown one.
    fn check_affected(n: u64) -> StoreResult<()> {
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn verify_chain(&self, chain: &str) -> StoreResult<ChainReport> {
        let mut v = ChainVerifier::default();
        let mut after: i64 = 0;
        loop {
            let rows = sqlx::query(
                "SELECT seq, at, tenant_id, actor_id, actor_login, ip, user_agent, action, target, outcome, details, \
                 prev_hash, hash FROM audit_events WHERE chain = ? AND seq > ? ORDER BY seq LIMIT 1000",
            )
            .bind(chain)
            .bind(after)
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let e = audit_from_row(r)?;
                after = e.seq;
                v.feed(&e);
            }
        }
        Ok(v.finish())
    }
}

// A `&'static str` built from the shared column list: sqlx 0.9 accepts only static SQL.
fn const_format_user_by_id() -> &'static str {
    "SELECT u.id, u.tenant_id, u.login_id, u.display_name, u.email, u.role, u.status, u.language, \
     u.must_change_password, u.password_changed_at, u.failed_logins, u.locked_until, u.created_at, u.updated_at \
     FROM users u WHERE u.id = ? AND u.tenant_id = ?"
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(internal)?;
        Ok(())
    }

    async fn create_tenant(
        &self,
        _op: &OperatorScope,
        t: NewTenant,
        admin: NewUser,
        events: Vec<NewAuditEvent>,
    ) -> StoreResult<(Tenant, User)> {
        let policy = serde_json_string(&t.policy)?;
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO tenants (id, code, name, policy, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(t.id.to_string())
            .bind(t.code.as_str())
            .bind(t.name.as_str())
            .bind(&policy)
            .bind(ms(t.at))
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        Self::insert_user(&mut tx, t.id, &admin).await?;
        for ev in events {
            Self::append_in(&mut tx, ev).await?;
        }
        tx.commit().await.map_err(internal)?;
        let tenant = Tenant { id: t.id, code: t.code, name: t.name, policy: t.policy, created_at: t.at };
        let user = self.user_in(t.id, admin.id).await?;
        Ok((tenant, user))
    }

    async fn operator_create_user(
        &self,
        _op: &OperatorScope,
        tenant: TenantId,
        user: NewUser,
        event: NewAuditEvent,
    ) -> StoreResult<User> {
        let mut tx = self.write_tx().await?;
        Self::insert_user(&mut tx, tenant, &user).await?;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)?;
        self.user_in(tenant, user.id).await
    }

    async fn operator_set_password(
        &self,
        _op: &OperatorScope,
        tenant: TenantId,
        user: UserId,
        hash: String,
        must_change: bool,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE users SET password_hash = ?, must_change_password = ?, password_changed_at = ?, failed_logins = 0, \
             locked_until = NULL, updated_at = ? WHERE id = ? AND tenant_id = ?",
        )
        .bind(&hash)
        .bind(must_change)
        .bind(ms(at))
        .bind(ms(at))
        .bind(user.to_string())
        .bind(tenant.to_string())
        .execute(&mut *tx)
        .await
        .map_err(internal)?
        .rows_affected();
        Self::check_affected(n)?;
        Self::end_user_sessions(&mut tx, tenant, user, at).await?;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)
    }

    async fn list_tenants(&self, _op: &OperatorScope) -> StoreResult<Vec<Tenant>> {
        let rows = sqlx::query("SELECT id, code, name, policy, created_at FROM tenants ORDER BY code")
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn verify_all_audit_chains(&self, _op: &OperatorScope) -> StoreResult<Vec<(Option<TenantId>, ChainReport)>> {
        let chains: Vec<String> = sqlx::query_scalar("SELECT DISTINCT chain FROM audit_events ORDER BY chain")
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
        let mut out = Vec::new();
        for c in chains {
            let tenant = if c.is_empty() { None } else { TenantId::from_str(&c).ok() };
            out.push((tenant, self.verify_chain(&c).await?));
        }
        Ok(out)
    }

    async fn create_table(
        &self,
        scope: &Scope<ManageDesign>,
        id: TableId,
        name: Name,
        description: String,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<TableDef> {
        let mut tx = self.write_tx().await?;
        count_tables(&mut tx, scope.tenant_id()).await?;
        sqlx::query("INSERT INTO user_tables (id, tenant_id, name, description, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(id.to_string())
            .bind(scope.tenant_id().to_string())
            .bind(name.as_str())
            .bind(&description)
            .bind(ms(at))
            .execute(&mut *tx)
            .await
            .map_err(catalogue_error)?;
        create_storage(&mut tx, id).await?;
        let def = load_def(&mut tx, scope.tenant_id(), id, false).await?;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)?;
        Ok(def)
    }

    async fn list_tables(&self, scope: &Scope<UseTables>) -> StoreResult<Vec<TableDef>> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM user_tables WHERE tenant_id = ? AND deleted_at IS NULL ORDER BY name")
                .bind(scope.tenant_id().to_string())
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
        let mut out = Vec::new();
        for id in ids {
            let id = id.parse::<TableId>().map_err(|_| StoreError::Internal("bad table id".into()))?;
            out.push(self.load_table(scope.tenant_id(), id).await?);
        }
        Ok(out)
    }

    async fn table(&self, scope: &Scope<UseTables>, id: TableId) -> StoreResult<TableDef> {
        self.load_table(scope.tenant_id(), id).await
    }

    async fn my_grants(&self, scope: &Scope<UseTables>) -> StoreResult<Vec<TableGrant>> {
        self.grants_for(scope.tenant_id(), scope.actor()).await
    }

    async fn directory(&self, scope: &Scope<UseTables>) -> StoreResult<Vec<daicho_store::Person>> {
        let sql = "SELECT id, login_id, display_name, status FROM users WHERE tenant_id = ? ORDER BY login_id";
        let rows =
            sqlx::query(sql).bind(scope.tenant_id().to_string()).fetch_all(&self.pool).await.map_err(internal)?;
        rows.iter().map(crate::rows::directory_from_row).collect()
    }

    async fn add_field(
        &self,
        scope: &TableScope<Design>,
        table: TableId,
        field: FieldDef,
        event: NewAuditEvent,
    ) -> StoreResult<TableDef> {
        let mut tx = self.write_tx().await?;
        // Inside the transaction: a table trashed a moment ago gets no field (404).
        let def = load_def(&mut tx, scope.tenant_id(), table, false).await?;
        guard::check_table(scope, &def)?;
        count_fields(&mut tx, table).await?;
        link_target_live(&mut tx, scope.tenant_id(), &field.kind).await?;
        let kind = serde_json::to_string(&field.kind).map_err(|e| StoreError::Internal(e.to_string()))?;
        let rules = serde_json::to_string(&field.rules).map_err(|e| StoreError::Internal(e.to_string()))?;
        sqlx::query(
            "INSERT INTO user_fields (id, table_id, position, name, kind, rules, created_at) VALUES (?1, ?2, \
             (SELECT COALESCE(MAX(position), -1) + 1 FROM user_fields WHERE table_id = ?2), ?3, ?4, ?5, ?6)",
        )
        .bind(field.id.to_string())
        .bind(table.to_string())
        .bind(field.name.as_str())
        .bind(&kind)
        .bind(&rules)
        .bind(ms(event.at))
        .execute(&mut *tx)
        .await
        .map_err(catalogue_error)?;
        add_column(&mut tx, table, &field).await?;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)?;
        self.load_table(scope.tenant_id(), table).await
    }

    async fn insert_record(
        &self,
        scope: &TableScope<Create>,
        table: &TableDef,
        cells: Vec<(FieldId, Cell)>,
        at: OffsetDateTime,
        mut event: NewAuditEvent,
    ) -> StoreResult<Record> {
        guard::check_table(scope, table)?;
        guard::check_writes(scope, &cells)?;
        let mut cells = cells;
        let defaults = guard::defaults(table);
        let given = guard::set_by_writer(&defaults, &cells);
        guard::fill_defaults(&defaults, &mut cells);
        guard::check_new_covered(scope, &given, &cells)?;
        let who = scope.actor().to_string();
        let mut tx = self.write_tx().await?;
        check_design(&mut tx, table).await?;
        let id = insert_in(&mut tx, table, &who, at, &cells).await?;
        event.target = format!("{} record:{id}", event.target);
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)?;
        let mut r = self.get_record_in(table, id).await?;
        guard::redact(scope, &mut r);
        Ok(r)
    }

    async fn get_record(&self, scope: &TableScope<View>, table: &TableDef, id: i64) -> StoreResult<Record> {
        guard::check_table(scope, table)?;
        let mut r = self.get_record_in(table, id).await?;
        if !guard::covers(scope, &r) {
            return Err(StoreError::NotFound);
        }
        guard::redact(scope, &mut r);
        Ok(r)
    }

    async fn update_record(
        &self,
        scope: &TableScope<Edit>,
        table: &TableDef,
        id: i64,
        expected_version: i64,
        cells: Vec<(FieldId, Cell)>,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<Record> {
        guard::check_table(scope, table)?;
        guard::check_writes(scope, &cells)?;
        let mut tx = self.write_tx().await?;
        check_design(&mut tx, table).await?;
        let old = Self::check_covered(&mut tx, scope, table, id).await?;
        // Nothing that changes the record, on the version the editor read: no new version
        // (anyone else holding the record would be refused as stale for nothing).
        let cells = guard::changed_cells(&old, &cells);
        if cells.is_empty() && old.version == expected_version {
            // Recorded as what it was: a save that changed nothing.
            let event = NewAuditEvent { details: guard::NO_CHANGE.to_owned(), ..event };
            Self::append_in(&mut tx, event).await?;
            tx.commit().await.map_err(internal)?;
            let mut r = old;
            guard::redact(scope, &mut r);
            return Ok(r);
        }
        guard::check_writes_on(scope, &old, &cells)?;
        let mut sets = vec![format!("version = version + 1, updated_at = {}, updated_by = {}", ph(1), ph(2))];
        for (i, (f, _)) in cells.iter().enumerate() {
            sets.push(format!("{} = {}", ut::field_ident(*f), ph(i + 3)));
        }
        let n = cells.len();
        let sql = format!(
            "UPDATE {} SET {} WHERE id = {} AND version = {}",
            ut::table_ident(table.id),
            sets.join(", "),
            ph(n + 3),
            ph(n + 4)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(ms(at)).bind(scope.actor().to_string());
        for (f, c) in &cells {
            q = bind_cell_q(q, c, storage_of(table, *f));
        }
        let done = q
            .bind(id)
            .bind(expected_version)
            .execute(&mut *tx)
            .await
            .map_err(|e| record_error(e, table))?
            .rows_affected();
        if done == 1 {
            let now = read_record_tx(&mut tx, table, id).await?;
            Self::history_in(&mut tx, table, &old, &now, &event).await?;
            let sql = format!("UPDATE {}_fts SET body = ?1 WHERE rowid = ?2", ut::table_ident(table.id));
            sqlx::query(AssertSqlSafe(sql))
                .bind(search_text(table, &now.cells))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
        }
        if done == 0 {
            let exists: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT version FROM {} WHERE id = {}",
                ut::table_ident(table.id),
                ph(1)
            )))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(internal)?;
            return Err(match exists {
                None => StoreError::NotFound,
                Some(_) => StoreError::Conflict(FieldErrors::single("version", "stale")),
            });
        }
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)?;
        let mut r = self.get_record_in(table, id).await?;
        guard::redact(scope, &mut r);
        Ok(r)
    }

    async fn delete_record(
        &self,
        scope: &TableScope<Delete>,
        table: &TableDef,
        id: i64,
        expected_version: Option<i64>,
        event: &RecordEvent<'_>,
    ) -> StoreResult<()> {
        self.delete_in(scope, table, &[id], expected_version, None, None, Some(event)).await.map(|_| ())
    }

    async fn delete_records(
        &self,
        scope: &TableScope<Delete>,
        table: &TableDef,
        ids: &[i64],
        unchanged_since: Option<i64>,
        event: NewAuditEvent,
        each: Option<&RecordEvent<'_>>,
    ) -> StoreResult<u64> {
        self.delete_in(scope, table, ids, None, unchanged_since, Some(event), each).await
    }

    async fn update_records(
        &self,
        scope: &TableScope<Edit>,
        table: &TableDef,
        ids: &[i64],
        cells: Vec<(FieldId, Cell)>,
        at: OffsetDateTime,
        unchanged_since: Option<i64>,
        mut event: NewAuditEvent,
    ) -> StoreResult<u64> {
        guard::check_table(scope, table)?;
        guard::check_writes(scope, &cells)?;
        let who = scope.actor().to_string();
        let mut tx = self.write_tx().await?;
        check_design(&mut tx, table).await?;
        // (Counted as changed: a record that already held the values is left as it is.)
        let mut changed = 0u64;
        for &id in ids {
            if Self::overwrite_in(&mut tx, scope, table, id, &cells, at, &who, &event, unchanged_since).await? {
                changed += 1;
            }
        }
        // (At its head: the details may be cut at the history's limit.)
        event.details = format!("{changed} changed: {}", event.details);
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)?;
        Ok(changed)
    }

    async fn import_records(
        &self,
        scope: &TableScope<Import>,
        table: &TableDef,
        mut parts: ImportParts,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<(u64, u64)> {
        guard::check_table(scope, table)?;
        let Some(first) = parts.recv().await else { return Err(daicho_store::import_abandoned()) };
        // (Waiting for the database's write lock until its transaction begins, its turn first.)
        let waiting = Waiting::new(&self.writers_waiting);
        let _turn = self.import_turn.acquire().await.map_err(|e| StoreError::Internal(e.to_string()))?;
        // A connection of its own with a large page cache: an import dirties pages all over
        // every index, and with the default 2 MB SQLite spills them to the WAL and reads them
        // back (at a million rows, 100,000 rows took 3.7 s in the database with 2 MB, 2.1 s
        // with 64 MB). Closed afterwards, so that its thread, and the memory its pages took,
        // go with it: a pooled connection given back its usual cache kept that memory
        // resident (the C allocator of its idle thread never returned it).
        let mut conn = self
            .options
            .clone()
            .pragma("cache_size", format!("-{IMPORT_CACHE_KIB}"))
            .connect()
            .await
            .map_err(internal)?;
        let written = import_on(&mut conn, waiting, scope, table, first, &mut parts, at, event).await;
        drop(parts);
        if let Err(e) = conn.close().await {
            tracing::warn!(error = %e, "closing an import's connection failed");
        }
        let (inserted, updated) = written?;
        if inserted + updated >= 1000 {
            // Planner statistics for the grown table (a bounded sample, milliseconds): without
            // them SQLite may sort a whole filtered set instead of walking the sort index.
            let mut conn = self.pool.acquire().await.map_err(internal)?;
            sqlx::query("PRAGMA analysis_limit = 400").execute(&mut *conn).await.map_err(internal)?;
            sqlx::query("PRAGMA optimize").execute(&mut *conn).await.map_err(internal)?;
        }
        Ok((inserted, updated))
    }

    async fn record_history(&self, scope: &TableScope<View>, table: &TableDef, id: i64) -> StoreResult<RecordHistory> {
        self.get_record(scope, table, id).await?;
        // Row by row, newest first, until the history has what it gives (its count, its size
        // in what the reader sees, or the bound of what it reads): a row held at a time. One
        // more than HISTORY_MAX says whether older entries were left out.
        let mut taker = daicho_store::HistoryTaker::default();
        let mut rows = sqlx::query(
            "SELECT version, at, actor_id, actor_login, changes FROM record_history \
             WHERE table_id = ? AND record_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(table.id.to_string())
        .bind(id)
        .bind(daicho_store::HISTORY_MAX as i64 + 1)
        .fetch(&self.pool);
        while let Some(r) = rows.next().await {
            let r = r.map_err(internal)?;
            if taker.done {
                taker.left();
                break;
            }
            taker.take(
                scope,
                table,
                r.try_get("version").map_err(internal)?,
                r.try_get("at").map_err(internal)?,
                r.try_get("actor_id").map_err(internal)?,
                r.try_get("actor_login").map_err(internal)?,
                &r.try_get::<String, _>("changes").map_err(internal)?,
            )?;
        }
        Ok(taker.out)
    }

    async fn list_records(
        &self,
        scope: &TableScope<View>,
        table: &TableDef,
        query: &RecordQuery,
    ) -> StoreResult<Vec<Record>> {
        let mut out = Vec::with_capacity(query.limit as usize);
        let mut r = self.reader().await?;
        let texts = self.page_json(&mut r, scope, table, query).await?;
        r.done();
        for (page, _) in texts {
            map_page(scope, table, &page, &mut out)?;
        }
        Ok(out)
    }

    async fn scan_records(
        &self,
        scope: &TableScope<View>,
        table: &TableDef,
        mut query: RecordQuery,
        pages: tokio::sync::mpsc::Sender<Vec<Record>>,
    ) -> StoreResult<()> {
        // SQLite reads a page while the page before it is turned into records: the next
        // page's position is taken from the page's last record alone, so the two overlap
        // (SQLite's thread waited for the mapping a third of the time otherwise).
        // Every page is read in one read transaction, on one connection: the export is one
        // snapshot of the table (WAL mode), so a record edited meanwhile (moved across the
        // export's position by a change of its sort value) is neither left out nor written
        // twice. Writers go on meanwhile; the WAL is only checkpointed past it afterwards.
        let (texts_tx, mut texts_rx) = tokio::sync::mpsc::channel::<Vec<(String, i64)>>(2);
        let (map_scope, map_table, limit) = (scope.clone(), table.clone(), query.limit as usize);
        let mapper = tokio::spawn(async move {
            while let Some(texts) = texts_rx.recv().await {
                let mut page = Vec::with_capacity(limit);
                for (text, _) in &texts {
                    map_page(&map_scope, &map_table, text, &mut page)?;
                }
                if pages.send(page).await.is_err() {
                    break;
                }
            }
            Ok::<(), StoreError>(())
        });
        let mut lease = self.reader().await?;
        let mut snapshot = sqlx::Connection::begin(&mut **lease).await.map_err(internal)?;
        // The snapshot's first read: the design its records are read with is the one they
        // were written with (an export that began as the field's type was being changed, and
        // waited for that change, would otherwise write 5 made 5.00 as "500").
        check_design(&mut snapshot, table).await?;
        let read = async {
            loop {
                let texts = self.page_json(&mut snapshot, scope, table, &query).await?;
                let n: i64 = texts.iter().map(|(_, n)| n).sum();
                let last = match texts.iter().rev().find(|(_, n)| *n > 0) {
                    Some((text, _)) => {
                        let row =
                            last_row(text).ok_or_else(|| StoreError::Internal("a page without its last row".into()))?;
                        let mut one = Vec::with_capacity(1);
                        map_page(scope, table, &format!("[{row}]"), &mut one)?;
                        one.pop()
                    }
                    None => None,
                };
                let Some(last) = last else { return Ok(()) };
                if texts_tx.send(texts).await.is_err() || n < i64::from(query.limit) {
                    return Ok(());
                }
                last.resume(&mut query);
            }
        };
        let read: StoreResult<()> = read.await;
        drop(texts_tx);
        let mapped = mapper.await.map_err(|e| StoreError::Internal(format!("mapping a page of records: {e}")))?;
        read.and(mapped)?;
        // Read only: its end releases the snapshot.
        snapshot.commit().await.map_err(internal)?;
        lease.done();
        Ok(())
    }

    async fn count_records(
        &self,
        scope: &TableScope<View>,
        table: &TableDef,
        query: &RecordQuery,
        cap: u64,
    ) -> StoreResult<(u64, bool)> {
        guard::check_table(scope, table)?;
        guard::check_query(scope, query)?;
        let t = ut::table_ident(table.id);
        // Counted up to the cap only: a count never costs more than reading `cap` index entries.
        let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT COUNT(*) FROM (SELECT 1 FROM {t} WHERE 1 = 1"));
        push_rows(&mut qb, guard::row_conditions(scope, table));
        push_filters(&mut qb, table, &query.filters, None)?;
        if let Some(k) = &query.keyword {
            let mut r = self.reader().await?;
            let plan = self.keyword_plan(&mut r, &t, k, COUNT_PROBE).await?;
            r.done();
            // More matches than a list counts, and nothing else narrows them: the cap it is.
            if !matches!(plan, KeywordPlan::Ids(_))
                && query.filters.is_empty()
                && scope.rows().is_all()
                && guard::visible_search_fields(scope, table).is_none()
                && cap < COUNT_PROBE as u64
            {
                return Ok((cap, true));
            }
            push_keyword_plan(&mut qb, &t, &plan);
            if let Some(visible) = guard::visible_search_fields(scope, table) {
                push_visible_keyword(&mut qb, &visible, k);
            }
        }
        qb.push(" LIMIT ");
        qb.push_bind(i64::try_from(cap).unwrap_or(i64::MAX).saturating_add(1));
        qb.push(") AS c");
        let mut r = self.reader().await?;
        let n: i64 = qb.build_query_scalar().fetch_one(&mut **r).await.map_err(internal)?;
        r.done();
        let n = u64::try_from(n).unwrap_or(0);
        Ok((n.min(cap), n > cap))
    }

    async fn list_groups(&self, scope: &Scope<ManageGroups>) -> StoreResult<Vec<Group>> {
        let tenant = scope.tenant_id().to_string();
        let mut groups: Vec<Group> =
            sqlx::query("SELECT id, tenant_id, name, description FROM user_groups WHERE tenant_id = ? ORDER BY name")
                .bind(&tenant)
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?
                .iter()
                .map(crate::rows::group_from_row)
                .collect::<StoreResult<_>>()?;
        let members = sqlx::query(
            "SELECT m.group_id, m.user_id FROM group_members m JOIN user_groups g ON g.id = m.group_id \
             WHERE g.tenant_id = ?",
        )
        .bind(&tenant)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        let grants = sqlx::query(
            "SELECT t.group_id, t.table_id, t.rights, t.rows, t.fields FROM table_grants t \
             JOIN user_groups g ON g.id = t.group_id WHERE g.tenant_id = ?",
        )
        .bind(&tenant)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        for g in &mut groups {
            let gid = g.id.to_string();
            for m in &members {
                if m.try_get::<String, _>("group_id").map_err(internal)? == gid {
                    let u: String = m.try_get("user_id").map_err(internal)?;
                    g.members.push(u.parse().map_err(|_| StoreError::Internal("bad member id".into()))?);
                }
            }
            for r in &grants {
                let grant = crate::rows::grant_from_row(r)?;
                if grant.group == g.id {
                    g.grants.push(grant);
                }
            }
        }
        Ok(groups)
    }

    async fn create_group(
        &self,
        scope: &Scope<ManageGroups>,
        id: GroupId,
        name: Name,
        description: String,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO user_groups (id, tenant_id, name, description, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(id.to_string())
            .bind(scope.tenant_id().to_string())
            .bind(name.as_str())
            .bind(&description)
            .bind(ms(at))
            .execute(&mut *tx)
            .await
            .map_err(catalogue_error)?;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)
    }

    async fn update_group(
        &self,
        scope: &Scope<ManageGroups>,
        id: GroupId,
        name: Name,
        description: String,
        event: NewAuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query("UPDATE user_groups SET name = ?, description = ? WHERE id = ? AND tenant_id = ?")
            .bind(name.as_str())
            .bind(&description)
            .bind(id.to_string())
            .bind(scope.tenant_id().to_string())
            .execute(&mut *tx)
            .await
            .map_err(catalogue_error)?
            .rows_affected();
        Self::check_affected(n)?;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)
    }

    async fn delete_group(&self, scope: &Scope<ManageGroups>, id: GroupId, event: NewAuditEvent) -> StoreResult<()> {
        self.write_one(
            sqlx::query("DELETE FROM user_groups WHERE id = ? AND tenant_id = ?")
                .bind(id.to_string())
                .bind(scope.tenant_id().to_string()),
            event,
        )
        .await
    }

    async fn set_group_members(
        &self,
        scope: &Scope<ManageGroups>,
        id: GroupId,
        members: Vec<UserId>,
        shown: Option<Vec<UserId>>,
        event: NewAuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        Self::check_group(&mut tx, scope.tenant_id(), id).await?;
        let members = match &shown {
            None => members,
            Some(shown) => {
                let current: Vec<String> = sqlx::query_scalar("SELECT user_id FROM group_members WHERE group_id = ?")
                    .bind(id.to_string())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(internal)?;
                let current: Vec<UserId> = current.iter().filter_map(|u| u.parse().ok()).collect();
                daicho_store::members_after(&current, members, Some(shown))
            }
        };
        sqlx::query("DELETE FROM group_members WHERE group_id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        for u in members {
            // Only users of the same tenant: another tenant's user id inserts nothing.
            let n = sqlx::query(
                "INSERT INTO group_members (group_id, user_id) SELECT ?, id FROM users WHERE id = ? AND tenant_id = ? \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id.to_string())
            .bind(u.to_string())
            .bind(scope.tenant_id().to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?
            .rows_affected();
            if n == 0 {
                let dup: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM group_members WHERE group_id = ? AND user_id = ?")
                        .bind(id.to_string())
                        .bind(u.to_string())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(internal)?;
                Self::check_affected(dup as u64)?;
            }
        }
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)
    }

    async fn set_table_grants(&self, scope: &Scope<ManageGroups>, grants: Vec<GrantChange>) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        for GrantChange { grant, expected, event } in grants {
            Self::check_group(&mut tx, scope.tenant_id(), grant.group).await?;
            if let Some(expected) = expected {
                // Compared here, inside the transaction that writes it (the row locked on
                // PostgreSQL): a change committed by someone else since (rights, records or
                // field rules) is never overwritten.
                let stored = sqlx::query(
                    "SELECT group_id, table_id, rights, rows, fields FROM table_grants \
                     WHERE group_id = ? AND table_id = ?",
                )
                .bind(grant.group.to_string())
                .bind(grant.table.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(internal)?
                .map(|r| crate::rows::grant_from_row(&r))
                .transpose()?;
                if stored != expected {
                    return Err(daicho_store::grants_changed_meanwhile());
                }
            }
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM user_tables WHERE id = ? AND tenant_id = ?")
                .bind(grant.table.to_string())
                .bind(scope.tenant_id().to_string())
                .fetch_one(&mut *tx)
                .await
                .map_err(internal)?;
            Self::check_affected(n as u64)?;
            // A grant without rights is removed only when it holds no rules either: rules on fields
            // and rows stay when every right is unticked, so that ticking one again later does not
            // bring back a field the group was not to see.
            if grant.rights.is_empty() && grant.rows == daicho_domain::RowRule::All && grant.fields.is_empty() {
                sqlx::query("DELETE FROM table_grants WHERE group_id = ? AND table_id = ?")
                    .bind(grant.group.to_string())
                    .bind(grant.table.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(internal)?;
            } else {
                let (rows, fields) = daicho_store::rows::grant_json(&grant)?;
                sqlx::query(
                    "INSERT INTO table_grants (group_id, table_id, rights, rows, fields) VALUES (?, ?, ?, ?, ?) \
                     ON CONFLICT (group_id, table_id) DO UPDATE SET rights = excluded.rights, rows = excluded.rows, \
                     fields = excluded.fields",
                )
                .bind(grant.group.to_string())
                .bind(grant.table.to_string())
                .bind(grant.rights.bits())
                .bind(rows)
                .bind(fields)
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
            }
            Self::append_in(&mut tx, event).await?;
        }
        tx.commit().await.map_err(internal)
    }

    async fn grants_of_user(&self, scope: &Scope<ManageGroups>, user: UserId) -> StoreResult<Vec<TableGrant>> {
        self.grants_for(scope.tenant_id(), user).await
    }

    async fn update_table(
        &self,
        scope: &TableScope<Design>,
        name: Option<Name>,
        description: Option<String>,
        event: NewAuditEvent,
    ) -> StoreResult<TableDef> {
        let q = sqlx::query(
            "UPDATE user_tables SET name = COALESCE(?, name), description = COALESCE(?, description) \
             WHERE id = ? AND tenant_id = ? AND deleted_at IS NULL",
        )
        .bind(name.as_ref().map(|n| n.as_str().to_owned()))
        .bind(description)
        .bind(scope.table().to_string())
        .bind(scope.tenant_id().to_string());
        self.write_design(q, scope, event).await
    }

    async fn rename_field(
        &self,
        scope: &TableScope<Design>,
        field: FieldId,
        name: Name,
        event: NewAuditEvent,
    ) -> StoreResult<TableDef> {
        guard::check_field_seen(scope, field)?;
        let q = sqlx::query(
            "UPDATE user_fields SET name = ? WHERE id = ? AND table_id = ? AND deleted_at IS NULL \
             AND table_id IN (SELECT id FROM user_tables WHERE tenant_id = ? AND deleted_at IS NULL)",
        )
        .bind(name.as_str())
        .bind(field.to_string())
        .bind(scope.table().to_string())
        .bind(scope.tenant_id().to_string());
        self.write_design(q, scope, event).await
    }

    async fn reorder_fields(
        &self,
        scope: &TableScope<Design>,
        order: Vec<FieldId>,
        event: NewAuditEvent,
    ) -> StoreResult<TableDef> {
        let mut tx = self.write_tx().await?;
        let def = load_def(&mut tx, scope.tenant_id(), scope.table(), false).await?;
        if !guard::is_permutation(&def, &order) {
            return Err(StoreError::Conflict(FieldErrors::single("fields", "not_every_field")));
        }
        if !guard::keeps_hidden_in_place(scope, &def, &order) {
            return Err(StoreError::Forbidden);
        }
        for (i, f) in order.iter().enumerate() {
            sqlx::query("UPDATE user_fields SET position = ? WHERE id = ? AND table_id = ?")
                .bind(i64::try_from(i).unwrap_or(i64::MAX))
                .bind(f.to_string())
                .bind(scope.table().to_string())
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
        }
        Self::append_in(&mut tx, event).await?;
        let def = load_def(&mut tx, scope.tenant_id(), scope.table(), false).await?;
        tx.commit().await.map_err(internal)?;
        Ok(def)
    }

    async fn retype_field(
        &self,
        scope: &TableScope<Design>,
        seen: &FieldDef,
        field: FieldDef,
        offset: i32,
        apply: bool,
        accept_altered: bool,
        mut event: NewAuditEvent,
    ) -> StoreResult<RetypeReport> {
        guard::check_field_seen(scope, field.id)?;
        // A check that writes nothing (no change applied, no uniqueness to test with the new
        // values in place) reads in a read transaction: its scan of the whole table must not
        // hold the database's one write lock, every tenant's writes waiting behind it.
        // (Judged from the field as the request saw it: one changed since is refused below.)
        let writes = apply || (field.rules.unique && (!seen.rules.unique || seen.kind != field.kind));
        let mut tx = if writes { self.write_tx().await? } else { self.pool.begin().await.map_err(internal)? };
        let def = load_def(&mut tx, scope.tenant_id(), scope.table(), false).await?;
        let old = def.fields.iter().find(|f| f.id == field.id).cloned().ok_or(StoreError::NotFound)?;
        guard::check_retype(&old, seen, &field)?;
        if field.kind != old.kind {
            link_target_live(&mut tx, scope.tenant_id(), &field.kind).await?;
        }
        let t = ut::table_ident(def.id);
        let col = ut::field_ident(field.id);
        let tmp = format!("r_{}", field.id.as_uuid().simple());
        let one = TableDef { fields: vec![old.clone()], ..def.clone() };
        let read = format!("SELECT {} FROM {t} WHERE id > {} ORDER BY id LIMIT 1000", record_columns(&one), ph(1));
        let mut report = RetypeReport::default();
        // Pass one: does every value convert?
        let mut after = 0i64;
        loop {
            let rows =
                sqlx::query(AssertSqlSafe(read.clone())).bind(after).fetch_all(&mut *tx).await.map_err(internal)?;
            let Some(last) = rows.last() else { break };
            after = last.try_get("id").map_err(internal)?;
            for r in &rows {
                let rec = record_from_row(r, &one)?;
                let cell = rec.cells.first().map(|(_, c)| c.clone()).unwrap_or(Cell::Null);
                guard::judge_conversion(&mut report, &old, &field, rec.id, &cell, offset);
            }
        }
        // A value that would say something else once converted: applied only when accepted
        // (checked, with the new values in place for a unique rule, as any check is).
        let apply = apply && (report.altered == 0 || accept_altered);
        let same_kind = old.kind == field.kind;
        // A change that makes the field unique (or changes the type of a unique field) is
        // checked with the new values in place, then undone, so that the check can name the
        // records that share a value; any other check ends with the conversion.
        let check_unique = field.rules.unique && (!old.rules.unique || !same_kind);
        if report.failed > 0 || (!apply && !check_unique) {
            return Ok(report);
        }
        let reindex = !same_kind || old.rules.unique != field.rules.unique;
        if reindex {
            for ddl in [
                format!("DROP INDEX IF EXISTS i_{}", field.id.as_uuid().simple()),
                format!("DROP INDEX IF EXISTS {}", ut::unique_ident(field.id)),
            ] {
                sqlx::query(AssertSqlSafe(ddl)).execute(&mut *tx).await.map_err(internal)?;
            }
        }
        // Values whose stored form changes (for a new type, every value).
        let mut rewritten = 0u64;
        if same_kind {
            // The values stay in their column; a value is written again only where the new
            // settings store it differently (a multiple choice in its choices' new order).
            let write = format!("UPDATE {t} SET {col} = {} WHERE id = {}", ph(1), ph(2));
            let mut after = 0i64;
            loop {
                let rows =
                    sqlx::query(AssertSqlSafe(read.clone())).bind(after).fetch_all(&mut *tx).await.map_err(internal)?;
                let Some(last) = rows.last() else { break };
                after = last.try_get("id").map_err(internal)?;
                for r in &rows {
                    let rec = record_from_row(r, &one)?;
                    let cell = rec.cells.first().map(|(_, c)| c.clone()).unwrap_or(Cell::Null);
                    let new = daicho_domain::table::convert(&old, &field, &cell, offset)
                        .map_err(|c| StoreError::Internal(c.into()))?;
                    if new == cell {
                        continue;
                    }
                    let q = bind_cell_q(sqlx::query(AssertSqlSafe(write.clone())), &new, field.kind.storage());
                    q.bind(rec.id).execute(&mut *tx).await.map_err(internal)?;
                    rewritten += 1;
                }
            }
        } else {
            // Pass two: the new values go into a new column that then takes the field's place.
            rewritten = report.records;
            let ddl = format!("ALTER TABLE {t} ADD COLUMN {tmp} {}", column_type(&field));
            sqlx::query(AssertSqlSafe(ddl)).execute(&mut *tx).await.map_err(internal)?;
            let write = format!("UPDATE {t} SET {tmp} = {} WHERE id = {}", ph(1), ph(2));
            let mut after = 0i64;
            loop {
                let rows =
                    sqlx::query(AssertSqlSafe(read.clone())).bind(after).fetch_all(&mut *tx).await.map_err(internal)?;
                let Some(last) = rows.last() else { break };
                after = last.try_get("id").map_err(internal)?;
                for r in &rows {
                    let rec = record_from_row(r, &one)?;
                    let cell = rec.cells.first().map(|(_, c)| c.clone()).unwrap_or(Cell::Null);
                    let new = daicho_domain::table::convert(&old, &field, &cell, offset)
                        .map_err(|c| StoreError::Internal(c.into()))?;
                    let q = bind_cell_q(sqlx::query(AssertSqlSafe(write.clone())), &new, field.kind.storage());
                    q.bind(rec.id).execute(&mut *tx).await.map_err(internal)?;
                }
            }
            for ddl in
                [format!("ALTER TABLE {t} DROP COLUMN {col}"), format!("ALTER TABLE {t} RENAME COLUMN {tmp} TO {col}")]
            {
                sqlx::query(AssertSqlSafe(ddl)).execute(&mut *tx).await.map_err(internal)?;
            }
        }
        if check_unique {
            let (shared, first) = duplicates(&mut tx, &def, &field).await?;
            if shared > 0 {
                report.failed = shared;
                report.failures = first;
                return Ok(report);
            }
        }
        if !apply {
            return Ok(report);
        }
        if reindex {
            for ddl in field_indexes(def.id, &field) {
                sqlx::query(AssertSqlSafe(ddl)).execute(&mut *tx).await.map_err(|e| match e.as_database_error() {
                    Some(db) if db.is_unique_violation() => {
                        StoreError::Conflict(FieldErrors::single("unique", "duplicate_values"))
                    }
                    _ => internal(e),
                })?;
            }
        }
        let kind = serde_json::to_string(&field.kind).map_err(|e| StoreError::Internal(e.to_string()))?;
        let rules = serde_json::to_string(&field.rules).map_err(|e| StoreError::Internal(e.to_string()))?;
        sqlx::query("UPDATE user_fields SET kind = ?, rules = ? WHERE id = ? AND table_id = ?")
            .bind(kind)
            .bind(rules)
            .bind(field.id.to_string())
            .bind(def.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        let new_def = load_def(&mut tx, scope.tenant_id(), def.id, false).await?;
        let mut histories = 0u64;
        if rewritten > 0 {
            rebuild_search(&mut tx, &new_def).await?;
            // The records' histories keep reading as written: their values of this field are
            // converted as the records' were (a 5 would otherwise read 0.05 as a decimal).
            let rows: Vec<(i64, String)> =
                sqlx::query_as("SELECT id, changes FROM record_history WHERE table_id = ? AND instr(changes, ?) > 0")
                    .bind(def.id.to_string())
                    .bind(field.id.to_string())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(internal)?;
            for (id, stored) in rows {
                if let Some(changes) = guard::converted_changes(&stored, &old, &field, offset)? {
                    sqlx::query("UPDATE record_history SET changes = ? WHERE id = ?")
                        .bind(changes)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(internal)?;
                    histories += 1;
                }
            }
        }
        event.details.push_str(&guard::retype_counts(report.records, rewritten, report.altered, histories));
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)?;
        report.applied = true;
        Ok(report)
    }

    async fn trash_field(&self, scope: &TableScope<Design>, field: FieldId, event: NewAuditEvent) -> StoreResult<()> {
        guard::check_field_seen(scope, field)?;
        let mut tx = self.write_tx().await?;
        no_links_into(&mut tx, scope.tenant_id(), scope.table(), Some(field)).await?;
        let n = sqlx::query(
            "UPDATE user_fields SET deleted_at = ?, deleted_by = ?, trashed_name = name, name = ? \
             WHERE id = ? AND table_id = ? AND deleted_at IS NULL \
             AND table_id IN (SELECT id FROM user_tables WHERE tenant_id = ? AND deleted_at IS NULL)",
        )
        .bind(ms(event.at))
        .bind(scope.actor().to_string())
        .bind(ut::trash_placeholder(&field.to_string()))
        .bind(field.to_string())
        .bind(scope.table().to_string())
        .bind(scope.tenant_id().to_string())
        .execute(&mut *tx)
        .await
        .map_err(internal)?
        .rows_affected();
        Self::check_affected(n)?;
        // The keyword index forgets the field's values (they stay in their column).
        let def = load_def(&mut tx, scope.tenant_id(), scope.table(), false).await?;
        rebuild_search(&mut tx, &def).await?;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)
    }

    async fn trash_table(&self, scope: &Scope<ManageDesign>, table: TableId, event: NewAuditEvent) -> StoreResult<()> {
        let q = sqlx::query(
            "UPDATE user_tables SET deleted_at = ?, deleted_by = ?, trashed_name = name, name = ? \
             WHERE id = ? AND tenant_id = ? AND deleted_at IS NULL",
        )
        .bind(ms(event.at))
        .bind(scope.actor().to_string())
        .bind(ut::trash_placeholder(&table.to_string()))
        .bind(table.to_string())
        .bind(scope.tenant_id().to_string());
        let mut tx = self.write_tx().await?;
        no_links_into(&mut tx, scope.tenant_id(), table, None).await?;
        let n = q.execute(&mut *tx).await.map_err(internal)?.rows_affected();
        Self::check_affected(n)?;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)
    }

    async fn list_trash(&self, scope: &Scope<ManageDesign>) -> StoreResult<Vec<TrashItem>> {
        let tenant = scope.tenant_id().to_string();
        let mut out = Vec::new();
        let tables = sqlx::query(
            "SELECT id, trashed_name, deleted_at, deleted_by FROM user_tables WHERE tenant_id = ? AND deleted_at IS NOT NULL",
        )
        .bind(&tenant)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        for r in &tables {
            out.push(daicho_store::rows::trash_item(&Cols(r), false)?);
        }
        let fields = sqlx::query(
            "SELECT t.id AS id, t.name AS trashed_name, f.deleted_at AS deleted_at, f.deleted_by AS deleted_by, \
             f.id AS field_id, f.trashed_name AS field_name FROM user_fields f JOIN user_tables t ON t.id = f.table_id \
             WHERE t.tenant_id = ? AND t.deleted_at IS NULL AND f.deleted_at IS NOT NULL",
        )
        .bind(&tenant)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        for r in &fields {
            out.push(daicho_store::rows::trash_item(&Cols(r), true)?);
        }
        out.sort_by_key(|i| std::cmp::Reverse(i.deleted_at));
        Ok(out)
    }

    async fn restore(
        &self,
        scope: &Scope<ManageDesign>,
        table: TableId,
        field: Option<FieldId>,
        event: NewAuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let n = match field {
            None => sqlx::query(
                "UPDATE user_tables SET name = trashed_name, trashed_name = NULL, deleted_at = NULL, deleted_by = NULL \
                 WHERE id = ? AND tenant_id = ? AND deleted_at IS NOT NULL",
            )
            .bind(table.to_string())
            .bind(scope.tenant_id().to_string())
            .execute(&mut *tx)
            .await
            .map_err(catalogue_error)?
            .rows_affected(),
            Some(f) => sqlx::query(
                "UPDATE user_fields SET name = trashed_name, trashed_name = NULL, deleted_at = NULL, deleted_by = NULL, \
                 position = (SELECT COALESCE(MAX(position), -1) + 1 FROM user_fields WHERE table_id = ?) \
                 WHERE id = ? AND table_id = ? AND deleted_at IS NOT NULL \
                 AND table_id IN (SELECT id FROM user_tables WHERE tenant_id = ? AND deleted_at IS NULL)",
            )
            .bind(table.to_string())
            .bind(f.to_string())
            .bind(table.to_string())
            .bind(scope.tenant_id().to_string())
            .execute(&mut *tx)
            .await
            .map_err(catalogue_error)?
            .rows_affected(),
        };
        Self::check_affected(n)?;
        if field.is_some() {
            let def = load_def(&mut tx, scope.tenant_id(), table, false).await?;
            rebuild_search(&mut tx, &def).await?;
        }
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)
    }

    async fn purge(
        &self,
        scope: &Scope<ManageDesign>,
        table: TableId,
        field: Option<FieldId>,
        event: NewAuditEvent,
    ) -> StoreResult<()> {
        self.purge_in(scope.tenant_id(), table, field, i64::MAX, event).await
    }

    async fn purge_trash(
        &self,
        _sys: &SystemScope,
        before: OffsetDateTime,
        template: NewAuditEvent,
    ) -> StoreResult<u64> {
        let rows = sqlx::query(
            "SELECT t.tenant_id AS tenant_id, t.id AS table_id, NULL AS field_id, \
             COALESCE(t.trashed_name, t.name) AS name FROM user_tables t \
             WHERE t.deleted_at IS NOT NULL AND t.deleted_at < ? \
             UNION ALL SELECT t.tenant_id, t.id, f.id, t.name || ' › ' || COALESCE(f.trashed_name, f.name) \
             FROM user_fields f JOIN user_tables t ON t.id = f.table_id \
             WHERE t.deleted_at IS NULL AND f.deleted_at IS NOT NULL AND f.deleted_at < ?",
        )
        .bind(ms(before))
        .bind(ms(before))
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        let (mut n, mut failed) = (0, None);
        for r in &rows {
            let (tenant, table, field) = daicho_store::rows::purge_target(&Cols(r))?;
            let mut ev = template.clone();
            ev.tenant_id = Some(tenant);
            ev.action = if field.is_some() {
                daicho_domain::AuditAction::FieldPurge
            } else {
                daicho_domain::AuditAction::TablePurge
            };
            ev.target = match field {
                Some(f) => format!("table:{table} field:{f}"),
                None => format!("table:{table}"),
            };
            // (Named: once purged, the catalogue no longer says what it was.)
            let name: Option<String> = r.try_get("name").map_err(internal)?;
            if let Some(name) = name {
                ev.details = format!("{name} ({})", ev.details);
            }
            // Each item on its own: one restored meanwhile (not found) or one whose lock is busy
            // leaves the others to be purged; a failure is reported after the rest ran.
            match self.purge_in(tenant, table, field, ms(before), ev).await {
                Ok(()) => n += 1,
                Err(StoreError::NotFound) => {}
                // A live link still points at it: kept until the link goes or it is restored.
                Err(StoreError::Conflict(e)) if e.0.iter().any(|x| x.field.starts_with("link:")) => {
                    tracing::warn!(%tenant, %table, ?field, links = ?e, "a trashed item past its time is kept: links point at it");
                }
                Err(e) => {
                    tracing::warn!(%tenant, %table, error = %e, "purge of a trashed item failed; the next run retries it");
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    async fn list_views(&self, scope: &TableScope<View>) -> StoreResult<Vec<SavedView>> {
        let rows = sqlx::query(
            "SELECT id, table_id, owner_id, name, spec, created_at, created_by FROM saved_views \
             WHERE tenant_id = ? AND table_id = ? AND (owner_id IS NULL OR owner_id = ?) \
             ORDER BY owner_id IS NOT NULL, name, id",
        )
        .bind(scope.tenant_id().to_string())
        .bind(scope.table().to_string())
        .bind(scope.actor().to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        let views = rows.iter().map(|r| daicho_store::rows::saved_view(&Cols(r))).collect::<StoreResult<Vec<_>>>()?;
        Ok(daicho_store::guard::offered_views(scope, views))
    }

    async fn create_view(&self, scope: &TableScope<View>, view: SavedView, event: NewAuditEvent) -> StoreResult<()> {
        if view.owner != Some(scope.actor()) || view.table_id != scope.table() {
            return Err(StoreError::Forbidden);
        }
        self.insert_view(scope.tenant_id(), view, event).await
    }

    async fn create_shared_view(
        &self,
        scope: &TableScope<Design>,
        view: SavedView,
        event: NewAuditEvent,
    ) -> StoreResult<()> {
        if view.owner.is_some() || view.table_id != scope.table() {
            return Err(StoreError::Forbidden);
        }
        self.insert_view(scope.tenant_id(), view, event).await
    }

    async fn delete_view(&self, scope: &TableScope<View>, id: ViewId, event: NewAuditEvent) -> StoreResult<()> {
        let q = sqlx::query("DELETE FROM saved_views WHERE id = ? AND tenant_id = ? AND table_id = ? AND owner_id = ?")
            .bind(id.to_string())
            .bind(scope.tenant_id().to_string())
            .bind(scope.table().to_string())
            .bind(scope.actor().to_string());
        self.write_one(q, event).await
    }

    async fn delete_shared_view(
        &self,
        scope: &TableScope<Design>,
        id: ViewId,
        event: NewAuditEvent,
    ) -> StoreResult<()> {
        let q =
            sqlx::query("DELETE FROM saved_views WHERE id = ? AND tenant_id = ? AND table_id = ? AND owner_id IS NULL")
                .bind(id.to_string())
                .bind(scope.tenant_id().to_string())
                .bind(scope.table().to_string());
        self.write_one(q, event).await
    }

    async fn export_base(&self, _op: &OperatorScope) -> StoreResult<BaseDump> {
        let g = |e: sqlx::Error| internal(e);
        let mut d = BaseDump::default();
        for r in sqlx::query("SELECT id, code, name, policy, created_at FROM tenants ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(g)?
        {
            d.tenants.push(TenantRow {
                id: r.try_get("id").map_err(g)?,
                code: r.try_get("code").map_err(g)?,
                name: r.try_get("name").map_err(g)?,
                policy: r.try_get("policy").map_err(g)?,
                created_at: r.try_get("created_at").map_err(g)?,
            });
        }
        for r in sqlx::query(
            "SELECT id, tenant_id, login_id, display_name, email, role, status, language, password_hash, \
             must_change_password, password_changed_at, failed_logins, locked_until, created_at, updated_at \
             FROM users ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(g)?
        {
            d.users.push(UserRow {
                id: r.try_get("id").map_err(g)?,
                tenant_id: r.try_get("tenant_id").map_err(g)?,
                login_id: r.try_get("login_id").map_err(g)?,
                display_name: r.try_get("display_name").map_err(g)?,
                email: r.try_get("email").map_err(g)?,
                role: r.try_get("role").map_err(g)?,
                status: r.try_get("status").map_err(g)?,
                language: r.try_get("language").map_err(g)?,
                password_hash: r.try_get("password_hash").map_err(g)?,
                must_change_password: r.try_get("must_change_password").map_err(g)?,
                password_changed_at: r.try_get("password_changed_at").map_err(g)?,
                failed_logins: r.try_get("failed_logins").map_err(g)?,
                locked_until: r.try_get("locked_until").map_err(g)?,
                created_at: r.try_get("created_at").map_err(g)?,
                updated_at: r.try_get("updated_at").map_err(g)?,
            });
        }
        for r in sqlx::query("SELECT user_id, password_hash, replaced_at FROM password_history ORDER BY replaced_at")
            .fetch_all(&self.pool)
            .await
            .map_err(g)?
        {
            d.password_history.push(PasswordHistoryRow {
                user_id: r.try_get("user_id").map_err(g)?,
                password_hash: r.try_get("password_hash").map_err(g)?,
                replaced_at: r.try_get("replaced_at").map_err(g)?,
            });
        }
        for r in sqlx::query(
            "SELECT id, token_hash, tenant_id, user_id, created_at, last_seen_at, csrf_token, ip, user_agent \
             FROM sessions ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(g)?
        {
            d.sessions.push(SessionRow {
                id: r.try_get("id").map_err(g)?,
                token_hash: r.try_get("token_hash").map_err(g)?,
                tenant_id: r.try_get("tenant_id").map_err(g)?,
                user_id: r.try_get("user_id").map_err(g)?,
                created_at: r.try_get("created_at").map_err(g)?,
                last_seen_at: r.try_get("last_seen_at").map_err(g)?,
                csrf_token: r.try_get("csrf_token").map_err(g)?,
                ip: r.try_get("ip").map_err(g)?,
                user_agent: r.try_get("user_agent").map_err(g)?,
            });
        }
        for r in sqlx::query("SELECT name, next_due_at, last_run_at, last_node FROM jobs ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(g)?
        {
            d.jobs.push(JobRow {
                name: r.try_get("name").map_err(g)?,
                next_due_at: r.try_get("next_due_at").map_err(g)?,
                last_run_at: r.try_get("last_run_at").map_err(g)?,
                last_node: r.try_get("last_node").map_err(g)?,
            });
        }
        Ok(d)
    }

    async fn export_audit(&self, _op: &OperatorScope, after_seq: i64, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT seq, at, tenant_id, actor_id, actor_login, ip, user_agent, action, target, outcome, details, \
             prev_hash, hash FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn import_base(&self, _op: &OperatorScope, d: BaseDump) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let existing: i64 =
            sqlx::query_scalar("SELECT (SELECT COUNT(*) FROM tenants) + (SELECT COUNT(*) FROM audit_events)")
                .fetch_one(&mut *tx)
                .await
                .map_err(internal)?;
        if existing > 0 {
            return Err(StoreError::Conflict(FieldErrors::single("target", "not_empty")));
        }
        for t in &d.tenants {
            sqlx::query("INSERT INTO tenants (id, code, name, policy, created_at) VALUES (?, ?, ?, ?, ?)")
                .bind(&t.id)
                .bind(&t.code)
                .bind(&t.name)
                .bind(&t.policy)
                .bind(t.created_at)
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
        }
        for u in &d.users {
            sqlx::query(
                "INSERT INTO users (id, tenant_id, login_id, display_name, email, role, status, language, password_hash, \
                 must_change_password, password_changed_at, failed_logins, locked_until, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&u.id)
            .bind(&u.tenant_id)
            .bind(&u.login_id)
            .bind(&u.display_name)
            .bind(&u.email)
            .bind(&u.role)
            .bind(&u.status)
            .bind(&u.language)
            .bind(&u.password_hash)
            .bind(u.must_change_password)
            .bind(u.password_changed_at)
            .bind(u.failed_logins)
            .bind(u.locked_until)
            .bind(u.created_at)
            .bind(u.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        }
        for h in &d.password_history {
            sqlx::query("INSERT INTO password_history (user_id, password_hash, replaced_at) VALUES (?, ?, ?)")
                .bind(&h.user_id)
                .bind(&h.password_hash)
                .bind(h.replaced_at)
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
        }
        for s in &d.sessions {
            sqlx::query(
                "INSERT INTO sessions (id, token_hash, tenant_id, user_id, created_at, last_seen_at, csrf_token, ip, \
                 user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&s.id)
            .bind(&s.token_hash)
            .bind(&s.tenant_id)
            .bind(&s.user_id)
            .bind(s.created_at)
            .bind(s.last_seen_at)
            .bind(&s.csrf_token)
            .bind(&s.ip)
            .bind(&s.user_agent)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        }
        for j in &d.jobs {
            sqlx::query("INSERT INTO jobs (name, next_due_at, last_run_at, last_node) VALUES (?, ?, ?, ?)")
                .bind(&j.name)
                .bind(j.next_due_at)
                .bind(j.last_run_at)
                .bind(&j.last_node)
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
        }
        tx.commit().await.map_err(internal)
    }

    async fn import_audit(&self, _op: &OperatorScope, events: Vec<AuditEvent>) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        for e in &events {
            sqlx::query(
                "INSERT INTO audit_events (seq, chain, at, tenant_id, actor_id, actor_login, ip, user_agent, action, \
                 target, outcome, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(e.seq)
            .bind(chain_of(e.tenant_id))
            .bind(ms(e.at))
            .bind(e.tenant_id.map(|t| t.to_string()))
            .bind(e.actor_id.map(|a| a.to_string()))
            .bind(&e.actor_login)
            .bind(&e.ip)
            .bind(&e.user_agent)
            .bind(&e.action)
            .bind(&e.target)
            .bind(&e.outcome)
            .bind(&e.details)
            .bind(&e.prev_hash)
            .bind(&e.hash)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        }
        tx.commit().await.map_err(internal)
    }

    async fn table_counts(&self, _op: &OperatorScope) -> StoreResult<Vec<(&'static str, i64)>> {
        let mut out = Vec::new();
        for table in TABLES {
            let sql: &'static str = match *table {
                "tenants" => "SELECT COUNT(*) FROM tenants",
                "users" => "SELECT COUNT(*) FROM users",
                "password_history" => "SELECT COUNT(*) FROM password_history",
                "sessions" => "SELECT COUNT(*) FROM sessions",
                "audit_events" => "SELECT COUNT(*) FROM audit_events",
                "jobs" => "SELECT COUNT(*) FROM jobs",
                "user_tables" => "SELECT COUNT(*) FROM user_tables",
                "user_groups" => "SELECT COUNT(*) FROM user_groups",
                "user_fields" => "SELECT COUNT(*) FROM user_fields",
                "group_members" => "SELECT COUNT(*) FROM group_members",
                "table_grants" => "SELECT COUNT(*) FROM table_grants",
                "api_tokens" => "SELECT COUNT(*) FROM api_tokens",
                "record_history" => "SELECT COUNT(*) FROM record_history",
                "saved_views" => "SELECT COUNT(*) FROM saved_views",
                _ => return Err(StoreError::Internal(format!("unknown table {table}"))),
            };
            let n: i64 = sqlx::query_scalar(sql).fetch_one(&self.pool).await.map_err(internal)?;
            out.push((*table, n));
        }
        Ok(out)
    }

    async fn export_catalogue(&self, _op: &OperatorScope) -> StoreResult<CatalogueDump> {
        let all = |sql: &'static str| sqlx::query(sql).fetch_all(&self.pool);
        let mut d = CatalogueDump::default();
        for r in all(copy::SELECT_TABLES).await.map_err(internal)? {
            let mut t = copy::table(&Cols(&r))?;
            let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = ?")
                .bind(ut::table_ident(t.id.parse().map_err(|_| StoreError::Internal("bad table id".into()))?))
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
            t.last_id = seq.unwrap_or(0);
            d.tables.push(t);
        }
        for r in all(copy::SELECT_FIELDS).await.map_err(internal)? {
            d.fields.push(copy::field(&Cols(&r))?);
        }
        for r in all(copy::SELECT_GROUPS).await.map_err(internal)? {
            d.groups.push(copy::group(&Cols(&r))?);
        }
        for r in all(copy::SELECT_MEMBERS).await.map_err(internal)? {
            d.members.push(copy::member(&Cols(&r))?);
        }
        for r in all(copy::SELECT_GRANTS).await.map_err(internal)? {
            d.grants.push(copy::grant(&Cols(&r))?);
        }
        for r in all(copy::SELECT_TOKENS).await.map_err(internal)? {
            d.tokens.push(copy::token(&Cols(&r))?);
        }
        for r in all(copy::SELECT_VIEWS).await.map_err(internal)? {
            d.views.push(copy::view(&Cols(&r))?);
        }
        Ok(d)
    }

    async fn import_catalogue(&self, _op: &OperatorScope, d: CatalogueDump) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let existing: i64 =
            sqlx::query_scalar("SELECT (SELECT COUNT(*) FROM user_tables) + (SELECT COUNT(*) FROM user_groups)")
                .fetch_one(&mut *tx)
                .await
                .map_err(internal)?;
        if existing > 0 {
            return Err(StoreError::Conflict(FieldErrors::single("target", "not_empty")));
        }
        for t in &d.tables {
            let id: TableId = t.id.parse().map_err(|_| StoreError::Internal("bad table id".into()))?;
            sqlx::query(
                "INSERT INTO user_tables (id, tenant_id, name, description, created_at, deleted_at, deleted_by, \
                 trashed_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&t.id)
            .bind(&t.tenant_id)
            .bind(&t.name)
            .bind(&t.description)
            .bind(t.created_at)
            .bind(t.deleted_at)
            .bind(&t.deleted_by)
            .bind(&t.trashed_name)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
            create_storage(&mut tx, id).await?;
            if t.last_id > 0 {
                // The id high-water mark, so that ids of deleted records are never handed out again.
                sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)")
                    .bind(ut::table_ident(id))
                    .bind(t.last_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(internal)?;
            }
        }
        for f in &d.fields {
            sqlx::query(
                "INSERT INTO user_fields (id, table_id, position, name, kind, rules, created_at, deleted_at, deleted_by, \
                 trashed_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&f.id)
            .bind(&f.table_id)
            .bind(f.position)
            .bind(&f.name)
            .bind(&f.kind)
            .bind(&f.rules)
            .bind(f.created_at)
            .bind(f.deleted_at)
            .bind(&f.deleted_by)
            .bind(&f.trashed_name)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
            let (table, def) = copy::field_def(f)?;
            add_column(&mut tx, table, &def).await?;
        }
        for g in &d.groups {
            sqlx::query(
                "INSERT INTO user_groups (id, tenant_id, name, description, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&g.id)
            .bind(&g.tenant_id)
            .bind(&g.name)
            .bind(&g.description)
            .bind(g.created_at)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        }
        for m in &d.members {
            sqlx::query("INSERT INTO group_members (group_id, user_id) VALUES (?, ?)")
                .bind(&m.group_id)
                .bind(&m.user_id)
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
        }
        for g in &d.grants {
            sqlx::query("INSERT INTO table_grants (group_id, table_id, rights, rows, fields) VALUES (?, ?, ?, ?, ?)")
                .bind(&g.group_id)
                .bind(&g.table_id)
                .bind(g.rights)
                .bind(&g.rows)
                .bind(&g.fields)
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
        }
        for t in &d.tokens {
            sqlx::query(
                "INSERT INTO api_tokens (id, tenant_id, user_id, name, token_hash, read_only, created_at, expires_at, \
                 last_used_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&t.id)
            .bind(&t.tenant_id)
            .bind(&t.user_id)
            .bind(&t.name)
            .bind(&t.token_hash)
            .bind(t.read_only)
            .bind(t.created_at)
            .bind(t.expires_at)
            .bind(t.last_used_at)
            .bind(t.revoked_at)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        }
        for v in &d.views {
            sqlx::query(
                "INSERT INTO saved_views (id, tenant_id, table_id, owner_id, name, spec, created_at, created_by) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&v.id)
            .bind(&v.tenant_id)
            .bind(&v.table_id)
            .bind(&v.owner_id)
            .bind(&v.name)
            .bind(&v.spec)
            .bind(v.created_at)
            .bind(&v.created_by)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        }
        tx.commit().await.map_err(internal)
    }

    async fn export_table_records(
        &self,
        _op: &OperatorScope,
        tenant: TenantId,
        table: TableId,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<Record>> {
        let def = self.load_table_with_trash(tenant, table).await?;
        let sql = format!(
            "SELECT {} FROM {} WHERE id > ?1 ORDER BY id LIMIT ?2",
            record_columns(&def),
            ut::table_ident(table)
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
        rows.iter().map(|r| record_from_row(r, &def)).collect()
    }

    async fn import_table_records(
        &self,
        _op: &OperatorScope,
        tenant: TenantId,
        table: TableId,
        records: Vec<Record>,
    ) -> StoreResult<()> {
        let def = self.load_table_with_trash(tenant, table).await?;
        // The keyword index holds the live fields only: a field in the trash is not searched
        // (its values stay in the record, to come back with it).
        let live: Vec<String> =
            sqlx::query_scalar("SELECT id FROM user_fields WHERE table_id = ? AND deleted_at IS NULL")
                .bind(table.to_string())
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
        let searched = TableDef {
            fields: def.fields.iter().filter(|f| live.contains(&f.id.to_string())).cloned().collect(),
            ..def.clone()
        };
        let t = ut::table_ident(table);
        let mut cols: Vec<String> = ["id", "version", "created_at", "created_by", "updated_at", "updated_by"]
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        // Auto-numbers are computed by the database from the id.
        let written: Vec<&FieldDef> = def.fields.iter().filter(|f| !f.kind.is_generated()).collect();
        cols.extend(written.iter().map(|f| ut::field_ident(f.id)));
        // Multi-row INSERTs and one statement for the keyword index, as an import writes: a
        // statement per row hands each one to SQLite's thread and back (migrate-store copied
        // 3,300 rows/s that way).
        let chunk = (30_000 / cols.len()).clamp(1, 500);
        let mut tx = self.write_tx().await?;
        // An import's page cache (see `import_records`): with SQLite's 2 MB the copy spent most
        // of its time reading pages of the growing indexes back from the file (300,000 records:
        // 22.6 s with 2 MB, 18.4 s with this). The copy runs in the operator's command with the
        // nodes stopped, so the connection keeps the larger cache until the command ends.
        sqlx::query(AssertSqlSafe(format!("PRAGMA cache_size = -{IMPORT_CACHE_KIB}")))
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        for part in records.chunks(chunk) {
            let mut qb = QueryBuilder::<Sqlite>::new(format!("INSERT INTO {t} ({}) ", cols.join(", ")));
            qb.push_values(part, |mut b, r| {
                b.push_bind(r.id)
                    .push_bind(r.version)
                    .push_bind(ms(r.created_at))
                    .push_bind(r.created_by.clone())
                    .push_bind(ms(r.updated_at))
                    .push_bind(r.updated_by.clone());
                for f in &written {
                    let cell = r.cells.iter().find(|(id, _)| *id == f.id).map(|(_, c)| c).unwrap_or(&Cell::Null);
                    push_cell_value(&mut b, cell, f.kind.storage());
                }
            });
            qb.build().execute(&mut *tx).await.map_err(|e| record_error(e, &def))?;
        }
        let ids = serde_json::Value::from(records.iter().map(|r| r.id).collect::<Vec<i64>>()).to_string();
        let fts = format!(
            "INSERT INTO {t}_fts (rowid, body) SELECT id, {} FROM {t} WHERE id IN (SELECT value FROM json_each(?))",
            ut::search_expr(&searched, "char(10)")
        );
        sqlx::query(AssertSqlSafe(fts)).bind(ids).execute(&mut *tx).await.map_err(internal)?;
        tx.commit().await.map_err(internal)
    }

    async fn export_record_history(
        &self,
        _op: &OperatorScope,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<RecordHistoryRow>> {
        let rows = sqlx::query(
            "SELECT id, table_id, record_id, version, at, actor_id, actor_login, changes FROM record_history \
             WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        rows.iter().map(|r| copy::history(&Cols(r))).collect()
    }

    async fn import_record_history(&self, _op: &OperatorScope, rows: Vec<RecordHistoryRow>) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        for h in &rows {
            sqlx::query(
                "INSERT INTO record_history (id, table_id, record_id, version, at, actor_id, actor_login, changes) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(h.id)
            .bind(&h.table_id)
            .bind(h.record_id)
            .bind(h.version)
            .bind(h.at)
            .bind(&h.actor_id)
            .bind(&h.actor_login)
            .bind(&h.changes)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        }
        tx.commit().await.map_err(internal)
    }

    async fn record_counts(&self, _op: &OperatorScope) -> StoreResult<Vec<(TableId, i64)>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM user_tables ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
        let mut out = Vec::new();
        for id in ids {
            let id: TableId = id.parse().map_err(|_| StoreError::Internal("bad table id".into()))?;
            let sql = format!("SELECT COUNT(*) FROM {}", ut::table_ident(id));
            let n: i64 = sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(&self.pool).await.map_err(internal)?;
            out.push((id, n));
        }
        Ok(out)
    }

    async fn ensure_job(&self, _sys: &SystemScope, name: &str, first_due: OffsetDateTime) -> StoreResult<()> {
        sqlx::query("INSERT INTO jobs (name, next_due_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(ms(first_due))
            .execute(&self.pool)
            .await
            .map_err(internal)?;
        Ok(())
    }

    async fn claim_job(
        &self,
        _sys: &SystemScope,
        name: &str,
        node: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> StoreResult<bool> {
        // One atomic UPDATE: of several nodes racing, exactly one matches the free lease.
        let n = sqlx::query(
            "UPDATE jobs SET lease_owner = ?1, lease_until = ?2 WHERE name = ?3 AND next_due_at <= ?4 \
             AND (lease_until IS NULL OR lease_until < ?4)",
        )
        .bind(node)
        .bind(ms(lease_until))
        .bind(name)
        .bind(ms(now))
        .execute(&self.pool)
        .await
        .map_err(internal)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn finish_job(
        &self,
        _sys: &SystemScope,
        name: &str,
        node: &str,
        next_due: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE jobs SET next_due_at = ?1, lease_owner = NULL, lease_until = NULL, last_run_at = ?2, \
             last_node = ?3 WHERE name = ?4 AND lease_owner = ?3",
        )
        .bind(ms(next_due))
        .bind(ms(event.at))
        .bind(node)
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(internal)?
        .rows_affected();
        if n == 1 {
            Self::append_in(&mut tx, event).await?;
        }
        tx.commit().await.map_err(internal)?;
        Ok(n == 1)
    }

    async fn stage_import(
        &self,
        scope: &TableScope<Import>,
        id: &str,
        file: &[u8],
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<()> {
        // A user keeps at most STAGED_PER_USER files waiting (each up to the import limit, in
        // the database every tenant shares): the oldest go first.
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "DELETE FROM staged_imports WHERE tenant_id = ?1 AND user_id = ?2 AND id NOT IN \
             (SELECT id FROM staged_imports WHERE tenant_id = ?1 AND user_id = ?2 \
             ORDER BY created_at DESC, id DESC LIMIT ?3)",
        )
        .bind(scope.tenant_id().to_string())
        .bind(scope.actor().to_string())
        .bind(daicho_store::STAGED_PER_USER - 1)
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        sqlx::query(
            "INSERT INTO staged_imports (id, tenant_id, table_id, user_id, created_at, body) \
             SELECT ?, ?, ?, ?, ?, ? FROM user_tables \
             WHERE id = ? AND tenant_id = ? AND deleted_at IS NULL",
        )
        .bind(id)
        .bind(scope.tenant_id().to_string())
        .bind(scope.table().to_string())
        .bind(scope.actor().to_string())
        .bind(ms(at))
        .bind(file)
        .bind(scope.table().to_string())
        .bind(scope.tenant_id().to_string())
        .execute(&mut *tx)
        .await
        .map_err(internal)
        .and_then(|r| Self::check_affected(r.rows_affected()))?;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)
    }

    async fn staged_import(&self, scope: &TableScope<Import>, id: &str, since: OffsetDateTime) -> StoreResult<Vec<u8>> {
        sqlx::query_scalar(
            "SELECT body FROM staged_imports \
             WHERE id = ? AND tenant_id = ? AND table_id = ? AND user_id = ? AND created_at >= ?",
        )
        .bind(id)
        .bind(scope.tenant_id().to_string())
        .bind(scope.table().to_string())
        .bind(scope.actor().to_string())
        .bind(ms(since))
        .fetch_optional(&self.pool)
        .await
        .map_err(internal)?
        .ok_or(StoreError::NotFound)
    }

    async fn drop_staged_import(&self, scope: &TableScope<Import>, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM staged_imports WHERE id = ? AND tenant_id = ? AND table_id = ? AND user_id = ?")
            .bind(id)
            .bind(scope.tenant_id().to_string())
            .bind(scope.table().to_string())
            .bind(scope.actor().to_string())
            .execute(&self.pool)
            .await
            .map_err(internal)?;
        Ok(())
    }

    async fn purge_staged_imports(&self, _sys: &SystemScope, before: OffsetDateTime) -> StoreResult<u64> {
        let n = sqlx::query("DELETE FROM staged_imports WHERE created_at < ?")
            .bind(ms(before))
            .execute(&self.pool)
            .await
            .map_err(internal)?
            .rows_affected();
        Ok(n)
    }

    async fn purge_sessions(
        &self,
        _sys: &SystemScope,
        idle_before: OffsetDateTime,
        started_before: OffsetDateTime,
    ) -> StoreResult<u64> {
        let n = sqlx::query("DELETE FROM sessions WHERE last_seen_at < ?1 OR created_at < ?2")
            .bind(ms(idle_before))
            .bind(ms(started_before))
            .execute(&self.pool)
            .await
            .map_err(internal)?
            .rows_affected();
        Ok(n)
    }

    async fn tenant_by_code(&self, _flow: &LoginFlow, code: &TenantCode) -> StoreResult<Option<Tenant>> {
        let row = sqlx::query("SELECT id, code, name, policy, created_at FROM tenants WHERE code = ?")
            .bind(code.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    async fn credential(
        &self,
        _flow: &LoginFlow,
        tenant: TenantId,
        login: &LoginId,
    ) -> StoreResult<Option<Credential>> {
        let row = sqlx::query(
            "SELECT u.id, u.tenant_id, u.login_id, u.display_name, u.email, u.role, u.status, u.language, \
             u.must_change_password, u.password_changed_at, u.failed_logins, u.locked_until, u.created_at, u.updated_at, \
             u.password_hash FROM users u WHERE u.tenant_id = ? AND u.login_id = ?",
        )
        .bind(tenant.to_string())
        .bind(login.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(internal)?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(Credential {
                user: user_from_row(&r)?,
                password_hash: r.try_get("password_hash").map_err(internal)?,
            })),
        }
    }

    async fn login_failures_from_ip(&self, _flow: &LoginFlow, ip: &str, since: OffsetDateTime) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_events WHERE ip = ? AND action IN ('login.failure', 'login.lockout') AND at >= ?",
        )
        .bind(ip)
        .bind(ms(since))
        .fetch_one(&self.pool)
        .await
        .map_err(internal)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn record_login_failure(&self, _flow: &LoginFlow, f: LoginFailure) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        // A lock that has run out starts a fresh count, so the account locks again after
        // another `threshold` failures. SET expressions all see the row as it was before.
        let row = sqlx::query(
            "UPDATE users SET \
             failed_logins = CASE WHEN locked_until IS NOT NULL AND locked_until <= ?1 THEN 1 ELSE failed_logins + 1 END, \
             locked_until = CASE \
                WHEN (CASE WHEN locked_until IS NOT NULL AND locked_until <= ?1 THEN 1 ELSE failed_logins + 1 END) >= ?2 \
                    AND (locked_until IS NULL OR locked_until <= ?1) THEN ?3 \
                WHEN locked_until IS NOT NULL AND locked_until <= ?1 THEN NULL \
                ELSE locked_until END \
             WHERE id = ?4 AND tenant_id = ?5 RETURNING failed_logins",
        )
        .bind(ms(f.failure_event.at))
        .bind(i64::from(f.threshold))
        .bind(ms(f.lock_until))
        .bind(f.user_id.to_string())
        .bind(f.tenant_id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(internal)?;
        let count: i64 = match row {
            Some(r) => r.try_get(0).map_err(internal)?,
            None => 0,
        };
        Self::append_in(&mut tx, f.failure_event).await?;
        // Lock exactly when the count reaches the threshold, so one lockout event per lockout.
        let locked_now = count == i64::from(f.threshold);
        if locked_now {
            Self::append_in(&mut tx, f.lockout_event).await?;
        }
        tx.commit().await.map_err(internal)?;
        Ok(locked_now)
    }

    async fn start_session(&self, _flow: &LoginFlow, s: NewSession, event: NewAuditEvent) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE users SET failed_logins = 0, locked_until = NULL \
             WHERE id = ? AND tenant_id = ? AND password_hash = ? AND status = ?",
        )
        .bind(s.user_id.to_string())
        .bind(s.tenant_id.to_string())
        .bind(&s.verified_hash)
        .bind(UserStatus::Active.as_str())
        .execute(&mut *tx)
        .await
        .map_err(internal)?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, tenant_id, user_id, created_at, last_seen_at, csrf_token, ip, user_agent) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(s.id.to_string())
        .bind(&s.token_hash)
        .bind(s.tenant_id.to_string())
        .bind(s.user_id.to_string())
        .bind(ms(s.at))
        .bind(ms(s.at))
        .bind(&s.csrf_token)
        .bind(&s.ip)
        .bind(s.user_agent.chars().take(256).collect::<String>())
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)?;
        Ok(true)
    }

    async fn session_by_token_hash(&self, _flow: &LoginFlow, token_hash: &str) -> StoreResult<Option<SessionContext>> {
        let mut r = self.reader().await?;
        let row = sqlx::query(
            "SELECT s.id AS s_id, s.tenant_id AS s_tenant_id, s.user_id AS s_user_id, s.created_at AS s_created_at, \
             s.last_seen_at AS s_last_seen_at, s.csrf_token AS s_csrf_token, s.ip AS s_ip, s.user_agent AS s_user_agent, \
             u.id, u.tenant_id, u.login_id, u.display_name, u.email, u.role, u.status, u.language, \
             u.must_change_password, u.password_changed_at, u.failed_logins, u.locked_until, u.created_at, u.updated_at, \
             t.id AS t_id, t.code AS t_code, t.name AS t_name, t.policy AS t_policy, t.created_at AS t_created_at, \
             t.design_version AS t_design_version FROM sessions s JOIN users u ON u.id = s.user_id AND u.tenant_id = s.tenant_id \
             JOIN tenants t ON t.id = s.tenant_id WHERE s.token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&mut **r)
        .await
        .map_err(internal)?;
        r.done();
        let Some(r) = row else { return Ok(None) };
        Ok(Some(SessionContext {
            session: session_from_row(&r, "s_")?,
            user: user_from_row(&r)?,
            tenant: rows::tenant_from_prefixed(&r)?,
            design_version: r.try_get("t_design_version").map_err(internal)?,
        }))
    }

    async fn token_by_hash(&self, _flow: &LoginFlow, token_hash: &str) -> StoreResult<Option<TokenContext>> {
        let mut r = self.reader().await?;
        let row = sqlx::query(
            "SELECT k.id AS k_id, k.tenant_id AS k_tenant_id, k.user_id AS k_user_id, k.name AS k_name, \
             k.read_only AS k_read_only, k.created_at AS k_created_at, k.expires_at AS k_expires_at, \
             k.last_used_at AS k_last_used_at, k.revoked_at AS k_revoked_at, \
             u.id, u.tenant_id, u.login_id, u.display_name, u.email, u.role, u.status, u.language, \
             u.must_change_password, u.password_changed_at, u.failed_logins, u.locked_until, u.created_at, u.updated_at, \
             t.id AS t_id, t.code AS t_code, t.name AS t_name, t.policy AS t_policy, t.created_at AS t_created_at, \
             t.design_version AS t_design_version FROM api_tokens k JOIN users u ON u.id = k.user_id AND u.tenant_id = k.tenant_id \
             JOIN tenants t ON t.id = k.tenant_id WHERE k.token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&mut **r)
        .await
        .map_err(internal)?;
        r.done();
        let Some(r) = row else { return Ok(None) };
        Ok(Some(TokenContext {
            token: crate::rows::token_from_row(&r, "k_")?,
            user: user_from_row(&r)?,
            tenant: rows::tenant_from_prefixed(&r)?,
            design_version: r.try_get("t_design_version").map_err(internal)?,
        }))
    }

    async fn touch_token(&self, _flow: &LoginFlow, id: TokenId, at: OffsetDateTime) -> StoreResult<()> {
        sqlx::query(
            "UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
        )
        .bind(ms(at))
        .bind(id.to_string())
        .bind(ms(at) - 60_000)
        .execute(&self.pool)
        .await
        .map_err(internal)?;
        Ok(())
    }

    async fn touch_session(&self, _flow: &LoginFlow, id: SessionId, at: OffsetDateTime) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?")
            .bind(ms(at))
            .bind(id.to_string())
            .bind(ms(at))
            .execute(&self.pool)
            .await
            .map_err(internal)?;
        Ok(())
    }

    async fn end_session(&self, _flow: &LoginFlow, id: SessionId, event: NewAuditEvent) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?
            .rows_affected();
        // A session ended twice (two tabs logging out at once) is recorded once.
        if n > 0 {
            Self::append_in(&mut tx, event).await?;
        }
        tx.commit().await.map_err(internal)
    }

    async fn append_audit(&self, event: NewAuditEvent) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)
    }

    async fn own_user(&self, scope: &Scope<OwnAccount>) -> StoreResult<User> {
        self.user_in(scope.tenant_id(), scope.actor()).await
    }

    async fn password_hashes(&self, scope: &Scope<OwnAccount>, history: u32) -> StoreResult<Vec<String>> {
        let mut out = vec![self.own_password_hash(scope).await?];
        if history > 0 {
            let older: Vec<String> = sqlx::query_scalar(
                "SELECT h.password_hash FROM password_history h JOIN users u ON u.id = h.user_id \
                 WHERE h.user_id = ? AND u.tenant_id = ? ORDER BY h.replaced_at DESC, h.rowid DESC LIMIT ?",
            )
            .bind(scope.actor().to_string())
            .bind(scope.tenant_id().to_string())
            .bind(i64::from(history))
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
            out.extend(older);
        }
        Ok(out)
    }

    async fn own_password_hash(&self, scope: &Scope<OwnAccount>) -> StoreResult<String> {
        sqlx::query_scalar("SELECT password_hash FROM users WHERE id = ? AND tenant_id = ?")
            .bind(scope.actor().to_string())
            .bind(scope.tenant_id().to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?
            .ok_or(StoreError::NotFound)
    }

    async fn change_password(
        &self,
        scope: &Scope<OwnAccount>,
        new_hash: String,
        history: u32,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<()> {
        let (user, tenant) = (scope.actor().to_string(), scope.tenant_id().to_string());
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "INSERT INTO password_history (user_id, password_hash, replaced_at) \
             SELECT id, password_hash, ? FROM users WHERE id = ? AND tenant_id = ?",
        )
        .bind(ms(at))
        .bind(&user)
        .bind(&tenant)
        .execute(&mut *tx)
        .await
        .map_err(internal)?
        .rows_affected();
        Self::check_affected(n)?;
        sqlx::query(
            "DELETE FROM password_history WHERE user_id = ? AND rowid NOT IN \
             (SELECT rowid FROM password_history WHERE user_id = ? ORDER BY replaced_at DESC, rowid DESC LIMIT ?)",
        )
        .bind(&user)
        .bind(&user)
        .bind(i64::from(history))
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        sqlx::query(
            "UPDATE users SET password_hash = ?, must_change_password = 0, password_changed_at = ?, updated_at = ? \
             WHERE id = ? AND tenant_id = ?",
        )
        .bind(&new_hash)
        .bind(ms(at))
        .bind(ms(at))
        .bind(&user)
        .bind(&tenant)
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        sqlx::query("DELETE FROM sessions WHERE user_id = ? AND tenant_id = ? AND id <> ?")
            .bind(&user)
            .bind(&tenant)
            .bind(scope.session_id().to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        // The user's tokens end with the old password (they are refused from now on): said so
        // in the list of tokens, which no longer counts them against the limit.
        Self::revoke_tokens_in(&mut tx, &tenant, &user, at).await?;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)
    }

    async fn create_token(
        &self,
        scope: &Scope<OwnAccount>,
        token: NewApiToken,
        event: NewAuditEvent,
    ) -> StoreResult<ApiToken> {
        let mut tx = self.write_tx().await?;
        let in_use: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM api_tokens WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?",
        )
        .bind(scope.actor().to_string())
        .bind(ms(token.at))
        .fetch_one(&mut *tx)
        .await
        .map_err(internal)?;
        if in_use >= daicho_store::TOKENS_PER_USER {
            return Err(daicho_store::too_many_tokens());
        }
        sqlx::query(
            "INSERT INTO api_tokens (id, tenant_id, user_id, name, token_hash, read_only, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(token.id.to_string())
        .bind(scope.tenant_id().to_string())
        .bind(scope.actor().to_string())
        .bind(&token.name)
        .bind(&token.token_hash)
        .bind(token.read_only)
        .bind(ms(token.at))
        .bind(ms(token.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(catalogue_error)?;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)?;
        Ok(ApiToken {
            id: token.id,
            tenant_id: scope.tenant_id(),
            user_id: scope.actor(),
            name: token.name,
            read_only: token.read_only,
            created_at: token.at,
            expires_at: token.expires_at,
            last_used_at: None,
            revoked_at: None,
        })
    }

    async fn list_own_tokens(&self, scope: &Scope<OwnAccount>) -> StoreResult<Vec<ApiToken>> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, user_id, name, read_only, created_at, expires_at, last_used_at, revoked_at \
             FROM api_tokens WHERE user_id = ? AND tenant_id = ? ORDER BY created_at DESC",
        )
        .bind(scope.actor().to_string())
        .bind(scope.tenant_id().to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        rows.iter().map(|r| crate::rows::token_from_row(r, "")).collect()
    }

    async fn revoke_own_token(
        &self,
        scope: &Scope<OwnAccount>,
        id: TokenId,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<()> {
        self.write_one(
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND tenant_id = ? AND revoked_at IS NULL",
            )
            .bind(ms(at))
            .bind(id.to_string())
            .bind(scope.actor().to_string())
            .bind(scope.tenant_id().to_string()),
            event,
        )
        .await
    }

    async fn list_own_sessions(&self, scope: &Scope<OwnAccount>) -> StoreResult<Vec<Session>> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, user_id, created_at, last_seen_at, csrf_token, ip, user_agent FROM sessions \
             WHERE user_id = ? AND tenant_id = ? ORDER BY last_seen_at DESC",
        )
        .bind(scope.actor().to_string())
        .bind(scope.tenant_id().to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        rows.iter().map(|r| session_from_row(r, "")).collect()
    }

    async fn revoke_own_session(
        &self,
        scope: &Scope<OwnAccount>,
        id: SessionId,
        event: NewAuditEvent,
    ) -> StoreResult<()> {
        self.write_one(
            sqlx::query("DELETE FROM sessions WHERE id = ? AND user_id = ? AND tenant_id = ?")
                .bind(id.to_string())
                .bind(scope.actor().to_string())
                .bind(scope.tenant_id().to_string()),
            event,
        )
        .await
    }

    async fn set_language(
        &self,
        scope: &Scope<OwnAccount>,
        lang: LanguagePref,
        event: NewAuditEvent,
    ) -> StoreResult<()> {
        self.write_one(
            sqlx::query("UPDATE users SET language = ? WHERE id = ? AND tenant_id = ?")
                .bind(lang.as_str())
                .bind(scope.actor().to_string())
                .bind(scope.tenant_id().to_string()),
            event,
        )
        .await
    }

    async fn list_users(&self, scope: &Scope<ManageUsers>) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(
            "SELECT u.id, u.tenant_id, u.login_id, u.display_name, u.email, u.role, u.status, u.language, \
             u.must_change_password, u.password_changed_at, u.failed_logins, u.locked_until, u.created_at, u.updated_at \
             FROM users u WHERE u.tenant_id = ? ORDER BY u.login_id LIMIT 10000",
        )
        .bind(scope.tenant_id().to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn get_user(&self, scope: &Scope<ManageUsers>, id: UserId) -> StoreResult<User> {
        self.user_in(scope.tenant_id(), id).await
    }

    async fn create_user(&self, scope: &Scope<ManageUsers>, user: NewUser, event: NewAuditEvent) -> StoreResult<User> {
        let mut tx = self.write_tx().await?;
        Self::insert_user(&mut tx, scope.tenant_id(), &user).await?;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)?;
        self.user_in(scope.tenant_id(), user.id).await
    }

    async fn update_user(
        &self,
        scope: &Scope<ManageUsers>,
        id: UserId,
        p: UserProfile,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<User> {
        let tenant = scope.tenant_id().to_string();
        let mut tx = self.write_tx().await?;
        let old_role: Option<String> = sqlx::query_scalar("SELECT role FROM users WHERE id = ? AND tenant_id = ?")
            .bind(id.to_string())
            .bind(&tenant)
            .fetch_optional(&mut *tx)
            .await
            .map_err(internal)?;
        let old_role = old_role.ok_or(StoreError::NotFound)?;
        sqlx::query(
            "UPDATE users SET display_name = ?, email = ?, role = ?, language = ?, updated_at = ? WHERE id = ? AND tenant_id = ?",
        )
        .bind(p.display_name.as_str())
        .bind(p.email.as_str())
        .bind(p.role.as_str())
        .bind(p.language.as_str())
        .bind(ms(at))
        .bind(id.to_string())
        .bind(&tenant)
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        if old_role != p.role.as_str() {
            admin_remains(&mut tx, scope.tenant_id()).await?;
            Self::end_user_sessions(&mut tx, scope.tenant_id(), id, at).await?;
        }
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)?;
        self.user_in(scope.tenant_id(), id).await
    }

    async fn set_user_status(
        &self,
        scope: &Scope<ManageUsers>,
        id: UserId,
        status: UserStatus,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query("UPDATE users SET status = ?, updated_at = ? WHERE id = ? AND tenant_id = ?")
            .bind(status.as_str())
            .bind(ms(at))
            .bind(id.to_string())
            .bind(scope.tenant_id().to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?
            .rows_affected();
        Self::check_affected(n)?;
        if status == UserStatus::Disabled {
            admin_remains(&mut tx, scope.tenant_id()).await?;
            Self::end_user_sessions(&mut tx, scope.tenant_id(), id, at).await?;
        }
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)
    }

    async fn delete_user(&self, scope: &Scope<ManageUsers>, id: UserId, event: NewAuditEvent) -> StoreResult<()> {
        // Sessions and password history go with the user (ON DELETE CASCADE); audit events
        // keep the login ID and user id as text, so the history of a deleted user stays readable.
        let mut tx = self.write_tx().await?;
        let n = sqlx::query("DELETE FROM users WHERE id = ? AND tenant_id = ?")
            .bind(id.to_string())
            .bind(scope.tenant_id().to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?
            .rows_affected();
        Self::check_affected(n)?;
        admin_remains(&mut tx, scope.tenant_id()).await?;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)
    }

    async fn reset_password(
        &self,
        scope: &Scope<ManageUsers>,
        id: UserId,
        new_hash: String,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE users SET password_hash = ?, must_change_password = 1, password_changed_at = ?, failed_logins = 0, \
             locked_until = NULL, updated_at = ? WHERE id = ? AND tenant_id = ?",
        )
        .bind(&new_hash)
        .bind(ms(at))
        .bind(ms(at))
        .bind(id.to_string())
        .bind(scope.tenant_id().to_string())
        .execute(&mut *tx)
        .await
        .map_err(internal)?
        .rows_affected();
        Self::check_affected(n)?;
        Self::end_user_sessions(&mut tx, scope.tenant_id(), id, at).await?;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)
    }

    async fn unlock_user(&self, scope: &Scope<ManageUsers>, id: UserId, event: NewAuditEvent) -> StoreResult<()> {
        self.write_one(
            sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ? AND tenant_id = ?")
                .bind(id.to_string())
                .bind(scope.tenant_id().to_string()),
            event,
        )
        .await
    }

    async fn update_policy(
        &self,
        scope: &Scope<ManagePolicy>,
        policy: SecurityPolicy,
        event: NewAuditEvent,
    ) -> StoreResult<()> {
        let json = serde_json_string(&policy)?;
        self.write_one(
            sqlx::query("UPDATE tenants SET policy = ? WHERE id = ?").bind(&json).bind(scope.tenant_id().to_string()),
            event,
        )
        .await
    }

    async fn search_audit(
        &self,
        scope: &Scope<ReadAudit>,
        f: &AuditFilter,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>> {
        // Optional criteria as `(? IS NULL OR col = ?)`: one static statement, every value bound.
        let rows = sqlx::query(
            "SELECT seq, at, tenant_id, actor_id, actor_login, ip, user_agent, action, target, outcome, details, \
             prev_hash, hash FROM audit_events WHERE chain = ?1 \
             AND (?2 IS NULL OR actor_login = ?2) AND (?3 IS NULL OR action = ?3) AND (?4 IS NULL OR outcome = ?4) \
             AND (?5 IS NULL OR ip = ?5) AND (?6 IS NULL OR at >= ?6) AND (?7 IS NULL OR at < ?7) \
             AND (?8 IS NULL OR seq < ?8) ORDER BY seq DESC LIMIT ?9",
        )
        .bind(scope.tenant_id().to_string())
        .bind(f.login.as_deref())
        .bind(f.action.map(|a| a.as_str()))
        .bind(f.outcome.map(|o| o.as_str()))
        .bind(f.ip.as_deref())
        .bind(f.from.map(ms))
        .bind(f.until.map(ms))
        .bind(f.before_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn verify_audit_chain(&self, scope: &Scope<ReadAudit>) -> StoreResult<ChainReport> {
        self.verify_chain(&scope.tenant_id().to_string()).await
    }
}

/// Inside a change of a user's role, status or existence (the write lock held): refuses it
/// when it leaves the tenant without an active administrator (see `daicho_store::last_admin`).
async fn admin_remains(tx: &mut Transaction<'_, Sqlite>, tenant: TenantId) -> StoreResult<()> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE tenant_id = ? AND role = ? AND status = ?")
        .bind(tenant.to_string())
        .bind(daicho_domain::Role::TenantAdmin.as_str())
        .bind(UserStatus::Active.as_str())
        .fetch_one(&mut **tx)
        .await
        .map_err(internal)?;
    if n == 0 { Err(daicho_store::last_admin()) } else { Ok(()) }
}

fn serde_json_string(p: &SecurityPolicy) -> StoreResult<String> {
    serde_json::to_string(p).map_err(|e| StoreError::Internal(e.to_string()))
}

// --- user tables: helpers (identifiers come only from catalogue ids, see daicho_store::ut) ---

fn catalogue_error(e: sqlx::Error) -> StoreError {
    if let Some(db) = e.as_database_error()
        && db.is_unique_violation()
    {
        return StoreError::Conflict(FieldErrors::single("name", "taken"));
    }
    internal(e)
}

/// A unique-rule violation names the field (by id) whose value is taken.
fn record_error(e: sqlx::Error, table: &TableDef) -> StoreError {
    if let Some(db) = e.as_database_error()
        && db.is_unique_violation()
    {
        let hay = format!("{} {}", db.message(), db.constraint().unwrap_or(""));
        let mut errs = FieldErrors::new();
        for f in &table.fields {
            let hex = f.id.as_uuid().simple().to_string();
            if hay.contains(&hex) {
                errs.push_owned(f.id.to_string(), "taken");
            }
        }
        if errs.is_empty() {
            errs.push("record", "taken");
        }
        return StoreError::Conflict(errs);
    }
    internal(e)
}

fn storage_of(table: &TableDef, field: FieldId) -> Storage {
    table.fields.iter().find(|f| f.id == field).map(|f| f.kind.storage()).unwrap_or(Storage::Text)
}

/// Turns a page that SQLite returned as JSON (see `page_json`) into records, as the scope
/// sees them.
fn map_page(scope: &TableScope<View>, table: &TableDef, page: &str, out: &mut Vec<Record>) -> StoreResult<()> {
    let rows: Vec<Vec<serde_json::Value>> =
        serde_json::from_str(page).map_err(|e| StoreError::Internal(format!("a page of records as JSON: {e}")))?;
    for r in rows {
        let mut rec = daicho_store::rows::record(&crate::rows::JsonCols(r.into()), table)?;
        guard::redact(scope, &mut rec);
        out.push(rec);
    }
    Ok(())
}

/// The text of the last element of a JSON array of arrays, as SQLite writes a page (see
/// `page_json`), found without parsing the rest: brackets count only outside strings.
fn last_row(page: &str) -> Option<&str> {
    let bytes = page.as_bytes();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut last = None;
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' => {
                depth += 1;
                if depth == 2 {
                    start = i;
                }
            }
            b']' => {
                if depth == 2 {
                    last = Some((start, i + 1));
                }
                depth = depth.checked_sub(1)?;
            }
            _ => {}
        }
    }
    let (a, b) = last?;
    (depth == 0 && !in_string).then(|| &page[a..b])
}

fn record_columns(table: &TableDef) -> String {
    let mut cols: Vec<String> = daicho_store::rows::RECORD_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    cols.extend(table.fields.iter().map(|f| ut::field_ident(f.id)));
    cols.join(", ")
}

/// A record from a row selected with `record_columns(table)` (see `daicho_store::rows::record`).
fn record_from_row(r: &sqlx::sqlite::SqliteRow, table: &TableDef) -> StoreResult<Record> {
    daicho_store::rows::record(&crate::rows::Cols(r), table)
}

type ScalarQ<'q> = sqlx::query::QueryScalar<'q, Sqlite, i64, sqlx::sqlite::SqliteArguments>;
type PlainQ<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>;

fn bind_cell<'q>(q: ScalarQ<'q>, c: &Cell, storage: Storage) -> ScalarQ<'q> {
    match c {
        // A NULL is bound with the column's type: PostgreSQL refuses a text NULL for a bigint.
        Cell::Null => match storage {
            Storage::Text => q.bind(None::<String>),
            Storage::Int => q.bind(None::<i64>),
            Storage::Bool => q.bind(None::<bool>),
        },
        Cell::Text(s) => q.bind(s.clone()),
        Cell::Int(n) => q.bind(*n),
        Cell::Bool(b) => q.bind(*b),
    }
}

fn bind_cell_q<'q>(q: PlainQ<'q>, c: &Cell, storage: Storage) -> PlainQ<'q> {
    match c {
        // A NULL is bound with the column's type: PostgreSQL refuses a text NULL for a bigint.
        Cell::Null => match storage {
            Storage::Text => q.bind(None::<String>),
            Storage::Int => q.bind(None::<i64>),
            Storage::Bool => q.bind(None::<bool>),
        },
        Cell::Text(s) => q.bind(s.clone()),
        Cell::Int(n) => q.bind(*n),
        Cell::Bool(b) => q.bind(*b),
    }
}

impl SqliteStore {
    /// A plan decision made for `key` within `PLAN_MEMO_FOR`, if any.
    fn remembered_plan(&self, key: &str) -> Option<bool> {
        let plans = self.plans.lock().ok()?;
        plans.get(key).filter(|(at, _)| at.elapsed() < PLAN_MEMO_FOR).map(|(_, walk)| *walk)
    }

    fn remember_plan(&self, key: String, walk: bool) {
        let Ok(mut plans) = self.plans.lock() else { return };
        if plans.len() >= PLAN_MEMO_MAX {
            plans.retain(|_, (at, _)| at.elapsed() < PLAN_MEMO_FOR);
            if plans.len() >= PLAN_MEMO_MAX {
                plans.clear();
            }
        }
        plans.insert(key, (Instant::now(), walk));
    }

    /// Deletes a trashed table or field of the tenant for good, with its data, if it was trashed
    /// before `before` (ms; the trash job's cut-off: an item restored and trashed again after the
    /// job listed it stays for its whole period).
    async fn purge_in(
        &self,
        tenant: TenantId,
        table: TableId,
        field: Option<FieldId>,
        before: i64,
        event: NewAuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        no_links_into(&mut tx, tenant, table, field).await?;
        match field {
            None => {
                let n = sqlx::query("DELETE FROM user_tables WHERE id = ? AND tenant_id = ? AND deleted_at < ?")
                    .bind(table.to_string())
                    .bind(tenant.to_string())
                    .bind(before)
                    .execute(&mut *tx)
                    .await
                    .map_err(internal)?
                    .rows_affected();
                Self::check_affected(n)?;
                for ddl in drop_storage(table) {
                    sqlx::query(AssertSqlSafe(ddl)).execute(&mut *tx).await.map_err(internal)?;
                }
            }
            Some(f) => {
                let n = sqlx::query(
                    "DELETE FROM user_fields WHERE id = ? AND table_id = ? AND deleted_at < ? \
                     AND table_id IN (SELECT id FROM user_tables WHERE tenant_id = ? AND deleted_at IS NULL)",
                )
                .bind(f.to_string())
                .bind(table.to_string())
                .bind(before)
                .bind(tenant.to_string())
                .execute(&mut *tx)
                .await
                .map_err(internal)?
                .rows_affected();
                Self::check_affected(n)?;
                for ddl in drop_column(table, f) {
                    sqlx::query(AssertSqlSafe(ddl)).execute(&mut *tx).await.map_err(internal)?;
                }
                // Deleted for good means out of the records' histories too (an entry that
                // changed only this field goes with it).
                sqlx::query(
                    "UPDATE record_history SET changes = (SELECT json_group_array(json(value)) \
                     FROM json_each(record_history.changes) WHERE json_extract(value, '$[0]') <> ?1) \
                     WHERE table_id = ?2 AND instr(changes, ?1) > 0",
                )
                .bind(f.to_string())
                .bind(table.to_string())
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
                sqlx::query("DELETE FROM record_history WHERE table_id = ? AND changes = '[]'")
                    .bind(table.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(internal)?;
                // Nor does a saved view keep it: its sort keys and columns on it go, and a view
                // that filters by it goes with it (see `guard::spec_without_field`).
                let views: Vec<(String, String)> =
                    sqlx::query_as("SELECT id, spec FROM saved_views WHERE table_id = ? AND instr(spec, ?) > 0")
                        .bind(table.to_string())
                        .bind(f.to_string())
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(internal)?;
                for (id, spec) in views {
                    let spec: daicho_domain::view::ViewSpec =
                        serde_json::from_str(&spec).map_err(|_| StoreError::Internal("bad view spec".into()))?;
                    match guard::spec_without_field(&spec, f) {
                        Some(kept) => {
                            let kept = serde_json::to_string(&kept).map_err(|e| StoreError::Internal(e.to_string()))?;
                            sqlx::query("UPDATE saved_views SET spec = ? WHERE id = ?")
                                .bind(kept)
                                .bind(id)
                                .execute(&mut *tx)
                                .await
                                .map_err(internal)?;
                        }
                        None => {
                            sqlx::query("DELETE FROM saved_views WHERE id = ?")
                                .bind(id)
                                .execute(&mut *tx)
                                .await
                                .map_err(internal)?;
                        }
                    }
                }
            }
        }
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)
    }

    /// Decides how to find a keyword by reading up to `limit` matching ids.
    /// A page of a list as SQLite returns it: for each part of the list (records with a value
    /// in the sort field, then those without), the records as one JSON array of their columns
    /// in list order, and how many there are. `map_page` turns them into records.
    /// One page of a list as JSON texts (one per list part) with their row counts, every
    /// statement on `conn` (a pooled connection, or a read transaction that holds a snapshot).
    async fn page_json(
        &self,
        conn: &mut SqliteConnection,
        scope: &TableScope<View>,
        table: &TableDef,
        query: &RecordQuery,
    ) -> StoreResult<Vec<(String, i64)>> {
        guard::check_table(scope, table)?;
        guard::check_query(scope, query)?;
        let t = ut::table_ident(table.id);
        let (lt_gt, dir) = if query.descending { ("<", "DESC") } else { (">", "ASC") };
        let parts = daicho_store::list_parts(table, query)?;
        // Filter on one field, sort by another: SQLite's planner tends to take the filter's
        // index and sort every match, which is slow when many records match. Walking the sort
        // index and checking the filter on each row finds a page after about
        // limit x rows / matches rows, so it wins once matches exceed sqrt(limit x rows): a
        // bounded count decides.
        // The decision is remembered for a while per table, sort, filters and row scope.
        // The same reasoning for a common keyword: when it matches at least `threshold` records,
        // reading records in list order and asking the trigram index about each one finds a
        // page sooner than collecting every match.
        let keyword = match &query.keyword {
            // Three characters or more: the trigram index (no probe needed).
            Some(k) if k.chars().count() >= 3 => Some(KeywordPlan::Index(keyword_pattern(k).1)),
            // Two characters: the probe stops at a few pages' worth of matches; a keyword that
            // common is then checked per record (about limit / frequency records are read), a
            // rarer one is used as the complete list of ids the probe collected.
            Some(k) => Some(self.keyword_plan(conn, &t, k, (i64::from(query.limit) * 4).max(200)).await?),
            None => None,
        };
        // (Only a sort field with an index can be walked: a field of the table's own, not
        // multi-line text or a multiple choice, `field_indexes`; the system fields have none.)
        let indexed = |s: FieldId| table.fields.iter().find(|f| f.id == s).is_some_and(|f| f.kind.is_indexed());
        let walk_sort = match query.sort {
            Some(s) if query.keyword.is_none() && indexed(s) && query.filters.iter().any(|f| f.field != s) => {
                let memo_key =
                    format!("{t} {s} {} {:?} {:?}", query.limit, query.filters, guard::row_conditions(scope, table));
                if let Some(walk) = self.remembered_plan(&memo_key) {
                    walk.then_some(s)
                } else {
                    let rows: i64 =
                        sqlx::query_scalar("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = ?), 0)")
                            .bind(&t)
                            .fetch_one(&mut *conn)
                            .await
                            .map_err(internal)?;
                    let threshold = ((f64::from(query.limit) * rows as f64).sqrt() as i64).max(200);
                    let mut probe =
                        QueryBuilder::<Sqlite>::new(format!("SELECT COUNT(*) FROM (SELECT 1 FROM {t} WHERE 1 = 1"));
                    push_rows(&mut probe, guard::row_conditions(scope, table));
                    push_filters(&mut probe, table, &query.filters, None)?;
                    probe.push(" LIMIT ");
                    probe.push_bind(threshold);
                    probe.push(")");
                    let matches: i64 = probe.build_query_scalar().fetch_one(&mut *conn).await.map_err(internal)?;
                    self.remember_plan(memo_key, matches >= threshold);
                    (matches >= threshold).then_some(s)
                }
            }
            _ => None,
        };
        let mut out = Vec::new();
        let mut got = 0i64;
        for part in parts {
            let want = i64::from(query.limit) - got;
            if want <= 0 {
                break;
            }
            let order = match part {
                ListPart::ById => format!("id {dir}"),
                ListPart::Values(f) => format!("{} {dir}, {}id {dir}", ut::field_ident(f), then_order(&query.then)),
                ListPart::Empty(_) => format!("{}id {dir}", then_order(&query.then)),
            };
            // The page comes back as one JSON text (an array of each record's columns, in list
            // order) rather than row by row: the driver hands every row and every value across
            // threads, which cost more than SQLite reading them (the CSV export reads a whole
            // table in pages).
            let cols = record_columns(table);
            let mut qb = QueryBuilder::<Sqlite>::new(format!(
                "SELECT json_group_array(json_array({cols}) ORDER BY {order}), count(*) FROM (SELECT {cols} FROM {t} WHERE 1 = 1"
            ));
            push_rows(&mut qb, guard::row_conditions(scope, table));
            push_filters(&mut qb, table, &query.filters, walk_sort)?;
            if let Some(k) = &query.keyword {
                match (&keyword, part) {
                    // Newest (or oldest) first and nothing else narrows the list: the trigram
                    // index gives the page's ids in order and stops after them.
                    (Some(KeywordPlan::Index(pattern)), ListPart::ById)
                        if query.filters.is_empty()
                            && scope.rows().is_all()
                            && guard::visible_search_fields(scope, table).is_none() =>
                    {
                        qb.push(format!(" AND id IN (SELECT rowid FROM {t}_fts WHERE {t}_fts MATCH "));
                        qb.push_bind(pattern.clone());
                        if let Some((_, id)) = &query.after {
                            qb.push(format!(" AND rowid {lt_gt} "));
                            qb.push_bind(*id);
                        }
                        qb.push(format!(" ORDER BY rowid {dir} LIMIT "));
                        qb.push_bind(want);
                        qb.push(")");
                    }
                    (Some(plan), _) => push_keyword_plan(&mut qb, &t, plan),
                    (None, _) => {}
                }
                if let Some(visible) = guard::visible_search_fields(scope, table) {
                    push_visible_keyword(&mut qb, &visible, k);
                }
            }
            match part {
                ListPart::ById => {
                    if let Some((_, id)) = &query.after {
                        qb.push(format!(" AND id {lt_gt} "));
                        qb.push_bind(*id);
                    }
                }
                ListPart::Values(f) => {
                    let col = ut::field_ident(f);
                    qb.push(format!(" AND {col} IS NOT NULL"));
                    match &query.after {
                        Some((v, id)) if query.then.is_empty() => {
                            qb.push(format!(" AND ({col}, id) {lt_gt} ("));
                            push_cell(&mut qb, v);
                            qb.push(", ");
                            qb.push_bind(*id);
                            qb.push(")");
                        }
                        Some((v, id)) => {
                            qb.push(format!(" AND ({col} {lt_gt} "));
                            push_cell(&mut qb, v);
                            qb.push(format!(" OR ({col} = "));
                            push_cell(&mut qb, v);
                            qb.push(" AND ");
                            push_after_then(&mut qb, &query.then, &query.after_then, *id, query.descending);
                            qb.push("))");
                        }
                        None => {}
                    }
                }
                ListPart::Empty(f) => {
                    let col = ut::field_ident(f);
                    qb.push(format!(" AND {col} IS NULL"));
                    if let Some((Cell::Null, id)) = &query.after {
                        qb.push(" AND ");
                        push_after_then(&mut qb, &query.then, &query.after_then, *id, query.descending);
                    }
                }
            }
            qb.push(format!(" ORDER BY {order} LIMIT "));
            qb.push_bind(want);
            qb.push(")");
            let (page, n): (String, i64) = qb.build_query_as().fetch_one(&mut *conn).await.map_err(internal)?;
            got += n;
            out.push((page, n));
        }
        Ok(out)
    }

    async fn keyword_plan(
        &self,
        conn: &mut SqliteConnection,
        t: &str,
        k: &str,
        limit: i64,
    ) -> StoreResult<KeywordPlan> {
        let (fts, pattern) = keyword_pattern(k);
        let sql = if fts {
            format!("SELECT rowid FROM {t}_fts WHERE {t}_fts MATCH ?1 LIMIT ?2")
        } else {
            format!("SELECT rowid FROM {t}_fts WHERE body LIKE ?1 ESCAPE '\\' LIMIT ?2")
        };
        let ids: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(pattern)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await
            .map_err(internal)?;
        Ok(match (ids.len() as i64 >= limit, fts) {
            (false, _) => KeywordPlan::Ids(ids),
            (true, true) => KeywordPlan::Index(keyword_pattern(k).1),
            (true, false) => KeywordPlan::PerRow(keyword_pattern(k).1),
        })
    }

    /// Inserts a saved view after checking, in the same transaction, that its name is free
    /// among the views of the same owner (or the shared ones) and the count is within bounds.
    async fn insert_view(&self, tenant: TenantId, view: SavedView, event: NewAuditEvent) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let owner = view.owner.map(|o| o.to_string());
        let same: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM saved_views WHERE tenant_id = ? AND table_id = ? \
             AND ((owner_id IS NULL AND ? IS NULL) OR owner_id = ?)",
        )
        .bind(tenant.to_string())
        .bind(view.table_id.to_string())
        .bind(owner.clone())
        .bind(owner.clone())
        .fetch_all(&mut *tx)
        .await
        .map_err(internal)?;
        if same.iter().any(|n| n == view.name.as_str()) {
            return Err(StoreError::Conflict(FieldErrors::single("name", "taken")));
        }
        if same.len() >= daicho_domain::view::MAX_VIEWS {
            return Err(StoreError::Conflict(FieldErrors::single("name", "too_many")));
        }
        let spec = serde_json::to_string(&view.spec).map_err(|e| StoreError::Internal(e.to_string()))?;
        sqlx::query(
            "INSERT INTO saved_views (id, tenant_id, table_id, owner_id, name, spec, created_at, created_by) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(view.id.to_string())
        .bind(tenant.to_string())
        .bind(view.table_id.to_string())
        .bind(owner)
        .bind(view.name.as_str())
        .bind(spec)
        .bind(ms(view.created_at))
        .bind(view.created_by.to_string())
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)
    }

    async fn load_table(&self, tenant: TenantId, id: TableId) -> StoreResult<TableDef> {
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        load_def(&mut conn, tenant, id, false).await
    }

    /// The table with its trashed fields too, and also when it is trashed itself (for copies).
    async fn load_table_with_trash(&self, tenant: TenantId, id: TableId) -> StoreResult<TableDef> {
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        load_def(&mut conn, tenant, id, true).await
    }

    async fn get_record_in(&self, table: &TableDef, id: i64) -> StoreResult<Record> {
        let sql = format!("SELECT {} FROM {} WHERE id = {}", record_columns(table), ut::table_ident(table.id), ph(1));
        let mut r = self.reader().await?;
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut **r).await.map_err(internal)?;
        r.done();
        record_from_row(&row.ok_or(StoreError::NotFound)?, table)
    }
}

const ID_COLUMN: &str = "id INTEGER PRIMARY KEY AUTOINCREMENT";
/// A keyword probe reads at least this many matching ids: one more than lists count.
const COUNT_PROBE: i64 = 10_001;
const INT_TYPE: &str = "INTEGER";

fn ph(n: usize) -> String {
    format!("?{n}")
}

fn push_cell(qb: &mut QueryBuilder<Sqlite>, c: &Cell) {
    match c {
        Cell::Null => {
            qb.push("NULL");
        }
        Cell::Text(s) => {
            qb.push_bind(s.clone());
        }
        Cell::Int(n) => {
            qb.push_bind(*n);
        }
        Cell::Bool(b) => {
            qb.push_bind(*b);
        }
    }
}

fn push_cmp(qb: &mut QueryBuilder<Sqlite>, col: &str, op: &str, c: &Cell) {
    qb.push(format!(" AND {col} {op} "));
    push_cell(qb, c);
}

/// The filters as SQL conditions. With `walk_sort`, filters on other fields than that sort
/// field are written so that no index serves them: the sort index is walked instead.
fn push_filters(
    qb: &mut QueryBuilder<Sqlite>,
    table: &TableDef,
    filters: &[daicho_domain::table::Filter],
    walk_sort: Option<FieldId>,
) -> StoreResult<()> {
    for f in filters {
        let Some(def) = table.field(f.field) else { return Err(StoreError::NotFound) };
        // A unary plus keeps SQLite from using the column's index (see `list_records`).
        let col = match walk_sort {
            Some(s) if s != f.field => format!("+{}", ut::field_ident(f.field)),
            _ => ut::field_ident(f.field),
        };
        match &f.op {
            FilterOp::Eq(c) => push_cmp(qb, &col, "=", c),
            FilterOp::Gt(c) => push_cmp(qb, &col, ">", c),
            FilterOp::Gte(c) => push_cmp(qb, &col, ">=", c),
            FilterOp::Lt(c) => push_cmp(qb, &col, "<", c),
            FilterOp::Lte(c) => push_cmp(qb, &col, "<=", c),
            FilterOp::Contains(s) => {
                qb.push(format!(" AND {col} LIKE "));
                qb.push_bind(format!("%{}%", like_escape(s)));
                qb.push(" ESCAPE '\\'");
            }
            FilterOp::StartsWith(s) => {
                qb.push(format!(" AND {col} LIKE "));
                qb.push_bind(format!("{}%", like_escape(s)));
                qb.push(" ESCAPE '\\'");
            }
            FilterOp::Empty if def.kind.storage() == Storage::Text => {
                qb.push(format!(" AND ({col} IS NULL OR {col} = '')"));
            }
            FilterOp::Empty => {
                qb.push(format!(" AND {col} IS NULL"));
            }
            FilterOp::NotEmpty => {
                qb.push(format!(" AND {col} IS NOT NULL"));
            }
            FilterOp::Includes(values) => {
                // Stored one choice per line: a whole line. (By `instr`, which tells case
                // apart, as choices do: SQLite's LIKE would take "s" for "S".)
                qb.push(" AND (1 = 0");
                for v in values {
                    qb.push(format!(" OR instr(char(10) || {col} || char(10), "));
                    qb.push_bind(format!("\n{v}\n"));
                    qb.push(") > 0");
                }
                qb.push(")");
            }
            FilterOp::AnyOf(values) => {
                qb.push(format!(" AND {col} IN ("));
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        qb.push(", ");
                    }
                    push_cell(qb, v);
                }
                qb.push(")");
            }
        }
    }
    Ok(())
}

/// ORDER BY terms for the further sort keys, each followed by ", ": empty values last.
fn then_order(then: &[(FieldId, bool)]) -> String {
    then.iter()
        .map(|(f, desc)| {
            let c = ut::field_ident(*f);
            format!("({c} IS NULL), {c} {}, ", if *desc { "DESC" } else { "ASC" })
        })
        .collect()
}

/// The keyset condition "after this row" over the further sort keys and then the id: for some
/// key, every earlier key equal and this one after (a value sorts before an empty one), or all
/// equal and the id after.
fn push_after_then(qb: &mut QueryBuilder<Sqlite>, then: &[(FieldId, bool)], vals: &[Cell], id: i64, id_desc: bool) {
    qb.push("(");
    let mut first = true;
    for i in 0..=then.len() {
        let value = vals.get(i).unwrap_or(&Cell::Null);
        if i < then.len() && *value == Cell::Null {
            continue; // nothing sorts after an empty value within its key
        }
        if !first {
            qb.push(" OR ");
        }
        first = false;
        qb.push("(1 = 1");
        for (j, (f, _)) in then.iter().enumerate().take(i) {
            let col = ut::field_ident(*f);
            match vals.get(j).unwrap_or(&Cell::Null) {
                Cell::Null => {
                    qb.push(format!(" AND {col} IS NULL"));
                }
                c => push_cmp(qb, &col, "=", c),
            }
        }
        match then.get(i) {
            Some((f, desc)) => {
                let col = ut::field_ident(*f);
                qb.push(format!(" AND ({col} {} ", if *desc { "<" } else { ">" }));
                push_cell(qb, value);
                qb.push(format!(" OR {col} IS NULL)"));
            }
            None => {
                qb.push(format!(" AND id {} ", if id_desc { "<" } else { ">" }));
                qb.push_bind(id);
            }
        }
        qb.push(")");
    }
    qb.push(")");
}

/// Escapes LIKE's wildcards so that a search for "100%" finds the text "100%".
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Keyword search through the table's FTS5 trigram index: three or more characters use the
/// index (a phrase query matches any substring); two characters scan the index's text.
/// How a keyword is found. `Ids`: every matching record's id, when fewer than the probe's
/// limit match (read from the trigram index, or from one pass over the search text that ends
/// early). `Index`: a common keyword of three characters or more, found through the trigram
/// index (in list order when nothing else narrows the list). `PerRow`: a common two-character
/// keyword, checked on each record the list reads in its own order.
enum KeywordPlan {
    Ids(Vec<i64>),
    Index(String),
    PerRow(String),
}

/// A keyword as an FTS5 phrase (three characters or more) or a LIKE pattern (two).
fn keyword_pattern(k: &str) -> (bool, String) {
    if k.chars().count() >= 3 {
        (true, format!("\"{}\"", k.replace('"', "\"\"")))
    } else {
        (false, format!("%{}%", like_escape(k)))
    }
}

fn push_keyword_plan(qb: &mut QueryBuilder<Sqlite>, t: &str, plan: &KeywordPlan) {
    match plan {
        KeywordPlan::Ids(ids) if ids.is_empty() => {
            qb.push(" AND 1 = 0");
        }
        KeywordPlan::Ids(ids) => {
            qb.push(" AND id IN (");
            let mut sep = qb.separated(", ");
            for id in ids {
                sep.push_bind(*id);
            }
            qb.push(")");
        }
        KeywordPlan::Index(pattern) => {
            qb.push(format!(" AND id IN (SELECT rowid FROM {t}_fts WHERE {t}_fts MATCH "));
            qb.push_bind(pattern.clone());
            qb.push(")");
        }
        KeywordPlan::PerRow(pattern) => {
            qb.push(format!(" AND EXISTS (SELECT 1 FROM {t}_fts WHERE rowid = {t}.id AND body LIKE "));
            qb.push_bind(pattern.clone());
            qb.push(" ESCAPE '\\')");
        }
    }
}

/// Renders a scope's row conditions (see `guard::row_conditions`).
fn push_rows(qb: &mut QueryBuilder<Sqlite>, conds: Vec<Vec<RowCond>>) {
    for any in conds {
        qb.push(" AND (1 = 0");
        for c in any {
            match c {
                RowCond::True => {
                    qb.push(" OR 1 = 1");
                }
                RowCond::False => {}
                RowCond::CreatedBy(me) => {
                    qb.push(" OR created_by = ");
                    qb.push_bind(me);
                }
                RowCond::FieldIs(f, me) => {
                    qb.push(format!(" OR {} = ", ut::field_ident(f)));
                    qb.push_bind(me);
                }
            }
        }
        qb.push(")");
    }
}

/// With hidden fields, a keyword must also be found in a visible field: the index narrows
/// the rows, this confirms them.
fn push_visible_keyword(qb: &mut QueryBuilder<Sqlite>, visible: &[FieldId], k: &str) {
    qb.push(" AND (1 = 0");
    for f in visible {
        qb.push(format!(" OR {} LIKE ", ut::field_ident(*f)));
        qb.push_bind(format!("%{}%", like_escape(k)));
        qb.push(" ESCAPE '\\'");
    }
    qb.push(")");
}

/// Reads a record inside the caller's transaction (it sees that transaction's own writes).
async fn read_record_tx(tx: &mut Transaction<'_, Sqlite>, table: &TableDef, id: i64) -> StoreResult<Record> {
    let sql = format!("SELECT {} FROM {} WHERE id = {}", record_columns(table), ut::table_ident(table.id), ph(1));
    let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_one(&mut **tx).await.map_err(internal)?;
    record_from_row(&row, table)
}

/// Refuses a new table when the tenant has MAX_TABLES, and a new field when the table has
/// MAX_FIELDS, those in the trash included (they keep their storage until purged, and a
/// restore brings them back), inside the creating transaction.
async fn count_tables(tx: &mut Transaction<'_, Sqlite>, tenant: TenantId) -> StoreResult<()> {
    let sql = "SELECT COUNT(*) FROM user_tables WHERE tenant_id = ?";
    check_room(tx, sql, tenant.to_string(), daicho_domain::table::MAX_TABLES, "tables").await
}

async fn count_fields(tx: &mut Transaction<'_, Sqlite>, table: TableId) -> StoreResult<()> {
    let sql = "SELECT COUNT(*) FROM user_fields WHERE table_id = ?";
    check_room(tx, sql, table.to_string(), daicho_domain::table::MAX_FIELDS, "fields").await
}

async fn check_room(
    tx: &mut Transaction<'_, Sqlite>,
    sql: &'static str,
    id: String,
    max: usize,
    what: &'static str,
) -> StoreResult<()> {
    let n: i64 = sqlx::query_scalar(sql).bind(id).fetch_one(&mut **tx).await.map_err(internal)?;
    daicho_store::room_left(n, max, what)
}

/// A table's definition read through `conn` (a transaction sees its own changes). Without
/// `with_trash`, a trashed table is NotFound and trashed fields are left out; with it, both are
/// loaded under the names they had.
async fn load_def(
    conn: &mut SqliteConnection,
    tenant: TenantId,
    id: TableId,
    with_trash: bool,
) -> StoreResult<TableDef> {
    // One statement for the table and its fields (a LEFT JOIN: a table may have none yet).
    let sql = if with_trash {
        "SELECT t.name AS t_name, t.trashed_name AS t_trashed, t.description, t.created_at, f.id AS f_id, \
         f.position, COALESCE(f.trashed_name, f.name) AS f_name, f.kind, f.rules \
         FROM user_tables t LEFT JOIN user_fields f ON f.table_id = t.id \
         WHERE t.id = ? AND t.tenant_id = ? ORDER BY f.position, f.created_at, f.id"
    } else {
        "SELECT t.name AS t_name, NULL AS t_trashed, t.description, t.created_at, f.id AS f_id, f.position, \
         f.name AS f_name, f.kind, f.rules \
         FROM user_tables t LEFT JOIN user_fields f ON f.table_id = t.id AND f.deleted_at IS NULL \
         WHERE t.id = ? AND t.tenant_id = ? AND t.deleted_at IS NULL ORDER BY f.position, f.created_at, f.id"
    };
    let rows =
        sqlx::query(sql).bind(id.to_string()).bind(tenant.to_string()).fetch_all(&mut *conn).await.map_err(internal)?;
    let first = rows.first().ok_or(StoreError::NotFound)?;
    let bad = |what: &str| StoreError::Internal(format!("catalogue value does not parse: {what}"));
    let mut defs = Vec::new();
    for f in &rows {
        let Some(fid) = f.try_get::<Option<String>, _>("f_id").map_err(internal)? else { continue };
        let kind: String = f.try_get("kind").map_err(internal)?;
        let rules: String = f.try_get("rules").map_err(internal)?;
        let name: String = f.try_get("f_name").map_err(internal)?;
        let pos: i64 = f.try_get("position").map_err(internal)?;
        defs.push(FieldDef {
            id: fid.parse().map_err(|_| bad("field id"))?,
            name: Name::stored(&name).map_err(|_| bad("field name"))?,
            kind: serde_json::from_str(&kind).map_err(|_| bad("field kind"))?,
            rules: serde_json::from_str(&rules).map_err(|_| bad("field rules"))?,
            position: u32::try_from(pos).unwrap_or(0),
        });
    }
    let name: String = match first.try_get::<Option<String>, _>("t_trashed").map_err(internal)? {
        Some(n) => n,
        None => first.try_get("t_name").map_err(internal)?,
    };
    Ok(TableDef {
        id,
        tenant_id: tenant,
        name: Name::stored(&name).map_err(|_| bad("table name"))?,
        description: first.try_get("description").map_err(internal)?,
        fields: defs,
        created_at: daicho_store::rows::time_ms(first.try_get("created_at").map_err(internal)?)?,
    })
}

/// Rewrites the keyword index of a table from its live searchable fields, in SQL (the same
/// text as `search_text`: each value followed by a newline).
async fn rebuild_search(tx: &mut Transaction<'_, Sqlite>, def: &TableDef) -> StoreResult<()> {
    let t = ut::table_ident(def.id);
    sqlx::query(AssertSqlSafe(format!("DELETE FROM {t}_fts"))).execute(&mut **tx).await.map_err(internal)?;
    let sql = format!("INSERT INTO {t}_fts (rowid, body) SELECT id, {} FROM {t}", ut::search_expr(def, "char(10)"));
    sqlx::query(AssertSqlSafe(sql)).execute(&mut **tx).await.map_err(internal)?;
    Ok(())
}

/// The statements that drop a table's storage.
fn drop_storage(table: TableId) -> Vec<String> {
    let t = ut::table_ident(table);
    vec![format!("DROP TABLE IF EXISTS {t}_fts"), format!("DROP TABLE IF EXISTS {t}")]
}

/// The statements that drop a field's indexes and column.
fn drop_column(table: TableId, field: FieldId) -> Vec<String> {
    vec![
        format!("DROP INDEX IF EXISTS i_{}", field.as_uuid().simple()),
        format!("DROP INDEX IF EXISTS {}", ut::unique_ident(field)),
        format!("ALTER TABLE {} DROP COLUMN {}", ut::table_ident(table), ut::field_ident(field)),
    ]
}

/// Creates a user table's SQL table and its keyword index, inside the caller's transaction.
async fn create_storage(tx: &mut Transaction<'_, Sqlite>, id: TableId) -> StoreResult<()> {
    let ddl = format!(
        "CREATE TABLE {} ({ID_COLUMN}, version BIGINT NOT NULL, created_at BIGINT NOT NULL, created_by TEXT NOT NULL, \
         updated_at BIGINT NOT NULL, updated_by TEXT NOT NULL)",
        ut::table_ident(id)
    );
    sqlx::query(AssertSqlSafe(ddl)).execute(&mut **tx).await.map_err(internal)?;
    // The keyword index: FTS5 with the trigram tokenizer finds substrings, also in Japanese.
    let fts = format!("CREATE VIRTUAL TABLE {}_fts USING fts5(body, tokenize = 'trigram')", ut::table_ident(id));
    sqlx::query(AssertSqlSafe(fts)).execute(&mut **tx).await.map_err(internal)?;
    for ddl in ut::system_indexes(id) {
        sqlx::query(AssertSqlSafe(ddl)).execute(&mut **tx).await.map_err(internal)?;
    }
    Ok(())
}

/// Adds a field's column and its index (unique or for filtering and sorting), inside the
/// caller's transaction.
async fn add_column(tx: &mut Transaction<'_, Sqlite>, table: TableId, field: &FieldDef) -> StoreResult<()> {
    let ddl = format!(
        "ALTER TABLE {} ADD COLUMN {} {}",
        ut::table_ident(table),
        ut::field_ident(field.id),
        column_type(field)
    );
    sqlx::query(AssertSqlSafe(ddl)).execute(&mut **tx).await.map_err(internal)?;
    for ddl in field_indexes(table, field) {
        sqlx::query(AssertSqlSafe(ddl)).execute(&mut **tx).await.map_err(internal)?;
    }
    Ok(())
}

/// The SQL type of a field's column. An auto-number is the record number, computed by the
/// database from the id.
fn column_type(field: &FieldDef) -> &'static str {
    if field.kind.is_generated() {
        return "INTEGER GENERATED ALWAYS AS (id) VIRTUAL";
    }
    match field.kind.storage() {
        Storage::Text => "TEXT",
        Storage::Int => INT_TYPE,
        // A checkbox is never empty: records that were there before it read as unticked, as a
        // new record that is not given it does (`guard::defaults`).
        Storage::Bool => "INTEGER DEFAULT 0",
    }
}

/// For a change that makes a field unique: how many records share their (new) value of the
/// field with another record, and the first of them ordered by value, each with its value as
/// shown and the reason.
async fn duplicates(
    tx: &mut Transaction<'_, Sqlite>,
    def: &TableDef,
    field: &FieldDef,
) -> StoreResult<(u64, Vec<(i64, String, &'static str)>)> {
    let t = ut::table_ident(def.id);
    let col = ut::field_ident(field.id);
    let shared = format!("SELECT {col} FROM {t} WHERE {col} IS NOT NULL GROUP BY {col} HAVING count(*) > 1");
    let count = format!("SELECT count(*) FROM {t} WHERE {col} IN ({shared})");
    let n: i64 = sqlx::query_scalar(AssertSqlSafe(count)).fetch_one(&mut **tx).await.map_err(internal)?;
    if n == 0 {
        return Ok((0, Vec::new()));
    }
    let one = TableDef { fields: vec![field.clone()], ..def.clone() };
    let first = format!(
        "SELECT {} FROM {t} WHERE {col} IN ({shared}) ORDER BY {col}, id LIMIT {}",
        record_columns(&one),
        daicho_store::RETYPE_REPORT_MAX
    );
    let rows = sqlx::query(AssertSqlSafe(first)).fetch_all(&mut **tx).await.map_err(internal)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let rec = record_from_row(r, &one)?;
        let cell = rec.cells.first().map(|(_, c)| c.clone()).unwrap_or(Cell::Null);
        let shown = match field.present(&cell) {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        out.push((rec.id, shown, "duplicate"));
    }
    Ok((u64::try_from(n).unwrap_or(0), out))
}

/// A field's index: unique when the rule says so, else (field, id) for filtering and sorting
/// (the id breaks ties, as the keyset uses it); none where `FieldKind::is_indexed` says so.
fn field_indexes(table: TableId, field: &FieldDef) -> Vec<String> {
    if field.rules.unique {
        vec![format!(
            "CREATE UNIQUE INDEX {} ON {} ({})",
            ut::unique_ident(field.id),
            ut::table_ident(table),
            ut::field_ident(field.id)
        )]
    } else if !field.kind.is_indexed() {
        Vec::new()
    } else {
        vec![format!(
            "CREATE INDEX i_{} ON {} ({}, id)",
            field.id.as_uuid().simple(),
            ut::table_ident(table),
            ut::field_ident(field.id)
        )]
    }
}

/// Inserts many records with multi-row INSERTs (rows with the same fields together, as many
/// per statement as the parameter limit allows), then fills the keyword index for all of them
/// with one INSERT … SELECT, inside the caller's transaction (which holds the write lock, so
/// the new ids are exactly those above the table's previous high-water mark).
/// The page cache of a connection while it writes an import, in KiB (see `import_records`).
const IMPORT_CACHE_KIB: u32 = 64 * 1024;

/// The transaction of one import on `conn`: every part as it arrives, the keyword index of the
/// new records filled once at the end, then the event and the commit. Returns early (the
/// transaction rolled back on drop) when a part fails or the parts end without `Done`.
#[allow(clippy::too_many_arguments)]
async fn import_on(
    conn: &mut SqliteConnection,
    waiting: Waiting<'_>,
    scope: &TableScope<Import>,
    table: &TableDef,
    first: ImportPart,
    parts: &mut ImportParts,
    at: OffsetDateTime,
    mut event: NewAuditEvent,
) -> StoreResult<(u64, u64)> {
    let who = scope.actor().to_string();
    let t = ut::table_ident(table.id);
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(internal)?;
    drop(waiting);
    check_design(&mut tx, table).await?;
    let before: i64 = sqlx::query_scalar("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = ?), 0)")
        .bind(&t)
        .fetch_one(&mut *tx)
        .await
        .map_err(internal)?;
    let w = ImportWrite { scope, table, who: &who, at, event: &event };
    let (inserted, updated, details) = daicho_store::write_parts(&w, first, parts, &mut ImportTx(&mut tx)).await?;
    if inserted > 0 {
        let fts = format!(
            "INSERT INTO {t}_fts (rowid, body) SELECT id, {} FROM {t} WHERE id > ?",
            ut::search_expr(table, "char(10)")
        );
        fts_bulk_settings(&mut tx, &t, true).await?;
        sqlx::query(AssertSqlSafe(fts)).bind(before).execute(&mut *tx).await.map_err(internal)?;
        fts_bulk_settings(&mut tx, &t, false).await?;
    }
    event.details = details;
    SqliteStore::append_in(&mut tx, event).await?;
    tx.commit().await.map_err(internal)?;
    Ok((inserted, updated))
}

/// A link's target, as a field of kind `kind` would point at it, is live in `tx`'s catalogue
/// (its table and the field it shows, neither in the trash): else 409 `unknown_table`. Read in
/// the change's own transaction: a target trashed at the same moment is seen, never linked to.
async fn link_target_live(
    tx: &mut Transaction<'_, Sqlite>,
    tenant: TenantId,
    kind: &daicho_domain::table::FieldKind,
) -> StoreResult<()> {
    let daicho_domain::table::FieldKind::Link { table, show } = kind else { return Ok(()) };
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM user_fields f JOIN user_tables t ON t.id = f.table_id \
         WHERE t.id = ? AND t.tenant_id = ? AND t.deleted_at IS NULL AND f.id = ? AND f.deleted_at IS NULL",
    )
    .bind(table.to_string())
    .bind(tenant.to_string())
    .bind(show.to_string())
    .fetch_one(&mut **tx)
    .await
    .map_err(internal)?;
    if n == 1 { Ok(()) } else { Err(StoreError::Conflict(FieldErrors::single("link", "unknown_table"))) }
}

/// [`guard::check_no_links_into`] on the catalogue as `tx` reads it.
async fn no_links_into(
    tx: &mut Transaction<'_, Sqlite>,
    tenant: TenantId,
    table: TableId,
    field: Option<FieldId>,
) -> StoreResult<()> {
    let links: Vec<(String, String, String, String)> = sqlx::query_as(AssertSqlSafe(guard::live_links_sql("?")))
        .bind(tenant.to_string())
        .fetch_all(&mut **tx)
        .await
        .map_err(internal)?;
    guard::check_no_links_into(&links, table, field)
}

/// Refuses a write of records whose values were checked against a design that no longer stands
/// (a field's type or rules changed, or the field or the table went to the trash, after the
/// request read it). Runs inside the write's transaction, which holds the database's write
/// lock, so no change of design can come between this check and the commit.
async fn check_design(tx: &mut Transaction<'_, Sqlite>, table: &TableDef) -> StoreResult<()> {
    let rows: Vec<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT f.id, f.kind, f.rules FROM user_tables t \
         LEFT JOIN user_fields f ON f.table_id = t.id AND f.deleted_at IS NULL \
         WHERE t.id = ? AND t.tenant_id = ? AND t.deleted_at IS NULL",
    )
    .bind(table.id.to_string())
    .bind(table.tenant_id.to_string())
    .fetch_all(&mut **tx)
    .await
    .map_err(internal)?;
    daicho_store::design_stands(table, &rows)
}

/// FTS5's settings for filling the keyword index of many records at once (`bulk`), or its
/// defaults again, inside the caller's transaction (the settings are rows of the index's
/// config table, so a rollback undoes them too). In bulk, the index is built in memory in
/// pieces of 8 MiB instead of 1 MiB (fewer, larger segments) and its segments are not merged
/// as they are written (`automerge` 0). Measured with the benchmark's schema, 100,000 rows into
/// 900,000: 31,776 rows/s with the defaults, 46,689 with these (docs/PERFORMANCE.md). The
/// merging left over is done by later writes (automerge 4 again) or, above 16 segments on a
/// level, at once by FTS5's crisis merge; searches over the unmerged index were measured as
/// fast (0.62 against 0.18 ms for a common phrase, under 0.1 ms for the rest).
async fn fts_bulk_settings(tx: &mut Transaction<'_, Sqlite>, t: &str, bulk: bool) -> StoreResult<()> {
    let (automerge, hashsize): (i64, i64) = if bulk { (0, 8 << 20) } else { (4, 1 << 20) };
    for (key, value) in [("automerge", automerge), ("hashsize", hashsize)] {
        let sql = format!("INSERT INTO {t}_fts ({t}_fts, rank) VALUES (?1, ?2)");
        sqlx::query(AssertSqlSafe(sql)).bind(key).bind(value).execute(&mut **tx).await.map_err(internal)?;
    }
    Ok(())
}

/// An import's open transaction, as `daicho_store::write_parts` writes into it.
struct ImportTx<'a, 'c>(&'a mut Transaction<'c, Sqlite>);

#[async_trait]
impl daicho_store::ImportSink for ImportTx<'_, '_> {
    async fn insert(&mut self, w: &ImportWrite<'_>, rows: &[Vec<(FieldId, Cell)>]) -> StoreResult<()> {
        insert_rows(self.0, w.table, w.who, w.at, rows).await
    }

    async fn take_staged(&mut self, scope: &TableScope<Import>, id: &str) -> StoreResult<bool> {
        let n =
            sqlx::query("DELETE FROM staged_imports WHERE id = ? AND tenant_id = ? AND table_id = ? AND user_id = ?")
                .bind(id)
                .bind(scope.tenant_id().to_string())
                .bind(scope.table().to_string())
                .bind(scope.actor().to_string())
                .execute(&mut **self.0)
                .await
                .map_err(internal)?
                .rows_affected();
        Ok(n > 0)
    }

    async fn update(
        &mut self,
        w: &ImportWrite<'_>,
        scope: &TableScope<Import>,
        rows: &[(i64, Vec<(FieldId, Cell)>)],
        expects: &[daicho_store::RowExpects],
    ) -> StoreResult<u64> {
        overwrite_many(self.0, scope, w, rows, expects).await
    }
}

/// Overwrites many records at once (an import's part of updates by key), as `overwrite_in`
/// does one, in a few statements instead of five for each record: the records are read, each
/// checked (the scope covers it and lets its fields be written on it), written in multi-row
/// UPDATEs (rows that set the same fields together), read again for their history (one
/// multi-row INSERT) and their search text (filled in SQL, as an import's inserts are).
async fn overwrite_many(
    tx: &mut Transaction<'_, Sqlite>,
    scope: &TableScope<Import>,
    w: &ImportWrite<'_>,
    rows: &[(i64, Vec<(FieldId, Cell)>)],
    expects: &[daicho_store::RowExpects],
) -> StoreResult<u64> {
    let table = w.table;
    let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    // Record by record, in the file's order, where that order matters: a record named twice,
    // or a unique field written (a row may take a value an earlier row gives up, which one
    // multi-row statement, checking rows in an order of its own, would refuse).
    let unique = |f: &FieldId| table.fields.iter().any(|d| d.id == *f && d.rules.unique);
    if ids.iter().collect::<std::collections::HashSet<_>>().len() != ids.len()
        || rows.iter().any(|(_, cells)| cells.iter().any(|(f, _)| unique(f)))
    {
        let (mut n, mut seen) = (0, std::collections::HashSet::new());
        for (i, (id, cells)) in rows.iter().enumerate() {
            // (Checked before each write, on the record as it stands then: covered first, then
            // not changed after the file's time, which only its first row in the part can
            // say: the next finds it changed by the first.)
            let now = read_records_tx(tx, table, &[*id]).await?;
            let r = now.get(id).ok_or(StoreError::NotFound)?;
            guard::check_update_row(scope, r, expects.get(i), seen.insert(*id))?;
            n += u64::from(!guard::changed_cells(r, cells).is_empty());
            SqliteStore::overwrite_in(tx, scope, table, *id, cells, w.at, w.who, w.event, None).await?;
        }
        return Ok(n);
    }
    let old = read_records_tx(tx, table, &ids).await?;
    let changed = guard::planned_updates(scope, &old, rows, expects)?;
    let rows = &changed[..];
    let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let t = ut::table_ident(table.id);
    for group in rows.chunk_by(|a, b| a.1.iter().map(|(f, _)| f).eq(b.1.iter().map(|(f, _)| f))) {
        let fields: Vec<FieldId> = group[0].1.iter().map(|(f, _)| *f).collect();
        let sets: String =
            fields.iter().enumerate().map(|(i, f)| format!(", {} = v.column{}", ut::field_ident(*f), i + 2)).collect();
        let chunk = (30_000 / (1 + fields.len())).clamp(1, 500);
        for part in group.chunks(chunk) {
            let mut qb =
                QueryBuilder::<Sqlite>::new(format!("UPDATE {t} SET version = {t}.version + 1, updated_at = "));
            qb.push_bind(ms(w.at)).push(", updated_by = ").push_bind(w.who.to_owned()).push(&sets).push(" FROM (");
            qb.push_values(part, |mut b, (id, cells)| {
                b.push_bind(*id);
                for (f, c) in cells {
                    push_cell_value(&mut b, c, storage_of(table, *f));
                }
            });
            qb.push(format!(") AS v WHERE {t}.id = v.column1"));
            let n = qb.build().execute(&mut **tx).await.map_err(|e| record_error(e, table))?.rows_affected();
            if n != part.len() as u64 {
                return Err(StoreError::NotFound);
            }
        }
    }
    let now = read_records_tx(tx, table, &ids).await?;
    let entries = guard::history_entries(&ids, &old, &now)?;
    let (table_id, at, actor) = (table.id.to_string(), ms(w.event.at), w.event.actor_id.map(|a| a.to_string()));
    for part in entries.chunks(500) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO record_history (table_id, record_id, version, at, actor_id, actor_login, changes) ",
        );
        qb.push_values(part, |mut b, (id, version, changes)| {
            b.push_bind(table_id.clone())
                .push_bind(*id)
                .push_bind(*version)
                .push_bind(at)
                .push_bind(actor.clone())
                .push_bind(w.event.actor_login.clone())
                .push_bind(changes.clone());
        });
        qb.build().execute(&mut **tx).await.map_err(internal)?;
    }
    let list = serde_json::Value::from(ids.clone()).to_string();
    let gone = format!("DELETE FROM {t}_fts WHERE rowid IN (SELECT value FROM json_each(?1))");
    sqlx::query(AssertSqlSafe(gone)).bind(&list).execute(&mut **tx).await.map_err(internal)?;
    let fts = format!(
        "INSERT INTO {t}_fts (rowid, body) SELECT id, {} FROM {t} WHERE id IN (SELECT value FROM json_each(?1))",
        ut::search_expr(table, "char(10)")
    );
    sqlx::query(AssertSqlSafe(fts)).bind(&list).execute(&mut **tx).await.map_err(internal)?;
    Ok(ids.len() as u64)
}

/// Records by id, inside the caller's transaction (those that exist), in statements of 500.
async fn read_records_tx(
    tx: &mut Transaction<'_, Sqlite>,
    table: &TableDef,
    ids: &[i64],
) -> StoreResult<std::collections::HashMap<i64, Record>> {
    let sql = format!(
        "SELECT {} FROM {} WHERE id IN (SELECT value FROM json_each(?1))",
        record_columns(table),
        ut::table_ident(table.id)
    );
    let mut out = std::collections::HashMap::with_capacity(ids.len());
    for part in ids.chunks(500) {
        let list = serde_json::Value::from(part.to_vec()).to_string();
        for row in sqlx::query(AssertSqlSafe(sql.clone())).bind(list).fetch_all(&mut **tx).await.map_err(internal)? {
            let r = record_from_row(&row, table)?;
            out.insert(r.id, r);
        }
    }
    Ok(out)
}

/// Inserts records (without their search text) in multi-row statements inside the caller's
/// transaction.
async fn insert_rows(
    tx: &mut Transaction<'_, Sqlite>,
    table: &TableDef,
    who: &str,
    at: OffsetDateTime,
    rows: &[Vec<(FieldId, Cell)>],
) -> StoreResult<()> {
    let t = ut::table_ident(table.id);
    for group in rows.chunk_by(|a, b| a.iter().map(|(f, _)| f).eq(b.iter().map(|(f, _)| f))) {
        let fields: Vec<FieldId> = group[0].iter().map(|(f, _)| *f).collect();
        let per_row = 5 + fields.len();
        let chunk = (30_000 / per_row).clamp(1, 500);
        for part in group.chunks(chunk) {
            let mut qb = QueryBuilder::<Sqlite>::new(format!(
                "INSERT INTO {t} (version, created_at, created_by, updated_at, updated_by{}) ",
                fields.iter().map(|f| format!(", {}", ut::field_ident(*f))).collect::<String>()
            ));
            qb.push_values(part, |mut b, row| {
                b.push_bind(1i64)
                    .push_bind(ms(at))
                    .push_bind(who.to_owned())
                    .push_bind(ms(at))
                    .push_bind(who.to_owned());
                for (f, c) in row {
                    push_cell_value(&mut b, c, storage_of(table, *f));
                }
            });
            qb.build().execute(&mut **tx).await.map_err(|e| record_error(e, table))?;
        }
    }
    Ok(())
}

/// A cell as the next value of a multi-row INSERT, bound with its column's type (also when
/// empty).
fn push_cell_value(b: &mut sqlx::query_builder::Separated<'_, Sqlite, &'static str>, c: &Cell, storage: Storage) {
    match (c, storage) {
        (Cell::Null, Storage::Text) => b.push_bind(None::<String>),
        (Cell::Null, Storage::Int) => b.push_bind(None::<i64>),
        (Cell::Null, Storage::Bool) => b.push_bind(None::<bool>),
        (Cell::Text(s), _) => b.push_bind(s.clone()),
        (Cell::Int(n), _) => b.push_bind(*n),
        (Cell::Bool(v), _) => b.push_bind(*v),
    };
}

/// Inserts one record (and its search text) inside the caller's transaction.
async fn insert_in(
    tx: &mut Transaction<'_, Sqlite>,
    table: &TableDef,
    who: &str,
    at: OffsetDateTime,
    cells: &[(FieldId, Cell)],
) -> StoreResult<i64> {
    let mut cols =
        vec!["version".to_owned(), "created_at".into(), "created_by".into(), "updated_at".into(), "updated_by".into()];
    cols.extend(cells.iter().map(|(f, _)| ut::field_ident(*f)));
    let params: Vec<String> = (1..=cols.len()).map(ph).collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({}) RETURNING id",
        ut::table_ident(table.id),
        cols.join(", "),
        params.join(", ")
    );
    let mut q =
        sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql)).bind(1i64).bind(ms(at)).bind(who).bind(ms(at)).bind(who);
    for (f, c) in cells {
        q = bind_cell(q, c, storage_of(table, *f));
    }
    let id = q.fetch_one(&mut **tx).await.map_err(|e| record_error(e, table))?;
    let fts = format!("INSERT INTO {}_fts (rowid, body) VALUES (?1, ?2)", ut::table_ident(table.id));
    sqlx::query(AssertSqlSafe(fts))
        .bind(id)
        .bind(search_text(table, cells))
        .execute(&mut **tx)
        .await
        .map_err(internal)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_row_of_a_page_is_found_whatever_its_strings_hold() {
        assert_eq!(last_row(r#"[[1,"a"]]"#), Some(r#"[1,"a"]"#));
        assert_eq!(last_row(r#"[[1,"a],["],[2,null,"]\"[","x\\"]]"#), Some(r#"[2,null,"]\"[","x\\"]"#));
        assert_eq!(last_row(r#"[[1,"\\\"]"],[3,"[[","]]"]]"#), Some(r#"[3,"[[","]]"]"#));
        assert_eq!(last_row(r#"[[1,"大阪 ]"],[2,"日本語"]]"#), Some(r#"[2,"日本語"]"#));
        // No row, or not a whole page: nothing to continue from.
        assert_eq!(last_row("[]"), None);
        assert_eq!(last_row(r#"[[1],[2,"a"#), None);
        assert_eq!(last_row(r#"[[1],[2]"#), None);
        assert_eq!(last_row(r#"[[1]]]"#), None);
        assert_eq!(last_row(""), None);
    }

    /// A store on a file of its own, with a table of blobs to write into.
    async fn file_store(dir: &tempfile::TempDir) -> SqliteStore {
        let url = format!("sqlite://{}", dir.path().join("daicho.sqlite").display());
        let store = SqliteStore::open(&url, PoolSettings::new(2)).await.expect("a store on a file");
        sqlx::query("CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)")
            .execute(store.pool_for_tests())
            .await
            .expect("a table");
        store
    }

    async fn write_pages(store: &SqliteStore, commits: usize, rows_per_commit: usize) {
        for _ in 0..commits {
            let mut tx = store.pool.begin().await.expect("a transaction");
            for _ in 0..rows_per_commit {
                sqlx::query("INSERT INTO blobs (b) VALUES (randomblob(3000))")
                    .execute(&mut *tx)
                    .await
                    .expect("an insert");
            }
            tx.commit().await.expect("a commit");
        }
    }

    #[tokio::test]
    async fn commits_leave_checkpoints_to_the_store_task_and_a_large_wal_is_cut_back() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = file_store(&dir).await;
        // (Without the store's task: a pass of it between two of the commits, on a machine
        // slow enough for them to take a second, would start the WAL again too.)
        store.checkpointer.stop();
        // 1,500 commits of a page or more each: SQLite's default would have checkpointed
        // inside the commit that passed 1,000 pages and then started the WAL again.
        write_pages(&store, 1500, 1).await;
        let done = store.checkpoint_for_tests().await.expect("a checkpoint");
        assert!(done.wal_frames >= 1500, "no commit checkpointed: {done:?}");
        assert_eq!(done.copied_frames, done.wal_frames, "a PASSIVE checkpoint without readers copies all");

        // One large transaction (about 30 MB), checkpointed, then one more write: the WAL
        // starts again from the top and its file is cut to the limit.
        write_pages(&store, 1, 10_000).await;
        let wal = dir.path().join("daicho.sqlite-wal");
        let big = std::fs::metadata(&wal).expect("the WAL file").len();
        assert!(big > checkpoint::JOURNAL_LIMIT, "{big}");
        store.checkpoint_for_tests().await.expect("a checkpoint");
        write_pages(&store, 1, 1).await;
        let after = std::fs::metadata(&wal).expect("the WAL file").len();
        assert!(after <= checkpoint::JOURNAL_LIMIT, "{big} -> {after}");
    }

    #[tokio::test]
    async fn the_store_task_checkpoints_what_commits_leave() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = file_store(&dir).await;
        write_pages(&store, 100, 1).await;
        // The task runs every second: of two passes counted from here, the second started
        // after the writes, and it found them all copied.
        let before = store.checkpoint_passes_for_tests();
        let deadline = Instant::now() + Duration::from_secs(20);
        while store.checkpoint_passes_for_tests() < before + 2 {
            assert!(Instant::now() < deadline, "the checkpoint task did not run");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let now = store.checkpoint_for_tests().await.expect("a checkpoint");
        assert!(now.wal_frames >= 100 && now.copied_frames == now.wal_frames, "{now:?}");
    }

    #[tokio::test]
    async fn plan_decisions_are_remembered_per_key_and_the_memo_stays_bounded() {
        let store = SqliteStore::open("sqlite::memory:", PoolSettings::new(1)).await.expect("an in-memory store");
        assert_eq!(store.remembered_plan("a"), None);
        store.remember_plan("a".into(), true);
        store.remember_plan("b".into(), false);
        assert_eq!((store.remembered_plan("a"), store.remembered_plan("b")), (Some(true), Some(false)));
        store.remember_plan("a".into(), false);
        assert_eq!(store.remembered_plan("a"), Some(false), "a new decision replaces the old one");
        for i in 0..PLAN_MEMO_MAX + 10 {
            store.remember_plan(format!("k{i}"), true);
        }
        let kept = store.plans.lock().expect("the memo").len();
        assert!(kept <= PLAN_MEMO_MAX, "{kept}");
        assert_eq!(store.remembered_plan(&format!("k{}", PLAN_MEMO_MAX + 9)), Some(true), "the newest is kept");
    }
}

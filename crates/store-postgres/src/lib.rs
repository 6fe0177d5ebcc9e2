//! The PostgreSQL store, for installations that outgrow one machine: several stateless Daicho
//! nodes share it. Same interface, same behaviour and same tests as the SQLite store; all of
//! Daicho's PostgreSQL SQL lives in this crate. Statements are `&'static str` and every value
//! is a bind parameter. Each tenant's audit chain is extended under a transaction-scoped
//! advisory lock on that chain, so concurrent writers on several nodes append in order.

mod rows;

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

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
    ApiToken, BaseDump, CatalogueDump, Credential, GrantChange, ImportParts, ImportWrite, JobRow, LoginFailure,
    NewApiToken, NewSession, NewTenant, NewUser, PasswordHistoryRow, PoolSettings, Record, RecordEvent, RecordHistory,
    RecordHistoryRow, RetypeReport, Session, SessionContext, SessionRow, Store, StoreError, StoreResult, TABLES,
    TenantRow, TokenContext, TrashItem, UserRow,
};
use daicho_store::{ListPart, copy, ut};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres, QueryBuilder, Row, SqlSafeStr, Transaction};
use time::OffsetDateTime;
use tokio_stream::StreamExt as _;

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
            Cow::Borrowed("search"),
            MigrationType::Simple,
            include_str!("../migrations/0004_search.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            5,
            Cow::Borrowed("groups"),
            MigrationType::Simple,
            include_str!("../migrations/0005_groups.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            6,
            Cow::Borrowed("api tokens"),
            MigrationType::Simple,
            include_str!("../migrations/0006_api_tokens.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            7,
            Cow::Borrowed("record history"),
            MigrationType::Simple,
            include_str!("../migrations/0007_record_history.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            8,
            Cow::Borrowed("saved views"),
            MigrationType::Simple,
            include_str!("../migrations/0008_saved_views.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            9,
            Cow::Borrowed("trash"),
            MigrationType::Simple,
            include_str!("../migrations/0009_trash.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            10,
            Cow::Borrowed("search lower"),
            MigrationType::Simple,
            include_str!("../migrations/0010_search_lower.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            11,
            Cow::Borrowed("design version"),
            MigrationType::Simple,
            include_str!("../migrations/0011_design_version.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            12,
            Cow::Borrowed("search joined"),
            MigrationType::Simple,
            include_str!("../migrations/0012_search_joined.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            13,
            Cow::Borrowed("access version"),
            MigrationType::Simple,
            include_str!("../migrations/0013_access_version.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            14,
            Cow::Borrowed("staged imports"),
            MigrationType::Simple,
            include_str!("../migrations/0014_staged_imports.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            15,
            Cow::Borrowed("checkbox and multiple choice"),
            MigrationType::Simple,
            include_str!("../migrations/0015_checkbox_multi_choice.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            16,
            Cow::Borrowed("system column indexes"),
            MigrationType::Simple,
            include_str!("../migrations/0016_system_column_indexes.sql").into_sql_str(),
            // Outside a transaction: it commits table by table (see the file).
            true,
        ),
    ])
}

#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// Connections kept warm between read statements (see `daicho_store::warm`).
    warm: std::sync::Arc<Warm<PoolConnection<Postgres>>>,
    /// Imports writing at once on this node: an import's writer holds a pooled connection
    /// while its handler, validating the next part, may need one too (key lookups, link
    /// checks), so writers never take more than a few of the pool's connections.
    import_turns: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Whether a database's `LC_CTYPE` tells letters beyond ASCII (pg_trgm's words, `lower()`):
/// not `C` or `POSIX`, which classify bytes.
fn ctype_classifies_unicode(ctype: &str) -> bool {
    !matches!(ctype, "C" | "POSIX")
}

/// How many imports write at once on one node: a quarter of the pool's connections, at least
/// one (see `PgStore::import_turns`).
/// Whether an import that wrote `written` rows into a table the planner thought held
/// `rows_before` (-1: never analysed) leaves its statistics stale enough to refresh them at once.
///
/// Autovacuum analyses a table about a minute after a tenth of it changed. Until then the
/// planner plans with the old counts: at 100,000 freshly imported records it expected 550 rows
/// for a filter that matched 20,207, and chose a bitmap scan and sort (15 ms) over walking the
/// sort index. Refreshing costs a sample of 30,000 rows, so only imports of a thousand rows or
/// more that change at least a tenth of the table pay it.
fn analyse_after_import(written: u64, rows_before: f32) -> bool {
    written >= 1_000 && written as f64 >= f64::from(rows_before.max(0.0)) / 10.0
}

fn import_writers(max_connections: u32) -> usize {
    (max_connections as usize / 4).max(1)
}

fn internal(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::RowNotFound => StoreError::NotFound,
        // A column read as a type it no longer has: a read queued behind a type change ran
        // with the design read before it. Asked again, the request reads the new design.
        sqlx::Error::ColumnDecode { ref index, .. } if index.trim_matches('"').starts_with("f_") => {
            tracing::warn!(error = %e, "a read met a field's column of another type (a type change meanwhile?)");
            daicho_store::design_changed()
        }
        other => {
            if let Some(db) = other.as_database_error() {
                if db.is_unique_violation() {
                    let field = match db.constraint() {
                        Some("tenants_code_key") => "code",
                        Some("users_login_unique") => "login_id",
                        _ => "id",
                    };
                    return StoreError::Conflict(FieldErrors::single(field, "taken"));
                }
                // Connection loss, shutdown, lock and serialization failures: retryable, not broken.
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                // NUL in text (22021), a character the encoding lacks (22P05), an index entry
                // over PostgreSQL's size limit (54000): a value the request should not have
                // carried, refused as invalid (the checks before the store are meant to stop
                // each of them first).
                if matches!(code.as_str(), "22021" | "22P05" | "54000") {
                    tracing::warn!(code = %code, message = %db.message(), "PostgreSQL refused a value");
                    return StoreError::Invalid(FieldErrors::single("value", "not_storable"));
                }
                // A cached plan whose result type changed (0A000), a column or table gone
                // (42703, 42P01): the statement was built from a design changed meanwhile (a
                // type change, a purge), as above.
                // (Only for a user table's own names, "t_…" and "f_…", and that one plan error:
                // anything else is a fault of ours, answered 500.)
                let message = db.message();
                let user_table = message.contains("\"t_") || message.contains("\"f_");
                if (code == "0A000" && message.contains("cached plan must not change result type"))
                    || (matches!(code.as_str(), "42703" | "42P01") && user_table)
                {
                    tracing::warn!(code = %code, message = %db.message(), "a statement met a design changed meanwhile");
                    return daicho_store::design_changed();
                }
                // A statement cancelled (57014: a statement timeout set on the database or role).
                if code.starts_with("08")
                    || code.starts_with("57P")
                    || code == "57014"
                    || code == "40001"
                    || code == "40P01"
                    || code == "55P03"
                {
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

impl PgStore {
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
        // The table's writer lock first, as every writer of records takes it (a design change
        // holds it off; see `lock_for_design`): a delete never waits inside the table behind one.
        check_design(&mut tx, table).await?;
        // The records' events are recorded after every record is locked and deleted, as every
        // write does (rows first, the tenant's chain of events last: one lock order).
        let mut events = Vec::new();
        for &id in ids {
            let old = Self::check_covered(&mut tx, scope, table, id).await?;
            events.extend(guard::deleting(&old, expected, since, each)?);
            sqlx::query("DELETE FROM record_history WHERE table_id = $1 AND record_id = $2")
                .bind(table.id.to_string())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
            let sql = format!("DELETE FROM {} WHERE id = {}", ut::table_ident(table.id), ph(1));
            let n = sqlx::query(AssertSqlSafe(sql))
                .persistent(false)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(internal)?
                .rows_affected();
            Self::check_affected(n)?;
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

    /// Connects (a `postgres://` URL; TLS per its `sslmode`) and applies pending migrations.
    pub async fn open(url: &str, settings: PoolSettings) -> StoreResult<Self> {
        let recheck = settings.recheck_idle_after;
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("bad database url: {e}")))?
            .application_name("daicho");
        let pool = PgPoolOptions::new()
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
            .connect_with(opts)
            .await
            .map_err(internal)?;
        let store = Self {
            pool,
            warm: std::sync::Arc::new(Warm::new(settings.max_connections.max(1), recheck)),
            import_turns: std::sync::Arc::new(tokio::sync::Semaphore::new(import_writers(settings.max_connections))),
        };
        store.migrate().await?;
        let ctype: String = sqlx::query_scalar("SELECT datctype FROM pg_database WHERE datname = current_database()")
            .fetch_one(&store.pool)
            .await
            .map_err(internal)?;
        if !ctype_classifies_unicode(&ctype) {
            tracing::warn!(
                lc_ctype = %ctype,
                "the database's LC_CTYPE is not a UTF-8 locale: pg_trgm skips non-ASCII characters, so Japanese \
                 keywords are found without the keyword index, by reading whole tables (see docs/OPERATIONS.md)"
            );
        }
        Ok(store)
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        migrator().run(&self.pool).await.map_err(|e| StoreError::Internal(format!("migration failed: {e}")))
    }

    /// The pool, for tests that play the attacker with direct database access. The warm
    /// connections go back to it first, so that a test may hold every connection.
    pub fn pool_for_tests(&self) -> &PgPool {
        self.warm.release();
        &self.pool
    }

    /// How many connections are kept warm now (for tests).
    pub fn warm_connections_for_tests(&self) -> usize {
        self.warm.len()
    }

    /// A connection for one read statement: a warm one if there is one, else from the pool.
    async fn reader(&self) -> StoreResult<Lease<'_, PoolConnection<Postgres>>> {
        self.warm.lease_or(async { self.pool.acquire().await.map_err(internal) }).await
    }

    /// One page of a list, every statement on `conn`: a pooled connection, or (`in_snapshot`)
    /// one inside a read transaction that holds the snapshot of a whole export.
    async fn list_page(
        &self,
        conn: &mut PgConnection,
        in_snapshot: bool,
        scope: &TableScope<View>,
        table: &TableDef,
        query: &RecordQuery,
    ) -> StoreResult<Vec<Record>> {
        guard::check_table(scope, table)?;
        guard::check_query(scope, query)?;
        let t = ut::table_ident(table.id);
        let (lt_gt, dir) = if query.descending { ("<", "DESC") } else { (">", "ASC") };
        let parts = daicho_store::list_parts(table, query)?;
        // A keyword with nothing else narrowing the rows: pg_trgm's index returns its matches
        // unordered, so taking the first page through it reads every match (26 ms at 1 % of a
        // million rows), while walking the list order reads 50 / density rows (and everything
        // when nothing matches). So the walk is tried first for a bounded number of rows, and
        // the index (forced, with its matches sorted) is used only when the walk falls short.
        let probe = query.keyword.is_some() && query.filters.is_empty() && scope.rows().is_all();
        let mut out = Vec::new();
        for part in parts {
            let want = i64::from(query.limit) - out.len() as i64;
            if want <= 0 {
                break;
            }
            // The part's own conditions, and its order.
            let push_part = |qb: &mut QueryBuilder<Postgres>| -> String {
                match part {
                    ListPart::ById => {
                        if let Some((_, id)) = &query.after {
                            qb.push(format!(" AND id {lt_gt} "));
                            qb.push_bind(*id);
                        }
                        format!("id {dir}")
                    }
                    ListPart::Values(f) => {
                        let col = ut::field_ident(f);
                        qb.push(format!(" AND {col} IS NOT NULL"));
                        match &query.after {
                            Some((v, id)) if query.then.is_empty() => {
                                qb.push(format!(" AND ({col}, id) {lt_gt} ("));
                                push_cell(qb, v);
                                qb.push(", ");
                                qb.push_bind(*id);
                                qb.push(")");
                            }
                            Some((v, id)) => {
                                qb.push(format!(" AND ({col} {lt_gt} "));
                                push_cell(qb, v);
                                qb.push(format!(" OR ({col} = "));
                                push_cell(qb, v);
                                qb.push(" AND ");
                                push_after_then(qb, &query.then, &query.after_then, *id, query.descending);
                                qb.push("))");
                            }
                            None => {}
                        }
                        format!("{col} {dir}, {}id {dir}", then_order(&query.then))
                    }
                    ListPart::Empty(f) => {
                        let col = ut::field_ident(f);
                        qb.push(format!(" AND {col} IS NULL"));
                        if let Some((Cell::Null, id)) = &query.after {
                            qb.push(" AND ");
                            push_after_then(qb, &query.then, &query.after_then, *id, query.descending);
                        }
                        format!("{}id {dir}", then_order(&query.then))
                    }
                }
            };
            let push_keywords = |qb: &mut QueryBuilder<Postgres>| {
                if let Some(k) = &query.keyword {
                    push_keyword(qb, &t, k);
                    if let Some(fields) = exact_keyword_fields(scope, table, k) {
                        push_exact_keyword(qb, &fields, k);
                    }
                }
            };
            let cols = record_columns(table);
            let rows = if probe {
                // The walk: the first `n` rows in list order, then the keyword, as a plain
                // substring test (what the LIKE finds, without the index; 0.15 us a row).
                let k = query.keyword.as_deref().unwrap_or_default();
                let exact = exact_keyword_fields(scope, table, k);
                let walk = |n: i64| {
                    let mut qb;
                    if matches!(part, ListPart::ById) && exact.is_none() {
                        // In id order only ids are walked, and the page's rows read by id after.
                        qb = QueryBuilder::<Postgres>::new(format!(
                            "SELECT {cols} FROM {t} WHERE id IN (SELECT id FROM (SELECT id, search_text FROM {t} \
                             WHERE 1 = 1"
                        ));
                        let order = push_part(&mut qb);
                        qb.push(format!(" ORDER BY {order} LIMIT {n}) AS w WHERE strpos(search_text, lower("));
                        qb.push_bind(joined(k));
                        qb.push(format!(")) > 0 ORDER BY {order} LIMIT "));
                        qb.push_bind(want);
                        qb.push(format!(") ORDER BY {order}"));
                    } else {
                        qb = QueryBuilder::<Postgres>::new(format!(
                            "SELECT {cols} FROM (SELECT {cols}, search_text FROM {t} WHERE 1 = 1"
                        ));
                        let order = push_part(&mut qb);
                        qb.push(format!(" ORDER BY {order} LIMIT {n}) AS w WHERE strpos(search_text, lower("));
                        qb.push_bind(joined(k));
                        qb.push(")) > 0");
                        if let Some(fields) = &exact {
                            push_exact_keyword(&mut qb, fields, k);
                        }
                        qb.push(format!(" ORDER BY {order} LIMIT "));
                        qb.push_bind(want);
                    }
                    qb
                };
                // A short walk first: a keyword it finds not once is rare (one in 0.5 % of the
                // rows is missed by it with odds of e^-10), so the index is asked at once; one
                // it finds, but not a page of, gets the long walk.
                let mut walked =
                    walk(KEYWORD_WALK_FIRST).build().persistent(false).fetch_all(&mut *conn).await.map_err(internal)?;
                if !walked.is_empty() && (walked.len() as i64) < want {
                    walked =
                        walk(KEYWORD_WALK).build().persistent(false).fetch_all(&mut *conn).await.map_err(internal)?;
                }
                if walked.len() as i64 >= want {
                    walked
                } else {
                    // Fewer matches than a page in those rows: the keyword is rare (or the
                    // table small), so its index finds every match and they are sorted.
                    let mut qb = QueryBuilder::<Postgres>::new(format!("SELECT {cols} FROM {t} WHERE 1 = 1"));
                    let order = push_part(&mut qb);
                    push_keywords(&mut qb);
                    qb.push(format!(" ORDER BY {order} LIMIT "));
                    qb.push_bind(want);
                    // Only a bitmap scan of the keyword index may serve it (a walk of a sort
                    // index, or of the table, is what the walk above already found too slow),
                    // set in the statement that begins the transaction: one round trip, not three.
                    // Inside an export's snapshot, a savepoint holds the settings instead, and
                    // rolling back to it ends them (the rest of the export plans freely).
                    if in_snapshot {
                        // Rolled back to and released, so an export's pages leave no savepoints
                        // behind (an error ends the export's transaction anyway).
                        sqlx::raw_sql(
                            "SAVEPOINT no_walks; SET LOCAL enable_indexscan = off; SET LOCAL enable_seqscan = off",
                        )
                        .execute(&mut *conn)
                        .await
                        .map_err(internal)?;
                        let rows = qb.build().persistent(false).fetch_all(&mut *conn).await.map_err(internal)?;
                        sqlx::raw_sql("ROLLBACK TO SAVEPOINT no_walks; RELEASE SAVEPOINT no_walks")
                            .execute(&mut *conn)
                            .await
                            .map_err(internal)?;
                        rows
                    } else {
                        let mut tx = sqlx::Connection::begin_with(
                            &mut *conn,
                            "BEGIN READ ONLY; SET LOCAL enable_indexscan = off; SET LOCAL enable_seqscan = off",
                        )
                        .await
                        .map_err(internal)?;
                        let rows = qb.build().persistent(false).fetch_all(&mut *tx).await.map_err(internal)?;
                        tx.commit().await.map_err(internal)?;
                        rows
                    }
                }
            } else {
                let mut qb = QueryBuilder::<Postgres>::new(format!("SELECT {cols} FROM {t} WHERE 1 = 1"));
                push_rows(&mut qb, guard::row_conditions(scope, table));
                push_filters(&mut qb, table, &query.filters)?;
                push_keywords(&mut qb);
                let order = push_part(&mut qb);
                qb.push(format!(" ORDER BY {order} LIMIT "));
                qb.push_bind(want);
                // Each row is mapped as it arrives, while the backend produces the next ones:
                // collecting the page first kept the two from overlapping (an export reads a
                // million rows this way, a thousand at a time).
                {
                    let mut rows = qb.build().persistent(false).fetch(&mut *conn);
                    while let Some(row) = rows.next().await {
                        let mut rec = record_from_row(&row.map_err(internal)?, table)?;
                        guard::redact(scope, &mut rec);
                        out.push(rec);
                    }
                }
                continue;
            };
            for r in rows {
                let mut rec = record_from_row(&r, table)?;
                guard::redact(scope, &mut rec);
                out.push(rec);
            }
        }
        Ok(out)
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
        lock_tenant(&mut tx, scope.tenant_id()).await?;
        // While it holds the tenant's row, a rename waits at most 5 s (503) for the table's
        // row, which a long import's history keeps shared until it commits.
        sqlx::raw_sql("SET LOCAL lock_timeout = '5s'").execute(&mut *tx).await.map_err(internal)?;
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

    /// `write_one` for a change that reaches the tenant's row through a trigger (the
    /// catalogue, groups, their members and grants): the row is taken first (`lock_tenant`).
    async fn write_one_of_tenant(&self, tenant: TenantId, q: PlainQ<'_>, event: NewAuditEvent) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        lock_tenant(&mut tx, tenant).await?;
        // While it holds the tenant's row, it waits at most 5 s (503) for its own rows (a
        // table's row, which a long import's history keeps shared until it commits).
        sqlx::raw_sql("SET LOCAL lock_timeout = '5s'").execute(&mut *tx).await.map_err(internal)?;
        let n = q.execute(&mut *tx).await.map_err(internal)?.rows_affected();
        Self::check_affected(n)?;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)
    }

    /// Inside a write: the record must exist (NotFound) and the scope must cover it (Forbidden).
    async fn check_covered<R: Right>(
        tx: &mut Transaction<'static, Postgres>,
        scope: &TableScope<R>,
        table: &TableDef,
        id: i64,
    ) -> StoreResult<Record> {
        // Locked as it is read: a write committed meanwhile (READ COMMITTED) is waited for and
        // then seen, so the row rule is checked, and the history compared, against the record
        // this write changes, not an older copy of it.
        let row = sqlx::query(AssertSqlSafe(format!("{} FOR UPDATE", select_by_id(table))))
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
        tx: &mut Transaction<'static, Postgres>,
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
        // (A write that changes nothing is not made: no new version, no history entry.)
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
        let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(false).bind(ms(at)).bind(who);
        for (f, c) in cells {
            q = bind_cell_q(q, c, storage_of(table, *f));
        }
        let n = q.bind(id).execute(&mut **tx).await.map_err(|e| record_error(e, table))?.rows_affected();
        Self::check_affected(n)?;
        let now = read_record_tx(tx, table, id).await?;
        Self::history_in(tx, table, &old, &now, event).await?;
        let sql = format!("UPDATE {} SET search_text = lower($1) WHERE id = $2", ut::table_ident(table.id));
        sqlx::query(AssertSqlSafe(sql))
            .persistent(false)
            .bind(search_key_text(table, &now.cells))
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(internal)?;
        Ok(true)
    }

    /// Records a change to a record (when anything changed) inside the caller's transaction.
    async fn history_in(
        tx: &mut Transaction<'static, Postgres>,
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
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
             WHERE m.user_id = $1 AND ug.tenant_id = $2",
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
    async fn check_group(tx: &mut Transaction<'static, Postgres>, tenant: TenantId, id: GroupId) -> StoreResult<()> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM user_groups WHERE id = $1 AND tenant_id = $2")
            .bind(id.to_string())
            .bind(tenant.to_string())
            .fetch_one(&mut **tx)
            .await
            .map_err(internal)?;
        Self::check_affected(n as u64)
    }

    async fn write_tx(&self) -> StoreResult<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(internal)
    }

    async fn append_in(tx: &mut Transaction<'static, Postgres>, ev: NewAuditEvent) -> StoreResult<()> {
        let ev = ev.bounded();
        let chain = chain_of(ev.tenant_id);
        // Serialises appends to this chain across connections and nodes until commit.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))")
            .bind(&chain)
            .execute(&mut **tx)
            .await
            .map_err(internal)?;
        let prev: Option<String> =
            sqlx::query_scalar("SELECT hash FROM audit_events WHERE chain = $1 ORDER BY seq DESC LIMIT 1")
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
             outcome, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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

    async fn insert_user(tx: &mut Transaction<'static, Postgres>, tenant: TenantId, u: &NewUser) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (id, tenant_id, login_id, display_name, email, role, status, language, password_hash, \
             must_change_password, password_changed_at, failed_logins, locked_until, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8, $9, $10, 0, NULL, $11, $12)",
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
        tx: &mut Transaction<'static, Postgres>,
        tenant: TenantId,
        id: UserId,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND tenant_id = $2")
            .bind(id.to_string())
            .bind(tenant.to_string())
            .execute(&mut **tx)
            .await
            .map_err(internal)?;
        Self::revoke_tokens_in(tx, &tenant.to_string(), &id.to_string(), at).await
    }

    /// Revokes every API token of a user still in use, at `at`, inside the caller's transaction.
    async fn revoke_tokens_in(
        tx: &mut Transaction<'static, Postgres>,
        tenant: &str,
        user: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND tenant_id = $3 AND revoked_at IS NULL",
        )
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
                 prev_hash, hash FROM audit_events WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT 1000",
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
     FROM users u WHERE u.id = $1 AND u.tenant_id = $2"
}

#[async_trait]
impl Store for PgStore {
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
        sqlx::query("INSERT INTO tenants (id, code, name, policy, created_at) VALUES ($1, $2, $3, $4, $5)")
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
            "UPDATE users SET password_hash = $1, must_change_password = $2, password_changed_at = $3, failed_logins = 0, \
             locked_until = NULL, updated_at = $4 WHERE id = $5 AND tenant_id = $6",
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
        sqlx::query(
            "INSERT INTO user_tables (id, tenant_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
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
            sqlx::query_scalar("SELECT id FROM user_tables WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY name")
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
        let sql = "SELECT id, login_id, display_name, status FROM users WHERE tenant_id = $1 ORDER BY login_id";
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
        lock_for_design(&mut tx, scope.tenant_id(), table).await?;
        // After the lock: a table trashed a moment ago gets no field (404).
        let def = load_def(&mut tx, scope.tenant_id(), table, false).await?;
        guard::check_table(scope, &def)?;
        count_fields(&mut tx, table).await?;
        link_target_live(&mut tx, scope.tenant_id(), &field.kind).await?;
        let kind = serde_json::to_string(&field.kind).map_err(|e| StoreError::Internal(e.to_string()))?;
        let rules = serde_json::to_string(&field.rules).map_err(|e| StoreError::Internal(e.to_string()))?;
        sqlx::query(
            "INSERT INTO user_fields (id, table_id, position, name, kind, rules, created_at) VALUES ($1, $2, \
             (SELECT COALESCE(MAX(position), -1) + 1 FROM user_fields WHERE table_id = $2), $3, $4, $5, $6)",
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
        let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(false).bind(ms(at)).bind(scope.actor().to_string());
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
            let sql = format!("UPDATE {} SET search_text = lower($1) WHERE id = $2", ut::table_ident(table.id));
            sqlx::query(AssertSqlSafe(sql))
                .persistent(false)
                .bind(search_key_text(table, &now.cells))
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
            .persistent(false)
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
        mut event: NewAuditEvent,
    ) -> StoreResult<(u64, u64)> {
        guard::check_table(scope, table)?;
        let Some(first) = parts.recv().await else { return Err(daicho_store::import_abandoned()) };
        let _turn = self.import_turns.acquire().await.map_err(|e| StoreError::Internal(e.to_string()))?;
        let who = scope.actor().to_string();
        let t = ut::table_ident(table.id);
        // The planner's estimate of the table's rows before the import (-1: never analysed).
        let rows_before: f32 = sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = $1::regclass")
            .bind(&t)
            .fetch_one(&self.pool)
            .await
            .map_err(internal)?;
        // Rolled back on drop when a part fails or the parts end without `Done`.
        let mut tx = self.write_tx().await?;
        check_design(&mut tx, table).await?;
        let w = ImportWrite { scope, table, who: &who, at, event: &event };
        let written = daicho_store::write_parts(&w, first, &mut parts, &mut ImportTx(&mut tx)).await;
        // The import's large INSERTs were kept prepared (see `insert_many`); let them go, also
        // after a failure. Statements used since are prepared again when next needed.
        if let Err(e) = sqlx::Connection::clear_cached_statements(&mut *tx).await {
            tracing::warn!(error = %e, "letting an import's prepared statements go failed");
        }
        let (inserted, updated, details) = written?;
        event.details = details;
        Self::append_in(&mut tx, event).await?;
        tx.commit().await.map_err(internal)?;
        if analyse_after_import(inserted + updated, rows_before) {
            // The import is committed whatever happens here; autovacuum analyses later anyway.
            if let Err(e) = sqlx::query(AssertSqlSafe(format!("ANALYZE {t}"))).execute(&self.pool).await {
                tracing::warn!(table = %t, error = %e, "ANALYZE after an import failed");
            }
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
             WHERE table_id = $1 AND record_id = $2 ORDER BY id DESC LIMIT $3",
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
        let mut r = self.reader().await?;
        let page = self.list_page(&mut r, false, scope, table, query).await?;
        r.done();
        Ok(page)
    }

    async fn scan_records(
        &self,
        scope: &TableScope<View>,
        table: &TableDef,
        mut query: RecordQuery,
        pages: tokio::sync::mpsc::Sender<Vec<Record>>,
    ) -> StoreResult<()> {
        // Every page is read in one REPEATABLE READ transaction, on one connection: the export
        // is one snapshot of the table, so a record edited meanwhile (moved across the
        // export's position by a change of its sort value) is neither left out nor written
        // twice. Writers are not held up by it.
        let mut lease = self.reader().await?;
        let mut snapshot =
            sqlx::Connection::begin_with(&mut **lease, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await
                .map_err(internal)?;
        // The design its records are read with is the one they were written with (an export
        // that began as the field's type was being changed would otherwise write 5 made 5.00
        // as "500"). The table's lock first, before the snapshot is taken: no change of its
        // columns commits until the export ends, and the catalogue and the records are then
        // read in one snapshot.
        check_design_read(&mut snapshot, table).await?;
        loop {
            let page = self.list_page(&mut snapshot, true, scope, table, &query).await?;
            let full = page.len() >= query.limit as usize;
            let Some(last) = page.last() else { break };
            last.resume(&mut query);
            if pages.send(page).await.is_err() || !full {
                break;
            }
        }
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
        let mut qb = QueryBuilder::<Postgres>::new(format!("SELECT COUNT(*) FROM (SELECT 1 FROM {t} WHERE 1 = 1"));
        push_rows(&mut qb, guard::row_conditions(scope, table));
        push_filters(&mut qb, table, &query.filters)?;
        if let Some(k) = &query.keyword {
            push_keyword(&mut qb, &t, k);
            if let Some(fields) = exact_keyword_fields(scope, table, k) {
                push_exact_keyword(&mut qb, &fields, k);
            }
        }
        qb.push(" LIMIT ");
        qb.push_bind(i64::try_from(cap).unwrap_or(i64::MAX).saturating_add(1));
        qb.push(") AS c");
        let mut r = self.reader().await?;
        let n: i64 = qb.build_query_scalar().persistent(false).fetch_one(&mut **r).await.map_err(internal)?;
        r.done();
        let n = u64::try_from(n).unwrap_or(0);
        Ok((n.min(cap), n > cap))
    }

    async fn list_groups(&self, scope: &Scope<ManageGroups>) -> StoreResult<Vec<Group>> {
        let tenant = scope.tenant_id().to_string();
        let mut groups: Vec<Group> =
            sqlx::query("SELECT id, tenant_id, name, description FROM user_groups WHERE tenant_id = $1 ORDER BY name")
                .bind(&tenant)
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?
                .iter()
                .map(crate::rows::group_from_row)
                .collect::<StoreResult<_>>()?;
        let members = sqlx::query(
            "SELECT m.group_id, m.user_id FROM group_members m JOIN user_groups g ON g.id = m.group_id \
             WHERE g.tenant_id = $1",
        )
        .bind(&tenant)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        let grants = sqlx::query(
            "SELECT t.group_id, t.table_id, t.rights, t.rows, t.fields FROM table_grants t \
             JOIN user_groups g ON g.id = t.group_id WHERE g.tenant_id = $1",
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
        lock_tenant(&mut tx, scope.tenant_id()).await?;
        sqlx::query(
            "INSERT INTO user_groups (id, tenant_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
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
        lock_tenant(&mut tx, scope.tenant_id()).await?;
        let n = sqlx::query("UPDATE user_groups SET name = $1, description = $2 WHERE id = $3 AND tenant_id = $4")
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
        // The tenant's row before the group's grants (their trigger locks it after them), in
        // the order a save of grants takes them (`set_table_grants`).
        self.write_one_of_tenant(
            scope.tenant_id(),
            sqlx::query("DELETE FROM user_groups WHERE id = $1 AND tenant_id = $2")
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
        lock_tenant(&mut tx, scope.tenant_id()).await?;
        Self::check_group(&mut tx, scope.tenant_id(), id).await?;
        let members = match &shown {
            None => members,
            Some(shown) => {
                let current: Vec<String> = sqlx::query_scalar("SELECT user_id FROM group_members WHERE group_id = $1")
                    .bind(id.to_string())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(internal)?;
                let current: Vec<UserId> = current.iter().filter_map(|u| u.parse().ok()).collect();
                daicho_store::members_after(&current, members, Some(shown))
            }
        };
        sqlx::query("DELETE FROM group_members WHERE group_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        for u in members {
            // Only users of the same tenant: another tenant's user id inserts nothing.
            let n = sqlx::query(
                "INSERT INTO group_members (group_id, user_id) SELECT $1::text, id FROM users WHERE id = $2 AND tenant_id = $3 \
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
                    sqlx::query_scalar("SELECT COUNT(*) FROM group_members WHERE group_id = $1 AND user_id = $2")
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
        // The tenant's row first (the grants' trigger locks it anyway, later): saves of the
        // same tenant's grants take turns, so two of a grant not yet stored cannot both find
        // none, and a save of several tables cannot deadlock with a save of one.
        lock_tenant(&mut tx, scope.tenant_id()).await?;
        for GrantChange { grant, expected, event } in grants {
            Self::check_group(&mut tx, scope.tenant_id(), grant.group).await?;
            if let Some(expected) = expected {
                // Compared here, inside the transaction that writes it (the row locked on
                // PostgreSQL): a change committed by someone else since (rights, records or
                // field rules) is never overwritten.
                let stored = sqlx::query(
                    "SELECT group_id, table_id, rights, rows, fields FROM table_grants \
                     WHERE group_id = $1 AND table_id = $2 FOR UPDATE",
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
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM user_tables WHERE id = $1 AND tenant_id = $2")
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
                sqlx::query("DELETE FROM table_grants WHERE group_id = $1 AND table_id = $2")
                    .bind(grant.group.to_string())
                    .bind(grant.table.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(internal)?;
            } else {
                let (rows, fields) = daicho_store::rows::grant_json(&grant)?;
                sqlx::query(
                    "INSERT INTO table_grants (group_id, table_id, rights, rows, fields) VALUES ($1, $2, $3, $4, $5) \
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
            "UPDATE user_tables SET name = COALESCE($1, name), description = COALESCE($2, description) \
             WHERE id = $3 AND tenant_id = $4 AND deleted_at IS NULL",
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
            "UPDATE user_fields SET name = $1 WHERE id = $2 AND table_id = $3 AND deleted_at IS NULL \
             AND table_id IN (SELECT id FROM user_tables WHERE tenant_id = $4 AND deleted_at IS NULL)",
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
        lock_tenant(&mut tx, scope.tenant_id()).await?;
        let def = load_def(&mut tx, scope.tenant_id(), scope.table(), false).await?;
        if !guard::is_permutation(&def, &order) {
            return Err(StoreError::Conflict(FieldErrors::single("fields", "not_every_field")));
        }
        if !guard::keeps_hidden_in_place(scope, &def, &order) {
            return Err(StoreError::Forbidden);
        }
        for (i, f) in order.iter().enumerate() {
            sqlx::query("UPDATE user_fields SET position = $1 WHERE id = $2 AND table_id = $3")
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
        let mut tx = self.write_tx().await?;
        // Writers of records wait from here to the commit, and then find the design changed
        // (`check_design`): none can store a value checked against the old type or rules
        // between this check of every value and the commit. A check of a unique rule, even
        // one not applied, puts the new values in place (DDL) and takes the lock as well, so
        // its second pass meets the values its first pass read.
        let checks_unique = |old: &FieldDef| field.rules.unique && (!old.rules.unique || old.kind != field.kind);
        let lock = apply || {
            let before = load_def(&mut tx, scope.tenant_id(), scope.table(), false).await?;
            before.fields.iter().find(|f| f.id == field.id).is_some_and(checks_unique)
        };
        if lock {
            lock_design_table(&mut tx, scope.tenant_id(), scope.table()).await?;
        }
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
            let rows = sqlx::query(AssertSqlSafe(read.clone()))
                .persistent(false)
                .bind(after)
                .fetch_all(&mut *tx)
                .await
                .map_err(internal)?;
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
        let check_unique = checks_unique(&old);
        if check_unique && !lock {
            // The field was changed meanwhile (between the two reads of the design).
            return Err(daicho_store::design_changed());
        }
        if report.failed > 0 || (!apply && !check_unique) {
            return Ok(report);
        }
        let reindex = !same_kind || old.rules.unique != field.rules.unique;
        // The tenant's row (the catalogue's change reaches it later), when this change will be
        // applied: before any statement takes the table's exclusive lock, since from then on
        // waits are cut at 5 s (`exclusive_ddl`), and waiting for the row behind another design
        // change would throw the conversion away. Not during the first pass, which may end
        // with nothing to change.
        if apply {
            lock_tenant(&mut tx, scope.tenant_id()).await?;
            // A link's target read again under the tenant's row: a trash of that field, which
            // takes the row, committed during the first pass would otherwise go unseen.
            if field.kind != old.kind {
                link_target_live(&mut tx, scope.tenant_id(), &field.kind).await?;
            }
        }
        if reindex {
            for ddl in [
                format!("DROP INDEX IF EXISTS i_{}", field.id.as_uuid().simple()),
                format!("DROP INDEX IF EXISTS {}", ut::unique_ident(field.id)),
            ] {
                exclusive_ddl(&mut tx, ddl).await.map_err(internal)?;
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
                let rows = sqlx::query(AssertSqlSafe(read.clone()))
                    .persistent(false)
                    .bind(after)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(internal)?;
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
                    let q = bind_cell_q(
                        sqlx::query(AssertSqlSafe(write.clone())).persistent(false),
                        &new,
                        field.kind.storage(),
                    );
                    q.bind(rec.id).execute(&mut *tx).await.map_err(internal)?;
                    rewritten += 1;
                }
            }
        } else {
            // Pass two: the new values go into a new column that then takes the field's place.
            rewritten = report.records;
            let ddl = format!("ALTER TABLE {t} ADD COLUMN {tmp} {}", column_type(&field));
            exclusive_ddl(&mut tx, ddl).await.map_err(column_error)?;
            let write = format!("UPDATE {t} SET {tmp} = {} WHERE id = {}", ph(1), ph(2));
            let mut after = 0i64;
            loop {
                let rows = sqlx::query(AssertSqlSafe(read.clone()))
                    .persistent(false)
                    .bind(after)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(internal)?;
                let Some(last) = rows.last() else { break };
                after = last.try_get("id").map_err(internal)?;
                for r in &rows {
                    let rec = record_from_row(r, &one)?;
                    let cell = rec.cells.first().map(|(_, c)| c.clone()).unwrap_or(Cell::Null);
                    let new = daicho_domain::table::convert(&old, &field, &cell, offset)
                        .map_err(|c| StoreError::Internal(c.into()))?;
                    let q = bind_cell_q(
                        sqlx::query(AssertSqlSafe(write.clone())).persistent(false),
                        &new,
                        field.kind.storage(),
                    );
                    q.bind(rec.id).execute(&mut *tx).await.map_err(internal)?;
                }
            }
            for ddl in
                [format!("ALTER TABLE {t} DROP COLUMN {col}"), format!("ALTER TABLE {t} RENAME COLUMN {tmp} TO {col}")]
            {
                exclusive_ddl(&mut tx, ddl).await.map_err(internal)?;
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
                sqlx::query(AssertSqlSafe(ddl)).persistent(false).execute(&mut *tx).await.map_err(|e| {
                    match e.as_database_error() {
                        Some(db) if db.is_unique_violation() => {
                            StoreError::Conflict(FieldErrors::single("unique", "duplicate_values"))
                        }
                        _ => internal(e),
                    }
                })?;
            }
        }
        let kind = serde_json::to_string(&field.kind).map_err(|e| StoreError::Internal(e.to_string()))?;
        let rules = serde_json::to_string(&field.rules).map_err(|e| StoreError::Internal(e.to_string()))?;
        sqlx::query("UPDATE user_fields SET kind = $1, rules = $2 WHERE id = $3 AND table_id = $4")
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
            let rows: Vec<(i64, String)> = sqlx::query_as(
                "SELECT id, changes FROM record_history WHERE table_id = $1 AND strpos(changes, $2) > 0",
            )
            .bind(def.id.to_string())
            .bind(field.id.to_string())
            .fetch_all(&mut *tx)
            .await
            .map_err(internal)?;
            for (id, stored) in rows {
                if let Some(changes) = guard::converted_changes(&stored, &old, &field, offset)? {
                    sqlx::query("UPDATE record_history SET changes = $1 WHERE id = $2")
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
        lock_for_design(&mut tx, scope.tenant_id(), scope.table()).await?;
        no_links_into(&mut tx, scope.tenant_id(), scope.table(), Some(field)).await?;
        let n = sqlx::query(
            "UPDATE user_fields SET deleted_at = $1, deleted_by = $2, trashed_name = name, name = $3 \
             WHERE id = $4 AND table_id = $5 AND deleted_at IS NULL \
             AND table_id IN (SELECT id FROM user_tables WHERE tenant_id = $6 AND deleted_at IS NULL)",
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
            "UPDATE user_tables SET deleted_at = $1, deleted_by = $2, trashed_name = name, name = $3 \
             WHERE id = $4 AND tenant_id = $5 AND deleted_at IS NULL",
        )
        .bind(ms(event.at))
        .bind(scope.actor().to_string())
        .bind(ut::trash_placeholder(&table.to_string()))
        .bind(table.to_string())
        .bind(scope.tenant_id().to_string());
        // The table's lock first, as for a field: a record write, import or change of type in
        // flight on another node commits before the table goes to the trash, never after.
        let mut tx = self.write_tx().await?;
        lock_for_design(&mut tx, scope.tenant_id(), table).await?;
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
            "SELECT id, trashed_name, deleted_at, deleted_by FROM user_tables WHERE tenant_id = $1 AND deleted_at IS NOT NULL",
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
             WHERE t.tenant_id = $1 AND t.deleted_at IS NULL AND f.deleted_at IS NOT NULL",
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
        lock_for_design(&mut tx, scope.tenant_id(), table).await?;
        let n = match field {
            None => sqlx::query(
                "UPDATE user_tables SET name = trashed_name, trashed_name = NULL, deleted_at = NULL, deleted_by = NULL \
                 WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NOT NULL",
            )
            .bind(table.to_string())
            .bind(scope.tenant_id().to_string())
            .execute(&mut *tx)
            .await
            .map_err(catalogue_error)?
            .rows_affected(),
            Some(f) => sqlx::query(
                "UPDATE user_fields SET name = trashed_name, trashed_name = NULL, deleted_at = NULL, deleted_by = NULL, \
                 position = (SELECT COALESCE(MAX(position), -1) + 1 FROM user_fields WHERE table_id = $1) \
                 WHERE id = $2 AND table_id = $3 AND deleted_at IS NOT NULL \
                 AND table_id IN (SELECT id FROM user_tables WHERE tenant_id = $4 AND deleted_at IS NULL)",
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
             WHERE t.deleted_at IS NOT NULL AND t.deleted_at < $1 \
             UNION ALL SELECT t.tenant_id, t.id, f.id, t.name || ' › ' || COALESCE(f.trashed_name, f.name) \
             FROM user_fields f JOIN user_tables t ON t.id = f.table_id \
             WHERE t.deleted_at IS NULL AND f.deleted_at IS NOT NULL AND f.deleted_at < $2",
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
             WHERE tenant_id = $1 AND table_id = $2 AND (owner_id IS NULL OR owner_id = $3) \
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
        let q =
            sqlx::query("DELETE FROM saved_views WHERE id = $1 AND tenant_id = $2 AND table_id = $3 AND owner_id = $4")
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
        let q = sqlx::query(
            "DELETE FROM saved_views WHERE id = $1 AND tenant_id = $2 AND table_id = $3 AND owner_id IS NULL",
        )
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
             prev_hash, hash FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
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
            sqlx::query("INSERT INTO tenants (id, code, name, policy, created_at) VALUES ($1, $2, $3, $4, $5)")
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
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
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
            sqlx::query("INSERT INTO password_history (user_id, password_hash, replaced_at) VALUES ($1, $2, $3)")
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
                 user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
            sqlx::query("INSERT INTO jobs (name, next_due_at, last_run_at, last_node) VALUES ($1, $2, $3, $4)")
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
                 target, outcome, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
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
        // Later appends continue after the copied sequence numbers.
        sqlx::query("SELECT setval(pg_get_serial_sequence('audit_events', 'seq'), GREATEST((SELECT MAX(seq) FROM audit_events), 1))")
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
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
            let seq: Option<Option<i64>> =
                sqlx::query_scalar("SELECT pg_sequence_last_value(pg_get_serial_sequence($1, 'id')::regclass)")
                    .bind(ut::table_ident(t.id.parse().map_err(|_| StoreError::Internal("bad table id".into()))?))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(internal)?;
            t.last_id = seq.flatten().unwrap_or(0);
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
        // Every tenant's row first, in one order, as every other change that reaches it through
        // the catalogue's triggers does (docs/ARCHITECTURE.md, lock order): a tenant already in
        // use on the target cannot deadlock with the copy.
        let mut tenants: Vec<&str> = d
            .tables
            .iter()
            .map(|t| t.tenant_id.as_str())
            .chain(d.groups.iter().map(|g| g.tenant_id.as_str()))
            .collect();
        tenants.sort_unstable();
        tenants.dedup();
        for tenant in tenants {
            sqlx::query("SELECT 1 FROM tenants WHERE id = $1 FOR NO KEY UPDATE")
                .bind(tenant)
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
        }
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
                 trashed_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
                sqlx::query("SELECT setval(pg_get_serial_sequence($1, 'id'), $2)")
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
                 trashed_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
                "INSERT INTO user_groups (id, tenant_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5)",
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
            sqlx::query("INSERT INTO group_members (group_id, user_id) VALUES ($1, $2)")
                .bind(&m.group_id)
                .bind(&m.user_id)
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
        }
        for g in &d.grants {
            sqlx::query(
                "INSERT INTO table_grants (group_id, table_id, rights, rows, fields) VALUES ($1, $2, $3, $4, $5)",
            )
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
                 last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
            "SELECT {} FROM {} WHERE id > $1 ORDER BY id LIMIT $2",
            record_columns(&def),
            ut::table_ident(table)
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .persistent(false)
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
            sqlx::query_scalar("SELECT id FROM user_fields WHERE table_id = $1 AND deleted_at IS NULL")
                .bind(table.to_string())
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
        let searched = TableDef {
            fields: def.fields.iter().filter(|f| live.contains(&f.id.to_string())).cloned().collect(),
            ..def.clone()
        };
        let mut cols: Vec<String> =
            ["id", "version", "created_at", "created_by", "updated_at", "updated_by", "search_text"]
                .iter()
                .map(|c| (*c).to_owned())
                .collect();
        // Auto-numbers are computed by the database from the id.
        let written: Vec<&FieldDef> = def.fields.iter().filter(|f| !f.kind.is_generated()).collect();
        cols.extend(written.iter().map(|f| ut::field_ident(f.id)));
        // Multi-row INSERTs, as an import writes (a round trip per row copied 3,300 rows/s).
        // Not kept prepared: a migration runs each once or twice per table.
        let chunk = (60_000 / cols.len()).clamp(1, 500);
        let mut tx = self.write_tx().await?;
        for part in records.chunks(chunk) {
            let mut qb =
                QueryBuilder::<Postgres>::new(format!("INSERT INTO {} ({}) ", ut::table_ident(table), cols.join(", ")));
            qb.push_values(part, |mut b, r| {
                b.push_bind(r.id)
                    .push_bind(r.version)
                    .push_bind(ms(r.created_at))
                    .push_bind(r.created_by.clone())
                    .push_bind(ms(r.updated_at))
                    .push_bind(r.updated_by.clone())
                    // The keyword text is kept in lower case (see `push_keyword`).
                    .push("lower(")
                    .push_bind_unseparated(search_key_text(&searched, &r.cells))
                    .push_unseparated(")");
                for f in &written {
                    let cell = r.cells.iter().find(|(id, _)| *id == f.id).map(|(_, c)| c).unwrap_or(&Cell::Null);
                    push_cell_value(&mut b, cell, f.kind.storage());
                }
            });
            qb.build().persistent(false).execute(&mut *tx).await.map_err(|e| record_error(e, &def))?;
        }
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
             WHERE id > $1 ORDER BY id LIMIT $2",
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
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
        if let Some(last) = rows.iter().map(|h| h.id).max() {
            // Entries written after the copy continue above the copied ids.
            sqlx::query(
                "SELECT setval(pg_get_serial_sequence('record_history', 'id'), GREATEST($1, \
                 (SELECT last_value FROM record_history_id_seq)))",
            )
            .bind(last)
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
            let n: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
                .persistent(false)
                .fetch_one(&self.pool)
                .await
                .map_err(internal)?;
            out.push((id, n));
        }
        Ok(out)
    }

    async fn ensure_job(&self, _sys: &SystemScope, name: &str, first_due: OffsetDateTime) -> StoreResult<()> {
        sqlx::query("INSERT INTO jobs (name, next_due_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
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
            "UPDATE jobs SET lease_owner = $1, lease_until = $2 WHERE name = $3 AND next_due_at <= $4 \
             AND (lease_until IS NULL OR lease_until < $4)",
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
            "UPDATE jobs SET next_due_at = $1, lease_owner = NULL, lease_until = NULL, last_run_at = $2, \
             last_node = $3 WHERE name = $4 AND lease_owner = $3",
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
        // the database every tenant shares): the oldest go first. One upload of a user at a time
        // here (a lock of the transaction, on the user's id), so that two at once keep three.
        let mut tx = self.write_tx().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("staged:{}", scope.actor()))
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        sqlx::query(
            "DELETE FROM staged_imports WHERE tenant_id = $1 AND user_id = $2 AND id NOT IN \
             (SELECT id FROM staged_imports WHERE tenant_id = $1 AND user_id = $2 \
             ORDER BY created_at DESC, id DESC LIMIT $3)",
        )
        .bind(scope.tenant_id().to_string())
        .bind(scope.actor().to_string())
        .bind(daicho_store::STAGED_PER_USER - 1)
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        sqlx::query(
            "INSERT INTO staged_imports (id, tenant_id, table_id, user_id, created_at, body) \
             SELECT $1, $2, $3, $4, $5, $6 FROM user_tables \
             WHERE id = $7 AND tenant_id = $8 AND deleted_at IS NULL",
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
             WHERE id = $1 AND tenant_id = $2 AND table_id = $3 AND user_id = $4 AND created_at >= $5",
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
        sqlx::query("DELETE FROM staged_imports WHERE id = $1 AND tenant_id = $2 AND table_id = $3 AND user_id = $4")
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
        let n = sqlx::query("DELETE FROM staged_imports WHERE created_at < $1")
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
        let n = sqlx::query("DELETE FROM sessions WHERE last_seen_at < $1 OR created_at < $2")
            .bind(ms(idle_before))
            .bind(ms(started_before))
            .execute(&self.pool)
            .await
            .map_err(internal)?
            .rows_affected();
        Ok(n)
    }

    async fn tenant_by_code(&self, _flow: &LoginFlow, code: &TenantCode) -> StoreResult<Option<Tenant>> {
        let row = sqlx::query("SELECT id, code, name, policy, created_at FROM tenants WHERE code = $1")
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
             u.password_hash FROM users u WHERE u.tenant_id = $1 AND u.login_id = $2",
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
            "SELECT COUNT(*) FROM audit_events WHERE ip = $1 AND action IN ('login.failure', 'login.lockout') AND at >= $2",
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
             failed_logins = CASE WHEN locked_until IS NOT NULL AND locked_until <= $1 THEN 1 ELSE failed_logins + 1 END, \
             locked_until = CASE \
                WHEN (CASE WHEN locked_until IS NOT NULL AND locked_until <= $1 THEN 1 ELSE failed_logins + 1 END) >= $2 \
                    AND (locked_until IS NULL OR locked_until <= $1) THEN $3 \
                WHEN locked_until IS NOT NULL AND locked_until <= $1 THEN NULL \
                ELSE locked_until END \
             WHERE id = $4 AND tenant_id = $5 RETURNING failed_logins",
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
        // (The row is locked by the update: a password change waits for this sign-in, and
        // then ends its session with the others.)
        let n = sqlx::query(
            "UPDATE users SET failed_logins = 0, locked_until = NULL \
             WHERE id = $1 AND tenant_id = $2 AND password_hash = $3 AND status = $4",
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
             JOIN tenants t ON t.id = s.tenant_id WHERE s.token_hash = $1",
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
             JOIN tenants t ON t.id = k.tenant_id WHERE k.token_hash = $1",
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
            "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
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
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $3")
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
        let n = sqlx::query("DELETE FROM sessions WHERE id = $1")
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
                 WHERE h.user_id = $1 AND u.tenant_id = $2 ORDER BY h.replaced_at DESC, h.id DESC LIMIT $3",
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
        sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1 AND tenant_id = $2")
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
             SELECT id, password_hash, $1::bigint FROM users WHERE id = $2 AND tenant_id = $3",
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
            "DELETE FROM password_history WHERE user_id = $1 AND id NOT IN \
             (SELECT id FROM password_history WHERE user_id = $2 ORDER BY replaced_at DESC, id DESC LIMIT $3)",
        )
        .bind(&user)
        .bind(&user)
        .bind(i64::from(history))
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        sqlx::query(
            "UPDATE users SET password_hash = $1, must_change_password = FALSE, password_changed_at = $2, updated_at = $3 \
             WHERE id = $4 AND tenant_id = $5",
        )
        .bind(&new_hash)
        .bind(ms(at))
        .bind(ms(at))
        .bind(&user)
        .bind(&tenant)
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND tenant_id = $2 AND id <> $3")
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
        // Two at once wait for each other on the user's row before counting.
        sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
            .bind(scope.actor().to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        let in_use: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2",
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
             FROM api_tokens WHERE user_id = $1 AND tenant_id = $2 ORDER BY created_at DESC",
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
                "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND tenant_id = $4 AND revoked_at IS NULL",
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
             WHERE user_id = $1 AND tenant_id = $2 ORDER BY last_seen_at DESC",
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
            sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2 AND tenant_id = $3")
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
            sqlx::query("UPDATE users SET language = $1 WHERE id = $2 AND tenant_id = $3")
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
             FROM users u WHERE u.tenant_id = $1 ORDER BY u.login_id LIMIT 10000",
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
        // Two administrators demoting or disabling each other at once on two nodes: the second
        // waits here for the first, then finds no other administrator left.
        lock_tenant(&mut tx, scope.tenant_id()).await?;
        let old_role: Option<String> = sqlx::query_scalar("SELECT role FROM users WHERE id = $1 AND tenant_id = $2")
            .bind(id.to_string())
            .bind(&tenant)
            .fetch_optional(&mut *tx)
            .await
            .map_err(internal)?;
        let old_role = old_role.ok_or(StoreError::NotFound)?;
        sqlx::query(
            "UPDATE users SET display_name = $1, email = $2, role = $3, language = $4, updated_at = $5 WHERE id = $6 AND tenant_id = $7",
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
        lock_tenant(&mut tx, scope.tenant_id()).await?;
        let n = sqlx::query("UPDATE users SET status = $1, updated_at = $2 WHERE id = $3 AND tenant_id = $4")
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
        // Their group memberships go too, whose trigger reaches the tenant's row: taken first.
        let mut tx = self.write_tx().await?;
        lock_tenant(&mut tx, scope.tenant_id()).await?;
        sqlx::raw_sql("SET LOCAL lock_timeout = '5s'").execute(&mut *tx).await.map_err(internal)?;
        let n = sqlx::query("DELETE FROM users WHERE id = $1 AND tenant_id = $2")
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
            "UPDATE users SET password_hash = $1, must_change_password = TRUE, password_changed_at = $2, failed_logins = 0, \
             locked_until = NULL, updated_at = $3 WHERE id = $4 AND tenant_id = $5",
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
            sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1 AND tenant_id = $2")
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
            sqlx::query("UPDATE tenants SET policy = $1 WHERE id = $2").bind(&json).bind(scope.tenant_id().to_string()),
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
             prev_hash, hash FROM audit_events WHERE chain = $1 \
             AND ($2::text IS NULL OR actor_login = $2) AND ($3::text IS NULL OR action = $3) \
             AND ($4::text IS NULL OR outcome = $4) AND ($5::text IS NULL OR ip = $5) \
             AND ($6::bigint IS NULL OR at >= $6) AND ($7::bigint IS NULL OR at < $7) \
             AND ($8::bigint IS NULL OR seq < $8) ORDER BY seq DESC LIMIT $9",
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

fn record_columns(table: &TableDef) -> String {
    let mut cols: Vec<String> = daicho_store::rows::RECORD_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    cols.extend(table.fields.iter().map(|f| ut::field_ident(f.id)));
    cols.join(", ")
}

/// A record from a row selected with `record_columns(table)` (see `daicho_store::rows::record`).
fn record_from_row(r: &sqlx::postgres::PgRow, table: &TableDef) -> StoreResult<Record> {
    daicho_store::rows::record(&crate::rows::Cols(r), table)
}

type ScalarQ<'q> = sqlx::query::QueryScalar<'q, Postgres, i64, sqlx::postgres::PgArguments>;
type PlainQ<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

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

impl PgStore {
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
        // (With the tenant's row, before the catalogue and the table's grants.)
        lock_for_design(&mut tx, tenant, table).await?;
        // (Read after the tenant's row is locked: a link being added meanwhile, which takes it
        // too, is either seen here or waits for this purge and then finds no table.)
        no_links_into(&mut tx, tenant, table, field).await?;
        match field {
            None => {
                let n = sqlx::query("DELETE FROM user_tables WHERE id = $1 AND tenant_id = $2 AND deleted_at < $3")
                    .bind(table.to_string())
                    .bind(tenant.to_string())
                    .bind(before)
                    .execute(&mut *tx)
                    .await
                    .map_err(internal)?
                    .rows_affected();
                Self::check_affected(n)?;
                for ddl in drop_storage(table) {
                    exclusive_ddl(&mut tx, ddl).await.map_err(internal)?;
                }
            }
            Some(f) => {
                let n = sqlx::query(
                    "DELETE FROM user_fields WHERE id = $1 AND table_id = $2 AND deleted_at < $4 \
                     AND table_id IN (SELECT id FROM user_tables WHERE tenant_id = $3 AND deleted_at IS NULL)",
                )
                .bind(f.to_string())
                .bind(table.to_string())
                .bind(tenant.to_string())
                .bind(before)
                .execute(&mut *tx)
                .await
                .map_err(internal)?
                .rows_affected();
                Self::check_affected(n)?;
                for ddl in drop_column(table, f) {
                    exclusive_ddl(&mut tx, ddl).await.map_err(internal)?;
                }
                // Deleted for good means out of the records' histories too (an entry that
                // changed only this field goes with it).
                sqlx::query(
                    "UPDATE record_history SET changes = COALESCE((SELECT json_agg(e ORDER BY i)::text \
                     FROM json_array_elements(record_history.changes::json) WITH ORDINALITY AS x(e, i) \
                     WHERE e->>0 <> $1), '[]') WHERE table_id = $2 AND strpos(changes, $1) > 0",
                )
                .bind(f.to_string())
                .bind(table.to_string())
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
                sqlx::query("DELETE FROM record_history WHERE table_id = $1 AND changes = '[]'")
                    .bind(table.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(internal)?;
                // Nor does a saved view keep it: its sort keys and columns on it go, and a view
                // that filters by it goes with it (see `guard::spec_without_field`).
                let views: Vec<(String, String)> =
                    sqlx::query_as("SELECT id, spec FROM saved_views WHERE table_id = $1 AND strpos(spec, $2) > 0")
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
                            sqlx::query("UPDATE saved_views SET spec = $1 WHERE id = $2")
                                .bind(kept)
                                .bind(id)
                                .execute(&mut *tx)
                                .await
                                .map_err(internal)?;
                        }
                        None => {
                            sqlx::query("DELETE FROM saved_views WHERE id = $1")
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

    /// Inserts a saved view after checking, in the same transaction, that its name is free
    /// among the views of the same owner (or the shared ones) and the count is within bounds.
    async fn insert_view(&self, tenant: TenantId, view: SavedView, event: NewAuditEvent) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        // Two saves at once must not both pass the name and count checks below (read
        // committed): they wait for each other on the tenant's row.
        lock_tenant(&mut tx, tenant).await?;
        let owner = view.owner.map(|o| o.to_string());
        let same: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM saved_views WHERE tenant_id = $1 AND table_id = $2 \
             AND ((owner_id IS NULL AND $3::text IS NULL) OR owner_id = $4)",
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
        let mut r = self.reader().await?;
        let row = sqlx::query(AssertSqlSafe(select_by_id(table)))
            .bind(id)
            .fetch_optional(&mut **r)
            .await
            .map_err(internal)?;
        r.done();
        record_from_row(&row.ok_or(StoreError::NotFound)?, table)
    }
}

const ID_COLUMN: &str = "id BIGSERIAL PRIMARY KEY";
const INT_TYPE: &str = "BIGINT";

fn ph(n: usize) -> String {
    format!("${n}")
}

fn push_cell(qb: &mut QueryBuilder<Postgres>, c: &Cell) {
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

fn push_cmp(qb: &mut QueryBuilder<Postgres>, col: &str, op: &str, c: &Cell) {
    qb.push(format!(" AND {col} {op} "));
    push_cell(qb, c);
}

/// The filters as SQL conditions.
fn push_filters(
    qb: &mut QueryBuilder<Postgres>,
    table: &TableDef,
    filters: &[daicho_domain::table::Filter],
) -> StoreResult<()> {
    for f in filters {
        let Some(def) = table.field(f.field) else { return Err(StoreError::NotFound) };
        let col = ut::field_ident(f.field);
        match &f.op {
            FilterOp::Eq(c) => push_cmp(qb, &col, "=", c),
            FilterOp::Gt(c) => push_cmp(qb, &col, ">", c),
            FilterOp::Gte(c) => push_cmp(qb, &col, ">=", c),
            FilterOp::Lt(c) => push_cmp(qb, &col, "<", c),
            FilterOp::Lte(c) => push_cmp(qb, &col, "<=", c),
            FilterOp::Contains(s) => {
                qb.push(format!(" AND {col} ILIKE "));
                qb.push_bind(format!("%{}%", like_escape(s)));
                qb.push(" ESCAPE '\\'");
            }
            FilterOp::StartsWith(s) => {
                qb.push(format!(" AND {col} ILIKE "));
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
                // Stored one choice per line: the whole value, or a first, last or
                // middle line.
                qb.push(" AND (1 = 0");
                for v in values {
                    let e = like_escape(v);
                    qb.push(format!(" OR {col} = "));
                    qb.push_bind(v.clone());
                    for pattern in [format!("{e}\n%"), format!("%\n{e}"), format!("%\n{e}\n%")] {
                        qb.push(format!(" OR {col} LIKE "));
                        qb.push_bind(pattern);
                        qb.push(" ESCAPE '\\'");
                    }
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
fn push_after_then(qb: &mut QueryBuilder<Postgres>, then: &[(FieldId, bool)], vals: &[Cell], id: i64, id_desc: bool) {
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

/// How many rows, in list order, a keyword search walks before it turns to the keyword index
/// (see `list_records`): about 3 ms at a million rows, enough for a page of a keyword found in
/// 0.5 % of the records; a rarer one has at most 0.5 % of a table as index matches to sort.
const KEYWORD_WALK: i64 = 10_000;
/// The short walk before it (about 0.6 ms): a keyword not found in these rows goes straight to
/// the index.
const KEYWORD_WALK_FIRST: i64 = 2_000;

/// Escapes LIKE's wildcards so that a search for "100%" finds the text "100%".
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Keyword search through the table's pg_trgm GIN index on `search_text` (case-insensitive
/// substring; three or more characters use the index, two characters scan). The text is
/// stored in lower case by PostgreSQL's own `lower()`, with separators joined (see
/// [`SEARCH_SEPARATORS`]), and the pattern is made the same way: `LIKE` then finds what
/// `ILIKE` would, without lowering every row checked (0.2 µs a row instead of 0.9 µs). A
/// keyword holding a separator is confirmed against the fields themselves (see
/// [`exact_keyword_fields`]).
fn push_keyword(qb: &mut QueryBuilder<Postgres>, _t: &str, k: &str) {
    qb.push(" AND search_text LIKE lower(");
    qb.push_bind(format!("%{}%", like_escape(&joined(k))));
    qb.push(") ESCAPE '\\'");
}

/// Characters that pg_trgm takes as the end of a word, which the keyword text stores as
/// [`SEARCH_JOIN`]: whitespace (the newline between fields included) and common punctuation,
/// ASCII and Japanese. pg_trgm makes trigrams within words only, so in plain text a phrase
/// such as "invoice 要確認" narrows the rows only to those holding both words (at a million
/// records, 5,000 rows read and rejected: 17 ms); joined, its trigrams span the space
/// ("eǁ要") and the index finds the phrase itself (0.2 ms). `'`, `\`, `%` and `_` are not in
/// the list: they would need escaping in SQL literals or LIKE patterns.
/// Migration 0012 holds the same two strings; a test checks that they agree.
const SEARCH_SEPARATORS: &str =
    " \t\n\r\u{3000}\u{a0}!\"#$&()*+,-./:;<=>?@[]^`{|}~、。・「」『』（）【】〜～：；！？＆＠－，．／";
/// A letter to pg_trgm (Latin letter lateral click, U+01C1), rare in business text.
const SEARCH_JOIN: char = '\u{1c1}';

/// Whether `c` is in [`SEARCH_SEPARATORS`] (without searching the string for every character
/// of every record an import writes).
fn is_separator(c: char) -> bool {
    match c {
        ' ' | '\t' | '\n' | '\r' => true,
        '!'..='/' | ':'..='@' | '['..='`' | '{'..='~' => !matches!(c, '\'' | '%' | '\\' | '_'),
        '\u{3000}' | '\u{a0}' | '、' | '。' | '・' | '「' | '」' | '『' | '』' | '（' | '）' | '【' | '】' | '〜'
        | '～' | '：' | '；' | '！' | '？' | '＆' | '＠' | '－' | '，' | '．' | '／' => true,
        _ => false,
    }
}

/// `text` with every separator turned into [`SEARCH_JOIN`], as the keyword text stores it.
fn joined(text: &str) -> String {
    text.chars().map(|c| if is_separator(c) { SEARCH_JOIN } else { c }).collect()
}

/// A record's keyword text as it is bound (PostgreSQL lowers it): its searchable values, each
/// followed by a newline (`table::search_text`), joined.
fn search_key_text(table: &TableDef, cells: &[(FieldId, Cell)]) -> String {
    joined(&search_text(table, cells))
}

/// SQL for the keyword text of `expr` (migrations and rebuilds, which work in SQL): lower
/// case, separators joined, exactly as [`search_key_text`] and `lower()` make it.
fn search_key(expr: &str) -> String {
    format!("translate(lower({expr}), {})", translate_args())
}

/// `translate`'s second and third arguments: each separator to [`SEARCH_JOIN`].
fn translate_args() -> String {
    let join: String = SEARCH_SEPARATORS.chars().map(|_| SEARCH_JOIN).collect();
    format!("{}, {}", e_literal(SEARCH_SEPARATORS), e_literal(&join))
}

/// An escape-string literal (`E'…'`) of constant text without quotes or backslashes, with
/// tab, newline and carriage return written as escapes.
fn e_literal(s: &str) -> String {
    let mut out = String::from("E'");
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The fields a keyword must also be found in, if any: the searchable fields the scope sees,
/// when it hides some (the index narrows the rows, this confirms them), or every searchable
/// field when the keyword holds a separator or [`SEARCH_JOIN`], since the index and `LIKE` see
/// them all as one character (a search for "a b" must not find "a-b").
fn exact_keyword_fields(scope: &TableScope<View>, table: &TableDef, k: &str) -> Option<Vec<FieldId>> {
    if let Some(visible) = guard::visible_search_fields(scope, table) {
        return Some(visible);
    }
    k.chars()
        .any(|c| c == SEARCH_JOIN || is_separator(c))
        .then(|| table.fields.iter().filter(|f| f.searchable()).map(|f| f.id).collect())
}

/// Renders a scope's row conditions (see `guard::row_conditions`).
fn push_rows(qb: &mut QueryBuilder<Postgres>, conds: Vec<Vec<RowCond>>) {
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

/// The keyword must also be found in one of `fields` (see [`exact_keyword_fields`]), case
/// ignored. Written as `strpos(lower(col), lower(k))`, which is what `ILIKE '%k%'` does in a
/// UTF-8 database (PostgreSQL lowers both sides, then matches), because the planner prices
/// an `ILIKE` by running its pattern over each column's statistics: 0.1 ms a field, 0.5 ms
/// a statement at four fields, paid twice by a keyword search that walks and then asks the
/// index, more than the check itself costs.
fn push_exact_keyword(qb: &mut QueryBuilder<Postgres>, fields: &[FieldId], k: &str) {
    qb.push(" AND (1 = 0");
    for f in fields {
        qb.push(format!(" OR strpos(lower({}), lower(", ut::field_ident(*f)));
        qb.push_bind(k.to_owned());
        qb.push(")) > 0");
    }
    qb.push(")");
}

/// Reads a record inside the caller's transaction (it sees that transaction's own writes).
async fn read_record_tx(tx: &mut Transaction<'static, Postgres>, table: &TableDef, id: i64) -> StoreResult<Record> {
    let row = sqlx::query(AssertSqlSafe(select_by_id(table))).bind(id).fetch_one(&mut **tx).await.map_err(internal)?;
    record_from_row(&row, table)
}

/// The statement that reads one record by id: prepared once per connection and kept, as only
/// an import's full INSERT is besides (every other user-table statement is parsed each time,
/// see docs/ARCHITECTURE.md). A kept
/// statement saves a round trip to the database and a parse on every read, but its result
/// types are fixed when it is prepared, and after a field's type changes PostgreSQL refuses to
/// run it ("cached plan must not change result type"). So the text ends with a comment that
/// spells each column's SQL type: a changed type gives a new text, hence a new statement.
fn select_by_id(table: &TableDef) -> String {
    let types = storage_letters(table.fields.iter().map(|f| f.kind.storage()));
    format!("SELECT {} FROM {} WHERE id = $1 /* {types} */", record_columns(table), ut::table_ident(table.id))
}

/// One letter per column's SQL type, for the texts of statements kept prepared.
fn storage_letters(storages: impl Iterator<Item = Storage>) -> String {
    storages
        .map(|s| match s {
            Storage::Text => 't',
            Storage::Int => 'i',
            Storage::Bool => 'b',
        })
        .collect()
}

/// A link's target, as a field of kind `kind` would point at it, is live in `tx`'s catalogue
/// (its table and the field it shows, neither in the trash): else 409 `unknown_table`. Read in
/// the change's own transaction: a target trashed at the same moment is seen, never linked to.
async fn link_target_live(
    tx: &mut Transaction<'_, Postgres>,
    tenant: TenantId,
    kind: &daicho_domain::table::FieldKind,
) -> StoreResult<()> {
    let daicho_domain::table::FieldKind::Link { table, show } = kind else { return Ok(()) };
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM user_fields f JOIN user_tables t ON t.id = f.table_id \
         WHERE t.id = $1 AND t.tenant_id = $2 AND t.deleted_at IS NULL AND f.id = $3 AND f.deleted_at IS NULL",
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
    tx: &mut Transaction<'_, Postgres>,
    tenant: TenantId,
    table: TableId,
    field: Option<FieldId>,
) -> StoreResult<()> {
    let links: Vec<(String, String, String, String)> = sqlx::query_as(AssertSqlSafe(guard::live_links_sql("$1")))
        .bind(tenant.to_string())
        .fetch_all(&mut **tx)
        .await
        .map_err(internal)?;
    guard::check_no_links_into(&links, table, field)
}

/// Refuses a write of records whose values were checked against a design that no longer stands
/// (a field's type or rules changed, or the field or the table went to the trash, after the
/// request read it). The table's lock comes first: a change of its design holds a stronger one
/// from its start to its commit (`lock_for_design`; DDL the strongest), so the catalogue read
/// after it is the committed one, and no change can begin before this write ends. A writer
/// waits at most 5 s for a change under way, then gets the same 409.
async fn check_design(tx: &mut Transaction<'static, Postgres>, table: &TableDef) -> StoreResult<()> {
    lock_user_table(tx, table, "ROW EXCLUSIVE").await?;
    design_stands_in(tx, table).await
}

/// The design check of a read of many records in one snapshot (an export): the table's
/// lock that a change of its columns waits for (ACCESS SHARE, as any read takes; 5 s at most
/// behind one under way), then its catalogue, read in the transaction's snapshot.
async fn check_design_read(tx: &mut Transaction<'_, Postgres>, table: &TableDef) -> StoreResult<()> {
    lock_user_table(tx, table, "ACCESS SHARE").await?;
    design_stands_in(tx, table).await
}

/// Locks user table `table` in `mode`, waiting 5 s at most.
async fn lock_user_table(tx: &mut Transaction<'_, Postgres>, table: &TableDef, mode: &'static str) -> StoreResult<()> {
    let lock = format!(
        "SET LOCAL lock_timeout = '5s'; LOCK TABLE {} IN {mode} MODE; SET LOCAL lock_timeout = DEFAULT",
        ut::table_ident(table.id)
    );
    sqlx::raw_sql(AssertSqlSafe(lock)).execute(&mut **tx).await.map_err(|e| {
        // The table was purged meanwhile (42P01), or its design is being changed (55P03).
        match e.as_database_error().and_then(|d| d.code()).as_deref() {
            Some("42P01" | "55P03") => daicho_store::design_changed(),
            _ => internal(e),
        }
    })?;
    Ok(())
}

/// [`daicho_store::design_stands`] on the catalogue as `tx` reads it.
async fn design_stands_in(tx: &mut Transaction<'_, Postgres>, table: &TableDef) -> StoreResult<()> {
    let rows: Vec<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT f.id, f.kind, f.rules FROM user_tables t \
         LEFT JOIN user_fields f ON f.table_id = t.id AND f.deleted_at IS NULL \
         WHERE t.id = $1 AND t.tenant_id = $2 AND t.deleted_at IS NULL",
    )
    .bind(table.id.to_string())
    .bind(table.tenant_id.to_string())
    .fetch_all(&mut **tx)
    .await
    .map_err(internal)?;
    daicho_store::design_stands(table, &rows)
}

/// The first lock of a change of user table `table`'s design that writes its catalogue and its
/// storage: writers of its records (ROW EXCLUSIVE, `check_design`) wait from here to the commit,
/// and two such changes of one table queue here, before either writes the catalogue (whose
/// trigger locks the tenant's row). One order for all of them (table, then tenant), so none
/// deadlocks with another. A table of another tenant, or one already purged, is NotFound and
/// is not locked.
async fn lock_for_design(tx: &mut Transaction<'static, Postgres>, tenant: TenantId, table: TableId) -> StoreResult<()> {
    lock_design_table(tx, tenant, table).await?;
    // Then the tenant's row, which the catalogue's change reaches later through its trigger.
    lock_tenant(tx, tenant).await
}

/// `lock_for_design` without the tenant's row: for a retype, whose first pass reads every
/// record before it knows whether it will change the catalogue at all (it takes the row
/// itself before its first DDL, when it applies).
async fn lock_design_table(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    table: TableId,
) -> StoreResult<()> {
    let ours: Option<i64> = sqlx::query_scalar("SELECT 1::bigint FROM user_tables WHERE id = $1 AND tenant_id = $2")
        .bind(table.to_string())
        .bind(tenant.to_string())
        .fetch_optional(&mut **tx)
        .await
        .map_err(internal)?;
    if ours.is_none() {
        return Err(StoreError::NotFound);
    }
    // Waited for at most 5 s (then refused as busy, 503), like the change's statements that
    // take the table's exclusive lock (`exclusive_ddl`).
    let lock = format!(
        "SET LOCAL lock_timeout = '5s'; LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE; SET LOCAL lock_timeout = DEFAULT",
        ut::table_ident(table)
    );
    sqlx::raw_sql(AssertSqlSafe(lock)).execute(&mut **tx).await.map_err(|e| {
        match e.as_database_error().and_then(|d| d.code()).as_deref() {
            Some("42P01") => StoreError::NotFound,
            _ => internal(e),
        }
    })?;
    Ok(())
}

/// Locks the tenant's row for the rest of the transaction, as the catalogue's and the
/// grants' triggers do when they raise its design version (`FOR NO KEY UPDATE`: rows that
/// refer to the tenant, a new session at sign-in among them, are still inserted meanwhile).
/// Taken first by changes that would otherwise take it late, so that all of them take their
/// locks in one order: a user table, the tenant's row, catalogue and grant rows, the chain.
/// Inside a change of a user's role, status or existence (the tenant's row locked): refuses it
/// when it leaves the tenant without an active administrator (see `daicho_store::last_admin`).
async fn admin_remains(tx: &mut Transaction<'static, Postgres>, tenant: TenantId) -> StoreResult<()> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND role = $2 AND status = $3")
        .bind(tenant.to_string())
        .bind(daicho_domain::Role::TenantAdmin.as_str())
        .bind(UserStatus::Active.as_str())
        .fetch_one(&mut **tx)
        .await
        .map_err(internal)?;
    if n == 0 { Err(daicho_store::last_admin()) } else { Ok(()) }
}

async fn lock_tenant(tx: &mut Transaction<'static, Postgres>, tenant: TenantId) -> StoreResult<()> {
    sqlx::query("SELECT 1 FROM tenants WHERE id = $1 FOR NO KEY UPDATE")
        .bind(tenant.to_string())
        .execute(&mut **tx)
        .await
        .map_err(internal)?;
    Ok(())
}

/// Runs a statement on a user table that takes its exclusive lock (DDL), inside the caller's
/// transaction. Every lock the transaction waits for from then on is waited for at most 5 s,
/// then it fails (55P03, refused as busy): while a statement waits in the lock queue every
/// later read of the table waits behind it (an export's reads hold the table for as long as
/// the export runs), and once the transaction holds the exclusive lock, its own waits (for the
/// tenant's row behind another design change) would hold every read of the table up.
async fn exclusive_ddl(conn: &mut PgConnection, sql: String) -> Result<(), sqlx::Error> {
    sqlx::raw_sql("SET LOCAL lock_timeout = '5s'").execute(&mut *conn).await?;
    sqlx::query(AssertSqlSafe(sql)).persistent(false).execute(&mut *conn).await?;
    Ok(())
}

/// Refuses a new table when the tenant has MAX_TABLES, and a new field when the table has
/// MAX_FIELDS, those in the trash included (they keep their storage until purged, and a
/// restore brings them back), inside the creating transaction.
async fn count_tables(tx: &mut Transaction<'static, Postgres>, tenant: TenantId) -> StoreResult<()> {
    // The tenant's row first: tables made at the same moment count one after the other (the
    // catalogue's trigger locks this row anyway, but only after the count).
    lock_tenant(tx, tenant).await?;
    let sql = "SELECT COUNT(*) FROM user_tables WHERE tenant_id = $1";
    check_room(tx, sql, tenant.to_string(), daicho_domain::table::MAX_TABLES, "tables").await
}

async fn count_fields(tx: &mut Transaction<'static, Postgres>, table: TableId) -> StoreResult<()> {
    let sql = "SELECT COUNT(*) FROM user_fields WHERE table_id = $1";
    check_room(tx, sql, table.to_string(), daicho_domain::table::MAX_FIELDS, "fields").await
}

async fn check_room(
    tx: &mut Transaction<'static, Postgres>,
    sql: &'static str,
    id: String,
    max: usize,
    what: &'static str,
) -> StoreResult<()> {
    let n: i64 = sqlx::query_scalar(sql).bind(id).fetch_one(&mut **tx).await.map_err(internal)?;
    daicho_store::room_left(n, max, what)
}

/// PostgreSQL's limit of 1,600 columns per table counts every column a table ever had (a
/// dropped one keeps its slot): a table whose fields were added and purged that many times
/// takes no new column, which is said (409 on `fields`) rather than a server error.
fn column_error(e: sqlx::Error) -> StoreError {
    match e.as_database_error().and_then(|d| d.code()).as_deref() {
        Some("54011") => StoreError::Conflict(FieldErrors::single("fields", "column_limit")),
        _ => internal(e),
    }
}

/// A table's definition read through `conn` (a transaction sees its own changes). Without
/// `with_trash`, a trashed table is NotFound and trashed fields are left out; with it, both are
/// loaded under the names they had.
async fn load_def(conn: &mut PgConnection, tenant: TenantId, id: TableId, with_trash: bool) -> StoreResult<TableDef> {
    // One statement for the table and its fields (a LEFT JOIN: a table may have none yet).
    let sql = if with_trash {
        "SELECT t.name AS t_name, t.trashed_name AS t_trashed, t.description, t.created_at, f.id AS f_id, \
         f.position, COALESCE(f.trashed_name, f.name) AS f_name, f.kind, f.rules \
         FROM user_tables t LEFT JOIN user_fields f ON f.table_id = t.id \
         WHERE t.id = $1 AND t.tenant_id = $2 ORDER BY f.position, f.created_at, f.id"
    } else {
        "SELECT t.name AS t_name, NULL::text AS t_trashed, t.description, t.created_at, f.id AS f_id, f.position, \
         f.name AS f_name, f.kind, f.rules \
         FROM user_tables t LEFT JOIN user_fields f ON f.table_id = t.id AND f.deleted_at IS NULL \
         WHERE t.id = $1 AND t.tenant_id = $2 AND t.deleted_at IS NULL ORDER BY f.position, f.created_at, f.id"
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

/// Rewrites the keyword text of every record of a table from its live searchable fields, in
/// SQL (the same text as `search_text`: each value followed by a newline).
async fn rebuild_search(tx: &mut Transaction<'static, Postgres>, def: &TableDef) -> StoreResult<()> {
    let t = ut::table_ident(def.id);
    let sql = format!("UPDATE {t} SET search_text = {}", search_key(&ut::search_expr(def, "chr(10)")));
    sqlx::query(AssertSqlSafe(sql)).persistent(false).execute(&mut **tx).await.map_err(internal)?;
    Ok(())
}

/// The statements that drop a table's storage.
fn drop_storage(table: TableId) -> Vec<String> {
    vec![format!("DROP TABLE IF EXISTS {}", ut::table_ident(table))]
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
async fn create_storage(tx: &mut Transaction<'static, Postgres>, id: TableId) -> StoreResult<()> {
    let ddl = format!(
        "CREATE TABLE {} ({ID_COLUMN}, version BIGINT NOT NULL, created_at BIGINT NOT NULL, created_by TEXT NOT NULL, \
         updated_at BIGINT NOT NULL, updated_by TEXT NOT NULL, search_text TEXT NOT NULL DEFAULT '')",
        ut::table_ident(id)
    );
    sqlx::query(AssertSqlSafe(ddl)).persistent(false).execute(&mut **tx).await.map_err(internal)?;
    // The keyword index: a pg_trgm GIN index over the record's searchable text.
    let idx = format!(
        "CREATE INDEX s_{} ON {} USING gin (search_text gin_trgm_ops)",
        id.as_uuid().simple(),
        ut::table_ident(id)
    );
    sqlx::query(AssertSqlSafe(idx)).persistent(false).execute(&mut **tx).await.map_err(internal)?;
    for ddl in ut::system_indexes(id) {
        sqlx::query(AssertSqlSafe(ddl)).persistent(false).execute(&mut **tx).await.map_err(internal)?;
    }
    Ok(())
}

/// Adds a field's column and its index (unique or for filtering and sorting), inside the
/// caller's transaction.
async fn add_column(tx: &mut Transaction<'static, Postgres>, table: TableId, field: &FieldDef) -> StoreResult<()> {
    let ddl = format!(
        "ALTER TABLE {} ADD COLUMN {} {}",
        ut::table_ident(table),
        ut::field_ident(field.id),
        column_type(field)
    );
    exclusive_ddl(tx, ddl).await.map_err(column_error)?;
    for ddl in field_indexes(table, field) {
        sqlx::query(AssertSqlSafe(ddl)).persistent(false).execute(&mut **tx).await.map_err(internal)?;
    }
    Ok(())
}

/// The SQL type of a field's column. An auto-number is the record number, computed by the
/// database from the id.
fn column_type(field: &FieldDef) -> &'static str {
    if field.kind.is_generated() {
        return "BIGINT GENERATED ALWAYS AS (id) STORED";
    }
    match field.kind.storage() {
        Storage::Text => "TEXT",
        Storage::Int => INT_TYPE,
        // A checkbox is never empty: records that were there before it read as unticked, as a
        // new record that is not given it does (`guard::defaults`). (A constant default: no
        // rewrite of the table.)
        Storage::Bool => "BOOLEAN DEFAULT false",
    }
}

/// For a change that makes a field unique: how many records share their (new) value of the
/// field with another record, and the first of them ordered by value, each with its value as
/// shown and the reason.
async fn duplicates(
    tx: &mut Transaction<'static, Postgres>,
    def: &TableDef,
    field: &FieldDef,
) -> StoreResult<(u64, Vec<(i64, String, &'static str)>)> {
    let t = ut::table_ident(def.id);
    let col = ut::field_ident(field.id);
    let shared = format!("SELECT {col} FROM {t} WHERE {col} IS NOT NULL GROUP BY {col} HAVING count(*) > 1");
    let count = format!("SELECT count(*) FROM {t} WHERE {col} IN ({shared})");
    let n: i64 =
        sqlx::query_scalar(AssertSqlSafe(count)).persistent(false).fetch_one(&mut **tx).await.map_err(internal)?;
    if n == 0 {
        return Ok((0, Vec::new()));
    }
    let one = TableDef { fields: vec![field.clone()], ..def.clone() };
    let first = format!(
        "SELECT {} FROM {t} WHERE {col} IN ({shared}) ORDER BY {col}, id LIMIT {}",
        record_columns(&one),
        daicho_store::RETYPE_REPORT_MAX
    );
    let rows = sqlx::query(AssertSqlSafe(first)).persistent(false).fetch_all(&mut **tx).await.map_err(internal)?;
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
/// per statement as the parameter limit allows), each with its keyword text, inside the
/// caller's transaction.
///
/// A full statement (500 rows) is prepared once and kept on the connection: PostgreSQL
/// takes about 8 ms to parse and analyse one, which an import of 100,000 rows paid 200 times
/// (and sqlx waited for each parse before binding). Its text ends with the columns' SQL types
/// (as `select_by_id`'s). A kept statement of that size takes 2.8 MB in the backend, so
/// `import_records` lets the connection's statements go when the import ends.
async fn insert_many(
    tx: &mut Transaction<'static, Postgres>,
    table: &TableDef,
    who: &str,
    at: OffsetDateTime,
    rows: &[Vec<(FieldId, Cell)>],
) -> StoreResult<()> {
    let t = ut::table_ident(table.id);
    for group in rows.chunk_by(|a, b| a.iter().map(|(f, _)| f).eq(b.iter().map(|(f, _)| f))) {
        let fields: Vec<FieldId> = group[0].iter().map(|(f, _)| *f).collect();
        let types = storage_letters(fields.iter().map(|f| storage_of(table, *f)));
        let per_row = 6 + fields.len();
        let chunk = (60_000 / per_row).clamp(1, 500);
        for part in group.chunks(chunk) {
            let mut qb = QueryBuilder::<Postgres>::new(format!(
                "INSERT INTO {t} (version, created_at, created_by, updated_at, updated_by, search_text{}) ",
                fields.iter().map(|f| format!(", {}", ut::field_ident(*f))).collect::<String>()
            ));
            qb.push_values(part, |mut b, row| {
                b.push_bind(1i64)
                    .push_bind(ms(at))
                    .push_bind(who.to_owned())
                    .push_bind(ms(at))
                    .push_bind(who.to_owned())
                    .push("lower(")
                    .push_bind_unseparated(search_key_text(table, row))
                    .push_unseparated(")");
                for (f, c) in row {
                    push_cell_value(&mut b, c, storage_of(table, *f));
                }
            });
            let full = part.len() == chunk;
            if full {
                qb.push(format!(" /* {types} */"));
            }
            qb.build().persistent(full).execute(&mut **tx).await.map_err(|e| record_error(e, table))?;
        }
    }
    Ok(())
}

/// A cell as the next value of a multi-row INSERT, bound with its column's type (also when
/// empty).
fn push_cell_value(b: &mut sqlx::query_builder::Separated<'_, Postgres, &'static str>, c: &Cell, storage: Storage) {
    match (c, storage) {
        (Cell::Null, Storage::Text) => b.push_bind(None::<String>),
        (Cell::Null, Storage::Int) => b.push_bind(None::<i64>),
        (Cell::Null, Storage::Bool) => b.push_bind(None::<bool>),
        (Cell::Text(s), _) => b.push_bind(s.clone()),
        (Cell::Int(n), _) => b.push_bind(*n),
        (Cell::Bool(v), _) => b.push_bind(*v),
    };
}

/// An import's open transaction, as `daicho_store::write_parts` writes into it.
struct ImportTx<'a>(&'a mut Transaction<'static, Postgres>);

#[async_trait]
impl daicho_store::ImportSink for ImportTx<'_> {
    async fn insert(&mut self, w: &ImportWrite<'_>, rows: &[Vec<(FieldId, Cell)>]) -> StoreResult<()> {
        insert_many(self.0, w.table, w.who, w.at, rows).await
    }

    async fn take_staged(&mut self, scope: &TableScope<Import>, id: &str) -> StoreResult<bool> {
        let n = sqlx::query(
            "DELETE FROM staged_imports WHERE id = $1 AND tenant_id = $2 AND table_id = $3 AND user_id = $4",
        )
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
/// does one, in a few statements instead of four for each record: the records are read and
/// locked in id order, each checked (the scope covers it and lets its fields be written on
/// it; a row that changes nothing is left out), written in multi-row UPDATEs (rows that set
/// the same fields together), read again for their history (one multi-row INSERT) and their
/// search text (one multi-row UPDATE). Record by record, in the file's order, where that order
/// matters: a record named twice, or a unique field written (a row may take a value an
/// earlier row gives up, which one statement would refuse).
async fn overwrite_many(
    tx: &mut Transaction<'static, Postgres>,
    scope: &TableScope<Import>,
    w: &ImportWrite<'_>,
    rows: &[(i64, Vec<(FieldId, Cell)>)],
    expects: &[daicho_store::RowExpects],
) -> StoreResult<u64> {
    let table = w.table;
    let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    let unique = |f: &FieldId| table.fields.iter().any(|d| d.id == *f && d.rules.unique);
    if ids.iter().collect::<std::collections::HashSet<_>>().len() != ids.len()
        || rows.iter().any(|(_, cells)| cells.iter().any(|(f, _)| unique(f)))
    {
        let (mut n, mut seen) = (0, std::collections::HashSet::new());
        for (i, (id, cells)) in rows.iter().enumerate() {
            // (Checked before each write, on the record as it stands then, locked: covered
            // first, then not changed after the file's time, which only its first row in the
            // part can say: the next finds it changed by the first.)
            let now = read_records_tx(tx, table, &[*id], true).await?;
            let r = now.get(id).ok_or(StoreError::NotFound)?;
            guard::check_update_row(scope, r, expects.get(i), seen.insert(*id))?;
            n += u64::from(!guard::changed_cells(r, cells).is_empty());
            PgStore::overwrite_in(tx, scope, table, *id, cells, w.at, w.who, w.event, None).await?;
        }
        return Ok(n);
    }
    let old = read_records_tx(tx, table, &ids, true).await?;
    let changed = guard::planned_updates(scope, &old, rows, expects)?;
    let rows = &changed[..];
    let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let t = ut::table_ident(table.id);
    for group in rows.chunk_by(|a, b| a.1.iter().map(|(f, _)| f).eq(b.1.iter().map(|(f, _)| f))) {
        let fields: Vec<FieldId> = group[0].1.iter().map(|(f, _)| *f).collect();
        let names: String = fields.iter().enumerate().map(|(i, _)| format!(", c{i}")).collect();
        let sets: String =
            fields.iter().enumerate().map(|(i, f)| format!(", {} = v.c{i}", ut::field_ident(*f))).collect();
        let chunk = (60_000 / (1 + fields.len())).clamp(1, 500);
        for part in group.chunks(chunk) {
            let mut qb =
                QueryBuilder::<Postgres>::new(format!("UPDATE {t} SET version = {t}.version + 1, updated_at = "));
            qb.push_bind(ms(w.at)).push(", updated_by = ").push_bind(w.who.to_owned()).push(&sets).push(" FROM (");
            qb.push_values(part, |mut b, (id, cells)| {
                b.push_bind(*id);
                for (f, c) in cells {
                    push_cell_value(&mut b, c, storage_of(table, *f));
                }
            });
            qb.push(format!(") AS v (id{names}) WHERE {t}.id = v.id"));
            let n = qb
                .build()
                .persistent(false)
                .execute(&mut **tx)
                .await
                .map_err(|e| record_error(e, table))?
                .rows_affected();
            if n != part.len() as u64 {
                return Err(StoreError::NotFound);
            }
        }
    }
    let now = read_records_tx(tx, table, &ids, false).await?;
    let entries = guard::history_entries(&ids, &old, &now)?;
    let texts: Vec<(i64, String)> =
        ids.iter().filter_map(|id| now.get(id)).map(|n| (n.id, search_key_text(table, &n.cells))).collect();
    let (table_id, at, actor) = (table.id.to_string(), ms(w.event.at), w.event.actor_id.map(|a| a.to_string()));
    for part in entries.chunks(500) {
        let mut qb = QueryBuilder::<Postgres>::new(
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
        qb.build().persistent(false).execute(&mut **tx).await.map_err(internal)?;
    }
    for part in texts.chunks(1_000) {
        let mut qb = QueryBuilder::<Postgres>::new(format!("UPDATE {t} SET search_text = lower(v.body) FROM ("));
        qb.push_values(part, |mut b, (id, text)| {
            b.push_bind(*id).push_bind(text.clone());
        });
        qb.push(format!(") AS v (id, body) WHERE {t}.id = v.id"));
        qb.build().persistent(false).execute(&mut **tx).await.map_err(internal)?;
    }
    Ok(ids.len() as u64)
}

/// Records by id, inside the caller's transaction (those that exist), in statements of 1,000;
/// with `lock`, locked as they are read, in id order (one order for every writer).
async fn read_records_tx(
    tx: &mut Transaction<'static, Postgres>,
    table: &TableDef,
    ids: &[i64],
    lock: bool,
) -> StoreResult<std::collections::HashMap<i64, Record>> {
    let sql = format!(
        "SELECT {} FROM {} WHERE id = ANY($1) ORDER BY id{}",
        record_columns(table),
        ut::table_ident(table.id),
        if lock { " FOR UPDATE" } else { "" }
    );
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    let mut out = std::collections::HashMap::with_capacity(ids.len());
    for part in sorted.chunks(1_000) {
        let rows = sqlx::query(AssertSqlSafe(sql.clone()))
            .persistent(false)
            .bind(part.to_vec())
            .fetch_all(&mut **tx)
            .await
            .map_err(internal)?;
        for row in rows {
            let r = record_from_row(&row, table)?;
            out.insert(r.id, r);
        }
    }
    Ok(out)
}

/// Inserts one record (and its search text) inside the caller's transaction.
async fn insert_in(
    tx: &mut Transaction<'static, Postgres>,
    table: &TableDef,
    who: &str,
    at: OffsetDateTime,
    cells: &[(FieldId, Cell)],
) -> StoreResult<i64> {
    let mut cols = vec![
        "version".to_owned(),
        "created_at".into(),
        "created_by".into(),
        "updated_at".into(),
        "updated_by".into(),
        "search_text".into(),
    ];
    cols.extend(cells.iter().map(|(f, _)| ut::field_ident(*f)));
    let params: Vec<String> =
        (1..=cols.len()).map(|n| if n == 6 { format!("lower({})", ph(n)) } else { ph(n) }).collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({}) RETURNING id",
        ut::table_ident(table.id),
        cols.join(", "),
        params.join(", ")
    );
    let mut q = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql))
        .persistent(false)
        .bind(1i64)
        .bind(ms(at))
        .bind(who)
        .bind(ms(at))
        .bind(who)
        .bind(search_key_text(table, cells));
    for (f, c) in cells {
        q = bind_cell(q, c, storage_of(table, *f));
    }
    let id = q.fetch_one(&mut **tx).await.map_err(|e| record_error(e, table))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::{
        SEARCH_JOIN, SEARCH_SEPARATORS, analyse_after_import, ctype_classifies_unicode, is_separator, joined,
        translate_args,
    };

    #[test]
    fn only_byte_locales_are_warned_about() {
        for bad in ["C", "POSIX"] {
            assert!(!ctype_classifies_unicode(bad), "{bad}");
        }
        for good in ["C.UTF-8", "C.utf8", "en_US.UTF-8", "ja_JP.UTF-8"] {
            assert!(ctype_classifies_unicode(good), "{good}");
        }
    }

    #[test]
    fn the_separator_test_and_the_list_sql_uses_hold_the_same_characters() {
        for c in (0..0x3_0000).filter_map(char::from_u32) {
            assert_eq!(is_separator(c), SEARCH_SEPARATORS.contains(c), "{c:?}");
        }
        for c in ['\'', '\\', '%', '_', SEARCH_JOIN] {
            assert!(!SEARCH_SEPARATORS.contains(c), "{c:?} must not be joined");
        }
    }

    #[test]
    fn the_migration_joins_exactly_what_the_store_joins() {
        let m = include_str!("../migrations/0012_search_joined.sql");
        assert!(m.contains(&translate_args().replace('\'', "''")), "migration 0012 and SEARCH_SEPARATORS differ");
    }

    #[test]
    fn words_are_joined_and_letters_kept() {
        assert_eq!(joined("Invoice 要確認、INV-2023\n東京"), "Invoice\u{1c1}要確認\u{1c1}INV\u{1c1}2023\u{1c1}東京");
        assert_eq!(joined("100%_o'k\\ー"), "100%_o'k\\ー", "kept: LIKE's and SQL's own characters, and letters");
    }

    #[test]
    fn imports_refresh_statistics_when_they_write_a_thousand_rows_and_a_tenth_of_the_table() {
        assert!(analyse_after_import(1_000, -1.0), "a table never analysed");
        assert!(!analyse_after_import(999, -1.0), "a small import waits for autovacuum");
        assert!(analyse_after_import(100_000, 900_000.0));
        assert!(analyse_after_import(90_000, 900_000.0));
        assert!(!analyse_after_import(89_999, 900_000.0));
    }
}

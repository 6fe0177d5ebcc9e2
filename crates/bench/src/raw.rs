//! The database without Daicho: the same SQL file or PostgreSQL database the server uses,
//! opened directly with sqlx (one connection), running the statements the store runs.

use std::str::FromStr as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Postgres, Row as _, Sqlite};

use crate::data::{FIELDS, Storage, V};
use crate::spec::{Dialect, record_columns};

#[derive(Clone)]
pub enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

type SqliteQ<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>;
type PgQ<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

fn bind_sqlite<'q>(q: SqliteQ<'q>, v: &V, storage: Storage) -> SqliteQ<'q> {
    match v {
        V::Null => match storage {
            Storage::Text => q.bind(None::<String>),
            Storage::Int => q.bind(None::<i64>),
            Storage::Bool => q.bind(None::<bool>),
        },
        V::Text(s) => q.bind(s.clone()),
        V::Int(n) => q.bind(*n),
        V::Bool(b) => q.bind(*b),
    }
}

fn bind_pg<'q>(q: PgQ<'q>, v: &V, storage: Storage) -> PgQ<'q> {
    match v {
        V::Null => match storage {
            Storage::Text => q.bind(None::<String>),
            Storage::Int => q.bind(None::<i64>),
            Storage::Bool => q.bind(None::<bool>),
        },
        V::Text(s) => q.bind(s.clone()),
        V::Int(n) => q.bind(*n),
        V::Bool(b) => q.bind(*b),
    }
}

/// Decodes a record row as the store does (every column, typed); returns a checksum so that
/// nothing is optimised away.
fn decode_sqlite(r: &SqliteRow) -> anyhow::Result<u64> {
    let mut sum = r.try_get::<i64, _>(0)? as u64 + r.try_get::<i64, _>(1)? as u64;
    sum += r.try_get::<i64, _>(2)? as u64 + r.try_get::<String, _>(3)?.len() as u64;
    sum += r.try_get::<i64, _>(4)? as u64 + r.try_get::<String, _>(5)?.len() as u64;
    for (k, f) in FIELDS.iter().enumerate() {
        let i = 6 + k;
        sum += match f.storage {
            Storage::Text => r.try_get::<Option<String>, _>(i)?.map(|s| s.len() as u64),
            Storage::Int => r.try_get::<Option<i64>, _>(i)?.map(|n| n as u64),
            Storage::Bool => r.try_get::<Option<bool>, _>(i)?.map(u64::from),
        }
        .unwrap_or(0);
    }
    Ok(sum)
}

fn decode_pg(r: &PgRow) -> anyhow::Result<u64> {
    let mut sum = r.try_get::<i64, _>(0)? as u64 + r.try_get::<i64, _>(1)? as u64;
    sum += r.try_get::<i64, _>(2)? as u64 + r.try_get::<String, _>(3)?.len() as u64;
    sum += r.try_get::<i64, _>(4)? as u64 + r.try_get::<String, _>(5)?.len() as u64;
    for (k, f) in FIELDS.iter().enumerate() {
        let i = 6 + k;
        sum += match f.storage {
            Storage::Text => r.try_get::<Option<String>, _>(i)?.map(|s| s.len() as u64),
            Storage::Int => r.try_get::<Option<i64>, _>(i)?.map(|n| n as u64),
            Storage::Bool => r.try_get::<Option<bool>, _>(i)?.map(u64::from),
        }
        .unwrap_or(0);
    }
    Ok(sum)
}

/// The storage type of each bind value, for typed NULLs (only cursor values may be NULL).
fn storage_of(v: &V) -> Storage {
    match v {
        V::Int(_) => Storage::Int,
        V::Bool(_) => Storage::Bool,
        _ => Storage::Text,
    }
}

impl Raw {
    pub async fn sqlite(path: &std::path::Path, connections: u32) -> anyhow::Result<Self> {
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // As Daicho's pools (for connections used within the last 5 s): no ping before each use.
        let pool = SqlitePoolOptions::new().max_connections(connections).test_before_acquire(false);
        Ok(Self::Sqlite(pool.connect_with(opts).await?))
    }

    pub async fn postgres(url: &str, connections: u32) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new().max_connections(connections).test_before_acquire(false);
        Ok(Self::Postgres(pool.connect(url).await?))
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Raw::Sqlite(_) => Dialect::Sqlite,
            Raw::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs a record query and decodes every row; returns the time and the ids.
    pub async fn records(&self, sql: &str, binds: &[V]) -> anyhow::Result<(Duration, Vec<i64>)> {
        let t = Instant::now();
        let mut check = 0u64;
        let mut ids = Vec::new();
        match self {
            Raw::Sqlite(p) => {
                let mut q = sqlx::query(AssertSqlSafe(sql.to_owned()));
                for b in binds {
                    q = bind_sqlite(q, b, storage_of(b));
                }
                let rows = q.fetch_all(p).await?;
                for r in &rows {
                    check = check.wrapping_add(decode_sqlite(r)?);
                }
                let elapsed = t.elapsed();
                for r in &rows {
                    ids.push(r.try_get(0)?);
                }
                std::hint::black_box(check);
                Ok((elapsed, ids))
            }
            Raw::Postgres(p) => {
                let mut q = sqlx::query(AssertSqlSafe(sql.to_owned()));
                for b in binds {
                    q = bind_pg(q, b, storage_of(b));
                }
                let rows = q.fetch_all(p).await?;
                for r in &rows {
                    check = check.wrapping_add(decode_pg(r)?);
                }
                let elapsed = t.elapsed();
                for r in &rows {
                    ids.push(r.try_get(0)?);
                }
                std::hint::black_box(check);
                Ok((elapsed, ids))
            }
        }
    }

    /// The query plan: EXPLAIN QUERY PLAN on SQLite, EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL.
    pub async fn explain(&self, sql: &str, binds: &[V]) -> anyhow::Result<Vec<String>> {
        match self {
            Raw::Sqlite(p) => {
                let mut q = sqlx::query(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
                for b in binds {
                    q = bind_sqlite(q, b, storage_of(b));
                }
                let rows = q.fetch_all(p).await?;
                let mut out = Vec::new();
                for r in &rows {
                    let (id, parent): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
                    let detail: String = r.try_get(3)?;
                    let depth = out_depth(&rows, parent)?;
                    out.push(format!("{}{detail}  [{id}]", "  ".repeat(depth)));
                }
                Ok(out)
            }
            Raw::Postgres(p) => {
                let mut q = sqlx::query(AssertSqlSafe(format!("EXPLAIN (ANALYZE, BUFFERS) {sql}")));
                for b in binds {
                    q = bind_pg(q, b, storage_of(b));
                }
                let rows = q.fetch_all(p).await?;
                rows.iter().map(|r| r.try_get::<String, _>(0).map_err(anyhow::Error::from)).collect()
            }
        }
    }

    /// Runs a statement that returns one (value, id) row, e.g. the row at an offset.
    pub async fn value_and_id(&self, sql: &str, storage: Storage) -> anyhow::Result<(V, i64)> {
        match self {
            Raw::Sqlite(p) => {
                let r = sqlx::query(AssertSqlSafe(sql.to_owned())).fetch_one(p).await?;
                let v = match storage {
                    Storage::Text => r.try_get::<Option<String>, _>(0)?.map(V::Text),
                    Storage::Int => r.try_get::<Option<i64>, _>(0)?.map(V::Int),
                    Storage::Bool => r.try_get::<Option<bool>, _>(0)?.map(V::Bool),
                };
                Ok((v.unwrap_or(V::Null), r.try_get(1)?))
            }
            Raw::Postgres(p) => {
                let r = sqlx::query(AssertSqlSafe(sql.to_owned())).fetch_one(p).await?;
                let v = match storage {
                    Storage::Text => r.try_get::<Option<String>, _>(0)?.map(V::Text),
                    Storage::Int => r.try_get::<Option<i64>, _>(0)?.map(V::Int),
                    Storage::Bool => r.try_get::<Option<bool>, _>(0)?.map(V::Bool),
                };
                Ok((v.unwrap_or(V::Null), r.try_get(1)?))
            }
        }
    }

    pub async fn scalar_i64(&self, sql: &str) -> anyhow::Result<i64> {
        Ok(match self {
            Raw::Sqlite(p) => sqlx::query_scalar(AssertSqlSafe(sql.to_owned())).fetch_one(p).await?,
            Raw::Postgres(p) => sqlx::query_scalar(AssertSqlSafe(sql.to_owned())).fetch_one(p).await?,
        })
    }

    pub async fn text(&self, sql: &str) -> anyhow::Result<String> {
        Ok(match self {
            Raw::Sqlite(p) => sqlx::query_scalar(AssertSqlSafe(sql.to_owned())).fetch_one(p).await?,
            Raw::Postgres(p) => sqlx::query_scalar(AssertSqlSafe(sql.to_owned())).fetch_one(p).await?,
        })
    }

    pub async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        match self {
            Raw::Sqlite(p) => sqlx::query(AssertSqlSafe(sql.to_owned())).execute(p).await.map(|_| ())?,
            Raw::Postgres(p) => sqlx::query(AssertSqlSafe(sql.to_owned())).execute(p).await.map(|_| ())?,
        }
        Ok(())
    }

    /// The store's update of one record: the row (version checked) and its search text, in
    /// one write transaction (without Daicho's audit event).
    #[allow(clippy::too_many_arguments)]
    pub async fn update(
        &self,
        table: &str,
        cols: &[String],
        id: i64,
        version: i64,
        qty: i64,
        status: &str,
        search: String,
        at_ms: i64,
    ) -> anyhow::Result<Duration> {
        let (q_col, s_col) = (&cols[crate::data::QTY], &cols[crate::data::STATUS]);
        let t = Instant::now();
        let n = match self {
            Raw::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                let sql = format!(
                    "UPDATE {table} SET version = version + 1, updated_at = ?1, updated_by = ?2, {q_col} = ?3, \
                     {s_col} = ?4 WHERE id = ?5 AND version = ?6"
                );
                let n = sqlx::query(AssertSqlSafe(sql))
                    .bind(at_ms)
                    .bind("bench")
                    .bind(qty)
                    .bind(status.to_owned())
                    .bind(id)
                    .bind(version)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let sql = format!("UPDATE {table}_fts SET body = ?1 WHERE rowid = ?2");
                sqlx::query(AssertSqlSafe(sql)).bind(search).bind(id).execute(&mut *tx).await?;
                tx.commit().await?;
                n
            }
            Raw::Postgres(p) => {
                let mut tx = p.begin().await?;
                let sql = format!(
                    "UPDATE {table} SET version = version + 1, updated_at = $1, updated_by = $2, {q_col} = $3, \
                     {s_col} = $4 WHERE id = $5 AND version = $6"
                );
                let n = sqlx::query(AssertSqlSafe(sql))
                    .bind(at_ms)
                    .bind("bench")
                    .bind(qty)
                    .bind(status.to_owned())
                    .bind(id)
                    .bind(version)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let sql = format!("UPDATE {table} SET search_text = $1 WHERE id = $2");
                sqlx::query(AssertSqlSafe(sql)).bind(search).bind(id).execute(&mut *tx).await?;
                tx.commit().await?;
                n
            }
        };
        anyhow::ensure!(n == 1, "raw update of {id} touched {n} rows");
        Ok(t.elapsed())
    }

    /// Creates an empty table shaped like Daicho's (same columns, indexes and keyword index)
    /// for the raw import; returns its name.
    pub async fn create_scratch(&self, cols: &[String]) -> anyhow::Result<String> {
        let name = "bench_raw_import".to_owned();
        let d = self.dialect();
        let (id_col, int_t, bool_t, extra) = match d {
            Dialect::Sqlite => ("id INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER", "INTEGER", ""),
            Dialect::Postgres => {
                ("id BIGSERIAL PRIMARY KEY", "BIGINT", "BOOLEAN", ", search_text TEXT NOT NULL DEFAULT ''")
            }
        };
        let mut ddl = format!(
            "CREATE TABLE {name} ({id_col}, version BIGINT NOT NULL, created_at BIGINT NOT NULL, \
             created_by TEXT NOT NULL, updated_at BIGINT NOT NULL, updated_by TEXT NOT NULL{extra}"
        );
        for (c, f) in cols.iter().zip(FIELDS.iter()) {
            let t = match f.storage {
                Storage::Text => "TEXT",
                Storage::Int => int_t,
                Storage::Bool => bool_t,
            };
            ddl.push_str(&format!(", {c} {t}"));
        }
        ddl.push(')');
        self.execute(&format!("DROP TABLE IF EXISTS {name}")).await?;
        if d == Dialect::Sqlite {
            self.execute(&format!("DROP TABLE IF EXISTS {name}_fts")).await?;
        }
        self.execute(&ddl).await?;
        match d {
            Dialect::Sqlite => {
                self.execute(&format!("CREATE VIRTUAL TABLE {name}_fts USING fts5(body, tokenize = 'trigram')")).await?
            }
            Dialect::Postgres => {
                self.execute(&format!("CREATE INDEX s_{name} ON {name} USING gin (search_text gin_trgm_ops)")).await?
            }
        }
        for (c, f) in cols.iter().zip(FIELDS.iter()) {
            if f.indexed {
                self.execute(&format!("CREATE INDEX i_{name}_{c} ON {name} ({c}, id)")).await?;
            }
        }
        // The system columns' indexes every user table has (`ut::system_indexes`).
        for c in ["created_at", "created_by", "updated_at", "updated_by"] {
            self.execute(&format!("CREATE INDEX i_{name}_{c} ON {name} ({c}, id)")).await?;
        }
        Ok(name)
    }

    pub async fn drop_scratch(&self, name: &str) -> anyhow::Result<()> {
        self.execute(&format!("DROP TABLE IF EXISTS {name}")).await?;
        if self.dialect() == Dialect::Sqlite {
            self.execute(&format!("DROP TABLE IF EXISTS {name}_fts")).await?;
        }
        Ok(())
    }

    /// Inserts rows one statement each (as the store's import does), in one transaction.
    pub async fn insert_rows(&self, name: &str, cols: &[String], rows: &[[V; 8]]) -> anyhow::Result<Duration> {
        let at = 1_767_225_600_000i64;
        let t = Instant::now();
        match self {
            Raw::Sqlite(p) => {
                let params: Vec<String> = (1..=5 + cols.len()).map(|n| format!("?{n}")).collect();
                let sql = format!(
                    "INSERT INTO {name} (version, created_at, created_by, updated_at, updated_by, {}) VALUES ({}) \
                     RETURNING id",
                    cols.join(", "),
                    params.join(", ")
                );
                let fts = format!("INSERT INTO {name}_fts (rowid, body) VALUES (?1, ?2)");
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                for r in rows {
                    let mut q = sqlx::query(AssertSqlSafe(sql.clone()))
                        .bind(1i64)
                        .bind(at)
                        .bind("bench")
                        .bind(at)
                        .bind("bench");
                    for (v, f) in r.iter().zip(FIELDS.iter()) {
                        q = bind_sqlite(q, v, f.storage);
                    }
                    let id: i64 = q.fetch_one(&mut *tx).await?.try_get(0)?;
                    sqlx::query(AssertSqlSafe(fts.clone()))
                        .bind(id)
                        .bind(crate::data::search_text(r))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
            Raw::Postgres(p) => {
                let params: Vec<String> = (1..=6 + cols.len()).map(|n| format!("${n}")).collect();
                let sql = format!(
                    "INSERT INTO {name} (version, created_at, created_by, updated_at, updated_by, search_text, {}) \
                     VALUES ({}) RETURNING id",
                    cols.join(", "),
                    params.join(", ")
                );
                let mut tx = p.begin().await?;
                for r in rows {
                    let mut q = sqlx::query(AssertSqlSafe(sql.clone()))
                        .bind(1i64)
                        .bind(at)
                        .bind("bench")
                        .bind(at)
                        .bind("bench")
                        .bind(crate::data::search_text(r));
                    for (v, f) in r.iter().zip(FIELDS.iter()) {
                        q = bind_pg(q, v, f.storage);
                    }
                    let _id: i64 = q.fetch_one(&mut *tx).await?.try_get(0)?;
                }
                tx.commit().await?;
            }
        }
        Ok(t.elapsed())
    }

    /// Inserts rows `batch` at a time with multi-row INSERT statements (and, on SQLite, one
    /// multi-row keyword-index INSERT per batch), in one transaction: what batching would gain.
    pub async fn insert_rows_batched(
        &self,
        name: &str,
        cols: &[String],
        rows: &[[V; 8]],
        batch: usize,
    ) -> anyhow::Result<Duration> {
        let at = 1_767_225_600_000i64;
        let t = Instant::now();
        match self {
            Raw::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                for chunk in rows.chunks(batch) {
                    let one = format!("(1, {at}, 'bench', {at}, 'bench', {})", vec!["?"; cols.len()].join(", "));
                    let sql = format!(
                        "INSERT INTO {name} (version, created_at, created_by, updated_at, updated_by, {}) VALUES {} \
                         RETURNING id",
                        cols.join(", "),
                        vec![one; chunk.len()].join(", ")
                    );
                    let mut q = sqlx::query(AssertSqlSafe(sql));
                    for r in chunk {
                        for (v, f) in r.iter().zip(FIELDS.iter()) {
                            q = bind_sqlite(q, v, f.storage);
                        }
                    }
                    let ids: Vec<i64> =
                        q.fetch_all(&mut *tx).await?.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
                    let fts = format!(
                        "INSERT INTO {name}_fts (rowid, body) VALUES {}",
                        vec!["(?, ?)"; chunk.len()].join(", ")
                    );
                    let mut q = sqlx::query(AssertSqlSafe(fts));
                    for (id, r) in ids.iter().zip(chunk) {
                        q = q.bind(*id).bind(crate::data::search_text(r));
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            Raw::Postgres(p) => {
                let mut tx = p.begin().await?;
                for chunk in rows.chunks(batch) {
                    let width = cols.len() + 1;
                    let values: Vec<String> = (0..chunk.len())
                        .map(|k| {
                            let ps: Vec<String> = (1..=width).map(|j| format!("${}", k * width + j)).collect();
                            format!("(1, {at}, 'bench', {at}, 'bench', {})", ps.join(", "))
                        })
                        .collect();
                    let sql = format!(
                        "INSERT INTO {name} (version, created_at, created_by, updated_at, updated_by, search_text, {}) \
                         VALUES {}",
                        cols.join(", "),
                        values.join(", ")
                    );
                    let mut q = sqlx::query(AssertSqlSafe(sql));
                    for r in chunk {
                        q = q.bind(crate::data::search_text(r));
                        for (v, f) in r.iter().zip(FIELDS.iter()) {
                            q = bind_pg(q, v, f.storage);
                        }
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(t.elapsed())
    }

    /// Reads the whole table the way the export does (keyset batches of 1,000 by id,
    /// newest first), decoding every row; returns the rows and the time.
    pub async fn export(&self, table: &str, cols: &[String]) -> anyhow::Result<(u64, Duration)> {
        let d = self.dialect();
        let (p1, p2) = match d {
            Dialect::Sqlite => ("?", "?"),
            Dialect::Postgres => ("$1", "$2"),
        };
        let first = format!("SELECT {} FROM {table} WHERE 1 = 1 ORDER BY id DESC LIMIT {p1}", record_columns(cols));
        let next = format!(
            "SELECT {} FROM {table} WHERE 1 = 1 AND id < {p1} ORDER BY id DESC LIMIT {p2}",
            record_columns(cols)
        );
        let t = Instant::now();
        let mut rows = 0u64;
        let mut after: Option<i64> = None;
        let mut check = 0u64;
        loop {
            let (n, last) = match self {
                Raw::Sqlite(p) => {
                    let q = match after {
                        None => sqlx::query(AssertSqlSafe(first.clone())).bind(1000i64),
                        Some(a) => sqlx::query(AssertSqlSafe(next.clone())).bind(a).bind(1000i64),
                    };
                    let batch = q.fetch_all(p).await?;
                    for r in &batch {
                        check = check.wrapping_add(decode_sqlite(r)?);
                    }
                    let last: Option<i64> = batch.last().map(|r| r.try_get(0)).transpose()?;
                    (batch.len(), last)
                }
                Raw::Postgres(p) => {
                    let q = match after {
                        None => sqlx::query(AssertSqlSafe(first.clone())).bind(1000i64),
                        Some(a) => sqlx::query(AssertSqlSafe(next.clone())).bind(a).bind(1000i64),
                    };
                    let batch = q.fetch_all(p).await?;
                    for r in &batch {
                        check = check.wrapping_add(decode_pg(r)?);
                    }
                    let last: Option<i64> = batch.last().map(|r| r.try_get(0)).transpose()?;
                    (batch.len(), last)
                }
            };
            rows += n as u64;
            if n < 1000 {
                break;
            }
            after = Some(last.context("a full batch has a last row")?);
        }
        std::hint::black_box(check);
        Ok((rows, t.elapsed()))
    }

    /// Runs a statement and returns the number of rows, without decoding them.
    pub async fn fetch(&self, sql: &str, binds: &[V]) -> anyhow::Result<usize> {
        Ok(match self {
            Raw::Sqlite(p) => {
                let mut q = sqlx::query(AssertSqlSafe(sql.to_owned()));
                for b in binds {
                    q = bind_sqlite(q, b, storage_of(b));
                }
                q.fetch_all(p).await?.len()
            }
            Raw::Postgres(p) => {
                let mut q = sqlx::query(AssertSqlSafe(sql.to_owned()));
                for b in binds {
                    q = bind_pg(q, b, storage_of(b));
                }
                q.fetch_all(p).await?.len()
            }
        })
    }

    /// Runs the units in turn from `tasks` concurrent tasks for `secs` seconds; a unit is a list
    /// of statements run one after the other, the last one a record query (decoded). Returns
    /// the units per second.
    pub async fn throughput(&self, tasks: u32, secs: u32, queries: Vec<Vec<(String, Vec<V>)>>) -> anyhow::Result<f64> {
        let queries = std::sync::Arc::new(queries);
        let start = Instant::now();
        let deadline = start + Duration::from_secs(u64::from(secs));
        let mut set = tokio::task::JoinSet::new();
        for k in 0..tasks {
            let (raw, queries) = (self.clone(), queries.clone());
            set.spawn(async move {
                let mut i = k as usize * 7919;
                let mut done = 0u64;
                while Instant::now() < deadline {
                    let unit = &queries[i % queries.len()];
                    for (k, (sql, binds)) in unit.iter().enumerate() {
                        if k + 1 == unit.len() {
                            raw.records(sql, binds).await?;
                        } else {
                            raw.fetch(sql, binds).await?;
                        }
                    }
                    i += 1;
                    done += 1;
                }
                anyhow::Ok(done)
            });
        }
        let mut total = 0;
        while let Some(r) = set.join_next().await {
            total += r??;
        }
        Ok(total as f64 / start.elapsed().as_secs_f64())
    }

    pub async fn close(self) {
        match self {
            Raw::Sqlite(p) => p.close().await,
            Raw::Postgres(p) => p.close().await,
        }
    }
}

/// The nesting depth of an EXPLAIN QUERY PLAN row (rows list their parent's id).
fn out_depth(rows: &[SqliteRow], mut parent: i64) -> anyhow::Result<usize> {
    let mut depth = 0;
    while parent != 0 && depth < 20 {
        let p = rows.iter().find(|r| r.try_get::<i64, _>(0).map(|id| id == parent).unwrap_or(false));
        match p {
            Some(r) => parent = r.try_get(1)?,
            None => break,
        }
        depth += 1;
    }
    Ok(depth)
}

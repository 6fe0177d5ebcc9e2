//! `daicho-bench`: builds a table of N records (default 1,000,000) with eight fields of mixed
//! types in the real release server (a `daicho serve` subprocess on loopback), measures what a
//! user sees over HTTPS (CSV import, filtered and sorted first pages, keyword searches, a deep
//! page, get and update, CSV export, throughput under wrk, the server's memory), then runs the
//! same statements on the database directly, and writes a Markdown report.

mod api;
mod data;
mod pgbench;
mod raw;
mod server;
mod spec;
mod wrk;

use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use serde_json::json;

use crate::data::{ACTIVE, AMOUNT, CHOICES, DATE, FIELDS, NAME, QTY, STATUS, V};
use crate::raw::Raw;
use crate::server::{MemSampler, ServerSpec, proc_status};
use crate::spec::{Filter, ListSpec, ident};

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum StoreKind {
    Sqlite,
    Postgres,
}

#[derive(Parser)]
#[command(name = "daicho-bench", about = "The million-record benchmark of Daicho (see docs/PERFORMANCE.md)")]
struct Args {
    /// Records in the table.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// The store the server runs on.
    #[arg(long, value_enum, default_value_t = StoreKind::Sqlite)]
    store: StoreKind,
    /// PostgreSQL server to create the benchmark database in (an administrator URL, as
    /// scripts/with-postgres exports it).
    #[arg(long, env = "DAICHO_TEST_POSTGRES_URL")]
    postgres_url: Option<String>,
    /// The daicho binary (default: `daicho` next to this program, i.e. target/release/daicho).
    #[arg(long)]
    daicho: Option<PathBuf>,
    /// Where the Markdown report goes (default: target/bench/<store>-<rows>.md).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Throwaway data directory (default: a new directory under the system's temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Keep the data directory afterwards.
    #[arg(long)]
    keep: bool,
    /// Sequential requests per latency measurement.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Stop a latency measurement after this many seconds (once it has 20 samples).
    #[arg(long, default_value_t = 10)]
    max_op_seconds: u64,
    /// Rows of the raw-database import (into an empty table of the same shape), compared with
    /// Daicho's first file (also into an empty table).
    #[arg(long, default_value_t = 100_000)]
    raw_import_rows: u64,
    /// Rows per import request (Daicho's limit is 100,000).
    #[arg(long, default_value_t = 100_000)]
    import_batch: u64,
    #[arg(long, default_value_t = 10)]
    wrk_seconds: u32,
    /// wrk runs per throughput measurement; the median run is reported, with every run's rate
    #[arg(long, default_value_t = 3)]
    wrk_runs: u32,
    #[arg(long, default_value_t = 16)]
    wrk_connections: u32,
    #[arg(long, default_value_t = 2)]
    wrk_threads: u32,
    /// An extra KEY=VALUE environment variable for the server (for diagnosis, e.g. a malloc
    /// setting); repeatable.
    #[arg(long, value_parser = parse_env)]
    server_env: Vec<(String, String)>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| "expected KEY=VALUE".to_owned())
}

/// Latency statistics in milliseconds.
#[derive(Clone)]
struct Stats {
    n: usize,
    p50: f64,
    p99: f64,
    max: f64,
}

impl Stats {
    fn of(mut d: Vec<Duration>) -> Self {
        d.sort();
        let ms = |x: Duration| x.as_secs_f64() * 1000.0;
        let n = d.len();
        // Nearest rank.
        let rank = |p: f64| d[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Self { n, p50: ms(rank(0.50)), p99: ms(rank(0.99)), max: ms(d[n - 1]) }
    }
}

/// Calls `f(i)` until `samples` timings are taken or the time runs out (after at least 20),
/// after two untimed warm-up calls.
async fn sample<F, Fut>(samples: usize, max: Duration, mut f: F) -> anyhow::Result<Stats>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<Duration>>,
{
    f(0).await?;
    f(1).await?;
    let start = Instant::now();
    let mut d = Vec::with_capacity(samples);
    for i in 0..samples {
        d.push(f(i + 2).await?);
        if start.elapsed() > max && d.len() >= 20 {
            break;
        }
    }
    Ok(Stats::of(d))
}

struct LatRow {
    label: String,
    daicho: Stats,
    rows: usize,
    raw: Option<Stats>,
    raw_plain: Option<Stats>,
    target_ms: Option<f64>,
}

struct Report {
    store: StoreKind,
    rows: u64,
    import_daicho: (f64, Duration, Vec<Duration>),
    import_raw: Option<(u64, f64, Duration)>,
    import_raw_batched: Option<(f64, Duration)>,
    lat: Vec<LatRow>,
    export_daicho: (u64, u64, Duration),
    export_raw: Option<(u64, Duration)>,
    /// `daicho migrate-store` of the whole installation into a fresh SQLite file.
    migrate: Duration,
    /// label, URL, wrk's result, target, raw units/s of the record query alone, raw units/s of
    /// every statement the request runs (session, record).
    wrk: Vec<(String, String, wrk::WrkResult, f64, f64, f64)>,
    mem: Vec<(String, u64, Option<u64>)>,
    plans: Vec<(String, String, Vec<String>)>,
    cpu: Vec<(String, server::CpuSpan)>,
    /// SQL identifiers and their readable stand-ins for the report.
    idents: Vec<(String, String)>,
    notes: Vec<String>,
}

const MB: f64 = 1024.0 * 1024.0;

fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / MB)
}

fn rate(rows: u64, d: Duration) -> f64 {
    rows as f64 / d.as_secs_f64().max(1e-9)
}

fn stamp() -> String {
    let out = std::process::Command::new("date").args(["-u", "+%Y-%m-%d %H:%M:%S UTC"]).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default()
}

fn progress(msg: &str) {
    eprintln!("[{}] {msg}", stamp());
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    if args.rows < 1000 {
        bail!("--rows must be at least 1000");
    }
    let store_name = match args.store {
        StoreKind::Sqlite => "sqlite",
        StoreKind::Postgres => "postgres",
    };
    let binary = match &args.daicho {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("daicho"),
    };
    if !binary.exists() {
        bail!("{} not found: build it with cargo build --release -p daicho", binary.display());
    }
    let work = match &args.work_dir {
        Some(w) => w.clone(),
        None => std::env::temp_dir().join(format!("daicho-bench-{store_name}-{}", std::process::id())),
    };
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    let out = args.out.clone().unwrap_or_else(|| {
        binary
            .parent()
            .and_then(|p| p.parent())
            .map(|t| t.join("bench"))
            .unwrap_or_else(|| PathBuf::from("."))
            .join(format!("{store_name}-{}.md", args.rows))
    });

    let database_url = match args.store {
        StoreKind::Sqlite => None,
        StoreKind::Postgres => {
            let admin = args
                .postgres_url
                .clone()
                .context("--store postgres needs --postgres-url (or run it under scripts/with-postgres)")?;
            Some(create_pg_database(&admin).await?)
        }
    };
    let result = run(&args, &binary, &work, database_url.as_deref()).await;
    if !args.keep {
        let _ = std::fs::remove_dir_all(&work);
    }
    let report = result?;
    let md = render(&report, &args);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, &md)?;
    println!("{md}");
    progress(&format!("report written to {}", out.display()));
    Ok(())
}

async fn create_pg_database(admin: &str) -> anyhow::Result<String> {
    use sqlx::Connection as _;
    let name = format!("daicho_bench_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(admin).await.context("connecting to PostgreSQL")?;
    // The name is made here of fixed text and digits.
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).execute(&mut conn).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
    let _ = conn.close().await;
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin, String::new()),
    };
    let (server, _) = base.rsplit_once('/').context("a database URL has a path")?;
    Ok(format!("{server}/{name}{query}"))
}

async fn run(
    args: &Args,
    binary: &std::path::Path,
    work: &std::path::Path,
    db_url: Option<&str>,
) -> anyhow::Result<Report> {
    let n = args.rows;
    let spec = ServerSpec {
        binary: binary.to_path_buf(),
        data_dir: work.join("data"),
        database_url: db_url.map(str::to_owned),
        port: server::free_port()?,
        env: args.server_env.clone(),
    };
    std::fs::create_dir_all(&spec.data_dir)?;
    progress("creating the tenant (daicho tenant create)");
    let one_time = spec.create_tenant("bench").await?;
    progress(&format!("starting {} serve on 127.0.0.1:{}", binary.display(), spec.port));
    let srv = spec.start().await?;
    let pid = srv.pid;
    let sampler = MemSampler::start(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut mem =
        vec![("idle after start, before any request".to_owned(), proc_status(pid, "VmRSS")?, Some(50 * 1024 * 1024))];
    let api = api::Api::login(&srv.base, &srv.cert_pem, "bench", &one_time).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    mem.push((
        "idle after sign-in and password change (3 argon2id hashes)".to_owned(),
        proc_status(pid, "VmRSS")?,
        Some(50 * 1024 * 1024),
    ));
    sampler.take();
    let (tid, fids) = api.create_table().await?;
    let table = ident("t_", &tid);
    let cols: Vec<String> = fids.iter().map(|f| ident("f_", f)).collect();
    let mut notes = Vec::new();
    let thex = tid.replace('-', "");
    let mut idents = vec![(table.clone(), "t".to_owned()), (format!("s_{thex}"), "s_t".to_owned())];
    for (f, field) in fids.iter().zip(FIELDS.iter()) {
        let fhex = f.replace('-', "");
        idents.push((format!("f_{fhex}"), format!("f_{}", field.name)));
        idents.push((format!("i_{fhex}"), format!("i_{}", field.name)));
    }

    // Import.
    let mut import_times = Vec::new();
    let mut import_cpu = server::CpuSpan::default();
    let mut from = 0;
    while from < n {
        let to = (from + args.import_batch).min(n);
        let csv = data::csv_chunk(from, to);
        let meter = server::CpuMeter::start(pid)?;
        let (inserted, d) = api.import(&tid, csv).await?;
        let c = meter.stop()?;
        import_cpu.server += c.server;
        import_cpu.client += c.client;
        import_cpu.wall += c.wall;
        if inserted != to - from {
            bail!("import of rows {from}..{to} inserted {inserted}");
        }
        progress(&format!("imported {to} rows ({:.0} rows/s for this file)", rate(inserted, d)));
        import_times.push(d);
        from = to;
    }
    let import_total: Duration = import_times.iter().sum();
    let import_daicho = (rate(n, import_total), import_total, import_times);
    mem.push(("peak during import (VmRSS sampled every 50 ms)".into(), sampler.take(), Some(200 * 1024 * 1024)));
    tokio::time::sleep(Duration::from_secs(3)).await;
    mem.push((format!("idle after importing {n} rows"), proc_status(pid, "VmRSS")?, Some(200 * 1024 * 1024)));
    sampler.take();

    let raw = match db_url {
        None => Raw::sqlite(&spec.data_dir.join("daicho.db"), 1).await?,
        Some(u) => Raw::postgres(u, 1).await?,
    };
    let count = raw.scalar_i64(&format!("SELECT COUNT(*) FROM {table}")).await?;
    if count != n as i64 {
        bail!("the table holds {count} rows, expected {n}");
    }
    if db_url.is_some() {
        let sql = format!(
            "SELECT COALESCE(EXTRACT(EPOCH FROM (now() - GREATEST(last_autoanalyze, last_analyze)))::bigint, -1) \
             FROM pg_stat_user_tables WHERE relname = '{table}'"
        );
        let age = raw.scalar_i64(&sql).await?;
        notes.push(if age < 0 {
            "PostgreSQL had not analysed the table yet when the queries ran (no autoanalyze so far).".to_owned()
        } else {
            format!("PostgreSQL's autovacuum had analysed the table {age} s before the queries ran.")
        });
    }

    // The list operations, each as Daicho's API query and as the store's SQL.
    let specs = list_specs(&raw, &table, &cols, n).await?;
    let mut lat = Vec::new();
    let max = Duration::from_secs(args.max_op_seconds);
    for s in &specs {
        let pairs = s.api_pairs(&fids);
        let stats = sample(args.samples, max, |_| {
            let pairs = pairs.clone();
            let api = &api;
            let tid = &tid;
            async move { Ok(api.list(tid, &pairs).await?.0) }
        })
        .await
        .with_context(|| s.label.clone())?;
        let (_, body) = api.list(&tid, &pairs).await?;
        let ids: Vec<i64> =
            body["records"].as_array().map(|a| a.iter().filter_map(|r| r["id"].as_i64()).collect()).unwrap_or_default();
        let (sql, binds) = s.sql(raw.dialect(), &table, &cols, false);
        let (_, raw_ids) = raw.records(&sql, &binds).await?;
        if ids != raw_ids {
            bail!(
                "{}: Daicho returned ids {:?}.., the raw query {:?}..",
                s.label,
                &ids[..ids.len().min(5)],
                &raw_ids[..raw_ids.len().min(5)]
            );
        }
        progress(&format!(
            "{}: p50 {:.2} ms, p99 {:.2} ms ({} samples, {} rows)",
            s.label,
            stats.p50,
            stats.p99,
            stats.n,
            ids.len()
        ));
        lat.push(LatRow {
            label: s.label.clone(),
            daicho: stats,
            rows: ids.len(),
            raw: None,
            raw_plain: None,
            target_ms: Some(20.0),
        });
    }
    // Get and update one record.
    let mut rng = data::Rng::new(42);
    let get_ids: Vec<i64> = (0..args.samples + 2).map(|_| 1 + rng.below(n) as i64).collect();
    let stats = sample(args.samples, max, |i| {
        let path = format!("/api/v1/tables/{tid}/records/{}", get_ids[i]);
        let api = &api;
        async move { Ok(api.get(&path).await?.0) }
    })
    .await?;
    progress(&format!("get by id: p50 {:.2} ms, p99 {:.2} ms", stats.p50, stats.p99));
    lat.push(LatRow {
        label: "get one record by id".into(),
        daicho: stats,
        rows: 1,
        raw: None,
        raw_plain: None,
        target_ms: None,
    });
    let step = ((n / (args.samples as u64 + 4)) / 10 * 10).max(10);
    let upd_id = |i: usize, offset: u64| (i as u64 * step + offset) as i64;
    let stats = sample(args.samples, max, |i| {
        let (api, tid, fids) = (&api, &tid, &fids);
        let id = upd_id(i, 1);
        async move {
            let values = json!({ fids[QTY].as_str(): 7, fids[STATUS].as_str(): "受注" });
            api.patch(tid, id, values, 1).await
        }
    })
    .await?;
    progress(&format!("update by id: p50 {:.2} ms, p99 {:.2} ms", stats.p50, stats.p99));
    lat.push(LatRow {
        label: "update one record (PATCH, version checked)".into(),
        daicho: stats,
        rows: 1,
        raw: None,
        raw_plain: None,
        target_ms: None,
    });
    sampler.take();

    // Throughput under 16 concurrent clients.
    let script_dir = work.join("wrk");
    std::fs::create_dir_all(&script_dir)?;
    let run = wrk::WrkRun {
        base: &srv.base,
        cookie: &api.cookie,
        threads: args.wrk_threads,
        connections: args.wrk_connections,
        seconds: args.wrk_seconds,
        script_dir: &script_dir,
    };
    let mut wrk_results = Vec::new();
    progress("wrk: get by id");
    let meter = server::CpuMeter::start(pid)?;
    let mut runs = Vec::new();
    for _ in 0..args.wrk_runs.max(1) {
        runs.push(run.random_ids("get", &format!("/api/v1/tables/{tid}/records/"), n).await?);
    }
    let r = wrk::median(runs).context("no wrk run")?;
    let mut cpu = vec![("CSV import (the requests only)".to_owned(), import_cpu)];
    cpu.push(("wrk, get by id".to_owned(), meter.stop()?));
    wrk_results.push((
        "get one record by id (random ids)".to_owned(),
        format!("GET /api/v1/tables/{{tid}}/records/{{random 1..{n}}}"),
        r,
        10_000.0,
        0.0,
        0.0,
    ));
    // The same as a staff member who may view the table through a group, as most users are:
    // an administrator's rights need no grants, a member's come from their groups' grants.
    let otp = api.add_viewer(&tid, "staff1").await?;
    let staff = api::Api::login_as(&srv.base, &srv.cert_pem, "bench", "staff1", &otp).await?;
    let staff_run = wrk::WrkRun { cookie: &staff.cookie, ..run };
    progress("wrk: get by id, as a staff member");
    let meter = server::CpuMeter::start(pid)?;
    let mut runs = Vec::new();
    for _ in 0..args.wrk_runs.max(1) {
        runs.push(staff_run.random_ids("get", &format!("/api/v1/tables/{tid}/records/"), n).await?);
    }
    let r = wrk::median(runs).context("no wrk run")?;
    cpu.push(("wrk, get by id as a staff member".to_owned(), meter.stop()?));
    wrk_results.push((
        "get one record by id (random ids), as a staff member with view granted through a group".to_owned(),
        format!("GET /api/v1/tables/{{tid}}/records/{{random 1..{n}}}"),
        r,
        10_000.0,
        0.0,
        0.0,
    ));
    let page_specs: Vec<ListSpec> = CHOICES
        .iter()
        .map(|c| {
            let mut s = ListSpec::new("");
            s.filters.push(Filter { field: STATUS, op: "eq", text: (*c).into(), value: V::Text((*c).into()) });
            s.sort = Some(AMOUNT);
            s
        })
        .collect();
    let paths: Vec<String> = page_specs.iter().map(|s| s.api_path(&tid, &fids)).collect();
    progress("wrk: filtered, sorted first page");
    let meter = server::CpuMeter::start(pid)?;
    let mut runs = Vec::new();
    for _ in 0..args.wrk_runs.max(1) {
        runs.push(run.rotate("page", &paths).await?);
    }
    let r = wrk::median(runs).context("no wrk run")?;
    cpu.push(("wrk, filtered and sorted first page".to_owned(), meter.stop()?));
    wrk_results.push((
        "first page: filter 状態 = (each of 5 choices in turn), sort 金額 desc, 50 rows".to_owned(),
        paths[1].clone(),
        r,
        1_000.0,
        0.0,
        0.0,
    ));
    for (label, _, r, _, _, _) in &wrk_results {
        progress(&format!("wrk {label}: {:.0} requests/s, {} non-2xx", r.requests_per_sec, r.non_2xx));
    }
    mem.push(("peak during latency runs and wrk".into(), sampler.take(), Some(200 * 1024 * 1024)));

    // Export.
    progress("export");
    let meter = server::CpuMeter::start(pid)?;
    let export_daicho = api.export(&tid).await?;
    cpu.push(("CSV export".to_owned(), meter.stop()?));
    if export_daicho.0 != n {
        bail!("the export held {} rows, expected {n}", export_daicho.0);
    }
    progress(&format!("export: {} rows in {:.1} s", export_daicho.0, export_daicho.2.as_secs_f64()));
    mem.push(("peak during export".into(), sampler.take(), Some(200 * 1024 * 1024)));
    tokio::time::sleep(Duration::from_secs(3)).await;
    mem.push(("idle at the end".into(), proc_status(pid, "VmRSS")?, Some(200 * 1024 * 1024)));
    // The kernel updates VmHWM lazily; the 50 ms samples may have seen a little more.
    let peak = mem.iter().map(|m| m.1).max().unwrap_or(0).max(proc_status(pid, "VmHWM")?);
    mem.push(("peak over the whole run (VmHWM or the highest sample)".into(), peak, Some(200 * 1024 * 1024)));
    drop(sampler);
    srv.stop().await?;
    progress("server stopped; migrate-store into a fresh SQLite file");
    let copy = work.join("copy.db");
    let migrate = spec.migrate_store(&format!("sqlite://{}", copy.display())).await?;
    let _ = std::fs::remove_file(&copy);
    progress(&format!("migrate-store: {:.1} s", migrate.as_secs_f64()));
    progress("now the same statements on the database directly");

    // The raw database.
    let mut plans = Vec::new();
    for (row, s) in lat.iter_mut().zip(&specs) {
        let (sql, binds) = s.sql(raw.dialect(), &table, &cols, false);
        let stats = sample(args.samples, max, |_| {
            let (raw, sql, binds) = (&raw, &sql, &binds);
            async move { Ok(raw.records(sql, binds).await?.0) }
        })
        .await?;
        plans.push((s.label.clone(), sql.clone(), raw.explain(&sql, &binds).await?));
        row.raw = Some(stats);
        if s.sort.is_some() {
            let (sql, binds) = s.sql(raw.dialect(), &table, &cols, true);
            let stats = sample(args.samples, max, |_| {
                let (raw, sql, binds) = (&raw, &sql, &binds);
                async move { Ok(raw.records(sql, binds).await?.0) }
            })
            .await?;
            plans.push((
                format!("{} — diagnosis: without the \"empty last\" term", s.label),
                sql.clone(),
                raw.explain(&sql, &binds).await?,
            ));
            row.raw_plain = Some(stats);
        }
        progress(&format!(
            "raw {}: p50 {:.2} ms, p99 {:.2} ms",
            s.label,
            row.raw.as_ref().map(|r| r.p50).unwrap_or(0.0),
            row.raw.as_ref().map(|r| r.p99).unwrap_or(0.0)
        ));
    }
    let get_sql = format!(
        "SELECT {} FROM {table} WHERE id = {}",
        spec::record_columns(&cols),
        if db_url.is_some() { "$1" } else { "?" }
    );
    let stats = sample(args.samples, max, |i| {
        let (raw, sql) = (&raw, &get_sql);
        let id = get_ids[i];
        async move { Ok(raw.records(sql, &[V::Int(id)]).await?.0) }
    })
    .await?;
    if let Some(row) = lat.iter_mut().find(|r| r.label.starts_with("get one")) {
        row.raw = Some(stats);
    }
    let stats = sample(args.samples, max, |i| {
        let (raw, table, cols) = (&raw, &table, &cols);
        let id = upd_id(i, 2);
        async move {
            let mut vals = data::row(id as u64 - 1);
            vals[QTY] = V::Int(7);
            vals[STATUS] = V::Text("受注".into());
            raw.update(table, cols, id, 1, 7, "受注", data::search_text(&vals), 1_767_225_600_000).await
        }
    })
    .await?;
    if let Some(row) = lat.iter_mut().find(|r| r.label.starts_with("update one")) {
        row.raw = Some(stats);
    }
    // The same two workloads on the database directly: 16 concurrent tasks over a pool of 8
    // connections (the server's default pool size).
    let pool8 = match db_url {
        None => Raw::sqlite(&spec.data_dir.join("daicho.db"), 8).await?,
        Some(u) => Raw::postgres(u, 8).await?,
    };
    // What each API request asks of the database before its record query: the session with its
    // user and tenant (the store's SQL). The table's design and the user's grants are kept per
    // node (docs/ARCHITECTURE.md), so no request reads them while nothing changes.
    let pg = db_url.is_some();
    let session_sql = |param: &str| {
        format!(
            "SELECT s.id AS s_id, s.tenant_id AS s_tenant_id, s.user_id AS s_user_id, s.created_at AS s_created_at, \
             s.last_seen_at AS s_last_seen_at, s.csrf_token AS s_csrf_token, s.ip AS s_ip, s.user_agent AS s_user_agent, \
             u.id, u.tenant_id, u.login_id, u.display_name, u.email, u.role, u.status, u.language, \
             u.must_change_password, u.password_changed_at, u.failed_logins, u.locked_until, u.created_at, u.updated_at, \
             t.id AS t_id, t.code AS t_code, t.name AS t_name, t.policy AS t_policy, t.created_at AS t_created_at, \
             t.design_version AS t_design_version FROM sessions s JOIN users u ON u.id = s.user_id AND u.tenant_id = s.tenant_id \
             JOIN tenants t ON t.id = s.tenant_id WHERE s.token_hash = {param}"
        )
    };
    let token_hash = pool8.text("SELECT token_hash FROM sessions ORDER BY created_at DESC LIMIT 1").await?;
    let before_record = vec![(session_sql(if pg { "$1" } else { "?" }), vec![V::Text(token_hash.clone())])];
    let mut rng = data::Rng::new(7);
    let gets: Vec<(String, Vec<V>)> =
        (0..4096).map(|_| (get_sql.clone(), vec![V::Int(1 + rng.below(n) as i64)])).collect();
    let with_session = |units: &[(String, Vec<V>)]| -> Vec<Vec<(String, Vec<V>)>> {
        units
            .iter()
            .map(|u| {
                let mut all = before_record.clone();
                all.push(u.clone());
                all
            })
            .collect()
    };
    let alone =
        |units: &[(String, Vec<V>)]| -> Vec<Vec<(String, Vec<V>)>> { units.iter().map(|u| vec![u.clone()]).collect() };
    progress("raw throughput: get by id");
    wrk_results[0].4 = pool8.throughput(args.wrk_connections, args.wrk_seconds, alone(&gets)).await?;
    wrk_results[0].5 = pool8.throughput(args.wrk_connections, args.wrk_seconds, with_session(&gets)).await?;
    if let Some(url) = db_url {
        progress("pgbench: get by id");
        let record = format!("\\set id random(1, {n})\n{};\n", get_sql.replace("$1", ":id"));
        let both = format!("{}{};\n", record, session_sql(":th"));
        let dir = &spec.data_dir;
        let (c, secs) = (args.wrk_connections, args.wrk_seconds);
        let alone = pgbench::tps(url, dir, "record", &record, &[], c, secs).await?;
        let both_rate = pgbench::tps(url, dir, "session-record", &both, &[("th", &token_hash)], c, secs).await?;
        // A design not built (docs/PERFORMANCE.md): one statement that reads the session and
        // returns the record only if the session still belongs to the user, tenant and design
        // version the node assumed from the session's previous request.
        let assumed = pool8
            .text(
                "SELECT s.user_id::text || ' ' || s.tenant_id::text || ' ' || t.design_version::text \
                 FROM sessions s JOIN tenants t ON t.id = s.tenant_id ORDER BY s.created_at DESC LIMIT 1",
            )
            .await?;
        let mut assumed = assumed.split(' ');
        let (user, tenant, design) = (
            assumed.next().unwrap_or_default().to_owned(),
            assumed.next().unwrap_or_default().to_owned(),
            assumed.next().unwrap_or_default().to_owned(),
        );
        let fused = |join: &str, [th, id, user, tenant, design]: [&str; 5]| {
            format!(
                "SELECT s.*, r.* FROM ({}) AS s {join} JOIN LATERAL ({} AND s.s_user_id::text = {user} \
                 AND s.s_tenant_id::text = {tenant} AND s.t_design_version::text = {design}) AS r ON true",
                session_sql(th),
                get_sql.replace("$1", id)
            )
        };
        // The statement must return the record while the assumption holds, and not otherwise.
        let check = fused("", ["$1", "$2", "$3", "$4", "$5"]);
        for (who, expected) in [(user.as_str(), 1), ("00000000-0000-0000-0000-000000000000", 0)] {
            let binds = [
                V::Text(token_hash.clone()),
                V::Int(1),
                V::Text(who.into()),
                V::Text(tenant.clone()),
                V::Text(design.clone()),
            ];
            let got = pool8.fetch(&check, &binds).await?;
            anyhow::ensure!(
                got == expected,
                "the one-statement read returned {got} rows for user {who}, not {expected}"
            );
        }
        let one =
            format!("\\set id random(1, {n})\n{};\n", fused("LEFT", [":th", ":id", ":user", ":tenant", ":design"]));
        let vars = [("th", token_hash.as_str()), ("user", &user), ("tenant", &tenant), ("design", &design)];
        let one_rate = pgbench::tps(url, dir, "session-with-record", &one, &vars, c, secs).await?;
        notes.push(format!(
            "PostgreSQL alone, driven by pgbench (its C client, prepared statements, {c} clients, 2 threads, \
             {secs} s each) on this machine: the record query of a get-by-id {alone:.0}/s; the session query and the \
             record query, as each request runs them, {both_rate:.0}/s; one statement that reads the session and \
             returns the record only while the session matches the user, tenant and design version assumed \
             (not built), {one_rate:.0}/s."
        ));
    }
    // The staff member's requests run the same record query.
    (wrk_results[1].4, wrk_results[1].5) = (wrk_results[0].4, wrk_results[0].5);
    let pages: Vec<(String, Vec<V>)> = page_specs.iter().map(|s| s.sql(raw.dialect(), &table, &cols, false)).collect();
    progress("raw throughput: filtered, sorted first page");
    wrk_results[2].4 = pool8.throughput(args.wrk_connections, args.wrk_seconds, alone(&pages)).await?;
    wrk_results[2].5 = pool8.throughput(args.wrk_connections, args.wrk_seconds, with_session(&pages)).await?;
    pool8.close().await;
    progress("raw export");
    let export_raw = raw.export(&table, &cols).await?;
    progress("raw import into a scratch table of the same shape");
    let scratch = raw.create_scratch(&cols).await?;
    let mut raw_import = Duration::ZERO;
    let raw_rows = args.raw_import_rows.min(n);
    let mut from = 0;
    while from < raw_rows {
        let to = (from + args.import_batch).min(raw_rows);
        let rows: Vec<[V; 8]> = (from..to).map(data::row).collect();
        raw_import += raw.insert_rows(&scratch, &cols, &rows).await?;
        from = to;
    }
    raw.drop_scratch(&scratch).await?;
    progress("raw import, 500 rows per INSERT");
    let scratch = raw.create_scratch(&cols).await?;
    let mut batched = Duration::ZERO;
    let mut from = 0;
    while from < raw_rows {
        let to = (from + args.import_batch).min(raw_rows);
        let rows: Vec<[V; 8]> = (from..to).map(data::row).collect();
        batched += raw.insert_rows_batched(&scratch, &cols, &rows, 500).await?;
        from = to;
    }
    raw.drop_scratch(&scratch).await?;
    raw.close().await;
    let import_raw = Some((raw_rows, rate(raw_rows, raw_import), raw_import));
    Ok(Report {
        store: args.store,
        rows: n,
        import_daicho,
        import_raw,
        import_raw_batched: Some((rate(raw_rows, batched), batched)),
        lat,
        export_daicho,
        export_raw: Some(export_raw),
        migrate,
        wrk: wrk_results,
        mem,
        plans,
        cpu,
        idents,
        notes,
    })
}

/// The list operations measured. The deep, sorted page starts at 90 % of the sort order; its
/// cursor is built from the row found there (the client-side cursor format of the API).
async fn list_specs(raw: &Raw, table: &str, cols: &[String], n: u64) -> anyhow::Result<Vec<ListSpec>> {
    let mut v = Vec::new();
    let mut s = ListSpec::new("first page, no filter, newest first");
    s.sort = None;
    v.push(s);
    let mut s = ListSpec::new("filter 状態 = 対応中 (20 %), sort 金額 desc");
    s.filters.push(Filter { field: STATUS, op: "eq", text: "対応中".into(), value: V::Text("対応中".into()) });
    s.sort = Some(AMOUNT);
    v.push(s);
    let mut s = ListSpec::new("filter 受注日 in January 2023 (1.4 %), sort 受注日 asc");
    s.filters.push(Filter { field: DATE, op: "gte", text: "2023-01-01".into(), value: V::Text("2023-01-01".into()) });
    s.filters.push(Filter { field: DATE, op: "lt", text: "2023-02-01".into(), value: V::Text("2023-02-01".into()) });
    s.sort = Some(DATE);
    s.desc = false;
    v.push(s);
    let mut s = ListSpec::new("filter 有効 = true (50 %), sort 顧客名 asc");
    s.filters.push(Filter { field: ACTIVE, op: "eq", text: "true".into(), value: V::Bool(true) });
    s.sort = Some(NAME);
    s.desc = false;
    v.push(s);
    let mut s = ListSpec::new("sort 数量 asc, no filter");
    s.sort = Some(QTY);
    s.desc = false;
    v.push(s);
    for (label, q) in [
        ("keyword, Japanese: 北海道 (~1 %)", data::Q_JA),
        ("keyword, Latin: invoice (~1 %)", data::Q_LATIN),
        ("keyword matching nothing: 存在しない", data::Q_NONE),
        ("keyword matching nothing, common parts: \"invoice 要確認\"", data::Q_NONE_COMMON),
        ("keyword matching half the rows: 要確認 (50 %)", data::Q_HALF),
        ("keyword of two characters: 大阪 (scan path)", data::Q_TWO),
    ] {
        let mut s = ListSpec::new(label);
        s.keyword = Some(q.into());
        v.push(s);
    }
    let mut s = ListSpec::new("deep page: newest first, after 90 % of the rows");
    s.after = Some((V::Null, (n / 10) as i64));
    v.push(s);
    let col = &cols[AMOUNT];
    let offset = n * 9 / 10;
    let (value, id) = raw
        .value_and_id(
            &format!("SELECT {col}, id FROM {table} ORDER BY ({col} IS NULL) ASC, {col} DESC, id DESC LIMIT 1 OFFSET {offset}"),
            FIELDS[AMOUNT].storage,
        )
        .await?;
    let mut s = ListSpec::new("deep page: sort 金額 desc, after 90 % of the rows");
    s.sort = Some(AMOUNT);
    s.after = Some((value, id));
    v.push(s);
    Ok(v)
}

fn ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0} ms")
    } else if x >= 10.0 {
        format!("{x:.1} ms")
    } else {
        format!("{x:.2} ms")
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

fn render(r: &Report, args: &Args) -> String {
    let store = match r.store {
        StoreKind::Sqlite => "SQLite",
        StoreKind::Postgres => "PostgreSQL",
    };
    let mut o = String::new();
    let _ = writeln!(o, "### {store}: {} records\n", r.rows);
    let _ = writeln!(
        o,
        "Measured {}. Latencies: {} sequential requests per operation on one keep-alive HTTPS connection \
         (fewer when an operation ran past {} s; n is shown), after two warm-up requests; p99 is the nearest rank, \
         so with fewer than 100 samples it is the maximum. \"raw\" is the plain statement for the operation (one \
         SELECT with the database's own plan) on the same database through sqlx with one connection, rows \
         decoded; Daicho's store runs other statements for several of them (walking a sort index, walking \
         before a keyword index, a page as one JSON text), so it can be faster than raw.\n",
        stamp(),
        args.samples,
        args.max_op_seconds
    );
    if !args.server_env.is_empty() {
        let env: Vec<String> = args.server_env.iter().map(|(k, v)| format!("`{k}={v}`")).collect();
        let _ = writeln!(o, "Diagnosis run: the server ran with {}.\n", env.join(", "));
    }
    for note in &r.notes {
        let _ = writeln!(o, "{note}\n");
    }
    let _ = writeln!(o, "| operation | Daicho | raw {store} | target | met? |");
    let _ = writeln!(o, "| --- | --- | --- | --- | --- |");
    let (irate, itime, parts) = &r.import_daicho;
    let first = parts.first().copied().unwrap_or_default();
    let first_rows = args.import_batch.min(r.rows);
    let raw_import = r
        .import_raw
        .map(|(rows, x, d)| {
            format!(
                "{x:.0} rows/s ({rows} rows into an empty table, {:.1} s; per row one INSERT and one keyword-index \
                 INSERT, one transaction per {} rows)",
                d.as_secs_f64(),
                args.import_batch
            )
        })
        .unwrap_or_default();
    let raw_import = match r.import_raw_batched {
        Some((x, d)) => format!("{raw_import}<br>500 rows per INSERT: {x:.0} rows/s ({:.1} s)", d.as_secs_f64()),
        None => raw_import,
    };
    let _ = writeln!(
        o,
        "| CSV import, {} files of ≤ {} rows (POST …/import) | **{:.0} rows/s** ({:.1} s in all; first file, into the \
         empty table: {:.0} rows/s) | {raw_import} | ≥ 100,000 rows/s | {} |",
        parts.len(),
        args.import_batch,
        irate,
        itime.as_secs_f64(),
        rate(first_rows, first),
        met(*irate >= 100_000.0)
    );
    for l in &r.lat {
        let raw = l.raw.as_ref().map(|s| format!("{} / {}", ms(s.p50), ms(s.p99))).unwrap_or_else(|| "—".into());
        let plain = l
            .raw_plain
            .as_ref()
            .map(|s| format!("<br>without \"empty last\": {} / {}", ms(s.p50), ms(s.p99)))
            .unwrap_or_default();
        let (target, ok) = match l.target_ms {
            Some(t) => (format!("p99 < {t:.0} ms"), met(l.daicho.p99 < t)),
            None => ("—".into(), "—"),
        };
        let _ = writeln!(
            o,
            "| {} ({} rows) | p50 **{}** / p99 **{}** (n={}, max {}) | {raw}{plain} | {target} | {ok} |",
            l.label,
            l.rows,
            ms(l.daicho.p50),
            ms(l.daicho.p99),
            l.daicho.n,
            ms(l.daicho.max)
        );
    }
    let (erows, ebytes, etime) = r.export_daicho;
    let erate = rate(erows, etime);
    let _ = writeln!(
        o,
        "| CSV export, whole table ({erows} rows, {:.0} MB) | **{erate:.0} rows/s** ({:.1} s) | {} | ≥ 200,000 rows/s | {} |",
        ebytes as f64 / MB,
        etime.as_secs_f64(),
        r.export_raw
            .map(|(n, d)| format!("{:.0} rows/s ({:.1} s, rows read and decoded, no CSV)", rate(n, d), d.as_secs_f64()))
            .unwrap_or_default(),
        met(erate >= 200_000.0)
    );
    let _ = writeln!(
        o,
        "| `daicho migrate-store` into a fresh SQLite file (every record copied, read back and compared; counts and \
         audit chains verified) | **{:.0} rows/s** ({:.1} s) | | none set | |",
        rate(r.rows, r.migrate),
        r.migrate.as_secs_f64()
    );
    for (label, _, w, target, raw_qps, raw_req) in &r.wrk {
        let _ = writeln!(
            o,
            "| API throughput, {} clients: {label} | **{:.0} requests/s** (median of {} runs of {} s: {}; this run: {} \
             requests; latency avg {}, p50 {}, p99 {}; non-2xx in all runs {}; socket errors: {}) | {raw_qps:.0} queries/s (the record query alone, {} tasks, pool of 8)<br>{raw_req:.0}/s with \
             the session query each request runs first | \
             ≥ {target:.0} requests/s | {} |",
            args.wrk_connections,
            w.requests_per_sec,
            w.runs.len(),
            args.wrk_seconds,
            w.runs.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(", "),
            w.requests,
            w.latency_avg,
            w.p50,
            w.p99,
            w.non_2xx,
            w.socket_errors,
            args.wrk_connections,
            met(w.requests_per_sec >= *target && w.non_2xx == 0)
        );
    }
    for (label, bytes, limit) in &r.mem {
        let (target, ok) = match limit {
            Some(l) => (format!("< {}", mb(*l)), met(bytes < l)),
            None => ("—".into(), "—"),
        };
        let _ = writeln!(o, "| server memory: {label} | **{}** | — | {target} | {ok} |", mb(*bytes));
    }
    let _ = writeln!(
        o,
        "\nImport, time per file: {}\n",
        parts.iter().map(|d| format!("{:.1} s", d.as_secs_f64())).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(o, "CPU use (from /proc/<pid>/stat; wrk's own CPU is not counted in \"benchmark client\"):\n");
    for (label, c) in &r.cpu {
        let _ = writeln!(o, "- {label}: {c}");
    }
    let _ = writeln!(o);
    for (label, url, w, _, _, _) in &r.wrk {
        let _ = writeln!(o, "wrk, {label} (`{url}`):\n\n```\n{}```\n", w.output);
    }
    let _ = writeln!(
        o,
        "Query plans ({}):\n",
        if r.store == StoreKind::Sqlite {
            "EXPLAIN QUERY PLAN"
        } else {
            "EXPLAIN (ANALYZE, BUFFERS), one run after the timings"
        }
    );
    let _ = writeln!(
        o,
        "Identifiers are shortened here: `t` is the table (`t_<table id>`), `f_数量` the column of field 数量 \
         (`f_<field id>`), `i_数量` its index, `s_t` the PostgreSQL keyword index.\n"
    );
    for (label, sql, plan) in &r.plans {
        let _ = writeln!(
            o,
            "- {label}\n\n  ```sql\n  {}\n  ```\n\n  ```\n{}\n  ```\n",
            readable(&abbreviate(sql), &r.idents),
            plan.iter().map(|l| format!("  {}", readable(l, &r.idents))).collect::<Vec<_>>().join("\n")
        );
    }
    o
}

/// Replaces generated identifiers with readable ones (t, f_<field name>, i_<field name>).
fn readable(text: &str, idents: &[(String, String)]) -> String {
    idents.iter().fold(text.to_owned(), |t, (from, to)| t.replace(from, to))
}

/// Shortens the column list of a record query for the report.
fn abbreviate(sql: &str) -> String {
    match (sql.find("SELECT "), sql.find(" FROM ")) {
        (Some(0), Some(end)) if sql[7..end].contains("created_by") => {
            format!("SELECT <id, version, created/updated, 8 fields>{}", &sql[end..])
        }
        _ => sql.to_owned(),
    }
}

//! Backups and restores. SQLite: `VACUUM INTO`, a consistent snapshot taken while serving, and
//! a restore that replaces the database file. PostgreSQL: `pg_dump --format=custom` and
//! `pg_restore`, started without a shell with their arguments as a list, the password passed
//! in the environment (PGPASSWORD) rather than on the command line where `ps` would show it.
//! For point-in-time recovery on PostgreSQL see docs/OPERATIONS.md (pgBackRest).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context as _;
use time::OffsetDateTime;

use crate::StoreHandle;
use crate::config::Config;

/// Splits a PostgreSQL URL into one without the password, and the password.
pub fn split_password(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else { return (url.to_owned(), None) };
    let Some((userinfo, host)) = rest.rsplit_once('@') else { return (url.to_owned(), None) };
    match userinfo.split_once(':') {
        Some((user, pass)) => (format!("{scheme}://{user}@{host}"), Some(percent_decode(pass))),
        None => (url.to_owned(), None),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The file name for a backup taken at `at`.
pub fn file_name(handle: &StoreHandle, at: OffsetDateTime) -> String {
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    match handle {
        StoreHandle::Sqlite(_) => format!("daicho-{stamp}.db"),
        StoreHandle::Postgres(_) => format!("daicho-{stamp}.pgdump"),
    }
}

/// Writes a backup of the configured store to `out` (which must not exist yet).
pub async fn backup(handle: &StoreHandle, config: &Config, out: &Path) -> anyhow::Result<u64> {
    if out.exists() {
        anyhow::bail!("{} exists already", out.display());
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    match handle {
        StoreHandle::Sqlite(s) => {
            let path = out.to_str().context("backup path is not UTF-8")?;
            s.backup_into(path).await.map_err(|e| anyhow::anyhow!("backup failed: {e}"))?;
        }
        StoreHandle::Postgres(_) => {
            let (url, password) = split_password(&config.database_url());
            let mut cmd = tokio::process::Command::new(&config.backup.pg_dump);
            cmd.arg("--format=custom").arg("--no-owner").arg("--file").arg(out).arg("--dbname").arg(&url);
            run_tool(cmd, password, "pg_dump").await?;
        }
    }
    let size = std::fs::metadata(out)?.len();
    Ok(size)
}

/// Restores a backup into the configured store. Stop every node first.
pub async fn restore(config: &Config, from: &Path) -> anyhow::Result<()> {
    if !from.is_file() {
        anyhow::bail!("{} is not a file", from.display());
    }
    let url = config.database_url();
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let (url, password) = split_password(&url);
        let mut cmd = tokio::process::Command::new(&config.backup.pg_restore);
        cmd.arg("--clean")
            .arg("--if-exists")
            .arg("--no-owner")
            .arg("--single-transaction")
            .arg("--dbname")
            .arg(&url)
            .arg(from);
        run_tool(cmd, password, "pg_restore").await?;
        return Ok(());
    }
    let db = sqlite_path(&url).context("database.url is not a sqlite:// file path")?;
    // Check the backup opens as a Daicho database before replacing anything.
    let probe = daicho_store_sqlite::SqliteStore::open(
        &format!("sqlite://{}", from.display()),
        daicho_store::PoolSettings::new(1),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{} is not a usable backup: {e}", from.display()))?;
    drop(probe);
    if let Some(dir) = db.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let staged = db.with_extension("db.restoring");
    std::fs::copy(from, &staged).with_context(|| format!("cannot copy {}", from.display()))?;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::rename(&staged, &db)?;
    Ok(())
}

fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty()).then(|| PathBuf::from(path))
}

async fn run_tool(mut cmd: tokio::process::Command, password: Option<String>, name: &str) -> anyhow::Result<()> {
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let out = cmd.output().await.with_context(|| format!("cannot run {name}; is the PostgreSQL client installed?"))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        anyhow::bail!("{name} failed: {}", msg.trim());
    }
    Ok(())
}

/// Keeps the `keep` newest backups in `dir` (by name, which sorts by time) and removes the rest.
pub fn prune(dir: &Path, keep: usize) -> anyhow::Result<usize> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("daicho-") && (n.ends_with(".db") || n.ends_with(".pgdump")))
        })
        .collect();
    files.sort();
    let excess = files.len().saturating_sub(keep);
    for f in &files[..excess] {
        std::fs::remove_file(f)?;
    }
    Ok(excess)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_taken_out_of_postgres_urls() {
        assert_eq!(
            split_password("postgres://daicho:p%40ss@db:5432/daicho?sslmode=require"),
            ("postgres://daicho@db:5432/daicho?sslmode=require".into(), Some("p@ss".into()))
        );
        assert_eq!(split_password("postgres://daicho@db/daicho"), ("postgres://daicho@db/daicho".into(), None));
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_path("sqlite://./daicho-data/daicho.db"), Some(PathBuf::from("./daicho-data/daicho.db")));
        assert_eq!(sqlite_path("sqlite:///var/lib/daicho/d.db?mode=rwc"), Some(PathBuf::from("/var/lib/daicho/d.db")));
    }

    #[test]
    fn pruning_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["daicho-20260101T000000Z.db", "daicho-20260102T000000Z.db", "daicho-20260103T000000Z.db", "other.txt"]
        {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        assert_eq!(prune(dir.path(), 2).unwrap(), 1);
        assert!(!dir.path().join("daicho-20260101T000000Z.db").exists());
        assert!(dir.path().join("daicho-20260103T000000Z.db").exists());
        assert!(dir.path().join("other.txt").exists());
    }
}

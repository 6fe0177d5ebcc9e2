//! PostgreSQL's own ceiling for a get-by-id: the statements a request runs, driven by
//! `pgbench` (PostgreSQL's C client: prepared statements, no pool, nothing else on the
//! connection), with as many clients as wrk has. What is left of the machine beside it is what
//! the server, its TLS and wrk may use.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// pgbench: on PATH, else the newest of Debian's PostgreSQL installations.
fn pgbench() -> anyhow::Result<PathBuf> {
    if let Ok(out) = std::process::Command::new("pgbench").arg("--version").output()
        && out.status.success()
    {
        return Ok(PathBuf::from("pgbench"));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("pgbench is not on PATH and /usr/lib/postgresql is missing")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin/pgbench")))
        .filter(|p| p.exists())
        .collect();
    found.sort_by_key(|p| p.to_string_lossy().split('/').nth(4).and_then(|v| v.parse::<u32>().ok()));
    found.pop().context("pgbench not found (Debian's postgresql package has it)")
}

/// Transactions per second of `script` (pgbench's script language) against `url`.
pub async fn tps(
    url: &str,
    dir: &Path,
    name: &str,
    script: &str,
    vars: &[(&str, &str)],
    clients: u32,
    secs: u32,
) -> anyhow::Result<f64> {
    let file = dir.join(format!("pgbench-{name}.sql"));
    std::fs::write(&file, script)?;
    let mut cmd = tokio::process::Command::new(pgbench()?);
    cmd.args(["-n", "-M", "prepared", "-j", "2"])
        .arg("-c")
        .arg(clients.to_string())
        .arg("-T")
        .arg(secs.to_string())
        .arg("-f")
        .arg(&file);
    for (k, v) in vars {
        cmd.arg("-D").arg(format!("{k}={v}"));
    }
    let out = cmd.arg(url).output().await.context("running pgbench")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("pgbench failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
    }
    parse_tps(&text).with_context(|| format!("no tps in pgbench's output: {text}"))
}

/// The rate in pgbench's "tps = 21142.350440 (without initial connection time)".
fn parse_tps(out: &str) -> Option<f64> {
    out.lines().find_map(|l| l.trim().strip_prefix("tps = ")?.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_read_from_pgbench_output() {
        let out = "number of failed transactions: 0 (0.000%)\nlatency average = 0.757 ms\n\
                   initial connection time = 12.1 ms\ntps = 21142.350440 (without initial connection time)\n";
        assert_eq!(parse_tps(out), Some(21142.350440));
        assert_eq!(parse_tps("tps = n/a"), None);
        assert_eq!(parse_tps(""), None);
    }
}

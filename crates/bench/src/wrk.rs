//! Throughput under concurrent clients with wrk (Debian's package): HTTPS, keep-alive, the
//! session cookie, a Lua script choosing each request's path.

use std::path::Path;

use anyhow::{Context as _, bail};

pub struct WrkResult {
    pub requests_per_sec: f64,
    pub requests: u64,
    pub latency_avg: String,
    pub p50: String,
    pub p99: String,
    pub non_2xx: u64,
    pub socket_errors: String,
    pub output: String,
    /// Requests/s of every run this result stands for, in the order they ran (see `median`).
    pub runs: Vec<f64>,
}

/// The run with the median rate stands for several runs of the same measurement (one 10 s run
/// on this 2-core VM varies by up to a third from one run to the next); every run's rate is
/// kept, and non-2xx responses are counted over all runs.
pub fn median(results: Vec<WrkResult>) -> Option<WrkResult> {
    let runs: Vec<f64> = results.iter().map(|r| r.requests_per_sec).collect();
    let non_2xx = results.iter().map(|r| r.non_2xx).sum();
    let mut sorted = results;
    sorted.sort_by(|a, b| a.requests_per_sec.total_cmp(&b.requests_per_sec));
    let mid = sorted.len() / 2;
    let mut m = sorted.into_iter().nth(mid)?;
    m.runs = runs;
    m.non_2xx = non_2xx;
    Some(m)
}

pub struct WrkRun<'a> {
    pub base: &'a str,
    pub cookie: &'a str,
    pub threads: u32,
    pub connections: u32,
    pub seconds: u32,
    pub script_dir: &'a Path,
}

fn lua_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl WrkRun<'_> {
    /// Requests `prefix .. random(1, n)`.
    pub async fn random_ids(&self, name: &str, prefix: &str, n: u64) -> anyhow::Result<WrkResult> {
        let script = format!(
            "local prefix = {}\nlocal n = {n}\nrequest = function()\n  return wrk.format(\"GET\", prefix .. \
             math.random(1, n))\nend\n",
            lua_string(prefix)
        );
        self.run(name, &script).await
    }

    /// Requests the given paths in turn.
    pub async fn rotate(&self, name: &str, paths: &[String]) -> anyhow::Result<WrkResult> {
        let list: Vec<String> = paths.iter().map(|p| lua_string(p)).collect();
        let script = format!(
            "local paths = {{ {} }}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format(\"GET\", \
             paths[(i % #paths) + 1])\nend\n",
            list.join(", ")
        );
        self.run(name, &script).await
    }

    async fn run(&self, name: &str, script: &str) -> anyhow::Result<WrkResult> {
        let path = self.script_dir.join(format!("{name}.lua"));
        std::fs::write(&path, script)?;
        let out = tokio::process::Command::new("wrk")
            .arg(format!("-t{}", self.threads))
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{}s", self.seconds))
            .arg("--latency")
            // Slow pages must count as slow, not as socket timeouts (wrk's default is 2 s).
            .arg("--timeout")
            .arg("60s")
            .arg("-H")
            .arg(format!("Cookie: {}", self.cookie))
            .arg("-s")
            .arg(&path)
            .arg(self.base)
            .output()
            .await
            .context("running wrk (apt-get install -y wrk)")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!("wrk failed: {text}\n{}", String::from_utf8_lossy(&out.stderr));
        }
        parse(&text)
    }
}

fn parse(text: &str) -> anyhow::Result<WrkResult> {
    let field = |prefix: &str, idx: usize| -> Option<String> {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(idx))
            .map(str::to_owned)
    };
    let rps: f64 = field("Requests/sec:", 1).context("no Requests/sec in wrk output")?.parse()?;
    let requests: u64 = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let non_2xx = field("Non-2xx or 3xx responses:", 4).and_then(|n| n.parse().ok()).unwrap_or(0);
    let socket_errors = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Socket errors:"))
        .map(|l| l.trim_start_matches("Socket errors:").trim().to_owned())
        .unwrap_or_else(|| "none".into());
    Ok(WrkResult {
        requests_per_sec: rps,
        requests,
        latency_avg: field("Latency", 1).unwrap_or_default(),
        p50: field("50%", 1).unwrap_or_default(),
        p99: field("99%", 1).unwrap_or_default(),
        non_2xx,
        socket_errors,
        output: text.to_owned(),
        runs: vec![rps],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(rps: f64, non_2xx: u64) -> WrkResult {
        WrkResult {
            requests_per_sec: rps,
            requests: rps as u64 * 10,
            latency_avg: String::new(),
            p50: String::new(),
            p99: String::new(),
            non_2xx,
            socket_errors: "none".into(),
            output: format!("{rps}"),
            runs: vec![rps],
        }
    }

    #[test]
    fn the_median_run_stands_for_all_and_keeps_every_rate_and_every_error() {
        let m = median(vec![result(9000.0, 0), result(6000.0, 2), result(8000.0, 1)]).expect("a median");
        assert_eq!(m.requests_per_sec, 8000.0);
        assert_eq!(m.output, "8000");
        assert_eq!(m.runs, [9000.0, 6000.0, 8000.0]);
        assert_eq!(m.non_2xx, 3);
        assert!(median(Vec::new()).is_none());
    }
}

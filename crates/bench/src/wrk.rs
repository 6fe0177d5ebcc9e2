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
    })
}

//! The real release server as a user runs it: `daicho serve` as a subprocess on a loopback
//! port with a throwaway data directory, configured through `DAICHO__SECTION__KEY` variables.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

pub struct ServerSpec {
    pub binary: PathBuf,
    pub data_dir: PathBuf,
    /// A PostgreSQL URL; SQLite in the data directory when unset.
    pub database_url: Option<String>,
    pub port: u16,
    /// Extra environment variables for the server process (diagnosis runs).
    pub env: Vec<(String, String)>,
}

impl ServerSpec {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--data-dir").arg(&self.data_dir);
        c.env_remove("DAICHO_CONFIG").env_remove("RUST_LOG");
        for (k, _) in std::env::vars() {
            if k.starts_with("DAICHO__") {
                c.env_remove(k);
            }
        }
        c.env("DAICHO__SERVER__HTTPS_ADDR", format!("127.0.0.1:{}", self.port))
            .env("DAICHO__SERVER__HTTP_REDIRECT", "false")
            .env("DAICHO__JOBS__ENABLED", "false")
            .env("DAICHO__BACKUP__DAILY", "false")
            .env("DAICHO__LOG__LEVEL", "warn");
        if let Some(url) = &self.database_url {
            c.env("DAICHO__DATABASE__URL", url);
        }
        c.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    }

    /// `daicho tenant create`: returns the administrator's one-time password.
    pub async fn create_tenant(&self, code: &str) -> anyhow::Result<String> {
        let out = self
            .command()
            .args(["tenant", "create", "--code", code, "--name", "Bench Inc.", "--admin-name", "Bench Admin"])
            .args(["--admin-email", "admin@example.jp"])
            .output()
            .await
            .with_context(|| format!("running {}", self.binary.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!("tenant create failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        }
        stdout
            .lines()
            .find_map(|l| l.split_once("one-time password: ").map(|(_, p)| p.trim().to_owned()))
            .context("no one-time password in the output of tenant create")
    }

    /// `daicho migrate-store --to URL` with the server stopped: how long the verified copy of
    /// the whole installation takes.
    pub async fn migrate_store(&self, to: &str) -> anyhow::Result<Duration> {
        let started = std::time::Instant::now();
        let out = self
            .command()
            .args(["migrate-store", "--to", to])
            .output()
            .await
            .with_context(|| format!("running {}", self.binary.display()))?;
        let took = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !stdout.contains("copy verified") {
            bail!("migrate-store failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(took)
    }

    pub async fn start(&self) -> anyhow::Result<Server> {
        std::fs::create_dir_all(&self.data_dir)?;
        let log = std::fs::File::create(self.data_dir.join("server.log"))?;
        let child = self
            .command()
            .arg("serve")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let pid = child.id().context("server exited at once")?;
        let base = format!("https://127.0.0.1:{}", self.port);
        let cert = self.data_dir.join("tls/cert.pem");
        let mut server = Server { child, pid, base, cert_pem: Vec::new() };
        for _ in 0..600 {
            if let Some(status) = server.child.try_wait()? {
                bail!("the server exited ({status}); see {}", self.data_dir.join("server.log").display());
            }
            if let Ok(pem) = std::fs::read(&cert)
                && tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok()
            {
                server.cert_pem = pem;
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the server did not start within 60 s")
    }
}

pub struct Server {
    child: Child,
    pub pid: u32,
    pub base: String,
    pub cert_pem: Vec<u8>,
}

impl Server {
    /// SIGTERM (graceful shutdown), then a kill if it takes more than 15 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status().await;
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await.is_err() {
            self.child.start_kill()?;
            self.child.wait().await?;
        }
        Ok(())
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A `kB` line of /proc/<pid>/status (VmRSS, VmHWM), in bytes.
pub fn proc_status(pid: u32, key: &str) -> anyhow::Result<u64> {
    let s = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status"))?;
    let line = s.lines().find(|l| l.starts_with(key)).with_context(|| format!("{key} not in /proc/{pid}/status"))?;
    let kb: u64 = line[key.len()..].trim_start_matches(':').trim().trim_end_matches("kB").trim().parse()?;
    Ok(kb * 1024)
}

/// Samples the server's resident set every 50 ms; `take` returns the highest value seen since
/// the previous `take`.
pub struct MemSampler {
    max: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl MemSampler {
    pub fn start(pid: u32) -> Self {
        let max = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (max.clone(), stop.clone());
        tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Ok(v) = proc_status(pid, "VmRSS") {
                    m.fetch_max(v, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Self { max, stop }
    }

    pub fn take(&self) -> u64 {
        self.max.swap(0, Ordering::Relaxed)
    }
}

impl Drop for MemSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// CPU time (user + system) a process has used, in seconds (from /proc/<pid>/stat, at the
/// usual 100 clock ticks per second).
pub fn cpu_seconds(pid: Option<u32>) -> anyhow::Result<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let s = std::fs::read_to_string(path)?;
    let rest = s.rsplit_once(')').map(|(_, r)| r).context("malformed stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).context("utime")?.parse::<u64>()? + f.get(12).context("stime")?.parse::<u64>()?;
    Ok(ticks as f64 / 100.0)
}

/// CPU used by the server and by this program over a phase.
#[derive(Clone, Copy, Default)]
pub struct CpuSpan {
    pub server: f64,
    pub client: f64,
    pub wall: f64,
}

pub struct CpuMeter {
    pid: u32,
    server: f64,
    client: f64,
    start: std::time::Instant,
}

impl CpuMeter {
    pub fn start(pid: u32) -> anyhow::Result<Self> {
        Ok(Self { pid, server: cpu_seconds(Some(pid))?, client: cpu_seconds(None)?, start: std::time::Instant::now() })
    }
    pub fn stop(&self) -> anyhow::Result<CpuSpan> {
        Ok(CpuSpan {
            server: cpu_seconds(Some(self.pid))? - self.server,
            client: cpu_seconds(None)? - self.client,
            wall: self.start.elapsed().as_secs_f64(),
        })
    }
}

impl std::fmt::Display for CpuSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "server CPU {:.1} s in {:.1} s ({:.0} % of one core), benchmark client {:.1} s",
            self.server,
            self.wall,
            100.0 * self.server / self.wall.max(1e-9),
            self.client
        )
    }
}

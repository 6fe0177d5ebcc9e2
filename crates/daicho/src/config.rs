//! Configuration: typed and layered. Defaults, then a TOML file (`--config` or
//! `$DAICHO_CONFIG`), then environment variables `DAICHO__SECTION__KEY`, then command-line
//! flags. Unknown keys are refused with the key's name; secrets are redacted from `Debug`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the SQLite database, the generated TLS certificate and other state live.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub database: DatabaseConfig,
    pub security: SecurityConfig,
    pub jobs: JobsConfig,
    pub backup: BackupConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Take a backup every day (a scheduled job, run by one node).
    pub daily: bool,
    /// Where daily backups go (default `<data_dir>/backups`).
    pub dir: Option<PathBuf>,
    /// How many daily backups to keep.
    pub keep: u32,
    /// The PostgreSQL client programs (on PATH by default).
    pub pg_dump: PathBuf,
    pub pg_restore: PathBuf,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self { daily: true, dir: None, keep: 7, pg_dump: "pg_dump".into(), pg_restore: "pg_restore".into() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Run scheduled jobs on this node. With several nodes every node may run them: leases in
    /// the database make each due job run once.
    pub enabled: bool,
    /// How often this node looks for due jobs.
    pub poll_seconds: u32,
    /// This node's name in job leases (default: host name and process id).
    pub node: Option<String>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self { enabled: true, poll_seconds: 30, node: None }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub https_addr: SocketAddr,
    /// The plain-HTTP listener, which only redirects to HTTPS (see `http_redirect`).
    pub http_addr: SocketAddr,
    /// Whether to run the plain-HTTP redirect listener at all.
    pub http_redirect: bool,
    /// Host names clients use to reach Daicho; requests for any other Host get 400.
    pub public_hosts: Vec<String>,
    /// The HTTPS port clients use (behind a proxy it differs from the bound port); defaults to
    /// the bound port.
    pub public_https_port: Option<u16>,
    /// Proxies whose X-Forwarded-For is believed (CIDR).
    pub trusted_proxies: Vec<IpNet>,
    pub max_body_bytes: usize,
    /// The body limit of CSV import uploads (page and API); every other route has
    /// `max_body_bytes`.
    pub max_import_bytes: usize,
    pub max_header_bytes: usize,
    /// An export whose client takes nothing for this many seconds is ended (recorded as
    /// interrupted): it holds a database connection and a snapshot while it runs.
    pub export_stall_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain. With neither path set, a self-signed certificate for the public
    /// host names is generated in `<data_dir>/tls/` on first start.
    pub cert_path: Option<PathBuf>,
    pub key_path: Option<PathBuf>,
}

#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path` (default: `<data_dir>/daicho.db`) or `postgres://user:pass@host/db`
    /// (TLS per `sslmode`). May contain credentials: redacted wherever it is shown.
    pub url: Option<String>,
    pub max_connections: u32,
    /// A pooled connection idle at least this many seconds is checked before use (0: before
    /// every use). See `daicho_store::PoolSettings::recheck_idle_after`.
    pub recheck_idle_after_seconds: u64,
}

impl DatabaseConfig {
    /// The store's pool settings.
    pub fn pool(&self) -> daicho_store::PoolSettings {
        daicho_store::PoolSettings {
            max_connections: self.max_connections,
            recheck_idle_after: std::time::Duration::from_secs(self.recheck_idle_after_seconds),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Failed sign-ins from one IP within the window before further attempts are refused.
    pub login_ip_max_failures: u32,
    pub login_ip_window_minutes: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `pretty` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `daicho_web=debug,info`.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./daicho-data"),
            server: ServerConfig::default(),
            tls: TlsConfig::default(),
            database: DatabaseConfig::default(),
            security: SecurityConfig::default(),
            jobs: JobsConfig::default(),
            backup: BackupConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        let web = daicho_web::WebSettings::default();
        Self {
            https_addr: SocketAddr::from(([127, 0, 0, 1], 8443)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            http_redirect: true,
            public_hosts: web.public_hosts,
            public_https_port: None,
            trusted_proxies: Vec::new(),
            max_body_bytes: web.max_body_bytes,
            max_import_bytes: web.max_import_bytes,
            max_header_bytes: web.max_header_bytes,
            export_stall_seconds: web.export_stall.as_secs(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 8,
            recheck_idle_after_seconds: daicho_store::PoolSettings::RECHECK_IDLE_AFTER.as_secs(),
        }
    }
}

impl Default for SecurityConfig {
    fn default() -> Self {
        let web = daicho_web::WebSettings::default();
        Self { login_ip_max_failures: web.login_ip_max_failures, login_ip_window_minutes: web.login_ip_window_minutes }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: "pretty".into(), level: "info".into() }
    }
}

/// A URL with any password replaced, for logs and `check-config`.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://<redacted>@{host}"),
            None => url.to_owned(),
        },
        None => "<redacted>".into(),
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("max_connections", &self.max_connections)
            .field("recheck_idle_after_seconds", &self.recheck_idle_after_seconds)
            .finish()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("server", &self.server)
            .field("tls", &self.tls)
            .field("database", &self.database)
            .field("security", &self.security)
            .field("jobs", &self.jobs)
            .field("backup", &self.backup)
            .field("log", &self.log)
            .finish()
    }
}

/// Values given as command-line flags; they override everything else.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlagOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerFlags>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub https_addr: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_addr: Option<SocketAddr>,
}

impl Config {
    /// Loads the layers. `file` is optional; a named file that does not exist is an error.
    pub fn load(file: Option<&Path>, flags: &FlagOverrides) -> Result<Self, String> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(format!("configuration file {} does not exist", path.display()));
            }
            fig = fig.merge(Toml::file(path));
        }
        fig = fig.merge(Env::prefixed("DAICHO__").split("__")).merge(Serialized::defaults(flags));
        let cfg: Config = fig.extract().map_err(|e| format!("configuration error: {e}"))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.server.public_hosts.is_empty() {
            return Err("server.public_hosts must name at least one host".into());
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.server.max_body_bytes) {
            return Err("server.max_body_bytes must be between 1024 and 67108864".into());
        }
        // An import's file is held in memory while it is checked: at most 256 MiB.
        if !(1024..=256 * 1024 * 1024).contains(&self.server.max_import_bytes) {
            return Err("server.max_import_bytes must be between 1024 and 268435456".into());
        }
        if !(1..=3600).contains(&self.server.export_stall_seconds) {
            return Err("server.export_stall_seconds must be between 1 and 3600".into());
        }
        if !(1024..=1024 * 1024).contains(&self.server.max_header_bytes) {
            return Err("server.max_header_bytes must be between 1024 and 1048576".into());
        }
        if self.tls.cert_path.is_some() != self.tls.key_path.is_some() {
            return Err("tls.cert_path and tls.key_path must be set together".into());
        }
        if !matches!(self.log.format.as_str(), "pretty" | "json") {
            return Err("log.format must be \"pretty\" or \"json\"".into());
        }
        if self.backup.keep == 0 || self.backup.keep > 365 {
            return Err("backup.keep must be between 1 and 365".into());
        }
        if self.jobs.poll_seconds == 0 || self.jobs.poll_seconds > 3600 {
            return Err("jobs.poll_seconds must be between 1 and 3600".into());
        }
        if self.database.max_connections == 0 || self.database.max_connections > 1000 {
            return Err("database.max_connections must be between 1 and 1000".into());
        }
        if self.database.recheck_idle_after_seconds > 3600 {
            return Err("database.recheck_idle_after_seconds must be between 0 and 3600".into());
        }
        if let Some(url) = &self.database.url
            && !["sqlite:", "postgres:", "postgresql:"].iter().any(|p| url.starts_with(p))
        {
            return Err(format!("database.url {}: must start with sqlite: or postgres:", redact_url(url)));
        }
        Ok(())
    }

    pub fn backup_dir(&self) -> PathBuf {
        self.backup.dir.clone().unwrap_or_else(|| self.data_dir.join("backups"))
    }

    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.data_dir.join("daicho.db").display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_serve_https_on_loopback_8443_with_a_redirect_listener() {
        let c = Config::default();
        assert_eq!(c.server.https_addr.to_string(), "127.0.0.1:8443");
        assert!(c.server.http_redirect);
        assert!(c.validate().is_ok());
        assert_eq!(c.database_url(), "sqlite://./daicho-data/daicho.db");
    }

    #[test]
    fn unknown_keys_in_a_file_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("daicho.toml");
        std::fs::write(&p, "[server]\nhttps_adr = \"127.0.0.1:9443\"\n").unwrap();
        let err = Config::load(Some(&p), &FlagOverrides::default()).unwrap_err();
        assert!(err.contains("https_adr"), "{err}");
    }

    #[test]
    fn file_then_flags_override_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("daicho.toml");
        std::fs::write(
            &p,
            "data_dir = \"/tmp/x\"\n[server]\nhttps_addr = \"127.0.0.1:9443\"\nhttp_addr = \"127.0.0.1:9080\"\n",
        )
        .unwrap();
        let flags = FlagOverrides {
            data_dir: None,
            server: Some(ServerFlags { https_addr: Some("127.0.0.1:7443".parse().unwrap()), http_addr: None }),
        };
        let c = Config::load(Some(&p), &flags).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.server.https_addr.to_string(), "127.0.0.1:7443");
        assert_eq!(c.server.http_addr.to_string(), "127.0.0.1:9080");
    }

    #[test]
    fn the_pool_recheck_window_defaults_to_five_seconds_and_is_bounded() {
        let mut c = Config::default();
        assert_eq!(c.database.pool(), daicho_store::PoolSettings::new(8));
        assert_eq!(c.database.pool().recheck_idle_after, std::time::Duration::from_secs(5));
        c.database.recheck_idle_after_seconds = 0;
        assert!(c.validate().is_ok());
        c.database.recheck_idle_after_seconds = 3601;
        assert!(c.validate().unwrap_err().contains("recheck_idle_after_seconds"));
    }

    #[test]
    fn the_import_limit_defaults_to_64_mib_and_is_bounded() {
        let mut c = Config::default();
        assert_eq!(c.server.max_import_bytes, 64 * 1024 * 1024);
        c.server.max_import_bytes = 256 * 1024 * 1024 + 1;
        assert!(c.validate().unwrap_err().contains("max_import_bytes"));
        c.server.max_import_bytes = 0;
        assert!(c.validate().unwrap_err().contains("max_import_bytes"));
    }

    #[test]
    fn database_passwords_are_redacted_from_debug_output() {
        let mut c = Config::default();
        c.database.url = Some("sqlite://user:hunter2@host/db".into());
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}

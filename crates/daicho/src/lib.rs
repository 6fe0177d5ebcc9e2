//! The Daicho application: configuration, TLS material, start-up of the listeners over the
//! store, and the operator's command-line operations. `main.rs` is only argument parsing.

pub mod backup;
pub mod config;
pub mod jobs;
pub mod operator;
pub mod tls;

use std::sync::Arc;

use anyhow::Context as _;
use daicho_authn::PasswordHasher;
use daicho_domain::Clock;
use daicho_store::Store;
use daicho_store_postgres::PgStore;
use daicho_store_sqlite::SqliteStore;
use daicho_web::{AppState, HttpsServer, RedirectServer, WebSettings};

pub use config::Config;

/// Installs ring as the process-wide rustls provider (the only one compiled in).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The configured store, by concrete backend (tests reach its pool to play the attacker).
#[derive(Clone)]
pub enum StoreHandle {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

impl StoreHandle {
    pub fn as_dyn(&self) -> Arc<dyn Store> {
        match self {
            StoreHandle::Sqlite(s) => s.clone(),
            StoreHandle::Postgres(s) => s.clone(),
        }
    }

    pub fn get(&self) -> &dyn Store {
        match self {
            StoreHandle::Sqlite(s) => s.as_ref(),
            StoreHandle::Postgres(s) => s.as_ref(),
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            StoreHandle::Sqlite(_) => "sqlite",
            StoreHandle::Postgres(_) => "postgres",
        }
    }
}

/// Opens the configured database (`sqlite:` or `postgres:`) and applies pending migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<StoreHandle> {
    let url = config.database_url();
    let shown = config::redact_url(&url);
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let store = PgStore::open(&url, config.database.pool())
            .await
            .map_err(|e| anyhow::anyhow!("cannot open database {shown}: {e}"))?;
        return Ok(StoreHandle::Postgres(Arc::new(store)));
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let store = SqliteStore::open(&url, config.database.pool())
        .await
        .map_err(|e| anyhow::anyhow!("cannot open database {shown}: {e}"))?;
    Ok(StoreHandle::Sqlite(Arc::new(store)))
}

/// A running installation: the HTTPS listener, the redirect listener and the store.
pub struct Running {
    pub https: HttpsServer,
    pub http: Option<RedirectServer>,
    pub store: StoreHandle,
    pub state: AppState,
    pub jobs: jobs::JobRunner,
    jobs_task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub fn shutdown(&self) {
        if let Some(t) = &self.jobs_task {
            t.abort();
        }
        self.https.shutdown();
        if let Some(h) = &self.http {
            h.handle.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
        }
    }
}

/// Binds the listeners and serves. Port 0 picks a free port (tests).
pub async fn start(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Running> {
    install_crypto_provider();
    let store = open_store(config).await?;
    let (chain, key) = tls::load_or_generate(config)?;
    let tls = daicho_web::tls_server_config(chain, key)?;

    let https_listener = std::net::TcpListener::bind(config.server.https_addr)
        .with_context(|| format!("cannot listen on {}", config.server.https_addr))?;
    let bound = https_listener.local_addr()?;
    let settings = WebSettings {
        public_hosts: config.server.public_hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
        public_https_port: config.server.public_https_port.unwrap_or(bound.port()),
        trusted_proxies: config.server.trusted_proxies.clone(),
        max_body_bytes: config.server.max_body_bytes,
        max_import_bytes: config.server.max_import_bytes,
        max_header_bytes: config.server.max_header_bytes,
        export_stall: std::time::Duration::from_secs(config.server.export_stall_seconds),
        login_ip_max_failures: config.security.login_ip_max_failures,
        login_ip_window_minutes: config.security.login_ip_window_minutes,
    };
    let hasher = tokio::task::spawn_blocking(PasswordHasher::new).await?.map_err(|e| anyhow::anyhow!("{e}"))?;
    let dyn_store: Arc<dyn Store> = store.as_dyn();
    let node = config.jobs.node.clone().unwrap_or_else(jobs::default_node_name);
    let runner = jobs::JobRunner::new(store.clone(), clock.clone(), node, Arc::new(config.clone()));
    let state = AppState::new(dyn_store, clock, hasher, settings);
    let app = daicho_web::router(state.clone());
    let https = HttpsServer::start(https_listener, tls, app, &state.settings)?;
    let http = if config.server.http_redirect {
        let l = std::net::TcpListener::bind(config.server.http_addr)
            .with_context(|| format!("cannot listen on {}", config.server.http_addr))?;
        Some(RedirectServer::start(l, state.settings.clone())?)
    } else {
        None
    };
    let jobs_task = config.jobs.enabled.then(|| {
        let every = std::time::Duration::from_secs(u64::from(config.jobs.poll_seconds));
        tokio::spawn(runner.clone().run_forever(every))
    });
    Ok(Running { https, http, store, state, jobs: runner, jobs_task })
}

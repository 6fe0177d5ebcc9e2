//! Shared, immutable application state. Nothing here is per-user or per-session: sessions,
//! lockout counters and CSRF secrets live in the database, so several nodes can serve one
//! installation.

use std::sync::Arc;

use daicho_authn::PasswordHasher;
use daicho_domain::{Clock, FieldErrors, LoginId, SecurityPolicy};
use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};
use daicho_store::Store;
use ipnet::IpNet;

#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Host names (without port) that requests may address; anything else gets 400.
    pub public_hosts: Vec<String>,
    /// The port browsers use for HTTPS, for redirects from the plain-HTTP listener.
    pub public_https_port: u16,
    /// Peers whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<IpNet>,
    pub max_body_bytes: usize,
    /// The body limit of CSV import routes (the only routes that take large uploads).
    pub max_import_bytes: usize,
    pub max_header_bytes: usize,
    /// Failed logins from one IP address within the window before further attempts are refused.
    pub login_ip_max_failures: u32,
    pub login_ip_window_minutes: u32,
    /// An export whose client takes nothing for this long is ended.
    pub export_stall: std::time::Duration,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            public_hosts: vec!["127.0.0.1".into(), "localhost".into()],
            public_https_port: 8443,
            trusted_proxies: Vec::new(),
            max_body_bytes: 1024 * 1024,
            max_import_bytes: 64 * 1024 * 1024,
            max_header_bytes: 16 * 1024,
            // A client must take a piece (64 KiB) within this: about 220 bytes a second.
            export_stall: std::time::Duration::from_secs(300),
            login_ip_max_failures: 30,
            login_ip_window_minutes: 15,
        }
    }
}

/// The application state, cloned for every middleware and handler of a request: one shared
/// allocation, so a clone or a drop is one atomic count, not one per field (with a count per
/// field, dropping the clones took 3 % of the server's CPU under load).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// Shared, not copied: the state is cloned for every middleware and handler of a request.
    pub hasher: Arc<PasswordHasher>,
    pub settings: Arc<WebSettings>,
    /// Bounds concurrent argon2 work: each hash takes 19 MiB and tens of milliseconds of CPU,
    /// so a flood of sign-ins queues here instead of exhausting memory or starving the runtime.
    hash_permits: Arc<Semaphore>,
    /// Table designs this node has read, checked against the database's design version on
    /// every use (see `designs`).
    pub designs: Arc<crate::designs::DesignCache>,
    /// Bounds the uploads to import routes this node takes in at once (`IMPORT_UPLOADS`): each
    /// may hold up to `max_import_bytes` in memory, read before the handler checks the user's
    /// rights (the CSRF token of a form is inside the body), so more queue here.
    pub upload_permits: Arc<Semaphore>,
    /// Bounds the CSV exports this node runs at once (`EXPORTS`): each holds a database
    /// connection and a snapshot of its table from its first page to its last.
    pub export_permits: Arc<Semaphore>,
}

/// How many uploads to import routes one node reads at once.
pub const IMPORT_UPLOADS: usize = 2;

/// How many CSV exports one node runs at once (well below the database pool's connections).
pub const EXPORTS: usize = 2;

/// How long an export waits for one of the node's `EXPORTS` places before it is refused (503).
pub const EXPORT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl WebSettings {
    /// The body limit for a request path: CSV import routes take uploads up to
    /// `max_import_bytes`, everything else `max_body_bytes`.
    pub fn body_limit_for(&self, path: &str) -> usize {
        let import = path.ends_with("/import")
            && (path.starts_with("/tables/") || path.starts_with("/api/v1/tables/"))
            && path.matches('/').count() <= 5;
        if import { self.max_import_bytes.max(self.max_body_bytes) } else { self.max_body_bytes }
    }
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, hasher: PasswordHasher, settings: WebSettings) -> Self {
        let permits = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2);
        Self(Arc::new(Shared {
            store,
            clock,
            hasher: Arc::new(hasher),
            settings: Arc::new(settings),
            hash_permits: Arc::new(Semaphore::new(permits)),
            designs: Arc::default(),
            upload_permits: Arc::new(Semaphore::new(IMPORT_UPLOADS)),
            export_permits: Arc::new(Semaphore::new(EXPORTS)),
        }))
    }

    /// Runs password work on the blocking pool, at most one job per core at a time.
    async fn password_work<T: Send + 'static>(
        &self,
        f: impl FnOnce(&PasswordHasher) -> T + Send + 'static,
    ) -> AppResult<T> {
        let _permit = self.hash_permits.acquire().await.map_err(|_| AppError::Unavailable("shutting down".into()))?;
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || f(&hasher))
            .await
            .map_err(|e| AppError::Internal(format!("password work: {e}")))
    }

    pub async fn verify_password(&self, hash: &str, password: &str) -> AppResult<bool> {
        let (hash, password) = (hash.to_owned(), password.to_owned());
        self.password_work(move |h| h.verify(&hash, &password)).await
    }

    /// Spends the time of one verification (unknown users), so that timing reveals nothing.
    pub async fn verify_dummy_password(&self, password: &str) -> AppResult<()> {
        let password = password.to_owned();
        self.password_work(move |h| {
            h.verify_dummy(&password);
        })
        .await
    }

    pub async fn hash_password(&self, password: &str) -> AppResult<String> {
        let password = password.to_owned();
        self.password_work(move |h| h.hash(&password)).await?.map_err(|e| AppError::Internal(e.to_string()))
    }

    pub async fn check_new_password(
        &self,
        policy: &SecurityPolicy,
        login: &LoginId,
        new: &str,
        previous: Vec<String>,
    ) -> AppResult<Result<(), FieldErrors>> {
        let (policy, login, new) = (policy.clone(), login.clone(), new.to_owned());
        self.password_work(move |h| daicho_authn::check_new_password(h, &policy, &login, &new, &previous)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_import_routes_take_large_bodies() {
        let s = WebSettings::default();
        assert_eq!(s.body_limit_for("/tables/abc/import"), s.max_import_bytes);
        assert_eq!(s.body_limit_for("/api/v1/tables/abc/import"), s.max_import_bytes);
        for p in ["/tables/abc/records", "/api/v1/users", "/import", "/tables/a/b/c/d/import", "/login"] {
            assert_eq!(s.body_limit_for(p), s.max_body_bytes, "{p}");
        }
    }
}

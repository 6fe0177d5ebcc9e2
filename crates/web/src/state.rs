//! Shared, immutable application state. Nothing here is per-user or per-session: sessions,
//! lockout counters and CSRF secrets live in the database, so several nodes can serve one
//! installation.

use std::sync::Arc;

use daicho_authn::PasswordHasher;
use daicho_domain::Clock;
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
    pub max_header_bytes: usize,
    /// Failed logins from one IP address within the window before further attempts are refused.
    pub login_ip_max_failures: u32,
    pub login_ip_window_minutes: u32,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            public_hosts: vec!["127.0.0.1".into(), "localhost".into()],
            public_https_port: 8443,
            trusted_proxies: Vec::new(),
            max_body_bytes: 1024 * 1024,
            max_header_bytes: 16 * 1024,
            login_ip_max_failures: 30,
            login_ip_window_minutes: 15,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub hasher: PasswordHasher,
    pub settings: Arc<WebSettings>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, hasher: PasswordHasher, settings: WebSettings) -> Self {
        Self { store, clock, hasher, settings: Arc::new(settings) }
    }
}

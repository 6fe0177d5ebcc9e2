//! Daicho's HTTP face: the HTTPS server, the middleware every request passes through, the
//! session and permission extractors, and the handlers for pages and the JSON API.
//!
//! Request path, outermost first: `edge` (request id, security headers, generic error bodies)
//! → `host_and_headers` (Host allowlist, header size) → `client_ip` → `origin_check` (CSRF layer 1)
//! → body limit → `session` (load and expire the session; CSRF layer 2, the per-session token)
//! → handler, whose first statement obtains a capability from the permission engine.

pub mod ctx;
pub mod designs;
pub mod error;
pub mod forms;
pub mod handlers;
pub mod i18n;
pub mod middleware;
pub mod routes;
pub mod server;
pub mod session;
pub mod state;
pub mod tablecap;
pub mod views;

pub use routes::{Access, RouteInfo, router};
pub use server::{HttpsServer, RedirectServer, tls_server_config};
pub use state::{AppState, WebSettings};

//! The listeners: HTTPS (rustls only; TLS 1.3 and 1.2 with ring's AEAD suites) and a plain-HTTP
//! listener whose only answer is a redirect to HTTPS. The accept loop (axum-server) records the
//! peer address (`ConnectInfo`) and the peer's certificate chain (`TlsInfo`) for every
//! connection, so handlers and middleware can see both.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::middleware::{request_host, security_headers};
use crate::state::WebSettings;

/// A rustls server configuration from a PEM certificate chain and key.
pub fn tls_server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(cert_chain, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

pub struct HttpsServer {
    pub addr: SocketAddr,
    pub handle: Handle<SocketAddr>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl HttpsServer {
    /// Serves `app` on an already bound listener.
    pub fn start(
        listener: std::net::TcpListener,
        tls: ServerConfig,
        app: Router,
        settings: &WebSettings,
    ) -> anyhow::Result<Self> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let handle = Handle::new();
        let mut server =
            axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(Arc::new(tls)))?.handle(handle.clone());
        // hyper's own header buffer bound; our middleware enforces the configured (smaller) limit
        // with a proper 431 page.
        server
            .http_builder()
            .http1()
            .max_buf_size((settings.max_header_bytes * 4).max(8192))
            .header_read_timeout(Duration::from_secs(20));
        server
            .http_builder()
            .http2()
            .max_header_list_size(u32::try_from(settings.max_header_bytes * 4).unwrap_or(65536));
        let task = tokio::spawn(server.serve(app.into_make_service_with_connect_info::<SocketAddr>()));
        Ok(Self { addr, handle, task })
    }

    pub fn shutdown(&self) {
        self.handle.graceful_shutdown(Some(Duration::from_secs(10)));
    }
}

pub struct RedirectServer {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    pub handle: Handle<SocketAddr>,
}

impl RedirectServer {
    /// Plain HTTP that answers every request with a redirect to the same path over HTTPS, on a
    /// configured host only (an arbitrary Host would make us an open redirector).
    pub fn start(listener: std::net::TcpListener, settings: Arc<WebSettings>) -> anyhow::Result<Self> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let handle = Handle::new();
        let app = Router::new().fallback(move |req: Request| {
            let settings = settings.clone();
            async move { redirect_to_https(&req, &settings) }
        });
        let server = axum_server::from_tcp(listener)?.handle(handle.clone());
        let task = tokio::spawn(server.serve(app.into_make_service()));
        Ok(Self { addr, task, handle })
    }
}

fn redirect_to_https(req: &Request, settings: &WebSettings) -> Response {
    let mut res = match request_host(req) {
        Some(host) if settings.public_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)) => {
            let port = if settings.public_https_port == 443 {
                String::new()
            } else {
                format!(":{}", settings.public_https_port)
            };
            let host = if host.contains(':') { format!("[{host}]") } else { host };
            let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let mut r = StatusCode::PERMANENT_REDIRECT.into_response();
            match HeaderValue::from_str(&format!("https://{host}{port}{path}")) {
                Ok(v) => {
                    r.headers_mut().insert(header::LOCATION, v);
                    r
                }
                Err(_) => StatusCode::BAD_REQUEST.into_response(),
            }
        }
        _ => (StatusCode::BAD_REQUEST, "Unknown host.\n").into_response(),
    };
    security_headers(res.headers_mut(), false, false);
    res
}

//! Middleware that every HTTPS request passes through. Each function says which rule it
//! enforces; together they make the properties hold for every route, including ones added later.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use daicho_authn::resolve_client_ip;
use daicho_domain::Lang;
use tracing::Instrument;

use crate::ctx::{ClientIp, RequestId};
use crate::error::{AppError, ErrorInfo};
use crate::state::AppState;
use crate::views;

/// Content-Security-Policy for every response: only our own scripts, styles and images; no
/// inline code; no framing; forms post only to us (ASVS 14.4.3, 14.4.7).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

fn set(h: &mut HeaderMap, name: &'static str, value: &'static str) {
    h.insert(name, HeaderValue::from_static(value));
}

/// Headers that every response carries, whatever produced it (ASVS 14.4).
pub fn security_headers(h: &mut HeaderMap, https: bool, cacheable: bool) {
    set(h, "content-security-policy", CSP);
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "same-origin");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cross-origin-resource-policy", "same-origin");
    set(h, "permissions-policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()");
    if https {
        // RFC 6797: only over HTTPS.
        set(h, "strict-transport-security", "max-age=63072000; includeSubDomains");
    }
    if cacheable {
        set(h, "cache-control", "no-cache");
    } else {
        set(h, "cache-control", "no-store");
        set(h, "pragma", "no-cache");
    }
}

fn wants_json(path: &str) -> bool {
    path.starts_with("/api/")
}

fn generic_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "timeout",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "invalid",
        429 => "too_many_requests",
        431 => "headers_too_large",
        503 => "unavailable",
        _ => "internal",
    }
}

/// Only a safe local path may be a post-login destination (no open redirect).
pub fn safe_next(path: &str) -> Option<&str> {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && path.len() < 512
        && !path.chars().any(|c| c.is_control());
    ok.then_some(path)
}

/// Query keys that make a page announce something (a notice and its counts, a saved view's
/// refusal): only our own redirects after a change write them.
const NOTICE_KEYS: &[&str] =
    &["done", "inserted", "updated", "unchanged", "not_written", "n", "view_error", "view_name"];

/// A query string without the keys that make a page announce something, for a query the
/// server carries on to a page of its own (a record page's way back to its list, the page to
/// open after signing in): a link made elsewhere cannot so have a notice shown on a page that
/// came from our own.
pub fn without_notices(query: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| !NOTICE_KEYS.contains(&k.as_ref())))
        .finish()
}

/// A local path to go to after signing in (see `safe_next`), without notice keys in its query.
pub fn next_target(path: &str) -> Option<String> {
    let p = safe_next(path)?;
    Some(match p.split_once('?') {
        Some((path, q)) => match without_notices(q) {
            q if q.is_empty() => path.to_owned(),
            q => format!("{path}?{q}"),
        },
        None => p.to_owned(),
    })
}

/// The outermost layer: gives the request an id, renders every error body in one place, and
/// puts the security headers on every response (pages, errors, assets, redirects).
pub async fn edge(State(_state): State<AppState>, mut req: Request, next: Next) -> Response {
    let rid = uuid::Uuid::new_v4().simple().to_string();
    req.extensions_mut().insert(RequestId(rid.clone()));
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    // HSTS means nothing for IP literals and, for localhost, would force HTTPS on every other
    // local development server in the browser for two years; send it for real names only.
    let hsts = request_host(&req).is_some_and(|h| h != "localhost" && h.parse::<std::net::IpAddr>().is_err());
    let method = req.method().clone();
    let lang = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(Lang::from_accept_language)
        .unwrap_or(Lang::En);
    let span = tracing::info_span!("http", request.id = %rid, http.method = %method, url.path = %path);
    let mut res = next.run(req).instrument(span.clone()).await;
    let status = res.status();

    let info = res.extensions_mut().remove::<ErrorInfo>();
    let is_own_body = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
        ct.starts_with("text/html") || ct.starts_with("application/json") || ct.starts_with("text/csv")
    });
    if info.is_some() || (status.as_u16() >= 400 && !is_own_body) {
        let info = info.unwrap_or(ErrorInfo {
            code: generic_code(status),
            fields: Default::default(),
            redirect_reason: None,
            internal: None,
            detail: None,
        });
        if let Some(cause) = &info.internal {
            tracing::error!(parent: &span, request.id = %rid, error = %cause, "request failed");
        } else if status.is_server_error() {
            tracing::error!(parent: &span, request.id = %rid, status = status.as_u16(), "request failed");
        }
        res = if !wants_json(&path) && status == StatusCode::UNAUTHORIZED {
            let mut to = String::from("/login");
            let mut sep = '?';
            if let Some(r) = info.redirect_reason {
                to.push_str(&format!("{sep}reason={r}"));
                sep = '&';
            }
            if method == Method::GET && path != "/" {
                let full = match &query {
                    Some(q) => format!("{path}?{q}"),
                    None => path.clone(),
                };
                if let Some(n) = safe_next(&full) {
                    let enc: String = form_urlencoded::byte_serialize(n.as_bytes()).collect();
                    to.push_str(&format!("{sep}next={enc}"));
                }
            }
            redirect_see_other(&to)
        } else if !wants_json(&path) && info.code == "password_change_required" {
            redirect_see_other("/account/password")
        } else if wants_json(&path) {
            views::error_json(status, &info, lang, &rid)
        } else {
            views::error_page(status, &info, lang, &rid)
        };
    }
    let cacheable = path.starts_with("/assets/") && status.is_success();
    security_headers(res.headers_mut(), hsts, cacheable);
    if let Ok(v) = HeaderValue::from_str(&rid) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

/// A panic in a handler (a bug: bad input is a 4xx by design) answered as a server error, which
/// `edge` logs with the request id and shows as its error page, instead of a connection dropped
/// without an answer and without a trace of which request it was.
pub async fn catch_panics(req: Request, next: Next) -> Response {
    match futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(next.run(req))).await {
        Ok(res) => res,
        Err(panic) => {
            // (The panic's own message, for the log line `edge` writes with the request id.)
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let mut res = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            res.extensions_mut().insert(ErrorInfo {
                code: generic_code(StatusCode::INTERNAL_SERVER_ERROR),
                fields: Default::default(),
                redirect_reason: None,
                detail: None,
                internal: Some(format!("the handler panicked: {why}")),
            });
            res
        }
    }
}

/// A query string parsed and serialised again: every pair kept, every byte that is not plain
/// ASCII percent-encoded (a form field may carry control characters or line breaks).
pub fn reencode_query(q: &str) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(form_urlencoded::parse(q.as_bytes())).finish()
}

pub fn redirect_see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// The host name a request addresses, lower-cased and without port.
pub fn request_host(req: &Request) -> Option<String> {
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()))?;
    Some(strip_port(&raw).to_ascii_lowercase())
}

fn strip_port(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => h,
    }
}

/// Refuses requests for host names other than the configured ones (DNS rebinding, Host header
/// poisoning of generated links) and requests whose headers exceed the limit.
pub async fn host_and_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let total: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if total > state.settings.max_header_bytes {
        return AppError::HeadersTooLarge.into_response();
    }
    match request_host(&req) {
        Some(h) if state.settings.public_hosts.iter().any(|p| p.eq_ignore_ascii_case(&h)) => next.run(req).await,
        _ => AppError::BadHost.into_response(),
    }
}

/// Resolves the client IP once: the peer address, or X-Forwarded-For behind trusted proxies.
pub async fn client_ip(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let Some(peer) = peer else {
        return AppError::Internal("no peer address on the connection".into()).into_response();
    };
    let xff = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let ip = resolve_client_ip(peer, xff, &state.settings.trusted_proxies);
    req.extensions_mut().insert(ClientIp(ip));
    next.run(req).await
}

/// CSRF layer 1 (OWASP CSRF Cheat Sheet, "Fetch Metadata" and "Verifying Origin"): a
/// state-changing request that a browser marks as cross-site, or whose Origin is not ours, is
/// refused before any handler runs. Clients that send neither header (API scripts) rely on the
/// session token check that follows.
pub async fn origin_check(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if unsafe_method {
        let h = req.headers();
        let allowed = if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            site == "same-origin" || site == "none"
        } else if let Some(origin) = h.get(header::ORIGIN) {
            origin.to_str().ok().is_some_and(|o| origin_is_ours(o, &state))
        } else {
            true
        };
        if !allowed {
            return AppError::CrossOrigin.into_response();
        }
    }
    next.run(req).await
}

fn origin_is_ours(origin: &str, state: &AppState) -> bool {
    let Some(rest) = origin.strip_prefix("https://") else { return false };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse::<u16>() {
            Ok(p) => (h, p),
            Err(_) => return false,
        },
        _ => (rest, 443),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    port == state.settings.public_https_port && state.settings.public_hosts.iter().any(|p| p.eq_ignore_ascii_case(host))
}

/// Request body limits (ASVS 13.1.3): a declared length over the route's limit is refused
/// with 413 before anything is read; an undeclared (chunked) body is cut off at the limit, which
/// the extractors turn into 413 as well. CSV import routes have their own, larger limit.
pub async fn body_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.settings.body_limit_for(req.uri().path());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return body_too_large();
    }
    let (parts, body) = req.into_parts();
    next.run(Request::from_parts(parts, Body::new(http_body_util::Limited::new(body, limit)))).await
}

/// Refuses a query string whose percent-escapes do not decode to UTF-8 (400 `bad_encoding`).
/// The query extractors would otherwise put U+FFFD in their place, so a search or filter would
/// run on other text than sent. Form bodies get the same check in `forms::Form`, after the
/// request is authenticated. Browsers always send UTF-8; this catches hand-made requests.
pub async fn utf8_query(req: Request, next: Next) -> Response {
    if req.uri().query().is_some_and(|q| !form_is_utf8(q.as_bytes())) {
        return AppError::BadRequest("bad_encoding").into_response();
    }
    next.run(req).await
}

/// Whether every name and value of `application/x-www-form-urlencoded` text decodes to UTF-8
/// ("+" stands for a space, which changes nothing here). A part without escapes is checked in
/// place; one with escapes is decoded once.
pub(crate) fn form_is_utf8(input: &[u8]) -> bool {
    input
        .split(|b| *b == b'&')
        .flat_map(|pair| pair.splitn(2, |b| *b == b'='))
        .all(|part| percent_encoding::percent_decode(part).decode_utf8().is_ok())
}

/// Turns a failed body read (over the limit) into 413 for handlers that read bodies themselves.
pub fn body_too_large() -> Response {
    AppError::PayloadTooLarge.into_response()
}

/// A response with no body, used by HEAD-safe handlers.
pub fn empty(status: StatusCode) -> Response {
    (status, Body::empty()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_is_answered_with_a_server_error_not_a_dropped_connection() {
        use tower::ServiceExt;
        async fn boom() -> &'static str {
            panic!("a bug")
        }
        let app = axum::Router::new()
            .route("/boom", axum::routing::get(boom))
            .route("/ok", axum::routing::get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(catch_panics));
        let get = |p: &str| Request::builder().uri(p).body(axum::body::Body::empty()).unwrap();
        let res = app.clone().oneshot(get("/boom")).await.unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            res.extensions().get::<ErrorInfo>().and_then(|i| i.internal.clone()).as_deref(),
            Some("the handler panicked: a bug")
        );
        let res = app.oneshot(get("/ok")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    #[test]
    fn form_text_must_decode_to_utf8() {
        assert!(form_is_utf8(b""));
        assert!(form_is_utf8(b"a=1&b=%E6%9D%B1%E4%BA%AC+x&c&=&d=100%25"));
        assert!(form_is_utf8("名前=東京".as_bytes()));
        // a lone "%" or a bad escape is kept as written, as the decoders do
        assert!(form_is_utf8(b"q=%&r=%zz&s=50%"));
        assert!(!form_is_utf8(b"a=%FF"));
        assert!(!form_is_utf8(b"ok=1&%C3=x"));
        assert!(!form_is_utf8(b"a=%E6%9D"));
        assert!(!form_is_utf8(b"a=\xff"));
    }

    #[test]
    fn ports_are_stripped_from_host_names() {
        assert_eq!(strip_port("127.0.0.1:8443"), "127.0.0.1");
        assert_eq!(strip_port("[::1]:8443"), "::1");
        assert_eq!(strip_port("example.jp"), "example.jp");
    }

    #[test]
    fn only_local_paths_are_accepted_as_next() {
        assert_eq!(safe_next("/account"), Some("/account"));
        assert_eq!(safe_next("//evil.example"), None);
        assert_eq!(safe_next("https://evil.example"), None);
        assert_eq!(safe_next("/\\evil.example"), None);
    }
}

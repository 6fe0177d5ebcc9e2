//! First-party static assets, compiled into the binary: no CDN, no runtime download.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const APP_CSS: &str = include_str!("../../assets/app.css");
const ICON_SVG: &str = include_str!("../../assets/icon.svg");
const APP_JS: &str = include_str!("../../assets/app.js");

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub async fn app_css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

/// The one first-party script: conveniences over pages that work without it.
pub async fn app_js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

pub async fn icon_svg() -> Response {
    asset(ICON_SVG, "image/svg+xml")
}

pub async fn favicon() -> Response {
    asset(ICON_SVG, "image/svg+xml")
}

/// Liveness and database reachability, for load balancers and monitors.
pub async fn healthz(axum::extract::State(state): axum::extract::State<crate::state::AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => asset("ok\n", "text/plain; charset=utf-8"),
        Err(e) => crate::error::AppError::Unavailable(e.to_string()).into_response(),
    }
}

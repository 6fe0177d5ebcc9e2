//! One error vocabulary for every handler. A handler returns `AppError`; its `IntoResponse`
//! sets the status and attaches an [`ErrorInfo`] extension, and the `edge` middleware, which
//! knows the request id, the path and the language, renders the body once: an HTML page or a
//! JSON object. Internal causes are logged there with the request id and never shown
//! (ASVS 7.4.1).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use daicho_domain::{DomainError, FieldErrors};
use daicho_store::StoreError;

#[derive(Debug)]
pub enum AppError {
    /// No valid session. Pages redirect to the login page; the API answers 401.
    Unauthenticated {
        reason: Option<&'static str>,
    },
    /// The password must be changed before anything else.
    PasswordChangeRequired,
    Forbidden,
    /// The per-session CSRF token was missing or wrong.
    Csrf,
    /// The Origin / Sec-Fetch-Site check refused a cross-site request.
    CrossOrigin,
    /// The client's network is not on the tenant's allowlist.
    IpNotAllowed,
    /// The Host header names none of the configured public hosts.
    BadHost,
    HeadersTooLarge,
    NotFound,
    BadRequest(&'static str),
    /// A JSON body that does not parse or has the wrong shape; the parser's words are shown.
    BadJson(String),
    Invalid(FieldErrors),
    Conflict(FieldErrors),
    TooManyRequests,
    PayloadTooLarge,
    Unavailable(String),
    Internal(String),
}

/// What the edge needs to render an error.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub code: &'static str,
    pub fields: FieldErrors,
    pub redirect_reason: Option<&'static str>,
    /// Shown to the client: a parser's explanation of malformed input.
    pub detail: Option<String>,
    /// Logged with the request id, never sent.
    pub internal: Option<String>,
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            AppError::PasswordChangeRequired => StatusCode::FORBIDDEN,
            AppError::Forbidden | AppError::Csrf | AppError::CrossOrigin | AppError::IpNotAllowed => {
                StatusCode::FORBIDDEN
            }
            AppError::BadHost => StatusCode::BAD_REQUEST,
            AppError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) | AppError::BadJson(_) => StatusCode::BAD_REQUEST,
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated { .. } => "unauthenticated",
            AppError::PasswordChangeRequired => "password_change_required",
            AppError::Forbidden => "forbidden",
            AppError::Csrf => "csrf",
            AppError::IpNotAllowed => "ip_not_allowed",
            AppError::CrossOrigin => "cross_origin",
            AppError::BadHost => "bad_host",
            AppError::HeadersTooLarge => "headers_too_large",
            AppError::NotFound => "not_found",
            AppError::BadRequest(c) => c,
            AppError::BadJson(_) => "invalid_json",
            AppError::Invalid(_) => "invalid",
            AppError::Conflict(_) => "conflict",
            AppError::TooManyRequests => "too_many_requests",
            AppError::PayloadTooLarge => "payload_too_large",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let info = match self {
            AppError::Unauthenticated { reason } => {
                ErrorInfo { code, fields: FieldErrors::new(), redirect_reason: reason, internal: None, detail: None }
            }
            AppError::Invalid(f) | AppError::Conflict(f) => {
                ErrorInfo { code, fields: f, redirect_reason: None, internal: None, detail: None }
            }
            AppError::Unavailable(m) | AppError::Internal(m) => {
                ErrorInfo { code, fields: FieldErrors::new(), redirect_reason: None, internal: Some(m), detail: None }
            }
            AppError::BadJson(d) => {
                ErrorInfo { code, fields: FieldErrors::new(), redirect_reason: None, internal: None, detail: Some(d) }
            }
            _ => ErrorInfo { code, fields: FieldErrors::new(), redirect_reason: None, internal: None, detail: None },
        };
        let mut res = status.into_response();
        res.extensions_mut().insert(info);
        res
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound,
            StoreError::Forbidden => AppError::Forbidden,
            StoreError::Conflict(f) => AppError::Conflict(f),
            StoreError::Invalid(f) => AppError::Invalid(f),
            StoreError::Unavailable(m) => AppError::Unavailable(m),
            StoreError::Internal(m) => AppError::Internal(m),
        }
    }
}

impl From<DomainError> for AppError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound => AppError::NotFound,
            DomainError::Forbidden => AppError::Forbidden,
            DomainError::Invalid(f) => AppError::Invalid(f),
            DomainError::Conflict(f) => AppError::Conflict(f),
        }
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::Internal(format!("template: {e}"))
    }
}

pub type AppResult<T> = Result<T, AppError>;

//! Request bodies and query strings. Every field is a plain string (or absent), so that a
//! malformed value becomes a field error with the user's input kept, never an extractor
//! rejection; unknown fields are refused where the shape is ours to define (JSON).

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::AppError;

/// An `application/x-www-form-urlencoded` body, as axum's `Form`, but whose percent-escapes must
/// decode to UTF-8: otherwise 400 `bad_encoding` (the form decoder would put U+FFFD in their
/// place and a value would be saved other than as sent; the JSON API refuses such text too).
/// As an extractor it runs after the session and the user's rights have been checked, and it
/// reads the body within the route's limit (`middleware::body_limit`).
pub struct Form<T>(pub T);

impl<T, S> FromRequest<S> for Form<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let body = if crate::session::is_form(&parts.headers) {
            let bytes =
                axum::body::to_bytes(body, usize::MAX).await.map_err(|_| AppError::PayloadTooLarge.into_response())?;
            if !crate::middleware::form_is_utf8(&bytes) {
                return Err(AppError::BadRequest("bad_encoding").into_response());
            }
            Body::from(bytes)
        } else {
            body
        };
        // axum's own decoding (and its 415 for another content type).
        match axum::Form::<T>::from_request(Request::from_parts(parts, body), state).await {
            Ok(axum::Form(v)) => Ok(Form(v)),
            Err(e) => Err(e.into_response()),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub login_id: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub next: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    pub reason: Option<String>,
    pub next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    pub done: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    pub current_password: String,
    #[serde(default)]
    pub new_password: String,
    #[serde(default)]
    pub confirm_password: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct LanguageForm {
    #[serde(default)]
    pub language: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct UserForm {
    #[serde(default)]
    pub login_id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub language: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    pub confirm: String,
}

/// Policy values arrive as text so that "abc" is a field error, not a rejected request.
#[derive(Debug, Default, Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    pub password_min_length: String,
    #[serde(default)]
    pub password_history: String,
    #[serde(default)]
    pub password_max_age_days: String,
    #[serde(default)]
    pub password_expiry_warning_days: String,
    #[serde(default)]
    pub lockout_threshold: String,
    #[serde(default)]
    pub lockout_minutes: String,
    #[serde(default)]
    pub idle_timeout_minutes: String,
    #[serde(default)]
    pub absolute_timeout_hours: String,
    #[serde(default)]
    pub utc_offset_minutes: String,
    /// One network per line (CIDR, or a single address).
    #[serde(default)]
    pub ip_allowlist: String,
}

#[derive(Debug, Default, Deserialize, Clone)]
pub struct AuditQuery {
    pub login: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub ip: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub before: Option<String>,
    pub limit: Option<String>,
    /// "1": check the whole chain of events now (it reads every event of the tenant, so only
    /// when asked, not on every page of the history).
    pub verify: Option<String>,
}

// --- JSON API bodies ---

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiLogin {
    pub tenant: String,
    pub login_id: String,
    pub password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiPasswordChange {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiNewUser {
    pub login_id: String,
    pub display_name: String,
    pub email: String,
    pub role: String,
    #[serde(default = "auto")]
    pub language: String,
}

fn auto() -> String {
    "auto".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiUserUpdate {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub role: Option<String>,
    pub language: Option<String>,
}

//! Presenters: the askama templates, the common page frame, and the two renderings of an error
//! (HTML page and JSON body). Templates are auto-escaped; no handler builds HTML by hand.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use daicho_domain::{FieldErrors, Lang, Role, User, UserStatus};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::error::ErrorInfo;
use crate::i18n;
use crate::session::Auth;

/// The signed-in user as the page frame shows them.
#[derive(Debug, Clone)]
pub struct NavUser {
    pub display_name: String,
    pub tenant_name: String,
    pub is_admin: bool,
}

/// Everything the frame (`base.html`) needs.
#[derive(Debug, Clone)]
pub struct Page {
    pub lang: Lang,
    pub title: &'static str,
    pub section: &'static str,
    pub request_id: String,
    pub user: Option<NavUser>,
    pub csrf: String,
    pub banner: Option<String>,
    pub flash: Option<&'static str>,
    /// A line after the flash message (an import's counts).
    pub flash_detail: Option<String>,
    /// What the browser's tab says instead of the title's text (a table's own name).
    pub named: Option<String>,
}

impl Page {
    pub fn anonymous(lang: Lang, title: &'static str, request_id: &str) -> Self {
        Self {
            lang,
            title,
            section: "",
            request_id: request_id.to_owned(),
            user: None,
            csrf: String::new(),
            banner: None,
            flash: None,
            flash_detail: None,
            named: None,
        }
    }

    pub fn for_user(auth: &Auth, title: &'static str, section: &'static str, request_id: &str) -> Self {
        let banner = match auth.password_age {
            daicho_domain::policy::PasswordAge::ExpiresSoon { days_left } => {
                Some(i18n::t(auth.lang, "banner.password_expires").replace("{days}", &days_left.to_string()))
            }
            _ => None,
        };
        Self {
            lang: auth.lang,
            title,
            section,
            request_id: request_id.to_owned(),
            user: Some(NavUser {
                display_name: auth.user.display_name.as_str().to_owned(),
                tenant_name: auth.tenant.name.as_str().to_owned(),
                is_admin: auth.user.role == Role::TenantAdmin,
            }),
            csrf: auth.csrf().to_owned(),
            banner,
            flash: None,
            flash_detail: None,
            named: None,
        }
    }

    /// The tab's title names what the page is about as well: "`what` · <page title>"
    /// ("顧客 Customers · 設計"), so that tabs of several tables' pages tell apart.
    pub fn about(mut self, what: &str) -> Self {
        self.named = Some(format!("{what} · {}", i18n::t(self.lang, self.title)));
        self
    }

    pub fn with_flash(mut self, ctx: &crate::ctx::Ctx, done: Option<&str>) -> Self {
        self.flash = done.filter(|_| ctx.from_own_page).and_then(i18n::flash_key);
        self
    }

    /// Translates a message key.
    pub fn t(&self, key: &str) -> &'static str {
        i18n::t(self.lang, key)
    }

    /// Translates a field error code.
    pub fn e(&self, code: &str) -> &'static str {
        i18n::error_message(self.lang, code)
    }

    pub fn outcome(&self, o: &str) -> &'static str {
        match o {
            "success" => self.t("outcome.success"),
            "failure" => self.t("outcome.failure"),
            "denied" => self.t("outcome.denied"),
            _ => "",
        }
    }
}

/// Field errors as templates read them.
#[derive(Debug, Clone, Default)]
pub struct Errors(pub FieldErrors);

impl Errors {
    pub fn get(&self, field: &str) -> Option<&'static str> {
        self.0.code_for(field)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Whether the form's only problem is that its data changed meanwhile (nothing to correct
    /// in what was typed: the page shows the data as it is now).
    pub fn only_conflict(&self) -> bool {
        !self.0.is_empty() && self.0.0.iter().all(|e| matches!(e.code, "changed_meanwhile" | "stale"))
    }
    /// The link fields named by errors of `code` ("link:受注 › 顧客"), without their prefix; an
    /// empty name for one the user may not see.
    pub fn links_with(&self, code: &str) -> Vec<String> {
        self.0
            .0
            .iter()
            .filter(|fe| fe.code == code)
            .filter_map(|fe| fe.field.strip_prefix("link:").map(str::to_owned))
            .collect()
    }
    /// Each error code once, in order: the form's summary names every problem, also those of
    /// a field the page shows no message beside (a box to tick, a row of a list).
    pub fn codes(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for fe in &self.0.0 {
            if !out.contains(&fe.code) {
                out.push(fe.code);
            }
        }
        out
    }
}

/// An offset from UTC in minutes (the tenant's) as `time` takes it; UTC if out of range.
pub fn utc_offset(minutes: i32) -> time::UtcOffset {
    minutes.checked_mul(60).and_then(|s| time::UtcOffset::from_whole_seconds(s).ok()).unwrap_or(time::UtcOffset::UTC)
}

/// How pages name an offset from UTC: "UTC", "UTC+09:00", "UTC-05:00".
pub fn offset_label(minutes: i32) -> String {
    let (sign, a) = if minutes < 0 { ('-', minutes.unsigned_abs()) } else { ('+', minutes.unsigned_abs()) };
    if minutes == 0 { "UTC".to_owned() } else { format!("UTC{sign}{:02}:{:02}", a / 60, a % 60) }
}

/// A time as pages show it: in the tenant's offset from UTC, which the text names (in UTC when
/// the time cannot be written there).
pub fn fmt_time(t: OffsetDateTime, offset_minutes: i32) -> String {
    let f = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    match t.checked_to_offset(utc_offset(offset_minutes)).and_then(|local| local.format(&f).ok()) {
        Some(local) => format!("{local} {}", offset_label(offset_minutes)),
        None => format!("{} UTC", t.format(&f).unwrap_or_default()),
    }
}

pub fn role_key(r: Role) -> &'static str {
    match r {
        Role::TenantAdmin => "role.tenant_admin",
        Role::Member => "role.member",
    }
}

/// Status label and CSS class for a user, counting a lock as a status of its own.
pub fn status_of(u: &User, now: OffsetDateTime) -> (&'static str, &'static str) {
    if u.status == UserStatus::Disabled {
        ("status.disabled", "off")
    } else if u.is_locked(now) {
        ("status.locked", "warn")
    } else {
        ("status.active", "ok")
    }
}

pub fn render<T: Template>(t: &T) -> Response {
    render_status(StatusCode::OK, t)
}

pub fn render_status<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => crate::error::AppError::Internal(format!("template: {e}")).into_response(),
    }
}

#[derive(Template)]
#[template(path = "errors/error.html")]
struct ErrorPage<'a> {
    p: Page,
    status: u16,
    heading: &'a str,
    message: &'a str,
    /// What the refusal says of itself (its first error code's message), where it says
    /// something: "conflict" alone reads as "that value is taken", whatever the conflict was.
    specific: Option<&'static str>,
}

pub fn error_page(status: StatusCode, info: &ErrorInfo, lang: Lang, request_id: &str) -> Response {
    let (heading, message) = i18n::error_heading_and_message(info.code);
    let specific = info
        .fields
        .0
        .first()
        .filter(|f| i18n::has_key(&format!("err.{}", f.code)))
        .map(|f| i18n::error_message(lang, f.code));
    let page = ErrorPage {
        p: Page::anonymous(lang, heading, request_id),
        status: status.as_u16(),
        heading,
        message,
        specific,
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        // The error page itself failed: answer with the bare status rather than loop.
        Err(_) => status.into_response(),
    }
}

pub fn error_json(status: StatusCode, info: &ErrorInfo, lang: Lang, request_id: &str) -> Response {
    let (_, message) = i18n::error_heading_and_message(info.code);
    let fields: Vec<_> = info
        .fields
        .0
        .iter()
        .map(|f| serde_json::json!({"field": f.field, "code": f.code, "message": i18n::error_message(lang, f.code)}))
        .collect();
    let body = serde_json::json!({
        "error": {
            "code": info.code,
            "message": i18n::t(lang, message),
            "request_id": request_id,
            "fields": fields,
            "detail": info.detail,
        }
    });
    (status, axum::Json(body)).into_response()
}

/// A browser and its system in a few words ("Chrome · Windows"), from a User-Agent header, for
/// lists of sessions (the whole header stays available beside it); "?" for what it cannot tell.
pub fn browser_name(ua: &str) -> String {
    let has = |s: &str| ua.contains(s);
    let browser = if has("Edg/") {
        "Edge"
    } else if has("OPR/") {
        "Opera"
    } else if has("Firefox/") || has("FxiOS/") {
        "Firefox"
    } else if has("Chrome/") || has("CriOS/") {
        "Chrome"
    } else if has("Safari/") && has("Version/") {
        "Safari"
    } else {
        ""
    };
    let system = if has("iPhone") {
        "iPhone"
    } else if has("iPad") {
        "iPad"
    } else if has("Android") {
        "Android"
    } else if has("Windows") {
        "Windows"
    } else if has("Mac OS X") || has("Macintosh") {
        "macOS"
    } else if has("CrOS") {
        "ChromeOS"
    } else if has("Linux") {
        "Linux"
    } else {
        ""
    };
    match (browser, system) {
        ("", "") => {
            // A program (curl/8.0, python-requests/2.31): its own name.
            let first = ua.split(['/', ' ']).next().unwrap_or("").trim();
            if first.is_empty() || first.chars().count() > 40 { "?".to_owned() } else { first.to_owned() }
        }
        ("", s) => s.to_owned(),
        (b, "") => b.to_owned(),
        (b, s) => format!("{b} · {s}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_user_agent_reads_as_a_browser_and_its_system() {
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36 Edg/130.0",
                "Edge · Windows",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/142.0 Safari/537.36",
                "Chrome · Linux",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1",
                "Safari · iPhone",
            ),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:131.0) Gecko/20100101 Firefox/131.0", "Firefox · macOS"),
            ("curl/8.5.0", "curl"),
            ("", "?"),
        ];
        for (ua, want) in cases {
            assert_eq!(super::browser_name(ua), want, "{ua}");
        }
    }
}

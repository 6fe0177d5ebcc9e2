//! What every handler knows about its request: the request id, the client's IP (resolved once
//! by the middleware), the user agent, the browser's language and the current time from the
//! injected clock. It also builds audit events so that each one carries the same facts.

use std::convert::Infallible;
use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use daicho_domain::{AuditAction, Lang, NewAuditEvent, Outcome, Principal};
use time::OffsetDateTime;

use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

#[derive(Debug, Clone)]
pub struct Ctx {
    pub request_id: String,
    pub ip: String,
    pub user_agent: String,
    pub browser_lang: Lang,
    pub accept_language: Option<String>,
    pub now: OffsetDateTime,
    pub path: String,
    /// The browser says the request came from another site (`Sec-Fetch-Site: cross-site`): a
    /// link elsewhere can make a signed-in user's browser open any address here, so a refusal
    /// it causes is marked as such rather than set down as the user's own probing.
    pub cross_site: bool,
    /// The request came from one of our own pages (`Sec-Fetch-Site: same-origin`, or a browser
    /// that does not say): only then does a page show the notice its address asks for
    /// (`?done=imported&inserted=…`), so that a link in a mail or on another site cannot make
    /// Daicho announce an import, a deletion or a count that did not happen.
    pub from_own_page: bool,
}

/// An id as a request gave it, for the operation history: without control characters and at
/// most 40 characters (it comes from the address, and may be anything).
pub fn shown_id(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(40).collect()
}

impl Ctx {
    pub fn event(&self, action: AuditAction, outcome: Outcome) -> NewAuditEvent {
        NewAuditEvent {
            at: self.now,
            tenant_id: None,
            actor_id: None,
            actor_login: String::new(),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            action,
            target: String::new(),
            outcome,
            details: String::new(),
        }
    }

    /// A refusal's details, marked when the request came from another site (see `cross_site`).
    pub fn refusal(&self, what: impl Into<String>) -> String {
        let what = what.into();
        if self.cross_site { format!("{what} (the browser said it was opened from another site)") } else { what }
    }

    pub fn event_by(&self, who: &Principal, action: AuditAction, outcome: Outcome) -> NewAuditEvent {
        let mut e = self.event(action, outcome);
        e.tenant_id = Some(who.tenant_id);
        e.actor_id = Some(who.user_id);
        e.actor_login = who.login_id.as_str().to_owned();
        e
    }
}

pub trait EventExt {
    fn target(self, t: impl Into<String>) -> Self;
    fn details(self, d: impl Into<String>) -> Self;
}

impl EventExt for NewAuditEvent {
    fn target(mut self, t: impl Into<String>) -> Self {
        self.target = t.into();
        self
    }
    fn details(mut self, d: impl Into<String>) -> Self {
        self.details = d.into();
        self
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ctx_from_parts(parts, state))
    }
}

pub fn ctx_from_parts(parts: &Parts, state: &AppState) -> Ctx {
    let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    let ip = parts.extensions.get::<ClientIp>().map(|c| c.0.to_string()).unwrap_or_default();
    let header_str = |h: header::HeaderName| parts.headers.get(h).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let accept_language = header_str(header::ACCEPT_LANGUAGE);
    let browser_lang = accept_language.as_deref().map(Lang::from_accept_language).unwrap_or(Lang::En);
    let agent: String = header_str(header::USER_AGENT).unwrap_or_default().chars().take(256).collect();
    let user_agent = match parts.extensions.get::<crate::session::ViaToken>() {
        Some(via) => token_agent(via, &agent),
        None => session_agent(agent),
    };
    Ctx {
        request_id,
        ip,
        user_agent,
        browser_lang,
        accept_language,
        now: state.clock.now(),
        path: parts.uri.path().to_owned(),
        // (A browser's claim, so only for a browser's session: a token's client says nothing.)
        cross_site: parts.extensions.get::<crate::session::ViaToken>().is_none()
            && parts.headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes() == b"cross-site"),
        from_own_page: parts.headers.get("sec-fetch-site").is_none_or(|v| v.as_bytes() == b"same-origin"),
    }
}

/// The user-agent column of a request without a token: the client's header, unless it holds
/// a token's mark (`token:…`), which only the server writes; such a header is kept behind
/// "(sent) ", so that no session's events can pass for a token's.
fn session_agent(agent: String) -> String {
    // Anywhere in it: invisible characters before it would not show in the history either.
    if agent.to_ascii_lowercase().contains("token:") { format!("(sent) {agent}") } else { agent }
}

/// The user-agent column of events made with a personal API token names the token.
pub fn token_agent(via: &crate::session::ViaToken, agent: &str) -> String {
    format!("token:{} ({}) {agent}", via.name, via.id).trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sessions_user_agent_cannot_pass_for_a_tokens_mark() {
        assert_eq!(session_agent("Mozilla/5.0".into()), "Mozilla/5.0");
        assert_eq!(session_agent("token:sync job (0190) curl".into()), "(sent) token:sync job (0190) curl");
        assert_eq!(session_agent("  TOKEN: x".into()), "(sent)   TOKEN: x");
        assert_eq!(session_agent("tok".into()), "tok");
        assert_eq!(session_agent("\u{200b}token:x".into()), "(sent) \u{200b}token:x");
        assert_eq!(session_agent("日本語".into()), "日本語", "a short multi-byte header is not cut mid-character");
        let via = crate::session::ViaToken { id: daicho_domain::TokenId::new_random(), name: "ci".into() };
        assert!(token_agent(&via, "curl").starts_with("token:ci ("));
    }
}

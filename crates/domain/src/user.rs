//! Users of a tenant and the validated values they are made of. Each newtype validates in
//! `parse` so that no unchecked string reaches the store or a page.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::FieldErrors;
use crate::ids::{TenantId, UserId};

fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control())
}

/// A login ID, unique within a tenant, compared case-insensitively (stored lower-case).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LoginId(String);

impl LoginId {
    pub const MAX: usize = 64;
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let s = s.trim();
        if s.is_empty() {
            return Err("required");
        }
        if s.chars().count() > Self::MAX {
            return Err("too_long");
        }
        if !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')) {
            return Err("login_id_chars");
        }
        Ok(Self(s.to_ascii_lowercase()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LoginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX: usize = 100;
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let s = s.trim();
        if s.is_empty() {
            return Err("required");
        }
        if s.chars().count() > Self::MAX {
            return Err("too_long");
        }
        if has_control(s) {
            return Err("control_chars");
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address: deliberately a light syntactic check (one @, a dot in the domain, no
/// spaces); only a delivered mail proves an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub const MAX: usize = 254;
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let s = s.trim();
        if s.is_empty() {
            return Err("required");
        }
        if s.len() > Self::MAX {
            return Err("too_long");
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err("email_format");
        };
        if local.is_empty()
            || domain.len() < 3
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains('@')
            || s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ','))
        {
            return Err("email_format");
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    TenantAdmin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::TenantAdmin => "tenant_admin",
            Role::Member => "member",
        }
    }
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        match s {
            "tenant_admin" => Ok(Role::TenantAdmin),
            "member" => Ok(Role::Member),
            _ => Err("choice"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        }
    }
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        match s {
            "active" => Ok(UserStatus::Active),
            "disabled" => Ok(UserStatus::Disabled),
            _ => Err("choice"),
        }
    }
}

/// The languages the interface is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    En,
    Ja,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }
    /// Picks the first supported language from an Accept-Language header, by quality.
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',').take(20) {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it.find_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.parse::<f32>().ok())).unwrap_or(1.0);
            let lang = if tag == "ja" || tag.starts_with("ja-") {
                Some(Lang::Ja)
            } else if tag == "en" || tag.starts_with("en-") {
                Some(Lang::En)
            } else {
                None
            };
            if let Some(l) = lang
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, l));
            }
        }
        best.map(|(_, l)| l).unwrap_or(Lang::En)
    }
}

/// A user's language preference: a fixed language, or whatever the browser asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LanguagePref {
    Auto,
    En,
    Ja,
}

impl LanguagePref {
    pub fn as_str(self) -> &'static str {
        match self {
            LanguagePref::Auto => "auto",
            LanguagePref::En => "en",
            LanguagePref::Ja => "ja",
        }
    }
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        match s {
            "auto" => Ok(Self::Auto),
            "en" => Ok(Self::En),
            "ja" => Ok(Self::Ja),
            _ => Err("choice"),
        }
    }
    pub fn resolve(self, accept_language: Option<&str>) -> Lang {
        match self {
            LanguagePref::En => Lang::En,
            LanguagePref::Ja => Lang::Ja,
            LanguagePref::Auto => accept_language.map(Lang::from_accept_language).unwrap_or(Lang::En),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub login_id: LoginId,
    pub display_name: DisplayName,
    pub email: Email,
    pub role: Role,
    pub status: UserStatus,
    pub language: LanguagePref,
    pub must_change_password: bool,
    pub password_changed_at: OffsetDateTime,
    pub failed_logins: u32,
    pub locked_until: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl User {
    pub fn is_locked(&self, now: OffsetDateTime) -> bool {
        self.locked_until.is_some_and(|t| t > now)
    }
}

/// The editable profile of a user, as validated input from any front end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    pub display_name: DisplayName,
    pub email: Email,
    pub role: Role,
    pub language: LanguagePref,
}

impl UserProfile {
    pub fn parse(display_name: &str, email: &str, role: &str, language: &str) -> Result<Self, FieldErrors> {
        let mut errs = FieldErrors::new();
        let d = DisplayName::parse(display_name).map_err(|c| errs.push("display_name", c)).ok();
        let e = Email::parse(email).map_err(|c| errs.push("email", c)).ok();
        let r = Role::parse(role).map_err(|c| errs.push("role", c)).ok();
        let l = LanguagePref::parse(language).map_err(|c| errs.push("language", c)).ok();
        match (d, e, r, l) {
            (Some(display_name), Some(email), Some(role), Some(language)) if errs.is_empty() => {
                Ok(Self { display_name, email, role, language })
            }
            _ => Err(errs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_id_is_lowercased_and_restricted() {
        assert_eq!(LoginId::parse(" Alice.Smith ").map(|l| l.0), Ok("alice.smith".into()));
        assert_eq!(LoginId::parse("a b"), Err("login_id_chars"));
        assert_eq!(LoginId::parse("'; DROP TABLE users;--"), Err("login_id_chars"));
        assert_eq!(LoginId::parse(""), Err("required"));
        assert_eq!(LoginId::parse(&"a".repeat(65)), Err("too_long"));
    }

    #[test]
    fn display_name_keeps_unicode_and_refuses_control_characters() {
        assert!(DisplayName::parse("山田 太郎 <b>").is_ok());
        assert_eq!(DisplayName::parse("a\u{0}b"), Err("control_chars"));
    }

    #[test]
    fn email_needs_one_at_and_a_dotted_domain() {
        assert!(Email::parse("a@example.jp").is_ok());
        for bad in ["a", "a@b", "@x.jp", "a@@x.jp", "a b@x.jp", "a@x.", "a@.jp"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn accept_language_picks_the_highest_quality_supported_language() {
        assert_eq!(Lang::from_accept_language("ja,en-US;q=0.9"), Lang::Ja);
        assert_eq!(Lang::from_accept_language("fr, en;q=0.5, ja;q=0.8"), Lang::Ja);
        assert_eq!(Lang::from_accept_language("de"), Lang::En);
        assert_eq!(Lang::from_accept_language(";;;q=abc,,"), Lang::En);
    }

    #[test]
    fn profile_parse_reports_every_bad_field() {
        let errs = UserProfile::parse("", "nope", "root", "fr").err().unwrap_or_default();
        let fields: Vec<_> = errs.0.iter().map(|e| e.field.as_ref()).collect();
        assert_eq!(fields, ["display_name", "email", "role", "language"]);
    }
}

//! Tenants: the customer companies. The code is what users type at login.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::TenantId;
use crate::policy::SecurityPolicy;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantCode(String);

impl TenantCode {
    /// 2 to 32 characters: lower-case ASCII letters, digits and hyphens, not starting or ending
    /// with a hyphen. Input is lower-cased first so users can type it either way.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let s = s.trim().to_ascii_lowercase();
        if s.is_empty() {
            return Err("required");
        }
        if s.len() < 2 || s.len() > 32 {
            return Err("tenant_code_length");
        }
        if !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            || s.starts_with('-')
            || s.ends_with('-')
        {
            return Err("tenant_code_chars");
        }
        Ok(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantName(String);

impl TenantName {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let s = s.trim();
        if s.is_empty() {
            return Err("required");
        }
        if s.chars().count() > 100 {
            return Err("too_long");
        }
        if s.chars().any(|c| c.is_control()) {
            return Err("control_chars");
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub code: TenantCode,
    pub name: TenantName,
    pub policy: SecurityPolicy,
    pub created_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_code_rules() {
        assert_eq!(TenantCode::parse(" ACME-1 ").map(|c| c.0), Ok("acme-1".into()));
        assert_eq!(TenantCode::parse("a"), Err("tenant_code_length"));
        assert_eq!(TenantCode::parse("-ab"), Err("tenant_code_chars"));
        assert_eq!(TenantCode::parse("a_b"), Err("tenant_code_chars"));
    }
}

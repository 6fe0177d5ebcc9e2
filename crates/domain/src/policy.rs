//! A tenant's security policy. Defaults follow the guidebook and OWASP ASVS v4 (2.1.1 minimum
//! length 12, 2.2.1 anti-automation, 3.3.2 idle and absolute session timeouts).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::error::FieldErrors;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityPolicy {
    /// Minimum password length in characters (8..=128).
    pub password_min_length: u32,
    /// How many previous passwords may not be reused (0..=24).
    pub password_history: u32,
    /// Days after which a password must be changed; 0 means never (0..=3650).
    pub password_max_age_days: u32,
    /// Days before expiry on which a warning is shown (0..=90).
    pub password_expiry_warning_days: u32,
    /// Consecutive failures that lock an account (1..=100).
    pub lockout_threshold: u32,
    /// How long a locked account stays locked, in minutes (1..=1440).
    pub lockout_minutes: u32,
    /// A session unused for this many minutes ends (1..=1440).
    pub idle_timeout_minutes: u32,
    /// A session ends this many hours after login, whatever its use (1..=168).
    pub absolute_timeout_hours: u32,
    /// Networks users may sign in and work from; empty means any (at most 100 entries).
    pub ip_allowlist: Vec<IpNet>,
    /// The offset from UTC, in minutes, in which pages show times (-720..=840, whole quarter
    /// hours); Japan's (+09:00, no daylight saving) unless the tenant says otherwise. What is
    /// stored and what the API returns stays in UTC.
    pub utc_offset_minutes: i32,
}

impl Default for SecurityPolicy {
    fn default() -> Self {
        Self {
            password_min_length: 12,
            password_history: 5,
            password_max_age_days: 0,
            password_expiry_warning_days: 14,
            lockout_threshold: 5,
            lockout_minutes: 15,
            idle_timeout_minutes: 30,
            absolute_timeout_hours: 12,
            ip_allowlist: Vec::new(),
            utc_offset_minutes: 9 * 60,
        }
    }
}

/// Where a password stands against the policy's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordAge {
    Fresh,
    ExpiresSoon { days_left: i64 },
    Expired,
}

impl SecurityPolicy {
    pub fn validate(&self) -> Result<(), FieldErrors> {
        let mut e = FieldErrors::new();
        let mut check = |field: &'static str, v: u32, lo: u32, hi: u32| {
            if v < lo || v > hi {
                e.push(field, "out_of_range");
            }
        };
        check("password_min_length", self.password_min_length, 8, 128);
        check("password_history", self.password_history, 0, 24);
        check("password_max_age_days", self.password_max_age_days, 0, 3650);
        check("password_expiry_warning_days", self.password_expiry_warning_days, 0, 90);
        check("lockout_threshold", self.lockout_threshold, 1, 100);
        check("lockout_minutes", self.lockout_minutes, 1, 1440);
        check("idle_timeout_minutes", self.idle_timeout_minutes, 1, 1440);
        check("absolute_timeout_hours", self.absolute_timeout_hours, 1, 168);
        if self.ip_allowlist.len() > 100 {
            e.push("ip_allowlist", "too_many");
        }
        if !Self::valid_offset(self.utc_offset_minutes) {
            e.push("utc_offset_minutes", "out_of_range");
        }
        if e.is_empty() { Ok(()) } else { Err(e) }
    }

    /// An offset from UTC a tenant may choose: whole quarter hours from UTC−12 to UTC+14.
    pub fn valid_offset(minutes: i32) -> bool {
        (-720..=840).contains(&minutes) && minutes % 15 == 0
    }

    /// Whether a client at `ip` may use the tenant (ASVS 1.4.x network access control).
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        self.ip_allowlist.is_empty() || self.ip_allowlist.iter().any(|n| n.contains(&ip))
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::minutes(i64::from(self.idle_timeout_minutes))
    }
    pub fn absolute_timeout(&self) -> Duration {
        Duration::hours(i64::from(self.absolute_timeout_hours))
    }
    pub fn lockout_duration(&self) -> Duration {
        Duration::minutes(i64::from(self.lockout_minutes))
    }

    pub fn password_age(&self, changed_at: OffsetDateTime, now: OffsetDateTime) -> PasswordAge {
        if self.password_max_age_days == 0 {
            return PasswordAge::Fresh;
        }
        let expires = changed_at + Duration::days(i64::from(self.password_max_age_days));
        if now >= expires {
            return PasswordAge::Expired;
        }
        let left = expires - now;
        if left <= Duration::days(i64::from(self.password_expiry_warning_days)) {
            // Round up so that "expires in 0 days" is never shown before it has expired.
            let days_left = (left.whole_seconds() + 86_399) / 86_400;
            PasswordAge::ExpiresSoon { days_left }
        } else {
            PasswordAge::Fresh
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_guidebook() {
        let p = SecurityPolicy::default();
        assert!(p.validate().is_ok());
        assert_eq!(p.lockout_threshold, 5);
        assert_eq!(p.idle_timeout_minutes, 30);
        assert_eq!(p.absolute_timeout_hours, 12);
        assert_eq!(p.password_min_length, 12);
    }

    #[test]
    fn out_of_range_values_are_reported_per_field() {
        let p = SecurityPolicy { password_min_length: 4, idle_timeout_minutes: 0, ..Default::default() };
        let e = p.validate().err().unwrap_or_default();
        assert_eq!(e.code_for("password_min_length"), Some("out_of_range"));
        assert_eq!(e.code_for("idle_timeout_minutes"), Some("out_of_range"));
        assert_eq!(e.0.len(), 2);
    }

    #[test]
    fn an_empty_allowlist_allows_everyone_and_a_set_one_only_its_networks() {
        let mut p = SecurityPolicy::default();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(p.allows_ip(ip("203.0.113.9")));
        p.ip_allowlist = vec!["192.0.2.0/24".parse().unwrap(), "2001:db8::/32".parse().unwrap()];
        assert!(p.allows_ip(ip("192.0.2.77")));
        assert!(p.allows_ip(ip("::ffff:192.0.2.77")));
        assert!(p.allows_ip(ip("2001:db8::1")));
        assert!(!p.allows_ip(ip("203.0.113.9")));
    }

    #[test]
    fn password_age_warns_then_expires() {
        let p = SecurityPolicy { password_max_age_days: 90, password_expiry_warning_days: 14, ..Default::default() };
        let t0 = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(p.password_age(t0, t0 + Duration::days(10)), PasswordAge::Fresh);
        assert_eq!(p.password_age(t0, t0 + Duration::days(80)), PasswordAge::ExpiresSoon { days_left: 10 });
        assert_eq!(p.password_age(t0, t0 + Duration::days(90)), PasswordAge::Expired);
        let never = SecurityPolicy::default();
        assert_eq!(never.password_age(t0, t0 + Duration::days(9999)), PasswordAge::Fresh);
    }
}

//! The operation history. Every event says who (user id and login ID, or the login ID that was
//! tried), when, from which IP and browser, what (action), on which object (target), with which
//! outcome and details. The store appends each event in the same transaction as the change it
//! records, and chains it to the previous event of the same tenant by SHA-256, so that a changed,
//! inserted or deleted row breaks the chain (ASVS 7.3.4: log integrity).

use std::fmt::Write as _;

use serde::Serialize;
use time::OffsetDateTime;

use crate::ids::{TenantId, UserId};

macro_rules! actions {
    ($($variant:ident => $s:literal,)*) => {
        /// What happened. The string form is stable: it is stored, searched and exported.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum AuditAction { $($variant,)* }
        impl AuditAction {
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant,)*];
            pub fn as_str(self) -> &'static str {
                match self { $(AuditAction::$variant => $s,)* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(AuditAction::$variant),)* _ => None }
            }
        }
    };
}

actions! {
    LoginSuccess => "login.success",
    LoginFailure => "login.failure",
    LoginLockout => "login.lockout",
    LoginThrottled => "login.throttled",
    Logout => "logout",
    SessionIdleTimeout => "session.idle_timeout",
    SessionAbsoluteTimeout => "session.absolute_timeout",
    SessionRevoked => "session.revoked",
    PasswordChange => "password.change",
    PasswordChangeFailure => "password.change_failure",
    PasswordReset => "password.reset",
    UserCreate => "user.create",
    UserUpdate => "user.update",
    UserDisable => "user.disable",
    UserEnable => "user.enable",
    UserDelete => "user.delete",
    UserUnlock => "user.unlock",
    LanguageChange => "account.language",
    PolicyChange => "policy.change",
    TenantCreate => "tenant.create",
    PermissionDenied => "permission.denied",
    AuditExport => "audit.export",
    JobRun => "system.job",
    TableCreate => "table.create",
    FieldCreate => "field.create",
    RecordCreate => "record.create",
    RecordUpdate => "record.update",
    RecordDelete => "record.delete",
    RecordExport => "record.export",
    RecordImport => "record.import",
    ImportStaged => "import.staged",
    GroupCreate => "group.create",
    GroupUpdate => "group.update",
    GroupDelete => "group.delete",
    GroupMembers => "group.members",
    GroupGrant => "group.grant",
    TokenCreate => "token.create",
    TokenRevoke => "token.revoke",
    TokenRefused => "token.refused",
    ViewCreate => "view.create",
    ViewDelete => "view.delete",
    TableUpdate => "table.update",
    TableDelete => "table.delete",
    TableRestore => "table.restore",
    TablePurge => "table.purge",
    FieldUpdate => "field.update",
    FieldReorder => "field.reorder",
    FieldDelete => "field.delete",
    FieldRestore => "field.restore",
    FieldPurge => "field.purge",
    FieldRetype => "field.retype",
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            "denied" => Some(Outcome::Denied),
            _ => None,
        }
    }
}

/// An event about to be recorded. `at` is filled from the injected clock by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    pub at: OffsetDateTime,
    pub tenant_id: Option<TenantId>,
    pub actor_id: Option<UserId>,
    /// The actor's login ID, or the login ID that was tried on a failed login.
    pub actor_login: String,
    pub ip: String,
    pub user_agent: String,
    pub action: AuditAction,
    pub target: String,
    pub outcome: Outcome,
    pub details: String,
}

impl NewAuditEvent {
    /// Caps the free-text fields so that a hostile client cannot bloat the log.
    pub fn bounded(mut self) -> Self {
        // Cut at `n` characters; a control character other than a line end or a tab (a NUL
        // in a refused sign-in's login ID, which PostgreSQL cannot store: the refusal would go
        // unrecorded and uncounted) becomes U+FFFD, so that every event can be written.
        fn cap(s: &mut String, n: usize) {
            let odd = crate::table::is_stray_control;
            let long = s.chars().count() > n;
            if long || s.chars().any(odd) {
                // (A text cut says so: its last character is "…".)
                let keep = if long { n - 1 } else { n };
                *s = s.chars().take(keep).map(|c| if odd(c) { '\u{FFFD}' } else { c }).collect();
                if long {
                    s.push('…');
                }
            }
        }
        cap(&mut self.actor_login, 128);
        cap(&mut self.user_agent, 256);
        cap(&mut self.target, 256);
        cap(&mut self.details, 2000);
        self
    }
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub tenant_id: Option<TenantId>,
    pub actor_id: Option<UserId>,
    pub actor_login: String,
    pub ip: String,
    pub user_agent: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash that starts every tenant's chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// SHA-256 over the previous hash and every field, each length-prefixed so that no two
/// different events serialise alike.
#[allow(clippy::too_many_arguments)]
pub fn chain_hash(
    prev_hash: &str,
    at_unix_ms: i64,
    tenant_id: Option<TenantId>,
    actor_id: Option<UserId>,
    actor_login: &str,
    ip: &str,
    user_agent: &str,
    action: &str,
    target: &str,
    outcome: &str,
    details: &str,
) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let tenant = tenant_id.map(|t| t.to_string()).unwrap_or_default();
    let actor = actor_id.map(|a| a.to_string()).unwrap_or_default();
    let at = at_unix_ms.to_string();
    for part in [prev_hash, &at, &tenant, &actor, actor_login, ip, user_agent, action, target, outcome, details] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    let digest = ctx.finish();
    let mut out = String::with_capacity(64);
    for b in digest.as_ref() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

impl AuditEvent {
    pub fn recompute_hash(&self) -> String {
        chain_hash(
            &self.prev_hash,
            unix_ms(self.at),
            self.tenant_id,
            self.actor_id,
            &self.actor_login,
            &self.ip,
            &self.user_agent,
            &self.action,
            &self.target,
            &self.outcome,
            &self.details,
        )
    }
}

pub fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The result of checking a chain from its start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub events_checked: u64,
    /// The sequence number of the first event whose hash or link does not match.
    pub first_broken_seq: Option<i64>,
}

impl ChainReport {
    pub fn intact(&self) -> bool {
        self.first_broken_seq.is_none()
    }
}

/// Verifies events given in chain order (ascending sequence).
pub struct ChainVerifier {
    prev: String,
    report: ChainReport,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self { prev: GENESIS_HASH.to_owned(), report: ChainReport { events_checked: 0, first_broken_seq: None } }
    }
}

impl ChainVerifier {
    pub fn feed(&mut self, e: &AuditEvent) {
        self.report.events_checked += 1;
        if self.report.first_broken_seq.is_none() && (e.prev_hash != self.prev || e.recompute_hash() != e.hash) {
            self.report.first_broken_seq = Some(e.seq);
        }
        self.prev = e.hash.clone();
    }
    pub fn finish(self) -> ChainReport {
        self.report
    }
}

/// Search criteria for the operation history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Matches the actor's login ID exactly (lower-cased).
    pub login: Option<String>,
    pub action: Option<AuditAction>,
    pub outcome: Option<Outcome>,
    pub ip: Option<String>,
    pub from: Option<OffsetDateTime>,
    /// Exclusive upper bound.
    pub until: Option<OffsetDateTime>,
    /// Keyset paging: only events with a smaller sequence number.
    pub before_seq: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_text_is_cut_and_says_so_and_stray_controls_are_replaced() {
        let e = NewAuditEvent {
            at: OffsetDateTime::UNIX_EPOCH,
            tenant_id: None,
            actor_id: None,
            actor_login: "a\u{0}b".into(),
            ip: String::new(),
            user_agent: String::new(),
            action: AuditAction::RecordDelete,
            target: String::new(),
            outcome: Outcome::Success,
            details: "あ".repeat(2500),
        }
        .bounded();
        assert_eq!(e.details.chars().count(), 2000);
        assert!(e.details.ends_with("あ…"));
        assert_eq!(e.actor_login, "a\u{FFFD}b", "not cut, so no mark");
    }

    fn event(seq: i64, prev: &str, action: &str) -> AuditEvent {
        let at = OffsetDateTime::UNIX_EPOCH;
        let hash = chain_hash(prev, 0, None, None, "alice", "127.0.0.1", "ua", action, "", "success", "");
        AuditEvent {
            seq,
            at,
            tenant_id: None,
            actor_id: None,
            actor_login: "alice".into(),
            ip: "127.0.0.1".into(),
            user_agent: "ua".into(),
            action: action.into(),
            target: String::new(),
            outcome: "success".into(),
            details: String::new(),
            prev_hash: prev.into(),
            hash,
        }
    }

    #[test]
    fn an_intact_chain_verifies_and_a_changed_field_breaks_it() {
        let a = event(1, GENESIS_HASH, "login.success");
        let b = event(2, &a.hash, "logout");
        let mut v = ChainVerifier::default();
        v.feed(&a);
        v.feed(&b);
        assert!(v.finish().intact());

        let mut tampered = a.clone();
        tampered.actor_login = "mallory".into();
        let mut v = ChainVerifier::default();
        v.feed(&tampered);
        v.feed(&b);
        assert_eq!(v.finish().first_broken_seq, Some(1));
    }

    #[test]
    fn a_deleted_event_breaks_the_link() {
        let a = event(1, GENESIS_HASH, "login.success");
        let b = event(2, &a.hash, "logout");
        let c = event(3, &b.hash, "login.success");
        let mut v = ChainVerifier::default();
        v.feed(&a);
        v.feed(&c);
        assert_eq!(v.finish().first_broken_seq, Some(3));
    }

    #[test]
    fn length_prefixing_keeps_field_boundaries_apart() {
        let h1 = chain_hash(GENESIS_HASH, 0, None, None, "ab", "c", "", "", "", "", "");
        let h2 = chain_hash(GENESIS_HASH, 0, None, None, "a", "bc", "", "", "", "", "");
        assert_ne!(h1, h2);
    }

    #[test]
    fn action_names_round_trip() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(*a));
        }
    }
}

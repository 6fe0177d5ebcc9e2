//! Passwords: argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1; OWASP Password Storage
//! Cheat Sheet, ASVS 2.4.1), a policy check (ASVS 2.1.1, 2.1.7 common passwords, 2.1.10 history),
//! and one-time passwords that an operator or admin hands over.

use std::collections::HashSet;
use std::sync::LazyLock;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use daicho_domain::{FieldErrors, LoginId, SecurityPolicy};

/// The upper bound on password length, so that hashing cost stays bounded (ASVS 2.1.2 allows 128+).
pub const MAX_PASSWORD_CHARS: usize = 256;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt").lines().map(str::trim).filter(|l| !l.is_empty()).collect()
});

/// How many entries the shipped common-password list holds.
pub fn common_password_count() -> usize {
    COMMON.len()
}

pub fn is_common_password(pw: &str) -> bool {
    COMMON.contains(pw.to_lowercase().as_str())
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError;

/// Hashes and verifies passwords. Cheap to clone.
#[derive(Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    /// A hash of a random password, verified against when the user does not exist so that an
    /// unknown login ID costs the same time as a wrong password (no user enumeration by timing).
    dummy: String,
    /// Verifications made (of a stored hash or the dummy), shared by the clones: each sign-in
    /// attempt makes exactly one, whatever its outcome, which tests count.
    verifications: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHasher(argon2id)")
    }
}

impl PasswordHasher {
    pub fn new() -> Result<Self, HashError> {
        let params = Params::new(19 * 1024, 2, 1, None).map_err(|_| HashError)?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut this = Self { argon, dummy: String::new(), verifications: Default::default() };
        this.dummy = this.hash(&crate::token::Token::generate().plain)?;
        Ok(this)
    }

    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        self.argon.hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|_| HashError)
    }

    /// True when `password` matches `hash`. A malformed stored hash never matches. A password
    /// longer than any that may be set never matches either, and costs the time of one
    /// verification all the same: answered at once, it would tell a known login ID (refused
    /// at once) from an unknown one (whose dummy verification takes its time).
    pub fn verify(&self, hash: &str, password: &str) -> bool {
        if password.chars().count() > MAX_PASSWORD_CHARS {
            return self.verify_dummy(password);
        }
        self.verifications.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.argon.verify_password(password.as_bytes(), hash).is_ok()
    }

    /// Spends the time of one verification and returns false.
    pub fn verify_dummy(&self, password: &str) -> bool {
        self.verifications.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = self.argon.verify_password(password.as_bytes(), self.dummy.as_str());
        false
    }

    /// How many verifications this hasher and its clones have made.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Checks a new password against the tenant's policy. `previous` yields the stored hashes of
/// the current and earlier passwords, newest first, as many as the policy's history asks for.
pub fn check_new_password(
    hasher: &PasswordHasher,
    policy: &SecurityPolicy,
    login_id: &LoginId,
    new_password: &str,
    previous: &[String],
) -> Result<(), FieldErrors> {
    let mut e = FieldErrors::new();
    let len = new_password.chars().count();
    if len < policy.password_min_length as usize {
        e.push("new_password", "password_too_short");
    } else if len > MAX_PASSWORD_CHARS {
        e.push("new_password", "password_too_long");
    } else if new_password.chars().any(char::is_control) {
        e.push("new_password", "control_chars");
    } else if login_id.as_str().len() >= 3 && new_password.to_lowercase().contains(login_id.as_str()) {
        e.push("new_password", "password_contains_login");
    } else if is_common_password(new_password) {
        e.push("new_password", "password_common");
    } else if previous.iter().any(|h| hasher.verify(h, new_password)) {
        e.push("new_password", "password_reused");
    }
    if e.is_empty() { Ok(()) } else { Err(e) }
}

/// A one-time password for a new account or a reset: 20 characters from an alphabet without
/// look-alikes (about 115 bits), to be changed at first login.
pub fn generate_one_time_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bytes = crate::token::random_bytes::<20>();
    bytes.iter().map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(s: &str) -> LoginId {
        LoginId::parse(s).unwrap()
    }

    #[test]
    fn the_common_list_has_at_least_ten_thousand_entries() {
        assert!(common_password_count() >= 10_000, "{}", common_password_count());
        assert!(is_common_password("Password"));
        assert!(is_common_password("dragon"));
        assert!(!is_common_password("correct horse battery staple 42"));
    }

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let h = PasswordHasher::new().unwrap();
        let hash = h.hash("a long enough passphrase").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(h.verify(&hash, "a long enough passphrase"));
        assert!(!h.verify(&hash, "a long enough passphrasE"));
        assert!(!h.verify("not a hash", "x"));
        assert!(!h.verify_dummy("anything"));
    }

    #[test]
    fn policy_refuses_short_common_login_containing_and_reused_passwords() {
        let h = PasswordHasher::new().unwrap();
        let p = SecurityPolicy::default();
        let alice = login("alice");
        let code = |pw: &str, prev: &[String]| {
            check_new_password(&h, &p, &alice, pw, prev).err().and_then(|e| e.code_for("new_password"))
        };
        assert_eq!(code("short", &[]), Some("password_too_short"));
        assert_eq!(code("my-ALICE-password-1", &[]), Some("password_contains_login"));
        assert_eq!(code("password1234", &[]), Some("password_common"));
        let old = h.hash("an old but long passphrase").unwrap();
        assert_eq!(code("an old but long passphrase", &[old]), Some("password_reused"));
        assert_eq!(code(&"x".repeat(300), &[]), Some("password_too_long"));
        assert_eq!(code("tabs\tare not allowed here", &[]), Some("control_chars"));
        assert_eq!(code("a fresh and long passphrase", &[]), None);
    }

    #[test]
    fn one_time_passwords_are_long_and_distinct() {
        let a = generate_one_time_password();
        let b = generate_one_time_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
    }
}

//! Random secrets (session tokens, CSRF tokens) and their storage form. A token's plain value
//! exists only in the client's cookie or form; the server stores its SHA-256, so a read of the
//! database does not yield usable sessions (ASVS 3.2.2, 3.2.3).

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // SystemRandom reads the OS generator; it fails only if the OS has none, in which case no
    // secret could be made at all. Fall back to aborting the request path instead of a weak value.
    if SystemRandom::new().fill(&mut buf).is_err() {
        std::process::abort();
    }
    buf
}

/// A fresh 256-bit token.
pub struct Token {
    pub plain: String,
    pub hash: String,
}

impl Token {
    pub fn generate() -> Self {
        let plain = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let hash = hash_token(&plain);
        Self { plain, hash }
    }
}

/// The stored form of a token: lower-case hex SHA-256.
pub fn hash_token(plain: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, plain.as_bytes());
    let mut s = String::with_capacity(64);
    for b in d.as_ref() {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Compares two secrets in time independent of where they differ (ASVS 3.5.x, CSRF tokens).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_only_as_hashes() {
        let a = Token::generate();
        let b = Token::generate();
        assert_ne!(a.plain, b.plain);
        assert_eq!(a.plain.len(), 43);
        assert_eq!(a.hash, hash_token(&a.plain));
        assert_eq!(a.hash.len(), 64);
        assert!(!a.hash.contains(&a.plain));
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
        assert!(!constant_time_eq("", "a"));
    }
}

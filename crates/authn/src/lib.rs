//! Authentication building blocks, free of HTTP and storage: password hashing and the password
//! policy, random tokens and their hashes, constant-time comparison, and client IP resolution
//! behind trusted proxies.

pub mod client_ip;
pub mod password;
pub mod token;

pub use client_ip::resolve_client_ip;
pub use password::{PasswordHasher, check_new_password, generate_one_time_password};
pub use token::{Token, constant_time_eq, hash_token};

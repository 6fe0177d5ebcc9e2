//! Integration tests: each starts the real server (HTTPS on a random loopback port) with its
//! own database and clock, and speaks HTTP to it. All in one binary to link once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod auth;
mod backup;
mod cli;
mod csrf;
mod design;
mod headers;
mod input;
mod jobs;
mod migrate;
mod network;
mod passwords;
mod permissions;
mod routes;
mod sessions;
mod tables;
mod tenancy;
mod tokens;
mod users;
mod views;

use daicho_testkit::reqwest::Response;

/// The Location header of a redirect.
pub fn location(r: &Response) -> String {
    r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

/// Every Set-Cookie value of a response.
pub fn set_cookies(r: &Response) -> Vec<String> {
    r.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
}

/// The session token in a response's Set-Cookie, if any.
pub fn session_token(r: &Response) -> Option<String> {
    set_cookies(r).iter().find_map(|c| {
        c.strip_prefix("__Host-daicho_session=")
            .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
            .filter(|v| !v.is_empty())
    })
}

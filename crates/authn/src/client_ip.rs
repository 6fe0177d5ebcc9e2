//! The client's IP address. X-Forwarded-For is believed only when the TCP peer is a configured
//! trusted proxy; then the list is walked from the right, past trusted proxies, and the first
//! untrusted address is the client. Anything else (a forged header from a direct client, garbage)
//! leaves the peer address in force (OWASP: header manipulation; ASVS 7.1.x accurate logging).

use std::net::IpAddr;

use ipnet::IpNet;

pub fn resolve_client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let peer = canonical(peer);
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else { return peer };
    let mut client = peer;
    for part in header.rsplit(',').take(32) {
        match part.trim().parse::<IpAddr>() {
            Ok(ip) => {
                let ip = canonical(ip);
                client = ip;
                if !is_trusted(&ip) {
                    return ip;
                }
            }
            Err(_) => return client,
        }
    }
    client
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_ignored_from_an_untrusted_peer() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(resolve_client_ip(ip("203.0.113.9"), Some("1.2.3.4"), &trusted), ip("203.0.113.9"));
        assert_eq!(resolve_client_ip(ip("127.0.0.1"), Some("1.2.3.4"), &[]), ip("127.0.0.1"));
    }

    #[test]
    fn forwarded_for_is_walked_from_the_right_past_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // The client can prepend anything; only the right-most untrusted entry counts.
        let xff = "6.6.6.6, 198.51.100.7, 10.0.0.2";
        assert_eq!(resolve_client_ip(ip("10.0.0.1"), Some(xff), &trusted), ip("198.51.100.7"));
        assert_eq!(resolve_client_ip(ip("10.0.0.1"), None, &trusted), ip("10.0.0.1"));
        assert_eq!(resolve_client_ip(ip("10.0.0.1"), Some("garbage"), &trusted), ip("10.0.0.1"));
        assert_eq!(resolve_client_ip(ip("::ffff:10.0.0.1"), Some("192.0.2.1"), &trusted), ip("192.0.2.1"));
    }
}

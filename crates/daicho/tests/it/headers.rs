//! Security headers on every kind of response, limits, Host and TLS.

use daicho_testkit::TestApp;
use daicho_testkit::reqwest::{Response, StatusCode};
use rustls_pki_types::pem::PemObject;

fn assert_security_headers(r: &Response, what: &str) {
    let h = r.headers();
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let csp = get("content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{what}: CSP {csp:?}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: CSP {csp:?}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{what}: CSP {csp:?}");
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("x-frame-options"), "DENY", "{what}");
    assert_eq!(get("referrer-policy"), "same-origin", "{what}");
    assert!(!get("x-request-id").is_empty(), "{what}");
    assert!(h.get("server").is_none(), "{what}: no Server header");
}

#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let anon = app.anonymous();
    let page = anon.get("/login").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_security_headers(&page, "page");
    assert_eq!(page.headers()["cache-control"], "no-store");

    let asset = anon.get("/assets/app.css").await;
    assert_eq!(asset.status(), StatusCode::OK);
    assert_security_headers(&asset, "asset");
    // The one script is first-party, served by the binary, allowed by the CSP's script-src
    // 'self', and linked from every page.
    let script = anon.get("/assets/app.js").await;
    assert_eq!(script.status(), StatusCode::OK);
    assert_security_headers(&script, "script");
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(script.text().await.unwrap().contains("data-select-all"));

    let redirect = anon.get("/admin/users").await;
    assert_eq!(redirect.status(), StatusCode::SEE_OTHER);
    assert_security_headers(&redirect, "redirect");

    let not_found = anon.get("/no/such/page").await;
    assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
    assert_security_headers(&not_found, "404");

    let api_err = anon.get("/api/v1/me").await;
    assert_eq!(api_err.status(), StatusCode::UNAUTHORIZED);
    assert_security_headers(&api_err, "api 401");

    let authed = cast.admin.get("/admin/users").await;
    assert_eq!(authed.status(), StatusCode::OK);
    assert_security_headers(&authed, "authenticated page");
    assert_eq!(authed.headers()["cache-control"], "no-store");

    let forbidden = cast.member.get("/admin/users").await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert_security_headers(&forbidden, "403");
}

#[tokio::test]
async fn hsts_is_sent_for_real_host_names_but_not_for_localhost_or_ip_literals() {
    let app = TestApp::start_with(|c| c.server.public_hosts.push("daicho.example.jp".into())).await;
    let named = app.client().get(app.url("/login")).header("host", "daicho.example.jp").send().await.unwrap();
    assert_eq!(named.headers()["strict-transport-security"], "max-age=63072000; includeSubDomains");
    let err = app.client().get(app.url("/nope")).header("host", "daicho.example.jp").send().await.unwrap();
    assert_eq!(err.status(), StatusCode::NOT_FOUND);
    assert!(err.headers().get("strict-transport-security").is_some(), "on errors too");
    for host in ["127.0.0.1", "localhost"] {
        let r = app.client().get(app.url("/login")).header("host", host).send().await.unwrap();
        assert!(r.headers().get("strict-transport-security").is_none(), "{host}");
    }
}

#[tokio::test]
async fn the_http_listener_only_redirects_to_https() {
    let app = TestApp::start().await;
    let c = daicho_testkit::reqwest::Client::builder()
        .redirect(daicho_testkit::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = c.get(format!("{}/account?x=1", app.http_base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    let port = app.running.https.addr.port();
    assert_eq!(crate::location(&r), format!("https://127.0.0.1:{port}/account?x=1"));
    assert!(r.headers().get("strict-transport-security").is_none(), "no HSTS over plain HTTP (RFC 6797)");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    // A forged Host is not reflected into the redirect.
    let r = c.get(format!("{}/", app.http_base)).header("host", "evil.example").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
}

#[tokio::test]
async fn an_unknown_host_header_is_refused_with_400() {
    let app = TestApp::start().await;
    let r = app.client().get(app.url("/login")).header("host", "evil.example").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_security_headers(&r, "bad host");
    let body = r.text().await.unwrap();
    assert!(body.contains("Unknown host"), "{body}");
    let ok = app.client().get(app.url("/login")).header("host", "LOCALHOST").send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let app = TestApp::start().await;
    let big = "x".repeat(2 * 1024 * 1024);
    let r = app
        .client()
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("tenant={big}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_security_headers(&r, "413");
    let r = app
        .client()
        .post(app.url("/api/v1/session"))
        .header("content-type", "application/json")
        .body(format!("{{\"tenant\":\"{big}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn oversized_headers_are_refused_with_431() {
    let app = TestApp::start().await;
    let r = app.client().get(app.url("/login")).header("x-filler", "a".repeat(20_000)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_security_headers(&r, "431");
}

#[tokio::test]
async fn error_pages_show_a_request_id_and_no_internals() {
    let app = TestApp::start().await;
    let r = app.anonymous().get("/admin/users/not-a-uuid/../../etc/passwd").await;
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = r.text().await.unwrap();
    assert!(body.contains(&id), "the page shows the request id");
    for leak in ["sqlx", "SQLITE", "panicked", "/work/", ".rs:", "axum", "hyper", "version"] {
        assert!(!body.contains(leak), "error page leaks {leak}");
    }
}

#[tokio::test]
async fn tls_1_2_and_1_3_are_accepted_and_plain_http_on_the_https_port_is_not() {
    let app = TestApp::start().await;
    for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12][..]] {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::CertificateDer::pem_slice_iter(&app.cert_pem) {
            roots.add(c.unwrap()).unwrap();
        }
        let cfg = rustls::ClientConfig::builder_with_protocol_versions(versions)
            .with_root_certificates(roots)
            .with_no_client_auth();
        let c = daicho_testkit::reqwest::Client::builder().tls_backend_preconfigured(cfg).build().unwrap();
        let r = c.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let plain = daicho_testkit::reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", app.running.https.addr.port()))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

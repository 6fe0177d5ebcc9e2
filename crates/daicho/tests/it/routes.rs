//! The route inventory: every route is public by declaration or refused to anonymous clients;
//! every API route is in the OpenAPI document.

use daicho_testkit::TestApp;
use daicho_testkit::reqwest::{Method, StatusCode};
use daicho_web::routes::{Access, inventory};

const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/assets/app.css"),
    ("GET", "/assets/icon.svg"),
    ("GET", "/favicon.ico"),
    ("GET", "/healthz"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/session"),
];

fn concrete(path: &str) -> String {
    path.replace("{id}", "0196a1b2-0000-7000-8000-000000000000")
        .replace("{tid}", "0196a1b2-0000-7000-8000-000000000001")
        .replace("{rid}", "1")
}

#[tokio::test]
async fn every_route_is_public_by_declaration_or_refused_to_anonymous_clients() {
    let app = TestApp::start().await;
    let routes = inventory();
    assert!(routes.len() >= 40, "{}", routes.len());
    for r in &routes {
        let listed = PUBLIC.contains(&(r.method, r.path));
        assert_eq!(listed, r.access == Access::Public, "{} {} declared {:?}", r.method, r.path, r.access);
        if r.access == Access::Public {
            continue;
        }
        let method = Method::from_bytes(r.method.as_bytes()).unwrap();
        let resp = app
            .client()
            .request(method, app.url(&concrete(r.path)))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let s = resp.status();
        if r.path.starts_with("/api/") {
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{} {}", r.method, r.path);
        } else if r.method == "GET" {
            assert_eq!(s, StatusCode::SEE_OTHER, "{} {}", r.method, r.path);
            assert!(crate::location(&resp).starts_with("/login"), "{} {}", r.method, r.path);
        } else {
            assert!(s == StatusCode::SEE_OTHER || s == StatusCode::UNAUTHORIZED, "{} {} -> {s}", r.method, r.path);
        }
    }
}

#[tokio::test]
async fn every_admin_route_is_refused_to_a_member() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    for r in inventory().iter().filter(|r| r.access == Access::Admin) {
        let method = Method::from_bytes(r.method.as_bytes()).unwrap();
        // A well-formed body of the route's kind, so that only the permission can refuse it.
        let (ct, body) = if r.path.starts_with("/api/") {
            (
                "application/json",
                "{\"login_id\":\"x\",\"display_name\":\"x\",\"email\":\"x@x.jp\",\"role\":\"member\"}".to_owned(),
            )
        } else {
            ("application/x-www-form-urlencoded", format!("csrf={}", cast.member.csrf))
        };
        let body = if r.method == "PATCH" { "{}".to_owned() } else { body };
        let resp = cast
            .member
            .client
            .request(method, app.url(&concrete(r.path)))
            .header("x-csrf-token", &cast.member.csrf)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "member {} {}", r.method, r.path);
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_api_route() {
    let app = TestApp::start().await;
    let (s, doc) = app.anonymous().get_json("/api/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for r in inventory().iter().filter(|r| r.path.starts_with("/api/")) {
        let op = &doc["paths"][r.path][r.method.to_ascii_lowercase()];
        assert!(op.is_object(), "{} {} missing from openapi.json", r.method, r.path);
    }
    let documented: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
    let api_routes = inventory().iter().filter(|r| r.path.starts_with("/api/")).count();
    assert_eq!(documented, api_routes, "no documented route is missing from the router");
}

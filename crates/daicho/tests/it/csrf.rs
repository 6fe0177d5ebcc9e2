//! CSRF: the per-session token and the Origin / Sec-Fetch-Site check.

use daicho_testkit::TestApp;
use daicho_testkit::reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_form_post_without_the_sessions_token_is_refused() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let r =
        cast.admin.client.post(cast.admin.url("/account/language")).form(&[("language", "ja")]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Form expired"));
    let r = cast
        .admin
        .client
        .post(cast.admin.url("/account/language"))
        .form(&[("language", "ja"), ("csrf", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=permission.denied").await;
    assert_eq!(v["events"].as_array().unwrap().len(), 2, "refusals are audited");
}

#[tokio::test]
async fn signing_out_through_the_api_needs_the_token() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let url = cast.admin.url("/api/v1/session");
    let r = cast.admin.client.delete(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "only signing in is exempt");
    let (s, _) = cast.admin.get_json("/api/v1/me").await;
    assert_eq!(s, StatusCode::OK, "the session stands");
    let r = cast.admin.client.delete(&url).header("x-csrf-token", &cast.admin.csrf).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (s, _) = cast.admin.get_json("/api/v1/me").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn another_sessions_token_is_refused() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let r = cast
        .member
        .client
        .post(cast.member.url("/account/language"))
        .form(&[("language", "ja"), ("csrf", cast.admin.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = cast
        .member
        .client
        .post(cast.member.url("/api/v1/me/password"))
        .header("x-csrf-token", &cast.admin.csrf)
        .json(&json!({"current_password": "a", "new_password": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // With its own token the same request passes the CSRF check.
    let r = cast.member.post_form("/account/language", &[("language", "ja")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn api_writes_need_the_token_in_a_header() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let r = cast
        .admin
        .client
        .post(cast.admin.url("/api/v1/users"))
        .json(&json!({"login_id": "x", "display_name": "x", "email": "x@x.jp", "role": "member"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "csrf");
}

#[tokio::test]
async fn cross_site_requests_are_refused_by_fetch_metadata_and_origin() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let post = |h: (&'static str, String)| {
        cast.admin
            .client
            .post(cast.admin.url("/account/language"))
            .header(h.0, h.1)
            .form(&[("language", "ja"), ("csrf", cast.admin.csrf.as_str())])
            .send()
    };
    assert_eq!(post(("sec-fetch-site", "cross-site".into())).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(post(("sec-fetch-site", "same-site".into())).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(post(("origin", "https://evil.example".into())).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(post(("origin", "null".into())).await.unwrap().status(), StatusCode::FORBIDDEN);
    let port = app.running.https.addr.port();
    assert_eq!(
        post(("origin", format!("https://127.0.0.1:{}", port + 1))).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(post(("origin", format!("https://127.0.0.1:{port}"))).await.unwrap().status(), StatusCode::SEE_OTHER);
    assert_eq!(post(("sec-fetch-site", "same-origin".into())).await.unwrap().status(), StatusCode::SEE_OTHER);
    // A cross-site login attempt (login CSRF) is refused before any password check.
    let r = app
        .client()
        .post(app.url("/login"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("tenant", "acme"), ("login_id", "admin"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

//! Bad input anywhere gets a clear 4xx, never a panic or a 500.

use daicho_testkit::TestApp;
use daicho_testkit::reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn malformed_json_is_a_400_that_says_what_is_wrong() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let cases: [(&str, &str); 6] = [
        ("{", "application/json"),
        ("[]", "application/json"),
        ("{\"login_id\": 5}", "application/json"),
        (
            "{\"login_id\":\"a\",\"display_name\":\"b\",\"email\":\"c@d.jp\",\"role\":\"member\",\"is_admin\":true}",
            "application/json",
        ),
        ("login_id=a", "application/x-www-form-urlencoded"),
        ("\u{0}\u{1}\u{2}", "application/json"),
    ];
    for (body, ct) in cases {
        let r = cast
            .admin
            .client
            .post(cast.admin.url("/api/v1/users"))
            .header("x-csrf-token", &cast.admin.csrf)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_json", "{body}");
        assert!(v["error"]["request_id"].is_string());
    }
    // Unknown fields are refused rather than ignored (hidden-field tampering).
    let r = cast
        .admin
        .client
        .post(cast.admin.url("/api/v1/users"))
        .header("x-csrf-token", &cast.admin.csrf)
        .header("content-type", "application/json")
        .body(cases[3].0)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["detail"].as_str().unwrap().contains("is_admin"));
}

#[tokio::test]
async fn bad_paths_queries_and_forms_never_cause_a_server_error() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let long = "a".repeat(5000);
    let gets = [
        "/admin/users/not-a-uuid".to_owned(),
        "/admin/users/00000000-0000-0000-0000-000000000000".to_owned(),
        "/api/v1/users/%00".to_owned(),
        "/api/v1/users/..%2F..%2Fetc".to_owned(),
        format!("/admin/audit?login={long}"),
        "/admin/audit?before=-1&from=2026-13-45".to_owned(),
        "/api/v1/audit?before=abc".to_owned(),
        "/login?next=%00%0d%0aSet-Cookie:x=y".to_owned(),
        "/account?done=%3Cscript%3E".to_owned(),
        "/admin/users?x[]=1&x[]=2".to_owned(),
    ];
    for p in &gets {
        let r = a.get(p).await;
        let s = r.status();
        assert!(s.is_client_error() || s.is_success() || s.is_redirection(), "GET {p} -> {s}");
        let body = r.text().await.unwrap();
        assert!(!body.contains("<script>"), "GET {p} reflects markup");
    }
    let forms: [(&str, Vec<(&str, &str)>); 5] = [
        ("/admin/policy", vec![("password_min_length", "99999999999999999999")]),
        ("/admin/users", vec![("login_id", "\u{202e}evil"), ("display_name", "x\u{0}y")]),
        ("/account/language", vec![("language", "klingon")]),
        ("/account/password", vec![("current_password", long.as_str())]),
        ("/login", vec![("tenant", long.as_str()), ("login_id", long.as_str()), ("password", long.as_str())]),
    ];
    for (p, f) in forms {
        let r = a.post_form(p, &f).await;
        assert!(r.status().is_client_error() || r.status().is_redirection(), "POST {p} -> {}", r.status());
    }
    for m in [Method::PUT, Method::DELETE, Method::PATCH] {
        let r =
            a.client.request(m.clone(), a.url("/admin/users")).header("x-csrf-token", &a.csrf).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{m}");
    }
    let r = a
        .client
        .post(a.url("/admin/users"))
        .header("x-csrf-token", &a.csrf)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Non-UTF-8 and odd headers.
    let r = a.client.get(a.url("/")).header("accept-language", "\u{00ff}\u{00fe};q=abc,,,").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r =
        app.client().get(app.url("/login")).header("cookie", "a=b; ;;; =; __Host-daicho_session").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Percent-escapes that do not decode to UTF-8 are refused (400 `bad_encoding`) in a form body
/// and in a query string, instead of being saved as U+FFFD.
#[tokio::test]
async fn a_form_or_query_that_is_not_utf8_is_refused_and_nothing_is_saved() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let users = app.raw_i64("SELECT COUNT(*) FROM users").await;
    for bad in ["display_name=%FF%FE", "display_name=%E6%9D", "display_name=x&%C3=x", "display_name=%E5%B1%B1%E7%94%B0"]
    {
        let body = format!("login_id=latin1&{bad}&email=l%40example.jp&role=member&language=ja&csrf={}", a.csrf);
        let r = a
            .client
            .post(a.url("/admin/users"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        if bad.ends_with("%B0") {
            // the same form in UTF-8 makes the user
            assert_eq!(r.status(), StatusCode::OK);
            break;
        }
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.text().await.unwrap().contains("not UTF-8. Nothing was saved."), "{bad}");
        assert_eq!(app.raw_i64("SELECT COUNT(*) FROM users").await, users);
    }
    assert_eq!(app.raw_i64("SELECT COUNT(*) FROM users").await, users + 1);
    for p in ["/admin/audit?login=%FF", "/admin/users?%FF=1"] {
        assert_eq!(a.get(p).await.status(), StatusCode::BAD_REQUEST, "{p}");
    }
    let (s, v) = a.get_json("/api/v1/audit?login=%C3%28").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "bad_encoding");
    // What a browser sends (UTF-8, escaped or not, "+" for a space) passes.
    assert_eq!(a.get("/admin/audit?login=%E5%B1%B1%E7%94%B0+x").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_language_follows_the_browser_and_then_the_users_choice() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let r = app.client().get(app.url("/login")).header("accept-language", "ja,en;q=0.8").send().await.unwrap();
    let page = r.text().await.unwrap();
    assert!(page.contains("Daicho にログイン"));
    assert!(page.contains("lang=\"ja\""));
    let page = cast.member.get("/account").await.text().await.unwrap();
    assert!(page.contains("Your account"));
    let r = cast.member.post_form("/account/language", &[("language", "ja")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = cast.member.get(&crate::location(&r)).await.text().await.unwrap();
    assert!(page.contains("アカウント"));
    assert!(page.contains("表示言語を保存しました"));
}

#[tokio::test]
async fn malformed_and_foreign_ids_in_paths_are_404_and_recorded_as_refusals() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (s, v) = a.post_json("/api/v1/tables", json!({"name": "台帳"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let t = v["table"]["id"].as_str().unwrap().to_owned();
    let huge = "99999999999999999999";
    for p in [
        format!("/api/v1/tables/{t}/records/abc"),
        format!("/api/v1/tables/{t}/records/-1"),
        format!("/api/v1/tables/{t}/records/{huge}"),
        format!("/tables/{t}/records/0"),
        "/api/v1/tables/not-a-table/records".to_owned(),
    ] {
        assert_eq!(a.get(&p).await.status(), StatusCode::NOT_FOUND, "{p}");
    }
    let r = a.client.delete(a.url("/api/v1/me/tokens/nope")).header("x-csrf-token", &a.csrf).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Another user's session: the same 404 as none at all.
    let (_, v) = cast.member.get_json("/api/v1/me").await;
    let theirs = v["session"]["id"].as_str().unwrap().to_owned();
    for id in ["nope".to_owned(), theirs] {
        let r = a.post_form(&format!("/account/sessions/{id}/revoke"), &[]).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{id}");
    }
    let (_, v) = a.get_json("/api/v1/audit?action=permission.denied&limit=50").await;
    let details: Vec<&str> = v["events"].as_array().unwrap().iter().filter_map(|e| e["details"].as_str()).collect();
    let count = |needle: &str| details.iter().filter(|d| d.contains(needle)).count();
    assert_eq!(count("not a record number"), 4, "{details:?}");
    assert_eq!(count("table:not-a-table: not a table id"), 1, "{details:?}");
    assert_eq!(count("revoke of token:nope"), 1, "{details:?}");
    assert_eq!(count("not one of the user's sessions"), 2, "{details:?}");
}

#[tokio::test]
async fn a_value_given_twice_in_one_body_is_refused_not_read_as_the_last() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "二重"})).await;
    let t = v["table"]["id"].as_str().unwrap().to_owned();
    let (s, v) =
        a.post_json(&format!("/api/v1/tables/{t}/fields"), json!({"name": "金額", "kind": {"type": "integer"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let send = |path: String, body: &'static str| {
        a.client
            .post(a.url(&path))
            .header("x-csrf-token", &a.csrf)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = send(format!("/api/v1/tables/{t}/records"), r#"{"values": {"金額": 1, "金額": 900}}"#).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["detail"].as_str().unwrap().contains("\"金額\" is given twice"), "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records")).await;
    assert_eq!(v["records"], json!([]), "nothing written");
    let r =
        send(format!("/api/v1/tables/{t}/records/bulk-update"), r#"{"all": true, "values": {"金額": 1, "金額": 2}}"#)
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

//! The tenant's IP allowlist, at sign-in and on every request. The test server trusts
//! X-Forwarded-For from loopback so that requests can come "from" other networks.

use daicho_testkit::TestApp;
use daicho_testkit::reqwest::StatusCode;
use serde_json::json;

/// The default policy as the policy page's form, with an allowlist.
pub(crate) fn policy(allowlist: &str) -> Vec<(&'static str, String)> {
    vec![
        ("password_min_length", "12".into()),
        ("password_history", "5".into()),
        ("password_max_age_days", "0".into()),
        ("password_expiry_warning_days", "14".into()),
        ("lockout_threshold", "5".into()),
        ("lockout_minutes", "15".into()),
        ("idle_timeout_minutes", "30".into()),
        ("absolute_timeout_hours", "12".into()),
        ("ip_allowlist", allowlist.into()),
    ]
}

#[tokio::test]
async fn an_allowlist_refuses_sign_ins_and_requests_from_other_networks_and_cannot_lock_its_admin_out() {
    let app = TestApp::start_with(|c| c.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    let cast = app.cast().await;
    let post = |allow: &'static str| {
        let f = policy(allow);
        let admin = &cast.admin;
        async move {
            let fields: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            admin.post_form("/admin/policy", &fields).await
        }
    };
    // The admin works from 127.0.0.1: a list without it is refused with an explanation.
    let r = post("10.0.0.0/8").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("would lock you out"));
    let r = post("not-a-network").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("192.0.2.0/24"));
    assert_eq!(post("127.0.0.0/8\n192.0.2.7").await.status(), StatusCode::SEE_OTHER);
    let page = cast.admin.get("/admin/policy").await.text().await.unwrap();
    assert!(page.contains("127.0.0.0/8\n192.0.2.7/32"), "saved and shown");

    let login_from = |ip: &'static str, tenant: &'static str, pw: String| {
        let c = app.client();
        let url = app.url("/api/v1/session");
        // Typed with capitals: recorded as the login ID it is.
        async move {
            c.post(url)
                .header("x-forwarded-for", ip)
                .json(&json!({"tenant": tenant, "login_id": " Member1", "password": pw}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let pw = cast.member.password.clone();
    assert_eq!(login_from("203.0.113.5", "acme", pw.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(login_from("192.0.2.7", "acme", pw.clone()).await, StatusCode::CREATED);
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=login.failure").await;
    assert_eq!(v["events"][0]["details"], "client IP not on the tenant's allowlist");
    assert_eq!(v["events"][0]["ip"], "203.0.113.5");
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=login.failure&login=member1").await;
    assert_eq!(v["events"][0]["details"], "client IP not on the tenant's allowlist", "found under member1: {v}");

    // An open session used from another network is refused there, and recorded.
    let r = cast
        .member
        .client
        .get(cast.member.url("/api/v1/me"))
        .header("x-forwarded-for", "203.0.113.5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "ip_not_allowed");
    let r = cast.member.client.get(cast.member.url("/")).header("x-forwarded-for", "203.0.113.5").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Network not allowed"));
    assert_eq!(cast.member.get("/api/v1/me").await.status(), StatusCode::OK, "back on an allowed network");
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=permission.denied").await;
    assert!(v["events"].as_array().unwrap().iter().any(|e| e["ip"] == "203.0.113.5"));

    // Another tenant's policy is its own.
    let c = app.client();
    let r = c
        .post(app.url("/api/v1/session"))
        .header("x-forwarded-for", "203.0.113.5")
        .json(&json!({"tenant": "other", "login_id": "admin", "password": cast.other_admin.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

//! Sign-in: one generic answer, no enumeration, lockout and unlock, throttling, audit.

use daicho_testkit::reqwest::StatusCode;
use daicho_testkit::{Persona, TestApp};
use serde_json::{Value, json};
use time::Duration;

async fn form_login(app: &TestApp, tenant: &str, login: &str, password: &str) -> (StatusCode, String) {
    let r = app
        .client()
        .post(app.url("/login"))
        .form(&[("tenant", tenant), ("login_id", login), ("password", password)])
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.text().await.unwrap())
}

async fn audit(admin: &Persona, query: &str) -> Vec<Value> {
    let (s, v) = admin.get_json(&format!("/api/v1/audit?{query}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn signing_in_with_the_form_sets_a_host_prefixed_http_only_cookie_and_redirects() {
    let app = TestApp::start().await;
    let (_, pw) = app.tenant("acme").await;
    let r = app
        .client()
        .post(app.url("/login"))
        .form(&[("tenant", "ACME"), ("login_id", "Admin"), ("password", pw.as_str()), ("next", "/account")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(crate::location(&r), "/account");
    let cookie = crate::set_cookies(&r).into_iter().find(|c| c.starts_with("__Host-daicho_session=")).unwrap();
    for attr in ["HttpOnly", "Secure", "Path=/", "SameSite=Lax"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
}

#[tokio::test]
async fn a_next_parameter_cannot_redirect_off_site() {
    let app = TestApp::start().await;
    let (_, pw) = app.tenant("acme").await;
    for next in ["//evil.example/", "https://evil.example/", "/\\evil.example"] {
        let r = app
            .client()
            .post(app.url("/login"))
            .form(&[("tenant", "acme"), ("login_id", "admin"), ("password", pw.as_str()), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(crate::location(&r), "/", "next={next}");
    }
}

#[tokio::test]
async fn every_login_failure_gets_the_same_answer_so_users_cannot_be_enumerated() {
    let app = TestApp::start().await;
    let (_, pw) = app.tenant("acme").await;
    let admin = app.login("acme", "admin", &pw).await;
    let member_pw = app.user("acme", "gone", "member").await;
    let disabled_id = admin.get_json("/api/v1/users").await.1["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login_id"] == "gone")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = admin.post_json(&format!("/api/v1/users/{disabled_id}/disable"), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    let cases = [
        ("nosuchtenant", "admin", pw.as_str()),
        ("acme", "nosuchuser", "whatever-password"),
        ("acme", "admin", "wrong-password-123"),
        ("acme", "gone", member_pw.as_str()),
        ("acme", "bad login id!", "x"),
    ];
    let mut bodies = Vec::new();
    for (t, l, p) in cases {
        let (s, body) = form_login(&app, t, l, p).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{t}/{l}");
        assert!(body.contains("The tenant code, login ID or password is not correct"), "{t}/{l}");
        // Strip the per-request id and echoed input before comparing.
        let msg = body.split("role=\"alert\"").nth(1).unwrap().split("</p>").next().unwrap().to_owned();
        bodies.push(msg);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "identical messages: {bodies:?}");
    let (s, v) = app
        .anonymous()
        .post_json("/api/v1/session", json!({"tenant": "acme", "login_id": "nosuchuser", "password": "x"}))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["code"], "unauthenticated");
}

/// Every refused sign-in costs one argon2 verification, whatever was wrong: an unknown tenant
/// or user, a malformed login ID, a wrong password, or a password longer than any that may be
/// set (it was refused at once for a known user, while an unknown one took a verification's
/// time: a way to tell known login IDs apart). Counted, not timed: a verification is the whole
/// of an attempt's cost that depends on the account (about 25 ms against 4 ms without one),
/// and a count does not move with the machine's load as wall-clock medians did.
#[tokio::test]
async fn an_unknown_user_costs_the_same_time_as_a_wrong_password() {
    let app = TestApp::start().await;
    let (_, pw) = app.tenant("acme").await;
    let long = "x".repeat(300);
    let cases = [
        ("acme", "nobody", "wrong-password"),
        ("acme", "admin", "wrong-password"),
        ("acme", "admin", long.as_str()),
        ("acme", "nobody", long.as_str()),
        ("nosuchtenant", "admin", "wrong-password"),
        ("acme", "not a login id!", "wrong-password"),
        ("acme", "admin", pw.as_str()),
    ];
    for (tenant, login, password) in cases {
        let before = app.hasher.verifications();
        let (s, _) = form_login(&app, tenant, login, password).await;
        let spent = app.hasher.verifications() - before;
        assert_eq!(spent, 1, "{tenant} / {login} / {} characters: {s}", password.len());
    }
}

#[tokio::test]
async fn five_failures_lock_the_account_until_the_lock_expires_or_an_admin_unlocks_it() {
    let app = TestApp::start().await;
    let (_, admin_pw) = app.tenant("acme").await;
    let pw = app.user("acme", "bob", "member").await;
    for i in 0..5 {
        let (s, _) = form_login(&app, "acme", "bob", &format!("wrong-{i}")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // Locked: even the right password fails, with the same generic answer.
    let (s, body) = form_login(&app, "acme", "bob", &pw).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(body.contains("not correct"));

    let admin = app.login("acme", "admin", &admin_pw).await;
    let lockouts = audit(&admin, "action=login.lockout").await;
    assert_eq!(lockouts.len(), 1, "one lockout event");
    assert_eq!(lockouts[0]["actor_login"], "bob");
    let users = admin.get_json("/api/v1/users").await.1;
    let bob = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "bob").unwrap().clone();
    assert!(bob["locked_until"].is_string());

    // The admin unlocks; the right password works again.
    let r = admin.post_form(&format!("/admin/users/{}/unlock", bob["id"].as_str().unwrap()), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (s, _) = form_login(&app, "acme", "bob", &pw).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(audit(&admin, "action=user.unlock").await.len(), 1);

    // Locked again, then the lock runs out after 15 minutes of (moved) time.
    for i in 0..5 {
        form_login(&app, "acme", "bob", &format!("wrong-again-{i}")).await;
    }
    assert_eq!(form_login(&app, "acme", "bob", &pw).await.0, StatusCode::UNAUTHORIZED);
    app.clock.advance(Duration::minutes(16));
    assert_eq!(form_login(&app, "acme", "bob", &pw).await.0, StatusCode::SEE_OTHER);
    assert_eq!(audit(&admin, "action=login.lockout").await.len(), 2);
}

#[tokio::test]
async fn the_lockout_threshold_follows_the_tenant_policy() {
    let app = TestApp::start().await;
    let (_, admin_pw) = app.tenant("acme").await;
    let pw = app.user("acme", "bob", "member").await;
    let admin = app.login("acme", "admin", &admin_pw).await;
    let mut fields: Vec<(&str, String)> = vec![
        ("password_min_length", "12".into()),
        ("password_history", "5".into()),
        ("password_max_age_days", "0".into()),
        ("password_expiry_warning_days", "14".into()),
        ("lockout_threshold", "2".into()),
        ("lockout_minutes", "60".into()),
        ("idle_timeout_minutes", "30".into()),
        ("absolute_timeout_hours", "12".into()),
    ];
    let f: Vec<(&str, &str)> = fields.iter_mut().map(|(k, v)| (*k, v.as_str())).collect();
    let r = admin.post_form("/admin/policy", &f).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    form_login(&app, "acme", "bob", "wrong-1").await;
    form_login(&app, "acme", "bob", "wrong-2").await;
    assert_eq!(form_login(&app, "acme", "bob", &pw).await.0, StatusCode::UNAUTHORIZED);
    app.clock.advance(Duration::minutes(59));
    assert_eq!(form_login(&app, "acme", "bob", &pw).await.0, StatusCode::UNAUTHORIZED);
    app.clock.advance(Duration::minutes(2));
    assert_eq!(form_login(&app, "acme", "bob", &pw).await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn many_failures_from_one_ip_are_throttled_across_accounts() {
    let app = TestApp::start_with(|c| c.security.login_ip_max_failures = 6).await;
    let (_, pw) = app.tenant("acme").await;
    for i in 0..6 {
        let (s, _) = form_login(&app, "acme", &format!("user{i}"), "x").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, body) = form_login(&app, "acme", "admin", &pw).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(body.contains("Too many failed sign-ins"));
    app.clock.advance(Duration::minutes(16));
    assert_eq!(form_login(&app, "acme", "admin", &pw).await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn every_sign_in_attempt_is_audited_with_ip_and_the_login_tried() {
    let app = TestApp::start().await;
    let (_, pw) = app.tenant("acme").await;
    form_login(&app, "acme", "mallory", "guess").await;
    let admin = app.login("acme", "admin", &pw).await;
    let fails = audit(&admin, "action=login.failure").await;
    assert_eq!(fails.len(), 1);
    assert_eq!(fails[0]["actor_login"], "mallory");
    assert_eq!(fails[0]["ip"], "127.0.0.1");
    assert_eq!(fails[0]["outcome"], "failure");
    let ok = audit(&admin, "action=login.success").await;
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0]["actor_login"], "admin");
}

#[tokio::test]
async fn x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
    let app = TestApp::start().await;
    let (_, pw) = app.tenant("acme").await;
    app.client()
        .post(app.url("/login"))
        .header("x-forwarded-for", "203.0.113.66")
        .form(&[("tenant", "acme"), ("login_id", "x"), ("password", "y")])
        .send()
        .await
        .unwrap();
    let admin = app.login("acme", "admin", &pw).await;
    assert_eq!(audit(&admin, "action=login.failure").await[0]["ip"], "127.0.0.1");

    let app = TestApp::start_with(|c| c.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    let (_, pw) = app.tenant("acme").await;
    app.client()
        .post(app.url("/login"))
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.66")
        .form(&[("tenant", "acme"), ("login_id", "x"), ("password", "y")])
        .send()
        .await
        .unwrap();
    let admin = app.login("acme", "admin", &pw).await;
    assert_eq!(audit(&admin, "action=login.failure").await[0]["ip"], "203.0.113.66");
}

//! Sessions: fixation, idle and absolute timeouts on the moved clock, logout, revocation.

use daicho_testkit::reqwest::StatusCode;
use daicho_testkit::{TestApp, reqwest};
use serde_json::json;
use time::Duration;

#[tokio::test]
async fn the_session_token_changes_at_login_so_a_planted_cookie_is_useless() {
    let app = TestApp::start().await;
    let (_, pw) = app.tenant("acme").await;
    // An attacker plants a well-formed token in the victim's browser before sign-in.
    let planted = "A".repeat(43);
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(&format!("__Host-daicho_session={planted}; Path=/; Secure"), &app.url("/").parse().unwrap());
    let victim = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&app.cert_pem).unwrap()])
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = victim
        .post(app.url("/login"))
        .form(&[("tenant", "acme"), ("login_id", "admin"), ("password", pw.as_str())])
        .send()
        .await
        .unwrap();
    let issued = crate::session_token(&r).unwrap();
    assert_ne!(issued, planted);
    // The planted value does not authenticate.
    let attacker = app.client();
    let r = attacker
        .get(app.url("/api/v1/me"))
        .header("cookie", format!("__Host-daicho_session={planted}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Two sign-ins of the same user get different tokens.
    let r2 = app
        .client()
        .post(app.url("/login"))
        .form(&[("tenant", "acme"), ("login_id", "admin"), ("password", pw.as_str())])
        .send()
        .await
        .unwrap();
    assert_ne!(crate::session_token(&r2).unwrap(), issued);
}

#[tokio::test]
async fn an_idle_session_ends_after_the_policy_timeout_and_use_keeps_it_alive() {
    let app = TestApp::start().await;
    let (_, pw) = app.tenant("acme").await;
    let admin = app.login("acme", "admin", &pw).await;
    // Used every 29 minutes, it stays alive well past 30 minutes.
    for _ in 0..3 {
        app.clock.advance(Duration::minutes(29));
        assert_eq!(admin.get("/api/v1/me").await.status(), StatusCode::OK);
    }
    app.clock.advance(Duration::minutes(30));
    let r = admin.get("/account").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(crate::location(&r), "/login?reason=idle&next=%2Faccount");
    // Ended on the server: going back in time does not revive it.
    app.clock.advance(Duration::minutes(-30));
    assert_eq!(admin.get("/api/v1/me").await.status(), StatusCode::UNAUTHORIZED);
    let login_page = app.anonymous().get("/login?reason=idle").await.text().await.unwrap();
    assert!(login_page.contains("idle for too long"));
    let other = app.login("acme", "admin", &pw).await;
    let (_, v) = other.get_json("/api/v1/audit?action=session.idle_timeout").await;
    assert_eq!(v["events"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_however_active() {
    let app = TestApp::start().await;
    let (_, pw) = app.tenant("acme").await;
    let admin = app.login("acme", "admin", &pw).await;
    for _ in 0..24 {
        app.clock.advance(Duration::minutes(29));
        if admin.get("/api/v1/me").await.status() != StatusCode::OK {
            break;
        }
    }
    // 24 × 29 min = 11 h 36 min: still alive; the next step crosses 12 hours.
    assert_eq!(admin.get("/api/v1/me").await.status(), StatusCode::OK);
    app.clock.advance(Duration::minutes(29));
    let r = admin.get("/").await;
    assert_eq!(crate::location(&r), "/login?reason=absolute");
}

#[tokio::test]
async fn logout_destroys_the_session_on_the_server() {
    let app = TestApp::start().await;
    let (_, pw) = app.tenant("acme").await;
    let r = app
        .client()
        .post(app.url("/login"))
        .form(&[("tenant", "acme"), ("login_id", "admin"), ("password", pw.as_str())])
        .send()
        .await
        .unwrap();
    let token = crate::session_token(&r).unwrap();
    let cookie = format!("__Host-daicho_session={token}");
    let c = app.client();
    let me: serde_json::Value =
        c.get(app.url("/api/v1/me")).header("cookie", &cookie).send().await.unwrap().json().await.unwrap();
    let csrf = me["csrf_token"].as_str().unwrap().to_owned();
    let r = c.post(app.url("/logout")).header("cookie", &cookie).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(crate::location(&r), "/login?reason=logged_out");
    assert!(crate::set_cookies(&r).iter().any(|c| c.contains("Max-Age=0")));
    // The old cookie, replayed, no longer works.
    let r = c.get(app.url("/api/v1/me")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_user_sees_their_sessions_and_can_end_another_one() {
    let app = TestApp::start().await;
    let (_, pw) = app.tenant("acme").await;
    let laptop = app.login("acme", "admin", &pw).await;
    let phone = app.login("acme", "admin", &pw).await;
    let page = laptop.get("/account").await.text().await.unwrap();
    assert_eq!(page.matches("/revoke\"").count(), 1, "one other session can be ended");
    assert!(page.contains("This browser"));
    let id = page.split("/account/sessions/").nth(1).unwrap().split('/').next().unwrap().to_owned();
    let r = laptop.post_form(&format!("/account/sessions/{id}/revoke"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(phone.get("/api/v1/me").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(laptop.get("/api/v1/me").await.status(), StatusCode::OK);
    // Another user's session id is not found.
    let r = laptop.post_form(&format!("/account/sessions/{id}/revoke"), &[]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_disabled_users_open_session_stops_working_at_once() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    assert_eq!(cast.member.get("/api/v1/me").await.status(), StatusCode::OK);
    let users = cast.admin.get_json("/api/v1/users").await.1;
    let id = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "member1").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = cast.admin.post_json(&format!("/api/v1/users/{id}/disable"), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(cast.member.get("/api/v1/me").await.status(), StatusCode::UNAUTHORIZED);
    let r = cast.member.get("/").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // And they cannot sign in again until re-enabled.
    let again = app
        .client()
        .post(app.url("/api/v1/session"))
        .json(&json!({"tenant": "acme", "login_id": "member1", "password": cast.member.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    let (s, _) = cast.admin.post_json(&format!("/api/v1/users/{id}/enable"), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    app.login("acme", "member1", &cast.member.password).await;
}

#[tokio::test]
async fn malformed_or_unknown_session_cookies_are_treated_as_signed_out() {
    let app = TestApp::start().await;
    for cookie in [
        "__Host-daicho_session=",
        "__Host-daicho_session=' OR '1'='1",
        "__Host-daicho_session=%00%ff",
        &format!("__Host-daicho_session={}", "Z".repeat(43)),
        "garbage",
    ] {
        let r = app.client().get(app.url("/api/v1/me")).header("cookie", cookie).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{cookie}");
        let r = app.client().get(app.url("/")).header("cookie", cookie).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{cookie}");
    }
}

#[tokio::test]
async fn signing_in_again_through_the_api_ends_the_browsers_previous_session() {
    let app = TestApp::start().await;
    let (_, pw) = app.tenant("acme").await;
    let c = app.client();
    let body = json!({"tenant": "acme", "login_id": "admin", "password": pw});
    let first = c.post(app.url("/api/v1/session")).json(&body).send().await.unwrap();
    let old = crate::session_token(&first).unwrap();
    let second = c.post(app.url("/api/v1/session")).json(&body).send().await.unwrap();
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_ne!(crate::session_token(&second).unwrap(), old);
    let replaced = app.raw_i64("SELECT COUNT(*) FROM audit_events WHERE details = 'replaced by a new sign-in'").await;
    assert_eq!(replaced, 1, "the replacement is recorded");
    let replay = app
        .client()
        .get(app.url("/api/v1/me"))
        .header("cookie", format!("__Host-daicho_session={old}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_flood_of_sign_ins_queues_for_password_hashing_without_starving_other_requests() {
    let app = TestApp::start_with(|c| c.security.login_ip_max_failures = 1000).await;
    app.tenant("acme").await;
    let mut flood = Vec::new();
    for i in 0..32 {
        let (c, url) = (app.client(), app.url("/api/v1/session"));
        flood.push(tokio::spawn(async move {
            c.post(url)
                .json(&json!({"tenant": "acme", "login_id": format!("nobody{i}"), "password": "x"}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    // While the flood hashes, other requests are still answered promptly.
    let mut worst = std::time::Duration::ZERO;
    for _ in 0..5 {
        let t = std::time::Instant::now();
        assert_eq!(app.anonymous().get("/healthz").await.status(), StatusCode::OK);
        worst = worst.max(t.elapsed());
    }
    for f in flood {
        assert_eq!(f.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    assert!(worst < std::time::Duration::from_millis(1500), "health check took {worst:?} during the flood");
}

/// A sign-in verifies the password against the hash it read, then starts the session: a
/// password changed (or the user disabled) between the two must not let the old password in.
/// Driven step by step on the store, as no route can hold a sign-in between its two steps.
#[tokio::test]
async fn a_session_is_not_started_for_a_password_changed_while_it_was_being_verified() {
    use daicho_domain::{Clock, LoginFlow, LoginId, SessionId, TenantCode};
    let app = TestApp::start().await;
    let (_, pw) = app.tenant("acme").await;
    let flow = LoginFlow::new();
    let store = app.store();
    let tenant = store.tenant_by_code(&flow, &TenantCode::parse("acme").unwrap()).await.unwrap().unwrap();
    let login = LoginId::parse("admin").unwrap();
    let read = store.credential(&flow, tenant.id, &login).await.unwrap().unwrap();
    // Meanwhile the password is reset (the operator, or an administrator).
    let _ =
        daicho::operator::reset_password(store, &app.hasher, app.clock.now(), "acme", "admin", false).await.unwrap();
    let session = |hash: String| daicho_store::NewSession {
        id: SessionId::new_random(),
        token_hash: format!("{:0>64}", SessionId::new_random().to_string().replace('-', "")),
        tenant_id: tenant.id,
        user_id: read.user.id,
        at: app.clock.now(),
        csrf_token: "x".repeat(43),
        ip: "127.0.0.1".into(),
        user_agent: "test".into(),
        verified_hash: hash,
    };
    let event = || daicho_domain::NewAuditEvent {
        at: app.clock.now(),
        tenant_id: Some(tenant.id),
        actor_id: Some(read.user.id),
        actor_login: "admin".into(),
        ip: "127.0.0.1".into(),
        user_agent: "test".into(),
        action: daicho_domain::AuditAction::LoginSuccess,
        target: String::new(),
        outcome: daicho_domain::Outcome::Success,
        details: String::new(),
    };
    let started = store.start_session(&flow, session(read.password_hash.clone()), event()).await.unwrap();
    assert!(!started, "the hash verified is no longer the user's");
    let now = store.credential(&flow, tenant.id, &login).await.unwrap().unwrap();
    assert!(store.start_session(&flow, session(now.password_hash), event()).await.unwrap(), "the current one starts");
    // The old password no longer signs in through the API either.
    let r = app
        .client()
        .post(app.url("/api/v1/session"))
        .json(&json!({"tenant": "acme", "login_id": "admin", "password": pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

//! Self-service password change, the tenant's password policy and password expiry.

use daicho_testkit::TestApp;
use daicho_testkit::reqwest::StatusCode;
use serde_json::json;
use time::Duration;

#[tokio::test]
async fn the_policy_refuses_short_common_login_containing_and_reused_passwords() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let m = &cast.member;
    let cases = [
        ("short-1", "password_too_short"),
        ("my member1 passphrase", "password_contains_login"),
        ("password1234", "password_common"),
        (m.password.as_str(), "password_reused"),
    ];
    for (new, code) in cases {
        let (s, v) =
            m.post_json("/api/v1/me/password", json!({"current_password": m.password, "new_password": new})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{new}");
        assert_eq!(v["error"]["fields"][0]["code"], code, "{new}");
        assert!(!v["error"]["fields"][0]["message"].as_str().unwrap().is_empty());
    }
    let (s, v) = m
        .post_json(
            "/api/v1/me/password",
            json!({"current_password": "wrong", "new_password": "a perfectly fine passphrase"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["fields"][0]["code"], "wrong_password");
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=password.change_failure").await;
    assert_eq!(v["events"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_last_five_passwords_cannot_be_reused() {
    let app = TestApp::start().await;
    let (_, pw) = app.tenant("acme").await;
    let a = app.login("acme", "admin", &pw).await;
    let mut current = pw.clone();
    let history: Vec<String> = (1..=6).map(|i| format!("rotating passphrase number {i}")).collect();
    for next in &history {
        let (s, v) =
            a.post_json("/api/v1/me/password", json!({"current_password": current, "new_password": next})).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
        current = next.clone();
    }
    // Passwords 2..5 and the current 6 are remembered; 1 (six changes ago) is free again.
    for old in &history[1..] {
        let (s, v) =
            a.post_json("/api/v1/me/password", json!({"current_password": current, "new_password": old})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{old}");
        assert_eq!(v["error"]["fields"][0]["code"], "password_reused");
    }
    let (s, _) =
        a.post_json("/api/v1/me/password", json!({"current_password": current, "new_password": history[0]})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions_but_keeps_this_one() {
    let app = TestApp::start().await;
    let (_, pw) = app.tenant("acme").await;
    let here = app.login("acme", "admin", &pw).await;
    let elsewhere = app.login("acme", "admin", &pw).await;
    let r = here
        .post_form(
            "/account/password",
            &[
                ("current_password", &pw),
                ("new_password", "a brand new passphrase"),
                ("confirm_password", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(crate::location(&r), "/account?done=password_changed");
    assert_eq!(here.get("/api/v1/me").await.status(), StatusCode::OK);
    assert_eq!(elsewhere.get("/api/v1/me").await.status(), StatusCode::UNAUTHORIZED);
    let page = here.get("/account?done=password_changed").await.text().await.unwrap();
    assert!(page.contains("Your password has been changed"));
    // The old password no longer signs in; the new one does.
    let r = app
        .client()
        .post(app.url("/api/v1/session"))
        .json(&json!({"tenant": "acme", "login_id": "admin", "password": pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    app.login("acme", "admin", "a brand new passphrase").await;
}

#[tokio::test]
async fn mismatched_confirmation_is_explained_on_the_form() {
    let app = TestApp::start().await;
    let (_, pw) = app.tenant("acme").await;
    let a = app.login("acme", "admin", &pw).await;
    let r = a
        .post_form(
            "/account/password",
            &[
                ("current_password", &pw),
                ("new_password", "a brand new passphrase"),
                ("confirm_password", "a brand new passphrasf"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("The two new passwords differ"));
    assert!(page.contains("aria-invalid=\"true\""));
}

#[tokio::test]
async fn an_expiring_password_shows_a_warning_and_an_expired_one_forces_a_change() {
    let app = TestApp::start().await;
    let (_, pw) = app.tenant("acme").await;
    let admin = app.login("acme", "admin", &pw).await;
    let r = admin
        .post_form(
            "/admin/policy",
            &[
                ("password_min_length", "12"),
                ("password_history", "5"),
                ("password_max_age_days", "90"),
                ("password_expiry_warning_days", "14"),
                ("lockout_threshold", "5"),
                ("lockout_minutes", "15"),
                ("idle_timeout_minutes", "1440"),
                ("absolute_timeout_hours", "168"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let home = admin.get("/").await.text().await.unwrap();
    assert!(!home.contains("expires in"));
    app.clock.advance(Duration::days(80));
    let admin = app.login("acme", "admin", &pw).await;
    let home = admin.get("/").await.text().await.unwrap();
    assert!(home.contains("Your password expires in 10 day(s)"), "warning banner");
    app.clock.advance(Duration::days(11));
    let admin = app.login("acme", "admin", &pw).await;
    let r = admin.get("/").await;
    assert_eq!(crate::location(&r), "/account/password");
    let r = admin
        .post_form(
            "/account/password",
            &[
                ("current_password", &pw),
                ("new_password", "the next passphrase"),
                ("confirm_password", "the next passphrase"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(admin.get("/").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_policy_form_explains_out_of_range_and_non_numeric_values() {
    let app = TestApp::start().await;
    let (_, pw) = app.tenant("acme").await;
    let admin = app.login("acme", "admin", &pw).await;
    let r = admin
        .post_form(
            "/admin/policy",
            &[
                ("password_min_length", "4"),
                ("password_history", "abc"),
                ("password_max_age_days", "0"),
                ("password_expiry_warning_days", "14"),
                ("lockout_threshold", "5"),
                ("lockout_minutes", "15"),
                ("idle_timeout_minutes", "30"),
                ("absolute_timeout_hours", "12"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("Enter a whole number"));
    assert!(page.contains("value=\"abc\""));
    // Nothing was changed.
    let (_, v) = admin.get_json("/api/v1/audit?action=policy.change").await;
    assert!(v["events"].as_array().unwrap().is_empty());
}

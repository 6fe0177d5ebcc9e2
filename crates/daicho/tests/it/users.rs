//! Tenant admins manage users in the browser and through the API.

use daicho_testkit::TestApp;
use daicho_testkit::reqwest::{Method, StatusCode};
use serde_json::json;

fn otp_from(page: &str) -> String {
    page.split("id=\"one-time-password\">").nth(1).unwrap().split('<').next().unwrap().to_owned()
}

#[tokio::test]
async fn an_admin_creates_a_user_who_must_change_the_one_time_password_at_first_login() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let r = cast
        .admin
        .post_form(
            "/admin/users",
            &[
                ("login_id", "Hanako"),
                ("display_name", "山田 花子"),
                ("email", "hanako@example.jp"),
                ("role", "member"),
                ("language", "ja"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    let otp = otp_from(&page);
    assert_eq!(otp.len(), 20);
    // First sign-in: everything except the password page redirects there.
    let hanako = app.login("acme", "hanako", &otp).await;
    let r = hanako.get("/").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(crate::location(&r), "/account/password");
    let (s, v) = hanako.get_json("/api/v1/users").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["error"]["code"], "password_change_required");
    let page = hanako.get("/account/password").await.text().await.unwrap();
    assert!(page.contains("続行する前に新しいパスワードを設定してください"), "Japanese for a ja user");
    let r = hanako
        .post_form(
            "/account/password",
            &[
                ("current_password", &otp),
                ("new_password", "さくら咲く春の日の台帳 2026"),
                ("confirm_password", "さくら咲く春の日の台帳 2026"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(hanako.get("/").await.status(), StatusCode::OK);
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=user.create").await;
    assert!(v["events"][0]["target"].as_str().unwrap().ends_with("hanako"));
}

#[tokio::test]
async fn user_forms_explain_every_invalid_field_and_keep_the_input() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let r = cast
        .admin
        .post_form(
            "/admin/users",
            &[
                ("login_id", "bad id!"),
                ("display_name", ""),
                ("email", "not-an-email"),
                ("role", "root"),
                ("language", "auto"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    for msg in [
        "Use only letters, digits",
        "This field is required",
        "Enter an e-mail address",
        "Choose one of the offered values",
    ] {
        assert!(page.contains(msg), "{msg}");
    }
    assert!(page.contains("value=\"not-an-email\""));
    let r = cast
        .admin
        .post_form(
            "/admin/users",
            &[
                ("login_id", "member1"),
                ("display_name", "Dup"),
                ("email", "d@example.jp"),
                ("role", "member"),
                ("language", "auto"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("already in use"));
    let (s, v) = cast
        .admin
        .post_json(
            "/api/v1/users",
            json!({"login_id": "member1", "display_name": "D", "email": "d@example.jp", "role": "member"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["error"]["fields"][0]["field"], "login_id");
    assert_eq!(v["error"]["fields"][0]["code"], "taken");
}

#[tokio::test]
async fn hostile_names_are_stored_intact_and_shown_escaped() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let evil = "<script>alert('x')</script> \"'; DROP TABLE users;-- 😀";
    let (s, v) = cast
        .admin
        .post_json(
            "/api/v1/users",
            json!({"login_id": "evil", "display_name": evil, "email": "e@example.jp", "role": "member"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let id = v["user"]["id"].as_str().unwrap();
    let (_, v) = cast.admin.get_json(&format!("/api/v1/users/{id}")).await;
    assert_eq!(v["user"]["display_name"], evil);
    let page = cast.admin.get("/admin/users").await.text().await.unwrap();
    assert!(!page.contains("<script>alert"));
    assert!(page.contains("&#60;script&#62;alert") || page.contains("&lt;script&gt;alert"));
}

#[tokio::test]
async fn an_admin_edits_disables_enables_resets_and_deletes_a_user_and_each_step_is_audited() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (_, v) = cast.admin.get_json("/api/v1/users").await;
    let id = v["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "member1").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = cast
        .admin
        .post_form(
            &format!("/admin/users/{id}/edit"),
            &[("display_name", "Member One"), ("email", "one@example.jp"), ("role", "member"), ("language", "en")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (s, v) =
        cast.admin.send_json(Method::PATCH, &format!("/api/v1/users/{id}"), json!({"email": "uno@example.jp"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["user"]["email"], "uno@example.jp");
    assert_eq!(v["user"]["display_name"], "Member One");

    // Resetting the password ends the user's sessions and forces a change.
    let r = cast.admin.post_form(&format!("/admin/users/{id}/reset-password"), &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let otp = otp_from(&r.text().await.unwrap());
    assert_eq!(cast.member.get("/api/v1/me").await.status(), StatusCode::UNAUTHORIZED);
    let m = app.login("acme", "member1", &otp).await;
    assert_eq!(m.get("/").await.status(), StatusCode::SEE_OTHER);

    // Deleting asks for confirmation, then ends their sessions and removes them.
    let r = cast.admin.post_form(&format!("/admin/users/{id}/delete"), &[]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = cast.admin.post_form(&format!("/admin/users/{id}/delete"), &[("confirm", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(m.get("/api/v1/me").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(cast.admin.get_json(&format!("/api/v1/users/{id}")).await.0, StatusCode::NOT_FOUND);

    let (_, v) = cast.admin.get_json("/api/v1/audit?limit=500").await;
    let actions: Vec<&str> = v["events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in ["user.update", "password.reset", "user.delete"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    let upd = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "user.update" && e["details"].as_str().unwrap().contains("display_name"))
        .unwrap();
    assert!(upd["details"].as_str().unwrap().contains("member1 -> Member One"));
}

#[tokio::test]
async fn an_admin_cannot_disable_delete_or_demote_themselves() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (_, v) = cast.admin.get_json("/api/v1/me").await;
    let me = v["user"]["id"].as_str().unwrap().to_owned();
    let (s, v) = cast.admin.post_json(&format!("/api/v1/users/{me}/disable"), json!({})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["fields"][0]["code"], "cannot_change_self");
    let (s, _) = cast.admin.send_json(Method::PATCH, &format!("/api/v1/users/{me}"), json!({"role": "member"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        cast.admin.post_form(&format!("/admin/users/{me}/delete"), &[("confirm", "yes")]).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(cast.admin.get("/api/v1/users").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_role_change_ends_the_users_sessions_so_it_applies_from_a_fresh_login() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (_, v) = cast.admin.get_json("/api/v1/users").await;
    let id = v["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "member1").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) =
        cast.admin.send_json(Method::PATCH, &format!("/api/v1/users/{id}"), json!({"role": "tenant_admin"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(cast.member.get("/api/v1/me").await.status(), StatusCode::UNAUTHORIZED);
    let promoted = app.login("acme", "member1", &cast.member.password).await;
    assert_eq!(promoted.get("/api/v1/users").await.status(), StatusCode::OK);
}

async fn demote_or_disable(
    who: &daicho_testkit::Persona,
    target: &str,
    body: &Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    match body {
        None => who.post_json(&format!("/api/v1/users/{target}/disable"), json!({})).await,
        Some(b) => who.send_json(Method::PATCH, &format!("/api/v1/users/{target}"), b.clone()).await,
    }
}

/// Two administrators disabling (or demoting) each other at once each pass the "not yourself"
/// check; the store refuses the change that would leave the tenant without an active
/// administrator (409 last_admin), so one of them always remains.
#[tokio::test]
async fn two_administrators_disabling_each_other_at_once_leave_one_administrator() {
    let app = TestApp::start().await;
    for (code, body) in [("duo1", None), ("duo2", Some(json!({"role": "member"})))] {
        let (_, pw) = app.tenant(code).await;
        let first = app.login(code, "admin", &pw).await;
        let pw2 = app.user(code, "boss", "tenant_admin").await;
        let second = app.login(code, "boss", &pw2).await;
        let id_of = |v: serde_json::Value| v["user"]["id"].as_str().unwrap().to_owned();
        let (a, b) = (id_of(first.get_json("/api/v1/me").await.1), id_of(second.get_json("/api/v1/me").await.1));
        let (one, two) = tokio::join!(demote_or_disable(&first, &b, &body), demote_or_disable(&second, &a, &body));
        let answers = [one, two];
        let done = answers.iter().filter(|(s, _)| s.is_success()).count();
        assert_eq!(done, 1, "{code}: {answers:?}");
        for (s, v) in &answers {
            if *s == StatusCode::CONFLICT {
                assert_eq!(v["error"]["fields"][0]["code"], "last_admin", "{v}");
            }
        }
        // Whoever remains still administers the tenant.
        let first_ok = first.get("/api/v1/users").await.status() == StatusCode::OK;
        let second_ok = second.get("/api/v1/users").await.status() == StatusCode::OK;
        assert!(first_ok ^ second_ok, "{code}: exactly one administrator remains ({first_ok}, {second_ok})");
    }
}

//! Isolation between tenants ("not yours" is 404) and between roles (members get 403).

use daicho_testkit::TestApp;
use daicho_testkit::reqwest::{Method, StatusCode};
use serde_json::json;

async fn member_id(app_admin: &daicho_testkit::Persona, login: &str) -> String {
    let (_, v) = app_admin.get_json("/api/v1/users").await;
    v["users"].as_array().unwrap().iter().find(|u| u["login_id"] == login).unwrap()["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_admin_of_tenant_b_gets_404_for_every_user_route_of_tenant_a() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let id = member_id(&cast.admin, "member1").await;
    let b = &cast.other_admin;
    for path in [format!("/admin/users/{id}"), format!("/admin/users/{id}/edit"), format!("/admin/users/{id}/delete")] {
        assert_eq!(b.get(&path).await.status(), StatusCode::NOT_FOUND, "GET {path}");
    }
    for action in ["disable", "enable", "unlock", "reset-password", "edit"] {
        let r = b
            .post_form(
                &format!("/admin/users/{id}/{action}"),
                &[("display_name", "x"), ("email", "x@x.jp"), ("role", "member"), ("language", "auto")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "POST {action}");
    }
    let r = b.post_form(&format!("/admin/users/{id}/delete"), &[("confirm", "yes")]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(b.get_json(&format!("/api/v1/users/{id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        b.send_json(Method::PATCH, &format!("/api/v1/users/{id}"), json!({"display_name": "pwned"})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(b.post_json(&format!("/api/v1/users/{id}/disable"), json!({})).await.0, StatusCode::NOT_FOUND);
    // Nothing changed in tenant A.
    let (_, v) = cast.admin.get_json(&format!("/api/v1/users/{id}")).await;
    assert_eq!(v["user"]["display_name"], "member1");
    assert_eq!(v["user"]["status"], "active");
    assert_eq!(cast.member.get("/api/v1/me").await.status(), StatusCode::OK);
    // B's lists show only B.
    let (_, list) = b.get_json("/api/v1/users").await;
    assert!(list["users"].as_array().unwrap().iter().all(|u| u["login_id"] != "member1"));
    let (_, events) = b.get_json("/api/v1/audit?limit=500").await;
    assert!(events["events"].as_array().unwrap().iter().all(|e| e["actor_login"] != "member1"));
}

#[tokio::test]
async fn a_member_is_refused_every_admin_page_and_api_and_the_refusal_is_audited() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let id = member_id(&cast.admin, "admin").await;
    let m = &cast.member;
    for path in [
        "/admin/users",
        "/admin/users/new",
        "/admin/policy",
        "/admin/audit",
        "/admin/audit/export.csv",
        &format!("/admin/users/{id}"),
    ] {
        assert_eq!(m.get(path).await.status(), StatusCode::FORBIDDEN, "GET {path}");
    }
    for path in ["/admin/policy", "/admin/users", &format!("/admin/users/{id}/disable")] {
        assert_eq!(m.post_form(path, &[]).await.status(), StatusCode::FORBIDDEN, "POST {path}");
    }
    for path in ["/api/v1/users", "/api/v1/audit", &format!("/api/v1/users/{id}")] {
        let (s, v) = m.get_json(path).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "GET {path}");
        assert_eq!(v["error"]["code"], "forbidden");
    }
    assert_eq!(m.post_json(&format!("/api/v1/users/{id}/disable"), json!({})).await.0, StatusCode::FORBIDDEN);
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=permission.denied&limit=500").await;
    let denied = v["events"].as_array().unwrap();
    assert!(denied.len() >= 10, "{}", denied.len());
    assert!(denied.iter().all(|e| e["actor_login"] == "member1" && e["outcome"] == "denied"));
    // The admin is still active.
    assert_eq!(cast.admin.get("/api/v1/me").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_admin_navigation_is_shown_only_to_admins() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let member_home = cast.member.get("/").await.text().await.unwrap();
    assert!(!member_home.contains("/admin/users"));
    let admin_home = cast.admin.get("/").await.text().await.unwrap();
    assert!(admin_home.contains("/admin/users"));
}

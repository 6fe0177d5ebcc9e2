//! Personal API tokens: shown once, stored as hashes, scoped, expiring, revocable; a token acts
//! as its user with the same rights and the operation history names it.

use daicho_testkit::reqwest::{Method, StatusCode};
use daicho_testkit::{Persona, TestApp};
use serde_json::{Value, json};

async fn new_token(who: &Persona, name: &str, read_only: bool, days: i64) -> (String, String) {
    let (s, v) = who
        .post_json("/api/v1/me/tokens", json!({"name": name, "read_only": read_only, "expires_in_days": days}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    (v["token"]["id"].as_str().unwrap().to_owned(), v["secret"].as_str().unwrap().to_owned())
}

/// A request with only the token: no cookie, no CSRF header.
async fn with_token(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = app.client().request(method, app.url(path)).header("authorization", format!("Bearer {token}"));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn table_for_member(admin: &Persona, member_login: &str) -> String {
    let (_, v) = admin.post_json("/api/v1/tables", json!({"name": "Notes"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    admin.post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": "text", "kind": {"type": "text"}})).await;
    let (_, users) = admin.get_json("/api/v1/users").await;
    let uid = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == member_login).unwrap()["id"].clone();
    let (_, g) = admin.post_json("/api/v1/groups", json!({"name": "writers"})).await;
    let gid = g["group"]["id"].as_str().unwrap().to_owned();
    admin.send_json(Method::PUT, &format!("/api/v1/groups/{gid}/members"), json!({"members": [uid]})).await;
    admin
        .send_json(Method::PUT, &format!("/api/v1/groups/{gid}/grants/{tid}"), json!({"rights": ["view", "create"]}))
        .await;
    tid
}

#[tokio::test]
async fn a_token_acts_as_its_user_with_its_scope_and_is_named_in_the_history() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let tid = table_for_member(&cast.admin, "member1").await;
    let (_, read) = new_token(&cast.member, "reporting", true, 30).await;
    let (rw_id, rw) = new_token(&cast.member, "sync job", false, 30).await;
    assert!(read.starts_with("dct_") && read.len() == 47);
    // Only hashes are stored.
    assert_eq!(app.raw_i64("SELECT COUNT(*) FROM api_tokens WHERE token_hash LIKE 'dct_%'").await, 0);
    assert_eq!(app.raw_i64("SELECT COUNT(*) FROM api_tokens").await, 2);
    // Read-only: reads, and is refused (and recorded) on a write.
    let (s, v) = with_token(&app, &read, Method::GET, &format!("/api/v1/tables/{tid}/records"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = with_token(
        &app,
        &read,
        Method::POST,
        &format!("/api/v1/tables/{tid}/records"),
        Some(json!({"values": {"text": "x"}})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Read-write: writes without a CSRF token, as the member, with the member's rights only.
    let (s, v) = with_token(
        &app,
        &rw,
        Method::POST,
        &format!("/api/v1/tables/{tid}/records"),
        Some(json!({"values": {"text": "from the sync job"}})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, _) = with_token(&app, &rw, Method::GET, "/api/v1/users", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no more than the user may do");
    let (s, _) = with_token(&app, &rw, Method::POST, "/api/v1/tables", Some(json!({"name": "mine"}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, me) = with_token(&app, &rw, Method::GET, "/api/v1/me", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["user"]["login_id"], "member1");
    // The history names the user and the token.
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=record.create").await;
    let ev = &v["events"][0];
    assert_eq!(ev["actor_login"], "member1");
    assert!(ev["user_agent"].as_str().unwrap().contains(&format!("token:sync job ({rw_id})")), "{ev}");
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=token.refused").await;
    assert_eq!(v["events"][0]["details"], "read-only token");
    // Not for pages, not for managing the account.
    let r = app.client().get(app.url("/tables")).header("authorization", format!("Bearer {rw}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "pages need a browser session");
    for (m, path, body) in [
        (Method::GET, "/api/v1/me/tokens", None),
        (Method::POST, "/api/v1/me/tokens", Some(json!({"name": "x", "expires_in_days": 1}))),
        (Method::POST, "/api/v1/me/password", Some(json!({"current": "x", "new": "y"}))),
        (Method::DELETE, "/api/v1/session", None),
    ] {
        assert_eq!(with_token(&app, &rw, m, path, body).await.0, StatusCode::FORBIDDEN, "{path}");
    }
    // Another tenant's tables are not there for the token either.
    let (_, v) = cast.other_admin.post_json("/api/v1/tables", json!({"name": "B"})).await;
    let btid = v["table"]["id"].as_str().unwrap();
    assert_eq!(
        with_token(&app, &rw, Method::GET, &format!("/api/v1/tables/{btid}/records"), None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn tokens_expire_can_be_revoked_and_die_with_their_user() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (_, short) = new_token(&cast.admin, "one day", true, 1).await;
    let (id, revocable) = new_token(&cast.member, "revocable", true, 30).await;
    let (_, kept) = new_token(&cast.member, "kept", true, 30).await;
    assert_eq!(with_token(&app, &short, Method::GET, "/api/v1/me", None).await.0, StatusCode::OK);
    // Revoked: refused at once.
    let (s, _) = cast.member.send_json(Method::DELETE, &format!("/api/v1/me/tokens/{id}"), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(with_token(&app, &revocable, Method::GET, "/api/v1/me", None).await.0, StatusCode::UNAUTHORIZED);
    // Revoked twice (the form sent again): 404, and no probe recorded.
    let (s, _) = cast.member.send_json(Method::DELETE, &format!("/api/v1/me/tokens/{id}"), json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Nobody else's token can be revoked by id: that is recorded.
    assert_eq!(
        cast.admin.send_json(Method::DELETE, &format!("/api/v1/me/tokens/{id}"), json!({})).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=permission.denied").await;
    let probes: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"].as_str().is_some_and(|d| d.starts_with("revoke of token:")))
        .map(|e| e["actor_login"].as_str().unwrap())
        .collect();
    assert_eq!(probes, ["admin"], "{v}");
    // Unknown, malformed, or presented next to a valid cookie: the token decides.
    let fake = format!("dct_{}", "A".repeat(43));
    assert_eq!(with_token(&app, &fake, Method::GET, "/api/v1/me", None).await.0, StatusCode::UNAUTHORIZED);
    let r = cast
        .admin
        .client
        .get(cast.admin.url("/api/v1/me"))
        .header("authorization", format!("Bearer {fake}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a bad token is not rescued by a cookie");
    // Disabling the user revokes their tokens: enabling them again brings none back.
    let (_, users) = cast.admin.get_json("/api/v1/users").await;
    let uid = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "member1").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = cast.admin.post_json(&format!("/api/v1/users/{uid}/disable"), json!({})).await;
    assert!(s.is_success());
    assert_eq!(with_token(&app, &kept, Method::GET, "/api/v1/me", None).await.0, StatusCode::UNAUTHORIZED);
    let (s, _) = cast.admin.post_json(&format!("/api/v1/users/{uid}/enable"), json!({})).await;
    assert!(s.is_success());
    assert_eq!(with_token(&app, &kept, Method::GET, "/api/v1/me", None).await.0, StatusCode::UNAUTHORIZED);
    // So does a change of role: a token made as a member never acts as an administrator.
    let member2 = app.user("acme", "member2", "member").await;
    let m2 = app.login("acme", "member2", &member2).await;
    let (_, promoted) = new_token(&m2, "promoted", false, 30).await;
    let (_, users) = cast.admin.get_json("/api/v1/users").await;
    let user2 = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "member2").unwrap().clone();
    let url = format!("/api/v1/users/{}", user2["id"].as_str().unwrap());
    let (s, v) = cast.admin.send_json(Method::PATCH, &url, json!({"role": "tenant_admin"})).await;
    assert!(s.is_success(), "{v}");
    assert_eq!(with_token(&app, &promoted, Method::GET, "/api/v1/users", None).await.0, StatusCode::UNAUTHORIZED);
    let (_, other) = new_token(&cast.admin, "other", true, 30).await;
    // Expired on the injected clock (the admin is still active; the token is not).
    app.clock.advance(time::Duration::hours(25));
    assert_eq!(with_token(&app, &short, Method::GET, "/api/v1/me", None).await.0, StatusCode::UNAUTHORIZED);
    // A token of a user disabled by any other way is refused on its own check.
    app.raw_sql(
        "UPDATE users SET status = 'disabled' WHERE login_id = 'admin'",
        "UPDATE users SET status = 'disabled' WHERE login_id = 'admin'",
    )
    .await
    .unwrap();
    assert_eq!(with_token(&app, &other, Method::GET, "/api/v1/me", None).await.0, StatusCode::UNAUTHORIZED);
    for why in ["revoked", "expired", "user disabled"] {
        let n = match why {
            "revoked" => {
                app.raw_i64("SELECT COUNT(*) FROM audit_events WHERE action = 'token.refused' AND details = 'revoked'")
                    .await
                    // One revoked by its user; 'kept' tried after the disable and after the
                    // enable; 'promoted' after the change of role.
                    - 3
            }
            "expired" => {
                app.raw_i64("SELECT COUNT(*) FROM audit_events WHERE action = 'token.refused' AND details = 'expired'")
                    .await
            }
            _ => {
                app.raw_i64(
                    "SELECT COUNT(*) FROM audit_events WHERE action = 'token.refused' AND details = 'user disabled'",
                )
                .await
            }
        };
        assert_eq!(n, 1, "{why}");
    }
    let revoked_with_user = app
        .raw_i64("SELECT COUNT(*) FROM api_tokens WHERE name IN ('kept', 'promoted') AND revoked_at IS NOT NULL")
        .await;
    assert_eq!(revoked_with_user, 2, "the tokens list shows them revoked");
}

#[tokio::test]
async fn the_tokens_page_shows_a_new_token_once_and_refuses_bad_input() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let r = cast
        .member
        .post_form("/account/tokens", &[("name", "<b>ci</b>"), ("scope", "read"), ("expires_in_days", "30")])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    let start = page.find("dct_").unwrap();
    let secret = &page[start..start + 47];
    assert_eq!(with_token(&app, secret, Method::GET, "/api/v1/me", None).await.0, StatusCode::OK);
    assert!(page.contains("&lt;b&gt;ci&lt;/b&gt;") || page.contains("&#60;b&#62;ci"), "escaped name");
    let again = cast.member.get("/account/tokens").await.text().await.unwrap();
    assert!(!again.contains(secret), "shown once");
    for days in ["0", "366", "x"] {
        let r = cast.member.post_form("/account/tokens", &[("name", "n"), ("expires_in_days", days)]).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{days}");
    }
    let r = cast.member.post_form("/account/tokens", &[("name", "<b>ci</b>"), ("expires_in_days", "5")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "names are unique per user");
    // Revoking from the page: nobody else can (404, the token keeps working), its owner can.
    let (_, v) = cast.member.get_json("/api/v1/me/tokens").await;
    let id = v["tokens"][0]["id"].as_str().unwrap().to_owned();
    let revoke = format!("/account/tokens/{id}/revoke");
    let yes = [("confirm", "yes")];
    assert_eq!(cast.admin.post_form(&revoke, &yes).await.status(), StatusCode::NOT_FOUND, "another user's token");
    assert_eq!(cast.other_admin.post_form(&revoke, &yes).await.status(), StatusCode::NOT_FOUND, "another tenant");
    assert_eq!(with_token(&app, secret, Method::GET, "/api/v1/me", None).await.0, StatusCode::OK);
    assert_eq!(cast.other_admin.post_form(&revoke, &[]).await.status(), StatusCode::NOT_FOUND, "unticked too");
    let probes =
        "SELECT COUNT(*) FROM audit_events WHERE action = 'permission.denied' AND details LIKE 'revoke of token:%'";
    assert_eq!(app.raw_i64(probes).await, 3, "each probe recorded, unticked too");
    // Without the tick nothing is revoked, and the page says why.
    let r = cast.member.post_form(&revoke, &[]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("Tick the box to confirm."));
    assert_eq!(with_token(&app, secret, Method::GET, "/api/v1/me", None).await.0, StatusCode::OK);
    let r = cast.member.post_form(&revoke, &yes).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(with_token(&app, secret, Method::GET, "/api/v1/me", None).await.0, StatusCode::UNAUTHORIZED);
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=token.revoke").await;
    let e = &v["events"][0];
    assert_eq!((e["actor_login"].as_str(), e["outcome"].as_str()), (Some("member1"), Some("success")), "{v}");
}

#[tokio::test]
async fn a_token_made_before_the_password_changed_is_refused_and_tokens_read_unless_asked_to_write() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let m = &cast.member;
    // A token whose body does not ask for writing only reads.
    let (s, v) = m.post_json("/api/v1/me/tokens", json!({"name": "default", "expires_in_days": 5})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["token"]["scope"], "read", "{v}");
    let (_, old) = new_token(m, "before", false, 30).await;
    assert_eq!(with_token(&app, &old, Method::GET, "/api/v1/me", None).await.0, StatusCode::OK);
    // Whoever knew the old password may have made it: a change of password ends it.
    app.clock.advance(time::Duration::minutes(1));
    let (s, v) = m
        .post_json(
            "/api/v1/me/password",
            json!({"current_password": m.password, "new_password": "a fresh passphrase 2026"}),
        )
        .await;
    assert_eq!(s.as_u16() / 100, 2, "{v}");
    assert_eq!(with_token(&app, &old, Method::GET, "/api/v1/me", None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.raw_i64("SELECT COUNT(*) FROM audit_events WHERE action = 'token.refused' AND details = 'revoked'").await,
        1
    );
    // The list says so (the tokens are revoked with the change), and they no longer count
    // against the limit of tokens.
    let (_, v) = m.get_json("/api/v1/me/tokens").await;
    let tokens = v["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2, "{v}");
    assert!(tokens.iter().all(|t| t["active"] == json!(false) && t["revoked_at"].is_string()), "{v}");
    // An administrator's read-write token reads users and groups but changes neither: a leaked
    // token must not make itself an account or widen anyone's rights.
    let (_, admin_rw) = new_token(&cast.admin, "admin sync", false, 30).await;
    assert_eq!(with_token(&app, &admin_rw, Method::GET, "/api/v1/users", None).await.0, StatusCode::OK);
    let new_user = json!({"login_id": "intruder", "display_name": "x", "email": "x@example.com", "role": "admin"});
    for (method, path, body) in [
        (Method::POST, "/api/v1/users".to_owned(), Some(new_user)),
        (Method::POST, "/api/v1/groups".to_owned(), Some(json!({"name": "everyone"}))),
    ] {
        assert_eq!(with_token(&app, &admin_rw, method, &path, body).await.0, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        app.raw_i64("SELECT COUNT(*) FROM audit_events WHERE action = 'token.refused' AND details = 'route changes users or rights'")
            .await,
        2
    );
    assert_eq!(app.raw_i64("SELECT COUNT(*) FROM users WHERE login_id = 'intruder'").await, 0);
    // One made after the change works.
    let m = app.login("acme", "member1", "a fresh passphrase 2026").await;
    app.clock.advance(time::Duration::minutes(1));
    let (_, new) = new_token(&m, "after", false, 30).await;
    assert_eq!(with_token(&app, &new, Method::GET, "/api/v1/me", None).await.0, StatusCode::OK);
}

/// A user holds at most 20 tokens in use; a revoked one frees its place.
#[tokio::test]
async fn a_user_holds_at_most_twenty_tokens_in_use() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let m = &cast.member;
    let mut first = String::new();
    for i in 0..20 {
        let (id, _) = new_token(m, &format!("t{i}"), true, 30).await;
        if i == 0 {
            first = id;
        }
    }
    let body = json!({"name": "t20", "read_only": true, "expires_in_days": 30});
    let (s, v) = m.post_json("/api/v1/me/tokens", body.clone()).await;
    assert_eq!((s, v["error"]["fields"][0]["code"].as_str()), (StatusCode::CONFLICT, Some("too_many_tokens")), "{v}");
    let (s, _) = m.send_json(Method::DELETE, &format!("/api/v1/me/tokens/{first}"), json!({})).await;
    assert!(s.is_success(), "{s}");
    let (s, v) = m.post_json("/api/v1/me/tokens", body).await;
    assert_eq!(s, StatusCode::CREATED, "a revoked token frees its place: {v}");
}

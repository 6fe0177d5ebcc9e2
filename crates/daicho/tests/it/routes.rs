//! The route inventory: every route is public by declaration or refused to anonymous clients;
//! every API route is in the OpenAPI document.

use daicho_testkit::TestApp;
use daicho_testkit::reqwest::{Method, StatusCode};
use daicho_web::routes::{Access, inventory};

const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/assets/app.css"),
    ("GET", "/assets/app.js"),
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

/// Tenant A's objects, one of each kind a route can name.
struct Objects {
    table: String,
    field: String,
    view: String,
    group: String,
    user: String,
    token: String,
    session: String,
    trashed_table: String,
    trashed_field: String,
}

impl Objects {
    /// The same ids, to be changed in part (`Objects { field: …, ..o.clone_ids() }`).
    fn clone_ids(&self) -> Objects {
        Objects {
            table: self.table.clone(),
            field: self.field.clone(),
            view: self.view.clone(),
            group: self.group.clone(),
            user: self.user.clone(),
            token: self.token.clone(),
            session: self.session.clone(),
            trashed_table: self.trashed_table.clone(),
            trashed_field: self.trashed_field.clone(),
        }
    }

    /// `path` with its placeholders replaced by A's ids. The trash routes name A's table in
    /// the trash (or A's field in the trash of a live table).
    fn path(&self, path: &str) -> String {
        let (tid, fid) = if path.starts_with("/api/v1/trash/tables/{tid}/fields") {
            (&self.table, &self.trashed_field)
        } else if path.starts_with("/api/v1/trash/") {
            (&self.trashed_table, &self.field)
        } else {
            (&self.table, &self.field)
        };
        let id = if path.starts_with("/account/sessions/") {
            &self.session
        } else if path.contains("/tokens/") {
            &self.token
        } else {
            &self.user
        };
        path.replace("{tid}", tid)
            .replace("{fid}", fid)
            .replace("{rid}", "1")
            .replace("{vid}", &self.view)
            .replace("{gid}", &self.group)
            .replace("{id}", id)
    }
}

/// `method path` as `who` sends it, its placeholders filled from `o`, with a well-formed body
/// (`body_for`) and their CSRF token: the answer's status.
async fn request_naming(who: &daicho_testkit::Persona, method: &str, path: &str, o: &Objects) -> StatusCode {
    let (ct, body) = body_for(method, path, o);
    let body = if ct.starts_with("application/x-www-form-urlencoded") { format!("csrf={}", who.csrf) } else { body };
    who.client
        .request(Method::from_bytes(method.as_bytes()).unwrap(), who.url(&o.path(path)))
        .header("x-csrf-token", &who.csrf)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

/// A well-formed request body for `method path`, so that only the tenancy can refuse it.
fn body_for(method: &str, path: &str, o: &Objects) -> (&'static str, String) {
    let json = |v: serde_json::Value| ("application/json", v.to_string());
    if path.starts_with("/api/") {
        return match (method, path) {
            (_, p) if p.ends_with("/import") => ("text/csv; charset=utf-8", "名前\nx\n".to_owned()),
            ("PATCH", p) if p.contains("/records/") => json(serde_json::json!({"version": 1, "values": {"名前": "x"}})),
            ("POST", p) if p.ends_with("/records") => json(serde_json::json!({"values": {"名前": "x"}})),
            (_, p) if p.ends_with("/bulk-delete") => json(serde_json::json!({"ids": [1]})),
            (_, p) if p.ends_with("/bulk-update") => json(serde_json::json!({"ids": [1], "values": {"名前": "x"}})),
            (_, p) if p.ends_with("/fields/order") => json(serde_json::json!({"fields": [o.field]})),
            (_, p) if p.ends_with("/retype") => json(serde_json::json!({"kind": {"type": "text"}})),
            ("POST", p) if p.ends_with("/fields") => json(serde_json::json!({"name": "z", "kind": {"type": "text"}})),
            ("POST", p) if p.ends_with("/views") => json(serde_json::json!({"name": "v", "shared": false})),
            (_, p) if p.ends_with("/members") => json(serde_json::json!({"members": []})),
            (_, p) if p.contains("/grants/") => json(serde_json::json!({"rights": ["view"]})),
            ("PATCH", p) if p.starts_with("/api/v1/users/") => json(serde_json::json!({"display_name": "x"})),
            ("PATCH", _) => json(serde_json::json!({"name": "x"})),
            _ => json(serde_json::json!({})),
        };
    }
    ("application/x-www-form-urlencoded", String::new())
}

#[tokio::test]
async fn every_route_naming_another_tenants_object_answers_404_and_changes_nothing() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    // Tenant A: a table with a field and a record, a saved view, a group, a member, a token,
    // a session, a table in the trash and a field in the trash.
    let (_, v) = a.post_json("/api/v1/tables", serde_json::json!({"name": "顧客"})).await;
    let table = v["table"]["id"].as_str().unwrap().to_owned();
    let mut fields = Vec::new();
    for name in ["名前", "旧欄"] {
        let (s, v) = a
            .post_json(
                &format!("/api/v1/tables/{table}/fields"),
                serde_json::json!({"name": name, "kind": {"type": "text"}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        fields.push(v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned());
    }
    let (s, v) =
        a.post_json(&format!("/api/v1/tables/{table}/records"), serde_json::json!({"values": {"名前": "山田"}})).await;
    assert_eq!((s, v["record"]["id"].as_i64()), (StatusCode::CREATED, Some(1)), "{v}");
    let (s, v) = a
        .post_json(&format!("/api/v1/tables/{table}/views"), serde_json::json!({"name": "全件", "shared": true}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let view = v["view"]["id"].as_str().unwrap().to_owned();
    let (_, v) = a.post_json("/api/v1/groups", serde_json::json!({"name": "営業", "description": ""})).await;
    let group = v["group"]["id"].as_str().unwrap().to_owned();
    let (_, v) = a.get_json("/api/v1/users").await;
    let user = v["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "member1").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, v) = a.post_json("/api/v1/me/tokens", serde_json::json!({"name": "t", "expires_in_days": 30})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let token = v["token"]["id"].as_str().unwrap().to_owned();
    // A second session of A's administrator, which the account page offers to end.
    let second = app.login("acme", "admin", &a.password).await;
    let account = a.get("/account").await.text().await.unwrap();
    let session = account.split("/account/sessions/").nth(1).and_then(|s| s.split('/').next()).unwrap().to_owned();
    let (_, v) = a.post_json("/api/v1/tables", serde_json::json!({"name": "廃止"})).await;
    let trashed_table = v["table"]["id"].as_str().unwrap().to_owned();
    let (s, _) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{trashed_table}"), serde_json::json!({})).await;
    assert!(s.is_success(), "{s}");
    let (s, _) = a
        .send_json(Method::DELETE, &format!("/api/v1/tables/{table}/fields/{}", fields[1]), serde_json::json!({}))
        .await;
    assert!(s.is_success(), "{s}");
    let o = Objects {
        table,
        field: fields[0].clone(),
        view,
        group,
        user,
        token,
        session,
        trashed_table,
        trashed_field: fields[1].clone(),
    };

    // Tenant B's administrator, who may do everything in B, tries every route that names an
    // object with A's ids.
    let b = &cast.other_admin;
    let mut wrong = Vec::new();
    let mut tried = 0;
    for r in inventory().iter().filter(|r| r.path.contains('{')) {
        let status = request_naming(b, r.method, r.path, &o).await;
        tried += 1;
        if status != StatusCode::NOT_FOUND {
            wrong.push(format!("{} {} -> {status}", r.method, r.path));
        }
    }
    assert!(tried >= 50, "{tried}");
    assert!(wrong.is_empty(), "not 404 for another tenant's object:\n{}", wrong.join("\n"));

    // A's objects are as they were.
    let (_, v) = a.get_json(&format!("/api/v1/tables/{}/records/1", o.table)).await;
    assert_eq!(
        (v["record"]["version"].as_i64(), &v["record"]["values"][&o.field]),
        (Some(1), &serde_json::json!("山田"))
    );
    let (_, v) = a.get_json(&format!("/api/v1/tables/{}", o.table)).await;
    assert_eq!(v["table"]["name"], "顧客");
    assert_eq!(a.get_json(&format!("/api/v1/groups/{}", o.group)).await.0, StatusCode::OK);
    let (_, v) = a.get_json(&format!("/api/v1/users/{}", o.user)).await;
    assert_eq!(v["user"]["status"], "active", "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{}/views", o.table)).await;
    assert_eq!(v["views"].as_array().map(Vec::len), Some(1), "{v}");
    let (_, v) = a.get_json("/api/v1/me/tokens").await;
    assert!(
        v["tokens"].as_array().unwrap().iter().any(|t| t["id"] == o.token.as_str() && t["revoked_at"].is_null()),
        "{v}"
    );
    let (_, v) = a.get_json("/api/v1/trash").await;
    assert_eq!(v["items"].as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(a.get_json("/api/v1/me").await.0, StatusCode::OK, "A's session still works");
    assert_eq!(second.get_json("/api/v1/me").await.0, StatusCode::OK, "and so does the other one");
    // B's attempts are in B's history, not in A's.
    let (_, v) = a.get_json("/api/v1/audit?limit=500").await;
    let denied = v["events"].as_array().unwrap().iter().filter(|e| e["outcome"] != "success").count();
    assert_eq!(denied, 0, "{v}");
    let (_, v) = b.get_json("/api/v1/audit?action=permission.denied&limit=500").await;
    let probes = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"].as_str().unwrap_or("").starts_with(&format!("no table:{} ", o.table)))
        .count();
    assert!(probes >= 20, "every route naming A's table is recorded in B's history: {probes}: {v}");
}

/// A route naming one of the user's own objects and another tenant's (their own table with
/// another tenant's field or view; their own group with another tenant's table) answers 404 and
/// changes nothing; so do bodies that name another tenant's object (a table in the trash form,
/// a user for a group or a user field).
#[tokio::test]
async fn a_route_naming_ones_own_object_and_another_tenants_answers_404_and_changes_nothing() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, b) = (&cast.admin, &cast.other_admin);
    let oa = tenant_objects(a).await;
    let ob = tenant_objects(b).await;
    // B's own table with A's field, view or field in the trash; B's own group with A's table.
    let mixed_fields = Objects {
        field: oa.field.clone(),
        view: oa.view.clone(),
        trashed_field: oa.trashed_field.clone(),
        ..ob.clone_ids()
    };
    let mixed_group = Objects { table: oa.table.clone(), ..ob.clone_ids() };
    let mut wrong = Vec::new();
    let mut tried = 0;
    for r in inventory().iter() {
        let o = if r.path.contains("{tid}") && (r.path.contains("{fid}") || r.path.contains("{vid}")) {
            &mixed_fields
        } else if r.path.contains("{gid}") && r.path.contains("{tid}") {
            &mixed_group
        } else {
            continue;
        };
        let status = request_naming(b, r.method, r.path, o).await;
        tried += 1;
        if status != StatusCode::NOT_FOUND {
            wrong.push(format!("{} {} -> {status}", r.method, o.path(r.path)));
        }
    }
    assert!(tried >= 10, "{tried}");
    assert!(wrong.is_empty(), "not 404 for another tenant's object under one's own:\n{}", wrong.join("\n"));
    // Bodies naming A's objects: the trash page's restore and purge of A's table, A's user as a
    // member of B's group (page form and API) and in B's user field.
    for action in ["restore", "purge"] {
        let r = b
            .post_form("/tables/trash", &[("table", oa.trashed_table.as_str()), ("action", action), ("confirm", "yes")])
            .await;
        assert!(
            r.status() == StatusCode::NOT_FOUND || r.status() == StatusCode::UNPROCESSABLE_ENTITY,
            "{action}: {}",
            r.status()
        );
    }
    let r = b.post_form(&format!("/admin/groups/{}/members", ob.group), &[("member", oa.user.as_str())]).await;
    assert!(r.status().is_client_error(), "{}", r.status());
    let (s, _) = b
        .send_json(
            Method::PUT,
            &format!("/api/v1/groups/{}/members", ob.group),
            serde_json::json!({"members": [oa.user]}),
        )
        .await;
    assert!(s == StatusCode::NOT_FOUND || s == StatusCode::UNPROCESSABLE_ENTITY, "{s}");
    let (_, v) = b.get_json(&format!("/api/v1/groups/{}", ob.group)).await;
    assert_eq!(v["group"]["members"].as_array().map(Vec::len), Some(0), "{v}");
    let (s, v) = b
        .post_json(&format!("/api/v1/tables/{}/records", ob.table), serde_json::json!({"values": {"担当": oa.user}}))
        .await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_user")),
        "{v}"
    );
    // A's objects are as they were: the trash holds both, the view and the field stand.
    let (_, v) = a.get_json("/api/v1/trash").await;
    assert_eq!(v["items"].as_array().map(Vec::len), Some(2), "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{}/views", oa.table)).await;
    assert_eq!(v["views"].as_array().map(Vec::len), Some(1), "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{}", oa.table)).await;
    assert_eq!(v["table"]["fields"].as_array().map(Vec::len), Some(2), "{v}");
}

/// One tenant's objects for `a_route_naming_ones_own_object_and_another_tenants…`: a table with
/// a text field, a user field and a record, a shared view, a group, a field and a table in the
/// trash (no token or session).
async fn tenant_objects(p: &daicho_testkit::Persona) -> Objects {
    let (_, v) = p.post_json("/api/v1/tables", serde_json::json!({"name": "顧客"})).await;
    let table = v["table"]["id"].as_str().unwrap().to_owned();
    let mut fields = Vec::new();
    for (name, kind) in [("名前", "text"), ("担当", "user"), ("旧欄", "text")] {
        let (s, v) = p
            .post_json(
                &format!("/api/v1/tables/{table}/fields"),
                serde_json::json!({"name": name, "kind": {"type": kind}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        fields.push(v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned());
    }
    let (s, v) =
        p.post_json(&format!("/api/v1/tables/{table}/records"), serde_json::json!({"values": {"名前": "山田"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, v) = p
        .post_json(&format!("/api/v1/tables/{table}/views"), serde_json::json!({"name": "全件", "shared": true}))
        .await;
    let view = v["view"]["id"].as_str().unwrap().to_owned();
    let (_, v) = p.post_json("/api/v1/groups", serde_json::json!({"name": "営業", "description": ""})).await;
    let group = v["group"]["id"].as_str().unwrap().to_owned();
    let (_, v) = p.get_json("/api/v1/users").await;
    let user = v["users"][0]["id"].as_str().unwrap().to_owned();
    let (s, _) = p
        .send_json(Method::DELETE, &format!("/api/v1/tables/{table}/fields/{}", fields[2]), serde_json::json!({}))
        .await;
    assert!(s.is_success(), "{s}");
    let (_, v) = p.post_json("/api/v1/tables", serde_json::json!({"name": "廃止"})).await;
    let trashed_table = v["table"]["id"].as_str().unwrap().to_owned();
    let (s, _) = p.send_json(Method::DELETE, &format!("/api/v1/tables/{trashed_table}"), serde_json::json!({})).await;
    assert!(s.is_success(), "{s}");
    Objects {
        table,
        field: fields[0].clone(),
        view,
        group,
        user,
        token: String::new(),
        session: String::new(),
        trashed_table,
        trashed_field: fields[2].clone(),
    }
}

//! The permission matrix: groups, table rights, hidden and read-only fields, row rules, "what
//! may this user do", refusals audited, and tenancy of every new route, through pages and API.

use daicho_testkit::reqwest::{Method, StatusCode};
use daicho_testkit::{Persona, TestApp};
use serde_json::{Value, json};

struct Deals {
    tid: String,
    title: String,
    amount: String,
    memo: String,
    owner: String,
    group: String,
    member_id: String,
}

/// A "deals" table with a text, a secret amount, a memo and an owner (user) field; a group with
/// the member in it and no rights yet.
async fn setup(app: &TestApp, admin: &Persona) -> Deals {
    let (s, v) = admin.post_json("/api/v1/tables", json!({"name": "案件 Deals"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for (name, kind) in [("件名", "text"), ("金額", "integer"), ("メモ", "text"), ("担当", "user")] {
        let (s, v) = admin
            .post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": name, "kind": {"type": kind}}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned());
    }
    let (_, users) = admin.get_json("/api/v1/users").await;
    let member_id = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "member1").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, g) = admin.post_json("/api/v1/groups", json!({"name": "営業 <Sales>", "description": "x"})).await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let group = g["group"]["id"].as_str().unwrap().to_owned();
    let (s, _) =
        admin.send_json(Method::PUT, &format!("/api/v1/groups/{group}/members"), json!({"members": [member_id]})).await;
    assert_eq!(s, StatusCode::OK);
    let _ = app;
    Deals {
        tid,
        title: ids[0].clone(),
        amount: ids[1].clone(),
        memo: ids[2].clone(),
        owner: ids[3].clone(),
        group,
        member_id,
    }
}

/// How many refusals the operation history holds (as the administrator `a` reads it).
async fn refusals(a: &Persona) -> usize {
    let (_, v) = a.get_json("/api/v1/audit?action=permission.denied&limit=500").await;
    v["events"].as_array().map_or(0, Vec::len)
}

async fn grant(admin: &Persona, d: &Deals, body: Value) {
    let (s, v) = admin.send_json(Method::PUT, &format!("/api/v1/groups/{}/grants/{}", d.group, d.tid), body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

async fn add(who: &Persona, d: &Deals, values: Value) -> (StatusCode, Value) {
    who.post_json(&format!("/api/v1/tables/{}/records", d.tid), json!({ "values": values })).await
}

/// What each right allows, tried through the API and the pages: (granted?, status). `rid` and
/// `rid2` are records the member may touch (one is deleted through the API, one by the page).
async fn try_all(m: &Persona, d: &Deals, rid: i64, rid2: i64) -> Vec<(&'static str, StatusCode)> {
    let t = &d.tid;
    let mut out = Vec::new();
    out.push(("view api", m.get_json(&format!("/api/v1/tables/{t}/records")).await.0));
    out.push(("view page", m.get(&format!("/tables/{t}")).await.status()));
    out.push(("create api", add(m, d, json!({"件名": "new"})).await.0));
    out.push((
        "create page",
        m.post_form(&format!("/tables/{t}/records"), &[(d.title.as_str(), "from page")]).await.status(),
    ));
    out.push((
        "edit api",
        m.send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{t}/records/{rid}"),
            json!({"version": 1, "values": {"件名": "e"}}),
        )
        .await
        .0,
    ));
    out.push((
        "import api",
        m.client
            .post(m.url(&format!("/api/v1/tables/{t}/import")))
            .header("x-csrf-token", &m.csrf)
            .header("content-type", "text/csv")
            .body("件名\nimported\n")
            .send()
            .await
            .unwrap()
            .status(),
    ));
    out.push((
        "edit page",
        m.post_form(&format!("/tables/{t}/records/{rid2}"), &[("version", "1"), (d.title.as_str(), "edited by page")])
            .await
            .status(),
    ));
    out.push(("import page", m.get(&format!("/tables/{t}/import")).await.status()));
    let upload = daicho_testkit::reqwest::multipart::Form::new()
        .text("csrf", m.csrf.clone())
        .part(
            "file",
            daicho_testkit::reqwest::multipart::Part::bytes(
                "件名
uploaded
"
                .as_bytes()
                .to_vec(),
            )
            .file_name("u.csv"),
        )
        .text("encoding", "auto")
        .text("key", "");
    out.push((
        "import page upload",
        m.client.post(m.url(&format!("/tables/{t}/import"))).multipart(upload).send().await.unwrap().status(),
    ));
    out.push(("export api", m.get(&format!("/api/v1/tables/{t}/export.csv")).await.status()));
    out.push(("export page", m.get(&format!("/tables/{t}/export.csv")).await.status()));
    out.push((
        "design api",
        m.post_json(
            &format!("/api/v1/tables/{t}/fields"),
            json!({"name": format!("f{rid}"), "kind": {"type": "text"}}),
        )
        .await
        .0,
    ));
    out.push((
        "design page",
        m.post_form(&format!("/tables/{t}/fields"), &[("name", &format!("p{rid}")), ("kind", "text")]).await.status(),
    ));
    out.push((
        "delete api",
        m.send_json(Method::DELETE, &format!("/api/v1/tables/{t}/records/{rid}"), json!({})).await.0,
    ));
    out.push((
        "delete page",
        m.post_form(&format!("/tables/{t}/records/{rid2}/delete"), &[("confirm", "yes")]).await.status(),
    ));
    out
}

fn allowed(op: &str, right: &str) -> bool {
    let needed = op.split(' ').next().unwrap();
    needed == right || (needed == "view" && right != "create" && right != "import" && right != "design")
}

#[tokio::test]
async fn every_right_is_granted_and_refused_through_pages_and_api() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let d = setup(&app, &cast.admin).await;
    for right in ["view", "create", "edit", "delete", "import", "export", "design"] {
        // Grant the right (with view where it needs it), on a fresh record the member may touch.
        let rights: Vec<&str> =
            if ["edit", "delete", "export"].contains(&right) { vec!["view", right] } else { vec![right] };
        grant(&cast.admin, &d, json!({"rights": rights})).await;
        let (s, v) = add(&cast.admin, &d, json!({"件名": format!("for {right}")})).await;
        assert_eq!(s, StatusCode::CREATED);
        let rid = v["record"]["id"].as_i64().unwrap();
        let (s, v) = add(&cast.admin, &d, json!({"件名": format!("for {right}, by page")})).await;
        assert_eq!(s, StatusCode::CREATED);
        let rid2 = v["record"]["id"].as_i64().unwrap();
        let ops = try_all(&cast.member, &d, rid, rid2).await;
        assert_eq!(ops.len(), 15);
        for (op, status) in ops {
            let ok = status.is_success() || status == StatusCode::SEE_OTHER;
            assert_eq!(ok, allowed(op, right), "right {right}: {op} -> {status}");
            if !ok {
                assert_eq!(status, StatusCode::FORBIDDEN, "right {right}: {op} is refused with 403");
            }
        }
    }
    // Refusals are in the operation history, with what was needed.
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=permission.denied&limit=500").await;
    let details: Vec<&str> = v["events"].as_array().unwrap().iter().map(|e| e["details"].as_str().unwrap()).collect();
    for r in ["view", "create", "edit", "delete", "import", "export", "design"] {
        assert!(details.iter().any(|x| x.starts_with(&format!("needs {r} on table:"))), "{r}: {details:?}");
    }
    // No rights at all: the table is not there for the member.
    grant(&cast.admin, &d, json!({"rights": []})).await;
    assert_eq!(cast.member.get_json(&format!("/api/v1/tables/{}", d.tid)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(cast.member.get(&format!("/tables/{}", d.tid)).await.status(), StatusCode::NOT_FOUND);
    let (_, v) = cast.member.get_json("/api/v1/tables").await;
    assert!(v["tables"].as_array().unwrap().is_empty());
    // A link on another site that opens the table in the member's browser: refused the same,
    // and the history says where the request came from rather than blaming the member alone.
    let r = cast
        .member
        .client
        .get(cast.member.url(&format!("/tables/{}", d.tid)))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=permission.denied&limit=1").await;
    let last = v["events"][0]["details"].as_str().unwrap();
    assert!(last.ends_with(" (the browser said it was opened from another site)"), "{last}");
}

#[tokio::test]
async fn hidden_and_read_only_fields_apply_to_grid_record_api_export_and_search() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let d = setup(&app, &cast.admin).await;
    let (_, v) = add(&cast.admin, &d, json!({"件名": "秘密の案件", "金額": 987654321, "メモ": "社内メモ"})).await;
    let rid = v["record"]["id"].as_i64().unwrap();
    let mut fields = serde_json::Map::new();
    fields.insert(d.amount.clone(), json!("hidden"));
    fields.insert(d.memo.clone(), json!("read_only"));
    grant(&cast.admin, &d, json!({"rights": ["view", "create", "edit", "export"], "fields": fields})).await;
    let m = &cast.member;
    let t = &d.tid;
    // API: the hidden field is absent from the table, the list and the record.
    let (_, v) = m.get_json(&format!("/api/v1/tables/{t}")).await;
    let names: Vec<&str> =
        v["table"]["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["件名", "メモ", "担当"]);
    assert_eq!(v["table"]["read_only_fields"], json!([d.memo]));
    let (_, v) = m.get_json(&format!("/api/v1/tables/{t}/records")).await;
    assert!(v["records"][0]["values"].get(&d.amount).is_none(), "{v}");
    assert_eq!(v["records"][0]["values"][&d.memo], "社内メモ");
    let (_, v) = m.get_json(&format!("/api/v1/tables/{t}/records/{rid}")).await;
    assert!(v["record"]["values"].get(&d.amount).is_none());
    assert!(!v.to_string().contains("987654321"));
    // Grid page, record page and export do not show it either.
    for path in [format!("/tables/{t}"), format!("/tables/{t}/records/{rid}"), format!("/tables/{t}/export.csv")] {
        let body = m.get(&path).await.text().await.unwrap();
        assert!(!body.contains("987654321") && !body.contains("金額"), "{path}");
    }
    // The record page shows the read-only field as text, not as an input.
    let page = m.get(&format!("/tables/{t}/records/{rid}")).await.text().await.unwrap();
    assert!(page.contains("社内メモ") && !page.contains(&format!("name=\"{}\"", d.memo)));
    // Filtering, sorting or searching on the hidden field cannot probe it.
    assert_eq!(
        m.get_json(&format!("/api/v1/tables/{t}/records?filter.eq.{}=987654321", d.amount)).await.1["error"]["fields"]
            [0]["code"],
        "unknown_field"
    );
    assert_eq!(
        m.get_json(&format!("/api/v1/tables/{t}/records?sort={}", d.amount)).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // A hidden text value is not found by keyword search; a visible one is.
    let mut f2 = serde_json::Map::new();
    f2.insert(d.memo.clone(), json!("hidden"));
    grant(&cast.admin, &d, json!({"rights": ["view", "create", "edit", "export"], "fields": f2})).await;
    let (_, v) = m.get_json(&format!("/api/v1/tables/{t}/records?q=社内メモ")).await;
    assert!(v["records"].as_array().unwrap().is_empty(), "hidden text is not searchable: {v}");
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{t}/records?q=社内メモ")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 1, "the admin finds it");
    let (_, v) = m.get_json(&format!("/api/v1/tables/{t}/records?q=秘密の")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 1);
    // Writing a read-only or hidden field is refused by name, on the API and on the page.
    grant(&cast.admin, &d, json!({"rights": ["view", "create", "edit", "export"], "fields": fields})).await;
    let (s, v) = m
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{t}/records/{rid}"),
            json!({"version": 1, "values": {"メモ": "x"}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["fields"][0]["code"], "read_only");
    let (s, v) = add(m, &d, json!({"件名": "a", "金額": 1})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["fields"][0]["code"], "unknown_field");
    let r = m
        .post_form(
            &format!("/tables/{t}/records/{rid}"),
            &[("version", "1"), (d.title.as_str(), "ok"), (d.memo.as_str(), "tampered")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "a hidden-field tamper is refused");
    // An allowed edit keeps what the member may not touch.
    let (s, v) = m
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{t}/records/{rid}"),
            json!({"version": 1, "values": {"件名": "更新"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{t}/records/{rid}")).await;
    assert_eq!(v["record"]["values"][&d.amount], 987654321);
    assert_eq!(v["record"]["values"][&d.memo], "社内メモ");
    // Import cannot write them either.
    grant(&cast.admin, &d, json!({"rights": ["view", "import"], "fields": fields})).await;
    let r = m
        .client
        .post(m.url(&format!("/api/v1/tables/{t}/import")))
        .header("x-csrf-token", &m.csrf)
        .header("content-type", "text/csv")
        .body("件名,メモ\na,b\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn row_rules_limit_records_to_their_creator_or_their_owner() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let d = setup(&app, &cast.admin).await;
    let t = &d.tid;
    let m = &cast.member;
    grant(
        &cast.admin,
        &d,
        json!({"rights": ["view", "create", "edit", "delete", "export"], "rows": {"type": "created_by_me"}}),
    )
    .await;
    let (_, v) = add(&cast.admin, &d, json!({"件名": "admin's"})).await;
    let theirs = v["record"]["id"].as_i64().unwrap();
    let (s, v) = add(m, &d, json!({"件名": "mine"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let mine = v["record"]["id"].as_i64().unwrap();
    let (_, v) = m.get_json(&format!("/api/v1/tables/{t}/records")).await;
    let ids: Vec<i64> = v["records"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [mine]);
    assert_eq!(m.get_json(&format!("/api/v1/tables/{t}/records/{theirs}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(m.get(&format!("/tables/{t}/records/{theirs}")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        m.send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{t}/records/{theirs}"),
            json!({"version": 1, "values": {"件名": "x"}})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        m.send_json(Method::DELETE, &format!("/api/v1/tables/{t}/records/{theirs}"), json!({})).await.0,
        StatusCode::NOT_FOUND
    );
    let csv = m.get(&format!("/api/v1/tables/{t}/export.csv")).await.text().await.unwrap();
    assert!(csv.contains("mine") && !csv.contains("admin's"), "{csv}");
    let (_, v) = m.get_json(&format!("/api/v1/tables/{t}/records?q=admin")).await;
    assert!(v["records"].as_array().unwrap().is_empty(), "search obeys row rules");
    let grid = m.get(&format!("/tables/{t}")).await.text().await.unwrap();
    assert!(grid.contains("mine") && !grid.contains("admin&#39;s") && !grid.contains("admin's"), "the grid page too");
    for history in
        [format!("/tables/{t}/records/{theirs}/history"), format!("/api/v1/tables/{t}/records/{theirs}/history")]
    {
        assert_eq!(m.get(&history).await.status(), StatusCode::NOT_FOUND, "{history}");
    }
    assert_eq!(m.get(&format!("/tables/{t}/records/{mine}/history")).await.status(), StatusCode::OK);
    // Each of those tries (forced browsing by record number) is in the operation history.
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=permission.denied&limit=500").await;
    let probes = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"].as_str().unwrap_or("").starts_with(&format!("record:{theirs} of table:{t}")))
        .count();
    assert!(probes >= 5, "{v}");
    // Viewing everything but editing only one's own: the other record is read-only.
    let g2 = cast.admin.post_json("/api/v1/groups", json!({"name": "viewers"})).await.1["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    cast.admin.send_json(Method::PUT, &format!("/api/v1/groups/{g2}/members"), json!({"members": [d.member_id]})).await;
    cast.admin.send_json(Method::PUT, &format!("/api/v1/groups/{g2}/grants/{t}"), json!({"rights": ["view"]})).await;
    assert_eq!(m.get_json(&format!("/api/v1/tables/{t}/records/{theirs}")).await.0, StatusCode::OK);
    let (s, _) = m
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{t}/records/{theirs}"),
            json!({"version": 1, "values": {"件名": "x"}}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let page = m.get(&format!("/tables/{t}/records/{theirs}")).await.text().await.unwrap();
    assert!(!page.contains(&format!("/records/{theirs}/delete")), "no delete form");
    assert!(!page.contains("type=\"submit\" class=\"primary\""), "no save button");
    // "User is me": records whose owner field is the member.
    cast.admin.send_json(Method::DELETE, &format!("/api/v1/groups/{g2}"), json!({})).await;
    grant(&cast.admin, &d, json!({"rights": ["view"], "rows": {"type": "user_is_me", "field": d.owner}})).await;
    let (s, v) = add(&cast.admin, &d, json!({"件名": "assigned", "担当": d.member_id})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, v) = m.get_json(&format!("/api/v1/tables/{t}/records")).await;
    let titles: Vec<&str> =
        v["records"].as_array().unwrap().iter().map(|r| r["values"][&d.title].as_str().unwrap()).collect();
    assert_eq!(titles, ["assigned"]);
    // A user field must name a user of the tenant, and a row rule a user field.
    let (s, v) = add(&cast.admin, &d, json!({"件名": "x", "担当": "00000000-0000-0000-0000-000000000000"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["fields"][0]["code"], "unknown_user");
    let (s, _) = cast
        .admin
        .send_json(
            Method::PUT,
            &format!("/api/v1/groups/{}/grants/{t}", d.group),
            json!({"rights": ["view"], "rows": {"type": "user_is_me", "field": d.title}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_admin_sees_what_a_user_may_do_and_changes_take_effect_at_once() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let d = setup(&app, &cast.admin).await;
    let mut fields = serde_json::Map::new();
    fields.insert(d.amount.clone(), json!("hidden"));
    fields.insert(d.memo.clone(), json!("read_only"));
    grant(&cast.admin, &d, json!({"rights": ["view", "edit"], "rows": {"type": "created_by_me"}, "fields": fields}))
        .await;
    let (s, v) = cast.admin.get_json(&format!("/api/v1/users/{}/access", d.member_id)).await;
    assert_eq!(s, StatusCode::OK);
    let row = v["tables"].as_array().unwrap().iter().find(|r| r["table"] == d.tid.as_str()).unwrap();
    assert_eq!(row["rights"], json!(["view", "edit"]));
    assert_eq!(row["rows"], "created_by_me");
    assert_eq!(row["hidden_fields"], json!(["金額"]));
    assert_eq!(row["read_only_fields"], json!(["メモ"]));
    let page = cast.admin.get(&format!("/admin/users/{}/access", d.member_id)).await.text().await.unwrap();
    assert!(page.contains("案件 Deals") && page.contains("金額"));
    assert!(page.contains("営業 &") && !page.contains("<Sales>"), "escaped");
    // The matrix page shows the grant; saving it from the form changes it.
    let page = cast.admin.get(&format!("/admin/groups/{}", d.group)).await.text().await.unwrap();
    assert!(page.contains(&format!("name=\"right.{}\" value=\"edit\"", d.tid)));
    let r = cast
        .admin
        .post_form(
            &format!("/admin/groups/{}/grants", d.group),
            &[(&format!("right.{}", d.tid), "view"), (&format!("rows.{}", d.tid), "all")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, v) = cast.admin.get_json(&format!("/api/v1/users/{}/access", d.member_id)).await;
    let row = v["tables"].as_array().unwrap().iter().find(|r| r["table"] == d.tid.as_str()).unwrap();
    assert_eq!(row["rights"], json!(["view"]));
    assert_eq!(row["rows"], "all");
    assert_eq!(row["hidden_fields"], json!(["金額"]), "field rules kept");
    // Field rules from the table page.
    let r = cast
        .admin
        .post_form(
            &format!("/admin/groups/{}/tables/{}", d.group, d.tid),
            &[("rows", "all"), (&format!("field.{}", d.amount), "editable")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, v) = cast.member.get_json(&format!("/api/v1/tables/{}", d.tid)).await;
    assert_eq!(v["table"]["fields"].as_array().unwrap().len(), 4);
    // Removing the member from the group takes effect on their next request.
    let r = cast.admin.post_form(&format!("/admin/groups/{}/members", d.group), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(cast.member.get_json(&format!("/api/v1/tables/{}", d.tid)).await.0, StatusCode::NOT_FOUND);
    // A disabled user is no longer offered as a member; a disabled member stays listed, ticked,
    // so that they can be taken out.
    let checkbox = format!("name=\"member\" value=\"{}\"", d.member_id);
    let group_page = || async { cast.admin.get(&format!("/admin/groups/{}", d.group)).await.text().await.unwrap() };
    assert!(group_page().await.contains(&format!("{checkbox}>")));
    let members = format!("/admin/groups/{}/members", d.group);
    assert!(cast.admin.post_form(&members, &[("member", &d.member_id)]).await.status().is_redirection());
    let (s, _) = cast.admin.post_json(&format!("/api/v1/users/{}/disable", d.member_id), json!({})).await;
    assert!(s.is_success(), "{s}");
    assert!(group_page().await.contains(&format!("{checkbox} checked>")), "a disabled member is listed");
    assert!(cast.admin.post_form(&members, &[]).await.status().is_redirection());
    assert!(!group_page().await.contains(&checkbox), "a disabled user is not offered");
    // Every change to the matrix is in the operation history.
    let (_, v) = cast.admin.get_json("/api/v1/audit?limit=500").await;
    let actions: Vec<&str> = v["events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in ["group.create", "group.members", "group.grant"] {
        assert!(actions.contains(&a), "{a}");
    }
}

#[tokio::test]
async fn groups_and_grants_are_per_tenant_and_admin_only() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let d = setup(&app, &cast.admin).await;
    let b = &cast.other_admin;
    let g = &d.group;
    assert_eq!(b.get_json(&format!("/api/v1/groups/{g}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(b.get(&format!("/admin/groups/{g}")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(b.send_json(Method::DELETE, &format!("/api/v1/groups/{g}"), json!({})).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        b.send_json(Method::PATCH, &format!("/api/v1/groups/{g}"), json!({"name": "stolen"})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.send_json(Method::PUT, &format!("/api/v1/groups/{g}/members"), json!({"members": []})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(b.get_json(&format!("/api/v1/users/{}/access", d.member_id)).await.0, StatusCode::NOT_FOUND);
    assert!(b.get_json("/api/v1/groups").await.1["groups"].as_array().unwrap().is_empty());
    // B's own group cannot be granted A's table or given A's users.
    let bg = b.post_json("/api/v1/groups", json!({"name": "b"})).await.1["group"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        b.send_json(Method::PUT, &format!("/api/v1/groups/{bg}/grants/{}", d.tid), json!({"rights": ["view"]})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.send_json(Method::PUT, &format!("/api/v1/groups/{bg}/members"), json!({"members": [d.member_id]})).await.0,
        StatusCode::NOT_FOUND
    );
    // Names are unique per tenant; hostile names are kept and escaped.
    let (s, v) = cast.admin.post_json("/api/v1/groups", json!({"name": "営業 <Sales>"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let page = cast.admin.get("/admin/groups").await.text().await.unwrap();
    assert!(page.contains("営業 &") && !page.contains("<Sales>"));
    // Members cannot manage groups.
    assert_eq!(cast.member.get_json("/api/v1/groups").await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        cast.member
            .send_json(Method::PUT, &format!("/api/v1/groups/{g}/grants/{}", d.tid), json!({"rights": ["view"]}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_records_history_shows_who_changed_what_within_the_readers_field_and_row_rules() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let d = setup(&app, &cast.admin).await;
    let t = &d.tid;
    let (_, v) = add(&cast.admin, &d, json!({"件名": "最初", "金額": 100})).await;
    let rid = v["record"]["id"].as_i64().unwrap();
    let path = format!("/api/v1/tables/{t}/records/{rid}");
    let (s, _) = cast
        .admin
        .send_json(Method::PATCH, &path, json!({"version": 1, "values": {"件名": "二番目", "金額": 200}}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = cast.admin.send_json(Method::PATCH, &path, json!({"version": 2, "values": {"金額": 300}})).await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{t}/records/{rid}/history")).await;
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{v}");
    assert_eq!(entries[0]["version"], 3);
    assert_eq!(entries[0]["changes"], json!([{"field": d.amount, "before": 200, "after": 300}]));
    assert_eq!(entries[1]["actor_login"], "admin");
    // The member does not see the amount: its changes are left out, and so is an entry that
    // changed nothing else.
    let mut fields = serde_json::Map::new();
    fields.insert(d.amount.clone(), json!("hidden"));
    grant(&cast.admin, &d, json!({"rights": ["view", "edit"], "fields": fields})).await;
    let (s, v) = cast.member.get_json(&format!("/api/v1/tables/{t}/records/{rid}/history")).await;
    assert_eq!(s, StatusCode::OK);
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["changes"], json!([{"field": d.title, "before": "最初", "after": "二番目"}]));
    let page = cast.member.get(&format!("/tables/{t}/records/{rid}/history")).await.text().await.unwrap();
    // (">300<": a bare "300" could occur in the page's random request id.)
    assert!(page.contains("最初") && page.contains("二番目") && !page.contains(">300<") && !page.contains("金額"));
    // Row rules: a record the member may not see has no history for them.
    grant(&cast.admin, &d, json!({"rights": ["view"], "rows": {"type": "created_by_me"}})).await;
    assert_eq!(
        cast.member.get_json(&format!("/api/v1/tables/{t}/records/{rid}/history")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        cast.other_admin.get_json(&format!("/api/v1/tables/{t}/records/{rid}/history")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bulk_edit_and_delete_are_all_or_nothing_within_the_users_rules_and_recorded() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let d = setup(&app, &cast.admin).await;
    let t = &d.tid;
    let m = &cast.member;
    let mut fields = serde_json::Map::new();
    fields.insert(d.memo.clone(), json!("read_only"));
    grant(
        &cast.admin,
        &d,
        json!({"rights": ["view", "create", "edit", "delete"], "rows": {"type": "created_by_me"}, "fields": fields}),
    )
    .await;
    let (_, v) = add(&cast.admin, &d, json!({"件名": "admin's"})).await;
    let theirs = v["record"]["id"].as_i64().unwrap();
    let mut mine = Vec::new();
    for i in 0..3 {
        let (_, v) = add(m, &d, json!({"件名": format!("mine {i}")})).await;
        mine.push(v["record"]["id"].as_i64().unwrap());
    }
    let bulk = |op: &'static str| format!("/api/v1/tables/{t}/records/bulk-{op}");
    // One record not covered, and not visible either: nothing changes, and the answer is the
    // one a record that does not exist gets (404), as for a single record.
    let (s, _) = m.post_json(&bulk("update"), json!({"ids": [mine[0], theirs], "values": {"件名": "x"}})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = m.get_json(&format!("/api/v1/tables/{t}/records/{}", mine[0])).await;
    assert_eq!(v["record"]["values"][&d.title], "mine 0", "all or nothing");
    let (s, _) = m.post_json(&bulk("delete"), json!({"ids": [mine[0], theirs]})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = m.post_json(&bulk("delete"), json!({"ids": [mine[0], 99_999]})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A number no record can have is the same 404.
    let (s, _) = m.post_json(&bulk("delete"), json!({"ids": [mine[0], -1]})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Visible through a second group that views every record, but not the member's to change:
    // 403, nothing changes, and the refusals are recorded.
    let g2 = cast.admin.post_json("/api/v1/groups", json!({"name": "閲覧"})).await.1["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    cast.admin.send_json(Method::PUT, &format!("/api/v1/groups/{g2}/members"), json!({"members": [d.member_id]})).await;
    cast.admin.send_json(Method::PUT, &format!("/api/v1/groups/{g2}/grants/{t}"), json!({"rights": ["view"]})).await;
    let (s, _) = m.post_json(&bulk("update"), json!({"ids": [mine[0], theirs], "values": {"件名": "x"}})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = m.post_json(&bulk("delete"), json!({"ids": [mine[0], theirs]})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{t}/records/{theirs}")).await;
    assert_eq!(v["record"]["values"][&d.title], "admin's");
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=permission.denied").await;
    let refusals = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            let d = e["details"].as_str().unwrap_or("");
            d.starts_with("bulk ") || d.starts_with("record:-1 of table:")
        })
        .count();
    assert_eq!(refusals, 6, "every refused bulk operation is recorded, whether its records exist or not: {v}");
    cast.admin.send_json(Method::DELETE, &format!("/api/v1/groups/{g2}"), json!({})).await;
    // Read-only fields cannot be bulk-set; nothing selected or too many is explained.
    let (s, v) = m.post_json(&bulk("update"), json!({"ids": [mine[0]], "values": {"メモ": "x"}})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["fields"][0]["code"], "read_only");
    let (_, v) = m.post_json(&bulk("delete"), json!({"ids": []})).await;
    assert_eq!(v["error"]["fields"][0]["code"], "nothing_selected");
    let many: Vec<i64> = (1..=1001).collect();
    let (_, v) = m.post_json(&bulk("delete"), json!({"ids": many})).await;
    assert_eq!(v["error"]["fields"][0]["code"], "too_many_records");
    // By ids, and by the grid's query (which sees only the member's rows).
    let (s, v) = m.post_json(&bulk("update"), json!({"ids": [mine[0], mine[1]], "values": {"件名": "done"}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["updated"], 2);
    let (_, h) = m.get_json(&format!("/api/v1/tables/{t}/records/{}/history", mine[1])).await;
    assert_eq!(h["entries"][0]["changes"][0]["after"], "done");
    // The operation history names who edited which records, and what.
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=record.update&limit=20").await;
    let bulk_edit = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["details"].as_str().unwrap().contains("bulk edit of 2 records"))
        .unwrap_or_else(|| panic!("no bulk edit event: {v}"));
    assert_eq!(bulk_edit["actor_login"], "member1");
    assert_eq!(bulk_edit["actor_id"], d.member_id.as_str());
    let details = bulk_edit["details"].as_str().unwrap();
    assert!(details.contains(&mine[0].to_string()) && details.contains(&mine[1].to_string()), "{details}");
    assert!(details.contains("done"), "{details}");
    let (s, v) = m.post_json(&bulk("delete"), json!({"query": format!("filter.eq.{}=done", d.title)})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["deleted"], 2);
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{t}/records")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 2, "the admin's record and mine 2 remain");
    // The grid's bulk form.
    let (_, v) = add(&cast.admin, &d, json!({"件名": "p1"})).await;
    let p1 = v["record"]["id"].as_i64().unwrap().to_string();
    let r = cast
        .admin
        .post_form(
            &format!("/tables/{t}/bulk"),
            &[("id", &p1), ("action", "set"), ("field", &d.title), ("value", "p2")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = cast.admin.post_form(&format!("/tables/{t}/bulk"), &[("id", &p1), ("action", "delete")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "deleting asks for confirmation");
    grant(&cast.admin, &d, json!({"rights": ["view", "edit"]})).await;
    let r = cast.member.post_form(&format!("/tables/{t}/bulk"), &[("id", &p1), ("action", "delete")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "someone who may not delete is not asked to confirm");
    let r = cast
        .admin
        .post_form(&format!("/tables/{t}/bulk"), &[("id", &p1), ("action", "delete"), ("confirm", "yes")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The grid says how many records went.
    let back = crate::location(&r);
    assert!(back.ends_with("done=bulk_deleted&n=1"), "{back}");
    let page = cast.admin.get(&back).await.text().await.unwrap();
    assert!(page.contains("Records deleted.") && page.contains("Records: 1."), "{page}");
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=record.delete&limit=10").await;
    let bulk_deletes: Vec<(&str, &str)> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"].as_str().unwrap().starts_with("bulk delete of"))
        .map(|e| (e["actor_login"].as_str().unwrap(), e["details"].as_str().unwrap()))
        .collect();
    assert_eq!(bulk_deletes.len(), 2, "the admin's (by the grid's form) and the member's (by query): {v}");
    assert_eq!(bulk_deletes[0], ("admin", format!("bulk delete of 1 records (ids): {p1}").as_str()));
    let by_query = format!("bulk delete of 2 records (query filter.eq.{}=done): ", d.title);
    assert!(bulk_deletes[1].0 == "member1" && bulk_deletes[1].1.starts_with(&by_query), "{bulk_deletes:?}");
    assert_eq!(cast.other_admin.post_json(&bulk("delete"), json!({"ids": [theirs]})).await.0, StatusCode::NOT_FOUND);
}

/// A bulk operation by query selects exactly what the query says, among the records the acting
/// right covers: a query that narrows nothing, names an unknown key, or comes with ids is
/// refused (a typo never means "every record"); a saved view selects by its filters; "every
/// record" must be said (`all`), and then means those the user may change, not all they see.
#[tokio::test]
async fn a_bulk_query_selects_only_what_it_says_among_the_records_the_right_covers() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let d = setup(&app, &cast.admin).await;
    let (t, m) = (&d.tid, &cast.member);
    // The member views every record and edits or deletes only their own.
    grant(&cast.admin, &d, json!({"rights": ["view", "create", "edit", "delete"], "rows": {"type": "created_by_me"}}))
        .await;
    let g2 = cast.admin.post_json("/api/v1/groups", json!({"name": "閲覧"})).await.1["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    cast.admin.send_json(Method::PUT, &format!("/api/v1/groups/{g2}/members"), json!({"members": [d.member_id]})).await;
    cast.admin.send_json(Method::PUT, &format!("/api/v1/groups/{g2}/grants/{t}"), json!({"rights": ["view"]})).await;
    for (title, memo) in [("admin a", "メモあり"), ("admin b", "")] {
        add(&cast.admin, &d, json!({"件名": title, "メモ": memo})).await;
    }
    let mut mine = Vec::new();
    for title in ["mine a", "mine b", "mine c"] {
        mine.push(add(m, &d, json!({"件名": title})).await.1["record"]["id"].as_i64().unwrap());
    }
    let bulk = |op: &'static str| format!("/api/v1/tables/{t}/records/bulk-{op}");
    let count = || async {
        cast.admin.get_json(&format!("/api/v1/tables/{t}/records")).await.1["records"].as_array().unwrap().len()
    };
    let refused = |body: Value, code: &'static str| {
        let url = bulk("delete");
        async move {
            let (s, v) = m.post_json(&url, body).await;
            assert_eq!(
                (s, v["error"]["fields"][0]["code"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
                "{v}"
            );
        }
    };
    refused(json!({"query": ""}), "selects_every_record").await;
    refused(json!({"query": "sort=件名&dir=asc"}), "selects_every_record").await;
    refused(json!({"query": "status=done"}), "unknown_parameter").await;
    refused(json!({"ids": [mine[0]], "query": "q=mine"}), "ids_or_query").await;
    refused(json!({"ids": [mine[0]], "all": true}), "ids_or_query").await;
    assert_eq!(count().await, 5, "nothing deleted");
    // A saved view selects by its own filters.
    let (s, v) = m
        .post_json(
            &format!("/api/v1/tables/{t}/views"),
            json!({"name": "a", "filters": [{"field": "件名", "op": "contains", "value": "a"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let view = v["view"]["id"].as_str().unwrap().to_owned();
    let (s, v) =
        m.post_json(&bulk("update"), json!({"query": format!("view={view}"), "values": {"件名": "mine a2"}})).await;
    assert_eq!((s, &v["updated"]), (StatusCode::OK, &json!(1)), "only the member's own record of the view: {v}");
    let (_, v) = m.get_json(&format!("/api/v1/tables/{t}/records/{}", mine[0])).await;
    assert_eq!(v["record"]["values"][&d.title], "mine a2");
    // Every record, said explicitly: those the member may delete, the admin's left alone.
    let (s, v) = m.post_json(&bulk("delete"), json!({"all": true})).await;
    assert_eq!((s, &v["deleted"]), (StatusCode::OK, &json!(3)), "{v}");
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{t}/records?sort=件名&dir=asc")).await;
    let left: Vec<&str> =
        v["records"].as_array().unwrap().iter().map(|r| r["values"][&d.title].as_str().unwrap()).collect();
    assert_eq!(left, ["admin a", "admin b"]);
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=record.delete&limit=1").await;
    let details = v["events"][0]["details"].as_str().unwrap();
    let ids = format!("{}-{}", mine[0], mine[2]);
    assert_eq!(details, format!("bulk delete of 3 records (every record): {ids}"));
    // And each record with its values, as a single delete records them (its history is gone).
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=record.delete&limit=10").await;
    let each: Vec<(&str, &str)> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"].as_str().unwrap().starts_with("in a bulk delete: "))
        .map(|e| (e["target"].as_str().unwrap(), e["details"].as_str().unwrap()))
        .collect();
    assert_eq!(each.len(), 3, "{v}");
    let b = each.iter().find(|(target, _)| target.ends_with(&format!("record:{}", mine[1]))).unwrap();
    assert!(b.1.contains("mine b"), "{b:?}");
    // The grid's "every record matching" box with an "is empty" filter (a blank value):
    // only the records it matches.
    let empty_memo = format!("filter.empty.{}=&sort=件名", d.memo);
    let r = cast
        .admin
        .post_form(
            &format!("/tables/{t}/bulk"),
            &[("all_matching", "on"), ("query", &empty_memo), ("action", "delete"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(count().await, 1, "admin a, whose memo is not empty, stays");
    let (s, v) = m.post_json(&bulk("delete"), json!({"query": format!("filter.empty.{}=", d.memo)})).await;
    assert_eq!(
        (s, &v["error"]["fields"][0]["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("nothing_selected")),
        "{v}"
    );
    // The grid's "every record matching" box, with no search: every record, as it says.
    let r = cast
        .admin
        .post_form(
            &format!("/tables/{t}/bulk"),
            &[("all_matching", "on"), ("query", "sort=件名"), ("action", "delete"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(count().await, 0);
}

#[tokio::test]
async fn link_fields_show_the_linked_record_only_to_users_who_may_see_it() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "顧客"})).await;
    let cust = v["table"]["id"].as_str().unwrap().to_owned();
    let (_, v) = a
        .post_json(&format!("/api/v1/tables/{cust}/fields"), json!({"name": "会社名", "kind": {"type": "text"}}))
        .await;
    let company = v["table"]["fields"][0]["id"].as_str().unwrap().to_owned();
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "受注"})).await;
    let orders = v["table"]["id"].as_str().unwrap().to_owned();
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{orders}/fields"),
            json!({"name": "顧客", "kind": {"type": "link", "table": cust, "show": company}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let link = v["table"]["fields"][0]["id"].as_str().unwrap().to_owned();
    let (_, v) =
        a.post_json(&format!("/api/v1/tables/{cust}/records"), json!({"values": {"会社名": "株式会社リンク"}})).await;
    let cid = v["record"]["id"].as_i64().unwrap();
    let (s, v) = a.post_json(&format!("/api/v1/tables/{orders}/records"), json!({"values": {"顧客": cid}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let oid = v["record"]["id"].as_i64().unwrap();
    let (_, v) = a.get_json(&format!("/api/v1/tables/{orders}/records/{oid}")).await;
    assert_eq!(v["record"]["values"][&link], cid);
    assert_eq!(v["record"]["lookups"][&link], "株式会社リンク");
    let page = a.get(&format!("/tables/{orders}")).await.text().await.unwrap();
    assert!(page.contains("株式会社リンク"));
    let form = a.get(&format!("/tables/{orders}/records/{oid}")).await.text().await.unwrap();
    assert!(form.contains(&format!("<option value=\"{cid}\" selected>")), "the form offers the customers");
    // A record that does not exist cannot be linked; nor can another tenant's table.
    let (s, v) = a.post_json(&format!("/api/v1/tables/{orders}/records"), json!({"values": {"顧客": 9999}})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["fields"][0]["code"], "unknown_record");
    // (Recorded: a link is a way to probe another table's record numbers.)
    let (_, v) = a.get_json("/api/v1/audit?action=permission.denied").await;
    let probe = format!("link to record:9999 of table:{cust}: not found or outside the reader's rows");
    assert_eq!(v["events"][0]["details"], json!(probe), "{v}");
    let (_, v) = cast.other_admin.post_json("/api/v1/tables", json!({"name": "B"})).await;
    let btable = v["table"]["id"].as_str().unwrap();
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{orders}/fields"),
            json!({"name": "x", "kind": {"type": "link", "table": btable, "show": company}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["fields"][0]["code"], "unknown_table");
    // A member who may use orders but not customers sees the link, not the customer.
    let (_, users) = a.get_json("/api/v1/users").await;
    let uid = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "member1").unwrap()["id"].clone();
    let gid = a.post_json("/api/v1/groups", json!({"name": "g"})).await.1["group"]["id"].as_str().unwrap().to_owned();
    a.send_json(Method::PUT, &format!("/api/v1/groups/{gid}/members"), json!({"members": [uid]})).await;
    a.send_json(Method::PUT, &format!("/api/v1/groups/{gid}/grants/{orders}"), json!({"rights": ["view", "create"]}))
        .await;
    let m = &cast.member;
    let (_, v) = m.get_json(&format!("/api/v1/tables/{orders}/records/{oid}")).await;
    assert!(v["record"].get("lookups").is_none(), "{v}");
    assert!(!m.get(&format!("/tables/{orders}")).await.text().await.unwrap().contains("株式会社リンク"));
    assert!(!m.get(&format!("/tables/{orders}/records/{oid}")).await.text().await.unwrap().contains("株式会社リンク"));
    // Looking at orders asks nothing of customers: no refusal is recorded for the lookups.
    let (_, v) = a.get_json("/api/v1/audit?action=permission.denied&login=member1").await;
    assert!(!v.to_string().contains(&cust), "{v}");
    let (s, v) = m.post_json(&format!("/api/v1/tables/{orders}/records"), json!({"values": {"顧客": cid}})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "linking reads the target: {v}");
    let (_, v) = a.get_json("/api/v1/audit?action=permission.denied").await;
    assert!(v.to_string().contains(&format!("no right on table:{cust}")), "linking is asking: recorded {v}");
    // With view on customers, but the shown field hidden: still no name.
    let mut hidden = serde_json::Map::new();
    hidden.insert(company.clone(), json!("hidden"));
    a.send_json(
        Method::PUT,
        &format!("/api/v1/groups/{gid}/grants/{cust}"),
        json!({"rights": ["view"], "fields": hidden}),
    )
    .await;
    let (_, v) = m.get_json(&format!("/api/v1/tables/{orders}/records/{oid}")).await;
    assert!(v["record"].get("lookups").is_none(), "{v}");
    // Nor may they name the customer by the hidden name (which would tell them it exists).
    let (s, v) =
        m.post_json(&format!("/api/v1/tables/{orders}/records"), json!({"values": {"顧客": "株式会社リンク"}})).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_link_shows"))
    );
    a.send_json(Method::PUT, &format!("/api/v1/groups/{gid}/grants/{cust}"), json!({"rights": ["view"]})).await;
    let (_, v) = m.get_json(&format!("/api/v1/tables/{orders}/records/{oid}")).await;
    assert_eq!(v["record"]["lookups"][&link], "株式会社リンク");
    // An editor whose view of customers leaves this one out saves the order's form without
    // losing the link: the form keeps the value it holds, and an unchanged link is not checked.
    let (s, v) = a
        .post_json(&format!("/api/v1/tables/{orders}/fields"), json!({"name": "メモ", "kind": {"type": "text"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let memo = v["table"]["fields"][1]["id"].as_str().unwrap().to_owned();
    a.send_json(
        Method::PUT,
        &format!("/api/v1/groups/{gid}/grants/{orders}"),
        json!({"rights": ["view", "create", "edit"]}),
    )
    .await;
    a.send_json(
        Method::PUT,
        &format!("/api/v1/groups/{gid}/grants/{cust}"),
        json!({"rights": ["view"], "rows": {"type": "created_by_me"}}),
    )
    .await;
    let version = || async {
        let (_, v) = a.get_json(&format!("/api/v1/tables/{orders}/records/{oid}")).await;
        (v["record"]["version"].as_i64().unwrap().to_string(), v["record"]["values"].clone())
    };
    let form = m.get(&format!("/tables/{orders}/records/{oid}")).await.text().await.unwrap();
    assert!(form.contains(&format!("<option value=\"{cid}\" selected>#{cid}</option>")), "kept as a choice");
    assert!(!form.contains("株式会社リンク"));
    let cid_s = cid.to_string();
    let (ver, _) = version().await;
    let edit = [("version", ver.as_str()), ("fields", &link), ("fields", &memo), (&link, &cid_s), (&memo, "一")];
    let r = m.post_form(&format!("/tables/{orders}/records/{oid}"), &edit).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, values) = version().await;
    assert_eq!((values[&link].as_i64(), values[&memo].as_str()), (Some(cid), Some("一")));
    // Without any view of customers the link is a number to type; kept as it is, it saves.
    a.send_json(Method::PUT, &format!("/api/v1/groups/{gid}/grants/{cust}"), json!({"rights": []})).await;
    let (ver, _) = version().await;
    let edit = [("version", ver.as_str()), ("fields", &link), ("fields", &memo), (&link, &cid_s), (&memo, "二")];
    let r = m.post_form(&format!("/tables/{orders}/records/{oid}"), &edit).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (ver, values) = version().await;
    assert_eq!((values[&link].as_i64(), values[&memo].as_str()), (Some(cid), Some("二")));
    let body = json!({"version": ver.parse::<i64>().unwrap(), "values": {link.clone(): cid, memo.clone(): "三"}});
    let (s, v) = m.send_json(Method::PATCH, &format!("/api/v1/tables/{orders}/records/{oid}"), body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // A form that did not show the memo (it was in the trash, or read-only, when the page was
    // loaded) does not erase it.
    let (ver, _) = version().await;
    let edit = [("version", ver.as_str()), ("fields", &link), (&link, &cid_s)];
    let r = m.post_form(&format!("/tables/{orders}/records/{oid}"), &edit).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, values) = version().await;
    assert_eq!((values[&link].as_i64(), values[&memo].as_str()), (Some(cid), Some("三")));
}

#[tokio::test]
async fn a_users_kept_grants_are_read_again_after_every_change_to_the_matrix() {
    // The server keeps the grants a user's requests read, tagged with the tenant's design
    // version; every change to a group, its members or its grants raises that version (in the
    // database), so the next request reads them again and a revoked right is refused at once.
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let d = setup(&app, &cast.admin).await;
    let m = &cast.member;
    let (s, v) = add(&cast.admin, &d, json!({"件名": "案件A", "メモ": "秘密のメモ"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let rid = v["record"]["id"].as_i64().unwrap();
    let record = format!("/api/v1/tables/{}/records/{rid}", d.tid);
    assert_eq!(m.get_json(&record).await.0, StatusCode::NOT_FOUND, "no grant yet");
    grant(&cast.admin, &d, json!({"rights": ["view"]})).await;
    for _ in 0..3 {
        let (s, v) = m.get_json(&record).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["record"]["values"][&d.memo], "秘密のメモ");
    }
    let kept = app.cached_grants_version(&d.member_id).expect("the member's grants are kept");
    // While nothing changes, requests use the kept grants (records do not move the version).
    assert_eq!(add(&cast.admin, &d, json!({"件名": "案件B"})).await.0, StatusCode::CREATED);
    assert_eq!(m.get_json(&record).await.0, StatusCode::OK);
    assert_eq!(app.cached_grants_version(&d.member_id), Some(kept));
    // A grant changed (a field hidden): the next request no longer shows it.
    let mut fields = serde_json::Map::new();
    fields.insert(d.memo.clone(), json!("hidden"));
    grant(&cast.admin, &d, json!({"rights": ["view", "edit"], "fields": fields})).await;
    let (s, v) = m.get_json(&record).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["record"]["values"].get(&d.memo).is_none(), "{v}");
    let read_again = app.cached_grants_version(&d.member_id).unwrap();
    assert!(read_again > kept, "{read_again} > {kept}");
    let edit = |version: i64| {
        m.send_json(Method::PATCH, &record, json!({"version": version, "values": {"件名": format!("v{version}")}}))
    };
    assert_eq!(edit(1).await.0, StatusCode::OK);
    // The edit right taken away: the next edit is refused.
    grant(&cast.admin, &d, json!({"rights": ["view"]})).await;
    assert_eq!(edit(2).await.0, StatusCode::FORBIDDEN);
    // Out of the group: neither the API nor the pages show the table any more.
    let list = m.get("/tables").await.text().await.unwrap();
    assert!(list.contains("案件 Deals"), "listed while granted");
    let members = format!("/api/v1/groups/{}/members", d.group);
    assert_eq!(cast.admin.send_json(Method::PUT, &members, json!({"members": []})).await.0, StatusCode::OK);
    assert_eq!(m.get_json(&record).await.0, StatusCode::NOT_FOUND);
    assert_eq!(m.get(&format!("/tables/{}", d.tid)).await.status(), StatusCode::NOT_FOUND);
    let list = m.get("/tables").await.text().await.unwrap();
    assert!(!list.contains("案件 Deals"), "not listed once out of the group");
    // Back in the group, then the group deleted.
    let back = json!({"members": [d.member_id]});
    assert_eq!(cast.admin.send_json(Method::PUT, &members, back).await.0, StatusCode::OK);
    assert_eq!(m.get_json(&record).await.0, StatusCode::OK);
    let group = format!("/api/v1/groups/{}", d.group);
    assert!(cast.admin.send_json(Method::DELETE, &group, json!({})).await.0.is_success());
    assert_eq!(m.get_json(&record).await.0, StatusCode::NOT_FOUND);
    let (_, v) = m.get_json("/api/v1/tables").await;
    assert_eq!(v["tables"].as_array().map(Vec::len), Some(0), "{v}");
    // Every one of those changes moved the version the member's grants were read at.
    assert!(app.cached_grants_version(&d.member_id).unwrap() > read_again);
}

#[tokio::test]
async fn the_owner_row_rule_applies_to_grid_record_history_api_export_search_and_writes() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let d = setup(&app, &cast.admin).await;
    let t = &d.tid;
    let m = &cast.member;
    let (_, users) = cast.admin.get_json("/api/v1/users").await;
    let admin_id = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "admin").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    grant(
        &cast.admin,
        &d,
        json!({"rights": ["view", "edit", "delete", "export"], "rows": {"type": "user_is_me", "field": d.owner}}),
    )
    .await;
    let mut ids = Vec::new();
    for (title, owner) in
        [("担当は私 mine", Some(&d.member_id)), ("担当は管理者 others", Some(&admin_id)), ("担当なし nobody", None)]
    {
        let values = match owner {
            Some(o) => json!({"件名": title, "担当": o}),
            None => json!({"件名": title}),
        };
        let (s, v) = add(&cast.admin, &d, values).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["record"]["id"].as_i64().unwrap());
    }
    let (mine, others, nobody) = (ids[0], ids[1], ids[2]);
    // Lists, the grid page, search and export show only the member's own.
    let (_, v) = m.get_json(&format!("/api/v1/tables/{t}/records?count=true")).await;
    let listed: Vec<i64> = v["records"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!((listed, v["count"].as_i64()), (vec![mine], Some(1)));
    let grid = m.get(&format!("/tables/{t}")).await.text().await.unwrap();
    assert!(grid.contains("担当は私") && !grid.contains("担当は管理者") && !grid.contains("担当なし"), "grid");
    for (q, want) in [("others", vec![]), ("nobody", vec![]), ("%E6%8B%85%E5%BD%93", vec![mine])] {
        let (_, v) = m.get_json(&format!("/api/v1/tables/{t}/records?q={q}")).await;
        let found: Vec<i64> = v["records"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert_eq!(found, want, "search {q}");
    }
    let csv = m.get(&format!("/api/v1/tables/{t}/export.csv")).await.text().await.unwrap();
    assert!(csv.contains("mine") && !csv.contains("others") && !csv.contains("nobody"), "{csv}");
    // Others' records: not there for reading, history, editing or deleting, by API or page.
    for id in [others, nobody] {
        assert_eq!(m.get_json(&format!("/api/v1/tables/{t}/records/{id}")).await.0, StatusCode::NOT_FOUND);
        assert_eq!(m.get(&format!("/tables/{t}/records/{id}")).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(m.get_json(&format!("/api/v1/tables/{t}/records/{id}/history")).await.0, StatusCode::NOT_FOUND);
        assert_eq!(m.get(&format!("/tables/{t}/records/{id}/history")).await.status(), StatusCode::NOT_FOUND);
        let edit = json!({"version": 1, "values": {"件名": "changed"}});
        assert_eq!(
            m.send_json(Method::PATCH, &format!("/api/v1/tables/{t}/records/{id}"), edit).await.0,
            StatusCode::NOT_FOUND
        );
        let r =
            m.post_form(&format!("/tables/{t}/records/{id}"), &[("version", "1"), (d.title.as_str(), "changed")]).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            m.send_json(Method::DELETE, &format!("/api/v1/tables/{t}/records/{id}"), json!({})).await.0,
            StatusCode::NOT_FOUND
        );
        let r = m.post_form(&format!("/tables/{t}/records/{id}/delete"), &[("confirm", "yes")]).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    // Bulk operations naming them change nothing (all or nothing).
    let (s, _) = m
        .post_json(
            &format!("/api/v1/tables/{t}/records/bulk-update"),
            json!({"ids": [mine, others], "values": {"件名": "bulk"}}),
        )
        .await;
    assert!(s.is_client_error(), "{s}");
    let (s, _) = m.post_json(&format!("/api/v1/tables/{t}/records/bulk-delete"), json!({"ids": [mine, nobody]})).await;
    assert!(s.is_client_error(), "{s}");
    // Their own: readable, with its history, editable.
    assert_eq!(m.get_json(&format!("/api/v1/tables/{t}/records/{mine}/history")).await.0, StatusCode::OK);
    assert_eq!(m.get(&format!("/tables/{t}/records/{mine}/history")).await.status(), StatusCode::OK);
    let (s, v) = m
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{t}/records/{mine}"),
            json!({"version": 1, "values": {"件名": "担当は私 edited"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Handing their record to someone else (as a task is handed over) is an edit like any
    // other, and takes the record out of their reach.
    let (s, v) = m
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{t}/records/{mine}"),
            json!({"version": 2, "values": {"担当": admin_id}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(m.get_json(&format!("/api/v1/tables/{t}/records/{mine}")).await.0, StatusCode::NOT_FOUND);
    let (_, v) = m.get_json(&format!("/api/v1/tables/{t}/records")).await;
    assert_eq!(v["records"].as_array().map(Vec::len), Some(0), "{v}");
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{t}/records?limit=10")).await;
    let titles: Vec<&str> =
        v["records"].as_array().unwrap().iter().map(|r| r["values"][&d.title].as_str().unwrap()).collect();
    assert!(titles.contains(&"担当は管理者 others") && titles.contains(&"担当なし nobody"), "untouched: {titles:?}");
}

#[tokio::test]
async fn an_import_updates_by_key_only_with_the_edit_right_and_a_field_change_needs_every_row() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let d = setup(&app, &cast.admin).await;
    let (s, v) = cast
        .admin
        .post_json(
            &format!("/api/v1/tables/{}/fields", d.tid),
            json!({"name": "コード", "kind": {"type": "text"}, "rules": {"unique": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let code = v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned();
    let (s, v) = add(&cast.admin, &d, json!({"件名": "secret-A", "コード": "A", "メモ": "x"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let rid = v["record"]["id"].as_i64().unwrap();
    let title = || async {
        let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{}/records/{rid}", d.tid)).await;
        (v["record"]["values"][&d.title].clone(), v["record"]["values"][&d.memo].clone())
    };
    let m = &cast.member;
    // View and import, no edit: new records come in, but an update by key is refused.
    grant(&cast.admin, &d, json!({"rights": ["view", "import"]})).await;
    let (s, _) = crate::tables::import(m, &d.tid, "?key=コード", "コード,件名\nA,changed\n".into()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = crate::tables::import(m, &d.tid, "", "コード,件名\nB,new\n".into()).await;
    assert_eq!((s, &v["inserted"]), (StatusCode::OK, &json!(1)), "{v}");
    assert_eq!(title().await, (json!("secret-A"), json!("x")));
    // With edit, but the memo read-only for editing: the update may not write it.
    let mut fields = serde_json::Map::new();
    fields.insert(d.memo.clone(), json!("read_only"));
    grant(&cast.admin, &d, json!({"rights": ["view", "import", "edit"], "fields": fields})).await;
    let (s, v) = crate::tables::import(m, &d.tid, "?key=コード", "コード,メモ\nA,overwritten\n".into()).await;
    assert_eq!((s, v["error"]["fields"][0]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("read_only")));
    // The memo as the record holds it (a file exported and edited elsewhere) is no change.
    let (s, v) = crate::tables::import(m, &d.tid, "?key=コード", "コード,件名,メモ\nA,secret-A,x\n".into()).await;
    assert_eq!((s, &v["updated"], &v["unchanged"]), (StatusCode::OK, &json!(0), &json!(1)), "{v}");
    let (s, v) = crate::tables::import(m, &d.tid, "?key=コード", "コード,件名\nA,changed\n".into()).await;
    assert_eq!((s, &v["updated"]), (StatusCode::OK, &json!(1)), "{v}");
    assert_eq!(title().await, (json!("changed"), json!("x")));
    // The key field read-only for editing: the update finds the record by it and leaves it as
    // it is (it used to be refused as a write of the key).
    let mut fields = serde_json::Map::new();
    fields.insert(code.clone(), json!("read_only"));
    grant(&cast.admin, &d, json!({"rights": ["view", "import", "edit"], "fields": fields})).await;
    let (s, v) = crate::tables::import(m, &d.tid, "?key=コード", "コード,件名\nA,by key\n".into()).await;
    assert_eq!((s, &v["updated"]), (StatusCode::OK, &json!(1)), "{v}");
    assert_eq!(title().await, (json!("by key"), json!("x")));
    // A designer limited to their own records cannot run a field change, whose report would
    // show values of every record.
    grant(&cast.admin, &d, json!({"rights": ["view", "design"], "rows": {"type": "created_by_me"}})).await;
    let (s, v) = m
        .post_json(
            &format!("/api/v1/tables/{}/fields/{}/retype", d.tid, d.title),
            json!({"kind": {"type": "integer"}, "apply": false}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("needs_all_records"))
    );
    assert!(!v.to_string().contains("changed"), "{v}");
    let r = m
        .post_form(
            &format!("/tables/{}/design/fields/{}/type", d.tid, d.title),
            &[("action", "check"), ("kind", "integer")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!r.text().await.unwrap().contains(">changed<"));
    // Edit limited to their own records, view of every record through a second group: an
    // update by key of the administrator's record is refused by row (422), and recorded.
    grant(&cast.admin, &d, json!({"rights": ["view", "import", "edit"], "rows": {"type": "created_by_me"}})).await;
    let g2 = cast.admin.post_json("/api/v1/groups", json!({"name": "閲覧"})).await.1["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    cast.admin.send_json(Method::PUT, &format!("/api/v1/groups/{g2}/members"), json!({"members": [d.member_id]})).await;
    cast.admin
        .send_json(Method::PUT, &format!("/api/v1/groups/{g2}/grants/{}", d.tid), json!({"rights": ["view"]}))
        .await;
    let (s, v) = crate::tables::import(m, &d.tid, "?key=コード", "コード,件名\nA,again\n".into()).await;
    assert_eq!((s, v["error"]["fields"][0]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("not_editable")));
    assert_eq!(title().await, (json!("by key"), json!("x")));
    // The other way round: edit of every record, import only of their own. The row is
    // reported by number as well (the store's own check used to answer 403 for the file).
    grant(&cast.admin, &d, json!({"rights": ["view", "import"], "rows": {"type": "created_by_me"}})).await;
    cast.admin
        .send_json(Method::PUT, &format!("/api/v1/groups/{g2}/grants/{}", d.tid), json!({"rights": ["view", "edit"]}))
        .await;
    let (s, v) = crate::tables::import(
        m,
        &d.tid,
        "?key=コード",
        "コード,件名
A,again
"
        .into(),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let e = &v["error"]["fields"][0];
    assert_eq!(
        (e["field"].as_str(), e["code"].as_str()),
        (Some(format!("row:2:{code}").as_str()), Some("not_editable"))
    );
    assert_eq!(title().await, (json!("by key"), json!("x")));
    // Both refusals answered with 422 are in the operation history.
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=permission.denied").await;
    let details: Vec<&str> = v["events"].as_array().unwrap().iter().map(|e| e["details"].as_str().unwrap()).collect();
    assert_eq!(details.iter().filter(|d| d.starts_with("field change needs every record")).count(), 2, "{details:?}");
    assert!(details.iter().any(|d| d.starts_with("import update of 1 records outside edit's rows")), "{details:?}");
}

#[tokio::test]
async fn an_export_holds_only_what_the_export_right_covers_and_a_link_only_what_its_designer_may_view() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(&app, a).await;
    let t = &d.tid;
    // The member's group views (and designs) every record and field; a second group of theirs
    // may download only the records they created, without the amount.
    grant(a, &d, json!({"rights": ["view", "create", "design"]})).await;
    let (s, g) = a.post_json("/api/v1/groups", json!({"name": "出力係", "description": ""})).await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let g2 = g["group"]["id"].as_str().unwrap().to_owned();
    let (s, _) =
        a.send_json(Method::PUT, &format!("/api/v1/groups/{g2}/members"), json!({"members": [d.member_id]})).await;
    assert_eq!(s, StatusCode::OK);
    let mut hidden = serde_json::Map::new();
    hidden.insert(d.amount.clone(), json!("hidden"));
    let (s, v) = a
        .send_json(
            Method::PUT,
            &format!("/api/v1/groups/{g2}/grants/{t}"),
            json!({"rights": ["export"], "rows": {"type": "created_by_me"}, "fields": hidden}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(add(a, &d, json!({"件名": "admin-row", "金額": 9001})).await.0, StatusCode::CREATED);
    assert_eq!(add(m, &d, json!({"件名": "member-row", "金額": 7002})).await.0, StatusCode::CREATED);
    // Viewing shows both records and the amount ...
    let (_, v) = m.get_json(&format!("/api/v1/tables/{t}/records")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 2, "{v}");
    assert!(v.to_string().contains("9001"));
    // ... the download, through the API and the page, only the member's record, no amount.
    for url in [format!("/api/v1/tables/{t}/export.csv"), format!("/tables/{t}/export.csv")] {
        let r = m.get(&url).await;
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        let csv = r.text().await.unwrap();
        let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
        assert_eq!(lines.len(), 2, "{url}: {csv}");
        assert!(!lines[0].contains("金額") && lines[0].starts_with("件名,"), "{csv}");
        assert!(lines[1].starts_with("member-row"), "{csv}");
        assert!(!csv.contains("admin-row") && !csv.contains("9001") && !csv.contains("7002"), "{csv}");
    }
    // Nor can the download be filtered or sorted by the amount (which would tell its values).
    let r = m.get(&format!("/api/v1/tables/{t}/export.csv?filter.gte.{}=7000", d.amount)).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = m.get(&format!("/api/v1/tables/{t}/export.csv?sort={}", d.amount)).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The administrator's download holds both.
    let csv = a.get(&format!("/api/v1/tables/{t}/export.csv")).await.text().await.unwrap();
    assert!(csv.contains("admin-row") && csv.contains("member-row") && csv.contains("9001"), "{csv}");

    // A customers table the member may not open, with a secret field.
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "顧客 Customers"})).await;
    let cust = v["table"]["id"].as_str().unwrap().to_owned();
    let mut fids = Vec::new();
    for name in ["会社名", "与信枠"] {
        let (s, v) = a
            .post_json(&format!("/api/v1/tables/{cust}/fields"), json!({"name": name, "kind": {"type": "text"}}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        fids.push(v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned());
    }
    let (company, credit) = (&fids[0], &fids[1]);
    let link = |show: &str| json!({"name": "顧客", "kind": {"type": "link", "table": cust, "show": show}});
    // As designer of deals, the member is not offered it as a link target, nor may link to it.
    let page = m.get(&format!("/tables/{t}")).await.text().await.unwrap();
    assert!(page.contains("案件 Deals › 件名"), "their own table is offered");
    assert!(!page.contains("顧客 Customers") && !page.contains(&cust), "a table they may not open is not");
    let (s, v) = m.post_json(&format!("/api/v1/tables/{t}/fields"), link(company)).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_table"))
    );
    let r = m
        .post_form(
            &format!("/tables/{t}/fields"),
            &[("name", "顧客"), ("kind", "link"), ("link", &format!("{cust}:{company}"))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(!body.contains("顧客 Customers") && !body.contains("与信枠"), "the refusal names nothing of it");
    // Create and import rights on customers do not make it a target either: linking reads it.
    let (s, _) = a
        .send_json(Method::PUT, &format!("/api/v1/groups/{}/grants/{cust}", d.group), json!({"rights": ["create"]}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = m.post_json(&format!("/api/v1/tables/{t}/fields"), link(company)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // With view on customers, the credit line hidden: the company is offered, the credit not.
    let mut hidden = serde_json::Map::new();
    hidden.insert(credit.clone(), json!("hidden"));
    let (s, _) = a
        .send_json(
            Method::PUT,
            &format!("/api/v1/groups/{}/grants/{cust}", d.group),
            json!({"rights": ["view"], "fields": hidden}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let page = m.get(&format!("/tables/{t}")).await.text().await.unwrap();
    assert!(page.contains("顧客 Customers › 会社名") && !page.contains("与信枠"), "only fields they see");
    let (s, v) = m.post_json(&format!("/api/v1/tables/{t}/fields"), link(credit)).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_field"))
    );
    let (s, v) = m.post_json(&format!("/api/v1/tables/{t}/fields"), link(company)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Refusals on the way were recorded.
    let (_, v) = a.get_json("/api/v1/audit?action=permission.denied").await;
    assert!(v["events"].as_array().unwrap().iter().any(|e| e["details"].as_str().unwrap_or("").contains(&cust)), "{v}");
}

#[tokio::test]
async fn a_designer_sees_and_changes_only_the_fields_their_groups_do_not_hide() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(&app, a).await;
    let t = &d.tid;
    let mut hidden = serde_json::Map::new();
    hidden.insert(d.amount.clone(), json!("hidden"));
    grant(a, &d, json!({"rights": ["view", "design"], "fields": hidden})).await;
    let order = || async {
        let (_, v) = a.get_json(&format!("/api/v1/tables/{t}")).await;
        v["table"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(order().await, ["件名", "金額", "メモ", "担当"]);
    // Neither the design page, the settings page nor the design API shows the hidden amount.
    let page = m.get(&format!("/tables/{t}/design")).await.text().await.unwrap();
    assert!(page.contains("メモ") && !page.contains("金額") && !page.contains(&d.amount), "design page");
    let (s, v) = m.send_json(Method::PATCH, &format!("/api/v1/tables/{t}"), json!({"description": "x"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v.to_string().contains(&d.memo) && !v.to_string().contains(&d.amount), "{v}");
    let (s, v) =
        m.send_json(Method::PATCH, &format!("/api/v1/tables/{t}/fields/{}", d.memo), json!({"name": "備考"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!v.to_string().contains(&d.amount), "{v}");
    // The amount cannot be renamed, changed, moved or deleted by them: 404, as if absent.
    let amount = &d.amount;
    let (s, _) = m.send_json(Method::PATCH, &format!("/api/v1/tables/{t}/fields/{amount}"), json!({"name": "x"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = m.send_json(Method::DELETE, &format!("/api/v1/tables/{t}/fields/{amount}"), json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = m
        .post_json(
            &format!("/api/v1/tables/{t}/fields/{amount}/retype"),
            json!({"kind": {"type": "text"}, "apply": false}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(m.get(&format!("/tables/{t}/design/fields/{amount}/type")).await.status(), StatusCode::NOT_FOUND);
    let r = m
        .post_form(&format!("/tables/{t}/design"), &[("action", "delete_field"), ("field", amount), ("confirm", "yes")])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = m
        .post_form(
            &format!("/tables/{t}/design"),
            &[("action", "rename"), ("field", amount), (&format!("name_{amount}"), "x")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(order().await, ["件名", "金額", "備考", "担当"], "nothing happened to the amount");
    // Reordering moves the fields they see; the amount keeps its place. Its name is as unknown
    // as a name that does not exist.
    let order_url = format!("/api/v1/tables/{t}/fields/order");
    let reorder = |names: Value| m.send_json(Method::PUT, &order_url, json!({"fields": names}));
    let (s, v) = reorder(json!(["担当", "備考", "件名"])).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!v.to_string().contains(&d.amount), "{v}");
    assert_eq!(order().await, ["担当", "金額", "備考", "件名"]);
    for names in [json!(["担当", "金額", "備考", "件名"]), json!(["担当", "無い", "備考", "件名"])] {
        let (s, v) = reorder(names).await;
        assert_eq!(
            (s, v["error"]["fields"][0]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_field"))
        );
    }
    let r = m.post_form(&format!("/tables/{t}/design"), &[("action", "down"), ("field", &d.owner)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(order().await, ["備考", "金額", "担当", "件名"], "down past the hidden amount");
    // A view-only user learns nothing from names either: the same 403 for both, recorded, and
    // a malformed body is refused for the right before it is read.
    grant(a, &d, json!({"rights": ["view"], "fields": hidden})).await;
    for names in [json!(["金額"]), json!(["無い"])] {
        assert_eq!(reorder(names).await.0, StatusCode::FORBIDDEN);
    }
    let r = m
        .client
        .patch(m.url(&format!("/api/v1/tables/{t}")))
        .header("x-csrf-token", &m.csrf)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, v) = a.get_json("/api/v1/audit?action=permission.denied").await;
    let needs_design = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"].as_str().unwrap_or("").starts_with(&format!("needs design on table:{t}")))
        .count();
    assert_eq!(needs_design, 3, "{v}");
}

#[tokio::test]
async fn a_new_record_gets_the_defaults_of_fields_its_creator_may_not_write_or_see() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(&app, a).await;
    let t = &d.tid;
    let mut ids = Vec::new();
    for (name, rules) in [("状態", json!({"default": "申請中"})), ("社内区分", json!({"default": "S-1"}))] {
        let (s, v) = a
            .post_json(
                &format!("/api/v1/tables/{t}/fields"),
                json!({"name": name, "kind": {"type": "text"}, "rules": rules}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned());
    }
    let (status, secret) = (ids[0].clone(), ids[1].clone());
    let mut fields = serde_json::Map::new();
    fields.insert(status.clone(), json!("read_only"));
    fields.insert(secret.clone(), json!("hidden"));
    grant(a, &d, json!({"rights": ["view", "create", "import"], "fields": fields.clone()})).await;
    let (st, se) = (&status, &secret);
    let stored = |rid: i64| async move {
        let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records/{rid}")).await;
        (v["record"]["values"][st].clone(), v["record"]["values"][se].clone())
    };
    let want = (json!("申請中"), json!("S-1"));
    // Through the API: the member's answer shows the status, never the hidden field.
    let (s, v) = add(m, &d, json!({"件名": "api"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["record"]["values"][&status], "申請中");
    assert!(!v.to_string().contains(&secret) && !v.to_string().contains("S-1"), "{v}");
    assert_eq!(stored(v["record"]["id"].as_i64().unwrap()).await, want);
    // Through the form and an import.
    let r = m.post_form(&format!("/tables/{t}/records"), &[(d.title.as_str(), "page")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (s, v) = crate::tables::import(m, t, "", "件名\nimported\n".into()).await;
    assert_eq!((s, &v["inserted"]), (StatusCode::OK, &json!(1)), "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records")).await;
    let records = v["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    for r in records {
        assert_eq!((r["values"][&status].clone(), r["values"][&secret].clone()), want, "{r}");
    }
    // A required field hidden from the member without a default: nothing they create could be
    // complete, so creating is refused (API, form, import) without naming the field.
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{t}/fields"),
            json!({"name": "承認者コード", "kind": {"type": "text"}, "rules": {"required": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let approver = v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned();
    fields.insert(approver.clone(), json!("hidden"));
    grant(a, &d, json!({"rights": ["view", "create", "import"], "fields": fields})).await;
    let (s, v) = add(m, &d, json!({"件名": "api 2"})).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("required_unwritable"))
    );
    assert!(!v.to_string().contains("承認者") && !v.to_string().contains(&approver), "{v}");
    let r = m.post_form(&format!("/tables/{t}/records"), &[(d.title.as_str(), "page 2")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains("no default value") && !body.contains("承認者"), "the form explains it");
    // And the grid does not offer "New record" then.
    let grid = m.get(&format!("/tables/{t}")).await.text().await.unwrap();
    assert!(!grid.contains(&format!("href=\"/tables/{t}/records/new\"")), "no New record link");
    let (s, v) = crate::tables::import(m, t, "", "件名\nimported 2\n".into()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("required_unwritable") && !v.to_string().contains(&approver), "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 3, "nothing was added");
    let (s, v) = crate::tables::import(m, t, "", "件名\nimported 3\n".into()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["fields"][0]["field"], "row:2", "the row, not an internal key: {v}");
    // A unique hidden field with a default would fill one record only (the next would collide
    // on a value the member cannot see): refused the same way.
    let (s, _) = a
        .send_json(Method::PATCH, &format!("/api/v1/tables/{t}/fields/{approver}"), json!({"name": "承認者コード"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{t}/fields/{approver}/retype"),
            json!({"kind": {"type": "text"}, "rules": {"default": "X"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = add(m, &d, json!({"件名": "ok now"})).await;
    assert_eq!(s, StatusCode::CREATED, "a default makes the hidden field fillable");
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{t}/fields/{secret}/retype"),
            json!({"kind": {"type": "text"}, "rules": {"default": "S-1", "unique": true}, "apply": true}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_with_unique")),
        "a unique field takes no default (it would fill one record and block the next): {v}"
    );
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{t}/fields"),
            json!({"name": "番号", "kind": {"type": "text"}, "rules": {"unique": true, "default": "N"}}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_with_unique"))
    );
}

#[tokio::test]
async fn a_personal_view_on_a_field_later_hidden_is_not_offered_but_stays_deletable() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(&app, a).await;
    let t = &d.tid;
    grant(a, &d, json!({"rights": ["view"]})).await;
    let (s, v) = m
        .post_json(
            &format!("/api/v1/tables/{t}/views"),
            json!({"name": "大口", "filters": [{"field": "金額", "op": "gte", "value": "500"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let vid = v["view"]["id"].as_str().unwrap().to_owned();
    let mut hidden = serde_json::Map::new();
    hidden.insert(d.amount.clone(), json!("hidden"));
    grant(a, &d, json!({"rights": ["view"], "fields": hidden})).await;
    let (_, v) = m.get_json(&format!("/api/v1/tables/{t}/views")).await;
    assert!(v["views"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(m.get_json(&format!("/api/v1/tables/{t}/records?view={vid}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        m.send_json(Method::DELETE, &format!("/api/v1/tables/{t}/views/{vid}"), json!({})).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        m.send_json(Method::DELETE, &format!("/api/v1/tables/{t}/views/{vid}"), json!({})).await.0,
        StatusCode::NOT_FOUND
    );
    let (s, v) = m.post_json(&format!("/api/v1/tables/{t}/views"), json!({"name": "大口"})).await;
    assert_eq!(s, StatusCode::CREATED, "its name is free again: {v}");
}

/// A grant given or widened while a field is in the trash gets that field hidden (the form
/// could not show it, so no one chose); a grant saved again as it was keeps it as it was.
#[tokio::test]
async fn a_field_restored_from_the_trash_stays_hidden_from_a_grant_given_meanwhile() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(&app, a).await;
    grant(a, &d, json!({"rights": ["view"]})).await;
    let (s, v) = add(a, &d, json!({"件名": "案件", "メモ": "社外秘"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let field = format!("/api/v1/tables/{}/fields/{}", d.tid, d.memo);
    let restore = format!("/api/v1/trash/tables/{}/fields/{}/restore", d.tid, d.memo);
    let memo_seen = || async {
        let (s, v) = m.get_json(&format!("/api/v1/tables/{}/records", d.tid)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["records"][0]["values"].get(&d.memo).is_some()
    };
    assert!(memo_seen().await);
    // Saved again with the same rights while the memo is in the trash: as it was.
    assert!(a.send_json(Method::DELETE, &field, json!({})).await.0.is_success());
    grant(a, &d, json!({"rights": ["view"]})).await;
    assert_eq!(a.post_json(&restore, json!({})).await.0, StatusCode::NO_CONTENT);
    assert!(memo_seen().await, "a grant saved as it was keeps the field as it was");
    // A right added to a grant meanwhile hides nothing its other rights showed.
    assert!(a.send_json(Method::DELETE, &field, json!({})).await.0.is_success());
    grant(a, &d, json!({"rights": ["view", "export"]})).await;
    assert_eq!(a.post_json(&restore, json!({})).await.0, StatusCode::NO_CONTENT);
    assert!(memo_seen().await, "a right added keeps the field as it was");
    // Taken away, then given again while the memo is in the trash: hidden on its restore,
    // and the group's page says so.
    grant(a, &d, json!({"rights": []})).await;
    assert!(a.send_json(Method::DELETE, &field, json!({})).await.0.is_success());
    grant(a, &d, json!({"rights": ["view", "export"]})).await;
    assert_eq!(a.post_json(&restore, json!({})).await.0, StatusCode::NO_CONTENT);
    assert!(!memo_seen().await, "a grant given while the field was in the trash does not show it");
    let (_, v) = a.get_json(&format!("/api/v1/groups/{}", d.group)).await;
    let g = v["group"]["grants"].as_array().unwrap().iter().find(|g| g["table"] == d.tid.as_str()).unwrap();
    assert_eq!(g["fields"][&d.memo], "hidden", "{g}");
    // Shown again from the group's page.
    grant(a, &d, json!({"rights": ["view", "export"], "fields": {}})).await;
    assert!(memo_seen().await);
}

#[tokio::test]
async fn the_field_rules_page_does_not_undo_a_rule_set_meanwhile_nor_one_of_a_field_restored_since() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(&app, a).await;
    grant(a, &d, json!({"rights": ["view"]})).await;
    let (s, v) = add(a, &d, json!({"件名": "one", "金額": 100})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let records = format!("/api/v1/tables/{}/records", d.tid);
    let amount_seen = || async { m.get_json(&records).await.1["records"][0]["values"].get(&d.amount).is_some() };
    assert!(amount_seen().await);
    let table_page = format!("/admin/groups/{}/tables/{}", d.group, d.tid);
    let was_of = |page: &str| {
        let w = page.split("name=\"was\" value=\"").nth(1).unwrap();
        w[..w.find('"').unwrap()].to_owned()
    };
    // Admin A opens the page: every field editable.
    let shown = was_of(&a.get(&table_page).await.text().await.unwrap());
    // Meanwhile another admin hides the amount.
    grant(a, &d, json!({"rights": ["view"], "fields": {d.amount.clone(): "hidden"}})).await;
    assert!(!amount_seen().await);
    // A's form, as the page showed it (amount editable), makes the memo read-only: refused,
    // and the page shows the rules as they are now.
    let (f_amount, f_memo, f_title) =
        (format!("field.{}", d.amount), format!("field.{}", d.memo), format!("field.{}", d.title));
    let form = |was: String| {
        vec![
            ("was".to_owned(), was),
            ("rows".to_owned(), "all".to_owned()),
            (f_title.clone(), "editable".to_owned()),
            (f_amount.clone(), "editable".to_owned()),
            (f_memo.clone(), "read_only".to_owned()),
        ]
    };
    let post = |form: Vec<(String, String)>| {
        let table_page = table_page.clone();
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            a.post_form(&table_page, &form).await
        }
    };
    let r = post(form(shown)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let page = r.text().await.unwrap();
    assert!(page.contains("Someone changed these rights meanwhile"), "{page}");
    assert!(!amount_seen().await, "the amount stays hidden");
    let (_, v) = a.get_json(&format!("/api/v1/users/{}/access", d.member_id)).await;
    let row = v["tables"].as_array().unwrap().iter().find(|r| r["table"] == d.tid.as_str()).unwrap().clone();
    assert_eq!(row["read_only_fields"], json!([]), "nothing saved: {row}");
    // Saved from the page as it is now, it is what the admin chose there.
    let r = post(form(was_of(&page))).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(amount_seen().await, "shown again, as chosen on a page that showed it hidden");

    // A field in the trash when the page was shown, restored before it is saved, keeps its rule.
    grant(a, &d, json!({"rights": ["view"], "fields": {d.amount.clone(): "hidden"}})).await;
    let (s, _) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{}/fields/{}", d.tid, d.amount), json!({})).await;
    assert!(s.is_success(), "{s}");
    let page = a.get(&table_page).await.text().await.unwrap();
    assert!(!page.contains(&f_amount), "the page does not show a field in the trash");
    let restore = format!("/api/v1/trash/tables/{}/fields/{}/restore", d.tid, d.amount);
    assert_eq!(a.post_json(&restore, json!({})).await.0, StatusCode::NO_CONTENT);
    let form = vec![
        ("was".to_owned(), was_of(&page)),
        ("rows".to_owned(), "all".to_owned()),
        (f_title.clone(), "editable".to_owned()),
        (f_memo.clone(), "read_only".to_owned()),
    ];
    let r = post(form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(!amount_seen().await, "the restored amount is still hidden");
}

/// A record deleted by someone who may not see one of its fields is recorded with every value
/// it held, by a bulk delete as by a single one: the operation history (read by administrators
/// only) is where a deleted record's values can be read back.
#[tokio::test]
async fn a_deleted_record_is_recorded_whole_also_when_the_deleter_may_not_see_a_field() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(&app, a).await;
    let mut rules = serde_json::Map::new();
    rules.insert(d.amount.clone(), json!("hidden"));
    grant(a, &d, json!({"rights": ["view", "delete"], "fields": rules})).await;
    let mut ids = Vec::new();
    for (title, amount) in [("一件目", 7_777_001), ("二件目", 7_777_002)] {
        let (s, v) = add(a, &d, json!({"件名": title, "金額": amount})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["record"]["id"].as_i64().unwrap());
    }
    let t = &d.tid;
    let (s, v) = m.send_json(Method::DELETE, &format!("/api/v1/tables/{t}/records/{}", ids[0]), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, v) = m.post_json(&format!("/api/v1/tables/{t}/records/bulk-delete"), json!({"ids": [ids[1]]})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = a.get_json("/api/v1/audit?action=record.delete").await;
    let details: Vec<&str> = v["events"].as_array().unwrap().iter().filter_map(|e| e["details"].as_str()).collect();
    assert!(details.iter().any(|d| d.contains("7777001")), "the single delete: {details:?}");
    assert!(
        details.iter().any(|d| d.starts_with("in a bulk delete") && d.contains("7777002")),
        "the bulk one: {details:?}"
    );
}

/// A group's rules survive changes to the design made while they stand: a field rule whose
/// field is in the trash is kept when the grant is saved again (from the table page, the matrix
/// or the API, none of which show that field) and applies again on restore; a "user is me" rule
/// whose field stopped being a user field stays chosen on the table page, and saving the page
/// does not widen it to every record.
#[tokio::test]
async fn grant_rules_on_trashed_or_changed_fields_are_kept_when_the_grant_is_saved_again() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(&app, a).await;
    let owner_rule = json!({"type": "user_is_me", "field": d.owner});
    grant(a, &d, json!({"rights": ["view"], "rows": owner_rule, "fields": {d.amount.clone(): "hidden"}})).await;
    for (title, owner) in [("mine", d.member_id.as_str()), ("theirs", "")] {
        let (s, v) = add(a, &d, json!({"件名": title, "金額": 100, "担当": owner})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let titles = |v: &Value| -> Vec<String> {
        v["records"].as_array().unwrap().iter().map(|r| r["values"][&d.title].as_str().unwrap().to_owned()).collect()
    };
    let records = format!("/api/v1/tables/{}/records", d.tid);
    // The hidden amount goes to the trash; the grant is saved three ways without it.
    let (s, _) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{}/fields/{}", d.tid, d.amount), json!({})).await;
    assert!(s.is_success(), "{s}");
    let table_page = format!("/admin/groups/{}/tables/{}", d.group, d.tid);
    let rows_value = format!("user_is_me:{}", d.owner);
    let r = a.post_form(&table_page, &[("rows", &rows_value), (&format!("field.{}", d.memo), "read_only")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let matrix = format!("/admin/groups/{}/grants", d.group);
    let r =
        a.post_form(&matrix, &[(&format!("right.{}", d.tid), "view"), (&format!("right.{}", d.tid), "export")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let body = json!({"rights": ["view", "export"], "rows": owner_rule, "fields": {d.memo.clone(): "read_only"}});
    grant(a, &d, body).await;
    // A new rule on a field in the trash is still refused.
    let (s, v) = a
        .send_json(
            Method::PUT,
            &format!("/api/v1/groups/{}/grants/{}", d.group, d.tid),
            json!({"rights": ["view"], "rows": owner_rule, "fields": {d.amount.clone(): "read_only"}}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_field"))
    );
    // Restored, the amount is hidden from the member again.
    let restore = format!("/api/v1/trash/tables/{}/fields/{}/restore", d.tid, d.amount);
    assert_eq!(a.post_json(&restore, json!({})).await.0, StatusCode::NO_CONTENT);
    let (s, v) = m.get_json(&records).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(titles(&v), ["mine"]);
    assert!(v["records"][0]["values"].get(&d.amount).is_none(), "the amount is hidden again: {v}");
    // The owner field may not become a text field (its user ids would become the text); the
    // rule still limits the member to their records, the table page still shows it chosen,
    // and saving the page keeps it.
    let retype = format!("/api/v1/tables/{}/fields/{}/retype", d.tid, d.owner);
    let (s, v) = a.post_json(&retype, json!({"kind": {"type": "text"}})).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_for_this_type")),
        "{v}"
    );
    let page = a.get(&table_page).await.text().await.unwrap();
    assert!(page.contains(&format!("<option value=\"{rows_value}\" selected>")), "the stored rule is chosen");
    let r = a.post_form(&table_page, &[("rows", &rows_value), (&format!("field.{}", d.amount), "hidden")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = a.post_form(&table_page, &[(&format!("field.{}", d.amount), "hidden")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "a form without a row rule keeps the stored one");
    assert_eq!(titles(&m.get_json(&records).await.1), ["mine"], "not widened to every record");
    let (_, v) = a.get_json(&format!("/api/v1/users/{}/access", d.member_id)).await;
    let row = v["tables"].as_array().unwrap().iter().find(|r| r["table"] == d.tid.as_str()).unwrap();
    assert_eq!(row["rows"], "user_is_me:担当", "{row}");
    // The matrix is saved whole or not at all: a bad entry for a second table leaves the first
    // as it was.
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "龍 (sorted after the first)"})).await;
    let second = v["table"]["id"].as_str().unwrap().to_owned();
    let r =
        a.post_form(&matrix, &[(&format!("right.{}", d.tid), "delete"), (&format!("right.{second}"), "bogus")]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (_, v) = a.get_json(&format!("/api/v1/users/{}/access", d.member_id)).await;
    let row = v["tables"].as_array().unwrap().iter().find(|r| r["table"] == d.tid.as_str()).unwrap();
    assert_eq!(row["rights"], json!(["view", "export"]), "{row}");
    // A new "user is me" rule still needs a user field (the owner field gone to the trash).
    let (s, _) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{}/fields/{}", d.tid, d.owner), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let r = a.post_form(&table_page, &[("rows", "created_by_me")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = a.post_form(&table_page, &[("rows", &rows_value)]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// Unticking every right of a group on a table in the matrix keeps its rules on fields and
/// rows: ticking view again later does not show a field the group was not to see.
#[tokio::test]
async fn unticking_every_right_keeps_the_groups_field_and_row_rules() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let d = setup(&app, &cast.admin).await;
    let mut fields = serde_json::Map::new();
    fields.insert(d.amount.clone(), json!("hidden"));
    grant(&cast.admin, &d, json!({"rights": ["view"], "rows": {"type": "created_by_me"}, "fields": fields})).await;
    let matrix = format!("/admin/groups/{}/grants", d.group);
    let r = cast.admin.post_form(&matrix, &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (s, v) = cast.member.get_json(&format!("/api/v1/tables/{}/records", d.tid)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "no right left: {v}");
    let view = [(format!("right.{}", d.tid), "view".to_owned())];
    let pairs: Vec<(&str, &str)> = view.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = cast.admin.post_form(&matrix, &pairs).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, g) = cast.admin.get_json(&format!("/api/v1/groups/{}", d.group)).await;
    let grant = &g["group"]["grants"][0];
    assert_eq!(grant["fields"][&d.amount], "hidden", "{g}");
    assert_eq!(grant["rows"]["type"], "created_by_me", "{g}");
}

/// "What this user may do" shows what the engine enforces: each right's own records and the
/// fields each writing right may not write, and whether the user is disabled.
#[tokio::test]
async fn what_a_user_may_do_shows_each_rights_own_records_and_fields() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let d = setup(&app, a).await;
    grant(a, &d, json!({"rights": ["view"]})).await;
    let g2 = a.post_json("/api/v1/groups", json!({"name": "編集"})).await.1["group"]["id"].as_str().unwrap().to_owned();
    a.send_json(Method::PUT, &format!("/api/v1/groups/{g2}/members"), json!({"members": [d.member_id]})).await;
    let mut fields = serde_json::Map::new();
    fields.insert(d.memo.clone(), json!("read_only"));
    // Hidden from this group alone: view (through the other group) shows it, edit may not write it.
    fields.insert(d.amount.clone(), json!("hidden"));
    let body = json!({"rights": ["edit"], "rows": {"type": "created_by_me"}, "fields": fields});
    let (s, v) = a.send_json(Method::PUT, &format!("/api/v1/groups/{g2}/grants/{}", d.tid), body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/users/{}/access", d.member_id)).await;
    let row = v["tables"].as_array().unwrap().iter().find(|r| r["table"] == d.tid.as_str()).unwrap();
    assert_eq!(row["rows"], "all", "{row}");
    assert_eq!(row["rows_by_right"], json!({"view": "all", "edit": "created_by_me"}));
    assert_eq!(row["read_only_by_right"], json!({"edit": ["金額", "メモ"]}));
    assert_eq!(row["hidden_fields"], json!([]), "view shows every field");
    assert_eq!(v["status"], "active");
    let page = a.get(&format!("/admin/users/{}/access", d.member_id)).await.text().await.unwrap();
    assert!(page.contains("View: All records") && page.contains("Edit: Records they created"), "{page}");
    assert!(!page.contains("is disabled"));
    assert_eq!(row["hidden_by_right"], json!({}));
    // A field the export hides (view shows it) is listed for export: the CSV leaves it out.
    let body = json!({"rights": ["edit", "export"], "rows": {"type": "created_by_me"}, "fields": fields});
    let (s, v) = a.send_json(Method::PUT, &format!("/api/v1/groups/{g2}/grants/{}", d.tid), body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/users/{}/access", d.member_id)).await;
    let row = v["tables"].as_array().unwrap().iter().find(|r| r["table"] == d.tid.as_str()).unwrap();
    assert_eq!(row["hidden_by_right"], json!({"export": ["金額"]}), "{row}");
    let page = a.get(&format!("/admin/users/{}/access", d.member_id)).await.text().await.unwrap();
    assert!(page.contains("<div>Export: 金額</div>"), "{page}");
    let (s, _) = a.post_json(&format!("/api/v1/users/{}/disable", d.member_id), json!({})).await;
    assert!(s.is_success());
    let page = a.get(&format!("/admin/users/{}/access", d.member_id)).await.text().await.unwrap();
    assert!(page.contains("This user is disabled"), "{page}");
    let (_, v) = a.get_json(&format!("/api/v1/users/{}/access", d.member_id)).await;
    assert_eq!(v["status"], "disabled");
    // Create without view: its read-only fields are still listed (there is no hidden column).
    grant(a, &d, json!({"rights": []})).await;
    let mut fields = serde_json::Map::new();
    fields.insert(d.memo.clone(), json!("read_only"));
    let body = json!({"rights": ["create"], "fields": fields});
    let (s, v) = a.send_json(Method::PUT, &format!("/api/v1/groups/{g2}/grants/{}", d.tid), body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/users/{}/access", d.member_id)).await;
    let row = v["tables"].as_array().unwrap().iter().find(|r| r["table"] == d.tid.as_str()).unwrap();
    assert_eq!(row["read_only_by_right"], json!({"create": ["メモ"]}), "{row}");
}

/// The matrix form saves only the tables its admin changed, in one transaction; a table whose
/// rights someone else changed since the page was shown is refused (409, nothing saved), not
/// overwritten; a refused rename keeps what was typed and says why.
#[tokio::test]
async fn the_matrix_saves_only_what_its_admin_changed_and_never_overwrites_a_change_made_meanwhile() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let d = setup(&app, a).await;
    grant(a, &d, json!({"rights": ["view"]})).await;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "第二"})).await;
    let second = v["table"]["id"].as_str().unwrap().to_owned();
    let page_url = format!("/admin/groups/{}", d.group);
    let matrix = format!("{page_url}/grants");
    let page = a.get(&page_url).await.text().await.unwrap();
    let was = |tid: &str| {
        let marker = format!("name=\"was.{tid}\" value=\"");
        page.split(&marker).nth(1).unwrap().split('"').next().unwrap().to_owned()
    };
    let (was_first, was_second) = (was(&d.tid), was(&second));
    // Meanwhile another admin grants view on the second table.
    let (s, _) = a
        .send_json(Method::PUT, &format!("/api/v1/groups/{}/grants/{second}", d.group), json!({"rights": ["view"]}))
        .await;
    assert_eq!(s, StatusCode::OK);
    // This admin adds edit on the first table and leaves the second as the page showed it.
    let form = |first_rights: &[&str], second_rights: &[&str]| {
        let mut f: Vec<(String, String)> = vec![
            (format!("was.{}", d.tid), was_first.clone()),
            (format!("was.{second}"), was_second.clone()),
            (format!("rows.{}", d.tid), "all".into()),
            (format!("rows.{second}"), "all".into()),
        ];
        f.extend(first_rights.iter().map(|r| (format!("right.{}", d.tid), (*r).to_owned())));
        f.extend(second_rights.iter().map(|r| (format!("right.{second}"), (*r).to_owned())));
        f
    };
    let group_url = format!("/api/v1/groups/{}", d.group);
    let group_url = &group_url;
    let rights_of = |tid: String| async move {
        let (_, g) = a.get_json(group_url).await;
        g["group"]["grants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|gr| gr["table"] == tid.as_str())
            .map(|gr| gr["rights"].clone())
    };
    let f = form(&["view", "edit"], &[]);
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = a.post_form(&matrix, &pairs).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(rights_of(d.tid.clone()).await, Some(json!(["view", "edit"])));
    assert_eq!(rights_of(second.clone()).await, Some(json!(["view"])), "the other admin's change stays");
    // Changing the second table from the old page: refused, nothing saved, the page says so.
    let f = form(&["view"], &["export", "view"]);
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = a.post_form(&matrix, &pairs).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("Someone changed these rights meanwhile"));
    assert_eq!(rights_of(d.tid.clone()).await, Some(json!(["view", "edit"])), "nothing saved");
    assert_eq!(rights_of(second.clone()).await, Some(json!(["view"])));
    // A table the page did not show (made since) is left alone by the form, and a table whose
    // "records assigned to them" rule (no choice for it on the matrix) someone changed
    // meanwhile does not refuse a change elsewhere.
    let grants_url = format!("/api/v1/groups/{}/grants/{}", d.group, d.tid);
    let assigned = json!({"rights": ["view", "edit"], "rows": {"type": "user_is_me", "field": d.owner}});
    assert_eq!(a.send_json(Method::PUT, &grants_url, assigned).await.0, StatusCode::OK);
    let page = a.get(&page_url).await.text().await.unwrap();
    let token = |tid: &str| {
        let marker = format!("name=\"was.{tid}\" value=\"");
        page.split(&marker).nth(1).unwrap().split('"').next().unwrap().to_owned()
    };
    let (was_first, was_second) = (token(&d.tid), token(&second));
    assert!(!page.contains(&format!("name=\"rows.{}\"", d.tid)), "no choice for an assigned-to rule");
    let everyone = json!({"rights": ["view", "edit"], "rows": {"type": "all"}});
    assert_eq!(a.send_json(Method::PUT, &grants_url, everyone).await.0, StatusCode::OK);
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "第三"})).await;
    let third = v["table"]["id"].as_str().unwrap().to_owned();
    let (s, _) = a
        .send_json(Method::PUT, &format!("/api/v1/groups/{}/grants/{third}", d.group), json!({"rights": ["view"]}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let f = [
        (format!("was.{}", d.tid), was_first.clone()),
        (format!("was.{second}"), was_second.clone()),
        (format!("rows.{second}"), "all".to_owned()),
        (format!("right.{}", d.tid), "view".to_owned()),
        (format!("right.{}", d.tid), "edit".to_owned()),
        (format!("right.{second}"), "view".to_owned()),
        (format!("right.{second}"), "export".to_owned()),
    ];
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = a.post_form(&matrix, &pairs).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(rights_of(second.clone()).await, Some(json!(["view", "export"])), "the change asked for");
    assert_eq!(rights_of(third.clone()).await, Some(json!(["view"])), "a table the page did not show stays");
    let (_, g) = a.get_json(group_url).await;
    let first =
        g["group"]["grants"].as_array().unwrap().iter().find(|gr| gr["table"] == d.tid.as_str()).unwrap().clone();
    assert_eq!(first["rows"]["type"], "all", "the other admin's change stays: {first}");
    // The store compares the grant inside its transaction too: a change that expects another
    // grant than the stored one (someone saved in the same moment) saves nothing.
    let admin = app.admin_principal("acme", "admin").await;
    let groups = admin.authorize::<daicho_domain::ManageGroups>().unwrap();
    let grant = daicho_domain::TableGrant {
        group: d.group.parse().unwrap(),
        table: second.parse().unwrap(),
        rights: daicho_domain::Rights::NONE,
        rows: daicho_domain::RowRule::All,
        fields: Default::default(),
    };
    let event = daicho_domain::NewAuditEvent {
        at: daicho_domain::Clock::now(&app.clock),
        tenant_id: Some(admin.tenant_id),
        actor_id: Some(admin.user_id),
        actor_login: "admin".into(),
        ip: "127.0.0.1".into(),
        user_agent: String::new(),
        action: daicho_domain::AuditAction::GroupGrant,
        target: String::new(),
        outcome: daicho_domain::Outcome::Success,
        details: String::new(),
    };
    // Expected: no grant at all (the second table has one now).
    let stale = daicho_store::GrantChange { grant, expected: Some(None), event };
    let e = app.store().set_table_grants(&groups, vec![stale]).await.unwrap_err();
    assert!(matches!(e, daicho_store::StoreError::Conflict(_)), "{e:?}");
    assert_eq!(rights_of(second.clone()).await, Some(json!(["view", "export"])), "nothing saved");
    // A rename to a name another group has: the typed name stays, with the reason.
    a.post_json("/api/v1/groups", json!({"name": "経理"})).await;
    let r = a.post_form(&format!("{page_url}/edit"), &[("name", "経理"), ("description", "新しい説明")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("value=\"経理\"") && page.contains("新しい説明"), "{page}");
    assert!(page.contains("This value is already in use.") && page.contains("aria-invalid=\"true\""), "{page}");
    // The history says what a rename and a deletion changed: the old name, the members and
    // grants that went.
    let r = a.post_form(&format!("{page_url}/edit"), &[("name", "営業二課"), ("description", "")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, v) = a.get_json("/api/v1/audit?action=group.update").await;
    let details = v["events"][0]["details"].as_str().unwrap();
    assert!(details.starts_with("name: 営業 <Sales> -> 営業二課; description: "), "{details}");
    let (s, _) = a.send_json(Method::DELETE, group_url, json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = a.get_json("/api/v1/audit?action=group.delete").await;
    let details = v["events"][0]["details"].as_str().unwrap();
    assert!(details.contains(&format!("members={}", d.member_id)) && details.contains("rights=view,edit"), "{details}");
}

#[tokio::test]
async fn a_checkbox_is_never_empty_for_records_made_before_it_or_by_someone_who_may_not_set_it() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(&app, a).await;
    for n in 0..3 {
        assert_eq!(add(a, &d, json!({"件名": format!("案件{n}")})).await.0, StatusCode::CREATED);
    }
    let (s, v) = a
        .post_json(&format!("/api/v1/tables/{}/fields", d.tid), json!({"name": "完了", "kind": {"type": "checkbox"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let done = v["table"]["fields"].as_array().unwrap().iter().find(|f| f["name"] == "完了").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let unticked = format!("/api/v1/tables/{}/records?filter.eq.完了=false&count=true", d.tid);
    let (_, v) = a.get_json(&unticked).await;
    assert_eq!(v["count"], 3, "the records made before the checkbox read as unticked: {v}");
    // Empty checkboxes an older version left (and a multiple choice's index it made) are
    // upgraded: SQLite at start-up, PostgreSQL by its migration.
    let (s, _) = a
        .post_json(
            &format!("/api/v1/tables/{}/fields", d.tid),
            json!({"name": "区分", "kind": {"type": "multi_choice", "choices": ["A", "B"]}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    app.upgrade_after(&format!("UPDATE t_{} SET f_{} = NULL", d.tid.replace('-', ""), done.replace('-', ""))).await;
    let (_, v) = a.get_json(&unticked).await;
    assert_eq!(v["count"], 3, "upgraded: {v}");
    // A member from whom the checkbox is hidden makes a record: it is unticked, not empty.
    let mut fields = serde_json::Map::new();
    fields.insert(done.clone(), json!("hidden"));
    grant(a, &d, json!({"rights": ["view", "create"], "fields": fields})).await;
    assert_eq!(add(m, &d, json!({"件名": "メンバーの案件"})).await.0, StatusCode::CREATED);
    let (_, v) = a.get_json(&unticked).await;
    assert_eq!(v["count"], 4, "{v}");
    // "Is empty" is not a condition a checkbox takes: it never is.
    let (s, v) = a.get_json(&format!("/api/v1/tables/{}/records?filter.empty.完了=&count=true", d.tid)).await;
    assert_eq!((s, v["error"]["fields"][0]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("bad_operator")));
}

#[tokio::test]
async fn a_user_field_is_filtered_by_login_id_or_name_on_every_path() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let d = setup(&app, a).await;
    for (n, owner) in [(0, Some(&d.member_id)), (1, Some(&d.member_id)), (2, None)] {
        let mut values = json!({"件名": format!("案件{n}")});
        if let Some(o) = owner {
            values["担当"] = json!(o);
        }
        assert_eq!(add(a, &d, values).await.0, StatusCode::CREATED);
    }
    let t = &d.tid;
    let count = |q: &str| format!("/api/v1/tables/{t}/records?count=true&{q}");
    for q in ["filter.eq.担当=MEMBER1", "filter.eq.担当=member1%20(member1)", "filter.any_of.担当=member1,admin"]
    {
        let (s, v) = a.get_json(&count(q)).await;
        assert_eq!((s, v["count"].as_u64()), (StatusCode::OK, Some(2)), "{q}: {v}");
    }
    let (_, v) = a.get_json(&count("filter.eq.作成者%20Created%20by=admin")).await;
    assert_eq!(v["count"], 3, "a system field by login ID: {v}");
    // Naming no one matches nothing (an error would tell which login IDs exist); a name with a
    // comma is one name.
    for q in ["filter.eq.担当=nobody", "filter.eq.担当=member1,admin"] {
        let (s, v) = a.get_json(&count(q)).await;
        assert_eq!((s, v["count"].as_u64()), (StatusCode::OK, Some(0)), "{q}: {v}");
    }
    // The grid, the export and a bulk selection read it the same way.
    let page = a.get(&format!("/tables/{t}?filter.eq.担当=member1")).await.text().await.unwrap();
    assert!(page.contains("案件0") && !page.contains("案件2"), "grid");
    assert!(
        page.contains("value=\"member1\"") && !page.contains(&format!("value=\"{}\"", d.member_id)),
        "the form keeps what was typed"
    );
    let csv = a.get(&format!("/api/v1/tables/{t}/export.csv?filter.eq.担当=member1")).await.text().await.unwrap();
    assert_eq!(csv.lines().count(), 3, "header and two records: {csv}");
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{t}/records/bulk-update"),
            json!({"query": "filter.eq.担当=member1", "values": {"メモ": "担当あり"}}),
        )
        .await;
    assert_eq!((s, v["updated"].as_u64()), (StatusCode::OK, Some(2)), "{v}");
    // A saved view keeps the user, not the name typed.
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{t}/views"),
            json!({"name": "担当: member1", "filters": [{"field": "担当", "op": "eq", "value": "member1"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["view"]["filters"][0]["value"], json!(d.member_id));
    // A name that is no one's is kept as typed (it matches no one).
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{t}/views"),
            json!({"name": "誰か", "filters": [{"field": "担当", "op": "eq", "value": "nobody"}]}),
        )
        .await;
    assert_eq!((s, v["view"]["filters"][0]["value"].as_str()), (StatusCode::CREATED, Some("nobody")), "{v}");
    // Part by part: the user found is kept by id, the name that is no one's as typed.
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{t}/views"),
            json!({"name": "誰か2", "filters": [{"field": "担当", "op": "any_of", "value": "member1,nobody"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["view"]["filters"][0]["value"], json!(format!("{},nobody", d.member_id)));
    // What is kept as typed is held to the grid filter input's limits.
    for (value, code) in [("x".repeat(1001), "out_of_range"), ("no\u{7}body".to_owned(), "control_chars")] {
        let (s, v) = a
            .post_json(
                &format!("/api/v1/tables/{t}/views"),
                json!({"name": "長い", "filters": [{"field": "担当", "op": "eq", "value": value}]}),
            )
            .await;
        assert_eq!(
            (s, v["error"]["fields"][0]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{v}"
        );
    }
}

#[tokio::test]
async fn naming_a_hidden_field_or_writing_a_read_only_one_is_refused_and_recorded_on_every_path() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let d = setup(&app, a).await;
    let (_, v) = add(a, &d, json!({"件名": "案件", "金額": 5, "メモ": "m"})).await;
    let rid = v["record"]["id"].as_i64().unwrap();
    let mut fields = serde_json::Map::new();
    fields.insert(d.amount.clone(), json!("hidden"));
    fields.insert(d.memo.clone(), json!("read_only"));
    grant(a, &d, json!({"rights": ["view", "create", "edit", "import", "export"], "fields": fields})).await;
    let m = &cast.member;
    let t = &d.tid;
    let denied = || async {
        let (_, v) = a.get_json("/api/v1/audit?action=permission.denied&limit=500").await;
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["details"].as_str().unwrap_or("").to_owned())
            .filter(|d| d.starts_with("fields hidden or read-only"))
            .count()
    };
    // Each attempt: refused as before (422), and now one more refusal in the history.
    let attempts: Vec<(&str, StatusCode)> = vec![
        ("filter", m.get_json(&format!("/api/v1/tables/{t}/records?filter.eq.金額=5")).await.0),
        ("sort", m.get_json(&format!("/api/v1/tables/{t}/records?sort={}", d.amount)).await.0),
        ("column", m.get_json(&format!("/api/v1/tables/{t}/records?col=金額")).await.0),
        ("export", m.get(&format!("/tables/{t}/export.csv?filter.gte.金額=1")).await.status()),
        ("create hidden", add(m, &d, json!({"件名": "x", "金額": 1})).await.0),
        ("create read-only", add(m, &d, json!({"件名": "x", "メモ": "y"})).await.0),
        (
            "edit read-only",
            m.send_json(
                Method::PATCH,
                &format!("/api/v1/tables/{t}/records/{rid}"),
                json!({"version": 1, "values": {"メモ": "changed"}}),
            )
            .await
            .0,
        ),
        ("import", crate::tables::import(m, t, "", "件名,金額\nx,1\n".into()).await.0),
        (
            "view",
            m.post_json(
                &format!("/api/v1/tables/{t}/views"),
                json!({"name": "probe", "filters": [{"field": "金額", "op": "gt", "value": "1"}]}),
            )
            .await
            .0,
        ),
    ];
    for (what, status) in &attempts {
        assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{what}");
    }
    let expected = attempts.len();
    assert_eq!(denied().await, expected, "each attempt recorded once");
    // The grid page names it in its address: the page explains, and the attempt is recorded.
    let r = m.get(&format!("/tables/{t}?sort={}", d.amount)).await;
    assert!(r.status().is_success() || r.status() == StatusCode::UNPROCESSABLE_ENTITY, "{}", r.status());
    assert_eq!(denied().await, expected + 1, "grid recorded");
    // A field that does not exist is an ordinary mistake, not a refusal.
    let (s, _) = m.get_json(&format!("/api/v1/tables/{t}/records?filter.eq.存在しない=5")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(denied().await, expected + 1);
    // Nothing was written.
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records/{rid}")).await;
    assert_eq!(v["record"]["values"][&d.memo], "m");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_right_over_records_whose_user_field_is_them_creates_and_imports_only_such_records() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(&app, a).await;
    let (_, me) = a.get_json("/api/v1/users").await;
    let admin_id = me["users"].as_array().unwrap().iter().find(|u| u["login_id"] != "member1").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    grant(a, &d, json!({"rights": ["view", "create", "import"], "rows": {"type": "user_is_me", "field": d.owner}}))
        .await;
    let t = &d.tid;
    // Someone else (or no one) as 担当: refused by field; the member as 担当: made.
    for owner in [json!(admin_id), json!(null)] {
        let (s, v) = add(m, &d, json!({"件名": "x", "担当": owner})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        let e = &v["error"]["fields"][0];
        assert_eq!((e["field"].as_str(), e["code"].as_str()), (Some(d.owner.as_str()), Some("must_be_you")), "{v}");
    }
    let (s, v) = add(m, &d, json!({"件名": "mine", "担当": d.member_id})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // An import is refused by row, whole.
    let csv = "件名,担当\nok,member1\nplanted,admin\n";
    let denied = || refusals(a);
    let before = denied().await;
    let (s, v) = crate::tables::import(m, t, "", csv.into()).await;
    assert_eq!(denied().await, before + 1, "the refused import is recorded");
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let e = &v["error"]["fields"][0];
    assert_eq!(
        (e["field"].as_str(), e["code"].as_str()),
        (Some(format!("row:3:{}", d.owner).as_str()), Some("must_be_you")),
        "{v}"
    );
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 1, "nothing planted, nothing half-imported");
    // The new-record form starts with the member as 担当.
    let page = m.get(&format!("/tables/{t}/records/new")).await.text().await.unwrap();
    let select = page.split(&format!("name=\"{}\"", d.owner)).nth(1).and_then(|s| s.split("</select>").next()).unwrap();
    assert!(select.contains(&format!("value=\"{}\" selected", d.member_id)), "{select}");
}

#[tokio::test]
async fn a_row_rule_on_a_field_view_hides_is_judged_on_the_whole_record() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(&app, a).await;
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{}/fields", d.tid),
            json!({"name": "コード", "kind": {"type": "text"}, "rules": {"unique": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, v) = add(a, &d, json!({"件名": "mine", "担当": d.member_id, "コード": "M"})).await;
    let mine = v["record"]["id"].as_i64().unwrap();
    let (_, v) = add(a, &d, json!({"件名": "theirs", "コード": "T"})).await;
    let theirs = v["record"]["id"].as_i64().unwrap();
    // View and edit of the records whose 担当 is them, with 担当 itself hidden.
    let mut fields = serde_json::Map::new();
    fields.insert(d.owner.clone(), json!("hidden"));
    let rule = json!({"type": "user_is_me", "field": d.owner});
    grant(a, &d, json!({"rights": ["view", "edit", "delete", "import"], "rows": rule, "fields": fields})).await;
    let t = &d.tid;
    // The record page offers saving and deleting their own record, as the API allows.
    let page = m.get(&format!("/tables/{t}/records/{mine}")).await.text().await.unwrap();
    assert!(page.contains("class=\"primary\">Save</button>"), "save offered");
    assert!(page.contains(&format!("/tables/{t}/records/{mine}/delete")), "delete offered");
    let (s, v) = m
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{t}/records/{mine}"),
            json!({"version": 1, "values": {"件名": "edited"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(m.get(&format!("/tables/{t}/records/{theirs}")).await.status(), StatusCode::NOT_FOUND);
    // An import by key updates their own record (it was reported "not editable").
    let (s, v) = crate::tables::import(m, t, "?key=コード", "コード,件名\nM,imported\n".into()).await;
    assert_eq!((s, &v["updated"]), (StatusCode::OK, &json!(1)), "{v}");
    // The record page's form saves it (its fields are offered, though view hides 担当).
    let page = m.get(&format!("/tables/{t}/records/{mine}")).await.text().await.unwrap();
    assert!(page.contains(&format!("name=\"{}\"", d.title)), "件名 is an input");
    let version = page.split("name=\"version\" value=\"").nth(1).and_then(|v| v.split('"').next()).unwrap().to_owned();
    let (_, table) = a.get_json(&format!("/api/v1/tables/{t}")).await;
    let code = table["table"]["fields"].as_array().unwrap().iter().find(|f| f["name"] == "コード").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // (The form as the page shows it: every input it holds, 件名 changed.)
    let r = m
        .post_form(
            &format!("/tables/{t}/records/{mine}"),
            &[
                ("version", version.as_str()),
                (d.title.as_str(), "from the page"),
                (code.as_str(), "M"),
                (d.memo.as_str(), ""),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records/{mine}")).await;
    assert_eq!(v["record"]["values"][&d.title], "from the page");
    assert_eq!(v["record"]["values"][&code], "M");
    assert_eq!(v["record"]["values"][&d.owner], json!(d.member_id), "the hidden 担当 is kept");
}

#[tokio::test]
async fn two_groups_with_different_records_write_a_field_only_where_a_group_covering_the_record_allows_it() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(&app, a).await;
    let (_, users) = a.get_json("/api/v1/users").await;
    let admin_id = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] != "member1").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Group 1: view and edit every record, 担当 read-only. Group 2: view, create and edit the
    // records whose 担当 is them, everything writable.
    let mut ro = serde_json::Map::new();
    ro.insert(d.owner.clone(), json!("read_only"));
    grant(a, &d, json!({"rights": ["view", "create", "edit"], "fields": ro})).await;
    let g2 = a.post_json("/api/v1/groups", json!({"name": "自分の案件"})).await.1["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    a.send_json(Method::PUT, &format!("/api/v1/groups/{g2}/members"), json!({"members": [d.member_id]})).await;
    let (s, v) = a
        .send_json(
            Method::PUT,
            &format!("/api/v1/groups/{g2}/grants/{}", d.tid),
            json!({"rights": ["view", "create", "edit"], "rows": {"type": "user_is_me", "field": d.owner}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let t = &d.tid;
    let patch = |rid: i64, version: i64, values: Value| async move {
        m.send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{t}/records/{rid}"),
            json!({"version": version, "values": values}),
        )
        .await
    };
    // They create their own records (group 2 covers them and lets them write 担当).
    let (s, v) = add(m, &d, json!({"件名": "mine", "担当": d.member_id})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let mine = v["record"]["id"].as_i64().unwrap();
    let (_, v) = add(a, &d, json!({"件名": "theirs", "担当": admin_id})).await;
    let theirs = v["record"]["id"].as_i64().unwrap();
    // A record without 担当: group 1 covers it (every record), and 担当 was not set.
    let (s, v) = add(m, &d, json!({"件名": "unassigned"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let denied = || refusals(a);
    let before = denied().await;
    // Someone else's record: group 1 lets them edit it, but not its 担当 — they cannot take it.
    let (s, v) = patch(theirs, 1, json!({"担当": d.member_id})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["fields"][0]["code"], "read_only", "{v}");
    assert_eq!(denied().await, before + 1, "the attempt is recorded");
    let (s, v) = patch(theirs, 1, json!({"件名": "edited by member"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records/{theirs}")).await;
    assert_eq!(v["record"]["values"][&d.owner], json!(admin_id), "still theirs");
    // What the member may do says 担当 is writable on some records only.
    let (_, v) = a.get_json(&format!("/api/v1/users/{}/access", d.member_id)).await;
    let row = v["tables"].as_array().unwrap().iter().find(|r| r["table"] == t.as_str()).unwrap();
    assert_eq!(row["writable_on_some_records_by_right"], json!({"create": ["担当"], "edit": ["担当"]}), "{row}");
    let page = a.get(&format!("/admin/users/{}/access", d.member_id)).await.text().await.unwrap();
    assert!(page.contains("Edit: 担当 <span class=\"muted\">(writable on some records only)</span>"), "{page}");
    // The record pages offer 担当 for changing on their own record only.
    let field = format!("name=\"{}\"", d.owner);
    let page = |rid: i64| async move { m.get(&format!("/tables/{t}/records/{rid}")).await.text().await.unwrap() };
    assert!(page(mine).await.contains(&field), "their own record's 担当 is an input");
    let other = page(theirs).await;
    assert!(
        !other.contains(&field) && other.contains(&format!("name=\"{}\"", d.title)),
        "someone else's is shown, not offered"
    );
    // Their own record: group 2 covers it, so they may hand it over.
    let (s, v) = patch(mine, 1, json!({"担当": admin_id})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // A bulk edit setting 担当 on a record they do not own is refused whole.
    let (s, v) = m
        .post_json(
            &format!("/api/v1/tables/{t}/records/bulk-update"),
            json!({"ids": [theirs], "values": {"担当": d.member_id}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records/{theirs}")).await;
    assert_eq!(v["record"]["values"][&d.owner], json!(admin_id));
}

#[tokio::test]
async fn a_new_record_keeps_the_default_of_a_field_its_groups_keep_read_only_and_refusals_count_once() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(&app, a).await;
    let t = &d.tid;
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{t}/fields"),
            json!({"name": "状態", "kind": {"type": "text"}, "rules": {"default": "未承認"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let state = v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned();
    // Group 1: view and create every record, 状態 read-only. Group 2: view and create the records whose
    // 担当 is them, 状態 writable.
    let mut ro = serde_json::Map::new();
    ro.insert(state.clone(), json!("read_only"));
    grant(a, &d, json!({"rights": ["view", "create"], "fields": ro})).await;
    let g2 =
        a.post_json("/api/v1/groups", json!({"name": "担当者"})).await.1["group"]["id"].as_str().unwrap().to_owned();
    a.send_json(Method::PUT, &format!("/api/v1/groups/{g2}/members"), json!({"members": [d.member_id]})).await;
    let rule = json!({"type": "user_is_me", "field": d.owner});
    a.send_json(
        Method::PUT,
        &format!("/api/v1/groups/{g2}/grants/{t}"),
        json!({"rights": ["view", "create"], "rows": rule}),
    )
    .await;
    // Emptying 状態 on a record only group 1 covers is writing it: refused, and recorded.
    let denied = || refusals(a);
    let before = denied().await;
    let (s, v) = add(m, &d, json!({"件名": "x", "状態": null})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        (v["error"]["fields"][0]["field"].as_str(), v["error"]["fields"][0]["code"].as_str()),
        (Some(state.as_str()), Some("read_only"))
    );
    assert_eq!(denied().await, before + 1);
    // Left out, it starts at its default; on their own record (group 2) they may set it.
    let (s, v) = add(m, &d, json!({"件名": "x"})).await;
    assert_eq!((s, &v["record"]["values"][&state]), (StatusCode::CREATED, &json!("未承認")), "{v}");
    let (s, v) = add(m, &d, json!({"件名": "y", "担当": d.member_id, "状態": "承認"})).await;
    assert_eq!((s, &v["record"]["values"][&state]), (StatusCode::CREATED, &json!("承認")), "{v}");
    // A page save of a record view shows, outside edit's rows: refused as the API refuses it
    // (403), and recorded once.
    grant(a, &d, json!({"rights": ["view"]})).await;
    a.send_json(
        Method::PUT,
        &format!("/api/v1/groups/{g2}/grants/{t}"),
        json!({"rights": ["edit"], "rows": {"type": "created_by_me"}}),
    )
    .await;
    let (_, v) = add(a, &d, json!({"件名": "admin's"})).await;
    let theirs = v["record"]["id"].as_i64().unwrap();
    let before = denied().await;
    let r =
        m.post_form(&format!("/tables/{t}/records/{theirs}"), &[("version", "1"), (d.title.as_str(), "taken")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(denied().await, before + 1, "one record of one refusal");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records/{theirs}")).await;
    assert_eq!(v["record"]["values"][&d.title], "admin's");
}

#[tokio::test]
async fn a_page_that_cannot_judge_the_record_offers_only_what_every_group_allows() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(&app, a).await;
    let t = &d.tid;
    // Group 1: view and edit every record, 担当 hidden, メモ read-only. Group 2: view and edit
    // the records whose 担当 is them, メモ writable. The page cannot tell whose a record is.
    let mut f1 = serde_json::Map::new();
    f1.insert(d.owner.clone(), json!("hidden"));
    f1.insert(d.memo.clone(), json!("read_only"));
    grant(a, &d, json!({"rights": ["view", "edit", "import"], "fields": f1})).await;
    let g2 =
        a.post_json("/api/v1/groups", json!({"name": "担当者"})).await.1["group"]["id"].as_str().unwrap().to_owned();
    a.send_json(Method::PUT, &format!("/api/v1/groups/{g2}/members"), json!({"members": [d.member_id]})).await;
    let rule = json!({"type": "user_is_me", "field": d.owner});
    a.send_json(
        Method::PUT,
        &format!("/api/v1/groups/{g2}/grants/{t}"),
        json!({"rights": ["view", "edit", "import"], "rows": rule}),
    )
    .await;
    let (_, v) = add(a, &d, json!({"件名": "theirs", "メモ": "m"})).await;
    let theirs = v["record"]["id"].as_i64().unwrap();
    let (_, v) = add(a, &d, json!({"件名": "mine", "メモ": "m", "担当": d.member_id})).await;
    let mine = v["record"]["id"].as_i64().unwrap();
    let memo_input = format!("name=\"{}\"", d.memo);
    for rid in [theirs, mine] {
        let page = m.get(&format!("/tables/{t}/records/{rid}")).await.text().await.unwrap();
        assert!(
            !page.contains(&memo_input) && page.contains(&format!("name=\"{}\"", d.title)),
            "メモ shown, not offered"
        );
    }
    // The API, judged by the store on the stored record: their own record's メモ only.
    let patch = |rid: i64| async move {
        let path = format!("/api/v1/tables/{t}/records/{rid}");
        m.send_json(Method::PATCH, &path, json!({"version": 1, "values": {"メモ": "new"}})).await
    };
    assert_eq!(patch(mine).await.0, StatusCode::OK);
    // An import by key, likewise judged by the store: their own record's メモ.
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{t}/fields"),
            json!({"name": "コード", "kind": {"type": "text"}, "rules": {"unique": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let code = v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned();
    a.send_json(
        Method::PATCH,
        &format!("/api/v1/tables/{t}/records/{mine}"),
        json!({"version": 2, "values": {"コード": "M"}}),
    )
    .await;
    let (s, v) = crate::tables::import(m, t, "?key=コード", "コード,メモ\nM,imported\n".into()).await;
    assert_eq!((s, &v["updated"]), (StatusCode::OK, &json!(1)), "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records/{mine}")).await;
    assert_eq!((&v["record"]["values"][&d.memo], &v["record"]["values"][&code]), (&json!("imported"), &json!("M")));
    let (s, v) = patch(theirs).await;
    assert_eq!((s, v["error"]["fields"][0]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("read_only")));
}

#[tokio::test]
async fn a_form_shown_before_a_field_became_read_only_saves_when_that_field_was_left_empty() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(&app, a).await;
    let t = &d.tid;
    grant(a, &d, json!({"rights": ["view", "create"]})).await;
    let page = m.get(&format!("/tables/{t}/records/new")).await.text().await.unwrap();
    assert!(page.contains(&format!("name=\"{}\"", d.memo)), "メモ offered");
    let mut ro = serde_json::Map::new();
    ro.insert(d.memo.clone(), json!("read_only"));
    grant(a, &d, json!({"rights": ["view", "create"], "fields": ro})).await;
    let denied = || refusals(a);
    let before = denied().await;
    let form = [(d.title.as_str(), "古いフォーム"), (d.memo.as_str(), ""), (d.amount.as_str(), "")];
    let r = m.post_form(&format!("/tables/{t}/records"), &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "saved: メモ was left empty");
    assert_eq!(denied().await, before, "nothing refused");
    // Filled in, it is refused by name and recorded.
    let form = [(d.title.as_str(), "x"), (d.memo.as_str(), "書いた")];
    let r = m.post_form(&format!("/tables/{t}/records"), &form).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(denied().await, before + 1);
    // A record's stored メモ emptied by a form shown before it became read-only is a change:
    // refused by name, nothing saved.
    let (_, v) = add(a, &d, json!({"件名": "stored", "メモ": "x"})).await;
    let rid = v["record"]["id"].as_i64().unwrap();
    grant(a, &d, json!({"rights": ["view", "create", "edit"], "fields": {d.memo.clone(): "read_only"}})).await;
    let form = [("version", "1"), (d.title.as_str(), "changed"), (d.memo.as_str(), "")];
    let r = m.post_form(&format!("/tables/{t}/records/{rid}"), &form).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records/{rid}")).await;
    assert_eq!((&v["record"]["values"][&d.title], &v["record"]["values"][&d.memo]), (&json!("stored"), &json!("x")));
    // A number and a ticked box a stale form sends back unchanged are no change: saved, and
    // nothing recorded. Unticking the box is a change: refused by name.
    let (s, v) =
        a.post_json(&format!("/api/v1/tables/{t}/fields"), json!({"name": "済", "kind": {"type": "checkbox"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let done = v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned();
    let (_, v) = add(a, &d, json!({"件名": "n", "金額": 100, "済": true})).await;
    let rid = v["record"]["id"].as_i64().unwrap();
    let mut ro = serde_json::Map::new();
    ro.insert(d.amount.clone(), json!("read_only"));
    ro.insert(done.clone(), json!("read_only"));
    grant(a, &d, json!({"rights": ["view", "create", "edit"], "fields": ro})).await;
    let before = denied().await;
    let fields = [("fields", d.title.as_str()), ("fields", d.amount.as_str()), ("fields", done.as_str())];
    let mut form: Vec<(&str, &str)> =
        vec![("version", "1"), (d.title.as_str(), "n2"), (d.amount.as_str(), "100"), (done.as_str(), "on")];
    form.extend(fields);
    let r = m.post_form(&format!("/tables/{t}/records/{rid}"), &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "unchanged values of fields now read-only");
    assert_eq!(denied().await, before);
    let mut form: Vec<(&str, &str)> = vec![("version", "2"), (d.title.as_str(), "n3"), (d.amount.as_str(), "100")];
    form.extend(fields);
    let r = m.post_form(&format!("/tables/{t}/records/{rid}"), &form).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "the box unticked");
    assert!(r.text().await.unwrap().contains(&format!("href=\"#{done}\"")), "the box named in the summary");
    assert_eq!(denied().await, before + 1, "recorded");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records/{rid}")).await;
    assert_eq!((&v["record"]["values"][&d.title], &v["record"]["values"][&done]), (&json!("n2"), &json!(true)));
    // Multi-line text a browser sends back with CRLF, and a new record's default sent back as
    // the form started, are no change either.
    for (name, kind, rules) in [("備考", "multiline", json!({})), ("区分", "text", json!({"default": "未"}))] {
        let (s, v) = a
            .post_json(
                &format!("/api/v1/tables/{t}/fields"),
                json!({"name": name, "kind": {"type": kind}, "rules": rules}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (_, table) = a.get_json(&format!("/api/v1/tables/{t}")).await;
    let id_of = |n: &str| {
        table["table"]["fields"].as_array().unwrap().iter().find(|f| f["name"] == n).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (note, kubun) = (id_of("備考"), id_of("区分"));
    let (_, v) = add(a, &d, json!({"件名": "m", "備考": "一行目\n二行目"})).await;
    let rid = v["record"]["id"].as_i64().unwrap();
    let mut ro = serde_json::Map::new();
    ro.insert(note.clone(), json!("read_only"));
    ro.insert(kubun.clone(), json!("read_only"));
    grant(a, &d, json!({"rights": ["view", "create", "edit"], "fields": ro})).await;
    let before = denied().await;
    let form = [
        ("version", "1"),
        ("fields", d.title.as_str()),
        ("fields", note.as_str()),
        (d.title.as_str(), "m2"),
        (note.as_str(), "一行目\r\n二行目"),
    ];
    let r = m.post_form(&format!("/tables/{t}/records/{rid}"), &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "CRLF is the stored LF");
    let form =
        [("fields", d.title.as_str()), ("fields", kubun.as_str()), (d.title.as_str(), "new"), (kubun.as_str(), "未")];
    let r = m.post_form(&format!("/tables/{t}/records"), &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the default as the form started");
    assert_eq!(denied().await, before);
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records?q=new")).await;
    assert_eq!(v["records"][0]["values"][&kubun], "未", "the default is filled: {v}");
    // Sent at another value, it is refused.
    let form =
        [("fields", d.title.as_str()), ("fields", kubun.as_str()), (d.title.as_str(), "other"), (kubun.as_str(), "済")];
    assert_eq!(m.post_form(&format!("/tables/{t}/records"), &form).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Text stored with CRLF (through the API) comes back from a text area as the same text.
    let (_, v) = add(a, &d, json!({"件名": "crlf", "備考": "a\r\nb"})).await;
    let rid = v["record"]["id"].as_i64().unwrap();
    let before = denied().await;
    let form = [
        ("version", "1"),
        ("fields", d.title.as_str()),
        ("fields", note.as_str()),
        (d.title.as_str(), "crlf2"),
        (note.as_str(), "a\r\nb"),
    ];
    let r = m.post_form(&format!("/tables/{t}/records/{rid}"), &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(denied().await, before);
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records/{rid}")).await;
    assert_eq!((&v["record"]["values"][&d.title], &v["record"]["values"][&note]), (&json!("crlf2"), &json!("a\r\nb")));
}

/// A saved view that sorts by (or shows) a field later hidden from its reader stays offered,
/// without that sort key and column; one that filters on the field is not offered.
#[tokio::test]
async fn a_view_sorting_by_a_field_hidden_later_stays_without_that_key_and_a_filter_on_it_does_not() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(&app, a).await;
    grant(a, &d, json!({"rights": ["view", "create"]})).await;
    // (Made 大 then 小: newest first, or by amount descending, would give 小 first.)
    for (t, n) in [("大", 1), ("小", 9)] {
        let (s, v) = add(m, &d, json!({"件名": t, "金額": n})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let views = format!("/api/v1/tables/{}/views", d.tid);
    let (s, v) = m
        .post_json(
            &views,
            json!({"name": "金額順", "shared": false, "sort": [{"field": d.amount, "dir": "desc"}, {"field": d.title, "dir": "asc"}], "columns": [d.title, d.amount]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let by_amount = v["view"]["id"].as_str().unwrap().to_owned();
    let (s, v) = m
        .post_json(
            &views,
            json!({"name": "大口", "shared": false, "filters": [{"field": d.amount, "op": "gte", "value": "5"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // The amount hidden from the member's group.
    let mut fields = serde_json::Map::new();
    fields.insert(d.amount.clone(), json!("hidden"));
    grant(a, &d, json!({"rights": ["view", "create"], "fields": fields})).await;
    let (_, v) = m.get_json(&views).await;
    let listed: Vec<&str> = v["views"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(listed, ["金額順"], "the filtering view is not offered: {v}");
    assert!(!v.to_string().contains(&d.amount), "the hidden field is not named: {v}");
    let (s, v) = m.get_json(&format!("/api/v1/tables/{}/records?view={by_amount}", d.tid)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let titles: Vec<&str> =
        v["records"].as_array().unwrap().iter().map(|r| r["values"][&d.title].as_str().unwrap()).collect();
    assert_eq!(titles, ["大", "小"], "sorted by its other key (件名 ascending)");
    assert!(v["records"][0]["values"].get(&d.amount).is_none());
    assert_eq!(m.get(&format!("/tables/{}?view={by_amount}", d.tid)).await.status(), StatusCode::OK);
}

/// A group's members form sends the changes it makes: a form shown before someone else took
/// a leaver out does not put them back when it adds a newcomer.
#[tokio::test]
async fn a_members_form_shown_before_a_leaver_was_taken_out_does_not_put_them_back() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let d = setup(&app, a).await;
    app.user("acme", "newcomer", "member").await;
    let (_, users) = a.get_json("/api/v1/users").await;
    let id_of = |login: &str| {
        users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == login).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (leaver, newcomer) = (id_of("member1"), id_of("newcomer"));
    // The page as one administrator sees it: member1 in the group.
    let page = a.get(&format!("/admin/groups/{}", d.group)).await.text().await.unwrap();
    assert!(page.contains(&format!("name=\"shown\" value=\"{leaver}\"")), "the form says what it showed");
    // Meanwhile member1 leaves (through the API, which sets the whole list).
    let (s, _) = a.send_json(Method::PUT, &format!("/api/v1/groups/{}/members", d.group), json!({"members": []})).await;
    assert_eq!(s, StatusCode::OK);
    // The form shown before adds the newcomer, with member1 still ticked as it showed them.
    let r = a
        .post_form(
            &format!("/admin/groups/{}/members", d.group),
            &[("shown_list", "1"), ("shown", &leaver), ("member", &leaver), ("member", &newcomer)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, v) = a.get_json(&format!("/api/v1/groups/{}", d.group)).await;
    let members: Vec<&str> = v["group"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap_or_else(|| m["id"].as_str().unwrap()))
        .collect();
    assert_eq!(members, [newcomer.as_str()], "the leaver stays out: {v}");
    let (_, v) = a.get_json("/api/v1/audit?action=group.members&limit=1").await;
    assert_eq!(v["events"][0]["details"], "asked to add=newcomer; asked to remove=", "{v}");
}

#[tokio::test]
async fn a_delete_of_a_record_changed_since_it_was_read_is_refused_and_the_history_keeps_every_value() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let d = setup(&app, &cast.admin).await;
    let t = &d.tid;
    let m = &cast.member;
    let mut fields = serde_json::Map::new();
    fields.insert(d.amount.clone(), json!("hidden"));
    grant(&cast.admin, &d, json!({"rights": ["view", "edit", "delete"], "fields": fields})).await;
    let mut ids = Vec::new();
    for i in 0..2 {
        let (s, v) = add(&cast.admin, &d, json!({"件名": format!("消す{i}"), "金額": 7_654_321})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["record"]["id"].as_i64().unwrap());
    }
    // Someone edits the first record after the member read it (version 1).
    let (s, v) = cast
        .admin
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{t}/records/{}", ids[0]),
            json!({"version": 1, "values": {"件名": "直した"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let del = |id: i64, version: i64| {
        m.client
            .delete(m.url(&format!("/api/v1/tables/{t}/records/{id}?version={version}")))
            .header("x-csrf-token", &m.csrf)
            .send()
    };
    // A version that is no number, or another key, is refused with the API's error.
    let r = m
        .client
        .delete(m.url(&format!("/api/v1/tables/{t}/records/{}?version=x", ids[0])))
        .header("x-csrf-token", &m.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["fields"][0]["code"], "not_a_number", "{v}");
    let r = m
        .client
        .delete(m.url(&format!("/api/v1/tables/{t}/records/{}?vers=1", ids[0])))
        .header("x-csrf-token", &m.csrf)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["fields"][0]["code"], "unknown_parameter", "{v}");
    let r = del(ids[0], 1).await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["fields"][0]["code"], "stale", "{v}");
    assert_eq!(cast.admin.get_json(&format!("/api/v1/tables/{t}/records/{}", ids[0])).await.0, StatusCode::OK);
    // The record page's delete form carries the version it showed.
    let page = m.get(&format!("/tables/{t}/records/{}", ids[0])).await.text().await.unwrap();
    assert!(page.contains("name=\"version\" value=\"2\""), "{page}");
    let r =
        m.post_form(&format!("/tables/{t}/records/{}/delete", ids[0]), &[("confirm", "yes"), ("version", "1")]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // The page shows the record as it is now, and says why it was not deleted.
    let body = r.text().await.unwrap();
    assert!(body.contains("so it was not deleted") && body.contains("直した"), "{body}");
    assert!(body.contains("name=\"version\" value=\"2\""), "its delete form now carries the new version");
    assert_eq!(cast.admin.get_json(&format!("/api/v1/tables/{t}/records/{}", ids[0])).await.0, StatusCode::OK);
    // An error page says what the refusal was, not only its kind.
    let r = m.post_form(&format!("/tables/{t}/records/{}/delete", ids[0]), &[("version", "2")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("Tick the box to confirm."));
    let r = del(ids[0], 2).await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r =
        m.post_form(&format!("/tables/{t}/records/{}/delete", ids[1]), &[("confirm", "yes"), ("version", "1")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The operation history holds every value of each deleted record, the amount hidden from
    // the member included: the record and its history are gone, the administrators' log is not.
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=record.delete").await;
    let details: Vec<&str> = v["events"].as_array().unwrap().iter().filter_map(|e| e["details"].as_str()).collect();
    assert_eq!(details.len(), 2, "{v}");
    assert!(details.iter().all(|d| d.contains("7654321") || d.contains("7,654,321")), "{details:?}");
}

#[tokio::test]
async fn without_the_design_right_every_design_route_is_refused_to_someone_who_may_view() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(&app, a).await;
    grant(a, &d, json!({"rights": ["view", "create", "edit", "delete"]})).await;
    let t = &d.tid;
    let f = &d.title;
    let api = [
        (Method::PATCH, format!("/api/v1/tables/{t}"), json!({"name": "乗っ取り"})),
        (Method::PATCH, format!("/api/v1/tables/{t}/fields/{f}"), json!({"name": "x"})),
        (Method::DELETE, format!("/api/v1/tables/{t}/fields/{f}"), json!({})),
        (Method::PUT, format!("/api/v1/tables/{t}/fields/order"), json!({"fields": [f]})),
        (Method::POST, format!("/api/v1/tables/{t}/fields/{f}/retype"), json!({"kind": {"type": "multiline"}})),
        (Method::POST, format!("/api/v1/tables/{t}/fields"), json!({"name": "z", "kind": {"type": "text"}})),
    ];
    for (method, path, body) in api {
        let (s, v) = m.send_json(method.clone(), &path, body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {path}: {v}");
    }
    for page in [format!("/tables/{t}/design"), format!("/tables/{t}/design/fields/{f}/type")] {
        assert_eq!(m.get(&page).await.status(), StatusCode::FORBIDDEN, "{page}");
    }
    let r = m
        .post_form(&format!("/tables/{t}/design/fields/{f}/type"), &[("kind", "multiline"), ("action", "apply")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Nothing changed.
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}")).await;
    assert_eq!(v["table"]["name"], "案件 Deals", "{v}");
    let field = v["table"]["fields"].as_array().unwrap().iter().find(|x| x["id"] == f.as_str()).unwrap().clone();
    assert_eq!((field["name"].as_str(), field["kind"]["type"].as_str()), (Some("件名"), Some("text")), "{field}");
    assert_eq!(v["table"]["fields"].as_array().map(Vec::len), Some(4), "{v}");
}

//! Changing a table after it is built: rename and describe, rename and reorder fields, delete
//! fields and tables into the trash, restore them, purge them by hand or after the trash
//! period; through the API and the pages, with tenancy and rights.

use std::sync::Arc;

use daicho::jobs::JobRunner;
use daicho_testkit::reqwest::{Method, StatusCode};
use daicho_testkit::{Persona, TestApp};
use serde_json::{Value, json};
use time::Duration;

use crate::location;

/// A table with three fields and three records; returns (table id, field ids).
async fn table(a: &Persona) -> (String, Vec<String>) {
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "問い合わせ", "description": "窓口"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for (name, kind) in [("件名", "text"), ("秘密メモ", "text"), ("件数", "integer")] {
        let (s, v) =
            a.post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": name, "kind": {"type": kind}})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned());
    }
    for i in 0..3 {
        let (s, v) = a
            .post_json(
                &format!("/api/v1/tables/{tid}/records"),
                json!({"values": {"件名": format!("件名{i}"), "秘密メモ": format!("合言葉ふじやま{i}"), "件数": i}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    (tid, ids)
}

fn field_names(v: &Value) -> Vec<String> {
    v["table"]["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn tables_and_fields_are_renamed_and_reordered_and_bad_requests_are_explained() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, ids) = table(a).await;
    let (s, v) = a
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{tid}"),
            json!({"name": "問い合わせ 2027", "description": "新窓口"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["table"]["name"], "問い合わせ 2027");
    assert_eq!(v["table"]["description"], "新窓口");
    let (s, v) =
        a.send_json(Method::PATCH, &format!("/api/v1/tables/{tid}/fields/{}", ids[0]), json!({"name": "題名"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = a
        .send_json(
            Method::PUT,
            &format!("/api/v1/tables/{tid}/fields/order"),
            json!({"fields": [ids[2], "題名", ids[1]]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(field_names(&v), ["件数", "題名", "秘密メモ"]);
    // Records keep their values under the new names and order.
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?sort=題名&dir=asc")).await;
    assert_eq!(v["records"][0]["values"][&ids[0]], "件名0");
    // Explained refusals.
    let (s, v) =
        a.send_json(Method::PUT, &format!("/api/v1/tables/{tid}/fields/order"), json!({"fields": [ids[2]]})).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_every_field"))
    );
    let (s, _) =
        a.send_json(Method::PATCH, &format!("/api/v1/tables/{tid}/fields/{}", ids[1]), json!({"name": "題名"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "a field name is unique in its table");
    let (s, v) = a.send_json(Method::PATCH, &format!("/api/v1/tables/{tid}"), json!({"name": "a\u{7}b"})).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("control_chars"))
    );
    let (s, _) = a.send_json(Method::PATCH, &format!("/api/v1/tables/{tid}/fields/nope"), json!({"name": "x"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A member without the design right, and another tenant, are refused.
    let m = &cast.member;
    assert_eq!(
        m.send_json(Method::PATCH, &format!("/api/v1/tables/{tid}"), json!({"name": "x"})).await.0,
        StatusCode::NOT_FOUND
    );
    let b = &cast.other_admin;
    for (method, path, body) in [
        (Method::PATCH, format!("/api/v1/tables/{tid}"), json!({"name": "x"})),
        (Method::DELETE, format!("/api/v1/tables/{tid}"), json!({})),
        (Method::PUT, format!("/api/v1/tables/{tid}/fields/order"), json!({"fields": ids})),
        (Method::PATCH, format!("/api/v1/tables/{tid}/fields/{}", ids[0]), json!({"name": "x"})),
        (Method::DELETE, format!("/api/v1/tables/{tid}/fields/{}", ids[0]), json!({})),
        (Method::POST, format!("/api/v1/trash/tables/{tid}/restore"), json!({})),
        (Method::DELETE, format!("/api/v1/trash/tables/{tid}"), json!({})),
    ] {
        assert_eq!(b.send_json(method.clone(), &path, body).await.0, StatusCode::NOT_FOUND, "{method} {path}");
    }
    assert_eq!(b.get(&format!("/tables/{tid}/design")).await.status(), StatusCode::NOT_FOUND);
    let (_, v) = a.get_json("/api/v1/audit?action=field.reorder").await;
    assert_eq!(v["events"][0]["details"], "件数, 題名, 秘密メモ");
}

#[tokio::test]
async fn a_deleted_field_vanishes_everywhere_and_comes_back_from_the_trash() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, ids) = table(a).await;
    let secret = &ids[1];
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records")).await;
    let (rid, title) = (v["records"][0]["id"].as_i64().unwrap(), v["records"][0]["values"][&ids[0]].clone());
    let (s, v) = a
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{tid}/records/{rid}"),
            json!({"version": 1, "values": {"件名": "改題", "秘密メモ": "合言葉たかお"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}/fields/{secret}"), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}")).await;
    assert_eq!(field_names(&v), ["件名", "件数"]);
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records")).await;
    assert!(v["records"][0]["values"].get(secret).is_none(), "{v}");
    // Not searchable, filterable, exportable or shown any more.
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?q=%E3%81%B5%E3%81%98%E3%82%84%E3%81%BE")).await;
    assert!(v["records"].as_array().unwrap().is_empty(), "the keyword index forgot it: {v}");
    let (s, _) = a.get_json(&format!("/api/v1/tables/{tid}/records?filter.contains.秘密メモ=x")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let csv = a.get(&format!("/api/v1/tables/{tid}/export.csv")).await.text().await.unwrap();
    assert!(!csv.contains("秘密メモ") && !csv.contains("ふじやま"), "{csv}");
    let page = a.get(&format!("/tables/{tid}")).await.text().await.unwrap();
    assert!(!page.contains("ふじやま"));
    // Nor in a record's history (the edit that changed it lists only the field still there).
    let history = format!("/api/v1/tables/{tid}/records/{rid}/history");
    let (_, h) = a.get_json(&history).await;
    assert_eq!(h["entries"][0]["changes"], json!([{"field": ids[0], "before": title, "after": "改題"}]), "{h}");
    assert!(!a.get(&history.replace("/api/v1", "")).await.text().await.unwrap().contains("たかお"));
    // Its name is free again.
    let (s, v) = a
        .post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": "秘密メモ", "kind": {"type": "text"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let newer = v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned();
    // It goes after every field, also after the one in the trash (whose place is kept for a
    // restore), and never shares a place with another.
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}")).await;
    assert_eq!(field_names(&v), ["件名", "件数", "秘密メモ"]);
    let places: Vec<u64> =
        v["table"]["fields"].as_array().unwrap().iter().map(|f| f["position"].as_u64().unwrap()).collect();
    assert!(places.windows(2).all(|w| w[0] < w[1]) && places[2] > 2, "{places:?}");
    // The trash lists it; restoring while the name is taken is refused with a reason.
    let (_, v) = a.get_json("/api/v1/trash").await;
    assert_eq!(v["items"][0]["field_name"], "秘密メモ");
    assert_eq!(v["items"][0]["table_name"], "問い合わせ");
    assert_eq!(v["days"], 30);
    let restore = format!("/api/v1/trash/tables/{tid}/fields/{secret}/restore");
    let (s, v) = a.post_json(&restore, json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["fields"][0]["code"], "restore_field_name_taken", "{v}");
    a.send_json(Method::PATCH, &format!("/api/v1/tables/{tid}/fields/{newer}"), json!({"name": "新メモ"})).await;
    let (s, _) = a.post_json(&restore, json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}")).await;
    assert_eq!(field_names(&v), ["件名", "件数", "新メモ", "秘密メモ"], "restored at the end");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?q=%E3%81%B5%E3%81%98%E3%82%84%E3%81%BE1")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 1, "values and search are back: {v}");
    assert!(a.get_json("/api/v1/trash").await.1["items"].as_array().unwrap().is_empty());
    // An edit of the secret alone, then deleted again and purged by hand: gone for good, from
    // the records' histories too (the entry of that edit goes; the first keeps its title).
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{rid}")).await;
    let version = v["record"]["version"].as_i64().unwrap();
    let edit = json!({"version": version, "values": {"秘密メモ": "二つ目の合言葉"}});
    assert_eq!(
        a.send_json(Method::PATCH, &format!("/api/v1/tables/{tid}/records/{rid}"), edit).await.0,
        StatusCode::OK
    );
    let holding = |id: &str| -> &'static str {
        Box::leak(format!("SELECT COUNT(*) FROM record_history WHERE changes LIKE '%{id}%'").into_boxed_str())
    };
    assert_eq!(app.raw_i64(holding(secret)).await, 2);
    a.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}/fields/{secret}"), json!({})).await;
    let (s, _) = a.send_json(Method::DELETE, &format!("/api/v1/trash/tables/{tid}/fields/{secret}"), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(app.raw_i64(holding(secret)).await, 0, "no value of the purged field is kept");
    assert_eq!(app.raw_i64("SELECT COUNT(*) FROM record_history").await, 1);
    let (_, h) = a.get_json(&history).await;
    assert_eq!(h["entries"].as_array().map(Vec::len), Some(1), "{h}");
    assert_eq!(h["entries"][0]["version"], 2);
    assert_eq!(h["entries"][0]["changes"], json!([{"field": ids[0], "before": title, "after": "改題"}]), "{h}");
    assert_eq!(a.post_json(&restore, json!({})).await.0, StatusCode::NOT_FOUND);
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 3, "the records stay");
    for action in ["field.delete", "field.restore", "field.purge"] {
        let (_, v) = a.get_json(&format!("/api/v1/audit?action={action}")).await;
        assert!(!v["events"].as_array().unwrap().is_empty(), "{action}");
    }
    // Restore and purge name what they restored or purged (the catalogue forgets it).
    let (_, v) = a.get_json("/api/v1/audit?action=field.purge").await;
    assert_eq!(v["events"][0]["details"], "問い合わせ › 秘密メモ (deleted for good)", "{v}");
    let (_, v) = a.get_json("/api/v1/audit?action=field.restore").await;
    assert_eq!(v["events"][0]["details"], "問い合わせ › 秘密メモ", "{v}");
    // A new field's entry holds its settings and rules.
    let (_, v) = a.get_json("/api/v1/audit?action=field.create").await;
    let created = v["events"].as_array().unwrap().iter().filter_map(|e| e["details"].as_str()).collect::<Vec<_>>();
    assert!(
        created.iter().any(|d| d.starts_with("name=件数; type=integer; settings={\"type\":\"integer\"}; rules={")),
        "{created:?}"
    );
}

#[tokio::test]
async fn a_deleted_table_is_gone_for_everyone_until_restored_and_purged_after_the_trash_period() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, ids) = table(a).await;
    // A member who may design the table may delete fields, not the table.
    let (_, users) = a.get_json("/api/v1/users").await;
    let uid = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "member1").unwrap()["id"].clone();
    let gid =
        a.post_json("/api/v1/groups", json!({"name": "設計"})).await.1["group"]["id"].as_str().unwrap().to_owned();
    a.send_json(Method::PUT, &format!("/api/v1/groups/{gid}/members"), json!({"members": [uid]})).await;
    a.send_json(Method::PUT, &format!("/api/v1/groups/{gid}/grants/{tid}"), json!({"rights": ["view", "design"]}))
        .await;
    let m = &cast.member;
    assert_eq!(m.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}"), json!({})).await.0, StatusCode::FORBIDDEN);
    let (s, v) =
        m.send_json(Method::PATCH, &format!("/api/v1/tables/{tid}/fields/{}", ids[2]), json!({"name": "数"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(m.get_json("/api/v1/trash").await.0, StatusCode::FORBIDDEN);

    assert_eq!(
        a.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}"), json!({})).await.0,
        StatusCode::NO_CONTENT
    );
    for who in [a, m] {
        assert_eq!(who.get_json(&format!("/api/v1/tables/{tid}")).await.0, StatusCode::NOT_FOUND);
        assert_eq!(who.get_json(&format!("/api/v1/tables/{tid}/records")).await.0, StatusCode::NOT_FOUND);
        assert_eq!(who.get(&format!("/tables/{tid}")).await.status(), StatusCode::NOT_FOUND);
    }
    let (_, v) = a.get_json("/api/v1/tables").await;
    assert!(v["tables"].as_array().unwrap().is_empty(), "{v}");
    // Its name is free; the other tenant sees nothing in its trash.
    let (s, _) = a.post_json("/api/v1/tables", json!({"name": "問い合わせ"})).await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(cast.other_admin.get_json("/api/v1/trash").await.1["items"].as_array().unwrap().is_empty());
    let (s, _) = a.post_json(&format!("/api/v1/trash/tables/{tid}/restore"), json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "the name is taken now");
    let (_, v) = a.get_json("/api/v1/tables").await;
    let other = v["tables"][0]["id"].as_str().unwrap().to_owned();
    a.send_json(Method::DELETE, &format!("/api/v1/tables/{other}"), json!({})).await;
    let (s, _) = a.post_json(&format!("/api/v1/trash/tables/{tid}/restore"), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 3, "records and rights come back with the table");
    assert_eq!(m.get_json(&format!("/api/v1/tables/{tid}/records")).await.0, StatusCode::OK);

    // Trashed again; 29 days later still there, after 30 the daily job purges it (and the other).
    a.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}"), json!({})).await;
    let runner = JobRunner::new(
        app.running.store.clone(),
        Arc::new(app.clock.clone()),
        "node".into(),
        Arc::new(app.config.clone()),
    );
    app.clock.advance(Duration::days(29));
    runner.tick().await.unwrap();
    assert_eq!(app.raw_i64("SELECT COUNT(*) FROM user_tables").await, 2);
    app.clock.advance(Duration::days(2));
    assert!(runner.tick().await.unwrap().contains(&"trash.purge"));
    assert_eq!(app.raw_i64("SELECT COUNT(*) FROM user_tables").await, 0);
    assert_eq!(app.raw_i64("SELECT COUNT(*) FROM table_grants").await, 0);
    let physical: i64 = if app.backend() == "sqlite" {
        app.raw_i64("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 't\\_%' ESCAPE '\\'").await
    } else {
        app.raw_i64("SELECT COUNT(*) FROM information_schema.tables WHERE table_name LIKE 't\\_%'").await
    };
    assert_eq!(physical, 0, "the SQL tables are dropped");
    assert_eq!(
        app.raw_i64("SELECT COUNT(*) FROM audit_events WHERE action = 'table.purge' AND actor_login = 'system'").await,
        2,
        "each purge is in its tenant's history"
    );
    // Named: the catalogue no longer says what was purged.
    let named = "SELECT COUNT(*) FROM audit_events WHERE action = 'table.purge' \
                 AND details LIKE '問い合わせ (in the trash for more than 30 days%'";
    assert_eq!(app.raw_i64(named).await, 2, "both were named so");
    let (lines, ok) = daicho::operator::verify_audit(app.store()).await.unwrap();
    assert!(ok, "{lines:?}");
}

#[tokio::test]
async fn the_design_and_trash_pages_rename_move_delete_and_restore() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, ids) = table(a).await;
    let design = format!("/tables/{tid}/design");
    let page = a.get(&design).await.text().await.unwrap();
    assert!(page.contains("秘密メモ") && page.contains("name=\"action\" value=\"delete_table\""));
    let r = a.post_form(&design, &[("action", "settings"), ("name", "窓口 <b>"), ("description", "説明")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).ends_with("done=saved"));
    // The history records what changed; the same form sent again changed nothing.
    a.post_form(&design, &[("action", "settings"), ("name", "窓口 <b>"), ("description", "説明")]).await;
    let (_, v) = a.get_json("/api/v1/audit?action=table.update").await;
    assert_eq!(v["events"][0]["details"], "no change", "{v}");
    assert_eq!(v["events"][1]["details"], "name: 問い合わせ -> 窓口 <b>; description changed", "{v}");
    let name_key = format!("name_{}", ids[0]);
    let r = a.post_form(&design, &[("action", "rename"), ("field", &ids[0]), (&name_key, "題名")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = a.post_form(&design, &[("action", "up"), ("field", &ids[2])]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}")).await;
    assert_eq!(v["table"]["name"], "窓口 <b>");
    assert_eq!(field_names(&v), ["題名", "件数", "秘密メモ"]);
    // Deleting needs the confirmation tick.
    let r = a.post_form(&design, &[("action", "delete_field"), ("field", &ids[1])]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("role=\"alert\"") && body.contains("Tick the box to confirm."),
        "the summary says why: {body}"
    );
    // The tab names the table (tabs of several tables' designs tell apart).
    assert!(body.contains("<title>窓口 &#60;b&#62; · Design · Daicho</title>"), "{body}");
    // And the field's own row says which box.
    assert!(
        body.contains(&format!("aria-invalid=\"true\" aria-describedby=\"confirm-{}-err\"", ids[1]))
            && body.contains(&format!(
                "<span class=\"field-error\" id=\"confirm-{}-err\">Tick the box to confirm.",
                ids[1]
            )),
        "{body}"
    );
    assert_eq!(body.matches("class=\"field-error\" id=\"confirm-").count(), 1, "that row only");
    // A field's name that is taken is said, and not beside the table's own name.
    let r =
        a.post_form(&design, &[("action", "rename"), ("field", &ids[1]), (&format!("name_{}", ids[1]), "件数")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains("This value is already in use.") && !body.contains("id=\"name-err\""), "{body}");
    let r = a.post_form(&design, &[("action", "delete_field"), ("field", &ids[1]), ("confirm", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = a.post_form(&design, &[("action", "delete_table")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "deleting a table needs the tick too");
    assert!(r.text().await.unwrap().contains("role=\"alert\""));
    assert_eq!(a.get(&format!("/tables/{tid}")).await.status(), StatusCode::OK, "still there");
    let r = a.post_form(&design, &[("action", "delete_table"), ("confirm", "yes")]).await;
    assert_eq!(location(&r), "/tables?done=table_deleted");
    // The trash page shows both (escaped); restore the table from it.
    let trash = a.get("/tables/trash").await.text().await.unwrap();
    assert!(trash.contains("窓口 &#60;b&#62;"), "{trash}");
    assert!(!trash.contains("秘密メモ"), "a trashed table's trashed field comes back with it, not alone");
    let r = a.post_form("/tables/trash", &[("action", "purge"), ("table", &tid), ("field", "")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "purging needs the tick");
    assert!(r.text().await.unwrap().contains("Tick the box to confirm."), "and the trash page says so");
    let r = a.post_form("/tables/trash", &[("action", "restore"), ("table", &tid), ("field", "")]).await;
    assert_eq!(location(&r), "/tables/trash?done=restored");
    assert_eq!(a.get(&format!("/tables/{tid}")).await.status(), StatusCode::OK);
    assert!(a.get("/tables/trash").await.text().await.unwrap().contains("秘密メモ"));
    assert_eq!(cast.member.get("/tables/trash").await.status(), StatusCode::FORBIDDEN);
    // The field comes back from the trash page with its values.
    let r = a.post_form("/tables/trash", &[("action", "restore"), ("table", &tid), ("field", &ids[1])]).await;
    assert_eq!(location(&r), "/tables/trash?done=restored");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?sort=件数&dir=asc")).await;
    let memos: Vec<&str> =
        v["records"].as_array().unwrap().iter().map(|r| r["values"][&ids[1]].as_str().unwrap_or("")).collect();
    assert_eq!(memos, ["合言葉ふじやま0", "合言葉ふじやま1", "合言葉ふじやま2"]);
    assert!(!a.get("/tables/trash").await.text().await.unwrap().contains("秘密メモ"), "no longer in the trash");
}

#[tokio::test]
async fn changing_a_type_converts_every_value_or_reports_those_that_do_not_and_changes_nothing() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "変換"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for (name, kind, rules) in [
        ("数量", json!({"type": "text"}), json!({"max_length": 10})),
        ("コード", json!({"type": "text"}), json!({"unique": true})),
        ("区分", json!({"type": "choice", "choices": ["A", "B"]}), json!({})),
        ("済", json!({"type": "checkbox"}), json!({})),
    ] {
        let (s, v) = a
            .post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": name, "kind": kind, "rules": rules}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned());
    }
    let mut recs = Vec::new();
    for (qty, code, kubun, done) in [("12", "1", "A", true), ("7", "01", "B", false), ("たくさん", "2", "A", false)]
    {
        let (s, v) = a
            .post_json(
                &format!("/api/v1/tables/{tid}/records"),
                json!({"values": {"数量": qty, "コード": code, "区分": kubun, "済": done}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        recs.push(v["record"]["id"].as_i64().unwrap());
    }
    let retype = |f: &str| format!("/api/v1/tables/{tid}/fields/{f}/retype");
    // One value does not convert: nothing changes, and the report says which and why.
    let (s, v) = a.post_json(&retype(&ids[0]), json!({"kind": {"type": "integer"}})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!((v["records"].as_i64(), v["failed"].as_i64()), (Some(3), Some(1)));
    assert_eq!(v["failures"][0], json!({"record": recs[2], "value": "たくさん", "code": "not_a_number"}));
    assert_eq!(v["rules_dropped"], json!(["max_length"]));
    // With the error object every refusal has.
    assert_eq!(v["error"]["code"], "values_do_not_convert");
    assert!(v["error"]["request_id"].as_str().is_some_and(|r| !r.is_empty()), "{v}");
    assert_eq!(v["error"]["fields"][0]["code"], "values_do_not_convert");
    let (_, t) = a.get_json(&format!("/api/v1/tables/{tid}")).await;
    assert_eq!(t["table"]["fields"][0]["kind"]["type"], "text", "nothing changed");
    // Fixed, checked without changing, then changed.
    a.send_json(
        Method::PATCH,
        &format!("/api/v1/tables/{tid}/records/{}", recs[2]),
        json!({"version": 1, "values": {"数量": "3"}}),
    )
    .await;
    let (s, v) = a.post_json(&retype(&ids[0]), json!({"kind": {"type": "integer"}, "apply": false})).await;
    assert_eq!((s, v["applied"].as_bool(), v["failed"].as_i64()), (StatusCode::OK, Some(false), Some(0)), "{v}");
    let (s, v) = a.post_json(&retype(&ids[0]), json!({"kind": {"type": "integer"}})).await;
    assert_eq!((s, v["applied"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    assert_eq!(v["table"]["fields"][0]["kind"]["type"], "integer");
    assert!(v["table"]["fields"][0]["rules"]["max_length"].is_null());
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?sort=数量&dir=asc")).await;
    let qty: Vec<i64> =
        v["records"].as_array().unwrap().iter().map(|r| r["values"][&ids[0]].as_i64().unwrap()).collect();
    assert_eq!(qty, [3, 7, 12], "sorted as numbers now");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?filter.gte.数量=7")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 2);
    // The history reads as written after each change: the fixed value's entry shows the text it
    // had and the number it became, also after a change to a decimal (3, not 0.03).
    let (s, v) = a.post_json(&retype(&ids[0]), json!({"kind": {"type": "decimal", "scale": 2}})).await;
    assert_eq!((s, v["applied"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{}", recs[2])).await;
    assert_eq!(v["record"]["values"][&ids[0]], "3.00");
    let (_, h) = a.get_json(&format!("/api/v1/tables/{tid}/records/{}/history", recs[2])).await;
    assert_eq!(h["entries"][0]["changes"], json!([{"field": ids[0], "before": "たくさん", "after": "3.00"}]), "{h}");
    // Fewer decimals: values and bounds that fit keep their value (3.00 is 3.0, a minimum of
    // 0.50 is 0.5); then an integer (3), where a minimum of 0.5 no longer applies.
    let (s, v) =
        a.post_json(&retype(&ids[0]), json!({"kind": {"type": "decimal", "scale": 2}, "rules": {"min": "0.50"}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = a.post_json(&retype(&ids[0]), json!({"kind": {"type": "decimal", "scale": 1}})).await;
    assert_eq!((s, v["applied"].as_bool(), &v["rules_dropped"]), (StatusCode::OK, Some(true), &json!([])), "{v}");
    assert_eq!(v["table"]["fields"][0]["rules"]["min"], "0.5");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{}", recs[2])).await;
    assert_eq!(v["record"]["values"][&ids[0]], "3.0");
    let (s, v) = a.post_json(&retype(&ids[0]), json!({"kind": {"type": "integer"}})).await;
    assert_eq!((s, v["applied"].as_bool(), &v["rules_dropped"]), (StatusCode::OK, Some(true), &json!(["min"])), "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{}", recs[2])).await;
    assert_eq!(v["record"]["values"][&ids[0]], 3);
    // A unique text whose values collide as numbers ("1" and "01") is refused, nothing changed,
    // and the report names both records.
    let (s, v) = a.post_json(&retype(&ids[1]), json!({"kind": {"type": "integer"}})).await;
    assert_eq!(
        (s, v["failed"].as_i64(), v["applied"].as_bool()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some(2), Some(false))
    );
    assert_eq!(
        v["failures"],
        json!([{"record": recs[0], "value": "1", "code": "duplicate"}, {"record": recs[1], "value": "1", "code": "duplicate"}])
    );
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{}", recs[1])).await;
    assert_eq!(v["record"]["values"][&ids[1]], "01", "{v}");
    // Choice to multiple choice, checkbox to text; never into a link, user or auto-number.
    let (s, v) =
        a.post_json(&retype(&ids[2]), json!({"kind": {"type": "multi_choice", "choices": ["A", "B", "C"]}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = a.post_json(&retype(&ids[3]), json!({"kind": {"type": "text"}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{}", recs[0])).await;
    assert_eq!(v["record"]["values"][&ids[2]], json!(["A"]));
    assert_eq!(v["record"]["values"][&ids[3]], "true");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{}", recs[1])).await;
    assert!(v["record"]["values"][&ids[3]].is_null(), "unticked becomes empty");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?q=true")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 1, "the keyword index follows the new type");
    let (s, v) = a.post_json(&retype(&ids[3]), json!({"kind": {"type": "auto_number"}})).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_for_this_type"))
    );
    let (_, v) = a.get_json("/api/v1/audit?action=field.retype").await;
    assert_eq!(v["events"].as_array().unwrap().len(), 7, "only the changes that happened");
    // The page: check shows the report; apply redirects; another tenant gets 404.
    let page = format!("/tables/{tid}/design/fields/{}/type", ids[1]);
    assert!(a.get(&page).await.text().await.unwrap().contains("name=\"kind\""));
    let r = a.post_form(&page, &[("action", "check"), ("kind", "email")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains(">01<") && body.contains("role=\"alert\""), "{body}");
    // The page shows the rules the field has now; one that does not suit the new type is
    // explained at its box, and without it the check passes.
    let r = a.post_form(&page, &[("action", "check"), ("kind", "multiline"), ("unique", "on")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains("field-error"), "the unique rule does not suit multi-line text: {body}");
    let r = a.post_form(&page, &[("action", "check"), ("kind", "multiline")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("role=\"status\""));
    let r = a.post_form(&page, &[("action", "apply"), ("kind", "multiline")]).await;
    assert_eq!(location(&r), format!("/tables/{tid}/design?done=field_retyped"));
    assert_eq!(cast.other_admin.get(&page).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        cast.other_admin.post_json(&retype(&ids[0]), json!({"kind": {"type": "text"}})).await.0,
        StatusCode::NOT_FOUND
    );
}

/// A change of type whose values all convert, some of them losing part of what they say
/// ("00123" made the number 123, a phone number without its leading zero): the check lists
/// those before and after, and the change is applied only once that is accepted (through the
/// API and the settings page); values that only take the new kind's form ("5" as 5, a date
/// written "2026/4/1") are not listed.
#[tokio::test]
async fn a_change_of_type_that_would_change_what_values_say_is_applied_only_once_accepted() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "受付"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for (name, kind) in [("コード", "text"), ("電話", "phone"), ("区分", "text"), ("届出日", "text")] {
        let (s, v) =
            a.post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": name, "kind": {"type": kind}})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned());
    }
    let mut recs = Vec::new();
    for (code, phone, kind, day) in
        [("00123", "0312345678", "01", "2026/4/1"), ("5", "312345678", "2", "2026-04-02"), ("", "", "", "")]
    {
        let (s, v) = a
            .post_json(
                &format!("/api/v1/tables/{tid}/records"),
                json!({"values": {"コード": code, "電話": phone, "区分": kind, "届出日": day}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        recs.push(v["record"]["id"].as_i64().unwrap());
    }
    let retype = |f: &str| format!("/api/v1/tables/{tid}/fields/{f}/retype");
    let list = format!("/api/v1/tables/{tid}/records?sort=id&dir=asc");
    let list = &list;
    let values = |f: String| async move {
        let (_, v) = a.get_json(list).await;
        v["records"].as_array().unwrap().iter().map(|r| r["values"][&f].clone()).collect::<Vec<Value>>()
    };
    // Asked to apply: refused, nothing changed, the values that would change listed.
    let (s, v) = a.post_json(&retype(&ids[0]), json!({"kind": {"type": "integer"}})).await;
    assert_eq!(
        (s, v["applied"].as_bool(), v["failed"].as_i64()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some(false), Some(0)),
        "{v}"
    );
    assert_eq!(v["error"]["code"], "values_change", "{v}");
    assert_eq!((v["records"].as_i64(), v["altered"].as_i64()), (Some(3), Some(1)), "{v}");
    assert_eq!(v["alterations"], json!([{"record": recs[0], "before": "00123", "after": "123"}]));
    let (_, t) = a.get_json(&format!("/api/v1/tables/{tid}")).await;
    assert_eq!(t["table"]["fields"][0]["kind"]["type"], "text", "nothing changed");
    assert_eq!(values(ids[0].clone()).await, [json!("00123"), json!("5"), Value::Null]);
    // A check says the same without refusing.
    let (s, v) = a.post_json(&retype(&ids[1]), json!({"kind": {"type": "integer"}, "apply": false})).await;
    assert_eq!((s, v["applied"].as_bool(), v["altered"].as_i64()), (StatusCode::OK, Some(false), Some(1)), "{v}");
    assert_eq!(v["alterations"][0], json!({"record": recs[0], "before": "0312345678", "after": "312345678"}));
    // Accepted, applied.
    let (s, v) = a.post_json(&retype(&ids[0]), json!({"kind": {"type": "integer"}, "accept_loss": true})).await;
    assert_eq!((s, v["applied"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    assert_eq!(values(ids[0].clone()).await, [json!(123), json!(5), Value::Null]);
    // The operation history says what the change wrote.
    let (_, h) = a.get_json("/api/v1/audit?action=field.retype").await;
    let details = h["events"][0]["details"].as_str().unwrap();
    assert!(details.contains("; 3 records, 3 values written again (1 reading differently, accepted)"), "{details}");
    // The settings page: apply lists them with a box to accept; ticked, the change is made.
    // A date written "2026/4/1" keeps its day: nothing to accept.
    let (s, v) = a.post_json(&retype(&ids[3]), json!({"kind": {"type": "date"}})).await;
    assert_eq!((s, v["applied"].as_bool(), v["altered"].as_i64()), (StatusCode::OK, Some(true), Some(0)), "{v}");
    assert_eq!(values(ids[3].clone()).await, [json!("2026-04-01"), json!("2026-04-02"), Value::Null]);
    let page = format!("/tables/{tid}/design/fields/{}/type", ids[2]);
    let html = a.get(&page).await.text().await.unwrap();
    let was = html.split("name=\"was\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let form = [("kind", "integer"), ("action", "apply"), ("was", was.as_str())];
    let r = a.post_form(&page, &form).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Values that would read differently once converted (nothing was changed yet): 1 / 3"),
        "{html}"
    );
    assert!(html.contains("<td>01</td><td>1</td>"), "{html}");
    assert!(html.contains("name=\"accept_loss\""), "{html}");
    assert_eq!(values(ids[2].clone()).await, [json!("01"), json!("2"), Value::Null]);
    let r = a.post_form(&page, &[&form[..], &[("accept_loss", "on")]].concat()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, t) = a.get_json(&format!("/api/v1/tables/{tid}")).await;
    assert_eq!(t["table"]["fields"][2]["kind"]["type"], "integer");
    assert_eq!(values(ids[2].clone()).await, [json!(1), json!(2), Value::Null]);
}

#[tokio::test]
async fn a_field_s_rules_change_after_it_is_built_and_every_record_is_checked_against_them_first() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "顧客"})).await;
    let customers = v["table"]["id"].as_str().unwrap().to_owned();
    let (_, v) = a
        .post_json(&format!("/api/v1/tables/{customers}/fields"), json!({"name": "社名", "kind": {"type": "text"}}))
        .await;
    let company = v["table"]["fields"][0]["id"].as_str().unwrap().to_owned();
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "受注"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for (name, kind) in [
        ("コード", json!({"type": "text"})),
        ("数量", json!({"type": "integer"})),
        ("区分", json!({"type": "multi_choice", "choices": ["A", "B", "C"]})),
        ("顧客", json!({"type": "link", "table": customers, "show": company})),
    ] {
        let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": name, "kind": kind})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned());
    }
    let mut recs = Vec::new();
    for values in [
        json!({"コード": "X1", "数量": 5, "区分": ["C", "A"]}),
        json!({"コード": "X2", "数量": 50}),
        json!({"コード": "X1"}),
    ] {
        let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": values})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        recs.push(v["record"]["id"].as_i64().unwrap());
    }
    let settings = |f: &str| format!("/api/v1/tables/{tid}/fields/{f}/retype");
    let fields = || async {
        let (_, t) = a.get_json(&format!("/api/v1/tables/{tid}")).await;
        t["table"]["fields"].as_array().unwrap().clone()
    };
    let bounded = json!({"required": true, "min": "0", "max": "10", "default": "1"});
    // Required with a range: an empty value and one above the new maximum are reported,
    // nothing changes.
    let (s, v) = a.post_json(&settings(&ids[1]), json!({"kind": {"type": "integer"}, "rules": bounded})).await;
    assert_eq!((s, v["records"].as_i64(), v["failed"].as_i64()), (StatusCode::UNPROCESSABLE_ENTITY, Some(3), Some(2)));
    assert_eq!(
        v["failures"],
        json!([{"record": recs[1], "value": "50", "code": "above_max"}, {"record": recs[2], "value": "", "code": "required"}])
    );
    assert_eq!(
        fields().await[1]["rules"],
        json!({"required": false, "unique": false, "max_length": null, "min": null, "max": null, "default": null})
    );
    // A minimum above the maximum, or a rule for another kind, is refused before any record is read.
    let (s, v) = a
        .post_json(&settings(&ids[1]), json!({"kind": {"type": "integer"}, "rules": {"min": "11", "max": "10"}}))
        .await;
    assert_eq!(
        (s, v["error"]["fields"][0]["field"].as_str(), v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("max"), Some("min_above_max"))
    );
    let (s, _) =
        a.post_json(&settings(&ids[1]), json!({"kind": {"type": "integer"}, "rules": {"max_length": 3}})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Fixed, then applied: a new record gets the default, and the range holds.
    for (rec, version, qty) in [(recs[1], 1, 8), (recs[2], 1, 1)] {
        let (s, v) = a
            .send_json(
                Method::PATCH,
                &format!("/api/v1/tables/{tid}/records/{rec}"),
                json!({"version": version, "values": {"数量": qty}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, v) = a.post_json(&settings(&ids[1]), json!({"kind": {"type": "integer"}, "rules": bounded})).await;
    assert_eq!((s, v["applied"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    assert_eq!(v["table"]["fields"][1]["rules"]["max"], "10");
    let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"コード": "X9"}})).await;
    assert_eq!((s, &v["record"]["values"][&ids[1]]), (StatusCode::CREATED, &json!(1)), "{v}");
    let extra = v["record"]["id"].as_i64().unwrap();
    let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"数量": 11}})).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("above_max")),
        "{v}"
    );
    // Unique where two records share a value: the check names both and changes nothing.
    let unique = json!({"kind": {"type": "text"}, "rules": {"unique": true}, "apply": false});
    let (s, v) = a.post_json(&settings(&ids[0]), unique.clone()).await;
    assert_eq!((s, v["failed"].as_i64()), (StatusCode::UNPROCESSABLE_ENTITY, Some(2)), "{v}");
    assert_eq!(
        v["failures"],
        json!([{"record": recs[0], "value": "X1", "code": "duplicate"}, {"record": recs[2], "value": "X1", "code": "duplicate"}])
    );
    assert_eq!(fields().await[0]["rules"]["unique"], false);
    let (s, _) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"コード": "X2"}})).await;
    assert_eq!(s, StatusCode::CREATED, "still not unique");
    let (s, _) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}/records/{}", extra + 1), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = a
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{tid}/records/{}", recs[2]),
            json!({"version": 2, "values": {"コード": "X3"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = a.post_json(&settings(&ids[0]), unique).await;
    assert_eq!((s, v["failed"].as_i64(), v["applied"].as_bool()), (StatusCode::OK, Some(0), Some(false)), "{v}");
    let (s, v) = a.post_json(&settings(&ids[0]), json!({"kind": {"type": "text"}, "rules": {"unique": true}})).await;
    assert_eq!((s, v["applied"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"コード": "X2"}})).await;
    assert_eq!((s, v["error"]["fields"][0]["code"].as_str()), (StatusCode::CONFLICT, Some("taken")), "{v}");
    // New order of choices: values follow it; keyword search still finds them.
    let (s, v) = a
        .post_json(
            &settings(&ids[2]),
            json!({"kind": {"type": "multi_choice", "choices": ["C", "B", "A"]}, "rules": {}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{}", recs[0])).await;
    assert_eq!(v["record"]["values"][&ids[2]], json!(["C", "A"]));
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?q=X3")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 1, "{v}");
    // The history says what changed.
    let (_, v) = a.get_json("/api/v1/audit?action=field.retype").await;
    let details: Vec<&str> = v["events"].as_array().unwrap().iter().filter_map(|e| e["details"].as_str()).collect();
    assert!(details.iter().any(|d| d.contains("rules: none -> required, min=0, max=10, default=\"1\"")), "{details:?}");
    assert!(details.iter().any(|d| d.contains("コード: text -> text; rules: none -> unique")), "{details:?}");
    assert_eq!(details.len(), 3, "checks and refusals change nothing: {details:?}");
    // The settings page shows the rules in words of the reader's language.
    let page = a.get(&format!("/tables/{tid}/design/fields/{}/type", ids[1])).await.text().await.unwrap();
    assert!(page.contains("Required, Minimum 0, Maximum 10, Default value \u{201C}1\u{201D}"), "{page}");

    // The page: the link field keeps its kind (not offered for a change) and gets a rule; the
    // records without a customer are listed first.
    let page = format!("/tables/{tid}/design/fields/{}/type", ids[3]);
    let body = a.get(&page).await.text().await.unwrap();
    assert!(body.contains("<option value=\"link\" selected>"), "{body}");
    let r = a.post_form(&page, &[("action", "apply"), ("kind", "link"), ("required", "on")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains("role=\"alert\"") && body.contains(&format!(">{}<", recs[0])), "{body}");
    assert!(body.contains("name=\"required\" value=\"on\" checked"), "the form keeps what was submitted");
    assert_eq!(fields().await[3]["rules"]["required"], false);
    // The number field shows its rules, and the form changes them.
    let page = format!("/tables/{tid}/design/fields/{}/type", ids[1]);
    let body = a.get(&page).await.text().await.unwrap();
    assert!(
        body.contains("name=\"required\" value=\"on\" checked")
            && body.contains("name=\"max\" inputmode=\"decimal\" maxlength=\"30\" value=\"10\""),
        "{body}"
    );
    let r = a.post_form(&page, &[("action", "apply"), ("kind", "integer"), ("min", "5"), ("max", "1")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("field-error"));
    let r = a.post_form(&page, &[("action", "apply"), ("kind", "integer"), ("max", "20")]).await;
    assert_eq!(location(&r), format!("/tables/{tid}/design?done=field_retyped"));
    assert_eq!(
        fields().await[1]["rules"],
        json!({"required": false, "unique": false, "max_length": null, "min": null, "max": "20", "default": null})
    );
    // The add-field form sets bounds and a maximum length too.
    let r = a
        .post_form(
            &format!("/tables/{tid}/fields"),
            &[("name", "単価"), ("kind", "decimal"), ("scale", "2"), ("min", "0.5"), ("max", "0.25")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = a
        .post_form(
            &format!("/tables/{tid}/fields"),
            &[("name", "単価"), ("kind", "decimal"), ("scale", "2"), ("min", "0.25"), ("max", "99.5")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r =
        a.post_form(&format!("/tables/{tid}/fields"), &[("name", "略称"), ("kind", "text"), ("max_length", "4")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // A choice field without choices: said so at the top of the page (the form is at its
    // foot), in words that say what to do, with the textarea marked.
    let r =
        a.post_form(&format!("/tables/{tid}/fields"), &[("name", "区分"), ("kind", "choice"), ("choices", "")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    let top = html.find("The field was not added: Enter at least one choice, one per line.").expect("a top alert");
    assert!(top < html.find("id=\"add-field\"").unwrap(), "before the form");
    assert!(html.contains("aria-invalid=\"true\">") && html.contains("id=\"choices-err\""), "the textarea is marked");
    let f = fields().await;
    assert_eq!(
        (&f[4]["rules"]["min"], &f[4]["rules"]["max"], &f[5]["rules"]["max_length"]),
        (&json!("0.25"), &json!("99.5"), &json!(4))
    );
    // Another tenant's administrator finds nothing.
    assert_eq!(cast.other_admin.get(&page).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        cast.other_admin.post_json(&settings(&ids[1]), json!({"kind": {"type": "integer"}, "rules": {}})).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_record_reads_back_on_every_connection_after_its_fields_change_type() {
    // PostgreSQL keeps the statement that reads a record by id prepared on each connection;
    // a field's new type must give a new statement, never a 500 from the old one.
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "型"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for (name, kind) in [("数", "integer"), ("済", "checkbox"), ("名", "text")] {
        let (s, v) =
            a.post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": name, "kind": {"type": kind}})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned());
    }
    let (s, v) = a
        .post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"数": 12, "済": true, "名": "34"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let rec = format!("/api/v1/tables/{tid}/records/{}", v["record"]["id"]);
    // Reads four at a time, more than the pool has connections, so that each connection has
    // prepared the statement (one after the other, they would all run on one warm connection).
    let read_some = || async {
        let mut last = Value::Null;
        for _ in 0..10 {
            let (s, v) = a.get_json(&rec).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            last = v;
        }
        last
    };
    let read_all = || async {
        let (v, ..) = tokio::join!(read_some(), read_some(), read_some(), read_some());
        v
    };
    let v = read_all().await;
    assert_eq!((&v["record"]["values"][&ids[0]], &v["record"]["values"][&ids[1]]), (&json!(12), &json!(true)));
    let retype = |f: &str| format!("/api/v1/tables/{tid}/fields/{f}/retype");
    for (f, kind) in [(&ids[0], "text"), (&ids[1], "text"), (&ids[2], "integer")] {
        let (s, v) = a.post_json(&retype(f), json!({"kind": {"type": kind}})).await;
        assert_eq!((s, v["applied"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    }
    let v = read_all().await;
    let values = &v["record"]["values"];
    assert_eq!((&values[&ids[0]], &values[&ids[1]], &values[&ids[2]]), (&json!("12"), &json!("true"), &json!(34)));
    // An edit reads the record inside its transaction too, before and after writing.
    let (s, v) = a.send_json(Method::PATCH, &rec, json!({"version": 1, "values": {"数": "十二"}})).await;
    assert_eq!((s, v["record"]["values"][&ids[0]].as_str()), (StatusCode::OK, Some("十二")), "{v}");
    // And back: the first statements' types again.
    let (s, v) = a.post_json(&retype(&ids[2]), json!({"kind": {"type": "text"}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let v = read_all().await;
    assert_eq!(v["record"]["values"][&ids[2]], json!("34"));
}

#[tokio::test]
async fn reads_keep_connections_warm_and_writers_still_get_theirs() {
    // A read statement that completed leaves its connection warm for the next read, skipping
    // sqlx's ping on the way back to the pool; at most half the pool is kept warm, so writers
    // waiting for a connection always get one.
    let app = TestApp::start_with(|c| c.database.max_connections = 2).await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "温"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    let (s, v) =
        a.post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": "数", "kind": {"type": "integer"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let fid = v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned();
    let mut recs = Vec::new();
    for n in 0..4 {
        let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"数": n}})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        recs.push(format!("/api/v1/tables/{tid}/records/{}", v["record"]["id"]));
    }
    for _ in 0..5 {
        assert_eq!(a.get_json(&recs[0]).await.0, StatusCode::OK);
    }
    assert_eq!(app.warm_connections(), 1, "one of the two connections is kept warm");

    // Readers and writers at once, on a pool of two: every request is answered well within
    // the pool's 15 s wait, and each writer's edits all land.
    let read = || async {
        for _ in 0..15 {
            let (s, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?sort=数&dir=desc")).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let (s, v) = a.get_json(&recs[1]).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    };
    let write = |rec: &str| {
        let rec = rec.to_owned();
        async move {
            for version in 1..=6 {
                let (s, v) =
                    a.send_json(Method::PATCH, &rec, json!({"version": version, "values": {"数": version * 10}})).await;
                assert_eq!(s, StatusCode::OK, "{v}");
            }
        }
    };
    let started = std::time::Instant::now();
    tokio::join!(read(), read(), read(), write(&recs[1]), write(&recs[2]), write(&recs[3]));
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
    for rec in &recs[1..] {
        let (_, v) = a.get_json(rec).await;
        assert_eq!((&v["record"]["version"], &v["record"]["values"][&fid]), (&json!(7), &json!(60)), "{v}");
    }
    assert!(app.warm_connections() <= 1, "never more than half the pool");

    // A pool told to check every connection before use keeps none warm.
    let app = TestApp::start_with(|c| c.database.recheck_idle_after_seconds = 0).await;
    let cast = app.cast().await;
    for _ in 0..5 {
        assert_eq!(cast.admin.get_json("/api/v1/me").await.0, StatusCode::OK);
    }
    assert_eq!(app.warm_connections(), 0);
}

/// Changes of one table's design made at the same moment (a change of rules, the trash and
/// restore of another field, new records) queue one after the other: none fails with a
/// deadlock or a server error, and each ends as if it had run alone or says the design changed.
#[tokio::test]
async fn design_changes_and_writes_at_the_same_moment_queue_without_deadlock() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, ids) = table(a).await;
    let call = |method: Method, path: String, body: Value| {
        let (client, url, csrf) = (a.client.clone(), a.url(&path), a.csrf.clone());
        tokio::spawn(async move {
            let r = client.request(method, url).header("x-csrf-token", csrf).json(&body).send().await.unwrap();
            r.status()
        })
    };
    for round in 0..6 {
        let max = if round % 2 == 0 { 200 } else { 100 };
        let retype = call(
            Method::POST,
            format!("/api/v1/tables/{tid}/fields/{}/retype", ids[0]),
            json!({"kind": {"type": "text"}, "rules": {"max_length": max}}),
        );
        let trash = call(Method::DELETE, format!("/api/v1/tables/{tid}/fields/{}", ids[1]), json!({}));
        let write = call(Method::POST, format!("/api/v1/tables/{tid}/records"), json!({"values": {"件名": "同時"}}));
        let (r, t, w) = (retype.await.unwrap(), trash.await.unwrap(), write.await.unwrap());
        assert!(r.is_success() && t.is_success(), "round {round}: retype {r}, trash {t}");
        assert!(w.is_success() || w == StatusCode::CONFLICT, "round {round}: write {w}");
        let restore = format!("/api/v1/trash/tables/{tid}/fields/{}/restore", ids[1]);
        let retype = call(
            Method::POST,
            format!("/api/v1/tables/{tid}/fields/{}/retype", ids[0]),
            json!({"kind": {"type": "text"}, "rules": {"max_length": max + 1}}),
        );
        let restored = call(Method::POST, restore, json!({}));
        let (r, t) = (retype.await.unwrap(), restored.await.unwrap());
        assert!(r.is_success() && t.is_success(), "round {round}: retype {r}, restore {t}");
    }
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}")).await;
    assert_eq!(field_names(&v).len(), 3, "{v}");
    assert_eq!(v["table"]["fields"][0]["rules"]["max_length"], 101);
}

/// A table takes at most 200 fields and a tenant at most 500 tables, those in the trash
/// included (they keep their storage, and a restore would bring them back past the limit).
#[tokio::test]
async fn fields_and_tables_are_limited_with_the_trash_counted() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, ids) = table(a).await;
    let add = |name: String| {
        let path = format!("/api/v1/tables/{tid}/fields");
        async move { a.post_json(&path, json!({"name": name, "kind": {"type": "integer"}})).await }
    };
    for i in ids.len()..200 {
        let (s, v) = add(format!("項目{i}")).await;
        assert_eq!(s, StatusCode::CREATED, "{i}: {v}");
    }
    let (s, v) = add("二百一".into()).await;
    assert_eq!((s, v["error"]["fields"][0]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("too_many")));
    // One in the trash still counts; purged, its place is free.
    let trashed = &ids[2];
    assert!(
        a.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}/fields/{trashed}"), json!({})).await.0.is_success()
    );
    let (s, v) = add("二百一".into()).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("too_many")),
        "{v}"
    );
    let purge = format!("/api/v1/trash/tables/{tid}/fields/{trashed}");
    assert_eq!(a.send_json(Method::DELETE, &purge, json!({})).await.0, StatusCode::NO_CONTENT);
    assert_eq!(add("二百一".into()).await.0, StatusCode::CREATED);
    // 499 more tables, in the trash (catalogue rows only), make 500: no more can be made.
    app.raw_sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 499) \
         INSERT INTO user_tables (id, tenant_id, name, description, created_at, deleted_at, trashed_name) \
         SELECT 'fake-' || i, (SELECT tenant_id FROM user_tables LIMIT 1), 'trash-' || i, '', 0, 0, 'fake' FROM n",
        "INSERT INTO user_tables (id, tenant_id, name, description, created_at, deleted_at, trashed_name) \
         SELECT 'fake-' || i, (SELECT tenant_id FROM user_tables LIMIT 1), 'trash-' || i, '', 0, 0, 'fake' \
         FROM generate_series(1, 499) AS i",
    )
    .await
    .unwrap();
    let (s, v) = a.post_json("/api/v1/tables", json!({"name": "五百一"})).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("too_many")),
        "{v}"
    );
    let r = a.post_form("/tables", &[("name", "五百一"), ("description", "")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("at most 500 tables, those in the trash included"));
}

#[tokio::test]
async fn a_settings_page_saved_after_someone_changed_the_field_is_refused_not_applied() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, ids) = table(a).await;
    let page_url = format!("/tables/{tid}/design/fields/{}/type", ids[2]);
    let page = a.get(&page_url).await.text().await.unwrap();
    let was = page.split("name=\"was\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    // Another designer makes the field required meanwhile.
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/fields/{}/retype", ids[2]),
            json!({"kind": {"type": "integer"}, "rules": {"max": "1000"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The page's form, with the rules it showed (none): refused, and the page shows the field now.
    let form = [("was", was.as_str()), ("kind", "integer"), ("scale", "0"), ("action", "apply")];
    let r = a.post_form(&page_url, &form).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains("Maximum 1000") && !body.contains(&format!("value=\"{was}\"")), "{body}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}")).await;
    let f = v["table"]["fields"].as_array().unwrap().iter().find(|f| f["id"] == ids[2].as_str()).unwrap().clone();
    assert_eq!(f["rules"]["max"], "1000", "the other designer's rule stays: {f}");
    // The page as it is now saves.
    let fresh = body.split("name=\"was\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let form = [("was", fresh.as_str()), ("kind", "integer"), ("scale", "0"), ("max", "1000"), ("action", "apply")];
    let r = a.post_form(&page_url, &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_date_time_becomes_the_date_it_falls_on_in_the_tenants_time_zone_and_back() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "予定"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/fields"),
            json!({"name": "日時", "kind": {"type": "date_time"}, "rules": {"default": "2026-11-30T23:00:00Z"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let fid = v["table"]["fields"][0]["id"].as_str().unwrap().to_owned();
    // 00:30 on the 29th in Japan (the default time zone, UTC+09:00) is the 28th in UTC.
    let (s, v) = a
        .post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"日時": "2026-11-29T00:30:00+09:00"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let rid = v["record"]["id"].as_i64().unwrap();
    assert_eq!(v["record"]["values"][&fid], "2026-11-28T15:30:00Z");
    let retype = format!("/api/v1/tables/{tid}/fields/{fid}/retype");
    let record = format!("/api/v1/tables/{tid}/records/{rid}");
    // Changed to 01:00 on the 30th in Japan: still the 29th in UTC.
    let (s, v) =
        a.send_json(Method::PATCH, &record, json!({"version": 1, "values": {"日時": "2026-11-29T16:00:00Z"}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The time of day is lost: a check says so, and the change needs that accepted.
    let (s, v) = a.post_json(&retype, json!({"kind": {"type": "date"}, "apply": false})).await;
    assert_eq!((s, &v["loses"], &v["failed"]), (StatusCode::OK, &json!("loses_time_of_day"), &json!(0)), "{v}");
    let (s, v) = a.post_json(&retype, json!({"kind": {"type": "date"}})).await;
    assert_eq!((s, &v["error"]["fields"][0]["code"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("loses_time_of_day")));
    let (_, v) = a.get_json(&record).await;
    assert_eq!(v["record"]["values"][&fid], "2026-11-29T16:00:00Z", "unchanged");
    // The page checks first, says what is lost and offers the box that accepts it.
    let page = format!("/tables/{tid}/design/fields/{fid}/type");
    let form = [("action", "apply"), ("kind", "date")];
    let r = a.post_form(&page, &form).await;
    let body = r.text().await.unwrap();
    assert!(body.contains("the time of day of every value is lost") && body.contains("name=\"accept_loss\""), "{body}");
    assert_eq!(a.get_json(&record).await.1["record"]["values"][&fid], "2026-11-29T16:00:00Z", "not applied");
    let (s, v) = a.post_json(&retype, json!({"kind": {"type": "date"}, "accept_loss": true})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = a.get_json(&record).await;
    assert_eq!(v["record"]["values"][&fid], "2026-11-30", "the day the pages showed, not the UTC day");
    // The record's history reads in the new type, in the same days.
    let (_, h) = a.get_json(&format!("{record}/history")).await;
    let change = &h["entries"][0]["changes"][0];
    assert_eq!(change["field"], json!(fid));
    assert_eq!((&change["before"], &change["after"]), (&json!("2026-11-29"), &json!("2026-11-30")), "{h}");
    // The default moves with it: 08:00 on the 1st in Japan.
    let (_, t) = a.get_json(&format!("/api/v1/tables/{tid}")).await;
    assert_eq!(t["table"]["fields"][0]["rules"]["default"], "2026-12-01", "{t}");
    // Back: the start of that day in Japan.
    let (s, v) = a.post_json(&retype, json!({"kind": {"type": "date_time"}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = a.get_json(&record).await;
    assert_eq!(v["record"]["values"][&fid], "2026-11-29T15:00:00Z");
}

#[tokio::test]
async fn a_required_field_added_to_records_that_lack_it_does_not_block_its_later_changes() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, _) = table(a).await;
    // Added required to a table with three records: they stay empty in it.
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/fields"),
            json!({"name": "担当部署", "kind": {"type": "text"}, "rules": {"required": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["records_without_value"], 3, "the designer is told how many: {v}");
    let dept = v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned();
    // The page says so too, after adding one through its form.
    let r = a
        .post_form(&format!("/tables/{tid}/fields"), &[("name", "担当者名"), ("kind", "text"), ("required", "on")])
        .await;
    assert_eq!(crate::location(&r), format!("/tables/{tid}?done=field_added&n=3"));
    let page = a.get(&crate::location(&r)).await.text().await.unwrap();
    assert!(page.contains("It is required, and 3 records hold no value in it yet"), "{page}");
    // A field not required says nothing of it.
    let (_, v) =
        a.post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": "備考欄", "kind": {"type": "text"}})).await;
    assert!(v.get("records_without_value").is_none(), "{v}");
    let retype = format!("/api/v1/tables/{tid}/fields/{dept}/retype");
    // Another rule, and another type, keeping "required": the empties are not this change's.
    let (s, v) =
        a.post_json(&retype, json!({"kind": {"type": "text"}, "rules": {"required": true, "max_length": 20}})).await;
    assert_eq!((s, v["failed"].as_i64(), v["applied"].as_bool()), (StatusCode::OK, Some(0), Some(true)), "{v}");
    let (s, v) = a.post_json(&retype, json!({"kind": {"type": "multiline"}, "rules": {"required": true}})).await;
    assert_eq!((s, v["failed"].as_i64()), (StatusCode::OK, Some(0)), "{v}");
    // Making a field required that was not, over empty values, is still refused with them.
    let (s, v) = a.post_json(&retype, json!({"kind": {"type": "multiline"}, "rules": {}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = a.post_json(&retype, json!({"kind": {"type": "multiline"}, "rules": {"required": true}})).await;
    assert_eq!((s, v["failed"].as_i64()), (StatusCode::UNPROCESSABLE_ENTITY, Some(3)), "{v}");
    assert_eq!(v["failures"][0]["code"], "required");
}

#[tokio::test]
async fn a_field_a_link_shows_and_a_table_links_point_into_are_not_deleted_while_the_link_stands() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, ids) = table(a).await;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "対応 <履歴>"})).await;
    let other = v["table"]["id"].as_str().unwrap().to_owned();
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{other}/fields"),
            json!({"name": "元の問い合わせ", "kind": {"type": "link", "table": tid, "show": ids[0]}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let link = v["table"]["fields"][0]["id"].as_str().unwrap().to_owned();
    // The shown field: refused by the API and the design page, each naming the link.
    let (s, v) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}/fields/{}", ids[0]), json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["fields"][0]["code"], "shown_by_link", "{v}");
    assert_eq!(v["error"]["fields"][0]["field"], "link:対応 <履歴> › 元の問い合わせ", "{v}");
    let design = format!("/tables/{tid}/design");
    let r = a.post_form(&design, &[("action", "delete_field"), ("field", &ids[0]), ("confirm", "yes")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("A link field shows this field") && body.contains("対応 &#60;履歴&#62; › 元の問い合わせ"),
        "{body}"
    );
    // A designer who may not see the link field is told that a link stands, not its name.
    let (_, users) = a.get_json("/api/v1/users").await;
    let member = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "member1").unwrap()["id"].clone();
    let (_, g) = a.post_json("/api/v1/groups", json!({"name": "設計"})).await;
    let gid = g["group"]["id"].as_str().unwrap().to_owned();
    a.send_json(Method::PUT, &format!("/api/v1/groups/{gid}/members"), json!({"members": [member]})).await;
    let (s, _) = a
        .send_json(Method::PUT, &format!("/api/v1/groups/{gid}/grants/{tid}"), json!({"rights": ["view", "design"]}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let mut hidden = serde_json::Map::new();
    hidden.insert(link.clone(), json!("hidden"));
    let body = json!({"rights": ["view"], "fields": hidden});
    let (s, _) = a.send_json(Method::PUT, &format!("/api/v1/groups/{gid}/grants/{other}"), body).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) =
        cast.member.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}/fields/{}", ids[0]), json!({})).await;
    assert_eq!((s, &v["error"]["fields"][0]["field"]), (StatusCode::CONFLICT, &json!("link:")), "{v}");
    assert!(!v.to_string().contains("元の問い合わせ"), "{v}");
    // The link may show another field instead (the same records); then the first may go.
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{other}/fields/{link}/retype"),
            json!({"kind": {"type": "link", "table": tid, "show": ids[2]}}),
        )
        .await;
    assert_eq!((s, &v["applied"]), (StatusCode::OK, &json!(true)), "{v}");
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{other}/fields/{link}/retype"),
            json!({"kind": {"type": "link", "table": other, "show": link}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "another table's records are not these: {v}");
    let (s, v) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}/fields/{}", ids[0]), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    // Another field of the table goes; the table itself does not while a link points into it.
    let (s, _) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}/fields/{}", ids[1]), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}"), json!({})).await;
    assert_eq!((s, &v["error"]["fields"][0]["code"]), (StatusCode::CONFLICT, &json!("linked_to")), "{v}");
    let r = a.post_form(&design, &[("action", "delete_table"), ("confirm", "yes")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("Link fields of other tables link to this table"));
    // Once the link is gone, both may go.
    let (s, _) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{other}/fields/{link}"), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // With the link in the trash, what it shows may go; restored then, the link is said to
    // point at nothing.
    let (s, _) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}/fields/{}", ids[2]), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = a.post_json(&format!("/api/v1/trash/tables/{other}/fields/{link}/restore"), json!({})).await;
    assert_eq!((s, &v["broken_links"]), (StatusCode::OK, &json!(["対応 <履歴> › 元の問い合わせ"])), "{v}");
    // What a live link shows is not deleted for good while it stands (it would show nothing
    // for good): the trash keeps it.
    let (s, v) = a.send_json(Method::DELETE, &format!("/api/v1/trash/tables/{tid}/fields/{}", ids[2]), json!({})).await;
    assert_eq!((s, &v["error"]["fields"][0]["code"]), (StatusCode::CONFLICT, &json!("shown_by_link")), "{v}");
    assert_eq!(v["error"]["fields"][0]["field"], "link:対応 <履歴> › 元の問い合わせ", "{v}");
    // The trash page says so too.
    a.send_json(Method::DELETE, &format!("/api/v1/tables/{other}/fields/{link}"), json!({})).await;
    let r = a.post_form("/tables/trash", &[("action", "restore"), ("table", &other), ("field", &link)]).await;
    assert_eq!(crate::location(&r), "/tables/trash?done=restored_broken_link");
    let page = a.get(&crate::location(&r)).await.text().await.unwrap();
    assert!(page.contains("points at a table or field deleted meanwhile"), "{page}");
    // A restore with nothing broken is 204, as before.
    let (s, _) = a.post_json(&format!("/api/v1/trash/tables/{tid}/fields/{}/restore", ids[2]), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{other}/fields/{link}"), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}"), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // The link restored while its table is in the trash (said to be broken): the table is not
    // purged while the link stands, neither by hand nor by the daily job past its 30 days.
    let (s, v) = a.post_json(&format!("/api/v1/trash/tables/{other}/fields/{link}/restore"), json!({})).await;
    assert_eq!((s, &v["broken_links"]), (StatusCode::OK, &json!(["対応 <履歴> › 元の問い合わせ"])), "{v}");
    let (s, v) = a.send_json(Method::DELETE, &format!("/api/v1/trash/tables/{tid}"), json!({})).await;
    assert_eq!((s, &v["error"]["fields"][0]["code"]), (StatusCode::CONFLICT, &json!("linked_to")), "{v}");
    let r = a.post_form("/tables/trash", &[("action", "purge"), ("table", &tid), ("confirm", "yes")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("Link fields of other tables link to this table"), "{page}");
    assert!(page.contains("対応 &#60;履歴&#62; › 元の問い合わせ"), "{page}");
    let runner = JobRunner::new(
        app.running.store.clone(),
        Arc::new(app.clock.clone()),
        "node".into(),
        Arc::new(app.config.clone()),
    );
    app.clock.advance(Duration::days(31));
    assert!(runner.tick().await.unwrap().contains(&"trash.purge"), "the job runs, and does not fail");
    // (A month on, signed in again.)
    let again = app.login(&a.tenant, &a.login, &a.password).await;
    let a = &again;
    let trash = a.get_json("/api/v1/trash").await.1;
    assert!(
        trash["items"].as_array().unwrap().iter().any(|i| i["table"] == tid.as_str() && i["field"].is_null()),
        "{trash}"
    );
    // Restored, the table mends the link; the link gone, the table may go for good.
    let (s, v) = a.post_json(&format!("/api/v1/trash/tables/{tid}/restore"), json!({})).await;
    assert!(s.is_success(), "{s} {v}");
    let (s, _) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{other}/fields/{link}"), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}"), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = a.send_json(Method::DELETE, &format!("/api/v1/trash/tables/{tid}"), json!({})).await;
    assert!(s.is_success(), "{s} {v}");
}

/// A link added at the same moment as its table goes to the trash (the request checked the
/// table before, the trash was committed while it waited to write): refused in the store's
/// transaction, not a live link into the trash.
#[tokio::test]
async fn a_link_added_as_its_table_goes_to_the_trash_is_refused() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (target, ids) = table(a).await;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "受注"})).await;
    let orders = v["table"]["id"].as_str().unwrap().to_owned();
    let trash = format!(
        "UPDATE user_tables SET deleted_at = 1, trashed_name = name, name = 'trashed {target}' WHERE id = '{target}'"
    );
    let held = app.hold_sql(&[trash]).await;
    let request = {
        let (client, url, csrf) = (a.client.clone(), a.url(&format!("/api/v1/tables/{orders}/fields")), a.csrf.clone());
        let body = json!({"name": "顧客", "kind": {"type": "link", "table": target, "show": ids[0]}});
        tokio::spawn(async move {
            let r = client.post(url).header("x-csrf-token", csrf).json(&body).send().await.unwrap();
            let s = r.status();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        })
    };
    app.wait_for_waiting_writers(1).await;
    held.commit().await;
    let (s, v) = request.await.unwrap();
    assert_eq!((s, &v["error"]["fields"][0]["code"]), (StatusCode::CONFLICT, &json!("unknown_table")), "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{orders}")).await;
    assert_eq!(v["table"]["fields"], json!([]), "no field added");
}

#[tokio::test]
async fn a_field_change_through_the_api_based_on_an_older_read_is_refused_not_applied() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, ids) = table(a).await;
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}")).await;
    let token = v["table"]["fields"][2]["token"].as_str().unwrap().to_owned();
    let retype = format!("/api/v1/tables/{tid}/fields/{}/retype", ids[2]);
    // Someone else sets a maximum meanwhile.
    let (s, v) = a.post_json(&retype, json!({"kind": {"type": "integer"}, "rules": {"max": "100"}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The older read's change is refused, and the maximum stays.
    let body = json!({"kind": {"type": "integer"}, "rules": {"required": true}, "was": token});
    let (s, v) = a.post_json(&retype, body).await;
    assert_eq!((s, &v["error"]["fields"][0]["code"]), (StatusCode::CONFLICT, &json!("design_changed")), "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}")).await;
    assert_eq!(v["table"]["fields"][2]["rules"]["max"], "100", "{v}");
    // With the token read now, it goes through.
    let token = v["table"]["fields"][2]["token"].as_str().unwrap().to_owned();
    let body = json!({"kind": {"type": "integer"}, "rules": {"required": true, "max": "100"}, "was": token});
    let (s, v) = a.post_json(&retype, body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn a_required_field_made_a_checkbox_drops_required_and_says_so() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "同意書"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/fields"),
            json!({"name": "同意", "kind": {"type": "text"}, "rules": {"required": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let fid = v["table"]["fields"][0]["id"].as_str().unwrap().to_owned();
    let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"同意": "true"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Without rules given, the rules a checkbox does not take are dropped and named.
    let (s, v) =
        a.post_json(&format!("/api/v1/tables/{tid}/fields/{fid}/retype"), json!({"kind": {"type": "checkbox"}})).await;
    assert_eq!((s, &v["rules_dropped"], &v["applied"]), (StatusCode::OK, &json!(["required"]), &json!(true)), "{v}");
    let (_, t) = a.get_json(&format!("/api/v1/tables/{tid}")).await;
    assert_ne!(t["table"]["fields"][0]["rules"]["required"], true, "{t}");
    // Given explicitly, "required" on a checkbox is refused.
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/fields/{fid}/retype"),
            json!({"kind": {"type": "checkbox"}, "rules": {"required": true}}),
        )
        .await;
    assert_eq!((s, &v["error"]["fields"][0]["code"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("not_for_this_type")));
}

#[tokio::test]
async fn a_date_time_default_is_written_and_shown_in_the_tenants_time_as_the_forms_write_date_times() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "予定"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    // The add-field form, with the default written as its hint says (UTC+09:00 by default).
    let r = a
        .post_form(
            &format!("/tables/{tid}/fields"),
            &[("name", "開始"), ("kind", "date_time"), ("default", "2026-04-01 09:30")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
    // The API, too.
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/fields"),
            json!({"name": "終了", "kind": {"type": "date_time"}, "rules": {"default": "2026/4/1 18:00"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let fields = v["table"]["fields"].as_array().unwrap().clone();
    assert_eq!(fields[0]["rules"]["default"], "2026-04-01T09:30:00+09:00", "{v}");
    assert_eq!(fields[1]["rules"]["default"], "2026-04-01T18:00:00+09:00", "{v}");
    // A new record gets them; the settings page shows the default as it was written.
    let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let fid = fields[0]["id"].as_str().unwrap();
    assert_eq!(v["record"]["values"][fid], "2026-04-01T00:30:00Z", "{v}");
    let page = a.get(&format!("/tables/{tid}/design/fields/{fid}/type")).await.text().await.unwrap();
    assert!(page.contains("value=\"2026-04-01 09:30\""), "{page}");
}

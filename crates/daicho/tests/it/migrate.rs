//! Moving a populated installation from SQLite to PostgreSQL.

use daicho_testkit::TestApp;
use daicho_testkit::reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_populated_sqlite_installation_moves_to_postgresql_and_the_copy_verifies() {
    let Some(admin_url) = daicho_testkit::postgres_admin_url() else {
        // On the SQLite pass the target is another SQLite file: the copy and its verification are
        // the same code; scripts/test runs this test again with PostgreSQL as the target.
        return sqlite_to(&format!("sqlite://{}", tempfile::tempdir().unwrap().keep().join("copy.db").display())).await;
    };
    sqlite_to(&daicho_testkit::fresh_postgres_database(&admin_url).await).await;
}

async fn sqlite_to(target_url: &str) {
    // The source is always SQLite, whatever the suite's backend.
    let app =
        TestApp::start_with(|c| c.database.url = Some(format!("sqlite://{}", c.data_dir.join("source.db").display())))
            .await;
    assert_eq!(app.backend(), "sqlite");
    let cast = app.cast().await;
    let (s, _) = cast
        .admin
        .post_json(
            "/api/v1/users",
            json!({"login_id": "hanako", "display_name": "山田 花子", "email": "h@example.jp", "role": "member"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = cast
        .member
        .post_json(
            "/api/v1/me/password",
            json!({"current_password": cast.member.password, "new_password": "a moved passphrase 1"}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    app.client()
        .post(app.url("/login"))
        .form(&[("tenant", "acme"), ("login_id", "admin"), ("password", "wrong")])
        .send()
        .await
        .unwrap();

    let tables = build_tables(&cast).await;

    let mut config = app.config.clone();
    config.database.url = Some(target_url.to_owned());
    let target = daicho::open_store(&config).await.unwrap();
    let report = daicho::operator::migrate_store(app.store(), target.get()).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert!(report.counts.iter().any(|(t, n, _)| *t == "users" && *n == 4), "{report:?}");
    assert!(report.counts.iter().any(|(t, n, _)| *t == "audit_events" && *n > 10), "{report:?}");
    let count = |name: &str| report.counts.iter().find(|(t, _, _)| t == name).map(|(_, a, b)| (*a, *b));
    assert_eq!(count(&format!("records {}", tables.customers)), Some((29, 29)), "{report:?}");
    assert_eq!(count(&format!("records {}", tables.orders)), Some((5, 5)), "{report:?}");
    assert_eq!(count("user_tables"), Some((3, 3)));
    assert_eq!(count("user_fields"), Some((10, 10)), "one of them in the trash");
    assert_eq!(count("user_groups"), Some((1, 1)));
    assert_eq!(count("group_members"), Some((1, 1)));
    assert_eq!(count("table_grants"), Some((2, 2)));
    assert_eq!(count("api_tokens"), Some((1, 1)));
    assert_eq!(count("record_history"), Some((3, 3)));
    assert_eq!(count("saved_views"), Some((1, 1)));
    // And back again (from PostgreSQL on that pass): the copy reads from either store.
    let mut back_config = app.config.clone();
    back_config.database.url = Some(format!("sqlite://{}", app.config.data_dir.join("back.db").display()));
    let back = daicho::open_store(&back_config).await.unwrap();
    let round = daicho::operator::migrate_store(target.get(), back.get()).await.unwrap();
    assert!(round.ok, "{round:?}");
    assert_eq!(round.counts, report.counts);
    // A second copy into the same target is refused rather than merged.
    assert!(daicho::operator::migrate_store(app.store(), target.get()).await.is_err());

    // Serve from the target: the same people sign in with the same passwords, history continues.
    app.running.shutdown();
    let moved = TestApp::start_with(|c| c.database.url = Some(target_url.to_owned())).await;
    let admin = moved.login("acme", "admin", &cast.admin.password).await;
    moved.login("acme", "member1", "a moved passphrase 1").await;
    let (_, v) = admin.get_json("/api/v1/audit?action=login.failure").await;
    assert_eq!(v["events"].as_array().unwrap().len(), 1);
    let page = admin.get("/admin/audit?verify=1").await.text().await.unwrap();
    assert!(page.contains("Integrity check passed"));
    let (lines, ok) = daicho::operator::verify_audit(moved.store()).await.unwrap();
    assert!(ok, "{lines:?}");
    check_tables(&moved, &admin, &tables).await;
}

/// A table larger than one copy batch (10,000 records) and one INSERT statement (500 rows):
/// every record arrives once with its values (empty ones empty), and the keyword index on the
/// target covers the first, the last and those in between.
#[tokio::test]
async fn a_table_of_thousands_of_records_moves_whole_and_stays_searchable() {
    let target_url = match daicho_testkit::postgres_admin_url() {
        None => format!("sqlite://{}", tempfile::tempdir().unwrap().keep().join("copy.db").display()),
        Some(admin_url) => daicho_testkit::fresh_postgres_database(&admin_url).await,
    };
    let app =
        TestApp::start_with(|c| c.database.url = Some(format!("sqlite://{}", c.data_dir.join("source.db").display())))
            .await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "一括 Bulk"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    let mut ids = std::collections::HashMap::new();
    for (name, kind) in [("名前", "text"), ("番号", "integer"), ("有効", "checkbox"), ("備考", "multiline")] {
        let (s, v) =
            a.post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": name, "kind": {"type": kind}})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let f = v["table"]["fields"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap();
        ids.insert(name, f["id"].as_str().unwrap().to_owned());
    }
    let rows = 12_345;
    let mut csv = String::from("名前,番号,有効,備考\n");
    for i in 0..rows {
        let number = if i % 10 == 0 { String::new() } else { i.to_string() };
        let note = if i % 3 == 0 { String::new() } else { format!("\"備考 {i}, \"\"引用\"\"\nの本文\"") };
        csv.push_str(&format!("名前{i:05},{number},{},{note}\n", if i % 2 == 0 { "TRUE" } else { "FALSE" }));
    }
    let (s, v) = crate::tables::import(a, &tid, "", csv.into_bytes()).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let mut config = app.config.clone();
    config.database.url = Some(target_url.clone());
    let target = daicho::open_store(&config).await.unwrap();
    let report = daicho::operator::migrate_store(app.store(), target.get()).await.unwrap();
    assert!(report.ok, "{report:?}");
    let moved_count = report.counts.iter().find(|(t, _, _)| *t == format!("records {tid}")).map(|(_, a, b)| (*a, *b));
    assert_eq!(moved_count, Some((rows as i64, rows as i64)), "{report:?}");

    app.running.shutdown();
    let moved = TestApp::start_with(|c| c.database.url = Some(target_url.clone())).await;
    let admin = moved.login("acme", "admin", &cast.admin.password).await;
    // The API counts up to 10,000; beyond, it says "more".
    let (_, v) = admin.get_json(&format!("/api/v1/tables/{tid}/records?count=true&limit=1")).await;
    assert_eq!((v["count"].clone(), v["count_capped"].clone()), (json!(10_000), json!(true)), "{v}");
    for i in [0, 1, 499, 500, 1234, 9_999, 10_000, 10_499, 10_500, rows - 1] {
        let (s, v) = admin.get_json(&format!("/api/v1/tables/{tid}/records?q=%E5%90%8D%E5%89%8D{i:05}")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let found = v["records"].as_array().unwrap();
        assert_eq!(found.len(), 1, "名前{i:05}: {v}");
        let values = &found[0]["values"];
        assert_eq!(values[&ids["名前"]], format!("名前{i:05}"));
        assert_eq!(values[&ids["番号"]], if i % 10 == 0 { json!(null) } else { json!(i) }, "{values}");
        assert_eq!(values[&ids["有効"]], json!(i % 2 == 0), "{values}");
        let note = if i % 3 == 0 { json!(null) } else { json!(format!("備考 {i}, \"引用\"\nの本文")) };
        assert_eq!(values[&ids["備考"]], note, "{values}");
    }
    // The notes' text is in the index too (two thirds of the records hold one).
    let (_, v) = admin.get_json(&format!("/api/v1/tables/{tid}/records?q=%E5%82%99%E8%80%83%2012344%2C&limit=5")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 1, "{v}");
}

struct Tables {
    customers: String,
    orders: String,
    updated: i64,
    token: String,
}

/// Two user tables (customers, and orders linking to them) with every storage type, hostile
/// text, an edited record (history), a deleted one (the id high-water mark), a group with field
/// rules and a personal API token.
async fn build_tables(cast: &daicho_testkit::Cast) -> Tables {
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "顧客 Customers", "description": "移行テスト"})).await;
    let customers = v["table"]["id"].as_str().unwrap().to_owned();
    let (_, users) = a.get_json("/api/v1/users").await;
    let member_id = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "member1").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut company = String::new();
    for (name, kind, rules) in [
        ("会社名", json!({"type": "text"}), json!({"required": true, "unique": true})),
        ("社員数", json!({"type": "integer"}), json!({})),
        ("契約日", json!({"type": "date"}), json!({})),
        ("有効", json!({"type": "checkbox"}), json!({})),
        ("担当", json!({"type": "user"}), json!({})),
    ] {
        let (s, v) = a
            .post_json(
                &format!("/api/v1/tables/{customers}/fields"),
                json!({"name": name, "kind": kind, "rules": rules}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        if name == "会社名" {
            company = v["table"]["fields"][0]["id"].as_str().unwrap().to_owned();
        }
    }
    let mut ids = Vec::new();
    for i in 1..=30 {
        let name = if i == 7 {
            "'; DROP TABLE users; -- <b>株式会社</b> 😀".to_owned()
        } else {
            format!("株式会社テスト{i:02}")
        };
        let (s, v) = a
            .post_json(
                &format!("/api/v1/tables/{customers}/records"),
                json!({"values": {"会社名": name, "社員数": i * 10, "契約日": format!("2026-01-{i:02}"),
                                  "有効": i % 2 == 0, "担当": if i % 3 == 0 { json!(member_id) } else { json!(null) }}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["record"]["id"].as_i64().unwrap());
    }
    let updated = ids[1];
    for (version, n) in [(1, 999), (2, 1000)] {
        let (s, v) = a
            .send_json(
                Method::PATCH,
                &format!("/api/v1/tables/{customers}/records/{updated}"),
                json!({"version": version, "values": {"社員数": n}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let last = ids[29];
    let (s, _) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{customers}/records/{last}"), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // A field in the trash, with a value: not searched on the moved store until restored.
    let (s, v) = a
        .post_json(&format!("/api/v1/tables/{customers}/fields"), json!({"name": "旧メモ", "kind": {"type": "text"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let secret = v["table"]["fields"].as_array().unwrap().iter().find(|f| f["name"] == "旧メモ").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, v) = a
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{customers}/records/{}", ids[0]),
            json!({"version": 1, "values": {"旧メモ": "極秘の合言葉"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{customers}/fields/{secret}"), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = a.get_json(&format!("/api/v1/tables/{customers}/records?q=極秘の合言葉")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 0, "{v}");

    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "受注 Orders"})).await;
    let orders = v["table"]["id"].as_str().unwrap().to_owned();
    for (name, kind) in [
        ("顧客", json!({"type": "link", "table": customers, "show": company})),
        ("金額", json!({"type": "decimal", "scale": 2})),
        ("受注番号", json!({"type": "auto_number", "prefix": "SO-", "digits": 4})),
    ] {
        let (s, v) = a.post_json(&format!("/api/v1/tables/{orders}/fields"), json!({"name": name, "kind": kind})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    for (i, customer) in ids.iter().take(5).enumerate() {
        let (s, v) = a
            .post_json(
                &format!("/api/v1/tables/{orders}/records"),
                json!({"values": {"顧客": customer, "金額": format!("{}.50", 1000 + i)}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }

    let (_, g) = a.post_json("/api/v1/groups", json!({"name": "営業 Sales"})).await;
    let gid = g["group"]["id"].as_str().unwrap().to_owned();
    a.send_json(Method::PUT, &format!("/api/v1/groups/{gid}/members"), json!({"members": [member_id]})).await;
    let (_, t) = a.get_json(&format!("/api/v1/tables/{customers}")).await;
    let staff = t["table"]["fields"][1]["id"].as_str().unwrap().to_owned();
    let mut hidden = serde_json::Map::new();
    hidden.insert(staff, json!("hidden"));
    for (table, body) in
        [(&customers, json!({"rights": ["view"], "fields": hidden})), (&orders, json!({"rights": ["view", "create"]}))]
    {
        let (s, v) = a.send_json(Method::PUT, &format!("/api/v1/groups/{gid}/grants/{table}"), body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    // A table in the trash, with a record, comes along in the trash.
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "旧台帳"})).await;
    let old = v["table"]["id"].as_str().unwrap().to_owned();
    a.post_json(&format!("/api/v1/tables/{old}/fields"), json!({"name": "メモ", "kind": {"type": "text"}})).await;
    a.post_json(&format!("/api/v1/tables/{old}/records"), json!({"values": {"メモ": "残す"}})).await;
    assert_eq!(
        a.send_json(Method::DELETE, &format!("/api/v1/tables/{old}"), json!({})).await.0,
        StatusCode::NO_CONTENT
    );
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{customers}/views"),
            json!({"name": "大口", "shared": true, "sort": [{"field": "社員数", "dir": "desc"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = cast
        .member
        .post_json("/api/v1/me/tokens", json!({"name": "移行", "read_only": true, "expires_in_days": 30}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    Tables { customers, orders, updated, token: v["secret"].as_str().unwrap().to_owned() }
}

/// On the moved installation: records, search, sort, history, links, rights and the token work
/// as before, and a new record does not reuse a deleted record's id.
async fn check_tables(moved: &TestApp, admin: &daicho_testkit::Persona, t: &Tables) {
    let c = &t.customers;
    let fid = |def: &serde_json::Value, name: &str| {
        def["table"]["fields"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (_, cdef) = admin.get_json(&format!("/api/v1/tables/{c}")).await;
    let (_, odef) = admin.get_json(&format!("/api/v1/tables/{}", t.orders)).await;
    let (company, link, amount) = (fid(&cdef, "会社名"), fid(&odef, "顧客"), fid(&odef, "金額"));
    let (s, v) = admin.get_json(&format!("/api/v1/tables/{c}/records?limit=100")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["records"].as_array().unwrap().len(), 29);
    // The keyword index was rebuilt: a substring of Japanese text, and the hostile name intact.
    let (_, v) = admin.get_json(&format!("/api/v1/tables/{c}/records?q=%E3%83%86%E3%82%B9%E3%83%8812")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 1, "{v}");
    let (_, v) = admin.get_json(&format!("/api/v1/tables/{c}/records?q=DROP")).await;
    assert_eq!(v["records"][0]["values"][&company], "'; DROP TABLE users; -- <b>株式会社</b> 😀");
    let (_, v) = admin.get_json(&format!("/api/v1/tables/{c}/records?sort=社員数&dir=desc&limit=1")).await;
    assert_eq!(v["records"][0]["id"], t.updated);
    let (_, v) = admin.get_json(&format!("/api/v1/tables/{c}/records/{}/history", t.updated)).await;
    assert_eq!(v["entries"].as_array().unwrap().len(), 2, "{v}");
    // The unique rule came along.
    let (s, _) = admin
        .post_json(&format!("/api/v1/tables/{c}/records"), json!({"values": {"会社名": "株式会社テスト03"}}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, v) = admin.post_json(&format!("/api/v1/tables/{c}/records"), json!({"values": {"会社名": "移行後"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // (PostgreSQL's sequence also spent an id on the refused duplicate above.)
    assert!(v["record"]["id"].as_i64().unwrap() > 30, "the deleted record's id 30 is not handed out again: {v}");
    let (_, v) = admin.get_json(&format!("/api/v1/tables/{}/records?limit=10", t.orders)).await;
    let first = &v["records"][4];
    assert_eq!(first["lookups"][&link], "株式会社テスト01", "{v}");
    assert_eq!(first["values"][&amount], "1000.50", "{v}");
    assert_eq!(first["values"][&fid(&odef, "受注番号")], "SO-0001", "{v}");
    let (_, v) = admin.get_json(&format!("/api/v1/tables/{c}/views")).await;
    let view = v["views"][0]["id"].as_str().unwrap().to_owned();
    let (_, v) = admin.get_json(&format!("/api/v1/tables/{c}/records?view={view}&limit=1")).await;
    assert_eq!(v["records"][0]["id"], t.updated, "the shared view came along and runs");
    let (_, v) = admin.get_json(&format!("/api/v1/tables/{c}/records?q=極秘の合言葉")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 0, "a field in the trash is not searched: {v}");
    let (_, v) = admin.get_json("/api/v1/trash").await;
    let items = v["items"].as_array().unwrap();
    let old = items.iter().find(|i| i["table_name"] == "旧台帳" && i["field"].is_null()).expect("the table")["table"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret =
        items.iter().find(|i| i["field_name"] == "旧メモ").expect("the field")["field"].as_str().unwrap().to_owned();
    assert_eq!(
        admin.post_json(&format!("/api/v1/trash/tables/{old}/restore"), json!({})).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, v) = admin.get_json(&format!("/api/v1/tables/{old}/records")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 1, "restored on the new store with its record");
    // The member's rights and field rules, and their token.
    let member = moved.login("acme", "member1", "a moved passphrase 1").await;
    let (_, v) = member.get_json(&format!("/api/v1/tables/{c}/records/{}", t.updated)).await;
    assert_eq!(v["record"]["values"].as_object().unwrap().len(), 4, "社員数 stays hidden: {v}");
    assert_eq!(
        member.post_json(&format!("/api/v1/tables/{c}/records"), json!({"values": {}})).await.0,
        StatusCode::FORBIDDEN
    );
    let r = moved
        .client()
        .get(moved.url(&format!("/api/v1/tables/{}/records", t.orders)))
        .header("authorization", format!("Bearer {}", t.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The field restored: its value is found again.
    assert_eq!(
        admin.post_json(&format!("/api/v1/trash/tables/{c}/fields/{secret}/restore"), json!({})).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, v) = admin.get_json(&format!("/api/v1/tables/{c}/records?q=極秘の合言葉")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 1, "{v}");
}

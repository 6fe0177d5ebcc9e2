//! User tables through the API: typed fields, validation, uniqueness, optimistic concurrency,
//! hostile names, tenancy and the design and data rights.

use daicho_testkit::reqwest::{Method, StatusCode};
use daicho_testkit::{Persona, TestApp};
use serde_json::{Value, json};

async fn customers(admin: &Persona) -> (String, Value) {
    let (s, v) = admin.post_json("/api/v1/tables", json!({"name": "顧客 (customers)", "description": "取引先"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    let fields = [
        json!({"name": "会社名", "kind": {"type": "text"}, "rules": {"required": true, "unique": true, "max_length": 50}}),
        json!({"name": "メモ", "kind": {"type": "multiline"}}),
        json!({"name": "従業員数", "kind": {"type": "integer"}, "rules": {"min": "0", "max": "1000000"}}),
        json!({"name": "与信枠", "kind": {"type": "decimal", "scale": 2}}),
        json!({"name": "契約日", "kind": {"type": "date"}}),
        json!({"name": "最終連絡", "kind": {"type": "date_time"}}),
        json!({"name": "有効", "kind": {"type": "checkbox"}}),
        json!({"name": "ランク", "kind": {"type": "choice", "choices": ["A", "B", "C"]}}),
        json!({"name": "メール", "kind": {"type": "email"}}),
        json!({"name": "Web", "kind": {"type": "url"}}),
    ];
    let mut table = Value::Null;
    for f in fields {
        let (s, v) = admin.post_json(&format!("/api/v1/tables/{tid}/fields"), f).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        table = v["table"].clone();
    }
    (tid, table)
}

fn field_id(table: &Value, name: &str) -> String {
    table["fields"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap()["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_field_type_round_trips_through_a_real_table() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (tid, table) = customers(&cast.admin).await;
    assert_eq!(table["fields"].as_array().unwrap().len(), 10);
    let values = json!({
        "会社名": "株式会社テスト", "メモ": "1行目\n2行目", "従業員数": 42, "与信枠": "1234567.89",
        "契約日": "2026-04-01", "最終連絡": "2026-04-01T09:30:00+09:00", "有効": true, "ランク": "A",
        "メール": "info@test.example.jp", "Web": "https://test.example.jp/",
    });
    let (s, v) = cast.admin.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": values})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let rid = v["record"]["id"].as_i64().unwrap();
    let (s, v) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records/{rid}")).await;
    assert_eq!(s, StatusCode::OK);
    let got = &v["record"]["values"];
    let f = |n: &str| got[field_id(&table, n)].clone();
    assert_eq!(f("会社名"), "株式会社テスト");
    assert_eq!(f("メモ"), "1行目\n2行目");
    assert_eq!(f("従業員数"), 42);
    assert_eq!(f("与信枠"), "1234567.89");
    assert_eq!(f("契約日"), "2026-04-01");
    assert_eq!(f("最終連絡"), "2026-04-01T00:30:00Z");
    assert_eq!(f("有効"), true);
    assert_eq!(f("ランク"), "A");
    assert_eq!(f("Web"), "https://test.example.jp/");
    assert_eq!(v["record"]["version"], 1);
    let (_, list) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records")).await;
    assert_eq!(list["records"].as_array().unwrap().len(), 1);
    let (_, audit) = cast.admin.get_json("/api/v1/audit?action=record.create").await;
    assert!(audit["events"][0]["details"].as_str().unwrap().contains("会社名: \"株式会社テスト\""));
}

#[tokio::test]
async fn invalid_values_are_explained_per_field_and_nothing_is_written() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (tid, table) = customers(&cast.admin).await;
    let values = json!({"従業員数": "many", "与信枠": "1.234", "契約日": "2026-02-30", "ランク": "Z", "メール": "nope", "Web": "javascript:alert(1)", "無い項目": 1});
    let (s, v) = cast.admin.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": values})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let errs: Vec<(String, String)> = v["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap().to_owned(), e["code"].as_str().unwrap().to_owned()))
        .collect();
    let has = |name: &str, code: &str| errs.contains(&(field_id(&table, name), code.to_owned()));
    assert!(has("会社名", "required"), "{errs:?}");
    assert!(has("従業員数", "not_a_number"));
    assert!(has("与信枠", "not_a_decimal"));
    assert!(has("契約日", "no_such_date"), "a date of the right shape the calendar lacks");
    assert!(has("ランク", "choice"));
    assert!(has("メール", "email_format"));
    assert!(has("Web", "url_format"));
    assert!(errs.contains(&("無い項目".to_owned(), "unknown_field".to_owned())));
    // One field given twice, by its id and by its name: refused, not one of them dropped.
    let memo = field_id(&table, "メモ");
    let (s, v) = cast
        .admin
        .post_json(
            &format!("/api/v1/tables/{tid}/records"),
            json!({"values": {"会社名": "二重社", memo.clone(): "a", "メモ": "b"}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        (v["error"]["fields"][0]["field"].as_str(), v["error"]["fields"][0]["code"].as_str()),
        (Some(memo.as_str()), Some("named_twice"))
    );
    let (_, list) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records")).await;
    assert!(list["records"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_unique_field_refuses_a_duplicate_and_a_stale_edit_is_refused() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (tid, table) = customers(&cast.admin).await;
    let url = format!("/api/v1/tables/{tid}/records");
    let (s, v) = cast.admin.post_json(&url, json!({"values": {"会社名": "ACME"}})).await;
    assert_eq!(s, StatusCode::CREATED);
    let rid = v["record"]["id"].as_i64().unwrap();
    let (s, v) = cast.admin.post_json(&url, json!({"values": {"会社名": "ACME"}})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["error"]["fields"][0]["field"], field_id(&table, "会社名"));
    assert_eq!(v["error"]["fields"][0]["code"], "taken");
    // Two people edit version 1; the second save is refused, not silently overwritten.
    let rec = format!("/api/v1/tables/{tid}/records/{rid}");
    let (s, v) = cast.admin.send_json(Method::PATCH, &rec, json!({"version": 1, "values": {"従業員数": 10}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["record"]["version"], 2);
    let (s, v) = cast.admin.send_json(Method::PATCH, &rec, json!({"version": 1, "values": {"従業員数": 20}})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["error"]["fields"][0]["code"], "stale");
    let (_, v) = cast.admin.get_json(&rec).await;
    assert_eq!(v["record"]["values"][field_id(&table, "従業員数")], 10);
    // An edit that changes nothing is refused, not a new version with no history.
    let (s, v) = cast.admin.send_json(Method::PATCH, &rec, json!({"version": 2, "values": {}})).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("values")),
        "{v}"
    );
    assert_eq!(cast.admin.get_json(&rec).await.1["record"]["version"], 2);
    let (_, audit) = cast.admin.get_json("/api/v1/audit?action=record.update").await;
    assert_eq!(audit["events"][0]["details"], "従業員数: null -> 10");
    let (s, _) = cast.admin.send_json(Method::DELETE, &rec, json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(cast.admin.get_json(&rec).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn hostile_table_field_and_choice_names_and_values_are_stored_intact() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let evil = "x'); DROP TABLE users; -- <script>alert(1)</script> \"😀";
    let (s, v) = cast.admin.post_json("/api/v1/tables", json!({"name": evil})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    let (s, v) = cast
        .admin
        .post_json(
            &format!("/api/v1/tables/{tid}/fields"),
            json!({"name": evil, "kind": {"type": "choice", "choices": [evil, "ok"]}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = cast
        .admin
        .post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": "t", "kind": {"type": "text"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v2) = cast
        .admin
        .post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {evil: evil, "t": evil}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v2}");
    let fid = v["table"]["fields"][0]["id"].as_str().unwrap();
    assert_eq!(v2["record"]["values"][fid], evil);
    let (_, t) = cast.admin.get_json(&format!("/api/v1/tables/{tid}")).await;
    assert_eq!(t["table"]["name"], evil);
    // The users table is still there.
    assert_eq!(cast.admin.get("/api/v1/users").await.status(), StatusCode::OK);
    let (s, v) = cast.admin.post_json("/api/v1/tables", json!({"name": "bad\u{0}name"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["fields"][0]["code"], "control_chars");
    let (s, _) = cast.admin.post_json("/api/v1/tables", json!({"name": evil})).await;
    assert_eq!(s, StatusCode::CONFLICT, "table names are unique within the tenant");
}

#[tokio::test]
async fn another_tenant_gets_404_and_a_member_gets_403_for_tables_and_records() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (tid, _) = customers(&cast.admin).await;
    let (_, v) =
        cast.admin.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "X"}})).await;
    let rid = v["record"]["id"].as_i64().unwrap();
    let b = &cast.other_admin;
    assert_eq!(b.get_json(&format!("/api/v1/tables/{tid}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(b.get_json(&format!("/api/v1/tables/{tid}/records")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(b.get_json(&format!("/api/v1/tables/{tid}/records/{rid}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        b.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "Y"}})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": "z", "kind": {"type": "text"}})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}/records/{rid}"), json!({})).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, list) = b.get_json("/api/v1/tables").await;
    assert!(list["tables"].as_array().unwrap().is_empty());
    // A member of the same tenant without any group right: the table does not show, and its
    // routes answer as if it did not exist.
    let m = &cast.member;
    let (s, list) = m.get_json("/api/v1/tables").await;
    assert_eq!(s, StatusCode::OK);
    assert!(list["tables"].as_array().unwrap().is_empty());
    assert_eq!(m.get_json(&format!("/api/v1/tables/{tid}/records/{rid}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(m.post_json("/api/v1/tables", json!({"name": "mine"})).await.0, StatusCode::FORBIDDEN);
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records/{rid}")).await;
    assert_eq!(v["record"]["version"], 1, "nothing changed");
}

#[tokio::test]
async fn the_record_page_refuses_a_stale_save_and_says_why() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (tid, table) = customers(&cast.admin).await;
    let (_, v) =
        cast.admin.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "ACME"}})).await;
    let rid = v["record"]["id"].as_i64().unwrap();
    let page = cast.admin.get(&format!("/tables/{tid}/records/{rid}")).await.text().await.unwrap();
    assert!(page.contains("name=\"version\" value=\"1\""));
    // Someone else saves first.
    let (s, _) = cast
        .admin
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{tid}/records/{rid}"),
            json!({"version": 1, "values": {"従業員数": 5}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let name = field_id(&table, "会社名");
    let r = cast
        .admin
        .post_form(&format!("/tables/{tid}/records/{rid}"), &[("version", "1"), (name.as_str(), "ACME 2")])
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("Someone saved this record after you opened it"));
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records/{rid}")).await;
    assert_eq!(v["record"]["values"][&name], "ACME");
    // Deleting from the page asks for confirmation.
    let r = cast.admin.post_form(&format!("/tables/{tid}/records/{rid}/delete"), &[]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = cast.admin.post_form(&format!("/tables/{tid}/records/{rid}/delete"), &[("confirm", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(cast.admin.get_json(&format!("/api/v1/tables/{tid}/records/{rid}")).await.0, StatusCode::NOT_FOUND);
    // Members without a group right have no way in.
    assert_eq!(cast.member.get(&format!("/tables/{tid}")).await.status(), StatusCode::NOT_FOUND);
}

async fn seeded(app: &TestApp) -> (Persona, String, Value) {
    let cast = app.cast().await;
    let (tid, table) = customers(&cast.admin).await;
    let rows = [
        ("東京システム株式会社", 120, "A", "2026-01-10"),
        ("大阪精機", 45, "B", "2025-12-01"),
        ("Kyoto Software GmbH", 8, "C", "2026-03-03"),
        ("札幌データ 100% 合同会社", 300, "A", ""),
        ("名古屋東京物流", 60, "B", "2026-02-14"),
    ];
    for (name, staff, rank, date) in rows {
        let (s, v) = cast
            .admin
            .post_json(
                &format!("/api/v1/tables/{tid}/records"),
                json!({"values": {"会社名": name, "従業員数": staff, "ランク": rank, "契約日": date}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    (cast.admin, tid, table)
}

fn names(v: &Value, table: &Value) -> Vec<String> {
    let f = field_id(table, "会社名");
    v["records"].as_array().unwrap().iter().map(|r| r["values"][&f].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn keyword_search_finds_japanese_and_latin_substrings_and_nothing_when_nothing_matches() {
    let app = TestApp::start().await;
    let (admin, tid, table) = seeded(&app).await;
    let q = |k: &str| {
        format!("/api/v1/tables/{tid}/records?q={}", form_urlencoded::byte_serialize(k.as_bytes()).collect::<String>())
    };
    let (s, v) = admin.get_json(&q("東京")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut got = names(&v, &table);
    got.sort();
    assert_eq!(got, ["名古屋東京物流", "東京システム株式会社"], "two characters, no spaces between words");
    assert_eq!(names(&admin.get_json(&q("システム")).await.1, &table), ["東京システム株式会社"]);
    assert_eq!(names(&admin.get_json(&q("software")).await.1, &table), ["Kyoto Software GmbH"], "case-insensitive");
    assert_eq!(
        names(&admin.get_json(&q("100%")).await.1, &table),
        ["札幌データ 100% 合同会社"],
        "wildcards are literal"
    );
    assert!(names(&admin.get_json(&q("存在しない会社")).await.1, &table).is_empty());
    // A keyword with a separator is matched as written, case ignored: the space is a space.
    assert_eq!(names(&admin.get_json(&q("KYOTO software")).await.1, &table), ["Kyoto Software GmbH"]);
    assert_eq!(names(&admin.get_json(&q("データ 100%")).await.1, &table), ["札幌データ 100% 合同会社"]);
    assert!(names(&admin.get_json(&q("kyoto-software")).await.1, &table).is_empty(), "a-b is not a b");
    assert!(names(&admin.get_json(&q("データ 1000%")).await.1, &table).is_empty());
    let (s, v) = admin.get_json(&q("東")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["fields"][0]["code"], "keyword_too_short");
    // An edit moves the record in and out of the index.
    let (_, v) = admin.get_json(&q("大阪")).await;
    let rid = v["records"][0]["id"].as_i64().unwrap();
    let (s, _) = admin
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{tid}/records/{rid}"),
            json!({"version": 1, "values": {"会社名": "神戸精機"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(names(&admin.get_json(&q("大阪")).await.1, &table).is_empty());
    assert_eq!(names(&admin.get_json(&q("神戸")).await.1, &table), ["神戸精機"]);
    admin.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}/records/{rid}"), json!({})).await;
    assert!(names(&admin.get_json(&q("神戸")).await.1, &table).is_empty());
}

#[tokio::test]
async fn filters_sort_and_keyset_pages_agree_on_both_stores() {
    let app = TestApp::start().await;
    let (admin, tid, table) = seeded(&app).await;
    let staff = field_id(&table, "従業員数");
    let base = format!("/api/v1/tables/{tid}/records");
    let (_, v) = admin.get_json(&format!("{base}?filter.gte.従業員数=60&sort=従業員数&dir=asc")).await;
    assert_eq!(names(&v, &table), ["名古屋東京物流", "東京システム株式会社", "札幌データ 100% 合同会社"]);
    let (_, v) = admin.get_json(&format!("{base}?filter.any_of.ランク=A,C&sort={staff}&dir=desc")).await;
    assert_eq!(names(&v, &table), ["札幌データ 100% 合同会社", "東京システム株式会社", "Kyoto Software GmbH"]);
    let (_, v) = admin.get_json(&format!("{base}?filter.empty.契約日=")).await;
    assert_eq!(names(&v, &table), ["札幌データ 100% 合同会社"]);
    let (_, v) = admin.get_json(&format!("{base}?filter.lt.契約日=2026-01-01")).await;
    assert_eq!(names(&v, &table), ["大阪精機"]);
    let (_, v) = admin.get_json(&format!("{base}?filter.starts_with.会社名=大阪")).await;
    assert_eq!(names(&v, &table), ["大阪精機"]);
    // "Contains" finds a substring of Japanese text (one character too), ASCII in any case, and
    // takes % and _ as themselves; "not empty" is the other side of "empty".
    for (q, want) in [
        ("filter.contains.会社名=東京", vec!["名古屋東京物流", "東京システム株式会社"]),
        ("filter.contains.会社名=京", vec!["名古屋東京物流", "東京システム株式会社"]),
        ("filter.contains.会社名=software", vec!["Kyoto Software GmbH"]),
        ("filter.contains.会社名=0%25", vec!["札幌データ 100% 合同会社"]),
        ("filter.contains.会社名=%25", vec!["札幌データ 100% 合同会社"]),
        ("filter.contains.会社名=_", vec![]),
        ("filter.starts_with.会社名=%25", vec![]),
        ("filter.not_empty.契約日=", vec!["Kyoto Software GmbH", "大阪精機", "名古屋東京物流", "東京システム株式会社"]),
    ] {
        let (s, v) = admin.get_json(&format!("{base}?{q}&sort=従業員数&dir=asc")).await;
        assert_eq!(s, StatusCode::OK, "{q}: {v}");
        assert_eq!(names(&v, &table), want, "{q}");
    }
    // Sorting by a date puts empty values last; keyset pages of two walk the same order.
    let (_, all) = admin.get_json(&format!("{base}?sort=契約日&dir=asc")).await;
    let order = names(&all, &table);
    assert_eq!(order.last().unwrap(), "札幌データ 100% 合同会社");
    let mut walked = Vec::new();
    let mut after = String::new();
    loop {
        let (s, v) = admin.get_json(&format!("{base}?sort=契約日&dir=asc&limit=2{after}")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        walked.extend(names(&v, &table));
        match v["next_after"].as_str() {
            Some(c) => after = format!("&after={c}"),
            None => break,
        }
    }
    assert_eq!(walked, order);
    // Bad queries are explained.
    for (bad, code) in [
        ("filter.gt.会社名=x", "bad_operator"),
        ("filter.gt.従業員数=many", "not_a_number"),
        ("sort=nope", "unknown_field"),
        ("after=@@@", "bad_cursor"),
        ("limit=0", "out_of_range"),
        ("limit=501", "out_of_range"),
        // The limits: four sort keys, 21 filters, a keyword of 201 characters.
        ("sort=会社名&sort=従業員数&sort=契約日&sort=ランク", "too_many"),
        (
            "filter.not_empty.会社名=&filter.not_empty.会社名=&filter.not_empty.会社名=&filter.not_empty.会社名=&filter.not_empty.会社名=&filter.not_empty.会社名=&filter.not_empty.会社名=&filter.not_empty.会社名=&filter.not_empty.会社名=&filter.not_empty.会社名=&filter.not_empty.会社名=&filter.not_empty.会社名=&filter.not_empty.会社名=&filter.not_empty.会社名=&filter.not_empty.会社名=&filter.not_empty.会社名=&filter.not_empty.会社名=&filter.not_empty.会社名=&filter.not_empty.会社名=&filter.not_empty.会社名=&filter.not_empty.会社名=",
            "too_many",
        ),
        (
            "q=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "out_of_range",
        ),
        // A misspelt filter, or another API's paging, is refused, not ignored (the answer
        // would be every record).
        ("filters.eq.会社名=x", "unknown_parameter"),
        ("page=2", "unknown_parameter"),
        ("offset=50", "unknown_parameter"),
        ("count=1", "choice"),
    ] {
        let (s, v) = admin.get_json(&format!("{base}?{bad}")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(v["error"]["fields"][0]["code"], code, "{bad}");
    }
    for bad in ["flter.eq.会社名=x", "limit=10", "count=true"] {
        let (s, v) = admin.get_json(&format!("/api/v1/tables/{tid}/export.csv?{bad}")).await;
        assert_eq!(
            (s, v["error"]["fields"][0]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_parameter")),
            "{bad}"
        );
    }
    // The grid page searches too.
    let page = admin.get(&format!("/tables/{tid}?q=%E6%9D%B1%E4%BA%AC")).await.text().await.unwrap();
    assert!(page.contains("名古屋東京物流") && !page.contains("大阪精機"));
    // A condition the field does not take: the page names the field and lists those it does.
    let page = admin.get(&format!("/tables/{tid}?filter.gt.会社名=x")).await.text().await.unwrap();
    assert!(
        page.contains("会社名: This condition cannot be used with this type of field")
            && page
                .contains("This field takes: contains, equals, starts with, any of (a, b, …), is empty, is not empty."),
        "{page}"
    );
    // A query that cannot run shows no count and no "no records" (it did not run).
    assert!(!page.contains("class=\"count\"") && !page.contains("No records to show"), "{page}");
    let page = admin.get(&format!("/tables/{tid}?filter.contains.従業員数=1")).await.text().await.unwrap();
    assert!(
        page.contains("This field takes: equals, at least, at most, greater than, less than, any of (a, b, …), is empty, is not empty."),
        "{page}"
    );
}

#[tokio::test]
async fn a_view_exports_as_csv_in_utf8_or_shift_jis_with_formulas_neutralised_and_is_recorded() {
    let app = TestApp::start().await;
    let (admin, tid, table) = seeded(&app).await;
    let (s, _) = admin
        .post_json(
            &format!("/api/v1/tables/{tid}/records"),
            json!({"values": {"会社名": "=HYPERLINK(\"http://evil\")", "従業員数": 1, "与信枠": "-1200.50"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let r = admin.get(&format!("/api/v1/tables/{tid}/export.csv?sort=従業員数&dir=asc")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let bytes = r.bytes().await.unwrap();
    assert_eq!(&bytes[..3], &[0xEF, 0xBB, 0xBF]);
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(&rdr.headers().unwrap()[0], "会社名");
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 6);
    assert_eq!(&rows[0][0], "'=HYPERLINK(\"http://evil\")", "neutralised");
    assert_eq!(&rows[1][0], "Kyoto Software GmbH", "in the view's order");
    assert_eq!(&rows[1][3], "", "an empty decimal stays empty");
    assert_eq!(&rows[0][3], "-1200.50", "a number keeps its sign as a number");
    // A field whose name looks like a formula: its header is neutralised, and the file comes
    // back in whole (every column named, every value as exported).
    let memo = field_id(&table, "メモ");
    let (s, v) =
        admin.send_json(Method::PATCH, &format!("/api/v1/tables/{tid}/fields/{memo}"), json!({"name": "@メモ"})).await;
    assert!(s.is_success(), "{v}");
    let r = admin.get(&format!("/api/v1/tables/{tid}/export.csv?sort=従業員数&dir=asc")).await;
    let exported = r.bytes().await.unwrap().to_vec();
    let text = std::str::from_utf8(&exported[3..]).unwrap().to_owned();
    assert!(text.starts_with("会社名,'@メモ,従業員数"), "{text}");
    let (s, v) = import(&admin, &tid, "?key=%E4%BC%9A%E7%A4%BE%E5%90%8D", exported).await;
    assert_eq!((s, v["updated"].as_i64(), v["unchanged"].as_i64()), (StatusCode::OK, Some(0), Some(6)), "{v}");
    let again = admin.get(&format!("/api/v1/tables/{tid}/export.csv?sort=従業員数&dir=asc")).await;
    assert_eq!(std::str::from_utf8(&again.bytes().await.unwrap()[3..]).unwrap(), text, "the same file again");
    // Shift_JIS for Excel, with the view's filter.
    let r = admin.get(&format!("/api/v1/tables/{tid}/export.csv?q=%E6%9D%B1%E4%BA%AC&encoding=shift_jis")).await;
    assert_eq!(r.headers()["content-type"], "text/csv; charset=shift_jis");
    let bytes = r.bytes().await.unwrap();
    let (decoded, _, bad) = encoding_rs::SHIFT_JIS.decode(&bytes);
    assert!(!bad);
    assert!(
        decoded.contains("東京システム株式会社") && decoded.contains("名古屋東京物流") && !decoded.contains("大阪")
    );
    assert_eq!(decoded.lines().count(), 3);
    let (_, v) = admin.get_json("/api/v1/audit?action=record.export").await;
    let details: Vec<&str> = v["events"].as_array().unwrap().iter().map(|e| e["details"].as_str().unwrap()).collect();
    assert!(details.contains(&"finished: 6 rows") && details.contains(&"finished: 2 rows"), "{details:?}");
    // The entry that starts an export says what it ran and which columns it wrote.
    let started = details.iter().find(|d| d.starts_with("started; encoding=shift_jis")).expect("a start");
    assert!(
        started.contains("query=q=%E6%9D%B1%E4%BA%AC") && started.contains("columns=会社名, @メモ, 従業員数"),
        "{started}"
    );
    let (s, _) = admin.get_json(&format!("/api/v1/tables/{tid}/export.csv?encoding=ebcdic")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Reads an export's body to its end: whether it ended cleanly, and how many bytes came.
async fn drain(mut r: daicho_testkit::reqwest::Response) -> (bool, usize) {
    let mut n = 0;
    loop {
        match r.chunk().await {
            Ok(Some(c)) => n += c.len(),
            Ok(None) => return (true, n),
            Err(_) => return (false, n),
        }
    }
}

/// The history's entry of an export whose details `is_end` picks, waited for (the server
/// records an export's end after its last write).
async fn export_end(admin: &Persona, is_end: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, v) = admin.get_json("/api/v1/audit?action=record.export").await;
        let details: Vec<String> =
            v["events"].as_array().unwrap().iter().map(|e| e["details"].as_str().unwrap().to_owned()).collect();
        if let Some(d) = details.iter().find(|d| is_end(d)) {
            return d.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no such end recorded: {details:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_export_under_way_stops_when_its_token_is_revoked_or_its_session_ends() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, _) = customers(a).await;
    // About 12 MB of CSV: more than the sockets between the server and a client that reads
    // slowly can hold, so the server is still writing when the token or session ends.
    let rows = 12_000;
    let mut csv = String::from("会社名,メモ\n");
    for i in 0..rows {
        csv.push_str(&format!("会社{i:05},{}\n", "長めの説明文です。".repeat(37)));
    }
    let (s, v) = import(a, &tid, "", csv.into_bytes()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let whole = {
        let r = a.get(&format!("/api/v1/tables/{tid}/export.csv")).await;
        drain(r).await
    };
    assert!(whole.0, "an export left alone ends cleanly");
    assert_eq!(export_end(a, |d| d.starts_with("finished")).await, format!("finished: {rows} rows"));

    // A token revoked while its export is under way: the rest of the file is not sent.
    let (s, v) =
        a.post_json("/api/v1/me/tokens", json!({"name": "download", "read_only": true, "expires_in_days": 1})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (token_id, secret) = (v["token"]["id"].as_str().unwrap().to_owned(), v["secret"].as_str().unwrap().to_owned());
    let mut r = app
        .client()
        .get(app.url(&format!("/api/v1/tables/{tid}/export.csv")))
        .header("authorization", format!("Bearer {secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let first = r.chunk().await.unwrap().unwrap_or_default();
    let (s, _) = a.send_json(Method::DELETE, &format!("/api/v1/me/tokens/{token_id}"), json!({"confirm": true})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // The export asks again at most once a second (on the injected clock).
    app.clock.advance(time::Duration::seconds(2));
    let (clean, rest) = drain(r).await;
    assert!(!clean, "the file is cut, not ended like a whole one");
    assert!(first.len() + rest < whole.1, "{} + {rest} of {}", first.len(), whole.1);
    let end = export_end(a, |d| d.starts_with("stopped after")).await;
    assert!(end.ends_with(" rows: token revoked"), "{end}");
    let n: usize = end["stopped after ".len()..].split(' ').next().unwrap().parse().unwrap();
    assert!(n < rows, "{end}");

    // A session signed out meanwhile (as an administrator's "disable" also ends it).
    let other = app.login(&a.tenant, &a.login, &a.password).await;
    let mut r = other.get(&format!("/api/v1/tables/{tid}/export.csv")).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.chunk().await.unwrap();
    let (s, _) = other.send_json(Method::DELETE, "/api/v1/session", json!({})).await;
    assert!(s.is_success(), "{s}");
    app.clock.advance(time::Duration::seconds(2));
    let (clean, _) = drain(r).await;
    assert!(!clean);
    let end = export_end(a, |d| d.ends_with(" rows: session ended")).await;
    assert!(end.starts_with("stopped after "), "{end}");

    // A member whose export right is taken away while their export is under way.
    let m = &cast.member;
    let (_, users) = a.get_json("/api/v1/users").await;
    let member =
        users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == m.login.as_str()).unwrap()["id"].clone();
    let (_, v) = a.post_json("/api/v1/groups", json!({"name": "書き出し"})).await;
    let gid = v["group"]["id"].as_str().unwrap().to_owned();
    // (The administrator is in the group too: their rights come from their role, and a change
    // of the group's does not stop their export.)
    let admin_id =
        users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == a.login.as_str()).unwrap()["id"].clone();
    a.send_json(Method::PUT, &format!("/api/v1/groups/{gid}/members"), json!({"members": [member, admin_id]})).await;
    let grant = |rights: Value| {
        let url = format!("/api/v1/groups/{gid}/grants/{tid}");
        async move { a.send_json(Method::PUT, &url, json!({ "rights": rights })).await.0 }
    };
    assert_eq!(grant(json!(["view", "export"])).await, StatusCode::OK);
    let mut r = m.get(&format!("/api/v1/tables/{tid}/export.csv")).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.chunk().await.unwrap();
    let mut by_admin = a.get(&format!("/api/v1/tables/{tid}/export.csv")).await;
    assert_eq!(by_admin.status(), StatusCode::OK);
    by_admin.chunk().await.unwrap();
    assert_eq!(grant(json!(["view"])).await, StatusCode::OK);
    app.clock.advance(time::Duration::seconds(2));
    let (clean, _) = drain(r).await;
    assert!(!clean, "the rest is not sent under a right the member no longer holds");
    assert!(drain(by_admin).await.0, "the administrator's export runs on");
    let end = export_end(a, |d| d.ends_with(" rows: rights changed")).await;
    assert!(end.starts_with("stopped after "), "{end}");
}

#[tokio::test]
async fn names_stored_before_a_rule_was_tightened_still_load_and_can_be_renamed() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let memo = field_id(&table, "メモ");
    // As an earlier version stored them, before zero-width spaces were refused in names.
    app.raw_sql(
        "UPDATE user_fields SET name = 'メ' || char(8203) || 'モ' WHERE name = 'メモ'",
        "UPDATE user_fields SET name = 'メ' || chr(8203) || 'モ' WHERE name = 'メモ'",
    )
    .await
    .unwrap();
    app.raw_sql("UPDATE user_tables SET name = name || char(8203)", "UPDATE user_tables SET name = name || chr(8203)")
        .await
        .unwrap();
    let (s, v) = a.get_json("/api/v1/tables").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = a.get_json(&format!("/api/v1/tables/{tid}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let names: Vec<&str> = v["table"]["fields"].as_array().unwrap().iter().filter_map(|f| f["name"].as_str()).collect();
    assert!(names.contains(&"メ\u{200B}モ"), "{names:?}");
    for page in ["/tables".to_owned(), format!("/tables/{tid}"), format!("/tables/{tid}/design")] {
        assert_eq!(a.get(&page).await.status(), StatusCode::OK, "{page}");
    }
    // Renamed to a name the rules allow now.
    let (s, v) =
        a.send_json(Method::PATCH, &format!("/api/v1/tables/{tid}/fields/{memo}"), json!({"name": "メモ"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = a.send_json(Method::PATCH, &format!("/api/v1/tables/{tid}"), json!({"name": "顧客"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn an_export_the_client_abandons_is_recorded_as_interrupted_not_finished() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (tid, _) = customers(&cast.admin).await;
    // About 12 MB of CSV: more than the sockets between the server and a client that stopped
    // reading can hold, so the server is still writing when the client goes away.
    let rows = 12_000;
    let mut csv = String::from("会社名,メモ\n");
    for i in 0..rows {
        csv.push_str(&format!("会社{i:05},{}\n", "長めの説明文です。".repeat(37)));
    }
    let (s, v) = import(&cast.admin, &tid, "", csv.into_bytes()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut r = cast.admin.get(&format!("/api/v1/tables/{tid}/export.csv")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let first = r.chunk().await.unwrap().unwrap_or_default();
    assert!(!first.is_empty());
    drop(r);
    // The server notices at its next write; its record of the export follows.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, v) = cast.admin.get_json("/api/v1/audit?action=record.export").await;
        let details: Vec<String> =
            v["events"].as_array().unwrap().iter().map(|e| e["details"].as_str().unwrap().to_owned()).collect();
        assert!(!details.iter().any(|d| d.starts_with("finished")), "{details:?}");
        if let Some(d) = details.iter().find(|d| d.starts_with("interrupted after ")) {
            let n: usize = d["interrupted after ".len()..].trim_end_matches(" rows").parse().unwrap();
            assert!(n < rows, "{d}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no end of the export recorded: {details:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub(crate) async fn import(admin: &Persona, tid: &str, query: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let r = admin
        .client
        .post(admin.url(&format!("/api/v1/tables/{tid}/import{query}")))
        .header("x-csrf-token", &admin.csrf)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// A new group `name` whose one member is the user `login`, made by the administrator `a`:
/// its id, for grants.
async fn group_of(a: &Persona, login: &str, name: &str) -> String {
    let (_, users) = a.get_json("/api/v1/users").await;
    let member = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == login).unwrap()["id"].clone();
    let (s, g) = a.post_json("/api/v1/groups", json!({"name": name})).await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let gid = g["group"]["id"].as_str().unwrap().to_owned();
    let (s, v) = a.send_json(Method::PUT, &format!("/api/v1/groups/{gid}/members"), json!({"members": [member]})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    gid
}

/// How many records of the table the persona sees (counted by the API, up to its cap).
async fn record_count(p: &Persona, tid: &str) -> u64 {
    let (s, v) = p.get_json(&format!("/api/v1/tables/{tid}/records?count=true&limit=1")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["count"].as_u64().unwrap()
}

#[tokio::test]
async fn a_shift_jis_export_edited_and_imported_back_keeps_what_shift_jis_could_not_hold() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let admin = &cast.admin;
    let (tid, _) = customers(admin).await;
    let (s, v) = admin
        .post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": "番号", "kind": {"type": "auto_number"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let table = v["table"].clone();
    for (name, memo, staff) in [("𠮷田商事", "納期 10〜20日 😀", 5), ("東京物流", "−5 と ¢", 7)] {
        let (s, v) = admin
            .post_json(
                &format!("/api/v1/tables/{tid}/records"),
                json!({"values": {"会社名": name, "メモ": memo, "従業員数": staff}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let r = admin.get(&format!("/api/v1/tables/{tid}/export.csv?encoding=shift_jis&sort=番号&dir=asc")).await;
    let bytes = r.bytes().await.unwrap();
    let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(&bytes);
    assert!(!bad);
    // What Shift_JIS cannot hold is written as "?", 〜 and − in their Windows spelling, and a
    // cell beginning with the minus sign is neutralised like one beginning with "-".
    assert!(text.contains("?田商事") && text.contains("納期 10～20日 ?") && text.contains("'－5 と ￠"), "{text}");
    // The history says how many characters were written as "?".
    let (_, v) = admin.get_json("/api/v1/audit?action=record.export").await;
    let details: Vec<&str> = v["events"].as_array().unwrap().iter().map(|e| e["details"].as_str().unwrap()).collect();
    assert!(details.contains(&"finished: 2 rows; 2 characters Shift_JIS cannot hold written as ?"), "{details:?}");
    // Edited in Excel (one number changed, and a row of empty cells as Excel leaves them) and
    // imported back by record number: only the number changes; the names and notes Shift_JIS
    // could not hold stay as stored, not overwritten by "?" or the Windows spellings.
    let edited = format!("{}\r\n,,,,,,,,,,\r\n", text.replace(",5,", ",6,").trim_end());
    let (file, _, _) = encoding_rs::SHIFT_JIS.encode(&edited);
    let (s, v) = import(admin, &tid, "?key=%E7%95%AA%E5%8F%B7&encoding=shift_jis", file.into_owned()).await;
    assert_eq!(
        (s, v["inserted"].as_i64(), v["updated"].as_i64(), v["unchanged"].as_i64()),
        (StatusCode::OK, Some(0), Some(1), Some(1)),
        "{v}"
    );
    let (_, v) = admin.get_json(&format!("/api/v1/tables/{tid}/records?sort=番号&dir=asc")).await;
    let rows = v["records"].as_array().unwrap();
    let value = |i: usize, name: &str| rows[i]["values"][field_id(&table, name)].clone();
    assert_eq!(
        (value(0, "会社名"), value(0, "メモ"), value(0, "従業員数")),
        (json!("𠮷田商事"), json!("納期 10〜20日 😀"), json!(6))
    );
    assert_eq!((value(1, "会社名"), value(1, "メモ")), (json!("東京物流"), json!("−5 と ¢")));
    assert_eq!(rows.len(), 2, "the row of empty cells made no record");
    // A UTF-8 file is read as typed: "?" there is a value.
    let utf8 = format!("番号,メモ\n{},x?\n", value(1, "番号").as_str().unwrap());
    let (s, v) = import(admin, &tid, "?key=%E7%95%AA%E5%8F%B7", utf8.into_bytes()).await;
    assert_eq!((s, v["updated"].as_i64()), (StatusCode::OK, Some(1)), "{v}");
    // A key stored in its JIS spelling (〜, −) comes back from Shift_JIS in the Windows one
    // (～, －) and still finds its record, rather than adding a second.
    let (s, v) = admin
        .post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "A〜Z−商会", "従業員数": 1}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let r = admin
        .get(&format!(
            "/api/v1/tables/{tid}/export.csv?encoding=shift_jis&col=会社名&col=従業員数&q=%E5%95%86%E4%BC%9A"
        ))
        .await;
    let bytes = r.bytes().await.unwrap();
    let (text, _, _) = encoding_rs::SHIFT_JIS.decode(&bytes);
    assert!(text.contains("A～Z－商会,1"), "{text}");
    let edited = text.replace(",1", ",2");
    let file = encoding_rs::SHIFT_JIS.encode(&edited).0.into_owned();
    let (s, v) = import(admin, &tid, "?key=%E4%BC%9A%E7%A4%BE%E5%90%8D&encoding=shift_jis", file).await;
    assert_eq!((s, v["inserted"].as_i64(), v["updated"].as_i64()), (StatusCode::OK, Some(0), Some(1)), "{v}");
    let (_, v) = admin.get_json(&format!("/api/v1/tables/{tid}/records?q=%E5%95%86%E4%BC%9A")).await;
    let rows = v["records"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!(
        (&rows[0]["values"][field_id(&table, "会社名")], &rows[0]["values"][field_id(&table, "従業員数")]),
        (&json!("A〜Z−商会"), &json!(2)),
        "the key kept its own spelling"
    );
}

#[tokio::test]
async fn csv_import_is_all_or_nothing_reads_shift_jis_and_updates_by_a_unique_key() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (tid, table) = customers(&cast.admin).await;
    // One bad row among good ones: nothing is written, every problem is reported by row.
    let csv = "会社名,従業員数,ランク\n良い会社,10,A\n悪い会社,many,Z\n,5,B\n";
    let (s, v) = import(&cast.admin, &tid, "", csv.as_bytes().to_vec()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> = v["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}={}", e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    let staff = field_id(&table, "従業員数");
    assert!(fields.contains(&format!("row:3:{staff}=not_a_number")), "{fields:?}");
    assert!(fields.contains(&format!("row:3:{}=choice", field_id(&table, "ランク"))));
    assert!(fields.contains(&format!("row:4:{}=required", field_id(&table, "会社名"))));
    assert_eq!(record_count(&cast.admin, &tid).await, 0, "nothing half-imported");
    // Ragged rows, unknown columns and bad encodings are refused.
    assert_eq!(
        import(&cast.admin, &tid, "", "会社名,従業員数\nA,1,extra\n".into()).await.1["error"]["fields"][0]["code"],
        "ragged_row"
    );
    assert_eq!(
        import(&cast.admin, &tid, "", "会社名,無い列\nA,1\n".into()).await.1["error"]["fields"][0]["code"],
        "unknown_field"
    );
    // A header of many unknown columns is refused by its width, and a report of unknown
    // columns stops at the error cap: a small file never makes a large answer.
    let wide = format!("{}\n", vec!["x"; 301].join(","));
    let (s, v) = import(&cast.admin, &tid, "", wide.into_bytes()).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("too_many_columns"))
    );
    let unknown: Vec<String> = (0..300).map(|i| format!("列{i}")).collect();
    let (s, v) = import(&cast.admin, &tid, "", format!("{}\n", unknown.join(",")).into_bytes()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["fields"].as_array().unwrap().len(), 100, "{v}");
    // The page does not offer a mapping of such a file either.
    let form = daicho_testkit::reqwest::multipart::Form::new()
        .text("csrf", cast.admin.csrf.clone())
        .text("encoding", "auto")
        .part(
            "file",
            daicho_testkit::reqwest::multipart::Part::bytes(format!("{}\n", vec!["x"; 301].join(",")).into_bytes())
                .file_name("wide.csv"),
        );
    let r =
        cast.admin.client.post(cast.admin.url(&format!("/tables/{tid}/import"))).multipart(form).send().await.unwrap();
    let page = r.text().await.unwrap();
    assert!(page.len() < 200_000 && page.contains("The file has more than 300 columns."), "{}", page.len());
    assert_eq!(
        import(&cast.admin, &tid, "?encoding=utf-8", vec![0x82, 0xA0, 0xFF]).await.1["error"]["fields"][0]["code"],
        "bad_encoding"
    );
    // Shift_JIS from Excel, detected automatically; a neutralised formula cell comes back as typed.
    let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode("会社名,従業員数,ランク\n株式会社あいう,10,A\n'=SUM(1),20,B\n");
    let (s, v) = import(&cast.admin, &tid, "", bytes.into_owned()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["inserted"], 2);
    // A client that sends the file as a form (curl --data-binary's default type) is read the
    // same: the body is the file, whatever its encoding.
    let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode("会社名,従業員数\nフォーム送信の会社,1\n");
    let r = cast
        .admin
        .client
        .post(cast.admin.url(&format!("/api/v1/tables/{tid}/import")))
        .header("x-csrf-token", &cast.admin.csrf)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(bytes.into_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, v) =
        cast.admin.get_json(&format!("/api/v1/tables/{tid}/records?q=%E3%83%95%E3%82%A9%E3%83%BC%E3%83%A0")).await;
    let id = v["records"][0]["id"].as_i64().unwrap();
    let r = cast.admin.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}/records/{id}"), json!({})).await;
    assert!(r.0.is_success(), "{r:?}");
    // Insert or update by the unique key field.
    let utf8_bom = [&[0xEF, 0xBB, 0xBF][..], "会社名,従業員数\n株式会社あいう,99\n新しい会社,1\n".as_bytes()].concat();
    let (s, v) = import(&cast.admin, &tid, "?key=会社名", utf8_bom).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["inserted"].as_i64(), v["updated"].as_i64()), (Some(1), Some(1)));
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records?filter.eq.会社名=%E6%A0%AA%E5%BC%8F%E4%BC%9A%E7%A4%BE%E3%81%82%E3%81%84%E3%81%86")).await;
    assert_eq!(v["records"][0]["values"][&staff], 99);
    assert_eq!(v["records"][0]["values"][field_id(&table, "ランク")], "A", "columns not in the file are kept");
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records?q=SUM")).await;
    assert_eq!(v["records"][0]["values"][field_id(&table, "会社名")], "=SUM(1)");
    assert_eq!(record_count(&cast.admin, &tid).await, 3);
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=record.import").await;
    let details: Vec<&str> = v["events"].as_array().unwrap().iter().map(|e| e["details"].as_str().unwrap()).collect();
    assert_eq!(details, ["1 rows inserted, 1 updated", "1 rows inserted, 0 updated", "2 rows inserted, 0 updated"]);
    // A key without the unique rule is refused; a member cannot import.
    assert_eq!(
        import(&cast.admin, &tid, "?key=従業員数", "会社名\nx\n".into()).await.1["error"]["fields"][0]["code"],
        "key_not_unique"
    );
    // A file that repeats one key reports at most 100 problems, like any other.
    let repeated = format!("会社名,従業員数\n{}", "同じ会社,1\n".repeat(500));
    let (s, v) = import(&cast.admin, &tid, "?key=会社名", repeated.into_bytes()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let problems = v["error"]["fields"].as_array().unwrap();
    assert_eq!((problems.len(), problems[0]["code"].as_str()), (100, Some("duplicate_key")));
    assert_eq!(record_count(&cast.admin, &tid).await, 3);
    // One key written twice, once in full width: the same key (a number typed with a Japanese
    // input method reads as the number).
    let (s, v) = cast
        .admin
        .post_json(
            &format!("/api/v1/tables/{tid}/fields"),
            json!({"name": "番号", "kind": {"type": "integer"}, "rules": {"unique": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let twice = "番号,会社名\n１２３,全角\n123,半角\n".to_owned();
    let (s, v) = import(&cast.admin, &tid, "?key=番号", twice.into_bytes()).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("duplicate_key")),
        "{v}"
    );
    let (s, v) = import(&cast.admin, &tid, "?key=番号", "番号,会社名\n１２３,全角\n".into()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records?filter.eq.番号=123&count=true")).await;
    assert_eq!(v["count"], 1, "stored as the number: {v}");
    assert_eq!(record_count(&cast.admin, &tid).await, 4);
    assert_eq!(import(&cast.member, &tid, "", "会社名\nx\n".into()).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn more_imports_at_once_than_the_pool_has_connections_all_succeed() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, _) = customers(a).await;
    // Six files (the test pool has four connections), each looked up by its key row by row
    // while earlier parts are written: no import may starve another of a connection.
    let file = |f: usize| {
        let mut csv = String::from("会社名,従業員数\n");
        for i in 0..1_500 {
            csv.push_str(&format!("会社{f}-{i},{i}\n"));
        }
        import(a, &tid, "?key=会社名", csv.into_bytes())
    };
    let (r0, r1, r2, r3, r4, r5) = tokio::join!(file(0), file(1), file(2), file(3), file(4), file(5));
    for (s, v) in [r0, r1, r2, r3, r4, r5] {
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!((v["inserted"].as_u64(), v["updated"].as_u64()), (Some(1_500), Some(0)));
    }
    assert_eq!(record_count(a, &tid).await, 9_000);
}

#[tokio::test]
async fn text_of_any_shape_comes_back_from_lists_exactly_as_stored() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let memo = field_id(&table, "メモ");
    let shapes = [
        "{\"a\": [1, 2]}",
        "quotes \" and \\ backslashes \\\"",
        "line\nbreaks\r\nand\ttabs",
        "emoji 😀, 漢字 and \u{2028} (a line separator)",
        "null",
        "12345678901234567890",
        "",
    ];
    for (i, text) in shapes.iter().enumerate() {
        let (s, v) = a
            .post_json(
                &format!("/api/v1/tables/{tid}/records"),
                json!({"values": {"会社名": format!("形{i}"), "メモ": text}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?dir=asc&limit=100")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let got: Vec<Value> = v["records"].as_array().unwrap().iter().map(|r| r["values"][&memo].clone()).collect();
    let want: Vec<Value> = shapes.iter().map(|t| if t.is_empty() { Value::Null } else { json!(t) }).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_large_import_is_all_or_nothing_although_it_is_written_while_it_is_read() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let (s, _) =
        a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "既存の会社"}})).await;
    assert_eq!(s, StatusCode::CREATED);
    let file = |bad_row: Option<(usize, &str)>| {
        let mut csv = String::from("会社名,従業員数\n");
        for i in 2..=3_501usize {
            match bad_row {
                Some((r, line)) if r == i => csv.push_str(line),
                _ => csv.push_str(&format!("会社{i},{i}")),
            }
            csv.push('\n');
        }
        csv.into_bytes()
    };
    // A bad value in row 3,400: three parts of 1,000 rows had already gone to the store.
    let (s, v) = import(a, &tid, "", file(Some((3_400, "会社3400,many")))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let staff = field_id(&table, "従業員数");
    assert_eq!(v["error"]["fields"][0]["field"], format!("row:3400:{staff}"));
    assert_eq!(record_count(a, &tid).await, 1, "nothing half-imported");
    // A name taken by an existing record in row 2,300: found before its third part is
    // written, and named by row.
    let (s, v) = import(a, &tid, "", file(Some((2_300, "既存の会社,1")))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["fields"][0]["field"], format!("row:2300:{}", field_id(&table, "会社名")));
    assert_eq!(v["error"]["fields"][0]["code"], "taken");
    assert_eq!(record_count(a, &tid).await, 1, "nothing half-imported");
    // A row the reader cannot take (too few cells, too many), or a cell with a character no
    // value may hold (NUL, which PostgreSQL cannot store; ESC), late in the file: named by row,
    // and nothing of the parts already sent is kept.
    // (Row 1,100: after the first part of 1,000 rows went to the store.)
    for (bad, field, code) in [
        ("会社1100", "row:1100".to_owned(), "ragged_row"),
        ("会社1100,1,2", "row:1100".to_owned(), "ragged_row"),
        ("会社\u{0}1100,1", format!("row:1100:{}", field_id(&table, "会社名")), "control_chars"),
        ("会社\u{1b}[31m1100,1", format!("row:1100:{}", field_id(&table, "会社名")), "control_chars"),
    ] {
        let (s, v) = import(a, &tid, "", file(Some((1_100, bad)))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}: {v}");
        assert_eq!(
            (v["error"]["fields"][0]["field"].as_str(), v["error"]["fields"][0]["code"].as_str()),
            (Some(field.as_str()), Some(code)),
            "{bad:?}: {v}"
        );
        assert_eq!(record_count(a, &tid).await, 1, "nothing half-imported: {bad:?}");
    }
    // Bytes that are not Shift_JIS, in a file chosen as Shift_JIS.
    let mut sjis = encoding_rs::SHIFT_JIS.encode("会社名,従業員数\n正常,1\n").0.into_owned();
    sjis.extend_from_slice(b"\x81\x20bad,2\n");
    let (s, v) = import(a, &tid, "?encoding=shift_jis", sjis).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("bad_encoding")),
        "{v}"
    );
    assert_eq!(record_count(a, &tid).await, 1, "nothing half-imported");
    // On PostgreSQL the import's 500-row INSERTs (2.8 MB each in a backend) were kept prepared
    // while it ran, and let go when it failed.
    assert!(matches!(app.postgres_prepared_inserts().await, None | Some(0)));
    // On PostgreSQL the planner has never counted the table (it is too young for autovacuum).
    assert!(matches!(app.postgres_row_estimate(&tid).await, None | Some(-1)));
    // Neither left a lock or a half-open transaction behind: the whole file goes in at once.
    let (s, v) = import(a, &tid, "", file(None)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["inserted"], 3_500);
    assert_eq!(record_count(a, &tid).await, 3_501);
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?q=%E4%BC%9A%E7%A4%BE3501&count=true")).await;
    assert_eq!(v["count"], 1, "the keyword index holds every part");
    let (_, v) = a.get_json("/api/v1/audit?action=record.import").await;
    let details: Vec<&str> = v["events"].as_array().unwrap().iter().map(|e| e["details"].as_str().unwrap()).collect();
    assert_eq!(details, ["3500 rows inserted, 0 updated"], "only the import that was written is recorded");
    // On SQLite an import writes with a large page cache: every connection has its usual one back.
    if let Some(sizes) = app.sqlite_cache_sizes().await {
        assert!(sizes.iter().all(|&s| s == -2000), "SQLite's default page cache on every connection: {sizes:?}");
    }
    // On SQLite the import filled the keyword index in FTS5's bulk settings and set its
    // defaults back in the same transaction.
    if let Some(config) = app.sqlite_fts_config(&tid).await {
        let expected = [("automerge".to_owned(), 4), ("hashsize".to_owned(), 1 << 20)];
        assert_eq!(config, expected, "FTS5's defaults after an import");
    }
    // On PostgreSQL an import that changed a tenth of the table refreshed its statistics at once.
    if let Some(rows) = app.postgres_row_estimate(&tid).await {
        assert_eq!(rows, 3_501, "the planner counts the imported rows");
    }
    assert!(matches!(app.postgres_prepared_inserts().await, None | Some(0)), "and when it succeeded");
}

#[tokio::test]
async fn the_import_page_takes_a_file_upload_with_its_csrf_token_and_lists_problems_by_row() {
    use daicho_testkit::reqwest::multipart::{Form, Part};
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (tid, _) = customers(&cast.admin).await;
    let form = |csrf: Option<&str>, csv: &str| {
        let mut f = Form::new();
        if let Some(c) = csrf {
            f = f.text("csrf", c.to_owned());
        }
        f.part("file", Part::bytes(csv.as_bytes().to_vec()).file_name("c.csv")).text("encoding", "auto").text("key", "")
    };
    let url = cast.admin.url(&format!("/tables/{tid}/import"));
    // The keys offered for updates: the unique field and the record number (auto-number).
    let (s, v) = cast
        .admin
        .post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": "番号", "kind": {"type": "auto_number"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (company, number) = (field_id(&v["table"], "会社名"), field_id(&v["table"], "番号"));
    let page = cast.admin.get(&format!("/tables/{tid}/import")).await.text().await.unwrap();
    let keys: Vec<&str> = page
        .split("<option value=\"")
        .skip(1)
        .filter_map(|o| o.split('"').next())
        .filter(|v| !v.is_empty() && !["auto", "utf-8", "shift_jis"].contains(v))
        .collect();
    assert_eq!(keys, [company.as_str(), number.as_str()], "{page}");
    assert!(page.contains("64 MiB"));
    // Without the session's token the upload is refused before anything is read.
    let r = cast.admin.client.post(&url).multipart(form(None, "会社名\nX\n")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = cast.admin.client.post(&url).multipart(form(Some("wrong"), "会社名\nX\n")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A problem is listed by row and field name.
    let r = cast
        .admin
        .client
        .post(&url)
        .multipart(form(Some(&cast.admin.csrf), "会社名,従業員数,ランク\nA,1,A\nB,many,Z\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("Row 3, 従業員数: Enter a whole number."), "problems listed");
    // A value outside the choices is said with the choices it may take.
    assert!(page.contains("Row 3, ランク: ") && page.contains(" (A, B, C)</li>"), "the choices named: {page}");
    // A good file lands and the grid says so.
    let r = cast
        .admin
        .client
        .post(&url)
        .multipart(form(Some(&cast.admin.csrf), "会社名,従業員数\nA,1\nB,2\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = cast.admin.get(&crate::location(&r)).await.text().await.unwrap();
    assert!(page.contains("The file was imported. 2 added, 0 updated."), "with its counts");
    // The same address opened from a mail or another site announces nothing: its counts are
    // the address's, not an import's.
    for from in ["none", "cross-site", "same-site"] {
        let r = cast.admin.client.get(cast.admin.url(&crate::location(&r))).header("sec-fetch-site", from);
        let page = r.send().await.unwrap().text().await.unwrap();
        assert!(!page.contains("The file was imported") && !page.contains("2 added"), "{from}");
    }
    let r = cast.admin.client.get(cast.admin.url(&crate::location(&r))).header("sec-fetch-site", "same-origin");
    assert!(r.send().await.unwrap().text().await.unwrap().contains("2 added, 0 updated."));
    assert!(page.contains(">A</td>") && page.contains(">B</td>"));
    // Someone who may import but not view is told so on the import page.
    let (_, users) = cast.admin.get_json("/api/v1/users").await;
    let member = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "member1").unwrap()["id"].clone();
    let (_, g) = cast.admin.post_json("/api/v1/groups", json!({"name": "取込だけ"})).await;
    let group = g["group"]["id"].as_str().unwrap().to_owned();
    cast.admin.send_json(Method::PUT, &format!("/api/v1/groups/{group}/members"), json!({"members": [member]})).await;
    let (s, v) = cast
        .admin
        .send_json(
            Method::PUT,
            &format!("/api/v1/groups/{group}/grants/{tid}"),
            json!({"rights": ["create", "import"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r = cast
        .member
        .client
        .post(cast.member.url(&format!("/tables/{tid}/import")))
        .multipart(form(
            Some(&cast.member.csrf),
            "会社名,従業員数
C,3
",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = crate::location(&r);
    assert!(to.starts_with(&format!("/tables/{tid}/import?")), "{to}");
    let page = cast.member.get(&to).await.text().await.unwrap();
    assert!(page.contains("The file was imported. 1 added, 0 updated."), "{page}");
}

/// An import's links are checked by row: a link that names no record the importer may see is
/// reported with its row and field, the import refused whole; a target table the importer may
/// not view is also a recorded refusal, written after the import's transaction (on SQLite,
/// writing it during the import waited for the import's own lock and answered 503).
#[tokio::test]
async fn an_imports_links_are_reported_by_row_and_a_target_out_of_view_is_a_recorded_refusal() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "顧客"})).await;
    let cust = v["table"]["id"].as_str().unwrap().to_owned();
    let (_, v) = a
        .post_json(&format!("/api/v1/tables/{cust}/fields"), json!({"name": "会社名", "kind": {"type": "text"}}))
        .await;
    let company = v["table"]["fields"][0]["id"].as_str().unwrap().to_owned();
    let (s, _) = a.post_json(&format!("/api/v1/tables/{cust}/records"), json!({"values": {"会社名": "アクメ"}})).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "受注"})).await;
    let orders = v["table"]["id"].as_str().unwrap().to_owned();
    a.post_json(&format!("/api/v1/tables/{orders}/fields"), json!({"name": "件名", "kind": {"type": "text"}})).await;
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{orders}/fields"),
            json!({"name": "顧客", "kind": {"type": "link", "table": cust, "show": company}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let link = field_id(&v["table"], "顧客");
    // The administrator's file: row 3 links to a record that does not exist.
    let (s, v) = import(a, &orders, "", "件名,顧客\nA,1\nB,99\n".into()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        v["error"]["fields"],
        json!([{"field": format!("row:3:{link}"), "code": "unknown_record", "message": v["error"]["fields"][0]["message"]}])
    );
    // (Recorded, as a link to a record that is not there is anywhere: a file probes many.)
    let (_, v) = a.get_json("/api/v1/audit?action=permission.denied").await;
    let probe = format!("import links to 1 records of table:{cust} not found or outside the reader's rows: 99");
    assert_eq!(v["events"][0]["details"], json!(probe), "{v}");
    // With another problem after it (row 4 is no number), both are reported in one go: the
    // rows that read well are still checked for their links.
    let (s, v) = import(a, &orders, "", "件名,顧客\nA,1\nB,99\nC,x\n".into()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let got: Vec<(&str, &str)> = v["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["field"].as_str().unwrap(), f["code"].as_str().unwrap()))
        .collect();
    let (row3, row4) = (format!("row:3:{link}"), format!("row:4:{link}"));
    assert_eq!((got.len(), got[0]), (2, (row3.as_str(), "unknown_record")), "{got:?}");
    assert_eq!(got[1].0, row4, "in the file's order: {got:?}");
    // A member who may import orders but not view customers: the links from row 1,002 on,
    // in the file's second part.
    let group = group_of(a, "member1", "受注係").await;
    let (s, _) = a
        .send_json(
            Method::PUT,
            &format!("/api/v1/groups/{group}/grants/{orders}"),
            json!({"rights": ["view", "create", "import"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let mut csv = String::from("件名,顧客\n");
    for i in 0..1000 {
        csv.push_str(&format!("注文{i},\n"));
    }
    for i in 0..3 {
        csv.push_str(&format!("リンク{i},1\n"));
    }
    let (s, v) = import(&cast.member, &orders, "", csv.into_bytes()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let at: Vec<&str> = v["error"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    let want: Vec<String> = (1002..1005).map(|r| format!("row:{r}:{link}")).collect();
    assert_eq!(at, want);
    assert_eq!(record_count(a, &orders).await, 0, "nothing imported");
    let (_, v) = a.get_json("/api/v1/audit?action=permission.denied").await;
    let refused = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["details"].as_str().unwrap_or("").contains(&format!("import links to table:{cust}")));
    assert!(refused, "{v}");
}

/// Two rows of a file with the same value in a unique field are reported by row (the second
/// one), nothing imported; so is a value the table already holds.
#[tokio::test]
async fn a_unique_value_twice_in_one_file_is_reported_by_its_row() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (tid, table) = customers(&cast.admin).await;
    let company = field_id(&table, "会社名");
    let (s, v) = import(&cast.admin, &tid, "", "会社名\nアクメ\nベータ\nアクメ\n".into()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let at: Vec<(&str, &str)> = v["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["field"].as_str().unwrap(), f["code"].as_str().unwrap()))
        .collect();
    assert_eq!(at, [(format!("row:4:{company}").as_str(), "duplicate_in_file")]);
    assert_eq!(record_count(&cast.admin, &tid).await, 0);
    assert_eq!(import(&cast.admin, &tid, "", "会社名\nアクメ\n".into()).await.0, StatusCode::OK);
    let (s, v) = import(&cast.admin, &tid, "", "会社名\nガンマ\nアクメ\n".into()).await;
    assert_eq!(
        (s, &v["error"]["fields"][0]["field"], &v["error"]["fields"][0]["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!(format!("row:3:{company}")), &json!("taken")),
        "{v}"
    );
    assert_eq!(record_count(&cast.admin, &tid).await, 1);
}

/// Import errors name rows as a spreadsheet numbers them: a blank line is a row, a cell with
/// line breaks is one row.
#[tokio::test]
async fn import_errors_are_numbered_as_a_spreadsheet_numbers_rows() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (tid, table) = customers(&cast.admin).await;
    let staff = field_id(&table, "従業員数");
    let rows_of = |csv: &'static str| {
        let cast = &cast;
        let tid = tid.clone();
        async move {
            let (s, v) = import(&cast.admin, &tid, "", csv.into()).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
            v["error"]["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["field"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let at = |rows: &[usize]| rows.iter().map(|r| format!("row:{r}:{staff}")).collect::<Vec<_>>();
    // LF, a blank line, a cell with a line break.
    assert_eq!(rows_of("会社名,メモ,従業員数\n\nA社,,1\nB社,\"一行目\n二行目\",x\nC社,,y\n").await, at(&[4, 5]));
    // Excel's CRLF line ends, and an error on the row right after blank lines.
    assert_eq!(rows_of("会社名,メモ,従業員数\r\nA社,,x\r\n\r\n\r\nB社,,y\r\n").await, at(&[2, 5]));
    assert_eq!(rows_of("会社名,メモ,従業員数\n\nA社,,x\n").await, at(&[3]));
    // Old Macintosh CR line ends, and blank lines before the header.
    assert_eq!(rows_of("会社名,メモ,従業員数\rA社,,x\r\rB社,,y\r").await, at(&[2, 4]));
    assert_eq!(rows_of("\n\n会社名,メモ,従業員数\nA社,,x\n").await, at(&[4]));
    assert_eq!(rows_of("\n\n会社名,不明\nA社,x\n").await, ["row:3:不明"], "the header's own row");
}

/// A bulk edit that has to wait for another writer's change of the same record checks, and
/// records in the history, the record as that change left it: the history's "before" is the
/// other writer's value, not the copy read before the wait (PostgreSQL: the row is locked as it
/// is read; SQLite: writers take turns).
#[tokio::test]
async fn a_bulk_edit_waiting_for_another_writer_records_the_record_that_writer_left() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (tid, table) = customers(&cast.admin).await;
    let (memo, staff) = (field_id(&table, "メモ"), field_id(&table, "従業員数"));
    let (s, v) = cast
        .admin
        .post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "A社", "メモ": "first"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["record"]["id"].as_i64().unwrap();
    let held = app.hold_record_change(&tid, &memo, id, "by another writer").await;
    let bulk = {
        let (admin, url) = (&cast.admin, format!("/api/v1/tables/{tid}/records/bulk-update"));
        let body = json!({"ids": [id], "values": {&staff: 5, &memo: "by the bulk edit"}});
        let req = admin.client.post(admin.url(&url)).header("x-csrf-token", &admin.csrf).json(&body).send();
        tokio::spawn(req)
    };
    app.wait_for_waiting_writers(1).await;
    assert!(!bulk.is_finished(), "the bulk edit waits for the other writer");
    held.commit().await;
    let r = bulk.await.unwrap().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, h) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records/{id}/history")).await;
    assert_eq!(h["cut"], false, "a short history is whole: {h}");
    let memo_change =
        h["entries"][0]["changes"].as_array().unwrap().iter().find(|c| c["field"] == memo.as_str()).cloned();
    assert_eq!(
        memo_change,
        Some(json!({"field": memo, "before": "by another writer", "after": "by the bulk edit"})),
        "{h}"
    );
}

/// An export reads one snapshot of its table: records edited while it runs, in a way that moves
/// them across its position, are neither left out nor written twice, and come with the values
/// they had when it began (the store's pages read two records at a time, the reader held after
/// the first page while the API edits).
#[tokio::test]
async fn an_export_reads_one_snapshot_while_records_move_across_its_position() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (tid, table) = customers(&cast.admin).await;
    let staff = field_id(&table, "従業員数");
    let mut csv = String::from("会社名,従業員数\n");
    for n in 10..40 {
        csv.push_str(&format!("会社{n},{n}\n"));
    }
    assert_eq!(import(&cast.admin, &tid, "", csv.into_bytes()).await.0, StatusCode::OK);
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records?sort={staff}&limit=100")).await;
    let before: Vec<(i64, i64)> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_i64().unwrap(), r["values"][&staff].as_i64().unwrap()))
        .collect();
    assert_eq!(before.len(), 30);
    let (scope, def) = app.admin_view("acme", "admin", &tid).await;
    let query = daicho_domain::table::RecordQuery {
        sort: Some(staff.parse().unwrap()),
        descending: false,
        limit: 2,
        ..Default::default()
    };
    let (pages, mut rx) = tokio::sync::mpsc::channel(1);
    let scan = app.store().scan_records(&scope, &def, query, pages);
    let read = async {
        let mut got = rx.recv().await.unwrap();
        // Meanwhile the last record moves to the front, and the second to the end.
        for (id, n) in [(before[29].0, 5), (before[1].0, 45)] {
            let url = format!("/api/v1/tables/{tid}/records/{id}");
            let (s, v) = cast.admin.send_json(Method::PATCH, &url, json!({"version": 1, "values": {&staff: n}})).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
        while let Some(page) = rx.recv().await {
            got.extend(page);
        }
        got
    };
    let (scanned, got) = tokio::join!(scan, read);
    scanned.unwrap();
    let got: Vec<(i64, i64)> = got
        .iter()
        .map(|r| {
            let n = r.cells.iter().find(|(f, _)| f.to_string() == staff).map(|(_, c)| c.clone());
            let Some(daicho_domain::table::Cell::Int(n)) = n else { panic!("{n:?}") };
            (r.id, n)
        })
        .collect();
    assert_eq!(got, before, "every record once, as it was when the export began");
    // The next export sees the edits.
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records?sort={staff}&limit=1")).await;
    assert_eq!(v["records"][0]["id"], before[29].0);
}

/// An export whose request read the table's design before a change of a field's type committed
/// (on SQLite it waits behind that change to record its start) reads no record with the old
/// design: its snapshot begins with the design check, and the export is refused (409) rather
/// than writing 5 made 5.00 as "500".
#[tokio::test]
async fn an_export_reads_its_records_only_with_the_design_they_were_written_with() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let staff = field_id(&table, "従業員数");
    assert_eq!(import(a, &tid, "", "会社名,従業員数\n甲,5\n乙,7\n".as_bytes().to_vec()).await.0, StatusCode::OK);
    // The design as a request read it, then the type changed.
    let (scope, def) = app.admin_view("acme", "admin", &tid).await;
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/fields/{staff}/retype"),
            json!({"kind": {"type": "decimal", "scale": 2}}),
        )
        .await;
    assert_eq!((s, v["applied"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    let (pages, mut rx) = tokio::sync::mpsc::channel(4);
    let query = daicho_domain::table::RecordQuery { limit: 1000, ..Default::default() };
    let read = app.store().scan_records(&scope, &def, query, pages).await;
    match read {
        Err(daicho_store::StoreError::Conflict(e)) => assert_eq!(e.code_for("values"), Some("design_changed")),
        other => panic!("{other:?}"),
    }
    assert!(rx.recv().await.is_none(), "no page read with the old design");
    // Read with the design as it stands, the export holds the values as they are now.
    let r = a.get(&format!("/api/v1/tables/{tid}/export.csv")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let bytes = r.bytes().await.unwrap();
    let mut rdr = csv::Reader::from_reader(&bytes[3..]);
    let column = rdr.headers().unwrap().iter().position(|h| h == "従業員数").unwrap();
    let mut values: Vec<String> = rdr.records().map(|r| r.unwrap()[column].to_owned()).collect();
    values.sort();
    assert_eq!(values, ["5.00", "7.00"]);
    // Through the route, a change of the design and of every value held open meanwhile: on
    // SQLite the export waits behind it to record its start and is then refused (409, its end
    // recorded) rather than read with the old design; on PostgreSQL nothing waits, and by when
    // the request read the design and its snapshot began it reads all before the change, all
    // after it, or is refused as on SQLite (design read before, snapshot after).
    let bump = format!(
        "UPDATE user_fields SET kind = CASE kind WHEN '{{\"type\":\"text\"}}' THEN '{{\"type\":\"multiline\"}}' \
         ELSE '{{\"type\":\"text\"}}' END WHERE table_id = '{tid}' \
         AND kind IN ('{{\"type\":\"text\"}}', '{{\"type\":\"multiline\"}}')"
    );
    let values = format!("UPDATE t_{} SET f_{} = 99900", tid.replace('-', ""), staff.replace('-', ""));
    let held = app.hold_sql(&[bump, values]).await;
    let export = {
        let (client, url) = (a.client.clone(), a.url(&format!("/api/v1/tables/{tid}/export.csv")));
        tokio::spawn(async move { client.get(url).send().await.unwrap() })
    };
    if app.backend() == "sqlite" {
        app.wait_for_waiting_writers(1).await;
    }
    held.commit().await;
    let r = export.await.unwrap();
    let refused = r.status() == StatusCode::CONFLICT;
    if refused {
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["fields"][0]["code"], "design_changed", "{v}");
        let end = export_end(a, |d| d.starts_with("refused")).await;
        assert_eq!(end, "refused before the first row: the table's design changed");
    } else {
        assert_eq!(r.status(), StatusCode::OK);
        // (One snapshot: the values before the change or after it, never some of each.)
        let text = r.text().await.unwrap();
        let before = text.contains("5.00") && text.contains("7.00") && !text.contains("999");
        let after = text.matches("999.00").count() == 2 && !text.contains("5.00");
        assert!(before || after, "{text}");
    }
    assert!(refused || app.backend() == "postgres", "SQLite waits, and is refused");
}

/// A query holds at most 20 filters as typed: a date-time's "equals" (a whole day, read as
/// its start and end) counts once, the 21st is refused.
#[tokio::test]
async fn twenty_filters_as_typed_are_taken_a_date_time_equals_counting_once() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, _) = customers(a).await;
    let mut q = vec!["filter.eq.最終連絡=2026-04-01".to_owned()];
    q.extend((0..19).map(|_| "filter.contains.会社名=会".to_owned()));
    let (s, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?{}", q.join("&"))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    q.push("filter.contains.会社名=社".to_owned());
    let (s, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?{}", q.join("&"))).await;
    assert_eq!((s, v["error"]["fields"][0]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("too_many")));
}

/// A record's history is read up to a size (HISTORY_BYTES, 4 MiB of changes), the newest
/// entries first, and says it is cut: a record whose long texts were saved again and again is
/// not read, held and sent whole.
#[tokio::test]
async fn a_records_history_of_long_texts_is_read_up_to_a_size_and_says_it_is_cut() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let memo = field_id(&table, "メモ");
    let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "長文商事"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["record"]["id"].as_i64().unwrap();
    // 40 saves, each entry about 120 KB (two texts of 20,000 three-byte characters).
    let texts = ["あ".repeat(20_000), "い".repeat(20_000)];
    for version in 1..=40 {
        let url = format!("/api/v1/tables/{tid}/records/{id}");
        let body = json!({"version": version, "values": {&memo: texts[version as usize % 2]}});
        let (s, v) = a.send_json(Method::PATCH, &url, body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, h) = a.get_json(&format!("/api/v1/tables/{tid}/records/{id}/history")).await;
    assert_eq!(s, StatusCode::OK);
    let n = h["entries"].as_array().unwrap().len();
    assert!((25..40).contains(&n), "the newest that fit in 4 MiB: {n}");
    assert_eq!((&h["cut"], &h["entries"][0]["version"]), (&json!(true), &json!(41)), "the newest first, said cut");
    let page = a.get(&format!("/tables/{tid}/records/{id}/history")).await.text().await.unwrap();
    assert!(page.contains("Only the newest changes are shown"), "the page says so too");
    // Counted on what the reader sees: for one who may not see the long texts, nothing is cut
    // (where a history is cut tells nothing of fields hidden from its reader).
    let m = &cast.member;
    let url = format!("/api/v1/tables/{tid}/records/{id}");
    let (s, v) = a.send_json(Method::PATCH, &url, json!({"version": 41, "values": {"会社名": "長文商事２"}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let gid = group_of(a, &m.login, "閲覧").await;
    let mut hidden = serde_json::Map::new();
    hidden.insert(memo.clone(), json!("hidden"));
    let body = json!({"rights": ["view"], "fields": hidden});
    assert_eq!(a.send_json(Method::PUT, &format!("/api/v1/groups/{gid}/grants/{tid}"), body).await.0, StatusCode::OK);
    let (s, h) = m.get_json(&format!("/api/v1/tables/{tid}/records/{id}/history")).await;
    assert_eq!(s, StatusCode::OK, "{h}");
    assert_eq!((h["entries"].as_array().unwrap().len(), &h["cut"]), (1, &json!(false)), "{h}");
}

/// A link the reader may not change reads on the record page as the grid shows it, and leads
/// to the linked record where the reader may view that table; else its number alone.
#[tokio::test]
async fn a_read_only_link_shows_its_record_and_leads_to_it_where_the_reader_may_view_it() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let (cust, table) = customers(a).await;
    let company = field_id(&table, "会社名");
    let (_, v) =
        a.post_json(&format!("/api/v1/tables/{cust}/records"), json!({"values": {"会社名": "株式会社テスト"}})).await;
    let cid = v["record"]["id"].as_i64().unwrap();
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "受注"})).await;
    let orders = v["table"]["id"].as_str().unwrap().to_owned();
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{orders}/fields"),
            json!({"name": "顧客", "kind": {"type": "link", "table": cust, "show": company}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = a.post_json(&format!("/api/v1/tables/{orders}/records"), json!({"values": {"顧客": cid}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let oid = v["record"]["id"].as_i64().unwrap();
    let gid = group_of(a, &m.login, "閲覧").await;
    let view = |t: String| {
        let url = format!("/api/v1/groups/{gid}/grants/{t}");
        async move { a.send_json(Method::PUT, &url, json!({"rights": ["view"]})).await.0 }
    };
    assert_eq!(view(orders.clone()).await, StatusCode::OK);
    let page = m.get(&format!("/tables/{orders}/records/{oid}")).await.text().await.unwrap();
    assert!(page.contains(&format!("<p class=\"ro-value\">#{cid}</p>")), "the number alone: {page}");
    assert_eq!(view(cust.clone()).await, StatusCode::OK);
    let page = m.get(&format!("/tables/{orders}/records/{oid}")).await.text().await.unwrap();
    assert!(
        page.contains(&format!(
            "<p class=\"ro-value\"><a href=\"/tables/{cust}/records/{cid}\">株式会社テスト (#{cid})</a></p>"
        )),
        "{page}"
    );
    // A linked record outside the reader's rows (they see only the customers they made): its
    // number alone, no way to a page that would refuse them.
    let url = format!("/api/v1/groups/{gid}/grants/{cust}");
    let (s, v) = a.send_json(Method::PUT, &url, json!({"rights": ["view"], "rows": {"type": "created_by_me"}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let page = m.get(&format!("/tables/{orders}/records/{oid}")).await.text().await.unwrap();
    assert!(page.contains(&format!("<p class=\"ro-value\">#{cid}</p>")), "{page}");
}

/// A bulk edit counts the records it changed: one that held the value already is left as it
/// was (no new version, no history entry) and not counted.
#[tokio::test]
async fn a_bulk_edit_counts_only_the_records_it_changed() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let memo = field_id(&table, "メモ");
    let mut ids = Vec::new();
    for (name, m) in [("甲", "a"), ("乙", "a"), ("丙", "b")] {
        let (_, v) =
            a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": name, "メモ": m}})).await;
        ids.push(v["record"]["id"].as_i64().unwrap());
    }
    let (s, v) = a
        .post_json(&format!("/api/v1/tables/{tid}/records/bulk-update"), json!({"ids": ids, "values": {&memo: "a"}}))
        .await;
    assert_eq!((s, &v["updated"]), (StatusCode::OK, &json!(1)), "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{}", ids[0])).await;
    assert_eq!(v["record"]["version"], 1, "left as it was");
    let (_, h) = a.get_json("/api/v1/audit?action=record.update").await;
    let details = h["events"][0]["details"].as_str().unwrap_or_default();
    assert!(details.starts_with("1 changed: bulk edit of 3 records"), "{h}");
}

/// A record's history says it is cut exactly when older entries exist than those given: one
/// of exactly the most read (500) is whole, one more is cut; entries of hidden fields only
/// count as read.
#[tokio::test]
async fn a_history_of_exactly_the_most_read_is_whole_and_one_more_is_cut() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, _) = customers(a).await;
    let (_, v) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "履歴商事"}})).await;
    let id = v["record"]["id"].as_i64().unwrap();
    let url = format!("/api/v1/tables/{tid}/records/{id}");
    let (s, v) = a.send_json(Method::PATCH, &url, json!({"version": 1, "values": {"会社名": "履歴商事２"}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // 499 older entries that change nothing the reader sees (as if their field had gone).
    let insert = |n: u32, first: u32| {
        let cols = "INSERT INTO record_history (table_id, record_id, version, at, actor_id, actor_login, changes)";
        let sqlite = format!(
            "{cols} WITH RECURSIVE n(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM n WHERE i < {}) \
             SELECT '{tid}', {id}, i, 0, NULL, 'x', '[]' FROM n",
            first + n - 1
        );
        let postgres = format!(
            "{cols} SELECT '{tid}', {id}, i, 0, NULL, 'x', '[]' FROM generate_series({first}, {}) AS i",
            first + n - 1
        );
        (&*Box::leak(sqlite.into_boxed_str()), &*Box::leak(postgres.into_boxed_str()))
    };
    // (Older: their ids must be lower, so the real entry is moved after them.)
    let (s, p) = insert(499, 1000);
    assert_eq!(app.raw_sql(s, p).await, Ok(499));
    let bump: &'static str = Box::leak(
        format!(
            "UPDATE record_history SET id = id + 100000 WHERE table_id = '{tid}' AND record_id = {id} AND version = 2"
        )
        .into_boxed_str(),
    );
    assert_eq!(app.raw_sql(bump, bump).await, Ok(1));
    let history = format!("{url}/history");
    let (_, h) = a.get_json(&history).await;
    assert_eq!((h["entries"].as_array().unwrap().len(), &h["cut"]), (1, &json!(false)), "500 entries, all read: {h}");
    let (s, p) = insert(1, 1);
    assert_eq!(app.raw_sql(s, p).await, Ok(1));
    let (_, h) = a.get_json(&history).await;
    assert_eq!((h["entries"].as_array().unwrap().len(), &h["cut"]), (1, &json!(true)), "501: one left out: {h}");
}

/// A node reads two import uploads (each up to 64 MiB) at once: a third waits for a place
/// before its body is read, other requests are answered meanwhile, and an upload that ends,
/// finished or broken off by its client, gives its place back.
#[tokio::test]
async fn a_node_reads_two_import_uploads_at_once_and_an_ended_one_gives_its_place_back() {
    use daicho_testkit::reqwest::Body;
    use daicho_testkit::reqwest::multipart::{Form, Part};
    use tokio::io::AsyncWriteExt;
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let admin = &cast.admin;
    let (tid, _) = customers(admin).await;
    let url = format!("/tables/{tid}/import");
    let upload = |file: Part| {
        let form =
            Form::new().text("csrf", admin.csrf.clone()).text("encoding", "utf-8").text("key", "").part("file", file);
        tokio::spawn(admin.client.post(admin.url(&url)).multipart(form).send())
    };
    // An upload whose file arrives as the test writes it.
    let slow = || {
        let (writer, reader) = tokio::io::duplex(1024);
        let body = Body::wrap_stream(tokio_util::io::ReaderStream::new(reader));
        (writer, upload(Part::stream(body).file_name("slow.csv")))
    };
    let app = &app;
    let places_free = move |n: usize| async move {
        for _ in 0..1000 {
            if app.free_upload_places() == n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("{} upload places free, not {n}", app.free_upload_places());
    };
    assert_eq!(app.free_upload_places(), 2);
    let (mut first, first_answer) = slow();
    let (mut second, second_answer) = slow();
    first.write_all("会社名,従業員数\n".as_bytes()).await.unwrap();
    second.write_all("会社名,従業員数\n".as_bytes()).await.unwrap();
    places_free(0).await;
    // A third waits for a place; pages and the API answer meanwhile.
    let third = upload(Part::bytes("会社名,従業員数\n第三商事,3\n".as_bytes().to_vec()).file_name("third.csv"));
    assert_eq!(admin.get(&format!("/tables/{tid}")).await.status(), StatusCode::OK);
    assert_eq!(record_count(admin, &tid).await, 0);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!third.is_finished(), "the third upload waits for a place");
    // The first ends: it is imported, and the third takes its place.
    first.write_all("株式会社アクメ,12\n".as_bytes()).await.unwrap();
    drop(first);
    assert_eq!(first_answer.await.unwrap().unwrap().status(), StatusCode::SEE_OTHER);
    assert_eq!(third.await.unwrap().unwrap().status(), StatusCode::SEE_OTHER);
    assert_eq!(record_count(admin, &tid).await, 2);
    // The second's client goes away in the middle of its file: the place comes back, and
    // nothing of that file is written.
    second.write_all("途中商事,".as_bytes()).await.unwrap();
    second_answer.abort();
    places_free(2).await;
    assert_eq!(record_count(admin, &tid).await, 2);
}

#[tokio::test]
async fn a_file_whose_columns_are_not_field_names_is_mapped_first_then_imported_all_or_nothing() {
    use daicho_testkit::reqwest::multipart::{Form, Part};
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (tid, table) = customers(&cast.admin).await;
    let (company, staff, memo) = (field_id(&table, "会社名"), field_id(&table, "従業員数"), field_id(&table, "メモ"));
    let url = format!("/tables/{tid}/import");
    let upload = |who: &Persona, csv: &str| {
        let form = Form::new()
            .text("csrf", who.csrf.clone())
            .part("file", Part::bytes(csv.as_bytes().to_vec()).file_name("from-excel.csv"))
            .text("encoding", "auto")
            .text("key", "");
        who.client.post(who.url(&url)).multipart(form).send()
    };
    let map = |who: &Persona, staged: &str, cols: &[&str]| {
        let mut form = Form::new()
            .text("csrf", who.csrf.clone())
            .text("staged", staged.to_owned())
            .text("encoding", "auto")
            .text("key", "");
        for c in cols {
            form = form.text("col", (*c).to_owned());
        }
        who.client.post(who.url(&url)).multipart(form).send()
    };
    let staged_files = || app.raw_i64("SELECT COUNT(*) FROM staged_imports");
    // Headers that are not field names: the page asks which field gets each column, with the
    // first values, the field of the same name chosen; nothing is imported yet.
    let csv = "会社名,人数,備考,不要な列\n株式会社アクメ,12,<b>メモ</b>,x\nベータ合同会社,7,,y\n";
    let r = upload(&cast.admin, csv).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Which field gets each column?")
            && page.contains(">人数</th>")
            && page.contains(">不要な列</th>")
    );
    assert!(
        page.contains("<span>株式会社アクメ</span>") && page.contains("&#60;b&#62;メモ&#60;/b&#62;"),
        "examples, escaped: {page}"
    );
    assert!(page.contains(&format!("<option value=\"{company}\" selected>")), "the same name is chosen");
    let staged = page.split("name=\"staged\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    assert_eq!((record_count(&cast.admin, &tid).await, staged_files().await), (0, 1));
    // A user keeps at most three files waiting: a fourth replaces the oldest, whose mapping then
    // imports nothing (410, as for an expired file).
    for _ in 0..3 {
        assert_eq!(upload(&cast.admin, csv).await.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(staged_files().await, 3);
    let r = map(&cast.admin, &staged, &[&company, "", "", ""]).await.unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    assert_eq!(record_count(&cast.admin, &tid).await, 0);
    app.raw_sql("DELETE FROM staged_imports", "DELETE FROM staged_imports").await.unwrap();
    let page = upload(&cast.admin, csv).await.unwrap().text().await.unwrap();
    let staged = page.split("name=\"staged\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    assert_eq!(staged_files().await, 1);
    // Two columns into one field, or no column at all, are refused on the same page.
    let r = map(&cast.admin, &staged, &[&company, &staff, &staff, ""]).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("Which field gets each column?"));
    let r = map(&cast.admin, &staged, &["", "", "", ""]).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("Choose a field for at least one column."));
    let r = map(&cast.admin, &staged, &[&company, &staff]).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "one choice per column");
    // A value that does not fit its field: nothing is imported, the file stays for another try.
    let r = map(&cast.admin, &staged, &[&company, &memo, &staff, ""]).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("Row 2, 従業員数: Enter a whole number."));
    assert_eq!((record_count(&cast.admin, &tid).await, staged_files().await), (0, 1));
    // Another user of the tenant, even one allowed to import here, cannot use this file.
    let (_, users) = cast.admin.get_json("/api/v1/users").await;
    let member = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "member1").unwrap()["id"].clone();
    let (_, g) = cast.admin.post_json("/api/v1/groups", json!({"name": "取込"})).await;
    let group = g["group"]["id"].as_str().unwrap().to_owned();
    cast.admin.send_json(Method::PUT, &format!("/api/v1/groups/{group}/members"), json!({"members": [member]})).await;
    let (s, _) = cast
        .admin
        .send_json(Method::PUT, &format!("/api/v1/groups/{group}/grants/{tid}"), json!({"rights": ["view", "import"]}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let r = map(&cast.member, &staged, &[&company, &staff, &memo, ""]).await.unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    assert!(r.text().await.unwrap().contains("The uploaded file is no longer kept"));
    // Mapped, the form posted twice at once (a double click): both rows land once, the
    // left-out column nowhere; the staged file is gone. Another writer holds the database
    // meanwhile (on SQLite), so that both posts have read the file before either writes.
    let (s, v) =
        cast.admin.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "先客"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let held = app.hold_record_change(&tid, &memo, v["record"]["id"].as_i64().unwrap(), "待たせる").await;
    let cols = [company.as_str(), staff.as_str(), memo.as_str(), ""];
    let (first, second) = (map(&cast.admin, &staged, &cols), map(&cast.admin, &staged, &cols));
    let both = tokio::spawn(async move { tokio::join!(first, second) });
    // (On PostgreSQL nothing holds the imports up: either may find the file gone.)
    if app.backend() == "sqlite" {
        app.wait_for_waiting_writers(2).await;
    }
    held.commit().await;
    let (r1, r2) = both.await.unwrap();
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    let mut statuses = [r1.status(), r2.status()];
    statuses.sort();
    assert_eq!(statuses[0], StatusCode::SEE_OTHER, "{statuses:?}");
    if app.backend() == "sqlite" {
        assert_eq!(statuses[1], StatusCode::CONFLICT, "the second post finds the file taken");
        let second = if r1.status() == StatusCode::CONFLICT { r1 } else { r2 };
        assert!(second.text().await.unwrap().contains("This file was imported already"));
    } else {
        assert!(matches!(statuses[1], StatusCode::CONFLICT | StatusCode::GONE), "{statuses:?}");
    }
    assert_eq!((record_count(&cast.admin, &tid).await, staged_files().await), (3, 0), "imported once");
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records?filter.eq.会社名=先客")).await;
    let first_id = v["records"][0]["id"].as_i64().unwrap();
    let (s, _) =
        cast.admin.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}/records/{first_id}"), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records?sort={staff}&dir=asc")).await;
    let rows: Vec<(Value, Value, Value)> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["values"][&company].clone(), r["values"][&staff].clone(), r["values"][&memo].clone()))
        .collect();
    assert_eq!(
        rows,
        [(json!("ベータ合同会社"), json!(7), Value::Null), (json!("株式会社アクメ"), json!(12), json!("<b>メモ</b>"))]
    );
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=record.import").await;
    assert_eq!(v["events"].as_array().unwrap().len(), 1, "one import, recorded once: {v}");
    // Each file kept for the mapping is recorded too: by whom, for which table, how big.
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=import.staged").await;
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 5, "four uploads before the purge, one after: {v}");
    let last = &events[0];
    assert_eq!((&last["actor_login"], &last["target"]), (&json!("admin"), &json!(format!("table:{tid}"))), "{last}");
    let want = format!("staged={staged}; bytes={}; columns=4; encoding=auto", csv.len());
    assert_eq!(last["details"], want);
    let r = map(&cast.admin, &staged, &[&company, &staff, &memo, ""]).await.unwrap();
    assert_eq!(r.status(), StatusCode::GONE, "a file imports once");
    // A file left at the mapping is usable for an hour, then purged by the hourly job.
    let r = upload(&cast.admin, "社名\nガンマ\n").await.unwrap();
    let page = r.text().await.unwrap();
    let staged = page.split("name=\"staged\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    for minutes in [25, 25, 9] {
        // The session stays alive meanwhile (30 minutes idle at most).
        app.clock.advance(time::Duration::minutes(minutes));
        assert_eq!(cast.admin.get("/api/v1/me").await.status(), StatusCode::OK);
    }
    assert_eq!(staged_files().await, 1);
    app.clock.advance(time::Duration::minutes(2));
    let r = map(&cast.admin, &staged, &[&company]).await.unwrap();
    assert_eq!(r.status(), StatusCode::GONE, "after an hour");
    let runner = daicho::jobs::JobRunner::new(
        app.running.store.clone(),
        std::sync::Arc::new(app.clock.clone()),
        "n1".into(),
        std::sync::Arc::new(app.config.clone()),
    );
    runner.tick().await.unwrap();
    assert_eq!(staged_files().await, 0);
    // The API maps the same way: one entry per column, separated by tabs, empty to leave out.
    let cols = format!("{company}\t\t{staff}");
    let query = format!("?columns={}", cols.replace('\t', "%09"));
    let (s, v) = import(&cast.admin, &tid, &query, "Name,Ignored,Count\nデルタ,z,3\n".as_bytes().to_vec()).await;
    assert_eq!((s, &v["inserted"]), (StatusCode::OK, &json!(1)), "{v}");
    let (s, v) = import(&cast.admin, &tid, "?columns=%09", "Name,Count\nイプシロン,3\n".as_bytes().to_vec()).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("nothing_mapped"))
    );
    let (s, v) = import(&cast.admin, &tid, "", "Name,Count\nイプシロン,3\n".as_bytes().to_vec()).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_field"))
    );
    assert_eq!(record_count(&cast.admin, &tid).await, 3);
}

#[tokio::test]
async fn the_demo_tenant_has_a_small_business_to_explore_and_reseeding_adds_nothing() {
    use daicho_domain::Clock;
    let app = TestApp::start().await;
    let creds = daicho::operator::seed_demo(app.store(), &app.hasher, app.clock.now()).await.unwrap();
    let again = daicho::operator::seed_demo(app.store(), &app.hasher, app.clock.now()).await.unwrap();
    let admin = app.login("demo", "admin", &again.admin_password).await;
    assert_ne!(creds.admin_password, again.admin_password, "fresh passwords at every start");
    let (_, v) = admin.get_json("/api/v1/tables").await;
    let tables = v["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 4);
    let orders = tables.iter().find(|t| t["name"].as_str().unwrap().starts_with("受注")).unwrap();
    let tid = orders["id"].as_str().unwrap();
    let mut n = 0;
    let mut after = String::new();
    loop {
        let (_, v) = admin.get_json(&format!("/api/v1/tables/{tid}/records?limit=500{after}")).await;
        n += v["records"].as_array().unwrap().len();
        match v["next_after"].as_str() {
            Some(c) => after = format!("&after={c}"),
            None => break,
        }
    }
    assert_eq!(n, 1800);
    // Orders link to their customers and show the company name.
    let (_, v) = admin.get_json(&format!("/api/v1/tables/{tid}/records?limit=1")).await;
    let lookups = v["records"][0]["lookups"].as_object().unwrap();
    assert!(lookups.values().next().unwrap().as_str().unwrap().len() > 3, "{v}");
    // And to their product, showing its SKU.
    assert!(lookups.values().any(|l| l.as_str().is_some_and(|s| s.starts_with("P-"))), "{v}");
    let customers = tables.iter().find(|t| t["name"].as_str().unwrap().starts_with("顧客")).unwrap();
    let cid = customers["id"].as_str().unwrap();
    let (_, v) = admin.get_json(&format!("/api/v1/tables/{cid}/records?q=%E6%9D%B1%E4%BA%AC&limit=5")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 5, "Japanese keyword search finds Tokyo customers");
    // The staff user is in the Sales group: four tables, prices read-only, no deleting orders.
    let staff = app.login("demo", "staff", &again.member_password).await;
    let (s, v) = staff.get_json("/api/v1/tables").await;
    assert_eq!(s, StatusCode::OK);
    let mine = v["tables"].as_array().unwrap();
    assert_eq!(mine.len(), 4);
    let products = mine.iter().find(|t| t["name"].as_str().unwrap().starts_with("製品")).unwrap();
    assert_eq!(products["my_rights"], json!(["view", "edit"]));
    assert_eq!(products["read_only_fields"].as_array().unwrap().len(), 1);
    let (_, v) = staff.get_json(&format!("/api/v1/tables/{tid}/records?limit=1")).await;
    let rid = v["records"][0]["id"].as_i64().unwrap();
    assert_eq!(
        staff.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}/records/{rid}"), json!({})).await.0,
        StatusCode::FORBIDDEN
    );
    let (_, groups) = admin.get_json("/api/v1/groups").await;
    assert_eq!(groups["groups"].as_array().unwrap().len(), 2, "two demo groups, seeded once");
    // The support account is in the Support group: customers without their staff numbers,
    // inquiries (their own), nothing else.
    let (login, password) = again.support.clone().expect("a support account");
    let support = app.login("demo", &login, &password).await;
    let (_, v) = support.get_json("/api/v1/tables").await;
    let theirs: Vec<&str> = v["tables"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(theirs.len(), 2, "{theirs:?}");
    let customers_seen = v["tables"].as_array().unwrap().iter().find(|t| t["id"] == cid).unwrap();
    assert_eq!(customers_seen["my_rights"], json!(["view"]), "{customers_seen}");
    assert!(!customers_seen.to_string().contains("従業員数"), "{customers_seen}");
    // English text is found too, as is each table's share of the records.
    let (_, v) = admin.get_json(&format!("/api/v1/tables/{cid}/records?q=Trading&limit=5")).await;
    assert!(!v["records"].as_array().unwrap().is_empty(), "English keyword search finds customers: {v}");
    for (prefix, at_least) in [("製品", 20), ("問い合わせ", 200), ("顧客", 200)] {
        let t = tables.iter().find(|t| t["name"].as_str().unwrap().starts_with(prefix)).unwrap();
        let (_, v) =
            admin.get_json(&format!("/api/v1/tables/{}/records?count=true&limit=1", t["id"].as_str().unwrap())).await;
        assert!(v["count"].as_u64().unwrap() >= at_least, "{prefix}: {v}");
    }
}

#[tokio::test]
async fn imports_take_files_larger_than_the_general_body_limit_up_to_their_own() {
    let app = TestApp::start_with(|c| c.server.max_import_bytes = 4 * 1024 * 1024).await;
    let cast = app.cast().await;
    let (tid, _) = customers(&cast.admin).await;
    // About 2.3 MiB: over the 1 MiB limit of every other route, within the import limit.
    let mut csv = String::from("会社名,メモ\n");
    let mut n = 0;
    while csv.len() < 2_300_000 {
        n += 1;
        csv.push_str(&format!("会社{n},{}\n", "備考".repeat(20)));
    }
    let (s, v) = import(&cast.admin, &tid, "", csv.clone().into_bytes()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["inserted"], n);
    // The same size on a record route is refused.
    let (s, _) = cast
        .admin
        .post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"メモ": "x".repeat(2_300_000)}}))
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    // Over the import limit: 413 before anything is read or written.
    let (s, _) = import(&cast.admin, &tid, "", vec![b'a'; 5 * 1024 * 1024]).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, v) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records?limit=1")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["records"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn several_sort_keys_with_empty_values_page_in_one_consistent_order() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "並べ替え"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    for (name, kind) in
        [("区分", json!({"type": "text"})), ("数", json!({"type": "integer"})), ("済", json!({"type": "checkbox"}))]
    {
        let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": name, "kind": kind})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    // 30 records: 区分 one of three values or empty, 数 one of four values or empty, repeated.
    let mut rows = Vec::new();
    for i in 0..30i64 {
        let kubun = match i % 4 {
            0 => Value::Null,
            n => json!(["東", "西", "南"][n as usize - 1]),
        };
        let num = if i % 5 == 0 { Value::Null } else { json!(i % 3) };
        let (s, v) = a
            .post_json(
                &format!("/api/v1/tables/{tid}/records"),
                json!({"values": {"区分": kubun, "数": num, "済": i % 2 == 0}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        rows.push((v["record"]["id"].as_i64().unwrap(), kubun, num));
    }
    // The expected order: 区分 ascending, then 数 descending, empty values last in each key, then
    // the id in the first key's direction.
    let key = |v: &Value| v.as_str().map(str::to_owned);
    let mut expected = rows.clone();
    expected.sort_by(|x, y| {
        let k1 = (key(&x.1).is_none(), key(&x.1)).cmp(&(key(&y.1).is_none(), key(&y.1)));
        let k2 =
            (x.2.is_null(), std::cmp::Reverse(x.2.as_i64())).cmp(&(y.2.is_null(), std::cmp::Reverse(y.2.as_i64())));
        k1.then(k2).then(x.0.cmp(&y.0))
    });
    let expected: Vec<i64> = expected.iter().map(|r| r.0).collect();
    let base = format!("/api/v1/tables/{tid}/records?sort=区分&dir=asc&sort=数&dir=desc");
    let (_, all) = a.get_json(&format!("{base}&limit=100")).await;
    let ids =
        |v: &Value| v["records"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect::<Vec<_>>();
    assert_eq!(ids(&all), expected);
    // Keyset pages of 4 walk exactly the same order, across the empty values of both keys.
    let mut walked = Vec::new();
    let mut after = String::new();
    loop {
        let (s, v) = a.get_json(&format!("{base}&limit=4{after}")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        walked.extend(ids(&v));
        match v["next_after"].as_str() {
            Some(c) => after = format!("&after={c}"),
            None => break,
        }
    }
    assert_eq!(walked, expected);
    // Three keys descending, and the same with the export (which pages internally).
    let (_, v) = a
        .get_json(&format!(
            "/api/v1/tables/{tid}/records?sort=済&dir=desc&sort=数&dir=asc&sort=区分&dir=desc&limit=100"
        ))
        .await;
    assert_eq!(v["records"].as_array().unwrap().len(), 30);
    assert_eq!(v["records"][0]["values"].as_object().unwrap().values().filter(|x| **x == json!(true)).count(), 1);
    // An unknown key is named.
    let (s, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?sort=区分&sort=数&sort=済&sort=id&sort=作成")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["fields"][0]["code"], "unknown_field");
}

async fn add_record(a: &Persona, tid: &str, values: Value) -> (StatusCode, Value) {
    a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({ "values": values })).await
}

async fn titles_of(a: &Persona, tid: &str, title: &str, q: &str) -> Vec<String> {
    let (s, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?{q}")).await;
    assert_eq!(s, StatusCode::OK, "{q}: {v}");
    v["records"].as_array().unwrap().iter().map(|r| r["values"][title].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn multiple_choice_auto_number_and_default_values_work_through_api_form_csv_and_filters() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "問い合わせ"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for (name, kind, rules) in [
        ("件名", json!({"type": "text"}), json!({"required": true})),
        ("番号", json!({"type": "auto_number", "prefix": "INQ-"}), json!({})),
        ("タグ", json!({"type": "multi_choice", "choices": ["重要", "至急", "保留"]}), json!({})),
        ("状態", json!({"type": "choice", "choices": ["新規", "対応中", "完了"]}), json!({"default": "新規"})),
    ] {
        let (s, v) = a
            .post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": name, "kind": kind, "rules": rules}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned());
    }
    let (title, number, tags, state) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    // Definitions that make no sense are refused.
    for (kind, rules, code) in [
        (json!({"type": "auto_number"}), json!({"unique": true}), "not_for_this_type"),
        (json!({"type": "integer"}), json!({"default": "many"}), "bad_default"),
        (json!({"type": "multi_choice", "choices": ["a"]}), json!({"unique": true}), "not_for_this_type"),
    ] {
        let (s, v) = a
            .post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": "x", "kind": kind, "rules": rules}))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["error"]["fields"][0]["code"], code, "{v}");
    }
    let add = |values: Value| add_record(a, &tid, values);
    let (s, v) = add(json!({"件名": "一件目", "タグ": ["至急", "重要"]})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["record"]["values"][tags], json!(["重要", "至急"]), "kept in the order of the list");
    assert_eq!(v["record"]["values"][number], "INQ-000001");
    assert_eq!(v["record"]["values"][state], "新規", "the default");
    let (s, v) = add(json!({"件名": "二件目", "タグ": "保留", "状態": "完了"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["record"]["values"][tags], json!(["保留"]));
    let (s, _) = add(json!({"件名": "三件目"})).await;
    assert_eq!(s, StatusCode::CREATED);
    for (values, code) in [
        (json!({"件名": "x", "番号": "INQ-9"}), "read_only"),
        (json!({"件名": "x", "タグ": ["重要", "無い"]}), "choice"),
        (json!({"件名": "x", "タグ": [1]}), "wrong_type"),
    ] {
        let (s, v) = add(values.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{values}");
        assert_eq!(v["error"]["fields"][0]["code"], code, "{values}");
    }
    // Filters, keyword and sort.
    let list = |q: &'static str| titles_of(a, &tid, title, q);
    assert_eq!(list("filter.eq.タグ=至急").await, ["一件目"]);
    assert_eq!(list("filter.any_of.タグ=至急,保留&sort=番号&dir=asc").await, ["一件目", "二件目"]);
    // "Any of" takes at most 100 values, on a multiple choice as on any field.
    let many = vec!["至急"; 101].join(",");
    for key in ["タグ", "番号"] {
        let (s, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?filter.any_of.{key}={many}")).await;
        assert_eq!((s, v["error"]["fields"][0]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("too_many")));
    }
    let hundred = vec!["至急"; 100].join(",");
    let (s, _) = a.get_json(&format!("/api/v1/tables/{tid}/records?filter.any_of.タグ={hundred}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list("filter.empty.タグ=").await, ["三件目"]);
    assert_eq!(list("filter.eq.番号=INQ-000002").await, ["二件目"]);
    assert_eq!(list("filter.gte.番号=2&sort=番号&dir=desc").await, ["三件目", "二件目"]);
    assert_eq!(list("q=%E4%BF%9D%E7%95%99").await, ["二件目"]);
    let (s, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?filter.eq.タグ=無い")).await;
    assert_eq!((s, v["error"]["fields"][0]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("choice")));
    // The export writes one choice per line in a cell and the number with its prefix; reading the
    // file back by the auto-number updates the same records, and without a key inserts new ones
    // with new numbers.
    let csv = a.get(&format!("/api/v1/tables/{tid}/export.csv?sort=番号&dir=asc")).await.text().await.unwrap();
    assert!(csv.contains("一件目,INQ-000001,\"重要\n至急\",新規"), "{csv}");
    let edited = csv.replace("二件目", "二件目(改)");
    let (s, v) = import(a, &tid, "?key=番号", edited.into_bytes()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["inserted"].as_i64(), v["updated"].as_i64(), v["unchanged"].as_i64()),
        (Some(0), Some(1), Some(2)),
        "{v}"
    );
    assert_eq!(list("filter.eq.番号=2").await, ["二件目(改)"]);
    let (s, v) = import(a, &tid, "", csv.into_bytes()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(list("filter.gt.番号=3&sort=番号&dir=asc").await, ["一件目", "二件目", "三件目"]);
    // The record form: a checkbox per choice, the default preselected, the number shown, not editable.
    let form = a.get(&format!("/tables/{tid}/records/new")).await.text().await.unwrap();
    assert_eq!(form.matches(&format!("type=\"checkbox\" name=\"{tags}\"")).count(), 3, "{form}");
    assert!(form.contains("<option value=\"新規\" selected>"));
    assert!(!form.contains(&format!("name=\"{number}\"")), "the number is not an input");
    let r = a
        .post_form(
            &format!("/tables/{tid}/records"),
            &[(title.as_str(), "フォーム"), (tags.as_str(), "保留"), (tags.as_str(), "重要")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, v) =
        a.get_json(&format!("/api/v1/tables/{tid}/records?filter.eq.件名=%E3%83%95%E3%82%A9%E3%83%BC%E3%83%A0")).await;
    assert_eq!(v["records"][0]["values"][tags], json!(["重要", "保留"]));
    let page = a.get(&format!("/tables/{tid}")).await.text().await.unwrap();
    assert!(page.contains("重要, 保留") && page.contains("INQ-000007"), "the grid shows both");
    // An auto-number added later numbers the existing records; deleting and purging it works.
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/fields"),
            json!({"name": "連番", "kind": {"type": "auto_number", "digits": 3}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let late = v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned();
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?sort=連番&dir=asc&limit=1")).await;
    assert_eq!(v["records"][0]["values"][&late], "001");
    assert_eq!(
        a.send_json(Method::DELETE, &format!("/api/v1/tables/{tid}/fields/{late}"), json!({})).await.0,
        StatusCode::NO_CONTENT
    );
    let (s, v) = a.send_json(Method::DELETE, &format!("/api/v1/trash/tables/{tid}/fields/{late}"), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, v) = add(json!({"件名": "最後"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

#[tokio::test]
async fn the_system_fields_created_and_updated_at_and_by_sort_filter_show_and_export() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "メモ"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    let (_, v) =
        a.post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": "本文", "kind": {"type": "text"}})).await;
    let body = v["table"]["fields"][0]["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for i in 0..3 {
        app.clock.advance(time::Duration::minutes(1));
        let (_, v) = add_record(a, &tid, json!({"本文": format!("メモ{i}")})).await;
        ids.push(v["record"]["id"].as_i64().unwrap());
    }
    app.clock.advance(time::Duration::minutes(1));
    let (s, _) = a
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{tid}/records/{}", ids[0]),
            json!({"version": 1, "values": {"本文": "更新"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // Sorted by when each was last updated, newest first; by creation, oldest first.
    assert_eq!(titles_of(a, &tid, &body, "sort=updated_at&dir=desc").await, ["更新", "メモ2", "メモ1"]);
    assert_eq!(titles_of(a, &tid, &body, "sort=作成日時%20Created%20at&dir=asc").await, ["更新", "メモ1", "メモ2"]);
    // Filtered by time and by author.
    let (_, me) = a.get_json("/api/v1/me").await;
    let admin_id = me["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(titles_of(a, &tid, &body, "filter.gte.updated_at=2026-04-01T09:04:00Z").await, ["更新"]);
    assert_eq!(
        titles_of(a, &tid, &body, &format!("filter.eq.created_by={admin_id}&sort=id&dir=asc")).await,
        ["更新", "メモ1", "メモ2"]
    );
    // They cannot be written.
    let (s, v) = add_record(a, &tid, json!({"本文": "x", "created_by": "someone"})).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_field"))
    );
    // Chosen as columns they show (the author by name) and export.
    let page = a.get(&format!("/tables/{tid}?col=本文&col=updated_by&col=updated_at")).await.text().await.unwrap();
    assert!(page.contains("<th scope=\"col\">更新者 Updated by</th>") && page.contains("Admin (admin)"), "{page}");
    let csv = a
        .get(&format!("/api/v1/tables/{tid}/export.csv?col=本文&col=created_at&sort=created_at&dir=asc"))
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.contains("更新,2026-04-01 18:01:00"), "in the tenant's time zone: {csv}");
    // The record page shows them too, in the tenant's time zone (Japan's unless set), which the
    // administrator sets on the policy page.
    let page = a.get(&format!("/tables/{tid}/records/{}", ids[0])).await.text().await.unwrap();
    assert!(
        page.contains("Created 2026-04-01 18:01:00 UTC+09:00 · Admin (admin)")
            && page.contains("Last updated 2026-04-01 18:04:00 UTC+09:00"),
        "{page}"
    );
    let policy = a.get("/admin/policy").await.text().await.unwrap();
    assert!(policy.contains("<option value=\"540\" selected>UTC+09:00</option>"), "{policy}");
    let form = crate::network::policy("");
    let mut f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    f.push(("utc_offset_minutes", "-300"));
    assert_eq!(a.post_form("/admin/policy", &f).await.status(), StatusCode::SEE_OTHER);
    let page = a.get(&format!("/tables/{tid}/records/{}", ids[0])).await.text().await.unwrap();
    assert!(page.contains("Created 2026-04-01 04:01:00 UTC-05:00"), "{page}");
    f.pop();
    // A form from a page without the time zone keeps the tenant's.
    assert_eq!(a.post_form("/admin/policy", &f).await.status(), StatusCode::SEE_OTHER);
    let page = a.get(&format!("/tables/{tid}/records/{}", ids[0])).await.text().await.unwrap();
    assert!(page.contains("Created 2026-04-01 04:01:00 UTC-05:00"), "{page}");
    f.push(("utc_offset_minutes", "7"));
    let r = a.post_form("/admin/policy", &f).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "whole quarter hours");
    assert!(
        r.text().await.unwrap().contains("<option value=\"-300\" selected>UTC-05:00</option>"),
        "the page shows the tenant's, not what was posted"
    );
    f.pop();
    f.push(("utc_offset_minutes", "-2147483648"));
    assert_eq!(a.post_form("/admin/policy", &f).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A member without rights on the table learns nothing from them.
    assert_eq!(m.get_json(&format!("/api/v1/tables/{tid}/records?sort=updated_at")).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_filter_on_one_field_with_a_sort_on_another_gives_the_same_pages_whichever_plan_is_taken() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "計画"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    for (name, kind) in
        [("名", json!({"type": "text"})), ("数", json!({"type": "integer"})), ("可", json!({"type": "checkbox"}))]
    {
        a.post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": name, "kind": kind})).await;
    }
    // 600 records: a filter that matches most of them (the sort index is walked) and one that
    // matches few (the filter's index is used); values repeat and some are empty.
    let mut csv = String::from("名,数,可\n");
    for i in 0..600 {
        let n = if i % 7 == 0 { String::new() } else { ((i * 37) % 50).to_string() };
        csv.push_str(&format!("r{i:03},{n},{}\n", if i % 10 == 0 { "false" } else { "true" }));
    }
    let (s, v) = import(a, &tid, "", csv.into_bytes()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, t) = a.get_json(&format!("/api/v1/tables/{tid}")).await;
    let t = t["table"].clone();
    for (filter, expected_count) in [("filter.eq.可=true", 540), ("filter.eq.可=false", 60)] {
        let (_, all) = a.get_json(&format!("/api/v1/tables/{tid}/records?{filter}&limit=500")).await;
        let mut expected: Vec<(Option<i64>, i64)> = all["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["values"][&field_id(&t, "数")].as_i64(), r["id"].as_i64().unwrap()))
            .collect();
        let (_, more) = a
            .get_json(&format!(
                "/api/v1/tables/{tid}/records?{filter}&limit=500&after={}",
                all["next_after"].as_str().unwrap_or("")
            ))
            .await;
        if all["next_after"].is_string() {
            expected.extend(
                more["records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| (r["values"][&field_id(&t, "数")].as_i64(), r["id"].as_i64().unwrap())),
            );
        }
        assert_eq!(expected.len(), expected_count);
        // 数 descending with empty values last, ties by id descending.
        expected.sort_by(|x, y| {
            (x.0.is_none(), std::cmp::Reverse(x.0), std::cmp::Reverse(x.1)).cmp(&(
                y.0.is_none(),
                std::cmp::Reverse(y.0),
                std::cmp::Reverse(y.1),
            ))
        });
        let mut walked = Vec::new();
        let mut after = String::new();
        loop {
            let (s, v) =
                a.get_json(&format!("/api/v1/tables/{tid}/records?{filter}&sort=数&dir=desc&limit=50{after}")).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            walked.extend(v["records"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()));
            match v["next_after"].as_str() {
                Some(c) => after = format!("&after={c}"),
                None => break,
            }
        }
        assert_eq!(walked, expected.iter().map(|e| e.1).collect::<Vec<_>>(), "{filter}");
    }
}

#[tokio::test]
async fn common_and_rare_keywords_give_the_same_pages_whichever_way_they_are_found() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "大量"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    for (name, kind) in [("本文", json!({"type": "text"})), ("番", json!({"type": "integer"}))] {
        a.post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": name, "kind": kind})).await;
    }
    // 10,200 records: every one says 共通語 (more than a list counts), every third 三番目, every
    // hundredth 百番毎 (fewer than a page among the newest 2,000, a page among 10,000), three say
    // まれな言葉.
    let mut csv = String::from("本文,番\n");
    for i in 1..=10_200 {
        let rare = if i % 3400 == 0 { " まれな言葉" } else { "" };
        let third = if i % 3 == 0 { " 三番目" } else { "" };
        let ancient = if i <= 100 { " Ancient Record" } else { "" };
        let hundredth = if i % 100 == 0 { " 百番毎" } else { "" };
        csv.push_str(&format!("共通語 {i}{third}{rare}{ancient}{hundredth},{i}\n"));
    }
    let (s, v) = import(a, &tid, "", csv.into_bytes()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ids =
        |v: &Value| v["records"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect::<Vec<_>>();
    let get = |q: &str| {
        let url = format!("/api/v1/tables/{tid}/records?{q}");
        async move {
            let (s, v) = a.get_json(&url).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v
        }
    };
    // Common (found record by record in list order), newest first and by a field.
    let v = get("q=%E5%85%B1%E9%80%9A%E8%AA%9E&count=true&limit=3").await;
    assert_eq!(ids(&v), [10_200, 10_199, 10_198]);
    assert_eq!((v["count"].as_u64(), v["count_capped"].as_bool()), (Some(10_000), Some(true)));
    let v = get("q=%E5%85%B1%E9%80%9A%E8%AA%9E&sort=%E7%95%AA&dir=asc&limit=2").await;
    assert_eq!(ids(&v), [1, 2]);
    let v = get("q=%E5%85%B1%E9%80%9A&limit=2").await;
    assert_eq!(ids(&v), [10_200, 10_199], "two characters, common");
    // A third of them (3,400: collected) and three (rare), with the exact count.
    let v = get("q=%E4%B8%89%E7%95%AA%E7%9B%AE&count=true&limit=2").await;
    assert_eq!((ids(&v), v["count"].as_u64()), (vec![10_200, 10_197], Some(3_400)));
    let v = get("q=%E7%99%BE%E7%95%AA%E6%AF%8E&count=true&limit=50").await;
    let every_hundredth: Vec<i64> = (0..50).map(|k| 10_200 - 100 * k).collect();
    assert_eq!((ids(&v), v["count"].as_u64()), (every_hundredth, Some(102)));
    let v = get("q=%E3%81%BE%E3%82%8C%E3%81%AA&count=true").await;
    assert_eq!((ids(&v), v["count"].as_u64()), (vec![10_200, 6_800, 3_400], Some(3)));
    // Paging a common keyword walks on without repeating or skipping.
    let mut after = String::new();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let v = get(&format!("q=%E5%85%B1%E9%80%9A%E8%AA%9E&filter.lte.%E7%95%AA=5000&limit=400{after}")).await;
        seen.extend(ids(&v));
        after = format!("&after={}", v["next_after"].as_str().unwrap());
    }
    assert_eq!(seen, (3_801..=5_000).rev().collect::<Vec<i64>>());
    // Found only among the oldest records (a walk of the newest ones finds none), in any case:
    // pages in both directions and by a field, and the count.
    for (sort, first) in [("", 100), ("&sort=%E7%95%AA&dir=desc", 100), ("&dir=asc", 1)] {
        let mut after = String::new();
        let mut seen = Vec::new();
        for _ in 0..4 {
            let v = get(&format!("q=ANCIENT%20record&limit=30{sort}{after}")).await;
            seen.extend(ids(&v));
            match v["next_after"].as_str() {
                Some(n) => after = format!("&after={n}"),
                None => break,
            }
        }
        let want: Vec<i64> = if first == 1 { (1..=100).collect() } else { (1..=100).rev().collect() };
        assert_eq!(seen, want, "{sort}");
    }
    let v = get("q=ancient&count=true&limit=1").await;
    assert_eq!((ids(&v), v["count"].as_u64()), (vec![100], Some(100)));
}

#[tokio::test]
async fn phrases_with_spaces_and_punctuation_match_exactly_on_both_stores() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "語句"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    for (name, kind) in
        [("件名", json!({"type": "text"})), ("備考", json!({"type": "text"})), ("番", json!({"type": "integer"}))]
    {
        let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": name, "kind": kind})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    // PostgreSQL's keyword index stores spaces and punctuation as one letter (U+01C1) so that
    // a phrase's trigrams span its words; what is found must still be exactly the phrase.
    let rows = [
        ("INV-2023-001 請求", "", 1),
        ("INV 2023 001", "", 2),
        ("alpha beta", "gamma delta", 3),
        ("東京\u{3000}本社", "", 4),
        ("a\u{1c1}b 記号", "", 5),
        ("a b 空白", "メール: sales@example.co.jp", 6),
    ];
    for (subject, note, n) in rows {
        let (s, v) = a
            .post_json(
                &format!("/api/v1/tables/{tid}/records"),
                json!({"values": {"件名": subject, "備考": note, "番": n}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let nums = |v: &Value| -> Vec<i64> {
        let mut n: Vec<i64> = v["records"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect();
        n.sort();
        n
    };
    for (k, want) in [
        ("inv-2023", vec![1]),
        ("INV 2023", vec![2]),
        ("2023", vec![1, 2]),
        ("alpha beta", vec![3]),
        ("beta gamma", vec![]),
        ("beta\u{1c1}gamma", vec![]),
        ("東京\u{3000}本社", vec![4]),
        ("東京 本社", vec![]),
        ("a\u{1c1}b", vec![5]),
        ("a b 空", vec![6]),
        ("@example.co", vec![6]),
        ("sales@example", vec![6]),
        ("sales example", vec![]),
    ] {
        let enc: String = form_urlencoded::byte_serialize(k.as_bytes()).collect();
        let base = format!("/api/v1/tables/{tid}/records?q={enc}");
        // The walk in list order, the walk by a field, the index with a filter, and the count.
        for extra in ["&count=true", "&sort=%E7%95%AA&dir=asc", "&filter.gte.%E7%95%AA=1"] {
            let (s, v) = a.get_json(&format!("{base}{extra}")).await;
            assert_eq!(s, StatusCode::OK, "{k}: {v}");
            assert_eq!(nums(&v), want, "{k:?} with {extra}");
            if extra == "&count=true" {
                assert_eq!(v["count"].as_u64(), Some(want.len() as u64), "{k:?} counted");
            }
        }
    }
    // A type change rebuilds the keyword text in SQL: on PostgreSQL exactly as records are
    // written (joined in Rust), with the field's values now in it; phrases are found as before.
    let before = app.postgres_search_text(&tid).await;
    let (_, t) = a.get_json(&format!("/api/v1/tables/{tid}")).await;
    let number = field_id(&t["table"], "番");
    let (s, v) =
        a.post_json(&format!("/api/v1/tables/{tid}/fields/{number}/retype"), json!({"kind": {"type": "text"}})).await;
    assert_eq!((s, v["applied"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    if let Some(before) = before {
        let after = app.postgres_search_text(&tid).await.unwrap();
        let want: Vec<String> = before.iter().zip(1..).map(|(b, n)| format!("{b}{n}\u{1c1}")).collect();
        assert_eq!(after, want);
    }
    for (k, want) in [("inv-2023", vec![1]), ("alpha beta", vec![3]), ("beta gamma", vec![]), ("a b 空", vec![6])] {
        let enc: String = form_urlencoded::byte_serialize(k.as_bytes()).collect();
        let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?q={enc}")).await;
        assert_eq!(nums(&v), want, "{k:?} after the rebuild");
    }
    // On PostgreSQL: text stored before the joining (spaces and newlines as typed) is joined by
    // migration 0012, and phrases are then found through the index as above.
    let t = format!("t_{}", tid.replace('-', ""));
    let unjoin = format!("UPDATE {t} SET search_text = translate(search_text, E'\\u01c1', ' ')");
    if app.postgres_execute(&unjoin).await.is_some() {
        let before = app.postgres_search_text(&tid).await.unwrap();
        assert!(before[2].contains("alpha beta"), "{before:?}");
        app.postgres_execute(include_str!("../../../store-postgres/migrations/0012_search_joined.sql")).await;
        let after = app.postgres_search_text(&tid).await.unwrap();
        assert_eq!(after[2], "alpha\u{1c1}beta\u{1c1}gamma\u{1c1}delta\u{1c1}3\u{1c1}", "{after:?}");
        assert!(after.iter().all(|s| !s.contains([' ', '\n', '-', '@', '\u{3000}'])), "{after:?}");
        let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?q=alpha%20beta")).await;
        assert_eq!(nums(&v), [3]);
    }
}

#[tokio::test]
async fn malformed_csv_is_refused_whole_and_formula_cells_are_kept_as_typed_but_exported_neutralised() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let (name, memo) = (field_id(&table, "会社名"), field_id(&table, "メモ"));
    let error_codes = |v: &Value| -> Vec<String> {
        v["error"]["fields"]
            .as_array()
            .map(|f| f.iter().map(|e| e["code"].as_str().unwrap_or("").to_owned()).collect())
            .unwrap_or_default()
    };
    // A quote that never closes swallows the rest of the file into one cell: the file is refused.
    let (s, v) = import(a, &tid, "", "会社名,メモ\n良い会社,ok\n\"閉じない会社,x\n次の会社,y\n".into()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(!error_codes(&v).is_empty(), "{v}");
    // A stray quote inside an unquoted cell, and a quoted cell followed by text: refused too, or
    // read as the characters they are; never half-written.
    let (s, v) = import(a, &tid, "", "会社名,メモ\nA\"B,ok\n\"C\"D,ok\n".into()).await;
    assert!(s == StatusCode::OK || s == StatusCode::UNPROCESSABLE_ENTITY, "{s} {v}");
    let written = if s == StatusCode::OK { v["inserted"].as_u64().unwrap() } else { 0 };
    assert_eq!(record_count(a, &tid).await, written, "all or nothing");
    let start = record_count(a, &tid).await;
    // Huge cells: over the field's own limit (50) and over the multi-line cap (20,000): every
    // row reported, nothing written.
    let huge = format!("会社名,メモ\n{},ok\n普通の会社,{}\n普通の会社2,ok\n", "長".repeat(51), "あ".repeat(20_001));
    let (s, v) = import(a, &tid, "", huge.into_bytes()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let fields: Vec<&str> =
        v["error"]["fields"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&format!("row:2:{name}").as_str()), "{fields:?}");
    assert!(fields.contains(&format!("row:3:{memo}").as_str()), "{fields:?}");
    assert_eq!(record_count(a, &tid).await, start, "nothing half-imported");
    // Quoted cells keep their commas, doubled quotes and line breaks.
    let (s, v) = import(a, &tid, "", "会社名,メモ\n\"A, \"\"Quoted\"\" Inc.\",\"一行目\n二行目\"\n".into()).await;
    assert_eq!((s, v["inserted"].as_u64()), (StatusCode::OK, Some(1)), "{v}");
    // Formula cells typed into the file are data: kept exactly as typed, shown as text, and
    // neutralised (a leading ') in every export so that a spreadsheet does not run them.
    let formulas = [
        ("=HYPERLINK(\"http://evil.example/\",\"x\")", "=1+1"),
        ("+cmd|' /C calc'!A0", "@SUM(A1:A9)"),
        ("-2+3", "=WEBSERVICE(\"http://evil.example/\")"),
        ("＝1+1 全角", "＠SUM(A1)"),
    ];
    let mut csv = String::from("会社名,メモ\n");
    for (n, m) in formulas {
        csv.push_str(&format!("\"{}\",\"{}\"\n", n.replace('"', "\"\""), m.replace('"', "\"\"")));
    }
    let (s, v) = import(a, &tid, "", csv.into_bytes()).await;
    assert_eq!((s, v["inserted"].as_u64()), (StatusCode::OK, Some(4)), "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?limit=100")).await;
    let stored: Vec<(String, String)> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (r["values"][&name].as_str().unwrap().to_owned(), r["values"][&memo].as_str().unwrap_or("").to_owned())
        })
        .collect();
    for (n, m) in formulas {
        assert!(stored.contains(&(n.to_owned(), m.to_owned())), "{n} kept as typed: {stored:?}");
    }
    assert!(stored.contains(&("A, \"Quoted\" Inc.".to_owned(), "一行目\n二行目".to_owned())), "{stored:?}");
    let page = a.get(&format!("/tables/{tid}")).await.text().await.unwrap();
    assert!(page.contains("=HYPERLINK(&#34;http://evil.example/&#34;,&#34;x&#34;)"), "escaped text on the grid");
    for query in ["", "?encoding=shift_jis"] {
        let csv = a.get(&format!("/api/v1/tables/{tid}/export.csv{query}")).await.bytes().await.unwrap();
        let text = if query.is_empty() {
            String::from_utf8(csv.to_vec()).unwrap()
        } else {
            encoding_rs::SHIFT_JIS.decode(&csv).0.into_owned()
        };
        let mut reader =
            csv::ReaderBuilder::new().flexible(true).from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        let cells: Vec<String> =
            reader.records().flat_map(|r| r.unwrap().iter().map(str::to_owned).collect::<Vec<_>>()).collect();
        for (n, m) in formulas {
            assert!(cells.contains(&format!("'{n}")) && cells.contains(&format!("'{m}")), "{query}: {cells:?}");
            assert!(!cells.contains(&n.to_owned()) && !cells.contains(&m.to_owned()), "{query}: no live formula");
        }
    }
}

#[tokio::test]
async fn hostile_names_and_values_are_escaped_on_every_page_and_exported_intact_and_control_characters_refused() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let evil = "<img src=x onerror=alert(1)>\"'&";
    let shown = "&#60;img src=x onerror=alert(1)&#62;";
    let (s, v) = a.post_json("/api/v1/tables", json!({"name": evil, "description": evil})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    let field_name = format!("{evil}欄");
    for f in [
        json!({"name": field_name, "kind": {"type": "choice", "choices": [evil, "普通"]}}),
        json!({"name": "t", "kind": {"type": "text"}}),
        json!({"name": "m", "kind": {"type": "multiline"}}),
    ] {
        let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/fields"), f).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/records"),
            json!({"values": {&field_name: evil, "t": evil, "m": format!("{evil}\n二行目\tタブ")}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Every page that shows the table, its fields, its choices or the values: escaped.
    for page in [
        "/tables".to_owned(),
        format!("/tables/{tid}"),
        format!("/tables/{tid}/records/new"),
        format!("/tables/{tid}/records/1"),
        format!("/tables/{tid}/records/1/history"),
        format!("/tables/{tid}/design"),
        format!("/tables/{tid}/import"),
    ] {
        let r = a.get(&page).await;
        assert_eq!(r.status(), StatusCode::OK, "{page}");
        let html = r.text().await.unwrap();
        assert!(!html.contains("<img src=x"), "{page} shows markup unescaped");
        assert!(html.contains(shown), "{page} shows the name, escaped");
    }
    // The export carries names and values exactly (CSV-quoted, not HTML-escaped).
    let csv = a.get(&format!("/api/v1/tables/{tid}/export.csv")).await.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert!(header.contains(&field_name), "{header:?}");
    let row: Vec<String> = reader.records().next().unwrap().unwrap().iter().map(str::to_owned).collect();
    assert!(row.contains(&evil.to_owned()) && row.contains(&format!("{evil}\n二行目\tタブ")), "{row:?}");
    // Names: 100 characters are fine, 101 are not; control characters never.
    let (s, _) = a.post_json("/api/v1/tables", json!({"name": "長".repeat(100)})).await;
    assert_eq!(s, StatusCode::CREATED);
    let code = |v: &Value| v["error"]["fields"][0]["code"].as_str().unwrap_or("").to_owned();
    let (s, v) = a.post_json("/api/v1/tables", json!({"name": "長".repeat(101)})).await;
    assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "too_long".into()));
    let fields = format!("/api/v1/tables/{tid}/fields");
    for (body, want) in [
        (json!({"name": "a\u{7}b", "kind": {"type": "text"}}), "control_chars"),
        (json!({"name": "x".repeat(101), "kind": {"type": "text"}}), "too_long"),
        (json!({"name": "c", "kind": {"type": "choice", "choices": ["a\u{1b}[31mb"]}}), "bad_choice"),
        (json!({"name": "c", "kind": {"type": "choice", "choices": ["x".repeat(101)]}}), "bad_choice"),
    ] {
        let (s, v) = a.post_json(&fields, body.clone()).await;
        assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, want.to_owned()), "{body}");
    }
    // Values: a single line refuses every control character (line breaks too), a multi-line
    // field keeps line breaks and tabs but refuses the rest; nothing is written.
    let records = format!("/api/v1/tables/{tid}/records");
    for values in [json!({"t": "a\u{0}b"}), json!({"t": "一\n二"}), json!({"m": "a\u{1b}b"}), json!({"m": "a\u{7f}"})]
    {
        let (s, v) = a.post_json(&records, json!({ "values": values })).await;
        assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "control_chars".to_owned()), "{values}");
    }
    assert_eq!(record_count(a, &tid).await, 1);
}

#[tokio::test]
async fn email_phone_and_user_fields_round_trip_and_number_and_length_rules_are_enforced_through_the_api() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (s, v) = a.post_json("/api/v1/tables", json!({"name": "連絡先"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    let mut table = Value::Null;
    for f in [
        json!({"name": "メール", "kind": {"type": "email"}}),
        json!({"name": "電話", "kind": {"type": "phone"}}),
        json!({"name": "担当者", "kind": {"type": "user"}}),
        json!({"name": "件数", "kind": {"type": "integer"}, "rules": {"min": "-5", "max": "10"}}),
        json!({"name": "率", "kind": {"type": "decimal", "scale": 2}, "rules": {"min": "0.50", "max": "99.99"}}),
        json!({"name": "略称", "kind": {"type": "text"}, "rules": {"max_length": 5}}),
        json!({"name": "備考", "kind": {"type": "multiline"}}),
    ] {
        let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/fields"), f).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        table = v["table"].clone();
    }
    let id = |name: &str| field_id(&table, name);
    let (_, users) = a.get_json("/api/v1/users").await;
    let member = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "member1").unwrap().clone();
    let member_id = member["id"].as_str().unwrap().to_owned();
    // Every value comes back as stored, the limits themselves included.
    let good = json!({
        "メール": "  taro.yamada+sales@example.co.jp ",
        "電話": "+81 (3) 1234-5678",
        "担当者": member_id,
        "件数": -5,
        "率": "99.99",
        "略称": "ABCDE",
        "備考": "あ".repeat(20_000),
    });
    let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({ "values": good })).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let rid = v["record"]["id"].as_i64().unwrap();
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{rid}")).await;
    let values = &v["record"]["values"];
    assert_eq!(values[id("メール")], "taro.yamada+sales@example.co.jp", "trimmed");
    assert_eq!(values[id("電話")], "+81 (3) 1234-5678");
    assert_eq!(values[id("担当者")], member_id.as_str());
    assert_eq!(values[id("件数")], -5);
    assert_eq!(values[id("率")], "99.99");
    assert_eq!(values[id("略称")], "ABCDE");
    assert_eq!(values[id("備考")].as_str().map(|s| s.chars().count()), Some(20_000));
    // The grid and the record page show the user by name, not by id.
    let grid = a.get(&format!("/tables/{tid}")).await.text().await.unwrap();
    let display = member["display_name"].as_str().unwrap();
    assert!(grid.contains(display), "the grid names the user");
    let page = a.get(&format!("/tables/{tid}/records/{rid}")).await.text().await.unwrap();
    assert!(page.contains(display), "the record page names the user");
    let option = format!("<option value=\"{member_id}\"");
    assert!(a.get(&format!("/tables/{tid}/records/new")).await.text().await.unwrap().contains(&option));
    // A disabled user is no longer offered for new values, but a record that names them still
    // shows them, chosen, and keeps them when its form is saved.
    let (s, v) = a.post_json(&format!("/api/v1/users/{member_id}/disable"), json!({})).await;
    assert!(s.is_success(), "{s} {v}");
    let new_form = a.get(&format!("/tables/{tid}/records/new")).await.text().await.unwrap();
    assert!(!new_form.contains(&option), "a disabled user is not offered");
    assert!(new_form.contains("<option value=\""), "active users are");
    let page = a.get(&format!("/tables/{tid}/records/{rid}")).await.text().await.unwrap();
    assert!(page.contains(&format!("{option} selected>")), "the record keeps its disabled user");
    let (owner, short) = (id("担当者"), id("略称"));
    let form = [("version", "1"), (owner.as_str(), member_id.as_str()), (short.as_str(), "AB")];
    let r = a.post_form(&format!("/tables/{tid}/records/{rid}"), &form).await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{rid}")).await;
    assert_eq!(
        (v["record"]["values"][&owner].as_str(), v["record"]["version"].as_i64()),
        (Some(member_id.as_str()), Some(2))
    );
    // Nor is a disabled user given a record anew through the API (or a form built by hand).
    let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"担当者": member_id}})).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("user_disabled")),
        "{v}"
    );
    // Each broken rule is refused with its own code, and nothing is written.
    for (field, value, code) in [
        ("メール", json!("taro@"), "email_format"),
        ("メール", json!("<script>@example.jp"), "email_format"),
        ("電話", json!("03-1234-567x"), "phone_format"),
        ("電話", json!("1"), "phone_format"),
        ("担当者", json!("00000000-0000-0000-0000-000000000000"), "unknown_user"),
        ("担当者", json!("taro' OR 1=1"), "unknown_user"),
        ("件数", json!(-6), "below_min"),
        ("件数", json!(11), "above_max"),
        ("件数", json!("1.5"), "not_a_number"),
        ("率", json!("0.49"), "below_min"),
        ("率", json!("100.00"), "above_max"),
        ("率", json!("1.234"), "not_a_decimal"),
        ("略称", json!("ABCDEF"), "too_long"),
        ("備考", json!("あ".repeat(20_001)), "too_long"),
    ] {
        let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {field: value}})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{field}={value}: {v}");
        assert_eq!(v["error"]["fields"][0]["field"], id(field).as_str(), "{field}={value}");
        assert_eq!(v["error"]["fields"][0]["code"], code, "{field}={value}: {v}");
    }
    // The same rules hold for an edit.
    let edit = json!({"version": 1, "values": {"件数": 11}});
    let (s, v) = a.send_json(Method::PATCH, &format!("/api/v1/tables/{tid}/records/{rid}"), edit).await;
    assert_eq!((s, v["error"]["fields"][0]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("above_max")));
    assert_eq!(record_count(a, &tid).await, 1);
}

#[tokio::test]
async fn an_unknown_sort_or_filter_field_is_refused_by_the_grid_the_api_and_the_export() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, _) = customers(a).await;
    let (s, _) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "A"}})).await;
    assert_eq!(s, StatusCode::CREATED);
    for query in [
        "sort=nope",
        "sort=nope&dir=desc",
        "sort=会社名&sort=nope",
        "filter.eq.nope=1",
        "filter.contains.%E7%84%A1%E3%81%84=x",
        "filter.bogus_op.会社名=x",
        "col=nope",
    ] {
        for path in [
            format!("/tables/{tid}?{query}"),
            format!("/api/v1/tables/{tid}/records?{query}"),
            format!("/api/v1/tables/{tid}/export.csv?{query}"),
            format!("/tables/{tid}/export.csv?{query}"),
        ] {
            let s = a.get(&path).await.status();
            assert!(s.is_client_error(), "{path} -> {s}");
        }
    }
    // The known ones still work on every path.
    for path in [
        format!("/tables/{tid}?sort=会社名&dir=desc&filter.eq.会社名=A"),
        format!("/api/v1/tables/{tid}/records?sort=会社名&dir=desc&filter.eq.会社名=A"),
        format!("/api/v1/tables/{tid}/export.csv?sort=会社名&dir=desc&filter.eq.会社名=A"),
    ] {
        assert_eq!(a.get(&path).await.status(), StatusCode::OK, "{path}");
    }
    // `col` chooses the fields the API answers, as on the grid and in the export.
    let (s, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?col=%E4%BC%9A%E7%A4%BE%E5%90%8D")).await;
    assert_eq!(s, StatusCode::OK);
    let values = v["records"][0]["values"].as_object().unwrap();
    assert_eq!(values.len(), 1, "{v}");
    assert_eq!(values.values().next().unwrap(), "A");
    // A cursor continues only the order it was made for: one from a list by staff count (a
    // number) is refused by a list by company name or by id, and by a list with a second key.
    for n in [2, 3] {
        let (s, _) = a
            .post_json(
                &format!("/api/v1/tables/{tid}/records"),
                json!({"values": {"会社名": format!("B{n}"), "従業員数": n}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let by_staff = "sort=%E5%BE%93%E6%A5%AD%E5%93%A1%E6%95%B0&limit=1";
    let (s, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?{by_staff}")).await;
    assert_eq!(s, StatusCode::OK);
    let after = v["next_after"].as_str().expect("a next page").to_owned();
    let (s, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?{by_staff}&after={after}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["records"][0]["values"].as_object().unwrap().values().any(|x| x == "B3"), "{v}");
    for other in ["sort=%E4%BC%9A%E7%A4%BE%E5%90%8D", "sort=", &format!("{by_staff}&sort=%E4%BC%9A%E7%A4%BE%E5%90%8D")]
    {
        for path in [
            format!("/api/v1/tables/{tid}/records?{other}&after={after}"),
            format!("/tables/{tid}?{other}&after={after}"),
        ] {
            let s = a.get(&path).await.status();
            assert!(s.is_client_error(), "{path} -> {s}");
        }
    }
}

/// The export reads the table in pages of 1,000: every record comes out once, in the list's
/// order, across the pages' edges, also when the sort field has many equal values (the id
/// breaks the ties) and when some records have none (they come after the rest).
#[tokio::test]
async fn a_record_export_spans_many_pages_in_order_with_every_record_once() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (tid, _table) = customers(&cast.admin).await;
    let rows = 2_345;
    // A note of a few hundred bytes per record (quotes, brackets, a backslash and a line break
    // included), so that the export (about 1 MB) goes out in many pieces.
    let memo =
        |i: usize| format!("{i}件目の備考、\"至急\" [要確認] C:\\tmp]\"[。\n{}", "長めの説明文です。".repeat(15));
    let mut csv = String::from("会社名,従業員数,メモ\n");
    for i in 0..rows {
        // Seven distinct staff counts, and every tenth record without one.
        let staff = if i % 10 == 9 { String::new() } else { (i % 7).to_string() };
        csv.push_str(&format!("会社{i:05},{staff},\"{}\"\n", memo(i).replace('"', "\"\"")));
    }
    let (s, v) = import(&cast.admin, &tid, "", csv.into_bytes()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let export = |query: &'static str| {
        let admin = &cast.admin;
        let tid = tid.clone();
        async move {
            let r = admin.get(&format!("/api/v1/tables/{tid}/export.csv{query}")).await;
            assert_eq!(r.status(), StatusCode::OK);
            let bytes = r.bytes().await.unwrap();
            let mut rdr = csv::Reader::from_reader(&bytes[3..]);
            let headers = rdr.headers().unwrap().clone();
            let name = headers.iter().position(|h| h == "会社名").unwrap();
            let staff = headers.iter().position(|h| h == "従業員数").unwrap();
            let note = headers.iter().position(|h| h == "メモ").unwrap();
            rdr.records()
                .map(|r| {
                    let r = r.unwrap();
                    let i: usize = r[name]["会社".len()..].parse().unwrap();
                    assert_eq!(r[note], memo(i), "the note of 会社{i:05}");
                    (r[name].to_owned(), r[staff].parse::<i64>().ok())
                })
                .collect::<Vec<(String, Option<i64>)>>()
        }
    };
    // Newest first: the import's last row leads.
    let newest = export("").await;
    assert_eq!(newest.len(), rows);
    // Shift_JIS: the same text, converted piece by piece.
    let utf8 = cast.admin.get(&format!("/api/v1/tables/{tid}/export.csv")).await.bytes().await.unwrap();
    assert!(utf8.len() > 900_000, "{} bytes", utf8.len());
    let sjis =
        cast.admin.get(&format!("/api/v1/tables/{tid}/export.csv?encoding=shift_jis")).await.bytes().await.unwrap();
    let (decoded, _, bad) = encoding_rs::SHIFT_JIS.decode(&sjis);
    assert!(!bad);
    assert_eq!(decoded, std::str::from_utf8(&utf8[3..]).unwrap());
    let expected: Vec<String> = (0..rows).rev().map(|i| format!("会社{i:05}")).collect();
    assert_eq!(newest.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(), expected);
    // By staff count: every value in order, ties by id (the import's order), empty ones last.
    let sorted = export("?sort=従業員数&dir=asc").await;
    assert_eq!(sorted.len(), rows);
    let mut expected: Vec<(Option<i64>, usize)> =
        (0..rows).map(|i| (if i % 10 == 9 { None } else { Some((i % 7) as i64) }, i)).collect();
    expected.sort_by_key(|(staff, i)| (staff.is_none(), *staff, *i));
    let expected: Vec<(String, Option<i64>)> = expected.into_iter().map(|(s, i)| (format!("会社{i:05}"), s)).collect();
    assert_eq!(sorted, expected);
    // Two keys: staff count from the most (empty ones still last), ties by name.
    let two = export("?sort=従業員数&dir=desc&sort=会社名&dir=asc").await;
    let mut expected: Vec<(Option<i64>, usize)> =
        (0..rows).map(|i| (if i % 10 == 9 { None } else { Some((i % 7) as i64) }, i)).collect();
    expected.sort_by_key(|(staff, i)| (staff.is_none(), std::cmp::Reverse(*staff), *i));
    let expected: Vec<(String, Option<i64>)> = expected.into_iter().map(|(s, i)| (format!("会社{i:05}"), s)).collect();
    assert_eq!(two, expected);
    // By a text field, from the end of the alphabet; and a keyword that every note holds,
    // so that the keyword's path pages through the whole table as well.
    let by_name = export("?sort=会社名&dir=desc").await;
    assert_eq!(
        by_name.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        newest.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
    );
    let found = export("?q=%E8%A6%81%E7%A2%BA%E8%AA%8D").await;
    assert_eq!(found, newest);
}

#[tokio::test]
async fn field_names_that_requests_use_for_other_fields_and_unusable_rules_are_refused() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (tid, table) = customers(&cast.admin).await;
    let fields = format!("/api/v1/tables/{tid}/fields");
    // A field named like another field's id, a system field or "id" would never be reachable
    // by that name in values, filters and sorts (the other one answers first).
    let other = field_id(&table, "メモ");
    for name in [other.as_str(), "id", "created_at", "作成日時 Created at"] {
        let (s, v) = cast.admin.post_json(&fields, json!({"name": name, "kind": {"type": "text"}})).await;
        assert_eq!(
            (s, v["error"]["fields"][0]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("reserved_name")),
            "{name}"
        );
    }
    let (s, _) = cast.admin.send_json(Method::PATCH, &format!("{fields}/{other}"), json!({"name": "updated_by"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Nor may a name hide how it reads (a direction override, a zero-width space).
    for name in ["請求書\u{202E}fdp.exe", "顧\u{200B}客"] {
        let (s, v) = cast.admin.post_json("/api/v1/tables", json!({"name": name})).await;
        assert_eq!(
            (s, v["error"]["fields"][0]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("control_chars")),
            "{name:?}"
        );
        let (s, _) = cast.admin.post_json(&fields, json!({"name": name, "kind": {"type": "text"}})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
    }
    // A unique field with a default: the second record left empty would collide with the first.
    let (s, v) = cast
        .admin
        .post_json(&fields, json!({"name": "z", "kind": {"type": "text"}, "rules": {"unique": true, "default": "x"}}))
        .await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_with_unique"))
    );
    // A date-time that is valid RFC 3339 but cannot be shown in UTC is refused, not stored as
    // a value that reads back empty.
    let (s, v) = cast
        .admin
        .post_json(
            &format!("/api/v1/tables/{tid}/records"),
            json!({"values": {"会社名": "遠い未来", "最終連絡": "9999-12-31T23:59:59-12:00"}}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("bad_datetime")),
        "{v}"
    );
}

/// A write of records whose values were checked against a design that changed before the
/// write reached the database is refused (409, nothing written) instead of storing a value
/// parsed for the old type under the new one; the same write then succeeds.
#[tokio::test]
async fn a_write_made_against_a_design_changed_meanwhile_is_refused_whole() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, _) = customers(a).await;
    let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "A"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let rid = v["record"]["id"].as_i64().unwrap();
    let send = |method: Method, path: String, body: Value| {
        let (client, url, csrf) = (a.client.clone(), a.url(&path), a.csrf.clone());
        tokio::spawn(async move {
            let r = client.request(method, url).header("x-csrf-token", csrf).json(&body).send().await.unwrap();
            let s = r.status();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        })
    };
    let records = format!("/api/v1/tables/{tid}/records");
    let writes = [
        (Method::POST, records.clone(), json!({"values": {"会社名": "B", "従業員数": 5}})),
        (Method::PATCH, format!("{records}/{rid}"), json!({"version": 1, "values": {"従業員数": 7}})),
    ];
    for (method, path, body) in writes.clone() {
        let held = app.hold_design_change(&tid).await;
        let request = send(method.clone(), path.clone(), body);
        // The request reads the design (the change is not committed) and waits to write.
        app.wait_for_waiting_writers(1).await;
        held.commit().await;
        let (s, v) = request.await.unwrap();
        assert_eq!(s, StatusCode::CONFLICT, "{method} {path}: {v}");
        assert_eq!(v["error"]["fields"][0]["code"], "design_changed", "{v}");
    }
    assert_eq!(record_count(a, &tid).await, 1, "nothing written");
    let (_, v) = a.get_json(&format!("{records}/{rid}")).await;
    assert_eq!(v["record"]["version"], 1);
    // A change of another table's design meanwhile is no reason to refuse.
    let (s, v) = a.post_json("/api/v1/tables", json!({"name": "別の表"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let other = v["table"]["id"].as_str().unwrap().to_owned();
    let (s, v) =
        a.post_json(&format!("/api/v1/tables/{other}/fields"), json!({"name": "名前", "kind": {"type": "text"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let held = app.hold_design_change(&other).await;
    let request = send(Method::POST, records.clone(), json!({"values": {"会社名": "C"}}));
    // (On SQLite it waits for the one write lock; on PostgreSQL nothing holds it up.)
    if app.backend() == "sqlite" {
        app.wait_for_waiting_writers(1).await;
    }
    held.commit().await;
    let (s, v) = request.await.unwrap();
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["record"]["id"].as_i64().unwrap();
    assert!(a.send_json(Method::DELETE, &format!("{records}/{id}"), json!({})).await.0.is_success());
    // Sent again, each reads the new design and is written.
    for (method, path, body) in writes {
        let (s, v) = send(method.clone(), path.clone(), body).await.unwrap();
        assert!(s.is_success(), "{method} {path}: {s} {v}");
    }
    assert_eq!(record_count(a, &tid).await, 2);
}

#[tokio::test]
async fn values_the_database_cannot_hold_are_refused_with_422_and_the_longest_text_is_stored_on_both_stores() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let records = format!("/api/v1/tables/{tid}/records");
    // NUL in a description: PostgreSQL cannot store it; refused before the store, everywhere.
    let (s, v) = a.post_json("/api/v1/tables", json!({"name": "x", "description": "a\u{0}b"})).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("control_chars")),
        "{v}"
    );
    let (s, v) = a.send_json(Method::PATCH, &format!("/api/v1/tables/{tid}"), json!({"description": "a\u{0}b"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let r = a.post_form("/tables", &[("name", "y"), ("description", "a\u{0}b")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = a.post_json("/api/v1/groups", json!({"name": "g", "description": "a\u{1b}[31m"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, _) = a.post_json("/api/v1/tables", json!({"name": "z", "description": "1行目\n2行目\tタブ"})).await;
    assert_eq!(s, StatusCode::CREATED, "line ends and tabs stay allowed");
    // A sign-in refused for a login ID holding NUL is recorded (so counted against the address).
    let before = app.raw_i64("SELECT COUNT(*) FROM audit_events WHERE action = 'login.failure'").await;
    let (s, _) = app
        .anonymous()
        .post_json("/api/v1/session", json!({"tenant": "acme", "login_id": "a\u{0}b", "password": "x"}))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(app.raw_i64("SELECT COUNT(*) FROM audit_events WHERE action = 'login.failure'").await, before + 1);
    let (s, v) = a.get_json("/api/v1/audit?login=a%00b").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // NUL in a filter, on every path that takes one, and in a page cursor.
    for path in [
        format!("{records}?filter.contains.会社名=a%00b"),
        format!("{records}?filter.starts_with.会社名=%00"),
        format!("/api/v1/tables/{tid}/export.csv?filter.contains.会社名=a%00b"),
    ] {
        let (s, v) = a.get_json(&path).await;
        assert_eq!(
            (s, v["error"]["fields"][0]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("control_chars")),
            "{path}: {v}"
        );
    }
    let r = a.get(&format!("/tables/{tid}?filter.contains.会社名=a%00b")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // base64url of [{"t":"\u0000"},1,[],"00000000"]
    let cursor = "W3sidCI6Ilx1MDAwMCJ9LDEsW10sIjAwMDAwMDAwIl0";
    let (s, v) = a.get_json(&format!("{records}?sort=会社名&dir=asc&after={cursor}")).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("bad_cursor")),
        "{v}"
    );
    // The longest single-line text (2,400 bytes: 600 characters of four bytes, none repeated, so
    // that PostgreSQL cannot compress them) fits PostgreSQL's index entry.
    let memo_table =
        a.post_json("/api/v1/tables", json!({"name": "長文"})).await.1["table"]["id"].as_str().unwrap().to_owned();
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{memo_table}/fields"),
            json!({"name": "題", "kind": {"type": "text"}, "rules": {"unique": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let long: String = (0..600).map(|i| char::from_u32(0x20000 + i).unwrap()).collect();
    let (s, v) = a.post_json(&format!("/api/v1/tables/{memo_table}/records"), json!({"values": {"題": long}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = a
        .post_json(&format!("/api/v1/tables/{memo_table}/records"), json!({"values": {"題": format!("{long}a")}}))
        .await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("too_long")),
        "{v}"
    );
    // A multiple choice holds every one of its 100 long choices at once (none repeated: about
    // 30 KB that PostgreSQL cannot compress into an index entry).
    let choices: Vec<String> =
        (0..100u32).map(|i| (0..100).map(|j| char::from_u32(0x4E00 + i * 100 + j).unwrap()).collect()).collect();
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{memo_table}/fields"),
            json!({"name": "多", "kind": {"type": "multi_choice", "choices": choices}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = a.post_json(&format!("/api/v1/tables/{memo_table}/records"), json!({"values": {"多": choices}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["record"]["id"].as_i64().unwrap();
    let (_, v) = a.get_json(&format!("/api/v1/tables/{memo_table}/records/{id}")).await;
    let held = v["record"]["values"].as_object().unwrap().values().filter_map(Value::as_array).map(Vec::len).max();
    assert_eq!(held, Some(100), "every choice is kept");
    // A blank default is no default: refused, so a required field cannot be left empty by it.
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/fields"),
            json!({"name": "必須", "kind": {"type": "text"}, "rules": {"required": true, "default": "  "}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("bad_default"), "{v}");
    // A link shows a field whose value says something: not a user's id.
    let (_, v) = a
        .post_json(&format!("/api/v1/tables/{memo_table}/fields"), json!({"name": "担当", "kind": {"type": "user"}}))
        .await;
    let user_field =
        v["table"]["fields"].as_array().unwrap().iter().find(|f| f["name"] == "担当").unwrap()["id"].clone();
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/fields"),
            json!({"name": "参照", "kind": {"type": "link", "table": memo_table, "show": user_field}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(!field_id(&table, "会社名").is_empty());
}

#[tokio::test]
async fn a_record_whose_value_an_older_rule_allowed_stays_editable_from_its_form() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let (_, v) =
        a.post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": "備考", "kind": {"type": "text"}})).await;
    let note = field_id(&v["table"], "備考");
    let (s, v) = a
        .post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "旧社", "備考": "短い"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let rid = v["record"]["id"].as_i64().unwrap();
    // A value longer than today's limit, as an older version let it be stored.
    let long = "長".repeat(810);
    app.upgrade_after(&format!(
        "UPDATE t_{} SET f_{} = '{long}' WHERE id = {rid}",
        tid.replace('-', ""),
        note.replace('-', "")
    ))
    .await;
    let name = field_id(&table, "会社名");
    let form = [("version", "1"), (name.as_str(), "新社"), (note.as_str(), long.as_str())];
    let r = a.post_form(&format!("/tables/{tid}/records/{rid}"), &form).await;
    assert!(r.status().is_redirection(), "the untouched long value is not checked again: {}", r.status());
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{rid}")).await;
    assert_eq!(v["record"]["values"][&name], "新社");
    assert_eq!(v["record"]["values"][&note].as_str().map(|s| s.chars().count()), Some(810), "and kept");
    // Changed, it must fit.
    let longer = format!("{long}長");
    let form = [("version", "2"), (note.as_str(), longer.as_str())];
    let r = a.post_form(&format!("/tables/{tid}/records/{rid}"), &form).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn pages_show_date_times_in_the_tenants_time_zone_and_the_api_in_utc() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let last = field_id(&table, "最終連絡");
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/records"),
            json!({"values": {"会社名": "時刻社", "最終連絡": "2026-04-01T09:30:00+09:00"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let rid = v["record"]["id"].as_i64().unwrap();
    assert_eq!(v["record"]["values"][&last], "2026-04-01T00:30:00Z", "the API in UTC");
    let grid = a.get(&format!("/tables/{tid}")).await.text().await.unwrap();
    assert!(
        grid.contains("<td class=\"nowrap\">2026-04-01 09:30</td>"),
        "the grid in the tenant's zone, as people write it, on one line"
    );
    let form = a.get(&format!("/tables/{tid}/records/{rid}")).await.text().await.unwrap();
    assert!(form.contains("value=\"2026-04-01 09:30\""), "as the form's hint writes it: {form}");
    // The form sent back as shown changes nothing (the same instant; not a new version).
    let name = field_id(&table, "会社名");
    let form = [("version", "1"), (name.as_str(), "時刻社"), (last.as_str(), "2026-04-01 09:30")];
    let r = a.post_form(&format!("/tables/{tid}/records/{rid}"), &form).await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{rid}")).await;
    assert_eq!(
        (v["record"]["values"][&last].as_str(), v["record"]["version"].as_i64()),
        (Some("2026-04-01T00:30:00Z"), Some(1))
    );
    // (Nor is it in the operation history as an update.)
    let (_, audit) = a.get_json("/api/v1/audit?action=record.update").await;
    assert_eq!(audit["events"], json!([]), "{audit}");
    // A link that shows a date-time shows it as pages do.
    let other =
        a.post_json("/api/v1/tables", json!({"name": "連絡"})).await.1["table"]["id"].as_str().unwrap().to_owned();
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{other}/fields"),
            json!({"name": "先", "kind": {"type": "link", "table": tid, "show": last}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = a.post_json(&format!("/api/v1/tables/{other}/records"), json!({"values": {"先": rid}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let grid = a.get(&format!("/tables/{other}")).await.text().await.unwrap();
    assert!(grid.contains("2026-04-01 09:30"), "{grid}");
    // The designer names the table a link points to and the field it shows; the form lists
    // the records by what they show, each with its number.
    let design = a.get(&format!("/tables/{other}/design")).await.text().await.unwrap();
    assert!(design.contains("→ 顧客 (customers) · 最終連絡"), "{design}");
    let (_, od) = a.get_json(&format!("/api/v1/tables/{other}")).await;
    let link = od["table"]["fields"][0]["id"].as_str().unwrap().to_owned();
    let retype = a.get(&format!("/tables/{other}/design/fields/{link}/type")).await.text().await.unwrap();
    assert!(retype.contains("→ 顧客 (customers) · 最終連絡"), "the settings page names it too: {retype}");
    let form = a.get(&format!("/tables/{other}/records/new")).await.text().await.unwrap();
    assert!(form.contains(&format!(">2026-04-01 09:30 (#{rid})</option>")), "{form}");
    // A link to no record and a bad number are told at once, not one round after another.
    let (s, v) = a
        .post_json(&format!("/api/v1/tables/{other}/fields"), json!({"name": "数", "kind": {"type": "integer"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) =
        a.post_json(&format!("/api/v1/tables/{other}/records"), json!({"values": {"先": 99999, "数": "x"}})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let codes: Vec<&str> = v["error"]["fields"].as_array().unwrap().iter().filter_map(|e| e["code"].as_str()).collect();
    assert!(codes.contains(&"not_a_number") && codes.contains(&"unknown_record"), "{v}");
    // A date and time without an offset, as a spreadsheet writes it, is the tenant's: in a
    // form, through the API and in a file; the export writes it so, and reads back the same.
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/records"),
            json!({"values": {"会社名": "表計算社", "最終連絡": "2026/4/2 8:05"}}),
        )
        .await;
    assert_eq!((s, &v["record"]["values"][&last]), (StatusCode::CREATED, &json!("2026-04-01T23:05:00Z")), "{v}");
    let (s, v) = import(a, &tid, "", "会社名,最終連絡\n取込社,2026-04-03 10:00\n".into()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?filter.eq.会社名=取込社")).await;
    assert_eq!(v["records"][0]["values"][&last], "2026-04-03T01:00:00Z", "{v}");
    let csv = a.get(&format!("/api/v1/tables/{tid}/export.csv?col=会社名&col=最終連絡&sort=会社名&dir=asc")).await;
    let disposition = csv.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(
        disposition.contains("filename*=UTF-8''%E9%A1%A7%E5%AE%A2%20%28customers%29-2026-04-01.csv"),
        "{disposition}"
    );
    let csv = csv.text().await.unwrap();
    assert!(csv.contains("取込社,2026-04-03 10:00:00") && csv.contains("時刻社,2026-04-01 09:30:00"), "{csv}");
    let (s, v) = import(a, &tid, "?key=会社名", csv.into_bytes()).await;
    assert_eq!((s, &v["updated"]), (StatusCode::OK, &json!(0)), "read back unchanged: {v}");
}

/// A link may be written and filtered by the text its record shows, as people read it; and
/// where the target has too many records for a list, the form's text input shows the linked
/// record ("#12 株式会社テスト") rather than a bare number.
#[tokio::test]
async fn a_link_is_written_and_filtered_by_the_text_its_record_shows() {
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
    let mut ids = Vec::new();
    for name in ["株式会社リンク", "同名商事", "同名商事"] {
        let (_, v) = a.post_json(&format!("/api/v1/tables/{cust}/records"), json!({"values": {"会社名": name}})).await;
        ids.push(v["record"]["id"].as_i64().unwrap());
    }
    let create = format!("/api/v1/tables/{orders}/records");
    let order = |value: Value| a.post_json(&create, json!({"values": {"顧客": value}}));
    // By the text it shows, by "#n" and by "#n and the text" (as the form shows a link).
    for (value, want) in [
        (json!("株式会社リンク"), ids[0]),
        (json!(format!("#{}", ids[1])), ids[1]),
        (json!(format!("#{} 同名商事", ids[2])), ids[2]),
    ] {
        let (s, v) = order(value.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{value}: {v}");
        assert_eq!(v["record"]["values"][&link], want, "{value}");
    }
    for (value, code) in [("存在しない会社", "no_link_shows"), ("同名商事", "ambiguous_link")] {
        let (s, v) = order(json!(value)).await;
        assert_eq!(
            (s, v["error"]["fields"][0]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{v}"
        );
        assert_eq!(v["error"]["fields"][0]["field"], link.as_str());
    }
    // Filters name them so too: every record showing the text.
    let list = format!("/api/v1/tables/{orders}/records");
    let count = |q: &'static str| {
        let url = format!("{list}?{q}");
        async move {
            let (s, v) = a.get_json(&url).await;
            assert_eq!(s, StatusCode::OK, "{q}: {v}");
            v["records"].as_array().unwrap().len()
        }
    };
    assert_eq!(count("filter.eq.顧客=株式会社リンク").await, 1);
    assert_eq!(count("filter.eq.顧客=同名商事").await, 2);
    let (_, v) = a.get_json(&format!("{list}?filter.any_of.顧客=株式会社リンク,{}", ids[1])).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 2, "{v}");
    // A text no record shows is said so (a name with a comma, split by "any of", would
    // otherwise match nothing without a word); the list's own label finds its record.
    let (s, v) = a.get_json(&format!("{list}?filter.eq.顧客=存在しない会社")).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_link_shows"))
    );
    let (s, v) = a.get_json(&format!("{list}?filter.eq.顧客=株式会社リンク (%23{})", ids[0])).await;
    assert_eq!((s, v["records"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{v}");
    // A saved view keeps the text, to find the records showing it when it runs.
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{orders}/views"),
            json!({"name": "同名", "filters": [{"field": "顧客", "op": "eq", "value": "同名商事"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["view"]["filters"][0]["op"].as_str(), v["view"]["filters"][0]["value"].as_str()),
        (Some("eq"), Some("同名商事")),
        "{v}"
    );
    let view = v["view"]["id"].as_str().unwrap().to_owned();
    let (_, v) = a.get_json(&format!("{list}?view={view}")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 2, "{v}");
    // A text given many times is looked up once; more texts than a filter takes are refused
    // before any is looked up (each is a query of the target table).
    let twice = vec!["同名商事"; 50].join(",");
    let (s, v) = a.get_json(&format!("{list}?filter.any_of.顧客={twice}")).await;
    assert_eq!((s, v["records"].as_array().map(Vec::len)), (StatusCode::OK, Some(2)), "{v}");
    let many = vec!["同名商事"; 101].join(",");
    let (s, v) = a.get_json(&format!("{list}?filter.any_of.顧客={many}")).await;
    assert_eq!((s, v["error"]["fields"][0]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("too_many")));
    let filters = vec!["filter.eq.顧客=同名商事"; 21].join("&");
    let (s, v) = a.get_json(&format!("{list}?{filters}")).await;
    assert_eq!((s, v["error"]["fields"][0]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("too_many")));
    // More records showing the text than a filter takes: refused, not cut.
    let mut many = String::from("会社名\n");
    for _ in 0..101 {
        many.push_str("支店\n");
    }
    let (s, v) = import(a, &cust, "", many.into_bytes()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = a.get_json(&format!("{list}?filter.eq.顧客=支店")).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("too_many")),
        "{v}"
    );
    // The grid says so on the page, keeping its filter row to correct.
    let r = a.get(&format!("/tables/{orders}?filter.eq.顧客=支店")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "as any query that cannot run");
    let page = r.text().await.unwrap();
    assert!(page.contains("role=\"alert\"") && page.contains("value=\"支店\""), "{page}");
    // Beyond 500 customers the form takes text, and shows the linked record in it.
    let mut csv = String::from("会社名\n");
    for i in 0..400 {
        csv.push_str(&format!("顧客{i:03}\n"));
    }
    let (s, v) = import(a, &cust, "", csv.into_bytes()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let form = a.get(&format!("/tables/{orders}/records/1")).await.text().await.unwrap();
    assert!(form.contains(&format!("value=\"#{} 株式会社リンク\"", ids[0])), "{form}");
    // Saved as shown: nothing changes.
    let r = a
        .post_form(
            &format!("/tables/{orders}/records/1"),
            &[("version", "1"), ("fields", &link), (&link, &format!("#{} 株式会社リンク", ids[0]))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, v) = a.get_json(&format!("/api/v1/tables/{orders}/records/1")).await;
    assert_eq!((v["record"]["values"][&link].as_i64(), v["record"]["version"].as_i64()), (Some(ids[0]), Some(1)));
    // Changed by typing the other company's name.
    let r = a
        .post_form(&format!("/tables/{orders}/records/1"), &[("version", "1"), ("fields", &link), (&link, "顧客042")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, v) = a.get_json(&format!("/api/v1/tables/{orders}/records/1")).await;
    assert_eq!(v["record"]["lookups"][&link], "顧客042", "{v}");
}

#[tokio::test]
async fn a_record_forms_error_summary_names_each_field_and_links_to_it() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let (staff, name) = (field_id(&table, "従業員数"), field_id(&table, "会社名"));
    let form = [(name.as_str(), ""), (staff.as_str(), "many")];
    let r = a.post_form(&format!("/tables/{tid}/records"), &form).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains(&format!("<a href=\"#{name}\">会社名</a>: This field is required.")), "{body}");
    assert!(body.contains(&format!("<a href=\"#{staff}\">従業員数</a>: Enter a whole number")), "{body}");
    // Each field's limits are shown under it, so that "above the maximum" is not a guess.
    for limits in ["Minimum: 0 · Maximum: 1000000", "At most, characters: 50", "Decimal places, at most: 2"] {
        assert!(body.contains(limits), "{limits}");
    }
    // A date the form refused comes back as typed, in a text input (a browser would empty a
    // date input holding it); a valid one stays a date input.
    let day = field_id(&table, "契約日");
    for (typed, input) in [("2026-02-30", "text"), ("2026-02-28", "date")] {
        let form = [(name.as_str(), ""), (day.as_str(), typed)];
        let r = a.post_form(&format!("/tables/{tid}/records"), &form).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = r.text().await.unwrap();
        assert!(body.contains(&format!("id=\"{day}\" name=\"{day}\" type=\"{input}\" value=\"{typed}\"")), "{body}");
    }
}

#[tokio::test]
async fn the_grid_pages_forward_by_its_links_and_back_to_the_first_page() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "連番"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    let (s, v) =
        a.post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": "番", "kind": {"type": "integer"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let csv: String = std::iter::once("番\n".to_owned()).chain((1..=120).map(|i| format!("{i}\n"))).collect();
    let (s, v) = import(a, &tid, "", csv.into_bytes()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The links of a page: (label, href), with the HTML's escaped & read back.
    let links = |page: &str| -> Vec<(String, String)> {
        let Some(pager) = page.split("<p class=\"pager\">").nth(1).and_then(|p| p.split("</p>").next()) else {
            return Vec::new();
        };
        pager
            .split("<a class=\"button\" href=\"")
            .skip(1)
            .filter_map(|l| {
                let (href, rest) = l.split_once("\">")?;
                Some((rest.split('<').next()?.to_owned(), href.replace("&#38;", "&").replace("&amp;", "&")))
            })
            .collect()
    };
    let first_row = |page: &str| -> i64 {
        let cell = page
            .split("<td class=\"num\"><a href=\"")
            .nth(1)
            .and_then(|c| c.split("</td><td class=\"nowrap number\">").nth(1));
        cell.and_then(|c| c.split('<').next()).and_then(|n| n.parse().ok()).unwrap_or(-1)
    };
    let start = format!("/tables/{tid}?sort=%E7%95%AA&dir=asc");
    let page1 = a.get(&start).await.text().await.unwrap();
    assert_eq!(first_row(&page1), 1);
    let l1 = links(&page1);
    assert_eq!(
        l1.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["Next page"],
        "no first-page link on the first page"
    );
    let page2 = a.get(&l1[0].1).await.text().await.unwrap();
    assert_eq!(first_row(&page2), 51, "the next page starts after the last row shown");
    let names = |l: &[(String, String)]| l.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>();
    let l2 = links(&page2);
    assert_eq!(names(&l2), ["First page", "Previous page", "Next page"]);
    let page3 = a.get(&l2[2].1).await.text().await.unwrap();
    assert_eq!(first_row(&page3), 101);
    let l3 = links(&page3);
    assert_eq!(names(&l3), ["First page", "Previous page"], "the last page has no next");
    let back = a.get(&l3[0].1).await.text().await.unwrap();
    assert_eq!(first_row(&back), 1, "the first page of the same sort");
    assert!(!l3[0].1.contains("after="), "{}", l3[0].1);
    // Previous page, twice: the way back is carried in the links.
    let page2 = a.get(&l3[1].1).await.text().await.unwrap();
    assert_eq!(first_row(&page2), 51);
    let l2 = links(&page2);
    assert_eq!(names(&l2), ["First page", "Previous page", "Next page"]);
    let page1 = a.get(&l2[1].1).await.text().await.unwrap();
    assert_eq!(first_row(&page1), 1);
    assert_eq!(names(&links(&page1)), ["Next page"]);
    // Forward again from there comes to the same page.
    assert_eq!(first_row(&a.get(&l2[2].1).await.text().await.unwrap()), 101);
    // A record opened from this page goes back to it when saved.
    let link =
        page2.split("<td class=\"num\"><a href=\"").nth(1).unwrap().split('"').next().unwrap().replace("&#38;", "&");
    assert!(link.contains("?from="), "{link}");
    let form = a.get(&link).await.text().await.unwrap();
    let from = form.split("name=\"from\" value=\"").nth(1).unwrap().split('"').next().unwrap().replace("&#38;", "&");
    let version = form.split("name=\"version\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let rid = link.split("/records/").nth(1).unwrap().split('?').next().unwrap().to_owned();
    // Saved as it was (nothing changes): back to that page all the same.
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{rid}")).await;
    let (num, value) =
        v["record"]["values"].as_object().unwrap().iter().next().map(|(k, v)| (k.clone(), v.to_string())).unwrap();
    let form = [
        ("version", version.as_str()),
        ("from", from.as_str()),
        ("fields", num.as_str()),
        (num.as_str(), value.as_str()),
    ];
    let r = a.post_form(&format!("/tables/{tid}/records/{rid}"), &form).await;
    let back_to = crate::location(&r);
    assert!(back_to.contains("after=") && back_to.contains("done=record_saved"), "{back_to}");
    let after = |u: &str| u.split("after=").nth(1).map(|a| a.split('&').next().unwrap_or_default().to_owned());
    assert_eq!(after(&back_to), after(&from), "the same page of the grid");
    // A page reached by an address without the way back has no "Previous page".
    let bare = l2[2].1.split("&back=").next().unwrap().to_owned();
    assert_eq!(names(&links(&a.get(&bare).await.text().await.unwrap())), ["First page"]);
    // The page size asked for, and a saved view, are kept by the links.
    let page1 = a.get(&format!("{start}&limit=40")).await.text().await.unwrap();
    let page2 = a.get(&links(&page1)[0].1).await.text().await.unwrap();
    assert_eq!(first_row(&page2), 41);
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/views"),
            json!({"name": "逆順", "shared": false, "sort": [{"field": "番", "dir": "desc"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let vid = v["view"]["id"].as_str().unwrap().to_owned();
    let page1 = a.get(&format!("/tables/{tid}?view={vid}")).await.text().await.unwrap();
    assert_eq!(first_row(&page1), 120);
    let next = &links(&page1)[0].1;
    assert!(next.contains(&format!("view={vid}")), "{next}");
    let page2 = a.get(next).await.text().await.unwrap();
    assert_eq!(first_row(&page2), 70);
    assert!(page2.contains("aria-current"), "the view is still the current one");
}

#[tokio::test]
async fn an_import_refuses_an_unclosed_quote_a_key_it_lacks_and_a_record_number_twice_or_unknown() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, _) = customers(a).await;
    let code = |v: &Value| (v["error"]["fields"][0]["field"].clone(), v["error"]["fields"][0]["code"].clone());
    // A quote opened in the last column and never closed: the reader would make the rest of
    // the file one cell of row 2 and drop rows 3 and 4 unseen.
    let (s, v) = import(a, &tid, "", "会社名,メモ\nA社,\"abc\nB社,def\nC社,ghi\n".into()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(code(&v), (json!("row:2"), json!("unclosed_quote")));
    // Quotes the reader reads as closed pass: "" inside, a quote within an unquoted cell, CRLF.
    let (s, v) =
        import(a, &tid, "", "会社名,メモ\r\n\"A \"\"社\"\"\",\"複数\r\n行\"\r\nB社 5\",\"x\"\r\n".into()).await;
    assert_eq!((s, &v["inserted"]), (StatusCode::OK, &json!(2)), "{v}");
    // Rows are numbered as every import error numbers them: a record with line breaks in a
    // cell is one row, a blank line is one.
    let (s, v) = import(a, &tid, "", "会社名,メモ\nC社,\"1\n2\n3\"\n\nD社,\"open\n".into()).await;
    assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, (json!("row:4"), json!("unclosed_quote"))));
    assert_eq!(record_count(a, &tid).await, 2, "nothing of the refused files");
    // An empty file (or its BOM alone) is said to be empty.
    for empty in [&b""[..], &b"\xEF\xBB\xBF"[..], &b"\r\n\r\n"[..]] {
        let (s, v) = import(a, &tid, "", empty.to_vec()).await;
        assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, (json!("file"), json!("empty_file"))), "{v}");
    }
    let (s, v) = import(a, &tid, "?encoding=shift_jis", b"\r\n".to_vec()).await;
    assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, (json!("file"), json!("empty_file"))), "{v}");
    // A misspelt key (`Key=`) is refused, not read as an import of new records.
    let (s, v) = import(a, &tid, "?Key=会社名", "会社名,メモ\nC社,x\n".into()).await;
    assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, (json!("Key"), json!("unknown_parameter"))));
    assert_eq!(record_count(a, &tid).await, 2, "nothing imported");
    // Updating by a key the file has no column for is refused, not turned into inserts.
    let (s, v) = import(a, &tid, "?key=会社名", "メモ\nchanged\n".into()).await;
    assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, (json!("key"), json!("key_not_in_file"))));
    assert_eq!(record_count(a, &tid).await, 2);
    // By record number: written with and without its prefix it is one key; a number the
    // table does not have names no record and is not made anew.
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/fields"),
            json!({"name": "番号", "kind": {"type": "auto_number", "prefix": "CU-", "digits": 4}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let memo = field_id(&v["table"], "メモ");
    let number = field_id(&v["table"], "番号");
    let (_, list) = a.get_json(&format!("/api/v1/tables/{tid}/records?sort=番号&dir=asc")).await;
    let first = list["records"][0]["values"][&number].as_str().unwrap().to_owned();
    let n: i64 = first.trim_start_matches("CU-").parse().unwrap();
    let twice = format!("番号,メモ\n{first},one\n{n},two\n");
    let (s, v) = import(a, &tid, "?key=番号", twice.into_bytes()).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, (json!(format!("row:3:{number}")), json!("duplicate_key")))
    );
    let (s, v) = import(a, &tid, "?key=番号", "番号,メモ\nCU-9999,ghost\n".into()).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, (json!(format!("row:2:{number}")), json!("no_such_record")))
    );
    assert_eq!(record_count(a, &tid).await, 2);
    let (s, v) = import(a, &tid, "?key=番号", format!("番号,メモ\n{n},by number\n").into_bytes()).await;
    assert_eq!((s, &v["updated"]), (StatusCode::OK, &json!(1)), "{v}");
    let (_, list) = a.get_json(&format!("/api/v1/tables/{tid}/records?sort=番号&dir=asc")).await;
    assert_eq!(list["records"][0]["values"][&memo], "by number");
    // The mapping page offers the record number as the column to find records by.
    let form = daicho_testkit::reqwest::multipart::Form::new()
        .text("csrf", a.csrf.clone())
        .text("encoding", "auto")
        .text("key", number.clone())
        .part(
            "file",
            daicho_testkit::reqwest::multipart::Part::bytes(format!("番号,備考\n{first},x\n").into_bytes())
                .file_name("back.csv"),
        );
    let r = a.client.post(a.url(&format!("/tables/{tid}/import"))).multipart(form).send().await.unwrap();
    let page = r.text().await.unwrap();
    assert!(page.contains(&format!("<option value=\"{number}\" selected")), "record number mapped: {page}");
}

#[tokio::test]
async fn an_import_names_the_row_whose_unique_value_a_record_already_holds() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let company = field_id(&table, "会社名");
    let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "既存商事"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Row 1,203 of a larger file: past the first part the import hands to the database.
    let mut csv = String::from("会社名,従業員数\n");
    for i in 0..1_500 {
        csv.push_str(&if i == 1_201 { "既存商事,1\n".to_owned() } else { format!("新規{i},1\n") });
    }
    let (s, v) = import(a, &tid, "", csv.into_bytes()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let e = &v["error"]["fields"][0];
    assert_eq!(
        (e["field"].as_str(), e["code"].as_str()),
        (Some(format!("row:1203:{company}").as_str()), Some("taken")),
        "{v}"
    );
    assert_eq!(record_count(a, &tid).await, 1, "nothing half-imported");
    // An update by key is not a clash with its own record.
    let (s, v) = import(a, &tid, "?key=会社名", "会社名,従業員数\n既存商事,7\n".into()).await;
    assert_eq!((s, &v["updated"]), (StatusCode::OK, &json!(1)), "{v}");
    // Nor a value an earlier row of the file takes away from its record: K11 gives up B, then
    // K10 takes it (the database, writing in the file's order, accepts it).
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/fields"),
            json!({"name": "コード", "kind": {"type": "text"}, "rules": {"unique": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for (code, name) in [("K10", "A"), ("K11", "B")] {
        let (s, v) = a
            .post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": name, "コード": code}}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, v) = import(a, &tid, "?key=コード", "コード,会社名\nK11,C\nK10,B\n".into()).await;
    assert_eq!((s, &v["updated"]), (StatusCode::OK, &json!(2)), "{v}");
    // A value only a later row frees is a real clash (K11 still holds D when row 2 is
    // written), reported by row.
    let (s, v) = import(a, &tid, "?key=コード", "コード,会社名\nK11,D\nK10,C\n".into()).await;
    assert_eq!((s, &v["updated"]), (StatusCode::OK, &json!(2)), "{v}");
    let (s, v) = import(a, &tid, "?key=コード", "コード,会社名\nK10,D\nK11,E\n".into()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["fields"][0]["field"], format!("row:2:{company}"), "{v}");
}

#[tokio::test]
async fn an_update_import_of_many_rows_updates_every_key_and_inserts_the_keys_it_does_not_find() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let staff = field_id(&table, "従業員数");
    let mut csv = String::from("会社名,従業員数\n");
    for i in 0..1_200 {
        csv.push_str(&format!("会社{i},{i}\n"));
    }
    let (s, v) = import(a, &tid, "", csv.into_bytes()).await;
    assert_eq!((s, &v["inserted"]), (StatusCode::OK, &json!(1_200)), "{v}");
    // Every key again, over more than one part of 1,000 rows, with two new keys among them.
    let mut csv = String::from("会社名,従業員数\n");
    for i in 0..1_200 {
        if i == 600 {
            csv.push_str("新しい会社,7\n");
        }
        csv.push_str(&format!("会社{i},{}\n", i + 10_000));
    }
    csv.push_str("最後の新しい会社,8\n");
    let (s, v) = import(a, &tid, "?key=会社名", csv.into_bytes()).await;
    assert_eq!((s, &v["inserted"], &v["updated"]), (StatusCode::OK, &json!(2), &json!(1_200)), "{v}");
    assert_eq!(record_count(a, &tid).await, 1_202);
    for (name, want) in [("会社0", 10_000), ("会社599", 10_599), ("会社1199", 11_199), ("新しい会社", 7)] {
        let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?filter.eq.会社名={name}")).await;
        assert_eq!(v["records"][0]["values"][&staff], want, "{name}: {v}");
    }
    // Rows that change different fields (a value the record holds is no change), written part
    // by part in multi-row statements: each record's fields, version, history and search text.
    let memo = field_id(&table, "メモ");
    let mut csv = String::from("会社名,従業員数,メモ\n");
    for i in 0..1_200 {
        let staff = if i % 5 == 0 { i + 10_000 } else { i + 20_000 };
        let note = if i % 3 == 0 { String::new() } else { format!("新メモ{i}") };
        csv.push_str(&format!("会社{i},{staff},{note}\n"));
    }
    let (s, v) = import(a, &tid, "?key=会社名", csv.into_bytes()).await;
    // (Rows 0, 15, 30, … change neither field: 80 of them.)
    assert_eq!((s, &v["updated"], &v["unchanged"]), (StatusCode::OK, &json!(1_120), &json!(80)), "{v}");
    let t = tid.as_str();
    let record = |name: &'static str| async move {
        let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records?filter.eq.会社名={name}")).await;
        v["records"][0].clone()
    };
    let history = |id: i64| async move {
        let (_, h) = a.get_json(&format!("/api/v1/tables/{t}/records/{id}/history")).await;
        h["entries"][0]["changes"].clone()
    };
    // Both fields changed; one only; the other only; neither (no history entry).
    for (name, changed_staff, changed_memo) in
        [("会社1198", true, true), ("会社3", true, false), ("会社10", false, true), ("会社15", false, false)]
    {
        let r = record(name).await;
        let i: i64 = name.trim_start_matches("会社").parse().unwrap();
        let id = r["id"].as_i64().unwrap();
        assert_eq!(r["values"][&staff], json!(if changed_staff { i + 20_000 } else { i + 10_000 }), "{r}");
        let note = if changed_memo { json!(format!("新メモ{i}")) } else { Value::Null };
        assert_eq!(r["values"][&memo], note, "{r}");
        let mut want = Vec::new();
        if changed_staff {
            want.push(json!({"field": staff, "before": i + 10_000, "after": i + 20_000}));
        }
        if changed_memo {
            want.push(json!({"field": memo, "before": null, "after": format!("新メモ{i}")}));
        }
        let h = history(id).await;
        if want.is_empty() {
            assert_eq!(h, json!([{"field": staff, "before": i, "after": i + 10_000}]), "{name}: the last change: {h}");
        } else {
            let mut got: Vec<Value> = h.as_array().unwrap().clone();
            got.sort_by_key(|c| c["field"].as_str().unwrap().to_owned());
            want.sort_by_key(|c| c["field"].as_str().unwrap().to_owned());
            assert_eq!(got, want, "{name}");
        }
    }
    // The keyword index holds the new text.
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?q=新メモ1198")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 1, "{v}");
}

#[tokio::test]
async fn a_bulk_edit_of_a_checkbox_takes_a_tick_as_people_write_it_and_refuses_anything_else() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let active = field_id(&table, "有効");
    let mut ids = Vec::new();
    for name in ["一社", "二社"] {
        let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": name}})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["record"]["id"].as_i64().unwrap().to_string());
    }
    let values = || async {
        let (_, v) = a.get_json(&format!("/api/v1/tables/{}/records?sort=id&dir=asc", &tid)).await;
        v["records"].as_array().unwrap().iter().map(|r| r["values"][&active].clone()).collect::<Vec<_>>()
    };
    async fn bulk_set(
        a: &Persona,
        tid: &str,
        ids: &[String],
        field: &str,
        value: &str,
    ) -> daicho_testkit::reqwest::Response {
        let form =
            [("id", ids[0].as_str()), ("id", ids[1].as_str()), ("action", "set"), ("field", field), ("value", value)];
        a.post_form(&format!("/tables/{tid}/bulk"), &form).await
    }
    let set = |value: &'static str| bulk_set(a, &tid, &ids, &active, value);
    for (typed, want) in [("✓", true), ("いいえ", false), ("はい", true), ("", false)] {
        let r = set(typed).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{typed}");
        assert_eq!(values().await, [json!(want), json!(want)], "{typed}");
    }
    // Anything else is refused, not taken as unticked.
    set("はい").await;
    let grid = a.get(&format!("/tables/{}", &tid)).await.text().await.unwrap();
    assert!(
        grid.contains("<span aria-hidden=\"true\">✓</span><span class=\"sr\">ticked</span>"),
        "a screen reader hears it"
    );
    let r = set("abc").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The page says so at its top, naming the field, and keeps the form as it was sent.
    let page = r.text().await.unwrap();
    assert!(page.contains("Nothing was changed: 有効: Enter TRUE or FALSE"), "{page}");
    assert!(
        page.contains(&format!("<option value=\"{active}\" data-values=\"TRUE\nFALSE\" selected>"))
            && page.contains("name=\"value\" value=\"abc\"")
    );
    assert!(page.contains("It takes: TRUE, FALSE</p>"), "the values it takes are listed");
    for id in &ids {
        assert!(page.contains(&format!("name=\"id\" value=\"{id}\" checked")), "{id} still ticked");
    }
    assert_eq!(values().await, [json!(true), json!(true)], "nothing changed");
}

#[tokio::test]
async fn an_exported_file_with_its_updated_at_column_does_not_undo_a_later_edit() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let memo = field_id(&table, "メモ");
    let (s, v) = a
        .post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "往復社", "メモ": "初め"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["record"]["id"].as_i64().unwrap();
    let export = || async {
        a.get(&format!("/api/v1/tables/{}/export.csv?col=会社名&col=メモ&col=updated_at", &tid))
            .await
            .text()
            .await
            .unwrap()
    };
    let file = export().await;
    assert!(file.contains("往復社,初め,"), "{file}");
    // Someone else edits the record a few minutes later.
    app.clock.advance(time::Duration::minutes(3));
    let (s, v) = a
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{tid}/records/{id}"),
            json!({"version": 1, "values": {"メモ": "他の人の変更"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The older file, edited and imported: refused by row, nothing written.
    let (s, v) = import(a, &tid, "?key=会社名", file.replace("初め", "私の変更").into_bytes()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["fields"][0]["code"], "changed_since_export", "{v}");
    assert!(v["error"]["fields"][0]["field"].as_str().unwrap().starts_with("row:2:"), "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{id}")).await;
    assert_eq!(v["record"]["values"][&memo], "他の人の変更");
    // The import page, too: the file goes straight to the import (its columns all name
    // fields, "updated at" included), and is refused by row.
    let upload = |csv: String, key: String| {
        use daicho_testkit::reqwest::multipart::{Form, Part};
        let form = Form::new()
            .text("csrf", a.csrf.clone())
            .part("file", Part::bytes(csv.into_bytes()).file_name("edited.csv"))
            .text("encoding", "auto")
            .text("key", key);
        a.client.post(a.url(&format!("/tables/{tid}/import"))).multipart(form).send()
    };
    let key = field_id(&table, "会社名");
    let r = upload(file.replace("初め", "私の変更"), key.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("This record was changed after the file was exported"), "{page}");
    // A file with another column goes to the mapping of its columns, "updated at" chosen for
    // its own column (read, not written).
    let other = file.replacen("メモ", "備考欄", 1);
    let r = upload(other, key.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("selected>更新日時 Updated at (checked, not written)</option>"), "{page}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{id}")).await;
    assert_eq!(v["record"]["values"][&memo], "他の人の変更");
    // As a spreadsheet saves the time again (to the minute), the same.
    let minutes = file.lines().map(|l| l.strip_suffix(":00").unwrap_or(l).to_owned()).collect::<Vec<_>>().join("\n");
    let (s, v) = import(a, &tid, "?key=会社名", minutes.replace("初め", "私の変更").into_bytes()).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("changed_since_export")),
        "{v}"
    );
    // A file exported after the edit imports.
    let file = export().await;
    let (s, v) = import(a, &tid, "?key=会社名", file.replace("他の人の変更", "私の変更").into_bytes()).await;
    assert_eq!((s, &v["updated"]), (StatusCode::OK, &json!(1)), "{v}");
    // The importer is told which column was read and not written.
    assert_eq!(v["not_written"], json!(["更新日時 Updated at"]), "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{id}")).await;
    assert_eq!(v["record"]["values"][&memo], "私の変更");
    // The import page says so as well.
    let page = a.get(&format!("/tables/{tid}?done=imported&inserted=0&updated=1&not_written=1")).await;
    let page = page.text().await.unwrap();
    assert!(page.contains("1 of the file&#39;s columns were read but not written"), "{page}");
}

#[tokio::test]
async fn every_record_matching_is_refused_when_the_records_matching_changed_since_the_page_showed_them() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let (memo, active) = (field_id(&table, "メモ"), field_id(&table, "有効"));
    for name in ["一社", "二社"] {
        let (s, v) = a
            .post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": name, "メモ": "対象"}}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    // The grid's bulk form carries the count it showed.
    let page = a.get(&format!("/tables/{tid}?filter.eq.{memo}=対象")).await.text().await.unwrap();
    assert!(page.contains("name=\"expect\" value=\"2\""), "{page}");
    let query = format!("filter.eq.{memo}=%E5%AF%BE%E8%B1%A1");
    let url = format!("/tables/{tid}/bulk");
    let post = |expect: &'static str| {
        let form = [
            ("query", query.clone()),
            ("all_matching", "on".to_owned()),
            ("expect", expect.to_owned()),
            ("action", "set".to_owned()),
            ("field", active.clone()),
            ("value", "✓".to_owned()),
        ];
        let url = url.clone();
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            a.post_form(&url, &form).await
        }
    };
    // A third record matches now: the page's "every record matching" (2) is not what matches.
    let (s, v) = a
        .post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "三社", "メモ": "対象"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let r = post("2").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("The records matching have changed since the page was shown"));
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?filter.eq.{active}=true&count=true")).await;
    assert_eq!(v["count"], 0, "nothing changed");
    // As the page shows them now.
    assert_eq!(post("3").await.status(), StatusCode::SEE_OTHER);
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?filter.eq.{active}=true&count=true")).await;
    assert_eq!(v["count"], 3);
}

#[tokio::test]
async fn a_bulk_action_leaves_alone_records_changed_after_the_page_showed_them_even_when_the_count_is_the_same() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let (memo, active) = (field_id(&table, "メモ"), field_id(&table, "有効"));
    let mut ids = Vec::new();
    for name in ["一社", "二社"] {
        let (s, v) = a
            .post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": name, "メモ": "対象"}}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["record"]["id"].as_i64().unwrap());
    }
    let shown_at = |page: &str| {
        let at = page.split("name=\"shown_at\" value=\"").nth(1).unwrap();
        at[..at.find('"').unwrap()].to_owned()
    };
    let page = a.get(&format!("/tables/{tid}?filter.eq.{memo}=対象")).await.text().await.unwrap();
    assert!(page.contains("name=\"expect\" value=\"2\""), "{page}");
    let at = shown_at(&page);
    let query = format!("filter.eq.{memo}=%E5%AF%BE%E8%B1%A1");
    let url = format!("/tables/{tid}/bulk");
    let post = |at: String, extra: Vec<(&'static str, String)>| {
        let mut form = vec![
            ("query", query.clone()),
            ("shown_at", at),
            ("action", "set".to_owned()),
            ("field", active.clone()),
            ("value", "✓".to_owned()),
        ];
        form.extend(extra);
        let url = url.clone();
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            a.post_form(&url, &form).await
        }
    };
    // Later, one record leaves the selection and another comes in: still two match.
    app.clock.advance(time::Duration::minutes(1));
    let (s, v) = a
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{tid}/records/{}", ids[1]),
            json!({"version": 1, "values": {"メモ": "対象外"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = a
        .post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "三社", "メモ": "対象"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let count_ticked = || async {
        let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?filter.eq.{active}=true&count=true")).await;
        v["count"].as_u64()
    };
    // "Every record matching" as the page counted it (2) is not what it showed: refused.
    let r = post(at.clone(), vec![("all_matching", "on".into()), ("expect", "2".into())]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("A record chosen was changed by someone after the page was shown"), "{page}");
    assert_eq!(count_ticked().await, Some(0), "nothing changed");
    // A record ticked and changed since the page showed it is not overwritten either.
    let r = post(at.clone(), vec![("id", ids[0].to_string()), ("id", ids[1].to_string())]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(count_ticked().await, Some(0), "nothing changed");
    // The page shown again (the refusal's own) carries its own time: as the records are now.
    let again = shown_at(&page);
    assert_ne!(again, at);
    let r = post(again, vec![("all_matching", "on".into()), ("expect", "2".into())]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(count_ticked().await, Some(2));

    // The API: `unchanged_since` as RFC 3339.
    let bulk_delete = format!("/api/v1/tables/{tid}/records/bulk-delete");
    let del = |since: &str| {
        let body = json!({"ids": [ids[0]], "unchanged_since": since});
        a.post_json(&bulk_delete, body)
    };
    let (s, v) = del("2026-13-01").await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_a_date_time")),
        "{v}"
    );
    let before = (daicho_domain::Clock::now(&app.clock) - time::Duration::seconds(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (s, v) = del(&before).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::CONFLICT, Some("changed_since_shown")),
        "{v}"
    );
    assert_eq!(record_count(a, &tid).await, 3, "nothing deleted");
    // A bulk edit, the same.
    let body = json!({"ids": [ids[0]], "values": {"メモ": "一括"}, "unchanged_since": before});
    let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/records/bulk-update"), body).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::CONFLICT, Some("changed_since_shown")),
        "{v}"
    );
    let now = daicho_domain::Clock::now(&app.clock).format(&time::format_description::well_known::Rfc3339).unwrap();
    let body = json!({"ids": [ids[0]], "values": {"メモ": "一括"}, "unchanged_since": now});
    let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/records/bulk-update"), body).await;
    assert_eq!((s, &v["updated"]), (StatusCode::OK, &json!(1)), "{v}");
    let (s, v) = del(&now).await;
    assert_eq!((s, &v["deleted"]), (StatusCode::OK, &json!(1)), "{v}");
}

#[tokio::test]
async fn every_table_indexes_its_system_columns_and_an_upgrade_gives_older_tables_those_indexes() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let hex = tid.replace('-', "");
    let system: Vec<String> =
        ["created_at", "created_by", "updated_at", "updated_by"].iter().map(|c| format!("i_{hex}_{c}")).collect();
    let indexes = app.user_table_indexes(&tid).await;
    assert!(system.iter().all(|n| indexes.contains(n)), "{indexes:?}");
    // A table made before: its system columns had no index.
    let (_, v) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "一社"}})).await;
    assert!(v["record"]["id"].is_i64(), "{v}");
    let drop = system.iter().map(|n| format!("DROP INDEX {n};")).collect::<String>();
    app.upgrade_after(&drop).await;
    assert_eq!(app.user_table_indexes(&tid).await, indexes, "the upgrade made them again");
    // Sorting and filtering by them still gives the records, in their order.
    app.clock.advance(time::Duration::minutes(1));
    let (_, v) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "二社"}})).await;
    assert!(v["record"]["id"].is_i64(), "{v}");
    let name = field_id(&table, "会社名");
    let updated_at = "00000000-0000-0000-0000-000000000003";
    let (s, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?sort={updated_at}&dir=desc")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(titles_of(a, &tid, &name, &format!("sort={updated_at}&dir=desc")).await, ["二社", "一社"]);
    assert_eq!(titles_of(a, &tid, &name, &format!("sort={updated_at}&dir=asc")).await, ["一社", "二社"]);
    let since = daicho_domain::Clock::now(&app.clock).format(&time::format_description::well_known::Rfc3339).unwrap();
    let since: String = form_urlencoded::byte_serialize(since.as_bytes()).collect();
    assert_eq!(titles_of(a, &tid, &name, &format!("filter.gte.updated_at={since}")).await, ["二社"]);
}

#[tokio::test]
async fn a_file_of_new_records_without_a_required_column_is_told_so_once_by_the_field() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let name = field_id(&table, "会社名");
    let (s, v) = import(a, &tid, "", "従業員数,メモ\n5,a\n6,b\n7,c\n".into()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let fields = v["error"]["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 1, "one problem, not one a row: {v}");
    assert_eq!(
        (fields[0]["field"].as_str(), fields[0]["code"].as_str()),
        (Some(name.as_str()), Some("no_column_for_required"))
    );
    assert_eq!(record_count(a, &tid).await, 0);
}

/// A date-time field takes a date alone as that day's start in the tenant's time zone (forms,
/// files, the API and filters), as a spreadsheet may give one.
#[tokio::test]
async fn a_date_time_given_as_a_date_is_that_days_start_in_the_tenants_time_zone() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (tid, table) = customers(&cast.admin).await;
    let last = field_id(&table, "最終連絡");
    let (s, v) = cast
        .admin
        .post_json(
            &format!("/api/v1/tables/{tid}/records"),
            json!({"values": {"会社名": "日付だけ", "最終連絡": "2026-04-01"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["record"]["values"][&last], "2026-03-31T15:00:00Z", "midnight at UTC+09:00");
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records?filter.gte.最終連絡=2026-04-01")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 1, "{v}");
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records?filter.gt.最終連絡=2026-04-01")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 0, "{v}");
    // A day alone in a filter is the whole day: a record at 09:30 that day is "equal" to it,
    // "at most" it, not "greater than" it.
    let (s, v) = cast
        .admin
        .post_json(
            &format!("/api/v1/tables/{tid}/records"),
            json!({"values": {"会社名": "朝", "最終連絡": "2026-04-01 09:30"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for (q, want) in [("eq", 2), ("lte", 2), ("gt", 0), ("lt", 0), ("gte", 2)] {
        let (s, v) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records?filter.{q}.最終連絡=2026-04-01")).await;
        assert_eq!((s, v["records"].as_array().map(Vec::len)), (StatusCode::OK, Some(want)), "{q}: {v}");
    }
    // A time to the minute or the second is all of it: a record made at 09:30:12.110 is equal
    // to 09:30:12 and to 09:30 (as pages show it), not to 09:30:12.111.
    let (s, v) = cast
        .admin
        .post_json(
            &format!("/api/v1/tables/{tid}/records"),
            json!({"values": {"会社名": "秒", "最終連絡": "2026-04-01T09:30:12.110+09:00"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for (q, want) in [
        ("eq.最終連絡=2026-04-01 09:30:12", 1),
        ("eq.最終連絡=2026-04-01 09:30", 2),
        ("lte.最終連絡=2026-04-01 09:30", 3),
        ("gt.最終連絡=2026-04-01 09:30", 0),
        ("eq.最終連絡=2026-04-01 09:30:12.111", 0),
    ] {
        let (s, v) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records?filter.{q}")).await;
        assert_eq!((s, v["records"].as_array().map(Vec::len)), (StatusCode::OK, Some(want)), "{q}: {v}");
    }
    // An update import whose file shows the day only (a spreadsheet set to dates) leaves the
    // stored time of that day as it is.
    let file = "会社名,最終連絡\n朝,2026/4/1\n".as_bytes().to_vec();
    let (s, v) = import(&cast.admin, &tid, "?key=%E4%BC%9A%E7%A4%BE%E5%90%8D", file).await;
    assert_eq!((s, v["updated"].as_i64(), v["unchanged"].as_i64()), (StatusCode::OK, Some(0), Some(1)), "{v}");
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records?filter.eq.会社名=朝")).await;
    assert_eq!(v["records"][0]["values"][&last], "2026-04-01T00:30:00Z", "09:30 at UTC+09:00 kept");
    // So does a file that shows the time to the minute or the second (as a spreadsheet saves
    // 09:30:12.110): the stored seconds are kept, and the row is no change.
    for shown in ["2026/4/1 9:30", "2026-04-01 09:30:12"] {
        let file = format!("会社名,最終連絡\n秒,{shown}\n").into_bytes();
        let (s, v) = import(&cast.admin, &tid, "?key=%E4%BC%9A%E7%A4%BE%E5%90%8D", file).await;
        assert_eq!(
            (s, v["updated"].as_i64(), v["unchanged"].as_i64()),
            (StatusCode::OK, Some(0), Some(1)),
            "{shown}: {v}"
        );
    }
    let (_, v) = cast.admin.get_json(&format!("/api/v1/tables/{tid}/records?filter.eq.会社名=秒")).await;
    assert_eq!(v["records"][0]["values"][&last], "2026-04-01T00:30:12.11Z", "{v}");
    // Another minute is a change.
    let file = "会社名,最終連絡\n秒,2026/4/1 9:31\n".as_bytes().to_vec();
    let (s, v) = import(&cast.admin, &tid, "?key=%E4%BC%9A%E7%A4%BE%E5%90%8D", file).await;
    assert_eq!((s, v["updated"].as_i64()), (StatusCode::OK, Some(1)), "{v}");
}

#[tokio::test]
async fn a_history_names_who_made_each_change_by_id_not_by_a_login_id_given_again() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, _) = customers(a).await;
    let pw = app.user("acme", "taro", "tenant_admin").await;
    let taro = app.login("acme", "taro", &pw).await;
    let (s, v) =
        taro.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "履歴社"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let rid = v["record"]["id"].as_i64().unwrap();
    let (s, v) = taro
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tables/{tid}/records/{rid}"),
            json!({"version": 1, "values": {"メモ": "太郎の変更"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // taro leaves and is deleted; someone else is given the login ID "taro".
    let (_, users) = a.get_json("/api/v1/users").await;
    let old_id = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "taro").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = a.post_form(&format!("/admin/users/{old_id}/delete"), &[("confirm", "yes")]).await;
    assert!(r.status().is_redirection(), "{}", r.status());
    app.user("acme", "taro", "member").await;
    let (_, users) = a.get_json("/api/v1/users").await;
    let new_id = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "taro").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, v) =
        a.send_json(Method::PATCH, &format!("/api/v1/users/{new_id}"), json!({"display_name": "新しい太郎"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let page = a.get(&format!("/tables/{tid}/records/{rid}/history")).await.text().await.unwrap();
    assert!(page.contains("太郎の変更"), "{page}");
    assert!(!page.contains("新しい太郎"), "the change is not put on the new taro: {page}");
    assert!(page.contains("taro (a deleted user)"), "{page}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{rid}/history")).await;
    assert_eq!(v["entries"][0]["actor_id"], json!(old_id), "{v}");
}

#[tokio::test]
async fn a_page_cursor_is_taken_only_by_the_table_and_order_it_was_made_for() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, _) = customers(a).await;
    for name in ["甲社", "乙社", "丙社"] {
        let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": name}})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let records = format!("/api/v1/tables/{tid}/records");
    let (_, v) = a.get_json(&format!("{records}?limit=2")).await;
    let by_number = v["next_after"].as_str().unwrap().to_owned();
    let (s, v) = a.get_json(&format!("{records}?limit=2&after={by_number}")).await;
    assert_eq!((s, v["records"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "in its own order: {v}");
    // A cursor made before cursors carried their mark still pages on (base64url of [null,3]).
    let (s, v) = a.get_json(&format!("{records}?after=W251bGwsM10")).await;
    assert_eq!((s, v["records"].as_array().map(Vec::len)), (StatusCode::OK, Some(2)), "{v}");
    // The list by number's cursor on a sorted list would read only the records with no value
    // there; on the other direction it would start elsewhere; on another table, anywhere.
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "別表"})).await;
    let other = v["table"]["id"].as_str().unwrap().to_owned();
    for path in [
        format!("{records}?sort=会社名&dir=asc&after={by_number}"),
        format!("{records}?dir=asc&after={by_number}"),
        format!("/api/v1/tables/{other}/records?after={by_number}"),
    ] {
        let (s, v) = a.get_json(&path).await;
        assert_eq!(
            (s, v["error"]["fields"][0]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("bad_cursor")),
            "{path}: {v}"
        );
    }
}

#[tokio::test]
async fn a_multiple_choice_filter_matches_whole_choices_as_written_on_both_stores() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "服"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    for (name, kind) in [
        ("名", json!({"type": "text"})),
        ("サイズ", json!({"type": "multi_choice", "choices": ["S", "s", "M", "50%_off", "5"]})),
    ] {
        let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": name, "kind": kind})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    for (name, sizes) in [
        ("小文字", json!(["s", "M"])),
        ("大文字", json!(["S"])),
        ("記号", json!(["50%_off"])),
        ("中", json!(["M", "5"])),
    ] {
        let (s, v) = add_record(a, &tid, json!({"名": name, "サイズ": sizes})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (_, t) = a.get_json(&format!("/api/v1/tables/{tid}")).await;
    let title = t["table"]["fields"][0]["id"].as_str().unwrap().to_owned();
    let list = |q: &'static str| titles_of(a, &tid, &title, q);
    // "S" is not "s" (SQLite's LIKE took one for the other), and "5" is not part of "50%_off".
    assert_eq!(list("filter.eq.サイズ=S").await, ["大文字"]);
    assert_eq!(list("filter.eq.サイズ=s").await, ["小文字"]);
    assert_eq!(list("filter.eq.サイズ=5").await, ["中"]);
    assert_eq!(list("filter.eq.サイズ=50%25_off").await, ["記号"]);
    assert_eq!(list("filter.any_of.サイズ=S,M&sort=名&dir=asc").await, ["中", "大文字", "小文字"]);
}

#[tokio::test]
async fn an_address_made_elsewhere_cannot_carry_a_notice_through_our_own_redirects() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let (_, v) = a.post_json(&format!("/api/v1/tables/{tid}/records"), json!({"values": {"会社名": "通知社"}})).await;
    let rid = v["record"]["id"].as_i64().unwrap();
    // A record page opened with a "way back" that holds a notice and its counts: neither its
    // link back nor its save carry them on.
    let from = "done%3Dimported%26inserted%3D999999%26updated%3D0%26q%3D%E9%80%9A%E7%9F%A5";
    let page = a.get(&format!("/tables/{tid}/records/{rid}?from={from}")).await.text().await.unwrap();
    assert!(!page.contains("999999") && page.contains("q=%E9%80%9A%E7%9F%A5"), "{page}");
    let name = field_id(&table, "会社名");
    let r = a
        .post_form(&format!("/tables/{tid}/records/{rid}?from={from}"), &[("version", "1"), (name.as_str(), "通知社2")])
        .await;
    let to = crate::location(&r);
    assert!(!to.contains("inserted") && to.contains("done=record_saved"), "{to}");
    // Nor does the page to open after signing in.
    let pw = app.user("acme", "flash", "member").await;
    let r = app
        .client()
        .post(app.url("/login"))
        .form(&[
            ("tenant", "acme"),
            ("login_id", "flash"),
            ("password", pw.as_str()),
            ("next", &format!("/tables/{tid}?done=imported&inserted=999999&updated=0&q=x")),
        ])
        .send()
        .await
        .unwrap();
    let to = crate::location(&r);
    assert!(!to.contains("inserted") && !to.contains("done") && to.ends_with("?q=x"), "{to}");
}

#[tokio::test]
async fn an_import_finds_records_by_a_date_time_key_as_exported_and_reports_a_bad_key_with_every_other_problem() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, _) = customers(a).await;
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/fields"),
            json!({"name": "受付", "kind": {"type": "date_time"}, "rules": {"unique": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/records"),
            json!({"values": {"会社名": "受付社", "受付": "2026-04-01T09:30:12.110+09:00", "メモ": "前"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // The export writes the key in the tenant's time, without offset: read back, it finds
    // its record (it was refused whole as "not a date-time").
    let file = a.get(&format!("/api/v1/tables/{tid}/export.csv?col=受付&col=メモ")).await.text().await.unwrap();
    assert!(file.contains("2026-04-01 09:30:12.110,前"), "{file}");
    let (s, v) = import(a, &tid, "?key=受付", file.replace(",前", ",後").into_bytes()).await;
    assert_eq!((s, &v["updated"], &v["inserted"]), (StatusCode::OK, &json!(1), &json!(0)), "{v}");
    // Saved again by a spreadsheet, to the minute: still that record (it made a new one).
    let (s, v) = import(a, &tid, "?key=受付", "受付,メモ\n2026/4/1 9:30,分\n".into()).await;
    assert_eq!((s, &v["updated"], &v["inserted"]), (StatusCode::OK, &json!(1), &json!(0)), "{v}");
    // Unless the minute holds two records: then the row says so.
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/records"),
            json!({"values": {"会社名": "同分社", "受付": "2026-04-01T09:30:40+09:00"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = import(a, &tid, "?key=受付", "受付,メモ\n2026/4/1 9:30,分\n".into()).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("key_matches_several")),
        "{v}"
    );
    assert_eq!(record_count(a, &tid).await, 2);
    // A key that does not read is its row's problem, listed with the other rows' problems.
    let (s, v) = import(a, &tid, "?key=受付", "受付,ランク\nabc,A\n2026-05-01 10:00,Z\n".into()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let fields: Vec<&str> =
        v["error"]["fields"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert_eq!(fields, ["bad_datetime", "required", "choice"], "{v}");
}

#[tokio::test]
async fn a_shift_jis_file_with_a_utf8_bom_before_it_reads_when_chosen_as_shift_jis() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let mut sjis = b"\xEF\xBB\xBF".to_vec();
    sjis.extend(encoding_rs::SHIFT_JIS.encode("会社名,メモ\nＳ社,ｶﾅ\n").0.iter());
    let (s, v) = import(a, &tid, "?encoding=shift_jis", sjis).await;
    assert_eq!((s, &v["inserted"]), (StatusCode::OK, &json!(1)), "{v}");
    assert_eq!(titles_of(a, &tid, &field_id(&table, "会社名"), "").await, ["Ｓ社"]);
}

#[tokio::test]
async fn a_date_time_filter_on_the_last_day_a_date_time_holds_is_answered_not_a_dropped_connection() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, _) = customers(a).await;
    for q in [
        "filter.eq.created_at=9999-12-31",
        "filter.gte.updated_at=9999-12-31 23:59",
        "filter.lt.最終連絡=9999-12-31 23:59:59",
    ] {
        let (s, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?{q}")).await;
        assert!(s == StatusCode::OK || s == StatusCode::UNPROCESSABLE_ENTITY, "{q}: {s} {v}");
        let r = a.get(&format!("/tables/{tid}?{q}")).await;
        assert!(r.status().is_success() || r.status() == StatusCode::UNPROCESSABLE_ENTITY, "{q}: {}", r.status());
    }
}

#[tokio::test]
async fn an_export_neutralises_a_formula_in_a_users_name_a_choice_and_the_created_by_column() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, _) = customers(a).await;
    for f in [
        json!({"name": "担当", "kind": {"type": "user"}}),
        json!({"name": "区分", "kind": {"type": "choice", "choices": ["=1+1", "普通"]}}),
    ] {
        let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/fields"), f).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    // The administrator names themself like a formula, and makes a record naming them.
    let evil = "=HYPERLINK(\"http://evil.example/\",\"x\")";
    let (_, v) = a.get_json("/api/v1/users").await;
    let me = v["users"].as_array().unwrap().iter().find(|u| u["login_id"] == a.login.as_str()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, v) = a.send_json(Method::PATCH, &format!("/api/v1/users/{me}"), json!({"display_name": evil})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/records"),
            json!({"values": {"会社名": "式社", "担当": me, "区分": "=1+1"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for query in ["?col=担当&col=区分&col=created_by", "?col=担当&col=区分&col=created_by&encoding=shift_jis"] {
        let csv = a.get(&format!("/api/v1/tables/{tid}/export.csv{query}")).await.bytes().await.unwrap();
        let text = if query.contains("shift_jis") {
            encoding_rs::SHIFT_JIS.decode(&csv).0.into_owned()
        } else {
            String::from_utf8(csv.to_vec()).unwrap()
        };
        let mut reader = csv::ReaderBuilder::new().from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        let row: Vec<String> = reader.records().next().unwrap().unwrap().iter().map(str::to_owned).collect();
        assert!(row.iter().all(|c| !c.starts_with('=')), "{query}: no live formula: {row:?}");
        assert!(
            row[0].starts_with("'=HYPERLINK") && row[1] == "'=1+1" && row[2].starts_with("'=HYPERLINK"),
            "{query}: {row:?}"
        );
    }
}

#[tokio::test]
async fn every_writable_field_type_round_trips_through_the_record_form() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    for f in [
        json!({"name": "電話", "kind": {"type": "phone"}}),
        json!({"name": "区分", "kind": {"type": "multi_choice", "choices": ["卸", "小売", "EC"]}}),
    ] {
        let (s, v) = a.post_json(&format!("/api/v1/tables/{tid}/fields"), f).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}")).await;
    let table_now = v["table"].clone();
    let id = |n: &str| field_id(&table_now, n);
    let _ = &table;
    // As a browser sends the new-record form: text areas with CRLF, the tenant's local time, a
    // ticked box, two ticked choices.
    let form = [
        (id("会社名"), "フォーム商事"),
        (id("メモ"), "一行目\r\n二行目"),
        (id("従業員数"), "1,234"),
        (id("与信枠"), "1,000.5"),
        (id("契約日"), "2026/4/1"),
        (id("最終連絡"), "2026-04-01 09:30"),
        (id("有効"), "on"),
        (id("ランク"), "B"),
        (id("メール"), "Info@Example.co.jp"),
        (id("Web"), "https://example.co.jp/a?b=1"),
        (id("電話"), "03-1234-5678"),
        (id("区分"), "卸"),
        (id("区分"), "EC"),
    ];
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let r = a.post_form(&format!("/tables/{tid}/records"), &pairs).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records?filter.eq.会社名=フォーム商事")).await;
    let rec = v["records"][0].clone();
    let got = |n: &str| rec["values"][&id(n)].clone();
    assert_eq!(got("メモ"), "一行目\n二行目");
    assert_eq!(got("従業員数"), 1234);
    assert_eq!(got("与信枠"), "1000.50");
    assert_eq!(got("契約日"), "2026-04-01");
    assert_eq!(got("最終連絡"), "2026-04-01T00:30:00Z");
    assert_eq!(got("有効"), true);
    assert_eq!(got("ランク"), "B");
    assert_eq!(got("Web"), "https://example.co.jp/a?b=1");
    assert_eq!(got("電話"), "03-1234-5678");
    assert_eq!(got("区分"), json!(["卸", "EC"]));
    assert!(got("メール").as_str().unwrap().eq_ignore_ascii_case("info@example.co.jp"), "{rec}");
    // The record page shows the values as the form takes them back; saved as shown, nothing
    // changes (no new version).
    let rid = rec["id"].as_i64().unwrap();
    let page = a.get(&format!("/tables/{tid}/records/{rid}")).await.text().await.unwrap();
    assert!(page.contains("value=\"2026-04-01 09:30\""), "local time on the form: {page}");
    // Sent back as the page shows it (each input's value, each ticked box, each chosen option,
    // each text area), as a browser would: no change.
    let shown = form_as_shown(&page, &form.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());
    let mut back: Vec<(&str, &str)> = shown.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    back.push(("version", "1"));
    let r = a.post_form(&format!("/tables/{tid}/records/{rid}"), &back).await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{rid}")).await;
    assert_eq!(v["record"]["version"], 1, "nothing changed: {shown:?} {v}");
    // Unticking the box and every choice (the browser sends nothing for them) clears them.
    let without: Vec<(&str, &str)> = pairs
        .iter()
        .copied()
        .filter(|(k, _)| *k != id("有効").as_str() && *k != id("区分").as_str())
        .chain([("version", "1")])
        .collect();
    let r = a.post_form(&format!("/tables/{tid}/records/{rid}"), &without).await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{rid}")).await;
    assert_eq!(
        (&v["record"]["values"][&id("有効")], &v["record"]["values"][&id("区分")]),
        (&json!(false), &json!(null)),
        "{v}"
    );
    // A bad value in each of several types is explained on the form, field by field.
    let bad = [
        (id("会社名"), "悪い値商事"),
        (id("従業員数"), "many"),
        (id("与信枠"), "1.234"),
        (id("契約日"), "2026-02-30"),
        (id("メール"), "info@"),
        (id("Web"), "javascript:alert(1)"),
        (id("電話"), "03-1234-567x"),
    ];
    let pairs: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let r = a.post_form(&format!("/tables/{tid}/records"), &pairs).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    for f in ["従業員数", "与信枠", "契約日", "メール", "Web", "電話"] {
        // The input is marked invalid and described by its message (after its hint and limits,
        // if it has them).
        let at = page.find(&format!("id=\"{}\"", id(f))).unwrap_or_else(|| panic!("{f}'s input: {page}"));
        let tag = &page[at..at + page[at..].find('>').unwrap()];
        assert!(tag.contains("aria-invalid=\"true\""), "{f}: {tag}");
        let described = tag.split("aria-describedby=\"").nth(1).and_then(|d| d.split('"').next()).unwrap_or("");
        assert!(described.split(' ').any(|d| d == format!("{}-err", id(f))), "{f} explained: {tag}");
        assert!(page.contains(&format!("id=\"{}-err\"", id(f))), "{f}'s message: {page}");
    }
    assert_eq!(record_count(a, &tid).await, 1, "nothing written");
}

#[tokio::test]
async fn hostile_names_are_escaped_on_the_settings_group_access_audit_and_home_pages_and_in_reflected_inputs() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let evil = "<img src=x onerror=alert(1)>\"'&";
    let shown = "&#60;img src=x onerror=alert(1)&#62;";
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": format!("{evil}表"), "description": evil})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/fields"),
            json!({"name": format!("{evil}欄"), "kind": {"type": "choice", "choices": [evil, "普通"]}, "rules": {"default": evil}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let fid = v["table"]["fields"][0]["id"].as_str().unwrap().to_owned();
    let (s, v) = a
        .post_json(&format!("/api/v1/tables/{tid}/views"), json!({"name": format!("{evil}ビュー"), "shared": true}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, v) = a.post_json("/api/v1/groups", json!({"name": format!("{evil}班"), "description": evil})).await;
    let gid = v["group"]["id"].as_str().unwrap().to_owned();
    let (_, users) = a.get_json("/api/v1/users").await;
    let member = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "member1").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = a.send_json(Method::PATCH, &format!("/api/v1/users/{member}"), json!({"display_name": evil})).await;
    assert_eq!(s, StatusCode::OK);
    a.send_json(Method::PUT, &format!("/api/v1/groups/{gid}/members"), json!({"members": [member]})).await;
    let (s, _) =
        a.send_json(Method::PUT, &format!("/api/v1/groups/{gid}/grants/{tid}"), json!({"rights": ["view"]})).await;
    assert_eq!(s, StatusCode::OK);
    let q: String = form_urlencoded::byte_serialize(evil.as_bytes()).collect();
    let home = a.get("/").await.text().await.unwrap();
    assert!(!home.contains("<img src=x"), "the home page shows markup unescaped");
    for page in [
        format!("/tables/{tid}/design/fields/{fid}/type"),
        format!("/admin/groups/{gid}"),
        format!("/admin/groups/{gid}/tables/{tid}"),
        format!("/admin/users/{member}/access"),
        "/admin/users".to_owned(),
        "/admin/audit".to_owned(),
        // What the address carries comes back escaped: the keyword, a filter value, a view name.
        format!("/tables/{tid}?q={q}&filter.eq.{fid}={q}"),
        format!("/tables/{tid}?view_name={q}&q={q}"),
    ] {
        let r = a.get(&page).await;
        assert!(
            r.status() == StatusCode::OK || r.status() == StatusCode::UNPROCESSABLE_ENTITY,
            "{page}: {}",
            r.status()
        );
        let html = r.text().await.unwrap();
        assert!(!html.contains("<img src=x"), "{page} shows markup unescaped");
        assert!(html.contains(shown), "{page} shows the text, escaped");
        // What the address carried comes back whole in its input, quotes escaped too.
        if page.contains("q=") {
            assert!(html.contains("value=\"&#60;img src=x onerror=alert(1)&#62;&#34;&#39;&#38;\""), "{page}: {html}");
            assert!(!html.contains("&#62;\"'"), "{page}");
        }
    }
}

#[tokio::test]
async fn a_record_form_keeps_its_date_times_when_the_time_zone_changes_while_it_is_open() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let (tid, table) = customers(a).await;
    let (name, last) = (field_id(&table, "会社名"), field_id(&table, "最終連絡"));
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{tid}/records"),
            json!({"values": {"会社名": "時差社", "最終連絡": "2026-04-01T09:30:00+09:00"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let rid = v["record"]["id"].as_i64().unwrap();
    // The form is shown in Japan's time (the default) ...
    let page = a.get(&format!("/tables/{tid}/records/{rid}")).await.text().await.unwrap();
    assert!(page.contains("value=\"2026-04-01 09:30\"") && page.contains("name=\"tz\" value=\"540\""), "{page}");
    // ... the administrator moves the tenant to UTC-05:00 meanwhile ...
    let form = crate::network::policy("");
    let mut f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    f.push(("utc_offset_minutes", "-300"));
    assert_eq!(a.post_form("/admin/policy", &f).await.status(), StatusCode::SEE_OTHER);
    // ... and the form, saved with another field changed, leaves the date-time where it was.
    let sent = [("version", "1"), ("tz", "540"), (name.as_str(), "時差社2"), (last.as_str(), "2026-04-01 09:30")];
    let r = a.post_form(&format!("/tables/{tid}/records/{rid}"), &sent).await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let (_, v) = a.get_json(&format!("/api/v1/tables/{tid}/records/{rid}")).await;
    assert_eq!(
        (&v["record"]["values"][&name], &v["record"]["values"][&last]),
        (&json!("時差社2"), &json!("2026-04-01T00:30:00Z")),
        "{v}"
    );
}

/// The values a record form's page holds for the given field keys, as a browser sends them:
/// inputs' values (check boxes only when ticked), a select's chosen option, a text area's text.
fn form_as_shown(page: &str, keys: &[String]) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        s.replace("&#34;", "\"").replace("&#39;", "'").replace("&#60;", "<").replace("&#62;", ">").replace("&#38;", "&")
    };
    let attr = |tag: &str, name: &str| {
        tag.split(&format!(" {name}=\"")).nth(1).and_then(|v| v.find('"').map(|e| unescape(&v[..e])))
    };
    let mut out = Vec::new();
    let mut keys: Vec<&String> = keys.iter().collect();
    keys.dedup();
    for k in keys {
        let named = format!(" name=\"{k}\"");
        for (i, _) in page.match_indices(&named) {
            let open = page[..i].rfind('<').unwrap();
            let close = i + page[i..].find('>').unwrap();
            let tag = &page[open..=close];
            if tag.starts_with("<textarea") {
                let end = page[close..].find("</textarea>").unwrap();
                out.push((k.clone(), unescape(&page[close + 1..close + end])));
            } else if tag.starts_with("<select") {
                let body = &page[close..close + page[close..].find("</select>").unwrap()];
                let chosen = body.split("<option").find(|o| o.contains(" selected")).and_then(|o| attr(o, "value"));
                out.push((k.clone(), chosen.unwrap_or_default()));
            } else if tag.starts_with("<input") {
                let checkbox = tag.contains("type=\"checkbox\"");
                if !checkbox || tag.contains(" checked") {
                    out.push((k.clone(), attr(tag, "value").unwrap_or_default()));
                }
            }
        }
    }
    out
}

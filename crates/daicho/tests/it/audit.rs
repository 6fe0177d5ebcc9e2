//! The operation history: search, paging, export, and tamper evidence.

use daicho_domain::Clock;
use daicho_testkit::TestApp;
use daicho_testkit::reqwest::StatusCode;
use serde_json::json;
use time::Duration;

#[tokio::test]
async fn the_hash_chain_detects_a_modified_row() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let page = cast.admin.get("/admin/audit?verify=1").await.text().await.unwrap();
    assert!(page.contains("Integrity check passed"));
    // The application cannot change history: the table is append-only.
    assert!(
        app.raw_sql("UPDATE audit_events SET actor_login = 'nobody'", "UPDATE audit_events SET actor_login = 'nobody'")
            .await
            .is_err()
    );
    assert!(app.raw_sql("DELETE FROM audit_events", "DELETE FROM audit_events").await.is_err());
    // An attacker with database access drops the guard and rewrites one event...
    app.raw_sql("DROP TRIGGER audit_events_no_update", "DROP TRIGGER audit_events_no_update ON audit_events")
        .await
        .unwrap();
    let seq = app
        .raw_i64("SELECT MIN(seq) FROM audit_events WHERE action = 'login.success' AND actor_login = 'member1'")
        .await;
    let tamper = "UPDATE audit_events SET ip = '10.9.9.9' WHERE seq = \
        (SELECT MIN(seq) FROM audit_events WHERE action = 'login.success' AND actor_login = 'member1')";
    assert_eq!(app.raw_sql(tamper, tamper).await.unwrap(), 1);
    // ...and the check points at it.
    let page = cast.admin.get("/admin/audit?verify=1").await.text().await.unwrap();
    assert!(page.contains("Integrity check FAILED"), "tampering is shown");
    assert!(page.contains(&format!("#{seq}")));
    let (lines, ok) = daicho::operator::verify_audit(app.store()).await.unwrap();
    assert!(!ok, "{lines:?}");
    assert!(lines.iter().any(|l| l.contains(&format!("BROKEN at event {seq}"))));
    // The other tenant's chain is untouched.
    let page = cast.other_admin.get("/admin/audit?verify=1").await.text().await.unwrap();
    assert!(page.contains("Integrity check passed"));
}

#[tokio::test]
async fn the_history_is_searched_by_user_action_outcome_ip_and_dates_and_paged() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    app.clock.advance(Duration::days(2));
    // Typed as people type them: the history finds all three under member1.
    for (i, typed) in ["member1", " Member1 ", "MEMBER1"].into_iter().enumerate() {
        app.client()
            .post(app.url("/login"))
            .form(&[("tenant", "acme"), ("login_id", typed), ("password", &format!("bad-{i}"))])
            .send()
            .await
            .unwrap();
    }
    let admin = app.login("acme", "admin", &cast.admin.password).await;
    let q = |s: &'static str| {
        let admin = &admin;
        async move { admin.get_json(s).await.1["events"].as_array().unwrap().clone() }
    };
    assert_eq!(q("/api/v1/audit?login=member1&action=login.failure").await.len(), 3);
    assert_eq!(q("/api/v1/audit?login=MEMBER1&outcome=failure").await.len(), 3);
    assert_eq!(q("/api/v1/audit?ip=127.0.0.1&action=login.failure").await.len(), 3);
    assert_eq!(q("/api/v1/audit?ip=192.0.2.1").await.len(), 0);
    assert_eq!(q("/api/v1/audit?action=login.failure&from=2026-04-03&to=2026-04-03").await.len(), 3);
    assert_eq!(q("/api/v1/audit?action=login.failure&to=2026-04-02").await.len(), 0);
    // Paging: newest first, keyset by sequence number.
    let (_, p1) = admin.get_json("/api/v1/audit?limit=2").await;
    let before = p1["next_before"].as_i64().unwrap();
    let (_, p2) = admin.get_json(&format!("/api/v1/audit?limit=2&before={before}")).await;
    let s1: Vec<i64> = p1["events"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    let s2: Vec<i64> = p2["events"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(s1[0] > s1[1] && s1[1] > s2[0] && s2[0] > s2[1], "{s1:?} {s2:?}");
    // The page shows the same with its filter form.
    let page = admin.get("/admin/audit?login=member1&action=login.failure").await.text().await.unwrap();
    assert_eq!(page.matches("<code>login.failure</code>").count(), 3);
    // Bad criteria are explained, not a 500.
    let (s, v) = admin.get_json("/api/v1/audit?from=yesterday").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["fields"][0]["code"], "bad_date");
    let (s, _) = admin.get_json("/api/v1/audit?action=drop.table").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = admin.get_json("/api/v1/audit?limit=100000").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(admin.get("/admin/audit?from=nope").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_export_is_a_bom_prefixed_csv_with_formulas_neutralised_and_is_itself_audited() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    app.client()
        .post(app.url("/login"))
        .form(&[("tenant", "acme"), ("login_id", "=cmd|' /C calc'!A0"), ("password", "x")])
        .send()
        .await
        .unwrap();
    let r = cast.admin.get("/admin/audit/export.csv?action=login.failure").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("attachment;"));
    let bytes = r.bytes().await.unwrap();
    assert_eq!(&bytes[..3], &[0xEF, 0xBB, 0xBF]);
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][2], "'=cmd|' /C calc'!A0");
    // Recorded when it starts (with its filter) and when it ends (with its count).
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=audit.export").await;
    let (end, start) = (&v["events"][0], &v["events"][1]);
    assert_eq!((&start["actor_login"], &end["actor_login"]), (&json!("admin"), &json!("admin")));
    assert!(start["details"].as_str().unwrap().contains("action=login.failure"), "{v}");
    assert_eq!(end["details"], "finished: 1 events");
}

#[tokio::test]
async fn the_export_streams_more_events_than_one_batch() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    for i in 0..1100 {
        let ev = daicho_domain::NewAuditEvent {
            at: app.clock.now(),
            tenant_id: None,
            actor_id: None,
            actor_login: format!("bulk{i}"),
            ip: "127.0.0.1".into(),
            user_agent: String::new(),
            action: daicho_domain::AuditAction::LoginFailure,
            target: String::new(),
            outcome: daicho_domain::Outcome::Failure,
            details: String::new(),
        };
        let tenant = app
            .store()
            .list_tenants(&daicho_domain::OperatorScope::local())
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.code.as_str() == "acme")
            .unwrap();
        app.store().append_audit(daicho_domain::NewAuditEvent { tenant_id: Some(tenant.id), ..ev }).await.unwrap();
    }
    let text = cast.admin.get("/admin/audit/export.csv?action=login.failure").await.text().await.unwrap();
    assert_eq!(text.lines().count(), 1101, "header + 1100 rows");
    // The export's end is recorded with its count (its body ends only after that).
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=audit.export").await;
    assert_eq!(v["events"][0]["details"], "finished: 1100 events", "{v}");
    let (lines, ok) = daicho::operator::verify_audit(app.store()).await.unwrap();
    assert!(ok, "{lines:?}");
}

#[tokio::test]
async fn a_policy_change_is_recorded_with_its_before_and_after() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let f = vec![
        ("password_min_length", "14"),
        ("password_history", "5"),
        ("password_max_age_days", "0"),
        ("password_expiry_warning_days", "14"),
        ("lockout_threshold", "5"),
        ("lockout_minutes", "15"),
        ("idle_timeout_minutes", "30"),
        ("absolute_timeout_hours", "12"),
    ];
    assert_eq!(cast.admin.post_form("/admin/policy", &f).await.status(), StatusCode::SEE_OTHER);
    let (_, v) = cast.admin.get_json("/api/v1/audit?action=policy.change").await;
    assert_eq!(v["events"][0]["details"], "password_min_length: 12 -> 14");
}

/// The history page checks the hash chain (every event of the tenant) only when asked, not
/// on every page of a search; asked, it says whether the chain holds.
#[tokio::test]
async fn the_history_page_checks_the_chain_only_when_asked() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let page = cast.admin.get("/admin/audit").await.text().await.unwrap();
    assert!(page.contains("Check integrity now") && !page.contains("Integrity check"), "{page}");
    let page = cast.admin.get("/admin/audit?verify=1&action=login.success").await.text().await.unwrap();
    assert!(page.contains("Integrity check passed"), "{page}");
    // (A broken chain shown: the_hash_chain_detects_a_modified_row.)
}

#[tokio::test]
async fn the_history_page_shows_and_searches_days_in_the_tenants_time_zone_and_the_api_in_utc() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    // 2026-04-01 17:40 UTC is 2026-04-02 02:40 in Japan (the tenant's zone by default).
    // (In steps shorter than the idle timeout, the session in use.)
    for _ in 0..26 {
        app.clock.advance(Duration::minutes(20));
        a.get("/").await;
    }
    let (s, v) = a.post_json("/api/v1/tables", json!({"name": "時差"})).await;
    assert_eq!(s, StatusCode::CREATED);
    let target = format!("table:{}", v["table"]["id"].as_str().unwrap());
    let page = a.get("/admin/audit?action=table.create").await.text().await.unwrap();
    assert!(page.contains("2026-04-02 02:40:00 UTC+09:00"), "{page}");
    let on = |day: &str| format!("/admin/audit?action=table.create&from={day}&to={day}");
    assert!(a.get(&on("2026-04-02")).await.text().await.unwrap().contains(&target), "its day in Japan");
    assert!(!a.get(&on("2026-04-01")).await.text().await.unwrap().contains(&target));
    let (_, v) = a.get_json("/api/v1/audit?action=table.create&from=2026-04-01&to=2026-04-01").await;
    assert_eq!(v["events"].as_array().map(Vec::len), Some(1), "the API's days are UTC days: {v}");
}

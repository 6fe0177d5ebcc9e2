//! Moving a populated installation from SQLite to PostgreSQL.

use daicho_testkit::TestApp;
use daicho_testkit::reqwest::StatusCode;
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

    let mut config = app.config.clone();
    config.database.url = Some(target_url.to_owned());
    let target = daicho::open_store(&config).await.unwrap();
    let report = daicho::operator::migrate_store(app.store(), target.get()).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert!(report.counts.iter().any(|(t, n, _)| *t == "users" && *n == 4), "{report:?}");
    assert!(report.counts.iter().any(|(t, n, _)| *t == "audit_events" && *n > 10), "{report:?}");
    // A second copy into the same target is refused rather than merged.
    assert!(daicho::operator::migrate_store(app.store(), target.get()).await.is_err());

    // Serve from the target: the same people sign in with the same passwords, history continues.
    app.running.shutdown();
    let moved = TestApp::start_with(|c| c.database.url = Some(target_url.to_owned())).await;
    let admin = moved.login("acme", "admin", &cast.admin.password).await;
    moved.login("acme", "member1", "a moved passphrase 1").await;
    let (_, v) = admin.get_json("/api/v1/audit?action=login.failure").await;
    assert_eq!(v["events"].as_array().unwrap().len(), 1);
    let page = admin.get("/admin/audit").await.text().await.unwrap();
    assert!(page.contains("Integrity check passed"));
    let (lines, ok) = daicho::operator::verify_audit(moved.store()).await.unwrap();
    assert!(ok, "{lines:?}");
}

#[tokio::test]
async fn migrate_store_refuses_an_installation_with_user_tables_rather_than_copy_it_partly() {
    let app =
        TestApp::start_with(|c| c.database.url = Some(format!("sqlite://{}", c.data_dir.join("source.db").display())))
            .await;
    let cast = app.cast().await;
    let (s, _) = cast.admin.post_json("/api/v1/tables", json!({"name": "顧客"})).await;
    assert_eq!(s, StatusCode::CREATED);
    let mut config = app.config.clone();
    config.database.url = Some(format!("sqlite://{}", app.config.data_dir.join("copy.db").display()));
    let target = daicho::open_store(&config).await.unwrap();
    let err = daicho::operator::migrate_store(app.store(), target.get()).await.unwrap_err().to_string();
    assert!(err.contains("cannot copy yet"), "{err}");
    let counts = target.get().table_counts(&daicho_domain::OperatorScope::local()).await.unwrap();
    assert!(counts.iter().all(|(_, n)| *n == 0), "nothing was copied: {counts:?}");
}

//! Backups and the restore drill, on whichever store the suite runs against (SQLite:
//! VACUUM INTO; PostgreSQL: pg_dump and pg_restore).

use std::sync::Arc;

use daicho::jobs::JobRunner;
use daicho_testkit::TestApp;
use daicho_testkit::reqwest::StatusCode;
use serde_json::json;
use time::Duration;

async fn drill_database(app: &TestApp) -> String {
    match daicho_testkit::postgres_admin_url() {
        Some(admin) => daicho_testkit::fresh_postgres_database(&admin).await,
        None => format!("sqlite://{}", app.config.data_dir.join("drill").join("restored.db").display()),
    }
}

#[tokio::test]
async fn a_backup_restores_into_a_working_installation_with_its_history_intact() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (s, _) = cast
        .admin
        .post_json(
            "/api/v1/users",
            json!({"login_id": "before", "display_name": "B", "email": "b@example.jp", "role": "member"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let file = app.config.data_dir.join("backups").join(daicho::backup::file_name(&app.running.store, T));
    let size = daicho::backup::backup(&app.running.store, &app.config, &file).await.unwrap();
    assert!(size > 0);
    // Refuses to overwrite an existing backup.
    assert!(daicho::backup::backup(&app.running.store, &app.config, &file).await.is_err());
    let (s, _) = cast
        .admin
        .post_json(
            "/api/v1/users",
            json!({"login_id": "after", "display_name": "A", "email": "a@example.jp", "role": "member"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);

    // The drill: restore into a separate database and serve it.
    let target = drill_database(&app).await;
    let mut drill = app.config.clone();
    drill.database.url = Some(target.clone());
    daicho::backup::restore(&drill, &file).await.unwrap();
    let restored = TestApp::start_with(|c| c.database.url = Some(target.clone())).await;
    let admin = restored.login("acme", "admin", &cast.admin.password).await;
    let (_, v) = admin.get_json("/api/v1/users").await;
    let logins: Vec<&str> = v["users"].as_array().unwrap().iter().map(|u| u["login_id"].as_str().unwrap()).collect();
    assert!(logins.contains(&"before") && !logins.contains(&"after"), "{logins:?}");
    let (lines, ok) = daicho::operator::verify_audit(restored.store()).await.unwrap();
    assert!(ok, "{lines:?}");
    // A file that is not a backup is refused.
    let junk = app.config.data_dir.join("junk.db");
    std::fs::write(&junk, b"not a database").unwrap();
    if daicho_testkit::postgres_admin_url().is_none() {
        assert!(daicho::backup::restore(&drill, &junk).await.is_err());
    }
}

const T: time::OffsetDateTime = daicho_testkit::T0;

#[tokio::test]
async fn the_daily_backup_job_writes_a_backup_and_keeps_the_newest_few() {
    let app = TestApp::start_with(|c| c.backup.keep = 2).await;
    app.cast().await;
    let runner = JobRunner::new(
        app.running.store.clone(),
        Arc::new(app.clock.clone()),
        "n1".into(),
        Arc::new(app.config.clone()),
    );
    for _ in 0..3 {
        let ran = runner.tick().await.unwrap();
        assert!(ran.contains(&"backup.daily"), "{ran:?}");
        app.clock.advance(Duration::days(1));
    }
    let dir = app.config.backup_dir();
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let n = app.raw_i64("SELECT COUNT(*) FROM audit_events WHERE action = 'system.job' AND target = 'job:backup.daily' AND outcome = 'success'").await;
    assert_eq!(n, 3);
}

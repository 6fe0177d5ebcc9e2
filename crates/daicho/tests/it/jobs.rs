//! Scheduled jobs run once per due time across nodes, under leases that expire.

use std::sync::Arc;

use daicho::jobs::JobRunner;
use daicho_domain::{Clock, SystemScope};
use daicho_testkit::TestApp;
use daicho_testkit::reqwest::StatusCode;
use time::Duration;

fn runner(app: &TestApp, node: &str) -> JobRunner {
    JobRunner::new(app.running.store.clone(), Arc::new(app.clock.clone()), node.into(), Arc::new(app.config.clone()))
}

async fn job_runs(app: &TestApp) -> i64 {
    app.raw_i64("SELECT COUNT(*) FROM audit_events WHERE action = 'system.job'").await
}

#[tokio::test]
async fn a_due_job_runs_exactly_once_whichever_nodes_poll() {
    let app = TestApp::start_with(|c| c.backup.daily = false).await;
    let (a, b) = (runner(&app, "node-a"), runner(&app, "node-b"));
    let (ra, rb) = tokio::join!(a.tick(), b.tick());
    assert_eq!(ra.unwrap().len() + rb.unwrap().len(), 3, "one of the two ran each job");
    assert!(a.tick().await.unwrap().is_empty() && b.tick().await.unwrap().is_empty(), "not due again");
    app.clock.advance(Duration::hours(1));
    assert_eq!(b.tick().await.unwrap(), vec!["imports.purge"], "the hourly job");
    assert!(a.tick().await.unwrap().is_empty());
    app.clock.advance(Duration::hours(22));
    assert_eq!(b.tick().await.unwrap(), vec!["imports.purge"]);
    app.clock.advance(Duration::hours(1));
    assert_eq!(b.tick().await.unwrap(), vec!["sessions.purge", "trash.purge", "imports.purge"]);
    assert!(a.tick().await.unwrap().is_empty());
    assert_eq!(job_runs(&app).await, 8);
    let (lines, ok) = daicho::operator::verify_audit(app.store()).await.unwrap();
    assert!(ok, "{lines:?}");
}

#[tokio::test]
async fn a_job_held_by_a_dead_node_is_taken_over_when_its_lease_expires() {
    let app = TestApp::start_with(|c| c.backup.daily = false).await;
    let sys = SystemScope::jobs();
    let now = app.clock.now();
    app.store().ensure_job(&sys, "sessions.purge", now).await.unwrap();
    // A node claims the job and dies before finishing it.
    assert!(
        app.store().claim_job(&sys, "sessions.purge", "dead-node", now, now + Duration::minutes(10)).await.unwrap()
    );
    let survivor = runner(&app, "survivor");
    assert_eq!(
        survivor.tick().await.unwrap(),
        vec!["trash.purge", "imports.purge"],
        "the lease on sessions.purge is still held"
    );
    app.clock.advance(Duration::minutes(11));
    assert_eq!(survivor.tick().await.unwrap(), vec!["sessions.purge"]);
    // The dead node, if it came back, could not record a run it no longer holds.
    let ev = daicho_domain::NewAuditEvent {
        at: app.clock.now(),
        tenant_id: None,
        actor_id: None,
        actor_login: "system".into(),
        ip: "local".into(),
        user_agent: String::new(),
        action: daicho_domain::AuditAction::JobRun,
        target: "job:sessions.purge".into(),
        outcome: daicho_domain::Outcome::Success,
        details: String::new(),
    };
    assert!(!app.store().finish_job(&sys, "sessions.purge", "dead-node", app.clock.now(), ev).await.unwrap());
    assert_eq!(job_runs(&app).await, 3, "trash.purge, imports.purge and the survivor's sessions.purge");
}

#[tokio::test]
async fn the_purge_removes_sessions_past_every_possible_limit_and_keeps_live_ones() {
    let app = TestApp::start_with(|c| c.backup.daily = false).await;
    let (_, pw) = app.tenant("acme").await;
    let old = app.login("acme", "admin", &pw).await;
    app.clock.advance(Duration::days(8));
    let fresh = app.login("acme", "admin", &pw).await;
    let before = app.raw_i64("SELECT COUNT(*) FROM sessions").await;
    assert_eq!(before, 2);
    runner(&app, "n1").tick().await.unwrap();
    assert_eq!(app.raw_i64("SELECT COUNT(*) FROM sessions").await, 1);
    assert_eq!(fresh.get("/api/v1/me").await.status(), StatusCode::OK);
    assert_eq!(old.get("/api/v1/me").await.status(), StatusCode::UNAUTHORIZED);
    let details: i64 = app
        .raw_i64(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'system.job' AND details = 'removed 1 expired sessions'",
        )
        .await;
    assert_eq!(details, 1);
}

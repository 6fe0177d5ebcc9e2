//! Several stateless nodes on one PostgreSQL database: `daicho serve` runs twice as separate
//! processes and the test moves between them. Needs `DAICHO_TEST_POSTGRES_URL` (scripts/test
//! starts a throwaway cluster and sets it); without it this test fails rather than skips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use daicho::config::Config;
use daicho_domain::{Clock, SystemClock};
use daicho_testkit::reqwest::{self, Certificate, Client, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

struct Node {
    child: Child,
    base: String,
    cert: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn pg_url() -> String {
    daicho_testkit::postgres_admin_url()
        .expect("DAICHO_TEST_POSTGRES_URL is not set: run scripts/test, which starts a PostgreSQL server for this test")
}

async fn start_node(db: &str, name: &str, env: &[(&str, &str)]) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_daicho"))
        .args(["--data-dir", dir.path().to_str().unwrap(), "serve", "--https-addr", &format!("127.0.0.1:{port}")])
        .env("DAICHO__DATABASE__URL", db)
        .env("DAICHO__SERVER__HTTP_REDIRECT", "false")
        .env("DAICHO__JOBS__POLL_SECONDS", "1")
        .env("DAICHO__JOBS__NODE", name)
        .env("DAICHO__LOG__LEVEL", "warn")
        .envs(env.iter().copied())
        .env_remove("DAICHO_CONFIG")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("https://127.0.0.1:{port}");
    let cert_path = dir.path().join("tls/cert.pem");
    // Owned by `Node` from here on, so that every path (even a failed start) kills and reaps it.
    let mut node = Node { child, base, cert: Vec::new(), _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(cert) = std::fs::read(&cert_path)
            && let Ok(c) = Client::builder().tls_certs_only([Certificate::from_pem(&cert).unwrap()]).build()
            && let Ok(r) = c.get(format!("{}/healthz", node.base)).send().await
            && r.status() == StatusCode::OK
        {
            node.cert = cert;
            return node;
        }
        assert!(Instant::now() < deadline, "node {name} did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client that trusts both nodes' certificates and shares one cookie jar: cookies are per
/// host, not per port, so a session set by one node is presented to the other, as behind a
/// load balancer.
fn client(nodes: &[&Node]) -> Client {
    Client::builder()
        .tls_certs_only(nodes.iter().map(|n| Certificate::from_pem(&n.cert).unwrap()))
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct Cluster {
    a: Node,
    b: Node,
    db: String,
    admin_pw: String,
    member_pw: String,
}

async fn cluster() -> Cluster {
    cluster_with(&[], &[]).await
}

/// Two nodes on a fresh database, each with extra environment variables.
async fn cluster_with(env_a: &[(&str, &str)], env_b: &[(&str, &str)]) -> Cluster {
    daicho::install_crypto_provider();
    let db = daicho_testkit::fresh_postgres_database(&pg_url()).await;
    let config = Config {
        database: daicho::config::DatabaseConfig { url: Some(db.clone()), max_connections: 2, ..Default::default() },
        ..Config::default()
    };
    let store = daicho::open_store(&config).await.unwrap();
    let hasher = daicho_authn::PasswordHasher::new().unwrap();
    let now = SystemClock.now();
    let spec = daicho::operator::AdminSpec { login_id: "admin", display_name: "Admin", email: "admin@example.jp" };
    daicho::operator::create_tenant(store.get(), &hasher, now, "acme", "ACME", spec).await.unwrap();
    let admin_pw = daicho::operator::reset_password(store.get(), &hasher, now, "acme", "admin", false).await.unwrap();
    daicho::operator::create_user(store.get(), &hasher, now, "acme", "member1", "M", "m@example.jp", "member")
        .await
        .unwrap();
    let member_pw =
        daicho::operator::reset_password(store.get(), &hasher, now, "acme", "member1", false).await.unwrap();
    let (a, b) = tokio::join!(start_node(&db, "node-a", env_a), start_node(&db, "node-b", env_b));
    Cluster { a, b, db, admin_pw, member_pw }
}

async fn sign_in(c: &Client, node: &Node, login: &str, pw: &str) -> String {
    let r = c
        .post(format!("{}/api/v1/session", node.base))
        .json(&json!({"tenant": "acme", "login_id": login, "password": pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let me: Value = c.get(format!("{}/api/v1/me", node.base)).send().await.unwrap().json().await.unwrap();
    me["csrf_token"].as_str().unwrap().to_owned()
}

async fn job_runs(db: &str, job: &str) -> i64 {
    let config = Config {
        database: daicho::config::DatabaseConfig { url: Some(db.to_owned()), max_connections: 1, ..Default::default() },
        ..Config::default()
    };
    let daicho::StoreHandle::Postgres(pg) = daicho::open_store(&config).await.unwrap() else {
        panic!("postgres expected")
    };
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'system.job' AND target = $1")
        .bind(format!("job:{job}"))
        .fetch_one(pg.pool_for_tests())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_session_started_on_one_node_works_on_the_other_and_ending_it_or_disabling_the_user_ends_it_on_both() {
    let cl = cluster().await;
    let (a, b) = (&cl.a, &cl.b);
    let c = client(&[a, b]);

    // Sign in through A, carry on through B.
    let csrf = sign_in(&c, a, "admin", &cl.admin_pw).await;
    assert_eq!(c.get(format!("{}/api/v1/me", b.base)).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(c.get(format!("{}/admin/users", b.base)).send().await.unwrap().status(), StatusCode::OK);

    // Sign out through B: A refuses the same cookie at once.
    let r = c.delete(format!("{}/api/v1/session", b.base)).header("x-csrf-token", &csrf).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(c.get(format!("{}/api/v1/me", a.base)).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    // Disable a member on A while they are signed in on B: B refuses them at once.
    let member = client(&[a, b]);
    sign_in(&member, b, "member1", &cl.member_pw).await;
    let csrf = sign_in(&c, a, "admin", &cl.admin_pw).await;
    let users: Value = c.get(format!("{}/api/v1/users", a.base)).send().await.unwrap().json().await.unwrap();
    let id = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "member1").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c.post(format!("{}/api/v1/users/{id}/disable", a.base)).header("x-csrf-token", &csrf).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(member.get(format!("{}/api/v1/me", b.base)).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_daily_job_due_once_runs_once_although_both_nodes_poll() {
    let cl = cluster().await;
    // (The backup's run is recorded once its file is written; pg_dump may take a while.)
    let deadline = Instant::now() + Duration::from_secs(60);
    for job in ["sessions.purge", "backup.daily"] {
        while job_runs(&cl.db, job).await == 0 {
            assert!(Instant::now() < deadline, "{job} never ran");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Both nodes poll every second; give them several more chances to run either twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(job_runs(&cl.db, "sessions.purge").await, 1, "exactly one run");
    assert_eq!(job_runs(&cl.db, "backup.daily").await, 1, "exactly one backup run");
    // The daily backup (pg_dump) likewise ran on one node only.
    let backups = std::fs::read_dir(cl.a._dir.path().join("backups")).map(|d| d.count()).unwrap_or(0)
        + std::fs::read_dir(cl.b._dir.path().join("backups")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(backups, 1, "one backup file across both nodes");
}

#[tokio::test]
async fn a_node_killed_during_a_burst_of_writes_loses_no_acknowledged_write() {
    let cl = cluster().await;
    let c = client(&[&cl.a, &cl.b]);
    let csrf = sign_in(&c, &cl.a, "admin", &cl.admin_pw).await;
    let mut tasks = Vec::new();
    for t in 0..6 {
        let c = c.clone();
        let (base, csrf) = (cl.a.base.clone(), csrf.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..400 {
                let login = format!("burst-{t}-{i}");
                let r = c
                    .post(format!("{base}/api/v1/users"))
                    .header("x-csrf-token", &csrf)
                    .json(&json!({"login_id": login, "display_name": login, "email": format!("{login}@example.jp"), "role": "member"}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == StatusCode::CREATED => acked.push(login),
                    Ok(r) => panic!("unexpected {}", r.status()),
                    Err(_) => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let Cluster { a, b, db, .. } = cl;
    let mut a = a;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert!(acked.len() >= 5, "writes were acknowledged before the kill: {}", acked.len());
    assert!(acked.len() < 2400, "the node was killed mid-burst");
    // The session survives on B; every acknowledged user is there.
    let users: Value = c.get(format!("{}/api/v1/users", b.base)).send().await.unwrap().json().await.unwrap();
    let present: std::collections::HashSet<&str> =
        users["users"].as_array().unwrap().iter().map(|u| u["login_id"].as_str().unwrap()).collect();
    let missing: Vec<&String> = acked.iter().filter(|l| !present.contains(l.as_str())).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    // And each tenant's history is still one unbroken chain.
    let config = Config {
        database: daicho::config::DatabaseConfig { url: Some(db), max_connections: 1, ..Default::default() },
        ..Config::default()
    };
    let store = daicho::open_store(&config).await.unwrap();
    let (lines, ok) = daicho::operator::verify_audit(store.get()).await.unwrap();
    assert!(ok, "{lines:?}");
}

#[tokio::test]
async fn a_table_design_changed_through_one_node_is_served_at_once_by_the_other() {
    // Each node keeps the designs it has read; the database's design version tells it when
    // one changed elsewhere.
    let cl = cluster().await;
    let (a, b) = (&cl.a, &cl.b);
    let c = client(&[a, b]);
    let csrf = sign_in(&c, a, "admin", &cl.admin_pw).await;
    let send = |method: reqwest::Method, node: &Node, path: &str, body: Value| {
        c.request(method, format!("{}{path}", node.base)).header("x-csrf-token", &csrf).json(&body).send()
    };
    let get = |node: &Node, path: &str| {
        let url = format!("{}{path}", node.base);
        let c = c.clone();
        async move {
            let r = c.get(url).send().await.unwrap();
            let s = r.status();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let r = send(reqwest::Method::POST, a, "/api/v1/tables", json!({"name": "顧客"})).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let tid = r.json::<Value>().await.unwrap()["table"]["id"].as_str().unwrap().to_owned();
    let mut fields = Vec::new();
    for name in ["氏名", "秘密"] {
        let r = send(
            reqwest::Method::POST,
            a,
            &format!("/api/v1/tables/{tid}/fields"),
            json!({"name": name, "kind": {"type": "text"}}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        fields.push(v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned());
    }
    let r = send(
        reqwest::Method::POST,
        a,
        &format!("/api/v1/tables/{tid}/records"),
        json!({"values": {"氏名": "山田", "秘密": "合言葉"}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let record = format!("/api/v1/tables/{tid}/records/1");
    // B reads (and keeps) the design.
    for _ in 0..2 {
        let (s, v) = get(b, &record).await;
        assert_eq!((s, v["record"]["values"][&fields[1]].as_str()), (StatusCode::OK, Some("合言葉")));
    }
    // A renames a field: B names it so at once.
    let r = send(
        reqwest::Method::PATCH,
        a,
        &format!("/api/v1/tables/{tid}/fields/{}", fields[0]),
        json!({"name": "お名前"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, v) = get(b, &format!("/api/v1/tables/{tid}")).await;
    let names: Vec<&str> =
        v["table"]["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["お名前", "秘密"]);
    assert_eq!(get(b, &format!("/api/v1/tables/{tid}/records?sort=お名前")).await.0, StatusCode::OK);
    // A deletes a field: B no longer shows, sorts by or searches it.
    let r = send(reqwest::Method::DELETE, a, &format!("/api/v1/tables/{tid}/fields/{}", fields[1]), json!({}))
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (s, v) = get(b, &record).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["record"]["values"].get(&fields[1]).is_none(), "{v}");
    assert!(get(b, &format!("/api/v1/tables/{tid}/records?sort=秘密")).await.0.is_client_error());
    let (_, v) = get(b, &format!("/api/v1/tables/{tid}/records?q=%E5%90%88%E8%A8%80%E8%91%89")).await;
    assert_eq!(v["records"].as_array().map(Vec::len), Some(0), "{v}");
    // A deletes the table: B answers 404.
    let r = send(reqwest::Method::DELETE, a, &format!("/api/v1/tables/{tid}"), json!({})).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(get(b, &record).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_right_revoked_through_one_node_is_refused_at_once_by_the_other() {
    // Each node keeps the grants a user's requests read; the database's design version, which
    // every change to groups, members and grants raises, tells it when they changed elsewhere.
    let cl = cluster().await;
    let (a, b) = (&cl.a, &cl.b);
    let admin = client(&[a, b]);
    let csrf = sign_in(&admin, a, "admin", &cl.admin_pw).await;
    let send = |method: reqwest::Method, path: &str, body: Value| {
        admin.request(method, format!("{}{path}", a.base)).header("x-csrf-token", &csrf).json(&body).send()
    };
    let r = send(reqwest::Method::POST, "/api/v1/tables", json!({"name": "顧客"})).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let tid = r.json::<Value>().await.unwrap()["table"]["id"].as_str().unwrap().to_owned();
    let r = send(reqwest::Method::POST, &format!("/api/v1/tables/{tid}/records"), json!({"values": {}})).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let users: Value = admin.get(format!("{}/api/v1/users", a.base)).send().await.unwrap().json().await.unwrap();
    let member_id = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "member1").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = send(reqwest::Method::POST, "/api/v1/groups", json!({"name": "営業", "description": ""})).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let group = r.json::<Value>().await.unwrap()["group"]["id"].as_str().unwrap().to_owned();
    let r = send(reqwest::Method::PUT, &format!("/api/v1/groups/{group}/members"), json!({"members": [member_id]}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let grants = format!("/api/v1/groups/{group}/grants/{tid}");
    let r = send(reqwest::Method::PUT, &grants, json!({"rights": ["view"]})).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The member reads through B (which keeps their grants).
    let member = client(&[a, b]);
    sign_in(&member, b, "member1", &cl.member_pw).await;
    let record = format!("{}/api/v1/tables/{tid}/records/1", b.base);
    for _ in 0..3 {
        assert_eq!(member.get(&record).send().await.unwrap().status(), StatusCode::OK);
    }
    // A takes the right away: B refuses the member's next request.
    let r = send(reqwest::Method::PUT, &grants, json!({"rights": []})).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(member.get(&record).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    // Granted again through A, then the member taken out of the group through A.
    let r = send(reqwest::Method::PUT, &grants, json!({"rights": ["view"]})).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(member.get(&record).send().await.unwrap().status(), StatusCode::OK);
    let r =
        send(reqwest::Method::PUT, &format!("/api/v1/groups/{group}/members"), json!({"members": []})).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(member.get(&record).send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn connections_the_database_ended_are_replaced_before_use_once_idle_past_the_window() {
    // PostgreSQL ends every connection of both nodes (as a restart or failover would). Node A
    // checks a pooled connection before use once it has been idle 0 s or more, so its next
    // request runs on a new connection. Node B's window is an hour: its requests meet the dead
    // connections first and get a retryable 503, never a 500, until each is replaced. B's 503
    // also proves the connections really were ended.
    let quiet = ("DAICHO__JOBS__ENABLED", "false");
    let pool = ("DAICHO__DATABASE__MAX_CONNECTIONS", "2");
    let cl = cluster_with(
        &[quiet, pool, ("DAICHO__DATABASE__RECHECK_IDLE_AFTER_SECONDS", "0")],
        &[quiet, pool, ("DAICHO__DATABASE__RECHECK_IDLE_AFTER_SECONDS", "3600")],
    )
    .await;
    let (a, b) = (&cl.a, &cl.b);
    let c = client(&[a, b]);
    sign_in(&c, a, "admin", &cl.admin_pw).await;
    let me = |node: &Node| c.get(format!("{}/api/v1/me", node.base)).send();
    for node in [a, b] {
        for _ in 0..3 {
            assert_eq!(me(node).await.unwrap().status(), StatusCode::OK);
        }
    }

    let mut admin = sqlx::PgConnection::connect(&cl.db).await.unwrap();
    let ended: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()) AS t",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(ended >= 2, "each node held a connection: {ended} ended");
    // pg_terminate_backend only signals; wait until the backends are gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} backends outlived pg_terminate_backend");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert_eq!(me(a).await.unwrap().status(), StatusCode::OK, "node A answers on a new connection");
    let mut seen = Vec::new();
    loop {
        let s = me(b).await.unwrap().status();
        assert!(s == StatusCode::OK || s == StatusCode::SERVICE_UNAVAILABLE, "node B answered {s}");
        seen.push(s);
        if s == StatusCode::OK {
            break;
        }
        assert!(seen.len() <= 2, "node B kept dead connections beyond its pool of 2: {seen:?}");
    }
    assert_eq!(seen[0], StatusCode::SERVICE_UNAVAILABLE, "node B met a dead connection first: {seen:?}");
}

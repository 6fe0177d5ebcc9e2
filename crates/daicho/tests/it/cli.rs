//! The `daicho` binary: configuration checks and the operator's commands, run as a process.

use std::process::Command;

fn daicho(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_daicho"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("DAICHO_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_accepts_the_defaults_and_names_an_unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = daicho(dir.path(), &["check-config"]);
    assert_eq!(code, 0);
    assert!(out.contains("127.0.0.1:8443"));
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[server]\nhttps_port = 1\n").unwrap();
    let (code, _, err) = daicho(dir.path(), &["--config", file.to_str().unwrap(), "check-config"]);
    assert_ne!(code, 0);
    assert!(err.contains("https_port"), "{err}");
}

#[test]
fn environment_variables_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_daicho"))
        .args(["--data-dir", dir.path().to_str().unwrap(), "check-config"])
        .env("DAICHO__SERVER__HTTPS_ADDR", "127.0.0.1:9999")
        .env("DAICHO__DATABASE__URL", "sqlite://user:s3cret@/tmp/x.db")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("127.0.0.1:9999"), "{stdout}");
    assert!(!stdout.contains("s3cret"), "secrets are redacted");
}

#[test]
fn the_operator_creates_a_tenant_and_a_user_and_verifies_the_audit_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = daicho(
        dir.path(),
        &[
            "tenant",
            "create",
            "--code",
            "acme",
            "--name",
            "ACME 株式会社",
            "--admin-name",
            "Admin",
            "--admin-email",
            "admin@acme.example",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("one-time password: "));
    let (code, _, err) = daicho(
        dir.path(),
        &["tenant", "create", "--code", "acme", "--name", "again", "--admin-name", "A", "--admin-email", "a@a.jp"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("cannot create tenant"), "{err}");
    let (code, out, _) = daicho(
        dir.path(),
        &["user", "create", "--tenant", "acme", "--login", "taro", "--name", "Taro", "--email", "taro@acme.example"],
    );
    assert_eq!(code, 0);
    assert!(out.contains("created user taro"));
    let (code, out, _) = daicho(dir.path(), &["tenant", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("acme\tACME 株式会社"));
    let (code, out, _) = daicho(dir.path(), &["audit", "verify"]);
    assert_eq!(code, 0);
    assert!(out.contains("intact (3 events)"), "{out}");
    let (code, _, err) =
        daicho(dir.path(), &["user", "create", "--tenant", "nope", "--login", "x", "--name", "x", "--email", "x@x.jp"]);
    assert_ne!(code, 0);
    assert!(err.contains("no tenant with code nope"));
}

#[test]
fn migrate_store_copies_into_an_empty_store_verifies_and_refuses_a_non_empty_one() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = daicho(
        dir.path(),
        &[
            "tenant",
            "create",
            "--code",
            "acme",
            "--name",
            "ACME",
            "--admin-name",
            "A",
            "--admin-email",
            "a@acme.example",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let target = format!("sqlite://{}", dir.path().join("copy.db").display());
    let (code, out, err) = daicho(dir.path(), &["migrate-store", "--to", &target]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("copy verified"), "{out}");
    assert!(out.contains("users              source         1  target         1"), "{out}");
    let (code, _, err) = daicho(dir.path(), &["migrate-store", "--to", &target]);
    assert_ne!(code, 0);
    assert!(err.contains("not empty"), "{err}");
}

//! `daicho`: the single binary. Parses the command line and hands over to the library.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use daicho::config::{Config, FlagOverrides, ServerFlags};
use daicho::operator::{self, AdminSpec};
use daicho_authn::PasswordHasher;
use daicho_domain::{Clock, OperatorScope, SystemClock};

#[derive(Parser)]
#[command(name = "daicho", version, about = "Daicho: a hosted web database for everyday business work")]
struct Cli {
    /// TOML configuration file (also $DAICHO_CONFIG).
    #[arg(long, global = true, env = "DAICHO_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (SQLite database, generated TLS certificate).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone, Default)]
struct ServeArgs {
    /// Address for HTTPS, e.g. 127.0.0.1:8443.
    #[arg(long)]
    https_addr: Option<std::net::SocketAddr>,
    /// Address for the plain-HTTP redirect listener.
    #[arg(long)]
    http_addr: Option<std::net::SocketAddr>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTPS (and the HTTP redirect) until interrupted.
    Serve(ServeArgs),
    /// Serve with a seeded demo tenant; prints its sign-in details.
    Demo(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Load and check the configuration, print it with secrets redacted, and exit.
    CheckConfig,
    /// Copy this installation's store (e.g. SQLite) into an empty one (e.g. PostgreSQL) and
    /// verify the copy by row counts and audit chains. Stop the nodes first.
    MigrateStore {
        /// The target database URL, e.g. postgres://daicho@db.internal/daicho
        #[arg(long)]
        to: String,
    },
    /// Write a backup of the store now (SQLite: a consistent snapshot; PostgreSQL: pg_dump).
    Backup {
        /// The backup file (default: a time-stamped file in backup.dir).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Restore a backup into the configured store, replacing what is there. Stop every node first.
    Restore {
        #[arg(long)]
        from: PathBuf,
        /// Confirm that the current contents are to be replaced.
        #[arg(long)]
        yes: bool,
    },
    /// Tenants (operator).
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Users (operator).
    #[command(subcommand)]
    User(UserCmd),
    /// The operation history (operator).
    #[command(subcommand)]
    Audit(AuditCmd),
}

#[derive(Subcommand)]
enum TenantCmd {
    /// Create a tenant and its first administrator; prints a one-time password.
    Create {
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "admin")]
        admin_login: String,
        #[arg(long)]
        admin_name: String,
        #[arg(long)]
        admin_email: String,
    },
    /// List tenants.
    List,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user to a tenant; prints a one-time password.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        login: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        /// member or tenant_admin
        #[arg(long, default_value = "member")]
        role: String,
    },
    /// Give a user a new one-time password (to be changed at next sign-in).
    ResetPassword {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        login: String,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Verify every hash chain; exits non-zero if any is broken.
    Verify,
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if config.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn hasher() -> anyhow::Result<PasswordHasher> {
    tokio::task::spawn_blocking(PasswordHasher::new).await?.map_err(|e| anyhow::anyhow!("{e}"))
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    if demo {
        let store = daicho::open_store(&config).await?;
        let creds = operator::seed_demo(store.get(), &hasher().await?, clock.now()).await?;
        let port = config.server.https_addr.port();
        println!(
            "\nDaicho demo is starting at https://127.0.0.1:{port}/ (self-signed certificate: accept it in the browser)\n"
        );
        println!("  tenant code : {}", creds.tenant);
        println!("  admin       : {}  password: {}", creds.admin_login, creds.admin_password);
        println!("  staff       : {}  password: {}", creds.member_login, creds.member_password);
        if let Some((login, password)) = &creds.support {
            println!("  support     : {login}  password: {password}");
        }
        println!();
    }
    let running = daicho::start(&config, clock).await?;
    tracing::info!(https = %running.https.addr, http = ?running.http.as_ref().map(|h| h.addr), "Daicho is serving");
    // Ctrl-C, or SIGTERM from systemd or a container runtime: stop accepting, let in-flight
    // requests finish (up to 10 s), then exit.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    running.shutdown();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(12), running.https.task).await;
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    let serve_args = match &cli.command {
        Command::Serve(a) | Command::Demo(a) => a.clone(),
        _ => ServeArgs::default(),
    };
    let flags = FlagOverrides {
        data_dir: cli.data_dir.clone(),
        server: (serve_args.https_addr.is_some() || serve_args.http_addr.is_some())
            .then_some(ServerFlags { https_addr: serve_args.https_addr, http_addr: serve_args.http_addr }),
    };
    let config = Config::load(cli.config.as_deref(), &flags).map_err(anyhow::Error::msg)?;
    init_logging(&config);
    daicho::install_crypto_provider();
    let now = SystemClock.now();
    match cli.command {
        Command::Serve(_) => serve(config, false).await?,
        Command::Demo(_) => serve(config, true).await?,
        Command::Migrate => {
            daicho::open_store(&config).await?;
            println!("database is up to date: {}", daicho::config::redact_url(&config.database_url()));
        }
        Command::MigrateStore { to } => {
            let source = daicho::open_store(&config).await?;
            let mut target_config = config.clone();
            target_config.database.url = Some(to);
            target_config.validate().map_err(anyhow::Error::msg)?;
            let target = daicho::open_store(&target_config).await?;
            println!(
                "copying {} -> {}",
                daicho::config::redact_url(&config.database_url()),
                daicho::config::redact_url(&target_config.database_url())
            );
            let report = operator::migrate_store(source.get(), target.get()).await?;
            for (table, a, b) in &report.counts {
                println!("{table:<18} source {a:>9}  target {b:>9}{}", if a == b { "" } else { "  MISMATCH" });
            }
            for line in &report.chains {
                println!("{line}");
            }
            println!("{}", if report.ok { "copy verified" } else { "copy FAILED verification" });
            return Ok(if report.ok { 0 } else { 1 });
        }
        Command::Backup { out } => {
            let store = daicho::open_store(&config).await?;
            let out = out.unwrap_or_else(|| config.backup_dir().join(daicho::backup::file_name(&store, now)));
            let size = daicho::backup::backup(&store, &config, &out).await?;
            println!("wrote {} ({size} bytes)", out.display());
        }
        Command::Restore { from, yes } => {
            if !yes {
                anyhow::bail!("restore replaces the current database; stop every node and run again with --yes");
            }
            daicho::backup::restore(&config, &from).await?;
            let store = daicho::open_store(&config).await?;
            let (lines, ok) = operator::verify_audit(store.get()).await?;
            for l in lines {
                println!("{l}");
            }
            println!("restored from {}", from.display());
            return Ok(if ok { 0 } else { 1 });
        }
        Command::CheckConfig => {
            println!("configuration is valid:\n{config:#?}");
        }
        Command::Tenant(TenantCmd::Create { code, name, admin_login, admin_name, admin_email }) => {
            let store = daicho::open_store(&config).await?;
            let spec = AdminSpec { login_id: &admin_login, display_name: &admin_name, email: &admin_email };
            let (t, u, otp) = operator::create_tenant(store.get(), &hasher().await?, now, &code, &name, spec).await?;
            println!("created tenant {} ({})", t.code, t.name.as_str());
            println!("first administrator: {}  one-time password: {otp}", u.login_id);
            println!("the password must be changed at first sign-in; it is not shown again");
        }
        Command::Tenant(TenantCmd::List) => {
            let store = daicho::open_store(&config).await?;
            for t in store.get().list_tenants(&OperatorScope::local()).await.map_err(|e| anyhow::anyhow!("{e}"))? {
                println!("{}\t{}\t{}", t.code, t.name.as_str(), t.id);
            }
        }
        Command::User(UserCmd::Create { tenant, login, name, email, role }) => {
            let store = daicho::open_store(&config).await?;
            let (u, otp) =
                operator::create_user(store.get(), &hasher().await?, now, &tenant, &login, &name, &email, &role)
                    .await?;
            println!("created user {} in tenant {tenant}  one-time password: {otp}", u.login_id);
        }
        Command::User(UserCmd::ResetPassword { tenant, login }) => {
            let store = daicho::open_store(&config).await?;
            let otp = operator::reset_password(store.get(), &hasher().await?, now, &tenant, &login, true).await?;
            println!("new one-time password for {login} in {tenant}: {otp}");
        }
        Command::Audit(AuditCmd::Verify) => {
            let store = daicho::open_store(&config).await?;
            let (lines, ok) = operator::verify_audit(store.get()).await?;
            for l in lines {
                println!("{l}");
            }
            return Ok(if ok { 0 } else { 1 });
        }
    }
    Ok(0)
}

/// Memory settings that can only be made before the process starts, so the server
/// re-executes itself once with them (settings an operator made already are left alone):
/// - mimalloc, the Rust allocator, by default keeps freed memory for a while and commits its
///   arenas eagerly: a server that has checked a few passwords (argon2id takes 19 MiB each)
///   would idle at 77 MB instead of 19. `MIMALLOC_PURGE_DELAY=0` returns freed memory at once
///   and `MIMALLOC_ARENA_EAGER_COMMIT=0` commits it as it is used.
/// - glibc's malloc, still used by SQLite, raises its mmap threshold after the first large
///   block is freed and then keeps large blocks in its heap arenas; a fixed threshold keeps
///   them in mmap, returned on free.
///
/// See docs/PERFORMANCE.md.
#[cfg(target_os = "linux")]
fn with_malloc_tunables() {
    use std::os::unix::process::CommandExt as _;
    const TUNABLE: &str = "glibc.malloc.mmap_threshold=131072";
    const MIMALLOC: [(&str, &str); 2] = [("MIMALLOC_PURGE_DELAY", "0"), ("MIMALLOC_ARENA_EAGER_COMMIT", "0")];
    // Once only, even where the loader drops a variable (set-user-id binaries).
    if std::env::var_os("DAICHO_REEXECUTED").is_some() {
        return;
    }
    let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    let glibc = (!current.contains("glibc.malloc.mmap_threshold"))
        .then(|| if current.is_empty() { TUNABLE.to_owned() } else { format!("{current}:{TUNABLE}") });
    let mimalloc: Vec<(&str, &str)> = MIMALLOC.iter().copied().filter(|(k, _)| std::env::var_os(k).is_none()).collect();
    if glibc.is_none() && mimalloc.is_empty() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1)).env("DAICHO_REEXECUTED", "1").envs(mimalloc);
    if let Some(value) = glibc {
        cmd.env("GLIBC_TUNABLES", value);
    }
    let err = cmd.exec();
    // Only reached when the exec failed: carry on with the default allocator settings.
    eprintln!("daicho: could not restart with its memory settings ({err}); continuing");
}

/// The allocator: under concurrent API load glibc's malloc took about 15 % of the server's CPU
/// (docs/PERFORMANCE.md, "Allocator"); its settings are made by `with_malloc_tunables`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    #[cfg(target_os = "linux")]
    if matches!(cli.command, Command::Serve(_) | Command::Demo(_)) {
        with_malloc_tunables();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("daicho: cannot start the runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(0) => std::process::ExitCode::SUCCESS,
        Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("daicho: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

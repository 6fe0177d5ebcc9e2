//! Scheduled work, run exactly once however many nodes run. Every node polls; a due job is
//! claimed with one atomic UPDATE on its row (a lease with an expiry), so of several nodes only
//! one wins; a node that dies mid-job loses its lease when it expires and another node takes
//! the job over. Time comes from the injected clock, so tests move it instead of waiting.

use std::sync::Arc;

use daicho_domain::{AuditAction, Clock, NewAuditEvent, Outcome, SystemScope};
use daicho_store::Store;

use crate::StoreHandle;
use crate::config::Config;
use time::{Duration, OffsetDateTime};

/// A job: its name, how often it runs, and how long a lease lasts before another node may take
/// over.
pub struct JobSpec {
    pub name: &'static str,
    pub every: Duration,
    pub lease: Duration,
}

/// The installation's scheduled jobs.
pub const JOBS: &[JobSpec] = &[
    JobSpec { name: "sessions.purge", every: Duration::DAY, lease: Duration::minutes(10) },
    JobSpec { name: "backup.daily", every: Duration::DAY, lease: Duration::hours(2) },
    JobSpec { name: "trash.purge", every: Duration::DAY, lease: Duration::minutes(30) },
    JobSpec { name: "imports.purge", every: Duration::HOUR, lease: Duration::minutes(10) },
];

#[derive(Clone)]
pub struct JobRunner {
    handle: StoreHandle,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    node: String,
    config: Arc<Config>,
}

impl JobRunner {
    pub fn new(handle: StoreHandle, clock: Arc<dyn Clock>, node: String, config: Arc<Config>) -> Self {
        Self { store: handle.as_dyn(), handle, clock, node, config }
    }

    fn enabled(&self, job: &str) -> bool {
        job != "backup.daily" || self.config.backup.daily
    }

    /// Claims and runs every due job once; returns the names of the jobs this node ran.
    pub async fn tick(&self) -> anyhow::Result<Vec<&'static str>> {
        let sys = SystemScope::jobs();
        let mut ran = Vec::new();
        for job in JOBS.iter().filter(|j| self.enabled(j.name)) {
            let now = self.clock.now();
            self.store.ensure_job(&sys, job.name, now).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            if !self
                .store
                .claim_job(&sys, job.name, &self.node, now, now + job.lease)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                continue;
            }
            let (outcome, details) = match self.run(&sys, job.name, now).await {
                Ok(d) => (Outcome::Success, d),
                Err(e) => {
                    tracing::error!(job = job.name, error = %e, "job failed");
                    (Outcome::Failure, format!("failed: {e}"))
                }
            };
            let event = NewAuditEvent {
                at: self.clock.now(),
                tenant_id: None,
                actor_id: None,
                actor_login: "system".into(),
                ip: "local".into(),
                user_agent: format!("daicho-node {}", self.node),
                action: AuditAction::JobRun,
                target: format!("job:{}", job.name),
                outcome,
                details,
            };
            let next = now + job.every;
            if self
                .store
                .finish_job(&sys, job.name, &self.node, next, event)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                ran.push(job.name);
            } else {
                tracing::warn!(job = job.name, "lease lost before the job finished; another node took over");
            }
        }
        Ok(ran)
    }

    async fn run(&self, sys: &SystemScope, name: &str, now: OffsetDateTime) -> anyhow::Result<String> {
        match name {
            // Sessions are ended lazily when presented after their limits; this removes the
            // rows of sessions nobody presents again. The bounds are the largest a policy allows
            // (idle 1440 minutes, absolute 168 hours), so no live session is touched.
            "sessions.purge" => {
                let n = self
                    .store
                    .purge_sessions(sys, now - Duration::minutes(1440), now - Duration::hours(168))
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok(format!("removed {n} expired sessions"))
            }
            "backup.daily" => {
                let dir = self.config.backup_dir();
                let out = dir.join(crate::backup::file_name(&self.handle, now));
                let size = crate::backup::backup(&self.handle, &self.config, &out).await?;
                let removed = crate::backup::prune(&dir, self.config.backup.keep as usize)?;
                Ok(format!("wrote {} ({size} bytes); removed {removed} old backups", out.display()))
            }
            // Tables and fields deleted more than TRASH_DAYS ago go for good, each purge
            // recorded in its tenant's history.
            "trash.purge" => {
                let days = daicho_domain::table::TRASH_DAYS;
                let template = NewAuditEvent {
                    at: now,
                    tenant_id: None,
                    actor_id: None,
                    actor_login: "system".into(),
                    ip: "local".into(),
                    user_agent: format!("daicho-node {}", self.node),
                    action: AuditAction::TablePurge,
                    target: String::new(),
                    outcome: Outcome::Success,
                    details: format!("in the trash for more than {days} days"),
                };
                let n = self
                    .store
                    .purge_trash(sys, now - Duration::days(days), template)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok(format!("purged {n} tables and fields from the trash"))
            }
            // Import files staged for the mapping of their columns and never imported go after
            // the hour in which they may be used (`daicho_web::handlers::table_pages`).
            "imports.purge" => {
                let n = self
                    .store
                    .purge_staged_imports(sys, now - Duration::hours(1))
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok(format!("removed {n} staged import files"))
            }
            other => anyhow::bail!("unknown job {other}"),
        }
    }

    /// Polls until the task is dropped.
    pub async fn run_forever(self, every: std::time::Duration) {
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "job runner tick failed");
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// This node's name in leases and logs: the configured one, or host name and process id.
pub fn default_node_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
    let host = if host.is_empty() { "node".to_owned() } else { host };
    format!("{host}-{}", std::process::id())
}

//! Checkpoints off the request path.
//!
//! In WAL mode a commit appends its pages to the `-wal` file; a checkpoint copies them back into
//! the database file and syncs it. By default SQLite runs one inside whichever commit takes the
//! WAL past 1,000 pages, so that one save in a few hundred pays for the copying and the fsync of
//! everybody's writes (single-row updates of an indexed table on this machine: 0.04 ms at the
//! median, 13–14 ms at the 99.9th percentile; 0.25–0.30 ms with the checkpoints here), and an
//! import's commit copied its own 60 MB before it returned.
//!
//! Here no commit checkpoints below [`SAFETY_PAGES`]: a task of the store runs a PASSIVE
//! checkpoint every [`EVERY`] on one of the pool's connections, borrowed for each pass rather
//! than kept (with its worker thread). PASSIVE takes no lock that a reader or a writer waits
//! for; it copies what no reader still needs and leaves the rest for the next pass. Should the
//! task fall behind (or fail), the first commit past `SAFETY_PAGES` checkpoints as before, so
//! the WAL stays bounded. `JOURNAL_LIMIT` truncates the `-wal` file when SQLite starts it again
//! from the top, so that one large import does not leave its size on disk until the server
//! stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::{Row, SqliteConnection, SqlitePool};

/// How often the task checkpoints.
pub(crate) const EVERY: Duration = Duration::from_secs(1);

/// A commit that leaves the WAL longer than this (in pages of 4 KiB: 128 MiB) still
/// checkpoints itself, as SQLite does by default at 1,000: the bound should the task fall
/// behind. An import of 100,000 rows into a table of a million writes about 15,000 pages.
pub(crate) const SAFETY_PAGES: u32 = 32_768;

/// The size, in bytes, the `-wal` file is truncated to when it is started again.
pub(crate) const JOURNAL_LIMIT: u64 = 16 * 1024 * 1024;

/// What one checkpoint did: the WAL's length in frames and how many of them are now in the
/// database file (SQLite's `wal_checkpoint` result; both -1 when the database is not in WAL
/// mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub wal_frames: i64,
    pub copied_frames: i64,
}

/// Runs one PASSIVE checkpoint on `conn`.
pub(crate) async fn run(conn: &mut SqliteConnection) -> sqlx::Result<Checkpoint> {
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&mut *conn).await?;
    Ok(Checkpoint { wal_frames: row.try_get(1)?, copied_frames: row.try_get(2)? })
}

/// The store's checkpoint task; dropping the last clone of the store stops it.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    task: tokio::task::JoinHandle<()>,
    passes: Arc<AtomicU64>,
}

impl Checkpointer {
    /// Starts the task on `pool`.
    pub(crate) fn start(pool: SqlitePool) -> Self {
        let passes = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(run_forever(pool, Arc::clone(&passes)));
        Self { task, passes }
    }

    /// How many passes ended with every frame of the WAL in the database file.
    pub(crate) fn passes(&self) -> u64 {
        self.passes.load(Ordering::Relaxed)
    }

    /// Stops the task (for a test that counts what commits leave in the WAL).
    #[cfg(test)]
    pub(crate) fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run_forever(pool: SqlitePool, passes: Arc<AtomicU64>) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut conn = match pool.acquire().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "the checkpoint task found no connection");
                continue;
            }
        };
        match run(&mut conn).await {
            Ok(done) if done.wal_frames > 0 && done.copied_frames == done.wal_frames => {
                passes.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
            // Meanwhile commits past SAFETY_PAGES checkpoint.
            Err(e) => tracing::warn!(error = %e, "a checkpoint failed"),
        }
    }
}

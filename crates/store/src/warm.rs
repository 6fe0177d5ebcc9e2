//! Connections kept warm between read statements, in front of a store's pool.
//!
//! sqlx pings a connection every time it goes back to its pool (a guard against a statement
//! cancelled halfway). A ping is a round trip like a statement: to the PostgreSQL backend over
//! the network, or to SQLite's worker thread. A request that reads its session and then one
//! record made four round trips for two statements; under load the pings' sends took 16 % of
//! the server's CPU on PostgreSQL, and the pings 9 % on SQLite.
//!
//! A read statement that completed leaves its connection idle, outside any transaction, with
//! nothing pending, so the next read may use it as it is. A store takes a connection for a
//! read with [`Warm::take`] (falling back to its pool) and, once the statement has completed,
//! gives it back with [`Lease::done`]: it stays here, not pinged, for the next read.
//!
//! - At most half the pool is kept: the other half always circulates through the pool, so
//!   whatever waits for a pooled connection (a transaction, an import) gets one as soon as a
//!   statement ends, and nothing is held idle here while something waits for the pool forever.
//! - Only [`Lease::done`] keeps a connection, after its statement completed. A lease dropped
//!   otherwise (an error, a request cancelled halfway) lets its connection go back to the pool,
//!   which pings it and closes it if broken, as for any other connection.
//! - One idle for the pool's recheck window (`PoolSettings::recheck_idle_after`) or taken from
//!   the pool longer ago than [`Warm::MAX_AGE`] goes back to the pool instead of being used:
//!   the pool checks one idle that long before use, and closes one past its lifetime. A zero
//!   window (check before every use) keeps none.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Idle connections of type `C` (a pooled connection), the most recently used on top.
#[derive(Debug)]
pub struct Warm<C> {
    idle: Mutex<Vec<Idle<C>>>,
    cap: usize,
    recheck: Duration,
}

#[derive(Debug)]
struct Idle<C> {
    conn: C,
    /// When it went idle.
    since: Instant,
    /// When it was taken from the pool.
    taken: Instant,
}

/// A connection for one read statement. Dropped without [`Lease::done`], its connection goes
/// back to the pool.
#[derive(Debug)]
pub struct Lease<'a, C> {
    warm: &'a Warm<C>,
    conn: C,
    taken: Instant,
}

impl<C> Warm<C> {
    /// How long a connection may be kept warm after it was taken from the pool. Well below
    /// sqlx's default lifetime of 30 minutes, which the pool enforces when it comes back.
    pub const MAX_AGE: Duration = Duration::from_secs(10 * 60);

    /// For a pool of `max_connections`, checking an idle connection before use once it has
    /// been idle for `recheck`.
    pub fn new(max_connections: u32, recheck: Duration) -> Self {
        let cap = if recheck.is_zero() { 0 } else { (max_connections / 2) as usize };
        Self { idle: Mutex::new(Vec::new()), cap, recheck }
    }

    /// The most connections kept at once.
    pub fn cap(&self) -> usize {
        self.cap
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Idle<C>>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A lease on the most recently used connection that is still fresh, if any; stale ones go
    /// back to the pool (dropped).
    pub fn take(&self) -> Option<Lease<'_, C>> {
        self.take_at(Instant::now())
    }

    fn take_at(&self, now: Instant) -> Option<Lease<'_, C>> {
        let mut stale = Vec::new();
        let fresh = {
            let mut idle = self.lock();
            loop {
                match idle.pop() {
                    None => break None,
                    Some(i) if now - i.since < self.recheck && now - i.taken < Self::MAX_AGE => break Some(i),
                    Some(i) => stale.push(i),
                }
            }
        };
        // Dropped outside the lock: giving a connection back to the pool spawns its ping.
        drop(stale);
        fresh.map(|i| Lease { warm: self, conn: i.conn, taken: i.taken })
    }

    /// A lease on a connection just taken from the pool.
    pub fn lease(&self, conn: C) -> Lease<'_, C> {
        Lease { warm: self, conn, taken: Instant::now() }
    }

    /// A lease on a warm connection, or else on one from `acquire` (the pool; not polled
    /// when a warm one is there).
    pub async fn lease_or<E>(&self, acquire: impl Future<Output = Result<C, E>>) -> Result<Lease<'_, C>, E> {
        match self.take() {
            Some(lease) => Ok(lease),
            None => Ok(self.lease(acquire.await?)),
        }
    }

    fn put_at(&self, conn: C, taken: Instant, now: Instant) {
        let overflow = {
            let mut idle = self.lock();
            if idle.len() < self.cap {
                idle.push(Idle { conn, since: now, taken });
                None
            } else {
                Some(conn)
            }
        };
        drop(overflow);
    }

    /// Gives every warm connection back to the pool (for tests that hold the whole pool).
    pub fn release(&self) {
        let all = std::mem::take(&mut *self.lock());
        drop(all);
    }

    /// How many connections are warm now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<C> Lease<'_, C> {
    /// The statement completed: the connection stays warm for the next read (or goes back to
    /// the pool when enough are warm).
    pub fn done(self) {
        self.warm.put_at(self.conn, self.taken, Instant::now());
    }
}

impl<C> std::ops::Deref for Lease<'_, C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.conn
    }
}

impl<C> std::ops::DerefMut for Lease<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECHECK: Duration = Duration::from_secs(5);

    #[test]
    fn keeps_at_most_half_the_pool_and_hands_out_the_latest_first() {
        let w = Warm::new(5, RECHECK);
        assert_eq!(w.cap(), 2);
        let t0 = Instant::now();
        for n in 1..=4 {
            w.put_at(n, t0, t0);
        }
        assert_eq!(w.len(), 2, "the rest went back to the pool");
        let a = w.take_at(t0).unwrap();
        let b = w.take_at(t0).unwrap();
        assert_eq!((*a, *b), (2, 1));
        assert!(w.take_at(t0).is_none());
        assert!(w.is_empty());
    }

    #[test]
    fn a_connection_idle_for_the_recheck_window_goes_back_to_the_pool() {
        let w = Warm::new(8, RECHECK);
        let t0 = Instant::now();
        w.put_at("old", t0, t0);
        w.put_at("new", t0, t0 + RECHECK - Duration::from_millis(1));
        let later = t0 + RECHECK;
        assert_eq!(*w.take_at(later).unwrap(), "new");
        assert!(w.take_at(later).is_none(), "the stale one was let go, not handed out");
        assert!(w.is_empty());
    }

    #[test]
    fn a_connection_taken_from_the_pool_long_ago_goes_back_even_if_busy() {
        let warm = Warm::new(8, RECHECK);
        let t0 = Instant::now();
        let now = t0 + Warm::<u8>::MAX_AGE;
        warm.put_at(1, t0, now - Duration::from_secs(1));
        assert!(warm.take_at(now).is_none());
        warm.put_at(2, t0 + Duration::from_secs(1), now - Duration::from_secs(1));
        assert_eq!(*warm.take_at(now).unwrap(), 2);
    }

    #[test]
    fn a_zero_recheck_window_keeps_nothing() {
        let w = Warm::new(8, Duration::ZERO);
        assert_eq!(w.cap(), 0);
        w.lease(1).done();
        assert!(w.is_empty());
        assert_eq!(Warm::<u8>::new(1, RECHECK).cap(), 0, "a pool of one keeps its connection circulating");
    }

    #[tokio::test]
    async fn the_pool_is_asked_only_when_no_connection_is_warm() {
        let w = Warm::new(8, RECHECK);
        let from_pool = w.lease_or(async { Ok::<_, ()>(1) }).await.unwrap();
        from_pool.done();
        let warm = w.lease_or::<()>(async { panic!("the pool was asked although one was warm") }).await;
        assert_eq!(*warm.unwrap(), 1);
        assert_eq!(w.lease_or(async { Err::<u8, _>("pool timed out") }).await.unwrap_err(), "pool timed out");
    }

    #[test]
    fn only_a_lease_marked_done_is_kept() {
        let w = Warm::new(8, RECHECK);
        let _ = w.lease(1);
        assert!(w.is_empty(), "a dropped lease (an error, a cancelled request) goes back to the pool");
        let mut l = w.lease(2);
        *l += 1;
        l.done();
        let again = w.take().unwrap();
        assert_eq!(*again, 3);
        again.done();
        w.release();
        assert!(w.is_empty());
    }
}

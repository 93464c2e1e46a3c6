//! Failed attempts and lockouts in SQLite: one row per (user, source network)
//! and one user-wide row per user.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{db, parse_ts, ts, SqliteStore};
use crate::store::{AttemptLimits, AttemptLock, AttemptStore, FailureTally, LockScope, StoreError};

/// The network of the user-wide attempt row.
const ALL_NETWORKS: &str = "*";

fn chrono_of(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// One row of `attempts`, or a fresh one.
#[derive(Debug)]
struct AttemptRow {
    count: u32,
    since: DateTime<Utc>,
    lock_level: u32,
    locked_until: Option<DateTime<Utc>>,
}

impl AttemptRow {
    fn load(conn: &Connection, user: &str, network: &str) -> Result<AttemptRow, StoreError> {
        let row: Option<(u32, String, u32, Option<String>)> = conn
            .query_row(
                "SELECT count, since, lock_level, locked_until FROM attempts
                 WHERE user = ?1 AND network = ?2",
                params![user, network],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(db)?;
        Ok(match row {
            Some((count, since, lock_level, locked_until)) => AttemptRow {
                count,
                since: parse_ts(&since)?,
                lock_level,
                locked_until: locked_until.as_deref().map(parse_ts).transpose()?,
            },
            None => AttemptRow {
                count: 0,
                since: DateTime::<Utc>::MIN_UTC,
                lock_level: 0,
                locked_until: None,
            },
        })
    }

    fn save(&self, conn: &Connection, user: &str, network: &str) -> Result<(), StoreError> {
        conn.execute(
            "INSERT INTO attempts(user, network, count, since, lock_level, locked_until)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(user, network) DO UPDATE SET count = excluded.count,
                 since = excluded.since, lock_level = excluded.lock_level,
                 locked_until = excluded.locked_until",
            params![
                user,
                network,
                self.count,
                ts(self.since),
                self.lock_level,
                self.locked_until.map(ts)
            ],
        )
        .map_err(db)?;
        Ok(())
    }

    /// A pair quiet for longer than the longest lock starts over, back-off too.
    fn expire_pair(&mut self, now: DateTime<Utc>, limits: &AttemptLimits) {
        if self.since + chrono_of(limits.max_lockout) < now {
            self.count = 0;
            self.lock_level = 0;
        }
    }

    /// The user-wide count is per window.
    fn expire_window(&mut self, now: DateTime<Utc>, limits: &AttemptLimits) {
        if self.since + chrono_of(limits.user_window) < now {
            self.count = 0;
            self.since = now;
        }
    }

    /// Lock the pair for `lockout`, doubled for each earlier lock, at most
    /// `max_lockout`.
    fn lock_pair(&mut self, now: DateTime<Utc>, limits: &AttemptLimits) -> AttemptLock {
        let factor = 1u32.checked_shl(self.lock_level).unwrap_or(u32::MAX);
        let length = limits
            .lockout
            .checked_mul(factor)
            .unwrap_or(limits.max_lockout)
            .min(limits.max_lockout);
        let until = now + chrono_of(length);
        self.locked_until = Some(until);
        self.lock_level = self.lock_level.saturating_add(1);
        self.count = 0;
        self.since = now;
        AttemptLock {
            scope: LockScope::Source,
            until,
        }
    }
}

/// The user-wide lock if one holds (it is the wider answer), else the pair's.
fn lock_in_force(pair: &AttemptRow, all: &AttemptRow, now: DateTime<Utc>) -> Option<AttemptLock> {
    [(all, LockScope::User), (pair, LockScope::Source)]
        .into_iter()
        .find_map(|(row, scope)| {
            row.locked_until
                .filter(|until| *until > now)
                .map(|until| AttemptLock { scope, until })
        })
}

impl AttemptStore for SqliteStore {
    fn attempt_lock(
        &self,
        user: &str,
        network: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AttemptLock>, StoreError> {
        let conn = self.conn()?;
        let pair = AttemptRow::load(&conn, user, network)?;
        let all = AttemptRow::load(&conn, user, ALL_NETWORKS)?;
        Ok(lock_in_force(&pair, &all, now))
    }

    fn begin_attempt(
        &self,
        user: &str,
        network: &str,
        now: DateTime<Utc>,
        limits: &AttemptLimits,
    ) -> Result<Result<(), AttemptLock>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let mut pair = AttemptRow::load(&tx, user, network)?;
        let mut all = AttemptRow::load(&tx, user, ALL_NETWORKS)?;
        if let Some(lock) = lock_in_force(&pair, &all, now) {
            return Ok(Err(lock));
        }
        pair.expire_pair(now, limits);
        all.expire_window(now, limits);
        // A count already at the limit (a crash between count and lock, or a
        // lowered limit) locks now rather than allowing one more guess.
        if pair.count >= limits.max_failures {
            let lock = pair.lock_pair(now, limits);
            pair.save(&tx, user, network)?;
            tx.commit().map_err(db)?;
            return Ok(Err(lock));
        }
        pair.count += 1;
        pair.since = now;
        all.count += 1;
        pair.save(&tx, user, network)?;
        all.save(&tx, user, ALL_NETWORKS)?;
        tx.commit().map_err(db)?;
        Ok(Ok(()))
    }

    fn attempt_failed(
        &self,
        user: &str,
        network: &str,
        now: DateTime<Utc>,
        limits: &AttemptLimits,
    ) -> Result<FailureTally, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let mut pair = AttemptRow::load(&tx, user, network)?;
        let mut all = AttemptRow::load(&tx, user, ALL_NETWORKS)?;
        let mut tally = FailureTally {
            source_failures: pair.count,
            user_failures: all.count,
            locked: None,
        };
        if pair.count >= limits.max_failures {
            tally.locked = Some(pair.lock_pair(now, limits));
        }
        if all.count >= limits.user_max_failures {
            let until = now + chrono_of(limits.user_lockout);
            all.locked_until = Some(until);
            all.count = 0;
            all.since = now;
            tally.locked = Some(AttemptLock {
                scope: LockScope::User,
                until,
            });
        }
        pair.save(&tx, user, network)?;
        all.save(&tx, user, ALL_NETWORKS)?;
        tx.commit().map_err(db)?;
        Ok(tally)
    }

    fn attempt_succeeded(&self, user: &str, network: &str) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE attempts SET count = 0, lock_level = 0 WHERE user = ?1 AND network = ?2",
            params![user, network],
        )
        .map_err(db)?;
        conn.execute(
            "UPDATE attempts SET count = MAX(count - 1, 0) WHERE user = ?1 AND network = ?2",
            params![user, ALL_NETWORKS],
        )
        .map_err(db)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::super::testing::{limits, now, store_with_user};
    use crate::store::prelude::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{AttemptLock, FailureTally, LockScope};

    /// Begin and fail one attempt; the lock it set, if any.
    fn fail(s: &SqliteStore, net: &str, at: DateTime<Utc>) -> Result<FailureTally, AttemptLock> {
        s.begin_attempt("alice", net, at, &limits()).unwrap()?;
        Ok(s.attempt_failed("alice", net, at, &limits()).unwrap())
    }

    #[test]
    fn a_pair_locks_at_its_limit_and_backs_off() {
        let s = store_with_user();
        let t = now();
        assert_eq!(fail(&s, "192.0.2.1", t).unwrap().source_failures, 1);
        assert_eq!(fail(&s, "192.0.2.1", t).unwrap().locked, None);
        let third = fail(&s, "192.0.2.1", t).unwrap();
        let first_lock = AttemptLock {
            scope: LockScope::Source,
            until: t + chrono::Duration::seconds(60),
        };
        assert_eq!(third.locked, Some(first_lock));
        // Locked: refused without being counted, from that network only.
        assert_eq!(fail(&s, "192.0.2.1", t), Err(first_lock));
        assert_eq!(
            s.attempt_lock("alice", "192.0.2.1", t).unwrap(),
            Some(first_lock)
        );
        assert_eq!(s.attempt_lock("alice", "198.51.100.7", t).unwrap(), None);
        assert!(fail(&s, "198.51.100.7", t).is_ok());
        // After the lock, three more failures lock twice as long, then 200 s at most.
        let t2 = t + chrono::Duration::seconds(61);
        for _ in 0..2 {
            fail(&s, "192.0.2.1", t2).unwrap();
        }
        let second = fail(&s, "192.0.2.1", t2).unwrap().locked.unwrap();
        assert_eq!(second.until, t2 + chrono::Duration::seconds(120));
        let t3 = t2 + chrono::Duration::seconds(121);
        for _ in 0..2 {
            fail(&s, "192.0.2.1", t3).unwrap();
        }
        let third = fail(&s, "192.0.2.1", t3).unwrap().locked.unwrap();
        assert_eq!(third.until, t3 + chrono::Duration::seconds(200));
    }

    #[test]
    fn a_success_takes_back_the_count_and_the_back_off() {
        let s = store_with_user();
        let t = now();
        fail(&s, "192.0.2.1", t).unwrap();
        fail(&s, "192.0.2.1", t).unwrap();
        s.begin_attempt("alice", "192.0.2.1", t, &limits())
            .unwrap()
            .unwrap();
        s.attempt_succeeded("alice", "192.0.2.1").unwrap();
        assert_eq!(fail(&s, "192.0.2.1", t).unwrap().source_failures, 1);
        // The user-wide count keeps the two real failures and this one.
        assert_eq!(fail(&s, "192.0.2.1", t).unwrap().user_failures, 4);
    }

    #[test]
    fn parallel_guesses_cannot_pass_the_check_before_any_is_counted() {
        let s = store_with_user();
        let t = now();
        // Three attempts begun, none finished yet: the fourth is refused.
        for _ in 0..3 {
            s.begin_attempt("alice", "192.0.2.1", t, &limits())
                .unwrap()
                .unwrap();
        }
        let refused = s.begin_attempt("alice", "192.0.2.1", t, &limits()).unwrap();
        assert_eq!(refused.unwrap_err().scope, LockScope::Source);
    }

    #[test]
    fn the_user_wide_lock_needs_many_networks_and_ends() {
        let s = store_with_user();
        let t = now();
        let mut locked = None;
        for i in 0..20 {
            let net = format!("192.0.2.{i}");
            locked = fail(&s, &net, t).unwrap().locked;
        }
        let lock = locked.expect("the twentieth failure locks the user");
        assert_eq!(lock.scope, LockScope::User);
        assert_eq!(
            s.attempt_lock("alice", "203.0.113.9", t).unwrap(),
            Some(lock)
        );
        let later = lock.until + chrono::Duration::seconds(1);
        assert_eq!(s.attempt_lock("alice", "203.0.113.9", later).unwrap(), None);
        assert!(fail(&s, "203.0.113.9", later).is_ok());
    }
}

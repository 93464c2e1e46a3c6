//! Failed attempts and lockouts in SQLite: one row per (user, source network)
//! and one user-wide row per user.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{db, parse_ts, ts, SqliteStore};
use crate::store::attempts::{begin, failed, lock_in_force, AttemptRow, Begun, ALL_NETWORKS};
use crate::store::{AttemptLimits, AttemptLock, AttemptStore, FailureTally, StoreError};

/// One row of `attempts`, or a fresh one.
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
        None => AttemptRow::fresh(),
    })
}

fn save(row: &AttemptRow, conn: &Connection, user: &str, network: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO attempts(user, network, count, since, lock_level, locked_until)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(user, network) DO UPDATE SET count = excluded.count,
             since = excluded.since, lock_level = excluded.lock_level,
             locked_until = excluded.locked_until",
        params![
            user,
            network,
            row.count,
            ts(row.since),
            row.lock_level,
            row.locked_until.map(ts)
        ],
    )
    .map_err(db)?;
    Ok(())
}

impl AttemptStore for SqliteStore {
    fn attempt_lock(
        &self,
        user: &str,
        network: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AttemptLock>, StoreError> {
        let conn = self.conn()?;
        let pair = load(&conn, user, network)?;
        let all = load(&conn, user, ALL_NETWORKS)?;
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
        let mut pair = load(&tx, user, network)?;
        let mut all = load(&tx, user, ALL_NETWORKS)?;
        let outcome = match begin(&mut pair, &mut all, now, limits) {
            Begun::Refused(lock) => return Ok(Err(lock)),
            Begun::LockedNow(lock) => {
                save(&pair, &tx, user, network)?;
                Err(lock)
            }
            Begun::Counted => {
                save(&pair, &tx, user, network)?;
                save(&all, &tx, user, ALL_NETWORKS)?;
                Ok(())
            }
        };
        tx.commit().map_err(db)?;
        Ok(outcome)
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
        let mut pair = load(&tx, user, network)?;
        let mut all = load(&tx, user, ALL_NETWORKS)?;
        let tally = failed(&mut pair, &mut all, now, limits);
        save(&pair, &tx, user, network)?;
        save(&all, &tx, user, ALL_NETWORKS)?;
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

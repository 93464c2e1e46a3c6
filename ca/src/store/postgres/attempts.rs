//! Failed attempts and lockouts in PostgreSQL. Rows are the SQLite store's;
//! every change for a user runs under a transaction-scoped advisory lock on
//! that user, so checks and counts by several CAs serialise per user (a row
//! lock cannot cover a row that does not exist yet).

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use super::{db, PostgresStore};
use crate::store::attempts::{begin, failed, lock_in_force, AttemptRow, Begun, ALL_NETWORKS};
use crate::store::{AttemptLimits, AttemptLock, AttemptStore, FailureTally, StoreError};

/// First key of the advisory locks on attempt rows ("RAMA" + 1: apart from
/// the schema lock).
const ATTEMPT_LOCK_SPACE: i32 = 0x5241_4d02;

fn count_of(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn int_of(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn load(c: &mut impl GenericClient, user: &str, network: &str) -> Result<AttemptRow, StoreError> {
    let row = c
        .query_opt(
            "SELECT count, since, lock_level, locked_until FROM attempts
             WHERE user_name = $1 AND network = $2",
            &[&user, &network],
        )
        .map_err(db)?;
    Ok(match row {
        Some(r) => AttemptRow {
            count: count_of(r.get(0)),
            since: r.get(1),
            lock_level: count_of(r.get(2)),
            locked_until: r.get(3),
        },
        None => AttemptRow::fresh(),
    })
}

fn save(
    c: &mut impl GenericClient,
    row: &AttemptRow,
    user: &str,
    network: &str,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO attempts(user_name, network, count, since, lock_level, locked_until)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (user_name, network) DO UPDATE SET count = excluded.count,
             since = excluded.since, lock_level = excluded.lock_level,
             locked_until = excluded.locked_until",
        &[
            &user,
            &network,
            &int_of(row.count),
            &row.since,
            &int_of(row.lock_level),
            &row.locked_until,
        ],
    )
    .map_err(db)?;
    Ok(())
}

/// Hold `user`'s attempt lock until the transaction ends.
fn lock_user(tx: &mut postgres::Transaction<'_>, user: &str) -> Result<(), StoreError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&ATTEMPT_LOCK_SPACE, &user],
    )
    .map_err(db)?;
    Ok(())
}

impl AttemptStore for PostgresStore {
    fn attempt_lock(
        &self,
        user: &str,
        network: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AttemptLock>, StoreError> {
        let mut c = self.conn()?;
        let pair = load(&mut *c, user, network)?;
        let all = load(&mut *c, user, ALL_NETWORKS)?;
        Ok(lock_in_force(&pair, &all, now))
    }

    fn begin_attempt(
        &self,
        user: &str,
        network: &str,
        now: DateTime<Utc>,
        limits: &AttemptLimits,
    ) -> Result<Result<(), AttemptLock>, StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        lock_user(&mut tx, user)?;
        let mut pair = load(&mut tx, user, network)?;
        let mut all = load(&mut tx, user, ALL_NETWORKS)?;
        let outcome = match begin(&mut pair, &mut all, now, limits) {
            Begun::Refused(lock) => return Ok(Err(lock)),
            Begun::LockedNow(lock) => {
                save(&mut tx, &pair, user, network)?;
                Err(lock)
            }
            Begun::Counted => {
                save(&mut tx, &pair, user, network)?;
                save(&mut tx, &all, user, ALL_NETWORKS)?;
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
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        lock_user(&mut tx, user)?;
        let mut pair = load(&mut tx, user, network)?;
        let mut all = load(&mut tx, user, ALL_NETWORKS)?;
        let tally = failed(&mut pair, &mut all, now, limits);
        save(&mut tx, &pair, user, network)?;
        save(&mut tx, &all, user, ALL_NETWORKS)?;
        tx.commit().map_err(db)?;
        Ok(tally)
    }

    fn attempt_succeeded(&self, user: &str, network: &str) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        lock_user(&mut tx, user)?;
        tx.execute(
            "UPDATE attempts SET count = 0, lock_level = 0 WHERE user_name = $1 AND network = $2",
            &[&user, &network],
        )
        .map_err(db)?;
        tx.execute(
            "UPDATE attempts SET count = GREATEST(count - 1, 0)
             WHERE user_name = $1 AND network = $2",
            &[&user, &ALL_NETWORKS],
        )
        .map_err(db)?;
        tx.commit().map_err(db)
    }
}

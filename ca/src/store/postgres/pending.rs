//! Flows in progress in PostgreSQL (schema version 2). A take is one
//! `DELETE … RETURNING` and an update one `UPDATE … WHERE version = …`, so of
//! CAs racing for an entry exactly one wins; a put checks the caps under a
//! transaction-scoped advisory lock on its kind, so racing starts cannot all
//! pass them.

use chrono::{DateTime, Utc};
use postgres::Row;

use super::{db, PostgresStore};
use crate::store::pending::{key_of, kind_of};
use crate::store::{PendingCaps, PendingEntry, PendingKind, PendingPut, PendingStore, StoreError};

/// First key of the advisory locks on pending kinds ("RAMP").
const PENDING_LOCK_SPACE: i32 = 0x5241_4d50;

const COLUMNS: &str = "kind, key, owner, counts_until, payload, version, created_at, forget_at";

fn decode(r: &Row) -> Result<PendingEntry, StoreError> {
    let kind: String = r.get(0);
    let key: Vec<u8> = r.get(1);
    Ok(PendingEntry {
        kind: kind_of(&kind)?,
        key: key_of(&key)?,
        owner: r.get(2),
        counts_until: r.get(3),
        payload: r.get(4),
        version: r.get(5),
        created_at: r.get(6),
        forget_at: r.get(7),
    })
}

fn count_of(r: &Row) -> u32 {
    u32::try_from(r.get::<_, i64>(0)).unwrap_or(u32::MAX)
}

impl PendingStore for PostgresStore {
    fn pending_put(
        &self,
        entry: &PendingEntry,
        caps: &PendingCaps,
        now: DateTime<Utc>,
    ) -> Result<PendingPut, StoreError> {
        let kind = entry.kind.as_str();
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&PENDING_LOCK_SPACE, &kind],
        )
        .map_err(db)?;
        tx.execute("DELETE FROM pending WHERE forget_at <= $1", &[&now])
            .map_err(db)?;
        let total = count_of(
            &tx.query_one("SELECT COUNT(*) FROM pending WHERE kind = $1", &[&kind])
                .map_err(db)?,
        );
        let mine = count_of(
            &tx.query_one(
                "SELECT COUNT(*) FROM pending
                 WHERE kind = $1 AND owner = $2 AND counts_until > $3",
                &[&kind, &entry.owner, &now],
            )
            .map_err(db)?,
        );
        if total >= caps.total || mine >= caps.per_owner {
            return Ok(PendingPut::Full);
        }
        let inserted = tx
            .execute(
                &format!(
                    "INSERT INTO pending({COLUMNS}) VALUES ($1, $2, $3, $4, $5, 0, $6, $7)
                     ON CONFLICT (kind, key) DO NOTHING"
                ),
                &[
                    &kind,
                    &&entry.key[..],
                    &entry.owner,
                    &entry.counts_until,
                    &entry.payload,
                    &entry.created_at,
                    &entry.forget_at,
                ],
            )
            .map_err(db)?;
        if inserted == 0 {
            return Err(StoreError::Duplicate(format!("pending {kind} entry")));
        }
        tx.commit().map_err(db)?;
        Ok(PendingPut::Stored)
    }

    fn pending_get(
        &self,
        kind: PendingKind,
        key: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<PendingEntry>, StoreError> {
        self.conn()?
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM pending
                     WHERE kind = $1 AND key = $2 AND forget_at > $3"
                ),
                &[&kind.as_str(), &&key[..], &now],
            )
            .map_err(db)?
            .as_ref()
            .map(decode)
            .transpose()
    }

    fn pending_list(
        &self,
        kind: PendingKind,
        now: DateTime<Utc>,
    ) -> Result<Vec<PendingEntry>, StoreError> {
        self.conn()?
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM pending WHERE kind = $1 AND forget_at > $2
                     ORDER BY created_at, key"
                ),
                &[&kind.as_str(), &now],
            )
            .map_err(db)?
            .iter()
            .map(decode)
            .collect()
    }

    fn pending_take(
        &self,
        kind: PendingKind,
        key: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<PendingEntry>, StoreError> {
        self.conn()?
            .query_opt(
                &format!(
                    "DELETE FROM pending WHERE kind = $1 AND key = $2 AND forget_at > $3
                     RETURNING {COLUMNS}"
                ),
                &[&kind.as_str(), &&key[..], &now],
            )
            .map_err(db)?
            .as_ref()
            .map(decode)
            .transpose()
    }

    fn pending_update(
        &self,
        kind: PendingKind,
        key: &[u8; 32],
        version: i64,
        payload: &[u8],
        counts_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let changed = self
            .conn()?
            .execute(
                "UPDATE pending SET payload = $1, counts_until = $2, version = version + 1
                 WHERE kind = $3 AND key = $4 AND version = $5 AND forget_at > $6",
                &[
                    &payload,
                    &counts_until,
                    &kind.as_str(),
                    &&key[..],
                    &version,
                    &now,
                ],
            )
            .map_err(db)?;
        Ok(changed == 1)
    }

    fn pending_purge(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.conn()?
            .execute("DELETE FROM pending WHERE forget_at <= $1", &[&now])
            .map_err(db)
    }
}

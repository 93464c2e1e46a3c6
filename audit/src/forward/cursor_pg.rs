//! A forwarder's cursors on a PostgreSQL log that several CAs share.
//!
//! The cursor row (`audit_forwarder_cursors`) is shared: every CA runs the
//! forwarders its configuration names, and they would all ship the same
//! events. So a forwarder sends only while it holds a lease: a session-level
//! advisory lock keyed by its name, held on its own connection. The others
//! stand by and try again; when the holder's process dies its connection
//! goes, PostgreSQL releases the lock, and the next one takes over from the
//! shared cursor. Events the old holder sent but had not confirmed are sent
//! again (at-least-once, as after any crash); the cursor only moves forward.

use ::postgres::{Client, Row};

use super::cursor::{assemble, Cursors, Lease, StoredCheckpoint};
use super::Record;
use crate::store::postgres::{connect_checked, PgConfig};
use crate::store::seq_to_sql;
use crate::AuditError;

/// The first key of the two-key advisory lock a forwarder's lease takes
/// ("RAMA"); the second is the hash of the forwarder's name.
const LEASE_CLASS: i32 = 0x5241_4d41;

/// Cursors and lease over one connection of the forwarder's own.
pub(super) struct PgCursors {
    config: PgConfig,
    client: Option<Client>,
    /// The lease is held on the current connection.
    leased: bool,
}

impl std::fmt::Debug for PgCursors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCursors")
            .field("leased", &self.leased)
            .finish_non_exhaustive()
    }
}

fn seq(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn pg(e: ::postgres::Error) -> AuditError {
    AuditError::Postgres(e)
}

impl PgCursors {
    /// Connect (the log must exist at this binary's schema version).
    pub(super) fn open(config: &PgConfig) -> Result<PgCursors, AuditError> {
        Ok(PgCursors {
            config: config.clone(),
            client: Some(connect_checked(config)?),
            leased: false,
        })
    }

    /// The connection, made again after the server dropped it (which also
    /// dropped the lease).
    fn client(&mut self) -> Result<&mut Client, AuditError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            self.leased = false;
            self.client = Some(connect_checked(&self.config)?);
        }
        self.client.as_mut().ok_or(AuditError::WriterGone)
    }

    fn query(
        &mut self,
        sql: &str,
        args: &[&(dyn ::postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, AuditError> {
        self.client()?.query(sql, args).map_err(pg)
    }
}

/// The columns `seq, body, hash, cp.hash, cp.time, cp.signature`.
fn record(r: &Row) -> Result<Record, AuditError> {
    let body: &str = r.get(1);
    let checkpoint = r.get::<_, Option<&[u8]>>(3).map(|hash| StoredCheckpoint {
        hash,
        time: r.get(4),
        signature: r.get(5),
    });
    assemble(seq(r.get(0)), body.as_bytes(), r.get(2), checkpoint)
}

impl Cursors for PgCursors {
    fn load(&mut self, name: &str) -> Result<u64, AuditError> {
        let rows = self.query(
            "SELECT last_seq FROM audit_forwarder_cursors WHERE name = $1",
            &[&name],
        )?;
        Ok(rows.first().map(|r| seq(r.get(0))).unwrap_or(0))
    }

    fn save(&mut self, name: &str, at: u64) -> Result<(), AuditError> {
        let at = seq_to_sql(at)?;
        self.client()?
            .execute(
                "INSERT INTO audit_forwarder_cursors (name, last_seq, updated_at)
                 VALUES ($1, $2, now())
                 ON CONFLICT (name) DO UPDATE
                 SET last_seq = GREATEST(audit_forwarder_cursors.last_seq, excluded.last_seq),
                     updated_at = excluded.updated_at",
                &[&name, &at],
            )
            .map_err(pg)?;
        Ok(())
    }

    fn head(&mut self) -> Result<u64, AuditError> {
        let rows = self.query("SELECT max(seq) FROM audit_events", &[])?;
        Ok(rows
            .first()
            .and_then(|r| r.get::<_, Option<i64>>(0))
            .map(seq)
            .unwrap_or(0))
    }

    fn hash_before(&mut self, at: u64) -> Result<[u8; 32], AuditError> {
        let Some(prev) = at.checked_sub(1).filter(|p| *p > 0) else {
            return Ok([0; 32]);
        };
        let p = seq_to_sql(prev)?;
        let rows = self.query("SELECT hash FROM audit_events WHERE seq = $1", &[&p])?;
        rows.first()
            .and_then(|r| <[u8; 32]>::try_from(r.get::<_, &[u8]>(0)).ok())
            .ok_or_else(|| AuditError::CorruptRow {
                seq: prev,
                reason: "no stored hash".into(),
            })
    }

    fn read_after(&mut self, after: u64, limit: u32) -> Result<Vec<Record>, AuditError> {
        let (after, limit) = (seq_to_sql(after)?, i64::from(limit));
        self.query(
            "SELECT e.seq, e.body, e.hash, c.hash, c.time, c.signature FROM audit_events e
             LEFT JOIN audit_checkpoints c ON c.seq = e.seq
             WHERE e.seq > $1 ORDER BY e.seq LIMIT $2",
            &[&after, &limit],
        )?
        .iter()
        .map(record)
        .collect()
    }

    fn late_checkpoint(&mut self, after: u64, upto: u64) -> Result<Option<Record>, AuditError> {
        if upto <= after {
            return Ok(None);
        }
        let (after, upto) = (seq_to_sql(after)?, seq_to_sql(upto)?);
        let rows = self.query(
            "SELECT e.seq, e.body, e.hash, c.hash, c.time, c.signature FROM audit_checkpoints c
             JOIN audit_events e ON e.seq = c.seq
             WHERE c.seq > $1 AND c.seq <= $2 ORDER BY c.seq DESC LIMIT 1",
            &[&after, &upto],
        )?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let mut rec = record(r)?;
        rec.checkpoint_only = true;
        Ok(Some(rec))
    }

    fn checkpoint_upto(&mut self, upto: u64) -> Result<u64, AuditError> {
        let upto = seq_to_sql(upto)?;
        let rows = self.query(
            "SELECT max(seq) FROM audit_checkpoints WHERE seq <= $1",
            &[&upto],
        )?;
        Ok(rows
            .first()
            .and_then(|r| r.get::<_, Option<i64>>(0))
            .map(seq)
            .unwrap_or(0))
    }

    fn hold_lease(&mut self, name: &str) -> Result<Lease, AuditError> {
        // A live connection that took the lock still holds it.
        if self.leased && self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(Lease::Held { fresh: false });
        }
        let got: bool = self
            .client()?
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext($2))",
                &[&LEASE_CLASS, &name],
            )
            .map_err(pg)?
            .get(0);
        self.leased = got;
        Ok(if got {
            Lease::Held { fresh: true }
        } else {
            Lease::Elsewhere
        })
    }
}

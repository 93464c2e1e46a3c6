//! The PostgreSQL store: one hash chain that several CAs append to.
//!
//! Tables `audit_events` and `audit_checkpoints` (prefixed, so they can share
//! a database with the CA's own tables), append-only by trigger (row updates,
//! deletes and `TRUNCATE` are refused); `audit_forwarder_cursors`, the SIEM
//! forwarders' shared cursors (mutable, outside the chain); and `audit_schema`
//! holding the schema version.
//!
//! The single append point is a transaction-scoped advisory lock
//! (`APPEND_LOCK` in `writer.rs`): a writer takes it, reads the head, hashes
//! its batch onto that head, inserts it and commits, which releases the lock.
//! Two CAs appending at once therefore interleave whole batches; neither can
//! fork the chain or leave a gap, and neither needs to retry. Commits are
//! durable under PostgreSQL's default `synchronous_commit = on`.
//!
//! The blocking `postgres` client is used from the writer thread and from the
//! callers of `query`, which must not be async workers (the same rule as the
//! CA's PostgreSQL store).
//!
//! # Files
//!
//! - `mod.rs`: connecting, and what every part shares: turning a driver error
//!   into an [`AuditError`], telling a lost server from a failed statement,
//!   and checking a stored hash and sequence number.
//! - `schema.rs`: the tables, their migrations under a lock, and the version
//!   check every connection makes.
//! - `chain.rs`: reading the chain: its head, the hash at a sequence, the
//!   newest checkpoint, whether an event ID is stored.
//! - `writer.rs`: [`PgBackend`], the writer thread's store: one append under
//!   the advisory lock, and reconnecting after the server went away.
//! - `reader.rs`: [`PgReader`], the read connection behind `query`.
//! - `copy.rs`: [`copy_to_sqlite`], the byte-for-byte copy that `verify` and
//!   the exports run on.

mod chain;
mod copy;
mod reader;
mod schema;
mod writer;

use ::postgres::error::SqlState;
use ::postgres::Client;

use super::BackendError;
use crate::AuditError;

pub use super::pg_connect::{describe, is_postgres_url, pg_config, PgConfig};
pub(crate) use chain::{hash_at, head, newest_checkpoint};
pub use copy::copy_to_sqlite;
pub(crate) use reader::PgReader;
pub(crate) use schema::connect_checked;
pub use schema::{postgres_schema_version, PG_SCHEMA_VERSION};
pub(crate) use writer::PgBackend;

fn pg_err(e: ::postgres::Error) -> AuditError {
    AuditError::Postgres(e)
}

impl From<::postgres::Error> for BackendError {
    fn from(e: ::postgres::Error) -> Self {
        BackendError::Other(pg_err(e))
    }
}

fn connect(cfg: &PgConfig) -> Result<Client, AuditError> {
    cfg.clone()
        .for_application("rampart-audit")
        .connect()
        .map_err(pg_err)
}

fn hash32(seq: u64, v: &[u8]) -> Result<[u8; 32], AuditError> {
    <[u8; 32]>::try_from(v).map_err(|_| AuditError::CorruptRow {
        seq,
        reason: "hash is not 32 bytes".into(),
    })
}

fn seq_from(v: i64) -> Result<u64, AuditError> {
    u64::try_from(v).map_err(|_| AuditError::CorruptRow {
        seq: 0,
        reason: format!("negative sequence {v}"),
    })
}

/// Whether `e` says the server went away (the connection closed, an
/// administrator shut it down, it is starting) rather than that a statement
/// failed.
pub(crate) fn lost_server(e: &::postgres::Error) -> bool {
    e.is_closed()
        || matches!(
            e.code(),
            Some(c) if *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
        )
}

fn is_lost_server(e: &AuditError) -> bool {
    matches!(e, AuditError::Postgres(pe) if lost_server(pe))
}

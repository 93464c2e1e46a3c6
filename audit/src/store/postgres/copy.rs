//! Copying the shared log into a new SQLite audit database, so that the
//! checks and exports written for SQLite run on it unchanged.

use std::path::Path;

use ::postgres::IsolationLevel;

use super::schema::connect_checked;
use super::{pg_err, PgConfig};
use crate::store::sqlite::{RawEvent, SqliteBackend};
use crate::AuditError;

/// Rows copied per round trip by [`copy_to_sqlite`].
const COPY_PAGE: i64 = 5_000;

/// Copy the PostgreSQL audit log into a new SQLite audit database at `dest`
/// (which must not exist), byte for byte: the same bodies, hashes and
/// checkpoints, read in one consistent snapshot. [`crate::verify`] and the
/// exports then run on the copy exactly as on a CA's own `audit.db`, so a
/// PostgreSQL log is checked by the same code. Returns the events copied.
pub fn copy_to_sqlite(config: &PgConfig, dest: &Path) -> Result<u64, AuditError> {
    if dest.exists() {
        return Err(AuditError::Config(format!(
            "{} exists: the copy goes to a new file",
            dest.display()
        )));
    }
    let mut client = connect_checked(config)?;
    let mut snap = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(pg_err)?;
    let mut out = SqliteBackend::open(dest, std::time::Duration::from_secs(5))?;
    let mut copied = 0u64;
    let mut after = 0i64;
    out.copy_in(|sink| {
        loop {
            let rows = snap
                .query(
                    r#"SELECT seq, id, time, kind, "user", serial, body, hash FROM audit_events
                       WHERE seq > $1 ORDER BY seq LIMIT $2"#,
                    &[&after, &COPY_PAGE],
                )
                .map_err(pg_err)?;
            let Some(last) = rows.last() else { break };
            after = last.get(0);
            for r in &rows {
                sink.event(&RawEvent {
                    seq: r.get(0),
                    id: r.get(1),
                    time: r.get(2),
                    kind: r.get(3),
                    user: r.get(4),
                    serial: r.get(5),
                    body: r.get(6),
                    hash: r.get(7),
                })?;
                copied += 1;
            }
        }
        for r in snap
            .query(
                "SELECT seq, hash, time, signature FROM audit_checkpoints ORDER BY seq",
                &[],
            )
            .map_err(pg_err)?
        {
            sink.checkpoint(r.get(0), r.get(1), r.get(2), r.get(3))?;
        }
        Ok(())
    })?;
    snap.commit().map_err(pg_err)?;
    Ok(copied)
}

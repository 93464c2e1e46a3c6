//! Recordings in the PostgreSQL audit database that several CAs share.
//!
//! Storing takes one transaction: the session's row first (`ON CONFLICT DO
//! NOTHING`, which waits for a concurrent upload of the same session to
//! commit or roll back), then its chunks. So of two CAs storing one session
//! at once exactly one stores it and the other compares digests, and a
//! reader never sees a row without all its chunks.

use std::io::Read;
use std::path::Path;

use ::postgres::Client;
use sha2::{Digest, Sha256};

use super::{PutOutcome, CHUNK_BYTES};
use crate::store::postgres::{connect_checked, PgConfig};
use crate::AuditError;

pub(super) fn put_once(
    cfg: &PgConfig,
    session: &str,
    spooled: &Path,
    sha256: &str,
    bytes: u64,
) -> Result<PutOutcome, AuditError> {
    let chunks = i32::try_from(bytes.div_ceil(CHUNK_BYTES as u64))
        .map_err(|_| AuditError::Recording(format!("a recording of {bytes} bytes is too big")))?;
    let size = i64::try_from(bytes)
        .map_err(|_| AuditError::Recording(format!("a recording of {bytes} bytes is too big")))?;
    let mut file = std::fs::File::open(spooled)?;
    let mut client = connect_checked(cfg)?;
    let mut tx = client.transaction()?;
    let inserted = tx.execute(
        "INSERT INTO audit_recordings (session, sha256, bytes, chunks) VALUES ($1, $2, $3, $4)
         ON CONFLICT (session) DO NOTHING",
        &[&session, &sha256, &size, &chunks],
    )?;
    if inserted == 0 {
        let have: String = tx
            .query_one(
                "SELECT sha256 FROM audit_recordings WHERE session = $1",
                &[&session],
            )?
            .get(0);
        return Ok(if have == sha256 {
            PutOutcome::AlreadyStored
        } else {
            PutOutcome::OtherStored
        });
    }
    let insert =
        tx.prepare("INSERT INTO audit_recording_chunks (session, idx, data) VALUES ($1, $2, $3)")?;
    // The file is hashed as it is stored: what lands is what the digest says.
    let mut hasher = Sha256::new();
    let mut stored = 0u64;
    let mut buf = Vec::with_capacity(CHUNK_BYTES);
    for idx in 0..chunks {
        buf.clear();
        (&mut file).take(CHUNK_BYTES as u64).read_to_end(&mut buf)?;
        hasher.update(&buf);
        stored += buf.len() as u64;
        tx.execute(&insert, &[&session, &idx, &buf])?;
    }
    let mut rest = [0u8; 1];
    if stored != bytes || file.read(&mut rest)? != 0 {
        return Err(AuditError::Recording(format!(
            "{} is not the {bytes} bytes it was said to be",
            spooled.display()
        )));
    }
    if hex::encode(hasher.finalize()) != sha256 {
        return Err(AuditError::Recording(format!(
            "{} does not have the SHA-256 it was said to have",
            spooled.display()
        )));
    }
    tx.commit()?;
    Ok(PutOutcome::Stored)
}

/// Reads a stored recording one chunk per query, on a connection of its own.
pub(super) struct Chunks {
    client: Client,
    session: String,
    next: i32,
    count: i32,
}

pub(super) fn open(cfg: &PgConfig, session: &str) -> Result<Option<Chunks>, AuditError> {
    let mut client = connect_checked(cfg)?;
    let row = client.query_opt(
        "SELECT chunks FROM audit_recordings WHERE session = $1",
        &[&session],
    )?;
    Ok(row.map(|r| Chunks {
        client,
        session: session.to_owned(),
        next: 0,
        count: r.get(0),
    }))
}

impl Chunks {
    pub(super) fn next_chunk(&mut self) -> Option<Result<Vec<u8>, AuditError>> {
        if self.next >= self.count {
            return None;
        }
        let idx = self.next;
        self.next += 1;
        let row = self.client.query_opt(
            "SELECT data FROM audit_recording_chunks WHERE session = $1 AND idx = $2",
            &[&self.session, &idx],
        );
        Some(match row {
            Ok(Some(r)) => Ok(r.get(0)),
            Ok(None) => Err(AuditError::Recording(format!(
                "chunk {idx} of {} is missing",
                self.count
            ))),
            Err(e) => Err(e.into()),
        })
    }
}

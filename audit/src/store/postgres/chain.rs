//! Reads of the chain shared by the writer, the readers and the witness: the
//! head and last checkpoint, the hash stored at a sequence number, the newest
//! checkpoint, and whether an event ID is stored.

use ::postgres::GenericClient;

use super::{hash32, pg_err, seq_from};
use crate::store::{seq_to_sql, ChainState};
use crate::AuditError;

pub(crate) fn read_state(c: &mut impl GenericClient) -> Result<ChainState, AuditError> {
    let checkpoint_seq: Option<i64> = c
        .query_one("SELECT max(seq) FROM audit_checkpoints", &[])
        .map_err(pg_err)?
        .get(0);
    let checkpoint_seq = u64::try_from(checkpoint_seq.unwrap_or(0)).unwrap_or(0);
    let head = c
        .query_opt(
            "SELECT seq, hash, time FROM audit_events ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .map_err(pg_err)?;
    match head {
        None => Ok(ChainState {
            seq: 0,
            hash: [0; 32],
            time: None,
            checkpoint_seq,
        }),
        Some(r) => {
            let seq = seq_from(r.get(0))?;
            Ok(ChainState {
                seq,
                hash: hash32(seq, r.get(1))?,
                time: Some(r.get(2)),
                checkpoint_seq,
            })
        }
    }
}

/// The chain hash stored at `seq`, if that event exists.
pub(crate) fn hash_at(
    c: &mut impl GenericClient,
    seq: u64,
) -> Result<Option<[u8; 32]>, AuditError> {
    let s = seq_to_sql(seq)?;
    let row = c
        .query_opt("SELECT hash FROM audit_events WHERE seq = $1", &[&s])
        .map_err(pg_err)?;
    row.map(|r| hash32(seq, r.get(0))).transpose()
}

/// The newest stored checkpoint, in the shape of an anchor.
pub(crate) fn newest_checkpoint(
    c: &mut impl GenericClient,
) -> Result<Option<crate::retention::Anchor>, AuditError> {
    let row = c
        .query_opt(
            "SELECT seq, hash, time, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .map_err(pg_err)?;
    row.map(|r| {
        let seq = seq_from(r.get(0))?;
        Ok(crate::retention::Anchor {
            seq,
            hash: hash32(seq, r.get(1))?,
            time: r.get(2),
            signature: r.get(3),
        })
    })
    .transpose()
}

/// The head (last event): sequence and hash, `(0, zeros)` when empty.
pub(crate) fn head(c: &mut impl GenericClient) -> Result<(u64, [u8; 32]), AuditError> {
    let s = read_state(c)?;
    Ok((s.seq, s.hash))
}

pub(super) fn id_exists(c: &mut impl GenericClient, id: &str) -> Result<bool, AuditError> {
    Ok(
        c.query_opt("SELECT 1 FROM audit_events WHERE id = $1", &[&id])
            .map_err(pg_err)?
            .is_some(),
    )
}

//! The SQLite table of user-proof bindings: which bastion first presented the
//! proof of a given SSH session, and until when it is accepted
//! ([`crate::store::Store::claim_user_proof`]).
//!
//! A row is kept until the outer certificate it was made with has expired
//! (`keep_until`), not only while it is accepted (`accept_until`): were it
//! dropped earlier, the same proof would look new and could be claimed again.
//! Once that certificate has expired the CA refuses the request before it
//! would look here, so the row can go. Expired rows are removed on each claim.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{db, parse_ts, ts, SqliteStore};
use crate::store::{ProofClaim, StoreError};

/// The table (schema version 2).
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS user_proofs (
    session_hash BLOB PRIMARY KEY,
    bastion      TEXT NOT NULL,
    first_used   TEXT NOT NULL,
    accept_until TEXT NOT NULL,
    keep_until   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS user_proofs_keep_until ON user_proofs(keep_until);
"#;

/// Migration to schema version 2: the table.
pub(super) fn version_2(conn: &rusqlite::Connection) -> Result<(), StoreError> {
    conn.execute_batch(SCHEMA).map_err(db)
}

impl SqliteStore {
    /// See [`crate::store::Store::claim_user_proof`]. Committed durably: a
    /// binding lost to a power cut would let another bastion claim the proof.
    pub(super) fn claim_user_proof_row(
        &self,
        session_hash: &[u8; 32],
        bastion: &str,
        now: DateTime<Utc>,
        accept_until: DateTime<Utc>,
        keep_until: DateTime<Utc>,
    ) -> Result<ProofClaim, StoreError> {
        self.durably(|tx| {
            tx.execute(
                "DELETE FROM user_proofs WHERE keep_until <= ?1",
                [ts(now)],
            )
            .map_err(db)?;
            let row: Option<(String, String)> = tx
                .query_row(
                    "SELECT bastion, accept_until FROM user_proofs WHERE session_hash = ?1",
                    [session_hash.to_vec()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db)?;
            Ok(match row {
                None => {
                    tx.execute(
                        "INSERT INTO user_proofs(session_hash, bastion, first_used, accept_until, keep_until)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![
                            session_hash.to_vec(),
                            bastion,
                            ts(now),
                            ts(accept_until),
                            ts(keep_until.max(accept_until))
                        ],
                    )
                    .map_err(db)?;
                    ProofClaim::First
                }
                Some((owner, _)) if owner != bastion => ProofClaim::Foreign(owner),
                Some((_, until)) if parse_ts(&until)? <= now => ProofClaim::Expired,
                Some(_) => ProofClaim::Again,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use chrono::Duration;

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + Duration::minutes(minutes)
    }

    #[test]
    fn rows_go_once_the_certificate_has_expired() {
        let s = SqliteStore::in_memory().unwrap();
        s.claim_user_proof_row(&[1u8; 32], "a", t(0), t(15), t(60))
            .unwrap();
        s.claim_user_proof_row(&[2u8; 32], "a", t(59), t(74), t(120))
            .unwrap();
        let count = || -> i64 {
            s.conn()
                .unwrap()
                .query_row("SELECT COUNT(*) FROM user_proofs", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count(), 2);
        s.claim_user_proof_row(&[3u8; 32], "a", t(60), t(75), t(120))
            .unwrap();
        assert_eq!(count(), 2, "the first row is gone, the third added");
    }
}

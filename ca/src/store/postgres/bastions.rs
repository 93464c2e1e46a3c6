//! Bastion join tokens, joined bastions and user-proof bindings in
//! PostgreSQL. A join locks its token row (`FOR UPDATE`) for the whole
//! decision; a proof is claimed by one `INSERT … ON CONFLICT DO NOTHING`, so
//! of two bastions (on two CAs) presenting one proof exactly one is first.
//! Proof rows are kept until `keep_until` for the reason the SQLite store
//! gives (`sqlite::user_proofs`).

use chrono::{DateTime, Utc};
use postgres::Row;

use super::{db, PostgresStore};
use crate::store::{BastionJoin, BastionRecord, BastionStore, ProofClaim, StoreError};

fn bastion_from(r: &Row) -> BastionRecord {
    BastionRecord {
        name: r.get(0),
        host_key_fingerprint: r.get(1),
        joined_at: r.get(2),
    }
}

impl BastionStore for PostgresStore {
    fn create_bastion_token(
        &self,
        token_hash: &[u8; 32],
        name: Option<&str>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "INSERT INTO bastion_tokens(token_hash, name, created_at, expires_at)
                 VALUES ($1, $2, $3, $4)",
                &[&token_hash.as_slice(), &name, &now, &expires_at],
            )
            .map_err(db)?;
        Ok(())
    }

    fn join_bastion(
        &self,
        token_hash: &[u8; 32],
        bastion: &BastionRecord,
        credential_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<BastionJoin, StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        let token = tx
            .query_opt(
                "SELECT name, expires_at, used_at IS NOT NULL FROM bastion_tokens
                 WHERE token_hash = $1 FOR UPDATE",
                &[&token_hash.as_slice()],
            )
            .map_err(db)?;
        let Some(token) = token else {
            return Ok(BastionJoin::Unknown);
        };
        let bound: Option<String> = token.get(0);
        let expires_at: DateTime<Utc> = token.get(1);
        if token.get::<_, bool>(2) {
            return Ok(BastionJoin::AlreadyUsed);
        }
        if expires_at <= now {
            return Ok(BastionJoin::Expired);
        }
        if let Some(b) = bound.as_ref().filter(|b| **b != bastion.name) {
            return Ok(BastionJoin::NameMismatch(b.clone()));
        }
        if bound.is_none() {
            // An unbound token joins a new name only: claim the name by
            // inserting, so two tokens racing for one name cannot both win.
            let inserted = tx
                .execute(
                    "INSERT INTO bastions(name, credential_hash, host_key_fingerprint, joined_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
                    &[
                        &bastion.name,
                        &credential_hash.as_slice(),
                        &bastion.host_key_fingerprint,
                        &bastion.joined_at,
                    ],
                )
                .map_err(db)?;
            if inserted == 0 {
                return Ok(BastionJoin::NameTaken);
            }
        } else {
            // A token made for this name re-registers it (new host key, new
            // credential; the old credential stops working).
            tx.execute(
                "INSERT INTO bastions(name, credential_hash, host_key_fingerprint, joined_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET credential_hash = excluded.credential_hash,
                     host_key_fingerprint = excluded.host_key_fingerprint,
                     joined_at = excluded.joined_at",
                &[
                    &bastion.name,
                    &credential_hash.as_slice(),
                    &bastion.host_key_fingerprint,
                    &bastion.joined_at,
                ],
            )
            .map_err(db)?;
        }
        tx.execute(
            "UPDATE bastion_tokens SET used_at = $2 WHERE token_hash = $1",
            &[&token_hash.as_slice(), &now],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(BastionJoin::Joined)
    }

    fn claim_user_proof(
        &self,
        session_hash: &[u8; 32],
        bastion: &str,
        now: DateTime<Utc>,
        accept_until: DateTime<Utc>,
        keep_until: DateTime<Utc>,
    ) -> Result<ProofClaim, StoreError> {
        let mut c = self.conn()?;
        c.execute("DELETE FROM user_proofs WHERE keep_until <= $1", &[&now])
            .map_err(db)?;
        let inserted = c
            .execute(
                "INSERT INTO user_proofs(session_hash, bastion, first_used, accept_until,
                                         keep_until)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_hash) DO NOTHING",
                &[
                    &session_hash.as_slice(),
                    &bastion,
                    &now,
                    &accept_until,
                    &keep_until.max(accept_until),
                ],
            )
            .map_err(db)?;
        if inserted == 1 {
            return Ok(ProofClaim::First);
        }
        let row = c
            .query_opt(
                "SELECT bastion, accept_until FROM user_proofs WHERE session_hash = $1",
                &[&session_hash.as_slice()],
            )
            .map_err(db)?;
        let Some(row) = row else {
            // Pruned between the insert and the read: its keep window is over,
            // so the certificate it came with has expired.
            return Ok(ProofClaim::Expired);
        };
        let owner: String = row.get(0);
        let until: DateTime<Utc> = row.get(1);
        Ok(if owner != bastion {
            ProofClaim::Foreign(owner)
        } else if until <= now {
            ProofClaim::Expired
        } else {
            ProofClaim::Again
        })
    }

    fn bastion(&self, name: &str) -> Result<Option<BastionRecord>, StoreError> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT name, host_key_fingerprint, joined_at FROM bastions WHERE name = $1",
                &[&name],
            )
            .map_err(db)?
            .as_ref()
            .map(bastion_from))
    }

    fn bastion_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .conn()?
            .query("SELECT name FROM bastions ORDER BY name", &[])
            .map_err(db)?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn remove_bastion(&self, name: &str) -> Result<bool, StoreError> {
        let n = self
            .conn()?
            .execute("DELETE FROM bastions WHERE name = $1", &[&name])
            .map_err(db)?;
        Ok(n == 1)
    }

    fn bastion_by_credential(
        &self,
        credential_hash: &[u8; 32],
    ) -> Result<Option<BastionRecord>, StoreError> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT name, host_key_fingerprint, joined_at FROM bastions
                 WHERE credential_hash = $1",
                &[&credential_hash.as_slice()],
            )
            .map_err(db)?
            .as_ref()
            .map(bastion_from))
    }
}

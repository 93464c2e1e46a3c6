//! Bastion join tokens and joined bastions in SQLite.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{db, parse_ts, ts, SqliteStore, Token, TokenTable};
use crate::store::{BastionJoin, BastionRecord, BastionStore, ProofClaim, StoreError};

/// Join tokens: the token's hash, carrying the name it is bound to, if any.
const BASTION_TOKENS: TokenTable = TokenTable {
    table: "bastion_tokens",
    key: "token_hash",
    carried: "name",
};

impl SqliteStore {
    /// One bastion by a `WHERE` clause over its own columns with one parameter.
    fn bastion_where(
        &self,
        clause: &str,
        param: rusqlite::types::Value,
    ) -> Result<Option<BastionRecord>, StoreError> {
        let conn = self.conn()?;
        let row: Option<(String, String, String)> = conn
            .prepare_cached(&format!(
                "SELECT name, host_key_fingerprint, joined_at FROM bastions WHERE {clause}"
            ))
            .map_err(db)?
            .query_row([param], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .map_err(db)?;
        row.map(|(name, host_key_fingerprint, joined)| {
            Ok(BastionRecord {
                name,
                host_key_fingerprint,
                joined_at: parse_ts(&joined)?,
            })
        })
        .transpose()
    }
}

impl BastionStore for SqliteStore {
    fn claim_user_proof(
        &self,
        session_hash: &[u8; 32],
        bastion: &str,
        now: DateTime<Utc>,
        accept_until: DateTime<Utc>,
        keep_until: DateTime<Utc>,
    ) -> Result<ProofClaim, StoreError> {
        self.claim_user_proof_row(session_hash, bastion, now, accept_until, keep_until)
    }

    fn create_bastion_token(
        &self,
        token_hash: &[u8; 32],
        name: Option<&str>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO bastion_tokens(token_hash, name, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash.to_vec(), name, ts(now), ts(expires_at)],
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
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(db)?;
        let outcome = match BASTION_TOKENS.find::<Option<String>>(&tx, token_hash, now)? {
            Token::Unknown => BastionJoin::Unknown,
            Token::Used => BastionJoin::AlreadyUsed,
            Token::Expired => BastionJoin::Expired,
            Token::Live(bound) => {
                let taken: bool = tx
                    .query_row(
                        "SELECT COUNT(*) FROM bastions WHERE name = ?1",
                        [&bastion.name],
                        |r| r.get::<_, i64>(0),
                    )
                    .map_err(db)?
                    > 0;
                if let Some(b) = bound.as_ref().filter(|b| **b != bastion.name) {
                    BastionJoin::NameMismatch(b.clone())
                } else if taken && bound.is_none() {
                    BastionJoin::NameTaken
                } else {
                    BASTION_TOKENS.spend(&tx, token_hash, now)?;
                    // A token made for this name re-registers it (new host key,
                    // new credential; the old credential stops working).
                    tx.execute(
                        "INSERT INTO bastions(name, credential_hash, host_key_fingerprint, joined_at)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT(name) DO UPDATE SET credential_hash = excluded.credential_hash,
                             host_key_fingerprint = excluded.host_key_fingerprint,
                             joined_at = excluded.joined_at",
                        params![
                            bastion.name,
                            credential_hash.to_vec(),
                            bastion.host_key_fingerprint,
                            ts(bastion.joined_at)
                        ],
                    )
                    .map_err(db)?;
                    BastionJoin::Joined
                }
            }
        };
        tx.commit().map_err(db)?;
        Ok(outcome)
    }

    fn bastion(&self, name: &str) -> Result<Option<BastionRecord>, StoreError> {
        self.bastion_where("name = ?1", rusqlite::types::Value::Text(name.to_owned()))
    }

    fn bastion_names(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn()?;
        let names = conn
            .prepare("SELECT name FROM bastions ORDER BY name")
            .map_err(db)?
            .query_map([], |r| r.get(0))
            .map_err(db)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(db)?;
        Ok(names)
    }

    fn remove_bastion(&self, name: &str) -> Result<bool, StoreError> {
        // Revokes the bastion's CA credential: must not come back after a power loss.
        let n = self.durably(|tx| {
            tx.execute("DELETE FROM bastions WHERE name = ?1", [name])
                .map_err(db)
        })?;
        Ok(n == 1)
    }

    fn bastion_by_credential(
        &self,
        credential_hash: &[u8; 32],
    ) -> Result<Option<BastionRecord>, StoreError> {
        self.bastion_where(
            "credential_hash = ?1",
            rusqlite::types::Value::Blob(credential_hash.to_vec()),
        )
    }
}

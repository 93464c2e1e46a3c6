//! TOTP seeds, recovery codes, WebAuthn keys and WebAuthn login evidence in
//! SQLite.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{db, parse_ts, ts, SqliteStore};
use crate::store::{
    CounterUpdate, FactorStore, StoreError, TotpRecord, WebauthnEvidence, WebauthnKeyRecord,
};

const WEBAUTHN_KEY_COLUMNS: &str = "id, user, credential_id, credential_json, aaguid, \
     attestation_format, user_verified, backup_eligible, backup_state, sign_count, name, \
     created_at, last_used_at, disabled_reason, attestation_verified";

/// A `webauthn_keys` row as read, before its timestamps are parsed.
struct WebauthnKeyRow {
    id: String,
    user: String,
    credential_id: String,
    credential: String,
    aaguid: String,
    attestation_format: String,
    user_verified: bool,
    backup_eligible: bool,
    backup_state: bool,
    sign_count: i64,
    name: String,
    created_at: String,
    last_used_at: Option<String>,
    disabled_reason: Option<String>,
    attestation_verified: bool,
}

impl WebauthnKeyRow {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(WebauthnKeyRow {
            id: r.get(0)?,
            user: r.get(1)?,
            credential_id: r.get(2)?,
            credential: r.get(3)?,
            aaguid: r.get(4)?,
            attestation_format: r.get(5)?,
            user_verified: r.get(6)?,
            backup_eligible: r.get(7)?,
            backup_state: r.get(8)?,
            sign_count: r.get(9)?,
            name: r.get(10)?,
            created_at: r.get(11)?,
            last_used_at: r.get(12)?,
            disabled_reason: r.get(13)?,
            attestation_verified: r.get(14)?,
        })
    }

    fn into_record(self) -> Result<WebauthnKeyRecord, StoreError> {
        Ok(WebauthnKeyRecord {
            sign_count: u32::try_from(self.sign_count)
                .map_err(|_| StoreError::Corrupt(format!("sign count {}", self.sign_count)))?,
            created_at: parse_ts(&self.created_at)?,
            last_used_at: self.last_used_at.as_deref().map(parse_ts).transpose()?,
            id: self.id,
            user: self.user,
            credential_id: self.credential_id,
            credential: self.credential,
            aaguid: self.aaguid,
            attestation_format: self.attestation_format,
            user_verified: self.user_verified,
            attestation_verified: self.attestation_verified,
            backup_eligible: self.backup_eligible,
            backup_state: self.backup_state,
            name: self.name,
            disabled_reason: self.disabled_reason,
        })
    }
}

impl FactorStore for SqliteStore {
    fn totp(&self, user: &str) -> Result<Option<TotpRecord>, StoreError> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT sealed_seed, last_step FROM totp WHERE user = ?1",
            [user],
            |r| {
                Ok(TotpRecord {
                    sealed_seed: r.get(0)?,
                    last_step: r.get(1)?,
                })
            },
        )
        .optional()
        .map_err(db)
    }

    fn advance_totp_step(&self, user: &str, step: i64) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let n = conn
            .execute(
                "UPDATE totp SET last_step = ?2 WHERE user = ?1 AND last_step < ?2",
                params![user, step],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn recovery_code(&self, user: &str, id: &str) -> Result<Option<String>, StoreError> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT hash FROM recovery_codes WHERE user = ?1 AND id = ?2 AND used_at IS NULL",
            params![user, id],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)
    }

    fn use_recovery_code(
        &self,
        user: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let n = conn
            .execute(
                "UPDATE recovery_codes SET used_at = ?3
                 WHERE user = ?1 AND id = ?2 AND used_at IS NULL",
                params![user, id, ts(now)],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn recovery_codes_left(&self, user: &str) -> Result<u32, StoreError> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT COUNT(*) FROM recovery_codes WHERE user = ?1 AND used_at IS NULL",
            [user],
            |r| r.get(0),
        )
        .map_err(db)
    }

    fn add_webauthn_key(
        &self,
        k: &WebauthnKeyRecord,
        recovery: Option<&[(String, String)]>,
        replaces: Option<&str>,
    ) -> Result<Option<WebauthnKeyRecord>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(db)?;
        // The replaced key goes first, so the new one may take its name.
        let replaced = match replaces {
            Some(id) => {
                let row = tx
                    .query_row(
                        &format!(
                            "SELECT {WEBAUTHN_KEY_COLUMNS} FROM webauthn_keys
                             WHERE user = ?1 AND id = ?2"
                        ),
                        [&k.user, id],
                        WebauthnKeyRow::read,
                    )
                    .optional()
                    .map_err(db)?;
                tx.execute(
                    "DELETE FROM webauthn_keys WHERE user = ?1 AND id = ?2",
                    [&k.user, id],
                )
                .map_err(db)?;
                row
            }
            None => None,
        };
        let r = tx.execute(
            &format!(
                "INSERT INTO webauthn_keys({WEBAUTHN_KEY_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
            ),
            params![
                k.id,
                k.user,
                k.credential_id,
                k.credential,
                k.aaguid,
                k.attestation_format,
                k.user_verified,
                k.backup_eligible,
                k.backup_state,
                i64::from(k.sign_count),
                k.name,
                ts(k.created_at),
                k.last_used_at.map(ts),
                k.disabled_reason,
                k.attestation_verified,
            ],
        );
        match r {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(StoreError::Duplicate(format!(
                    "webauthn key {:?} or credential",
                    k.name
                )))
            }
            Err(e) => return Err(db(e)),
        }
        if let Some(codes) = recovery {
            tx.execute("DELETE FROM recovery_codes WHERE user = ?1", [&k.user])
                .map_err(db)?;
            for (id, hash) in codes {
                tx.execute(
                    "INSERT INTO recovery_codes(user, id, hash) VALUES (?1, ?2, ?3)",
                    params![k.user, id, hash],
                )
                .map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        replaced.map(WebauthnKeyRow::into_record).transpose()
    }

    fn webauthn_keys(&self, user: &str) -> Result<Vec<WebauthnKeyRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {WEBAUTHN_KEY_COLUMNS} FROM webauthn_keys WHERE user = ?1
                 ORDER BY created_at, id"
            ))
            .map_err(db)?;
        let rows = stmt
            .query_map([user], WebauthnKeyRow::read)
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        rows.into_iter().map(WebauthnKeyRow::into_record).collect()
    }

    fn webauthn_key_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<WebauthnKeyRecord>, StoreError> {
        let conn = self.conn()?;
        let row = conn
            .query_row(
                &format!(
                    "SELECT {WEBAUTHN_KEY_COLUMNS} FROM webauthn_keys WHERE credential_id = ?1"
                ),
                [credential_id],
                WebauthnKeyRow::read,
            )
            .optional()
            .map_err(db)?;
        row.map(WebauthnKeyRow::into_record).transpose()
    }

    fn webauthn_key_used(
        &self,
        id: &str,
        count: u32,
        credential: &str,
        backup_state: bool,
        now: DateTime<Utc>,
    ) -> Result<CounterUpdate, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(db)?;
        let stored: Option<i64> = tx
            .query_row(
                "SELECT sign_count FROM webauthn_keys WHERE id = ?1 AND disabled_reason IS NULL",
                [id],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        let Some(stored) = stored else {
            return Ok(CounterUpdate::Gone);
        };
        let count = i64::from(count);
        // WebAuthn §7.2 step 21: when either counter is non-zero, the new one
        // must be greater.
        if (count != 0 || stored != 0) && count <= stored {
            return Ok(CounterUpdate::Regressed(
                u32::try_from(stored).unwrap_or(u32::MAX),
            ));
        }
        tx.execute(
            "UPDATE webauthn_keys SET sign_count = ?2, credential_json = ?3, backup_state = ?4,
                    last_used_at = ?5
             WHERE id = ?1",
            params![id, count, credential, backup_state, ts(now)],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(CounterUpdate::Advanced)
    }

    fn disable_webauthn_key(&self, id: &str, reason: &str) -> Result<bool, StoreError> {
        let n = self.durably(|tx| {
            tx.execute(
                "UPDATE webauthn_keys SET disabled_reason = ?2 WHERE id = ?1",
                params![id, reason],
            )
            .map_err(db)
        })?;
        Ok(n == 1)
    }

    fn remove_webauthn_key(
        &self,
        user: &str,
        id: &str,
    ) -> Result<Option<WebauthnKeyRecord>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(db)?;
        let row = tx
            .query_row(
                &format!(
                    "SELECT {WEBAUTHN_KEY_COLUMNS} FROM webauthn_keys WHERE user = ?1 AND id = ?2"
                ),
                [user, id],
                WebauthnKeyRow::read,
            )
            .optional()
            .map_err(db)?;
        let Some(row) = row else {
            return Ok(None);
        };
        tx.execute(
            "DELETE FROM webauthn_keys WHERE user = ?1 AND id = ?2",
            [user, id],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        row.into_record().map(Some)
    }

    fn put_webauthn_evidence(
        &self,
        session_id: &str,
        ev: &WebauthnEvidence,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let conn = self.conn()?;
        // Rows outlive nothing: expired ones go whenever a new one comes.
        conn.execute(
            "DELETE FROM webauthn_evidence WHERE expires_at < ?1",
            [ts(now)],
        )
        .map_err(db)?;
        conn.execute(
            "INSERT OR REPLACE INTO webauthn_evidence(session_id, key_id, aaguid, user_verified,
                 expires_at, attested, via_link)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                session_id,
                ev.key_id,
                ev.aaguid,
                ev.user_verified,
                ts(expires_at),
                ev.attested,
                ev.via_link
            ],
        )
        .map_err(db)?;
        Ok(())
    }

    fn webauthn_evidence(&self, session_id: &str) -> Result<Option<WebauthnEvidence>, StoreError> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT key_id, aaguid, user_verified, attested, via_link FROM webauthn_evidence
             WHERE session_id = ?1",
            [session_id],
            |r| {
                Ok(WebauthnEvidence {
                    key_id: r.get(0)?,
                    aaguid: r.get(1)?,
                    user_verified: r.get(2)?,
                    attested: r.get(3)?,
                    via_link: r.get(4)?,
                })
            },
        )
        .optional()
        .map_err(db)
    }
}

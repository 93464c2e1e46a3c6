//! TOTP seeds, recovery codes, WebAuthn keys and WebAuthn login evidence in
//! PostgreSQL.

use chrono::{DateTime, Utc};
use postgres::Row;

use super::users::replace_recovery_codes;
use super::{db, duplicate_or_db, PostgresStore};
use crate::store::{
    CounterUpdate, FactorStore, StoreError, TotpRecord, WebauthnEvidence, WebauthnKeyRecord,
};

const WEBAUTHN_KEY_COLUMNS: &str = "id, user_name, credential_id, credential_json, aaguid, \
     attestation_format, user_verified, backup_eligible, backup_state, sign_count, name, \
     created_at, last_used_at, disabled_reason, attestation_verified";

fn key_from(r: &Row) -> Result<WebauthnKeyRecord, StoreError> {
    let sign_count: i64 = r.get(9);
    Ok(WebauthnKeyRecord {
        id: r.get(0),
        user: r.get(1),
        credential_id: r.get(2),
        credential: r.get(3),
        aaguid: r.get(4),
        attestation_format: r.get(5),
        user_verified: r.get(6),
        backup_eligible: r.get(7),
        backup_state: r.get(8),
        sign_count: u32::try_from(sign_count)
            .map_err(|_| StoreError::Corrupt(format!("sign count {sign_count}")))?,
        name: r.get(10),
        created_at: r.get(11),
        last_used_at: r.get(12),
        disabled_reason: r.get(13),
        attestation_verified: r.get(14),
    })
}

impl FactorStore for PostgresStore {
    fn totp(&self, user: &str) -> Result<Option<TotpRecord>, StoreError> {
        let row = self
            .conn()?
            .query_opt(
                "SELECT sealed_seed, last_step FROM totp WHERE user_name = $1",
                &[&user],
            )
            .map_err(db)?;
        Ok(row.map(|r| TotpRecord {
            sealed_seed: r.get(0),
            last_step: r.get(1),
        }))
    }

    fn advance_totp_step(&self, user: &str, step: i64) -> Result<bool, StoreError> {
        let n = self
            .conn()?
            .execute(
                "UPDATE totp SET last_step = $2 WHERE user_name = $1 AND last_step < $2",
                &[&user, &step],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn recovery_code(&self, user: &str, id: &str) -> Result<Option<String>, StoreError> {
        let row = self
            .conn()?
            .query_opt(
                "SELECT hash FROM recovery_codes
                 WHERE user_name = $1 AND id = $2 AND used_at IS NULL",
                &[&user, &id],
            )
            .map_err(db)?;
        Ok(row.map(|r| r.get(0)))
    }

    fn use_recovery_code(
        &self,
        user: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = self
            .conn()?
            .execute(
                "UPDATE recovery_codes SET used_at = $3
                 WHERE user_name = $1 AND id = $2 AND used_at IS NULL",
                &[&user, &id, &now],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn recovery_codes_left(&self, user: &str) -> Result<u32, StoreError> {
        let n: i64 = self
            .conn()?
            .query_one(
                "SELECT COUNT(*) FROM recovery_codes WHERE user_name = $1 AND used_at IS NULL",
                &[&user],
            )
            .map_err(db)?
            .get(0);
        u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("{n} recovery codes")))
    }

    fn add_webauthn_key(
        &self,
        k: &WebauthnKeyRecord,
        recovery: Option<&[(String, String)]>,
        replaces: Option<&str>,
    ) -> Result<Option<WebauthnKeyRecord>, StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        // The replaced key goes first, so the new one may take its name.
        let replaced = match replaces {
            Some(id) => tx
                .query_opt(
                    &format!(
                        "DELETE FROM webauthn_keys WHERE user_name = $1 AND id = $2
                         RETURNING {WEBAUTHN_KEY_COLUMNS}"
                    ),
                    &[&k.user, &id],
                )
                .map_err(db)?
                .as_ref()
                .map(key_from)
                .transpose()?,
            None => None,
        };
        tx.execute(
            &format!(
                "INSERT INTO webauthn_keys({WEBAUTHN_KEY_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            ),
            &[
                &k.id,
                &k.user,
                &k.credential_id,
                &k.credential,
                &k.aaguid,
                &k.attestation_format,
                &k.user_verified,
                &k.backup_eligible,
                &k.backup_state,
                &i64::from(k.sign_count),
                &k.name,
                &k.created_at,
                &k.last_used_at,
                &k.disabled_reason,
                &k.attestation_verified,
            ],
        )
        .map_err(|e| duplicate_or_db(e, || format!("webauthn key {:?} or credential", k.name)))?;
        if let Some(codes) = recovery {
            replace_recovery_codes(&mut tx, &k.user, codes)?;
        }
        tx.commit().map_err(db)?;
        Ok(replaced)
    }

    fn webauthn_keys(&self, user: &str) -> Result<Vec<WebauthnKeyRecord>, StoreError> {
        self.conn()?
            .query(
                &format!(
                    "SELECT {WEBAUTHN_KEY_COLUMNS} FROM webauthn_keys WHERE user_name = $1
                     ORDER BY created_at, id"
                ),
                &[&user],
            )
            .map_err(db)?
            .iter()
            .map(key_from)
            .collect()
    }

    fn webauthn_key_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<WebauthnKeyRecord>, StoreError> {
        self.conn()?
            .query_opt(
                &format!(
                    "SELECT {WEBAUTHN_KEY_COLUMNS} FROM webauthn_keys WHERE credential_id = $1"
                ),
                &[&credential_id],
            )
            .map_err(db)?
            .as_ref()
            .map(key_from)
            .transpose()
    }

    fn webauthn_key_used(
        &self,
        id: &str,
        count: u32,
        credential: &str,
        backup_state: bool,
        now: DateTime<Utc>,
    ) -> Result<CounterUpdate, StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        // The row lock holds a racing assertion back until this one commits;
        // it then compares against the count stored here.
        let stored: Option<i64> = tx
            .query_opt(
                "SELECT sign_count FROM webauthn_keys
                 WHERE id = $1 AND disabled_reason IS NULL FOR UPDATE",
                &[&id],
            )
            .map_err(db)?
            .map(|r| r.get(0));
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
            "UPDATE webauthn_keys SET sign_count = $2, credential_json = $3, backup_state = $4,
                    last_used_at = $5
             WHERE id = $1",
            &[&id, &count, &credential, &backup_state, &now],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(CounterUpdate::Advanced)
    }

    fn disable_webauthn_key(&self, id: &str, reason: &str) -> Result<bool, StoreError> {
        let n = self
            .conn()?
            .execute(
                "UPDATE webauthn_keys SET disabled_reason = $2 WHERE id = $1",
                &[&id, &reason],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn remove_webauthn_key(
        &self,
        user: &str,
        id: &str,
    ) -> Result<Option<WebauthnKeyRecord>, StoreError> {
        self.conn()?
            .query_opt(
                &format!(
                    "DELETE FROM webauthn_keys WHERE user_name = $1 AND id = $2
                     RETURNING {WEBAUTHN_KEY_COLUMNS}"
                ),
                &[&user, &id],
            )
            .map_err(db)?
            .as_ref()
            .map(key_from)
            .transpose()
    }

    fn put_webauthn_evidence(
        &self,
        session_id: &str,
        ev: &WebauthnEvidence,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        // Rows outlive nothing: expired ones go whenever a new one comes.
        c.execute(
            "DELETE FROM webauthn_evidence WHERE expires_at < $1",
            &[&now],
        )
        .map_err(db)?;
        c.execute(
            "INSERT INTO webauthn_evidence(session_id, key_id, aaguid, user_verified,
                 expires_at, attested, via_link)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (session_id) DO UPDATE SET key_id = excluded.key_id,
                 aaguid = excluded.aaguid, user_verified = excluded.user_verified,
                 expires_at = excluded.expires_at, attested = excluded.attested,
                 via_link = excluded.via_link",
            &[
                &session_id,
                &ev.key_id,
                &ev.aaguid,
                &ev.user_verified,
                &expires_at,
                &ev.attested,
                &ev.via_link,
            ],
        )
        .map_err(db)?;
        Ok(())
    }

    fn webauthn_evidence(&self, session_id: &str) -> Result<Option<WebauthnEvidence>, StoreError> {
        let row = self
            .conn()?
            .query_opt(
                "SELECT key_id, aaguid, user_verified, attested, via_link FROM webauthn_evidence
                 WHERE session_id = $1",
                &[&session_id],
            )
            .map_err(db)?;
        Ok(row.map(|r| WebauthnEvidence {
            key_id: r.get(0),
            aaguid: r.get(1),
            user_verified: r.get(2),
            attested: r.get(3),
            via_link: r.get(4),
        }))
    }
}

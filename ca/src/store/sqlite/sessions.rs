//! Sessions, identity-provider links and identity-provider evidence in SQLite.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{db, parse_ts, ts, SqliteStore};
use crate::store::sessions::mfa_method_of;
use crate::store::{IdpBinding, IdpEvidence, SessionRecord, SessionStore, StoreError};

/// The user a provider account is linked to.
fn idp_user_of_subject(
    conn: &Connection,
    provider: &str,
    subject: &str,
) -> Result<Option<String>, StoreError> {
    conn.query_row(
        "SELECT user FROM idp_subjects WHERE provider = ?1 AND subject = ?2",
        [provider, subject],
        |r| r.get(0),
    )
    .optional()
    .map_err(db)
}

/// The provider account a user is linked to.
fn idp_subject_of_user(
    conn: &Connection,
    provider: &str,
    user: &str,
) -> Result<Option<String>, StoreError> {
    conn.query_row(
        "SELECT subject FROM idp_subjects WHERE provider = ?1 AND user = ?2",
        [provider, user],
        |r| r.get(0),
    )
    .optional()
    .map_err(db)
}

impl SessionStore for SqliteStore {
    fn create_session(&self, token_hash: &[u8; 32], s: &SessionRecord) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO sessions(token_hash, id, user, mfa_method, mfa_time, mfa_event, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                token_hash.to_vec(),
                s.id,
                s.user,
                s.mfa_method.as_str(),
                ts(s.mfa_time),
                s.mfa_event,
                ts(s.expires_at)
            ],
        )
        .map_err(db)?;
        Ok(())
    }

    fn session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        let conn = self.conn()?;
        let row: Option<(String, String, String, String, String, String)> = conn
            .prepare_cached(
                "SELECT id, user, mfa_method, mfa_time, mfa_event, expires_at
                 FROM sessions WHERE token_hash = ?1",
            )
            .map_err(db)?
            .query_row([token_hash.to_vec()], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .optional()
            .map_err(db)?;
        row.map(|(id, user, mfa_method, mfa_time, mfa_event, expires_at)| {
            Ok(SessionRecord {
                id,
                user,
                mfa_method: mfa_method_of(&mfa_method)?,
                mfa_time: parse_ts(&mfa_time)?,
                mfa_event,
                expires_at: parse_ts(&expires_at)?,
            })
        })
        .transpose()
    }

    fn put_idp_evidence(
        &self,
        session_id: &str,
        ev: &IdpEvidence,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let conn = self.conn()?;
        // Rows outlive nothing: expired ones go whenever a new one comes.
        conn.execute("DELETE FROM idp_evidence WHERE expires_at < ?1", [ts(now)])
            .map_err(db)?;
        conn.execute(
            "INSERT OR REPLACE INTO idp_evidence(session_id, provider, acr, amr, auth_time, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                session_id,
                ev.provider,
                ev.acr,
                ev.amr.join(" "),
                ts(ev.auth_time),
                ts(expires_at)
            ],
        )
        .map_err(db)?;
        Ok(())
    }

    fn bind_idp_subject(
        &self,
        provider: &str,
        subject: &str,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<IdpBinding, StoreError> {
        // One connection guard over the checks and the insert: nothing binds
        // in between.
        let conn = self.conn()?;
        if let Some(bound) = idp_user_of_subject(&conn, provider, subject)? {
            return Ok(if bound == user {
                IdpBinding::Matches
            } else {
                IdpBinding::SubjectBoundTo(bound)
            });
        }
        if idp_subject_of_user(&conn, provider, user)?.is_some() {
            return Ok(IdpBinding::UserBoundElsewhere);
        }
        conn.execute(
            "INSERT INTO idp_subjects(provider, subject, user, bound_at) VALUES (?1, ?2, ?3, ?4)",
            params![provider, subject, user, ts(now)],
        )
        .map_err(db)?;
        Ok(IdpBinding::Bound)
    }

    fn idp_subject_user(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<String>, StoreError> {
        idp_user_of_subject(&*self.conn()?, provider, subject)
    }

    fn idp_link(&self, provider: &str, user: &str) -> Result<Option<String>, StoreError> {
        idp_subject_of_user(&*self.conn()?, provider, user)
    }

    fn unlink_idp_subject(&self, provider: &str, user: &str) -> Result<Option<String>, StoreError> {
        let conn = self.conn()?;
        conn.query_row(
            "DELETE FROM idp_subjects WHERE provider = ?1 AND user = ?2 RETURNING subject",
            [provider, user],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)
    }

    fn idp_evidence(&self, session_id: &str) -> Result<Option<IdpEvidence>, StoreError> {
        let conn = self.conn()?;
        let row: Option<(String, Option<String>, String, String)> = conn
            .query_row(
                "SELECT provider, acr, amr, auth_time FROM idp_evidence WHERE session_id = ?1",
                [session_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(db)?;
        match row {
            None => Ok(None),
            Some((provider, acr, amr, auth_time)) => Ok(Some(IdpEvidence {
                provider,
                acr,
                amr: amr.split_whitespace().map(str::to_owned).collect(),
                auth_time: parse_ts(&auth_time)?,
            })),
        }
    }

    fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "DELETE FROM sessions WHERE token_hash = ?1",
            [token_hash.to_vec()],
        )
        .map_err(db)?;
        Ok(())
    }

    fn delete_user_sessions(&self, user: &str) -> Result<u64, StoreError> {
        // Called when a user is disabled or revoked: the ended sessions must stay
        // ended after a power loss.
        let n = self.durably(|tx| {
            tx.execute("DELETE FROM sessions WHERE user = ?1", [user])
                .map_err(db)
        })?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::now;
    use super::*;
    use crate::store::{UserRecord, UserStore};
    use rampart_policy::MfaMethod;

    /// The method is checked once, where the row is read: a name this build
    /// does not know (a newer release's, or an edited row) is a corrupt row,
    /// never a session of some default factor.
    #[test]
    fn a_session_with_an_unknown_method_reads_as_corrupt() {
        let s = SqliteStore::in_memory().unwrap();
        s.create_user(&UserRecord {
            name: "alice".into(),
            groups: vec![],
            admin: false,
            disabled: false,
            created_at: now(),
        })
        .unwrap();
        let record = SessionRecord {
            id: "s1".into(),
            user: "alice".into(),
            mfa_method: MfaMethod::Webauthn,
            mfa_time: now(),
            mfa_event: "e1".into(),
            expires_at: now() + chrono::Duration::hours(1),
        };
        s.create_session(&[1; 32], &record).unwrap();
        let stored: String = s
            .conn()
            .unwrap()
            .query_row("SELECT mfa_method FROM sessions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, "webauthn", "stored under today's name");
        assert_eq!(s.session(&[1; 32]).unwrap(), Some(record));
        s.conn()
            .unwrap()
            .execute("UPDATE sessions SET mfa_method = 'sms'", [])
            .unwrap();
        let e = s.session(&[1; 32]).unwrap_err();
        assert!(
            matches!(e, StoreError::Corrupt(ref m) if m.contains("sms")),
            "{e:?}"
        );
    }
}

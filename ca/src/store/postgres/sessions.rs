//! Sessions, identity-provider links and identity-provider evidence in
//! PostgreSQL.

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use super::{db, duplicate_or_db, PostgresStore};
use crate::store::sessions::mfa_method_of;
use crate::store::{IdpBinding, IdpEvidence, SessionRecord, SessionStore, StoreError};

fn idp_user_of_subject(
    c: &mut impl GenericClient,
    provider: &str,
    subject: &str,
) -> Result<Option<String>, StoreError> {
    Ok(c.query_opt(
        "SELECT user_name FROM idp_subjects WHERE provider = $1 AND subject = $2",
        &[&provider, &subject],
    )
    .map_err(db)?
    .map(|r| r.get(0)))
}

fn idp_subject_of_user(
    c: &mut impl GenericClient,
    provider: &str,
    user: &str,
) -> Result<Option<String>, StoreError> {
    Ok(c.query_opt(
        "SELECT subject FROM idp_subjects WHERE provider = $1 AND user_name = $2",
        &[&provider, &user],
    )
    .map_err(db)?
    .map(|r| r.get(0)))
}

impl SessionStore for PostgresStore {
    fn create_session(&self, token_hash: &[u8; 32], s: &SessionRecord) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "INSERT INTO sessions(token_hash, id, user_name, mfa_method, mfa_time, mfa_event,
                                      expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &token_hash.as_slice(),
                    &s.id,
                    &s.user,
                    &s.mfa_method.as_str(),
                    &s.mfa_time,
                    &s.mfa_event,
                    &s.expires_at,
                ],
            )
            .map_err(|e| duplicate_or_db(e, || "session".into()))?;
        Ok(())
    }

    fn session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        let row = self
            .conn()?
            .query_opt(
                "SELECT id, user_name, mfa_method, mfa_time, mfa_event, expires_at
                 FROM sessions WHERE token_hash = $1",
                &[&token_hash.as_slice()],
            )
            .map_err(db)?;
        row.map(|r| {
            Ok(SessionRecord {
                id: r.get(0),
                user: r.get(1),
                mfa_method: mfa_method_of(r.get::<_, &str>(2))?,
                mfa_time: r.get(3),
                mfa_event: r.get(4),
                expires_at: r.get(5),
            })
        })
        .transpose()
    }

    fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "DELETE FROM sessions WHERE token_hash = $1",
                &[&token_hash.as_slice()],
            )
            .map_err(db)?;
        Ok(())
    }

    fn delete_user_sessions(&self, user: &str) -> Result<u64, StoreError> {
        self.conn()?
            .execute("DELETE FROM sessions WHERE user_name = $1", &[&user])
            .map_err(db)
    }

    fn put_idp_evidence(
        &self,
        session_id: &str,
        ev: &IdpEvidence,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        // Rows outlive nothing: expired ones go whenever a new one comes.
        c.execute("DELETE FROM idp_evidence WHERE expires_at < $1", &[&now])
            .map_err(db)?;
        c.execute(
            "INSERT INTO idp_evidence(session_id, provider, acr, amr, auth_time, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (session_id) DO UPDATE SET provider = excluded.provider,
                 acr = excluded.acr, amr = excluded.amr, auth_time = excluded.auth_time,
                 expires_at = excluded.expires_at",
            &[
                &session_id,
                &ev.provider,
                &ev.acr,
                &ev.amr,
                &ev.auth_time,
                &expires_at,
            ],
        )
        .map_err(db)?;
        Ok(())
    }

    fn idp_evidence(&self, session_id: &str) -> Result<Option<IdpEvidence>, StoreError> {
        let row = self
            .conn()?
            .query_opt(
                "SELECT provider, acr, amr, auth_time FROM idp_evidence WHERE session_id = $1",
                &[&session_id],
            )
            .map_err(db)?;
        Ok(row.map(|r| IdpEvidence {
            provider: r.get(0),
            acr: r.get(1),
            amr: r.get(2),
            auth_time: r.get(3),
        }))
    }

    fn bind_idp_subject(
        &self,
        provider: &str,
        subject: &str,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<IdpBinding, StoreError> {
        let mut c = self.conn()?;
        // Insert first: the primary key (provider, subject) and the unique
        // (provider, user) decide a race between CAs; only when nothing was
        // inserted is the existing binding read and reported.
        let inserted = c
            .execute(
                "INSERT INTO idp_subjects(provider, subject, user_name, bound_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&provider, &subject, &user, &now],
            )
            .map_err(db)?;
        if inserted == 1 {
            return Ok(IdpBinding::Bound);
        }
        if let Some(bound) = idp_user_of_subject(&mut *c, provider, subject)? {
            return Ok(if bound == user {
                IdpBinding::Matches
            } else {
                IdpBinding::SubjectBoundTo(bound)
            });
        }
        if idp_subject_of_user(&mut *c, provider, user)?.is_some() {
            return Ok(IdpBinding::UserBoundElsewhere);
        }
        // The conflicting row went away between the insert and the reads
        // (an unlink): nothing is bound now, so this is no answer to give.
        Err(StoreError::Db(
            "the identity provider binding changed during the check; try again".into(),
        ))
    }

    fn idp_subject_user(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<String>, StoreError> {
        idp_user_of_subject(&mut *self.conn()?, provider, subject)
    }

    fn idp_link(&self, provider: &str, user: &str) -> Result<Option<String>, StoreError> {
        idp_subject_of_user(&mut *self.conn()?, provider, user)
    }

    fn unlink_idp_subject(&self, provider: &str, user: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()?
            .query_opt(
                "DELETE FROM idp_subjects WHERE provider = $1 AND user_name = $2
                 RETURNING subject",
                &[&provider, &user],
            )
            .map_err(db)?
            .map(|r| r.get(0)))
    }
}

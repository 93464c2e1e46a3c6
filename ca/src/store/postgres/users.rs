//! Users, invites and enrolments in PostgreSQL.

use chrono::{DateTime, Utc};
use postgres::Row;

use super::{db, duplicate_or_db, PostgresStore};
use crate::store::{
    InviteRedemption, PendingEnrollment, StoreError, TotpRecord, UserRecord, UserStore,
};

fn user_from(r: &Row) -> UserRecord {
    UserRecord {
        name: r.get(0),
        groups: r.get(1),
        admin: r.get(2),
        disabled: r.get(3),
        created_at: r.get(4),
    }
}

/// Replace `user`'s recovery codes inside a transaction.
pub(super) fn replace_recovery_codes(
    tx: &mut postgres::Transaction<'_>,
    user: &str,
    codes: &[(String, String)],
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM recovery_codes WHERE user_name = $1", &[&user])
        .map_err(db)?;
    for (id, hash) in codes {
        tx.execute(
            "INSERT INTO recovery_codes(user_name, id, hash) VALUES ($1, $2, $3)",
            &[&user, id, hash],
        )
        .map_err(db)?;
    }
    Ok(())
}

impl UserStore for PostgresStore {
    fn create_user(&self, u: &UserRecord) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "INSERT INTO users(name, groups, admin, disabled, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&u.name, &u.groups, &u.admin, &u.disabled, &u.created_at],
            )
            .map_err(|e| duplicate_or_db(e, || format!("user {}", u.name)))?;
        Ok(())
    }

    fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = self
            .conn()?
            .query_opt(
                "SELECT name, groups, admin, disabled, created_at FROM users WHERE name = $1",
                &[&name],
            )
            .map_err(db)?;
        Ok(row.as_ref().map(user_from))
    }

    fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows = self
            .conn()?
            .query(
                "SELECT name, groups, admin, disabled, created_at FROM users ORDER BY name",
                &[],
            )
            .map_err(db)?;
        Ok(rows.iter().map(user_from).collect())
    }

    fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, StoreError> {
        let n = self
            .conn()?
            .execute(
                "UPDATE users SET disabled = $2 WHERE name = $1",
                &[&name, &disabled],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn set_groups(&self, name: &str, groups: &[String]) -> Result<bool, StoreError> {
        let n = self
            .conn()?
            .execute(
                "UPDATE users SET groups = $2 WHERE name = $1",
                &[&name, &groups],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn create_invite(
        &self,
        code_hash: &[u8; 32],
        user: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "INSERT INTO invites(code_hash, user_name, created_at, expires_at)
                 VALUES ($1, $2, $3, $4)",
                &[&code_hash.as_slice(), &user, &now, &expires_at],
            )
            .map_err(|e| duplicate_or_db(e, || "invite".into()))?;
        Ok(())
    }

    fn redeem_invite(
        &self,
        code_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<InviteRedemption, StoreError> {
        let mut c = self.conn()?;
        // One statement spends a live invite: of two CAs redeeming it at once,
        // the second waits on the row lock, then finds `used_at` set.
        let spent = c
            .query_opt(
                "UPDATE invites SET used_at = $2
                 WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2
                 RETURNING user_name",
                &[&code_hash.as_slice(), &now],
            )
            .map_err(db)?;
        if let Some(row) = spent {
            return Ok(InviteRedemption::Redeemed(row.get(0)));
        }
        let row = c
            .query_opt(
                "SELECT used_at IS NOT NULL FROM invites WHERE code_hash = $1",
                &[&code_hash.as_slice()],
            )
            .map_err(db)?;
        Ok(match row {
            None => InviteRedemption::Unknown,
            Some(r) if r.get::<_, bool>(0) => InviteRedemption::AlreadyUsed,
            Some(_) => InviteRedemption::Expired,
        })
    }

    fn put_enrollment(
        &self,
        token_hash: &[u8; 32],
        p: &PendingEnrollment,
    ) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "INSERT INTO enrollments(token_hash, user_name, sealed_seed, expires_at)
                 VALUES ($1, $2, $3, $4)",
                &[
                    &token_hash.as_slice(),
                    &p.user,
                    &p.sealed_seed,
                    &p.expires_at,
                ],
            )
            .map_err(|e| duplicate_or_db(e, || "enrolment".into()))?;
        Ok(())
    }

    fn enrollment(&self, token_hash: &[u8; 32]) -> Result<Option<PendingEnrollment>, StoreError> {
        let row = self
            .conn()?
            .query_opt(
                "SELECT user_name, sealed_seed, expires_at FROM enrollments WHERE token_hash = $1",
                &[&token_hash.as_slice()],
            )
            .map_err(db)?;
        Ok(row.map(|r| PendingEnrollment {
            user: r.get(0),
            sealed_seed: r.get(1),
            expires_at: r.get(2),
        }))
    }

    fn complete_enrollment(
        &self,
        token_hash: &[u8; 32],
        user: &str,
        totp: &TotpRecord,
        recovery: &[(String, String)],
    ) -> Result<bool, StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        let n = tx
            .execute(
                "DELETE FROM enrollments WHERE token_hash = $1 AND user_name = $2",
                &[&token_hash.as_slice(), &user],
            )
            .map_err(db)?;
        if n != 1 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO totp(user_name, sealed_seed, last_step) VALUES ($1, $2, $3)
             ON CONFLICT (user_name) DO UPDATE SET sealed_seed = excluded.sealed_seed,
                                                  last_step = excluded.last_step",
            &[&user, &totp.sealed_seed, &totp.last_step],
        )
        .map_err(db)?;
        replace_recovery_codes(&mut tx, user, recovery)?;
        tx.commit().map_err(db)?;
        Ok(true)
    }
}

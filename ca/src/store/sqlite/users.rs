//! Users, invites and enrolments in SQLite.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{db, json_list, parse_ts, to_json, ts, SqliteStore, Token, TokenTable};
use crate::store::{
    InviteRedemption, PendingEnrollment, StoreError, TotpRecord, UserRecord, UserStore,
};

/// Invites: the code's hash, carrying the user it enrols.
const INVITES: TokenTable = TokenTable {
    table: "invites",
    key: "code_hash",
    carried: "user",
};

impl SqliteStore {
    fn row_user(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, bool, bool, String)> {
        Ok((
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
        ))
    }

    fn user_from(t: (String, String, bool, bool, String)) -> Result<UserRecord, StoreError> {
        Ok(UserRecord {
            name: t.0,
            groups: json_list(&t.1)?,
            admin: t.2,
            disabled: t.3,
            created_at: parse_ts(&t.4)?,
        })
    }
}

impl UserStore for SqliteStore {
    fn create_user(&self, u: &UserRecord) -> Result<(), StoreError> {
        let conn = self.conn()?;
        let r = conn.execute(
            "INSERT INTO users(name, groups_json, admin, disabled, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                u.name,
                to_json(&u.groups),
                u.admin,
                u.disabled,
                ts(u.created_at)
            ],
        );
        match r {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::Duplicate(format!("user {}", u.name)))
            }
            Err(e) => Err(db(e)),
        }
    }

    fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let conn = self.conn()?;
        let row = conn
            .query_row(
                "SELECT name, groups_json, admin, disabled, created_at FROM users WHERE name = ?1",
                [name],
                Self::row_user,
            )
            .optional()
            .map_err(db)?;
        row.map(Self::user_from).transpose()
    }

    fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare(
                "SELECT name, groups_json, admin, disabled, created_at FROM users ORDER BY name",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map([], Self::row_user)
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        rows.into_iter().map(Self::user_from).collect()
    }

    fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, StoreError> {
        let n = self.durably(|tx| {
            tx.execute(
                "UPDATE users SET disabled = ?2 WHERE name = ?1",
                params![name, disabled],
            )
            .map_err(db)
        })?;
        Ok(n == 1)
    }

    fn set_groups(&self, name: &str, groups: &[String]) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let n = conn
            .execute(
                "UPDATE users SET groups_json = ?2 WHERE name = ?1",
                params![name, to_json(groups)],
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
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO invites(code_hash, user, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![code_hash.to_vec(), user, ts(now), ts(expires_at)],
        )
        .map_err(db)?;
        Ok(())
    }

    fn redeem_invite(
        &self,
        code_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<InviteRedemption, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(db)?;
        let outcome = match INVITES.find::<String>(&tx, code_hash, now)? {
            Token::Unknown => InviteRedemption::Unknown,
            Token::Used => InviteRedemption::AlreadyUsed,
            Token::Expired => InviteRedemption::Expired,
            Token::Live(user) => {
                INVITES.spend(&tx, code_hash, now)?;
                InviteRedemption::Redeemed(user)
            }
        };
        tx.commit().map_err(db)?;
        Ok(outcome)
    }

    fn put_enrollment(
        &self,
        token_hash: &[u8; 32],
        p: &PendingEnrollment,
    ) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO enrollments(token_hash, user, sealed_seed, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash.to_vec(), p.user, p.sealed_seed, ts(p.expires_at)],
        )
        .map_err(db)?;
        Ok(())
    }

    fn enrollment(&self, token_hash: &[u8; 32]) -> Result<Option<PendingEnrollment>, StoreError> {
        let conn = self.conn()?;
        let row: Option<(String, Vec<u8>, String)> = conn
            .query_row(
                "SELECT user, sealed_seed, expires_at FROM enrollments WHERE token_hash = ?1",
                [token_hash.to_vec()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(db)?;
        row.map(|(user, sealed_seed, exp)| {
            Ok(PendingEnrollment {
                user,
                sealed_seed,
                expires_at: parse_ts(&exp)?,
            })
        })
        .transpose()
    }

    fn complete_enrollment(
        &self,
        token_hash: &[u8; 32],
        user: &str,
        totp: &TotpRecord,
        recovery: &[(String, String)],
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(db)?;
        let n = tx
            .execute(
                "DELETE FROM enrollments WHERE token_hash = ?1 AND user = ?2",
                params![token_hash.to_vec(), user],
            )
            .map_err(db)?;
        if n != 1 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO totp(user, sealed_seed, last_step) VALUES (?1, ?2, ?3)
             ON CONFLICT(user) DO UPDATE SET sealed_seed = excluded.sealed_seed,
                                             last_step = excluded.last_step",
            params![user, totp.sealed_seed, totp.last_step],
        )
        .map_err(db)?;
        tx.execute("DELETE FROM recovery_codes WHERE user = ?1", [user])
            .map_err(db)?;
        for (id, hash) in recovery {
            tx.execute(
                "INSERT INTO recovery_codes(user, id, hash) VALUES (?1, ?2, ?3)",
                params![user, id, hash],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(true)
    }
}

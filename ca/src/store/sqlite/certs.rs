//! Serial reservations, issued certificates, revocations and certified host
//! keys in SQLite.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{db, i64_of, json_list, meta_u64, parse_ts, set_meta_u64, to_json, ts, SqliteStore};
use crate::store::{CertKind, CertRecord, CertStore, Revocations, StoreError};

/// Meta key of the highest serial reserved so far.
const SERIAL_HIGH_WATER: &str = "serial_reserved_upto";
/// Meta key of the KRL version.
const KRL_VERSION: &str = "krl_version";

impl SqliteStore {
    fn cert_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<CertRow> {
        Ok(CertRow {
            serial: row.get(0)?,
            kind: row.get(1)?,
            subject: row.get(2)?,
            key_fingerprint: row.get(3)?,
            key_id: row.get(4)?,
            principals_json: row.get(5)?,
            valid_after: row.get(6)?,
            valid_before: row.get(7)?,
            issued_at: row.get(8)?,
        })
    }
}

struct CertRow {
    serial: i64,
    kind: String,
    subject: String,
    key_fingerprint: String,
    key_id: String,
    principals_json: String,
    valid_after: i64,
    valid_before: i64,
    issued_at: String,
}

impl CertRow {
    fn into_record(self) -> Result<CertRecord, StoreError> {
        let u = |v: i64| u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{v}")));
        Ok(CertRecord {
            serial: u(self.serial)?,
            kind: if self.kind == "host" {
                CertKind::Host
            } else {
                CertKind::User
            },
            subject: self.subject,
            key_fingerprint: self.key_fingerprint,
            key_id: self.key_id,
            principals: json_list(&self.principals_json)?,
            valid_after: u(self.valid_after)?,
            valid_before: u(self.valid_before)?,
            issued_at: parse_ts(&self.issued_at)?,
        })
    }
}

impl CertStore for SqliteStore {
    fn reserve_serials(&self, count: u64) -> Result<u64, StoreError> {
        self.durably(|tx| {
            let high = meta_u64(tx, SERIAL_HIGH_WATER)?;
            let new_high = high
                .checked_add(count)
                .ok_or_else(|| StoreError::Corrupt("serial space exhausted".into()))?;
            set_meta_u64(tx, SERIAL_HIGH_WATER, new_high)?;
            Ok(high + 1)
        })
    }

    fn insert_cert(&self, c: &CertRecord) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.prepare_cached(
            "INSERT INTO certs(serial, kind, subject, key_fingerprint, key_id, principals_json,
                               valid_after, valid_before, issued_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(db)?
        .execute(params![
            i64_of(c.serial)?,
            c.kind.as_str(),
            c.subject,
            c.key_fingerprint,
            c.key_id,
            to_json(&c.principals),
            i64_of(c.valid_after)?,
            i64_of(c.valid_before)?,
            ts(c.issued_at)
        ])
        .map_err(db)?;
        Ok(())
    }

    fn serials_for_user(&self, user: &str) -> Result<Vec<u64>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare("SELECT serial FROM certs WHERE kind = 'user' AND subject = ?1")
            .map_err(db)?;
        let rows = stmt
            .query_map([user], |r| r.get::<_, i64>(0))
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(rows
            .into_iter()
            .filter_map(|v| u64::try_from(v).ok())
            .collect())
    }

    fn last_expiry(
        &self,
        kind: CertKind,
        valid_after_upto: u64,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let upto = i64::try_from(valid_after_upto).unwrap_or(i64::MAX);
        let row: Option<(i64, i64)> = self
            .conn()?
            .query_row(
                "SELECT valid_before, serial FROM certs WHERE kind = ?1 AND valid_after <= ?2 \
                 ORDER BY valid_before DESC, serial DESC LIMIT 1",
                params![kind.as_str(), upto],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)?;
        Ok(row.and_then(|(end, serial)| {
            Some((u64::try_from(end).ok()?, u64::try_from(serial).ok()?))
        }))
    }

    fn serials_for_key(&self, fingerprint: &str) -> Result<Vec<u64>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare("SELECT serial FROM certs WHERE kind = 'user' AND key_fingerprint = ?1")
            .map_err(db)?;
        let rows = stmt
            .query_map([fingerprint], |r| r.get::<_, i64>(0))
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(rows
            .into_iter()
            .filter_map(|v| u64::try_from(v).ok())
            .collect())
    }

    fn cert(&self, serial: u64) -> Result<Option<CertRecord>, StoreError> {
        // Serials are reserved below i64::MAX, so a larger one names nothing
        // (it comes from a request, and is not a corrupt database).
        let Ok(serial) = i64::try_from(serial) else {
            return Ok(None);
        };
        let conn = self.conn()?;
        let row = conn
            .query_row(
                "SELECT serial, kind, subject, key_fingerprint, key_id, principals_json,
                        valid_after, valid_before, issued_at FROM certs WHERE serial = ?1",
                [serial],
                Self::cert_from,
            )
            .optional()
            .map_err(db)?;
        row.map(CertRow::into_record).transpose()
    }

    fn revoke(
        &self,
        serials: &[u64],
        key_fingerprints: &[String],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.durably(|tx| {
            let mut changed = 0;
            for s in serials {
                changed += tx
                    .execute(
                        "INSERT OR IGNORE INTO revoked_serials(serial, reason, revoked_at)
                     VALUES (?1, ?2, ?3)",
                        params![i64_of(*s)?, reason, ts(now)],
                    )
                    .map_err(db)?;
            }
            for fp in key_fingerprints {
                changed += tx
                    .execute(
                        "INSERT OR IGNORE INTO revoked_keys(fingerprint, reason, revoked_at)
                     VALUES (?1, ?2, ?3)",
                        params![fp, reason, ts(now)],
                    )
                    .map_err(db)?;
            }
            let mut version = meta_u64(tx, KRL_VERSION)?;
            if changed > 0 {
                version += 1;
                set_meta_u64(tx, KRL_VERSION, version)?;
            }
            Ok(version)
        })
    }

    fn krl_version(&self) -> Result<u64, StoreError> {
        meta_u64(&*self.conn()?, KRL_VERSION)
    }

    fn revocations(&self) -> Result<Revocations, StoreError> {
        let conn = self.conn()?;
        let version = meta_u64(&conn, KRL_VERSION)?;
        let mut stmt = conn
            .prepare("SELECT serial FROM revoked_serials ORDER BY serial")
            .map_err(db)?;
        let serials = stmt
            .query_map([], |r| r.get::<_, i64>(0))
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?
            .into_iter()
            .filter_map(|v| u64::try_from(v).ok())
            .collect();
        let mut stmt = conn
            .prepare("SELECT fingerprint FROM revoked_keys ORDER BY fingerprint")
            .map_err(db)?;
        let key_fingerprints = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(Revocations {
            version,
            serials,
            key_fingerprints,
        })
    }

    fn record_host_key(&self, fingerprint: &str, public_key: &str) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT OR IGNORE INTO host_keys(fingerprint, public_key) VALUES (?1, ?2)",
            [fingerprint, public_key],
        )
        .map_err(db)?;
        Ok(())
    }

    fn revoked_host_keys(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare(
                "SELECT h.public_key FROM host_keys h JOIN revoked_keys r
                   ON r.fingerprint = h.fingerprint ORDER BY h.fingerprint",
            )
            .map_err(db)?;
        let keys = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(keys)
    }

    fn key_revoked(&self, fingerprint: &str) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let n: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM revoked_keys WHERE fingerprint = ?1")
            .map_err(db)?
            .query_row([fingerprint], |r| r.get(0))
            .map_err(db)?;
        Ok(n > 0)
    }

    fn serial_revoked(&self, serial: u64) -> Result<bool, StoreError> {
        // A serial that does not fit the column can never have been revoked.
        let Ok(serial) = i64::try_from(serial) else {
            return Ok(false);
        };
        let conn = self.conn()?;
        let n: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM revoked_serials WHERE serial = ?1")
            .map_err(db)?
            .query_row([serial], |r| r.get(0))
            .map_err(db)?;
        Ok(n > 0)
    }
}

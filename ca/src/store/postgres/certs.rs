//! Serial reservations, issued certificates, revocations and certified host
//! keys in PostgreSQL. The serial high-water mark and the KRL version are rows
//! of `counters`: one `UPDATE … RETURNING` bumps each under its row lock, so
//! CAs sharing the database never hand out one serial twice.

use chrono::{DateTime, Utc};
use postgres::error::SqlState;
use postgres::{GenericClient, Row};

use super::{db, duplicate_or_db, i64_of, pg_error, u64_of, PostgresStore};
use crate::store::{CertKind, CertRecord, CertStore, Revocations, StoreError};

const SERIAL_HIGH_WATER: &str = "serial_reserved_upto";
const KRL_VERSION: &str = "krl_version";

/// Add `by` to a counter; its new value.
fn bump(c: &mut impl GenericClient, name: &str, by: i64) -> Result<u64, StoreError> {
    let row = c
        .query_opt(
            "UPDATE counters SET value = value + $2 WHERE name = $1 RETURNING value",
            &[&name, &by],
        )
        .map_err(db)?
        .ok_or_else(|| StoreError::Corrupt(format!("counter {name} is missing")))?;
    u64_of(row.get(0))
}

fn counter(c: &mut impl GenericClient, name: &str) -> Result<u64, StoreError> {
    let row = c
        .query_opt("SELECT value FROM counters WHERE name = $1", &[&name])
        .map_err(db)?
        .ok_or_else(|| StoreError::Corrupt(format!("counter {name} is missing")))?;
    u64_of(row.get(0))
}

fn serials(rows: Vec<Row>) -> Vec<u64> {
    rows.iter()
        .filter_map(|r| u64::try_from(r.get::<_, i64>(0)).ok())
        .collect()
}

fn cert_from(r: &Row) -> Result<CertRecord, StoreError> {
    let kind: String = r.get(1);
    Ok(CertRecord {
        serial: u64_of(r.get(0))?,
        kind: if kind == "host" {
            CertKind::Host
        } else {
            CertKind::User
        },
        subject: r.get(2),
        key_fingerprint: r.get(3),
        key_id: r.get(4),
        principals: r.get(5),
        valid_after: u64_of(r.get(6))?,
        valid_before: u64_of(r.get(7))?,
        issued_at: r.get(8),
    })
}

impl CertStore for PostgresStore {
    fn reserve_serials(&self, count: u64) -> Result<u64, StoreError> {
        let by = i64::try_from(count)
            .map_err(|_| StoreError::Corrupt("serial space exhausted".into()))?;
        let high = bump(&mut *self.conn()?, SERIAL_HIGH_WATER, by).map_err(|e| match e {
            // BIGINT overflow: the serial space is used up.
            e if pg_error(&e).and_then(postgres::Error::code)
                == Some(&SqlState::NUMERIC_VALUE_OUT_OF_RANGE) =>
            {
                StoreError::Corrupt("serial space exhausted".into())
            }
            e => e,
        })?;
        Ok(high - count + 1)
    }

    fn insert_cert(&self, c: &CertRecord) -> Result<(), StoreError> {
        let kind = c.kind.as_str();
        self.conn()?
            .execute(
                "INSERT INTO certs(serial, kind, subject, key_fingerprint, key_id, principals,
                                   valid_after, valid_before, issued_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &i64_of(c.serial)?,
                    &kind,
                    &c.subject,
                    &c.key_fingerprint,
                    &c.key_id,
                    &c.principals,
                    &i64_of(c.valid_after)?,
                    &i64_of(c.valid_before)?,
                    &c.issued_at,
                ],
            )
            .map_err(|e| duplicate_or_db(e, || format!("certificate serial {}", c.serial)))?;
        Ok(())
    }

    fn serials_for_user(&self, user: &str) -> Result<Vec<u64>, StoreError> {
        let rows = self
            .conn()?
            .query(
                "SELECT serial FROM certs WHERE kind = 'user' AND subject = $1",
                &[&user],
            )
            .map_err(db)?;
        Ok(serials(rows))
    }

    fn last_expiry(
        &self,
        kind: CertKind,
        valid_after_upto: u64,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let upto = i64::try_from(valid_after_upto).unwrap_or(i64::MAX);
        let row = self
            .conn()?
            .query_opt(
                "SELECT valid_before, serial FROM certs WHERE kind = $1 AND valid_after <= $2 \
                 ORDER BY valid_before DESC, serial DESC LIMIT 1",
                &[&kind.as_str(), &upto],
            )
            .map_err(db)?;
        Ok(row.and_then(|r| {
            let (end, serial): (i64, i64) = (r.get(0), r.get(1));
            Some((u64::try_from(end).ok()?, u64::try_from(serial).ok()?))
        }))
    }

    fn serials_for_key(&self, fingerprint: &str) -> Result<Vec<u64>, StoreError> {
        let rows = self
            .conn()?
            .query(
                "SELECT serial FROM certs WHERE kind = 'user' AND key_fingerprint = $1",
                &[&fingerprint],
            )
            .map_err(db)?;
        Ok(serials(rows))
    }

    fn cert(&self, serial: u64) -> Result<Option<CertRecord>, StoreError> {
        let Ok(serial) = i64::try_from(serial) else {
            return Ok(None);
        };
        self.conn()?
            .query_opt(
                "SELECT serial, kind, subject, key_fingerprint, key_id, principals,
                        valid_after, valid_before, issued_at FROM certs WHERE serial = $1",
                &[&serial],
            )
            .map_err(db)?
            .as_ref()
            .map(cert_from)
            .transpose()
    }

    fn revoke(
        &self,
        serials: &[u64],
        key_fingerprints: &[String],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let serials = serials
            .iter()
            .map(|s| i64_of(*s))
            .collect::<Result<Vec<_>, _>>()?;
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        let mut changed = 0;
        for s in &serials {
            changed += tx
                .execute(
                    "INSERT INTO revoked_serials(serial, reason, revoked_at) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                    &[s, &reason, &now],
                )
                .map_err(db)?;
        }
        for fp in key_fingerprints {
            changed += tx
                .execute(
                    "INSERT INTO revoked_keys(fingerprint, reason, revoked_at) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                    &[fp, &reason, &now],
                )
                .map_err(db)?;
        }
        let version = if changed > 0 {
            bump(&mut tx, KRL_VERSION, 1)?
        } else {
            counter(&mut tx, KRL_VERSION)?
        };
        tx.commit().map_err(db)?;
        Ok(version)
    }

    fn krl_version(&self) -> Result<u64, StoreError> {
        counter(&mut *self.conn()?, KRL_VERSION)
    }

    fn revocations(&self) -> Result<Revocations, StoreError> {
        let mut c = self.conn()?;
        // One snapshot: the version and the lists agree.
        let mut tx = c
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(db)?;
        let version = counter(&mut tx, KRL_VERSION)?;
        let serials = serials(
            tx.query("SELECT serial FROM revoked_serials ORDER BY serial", &[])
                .map_err(db)?,
        );
        let key_fingerprints = tx
            .query(
                "SELECT fingerprint FROM revoked_keys ORDER BY fingerprint",
                &[],
            )
            .map_err(db)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        tx.commit().map_err(db)?;
        Ok(Revocations {
            version,
            serials,
            key_fingerprints,
        })
    }

    fn record_host_key(&self, fingerprint: &str, public_key: &str) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "INSERT INTO host_keys(fingerprint, public_key) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                &[&fingerprint, &public_key],
            )
            .map_err(db)?;
        Ok(())
    }

    fn revoked_host_keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .conn()?
            .query(
                "SELECT h.public_key FROM host_keys h JOIN revoked_keys r
                   ON r.fingerprint = h.fingerprint ORDER BY h.fingerprint",
                &[],
            )
            .map_err(db)?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn key_revoked(&self, fingerprint: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()?
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM revoked_keys WHERE fingerprint = $1)",
                &[&fingerprint],
            )
            .map_err(db)?
            .get(0))
    }

    fn serial_revoked(&self, serial: u64) -> Result<bool, StoreError> {
        // A serial that does not fit the column can never have been revoked.
        let Ok(serial) = i64::try_from(serial) else {
            return Ok(false);
        };
        Ok(self
            .conn()?
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM revoked_serials WHERE serial = $1)",
                &[&serial],
            )
            .map_err(db)?
            .get(0))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestPostgres;
    use super::super::PgTarget;
    use super::*;

    /// PostgreSQL's BIGINT ends the serial space: the overflow it reports is
    /// told apart by its SQLSTATE and named as exhaustion, not as a failed
    /// database.
    #[test]
    fn overflowing_the_serial_counter_is_exhaustion() {
        let pg = TestPostgres::start();
        let t = PgTarget::new(&pg.create_database("ca"), None).unwrap();
        let store = PostgresStore::open(&t).unwrap();
        let nearly_all = u64::try_from(i64::MAX - 10).unwrap();
        assert_eq!(store.reserve_serials(nearly_all).unwrap(), 1);
        let e = store.reserve_serials(100).unwrap_err();
        assert!(
            matches!(&e, StoreError::Corrupt(m) if m == "serial space exhausted"),
            "{e:?}"
        );
        // Nothing was taken: the last ten serials are still there.
        assert_eq!(store.reserve_serials(10).unwrap(), nearly_all + 1);
    }
}

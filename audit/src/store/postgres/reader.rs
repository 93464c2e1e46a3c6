//! The read connection behind `query` and `contains_id`: it never upgrades
//! the schema, and repeats a read once on a fresh connection when the server
//! went away meanwhile.

use ::postgres::types::ToSql;
use ::postgres::Client;

use super::chain::id_exists;
use super::schema::connect_checked;
use super::{hash32, is_lost_server, pg_err, seq_from, PgConfig};
use crate::event::{canonical_time, decode_body, Event};
use crate::store::{serial_to_sql, Query};
use crate::AuditError;

/// A read connection (for `query` and `contains_id`); readers do not upgrade
/// the schema and refuse one that is not this binary's.
pub(crate) struct PgReader {
    config: PgConfig,
    client: Client,
}

impl std::fmt::Debug for PgReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgReader").finish_non_exhaustive()
    }
}

impl PgReader {
    pub(crate) fn open(cfg: &PgConfig) -> Result<PgReader, AuditError> {
        Ok(PgReader {
            config: cfg.clone(),
            client: connect_checked(cfg)?,
        })
    }

    /// Run a read; once more on a fresh connection when the server went away
    /// meanwhile.
    fn read<T>(
        &mut self,
        mut op: impl FnMut(&mut Client) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        match op(&mut self.client) {
            Err(e) if is_lost_server(&e) => {
                let fresh = connect_checked(&self.config)?;
                // The old client is closed (or closing): nothing to say goodbye to.
                drop(std::mem::replace(&mut self.client, fresh));
                op(&mut self.client)
            }
            r => r,
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    pub(crate) fn id_exists(&mut self, id: &str) -> Result<bool, AuditError> {
        self.read(|c| id_exists(c, id))
    }

    pub(crate) fn query(&mut self, q: &Query) -> Result<Vec<Event>, AuditError> {
        let mut sql = String::from("SELECT seq, body, hash FROM audit_events WHERE true");
        let kind = q.kind.map(|k| k.as_str().to_owned());
        let since = q.since.as_ref().map(canonical_time);
        let until = q.until.as_ref().map(canonical_time);
        let serial = q.serial.map(serial_to_sql);
        let after = q.after_seq.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
        let limit = q.limit.map(i64::from);
        let mut conds: Vec<(&str, &str, &(dyn ToSql + Sync))> = Vec::new();
        if let Some(k) = &kind {
            conds.push(("kind", "=", k));
        }
        if let Some(u) = &q.user {
            conds.push((r#""user""#, "=", u));
        }
        if let Some(s) = &serial {
            conds.push(("serial", "=", s));
        }
        if let Some(t) = &since {
            conds.push(("time", ">=", t));
        }
        if let Some(t) = &until {
            conds.push(("time", "<", t));
        }
        if let Some(s) = &after {
            conds.push(("seq", ">", s));
        }
        let mut args: Vec<&(dyn ToSql + Sync)> = Vec::new();
        for (col, op, v) in conds {
            args.push(v);
            sql.push_str(&format!(" AND {col} {op} ${}", args.len()));
        }
        sql.push_str(if q.newest_first {
            " ORDER BY seq DESC"
        } else {
            " ORDER BY seq ASC"
        });
        if let Some(n) = &limit {
            args.push(n);
            sql.push_str(&format!(" LIMIT ${}", args.len()));
        }
        let rows = self.read(|c| c.query(&sql, &args).map_err(pg_err))?;
        rows.iter()
            .map(|r| {
                let seq = seq_from(r.get(0))?;
                let body: &str = r.get(1);
                decode_body(seq, body.as_bytes(), hash32(seq, r.get(2))?)
            })
            .collect()
    }
}

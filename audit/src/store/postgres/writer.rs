//! The writer thread's PostgreSQL store: every append takes the
//! transaction-scoped advisory lock, reads the head, stores the batch built
//! on it and commits; a connection the server closed is replaced.

use ::postgres::error::SqlState;
use ::postgres::Client;

use super::chain::{id_exists, read_state};
use super::schema::migrate;
use super::{connect, describe, is_lost_server, PgConfig};
use crate::event::canonical_time;
use crate::store::{
    seq_to_sql, serial_to_sql, Backend, BackendError, Batch, BuildBatch, ChainState,
};
use crate::AuditError;

/// The advisory lock every append holds (transaction-scoped): "RAMA" + 1.
const APPEND_LOCK: i64 = 0x5241_4d41_0000_0001;

/// The PostgreSQL backend of the writer thread. It reconnects on the next
/// append after the server went away.
pub(crate) struct PgBackend {
    config: PgConfig,
    client: Option<Client>,
}

impl std::fmt::Debug for PgBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBackend")
            .field("database", &describe(&self.config))
            .finish_non_exhaustive()
    }
}

impl PgBackend {
    /// Connect, and create or upgrade the schema.
    pub(crate) fn open(config: &PgConfig) -> Result<PgBackend, AuditError> {
        let mut client = connect(config)?;
        migrate(&mut client, config)?;
        Ok(PgBackend {
            config: config.clone(),
            client: Some(client),
        })
    }

    fn client(&mut self) -> Result<&mut Client, AuditError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            self.client = Some(connect(&self.config)?);
        }
        self.client.as_mut().ok_or(AuditError::WriterGone)
    }

    /// Forget a connection the server closed, so the next call reconnects.
    fn after<T>(&mut self, r: Result<T, BackendError>) -> Result<T, BackendError> {
        if r.is_err() && self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        r
    }
}

impl PgBackend {
    /// The writer's connection, for the witness check at open.
    pub(crate) fn connection(&mut self) -> Result<&mut Client, AuditError> {
        self.client()
    }
}

impl PgBackend {
    /// Run a read on the connection; when the server turns out to have gone
    /// away meanwhile (a restart closes every connection), once more on a
    /// fresh one: a read is safe to repeat.
    fn read<T>(
        &mut self,
        mut op: impl FnMut(&mut Client) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        let mut retried = false;
        loop {
            let r = self.client().and_then(&mut op);
            match r {
                Err(e) if !retried && is_lost_server(&e) => {
                    self.client = None;
                    retried = true;
                }
                r => {
                    if r.is_err() && self.client.as_ref().is_some_and(Client::is_closed) {
                        self.client = None;
                    }
                    return r;
                }
            }
        }
    }
}

impl Backend for PgBackend {
    fn load_state(&mut self) -> Result<ChainState, AuditError> {
        self.read(read_state)
    }

    fn id_exists(&mut self, id: &str) -> Result<bool, AuditError> {
        self.read(|c| id_exists(c, id))
    }

    fn append_with(&mut self, build: &mut BuildBatch<'_>) -> Result<Batch, BackendError> {
        let mut retried = false;
        loop {
            let client = self.client().map_err(BackendError::Other)?;
            match append_locked(client, build) {
                Ok(batch) => return Ok(batch),
                // Lost before COMMIT was sent: the server rolled the
                // transaction back, so the batch can go again on a fresh
                // connection. A failed COMMIT is not repeated: it may have
                // been applied.
                Err(Failed {
                    error: BackendError::Other(e),
                    committing: false,
                }) if !retried && is_lost_server(&e) => {
                    self.client = None;
                    retried = true;
                }
                Err(Failed { error, .. }) => return self.after(Err(error)),
            }
        }
    }
}

/// Why [`append_locked`] failed, and whether COMMIT had been sent.
struct Failed {
    error: BackendError,
    committing: bool,
}

impl<E: Into<BackendError>> From<E> for Failed {
    fn from(e: E) -> Self {
        Failed {
            error: e.into(),
            committing: false,
        }
    }
}

fn append_locked(client: &mut Client, build: &mut BuildBatch<'_>) -> Result<Batch, Failed> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK])?;
    let state = read_state(&mut tx).map_err(BackendError::Other)?;
    let batch = build(&state).map_err(BackendError::Other)?;
    if !batch.rows.is_empty() {
        // One statement for the whole batch: arrays unnested into rows.
        let n = batch.rows.len();
        let (mut seqs, mut ids, mut times, mut kinds) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut users, mut serials, mut bodies, mut hashes) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for r in &batch.rows {
            seqs.push(seq_to_sql(r.seq).map_err(BackendError::Other)?);
            ids.push(r.id.as_str());
            times.push(r.time.as_str());
            kinds.push(r.kind.as_str());
            users.push(r.user.as_deref());
            serials.push(r.serial.map(serial_to_sql));
            bodies.push(std::str::from_utf8(&r.body).map_err(|e| {
                BackendError::Other(AuditError::write_failed_by(
                    "the event body is not UTF-8",
                    e,
                ))
            })?);
            hashes.push(&r.hash[..]);
        }
        let inserted = tx.execute(
            r#"INSERT INTO audit_events (seq, id, time, kind, "user", serial, body, hash)
               SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[],
                                    $5::text[], $6::int8[], $7::text[], $8::bytea[])"#,
            &[
                &seqs, &ids, &times, &kinds, &users, &serials, &bodies, &hashes,
            ],
        );
        if let Err(e) = inserted {
            let duplicate_id = e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                && e.as_db_error().and_then(|d| d.constraint()) == Some("audit_events_id");
            return Err(Failed::from(if duplicate_id {
                BackendError::DuplicateId
            } else {
                e.into()
            }));
        }
    }
    for c in &batch.checkpoints {
        tx.execute(
            "INSERT INTO audit_checkpoints (seq, hash, time, signature) VALUES ($1, $2, $3, $4)",
            &[
                &seq_to_sql(c.seq).map_err(BackendError::Other)?,
                &&c.hash[..],
                &canonical_time(&c.time),
                &c.signature,
            ],
        )?;
    }
    tx.commit().map_err(|e| Failed {
        error: e.into(),
        committing: true,
    })?;
    Ok(batch)
}

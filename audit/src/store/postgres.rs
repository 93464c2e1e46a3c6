//! The PostgreSQL store: one hash chain that several CAs append to.
//!
//! Tables `audit_events` and `audit_checkpoints` (prefixed, so they can share
//! a database with the CA's own tables), append-only by trigger (row updates,
//! deletes and `TRUNCATE` are refused); `audit_forwarder_cursors`, the SIEM
//! forwarders' shared cursors (mutable, outside the chain); and `audit_schema`
//! holding the schema version.
//!
//! The single append point is a transaction-scoped advisory lock
//! ([`APPEND_LOCK`]): a writer takes it, reads the head, hashes its batch onto
//! that head, inserts it and commits, which releases the lock. Two CAs
//! appending at once therefore interleave whole batches; neither can fork the
//! chain or leave a gap, and neither needs to retry. Commits are durable under
//! PostgreSQL's default `synchronous_commit = on`.
//!
//! The blocking `postgres` client is used from the writer thread and from the
//! callers of `query`, which must not be async workers (the same rule as the
//! CA's PostgreSQL store).

use std::path::Path;

use ::postgres::error::SqlState;
use ::postgres::types::ToSql;
use ::postgres::{Client, GenericClient, IsolationLevel};

use super::sqlite::{RawEvent, SqliteBackend};
use super::{
    seq_to_sql, serial_to_sql, Backend, BackendError, Batch, BuildBatch, ChainState, Query,
};
use crate::event::{canonical_time, decode_body, Event};
use crate::AuditError;

pub use super::pg_connect::{describe, is_postgres_url, pg_config, PgConfig};

/// The advisory lock every append holds (transaction-scoped): "RAMA" + 1.
const APPEND_LOCK: i64 = 0x5241_4d41_0000_0001;
/// The advisory lock schema changes hold, so two CAs starting at once do not
/// both create the tables.
const MIGRATE_LOCK: i64 = 0x5241_4d41_0000_0002;

/// Schema steps, oldest first; entry `i` takes version `i` to `i + 1`. A
/// released step is never edited.
const MIGRATIONS: &[&str] = &[SCHEMA_V1];

/// The schema version this binary writes and the newest it opens.
pub const PG_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const SCHEMA_V1: &str = r#"
CREATE TABLE audit_events (
    seq    BIGINT PRIMARY KEY CHECK (seq >= 1),
    id     TEXT NOT NULL,
    time   TEXT NOT NULL,
    kind   TEXT NOT NULL,
    "user" TEXT,
    serial BIGINT,
    body   TEXT NOT NULL,
    hash   BYTEA NOT NULL CHECK (length(hash) = 32),
    CONSTRAINT audit_events_id UNIQUE (id)
);
CREATE INDEX audit_events_time ON audit_events (time);
CREATE INDEX audit_events_kind_time ON audit_events (kind, time);
CREATE INDEX audit_events_user_time ON audit_events ("user", time) WHERE "user" IS NOT NULL;
CREATE INDEX audit_events_serial ON audit_events (serial) WHERE serial IS NOT NULL;
CREATE TABLE audit_checkpoints (
    seq       BIGINT PRIMARY KEY CHECK (seq >= 1),
    hash      BYTEA NOT NULL CHECK (length(hash) = 32),
    time      TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TABLE audit_forwarder_cursors (
    name       TEXT PRIMARY KEY,
    last_seq   BIGINT NOT NULL CHECK (last_seq >= 0),
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit log is append-only';
END
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
"#;

fn pg_err(e: ::postgres::Error) -> AuditError {
    AuditError::Postgres(e)
}

impl From<::postgres::Error> for BackendError {
    fn from(e: ::postgres::Error) -> Self {
        BackendError::Other(pg_err(e))
    }
}

fn connect(cfg: &PgConfig) -> Result<Client, AuditError> {
    cfg.clone()
        .for_application("rampart-audit")
        .connect()
        .map_err(pg_err)
}

/// The stored schema version (0: no audit tables yet).
fn stored_version(c: &mut impl GenericClient) -> Result<i64, ::postgres::Error> {
    let exists: bool = c
        .query_one("SELECT to_regclass('audit_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(c.query_opt("SELECT version FROM audit_schema", &[])?
        .map(|r| r.get::<_, i32>(0).into())
        .unwrap_or(0))
}

fn check_not_newer(cfg: &PgConfig, version: i64) -> Result<(), AuditError> {
    if version > PG_SCHEMA_VERSION {
        return Err(AuditError::Format(format!(
            "{}: audit schema version {version} is newer than the {PG_SCHEMA_VERSION} this \
             binary knows: use the release that wrote it, or a newer one",
            describe(cfg)
        )));
    }
    Ok(())
}

/// Create the audit tables or bring them up to [`PG_SCHEMA_VERSION`], in one
/// transaction under [`MIGRATE_LOCK`]; refuse a newer schema.
fn migrate(client: &mut Client, cfg: &PgConfig) -> Result<(), AuditError> {
    let mut tx = client.transaction().map_err(pg_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
        .map_err(pg_err)?;
    let version = stored_version(&mut tx).map_err(pg_err)?;
    check_not_newer(cfg, version)?;
    let done = usize::try_from(version).unwrap_or(0);
    let pending = MIGRATIONS.get(done..).unwrap_or_default();
    if !pending.is_empty() {
        for step in pending {
            tx.batch_execute(step).map_err(pg_err)?;
        }
        let v = i32::try_from(PG_SCHEMA_VERSION).unwrap_or(i32::MAX);
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS audit_schema (version INTEGER NOT NULL);
             DELETE FROM audit_schema;",
        )
        .map_err(pg_err)?;
        tx.execute("INSERT INTO audit_schema (version) VALUES ($1)", &[&v])
            .map_err(pg_err)?;
    }
    tx.commit().map_err(pg_err)
}

fn hash32(seq: u64, v: &[u8]) -> Result<[u8; 32], AuditError> {
    <[u8; 32]>::try_from(v).map_err(|_| AuditError::CorruptRow {
        seq,
        reason: "hash is not 32 bytes".into(),
    })
}

fn seq_from(v: i64) -> Result<u64, AuditError> {
    u64::try_from(v).map_err(|_| AuditError::CorruptRow {
        seq: 0,
        reason: format!("negative sequence {v}"),
    })
}

pub(crate) fn read_state(c: &mut impl GenericClient) -> Result<ChainState, AuditError> {
    let checkpoint_seq: Option<i64> = c
        .query_one("SELECT max(seq) FROM audit_checkpoints", &[])
        .map_err(pg_err)?
        .get(0);
    let checkpoint_seq = u64::try_from(checkpoint_seq.unwrap_or(0)).unwrap_or(0);
    let head = c
        .query_opt(
            "SELECT seq, hash, time FROM audit_events ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .map_err(pg_err)?;
    match head {
        None => Ok(ChainState {
            seq: 0,
            hash: [0; 32],
            time: None,
            checkpoint_seq,
        }),
        Some(r) => {
            let seq = seq_from(r.get(0))?;
            Ok(ChainState {
                seq,
                hash: hash32(seq, r.get(1))?,
                time: Some(r.get(2)),
                checkpoint_seq,
            })
        }
    }
}

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

/// The chain hash stored at `seq`, if that event exists.
pub(crate) fn hash_at(
    c: &mut impl GenericClient,
    seq: u64,
) -> Result<Option<[u8; 32]>, AuditError> {
    let s = seq_to_sql(seq)?;
    let row = c
        .query_opt("SELECT hash FROM audit_events WHERE seq = $1", &[&s])
        .map_err(pg_err)?;
    row.map(|r| hash32(seq, r.get(0))).transpose()
}

/// The newest stored checkpoint, in the shape of an anchor.
pub(crate) fn newest_checkpoint(
    c: &mut impl GenericClient,
) -> Result<Option<crate::retention::Anchor>, AuditError> {
    let row = c
        .query_opt(
            "SELECT seq, hash, time, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .map_err(pg_err)?;
    row.map(|r| {
        let seq = seq_from(r.get(0))?;
        Ok(crate::retention::Anchor {
            seq,
            hash: hash32(seq, r.get(1))?,
            time: r.get(2),
            signature: r.get(3),
        })
    })
    .transpose()
}

/// The head (last event): sequence and hash, `(0, zeros)` when empty.
pub(crate) fn head(c: &mut impl GenericClient) -> Result<(u64, [u8; 32]), AuditError> {
    let s = read_state(c)?;
    Ok((s.seq, s.hash))
}

/// The stored schema version of the audit tables at `cfg`, read without
/// changing anything (0: none yet); an error when newer than this binary.
pub fn postgres_schema_version(cfg: &PgConfig) -> Result<i64, AuditError> {
    let mut c = connect(cfg)?;
    let v = stored_version(&mut c).map_err(pg_err)?;
    check_not_newer(cfg, v)?;
    Ok(v)
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

/// Whether `e` says the server went away (the connection closed, an
/// administrator shut it down, it is starting) rather than that a statement
/// failed.
pub(crate) fn lost_server(e: &::postgres::Error) -> bool {
    e.is_closed()
        || matches!(
            e.code(),
            Some(c) if *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
        )
}

fn is_lost_server(e: &AuditError) -> bool {
    matches!(e, AuditError::Postgres(pe) if lost_server(pe))
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

fn id_exists(c: &mut impl GenericClient, id: &str) -> Result<bool, AuditError> {
    Ok(
        c.query_opt("SELECT 1 FROM audit_events WHERE id = $1", &[&id])
            .map_err(pg_err)?
            .is_some(),
    )
}

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

pub(crate) fn connect_checked(cfg: &PgConfig) -> Result<Client, AuditError> {
    let mut client = connect(cfg)?;
    let version = stored_version(&mut client).map_err(pg_err)?;
    check_not_newer(cfg, version)?;
    if version < PG_SCHEMA_VERSION {
        return Err(AuditError::Format(format!(
            "{}: audit schema version {version} is older than the {PG_SCHEMA_VERSION} this \
             binary reads{}",
            describe(cfg),
            if version == 0 {
                " (no Rampart audit log there yet)"
            } else {
                ": start rampart-ca once to upgrade it"
            }
        )));
    }
    Ok(client)
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

/// Rows copied per round trip by [`copy_to_sqlite`].
const COPY_PAGE: i64 = 5_000;

/// Copy the PostgreSQL audit log into a new SQLite audit database at `dest`
/// (which must not exist), byte for byte: the same bodies, hashes and
/// checkpoints, read in one consistent snapshot. [`crate::verify`] and the
/// exports then run on the copy exactly as on a CA's own `audit.db`, so a
/// PostgreSQL log is checked by the same code. Returns the events copied.
pub fn copy_to_sqlite(config: &PgConfig, dest: &Path) -> Result<u64, AuditError> {
    if dest.exists() {
        return Err(AuditError::Config(format!(
            "{} exists: the copy goes to a new file",
            dest.display()
        )));
    }
    let mut client = connect_checked(config)?;
    let mut snap = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(pg_err)?;
    let mut out = SqliteBackend::open(dest, std::time::Duration::from_secs(5))?;
    let mut copied = 0u64;
    let mut after = 0i64;
    out.copy_in(|sink| {
        loop {
            let rows = snap
                .query(
                    r#"SELECT seq, id, time, kind, "user", serial, body, hash FROM audit_events
                       WHERE seq > $1 ORDER BY seq LIMIT $2"#,
                    &[&after, &COPY_PAGE],
                )
                .map_err(pg_err)?;
            let Some(last) = rows.last() else { break };
            after = last.get(0);
            for r in &rows {
                sink.event(&RawEvent {
                    seq: r.get(0),
                    id: r.get(1),
                    time: r.get(2),
                    kind: r.get(3),
                    user: r.get(4),
                    serial: r.get(5),
                    body: r.get(6),
                    hash: r.get(7),
                })?;
                copied += 1;
            }
        }
        for r in snap
            .query(
                "SELECT seq, hash, time, signature FROM audit_checkpoints ORDER BY seq",
                &[],
            )
            .map_err(pg_err)?
        {
            sink.checkpoint(r.get(0), r.get(1), r.get(2), r.get(3))?;
        }
        Ok(())
    })?;
    snap.commit().map_err(pg_err)?;
    Ok(copied)
}

//! The SQLite store: one file (`audit.db`), WAL, `synchronous=FULL`; one CA
//! writes it. Also the read-only connections that `query`, `verify`, the
//! exports, retention and the witness open on that file.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::{Backend, BackendError, Batch, BuildBatch, ChainState, Query};
use crate::event::{canonical_time, decode_body, Event};
use crate::AuditError;

/// `PRAGMA application_id` of a Rampart audit database ("RAMA").
pub(crate) const APPLICATION_ID: i64 = 0x5241_4d41;
/// `PRAGMA user_version`: the on-disk schema version this binary writes, and the
/// newest it opens.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The schema, one step per version, oldest first: entry `i` takes a database
/// from version `i` to `i + 1`. A new version appends a step; a step already
/// released is never edited, since databases past it never run it again.
const MIGRATIONS: &[&str] = &[SCHEMA_V1];

/// Version 1: the events and checkpoints tables and their append-only triggers.
const SCHEMA_V1: &str = "
CREATE TABLE events (
    seq    INTEGER PRIMARY KEY NOT NULL CHECK (seq >= 1),
    id     TEXT NOT NULL,
    time   TEXT NOT NULL,
    kind   TEXT NOT NULL,
    user   TEXT,
    serial INTEGER,
    body   TEXT NOT NULL,
    hash   BLOB NOT NULL CHECK (length(hash) = 32)
) STRICT;
CREATE UNIQUE INDEX events_id ON events(id);
CREATE INDEX events_time ON events(time);
CREATE INDEX events_kind_time ON events(kind, time);
CREATE INDEX events_user_time ON events(user, time) WHERE user IS NOT NULL;
CREATE INDEX events_serial ON events(serial) WHERE serial IS NOT NULL;
CREATE TABLE checkpoints (
    seq       INTEGER PRIMARY KEY NOT NULL CHECK (seq >= 1),
    hash      BLOB NOT NULL CHECK (length(hash) = 32),
    time      TEXT NOT NULL,
    signature TEXT NOT NULL
) STRICT;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
";

/// SQLite storage (WAL, `synchronous=FULL`).
pub(crate) struct SqliteBackend {
    conn: Connection,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend").finish_non_exhaustive()
    }
}

impl SqliteBackend {
    /// Open (creating if needed) the database for writing.
    pub(crate) fn open(path: &Path, busy_timeout: Duration) -> Result<Self, AuditError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(busy_timeout)?;
        // WAL: readers (query, verify, forwarders) never block the writer.
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(AuditError::Format(format!(
                "could not enable WAL (journal_mode={mode})"
            )));
        }
        // FULL: in WAL mode the WAL is fsynced at every commit, so a committed
        // event survives power loss (NORMAL would only survive a process crash).
        conn.pragma_update(None, "synchronous", "FULL")?;
        // The user/kind/serial indexes take inserts all over their B-trees; keep
        // their pages in memory (64 MiB) rather than re-read them from the OS.
        conn.pragma_update(None, "cache_size", -65_536)?;
        conn.set_prepared_statement_cache_capacity(16);
        let mut me = SqliteBackend { conn };
        me.init_schema()?;
        Ok(me)
    }

    /// Create the schema in a new database, or bring an older one up to
    /// [`SCHEMA_VERSION`], in one transaction; refuse a foreign or newer one.
    fn init_schema(&mut self) -> Result<(), AuditError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let app: i64 = tx.query_row("PRAGMA application_id", [], |r| r.get(0))?;
        let ver: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let tables: i64 = tx.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        let fresh = app == 0 && ver == 0 && tables == 0;
        if !fresh {
            check_application(app)?;
            check_not_newer(ver)?;
        }
        let done = usize::try_from(ver).unwrap_or(0);
        let pending = MIGRATIONS.get(done..).unwrap_or_default();
        if !pending.is_empty() {
            for step in pending {
                tx.execute_batch(step)?;
            }
            tx.pragma_update(None, "application_id", APPLICATION_ID)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn check_application(app: i64) -> Result<(), AuditError> {
    if app != APPLICATION_ID {
        return Err(AuditError::Format(format!(
            "not a Rampart audit database (application_id is {app:#x})"
        )));
    }
    Ok(())
}

fn check_not_newer(ver: i64) -> Result<(), AuditError> {
    if ver > SCHEMA_VERSION {
        return Err(AuditError::Format(format!(
            "audit database schema version {ver} is newer than the {SCHEMA_VERSION} this \
             binary knows: use the release that wrote it, or a newer one"
        )));
    }
    Ok(())
}

/// A database opened by a reader (verify, query, export, forwarders) must be
/// an audit database at exactly this version: readers do not upgrade. The error
/// names the file.
pub(crate) fn check_ids(path: &Path, app: i64, ver: i64) -> Result<(), AuditError> {
    let at = |e: AuditError| match e {
        AuditError::Format(m) => AuditError::Format(format!("{}: {m}", path.display())),
        other => other,
    };
    check_application(app).map_err(at)?;
    check_not_newer(ver).map_err(at)?;
    if ver < SCHEMA_VERSION {
        return Err(at(AuditError::Format(format!(
            "audit database schema version {ver} is older than the {SCHEMA_VERSION} this \
             binary reads: start rampart-ca once to upgrade it"
        ))));
    }
    Ok(())
}

/// The schema version of the audit database at `path`, read without changing
/// it; an error when it is not one this binary can read.
pub fn schema_version(path: &Path) -> Result<i64, AuditError> {
    let conn = open_read_only(path)?;
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Open an existing audit database read-only and check that it is one.
pub(crate) fn open_read_only(path: &Path) -> Result<Connection, AuditError> {
    if !path.exists() {
        return Err(AuditError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} does not exist", path.display()),
        )));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let app: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let ver: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    check_ids(path, app, ver)?;
    Ok(conn)
}

/// u64 serials are stored bit-for-bit in SQLite's signed INTEGER: equality (the
/// only query on serials) is preserved; values above `i64::MAX` read as negative
/// in `sqlite3` but map back exactly.
pub(crate) fn serial_to_sql(s: u64) -> i64 {
    i64::from_ne_bytes(s.to_ne_bytes())
}

pub(crate) fn serial_from_sql(s: i64) -> u64 {
    u64::from_ne_bytes(s.to_ne_bytes())
}

pub(crate) fn seq_to_sql(seq: u64) -> Result<i64, AuditError> {
    i64::try_from(seq).map_err(|_| AuditError::Format(format!("sequence {seq} out of range")))
}

fn hash_from(v: ValueRef<'_>) -> Option<[u8; 32]> {
    match v {
        ValueRef::Blob(b) => <[u8; 32]>::try_from(b).ok(),
        _ => None,
    }
}

fn read_state(conn: &Connection) -> Result<ChainState, AuditError> {
    let head = conn
        .query_row(
            "SELECT seq, hash, time FROM events ORDER BY seq DESC LIMIT 1",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    hash_from(r.get_ref(1)?),
                    r.get::<_, String>(2)?,
                ))
            },
        )
        .optional()?;
    let checkpoint_seq: Option<i64> =
        conn.query_row("SELECT max(seq) FROM checkpoints", [], |r| r.get(0))?;
    let checkpoint_seq = u64::try_from(checkpoint_seq.unwrap_or(0)).unwrap_or(0);
    match head {
        None => Ok(ChainState {
            seq: 0,
            hash: [0; 32],
            time: None,
            checkpoint_seq,
        }),
        Some((seq, hash, time)) => {
            let seq = u64::try_from(seq).map_err(|_| AuditError::CorruptRow {
                seq: 0,
                reason: format!("negative sequence {seq}"),
            })?;
            let hash = hash.ok_or_else(|| AuditError::CorruptRow {
                seq,
                reason: "hash is not 32 bytes".into(),
            })?;
            Ok(ChainState {
                seq,
                hash,
                time: Some(time),
                checkpoint_seq,
            })
        }
    }
}

impl Backend for SqliteBackend {
    fn load_state(&mut self) -> Result<ChainState, AuditError> {
        read_state(&self.conn)
    }

    fn id_exists(&mut self, id: &str) -> Result<bool, AuditError> {
        id_exists(&self.conn, id)
    }

    fn append_with(&mut self, build: &mut BuildBatch<'_>) -> Result<Batch, BackendError> {
        // IMMEDIATE takes the write lock up front: the state read below cannot
        // move before we commit, whoever else has the file open.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let state = read_state(&tx).map_err(BackendError::Other)?;
        let batch = build(&state).map_err(BackendError::Other)?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO events (seq, id, time, kind, user, serial, body, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for r in &batch.rows {
                let body = std::str::from_utf8(&r.body).map_err(|e| {
                    BackendError::Other(AuditError::write_failed_by(
                        "the event body is not UTF-8",
                        e,
                    ))
                })?;
                ins.execute(params![
                    seq_to_sql(r.seq).map_err(BackendError::Other)?,
                    r.id,
                    r.time,
                    r.kind.as_str(),
                    r.user,
                    r.serial.map(serial_to_sql),
                    body,
                    &r.hash[..],
                ])
                .map_err(|e| duplicate_id_or(e, "events.id"))?;
            }
            let mut cp = tx.prepare_cached(
                "INSERT INTO checkpoints (seq, hash, time, signature) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for c in &batch.checkpoints {
                cp.execute(params![
                    seq_to_sql(c.seq).map_err(BackendError::Other)?,
                    &c.hash[..],
                    canonical_time(&c.time),
                    c.signature,
                ])?;
            }
        }
        tx.commit()?;
        Ok(batch)
    }
}

/// One stored event row as it is, for copying a log between stores.
#[derive(Debug)]
pub(crate) struct RawEvent<'a> {
    pub seq: i64,
    pub id: &'a str,
    pub time: &'a str,
    pub kind: &'a str,
    pub user: Option<&'a str>,
    pub serial: Option<i64>,
    pub body: &'a str,
    pub hash: &'a [u8],
}

/// Where [`SqliteBackend::copy_in`] writes rows: inserted as given, nothing
/// recomputed, so a copy holds exactly the bytes of the original.
pub(crate) struct RawSink<'t> {
    events: rusqlite::Statement<'t>,
    checkpoints: rusqlite::Statement<'t>,
}

impl std::fmt::Debug for RawSink<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSink").finish_non_exhaustive()
    }
}

impl RawSink<'_> {
    pub(crate) fn event(&mut self, e: &RawEvent<'_>) -> Result<(), AuditError> {
        self.events.execute(params![
            e.seq, e.id, e.time, e.kind, e.user, e.serial, e.body, e.hash
        ])?;
        Ok(())
    }

    pub(crate) fn checkpoint(
        &mut self,
        seq: i64,
        hash: &[u8],
        time: &str,
        signature: &str,
    ) -> Result<(), AuditError> {
        self.checkpoints
            .execute(params![seq, hash, time, signature])?;
        Ok(())
    }
}

impl SqliteBackend {
    /// Fill a new database with rows copied from elsewhere, in one transaction.
    pub(crate) fn copy_in(
        &mut self,
        fill: impl FnOnce(&mut RawSink<'_>) -> Result<(), AuditError>,
    ) -> Result<(), AuditError> {
        let tx = self.conn.transaction()?;
        {
            let mut sink = RawSink {
                events: tx.prepare(
                    "INSERT INTO events (seq, id, time, kind, user, serial, body, hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?,
                checkpoints: tx.prepare(
                    "INSERT INTO checkpoints (seq, hash, time, signature) VALUES (?1, ?2, ?3, ?4)",
                )?,
            };
            fill(&mut sink)?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// A unique-constraint failure on `column` is [`BackendError::DuplicateId`].
fn duplicate_id_or(e: rusqlite::Error, column: &str) -> BackendError {
    match &e {
        rusqlite::Error::SqliteFailure(f, Some(msg))
            if f.code == rusqlite::ErrorCode::ConstraintViolation && msg.contains(column) =>
        {
            BackendError::DuplicateId
        }
        _ => BackendError::from(e),
    }
}

impl From<rusqlite::Error> for BackendError {
    fn from(e: rusqlite::Error) -> Self {
        BackendError::Other(AuditError::Sqlite(e))
    }
}

/// Whether an event with `id` is stored (the `events_id` index).
pub(crate) fn id_exists(conn: &Connection, id: &str) -> Result<bool, AuditError> {
    let mut st = conn.prepare_cached("SELECT 1 FROM events WHERE id = ?1")?;
    Ok(st.exists([id])?)
}

/// Run a query on a read connection. The events are decoded from their bodies
/// (the authoritative copy); this does not verify the chain.
pub(crate) fn run_query(conn: &Connection, q: &Query) -> Result<Vec<Event>, AuditError> {
    use rusqlite::types::Value;
    let mut sql = String::from("SELECT seq, body, hash FROM events WHERE 1=1");
    let mut args: Vec<Value> = Vec::new();
    if let Some(k) = q.kind {
        sql.push_str(" AND kind = ?");
        args.push(Value::Text(k.as_str().to_owned()));
    }
    if let Some(u) = &q.user {
        sql.push_str(" AND user = ?");
        args.push(Value::Text(u.clone()));
    }
    if let Some(s) = q.serial {
        sql.push_str(" AND serial = ?");
        args.push(Value::Integer(serial_to_sql(s)));
    }
    if let Some(t) = &q.since {
        sql.push_str(" AND time >= ?");
        args.push(Value::Text(canonical_time(t)));
    }
    if let Some(t) = &q.until {
        sql.push_str(" AND time < ?");
        args.push(Value::Text(canonical_time(t)));
    }
    if let Some(s) = q.after_seq {
        sql.push_str(" AND seq > ?");
        args.push(Value::Integer(i64::try_from(s).unwrap_or(i64::MAX)));
    }
    sql.push_str(if q.newest_first {
        " ORDER BY seq DESC"
    } else {
        " ORDER BY seq ASC"
    });
    if let Some(n) = q.limit {
        sql.push_str(" LIMIT ?");
        args.push(Value::Integer(i64::from(n)));
    }
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query(rusqlite::params_from_iter(args))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let seq = u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0);
        let body = match r.get_ref(1)? {
            ValueRef::Text(t) => t,
            _ => {
                return Err(AuditError::CorruptRow {
                    seq,
                    reason: "body is not text".into(),
                })
            }
        };
        let hash = hash_from(r.get_ref(2)?).ok_or_else(|| AuditError::CorruptRow {
            seq,
            reason: "hash is not 32 bytes".into(),
        })?;
        out.push(decode_body(seq, body, hash)?);
    }
    Ok(out)
}

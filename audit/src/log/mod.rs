//! [`AuditLog`]: the handle callers append through, and the writer thread behind it.
//!
//! One dedicated thread owns the write connection. `append` sends the event over a
//! channel together with a one-shot reply channel and blocks. The writer takes the
//! first queued command, drains up to `max_batch` further queued appends, writes them
//! all in ONE transaction (group commit: one fsync for the whole batch), and only then
//! replies to every waiter. So `Ok` always means "durably on disk", and concurrency
//! turns into bigger batches rather than more fsyncs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use ssh_key::PrivateKey;

use crate::checkpoint::CheckpointSigner;

use crate::checkpoint::Checkpoint;
use crate::event::{Event, NewEvent};
use crate::store::postgres::{PgBackend, PgConfig, PgReader};
use crate::store::{open_read_only, run_query, Backend, Query, SqliteBackend};
use crate::{AuditError, AuditStore};

mod writer;
use writer::Writer;

/// Tuning knobs of the writer. `Default` gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditConfig {
    /// Write a signed checkpoint after this many events (default 1000; 0 = never by count).
    pub checkpoint_every_events: u64,
    /// …or when this much time has passed since the last checkpoint and there are
    /// new events (default 60 s), measured with the monotonic clock.
    pub checkpoint_every: Duration,
    /// Most events committed in one transaction (default 512, at least 1).
    pub max_batch: usize,
    /// How long a write waits for a database lock held by someone else before the
    /// batch fails (default 5 s).
    pub busy_timeout: Duration,
    /// Append-only file that receives a copy of every committed checkpoint (see
    /// [`crate::witness`]). When set, `open` refuses a database that is behind
    /// or disagrees with the file's newest line. Default none.
    pub witness: Option<PathBuf>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            checkpoint_every_events: 1000,
            checkpoint_every: Duration::from_secs(60),
            max_batch: 512,
            busy_timeout: Duration::from_secs(5),
            witness: None,
        }
    }
}

/// What `append` returns once the event is durably committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The event's sequence number.
    pub seq: u64,
    /// The event's ID (pre-allocated or assigned by the writer).
    pub id: ulid::Ulid,
    /// The event's chain hash.
    pub hash: [u8; 32],
}

type Reply<T> = SyncSender<Result<T, AuditError>>;
/// An append waiting in a batch: the event, its reply channel.
type Pending = (Box<NewEvent>, Reply<Appended>);
/// An admitted append: the event, its ID, its reply channel.
type Admitted = (Box<NewEvent>, ulid::Ulid, Reply<Appended>);

enum Cmd {
    Append(Box<NewEvent>, Reply<Appended>),
    /// Events that must land in the same transaction (see `append_all`).
    Group(Vec<Pending>),
    Checkpoint(Reply<Option<Checkpoint>>),
    Close(Reply<()>),
}

struct Shared {
    healthy: AtomicBool,
    head: Mutex<(u64, [u8; 32])>,
    /// Checkpoints that could not be appended to the witness file.
    witness_failures: AtomicU64,
}

/// The read connection behind `query` and `contains_id`.
enum Reader {
    Sqlite(Connection),
    Postgres(Box<PgReader>),
}

impl Reader {
    fn open(source: &AuditStore) -> Result<Reader, AuditError> {
        Ok(match source {
            AuditStore::Sqlite(p) => Reader::Sqlite(open_read_only(p)?),
            AuditStore::Postgres(c) => Reader::Postgres(Box::new(PgReader::open(c)?)),
        })
    }

    /// Whether to start afresh next time rather than keep a connection in a
    /// bad state.
    fn broken(&self, e: &AuditError) -> bool {
        match self {
            Reader::Sqlite(_) => matches!(e, AuditError::Sqlite(_)),
            Reader::Postgres(r) => r.is_closed(),
        }
    }
}

struct Inner {
    source: AuditStore,
    tx: Sender<Cmd>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    reader: Mutex<Option<Reader>>,
}

/// A cheap, cloneable, `Send + Sync` handle on an open audit log.
///
/// Dropping the last handle closes the log (final checkpoint, writer stopped);
/// call [`AuditLog::close`] to see the result of that.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("source", &self.inner.source.to_string())
            .field("healthy", &self.healthy())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked while holding it; the
    // guarded data (a head copy, a read connection) stays consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AuditLog {
    /// Open (creating if new) the log at `path` and start its writer thread. The
    /// chain resumes from the last stored row. Without a `checkpoint_key` no
    /// checkpoints are written (the chain still detects edits, but not a cut tail).
    pub fn open(
        path: &Path,
        checkpoint_key: Option<PrivateKey>,
        config: AuditConfig,
    ) -> Result<AuditLog, AuditError> {
        if let Some(k) = &checkpoint_key {
            if k.is_encrypted() {
                return Err(AuditError::Signature(
                    "checkpoint key is encrypted; decrypt it first".into(),
                ));
            }
        }
        let signer = checkpoint_key.map(|k| Arc::new(k) as Arc<dyn CheckpointSigner>);
        Self::open_with_signer(path, signer, config)
    }

    /// [`AuditLog::open`] with checkpoints signed by `checkpoint_signer`, which
    /// need not hold the key in this process.
    pub fn open_with_signer(
        path: &Path,
        checkpoint_key: Option<Arc<dyn CheckpointSigner>>,
        config: AuditConfig,
    ) -> Result<AuditLog, AuditError> {
        Self::check_config(&config)?;
        let backend = SqliteBackend::open(path, config.busy_timeout)?;
        let mut witness_begun = false;
        if let Some(w) = &config.witness {
            crate::witness::open_check(path, w, checkpoint_key.as_ref().map(|k| k.public_key()))?;
            witness_begun = !crate::witness::is_absent(w)?;
        }
        Self::start(
            AuditStore::Sqlite(path.to_owned()),
            backend,
            checkpoint_key,
            config,
            witness_begun,
        )
    }

    /// Open (creating the tables if new) the log in a PostgreSQL database,
    /// which other CAs may append to at the same time: they share one chain.
    /// Each writer signs the checkpoints it cuts. The witness, when
    /// configured, is this process's own file: it records the checkpoints this
    /// writer cut and refuses a database that disagrees with its newest line.
    pub fn open_postgres(
        database: &PgConfig,
        checkpoint_key: Option<Arc<dyn CheckpointSigner>>,
        config: AuditConfig,
    ) -> Result<AuditLog, AuditError> {
        Self::check_config(&config)?;
        let mut backend = PgBackend::open(database)?;
        let mut witness_begun = false;
        if let Some(w) = &config.witness {
            crate::witness::open_check_postgres(
                backend.connection()?,
                w,
                checkpoint_key.as_ref().map(|k| k.public_key()),
            )?;
            witness_begun = !crate::witness::is_absent(w)?;
        }
        Self::start(
            AuditStore::Postgres(Box::new(database.clone())),
            backend,
            checkpoint_key,
            config,
            witness_begun,
        )
    }

    fn check_config(config: &AuditConfig) -> Result<(), AuditError> {
        if config.max_batch == 0 {
            return Err(AuditError::Config("max_batch must be at least 1".into()));
        }
        if config.checkpoint_every.is_zero() {
            return Err(AuditError::Config(
                "checkpoint_every must be positive".into(),
            ));
        }
        Ok(())
    }

    fn start<B: Backend + 'static>(
        source: AuditStore,
        mut backend: B,
        checkpoint_key: Option<Arc<dyn CheckpointSigner>>,
        config: AuditConfig,
        witness_begun: bool,
    ) -> Result<AuditLog, AuditError> {
        let state = backend.load_state()?;
        let shared = Arc::new(Shared {
            healthy: AtomicBool::new(true),
            head: Mutex::new((state.seq, state.hash)),
            witness_failures: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            backend,
            key: checkpoint_key,
            config,
            state,
            last_cp_at: Instant::now(),
            witness_begun: std::cell::Cell::new(witness_begun),
            ulids: ulid::Generator::new(),
            shared: Arc::clone(&shared),
            last_batch: 1,
            linger: Duration::ZERO,
        };
        let thread = std::thread::Builder::new()
            .name("rampart-audit-writer".into())
            .spawn(move || writer.run(rx))?;
        Ok(AuditLog {
            inner: Arc::new(Inner {
                source,
                tx,
                shared,
                thread: Mutex::new(Some(thread)),
                reader: Mutex::new(None),
            }),
        })
    }

    /// Append an event. Blocks until it is durably committed (WAL fsynced) and
    /// returns its position; any failure returns `Err` and nothing was written
    /// (fail closed: the caller must refuse the action it wanted to record).
    pub fn append(&self, ev: NewEvent) -> Result<Appended, AuditError> {
        let (rtx, rrx) = mpsc::sync_channel(1);
        self.inner
            .tx
            .send(Cmd::Append(Box::new(ev), rtx))
            .map_err(|_| AuditError::WriterGone)?;
        rrx.recv().map_err(|_| AuditError::WriterGone)?
    }

    /// Append several events atomically: all of them are committed in the same
    /// transaction, in order and contiguously, or none is. Blocks until durable.
    ///
    /// Events may pre-allocate IDs ([`NewEvent::with_id`]); check them with
    /// [`contains_id`](Self::contains_id) first. One that exists after all (a
    /// concurrent writer used it) is refused alone with
    /// [`AuditError::DuplicateId`] while the others are committed, and that
    /// error is returned: a caller that retries finds them all present.
    pub fn append_all(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, AuditError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut group = Vec::with_capacity(events.len());
        let mut waits = Vec::with_capacity(events.len());
        for ev in events {
            let (rtx, rrx) = mpsc::sync_channel(1);
            group.push((Box::new(ev), rtx));
            waits.push(rrx);
        }
        self.inner
            .tx
            .send(Cmd::Group(group))
            .map_err(|_| AuditError::WriterGone)?;
        let mut out = Vec::with_capacity(waits.len());
        let mut first_err = None;
        for rrx in waits {
            match rrx.recv().map_err(|_| AuditError::WriterGone) {
                Ok(Ok(a)) => out.push(a),
                Ok(Err(e)) | Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            None => Ok(out),
            Some(e) => Err(e),
        }
    }

    /// Write a signed checkpoint now for the current head. `Ok(None)` when there is
    /// no checkpoint key or no event since the last checkpoint.
    pub fn checkpoint_now(&self) -> Result<Option<Checkpoint>, AuditError> {
        let (rtx, rrx) = mpsc::sync_channel(1);
        self.inner
            .tx
            .send(Cmd::Checkpoint(rtx))
            .map_err(|_| AuditError::WriterGone)?;
        rrx.recv().map_err(|_| AuditError::WriterGone)?
    }

    /// The last committed sequence number and hash; `(0, [0; 32])` for an empty log.
    pub fn head(&self) -> Result<(u64, [u8; 32]), AuditError> {
        Ok(*lock(&self.inner.shared.head))
    }

    /// How many committed checkpoints could not be appended to the witness file
    /// since the log was opened (for a metric and an alert: a witness that stops
    /// moving no longer guards the newest history).
    pub fn witness_failures(&self) -> u64 {
        self.inner.shared.witness_failures.load(Ordering::Relaxed)
    }

    /// False after a write error until a later write succeeds, and after close.
    pub fn healthy(&self) -> bool {
        self.inner.shared.healthy.load(Ordering::SeqCst)
    }

    /// Write a final checkpoint and stop the writer thread. Later appends fail with
    /// [`AuditError::WriterGone`]. Closing twice is not an error.
    pub fn close(&self) -> Result<(), AuditError> {
        self.inner.close()
    }

    /// Read events matching `filter` through a read-only connection. The events are
    /// decoded from their stored bodies; use [`crate::verify`] to check the chain.
    pub fn query(&self, filter: &Query) -> Result<Vec<Event>, AuditError> {
        self.read(|r| match r {
            Reader::Sqlite(conn) => run_query(conn, filter),
            Reader::Postgres(pg) => pg.query(filter),
        })
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&mut Reader) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        let mut guard = lock(&self.inner.reader);
        if guard.is_none() {
            *guard = Some(Reader::open(&self.inner.source)?);
        }
        let Some(reader) = guard.as_mut() else {
            return Err(AuditError::WriterGone);
        };
        let result = f(reader);
        if let Err(e) = &result {
            if reader.broken(e) {
                if let Some(old) = guard.take() {
                    drop_reader(old);
                }
            }
        }
        result
    }

    /// Whether an event with this ID is in the log (an indexed lookup through
    /// the read-only connection): how a writer that resends events with their
    /// own IDs after an unanswered request skips those already committed.
    pub fn contains_id(&self, id: &ulid::Ulid) -> Result<bool, AuditError> {
        let id = id.to_string();
        self.read(|r| match r {
            Reader::Sqlite(conn) => crate::store::id_exists(conn, &id),
            Reader::Postgres(pg) => pg.id_exists(&id),
        })
    }

    /// The database file this log writes; `None` for a PostgreSQL log.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.inner.source {
            AuditStore::Sqlite(p) => Some(p),
            AuditStore::Postgres(_) => None,
        }
    }
}

/// Close a read connection. The blocking PostgreSQL client runs a small
/// runtime of its own and must not be dropped on an async worker, where the
/// last handle of a log may go as a server shuts down: it is closed on a
/// thread of its own.
fn drop_reader(reader: Reader) {
    match reader {
        Reader::Sqlite(c) => drop(c),
        Reader::Postgres(pg) => {
            let _ = std::thread::Builder::new()
                .name("rampart-audit-close".into())
                .spawn(move || drop(pg))
                .map(|h| h.join());
        }
    }
}

impl Inner {
    fn close(&self) -> Result<(), AuditError> {
        let Some(handle) = lock(&self.thread).take() else {
            return Ok(());
        };
        let (rtx, rrx) = mpsc::sync_channel(1);
        let result = match self.tx.send(Cmd::Close(rtx)) {
            Ok(()) => rrx.recv().unwrap_or(Err(AuditError::WriterGone)),
            Err(_) => Err(AuditError::WriterGone),
        };
        if handle.join().is_err() {
            tracing::error!("audit writer thread panicked");
        }
        self.shared.healthy.store(false, Ordering::SeqCst);
        result
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(error = %rampart_api::report::one_line(&e), "closing the audit log failed");
        }
        if let Some(r) = lock(&self.reader).take() {
            drop_reader(r);
        }
    }
}

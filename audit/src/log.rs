//! [`AuditLog`]: the handle callers append through, and the writer thread behind it.
//!
//! One dedicated thread owns the write connection. `append` sends the event over a
//! channel together with a one-shot reply channel and blocks. The writer takes the
//! first queued command, drains up to `max_batch` further queued appends, writes them
//! all in ONE transaction (group commit: one fsync for the whole batch), and only then
//! replies to every waiter. So `Ok` always means "durably on disk", and concurrency
//! turns into bigger batches rather than more fsyncs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use ssh_key::PrivateKey;

use crate::checkpoint::CheckpointSigner;

use crate::checkpoint::Checkpoint;
use crate::event::{canonical_time, chain_hash, encode_body, Event, NewEvent, Sealed};
use crate::store::postgres::{PgBackend, PgConfig, PgReader};
use crate::store::{
    open_read_only, run_query, Backend, BackendError, Batch, ChainState, EventRow, Query,
    SqliteBackend,
};
use crate::{AuditError, AuditStore};

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
            tracing::error!(error = %e.one_line(), "closing the audit log failed");
        }
        if let Some(r) = lock(&self.reader).take() {
            drop_reader(r);
        }
    }
}

struct Writer<B: Backend> {
    backend: B,
    key: Option<Arc<dyn CheckpointSigner>>,
    config: AuditConfig,
    /// The chain head as last committed or read. It only decides when a
    /// checkpoint is due: every append reads the stored head afresh under the
    /// store's write lock, so a stale copy (another writer appended, or a
    /// failed write) costs nothing.
    state: ChainState,
    last_cp_at: Instant,
    ulids: ulid::Generator,
    shared: Arc<Shared>,
    /// Size of the last committed batch: the next batch waits (briefly) for as many.
    last_batch: usize,
    /// How long the next batch may wait for more events.
    linger: Duration,
    /// The witness file holds a line (it was there at open, or this writer
    /// wrote one). From then on a missing file is a failure, not a new file:
    /// a witness deleted under a running writer must not quietly begin again
    /// at the next checkpoint.
    witness_begun: std::cell::Cell<bool>,
}

/// Upper bound on the group-commit wait, whatever a commit costs.
const MAX_LINGER: Duration = Duration::from_millis(2);

impl<B: Backend> Writer<B> {
    fn run(mut self, rx: Receiver<Cmd>) {
        loop {
            let first = match rx.recv_timeout(self.next_timeout()) {
                Ok(cmd) => cmd,
                Err(RecvTimeoutError::Timeout) => {
                    self.checkpoint_if_due();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // Every handle is gone without close(): still seal what we have.
                    if let Err(e) = self.checkpoint() {
                        tracing::error!(error = %e.one_line(), "final audit checkpoint failed");
                    }
                    return;
                }
            };
            let mut batch = Vec::new();
            let mut control = None;
            match first {
                Cmd::Append(ev, reply) => batch.push((ev, reply)),
                Cmd::Group(group) => batch.extend(group),
                other => control = Some(other),
            }
            // Group commit. Appenders block until their batch is durable, so right
            // after a commit the queue is nearly empty and refills within
            // microseconds as the woken threads send their next event. Taking only
            // what is queued would alternate tiny and large batches (and fsyncs);
            // instead wait briefly for as many events as the last batch had — never
            // longer than `linger`, a fraction of what a commit costs anyway.
            let want = self.last_batch.min(self.config.max_batch);
            let deadline = Instant::now() + self.linger;
            while control.is_none() && batch.len() < self.config.max_batch {
                match rx.try_recv() {
                    Ok(Cmd::Append(ev, reply)) => batch.push((ev, reply)),
                    // A group is never split: it may take the batch past max_batch.
                    Ok(Cmd::Group(group)) => batch.extend(group),
                    Ok(other) => control = Some(other),
                    Err(TryRecvError::Disconnected) => break,
                    Err(TryRecvError::Empty) => {
                        let now = Instant::now();
                        if batch.len() >= want || now >= deadline {
                            break;
                        }
                        match rx.recv_timeout(deadline - now) {
                            Ok(Cmd::Append(ev, reply)) => batch.push((ev, reply)),
                            Ok(Cmd::Group(group)) => batch.extend(group),
                            Ok(other) => control = Some(other),
                            Err(_) => break,
                        }
                    }
                }
            }
            if !batch.is_empty() {
                let n = batch.len();
                let started = Instant::now();
                self.commit_batch(batch);
                // Adapt: linger at most a quarter of the last commit's duration.
                self.linger = (started.elapsed() / 4).min(MAX_LINGER);
                self.last_batch = n;
            }
            match control {
                None => self.checkpoint_if_due(),
                Some(Cmd::Checkpoint(reply)) => {
                    let _ = reply.send(self.checkpoint());
                }
                Some(Cmd::Close(reply)) => {
                    let _ = reply.send(self.checkpoint().map(|_| ()));
                    return;
                }
                Some(Cmd::Append(..) | Cmd::Group(_)) => {} // never stored in `control`
            }
        }
    }

    fn next_timeout(&self) -> Duration {
        let every = self.config.checkpoint_every;
        if self.key.is_some() && self.state.seq > self.state.checkpoint_seq {
            every
                .saturating_sub(self.last_cp_at.elapsed())
                .max(Duration::from_millis(1))
        } else {
            every
        }
    }

    fn set_healthy(&self, ok: bool) {
        self.shared.healthy.store(ok, Ordering::SeqCst);
    }

    fn publish(&mut self, next: ChainState) {
        *lock(&self.shared.head) = (next.seq, next.hash);
        self.state = next;
    }

    fn reload(&mut self) -> Result<(), AuditError> {
        let state = self.backend.load_state()?;
        self.publish(state);
        Ok(())
    }

    fn new_ulid(&mut self, time: DateTime<Utc>) -> ulid::Ulid {
        let t = std::time::SystemTime::from(time);
        // The generator keeps IDs strictly increasing within a millisecond; on its
        // (80-bit) overflow fall back to a fresh random ULID.
        self.ulids
            .generate_from_datetime(t)
            .unwrap_or_else(|_| ulid::Ulid::from_datetime(t))
    }

    /// Refuse pre-allocated IDs that already exist; assign IDs to the rest.
    fn admit(
        &mut self,
        batch: Vec<Pending>,
    ) -> Result<Vec<Admitted>, (AuditError, Vec<Reply<Appended>>)> {
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(batch.len());
        let mut iter = batch.into_iter();
        while let Some((ev, reply)) = iter.next() {
            let id = match ev.id {
                Some(id) => {
                    let exists = match self.backend.id_exists(&id.to_string()) {
                        Ok(b) => b,
                        Err(e) => {
                            let mut replies: Vec<_> = out.into_iter().map(|(_, _, r)| r).collect();
                            replies.push(reply);
                            replies.extend(iter.map(|(_, r)| r));
                            return Err((e, replies));
                        }
                    };
                    if exists || !seen.insert(id) {
                        let _ = reply.send(Err(AuditError::DuplicateId(id)));
                        continue;
                    }
                    id
                }
                None => self.new_ulid(ev.time),
            };
            out.push((ev, id, reply));
        }
        Ok(out)
    }

    /// Drop from `events` those whose pre-allocated ID another writer stored
    /// meanwhile, refusing each alone with [`AuditError::DuplicateId`].
    fn drop_stored_ids(&mut self, events: Vec<Admitted>) -> Result<Vec<Admitted>, AuditError> {
        let mut kept = Vec::with_capacity(events.len());
        for (ev, id, reply) in events {
            if ev.id.is_some() && self.backend.id_exists(&id.to_string())? {
                let _ = reply.send(Err(AuditError::DuplicateId(id)));
            } else {
                kept.push((ev, id, reply));
            }
        }
        Ok(kept)
    }

    fn commit_batch(&mut self, batch: Vec<Pending>) {
        let fail = |this: &mut Self, err: AuditError, replies: Vec<Reply<Appended>>| {
            tracing::error!(error = %err.one_line(), events = replies.len(), "audit batch not written");
            this.set_healthy(false);
            // Every event of the batch fails for the same reason: share it.
            let cause: Arc<dyn std::error::Error + Send + Sync> = Arc::new(err);
            for r in replies {
                let _ = r.send(Err(AuditError::WriteFailed {
                    reason: "its batch was not committed".into(),
                    source: Some(Arc::clone(&cause)),
                }));
            }
            // Continue from what is really stored, not from what we hoped to store.
            if let Err(e) = this.reload() {
                tracing::error!(error = %e.one_line(), "reloading the audit chain head failed");
            }
        };
        let mut events = match self.admit(batch) {
            Ok(ev) => ev,
            Err((e, replies)) => return fail(self, e, replies),
        };
        // A pre-allocated ID stored by another writer between `admit` and the
        // append fails the batch as a whole; drop it and try once more.
        for attempt in 0..2 {
            if events.is_empty() {
                return;
            }
            let every = self.config.checkpoint_every_events;
            let key = self.key.as_deref();
            let result = self
                .backend
                .append_with(&mut |state| prepare(key, every, state, &events));
            let err = match result {
                Ok(batch) => {
                    if !batch.checkpoints.is_empty() {
                        self.last_cp_at = Instant::now();
                        self.witness(&batch.checkpoints);
                    }
                    self.publish(batch.next);
                    self.set_healthy(true);
                    for ((_, id, reply), row) in events.into_iter().zip(batch.rows) {
                        let _ = reply.send(Ok(Appended {
                            seq: row.seq,
                            id,
                            hash: row.hash,
                        }));
                    }
                    return;
                }
                Err(BackendError::DuplicateId) if attempt == 0 => {
                    match self.drop_stored_ids(events) {
                        Ok(kept) => {
                            events = kept;
                            continue;
                        }
                        Err(e) => {
                            // The replies went with the events; none is left to answer.
                            tracing::error!(error = %e.one_line(), "checking audit event IDs failed");
                            return;
                        }
                    }
                }
                Err(BackendError::DuplicateId) => {
                    AuditError::write_failed("an event ID was stored twice meanwhile")
                }
                Err(BackendError::Other(e)) => e,
            };
            let replies = events.into_iter().map(|(_, _, r)| r).collect();
            return fail(self, err, replies);
        }
    }

    /// Copy committed checkpoints to the witness file. After the commit, so the
    /// witness is never ahead of the database. A failure is logged and counted
    /// ([`AuditLog::witness_failures`]), not fatal: the checkpoint is durable in
    /// the database, and the next one is witnessed again (the witness only falls
    /// behind).
    fn witness(&self, checkpoints: &[Checkpoint]) {
        let Some(path) = &self.config.witness else {
            return;
        };
        for cp in checkpoints {
            let create = !self.witness_begun.get();
            match crate::witness::append_checkpoint_to(path, cp, create) {
                Ok(()) => self.witness_begun.set(true),
                Err(e) => {
                    self.shared.witness_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e.one_line(), seq = cp.seq, "audit checkpoint not witnessed");
                }
            }
        }
    }

    fn checkpoint_if_due(&mut self) {
        if self.key.is_some()
            && self.state.seq > self.state.checkpoint_seq
            && self.last_cp_at.elapsed() >= self.config.checkpoint_every
        {
            if let Err(e) = self.checkpoint() {
                tracing::error!(error = %e.one_line(), "periodic audit checkpoint failed");
                // Try again after another interval rather than spin.
                self.last_cp_at = Instant::now();
            }
        }
    }

    /// Sign and store a checkpoint for the current head, if there is anything
    /// new (the head as stored: another writer may have moved it).
    fn checkpoint(&mut self) -> Result<Option<Checkpoint>, AuditError> {
        let Some(key) = self.key.clone() else {
            return Ok(None);
        };
        let result = self
            .backend
            .append_with(&mut |state| checkpoint_batch(key.as_ref(), state));
        match result {
            Ok(batch) => {
                let cp = batch.checkpoints.first().cloned();
                self.publish(batch.next);
                self.last_cp_at = Instant::now();
                if let Some(cp) = &cp {
                    self.witness(std::slice::from_ref(cp));
                }
                self.set_healthy(true);
                Ok(cp)
            }
            Err(e) => {
                self.set_healthy(false);
                let _ = self.reload();
                Err(match e {
                    BackendError::DuplicateId => AuditError::write_failed(
                        "a checkpoint append reported a duplicate event ID",
                    ),
                    BackendError::Other(e) => e,
                })
            }
        }
    }
}

/// Hash `events` onto `state` (and sign a checkpoint every `every` events when
/// there is a key): the batch one append stores.
fn prepare(
    key: Option<&dyn CheckpointSigner>,
    every: u64,
    state: &ChainState,
    events: &[Admitted],
) -> Result<Batch, AuditError> {
    let mut next = state.clone();
    let mut rows = Vec::with_capacity(events.len());
    let mut checkpoints = Vec::new();
    for (ev, id, _) in events {
        let seq = next.seq + 1;
        let id = id.to_string();
        let time = canonical_time(&ev.time);
        let body = encode_body(&Sealed {
            seq,
            id: &id,
            time: &time,
            ev,
        })?;
        let hash = chain_hash(&next.hash, &body);
        if let Some(key) = key {
            if every > 0 && seq - next.checkpoint_seq >= every {
                checkpoints.push(Checkpoint::sign(key, seq, hash, ev.time)?);
                next.checkpoint_seq = seq;
            }
        }
        rows.push(EventRow {
            seq,
            id,
            time: time.clone(),
            kind: ev.kind,
            user: ev.user.clone(),
            serial: ev.serial,
            body,
            hash,
        });
        next.seq = seq;
        next.hash = hash;
        next.time = Some(time);
    }
    Ok(Batch {
        rows,
        checkpoints,
        next,
    })
}

/// A checkpoint over `state`'s head, unless it is already covered.
fn checkpoint_batch(key: &dyn CheckpointSigner, state: &ChainState) -> Result<Batch, AuditError> {
    let mut next = state.clone();
    let mut checkpoints = Vec::new();
    if let (Some(time), true) = (&state.time, state.seq > state.checkpoint_seq) {
        let time = DateTime::parse_from_rfc3339(time)
            .map_err(|e| AuditError::CorruptRow {
                seq: state.seq,
                reason: format!("time: {e}"),
            })?
            .with_timezone(&Utc);
        checkpoints.push(Checkpoint::sign(key, state.seq, state.hash, time)?);
        next.checkpoint_seq = state.seq;
    }
    Ok(Batch {
        rows: Vec::new(),
        checkpoints,
        next,
    })
}

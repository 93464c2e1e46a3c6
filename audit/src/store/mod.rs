//! Storage: the seam the writer thread talks to ([`Backend`]), the query filter,
//! and the two stores behind it: [`sqlite`] (the embedded default, one CA) and
//! [`postgres`] (one chain shared by several CAs).
//!
//! Many writers, one chain: a backend builds each batch *under its write lock*
//! from the state it reads there (SQLite's `BEGIN IMMEDIATE`, a PostgreSQL
//! transaction-scoped advisory lock), so a second writer never forks the chain
//! or leaves a gap; it only finds the head further on than it last saw.

mod pg_connect;
pub(crate) mod postgres;
pub(crate) mod sqlite;

use crate::checkpoint::Checkpoint;
use crate::event::EventKind;
use crate::AuditError;

pub use sqlite::schema_version;
pub(crate) use sqlite::{
    check_ids, id_exists, open_read_only, run_query, seq_to_sql, serial_from_sql, serial_to_sql,
    SqliteBackend,
};

/// One event row as the writer prepared it.
#[derive(Debug)]
pub(crate) struct EventRow {
    pub seq: u64,
    pub id: String,
    pub time: String,
    pub kind: EventKind,
    pub user: Option<String>,
    pub serial: Option<u64>,
    pub body: Vec<u8>,
    pub hash: [u8; 32],
}

/// The chain position the writer continues from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChainState {
    pub seq: u64,
    pub hash: [u8; 32],
    /// The last event's canonical time, if any event exists.
    pub time: Option<String>,
    /// The highest checkpointed sequence (0 if none).
    pub checkpoint_seq: u64,
}

/// What one append stores: event rows, checkpoints, and the state they lead to.
#[derive(Debug)]
pub(crate) struct Batch {
    pub rows: Vec<EventRow>,
    pub checkpoints: Vec<Checkpoint>,
    pub next: ChainState,
}

/// Builds a batch on top of the state a backend read under its write lock.
pub(crate) type BuildBatch<'a> = dyn FnMut(&ChainState) -> Result<Batch, AuditError> + 'a;

/// What the writer thread needs from a store.
pub(crate) trait Backend: Send {
    /// Read the current head and last checkpoint from storage.
    fn load_state(&mut self) -> Result<ChainState, AuditError>;
    /// Whether an event ID is already stored.
    fn id_exists(&mut self, id: &str) -> Result<bool, AuditError>;
    /// Holding the store's write lock: read the stored state, hand it to
    /// `build`, store the batch it returns and commit. Atomic (all rows and
    /// checkpoints, or nothing) and durable when it returns `Ok`.
    fn append_with(&mut self, build: &mut BuildBatch<'_>) -> Result<Batch, BackendError>;
}

/// Failure of [`Backend::append_with`].
#[derive(Debug)]
pub(crate) enum BackendError {
    /// A pre-allocated event ID was stored meanwhile by another writer; nothing
    /// of the batch was written.
    DuplicateId,
    /// Anything else.
    Other(AuditError),
}

/// Filter for [`crate::AuditLog::query`]. All set conditions must hold.
/// `since` is inclusive, `until` exclusive. Results are in sequence order
/// (oldest first, or newest first with `newest_first`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// Only this kind.
    pub kind: Option<EventKind>,
    /// Only events about this user.
    pub user: Option<String>,
    /// Only events about this certificate serial.
    pub serial: Option<u64>,
    /// Only events at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only events strictly before this time.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Only events with a sequence number greater than this (for paging).
    pub after_seq: Option<u64>,
    /// At most this many events (default: no limit).
    pub limit: Option<u32>,
    /// Newest first instead of oldest first.
    pub newest_first: bool,
}

impl Query {
    /// Match every event.
    pub fn all() -> Self {
        Query::default()
    }
    /// Restrict to one kind.
    pub fn kind(mut self, kind: EventKind) -> Self {
        self.kind = Some(kind);
        self
    }
    /// Restrict to one user.
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_owned());
        self
    }
    /// Restrict to one serial.
    pub fn serial(mut self, serial: u64) -> Self {
        self.serial = Some(serial);
        self
    }
    /// Events at or after `t`.
    pub fn since(mut self, t: chrono::DateTime<chrono::Utc>) -> Self {
        self.since = Some(t);
        self
    }
    /// Events before `t`.
    pub fn until(mut self, t: chrono::DateTime<chrono::Utc>) -> Self {
        self.until = Some(t);
        self
    }
    /// Events after sequence `seq`.
    pub fn after_seq(mut self, seq: u64) -> Self {
        self.after_seq = Some(seq);
        self
    }
    /// At most `n` events.
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }
    /// Newest first.
    pub fn newest_first(mut self) -> Self {
        self.newest_first = true;
        self
    }
}

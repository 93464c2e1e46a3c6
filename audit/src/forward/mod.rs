//! SIEM forwarders: stream the audit log to a receiver from a durable cursor.
//!
//! **Owns:** the transport-independent engine (cursor, batching, retry with
//! exponential backoff, lag and error reporting) and the [`Sink`] seam that
//! transports implement: syslog over TCP (RFC 6587 octet counting) and over TLS
//! (RFC 5425) live in [`syslog`]; HTTPS webhook and Splunk HEC sinks in [`http`].
//! **Must never:** block the writer or hold events in memory queues. A forwarder
//! only *reads* the log on its own thread and its own database connection;
//! events wait in the database until they are delivered.
//!
//! Files: `cursor` (the `Cursors` seam and its SQLite
//! implementation), `cursor_pg` (PostgreSQL: the shared cursor and the lease
//! that lets one CA of several send a forwarder's events), `worker` (the loop
//! below), [`syslog`] and [`http`] (the sinks).
//!
//! # Delivery: at-least-once
//!
//! Each forwarder has a row in the `forwarder_cursors` table of the audit
//! database (`name`, `last_seq`): every event with `seq <= last_seq` is known to
//! have reached the receiver. The loop reads `seq > sent` in order, `batch_size`
//! at a time, writes and flushes the batch, and advances the durable cursor once
//! the batch is *confirmed*. On any error it drops the connection, waits (backoff
//! doubling from [`ForwarderSettings::retry_initial`] up to
//! [`ForwarderSettings::retry_max`]), reconnects and resends from the durable
//! cursor. So after an outage or a crash some events may arrive twice — always with
//! the same ULID (`id`), by which the SIEM de-duplicates — but none is lost.
//!
//! Plain syslog over TCP has no application-level acknowledgement: a successful
//! `write` only means the bytes are in the kernel's buffers. A receiver that closes
//! its socket with data still unread makes its kernel answer with a reset, which the
//! sender only sees on a later read or write. Stream sinks therefore report
//! [`Delivery::Written`], and the engine confirms a batch only when the connection
//! is still standing [`ForwarderSettings::settle`] after it was written (a peek at
//! the socket shows no EOF or reset). On a graceful stop the sink half-closes the
//! connection and waits for the receiver to close its side: a receiver reads
//! everything before it sees our FIN, so its EOF proves the whole stream was read.
//! Acknowledging sinks (HTTP) report [`Delivery::Acknowledged`] and are confirmed at
//! once.
//!
//! # Checkpoints travel with the events
//!
//! Every signed checkpoint is forwarded too, so that the SIEM keeps each signed
//! head where the CA host cannot reach it (what `rampart audit verify
//! --expect-head` and `--witness` compare a database with). A checkpoint
//! committed with its event goes out right after that event in the same batch.
//! A checkpoint signed later, on the timer, over an event already sent, goes out
//! on its own once the forwarder has caught up ([`Record::checkpoint_only`]); only
//! the newest such checkpoint is sent, since it vouches for everything before it.
//! Sinks send a checkpoint in the JSON Lines checkpoint shape (`audit/SCHEMA.md`
//! §4), the same line the witness file holds: webhook and HEC as one more object,
//! syslog as its own message (see [`syslog`]). Which checkpoints went out is kept
//! in memory only: after a restart the forwarder assumes the checkpoints up to its
//! cursor were delivered, so at worst one late checkpoint is missed and the next
//! one covers it.
//!
//! # The cursor table and `verify`
//!
//! ```text
//! CREATE TABLE IF NOT EXISTS forwarder_cursors (
//!     name TEXT PRIMARY KEY NOT NULL, last_seq INTEGER NOT NULL CHECK (last_seq >= 0),
//!     updated_at TEXT NOT NULL) STRICT
//! ```
//!
//! is created by the first forwarder that opens the database. It is mutable state,
//! outside the chain: [`crate::verify`] reads only `events` and `checkpoints`, and
//! the append-only triggers guard only those two tables. Its connection uses
//! `synchronous=NORMAL`: a cursor lost to a power cut only means some events are
//! sent again, and the writer's `FULL` commits are not slowed by extra fsyncs.

mod cursor;
mod cursor_pg;
pub mod http;
pub mod syslog;
mod worker;

use std::collections::VecDeque;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::event::Event;
use crate::AuditError;

pub use cursor::{read_cursor, CURSOR_TABLE};
pub use http::{HecToken, HttpOptions, HttpTrust, SplunkHec, Webhook};
pub use syslog::{SyslogOptions, SyslogTcp, SyslogTls};

/// Why a forwarder could not start or deliver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// Reading the log or writing the cursor failed.
    #[error(transparent)]
    Audit(#[from] AuditError),

    /// Connecting to, writing to or reading from the receiver failed; the
    /// I/O error is the source (printed once by a chain printer such as
    /// `rampart_api::report::one_line`).
    #[error("receiver I/O")]
    Io(#[from] std::io::Error),

    /// The TLS handshake failed or the receiver's certificate was refused. It
    /// holds the reason as text and has no source, so the text stays in the
    /// message.
    #[error("TLS: {0}")]
    Tls(String),

    /// The receiver closed the connection (it may not have read everything).
    #[error("the receiver closed the connection")]
    Closed,

    /// The forwarder's settings or the sink's options are unusable.
    #[error("invalid forwarder configuration: {0}")]
    Config(String),

    /// An HTTP receiver answered with a status worth retrying soon (5xx, 429).
    #[error("receiver answered HTTP {status}: {detail}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, for the log.
        detail: String,
    },

    /// An HTTP receiver refused the request (a 4xx other than 429): a URL, token
    /// or header is wrong. Nothing is dropped: the batch is retried at the
    /// slowest pace ([`ForwarderSettings::retry_max`]) until the receiver takes it.
    #[error("receiver refused the request with HTTP {status} (configuration error?): {detail}")]
    Rejected {
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, for the log.
        detail: String,
    },
}

/// One event as read from the log, with the exact canonical body the chain hashes,
/// and the signed checkpoint over it when there is one.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The decoded event (its `seq`, `id`, `hash`…).
    pub event: Event,
    /// The stored canonical body (single-line JSON, see the crate documentation).
    pub body: String,
    /// The checkpoint signed over this event, if any: sinks send it right after
    /// the event, in the JSON Lines checkpoint shape, so the SIEM holds every
    /// signed head (a witness the CA host cannot rewrite; see [`crate::witness`]).
    pub checkpoint: Option<Checkpoint>,
    /// The event already went out before its checkpoint was signed (a checkpoint
    /// signed on the timer, over the newest event): send only the checkpoint.
    pub checkpoint_only: bool,
}

impl Record {
    /// An event without a checkpoint.
    pub fn event(event: Event, body: String) -> Record {
        Record {
            event,
            body,
            checkpoint: None,
            checkpoint_only: false,
        }
    }
}

/// What a successful [`Sink::send`] proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The receiver acknowledged the batch (an HTTP 2xx): confirm it now.
    Acknowledged,
    /// The batch was written and flushed to a stream; confirm it once the
    /// connection is still standing after [`ForwarderSettings::settle`].
    Written,
}

/// A transport to one receiver. The engine calls `connect`, then `send` for each
/// batch in order, `check` to confirm written batches, and `close` (graceful) or
/// `disconnect` (after an error).
pub trait Sink: Send + fmt::Debug {
    /// Where events go, for logs and status (`syslog-tcp 10.0.0.5:514`).
    fn destination(&self) -> String;
    /// Establish a fresh connection (dropping any previous one).
    fn connect(&mut self) -> Result<(), ForwardError>;
    /// Write `batch` (in order) and flush it.
    fn send(&mut self, batch: &[Record]) -> Result<Delivery, ForwardError>;
    /// Whether the connection still stands (the receiver has not closed or reset
    /// it). Must not block.
    fn check(&mut self) -> Result<(), ForwardError>;
    /// Close gracefully within `timeout`. `Ok(true)` when the receiver proved it
    /// read everything sent (it closed its side after our end-of-stream).
    fn close(&mut self, timeout: Duration) -> Result<bool, ForwardError>;
    /// Drop the connection without ceremony.
    fn disconnect(&mut self);
    /// Whether [`Sink::set_prev_hash`] should be called before each batch (sinks
    /// that send the JSON Lines shape, whose lines carry `prev_hash`).
    fn wants_prev_hash(&self) -> bool {
        false
    }
    /// The chain hash of the event just before the next batch (32 zero bytes
    /// before sequence 1).
    fn set_prev_hash(&mut self, _prev_hash: [u8; 32]) {}
}

/// How one forwarder behaves. `ForwarderSettings::new(name)` gives the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwarderSettings {
    /// The forwarder's name: the key of its cursor row (renaming it starts over).
    pub name: String,
    /// Events per batch (default 500, at least 1).
    pub batch_size: u32,
    /// First retry delay after an error (default 250 ms); it doubles per failure.
    pub retry_initial: Duration,
    /// Longest retry delay (default 30 s).
    pub retry_max: Duration,
    /// How often to look for new events when caught up (default 100 ms).
    pub poll_interval: Duration,
    /// How long a written batch must survive on a standing connection before a
    /// stream sink's batch counts as delivered (default 1 s).
    pub settle: Duration,
    /// On stop: how long to keep sending towards the head and wait for the
    /// receiver's close (default 5 s).
    pub drain_timeout: Duration,
}

impl ForwarderSettings {
    /// Defaults for a forwarder called `name`.
    pub fn new(name: &str) -> Self {
        ForwarderSettings {
            name: name.to_owned(),
            batch_size: 500,
            retry_initial: Duration::from_millis(250),
            retry_max: Duration::from_secs(30),
            poll_interval: Duration::from_millis(100),
            settle: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(5),
        }
    }

    fn validate(&self) -> Result<(), ForwardError> {
        let bad = |m: &str| {
            Err(ForwardError::Config(format!(
                "forwarder {:?}: {m}",
                self.name
            )))
        };
        if self.name.is_empty() || self.name.len() > 64 {
            return bad("name must be 1 to 64 characters");
        }
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1");
        }
        if self.retry_initial.is_zero() || self.retry_max < self.retry_initial {
            return bad("retry delays must be positive and retry_max >= retry_initial");
        }
        if self.poll_interval.is_zero() {
            return bad("poll_interval must be positive");
        }
        Ok(())
    }
}

/// A snapshot of one forwarder, for logs, health and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ForwarderStatus {
    /// The forwarder's name.
    pub name: String,
    /// Where it sends.
    pub destination: String,
    /// Whether a connection is up.
    pub connected: bool,
    /// The log's last sequence number when last looked at.
    pub head_seq: u64,
    /// The last sequence number written to the current connection.
    pub sent_seq: u64,
    /// The durable cursor: every event up to here is confirmed delivered.
    pub acked_seq: u64,
    /// `head_seq - sent_seq`: events not yet written.
    pub lag: u64,
    /// Events written since start, resends included.
    pub events_sent: u64,
    /// Connections made since start (the first included).
    pub connects: u64,
    /// Failures in a row (0 when the last attempt succeeded).
    pub consecutive_failures: u32,
    /// The last error, if any (kept after recovery, for the record).
    pub last_error: Option<String>,
    /// Whether the worker has stopped.
    pub stopped: bool,
    /// On a log several CAs share: another CA's forwarder of this name is
    /// sending, and this one waits to take over.
    pub standby: bool,
}

#[derive(Debug, Default)]
pub(super) struct StopFlag {
    stop: Mutex<bool>,
    cv: Condvar,
}

impl StopFlag {
    fn is_set(&self) -> bool {
        *lock(&self.stop)
    }
    fn set(&self) {
        *lock(&self.stop) = true;
        self.cv.notify_all();
    }
    /// Sleep for `d` unless stopped first; returns whether a stop was requested.
    fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut g = lock(&self.stop);
        while !*g {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            g = match self.cv.wait_timeout(g, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
        *g
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a thread panicked holding it; the data (a flag,
    // a status snapshot) stays meaningful.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running forwarder: one thread reading the log and feeding one [`Sink`].
/// Dropping it stops it (with the drain described in [`Forwarder::stop`]).
pub struct Forwarder {
    name: String,
    stop: Arc<StopFlag>,
    status: Arc<Mutex<ForwarderStatus>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forwarder")
            .field("name", &self.name)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Forwarder {
    /// Open the audit database at `audit_db` (which must already be an audit log),
    /// create the cursor table if needed, load this forwarder's cursor and start its
    /// thread. Fails at once on an unusable database or settings; connection
    /// problems are retried in the background and show in [`Forwarder::status`].
    pub fn spawn(
        audit_db: &Path,
        settings: ForwarderSettings,
        sink: Box<dyn Sink>,
    ) -> Result<Forwarder, ForwardError> {
        settings.validate()?;
        let store = cursor::SqliteCursors::open(audit_db)?;
        Self::start(Box::new(store), settings, sink)
    }

    /// [`Forwarder::spawn`] for a log in PostgreSQL that several CAs share.
    /// The cursor is shared too, and only one forwarder of a name sends at a
    /// time (a lease); the others report [`ForwarderStatus::standby`] and take
    /// over from the shared cursor when the sender's process goes away.
    pub fn spawn_postgres(
        audit_db: &crate::PgConfig,
        settings: ForwarderSettings,
        sink: Box<dyn Sink>,
    ) -> Result<Forwarder, ForwardError> {
        settings.validate()?;
        let store = cursor_pg::PgCursors::open(audit_db)?;
        Self::start(Box::new(store), settings, sink)
    }

    fn start(
        mut store: Box<dyn cursor::Cursors>,
        settings: ForwarderSettings,
        sink: Box<dyn Sink>,
    ) -> Result<Forwarder, ForwardError> {
        let acked = store.load(&settings.name)?;
        let head = store.head()?;
        // Checkpoints up to the cursor went out with their events before.
        let cp_acked = store.checkpoint_upto(acked)?;
        if acked > head {
            tracing::warn!(
                forwarder = %settings.name, cursor = acked, head,
                "forwarder cursor is past the end of the log (was the audit database replaced?); \
                 events up to the cursor will not be sent"
            );
        }
        let status = Arc::new(Mutex::new(ForwarderStatus {
            name: settings.name.clone(),
            destination: sink.destination(),
            head_seq: head,
            sent_seq: acked,
            acked_seq: acked,
            lag: head.saturating_sub(acked),
            ..ForwarderStatus::default()
        }));
        let stop = Arc::new(StopFlag::default());
        let worker = worker::Worker {
            settings: settings.clone(),
            store,
            sink,
            stop: Arc::clone(&stop),
            status: Arc::clone(&status),
            acked,
            sent: acked,
            cp_acked,
            cp_sent: cp_acked,
            head,
            pending: VecDeque::new(),
            connected: false,
            backoff: settings.retry_initial,
        };
        let thread = std::thread::Builder::new()
            .name(format!("rampart-fwd-{}", settings.name))
            .spawn(move || worker.run())
            .map_err(ForwardError::Io)?;
        Ok(Forwarder {
            name: settings.name,
            stop,
            status,
            thread: Some(thread),
        })
    }

    /// The forwarder's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A snapshot of its state.
    pub fn status(&self) -> ForwarderStatus {
        lock(&self.status).clone()
    }

    /// A handle that reads the status after the forwarder moved elsewhere.
    pub fn status_handle(&self) -> StatusHandle {
        StatusHandle(Arc::clone(&self.status))
    }

    /// Stop: keep sending towards the head for up to the drain timeout, close the
    /// connection gracefully (advancing the cursor when the receiver proves it read
    /// everything), then end the thread. Returns the final status.
    pub fn stop(mut self) -> ForwarderStatus {
        self.shutdown();
        self.status()
    }

    fn shutdown(&mut self) {
        self.stop.set();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!(forwarder = %self.name, "forwarder thread panicked");
            }
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Reads a forwarder's status from anywhere (metrics, health).
#[derive(Clone, Debug)]
pub struct StatusHandle(Arc<Mutex<ForwarderStatus>>);

impl StatusHandle {
    /// A snapshot of the forwarder's state.
    pub fn get(&self) -> ForwarderStatus {
        lock(&self.0).clone()
    }
}

#[cfg(test)]
mod tests {
    use rampart_api::report::one_line;

    use super::ForwardError;

    #[test]
    fn an_io_failure_names_its_cause_once() {
        let e = ForwardError::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ));
        assert_eq!(e.to_string(), "receiver I/O");
        let cause = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(cause.as_deref(), Some("connection refused"));
        assert_eq!(one_line(&e), "receiver I/O: connection refused");
    }

    #[test]
    fn a_tls_failure_is_its_text_alone() {
        let e = ForwardError::Tls("invalid peer certificate: UnknownIssuer".into());
        assert!(std::error::Error::source(&e).is_none());
        assert_eq!(one_line(&e), "TLS: invalid peer certificate: UnknownIssuer");
    }
}

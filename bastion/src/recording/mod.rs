//! Recording glue: every session channel to one asciicast v2 file per session,
//! its upload to the CA, and what a crash leaves behind.
//!
//! **Owns:** the session's [`Recorder`] — started on the session's first
//! shell, exec or subsystem request, with or without a pty; every such channel
//! is written to it between channel markers (the format is
//! `rampart_audit::recording`'s, see its "Channels" section) — the 1-second
//! flush ticker (so a crash loses at most the last second), the bound on
//! stored bytes per session (beyond it a channel's data is counted and hashed,
//! not stored, and its close marker says so), the policy's metering of bulk
//! data (`record = "metered"`: of each direction of an exec or subsystem
//! channel without a pty only the first N MiB are stored, the rest counted and
//! hashed the same way; a pty, and a shell without one, are never metered),
//! finishing and uploading at
//! session end (`PUT /v1/bastion/recordings/{id}` with the SHA-256 header), the
//! spool of finished recordings the CA has not taken yet (retried in the
//! background), and the per-session marker files that let a restarted bastion
//! report the sessions a crash cut off (`session_ended`, reason
//! `bastion_restarted`).
//!
//! Recording fails closed: a recorder that cannot start refuses the channel
//! that needed it, and a write that fails calls the session's failure hook,
//! which ends the session.
//!
//! No file I/O here runs on a tokio worker: each session's recording is
//! written, flushed and fsynced by a thread of its own that the [`Recorder`]
//! handle sends to, and markers are written and removed, in order, by one
//! marker thread. The I/O paths assert (in debug builds) that they are not on
//! a runtime, so the tests, which drive them from async code, keep it so.
//!
//! # Files
//!
//! - `mod.rs`: the [`Recorder`] and its writer thread.
//! - `spool.rs`: finishing, the spool, uploads and their retries.
//! - `markers.rs`: live-session markers and the recovery after a crash.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use rampart_audit::recording::{RecordingHeader, RecordingWriter};
use sha2::{Digest, Sha256};

mod markers;
mod spool;

pub use markers::{marker_path, recover, remove_marker, write_marker, Marker};
pub use spool::{finish_and_upload, spawn_uploader};

/// How often the flush ticker runs; with `FLUSH_INTERVAL` = 1 s in the writer,
/// output reaches the disk at most ~1.25 s after it was seen.
const TICK: Duration = Duration::from_millis(250);
/// Commands queued to a session's writer thread before a sender waits: the
/// back-pressure of a disk that cannot keep up.
const QUEUE: usize = 1024;

/// Called once when a write fails mid-session, with the reason.
pub type FailureHook = Box<dyn FnOnce(String) + Send>;

/// Bytes of one direction of one channel: how many, and their SHA-256 for a
/// channel without a pty (bulk data, whose digest is kept even where the
/// bytes themselves are not).
struct Meter {
    bytes: u64,
    sha256: Option<Sha256>,
}

impl Meter {
    fn new(hashed: bool) -> Meter {
        Meter {
            bytes: 0,
            sha256: hashed.then(Sha256::new),
        }
    }

    fn add(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
    }

    fn summary(self, name: &str) -> String {
        match self.sha256 {
            Some(h) => format!(
                "{name} {} bytes sha256 {}",
                self.bytes,
                hex::encode(h.finalize())
            ),
            None => format!("{name} {} bytes", self.bytes),
        }
    }
}

/// What the recorder knows of one open channel.
struct ChannelState {
    pty: bool,
    output: Meter,
    input: Meter,
    /// Bytes this channel had to leave out (the session's budget was spent).
    left_out: u64,
    /// Policy metering: bytes of each direction stored at most (`None`: all).
    metered: Option<u64>,
    /// Bytes stored so far of each direction, against `metered`.
    stored_output: u64,
    stored_input: u64,
    /// Bytes metering left out (counted and hashed only).
    metered_out: u64,
}

/// Which way data went on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Output,
    Input,
}

struct State {
    writer: RecordingWriter,
    started: Instant,
    /// Policy's `record_input`: keystrokes on a pty are stored.
    record_input: bool,
    channels: HashMap<u32, ChannelState>,
    /// Data bytes still to be stored before channels are only metered.
    budget: u64,
    /// Policy metering of bulk channels: bytes kept of each direction.
    metered: Option<u64>,
    on_failure: Option<FailureHook>,
}

impl State {
    /// Report a write error once; the recording is then stopped.
    fn check(&mut self) -> bool {
        match self.writer.flush_if_due() {
            Ok(()) => true,
            Err(e) => {
                crate::metrics::recording_failed("write");
                if let Some(hook) = self.on_failure.take() {
                    hook(format!(
                        "session recording failed: {}",
                        rampart_api::report::one_line(&e)
                    ));
                }
                false
            }
        }
    }

    /// How much of `len` bytes may still be stored.
    fn take_budget(&mut self, len: usize) -> usize {
        let n = len.min(usize::try_from(self.budget).unwrap_or(usize::MAX));
        self.budget -= n as u64;
        n
    }
}

/// A change to a recording, applied by its writer thread with the time into
/// the session it happened at.
type Change = Box<dyn FnOnce(&mut State, Duration) + Send>;

/// What a [`Recorder`] handle asks of its writer thread.
enum Cmd {
    /// Apply a change to the recording, `at` into the session.
    Apply(Change, Duration),
    /// Close the file and answer with its path (`None`: the recording failed).
    Close(tokio::sync::oneshot::Sender<Option<PathBuf>>),
}

/// The I/O below must not run on an async worker (it blocks on the disk).
fn assert_off_runtime() {
    debug_assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "recording file I/O on a tokio worker"
    );
}

/// A session's live recording, shared by the channel pumps (output) and the
/// handler (input, resize, channel open and close). A handle: the file is
/// written by the session's writer thread, which also flushes it on a
/// ticker.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::SyncSender<Cmd>,
    started: Instant,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    /// Start `DIR/<session>.cast`, storing at most `budget` data bytes before
    /// channels are only metered, and with `metered` set at most that many
    /// bytes of each direction of a bulk channel without a pty. `on_failure`
    /// is called once if a write fails.
    ///
    /// Must be called on a tokio runtime: the failure hook runs in its
    /// context.
    pub async fn start(
        dir: &Path,
        header: &RecordingHeader,
        budget: u64,
        metered: Option<u64>,
        on_failure: FailureHook,
    ) -> Result<Recorder, rampart_audit::AuditError> {
        let path = dir.join(format!("{}.cast", header.session_id));
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let (created_tx, created) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Handle::current();
        let header = header.clone();
        let record_input = header.record_input;
        let started = Instant::now();
        std::thread::Builder::new()
            .name("rampart-recorder".into())
            .spawn(move || {
                assert_off_runtime();
                let writer = match RecordingWriter::create(&path, &header) {
                    Ok(w) => {
                        let _ = created_tx.send(Ok(()));
                        w
                    }
                    Err(e) => {
                        let _ = created_tx.send(Err(e));
                        return;
                    }
                };
                let state = State {
                    writer,
                    started,
                    record_input,
                    channels: HashMap::new(),
                    budget,
                    metered,
                    on_failure: Some(on_failure),
                };
                write_until_closed(state, &rx, &runtime);
            })
            .map_err(rampart_audit::AuditError::Io)
            .inspect_err(|_| crate::metrics::recording_failed("start"))?;
        match created.await {
            Ok(Ok(())) => Ok(Recorder { tx, started }),
            Ok(Err(e)) => {
                crate::metrics::recording_failed("start");
                Err(e)
            }
            Err(_) => {
                crate::metrics::recording_failed("start");
                Err(rampart_audit::AuditError::Io(std::io::Error::other(
                    "the recording thread stopped before creating the file",
                )))
            }
        }
    }

    /// Queue `f` for the writer thread, stamped with the time it happened.
    fn with(&self, f: impl FnOnce(&mut State, Duration) + Send + 'static) {
        let el = self.started.elapsed();
        // A writer that is gone has failed or closed: nothing more to record.
        let _ = self.tx.send(Cmd::Apply(Box::new(f), el));
    }

    /// Channel `channel` starts `what` (with a pty or not); `bulk` for exec
    /// and subsystem channels, which policy may meter when they have no pty.
    pub fn open_channel(&self, channel: u32, what: &str, pty: bool, bulk: bool) {
        let what = what.to_owned();
        self.with(move |s, el| {
            let metered = if bulk && !pty { s.metered } else { None };
            s.channels.insert(
                channel,
                ChannelState {
                    pty,
                    output: Meter::new(!pty),
                    input: Meter::new(!pty),
                    left_out: 0,
                    metered,
                    stored_output: 0,
                    stored_input: 0,
                    metered_out: 0,
                },
            );
            s.writer.channel_opened(el, channel, &what);
        });
    }

    /// Output of `channel` (stdout and stderr).
    pub fn output(&self, channel: u32, data: &[u8]) {
        self.data(channel, Direction::Output, data);
    }

    /// Input to `channel`: kept in full without a pty, keystrokes on a pty only
    /// when policy says `record_input`.
    pub fn input(&self, channel: u32, data: &[u8]) {
        self.data(channel, Direction::Input, data);
    }

    fn data(&self, channel: u32, direction: Direction, data: &[u8]) {
        let data = data.to_vec();
        self.with(move |s, el| {
            let data = data.as_slice();
            let record_input = s.record_input;
            let Some(c) = s.channels.get_mut(&channel) else {
                return;
            };
            let pty = c.pty;
            match direction {
                Direction::Output => c.output.add(data),
                Direction::Input => c.input.add(data),
            }
            if direction == Direction::Input && pty && !record_input {
                // Keystrokes on a pty: counted, never stored.
                return;
            }
            // Metering first (this channel's allowance per direction), then
            // the session's budget: the smaller bound wins.
            let mut allowed = data.len();
            if let Some(cap) = c.metered {
                let stored = match direction {
                    Direction::Output => &mut c.stored_output,
                    Direction::Input => &mut c.stored_input,
                };
                let room = usize::try_from(cap.saturating_sub(*stored)).unwrap_or(usize::MAX);
                allowed = allowed.min(room);
                *stored += allowed as u64;
                c.metered_out += (data.len() - allowed) as u64;
            }
            let keep = s.take_budget(allowed);
            if keep < allowed {
                if let Some(c) = s.channels.get_mut(&channel) {
                    c.left_out += (allowed - keep) as u64;
                }
            }
            let kept = data.get(..keep).unwrap_or_default();
            if kept.is_empty() {
                return;
            }
            // Terminal text on a pty; anything on a channel without one, exactly.
            match (direction, pty) {
                (Direction::Output, true) => s.writer.channel_output(el, channel, kept),
                (Direction::Output, false) => s.writer.channel_output_exact(el, channel, kept),
                (Direction::Input, true) => s.writer.channel_input(el, channel, kept, true),
                (Direction::Input, false) => s.writer.channel_input_exact(el, channel, kept),
            }
        });
    }

    /// Terminal resize.
    pub fn resize(&self, cols: u32, rows: u32) {
        self.with(move |s, el| s.writer.resize(el, cols, rows));
    }

    /// Channel `channel` ended; `how` says how (`exit 0`, `signal KILL`, `closed`).
    pub fn close_channel(&self, channel: u32, how: &str) {
        let how = how.to_owned();
        self.with(move |s, el| {
            let Some(c) = s.channels.remove(&channel) else {
                return;
            };
            let mut summary = format!(
                "{how}, {}, {}",
                c.input.summary("in"),
                c.output.summary("out")
            );
            if c.metered_out > 0 {
                const MIB: u64 = 1024 * 1024;
                let cap = match c.metered.unwrap_or(0) {
                    b if b % MIB == 0 => format!("{} MiB", b / MIB),
                    b => format!("{b} bytes"),
                };
                summary.push_str(&format!(
                    ", {} bytes not stored (metered: {cap} of each direction kept)",
                    c.metered_out
                ));
            }
            if c.left_out > 0 {
                summary.push_str(&format!(
                    ", {} bytes not stored (session recording budget spent)",
                    c.left_out
                ));
            }
            s.writer.channel_closed(el, channel, &summary);
        });
    }

    /// Close the file (flush, fsync) once everything queued before is
    /// written; the `.cast` path, or `None` when the recording failed (the
    /// `.cast` then stays for the restart recovery, which uploads it marked as
    /// an abnormal end) or was closed already.
    pub fn close(&self) -> impl std::future::Future<Output = Option<PathBuf>> + Send + 'static {
        let (reply, closed) = tokio::sync::oneshot::channel();
        let sent = self.tx.send(Cmd::Close(reply)).is_ok();
        async move {
            if !sent {
                return None;
            }
            closed.await.ok().flatten()
        }
    }
}

/// The writer thread's loop: apply what the handles send, flush on the
/// ticker, and close on request (or when every handle is gone).
fn write_until_closed(
    mut state: State,
    rx: &mpsc::Receiver<Cmd>,
    runtime: &tokio::runtime::Handle,
) {
    assert_off_runtime();
    let mut ticking = true;
    loop {
        match rx.recv_timeout(TICK) {
            Ok(Cmd::Apply(f, el)) => f(&mut state, el),
            Ok(Cmd::Close(reply)) => {
                let _ = reply.send(close_state(state));
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
            // Dropped without close: the `.cast` stays for the recovery.
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // After every command too: under steady traffic the timeout never
        // fires, and the flush is due by time.
        if ticking {
            // The failure hook may start tasks.
            let _context = runtime.enter();
            ticking = state.check();
        }
    }
}

/// Mark the channels still open as ended and close the file.
fn close_state(mut state: State) -> Option<PathBuf> {
    let open: Vec<u32> = state.channels.keys().copied().collect();
    for channel in open {
        let el = state.started.elapsed();
        state.channels.remove(&channel);
        state.writer.channel_closed(el, channel, "session ended");
    }
    match state.writer.close() {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!(
                "closing a recording failed: {}",
                rampart_api::report::one_line(&e)
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    use rampart_audit::recording::{parse_cast, CastEventKind, ReadLimits};

    fn header() -> RecordingHeader {
        RecordingHeader {
            session_id: "01METERED".into(),
            user: "alice".into(),
            login: "backup".into(),
            target: "nas-1".into(),
            width: 80,
            height: 24,
            started: chrono::Utc::now(),
            record_input: false,
            term: None,
        }
    }

    /// Metering stores the first bytes of each direction of a bulk channel
    /// without a pty and counts and hashes all of it; a shell without a pty is
    /// not metered; the session budget still bounds what metering lets through.
    #[tokio::test]
    async fn metering_keeps_the_head_of_bulk_channels_and_hashes_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::start(dir.path(), &header(), 1000, Some(10), Box::new(|_| {}))
            .await
            .unwrap();
        r.open_channel(0, "exec cat (no pty)", false, true);
        r.open_channel(1, "shell (no pty)", false, false);
        r.open_channel(2, "subsystem sftp (no pty)", false, true);
        let out: Vec<u8> = (0u8..25).collect();
        r.output(0, &out[..7]);
        r.output(0, &out[7..]);
        r.input(0, b"0123456789abcdef");
        r.input(1, &[b'x'; 40]);
        let close = |ch| r.close_channel(ch, "exit 0");
        close(0);
        close(1);
        let cast = std::fs::read(r.close().await.unwrap()).unwrap();
        let rec = parse_cast(&cast, &ReadLimits::default()).unwrap();
        assert_eq!(rec.channel_output_bytes(0), out[..10]);
        assert_eq!(rec.channel_input_bytes(0), b"0123456789");
        assert_eq!(
            rec.channel_input_bytes(1),
            [b'x'; 40],
            "typed input kept in full"
        );
        let markers: Vec<&str> = rec
            .events
            .iter()
            .filter(|e| e.kind == CastEventKind::Marker)
            .map(|e| e.data.as_str())
            .collect();
        let closed0 = markers
            .iter()
            .find(|m| m.starts_with("channel 0 closed"))
            .unwrap();
        let sha = |d: &[u8]| hex::encode(Sha256::digest(d));
        assert!(
            closed0.contains(&format!("out 25 bytes sha256 {}", sha(&out)))
                && closed0.contains(&format!("in 16 bytes sha256 {}", sha(b"0123456789abcdef")))
                && closed0
                    .contains("21 bytes not stored (metered: 10 bytes of each direction kept)"),
            "{closed0}"
        );
        let closed1 = markers
            .iter()
            .find(|m| m.starts_with("channel 1 closed"))
            .unwrap();
        assert!(!closed1.contains("not stored"), "{closed1}");

        // A session budget smaller than the allowance still wins.
        let r = Recorder::start(
            dir.path(),
            &RecordingHeader {
                session_id: "01BUDGET".into(),
                ..header()
            },
            4,
            Some(10),
            Box::new(|_| {}),
        )
        .await
        .unwrap();
        r.open_channel(0, "exec cat (no pty)", false, true);
        r.output(0, &out);
        r.close_channel(0, "exit 0");
        let cast = std::fs::read(r.close().await.unwrap()).unwrap();
        let rec = parse_cast(&cast, &ReadLimits::default()).unwrap();
        assert_eq!(rec.channel_output_bytes(0), out[..4]);
    }

    /// The recording is written on a thread of its own: every change is
    /// applied off the async runtime that asked for it, and closing waits for
    /// everything queued before.
    #[tokio::test]
    async fn the_recording_is_written_off_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::start(
            dir.path(),
            &RecordingHeader {
                session_id: "01OFFRUNTIME".into(),
                ..header()
            },
            1000,
            None,
            Box::new(|_| {}),
        )
        .await
        .unwrap();
        let writer_thread = Arc::new(std::sync::Mutex::new(None));
        let seen = Arc::clone(&writer_thread);
        r.with(move |_, _| {
            let on_runtime = tokio::runtime::Handle::try_current().is_ok();
            *seen.lock().unwrap() = Some((on_runtime, std::thread::current().id()));
        });
        r.open_channel(0, "shell", true, false);
        r.output(0, b"hello");
        // A handle dropped without closing does not end the recording.
        drop(r.clone());
        let cast = r.close().await.expect("closed after the queued changes");
        let (on_runtime, thread) = writer_thread.lock().unwrap().expect("change applied");
        assert!(!on_runtime, "a change was applied on the runtime");
        assert_ne!(thread, std::thread::current().id());
        let rec = parse_cast(&std::fs::read(cast).unwrap(), &ReadLimits::default()).unwrap();
        assert_eq!(rec.channel_output_bytes(0), b"hello");
        assert!(
            r.close().await.is_none(),
            "a second close has nothing to close"
        );
    }
}
